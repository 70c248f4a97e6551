/* api/api_error.h — an API error (HTTP status, OpenAI type/param/code, message), the
 * ONE mapping from enum status to an HTTP status, and the OpenAI error body
 *
 *     {"error":{"message":"…","type":"…","param":"…"|null,"code":"…"|null}}
 *
 * Types by HTTP status (api_error_type_for_http; a caller may set another):
 *     400 404 405 411 413 415  invalid_request_error   (404 model: code model_not_found)
 *     401                      authentication_error
 *     403                      permission_error
 *     429                      rate_limit_error        (queue full: code queue_full)
 *     5xx                      server_error
 *
 * Status → HTTP (api_http_status):
 *     OK 200 · INVALID_ARGUMENT 400 · FORMAT 400 (a malformed request body) ·
 *     UNSUPPORTED 400 (a valid request this build cannot do) · NOT_FOUND 404 ·
 *     BUSY 429 · OUT_OF_MEMORY 503 · CANCELLED 503 (shutdown) · TIMEOUT 504 ·
 *     IO 500 · DEVICE 500 · INTERNAL 500 (and any unknown value).
 *
 * Ownership: struct api_error is a plain value with fixed buffers (strings longer than
 * a buffer are cut at a UTF-8 character boundary).  api_error_body returns malloc'ed
 * bytes the caller frees.  Thread-safety: every function is reentrant.
 */
#ifndef DIFFUSIOND_API_API_ERROR_H
#define DIFFUSIOND_API_API_ERROR_H

#include <stddef.h>

#include "engine/status.h"

#define API_ERROR_MESSAGE_MAX 512
#define API_ERROR_TYPE_MAX 32
#define API_ERROR_PARAM_MAX 64
#define API_ERROR_CODE_MAX 48

struct api_error {
    int http;                            /* HTTP status, e.g. 400 */
    char type[API_ERROR_TYPE_MAX];       /* "invalid_request_error", … */
    char param[API_ERROR_PARAM_MAX];     /* the request field; "" = JSON null */
    char code[API_ERROR_CODE_MAX];       /* machine-readable code; "" = JSON null */
    char message[API_ERROR_MESSAGE_MAX]; /* one line; starts with param when there is one */
};

/* The HTTP status for a status code (table at the top). */
int api_http_status(enum status s);

/* The OpenAI error type for an HTTP status (table at the top); never NULL. */
const char *api_error_type_for_http(int http);

/* Fills e: type NULL = api_error_type_for_http(http); param/code NULL = none;
 * message printf-style. */
void api_error_set(struct api_error *e, int http, const char *type, const char *param,
                   const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* From a failed call: http = api_http_status(err->code) (s when err is NULL), the
 * default type, message err->msg; param = the field the message starts with
 * ("steps: must be …" → "steps") when `param` is NULL and the status is
 * INVALID_ARGUMENT, else `param` ("" = none). */
void api_error_from_status(struct api_error *e, enum status s, const struct errbuf *err,
                           const char *param);

/* The JSON body into buf (always NUL-terminated when cap > 0); returns the length the
 * whole body needs, without the NUL (as snprintf). */
size_t api_error_format(const struct api_error *e, char *buf, size_t cap);

/* The JSON body, malloc'ed (NUL-terminated), its length in *len; NULL when out of
 * memory. */
char *api_error_body(const struct api_error *e, size_t *len);

#endif
