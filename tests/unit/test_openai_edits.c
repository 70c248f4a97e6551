/* tests/unit/test_openai_edits.c — api/openai_edits (POST /v1/images/edits): multipart
 * forms built here as curl -F writes them, parsed, resolved against the tiny SD1
 * fixture and finished: the image's size by default, the text fields read as numbers
 * where the field is one, the strength applied, the image resized into params; the
 * mask part (255 − alpha, resized with the image, the strength's default 1) and an
 * image with transparent pixels as its own mask; and each malformed form (masks without
 * alpha, of another size, twice, not an image among them) rejected at its stage with
 * the field named.
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_encode.h"
#include "api/openai_edits.h"
#include "tests/testutil.h"
#include "tests/testutil_png.h"

#define BOUNDARY "------------------------d74496d66958873e"
#define CONTENT_TYPE "multipart/form-data; boundary=" BOUNDARY

static struct sd_model *g_model; /* sd1-tiny: 64x64 native */

static void load_model(void)
{
    g_model = test_load_sd1_tiny();
}

static void free_model(void)
{
    sd_model_free(g_model);
    g_model = NULL;
}

/* A growing multipart body. */
struct form {
    uint8_t *data;
    size_t len, cap;
};

static void put(struct form *f, const void *p, size_t n)
{
    if (f->len + n > f->cap) {
        f->cap = (f->len + n) * 2;
        f->data = realloc(f->data, f->cap);
        ck_assert_ptr_nonnull(f->data);
    }
    memcpy(f->data + f->len, p, n);
    f->len += n;
}

static void put_str(struct form *f, const char *s)
{
    put(f, s, strlen(s));
}

/* One part: a text field (filename NULL) or a file. */
static void part(struct form *f, const char *name, const char *filename, const void *data,
                 size_t n)
{
    char head[256];
    if (filename)
        snprintf(head, sizeof head,
                 "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"%s\"; "
                 "filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                 name, filename);
    else
        snprintf(head, sizeof head,
                 "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n", name);
    put_str(f, head);
    put(f, data, n);
    put_str(f, "\r\n");
}

static void text(struct form *f, const char *name, const char *value)
{
    part(f, name, NULL, value, strlen(value));
}

/* A w×h PNG file part named `name`. */
static void png_part(struct form *f, const char *name, int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    ck_assert_ptr_nonnull(rgb);
    for (int i = 0; i < w * h * 3; i++)
        rgb[i] = (uint8_t)(i * 13 % 253);
    uint8_t *png = NULL;
    size_t len = 0;
    struct errbuf err;
    ck_assert_int_eq(image_encode_png(rgb, w, h, NULL, &png, &len, &err), STATUS_OK);
    part(f, name, "start.png", png, len);
    free(png);
    free(rgb);
}

/* A w×h RGBA PNG file part: colour as png_part's, alpha 0 (transparent: to edit) in
 * the rectangle [0, hole_w) × [0, hole_h), `rest` elsewhere. */
static void rgba_part(struct form *f, const char *name, int w, int h, int hole_w, int hole_h,
                      uint8_t rest)
{
    uint8_t *px = malloc((size_t)w * (size_t)h * 4);
    ck_assert_ptr_nonnull(px);
    for (int i = 0; i < w * h; i++) {
        for (int c = 0; c < 3; c++)
            px[4 * i + c] = (uint8_t)((3 * i + c) * 13 % 253);
        px[4 * i + 3] = i % w < hole_w && i / w < hole_h ? 0 : rest;
    }
    size_t len = 0;
    uint8_t *png = test_png_encode(px, w, h, 4, &len);
    part(f, name, "mask.png", png, len);
    free(png);
    free(px);
}

static void close_form(struct form *f)
{
    put_str(f, "--" BOUNDARY "--\r\n");
}

enum stage { AT_PARSE, AT_RESOLVE, AT_FINISH, PASSED };

/* Parse, resolve, finish; the stage it stopped at (PASSED: all three succeeded). */
static enum stage run(const struct form *f, const char *content_type,
                      struct openai_edit_request *r, struct api_error *e)
{
    struct api_limits lim;
    api_limits_default(&lim);
    memset(e, 0, sizeof *e);
    if (openai_edits_parse(content_type, f->data, f->len, &lim, r, e) != STATUS_OK)
        return AT_PARSE;
    if (openai_images_resolve(g_model, &lim, 77, &r->req, e) != STATUS_OK)
        return AT_RESOLVE;
    if (openai_edits_finish(r, e) != STATUS_OK)
        return AT_FINISH;
    return PASSED;
}

START_TEST(test_form_as_curl_sends_it)
{
    ck_assert_ptr_nonnull(g_model);
    struct form f = {0};
    png_part(&f, "image", 100, 90);
    text(&f, "prompt", "the same cube in red");
    text(&f, "n", "2");
    text(&f, "strength", "0.5");
    text(&f, "steps", "6");
    text(&f, "seed", "42");
    text(&f, "response_format", "b64_json");
    text(&f, "model", "sd1-tiny");
    text(&f, "background", "auto"); /* OpenAI's, ignored */
    close_form(&f);
    struct openai_edit_request r;
    struct api_error e;
    ck_assert_msg(run(&f, CONTENT_TYPE, &r, &e) == PASSED, "%s", e.message);
    const struct gen_params *p = &r.req.params;
    ck_assert_str_eq(p->prompt, "the same cube in red");
    ck_assert_int_eq(p->n, 2);
    ck_assert_int_eq(p->steps, 6);
    ck_assert(p->seed == 42);
    ck_assert_int_eq(p->width, 96); /* the image's size, rounded down to 8 */
    ck_assert_int_eq(p->height, 88);
    ck_assert_double_eq(p->strength, 0.5);
    ck_assert_ptr_eq(p->init_image, r.i2i.resized.rgb);
    ck_assert_int_eq(r.i2i.resized.width, 96);
    ck_assert_int_eq(r.i2i.init.width, 100);
    ck_assert_int_eq(sd_img2img_steps(p->steps, p->strength), 3);
    ck_assert_int_eq(r.req.n_warnings, 0);
    openai_edit_request_free(&r);
    free(f.data);
}
END_TEST

/* image[] (the openai packages' list), a given size, the default strength. */
START_TEST(test_image_list_and_size)
{
    struct form f = {0};
    text(&f, "prompt", "x");
    png_part(&f, "image[]", 40, 200);
    png_part(&f, "image[]", 8, 8);
    text(&f, "size", "64x72");
    close_form(&f);
    struct openai_edit_request r;
    struct api_error e;
    ck_assert_msg(run(&f, CONTENT_TYPE, &r, &e) == PASSED, "%s", e.message);
    ck_assert_int_eq(r.req.params.width, 64);
    ck_assert_int_eq(r.req.params.height, 72);
    ck_assert_int_eq(r.i2i.resized.height, 72);
    ck_assert_int_eq(r.i2i.init.height, 200); /* the first image */
    ck_assert_double_eq(r.req.params.strength, 0.75);
    ck_assert_int_eq(r.req.n_warnings, 1);
    ck_assert_ptr_nonnull(strstr(r.req.warnings[0], "image"));
    openai_edit_request_free(&r);
    free(f.data);
}
END_TEST

/* OpenAI's mask: its transparent pixels are edited (255 − alpha), resized with the
 * image; the strength's default is then 1, a given one wins. */
START_TEST(test_mask_part)
{
    for (int given = 0; given < 2; given++) {
        struct form f = {0};
        png_part(&f, "image", 100, 90);
        text(&f, "prompt", "a red door");
        rgba_part(&f, "mask", 100, 90, 50, 90, 255);
        if (given)
            text(&f, "strength", "0.5");
        close_form(&f);
        struct openai_edit_request r;
        struct api_error e;
        ck_assert_msg(run(&f, CONTENT_TYPE, &r, &e) == PASSED, "%s", e.message);
        const struct gen_params *p = &r.req.params;
        ck_assert_double_eq(p->strength, given ? 0.5 : 1.0);
        ck_assert_ptr_eq(p->init_mask, r.i2i.inpaint.resized.v);
        ck_assert_int_eq(r.i2i.inpaint.resized.width, 96);
        ck_assert_int_eq(r.i2i.inpaint.resized.height, 88);
        ck_assert_int_eq(p->inpaint_fill, SD_FILL_ORIGINAL);
        ck_assert_int_eq(p->init_mask[40 * 96 + 2], 255); /* transparent: repainted */
        ck_assert_int_eq(p->init_mask[40 * 96 + 93], 0);  /* opaque: kept */
        ck_assert_int_eq(r.req.n_warnings, 0);
        openai_edit_request_free(&r);
        free(f.data);
    }
}
END_TEST

/* No mask part: an image with a fully transparent pixel is its own mask (DALL-E 2), and
 * the strength's default is 1; one whose alpha is nowhere 0 is plain img2img. */
START_TEST(test_image_alpha_is_the_mask)
{
    for (int hole = 0; hole < 2; hole++) {
        struct form f = {0};
        rgba_part(&f, "image", 64, 64, hole ? 16 : 0, 64, 200);
        text(&f, "prompt", "x");
        close_form(&f);
        struct openai_edit_request r;
        struct api_error e;
        ck_assert_msg(run(&f, CONTENT_TYPE, &r, &e) == PASSED, "%s", e.message);
        const struct gen_params *p = &r.req.params;
        if (hole) {
            ck_assert_ptr_nonnull(p->init_mask);
            ck_assert_int_eq(p->init_mask[5], 255);
            ck_assert_int_eq(p->init_mask[40], 55); /* 255 − 200 */
            ck_assert_double_eq(p->strength, 1.0);
            ck_assert_int_eq(r.i2i.init.rgb[0], 255); /* flattened onto white */
        } else {
            ck_assert_ptr_null(p->init_mask);
            ck_assert_double_eq(p->strength, 0.75);
        }
        openai_edit_request_free(&r);
        free(f.data);
    }
}
END_TEST

/* Malformed forms: the stage and the field named. */
enum defect {
    NO_IMAGE, MASK_NO_ALPHA, MASK_SIZE, MASK_TWICE, MASK_GARBAGE, PROMPT_TWICE, N_WORDS,
    STRENGTH_ZERO, NO_STEP, PROMPT_AS_FILE, GARBAGE_IMAGE, BAD_UTF8, NO_PROMPT, BAD_SIZE,
    NO_BOUNDARY, UNCLOSED, DEFECT_COUNT_
};

static const struct {
    enum stage stage;
    const char *param; /* "" : JSON null */
} EXPECT[DEFECT_COUNT_] = {
    [NO_IMAGE] = {AT_PARSE, "image"},          [MASK_NO_ALPHA] = {AT_PARSE, "mask"},
    [MASK_SIZE] = {AT_PARSE, "mask"},          [MASK_TWICE] = {AT_PARSE, "mask"},
    [MASK_GARBAGE] = {AT_PARSE, "mask"},
    [PROMPT_TWICE] = {AT_PARSE, "prompt"},     [N_WORDS] = {AT_PARSE, "n"},
    [STRENGTH_ZERO] = {AT_PARSE, "strength"},  [NO_STEP] = {AT_FINISH, "strength"},
    [PROMPT_AS_FILE] = {AT_PARSE, "prompt"},   [GARBAGE_IMAGE] = {AT_PARSE, "image"},
    [BAD_UTF8] = {AT_PARSE, "negative_prompt"}, [NO_PROMPT] = {AT_PARSE, "prompt"},
    [BAD_SIZE] = {AT_RESOLVE, "size"},         [NO_BOUNDARY] = {AT_PARSE, ""},
    [UNCLOSED] = {AT_PARSE, ""},
};

static void build_defective(struct form *f, enum defect d)
{
    if (d != NO_IMAGE && d != GARBAGE_IMAGE)
        png_part(f, "image", 64, 64);
    if (d == GARBAGE_IMAGE)
        part(f, "image", "x.png", "\x89PNG garbage", 12);
    if (d == PROMPT_AS_FILE)
        part(f, "prompt", "p.txt", "a cat", 5);
    else if (d != NO_PROMPT)
        text(f, "prompt", "a cat");
    if (d == MASK_NO_ALPHA)
        png_part(f, "mask", 64, 64);
    if (d == MASK_SIZE)
        rgba_part(f, "mask", 64, 32, 8, 8, 255);
    if (d == MASK_TWICE) {
        rgba_part(f, "mask", 64, 64, 8, 8, 255);
        rgba_part(f, "mask", 64, 64, 8, 8, 255);
    }
    if (d == MASK_GARBAGE)
        part(f, "mask", "m.png", "GIF89a", 6);
    if (d == PROMPT_TWICE)
        text(f, "prompt", "a dog");
    if (d == N_WORDS)
        text(f, "n", "two");
    if (d == STRENGTH_ZERO)
        text(f, "strength", "0");
    if (d == NO_STEP) {
        text(f, "strength", "0.1");
        text(f, "steps", "4");
    }
    if (d == BAD_UTF8)
        text(f, "negative_prompt", "\xff\xfe");
    if (d == BAD_SIZE)
        text(f, "size", "100x64");
    if (d != UNCLOSED)
        close_form(f);
}

START_TEST(test_malformed)
{
    const enum defect d = (enum defect)_i;
    struct form f = {0};
    build_defective(&f, d);
    struct openai_edit_request r;
    struct api_error e;
    const enum stage at =
        run(&f, d == NO_BOUNDARY ? "multipart/form-data" : CONTENT_TYPE, &r, &e);
    ck_assert_msg(at == EXPECT[d].stage, "defect %d: stopped at %d (%s)", d, at, e.message);
    ck_assert_int_eq(e.http, 400);
    ck_assert_msg(strcmp(e.param, EXPECT[d].param) == 0, "defect %d: param \"%s\" (%s)", d,
                  e.param, e.message);
    if (EXPECT[d].param[0])
        ck_assert_msg(strncmp(e.message, EXPECT[d].param, strlen(EXPECT[d].param)) == 0,
                      "defect %d: message \"%s\"", d, e.message);
    if (d == MASK_NO_ALPHA)
        ck_assert_str_eq(e.message, "mask: has no alpha channel; its fully transparent pixels "
                                    "mark where to edit");
    if (d == MASK_SIZE)
        ck_assert_ptr_nonnull(strstr(e.message, "a 64x32 mask for a 64x64 image"));
    openai_edit_request_free(&r);
    free(f.data);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("openai_edits");
    TCase *tc = tcase_create("forms");
    tcase_add_unchecked_fixture(tc, load_model, free_model);
    tcase_add_test(tc, test_form_as_curl_sends_it);
    tcase_add_test(tc, test_image_list_and_size);
    tcase_add_test(tc, test_mask_part);
    tcase_add_test(tc, test_image_alpha_is_the_mask);
    tcase_add_loop_test(tc, test_malformed, 0, DEFECT_COUNT_);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
