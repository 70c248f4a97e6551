/* api/json_fields.c — typed readers for JSON request fields (api/json_fields.h). */
#include "api/json_fields.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_ECHO_MAX JSON_FIELD_ECHO_MAX

/* --- errors --------------------------------------------------------------------------- */

/* A 400 naming param ("<param>: <message>"; param NULL: JSON null).  fmt is a literal
 * with exactly two %s, filled with a and b (NULL = ""). */
enum status json_field_bad(struct api_error *e, const char *param, const char *fmt, const char *a,
                           const char *b)
{
    char msg[API_ERROR_MESSAGE_MAX];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    api_error_set(e, 400, NULL, param, NULL, "%s%s%s", param ? param : "", param ? ": " : "",
                  msg);
    return STATUS_INVALID_ARGUMENT;
}

enum status json_field_oom(struct api_error *e, const char *what)
{
    api_error_set(e, 503, NULL, NULL, NULL, "out of memory while reading %s", what);
    return STATUS_OUT_OF_MEMORY;
}

/* The JSON type of v as a message word. */
const char *json_field_type_word(const json_t *v)
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

enum status json_field_wrong_type(struct api_error *e, const char *field, const char *want,
                                  const json_t *v)
{
    return json_field_bad(e, field, "must be %s (got %s)", want, json_field_type_word(v));
}

/* --- typed field readers -------------------------------------------------------------- */

/* A real with no fractional part within json_int_t's range, [-2^63, 2^63) (every
 * double that large is a whole number; 1e18 is the integer 10^18). */
static bool is_integral(double x)
{
    return isfinite(x) && x == floor(x) && x >= -9223372036854775808.0 &&
           x < 9223372036854775808.0;
}

enum status json_field_int(const json_t *v, const char *field, json_int_t lo, json_int_t hi,
                           json_int_t *out, struct api_error *e)
{
    json_int_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && is_integral(json_real_value(v))) {
        x = (json_int_t)json_real_value(v); /* JSON Schema's integer: 2.0 is 2 */
    } else {
        return json_field_wrong_type(e, field, "an integer", v);
    }
    if (x < lo || x > hi) {
        char range[96], got[32];
        snprintf(range, sizeof range, "[%" JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT "]", lo,
                 hi);
        snprintf(got, sizeof got, "%" JSON_INTEGER_FORMAT, x);
        return json_field_bad(e, field, "must be an integer in %s (got %s)", range, got);
    }
    *out = x;
    return STATUS_OK;
}

enum status json_field_number(const json_t *v, const char *field, double lo, double hi,
                              double *out, struct api_error *e)
{
    if (!json_is_number(v))
        return json_field_wrong_type(e, field, "a number", v);
    const double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi) {
        char range[64], got[32];
        snprintf(range, sizeof range, "[%g, %g]", lo, hi);
        snprintf(got, sizeof got, "%g", x);
        return json_field_bad(e, field, "must be a number in %s (got %s)", range, got);
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
enum status json_field_string(const json_t *v, const char *field, int max_chars, char **out,
                              struct api_error *e)
{
    if (!json_is_string(v))
        return json_field_wrong_type(e, field, "a string", v);
    const size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (max_chars > 0 && utf8_chars(s, n) > (size_t)max_chars) {
        char lim[32];
        snprintf(lim, sizeof lim, "%d", max_chars);
        return json_field_bad(e, field, "longer than %s characters%s", lim, "");
    }
    *out = malloc(n + 1);
    if (!*out)
        return json_field_oom(e, field);
    memcpy(*out, s, n + 1);
    return STATUS_OK;
}

/* The index of v among names[0 … count) (exact match). */
enum status json_field_choice(const json_t *v, const char *field, const char *const *names,
                              int count, int *out, struct api_error *e)
{
    if (!json_is_string(v))
        return json_field_wrong_type(e, field, "a string", v);
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
    return json_field_bad(e, field, "must be one of %s (got \"%s\")", list, echo);
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
        return json_field_wrong_type(e, field, "a string", v);
    if (parse(json_string_value(v), out))
        return STATUS_OK;
    char list[256], echo[VALUE_ECHO_MAX + 1];
    name_list(name, count, list, sizeof list);
    snprintf(echo, sizeof echo, "%s", json_string_value(v));
    return json_field_bad(e, field, "unknown name \"%s\" (%s)", echo, list);
}

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

static enum status syntax_error(const char *body, size_t len, const json_error_t *je,
                                struct api_error *e)
{
    if (len == 0)
        return json_field_bad(e, NULL, "the request body is empty; expected a JSON object%s%s",
                              NULL, NULL);
    char key[API_ERROR_PARAM_MAX];
    const size_t pos = je->position > 0 ? (size_t)je->position : 0;
    const enum json_error_code code = json_error_code(je);
    const bool structural = code == json_error_premature_end_of_input ||
                            code == json_error_end_of_input_expected;
    const bool named = !structural && key_at(body, len, pos, key, sizeof key);
    char where[64];
    snprintf(where, sizeof where, "%zu", pos);
    if (code == json_error_duplicate_key && named)
        return json_field_bad(e, key, "duplicate key in the request body%s%s", NULL, NULL);
    if (named)
        return json_field_bad(e, key, "invalid JSON value at byte %s: %s", where,
                              json_reason(code, je));
    return json_field_bad(e, NULL, "the request body is not valid JSON (byte %s: %s)", where,
                          je->text);
}

enum status json_field_bool(const json_t *v, const char *field, bool *out, struct api_error *e)
{
    if (!json_is_boolean(v))
        return json_field_wrong_type(e, field, "a boolean", v);
    *out = json_is_true(v);
    return STATUS_OK;
}

enum status json_field_sampler(const json_t *v, const char *field, enum sampler_kind *out,
                               struct api_error *e)
{
    int k = 0;
    TRY(read_named(v, field, parse_sampler, sampler_name_at, SAMPLER_KIND_COUNT_, &k, e));
    *out = (enum sampler_kind)k;
    return STATUS_OK;
}

enum status json_field_scheduler(const json_t *v, const char *field, enum sd_scheduler *out,
                                 struct api_error *e)
{
    int k = 0;
    TRY(read_named(v, field, parse_scheduler, scheduler_name_at, SD_SCHEDULER_COUNT_, &k, e));
    *out = (enum sd_scheduler)k;
    return STATUS_OK;
}

/* The length of the number token at s[0 … n) (JSON grammar, loosely: sign, digits,
 * fraction, exponent); *integral: no fraction or exponent. */
static size_t number_token(const char *s, size_t n, bool *integral)
{
    size_t i = 0;
    *integral = true;
    if (i < n && s[i] == '-')
        i++;
    for (; i < n; i++) {
        const char c = s[i];
        if (c == '.' || c == 'e' || c == 'E' || ((c == '+' || c == '-') && i > 0 &&
                                                 (s[i - 1] == 'e' || s[i - 1] == 'E')))
            *integral = false;
        else if (c < '0' || c > '9')
            break;
    }
    return i;
}

/* A copy of body[0 … len) with every integer literal outside a string that does not
 * fit in 64 bits written as a real ("…digits.0"), or NULL (out of memory). */
static char *widen_big_integers(const char *body, size_t len, size_t *out_len)
{
    char *out = malloc(len + len / 2 + 2); /* ≥ 20 digits per ".0" added */
    if (!out)
        return NULL;
    size_t o = 0;
    bool in_str = false, escape = false;
    for (size_t i = 0; i < len;) {
        const char c = body[i];
        if (in_str || c == '"' || !(c == '-' || (c >= '0' && c <= '9'))) {
            if (in_str && escape)
                escape = false;
            else if (in_str && c == '\\')
                escape = true;
            else if (c == '"')
                in_str = !in_str;
            out[o++] = body[i++];
            continue;
        }
        bool integral;
        const size_t n = number_token(body + i, len - i, &integral);
        memcpy(out + o, body + i, n);
        o += n;
        if (integral && n < 400) {
            char tok[400];
            memcpy(tok, body + i, n);
            tok[n] = '\0';
            errno = 0;
            (void)strtoll(tok, NULL, 10);
            if (errno == ERANGE) {
                out[o++] = '.';
                out[o++] = '0';
            }
        }
        i += n;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

enum status json_field_load(const char *body, size_t len, json_t **root, struct api_error *e)
{
    json_error_t je;
    memset(&je, 0, sizeof je);
    *root = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!*root && json_error_code(&je) == json_error_numeric_overflow) {
        /* an integer beyond 64 bits, maybe in a field the route ignores: read such
         * integers as reals (a field that is read then fails its range check by name) */
        size_t wide_len = 0;
        char *wide = widen_big_integers(body, len, &wide_len);
        if (wide)
            *root = json_loadb(wide, wide_len, JSON_REJECT_DUPLICATES, NULL);
        free(wide);
    }
    if (!*root)
        return syntax_error(body ? body : "", body ? len : 0, &je, e);
    if (json_is_object(*root))
        return STATUS_OK;
    const char *type = json_field_type_word(*root);
    json_decref(*root);
    *root = NULL;
    return json_field_bad(e, NULL, "the request body must be a JSON object (got %s)%s", type,
                          NULL);
}
