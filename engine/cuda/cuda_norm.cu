/* engine/cuda/cuda_norm.cu — GroupNorm (+SiLU) and LayerNorm.
 *
 * GroupNorm: x{N, P positions, C} (NHWC or tokens).  Each (sample, group) is split
 * into up to 64 chunks; a block per chunk computes its mean, then Σ(x − mean)² (two
 * passes: accurate when |mean| ≫ std, as the CPU reference); a small kernel merges the
 * chunks (Chan's formula, double) into scratch {N·G, 2} = (mean, rstd); a third
 * applies (x − mean)·rstd·γ + β (then SiLU) over every element.  y may be x.
 * LayerNorm: one warp per row, two passes over the row, then the affine write. */
#include "engine/cuda/cuda_internal.h"

#define GN_THREADS 512
#define LN_WARPS 8

/* Sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets it. */
__device__ static float block_sum(float v, float *shared32)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads(); /* shared32 may still be read from a previous call */
    if (lane == 0)
        shared32[warp] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = lane < nw ? shared32[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* grid (G, N, S): chunk s of group (n, g) — elements [s·len, (s+1)·len) of the group's
 * positions × C/G channels — writes (count, mean, M2) of its values to
 * part[((n·G + g)·S + s)·3], two passes over the chunk (mean, then Σ(x − mean)²). */
template <typename T>
__global__ static void gn_partial_kernel(const T *x, float *part, int64_t positions, int64_t c,
                                         int groups, int64_t len)
{
    __shared__ float red[32];
    const int g = blockIdx.x, n = blockIdx.y, sidx = blockIdx.z, chunks = gridDim.z;
    const int64_t cg = c / groups, count = positions * cg;
    const int64_t e0 = (int64_t)sidx * len, e1 = e0 + len < count ? e0 + len : count;
    const T *base = x + (size_t)n * (size_t)(positions * c) + (size_t)g * (size_t)cg;
    float s = 0.0f;
    for (int64_t e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
        int64_t p = e / cg, ch = e - p * cg;
        s += cuda_ld(base + p * c + ch);
    }
    const float cnt = e1 > e0 ? (float)(e1 - e0) : 0.0f;
    const float tot = block_sum(s, red); /* every thread: cnt is the block's */
    const float mean = cnt > 0 ? tot / cnt : 0.0f;
    float s2 = 0.0f;
    for (int64_t e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
        int64_t p = e / cg, ch = e - p * cg;
        float d = cuda_ld(base + p * c + ch) - mean;
        s2 += d * d;
    }
    const float m2 = block_sum(s2, red);
    if (threadIdx.x == 0) {
        float *o = part + (((size_t)n * groups + g) * chunks + sidx) * 3;
        o[0] = cnt;
        o[1] = mean;
        o[2] = m2;
    }
}

/* One thread per (sample, group): merges the S chunks (Chan's formula, in double) into
 * stats[(n·G + g)·2 + {0,1}] = mean, rstd. */
__global__ static void gn_merge_kernel(const float *part, float *stats, int n_groups, int chunks,
                                       float eps)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_groups)
        return;
    const float *pp = part + (size_t)i * chunks * 3;
    double n = 0, mean = 0, m2 = 0;
    for (int s = 0; s < chunks; s++) {
        const double nb = pp[3 * s], mb = pp[3 * s + 1], m2b = pp[3 * s + 2];
        if (nb <= 0)
            continue;
        const double tot = n + nb, delta = mb - mean;
        mean += delta * nb / tot;
        m2 += m2b + delta * delta * n * nb / tot;
        n = tot;
    }
    const double var = n > 0 && m2 > 0 ? m2 / n : 0.0;
    stats[2 * (size_t)i] = (float)mean;
    stats[2 * (size_t)i + 1] = (float)(1.0 / sqrt(var + (double)eps));
}

template <typename T, bool SILU>
__global__ static void gn_apply_kernel(const T *x, T *y, const float *stats, const T *gamma,
                                       const T *beta, size_t n, int64_t positions, int64_t c,
                                       int groups)
{
    const int64_t cg = c / groups;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int64_t ch = (int64_t)(i % (size_t)c);
        int64_t sample = (int64_t)(i / (size_t)(positions * c));
        const float *st = stats + ((size_t)sample * groups + (size_t)(ch / cg)) * 2;
        float v = (cuda_ld(x + i) - st[0]) * st[1];
        if (gamma)
            v *= cuda_ld(gamma + ch);
        if (beta)
            v += cuda_ld(beta + ch);
        if (SILU)
            v = v / (1.0f + expf(-v));
        cuda_st(y + i, v);
    }
}

/* Chunks per (sample, group): about GN_CHUNK elements each, at most GN_MAX_CHUNKS, so
 * SD's 2 × 32 groups of 64×64×10 values keep 640 blocks busy instead of 64. */
#define GN_CHUNK 8192
#define GN_MAX_CHUNKS 64

static int gn_chunks(int64_t count)
{
    int64_t s = (count + GN_CHUNK - 1) / GN_CHUNK;
    return (int)(s < 1 ? 1 : s > GN_MAX_CHUNKS ? GN_MAX_CHUNKS : s);
}

template <typename T>
static void gn_launch(const struct tensor *x, const struct tensor *gamma,
                      const struct tensor *beta, const struct group_norm_params *p,
                      struct tensor *y, float *scratch, cudaStream_t st)
{
    const int64_t n = x->shape[0], c = tensor_last_dim(x);
    const int64_t positions = tensor_numel(x) / (n * c);
    const int64_t count = positions * (c / p->groups);
    const int chunks = gn_chunks(count);
    const int64_t len = (count + chunks - 1) / chunks;
    float *stats = scratch, *part = scratch + 2 * (size_t)n * p->groups;
    dim3 grid((unsigned)p->groups, (unsigned)n, (unsigned)chunks);
    gn_partial_kernel<T><<<grid, GN_THREADS, 0, st>>>((const T *)x->data, part, positions, c,
                                                      p->groups, len);
    const int n_groups = (int)n * p->groups;
    gn_merge_kernel<<<(n_groups + 127) / 128, 128, 0, st>>>(part, stats, n_groups, chunks,
                                                            p->eps);
    size_t total = (size_t)tensor_numel(x);
    unsigned blocks = cuda_blocks(total, 256);
    const T *gp = gamma ? (const T *)gamma->data : (const T *)NULL;
    const T *bp = beta ? (const T *)beta->data : (const T *)NULL;
    if (p->silu)
        gn_apply_kernel<T, true><<<blocks, 256, 0, st>>>((const T *)x->data, (T *)y->data, stats,
                                                         gp, bp, total, positions, c, p->groups);
    else
        gn_apply_kernel<T, false><<<blocks, 256, 0, st>>>((const T *)x->data, (T *)y->data,
                                                          stats, gp, bp, total, positions, c,
                                                          p->groups);
}

enum status cuda_group_norm(struct backend *b, const struct tensor *x, const struct tensor *gamma,
                            const struct tensor *beta, const struct group_norm_params *p,
                            struct tensor *y, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    if (x->shape[0] > 65535)
        return status_fail(err, STATUS_UNSUPPORTED, "cuda group_norm: batch %lld too large",
                           (long long)x->shape[0]);
    const int64_t count = tensor_numel(x) / x->shape[0] / p->groups;
    size_t scratch_bytes = (size_t)x->shape[0] * (size_t)p->groups *
                           (2 + 3 * (size_t)gn_chunks(count)) * sizeof(float);
    TRY(cuda_scratch_reserve(cb, scratch_bytes, err));
    CUDA_DISPATCH(y->dtype, gn_launch<T>(x, gamma, beta, p, y, (float *)cb->scratch, cb->stream));
    return cuda_check_launch(cb, "group_norm", err);
}

/* One warp per row of x{rows, C}. */
template <typename T>
__global__ static void ln_kernel(const T *x, T *y, const T *gamma, const T *beta, size_t rows,
                                 int64_t c, float eps)
{
    const int lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= rows)
        return;
    const T *xr = x + row * (size_t)c;
    T *yr = y + row * (size_t)c;
    float s = 0.0f;
    for (int64_t i = lane; i < c; i += 32)
        s += cuda_ld(xr + i);
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    const float mean = s / (float)c;
    float s2 = 0.0f;
    for (int64_t i = lane; i < c; i += 32) {
        float d = cuda_ld(xr + i) - mean;
        s2 += d * d;
    }
    for (int o = 16; o > 0; o >>= 1)
        s2 += __shfl_xor_sync(0xffffffffu, s2, o);
    const float rstd = rsqrtf(s2 / (float)c + eps);
    for (int64_t i = lane; i < c; i += 32) {
        float v = (cuda_ld(xr + i) - mean) * rstd;
        if (gamma)
            v *= cuda_ld(gamma + i);
        if (beta)
            v += cuda_ld(beta + i);
        cuda_st(yr + i, v);
    }
}

enum status cuda_layer_norm(struct backend *b, const struct tensor *x, const struct tensor *gamma,
                            const struct tensor *beta, float eps, struct tensor *y,
                            struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    size_t rows = (size_t)tensor_rows(x);
    int64_t c = tensor_last_dim(x);
    size_t blocks = (rows + LN_WARPS - 1) / LN_WARPS;
    if (blocks > 2147483647u)
        return status_fail(err, STATUS_UNSUPPORTED, "cuda layer_norm: too many rows");
    CUDA_DISPATCH(y->dtype, (ln_kernel<T><<<(unsigned)blocks, LN_WARPS * 32, 0, cb->stream>>>(
                                (const T *)x->data, (T *)y->data,
                                gamma ? (const T *)gamma->data : (const T *)NULL,
                                beta ? (const T *)beta->data : (const T *)NULL, rows, c, eps)));
    return cuda_check_launch(cb, "layer_norm", err);
}
