/* server/http.c — libmicrohttpd glue (server/http.h).  The only file that includes
 * microhttpd.h.
 *
 * An exchange's life, under the server's one mutex (srv->lock):
 *   HEADERS ─▶ BODY ─▶ HANDLING ─┬─▶ (answered in the handler) ─▶ SENT
 *                                └─▶ SUSPENDED ─▶ READY (answer came; resumed) ─▶ SENT
 *                                        └──────▶ GONE (client closed; resumed, closed)
 * An answer that comes from another thread while the MHD thread is still inside
 * on_request (before it could suspend) leaves the state HANDLING with the response
 * stored: the MHD thread then queues it without suspending.  MHD_suspend_connection
 * is called under the lock, so whoever sees SUSPENDED may resume (after unlocking:
 * a suspended connection cannot be closed, so it is still there).
 * References: the connection's (dropped in notify-completed) and the deferral's
 * (dropped by the answer); the exchange is freed at zero. */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "engine/log.h"

enum ex_state { EX_HEADERS, EX_BODY, EX_HANDLING, EX_SUSPENDED, EX_READY, EX_GONE, EX_SENT };

struct http_exchange {
    struct http_server *srv;
    struct MHD_Connection *conn;
    enum ex_state state;      /* [lock] */
    int refs;                 /* [lock] */
    bool deferred, answered;  /* [lock] */
    uint64_t tag;             /* [lock] */
    struct http_response *resp; /* [lock] the answer waiting to be queued */
    int code;                 /* the status queued */
    enum http_method method;
    const char *method_name;
    bool http11;              /* HTTP/1.1 (or later): a Host header is required */
    char *path;
    uint8_t *body;
    size_t body_len, body_cap;
    uint64_t start_ns;
    char client[64];
    void *data;
    void (*data_free)(void *);
    struct http_exchange *prev, *next; /* [lock] in srv->suspended */
};

struct http_server {
    struct MHD_Daemon *d;
    struct http_config cfg;
    struct http_handlers h;
    pthread_mutex_t lock;
    struct http_exchange *suspended; /* [lock] list */
    int n_deferred, n_open;          /* [lock] */
    int port;
    bool epoll;
};

uint64_t http_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- responses ----------------------------------------------------------------------- */

struct http_response *http_response_new(int code, const char *content_type, void *body,
                                        size_t len)
{
    struct http_response *r = calloc(1, sizeof *r);
    if (!r) {
        free(body);
        return NULL;
    }
    r->code = code;
    r->body = body;
    r->len = body ? len : 0;
    if (content_type && http_response_header(r, "Content-Type", content_type, NULL) != STATUS_OK) {
        http_response_free(r);
        return NULL;
    }
    return r;
}

struct http_response *http_response_copy(int code, const char *content_type, const void *body,
                                         size_t len)
{
    void *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return NULL;
        memcpy(copy, body, len);
    }
    return http_response_new(code, content_type, copy, len);
}

enum status http_response_header(struct http_response *r, const char *name, const char *value,
                                 struct errbuf *err)
{
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "header %s: CR/LF in name or value",
                           name);
    int i = 0;
    while (i < r->n_headers && strcasecmp(r->names[i], name) != 0)
        i++;
    if (i == HTTP_MAX_HEADERS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "header %s: more than %d headers", name,
                           HTTP_MAX_HEADERS);
    char *v = strdup(value);
    char *n = i < r->n_headers ? r->names[i] : strdup(name);
    if (!v || !n) {
        free(v);
        if (i == r->n_headers)
            free(n);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "header %s", name);
    }
    if (i < r->n_headers)
        free(r->values[i]);
    else
        r->n_headers++;
    r->names[i] = n;
    r->values[i] = v;
    return STATUS_OK;
}

const char *http_response_get_header(const struct http_response *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

void http_response_free(struct http_response *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_headers; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->body);
    free(r);
}

/* Queues r on the connection (MHD thread) and frees it. */
static enum MHD_Result queue_response(struct http_exchange *ex, struct http_response *r)
{
    const int code = r ? r->code : 500;
    struct MHD_Response *mr =
        r && r->len ? MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE)
                    : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (mr && r && r->len)
        r->body = NULL; /* MHD frees it now */
    if (!mr) {
        http_response_free(r);
        return MHD_NO;
    }
    for (int i = 0; r && i < r->n_headers; i++)
        MHD_add_response_header(mr, r->names[i], r->values[i]);
    http_response_free(r);
    ex->code = code;
    const enum MHD_Result res = MHD_queue_response(ex->conn, (unsigned)code, mr);
    MHD_destroy_response(mr);
    return res;
}

/* --- exchanges ----------------------------------------------------------------------- */

static void exchange_free(struct http_exchange *ex)
{
    if (ex->data_free)
        ex->data_free(ex->data);
    http_response_free(ex->resp);
    free(ex->body);
    free(ex->path);
    free(ex);
}

/* Drops one reference [lock held by the caller: srv->lock]; true when it was the last. */
static bool unref_locked(struct http_exchange *ex)
{
    if (--ex->refs > 0)
        return false;
    ex->srv->n_open--;
    return true;
}

static enum http_method parse_method(const char *m)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                        "OPTIONS"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(m, names[i]) == 0)
            return (enum http_method)i;
    return HTTP_OTHER;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    const socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                    : sizeof(struct sockaddr_in);
    if (getnameinfo(sa, len, buf, (socklen_t)cap, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(buf, cap, "-");
}

static struct http_exchange *exchange_new(struct http_server *s, struct MHD_Connection *c,
                                          const char *url, const char *method,
                                          const char *version)
{
    struct http_exchange *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    const size_t plen = strcspn(url, "?");
    ex->path = strndup(url, plen);
    if (!ex->path) {
        free(ex);
        return NULL;
    }
    ex->srv = s;
    ex->conn = c;
    ex->refs = 1;
    ex->state = EX_HEADERS;
    ex->method = parse_method(method);
    ex->method_name = method;
    ex->http11 = strcmp(version, MHD_HTTP_VERSION_1_0) != 0;
    ex->start_ns = http_now_ns();
    client_address(c, ex->client, sizeof ex->client);
    pthread_mutex_lock(&s->lock);
    s->n_open++;
    pthread_mutex_unlock(&s->lock);
    return ex;
}

static bool append_body(struct http_exchange *ex, const char *data, size_t n)
{
    if (n > ex->srv->cfg.max_body_bytes - ex->body_len)
        return false;
    if (ex->body_len + n + 1 > ex->body_cap) {
        size_t cap = ex->body_cap ? ex->body_cap : 4096;
        while (cap < ex->body_len + n + 1)
            cap *= 2;
        uint8_t *p = realloc(ex->body, cap);
        if (!p)
            return false;
        ex->body = p;
        ex->body_cap = cap;
    }
    memcpy(ex->body + ex->body_len, data, n);
    ex->body_len += n;
    ex->body[ex->body_len] = '\0';
    return true;
}

/* Whether the request announces a body (Content-Length > 0, or Transfer-Encoding). */
static bool expects_body(const struct http_exchange *ex)
{
    const int64_t n = http_exchange_content_length(ex);
    return n != 0 && (n != -1 || http_exchange_chunked(ex));
}

/* After on_headers/on_request: queue the answer if there is one; after on_request,
 * suspend a deferred exchange still waiting. */
static enum MHD_Result after_handler(struct http_exchange *ex, bool body_done)
{
    struct http_server *s = ex->srv;
    pthread_mutex_lock(&s->lock);
    struct http_response *r = ex->resp;
    ex->resp = NULL;
    if (r && !body_done && !expects_body(ex)) {
        /* An early answer to a request without a body: queued on the next call, after
         * the (empty) body, so that MHD keeps the connection alive. */
        ex->resp = r;
        ex->state = EX_BODY;
        pthread_mutex_unlock(&s->lock);
        return MHD_YES;
    }
    if (r || (body_done && (!ex->deferred || ex->answered))) { /* answered: even with no
                                                                   response (out of memory) */
        ex->state = EX_SENT;
        pthread_mutex_unlock(&s->lock);
        if (!r)
            LOG_ERRORF("http", "%s %s: the route gave no answer", ex->method_name, ex->path);
        return queue_response(ex, r);
    }
    if (!body_done) {
        ex->state = EX_BODY;
        pthread_mutex_unlock(&s->lock);
        return MHD_YES;
    }
    ex->state = EX_SUSPENDED;
    ex->prev = NULL;
    ex->next = s->suspended;
    if (s->suspended)
        s->suspended->prev = ex;
    s->suspended = ex;
    MHD_suspend_connection(ex->conn);
    pthread_mutex_unlock(&s->lock);
    return MHD_YES;
}

static void list_remove_locked(struct http_server *s, struct http_exchange *ex)
{
    if (ex->prev)
        ex->prev->next = ex->next;
    else
        s->suspended = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    ex->prev = ex->next = NULL;
}

/* A call after resume: queue the answer, or close for a client that is gone. */
static enum MHD_Result on_resumed(struct http_exchange *ex)
{
    struct http_server *s = ex->srv;
    pthread_mutex_lock(&s->lock);
    const enum ex_state st = ex->state;
    struct http_response *r = ex->resp;
    ex->resp = NULL;
    if (st == EX_READY)
        ex->state = EX_SENT;
    pthread_mutex_unlock(&s->lock);
    if (st == EX_READY)
        return queue_response(ex, r);
    http_response_free(r);
    return MHD_NO; /* EX_GONE (or a spurious call): close the connection */
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload, size_t *upload_size, void **con_cls)
{
    struct http_server *s = cls;
    struct http_exchange *ex = *con_cls;
    if (!ex) {
        ex = exchange_new(s, c, url, method, version);
        if (!ex)
            return MHD_NO;
        *con_cls = ex;
        ex->state = EX_HEADERS;
        if (s->h.on_headers)
            s->h.on_headers(s->h.user, ex);
        return after_handler(ex, false);
    }
    switch (ex->state) {
    case EX_BODY:
        if (*upload_size) {
            if (!append_body(ex, upload, *upload_size))
                return MHD_NO; /* past the hard cap (routes answer 413 before this) */
            *upload_size = 0;
            return MHD_YES;
        }
        pthread_mutex_lock(&s->lock);
        ex->state = EX_HANDLING;
        const bool answered = ex->resp != NULL; /* early, held for a body-less request */
        pthread_mutex_unlock(&s->lock);
        if (!answered)
            s->h.on_request(s->h.user, ex);
        return after_handler(ex, true);
    case EX_READY:
    case EX_GONE:
        return on_resumed(ex);
    default:
        *upload_size = 0; /* body bytes after an early answer: discarded */
        return MHD_YES;
    }
}

static void notify_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
    (void)c;
    struct http_server *s = cls;
    struct http_exchange *ex = *con_cls;
    if (!ex)
        return;
    *con_cls = NULL;
    pthread_mutex_lock(&s->lock);
    const bool abort = ex->deferred && !ex->answered;
    const uint64_t tag = ex->tag;
    if (ex->state == EX_SUSPENDED) /* daemon shutdown with it still suspended */
        list_remove_locked(s, ex);
    if (abort)
        ex->state = EX_GONE;
    pthread_mutex_unlock(&s->lock);
    if (abort && s->h.on_abort)
        s->h.on_abort(s->h.user, ex, tag);
    if (s->h.on_finished)
        s->h.on_finished(s->h.user, ex, abort || !ex->code ? 499 : ex->code, /* 499: none sent */
                         toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && !abort);
    pthread_mutex_lock(&s->lock);
    const bool last = unref_locked(ex);
    pthread_mutex_unlock(&s->lock);
    if (last)
        exchange_free(ex);
}

/* --- the exchange API ---------------------------------------------------------------- */

enum http_method http_exchange_method(const struct http_exchange *ex) { return ex->method; }
const char *http_exchange_method_name(const struct http_exchange *ex) { return ex->method_name; }
const char *http_exchange_path(const struct http_exchange *ex) { return ex->path; }
const char *http_exchange_client(const struct http_exchange *ex) { return ex->client; }
bool http_exchange_http11(const struct http_exchange *ex) { return ex->http11; }
uint64_t http_exchange_start_ns(const struct http_exchange *ex) { return ex->start_ns; }

const char *http_exchange_header(const struct http_exchange *ex, const char *name)
{
    return MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, name);
}

int64_t http_exchange_content_length(const struct http_exchange *ex)
{
    const char *v = http_exchange_header(ex, "Content-Length");
    if (!v || http_exchange_chunked(ex))
        return -1;
    if (!*v)
        return -2;
    int64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || n > (INT64_MAX - 9) / 10)
            return -2;
        n = n * 10 + (*p - '0');
    }
    return n;
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    (void)value;
    struct {
        const char *name;
        int n;
    } *c = cls;
    c->n += strcasecmp(key, c->name) == 0;
    return MHD_YES;
}

int http_exchange_header_count(const struct http_exchange *ex, const char *name)
{
    struct {
        const char *name;
        int n;
    } c = {name, 0};
    MHD_get_connection_values(ex->conn, MHD_HEADER_KIND, count_header, &c);
    return c.n;
}

bool http_exchange_chunked(const struct http_exchange *ex)
{
    return http_exchange_header(ex, "Transfer-Encoding") != NULL;
}

const uint8_t *http_exchange_body(const struct http_exchange *ex, size_t *len)
{
    *len = ex->body_len;
    return ex->body ? ex->body : (const uint8_t *)"";
}

void http_exchange_set_data(struct http_exchange *ex, void *data, void (*free_fn)(void *))
{
    ex->data = data;
    ex->data_free = free_fn;
}

void *http_exchange_data(const struct http_exchange *ex) { return ex->data; }

void http_exchange_defer(struct http_exchange *ex)
{
    pthread_mutex_lock(&ex->srv->lock);
    if (!ex->deferred) {
        ex->deferred = true;
        ex->refs++;
        ex->srv->n_deferred++;
    }
    pthread_mutex_unlock(&ex->srv->lock);
}

bool http_exchange_set_tag(struct http_exchange *ex, uint64_t tag)
{
    pthread_mutex_lock(&ex->srv->lock);
    ex->tag = tag;
    const bool gone = ex->state == EX_GONE;
    pthread_mutex_unlock(&ex->srv->lock);
    return gone;
}

void http_exchange_hold(struct http_exchange *ex)
{
    pthread_mutex_lock(&ex->srv->lock);
    ex->refs++;
    pthread_mutex_unlock(&ex->srv->lock);
}

void http_exchange_release(struct http_exchange *ex)
{
    pthread_mutex_lock(&ex->srv->lock);
    const bool last = unref_locked(ex);
    pthread_mutex_unlock(&ex->srv->lock);
    if (last)
        exchange_free(ex);
}

void http_exchange_respond(struct http_exchange *ex, struct http_response *r)
{
    struct http_server *s = ex->srv;
    if (!r)
        r = http_response_new(500, NULL, NULL, 0); /* may be NULL too: 500 when queued */
    pthread_mutex_lock(&s->lock);
    if (ex->answered || (ex->resp && !ex->deferred) || ex->state == EX_SENT) {
        pthread_mutex_unlock(&s->lock);
        LOG_WARNF("http", "%s %s: a second answer (%d) dropped", ex->method_name, ex->path,
                  r ? r->code : 500);
        http_response_free(r);
        return;
    }
    bool resume = false, last = false;
    if (ex->deferred) {
        ex->answered = true;
        s->n_deferred--;
        if (ex->state == EX_GONE) {
            http_response_free(r);
            r = NULL;
        } else {
            ex->resp = r;
            if (ex->state == EX_SUSPENDED) {
                list_remove_locked(s, ex);
                ex->state = EX_READY;
                resume = true;
            }
        }
        last = unref_locked(ex);
    } else {
        ex->resp = r;
    }
    pthread_mutex_unlock(&s->lock);
    if (resume)
        MHD_resume_connection(ex->conn);
    if (last)
        exchange_free(ex);
}

/* --- the server ---------------------------------------------------------------------- */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    /* Our own MHD_NO for a client that hung up while suspended: expected, not a warning. */
    const bool ours = strstr(buf, "Application reported internal error") != NULL;
    log_msg(ours ? LOG_DEBUG : LOG_WARN, "http", "libmicrohttpd: %s", buf);
}

struct bind_addr {
    union {
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } u;
    bool v6;
};

static enum status parse_host(const char *host, int port, struct bind_addr *a, struct errbuf *err)
{
    memset(a, 0, sizeof *a);
    if (!host || !*host)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a->u.v4.sin_addr) == 1) {
        a->u.v4.sin_family = AF_INET;
        a->u.v4.sin_port = htons((uint16_t)port);
        return STATUS_OK;
    }
    if (inet_pton(AF_INET6, host, &a->u.v6.sin6_addr) == 1) {
        a->u.v6.sin6_family = AF_INET6;
        a->u.v6.sin6_port = htons((uint16_t)port);
        a->v6 = true;
        return STATUS_OK;
    }
    return status_fail(err, STATUS_INVALID_ARGUMENT,
                       "host: '%s' is not a numeric IPv4 or IPv6 address", host);
}

enum status http_server_start(const struct http_config *cfg, const struct http_handlers *h,
                              struct http_server **out, struct errbuf *err)
{
    *out = NULL;
    if (cfg->port < 0 || cfg->port > 65535)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "port: %d is not in 0-65535", cfg->port);
    struct bind_addr addr;
    TRY(parse_host(cfg->host, cfg->port, &addr, err));
    struct http_server *s = calloc(1, sizeof *s);
    if (!s)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "http server");
    s->cfg = *cfg;
    s->h = *h;
    pthread_mutex_init(&s->lock, NULL);
    s->epoll = MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (s->epoll ? MHD_USE_EPOLL : MHD_USE_POLL) |
                     (addr.v6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, access_handler, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first: every message goes through it */
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&addr.u,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->connection_memory,
        /* 0, not 1: in 0.9.75 strictness 1 only adds the HTTP/1.1 Host check, and MHD's
         * own rejection then sends its status line and headers twice (measured); the
         * routes make that check instead (http_exchange_http11) and answer once. */
        MHD_OPTION_STRICT_FOR_CLIENT, (int)0,
        MHD_OPTION_NOTIFY_COMPLETED, notify_completed, s,
        MHD_OPTION_END);
    if (!s->d) {
        const int e = errno;
        pthread_mutex_destroy(&s->lock);
        free(s);
        return status_fail(err, STATUS_IO, "http: cannot listen on %s port %d (%s)",
                           cfg->host && *cfg->host ? cfg->host : "127.0.0.1", cfg->port,
                           e ? strerror(e) : "libmicrohttpd refused the options");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    *out = s;
    return STATUS_OK;
}

int http_server_port(const struct http_server *s) { return s->port; }
const char *http_server_poller(const struct http_server *s) { return s->epoll ? "epoll" : "poll"; }

/* Whether the peer closed (or reset) the socket: EOF or an error on a peek. */
static bool peer_gone(int fd)
{
    /* FIN or RST even behind bytes the client sent after its request (a pipelined
     * request, then close): MSG_PEEK alone would see those bytes and never the end */
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
        return true;
    char b;
    const ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

int http_server_check_clients(struct http_server *s)
{
    struct MHD_Connection *gone[64];
    int n = 0;
    pthread_mutex_lock(&s->lock);
    for (struct http_exchange *ex = s->suspended, *next; ex && n < 64; ex = next) {
        next = ex->next;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(ex->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || !peer_gone(ci->connect_fd))
            continue;
        list_remove_locked(s, ex);
        ex->state = EX_GONE;
        gone[n++] = ex->conn;
    }
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++)
        MHD_resume_connection(gone[i]);
    return n;
}

void http_server_quiesce(struct http_server *s)
{
    const MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void http_server_counts(struct http_server *s, int *deferred, int *open)
{
    pthread_mutex_lock(&s->lock);
    if (deferred)
        *deferred = s->n_deferred;
    if (open)
        *open = s->n_open;
    pthread_mutex_unlock(&s->lock);
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    /* Anything still suspended (the owner should have answered it) is closed. */
    for (;;) {
        struct MHD_Connection *left[256];
        int n = 0;
        pthread_mutex_lock(&s->lock);
        while (s->suspended && n < 256) {
            struct http_exchange *ex = s->suspended;
            list_remove_locked(s, ex);
            ex->state = EX_GONE;
            left[n++] = ex->conn;
        }
        pthread_mutex_unlock(&s->lock);
        if (n == 0)
            break;
        for (int i = 0; i < n; i++)
            MHD_resume_connection(left[i]);
    }
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
