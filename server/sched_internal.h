/* server/sched_internal.h — the scheduler's state, shared by its source files
 * (scheduler.c: API and worker thread; sched_loop.c: one iteration; sched_admission.c:
 * cost model and admission; sched_runner.c: the pipeline runner).  Nothing else
 * includes it.  Ownership and thread-safety as server/scheduler.h: fields marked
 * [lock] are read and written under s->lock; [worker] only by the iterating thread. */
#ifndef DIFFUSIOND_SERVER_SCHED_INTERNAL_H
#define DIFFUSIOND_SERVER_SCHED_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "server/scheduler.h"

enum job_state { JOB_QUEUED, JOB_ACTIVE };

struct sched_job;

/* One image of a job: one sd_request while it runs. */
struct sched_image {
    struct sched_job *job;
    int index;
    struct sd_request req; /* [worker] */
    bool begun, finished;  /* [worker] begun: in the active set; finished: all steps */
    int steps_done;        /* [worker] */
};

struct sched_job {
    uint64_t id;
    struct gen_params p;         /* strings, init_image and init_mask point at the copies below */
    char *prompt, *negative, *request_id;
    uint8_t *init_image;         /* img2img's start image (copy), NULL for txt2img */
    uint8_t *init_mask;          /* inpainting's mask (copy, width·height bytes), or NULL */
    int steps;                   /* U-Net steps each image runs: p.steps, or for img2img
                                    int(p.steps · p.strength) (sd_img2img_steps) */
    struct job_callbacks cb;
    int model, priority;
    int rows;                    /* per image: 2 with CFG, else 1 */
    uint64_t deadline_ns;        /* absolute on the scheduler clock; 0 none */
    uint64_t due_ns;             /* t_submit + due_factor × its time alone (ordering) */
    uint64_t t_submit, t_admit, t_first_step, t_last_step;
    double encode_s, decode_s;
    int unet_calls;
    int64_t rows_sum;
    int batch_sizes[JOB_BATCH_SIZES_MAX]; /* [worker] rows of its first calls */
    enum job_state state;        /* [lock] */
    enum cancel_reason cancel;   /* [lock] requested */
    int64_t rowsteps_left;       /* [lock] rows × steps not yet run, over its images */
    int steps_left_max;          /* [lock] of its images */
    int n_admit;                 /* [lock] images admitted (to begin) */
    int n_begun, n_decoded;      /* [worker] */
    int steps_done_total;        /* [worker] */
    struct sched_image *images;  /* [p.n] */
    struct sd_image *out;        /* [p.n] decoded */
    struct sched_job *next;      /* [lock] in the active list */
};

#define SCHED_COST_SIZES 8 /* image sizes whose call costs are kept apart (least recently
                              measured one replaced) */

/* The measured U-Net call costs at one image size. */
struct sched_size_cost {
    int64_t pixels;                  /* the images' width × height; 0: a free slot */
    double step[SCHED_HIST_MAX + 1]; /* seconds per call by rows (EWMA); 0: unmeasured */
    uint64_t used;                   /* the call count when it was last measured */
};

/* A bucket: the jobs of one model and image size, stepped together. */
struct bucket_key {
    int model, width, height;
};

/* One U-Net call of an iteration [worker]. */
struct sched_call {
    struct bucket_key key;
    int lane;                    /* the backend lane it runs on */
    struct sched_image **batch;  /* [max_batch_rows] its images */
    struct sd_request **reqs;    /* [max_batch_rows] their requests */
    int n, rows;
    enum status st;              /* its outcome */
    struct errbuf err;
};

struct scheduler {
    struct scheduler_config cfg;
    struct sched_runner runner;
    void *pipeline_runner;       /* the product runner (sched_runner.c) or NULL */

    pthread_mutex_t lock;
    pthread_cond_t work_cv;      /* the worker waits for work */
    pthread_cond_t idle_cv;      /* drain waits for an empty scheduler */
    pthread_t thread;
    bool started, stop, draining;
    bool cancel_all;             /* [lock] cancel everything (shutdown) */
    uint64_t kick;               /* [lock] bumped by every submit/cancel/stop */
    uint64_t next_id;            /* [lock] */

    struct sched_job **queue;    /* [lock] [queue_capacity] jobs waiting, in arrival order */
    int queue_len;
    int completing;              /* [lock] out of the books, on_complete not yet returned */
    struct sched_job *active;    /* [lock] admitted jobs (some image begun or to begin) */
    int64_t pending_rowsteps;    /* [lock] over queued + active jobs */
    int pending_rows;            /* [lock] rows of every image not finished */
    double step_pixels_ewma;     /* [lock] image pixels of every measured call (the size
                                    mix; stats.step_ewma_s: their seconds by rows) */
    struct sched_size_cost size_cost[SCHED_COST_SIZES]; /* [lock] the call costs by image
                                                           size: what the decisions use */
    uint64_t calls_measured;     /* [lock] */
    double decode_ewma;          /* [lock] seconds per decoded image */
    double start_encode_ewma;    /* [lock] seconds per pixel of an image-to-image image's
                                    begin (its start image's VAE encode); 0 unmeasured */
    struct scheduler_stats stats; /* [lock] */
    atomic_int hb_outstanding;   /* admitted jobs whose on_complete has not returned */
    _Atomic uint64_t hb_ns;      /* the worker's last finished iteration (or the moment
                                    work arrived at an idle scheduler) */

    int lanes;                   /* cfg.lanes resolved: calls per iteration at most */
    struct sched_call calls[BACKEND_LANES_MAX]; /* [worker] this iteration's, [lanes] */
    struct bucket_key lane_of[SCHED_MAX_BUCKETS]; /* [worker] bucket i's lane is i % lanes
                                                     (the order they were first stepped) */
    int n_lane_of;
    struct sched_job **scratch;  /* [worker] scratch, queue_capacity + active */
    int scratch_cap;
};

uint64_t sched_now(const struct scheduler *s);

/* sched_admission.c */
/* Seconds per U-Net call of `rows` rows over images of `pixels` pixels [lock]: that
 * size's measured calls (the nearest measured row count, scaled linearly in rows); for a
 * size never measured, the nearest measured size's cost scaled linearly in pixels;
 * nothing measured: the configured guess (initial_step_s a row). */
double sched_call_cost(const struct scheduler *s, int rows, double pixels);
/* The admission decision for a job of `rows` rows per image × n images × steps [lock]. */
void sched_admission_judge(const struct scheduler *s, const struct sched_job *j, uint64_t now,
                           struct admission *adm);
/* Seconds of U-Net work admitted and not yet run: every row-step ahead at the batch the
 * device will run (min(rows unfinished, max_batch_rows); mode none: one CFG image's
 * 2 rows) and the measured calls' size mix; 0 with nothing pending [lock]. */
double sched_backlog_seconds(const struct scheduler *s);
/* Expected seconds for job j alone on the device: its start images' encodes (image to
 * image), its steps at its own rows and size (sched_call_cost), plus its decodes [lock]. */
double sched_alone_seconds(const struct scheduler *s, const struct sched_job *j);
/* Records an image-to-image image's begin of `seconds` at `pixels` [lock]. */
void sched_record_start_encode(struct scheduler *s, double pixels, double seconds);
/* Whether growing a call over images of `pixels` pixels from `rows` to rows + add rows
 * would make one of the jobs in[0 … n) — those already in the call — miss its due
 * time (or deadline) that it meets at `rows`, at the measured call costs; false while
 * the cost at rows + add is unmeasured (the call grows, and so it is measured) [worker:
 * the worker is the only writer of the cost model]. */
bool sched_join_delays(const struct scheduler *s, struct sched_job *const *in, int n, int rows,
                       int add, double pixels, uint64_t now);
/* Records a U-Net call's duration (rows of images of `pixels` pixels each) [lock]. */
void sched_record_step(struct scheduler *s, int rows, int64_t pixels, double seconds);
void sched_record_decode(struct scheduler *s, int images, double seconds);
/* Urgency order: priority, then earliest deadline, then earliest due time (step mode:
 * submit + due_factor × time alone; other modes: submit), then longest wait; < 0 when
 * a goes first. */
int sched_job_cmp(const struct sched_job *a, const struct sched_job *b);

/* sched_loop.c: one iteration on the calling thread (not under the lock). */
enum status sched_iterate(struct scheduler *s, bool *worked, uint64_t *wake_ns,
                          struct errbuf *err);

/* sched_runner.c: the product runner over the real pipeline, with a workspace and U-Net
 * graphs per lane (lanes ≥ 1; begin and decode on lane 0). */
enum status sched_pipeline_runner_create(const struct scheduler_config *cfg, int lanes,
                                         struct sched_runner *out, void **state,
                                         struct errbuf *err);
void sched_pipeline_runner_destroy(void *state);
/* The runner's counters into st: text cache hits and misses, U-Net graph replays. */
void sched_pipeline_runner_counters(void *state, struct scheduler_stats *st);

void sched_job_free(struct sched_job *j);

#endif
