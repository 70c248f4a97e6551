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
 * f16/bf16 with head dims that are multiples of 8 up to 160 go to cuda_flash.cu's
 * register-resident kernel (mma.sync, P and O in registers), and multiples of 8 in
 * (160, 512] (the VAE's 512-wide head) to cuda_flash_wide.cu's (the same loop with the
 * head dim split across 4 warps); both need compute capability ≥ 8.0, 16-byte aligned
 * tensors and attention_scalar off.  The kernels here take the rest.
 *
 * WMMA tensor-core kernel (f16/bf16, D ≤ 512, compute capability ≥ 8.0; the default for
 * what the flash kernels do not take: odd head dims, and the wide heads where
 * cuda_flash_wide.cu's shared memory does not fit): FlashAttention-2's loop on WMMA
 * 16×16×16 fragments.  A block of 4 warps owns 64 query rows (16 per warp) of one
 * (batch, head); Q, and per step 64 keys of K and V, sit in shared memory in T with the
 * head dim zero-padded to Dp (a multiple of 16).  Above Dp = 256 (a 512-wide head) 2
 * warps and 32-key tiles, so that it fits the 227 KiB of an H100's shared memory.
 * Per warp and key tile: S = Q·Kᵀ (f32 fragments → shared), the online softmax over
 * its 16 rows (two lanes per row; scale applied to the f32 scores; masked keys −inf),
 * P → T in shared, the f32 output rows (in shared memory, so they can be rescaled per
 * row) rescaled by e^(m_old − m_new), then O += P·V on fragments.  Finally O / l.
 * options.attention_scalar forces the f32 kernels below (the conformance suite checks
 * both).
 *
 * The scaled scores of the scalar kernels are s = (q·scale)·k (the CPU reference
 * computes (q·k)·scale: the difference is f32 rounding). */
#include <math.h>
#include <mma.h>

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
    cuda_pdl_enter();
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
    cuda_pdl_enter();
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

/* --- tensor-core kernel --------------------------------------------------------------- */

#define FW_ROWS 16 /* query rows per warp (one fragment row) */

/* Two shapes: head dims ≤ 256 take 4 warps and 64-key tiles; ≤ 512 (the VAE's one
 * 512-wide head) 2 warps and 32-key tiles, to fit shared memory. */
#define FW_WARPS_S 4
#define FW_BK_S 64
#define FW_WARPS_L 2
#define FW_BK_L 32

/* Shared memory of the WMMA kernel for padded head dim dp (every region a multiple of
 * 32 bytes, as load/store_matrix_sync need). */
static size_t fw_smem(int dp, size_t t_size, int warps, int bk)
{
    const size_t q = (size_t)warps * FW_ROWS * dp, kv = 2 * (size_t)bk * dp;
    const size_t p = (size_t)warps * FW_ROWS * bk;
    return t_size * (q + kv + p) +
           sizeof(float) * (p + (size_t)warps * FW_ROWS * dp + 3 * (size_t)warps * FW_ROWS);
}

template <typename T, int FW_WARPS, int FW_BK>
__global__ static void __launch_bounds__(FW_WARPS * 32)
    fa_wmma_kernel(const T *q, const T *k, const T *v, T *y, struct fa_dims p, int dp)
{
    cuda_pdl_enter();
    constexpr int HALF = FW_BK / 2; /* keys per lane in the softmax (two lanes per row) */
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    namespace wm = nvcuda::wmma;
    extern __shared__ __align__(128) unsigned char fw_raw[];
    const int d = p.d, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t ld = (int64_t)p.heads * d;
    const int h = blockIdx.y, bz = blockIdx.z;
    const int64_t q0 = (int64_t)blockIdx.x * (FW_WARPS * FW_ROWS);
    const int64_t w0 = q0 + warp * FW_ROWS; /* this warp's first query row */

    T *qs = (T *)fw_raw;                           /* [64][dp] */
    T *ks = qs + FW_WARPS * FW_ROWS * dp;          /* [FW_BK][dp] */
    T *vs = ks + FW_BK * dp;                       /* [FW_BK][dp] */
    T *ps = vs + FW_BK * dp;                       /* [warps][16][FW_BK] */
    float *ss = (float *)(ps + FW_WARPS * FW_ROWS * FW_BK); /* [warps][16][FW_BK] */
    float *os = ss + FW_WARPS * FW_ROWS * FW_BK;   /* [warps][16][dp] */
    float *rm = os + FW_WARPS * FW_ROWS * dp;      /* [warps·16] running max */
    float *rl = rm + FW_WARPS * FW_ROWS;           /* running sum */
    float *rc = rl + FW_WARPS * FW_ROWS;           /* this tile's correction */
    T *pw = ps + warp * FW_ROWS * FW_BK;
    float *sw = ss + warp * FW_ROWS * FW_BK, *ow = os + warp * FW_ROWS * dp;

    const T *qb = q + (size_t)bz * (size_t)(p.nq * ld) + (size_t)h * d;
    const T *kb = k + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    const T *vb = v + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    T *yb = y + (size_t)bz * (size_t)(p.nq * ld) + (size_t)h * d;

    for (int e = threadIdx.x; e < FW_WARPS * FW_ROWS * dp; e += blockDim.x) {
        int r = e / dp, c = e - r * dp;
        int64_t i = q0 + r;
        if (i < p.nq && c < d)
            qs[e] = qb[i * ld + c];
        else
            cuda_st(qs + e, 0.0f);
    }
    for (int e = lane; e < FW_ROWS * dp; e += 32)
        ow[e] = 0.0f;
    if (lane < FW_ROWS) {
        rm[warp * FW_ROWS + lane] = -INFINITY;
        rl[warp * FW_ROWS + lane] = 0.0f;
    }

    int64_t last_q = q0 + FW_WARPS * FW_ROWS - 1;
    if (last_q > p.nq - 1)
        last_q = p.nq - 1;
    const int64_t nk = p.causal ? (last_q + 1 < p.nk ? last_q + 1 : p.nk) : p.nk;
    const int nd = dp / 16;

    for (int64_t k0 = 0; k0 < nk; k0 += FW_BK) {
        __syncthreads(); /* the previous tile is no longer read */
        for (int e = threadIdx.x; e < FW_BK * dp; e += blockDim.x) {
            int j = e / dp, c = e - j * dp;
            int64_t key = k0 + j;
            if (key < p.nk && c < d) {
                ks[e] = kb[key * ld + c];
                vs[e] = vb[key * ld + c];
            } else {
                cuda_st(ks + e, 0.0f);
                cuda_st(vs + e, 0.0f);
            }
        }
        __syncthreads();
        /* warp-uniform: no rows of this warp, or every key of the tile hidden */
        if (w0 >= p.nq || (p.causal && k0 > w0 + FW_ROWS - 1))
            continue;

        /* S{16, 64} = Q_w{16, dp} · K_tileᵀ{dp, 64} */
        for (int j = 0; j < FW_BK / 16; j++) {
            wm::fragment<wm::accumulator, 16, 16, 16, float> acc;
            wm::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < nd; kk++) {
                wm::fragment<wm::matrix_a, 16, 16, 16, T, wm::row_major> a;
                wm::fragment<wm::matrix_b, 16, 16, 16, T, wm::col_major> b;
                wm::load_matrix_sync(a, qs + warp * FW_ROWS * dp + kk * 16, dp);
                wm::load_matrix_sync(b, ks + j * 16 * dp + kk * 16, dp);
                wm::mma_sync(acc, a, b, acc);
            }
            wm::store_matrix_sync(sw + j * 16, acc, FW_BK, wm::mem_row_major);
        }
        __syncwarp();

        /* online softmax: lanes 2r and 2r+1 share row r, HALF keys each */
        {
            const int r = lane >> 1, half = lane & 1;
            const int64_t i = w0 + r;
            float s[HALF];
            float tmax = -INFINITY;
#pragma unroll
            for (int c = 0; c < HALF; c++) {
                const int col = half * HALF + c;
                const int64_t key = k0 + col;
                const bool ok = i < p.nq && key < p.nk && (!p.causal || key <= i);
                s[c] = ok ? sw[r * FW_BK + col] * p.scale : -INFINITY;
                tmax = fmaxf(tmax, s[c]);
            }
            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
            const float m_old = rm[warp * FW_ROWS + r];
            const float m_new = fmaxf(m_old, tmax);
            float sum = 0.0f, corr = 1.0f;
            if (m_new != -INFINITY) {
                corr = expf(m_old - m_new); /* m_old = −inf → 0 */
#pragma unroll
                for (int c = 0; c < HALF; c++) {
                    const float e = s[c] == -INFINITY ? 0.0f : expf(s[c] - m_new);
                    cuda_st(pw + r * FW_BK + half * HALF + c, e);
                    sum += e;
                }
            } else {
#pragma unroll
                for (int c = 0; c < HALF; c++)
                    cuda_st(pw + r * FW_BK + half * HALF + c, 0.0f);
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            __syncwarp();
            if (half == 0) {
                rl[warp * FW_ROWS + r] = rl[warp * FW_ROWS + r] * corr + sum;
                rm[warp * FW_ROWS + r] = m_new;
                rc[warp * FW_ROWS + r] = corr;
            }
        }
        __syncwarp();
        for (int e = lane; e < FW_ROWS * dp; e += 32)
            ow[e] *= rc[warp * FW_ROWS + e / dp];
        __syncwarp();

        /* O_w{16, dp} += P{16, 64} · V_tile{64, dp} */
        for (int dd = 0; dd < nd; dd++) {
            wm::fragment<wm::accumulator, 16, 16, 16, float> o;
            wm::load_matrix_sync(o, ow + dd * 16, dp, wm::mem_row_major);
            for (int jj = 0; jj < FW_BK / 16; jj++) {
                wm::fragment<wm::matrix_a, 16, 16, 16, T, wm::row_major> a;
                wm::fragment<wm::matrix_b, 16, 16, 16, T, wm::row_major> b;
                wm::load_matrix_sync(a, pw + jj * 16, FW_BK);
                wm::load_matrix_sync(b, vs + jj * 16 * dp + dd * 16, dp);
                wm::mma_sync(o, a, b, o);
            }
            wm::store_matrix_sync(ow + dd * 16, o, dp, wm::mem_row_major);
        }
        __syncwarp();
    }

    for (int e = lane; e < FW_ROWS * dp; e += 32) {
        const int r = e / dp, c = e - r * dp;
        const int64_t i = w0 + r;
        if (i < p.nq && c < d)
            cuda_st(yb + i * ld + c, ow[e] / rl[warp * FW_ROWS + r]);
    }
#else
    (void)q, (void)k, (void)v, (void)y, (void)p, (void)dp;
    __trap(); /* never launched: the host checks the compute capability */
#endif
}

template <typename T, int WARPS, int BK>
static cudaError_t fw_launch_as(const T *q, const T *k, const T *v, T *y, int64_t batch,
                                const struct fa_dims *p, int dp, struct cuda_launch st)
{
    const size_t smem = fw_smem(dp, sizeof(T), WARPS, BK);
    cudaError_t e = cudaFuncSetAttribute(fa_wmma_kernel<T, WARPS, BK>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess)
        return e;
    const int rows = WARPS * FW_ROWS;
    dim3 grid((unsigned)((p->nq + rows - 1) / rows), (unsigned)p->heads, (unsigned)batch);
    cuda_launch_kernel(st, fa_wmma_kernel<T, WARPS, BK>, grid, WARPS * 32, smem, q, k, v, y, *p, dp);
    return cudaGetLastError();
}

/* Shared memory the WMMA kernel needs for head dim d (0: no shape takes d). */
static size_t fw_need(int d, size_t t_size)
{
    const int dp = (d + 15) / 16 * 16;
    if (dp <= 256)
        return fw_smem(dp, t_size, FW_WARPS_S, FW_BK_S);
    if (dp <= 512)
        return fw_smem(dp, t_size, FW_WARPS_L, FW_BK_L);
    return 0;
}

template <typename T>
static cudaError_t fw_launch(const T *q, const T *k, const T *v, T *y, int64_t batch,
                             const struct fa_dims *p, struct cuda_launch st)
{
    const int dp = (p->d + 15) / 16 * 16;
    if (dp <= 256)
        return fw_launch_as<T, FW_WARPS_S, FW_BK_S>(q, k, v, y, batch, p, dp, st);
    return fw_launch_as<T, FW_WARPS_L, FW_BK_L>(q, k, v, y, batch, p, dp, st);
}

/* The tensor-core kernel exists for the 16-bit types only. */
template <typename T>
static bool fw_try(const T *q, const T *k, const T *v, T *y, int64_t batch,
                   const struct fa_dims *p, struct cuda_launch st, cudaError_t *e)
{ /* f32: no tensor-core kernel */
    (void)q, (void)k, (void)v, (void)y, (void)batch, (void)p, (void)st, (void)e;
    return false;
}
template <>
bool fw_try<__half>(const __half *q, const __half *k, const __half *v, __half *y, int64_t batch,
                    const struct fa_dims *p, struct cuda_launch st, cudaError_t *e)
{
    *e = fw_launch<__half>(q, k, v, y, batch, p, st);
    return true;
}
template <>
bool fw_try<__nv_bfloat16>(const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                           const __nv_bfloat16 *v, __nv_bfloat16 *y, int64_t batch,
                           const struct fa_dims *p, struct cuda_launch st, cudaError_t *e)
{
    *e = fw_launch<__nv_bfloat16>(q, k, v, y, batch, p, st);
    return true;
}


static size_t fa_tiled_smem(int d)
{
    return sizeof(float) * (size_t)(2 * FA_BK * (d + 1) + FA_WARPS * FA_ROWS * d + FA_WARPS * FA_BK);
}

/* max_smem: the device's opt-in shared memory per block; a kernel needing more is
 * passed over for the next one (tensor cores → tiled → generic). */
template <typename T>
static cudaError_t fa_launch(const T *q, const T *k, const T *v, T *y, int64_t batch,
                             const struct fa_dims *p, bool tensor_cores, size_t max_smem,
                             struct cuda_launch st)
{
    cudaError_t e = cudaSuccess;
    const size_t fw = fw_need(p->d, sizeof(T));
    if (tensor_cores && fw > 0 && fw <= max_smem && fw_try<T>(q, k, v, y, batch, p, st, &e))
        return e;
    if (p->d <= 256 && fa_tiled_smem(p->d) <= max_smem) {
        const int rows = FA_WARPS * FA_ROWS;
        dim3 grid((unsigned)((p->nq + rows - 1) / rows), (unsigned)p->heads, (unsigned)batch);
        size_t smem = fa_tiled_smem(p->d);
        if (p->d <= 64) {
            cuda_launch_kernel(st, fa_tiled_kernel<T, 64>, grid, FA_WARPS * 32, smem, q, k, v, y, *p);
        } else if (p->d <= 128) {
            cuda_launch_kernel(st, fa_tiled_kernel<T, 128>, grid, FA_WARPS * 32, smem, q, k, v, y, *p);
        } else {
            /* 52 KiB (D = 160) to 83 KiB (D = 256): above the default 48 KiB */
            cudaError_t e = cudaFuncSetAttribute(fa_tiled_kernel<T, 256>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 (int)smem);
            if (e != cudaSuccess)
                return e;
            cuda_launch_kernel(st, fa_tiled_kernel<T, 256>, grid, FA_WARPS * 32, smem, q, k, v, y, *p);
        }
        return cudaGetLastError();
    }
    size_t smem = sizeof(float) * (size_t)(2 * p->d + FA_GENERIC_THREADS + 32);
    if (smem > 48 * 1024) {
        e = cudaFuncSetAttribute(fa_generic_kernel<T>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)smem);
        if (e != cudaSuccess)
            return e;
    }
    dim3 grid((unsigned)p->nq, (unsigned)p->heads, (unsigned)batch);
    cuda_launch_kernel(st, fa_generic_kernel<T>, grid, FA_GENERIC_THREADS, smem, q, k, v, y, *p);
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
    if (batch > 65535 || p->heads > 65535 || dims.nq > 2147483647 ||
        sizeof(float) * (size_t)(2 * dims.d + FA_GENERIC_THREADS + 32) > cb->max_smem)
        return status_fail(err, STATUS_UNSUPPORTED,
                           "cuda attention: batch %lld, %d heads of %d dims is beyond this kernel",
                           (long long)batch, p->heads, dims.d);
    cudaError_t e = cudaSuccess;
    if (cuda_flash_supports(cb, y->dtype, dims.d, q->data, k->data, v->data, y->data)) {
        e = cuda_flash_launch(cb, y->dtype, q->data, k->data, v->data, y->data, batch, dims.nq,
                              dims.nk, dims.heads, dims.d, dims.scale, dims.causal);
        return cuda_check(cb, e, "attention", err);
    }
    if (cuda_flash_wide_supports(cb, y->dtype, dims.d, q->data, k->data, v->data, y->data)) {
        e = cuda_flash_wide_launch(cb, y->dtype, q->data, k->data, v->data, y->data, batch,
                                   dims.nq, dims.nk, dims.heads, dims.d, dims.scale,
                                   dims.causal);
        return cuda_check(cb, e, "attention", err);
    }
    const bool tc = !cb->attention_scalar && cb->cc_major >= 8;
    CUDA_DISPATCH(y->dtype, e = fa_launch<T>((const T *)q->data, (const T *)k->data,
                                             (const T *)v->data, (T *)y->data, batch, &dims,
                                             tc, cb->max_smem, cuda_launch_on(cb)));
    return cuda_check(cb, e, "attention", err);
}
