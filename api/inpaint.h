/* api/inpaint.h — the inpainting mask the image-to-image routes share (AUTOMATIC1111's
 * POST /sdapi/v1/img2img mask, OpenAI's POST /v1/images/edits mask or the start image's
 * own transparency), carried from the parse to the last stage, where it becomes
 * gen_params' init_mask (models/pipeline.h: 255 = repaint, 0 = keep) at the request's
 * size, and inpaint_fill.
 *
 *   parse   api_inpaint_take keeps the mask's bytes and reads only its header
 *           (image_probe_rgba: format, the start image's limits, and for the alpha rule
 *           that the file has transparency); the route sets the options (invert, blur,
 *           fill) from its fields
 *   finish  api_inpaint_finish, after the start image is decoded and resized: the mask
 *           decoded and read by its rule (api/image_mask.h), inverted, blurred at its
 *           own size (Pillow's GaussianBlur), resized to the request's size with the
 *           start image (Pillow's LANCZOS on the gray plane, as A1111 resizes an "L"
 *           mask), then params' init_mask and inpaint_fill set; with API_FILL_FILL the
 *           resized start image's pixels where the mask is ≥ 128 are first replaced by
 *           api/image_fill's push-pull fill (and inpaint_fill is SD_FILL_ORIGINAL)
 *
 * Rules:  API_MASK_A1111: A1111's create_binary_mask (the luma, Pillow's "L": white
 *         repaints; an image Pillow opens as RGBA with some transparency: its alpha
 *         > 128).  API_MASK_ALPHA: OpenAI's, 255 − alpha (fully transparent repaints);
 *         the file must have transparency.  api_inpaint_from_alpha: the start image's
 *         own alpha by the OpenAI rule (DALL-E 2's edits without a mask).
 *
 * Errors name the route's field (`field`, "mask"): a 400 for a file that is not an
 * image, over the limits, without transparency where the rule needs it, or corrupt past
 * its header; a 503 out of memory.
 *
 * Ownership: struct api_inpaint owns its bytes and planes (api_inpaint_free; safe on a
 * zeroed one); params.init_mask points into in->resized, so it outlives the request's
 * submission (scheduler_submit copies it).  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_INPAINT_H
#define DIFFUSIOND_API_INPAINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api_error.h"
#include "api/image_decode.h"
#include "api/openai_images.h"
#include "models/pipeline.h"

enum api_mask_rule { API_MASK_A1111 = 0, API_MASK_ALPHA };

/* What the repainted area starts from (A1111's inpainting_fill 0 … 3 are FILL, ORIGINAL,
 * LATENT_NOISE, LATENT_NOTHING; a zeroed struct api_inpaint has ORIGINAL). */
enum api_inpaint_fill {
    API_FILL_ORIGINAL = 0,   /* the start image as it is (SD_FILL_ORIGINAL) */
    API_FILL_FILL,           /* the start image with the holes filled (api/image_fill.h) */
    API_FILL_LATENT_NOISE,   /* SD_FILL_LATENT_NOISE */
    API_FILL_LATENT_NOTHING, /* SD_FILL_LATENT_NOTHING */
    API_FILL_COUNT_
};

#define API_INPAINT_DEFAULT_BLUR 4 /* A1111's mask_blur */

struct api_inpaint {
    uint8_t *bytes;             /* the mask file as uploaded; NULL: none */
    bool full_res;              /* A1111's inpaint_full_res, "only masked" (see below) */
    int padding;                /* its inpaint_full_res_padding, pixels */
    size_t len;
    int width, height;          /* its size, from its header */
    enum api_mask_rule rule;
    bool invert;                /* A1111's inpainting_mask_invert */
    int blur_x, blur_y;         /* Pillow GaussianBlur radii at the mask's size; 0: none */
    enum api_inpaint_fill fill;
    struct image_gray8 mask;    /* read, inverted, blurred (finish; from_alpha); with a
                                   crop, the cropped part of `overlay` */
    struct image_gray8 resized; /* at the request's size: params.init_mask (finish) */
    bool prepared;              /* mask read, inverted, blurred (api_inpaint_prepare) */
    struct image_gray8 overlay; /* a crop's paste-back alpha: the mask at the start
                                   image's size */
    int crop_x, crop_y, crop_w, crop_h; /* the region generated; crop_w 0: none */
};

/* True when in holds a mask (bytes taken, or one made from an image's alpha). */
bool api_inpaint_has_mask(const struct api_inpaint *in);

/* Takes bytes[0 … len) (malloc'ed; in owns them from here, also on failure), read by
 * `rule`, and reads its header under the start image's limits (api/img2img.h); a 400
 * naming field. */
enum status api_inpaint_take(uint8_t *bytes, size_t len, enum api_mask_rule rule,
                             const char *field, struct api_inpaint *in, struct api_error *e);

/* The mask from a decoded image's alpha by the OpenAI rule (255 − alpha), replacing any
 * mask in holds; a 503 out of memory. */
enum status api_inpaint_from_alpha(const struct image_rgba8 *img, const char *field,
                                   struct api_inpaint *in, struct api_error *e);

/* A1111's "only masked" (full_res): the part of the start image around the mask is
 * generated at the request's size and pasted back into the whole picture.
 *   api_inpaint_prepare  the mask read, inverted and blurred; with full_res, resized to
 *             the start image's size (the paste's alpha, `overlay`), and the region:
 *             the bounding box of its non-zero pixels grown by `padding` and clamped to
 *             the image (A1111's get_crop_region), then grown along one axis to the
 *             request's aspect ratio (its expand_crop_region, integer steps as A1111
 *             takes them); `mask` becomes the region's part of the mask.  A mask with
 *             no non-zero pixel leaves no mask (plain img2img) and a warning, as A1111
 *             switches to img2img.  Nothing to do without a mask.
 *   api_inpaint_crop     the region of the start image (a copy), to be resized to the
 *             request's size as the start image (then api_inpaint_finish as always)
 *   api_inpaint_paste    after the generation: an image of the request's size resized
 *             (Pillow's LANCZOS) to the region and composited into a copy of the start
 *             image with `overlay` as alpha: out = (gen·a + start·(255 − a)) / 255,
 *             rounded (A1111's uncrop + alpha_composite of its overlay; mask 0 pixels,
 *             every pixel outside the region among them, are the start image's own).
 * The pipeline's own overlay is off then (params.inpaint_no_overlay): the paste is the
 * only one, as in A1111. */
enum status api_inpaint_prepare(const char *field, struct api_inpaint *in,
                                const struct image_rgb8 *start, const struct gen_params *p,
                                struct openai_image_request *req, struct api_error *e);
bool api_inpaint_cropped(const struct api_inpaint *in);
enum status api_inpaint_crop(const struct api_inpaint *in, const struct image_rgb8 *start,
                             struct image_rgb8 *out, struct errbuf *err);
enum status api_inpaint_paste(const struct api_inpaint *in, const struct image_rgb8 *start,
                              const uint8_t *gen, int width, int height,
                              struct image_rgb8 *out, struct errbuf *err);

/* The last stage (see the top): start is the start image at params' size (changed in
 * place by API_FILL_FILL); sets p->init_mask and p->inpaint_fill (and, after a crop,
 * p->inpaint_no_overlay).  Nothing to do without a mask. */
enum status api_inpaint_finish(const char *field, struct api_inpaint *in,
                               struct image_rgb8 *start, struct gen_params *p,
                               struct api_error *e);

/* A1111's "Mask blur" of the request: the radius when a mask is given and both axes
 * share one above 0, else 0 (nothing written). */
int api_inpaint_mask_blur(const struct api_inpaint *in);

void api_inpaint_free(struct api_inpaint *in);

#endif
