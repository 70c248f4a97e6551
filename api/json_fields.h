/* api/json_fields.h — typed readers for the fields of a JSON request body, shared by
 * the request parsers (api/openai_images.c, api/a1111_request.c), so that every route
 * words its errors the same way.
 *
 * Every error is a 400 invalid_request_error (struct api_error) whose param names the
 * field and whose message starts with it: "n: must be an integer in [1, 8] (got 9)";
 * a body that is not JSON or not an object has param null (or the top-level field
 * whose value could not be read: "seed" for 18446744073709551616, "prompt" for bad
 * UTF-8).  Out of memory is a 503 (STATUS_OUT_OF_MEMORY).
 *
 * Integers must be JSON integers or reals with no fraction (JSON Schema's integer:
 * 2.0 is 2); "2" and true are not.  Strings are valid UTF-8 (jansson checked them).
 *
 * Ownership: strings read are malloc'ed copies the caller frees; json_field_load's
 * root is the caller's (json_decref).  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_JSON_FIELDS_H
#define DIFFUSIOND_API_JSON_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/api_error.h"
#include "models/pipeline.h"

#define JSON_FIELD_ECHO_MAX 40 /* bytes of a rejected string value quoted in a message */

/* body[0 … len) as one JSON object (duplicate keys rejected, no NUL, nothing after
 * it) into *root; on failure *root is NULL and e says where. */
enum status json_field_load(const char *body, size_t len, json_t **root, struct api_error *e);

/* A 400 naming param ("<param>: <message>"; param NULL: JSON null).  fmt is a literal
 * with exactly two %s, filled with a and b (NULL = ""). */
enum status json_field_bad(struct api_error *e, const char *param, const char *fmt,
                           const char *a, const char *b);
/* A 503 "out of memory while reading <what>". */
enum status json_field_oom(struct api_error *e, const char *what);

/* The JSON type of v as a message word ("an integer", "a string", …). */
const char *json_field_type_word(const json_t *v);
/* "<field>: must be <want> (got <type>)". */
enum status json_field_wrong_type(struct api_error *e, const char *field, const char *want,
                                  const json_t *v);

enum status json_field_int(const json_t *v, const char *field, json_int_t lo, json_int_t hi,
                           json_int_t *out, struct api_error *e);
/* A finite number in [lo, hi]. */
enum status json_field_number(const json_t *v, const char *field, double lo, double hi,
                              double *out, struct api_error *e);
enum status json_field_bool(const json_t *v, const char *field, bool *out, struct api_error *e);
/* A copy into *out (malloc'ed); at most max_chars code points when max_chars > 0. */
enum status json_field_string(const json_t *v, const char *field, int max_chars, char **out,
                              struct api_error *e);
/* The index of v among names[0 … count) (exact match); the error lists them. */
enum status json_field_choice(const json_t *v, const char *field, const char *const *names,
                              int count, int *out, struct api_error *e);
/* A models/ sampler or scheduler name (sampler_kind_parse / sd_scheduler_parse: aliases,
 * any case); the error lists the names. */
enum status json_field_sampler(const json_t *v, const char *field, enum sampler_kind *out,
                               struct api_error *e);
enum status json_field_scheduler(const json_t *v, const char *field, enum sd_scheduler *out,
                                 struct api_error *e);

#endif
