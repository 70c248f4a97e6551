/* server/scheduler.h — the batching scheduler: step-level continuous batching of
 * txt2img jobs over one device, with admission control, cancellation and statistics.
 * No HTTP in here: the HTTP layer (and `bench load`, and the tests) submit through
 * this API.  docs/scheduler.md describes the policy; in short:
 *
 *   submit ──▶ bounded queue ──▶ (worker thread) admit: text-encode through an LRU
 *   cache, sd_request_begin_text for each image of the job
 *        ──▶ active set, bucketed by (model, latent size)
 *        ──▶ every iteration: the bucket of the most urgent running job (priority,
 *            deadline, due time = submit + due_factor × time alone, submit), its
 *            active images ≤ max_batch_rows rows (CFG 2 rows, guidance ≤ 1 one), run
 *            ONE sd_unet_step — and with lanes > 1 the next buckets in that order
 *            whose lane is free, one call each, concurrently on the backend's lanes
 *        ──▶ images that finished leave: sd_decode batched across the images of that
 *            bucket that finished together ──▶ on_complete (RGB8 images + metrics)
 *
 * Requests join at the next iteration after they are admitted and leave at the step
 * they finish; a cancelled (by id, by client disconnect, on deadline expiry) request's
 * rows are gone from the next U-Net call.  Modes: step (the above), request (gather up
 * to max_batch_rows within request_max_wait_ms, run those to completion together, no
 * joining), none (one job at a time).
 *
 * Every admitted job gets exactly one on_complete: with its images, with an error, or
 * with STATUS_CANCELLED (and a cancel reason).  A job rejected at submit gets none.
 *
 * Ownership: scheduler_create copies the config (the models, backend and runner are
 * borrowed and must outlive the scheduler).  scheduler_submit copies the params, their
 * strings and an img2img job's init_image (and an inpainting job's init_mask, width·height
 * bytes); callbacks' user pointers are borrowed until on_complete returns.  The
 * images in a job_result belong to on_complete's caller side: the callback may take
 * them (job_result_take_images) — otherwise they are freed when it returns.
 * Thread-safety: submit, cancel, disconnect, stats and drain may be called from any
 * thread, concurrently, including from inside a callback (they never wait for the
 * worker, except drain, which must not be called from a callback).  Callbacks run on
 * the worker thread with no scheduler lock held and must be cheap (they delay every
 * request in the batch).  scheduler_poll is for a scheduler that was not started
 * (tests, single-threaded drivers); create/start/destroy belong to one owner thread.
 */
#ifndef DIFFUSIOND_SERVER_SCHEDULER_H
#define DIFFUSIOND_SERVER_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/status.h"
#include "models/pipeline.h"
#include "models/sd_model.h"

#define SCHED_MAX_MODELS 8
/* Buckets of the U-Net call-time histogram with an upper bound
 * (scheduler_call_bound_ms), then one open-ended. */
#define SCHED_CALL_BUCKETS 11
#define SCHED_HIST_MAX 64 /* rows-per-call histogram / EWMA table size (rows ≥ it share the last) */

enum sched_mode {
    SCHED_MODE_STEP = 0, /* step-level continuous batching (default) */
    SCHED_MODE_REQUEST,  /* request-level: gather, run to completion together */
    SCHED_MODE_NONE,     /* one job at a time */
    SCHED_MODE_COUNT_
};

/* "step", "request", "none". */
const char *sched_mode_name(enum sched_mode m);
/* The names above; STATUS_INVALID_ARGUMENT naming the field "batching". */
enum status sched_mode_parse(const char *name, enum sched_mode *out, struct errbuf *err);

/* Time source: nanoseconds on a monotonic clock.  NULL now_ns: CLOCK_MONOTONIC. */
struct sched_clock {
    uint64_t (*now_ns)(void *ctx);
    void *ctx;
};

/* What the worker does to an image (one struct sd_request each).  The product path
 * (runner NULL in the config) is the real pipeline: text through the LRU cache, then
 * sd_request_begin_text, sd_unet_step, sd_decode, sd_request_free.  Unit tests inject
 * a fake (the only place one is allowed).  All calls are on the worker thread.
 *   begin    start image `image` of p on model `model`; fill req (its rows, lh, lw
 *            are read by the scheduler)
 *   step     one U-Net step over reqs[0 … n) (same bucket), done on return
 *   launch   optional (with wait; needed for lanes > 1): the same step on backend lane
 *            `lane`, queued — it is done once wait returns; the launches of one
 *            iteration are of different buckets and different lanes
 *   wait     until every launched step is done
 *   decode   decode reqs[0 … n) (finished, same bucket) into images[0 … n)
 *   release  free req (may be half-begun or empty) */
struct sched_runner {
    void *ctx;
    enum status (*begin)(void *ctx, int model, const struct gen_params *p, int image,
                         struct sd_request *req, struct errbuf *err);
    enum status (*step)(void *ctx, int model, struct sd_request *const *reqs, int n,
                        struct errbuf *err);
    enum status (*launch)(void *ctx, int model, int lane, struct sd_request *const *reqs,
                          int n, struct errbuf *err);
    enum status (*wait)(void *ctx, struct errbuf *err);
    enum status (*decode)(void *ctx, int model, struct sd_request *const *reqs, int n,
                          struct sd_image *images, struct errbuf *err);
    void (*release)(void *ctx, struct sd_request *req);
};

struct scheduler_config {
    const struct sd_model *models[SCHED_MAX_MODELS]; /* all on one backend (one device) */
    int n_models;
    enum sched_mode mode;
    int max_batch_rows;        /* U-Net rows per call; 0: 16; ≤ SD_MAX_BATCH_ROWS */
    int queue_capacity;        /* jobs waiting for admission; 0: 64 */
    int request_max_wait_ms;   /* request mode: longest gather wait; 0: 50 ms; < 0: none */
    int text_cache_entries;    /* LRU size; 0: 256 */
    int decode_batch;          /* images per VAE call; 0: 4 */
    double initial_step_s;     /* step cost guess before any measurement; 0: 0.05 s */
    double due_factor;         /* step mode's order of jobs with no deadline: due at
                                  submit + due_factor × its estimated time alone (so a
                                  short job overtakes a long one, which is never
                                  starved: its due time comes); 0: 2; < 0: by arrival
                                  only.  Modes request and none: by arrival. */
    int lanes;                 /* step mode: buckets stepped concurrently in one iteration,
                                  a U-Net call each on its own backend lane (engine/
                                  backend.h; each bucket keeps one lane, the one it was
                                  first given, so its graphs are recorded once); 0: 1
                                  (two not yet measured on a GPU); at most
                                  BACKEND_LANES_MAX (only CUDA's run concurrently; the
                                  CPU's one after the other).  Modes request and none: 1 */
    bool unet_graphs;          /* replay each U-Net call from a recorded backend graph
                                  where the backend records them (CUDA; models/
                                  pipeline.h, sd_unet_step_graphs); default on (the
                                  CPU runs eagerly either way) */
    struct sched_clock clock;
    const struct sched_runner *runner; /* NULL: the real pipeline (product path) */
};

/* Zeroes cfg: the defaults above, mode step, U-Net graphs on, no models. */
void scheduler_config_default(struct scheduler_config *cfg);

enum cancel_reason {
    CANCEL_NONE = 0,
    CANCEL_CLIENT,     /* scheduler_cancel */
    CANCEL_DISCONNECT, /* scheduler_disconnect: the client went away */
    CANCEL_DEADLINE,   /* its deadline passed before it finished */
    CANCEL_SHUTDOWN,   /* destroy, or drain's grace ran out */
};
const char *cancel_reason_name(enum cancel_reason r);

#define JOB_BATCH_SIZES_MAX 256

/* Per-request times (seconds) and batching facts, in the result. */
struct job_metrics {
    double queue_s;     /* submit → admitted (its first image begun) */
    double encode_s;    /* text encode + begin of all its images */
    double denoise_s;   /* first U-Net step → last step */
    double decode_s;    /* VAE decode of its images */
    double total_s;     /* submit → complete */
    int unet_calls;     /* U-Net calls its images took part in */
    double mean_batch_rows; /* mean rows of those calls */
    int steps_done;     /* over its images */
    int batch_sizes[JOB_BATCH_SIZES_MAX]; /* rows of each U-Net call it took part in, in
                                             order (the first JOB_BATCH_SIZES_MAX calls) */
    int n_batch_sizes;
};

struct job_result {
    uint64_t job_id;
    const char *request_id;   /* as submitted (may be NULL) */
    enum status status;       /* OK, CANCELLED, or the failure */
    enum cancel_reason cancel_reason;
    const char *error;        /* message when status is not OK ("" otherwise) */
    int n_images;             /* n on success, 0 otherwise */
    struct sd_image *images;  /* [n_images], image i = seed + i */
    struct job_metrics metrics;
};

/* Takes the images out of a result (inside on_complete): the caller then owns the
 * array (free) and each image (sd_image_free).  NULL when there are none. */
struct sd_image *job_result_take_images(struct job_result *r);

struct job_callbacks {
    /* After each U-Net call the job took part in: steps done / in all over its images. */
    void (*on_progress)(void *user, uint64_t job_id, int steps_done, int steps_total);
    /* Exactly once per admitted job. */
    void (*on_complete)(void *user, struct job_result *result);
    void *user;
};

struct submit_options {
    int model;            /* index into the config's models */
    int64_t deadline_ms;  /* complete within this many ms of submit; 0: no deadline */
    int priority;         /* higher first; 0 default */
    const char *request_id; /* copied; for logs and the result */
};

enum admission_reason { ADMIT_OK = 0, ADMIT_QUEUE_FULL, ADMIT_DEADLINE, ADMIT_DRAINING };
const char *admission_reason_name(enum admission_reason r);

struct admission {
    enum admission_reason reason;
    int64_t retry_after_ms;   /* on rejection: when trying again may succeed */
    double expected_s;        /* the estimate of completion (from now) it was judged by */
    int queue_depth;          /* jobs waiting at submit */
};

#define SCHED_MAX_BUCKETS 16

struct scheduler_stats {
    enum sched_mode mode;
    int queue_depth;           /* jobs waiting */
    int active_jobs, active_images, active_rows;
    int64_t active_steps_done, active_steps_total; /* over the active jobs' images: steps
                                                      run, and steps in all */
    double backlog_s;          /* estimated seconds of U-Net work admitted (queued and
                                  running) and not yet run, at the measured call costs:
                                  every row-step ahead at the batch the device will run */
    int buckets;               /* with active images */
    uint64_t submitted;        /* jobs accepted (each completes once); refusals below */
    uint64_t rejected_queue_full, rejected_deadline, rejected_draining;
    uint64_t completed_ok, completed_error, cancelled;
    uint64_t unet_calls, unet_rows;     /* rows summed over calls */
    uint64_t unet_concurrent_calls;     /* calls that ran beside another bucket's (lanes) */
    uint64_t rows_hist[SCHED_HIST_MAX + 1]; /* calls by rows (index = rows, last = ≥ max) */
    uint64_t call_hist[SCHED_CALL_BUCKETS + 1]; /* calls by duration: [i] within bound i of
                                                   scheduler_call_bound_ms(i) (above bound i − 1),
                                                   [SCHED_CALL_BUCKETS] longer */
    double mean_rows;          /* unet_rows / unet_calls */
    double mean_occupancy;     /* mean rows / max_batch_rows */
    double step_ewma_s[SCHED_HIST_MAX + 1]; /* per rows; 0 where never measured */
    uint64_t decode_calls, decoded_images;
    uint64_t text_cache_hits, text_cache_misses;
    uint64_t unet_graph_replays;        /* U-Net calls replayed from a graph */
    uint64_t unet_graphs_recorded;      /* graphs recorded (each call that records one, and
                                           the eager call before it, is a slow one) */
    uint64_t vae_graph_replays;         /* VAE decodes replayed from a graph */
    bool unet_graphs_failed, vae_graphs_failed; /* a recording failed (any lane): those
                                                    calls run eagerly from then on */
    double unet_s, decode_s;   /* seconds in U-Net calls (each to its device's end; calls
                                  side by side each the whole time) and in VAE decodes,
                                  summed */
    double busy_s;             /* seconds of worker iterations that did work: the calls,
                                  decodes, admission, text encoding, callbacks */
    bool draining;
};

struct scheduler;

/* Validates and copies cfg (errors name the field: "max_batch_rows", "models" …).
 * The product runner's workspace is made on the model's backend. */
enum status scheduler_create(const struct scheduler_config *cfg, struct scheduler **out,
                             struct errbuf *err);

/* Starts the worker thread (one per device; it alone uses the backend and workspace
 * from now on). */
enum status scheduler_start(struct scheduler *s, struct errbuf *err);

/* Admits a job or rejects it.  p is validated against the model (STATUS_INVALID_ARGUMENT
 * naming the field); a rejection returns STATUS_BUSY (queue full, draining) or
 * STATUS_TIMEOUT (deadline cannot be met) with adm filled (adm may be NULL).  opt may
 * be NULL.  On success *job_id (may be NULL) identifies it and on_complete will run
 * exactly once. */
enum status scheduler_submit(struct scheduler *s, const struct gen_params *p,
                             const struct job_callbacks *cb, const struct submit_options *opt,
                             uint64_t *job_id, struct admission *adm, struct errbuf *err);

/* Cancels a job: a queued one never runs, a running one's rows leave at the next step
 * boundary; its on_complete gets STATUS_CANCELLED with the reason.  STATUS_NOT_FOUND
 * when the job is unknown or already completing. */
enum status scheduler_cancel(struct scheduler *s, uint64_t job_id, enum cancel_reason reason,
                             struct errbuf *err);

/* The HTTP layer's call when a client disconnects: scheduler_cancel with
 * CANCEL_DISCONNECT. */
enum status scheduler_disconnect(struct scheduler *s, uint64_t job_id, struct errbuf *err);

void scheduler_stats(struct scheduler *s, struct scheduler_stats *out);

/* The upper bound (ms) of call-time bucket b (0 ≤ b < SCHED_CALL_BUCKETS):
 * 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 250, 1000. */
double scheduler_call_bound_ms(int b);

/* Liveness for a watchdog, lock-free (atomics only; never waits on the worker): the
 * seconds the scheduler has had admitted work (queued, running or completing) while
 * its worker finished no iteration — 0 when it has no work.  A worker stuck inside
 * one U-Net call or decode shows here as a growing number. */
double scheduler_stall_s(struct scheduler *s);

/* Not started: one iteration on the caller's thread (cancellations, deadline expiry,
 * admission, one U-Net call, decode of what finished, callbacks).  *worked (may be
 * NULL): something happened; *wake_ns (may be NULL): the clock time the next
 * iteration has something to do by itself (request mode's gather, deadlines), 0 none.
 * STATUS_INVALID_ARGUMENT when started. */
enum status scheduler_poll(struct scheduler *s, bool *worked, uint64_t *wake_ns,
                           struct errbuf *err);

/* Stops admitting (submit → ADMIT_DRAINING) and waits until every admitted job has
 * completed, at most grace_ms (< 0: forever); then what is left is cancelled
 * (CANCEL_SHUTDOWN) and STATUS_TIMEOUT returned.  Not started: polls on this thread. */
enum status scheduler_drain(struct scheduler *s, int64_t grace_ms, struct errbuf *err);

/* Stops the worker; jobs still admitted complete with CANCEL_SHUTDOWN; frees all.
 * s may be NULL. */
void scheduler_destroy(struct scheduler *s);

#endif
