/* tests/fuzz/fuzz_a1111.c — libFuzzer harness: any bytes as a POST /sdapi/v1/txt2img
 * body through a1111_txt2img_parse and, when accepted, openai_images_resolve on the tiny
 * SD1 fixture, then a1111_txt2img_response_write for it (fake one-byte images with the
 * request's seeds), parsed back with jansson; and the same bytes as a POST
 * /sdapi/v1/options body, and as an img2img body (parse, resolve, finish: the image —
 * and an inpainting mask, read, blurred and resized — at the resolved size).  Aborts
 * unless every rejection is a 400 (or 404 / 503) whose A1111 error body is well-formed,
 * every response body is JSON whose info string is JSON too with one seed per image,
 * and an accepted mask reaches params at the request's size (with inpaint_full_res, from
 * a region inside the start image).
 *
 * Not part of ctest (needs clang's libFuzzer).  Build against a Release build's
 * libraries and run (tests/fuzz/README.md):
 *   S=api; B=build
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I. \
 *     $(pkg-config --cflags jansson) -DFIXTURE=\"$PWD/tests/fixtures/sd/sd1-tiny/diffusers\" \
 *     tests/fuzz/fuzz_a1111.c $S/a1111_request.c $S/a1111_response.c $S/openai_images.c \
 *     $S/openai_response.c $S/json_fields.c $S/api_error.c $S/json_out.c $S/base64.c \
 *     $S/image_encode.c $S/image_decode.c $S/img2img.c $S/inpaint.c $S/image_mask.c \
 *     $S/image_fill.c $B/models/libdiffusiond_models.a \
 *     $B/engine/libdiffusiond_engine.a \
 *     $(pkg-config --libs jansson libutf8proc libpng libturbojpeg libwebp) -lopenblas -lm \
 *     -lpthread -o fuzz_a1111
 *   ./fuzz_a1111 -max_total_time=150 -max_len=2048 CORPUS_DIR
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/a1111_request.h"
#include "api/a1111_response.h"
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

static void check_error(const struct api_error *e)
{
    if (e->http != 400 && e->http != 503)
        abort();
    size_t n = 0;
    char *body = a1111_error_body(e, &n);
    json_t *root = body ? json_loadb(body, n, 0, NULL) : NULL;
    if (!root || !json_is_string(json_object_get(root, "detail")))
        abort();
    json_decref(root);
    free(body);
}

/* The response for an accepted request: JSON, its info JSON with n seeds. */
static void check_response(const struct a1111_request *t)
{
    static const uint8_t png[1] = {0x89};
    struct api_image_out imgs[GEN_MAX_IMAGES];
    const int n = t->req.params.n;
    for (int i = 0; i < n; i++)
        imgs[i] = (struct api_image_out){.data = png, .len = 1, .seed = t->req.params.seed + i};
    const struct a1111_txt2img_response r = {
        .t = t, .model_name = "m", .images = imgs, .n_images = n,
        .width = t->req.params.width, .height = t->req.params.height, .created = 1};
    char *out = NULL;
    size_t len = 0;
    struct errbuf err;
    if (a1111_txt2img_response_write(&r, &out, &len, &err) != STATUS_OK)
        abort();
    json_t *root = json_loadb(out, len, JSON_REJECT_DUPLICATES, NULL);
    const char *info = root ? json_string_value(json_object_get(root, "info")) : NULL;
    json_t *ij = info ? json_loads(info, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!ij || (int)json_array_size(json_object_get(ij, "all_seeds")) != n)
        abort();
    json_decref(ij);
    json_decref(root);
    free(out);
}

/* "Only masked": the region lies inside the start image, with the mask's paste alpha at
 * the start image's size. */
static bool crop_inside(const struct api_img2img *i2i)
{
    const struct api_inpaint *in = &i2i->inpaint;
    return in->crop_x >= 0 && in->crop_y >= 0 && in->crop_w >= 1 && in->crop_h >= 1 &&
           in->crop_x + in->crop_w <= i2i->init.width &&
           in->crop_y + in->crop_h <= i2i->init.height &&
           in->overlay.width == i2i->init.width && in->overlay.height == i2i->init.height;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_limits lim;
    struct a1111_request t;
    struct api_error e;
    api_limits_default(&lim);
    enum status s = a1111_txt2img_parse((const char *)data, size, &lim, &t, &e);
    if (s == STATUS_OK)
        s = openai_images_resolve(g_model, &lim, 123, &t.req, &e);
    if (s != STATUS_OK)
        check_error(&e);
    else
        check_response(&t);
    a1111_request_free(&t);
    /* the same bytes as an img2img body (its image, when one decodes, resized) */
    s = a1111_img2img_parse((const char *)data, size, &lim, &t, &e);
    if (s == STATUS_OK)
        s = openai_images_resolve(g_model, &lim, 123, &t.req, &e);
    if (s == STATUS_OK)
        s = a1111_img2img_finish(&t, &e);
    if (s != STATUS_OK)
        check_error(&e);
    else if (!t.req.params.init_image || t.i2i.resized.width != t.req.params.width ||
             (api_inpaint_has_mask(&t.i2i.inpaint) &&
              (t.req.params.init_mask != t.i2i.inpaint.resized.v ||
               t.i2i.inpaint.resized.width != t.req.params.width ||
               t.i2i.inpaint.resized.height != t.req.params.height)) ||
             (api_inpaint_cropped(&t.i2i.inpaint) && !crop_inside(&t.i2i)))
        abort();
    else
        check_response(&t);
    a1111_request_free(&t);
    char *model = NULL;
    if (a1111_options_parse((const char *)data, size, &model, &e) != STATUS_OK)
        check_error(&e);
    free(model);
    return 0;
}
