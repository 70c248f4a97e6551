/* server/metrics.h — the Prometheus registry of `diffusiond serve` and its text
 * exposition (format 0.0.4).  docs/metrics.md lists every metric.
 *
 * Not a general registry: the families are this server's, their label sets fixed
 * when the registry is made (routes and status codes are closed enums, so no request
 * can create a series).  Families (prefix diffusiond_):
 *   http_requests_total{route,code}            counter   metrics_observe_request
 *   http_request_duration_seconds{route}       histogram metrics_observe_request
 *   queue_wait_seconds                         histogram metrics_observe_generation
 *   generation_duration_seconds                histogram metrics_observe_generation
 *   images_generated_total, denoise_steps_total counter  metrics_observe_generation
 *   rejections_total{reason}                   counter   metrics_reject
 *   model_loaded{model}                        gauge     metrics_set_model_loaded
 *   ready                                      gauge     metrics_set_ready
 *   build_info{version,cuda}                   gauge 1   (metrics_create)
 *   queue_depth, unet_batch_rows (histogram) and scheduler_* — from the
 *     struct scheduler_stats passed to metrics_render (read at scrape time)
 *   process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
 *     process_start_time_seconds (no prefix; read from /proc at scrape time)
 *   heap_in_use_bytes                          gauge     glibc's mallinfo2 at scrape time
 * rejections_total counts what the HTTP layer refused (it calls metrics_reject for
 * each 429/503/400/401 it answers); the scheduler's own counts are rendered apart as
 * diffusiond_scheduler_rejected_total.
 *
 * Ownership: cmd_serve creates one registry (no globals) and destroys it after the
 * HTTP daemon has stopped; metrics_render's buffer belongs to the caller (free).
 * Thread-safety: every metrics_observe_, _reject and _set call is lock-free (C11 atomics,
 * relaxed) and may run on any thread concurrently with metrics_render.  A scrape
 * that races an observation may see a histogram's _sum a moment ahead of or behind
 * its buckets; _count always equals the +Inf bucket.
 */
#ifndef DIFFUSIOND_SERVER_METRICS_H
#define DIFFUSIOND_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"
#include "server/scheduler.h"

/* The route label: fixed values, never the raw path. */
enum metrics_route {
    METRICS_ROUTE_GENERATIONS = 0, /* "/v1/images/generations" */
    METRICS_ROUTE_EDITS,           /* "/v1/images/edits" (OpenAI's image edits) */
    METRICS_ROUTE_MODELS,          /* "/v1/models" */
    METRICS_ROUTE_IMAGE,           /* "/v1/images/{id}/{index}" */
    METRICS_ROUTE_LIVEZ,           /* "/livez" (and its alias /healthz) */
    METRICS_ROUTE_READYZ,          /* "/readyz" */
    METRICS_ROUTE_METRICS,         /* "/metrics" */
    METRICS_ROUTE_TXT2IMG,         /* "/sdapi/v1/txt2img" (A1111) */
    METRICS_ROUTE_IMG2IMG,         /* "/sdapi/v1/img2img" (A1111) */
    METRICS_ROUTE_SDAPI,           /* "/sdapi/v1/{info}": A1111's options, samplers,
                                      schedulers, sd-models, progress */
    METRICS_ROUTE_OTHER,           /* "other": unknown paths (404) */
    METRICS_ROUTE_COUNT_
};
const char *metrics_route_label(enum metrics_route r);

/* The code label takes these values; any other status counts as "other". */
#define METRICS_CODES 200, 201, 204, 400, 401, 403, 404, 405, 411, 413, 415, 422, 429, 500, 503, 504

enum metrics_reject {
    METRICS_REJECT_QUEUE_FULL = 0, /* 429 */
    METRICS_REJECT_DEADLINE,       /* the scheduler judged the deadline unmeetable */
    METRICS_REJECT_DRAINING,       /* 503 while loading or draining */
    METRICS_REJECT_INVALID,        /* 4xx for a malformed or out-of-bounds request */
    METRICS_REJECT_AUTH,           /* 401 */
    METRICS_REJECT_BODY_BUDGET,    /* 503: the request bodies held at once are at the limit */
    METRICS_REJECT_COUNT_
};
const char *metrics_reject_label(enum metrics_reject r);

#define METRICS_MAX_MODELS 8

/* What build_info and model_loaded say; strings are copied. */
struct metrics_info {
    const char *version;                      /* build_info{version} */
    const char *cuda;                         /* build_info{cuda}: "none" or e.g. "12.4" */
    const char *models[METRICS_MAX_MODELS];   /* model_loaded{model}, index = model */
    int n_models;
};

struct metrics;

enum status metrics_create(const struct metrics_info *info, struct metrics **out,
                           struct errbuf *err);
void metrics_destroy(struct metrics *m); /* m may be NULL */

/* One HTTP answer: the route it matched, its status code, seconds from the first
 * byte of the request to the response being queued. */
void metrics_observe_request(struct metrics *m, enum metrics_route route, int code,
                             double seconds);

/* One finished generation job: its queue wait and total seconds (job_metrics's
 * queue_s and total_s), images made and denoising steps run (over its images). */
void metrics_observe_generation(struct metrics *m, double queue_s, double total_s,
                                int images, int steps);

void metrics_reject(struct metrics *m, enum metrics_reject reason);
void metrics_set_model_loaded(struct metrics *m, int model, bool loaded);
void metrics_set_ready(struct metrics *m, bool ready);
/* Request bodies held (--max-body-bytes-total's budget): delta bytes reserved (> 0) or
 * released (< 0). */
void metrics_add_body_bytes(struct metrics *m, int64_t delta);

/* The whole exposition into a malloc'd, NUL-terminated buffer (*out, *len without
 * the NUL; the caller frees).  sched may be NULL (the scheduler families are left
 * out).  Process metrics are read from /proc; where /proc cannot be read they are
 * left out rather than reported wrong. */
enum status metrics_render(struct metrics *m, const struct scheduler_stats *sched,
                           char **out, size_t *len, struct errbuf *err);

/* Content-Type of the exposition. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A label value escaped for the exposition (\\ \" \n) into out; returns false when
 * it does not fit in cap (out then holds a valid, shortened value). */
bool metrics_escape_label(const char *in, char *out, size_t cap);

#endif
