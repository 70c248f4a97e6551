/* server/bench_http_client.h — the load benchmark's HTTP client: one HTTP/1.1 request
 * (GET or POST with a JSON body) to a service on the loopback address, the whole
 * response read, for `diffusiond bench load` (server/bench_load.c).
 *
 * One call connects to 127.0.0.1:port, sends the request with `Connection: close`,
 * reads the status line, the headers and the body — up to Content-Length, else to the
 * end of the stream — and closes.  Everything runs under one deadline (timeout_ms from
 * the start of the call).  The body is bounded by BENCH_HTTP_BODY_MAX; no chunked
 * decoding (the server sends Content-Length), no TLS, no redirects.
 *
 * Ownership: the caller owns the request strings; the response's body is malloc'd and
 * freed with bench_http_response_free.  Thread-safety: reentrant, no global state
 * (SIGPIPE is avoided with MSG_NOSIGNAL), so one thread per in-flight request is fine.
 */
#ifndef DIFFUSIOND_SERVER_BENCH_HTTP_CLIENT_H
#define DIFFUSIOND_SERVER_BENCH_HTTP_CLIENT_H

#include <stddef.h>

#include "engine/status.h"

#define BENCH_HTTP_HEAD_MAX 16384           /* status line + headers, bytes */
#define BENCH_HTTP_BODY_MAX (64u << 20)     /* largest body kept, bytes */

struct bench_http_request {
    int port;         /* 1..65535, on 127.0.0.1 */
    const char *method; /* "GET" or "POST" */
    const char *path; /* starts with '/' */
    const char *body; /* POST: the JSON body (Content-Type application/json); else NULL */
    int timeout_ms;   /* > 0: the deadline for the whole exchange */
};

struct bench_http_response {
    int status_code; /* 100..599 */
    char *body;      /* NUL-terminated, malloc'd; NULL before a successful call */
    size_t body_len;
};

/* Performs the exchange.  STATUS_OK when a complete response (head and the whole body)
 * was read, whatever its HTTP status; otherwise STATUS_INVALID_ARGUMENT (bad request
 * fields), STATUS_IO (refused, reset, closed early), STATUS_TIMEOUT, STATUS_FORMAT (not
 * HTTP/1.x, head or body over its bound), STATUS_OUT_OF_MEMORY.  On failure res holds
 * no body.  err names what failed. */
enum status bench_http_exchange(const struct bench_http_request *req,
                                struct bench_http_response *res, struct errbuf *err);

/* Frees the body (res may be zeroed or already freed). */
void bench_http_response_free(struct bench_http_response *res);

#endif
