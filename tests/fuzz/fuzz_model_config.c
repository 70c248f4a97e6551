/* tests/fuzz/fuzz_model_config.c — libFuzzer harness: any bytes as a model folder's
 * config.json through the readers start-up uses on it: unet_config_from_json,
 * vae_config_from_json, clip_config_from_json and schedule_config_from_json, then
 * schedule_build on an accepted scheduler config (a corrupt or hostile model folder
 * must give a clear start-up error, never a crash).  Aborts unless every rejection
 * carries a message and an accepted schedule's tables are finite, with ᾱ in (0, 1]
 * (as the σ-based samplers see it: zero-SNR's last entry is 2⁻²⁴) and σ ≥ 0.
 *
 * Not part of ctest (needs clang's libFuzzer).  Build against a Release build's
 * libraries and run (seeds: the bundled model's config.json files):
 *   B=build M=models
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I. \
 *     tests/fuzz/fuzz_model_config.c $M/model_config.c $M/unet_config.c $M/schedule.c \
 *     $B/models/libdiffusiond_models.a $B/engine/libdiffusiond_engine.a \
 *     $(pkg-config --libs jansson libutf8proc) -lopenblas -lm -lpthread -o fuzz_model_config
 *   mkdir -p corpus; for d in unet vae text_encoder scheduler; do
 *     cp models/default/$d/[a-z_]*config.json corpus/$d.json; done
 *   ./fuzz_model_config -max_total_time=120 -max_len=4096 corpus
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/clip.h"
#include "models/model_config.h"
#include "models/schedule.h"
#include "models/unet.h"
#include "models/vae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rejection(enum status s, const struct errbuf *err)
{
    if (s != STATUS_OK && !err->msg[0])
        abort();
}

static void check_schedule(const json_t *obj)
{
    struct schedule_config cfg;
    struct errbuf err;
    err.msg[0] = '\0';
    enum status s = schedule_config_from_json(&cfg, obj, &err);
    check_rejection(s, &err);
    if (s != STATUS_OK)
        return;
    struct schedule sch;
    memset(&sch, 0, sizeof sch);
    err.msg[0] = '\0';
    s = schedule_build(&sch, &cfg, &err);
    check_rejection(s, &err);
    if (s != STATUS_OK)
        return;
    for (int t = 0; t < sch.n_train; t++)
        if (!isfinite(sch.betas[t]) || !(schedule_alpha_cumprod_sigma(&sch, t) > 0.0f) ||
            !(sch.alphas_cumprod[t] <= 1.0f) || !isfinite(sch.sigmas[t]) ||
            !(sch.sigmas[t] >= 0.0f))
            abort();
    schedule_free(&sch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    json_t *obj = NULL;
    struct errbuf err;
    err.msg[0] = '\0';
    enum status s = model_config_parse(text, "fuzz/config.json", &obj, &err);
    free(text);
    check_rejection(s, &err);
    if (s != STATUS_OK)
        return 0;
    struct unet_config u;
    err.msg[0] = '\0';
    check_rejection(unet_config_from_json(obj, &u, &err), &err);
    struct vae_config v;
    err.msg[0] = '\0';
    check_rejection(vae_config_from_json(obj, &v, &err), &err);
    struct clip_config c;
    err.msg[0] = '\0';
    check_rejection(clip_config_from_json(obj, &c, &err), &err);
    check_schedule(obj);
    json_decref(obj);
    return 0;
}
