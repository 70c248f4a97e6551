/* engine/cpu/cpu_elementwise.c — activations, broadcast add/mul, axpby, nearest
 * upsampling, channel concat and the sinusoidal timestep embedding.
 *
 * Hot loops are spans over contiguous floats, instantiated for the baseline ISA and
 * for AVX-512 (cpu_simd.h); the pool splits the work into chunks of EW_CHUNK
 * elements (or whole rows).  In-place use (y == x, y == a, out == x or yin) is safe:
 * every element is read before it is written, and only by its own iteration.
 */
#include <math.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"
#include "engine/cpu/cpu_simd.h"
#include "engine/nearest.h"

#define EW_CHUNK 16384 /* elements per work item */

static size_t ew_items(size_t n)
{
    return (n + EW_CHUNK - 1) / EW_CHUNK;
}

/* Rows per work item for rows of `len` floats: about EW_CHUNK elements. */
static size_t ew_row_grain(int64_t len)
{
    return (size_t)(EW_CHUNK / (len > 0 ? len : 1)) + 1;
}

/* --- activations --------------------------------------------------------------- */

enum ew_act { EW_GELU_ERF, EW_GELU_TANH, EW_GELU_QUICK, EW_SILU };

static inline __attribute__((always_inline)) void ew_act_span(const float *x, float *y, size_t n,
                                                              enum ew_act act)
{
    switch (act) {
    case EW_GELU_ERF:
        for (size_t i = 0; i < n; i++)
            y[i] = cpu_simd_gelu_erf(x[i]);
        break;
    case EW_GELU_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = cpu_simd_gelu_tanh(x[i]);
        break;
    case EW_GELU_QUICK:
        for (size_t i = 0; i < n; i++)
            y[i] = cpu_simd_gelu_quick(x[i]);
        break;
    case EW_SILU:
        for (size_t i = 0; i < n; i++)
            y[i] = cpu_simd_silu(x[i]);
        break;
    }
}

/* y{rows, C} = x[:, :C] · gelu_erf(x[:, C:]) for x{rows, 2C}. */
static inline __attribute__((always_inline)) void ew_geglu_span(const float *x, float *y,
                                                                size_t rows, size_t c)
{
    for (size_t r = 0; r < rows; r++) {
        const float *h = x + r * 2 * c, *g = h + c;
        float *yr = y + r * c;
        for (size_t i = 0; i < c; i++)
            yr[i] = h[i] * cpu_simd_gelu_erf(g[i]);
    }
}

static void ew_act_generic(const float *x, float *y, size_t n, enum ew_act act)
{
    ew_act_span(x, y, n, act);
}

static void ew_geglu_generic(const float *x, float *y, size_t rows, size_t c)
{
    ew_geglu_span(x, y, rows, c);
}

#if CPU_SIMD_X86
CPU_TARGET_AVX512 static void ew_act_avx512(const float *x, float *y, size_t n, enum ew_act act)
{
    ew_act_span(x, y, n, act);
}

CPU_TARGET_AVX2 static void ew_act_avx2(const float *x, float *y, size_t n, enum ew_act act)
{
    ew_act_span(x, y, n, act);
}

CPU_TARGET_AVX512 static void ew_geglu_avx512(const float *x, float *y, size_t rows, size_t c)
{
    ew_geglu_span(x, y, rows, c);
}

CPU_TARGET_AVX2 static void ew_geglu_avx2(const float *x, float *y, size_t rows, size_t c)
{
    ew_geglu_span(x, y, rows, c);
}
#else
#define ew_act_avx512 ew_act_generic
#define ew_act_avx2 ew_act_generic
#define ew_geglu_avx512 ew_geglu_generic
#define ew_geglu_avx2 ew_geglu_generic
#endif

struct ew_act_job {
    const float *x;
    float *y;
    size_t n; /* elements, or rows for geglu */
    size_t c; /* geglu: output features */
    enum ew_act act;
    enum cpu_isa isa;
};

static void ew_act_run(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct ew_act_job *j = ctx;
    size_t lo = begin * EW_CHUNK, hi = end * EW_CHUNK < j->n ? end * EW_CHUNK : j->n;
    CPU_ISA_PICK(j->isa, ew_act)(j->x + lo, j->y + lo, hi - lo, j->act);
}

static enum status ew_activation(struct backend *b, const struct tensor *x, enum ew_act act,
                                 struct tensor *y)
{
    struct ew_act_job j = {cpu_f32(x), cpu_f32(y), (size_t)tensor_numel(x), 0, act,
                           cpu_simd_isa()};
    threadpool_parallel_for(cpu_of(b)->pool, ew_items(j.n), 1, ew_act_run, &j);
    return STATUS_OK;
}

enum status cpu_gelu(struct backend *b, const struct tensor *x, enum gelu_kind kind,
                     struct tensor *y, struct errbuf *err)
{
    (void)err;
    enum ew_act act = kind == GELU_TANH ? EW_GELU_TANH : kind == GELU_QUICK ? EW_GELU_QUICK
                                                                            : EW_GELU_ERF;
    return ew_activation(b, x, act, y);
}

enum status cpu_silu(struct backend *b, const struct tensor *x, struct tensor *y,
                     struct errbuf *err)
{
    (void)err;
    return ew_activation(b, x, EW_SILU, y);
}

static void ew_geglu_run(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct ew_act_job *j = ctx;
    CPU_ISA_PICK(j->isa, ew_geglu)(j->x + begin * 2 * j->c, j->y + begin * j->c, end - begin, j->c);
}

enum status cpu_geglu(struct backend *b, const struct tensor *x, struct tensor *y,
                      struct errbuf *err)
{
    (void)err;
    struct ew_act_job j = {cpu_f32(x), cpu_f32(y), (size_t)tensor_rows(y),
                           (size_t)tensor_last_dim(y), EW_GELU_ERF, cpu_simd_isa()};
    threadpool_parallel_for(cpu_of(b)->pool, j.n, ew_row_grain(2 * (int64_t)j.c), ew_geglu_run,
                            &j);
    return STATUS_OK;
}

/* --- broadcast add / mul --------------------------------------------------------
 * The dims of a are collapsed into runs of dims where bt is either all "same" or
 * all "broadcast" (size-1 dims of a dropped); bt's stride is 0 along broadcast
 * runs.  The innermost run is a span: vector op vector (same) or vector op scalar. */

enum ew_binop { EW_ADD, EW_MUL };

struct ew_bcast_job {
    const float *a, *bt;
    float *y;
    size_t n;                           /* elements of a */
    int ndim;                           /* collapsed dims, ≥ 1 */
    int64_t shape[TENSOR_MAX_DIMS];     /* collapsed shape of a */
    int64_t bstride[TENSOR_MAX_DIMS];   /* bt's stride per collapsed dim (0: broadcast) */
    enum ew_binop op;
    enum cpu_isa isa;
};

static void ew_bcast_layout(struct ew_bcast_job *j, const struct tensor *a,
                            const struct tensor *bt)
{
    bool same[TENSOR_MAX_DIMS];
    j->ndim = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] == 1)
            continue;
        bool s = bt->shape[i] == a->shape[i];
        if (j->ndim > 0 && same[j->ndim - 1] == s) {
            j->shape[j->ndim - 1] *= a->shape[i];
        } else {
            same[j->ndim] = s;
            j->shape[j->ndim++] = a->shape[i];
        }
    }
    if (j->ndim == 0) {
        same[0] = true;
        j->shape[j->ndim++] = 1;
    }
    int64_t stride = 1;
    for (int i = j->ndim - 1; i >= 0; i--) {
        j->bstride[i] = same[i] ? stride : 0;
        if (same[i])
            stride *= j->shape[i];
    }
}

static inline __attribute__((always_inline)) void
ew_binop_span(const float *a, const float *b, float *y, size_t n, bool scalar_b, enum ew_binop op)
{
    if (scalar_b) {
        const float s = b[0];
        if (op == EW_ADD)
            for (size_t i = 0; i < n; i++)
                y[i] = a[i] + s;
        else
            for (size_t i = 0; i < n; i++)
                y[i] = a[i] * s;
    } else if (op == EW_ADD) {
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
    } else {
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] * b[i];
    }
}

static void ew_binop_generic(const float *a, const float *b, float *y, size_t n, bool scalar_b,
                             enum ew_binop op)
{
    ew_binop_span(a, b, y, n, scalar_b, op);
}

#if CPU_SIMD_X86
CPU_TARGET_AVX512 static void ew_binop_avx512(const float *a, const float *b, float *y, size_t n,
                                              bool scalar_b, enum ew_binop op)
{
    ew_binop_span(a, b, y, n, scalar_b, op);
}

CPU_TARGET_AVX2 static void ew_binop_avx2(const float *a, const float *b, float *y, size_t n,
                                          bool scalar_b, enum ew_binop op)
{
    ew_binop_span(a, b, y, n, scalar_b, op);
}
#else
#define ew_binop_avx512 ew_binop_generic
#define ew_binop_avx2 ew_binop_generic
#endif

/* Offset into bt of the first element of run r (runs = the innermost collapsed dim). */
static size_t ew_bcast_offset(const struct ew_bcast_job *j, size_t r)
{
    size_t off = 0;
    for (int i = j->ndim - 2; i >= 0; i--) {
        size_t dim = (size_t)j->shape[i];
        off += (r % dim) * (size_t)j->bstride[i];
        r /= dim;
    }
    return off;
}

static void ew_bcast_run(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct ew_bcast_job *j = ctx;
    const size_t run = (size_t)j->shape[j->ndim - 1];
    const bool scalar_b = j->bstride[j->ndim - 1] == 0;
    size_t e = begin * EW_CHUNK, stop = end * EW_CHUNK < j->n ? end * EW_CHUNK : j->n;
    while (e < stop) {
        size_t r = e / run, o = e % run;
        size_t cnt = run - o < stop - e ? run - o : stop - e;
        const float *b = j->bt + ew_bcast_offset(j, r) + (scalar_b ? 0 : o);
        CPU_ISA_PICK(j->isa, ew_binop)(j->a + e, b, j->y + e, cnt, scalar_b, j->op);
        e += cnt;
    }
}

static enum status ew_broadcast(struct backend *b, const struct tensor *a, const struct tensor *bt,
                                enum ew_binop op, struct tensor *y)
{
    struct ew_bcast_job j = {.a = cpu_f32(a), .bt = cpu_f32(bt), .y = cpu_f32(y),
                             .n = (size_t)tensor_numel(a), .op = op,
                             .isa = cpu_simd_isa()};
    ew_bcast_layout(&j, a, bt);
    threadpool_parallel_for(cpu_of(b)->pool, ew_items(j.n), 1, ew_bcast_run, &j);
    return STATUS_OK;
}

enum status cpu_add(struct backend *b, const struct tensor *a, const struct tensor *bt,
                    struct tensor *y, struct errbuf *err)
{
    (void)err;
    return ew_broadcast(b, a, bt, EW_ADD, y);
}

enum status cpu_mul(struct backend *b, const struct tensor *a, const struct tensor *bt,
                    struct tensor *y, struct errbuf *err)
{
    (void)err;
    return ew_broadcast(b, a, bt, EW_MUL, y);
}

/* --- gather_rows ---------------------------------------------------------------- */

/* Rows are small (a latent or a text embedding): one pass each, no threads. */
enum status cpu_gather_rows(struct backend *b, const struct tensor *const *rows,
                            const float *scales, int n, struct tensor *dst, struct errbuf *err)
{
    (void)b;
    (void)err;
    const size_t row = (size_t)tensor_numel(dst) / (size_t)n;
    float *out = dst->data;
    for (int i = 0; i < n; i++) {
        const float *src = rows[i]->data, s = scales ? scales[i] : 1.0f;
        float *o = out + (size_t)i * row;
        if (s == 1.0f)
            memcpy(o, src, row * sizeof *o);
        else
            for (size_t e = 0; e < row; e++)
                o[e] = s * src[e];
    }
    return STATUS_OK;
}

/* --- axpby --------------------------------------------------------------------- */

struct ew_axpby_job {
    const float *x, *yin;
    float *out;
    const float *alpha, *beta; /* per row of `row` elements */
    size_t n, row;
    enum cpu_isa isa;
};

static inline __attribute__((always_inline)) void
ew_axpby_span(const float *x, const float *yin, float *out, size_t n, float alpha, float beta)
{
    for (size_t i = 0; i < n; i++)
        out[i] = alpha * x[i] + beta * yin[i];
}

static void ew_axpby_generic(const float *x, const float *yin, float *out, size_t n, float alpha,
                             float beta)
{
    ew_axpby_span(x, yin, out, n, alpha, beta);
}

#if CPU_SIMD_X86
CPU_TARGET_AVX512 static void ew_axpby_avx512(const float *x, const float *yin, float *out,
                                              size_t n, float alpha, float beta)
{
    ew_axpby_span(x, yin, out, n, alpha, beta);
}

CPU_TARGET_AVX2 static void ew_axpby_avx2(const float *x, const float *yin, float *out,
                                          size_t n, float alpha, float beta)
{
    ew_axpby_span(x, yin, out, n, alpha, beta);
}
#else
#define ew_axpby_avx512 ew_axpby_generic
#define ew_axpby_avx2 ew_axpby_generic
#endif

static void ew_axpby_run(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct ew_axpby_job *j = ctx;
    size_t e = begin * EW_CHUNK, stop = end * EW_CHUNK < j->n ? end * EW_CHUNK : j->n;
    while (e < stop) {
        size_t r = e / j->row, o = e % j->row;
        size_t cnt = j->row - o < stop - e ? j->row - o : stop - e;
        CPU_ISA_PICK(j->isa, ew_axpby)(j->x + e, j->yin + e, j->out + e, cnt,
                                       j->alpha[r], j->beta[r]);
        e += cnt;
    }
}

enum status cpu_axpby(struct backend *b, const struct tensor *x, const struct tensor *yin,
                      const float *alpha, const float *beta, struct tensor *out,
                      struct errbuf *err)
{
    (void)err;
    struct ew_axpby_job j = {cpu_f32(x), cpu_f32(yin), cpu_f32(out), alpha, beta,
                             (size_t)tensor_numel(x), 0, cpu_simd_isa()};
    j.row = j.n / (size_t)x->shape[0];
    threadpool_parallel_for(cpu_of(b)->pool, ew_items(j.n), 1, ew_axpby_run, &j);
    return STATUS_OK;
}

/* --- upsample / concat ------------------------------------------------------------ */

struct ew_copy_job {
    const float *a, *b;
    float *y;
    int64_t w, ca, cb; /* upsample: input width and channels (ca); concat: ca, cb */
};

struct ew_upsample_job {
    const float *x;     /* {N,H,W,C} */
    float *y;           /* {N,Ho,Wo,C} */
    int64_t h, w, ho, wo, c;
};

/* Output rows (n, oy) of y: each is a gather of input row (n, src(oy)); an output row
 * equal to the one before it is copied whole. */
static void ew_upsample_run(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct ew_upsample_job *j = ctx;
    const size_t c = (size_t)j->c, out_row = (size_t)j->wo * c;
    for (size_t row = begin; row < end; row++) {
        int64_t n = (int64_t)row / j->ho, oy = (int64_t)row % j->ho;
        int64_t sy = nearest_src_index(oy, j->h, j->ho);
        float *y = j->y + row * out_row;
        if (oy > 0 && nearest_src_index(oy - 1, j->h, j->ho) == sy && row > begin) {
            memcpy(y, y - out_row, out_row * sizeof *y);
            continue;
        }
        const float *x = j->x + ((size_t)(n * j->h + sy) * (size_t)j->w) * c;
        for (int64_t ox = 0; ox < j->wo; ox++)
            memcpy(y + (size_t)ox * c, x + (size_t)nearest_src_index(ox, j->w, j->wo) * c,
                   c * sizeof *y);
    }
}

enum status cpu_upsample_nearest(struct backend *b, const struct tensor *x, struct tensor *y,
                                 struct errbuf *err)
{
    (void)err;
    struct ew_upsample_job j = {cpu_f32(x), cpu_f32(y), x->shape[1], x->shape[2], y->shape[1],
                                y->shape[2], x->shape[3]};
    size_t rows = (size_t)(y->shape[0] * y->shape[1]);
    threadpool_parallel_for(cpu_of(b)->pool, rows, ew_row_grain(2 * j.wo * j.c),
                            ew_upsample_run, &j);
    return STATUS_OK;
}

static void ew_concat_run(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct ew_copy_job *j = ctx;
    const size_t ca = (size_t)j->ca, cb = (size_t)j->cb;
    for (size_t r = begin; r < end; r++) {
        float *y = j->y + r * (ca + cb);
        memcpy(y, j->a + r * ca, ca * sizeof *y);
        memcpy(y + ca, j->b + r * cb, cb * sizeof *y);
    }
}

enum status cpu_concat_channels(struct backend *b, const struct tensor *a,
                                const struct tensor *bt, struct tensor *y, struct errbuf *err)
{
    (void)err;
    struct ew_copy_job j = {cpu_f32(a), cpu_f32(bt), cpu_f32(y), 0, tensor_last_dim(a),
                            tensor_last_dim(bt)};
    threadpool_parallel_for(cpu_of(b)->pool, (size_t)tensor_rows(y),
                            ew_row_grain(j.ca + j.cb), ew_concat_run, &j);
    return STATUS_OK;
}

/* --- timestep embedding -------------------------------------------------------------
 * Mirrors diffusers' get_timestep_embedding in f32, step by step:
 *   exponent_i = (−ln(max_period) · i) / (half − shift);  freq_i = e^exponent_i
 *   arg = t · freq_i;  y = [sin(arg), cos(arg)]  (or [cos, sin] when flipped). */

enum status cpu_timestep_embedding(struct backend *b, const float *timesteps,
                                   const struct timestep_embedding_params *p, struct tensor *y,
                                   struct errbuf *err)
{
    (void)b;
    (void)err;
    const int64_t half = p->dim / 2, n = y->shape[0];
    const float neg_log = (float)-log((double)p->max_period);
    const float denom = (float)half - p->downscale_freq_shift;
    float *out = cpu_f32(y);
    for (int64_t r = 0; r < n; r++) {
        float *row = out + r * p->dim;
        float *sin_part = p->flip_sin_to_cos ? row + half : row;
        float *cos_part = p->flip_sin_to_cos ? row : row + half;
        for (int64_t i = 0; i < half; i++) {
            float exponent = neg_log * (float)i / denom;
            float arg = timesteps[r] * expf(exponent);
            sin_part[i] = sinf(arg);
            cos_part[i] = cosf(arg);
        }
    }
    return STATUS_OK;
}
