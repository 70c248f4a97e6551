/* models/model_config.c — config.json getters; see model_config.h. */
#include "models/model_config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Python's json.dumps writes NaN, Infinity and -Infinity, which JSON does not have
 * (diffusers saves "lambda_min_clipped": -Infinity).  Returns a malloc'ed copy of
 * text with each such bare token outside strings replaced by `null`, so that the key
 * reads as absent and takes its default (for every key diffusers writes this way, the
 * default is that value); NULL when out of memory. */
static char *config_nonfinite_to_null(const char *text)
{
    static const char *const tokens[] = {"-Infinity", "Infinity", "NaN"};
    size_t n = strlen(text);
    char *out = malloc(2 * n + 1); /* "NaN" → "null" grows by 1 per 3 bytes at most */
    if (!out)
        return NULL;
    size_t o = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (in_string) {
            out[o++] = c;
            if (c == '\\' && i + 1 < n)
                out[o++] = text[++i];
            else if (c == '"')
                in_string = false;
            continue;
        }
        in_string = c == '"';
        size_t k = 0;
        while (k < sizeof tokens / sizeof tokens[0] &&
               strncmp(text + i, tokens[k], strlen(tokens[k])) != 0)
            k++;
        if (k == sizeof tokens / sizeof tokens[0]) {
            out[o++] = c;
            continue;
        }
        memcpy(out + o, "null", 4);
        o += 4;
        i += strlen(tokens[k]) - 1;
    }
    out[o] = '\0';
    return out;
}

/* The whole file as a NUL-terminated string (caller frees), or NULL. */
static char *config_read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *buf = NULL;
    if (fseek(fp, 0, SEEK_END) == 0) {
        long n = ftell(fp);
        if (n >= 0 && fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
            if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = '\0';
            }
        }
    }
    fclose(fp);
    return buf;
}

enum status model_config_parse(const char *text, const char *source, json_t **out,
                               struct errbuf *err)
{
    *out = NULL;
    char *clean = config_nonfinite_to_null(text);
    if (!clean)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", source);
    json_error_t jerr;
    json_t *root = json_loads(clean, JSON_REJECT_DUPLICATES, &jerr);
    free(clean);
    if (!root)
        return status_fail(err, STATUS_FORMAT, "%s: not JSON: %s (line %d)", source, jerr.text,
                           jerr.line);
    if (!json_is_object(root)) {
        json_decref(root);
        return status_fail(err, STATUS_FORMAT, "%s: not a JSON object", source);
    }
    if (!model_config_set_source(root, source)) {
        json_decref(root);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", source);
    }
    *out = root;
    return STATUS_OK;
}

enum status model_config_load(const char *path, json_t **out, struct errbuf *err)
{
    *out = NULL;
    char *text = config_read_file(path);
    if (!text)
        return status_fail(err, STATUS_IO, "%s: cannot read: %s", path, strerror(errno));
    enum status s = model_config_parse(text, path, out, err);
    free(text);
    return s;
}

bool model_config_set_source(json_t *obj, const char *source)
{
    return json_object_set_new(obj, MODEL_CONFIG_SOURCE_KEY, json_string(source)) == 0;
}

const char *model_config_source(const json_t *obj)
{
    const char *s = json_string_value(json_object_get(obj, MODEL_CONFIG_SOURCE_KEY));
    return s ? s : "config";
}

/* The value of key, or NULL when absent or null. */
static const json_t *get(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

bool model_config_has(const json_t *obj, const char *key)
{
    return get(obj, key) != NULL;
}

static enum status bad(const json_t *obj, const char *key, const char *what,
                       struct errbuf *err)
{
    return status_fail(err, STATUS_FORMAT, "%s: key '%s': expected %s",
                       model_config_source(obj), key, what);
}

/* A JSON integer or integral real that fits an int. */
static bool to_int(const json_t *v, int *out)
{
    double d;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < INT_MIN || i > INT_MAX)
            return false;
        *out = (int)i;
        return true;
    }
    if (!json_is_real(v))
        return false;
    d = json_real_value(v);
    if (!(d >= INT_MIN && d <= INT_MAX) || d != floor(d))
        return false;
    *out = (int)d;
    return true;
}

enum status model_config_int(const json_t *obj, const char *key, int def, int *out,
                             struct errbuf *err)
{
    const json_t *v = get(obj, key);
    if (!v) {
        *out = def;
        return STATUS_OK;
    }
    return to_int(v, out) ? STATUS_OK : bad(obj, key, "an integer", err);
}

enum status model_config_float(const json_t *obj, const char *key, double def, double *out,
                               struct errbuf *err)
{
    const json_t *v = get(obj, key);
    if (!v) {
        *out = def;
        return STATUS_OK;
    }
    if (!json_is_number(v))
        return bad(obj, key, "a number", err);
    *out = json_number_value(v);
    return STATUS_OK;
}

enum status model_config_bool(const json_t *obj, const char *key, bool def, bool *out,
                              struct errbuf *err)
{
    const json_t *v = get(obj, key);
    if (!v) {
        *out = def;
        return STATUS_OK;
    }
    if (!json_is_boolean(v))
        return bad(obj, key, "true or false", err);
    *out = json_is_true(v);
    return STATUS_OK;
}

enum status model_config_string(const json_t *obj, const char *key, const char *def,
                                const char **out, struct errbuf *err)
{
    const json_t *v = get(obj, key);
    if (!v) {
        *out = def;
        return STATUS_OK;
    }
    if (!json_is_string(v))
        return bad(obj, key, "a string", err);
    *out = json_string_value(v);
    return STATUS_OK;
}

enum status model_config_int_array(const json_t *obj, const char *key, int *out, int max,
                                   int *n, struct errbuf *err)
{
    *n = 0;
    const json_t *v = get(obj, key);
    if (!v)
        return STATUS_OK;
    if (!json_is_array(v)) {
        if (max < 1 || !to_int(v, &out[0]))
            return bad(obj, key, "an integer or an array of integers", err);
        *n = 1;
        return STATUS_OK;
    }
    size_t len = json_array_size(v);
    if (len > (size_t)(max < 0 ? 0 : max))
        return status_fail(err, STATUS_FORMAT, "%s: key '%s': %zu entries, at most %d allowed",
                           model_config_source(obj), key, len, max);
    for (size_t i = 0; i < len; i++)
        if (!to_int(json_array_get(v, i), &out[i]))
            return bad(obj, key, "an array of integers", err);
    *n = (int)len;
    return STATUS_OK;
}

enum status model_config_int_per_block(const json_t *obj, const char *key, int n_blocks,
                                       int def, int *out, struct errbuf *err)
{
    const json_t *v = get(obj, key);
    int one = def;
    if (!v || !json_is_array(v)) {
        enum status s = model_config_int(obj, key, def, &one, err);
        if (s != STATUS_OK)
            return s;
        for (int i = 0; i < n_blocks; i++)
            out[i] = one;
        return STATUS_OK;
    }
    if (json_array_size(v) != (size_t)n_blocks)
        return status_fail(err, STATUS_FORMAT, "%s: key '%s': %zu entries, expected %d (one per block)",
                           model_config_source(obj), key, json_array_size(v), n_blocks);
    int n;
    return model_config_int_array(obj, key, out, n_blocks, &n, err);
}

enum status model_config_string_array(const json_t *obj, const char *key, const char **out,
                                      int max, int *n, struct errbuf *err)
{
    *n = 0;
    const json_t *v = get(obj, key);
    if (!v)
        return STATUS_OK;
    if (!json_is_array(v))
        return bad(obj, key, "an array of strings", err);
    size_t len = json_array_size(v);
    if (len > (size_t)(max < 0 ? 0 : max))
        return status_fail(err, STATUS_FORMAT, "%s: key '%s': %zu entries, at most %d allowed",
                           model_config_source(obj), key, len, max);
    for (size_t i = 0; i < len; i++) {
        const char *s = json_string_value(json_array_get(v, i));
        if (!s)
            return bad(obj, key, "an array of strings", err);
        out[i] = s;
    }
    *n = (int)len;
    return STATUS_OK;
}
