/* server/routes_internal.h — what the route files share (routes.c: dispatch and the
 * common answer path; routes_info.c: health, readiness, metrics, models, stored
 * images; routes_generate.c: generations).  Nothing else includes it.  Ownership and
 * thread-safety as server/routes.h. */
#ifndef DIFFUSIOND_SERVER_ROUTES_INTERNAL_H
#define DIFFUSIOND_SERVER_ROUTES_INTERNAL_H

#include <stdatomic.h>

#include "api/api_error.h"
#include "server/access_log.h"
#include "server/metrics.h"
#include "server/routes.h"

struct routes {
    struct routes_config cfg;
    atomic_int state;                 /* enum serve_state */
    struct scheduler *sched;          /* set before the state leaves loading */
    const struct sd_model *models[SCHED_MAX_MODELS];
    const char *names[SCHED_MAX_MODELS];
    int n_models;
    atomic_int a1111_model;           /* the model /sdapi/ requests use by default (POST
                                         /sdapi/v1/options sets it) */
    _Atomic uint64_t body_bytes;      /* Content-Length of the bodies held (reserved at
                                         the headers, released with the exchange) */
    int64_t created;
};

/* One exchange's route data (http_exchange_data), freed with the exchange.  Fields
 * written by the answering thread before http_exchange_respond, read by on_finished
 * after it (the exchange's lock orders them). */
struct route_req {
    enum metrics_route route;
    bool a1111;                       /* a /sdapi/ path: errors in A1111's shape */
    char request_id[REQUEST_ID_BUF];
    char *user;                       /* the generation's "user" (access log) */
    char *origin;                     /* the request's Origin (CORS), copied: headers
                                         are read on the MHD thread only */
    double queue_ms, total_ms;        /* generations; −1 otherwise */
    uint64_t bytes;                   /* body bytes answered */
    uint64_t answered_ns;             /* when the answer was handed over (0: none) */
    struct routes *r;                 /* whose body budget … */
    uint64_t body_reserved;           /* … holds this many bytes for this exchange */
};

/* Adds the common headers (X-Request-Id, CORS) and answers. */
void routes_answer(struct routes *r, struct http_exchange *ex, struct http_response *resp);
/* The error response for e (its http status): OpenAI's shape, or A1111's on a /sdapi/
 * path (a 400 there becomes a 422); NULL when out of memory. */
struct http_response *routes_error_response(struct http_exchange *ex, const struct api_error *e);
/* An error answer in the exchange's shape (e: its http status, type, param, code,
 * message). */
void routes_answer_error(struct routes *r, struct http_exchange *ex, const struct api_error *e);
/* A JSON/text body answer (body copied). */
void routes_answer_body(struct routes *r, struct http_exchange *ex, int code,
                        const char *content_type, const char *body, size_t len);
/* 503 with Retry-After (seconds) for loading/draining, counted as a rejection. */
void routes_answer_unavailable(struct routes *r, struct http_exchange *ex);

/* routes_info.c */
void routes_livez(struct routes *r, struct http_exchange *ex);
void routes_readyz(struct routes *r, struct http_exchange *ex);
void routes_metrics(struct routes *r, struct http_exchange *ex);
void routes_models(struct routes *r, struct http_exchange *ex);
void routes_image(struct routes *r, struct http_exchange *ex);

/* routes_sdapi.c: A1111's GET lists and GET/POST options (by path). */
void routes_sdapi(struct routes *r, struct http_exchange *ex);
/* The model an A1111 request asks for (NULL: the current one, a1111_model): its index,
 * or −1 with e a 404 naming `field` (where the request named it). */
int routes_a1111_model(struct routes *r, const char *requested, const char *field,
                       struct api_error *e);

/* routes_generate.c: the body is complete (OpenAI's generations or A1111's txt2img, by
 * the exchange's route); answers or defers. */
void routes_generate(struct routes *r, struct http_exchange *ex);
/* A deferred generation's client went away: tag is the scheduler job id + 1 (0: not
 * yet submitted). */
void routes_generate_abort(struct routes *r, uint64_t tag);

#endif
