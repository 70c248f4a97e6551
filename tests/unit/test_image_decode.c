/* tests/unit/test_image_decode.c — api/image_decode against Pillow: PNG (RGB, RGBA, gray,
 * gray+alpha, palette, palette+tRNS, gAMA 1.0 (ignored), 16-bit RGB and RGBA), JPEG
 * (RGB 4:2:0, gray) and WebP (lossless, lossless with alpha, lossy) decode to the pixels
 * Pillow reads (alpha flattened onto white); the size limits refuse headers that claim
 * a huge image before decoding; truncated, corrupt and garbage inputs give a clear error
 * and an empty image; image_resize equals Pillow's Image.resize(size, LANCZOS) within
 * ±1 (down, up, mixed, a large factor) and copies at the same size.  image_decode_rgba
 * keeps alpha (Pillow's RGBA bytes, the transparency flags — image_probe_rgba's from the
 * header the same —, flattening = image_decode);
 * image_resize_gray equals Pillow's LANCZOS on an "L" image exactly.  The expected bytes
 * are committed fixtures (tests/fixtures/images, made by tools/make_image_fixtures.py).
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_decode.h"
#include "tests/testutil.h"

#define IMAGES DIFFUSIOND_SOURCE_DIR "/tests/fixtures/images/"
#define SIDE 4096
#define PIXELS ((size_t)SIDE * SIDE)

static uint8_t *read_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, IMAGES "%s", name);
    return test_read_file(path, len);
}

/* max |a − b| over n bytes */
static int max_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        const int d = abs((int)a[i] - (int)b[i]);
        if (d > m)
            m = d;
    }
    return m;
}

/* Decodes fixture `name` and compares it with its .rgb within tol. */
static void check_decode(const char *name, int w, int h, int tol)
{
    size_t len, want_len;
    uint8_t *data = read_fixture(name, &len);
    char rgb_name[128];
    snprintf(rgb_name, sizeof rgb_name, "%.*s.rgb", (int)(strrchr(name, '.') - name), name);
    uint8_t *want = read_fixture(rgb_name, &want_len);
    ck_assert_uint_eq(want_len, (size_t)w * (size_t)h * 3);

    struct image_rgb8 img;
    struct errbuf err = {0};
    ck_assert_msg(image_decode(data, len, SIDE, PIXELS, &img, &err) == STATUS_OK, "%s: %s",
                  name, err.msg);
    ck_assert_int_eq(img.width, w);
    ck_assert_int_eq(img.height, h);
    int pw = 0, ph = 0; /* the header alone gives the same size */
    ck_assert_msg(image_probe(data, len, SIDE, PIXELS, &pw, &ph, &err) == STATUS_OK, "%s: %s",
                  name, err.msg);
    ck_assert_int_eq(pw, w);
    ck_assert_int_eq(ph, h);
    const int d = max_diff(img.rgb, want, want_len);
    ck_assert_msg(d <= tol, "%s: max |decoded - Pillow| = %d > %d", name, d, tol);
    image_rgb8_free(&img);
    ck_assert_ptr_null(img.rgb);
    ck_assert_int_eq(img.width, 0);
    free(want);
    free(data);
}

START_TEST(test_png)
{
    check_decode("png_rgb.png", 29, 17, 0);
    check_decode("png_rgba.png", 23, 19, 0);
    check_decode("png_gray.png", 19, 13, 0);
    check_decode("png_gray_alpha.png", 18, 11, 0);
    check_decode("png_palette.png", 21, 15, 0);
    check_decode("png_palette_trns.png", 21, 15, 0);
    check_decode("png_gamma.png", 16, 9, 0); /* gAMA 1.0 ignored, as Pillow does */
    /* Pillow keeps a 16-bit sample's high byte; libpng rounds v/257 */
    check_decode("png_rgb16.png", 17, 11, 1);
    check_decode("png_rgba16.png", 15, 13, 0);
}
END_TEST

START_TEST(test_jpeg)
{
    check_decode("jpg_rgb.jpg", 32, 24, 0);
    check_decode("jpg_gray.jpg", 24, 16, 0);
}
END_TEST

START_TEST(test_webp)
{
    check_decode("webp_lossless.webp", 27, 19, 0);
    check_decode("webp_alpha.webp", 25, 17, 0);
    check_decode("webp_lossy.webp", 31, 21, 2); /* equal today; libwebp versions may differ */
}
END_TEST

/* --- RGBA (alpha kept) ----------------------------------------------------------------- */

/* image_decode_rgba of fixture `name`: its flags, image_rgba8_flatten = image_decode's
 * pixels exactly, and (hash ≠ 0) the RGBA bytes equal Pillow's
 * Image.open(name).convert("RGBA").tobytes() (FNV-1a). */
static void check_rgba(const char *name, bool has_alpha, bool pillow_rgba, uint64_t hash)
{
    size_t len;
    uint8_t *data = read_fixture(name, &len);
    struct image_rgba8 rgba;
    struct image_rgb8 rgb, flat;
    struct errbuf err = {0};
    ck_assert_msg(image_decode_rgba(data, len, SIDE, PIXELS, &rgba, &err) == STATUS_OK, "%s: %s",
                  name, err.msg);
    ck_assert_int_eq(image_decode(data, len, SIDE, PIXELS, &rgb, &err), STATUS_OK);
    ck_assert_int_eq(rgba.width, rgb.width);
    ck_assert_int_eq(rgba.height, rgb.height);
    ck_assert_msg(rgba.has_alpha == has_alpha, "%s: has_alpha %d", name, rgba.has_alpha);
    ck_assert_msg(rgba.pillow_rgba == pillow_rgba, "%s: pillow_rgba %d", name, rgba.pillow_rgba);
    struct image_rgba8 head; /* the header alone says the same */
    ck_assert_int_eq(image_probe_rgba(data, len, SIDE, PIXELS, &head, &err), STATUS_OK);
    ck_assert_int_eq(head.width, rgba.width);
    ck_assert_int_eq(head.height, rgba.height);
    ck_assert_ptr_null(head.rgba);
    ck_assert_msg(head.has_alpha == has_alpha && head.pillow_rgba == pillow_rgba,
                  "%s: probed %d %d", name, head.has_alpha, head.pillow_rgba);
    const size_t npix = (size_t)rgb.width * (size_t)rgb.height;
    ck_assert_int_eq(image_rgba8_flatten(&rgba, &flat, &err), STATUS_OK);
    ck_assert_msg(memcmp(flat.rgb, rgb.rgb, npix * 3) == 0, "%s: flattened differs", name);
    for (size_t i = 0; !has_alpha && i < npix; i++)
        ck_assert_int_eq(rgba.rgba[4 * i + 3], 255);
    if (hash)
        ck_assert_msg(test_fnv1a(rgba.rgba, npix * 4) == hash, "%s: RGBA differs from Pillow's",
                      name);
    image_rgb8_free(&flat);
    image_rgb8_free(&rgb);
    image_rgba8_free(&rgba);
    ck_assert_ptr_null(rgba.rgba);
    free(data);
}

START_TEST(test_rgba)
{
    check_rgba("png_rgb.png", false, false, 0);
    check_rgba("png_rgba.png", true, true, 0x96f96015ddcf3b4aULL);
    check_rgba("png_rgba16.png", true, true, 0); /* 16 bits: ±1 from Pillow (see test_png) */
    check_rgba("png_gray.png", false, false, 0);
    check_rgba("png_gray_alpha.png", true, false, 0x8392aa957b032ed9ULL); /* Pillow: "LA" */
    check_rgba("png_palette.png", false, false, 0);
    check_rgba("png_palette_trns.png", true, false, 0); /* Pillow: "P" with transparency */
    check_rgba("jpg_rgb.jpg", false, false, 0);
    check_rgba("jpg_gray.jpg", false, false, 0);
    check_rgba("webp_lossless.webp", false, false, 0);
    check_rgba("webp_alpha.webp", true, true, 0xc91411baa37692b0ULL);
    check_rgba("webp_lossy.webp", false, false, 0);
    /* the same refusals and argument checks as image_decode */
    struct image_rgba8 img = {1, 1, (uint8_t *)&img, true, true};
    struct errbuf err = {0};
    ck_assert_int_eq(image_decode_rgba((const uint8_t *)"GIF89a", 6, SIDE, PIXELS, &img, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(img.rgba);
    ck_assert(!img.has_alpha);
    ck_assert_int_eq(image_decode_rgba(NULL, 0, SIDE, PIXELS, NULL, &err),
                     STATUS_INVALID_ARGUMENT);
    struct image_rgb8 flat;
    ck_assert_int_eq(image_rgba8_flatten(&img, &flat, &err), STATUS_INVALID_ARGUMENT);
    image_rgba8_free(NULL);
}
END_TEST

/* Fails unless decoding name under the limits is refused with a message containing
 * `want`, and *out is empty. */
static void check_refused_buf(const uint8_t *data, size_t len, int side, size_t pixels,
                              const char *what, const char *want)
{
    struct image_rgb8 img = {1, 1, (uint8_t *)&img}; /* garbage that must be cleared */
    struct errbuf err = {0};
    const enum status s = image_decode(data, len, side, pixels, &img, &err);
    ck_assert_msg(s == STATUS_INVALID_ARGUMENT, "%s: status %s", what, status_name(s));
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s: \"%s\" lacks \"%s\"", what, err.msg,
                  want);
    ck_assert_ptr_null(img.rgb);
    ck_assert_int_eq(img.width, 0);
    ck_assert_int_eq(img.height, 0);
}

static void check_refused(const char *name, int side, size_t pixels, const char *want)
{
    size_t len;
    uint8_t *data = read_fixture(name, &len);
    check_refused_buf(data, len, side, pixels, name, want);
    int w = -1, h = -1; /* image_probe refuses it the same way, from the header */
    struct errbuf err = {0};
    ck_assert_int_eq(image_probe(data, len, side, pixels, &w, &h, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, want) != NULL, "probe %s: \"%s\"", name, err.msg);
    free(data);
}

/* The huge.* headers carry no pixels: only a check made on the header gives the size
 * message (decoding would say corrupt/truncated). */
START_TEST(test_limits_before_decoding)
{
    check_refused("huge.png", 2048, PIXELS, "a 30000x20000 image: at most 2048 pixels a side");
    check_refused("huge.jpg", 2048, PIXELS, "a 30000x20000 image: at most 2048 pixels a side");
    check_refused("huge.webp", 2048, PIXELS, "a 16000x12000 image: at most 2048 pixels a side");
    check_refused("huge.png", 65535, 1 << 24, "a 30000x20000 image: at most 16777216 pixels");
    check_refused("huge.jpg", 65535, 1 << 24, "a 30000x20000 image: at most 16777216 pixels");
    check_refused("huge.webp", 65535, 1 << 24, "a 16000x12000 image: at most 16777216 pixels");
    /* a small real image over a small limit */
    check_refused("png_rgb.png", 28, PIXELS, "a 29x17 image: at most 28 pixels a side");
    check_refused("jpg_rgb.jpg", 64, 32 * 24 - 1, "a 32x24 image: at most 767 pixels");
    check_refused("webp_alpha.webp", 16, PIXELS, "a 25x17 image: at most 16 pixels a side");
    /* exactly at the limits: accepted */
    size_t len;
    uint8_t *data = read_fixture("png_rgb.png", &len);
    struct image_rgb8 img;
    ck_assert_int_eq(image_decode(data, len, 29, 29 * 17, &img, NULL), STATUS_OK);
    image_rgb8_free(&img);
    free(data);
}
END_TEST

/* CRC-32 (ISO-HDLC, PNG's) of n bytes. */
static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A PNG signature, an IHDR claiming w×h 8-bit RGB, an empty IDAT and IEND (57 bytes). */
static void png_header(uint8_t out[57], uint32_t w, uint32_t h)
{
    static const uint8_t tail[24] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0, 0, 0, 0,
                                     0, 0, 0, 0, 'I', 'E', 'N', 'D', 0, 0, 0, 0};
    static const uint8_t start[16] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A,
                                      0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    memcpy(out, start, 16);
    put_be32(out + 16, w);
    put_be32(out + 20, h);
    out[24] = 8; /* bit depth */
    out[25] = 2; /* RGB */
    out[26] = out[27] = out[28] = 0;
    put_be32(out + 29, crc32_png(out + 12, 17));
    memcpy(out + 33, tail, sizeof tail);
    put_be32(out + 41, crc32_png(out + 37, 4));
    put_be32(out + 53, crc32_png(out + 49, 4));
}

START_TEST(test_side_cap_and_empty)
{
    uint8_t png[57];
    /* max_side above IMAGE_DECODE_SIDE_MAX is capped to it */
    png_header(png, 70000, 10);
    check_refused_buf(png, sizeof png, 1 << 30, (size_t)1 << 40, "70000x10",
                      "a 70000x10 image: at most 65535 pixels a side");
    png_header(png, 10, 70000);
    check_refused_buf(png, sizeof png, 1 << 30, (size_t)1 << 40, "10x70000",
                      "a 10x70000 image: at most 65535 pixels a side");
    /* within the limits: then the missing pixel data is the error */
    png_header(png, 20, 10);
    check_refused_buf(png, sizeof png, SIDE, PIXELS, "no IDAT", "corrupt PNG: ");
    /* a 0-pixel side: libpng refuses such an IHDR itself */
    png_header(png, 0, 10);
    check_refused_buf(png, sizeof png, SIDE, PIXELS, "0x10 PNG", "PNG");
    /* a JPEG whose frame header says height 0 */
    size_t len;
    uint8_t *data = read_fixture("jpg_rgb.jpg", &len);
    for (size_t i = 0; i + 9 < len; i++)
        if (data[i] == 0xFF && data[i + 1] == 0xC0) {
            data[i + 5] = 0;
            data[i + 6] = 0;
            break;
        }
    check_refused_buf(data, len, SIDE, PIXELS, "0-high JPEG", "JPEG");
    free(data);
}
END_TEST

START_TEST(test_garbage)
{
    static const uint8_t text[] = "GIF89a this is not an image we read";
    check_refused_buf(text, sizeof text, SIDE, PIXELS, "GIF", "not a PNG, JPEG or WebP image");
    check_refused_buf(NULL, 0, SIDE, PIXELS, "empty", "not a PNG, JPEG or WebP image");
    check_refused_buf((const uint8_t *)"\x89PNG", 4, SIDE, PIXELS, "4 bytes",
                      "not a PNG, JPEG or WebP image");
    check_refused_buf((const uint8_t *)"RIFF\0\0\0\0WAVE", 12, SIDE, PIXELS, "WAVE",
                      "not a PNG, JPEG or WebP image");
    /* each magic followed by random bytes */
    static const struct {
        const char *magic;
        size_t n;
        const char *want;
    } kinds[] = {{"\x89PNG\r\n\x1a\n", 8, "PNG"},
                 {"\xFF\xD8\xFF", 3, "JPEG"},
                 {"RIFF\x40\0\0\0WEBP", 12, "WebP"}};
    struct test_rng rng = test_rng_make(7);
    uint8_t buf[256];
    for (int k = 0; k < 3; k++)
        for (int trial = 0; trial < 200; trial++) {
            const size_t n = kinds[k].n + (size_t)test_rng_int(&rng, 0, 200);
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)test_rng_u64(&rng);
            memcpy(buf, kinds[k].magic, kinds[k].n);
            check_refused_buf(buf, n, SIDE, PIXELS, kinds[k].magic + 1, kinds[k].want);
        }
}
END_TEST

/* Every prefix of a file shorter than len − keep is refused with a message naming the
 * format; never a crash.  The last `keep` bytes may be missing (a PNG's IEND chunk,
 * after all the pixels: libpng and Pillow both read such a file). */
static void check_prefixes(const char *name, const char *want, size_t keep)
{
    size_t len;
    uint8_t *data = read_fixture(name, &len);
    for (size_t n = 0; n + keep < len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees over-reads */
        memcpy(copy, data, n);
        char what[160];
        snprintf(what, sizeof what, "%s cut to %zu of %zu bytes", name, n, len);
        check_refused_buf(copy, n, SIDE, PIXELS, what, n < 12 ? "" : want);
        free(copy);
    }
    free(data);
}

START_TEST(test_truncated)
{
    check_prefixes("png_rgba.png", "PNG", 12);
    check_prefixes("png_palette_trns.png", "PNG", 12);
    check_prefixes("jpg_rgb.jpg", "JPEG", 0);
    check_prefixes("webp_alpha.webp", "WebP", 0);
    check_prefixes("webp_lossy.webp", "WebP", 0);
    /* the clear words for the common case: the upload was cut short */
    size_t len;
    uint8_t *data = read_fixture("jpg_rgb.jpg", &len);
    check_refused_buf(data, len / 2, SIDE, PIXELS, "half a JPEG", "truncated JPEG");
    free(data);
    data = read_fixture("webp_lossless.webp", &len);
    check_refused_buf(data, len / 2, SIDE, PIXELS, "half a WebP", "truncated WebP");
    free(data);
    data = read_fixture("png_rgb.png", &len);
    check_refused_buf(data, len / 2, SIDE, PIXELS, "half a PNG", "corrupt PNG: ");
    /* its header is whole: image_probe (which reads nothing past it) passes */
    int w = 0, h = 0;
    struct errbuf err = {0};
    ck_assert_int_eq(image_probe(data, len / 2, SIDE, PIXELS, &w, &h, &err), STATUS_OK);
    ck_assert(w == 29 && h == 17);
    free(data);
}
END_TEST

/* Random byte flips: an error with a message, or an image of the header's size. */
static void check_flips(const char *name, int w, int h)
{
    size_t len;
    uint8_t *data = read_fixture(name, &len);
    struct test_rng rng = test_rng_make(11);
    uint8_t *copy = malloc(len);
    int refused = 0;
    for (int trial = 0; trial < 300; trial++) {
        memcpy(copy, data, len);
        const int flips = test_rng_int(&rng, 1, 4);
        for (int f = 0; f < flips; f++)
            copy[test_rng_int(&rng, 3, (int)len - 1)] ^= (uint8_t)test_rng_int(&rng, 1, 255);
        struct image_rgb8 img;
        struct errbuf err = {0};
        const enum status s = image_decode(copy, len, SIDE, PIXELS, &img, &err);
        if (s == STATUS_OK) {
            ck_assert_int_ge(img.width, 1);
            ck_assert_int_ge(img.height, 1);
            ck_assert_ptr_nonnull(img.rgb);
            (void)w;
            (void)h;
        } else {
            ck_assert_int_eq(s, STATUS_INVALID_ARGUMENT);
            ck_assert_msg(err.msg[0] != '\0', "%s: an error without a message", name);
            ck_assert_ptr_null(img.rgb);
            refused++;
        }
        image_rgb8_free(&img);
    }
    ck_assert_int_gt(refused, 0);
    free(copy);
    free(data);
}

START_TEST(test_corrupt)
{
    check_flips("png_rgb.png", 29, 17);
    check_flips("jpg_rgb.jpg", 32, 24);
    check_flips("webp_lossless.webp", 27, 19);
    check_flips("webp_lossy.webp", 31, 21);
    /* a PNG whose IHDR CRC is wrong names libpng's reason */
    size_t len;
    uint8_t *data = read_fixture("png_rgb.png", &len);
    data[29] ^= 0xFF; /* IHDR's CRC: bytes 29…32 */
    check_refused_buf(data, len, SIDE, PIXELS, "IHDR CRC", "corrupt PNG: ");
    free(data);
}
END_TEST

START_TEST(test_bad_arguments)
{
    size_t len;
    uint8_t *data = read_fixture("png_rgb.png", &len);
    struct image_rgb8 img;
    struct errbuf err = {0};
    ck_assert_int_eq(image_decode(data, len, 0, PIXELS, &img, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "max_side"));
    ck_assert_int_eq(image_decode(data, len, SIDE, 0, &img, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_decode(data, len, SIDE, PIXELS, NULL, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_decode(NULL, 5, SIDE, PIXELS, &img, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_decode(data, len, SIDE, PIXELS, &img, NULL), STATUS_OK);
    struct image_rgb8 out;
    ck_assert_int_eq(image_resize(&img, 0, 5, &out, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(out.rgb);
    ck_assert_int_eq(image_resize(&img, 5, 70000, &out, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_resize(&img, 5, 5, &img, &err), STATUS_INVALID_ARGUMENT);
    struct image_rgb8 empty = {0, 0, NULL};
    ck_assert_int_eq(image_resize(&empty, 5, 5, &out, &err), STATUS_INVALID_ARGUMENT);
    image_rgb8_free(&img);
    image_rgb8_free(&img); /* twice: it was zeroed */
    image_rgb8_free(NULL);
    free(data);
}
END_TEST

/* resize_src.png to w×h against Pillow's LANCZOS within ±1 (measured: equal). */
static void check_resize(int w, int h)
{
    size_t len, want_len;
    uint8_t *data = read_fixture("resize_src.png", &len);
    char name[64];
    snprintf(name, sizeof name, "resize_%dx%d.rgb", w, h);
    uint8_t *want = read_fixture(name, &want_len);
    ck_assert_uint_eq(want_len, (size_t)w * (size_t)h * 3);
    struct image_rgb8 src, out;
    struct errbuf err = {0};
    ck_assert_int_eq(image_decode(data, len, SIDE, PIXELS, &src, &err), STATUS_OK);
    ck_assert_int_eq(src.width, 48);
    ck_assert_int_eq(src.height, 40);
    ck_assert_msg(image_resize(&src, w, h, &out, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(out.width, w);
    ck_assert_int_eq(out.height, h);
    const int d = max_diff(out.rgb, want, want_len);
    ck_assert_msg(d <= 1, "%s: max |ours - Pillow| = %d", name, d);
    image_rgb8_free(&out);
    image_rgb8_free(&src);
    free(want);
    free(data);
}

START_TEST(test_resize_pillow)
{
    check_resize(17, 13); /* down, ≈ 2.8x */
    check_resize(64, 56); /* up, ≈ 1.4x */
    check_resize(61, 9);  /* up along x, down 4.4x along y */
    check_resize(5, 3);   /* down ≈ 10x: a wide window, clipped at both edges */
}
END_TEST

START_TEST(test_resize_same_size_and_one_axis)
{
    size_t len;
    uint8_t *data = read_fixture("resize_src.png", &len);
    struct image_rgb8 src, out, out2;
    ck_assert_int_eq(image_decode(data, len, SIDE, PIXELS, &src, NULL), STATUS_OK);
    ck_assert_int_eq(image_resize(&src, 48, 40, &out, NULL), STATUS_OK);
    ck_assert_ptr_ne(out.rgb, src.rgb);
    ck_assert_int_eq(memcmp(out.rgb, src.rgb, 48 * 40 * 3), 0);
    image_rgb8_free(&out);
    /* one axis only: a constant image stays constant (weights sum to one) */
    memset(src.rgb, 77, 48 * 40 * 3);
    ck_assert_int_eq(image_resize(&src, 48, 7, &out, NULL), STATUS_OK);
    ck_assert_int_eq(image_resize(&src, 100, 40, &out2, NULL), STATUS_OK);
    for (int i = 0; i < 48 * 7 * 3; i++)
        ck_assert_int_eq(out.rgb[i], 77);
    for (int i = 0; i < 100 * 40 * 3; i++)
        ck_assert_int_eq(out2.rgb[i], 77);
    image_rgb8_free(&out);
    image_rgb8_free(&out2);
    /* to a single pixel and from one */
    ck_assert_int_eq(image_resize(&src, 1, 1, &out, NULL), STATUS_OK);
    ck_assert_int_eq(out.rgb[0], 77);
    ck_assert_int_eq(image_resize(&out, 9, 4, &out2, NULL), STATUS_OK);
    ck_assert_int_eq(out2.rgb[9 * 4 * 3 - 1], 77);
    image_rgb8_free(&out);
    image_rgb8_free(&out2);
    image_rgb8_free(&src);
    free(data);
}
END_TEST

/* image_resize_gray against Pillow's LANCZOS on an "L" image (FNV-1a of its bytes, Pillow
 * 13), and against image_resize's RGB path on the plane copied to R, G and B. */
static void check_resize_gray(int w, int h, uint64_t hash)
{
    struct image_gray8 src = {48, 40, malloc(48 * 40)}, out;
    struct image_rgb8 rgb = {48, 40, malloc(48 * 40 * 3)}, rgb_out;
    ck_assert_ptr_nonnull(src.v);
    ck_assert_ptr_nonnull(rgb.rgb);
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 48; x++) {
            const uint8_t v = (uint8_t)((x * 37 + y * 91 + ((x * y) % 13) * 11) & 255);
            src.v[y * 48 + x] = v;
            memset(rgb.rgb + 3 * (y * 48 + x), v, 3);
        }
    struct errbuf err = {0};
    ck_assert_msg(image_resize_gray(&src, w, h, &out, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(image_resize(&rgb, w, h, &rgb_out, &err), STATUS_OK);
    ck_assert_int_eq(out.width, w);
    ck_assert_int_eq(out.height, h);
    for (int i = 0; i < w * h; i++)
        ck_assert_msg(out.v[i] == rgb_out.rgb[3 * i], "%dx%d: pixel %d: gray %d, RGB %d", w, h,
                      i, out.v[i], rgb_out.rgb[3 * i]);
    ck_assert_msg(test_fnv1a(out.v, (size_t)w * (size_t)h) == hash, "%dx%d: differs from Pillow's",
                  w, h);
    image_gray8_free(&out);
    image_gray8_free(&src);
    image_rgb8_free(&rgb_out);
    image_rgb8_free(&rgb);
}

START_TEST(test_resize_gray_pillow)
{
    check_resize_gray(17, 13, 0x213b7250736fc579ULL);
    check_resize_gray(64, 56, 0xefe1b29fa7c1d0b3ULL);
    check_resize_gray(61, 9, 0x5099e5bbe890f034ULL); /* vertical pass first */
    check_resize_gray(5, 3, 0xb83263eabdbefc31ULL);
    check_resize_gray(48, 7, 0x67e3b47510b6e9f6ULL); /* one axis */
    check_resize_gray(100, 40, 0x896e97f90ea8b46dULL);
    struct image_gray8 empty = {0, 0, NULL}, out;
    ck_assert_int_eq(image_resize_gray(&empty, 5, 5, &out, NULL), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(out.v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image_decode");
    TCase *tc = tcase_create("decode");
    tcase_add_test(tc, test_png);
    tcase_add_test(tc, test_jpeg);
    tcase_add_test(tc, test_webp);
    tcase_add_test(tc, test_limits_before_decoding);
    tcase_add_test(tc, test_side_cap_and_empty);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_corrupt);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_rgba);
    suite_add_tcase(s, tc);
    TCase *rs = tcase_create("resize");
    tcase_add_test(rs, test_resize_pillow);
    tcase_add_test(rs, test_resize_same_size_and_one_axis);
    tcase_add_test(rs, test_resize_gray_pillow);
    suite_add_tcase(s, rs);
    return test_run_suite(s);
}
