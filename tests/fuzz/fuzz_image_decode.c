/* tests/fuzz/fuzz_image_decode.c — libFuzzer harness: any bytes as an uploaded img2img
 * start image through api/image_decode (small limits), and a decoded image through
 * image_resize to a small size.  Aborts unless a rejection is INVALID_ARGUMENT (or
 * OUT_OF_MEMORY) with a message and an empty image, an accepted image has sides within
 * the limits and pixels, and its resize succeeds at the asked size.
 *
 * Not part of ctest (needs clang's libFuzzer).  Build (the module compiled from source so
 * that the sanitizers instrument it; the decoder libraries are the system's) and run:
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I. \
 *     tests/fuzz/fuzz_image_decode.c api/image_decode.c engine/status.c \
 *     $(pkg-config --libs libpng libturbojpeg libwebp) -lm -o fuzz_image_decode
 *   mkdir -p corpus && cp tests/fixtures/images/[a-z]*.{png,jpg,webp} corpus/
 *   ./fuzz_image_decode -max_total_time=120 -max_len=8192 corpus
 */
#include <stdlib.h>
#include <string.h>

#include "api/image_decode.h"

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
        image_rgb8_free(&img);
    }
    free(copy);
    return 0;
}
