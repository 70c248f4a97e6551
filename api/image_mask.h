/* api/image_mask.h — inpainting masks: 8-bit gray planes (struct image_gray8,
 * api/image_decode.h) where 255 = repaint and 0 = keep (models/pipeline.h's init_mask),
 * made from a decoded image the way each API reads its mask, and the operations
 * AUTOMATIC1111 applies to one before it is resized with the start image.
 *
 *   image_mask_luma     Pillow's convert("L") of the RGB samples (alpha ignored):
 *                       L = (R·19595 + G·38470 + B·7471 + 0x8000) >> 16 — white repaints
 *   image_mask_a1111    A1111's create_binary_mask (modules/processing.py): an image
 *                       Pillow opens as "RGBA" whose alpha is not all 255 gives its alpha,
 *                       binarized (> 128 → 255, else 0); any other image its luma
 *   image_mask_alpha    OpenAI's edits convention: 255 − alpha (fully transparent pixels
 *                       are repainted, opaque ones kept)
 *   image_mask_invert   255 − v (A1111's inpainting_mask_invert)
 *   image_mask_blur     Pillow's ImageFilter.GaussianBlur((rx, ry)) on an "L" image,
 *                       exactly (the same integer arithmetic): per axis with a radius
 *                       above 0, three passes of an extended box blur (Gwosdek et al.,
 *                       SSVM 2011) whose box radius r' solves sigma² = radius²/3 for a
 *                       box of length 2·r' + 1 with fractional ends (Pillow's
 *                       _gaussian_blur_radius, in single precision); each pass reads the
 *                       edge pixels as repeated beyond the border, weights in 24-bit fixed
 *                       point, rounded to 8 bits after each pass; the horizontal passes
 *                       first.  Radius 0 on an axis leaves it alone.  (A1111 ≥ 1.6 blurs
 *                       with OpenCV's GaussianBlur of sigma = mask_blur instead: the same
 *                       sigma, a kernel cut at ±2.5·sigma and mirrored borders — a few
 *                       levels apart at the soft edge; A1111 before 1.6 used Pillow's.)
 *
 * Ownership: the functions that make a mask fill *out with a malloc'ed plane (freed with
 * image_gray8_free); on failure *out is empty.  The others change their argument in
 * place.  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_IMAGE_MASK_H
#define DIFFUSIOND_API_IMAGE_MASK_H

#include <stdbool.h>

#include "api/image_decode.h"
#include "engine/status.h"

/* Pillow's "L" value of an RGB pixel. */
static inline uint8_t image_mask_luma_of(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

/* in's luma into *out (see the top).  STATUS_INVALID_ARGUMENT for an empty in;
 * STATUS_OUT_OF_MEMORY. */
enum status image_mask_luma(const struct image_rgba8 *in, struct image_gray8 *out,
                            struct errbuf *err);

/* A1111's mask of in (see the top); same errors. */
enum status image_mask_a1111(const struct image_rgba8 *in, struct image_gray8 *out,
                             struct errbuf *err);

/* 255 − alpha of in (see the top); same errors. */
enum status image_mask_alpha(const struct image_rgba8 *in, struct image_gray8 *out,
                             struct errbuf *err);

/* True when some pixel of in has alpha 0 (DALL-E 2's test for an image that carries
 * its own mask). */
bool image_mask_any_transparent(const struct image_rgba8 *in);

/* m's samples replaced by 255 − v. */
void image_mask_invert(struct image_gray8 *m);

/* Pillow's GaussianBlur((rx, ry)) of m, in place (see the top).  rx, ry in
 * [0, IMAGE_MASK_BLUR_MAX]; else STATUS_INVALID_ARGUMENT; STATUS_OUT_OF_MEMORY. */
#define IMAGE_MASK_BLUR_MAX 1000.0
enum status image_mask_blur(struct image_gray8 *m, double rx, double ry, struct errbuf *err);

#endif
