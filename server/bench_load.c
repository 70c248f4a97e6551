/* server/bench_load.c — `diffusiond bench load`: open-loop Poisson arrivals (fixed
 * seed) of a mixed workload (steps 4–30, two image sizes, three samplers) against the
 * real server, for each batching mode; per offered rate p50/p95/p99 latency, the p95 of
 * each request's slowdown over its single-request latency, mean U-Net occupancy;
 * goodput = the highest rate whose p95 slowdown ≤ the SLO factor (2), and the ratios
 * between modes (docs/scheduler.md, docs/benchmarks.md).
 *
 * Where requests go is server/bench_load_target.h: by default a `diffusiond serve`
 * child per mode and rate, driven over HTTP (POST /v1/images/generations, one
 * connection and one client thread per request), the latency measured on the client
 * from the arrival to the end of the response; with --in-process the scheduler in this
 * process.  The single-request latencies (the SLO base) come from the same kind of
 * target: an idle `--batching none` server kept for the whole run, which also measures
 * the machine's speed before and after each rate. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/log.h"
#include "engine/threadpool.h"
#include "models/pipeline.h"
#include "models/sd_model.h"
#include "server/bench.h"
#include "server/bench_load_target.h"
#include "server/device.h"
#include "server/scheduler.h"

#define LOAD_MAX_RATES 32
#define LOAD_SLO_FACTOR 2.0
#define LOAD_MIN_STEPS 4
#define LOAD_MAX_STEPS 30
/* Steps of the GPU warm-up's requests (warm_up): enough for the call with all k of them
 * to come twice (eager, then recorded) however far apart they arrive.  With 8, GPU run
 * 10's step-mode burst still met unrecorded row counts: 2 % of its calls, each an eager
 * call that autotunes its new GEMM shapes or a recording, ~60 ms against 0.8 — the p99
 * call, and its mean 1.93 ms against request mode's 0.77. */
#define WARM_STEPS 24

#ifdef DIFFUSIOND_HAVE_SERVE
#define LOAD_HAVE_HTTP 1
#else
#define LOAD_HAVE_HTTP 0 /* a build without `serve`: only the in-process target */
#endif

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

/* --- options ------------------------------------------------------------------------- */

struct load_opts {
    const char *model;     /* NULL: the bundled model */
    const char *mode;      /* step|request|none|all */
    const char *json;      /* results file, or NULL */
    const char *trace;     /* per-request CSV file, or NULL */
    const char *device;    /* the server's --device, or NULL */
    const char *cuda_plan; /* the server's --cuda-plan, or NULL */
    bool in_process;
    double duration;       /* seconds of arrivals per rate */
    double rates[LOAD_MAX_RATES];
    bool rate_rel[LOAD_MAX_RATES]; /* rates[i] is a multiple of 1 / mean single latency */
    double start_rate;     /* where the sweep begins (0: its default) */
    bool start_rel;        /* start_rate is a multiple too */
    int n_rates;           /* 0: chosen from the single-request latency */
    int threads, max_rows, max_wait_ms;
    int lanes;             /* step mode's lanes (serve --lanes); 0: the default */
    int min_requests;      /* arrivals go on past the duration until this many */
    int refine;            /* bisections of each mode's bracket after the walk */
    double budget;         /* seconds for the whole run (0: none): no rate run starts
                              after it, the results so far are reported */
    int sizes[2];
    uint64_t seed;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: diffusiond bench load [--model PATH] [--mode step|request|none|all]\n"
            "                             [--duration S] [--rates r1,r2,...] [--threads N]\n"
            "                             [--max-rows R] [--max-wait MS] [--sizes A,B] [--seed N]\n"
            "                             [--min-requests N] [--json FILE] [--device D]\n"
            "                             [--start-rate R] [--refine N] [--trace FILE]\n"
            "                             [--cuda-plan PLAN] [--budget S] [--in-process]\n"
            "Open-loop Poisson arrivals (fixed seed) of a mixed workload — steps %d–%d, two\n"
            "sizes, Euler / Euler a / DPM++ 2M, CFG 7.5 — sent over HTTP to a `diffusiond\n"
            "serve --batching <mode>` started from this binary for each mode and rate.  Per\n"
            "mode and rate: p50/p95/p99 latency (client side, arrival to the full answer),\n"
            "p95 slowdown over each request's single-request latency (measured alone on an\n"
            "idle server), from /metrics the mean occupancy, the share of U-Net calls\n"
            "replayed from a CUDA graph, the mean call and how busy the worker was;\n"
            "goodput = the highest rate whose p95\n"
            "slowdown ≤ %.0f below the first that misses (non-200 answers and failures count\n"
            "as misses); the mode ratios.\n"
            "  --model PATH   diffusers folder or .safetensors (default: the bundled model)\n"
            "  --mode M       one mode, or all (default) in one run\n"
            "  --duration S   seconds of arrivals per rate (default 10)\n"
            "  --rates LIST   requests/s; a value ending in x is a multiple of 1 / the mean\n"
            "                 single-request latency (default 0.1x,0.15x,0.2x,0.3x,0.4x,0.5x,\n"
            "                 0.7x,1x,1.4x,2x,2.8x,4x,5.6x,8x)\n"
            "  --start-rate R where each mode's search begins (x allowed; default 0.3x with\n"
            "                 the default rates, else the lowest): up while the SLO is met,\n"
            "                 down while it is missed, until the boundary is bracketed\n"
            "  --refine N     then N bisections (geometric) of each mode's bracket: the\n"
            "                 goodput to a finer rate than the grid's (default 0)\n"
            "  --threads N    the server's CPU threads (default: every CPU)\n"
            "  --device D     the server's --device auto|cpu|cuda (default: its own, auto);\n"
            "                 with --in-process this process's (default cpu)\n"
            "  --cuda-plan P  the CUDA backend's planning choices (serve --cuda-plan)\n"
            "  --lanes N      step mode's lanes: sizes stepped side by side (serve --lanes;\n"
            "                 default: the server's, 1)\n"
            "  --max-rows R   U-Net rows per call (default 16)\n"
            "  --max-wait MS  request mode's gather wait (default: a quarter of the single-\n"
            "                 request latency of the shortest request, 4 steps at size A)\n"
            "  --sizes A,B    the two square image sizes (default: native and 1.5 × native)\n"
            "  --seed N       the workload's seed (default 1)\n"
            "  --min-requests N  arrivals continue past the duration until N (default 40)\n"
            "  --budget S     seconds for the whole run: once spent, no further rate run or\n"
            "                 burst starts, and what was measured is reported (a mode whose\n"
            "                 boundary was not bracketed yet is marked so; default: none)\n"
            "  --json FILE    also write the results as JSON\n"
            "  --trace FILE   also write every request as a CSV line: mode, rate, arrival,\n"
            "                 size, steps, sampler, outcome, latency, its single-request\n"
            "                 latency, slowdown, and the server's queue / text encode /\n"
            "                 denoise / VAE decode / total seconds from its answer\n"
            "  --in-process   the scheduler in this process instead of the server over HTTP\n"
            "                 (the only target in a build without `serve`)\n",
            LOAD_MIN_STEPS, LOAD_MAX_STEPS, LOAD_SLO_FACTOR);
}

/* "a,b,…" of positive numbers; with rel, each may end in 'x' (rel[i] set): a multiple of
 * 1 / the mean single-request latency. */
static int parse_list(const char *s, double *out, bool *rel, int max)
{
    int n = 0;
    for (char *end; *s && n < max; s = *end == ',' ? end + 1 : end) {
        out[n] = strtod(s, &end);
        if (end == s || out[n] <= 0)
            return -1;
        if (rel)
            rel[n] = *end == 'x';
        if (rel && *end == 'x')
            end++;
        n++;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    return *s ? -1 : n;
}

static bool opts_valid(const struct load_opts *o)
{
    enum sched_mode m;
    const bool mode_ok = strcmp(o->mode, "all") == 0 || sched_mode_parse(o->mode, &m, NULL) == STATUS_OK;
    return mode_ok && o->duration > 0 && o->threads >= 1 && o->max_rows >= 2 &&
           o->max_rows <= SD_MAX_BATCH_ROWS && o->max_wait_ms >= 0 && o->min_requests >= 0 &&
           o->sizes[0] % 8 == 0 && o->sizes[1] % 8 == 0;
}

static int parse_args(int argc, char **argv, struct load_opts *o)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},    {"mode", required_argument, NULL, 'M'},
        {"duration", required_argument, NULL, 'd'}, {"rates", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'},  {"max-rows", required_argument, NULL, 'R'},
        {"max-wait", required_argument, NULL, 'w'}, {"sizes", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},     {"help", no_argument, NULL, 'h'},
        {"min-requests", required_argument, NULL, 'n'}, {"json", required_argument, NULL, 'j'},
        {"in-process", no_argument, NULL, 'i'},   {"device", required_argument, NULL, 'D'},
        {"start-rate", required_argument, NULL, 'a'}, {"refine", required_argument, NULL, 'F'},
        {"trace", required_argument, NULL, 'T'}, {"cuda-plan", required_argument, NULL, 'P'},
        {"budget", required_argument, NULL, 'B'}, {"lanes", required_argument, NULL, 'L'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct load_opts){.mode = "all", .duration = 10, .threads = threadpool_cpu_count(),
                            .max_rows = 16, .seed = 1, .min_requests = 40,
                            .in_process = !LOAD_HAVE_HTTP};
    optind = 1;
    int ch;
    double sizes[2];
    bool bad = false;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm': o->model = optarg; break;
        case 'M': o->mode = optarg; break;
        case 'd': o->duration = atof(optarg); break;
        case 'r': bad |= (o->n_rates = parse_list(optarg, o->rates, o->rate_rel, LOAD_MAX_RATES)) < 1; break;
        case 't': o->threads = atoi(optarg); break;
        case 'R': o->max_rows = atoi(optarg); break;
        case 'w': o->max_wait_ms = atoi(optarg); break;
        case 's':
            bad |= parse_list(optarg, sizes, NULL, 2) != 2;
            o->sizes[0] = (int)sizes[0];
            o->sizes[1] = (int)sizes[1];
            break;
        case 'S': o->seed = strtoull(optarg, NULL, 10); break;
        case 'n': o->min_requests = atoi(optarg); break;
        case 'j': o->json = optarg; break;
        case 'T': o->trace = optarg; break;
        case 'P': o->cuda_plan = optarg; break;
        case 'L': o->lanes = atoi(optarg); bad |= o->lanes < 1 || o->lanes > BACKEND_LANES_MAX; break;
        case 'B': o->budget = atof(optarg); bad |= !(o->budget >= 0); break;
        case 'i': o->in_process = true; break;
        case 'D': o->device = optarg; break;
        case 'a': bad |= parse_list(optarg, &o->start_rate, &o->start_rel, 1) != 1; break;
        case 'F': o->refine = atoi(optarg); bad |= o->refine < 0 || o->refine > 8; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (!o->model)
        o->model = sd_model_bundled_path();
    if (!o->model)
        fprintf(stderr, "diffusiond bench load: --model is required (the bundled model is not "
                        "installed)\n");
    if (bad || optind != argc || !o->model || !opts_valid(o)) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* --- the environment and the results --------------------------------------------------- */

/* What the worker did over a run (calls_since). */
struct call_figures {
    double occupancy; /* mean rows per U-Net call over max_rows */
    double replayed;  /* share of the calls replayed from a recorded CUDA graph (on a GPU
                         one that is not ran eagerly or was being recorded) */
    double call_ms;   /* mean call, to its device's end */
    double call_p50_ms, call_p99_ms; /* the call-time histogram's bucket bounds that hold
                                        half and 99 % of the calls (∞: above the last) */
    double busy;      /* busy iterations' seconds over the wall time */
    double decoding;  /* VAE decodes' seconds over the wall time */
    double recorded;  /* graphs recorded meanwhile */
    double concurrent; /* share of the calls that ran beside another size's (lanes) */
};

struct rate_result {
    enum sched_mode mode;
    double rate, achieved;
    int offered, non200, failed;
    double p50, p95, p99;  /* latency, s */
    double slow_p95;       /* p95 of latency / single-request latency (misses = ∞) */
    struct call_figures calls; /* what the server's worker did meanwhile */
    double speed;          /* the calibration over the rate's run / at the start (> 1:
                              the machine is slower): the geometric mean of the ones
                              before and after it */
    double drift;          /* the calibration after the run / before it */
    bool pass;
};

struct load_env {
    struct backend *backend; /* in process */
    struct sd_model *model;  /* in process */
    struct load_opts o;
    struct load_target *ref; /* an idle none-mode target: single-request latencies */
    double alone_at[2][2];   /* per size: at LOAD_MIN_STEPS and LOAD_MAX_STEPS */
    double alone_a[2], alone_b[2]; /* single-request latency ≈ a + b · steps, per size */
    double mean_alone;             /* over the workload's mix */
    double calib_ref;              /* the calibration request's latency then */
    int max_wait_ms;
    struct rate_result results[LOAD_MAX_RATES * SCHED_MODE_COUNT_];
    int n_results;
    double goodput[SCHED_MODE_COUNT_];
    double capacity[SCHED_MODE_COUNT_];
    struct call_figures capacity_calls[SCHED_MODE_COUNT_];
    bool ran[SCHED_MODE_COUNT_];
    bool unbracketed[SCHED_MODE_COUNT_]; /* --budget ran out before its boundary was found */
    bool cut_short;                      /* --budget ran out: some runs were left out */
    FILE *trace; /* --trace, or NULL */
    int burst_n;
    double t_start;
};

/* Whether --budget is spent (then the run says so once and starts nothing more). */
static bool budget_spent(struct load_env *e)
{
    if (e->o.budget <= 0 || now_s() - e->t_start < e->o.budget)
        return false;
    if (!e->cut_short)
        printf("bench load: the %.0f s budget is spent: no further runs\n", e->o.budget);
    e->cut_short = true;
    return true;
}

#define CALIB_STEPS 17 /* the calibration request: size 0, the mix's mean steps */

static const enum sampler_kind SAMPLERS[3] = {SAMPLER_EULER, SAMPLER_EULER_A, SAMPLER_DPMPP_2M};

/* The workload's request: prompt, sampler and seed from seed; size from size_index. */
static void workload_request(const struct load_env *e, int steps, int size_index, uint64_t seed,
                             struct load_request *q)
{
    static const char *const prompts[4] = {"a red cube on a table", "a lighthouse at dusk",
                                           "a photograph of an astronaut riding a horse",
                                           "a bowl of fruit, oil painting"};
    *q = (struct load_request){.steps = steps, .size_index = size_index,
                               .prompt = prompts[seed % 4], .size = e->o.sizes[size_index],
                               .sampler = SAMPLERS[seed % 3], .seed = seed};
}

static enum status target_open(const struct load_env *e, enum sched_mode mode, int max_wait_ms,
                               struct load_target **out, struct errbuf *err)
{
    const struct load_target_config c = {.in_process = e->o.in_process, .mode = mode,
                                         .max_rows = e->o.max_rows, .max_wait_ms = max_wait_ms,
                                         .model = e->model, .model_path = e->o.model,
                                         .threads = e->o.threads, .device = e->o.device,
                                         .cuda_plan = e->o.cuda_plan, .lanes = e->o.lanes};
    return load_target_open(&c, out, err);
}

/* --- single requests ---------------------------------------------------------------------- */

/* One request alone, submitted and waited for: its latency (NAN when it failed). */
static double run_alone(const struct load_env *e, struct load_target *t, int steps, int size)
{
    struct load_request req;
    workload_request(e, steps, size, 7, &req);
    load_target_submit(t, &req, 0);
    load_target_wait(t);
    return req.outcome == LOAD_OK ? req.t_done - req.t_submit : NAN;
}

#define ALONE_REPEAT 5

/* The median of ALONE_REPEAT runs alone; STATUS_IO when one failed. */
static enum status alone_median(const struct load_env *e, struct load_target *t, int steps,
                                int size, double *out, struct errbuf *err)
{
    double v[ALONE_REPEAT];
    for (int i = 0; i < ALONE_REPEAT; i++)
        if (isnan(v[i] = run_alone(e, t, steps, size)))
            return status_fail(err, STATUS_IO, "a single request (%d steps, %dx%d) failed",
                               steps, e->o.sizes[size], e->o.sizes[size]);
    for (int i = 1; i < ALONE_REPEAT; i++) /* insertion sort */
        for (int k = i; k > 0 && v[k] < v[k - 1]; k--) {
            const double x = v[k];
            v[k] = v[k - 1];
            v[k - 1] = x;
        }
    *out = v[ALONE_REPEAT / 2];
    return STATUS_OK;
}

/* Single-request latency per size at 4 and 30 steps (median of ALONE_REPEAT, after a
 * warm-up run) on the idle reference target: the line a + b · steps. */
static enum status measure_alone(struct load_env *e, struct errbuf *err)
{
    for (int z = 0; z < 2; z++) {
        run_alone(e, e->ref, 2, z);
        double *at = e->alone_at[z];
        TRY(alone_median(e, e->ref, LOAD_MIN_STEPS, z, &at[0], err));
        TRY(alone_median(e, e->ref, LOAD_MAX_STEPS, z, &at[1], err));
        e->alone_b[z] = (at[1] - at[0]) / (LOAD_MAX_STEPS - LOAD_MIN_STEPS);
        e->alone_a[z] = at[0] - e->alone_b[z] * LOAD_MIN_STEPS;
        printf("single request, %dx%d: %.4f s at %d steps, %.4f s at %d steps\n", e->o.sizes[z],
               e->o.sizes[z], at[0], LOAD_MIN_STEPS, at[1], LOAD_MAX_STEPS);
    }
    TRY(alone_median(e, e->ref, CALIB_STEPS, 0, &e->calib_ref, err));
    const double mid = (LOAD_MIN_STEPS + LOAD_MAX_STEPS) / 2.0;
    e->mean_alone = 0.5 * (e->alone_a[0] + e->alone_a[1]) + 0.5 * (e->alone_b[0] + e->alone_b[1]) * mid;
    return STATUS_OK;
}

/* A full batch of each size once, so no measured run grows the workspace. */
static void warm_up(const struct load_env *e, struct load_target *t)
{
    struct load_request reqs[2 * SD_MAX_BATCH_ROWS];
    int n = 0;
    for (int z = 0; z < 2; z++)
        for (int i = 0; i < e->o.max_rows / 2; i++, n++) {
            workload_request(e, 2, z, (uint64_t)n, &reqs[n]);
            load_target_submit(t, &reqs[n], 0);
        }
    load_target_wait(t);
    if (!e->o.device || strcmp(e->o.device, "cuda") != 0)
        return;
    /* first, per size, the larger first, one request of max-rows / 2 images (at most the
     * API's default n of 8; they step and finish together: the largest U-Net call and
     * decode of the run), so that the workspace has grown for good — each growth moves
     * every graph's key — before the rounds below record */
    const int big = e->o.sizes[1] > e->o.sizes[0] ? 1 : 0;
    const int images = e->o.max_rows / 2 < 1 ? 1 : e->o.max_rows / 2 > 8 ? 8 : e->o.max_rows / 2;
    for (int j = 0; j < 2; j++) {
        workload_request(e, 3, j == 0 ? big : 1 - big, 99, &reqs[0]);
        reqs[0].images = images;
        load_target_submit(t, &reqs[0], 0);
        load_target_wait(t);
    }
    /* on the GPU, U-Net calls replay recorded graphs per (size, rows), each recorded at
     * its second call: k requests of WARM_STEPS steps at once, k = 1 .., per size, record
     * every row count the run will meet, as a server running for a while has them.  In
     * step mode the k arrive over HTTP a little apart and join call by call, so the
     * call with all k needs steps to spare to come twice (3 steps were too few when
     * the arrivals spread over more than one call) */
    for (int z = 0; z < 2; z++)
        for (int k = 1; k <= e->o.max_rows / 2; k++) {
            for (int i = 0; i < k; i++)
                workload_request(e, WARM_STEPS, z, (uint64_t)(100 + i), &reqs[i]);
            for (int i = 0; i < k; i++)
                load_target_submit(t, &reqs[i], 0);
            load_target_wait(t);
        }
}

/* --- one rate ------------------------------------------------------------------------------ */

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

static enum status summarise(const struct load_request *reqs, int n, double elapsed,
                             struct rate_result *r, struct errbuf *err)
{
    double *lat = malloc(sizeof *lat * (size_t)(n ? n : 1));
    double *slow = malloc(sizeof *slow * (size_t)(n ? n : 1));
    if (!lat || !slow) {
        free(lat);
        free(slow);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "latencies");
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        const struct load_request *q = &reqs[i];
        r->non200 += q->outcome == LOAD_REJECTED;
        r->failed += q->outcome == LOAD_FAILED || q->outcome == LOAD_PENDING;
        const bool good = q->outcome == LOAD_OK;
        slow[i] = good ? (q->t_done - q->t_submit) / q->slo_alone : INFINITY;
        if (good)
            lat[k++] = q->t_done - q->t_submit;
    }
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
    return STATUS_OK;
}

/* The upper bound (ms) of the call-time bucket that holds the q-quantile of the calls
 * counted in hist (INFINITY: the open last bucket; 0: no calls). */
static double call_quantile_ms(const uint64_t hist[SCHED_CALL_BUCKETS + 1], double q)
{
    uint64_t total = 0, cum = 0;
    for (int b = 0; b <= SCHED_CALL_BUCKETS; b++)
        total += hist[b];
    if (total == 0)
        return 0;
    for (int b = 0; b < SCHED_CALL_BUCKETS; b++) {
        cum += hist[b];
        if ((double)cum >= q * (double)total)
            return scheduler_call_bound_ms(b);
    }
    return INFINITY;
}

/* The call figures since the counts c0, over `elapsed` wall seconds. */
static enum status calls_since(const struct load_env *e, struct load_target *t,
                               const struct load_counts *c0, double elapsed,
                               struct call_figures *f, struct errbuf *err)
{
    struct load_counts c;
    TRY(load_target_counts(t, &c, err));
    const uint64_t calls = c.calls - c0->calls;
    f->occupancy = calls ? (double)(c.rows - c0->rows) / (double)calls / e->o.max_rows : 0;
    f->replayed = calls ? (double)(c.replays - c0->replays) / (double)calls : 0;
    f->call_ms = calls ? (c.unet_s - c0->unet_s) / (double)calls * 1e3 : 0;
    uint64_t hist[SCHED_CALL_BUCKETS + 1];
    for (int b = 0; b <= SCHED_CALL_BUCKETS; b++)
        hist[b] = c.call_hist[b] - c0->call_hist[b];
    f->call_p50_ms = call_quantile_ms(hist, 0.50);
    f->call_p99_ms = call_quantile_ms(hist, 0.99);
    f->busy = elapsed > 0 ? (c.busy_s - c0->busy_s) / elapsed : 0;
    f->decoding = elapsed > 0 ? (c.decode_s - c0->decode_s) / elapsed : 0;
    f->recorded = (double)(c.recorded - c0->recorded);
    f->concurrent = calls ? (double)(c.concurrent - c0->concurrent) / (double)calls : 0;
    return STATUS_OK;
}

/* Poisson arrivals for the duration (at least min_requests) into reqs[0..cap); the count. */
static int arrivals(const struct load_env *e, struct load_target *t, double rate, double speed,
                    struct load_request *reqs, int cap, double t0)
{
    uint64_t rng = e->o.seed * 1000003u + (uint64_t)(rate * 1000);
    double at = t0;
    int n = 0;
    for (; n < cap; n++) {
        at += -log(1.0 - rng_unit(&rng)) / rate;
        if (at > t0 + e->o.duration && n >= e->o.min_requests)
            break;
        const int steps = LOAD_MIN_STEPS + (int)(rng_next(&rng) % (LOAD_MAX_STEPS - LOAD_MIN_STEPS + 1));
        const int z = (int)(rng_next(&rng) % 2);
        struct load_request *q = &reqs[n];
        workload_request(e, steps, z, rng_next(&rng) >> 11, q); /* seeds < 2^53: any JSON */
        q->slo_alone = (e->alone_a[z] + e->alone_b[z] * steps) * speed;
        sleep_until(at);
        load_target_submit(t, q, at);
    }
    return n;
}

static const char *const OUTCOME_NAMES[] = {"pending", "ok", "rejected", "failed"};

/* --trace: one CSV line per request of the rate (arrival from t0). */
static void trace_rate(const struct load_env *e, enum sched_mode mode, double rate,
                       const struct load_request *reqs, int n, double t0)
{
    for (int i = 0; e->trace && i < n; i++) {
        const struct load_request *q = &reqs[i];
        const double lat = q->outcome == LOAD_OK ? q->t_done - q->t_submit : NAN;
        fprintf(e->trace, "%s,%.4f,%.4f,%d,%d,%s,%s,%.4f,%.4f,%.3f,%.4f,%.4f,%.4f,%.4f,%.4f\n",
                sched_mode_name(mode), rate, q->t_submit - t0, q->size, q->steps,
                sampler_kind_name(q->sampler), OUTCOME_NAMES[q->outcome], lat, q->slo_alone,
                lat / q->slo_alone, q->queue_s, q->encode_s, q->denoise_s, q->decode_s,
                q->total_s);
    }
}

/* The calibration again after the run (one taken at a fast or slow moment would scale
 * every slowdown of the rate): the speed becomes the geometric mean of before and
 * after, each request's single-request latency rescaled to it; the drift is kept. */
static enum status recalibrate(const struct load_env *e, double before,
                               struct load_request *reqs, int n, struct rate_result *r,
                               struct errbuf *err)
{
    double after;
    TRY(alone_median(e, e->ref, CALIB_STEPS, 0, &after, err));
    const double speed = sqrt(before * after) / e->calib_ref;
    for (int i = 0; i < n; i++)
        reqs[i].slo_alone *= speed / r->speed;
    r->speed = speed;
    r->drift = after / before;
    return STATUS_OK;
}

/* The rate's run on a fresh target of the mode: calibration on the reference, warm-up,
 * arrivals, the wait for all, occupancy; the target stopped (the server must exit 0). */
static enum status run_rate(const struct load_env *e, enum sched_mode mode, double rate,
                            struct rate_result *r, struct errbuf *err)
{
    memset(r, 0, sizeof *r);
    r->mode = mode;
    r->rate = rate;
    /* the machine's speed now against the single-request measurement (background load
     * drifts): each request's single-request latency is scaled by it — by the one
     * measured before the run at arrival, then by the mean of before and after */
    double calib;
    TRY(alone_median(e, e->ref, CALIB_STEPS, 0, &calib, err));
    r->speed = calib / e->calib_ref;
    struct load_target *t;
    TRY(target_open(e, mode, e->max_wait_ms, &t, err));
    warm_up(e, t);
    struct load_counts c0;
    const int cap = (int)(rate * e->o.duration * 2) + 2 * e->o.min_requests + 16;
    struct load_request *reqs = calloc((size_t)cap, sizeof *reqs);
    enum status s = reqs ? load_target_counts(t, &c0, err)
                         : status_fail(err, STATUS_OUT_OF_MEMORY, "requests");
    if (s == STATUS_OK) {
        const double t0 = now_s();
        const int n = arrivals(e, t, rate, r->speed, reqs, cap, t0);
        load_target_wait(t);
        const double elapsed = now_s() - t0;
        s = calls_since(e, t, &c0, elapsed, &r->calls, err);
        if (s == STATUS_OK)
            s = recalibrate(e, calib, reqs, n, r, err);
        if (s == STATUS_OK)
            s = summarise(reqs, n, elapsed, r, err);
        trace_rate(e, mode, rate, reqs, n, t0);
        if (s == STATUS_OK && r->non200 + r->failed > 0)
            fprintf(stderr, "bench load: %s at %.2f/s: %d answers not 200, %d failed; the first: %s\n",
                    sched_mode_name(mode), rate, r->non200, r->failed, load_target_first_error(t));
    }
    struct errbuf cerr;
    errbuf_clear(&cerr);
    const enum status cs = load_target_close(t, s == STATUS_OK ? err : &cerr);
    free(reqs);
    return s != STATUS_OK ? s : cs;
}

/* Capacity: a burst of n requests of the same mix submitted at once (closed, no SLO):
 * completions per second and mean occupancy — the batching gain without the tail
 * latency that a shared machine's background load dominates. */
static enum status run_burst(const struct load_env *e, enum sched_mode mode, int n, double *per_s,
                             struct call_figures *f, struct errbuf *err)
{
    struct load_target *t;
    TRY(target_open(e, mode, e->max_wait_ms, &t, err));
    warm_up(e, t);
    struct load_counts c0;
    struct load_request *reqs = calloc((size_t)n, sizeof *reqs);
    enum status s = reqs ? load_target_counts(t, &c0, err)
                         : status_fail(err, STATUS_OUT_OF_MEMORY, "requests");
    if (s == STATUS_OK) {
        uint64_t rng = e->o.seed * 7919u;
        const double t0 = now_s();
        for (int i = 0; i < n; i++) {
            const int steps = LOAD_MIN_STEPS + (int)(rng_next(&rng) % (LOAD_MAX_STEPS - LOAD_MIN_STEPS + 1));
            const int z = (int)(rng_next(&rng) % 2);
            workload_request(e, steps, z, rng_next(&rng) >> 11, &reqs[i]);
            load_target_submit(t, &reqs[i], t0);
        }
        load_target_wait(t);
        const double elapsed = now_s() - t0;
        int done = 0;
        for (int i = 0; i < n; i++)
            done += reqs[i].outcome == LOAD_OK;
        *per_s = done / elapsed;
        s = calls_since(e, t, &c0, elapsed, f, err);
    }
    struct errbuf cerr;
    errbuf_clear(&cerr);
    const enum status cs = load_target_close(t, s == STATUS_OK ? err : &cerr);
    free(reqs);
    return s != STATUS_OK ? s : cs;
}

static enum status capacity(struct load_env *e, struct errbuf *err)
{
    e->burst_n = e->o.min_requests > 0 ? e->o.min_requests : 40;
    printf("\ncapacity: a burst of %d requests of the mix at once\n", e->burst_n);
    for (int m = 0; m < SCHED_MODE_COUNT_; m++) {
        if (!e->ran[m])
            continue;
        if (budget_spent(e)) {
            printf("  %-7s  skipped (the budget is spent)\n", sched_mode_name((enum sched_mode)m));
            continue;
        }
        struct call_figures f;
        TRY(run_burst(e, (enum sched_mode)m, e->burst_n, &e->capacity[m], &f, err));
        e->capacity_calls[m] = f;
        printf("  %-7s  %8.2f requests/s  occupancy %.2f  graph replays %.2f  call %.2f ms "
               "(p50 ≤ %g, p99 ≤ %g)  busy %.2f  decoding %.2f  graphs recorded %.0f  "
               "side by side %.2f\n",
               sched_mode_name((enum sched_mode)m), e->capacity[m], f.occupancy, f.replayed,
               f.call_ms, f.call_p50_ms, f.call_p99_ms, f.busy, f.decoding, f.recorded,
               f.concurrent);
    }
    const double *c = e->capacity;
    if (e->ran[SCHED_MODE_STEP] && e->ran[SCHED_MODE_REQUEST] && c[SCHED_MODE_REQUEST] > 0)
        printf("  step / request: %.2fx\n", c[SCHED_MODE_STEP] / c[SCHED_MODE_REQUEST]);
    if (e->ran[SCHED_MODE_STEP] && e->ran[SCHED_MODE_NONE] && c[SCHED_MODE_NONE] > 0)
        printf("  step / none:    %.2fx\n", c[SCHED_MODE_STEP] / c[SCHED_MODE_NONE]);
    return STATUS_OK;
}

/* --- modes and the report ------------------------------------------------------------------ */

static void print_rate(const struct rate_result *r)
{
    printf("  %-7s  %8.2f  %8.2f  %5d  %5d  %5d  %8.4f  %8.4f  %8.4f  %6.2f  %5.2f  %5.2f  %7.2f  "
           "%5.2f  %5.2f  %5.2f  %s\n",
           sched_mode_name(r->mode), r->rate, r->achieved, r->offered, r->non200, r->failed,
           r->p50, r->p95, r->p99, r->slow_p95, r->calls.occupancy, r->calls.replayed,
           r->calls.call_ms, r->calls.busy, r->speed, r->drift, r->pass ? "ok" : "MISS");
}

/* One mode's walk along the sorted rates: up from the start while it passes, down
 * while it misses; it ends at the first miss above a pass or the first pass below a
 * miss (p95 slowdown is taken to grow with the rate). */
struct walk {
    int idx, dir; /* dir: 0 before the first run, +1 going up, -1 going down */
    bool done;
    double miss;  /* the lowest rate that missed (0: none yet) */
};

static void walk_step(struct walk *w, bool pass, int n_rates)
{
    if (pass ? w->dir < 0 : w->dir > 0) { /* the boundary is bracketed */
        w->done = true;
        return;
    }
    w->dir = pass ? +1 : -1;
    w->idx += w->dir;
    w->done = w->idx < 0 || w->idx >= n_rates;
}

/* --refine: N rounds in which every mode with a bracket (a pass below a miss) runs the
 * geometric midpoint and keeps the half the boundary is in. */
static enum status refine(struct load_env *e, struct walk *w, struct errbuf *err)
{
    for (int k = 0; k < e->o.refine; k++)
        for (int m = 0; m < SCHED_MODE_COUNT_; m++) {
            const double lo = e->goodput[m], hi = w[m].miss;
            if (!e->ran[m] || lo <= 0 || hi <= lo ||
                e->n_results >= LOAD_MAX_RATES * SCHED_MODE_COUNT_)
                continue;
            if (budget_spent(e))
                return STATUS_OK;
            struct rate_result *r = &e->results[e->n_results];
            TRY(run_rate(e, (enum sched_mode)m, sqrt(lo * hi), r, err));
            e->n_results++;
            print_rate(r);
            fflush(stdout);
            if (r->pass)
                e->goodput[m] = r->rate;
            else
                w[m].miss = r->rate;
        }
    return STATUS_OK;
}

/* Finds each selected mode's goodput on the sorted rates, bracketing from rates[start]:
 * round by round every mode still walking runs its next rate (so the modes see the
 * same machine, background load drifts); a mode's goodput is the highest rate that met
 * the SLO below its first miss (0 when none did). */
static enum status sweep(struct load_env *e, const double *rates, int n_rates, int start,
                         struct errbuf *err)
{
    printf("\nmax rows %d, request mode's gather wait %d ms\n", e->o.max_rows, e->max_wait_ms);
    printf("  %-7s  %8s  %8s  %5s  %5s  %5s  %8s  %8s  %8s  %6s  %5s  %5s  %7s  %5s  %5s  %5s\n",
           "mode", "rate/s", "done/s", "n", "!200", "fail", "p50 s", "p95 s", "p99 s", "slow95",
           "occ", "graph", "call ms", "busy", "speed", "drift");
    struct walk w[SCHED_MODE_COUNT_];
    for (int m = 0; m < SCHED_MODE_COUNT_; m++)
        w[m] = (struct walk){.idx = start, .done = !e->ran[m]};
    for (bool any = true; any;) {
        any = false;
        for (int m = 0; m < SCHED_MODE_COUNT_; m++) {
            if (w[m].done || e->n_results >= LOAD_MAX_RATES * SCHED_MODE_COUNT_)
                continue;
            if (budget_spent(e)) { /* the modes still walking have no boundary yet */
                for (int k = 0; k < SCHED_MODE_COUNT_; k++)
                    e->unbracketed[k] = !w[k].done;
                return STATUS_OK;
            }
            struct rate_result *r = &e->results[e->n_results];
            TRY(run_rate(e, (enum sched_mode)m, rates[w[m].idx], r, err));
            e->n_results++;
            print_rate(r);
            fflush(stdout);
            if (r->pass && r->rate > e->goodput[m])
                e->goodput[m] = r->rate;
            if (!r->pass && (w[m].miss == 0 || r->rate < w[m].miss))
                w[m].miss = r->rate;
            walk_step(&w[m], r->pass, n_rates);
            any = true;
        }
    }
    return refine(e, w, err);
}

/* The rates in requests/s, sorted: --rates (its 'x' values scaled), else the default
 * multiples of 1 / the mean single-request latency; *start: the index where every
 * mode begins (--start-rate's nearest rate at or above it; else the default grid's
 * 0.3x, or the lowest of --rates). */
static int sweep_rates(const struct load_env *e, double *rates, int *start)
{
    static const double mult[] = {0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0,
                                  1.4, 2.0, 2.8, 4.0, 5.6, 8.0};
    int n = e->o.n_rates;
    for (int i = 0; i < n; i++)
        rates[i] = e->o.rate_rel[i] ? e->o.rates[i] / e->mean_alone : e->o.rates[i];
    if (!n) {
        n = (int)(sizeof mult / sizeof mult[0]);
        for (int i = 0; i < n; i++)
            rates[i] = mult[i] / e->mean_alone;
    }
    qsort(rates, (size_t)n, sizeof *rates, cmp_double);
    double from = e->o.n_rates ? rates[0] : 0.3 / e->mean_alone;
    if (e->o.start_rate > 0)
        from = e->o.start_rel ? e->o.start_rate / e->mean_alone : e->o.start_rate;
    *start = 0;
    while (*start < n - 1 && rates[*start] < from * (1 - 1e-9))
        ++*start;
    return n;
}

static void print_ratios(const struct load_env *e)
{
    printf("\ngoodput (p95 slowdown ≤ %.0f):", LOAD_SLO_FACTOR);
    for (int m = 0; m < SCHED_MODE_COUNT_; m++)
        if (e->ran[m])
            printf(" %s %.2f/s%s", sched_mode_name((enum sched_mode)m), e->goodput[m],
                   e->unbracketed[m] ? " (not bracketed: the budget ran out)" : "");
    printf("\n");
    const double *g = e->goodput;
    if (e->ran[SCHED_MODE_STEP] && e->ran[SCHED_MODE_REQUEST] && g[SCHED_MODE_REQUEST] > 0)
        printf("step / request: %.2fx (goal ≥ 2)\n", g[SCHED_MODE_STEP] / g[SCHED_MODE_REQUEST]);
    if (e->ran[SCHED_MODE_STEP] && e->ran[SCHED_MODE_NONE] && g[SCHED_MODE_NONE] > 0)
        printf("step / none:    %.2fx (goal ≥ 3)\n", g[SCHED_MODE_STEP] / g[SCHED_MODE_NONE]);
    if (e->cut_short)
        printf("(the --budget ran out: a goodput not bracketed is only the highest rate met so "
               "far)\n");
}

/* --- the JSON file ----------------------------------------------------------------------- */

static void json_num(FILE *f, const char *key, double v, const char *after)
{
    if (isfinite(v))
        fprintf(f, "\"%s\": %.6g%s", key, v, after);
    else
        fprintf(f, "\"%s\": null%s", key, after);
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : NAN;
}

static void json_result(FILE *f, const struct rate_result *r, bool last)
{
    fprintf(f, "    {\"mode\": \"%s\", ", sched_mode_name(r->mode));
    json_num(f, "rate", r->rate, ", ");
    json_num(f, "achieved", r->achieved, ", ");
    fprintf(f, "\"offered\": %d, \"non_200\": %d, \"failed\": %d, ", r->offered, r->non200,
            r->failed);
    json_num(f, "p50_s", r->p50, ", ");
    json_num(f, "p95_s", r->p95, ", ");
    json_num(f, "p99_s", r->p99, ", ");
    json_num(f, "slowdown_p95", r->slow_p95, ", ");
    json_num(f, "occupancy", r->calls.occupancy, ", ");
    json_num(f, "graph_replayed", r->calls.replayed, ", ");
    json_num(f, "unet_call_ms", r->calls.call_ms, ", ");
    json_num(f, "concurrent_calls", r->calls.concurrent, ", ");
    json_num(f, "worker_busy", r->calls.busy, ", ");
    json_num(f, "speed", r->speed, ", ");
    json_num(f, "calibration_drift", r->drift, ", ");
    fprintf(f, "\"pass\": %s}%s\n", r->pass ? "true" : "false", last ? "" : ",");
}

static void json_modes(FILE *f, const struct load_env *e, const char *key, const double *v,
                       const char *after)
{
    fprintf(f, "  \"%s\": {", key);
    bool first = true;
    for (int m = 0; m < SCHED_MODE_COUNT_; m++)
        if (e->ran[m]) {
            fprintf(f, "%s", first ? "" : ", ");
            json_num(f, sched_mode_name((enum sched_mode)m), v[m], "");
            first = false;
        }
    fprintf(f, "}%s\n", after);
}

/* One call figure (at `offset` in struct call_figures) of each mode's burst. */
static void json_capacity(FILE *f, const struct load_env *e, const char *key, size_t offset)
{
    double v[SCHED_MODE_COUNT_];
    for (int m = 0; m < SCHED_MODE_COUNT_; m++)
        memcpy(&v[m], (const char *)&e->capacity_calls[m] + offset, sizeof v[m]);
    json_modes(f, e, key, v, ",");
}

static enum status write_json(const struct load_env *e, const char *path, struct errbuf *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return status_fail(err, STATUS_IO, "--json %s: cannot write", path);
    fprintf(f, "{\n  \"target\": \"%s\", \"device\": \"%s\", \"model\": \"%s\", \"threads\": %d, \"max_rows\": %d, "
               "\"lanes\": %d, \"max_wait_ms\": %d,\n  \"sizes\": [%d, %d], \"steps\": [%d, %d], "
               "\"duration_s\": %g, \"min_requests\": %d, \"seed\": %llu, \"slo_factor\": %g,\n",
            e->o.in_process ? "in-process" : "http", e->o.device ? e->o.device : "default",
            e->o.model, e->o.threads, e->o.max_rows, e->o.lanes > 0 ? e->o.lanes : 1,
            e->max_wait_ms, e->o.sizes[0], e->o.sizes[1], LOAD_MIN_STEPS, LOAD_MAX_STEPS,
            e->o.duration, e->o.min_requests, (unsigned long long)e->o.seed, LOAD_SLO_FACTOR);
    fprintf(f, "  \"single_request_s\": [");
    for (int z = 0; z < 2; z++)
        fprintf(f, "%s{\"size\": %d, \"steps_%d\": %.6g, \"steps_%d\": %.6g}", z ? ", " : "",
                e->o.sizes[z], LOAD_MIN_STEPS, e->alone_at[z][0], LOAD_MAX_STEPS, e->alone_at[z][1]);
    fprintf(f, "],\n  ");
    json_num(f, "mean_single_request_s", e->mean_alone, ",\n");
    fprintf(f, "  \"rates\": [\n");
    for (int i = 0; i < e->n_results; i++)
        json_result(f, &e->results[i], i == e->n_results - 1);
    fprintf(f, "  ],\n");
    json_modes(f, e, "goodput", e->goodput, ",");
    fprintf(f, "  \"ratios\": {");
    json_num(f, "step_request", ratio(e->goodput[SCHED_MODE_STEP], e->goodput[SCHED_MODE_REQUEST]), ", ");
    json_num(f, "step_none", ratio(e->goodput[SCHED_MODE_STEP], e->goodput[SCHED_MODE_NONE]), "},\n");
    fprintf(f, "  \"capacity_burst\": %d,\n", e->burst_n);
    json_modes(f, e, "capacity_per_s", e->capacity, ",");
    json_capacity(f, e, "capacity_occupancy", offsetof(struct call_figures, occupancy));
    json_capacity(f, e, "capacity_graph_replayed", offsetof(struct call_figures, replayed));
    json_capacity(f, e, "capacity_unet_call_ms", offsetof(struct call_figures, call_ms));
    json_capacity(f, e, "capacity_unet_call_p50_ms", offsetof(struct call_figures, call_p50_ms));
    json_capacity(f, e, "capacity_unet_call_p99_ms", offsetof(struct call_figures, call_p99_ms));
    json_capacity(f, e, "capacity_worker_busy", offsetof(struct call_figures, busy));
    json_capacity(f, e, "capacity_decoding", offsetof(struct call_figures, decoding));
    json_capacity(f, e, "capacity_graphs_recorded", offsetof(struct call_figures, recorded));
    json_capacity(f, e, "capacity_concurrent_calls", offsetof(struct call_figures, concurrent));
    double unbracketed[SCHED_MODE_COUNT_];
    for (int m = 0; m < SCHED_MODE_COUNT_; m++)
        unbracketed[m] = e->unbracketed[m];
    json_modes(f, e, "unbracketed", unbracketed, ",");
    fprintf(f, "  \"complete\": %s\n}\n", e->cut_short ? "false" : "true");
    return fclose(f) == 0 ? STATUS_OK : status_fail(err, STATUS_IO, "--json %s: write failed", path);
}

/* --- the run ------------------------------------------------------------------------------- */

static enum status load_env_open(struct load_env *e, struct errbuf *err)
{
    if (e->o.in_process) { /* --device as serve takes it; cpu when not given */
        TRY(device_backend_create(e->o.device ? e->o.device : "cpu", NULL, e->o.cuda_plan,
                                  e->o.threads, &e->backend, NULL, err));
        struct sd_model_options mo;
        sd_model_options_default(&mo);
        mo.backend = e->backend;
        TRY(sd_model_load(e->o.model, &mo, &e->model, err));
    }
    if (e->o.trace) {
        if (!(e->trace = fopen(e->o.trace, "w")))
            return status_fail(err, STATUS_IO, "--trace %s: %s", e->o.trace, strerror(errno));
        fprintf(e->trace, "mode,rate,arrival_s,size,steps,sampler,outcome,latency_s,alone_s,"
                          "slowdown,queue_s,encode_s,denoise_s,decode_s,total_s\n");
    }
    TRY(target_open(e, SCHED_MODE_NONE, 0, &e->ref, err));
    if (!e->o.sizes[0]) {
        int w;
        TRY(load_target_native_size(e->ref, &w, err));
        e->o.sizes[0] = w;
        e->o.sizes[1] = (w * 3 / 2 + 7) / 8 * 8;
    }
    return STATUS_OK;
}

static enum status load_env_close(struct load_env *e, struct errbuf *err)
{
    enum status s = load_target_close(e->ref, err);
    e->ref = NULL;
    if (e->trace && fclose(e->trace) != 0 && s == STATUS_OK)
        s = status_fail(err, STATUS_IO, "--trace %s: %s", e->o.trace, strerror(errno));
    e->trace = NULL;
    sd_model_free(e->model);
    if (e->backend)
        backend_destroy(e->backend);
    return s;
}

static enum status bench_load_run(struct load_env *e, struct errbuf *err)
{
    e->t_start = now_s();
    TRY(load_env_open(e, err));
    printf("bench load: %s, %s%s%s, %d threads, sizes %d and %d, steps %d–%d, %.1f s per rate, "
           "seed %llu\n",
           e->o.model, e->o.in_process ? "scheduler in process" : "diffusiond serve over HTTP",
           e->o.device ? " --device " : "", e->o.device ? e->o.device : "", e->o.threads, e->o.sizes[0], e->o.sizes[1], LOAD_MIN_STEPS, LOAD_MAX_STEPS,
           e->o.duration, (unsigned long long)e->o.seed);
    TRY(measure_alone(e, err));
    printf("mean single-request latency of the mix: %.4f s; SLO: each request within %.0f× its "
           "own\n",
           e->mean_alone, LOAD_SLO_FACTOR);
    double rates[LOAD_MAX_RATES];
    int start;
    const int n_rates = sweep_rates(e, rates, &start);
    /* A quarter of the shortest request's single latency: a longer gather wait alone
     * would put every short request over the SLO at any rate. */
    e->max_wait_ms = e->o.max_wait_ms ? e->o.max_wait_ms : (int)ceil(e->alone_at[0][0] * 250);
    for (int m = 0; m < SCHED_MODE_COUNT_; m++)
        e->ran[m] = strcmp(e->o.mode, "all") == 0 ||
                    strcmp(e->o.mode, sched_mode_name((enum sched_mode)m)) == 0;
    TRY(sweep(e, rates, n_rates, start, err));
    print_ratios(e);
    fflush(stdout);
    TRY(capacity(e, err));
    printf("\nbench load: done in %.0f s\n", now_s() - e->t_start);
    return e->o.json ? write_json(e, e->o.json, err) : STATUS_OK;
}

int bench_load_main(int argc, char **argv)
{
    struct load_env *e = calloc(1, sizeof *e);
    if (!e)
        return 1;
    int rc = parse_args(argc, argv, &e->o);
    if (rc != 0) {
        free(e);
        return rc == 1 ? 0 : rc;
    }
    if (!LOAD_HAVE_HTTP && !e->o.in_process)
        e->o.in_process = true;
    log_configure(LOG_WARN, LOG_FORMAT_PLAIN, NULL);
    struct errbuf err, cerr;
    errbuf_clear(&err);
    errbuf_clear(&cerr);
    enum status s = bench_load_run(e, &err);
    const enum status cs = load_env_close(e, s == STATUS_OK ? &err : &cerr);
    if (s == STATUS_OK)
        s = cs;
    if (s != STATUS_OK)
        fprintf(stderr, "diffusiond bench load: %s: %s\n", status_name(s), err.msg);
    free(e);
    return s == STATUS_OK ? 0 : 1;
}
