/* api/img2img.c — the start image of the image-to-image routes (api/img2img.h). */
#include "api/img2img.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/image_mask.h"
#include "api/json_fields.h"

bool api_img2img_has_image(const struct api_img2img *i2i)
{
    return i2i->bytes != NULL;
}

/* A decoder's status as the route's error. */
static enum status image_error(enum status s, const struct errbuf *err,
                               const struct api_img2img_fields *fields, struct api_error *e)
{
    if (s == STATUS_OUT_OF_MEMORY)
        return json_field_oom(e, fields->image);
    return json_field_bad(e, fields->image, "%s%s", err->msg, NULL);
}

enum status api_img2img_take(uint8_t *bytes, size_t len, const struct api_img2img_fields *fields,
                             struct api_img2img *i2i, struct api_error *e)
{
    free(i2i->bytes);
    i2i->bytes = bytes;
    i2i->len = len;
    struct errbuf err;
    const enum status s = image_probe(bytes, len, API_IMG2IMG_MAX_SIDE, API_IMG2IMG_MAX_PIXELS,
                                      &i2i->width, &i2i->height, &err);
    return s == STATUS_OK ? STATUS_OK : image_error(s, &err, fields, e);
}

enum status api_img2img_read_strength(const json_t *root, const struct api_img2img_fields *fields,
                                      struct api_img2img *i2i, struct api_error *e)
{
    i2i->strength = API_IMG2IMG_DEFAULT_STRENGTH;
    i2i->strength_given = false;
    const json_t *v = json_object_get(root, fields->strength);
    if (!v || json_is_null(v))
        return STATUS_OK;
    TRY(json_field_number(v, fields->strength, 0.0, 1.0, &i2i->strength, e));
    i2i->strength_given = true;
    return i2i->strength > 0.0 ? STATUS_OK
                               : json_field_bad(e, fields->strength,
                                                "must be above 0 (0 would change nothing)%s%s",
                                                NULL, NULL);
}

enum status api_img2img_default_size(const struct api_limits *lim,
                                     const struct api_img2img_fields *fields,
                                     const struct api_img2img *i2i,
                                     struct openai_image_request *req, struct api_error *e)
{
    if (req->width > 0 && req->height > 0)
        return STATUS_OK;
    double w = i2i->width, h = i2i->height;
    const double fit = fmin(1.0, fmin(lim->max_width / w, lim->max_height / h));
    w *= fit;
    h *= fit;
    const int w8 = (int)(w / 8) * 8, h8 = (int)(h / 8) * 8;
    char msg[200];
    if ((req->width == 0 && w8 < lim->min_side) || (req->height == 0 && h8 < lim->min_side)) {
        snprintf(msg, sizeof msg, "a %dx%d image is below the smallest side, %d pixels; give "
                 "the size to resize it", i2i->width, i2i->height, lim->min_side);
        return json_field_bad(e, fields->image, "%s%s", msg, NULL);
    }
    if (req->width == 0)
        req->width = w8;
    if (req->height == 0)
        req->height = h8;
    req->has_size = true;
    if (fit >= 1.0)
        return STATUS_OK;
    snprintf(msg, sizeof msg, "%s: the %dx%d image is scaled down to %dx%d (the server's limits)",
             fields->image, i2i->width, i2i->height, req->width, req->height);
    return openai_image_request_warn(req, msg, e);
}

/* The start image decoded into i2i->init; with the route's mask_from_image_alpha and no
 * mask given, its alpha read too, and made the mask when a pixel is fully transparent. */
static enum status decode_start(const struct api_img2img_fields *fields,
                                struct api_img2img *i2i, struct api_error *e)
{
    struct errbuf err;
    if (!fields->mask_from_image_alpha || api_inpaint_has_mask(&i2i->inpaint)) {
        const enum status s = image_decode(i2i->bytes, i2i->len, API_IMG2IMG_MAX_SIDE,
                                           API_IMG2IMG_MAX_PIXELS, &i2i->init, &err);
        return s == STATUS_OK ? STATUS_OK : image_error(s, &err, fields, e);
    }
    struct image_rgba8 rgba;
    enum status s = image_decode_rgba(i2i->bytes, i2i->len, API_IMG2IMG_MAX_SIDE,
                                      API_IMG2IMG_MAX_PIXELS, &rgba, &err);
    if (s == STATUS_OK)
        s = image_rgba8_flatten(&rgba, &i2i->init, &err);
    if (s != STATUS_OK) {
        image_rgba8_free(&rgba);
        return image_error(s, &err, fields, e);
    }
    if (image_mask_any_transparent(&rgba))
        s = api_inpaint_from_alpha(&rgba, fields->mask, &i2i->inpaint, e);
    image_rgba8_free(&rgba);
    return s;
}

enum status api_img2img_finish(const struct api_img2img_fields *fields, struct api_img2img *i2i,
                               struct openai_image_request *req, struct api_error *e)
{
    if (!api_img2img_has_image(i2i))
        return STATUS_OK;
    struct gen_params *p = &req->params;
    TRY(decode_start(fields, i2i, e));
    if (api_inpaint_has_mask(&i2i->inpaint) && !i2i->strength_given && fields->mask_strength > 0)
        i2i->strength = fields->mask_strength;
    if (sd_img2img_steps(p->steps, i2i->strength) < 1) {
        char msg[200];
        snprintf(msg, sizeof msg, "%g of %d steps runs no step: int(steps x %s) must be at "
                 "least 1", i2i->strength, p->steps, fields->strength);
        return json_field_bad(e, fields->strength, "%s%s", msg, NULL);
    }
    TRY(api_inpaint_prepare(fields->mask, &i2i->inpaint, &i2i->init, p, req, e));
    struct errbuf err;
    struct image_rgb8 crop = {0}; /* "only masked": the region around the mask */
    enum status s = api_inpaint_cropped(&i2i->inpaint)
                         ? api_inpaint_crop(&i2i->inpaint, &i2i->init, &crop, &err)
                         : STATUS_OK;
    if (s == STATUS_OK)
        s = image_resize(crop.rgb ? &crop : &i2i->init, p->width, p->height, &i2i->resized,
                         &err);
    image_rgb8_free(&crop);
    if (s == STATUS_OUT_OF_MEMORY)
        return json_field_oom(e, fields->image);
    if (s != STATUS_OK)
        return json_field_bad(e, fields->image, "resizing: %s%s", err.msg, NULL);
    p->init_image = i2i->resized.rgb;
    p->strength = i2i->strength;
    return api_inpaint_finish(fields->mask, &i2i->inpaint, &i2i->resized, p, e);
}

void api_img2img_free(struct api_img2img *i2i)
{
    if (!i2i)
        return;
    free(i2i->bytes);
    image_rgb8_free(&i2i->init);
    image_rgb8_free(&i2i->resized);
    api_inpaint_free(&i2i->inpaint);
    *i2i = (struct api_img2img){0};
}
