/* models/model_config.h — reading a component's config.json (diffusers / transformers)
 * with defaults and errors that name the file and the key.
 *
 * A config is a jansson object.  model_config_load/model_config_parse record where it
 * came from under the key MODEL_CONFIG_SOURCE_KEY ("_diffusiond_source", in the spirit
 * of diffusers' own "_class_name"/"_diffusers_version"); every getter puts that source
 * in its messages:  "…/unet/config.json: key 'block_out_channels': expected an array of
 * integers".  Configs synthesised in memory (models/checkpoint.c for single files) set
 * it too, via model_config_set_source.
 *
 * Getters: a key that is absent or JSON null takes the default (diffusers writes null
 * for "not set", e.g. "num_attention_heads": null); a key with the wrong JSON type, or
 * an integer that does not fit an int, is STATUS_FORMAT.  Integers accept JSON
 * integers and integral reals (4.0); floats accept integers and reals; bools accept
 * only true/false.
 *
 * Ownership: model_config_load/parse return a new reference the caller releases with
 * json_decref.  Strings returned by model_config_string(_array) are borrowed from the
 * object and live as long as it does.
 * Thread-safety: reentrant; a json_t may be read by several threads at once (jansson
 * reads do not mutate) but not while one modifies it.
 */
#ifndef DIFFUSIOND_MODELS_MODEL_CONFIG_H
#define DIFFUSIOND_MODELS_MODEL_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

#include "engine/status.h"

#define MODEL_CONFIG_SOURCE_KEY "_diffusiond_source"

/* Parses the JSON object in file `path` (duplicate keys rejected).  Missing/unreadable
 * file → STATUS_IO ("…: cannot read"); not JSON or not an object → STATUS_FORMAT. */
enum status model_config_load(const char *path, json_t **out, struct errbuf *err);

/* The same from a string; `source` names it in messages. */
enum status model_config_parse(const char *text, const char *source, json_t **out,
                               struct errbuf *err);

/* Records `source` in obj (for messages); returns false when out of memory. */
bool model_config_set_source(json_t *obj, const char *source);
/* The recorded source, or "config" when there is none. */
const char *model_config_source(const json_t *obj);

/* True when obj has `key` with a non-null value. */
bool model_config_has(const json_t *obj, const char *key);

enum status model_config_int(const json_t *obj, const char *key, int def, int *out,
                             struct errbuf *err);
enum status model_config_float(const json_t *obj, const char *key, double def, double *out,
                               struct errbuf *err);
enum status model_config_bool(const json_t *obj, const char *key, bool def, bool *out,
                              struct errbuf *err);
/* *out is borrowed from obj (or is def, which may be NULL). */
enum status model_config_string(const json_t *obj, const char *key, const char *def,
                                const char **out, struct errbuf *err);

/* An integer array of at most `max` entries: *n is its length.  A scalar integer is
 * accepted as a one-entry list (diffusers allows e.g. "attention_head_dim": 8 where a
 * per-block list is meant).  Absent/null: *n = 0, STATUS_OK.  Longer than max →
 * STATUS_FORMAT. */
enum status model_config_int_array(const json_t *obj, const char *key, int *out, int max,
                                   int *n, struct errbuf *err);

/* A per-block integer: a scalar is repeated n_blocks times, an array must have exactly
 * n_blocks entries; absent/null gives def for every block. */
enum status model_config_int_per_block(const json_t *obj, const char *key, int n_blocks,
                                       int def, int *out, struct errbuf *err);

/* A string array (e.g. "down_block_types") of at most `max` entries; absent/null:
 * *n = 0.  The strings are borrowed from obj. */
enum status model_config_string_array(const json_t *obj, const char *key, const char **out,
                                      int max, int *n, struct errbuf *err);

#endif
