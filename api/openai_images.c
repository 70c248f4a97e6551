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

#include "models/clip.h"
#include "models/tokenizer.h"

#define VALUE_ECHO_MAX 40 /* bytes of a rejected string value quoted in a message */

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

/* --- errors --------------------------------------------------------------------------- */

/* A 400 naming param ("<param>: <message>"; param NULL: JSON null).  fmt is one of
 * this file's literals with exactly two %s, filled with a and b (NULL = ""). */
static enum status bad(struct api_error *e, const char *param, const char *fmt, const char *a,
                       const char *b)
{
    char msg[API_ERROR_MESSAGE_MAX];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    api_error_set(e, 400, NULL, param, NULL, "%s%s%s", param ? param : "", param ? ": " : "",
                  msg);
    return STATUS_INVALID_ARGUMENT;
}

static enum status oom(struct api_error *e, const char *what)
{
    api_error_set(e, 503, NULL, NULL, NULL, "out of memory while reading %s", what);
    return STATUS_OUT_OF_MEMORY;
}

/* The JSON type of v as a message word. */
static const char *type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction or exponent";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        break;
    }
    return "null";
}

static enum status wrong_type(struct api_error *e, const char *field, const char *want,
                              const json_t *v)
{
    return bad(e, field, "must be %s (got %s)", want, type_word(v));
}

/* --- typed field readers -------------------------------------------------------------- */

/* A real with no fractional part within json_int_t's range, [-2^63, 2^63) (every
 * double that large is a whole number; 1e18 is the integer 10^18). */
static bool is_integral(double x)
{
    return isfinite(x) && x == floor(x) && x >= -9223372036854775808.0 &&
           x < 9223372036854775808.0;
}

static enum status read_int(const json_t *v, const char *field, json_int_t lo, json_int_t hi,
                            json_int_t *out, struct api_error *e)
{
    json_int_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && is_integral(json_real_value(v))) {
        x = (json_int_t)json_real_value(v); /* JSON Schema's integer: 2.0 is 2 */
    } else {
        return wrong_type(e, field, "an integer", v);
    }
    if (x < lo || x > hi) {
        char range[96], got[32];
        snprintf(range, sizeof range, "[%" JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT "]", lo,
                 hi);
        snprintf(got, sizeof got, "%" JSON_INTEGER_FORMAT, x);
        return bad(e, field, "must be an integer in %s (got %s)", range, got);
    }
    *out = x;
    return STATUS_OK;
}

static enum status read_number(const json_t *v, const char *field, double lo, double hi,
                               double *out, struct api_error *e)
{
    if (!json_is_number(v))
        return wrong_type(e, field, "a number", v);
    const double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi) {
        char range[64], got[32];
        snprintf(range, sizeof range, "[%g, %g]", lo, hi);
        snprintf(got, sizeof got, "%g", x);
        return bad(e, field, "must be a number in %s (got %s)", range, got);
    }
    *out = x;
    return STATUS_OK;
}

/* Unicode code points of a valid UTF-8 string (jansson has checked it). */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* A string copied into *out (malloc'ed); at most max_chars code points when > 0. */
static enum status read_string(const json_t *v, const char *field, int max_chars, char **out,
                               struct api_error *e)
{
    if (!json_is_string(v))
        return wrong_type(e, field, "a string", v);
    const size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (max_chars > 0 && utf8_chars(s, n) > (size_t)max_chars) {
        char lim[32];
        snprintf(lim, sizeof lim, "%d", max_chars);
        return bad(e, field, "longer than %s characters%s", lim, "");
    }
    *out = malloc(n + 1);
    if (!*out)
        return oom(e, field);
    memcpy(*out, s, n + 1);
    return STATUS_OK;
}

/* The index of v among names[0 … count) (exact match). */
static enum status read_choice(const json_t *v, const char *field, const char *const *names,
                               int count, int *out, struct api_error *e)
{
    if (!json_is_string(v))
        return wrong_type(e, field, "a string", v);
    const char *s = json_string_value(v);
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return STATUS_OK;
        }
    char list[256] = "";
    for (int i = 0; i < count; i++) {
        const size_t at = strlen(list);
        snprintf(list + at, sizeof list - at, "%s\"%s\"", i ? ", " : "", names[i]);
    }
    char echo[VALUE_ECHO_MAX + 1];
    snprintf(echo, sizeof echo, "%s", s);
    return bad(e, field, "must be one of %s (got \"%s\")", list, echo);
}

/* --- the fields ----------------------------------------------------------------------- */

typedef enum status (*field_reader)(const json_t *v, const struct api_limits *lim,
                                    struct openai_image_request *req, struct api_error *e);

static enum status f_prompt(const json_t *v, const struct api_limits *lim,
                            struct openai_image_request *req, struct api_error *e)
{
    TRY(read_string(v, "prompt", lim->max_prompt_chars, &req->prompt, e));
    if (req->prompt[0] == '\0')
        return bad(e, "prompt", "must not be empty%s%s", NULL, NULL);
    return STATUS_OK;
}

static enum status f_negative_prompt(const json_t *v, const struct api_limits *lim,
                                     struct openai_image_request *req, struct api_error *e)
{
    return read_string(v, "negative_prompt", lim->max_prompt_chars, &req->negative_prompt, e);
}

static enum status f_n(const json_t *v, const struct api_limits *lim,
                       struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    TRY(read_int(v, "n", 1, lim->max_n, &x, e));
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
    return bad(e, "size", "%s%s", msg, NULL);
}

static enum status f_size(const json_t *v, const struct api_limits *lim,
                          struct openai_image_request *req, struct api_error *e)
{
    if (!json_is_string(v))
        return wrong_type(e, "size", "a string \"WxH\" or \"auto\"", v);
    const char *s = json_string_value(v);
    if (strcmp(s, "auto") == 0)
        return STATUS_OK;
    const char *p = s;
    const int w = side_digits(&p);
    const int h = w >= 0 && *p == 'x' ? (p++, side_digits(&p)) : -1;
    if (w < 0 || h < 0 || *p != '\0') {
        char echo[VALUE_ECHO_MAX + 1];
        snprintf(echo, sizeof echo, "%s", s);
        return bad(e, "size", "must be \"WxH\" (decimal pixels, e.g. \"512x512\") or \"auto\" "
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
    TRY(read_choice(v, "response_format", names, 2, &i, e));
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
    TRY(read_choice(v, "output_format", names, 3, &i, e));
    req->output_format = formats[i];
    return STATUS_OK;
}

static enum status f_output_compression(const json_t *v, const struct api_limits *lim,
                                        struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(read_int(v, "output_compression", 0, 100, &x, e));
    req->quality = (int)x;
    return STATUS_OK;
}

static enum status f_model(const json_t *v, const struct api_limits *lim,
                           struct openai_image_request *req, struct api_error *e)
{
    (void)lim;
    TRY(read_string(v, "model", 0, &req->model, e));
    if (req->model[0] == '\0')
        return bad(e, "model", "must not be empty%s%s", NULL, NULL);
    return STATUS_OK;
}

static enum status f_user(const json_t *v, const struct api_limits *lim,
                          struct openai_image_request *req, struct api_error *e)
{
    (void)lim;
    return read_string(v, "user", API_USER_MAX_CHARS, &req->user, e);
}

static enum status f_quality(const json_t *v, const struct api_limits *lim,
                             struct openai_image_request *req, struct api_error *e)
{
    static const char *const names[] = {"auto", "standard", "hd", "low", "medium", "high"};
    int i;
    (void)lim, (void)req;
    return read_choice(v, "quality", names, 6, &i, e);
}

static enum status f_style(const json_t *v, const struct api_limits *lim,
                           struct openai_image_request *req, struct api_error *e)
{
    static const char *const names[] = {"vivid", "natural"};
    int i;
    (void)lim, (void)req;
    return read_choice(v, "style", names, 2, &i, e);
}

static enum status f_stream(const json_t *v, const struct api_limits *lim,
                            struct openai_image_request *req, struct api_error *e)
{
    (void)lim, (void)req;
    if (!json_is_boolean(v))
        return wrong_type(e, "stream", "a boolean", v);
    if (json_is_true(v))
        return bad(e, "stream", "streaming is not supported; leave it out or false%s%s", NULL,
                   NULL);
    return STATUS_OK;
}

static enum status f_steps(const json_t *v, const struct api_limits *lim,
                           struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    TRY(read_int(v, "steps", 1, lim->max_steps, &x, e));
    req->has_steps = true;
    req->steps = (int)x;
    return STATUS_OK;
}

static enum status f_guidance_scale(const json_t *v, const struct api_limits *lim,
                                    struct openai_image_request *req, struct api_error *e)
{
    (void)lim;
    TRY(read_number(v, "guidance_scale", 0.0, GEN_MAX_GUIDANCE, &req->guidance, e));
    req->has_guidance = true;
    return STATUS_OK;
}

static enum status f_seed(const json_t *v, const struct api_limits *lim,
                          struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(read_int(v, "seed", 0, LLONG_MAX, &x, e)); /* json_int_t is long long */
    req->has_seed = true;
    req->seed = (uint64_t)x;
    return STATUS_OK;
}

/* "a", "b", … of a name function over count values into buf. */
static void name_list(const char *(*name)(int), int count, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int i = 0; i < count; i++) {
        const size_t at = strlen(buf);
        snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", name(i));
    }
}

static const char *sampler_name_at(int i)
{
    return sampler_kind_name((enum sampler_kind)i);
}

static const char *scheduler_name_at(int i)
{
    return sd_scheduler_name((enum sd_scheduler)i);
}

static bool parse_sampler(const char *name, int *out)
{
    enum sampler_kind k;
    if (sampler_kind_parse(name, &k, NULL) != STATUS_OK)
        return false;
    *out = (int)k;
    return true;
}

static bool parse_scheduler(const char *name, int *out)
{
    enum sd_scheduler k;
    if (sd_scheduler_parse(name, &k, NULL) != STATUS_OK)
        return false;
    *out = (int)k;
    return true;
}

/* A name the models/ parser knows (aliases, any case); the error lists the names. */
static enum status read_named(const json_t *v, const char *field,
                              bool (*parse)(const char *, int *), const char *(*name)(int),
                              int count, int *out, struct api_error *e)
{
    if (!json_is_string(v))
        return wrong_type(e, field, "a string", v);
    if (parse(json_string_value(v), out))
        return STATUS_OK;
    char list[256], echo[VALUE_ECHO_MAX + 1];
    name_list(name, count, list, sizeof list);
    snprintf(echo, sizeof echo, "%s", json_string_value(v));
    return bad(e, field, "unknown name \"%s\" (%s)", echo, list);
}

static enum status f_sampler(const json_t *v, const struct api_limits *lim,
                             struct openai_image_request *req, struct api_error *e)
{
    int k = 0;
    (void)lim;
    TRY(read_named(v, "sampler", parse_sampler, sampler_name_at, SAMPLER_KIND_COUNT_, &k, e));
    req->sampler = (enum sampler_kind)k;
    req->has_sampler = true;
    return STATUS_OK;
}

static enum status f_scheduler(const json_t *v, const struct api_limits *lim,
                               struct openai_image_request *req, struct api_error *e)
{
    int k = 0;
    (void)lim;
    TRY(read_named(v, "scheduler", parse_scheduler, scheduler_name_at, SD_SCHEDULER_COUNT_, &k,
                   e));
    req->scheduler = (enum sd_scheduler)k;
    req->has_scheduler = true;
    return STATUS_OK;
}

static enum status f_clip_skip(const json_t *v, const struct api_limits *lim,
                               struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(read_int(v, "clip_skip", 0, INT_MAX, &x, e));
    req->has_clip_skip = true;
    req->clip_skip = (int)x;
    return STATUS_OK;
}

static enum status f_deadline_ms(const json_t *v, const struct api_limits *lim,
                                 struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(read_int(v, "deadline_ms", 1, API_MAX_DEADLINE_MS, &x, e));
    req->deadline_ms = (int64_t)x;
    return STATUS_OK;
}

static enum status f_priority(const json_t *v, const struct api_limits *lim,
                              struct openai_image_request *req, struct api_error *e)
{
    json_int_t x = 0;
    (void)lim;
    TRY(read_int(v, "priority", API_MIN_PRIORITY, API_MAX_PRIORITY, &x, e));
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

/* --- JSON errors ---------------------------------------------------------------------- */

/* The top-level key whose value (or the key itself) the byte offset `pos` lies in:
 * body[0 … pos) is scanned for strings and nesting.  Copied into key (≤ cap − 1
 * plain characters [A-Za-z0-9_.-]); false when there is none. */
static bool key_at(const char *body, size_t len, size_t pos, char *key, size_t cap)
{
    int depth = 0;
    bool in_str = false, esc = false, is_key = false, expect_key = false, have = false;
    size_t start = 0, end = 0;
    for (size_t i = 0; i < pos && i < len; i++) {
        const char c = body[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"') {
                in_str = false;
                if (is_key)
                    end = i, have = true;
            }
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
            expect_key = depth == 1 && c == '{';
        } else if (c == '}' || c == ']') {
            if (--depth <= 0)
                return false; /* past the top-level value: trailing bytes */
        } else if (depth == 1 && c == ',') {
            expect_key = true;
            have = false; /* between members */
        } else if (depth == 1 && c == ':') {
            expect_key = false;
        } else if (c == '"') {
            in_str = true;
            is_key = depth == 1 && expect_key;
            if (is_key)
                start = i + 1, have = false;
        }
    }
    if (depth < 1 || !have || end - start == 0 || end - start >= cap)
        return false;
    for (size_t i = start; i < end; i++) {
        const char c = body[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    memcpy(key, body + start, end - start);
    key[end - start] = '\0';
    return true;
}

/* jansson's reason in the API's words where it names jansson's own flags or limits. */
static const char *json_reason(enum json_error_code code, const json_error_t *je)
{
    switch (code) {
    case json_error_numeric_overflow:
        return "number out of range (integers must fit in 64 bits, reals in a double)";
    case json_error_null_character:
        return "NUL characters (\\u0000) are not allowed in strings";
    case json_error_invalid_utf8:
        return "not valid UTF-8";
    case json_error_stack_overflow:
        return "nested too deeply";
    default:
        return je->text;
    }
}

static enum status json_failed(const char *body, size_t len, const json_error_t *je,
                               struct api_error *e)
{
    if (len == 0)
        return bad(e, NULL, "the request body is empty; expected a JSON object%s%s", NULL, NULL);
    char key[API_ERROR_PARAM_MAX];
    const size_t pos = je->position > 0 ? (size_t)je->position : 0;
    const enum json_error_code code = json_error_code(je);
    const bool structural = code == json_error_premature_end_of_input ||
                            code == json_error_end_of_input_expected;
    const bool named = !structural && key_at(body, len, pos, key, sizeof key);
    char where[64];
    snprintf(where, sizeof where, "%zu", pos);
    if (code == json_error_duplicate_key && named)
        return bad(e, key, "duplicate key in the request body%s%s", NULL, NULL);
    if (named)
        return bad(e, key, "invalid JSON value at byte %s: %s", where, json_reason(code, je));
    return bad(e, NULL, "the request body is not valid JSON (byte %s: %s)", where, je->text);
}

/* --- parse ---------------------------------------------------------------------------- */

enum status openai_images_parse(const char *body, size_t len, const struct api_limits *limits,
                                struct openai_image_request *req, struct api_error *e)
{
    memset(req, 0, sizeof *req);
    req->n = 1;
    req->output_format = IMAGE_PNG;
    req->quality = API_DEFAULT_QUALITY;
    req->response_format = API_RESPONSE_B64_JSON;
    json_error_t je;
    memset(&je, 0, sizeof je);
    json_t *root = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!root)
        return json_failed(body ? body : "", body ? len : 0, &je, e);
    enum status s = STATUS_OK;
    if (!json_is_object(root))
        s = bad(e, NULL, "the request body must be a JSON object (got %s)%s", type_word(root),
                NULL);
    for (size_t i = 0; s == STATUS_OK && i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        const json_t *v = json_object_get(root, FIELDS[i].name);
        if (v && !json_is_null(v)) /* null = absent, as OpenAI's optional fields */
            s = FIELDS[i].read(v, limits, req, e);
    }
    if (s == STATUS_OK && !req->prompt)
        s = bad(e, "prompt", "is required (a non-empty string)%s%s", NULL, NULL);
    if (s == STATUS_OK && req->has_seed && req->seed > (uint64_t)LLONG_MAX - (uint64_t)(req->n - 1))
        s = bad(e, "seed", "seed + n - 1 must be at most 9223372036854775807 (image i uses "
                           "seed + i)%s%s", NULL, NULL);
    json_decref(root);
    if (s != STATUS_OK)
        openai_image_request_free(req);
    return s;
}

/* --- resolve -------------------------------------------------------------------------- */

static enum status add_warning(struct openai_image_request *req, const char *text,
                               struct api_error *e)
{
    if (req->n_warnings >= API_MAX_WARNINGS)
        return STATUS_OK;
    char *copy = strdup(text);
    if (!copy)
        return oom(e, "warnings");
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
        return oom(e, field);
    struct tokenizer_result info;
    struct errbuf err;
    const enum status s = tokenizer_encode(tok, text, ids, &info, &err);
    free(ids);
    if (s != STATUS_OK) {
        if (s == STATUS_OUT_OF_MEMORY)
            return oom(e, field);
        return bad(e, field, "cannot be tokenized: %.400s%s", err.msg, NULL);
    }
    if (!info.truncated)
        return STATUS_OK;
    char msg[160];
    snprintf(msg, sizeof msg,
             "%s: %d tokens with start and end, more than the model's %d: truncated to %d",
             field, info.n_tokens, max_len, max_len);
    return add_warning(req, msg, e);
}

/* gen_params_validate's field → the request's field. */
static const char *request_field(const char *gen_field)
{
    if (strcmp(gen_field, "width") == 0 || strcmp(gen_field, "height") == 0)
        return "size";
    if (strcmp(gen_field, "guidance") == 0)
        return "guidance_scale";
    return gen_field;
}

static enum status validate_failed(const struct errbuf *err, struct api_error *e)
{
    api_error_from_status(e, STATUS_INVALID_ARGUMENT, err, NULL);
    if (!e->param[0])
        return bad(e, NULL, "%s%s", err->msg, NULL);
    const char *rest = err->msg + strlen(e->param) + 1; /* past "field:" */
    const char *field = request_field(e->param);
    if (strcmp(field, e->param) == 0)
        return STATUS_INVALID_ARGUMENT; /* already "field: …" */
    char gen_field[API_ERROR_PARAM_MAX];
    snprintf(gen_field, sizeof gen_field, "%s", e->param);
    return bad(e, field, "%s:%s", gen_field, rest); /* "size: width: …" */
}

static enum status resolve_size(const struct sd_model *m, const struct api_limits *lim,
                                struct openai_image_request *req, struct api_error *e)
{
    struct gen_params *p = &req->params;
    char msg[160];
    if (!req->has_size) {
        if (p->width <= lim->max_width && p->height <= lim->max_height &&
            p->width >= lim->min_side && p->height >= lim->min_side)
            return STATUS_OK;
        snprintf(msg, sizeof msg, "the model's native size %dx%d is outside this server's limits",
                 p->width, p->height);
        return bad(e, "size", "%s; give a size%s", msg, NULL);
    }
    const int mult = m->size_multiple > 0 ? m->size_multiple : 8;
    if (req->width % mult != 0 || req->height % mult != 0) {
        snprintf(msg, sizeof msg, "width and height must be multiples of %d (got %dx%d)", mult,
                 req->width, req->height);
        return bad(e, "size", "%s%s", msg, NULL);
    }
    p->width = req->width;
    p->height = req->height;
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
        TRY(add_warning(req, msg, e));
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
        return validate_failed(&err, e);
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
