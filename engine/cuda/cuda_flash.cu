/* engine/cuda/cuda_flash.cu — the register-resident flash-attention kernel (f16/bf16,
 * compute capability ≥ 8.0, head dims that are multiples of 8 up to 160: SD's 40, 64,
 * 80, 160, and 128).  The default for those shapes; cuda_flash_wide.cu takes the wide
 * heads (multiples of 8 up to 512: the VAE's 512-wide head), and cuda_attention.cu its
 * WMMA and f32 kernels for the rest (odd head dims).  The PTX wrappers (cm_*) are in
 * cuda_mma.h.
 *
 * Layout as every attention kernel here: q{B,Nq,H·D}, k/v{B,Nk,H·D}, y{B,Nq,H·D}, the
 * head h in columns [h·D, (h+1)·D) of each row.
 *
 * FlashAttention-2's loop on mma.sync m16n8k16 (f32 accumulators).  A block of 4 warps
 * owns 64·MT query rows of one (batch, head); each warp 16·MT of them (MT = 2 for head
 * dims ≤ 64 when the grid still fills the GPU: each K/V fragment then feeds two row
 * tiles, halving shared-memory reads per mma).
 *   - Q{64, DP}, and per step a tile of BK keys of K{BK, DP} and V{BK, DP}, are copied
 *     to shared memory with cp.async, 16 bytes at a time, double-buffered: tile j+1
 *     loads while tile j is computed.  DP is D rounded up to 16 (40 → 48); the padding
 *     columns are zeroed once.  Rows are DP + 8 elements apart, so ldmatrix's eight
 *     16-byte row reads fall in different banks.  Keys past Nk are zero-filled
 *     (cp.async with source size 0) and masked.
 *   - Each warp keeps its Q fragments (DP/16 × 4 registers) for the whole loop, and
 *     per tile computes S{16, BK} = Q·Kᵀ in registers (K by ldmatrix), the online
 *     softmax in the base-2 domain (scores × scale·log2 e; the row max by two quad
 *     shuffles; the running sum kept per thread and reduced at the end), rescales its
 *     O{16, DP} accumulators, and adds P·V with P taken straight from the S registers
 *     (an m16n8 accumulator pair is an m16k16 A fragment) and V by ldmatrix.trans.
 *   - Finally O / l, converted to T, written in 4-byte pairs.
 * Causal: key tiles past the block's last query are not loaded; key > query scores −inf.
 * Nothing of size Nq×Nk exists. */
#include <math.h>
#include <stdint.h>

#include "engine/cuda/cuda_internal.h"
#include "engine/cuda/cuda_mma.h"

#define FL_WARPS 4
#define FL_ROWS 16 /* query rows per warp */
#define FL_QROWS (FL_WARPS * FL_ROWS)

/* --- the kernel -------------------------------------------------------------------- */

/* Shared memory: Q{64·MT, DP+8} and ST stages of K{BK, DP+8} and V{BK, DP+8}, in T. */
static size_t fl_smem(int dp, int bk, int mt, int st, size_t t_size)
{
    return t_size * (size_t)(dp + 8) * (size_t)(FL_QROWS * mt + 2 * st * bk);
}

/* Copies rows [r0, r0 + rows) of a {N, ld} tensor's head slice (d columns, d/8 chunks
 * of 16 bytes) to smem rows of `stride` elements; rows past n are zero-filled. */
template <typename T>
__device__ __forceinline__ void fl_load_rows(T *smem, int stride, const T *base, int64_t ld,
                                             int64_t r0, int rows, int64_t n, int chunks)
{
    for (int c = threadIdx.x; c < rows * chunks; c += FL_WARPS * 32) {
        const int r = c / chunks, col = (c - r * chunks) * 8;
        const int64_t row = r0 + r;
        const bool in = row < n;
        cm_cp16(smem + r * stride + col, base + (in ? row : 0) * ld + col, in ? 16 : 0);
    }
}

/* O's row tile mt rescaled: rows g by c0, rows g + 8 by c1 (the running max moved). */
template <int MT, int ND>
__device__ __forceinline__ void fl_rescale(float (&o)[MT][ND][4], int mt, float c0, float c1)
{
#pragma unroll
    for (int i = 0; i < ND; i++) {
        o[mt][i][0] *= c0;
        o[mt][i][1] *= c0;
        o[mt][i][2] *= c1;
        o[mt][i][3] *= c1;
    }
}

/* The online softmax of one key tile (the kernel's default): scores s{MT}{NT}{4} of
 * rows w0 + 16·mt + g (+ 8) and keys k0 + 8·n + 2t (+ 1) masked where past nk or the
 * causal limit (unless whole), scaled to base 2, the running max m and sum l updated,
 * O rescaled; P is left in s. */
template <int MT, int NT, int ND>
__device__ __forceinline__ void fl_softmax(float (&s)[MT][NT][4], float (&o)[MT][ND][4],
                                           float (&m)[MT][2], float (&l)[MT][2], bool whole,
                                           int64_t k0, int64_t nk, int64_t w0, int g, int t,
                                           const struct cm_attn_dims &p)
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        const int64_t row0 = w0 + mt * 16 + g, row1 = row0 + 8;
        float tm0 = -INFINITY, tm1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            cm_mask_scale(s[mt][n], k0 + n * 8 + 2 * t, row0, row1, nk, p.causal, whole,
                          p.scale_log2);
            tm0 = fmaxf(tm0, fmaxf(s[mt][n][0], s[mt][n][1]));
            tm1 = fmaxf(tm1, fmaxf(s[mt][n][2], s[mt][n][3]));
        }
        const float mn0 = fmaxf(m[mt][0], cm_quad_max(tm0));
        const float mn1 = fmaxf(m[mt][1], cm_quad_max(tm1));
        /* a row with every key so far masked keeps m = −inf: subtract 0 instead */
        const float b0 = mn0 == -INFINITY ? 0.0f : mn0;
        const float b1 = mn1 == -INFINITY ? 0.0f : mn1;
        const float c0 = cm_ex2(m[mt][0] - b0), c1 = cm_ex2(m[mt][1] - b1);
        m[mt][0] = mn0;
        m[mt][1] = mn1;
        float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            s[mt][n][0] = cm_ex2(s[mt][n][0] - b0);
            s[mt][n][1] = cm_ex2(s[mt][n][1] - b0);
            s[mt][n][2] = cm_ex2(s[mt][n][2] - b1);
            s[mt][n][3] = cm_ex2(s[mt][n][3] - b1);
            rs0 += s[mt][n][0] + s[mt][n][1];
            rs1 += s[mt][n][2] + s[mt][n][3];
        }
        l[mt][0] = l[mt][0] * c0 + rs0;
        l[mt][1] = l[mt][1] * c1 + rs1;
        fl_rescale<MT, ND>(o, mt, c0, c1);
    }
}

/* Keys of this thread's scores at or past lim (relative to the tile) → −inf; one row
 * pair's limits (rows g and g + 8 of row tile mt). */
template <int MT, int NT>
__device__ __forceinline__ void fl_mask_lean(float (&s)[MT][NT][4], int mt, int lim0, int lim1,
                                             int t)
{
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int key = n * 8 + 2 * t + (e & 1);
            if (key >= (e < 2 ? lim0 : lim1))
                s[mt][n][e] = -INFINITY;
        }
}

/* How many keys of the tile at k0 row `row` may see: those before nk and (causal) up
 * to the row itself, clamped to [0, bk]. */
__device__ __forceinline__ int fl_key_limit(int64_t row, int64_t k0, int64_t nk, bool causal,
                                            int bk)
{
    int64_t lim = nk - k0;
    if (causal && row - k0 + 1 < lim)
        lim = row - k0 + 1;
    return lim < 0 ? 0 : lim > bk ? bk : (int)lim;
}

/* fl_softmax in fewer instructions (the kernel's SOFT 1 and 2): no mask on a whole
 * tile, 32-bit limits on a partial one, the max on raw scores (m unscaled; needs
 * scale > 0), each probability one FFMA + ex2.  PACK (SOFT 2): each pair of a row is
 * packed to T as made and left in s[mt][n][0] (row g) and s[mt][n][1] (row g + 8) as
 * the bits of a float (the P·V loop reads them as the A fragment and sums the rows by
 * multiplying P with ones into ls: here ls is only rescaled); else P stays in s as
 * floats and the row sums go to l. */
template <typename T, int MT, int NT, int ND, bool PACK>
__device__ __forceinline__ void fl_softmax_lean(float (&s)[MT][NT][4], float (&o)[MT][ND][4],
                                                float (&m)[MT][2], float (&l)[MT][2],
                                                float (&ls)[MT][4], bool whole, int64_t k0,
                                                int64_t nk, int64_t w0, int g, int t,
                                                const struct cm_attn_dims &p)
{
    const float c = p.scale_log2;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        if (!whole) {
            const int64_t row0 = w0 + mt * 16 + g;
            fl_mask_lean<MT, NT>(s, mt, fl_key_limit(row0, k0, nk, p.causal, NT * 8),
                                 fl_key_limit(row0 + 8, k0, nk, p.causal, NT * 8), t);
        }
        float tm0 = s[mt][0][0], tm1 = s[mt][0][2];
#pragma unroll
        for (int n = 0; n < NT; n++) {
            tm0 = fmaxf(tm0, fmaxf(s[mt][n][0], s[mt][n][1]));
            tm1 = fmaxf(tm1, fmaxf(s[mt][n][2], s[mt][n][3]));
        }
        const float mn0 = fmaxf(m[mt][0], cm_quad_max(tm0));
        const float mn1 = fmaxf(m[mt][1], cm_quad_max(tm1));
        /* a row with every key so far masked keeps m = −inf: subtract 0 instead */
        const float b0 = mn0 == -INFINITY ? 0.0f : mn0 * c;
        const float b1 = mn1 == -INFINITY ? 0.0f : mn1 * c;
        const float c0 = cm_ex2(fmaf(m[mt][0], c, -b0)), c1 = cm_ex2(fmaf(m[mt][1], c, -b1));
        m[mt][0] = mn0;
        m[mt][1] = mn1;
        if constexpr (PACK) {
#pragma unroll
            for (int n = 0; n < NT; n++) {
                const uint32_t p01 = cm_pack<T>(cm_ex2(fmaf(s[mt][n][0], c, -b0)),
                                                cm_ex2(fmaf(s[mt][n][1], c, -b0)));
                const uint32_t p23 = cm_pack<T>(cm_ex2(fmaf(s[mt][n][2], c, -b1)),
                                                cm_ex2(fmaf(s[mt][n][3], c, -b1)));
                s[mt][n][0] = __uint_as_float(p01);
                s[mt][n][1] = __uint_as_float(p23);
            }
            ls[mt][0] *= c0;
            ls[mt][1] *= c0;
            ls[mt][2] *= c1;
            ls[mt][3] *= c1;
        } else {
            float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
            for (int n = 0; n < NT; n++) {
                s[mt][n][0] = cm_ex2(fmaf(s[mt][n][0], c, -b0));
                s[mt][n][1] = cm_ex2(fmaf(s[mt][n][1], c, -b0));
                s[mt][n][2] = cm_ex2(fmaf(s[mt][n][2], c, -b1));
                s[mt][n][3] = cm_ex2(fmaf(s[mt][n][3], c, -b1));
                rs0 += s[mt][n][0] + s[mt][n][1];
                rs1 += s[mt][n][2] + s[mt][n][3];
            }
            l[mt][0] = l[mt][0] * c0 + rs0;
            l[mt][1] = l[mt][1] * c1 + rs1;
        }
        fl_rescale<MT, ND>(o, mt, c0, c1);
    }
}

/* Blocks per multiprocessor the kernel is compiled for (registers ≤ 65536 / (128 · it)):
 * LEAN_MMA at head dim 40 fits 168 registers with two row tiles and 128 with one,
 * without spilling (sm_90), so three blocks (12 warps) or four (16) share an SM instead
 * of two; 0 (as no bound: an explicit 1 made the compiler take more registers) leaves
 * the rest to the compiler (forcing 168 spills at head dim 64 with two row tiles). */
__host__ __device__ constexpr int fl_min_blocks(int d, int soft, int mt)
{
    return soft == 2 && d == 40 ? (mt == 1 ? 4 : 3) : 0;
}

/* D: the exact head dim the kernel is built for (a multiple of 8: no padding columns
 * are computed; a dim of 8 mod 16 ends Q·Kᵀ with one m16n8k8), or 0: any multiple of 8
 * up to DP, read from p.d and zero-padded to DP in shared memory.
 * MT: m16 tiles of query rows per warp (1 or 2).  Two tiles share every K and V
 * fragment loaded from shared memory (half the ldmatrix traffic per mma) at the cost of
 * twice the registers; fl_launch takes MT = 2 for the narrow heads when the grid still
 * fills the GPU.
 * ST: K/V stages in shared memory (2: tile j+1 loads while j is computed; 3: j+2 too).
 * SYNC1: one barrier per key tile — wait for tile j, barrier, then load tile j+ST−1
 * into the stage tile j−1 used (every warp is past it) — instead of two (load, wait,
 * barrier, compute, barrier).
 * SOFT: the softmax.  0: fl_softmax.  1 (LEAN, needs scale > 0): fewer instructions
 * per score — a tile wholly inside Nk (and the causal limit) is not masked at all, a
 * partial tile is masked with 32-bit key offsets against per-row limits computed once,
 * the row max is taken on the raw scores (m kept unscaled), and each probability is one
 * FFMA and one ex2: p = 2^(s·c − m·c), c = scale·log2 e (fl_softmax pays a 64-bit key
 * compare and a select or a branch per score, and a separate multiply by c).  2
 * (LEAN_MMA): LEAN with P packed to T as it is made and the row sums l taken by the
 * tensor cores — one more m16n8k16 per 16 keys, P times a B fragment of ones,
 * accumulated in f32 beside O (so l sums exactly the rounded P that O sums) — instead
 * of one FADD per score.  (ex2.approx.f16x2 would halve nothing: sm_90 runs it as two
 * MUFU.EX2.F16 and a PRMT.) */
template <typename T, int D, int DP, int BK, int MT, int ST, bool SYNC1, int SOFT = 0>
__global__ static void __launch_bounds__(FL_WARPS * 32, fl_min_blocks(D, SOFT, MT))
    fl_kernel(const T *q, const T *k, const T *v, T *y, struct cm_attn_dims p)
{
    cuda_pdl_enter();
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    static_assert(D % 8 == 0 && D <= DP && DP % 16 == 0 && BK % 32 == 0 && ST >= 2, "shape");
    constexpr int S = DP + 8;                  /* smem row stride, elements */
    constexpr int K16 = D ? D / 16 : DP / 16;  /* k16 blocks of the head dim (Q·Kᵀ) */
    constexpr bool K8 = D % 16 != 0;           /* then one k8 block after them */
    constexpr int KQ = K16 + (K8 ? 1 : 0);     /* Q fragments per row tile */
    constexpr int NT = BK / 8;                 /* n8 key tiles of S */
    constexpr int ND = D ? D / 8 : DP / 8;     /* n8 dim tiles of O */
    constexpr int WROWS = FL_ROWS * MT, QROWS = FL_QROWS * MT;
    extern __shared__ __align__(128) unsigned char fl_raw[];
    T *qs = (T *)fl_raw;            /* [QROWS][S] */
    T *kv = qs + QROWS * S;         /* [ST stages][K, V][BK][S] */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int d = D ? D : p.d, chunks = d / 8;
    const int64_t ld = (int64_t)p.heads * d;
    const int h = blockIdx.y, bz = blockIdx.z;
    const int64_t q0 = (int64_t)blockIdx.x * QROWS, w0 = q0 + warp * WROWS;
    const T *qb = q + (size_t)bz * (size_t)(p.nq * ld) + (size_t)h * d;
    const T *kb = k + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    const T *vb = v + (size_t)bz * (size_t)(p.nk * ld) + (size_t)h * d;
    T *yb = y + (size_t)bz * (size_t)(p.nq * ld) + (size_t)h * d;

    /* D = 0: zero the padding columns [d, DP) of Q and of every stage of K and V */
    if constexpr (D == 0) {
        if (d < DP) {
            const int pad = DP - d, rows = QROWS + 2 * ST * BK;
            for (int e = threadIdx.x; e < rows * pad; e += FL_WARPS * 32) {
                const int r = e / pad;
                qs[r * S + d + (e - r * pad)] = T(0.0f);
            }
        }
    }
    int64_t last_q = q0 + QROWS - 1 < p.nq - 1 ? q0 + QROWS - 1 : p.nq - 1;
    const int64_t nk = p.causal && last_q + 1 < p.nk ? last_q + 1 : p.nk;
    const int tiles = (int)((nk + BK - 1) / BK);

    /* groups: {Q, tile 0}, then tiles 1 .. ST−2 (a group each, empty past the end) */
    fl_load_rows(qs, S, qb, ld, q0, QROWS, p.nq, chunks);
#pragma unroll
    for (int st = 0; st < ST - 1; st++) {
        if (st < tiles) {
            T *dst = kv + st * 2 * BK * S;
            fl_load_rows(dst, S, kb, ld, (int64_t)st * BK, BK, nk, chunks);
            fl_load_rows(dst + BK * S, S, vb, ld, (int64_t)st * BK, BK, nk, chunks);
        }
        cm_cp_commit();
    }

    uint32_t qf[MT][KQ][4]; /* the k8 block uses [0..1] */
    float o[MT][ND][4];
    float m[MT][2], l[MT][2]; /* per tile: rows g and g+8 */
    float ls[MT][4];          /* SOFT 2: the row sums as an m16n8 accumulator (P · ones):
                                 [0], [1] row g, [2], [3] row g+8 */
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.0f;
        ls[mt][0] = ls[mt][1] = ls[mt][2] = ls[mt][3] = 0.0f;
#pragma unroll
        for (int i = 0; i < ND; i++)
            o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.0f;
    }

    for (int j = 0; j < tiles; j++) {
        const int64_t k0 = (int64_t)j * BK;
        if constexpr (SYNC1) { /* tile j's group is the oldest pending but ST − 2 */
            cm_cp_wait<ST - 2>();
            __syncthreads();
        }
        if (j + ST - 1 < tiles) { /* tile j+ST−1 into the stage tile j−1 used */
            T *nxt = kv + ((j + ST - 1) % ST) * 2 * BK * S;
            fl_load_rows(nxt, S, kb, ld, k0 + (ST - 1) * BK, BK, nk, chunks);
            fl_load_rows(nxt + BK * S, S, vb, ld, k0 + (ST - 1) * BK, BK, nk, chunks);
        }
        cm_cp_commit();
        if constexpr (!SYNC1) {
            cm_cp_wait<ST - 1>();
            __syncthreads();
        }
        if (j == 0) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                const T *qrow = qs + (warp * WROWS + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S;
#pragma unroll
                for (int kk = 0; kk < K16; kk++) /* Q rows w0 + 16·mt.., dims kk·16.. */
                    cm_ldm_x4(qf[mt][kk], qrow + kk * 16 + (lane >> 4) * 8);
                if (K8)
                    cm_ldm_x2(qf[mt][K16], qrow + K16 * 16);
            }
        }
        const T *ks = kv + (j % ST) * 2 * BK * S, *vs = ks + BK * S;
        /* warp-uniform: no rows of this warp, or the whole tile is after its queries */
        const bool skip = w0 >= p.nq || (p.causal && k0 > w0 + WROWS - 1);
        if (!skip) {
            /* S{16·MT, BK} = Q·Kᵀ, each K fragment used by the MT row tiles */
            float s[MT][NT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int n = 0; n < NT; n++)
                    s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
#pragma unroll
            for (int n = 0; n < NT; n += 2) {
#pragma unroll
                for (int kk = 0; kk < K16; kk++) {
                    uint32_t b[4]; /* keys n·8.. (b0 b1), n·8+8.. (b2 b3); dims kk·16.. */
                    cm_ldm_x4(b, ks + (n * 8 + (lane & 7) + (lane >> 4) * 8) * S + kk * 16 +
                                     ((lane >> 3) & 1) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        cm_mma<T>(s[mt][n], qf[mt][kk], b[0], b[1]);
                        cm_mma<T>(s[mt][n + 1], qf[mt][kk], b[2], b[3]);
                    }
                }
            }
            if (K8) { /* dims K16·16 .. +8 of four key tiles per ldmatrix */
#pragma unroll
                for (int n = 0; n < NT; n += 4) {
                    uint32_t b[4]; /* b[i]: keys (n+i)·8.. */
                    cm_ldm_x4(b, ks + ((n + (lane >> 3)) * 8 + (lane & 7)) * S + K16 * 16);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++)
#pragma unroll
                        for (int i = 0; i < 4; i++)
                            cm_mma8<T>(s[mt][n + i], qf[mt][K16], b[i]);
                }
            }
            /* mask (only a tile past Nk or on the causal diagonal), scale (base 2), the
             * online softmax per row; P stays in s */
            const bool whole = k0 + BK <= nk && (!p.causal || k0 + BK - 1 <= w0);
            if constexpr (SOFT != 0)
                fl_softmax_lean<T, MT, NT, ND, SOFT == 2>(s, o, m, l, ls, whole, k0, nk, w0, g,
                                                          t, p);
            else
                fl_softmax<MT, NT, ND>(s, o, m, l, whole, k0, nk, w0, g, t, p);
            /* O{16·MT, D} += P{16·MT, BK} · V{BK, D}, each V fragment used MT times */
#pragma unroll
            for (int kb2 = 0; kb2 < BK / 16; kb2++) {
                uint32_t a[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    if constexpr (SOFT == 2) { /* P packed by fl_softmax_lean; row sums */
                        a[mt][0] = __float_as_uint(s[mt][2 * kb2][0]);
                        a[mt][1] = __float_as_uint(s[mt][2 * kb2][1]);
                        a[mt][2] = __float_as_uint(s[mt][2 * kb2 + 1][0]);
                        a[mt][3] = __float_as_uint(s[mt][2 * kb2 + 1][1]);
                        cm_mma<T>(ls[mt], a[mt], cm_ones2<T>(), cm_ones2<T>());
                    } else {
                        a[mt][0] = cm_pack<T>(s[mt][2 * kb2][0], s[mt][2 * kb2][1]);
                        a[mt][1] = cm_pack<T>(s[mt][2 * kb2][2], s[mt][2 * kb2][3]);
                        a[mt][2] = cm_pack<T>(s[mt][2 * kb2 + 1][0], s[mt][2 * kb2 + 1][1]);
                        a[mt][3] = cm_pack<T>(s[mt][2 * kb2 + 1][2], s[mt][2 * kb2 + 1][3]);
                    }
                }
                const T *vrow = vs + (kb2 * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S;
#pragma unroll
                for (int i = 0; i + 1 < ND; i += 2) {
                    uint32_t b[4]; /* keys kb2·16.. (b0 b1) for dims i·8.., (b2 b3) i·8+8.. */
                    cm_ldm_x4_trans(b, vrow + i * 8 + (lane >> 4) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        cm_mma<T>(o[mt][i], a[mt], b[0], b[1]);
                        cm_mma<T>(o[mt][i + 1], a[mt], b[2], b[3]);
                    }
                }
                if (ND % 2) { /* the last dim tile alone */
                    uint32_t b[2];
                    cm_ldm_x2_trans(b, vrow + (ND - 1) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++)
                        cm_mma<T>(o[mt][ND - 1], a[mt], b[0], b[1]);
                }
            }
        }
        if constexpr (!SYNC1)
            __syncthreads(); /* this stage is reloaded ST − 1 iterations on */
    }
    cm_cp_wait<0>();

#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        float l0 = l[mt][0], l1 = l[mt][1];
        if constexpr (SOFT == 2) { /* the mma summed the whole row already */
            l0 = ls[mt][0];
            l1 = ls[mt][2];
        } else {
            l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
            l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
            l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
            l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
        }
        const float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
        const int64_t row0 = w0 + mt * 16 + g, row1 = row0 + 8;
#pragma unroll
        for (int i = 0; i < ND; i++) {
            const int col = i * 8 + 2 * t;
            if (D == 0 && col >= d)
                continue;
            if (row0 < p.nq)
                *(uint32_t *)(yb + row0 * ld + col) =
                    cm_pack<T>(o[mt][i][0] * i0, o[mt][i][1] * i0);
            if (row1 < p.nq)
                *(uint32_t *)(yb + row1 * ld + col) =
                    cm_pack<T>(o[mt][i][2] * i1, o[mt][i][3] * i1);
        }
    }
#else
    (void)q, (void)k, (void)v, (void)y, (void)p;
    __trap(); /* never launched: the host checks the compute capability */
#endif
}

template <typename T, int D, int DP, int BK, int MT, int ST, bool SYNC1 = false,
          int SOFT = 0>
static cudaError_t fl_launch_as(const T *q, const T *k, const T *v, T *y, int64_t batch,
                                const struct cm_attn_dims *p, struct cuda_launch st)
{
    const size_t smem = fl_smem(DP, BK, MT, ST, sizeof(T));
    cudaError_t e = cudaFuncSetAttribute(fl_kernel<T, D, DP, BK, MT, ST, SYNC1, SOFT>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess)
        return e;
    const int rows = FL_QROWS * MT;
    dim3 grid((unsigned)((p->nq + rows - 1) / rows), (unsigned)p->heads, (unsigned)batch);
    cuda_launch_kernel(st, fl_kernel<T, D, DP, BK, MT, ST, SYNC1, SOFT>, grid, FL_WARPS * 32, smem, q, k, v, y, *p);
    return cudaGetLastError();
}

/* The padded head dim instantiated for head dim d (d % 8 == 0, ≤ 160), and its key tile
 * (32 for the widest: fewer registers). */
static void fl_shape(int d, int *dp, int *bk)
{
    const int r = (d + 15) / 16 * 16;
    *dp = r <= 32 ? 32 : r <= 96 ? r : r <= 128 ? 128 : 160;
    *bk = *dp == 160 ? 32 : 64;
}

/* Two row tiles per warp (128 query rows a block) for head dims ≤ 64 when that still
 * makes FL_WAVES blocks per multiprocessor; else one.  row_tiles 1 or 2 forces it (2
 * only where instantiated: head dims ≤ 64). */
#define FL_WAVES 3

/* Stable Diffusion's head dims (SD1: 40, 80, 160; SD2: 64; 128) on kernels built for
 * exactly them, ST stages, key tiles of 64 (BK2 = 2: of 128 for head dims ≤ 80, one row
 * tile per warp), the softmax SOFT (fl_kernel); false: not one of them. */
template <typename T, int ST, int BK2, bool SYNC1 = false, int SOFT = 0>
static bool fl_launch_exact(const T *q, const T *k, const T *v, T *y, int64_t batch,
                            const struct cm_attn_dims *p, bool two, struct cuda_launch st,
                            cudaError_t *e)
{
    if constexpr (BK2 == 2) {
        switch (p->d) {
        case 40: *e = fl_launch_as<T, 40, 48, 128, 1, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st); return true;
        case 64: *e = fl_launch_as<T, 64, 64, 128, 1, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st); return true;
        case 80: *e = fl_launch_as<T, 80, 80, 128, 1, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st); return true;
        default: break; /* wider heads: the 64-key tiles below */
        }
    }
    switch (p->d) {
    case 40:
        *e = two ? fl_launch_as<T, 40, 48, 64, 2, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st)
                 : fl_launch_as<T, 40, 48, 64, 1, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st);
        return true;
    case 64:
        *e = two ? fl_launch_as<T, 64, 64, 64, 2, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st)
                 : fl_launch_as<T, 64, 64, 64, 1, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st);
        return true;
    case 80: *e = fl_launch_as<T, 80, 80, 64, 1, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st); return true;
    case 128: *e = fl_launch_as<T, 128, 128, 64, 1, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st); return true;
    case 160: *e = fl_launch_as<T, 160, 160, 32, 1, ST, SYNC1, SOFT>(q, k, v, y, batch, p, st); return true;
    default: return false;
    }
}

/* Any multiple of 8 up to 160, padded to DP. */
template <typename T>
static cudaError_t fl_launch_padded(const T *q, const T *k, const T *v, T *y, int64_t batch,
                                    const struct cm_attn_dims *p, bool two, int dp,
                                    struct cuda_launch st)
{
    switch (dp) {
    case 32:
        return two ? fl_launch_as<T, 0, 32, 64, 2, 2>(q, k, v, y, batch, p, st)
                   : fl_launch_as<T, 0, 32, 64, 1, 2>(q, k, v, y, batch, p, st);
    case 48:
        return two ? fl_launch_as<T, 0, 48, 64, 2, 2>(q, k, v, y, batch, p, st)
                   : fl_launch_as<T, 0, 48, 64, 1, 2>(q, k, v, y, batch, p, st);
    case 64:
        return two ? fl_launch_as<T, 0, 64, 64, 2, 2>(q, k, v, y, batch, p, st)
                   : fl_launch_as<T, 0, 64, 64, 1, 2>(q, k, v, y, batch, p, st);
    case 80: return fl_launch_as<T, 0, 80, 64, 1, 2>(q, k, v, y, batch, p, st);
    case 96: return fl_launch_as<T, 0, 96, 64, 1, 2>(q, k, v, y, batch, p, st);
    case 128: return fl_launch_as<T, 0, 128, 64, 1, 2>(q, k, v, y, batch, p, st);
    default: return fl_launch_as<T, 0, 160, 32, 1, 2>(q, k, v, y, batch, p, st);
    }
}

static_assert(CUDA_ATTENTION_AUTO_KERNEL == CUDA_ATTENTION_LEAN_MMA,
              "fl_launch takes auto (CUDA_ATTENTION_DEFAULT) as LEAN_MMA");

template <typename T>
static cudaError_t fl_launch(const T *q, const T *k, const T *v, T *y, int64_t batch,
                             const struct cm_attn_dims *p, int sm_count, int row_tiles,
                             int kernel, struct cuda_launch st)
{
    int dp, bk;
    fl_shape(p->d, &dp, &bk);
    const int64_t blocks2 = (p->nq + 2 * FL_QROWS - 1) / (2 * FL_QROWS) * p->heads * batch;
    const bool two = dp <= 64 && (row_tiles == 2 || (row_tiles == 0 &&
                                                     blocks2 >= (int64_t)FL_WAVES * sm_count));
    cudaError_t e = cudaSuccess;
    switch (kernel) {
    case CUDA_ATTENTION_PADDED: break;
    case CUDA_ATTENTION_EXACT3:
        if (fl_launch_exact<T, 3, 1>(q, k, v, y, batch, p, two, st, &e))
            return e;
        break;
    case CUDA_ATTENTION_EXACT_BK128:
        if (fl_launch_exact<T, 2, 2>(q, k, v, y, batch, p, two, st, &e))
            return e;
        break;
    case CUDA_ATTENTION_EXACT_SYNC1:
        if (fl_launch_exact<T, 2, 1, true>(q, k, v, y, batch, p, two, st, &e))
            return e;
        break;
    case CUDA_ATTENTION_DEFAULT: /* CUDA_ATTENTION_AUTO_KERNEL */
    case CUDA_ATTENTION_LEAN:
    case CUDA_ATTENTION_LEAN_MMA: /* their max on raw scores needs a positive scale; else
                                     EXACT2 */
        if (p->scale_log2 > 0.0f &&
            (kernel == CUDA_ATTENTION_LEAN
                 ? fl_launch_exact<T, 2, 1, false, 1>(q, k, v, y, batch, p, two, st, &e)
                 : fl_launch_exact<T, 2, 1, false, 2>(q, k, v, y, batch, p, two, st, &e)))
            return e;
        [[fallthrough]];
    default:
        if (fl_launch_exact<T, 2, 1>(q, k, v, y, batch, p, two, st, &e))
            return e;
    }
    return fl_launch_padded<T>(q, k, v, y, batch, p, two, dp, st);
}

static size_t fl_smem_for(int d)
{
    int dp, bk;
    fl_shape(d, &dp, &bk);
    const size_t three = fl_smem(dp, bk, dp <= 64 ? 2 : 1, 3, 2);
    const size_t wide = dp <= 80 ? fl_smem(dp, 128, 1, 2, 2) : 0;
    return three > wide ? three : wide;
}

bool cuda_flash_supports(const struct cuda_backend *cb, enum dtype dt, int d, const void *q,
                         const void *k, const void *v, const void *y)
{
    return cb->cc_major >= 8 && !cb->attention_scalar &&
           (dt == DTYPE_F16 || dt == DTYPE_BF16) && d % 8 == 0 && d >= 8 && d <= 160 &&
           cuda_aligned16(q) && cuda_aligned16(k) && cuda_aligned16(v) && cuda_aligned16(y) &&
           fl_smem_for(d) <= cb->max_smem;
}

cudaError_t cuda_flash_launch(struct cuda_backend *cb, enum dtype dt, const void *q,
                              const void *k, const void *v, void *y, int64_t batch, int64_t nq,
                              int64_t nk, int heads, int d, float scale, bool causal)
{
    const struct cm_attn_dims p = cm_attn_dims_make(nq, nk, heads, d, scale, causal);
    if (dt == DTYPE_F16)
        return fl_launch<__half>((const __half *)q, (const __half *)k, (const __half *)v,
                                 (__half *)y, batch, &p, cb->sm_count,
                                 cb->attention_row_tiles, cb->attention_kernel, cuda_launch_on(cb));
    return fl_launch<__nv_bfloat16>((const __nv_bfloat16 *)q, (const __nv_bfloat16 *)k,
                                    (const __nv_bfloat16 *)v, (__nv_bfloat16 *)y, batch, &p,
                                    cb->sm_count, cb->attention_row_tiles, cb->attention_kernel,
                                    cuda_launch_on(cb));
}
