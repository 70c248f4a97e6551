/* server/bench_load_target.c — the load benchmark's request target: the real server over
 * HTTP, or the scheduler in process (bench_load_target.h). */
#include "server/bench_load_target.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/bench_http_client.h"
#include "server/bench_serve_proc.h"

#define REQUEST_TIMEOUT_MS 600000 /* one generation's answer, however long the queue */
#define SERVER_READY_S 300        /* model load and warm-up */
#define SERVER_STOP_S 120         /* drain after SIGTERM */
#define CLIENT_STACK (256 * 1024)
#define BODY_MAX 512

struct load_target {
    bool in_process;
    struct scheduler *sched;
    const struct sd_model *model; /* in process */
    struct bench_serve *serve;
    int port;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int outstanding;
    char first_error[256]; /* under lock */
};

/* One in-flight request's context (freed by whoever finishes it). */
struct job_ctx {
    struct load_target *t;
    struct load_request *req;
    char body[BODY_MAX];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Records the outcome; after the unlock nothing of t or req is touched. */
static void finish(struct load_target *t, struct load_request *req, enum load_outcome out,
                   int http_status, double t_done, const char *why)
{
    pthread_mutex_lock(&t->lock);
    if (out != LOAD_OK && !t->first_error[0])
        snprintf(t->first_error, sizeof t->first_error, "%s", why && why[0] ? why : "?");
    req->t_done = t_done;
    req->outcome = out;
    req->http_status = http_status;
    if (--t->outstanding == 0)
        pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->lock);
}

/* --- opening and closing --------------------------------------------------------------- */

static enum status open_in_process(const struct load_target_config *c, struct load_target *t,
                                   struct errbuf *err)
{
    struct scheduler_config cfg;
    scheduler_config_default(&cfg);
    cfg.models[0] = c->model;
    cfg.n_models = 1;
    cfg.mode = c->mode;
    cfg.max_batch_rows = c->max_rows;
    cfg.lanes = c->lanes;
    cfg.queue_capacity = 256;
    cfg.request_max_wait_ms = c->max_wait_ms > 0 ? c->max_wait_ms : -1;
    TRY(scheduler_create(&cfg, &t->sched, err));
    const enum status s = scheduler_start(t->sched, err);
    if (s != STATUS_OK) {
        scheduler_destroy(t->sched);
        t->sched = NULL;
    }
    return s;
}

static enum status open_http(const struct load_target_config *c, struct load_target *t,
                             struct errbuf *err)
{
    char threads[16], rows[16], wait[16], conns[16], lanes[16];
    snprintf(threads, sizeof threads, "%d", c->threads);
    snprintf(rows, sizeof rows, "%d", c->max_rows);
    snprintf(wait, sizeof wait, "%d", c->max_wait_ms);
    snprintf(conns, sizeof conns, "%d", LOAD_TARGET_MAX_INFLIGHT + 16);
    const char *args[24] = {
        "--model", c->model_path, "--threads", threads, "--batching", sched_mode_name(c->mode),
        "--max-batch-rows", rows, "--request-max-wait-ms", wait, "--queue-capacity", "256",
        "--max-connections", conns, "--connection-timeout-s", "600", "--min-side", "8"};
    int n = 18;
    if (c->device) {
        args[n++] = "--device";
        args[n++] = c->device;
    }
    if (c->cuda_plan) {
        args[n++] = "--cuda-plan";
        args[n++] = c->cuda_plan;
    }
    if (c->lanes > 0) {
        snprintf(lanes, sizeof lanes, "%d", c->lanes);
        args[n++] = "--lanes";
        args[n++] = lanes;
    }
    TRY(bench_serve_start(sched_mode_name(c->mode), args, n, SERVER_READY_S, &t->serve, err));
    t->port = bench_serve_port(t->serve);
    return STATUS_OK;
}

enum status load_target_open(const struct load_target_config *cfg, struct load_target **out,
                             struct errbuf *err)
{
    *out = NULL;
    struct load_target *t = calloc(1, sizeof *t);
    if (!t)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "load target");
    t->in_process = cfg->in_process;
    t->model = cfg->model;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cv, NULL);
    const enum status s = t->in_process ? open_in_process(cfg, t, err) : open_http(cfg, t, err);
    if (s != STATUS_OK) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return s;
    }
    *out = t;
    return STATUS_OK;
}

enum status load_target_close(struct load_target *t, struct errbuf *err)
{
    if (!t)
        return STATUS_OK;
    load_target_wait(t);
    enum status s = STATUS_OK;
    if (t->sched)
        scheduler_destroy(t->sched);
    if (t->serve)
        s = bench_serve_stop(t->serve, SERVER_STOP_S, err);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->lock);
    free(t);
    return s;
}

void load_target_wait(struct load_target *t)
{
    pthread_mutex_lock(&t->lock);
    while (t->outstanding > 0)
        pthread_cond_wait(&t->cv, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

/* --- in process ------------------------------------------------------------------------- */

static void job_done(void *user, struct job_result *r)
{
    struct job_ctx *c = user;
    struct load_target *t = c->t;
    struct load_request *req = c->req;
    req->queue_s = r->metrics.queue_s;
    req->encode_s = r->metrics.encode_s;
    req->denoise_s = r->metrics.denoise_s;
    req->decode_s = r->metrics.decode_s;
    req->total_s = r->metrics.total_s;
    const enum load_outcome out = r->status == STATUS_OK ? LOAD_OK : LOAD_FAILED;
    free(c);
    finish(t, req, out, 0, now_s(), r->error);
}

static void submit_in_process(struct load_target *t, struct job_ctx *c)
{
    struct load_request *q = c->req;
    struct gen_params p;
    gen_params_default(t->model, &p);
    p.prompt = q->prompt;
    if (q->size)
        p.width = p.height = q->size;
    p.steps = q->steps;
    p.guidance = 7.5;
    p.sampler = q->sampler;
    p.seed = q->seed;
    p.n = q->images > 0 ? q->images : 1;
    const struct job_callbacks cb = {.on_complete = job_done, .user = c};
    if (scheduler_submit(t->sched, &p, &cb, NULL, NULL, NULL, NULL) != STATUS_OK) {
        free(c);
        finish(t, q, LOAD_REJECTED, 0, now_s(), "scheduler_submit refused");
    }
}

/* --- over HTTP ---------------------------------------------------------------------------- */

/* "b64_json":"<PNG signature in base64>… */
static bool has_png(const char *body)
{
    return body && strstr(body, "\"b64_json\":\"iVBORw0KGgo") != NULL;
}

/* The number after "key": in body, in seconds (the answer gives milliseconds); -1 when
 * absent. */
static double metric_s(const char *body, const char *key)
{
    const char *at = body ? strstr(body, key) : NULL;
    return at ? 1e-3 * strtod(at + strlen(key), NULL) : -1;
}

/* The answer's "metrics" into req (before finish publishes it). */
static void read_metrics(const char *body, struct load_request *req)
{
    req->queue_s = metric_s(body, "\"queue_ms\":");
    req->encode_s = metric_s(body, "\"text_encode_ms\":");
    req->denoise_s = metric_s(body, "\"denoise_ms\":");
    req->decode_s = metric_s(body, "\"vae_decode_ms\":");
    req->total_s = metric_s(body, "\"total_ms\":");
}

static void *client_main(void *arg)
{
    struct job_ctx *c = arg;
    const struct bench_http_request hr = {.port = c->t->port, .method = "POST",
                                          .path = "/v1/images/generations", .body = c->body,
                                          .timeout_ms = REQUEST_TIMEOUT_MS};
    struct bench_http_response res;
    struct errbuf err;
    const enum status s = bench_http_exchange(&hr, &res, &err);
    const double t_done = now_s();
    enum load_outcome out = LOAD_FAILED;
    if (s == STATUS_OK)
        out = res.status_code != 200 ? LOAD_REJECTED : has_png(res.body) ? LOAD_OK : LOAD_FAILED;
    const int code = s == STATUS_OK ? res.status_code : 0;
    char why[200] = "";
    if (s != STATUS_OK)
        snprintf(why, sizeof why, "%s: %.160s", status_name(s), err.msg);
    else if (out != LOAD_OK)
        snprintf(why, sizeof why, "HTTP %d: %.160s", code, res.body ? res.body : "");
    struct load_target *t = c->t;
    struct load_request *req = c->req;
    read_metrics(s == STATUS_OK ? res.body : NULL, req);
    bench_http_response_free(&res);
    free(c);
    finish(t, req, out, code, t_done, why);
    return NULL;
}

static void json_body(const struct load_request *q, char *buf, size_t cap)
{
    char size[40] = "";
    if (q->size)
        snprintf(size, sizeof size, "\"size\":\"%dx%d\",", q->size, q->size);
    snprintf(buf, cap,
             "{\"prompt\":\"%s\",%s\"steps\":%d,\"guidance_scale\":7.5,\"sampler\":\"%s\","
             "\"seed\":%" PRIu64 ",\"n\":%d,\"response_format\":\"b64_json\","
             "\"output_format\":\"png\"}",
             q->prompt, size, q->steps, sampler_kind_name(q->sampler), q->seed,
             q->images > 0 ? q->images : 1);
}

static void submit_http(struct load_target *t, struct job_ctx *c)
{
    json_body(c->req, c->body, sizeof c->body);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, CLIENT_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    const bool started = pthread_create(&th, &attr, client_main, c) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        struct load_request *q = c->req;
        free(c);
        finish(t, q, LOAD_FAILED, 0, now_s(), "pthread_create failed");
    }
}

void load_target_submit(struct load_target *t, struct load_request *req, double t_arrival)
{
    pthread_mutex_lock(&t->lock);
    const bool room = t->in_process || t->outstanding < LOAD_TARGET_MAX_INFLIGHT;
    t->outstanding++;
    pthread_mutex_unlock(&t->lock);
    req->t_submit = t_arrival > 0 ? t_arrival : now_s();
    req->outcome = LOAD_PENDING;
    req->queue_s = req->encode_s = req->denoise_s = req->decode_s = req->total_s = -1;
    struct job_ctx *c = room ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        finish(t, req, LOAD_FAILED, 0, now_s(),
               room ? "out of memory" : "over LOAD_TARGET_MAX_INFLIGHT requests in flight");
        return;
    }
    c->t = t;
    c->req = req;
    if (t->in_process)
        submit_in_process(t, c);
    else
        submit_http(t, c);
}

const char *load_target_first_error(struct load_target *t)
{
    pthread_mutex_lock(&t->lock);
    const char *e = t->first_error;
    pthread_mutex_unlock(&t->lock);
    return e;
}

/* --- statistics ----------------------------------------------------------------------------- */

/* The value of the sample line "<name> <value>" in a Prometheus exposition. */
static bool metric_double(const char *text, const char *name, double *out)
{
    const size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            *out = strtod(p + n + 1, NULL);
            return true;
        }
    return false;
}

static bool metric_value(const char *text, const char *name, uint64_t *out)
{
    double v;
    if (!metric_double(text, name, &v) || !(v >= 0))
        return false;
    *out = (uint64_t)v;
    return true;
}

/* The per-bucket call counts from /metrics' cumulative diffusiond_unet_call_seconds
 * (zeros where the server has none). */
static void call_hist_from(const char *text, uint64_t hist[SCHED_CALL_BUCKETS + 1])
{
    uint64_t prev = 0;
    for (int b = 0; b <= SCHED_CALL_BUCKETS; b++) {
        char name[96];
        if (b < SCHED_CALL_BUCKETS)
            snprintf(name, sizeof name, "diffusiond_unet_call_seconds_bucket{le=\"%g\"}",
                     scheduler_call_bound_ms(b) / 1e3);
        else
            snprintf(name, sizeof name, "diffusiond_unet_call_seconds_bucket{le=\"+Inf\"}");
        uint64_t cum = 0;
        if (!metric_value(text, name, &cum) || cum < prev) {
            memset(hist, 0, sizeof(uint64_t) * (SCHED_CALL_BUCKETS + 1));
            return;
        }
        hist[b] = cum - prev;
        prev = cum;
    }
}

enum status load_target_counts(struct load_target *t, struct load_counts *out,
                               struct errbuf *err)
{
    memset(out, 0, sizeof *out);
    if (t->in_process) {
        struct scheduler_stats st;
        scheduler_stats(t->sched, &st);
        out->rows = st.unet_rows;
        out->calls = st.unet_calls;
        out->replays = st.unet_graph_replays;
        out->recorded = st.unet_graphs_recorded;
        out->concurrent = st.unet_concurrent_calls;
        out->unet_s = st.unet_s;
        out->busy_s = st.busy_s;
        out->decode_s = st.decode_s;
        memcpy(out->call_hist, st.call_hist, sizeof out->call_hist);
        return STATUS_OK;
    }
    const struct bench_http_request hr = {.port = t->port, .method = "GET", .path = "/metrics",
                                          .timeout_ms = 10000};
    struct bench_http_response res;
    TRY(bench_http_exchange(&hr, &res, err));
    const bool ok = res.status_code == 200 &&
                    metric_value(res.body, "diffusiond_unet_batch_rows_sum", &out->rows) &&
                    metric_value(res.body, "diffusiond_unet_batch_rows_count", &out->calls);
    if (ok) { /* newer counters: 0 where the server has none */
        (void)metric_value(res.body, "diffusiond_unet_graph_replays_total", &out->replays);
        (void)metric_value(res.body, "diffusiond_unet_graphs_recorded_total", &out->recorded);
        (void)metric_value(res.body, "diffusiond_unet_concurrent_calls_total", &out->concurrent);
        (void)metric_double(res.body, "diffusiond_unet_seconds_total", &out->unet_s);
        (void)metric_double(res.body, "diffusiond_scheduler_busy_seconds_total", &out->busy_s);
        (void)metric_double(res.body, "diffusiond_vae_decode_seconds_total", &out->decode_s);
        call_hist_from(res.body, out->call_hist);
    }
    const int code = res.status_code;
    bench_http_response_free(&res);
    if (!ok)
        return status_fail(err, STATUS_FORMAT,
                           "/metrics (%d): no diffusiond_unet_batch_rows_sum/_count", code);
    return STATUS_OK;
}

enum status load_target_native_size(struct load_target *t, int *width, struct errbuf *err)
{
    if (t->in_process) {
        *width = t->model->native_width;
        return STATUS_OK;
    }
    const struct load_request q = {.steps = 1, .prompt = "a size probe",
                                   .sampler = SAMPLER_EULER, .seed = 1};
    char body[BODY_MAX];
    json_body(&q, body, sizeof body);
    const struct bench_http_request hr = {.port = t->port, .method = "POST",
                                          .path = "/v1/images/generations", .body = body,
                                          .timeout_ms = REQUEST_TIMEOUT_MS};
    struct bench_http_response res;
    TRY(bench_http_exchange(&hr, &res, err));
    const char *size = res.status_code == 200 ? strstr(res.body, "\"size\":\"") : NULL;
    const int w = size ? atoi(size + 8) : 0;
    const int code = res.status_code;
    bench_http_response_free(&res);
    if (w <= 0)
        return status_fail(err, STATUS_FORMAT, "size probe: answer %d without a size", code);
    *width = w;
    return STATUS_OK;
}
