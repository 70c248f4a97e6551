/* engine/cuda/cuda_norm.cu — GroupNorm (+SiLU) and LayerNorm.
 *
 * GroupNorm: x{N, P positions, C} (NHWC or tokens).  One block per (sample, group)
 * computes the mean, then Σ(x − mean)² (two passes: accurate when |mean| ≫ std, as
 * the CPU reference), into scratch {N·G, 2} = (mean, rstd); a second kernel applies
 * (x − mean)·rstd·γ + β (then SiLU) over every element.  y may be x.
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

/* grid (G, N): stats[(n·G + g)·2 + {0,1}] = mean, rstd. */
template <typename T>
__global__ static void gn_stats_kernel(const T *x, float *stats, int64_t positions, int64_t c,
                                       int groups, float eps)
{
    __shared__ float red[32];
    const int g = blockIdx.x, n = blockIdx.y;
    const int64_t cg = c / groups, count = positions * cg;
    const T *base = x + (size_t)n * (size_t)(positions * c) + (size_t)g * (size_t)cg;
    float s = 0.0f;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
        int64_t p = e / cg, ch = e - p * cg;
        s += cuda_ld(base + p * c + ch);
    }
    const float mean = block_sum(s, red) / (float)count;
    float s2 = 0.0f;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
        int64_t p = e / cg, ch = e - p * cg;
        float d = cuda_ld(base + p * c + ch) - mean;
        s2 += d * d;
    }
    const float var = block_sum(s2, red) / (float)count;
    if (threadIdx.x == 0) {
        stats[((size_t)n * groups + g) * 2] = mean;
        stats[((size_t)n * groups + g) * 2 + 1] = rsqrtf(var + eps);
    }
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

template <typename T>
static void gn_launch(const struct tensor *x, const struct tensor *gamma,
                      const struct tensor *beta, const struct group_norm_params *p,
                      struct tensor *y, float *stats, cudaStream_t st)
{
    const int64_t n = x->shape[0], c = tensor_last_dim(x);
    const int64_t positions = tensor_numel(x) / (n * c);
    dim3 grid((unsigned)p->groups, (unsigned)n);
    gn_stats_kernel<T><<<grid, GN_THREADS, 0, st>>>((const T *)x->data, stats, positions, c,
                                                    p->groups, p->eps);
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
    size_t stats_bytes = (size_t)x->shape[0] * (size_t)p->groups * 2 * sizeof(float);
    TRY(cuda_scratch_reserve(cb, stats_bytes, err));
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
