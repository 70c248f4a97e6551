/* tests/unit/test_image_fill.c — api/image_fill's push-pull hole fill: known pixels are
 * never touched; an image without holes is unchanged; a hole inside a uniform colour
 * becomes that colour (odd sizes, holes at the borders); an image that is all hole
 * becomes mid-gray; a hole between two colours is filled with values between them, the
 * side nearer each colour closer to it; the arguments are checked.
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <stdlib.h>
#include <string.h>

#include "api/image_fill.h"
#include "tests/testutil.h"

static struct image_rgb8 image_new(int w, int h)
{
    struct image_rgb8 img = {w, h, malloc((size_t)w * (size_t)h * 3)};
    ck_assert_ptr_nonnull(img.rgb);
    for (int i = 0; i < w * h * 3; i++)
        img.rgb[i] = (uint8_t)(i * 31 % 251);
    return img;
}

static struct image_gray8 mask_new(int w, int h, uint8_t v)
{
    struct image_gray8 m = {w, h, malloc((size_t)w * (size_t)h)};
    ck_assert_ptr_nonnull(m.v);
    memset(m.v, v, (size_t)w * (size_t)h);
    return m;
}

/* A w×h image of random pixels, a random mask (values around the threshold): after the
 * fill, every pixel whose mask is below 128 is as it was. */
START_TEST(test_known_untouched)
{
    struct test_rng rng = test_rng_make(7);
    for (int round = 0; round < 20; round++) {
        const int w = test_rng_int(&rng, 1, 40), h = test_rng_int(&rng, 1, 40);
        struct image_rgb8 img = image_new(w, h);
        struct image_gray8 m = mask_new(w, h, 0);
        for (int i = 0; i < w * h; i++) {
            img.rgb[3 * i] = (uint8_t)test_rng_int(&rng, 0, 255);
            m.v[i] = (uint8_t)test_rng_int(&rng, 120, 135);
        }
        uint8_t *orig = malloc((size_t)w * (size_t)h * 3);
        memcpy(orig, img.rgb, (size_t)w * (size_t)h * 3);
        ck_assert_int_eq(image_fill_holes(&img, &m, NULL), STATUS_OK);
        for (int i = 0; i < w * h; i++)
            if (m.v[i] < IMAGE_FILL_THRESHOLD)
                ck_assert_int_eq(memcmp(img.rgb + 3 * i, orig + 3 * i, 3), 0);
        free(orig);
        image_gray8_free(&m);
        image_rgb8_free(&img);
    }
}
END_TEST

START_TEST(test_no_hole_unchanged)
{
    struct image_rgb8 img = image_new(33, 17);
    struct image_gray8 m = mask_new(33, 17, 127);
    uint8_t *orig = malloc(33 * 17 * 3);
    memcpy(orig, img.rgb, 33 * 17 * 3);
    ck_assert_int_eq(image_fill_holes(&img, &m, NULL), STATUS_OK);
    ck_assert_int_eq(memcmp(img.rgb, orig, 33 * 17 * 3), 0);
    free(orig);
    image_gray8_free(&m);
    image_rgb8_free(&img);
}
END_TEST

/* Holes (inside, at a border, a corner, most of the image) in a uniform colour. */
START_TEST(test_hole_in_uniform_colour)
{
    static const struct {
        int w, h, x0, y0, x1, y1; /* the hole: [x0, x1) × [y0, y1) */
    } HOLES[] = {
        {32, 32, 10, 12, 20, 19}, {37, 21, 0, 0, 5, 21}, {37, 21, 30, 15, 37, 21},
        {9, 70, 1, 1, 8, 69},     {5, 3, 1, 1, 4, 2},    {64, 48, 2, 2, 62, 46},
    };
    for (size_t c = 0; c < sizeof HOLES / sizeof HOLES[0]; c++) {
        const int w = HOLES[c].w, h = HOLES[c].h;
        struct image_rgb8 img = image_new(w, h);
        struct image_gray8 m = mask_new(w, h, 0);
        for (int i = 0; i < w * h; i++) {
            img.rgb[3 * i] = 200, img.rgb[3 * i + 1] = 30, img.rgb[3 * i + 2] = 91;
        }
        for (int y = HOLES[c].y0; y < HOLES[c].y1; y++)
            for (int x = HOLES[c].x0; x < HOLES[c].x1; x++) {
                m.v[y * w + x] = 255;
                img.rgb[3 * (y * w + x)] = 0; /* what was there: not to be seen again */
            }
        ck_assert_int_eq(image_fill_holes(&img, &m, NULL), STATUS_OK);
        for (int i = 0; i < w * h; i++)
            ck_assert_msg(img.rgb[3 * i] == 200 && img.rgb[3 * i + 1] == 30 &&
                              img.rgb[3 * i + 2] == 91,
                          "case %zu: pixel %d is %d %d %d", c, i, img.rgb[3 * i],
                          img.rgb[3 * i + 1], img.rgb[3 * i + 2]);
        image_gray8_free(&m);
        image_rgb8_free(&img);
    }
}
END_TEST

START_TEST(test_all_hole_is_gray)
{
    static const int SIZES[][2] = {{1, 1}, {2, 1}, {17, 9}, {64, 64}};
    for (size_t c = 0; c < sizeof SIZES / sizeof SIZES[0]; c++) {
        struct image_rgb8 img = image_new(SIZES[c][0], SIZES[c][1]);
        struct image_gray8 m = mask_new(SIZES[c][0], SIZES[c][1], 255);
        ck_assert_int_eq(image_fill_holes(&img, &m, NULL), STATUS_OK);
        for (int i = 0; i < SIZES[c][0] * SIZES[c][1] * 3; i++)
            ck_assert_int_eq(img.rgb[i], IMAGE_FILL_GRAY);
        image_gray8_free(&m);
        image_rgb8_free(&img);
    }
}
END_TEST

/* Left half black, right half white, a hole across the middle: filled values lie
 * between, and the hole's left end is darker than its right end. */
START_TEST(test_hole_between_colours)
{
    const int w = 64, h = 16;
    struct image_rgb8 img = image_new(w, h);
    struct image_gray8 m = mask_new(w, h, 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            memset(img.rgb + 3 * (y * w + x), x < w / 2 ? 0 : 255, 3);
            if (x >= 20 && x < 44 && y >= 4 && y < 12)
                m.v[y * w + x] = 200;
        }
    ck_assert_int_eq(image_fill_holes(&img, &m, NULL), STATUS_OK);
    const uint8_t *row = img.rgb + 3 * (8 * w);
    ck_assert_int_lt(row[3 * 20], row[3 * 43]);
    ck_assert_int_lt(row[3 * 20], 128);
    ck_assert_int_gt(row[3 * 43], 128);
    image_gray8_free(&m);
    image_rgb8_free(&img);
}
END_TEST

START_TEST(test_arguments)
{
    struct image_rgb8 img = image_new(4, 4);
    struct image_gray8 m = mask_new(4, 3, 255);
    struct errbuf err = {0};
    ck_assert_int_eq(image_fill_holes(&img, &m, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "mask"));
    struct image_rgb8 empty = {0, 0, NULL};
    ck_assert_int_eq(image_fill_holes(&empty, &m, NULL), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_fill_holes(&img, NULL, NULL), STATUS_INVALID_ARGUMENT);
    image_gray8_free(&m);
    image_rgb8_free(&img);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image_fill");
    TCase *tc = tcase_create("push_pull");
    tcase_add_test(tc, test_known_untouched);
    tcase_add_test(tc, test_no_hole_unchanged);
    tcase_add_test(tc, test_hole_in_uniform_colour);
    tcase_add_test(tc, test_all_hole_is_gray);
    tcase_add_test(tc, test_hole_between_colours);
    tcase_add_test(tc, test_arguments);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
