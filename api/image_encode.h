/* api/image_encode.h — 8-bit RGB images to PNG (libpng), JPEG (libjpeg-turbo's
 * TurboJPEG API) and WebP (libwebp), in memory; image_encode() dispatches on the format.
 *
 * PNG: 8-bit RGB, no interlace, libpng's adaptive filters, zlib level 1 (fast: a
 * server encodes every image; level 6 costs 3-7x the time for at most 30% smaller
 * files); when `meta` is given, a tEXt chunk with keyword "parameters" holds the
 * generation parameters the way AUTOMATIC1111 writes them (image_parameters_format),
 * so A1111-compatible tools read them back:
 *     <prompt>
 *     Negative prompt: <negative prompt>            (line left out when empty)
 *     Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 42, Size: 512x512,
 *     Model: v1-5-pruned, Denoising strength: 0.75, Clip skip: 2, Mask blur: 4
 *                     (one line; Denoising strength for img2img, Clip skip when > 1,
 *                     Mask blur for an A1111 inpainting request with a blur)
 * tEXt is Latin-1 by the PNG spec; like A1111 the text is written as UTF-8 bytes.
 * JPEG: 4:2:0 chroma subsampling at quality < 90, 4:4:4 at ≥ 90, quality 1…100.
 * WebP: quality 0…99 lossy (libwebp's quality factor, method 2, YUV 4:2:0); 100
 * lossless (libwebp's lossless preset 0: the decoded pixels are exactly the input).
 * At most 16383 pixels per side (WebP's limit).  No metadata.
 *
 * Errors never exit: libpng's longjmp is caught inside the call, libwebp's error codes
 * are read back, and every failure returns a status with a message naming the argument
 * or the library's reason.
 *
 * Ownership: the encoded bytes are malloc'ed; the caller frees them with free().
 * Thread-safety: every function is reentrant (no shared state; libpng and TurboJPEG
 * handles are per call), so an encoder pool may call them from any threads.
 */
#ifndef DIFFUSIOND_API_IMAGE_ENCODE_H
#define DIFFUSIOND_API_IMAGE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"
#include "models/pipeline.h"

#define IMAGE_MAX_SIDE 16384

/* What an image was made with (strings borrowed, may be NULL = empty). */
struct image_meta {
    const char *prompt;
    const char *negative_prompt;
    int steps;
    const char *sampler; /* display name, e.g. "DPM++ 2M Karras" */
    double cfg;
    uint64_t seed;
    int width, height;
    const char *model;
    int clip_skip;       /* A1111's "Clip skip" (1 = last layer); written when > 1 */
    double denoising_strength; /* img2img's strength, written when > 0 (txt2img: 0) */
    int mask_blur;       /* A1111's "Mask blur", written when > 0 (image_meta_for: 0; the
                            caller sets it: api_inpaint_mask_blur) */
};

enum image_format { IMAGE_PNG = 0, IMAGE_JPEG, IMAGE_WEBP };

/* The metadata of a decoded image made from p by the model named model_name: A1111's
 * sampler display name, Clip skip = p->clip_skip + 1.  Strings are borrowed from p and
 * model_name. */
struct image_meta image_meta_for(const struct gen_params *p, const char *model_name,
                                 const struct sd_image *img);

/* A1111's "parameters" text into buf (always NUL-terminated); returns the length the
 * full text needs (as snprintf). */
size_t image_parameters_format(const struct image_meta *meta, char *buf, size_t cap);

/* rgb: width·height·3 bytes, rows top to bottom.  meta may be NULL (no text chunk).
 * Invalid arguments (NULL pixels/outputs, sides outside [1, IMAGE_MAX_SIDE]) →
 * STATUS_INVALID_ARGUMENT naming them; a libpng failure → STATUS_INTERNAL with its
 * message; STATUS_OUT_OF_MEMORY. */
enum status image_encode_png(const uint8_t *rgb, int width, int height,
                             const struct image_meta *meta, uint8_t **out, size_t *out_len,
                             struct errbuf *err);

/* quality in [1, 100] (else STATUS_INVALID_ARGUMENT naming "quality"). */
enum status image_encode_jpeg(const uint8_t *rgb, int width, int height, int quality,
                              uint8_t **out, size_t *out_len, struct errbuf *err);

/* quality in [0, 100] (else STATUS_INVALID_ARGUMENT naming "quality"); 100 lossless;
 * a side above 16383 → STATUS_INVALID_ARGUMENT.
 * A libwebp failure → STATUS_INTERNAL (or OUT_OF_MEMORY) naming libwebp's error. */
enum status image_encode_webp(const uint8_t *rgb, int width, int height, int quality,
                              uint8_t **out, size_t *out_len, struct errbuf *err);

/* One entry for every format (what the server's encoder pool calls): PNG with meta
 * (quality ignored), JPEG at max(1, quality), WebP at quality (0 … 100). */
enum status image_encode(enum image_format format, const uint8_t *rgb, int width, int height,
                         int quality, const struct image_meta *meta, uint8_t **out,
                         size_t *out_len, struct errbuf *err);

/* The format a file name asks for: IMAGE_JPEG for .jpg/.jpeg, IMAGE_WEBP for .webp
 * (any case), else PNG. */
enum image_format image_format_for_path(const char *path);

/* Encodes in `format` (as image_encode) and writes the file at
 * `path` (STATUS_IO naming the path when it cannot be written). */
enum status image_write_file(const char *path, enum image_format format, const uint8_t *rgb,
                             int width, int height, int quality, const struct image_meta *meta,
                             struct errbuf *err);

#endif
