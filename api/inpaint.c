/* api/inpaint.c — the image-to-image routes' inpainting mask (api/inpaint.h). */
#include "api/inpaint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_fill.h"
#include "api/image_mask.h"
#include "api/img2img.h" /* the start image's limits */
#include "api/json_fields.h"

bool api_inpaint_has_mask(const struct api_inpaint *in)
{
    return in->bytes != NULL || in->mask.v != NULL;
}

/* A decoder's or a mask operation's status as the route's error. */
static enum status mask_error(enum status s, const struct errbuf *err, const char *field,
                              struct api_error *e)
{
    if (s == STATUS_OUT_OF_MEMORY)
        return json_field_oom(e, field);
    return json_field_bad(e, field, "%s%s", err->msg, NULL);
}

static enum status no_alpha(const char *field, struct api_error *e)
{
    return json_field_bad(e, field, "has no alpha channel; its fully transparent pixels mark "
                                    "where to edit%s%s", NULL, NULL);
}

enum status api_inpaint_take(uint8_t *bytes, size_t len, enum api_mask_rule rule,
                             const char *field, struct api_inpaint *in, struct api_error *e)
{
    free(in->bytes);
    image_gray8_free(&in->mask);
    in->bytes = bytes;
    in->len = len;
    in->rule = rule;
    struct image_rgba8 head;
    struct errbuf err;
    const enum status s = image_probe_rgba(bytes, len, API_IMG2IMG_MAX_SIDE,
                                           API_IMG2IMG_MAX_PIXELS, &head, &err);
    if (s != STATUS_OK)
        return mask_error(s, &err, field, e);
    in->width = head.width;
    in->height = head.height;
    return rule == API_MASK_ALPHA && !head.has_alpha ? no_alpha(field, e) : STATUS_OK;
}

enum status api_inpaint_from_alpha(const struct image_rgba8 *img, const char *field,
                                   struct api_inpaint *in, struct api_error *e)
{
    free(in->bytes);
    in->bytes = NULL;
    image_gray8_free(&in->mask);
    in->rule = API_MASK_ALPHA;
    struct errbuf err;
    const enum status s = image_mask_alpha(img, &in->mask, &err);
    if (s != STATUS_OK)
        return mask_error(s, &err, field, e);
    in->width = img->width;
    in->height = img->height;
    return STATUS_OK;
}

/* The uploaded mask decoded and read by its rule into in->mask. */
static enum status read_mask(const char *field, struct api_inpaint *in, struct api_error *e)
{
    struct image_rgba8 img;
    struct errbuf err;
    enum status s = image_decode_rgba(in->bytes, in->len, API_IMG2IMG_MAX_SIDE,
                                      API_IMG2IMG_MAX_PIXELS, &img, &err);
    if (s != STATUS_OK)
        return mask_error(s, &err, field, e);
    if (in->rule == API_MASK_ALPHA && !img.has_alpha)
        s = no_alpha(field, e);
    else if ((s = in->rule == API_MASK_ALPHA ? image_mask_alpha(&img, &in->mask, &err)
                                             : image_mask_a1111(&img, &in->mask, &err)) !=
             STATUS_OK)
        s = mask_error(s, &err, field, e);
    image_rgba8_free(&img);
    return s;
}

static const enum sd_inpaint_fill SD_FILL[API_FILL_COUNT_] = {
    [API_FILL_ORIGINAL] = SD_FILL_ORIGINAL,
    [API_FILL_FILL] = SD_FILL_ORIGINAL,
    [API_FILL_LATENT_NOISE] = SD_FILL_LATENT_NOISE,
    [API_FILL_LATENT_NOTHING] = SD_FILL_LATENT_NOTHING,
};

/* The mask read by its rule, inverted, blurred (once). */
static enum status mask_ready(const char *field, struct api_inpaint *in, struct api_error *e)
{
    if (in->prepared)
        return STATUS_OK;
    if (in->bytes && !in->mask.v)
        TRY(read_mask(field, in, e));
    if (in->invert)
        image_mask_invert(&in->mask);
    struct errbuf err;
    const enum status s = image_mask_blur(&in->mask, in->blur_x, in->blur_y, &err);
    if (s != STATUS_OK)
        return mask_error(s, &err, field, e);
    in->prepared = true;
    return STATUS_OK;
}

/* The bounding box [x1, x2) × [y1, y2) of m's non-zero pixels; false when there is none. */
static bool mask_bbox(const struct image_gray8 *m, int *x1, int *y1, int *x2, int *y2)
{
    *x1 = m->width, *y1 = m->height, *x2 = 0, *y2 = 0;
    for (int y = 0; y < m->height; y++)
        for (int x = 0; x < m->width; x++)
            if (m->v[(size_t)y * (size_t)m->width + (size_t)x]) {
                *x1 = x < *x1 ? x : *x1;
                *x2 = x + 1 > *x2 ? x + 1 : *x2;
                *y1 = y < *y1 ? y : *y1;
                *y2 = y + 1 > *y2 ? y + 1 : *y2;
            }
    return *x2 > 0;
}

/* One axis of A1111's expand_crop_region: [*a1, *a2) grown by `diff` (half before,
 * the rest after), shifted back inside [0, size). */
static void expand_axis(int *a1, int *a2, int diff, int size)
{
    *a1 -= diff / 2;
    *a2 += diff - diff / 2;
    if (*a2 >= size) {
        const int over = *a2 - size;
        *a2 -= over;
        *a1 -= over;
    }
    if (*a1 < 0) {
        *a2 -= *a1;
        *a1 = 0;
    }
    if (*a2 >= size)
        *a2 = size;
}

/* The region: the bbox padded and clamped (get_crop_region), grown to the aspect
 * ratio width : height (expand_crop_region). */
static void crop_region(struct api_inpaint *in, int x1, int y1, int x2, int y2, int width,
                        int height)
{
    const int w = in->overlay.width, h = in->overlay.height;
    const int pad = in->padding; /* up to INT_MAX: no sums that overflow */
    x1 = pad < x1 ? x1 - pad : 0;
    y1 = pad < y1 ? y1 - pad : 0;
    x2 = pad < w - x2 ? x2 + pad : w;
    y2 = pad < h - y2 ? y2 + pad : h;
    const double ratio_crop = (double)(x2 - x1) / (double)(y2 - y1);
    const double ratio = (double)width / (double)height;
    if (ratio_crop > ratio) /* Python's int() of the float difference: toward zero */
        expand_axis(&y1, &y2, (int)((double)(x2 - x1) / ratio - (double)(y2 - y1)), h);
    else
        expand_axis(&x1, &x2, (int)((double)(y2 - y1) * ratio - (double)(x2 - x1)), w);
    in->crop_x = x1, in->crop_y = y1, in->crop_w = x2 - x1, in->crop_h = y2 - y1;
}

/* The region's part of an image of src_w pixels a row, `ch` bytes a pixel: a malloc'ed
 * crop_w × crop_h copy, NULL out of memory. */
static uint8_t *region_copy(const struct api_inpaint *in, const uint8_t *src, int src_w, int ch)
{
    const size_t row = (size_t)in->crop_w * (size_t)ch;
    uint8_t *out = malloc(row * (size_t)in->crop_h);
    for (int r = 0; out && r < in->crop_h; r++)
        memcpy(out + (size_t)r * row,
               src + ((size_t)(in->crop_y + r) * (size_t)src_w + (size_t)in->crop_x) * (size_t)ch,
               row);
    return out;
}

enum status api_inpaint_prepare(const char *field, struct api_inpaint *in,
                                const struct image_rgb8 *start, const struct gen_params *p,
                                struct openai_image_request *req, struct api_error *e)
{
    if (!api_inpaint_has_mask(in))
        return STATUS_OK;
    TRY(mask_ready(field, in, e));
    if (!in->full_res)
        return STATUS_OK;
    struct errbuf err;
    enum status s = image_resize_gray(&in->mask, start->width, start->height, &in->overlay,
                                      &err);
    if (s != STATUS_OK)
        return mask_error(s, &err, field, e);
    int x1, y1, x2, y2;
    if (!mask_bbox(&in->overlay, &x1, &y1, &x2, &y2)) { /* A1111: img2img, no mask */
        free(in->bytes);
        in->bytes = NULL;
        image_gray8_free(&in->mask);
        image_gray8_free(&in->overlay);
        return openai_image_request_warn(req, "inpaint_full_res: the mask is blank; the "
                                              "request ran as img2img without one", e);
    }
    crop_region(in, x1, y1, x2, y2, p->width, p->height);
    image_gray8_free(&in->mask);
    in->mask = (struct image_gray8){.width = in->crop_w, .height = in->crop_h,
                                    .v = region_copy(in, in->overlay.v, in->overlay.width, 1)};
    return in->mask.v ? STATUS_OK : json_field_oom(e, field);
}

bool api_inpaint_cropped(const struct api_inpaint *in)
{
    return in->crop_w > 0 && api_inpaint_has_mask(in);
}

enum status api_inpaint_crop(const struct api_inpaint *in, const struct image_rgb8 *start,
                             struct image_rgb8 *out, struct errbuf *err)
{
    *out = (struct image_rgb8){.width = in->crop_w, .height = in->crop_h,
                               .rgb = region_copy(in, start->rgb, start->width, 3)};
    return out->rgb ? STATUS_OK
                    : status_fail(err, STATUS_OUT_OF_MEMORY, "a %dx%d crop", in->crop_w,
                                  in->crop_h);
}

enum status api_inpaint_paste(const struct api_inpaint *in, const struct image_rgb8 *start,
                              const uint8_t *gen, int width, int height,
                              struct image_rgb8 *out, struct errbuf *err)
{
    const struct image_rgb8 g = {.width = width, .height = height, .rgb = (uint8_t *)gen};
    struct image_rgb8 fit = {0};
    TRY(image_resize(&g, in->crop_w, in->crop_h, &fit, err));
    const size_t bytes = (size_t)start->width * (size_t)start->height * 3;
    out->rgb = malloc(bytes);
    if (!out->rgb) {
        image_rgb8_free(&fit);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "a %dx%d image", start->width,
                           start->height);
    }
    out->width = start->width, out->height = start->height;
    memcpy(out->rgb, start->rgb, bytes);
    for (int r = 0; r < in->crop_h; r++)
        for (int c = 0; c < in->crop_w; c++) {
            const size_t at = (size_t)(in->crop_y + r) * (size_t)start->width +
                              (size_t)(in->crop_x + c);
            const unsigned a = in->overlay.v[at];
            const uint8_t *src = fit.rgb + ((size_t)r * (size_t)in->crop_w + (size_t)c) * 3;
            for (int k = 0; k < 3; k++) {
                uint8_t *o = out->rgb + at * 3 + (size_t)k;
                *o = (uint8_t)((src[k] * a + *o * (255u - a) + 127u) / 255u);
            }
        }
    image_rgb8_free(&fit);
    return STATUS_OK;
}

enum status api_inpaint_finish(const char *field, struct api_inpaint *in,
                               struct image_rgb8 *start, struct gen_params *p,
                               struct api_error *e)
{
    if (!api_inpaint_has_mask(in))
        return STATUS_OK;
    TRY(mask_ready(field, in, e));
    struct errbuf err;
    enum status s = image_resize_gray(&in->mask, p->width, p->height, &in->resized, &err);
    if (s == STATUS_OK && in->fill == API_FILL_FILL)
        s = image_fill_holes(start, &in->resized, &err);
    if (s != STATUS_OK)
        return mask_error(s, &err, field, e);
    p->init_mask = in->resized.v;
    p->inpaint_fill = SD_FILL[(int)in->fill >= 0 && in->fill < API_FILL_COUNT_ ? in->fill : 0];
    p->inpaint_no_overlay = api_inpaint_cropped(in); /* the paste is the overlay */
    return STATUS_OK;
}

int api_inpaint_mask_blur(const struct api_inpaint *in)
{
    return api_inpaint_has_mask(in) && in->blur_x == in->blur_y ? in->blur_x : 0;
}

void api_inpaint_free(struct api_inpaint *in)
{
    if (!in)
        return;
    free(in->bytes);
    image_gray8_free(&in->mask);
    image_gray8_free(&in->resized);
    image_gray8_free(&in->overlay);
    *in = (struct api_inpaint){0};
}
