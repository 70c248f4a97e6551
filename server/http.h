/* server/http.h — the HTTP transport: libmicrohttpd behind a small interface.  The only
 * module that includes microhttpd.h; routes see exchanges and responses, never MHD.
 *
 * Daemon: MHD's internal polling thread (epoll where the library has it, else poll),
 * suspend/resume, connection limit, idle timeout, per-connection memory limit,
 * notify-completed.  STRICT_FOR_CLIENT is 0: in 0.9.75 its 1 only adds the HTTP/1.1
 * Host check, whose rejection MHD sends with a doubled status line; the routes check
 * Host themselves (http_exchange_http11).  No post processor: the body is
 * accumulated here, up to max_body_bytes (a body past it closes the connection).
 *
 * One exchange = one request on a connection:
 *   on_headers   the request line and headers are in, the body is not read.  The route
 *                may answer now (http_exchange_respond): the body is then never read
 *                (411/413/415/401/404/405 are decided here).
 *   on_request   the body is complete.  The route answers now, or calls
 *                http_exchange_defer() and answers later from any thread with
 *                http_exchange_respond(): the connection is suspended meanwhile and
 *                resumed by that call (the response is queued on the MHD thread).
 *   on_abort     a deferred exchange whose client went away before its answer (seen by
 *                http_server_check_clients, which the owner calls periodically: MHD
 *                does not watch suspended sockets).  Called once, on the MHD thread,
 *                with the tag set by http_exchange_set_tag; the answer must still come
 *                (http_exchange_respond), it is then dropped.
 *   on_finished  once per exchange when MHD is done with it (sent, or failed), on the
 *                MHD thread: the final status code (499 when none was sent: the client
 *                went away first), and whether it was sent in full.
 *
 * Ownership: an exchange is reference-counted inside this module — one reference for
 * the connection (dropped after on_finished) and one while deferred (dropped by
 * http_exchange_respond) — so a completion racing a disconnect is safe; the route's
 * per-exchange data (http_exchange_set_data) is freed with it.  A response passed to
 * http_exchange_respond belongs to this module from then on.
 * Thread-safety: the http_exchange_* accessors (method, path, header, body, …) are for
 * the MHD thread inside on_headers/on_request; http_exchange_respond after
 * http_exchange_defer, http_exchange_set_tag and http_exchange_data may be called from
 * any thread; http_server_* from the owner thread.
 */
#ifndef DIFFUSIOND_SERVER_HTTP_H
#define DIFFUSIOND_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

enum http_method {
    HTTP_GET = 0, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH, HTTP_OPTIONS,
    HTTP_OTHER
};

#define HTTP_MAX_HEADERS 16

/* A response under construction: status code, headers, a malloc'ed body. */
struct http_response {
    int code;
    int n_headers;
    char *names[HTTP_MAX_HEADERS], *values[HTTP_MAX_HEADERS];
    uint8_t *body; /* owned (free()); NULL when len 0 */
    size_t len;
};

/* A response with `code` and `body` (taken: malloc'ed, freed with the response; may
 * be NULL with len 0); content_type (may be NULL: none) becomes a Content-Type header.
 * NULL when out of memory (body is then freed). */
struct http_response *http_response_new(int code, const char *content_type, void *body,
                                        size_t len);
/* Copies body (len bytes). */
struct http_response *http_response_copy(int code, const char *content_type, const void *body,
                                         size_t len);
/* Adds (or replaces, case-insensitively) a header; STATUS_OUT_OF_MEMORY,
 * STATUS_INVALID_ARGUMENT past HTTP_MAX_HEADERS or with CR/LF in name or value. */
enum status http_response_header(struct http_response *r, const char *name, const char *value,
                                 struct errbuf *err);
/* The value of a header set on r, or NULL. */
const char *http_response_get_header(const struct http_response *r, const char *name);
void http_response_free(struct http_response *r);

struct http_exchange;

struct http_handlers {
    void *user;
    void (*on_headers)(void *user, struct http_exchange *ex);
    void (*on_request)(void *user, struct http_exchange *ex);
    void (*on_abort)(void *user, struct http_exchange *ex, uint64_t tag);
    void (*on_finished)(void *user, struct http_exchange *ex, int code, bool sent);
};

struct http_config {
    const char *host;          /* numeric IPv4/IPv6 address to bind; NULL/"": 127.0.0.1 */
    int port;                  /* 0: any free port (http_server_port tells which) */
    int max_connections;       /* MHD_OPTION_CONNECTION_LIMIT */
    int max_connections_per_ip; /* MHD_OPTION_PER_IP_CONNECTION_LIMIT; 0: none */
    int connection_timeout_s;  /* idle timeout (not while suspended) */
    size_t connection_memory;  /* MHD_OPTION_CONNECTION_MEMORY_LIMIT (bytes) */
    size_t max_body_bytes;     /* hard cap on an accumulated body */
};

struct http_server;

/* Binds and starts the daemon thread.  STATUS_INVALID_ARGUMENT naming "host" for an
 * address that does not parse; STATUS_IO when binding fails (message says why). */
enum status http_server_start(const struct http_config *cfg, const struct http_handlers *h,
                              struct http_server **out, struct errbuf *err);
/* The bound port. */
int http_server_port(const struct http_server *s);
/* "epoll" or "poll": the event loop the daemon runs. */
const char *http_server_poller(const struct http_server *s);
/* Looks at the sockets of suspended exchanges; a client that closed its side is resumed
 * and closed (on_abort, then on_finished).  Returns how many were found gone. */
int http_server_check_clients(struct http_server *s);
/* Stops accepting new connections (the listening socket is closed); open ones go on. */
void http_server_quiesce(struct http_server *s);
/* Exchanges deferred and not yet answered; exchanges open (connection-held). */
void http_server_counts(struct http_server *s, int *deferred, int *open);
/* Stops the daemon (call after every deferred exchange was answered) and frees it. */
void http_server_stop(struct http_server *s);

/* --- the exchange (see thread-safety above) ----------------------------------------- */

enum http_method http_exchange_method(const struct http_exchange *ex);
const char *http_exchange_method_name(const struct http_exchange *ex);
/* The path without the query string. */
const char *http_exchange_path(const struct http_exchange *ex);
/* A request header (case-insensitive name), or NULL. */
const char *http_exchange_header(const struct http_exchange *ex, const char *name);
/* How many times a header was sent (case-insensitive name). */
int http_exchange_header_count(const struct http_exchange *ex, const char *name);
/* Content-Length as sent: -1 when absent (or chunked), -2 when malformed. */
int64_t http_exchange_content_length(const struct http_exchange *ex);
/* Whether Transfer-Encoding was sent (we take no chunked bodies). */
bool http_exchange_chunked(const struct http_exchange *ex);
/* The body (on_request): NUL-terminated after len bytes; len 0 when none.  The bytes
 * stay put, unchanged, until the exchange is freed: a thread that holds a deferred
 * exchange (http_exchange_hold) may read them until its release. */
const uint8_t *http_exchange_body(const struct http_exchange *ex, size_t *len);
/* Whether the request line said HTTP/1.1 (not 1.0): a Host header is then required. */
bool http_exchange_http11(const struct http_exchange *ex);
/* The client's address as text ("127.0.0.1", "::1"). */
const char *http_exchange_client(const struct http_exchange *ex);
/* Monotonic ns when the request line arrived. */
uint64_t http_exchange_start_ns(const struct http_exchange *ex);

/* Route data freed (free_fn) when the exchange is; data read back from any thread. */
void http_exchange_set_data(struct http_exchange *ex, void *data, void (*free_fn)(void *));
void *http_exchange_data(const struct http_exchange *ex);

/* Inside on_request: the answer will come later (from any thread). */
void http_exchange_defer(struct http_exchange *ex);
/* The value given to on_abort (e.g. a job id).  From any thread; true when the client
 * has already gone (a deferred exchange whose on_abort ran before the tag was set: the
 * caller cancels what it started itself). */
bool http_exchange_set_tag(struct http_exchange *ex, uint64_t tag);
/* Keeps ex allocated after it is answered (and its connection closed) until the
 * matching http_exchange_release: for a thread that answers through another (e.g. a
 * job's completion) and still touches ex after handing it over.  Any thread, after
 * http_exchange_defer. */
void http_exchange_hold(struct http_exchange *ex);
void http_exchange_release(struct http_exchange *ex);
/* Answers the exchange: inside on_headers/on_request, or once after defer from any
 * thread.  Takes r (a NULL r — out of memory — answers 500 with no body).  A second
 * answer is dropped (logged). */
void http_exchange_respond(struct http_exchange *ex, struct http_response *r);

/* Monotonic clock in ns (the one exchanges are timed with). */
uint64_t http_now_ns(void);

#endif
