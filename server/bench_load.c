/* server/bench_load.c — `diffusiond bench load`: open-loop Poisson arrivals (fixed
 * seed) of a mixed workload (steps 4–30, two image sizes, three samplers) against the
 * batching scheduler, for each batching mode; per offered rate p50/p95/p99 latency,
 * the p95 of each request's slowdown over its single-request latency, mean U-Net
 * occupancy; goodput = the highest rate whose p95 slowdown ≤ the SLO factor (2), and
 * the ratios between modes (docs/scheduler.md, docs/benchmarks.md).
 *
 * In-process for now: requests go to the scheduler through struct load_target, the one
 * seam the HTTP issue replaces with an over-the-wire target (POST, wait for the
 * response) — arrivals, timing and the statistics stay as they are. */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/log.h"
#include "engine/threadpool.h"
#include "models/pipeline.h"
#include "models/sd_model.h"
#include "server/bench.h"
#include "server/scheduler.h"

#define LOAD_MAX_RATES 32
#define LOAD_SLO_FACTOR 2.0
#define LOAD_MIN_STEPS 4
#define LOAD_MAX_STEPS 30

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_until(double t)
{
    struct timespec ts = {.tv_sec = (time_t)t, .tv_nsec = (long)((t - floor(t)) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

/* splitmix64: the workload's own generator (fixed seed, independent of the model). */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* --- the requests and their outcome ---------------------------------------------------- */

struct load_request {
    int steps, size_index;
    double t_submit, t_done, slo_alone; /* slo_alone: its single-request latency */
    bool admitted, done, ok;
};

struct load_run {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    struct load_request *reqs;
    int n, outstanding;
};

/* --- the target: where requests go (in-process scheduler; HTTP later) ------------------ */

struct load_target {
    struct scheduler *sched;
    struct load_run *run;
};

struct job_ctx {
    struct load_run *run;
    struct load_request *req;
};

static void job_done(void *user, struct job_result *r)
{
    struct job_ctx *c = user;
    const double t = now_s();
    pthread_mutex_lock(&c->run->lock);
    c->req->t_done = t;
    c->req->done = true;
    c->req->ok = r->status == STATUS_OK;
    if (--c->run->outstanding == 0)
        pthread_cond_broadcast(&c->run->cv);
    pthread_mutex_unlock(&c->run->lock);
}

/* Submits; false when the target rejected it (it then counts as an SLO miss). */
static bool target_submit(struct load_target *t, const struct gen_params *p, struct job_ctx *c)
{
    const struct job_callbacks cb = {.on_complete = job_done, .user = c};
    pthread_mutex_lock(&t->run->lock);
    t->run->outstanding++;
    pthread_mutex_unlock(&t->run->lock);
    c->req->t_submit = now_s();
    if (scheduler_submit(t->sched, p, &cb, NULL, NULL, NULL, NULL) == STATUS_OK)
        return true;
    pthread_mutex_lock(&t->run->lock);
    t->run->outstanding--;
    pthread_mutex_unlock(&t->run->lock);
    return false;
}

static void target_wait(struct load_target *t)
{
    pthread_mutex_lock(&t->run->lock);
    while (t->run->outstanding > 0)
        pthread_cond_wait(&t->run->cv, &t->run->lock);
    pthread_mutex_unlock(&t->run->lock);
}

/* --- options ------------------------------------------------------------------------- */

struct load_opts {
    const char *model;
    const char *mode;      /* step|request|none|all */
    double duration;       /* seconds of arrivals per rate */
    double rates[LOAD_MAX_RATES];
    int n_rates;           /* 0: chosen from the single-request latency */
    int threads, max_rows, max_wait_ms;
    int min_requests;      /* arrivals go on past the duration until this many */
    int sizes[2];
    uint64_t seed;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: diffusiond bench load --model DIR [--mode step|request|none|all]\n"
            "                             [--duration S] [--rates r1,r2,...] [--threads N]\n"
            "                             [--max-rows R] [--max-wait MS] [--sizes A,B] [--seed N]\n"
            "                             [--min-requests N]\n"
            "Open-loop Poisson arrivals (fixed seed) of a mixed workload — steps %d–%d, two\n"
            "sizes, Euler / Euler a / DPM++ 2M, CFG 7.5 — through the batching scheduler in\n"
            "process.  Per mode and rate: p50/p95/p99 latency, p95 slowdown over each\n"
            "request's single-request latency, mean occupancy; goodput = the highest rate\n"
            "whose p95 slowdown ≤ %.0f (rejections count as misses); then the mode ratios.\n"
            "  --mode M       one mode, or all (default) in one run\n"
            "  --duration S   seconds of arrivals per rate (default 10)\n"
            "  --rates LIST   requests/s (default: multiples of 1 / mean single latency)\n"
            "  --threads N    CPU backend threads (default: every CPU)\n"
            "  --max-rows R   U-Net rows per call (default 16)\n"
            "  --max-wait MS  request mode's gather wait (default: a quarter of the mean\n"
            "                 single-request latency)\n"
            "  --sizes A,B    the two square image sizes (default: native and 1.5 × native)\n"
            "  --seed N       the workload's seed (default 1)\n"
            "  --min-requests N  arrivals continue past the duration until N (default 40)\n",
            LOAD_MIN_STEPS, LOAD_MAX_STEPS, LOAD_SLO_FACTOR);
}

static int parse_list(const char *s, double *out, int max)
{
    int n = 0;
    for (char *end; *s && n < max; s = *end == ',' ? end + 1 : end) {
        out[n] = strtod(s, &end);
        if (end == s || out[n] <= 0)
            return -1;
        n++;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    return n;
}

static int parse_args(int argc, char **argv, struct load_opts *o)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},    {"mode", required_argument, NULL, 'M'},
        {"duration", required_argument, NULL, 'd'}, {"rates", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'},  {"max-rows", required_argument, NULL, 'R'},
        {"max-wait", required_argument, NULL, 'w'}, {"sizes", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},     {"help", no_argument, NULL, 'h'},
        {"min-requests", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct load_opts){.mode = "all", .duration = 10, .threads = threadpool_cpu_count(),
                            .max_rows = 16, .seed = 1, .min_requests = 40};
    optind = 1;
    int ch;
    double sizes[2];
    bool bad = false;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm': o->model = optarg; break;
        case 'M': o->mode = optarg; break;
        case 'd': o->duration = atof(optarg); break;
        case 'r': bad |= (o->n_rates = parse_list(optarg, o->rates, LOAD_MAX_RATES)) < 1; break;
        case 't': o->threads = atoi(optarg); break;
        case 'R': o->max_rows = atoi(optarg); break;
        case 'w': o->max_wait_ms = atoi(optarg); break;
        case 's':
            bad |= parse_list(optarg, sizes, 2) != 2;
            o->sizes[0] = (int)sizes[0];
            o->sizes[1] = (int)sizes[1];
            break;
        case 'S': o->seed = strtoull(optarg, NULL, 10); break;
        case 'n': o->min_requests = atoi(optarg); break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    enum sched_mode m;
    const bool mode_ok = strcmp(o->mode, "all") == 0 || sched_mode_parse(o->mode, &m, NULL) == STATUS_OK;
    if (bad || optind != argc || !o->model || !mode_ok || o->duration <= 0 || o->threads < 1 ||
        o->max_rows < 2 || o->max_rows > SD_MAX_BATCH_ROWS || o->max_wait_ms < 0 ||
        o->min_requests < 0 ||
        o->sizes[0] % 8 != 0 || o->sizes[1] % 8 != 0) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* --- the workload ------------------------------------------------------------------------ */

struct load_env {
    struct backend *backend;
    struct sd_model *model;
    struct load_opts o;
    double alone_a[2], alone_b[2]; /* single-request latency ≈ a + b · steps, per size */
    double mean_alone;             /* over the workload's mix */
    double calib_ref;              /* the calibration request's latency then */
};

#define CALIB_STEPS 17 /* the calibration request: size 0, the mix's mean steps */

static const enum sampler_kind SAMPLERS[3] = {SAMPLER_EULER, SAMPLER_EULER_A, SAMPLER_DPMPP_2M};

static struct gen_params workload_params(const struct load_env *e, int steps, int size_index,
                                         uint64_t seed)
{
    struct gen_params p;
    gen_params_default(e->model, &p);
    static const char *const prompts[4] = {"a red cube on a table", "a lighthouse at dusk",
                                           "a photograph of an astronaut riding a horse",
                                           "a bowl of fruit, oil painting"};
    p.prompt = prompts[seed % 4];
    p.width = p.height = e->o.sizes[size_index];
    p.steps = steps;
    p.guidance = 7.5;
    p.sampler = SAMPLERS[seed % 3];
    p.seed = seed;
    return p;
}

static enum status make_scheduler(const struct load_env *e, enum sched_mode mode, int max_wait_ms,
                                  struct scheduler **out, struct errbuf *err)
{
    struct scheduler_config cfg;
    scheduler_config_default(&cfg);
    cfg.models[0] = e->model;
    cfg.n_models = 1;
    cfg.mode = mode;
    cfg.max_batch_rows = e->o.max_rows;
    cfg.queue_capacity = 256;
    cfg.request_max_wait_ms = max_wait_ms > 0 ? max_wait_ms : -1;
    TRY(scheduler_create(&cfg, out, err));
    enum status s = scheduler_start(*out, err);
    if (s != STATUS_OK)
        scheduler_destroy(*out);
    return s;
}

/* One request alone, submitted and waited for: its latency. */
static double run_alone(const struct load_env *e, struct scheduler *sched, int steps, int size)
{
    struct load_run run = {.n = 1};
    struct load_request req = {.steps = steps, .size_index = size};
    pthread_mutex_init(&run.lock, NULL);
    pthread_cond_init(&run.cv, NULL);
    run.reqs = &req;
    struct load_target t = {sched, &run};
    struct job_ctx c = {&run, &req};
    const struct gen_params p = workload_params(e, steps, size, 7);
    double lat = NAN;
    if (target_submit(&t, &p, &c)) {
        target_wait(&t);
        lat = req.t_done - req.t_submit;
    }
    pthread_cond_destroy(&run.cv);
    pthread_mutex_destroy(&run.lock);
    return lat;
}

#define ALONE_REPEAT 5

/* The median of ALONE_REPEAT runs alone. */
static double alone_median(const struct load_env *e, struct scheduler *s, int steps, int size)
{
    double v[ALONE_REPEAT];
    for (int i = 0; i < ALONE_REPEAT; i++)
        v[i] = run_alone(e, s, steps, size);
    for (int i = 1; i < ALONE_REPEAT; i++) /* insertion sort */
        for (int k = i; k > 0 && v[k] < v[k - 1]; k--) {
            const double x = v[k];
            v[k] = v[k - 1];
            v[k - 1] = x;
        }
    return v[ALONE_REPEAT / 2];
}

/* Single-request latency per size at 4 and 30 steps (median of ALONE_REPEAT, after a
 * warm-up run): the line a + b · steps. */
static enum status measure_alone(struct load_env *e, struct errbuf *err)
{
    struct scheduler *s;
    TRY(make_scheduler(e, SCHED_MODE_NONE, 0, &s, err));
    for (int z = 0; z < 2; z++) {
        run_alone(e, s, 2, z);
        double at[2];
        const int steps[2] = {LOAD_MIN_STEPS, LOAD_MAX_STEPS};
        for (int k = 0; k < 2; k++)
            at[k] = alone_median(e, s, steps[k], z);
        e->alone_b[z] = (at[1] - at[0]) / (LOAD_MAX_STEPS - LOAD_MIN_STEPS);
        e->alone_a[z] = at[0] - e->alone_b[z] * LOAD_MIN_STEPS;
        printf("single request, %dx%d: %.4f s at %d steps, %.4f s at %d steps\n", e->o.sizes[z],
               e->o.sizes[z], at[0], LOAD_MIN_STEPS, at[1], LOAD_MAX_STEPS);
    }
    e->calib_ref = alone_median(e, s, CALIB_STEPS, 0);
    scheduler_destroy(s);
    const double mid = (LOAD_MIN_STEPS + LOAD_MAX_STEPS) / 2.0;
    e->mean_alone = 0.5 * (e->alone_a[0] + e->alone_a[1]) + 0.5 * (e->alone_b[0] + e->alone_b[1]) * mid;
    return STATUS_OK;
}

/* A full batch of each size once, so no measured run grows the workspace. */
static void warm_up(const struct load_env *e, struct scheduler *s)
{
    struct load_run run = {0};
    pthread_mutex_init(&run.lock, NULL);
    pthread_cond_init(&run.cv, NULL);
    struct load_request reqs[2 * SD_MAX_BATCH_ROWS];
    struct job_ctx ctx[2 * SD_MAX_BATCH_ROWS];
    struct load_target t = {s, &run};
    int n = 0;
    for (int z = 0; z < 2; z++)
        for (int i = 0; i < e->o.max_rows / 2; i++, n++) {
            reqs[n] = (struct load_request){.steps = 2, .size_index = z};
            ctx[n] = (struct job_ctx){&run, &reqs[n]};
            const struct gen_params p = workload_params(e, 2, z, (uint64_t)n);
            target_submit(&t, &p, &ctx[n]);
        }
    target_wait(&t);
    pthread_cond_destroy(&run.cv);
    pthread_mutex_destroy(&run.lock);
}

/* --- one rate ------------------------------------------------------------------------------ */

struct rate_result {
    double rate, achieved;
    int offered, rejected, failed;
    double p50, p95, p99;  /* latency, s */
    double slow_p95;       /* p95 of latency / single-request latency (misses = ∞) */
    double occupancy;
    double speed;          /* calibration now / at the start (> 1: the machine is slower) */
    bool pass;
};

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double q)
{
    if (n == 0)
        return NAN;
    int i = (int)ceil(q * n) - 1;
    return sorted[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

static void summarise(const struct load_env *e, struct load_request *reqs, int n, double elapsed,
                      struct rate_result *r)
{
    double *lat = malloc(sizeof *lat * (size_t)(n ? n : 1));
    double *slow = malloc(sizeof *slow * (size_t)(n ? n : 1));
    int k = 0;
    for (int i = 0; i < n; i++) {
        const struct load_request *q = &reqs[i];
        r->rejected += !q->admitted;
        r->failed += q->admitted && !q->ok;
        const bool good = q->admitted && q->ok;
        slow[i] = good ? (q->t_done - q->t_submit) / q->slo_alone : INFINITY;
        if (good)
            lat[k++] = q->t_done - q->t_submit;
    }
    (void)e;
    qsort(lat, (size_t)k, sizeof *lat, cmp_double);
    qsort(slow, (size_t)n, sizeof *slow, cmp_double);
    r->offered = n;
    r->achieved = k / elapsed;
    r->p50 = percentile(lat, k, 0.50);
    r->p95 = percentile(lat, k, 0.95);
    r->p99 = percentile(lat, k, 0.99);
    r->slow_p95 = percentile(slow, n, 0.95);
    r->pass = r->slow_p95 <= LOAD_SLO_FACTOR;
    free(lat);
    free(slow);
}

/* Arrivals for duration seconds at `rate` (exponential gaps), then waits for all. */
static enum status run_rate(const struct load_env *e, enum sched_mode mode, int max_wait_ms,
                            double rate, struct rate_result *r, struct errbuf *err)
{
    memset(r, 0, sizeof *r);
    r->rate = rate;
    struct scheduler *s;
    /* the machine's speed now against the single-request measurement (background load
     * drifts): each request's single-request latency is scaled by it */
    TRY(make_scheduler(e, SCHED_MODE_NONE, 0, &s, err));
    r->speed = alone_median(e, s, CALIB_STEPS, 0) / e->calib_ref;
    scheduler_destroy(s);
    TRY(make_scheduler(e, mode, max_wait_ms, &s, err));
    warm_up(e, s);
    struct scheduler_stats before, after;
    scheduler_stats(s, &before);
    const int cap = (int)(rate * e->o.duration * 2) + 2 * e->o.min_requests + 16;
    struct load_request *reqs = calloc((size_t)cap, sizeof *reqs);
    struct job_ctx *ctx = calloc((size_t)cap, sizeof *ctx);
    struct load_run run = {.reqs = reqs};
    pthread_mutex_init(&run.lock, NULL);
    pthread_cond_init(&run.cv, NULL);
    struct load_target t = {s, &run};
    uint64_t rng = e->o.seed * 1000003u + (uint64_t)(rate * 1000);
    const double t0 = now_s();
    double at = t0;
    int n = 0;
    for (; n < cap; n++) {
        at += -log(1.0 - rng_unit(&rng)) / rate;
        if (at > t0 + e->o.duration && n >= e->o.min_requests)
            break;
        struct load_request *q = &reqs[n];
        q->steps = LOAD_MIN_STEPS + (int)(rng_next(&rng) % (LOAD_MAX_STEPS - LOAD_MIN_STEPS + 1));
        q->size_index = (int)(rng_next(&rng) % 2);
        q->slo_alone = (e->alone_a[q->size_index] + e->alone_b[q->size_index] * q->steps) *
                       r->speed;
        ctx[n] = (struct job_ctx){&run, q};
        const struct gen_params p = workload_params(e, q->steps, q->size_index, rng_next(&rng));
        sleep_until(at);
        q->admitted = target_submit(&t, &p, &ctx[n]);
    }
    target_wait(&t);
    const double elapsed = now_s() - t0;
    scheduler_stats(s, &after);
    const uint64_t calls = after.unet_calls - before.unet_calls;
    r->occupancy = calls ? (double)(after.unet_rows - before.unet_rows) / (double)calls / e->o.max_rows : 0;
    summarise(e, reqs, n, elapsed, r);
    scheduler_destroy(s);
    pthread_cond_destroy(&run.cv);
    pthread_mutex_destroy(&run.lock);
    free(reqs);
    free(ctx);
    return STATUS_OK;
}

/* Capacity: a burst of n requests of the same mix submitted at once (closed, no SLO):
 * completions per second and mean occupancy — the batching gain without the tail
 * latency that a shared machine's background load dominates. */
static enum status run_burst(const struct load_env *e, enum sched_mode mode, int max_wait_ms,
                             int n, double *per_s, double *occupancy, struct errbuf *err)
{
    struct scheduler *s;
    TRY(make_scheduler(e, mode, max_wait_ms, &s, err));
    warm_up(e, s);
    struct scheduler_stats before, after;
    scheduler_stats(s, &before);
    struct load_request *reqs = calloc((size_t)n, sizeof *reqs);
    struct job_ctx *ctx = calloc((size_t)n, sizeof *ctx);
    struct load_run run = {.reqs = reqs};
    pthread_mutex_init(&run.lock, NULL);
    pthread_cond_init(&run.cv, NULL);
    struct load_target t = {s, &run};
    uint64_t rng = e->o.seed * 7919u;
    const double t0 = now_s();
    int done = 0;
    for (int i = 0; reqs && ctx && i < n; i++) {
        reqs[i].steps = LOAD_MIN_STEPS + (int)(rng_next(&rng) % (LOAD_MAX_STEPS - LOAD_MIN_STEPS + 1));
        reqs[i].size_index = (int)(rng_next(&rng) % 2);
        ctx[i] = (struct job_ctx){&run, &reqs[i]};
        const struct gen_params p = workload_params(e, reqs[i].steps, reqs[i].size_index, rng_next(&rng));
        done += target_submit(&t, &p, &ctx[i]);
    }
    target_wait(&t);
    *per_s = done / (now_s() - t0);
    scheduler_stats(s, &after);
    const uint64_t calls = after.unet_calls - before.unet_calls;
    *occupancy = calls ? (double)(after.unet_rows - before.unet_rows) / (double)calls / e->o.max_rows : 0;
    scheduler_destroy(s);
    pthread_cond_destroy(&run.cv);
    pthread_mutex_destroy(&run.lock);
    free(reqs);
    free(ctx);
    return STATUS_OK;
}

static enum status capacity(const struct load_env *e, const bool *selected, int max_wait_ms,
                            struct errbuf *err)
{
    const int n = e->o.min_requests > 0 ? e->o.min_requests : 40;
    double per_s[SCHED_MODE_COUNT_] = {0};
    printf("\ncapacity: a burst of %d requests of the mix at once\n", n);
    for (int m = 0; m < SCHED_MODE_COUNT_; m++) {
        if (!selected[m])
            continue;
        double occ;
        TRY(run_burst(e, (enum sched_mode)m, max_wait_ms, n, &per_s[m], &occ, err));
        printf("  %-7s  %8.2f requests/s  occupancy %.2f\n", sched_mode_name((enum sched_mode)m),
               per_s[m], occ);
    }
    if (selected[SCHED_MODE_STEP] && selected[SCHED_MODE_REQUEST] && per_s[SCHED_MODE_REQUEST] > 0)
        printf("  step / request: %.2fx\n", per_s[SCHED_MODE_STEP] / per_s[SCHED_MODE_REQUEST]);
    if (selected[SCHED_MODE_STEP] && selected[SCHED_MODE_NONE] && per_s[SCHED_MODE_NONE] > 0)
        printf("  step / none:    %.2fx\n", per_s[SCHED_MODE_STEP] / per_s[SCHED_MODE_NONE]);
    return STATUS_OK;
}

/* --- modes and the report ------------------------------------------------------------------ */

static void print_rate(enum sched_mode m, const struct rate_result *r)
{
    printf("  %-7s  %8.2f  %8.2f  %5d  %4d  %8.4f  %8.4f  %8.4f  %6.2f  %5.2f  %5.2f  %s\n",
           sched_mode_name(m), r->rate, r->achieved, r->offered, r->rejected + r->failed, r->p50,
           r->p95, r->p99, r->slow_p95, r->occupancy, r->speed, r->pass ? "ok" : "MISS");
}

/* Sweeps the rates upward, every selected mode at each rate before the next (so the
 * modes see the same machine), each mode until its first miss; a mode's goodput is its
 * last rate that met the SLO (0 when none did). */
static enum status sweep(const struct load_env *e, const bool *selected, const double *rates,
                         int n_rates, int max_wait_ms, double *goodput, struct errbuf *err)
{
    printf("\nmax rows %d, request mode's gather wait %d ms\n", e->o.max_rows, max_wait_ms);
    printf("  %-7s  %8s  %8s  %5s  %4s  %8s  %8s  %8s  %6s  %5s  %5s\n", "mode", "rate/s",
           "done/s", "n", "miss", "p50 s", "p95 s", "p99 s", "slow95", "occ", "speed");
    bool going[SCHED_MODE_COUNT_];
    memcpy(going, selected, sizeof going);
    for (int i = 0; i < n_rates; i++) {
        bool any = false;
        for (int m = 0; m < SCHED_MODE_COUNT_; m++) {
            if (!going[m])
                continue;
            struct rate_result r;
            TRY(run_rate(e, (enum sched_mode)m, max_wait_ms, rates[i], &r, err));
            print_rate((enum sched_mode)m, &r);
            fflush(stdout);
            if (r.pass)
                goodput[m] = rates[i];
            going[m] = r.pass;
            any = true;
        }
        if (!any)
            break;
    }
    return STATUS_OK;
}

static int default_rates(const struct load_env *e, double *rates)
{
    static const double mult[] = {0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4,
                                  1.6, 1.8, 2.0, 2.5, 3, 4, 5, 6, 8};
    const int n = (int)(sizeof mult / sizeof mult[0]);
    for (int i = 0; i < n; i++)
        rates[i] = mult[i] / e->mean_alone;
    return n;
}

static enum status load_env_open(struct load_env *e, struct errbuf *err)
{
    TRY(cpu_backend_create(e->o.threads, &e->backend, err));
    struct sd_model_options mo;
    sd_model_options_default(&mo);
    mo.backend = e->backend;
    enum status s = sd_model_load(e->o.model, &mo, &e->model, err);
    if (s != STATUS_OK)
        return s;
    if (!e->o.sizes[0]) {
        e->o.sizes[0] = e->model->native_width;
        e->o.sizes[1] = (e->model->native_width * 3 / 2 + 7) / 8 * 8;
    }
    return STATUS_OK;
}

static void load_env_close(struct load_env *e)
{
    sd_model_free(e->model);
    if (e->backend)
        backend_destroy(e->backend);
}

static void print_ratios(const double *goodput, const bool *ran)
{
    printf("\ngoodput (p95 slowdown ≤ %.0f):", LOAD_SLO_FACTOR);
    for (int m = 0; m < SCHED_MODE_COUNT_; m++)
        if (ran[m])
            printf(" %s %.2f/s", sched_mode_name((enum sched_mode)m), goodput[m]);
    printf("\n");
    const double step = goodput[SCHED_MODE_STEP];
    if (ran[SCHED_MODE_STEP] && ran[SCHED_MODE_REQUEST] && goodput[SCHED_MODE_REQUEST] > 0)
        printf("step / request: %.2fx (goal ≥ 2)\n", step / goodput[SCHED_MODE_REQUEST]);
    if (ran[SCHED_MODE_STEP] && ran[SCHED_MODE_NONE] && goodput[SCHED_MODE_NONE] > 0)
        printf("step / none:    %.2fx (goal ≥ 3)\n", step / goodput[SCHED_MODE_NONE]);
}

static enum status bench_load_run(struct load_env *e, struct errbuf *err)
{
    TRY(load_env_open(e, err));
    printf("bench load: %s, %d threads, sizes %d and %d, steps %d–%d, %.1f s per rate, seed "
           "%llu\n",
           e->model->name, e->o.threads, e->o.sizes[0], e->o.sizes[1], LOAD_MIN_STEPS,
           LOAD_MAX_STEPS, e->o.duration, (unsigned long long)e->o.seed);
    TRY(measure_alone(e, err));
    printf("mean single-request latency of the mix: %.4f s; SLO: each request within %.0f× its "
           "own\n",
           e->mean_alone, LOAD_SLO_FACTOR);
    double rates[LOAD_MAX_RATES];
    int n_rates = e->o.n_rates;
    if (n_rates)
        memcpy(rates, e->o.rates, sizeof(double) * (size_t)n_rates);
    else
        n_rates = default_rates(e, rates);
    const int max_wait = e->o.max_wait_ms ? e->o.max_wait_ms : (int)ceil(e->mean_alone * 250);
    double goodput[SCHED_MODE_COUNT_] = {0};
    bool ran[SCHED_MODE_COUNT_] = {false};
    for (int m = 0; m < SCHED_MODE_COUNT_; m++)
        ran[m] = strcmp(e->o.mode, "all") == 0 ||
                 strcmp(e->o.mode, sched_mode_name((enum sched_mode)m)) == 0;
    TRY(sweep(e, ran, rates, n_rates, max_wait, goodput, err));
    print_ratios(goodput, ran);
    TRY(capacity(e, ran, max_wait, err));
    return STATUS_OK;
}

int bench_load_main(int argc, char **argv)
{
    struct load_env e = {0};
    const int rc = parse_args(argc, argv, &e.o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    log_configure(LOG_WARN, LOG_FORMAT_PLAIN, NULL);
    struct errbuf err;
    errbuf_clear(&err);
    const enum status s = bench_load_run(&e, &err);
    load_env_close(&e);
    if (s != STATUS_OK)
        fprintf(stderr, "diffusiond bench load: %s: %s\n", status_name(s), err.msg);
    return s == STATUS_OK ? 0 : 1;
}
