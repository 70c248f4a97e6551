/* models/model_config.c — config.json getters; see model_config.h. */
#include "models/model_config.h"

#include <limits.h>
#include <math.h>

enum status model_config_parse(const char *text, const char *source, json_t **out,
                               struct errbuf *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
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
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_cannot_open_file)
            return status_fail(err, STATUS_IO, "%s: cannot read: %s", path, jerr.text);
        return status_fail(err, STATUS_FORMAT, "%s: not JSON: %s (line %d)", path, jerr.text,
                           jerr.line);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return status_fail(err, STATUS_FORMAT, "%s: not a JSON object", path);
    }
    if (!model_config_set_source(root, path)) {
        json_decref(root);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    *out = root;
    return STATUS_OK;
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
