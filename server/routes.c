/* server/routes.c — dispatch, the checks made before a body is read, and the common
 * answer path (request id, CORS, metrics, access log).  server/routes.h. */
#include "server/routes_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/a1111_response.h"
#include "api/multipart.h"
#include "engine/log.h"
#include "server/auth.h"
#include "server/cors.h"

#define RETRY_AFTER_UNAVAILABLE_S 5

const char *serve_state_name(enum serve_state s)
{
    switch (s) {
    case SERVE_LOADING: return "loading";
    case SERVE_WARMING: return "warming up";
    case SERVE_READY: return "ready";
    case SERVE_DRAINING: return "draining";
    }
    return "unknown";
}

enum status routes_create(const struct routes_config *cfg, struct routes **out,
                          struct errbuf *err)
{
    *out = NULL;
    if (!cfg->metrics || !cfg->pool || !cfg->store)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "routes: metrics, pool and store are required");
    struct routes *r = calloc(1, sizeof *r);
    if (!r)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "routes");
    r->cfg = *cfg;
    atomic_init(&r->state, SERVE_LOADING);
    atomic_init(&r->a1111_model, 0);
    *out = r;
    return STATUS_OK;
}

void routes_destroy(struct routes *r) { free(r); }

void routes_attach_model(struct routes *r, struct scheduler *sched,
                         const struct sd_model *const *models, const char *const *names,
                         int n, int64_t created)
{
    r->sched = sched;
    r->n_models = n < SCHED_MAX_MODELS ? n : SCHED_MAX_MODELS;
    for (int i = 0; i < r->n_models; i++) {
        r->models[i] = models[i];
        r->names[i] = names[i];
    }
    r->created = created;
}

void routes_set_state(struct routes *r, enum serve_state s)
{
    atomic_store_explicit(&r->state, (int)s, memory_order_release);
}

bool routes_advance_state(struct routes *r, enum serve_state from, enum serve_state to)
{
    int expected = (int)from;
    return atomic_compare_exchange_strong_explicit(&r->state, &expected, (int)to,
                                                   memory_order_acq_rel, memory_order_acquire);
}

enum serve_state routes_state(const struct routes *r)
{
    return (enum serve_state)atomic_load_explicit(&((struct routes *)r)->state,
                                                  memory_order_acquire);
}

/* --- the common answer path ---------------------------------------------------------- */

static void add_cors(struct routes *r, struct http_exchange *ex, struct http_response *resp)
{
    if (!cors_enabled(r->cfg.cors))
        return;
    const struct route_req *rq = http_exchange_data(ex);
    struct cors_headers h;
    cors_simple(r->cfg.cors, rq ? rq->origin : NULL, &h);
    for (int i = 0; i < h.n; i++)
        http_response_header(resp, h.h[i].name, h.h[i].value, NULL);
}

void routes_answer(struct routes *r, struct http_exchange *ex, struct http_response *resp)
{
    struct route_req *rq = http_exchange_data(ex);
    if (resp && rq) {
        http_response_header(resp, "X-Request-Id", rq->request_id, NULL);
        rq->bytes = resp->len;
    }
    if (rq)
        rq->answered_ns = http_now_ns();
    if (resp && !http_response_get_header(resp, "Cache-Control"))
        http_response_header(resp, "Cache-Control", "no-store", NULL);
    if (resp)
        add_cors(r, ex, resp);
    http_exchange_respond(ex, resp);
}

void routes_answer_body(struct routes *r, struct http_exchange *ex, int code,
                        const char *content_type, const char *body, size_t len)
{
    routes_answer(r, ex, http_response_copy(code, content_type, body, len));
}

struct http_response *routes_error_response(struct http_exchange *ex, const struct api_error *e)
{
    const struct route_req *rq = http_exchange_data(ex);
    size_t len = 0;
    if (rq && rq->a1111) {
        char *body = a1111_error_body(e, &len);
        const int code = e->http == 400 ? 422 : e->http;
        return body ? http_response_new(code, "application/json", body, len) : NULL;
    }
    char *body = api_error_body(e, &len);
    return body ? http_response_new(e->http, "application/json", body, len) : NULL;
}

void routes_answer_error(struct routes *r, struct http_exchange *ex, const struct api_error *e)
{
    routes_answer(r, ex, routes_error_response(ex, e));
}

void routes_answer_unavailable(struct routes *r, struct http_exchange *ex)
{
    const enum serve_state st = routes_state(r);
    struct api_error e;
    api_error_set(&e, 503, NULL, NULL, st == SERVE_DRAINING ? "draining" : "loading",
                  "the server is %s; retry later", serve_state_name(st));
    metrics_reject(r->cfg.metrics, METRICS_REJECT_DRAINING);
    struct http_response *resp = routes_error_response(ex, &e);
    char v[16];
    snprintf(v, sizeof v, "%d", RETRY_AFTER_UNAVAILABLE_S);
    if (resp)
        http_response_header(resp, "Retry-After", v, NULL);
    routes_answer(r, ex, resp);
}

/* --- dispatch ------------------------------------------------------------------------ */

enum route_methods { ROUTE_GET, ROUTE_POST, ROUTE_GET_POST }; /* GET includes HEAD */

struct route_def {
    const char *path;       /* exact path, or the prefix of /v1/images/{id}/{index} */
    enum metrics_route route;
    enum route_methods methods;
};

static const struct route_def ROUTE_TABLE[] = {
    {"/v1/images/generations", METRICS_ROUTE_GENERATIONS, ROUTE_POST},
    {"/v1/images/edits", METRICS_ROUTE_EDITS, ROUTE_POST},
    {"/v1/models", METRICS_ROUTE_MODELS, ROUTE_GET},
    {"/livez", METRICS_ROUTE_LIVEZ, ROUTE_GET},
    {"/healthz", METRICS_ROUTE_LIVEZ, ROUTE_GET},
    {"/readyz", METRICS_ROUTE_READYZ, ROUTE_GET},
    {"/metrics", METRICS_ROUTE_METRICS, ROUTE_GET},
    {"/sdapi/v1/txt2img", METRICS_ROUTE_TXT2IMG, ROUTE_POST},
    {"/sdapi/v1/img2img", METRICS_ROUTE_IMG2IMG, ROUTE_POST},
    {"/sdapi/v1/options", METRICS_ROUTE_SDAPI, ROUTE_GET_POST},
    {"/sdapi/v1/samplers", METRICS_ROUTE_SDAPI, ROUTE_GET},
    {"/sdapi/v1/schedulers", METRICS_ROUTE_SDAPI, ROUTE_GET},
    {"/sdapi/v1/sd-models", METRICS_ROUTE_SDAPI, ROUTE_GET},
    {"/sdapi/v1/progress", METRICS_ROUTE_SDAPI, ROUTE_GET},
};

/* /v1/images/<id>/<index>: one segment each, no further slash. */
static bool is_image_path(const char *p)
{
    static const char prefix[] = "/v1/images/";
    if (strncmp(p, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *id = p + sizeof prefix - 1;
    const char *slash = strchr(id, '/');
    return slash && slash > id && slash[1] && !strchr(slash + 1, '/');
}

static const struct route_def *match_route(const char *path)
{
    static const struct route_def image = {"/v1/images/", METRICS_ROUTE_IMAGE, ROUTE_GET};
    for (size_t i = 0; i < sizeof ROUTE_TABLE / sizeof ROUTE_TABLE[0]; i++)
        if (strcmp(path, ROUTE_TABLE[i].path) == 0)
            return &ROUTE_TABLE[i];
    return is_image_path(path) ? &image : NULL;
}

static bool method_allowed(const struct route_def *d, enum http_method m)
{
    const bool get = m == HTTP_GET || m == HTTP_HEAD;
    switch (d->methods) {
    case ROUTE_GET: return m == HTTP_OPTIONS || get;
    case ROUTE_POST: return m == HTTP_OPTIONS || m == HTTP_POST;
    case ROUTE_GET_POST: break;
    }
    return m == HTTP_OPTIONS || get || m == HTTP_POST;
}

static const char *allow_header(const struct route_def *d)
{
    switch (d->methods) {
    case ROUTE_GET: return "GET, HEAD, OPTIONS";
    case ROUTE_POST: return "POST, OPTIONS";
    case ROUTE_GET_POST: break;
    }
    return "GET, HEAD, POST, OPTIONS";
}

static bool is_sdapi_path(const char *p)
{
    return strncmp(p, "/sdapi/", 7) == 0;
}

/* OPTIONS that is not a CORS preflight: 204 with Allow (RFC 9110 §9.3.7). */
static void answer_options(struct routes *r, struct http_exchange *ex, const struct route_def *d)
{
    struct http_response *resp = http_response_new(204, NULL, NULL, 0);
    if (resp)
        http_response_header(resp, "Allow", allow_header(d), NULL);
    routes_answer(r, ex, resp);
}

static void free_route_req(void *p)
{
    struct route_req *rq = p;
    if (rq) {
        if (rq->body_reserved) {
            atomic_fetch_sub(&rq->r->body_bytes, rq->body_reserved);
            metrics_add_body_bytes(rq->r->cfg.metrics, -(int64_t)rq->body_reserved);
        }
        free(rq->user);
        free(rq->origin);
    }
    free(rq);
}

/* Reserves len bytes of the bodies' budget for this exchange (released with it); false
 * when the bodies held would pass max_body_bytes_total. */
static bool reserve_body(struct routes *r, struct route_req *rq, uint64_t len)
{
    const uint64_t total = r->cfg.max_body_bytes_total;
    if (!total || !len)
        return true;
    uint64_t held = atomic_load(&r->body_bytes);
    do {
        if (held > total || len > total - held)
            return false;
    } while (!atomic_compare_exchange_weak(&r->body_bytes, &held, held + len));
    rq->r = r;
    rq->body_reserved = len;
    metrics_add_body_bytes(r->cfg.metrics, (int64_t)len);
    return true;
}

/* 503: the bodies held at once would pass the budget. */
static void answer_bodies_busy(struct routes *r, struct http_exchange *ex, int64_t len)
{
    struct api_error e;
    api_error_set(&e, 503, NULL, NULL, "uploads_busy",
                  "the server holds request bodies of %llu bytes; %lld more would pass its "
                  "limit of %zu bytes (--max-body-bytes-total); retry later",
                  (unsigned long long)atomic_load(&r->body_bytes), (long long)len,
                  r->cfg.max_body_bytes_total);
    metrics_reject(r->cfg.metrics, METRICS_REJECT_BODY_BUDGET);
    struct http_response *resp = routes_error_response(ex, &e);
    if (resp)
        http_response_header(resp, "Retry-After", "1", NULL);
    routes_answer(r, ex, resp);
}

static void answer_preflight(struct routes *r, struct http_exchange *ex)
{
    struct cors_headers h;
    const int code = cors_preflight(r->cfg.cors, http_exchange_header(ex, "Origin"),
                                    http_exchange_header(ex, "Access-Control-Request-Method"),
                                    http_exchange_header(ex, "Access-Control-Request-Headers"),
                                    &h);
    struct http_response *resp = http_response_new(code, NULL, NULL, 0);
    struct route_req *rq = http_exchange_data(ex);
    for (int i = 0; resp && i < h.n; i++)
        http_response_header(resp, h.h[i].name, h.h[i].value, NULL);
    if (resp && rq)
        http_response_header(resp, "X-Request-Id", rq->request_id, NULL);
    http_exchange_respond(ex, resp);
}

static void answer_405(struct routes *r, struct http_exchange *ex, const struct route_def *d)
{
    struct api_error e;
    api_error_set(&e, 405, NULL, NULL, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                  http_exchange_method_name(ex), http_exchange_path(ex), allow_header(d));
    struct http_response *resp = routes_error_response(ex, &e);
    if (resp)
        http_response_header(resp, "Allow", allow_header(d), NULL);
    routes_answer(r, ex, resp);
}

static bool check_auth(struct routes *r, struct http_exchange *ex, const struct route_def *d)
{
    /* Stored images are exempt too: the 128-bit random id in the URL is the
     * capability (an <img src> cannot carry a bearer token). */
    if (!auth_enabled(r->cfg.auth) ||
        auth_exempt(http_exchange_method_name(ex), http_exchange_path(ex)) ||
        d->route == METRICS_ROUTE_IMAGE)
        return true;
    const enum auth_result a = auth_check(r->cfg.auth, http_exchange_header(ex, "Authorization"));
    if (a == AUTH_OK)
        return true;
    metrics_reject(r->cfg.metrics, METRICS_REJECT_AUTH);
    struct api_error e;
    api_error_set(&e, 401, NULL, NULL, a == AUTH_INVALID_KEY ? "invalid_api_key" : "missing_api_key",
                  "%s", auth_message(a));
    struct http_response *resp = routes_error_response(ex, &e);
    if (resp)
        http_response_header(resp, "WWW-Authenticate", auth_www_authenticate(a), NULL);
    routes_answer(r, ex, resp);
    return false;
}

static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    static const char json[] = "application/json";
    if (strncasecmp(ct, json, sizeof json - 1) != 0)
        return false;
    const char *rest = ct + sizeof json - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

static void reject_body(struct routes *r, struct http_exchange *ex, int code, const char *ecode,
                        const char *msg)
{
    struct api_error e;
    api_error_set(&e, code, NULL, NULL, ecode, "%s", msg);
    metrics_reject(r->cfg.metrics, METRICS_REJECT_INVALID);
    routes_answer_error(r, ex, &e);
}

/* POST checks before reading the body: 503, 411, 413, 415.  True to go on. */
static bool check_post(struct routes *r, struct http_exchange *ex)
{
    const enum serve_state st = routes_state(r);
    if (st == SERVE_LOADING || st == SERVE_DRAINING) {
        routes_answer_unavailable(r, ex);
        return false;
    }
    const int64_t len = http_exchange_content_length(ex);
    if (http_exchange_header_count(ex, "Content-Length") > 1) { /* a smuggling attempt */
        reject_body(r, ex, 400, "invalid_content_length", "Content-Length sent more than once");
        return false;
    }
    if (len == -1) {
        reject_body(r, ex, 411, "length_required",
                    "Content-Length is required (chunked bodies are not accepted)");
        return false;
    }
    if (len == -2) {
        reject_body(r, ex, 400, "invalid_content_length", "Content-Length is malformed");
        return false;
    }
    if ((uint64_t)len > r->cfg.max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg, "the body is %lld bytes; the limit is %zu bytes",
                 (long long)len, r->cfg.max_body_bytes);
        reject_body(r, ex, 413, "body_too_large", msg);
        return false;
    }
    const char *type = http_exchange_header(ex, "Content-Type");
    struct route_req *rq = http_exchange_data(ex);
    if (rq->route == METRICS_ROUTE_EDITS ? !multipart_content_type_is(type) : !is_json_type(type)) {
        reject_body(r, ex, 415, "unsupported_media_type",
                    rq->route == METRICS_ROUTE_EDITS
                        ? "Content-Type must be multipart/form-data (with a boundary)"
                        : "Content-Type must be application/json");
        return false;
    }
    if (!reserve_body(r, rq, (uint64_t)len)) {
        answer_bodies_busy(r, ex, len);
        return false;
    }
    return true;
}

static void on_headers(void *user, struct http_exchange *ex)
{
    struct routes *r = user;
    struct route_req *rq = calloc(1, sizeof *rq);
    if (!rq) {
        http_exchange_respond(ex, NULL);
        return;
    }
    rq->queue_ms = rq->total_ms = -1;
    const struct route_def *d = match_route(http_exchange_path(ex));
    rq->route = d ? d->route : METRICS_ROUTE_OTHER;
    rq->a1111 = is_sdapi_path(http_exchange_path(ex));
    if (request_id_choose(http_exchange_header(ex, "X-Request-Id"), rq->request_id, NULL) !=
        STATUS_OK)
        snprintf(rq->request_id, sizeof rq->request_id, "-");
    http_exchange_set_data(ex, rq, free_route_req);
    const char *origin = http_exchange_header(ex, "Origin");
    if (origin && cors_enabled(r->cfg.cors) && !(rq->origin = strdup(origin))) {
        http_exchange_respond(ex, NULL);
        return;
    }

    if (http_exchange_http11(ex) && !http_exchange_header(ex, "Host")) { /* RFC 9112 §3.2 */
        struct api_error e;
        api_error_set(&e, 400, NULL, NULL, "missing_host", "a Host header is required (HTTP/1.1)");
        metrics_reject(r->cfg.metrics, METRICS_REJECT_INVALID);
        routes_answer_error(r, ex, &e);
        return;
    }
    if (cors_is_preflight(r->cfg.cors, http_exchange_method_name(ex),
                          http_exchange_header(ex, "Origin"),
                          http_exchange_header(ex, "Access-Control-Request-Method"))) {
        answer_preflight(r, ex);
        return;
    }
    if (!d) {
        struct api_error e;
        api_error_set(&e, 404, NULL, NULL, "not_found", "no route for %s %s",
                      http_exchange_method_name(ex), http_exchange_path(ex));
        routes_answer_error(r, ex, &e);
        return;
    }
    if (!method_allowed(d, http_exchange_method(ex))) {
        answer_405(r, ex, d);
        return;
    }
    if (http_exchange_method(ex) == HTTP_OPTIONS) { /* no auth: browsers send none */
        answer_options(r, ex, d);
        return;
    }
    if (!check_auth(r, ex, d))
        return;
    if (http_exchange_method(ex) == HTTP_POST)
        check_post(r, ex);
}

static void on_request(void *user, struct http_exchange *ex)
{
    struct routes *r = user;
    const struct route_req *rq = http_exchange_data(ex);
    switch (rq->route) {
    case METRICS_ROUTE_GENERATIONS:
    case METRICS_ROUTE_EDITS: routes_generate(r, ex); return;
    case METRICS_ROUTE_MODELS: routes_models(r, ex); return;
    case METRICS_ROUTE_IMAGE: routes_image(r, ex); return;
    case METRICS_ROUTE_LIVEZ: routes_livez(r, ex); return;
    case METRICS_ROUTE_READYZ: routes_readyz(r, ex); return;
    case METRICS_ROUTE_METRICS: routes_metrics(r, ex); return;
    case METRICS_ROUTE_TXT2IMG:
    case METRICS_ROUTE_IMG2IMG: routes_generate(r, ex); return;
    case METRICS_ROUTE_SDAPI: routes_sdapi(r, ex); return;
    default: http_exchange_respond(ex, NULL); return; /* unreachable: answered in on_headers */
    }
}

static void on_abort(void *user, struct http_exchange *ex, uint64_t tag)
{
    (void)ex;
    routes_generate_abort(user, tag);
}

static double unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_finished(void *user, struct http_exchange *ex, int code, bool sent)
{
    struct routes *r = user;
    const struct route_req *rq = http_exchange_data(ex);
    /* The client left before its answer: the encoder thread may be writing the answer
     * fields right now (no lock orders them with this thread): not read. */
    const bool gone = code == 499 && !sent;
    /* Arrival → answer (to the end of sending when no answer was given). */
    const uint64_t end = rq && !gone && rq->answered_ns ? rq->answered_ns : http_now_ns();
    const double secs = (double)(end - http_exchange_start_ns(ex)) * 1e-9;
    const enum metrics_route route = rq ? rq->route : METRICS_ROUTE_OTHER;
    metrics_observe_request(r->cfg.metrics, route, code, secs);
    if (!r->cfg.access_log)
        return;
    struct access_log_entry e;
    access_log_entry_init(&e);
    e.ts = unix_now() - secs;
    e.request_id = rq ? rq->request_id : "-";
    e.method = http_exchange_method_name(ex);
    e.path = http_exchange_path(ex);
    e.status = code;
    e.bytes = rq && !gone ? rq->bytes : 0;
    e.duration_ms = secs * 1e3;
    e.remote = http_exchange_client(ex);
    if (rq)
        e.user = rq->user; /* written on this (the MHD) thread */
    if (rq && !gone) {
        e.queue_ms = rq->queue_ms;
        e.total_ms = rq->total_ms;
    }
    access_log_write(r->cfg.access_log, &e);
}

void routes_handlers(struct routes *r, struct http_handlers *out)
{
    *out = (struct http_handlers){.user = r, .on_headers = on_headers, .on_request = on_request,
                                  .on_abort = on_abort, .on_finished = on_finished};
}
