/* tests/unit/test_image_encode.c — api/image_encode: PNG decoded back with libpng is
 * exact and carries the A1111 "parameters" tEXt chunk; JPEG decoded with tjDecompress2
 * is within PSNR > 30 dB at quality 90; WebP decoded with libwebp is exact at quality
 * 100 (lossless) and > 30 dB lossy, smaller at lower quality; image_encode dispatches
 * each format; invalid arguments are errors naming them; files by extension.
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <webp/decode.h>

#include "api/image_encode.h"
#include "tests/testutil.h"

#define W 67
#define H 45

/* A smooth gradient with some texture (JPEG-friendly, not constant). */
static uint8_t *test_image(void)
{
    uint8_t *rgb = malloc(W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = rgb + (y * W + x) * 3;
            p[0] = (uint8_t)(255 * x / (W - 1));
            p[1] = (uint8_t)(255 * y / (H - 1));
            p[2] = (uint8_t)(128 + 100 * sin(x * 0.2) * cos(y * 0.15));
        }
    return rgb;
}

struct png_read_src {
    const uint8_t *data;
    size_t len, pos;
};

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    struct png_read_src *src = png_get_io_ptr(png);
    ck_assert_uint_le(src->pos + n, src->len);
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

/* Decodes an 8-bit RGB PNG; returns the pixels and the "parameters" text (or NULL). */
static uint8_t *png_decode(const uint8_t *data, size_t len, int *w, int *h, char **params)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
    struct png_read_src src = {data, len, 0};
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    ck_assert_int_eq(png_get_bit_depth(png, info), 8);
    ck_assert_int_eq(png_get_color_type(png, info), PNG_COLOR_TYPE_RGB);
    uint8_t *rgb = malloc((size_t)*w * (size_t)*h * 3);
    for (int y = 0; y < *h; y++)
        png_read_row(png, rgb + (size_t)y * (size_t)*w * 3, NULL);
    png_read_end(png, info);
    png_textp text;
    int n = 0;
    *params = NULL;
    png_get_text(png, info, &text, &n);
    for (int i = 0; i < n; i++)
        if (strcmp(text[i].key, "parameters") == 0)
            *params = strdup(text[i].text);
    png_destroy_read_struct(&png, &info, NULL);
    return rgb;
}

START_TEST(test_png_roundtrip)
{
    uint8_t *rgb = test_image();
    struct image_meta meta = {.prompt = "a café, 🐶", .negative_prompt = "blurry",
                              .steps = 20, .sampler = "DPM++ 2M Karras", .cfg = 7.5,
                              .seed = 1234567890123ull, .width = W, .height = H,
                              .model = "sd15", .clip_skip = 2};
    uint8_t *png;
    size_t len;
    struct errbuf err;
    ck_assert_msg(image_encode_png(rgb, W, H, &meta, &png, &len, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(memcmp(png, "\x89PNG\r\n\x1a\n", 8), 0);
    int w, h;
    char *params;
    uint8_t *back = png_decode(png, len, &w, &h, &params);
    ck_assert_int_eq(w, W);
    ck_assert_int_eq(h, H);
    ck_assert_int_eq(memcmp(back, rgb, W * H * 3), 0);
    ck_assert_ptr_nonnull(params);
    ck_assert_str_eq(params, "a café, 🐶\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M "
                             "Karras, CFG scale: 7.5, Seed: 1234567890123, Size: 67x45, Model: "
                             "sd15, Clip skip: 2");
    free(params);
    free(back);
    free(png);
    /* no meta: no text chunk; no negative prompt: no line for it */
    ck_assert_int_eq(image_encode_png(rgb, W, H, NULL, &png, &len, &err), STATUS_OK);
    back = png_decode(png, len, &w, &h, &params);
    ck_assert_ptr_null(params);
    free(back);
    free(png);
    char buf[256];
    meta.negative_prompt = "";
    meta.clip_skip = 1;
    image_parameters_format(&meta, buf, sizeof buf);
    ck_assert_ptr_null(strstr(buf, "Negative prompt"));
    ck_assert_ptr_null(strstr(buf, "Clip skip"));
    free(rgb);
}
END_TEST

START_TEST(test_meta_for_params)
{
    struct gen_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "a cat";
    p.negative_prompt = "dog";
    p.steps = 25;
    p.guidance = 6.5;
    p.sampler = SAMPLER_DPMPP_2M;
    p.scheduler = SD_SCHEDULER_KARRAS;
    p.clip_skip = 1;
    const struct sd_image img = {.width = 96, .height = 64, .seed = 77};
    const struct image_meta m = image_meta_for(&p, "sd15", &img);
    char buf[256];
    image_parameters_format(&m, buf, sizeof buf);
    ck_assert_str_eq(buf, "a cat\nNegative prompt: dog\nSteps: 25, Sampler: DPM++ 2M Karras, "
                          "CFG scale: 6.5, Seed: 77, Size: 96x64, Model: sd15, Clip skip: 2");
}
END_TEST

START_TEST(test_jpeg_roundtrip)
{
    uint8_t *rgb = test_image();
    uint8_t *jpg;
    size_t len;
    struct errbuf err;
    ck_assert_msg(image_encode_jpeg(rgb, W, H, 90, &jpg, &len, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(jpg[0], 0xFF);
    ck_assert_int_eq(jpg[1], 0xD8);
    tjhandle tj = tjInitDecompress();
    int w, h, sub, cs;
    ck_assert_int_eq(tjDecompressHeader3(tj, jpg, len, &w, &h, &sub, &cs), 0);
    ck_assert_int_eq(w, W);
    ck_assert_int_eq(h, H);
    uint8_t *back = malloc(W * H * 3);
    ck_assert_int_eq(tjDecompress2(tj, jpg, len, back, W, 0, H, TJPF_RGB, 0), 0);
    tjDestroy(tj);
    double se = 0;
    for (int i = 0; i < W * H * 3; i++) {
        const double d = (back[i] - rgb[i]) / 255.0;
        se += d * d;
    }
    const double db = 10 * log10(1.0 / (se / (W * H * 3)));
    printf("jpeg q90: %zu bytes, PSNR %.2f dB\n", len, db);
    ck_assert_msg(db > 30, "PSNR %.2f dB", db);
    free(back);
    free(jpg);
    free(rgb);
}
END_TEST

START_TEST(test_invalid_arguments)
{
    uint8_t *rgb = test_image(), *out;
    size_t len;
    struct errbuf err;
    ck_assert_int_eq(image_encode_jpeg(rgb, W, H, 0, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "quality"));
    ck_assert_int_eq(image_encode_jpeg(rgb, W, H, 101, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_encode_png(NULL, W, H, NULL, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "rgb"));
    ck_assert_int_eq(image_encode_png(rgb, 0, H, NULL, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "width"));
    ck_assert_int_eq(image_encode_jpeg(rgb, W, -3, 50, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "height"));
    ck_assert_int_eq(image_encode_png(rgb, W, H, NULL, NULL, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_write_file("/nonexistent-dir/x.png", IMAGE_PNG, rgb, W, H, 90, NULL,
                                      &err),
                     STATUS_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent-dir/x.png"));
    free(rgb);
}
END_TEST

/* PSNR in dB of b against a over n bytes. */
static double psnr(const uint8_t *a, const uint8_t *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (a[i] - b[i]) / 255.0;
        se += d * d;
    }
    return se == 0 ? INFINITY : 10 * log10(1.0 / (se / (double)n));
}

/* Encodes at quality, decodes with libwebp (its own decoder, not our code), returns the
 * pixels and the encoded size. */
static uint8_t *webp_roundtrip(const uint8_t *rgb, int quality, size_t *encoded)
{
    uint8_t *webp;
    size_t len;
    struct errbuf err;
    ck_assert_msg(image_encode_webp(rgb, W, H, quality, &webp, &len, &err) == STATUS_OK, "%s",
                  err.msg);
    ck_assert_uint_gt(len, 12);
    ck_assert_int_eq(memcmp(webp, "RIFF", 4), 0);
    ck_assert_int_eq(memcmp(webp + 8, "WEBP", 4), 0);
    WebPBitstreamFeatures feat;
    ck_assert_int_eq(WebPGetFeatures(webp, len, &feat), VP8_STATUS_OK);
    ck_assert_int_eq(feat.width, W);
    ck_assert_int_eq(feat.height, H);
    ck_assert_int_eq(feat.has_alpha, 0);
    ck_assert_int_eq(feat.format, quality == 100 ? 2 : 1); /* 2 lossless, 1 lossy */
    int w = 0, h = 0;
    uint8_t *dec = WebPDecodeRGB(webp, len, &w, &h);
    ck_assert_ptr_nonnull(dec);
    ck_assert_int_eq(w, W);
    ck_assert_int_eq(h, H);
    uint8_t *back = malloc(W * H * 3);
    memcpy(back, dec, W * H * 3);
    WebPFree(dec);
    free(webp);
    *encoded = len;
    return back;
}

START_TEST(test_webp_roundtrip)
{
    uint8_t *rgb = test_image();
    size_t len100, len90, len20;
    uint8_t *back = webp_roundtrip(rgb, 100, &len100);
    ck_assert_int_eq(memcmp(back, rgb, W * H * 3), 0); /* lossless: exact */
    free(back);
    back = webp_roundtrip(rgb, 90, &len90);
    const double db90 = psnr(rgb, back, W * H * 3);
    free(back);
    back = webp_roundtrip(rgb, 20, &len20);
    const double db20 = psnr(rgb, back, W * H * 3);
    free(back);
    printf("webp: q100 %zu bytes (lossless), q90 %zu bytes %.2f dB, q20 %zu bytes %.2f dB\n",
           len100, len90, db90, len20, db20);
    ck_assert_msg(db90 > 30, "q90 PSNR %.2f dB", db90);
    ck_assert_msg(db20 > 20 && db20 < db90, "q20 PSNR %.2f dB (q90 %.2f)", db20, db90);
    ck_assert_uint_lt(len20, len90);
    back = webp_roundtrip(rgb, 0, &len20); /* 0 is a valid quality */
    free(back);
    free(rgb);
}
END_TEST

START_TEST(test_dispatch_every_format)
{
    uint8_t *rgb = test_image();
    struct errbuf err;
    static const struct {
        enum image_format f;
        int quality;
        const char *magic;
        size_t magic_len;
    } cases[] = {
        {IMAGE_PNG, 0, "\x89PNG", 4},
        {IMAGE_JPEG, 0, "\xFF\xD8", 2}, /* quality 0 → JPEG's 1 */
        {IMAGE_JPEG, 100, "\xFF\xD8", 2},
        {IMAGE_WEBP, 50, "RIFF", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *out = NULL;
        size_t len = 0;
        ck_assert_msg(image_encode(cases[i].f, rgb, W, H, cases[i].quality, NULL, &out, &len,
                                   &err) == STATUS_OK,
                      "case %zu: %s", i, err.msg);
        ck_assert_int_eq(memcmp(out, cases[i].magic, cases[i].magic_len), 0);
        free(out);
    }
    uint8_t *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(image_encode((enum image_format)7, rgb, W, H, 90, NULL, &out, &len, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "format"));
    ck_assert_int_eq(image_encode_webp(rgb, W, H, -1, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "quality"));
    ck_assert_int_eq(image_encode_webp(rgb, W, H, 101, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_encode_webp(NULL, W, H, 80, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_encode_webp(rgb, 0, H, 80, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "width"));
    /* WebP's own limit is 16383 per side (PNG/JPEG go to IMAGE_MAX_SIDE) */
    uint8_t *wide = calloc((size_t)16384 * 3, 1);
    ck_assert_int_eq(image_encode_webp(wide, 16384, 1, 80, &out, &len, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "16383"));
    free(wide);
    free(rgb);
}
END_TEST

START_TEST(test_files_by_extension)
{
    ck_assert_int_eq(image_format_for_path("a/b.JPG"), IMAGE_JPEG);
    ck_assert_int_eq(image_format_for_path("x.jpeg"), IMAGE_JPEG);
    ck_assert_int_eq(image_format_for_path("x.png"), IMAGE_PNG);
    ck_assert_int_eq(image_format_for_path("x.jpg.d/noext"), IMAGE_PNG);
    ck_assert_int_eq(image_format_for_path("x.WebP"), IMAGE_WEBP);
    uint8_t *rgb = test_image();
    char path[] = "/tmp/diffusiond-test-image-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(path));
    char file[128];
    snprintf(file, sizeof file, "%s/out.jpg", path);
    struct errbuf err;
    ck_assert_int_eq(image_write_file(file, image_format_for_path(file), rgb, W, H, 80, NULL, &err),
                     STATUS_OK);
    FILE *f = fopen(file, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char magic[2];
    ck_assert_int_eq(fread(magic, 1, 2, f), 2);
    fclose(f);
    ck_assert(magic[0] == 0xFF && magic[1] == 0xD8);
    remove(file);
    remove(path);
    free(rgb);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image_encode");
    TCase *tc = tcase_create("encode");
    tcase_add_test(tc, test_png_roundtrip);
    tcase_add_test(tc, test_meta_for_params);
    tcase_add_test(tc, test_jpeg_roundtrip);
    tcase_add_test(tc, test_invalid_arguments);
    tcase_add_test(tc, test_webp_roundtrip);
    tcase_add_test(tc, test_dispatch_every_format);
    tcase_add_test(tc, test_files_by_extension);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
