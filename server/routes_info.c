/* server/routes_info.c — the routes that read state and never queue: /livez (/healthz),
 * /readyz, /metrics, /v1/models, /v1/images/{id}/{index}.  server/routes.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai_response.h"
#include "server/image_store.h"
#include "server/routes_internal.h"

#define JSON "application/json"

void routes_livez(struct routes *r, struct http_exchange *ex)
{
    const enum serve_state st = routes_state(r);
    /* The scheduler exists once the state left loading (attached before). */
    const double stall = st == SERVE_LOADING || !r->sched ? 0 : scheduler_stall_s(r->sched);
    char body[160];
    int n;
    if (st != SERVE_LOADING && r->n_models > 0 && backend_is_broken(r->models[0]->backend)) {
        /* A sticky device error: only a new process recovers. */
        n = snprintf(body, sizeof body, "{\"status\":\"device_failed\"}");
        routes_answer_body(r, ex, 503, JSON, body, (size_t)n);
        return;
    }
    if (r->cfg.watchdog_s > 0 && stall > r->cfg.watchdog_s) {
        n = snprintf(body, sizeof body,
                     "{\"status\":\"stalled\",\"stalled_s\":%.1f,\"watchdog_s\":%d}", stall,
                     r->cfg.watchdog_s);
        routes_answer_body(r, ex, 503, JSON, body, (size_t)n);
        return;
    }
    n = snprintf(body, sizeof body, "{\"status\":\"ok\"}");
    routes_answer_body(r, ex, 200, JSON, body, (size_t)n);
}

void routes_readyz(struct routes *r, struct http_exchange *ex)
{
    const enum serve_state st = routes_state(r);
    char body[96];
    const int n = snprintf(body, sizeof body, "{\"status\":\"%s\"}", serve_state_name(st));
    struct http_response *resp = http_response_copy(st == SERVE_READY ? 200 : 503, JSON, body,
                                                    (size_t)n);
    if (resp && st != SERVE_READY)
        http_response_header(resp, "Retry-After", "5", NULL);
    routes_answer(r, ex, resp);
}

void routes_metrics(struct routes *r, struct http_exchange *ex)
{
    struct scheduler_stats stats;
    const bool have = routes_state(r) != SERVE_LOADING && r->sched;
    if (have)
        scheduler_stats(r->sched, &stats);
    char *out = NULL;
    size_t len = 0;
    struct errbuf err;
    if (metrics_render(r->cfg.metrics, have ? &stats : NULL, &out, &len, &err) != STATUS_OK) {
        struct api_error e;
        api_error_from_status(&e, err.code, &err, "");
        routes_answer_error(r, ex, &e);
        return;
    }
    routes_answer(r, ex, http_response_new(200, METRICS_CONTENT_TYPE, out, len));
}

void routes_models(struct routes *r, struct http_exchange *ex)
{
    if (routes_state(r) == SERVE_LOADING) {
        routes_answer_unavailable(r, ex);
        return;
    }
    struct api_model_entry m[SCHED_MAX_MODELS];
    for (int i = 0; i < r->n_models; i++)
        m[i] = (struct api_model_entry){.id = r->names[i], .created = r->created};
    char *out = NULL;
    size_t len = 0;
    struct errbuf err;
    if (api_models_list_write(m, r->n_models, &out, &len, &err) != STATUS_OK) {
        struct api_error e;
        api_error_from_status(&e, err.code, &err, "");
        routes_answer_error(r, ex, &e);
        return;
    }
    routes_answer(r, ex, http_response_new(200, JSON, out, len));
}

/* /v1/images/<id>/<index> → id (copied into buf) and index; false when malformed. */
static bool parse_image_path(const char *path, char *id, size_t cap, int *index)
{
    const char *p = path + strlen("/v1/images/");
    const char *slash = strchr(p, '/');
    if (!slash || (size_t)(slash - p) >= cap)
        return false;
    memcpy(id, p, (size_t)(slash - p));
    id[slash - p] = '\0';
    const char *s = slash + 1;
    if (!*s || strlen(s) > 3)
        return false;
    int v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
    }
    *index = v;
    return true;
}

void routes_image(struct routes *r, struct http_exchange *ex)
{
    char id[IMAGE_STORE_ID_BUF + 1];
    int index = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    const char *ctype = NULL;
    struct errbuf err;
    if (!parse_image_path(http_exchange_path(ex), id, sizeof id, &index) ||
        image_store_get(r->cfg.store, id, index, http_now_ns(), &data, &len, &ctype, &err) !=
            STATUS_OK) {
        struct api_error e;
        api_error_set(&e, 404, NULL, NULL, "image_not_found",
                      "no image at %s (unknown, or expired after %d s)", http_exchange_path(ex),
                      r->cfg.url_ttl_s);
        routes_answer_error(r, ex, &e);
        return;
    }
    struct http_response *resp = http_response_new(200, ctype, data, len);
    char cc[64];
    snprintf(cc, sizeof cc, "private, max-age=%d, immutable", r->cfg.url_ttl_s);
    if (resp)
        http_response_header(resp, "Cache-Control", cc, NULL);
    routes_answer(r, ex, resp);
}
