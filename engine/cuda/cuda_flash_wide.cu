/* engine/cuda/cuda_flash_wide.cu — the flash-attention kernel for wide heads (f16/bf16,
 * compute capability ≥ 8.0, head dims that are multiples of 8 in (160, 512]: the SD VAE's
 * single 512-wide head).  cuda_flash.cu takes the heads up to 160; its register-resident
 * loop does not fit a 16×512 f32 output tile per warp (256 registers a thread), so this
 * one splits the head dim across warps.  The PTX wrappers (cm_*) are in cuda_mma.h.
 *
 * Layout as every attention kernel here: q{B,Nq,H·D}, k/v{B,Nk,H·D}, y{B,Nq,H·D}, the
 * head h in columns [h·D, (h+1)·D) of each row.
 *
 * FlashAttention-2's loop on mma.sync m16n8k16 (f32 accumulators).  A block of 8 warps
 * owns 32 query rows of one (batch, head): 2 row groups of 16 rows × 4 dim slices.  DP
 * is D rounded up to 64 (the padding columns are zero: cp.async with source size 0);
 * the warp (row group r, slice c) owns dims [c·DP/4, (c+1)·DP/4) of its group's rows:
 * their Q fragments (DP/64 × 4 registers) and their O{16, DP/4} accumulators.
 *   - Per step, a tile of 32 keys of K{32, DP} and V{32, DP} is copied to shared memory
 *     with cp.async, 16 bytes at a time, double-buffered: tile j+1 loads while tile j is
 *     computed.  Rows are DP + 8 elements apart, so ldmatrix's eight 16-byte row reads
 *     fall in different banks.  Keys past Nk are zero-filled and masked.  Q goes once,
 *     at the start, to the second stage's K rows (free until tile 1 loads), and from
 *     there into registers.
 *   - Each warp computes its partial S{16, 32} = Q·Kᵀ over its dims (K by ldmatrix) and
 *     writes it to shared memory; after a barrier of the row group's 4 warps (named
 *     barrier 1 + r), each warp sums the group's 4 partials in the same order, so the 4
 *     warps hold bit-identical scores and run identical online softmaxes (base 2: scores
 *     × scale·log2 e; the row max by two quad shuffles; the running sum per thread,
 *     reduced at the end).  Then the warp rescales its O slice and adds P·V[:, slice]
 *     with P taken straight from the S registers (an m16n8 accumulator pair is an m16k16
 *     A fragment) and V by ldmatrix.trans.
 *   - Two barriers per tile: the block's at the top (tile j has landed; every warp is
 *     done with tile j−1, whose stage tile j+1 then loads into, and with the partials)
 *     and the row group's between the partial and the summed scores.
 *   - Finally O / l, converted to T, written in 4-byte pairs (columns below D only).
 * Causal: key tiles past the block's last query are not loaded; a row group skips the
 * tiles entirely after its queries; key > query scores −inf.
 * Shared memory: 2 stages × (K, V) × 32 × (DP + 8) × 2 bytes + 2 × 4 × 16 × 40 × 4 bytes
 * of partial scores = 150 KiB at DP = 512: one block (256 threads) per SM.
 * Nothing of size Nq×Nk exists. */
#include <math.h>
#include <stdint.h>

#include "engine/cuda/cuda_internal.h"
#include "engine/cuda/cuda_mma.h"

#define FW_SLICES 4 /* warps per row group, one dim slice each */
#define FW_GROUPS 2 /* row groups per block */
#define FW_WARPS (FW_SLICES * FW_GROUPS)
#define FW_THREADS (FW_WARPS * 32)
#define FW_ROWS 16 /* query rows per row group */
#define FW_QROWS (FW_GROUPS * FW_ROWS)
#define FW_BK 32  /* keys per tile */
#define FW_SPS 40 /* row stride of the partial scores, floats: conflict-free float2 */

/* Shared memory: two stages of K{BK, DP+8} and V{BK, DP+8} in T (2-byte), then the
 * partial scores [groups][slices][16][FW_SPS] in f32. */
static size_t fw_smem(int dp)
{
    return 2 * (size_t)(dp + 8) * (size_t)(4 * FW_BK) +
           sizeof(float) * (size_t)(FW_GROUPS * FW_SLICES * FW_ROWS * FW_SPS);
}

/* Copies rows [r0, r0 + 32) of a {N, ld} tensor's head slice to 32 smem rows of DP + 8
 * elements, all DP columns: those at or past d (the padding) and rows past n are
 * zero-filled. */
template <typename T, int DP>
__device__ __forceinline__ void fw_load_rows(T *smem, const T *base, int64_t ld, int64_t r0,
                                             int64_t n, int d)
{
    constexpr int S = DP + 8, CH = DP / 8, TOTAL = FW_BK * CH;
    static_assert(FW_QROWS == FW_BK, "Q and the key tiles are loaded alike");
    static_assert(TOTAL % FW_THREADS == 0, "whole rounds of 16-byte chunks");
#pragma unroll
    for (int i = 0; i < TOTAL / FW_THREADS; i++) {
        const int c = (int)threadIdx.x + i * FW_THREADS;
        const int r = c / CH, col = (c - r * CH) * 8;
        const int64_t row = r0 + r;
        const bool in = row < n && col < d;
        cm_cp16(smem + r * S + col, in ? base + row * ld + col : base, in ? 16 : 0);
    }
}

/* The row group's 4 warps meet: bar.sync 1 or 2 (0 is __syncthreads') for 128 threads.
 * Warp-uniform branch; constant ids, so that the kernel reserves 3 barriers, not 16. */
__device__ __forceinline__ void fw_group_sync(int rg)
{
    static_assert(FW_GROUPS == 2, "one named barrier per row group");
    if (rg == 0)
        asm volatile("bar.sync 1, %0;\n" ::"n"(FW_SLICES * 32) : "memory");
    else
        asm volatile("bar.sync 2, %0;\n" ::"n"(FW_SLICES * 32) : "memory");
}

template <typename T, int DP>
__global__ static void __launch_bounds__(FW_THREADS, 1)
    fw_kernel(const T *q, const T *k, const T *v, T *y, struct cm_attn_dims p)
{
    cuda_pdl_enter();
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    constexpr int S = DP + 8;          /* smem row stride, elements */
    constexpr int DW = DP / FW_SLICES; /* dims per warp */
    constexpr int KD = DW / 16;        /* k16 blocks of the warp's dims (Q·Kᵀ) */
    constexpr int NT = FW_BK / 8;      /* n8 key tiles of S */
    constexpr int ND = DW / 8;         /* n8 dim tiles of the warp's O */
    static_assert(DP % 64 == 0 && ND % 2 == 0 && NT % 2 == 0, "whole ldmatrix.x4 pairs");
    extern __shared__ __align__(128) unsigned char fw_raw[];
    T *kv = (T *)fw_raw;                        /* [2 stages][K, V][BK][S] */
    float *sp = (float *)(kv + 4 * FW_BK * S); /* [groups][slices][16][FW_SPS] */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int rg = warp / FW_SLICES, sl = warp % FW_SLICES;
    const int g = lane >> 2, t = lane & 3;
    const int d = p.d;
    const int64_t ld = (int64_t)p.heads * d;
    const int h = blockIdx.y, bz = blockIdx.z;
    const int64_t q0 = (int64_t)blockIdx.x * FW_QROWS, w0 = q0 + rg * FW_ROWS;
    const T *qb = q + (size_t)bz * (size_t)(p.nq * ld) + (size_t)h * d;
    const T *kb = k + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    const T *vb = v + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    T *yb = y + (size_t)bz * (size_t)(p.nq * ld) + (size_t)h * d;

    const int64_t last_q = q0 + FW_QROWS - 1 < p.nq - 1 ? q0 + FW_QROWS - 1 : p.nq - 1;
    const int64_t nk = p.causal && last_q + 1 < p.nk ? last_q + 1 : p.nk;
    const int tiles = (int)((nk + FW_BK - 1) / FW_BK);

    /* Q into stage 1's K rows, tile 0 into stage 0; Q on to registers */
    T *qs = kv + 2 * FW_BK * S;
    fw_load_rows<T, DP>(qs, qb, ld, q0, p.nq, d);
    fw_load_rows<T, DP>(kv, kb, ld, 0, nk, d);
    fw_load_rows<T, DP>(kv + FW_BK * S, vb, ld, 0, nk, d);
    cm_cp_commit();
    cm_cp_wait<0>();
    __syncthreads();
    uint32_t qf[KD][4];
#pragma unroll
    for (int kk = 0; kk < KD; kk++) /* Q rows w0.., dims sl·DW + kk·16.. */
        cm_ldm_x4(qf[kk], qs + (rg * FW_ROWS + (lane & 7) + ((lane >> 3) & 1) * 8) * S +
                              sl * DW + kk * 16 + (lane >> 4) * 8);

    float o[ND][4];
#pragma unroll
    for (int i = 0; i < ND; i++)
        o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f; /* rows g and g+8 */
    const int64_t row0 = w0 + g, row1 = w0 + g + 8;
    float *spw = sp + (rg * FW_SLICES + sl) * FW_ROWS * FW_SPS; /* this warp's partial */
    const float *spg = sp + rg * FW_SLICES * FW_ROWS * FW_SPS; /* its group's 4 partials */

    for (int j = 0; j < tiles; j++) {
        const int64_t k0 = (int64_t)j * FW_BK;
        cm_cp_wait<0>();
        /* tile j is visible; every warp is done with tile j−1 (the stage reloaded below,
         * and the partial scores) and, at j = 0, with Q (stage 1) */
        __syncthreads();
        if (j + 1 < tiles) { /* the next tile into the other stage */
            T *nxt = kv + ((j + 1) & 1) * 2 * FW_BK * S;
            fw_load_rows<T, DP>(nxt, kb, ld, k0 + FW_BK, nk, d);
            fw_load_rows<T, DP>(nxt + FW_BK * S, vb, ld, k0 + FW_BK, nk, d);
            cm_cp_commit();
        }
        /* uniform over the row group: no rows of it, or the whole tile after its queries */
        if (w0 >= p.nq || (p.causal && k0 > w0 + FW_ROWS - 1))
            continue;
        const T *ks = kv + (j & 1) * 2 * FW_BK * S, *vs = ks + FW_BK * S;

        /* the partial S{16, BK} = Q·Kᵀ over this warp's dims, to shared memory */
        float s[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++)
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) { /* kk outside: NT independent accumulators */
#pragma unroll
            for (int n = 0; n < NT; n += 2) {
                uint32_t b[4]; /* keys n·8.. (b0 b1), n·8+8.. (b2 b3); dims sl·DW + kk·16.. */
                cm_ldm_x4(b, ks + (n * 8 + (lane & 7) + (lane >> 4) * 8) * S + sl * DW +
                                 kk * 16 + ((lane >> 3) & 1) * 8);
                cm_mma<T>(s[n], qf[kk], b[0], b[1]);
                cm_mma<T>(s[n + 1], qf[kk], b[2], b[3]);
            }
        }
#pragma unroll
        for (int n = 0; n < NT; n++) {
            *(float2 *)(spw + g * FW_SPS + n * 8 + 2 * t) = make_float2(s[n][0], s[n][1]);
            *(float2 *)(spw + (g + 8) * FW_SPS + n * 8 + 2 * t) = make_float2(s[n][2], s[n][3]);
        }
        fw_group_sync(rg);
        /* the full scores: the 4 partials summed in slice order (identical in the 4 warps) */
#pragma unroll
        for (int n = 0; n < NT; n++) {
            const int c0 = g * FW_SPS + n * 8 + 2 * t, c1 = (g + 8) * FW_SPS + n * 8 + 2 * t;
            float2 a = *(const float2 *)(spg + c0), b = *(const float2 *)(spg + c1);
#pragma unroll
            for (int w = 1; w < FW_SLICES; w++) {
                const float2 a2 = *(const float2 *)(spg + w * FW_ROWS * FW_SPS + c0);
                const float2 b2 = *(const float2 *)(spg + w * FW_ROWS * FW_SPS + c1);
                a.x += a2.x;
                a.y += a2.y;
                b.x += b2.x;
                b.y += b2.y;
            }
            s[n][0] = a.x;
            s[n][1] = a.y;
            s[n][2] = b.x;
            s[n][3] = b.y;
        }

        /* mask (only a tile past Nk or on the causal diagonal), scale (base 2), the tile
         * max per row */
        const bool whole = k0 + FW_BK <= nk && (!p.causal || k0 + FW_BK - 1 <= w0);
        float tm0 = -INFINITY, tm1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            cm_mask_scale(s[n], k0 + n * 8 + 2 * t, row0, row1, nk, p.causal, whole,
                          p.scale_log2);
            tm0 = fmaxf(tm0, fmaxf(s[n][0], s[n][1]));
            tm1 = fmaxf(tm1, fmaxf(s[n][2], s[n][3]));
        }
        tm0 = fmaxf(tm0, __shfl_xor_sync(0xffffffffu, tm0, 1));
        tm0 = fmaxf(tm0, __shfl_xor_sync(0xffffffffu, tm0, 2));
        tm1 = fmaxf(tm1, __shfl_xor_sync(0xffffffffu, tm1, 1));
        tm1 = fmaxf(tm1, __shfl_xor_sync(0xffffffffu, tm1, 2));
        const float mn0 = fmaxf(m0, tm0), mn1 = fmaxf(m1, tm1);
        /* a row with every key so far masked keeps m = −inf: subtract 0 instead */
        const float b0 = mn0 == -INFINITY ? 0.0f : mn0, b1 = mn1 == -INFINITY ? 0.0f : mn1;
        const float c0 = exp2f(m0 - b0), c1 = exp2f(m1 - b1);
        m0 = mn0;
        m1 = mn1;
        float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            s[n][0] = exp2f(s[n][0] - b0);
            s[n][1] = exp2f(s[n][1] - b0);
            s[n][2] = exp2f(s[n][2] - b1);
            s[n][3] = exp2f(s[n][3] - b1);
            rs0 += s[n][0] + s[n][1];
            rs1 += s[n][2] + s[n][3];
        }
        l0 = l0 * c0 + rs0;
        l1 = l1 * c1 + rs1;
#pragma unroll
        for (int i = 0; i < ND; i++) {
            o[i][0] *= c0;
            o[i][1] *= c0;
            o[i][2] *= c1;
            o[i][3] *= c1;
        }
        /* O{16, DW} += P{16, BK} · V{BK, this warp's dims} */
#pragma unroll
        for (int kb2 = 0; kb2 < FW_BK / 16; kb2++) {
            uint32_t a[4];
            a[0] = cm_pack<T>(s[2 * kb2][0], s[2 * kb2][1]);
            a[1] = cm_pack<T>(s[2 * kb2][2], s[2 * kb2][3]);
            a[2] = cm_pack<T>(s[2 * kb2 + 1][0], s[2 * kb2 + 1][1]);
            a[3] = cm_pack<T>(s[2 * kb2 + 1][2], s[2 * kb2 + 1][3]);
#pragma unroll
            for (int i = 0; i < ND; i += 2) {
                uint32_t b[4]; /* keys kb2·16.. (b0 b1) for dims sl·DW + i·8.., (b2 b3) +8.. */
                cm_ldm_x4_trans(b, vs + (kb2 * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S +
                                       sl * DW + i * 8 + (lane >> 4) * 8);
                cm_mma<T>(o[i], a, b[0], b[1]);
                cm_mma<T>(o[i + 1], a, b[2], b[3]);
            }
        }
    }
    cm_cp_wait<0>();

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
#pragma unroll
    for (int i = 0; i < ND; i++) {
        const int col = sl * DW + i * 8 + 2 * t;
        if (col >= d)
            continue;
        if (row0 < p.nq)
            *(uint32_t *)(yb + row0 * ld + col) = cm_pack<T>(o[i][0] * i0, o[i][1] * i0);
        if (row1 < p.nq)
            *(uint32_t *)(yb + row1 * ld + col) = cm_pack<T>(o[i][2] * i1, o[i][3] * i1);
    }
#else
    (void)q, (void)k, (void)v, (void)y, (void)p;
    __trap(); /* never launched: the host checks the compute capability */
#endif
}

template <typename T, int DP>
static cudaError_t fw_launch_as(const T *q, const T *k, const T *v, T *y, int64_t batch,
                                const struct cm_attn_dims *p, struct cuda_launch st)
{
    const size_t smem = fw_smem(DP);
    cudaError_t e = cudaFuncSetAttribute(fw_kernel<T, DP>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess)
        return e;
    dim3 grid((unsigned)((p->nq + FW_QROWS - 1) / FW_QROWS), (unsigned)p->heads,
              (unsigned)batch);
    cuda_launch_kernel(st, fw_kernel<T, DP>, grid, FW_THREADS, smem, q, k, v, y, *p);
    return cudaGetLastError();
}

/* The padded head dim instantiated for head dim d: d rounded up to 64 (4 slices of
 * whole k16 blocks). */
static int fw_dp(int d) { return (d + 63) / 64 * 64; }

template <typename T>
static cudaError_t fw_launch(const T *q, const T *k, const T *v, T *y, int64_t batch,
                             const struct cm_attn_dims *p, struct cuda_launch st)
{
    switch (fw_dp(p->d)) {
    case 192: return fw_launch_as<T, 192>(q, k, v, y, batch, p, st);
    case 256: return fw_launch_as<T, 256>(q, k, v, y, batch, p, st);
    case 320: return fw_launch_as<T, 320>(q, k, v, y, batch, p, st);
    case 384: return fw_launch_as<T, 384>(q, k, v, y, batch, p, st);
    case 448: return fw_launch_as<T, 448>(q, k, v, y, batch, p, st);
    default: return fw_launch_as<T, 512>(q, k, v, y, batch, p, st);
    }
}

bool cuda_flash_wide_supports(const struct cuda_backend *cb, enum dtype dt, int d,
                              const void *q, const void *k, const void *v, const void *y)
{
    return cb->cc_major >= 8 && !cb->attention_scalar &&
           (dt == DTYPE_F16 || dt == DTYPE_BF16) && d % 8 == 0 && d > 160 && d <= 512 &&
           cuda_aligned16(q) && cuda_aligned16(k) && cuda_aligned16(v) && cuda_aligned16(y) &&
           fw_smem(fw_dp(d)) <= cb->max_smem;
}

cudaError_t cuda_flash_wide_launch(struct cuda_backend *cb, enum dtype dt, const void *q,
                                   const void *k, const void *v, void *y, int64_t batch,
                                   int64_t nq, int64_t nk, int heads, int d, float scale,
                                   bool causal)
{
    if (batch <= 0 || nq <= 0 || heads <= 0)
        return cudaSuccess; /* nothing to write (an empty grid is a launch error) */
    const struct cm_attn_dims p = cm_attn_dims_make(nq, nk, heads, d, scale, causal);
    if (dt == DTYPE_F16)
        return fw_launch<__half>((const __half *)q, (const __half *)k, (const __half *)v,
                                 (__half *)y, batch, &p, cuda_launch_on(cb));
    return fw_launch<__nv_bfloat16>((const __nv_bfloat16 *)q, (const __nv_bfloat16 *)k,
                                    (const __nv_bfloat16 *)v, (__nv_bfloat16 *)y, batch, &p,
                                    cuda_launch_on(cb));
}
