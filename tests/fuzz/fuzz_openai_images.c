/* tests/fuzz/fuzz_openai_images.c — libFuzzer harness: any bytes as a POST
 * /v1/images/generations body through openai_images_parse and, when accepted,
 * openai_images_resolve on the tiny SD1 fixture.  Aborts unless every rejection is a
 * 400 (or 503 out of memory) whose error body is well-formed.
 *
 * Not part of ctest (needs clang's libFuzzer).  Build against a Release build's
 * libraries and run (docs/api.md, "Tests and fuzzing"):
 *   S=api; B=build
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I. \
 *     $(pkg-config --cflags jansson) -DFIXTURE=\"$PWD/tests/fixtures/sd/sd1-tiny/diffusers\" \
 *     tests/fuzz/fuzz_openai_images.c $S/openai_images.c $S/json_fields.c $S/api_error.c \
 *     $S/json_out.c \
 *     $S/base64.c $B/models/libdiffusiond_models.a $B/engine/libdiffusiond_engine.a \
 *     $(pkg-config --libs jansson libutf8proc) -lopenblas -lm -lpthread -o fuzz_openai_images
 *   ./fuzz_openai_images -max_total_time=150 -max_len=2048 CORPUS_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai_images.h"
#include "tests/fuzz/fuzz_fixture.h"

static struct sd_model *g_model;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    g_model = fuzz_load_fixture();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_limits lim;
    struct openai_image_request req;
    struct api_error e;
    api_limits_default(&lim);
    enum status s = openai_images_parse((const char *)data, size, &lim, &req, &e);
    if (s == STATUS_OK)
        s = openai_images_resolve(g_model, &lim, 123, &req, &e);
    if (s != STATUS_OK) {
        if (e.http != 400 && e.http != 503)
            abort();
        size_t n = 0;
        char *body = api_error_body(&e, &n);
        if (!body || strlen(body) != n)
            abort();
        free(body);
    }
    openai_image_request_free(&req);
    return 0;
}
