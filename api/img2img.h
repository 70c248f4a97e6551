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
 *   finish    api_img2img_finish: int(steps × strength) ≥ 1, the image decoded into
 *             i2i->init and resized (Pillow's Lanczos) into i2i->resized, params'
 *             init_image / strength set — the costly part (a 12-megapixel JPEG: about
 *             0.5 s), which the server runs off its HTTP thread
 *
 * Field names in errors and warnings are the route's (A1111's init_images and
 * denoising_strength, OpenAI's image and strength): struct api_img2img_fields.
 *
 * Ownership: struct api_img2img owns its two images (api_img2img_free; safe on a
 * zeroed one); params.init_image points into i2i->resized, so i2i outlives the
 * request's submission (scheduler_submit copies it).  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_IMG2IMG_H
#define DIFFUSIOND_API_IMG2IMG_H

#include <stdbool.h>

#include "api/api_error.h"
#include "api/image_decode.h"
#include "api/openai_images.h"

#define API_IMG2IMG_MAX_SIDE 8192                  /* pixels a side of a start image */
#define API_IMG2IMG_MAX_PIXELS ((size_t)4096 * 4096) /* pixels of a start image */
#define API_IMG2IMG_DEFAULT_STRENGTH 0.75          /* AUTOMATIC1111's */

struct api_img2img_fields {
    const char *image;    /* "init_images", "image" */
    const char *strength; /* "denoising_strength", "strength" */
};

/* A start image; bytes NULL: a text-to-image request. */
struct api_img2img {
    uint8_t *bytes;            /* the image as uploaded (PNG, JPEG or WebP) */
    size_t len;
    int width, height;         /* its size, from its header */
    double strength;           /* in (0, 1] */
    struct image_rgb8 init;    /* decoded (api_img2img_finish) */
    struct image_rgb8 resized; /* init at the resolved size (api_img2img_finish) */
};

/* True when i2i holds a start image. */
bool api_img2img_has_image(const struct api_img2img *i2i);

/* Takes bytes[0 … len) (malloc'ed; i2i owns them from here, also on failure) and
 * reads its header under the limits above; a 400 naming fields->image ("image: not a
 * PNG, JPEG or WebP image", "image: a 9000x10 image: …"). */
enum status api_img2img_take(uint8_t *bytes, size_t len, const struct api_img2img_fields *fields,
                             struct api_img2img *i2i, struct api_error *e);

/* The strength field of a JSON object (the body, or the edits form read as one):
 * absent or null → API_IMG2IMG_DEFAULT_STRENGTH, else a number in (0, 1]; a 400 naming
 * fields->strength. */
enum status api_img2img_read_strength(const json_t *root, const struct api_img2img_fields *fields,
                                      struct api_img2img *i2i, struct api_error *e);

/* The sides req left at 0: the image's, rounded down to a multiple of 8, both scaled
 * down (aspect kept) to fit the limits with a warning; below min_side a 400 naming
 * fields->image.  Sets req->has_size. */
enum status api_img2img_default_size(const struct api_limits *lim,
                                     const struct api_img2img_fields *fields,
                                     const struct api_img2img *i2i,
                                     struct openai_image_request *req, struct api_error *e);

/* After openai_images_resolve: a 400 naming fields->strength when int(steps ×
 * strength) is 0; else the image decoded (a 400 naming fields->image when its data is
 * corrupt past the header), resized to params' size and params.init_image,
 * params.strength set.  Nothing to do without an image. */
enum status api_img2img_finish(const struct api_img2img_fields *fields, struct api_img2img *i2i,
                               struct openai_image_request *req, struct api_error *e);

void api_img2img_free(struct api_img2img *i2i);

#endif
