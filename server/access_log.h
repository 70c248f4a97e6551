/* server/access_log.h — one JSON line per HTTP request, and request ids.
 *
 * Line (keys in this order; absent ones left out; cmd_serve writes them to stdout):
 *   {"ts":"2026-01-02T03:04:05.678Z","type":"access","request_id":"…","method":"POST",
 *    "path":"/v1/images/generations","status":200,"bytes":12345,"duration_ms":812.4,
 *    "remote":"127.0.0.1","user":"…","queue_ms":3.1,"total_ms":805.0}
 * user is the OpenAI request's "user" field (only when given); queue_ms / total_ms
 * only for generations.  Strings are JSON-escaped; bytes that are not valid UTF-8
 * become U+FFFD, and each string is cut at ACCESS_LOG_FIELD_MAX bytes, so a line is
 * always valid JSON and at most ACCESS_LOG_LINE_MAX bytes.
 *
 * Request ids: a client's X-Request-Id is echoed when sane (1 … 128 bytes of visible
 * ASCII 0x21 … 0x7e other than '"', '\'' and '\\'); otherwise a new one is made: 32 hex
 * digits from getrandom(2).
 *
 * Ownership: the caller owns every buffer.  Thread-safety: all functions are
 * reentrant; access_log_write writes each line with one fwrite (stdio locks the
 * stream), so lines from several threads never interleave with each other or with
 * engine/log.h's lines on the same stream.
 */
#ifndef DIFFUSIOND_SERVER_ACCESS_LOG_H
#define DIFFUSIOND_SERVER_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/status.h"

#define REQUEST_ID_MAX 128
#define REQUEST_ID_BUF (REQUEST_ID_MAX + 1)
#define ACCESS_LOG_FIELD_MAX 512
#define ACCESS_LOG_LINE_MAX 20480

struct access_log_entry {
    double ts;               /* unix seconds (the request's arrival) */
    const char *request_id;
    const char *method;
    const char *path;
    int status;
    uint64_t bytes;          /* response body bytes */
    double duration_ms;      /* arrival → response queued */
    const char *remote;      /* peer address; NULL: left out */
    const char *user;        /* the OpenAI "user" field; NULL: left out */
    double queue_ms;         /* < 0: left out (not a generation) */
    double total_ms;         /* < 0: left out */
};

/* An entry with the optional fields marked absent (user/remote NULL, ms -1). */
void access_log_entry_init(struct access_log_entry *e);

/* Formats e as one line ending in '\n' into buf; returns its length (0, and nothing
 * written, when cap < ACCESS_LOG_LINE_MAX). */
size_t access_log_format(const struct access_log_entry *e, char *buf, size_t cap);

/* Formats and writes one line to sink (one fwrite). */
void access_log_write(FILE *sink, const struct access_log_entry *e);

/* Whether s[0 … len) may be echoed as a request id (see above). */
bool request_id_valid(const char *s, size_t len);

/* A new random id (32 lowercase hex digits) into out; STATUS_IO if getrandom fails. */
enum status request_id_generate(char out[REQUEST_ID_BUF], struct errbuf *err);

/* The request's id: header (NULL when absent) copied when valid, else a new one. */
enum status request_id_choose(const char *header, char out[REQUEST_ID_BUF],
                              struct errbuf *err);

#endif
