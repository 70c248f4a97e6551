/* server/routes.h — the HTTP routes of `diffusiond serve` on top of server/http.h:
 *
 *   POST /v1/images/generations   OpenAI Images API → scheduler → encoder pool
 *   POST /v1/images/edits         OpenAI's image edits (multipart/form-data, the image as
 *                                 img2img's start; api/openai_edits.h) → the same path
 *   GET  /v1/models               the loaded model(s), OpenAI list shape
 *   GET  /v1/images/{id}/{index}  response_format "url" images (server/image_store.h)
 *   GET  /livez, /healthz         200 while the worker makes progress (watchdog)
 *   GET  /readyz                  200 once loaded and warmed up; 503 loading/draining
 *   GET  /metrics                 Prometheus text 0.0.4 (server/metrics.h)
 *   POST /sdapi/v1/txt2img, /img2img  AUTOMATIC1111's API (api/a1111_request.h) → the
 *                                 same scheduler and encoder pool path as the OpenAI route
 *   GET  /sdapi/v1/samplers, /schedulers, /sd-models, /progress; GET and POST
 *        /sdapi/v1/options        A1111's lists and settings (api/a1111_response.h)
 *   OPTIONS <any>                 CORS preflight when CORS is on
 * Unknown path → 404, wrong method → 405 with Allow, both in OpenAI's error shape;
 * every error on a /sdapi/ path is in A1111's shape instead, a 400 there answered as
 * 422 (what A1111's FastAPI answers a body it cannot validate).
 * Every response carries X-Request-Id (a sane client value echoed, else a new one) and
 * the CORS headers; every request is counted in the metrics and, when enabled, logged
 * as one JSON access-log line.  Order of checks before the body is read: preflight,
 * 404, 405, 401 (auth), then for POST 503 (loading/draining), 411, 413, 415 (JSON, or
 * multipart/form-data for the edits route).
 *
 * State: loading → warming → ready → draining (routes_set_state; an atomic read by
 * every handler).  The scheduler and models are attached once loaded
 * (routes_attach_model), before the state leaves "loading".
 *
 * Ownership: everything in routes_config is borrowed and must outlive the routes
 * (the HTTP server is stopped before routes_destroy).  Thread-safety: handlers run on
 * the MHD thread, completions on the scheduler worker and the encoder pool;
 * routes_set_state / routes_state from any thread; attach before leaving "loading".
 */
#ifndef DIFFUSIOND_SERVER_ROUTES_H
#define DIFFUSIOND_SERVER_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "api/openai_images.h"
#include "engine/status.h"
#include "server/http.h"
#include "server/scheduler.h"

struct metrics;
struct auth;
struct cors;
struct encoder_pool;
struct image_store;

enum serve_state { SERVE_LOADING = 0, SERVE_WARMING, SERVE_READY, SERVE_DRAINING };
const char *serve_state_name(enum serve_state s); /* "loading", "warming up", … */

struct routes_config {
    struct metrics *metrics;       /* required */
    const struct auth *auth;       /* NULL: auth off */
    const struct cors *cors;       /* NULL: CORS off */
    struct encoder_pool *pool;     /* required */
    struct image_store *store;     /* required */
    struct api_limits limits;
    size_t max_body_bytes;
    size_t max_body_bytes_total;   /* bodies held at once (headers to answer); 0: no limit */
    int watchdog_s;                /* /livez 503 after a stall this long */
    int url_ttl_s;                 /* Cache-Control of /v1/images/… */
    int url_store_images;          /* the store's capacity: a "url" request's n ≤ it */
    FILE *access_log;              /* NULL: no access log */
};

struct routes;

enum status routes_create(const struct routes_config *cfg, struct routes **out,
                          struct errbuf *err);
void routes_destroy(struct routes *r); /* r may be NULL */

/* The scheduler and its models (names[i] is models[i]'s id); created: unix seconds for
 * /v1/models.  Borrowed.  Call once, while loading. */
void routes_attach_model(struct routes *r, struct scheduler *sched,
                         const struct sd_model *const *models, const char *const *names,
                         int n, int64_t created);

void routes_set_state(struct routes *r, enum serve_state s);
/* from → to only while the state is `from` (atomically); false when it is not (e.g. the
 * warm-up finishing as the drain began must not undo "draining"). */
bool routes_advance_state(struct routes *r, enum serve_state from, enum serve_state to);
enum serve_state routes_state(const struct routes *r);

/* The handlers to give http_server_start (user = r). */
void routes_handlers(struct routes *r, struct http_handlers *out);

#endif
