/* api/img2img.h — what the image-to-image routes share (AUTOMATIC1111's POST
 * /sdapi/v1/img2img, OpenAI's POST /v1/images/edits): the decoded start image, the
 * request's default size taken from it, and the last stage that resizes it to the
 * resolved size and hands it to gen_params (models/pipeline.h: init_image, strength).
 *
 *   parse     the route's parser hands the encoded image to api_img2img_take, which
 *             reads only its header (image_probe: format, size, API_IMG2IMG_MAX_SIDE /
 *             _PIXELS) and keeps the bytes; the strength is read; then
 *             api_img2img_default_size fills the sides the body left out
 *   resolve   openai_images_resolve, as for text-to-image
 *   finish    api_img2img_finish: the image decoded into i2i->init (with the route's
 *             mask_from_image_alpha and no mask: its alpha kept, and when some pixel is
 *             fully transparent that alpha becomes the mask, api/inpaint.h), the
 *             strength's default with a mask applied, int(steps × strength) ≥ 1, the
 *             mask prepared (api_inpaint_prepare; with "only masked" the region around
 *             it cut from the image), the image (or that region) resized (Pillow's
 *             Lanczos) into i2i->resized, params' init_image /
 *             strength set, then the mask's last stage (api_inpaint_finish: init_mask,
 *             inpaint_fill) — the costly part (a 12-megapixel JPEG: about 0.5 s), which
 *             the server runs off its HTTP thread
 *
 * Field names in errors and warnings, and the few conventions that differ, are the
 * route's (A1111's init_images, denoising_strength and mask, OpenAI's image, strength
 * and mask): struct api_img2img_fields.
 *
 * Ownership: struct api_img2img owns its images and mask (api_img2img_free; safe on a
 * zeroed one); params.init_image and init_mask point into i2i->resized and
 * i2i->inpaint.resized, so i2i outlives the request's submission (scheduler_submit
 * copies them).  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_IMG2IMG_H
#define DIFFUSIOND_API_IMG2IMG_H

#include <stdbool.h>

#include "api/api_error.h"
#include "api/image_decode.h"
#include "api/inpaint.h"
#include "api/openai_images.h"

#define API_IMG2IMG_MAX_SIDE 8192                  /* pixels a side of a start image */
#define API_IMG2IMG_MAX_PIXELS ((size_t)4096 * 4096) /* pixels of a start image */
#define API_IMG2IMG_DEFAULT_STRENGTH 0.75          /* AUTOMATIC1111's */

struct api_img2img_fields {
    const char *image;          /* "init_images", "image" */
    const char *strength;       /* "denoising_strength", "strength" */
    const char *mask;           /* "mask" */
    double mask_strength;       /* the strength's default with a mask; 0: the same as
                                   without (OpenAI's edits: 1, diffusers' inpainting) */
    bool mask_from_image_alpha; /* no mask given: a start image with a fully transparent
                                   pixel carries its own (255 − alpha; DALL-E 2's edits) */
};

/* A start image; bytes NULL: a text-to-image request. */
struct api_img2img {
    uint8_t *bytes;            /* the image as uploaded (PNG, JPEG or WebP) */
    size_t len;
    int width, height;         /* its size, from its header */
    double strength;           /* in (0, 1] */
    bool strength_given;       /* the request set it (else a mask may change the default) */
    struct image_rgb8 init;    /* decoded (api_img2img_finish) */
    struct image_rgb8 resized; /* init at the resolved size (api_img2img_finish) */
    struct api_inpaint inpaint; /* the mask, if any (the route's parser fills it) */
};

/* True when i2i holds a start image. */
bool api_img2img_has_image(const struct api_img2img *i2i);

/* Takes bytes[0 … len) (malloc'ed; i2i owns them from here, also on failure) and
 * reads its header under the limits above; a 400 naming fields->image ("image: not a
 * PNG, JPEG or WebP image", "image: a 9000x10 image: …"). */
enum status api_img2img_take(uint8_t *bytes, size_t len, const struct api_img2img_fields *fields,
                             struct api_img2img *i2i, struct api_error *e);

/* The strength field of a JSON object (the body, or the edits form read as one):
 * absent or null → API_IMG2IMG_DEFAULT_STRENGTH (fields->mask_strength with a mask, set
 * at finish), else a number in (0, 1]; a 400 naming fields->strength. */
enum status api_img2img_read_strength(const json_t *root, const struct api_img2img_fields *fields,
                                      struct api_img2img *i2i, struct api_error *e);

/* The sides req left at 0: the image's, rounded down to a multiple of 8, both scaled
 * down (aspect kept) to fit the limits with a warning; below min_side a 400 naming
 * fields->image.  Sets req->has_size. */
enum status api_img2img_default_size(const struct api_limits *lim,
                                     const struct api_img2img_fields *fields,
                                     const struct api_img2img *i2i,
                                     struct openai_image_request *req, struct api_error *e);

/* After openai_images_resolve (see the top): a 400 naming fields->image when its data
 * is corrupt past the header, fields->strength when int(steps × strength) is 0,
 * fields->mask when the mask's is; else params' init_image and strength set, and with a
 * mask init_mask and inpaint_fill.  Nothing to do without an image. */
enum status api_img2img_finish(const struct api_img2img_fields *fields, struct api_img2img *i2i,
                               struct openai_image_request *req, struct api_error *e);

void api_img2img_free(struct api_img2img *i2i);

#endif
