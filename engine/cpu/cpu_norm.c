/* engine/cpu/cpu_norm.c — GroupNorm (+SiLU) and LayerNorm in f32 with compensated
 * statistics.
 *
 * GroupNorm over x{N, P positions, C} (NHWC or tokens):
 *   1. stats: each sample's positions are cut into at most GN_CHUNKS chunks of at
 *      least GN_CHUNK_VALUES values (a split fixed by the shape, so results do not
 *      depend on the thread count; an 8×8 map is one chunk, not 64 of one row).  A chunk sums, per
 *      channel, the deviations from the chunk's first row (float over GN_FLUSH rows,
 *      then double) and reduces them to a (mean, M2) per group.
 *   2. merge: the chunks' (mean, M2) per (sample, group) are merged in double with
 *      Chan's formula, giving per (sample, channel) the mean, a = γ·rstd and β.
 *   3. apply: y = (x − mean)·a + β (then SiLU), in parallel over the same chunks;
 *      subtracting the mean first keeps |mean| ≫ std accurate.
 * LayerNorm: one row per item, two passes over the row (mean, then Σ(x−mean)²).
 * y may alias x in both: every element is read before it is written.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"
#include "engine/cpu/cpu_simd.h"

#define GN_CHUNKS 64          /* chunks per sample, at most */
#define GN_CHUNK_VALUES 4096  /* values per chunk, at least (small maps: fewer chunks) */
#define GN_FLUSH 16  /* rows summed in float before adding into double */

struct gn_stat {
    double mean, m2; /* over `count` values */
    double count;
};

/* Chan et al.: merges b into a. */
static void gn_stat_merge(struct gn_stat *a, const struct gn_stat *b)
{
    double n = a->count + b->count;
    if (n == 0)
        return;
    double delta = b->mean - a->mean;
    a->mean += delta * b->count / n;
    a->m2 += b->m2 + delta * delta * a->count * b->count / n;
    a->count = n;
}

struct gn_job {
    const float *x;
    float *y;
    int64_t n, positions, c, groups;
    int64_t chunks, chunk_len; /* per sample */
    const float *gamma, *beta; /* {C} or NULL */
    float eps;
    bool silu;
    enum cpu_isa isa;
    struct gn_stat *stats; /* {N, chunks, groups} */
    float *affine;         /* {N, 3, C}: mean, a, b */
    char *scratch;         /* per thread: d1, d2 {C} doubles, then f1, f2, shift {C} floats */
    size_t per_thread;     /* bytes, a multiple of 64 */
};

/* Per-channel sums of (x − shift) and (x − shift)² over rows{len, C}, into d1, d2. */
static inline __attribute__((always_inline)) void
gn_sums_span(const float *x, int64_t len, int64_t c, const float *shift, float *f1, float *f2,
             double *d1, double *d2)
{
    for (int64_t ch = 0; ch < c; ch++)
        d1[ch] = d2[ch] = 0.0;
    for (int64_t r0 = 0; r0 < len; r0 += GN_FLUSH) {
        int64_t r1 = r0 + GN_FLUSH < len ? r0 + GN_FLUSH : len;
        memset(f1, 0, sizeof *f1 * (size_t)c);
        memset(f2, 0, sizeof *f2 * (size_t)c);
        for (int64_t r = r0; r < r1; r++) {
            const float *row = x + r * c;
            for (int64_t ch = 0; ch < c; ch++) {
                float t = row[ch] - shift[ch];
                f1[ch] += t;
                f2[ch] += t * t;
            }
        }
        for (int64_t ch = 0; ch < c; ch++) {
            d1[ch] += f1[ch];
            d2[ch] += f2[ch];
        }
    }
}

/* y{len, C} = (x − mean)·a + b per channel, then SiLU when asked; mab = mean, a, b
 * {3, C}. */
static inline __attribute__((always_inline)) void
gn_apply_span(const float *x, float *y, int64_t len, int64_t c, const float *mab, bool silu)
{
    const float *mean = mab, *a = mab + c, *b = mab + 2 * c;
    for (int64_t r = 0; r < len; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        if (silu)
            for (int64_t ch = 0; ch < c; ch++)
                yr[ch] = cpu_simd_silu((xr[ch] - mean[ch]) * a[ch] + b[ch]);
        else
            for (int64_t ch = 0; ch < c; ch++)
                yr[ch] = (xr[ch] - mean[ch]) * a[ch] + b[ch];
    }
}

static void gn_sums_generic(const float *x, int64_t len, int64_t c, const float *shift,
                            float *f1, float *f2, double *d1, double *d2)
{
    gn_sums_span(x, len, c, shift, f1, f2, d1, d2);
}

static void gn_apply_generic(const float *x, float *y, int64_t len, int64_t c, const float *mab,
                             bool silu)
{
    gn_apply_span(x, y, len, c, mab, silu);
}

#if CPU_SIMD_X86
CPU_TARGET_AVX512 static void gn_sums_avx512(const float *x, int64_t len, int64_t c,
                                             const float *shift, float *f1, float *f2,
                                             double *d1, double *d2)
{
    gn_sums_span(x, len, c, shift, f1, f2, d1, d2);
}

CPU_TARGET_AVX2 static void gn_sums_avx2(const float *x, int64_t len, int64_t c,
                                         const float *shift, float *f1, float *f2,
                                         double *d1, double *d2)
{
    gn_sums_span(x, len, c, shift, f1, f2, d1, d2);
}

CPU_TARGET_AVX512 static void gn_apply_avx512(const float *x, float *y, int64_t len, int64_t c,
                                              const float *mab, bool silu)
{
    gn_apply_span(x, y, len, c, mab, silu);
}

CPU_TARGET_AVX2 static void gn_apply_avx2(const float *x, float *y, int64_t len, int64_t c,
                                          const float *mab, bool silu)
{
    gn_apply_span(x, y, len, c, mab, silu);
}
#else
#define gn_sums_avx512 gn_sums_generic
#define gn_sums_avx2 gn_sums_generic
#define gn_apply_avx512 gn_apply_generic
#define gn_apply_avx2 gn_apply_generic
#endif

/* Rows [first, first + len) of sample n for chunk `item` = n·chunks + k. */
static int64_t gn_chunk_rows(const struct gn_job *j, size_t item, int64_t *n, int64_t *first)
{
    *n = (int64_t)item / j->chunks;
    *first = ((int64_t)item % j->chunks) * j->chunk_len;
    int64_t left = j->positions - *first;
    return left < j->chunk_len ? (left > 0 ? left : 0) : j->chunk_len;
}

static void gn_stats_run(void *ctx, size_t begin, size_t end, int thread)
{
    const struct gn_job *j = ctx;
    char *base = j->scratch + (size_t)thread * j->per_thread;
    double *d1 = (double *)base, *d2 = d1 + j->c; /* doubles first: aligned for any C */
    float *f1 = (float *)(d2 + j->c), *f2 = f1 + j->c, *shift = f2 + j->c;
    const int64_t cg = j->c / j->groups;
    for (size_t item = begin; item < end; item++) {
        int64_t n, first;
        int64_t len = gn_chunk_rows(j, item, &n, &first);
        struct gn_stat *out = j->stats + item * (size_t)j->groups;
        if (len == 0) {
            memset(out, 0, sizeof *out * (size_t)j->groups);
            continue;
        }
        const float *x = j->x + (n * j->positions + first) * j->c;
        memcpy(shift, x, sizeof *shift * (size_t)j->c);
        CPU_ISA_PICK(j->isa, gn_sums)(x, len, j->c, shift, f1, f2, d1, d2);
        /* per channel: mean_c = shift + s1/len, M2_c = s2 − s1²/len; per group:
         * M2 = Σ M2_c + len·Σ (mean_c − mean)² (exact combination of equal counts) */
        const double inv_len = 1.0 / (double)len;
        for (int64_t g = 0; g < j->groups; g++) {
            double mean = 0, m2 = 0;
            for (int64_t ch = g * cg; ch < (g + 1) * cg; ch++) {
                double s1 = d1[ch];
                d2[ch] -= s1 * s1 * inv_len;          /* now M2_c */
                d1[ch] = shift[ch] + s1 * inv_len;    /* now mean_c */
                mean += d1[ch];
            }
            mean /= (double)cg;
            for (int64_t ch = g * cg; ch < (g + 1) * cg; ch++) {
                double dev = d1[ch] - mean;
                m2 += d2[ch] + (double)len * dev * dev;
            }
            out[g] = (struct gn_stat){mean, m2, (double)(len * cg)};
        }
    }
}

/* Merges the chunk statistics of every (sample, group) into mean, a, b per channel. */
static void gn_affine(const struct gn_job *j)
{
    const int64_t cg = j->c / j->groups;
    for (int64_t n = 0; n < j->n; n++) {
        float *mean = j->affine + n * 3 * j->c, *a = mean + j->c, *b = a + j->c;
        for (int64_t g = 0; g < j->groups; g++) {
            struct gn_stat acc = {0, 0, 0};
            for (int64_t k = 0; k < j->chunks; k++)
                gn_stat_merge(&acc, &j->stats[(n * j->chunks + k) * j->groups + g]);
            double var = acc.m2 > 0 ? acc.m2 / acc.count : 0.0;
            double rstd = 1.0 / sqrt(var + (double)j->eps);
            for (int64_t ch = g * cg; ch < (g + 1) * cg; ch++) {
                mean[ch] = (float)acc.mean;
                a[ch] = (float)(rstd * (j->gamma ? j->gamma[ch] : 1.0f));
                b[ch] = j->beta ? j->beta[ch] : 0.0f;
            }
        }
    }
}

static void gn_apply_run(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct gn_job *j = ctx;
    for (size_t item = begin; item < end; item++) {
        int64_t n, first;
        int64_t len = gn_chunk_rows(j, item, &n, &first);
        size_t off = (size_t)((n * j->positions + first) * j->c);
        CPU_ISA_PICK(j->isa, gn_apply)(j->x + off, j->y + off, len, j->c,
                                       j->affine + n * 3 * j->c, j->silu);
    }
}

enum status cpu_group_norm(struct backend *b, const struct tensor *x, const struct tensor *gamma,
                           const struct tensor *beta, const struct group_norm_params *p,
                           struct tensor *y, struct errbuf *err)
{
    if (p->shift) /* backend.c adds it first */
        return status_fail(err, STATUS_UNSUPPORTED, "cpu group_norm: no fused shift");
    struct cpu_backend *cb = cpu_of(b);
    struct gn_job j = {
        .x = cpu_f32(x), .y = cpu_f32(y), .n = x->shape[0], .c = tensor_last_dim(x),
        .groups = p->groups, .gamma = gamma ? cpu_f32(gamma) : NULL,
        .beta = beta ? cpu_f32(beta) : NULL, .eps = p->eps, .silu = p->silu,
        .isa = cpu_simd_isa(),
    };
    j.positions = tensor_numel(x) / (j.n * j.c);
    int64_t want = j.positions < GN_CHUNKS ? j.positions : GN_CHUNKS;
    j.chunk_len = (j.positions + want - 1) / want;
    const int64_t min_rows = (GN_CHUNK_VALUES + j.c - 1) / j.c;
    if (j.chunk_len < min_rows)
        j.chunk_len = min_rows < j.positions ? min_rows : j.positions;
    j.chunks = (j.positions + j.chunk_len - 1) / j.chunk_len; /* none empty */
    j.per_thread = ((size_t)j.c * (3 * sizeof(float) + 2 * sizeof(double)) + 63) & ~(size_t)63;
    size_t items = (size_t)(j.n * j.chunks);
    size_t stats_bytes = (items * (size_t)j.groups * sizeof *j.stats + 63) & ~(size_t)63;
    size_t affine_bytes = ((size_t)(j.n * 3 * j.c) * sizeof(float) + 63) & ~(size_t)63;
    size_t bytes = stats_bytes + affine_bytes + (size_t)cb->n_threads * j.per_thread;
    char *mem = aligned_alloc(64, bytes);
    if (!mem)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "group_norm: cannot allocate %zu bytes",
                           bytes);
    j.stats = (struct gn_stat *)mem;
    j.affine = (float *)(mem + stats_bytes);
    j.scratch = mem + stats_bytes + affine_bytes;
    threadpool_parallel_for(cb->pool, items, 1, gn_stats_run, &j);
    gn_affine(&j);
    threadpool_parallel_for(cb->pool, items, 1, gn_apply_run, &j);
    free(mem);
    return STATUS_OK;
}

/* --- LayerNorm ---------------------------------------------------------------- */

struct ln_job {
    const float *x;
    float *y;
    int64_t c;
    const float *gamma, *beta;
    float eps;
    enum cpu_isa isa;
};

/* Σ (x[i] − shift) in 16 float lanes, then double. */
static inline __attribute__((always_inline)) double ln_sum(const float *x, int64_t n,
                                                           float shift, bool square)
{
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int t = 0; t < 16; t++) {
            float d = x[i + t] - shift;
            acc[t] += square ? d * d : d;
        }
    double s = 0;
    for (int t = 0; t < 16; t++)
        s += acc[t];
    for (; i < n; i++) {
        double d = (double)x[i] - shift;
        s += square ? d * d : d;
    }
    return s;
}

static inline __attribute__((always_inline)) void
ln_rows_span(const struct ln_job *j, size_t begin, size_t end)
{
    const int64_t c = j->c;
    for (size_t r = begin; r < end; r++) {
        const float *x = j->x + r * (size_t)c;
        float *y = j->y + r * (size_t)c;
        /* shifting by x[0] first keeps the float lanes small when |mean| ≫ std */
        double mean = x[0] + ln_sum(x, c, x[0], false) / (double)c;
        double var = ln_sum(x, c, (float)mean, true) / (double)c;
        float mf = (float)mean, rstd = (float)(1.0 / sqrt(var + (double)j->eps));
        if (j->gamma && j->beta)
            for (int64_t i = 0; i < c; i++)
                y[i] = (x[i] - mf) * rstd * j->gamma[i] + j->beta[i];
        else if (j->gamma)
            for (int64_t i = 0; i < c; i++)
                y[i] = (x[i] - mf) * rstd * j->gamma[i];
        else if (j->beta)
            for (int64_t i = 0; i < c; i++)
                y[i] = (x[i] - mf) * rstd + j->beta[i];
        else
            for (int64_t i = 0; i < c; i++)
                y[i] = (x[i] - mf) * rstd;
    }
}

static void ln_rows_generic(const struct ln_job *j, size_t begin, size_t end)
{
    ln_rows_span(j, begin, end);
}

#if CPU_SIMD_X86
CPU_TARGET_AVX512 static void ln_rows_avx512(const struct ln_job *j, size_t begin, size_t end)
{
    ln_rows_span(j, begin, end);
}

CPU_TARGET_AVX2 static void ln_rows_avx2(const struct ln_job *j, size_t begin, size_t end)
{
    ln_rows_span(j, begin, end);
}
#else
#define ln_rows_avx512 ln_rows_generic
#define ln_rows_avx2 ln_rows_generic
#endif

static void ln_run(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct ln_job *j = ctx;
    CPU_ISA_PICK(j->isa, ln_rows)(j, begin, end);
}

enum status cpu_layer_norm(struct backend *b, const struct tensor *x, const struct tensor *gamma,
                           const struct tensor *beta, float eps, struct tensor *y,
                           struct errbuf *err)
{
    (void)err;
    struct ln_job j = {
        .x = cpu_f32(x), .y = cpu_f32(y), .c = tensor_last_dim(x),
        .gamma = gamma ? cpu_f32(gamma) : NULL, .beta = beta ? cpu_f32(beta) : NULL,
        .eps = eps, .isa = cpu_simd_isa(),
    };
    size_t rows = (size_t)tensor_rows(x);
    size_t grain = (size_t)(4096 / j.c) + 1;
    threadpool_parallel_for(cpu_of(b)->pool, rows, grain, ln_run, &j);
    return STATUS_OK;
}
