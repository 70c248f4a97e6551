/* tests/unit/test_image_mask.c — api/image_mask against Pillow 13: the luma of decoded
 * fixtures (convert("L")), A1111's mask rule (an RGBA image's alpha binarized at 128,
 * else the luma), OpenAI's 255 − alpha, invert, and GaussianBlur of a hard-edged mask at
 * several radii, per axis and at 0 — every byte equal (FNV-1a of Pillow's bytes, made
 * with the venv's Pillow: Image.open(f).convert("L").tobytes(),
 * im.filter(ImageFilter.GaussianBlur(r)).tobytes()).
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_mask.h"
#include "tests/testutil.h"

#define IMAGES DIFFUSIOND_SOURCE_DIR "/tests/fixtures/images/"

static struct image_rgba8 decode_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, IMAGES "%s", name);
    size_t len;
    uint8_t *data = test_read_file(path, &len);
    struct image_rgba8 img;
    struct errbuf err = {0};
    ck_assert_msg(image_decode_rgba(data, len, 4096, 4096 * 4096, &img, &err) == STATUS_OK,
                  "%s: %s", name, err.msg);
    free(data);
    return img;
}

static uint64_t plane_hash(const struct image_gray8 *m)
{
    return test_fnv1a(m->v, (size_t)m->width * (size_t)m->height);
}

START_TEST(test_luma_and_a1111)
{
    static const struct {
        const char *name;
        uint64_t luma, a1111; /* a1111 0: the luma (not an RGBA image) */
    } CASES[] = {
        {"png_rgba.png", 0x9e2417b66098be0fULL, 0xf9e81e437d9d6722ULL},
        {"webp_alpha.webp", 0x4735102c17047e5dULL, 0xa63679a68132b04bULL},
        {"jpg_rgb.jpg", 0x71f7d26adaee5e19ULL, 0},
        {"png_gray_alpha.png", 0xc3aecab499529270ULL, 0}, /* Pillow: "LA", its alpha unread */
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        struct image_rgba8 img = decode_fixture(CASES[c].name);
        struct image_gray8 luma, a1111;
        ck_assert_int_eq(image_mask_luma(&img, &luma, NULL), STATUS_OK);
        ck_assert_int_eq(image_mask_a1111(&img, &a1111, NULL), STATUS_OK);
        ck_assert_int_eq(luma.width, img.width);
        ck_assert_int_eq(luma.height, img.height);
        ck_assert_msg(plane_hash(&luma) == CASES[c].luma, "%s: luma differs from Pillow's",
                      CASES[c].name);
        const uint64_t want = CASES[c].a1111 ? CASES[c].a1111 : CASES[c].luma;
        ck_assert_msg(plane_hash(&a1111) == want, "%s: A1111's mask differs", CASES[c].name);
        image_gray8_free(&luma);
        image_gray8_free(&a1111);
        image_rgba8_free(&img);
    }
    /* gray pixels give their own value; an opaque RGBA image gives its luma */
    uint8_t px[4 * 3] = {7, 7, 7, 255, 200, 200, 200, 255, 255, 0, 0, 255};
    struct image_rgba8 opaque = {3, 1, px, true, true};
    struct image_gray8 m;
    ck_assert_int_eq(image_mask_a1111(&opaque, &m, NULL), STATUS_OK);
    ck_assert_int_eq(m.v[0], 7);
    ck_assert_int_eq(m.v[1], 200);
    ck_assert_int_eq(m.v[2], 76); /* (255·19595 + 0x8000) >> 16 */
    image_gray8_free(&m);
    /* with some transparency: alpha > 128 → 255, else 0, whatever the colour */
    px[3] = 129, px[7] = 128, px[11] = 0;
    ck_assert_int_eq(image_mask_a1111(&opaque, &m, NULL), STATUS_OK);
    ck_assert_int_eq(m.v[0], 255);
    ck_assert_int_eq(m.v[1], 0);
    ck_assert_int_eq(m.v[2], 0);
    image_gray8_free(&m);
    struct image_rgba8 empty = {0, 0, NULL, false, false};
    ck_assert_int_eq(image_mask_luma(&empty, &m, NULL), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m.v);
}
END_TEST

START_TEST(test_alpha_and_invert)
{
    uint8_t px[4 * 3] = {1, 2, 3, 0, 4, 5, 6, 255, 7, 8, 9, 100};
    struct image_rgba8 img = {3, 1, px, true, true};
    struct image_gray8 m;
    ck_assert_int_eq(image_mask_alpha(&img, &m, NULL), STATUS_OK);
    ck_assert_int_eq(m.v[0], 255); /* transparent: repaint */
    ck_assert_int_eq(m.v[1], 0);   /* opaque: keep */
    ck_assert_int_eq(m.v[2], 155);
    ck_assert(image_mask_any_transparent(&img));
    image_mask_invert(&m);
    ck_assert_int_eq(m.v[0], 0);
    ck_assert_int_eq(m.v[1], 255);
    ck_assert_int_eq(m.v[2], 100);
    image_gray8_free(&m);
    px[3] = 1;
    ck_assert(!image_mask_any_transparent(&img));
    px[3] = 0;
    img.has_alpha = false; /* a file without transparency carries no mask */
    ck_assert(!image_mask_any_transparent(&img));
}
END_TEST

/* A 37×23 mask: a rectangle of 255 (x 10…25, y 5…15) and a diagonal line. */
static struct image_gray8 edge_mask(void)
{
    struct image_gray8 m = {37, 23, malloc(37 * 23)};
    ck_assert_ptr_nonnull(m.v);
    for (int y = 0; y < 23; y++)
        for (int x = 0; x < 37; x++)
            m.v[y * 37 + x] = ((x >= 10 && x < 26 && y >= 5 && y < 16) || x == y) ? 255 : 0;
    return m;
}

START_TEST(test_blur_pillow)
{
    static const struct {
        double rx, ry;
        uint64_t hash;
    } CASES[] = {
        {4, 4, 0x74f6154f86c2e918ULL},   /* A1111's default mask_blur */
        {1, 1, 0x337b582701abcce5ULL},   {2, 2, 0xb2691d0acc08e5afULL},
        {3, 3, 0xbc35ec4917cce4d2ULL},   {8, 8, 0xbb15502a8ebbd7c9ULL},
        {30, 30, 0xc3effa44bd93dbc8ULL}, /* boxes wider than the mask */
        {3, 0, 0xbcf192081ac9bf4cULL},   /* one axis */
        {0, 5, 0xda69c8ab76b754edULL},   {0.5, 0.5, 0x826f52d728eff1f8ULL},
        {100, 100, 0x6a3fee85b6d18853ULL},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        struct image_gray8 m = edge_mask();
        struct errbuf err = {0};
        ck_assert_msg(image_mask_blur(&m, CASES[c].rx, CASES[c].ry, &err) == STATUS_OK, "%s",
                      err.msg);
        ck_assert_msg(plane_hash(&m) == CASES[c].hash,
                      "GaussianBlur((%g, %g)) differs from Pillow's; row 10: %d %d %d %d %d %d",
                      CASES[c].rx, CASES[c].ry, m.v[370], m.v[371], m.v[372], m.v[373],
                      m.v[374], m.v[375]);
        image_gray8_free(&m);
    }
    /* radius 0: unchanged; the hard edge becomes soft at 4 */
    struct image_gray8 m = edge_mask(), orig = edge_mask();
    ck_assert_int_eq(image_mask_blur(&m, 0, 0, NULL), STATUS_OK);
    ck_assert_int_eq(memcmp(m.v, orig.v, 37 * 23), 0);
    ck_assert_int_eq(image_mask_blur(&m, 4, 4, NULL), STATUS_OK);
    const uint8_t *row = m.v + 10 * 37;
    ck_assert_int_gt(row[9], 0);
    ck_assert_int_lt(row[9], 255);
    ck_assert_int_gt(row[10], row[9]);
    ck_assert_int_eq(image_mask_blur(&m, -1, 0, NULL), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_mask_blur(&m, 0, IMAGE_MASK_BLUR_MAX + 1, NULL),
                     STATUS_INVALID_ARGUMENT);
    image_gray8_free(&m);
    image_gray8_free(&orig);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image_mask");
    TCase *tc = tcase_create("masks");
    tcase_add_test(tc, test_luma_and_a1111);
    tcase_add_test(tc, test_alpha_and_invert);
    tcase_add_test(tc, test_blur_pillow);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
