/* api/a1111_response.c — the /sdapi/v1 response bodies (api/a1111_response.h).  The
 * small bodies are built with jansson; txt2img's by hand (api/json_out.h), so that each
 * image's base64 is written once, straight into the response buffer. */
#include "api/a1111_response.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/image_encode.h"
#include "api/json_out.h"

#define VERSION_NAME "diffusiond"

static void emit_string(struct json_out *o, const void *s)
{
    json_out_string(o, s);
}

/* A JSON string of s; bytes that are not well-formed UTF-8 (a model folder's name, a
 * message cut mid-character) become U+FFFD, as json_out writes them, where jansson
 * would refuse the string.  NULL when out of memory. */
static json_t *utf8_string(const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (v || !s)
        return v;
    char *buf = NULL;
    size_t len = 0;
    struct errbuf err;
    if (json_out_write_twice(emit_string, s, &buf, &len, &err) != STATUS_OK)
        return NULL;
    v = json_loadb(buf, len, JSON_DECODE_ANY, NULL);
    free(buf);
    return v;
}

/* json_dumps(root) into *out, *len; root released. */
static enum status dump(json_t *root, char **out, size_t *len, struct errbuf *err)
{
    *out = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!*out)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "a1111 response");
    *len = strlen(*out);
    return STATUS_OK;
}

/* --- the lists ----------------------------------------------------------------------- */

/* A1111's scheduler names and labels for ours, in enum order. */
static const struct {
    const char *name, *label;
    double rho;
} SCHEDULERS[SD_SCHEDULER_COUNT_] = {
    [SD_SCHEDULER_DEFAULT] = {"automatic", "Automatic", -1.0},
    [SD_SCHEDULER_KARRAS] = {"karras", "Karras", 7.0},
    [SD_SCHEDULER_LEADING] = {"leading", "Leading", -1.0},
    [SD_SCHEDULER_LINSPACE] = {"uniform", "Uniform", -1.0},
    [SD_SCHEDULER_TRAILING] = {"sgm_uniform", "SGM Uniform", -1.0},
};

const char *a1111_scheduler_name(enum sd_scheduler s)
{
    return (int)s >= 0 && s < SD_SCHEDULER_COUNT_ ? SCHEDULERS[s].name : "automatic";
}

enum status a1111_samplers_write(char **out, size_t *len, struct errbuf *err)
{
    json_t *list = json_array();
    for (int k = 0; list && k < SAMPLER_KIND_COUNT_; k++) {
        if (k == SAMPLER_DPMPP_2M_KARRAS) /* A1111's "DPM++ 2M" + scheduler "karras" */
            continue;
        const enum sampler_kind kind = (enum sampler_kind)k;
        json_t *aliases = json_pack("[s]", sampler_kind_name(kind));
        json_array_append_new(list, json_pack("{s:s, s:o, s:{}}", "name",
                                              sd_sampler_display_name(kind, SD_SCHEDULER_DEFAULT),
                                              "aliases", aliases, "options"));
    }
    return dump(list, out, len, err);
}

enum status a1111_schedulers_write(char **out, size_t *len, struct errbuf *err)
{
    json_t *list = json_array();
    for (int s = 0; list && s < SD_SCHEDULER_COUNT_; s++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:n, s:f, s:b}", "name",
                                              SCHEDULERS[s].name, "label", SCHEDULERS[s].label,
                                              "aliases", "default_rho", SCHEDULERS[s].rho,
                                              "need_inner_model", 0));
    return dump(list, out, len, err);
}

enum status a1111_models_write(const char *const *names, int n, char **out, size_t *len,
                               struct errbuf *err)
{
    json_t *list = json_array();
    for (int i = 0; list && i < n; i++)
        json_array_append_new(list, json_pack("{s:o, s:o, s:n, s:n, s:o, s:n}", "title",
                                              utf8_string(names[i]), "model_name",
                                              utf8_string(names[i]), "hash", "sha256",
                                              "filename", utf8_string(names[i]), "config"));
    return dump(list, out, len, err);
}

enum status a1111_options_write(const char *model_name, char **out, size_t *len,
                                struct errbuf *err)
{
    return dump(json_pack("{s:o, s:n, s:i, s:s}", "sd_model_checkpoint",
                          utf8_string(model_name), "sd_checkpoint_hash",
                          "CLIP_stop_at_last_layers", 1, "samples_format", "png"),
                out, len, err);
}

enum status a1111_progress_write(const struct a1111_progress *p, char **out, size_t *len,
                                 struct errbuf *err)
{
    const double progress =
        p->steps_total > 0 ? (double)p->steps_done / (double)p->steps_total : 0.0;
    json_t *state = json_pack("{s:b, s:b, s:b, s:s, s:i, s:s, s:i, s:I, s:I}", "skipped", 0,
                              "interrupted", 0, "stopping_generation", 0, "job", "",
                              "job_count", p->job_count, "job_timestamp", "0", "job_no", 0,
                              "sampling_step", (json_int_t)p->steps_done, "sampling_steps",
                              (json_int_t)p->steps_total);
    const double eta = p->eta_s > 0 && p->eta_s < 1e9 ? p->eta_s : 0.0;
    return dump(json_pack("{s:f, s:f, s:o, s:n, s:n}", "progress", progress, "eta_relative",
                          eta, "state", state, "current_image", "textinfo"),
                out, len, err);
}

/* By hand (json_out): a message may hold any bytes (a cut of the request's value). */
static void emit_error(struct json_out *o, const void *arg)
{
    const struct api_error *e = arg;
    json_out_cstr(o, "{\"error\":");
    json_out_string(o, e->type);
    json_out_cstr(o, ",\"detail\":");
    json_out_string(o, e->message);
    json_out_cstr(o, ",\"body\":\"\",\"errors\":");
    json_out_string(o, e->message);
    json_out_cstr(o, ",\"param\":");
    json_out_string(o, e->param[0] ? e->param : NULL);
    json_out_cstr(o, ",\"code\":");
    json_out_string(o, e->code[0] ? e->code : NULL);
    json_out_raw(o, "}", 1);
}

char *a1111_error_body(const struct api_error *e, size_t *len)
{
    char *body = NULL;
    struct errbuf err;
    return json_out_write_twice(emit_error, e, &body, len, &err) == STATUS_OK ? body : NULL;
}

/* --- txt2img --------------------------------------------------------------------------- */

/* A1111's inpainting_fill number of ours. */
static int a1111_fill(enum api_inpaint_fill f)
{
    switch (f) {
    case API_FILL_FILL: return 0;
    case API_FILL_LATENT_NOISE: return 2;
    case API_FILL_LATENT_NOTHING: return 3;
    case API_FILL_ORIGINAL:
    case API_FILL_COUNT_:
    default: return 1;
    }
}

/* The inpainting fields of the request as A1111's parameters echo them (its mask
 * nulled, as A1111 nulls it). */
static json_t *inpaint_params(const struct a1111_request *t)
{
    const struct api_inpaint *in = &t->i2i.inpaint;
    json_t *blur = in->blur_x == in->blur_y ? json_integer(in->blur_x) : json_null();
    return json_pack("{s:n, s:o, s:i, s:i, s:i, s:b, s:i, s:i, s:n}", "mask", "mask_blur", blur,
                     "mask_blur_x", in->blur_x, "mask_blur_y", in->blur_y, "inpainting_fill",
                     a1111_fill(in->fill), "inpaint_full_res", t->inpaint_full_res,
                     "inpaint_full_res_padding", t->inpaint_full_res_padding,
                     "inpainting_mask_invert", in->invert ? 1 : 0, "latent_mask");
}

/* img2img's keys added to obj: A1111's denoising_strength, and in parameters
 * resize_mode and the inpainting fields, in info "Mask blur" among the
 * extra_generation_params; obj is returned (NULL stays NULL). */
static json_t *with_img2img(json_t *obj, const struct a1111_request *t, bool parameters)
{
    const struct gen_params *p = &t->req.params;
    if (!obj || !p->init_image)
        return obj;
    bool failed = json_object_set_new(obj, "denoising_strength", json_real(p->strength)) != 0;
    if (parameters) {
        json_t *inpaint = inpaint_params(t);
        failed |= json_object_set_new(obj, "resize_mode", json_integer(0)) != 0;
        failed |= !inpaint || json_object_update(obj, inpaint) != 0;
        json_decref(inpaint);
    }
    const int blur = api_inpaint_mask_blur(&t->i2i.inpaint);
    if (!parameters && blur > 0)
        failed |= json_object_set_new(json_object_get(obj, "extra_generation_params"),
                                      "Mask blur", json_integer(blur)) != 0;
    if (failed) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *parameters(const struct a1111_txt2img_response *r)
{
    const struct a1111_request *t = r->t;
    const struct gen_params *p = &t->req.params;
    return with_img2img(json_pack("{s:s, s:s, s:I, s:i, s:f, s:s, s:s, s:i, s:i, s:i, s:f, s:i, s:i, s:f, "
                     "s:b, s:{s:o, s:i}}",
                     "prompt", p->prompt ? p->prompt : "", "negative_prompt",
                     p->negative_prompt ? p->negative_prompt : "", "seed", (json_int_t)p->seed,
                     "subseed", -1, "subseed_strength", 0.0, "sampler_name",
                     sd_sampler_display_name(p->sampler, p->scheduler), "scheduler",
                     a1111_scheduler_name(p->scheduler), "batch_size", t->batch_size, "n_iter",
                     t->n_iter, "steps", p->steps, "cfg_scale", p->guidance, "width", r->width,
                     "height", r->height, "eta", p->eta, "send_images", t->send_images,
                     "override_settings", "sd_model_checkpoint", utf8_string(r->model_name),
                     "CLIP_stop_at_last_layers", p->clip_skip + 1),
                        t, true);
}

/* n copies of s. */
static json_t *repeat(const char *s, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(s));
    return a;
}

static json_t *seeds(const struct a1111_txt2img_response *r)
{
    json_t *a = json_array();
    for (int i = 0; a && i < r->n_images; i++)
        json_array_append_new(a, json_integer((json_int_t)r->images[i].seed));
    return a;
}

static json_t *infotexts(const struct a1111_txt2img_response *r)
{
    const struct gen_params *p = &r->t->req.params;
    json_t *a = json_array();
    for (int i = 0; a && i < r->n_images; i++) {
        const struct sd_image img = {.width = r->width, .height = r->height,
                                     .seed = r->images[i].seed};
        struct image_meta meta = image_meta_for(p, r->model_name, &img);
        meta.mask_blur = api_inpaint_mask_blur(&r->t->i2i.inpaint);
        const size_t need = image_parameters_format(&meta, NULL, 0);
        char *text = malloc(need + 1);
        if (!text) {
            json_decref(a);
            return NULL;
        }
        image_parameters_format(&meta, text, need + 1);
        json_t *v = utf8_string(text);
        free(text);
        if (!v || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* info: the JSON object A1111 sends as a string. */
static json_t *info(const struct a1111_txt2img_response *r)
{
    const struct a1111_request *t = r->t;
    const struct gen_params *p = &t->req.params;
    const char *prompt = p->prompt ? p->prompt : "";
    const char *neg = p->negative_prompt ? p->negative_prompt : "";
    char stamp[32] = "0";
    const time_t created = (time_t)r->created;
    struct tm tm;
    if (gmtime_r(&created, &tm))
        strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    return with_img2img(json_pack(
        "{s:s, s:o, s:s, s:o, s:I, s:o, s:I, s:o, s:f, s:i, s:i, s:s, s:f, s:i, s:i, s:b, "
        "s:n, s:o, s:n, s:i, s:i, s:{s:s}, s:i, s:o, s:[], s:s, s:i, s:s}",
        "prompt", prompt, "all_prompts", repeat(prompt, r->n_images), "negative_prompt", neg,
        "all_negative_prompts", repeat(neg, r->n_images), "seed", (json_int_t)r->images[0].seed,
        "all_seeds", seeds(r), "subseed", (json_int_t)r->images[0].seed, "all_subseeds",
        seeds(r), "subseed_strength", 0.0, "width", r->width, "height", r->height,
        "sampler_name", sd_sampler_display_name(p->sampler, p->scheduler), "cfg_scale",
        p->guidance, "steps", p->steps, "batch_size", t->batch_size, "restore_faces", 0,
        "sd_model_hash", "sd_model_name", utf8_string(r->model_name), "face_restoration_model",
        "seed_resize_from_w", -1, "seed_resize_from_h", -1, "extra_generation_params",
        "Schedule type", SCHEDULERS[p->scheduler].label, "index_of_first_image", 0,
        "infotexts", infotexts(r), "styles", "job_timestamp", stamp, "clip_skip",
        p->clip_skip + 1, "version", VERSION_NAME),
        t, false);
}

struct txt2img_body {
    const struct a1111_txt2img_response *r;
    const char *params, *info; /* JSON texts */
};

static void emit(struct json_out *o, const void *arg)
{
    const struct txt2img_body *b = arg;
    const struct a1111_txt2img_response *r = b->r;
    json_out_cstr(o, "{\"images\":[");
    for (int i = 0; r->t->send_images && i < r->n_images; i++) {
        if (i)
            json_out_raw(o, ",", 1);
        json_out_base64(o, r->images[i].data, r->images[i].len);
    }
    json_out_cstr(o, "],\"parameters\":");
    json_out_cstr(o, b->params);
    json_out_cstr(o, ",\"info\":");
    json_out_string(o, b->info);
    json_out_raw(o, ",", 1);
    api_image_metrics_emit(o, &r->metrics, r->images, r->n_images);
    const struct openai_image_request *q = &r->t->req;
    api_warnings_emit(o, (const char *const *)q->warnings, q->n_warnings);
    json_out_raw(o, "}", 1);
}

enum status a1111_txt2img_response_write(const struct a1111_txt2img_response *r, char **out,
                                         size_t *len, struct errbuf *err)
{
    *out = NULL;
    *len = 0;
    if (!r || !r->t || !r->images || r->n_images < 1 || !r->model_name)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "txt2img response: no images");
    char *params = NULL, *info_s = NULL;
    size_t n = 0;
    enum status s = dump(parameters(r), &params, &n, err);
    if (s == STATUS_OK)
        s = dump(info(r), &info_s, &n, err);
    if (s == STATUS_OK) {
        const struct txt2img_body b = {.r = r, .params = params, .info = info_s};
        s = json_out_write_twice(emit, &b, out, len, err);
    }
    free(params);
    free(info_s);
    return s;
}
