/* server/routes_sdapi.c — AUTOMATIC1111's informational routes (server/routes.h):
 * GET /sdapi/v1/samplers, /schedulers, /sd-models, /progress; GET and POST
 * /sdapi/v1/options.  They read state and never queue (txt2img is routes_generate.c).
 * Bodies from api/a1111_response.h; errors in A1111's shape (routes_error_response). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/a1111_request.h"
#include "api/a1111_response.h"
#include "server/routes_internal.h"

#define JSON "application/json"

int routes_a1111_model(struct routes *r, const char *requested, const char *field,
                       struct api_error *e)
{
    if (!requested) {
        const int m = atomic_load_explicit(&r->a1111_model, memory_order_relaxed);
        return m >= 0 && m < r->n_models ? m : 0;
    }
    const int m = api_model_select(requested, r->names, r->n_models, e);
    if (m >= 0)
        return m;
    api_error_set(e, 404, NULL, field, "model_not_found",
                  "%s: the model \"%.40s\" is not loaded (GET /sdapi/v1/sd-models lists them)",
                  field, requested);
    return -1;
}

/* Answers body (taken) or the failure that made it. */
static void answer(struct routes *r, struct http_exchange *ex, enum status st, char *body,
                   size_t len, const struct errbuf *err)
{
    if (st != STATUS_OK) {
        struct api_error e;
        api_error_from_status(&e, st, err, "");
        routes_answer_error(r, ex, &e);
        return;
    }
    routes_answer(r, ex, http_response_new(200, JSON, body, len));
}

/* GET /sdapi/v1/progress: every job queued or running counts in job_count; progress is
 * the running jobs' steps done over their steps; eta_relative the scheduler's backlog. */
static enum status progress_write(struct routes *r, char **body, size_t *len,
                                  struct errbuf *err)
{
    struct a1111_progress p = {0};
    if (r->sched) {
        struct scheduler_stats s;
        scheduler_stats(r->sched, &s);
        p = (struct a1111_progress){.job_count = s.queue_depth + s.active_jobs,
                                    .steps_done = s.active_steps_done,
                                    .steps_total = s.active_steps_total,
                                    .eta_s = s.backlog_s};
    }
    return a1111_progress_write(&p, body, len, err);
}

/* POST /sdapi/v1/options: sd_model_checkpoint picks the model later /sdapi/ requests
 * use; the other settings are the web UI's and are ignored.  A1111 answers null. */
static void set_options(struct routes *r, struct http_exchange *ex)
{
    size_t n = 0;
    const char *body = (const char *)http_exchange_body(ex, &n);
    char *model = NULL;
    struct api_error e;
    if (a1111_options_parse(body, n, &model, &e) != STATUS_OK) {
        routes_answer_error(r, ex, &e);
        return;
    }
    if (model) {
        const int m = routes_a1111_model(r, model, "sd_model_checkpoint", &e);
        free(model);
        if (m < 0) {
            routes_answer_error(r, ex, &e);
            return;
        }
        atomic_store_explicit(&r->a1111_model, m, memory_order_relaxed);
    }
    routes_answer_body(r, ex, 200, JSON, "null", 4);
}

void routes_sdapi(struct routes *r, struct http_exchange *ex)
{
    if (routes_state(r) == SERVE_LOADING) {
        routes_answer_unavailable(r, ex);
        return;
    }
    const char *path = http_exchange_path(ex) + strlen("/sdapi/v1/");
    char *body = NULL;
    size_t len = 0;
    struct errbuf err;
    enum status st = STATUS_OK;
    if (strcmp(path, "options") == 0 && http_exchange_method(ex) == HTTP_POST) {
        set_options(r, ex);
        return;
    }
    if (strcmp(path, "options") == 0)
        st = a1111_options_write(r->names[routes_a1111_model(r, NULL, NULL, NULL)], &body, &len,
                                 &err);
    else if (strcmp(path, "samplers") == 0)
        st = a1111_samplers_write(&body, &len, &err);
    else if (strcmp(path, "schedulers") == 0)
        st = a1111_schedulers_write(&body, &len, &err);
    else if (strcmp(path, "sd-models") == 0)
        st = a1111_models_write(r->names, r->n_models, &body, &len, &err);
    else
        st = progress_write(r, &body, &len, &err);
    answer(r, ex, st, body, len, &err);
}
