/* api/openai_images.c — POST /v1/images/generations: body → fields (parse), fields →
 * gen_params for a model (resolve). */
#include "api/openai_images.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_fields.h"
#include "models/clip.h"
#include "models/tokenizer.h"

#define VALUE_ECHO_MAX JSON_FIELD_ECHO_MAX

void api_limits_default(struct api_limits *l)
{
    l->max_width = 2048;
    l->max_height = 2048;
    l->min_side = 64;
    l->max_n = 8;
    l->max_steps = 150;
    l->max_prompt_chars = 4000;
}

enum status api_limits_check(const struct api_limits *l, struct errbuf *err)
{
    if (l->min_side < 8 || l->min_side > GEN_MAX_SIDE)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "min_side: must be in [8, %d] (got %d)",
                           GEN_MAX_SIDE, l->min_side);
    if (l->max_width < l->min_side || l->max_width > GEN_MAX_SIDE)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "max_width: must be in [min_side %d, %d] (got %d)", l->min_side,
                           GEN_MAX_SIDE, l->max_width);
    if (l->max_height < l->min_side || l->max_height > GEN_MAX_SIDE)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "max_height: must be in [min_side %d, %d] (got %d)", l->min_side,
                           GEN_MAX_SIDE, l->max_height);
    if (l->max_n < 1 || l->max_n > GEN_MAX_IMAGES)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "max_n: must be in [1, %d] (got %d)",
                           GEN_MAX_IMAGES, l->max_n);
    if (l->max_steps < 1 || l->max_steps > GEN_MAX_STEPS)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "max_steps: must be in [1, %d] (got %d)", GEN_MAX_STEPS, l->max_steps);
    if (l->max_prompt_chars < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "max_prompt_chars: must be ≥ 1 (got %d)", l->max_prompt_chars);
    return STATUS_OK;
}

const char *api_response_format_name(enum api_response_format f)
{
    return f == API_RESPONSE_URL ? "url" : "b64_json";
}

const char *api_output_format_name(enum image_format f)
{
    switch (f) {
    case IMAGE_JPEG:
        return "jpeg";
    case IMAGE_WEBP:
        return "webp";
    case IMAGE_PNG:
        break;
    }
    return "png";
}

/* --- the fields ----------------------------------------------------------------------- */

typedef enum status (*field_reader)(const json_t *v, const struct api_limits *lim,
                                    struct openai_image_request *req, struct api_error *e);

static enum status f_prompt(const json_t *v, const struct api_limits *lim,
                            struct openai_image_request *req, struct api_error *e)
{
    TRY(json_field_string(v, "prompt", lim->max_prompt_chars, &req->prompt, e));
    if (req->prompt[0] == '\0')
        return json_field_bad(e, "prompt", "must not be empty%s%s", NULL, NULL);
    return STATUS_OK;
}

static enum status f_negative_prompt(const json_t *v, const struct api_limits *lim,
                                     struct openai_image_request *req, struct api_error *e)
{
    return json_field_string(v, "negative_prompt", lim->max_prompt_chars, &req->negative_prompt, e);
}

static enum status f_n(const json_t *v, const struct api_limits *lim,
                       struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    TRY(json_field_int(v, "n", 1, lim->max_n, &x, e));
    req->n = (int)x;
    return STATUS_OK;
}

/* 1 … 5 decimal digits at *s (advanced); −1 when there are none or more. */
static int side_digits(const char **s)
{
    int v = 0, k = 0;
    while (**s >= '0' && **s <= '9') {
        if (++k > 5)
            return -1;
        v = v * 10 + (**s - '0');
        (*s)++;
    }
    return k ? v : -1;
}

static enum status check_side(const char *which, int v, int lo, int hi, struct api_error *e)
{
    if (v >= lo && v <= hi)
        return STATUS_OK;
    char msg[96];
    snprintf(msg, sizeof msg, "%s %d outside [%d, %d]", which, v, lo, hi);
    return json_field_bad(e, "size", "%s%s", msg, NULL);
}

static enum status f_size(const json_t *v, const struct api_limits *lim,
                          struct openai_image_request *req, struct api_error *e)
{
    if (!json_is_string(v))
        return json_field_wrong_type(e, "size", "a string \"WxH\" or \"auto\"", v);
    const char *s = json_string_value(v);
    if (strcmp(s, "auto") == 0)
        return STATUS_OK;
    const char *p = s;
    const int w = side_digits(&p);
    const int h = w >= 0 && *p == 'x' ? (p++, side_digits(&p)) : -1;
    if (w < 0 || h < 0 || *p != '\0') {
        char echo[VALUE_ECHO_MAX + 1];
        snprintf(echo, sizeof echo, "%s", s);
        return json_field_bad(e, "size",
                              "must be \"WxH\" (decimal pixels, e.g. \"512x512\") or \"auto\" "
                              "(got \"%s\")%s", echo, NULL);
    }
    TRY(check_side("width", w, lim->min_side, lim->max_width, e));
    TRY(check_side("height", h, lim->min_side, lim->max_height, e));
    req->has_size = true;
    req->width = w;
    req->height = h;
    return STATUS_OK;
}

static enum status f_response_format(const json_t *v, const struct api_limits *lim,
                                     struct openai_image_request *req, struct api_error *e)
{
    static const char *const names[] = {"b64_json", "url"};
    int i;
    (void)lim;
    TRY(json_field_choice(v, "response_format", names, 2, &i, e));
    req->response_format = i == 1 ? API_RESPONSE_URL : API_RESPONSE_B64_JSON;
    return STATUS_OK;
}

static enum status f_output_format(const json_t *v, const struct api_limits *lim,
                                   struct openai_image_request *req, struct api_error *e)
{
    static const char *const names[] = {"png", "jpeg", "webp"};
    static const enum image_format formats[] = {IMAGE_PNG, IMAGE_JPEG, IMAGE_WEBP};
    int i;
    (void)lim;
    TRY(json_field_choice(v, "output_format", names, 3, &i, e));
    req->output_format = formats[i];
    return STATUS_OK;
}

static enum status f_output_compression(const json_t *v, const struct api_limits *lim,
                                        struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(json_field_int(v, "output_compression", 0, 100, &x, e));
    req->quality = (int)x;
    return STATUS_OK;
}

static enum status f_model(const json_t *v, const struct api_limits *lim,
                           struct openai_image_request *req, struct api_error *e)
{
    (void)lim;
    TRY(json_field_string(v, "model", 0, &req->model, e));
    if (req->model[0] == '\0')
        return json_field_bad(e, "model", "must not be empty%s%s", NULL, NULL);
    return STATUS_OK;
}

static enum status f_user(const json_t *v, const struct api_limits *lim,
                          struct openai_image_request *req, struct api_error *e)
{
    (void)lim;
    return json_field_string(v, "user", API_USER_MAX_CHARS, &req->user, e);
}

static enum status f_quality(const json_t *v, const struct api_limits *lim,
                             struct openai_image_request *req, struct api_error *e)
{
    static const char *const names[] = {"auto", "standard", "hd", "low", "medium", "high"};
    int i;
    (void)lim, (void)req;
    return json_field_choice(v, "quality", names, 6, &i, e);
}

static enum status f_style(const json_t *v, const struct api_limits *lim,
                           struct openai_image_request *req, struct api_error *e)
{
    static const char *const names[] = {"vivid", "natural"};
    int i;
    (void)lim, (void)req;
    return json_field_choice(v, "style", names, 2, &i, e);
}

static enum status f_stream(const json_t *v, const struct api_limits *lim,
                            struct openai_image_request *req, struct api_error *e)
{
    (void)lim, (void)req;
    if (!json_is_boolean(v))
        return json_field_wrong_type(e, "stream", "a boolean", v);
    if (json_is_true(v))
        return json_field_bad(e, "stream",
                              "streaming is not supported; leave it out or false%s%s", NULL, NULL);
    return STATUS_OK;
}

static enum status f_steps(const json_t *v, const struct api_limits *lim,
                           struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    TRY(json_field_int(v, "steps", 1, lim->max_steps, &x, e));
    req->has_steps = true;
    req->steps = (int)x;
    return STATUS_OK;
}

static enum status f_guidance_scale(const json_t *v, const struct api_limits *lim,
                                    struct openai_image_request *req, struct api_error *e)
{
    (void)lim;
    TRY(json_field_number(v, "guidance_scale", 0.0, GEN_MAX_GUIDANCE, &req->guidance, e));
    req->has_guidance = true;
    return STATUS_OK;
}

static enum status f_seed(const json_t *v, const struct api_limits *lim,
                          struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(json_field_int(v, "seed", 0, LLONG_MAX, &x, e)); /* json_int_t is long long */
    req->has_seed = true;
    req->seed = (uint64_t)x;
    return STATUS_OK;
}

static enum status f_sampler(const json_t *v, const struct api_limits *lim,
                             struct openai_image_request *req, struct api_error *e)
{
    (void)lim;
    TRY(json_field_sampler(v, "sampler", &req->sampler, e));
    req->has_sampler = true;
    return STATUS_OK;
}

static enum status f_scheduler(const json_t *v, const struct api_limits *lim,
                               struct openai_image_request *req, struct api_error *e)
{
    (void)lim;
    TRY(json_field_scheduler(v, "scheduler", &req->scheduler, e));
    req->has_scheduler = true;
    return STATUS_OK;
}

static enum status f_clip_skip(const json_t *v, const struct api_limits *lim,
                               struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(json_field_int(v, "clip_skip", 0, INT_MAX, &x, e));
    req->has_clip_skip = true;
    req->clip_skip = (int)x;
    return STATUS_OK;
}

static enum status f_deadline_ms(const json_t *v, const struct api_limits *lim,
                                 struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(json_field_int(v, "deadline_ms", 1, API_MAX_DEADLINE_MS, &x, e));
    req->deadline_ms = (int64_t)x;
    return STATUS_OK;
}

static enum status f_priority(const json_t *v, const struct api_limits *lim,
                              struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(json_field_int(v, "priority", API_MIN_PRIORITY, API_MAX_PRIORITY, &x, e));
    req->priority = (int)x;
    return STATUS_OK;
}

/* Read in this order (the first failing field is reported). */
static const struct {
    const char *name;
    field_reader read;
} FIELDS[] = {
    {"prompt", f_prompt},
    {"negative_prompt", f_negative_prompt},
    {"model", f_model},
    {"n", f_n},
    {"size", f_size},
    {"response_format", f_response_format},
    {"output_format", f_output_format},
    {"output_compression", f_output_compression},
    {"quality", f_quality},
    {"style", f_style},
    {"stream", f_stream},
    {"user", f_user},
    {"steps", f_steps},
    {"guidance_scale", f_guidance_scale},
    {"seed", f_seed},
    {"sampler", f_sampler},
    {"scheduler", f_scheduler},
    {"clip_skip", f_clip_skip},
    {"deadline_ms", f_deadline_ms},
    {"priority", f_priority},
};

/* --- parse ---------------------------------------------------------------------------- */

enum status openai_images_parse(const char *body, size_t len, const struct api_limits *limits,
                                struct openai_image_request *req, struct api_error *e)
{
    json_t *root = NULL;
    enum status s = json_field_load(body, len, &root, e);
    if (s == STATUS_OK)
        s = openai_images_parse_object(root, limits, req, e);
    else
        memset(req, 0, sizeof *req);
    json_decref(root);
    return s;
}

enum status openai_images_parse_object(const json_t *root, const struct api_limits *limits,
                                       struct openai_image_request *req, struct api_error *e)
{
    memset(req, 0, sizeof *req);
    req->n = 1;
    req->output_format = IMAGE_PNG;
    req->quality = API_DEFAULT_QUALITY;
    req->response_format = API_RESPONSE_B64_JSON;
    enum status s = STATUS_OK;
    for (size_t i = 0; s == STATUS_OK && i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        const json_t *v = json_object_get(root, FIELDS[i].name);
        if (v && !json_is_null(v)) /* null = absent, as OpenAI's optional fields */
            s = FIELDS[i].read(v, limits, req, e);
    }
    if (s == STATUS_OK && !req->prompt)
        s = json_field_bad(e, "prompt", "is required (a non-empty string)%s%s", NULL, NULL);
    if (s == STATUS_OK && req->has_seed && req->seed > (uint64_t)LLONG_MAX - (uint64_t)(req->n - 1))
        s = json_field_bad(e, "seed",
                           "seed + n - 1 must be at most 9223372036854775807 (image i uses "
                           "seed + i)%s%s", NULL, NULL);
    if (s != STATUS_OK)
        openai_image_request_free(req);
    return s;
}

/* --- resolve -------------------------------------------------------------------------- */

enum status openai_image_request_warn(struct openai_image_request *req, const char *text,
                                      struct api_error *e)
{
    if (req->n_warnings >= API_MAX_WARNINGS)
        return STATUS_OK;
    char *copy = strdup(text);
    if (!copy)
        return json_field_oom(e, "warnings");
    req->warnings[req->n_warnings++] = copy;
    return STATUS_OK;
}

/* A warning when `text` is longer than the tokenizer's context (cut at max_length). */
static enum status warn_if_truncated(const struct tokenizer *tok, const char *field,
                                     const char *text, struct openai_image_request *req,
                                     struct api_error *e)
{
    if (!text || !text[0])
        return STATUS_OK;
    const int max_len = tokenizer_max_length(tok);
    int32_t *ids = malloc((size_t)max_len * sizeof *ids);
    if (!ids)
        return json_field_oom(e, field);
    struct tokenizer_result info;
    struct errbuf err;
    const enum status s = tokenizer_encode(tok, text, ids, &info, &err);
    free(ids);
    if (s != STATUS_OK) {
        if (s == STATUS_OUT_OF_MEMORY)
            return json_field_oom(e, field);
        return json_field_bad(e, field, "cannot be tokenized: %.400s%s", err.msg, NULL);
    }
    if (!info.truncated)
        return STATUS_OK;
    char msg[160];
    snprintf(msg, sizeof msg,
             "%s: %d tokens with start and end, more than the model's %d: truncated to %d",
             field, info.n_tokens, max_len, max_len);
    return openai_image_request_warn(req, msg, e);
}

/* gen_params_validate's field → the request's field (OpenAI's or A1111's names). */
static const char *request_field(const struct openai_image_request *req, const char *gen_field)
{
    const bool wh = strcmp(gen_field, "width") == 0 || strcmp(gen_field, "height") == 0;
    if (wh)
        return req->a1111_fields ? gen_field : "size";
    if (strcmp(gen_field, "guidance") == 0)
        return req->a1111_fields ? "cfg_scale" : "guidance_scale";
    static const char *const a1111[][2] = {
        {"n", "batch_size"},
        {"sampler", "sampler_name"},
        {"clip_skip", "override_settings.CLIP_stop_at_last_layers"},
    };
    for (size_t i = 0; req->a1111_fields && i < sizeof a1111 / sizeof a1111[0]; i++)
        if (strcmp(gen_field, a1111[i][0]) == 0)
            return a1111[i][1];
    return gen_field;
}

static enum status validate_failed(const struct openai_image_request *req,
                                   const struct errbuf *err, struct api_error *e)
{
    api_error_from_status(e, STATUS_INVALID_ARGUMENT, err, NULL);
    if (!e->param[0])
        return json_field_bad(e, NULL, "%s%s", err->msg, NULL);
    const char *rest = err->msg + strlen(e->param) + 1; /* past "field:" */
    const char *field = request_field(req, e->param);
    if (strcmp(field, e->param) == 0)
        return STATUS_INVALID_ARGUMENT; /* already "field: …" */
    char gen_field[API_ERROR_PARAM_MAX];
    snprintf(gen_field, sizeof gen_field, "%s", e->param);
    return json_field_bad(e, field, "%s:%s", gen_field, rest); /* "size: width: …" */
}

static enum status resolve_size(const struct sd_model *m, const struct api_limits *lim,
                                struct openai_image_request *req, struct api_error *e)
{
    struct gen_params *p = &req->params;
    char msg[160];
    /* a side left out (0; A1111's width or height alone) is the model's native one */
    const int w = req->has_size && req->width > 0 ? req->width : p->width;
    const int h = req->has_size && req->height > 0 ? req->height : p->height;
    const char *wfield = req->a1111_fields ? "width" : "size";
    const char *hfield = req->a1111_fields ? "height" : "size";
    if (w > lim->max_width || w < lim->min_side || h > lim->max_height || h < lim->min_side) {
        const char *field = w > lim->max_width || w < lim->min_side ? wfield : hfield;
        snprintf(msg, sizeof msg, "the model's native size %dx%d is outside this server's limits",
                 p->width, p->height);
        return json_field_bad(e, field, "%s; give a size%s", msg, NULL);
    }
    const int mult = m->size_multiple > 0 ? m->size_multiple : 8;
    if (w % mult != 0 || h % mult != 0) {
        snprintf(msg, sizeof msg, "width and height must be multiples of %d (got %dx%d)", mult,
                 w, h);
        return json_field_bad(e, w % mult != 0 ? wfield : hfield, "%s%s", msg, NULL);
    }
    p->width = w;
    p->height = h;
    return STATUS_OK;
}

/* The body's fields over the model's defaults (sizes checked apart). */
static enum status resolve_fields(const struct sd_model *m, const struct api_limits *lim,
                                  uint64_t random_seed, struct openai_image_request *req,
                                  struct api_error *e)
{
    struct gen_params *p = &req->params;
    p->prompt = req->prompt;
    p->negative_prompt = req->negative_prompt ? req->negative_prompt : "";
    p->n = req->n;
    if (req->has_steps)
        p->steps = req->steps;
    else if (p->steps > lim->max_steps) {
        char msg[128];
        snprintf(msg, sizeof msg, "steps: the model's default %d is above this server's limit: "
                 "%d used", p->steps, lim->max_steps);
        p->steps = lim->max_steps;
        TRY(openai_image_request_warn(req, msg, e));
    }
    if (req->has_guidance)
        p->guidance = req->guidance;
    p->seed = req->has_seed ? req->seed : random_seed & API_RANDOM_SEED_MASK;
    req->seed_random = !req->has_seed;
    if (req->has_sampler)
        p->sampler = req->sampler;
    if (req->has_scheduler)
        p->scheduler = req->scheduler;
    if (req->has_clip_skip)
        p->clip_skip = req->clip_skip;
    if (req->has_eta)
        p->eta = req->eta;
    return resolve_size(m, lim, req, e);
}

enum status openai_images_resolve(const struct sd_model *model, const struct api_limits *limits,
                                  uint64_t random_seed, struct openai_image_request *req,
                                  struct api_error *e)
{
    if (!model || !limits || !req || !req->prompt) {
        api_error_set(e, 500, NULL, NULL, NULL, "internal error: resolve without a %s",
                      !model ? "model" : !limits ? "limits" : "parsed request");
        return STATUS_INTERNAL;
    }
    gen_params_default(model, &req->params);
    TRY(resolve_fields(model, limits, random_seed, req, e));
    struct errbuf err;
    errbuf_clear(&err);
    if (gen_params_validate(model, &req->params, &err) != STATUS_OK)
        return validate_failed(req, &err, e);
    TRY(warn_if_truncated(model->tokenizer, "prompt", req->params.prompt, req, e));
    return warn_if_truncated(model->tokenizer, "negative_prompt", req->params.negative_prompt,
                             req, e);
}

void openai_image_request_free(struct openai_image_request *req)
{
    if (!req)
        return;
    free(req->prompt);
    free(req->negative_prompt);
    free(req->model);
    free(req->user);
    for (int i = 0; i < req->n_warnings && i < API_MAX_WARNINGS; i++)
        free(req->warnings[i]);
    memset(req, 0, sizeof *req);
}

int api_model_select(const char *requested, const char *const *names, int n,
                     struct api_error *e)
{
    if (!requested && n > 0)
        return 0;
    for (int i = 0; requested && i < n; i++)
        if (names[i] && strcmp(requested, names[i]) == 0)
            return i;
    char echo[VALUE_ECHO_MAX + 1];
    snprintf(echo, sizeof echo, "%s", requested ? requested : "");
    api_error_set(e, 404, NULL, "model", "model_not_found",
                  "model: the model \"%s\" does not exist (GET /v1/models lists them)", echo);
    return -1;
}
