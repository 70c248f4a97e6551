/* api/inpaint.c — the image-to-image routes' inpainting mask (api/inpaint.h). */
#include "api/inpaint.h"

#include <stdio.h>
#include <stdlib.h>

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

enum status api_inpaint_finish(const char *field, struct api_inpaint *in,
                               struct image_rgb8 *start, struct gen_params *p,
                               struct api_error *e)
{
    if (!api_inpaint_has_mask(in))
        return STATUS_OK;
    if (in->bytes && !in->mask.v)
        TRY(read_mask(field, in, e));
    if (in->invert)
        image_mask_invert(&in->mask);
    struct errbuf err;
    enum status s = image_mask_blur(&in->mask, in->blur_x, in->blur_y, &err);
    if (s == STATUS_OK)
        s = image_resize_gray(&in->mask, p->width, p->height, &in->resized, &err);
    if (s == STATUS_OK && in->fill == API_FILL_FILL)
        s = image_fill_holes(start, &in->resized, &err);
    if (s != STATUS_OK)
        return s == STATUS_OUT_OF_MEMORY ? json_field_oom(e, field)
                                         : json_field_bad(e, field, "%s%s", err.msg, NULL);
    p->init_mask = in->resized.v;
    p->inpaint_fill = SD_FILL[(int)in->fill >= 0 && in->fill < API_FILL_COUNT_ ? in->fill : 0];
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
    *in = (struct api_inpaint){0};
}
