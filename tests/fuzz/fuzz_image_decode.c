/* tests/fuzz/fuzz_image_decode.c — libFuzzer harness: any bytes as an uploaded img2img
 * start image (or inpainting mask) through api/image_decode (small limits), and a
 * decoded image through image_resize to a small size; the same bytes through
 * image_decode_rgba, then as a mask (api/image_mask: A1111's rule, inverted, blurred with
 * radii from the input's bytes, 0…40 — wider than the image too), image_resize_gray and
 * api/image_fill over the image.  Aborts unless a rejection is INVALID_ARGUMENT (or
 * OUT_OF_MEMORY) with a message and an empty image, an accepted image has sides within
 * the limits and pixels, image_decode_rgba agrees with image_decode (size, status, the
 * flattened pixels) and image_probe_rgba with its transparency flags, and every mask
 * step succeeds at the asked size with the fill leaving the known pixels as they were.
 *
 * Not part of ctest (needs clang's libFuzzer).  Build (the module compiled from source so
 * that the sanitizers instrument it; the decoder libraries are the system's) and run:
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I. \
 *     tests/fuzz/fuzz_image_decode.c api/image_decode.c api/image_mask.c api/image_fill.c \
 *     engine/status.c $(pkg-config --libs libpng libturbojpeg libwebp) -lm \
 *     -o fuzz_image_decode
 *   mkdir -p corpus && cp tests/fixtures/images/[a-z]*.{png,jpg,webp} corpus/
 *   ./fuzz_image_decode -max_total_time=120 -max_len=8192 corpus
 */
#include <stdlib.h>
#include <string.h>

#include "api/image_decode.h"
#include "api/image_fill.h"
#include "api/image_mask.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SIDE 256
#define MAX_PIXELS ((size_t)128 * 128)

static void check_resize(const struct image_rgb8 *img, const uint8_t *data, size_t size)
{
    /* the target size from the input's last bytes: down, up or mixed, 1…64 a side */
    const int w = 1 + (size > 0 ? data[size - 1] : 0) % 64;
    const int h = 1 + (size > 1 ? data[size - 2] : 0) % 64;
    struct image_rgb8 out;
    struct errbuf err = {0};
    const enum status s = image_resize(img, w, h, &out, &err);
    if (s == STATUS_OUT_OF_MEMORY)
        return;
    if (s != STATUS_OK || out.width != w || out.height != h || !out.rgb)
        abort();
    image_rgb8_free(&out);
    if (out.rgb || out.width || out.height)
        abort();
}

/* The mask steps over a decoded RGBA image (rgb: the same image flattened). */
static void check_mask(const struct image_rgba8 *rgba, const struct image_rgb8 *rgb,
                       const uint8_t *data, size_t size)
{
    struct image_gray8 m, r;
    struct errbuf err = {0};
    enum status s = image_mask_a1111(rgba, &m, &err);
    if (s == STATUS_OUT_OF_MEMORY)
        return;
    if (s != STATUS_OK || m.width != rgba->width || m.height != rgba->height)
        abort();
    if (size > 2 && data[size - 3] & 1)
        image_mask_invert(&m);
    const double rx = size > 3 ? data[size - 4] % 41 : 4, ry = size > 4 ? data[size - 5] % 41 : 4;
    s = image_mask_blur(&m, rx, ry, &err);
    const int w = 1 + (size > 0 ? data[size - 1] : 0) % 64;
    const int h = 1 + (size > 1 ? data[size - 2] : 0) % 64;
    if (s == STATUS_OK)
        s = image_resize_gray(&m, w, h, &r, &err);
    if (s == STATUS_OUT_OF_MEMORY) {
        image_gray8_free(&m);
        return;
    }
    if (s != STATUS_OK || r.width != w || r.height != h || !r.v)
        abort();
    struct image_rgb8 img;
    s = image_resize(rgb, w, h, &img, &err);
    uint8_t *before = s == STATUS_OK ? malloc((size_t)w * (size_t)h * 3) : NULL;
    if (before) {
        memcpy(before, img.rgb, (size_t)w * (size_t)h * 3);
        if (image_fill_holes(&img, &r, &err) == STATUS_OK)
            for (int i = 0; i < w * h; i++)
                if (r.v[i] < IMAGE_FILL_THRESHOLD && memcmp(before + 3 * i, img.rgb + 3 * i, 3))
                    abort();
        free(before);
    }
    image_rgb8_free(&img);
    image_gray8_free(&r);
    image_gray8_free(&m);
}

/* image_decode_rgba and image_probe_rgba of the bytes image_decode gave *img (or s) for. */
static void check_rgba(const uint8_t *data, size_t size, enum status s,
                       const struct image_rgb8 *img)
{
    struct image_rgba8 rgba, head;
    struct image_rgb8 flat;
    struct errbuf err = {0};
    const enum status s4 = image_decode_rgba(size ? data : NULL, size, MAX_SIDE, MAX_PIXELS,
                                             &rgba, &err);
    if (s4 == STATUS_OUT_OF_MEMORY || s == STATUS_OUT_OF_MEMORY) {
        image_rgba8_free(&rgba);
        return;
    }
    if ((s4 == STATUS_OK) != (s == STATUS_OK))
        abort();
    if (s4 != STATUS_OK)
        return;
    if (rgba.width != img->width || rgba.height != img->height ||
        image_probe_rgba(data, size, MAX_SIDE, MAX_PIXELS, &head, &err) != STATUS_OK ||
        head.has_alpha != rgba.has_alpha || head.pillow_rgba != rgba.pillow_rgba)
        abort();
    if (image_rgba8_flatten(&rgba, &flat, &err) == STATUS_OK) {
        if (memcmp(flat.rgb, img->rgb, (size_t)img->width * (size_t)img->height * 3) != 0)
            abort();
        image_rgb8_free(&flat);
    }
    check_mask(&rgba, img, data, size);
    image_rgba8_free(&rgba);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so that a read past the input is an ASan report */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    struct image_rgb8 img;
    struct errbuf err = {0};
    const enum status s = image_decode(size ? copy : NULL, size, MAX_SIDE, MAX_PIXELS, &img,
                                       &err);
    if (s != STATUS_OK) {
        if ((s != STATUS_INVALID_ARGUMENT && s != STATUS_OUT_OF_MEMORY) || !err.msg[0] ||
            img.rgb || img.width || img.height)
            abort();
    } else {
        if (!img.rgb || img.width < 1 || img.height < 1 || img.width > MAX_SIDE ||
            img.height > MAX_SIDE || (size_t)img.width * (size_t)img.height > MAX_PIXELS)
            abort();
        check_resize(&img, copy, size);
    }
    check_rgba(copy, size, s, &img);
    image_rgb8_free(&img);
    free(copy);
    return 0;
}
