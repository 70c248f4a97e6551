/* api/openai_response.c — the images and models response bodies, Server-Timing. */
#include "api/openai_response.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/json_out.h"

#define MS_DECIMALS 3

/* A non-negative finite value, else 0. */
static double clean(double v)
{
    return v >= 0.0 && v < 1e15 ? v : 0.0;
}

static void emit_ms(struct json_out *o, const char *comma_key, double v)
{
    json_out_cstr(o, comma_key);
    json_out_fixed(o, clean(v), MS_DECIMALS);
}

void api_warnings_emit(struct json_out *o, const char *const *warnings, int n)
{
    if (n <= 0)
        return;
    json_out_cstr(o, ",\"warnings\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            json_out_raw(o, ",", 1);
        json_out_string(o, warnings[i]);
    }
    json_out_raw(o, "]", 1);
}

void api_image_metrics_emit(struct json_out *o, const struct api_image_metrics *m,
                            const struct api_image_out *images, int n_images)
{
    emit_ms(o, "\"metrics\":{\"queue_ms\":", m->queue_ms);
    emit_ms(o, ",\"text_encode_ms\":", m->text_encode_ms);
    emit_ms(o, ",\"denoise_ms\":", m->denoise_ms);
    emit_ms(o, ",\"vae_decode_ms\":", m->vae_decode_ms);
    emit_ms(o, ",\"image_encode_ms\":", m->image_encode_ms);
    emit_ms(o, ",\"total_ms\":", m->total_ms);
    emit_ms(o, ",\"steps_per_second\":", m->steps_per_second);
    json_out_cstr(o, ",\"batch_sizes\":[");
    for (int i = 0; i < m->n_batch_sizes; i++) {
        if (i)
            json_out_raw(o, ",", 1);
        json_out_i64(o, m->batch_sizes[i]);
    }
    json_out_cstr(o, "],\"seeds\":[");
    for (int i = 0; i < n_images; i++) {
        if (i)
            json_out_raw(o, ",", 1);
        json_out_u64(o, images[i].seed);
    }
    json_out_cstr(o, "]}");
}

static void emit_data(struct json_out *o, const struct api_images_response *r)
{
    json_out_cstr(o, "\"data\":[");
    for (int i = 0; i < r->n_images; i++) {
        const struct api_image_out *img = &r->images[i];
        json_out_cstr(o, i ? ",{" : "{");
        if (r->response_format == API_RESPONSE_URL) {
            json_out_cstr(o, "\"url\":");
            json_out_string(o, img->url);
        } else {
            json_out_cstr(o, "\"b64_json\":");
            json_out_base64(o, img->data, img->len);
        }
        json_out_cstr(o, ",\"seed\":");
        json_out_u64(o, img->seed);
        json_out_raw(o, "}", 1);
    }
    json_out_raw(o, "]", 1);
}

static void emit_images(struct json_out *o, const struct api_images_response *r)
{
    json_out_cstr(o, "{\"created\":");
    json_out_i64(o, r->created);
    json_out_raw(o, ",", 1);
    emit_data(o, r);
    json_out_cstr(o, ",\"output_format\":");
    json_out_string(o, api_output_format_name(r->output_format));
    char size[32];
    snprintf(size, sizeof size, "%dx%d", r->width, r->height);
    json_out_cstr(o, ",\"size\":");
    json_out_string(o, size);
    json_out_raw(o, ",", 1);
    api_image_metrics_emit(o, &r->metrics, r->images, r->n_images);
    api_warnings_emit(o, r->warnings, r->n_warnings);
    json_out_raw(o, "}", 1);
}

static enum status check_response(const struct api_images_response *r, struct errbuf *err)
{
    if (!r || !r->images || r->n_images < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "response: no images");
    if (r->metrics.n_batch_sizes < 0 || (r->metrics.n_batch_sizes > 0 && !r->metrics.batch_sizes))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "response: batch_sizes missing");
    if (r->n_warnings < 0 || (r->n_warnings > 0 && !r->warnings))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "response: warnings missing");
    for (int i = 0; i < r->n_images; i++) {
        const struct api_image_out *img = &r->images[i];
        const bool url = r->response_format == API_RESPONSE_URL;
        if (url ? !img->url : (!img->data && img->len > 0))
            return status_fail(err, STATUS_INVALID_ARGUMENT, "response: image %d has no %s", i,
                               url ? "url" : "data");
    }
    return STATUS_OK;
}

size_t api_images_response_length(const struct api_images_response *r)
{
    struct json_out o = json_out_counter();
    emit_images(&o, r);
    return o.len;
}

static void emit_images_v(struct json_out *o, const void *r)
{
    emit_images(o, r);
}

enum status api_images_response_write(const struct api_images_response *r, char **out,
                                      size_t *len, struct errbuf *err)
{
    if (!out || !len)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "response: output pointer is NULL");
    TRY(check_response(r, err));
    return json_out_write_twice(emit_images_v, r, out, len, err);
}

/* --- GET /v1/models ------------------------------------------------------------------- */

struct models_list {
    const struct api_model_entry *models;
    int n;
};

static void emit_models(struct json_out *o, const void *arg)
{
    const struct models_list *l = arg;
    json_out_cstr(o, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < l->n; i++) {
        const struct api_model_entry *m = &l->models[i];
        json_out_cstr(o, i ? ",{\"id\":" : "{\"id\":");
        json_out_string(o, m->id);
        json_out_cstr(o, ",\"object\":\"model\",\"created\":");
        json_out_i64(o, m->created);
        json_out_cstr(o, ",\"owned_by\":");
        json_out_string(o, m->owned_by ? m->owned_by : "diffusiond");
        json_out_raw(o, "}", 1);
    }
    json_out_cstr(o, "]}");
}

enum status api_models_list_write(const struct api_model_entry *models, int n, char **out,
                                  size_t *len, struct errbuf *err)
{
    if (!out || !len || n < 0 || (n > 0 && !models))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "models: bad arguments");
    for (int i = 0; i < n; i++)
        if (!models[i].id)
            return status_fail(err, STATUS_INVALID_ARGUMENT, "models: entry %d has no id", i);
    const struct models_list l = {models, n};
    return json_out_write_twice(emit_models, &l, out, len, err);
}

/* --- Server-Timing -------------------------------------------------------------------- */

size_t api_server_timing_format(const struct api_image_metrics *m, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "queue;dur=%.3f, encode;dur=%.3f, denoise;dur=%.3f, decode;dur=%.3f, "
                     "image;dur=%.3f, total;dur=%.3f",
                     clean(m->queue_ms), clean(m->text_encode_ms), clean(m->denoise_ms),
                     clean(m->vae_decode_ms), clean(m->image_encode_ms), clean(m->total_ms));
    return n < 0 ? 0 : (size_t)n;
}
