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

void image_rgba8_free(struct image_rgba8 *img)
{
    if (!img)
        return;
    free(img->rgba);
    *img = (struct image_rgba8){0, 0, NULL, false, false};
}

void image_gray8_free(struct image_gray8 *img)
{
    if (!img)
        return;
    free(img->v);
    *img = (struct image_gray8){0, 0, NULL};
}

/* --- shared ----------------------------------------------------------------------------- */

struct limits {
    unsigned long side;
    size_t pixels;
    bool probe; /* stop after the header: out gets the size, no pixels */
    bool rgba;  /* keep the alpha channel (image_decode_rgba): no flattening */
};

/* What a format's decoder hands back: 3 or 4 channels (4: alpha, unflattened, only
 * with limits.rgba), and what the file says about transparency. */
struct decoded {
    int width, height, channels;
    uint8_t *px;
    bool has_alpha, pillow_rgba;
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

/* Pillow opens a PNG of colour type 6 (RGB + alpha, 8 or 16 bits) in mode RGBA; its
 * other transparent PNGs (gray + alpha, palette or RGB with tRNS) in other modes.  The
 * IHDR chunk comes first (libpng has read it when this is asked). */
static bool png_pillow_rgba(const uint8_t *data, size_t len)
{
    return len > 25 && memcmp(data + 12, "IHDR", 4) == 0 && data[25] == 6;
}

static enum status png_pixels(const uint8_t *data, size_t len, const struct limits *lim,
                              struct decoded *out, struct errbuf *err)
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
    const bool alpha = (img.format & PNG_FORMAT_FLAG_ALPHA) != 0; /* tRNS counts */
    if (s != STATUS_OK || lim->probe) {
        if (s == STATUS_OK)
            *out = (struct decoded){(int)img.width, (int)img.height, 0, NULL, alpha,
                                    alpha && png_pillow_rgba(data, len)};
        png_image_free(&img);
        return s;
    }
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
    *out = (struct decoded){w, h, alpha ? 4 : 3, buf, alpha, alpha && png_pillow_rgba(data, len)};
    return STATUS_OK;
}

static enum status decode_png(const uint8_t *data, size_t len, const struct limits *lim,
                              struct decoded *out, struct errbuf *err)
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
                               const struct limits *lim, struct decoded *out,
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
        *out = (struct decoded){w, h, 0, NULL, false, false};
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
    *out = (struct decoded){w, h, 3, buf, false, false};
    return STATUS_OK;
}

static enum status decode_jpeg(const uint8_t *data, size_t len, const struct limits *lim,
                               struct decoded *out, struct errbuf *err)
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
                               struct decoded *out, struct errbuf *err)
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
        const bool has = cfg.input.has_alpha != 0;
        *out = (struct decoded){cfg.input.width, cfg.input.height, 0, NULL, has, has};
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
    /* Pillow opens a WebP with alpha in mode RGBA */
    *out = (struct decoded){w, h, channels, buf, alpha, alpha};
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
                          const struct limits *flags, struct decoded *out, struct errbuf *err)
{
    *out = (struct decoded){0, 0, 0, NULL, false, false};
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
        .probe = flags->probe,
        .rgba = flags->rgba};
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
    if (!out)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_decode: out is NULL");
    *out = (struct image_rgb8){0, 0, NULL};
    const struct limits flags = {0};
    struct decoded d;
    TRY(decode(data, len, max_side, max_pixels, &flags, &d, err));
    const size_t npix = (size_t)d.width * (size_t)d.height;
    *out = (struct image_rgb8){d.width, d.height, d.channels == 4 ? flatten_rgba(d.px, npix)
                                                                  : d.px};
    return STATUS_OK;
}

/* RGB (w·h·3 bytes) widened in place to RGBA with alpha 255 (buf holds w·h·4). */
static void widen_rgb(uint8_t *buf, size_t npix)
{
    for (size_t i = npix; i-- > 0;) { /* from the end: pixel i is read before it is overwritten */
        buf[4 * i + 3] = 255;
        buf[4 * i + 2] = buf[3 * i + 2];
        buf[4 * i + 1] = buf[3 * i + 1];
        buf[4 * i] = buf[3 * i];
    }
}

enum status image_decode_rgba(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                              struct image_rgba8 *out, struct errbuf *err)
{
    if (!out)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_decode_rgba: out is NULL");
    *out = (struct image_rgba8){0, 0, NULL, false, false};
    const struct limits flags = {.rgba = true};
    struct decoded d;
    TRY(decode(data, len, max_side, max_pixels, &flags, &d, err));
    const size_t npix = (size_t)d.width * (size_t)d.height;
    if (d.channels == 3) {
        uint8_t *wide = realloc(d.px, npix * 4);
        if (!wide) {
            free(d.px);
            return status_fail(err, STATUS_OUT_OF_MEMORY, "%dx%d image: %zu bytes of pixels",
                               d.width, d.height, npix * 4);
        }
        widen_rgb(wide, npix);
        d.px = wide;
    }
    *out = (struct image_rgba8){d.width, d.height, d.px, d.has_alpha, d.pillow_rgba};
    return STATUS_OK;
}

enum status image_probe(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                        int *width, int *height, struct errbuf *err)
{
    const struct limits flags = {.probe = true};
    struct decoded head;
    TRY(decode(data, len, max_side, max_pixels, &flags, &head, err));
    *width = head.width;
    *height = head.height;
    return STATUS_OK;
}

enum status image_probe_rgba(const uint8_t *data, size_t len, int max_side, size_t max_pixels,
                             struct image_rgba8 *head, struct errbuf *err)
{
    if (!head)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_probe_rgba: head is NULL");
    *head = (struct image_rgba8){0, 0, NULL, false, false};
    const struct limits flags = {.probe = true};
    struct decoded d;
    TRY(decode(data, len, max_side, max_pixels, &flags, &d, err));
    *head = (struct image_rgba8){d.width, d.height, NULL, d.has_alpha, d.pillow_rgba};
    return STATUS_OK;
}

enum status image_rgba8_flatten(const struct image_rgba8 *in, struct image_rgb8 *out,
                                struct errbuf *err)
{
    if (!out)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_rgba8_flatten: out is NULL");
    *out = (struct image_rgb8){0, 0, NULL};
    if (!in || !in->rgba || in->width < 1 || in->height < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_rgba8_flatten: an empty image");
    const size_t npix = (size_t)in->width * (size_t)in->height;
    uint8_t *buf;
    TRY(alloc_pixels(in->width, in->height, 4, &buf, err));
    memcpy(buf, in->rgba, npix * 4);
    *out = (struct image_rgb8){in->width, in->height, flatten_rgba(buf, npix)};
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

/* An image being resampled: w·h pixels of ch (1 or 3) interleaved 8-bit samples. */
struct plane {
    int w, h, ch;
    const uint8_t *px;
};

/* One output pixel of the horizontal pass: RGB unrolled (the start images). */
static void h_pixel_rgb(const uint8_t *p, const int32_t *k, int n, uint8_t *o)
{
    int64_t r = 1 << (COEF_BITS - 1), g = r, b = r;
    for (int j = 0; j < n; j++) {
        r += (int64_t)p[3 * j] * k[j];
        g += (int64_t)p[3 * j + 1] * k[j];
        b += (int64_t)p[3 * j + 2] * k[j];
    }
    o[0] = clip8(r);
    o[1] = clip8(g);
    o[2] = clip8(b);
}

static void h_pixel_gray(const uint8_t *p, const int32_t *k, int n, uint8_t *o)
{
    int64_t v = 1 << (COEF_BITS - 1);
    for (int j = 0; j < n; j++)
        v += (int64_t)p[j] * k[j];
    o[0] = clip8(v);
}

/* Rows [row0, row0 + rows) of src resampled along x into dst (out_w wide, src->ch). */
static void pass_horizontal(const struct plane *src, int row0, int rows, const struct axis *ax,
                            int out_w, uint8_t *dst)
{
    const int ch = src->ch;
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src->px + (size_t)(row0 + y) * (size_t)src->w * (size_t)ch;
        uint8_t *o = dst + (size_t)y * (size_t)out_w * (size_t)ch;
        for (int x = 0; x < out_w; x++) {
            const int32_t *k = ax->k + (size_t)x * (size_t)ax->ksize;
            const uint8_t *p = in + (size_t)ax->first[x] * (size_t)ch;
            if (ch == 3)
                h_pixel_rgb(p, k, ax->count[x], o + 3 * (size_t)x);
            else
                h_pixel_gray(p, k, ax->count[x], o + (size_t)x);
        }
    }
}

/* src resampled along y into dst (out_h rows); the axis's rows are relative to src's
 * first row, row0 of the image. */
static void pass_vertical(const struct plane *src, int row0, const struct axis *ax, int out_h,
                          uint8_t *dst)
{
    const size_t stride = (size_t)src->w * (size_t)src->ch;
    for (int y = 0; y < out_h; y++) {
        const int32_t *k = ax->k + (size_t)y * (size_t)ax->ksize;
        const uint8_t *top = src->px + (size_t)(ax->first[y] - row0) * stride;
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
static bool vertical_first(const struct plane *in, int width, int height)
{
    const int dy = in->h - height, dx = in->w - width;
    return dy > 0 && dy > 2 * dx;
}

/* Both passes; the intermediate image in tmp. */
static enum status resize_two_pass(const struct plane *in, const struct axis *hx,
                                   const struct axis *vy, int width, int height, uint8_t *dst,
                                   struct errbuf *err)
{
    uint8_t *tmp;
    if (vertical_first(in, width, height)) {
        TRY(alloc_pixels(in->w, height, in->ch, &tmp, err));
        pass_vertical(in, 0, vy, height, tmp);
        const struct plane mid = {in->w, height, in->ch, tmp};
        pass_horizontal(&mid, 0, height, hx, width, dst);
    } else {
        /* only the rows the vertical pass reads go through the horizontal one */
        const int row0 = vy->first[0];
        const int rows = vy->first[height - 1] + vy->count[height - 1] - row0;
        TRY(alloc_pixels(width, rows, in->ch, &tmp, err));
        pass_horizontal(in, row0, rows, hx, width, tmp);
        const struct plane mid = {width, rows, in->ch, tmp};
        pass_vertical(&mid, row0, vy, height, dst);
    }
    free(tmp);
    return STATUS_OK;
}

static enum status resize_checked(const struct plane *in, int width, int height, uint8_t **out,
                                  struct errbuf *err)
{
    const bool horizontal = width != in->w, vertical = height != in->h;
    struct axis hx = {0, NULL, NULL, NULL}, vy = {0, NULL, NULL, NULL};
    uint8_t *dst = NULL;
    enum status s = STATUS_OK;
    if (horizontal)
        s = axis_make(in->w, width, &hx, err);
    if (s == STATUS_OK && vertical)
        s = axis_make(in->h, height, &vy, err);
    if (s == STATUS_OK)
        s = alloc_pixels(width, height, in->ch, &dst, err);
    if (s == STATUS_OK) {
        if (!horizontal && !vertical)
            memcpy(dst, in->px, (size_t)width * (size_t)height * (size_t)in->ch);
        else if (!horizontal)
            pass_vertical(in, 0, &vy, height, dst);
        else if (!vertical)
            pass_horizontal(in, 0, height, &hx, width, dst);
        else
            s = resize_two_pass(in, &hx, &vy, width, height, dst, err);
    }
    if (s == STATUS_OK)
        *out = dst;
    else
        free(dst);
    axis_free(&hx);
    axis_free(&vy);
    return s;
}

/* The checks both resizes share; what = the function's name. */
static enum status check_resize(const char *what, const uint8_t *px, int in_w, int in_h,
                                int width, int height, struct errbuf *err)
{
    if (!px || in_w < 1 || in_h < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: an empty input image", what);
    if (width < 1 || height < 1 || width > IMAGE_DECODE_SIDE_MAX ||
        height > IMAGE_DECODE_SIDE_MAX)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: %dx%d outside [1, %d] a side",
                           what, width, height, IMAGE_DECODE_SIDE_MAX);
    return STATUS_OK;
}

enum status image_resize(const struct image_rgb8 *in, int width, int height,
                         struct image_rgb8 *out, struct errbuf *err)
{
    if (!out || out == in)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_resize: out is NULL or in");
    *out = (struct image_rgb8){0, 0, NULL};
    if (!in)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_resize: an empty input image");
    TRY(check_resize("image_resize", in->rgb, in->width, in->height, width, height, err));
    const struct plane src = {in->width, in->height, 3, in->rgb};
    uint8_t *px;
    TRY(resize_checked(&src, width, height, &px, err));
    *out = (struct image_rgb8){width, height, px};
    return STATUS_OK;
}

enum status image_resize_gray(const struct image_gray8 *in, int width, int height,
                              struct image_gray8 *out, struct errbuf *err)
{
    if (!out || out == in)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "image_resize_gray: out is NULL or in");
    *out = (struct image_gray8){0, 0, NULL};
    if (!in)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "image_resize_gray: an empty input image");
    TRY(check_resize("image_resize_gray", in->v, in->width, in->height, width, height, err));
    const struct plane src = {in->width, in->height, 1, in->v};
    uint8_t *px;
    TRY(resize_checked(&src, width, height, &px, err));
    *out = (struct image_gray8){width, height, px};
    return STATUS_OK;
}
