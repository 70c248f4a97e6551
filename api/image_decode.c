/* api/image_decode.c — PNG (libpng's simplified API), JPEG (TurboJPEG) and WebP (libwebp)
 * to 8-bit RGB with alpha flattened onto white; Pillow's Lanczos resample. */
#include "api/image_decode.h"

#include <limits.h>
#include <math.h>
#include <png.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <webp/decode.h>

void image_rgb8_free(struct image_rgb8 *img)
{
    if (!img)
        return;
    free(img->rgb);
    *img = (struct image_rgb8){0, 0, NULL};
}

/* --- shared ----------------------------------------------------------------------------- */

struct limits {
    unsigned long side;
    size_t pixels;
    bool probe; /* stop after the header: out gets the size, no pixels */
};

/* The header's size against the limits, before anything is decoded or allocated. */
static enum status check_size(unsigned long w, unsigned long h, const struct limits *lim,
                              struct errbuf *err)
{
    if (w == 0 || h == 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "an empty %lux%lu image", w, h);
    if (w > lim->side || h > lim->side)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "a %lux%lu image: at most %lu pixels a side", w, h, lim->side);
    /* both sides ≤ 65535: the product fits an unsigned long long */
    if ((unsigned long long)w * h > lim->pixels)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "a %lux%lu image: at most %zu pixels",
                           w, h, lim->pixels);
    return STATUS_OK;
}

static enum status alloc_pixels(int w, int h, int channels, uint8_t **buf, struct errbuf *err)
{
    const size_t n = (size_t)w * (size_t)h * (size_t)channels;
    *buf = malloc(n);
    if (!*buf)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%dx%d image: %zu bytes of pixels", w, h,
                           n);
    return STATUS_OK;
}

/* round(c·a/255 + 255·(1 − a/255)) = round((c·a + 255·(255 − a)) / 255); the quotient's
 * fraction is k/255, never one half, so adding 127 rounds it. */
static uint8_t over_white(unsigned c, unsigned a)
{
    return (uint8_t)((c * a + 255u * (255u - a) + 127u) / 255u);
}

/* RGBA (w·h·4 bytes) flattened onto white into RGB, in place, then shrunk to w·h·3. */
static uint8_t *flatten_rgba(uint8_t *buf, size_t npix)
{
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *s = buf + 4 * i;
        const unsigned r = s[0], g = s[1], b = s[2], a = s[3];
        uint8_t *d = buf + 3 * i; /* 3i ≤ 4i: pixel i is read before it is overwritten */
        d[0] = over_white(r, a);
        d[1] = over_white(g, a);
        d[2] = over_white(b, a);
    }
    uint8_t *shrunk = realloc(buf, npix * 3);
    return shrunk ? shrunk : buf;
}

/* --- PNG -------------------------------------------------------------------------------- */

static enum status png_failed(png_image *img, struct errbuf *err)
{
    enum status s = status_fail(err, STATUS_INVALID_ARGUMENT, "corrupt PNG: %s",
                                img->message[0] ? img->message : "unknown libpng error");
    png_image_free(img);
    return s;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The offset of the first gAMA chunk before IDAT, or 0 when there is none (or the chunk
 * list is malformed before one: libpng then reports it). */
static size_t png_find_gama(const uint8_t *data, size_t len)
{
    size_t pos = 8;
    while (len - pos >= 12) {
        const uint32_t n = be32(data + pos);
        if (n > len - pos - 12 || memcmp(data + pos + 4, "IDAT", 4) == 0)
            return 0;
        if (memcmp(data + pos + 4, "gAMA", 4) == 0)
            return pos;
        pos += 12 + (size_t)n;
    }
    return 0;
}

/* data (a PNG, len ≥ 8) without the gAMA chunks before IDAT into out (len bytes);
 * returns the length written. */
static size_t png_copy_without_gama(const uint8_t *data, size_t len, uint8_t *out)
{
    size_t pos = 8, n = 8;
    memcpy(out, data, 8);
    while (len - pos >= 12) {
        const uint32_t size = be32(data + pos);
        if (size > len - pos - 12 || memcmp(data + pos + 4, "IDAT", 4) == 0)
            break;
        const size_t chunk = 12 + (size_t)size;
        if (memcmp(data + pos + 4, "gAMA", 4) != 0) {
            memcpy(out + n, data + pos, chunk);
            n += chunk;
        }
        pos += chunk;
    }
    memcpy(out + n, data + pos, len - pos);
    return n + len - pos;
}

/* libpng's simplified API converts a PNG whose gAMA is not sRGB's to sRGB; Pillow, and so
 * A1111, ignore gAMA.  *copy: data without its gAMA chunks (malloc'ed, *copy_len bytes),
 * or NULL when it has none. */
static enum status png_strip_gama(const uint8_t *data, size_t len, uint8_t **copy,
                                  size_t *copy_len, struct errbuf *err)
{
    *copy = NULL;
    if (png_find_gama(data, len) == 0)
        return STATUS_OK;
    *copy = malloc(len);
    if (!*copy)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "png: a copy of %zu bytes", len);
    *copy_len = png_copy_without_gama(data, len, *copy);
    return STATUS_OK;
}

static enum status png_pixels(const uint8_t *data, size_t len, const struct limits *lim,
                              struct image_rgb8 *out, struct errbuf *err)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, len))
        return png_failed(&img, err);
    /* 16-bit samples without gAMA/sRGB are sRGB-encoded in practice (Pillow keeps their
     * high byte); libpng's default would take them as linear and brighten them. */
    img.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    enum status s = check_size(img.width, img.height, lim, err);
    if (s != STATUS_OK || lim->probe) {
        if (s == STATUS_OK)
            *out = (struct image_rgb8){(int)img.width, (int)img.height, NULL};
        png_image_free(&img);
        return s;
    }
    const bool alpha = (img.format & PNG_FORMAT_FLAG_ALPHA) != 0; /* tRNS counts */
    const int w = (int)img.width, h = (int)img.height;
    img.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    uint8_t *buf;
    s = alloc_pixels(w, h, alpha ? 4 : 3, &buf, err);
    if (s != STATUS_OK) {
        png_image_free(&img);
        return s;
    }
    /* Frees libpng's state whether it succeeds or not. */
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        free(buf);
        return png_failed(&img, err);
    }
    *out = (struct image_rgb8){w, h, alpha ? flatten_rgba(buf, (size_t)w * (size_t)h) : buf};
    return STATUS_OK;
}

static enum status decode_png(const uint8_t *data, size_t len, const struct limits *lim,
                              struct image_rgb8 *out, struct errbuf *err)
{
    if (lim->probe) /* the header: no copy needed */
        return png_pixels(data, len, lim, out, err);
    uint8_t *copy;
    size_t copy_len = 0;
    TRY(png_strip_gama(data, len, &copy, &copy_len, err));
    enum status s = copy ? png_pixels(copy, copy_len, lim, out, err)
                         : png_pixels(data, len, lim, out, err);
    free(copy);
    return s;
}

/* --- JPEG ------------------------------------------------------------------------------- */

/* libjpeg calls an input that ends early a warning ("Premature end of JPEG file", or
 * "… premature end of data segment" when a marker cuts a scan short). */
static bool jpeg_truncated(const char *msg)
{
    return strstr(msg, "remature end") != NULL;
}

/* A failure is called truncation when libjpeg says so or the bytes do not end with the
 * EOI marker (a cut before the scan fails as "missing SOS marker"). */
static enum status jpeg_failed(tjhandle tj, const uint8_t *data, size_t len,
                               struct errbuf *err)
{
    const char *msg = tjGetErrorStr2(tj);
    if (jpeg_truncated(msg) || data[len - 2] != 0xFF || data[len - 1] != 0xD9)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "truncated JPEG");
    return status_fail(err, STATUS_INVALID_ARGUMENT, "corrupt JPEG: %s", msg);
}

/* After the header: the size checked, then the pixels (TJPF_RGB, default flags: the
 * accurate integer IDCT and fancy upsampling, as Pillow decodes). */
static enum status jpeg_pixels(tjhandle tj, const uint8_t *data, size_t len,
                               const struct limits *lim, struct image_rgb8 *out,
                               struct errbuf *err)
{
    int w = 0, h = 0, subsamp = -1, colorspace = -1;
    if (tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &subsamp, &colorspace) < 0)
        return jpeg_failed(tj, data, len, err);
    if (w < 1 || h < 1) /* a tables-only datastream */
        return status_fail(err, STATUS_INVALID_ARGUMENT, "corrupt JPEG: no image in it");
    TRY(check_size((unsigned long)w, (unsigned long)h, lim, err));
    if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "a CMYK JPEG: only RGB and grayscale JPEGs are read");
    if (lim->probe) {
        *out = (struct image_rgb8){w, h, NULL};
        return STATUS_OK;
    }
    uint8_t *buf;
    TRY(alloc_pixels(w, h, 3, &buf, err));
    /* A warning (-1 with TJERR_WARNING) still decodes the whole image: refuse only an
     * input that ended early (Pillow: "image file is truncated"), keep the rest (stray
     * bytes between markers) as libjpeg and Pillow do. */
    if (tjDecompress2(tj, data, (unsigned long)len, buf, w, 0, h, TJPF_RGB, 0) < 0 &&
        (tjGetErrorCode(tj) != TJERR_WARNING || jpeg_truncated(tjGetErrorStr2(tj)))) {
        free(buf);
        return jpeg_failed(tj, data, len, err);
    }
    *out = (struct image_rgb8){w, h, buf};
    return STATUS_OK;
}

static enum status decode_jpeg(const uint8_t *data, size_t len, const struct limits *lim,
                               struct image_rgb8 *out, struct errbuf *err)
{
#if SIZE_MAX > ULONG_MAX /* TurboJPEG takes unsigned long sizes */
    if (len > ULONG_MAX)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "a JPEG of %zu bytes", len);
#endif
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "jpeg: tjInitDecompress: %s",
                           tjGetErrorStr2(NULL));
    enum status s = jpeg_pixels(tj, data, len, lim, out, err);
    tjDestroy(tj);
    return s;
}

/* --- WebP ------------------------------------------------------------------------------- */

static enum status webp_failed(VP8StatusCode code, struct errbuf *err)
{
    switch (code) {
    case VP8_STATUS_NOT_ENOUGH_DATA:
        return status_fail(err, STATUS_INVALID_ARGUMENT, "truncated WebP");
    case VP8_STATUS_OUT_OF_MEMORY:
        return status_fail(err, STATUS_OUT_OF_MEMORY, "webp: libwebp is out of memory");
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "unsupported WebP: a feature libwebp cannot decode");
    case VP8_STATUS_BITSTREAM_ERROR:
        return status_fail(err, STATUS_INVALID_ARGUMENT, "corrupt WebP: bitstream error");
    case VP8_STATUS_INVALID_PARAM:
    case VP8_STATUS_SUSPENDED:
    case VP8_STATUS_USER_ABORT:
    case VP8_STATUS_OK:
    default:
        return status_fail(err, STATUS_INVALID_ARGUMENT, "corrupt WebP: libwebp status %d",
                           (int)code);
    }
}

static enum status decode_webp(const uint8_t *data, size_t len, const struct limits *lim,
                               struct image_rgb8 *out, struct errbuf *err)
{
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg))
        return status_fail(err, STATUS_INTERNAL, "webp: WebPInitDecoderConfig: version mismatch");
    VP8StatusCode st = WebPGetFeatures(data, len, &cfg.input);
    if (st != VP8_STATUS_OK)
        return webp_failed(st, err);
    TRY(check_size((unsigned long)cfg.input.width, (unsigned long)cfg.input.height, lim, err));
    if (cfg.input.has_animation)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "unsupported WebP: animated");
    if (lim->probe) {
        *out = (struct image_rgb8){cfg.input.width, cfg.input.height, NULL};
        return STATUS_OK;
    }
    const bool alpha = cfg.input.has_alpha != 0;
    const int w = cfg.input.width, h = cfg.input.height, channels = alpha ? 4 : 3;
    uint8_t *buf;
    TRY(alloc_pixels(w, h, channels, &buf, err));
    cfg.output.colorspace = alpha ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = buf;
    cfg.output.u.RGBA.stride = w * channels;
    cfg.output.u.RGBA.size = (size_t)w * (size_t)h * (size_t)channels;
    st = WebPDecode(data, len, &cfg);
    WebPFreeDecBuffer(&cfg.output); /* external memory: frees nothing of ours */
    if (st != VP8_STATUS_OK) {
        free(buf);
        return webp_failed(st, err);
    }
    *out = (struct image_rgb8){w, h, alpha ? flatten_rgba(buf, (size_t)w * (size_t)h) : buf};
    return STATUS_OK;
}

/* --- dispatch --------------------------------------------------------------------------- */

enum image_kind { KIND_UNKNOWN, KIND_PNG, KIND_JPEG, KIND_WEBP };

static enum image_kind sniff(const uint8_t *d, size_t len)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (len >= 8 && memcmp(d, png_sig, 8) == 0)
        return KIND_PNG;
    if (len >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
        return KIND_JPEG;
    if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return KIND_WEBP;
    return KIND_UNKNOWN;
}

static enum status decode(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                          bool probe, struct image_rgb8 *out, struct errbuf *err)
{
    if (!out)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_decode: out is NULL");
    *out = (struct image_rgb8){0, 0, NULL};
    if (!data && len > 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_decode: data is NULL");
    if (max_side < 1 || max_pixels < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "image_decode: max_side %d and max_pixels %zu must be positive",
                           max_side, max_pixels);
    const struct limits lim = {
        .side = (unsigned long)(max_side < IMAGE_DECODE_SIDE_MAX ? max_side
                                                                 : IMAGE_DECODE_SIDE_MAX),
        .pixels = max_pixels,
        .probe = probe};
    switch (sniff(data, len)) {
    case KIND_PNG:
        return decode_png(data, len, &lim, out, err);
    case KIND_JPEG:
        return decode_jpeg(data, len, &lim, out, err);
    case KIND_WEBP:
        return decode_webp(data, len, &lim, out, err);
    case KIND_UNKNOWN:
    default:
        return status_fail(err, STATUS_INVALID_ARGUMENT, "not a PNG, JPEG or WebP image");
    }
}

enum status image_decode(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                         struct image_rgb8 *out, struct errbuf *err)
{
    return decode(data, len, max_side, max_pixels, false, out, err);
}

enum status image_probe(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                        int *width, int *height, struct errbuf *err)
{
    struct image_rgb8 head;
    TRY(decode(data, len, max_side, max_pixels, true, &head, err));
    *width = head.width;
    *height = head.height;
    return STATUS_OK;
}

/* --- Lanczos resample (Pillow's ImagingResample) ------------------------------------------ */

#define LANCZOS_SUPPORT 3.0
#define COEF_BITS 22 /* 32 − 8 − 2: a sum of 8-bit samples times coefficients fits 32 bits */

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x *= 3.14159265358979323846;
    return sin(x) / x;
}

static double lanczos(double x)
{
    return (x >= -LANCZOS_SUPPORT && x < LANCZOS_SUPPORT) ? sinc(x) * sinc(x / LANCZOS_SUPPORT)
                                                          : 0.0;
}

/* One axis of the resample: output sample i reads input samples first[i] … first[i] +
 * count[i] − 1 with the fixed-point weights k[i·ksize …]. */
struct axis {
    int ksize;
    int *first, *count;
    int32_t *k;
};

static void axis_free(struct axis *ax)
{
    free(ax->first);
    free(ax->count);
    free(ax->k);
    *ax = (struct axis){0, NULL, NULL, NULL};
}

/* The window of output sample i (center ± support, rounded, clipped to the input) and
 * its normalized weights, rounded half away from zero to COEF_BITS fixed point. */
static void axis_sample(struct axis *ax, int i, int in_size, double scale, double filterscale,
                        double support, double *w)
{
    const double center = (i + 0.5) * scale;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0)
        lo = 0;
    if (hi > in_size)
        hi = in_size;
    const int n = hi - lo;
    const double inv = 1.0 / filterscale; /* multiplied, not divided: Pillow's roundings */
    double sum = 0.0;
    for (int x = 0; x < n; x++) {
        w[x] = lanczos((x + lo - center + 0.5) * inv);
        sum += w[x];
    }
    int32_t *k = ax->k + (size_t)i * (size_t)ax->ksize;
    for (int x = 0; x < ax->ksize; x++) {
        const double v = x < n ? (sum != 0.0 ? w[x] / sum : w[x]) : 0.0;
        const double fixed = v * (double)(1 << COEF_BITS);
        k[x] = (int32_t)(v < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    ax->first[i] = lo;
    ax->count[i] = n > 0 ? n : 0;
}

static enum status axis_make(int in_size, int out_size, struct axis *ax, struct errbuf *err)
{
    const double scale = (double)in_size / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = LANCZOS_SUPPORT * filterscale;
    *ax = (struct axis){(int)ceil(support) * 2 + 1, NULL, NULL, NULL};
    ax->first = malloc((size_t)out_size * sizeof *ax->first);
    ax->count = malloc((size_t)out_size * sizeof *ax->count);
    ax->k = malloc((size_t)out_size * (size_t)ax->ksize * sizeof *ax->k);
    double *w = malloc((size_t)ax->ksize * sizeof *w);
    if (!ax->first || !ax->count || !ax->k || !w) {
        free(w);
        axis_free(ax);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "resize: %d weights for %d samples",
                           (int)ceil(support) * 2 + 1, out_size);
    }
    for (int i = 0; i < out_size; i++)
        axis_sample(ax, i, in_size, scale, filterscale, support, w);
    free(w);
    return STATUS_OK;
}

/* Σ v·k in fixed point, plus one half, to 8 bits clipped. */
static uint8_t clip8(int64_t acc)
{
    if (acc < 0)
        return 0;
    const int64_t v = acc >> COEF_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

/* Rows [row0, row0 + rows) of src (src_w wide) resampled along x into dst (out_w wide). */
static void pass_horizontal(const uint8_t *src, int src_w, int row0, int rows,
                            const struct axis *ax, int out_w, uint8_t *dst)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)(row0 + y) * (size_t)src_w * 3;
        uint8_t *o = dst + (size_t)y * (size_t)out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const int32_t *k = ax->k + (size_t)x * (size_t)ax->ksize;
            const uint8_t *p = in + (size_t)ax->first[x] * 3;
            int64_t r = 1 << (COEF_BITS - 1), g = r, b = r;
            for (int j = 0; j < ax->count[x]; j++) {
                r += (int64_t)p[3 * j] * k[j];
                g += (int64_t)p[3 * j + 1] * k[j];
                b += (int64_t)p[3 * j + 2] * k[j];
            }
            o[3 * x] = clip8(r);
            o[3 * x + 1] = clip8(g);
            o[3 * x + 2] = clip8(b);
        }
    }
}

/* src (w wide) resampled along y into dst (out_h rows); the axis's rows are relative to
 * src's first row, row0 of the image. */
static void pass_vertical(const uint8_t *src, int w, int row0, const struct axis *ax,
                          int out_h, uint8_t *dst)
{
    const size_t stride = (size_t)w * 3;
    for (int y = 0; y < out_h; y++) {
        const int32_t *k = ax->k + (size_t)y * (size_t)ax->ksize;
        const uint8_t *top = src + (size_t)(ax->first[y] - row0) * stride;
        uint8_t *o = dst + (size_t)y * stride;
        for (size_t c = 0; c < stride; c++) {
            int64_t acc = 1 << (COEF_BITS - 1);
            for (int j = 0; j < ax->count[y]; j++)
                acc += (int64_t)top[(size_t)j * stride + c] * k[j];
            o[c] = clip8(acc);
        }
    }
}

/* Pillow (≥ 13) runs the vertical pass first when the height shrinks by more than twice
 * what the width does (a smaller intermediate); the order changes where the intermediate
 * is rounded to 8 bits, so it is followed here. */
static bool vertical_first(const struct image_rgb8 *in, int width, int height)
{
    const int dy = in->height - height, dx = in->width - width;
    return dy > 0 && dy > 2 * dx;
}

/* Both passes; the intermediate image in tmp. */
static enum status resize_two_pass(const struct image_rgb8 *in, const struct axis *hx,
                                   const struct axis *vy, int width, int height, uint8_t *dst,
                                   struct errbuf *err)
{
    uint8_t *tmp;
    if (vertical_first(in, width, height)) {
        TRY(alloc_pixels(in->width, height, 3, &tmp, err));
        pass_vertical(in->rgb, in->width, 0, vy, height, tmp);
        pass_horizontal(tmp, in->width, 0, height, hx, width, dst);
    } else {
        /* only the rows the vertical pass reads go through the horizontal one */
        const int row0 = vy->first[0];
        const int rows = vy->first[height - 1] + vy->count[height - 1] - row0;
        TRY(alloc_pixels(width, rows, 3, &tmp, err));
        pass_horizontal(in->rgb, in->width, row0, rows, hx, width, tmp);
        pass_vertical(tmp, width, row0, vy, height, dst);
    }
    free(tmp);
    return STATUS_OK;
}

static enum status resize_checked(const struct image_rgb8 *in, int width, int height,
                                  struct image_rgb8 *out, struct errbuf *err)
{
    const bool horizontal = width != in->width, vertical = height != in->height;
    struct axis hx = {0, NULL, NULL, NULL}, vy = {0, NULL, NULL, NULL};
    uint8_t *dst = NULL;
    enum status s = STATUS_OK;
    if (horizontal)
        s = axis_make(in->width, width, &hx, err);
    if (s == STATUS_OK && vertical)
        s = axis_make(in->height, height, &vy, err);
    if (s == STATUS_OK)
        s = alloc_pixels(width, height, 3, &dst, err);
    if (s == STATUS_OK) {
        if (!horizontal)
            pass_vertical(in->rgb, width, 0, &vy, height, dst);
        else if (!vertical)
            pass_horizontal(in->rgb, in->width, 0, height, &hx, width, dst);
        else
            s = resize_two_pass(in, &hx, &vy, width, height, dst, err);
    }
    if (s == STATUS_OK)
        *out = (struct image_rgb8){width, height, dst};
    else
        free(dst);
    axis_free(&hx);
    axis_free(&vy);
    return s;
}

enum status image_resize(const struct image_rgb8 *in, int width, int height,
                         struct image_rgb8 *out, struct errbuf *err)
{
    if (!out || out == in)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_resize: out is NULL or in");
    *out = (struct image_rgb8){0, 0, NULL};
    if (!in || !in->rgb || in->width < 1 || in->height < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_resize: an empty input image");
    if (width < 1 || height < 1 || width > IMAGE_DECODE_SIDE_MAX ||
        height > IMAGE_DECODE_SIDE_MAX)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "image_resize: %dx%d outside [1, %d] a side", width, height,
                           IMAGE_DECODE_SIDE_MAX);
    if (width == in->width && height == in->height) {
        uint8_t *copy;
        TRY(alloc_pixels(width, height, 3, &copy, err));
        memcpy(copy, in->rgb, (size_t)width * (size_t)height * 3);
        *out = (struct image_rgb8){width, height, copy};
        return STATUS_OK;
    }
    return resize_checked(in, width, height, out, err);
}
