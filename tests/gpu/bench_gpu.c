/* tests/gpu/bench_gpu.c — the GPU benchmark of the CUDA backend on a full-size
 * checkpoint (tools/make_random_sd15.py writes an SD1.5-shaped random-weight one).
 *
 *   unet_step   one U-Net call, batch 2 (the CFG pair), latent size/8, 77 tokens, t=999;
 *   vae_decode  one VAE decode of one latent to a size×size image;
 *   *_graph     the same two captured once as a CUDA graph (engine/cuda/cuda_backend.h)
 *               and replayed: what the launch overhead costs;
 *   scheduler   images/s of B whole requests (one image each: text encode, --steps
 *               Euler steps with CFG, decode) submitted together to the batching
 *               scheduler (server/scheduler.h, step mode, max_batch_rows 2·B, driven
 *               by scheduler_poll on this thread), at each --batches size B;
 *   txt2img     one request of B images through sd_txt2img (one U-Net call per step
 *               over its 2·B rows), at the first --batches size: the scheduler's
 *               overhead is the difference.
 *   scheduler_lanes  B requests at --size and B at 1.5× it through the scheduler
 *               (graphs on) with one lane and with two (scheduler_config.lanes), at
 *               the first --batches size: images/s of each, their ratio, the calls
 *               that ran side by side (on the CPU the lanes run one after the other).
 * Plans (CUDA): the U-Net step is also timed with one planning choice changed at a time
 * (engine/cuda/cuda_plan.h); the choices faster at 2 rows (by ≥ 1 %, and not slower by
 * > 1 % at 16) are combined, the combination timed ("unet_step_best"), and when it beats
 * the base plan at 2 rows and is not slower at 16, it is the plan of every later part
 * (the "plan" entry says which): one run measures the alternatives and the figures with
 * the best of them.  --plan sets the base (default: the backend's defaults); --no-adopt
 * keeps the base throughout and runs no alternative; --exclude a,b does not run those
 * alternatives (unet_step_a, …), so they are never adopted.
 * Weights and activations in --dtype (f16 by default; f32 runs on TF32).  Each figure
 * is the median of --repeat runs after warm-up runs (the workspace grows and cuDNN
 * picks its algorithms there); the device is synchronised around every timed run.
 * A part that has used up --budget seconds is skipped (and says so), so the whole run
 * stays inside a GPU session's time.
 *
 * Usage: bench_gpu --model DIR [--size 512] [--dtype f16|bf16|f32] [--repeat 10]
 *                  [--steps 20] [--batches 1,4,8,16] [--budget 240] [--json FILE] [--cpu]
 *                  [--profile N] [--plan PLAN] [--no-adopt] [--exclude a,b]
 * --cpu runs the same on the CPU backend (f32): a smoke test of this program.
 * Exit 0 on success, 77 without a GPU, 1 on an error. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_device.h"
#include "engine/cuda/cuda_plan.h"
#include "engine/philox.h"
#include "engine/profile.h"
#include "engine/workspace.h"
#include "models/pipeline.h"
#include "models/sd_model.h"
#include "server/scheduler.h"

#define MAX_REPEAT 100
#define MAX_BATCHES 8

struct opts {
    const char *model, *json;
    int size, repeat, steps;
    enum dtype dtype;
    int batches[MAX_BATCHES], n_batches;
    double budget;
    bool cpu; /* --cpu: the CPU backend (f32) instead: a smoke test of this program */
    int profile; /* > 0: U-Net steps at 2 and 16 rows and a VAE decode with every op
                    timed between syncs, the `profile` costliest shapes each */
    const char *plan; /* --plan: the base plan's text (NULL: the defaults) */
    bool no_adopt;    /* --no-adopt: keep the base plan after the plan table */
    const char *exclude; /* --exclude: trial names ("lean,gn_fused", cuda_plan_trials) not
                            to adopt (their conformance cases failed); not run */
};

struct bench {
    struct opts o;
    struct backend *be;
    struct cuda_backend_options plan; /* CUDA: the plan every part runs with (the base,
                                         or the adopted best after bench_unet) */
    struct sd_model *m;
    struct workspace ws;
    double t_start;
    FILE *json;
    int n_json;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static bool over_budget(const struct bench *b)
{
    return now_s() - b->t_start > b->o.budget;
}

static void json_entry(struct bench *b, const char *fmt_body)
{
    if (b->json)
        fprintf(b->json, "%s  %s", b->n_json++ ? ",\n" : "", fmt_body);
}

static enum status normal_tensor(struct bench *b, int ndim, const int64_t *shape, uint64_t seed,
                                 struct tensor *t, struct errbuf *err)
{
    *t = tensor_desc(b->o.dtype, ndim, shape);
    TRY(backend_alloc(b->be, t, err));
    size_t n = (size_t)tensor_numel(t);
    float *h = malloc(n * sizeof *h);
    if (!h)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "bench: host memory");
    philox_normal_fill(seed, 0, 0, h, n);
    enum status s = backend_upload(t, h, DTYPE_F32, err);
    free(h);
    return s;
}

/* Times fn(ctx) o.repeat times after `warm` runs; median seconds in *med. */
typedef enum status (*run_fn)(struct bench *b, void *ctx, struct errbuf *err);

static enum status timed(struct bench *b, run_fn fn, void *ctx, int warm, int repeat,
                         double *med, double *best, struct errbuf *err)
{
    for (int i = 0; i < warm; i++) {
        TRY(fn(b, ctx, err));
        TRY(backend_sync(b->be, err));
    }
    double t[MAX_REPEAT];
    int n = 0;
    for (; n < repeat && n < MAX_REPEAT; n++) {
        double t0 = now_s();
        TRY(fn(b, ctx, err));
        TRY(backend_sync(b->be, err));
        t[n] = now_s() - t0;
        if (over_budget(b) && n >= 1) {
            n++;
            break;
        }
    }
    *med = median(t, n);
    *best = t[0];
    for (int i = 1; i < n; i++)
        *best = t[i] < *best ? t[i] : *best;
    return STATUS_OK;
}

/* Captures one fn(ctx) into a CUDA graph and times its replays (median seconds in
 * *median_s when not NULL; 0 without a figure).  A capture the backend cannot make is
 * reported (and the figure left out), not an error of the run. */
static enum status timed_graph(struct bench *b, const char *part, run_fn fn, void *ctx,
                               double *median_s, struct errbuf *err)
{
    if (median_s)
        *median_s = 0;
    if (b->o.cpu)
        return STATUS_OK;
    struct errbuf gerr;
    errbuf_clear(&gerr);
    struct backend_graph *g = NULL;
    enum status s = backend_graph_begin(b->be, &gerr);
    if (s == STATUS_OK) {
        enum status run = fn(b, ctx, &gerr);
        s = backend_graph_end(b->be, &g, run == STATUS_OK ? &gerr : NULL);
        if (run != STATUS_OK)
            s = run;
    }
    if (s != STATUS_OK) {
        if (backend_is_broken(b->be))
            return status_fail(err, STATUS_DEVICE, "%s graph: %s", part, gerr.msg);
        printf("%s  CUDA graph: capture failed (%s: %s); eager figures only\n", part,
               status_name(s), gerr.msg);
        backend_graph_destroy(g);
        return STATUS_OK;
    }
    double t[MAX_REPEAT];
    int n = 0;
    for (int i = 0; i < 2 && s == STATUS_OK; i++)
        s = backend_graph_launch(g, err);
    if (s == STATUS_OK)
        s = backend_sync(b->be, err);
    for (; s == STATUS_OK && n < b->o.repeat; n++) {
        double t0 = now_s();
        s = backend_graph_launch(g, err);
        if (s == STATUS_OK)
            s = backend_sync(b->be, err);
        t[n] = now_s() - t0;
    }
    backend_graph_destroy(g);
    if (s != STATUS_OK || n == 0)
        return s;
    double best = t[0];
    for (int i = 1; i < n; i++)
        best = t[i] < best ? t[i] : best;
    double med = median(t, n);
    if (median_s)
        *median_s = med;
    printf("%s  CUDA graph replay: median %.2f ms, best %.2f ms\n", part, med * 1e3, best * 1e3);
    char buf[200];
    snprintf(buf, sizeof buf, "{\"part\":\"%s_graph\",\"median_ms\":%.3f,\"best_ms\":%.3f}", part,
             med * 1e3, best * 1e3);
    json_entry(b, buf);
    return STATUS_OK;
}

/* --- U-Net step ------------------------------------------------------------------- */

#define UNET_MAX_ROWS 16

struct unet_ctx {
    struct tensor x, ctx, out; /* {rows,h,h,Cin}, {rows,77,D}, {rows,h,h,Cout} */
    float t[UNET_MAX_ROWS];
};

/* Random inputs and an output for a U-Net step of `rows` ≤ UNET_MAX_ROWS rows at t 999. */
static enum status unet_ctx_init(struct bench *b, int rows, struct unet_ctx *u,
                                 struct errbuf *err)
{
    const int64_t h = b->o.size / 8;
    memset(u, 0, sizeof *u);
    for (int i = 0; i < UNET_MAX_ROWS; i++)
        u->t[i] = 999.0f;
    enum status s = normal_tensor(b, 4, (int64_t[]){rows, h, h, unet_in_channels(b->m->unet)},
                                  1, &u->x, err);
    if (s == STATUS_OK)
        s = normal_tensor(b, 3, (int64_t[]){rows, 77, unet_cross_attention_dim(b->m->unet)}, 2,
                          &u->ctx, err);
    if (s == STATUS_OK) {
        u->out = tensor_desc(b->o.dtype, 4,
                             (int64_t[]){rows, h, h, unet_out_channels(b->m->unet)});
        s = backend_alloc(b->be, &u->out, err);
    }
    return s;
}

static void unet_ctx_free(struct unet_ctx *u)
{
    backend_free(&u->x);
    backend_free(&u->ctx);
    backend_free(&u->out);
}

static enum status unet_run(struct bench *b, void *c, struct errbuf *err)
{
    struct unet_ctx *u = c;
    return unet_forward(b->m->unet, &b->ws, &u->x, u->t, &u->ctx, &u->out, err);
}

/* A U-Net step of `rows` rows (2 = batch 1 with CFG), eager and replayed from a CUDA
 * graph (the medians in *median_s and *graph_s; 0 without a graph figure); part names
 * the JSON entries ("unet_step", "unet_step_find", ...). */
static enum status bench_unet_rows(struct bench *b, int rows, const char *part,
                                   double *median_s, double *graph_s, struct errbuf *err)
{
    *graph_s = 0;
    const int64_t h = b->o.size / 8;
    struct unet_ctx u;
    enum status s = unet_ctx_init(b, rows, &u, err);
    double med = 0, best = 0;
    if (s == STATUS_OK)
        s = timed(b, unet_run, &u, 3, b->o.repeat, &med, &best, err);
    if (s == STATUS_OK) {
        printf("%-10s %2d rows, latent %lldx%lld, %s: median %.2f ms, best %.2f ms\n", part, rows,
               (long long)h, (long long)h, dtype_name(b->o.dtype), med * 1e3, best * 1e3);
        char buf[256];
        snprintf(buf, sizeof buf,
                 "{\"part\":\"%s\",\"rows\":%d,\"latent\":%lld,\"median_ms\":%.3f,"
                 "\"best_ms\":%.3f}",
                 part, rows, (long long)h, med * 1e3, best * 1e3);
        json_entry(b, buf);
        *median_s = med;
        char gpart[64];
        snprintf(gpart, sizeof gpart, "%s_%d", part, rows);
        s = timed_graph(b, rows == 2 ? part : gpart, unet_run, &u, graph_s, err);
    }
    unet_ctx_free(&u);
    return s;
}

static void json_plan(struct bench *b, const struct cuda_backend_options *p, bool adopted)
{
    char text[CUDA_PLAN_TEXT_MAX], buf[CUDA_PLAN_TEXT_MAX + 64];
    cuda_plan_format(p, text, sizeof text);
    snprintf(buf, sizeof buf, "{\"part\":\"plan\",\"plan\":\"%s\",\"adopted\":%s}", text,
             adopted ? "true" : "false");
    json_entry(b, buf);
}

/* A part that failed without breaking the device (a kernel that cannot launch, a
 * cuBLASLt refusal, out of memory): reported and left out, the run goes on.  True when
 * the run can go on (err cleared). */
static bool part_failed_alone(struct bench *b, const char *part, struct errbuf *err)
{
    if (backend_is_broken(b->be))
        return false;
    printf("%s: %s (left out)\n", part, err->msg);
    errbuf_clear(err);
    return true;
}

/* One plan's U-Net step at 2 and 16 rows: eager and CUDA-graph-replayed medians (s; a
 * replay 0 where its capture failed). */
struct step_figs {
    double eager_2, eager_16, graph_2, graph_16;
};

static enum status bench_unet_plan(struct bench *b, const char *part, struct step_figs *f,
                                   struct errbuf *err)
{
    memset(f, 0, sizeof *f);
    enum status s = bench_unet_rows(b, 2, part, &f->eager_2, &f->graph_2, err);
    if (s == STATUS_OK)
        s = bench_unet_rows(b, UNET_MAX_ROWS, part, &f->eager_16, &f->graph_16, err);
    return s;
}

/* The decision figures: the replays when by_graph (what the scheduler runs: serve
 * replays recorded U-Net graphs by default; 0 where a capture failed, so never
 * chosen), else the eager ones. */
static void step_decision(const struct step_figs *f, bool by_graph, double *small_s,
                          double *large_s)
{
    *small_s = by_graph ? f->graph_2 : f->eager_2;
    *large_s = by_graph ? f->graph_16 : f->eager_16;
}

/* After the plan table (base_2 / base_16: the base's decision figures): the combination
 * of the trials measured faster (cuda_plan_combine), timed as "unet_step_best" and kept
 * as b->plan when faster than the base at 2 rows and not slower at 16 by more than the
 * single trials may be (cuda_plan_trial_faster's terms). */
static enum status adopt_best(struct bench *b, const struct cuda_plan_trial *t, int n,
                              double base_2, double base_16, bool by_graph, struct errbuf *err)
{
    struct cuda_backend_options best;
    const int taken = cuda_plan_combine(&b->plan, base_2, base_16, t, n, &best);
    char text[CUDA_PLAN_TEXT_MAX];
    cuda_plan_format(&best, text, sizeof text);
    if (taken == 0 || b->o.no_adopt) {
        printf("plan: %s (the base: %s)\n", text,
               taken ? "--no-adopt" : "no single change was faster");
        json_plan(b, &b->plan, false);
        return STATUS_OK;
    }
    cuda_backend_set_plan(b->be, &best);
    struct step_figs f;
    double m2 = 0, m16 = 0;
    enum status s = bench_unet_plan(b, "unet_step_best", &f, err);
    if (s != STATUS_OK && !part_failed_alone(b, "unet_step_best", err))
        return s;
    step_decision(&f, by_graph, &m2, &m16);
    const struct cuda_plan_trial combined = {.name = "combined", .plan = best,
                                             .small_s = s == STATUS_OK ? m2 : 0,
                                             .large_s = s == STATUS_OK ? m16 : 0};
    const bool adopt = cuda_plan_trial_faster(&combined, base_2, base_16);
    printf("plan: %s — %s (%s: 2 rows %.2f ms, 16 rows %.2f ms against the base's %.2f, "
           "%.2f)\n",
           text, adopt ? "adopted for the rest of the run" : "not faster combined, the base kept",
           by_graph ? "graph replays" : "eager", m2 * 1e3, m16 * 1e3, base_2 * 1e3,
           base_16 * 1e3);
    if (adopt)
        b->plan = best;
    cuda_backend_set_plan(b->be, &b->plan);
    json_plan(b, &b->plan, adopt);
    return STATUS_OK;
}

/* The step at 2 and 16 rows with the base plan (b->plan), then (on CUDA) with each
 * alternative of cuda_plan_trials ("unet_step_<name>": small convolutions as im2col +
 * GEMM at three thresholds, the other GroupNorm kernel, the projections stacked or
 * not, cuBLASLt's candidates timed, the other attention kernels, cuDNN's timed search
 * last: its workspace growth would change the GEMMs the later ones get); then
 * adopt_best.  Each is timed eagerly and replayed from a CUDA graph, and decided on the
 * replays (the eager step at 2 rows is the host's launch time, not the device's: run 7
 * measured im2col 22 % faster eagerly, where the graphs say what the device does) —
 * eagerly only when the base could not be captured.  A trial that is excluded (its
 * conformance cases failed) or, under --no-adopt, every trial is not run: a kernel that
 * broke the device in test_gpu_ops would break this run too.  A trial that fails
 * without breaking the device is left out. */
static enum status bench_unet(struct bench *b, struct errbuf *err)
{
    struct step_figs f;
    enum status s = bench_unet_plan(b, "unet_step", &f, err);
    if (b->o.cpu || s != STATUS_OK)
        return s;
    const bool by_graph = f.graph_2 > 0 && f.graph_16 > 0; /* else the eager figures */
    double base_2 = 0, base_16 = 0;
    step_decision(&f, by_graph, &base_2, &base_16);
    const struct cuda_backend_options base = b->plan;
    struct cuda_plan_trial t[CUDA_PLAN_TRIALS_MAX];
    const int n = cuda_plan_trials(&base, t, CUDA_PLAN_TRIALS_MAX);
    cuda_plan_exclude(t, n, b->o.exclude);
    for (int i = 0; i < n; i++) {
        if (t[i].excluded || b->o.no_adopt) {
            printf("unet_step_%s: not run (%s)\n", t[i].name,
                   b->o.no_adopt ? "--no-adopt" : "excluded");
            continue;
        }
        char part[64];
        snprintf(part, sizeof part, "unet_step_%s", t[i].name);
        cuda_backend_set_plan(b->be, &t[i].plan);
        s = bench_unet_plan(b, part, &f, err);
        step_decision(&f, by_graph, &t[i].small_s, &t[i].large_s);
        if (s != STATUS_OK) {
            if (!part_failed_alone(b, part, err))
                return s;
            t[i].small_s = t[i].large_s = 0; /* unmeasured: never combined */
            s = STATUS_OK;
        }
    }
    cuda_backend_set_plan(b->be, &base);
    return adopt_best(b, t, n, base_2, base_16, by_graph, err);
}

#define PROFILE_HOLD_S 0.2 /* longer than the host takes to queue a profiled U-Net step */

/* fn(ctx) once warm, then once with every op timed on the device (engine/profile.h),
 * the device held first (cuda_backend_hold) so that the host has queued the run before
 * it starts: the per-kind table and the `profile` costliest shapes on stdout, ms per
 * kind in the JSON entry `part`. */
static enum status profile_once(struct bench *b, run_fn fn, void *ctx, const char *title,
                                const char *part, int rows, struct errbuf *err)
{
    struct op_profile *prof = NULL;
    enum status s = fn(b, ctx, err);
    if (s == STATUS_OK)
        s = backend_sync(b->be, err);
    if (s == STATUS_OK)
        s = op_profile_create(&prof, err);
    if (s == STATUS_OK) {
        op_profile_attach(b->be, prof);
        /* the device held while the host queues the run: each op's time is the
         * device's, not a wait for the host to launch it */
        if (!b->o.cpu && cuda_backend_hold(b->be, PROFILE_HOLD_S, err) != STATUS_OK &&
            !part_failed_alone(b, "profile: the device hold", err))
            s = STATUS_DEVICE;
        if (s == STATUS_OK)
            s = fn(b, ctx, err);
        op_profile_detach(b->be);
    }
    if (s == STATUS_OK) {
        op_profile_print(prof, title, b->o.profile, stdout);
        char buf[512];
        snprintf(buf, sizeof buf,
                 "{\"part\":\"%s\",\"rows\":%d,\"total_ms\":%.3f,\"conv2d_ms\":%.3f,"
                 "\"attention_ms\":%.3f,\"linear_ms\":%.3f,\"group_norm_ms\":%.3f}",
                 part, rows, op_profile_seconds(prof, NULL) * 1e3,
                 op_profile_seconds(prof, "conv2d") * 1e3,
                 op_profile_seconds(prof, "attention") * 1e3,
                 op_profile_seconds(prof, "linear") * 1e3,
                 op_profile_seconds(prof, "group_norm") * 1e3);
        json_entry(b, buf);
    }
    op_profile_destroy(prof);
    return s;
}

/* One U-Net step of `rows` rows with every op timed between syncs (engine/profile.h):
 * where the time goes, per op and per shape (a warm run first: algorithm search and
 * workspace growth stay out of it). */
static enum status profile_unet(struct bench *b, int rows, struct errbuf *err)
{
    const int64_t h = b->o.size / 8;
    struct unet_ctx u;
    enum status s = unet_ctx_init(b, rows, &u, err);
    if (s == STATUS_OK) {
        char title[128];
        snprintf(title, sizeof title, "unet step, %d rows, latent %lldx%lld, %s", rows,
                 (long long)h, (long long)h, dtype_name(b->o.dtype));
        s = profile_once(b, unet_run, &u, title, "profile_unet", rows, err);
    }
    unet_ctx_free(&u);
    return s;
}

/* --- attention kernels ------------------------------------------------------------ */

struct att_ctx {
    struct tensor q, k, v, y; /* {B, N, H·D} */
    int heads;
};

static enum status att_run(struct bench *b, void *c, struct errbuf *err)
{
    (void)b;
    struct att_ctx *a = c;
    const float d = (float)(a->q.shape[2] / a->heads);
    struct attention_params p = {a->heads, 1.0f / sqrtf(d), false};
    return backend_attention(&a->q, &a->k, &a->v, &p, &a->y, err);
}

/* One attention shape on backend `be`: median ms and TFLOP/s (4·B·H·N²·D). */
static enum status bench_att_shape(struct bench *b, struct backend *be, const char *variant,
                                   int64_t batch, int64_t n, int64_t c, int heads,
                                   struct errbuf *err)
{
    struct bench bb = *b;
    bb.be = be;
    struct att_ctx a;
    memset(&a, 0, sizeof a);
    a.heads = heads;
    const int64_t shape[3] = {batch, n, c};
    enum status s = normal_tensor(&bb, 3, shape, 11, &a.q, err);
    if (s == STATUS_OK)
        s = normal_tensor(&bb, 3, shape, 12, &a.k, err);
    if (s == STATUS_OK)
        s = normal_tensor(&bb, 3, shape, 13, &a.v, err);
    if (s == STATUS_OK) {
        a.y = tensor_desc(b->o.dtype, 3, shape);
        s = backend_alloc(be, &a.y, err);
    }
    double med = 0, best = 0;
    if (s == STATUS_OK)
        s = timed(&bb, att_run, &a, 2, b->o.repeat, &med, &best, err);
    if (s == STATUS_OK) {
        const double tflops = 4.0 * (double)batch * (double)n * (double)n * (double)c / med / 1e12;
        printf("attention  [%lld,%lld,%lld] %d heads of %lld, %-8s: median %.3f ms, %.0f TFLOP/s\n",
               (long long)batch, (long long)n, (long long)c, heads, (long long)(c / heads),
               variant, med * 1e3, tflops);
        char buf[256];
        snprintf(buf, sizeof buf,
                 "{\"part\":\"attention\",\"batch\":%lld,\"tokens\":%lld,\"channels\":%lld,"
                 "\"heads\":%d,\"variant\":\"%s\",\"median_ms\":%.4f,\"tflops\":%.1f}",
                 (long long)batch, (long long)n, (long long)c, heads, variant, med * 1e3, tflops);
        json_entry(b, buf);
    }
    backend_free(&a.q);
    backend_free(&a.k);
    backend_free(&a.v);
    backend_free(&a.y);
    return s;
}

/* Backends on the defaults in the run's dtype, out[i] changed by set(&opt, i) — a
 * table's forced kernel choices; variant_backends_destroy frees them (NULLs too). */
typedef void (*variant_fn)(struct cuda_backend_options *opt, int i);

static enum status variant_backends(const struct bench *b, int n, variant_fn set,
                                    struct backend **out, struct errbuf *err)
{
    enum status s = STATUS_OK;
    for (int i = 0; i < n && s == STATUS_OK; i++) {
        struct cuda_backend_options opt;
        cuda_backend_options_default(&opt);
        opt.weight_dtype = b->o.dtype;
        set(&opt, i);
        s = cuda_backend_create(&opt, &out[i], err);
    }
    return s;
}

static void variant_backends_destroy(struct backend **be, int n)
{
    for (int i = 0; i < n; i++)
        backend_destroy(be[i]);
}

/* The attention table's kernel choices (max_d: the widest head dim each takes). */
static const struct {
    const char *name;
    int row_tiles;
    enum cuda_attention_kernel kernel;
    int max_d;
} ATT_VARIANTS[] = {{"default", 0, CUDA_ATTENTION_DEFAULT, 160},
                    {"padded", 0, CUDA_ATTENTION_PADDED, 160},
                    {"3 stages", 0, CUDA_ATTENTION_EXACT3, 160},
                    {"bk 128", 0, CUDA_ATTENTION_EXACT_BK128, 80},
                    {"1 sync", 0, CUDA_ATTENTION_EXACT_SYNC1, 160},
                    {"lean", 0, CUDA_ATTENTION_LEAN, 160},
                    {"lean mma", 0, CUDA_ATTENTION_LEAN_MMA, 160},
                    {"lean mma 1 tile", 1, CUDA_ATTENTION_LEAN_MMA, 64},
                    {"lean mma 2 tiles", 2, CUDA_ATTENTION_LEAN_MMA, 64},
                    {"exact2", 0, CUDA_ATTENTION_EXACT2, 160}};
#define N_ATT_VARIANTS ((int)(sizeof ATT_VARIANTS / sizeof ATT_VARIANTS[0]))

static void att_variant(struct cuda_backend_options *opt, int i)
{
    opt->attention_row_tiles = ATT_VARIANTS[i].row_tiles;
    opt->attention_kernel = ATT_VARIANTS[i].kernel;
}

/* The U-Net's and the VAE's self-attention shapes on the run's plan ("plan": the
 * adopted one, else the base); the flash kernel's head dims (≤ 160) also on each kernel
 * choice: the default, the padded kernel, three K/V stages, …, and (D ≤ 64) 1 and 2
 * query-row tiles per warp forced. */
static enum status bench_attention(struct bench *b, struct errbuf *err)
{
    if (b->o.cpu)
        return STATUS_OK;
    static const struct {
        int64_t batch, n, c;
        int heads;
    } shapes[] = {{2, 4096, 320, 8}, {16, 4096, 320, 8}, {2, 1024, 640, 8}, {16, 1024, 640, 8},
                  {16, 256, 1280, 8}, {1, 4096, 512, 1}};
    struct backend *forced[N_ATT_VARIANTS] = {NULL};
    enum status s = variant_backends(b, N_ATT_VARIANTS, att_variant, forced, err);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && s == STATUS_OK; i++) {
        s = bench_att_shape(b, b->be, "plan", shapes[i].batch, shapes[i].n, shapes[i].c,
                            shapes[i].heads, err);
        for (int f = 0; f < N_ATT_VARIANTS && s == STATUS_OK; f++)
            if (shapes[i].c / shapes[i].heads <= ATT_VARIANTS[f].max_d)
                s = bench_att_shape(b, forced[f], ATT_VARIANTS[f].name, shapes[i].batch,
                                    shapes[i].n, shapes[i].c, shapes[i].heads, err);
    }
    variant_backends_destroy(forced, N_ATT_VARIANTS);
    return s;
}

/* --- GroupNorm ------------------------------------------------------------------- */

#define GN_CALLS 50 /* calls per recorded graph: a replay's launch and sync spread over them */

struct gn_ctx {
    struct tensor x, gamma, beta, shift, y; /* {N,H,W,C}, {C}, {C}, {N,C}, {N,H,W,C} */
    bool with_shift;
};

static enum status gn_run(struct bench *b, void *c, struct errbuf *err)
{
    (void)b;
    struct gn_ctx *g = c;
    struct group_norm_params p = {32, 1e-5f, true, g->with_shift ? &g->shift : NULL};
    for (int i = 0; i < GN_CALLS; i++)
        TRY(backend_group_norm(&g->x, &g->gamma, &g->beta, &p, &g->y, err));
    return STATUS_OK;
}

/* One GroupNorm+SiLU shape on backend `be` (variant: its kernel): µs a call, from CUDA
 * graph replays of GN_CALLS calls. */
static enum status bench_gn_shape(struct bench *b, struct backend *be, const char *variant,
                                  const int64_t shape[4], bool with_shift, struct errbuf *err)
{
    struct bench bb = *b;
    bb.be = be;
    struct gn_ctx g;
    memset(&g, 0, sizeof g);
    g.with_shift = with_shift;
    const int64_t c = shape[3], nc[2] = {shape[0], shape[3]};
    enum status s = normal_tensor(&bb, 4, shape, 21, &g.x, err);
    if (s == STATUS_OK)
        s = normal_tensor(&bb, 1, &c, 22, &g.gamma, err);
    if (s == STATUS_OK)
        s = normal_tensor(&bb, 1, &c, 23, &g.beta, err);
    if (s == STATUS_OK)
        s = normal_tensor(&bb, 2, nc, 24, &g.shift, err);
    if (s == STATUS_OK) {
        g.y = tensor_desc(b->o.dtype, 4, shape);
        s = backend_alloc(be, &g.y, err);
    }
    if (s == STATUS_OK) /* eagerly first: scratch reserved outside the capture */
        s = gn_run(&bb, &g, err);
    if (s == STATUS_OK)
        s = backend_sync(be, err);
    double med = 0;
    if (s == STATUS_OK)
        s = timed_graph(&bb, "group_norm", gn_run, &g, &med, err);
    if (s == STATUS_OK && med > 0) {
        const double us = med / GN_CALLS * 1e6;
        printf("group_norm [%lld,%lld,%lld,%lld]%s, %-10s: %.2f µs a call\n",
               (long long)shape[0], (long long)shape[1], (long long)shape[2],
               (long long)shape[3], with_shift ? " + shift" : "", variant, us);
        char buf[256];
        snprintf(buf, sizeof buf,
                 "{\"part\":\"group_norm\",\"shape\":\"%lldx%lldx%lldx%lld\",\"shift\":%s,"
                 "\"variant\":\"%s\",\"us\":%.2f}",
                 (long long)shape[0], (long long)shape[1], (long long)shape[2],
                 (long long)shape[3], with_shift ? "true" : "false", variant, us);
        json_entry(b, buf);
    }
    backend_free(&g.x);
    backend_free(&g.gamma);
    backend_free(&g.beta);
    backend_free(&g.shift);
    backend_free(&g.y);
    return s;
}

/* The GroupNorm table's kernel choices: the three kernels, the one-block kernel,
 * clusters of up to 8, 4 and 2 blocks, the tiled pair. */
static const struct {
    const char *name;
    int kernel, cluster_max;
} GN_VARIANTS[] = {{"split", 1, 0},      {"fused", 2, 0},      {"cluster", 3, 8},
                   {"cluster ≤4", 3, 4}, {"cluster ≤2", 3, 2}, {"tile", 4, 0}};
#define N_GN_VARIANTS ((int)(sizeof GN_VARIANTS / sizeof GN_VARIANTS[0]))

static void gn_variant(struct cuda_backend_options *opt, int i)
{
    opt->group_norm_kernel = GN_VARIANTS[i].kernel;
    opt->group_norm_cluster_max = GN_VARIANTS[i].cluster_max;
}

/* The U-Net's GroupNorm+SiLU shapes at 2 and 16 rows on the run's plan and on each
 * kernel choice forced. */
static enum status bench_group_norm(struct bench *b, struct errbuf *err)
{
    if (b->o.cpu)
        return STATUS_OK;
    static const struct {
        int64_t shape[4];
        bool shift;
    } shapes[] = {{{2, 64, 64, 320}, true},  {{2, 32, 32, 640}, true},
                  {{2, 16, 16, 1280}, true}, {{2, 8, 8, 1280}, true},
                  {{16, 64, 64, 320}, true}, {{16, 32, 32, 640}, true}};
    struct backend *forced[N_GN_VARIANTS] = {NULL};
    enum status s = variant_backends(b, N_GN_VARIANTS, gn_variant, forced, err);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && s == STATUS_OK; i++) {
        if (over_budget(b))
            break;
        s = bench_gn_shape(b, b->be, "plan", shapes[i].shape, shapes[i].shift, err);
        for (int f = 0; f < N_GN_VARIANTS && s == STATUS_OK; f++)
            s = bench_gn_shape(b, forced[f], GN_VARIANTS[f].name, shapes[i].shape,
                               shapes[i].shift, err);
    }
    variant_backends_destroy(forced, N_GN_VARIANTS);
    return s;
}

/* --- VAE decode ------------------------------------------------------------------- */

struct vae_ctx {
    struct tensor z, img;
};

static enum status vae_run(struct bench *b, void *c, struct errbuf *err)
{
    struct vae_ctx *v = c;
    return vae_decode(b->m->vae, &b->ws, &v->z, &v->img, err);
}

static enum status bench_vae(struct bench *b, struct errbuf *err)
{
    const int64_t h = b->o.size / 8;
    struct vae_ctx v;
    memset(&v, 0, sizeof v);
    enum status s = normal_tensor(b, 4, (int64_t[]){1, h, h, b->m->latent_channels}, 3, &v.z, err);
    if (s == STATUS_OK) {
        v.img = tensor_desc(b->o.dtype, 4, (int64_t[]){1, b->o.size, b->o.size, 3});
        s = backend_alloc(b->be, &v.img, err);
    }
    double med = 0, best = 0;
    if (s == STATUS_OK)
        s = timed(b, vae_run, &v, 2, b->o.repeat, &med, &best, err);
    if (s == STATUS_OK) {
        printf("vae_decode 1 image %dx%d, %s: median %.2f ms, best %.2f ms\n", b->o.size,
               b->o.size, dtype_name(b->o.dtype), med * 1e3, best * 1e3);
        char buf[256];
        snprintf(buf, sizeof buf,
                 "{\"part\":\"vae_decode\",\"size\":%d,\"median_ms\":%.3f,\"best_ms\":%.3f}",
                 b->o.size, med * 1e3, best * 1e3);
        json_entry(b, buf);
        s = timed_graph(b, "vae_decode", vae_run, &v, NULL, err);
    }
    /* the VAE with the other convolution plan and GroupNorm kernels, eager */
    static const struct {
        const char *part;
        int conv_gemm_rows, gn;
    } alts[] = {{"vae_decode_im2col", 8192, -1}, {"vae_decode_gn_split", -1, 1},
                {"vae_decode_gn_fused", -1, 2}}; /* -1: the plan's */
    for (size_t i = 0; s == STATUS_OK && !b->o.cpu && i < sizeof alts / sizeof alts[0]; i++) {
        struct cuda_backend_options o = b->plan;
        if (alts[i].conv_gemm_rows >= 0)
            o.conv_gemm_rows = alts[i].conv_gemm_rows;
        if (alts[i].gn >= 0)
            o.group_norm_kernel = alts[i].gn;
        cuda_backend_set_plan(b->be, &o);
        s = timed(b, vae_run, &v, 2, b->o.repeat, &med, &best, err);
        if (s != STATUS_OK && part_failed_alone(b, alts[i].part, err)) {
            s = STATUS_OK;
        } else if (s == STATUS_OK) {
            printf("%s 1 image %dx%d, %s: median %.2f ms, best %.2f ms\n", alts[i].part,
                   b->o.size, b->o.size, dtype_name(b->o.dtype), med * 1e3, best * 1e3);
            char buf[256];
            snprintf(buf, sizeof buf,
                     "{\"part\":\"%s\",\"size\":%d,\"median_ms\":%.3f,\"best_ms\":%.3f}",
                     alts[i].part, b->o.size, med * 1e3, best * 1e3);
            json_entry(b, buf);
        }
    }
    if (!b->o.cpu)
        cuda_backend_set_plan(b->be, &b->plan);
    if (s == STATUS_OK && b->o.profile > 0) {
        char title[128];
        snprintf(title, sizeof title, "vae decode, 1 image %dx%d, %s", b->o.size, b->o.size,
                 dtype_name(b->o.dtype));
        s = profile_once(b, vae_run, &v, title, "profile_vae", 1, err);
    }
    backend_free(&v.z);
    backend_free(&v.img);
    return s;
}

/* --- whole requests ----------------------------------------------------------------- */

struct t2i_ctx {
    struct gen_params p;
    struct sd_image img[GEN_MAX_IMAGES];
    struct sd_timings tm;
};

static enum status t2i_run(struct bench *b, void *c, struct errbuf *err)
{
    struct t2i_ctx *t = c;
    enum status s = sd_txt2img(b->m, &b->ws, &t->p, 1, false, NULL, NULL, t->img, &t->tm, err);
    for (int i = 0; s == STATUS_OK && i < t->p.n; i++)
        sd_image_free(&t->img[i]);
    return s;
}

static enum status bench_txt2img(struct bench *b, int batch, struct errbuf *err)
{
    struct t2i_ctx *t = calloc(1, sizeof *t);
    if (!t)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "bench: host memory");
    gen_params_default(b->m, &t->p);
    t->p.prompt = "a photograph of an astronaut riding a horse";
    t->p.width = t->p.height = b->o.size;
    t->p.steps = b->o.steps;
    t->p.guidance = 7.5;
    t->p.sampler = SAMPLER_EULER;
    t->p.n = batch;
    double med = 0, best = 0;
    int repeat = b->o.repeat < 3 ? b->o.repeat : 3;
    enum status s = timed(b, t2i_run, t, 1, repeat, &med, &best, err);
    if (s == STATUS_OK) {
        printf("txt2img    batch %2d, %d Euler steps, CFG, %dx%d, %s: %.2f images/s "
               "(median %.3f s per batch; last: text %.3f s, denoise %.3f s, decode %.3f s)\n",
               batch, b->o.steps, b->o.size, b->o.size, dtype_name(b->o.dtype), batch / med, med,
               t->tm.text_encode, t->tm.denoise, t->tm.decode);
        char buf[320];
        snprintf(buf, sizeof buf,
                 "{\"part\":\"txt2img\",\"batch\":%d,\"steps\":%d,\"images_per_s\":%.3f,"
                 "\"median_s\":%.4f,\"text_s\":%.4f,\"denoise_s\":%.4f,\"decode_s\":%.4f}",
                 batch, b->o.steps, batch / med, med, t->tm.text_encode, t->tm.denoise,
                 t->tm.decode);
        json_entry(b, buf);
    }
    free(t);
    return s;
}

/* --- through the scheduler -------------------------------------------------------------- */

struct sched_ctx {
    int done, failed;
    char error[160];
};

static void sched_complete(void *user, struct job_result *r)
{
    struct sched_ctx *c = user;
    if (r->status == STATUS_OK) {
        c->done++;
    } else {
        c->failed++;
        snprintf(c->error, sizeof c->error, "%s: %s", status_name(r->status), r->error);
    }
}

/* Submits `batch` one-image jobs at once — and as many at size2 × size2 (0: none) —
 * and polls until all completed; seconds in *t. */
static enum status sched_round(struct bench *b, struct scheduler *s, int batch, int size2,
                               uint64_t seed0, double *t, struct errbuf *err)
{
    struct sched_ctx c;
    memset(&c, 0, sizeof c);
    struct job_callbacks cb = {NULL, sched_complete, &c};
    struct gen_params p;
    gen_params_default(b->m, &p);
    p.prompt = "a photograph of an astronaut riding a horse";
    p.width = p.height = b->o.size;
    p.steps = b->o.steps;
    p.guidance = 7.5;
    p.sampler = SAMPLER_EULER;
    p.n = 1;
    const int jobs = size2 > 0 ? 2 * batch : batch;
    double t0 = now_s();
    for (int i = 0; i < jobs; i++) {
        p.seed = seed0 + (uint64_t)i;
        p.width = p.height = i < batch ? b->o.size : size2;
        TRY(scheduler_submit(s, &p, &cb, NULL, NULL, NULL, err));
    }
    while (c.done + c.failed < jobs)
        TRY(scheduler_poll(s, NULL, NULL, err));
    TRY(backend_sync(b->be, err));
    *t = now_s() - t0;
    if (c.failed)
        return status_fail(err, STATUS_INTERNAL, "scheduler: %d job(s) failed (%s)", c.failed,
                           c.error);
    return STATUS_OK;
}

/* A step-mode scheduler over b's model: max rows 2·batch, `lanes`, graphs or not. */
static enum status sched_make(struct bench *b, int batch, int lanes, bool graphs,
                              struct scheduler **out, struct errbuf *err)
{
    struct scheduler_config cfg;
    scheduler_config_default(&cfg);
    cfg.models[0] = b->m;
    cfg.n_models = 1;
    cfg.mode = SCHED_MODE_STEP;
    cfg.max_batch_rows = 2 * batch;
    cfg.queue_capacity = batch > 32 ? 2 * batch : 64;
    /* capacity: arrival order, every running request joins the next U-Net call (the
     * default due-time order keeps a request out of a call that would make the ones in it
     * miss 2× their time alone: a latency policy, not a throughput one) */
    cfg.due_factor = -1;
    cfg.unet_graphs = graphs;
    cfg.lanes = lanes;
    return scheduler_create(&cfg, out, err);
}

/* A warm-up round, then up to two timed ones (fewer past the budget): their median. */
static enum status sched_rounds(struct bench *b, struct scheduler *s, int batch, int size2,
                                double *med, struct errbuf *err)
{
    double t[3] = {0};
    int n = 0;
    enum status st = sched_round(b, s, batch, size2, 1000, &t[0], err); /* warm-up */
    for (; st == STATUS_OK && n < 2; n++) {
        st = sched_round(b, s, batch, size2, 2000 + 100 * (uint64_t)n, &t[n], err);
        if (over_budget(b)) {
            n++;
            break;
        }
    }
    *med = st == STATUS_OK ? median(t, n) : 0;
    return st;
}

static enum status bench_scheduler(struct bench *b, int batch, bool graphs, struct errbuf *err)
{
    struct scheduler *s = NULL;
    TRY(sched_make(b, batch, 1, graphs, &s, err));
    double med = 0;
    const enum status st = sched_rounds(b, s, batch, 0, &med, err);
    struct scheduler_stats ss;
    scheduler_stats(s, &ss);
    scheduler_destroy(s);
    if (st != STATUS_OK)
        return st;
    const char *part = graphs ? "scheduler_graphs" : "scheduler";
    printf("%-16s %2d requests, %d Euler steps, CFG, %dx%d, %s: %.2f images/s "
           "(median %.3f s for the %d; mean rows per U-Net call %.1f; %llu of %llu U-Net "
           "calls replayed)\n",
           part, batch, b->o.steps, b->o.size, b->o.size, dtype_name(b->o.dtype), batch / med,
           med, batch, ss.mean_rows, (unsigned long long)ss.unet_graph_replays,
           (unsigned long long)ss.unet_calls);
    char buf[320];
    snprintf(buf, sizeof buf,
             "{\"part\":\"%s\",\"batch\":%d,\"steps\":%d,\"images_per_s\":%.3f,"
             "\"median_s\":%.4f,\"mean_rows\":%.2f,\"graph_replays\":%llu}",
             part, batch, b->o.steps, batch / med, med, ss.mean_rows,
             (unsigned long long)ss.unet_graph_replays);
    json_entry(b, buf);
    return STATUS_OK;
}

/* Lanes (scheduler_config.lanes): `batch` requests at the bench's size and `batch` at
 * 1.5× it, U-Net graphs on, with one lane (the two sizes' calls alternate) and with two
 * (side by side on two streams): images/s of each and their ratio — whether two
 * buckets' calls overlap on this card, the question the load stage's goodput rests on. */
static enum status bench_scheduler_lanes(struct bench *b, int batch, struct errbuf *err)
{
    const int size2 = (b->o.size * 3 / 2 + 7) / 8 * 8;
    double med[2] = {0, 0};
    uint64_t side[2] = {0, 0}, calls[2] = {0, 0};
    for (int lanes = 1; lanes <= 2; lanes++) {
        struct scheduler *s = NULL;
        TRY(sched_make(b, batch, lanes, true, &s, err));
        const enum status st = sched_rounds(b, s, batch, size2, &med[lanes - 1], err);
        struct scheduler_stats ss;
        scheduler_stats(s, &ss);
        scheduler_destroy(s);
        if (st != STATUS_OK)
            return st;
        side[lanes - 1] = ss.unet_concurrent_calls;
        calls[lanes - 1] = ss.unet_calls;
    }
    const double ips[2] = {2 * batch / med[0], 2 * batch / med[1]};
    printf("scheduler_lanes  %d + %d requests (%dx%d and %dx%d), %d Euler steps, CFG, graphs: "
           "1 lane %.2f images/s, 2 lanes %.2f images/s (%.2fx; %llu of %llu calls side by "
           "side)\n",
           batch, batch, b->o.size, b->o.size, size2, size2, b->o.steps, ips[0], ips[1],
           ips[1] / ips[0], (unsigned long long)side[1], (unsigned long long)calls[1]);
    char buf[320];
    snprintf(buf, sizeof buf,
             "{\"part\":\"scheduler_lanes\",\"batch\":%d,\"size2\":%d,\"steps\":%d,"
             "\"images_per_s_1_lane\":%.3f,\"images_per_s_2_lanes\":%.3f,\"ratio\":%.3f,"
             "\"side_by_side_calls\":%llu}",
             batch, size2, b->o.steps, ips[0], ips[1], ips[1] / ips[0],
             (unsigned long long)side[1]);
    json_entry(b, buf);
    return STATUS_OK;
}

/* --- main --------------------------------------------------------------------------- */

static int parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = 512;
    o->repeat = 10;
    o->steps = 20;
    o->dtype = DTYPE_F16;
    o->budget = 240;
    const int def_batches[] = {1, 4, 8, 16};
    memcpy(o->batches, def_batches, sizeof def_batches);
    o->n_batches = 4;
    static const struct option lo[] = {{"model", required_argument, 0, 'm'},
                                       {"size", required_argument, 0, 's'},
                                       {"dtype", required_argument, 0, 'd'},
                                       {"repeat", required_argument, 0, 'r'},
                                       {"steps", required_argument, 0, 't'},
                                       {"batches", required_argument, 0, 'b'},
                                       {"budget", required_argument, 0, 'B'},
                                       {"json", required_argument, 0, 'j'},
                                       {"cpu", no_argument, 0, 'c'},
                                       {"profile", required_argument, 0, 'p'},
                                       {"plan", required_argument, 0, 'P'},
                                       {"no-adopt", no_argument, 0, 'A'},
                                       {"exclude", required_argument, 0, 'X'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 's': o->size = atoi(optarg); break;
        case 'r': o->repeat = atoi(optarg); break;
        case 't': o->steps = atoi(optarg); break;
        case 'B': o->budget = atof(optarg); break;
        case 'j': o->json = optarg; break;
        case 'c': o->cpu = true; break;
        case 'p': o->profile = atoi(optarg); break;
        case 'P': o->plan = optarg; break;
        case 'A': o->no_adopt = true; break;
        case 'X': o->exclude = optarg; break;
        case 'd':
            if (!strcmp(optarg, "f16"))
                o->dtype = DTYPE_F16;
            else if (!strcmp(optarg, "bf16"))
                o->dtype = DTYPE_BF16;
            else if (!strcmp(optarg, "f32"))
                o->dtype = DTYPE_F32;
            else
                return -1;
            break;
        case 'b': {
            o->n_batches = 0;
            for (char *tok = strtok(optarg, ","); tok && o->n_batches < MAX_BATCHES;
                 tok = strtok(NULL, ","))
                o->batches[o->n_batches++] = atoi(tok);
            break;
        }
        default: return -1;
        }
    }
    if (!o->model || o->size < 64 || o->size % 64 || o->repeat < 1 || o->steps < 1)
        return -1;
    if (o->repeat > MAX_REPEAT)
        o->repeat = MAX_REPEAT;
    return 0;
}

static int finish(struct bench *b, enum status s, const struct errbuf *err)
{
    if (s != STATUS_OK)
        fprintf(stderr, "bench_gpu: %s: %s\n", status_name(s), err->msg);
    if (b->json) {
        fprintf(b->json, "\n], \"ok\": %s, \"error\": \"%s\"}\n", s == STATUS_OK ? "true" : "false",
                s == STATUS_OK ? "" : status_name(s));
        fclose(b->json);
    }
    if (b->m) {
        workspace_destroy(&b->ws);
        sd_model_free(b->m);
    }
    backend_destroy(b->be);
    return s == STATUS_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct bench b;
    memset(&b, 0, sizeof b);
    if (parse_opts(argc, argv, &b.o) != 0) {
        fprintf(stderr, "usage: bench_gpu --model DIR [--size 512] [--dtype f16|bf16|f32] "
                        "[--repeat 10] [--steps 20] [--batches 1,4,8,16] [--budget 240] "
                        "[--json FILE] [--cpu] [--profile N] [--plan PLAN] [--no-adopt] "
                        "[--exclude a,b]\n");
        return 2;
    }
    b.t_start = now_s();
    struct errbuf err;
    errbuf_clear(&err);
    cuda_backend_options_default(&b.plan);
    b.plan.weight_dtype = b.o.dtype;
    if (cuda_plan_parse(b.o.plan, &b.plan, &err) != STATUS_OK) {
        fprintf(stderr, "bench_gpu: --plan: %s\n", err.msg);
        return 2;
    }
    if (b.o.cpu)
        b.o.dtype = DTYPE_F32;
    enum status s = b.o.cpu ? cpu_backend_create(0, &b.be, &err)
                            : cuda_backend_create(&b.plan, &b.be, &err);
    if (s == STATUS_NOT_FOUND) {
        printf("skip: %s\n", err.msg);
        return 77;
    }
    char dev[256] = "cpu";
    if (!b.o.cpu)
        (void)cuda_device_describe(0, dev, sizeof dev, NULL);
    if (b.o.json && (b.json = fopen(b.o.json, "w")) != NULL)
        fprintf(b.json, "{\"device\": \"%s\", \"dtype\": \"%s\", \"size\": %d, \"results\": [\n",
                dev, dtype_name(b.o.dtype), b.o.size);
    if (s != STATUS_OK)
        return finish(&b, s, &err);
    printf("device: %s\n", dev);
    struct sd_model_options mo;
    sd_model_options_default(&mo);
    mo.backend = b.be;
    double t0 = now_s();
    s = sd_model_load(b.o.model, &mo, &b.m, &err);
    if (s != STATUS_OK)
        return finish(&b, s, &err);
    printf("model loaded in %.1f s (weights %s, device pool %.2f GiB)\n", now_s() - t0,
           dtype_name(b.o.dtype),
           b.o.cpu ? 0.0 : (double)cuda_backend_pool_bytes(b.be) / (1 << 30));
    s = workspace_init(&b.ws, b.be, b.o.dtype, 0, &err);
    if (s != STATUS_OK) {
        sd_model_free(b.m);
        b.m = NULL;
        return finish(&b, s, &err);
    }
    s = bench_unet(&b, &err);
    if (s == STATUS_OK)
        s = bench_vae(&b, &err);
    if (s == STATUS_OK)
        s = bench_attention(&b, &err);
    if (s == STATUS_OK)
        s = bench_group_norm(&b, &err);
    for (int rows = 2; s == STATUS_OK && b.o.profile > 0 && rows <= UNET_MAX_ROWS; rows *= 8)
        s = profile_unet(&b, rows, &err);
    for (int i = 0; s == STATUS_OK && i < b.o.n_batches; i++) {
        if (over_budget(&b)) {
            printf("scheduler  batch %d skipped: the %.0f s budget is spent\n", b.o.batches[i],
                   b.o.budget);
            continue;
        }
        s = bench_scheduler(&b, b.o.batches[i], false, &err);
        /* the same through recorded U-Net graphs (scheduler_config.unet_graphs) */
        if (s == STATUS_OK && !b.o.cpu && !over_budget(&b))
            s = bench_scheduler(&b, b.o.batches[i], true, &err);
    }
    if (s == STATUS_OK && b.o.n_batches > 0 && !over_budget(&b))
        s = bench_txt2img(&b, b.o.batches[0], &err);
    if (s == STATUS_OK && b.o.n_batches > 0 && !over_budget(&b)) /* the CPU's: serial */
        s = bench_scheduler_lanes(&b, b.o.batches[0], &err);
    return finish(&b, s, &err);
}
