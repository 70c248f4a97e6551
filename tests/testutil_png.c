/* tests/testutil_png.c — PNG files for the image routes' tests (tests/testutil_png.h). */
#include "tests/testutil_png.h"

#include <check.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "api/base64.h"

uint8_t *test_png_encode(const uint8_t *px, int w, int h, int channels, size_t *len)
{
    static const png_uint_32 FORMATS[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB,
                                           PNG_FORMAT_RGBA};
    ck_assert(channels >= 1 && channels <= 4);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = FORMATS[channels];
    png_alloc_size_t size = 0;
    ck_assert(png_image_write_to_memory(&img, NULL, &size, 0, px, 0, NULL));
    uint8_t *out = malloc(size);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(png_image_write_to_memory(&img, out, &size, 0, px, 0, NULL), "%s", img.message);
    *len = size;
    return out;
}

char *test_png_base64(const uint8_t *px, int w, int h, int channels)
{
    size_t len = 0;
    uint8_t *png = test_png_encode(px, w, h, channels, &len);
    char *b64 = malloc(base64_encoded_len(len) + 1);
    ck_assert_ptr_nonnull(b64);
    b64[base64_encode(png, len, b64)] = '\0';
    free(png);
    return b64;
}
