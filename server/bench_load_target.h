/* server/bench_load_target.h — where `diffusiond bench load` (server/bench_load.c) sends
 * its requests: the real server over HTTP (default), or the batching scheduler in
 * process (--in-process).
 *
 * HTTP: load_target_open starts `diffusiond serve --batching <mode> …` as a child
 * (server/bench_serve_proc.h) and waits for /readyz; load_target_submit starts one
 * thread per request (at most LOAD_TARGET_MAX_INFLIGHT at once) which POSTs
 * /v1/images/generations on its own connection and reads the whole response; the
 * request is OK when the answer is a 200 whose data[0].b64_json is a PNG.  The request's
 * latency runs from the submission (its arrival) to the end of the response read.
 * load_target_counts scrapes /metrics (diffusiond_unet_batch_rows_sum / _count,
 * diffusiond_unet_graph_replays_total, diffusiond_unet_seconds_total,
 * diffusiond_scheduler_busy_seconds_total);
 * load_target_close sends SIGTERM and fails unless the server exits with status 0.
 * In process: scheduler_submit / the completion callback, scheduler_stats.
 *
 * Ownership: the target owns its server child or scheduler; the caller owns the
 * load_request records, which must outlive load_target_wait.  Thread-safety: submit,
 * wait, rows and close from one thread; completions are recorded under the target's
 * lock, so read a request's outcome only after load_target_wait.
 */
#ifndef DIFFUSIOND_SERVER_BENCH_LOAD_TARGET_H
#define DIFFUSIOND_SERVER_BENCH_LOAD_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/status.h"
#include "models/sampler.h"
#include "models/sd_model.h"
#include "server/scheduler.h"

#define LOAD_TARGET_MAX_INFLIGHT 512 /* HTTP: client threads at once; beyond: failed */

enum load_outcome {
    LOAD_PENDING = 0,
    LOAD_OK,       /* the image came back */
    LOAD_REJECTED, /* HTTP: a status other than 200; in process: submit refused */
    LOAD_FAILED,   /* no answer (connection, timeout), a 200 without an image, a job error */
};

/* One request of the workload: what to ask for, and what happened. */
struct load_request {
    int steps, size_index;
    int images; /* images in the request ("n"); 0: 1 */
    const char *prompt;
    int size; /* square side, pixels; 0: the model's native size */
    enum sampler_kind sampler;
    uint64_t seed;
    double t_submit, t_done; /* CLOCK_MONOTONIC seconds */
    double slo_alone;        /* its single-request latency (the benchmark's to fill) */
    enum load_outcome outcome;
    int http_status; /* HTTP: the answer's status (0: none) */
    /* the server's own account (the answer's "metrics"; in process: the job's), seconds;
     * negative when the answer had none */
    double queue_s, encode_s, denoise_s, decode_s, total_s;
};

struct load_target_config {
    bool in_process;
    enum sched_mode mode;
    int max_rows, max_wait_ms; /* the scheduler's max batch rows; request mode's wait */
    struct sd_model *model;    /* in process: the loaded model */
    const char *model_path;    /* HTTP: the server's --model */
    int threads;               /* HTTP: the server's --threads */
    const char *device;        /* HTTP: the server's --device, or NULL (its default) */
    const char *cuda_plan;     /* HTTP: the server's --cuda-plan, or NULL (its default) */
    int lanes;                 /* step mode's lanes (serve --lanes); 0: the default */
};

struct load_target;

enum status load_target_open(const struct load_target_config *cfg, struct load_target **out,
                             struct errbuf *err);

/* Sends req; its t_submit is t_arrival (the arrival it was scheduled for, so a late
 * wake-up of the sender counts in its latency) or, when t_arrival ≤ 0, now.  Its outcome
 * is set on completion (or at once when refused).  Never blocks on the completion. */
void load_target_submit(struct load_target *t, struct load_request *req, double t_arrival);

/* Waits until every submitted request has completed. */
void load_target_wait(struct load_target *t);

/* U-Net rows, calls and calls replayed from a recorded CUDA graph since the target
 * started, the worker's seconds in U-Net calls, VAE decodes and busy iterations, its calls by
 * duration (HTTP: from /metrics; 0 where the server does not report them). */
struct load_counts {
    uint64_t rows, calls, replays, recorded;
    uint64_t concurrent;  /* calls beside another size's, on another lane */
    double unet_s, decode_s, busy_s;
    uint64_t call_hist[SCHED_CALL_BUCKETS + 1]; /* calls by duration (scheduler_stats) */
};
enum status load_target_counts(struct load_target *t, struct load_counts *out,
                               struct errbuf *err);

/* The model's native image width (HTTP: the "size" of an answer to a request without
 * one). */
enum status load_target_native_size(struct load_target *t, int *width, struct errbuf *err);

/* What went wrong with the first request that was not LOAD_OK (HTTP status and the
 * answer's first bytes, or the client's error), or "" — valid until close. */
const char *load_target_first_error(struct load_target *t);

/* Stops and frees t (NULL: nothing).  HTTP: STATUS_OK only when the server exited 0. */
enum status load_target_close(struct load_target *t, struct errbuf *err);

#endif
