/* server/http_probe.h — a minimal HTTP/1.1 client for one GET on a local service: the
 * engine of `diffusiond healthcheck` (server/cmd_healthcheck.h), so that a container
 * image needs no curl.
 *
 * One call opens a TCP connection (IPv4 or IPv6, numeric address or a name resolved by
 * getaddrinfo), sends `GET <path> HTTP/1.1` with `Connection: close`, reads the status
 * line and headers and at most HTTP_PROBE_BODY_MAX bytes of the body, and closes.
 * Everything — resolution excepted — runs under one deadline (timeout_ms from the
 * start of the call): connect, send and every read.  The response read is bounded
 * (HTTP_PROBE_HEAD_MAX for the head): a peer that floods or never finishes cannot
 * hold the caller beyond the deadline or make it allocate.  No TLS, no redirects, no
 * chunked decoding (the body snippet is informative only).
 *
 * Ownership: the caller owns the request strings and the result; nothing is
 * allocated.  Thread-safety: reentrant; no global state (SIGPIPE is avoided with
 * MSG_NOSIGNAL, not by changing the process's signal disposition).
 */
#ifndef DIFFUSIOND_SERVER_HTTP_PROBE_H
#define DIFFUSIOND_SERVER_HTTP_PROBE_H

#include <stddef.h>

#include "engine/status.h"

#define HTTP_PROBE_HEAD_MAX 8192 /* status line + headers, bytes */
#define HTTP_PROBE_BODY_MAX 256  /* body bytes kept for the caller's message */

struct http_probe_request {
    const char *host; /* "127.0.0.1", "::1", "[::1]", "localhost"; 0.0.0.0/:: mean loopback */
    int port;         /* 1..65535 */
    const char *path; /* must start with '/'; no spaces or control characters */
    int timeout_ms;   /* > 0: the deadline for the whole exchange */
};

struct http_probe_result {
    int status_code;                    /* 100..599 from the status line */
    char body[HTTP_PROBE_BODY_MAX + 1]; /* the body's first bytes, NUL-terminated */
    size_t body_len;
    long elapsed_ms; /* from the call's start to the end of the read */
};

/* Performs the GET.  STATUS_OK when a well-formed status line and header block were
 * received, whatever the HTTP status (the caller judges 2xx); otherwise:
 * STATUS_INVALID_ARGUMENT (bad host/port/path/timeout), STATUS_NOT_FOUND (the host
 * name does not resolve), STATUS_IO (refused, reset, closed before a response),
 * STATUS_TIMEOUT (the deadline passed first), STATUS_FORMAT (not an HTTP/1.x
 * response, or a head over HTTP_PROBE_HEAD_MAX).  err names what failed. */
enum status http_probe_get(const struct http_probe_request *req, struct http_probe_result *res,
                           struct errbuf *err);

/* Copies host into buf (cap bytes) as the address to connect to: brackets of "[v6]"
 * stripped, the wildcard addresses 0.0.0.0 and :: (a server's "listen on every
 * interface") replaced by 127.0.0.1 and ::1.  STATUS_INVALID_ARGUMENT when host is
 * empty or does not fit. */
enum status http_probe_connect_host(const char *host, char *buf, size_t cap, struct errbuf *err);

/* Copies the first line of buf[0..len) into out (cap > 0 bytes, NUL-terminated),
 * bytes outside printable ASCII as '?': a peer's text made safe for a one-line log. */
void http_probe_first_line(const char *buf, size_t len, char *out, size_t cap);

#endif
