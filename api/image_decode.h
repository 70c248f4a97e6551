/* api/image_decode.h — uploaded start images (img2img) decoded to 8-bit RGB (or RGBA with
 * the alpha kept, for masks), and resized the way AUTOMATIC1111's "Just resize" does
 * (Pillow's Image.resize with LANCZOS), RGB or one gray plane (a mask).
 *
 * image_decode() detects the format by its magic bytes, not by any name or MIME type:
 *   PNG  (89 'PNG' 0D 0A 1A 0A) — libpng's simplified png_image API, from memory: every
 *        colour type and bit depth (palette, gray, gray+alpha, RGB, RGBA, 1…16 bits,
 *        tRNS).  As in Pillow, gAMA is ignored (libpng would convert to sRGB: the
 *        chunk is left out of a copy of the file) and 16-bit samples are sRGB-encoded
 *        (not libpng's default of linear), scaled to 8 bits (rounded: Pillow keeps the
 *        high byte, ±1).
 *   JPEG (FF D8 FF)            — libjpeg-turbo's TurboJPEG (tjDecompressHeader3, then
 *        tjDecompress2 to RGB, accurate integer IDCT, fancy upsampling: Pillow's
 *        defaults); grayscale JPEGs come out as R = G = B.  A JPEG cut short (libjpeg
 *        only warns) is refused, as Pillow refuses it; libjpeg's other warnings (stray
 *        bytes between markers) are not.  CMYK/YCCK JPEGs are refused.
 *   WebP ("RIFF" size "WEBP")   — libwebp: WebPGetFeatures, then WebPDecode{RGB,RGBA}Into;
 *        still images only (lossy, lossless, with alpha; not animated).
 * image_decode flattens alpha onto white, as A1111 flattens img2img images onto its
 * img2img_background_color (#ffffff): out = round(c·a/255 + 255·(1 − a/255)).
 * image_decode_rgba keeps it: the same decode, 4 samples a pixel (alpha 255 where the
 * file has none), and says whether the file has transparency and whether Pillow would
 * open it in mode "RGBA" (what AUTOMATIC1111's masks look at; api/image_mask.h).
 * Colour profiles and gamma chunks are ignored (A1111 ignores them too).
 *
 * The size limits are checked against the header before any pixel is decoded or
 * allocated (a small file claiming a huge image is refused cheaply): each side at most
 * max_side (and never above IMAGE_DECODE_SIDE_MAX, whatever max_side says), width·height
 * at most max_pixels, neither side 0.
 *
 * Errors: STATUS_INVALID_ARGUMENT for anything wrong with the bytes, with a message that
 * names no field (the caller prefixes its own, e.g. "init_images[0]: "):
 *     "not a PNG, JPEG or WebP image", "a 20000x10 image: at most 2048 pixels a side",
 *     "a 3000x3000 image: at most 4194304 pixels", "an empty 0x10 image",
 *     "corrupt PNG: <libpng's reason>" (a cut PNG too: libpng cannot tell),
 *     "truncated JPEG" (libjpeg says the data ended early, or the bytes do not end with
 *     the EOI marker), "corrupt JPEG: <libjpeg's reason>", "a CMYK JPEG: …",
 *     "truncated WebP", "corrupt WebP: bitstream error", "unsupported WebP: animated" …
 * STATUS_OUT_OF_MEMORY when the pixels cannot be allocated.  No library error escapes as
 * a longjmp, abort or message on stderr (libpng's simplified API catches its own errors;
 * TurboJPEG and libwebp return codes).
 *
 * image_resize() is Pillow's ImagingResample with the Lanczos-3 filter (the one
 * Image.resize(size, Image.LANCZOS) runs on an RGB image; image_resize_gray() the same
 * on one 8-bit plane, as on an "L" image — per channel the same sums): separable, each output
 * sample a normalized window of the filter over center ± 3·max(1, in/out) input
 * samples, coefficients in 22-bit fixed point, each pass rounded and clipped to 8 bits.
 * The horizontal pass runs first unless the height shrinks by more than twice as many
 * pixels as the width (Pillow ≥ 13's order; Pillow ≤ 12 always ran horizontal first,
 * which differs by a few units where the order changed).  Same size: a copy.
 *
 * Ownership: a filled struct image_rgb8 / image_rgba8 / image_gray8 owns its malloc'ed
 * pixels; the caller releases them with image_rgb8_free / image_rgba8_free /
 * image_gray8_free.  On failure *out is left empty ({0, 0, NULL}).
 * Thread-safety: every function is reentrant (no shared state; decoder handles are per
 * call), so request threads may call them concurrently.
 */
#ifndef DIFFUSIOND_API_IMAGE_DECODE_H
#define DIFFUSIOND_API_IMAGE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

/* The largest side image_decode accepts whatever max_side says (JPEG's own limit is
 * 65500, WebP's 16383). */
#define IMAGE_DECODE_SIDE_MAX 65535

/* width·height·3 bytes, rows top to bottom, R G B per pixel. */
struct image_rgb8 {
    int width, height;
    uint8_t *rgb;
};

/* width·height·4 bytes, R G B A per pixel, the samples as the file holds them. */
struct image_rgba8 {
    int width, height;
    uint8_t *rgba;
    bool has_alpha;   /* the file has transparency: an alpha channel (PNG gray + alpha or
                         RGBA, WebP with alpha) or a PNG tRNS chunk; false: every alpha is 255 */
    bool pillow_rgba; /* Pillow opens the file in mode "RGBA": a PNG of colour type 6 (RGB +
                         alpha, 8 or 16 bits) or a WebP with alpha */
};

/* width·height bytes, one 8-bit sample a pixel, rows top to bottom (a mask). */
struct image_gray8 {
    int width, height;
    uint8_t *v;
};

/* Frees img's pixels and zeroes it.  NULL-safe; an empty image is fine. */
void image_rgb8_free(struct image_rgb8 *img);
void image_rgba8_free(struct image_rgba8 *img);
void image_gray8_free(struct image_gray8 *img);

/* Decodes len bytes of PNG, JPEG or WebP into *out (see the top of this file).
 * max_side ≥ 1 and max_pixels ≥ 1, data non-NULL when len > 0 and out non-NULL (else
 * STATUS_INVALID_ARGUMENT naming the argument: a programmer error). */
enum status image_decode(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                         struct image_rgb8 *out, struct errbuf *err);

/* image_decode without the flattening: RGBA, alpha 255 where the file has none (the RGB
 * samples are image_decode's where alpha is 255).  Same arguments and errors. */
enum status image_decode_rgba(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                              struct image_rgba8 *out, struct errbuf *err);

/* in flattened onto white into *out, exactly as image_decode flattens (a copy; in is
 * left as it is).  STATUS_INVALID_ARGUMENT for an empty in; STATUS_OUT_OF_MEMORY. */
enum status image_rgba8_flatten(const struct image_rgba8 *in, struct image_rgb8 *out,
                                struct errbuf *err);

/* The format's header only: the image's size and the same checks as image_decode
 * (format, limits, CMYK, animation) without decoding a pixel — cheap, so a caller can
 * size a request on one thread and decode on another.  A file that passes may still
 * fail image_decode (corrupt data after the header). */
enum status image_probe(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                        int *width, int *height, struct errbuf *err);

/* image_probe with what image_decode_rgba would say about transparency: *head gets the
 * size, has_alpha and pillow_rgba, and no pixels (rgba NULL). */
enum status image_probe_rgba(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                             struct image_rgba8 *head, struct errbuf *err);

/* Resamples in to width × height into *out (Pillow's LANCZOS; see above).  width and
 * height in [1, IMAGE_DECODE_SIDE_MAX] and in a non-empty image, else
 * STATUS_INVALID_ARGUMENT; STATUS_OUT_OF_MEMORY.  out must not be in. */
enum status image_resize(const struct image_rgb8 *in, int width, int height,
                         struct image_rgb8 *out, struct errbuf *err);

/* image_resize on one plane (Pillow's LANCZOS on an "L" image; the same rules). */
enum status image_resize_gray(const struct image_gray8 *in, int width, int height,
                              struct image_gray8 *out, struct errbuf *err);

#endif
