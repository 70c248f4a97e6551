/* engine/cpu/cpu_sgemm_avx512.c — packed f32 GEMM with AVX-512 register-blocked
 * microkernels (see cpu_sgemm.h).
 *
 * Microkernel: a 14×32 tile of the output in 28 zmm accumulators; per k it loads
 * two vectors of a packed panel {kc, 32} (the "panel operand") and broadcasts 14
 * scalars of the other operand: 2 loads + 14 broadcasts per 28 FMAs, which keeps
 * both FMA ports busy (≈ 98% of the FMA loop's rate with the panel in L2).  Three
 * ways to feed it:
 *
 *   PACKED   C{M,N} = A·B over B panels.  A matrix's rows are broadcast in
 *            place (14 row pointers, stride lda); the im2col rows of other convs
 *            are gathered and transposed into strips {kc, 16} first.  Per piece:
 *              for jc over N (nc ≤ NC_MAX):  for each K block (kc ≤ KC_MAX):
 *                for each strip of 14 rows (L1):
 *                  for each B panel of the block (L2): kernel, write-back
 *   STRIPS   stride-1 convs: x is first copied into "row strips"
 *            xs{ih, strip, cin, 16} — for each strip of ≤ 14 output columns, the
 *            16 input columns it reads, transposed.  The A strip of tap (kh, kw)
 *            is then xs[ih = oh + kh − pad][strip] + kw, read in place with stride
 *            16: no im2col and no per-tap repacking (a 3×3 conv packs its input
 *            1.1× instead of 9×); K blocks follow taps, and taps that fall in the
 *            top/bottom padding are skipped.  Done in bands of output rows so that
 *            xs stays ≤ XS_FLOATS_MAX.
 *   SWAPPED  few rows against a {N,K} weight (M < N: the U-Net's 16×16 and 8×8
 *            levels, text-side projections): computes Cᵀ = W·Aᵀ, so that the
 *            weight — the big operand — is broadcast straight from its rows
 *            (never packed, read once) and the activations are the panels.
 *            Partial sums accumulate in per-thread scratch Cᵀ{n, M}; a final
 *            pass transposes them into C with the epilogue.
 *
 * Epilogue (PACKED, STRIPS): the write-back adds the partial sums C holds from
 * earlier K blocks and, after the last one, applies alpha, bias and residual: no
 * extra pass over C.
 *
 * Parallelism: with one batch item (linear, conv, matmul of batch 1) the panel
 * operand is packed once into shared scratch (a parallel pass), and the output is
 * cut into pieces — rows, row strips or weight-row groups — two per thread,
 * claimed dynamically, so a thread that gets more of the CPU does more of them.
 * Batched matmuls give each batch item (or a range of it) to one thread, which
 * packs B block by block into its own scratch, indexed by the loop's thread
 * argument.
 */
#include "engine/cpu/cpu_sgemm.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,fma")))
#define AVX512_INLINE static inline __attribute__((always_inline)) AVX512

enum {
    MR = 14,      /* rows of the tile (broadcast operand) */
    NR = 32,      /* columns of the tile (two zmm of the panel operand) */
    A_LD = 16,    /* floats per k in a packed A strip and in row strips */
    KC_MAX = 384, /* K block: A strip 24 KiB (L1), B panel 48 KiB streamed from L2 */
    NC_MAX = 768, /* N block: B block ≤ 1.1 MiB, inside a 2 MiB L2 */
    STRIP_KW_MAX = 5, /* STRIPS for kernels up to 5 wide (strips of ≥ 12 columns) */
    XS_FLOATS_MAX = 1 << 21, /* row strips of one band of output rows: ≤ 8 MiB */
    B_HOT_BYTES = 1 << 20,   /* packed B that stays in L2 for a whole strip */
};

bool cpu_sgemm_avx512_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma");
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

static int64_t round_up(int64_t a, int64_t b)
{
    return ceil_div(a, b) * b;
}

/* --- packing ------------------------------------------------------------------- */

/* Transposes the 16×16 block r (row i = r[i]) in place: 64 shuffles. */
AVX512_INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* r[4i+j] lane L: rows 4i..4i+3 at column 4L+j */
        __m512d t0 = _mm512_castps_pd(t[4 * i]), t1 = _mm512_castps_pd(t[4 * i + 1]);
        __m512d t2 = _mm512_castps_pd(t[4 * i + 2]), t3 = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    for (int j = 0; j < 4; j++) {
        __m512 u0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        __m512 u1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
        __m512 u2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        __m512 u3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
        t[j] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        t[8 + j] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
        t[4 + j] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
    }
    for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

static __mmask16 mask_first(int64_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* dst[k·ld + i] = rows[i][k] for k < len, i < 16 (dst 64-byte aligned, ld a
 * multiple of 16); a NULL row gives zeros.  Rows are read with masked loads, so a
 * NULL row becomes an all-off mask over a harmless in-bounds address (dst + k). */
static AVX512 void pack_transpose16(const float *const rows[16], int64_t len, float *dst,
                                    int64_t ld)
{
    const float *src[16];
    __mmask16 on[16];
    for (int i = 0; i < 16; i++) {
        src[i] = rows[i] ? rows[i] : dst;
        on[i] = rows[i] ? (__mmask16)0xFFFF : 0;
    }
    for (int64_t k = 0; k < len; k += 16) {
        int64_t n = min64(16, len - k);
        __mmask16 km = mask_first(n);
        __m512 r[16];
        for (int i = 0; i < 16; i++)
            r[i] = _mm512_maskz_loadu_ps(on[i] & km, src[i] + k);
        transpose16(r);
        for (int i = 0; i < n; i++)
            _mm512_store_ps(dst + (k + i) * ld, r[i]);
    }
}

/* dst[k·ld + i] = A[r0 + i][k0 + k] for i < nrows (≤ 16; rows after nrows are 0)
 * and k < kc, A being the problem's left operand: a matrix, or the im2col view of
 * the conv input, gathered tap by tap (within one tap a row's channels are
 * contiguous in x; out-of-image taps read 0). */
static AVX512 void pack_a_rows(const struct sgemm_problem *p, const float *a, int64_t r0,
                               int nrows, int64_t k0, int64_t kc, float *dst, int64_t ld)
{
    const float *rows[16] = {0};
    if (p->a_kind == SGEMM_A_ROWS) {
        for (int i = 0; i < nrows; i++)
            rows[i] = a + (r0 + i) * p->lda + k0;
        pack_transpose16(rows, kc, dst, ld);
        return;
    }
    const struct sgemm_conv_geom *g = &p->conv;
    int64_t img[16], ih0[16], iw0[16];
    for (int i = 0; i < nrows; i++) {
        int64_t m = r0 + i, ow = m % g->wo, t = m / g->wo;
        img[i] = t / g->ho;
        ih0[i] = (t % g->ho) * g->stride - g->pad;
        iw0[i] = ow * g->stride - g->pad;
    }
    for (int64_t k = k0; k < k0 + kc;) {
        int64_t tap = k / g->cin, c = k % g->cin;
        int64_t kh = tap / g->kw, kw = tap % g->kw;
        int64_t len = min64(g->cin - c, k0 + kc - k);
        for (int i = 0; i < nrows; i++) {
            int64_t ih = ih0[i] + kh, iw = iw0[i] + kw;
            bool inside = ih >= 0 && ih < g->h && iw >= 0 && iw < g->w;
            rows[i] = inside ? a + ((img[i] * g->h + ih) * g->w + iw) * g->cin + c : NULL;
        }
        pack_transpose16(rows, len, dst + (k - k0) * ld, ld);
        k += len;
    }
}

/* Columns n0..n0+nc-1 (≤ NR, zero-padded to NR) of B over k0..k0+kc-1 as one
 * panel dst{kc, NR}. */
static AVX512 void pack_b_panel(const struct sgemm_problem *p, const float *b, int64_t n0,
                                int64_t nc, int64_t k0, int64_t kc, float *dst)
{
    if (p->b_trans) { /* b{N,K}: two transposed halves of 16 rows */
        for (int h = 0; h < 2; h++) {
            const float *rows[16] = {0};
            for (int i = 0; i < 16 && h * 16 + i < nc; i++)
                rows[i] = b + (n0 + h * 16 + i) * p->ldb + k0;
            pack_transpose16(rows, kc, dst + h * 16, NR);
        }
        return;
    }
    __mmask16 m0 = mask_first(nc), m1 = mask_first(nc - 16); /* b{K,N}: copy rows */
    for (int64_t k = 0; k < kc; k++) {
        const float *s = b + (k0 + k) * p->ldb + n0;
        _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, s));
        _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
    }
}

/* B block {kc, nc} at (k0, n0) as ceil(nc/NR) consecutive panels. */
static void pack_b(const struct sgemm_problem *p, const float *b, int64_t n0, int64_t nc,
                   int64_t k0, int64_t kc, float *dst)
{
    for (int64_t j = 0; j < nc; j += NR, dst += kc * NR)
        pack_b_panel(p, b, n0 + j, min64(NR, nc - j), k0, kc, dst);
}

/* --- microkernels -------------------------------------------------------------- */

/* Where one tile goes and what its write-back adds. */
struct tile_out {
    float *c;            /* tile's top-left element */
    int64_t ldc;
    const float *res;    /* residual at the same position, or NULL */
    int64_t ldr;
    const float *bias;   /* bias at the tile's first column, or NULL */
    float alpha;
    int ncols;           /* valid columns, 1..NR */
    bool accumulate;     /* add the partial sums C holds from earlier K blocks */
    bool final;          /* last K block: scale by alpha, add bias and residual */
};

/* Writes the accumulators of an mr×NR tile back as o describes. */
AVX512_INLINE void tile_write(const int mr, __m512 acc[MR][2], const struct tile_out *o)
{
    __mmask16 m0 = mask_first(o->ncols), m1 = mask_first(o->ncols - 16);
    __m512 alpha = _mm512_set1_ps(o->alpha), bias0 = _mm512_setzero_ps(), bias1 = bias0;
    if (o->final && o->bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, o->bias);
        bias1 = _mm512_maskz_loadu_ps(m1, o->bias + 16);
    }
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        float *c = o->c + i * o->ldc;
        __m512 v0 = acc[i][0], v1 = acc[i][1];
        if (o->accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c + 16));
        }
        if (o->final) {
            v0 = _mm512_fmadd_ps(v0, alpha, bias0);
            v1 = _mm512_fmadd_ps(v1, alpha, bias1);
            if (o->res) {
                const float *r = o->res + i * o->ldr;
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, r));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, r + 16));
            }
        }
        _mm512_mask_storeu_ps(c, m0, v0);
        _mm512_mask_storeu_ps(c + 16, m1, v1);
    }
}

AVX512_INLINE void tile_prefetch(const int mr, const struct tile_out *o)
{
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(o->c + i * o->ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(o->c + i * o->ldc + 16), _MM_HINT_T0);
    }
}

/* Tile{mr, NR} (+)= Aᵀ · B over kc, A a strip{kc, A_LD} (row i of the tile at
 * ap[k·A_LD + i]), B a panel{kc, NR}.  mr is a compile-time constant in each
 * instantiation, so the accumulators live in registers. */
AVX512_INLINE void kernel_packed_body(const int mr, int64_t kc, const float *ap, const float *bp,
                                      const struct tile_out *o)
{
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    tile_prefetch(mr, o);
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512 a = _mm512_set1_ps(ap[i]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
        ap += A_LD;
        bp += NR;
    }
    tile_write(mr, acc, o);
}

/* Row i of a strided A: five base pointers and offsets 0, lda, 2·lda cover the 14
 * rows, so the broadcasts use base+index addressing and nothing spills. */
AVX512_INLINE const float *strided_row(const int i, const float *const base[5], int64_t lda,
                                       int64_t lda2)
{
    const float *b = base[i / 3];
    return i % 3 == 0 ? b : i % 3 == 1 ? b + lda : b + lda2;
}

/* Same tile, A read in place: row i at a[i·lda + k] (a weight's rows). */
AVX512_INLINE void kernel_strided_body(const int mr, int64_t kc, const float *a, int64_t lda,
                                       const float *bp, const struct tile_out *o)
{
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    const float *base[5];
#pragma GCC unroll 5
    for (int j = 0; j < 5; j++)
        base[j] = 3 * j < mr ? a + 3 * j * lda : a; /* never past the last row */
    int64_t lda2 = 2 * lda;
    tile_prefetch(mr, o);
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512 s = _mm512_set1_ps(*strided_row(i, base, lda, lda2));
            acc[i][0] = _mm512_fmadd_ps(s, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(s, b1, acc[i][1]);
        }
#pragma GCC unroll 5
        for (int j = 0; j < 5; j++)
            base[j]++;
        bp += NR;
    }
    tile_write(mr, acc, o);
}

typedef void (*kernel_packed_fn)(int64_t kc, const float *ap, const float *bp,
                                 const struct tile_out *o);
typedef void (*kernel_strided_fn)(int64_t kc, const float *a, int64_t lda, const float *bp,
                                  const struct tile_out *o);

#define DEFINE_KERNELS(R)                                                                \
    static AVX512 void kernel_packed_##R(int64_t kc, const float *ap, const float *bp,   \
                                         const struct tile_out *o)                       \
    {                                                                                    \
        kernel_packed_body(R, kc, ap, bp, o);                                            \
    }                                                                                    \
    static AVX512 void kernel_strided_##R(int64_t kc, const float *a, int64_t lda,       \
                                          const float *bp, const struct tile_out *o)     \
    {                                                                                    \
        kernel_strided_body(R, kc, a, lda, bp, o);                                       \
    }
DEFINE_KERNELS(1)
DEFINE_KERNELS(2)
DEFINE_KERNELS(3)
DEFINE_KERNELS(4)
DEFINE_KERNELS(5)
DEFINE_KERNELS(6)
DEFINE_KERNELS(7)
DEFINE_KERNELS(8)
DEFINE_KERNELS(9)
DEFINE_KERNELS(10)
DEFINE_KERNELS(11)
DEFINE_KERNELS(12)
DEFINE_KERNELS(13)
DEFINE_KERNELS(14)

/* [r]: the kernel for a tile of r rows (the last strip or group may be short). */
static const kernel_packed_fn kernels_packed[MR + 1] = {
    NULL,
    kernel_packed_1,  kernel_packed_2,  kernel_packed_3,  kernel_packed_4,  kernel_packed_5,
    kernel_packed_6,  kernel_packed_7,  kernel_packed_8,  kernel_packed_9,  kernel_packed_10,
    kernel_packed_11, kernel_packed_12, kernel_packed_13, kernel_packed_14,
};
static const kernel_strided_fn kernels_strided[MR + 1] = {
    NULL,
    kernel_strided_1,  kernel_strided_2,  kernel_strided_3,  kernel_strided_4,
    kernel_strided_5,  kernel_strided_6,  kernel_strided_7,  kernel_strided_8,
    kernel_strided_9,  kernel_strided_10, kernel_strided_11, kernel_strided_12,
    kernel_strided_13, kernel_strided_14,
};

/* --- plan ---------------------------------------------------------------------- */

enum sgemm_mode { MODE_PACKED, MODE_STRIPS, MODE_SWAPPED };

/* STRIPS geometry: each output row is cut into `count` strips of near-equal width
 * (≤ MR, and ≤ 16 − (kw − 1) so that a strip's input columns fit 16 lanes).  The
 * output is done in bands of output rows of one image, so that the row strips of
 * the input rows one band reads stay ≤ XS_FLOATS_MAX. */
struct strip_geom {
    int64_t count;
    int64_t chunks;       /* K blocks per tap: cin cut into this many channel ranges */
    int64_t band_rows;    /* output rows per band */
    int64_t img, oh0;     /* the current band: image, first output row */
    int64_t ih0, in_rows; /* its input rows [ih0, ih0 + in_rows), as xs holds them */
};

struct sgemm_plan {
    const struct sgemm_problem *p;
    enum sgemm_mode mode;
    int64_t kc;        /* K block size (STRIPS: blocks follow taps, see kblock_of) */
    int64_t kblocks;   /* number of K blocks */
    int64_t nc_cap;    /* N block capacity, a multiple of NR (PACKED, STRIPS) */
    int64_t units;     /* what pieces cut: strips of rows, row strips, panels, groups */
    int64_t pieces;    /* work items per batch item */
    bool split_m;      /* PACKED: pieces cut rows (else columns) */
    bool shared;       /* the panel operand is packed once, for all pieces */
    int64_t wpad;      /* shared: panel operand width (N, or M when SWAPPED) padded to NR */
    struct strip_geom sg;
    float *xs;         /* STRIPS: the row-strip copy of x */
    float *panels;     /* shared: the panel operand, K block after K block */
    float *scratch;    /* per thread, per_thread floats */
    size_t per_thread;
};

/* K block q as [k0, k0 + kc).  STRIPS blocks follow taps (taps major, then ranges
 * of channels), so that one block is one tap's contiguous channels. */
static void kblock_of(const struct sgemm_plan *pl, int64_t q, int64_t *k0, int64_t *kc)
{
    if (pl->mode == MODE_STRIPS) {
        const struct sgemm_conv_geom *g = &pl->p->conv;
        int64_t tap = q / pl->sg.chunks, r = q % pl->sg.chunks;
        int64_t c0 = g->cin * r / pl->sg.chunks, c1 = g->cin * (r + 1) / pl->sg.chunks;
        *k0 = tap * g->cin + c0;
        *kc = c1 - c0;
        return;
    }
    *k0 = q * pl->kc;
    *kc = min64(pl->kc, pl->p->k - *k0);
}

/* Panel j of K block [k0, k0 + kc) of the shared panel operand. */
static const float *shared_panel(const struct sgemm_plan *pl, int64_t k0, int64_t kc, int64_t j)
{
    return pl->panels + k0 * pl->wpad + j * kc * NR;
}

/* Shared packing: items are (K block, panel) pairs.  The panel operand is B, or A
 * when SWAPPED (two transposed halves of 16 rows per panel). */
static void panels_fill(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct sgemm_plan *pl = ctx;
    const struct sgemm_problem *p = pl->p;
    int64_t npan = pl->wpad / NR;
    for (size_t item = begin; item < end; item++) {
        int64_t q = (int64_t)item / npan, j = (int64_t)item % npan, k0, kc;
        kblock_of(pl, q, &k0, &kc);
        float *dst = (float *)shared_panel(pl, k0, kc, j);
        if (pl->mode != MODE_SWAPPED) {
            pack_b_panel(p, p->b, j * NR, min64(NR, p->n - j * NR), k0, kc, dst);
            continue;
        }
        for (int h = 0; h < 2; h++) {
            int64_t r0 = j * NR + h * 16;
            pack_a_rows(p, p->a, r0, (int)min64(16, max64(0, p->m - r0)), k0, kc, dst + h * 16,
                        NR);
        }
    }
}

/* --- PACKED -------------------------------------------------------------------- */

/* Rows [m0, m1) × columns [n0, n1) of batch item bi; B from the shared panels, or
 * packed here block by block. */
static void packed_block(const struct sgemm_plan *pl, int64_t bi, int64_t m0, int64_t m1,
                         int64_t n0, int64_t n1, float *scratch)
{
    const struct sgemm_problem *p = pl->p;
    const float *a = p->a + bi * p->stride_a;
    const float *b = p->b + bi * p->stride_b;
    float *c = p->c + bi * p->stride_c;
    const float *res = p->residual ? p->residual + bi * p->stride_c : NULL;
    float *ap = scratch, *own_b = scratch + pl->kc * A_LD;
    int64_t ncb = round_up(ceil_div(n1 - n0, ceil_div(n1 - n0, pl->nc_cap)), NR);
    for (int64_t jc = n0; jc < n1; jc += ncb) {
        int64_t nc = min64(ncb, n1 - jc);
        for (int64_t q = 0; q < pl->kblocks; q++) {
            int64_t pc, kc;
            kblock_of(pl, q, &pc, &kc);
            const float *bp = own_b;
            if (pl->shared)
                bp = shared_panel(pl, pc, kc, jc / NR);
            else
                pack_b(p, b, jc, nc, pc, kc, own_b);
            struct tile_out o = {.ldc = p->ldc, .ldr = p->ldc, .alpha = p->alpha,
                                 .accumulate = pc > 0, .final = pc + kc == p->k};
            for (int64_t ms = m0; ms < m1; ms += MR) {
                int mr = (int)min64(MR, m1 - ms);
                /* a matrix's rows are broadcast in place; im2col rows are packed */
                bool in_place = p->a_kind == SGEMM_A_ROWS;
                const float *arows = a + ms * p->lda + pc;
                if (!in_place)
                    pack_a_rows(p, a, ms, mr, pc, kc, ap, A_LD);
                for (int64_t j = 0; j < nc; j += NR) {
                    o.c = c + ms * p->ldc + jc + j;
                    o.res = res ? res + ms * p->ldc + jc + j : NULL;
                    o.bias = p->bias ? p->bias + jc + j : NULL;
                    o.ncols = (int)min64(NR, nc - j);
                    const float *panel = bp + (j / NR) * kc * NR;
                    if (in_place)
                        kernels_strided[mr](kc, arows, p->lda, panel, &o);
                    else
                        kernels_packed[mr](kc, ap, panel, &o);
                }
            }
        }
    }
}

/* --- STRIPS -------------------------------------------------------------------- */

static int64_t strip_start(const struct sgemm_plan *pl, int64_t s)
{
    return s * pl->p->conv.wo / pl->sg.count;
}

/* xs row r of the band (input row ih0 + r of its image): for each strip, its 16
 * input columns starting at strip_start − pad, transposed to {cin, 16}. */
static void strips_fill(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const struct sgemm_plan *pl = ctx;
    const struct sgemm_conv_geom *g = &pl->p->conv;
    for (size_t row = begin; row < end; row++) {
        int64_t ih = pl->sg.ih0 + (int64_t)row;
        const float *xrow = pl->p->a + (pl->sg.img * g->h + ih) * g->w * g->cin;
        for (int64_t s = 0; s < pl->sg.count; s++) {
            const float *rows[16] = {0};
            int64_t iw0 = strip_start(pl, s) - g->pad;
            for (int j = 0; j < 16; j++)
                if (iw0 + j >= 0 && iw0 + j < g->w)
                    rows[j] = xrow + (iw0 + j) * g->cin;
            float *dst = pl->xs + ((int64_t)row * pl->sg.count + s) * g->cin * A_LD;
            pack_transpose16(rows, g->cin, dst, A_LD);
        }
    }
}

/* Tile strip u of the band = (output row oh0 + u / count, strip u % count): its
 * first output row m0 and width, the xs row of tap row 0 (+ kh: the tap's), and
 * the tap rows kh_lo..kh_hi that land inside the image (kh_lo > kh_hi: none). */
struct strip_rows {
    int64_t m0, width, xs_row, strip, kh_lo, kh_hi;
};

static struct strip_rows strip_rows_of(const struct sgemm_plan *pl, int64_t u)
{
    const struct sgemm_conv_geom *g = &pl->p->conv;
    int64_t s = u % pl->sg.count, oh = pl->sg.oh0 + u / pl->sg.count;
    int64_t ow0 = strip_start(pl, s);
    struct strip_rows r = {
        .m0 = (pl->sg.img * g->ho + oh) * g->wo + ow0, .width = strip_start(pl, s + 1) - ow0,
        .xs_row = oh - g->pad - pl->sg.ih0, .strip = s,
        .kh_lo = max64(0, g->pad - oh), .kh_hi = min64(g->kh - 1, g->h - 1 + g->pad - oh),
    };
    return r;
}

/* Strips whose taps all fall in the padding: C = bias + residual (alpha · 0). */
static void strip_epilogue_only(const struct sgemm_problem *p, const struct strip_rows *r)
{
    for (int64_t i = 0; i < r->width; i++) {
        float *c = p->c + (r->m0 + i) * p->ldc;
        const float *res = p->residual ? p->residual + (r->m0 + i) * p->ldc : NULL;
        for (int64_t n = 0; n < p->n; n++)
            c[n] = (p->bias ? p->bias[n] : 0.0f) + (res ? res[n] : 0.0f);
    }
}

/* Strip r × K block q (tap kh, kw) × columns [jc, jc + nc): one kernel call per
 * B panel, skipping taps that fall in the padding. */
static void strip_tile(const struct sgemm_plan *pl, const struct strip_rows *r, int64_t q,
                       int64_t jc, int64_t nc)
{
    const struct sgemm_problem *p = pl->p;
    const struct sgemm_conv_geom *g = &p->conv;
    int64_t per_kh = g->kw * pl->sg.chunks; /* K blocks per tap row */
    int64_t k0, kc, kh = q / per_kh, kw = (q / pl->sg.chunks) % g->kw;
    if (kh < r->kh_lo || kh > r->kh_hi)
        return;
    kblock_of(pl, q, &k0, &kc);
    int64_t c0 = k0 - (kh * g->kw + kw) * g->cin;
    const float *ap = pl->xs + ((r->xs_row + kh) * pl->sg.count + r->strip) * g->cin * A_LD +
                      c0 * A_LD + kw;
    const float *bp = shared_panel(pl, k0, kc, jc / NR);
    struct tile_out o = {
        .ldc = p->ldc, .ldr = p->ldc, .alpha = p->alpha,
        .accumulate = q > r->kh_lo * per_kh, .final = q == (r->kh_hi + 1) * per_kh - 1,
    };
    for (int64_t j = 0; j < nc; j += NR) {
        o.c = p->c + r->m0 * p->ldc + jc + j;
        o.res = p->residual ? p->residual + r->m0 * p->ldc + jc + j : NULL;
        o.bias = p->bias ? p->bias + jc + j : NULL;
        o.ncols = (int)min64(NR, nc - j);
        kernels_packed[r->width](kc, ap, bp + (j / NR) * kc * NR, &o);
    }
}

/* Strips [u0, u1) × all columns.  When the packed B of a column block (≥ 3
 * panels) fits in half of L2 (few channels: the VAE's convs), each strip runs all
 * its K blocks at once so that its C tiles stay in L1 — the strips themselves are
 * read in place, so another column block costs no packing; otherwise K blocks go
 * outermost so that one block of B stays in L2 while the strips stream past it. */
static void strips_block(const struct sgemm_plan *pl, int64_t u0, int64_t u1)
{
    const struct sgemm_problem *p = pl->p;
    /* columns whose packed B (all K) fits: worth it from 3 panels on */
    int64_t fit = B_HOT_BYTES / (p->k * (int64_t)sizeof(float)) / NR * NR;
    int64_t cap = fit >= 3 * NR ? min64(fit, pl->nc_cap) : pl->nc_cap;
    int64_t ncb = round_up(ceil_div(p->n, ceil_div(p->n, cap)), NR);
    bool b_fits = p->k * ncb * (int64_t)sizeof(float) <= B_HOT_BYTES;
    for (int64_t jc = 0; jc < p->n; jc += ncb) {
        int64_t nc = min64(ncb, p->n - jc);
        if (b_fits) {
            for (int64_t u = u0; u < u1; u++) {
                struct strip_rows r = strip_rows_of(pl, u);
                for (int64_t q = 0; q < pl->kblocks; q++)
                    strip_tile(pl, &r, q, jc, nc);
            }
            continue;
        }
        for (int64_t q = 0; q < pl->kblocks; q++)
            for (int64_t u = u0; u < u1; u++) {
                struct strip_rows r = strip_rows_of(pl, u);
                strip_tile(pl, &r, q, jc, nc);
            }
    }
    for (int64_t u = u0; u < u1; u++) {
        struct strip_rows r = strip_rows_of(pl, u);
        if (r.kh_lo > r.kh_hi)
            strip_epilogue_only(p, &r);
    }
}

/* --- SWAPPED ------------------------------------------------------------------- */

/* Pulls rows[0..n) × [0, len) of a strided matrix towards L2: the weight rows the
 * next group reads, short runs that the hardware prefetchers pick up late. */
static AVX512 void prefetch_rows(const float *rows, int n, int64_t ld, int64_t len)
{
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < len; k += 16)
            _mm_prefetch((const char *)(rows + i * ld + k), _MM_HINT_T1);
}

/* y[m][n0 + j] = alpha·ct[j][m] + bias + residual for j < nn, m < M (ct{nn, ldt}),
 * transposed 16 columns at a time through tmp{256, 16}. */
static AVX512 void swapped_write(const struct sgemm_problem *p, const float *ct, int64_t ldt,
                                 int64_t n0, int64_t nn, float *tmp)
{
    __m512 alpha = _mm512_set1_ps(p->alpha);
    for (int64_t j0 = 0; j0 < nn; j0 += 16) {
        int64_t cols = min64(16, nn - j0);
        __mmask16 mk = mask_first(cols);
        __m512 bias = p->bias ? _mm512_maskz_loadu_ps(mk, p->bias + n0 + j0) : _mm512_setzero_ps();
        for (int64_t m0 = 0; m0 < p->m; m0 += 256) {
            int64_t mm = min64(256, p->m - m0);
            const float *rows[16] = {0};
            for (int j = 0; j < cols; j++)
                rows[j] = ct + (j0 + j) * ldt + m0;
            pack_transpose16(rows, mm, tmp, 16);
            for (int64_t i = 0; i < mm; i++) {
                int64_t at = (m0 + i) * p->ldc + n0 + j0;
                __m512 v = _mm512_fmadd_ps(_mm512_load_ps(tmp + i * 16), alpha, bias);
                if (p->residual)
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, p->residual + at));
                _mm512_mask_storeu_ps(p->c + at, mk, v);
            }
        }
    }
}

/* Output columns [n0, n1) — rows of the weight — for all M rows:
 * ct{n1−n0, mpad} = W[n0..n1) · Aᵀ block by block, then transposed into C. */
static void swapped_block(const struct sgemm_plan *pl, int64_t n0, int64_t n1, float *scratch)
{
    const struct sgemm_problem *p = pl->p;
    float *ct = scratch, *tmp = scratch + pl->nc_cap * pl->wpad;
    for (int64_t q = 0; q < pl->kblocks; q++) {
        int64_t pc, kc;
        kblock_of(pl, q, &pc, &kc);
        struct tile_out o = {.ldc = pl->wpad, .alpha = 1.0f, .accumulate = q > 0};
        for (int64_t g = n0; g < n1; g += MR) {
            int mr = (int)min64(MR, n1 - g);
            const float *w = p->b + g * p->ldb + pc;
            if (g + MR < n1)
                prefetch_rows(w + MR * p->ldb, (int)min64(MR, n1 - g - MR), p->ldb, kc);
            for (int64_t m = 0; m < p->m; m += NR) {
                o.c = ct + (g - n0) * pl->wpad + m;
                o.ncols = (int)min64(NR, p->m - m);
                kernels_strided[mr](kc, w, p->ldb, shared_panel(pl, pc, kc, m / NR), &o);
            }
        }
    }
    swapped_write(p, ct, pl->wpad, n0, n1 - n0, tmp);
}

/* --- driver -------------------------------------------------------------------- */

/* Cuts [0, units) into `pieces` near-equal ranges; returns range `i`. */
static void piece_range(int64_t units, int64_t pieces, int64_t i, int64_t *lo, int64_t *hi)
{
    *lo = units * i / pieces;
    *hi = units * (i + 1) / pieces;
}

static void sgemm_items(void *ctx, size_t begin, size_t end, int thread)
{
    const struct sgemm_plan *pl = ctx;
    const struct sgemm_problem *p = pl->p;
    float *scratch = pl->scratch + (size_t)thread * pl->per_thread;
    for (size_t item = begin; item < end; item++) {
        int64_t bi = (int64_t)item / pl->pieces, lo, hi;
        piece_range(pl->units, pl->pieces, (int64_t)item % pl->pieces, &lo, &hi);
        switch (pl->mode) {
        case MODE_SWAPPED:
            swapped_block(pl, lo * MR, min64(hi * MR, p->n), scratch);
            break;
        case MODE_STRIPS:
            strips_block(pl, lo, hi);
            break;
        case MODE_PACKED:
            if (pl->split_m)
                packed_block(pl, bi, lo * MR, min64(hi * MR, p->m), 0, p->n, scratch);
            else
                packed_block(pl, bi, 0, p->m, lo * NR, min64(hi * NR, p->n), scratch);
            break;
        }
    }
}

static enum sgemm_mode choose_mode(const struct sgemm_problem *p)
{
    if (p->batch != 1 || !p->b_trans)
        return MODE_PACKED;
    if (p->m < p->n) /* few rows against a {N,K} weight: broadcast the weight */
        return MODE_SWAPPED;
    if (p->a_kind == SGEMM_A_IM2COL && p->conv.stride == 1 && p->conv.kw <= STRIP_KW_MAX)
        return MODE_STRIPS;
    return MODE_PACKED;
}

/* Pieces per batch item.  With a shared panel operand, pieces duplicate no
 * packing: two per thread let a thread that gets more of the CPU take more of
 * them (more would make each piece stream every B block from L3 again for less
 * work).  Otherwise one per thread, unless the batch already splits evenly. */
static int64_t pieces_for(const struct sgemm_plan *pl, int threads)
{
    const struct sgemm_problem *p = pl->p;
    if (threads == 1)
        return 1;
    if (pl->shared && (pl->mode != MODE_PACKED || pl->split_m))
        return max64(1, min64(2 * (int64_t)threads, pl->units));
    if (p->batch % threads != 0 && p->batch < 4 * (int64_t)threads)
        return max64(1, min64(threads, pl->units));
    return 1;
}

/* Chooses the mode, block sizes, split and scratch sizes of p over `threads`. */
static void sgemm_plan_make(const struct sgemm_problem *p, int threads, struct sgemm_plan *pl)
{
    *pl = (struct sgemm_plan){.p = p, .mode = choose_mode(p), .shared = p->batch == 1};
    pl->kc = ceil_div(p->k, ceil_div(p->k, KC_MAX));
    pl->kblocks = ceil_div(p->k, pl->kc);
    pl->nc_cap = min64(round_up(p->n, NR), NC_MAX);
    pl->wpad = round_up(p->n, NR);
    switch (pl->mode) {
    case MODE_SWAPPED:
        pl->wpad = round_up(p->m, NR);
        pl->units = ceil_div(p->n, MR);
        pl->pieces = pieces_for(pl, threads);
        pl->nc_cap = ceil_div(pl->units, pl->pieces) * MR; /* columns of one piece, at most */
        pl->per_thread = (size_t)(pl->nc_cap * pl->wpad + 256 * 16);
        break;
    case MODE_STRIPS: {
        const struct sgemm_conv_geom *g = &p->conv;
        pl->sg.count = ceil_div(g->wo, min64(MR, A_LD - (g->kw - 1)));
        pl->sg.chunks = ceil_div(g->cin, KC_MAX);
        pl->kc = ceil_div(g->cin, pl->sg.chunks);
        pl->kblocks = g->kh * g->kw * pl->sg.chunks;
        int64_t row_floats = pl->sg.count * g->cin * A_LD; /* xs per input row */
        pl->sg.band_rows = max64(1, min64(g->ho, XS_FLOATS_MAX / row_floats - (g->kh - 1)));
        pl->units = pl->sg.band_rows * pl->sg.count; /* of a full band */
        pl->pieces = pieces_for(pl, threads);
        pl->per_thread = 0;
        break;
    }
    case MODE_PACKED:
        /* duplicated packing: splitting M repacks B (N·K), splitting N A (M·K) */
        pl->split_m = p->m >= p->n;
        pl->units = pl->split_m ? ceil_div(p->m, MR) : ceil_div(p->n, NR);
        pl->pieces = pieces_for(pl, threads);
        pl->per_thread = (size_t)(pl->kc * A_LD + (pl->shared ? 0 : pl->kc * pl->nc_cap));
        break;
    }
    pl->per_thread = (size_t)round_up((int64_t)pl->per_thread, 16); /* 64-byte aligned */
}

/* Floats of shared scratch: the row strips of one band (STRIPS), the panels. */
static void shared_sizes(const struct sgemm_plan *pl, size_t *xs, size_t *panels)
{
    const struct sgemm_problem *p = pl->p;
    *xs = *panels = 0;
    if (pl->mode == MODE_STRIPS) {
        const struct sgemm_conv_geom *g = &p->conv;
        int64_t in_rows = min64(g->h, pl->sg.band_rows + g->kh - 1);
        *xs = (size_t)(in_rows * pl->sg.count * g->cin * A_LD);
    }
    if (pl->shared)
        *panels = (size_t)(p->k * pl->wpad);
}

/* STRIPS, band by band: copy the band's input rows into row strips, then its
 * strips of output rows over the pool. */
static void strips_run(struct threadpool *pool, struct sgemm_plan *pl, int threads)
{
    const struct sgemm_conv_geom *g = &pl->p->conv;
    int64_t images = pl->p->m / (g->ho * g->wo);
    for (int64_t img = 0; img < images; img++)
        for (int64_t oh0 = 0; oh0 < g->ho; oh0 += pl->sg.band_rows) {
            int64_t oh1 = min64(g->ho, oh0 + pl->sg.band_rows);
            int64_t ih0 = max64(0, oh0 - g->pad);
            int64_t ih1 = min64(g->h, oh1 - 1 - g->pad + g->kh); /* exclusive */
            pl->sg.img = img;
            pl->sg.oh0 = oh0;
            pl->sg.ih0 = ih0;
            pl->sg.in_rows = max64(0, ih1 - ih0);
            threadpool_parallel_for(pool, (size_t)pl->sg.in_rows, 1, strips_fill, pl);
            pl->units = (oh1 - oh0) * pl->sg.count;
            pl->pieces = pieces_for(pl, threads);
            threadpool_parallel_for(pool, (size_t)pl->pieces, 1, sgemm_items, pl);
        }
}

enum status cpu_sgemm_avx512(struct threadpool *pool, const struct sgemm_problem *p,
                             struct errbuf *err)
{
    ASSERT(p->batch > 0 && p->m > 0 && p->n > 0 && p->k > 0);
    int threads = threadpool_size(pool);
    struct sgemm_plan pl;
    sgemm_plan_make(p, threads, &pl);
    size_t xs, panels;
    shared_sizes(&pl, &xs, &panels);
    size_t bytes = (pl.per_thread * (size_t)threads + xs + panels) * sizeof(float);
    pl.scratch = aligned_alloc(64, bytes ? bytes : 64);
    if (!pl.scratch)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "sgemm: cannot allocate %zu bytes of scratch",
                           bytes);
    pl.xs = pl.scratch + pl.per_thread * (size_t)threads;
    pl.panels = pl.xs + xs;
    if (panels)
        threadpool_parallel_for(pool, (size_t)(pl.kblocks * (pl.wpad / NR)), 1, panels_fill, &pl);
    if (pl.mode == MODE_STRIPS)
        strips_run(pool, &pl, threads);
    else
        threadpool_parallel_for(pool, (size_t)(p->batch * pl.pieces), 1, sgemm_items, &pl);
    free(pl.scratch);
    return STATUS_OK;
}
