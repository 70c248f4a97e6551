/* api/a1111_request.c — POST /sdapi/v1/txt2img and /sdapi/v1/options bodies
 * (api/a1111_request.h). */
#include "api/a1111_request.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/base64.h"
#include "api/image_mask.h"
#include "api/json_fields.h"

typedef enum status (*txt2img_reader)(const json_t *v, const struct api_limits *lim,
                                      struct a1111_request *t, struct api_error *e);

/* --- fields this server has --------------------------------------------------------- */

static enum status f_prompt(const json_t *v, const struct api_limits *lim,
                            struct a1111_request *t, struct api_error *e)
{
    free(t->req.prompt); /* the default "" */
    t->req.prompt = NULL;
    return json_field_string(v, "prompt", lim->max_prompt_chars, &t->req.prompt, e);
}

static enum status f_negative_prompt(const json_t *v, const struct api_limits *lim,
                                     struct a1111_request *t, struct api_error *e)
{
    return json_field_string(v, "negative_prompt", lim->max_prompt_chars,
                             &t->req.negative_prompt, e);
}

static enum status f_seed(const json_t *v, const struct api_limits *lim,
                          struct a1111_request *t, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    if (json_field_int(v, "seed", -1, LLONG_MAX, &x, e) != STATUS_OK)
        return json_field_bad(e, "seed", "must be -1 (random) or an integer in [0, "
                                         "9223372036854775807]%s%s", NULL, NULL);
    t->req.has_seed = x >= 0;
    t->req.seed = x >= 0 ? (uint64_t)x : 0;
    return STATUS_OK;
}

static enum status f_sampler_name(const json_t *v, const struct api_limits *lim,
                                  struct a1111_request *t, struct api_error *e)
{
    (void)lim;
    TRY(json_field_sampler(v, "sampler_name", &t->req.sampler, e));
    t->req.has_sampler = true;
    return STATUS_OK;
}

/* A1111's deprecated name for the sampler: checked always, used when sampler_name is
 * absent. */
static enum status f_sampler_index(const json_t *v, const struct api_limits *lim,
                                   struct a1111_request *t, struct api_error *e)
{
    enum sampler_kind k;
    (void)lim;
    TRY(json_field_sampler(v, "sampler_index", &k, e));
    if (!t->req.has_sampler)
        t->req.sampler = k;
    t->req.has_sampler = true;
    return STATUS_OK;
}

static enum status f_scheduler(const json_t *v, const struct api_limits *lim,
                               struct a1111_request *t, struct api_error *e)
{
    (void)lim;
    TRY(json_field_scheduler(v, "scheduler", &t->req.scheduler, e));
    t->req.has_scheduler = true;
    return STATUS_OK;
}

static enum status f_batch_size(const json_t *v, const struct api_limits *lim,
                                struct a1111_request *t, struct api_error *e)
{
    json_int_t x = 0;
    TRY(json_field_int(v, "batch_size", 1, lim->max_n, &x, e));
    t->batch_size = (int)x;
    return STATUS_OK;
}

static enum status f_n_iter(const json_t *v, const struct api_limits *lim,
                            struct a1111_request *t, struct api_error *e)
{
    json_int_t x = 0;
    TRY(json_field_int(v, "n_iter", 1, lim->max_n, &x, e));
    t->n_iter = (int)x;
    return STATUS_OK;
}

static enum status f_steps(const json_t *v, const struct api_limits *lim,
                           struct a1111_request *t, struct api_error *e)
{
    json_int_t x = 0;
    TRY(json_field_int(v, "steps", 1, lim->max_steps, &x, e));
    t->req.has_steps = true;
    t->req.steps = (int)x;
    return STATUS_OK;
}

static enum status f_cfg_scale(const json_t *v, const struct api_limits *lim,
                               struct a1111_request *t, struct api_error *e)
{
    (void)lim;
    TRY(json_field_number(v, "cfg_scale", 0.0, GEN_MAX_GUIDANCE, &t->req.guidance, e));
    t->req.has_guidance = true;
    return STATUS_OK;
}

static enum status f_side(const json_t *v, const char *field, int lo, int hi, int *out,
                          struct a1111_request *t, struct api_error *e)
{
    json_int_t x = 0;
    TRY(json_field_int(v, field, lo, hi, &x, e));
    *out = (int)x;
    t->req.has_size = true;
    return STATUS_OK;
}

static enum status f_width(const json_t *v, const struct api_limits *lim,
                           struct a1111_request *t, struct api_error *e)
{
    return f_side(v, "width", lim->min_side, lim->max_width, &t->req.width, t, e);
}

static enum status f_height(const json_t *v, const struct api_limits *lim,
                            struct a1111_request *t, struct api_error *e)
{
    return f_side(v, "height", lim->min_side, lim->max_height, &t->req.height, t, e);
}

static enum status f_eta(const json_t *v, const struct api_limits *lim, struct a1111_request *t,
                         struct api_error *e)
{
    (void)lim;
    TRY(json_field_number(v, "eta", 0.0, 1.0, &t->req.eta, e));
    t->req.has_eta = true;
    return STATUS_OK;
}

static enum status f_send_images(const json_t *v, const struct api_limits *lim,
                                 struct a1111_request *t, struct api_error *e)
{
    (void)lim;
    return json_field_bool(v, "send_images", &t->send_images, e);
}

static enum status warn_ignored(struct a1111_request *t, const char *key, struct api_error *e)
{
    char msg[160];
    snprintf(msg, sizeof msg, "override_settings.%.64s: not a setting of this server; ignored",
             key);
    return openai_image_request_warn(&t->req, msg, e);
}

static enum status f_override_settings(const json_t *v, const struct api_limits *lim,
                                       struct a1111_request *t, struct api_error *e)
{
    (void)lim;
    if (!json_is_object(v))
        return json_field_wrong_type(e, "override_settings", "an object", v);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        if (json_is_null(val))
            continue;
        if (strcmp(key, "sd_model_checkpoint") == 0) {
            TRY(json_field_string(val, "override_settings.sd_model_checkpoint", 0,
                                  &t->req.model, e));
        } else if (strcmp(key, "CLIP_stop_at_last_layers") == 0) {
            json_int_t x = 0;
            TRY(json_field_int(val, "override_settings.CLIP_stop_at_last_layers", 1, INT_MAX,
                               &x, e));
            t->req.has_clip_skip = true;
            t->req.clip_skip = (int)x - 1;
        } else {
            TRY(warn_ignored(t, key, e));
        }
    }
    return STATUS_OK;
}

/* --- fields this server cannot honour: accepted at their "off" value only ---------- */

static enum status must_be_false(const json_t *v, const char *field, const char *what,
                                 struct api_error *e)
{
    bool on = false;
    TRY(json_field_bool(v, field, &on, e));
    return on ? json_field_bad(e, field, "%s is not supported; leave it out or false%s", what,
                               NULL)
              : STATUS_OK;
}

static enum status f_enable_hr(const json_t *v, const struct api_limits *lim,
                               struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    return must_be_false(v, "enable_hr", "hires. fix", e);
}

static enum status f_restore_faces(const json_t *v, const struct api_limits *lim,
                                   struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    return must_be_false(v, "restore_faces", "face restoration", e);
}

static enum status f_tiling(const json_t *v, const struct api_limits *lim,
                            struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    return must_be_false(v, "tiling", "tiling", e);
}

static enum status f_styles(const json_t *v, const struct api_limits *lim,
                            struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    if (!json_is_array(v))
        return json_field_wrong_type(e, "styles", "an array", v);
    return json_array_size(v) == 0
               ? STATUS_OK
               : json_field_bad(e, "styles", "prompt styles are not supported; send []%s%s",
                                NULL, NULL);
}

static enum status f_alwayson_scripts(const json_t *v, const struct api_limits *lim,
                                      struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    if (!json_is_object(v))
        return json_field_wrong_type(e, "alwayson_scripts", "an object", v);
    return json_object_size(v) == 0
               ? STATUS_OK
               : json_field_bad(e, "alwayson_scripts",
                                "extensions (scripts) are not supported; send {}%s%s", NULL,
                                NULL);
}

static enum status f_script_name(const json_t *v, const struct api_limits *lim,
                                 struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    if (!json_is_string(v))
        return json_field_wrong_type(e, "script_name", "a string", v);
    return json_string_length(v) == 0
               ? STATUS_OK
               : json_field_bad(e, "script_name",
                                "scripts are not supported; leave it out, null or \"\"%s%s",
                                NULL, NULL);
}

static enum status must_be_zero(const json_t *v, const char *field, const char *what,
                                struct api_error *e)
{
    double x = 0;
    TRY(json_field_number(v, field, -1e300, 1e300, &x, e));
    return x == 0.0 ? STATUS_OK
                    : json_field_bad(e, field, "%s is not supported; leave it out or 0%s", what,
                                     NULL);
}

static enum status f_subseed_strength(const json_t *v, const struct api_limits *lim,
                                      struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    return must_be_zero(v, "subseed_strength", "a variation seed", e);
}

static enum status f_s_churn(const json_t *v, const struct api_limits *lim,
                             struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    return must_be_zero(v, "s_churn", "stochastic churn", e);
}

static enum status no_resize(const json_t *v, const char *field, struct api_error *e)
{
    json_int_t x = 0;
    TRY(json_field_int(v, field, LLONG_MIN, LLONG_MAX, &x, e));
    return x <= 0 ? STATUS_OK
                  : json_field_bad(e, field, "resizing the seed is not supported; leave it out "
                                             "or -1%s%s", NULL, NULL);
}

static enum status f_seed_resize_w(const json_t *v, const struct api_limits *lim,
                                   struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    return no_resize(v, "seed_resize_from_w", e);
}

static enum status f_seed_resize_h(const json_t *v, const struct api_limits *lim,
                                   struct a1111_request *t, struct api_error *e)
{
    (void)lim, (void)t;
    return no_resize(v, "seed_resize_from_h", e);
}

/* Read in this order (the first failing field is reported); sampler_index after
 * sampler_name, which wins. */
static const struct {
    const char *name;
    txt2img_reader read;
} FIELDS[] = {
    {"prompt", f_prompt},
    {"negative_prompt", f_negative_prompt},
    {"seed", f_seed},
    {"sampler_name", f_sampler_name},
    {"sampler_index", f_sampler_index},
    {"scheduler", f_scheduler},
    {"batch_size", f_batch_size},
    {"n_iter", f_n_iter},
    {"steps", f_steps},
    {"cfg_scale", f_cfg_scale},
    {"width", f_width},
    {"height", f_height},
    {"eta", f_eta},
    {"override_settings", f_override_settings},
    {"send_images", f_send_images},
    {"enable_hr", f_enable_hr},
    {"restore_faces", f_restore_faces},
    {"tiling", f_tiling},
    {"styles", f_styles},
    {"alwayson_scripts", f_alwayson_scripts},
    {"script_name", f_script_name},
    {"subseed_strength", f_subseed_strength},
    {"s_churn", f_s_churn},
    {"seed_resize_from_w", f_seed_resize_w},
    {"seed_resize_from_h", f_seed_resize_h},
};

static enum status check_counts(const struct api_limits *lim, struct a1111_request *t,
                                struct api_error *e)
{
    if (t->batch_size * t->n_iter > lim->max_n) {
        char msg[160];
        snprintf(msg, sizeof msg, "batch_size %d × n_iter %d = %d images; this server makes at "
                 "most %d a request", t->batch_size, t->n_iter, t->batch_size * t->n_iter,
                 lim->max_n);
        return json_field_bad(e, "batch_size", "%s%s", msg, NULL);
    }
    t->req.n = t->batch_size * t->n_iter;
    if (t->req.has_seed && t->req.seed > (uint64_t)LLONG_MAX - (uint64_t)(t->req.n - 1))
        return json_field_bad(e, "seed", "seed + images - 1 must be at most 9223372036854775807 "
                                         "(image i uses seed + i)%s%s", NULL, NULL);
    return STATUS_OK;
}

static void defaults(struct a1111_request *t)
{
    memset(t, 0, sizeof *t);
    t->batch_size = t->n_iter = 1;
    t->send_images = true;
    t->req.n = 1;
    t->req.output_format = IMAGE_PNG; /* A1111 answers PNG */
    t->req.quality = API_DEFAULT_QUALITY;
    t->req.response_format = API_RESPONSE_B64_JSON;
    t->req.a1111_fields = true;
}

/* The txt2img fields of root (an object) into t. */
static enum status read_fields(const json_t *root, const struct api_limits *limits,
                               struct a1111_request *t, struct api_error *e)
{
    if (!(t->req.prompt = strdup("")))
        return json_field_oom(e, "prompt");
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        const json_t *v = json_object_get(root, FIELDS[i].name);
        if (v && !json_is_null(v))
            TRY(FIELDS[i].read(v, limits, t, e));
    }
    return check_counts(limits, t, e);
}

static enum status read_img2img(const json_t *root, const struct api_limits *limits,
                                struct a1111_request *t, struct api_error *e);

/* A txt2img body, or with img2img an img2img one, into t (freed on failure). */
static enum status parse_body(const char *body, size_t len, const struct api_limits *limits,
                              bool img2img, struct a1111_request *t, struct api_error *e)
{
    defaults(t);
    json_t *root = NULL;
    enum status s = json_field_load(body, len, &root, e);
    if (s == STATUS_OK)
        s = read_fields(root, limits, t, e);
    if (s == STATUS_OK && img2img)
        s = read_img2img(root, limits, t, e);
    json_decref(root);
    if (s != STATUS_OK)
        a1111_request_free(t);
    return s;
}

enum status a1111_txt2img_parse(const char *body, size_t len, const struct api_limits *limits,
                                struct a1111_request *t, struct api_error *e)
{
    return parse_body(body, len, limits, false, t, e);
}

/* --- img2img ------------------------------------------------------------------------ */

static const struct api_img2img_fields FIELDS_I2I = {"init_images", "denoising_strength", "mask",
                                                     0.0, false};

/* A base64 string (after an optional "data:…," prefix) decoded into *bytes; field and
 * `what` name it in errors ("init_images", "the first image"; "mask", "it"). */
static enum status b64_bytes(const json_t *v, const char *field, const char *want,
                             const char *what, uint8_t **bytes, size_t *n, struct api_error *e)
{
    if (!json_is_string(v))
        return json_field_wrong_type(e, field, want, v);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strncmp(s, "data:", 5) == 0) {
        const char *comma = memchr(s, ',', len);
        if (!comma)
            return json_field_bad(e, field, "a data: URL without a comma%s%s", NULL, NULL);
        len -= (size_t)(comma + 1 - s);
        s = comma + 1;
    }
    *bytes = malloc(len / 4 * 3 + 3);
    if (!*bytes)
        return json_field_oom(e, field);
    if (!base64_decode(s, len, *bytes, n)) {
        free(*bytes);
        *bytes = NULL;
        return json_field_bad(e, field, "%s is not valid base64 (standard alphabet, '=' "
                                        "padding, no line breaks)", what, NULL);
    }
    return STATUS_OK;
}

static enum status read_init_images(const json_t *root, struct a1111_request *t,
                                    struct api_error *e)
{
    const json_t *v = json_object_get(root, "init_images");
    if (!v || json_is_null(v))
        return json_field_bad(e, "init_images", "required: an array of base64 images%s%s", NULL,
                              NULL);
    if (!json_is_array(v))
        return json_field_wrong_type(e, "init_images", "an array of base64 strings", v);
    if (json_array_size(v) == 0)
        return json_field_bad(e, "init_images", "must hold at least one image%s%s", NULL, NULL);
    uint8_t *bytes = NULL;
    size_t n = 0;
    TRY(b64_bytes(json_array_get(v, 0), "init_images", "an array of base64 strings",
                  "the first image", &bytes, &n, e));
    TRY(api_img2img_take(bytes, n, &FIELDS_I2I, &t->i2i, e));
    if (json_array_size(v) > 1)
        return openai_image_request_warn(&t->req, "init_images: only the first image is used",
                                         e);
    return STATUS_OK;
}

/* The img2img fields this server cannot honour, each at its off value only. */
static enum status read_img2img_off(const json_t *root, struct api_error *e)
{
    const json_t *v = json_object_get(root, "latent_mask");
    if (v && !json_is_null(v))
        return json_field_bad(e, "latent_mask", "a separate latent mask is not supported; "
                                                "leave it out or null (mask is read)%s%s",
                              NULL, NULL);
    v = json_object_get(root, "include_init_images");
    if (v && !json_is_null(v))
        TRY(must_be_false(v, "include_init_images", "echoing the init images", e));
    v = json_object_get(root, "resize_mode");
    json_int_t mode = 0;
    if (v && !json_is_null(v))
        TRY(json_field_int(v, "resize_mode", 0, 3, &mode, e));
    if (mode != 0)
        return json_field_bad(e, "resize_mode", "only 0 (just resize) is supported%s%s", NULL,
                              NULL);
    v = json_object_get(root, "initial_noise_multiplier");
    double mult = 1.0;
    if (v && !json_is_null(v))
        TRY(json_field_number(v, "initial_noise_multiplier", -1e300, 1e300, &mult, e));
    return mult == 1.0 ? STATUS_OK
                       : json_field_bad(e, "initial_noise_multiplier",
                                        "is not supported; leave it out or 1%s%s", NULL, NULL);
}

/* --- inpainting ----------------------------------------------------------------------- */

/* A1111's flags that are ints (inpainting_mask_invert) or bools (inpaint_full_res) in its
 * API: either form, 0/1 or false/true. */
static enum status read_flag(const json_t *root, const char *field, bool *out,
                             struct api_error *e)
{
    const json_t *v = json_object_get(root, field);
    if (!v || json_is_null(v))
        return STATUS_OK;
    if (json_is_boolean(v))
        return json_field_bool(v, field, out, e);
    json_int_t x = 0;
    if (!json_is_number(v))
        return json_field_wrong_type(e, field, "0, 1, false or true", v);
    TRY(json_field_int(v, field, 0, 1, &x, e));
    *out = x != 0;
    return STATUS_OK;
}

/* An integer field in [lo, hi] into *out when present. */
static enum status read_int(const json_t *root, const char *field, json_int_t lo, json_int_t hi,
                            int *out, bool *given, struct api_error *e)
{
    const json_t *v = json_object_get(root, field);
    if (!v || json_is_null(v))
        return STATUS_OK;
    json_int_t x = 0;
    TRY(json_field_int(v, field, lo, hi, &x, e));
    *out = (int)x;
    if (given)
        *given = true;
    return STATUS_OK;
}

/* mask_blur sets both radii; mask_blur_x / _y alone set theirs (A1111's processing
 * object: its mask_blur setter writes both), and beside mask_blur must equal it. */
static enum status read_mask_blur(const json_t *root, struct api_inpaint *in, struct api_error *e)
{
    const json_int_t max = (json_int_t)IMAGE_MASK_BLUR_MAX;
    int blur = API_INPAINT_DEFAULT_BLUR;
    bool has_blur = false, has_x = false, has_y = false;
    in->blur_x = in->blur_y = API_INPAINT_DEFAULT_BLUR;
    TRY(read_int(root, "mask_blur", 0, max, &blur, &has_blur, e));
    TRY(read_int(root, "mask_blur_x", 0, max, &in->blur_x, &has_x, e));
    TRY(read_int(root, "mask_blur_y", 0, max, &in->blur_y, &has_y, e));
    if (!has_blur)
        return STATUS_OK;
    const char *differs = has_x && in->blur_x != blur ? "mask_blur_x"
                          : has_y && in->blur_y != blur ? "mask_blur_y" : NULL;
    if (differs)
        return json_field_bad(e, differs, "differs from mask_blur, which sets both radii; leave "
                                          "it out or give it the same value%s%s", NULL, NULL);
    in->blur_x = in->blur_y = blur;
    return STATUS_OK;
}

/* inpainting_fill: A1111's 0 fill, 1 original, 2 latent noise, 3 latent nothing. */
static enum status read_fill(const json_t *root, struct api_inpaint *in, struct api_error *e)
{
    static const enum api_inpaint_fill FILLS[4] = {API_FILL_FILL, API_FILL_ORIGINAL,
                                                   API_FILL_LATENT_NOISE,
                                                   API_FILL_LATENT_NOTHING};
    int fill = 0;
    TRY(read_int(root, "inpainting_fill", 0, 3, &fill, NULL, e));
    in->fill = FILLS[fill];
    return STATUS_OK;
}

static enum status read_mask(const json_t *root, struct a1111_request *t, struct api_error *e)
{
    const json_t *v = json_object_get(root, "mask");
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        return STATUS_OK; /* A1111 reads "" as no mask too */
    uint8_t *bytes = NULL;
    size_t n = 0;
    TRY(b64_bytes(v, "mask", "a base64 string", "it", &bytes, &n, e));
    return api_inpaint_take(bytes, n, API_MASK_A1111, "mask", &t->i2i.inpaint, e);
}

/* The inpainting fields: read (and checked) with or without a mask; they act with one. */
static enum status read_inpaint(const json_t *root, struct a1111_request *t, struct api_error *e)
{
    struct api_inpaint *in = &t->i2i.inpaint;
    TRY(read_fill(root, in, e));
    TRY(read_flag(root, "inpainting_mask_invert", &in->invert, e));
    TRY(read_mask_blur(root, in, e));
    t->inpaint_full_res = true;
    TRY(read_flag(root, "inpaint_full_res", &t->inpaint_full_res, e));
    TRY(read_int(root, "inpaint_full_res_padding", 0, INT_MAX, &t->inpaint_full_res_padding,
                 NULL, e));
    in->full_res = t->inpaint_full_res;
    in->padding = t->inpaint_full_res_padding;
    return read_mask(root, t, e);
}

/* img2img's own fields, after txt2img's. */
static enum status read_img2img(const json_t *root, const struct api_limits *limits,
                                struct a1111_request *t, struct api_error *e)
{
    TRY(api_img2img_read_strength(root, &FIELDS_I2I, &t->i2i, e));
    TRY(read_img2img_off(root, e));
    TRY(read_init_images(root, t, e));
    TRY(read_inpaint(root, t, e));
    return api_img2img_default_size(limits, &FIELDS_I2I, &t->i2i, &t->req, e);
}

enum status a1111_img2img_parse(const char *body, size_t len, const struct api_limits *limits,
                                struct a1111_request *t, struct api_error *e)
{
    return parse_body(body, len, limits, true, t, e);
}

enum status a1111_img2img_finish(struct a1111_request *t, struct api_error *e)
{
    return api_img2img_finish(&FIELDS_I2I, &t->i2i, &t->req, e);
}

void a1111_request_free(struct a1111_request *t)
{
    if (!t)
        return;
    openai_image_request_free(&t->req);
    api_img2img_free(&t->i2i);
    memset(t, 0, sizeof *t);
}

enum status a1111_options_parse(const char *body, size_t len, char **model,
                                struct api_error *e)
{
    *model = NULL;
    json_t *root = NULL;
    TRY(json_field_load(body, len, &root, e));
    const json_t *v = json_object_get(root, "sd_model_checkpoint");
    enum status s = STATUS_OK;
    if (v && !json_is_null(v))
        s = json_field_string(v, "sd_model_checkpoint", 0, model, e);
    json_decref(root);
    return s;
}
