/* engine/cuda/cuda_elementwise.cu — activations, GEGLU, broadcast add/mul, per-row
 * axpby, nearest upsample, channel concat, timestep embedding and the conv epilogue.
 *
 * Every kernel reads T (f32/f16/bf16), computes in f32 and writes T; grid-stride loops
 * over the output.  Memory-bound ops have 16-byte vector paths, taken when the pointers
 * are 16-byte aligned and the inner run is a whole number of vectors (else the scalar
 * kernels): GEGLU, add/mul (same shape, or b repeated over a middle run of dims such as
 * [N,1,1,C]) and the conv epilogue on 8 f16/bf16 elements; concat and 2× upsample copy
 * raw 16-byte vectors of any dtype.  At most one 64-bit division per vector.  Host
 * scalars (axpby's per-row α/β, timesteps) are passed by value in chunks, so no
 * host→device copy is queued and the ops can be graph-captured. */
#include <math.h>
#include <string.h>

#include "engine/cuda/cuda_internal.h"
#include "engine/nearest.h"

#define EW_THREADS 256

#define GRID_LOOP(i, n)                                                                  \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);              \
         i += (size_t)gridDim.x * blockDim.x)

/* 16-byte vectors: cuda_ld8/cuda_st8/cuda_aligned16 (cuda_internal.h). */
#define EW_VEC CUDA_VEC

/* --- activations ------------------------------------------------------------------- */

enum ew_act { EW_GELU_ERF = 0, EW_GELU_TANH, EW_GELU_QUICK, EW_SILU };

__device__ __forceinline__ float ew_gelu_erf(float x)
{
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

template <int ACT>
__device__ __forceinline__ float ew_apply(float x)
{
    if (ACT == EW_GELU_ERF)
        return ew_gelu_erf(x);
    if (ACT == EW_GELU_TANH) /* ½x(1 + tanh(u)) = x·σ(2u), u = √(2/π)(x + 0.044715x³) */
        return x / (1.0f + expf(-1.5957691216057308f * (x + 0.044715f * x * x * x)));
    if (ACT == EW_GELU_QUICK)
        return x / (1.0f + expf(-1.702f * x));
    return x / (1.0f + expf(-x)); /* SiLU */
}

template <typename T, int ACT>
__global__ static void act_kernel(const T *x, T *y, size_t n)
{
    cuda_pdl_enter();
    GRID_LOOP(i, n) cuda_st(y + i, ew_apply<ACT>(cuda_ld(x + i)));
}

template <typename T>
static void act_launch(const void *x, void *y, size_t n, int act, struct cuda_launch st)
{
    unsigned g = cuda_blocks(n, EW_THREADS);
    const T *xs = (const T *)x;
    T *ys = (T *)y;
    switch (act) {
    case EW_GELU_ERF: cuda_launch_kernel(st, act_kernel<T, EW_GELU_ERF>, g, EW_THREADS, 0, xs, ys, n); break;
    case EW_GELU_TANH: cuda_launch_kernel(st, act_kernel<T, EW_GELU_TANH>, g, EW_THREADS, 0, xs, ys, n); break;
    case EW_GELU_QUICK: cuda_launch_kernel(st, act_kernel<T, EW_GELU_QUICK>, g, EW_THREADS, 0, xs, ys, n); break;
    default: cuda_launch_kernel(st, act_kernel<T, EW_SILU>, g, EW_THREADS, 0, xs, ys, n); break;
    }
}

static enum status activation(struct backend *b, const struct tensor *x, int act,
                              struct tensor *y, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    size_t n = (size_t)tensor_numel(x);
    CUDA_DISPATCH(y->dtype, act_launch<T>(x->data, y->data, n, act, cuda_launch_on(cb)));
    return cuda_check_launch(cb, "activation", err);
}

enum status cuda_gelu(struct backend *b, const struct tensor *x, enum gelu_kind kind,
                      struct tensor *y, struct errbuf *err)
{
    int act = kind == GELU_TANH ? EW_GELU_TANH : kind == GELU_QUICK ? EW_GELU_QUICK : EW_GELU_ERF;
    return activation(b, x, act, y, err);
}

enum status cuda_silu(struct backend *b, const struct tensor *x, struct tensor *y,
                      struct errbuf *err)
{
    return activation(b, x, EW_SILU, y, err);
}

/* y{rows,C} = x[:, :C] · gelu_erf(x[:, C:]) for x{rows,2C}. */
template <typename T>
__global__ static void geglu_kernel(const T *x, T *y, size_t rows, size_t c)
{
    cuda_pdl_enter();
    GRID_LOOP(i, rows * c) {
        size_t r = i / c, ch = i - r * c;
        const T *h = x + r * 2 * c;
        cuda_st(y + i, cuda_ld(h + ch) * ew_gelu_erf(cuda_ld(h + c + ch)));
    }
}

/* The same on 8-element vectors (f16/bf16, C % 8 == 0, aligned): cv = C/8, i runs over
 * y's rows·cv vectors. */
template <typename T>
__global__ static void geglu_vec_kernel(const T *x, T *y, size_t nvec, size_t cv)
{
    cuda_pdl_enter();
    GRID_LOOP(i, nvec) {
        size_t r = i / cv, k = i - r * cv;
        const T *h = x + (r * 2 * cv + k) * EW_VEC; /* x[r, 8k]; its gate is C further */
        float a[EW_VEC], g[EW_VEC];
        cuda_ld8(h, a);
        cuda_ld8(h + cv * EW_VEC, g);
#pragma unroll
        for (int e = 0; e < EW_VEC; e++)
            a[e] *= ew_gelu_erf(g[e]);
        cuda_st8(y + i * EW_VEC, a);
    }
}

template <typename T>
static void geglu_launch(const T *x, T *y, size_t rows, size_t c, struct cuda_launch st)
{
    if constexpr (sizeof(T) == 2) {
        if (c % EW_VEC == 0 && cuda_aligned16(x) && cuda_aligned16(y)) {
            size_t nvec = rows * c / EW_VEC;
            cuda_launch_kernel(st, geglu_vec_kernel<T>, cuda_blocks(nvec, EW_THREADS), EW_THREADS, 0, 
                x, y, nvec, c / EW_VEC);
            return;
        }
    }
    cuda_launch_kernel(st, geglu_kernel<T>, cuda_blocks(rows * c, EW_THREADS), EW_THREADS, 0, x, y, rows, c);
}

enum status cuda_geglu(struct backend *b, const struct tensor *x, struct tensor *y,
                       struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    size_t rows = (size_t)tensor_rows(y), c = (size_t)tensor_last_dim(y);
    CUDA_DISPATCH(y->dtype,
                  geglu_launch<T>((const T *)x->data, (T *)y->data, rows, c, cuda_launch_on(cb)));
    return cuda_check_launch(cb, "geglu", err);
}

/* --- broadcast add / mul ------------------------------------------------------------ */

/* a's shape (padded to 4 dims at the front) and bt's strides (0 on broadcast dims). */
struct ew_bcast {
    int64_t shape[4];
    int64_t bstride[4];
};

template <typename T, bool MUL, bool SAME>
__global__ static void bcast_kernel(const T *a, const T *bt, T *y, size_t n, struct ew_bcast j)
{
    cuda_pdl_enter();
    GRID_LOOP(i, n) {
        size_t bi = i;
        if (!SAME) {
            size_t rest = i;
            bi = 0;
            for (int d = 3; d >= 0; d--) {
                size_t dim = (size_t)j.shape[d];
                size_t coord = rest % dim;
                rest /= dim;
                bi += coord * (size_t)j.bstride[d];
            }
        }
        float av = cuda_ld(a + i), bv = cuda_ld(bt + bi);
        cuda_st(y + i, MUL ? av * bv : av + bv);
    }
}

template <bool MUL>
__device__ __forceinline__ void ew_binary8(float a[EW_VEC], const float b[EW_VEC])
{
#pragma unroll
    for (int e = 0; e < EW_VEC; e++)
        a[e] = MUL ? a[e] * b[e] : a[e] + b[e];
}

/* Same shape, 8-element vectors (f16/bf16, numel % 8 == 0, aligned): i over nvec. */
template <typename T, bool MUL>
__global__ static void same_vec_kernel(const T *a, const T *bt, T *y, size_t nvec)
{
    cuda_pdl_enter();
    GRID_LOOP(i, nvec) {
        float av[EW_VEC], bv[EW_VEC];
        cuda_ld8(a + i * EW_VEC, av);
        cuda_ld8(bt + i * EW_VEC, bv);
        ew_binary8<MUL>(av, bv);
        cuda_st8(y + i * EW_VEC, av);
    }
}

/* a viewed as {O, M, I} and bt as {O, 1, I} (bt repeats over the middle: [N,1,1,C],
 * [1,1,1,C], [1,H,W,C], ...), I % 8 == 0, aligned, f16/bf16.  In vectors: iv = I/8,
 * miv = M·iv (≤ UINT32_MAX); i runs over a's nvec; one_outer: O == 1. */
template <typename T, bool MUL>
__global__ static void bcast_vec_kernel(const T *a, const T *bt, T *y, size_t nvec, size_t miv,
                                        unsigned iv, bool one_outer)
{
    cuda_pdl_enter();
    GRID_LOOP(i, nvec) {
        size_t o = one_outer ? 0 : i / miv;
        unsigned rem = (unsigned)(i - o * miv); /* m·iv + inner vector */
        size_t bi = o * iv + rem % iv;
        float av[EW_VEC], bv[EW_VEC];
        cuda_ld8(a + i * EW_VEC, av);
        cuda_ld8(bt + bi * EW_VEC, bv);
        ew_binary8<MUL>(av, bv);
        cuda_st8(y + i * EW_VEC, av);
    }
}

/* Splits the padded dims into a prefix where bt equals a, a middle where bt is 1 and a
 * suffix where bt equals a again; false when bt does not fit that pattern.  *o, *m, *in:
 * the extents' products (a's). */
static bool bcast_split(const int64_t as[4], const int64_t bs[4], size_t *o, size_t *m,
                        size_t *in)
{
    int d = 0;
    *o = *m = *in = 1;
    for (; d < 4 && bs[d] == as[d]; d++)
        *o *= (size_t)as[d];
    for (; d < 4 && bs[d] == 1; d++)
        *m *= (size_t)as[d];
    for (; d < 4; d++) {
        if (bs[d] != as[d])
            return false;
        *in *= (size_t)as[d];
    }
    return true;
}

/* The vector kernels when they apply (f16/bf16, aligned, whole vectors); false: not. */
template <typename T, bool MUL>
static bool bcast_vec_launch(const T *ap, const T *bp, T *yp, size_t n, const int64_t as[4],
                             const int64_t bs[4], bool same, struct cuda_launch st)
{
    if constexpr (sizeof(T) == 2) {
        if (!cuda_aligned16(ap) || !cuda_aligned16(bp) || !cuda_aligned16(yp) || n % EW_VEC != 0)
            return false;
        size_t nvec = n / EW_VEC;
        unsigned g = cuda_blocks(nvec, EW_THREADS);
        if (same) {
            cuda_launch_kernel(st, same_vec_kernel<T, MUL>, g, EW_THREADS, 0, ap, bp, yp, nvec);
            return true;
        }
        size_t o, m, in;
        if (!bcast_split(as, bs, &o, &m, &in) || in % EW_VEC != 0 ||
            m * (in / EW_VEC) > UINT32_MAX)
            return false;
        cuda_launch_kernel(st, bcast_vec_kernel<T, MUL>, g, EW_THREADS, 0, 
            ap, bp, yp, nvec, m * (in / EW_VEC), (unsigned)(in / EW_VEC), o == 1);
        return true;
    } else {
        (void)ap, (void)bp, (void)yp, (void)n, (void)as, (void)bs, (void)same, (void)st;
        return false;
    }
}

template <typename T, bool MUL>
static void bcast_launch(const struct tensor *a, const struct tensor *bt, struct tensor *y,
                         struct cuda_launch st)
{
    size_t n = (size_t)tensor_numel(a);
    unsigned g = cuda_blocks(n, EW_THREADS);
    struct ew_bcast j;
    int64_t bshape[4];
    int pad = 4 - a->ndim;
    int64_t stride = 1;
    for (int d = 3; d >= 0; d--) {
        int src = d - pad;
        j.shape[d] = src >= 0 ? a->shape[src] : 1;
        int64_t bdim = src >= 0 ? bt->shape[src] : 1;
        bshape[d] = bdim;
        j.bstride[d] = bdim == 1 ? 0 : stride;
        stride *= bdim;
    }
    const T *ap = (const T *)a->data, *bp = (const T *)bt->data;
    T *yp = (T *)y->data;
    bool same = tensor_numel(bt) == tensor_numel(a);
    if (bcast_vec_launch<T, MUL>(ap, bp, yp, n, j.shape, bshape, same, st))
        return;
    if (same)
        cuda_launch_kernel(st, bcast_kernel<T, MUL, true>, g, EW_THREADS, 0, ap, bp, yp, n, j);
    else
        cuda_launch_kernel(st, bcast_kernel<T, MUL, false>, g, EW_THREADS, 0, ap, bp, yp, n, j);
}

enum status cuda_add(struct backend *b, const struct tensor *a, const struct tensor *bt,
                     struct tensor *y, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    CUDA_DISPATCH(y->dtype, (bcast_launch<T, false>(a, bt, y, cuda_launch_on(cb))));
    return cuda_check_launch(cb, "add", err);
}

enum status cuda_mul(struct backend *b, const struct tensor *a, const struct tensor *bt,
                     struct tensor *y, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    CUDA_DISPATCH(y->dtype, (bcast_launch<T, true>(a, bt, y, cuda_launch_on(cb))));
    return cuda_check_launch(cb, "mul", err);
}

/* --- axpby: out[n] = α[n]·x[n] + β[n]·yin[n] --------------------------------------- */

#define AXPBY_CHUNK 128

struct ew_rows {
    float alpha[AXPBY_CHUNK];
    float beta[AXPBY_CHUNK];
};

/* Rows [0, rows) of this chunk, each row_len elements; pointers already at its start. */
template <typename T>
__global__ static void axpby_kernel(const T *x, const T *yin, T *out, size_t row_len,
                                    size_t rows, struct ew_rows s)
{
    cuda_pdl_enter();
    GRID_LOOP(i, rows * row_len) {
        size_t r = i / row_len;
        cuda_st(out + i, s.alpha[r] * cuda_ld(x + i) + s.beta[r] * cuda_ld(yin + i));
    }
}

template <typename T>
static void axpby_launch(const struct tensor *x, const struct tensor *yin, const float *alpha,
                         const float *beta, struct tensor *out, struct cuda_launch st)
{
    size_t rows = (size_t)x->shape[0], row_len = (size_t)tensor_numel(x) / rows;
    for (size_t r0 = 0; r0 < rows; r0 += AXPBY_CHUNK) {
        size_t nr = rows - r0 < AXPBY_CHUNK ? rows - r0 : AXPBY_CHUNK;
        struct ew_rows s;
        for (size_t r = 0; r < nr; r++) {
            s.alpha[r] = alpha[r0 + r];
            s.beta[r] = beta[r0 + r];
        }
        for (size_t r = nr; r < AXPBY_CHUNK; r++)
            s.alpha[r] = s.beta[r] = 0.0f;
        size_t off = r0 * row_len;
        cuda_launch_kernel(st, axpby_kernel<T>, cuda_blocks(nr * row_len, EW_THREADS), EW_THREADS, 0, 
            (const T *)x->data + off, (const T *)yin->data + off, (T *)out->data + off, row_len,
            nr, s);
    }
}

enum status cuda_axpby(struct backend *b, const struct tensor *x, const struct tensor *yin,
                       const float *alpha, const float *beta, struct tensor *out,
                       struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    CUDA_DISPATCH(out->dtype, axpby_launch<T>(x, yin, alpha, beta, out, cuda_launch_on(cb)));
    return cuda_check_launch(cb, "axpby", err);
}

/* --- gather_rows: dst[r] = scale[r] · rows[r] ------------------------------------------ */

struct gather_chunk {
    const void *src[AXPBY_CHUNK];
    float scale[AXPBY_CHUNK];
};

/* grid (x blocks over a row, y = the chunk's rows): row blockIdx.y of the chunk. */
template <typename T>
__global__ static void gather_kernel(T *dst, size_t row_len, struct gather_chunk c)
{
    cuda_pdl_enter();
    const T *src = (const T *)c.src[blockIdx.y];
    const float s = c.scale[blockIdx.y];
    T *out = dst + (size_t)blockIdx.y * row_len;
    GRID_LOOP(i, row_len)
        cuda_st(out + i, s * cuda_ld(src + i));
}

template <typename T>
static void gather_launch(const struct tensor *const *rows, const float *scales, int n,
                          struct tensor *dst, struct cuda_launch st)
{
    const size_t row_len = (size_t)tensor_numel(dst) / (size_t)n;
    for (int r0 = 0; r0 < n; r0 += AXPBY_CHUNK) {
        const int nr = n - r0 < AXPBY_CHUNK ? n - r0 : AXPBY_CHUNK;
        struct gather_chunk c;
        memset(&c, 0, sizeof c);
        for (int r = 0; r < nr; r++) {
            c.src[r] = rows[r0 + r]->data;
            c.scale[r] = scales ? scales[r0 + r] : 1.0f;
        }
        unsigned bx = cuda_blocks(row_len, EW_THREADS);
        bx = bx > 64 ? 64 : bx; /* rows are a latent or an embedding: a few blocks each */
        cuda_launch_kernel(st, gather_kernel<T>, dim3(bx, (unsigned)nr), EW_THREADS, 0,
                           (T *)dst->data + (size_t)r0 * row_len, row_len, c);
    }
}

enum status cuda_gather_rows(struct backend *b, const struct tensor *const *rows,
                             const float *scales, int n, struct tensor *dst, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    CUDA_DISPATCH(dst->dtype, gather_launch<T>(rows, scales, n, dst, cuda_launch_on(cb)));
    return cuda_check_launch(cb, "gather_rows", err);
}

/* --- upsample_nearest, concat -------------------------------------------------------- */

template <typename T>
__global__ static void upsample_kernel(const T *x, T *y, int64_t n, int64_t h, int64_t w,
                                       int64_t ho, int64_t wo, int64_t c)
{
    cuda_pdl_enter();
    GRID_LOOP(i, (size_t)(n * ho * wo * c)) {
        int64_t ch = (int64_t)i % c, rest = (int64_t)i / c;
        int64_t ox = rest % wo;
        rest /= wo;
        int64_t oy = rest % ho, nn = rest / ho;
        int64_t sy = nearest_src_index(oy, h, ho), sx = nearest_src_index(ox, w, wo);
        y[i] = x[((nn * h + sy) * w + sx) * c + ch];
    }
}

/* Exactly 2×, x{N,H,W,C} → y{N,2H,2W,C}, C·sizeof(T) % 16 == 0, aligned: raw 16-byte
 * vectors, cv per pixel, wcv = W·cv (cv, wcv ≤ UINT32_MAX).  i runs over x's nvec; each
 * vector goes to its 2×2 output pixels. */
__global__ static void upsample2x_vec_kernel(const uint4 *x, uint4 *y, size_t nvec, size_t wcv,
                                             unsigned cv)
{
    cuda_pdl_enter();
    GRID_LOOP(i, nvec) {
        size_t row = i / wcv;                     /* input row n·H + sy */
        unsigned rem = (unsigned)(i - row * wcv); /* sx·cv + k */
        unsigned sx = rem / cv, k = rem - sx * cv;
        /* output row 2·row (of 2·wcv vectors), pixel 2·sx */
        size_t o = 4 * row * wcv + 2 * (size_t)sx * cv + k;
        uint4 v = x[i];
        y[o] = v;
        y[o + cv] = v;
        y[o + 2 * wcv] = v;
        y[o + 2 * wcv + cv] = v;
    }
}

/* The vector kernel when it applies; false: not. */
static bool upsample_vec_launch(const struct tensor *x, struct tensor *y, struct cuda_launch st)
{
    size_t es = dtype_size(y->dtype);
    size_t row_bytes = (size_t)x->shape[2] * (size_t)x->shape[3] * es;
    if (y->shape[1] != 2 * x->shape[1] || y->shape[2] != 2 * x->shape[2] ||
        ((size_t)x->shape[3] * es) % 16 != 0 || row_bytes / 16 > UINT32_MAX ||
        !cuda_aligned16(x->data) || !cuda_aligned16(y->data))
        return false;
    size_t nvec = (size_t)tensor_numel(x) * es / 16;
    unsigned cv = (unsigned)((size_t)x->shape[3] * es / 16);
    cuda_launch_kernel(st, upsample2x_vec_kernel, cuda_blocks(nvec, EW_THREADS), EW_THREADS, 0, 
        (const uint4 *)x->data, (uint4 *)y->data, nvec, row_bytes / 16, cv);
    return true;
}

enum status cuda_upsample_nearest(struct backend *b, const struct tensor *x, struct tensor *y,
                                  struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    if (upsample_vec_launch(x, y, cuda_launch_on(cb)))
        return cuda_check_launch(cb, "upsample_nearest", err);
    unsigned g = cuda_blocks((size_t)tensor_numel(y), EW_THREADS);
    CUDA_DISPATCH(y->dtype, (cuda_launch_kernel(cuda_launch_on(cb), upsample_kernel<T>, g, EW_THREADS, 0, 
                                (const T *)x->data, (T *)y->data, x->shape[0], x->shape[1],
                                x->shape[2], y->shape[1], y->shape[2], x->shape[3])));
    return cuda_check_launch(cb, "upsample_nearest", err);
}

template <typename T>
__global__ static void concat_kernel(const T *a, const T *bt, T *y, size_t rows, size_t ca,
                                     size_t cb)
{
    cuda_pdl_enter();
    size_t c = ca + cb;
    GRID_LOOP(i, rows * c) {
        size_t r = i / c, ch = i - r * c;
        y[i] = ch < ca ? a[r * ca + ch] : bt[r * cb + (ch - ca)];
    }
}

/* The same on raw 16-byte vectors (C_a·sizeof(T) and C_b·sizeof(T) multiples of 16,
 * aligned): av, bv vectors per row of a, bt; i runs over y's rows·(av + bv). */
__global__ static void concat_vec_kernel(const uint4 *a, const uint4 *bt, uint4 *y, size_t nvec,
                                         unsigned av, unsigned bv)
{
    cuda_pdl_enter();
    const unsigned cv = av + bv;
    GRID_LOOP(i, nvec) {
        size_t r = i / cv;
        unsigned k = (unsigned)(i - r * cv);
        if (k < av)
            y[i] = a[r * av + k];
        else
            y[i] = bt[r * bv + (k - av)];
    }
}

/* The vector kernel when it applies; false: not. */
static bool concat_vec_launch(const void *a, const void *bt, void *y, size_t rows, size_t ca,
                              size_t cbn, size_t es, struct cuda_launch st)
{
    if ((ca * es) % 16 != 0 || (cbn * es) % 16 != 0 || (ca + cbn) * es / 16 > UINT32_MAX ||
        !cuda_aligned16(a) || !cuda_aligned16(bt) || !cuda_aligned16(y))
        return false;
    unsigned av = (unsigned)(ca * es / 16), bv = (unsigned)(cbn * es / 16);
    size_t nvec = rows * (av + bv);
    cuda_launch_kernel(st, concat_vec_kernel, cuda_blocks(nvec, EW_THREADS), EW_THREADS, 0, 
        (const uint4 *)a, (const uint4 *)bt, (uint4 *)y, nvec, av, bv);
    return true;
}

enum status cuda_concat_channels(struct backend *b, const struct tensor *a,
                                 const struct tensor *bt, struct tensor *y, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    size_t rows = (size_t)tensor_rows(y);
    size_t ca = (size_t)tensor_last_dim(a), cbn = (size_t)tensor_last_dim(bt);
    if (concat_vec_launch(a->data, bt->data, y->data, rows, ca, cbn, dtype_size(y->dtype),
                          cuda_launch_on(cb)))
        return cuda_check_launch(cb, "concat_channels", err);
    unsigned g = cuda_blocks(rows * (ca + cbn), EW_THREADS);
    CUDA_DISPATCH(y->dtype, (cuda_launch_kernel(cuda_launch_on(cb), concat_kernel<T>, g, EW_THREADS, 0, 
                                (const T *)a->data, (const T *)bt->data, (T *)y->data, rows, ca,
                                cbn)));
    return cuda_check_launch(cb, "concat_channels", err);
}

/* --- timestep embedding ------------------------------------------------------------- */

#define TS_CHUNK 256

struct ew_times {
    float t[TS_CHUNK];
};

/* rows of this chunk, y at its first row; as the CPU backend's formula. */
template <typename T>
__global__ static void timestep_kernel(T *y, size_t rows, int64_t half, float neg_log,
                                       float denom, bool flip, struct ew_times ts)
{
    cuda_pdl_enter();
    GRID_LOOP(i, rows * (size_t)half) {
        size_t r = i / (size_t)half;
        int64_t k = (int64_t)(i - r * (size_t)half);
        float exponent = neg_log * (float)k / denom;
        float arg = ts.t[r] * expf(exponent);
        T *row = y + r * (size_t)(2 * half);
        T *sin_part = flip ? row + half : row, *cos_part = flip ? row : row + half;
        cuda_st(sin_part + k, sinf(arg));
        cuda_st(cos_part + k, cosf(arg));
    }
}

enum status cuda_timestep_embedding(struct backend *b, const float *timesteps,
                                    const struct timestep_embedding_params *p, struct tensor *y,
                                    struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    const int64_t half = p->dim / 2;
    const size_t n = (size_t)y->shape[0];
    const float neg_log = (float)-log((double)p->max_period);
    const float denom = (float)half - p->downscale_freq_shift;
    for (size_t r0 = 0; r0 < n; r0 += TS_CHUNK) {
        size_t nr = n - r0 < TS_CHUNK ? n - r0 : TS_CHUNK;
        struct ew_times ts;
        for (size_t r = 0; r < TS_CHUNK; r++)
            ts.t[r] = r < nr ? timesteps[r0 + r] : 0.0f;
        unsigned g = cuda_blocks(nr * (size_t)half, EW_THREADS);
        CUDA_DISPATCH(y->dtype, (cuda_launch_kernel(cuda_launch_on(cb), timestep_kernel<T>, g, EW_THREADS, 0, 
                                    (T *)y->data + r0 * (size_t)p->dim, nr, half, neg_log, denom,
                                    p->flip_sin_to_cos, ts)));
    }
    return cuda_check_launch(cb, "timestep_embedding", err);
}

/* Whether a graph kernel node runs timestep_kernel (any dtype). */
bool cuda_timestep_node_is(const struct cudaKernelNodeParams *kp)
{
    return kp->func == (void *)timestep_kernel<float> ||
           kp->func == (void *)timestep_kernel<__half> ||
           kp->func == (void *)timestep_kernel<__nv_bfloat16>;
}

/* Sets the timesteps of a recorded timestep_kernel node `node` (its parameters `kp`, as
 * recorded) in `exec` for the following launches: rows must be the node's. */
cudaError_t cuda_timestep_node_set(cudaGraphExec_t exec, cudaGraphNode_t node,
                                   const struct cudaKernelNodeParams *kp, const float *t,
                                   int rows)
{
    /* timestep_kernel(y, rows, half, neg_log, denom, flip, ts): argument 1 rows, 6 ts */
    if (*(const size_t *)kp->kernelParams[1] != (size_t)rows || rows > TS_CHUNK)
        return cudaErrorInvalidValue;
    struct ew_times ts;
    for (int r = 0; r < TS_CHUNK; r++)
        ts.t[r] = r < rows ? t[r] : 0.0f;
    void *args[7];
    for (int i = 0; i < 6; i++)
        args[i] = kp->kernelParams[i];
    args[6] = &ts;
    struct cudaKernelNodeParams np = *kp;
    np.kernelParams = args;
    np.extra = NULL;
    return cudaGraphExecKernelNodeSetParams(exec, node, &np);
}

/* --- conv epilogue: y += bias + residual ---------------------------------------------- */

template <typename T>
__global__ static void bias_residual_kernel(T *y, const T *bias, const T *res, size_t n,
                                            size_t c)
{
    cuda_pdl_enter();
    GRID_LOOP(i, n) {
        float v = cuda_ld(y + i);
        if (bias)
            v += cuda_ld(bias + i % c);
        if (res)
            v += cuda_ld(res + i);
        cuda_st(y + i, v);
    }
}

/* The same on 8-element vectors (f16/bf16, C % 8 == 0, aligned): cv = C/8, i runs over
 * y's nvec. */
template <typename T>
__global__ static void bias_residual_vec_kernel(T *y, const T *bias, const T *res, size_t nvec,
                                                size_t cv)
{
    cuda_pdl_enter();
    GRID_LOOP(i, nvec) {
        float v[EW_VEC], t[EW_VEC];
        cuda_ld8(y + i * EW_VEC, v);
        if (bias) {
            cuda_ld8(bias + (i % cv) * EW_VEC, t);
#pragma unroll
            for (int e = 0; e < EW_VEC; e++)
                v[e] += t[e];
        }
        if (res) {
            cuda_ld8(res + i * EW_VEC, t);
#pragma unroll
            for (int e = 0; e < EW_VEC; e++)
                v[e] += t[e];
        }
        cuda_st8(y + i * EW_VEC, v);
    }
}

template <typename T>
static void bias_residual_launch(T *y, const T *bias, const T *res, size_t n, size_t c,
                                 struct cuda_launch st)
{
    if constexpr (sizeof(T) == 2) {
        if (c % EW_VEC == 0 && cuda_aligned16(y) && cuda_aligned16(bias) && cuda_aligned16(res)) {
            size_t nvec = n / EW_VEC;
            cuda_launch_kernel(st, bias_residual_vec_kernel<T>, cuda_blocks(nvec, EW_THREADS), EW_THREADS, 0, 
                y, bias, res, nvec, c / EW_VEC);
            return;
        }
    }
    cuda_launch_kernel(st, bias_residual_kernel<T>, cuda_blocks(n, EW_THREADS), EW_THREADS, 0, y, bias, res, n,
                                                                               c);
}

enum status cuda_bias_residual(struct cuda_backend *cb, const struct tensor *bias,
                               const struct tensor *residual, struct tensor *y,
                               struct errbuf *err)
{
    if (!bias && !residual)
        return STATUS_OK;
    size_t n = (size_t)tensor_numel(y), c = (size_t)tensor_last_dim(y);
    CUDA_DISPATCH(y->dtype, bias_residual_launch<T>(
                                (T *)y->data, bias ? (const T *)bias->data : (const T *)NULL,
                                residual ? (const T *)residual->data : (const T *)NULL, n, c,
                                cuda_launch_on(cb)));
    return cuda_check_launch(cb, "conv epilogue", err);
}
