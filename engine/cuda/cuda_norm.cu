/* engine/cuda/cuda_norm.cu — GroupNorm (+SiLU) and LayerNorm.
 *
 * GroupNorm: x{N, P positions, C} (NHWC or tokens), three kernels:
 *   1. statistics per (sample, group, chunk of positions) as (count, mean, M2) — when
 *      C/G is even (SD's case) gn_pairs_kernel reads whole rows in coalesced channel
 *      pairs (a block per chunk of one sample's positions, every group at once); else
 *      gn_partial_kernel, a block per chunk of one group (two passes: mean, then
 *      Σ(x − mean)²).  Both are accurate when |mean| ≫ std, as the CPU reference;
 *   2. gn_merge_kernel, a block per (sample, group): Chan's formula in double over the
 *      chunks, then the affine form per channel, ab{N, C, 2} = (rstd·γ, β − mean·rstd·γ);
 *   3. the apply pass y = x·a + b (then SiLU), 16 bytes per thread when it can.
 * Or, for f16/bf16 groups of an even width and at most GN_FUSED_MAX values (every U-Net
 * map; options.group_norm_kernel), gn_fused_kernel: a block per
 * (sample, group) computes the statistics and applies them, one launch — and adds the
 * params' per-(sample, channel) shift first (the ResNet's time embedding), which the
 * three-kernel path leaves to backend.c.  With group_norm_kernel 3 on sm_90 and few
 * (sample, group) pairs (a U-Net step at 1–2 rows: 64 blocks for 132 SMs),
 * gn_cluster_kernel splits each group's positions over a thread-block cluster of up to
 * 8 blocks that add their sums through distributed shared memory — still one launch
 * (the default: CUDA_GN_AUTO_KERNEL).  With group_norm_kernel 4 (C % 8 == 0, groups of
 * ≥ 8 channels) two kernels read whole positions in 16-byte vectors instead: the
 * statistics per chunk, then the apply (gn_tile_stats_kernel, gn_tile_apply_kernel).
 * y may be x.
 * LayerNorm: one warp per row, two passes over the row, then the affine write; for
 * f16/bf16 rows of C % 8 == 0, C ≤ 2048 (16-byte aligned) the row stays in registers as
 * 8-element vectors (one read, one write), else three passes over memory. */
#include <cooperative_groups.h>

#include "engine/cuda/cuda_internal.h"
extern "C" {
#include "engine/log.h"
}

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
    cuda_pdl_enter();
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

/* Chunks per (sample, group) for gn_partial_kernel (C/G odd): about GN_CHUNK elements
 * each, at most GN_MAX_CHUNKS. */
#define GN_CHUNK 8192
#define GN_MAX_CHUNKS 64

static int gn_chunks(int64_t count)
{
    int64_t s = (count + GN_CHUNK - 1) / GN_CHUNK;
    return (int)(s < 1 ? 1 : s > GN_MAX_CHUNKS ? GN_MAX_CHUNKS : s);
}

/* grid (S, N), block (bx, by): chunk s of sample n's positions, every channel pair.
 * Thread (tx, ty) walks pairs tx, tx+bx, ... and, for each, the chunk's positions
 * ty, ty+by, ...: coalesced 4-byte loads (two channels) across the warp.  Per pair it
 * sums x − shift and (x − shift)², shift = the pair's first value (no cancellation when
 * |mean| ≫ std), into (mean, M2) in shared memory [by][C/2]; then thread g < G merges
 * its group's by·cg/2 entries (Chan, equal counts) into part[((n·G + g)·S + s)·3] =
 * (count, mean, M2) — the layout gn_partial_kernel writes.  Needs C/G even. */
template <typename T>
__global__ static void gn_pairs_kernel(const T *x, float *part, int64_t positions, int c,
                                       int groups, int64_t len)
{
    cuda_pdl_enter();
    extern __shared__ float gp_sm[]; /* [by][C/2][2] */
    const int pairs = c / 2, bx = blockDim.x, by = blockDim.y;
    const int s = blockIdx.x, n = blockIdx.y, chunks = gridDim.x;
    const int64_t p0 = (int64_t)s * len, p1 = p0 + len < positions ? p0 + len : positions;
    const T *base = x + (size_t)n * (size_t)(positions * c);
    int64_t mine = 0; /* positions this thread visits: ty, ty+by, ... in [p0, p1) */
    if (p1 > p0 + threadIdx.y)
        mine = (p1 - p0 - threadIdx.y + by - 1) / by;
    for (int pr = threadIdx.x; pr < pairs; pr += bx) {
        float sh0 = 0.0f, sh1 = 0.0f, s0 = 0.0f, s1 = 0.0f, q0 = 0.0f, q1 = 0.0f;
        if (mine > 0) {
            const T *e = base + (p0 + threadIdx.y) * c + 2 * pr;
            sh0 = cuda_ld(e);
            sh1 = cuda_ld(e + 1);
            for (int64_t i = 0; i < mine; i++, e += (int64_t)by * c) {
                const float a = cuda_ld(e) - sh0, b = cuda_ld(e + 1) - sh1;
                s0 += a;
                s1 += b;
                q0 += a * a;
                q1 += b * b;
            }
        }
        /* the pair's two channels as one (count 2·mine) set: mean, M2 */
        const float cnt = (float)mine, m0 = sh0 + (cnt > 0 ? s0 / cnt : 0.0f),
                    m1 = sh1 + (cnt > 0 ? s1 / cnt : 0.0f);
        const float v0 = cnt > 0 ? q0 - s0 * s0 / cnt : 0.0f,
                    v1 = cnt > 0 ? q1 - s1 * s1 / cnt : 0.0f;
        const float mean = 0.5f * (m0 + m1), dm = 0.5f * (m0 - m1);
        float *o = gp_sm + ((size_t)threadIdx.y * pairs + pr) * 2;
        o[0] = mean;
        o[1] = fmaxf(v0, 0.0f) + fmaxf(v1, 0.0f) + 2.0f * cnt * dm * dm;
    }
    __syncthreads();
    const int cg2 = c / groups / 2, tid = threadIdx.y * bx + threadIdx.x;
    for (int g = tid; g < groups; g += bx * by) {
        /* by·cg2 sets; set (ty, pr) has 2·mine(ty) values */
        double tot = 0, mean = 0, m2 = 0;
        for (int ty = 0; ty < by; ty++) {
            const int64_t m = p1 > p0 + ty ? (p1 - p0 - ty + by - 1) / by : 0;
            const double nb = 2.0 * (double)m;
            if (nb <= 0)
                continue;
            for (int pr = g * cg2; pr < (g + 1) * cg2; pr++) {
                const float *e = gp_sm + ((size_t)ty * pairs + pr) * 2;
                const double t2 = tot + nb, delta = (double)e[0] - mean;
                mean += delta * nb / t2;
                m2 += (double)e[1] + delta * delta * tot * nb / t2;
                tot = t2;
            }
        }
        float *o = part + (((size_t)n * groups + g) * chunks + s) * 3;
        o[0] = (float)tot;
        o[1] = (float)mean;
        o[2] = (float)m2;
    }
}

/* grid N·G, GN_MERGE_THREADS threads: merges group (n, g)'s S chunks (Chan's formula,
 * in double: a strided share per thread, then a tree over the block) and writes the
 * affine form of its channels: ab[(n·C + ch)·2] = (rstd·γ, β − mean·rstd·γ). */
#define GN_MERGE_THREADS 128
template <typename T>
__global__ static void gn_merge_kernel(const float *part, float *ab, int groups, int chunks,
                                       int64_t c, const T *gamma, const T *beta, float eps)
{
    cuda_pdl_enter();
    __shared__ double sm[3][GN_MERGE_THREADS];
    const int i = blockIdx.x, n = i / groups, g = i - n * groups;
    const float *pp = part + (size_t)i * chunks * 3;
    double tot = 0, mean = 0, m2 = 0;
    for (int s = threadIdx.x; s < chunks; s += GN_MERGE_THREADS) {
        const double nb = pp[3 * s], mb = pp[3 * s + 1], m2b = pp[3 * s + 2];
        if (nb <= 0)
            continue;
        const double t2 = tot + nb, delta = mb - mean;
        mean += delta * nb / t2;
        m2 += m2b + delta * delta * tot * nb / t2;
        tot = t2;
    }
    sm[0][threadIdx.x] = tot;
    sm[1][threadIdx.x] = mean;
    sm[2][threadIdx.x] = m2;
    for (int w = GN_MERGE_THREADS / 2; w > 0; w >>= 1) {
        __syncthreads();
        if (threadIdx.x < w) {
            const double na = sm[0][threadIdx.x], nb = sm[0][threadIdx.x + w];
            if (nb > 0) {
                const double t2 = na + nb, delta = sm[1][threadIdx.x + w] - sm[1][threadIdx.x];
                sm[1][threadIdx.x] += delta * nb / t2;
                sm[2][threadIdx.x] += sm[2][threadIdx.x + w] + delta * delta * na * nb / t2;
                sm[0][threadIdx.x] = t2;
            }
        }
    }
    __syncthreads();
    const double var = sm[0][0] > 0 && sm[2][0] > 0 ? sm[2][0] / sm[0][0] : 0.0;
    const float mu = (float)sm[1][0], rstd = (float)(1.0 / sqrt(var + (double)eps));
    const int64_t cg = c / groups;
    for (int64_t k = threadIdx.x; k < cg; k += GN_MERGE_THREADS) {
        const int64_t ch = g * cg + k;
        const float a = rstd * (gamma ? cuda_ld(gamma + ch) : 1.0f);
        const float b = (beta ? cuda_ld(beta + ch) : 0.0f) - mu * a;
        ab[((size_t)n * c + ch) * 2] = a;
        ab[((size_t)n * c + ch) * 2 + 1] = b;
    }
}

template <bool SILU> __device__ __forceinline__ float gn_out(float x, const float *ab)
{
    const float v = fmaf(x, ab[0], ab[1]);
    return SILU ? v / (1.0f + __expf(-v)) : v;
}

/* y = x·a + b per (sample, channel) (then SiLU), one element per thread-step. */
template <typename T, bool SILU>
__global__ static void gn_apply_kernel(const T *x, T *y, const float *ab, size_t n,
                                       int64_t positions, int64_t c)
{
    cuda_pdl_enter();
    const size_t pc = (size_t)(positions * c);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t sample = i / pc, ch = i % (size_t)c;
        cuda_st(y + i, gn_out<SILU>(cuda_ld(x + i), ab + (sample * (size_t)c + ch) * 2));
    }
}

/* The same, 8 elements (16 bytes of f16/bf16) per thread-step; C % 8 == 0. */
template <typename T, bool SILU>
__global__ static void gn_apply8_kernel(const T *x, T *y, const float *ab, size_t n8,
                                        int64_t positions, int64_t c)
{
    cuda_pdl_enter();
    const size_t pc = (size_t)(positions * c);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t e = i * 8, sample = e / pc, ch = e % (size_t)c;
        const float *abp = ab + (sample * (size_t)c + ch) * 2;
        union {
            uint4 u;
            T v[8];
        } in, out;
        in.u = *(const uint4 *)(x + e);
#pragma unroll
        for (int j = 0; j < 8; j++)
            cuda_st(&out.v[j], gn_out<SILU>(cuda_ld(&in.v[j]), abp + 2 * j));
        *(uint4 *)(y + e) = out.u;
    }
}

/* --- one kernel per (sample, group) ------------------------------------------------ */

#define GN_FUSED_THREADS 512
#define GN_FUSED_MAX 131072 /* values per group (256 KB of f16) for the automatic choice */

/* Sum over the block in double (blockDim.x a multiple of 32); every thread gets it. */
__device__ static double block_sum_d(double v, double *shared32)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0)
        shared32[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? shared32[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Two T at p (4-byte aligned) as floats. */
template <typename T> __device__ __forceinline__ float2 gn_ld2(const T *p)
{
    union {
        uint32_t u;
        T v[2];
    } w;
    w.u = *(const uint32_t *)p;
    return make_float2(cuda_ld(&w.v[0]), cuda_ld(&w.v[1]));
}
template <typename T> __device__ __forceinline__ void gn_st2(T *p, float a, float b)
{
    union {
        uint32_t u;
        T v[2];
    } w;
    cuda_st(&w.v[0], a);
    cuda_st(&w.v[1], b);
    *(uint32_t *)p = w.u;
}

/* The statistics shift of the group whose first channel is ch in sample n (xn: the
 * sample's map): that value with its add — no cancellation when |mean| ≫ std.  Every
 * one-launch and tiled path shifts by it. */
template <typename T>
__device__ __forceinline__ float gn_group_shift(const T *xn, const T *add, int n, int c, int ch)
{
    return cuda_ld(xn + ch) + (add ? cuda_ld(add + (size_t)n * c + ch) : 0.0f);
}

/* Thread (r, k) of group (n, g) on the one-kernel paths: its channel pair k's pointers
 * (x, y at position 0), its time-embedding shift (add{N,C}, NULL: none) and the
 * statistics' shift — the group's first value with its add: no cancellation when
 * |mean| ≫ std. */
template <typename T> struct gn_pair {
    const T *x;
    T *y;
    int ch;
    float add0, add1, shift;
};

template <typename T>
__device__ __forceinline__ gn_pair<T> gn_pair_at(const T *x, T *y, const T *add,
                                                 int64_t positions, int c, int cg, int n, int g,
                                                 int k)
{
    gn_pair<T> t;
    const size_t off = (size_t)n * (size_t)(positions * c) + (size_t)g * cg + 2 * k;
    t.x = x + off;
    t.y = y + off;
    t.ch = g * cg + 2 * k;
    t.add0 = add ? cuda_ld(add + (size_t)n * c + t.ch) : 0.0f;
    t.add1 = add ? cuda_ld(add + (size_t)n * c + t.ch + 1) : 0.0f;
    t.shift = gn_group_shift(x + (size_t)n * (size_t)(positions * c), add, n, c, g * cg);
    return t;
}

/* *s, *q = Σ(x + add − shift) and Σ(x + add − shift)² over the pair at positions first,
 * first + step, … */
template <typename T>
__device__ __forceinline__ void gn_pair_sums(const gn_pair<T> &t, int64_t first, int64_t step,
                                             int64_t positions, int c, float *s, float *q)
{
    float ss = 0.0f, qq = 0.0f;
#pragma unroll 8
    for (int64_t p = first; p < positions; p += step) {
        const float2 v = gn_ld2(t.x + p * c);
        const float a = v.x + t.add0 - t.shift, b = v.y + t.add1 - t.shift;
        ss += a + b;
        qq += a * a + b * b;
    }
    *s = ss;
    *q = qq;
}

/* The group's mean and rstd from its sums (double) over cnt values, then the pair at
 * the same positions written as y = (x + add − mean)·rstd·γ + β = x·a + b (then
 * SiLU), b = β + (add − mean)·a. */
template <typename T, bool SILU>
__device__ __forceinline__ void gn_pair_apply(const gn_pair<T> &t, double sum, double sumsq,
                                              double cnt, const T *gamma, const T *beta,
                                              float eps, int64_t first, int64_t step,
                                              int64_t positions, int c)
{
    const double ds = sum / cnt, dq = sumsq / cnt;
    const double var = dq - ds * ds > 0.0 ? dq - ds * ds : 0.0;
    const float mean = t.shift + (float)ds, rstd = (float)(1.0 / sqrt(var + (double)eps));
    const float a0 = rstd * (gamma ? cuda_ld(gamma + t.ch) : 1.0f);
    const float a1 = rstd * (gamma ? cuda_ld(gamma + t.ch + 1) : 1.0f);
    const float ab0[2] = {a0, (beta ? cuda_ld(beta + t.ch) : 0.0f) + (t.add0 - mean) * a0};
    const float ab1[2] = {a1, (beta ? cuda_ld(beta + t.ch + 1) : 0.0f) + (t.add1 - mean) * a1};
#pragma unroll 8
    for (int64_t p = first; p < positions; p += step) {
        const float2 v = gn_ld2(t.x + p * c);
        gn_st2(t.y + p * c, gn_out<SILU>(v.x, ab0), gn_out<SILU>(v.y, ab1));
    }
}

/* grid (G, N), GN_FUSED_THREADS threads: the whole group (n, g) — P positions × cg
 * channels (cg even, f16/bf16, 4-byte aligned) — in one block, one launch instead of
 * three.  Thread (r, k) = (tid / (cg/2), tid % (cg/2)) owns channel pair k of positions
 * r, r + rows, ... (rows = threads / (cg/2)): its sums (gn_pair_sums), reduced over
 * the block in double, then (the group's values again, mostly from L2) the apply
 * (gn_pair_apply).  y may be x. */
template <typename T, bool SILU>
__global__ static void __launch_bounds__(GN_FUSED_THREADS)
    gn_fused_kernel(const T *x, T *y, const T *gamma, const T *beta, const T *add,
                    int64_t positions, int c, int groups, float eps)
{
    cuda_pdl_enter();
    __shared__ double red[32];
    const int g = blockIdx.x, n = blockIdx.y, cg = c / groups, cp = cg / 2;
    const int k = threadIdx.x % cp, r = threadIdx.x / cp, rows = blockDim.x / cp;
    const gn_pair<T> t = gn_pair_at(x, y, add, positions, c, cg, n, g, k);
    float s = 0.0f, q = 0.0f;
    if (r < rows)
        gn_pair_sums(t, r, rows, positions, c, &s, &q);
    const double bs = block_sum_d((double)s, red), bq = block_sum_d((double)q, red);
    if (r < rows)
        gn_pair_apply<T, SILU>(t, bs, bq, (double)positions * cg, gamma, beta, eps, r, rows,
                               positions, c);
}

/* grid (G, N, CL), clusters of (1, 1, CL) blocks, GN_FUSED_THREADS threads (sm_90): the
 * fused kernel's work for group (n, g) split over a cluster — block rank q takes
 * positions q·rows + r, (q + CL)·rows + r, … — each block's sums (double, over the
 * block) put in its shared memory, every block adding all CL of them in rank order (so
 * every block gets the same mean and rstd) through distributed shared memory, then the
 * apply over its own positions.  Every thread of every block reaches both cluster
 * barriers (the second keeps a block's sums alive until the others have read them).
 * y may be x. */
template <typename T, bool SILU>
__global__ static void __launch_bounds__(GN_FUSED_THREADS)
    gn_cluster_kernel(const T *x, T *y, const T *gamma, const T *beta, const T *add,
                      int64_t positions, int c, int groups, float eps)
{
    cuda_pdl_enter();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    namespace coop = cooperative_groups;
    coop::cluster_group cluster = coop::this_cluster();
    __shared__ double red[32];
    __shared__ double sums[2];
    const int g = blockIdx.x, n = blockIdx.y, cg = c / groups, cp = cg / 2;
    const int q = (int)cluster.block_rank(), nq = (int)cluster.num_blocks();
    const int k = threadIdx.x % cp, r = threadIdx.x / cp, rows = blockDim.x / cp;
    const gn_pair<T> t = gn_pair_at(x, y, add, positions, c, cg, n, g, k);
    const int64_t first = (int64_t)q * rows + r, step = (int64_t)rows * nq;
    float s = 0.0f, qs = 0.0f;
    if (r < rows)
        gn_pair_sums(t, first, step, positions, c, &s, &qs);
    const double bs = block_sum_d((double)s, red), bq = block_sum_d((double)qs, red);
    if (threadIdx.x == 0) {
        sums[0] = bs;
        sums[1] = bq;
    }
    cluster.sync();
    double ts = 0.0, tq = 0.0;
    for (int b = 0; b < nq; b++) {
        const double *o = cluster.map_shared_rank(sums, b);
        ts += o[0];
        tq += o[1];
    }
    cluster.sync();
    if (r < rows)
        gn_pair_apply<T, SILU>(t, ts, tq, (double)positions * cg, gamma, beta, eps, first,
                               step, positions, c);
#else
    __trap(); /* launched only where gn_cluster_ok holds */
#endif
}

/* Whether gn_cluster_kernel runs here: cluster launches, and the kernel's code built
 * from compute_90 PTX or later — a build for older GPUs only, JIT-compiled on an H100,
 * would run the __trap stub (a sticky error).  Asked once, kept in cb->gn_cluster. */
static bool gn_cluster_ok(struct cuda_backend *cb)
{
    if (cb->gn_cluster == 0) {
        int cluster = 0;
        struct cudaFuncAttributes fa;
        const bool ok =
            cb->cc_major >= 9 &&
            cudaDeviceGetAttribute(&cluster, cudaDevAttrClusterLaunch, cb->device) ==
                cudaSuccess &&
            cluster && cudaFuncGetAttributes(&fa, gn_cluster_kernel<__half, false>) == cudaSuccess &&
            fa.ptxVersion >= 90;
        if (!ok)
            (void)cudaGetLastError(); /* an attribute query's error is no op's */
        cb->gn_cluster = ok ? 1 : -1;
    }
    return cb->gn_cluster > 0;
}

/* Blocks per cluster for group_norm_kernel 3: 1 (the fused kernel) where clusters do not
 * run (gn_cluster_ok) or when the (sample, group) pairs alone give two blocks per SM;
 * else doubled up to 8 (options.group_norm_cluster_max) while the grid is under two
 * blocks per SM and each block keeps at least four rounds of positions. */
static int gn_cluster_blocks(struct cuda_backend *cb, int64_t n, int groups, int64_t positions,
                             int cg)
{
    if (!gn_cluster_ok(cb))
        return 1;
    const int64_t rows = GN_FUSED_THREADS / (cg / 2);
    const int most = cb->group_norm_cluster_max > 0 && cb->group_norm_cluster_max < 8
                         ? cb->group_norm_cluster_max
                         : 8;
    int cl = 1;
    while (cl * 2 <= most && n * groups * cl < 2 * (int64_t)cb->sm_count &&
           positions >= rows * cl * 4)
        cl *= 2;
    return cl;
}

/* Whether the one-kernel path takes x → y (kernel: options.group_norm_kernel with 0
 * read as CUDA_GN_AUTO_KERNEL): 2 to 4 for groups of at most GN_FUSED_MAX values
 * (every U-Net map; a block per group reading a VAE 512² group twice would leave most
 * SMs idle) — 4 where the tiled path does not apply. */
static bool gn_use_fused(const struct tensor *x, const struct tensor *y, int groups, int kernel)
{
    const int64_t c = tensor_last_dim(x), cg = c / groups;
    const int64_t per_group = tensor_numel(x) / x->shape[0] / groups;
    const bool can = dtype_size(y->dtype) == 2 && cg % 2 == 0 && cg / 2 <= GN_FUSED_THREADS &&
                     ((uintptr_t)x->data & 3u) == 0 && ((uintptr_t)y->data & 3u) == 0 &&
                     per_group <= GN_FUSED_MAX;
    return can && kernel >= 2;
}

/* Chunks per sample for the pair kernel: about GN_BLOCKS blocks in all, at least
 * GN_MIN_ROWS positions each, at most GN_MAX_PAIR_CHUNKS. */
#define GN_BLOCKS 1024
#define GN_MIN_ROWS 8
#define GN_MAX_PAIR_CHUNKS 1024

static int gn_pair_chunks(int64_t n, int64_t positions)
{
    int64_t s = (GN_BLOCKS + n - 1) / n, most = positions / GN_MIN_ROWS;
    if (s > most)
        s = most;
    return (int)(s < 1 ? 1 : s > GN_MAX_PAIR_CHUNKS ? GN_MAX_PAIR_CHUNKS : s);
}

/* Block shape of the pair kernel: bx threads over the C/2 pairs (a multiple of 32, at
 * most 256), by over positions, 256 threads in all. */
static dim3 gn_pair_block(int64_t c)
{
    int64_t bx = (c / 2 + 31) / 32 * 32;
    if (bx > 256)
        bx = 256;
    return dim3((unsigned)bx, (unsigned)(256 / bx));
}

static bool gn_use_pairs(int64_t c, int groups)
{
    return (c / groups) % 2 == 0 && c <= 8192;
}

/* Scratch floats: ab{N, C, 2} then part{N, G, S, 3}. */
static size_t gn_scratch_floats(int64_t n, int64_t c, int64_t positions, int groups)
{
    const int64_t chunks = gn_use_pairs(c, groups) ? gn_pair_chunks(n, positions)
                                                   : gn_chunks(positions * (c / groups));
    return (size_t)n * (size_t)c * 2 + (size_t)n * (size_t)groups * (size_t)chunks * 3;
}

template <typename T>
static void gn_launch(const struct tensor *x, const struct tensor *gamma,
                      const struct tensor *beta, const struct group_norm_params *p,
                      struct tensor *y, float *scratch, struct cuda_launch st)
{
    const int64_t n = x->shape[0], c = tensor_last_dim(x);
    const int64_t positions = tensor_numel(x) / (n * c);
    float *ab = scratch, *part = scratch + 2 * (size_t)n * (size_t)c;
    int chunks;
    if (gn_use_pairs(c, p->groups)) {
        chunks = gn_pair_chunks(n, positions);
        const int64_t len = (positions + chunks - 1) / chunks;
        const dim3 block = gn_pair_block(c);
        const size_t smem = sizeof(float) * 2 * (size_t)block.y * (size_t)(c / 2);
        cuda_launch_kernel(st, gn_pairs_kernel<T>, dim3((unsigned)chunks, (unsigned)n), block, smem, 
            (const T *)x->data, part, positions, (int)c, p->groups, len);
    } else {
        const int64_t count = positions * (c / p->groups);
        chunks = gn_chunks(count);
        const int64_t len = (count + chunks - 1) / chunks;
        dim3 grid((unsigned)p->groups, (unsigned)n, (unsigned)chunks);
        cuda_launch_kernel(st, gn_partial_kernel<T>, grid, GN_THREADS, 0, (const T *)x->data, part, positions,
                                                          c, p->groups, len);
    }
    const T *gp = gamma ? (const T *)gamma->data : (const T *)NULL;
    const T *bp = beta ? (const T *)beta->data : (const T *)NULL;
    cuda_launch_kernel(st, gn_merge_kernel<T>, (unsigned)(n * p->groups), GN_MERGE_THREADS, 0, 
        part, ab, p->groups, chunks, c, gp, bp, p->eps);
    const size_t total = (size_t)tensor_numel(x);
    const bool vec = sizeof(T) == 2 && c % CUDA_VEC == 0 && cuda_aligned16(x->data) &&
                     cuda_aligned16(y->data);
    const unsigned blocks = cuda_blocks(vec ? total / 8 : total, 256);
    if (vec && p->silu)
        cuda_launch_kernel(st, gn_apply8_kernel<T, true>, blocks, 256, 0, (const T *)x->data, (T *)y->data, ab,
                                                          total / 8, positions, c);
    else if (vec)
        cuda_launch_kernel(st, gn_apply8_kernel<T, false>, blocks, 256, 0, (const T *)x->data, (T *)y->data, ab,
                                                           total / 8, positions, c);
    else if (p->silu)
        cuda_launch_kernel(st, gn_apply_kernel<T, true>, blocks, 256, 0, (const T *)x->data, (T *)y->data, ab,
                                                         total, positions, c);
    else
        cuda_launch_kernel(st, gn_apply_kernel<T, false>, blocks, 256, 0, (const T *)x->data, (T *)y->data, ab,
                                                          total, positions, c);
}

/* The one-kernel path: gn_fused_kernel, or gn_cluster_kernel over clusters of `cl`
 * blocks (cl > 1). */
template <typename T, bool SILU>
static cudaError_t gn_launch_fused_as(const T *x, T *y, const T *gp, const T *bp, const T *ap,
                                      int64_t n, int64_t positions, int c,
                                      const struct group_norm_params *p, int cl, struct cuda_launch st)
{
    if (cl <= 1) {
        cuda_launch_kernel(st, gn_fused_kernel<T, SILU>, dim3((unsigned)p->groups, (unsigned)n), GN_FUSED_THREADS, 0, x, y, gp, bp, ap, positions, c, p->groups, p->eps);
        return cudaSuccess;
    }
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)p->groups, (unsigned)n, (unsigned)cl);
    cfg.blockDim = dim3(GN_FUSED_THREADS);
    cfg.stream = st.stream;
    cudaLaunchAttribute attr[2] = {};
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = 1;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = (unsigned)cl;
    attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[1].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = st.pdl ? 2 : 1;
    return cudaLaunchKernelEx(&cfg, gn_cluster_kernel<T, SILU>, x, y, gp, bp, ap, positions, c,
                              p->groups, p->eps);
}

template <typename T>
static cudaError_t gn_launch_fused(const struct tensor *x, const struct tensor *gamma,
                                   const struct tensor *beta, const struct group_norm_params *p,
                                   struct tensor *y, int cl, struct cuda_launch st)
{
    const int64_t n = x->shape[0], c = tensor_last_dim(x);
    const int64_t positions = tensor_numel(x) / (n * c);
    const T *gp = gamma ? (const T *)gamma->data : (const T *)NULL;
    const T *bp = beta ? (const T *)beta->data : (const T *)NULL;
    const T *ap = p->shift ? (const T *)p->shift->data : (const T *)NULL;
    if constexpr (sizeof(T) == 2) { /* gn_use_fused: f16/bf16 only */
        if (p->silu)
            return gn_launch_fused_as<T, true>((const T *)x->data, (T *)y->data, gp, bp, ap, n,
                                               positions, (int)c, p, cl, st);
        return gn_launch_fused_as<T, false>((const T *)x->data, (T *)y->data, gp, bp, ap, n,
                                            positions, (int)c, p, cl, st);
    }
    return cudaErrorInvalidValue; /* gn_use_fused takes f16/bf16 only */
}

/* --- two kernels over whole positions (group_norm_kernel 4) -------------------------- */

/* The one-kernel paths give a block one group: cg channels (20 bytes of a 640-byte
 * position at C = 320) read at a stride of C, so each warp load touches ~7 rows of
 * memory.  The tiled path reads whole positions instead — 16-byte vectors, a warp
 * over contiguous memory — and pays a second launch for it:
 *   1. gn_tile_stats_kernel, grid (S, N), GN_TILE_THREADS threads: thread (r, v) owns
 *      the 8 channels 8v … 8v + 7 (at most two groups: cg ≥ 8) of positions r, r + R, …
 *      of the block's chunk; its shifted sums per group (the one-kernel paths' shift:
 *      the group's first value with its add) are added in double, in thread order, into
 *      part{N, S, G} (sum, sum of squares); the chunk-0 block writes the shifts{N, G};
 *   2. gn_tile_apply_kernel, grid (SB, N), GN_TILE_APPLY_THREADS threads: the groups'
 *      mean and rstd from the S partials (chunk order: every block the same), then
 *      y = x·a + b (then SiLU) over the block's chunk, a thread's 8 channels fixed.
 * Both kernels read x only through the stats (the shifts are kept), so y may be x. */
#define GN_TILE_THREADS 1024
#define GN_TILE_APPLY_THREADS 512
#define GN_TILE_MAX_CHUNKS 16 /* partials per (sample, group) that every apply block adds */
#define GN_TILE_MAX_GROUPS 128

/* Threads per block for kernel capacity `most`: whole rows of C/8 vectors. */
static int gn_tile_threads(int64_t c, int most)
{
    const int vecs = (int)(c / CUDA_VEC);
    return vecs * (most / vecs);
}

template <typename T>
__global__ static void __launch_bounds__(GN_TILE_THREADS)
    gn_tile_stats_kernel(const T *x, const T *add, double2 *part, float *shifts,
                         int64_t positions, int c, int groups, int64_t len)
{
    cuda_pdl_enter();
    __shared__ float4 red[GN_TILE_THREADS]; /* (s0, q0, s1, q1) per thread */
    const int vecs = c / CUDA_VEC, rows = blockDim.x / vecs, n = blockIdx.y, cg = c / groups;
    const int v = threadIdx.x % vecs, r = threadIdx.x / vecs, ch0 = v * CUDA_VEC;
    const int g0 = ch0 / cg, split = (g0 + 1) * cg - ch0; /* channels j < split: group g0 */
    const T *xn = x + (size_t)n * (size_t)positions * c;
    float s0 = 0.0f, q0 = 0.0f, s1 = 0.0f, q1 = 0.0f;
    if (r < rows) {
        const float sh0 = gn_group_shift(xn, add, n, c, g0 * cg);
        const float sh1 = split < CUDA_VEC ? gn_group_shift(xn, add, n, c, (g0 + 1) * cg) : 0.0f;
        float off[CUDA_VEC]; /* x − off = x + add − shift */
#pragma unroll
        for (int j = 0; j < CUDA_VEC; j++)
            off[j] = (j < split ? sh0 : sh1) - (add ? cuda_ld(add + (size_t)n * c + ch0 + j) : 0.0f);
        const int64_t p0 = (int64_t)blockIdx.x * len;
        const int64_t p1 = p0 + len < positions ? p0 + len : positions;
#pragma unroll 4
        for (int64_t p = p0 + r; p < p1; p += rows) {
            float f[CUDA_VEC];
            cuda_ld8(xn + p * c + ch0, f);
#pragma unroll
            for (int j = 0; j < CUDA_VEC; j++) {
                const float d = f[j] - off[j];
                if (j < split) {
                    s0 += d;
                    q0 += d * d;
                } else {
                    s1 += d;
                    q1 += d * d;
                }
            }
        }
    }
    red[threadIdx.x] = make_float4(s0, q0, s1, q1);
    __syncthreads();
    for (int g = threadIdx.x; g < groups; g += blockDim.x) {
        /* the vectors over group g: g is the first group of vf only when vf·8 ≥ g·cg */
        const int vf = g * cg / CUDA_VEC, vl = (g * cg + cg - 1) / CUDA_VEC;
        double s = 0.0, q = 0.0;
        for (int rr = 0; rr < rows; rr++)
            for (int vv = vf; vv <= vl; vv++) {
                const float4 t = red[rr * vecs + vv];
                const bool first = vv * CUDA_VEC / cg == g;
                s += first ? t.x : t.z;
                q += first ? t.y : t.w;
            }
        part[((size_t)n * gridDim.x + blockIdx.x) * groups + g] = make_double2(s, q);
        if (blockIdx.x == 0)
            shifts[(size_t)n * groups + g] = gn_group_shift(xn, add, n, c, g * cg);
    }
}

template <typename T, bool SILU>
__global__ static void __launch_bounds__(GN_TILE_APPLY_THREADS)
    gn_tile_apply_kernel(const T *x, T *y, const T *gamma, const T *beta, const T *add,
                         const double2 *part, const float *shifts, int chunks,
                         int64_t positions, int c, int groups, float eps, int64_t len)
{
    cuda_pdl_enter();
    __shared__ float2 stat[GN_TILE_MAX_GROUPS]; /* (mean, rstd) */
    const int n = blockIdx.y, cg = c / groups;
    for (int g = threadIdx.x; g < groups; g += blockDim.x) {
        double s = 0.0, q = 0.0;
        for (int k = 0; k < chunks; k++) {
            const double2 t = part[((size_t)n * chunks + k) * groups + g];
            s += t.x;
            q += t.y;
        }
        const double cnt = (double)positions * cg, ds = s / cnt, dq = q / cnt;
        const double var = dq - ds * ds > 0.0 ? dq - ds * ds : 0.0;
        stat[g] = make_float2(shifts[(size_t)n * groups + g] + (float)ds,
                              (float)(1.0 / sqrt(var + (double)eps)));
    }
    __syncthreads();
    const int vecs = c / CUDA_VEC, rows = blockDim.x / vecs;
    const int v = threadIdx.x % vecs, r = threadIdx.x / vecs, ch0 = v * CUDA_VEC;
    if (r >= rows)
        return;
    float a[CUDA_VEC], b[CUDA_VEC];
#pragma unroll
    for (int j = 0; j < CUDA_VEC; j++) {
        const int ch = ch0 + j;
        const float2 st = stat[ch / cg];
        a[j] = st.y * (gamma ? cuda_ld(gamma + ch) : 1.0f);
        b[j] = (beta ? cuda_ld(beta + ch) : 0.0f) +
               ((add ? cuda_ld(add + (size_t)n * c + ch) : 0.0f) - st.x) * a[j];
    }
    const size_t base = (size_t)n * (size_t)positions * c + ch0;
    const int64_t p0 = (int64_t)blockIdx.x * len;
    const int64_t p1 = p0 + len < positions ? p0 + len : positions;
#pragma unroll 4
    for (int64_t p = p0 + r; p < p1; p += rows) {
        float f[CUDA_VEC];
        cuda_ld8(x + base + p * c, f);
#pragma unroll
        for (int j = 0; j < CUDA_VEC; j++) {
            const float ab[2] = {a[j], b[j]};
            f[j] = gn_out<SILU>(f[j], ab);
        }
        cuda_st8(y + base + p * c, f);
    }
}

/* Whether the tiled path takes x → y: f16/bf16, C a multiple of 8 (16-byte aligned
 * maps) of at most GN_TILE_THREADS vectors, groups of at least 8 channels (a vector
 * spans at most two), at most GN_TILE_MAX_GROUPS groups, and the one-kernel paths'
 * GN_FUSED_MAX values a group (the U-Net's maps; a VAE map's few blocks of
 * GN_TILE_MAX_CHUNKS partials each would be slow). */
static bool gn_use_tile(const struct tensor *x, const struct tensor *y, int groups)
{
    const int64_t c = tensor_last_dim(x), cg = c / groups;
    const int64_t per_group = tensor_numel(x) / x->shape[0] / groups;
    return dtype_size(y->dtype) == 2 && c % CUDA_VEC == 0 && c / CUDA_VEC <= GN_TILE_APPLY_THREADS &&
           cg >= CUDA_VEC && groups <= GN_TILE_MAX_GROUPS && cuda_aligned16(x->data) &&
           cuda_aligned16(y->data) && per_group <= GN_FUSED_MAX;
}

/* Chunks of positions per sample: about `blocks` blocks in all, at most `most`, each
 * thread at least one position. */
static int gn_tile_chunks(int64_t n, int64_t positions, int64_t rows, int64_t blocks, int most)
{
    int64_t s = (blocks + n - 1) / n;
    const int64_t fill = (positions + rows - 1) / rows;
    if (s > fill)
        s = fill;
    return (int)(s < 1 ? 1 : s > most ? most : s);
}

/* Scratch bytes of the tiled path: part{N, S, G} double2, then shifts{N, G} float. */
static size_t gn_tile_scratch(int64_t n, int chunks, int groups)
{
    return (size_t)n * (size_t)chunks * (size_t)groups * sizeof(double2) +
           (size_t)n * (size_t)groups * sizeof(float);
}

template <typename T>
static void gn_tile_launch(const struct cuda_backend *cb, const struct tensor *x,
                           const struct tensor *gamma, const struct tensor *beta,
                           const struct group_norm_params *p, struct tensor *y, int chunks,
                           void *scratch)
{
    if constexpr (sizeof(T) == 2) { /* gn_use_tile: f16/bf16 only */
    const int64_t n = x->shape[0], c = tensor_last_dim(x);
    const int64_t positions = tensor_numel(x) / (n * c);
    double2 *part = (double2 *)scratch;
    float *shifts = (float *)(part + (size_t)n * (size_t)chunks * (size_t)p->groups);
    const T *xp = (const T *)x->data, *gp = gamma ? (const T *)gamma->data : (const T *)NULL;
    const T *bp = beta ? (const T *)beta->data : (const T *)NULL;
    const T *ap = p->shift ? (const T *)p->shift->data : (const T *)NULL;
    const int ts = gn_tile_threads(c, GN_TILE_THREADS);
    const int64_t len = (positions + chunks - 1) / chunks;
    cuda_launch_kernel(cuda_launch_on(cb), gn_tile_stats_kernel<T>, dim3((unsigned)chunks, (unsigned)n), ts, 0, 
        xp, ap, part, shifts, positions, (int)c, p->groups, len);
    const int ta = gn_tile_threads(c, GN_TILE_APPLY_THREADS);
    const int sb = gn_tile_chunks(n, positions, ta / (c / CUDA_VEC), 2 * (int64_t)cb->sm_count,
                                  65535);
    const int64_t lb = (positions + sb - 1) / sb;
    const dim3 grid((unsigned)sb, (unsigned)n);
    if (p->silu)
        cuda_launch_kernel(cuda_launch_on(cb), gn_tile_apply_kernel<T, true>, grid, ta, 0, 
            xp, (T *)y->data, gp, bp, ap, part, shifts, chunks, positions, (int)c, p->groups,
            p->eps, lb);
    else
        cuda_launch_kernel(cuda_launch_on(cb), gn_tile_apply_kernel<T, false>, grid, ta, 0, 
            xp, (T *)y->data, gp, bp, ap, part, shifts, chunks, positions, (int)c, p->groups,
            p->eps, lb);
    }
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
    const int64_t c = tensor_last_dim(x), positions = tensor_numel(x) / x->shape[0] / c;
    const int kernel = cb->group_norm_kernel ? cb->group_norm_kernel : CUDA_GN_AUTO_KERNEL;
    if (kernel == 4 && gn_use_tile(x, y, p->groups)) {
        const int64_t rows = gn_tile_threads(c, GN_TILE_THREADS) / (c / CUDA_VEC);
        const int chunks = gn_tile_chunks(x->shape[0], positions, 2 * rows, cb->sm_count,
                                          GN_TILE_MAX_CHUNKS);
        TRY(cuda_scratch_reserve(cb, gn_tile_scratch(x->shape[0], chunks, p->groups), err));
        CUDA_DISPATCH(y->dtype, gn_tile_launch<T>(cb, x, gamma, beta, p, y, chunks, cb->scratch));
        return cuda_check_launch(cb, "group_norm", err);
    }
    if (gn_use_fused(x, y, p->groups, kernel)) {
        const int cl = kernel >= 3
                           ? gn_cluster_blocks(cb, x->shape[0], p->groups, positions,
                                               (int)(c / p->groups))
                           : 1;
        cudaError_t e = cudaErrorInvalidValue;
        CUDA_DISPATCH(y->dtype, e = gn_launch_fused<T>(x, gamma, beta, p, y, cl, cuda_launch_on(cb)));
        if (e != cudaSuccess && cl > 1) {
            /* a cluster launch refused without harm (resources, configuration): no
             * clusters from now on, and this call on the one-block kernel */
            (void)cudaGetLastError();
            if (cudaPeekAtLastError() != cudaSuccess)
                return cuda_check(cb, e, "group_norm (cluster launch)", err);
            cb->gn_cluster = -1;
            LOG_WARNF("cuda", "group_norm: cluster launch refused (%s); one block per group",
                      cudaGetErrorString(e));
            CUDA_DISPATCH(y->dtype, e = gn_launch_fused<T>(x, gamma, beta, p, y, 1, cuda_launch_on(cb)));
        }
        if (e != cudaSuccess)
            return cuda_check(cb, e, "group_norm", err);
        return cuda_check_launch(cb, "group_norm", err);
    }
    if (p->shift) /* backend.c adds it first, then the norm */
        return status_fail(err, STATUS_UNSUPPORTED, "cuda group_norm: shift off the fused path");
    const size_t scratch_bytes =
        gn_scratch_floats(x->shape[0], c, positions, p->groups) * sizeof(float);
    TRY(cuda_scratch_reserve(cb, scratch_bytes, err));
    CUDA_DISPATCH(y->dtype, gn_launch<T>(x, gamma, beta, p, y, (float *)cb->scratch, cuda_launch_on(cb)));
    return cuda_check_launch(cb, "group_norm", err);
}

/* One warp per row of x{rows, C}. */
template <typename T>
__global__ static void ln_kernel(const T *x, T *y, const T *gamma, const T *beta, size_t rows,
                                 int64_t c, float eps)
{
    cuda_pdl_enter();
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

#define LN_VEC CUDA_VEC
#define LN_MAX_NV 8  /* vectors per lane: rows up to 32·8·8 = 2048 elements */

/* One warp per row of x{rows, C} held in registers: f16/bf16, C = 8·cv, cv ≤ 32·NV,
 * x, y, gamma, beta 16-byte aligned.  Lane l holds the row's vectors l, l + 32, ...
 * (NV slots, those ≥ cv unused); mean, then Σ(x − mean)² from registers, one write. */
template <typename T, int NV>
__global__ static void ln_vec_kernel(const T *x, T *y, const T *gamma, const T *beta,
                                     size_t rows, int cv, float eps)
{
    cuda_pdl_enter();
    const int lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= rows)
        return;
    const size_t c = (size_t)cv * LN_VEC;
    const T *xr = x + row * c;
    T *yr = y + row * c;
    float v[NV][LN_VEC];
    float s = 0.0f;
#pragma unroll
    for (int t = 0; t < NV; t++) {
        const int j = lane + 32 * t;
        if (j < cv) {
            cuda_ld8(xr + (size_t)j * LN_VEC, v[t]);
#pragma unroll
            for (int e = 0; e < LN_VEC; e++)
                s += v[t][e];
        } else {
#pragma unroll
            for (int e = 0; e < LN_VEC; e++)
                v[t][e] = 0.0f;
        }
    }
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    const float mean = s / (float)c;
    float s2 = 0.0f;
#pragma unroll
    for (int t = 0; t < NV; t++) {
        if (lane + 32 * t < cv) {
#pragma unroll
            for (int e = 0; e < LN_VEC; e++) {
                float d = v[t][e] - mean;
                s2 += d * d;
            }
        }
    }
    for (int o = 16; o > 0; o >>= 1)
        s2 += __shfl_xor_sync(0xffffffffu, s2, o);
    const float rstd = rsqrtf(s2 / (float)c + eps);
#pragma unroll
    for (int t = 0; t < NV; t++) {
        const int j = lane + 32 * t;
        if (j >= cv)
            continue;
        float out[LN_VEC], p[LN_VEC];
#pragma unroll
        for (int e = 0; e < LN_VEC; e++)
            out[e] = (v[t][e] - mean) * rstd;
        if (gamma) {
            cuda_ld8(gamma + (size_t)j * LN_VEC, p);
#pragma unroll
            for (int e = 0; e < LN_VEC; e++)
                out[e] *= p[e];
        }
        if (beta) {
            cuda_ld8(beta + (size_t)j * LN_VEC, p);
#pragma unroll
            for (int e = 0; e < LN_VEC; e++)
                out[e] += p[e];
        }
        cuda_st8(yr + (size_t)j * LN_VEC, out);
    }
}

/* The register kernel (NV = vectors per lane, 1..LN_MAX_NV) when it applies, else the
 * general one. */
template <typename T>
static void ln_launch(const T *x, T *y, const T *gamma, const T *beta, size_t rows, int64_t c,
                      float eps, unsigned blocks, struct cuda_launch st)
{
    const unsigned th = LN_WARPS * 32;
    if constexpr (sizeof(T) == 2) {
        if (c % LN_VEC == 0 && c <= 32 * LN_VEC * LN_MAX_NV && cuda_aligned16(x) && cuda_aligned16(y) &&
            cuda_aligned16(gamma) && cuda_aligned16(beta)) {
            const int cv = (int)(c / LN_VEC), nv = (cv + 31) / 32;
            switch (nv) {
#define LN_CASE(NV)                                                                       \
    case NV:                                                                              \
        cuda_launch_kernel(st, ln_vec_kernel<T, NV>, blocks, th, 0, x, y, gamma, beta, rows, cv, eps);    \
        return;
                LN_CASE(1) LN_CASE(2) LN_CASE(3) LN_CASE(4)
                LN_CASE(5) LN_CASE(6) LN_CASE(7) LN_CASE(8)
#undef LN_CASE
            default: break;
            }
        }
    }
    cuda_launch_kernel(st, ln_kernel<T>, blocks, th, 0, x, y, gamma, beta, rows, c, eps);
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
    CUDA_DISPATCH(y->dtype, ln_launch<T>((const T *)x->data, (T *)y->data,
                                         gamma ? (const T *)gamma->data : (const T *)NULL,
                                         beta ? (const T *)beta->data : (const T *)NULL, rows,
                                         c, eps, (unsigned)blocks, cuda_launch_on(cb)));
    return cuda_check_launch(cb, "layer_norm", err);
}
