/* api/image_fill.h — fills the holes of an RGB image from their surroundings, for
 * AUTOMATIC1111's inpainting_fill 0 ("fill": the area to repaint starts from the colours
 * around it rather than from what was there).  Not A1111's algorithm (layers of Pillow
 * Gaussian blurs of radius 256 … 0 composited over each other, modules/masking.py): a
 * push-pull fill, exact integer arithmetic, O(pixels):
 *
 *   pull   a pyramid of half-size levels (each side (n + 1) / 2, down to 1×1): a level's
 *          pixel is the rounded mean of its known children among the 2×2 below it (each
 *          known child counts once) and is known when one of them is; the image's own
 *          pixels are known where the mask is below IMAGE_FILL_THRESHOLD;
 *   push   from the top down, every unknown pixel of a level takes the bilinear
 *          interpolation of the level above (all known by then) at its centre — weights
 *          9, 3, 3, 1 of 16 over the four nearest coarser pixels, clamped at the borders,
 *          rounded; a top pixel that is still unknown (no known pixel at all) is
 *          mid-gray, 128.
 *
 * So known pixels are untouched, an image without holes is unchanged, a hole inside a
 * uniform colour becomes that colour, and a hole between colours a smooth blend of them.
 *
 * Ownership: the image is the caller's, changed in place; the pyramid is allocated and
 * freed inside the call.  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_IMAGE_FILL_H
#define DIFFUSIOND_API_IMAGE_FILL_H

#include "api/image_decode.h"
#include "engine/status.h"

#define IMAGE_FILL_THRESHOLD 128 /* a mask value at or above it: a hole (repainted) */
#define IMAGE_FILL_GRAY 128      /* what an image with no known pixel becomes */

/* Fills the pixels of img where mask (img's size; 255 = repaint) is at least
 * IMAGE_FILL_THRESHOLD.  STATUS_INVALID_ARGUMENT for an empty image or a mask of another
 * size; STATUS_OUT_OF_MEMORY (img untouched then). */
enum status image_fill_holes(struct image_rgb8 *img, const struct image_gray8 *mask,
                             struct errbuf *err);

#endif
