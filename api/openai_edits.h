/* api/openai_edits.h — POST /v1/images/edits: OpenAI's image edit request (a
 * multipart/form-data upload, as the openai packages and `curl -F` send it) mapped onto
 * the generations request (api/openai_images.h) plus a start image and an optional mask
 * (api/img2img.h, api/inpaint.h): an img2img or inpainting run (models/pipeline.h).
 *
 * Form fields (text parts; multipart/form-data carries text, so the numeric ones are
 * read as JSON numbers — "2" is 2 — and booleans as true/false):
 *   image             required, a file part: PNG, JPEG or WebP (image[] as the openai
 *                     packages name a list; the first image part is used, more give a
 *                     warning); alpha flattened onto white.  Without a mask part, an
 *                     image with at least one fully transparent pixel carries its own
 *                     mask (DALL-E 2's edits): 255 − alpha, as a mask part's
 *   mask              optional file part (OpenAI's convention): an image of the image's
 *                     size whose fully transparent pixels (alpha 0) mark where to edit —
 *                     the mask is 255 − alpha (partly transparent pixels blend in the final
 *                     overlay), resized with the image; a file without transparency (no
 *                     alpha channel, a JPEG) or of another size is a 400 naming mask
 *   prompt            required, as generations'
 *   strength          our extension: number in (0, 1], default 0.75 — 1 with a mask
 *                     (diffusers' inpainting: the masked area repainted from noise);
 *                     int(steps × strength) steps run (diffusers' img2img)
 *   size              "WxH" or "auto"/absent: the image's size rounded down to a
 *                     multiple of 8, scaled down to the limits with a warning; the image
 *                     is resized to it (Pillow's Lanczos)
 *   n, response_format, output_format, output_compression, model, user, quality,
 *   negative_prompt, steps, guidance_scale, seed, sampler, scheduler, clip_skip,
 *   deadline_ms, priority, stream: as generations'; other fields (background,
 *   input_fidelity, partial_images, …) ignored.
 * A field sent twice, or a text field with a filename, is a 400 naming it.  The
 * multipart framing's own errors are 400s with param null.
 *
 * Ownership: struct openai_edit_request owns what its members own
 * (openai_edit_request_free; safe on a zeroed or failed one); the body is borrowed
 * during openai_edits_parse only.  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_OPENAI_EDITS_H
#define DIFFUSIOND_API_OPENAI_EDITS_H

#include <stddef.h>
#include <stdint.h>

#include "api/api_error.h"
#include "api/img2img.h"
#include "api/openai_images.h"

struct openai_edit_request {
    struct openai_image_request req; /* resolve with openai_images_resolve */
    struct api_img2img i2i;          /* the image and strength */
};

/* Stage 1: the multipart body under its Content-Type → r (zeroed first); on failure e
 * is filled (400, or 503 out of memory) and r holds nothing to free. */
enum status openai_edits_parse(const char *content_type, const uint8_t *body, size_t len,
                               const struct api_limits *limits, struct openai_edit_request *r,
                               struct api_error *e);

/* Stage 3, after openai_images_resolve(&r->req): the image (and mask) resized to the
 * resolved size into params (api_img2img_finish, naming image, strength and mask). */
enum status openai_edits_finish(struct openai_edit_request *r, struct api_error *e);

void openai_edit_request_free(struct openai_edit_request *r);

#endif
