/* engine/cuda/cuda_attention.cu — flash attention (online softmax, f32 accumulation,
 * no Nq×Nk buffer) over q{B,Nq,H·D}, k/v{B,Nk,H·D}, y{B,Nq,H·D}.
 *
 * Tiled kernel (D ≤ 256, any D: SD1.5's 40/80/160, 64, 128, odd ones too): a block of FA_WARPS
 * warps owns FA_WARPS·FA_ROWS query rows of one (batch, head); it walks the keys in
 * tiles of 32, staged as f32 in shared memory (rows padded to D+1: conflict-free).
 * Per row and tile, lane j scores key j (a full dot product against the row's scaled
 * q in shared memory), the warp takes the tile maximum and sum by shuffles, rescales
 * the row's accumulator (lane owns dims lane, lane+32, ...) and adds Σ_j p_j·v_j.
 * Causal: keys past the block's last query are never loaded; key j > query i scores
 * −inf.
 * Generic kernel (D > 256): one block per (query row, head, batch), the q row and the
 * accumulator in shared memory, 128 keys scored per round (one per thread).
 *
 * The scaled scores s = (q·scale)·k (the CPU reference computes (q·k)·scale: the
 * difference is f32 rounding). */
#include <math.h>

#include "engine/cuda/cuda_internal.h"

#define FA_WARPS 4
#define FA_ROWS 4 /* query rows per warp */
#define FA_BK 32  /* keys per tile (one per lane) */
#define FA_GENERIC_THREADS 128

struct fa_dims {
    int64_t nq, nk;
    int heads, d;
    float scale;
    bool causal;
};

template <typename T, int MAXD>
__global__ static void __launch_bounds__(FA_WARPS * 32)
    fa_tiled_kernel(const T *q, const T *k, const T *v, T *y, struct fa_dims p)
{
    extern __shared__ float smem[];
    const int d = p.d, dp = d + 1, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t ld = (int64_t)p.heads * d; /* row stride of every tensor */
    const int h = blockIdx.y, bz = blockIdx.z;
    const int64_t q0 = (int64_t)blockIdx.x * (FA_WARPS * FA_ROWS);
    float *ks = smem;                              /* [FA_BK][dp] */
    float *vs = ks + FA_BK * dp;                   /* [FA_BK][dp] */
    float *qs = vs + FA_BK * dp;                   /* [FA_WARPS·FA_ROWS][d] */
    float *ps = qs + FA_WARPS * FA_ROWS * d;       /* [FA_WARPS][FA_BK] */

    const T *qb = q + (size_t)bz * (size_t)(p.nq * ld) + (size_t)h * d;
    const T *kb = k + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    const T *vb = v + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    T *yb = y + (size_t)bz * (size_t)(p.nq * ld) + (size_t)h * d;

    for (int e = threadIdx.x; e < FA_WARPS * FA_ROWS * d; e += blockDim.x) {
        int r = e / d, c = e - r * d;
        int64_t i = q0 + r;
        qs[e] = i < p.nq ? cuda_ld(qb + i * ld + c) * p.scale : 0.0f;
    }

    constexpr int NT = MAXD / 32;
    float acc[FA_ROWS][NT];
    float m[FA_ROWS], l[FA_ROWS];
#pragma unroll
    for (int r = 0; r < FA_ROWS; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int t = 0; t < NT; t++)
            acc[r][t] = 0.0f;
    }

    int64_t last_q = q0 + FA_WARPS * FA_ROWS - 1;
    if (last_q > p.nq - 1)
        last_q = p.nq - 1;
    const int64_t nk = p.causal ? (last_q + 1 < p.nk ? last_q + 1 : p.nk) : p.nk;

    for (int64_t k0 = 0; k0 < nk; k0 += FA_BK) {
        __syncthreads(); /* the previous tile is no longer read */
        for (int e = threadIdx.x; e < FA_BK * d; e += blockDim.x) {
            int j = e / d, c = e - j * d;
            int64_t key = k0 + j;
            bool in = key < p.nk;
            ks[j * dp + c] = in ? cuda_ld(kb + key * ld + c) : 0.0f;
            vs[j * dp + c] = in ? cuda_ld(vb + key * ld + c) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < FA_ROWS; r++) {
            const int64_t i = q0 + warp * FA_ROWS + r;
            if (i >= p.nq || (p.causal && k0 > i))
                continue; /* warp-uniform */
            const float *qr = qs + (warp * FA_ROWS + r) * d;
            const int64_t key = k0 + lane;
            float s = -INFINITY;
            if (key < p.nk && (!p.causal || key <= i)) {
                const float *kr = ks + lane * dp;
                float dot = 0.0f;
                for (int c = 0; c < d; c++)
                    dot = fmaf(qr[c], kr[c], dot);
                s = dot;
            }
            float tmax = s;
            for (int o = 16; o > 0; o >>= 1)
                tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
            const float m_new = fmaxf(m[r], tmax); /* finite: key k0 ≤ i is visible */
            const float pj = s == -INFINITY ? 0.0f : expf(s - m_new);
            const float corr = expf(m[r] - m_new); /* m = −inf → 0 */
            float psum = pj;
            for (int o = 16; o > 0; o >>= 1)
                psum += __shfl_xor_sync(0xffffffffu, psum, o);
            l[r] = l[r] * corr + psum;
            m[r] = m_new;
            ps[warp * FA_BK + lane] = pj;
            __syncwarp();
#pragma unroll
            for (int t = 0; t < NT; t++) {
                const int c = lane + 32 * t;
                if (c < d) {
                    float a = acc[r][t] * corr;
                    const float *pw = ps + warp * FA_BK;
#pragma unroll 8
                    for (int j = 0; j < FA_BK; j++)
                        a = fmaf(pw[j], vs[j * dp + c], a);
                    acc[r][t] = a;
                }
            }
            __syncwarp();
        }
    }

#pragma unroll
    for (int r = 0; r < FA_ROWS; r++) {
        const int64_t i = q0 + warp * FA_ROWS + r;
        if (i >= p.nq)
            continue;
        const float inv = 1.0f / l[r];
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const int c = lane + 32 * t;
            if (c < d)
                cuda_st(yb + i * ld + c, acc[r][t] * inv);
        }
    }
}

/* grid (Nq, H, B); shared: q[d], acc[d], s[FA_GENERIC_THREADS], red[32]. */
template <typename T>
__global__ static void fa_generic_kernel(const T *q, const T *k, const T *v, T *y,
                                         struct fa_dims p)
{
    extern __shared__ float smem[];
    const int d = p.d;
    const int64_t ld = (int64_t)p.heads * d, i = blockIdx.x;
    const int h = blockIdx.y, bz = blockIdx.z;
    float *qs = smem, *acc = qs + d, *sc = acc + d, *red = sc + FA_GENERIC_THREADS;
    const T *qr = q + (size_t)bz * (size_t)(p.nq * ld) + (size_t)i * ld + (size_t)h * d;
    const T *kb = k + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    const T *vb = v + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        qs[c] = cuda_ld(qr + c) * p.scale;
        acc[c] = 0.0f;
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int64_t nk = p.causal ? i + 1 : p.nk;
    float m = -INFINITY, l = 0.0f;
    for (int64_t k0 = 0; k0 < nk; k0 += FA_GENERIC_THREADS) {
        const int64_t key = k0 + threadIdx.x;
        float s = -INFINITY;
        if (key < nk) {
            const T *kr = kb + key * ld;
            float dot = 0.0f;
            for (int c = 0; c < d; c++)
                dot = fmaf(qs[c], cuda_ld(kr + c), dot);
            s = dot;
        }
        float t = s;
        for (int o = 16; o > 0; o >>= 1)
            t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, o));
        if (lane == 0)
            red[warp] = t;
        __syncthreads();
        float tmax = -INFINITY;
        for (int w = 0; w < nw; w++)
            tmax = fmaxf(tmax, red[w]);
        const float m_new = fmaxf(m, tmax);
        const float pj = s == -INFINITY ? 0.0f : expf(s - m_new);
        sc[threadIdx.x] = pj;
        __syncthreads();
        float psum = 0.0f;
        for (int j = 0; j < FA_GENERIC_THREADS; j++)
            psum += sc[j];
        const float corr = expf(m - m_new);
        l = l * corr + psum;
        m = m_new;
        const int64_t kcount = nk - k0 < FA_GENERIC_THREADS ? nk - k0 : FA_GENERIC_THREADS;
        for (int c = threadIdx.x; c < d; c += blockDim.x) {
            float a = acc[c] * corr;
            for (int64_t j = 0; j < kcount; j++)
                a = fmaf(sc[j], cuda_ld(vb + (k0 + j) * ld + c), a);
            acc[c] = a;
        }
        __syncthreads(); /* sc and red are rewritten next round */
    }
    T *yr = y + (size_t)bz * (size_t)(p.nq * ld) + (size_t)i * ld + (size_t)h * d;
    const float inv = 1.0f / l;
    for (int c = threadIdx.x; c < d; c += blockDim.x)
        cuda_st(yr + c, acc[c] * inv);
}

static size_t fa_tiled_smem(int d)
{
    return sizeof(float) * (size_t)(2 * FA_BK * (d + 1) + FA_WARPS * FA_ROWS * d + FA_WARPS * FA_BK);
}

template <typename T>
static cudaError_t fa_launch(const T *q, const T *k, const T *v, T *y, int64_t batch,
                             const struct fa_dims *p, cudaStream_t st)
{
    if (p->d <= 256) {
        const int rows = FA_WARPS * FA_ROWS;
        dim3 grid((unsigned)((p->nq + rows - 1) / rows), (unsigned)p->heads, (unsigned)batch);
        size_t smem = fa_tiled_smem(p->d);
        if (p->d <= 64) {
            fa_tiled_kernel<T, 64><<<grid, FA_WARPS * 32, smem, st>>>(q, k, v, y, *p);
        } else if (p->d <= 128) {
            fa_tiled_kernel<T, 128><<<grid, FA_WARPS * 32, smem, st>>>(q, k, v, y, *p);
        } else {
            /* 52 KiB (D = 160) to 83 KiB (D = 256): above the default 48 KiB */
            cudaError_t e = cudaFuncSetAttribute(fa_tiled_kernel<T, 256>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 (int)smem);
            if (e != cudaSuccess)
                return e;
            fa_tiled_kernel<T, 256><<<grid, FA_WARPS * 32, smem, st>>>(q, k, v, y, *p);
        }
        return cudaGetLastError();
    }
    size_t smem = sizeof(float) * (size_t)(2 * p->d + FA_GENERIC_THREADS + 32);
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(fa_generic_kernel<T>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)smem);
        if (e != cudaSuccess)
            return e;
    }
    dim3 grid((unsigned)p->nq, (unsigned)p->heads, (unsigned)batch);
    fa_generic_kernel<T><<<grid, FA_GENERIC_THREADS, smem, st>>>(q, k, v, y, *p);
    return cudaGetLastError();
}

enum status cuda_attention(struct backend *b, const struct tensor *q, const struct tensor *k,
                           const struct tensor *v, const struct attention_params *p,
                           struct tensor *y, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    struct fa_dims dims;
    dims.nq = q->shape[1];
    dims.nk = k->shape[1];
    dims.heads = p->heads;
    dims.d = (int)(q->shape[2] / p->heads);
    dims.scale = p->scale;
    dims.causal = p->causal;
    const int64_t batch = q->shape[0];
    if (batch > 65535 || p->heads > 65535 || (dims.d > 256 && dims.nq > 2147483647) ||
        sizeof(float) * (size_t)(2 * dims.d + FA_GENERIC_THREADS + 32) > 200 * 1024)
        return status_fail(err, STATUS_UNSUPPORTED,
                           "cuda attention: batch %lld, %d heads of %d dims is beyond this kernel",
                           (long long)batch, p->heads, dims.d);
    cudaError_t e = cudaSuccess;
    CUDA_DISPATCH(y->dtype, e = fa_launch<T>((const T *)q->data, (const T *)k->data,
                                             (const T *)v->data, (T *)y->data, batch, &dims,
                                             cb->stream));
    return cuda_check(cb, e, "attention", err);
}
