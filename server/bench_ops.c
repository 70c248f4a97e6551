/* server/bench_ops.c — `diffusiond bench ops`: the engine's heaviest CPU ops beside
 * the machine's measured FMA peak.
 *
 *   peak     FMA throughput on every thread (AVX-512 where the CPU has it, and AVX2)
 *   sgemm    2048³ through backend_linear (AVX-512 kernels, then the portable CBLAS
 *            path) and one raw cblas_sgemm with OpenBLAS's own threads
 *   conv     3×3 at the SD1.5 U-Net's shapes for 512×512 images (latent 64×64),
 *            its largest 1×1, each on both GEMM paths
 *   attn     SD1.5's largest self-attention (q/k/v {2,4096,320}, 8 heads of 40:
 *            batch 2 = the CFG pair) and a cross-attention against 77 tokens
 *   rss      peak resident memory that self-attention adds, measured in a child
 *
 * Every figure is the median of --repeat timed runs after one warm-up run.  The
 * machine is shared with whatever else runs, so the figures are as noisy as it.
 */
#include <cblas.h>
#include <getopt.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_sgemm.h"
#include "engine/threadpool.h"
#include "server/bench.h"

/* OpenBLAS's thread control (weak: another CBLAS links too). */
extern void openblas_set_num_threads(int n) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

#define BENCH_ROWS_MAX 32
#define REPEAT_MAX 1000

struct bench_opts {
    int threads;
    int repeat;
    const char *json;
    const char *only; /* comma-separated groups (peak,sgemm,conv,attn,rss) or NULL: all */
};

/* Wall and process-CPU time of the timed runs.  CPU time counts only what this
 * process's threads ran, so GFLOP per CPU-second stays meaningful when other
 * processes take turns on the cores (wall-clock figures then drop). */
struct timing {
    double wall;  /* median */
    double best;  /* shortest */
    double cpu;   /* median process CPU seconds */
    double cpu_best; /* least process CPU seconds */
};

struct bench_row {
    char name[64];
    char path[16];   /* avx512, cblas, openblas, ... */
    double gflop;    /* work of one run; 0 for non-FLOP rows */
    struct timing t;
    double value;    /* GFLOP/s (wall, median run), or the row's own unit */
    const char *unit;
};

struct bench_ctx {
    struct bench_opts opts;
    struct backend *be;
    struct threadpool *pool; /* the FMA peak and raw CBLAS loops */
    double peak;             /* GFLOP/s, the widest ISA, all threads, best run */
    double core_peak;        /* GFLOP per CPU-second of the same FMA loop */
    struct bench_row rows[BENCH_ROWS_MAX];
    int n_rows;
};

typedef enum status (*bench_fn)(void *arg, struct errbuf *err);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Times `repeat` runs of fn after one warm-up run. */
static enum status time_runs(bench_fn fn, void *arg, int repeat, struct timing *t,
                             struct errbuf *err)
{
    double wall[REPEAT_MAX], cpu[REPEAT_MAX];
    enum status s = fn(arg, err);
    for (int i = 0; i < repeat && s == STATUS_OK; i++) {
        double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        s = fn(arg, err);
        wall[i] = clock_s(CLOCK_MONOTONIC) - w0;
        cpu[i] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    if (s != STATUS_OK)
        return s;
    t->wall = median_of(wall, repeat);
    t->best = wall[0];
    t->cpu = median_of(cpu, repeat);
    t->cpu_best = cpu[0];
    return STATUS_OK;
}

static struct bench_row *add_row(struct bench_ctx *c, const char *name, const char *path,
                                 double gflop, const struct timing *t)
{
    if (c->n_rows == BENCH_ROWS_MAX)
        return NULL;
    struct bench_row *r = &c->rows[c->n_rows++];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->gflop = gflop;
    r->t = *t;
    r->value = gflop > 0 && t->wall > 0 ? gflop / t->wall : 0;
    r->unit = "GFLOP/s";
    return r;
}

/* --- FMA peak ------------------------------------------------------------------ */

enum { FMA_ITERS = 1 << 22 };

/* 24 independent accumulators: more than the 2 ports × 4 cycles latency needs. */
__attribute__((target("avx512f"), noinline)) static float fma_avx512(long iters)
{
    __m512 acc[24], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < 24; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) static float fma_avx2(long iters)
{
    __m256 acc[12], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, acc[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[7];
}

struct fma_job {
    struct threadpool *pool;
    bool avx512;
    volatile float sink[64];
};

static void fma_items(void *ctx, size_t begin, size_t end, int thread)
{
    struct fma_job *j = ctx;
    for (size_t i = begin; i < end; i++)
        j->sink[thread & 63] = j->avx512 ? fma_avx512(FMA_ITERS) : fma_avx2(FMA_ITERS);
}

static enum status fma_run(void *arg, struct errbuf *err)
{
    (void)err;
    struct fma_job *j = arg;
    int n = threadpool_size(j->pool);
    threadpool_parallel_for(j->pool, (size_t)n, 1, fma_items, j);
    return STATUS_OK;
}

static enum status bench_peak(struct bench_ctx *c, struct errbuf *err)
{
    __builtin_cpu_init();
    bool has512 = __builtin_cpu_supports("avx512f");
    bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int threads = threadpool_size(c->pool);
    for (int wide = 0; wide < 2; wide++) {
        bool avx512 = wide == 0;
        if (avx512 ? !has512 : !has2)
            continue;
        struct fma_job j = {.pool = c->pool, .avx512 = avx512};
        struct timing t;
        /* at least 5 runs: the peak is the best one (interference only lowers it) */
        int repeat = c->opts.repeat < 5 ? 5 : c->opts.repeat;
        enum status s = time_runs(fma_run, &j, repeat, &t, err);
        if (s != STATUS_OK)
            return s;
        /* per iteration: accumulators × lanes × 2 flops */
        double flops = avx512 ? 24.0 * 16 * 2 : 12.0 * 8 * 2;
        double gflop = flops * FMA_ITERS * threads * 1e-9;
        add_row(c, avx512 ? "FMA peak (median run)" : "FMA AVX2 (median run)",
                avx512 ? "avx512" : "avx2", gflop, &t);
        struct timing best = {.wall = t.best, .best = t.best, .cpu = t.cpu_best,
                              .cpu_best = t.cpu_best};
        add_row(c, avx512 ? "FMA peak (best run) = 100%" : "FMA AVX2 (best run)",
                avx512 ? "avx512" : "avx2", gflop, &best);
        if (c->peak == 0) {
            c->peak = gflop / t.best;
            c->core_peak = gflop / t.cpu_best;
        }
    }
    return STATUS_OK;
}

/* --- tensors ------------------------------------------------------------------- */

static enum status random_tensor(struct backend *b, int ndim, const int64_t *shape,
                                 uint64_t seed, struct tensor *t, struct errbuf *err)
{
    *t = tensor_desc(DTYPE_F32, ndim, shape);
    enum status s = backend_alloc(b, t, err);
    if (s != STATUS_OK)
        return s;
    size_t n = (size_t)tensor_numel(t);
    float *h = malloc(n * sizeof *h);
    if (!h) {
        backend_free(t);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "bench: out of memory");
    }
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        z ^= z << 13;
        z ^= z >> 7;
        z ^= z << 17;
        h[i] = (float)((double)(z >> 11) * 0x1.0p-53 - 0.5);
    }
    s = backend_upload(t, h, DTYPE_F32, err);
    free(h);
    if (s != STATUS_OK)
        backend_free(t);
    return s;
}

static void free_tensors(struct tensor *t, int n)
{
    for (int i = 0; i < n; i++)
        backend_free(&t[i]);
}

/* --- linear / conv ------------------------------------------------------------- */

struct op_job {
    struct tensor t[4]; /* inputs..., output last used slot */
    struct conv2d_params conv;
    struct attention_params attn;
    enum { JOB_LINEAR, JOB_CONV, JOB_ATTN } kind;
};

static enum status op_run(void *arg, struct errbuf *err)
{
    struct op_job *j = arg;
    switch (j->kind) {
    case JOB_LINEAR: return backend_linear(&j->t[0], &j->t[1], NULL, NULL, &j->t[2], err);
    case JOB_CONV: return backend_conv2d(&j->t[0], &j->t[1], &j->t[2], NULL, &j->conv, &j->t[3], err);
    case JOB_ATTN: return backend_attention(&j->t[0], &j->t[1], &j->t[2], &j->attn, &j->t[3], err);
    }
    return STATUS_INTERNAL;
}

/* Times j on both GEMM paths (AVX-512 when available, then CBLAS). */
static enum status time_both_paths(struct bench_ctx *c, struct op_job *j, const char *name,
                                   double gflop, struct errbuf *err)
{
    for (int portable = 0; portable < 2; portable++) {
        cpu_gemm_force_portable(c->be, portable == 1);
        if (portable == 0 && !cpu_gemm_uses_avx512(c->be))
            continue;
        struct timing t;
        enum status s = time_runs(op_run, j, c->opts.repeat, &t, err);
        if (s != STATUS_OK)
            return s;
        add_row(c, name, portable ? "cblas" : "avx512", gflop, &t);
    }
    cpu_gemm_force_portable(c->be, false);
    return STATUS_OK;
}

static enum status bench_linear(struct bench_ctx *c, int64_t n, struct errbuf *err)
{
    struct op_job j = {.kind = JOB_LINEAR};
    int64_t xs[2] = {n, n};
    enum status s = random_tensor(c->be, 2, xs, 1, &j.t[0], err);
    if (s == STATUS_OK && (s = random_tensor(c->be, 2, xs, 2, &j.t[1], err)) != STATUS_OK)
        free_tensors(j.t, 1);
    if (s == STATUS_OK && (s = random_tensor(c->be, 2, xs, 3, &j.t[2], err)) != STATUS_OK)
        free_tensors(j.t, 2);
    if (s != STATUS_OK)
        return s;
    char name[64];
    snprintf(name, sizeof name, "sgemm %lld^3 (linear)", (long long)n);
    s = time_both_paths(c, &j, name, 2e-9 * (double)n * (double)n * (double)n, err);
    free_tensors(j.t, 3);
    return s;
}

struct conv_shape {
    int64_t hw, cin, cout, k;
};

static enum status bench_conv(struct bench_ctx *c, const struct conv_shape *cs,
                              struct errbuf *err)
{
    struct op_job j = {.kind = JOB_CONV, .conv = {.stride = 1, .padding = (int)cs->k / 2}};
    int64_t xs[4] = {1, cs->hw, cs->hw, cs->cin}, ws[4] = {cs->cout, cs->k, cs->k, cs->cin};
    int64_t bs[1] = {cs->cout}, ys[4] = {1, cs->hw, cs->hw, cs->cout};
    const int64_t *shapes[4] = {xs, ws, bs, ys};
    const int dims[4] = {4, 4, 1, 4};
    for (int i = 0; i < 4; i++) {
        enum status s = random_tensor(c->be, dims[i], shapes[i], 10 + (uint64_t)i, &j.t[i], err);
        if (s != STATUS_OK) {
            free_tensors(j.t, i);
            return s;
        }
    }
    char name[64];
    snprintf(name, sizeof name, "conv%lldx%lld %lldx%lldx%lld->%lld", (long long)cs->k,
             (long long)cs->k, (long long)cs->hw, (long long)cs->hw, (long long)cs->cin,
             (long long)cs->cout);
    double gflop = 2e-9 * (double)(cs->hw * cs->hw) * (double)cs->cout *
                   (double)(cs->k * cs->k * cs->cin);
    enum status s = time_both_paths(c, &j, name, gflop, err);
    free_tensors(j.t, 4);
    return s;
}

/* --- attention ----------------------------------------------------------------- */

static enum status attn_setup(struct backend *b, int64_t batch, int64_t nq, int64_t nk,
                              int64_t ch, int heads, struct op_job *j, struct errbuf *err)
{
    *j = (struct op_job){.kind = JOB_ATTN,
                         .attn = {.heads = heads, .scale = 1.0f / sqrtf((float)(ch / heads))}};
    int64_t qs[3] = {batch, nq, ch}, ks[3] = {batch, nk, ch};
    const int64_t *shapes[4] = {qs, ks, ks, qs};
    for (int i = 0; i < 4; i++) {
        enum status s = random_tensor(b, 3, shapes[i], 20 + (uint64_t)i, &j->t[i], err);
        if (s != STATUS_OK) {
            free_tensors(j->t, i);
            return s;
        }
    }
    return STATUS_OK;
}

static enum status bench_attention(struct bench_ctx *c, const char *name, int64_t nk,
                                   struct errbuf *err)
{
    const int64_t batch = 2, nq = 4096, ch = 320;
    const int heads = 8;
    struct op_job j;
    enum status s = attn_setup(c->be, batch, nq, nk, ch, heads, &j, err);
    if (s != STATUS_OK)
        return s;
    struct timing t;
    s = time_runs(op_run, &j, c->opts.repeat, &t, err);
    /* q·kᵀ and p·v: 2 · 2·Nq·Nk·D per head and batch row (softmax not counted) */
    double gflop = 4e-9 * (double)batch * heads * (double)nq * (double)nk * (double)(ch / heads);
    if (s == STATUS_OK)
        add_row(c, name, "backend", gflop, &t);
    free_tensors(j.t, 4);
    return s;
}

/* Child: a fresh backend, self-attention once; writes {peak RSS before the call
 * (inputs allocated and filled), peak RSS after it} in KiB into fd ({-1,-1} on
 * failure). */
static void rss_child(int threads, int fd)
{
    struct errbuf err;
    struct backend *b = NULL;
    long kib[2] = {-1, -1};
    struct op_job j;
    if (cpu_backend_create(threads, &b, &err) == STATUS_OK &&
        attn_setup(b, 2, 4096, 4096, 320, 8, &j, &err) == STATUS_OK) {
        struct rusage before, after;
        getrusage(RUSAGE_SELF, &before);
        if (op_run(&j, &err) == STATUS_OK) {
            getrusage(RUSAGE_SELF, &after);
            kib[0] = before.ru_maxrss;
            kib[1] = after.ru_maxrss;
        }
        free_tensors(j.t, 4);
    }
    backend_destroy(b);
    ssize_t w = write(fd, kib, sizeof kib);
    (void)w;
}

/* Peak RSS of one self-attention at 4096 tokens, head dim 40 (q/k/v {2,4096,320}),
 * measured in a forked child so that the other benchmarks' high-water mark does
 * not hide it.  Runs before anything else starts threads in this process.  For
 * scale: one materialised score matrix would be 2·8·4096²·4 B = 1 GiB. */
static enum status bench_attention_rss(struct bench_ctx *c, struct errbuf *err)
{
    int fds[2];
    if (pipe(fds) != 0)
        return status_fail(err, STATUS_INTERNAL, "bench: pipe failed");
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return status_fail(err, STATUS_INTERNAL, "bench: fork failed");
    }
    if (pid == 0) { /* child: measure, report, leave without running the parent's atexit */
        close(fds[0]);
        rss_child(c->opts.threads, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    long kib[2] = {-1, -1};
    ssize_t got = read(fds[0], kib, sizeof kib);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    if (got != (ssize_t)sizeof kib || kib[0] < 0)
        return status_fail(err, STATUS_INTERNAL, "bench: attention RSS child failed");
    static const char *names[2] = {"attn self 4096 tok: RSS growth in call",
                                   "attn self 4096 tok: process peak RSS"};
    double mib[2] = {(double)(kib[1] - kib[0]) / 1024.0, (double)kib[1] / 1024.0};
    for (int i = 0; i < 2; i++) {
        struct timing none = {0};
        struct bench_row *r = add_row(c, names[i], "backend", 0, &none);
        if (r) {
            r->value = mib[i];
            r->unit = "MiB";
        }
    }
    return STATUS_OK;
}

/* --- raw CBLAS ----------------------------------------------------------------- */

struct blas_job {
    int n;
    float *a, *b, *c;
};

static enum status blas_run(void *arg, struct errbuf *err)
{
    (void)err;
    struct blas_job *j = arg;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, j->n, j->n, 1.0f, j->a, j->n,
                j->b, j->n, 0.0f, j->c, j->n);
    return STATUS_OK;
}

/* One cblas_sgemm call with OpenBLAS's own threads (then back to one thread, as
 * the backend wants it).  Last, because OpenBLAS threads spin for a while. */
static enum status bench_raw_cblas(struct bench_ctx *c, int n, struct errbuf *err)
{
    size_t sz = (size_t)n * (size_t)n;
    struct blas_job j = {.n = n, .a = malloc(sz * 4), .b = malloc(sz * 4), .c = malloc(sz * 4)};
    enum status s = STATUS_OK;
    if (!j.a || !j.b || !j.c)
        s = status_fail(err, STATUS_OUT_OF_MEMORY, "bench: out of memory");
    struct timing t = {0};
    if (s == STATUS_OK) {
        for (size_t i = 0; i < sz; i++) {
            j.a[i] = (float)(i % 7) * 0.1f;
            j.b[i] = (float)(i % 5) * 0.1f;
        }
        if (openblas_set_num_threads)
            openblas_set_num_threads(c->opts.threads);
        s = time_runs(blas_run, &j, c->opts.repeat, &t, err);
        if (openblas_set_num_threads)
            openblas_set_num_threads(1);
    }
    if (s == STATUS_OK) {
        char name[64];
        snprintf(name, sizeof name, "sgemm %d^3 (raw cblas_sgemm)", n);
        add_row(c, name, "openblas", 2e-9 * (double)n * n * n, &t);
    }
    free(j.a);
    free(j.b);
    free(j.c);
    return s;
}

/* --- output -------------------------------------------------------------------- */

static const char *coretype(void)
{
    const char *e = getenv("OPENBLAS_CORETYPE");
    return e && *e ? e : "unset";
}

/* The kernel family OpenBLAS chose (it may not know the CPU: 0.3.21 takes Sapphire
 * and Emerald Rapids for Prescott, hence OPENBLAS_CORETYPE). */
static const char *blas_core(void)
{
    return openblas_get_corename ? openblas_get_corename() : "n/a";
}

static bool wanted(const struct bench_opts *o, const char *group)
{
    if (!o->only)
        return true;
    size_t n = strlen(group);
    for (const char *p = o->only; (p = strstr(p, group)) != NULL; p += n)
        if ((p == o->only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

/* GFLOP per CPU-second of r against the FMA loop's: the op's efficiency per core
 * it actually ran on, whatever share of the cores other processes took. */
static double core_efficiency(const struct bench_ctx *c, const struct bench_row *r)
{
    return r->gflop > 0 && r->t.cpu > 0 && c->core_peak > 0 ? r->gflop / r->t.cpu / c->core_peak
                                                             : 0;
}

static void print_table(const struct bench_ctx *c)
{
    printf("\n%-40s %-8s %9s %15s %7s %9s\n", "op", "path", "ms", "median", "% peak",
           "per-core");
    for (int i = 0; i < c->n_rows; i++) {
        const struct bench_row *r = &c->rows[i];
        char pct[16] = "", core[16] = "";
        if (r->gflop > 0 && c->peak > 0)
            snprintf(pct, sizeof pct, "%.0f%%", 100.0 * r->value / c->peak);
        if (core_efficiency(c, r) > 0)
            snprintf(core, sizeof core, "%.0f%%", 100.0 * core_efficiency(c, r));
        printf("%-40s %-8s %9.2f %7.1f %-7s %7s %9s\n", r->name, r->path, r->t.wall * 1e3,
               r->value, r->unit, pct, core);
    }
}

static void write_json(const struct bench_ctx *c, FILE *f)
{
    fprintf(f,
            "{\n  \"threads\": %d,\n  \"repeat\": %d,\n  \"openblas_coretype\": \"%s\",\n"
            "  \"openblas_core\": \"%s\",\n",
            c->opts.threads, c->opts.repeat, coretype(), blas_core());
    fprintf(f,
            "  \"avx512_gemm\": %s,\n  \"peak_gflops\": %.2f,\n"
            "  \"core_peak_gflop_per_cpu_second\": %.2f,\n  \"rows\": [\n",
            cpu_sgemm_avx512_supported() ? "true" : "false", c->peak, c->core_peak);
    for (int i = 0; i < c->n_rows; i++) {
        const struct bench_row *r = &c->rows[i];
        fprintf(f,
                "    {\"op\": \"%s\", \"path\": \"%s\", \"seconds\": %.6f, "
                "\"best_seconds\": %.6f, \"cpu_seconds\": %.6f, \"gflop\": %.4f, "
                "\"value\": %.3f, \"unit\": \"%s\", \"percent_of_peak\": %.2f, "
                "\"per_core_efficiency\": %.4f}%s\n",
                r->name, r->path, r->t.wall, r->t.best, r->t.cpu, r->gflop, r->value, r->unit,
                r->gflop > 0 && c->peak > 0 ? 100.0 * r->value / c->peak : 0.0,
                core_efficiency(c, r), i + 1 < c->n_rows ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
}

/* --- main ---------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: diffusiond bench ops [--threads N] [--repeat N] [--json FILE] [--only LIST]\n"
            "  --threads N   backend threads (default: one per online CPU)\n"
            "  --repeat N    timed runs per op, median reported (default 5)\n"
            "  --json FILE   also write the results as JSON to FILE\n"
            "  --only LIST   comma-separated groups to run: peak,sgemm,conv,attn,rss,blas\n"
            "                (default: all; %% of peak needs peak)\n");
}

/* Returns 0 on success, 1 on --help (printed), 2 on a bad option. */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    static const struct option longopts[] = {
        {"threads", required_argument, NULL, 't'}, {"repeat", required_argument, NULL, 'r'},
        {"json", required_argument, NULL, 'j'},    {"only", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct bench_opts){.threads = threadpool_cpu_count(), .repeat = 5};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 't': o->threads = atoi(optarg); break;
        case 'r': o->repeat = atoi(optarg); break;
        case 'j': o->json = optarg; break;
        case 'o': o->only = optarg; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || o->threads < 1 || o->repeat < 1 || o->repeat > REPEAT_MAX) {
        usage(stderr);
        return 2;
    }
    return 0;
}

static enum status bench_all(struct bench_ctx *c, struct errbuf *err)
{
    static const struct conv_shape convs[] = {
        {64, 320, 320, 3}, {32, 640, 640, 3}, {16, 1280, 1280, 3}, {8, 1280, 1280, 3},
        {64, 640, 320, 1}, /* the largest 1×1: up_blocks.3 resnet shortcut */
    };
    const struct bench_opts *o = &c->opts;
    enum status s = STATUS_OK;
    if (wanted(o, "rss"))
        s = bench_attention_rss(c, err);
    if (s == STATUS_OK)
        s = cpu_backend_create(o->threads, &c->be, err);
    if (s == STATUS_OK)
        s = threadpool_create(o->threads, &c->pool, err);
    if (s == STATUS_OK && wanted(o, "peak"))
        s = bench_peak(c, err);
    if (s == STATUS_OK && wanted(o, "sgemm"))
        s = bench_linear(c, 2048, err);
    for (size_t i = 0; s == STATUS_OK && wanted(o, "conv") && i < sizeof convs / sizeof convs[0]; i++)
        s = bench_conv(c, &convs[i], err);
    if (s == STATUS_OK && wanted(o, "attn"))
        s = bench_attention(c, "attn self 2x4096x320/8", 4096, err);
    if (s == STATUS_OK && wanted(o, "attn"))
        s = bench_attention(c, "attn cross 2x4096x320/8 vs 77", 77, err);
    if (s == STATUS_OK && wanted(o, "blas"))
        s = bench_raw_cblas(c, 2048, err);
    return s;
}

int bench_ops_main(int argc, char **argv)
{
    struct bench_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return 1;
    int rc = parse_args(argc, argv, &c->opts);
    if (rc != 0) {
        free(c);
        return rc == 1 ? 0 : rc;
    }
    printf("diffusiond bench ops: %d threads, median of %d, OPENBLAS_CORETYPE=%s "
           "(OpenBLAS core %s), AVX-512 GEMM kernels: %s\n",
           c->opts.threads, c->opts.repeat, coretype(), blas_core(),
           cpu_sgemm_avx512_supported() ? "yes" : "no (CBLAS only)");
    fflush(stdout);
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = bench_all(c, &err);
    print_table(c);
    if (c->peak > 0)
        printf("\npeak = %.1f GFLOP/s (FMA throughput, widest ISA, all threads, best run); "
               "per core %.1f GFLOP per CPU-second\n"
               "median: GFLOP/s of the median run; %% peak: of that peak; per-core: GFLOP per "
               "CPU-second of this process against the FMA loop's (insensitive to other "
               "processes taking turns on the cores)\n",
               c->peak, c->core_peak);
    if (s == STATUS_OK && c->opts.json) {
        FILE *f = fopen(c->opts.json, "w");
        if (f) {
            write_json(c, f);
            fclose(f);
        } else {
            s = status_fail(&err, STATUS_IO, "bench: cannot write %s", c->opts.json);
        }
    }
    if (s != STATUS_OK)
        fprintf(stderr, "diffusiond bench ops: %s: %s\n", status_name(s), err.msg);
    threadpool_destroy(c->pool);
    backend_destroy(c->be);
    free(c);
    return s == STATUS_OK ? 0 : 1;
}
