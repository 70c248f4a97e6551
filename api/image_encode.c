/* api/image_encode.c — PNG (libpng, A1111 "parameters" tEXt), JPEG (TurboJPEG) and WebP
 * (libwebp). */
#include "api/image_encode.h"

#include <errno.h>
#include <inttypes.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <turbojpeg.h>
#include <webp/encode.h>

/* zlib level 1: on 512x512 RGB 3.3-7x faster than the default 6 (40 vs 138 ms on a
 * noisy image, 22 vs 147 ms on a smooth one), files 3% smaller to 43% larger. */
#define PNG_ZLIB_LEVEL 1

struct image_meta image_meta_for(const struct gen_params *p, const char *model_name,
                                 const struct sd_image *img)
{
    return (struct image_meta){
        .prompt = p->prompt, .negative_prompt = p->negative_prompt, .steps = p->steps,
        .sampler = sd_sampler_display_name(p->sampler, p->scheduler), .cfg = p->guidance,
        .seed = img->seed, .width = img->width, .height = img->height, .model = model_name,
        .clip_skip = p->clip_skip + 1, .denoising_strength = p->init_image ? p->strength : 0.0};
}

size_t image_parameters_format(const struct image_meta *m, char *buf, size_t cap)
{
    const char *neg = m->negative_prompt ? m->negative_prompt : "";
    char skip[120] = "";
    int at = 0;
    if (m->denoising_strength > 0)
        at = snprintf(skip, sizeof skip, ", Denoising strength: %g", m->denoising_strength);
    if (m->clip_skip > 1 && at >= 0 && (size_t)at < sizeof skip)
        at += snprintf(skip + at, sizeof skip - (size_t)at, ", Clip skip: %d", m->clip_skip);
    if (m->mask_blur > 0 && at >= 0 && (size_t)at < sizeof skip)
        snprintf(skip + at, sizeof skip - (size_t)at, ", Mask blur: %d", m->mask_blur);
    int n = snprintf(buf, cap,
                     "%s\n%s%s%sSteps: %d, Sampler: %s, CFG scale: %g, Seed: %" PRIu64
                     ", Size: %dx%d, Model: %s%s",
                     m->prompt ? m->prompt : "", neg[0] ? "Negative prompt: " : "", neg,
                     neg[0] ? "\n" : "", m->steps, m->sampler ? m->sampler : "", m->cfg, m->seed,
                     m->width, m->height, m->model ? m->model : "", skip);
    return n < 0 ? 0 : (size_t)n;
}

static enum status check_image(const uint8_t *rgb, int width, int height, uint8_t **out,
                               size_t *out_len, struct errbuf *err)
{
    if (!rgb)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image: rgb pixels are NULL");
    if (!out || !out_len)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image: output pointer is NULL");
    if (width < 1 || width > IMAGE_MAX_SIDE)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image: width %d outside [1, %d]", width,
                           IMAGE_MAX_SIDE);
    if (height < 1 || height > IMAGE_MAX_SIDE)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image: height %d outside [1, %d]",
                           height, IMAGE_MAX_SIDE);
    return STATUS_OK;
}

/* --- PNG ------------------------------------------------------------------------------ */

struct png_job {
    jmp_buf jmp;
    char msg[256];
    uint8_t *buf;
    size_t len, cap;
    bool oom;
    const uint8_t *rgb;
    int width, height;
    char *text; /* the parameters chunk, or NULL */
};

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_job *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof job->msg, "%s", msg);
    longjmp(job->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_on_write(png_structp png, png_bytep data, size_t n)
{
    struct png_job *job = png_get_io_ptr(png);
    if (job->len + n > job->cap) {
        size_t cap = job->cap ? job->cap : 4096;
        while (cap < job->len + n)
            cap *= 2;
        uint8_t *grown = realloc(job->buf, cap);
        if (!grown) {
            job->oom = true;
            png_error(png, "out of memory");
        }
        job->buf = grown;
        job->cap = cap;
    }
    memcpy(job->buf + job->len, data, n);
    job->len += n;
}

static void png_on_flush(png_structp png)
{
    (void)png;
}

/* All libpng calls; returns false after a libpng error (job->msg says why). */
static bool png_run(struct png_job *job, png_structp png, png_infop info)
{
    if (setjmp(job->jmp))
        return false;
    png_set_write_fn(png, job, png_on_write, png_on_flush);
    png_set_compression_level(png, PNG_ZLIB_LEVEL);
    png_set_IHDR(png, info, (png_uint_32)job->width, (png_uint_32)job->height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (job->text) {
        png_text t;
        memset(&t, 0, sizeof t);
        t.compression = PNG_TEXT_COMPRESSION_NONE;
        t.key = (png_charp) "parameters";
        t.text = job->text;
        t.text_length = strlen(job->text);
        png_set_text(png, info, &t, 1);
    }
    png_write_info(png, info);
    for (int y = 0; y < job->height; y++)
        png_write_row(png, job->rgb + (size_t)y * (size_t)job->width * 3);
    png_write_end(png, info);
    return true;
}

static enum status png_text_for(const struct image_meta *meta, char **text, struct errbuf *err)
{
    *text = NULL;
    if (!meta)
        return STATUS_OK;
    const size_t need = image_parameters_format(meta, NULL, 0) + 1;
    *text = malloc(need);
    if (!*text)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "png: parameters text of %zu bytes", need);
    image_parameters_format(meta, *text, need);
    return STATUS_OK;
}

enum status image_encode_png(const uint8_t *rgb, int width, int height,
                             const struct image_meta *meta, uint8_t **out, size_t *out_len,
                             struct errbuf *err)
{
    enum status s = check_image(rgb, width, height, out, out_len, err);
    if (s != STATUS_OK)
        return s;
    struct png_job *job = calloc(1, sizeof *job);
    if (!job)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "png: encoder state");
    job->rgb = rgb;
    job->width = width;
    job->height = height;
    s = png_text_for(meta, &job->text, err);
    png_structp png = NULL;
    png_infop info = NULL;
    if (s == STATUS_OK) {
        png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job, png_on_error, png_on_warning);
        info = png ? png_create_info_struct(png) : NULL;
        if (!info)
            s = status_fail(err, STATUS_OUT_OF_MEMORY, "png: libpng structures");
    }
    if (s == STATUS_OK && !png_run(job, png, info))
        s = job->oom ? status_fail(err, STATUS_OUT_OF_MEMORY, "png: %d x %d image", width, height)
                     : status_fail(err, STATUS_INTERNAL, "png: libpng: %s", job->msg);
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    if (s == STATUS_OK) {
        *out = job->buf;
        *out_len = job->len;
    } else {
        free(job->buf);
    }
    free(job->text);
    free(job);
    return s;
}

/* --- JPEG ----------------------------------------------------------------------------- */

enum status image_encode_jpeg(const uint8_t *rgb, int width, int height, int quality,
                              uint8_t **out, size_t *out_len, struct errbuf *err)
{
    enum status s = check_image(rgb, width, height, out, out_len, err);
    if (s != STATUS_OK)
        return s;
    if (quality < 1 || quality > 100)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "quality: %d outside [1, 100]", quality);
    tjhandle tj = tjInitCompress();
    if (!tj)
        return status_fail(err, STATUS_INTERNAL, "jpeg: tjInitCompress: %s",
                           tjGetErrorStr2(NULL));
    unsigned char *buf = NULL;
    unsigned long len = 0;
    const int subsamp = quality >= 90 ? TJSAMP_444 : TJSAMP_420;
    if (tjCompress2(tj, rgb, width, 0, height, TJPF_RGB, &buf, &len, subsamp, quality,
                    TJFLAG_ACCURATEDCT) != 0) {
        s = status_fail(err, STATUS_INTERNAL, "jpeg: tjCompress2: %s", tjGetErrorStr2(tj));
        tjFree(buf);
    } else {
        /* hand back malloc'ed memory (tjFree is not free) */
        *out = malloc(len);
        if (!*out) {
            s = status_fail(err, STATUS_OUT_OF_MEMORY, "jpeg: %lu bytes", len);
        } else {
            memcpy(*out, buf, len);
            *out_len = len;
        }
        tjFree(buf);
    }
    tjDestroy(tj);
    return s;
}

/* --- WebP ----------------------------------------------------------------------------- */

/* libwebp's output, appended to a malloc'ed buffer (so the caller frees with free()). */
struct webp_sink {
    uint8_t *data;
    size_t len, cap;
};

static int webp_on_write(const uint8_t *data, size_t n, const WebPPicture *pic)
{
    struct webp_sink *sink = pic->custom_ptr;
    if (n > sink->cap - sink->len) {
        size_t cap = sink->cap ? sink->cap : 4096;
        while (n > cap - sink->len) {
            if (cap > SIZE_MAX / 2)
                return 0;
            cap *= 2;
        }
        uint8_t *grown = realloc(sink->data, cap);
        if (!grown)
            return 0; /* libwebp reports VP8_ENC_ERROR_BAD_WRITE */
        sink->data = grown;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->len, data, n);
    sink->len += n;
    return 1;
}

static const char *webp_error_name(WebPEncodingError e)
{
    switch (e) {
    case VP8_ENC_ERROR_OUT_OF_MEMORY: return "out of memory";
    case VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY: return "bitstream out of memory";
    case VP8_ENC_ERROR_NULL_PARAMETER: return "null parameter";
    case VP8_ENC_ERROR_INVALID_CONFIGURATION: return "invalid configuration";
    case VP8_ENC_ERROR_BAD_DIMENSION: return "bad dimension";
    case VP8_ENC_ERROR_PARTITION0_OVERFLOW: return "partition 0 overflow";
    case VP8_ENC_ERROR_PARTITION_OVERFLOW: return "partition overflow";
    case VP8_ENC_ERROR_BAD_WRITE: return "write failed (out of memory)";
    case VP8_ENC_ERROR_FILE_TOO_BIG: return "file too big";
    case VP8_ENC_ERROR_USER_ABORT: return "user abort";
    default: return "unknown error";
    }
}

static enum status webp_failed(WebPEncodingError code, const char *call, struct errbuf *err)
{
    const bool oom = code == VP8_ENC_ERROR_OUT_OF_MEMORY || code == VP8_ENC_ERROR_BAD_WRITE ||
                     code == VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY;
    return status_fail(err, oom ? STATUS_OUT_OF_MEMORY : STATUS_INTERNAL, "webp: %s: %s", call,
                       webp_error_name(code));
}

/* Lossy at quality, method 2, or lossless (quality 100), preset 0.  On 512x512 RGB
 * lossy method 2 took 41 ms for a file 3% smaller than libwebp's default method 4 in
 * 102 ms; lossless preset 0 31 ms (preset 1: 140 ms, 27% smaller; 2: 240 ms). */
#define WEBP_LOSSY_METHOD 2
#define WEBP_LOSSLESS_LEVEL 0

static enum status webp_config_for(int quality, WebPConfig *cfg, struct errbuf *err)
{
    const bool lossless = quality == 100;
    if (!WebPConfigPreset(cfg, WEBP_PRESET_DEFAULT, lossless ? 75.0f : (float)quality))
        return status_fail(err, STATUS_INTERNAL, "webp: WebPConfigPreset: version mismatch");
    cfg->method = WEBP_LOSSY_METHOD;
    if ((lossless && !WebPConfigLosslessPreset(cfg, WEBP_LOSSLESS_LEVEL)) ||
        !WebPValidateConfig(cfg))
        return status_fail(err, STATUS_INTERNAL, "webp: invalid configuration (libwebp %#x)",
                           (unsigned)WebPGetEncoderVersion());
    if (lossless)
        cfg->exact = 1;
    return STATUS_OK;
}

enum status image_encode_webp(const uint8_t *rgb, int width, int height, int quality,
                              uint8_t **out, size_t *out_len, struct errbuf *err)
{
    TRY(check_image(rgb, width, height, out, out_len, err));
    if (quality < 0 || quality > 100)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "quality: %d outside [0, 100]", quality);
    if (width > WEBP_MAX_DIMENSION || height > WEBP_MAX_DIMENSION)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image: %dx%d above WebP's %d per side",
                           width, height, WEBP_MAX_DIMENSION);
    WebPConfig cfg;
    TRY(webp_config_for(quality, &cfg, err));
    WebPPicture pic;
    if (!WebPPictureInit(&pic))
        return status_fail(err, STATUS_INTERNAL, "webp: WebPPictureInit: version mismatch");
    pic.use_argb = cfg.lossless; /* lossless encodes ARGB; lossy YUV 4:2:0 */
    pic.width = width;
    pic.height = height;
    struct webp_sink sink = {NULL, 0, 0};
    pic.writer = webp_on_write;
    pic.custom_ptr = &sink;
    enum status s = STATUS_OK;
    if (!WebPPictureImportRGB(&pic, rgb, width * 3))
        s = webp_failed(pic.error_code, "WebPPictureImportRGB", err);
    else if (!WebPEncode(&cfg, &pic))
        s = webp_failed(pic.error_code, "WebPEncode", err);
    WebPPictureFree(&pic);
    if (s != STATUS_OK) {
        free(sink.data);
        return s;
    }
    *out = sink.data;
    *out_len = sink.len;
    return STATUS_OK;
}

/* --- any format ------------------------------------------------------------------------ */

enum status image_encode(enum image_format format, const uint8_t *rgb, int width, int height,
                         int quality, const struct image_meta *meta, uint8_t **out,
                         size_t *out_len, struct errbuf *err)
{
    switch (format) {
    case IMAGE_PNG:
        return image_encode_png(rgb, width, height, meta, out, out_len, err);
    case IMAGE_JPEG:
        return image_encode_jpeg(rgb, width, height, quality < 1 ? 1 : quality, out, out_len,
                                 err);
    case IMAGE_WEBP:
        return image_encode_webp(rgb, width, height, quality, out, out_len, err);
    }
    return status_fail(err, STATUS_INVALID_ARGUMENT, "image: unknown format %d", (int)format);
}

/* --- files ---------------------------------------------------------------------------- */

enum image_format image_format_for_path(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0))
        return IMAGE_JPEG;
    if (dot && strcasecmp(dot, ".webp") == 0)
        return IMAGE_WEBP;
    return IMAGE_PNG;
}

static enum status write_bytes(const char *path, const uint8_t *data, size_t len,
                               struct errbuf *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return status_fail(err, STATUS_IO, "%s: %s", path, strerror(errno));
    const bool ok = fwrite(data, 1, len, f) == len;
    const int saved = errno;
    if (fclose(f) != 0 || !ok)
        return status_fail(err, STATUS_IO, "%s: write failed: %s", path,
                           strerror(ok ? errno : saved));
    return STATUS_OK;
}

enum status image_write_file(const char *path, enum image_format format, const uint8_t *rgb,
                             int width, int height, int quality, const struct image_meta *meta,
                             struct errbuf *err)
{
    if (!path || !path[0])
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image: no output path");
    uint8_t *data = NULL;
    size_t len = 0;
    enum status s = image_encode(format, rgb, width, height, quality, meta, &data, &len, err);
    if (s == STATUS_OK)
        s = write_bytes(path, data, len, err);
    free(data);
    return s;
}
