/* engine/cpu/cpu_sgemm_avx512.c — packed f32 GEMM with AVX-512 register-blocked
 * microkernels (see cpu_sgemm.h).
 *
 * Blocking (per work item = one batch item × one range of rows or columns):
 *
 *   for jc over N in blocks of nc (≤ NC_MAX)              B block  {kc, nc}  ~L2
 *     for pc over K in blocks of kc (≤ KC_MAX)            packed once per item
 *       pack B[pc.., jc..] into NR-column panels {kc, NR}
 *       for each strip of MR rows of A                    A strip  {kc, A_LD} L1
 *         pack the strip (im2col gathered here for convs)
 *         for each B panel: microkernel MR×NR over kc, write-back into C
 *
 * The microkernel keeps a 14×32 tile of C in 28 zmm accumulators; per k it loads
 * two B vectors and broadcasts 14 A values (56 B of A, 128 B of B per 28 FMAs).
 * The write-back adds the earlier K blocks' partial sums from C and, after the last
 * block, applies alpha, bias and residual — the epilogue is fused, no extra pass.
 *
 * Parallelism: the items are split over the pool with one item per thread where
 * possible; a thread packs what its item needs into its own scratch (indexed by
 * the loop's thread argument).  Splitting M costs every thread a packing of B,
 * splitting N a packing of A, so the smaller of the two is duplicated.
 */
#include "engine/cpu/cpu_sgemm.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,fma")))
#define AVX512_INLINE static inline __attribute__((always_inline)) AVX512

enum {
    MR = 14,      /* rows of the C tile (A values broadcast per k) */
    NR = 32,      /* columns of the C tile (two zmm) */
    A_LD = 16,    /* floats per k in a packed A strip (MR padded to a vector) */
    KC_MAX = 384, /* K block: A strip 24 KiB (L1), B panel 48 KiB streamed from L2 */
    NC_MAX = 768, /* N block: B block ≤ 1.1 MiB, inside a 2 MiB L2 */
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

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
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

/* A strip{kc, A_LD} of rows m0..m0+mr-1, columns k0..k0+kc-1 of a row-major A. */
static AVX512 void pack_a_rows(const float *a, int64_t lda, int64_t m0, int mr, int64_t k0,
                               int64_t kc, float *dst)
{
    const float *rows[16] = {0};
    for (int i = 0; i < mr; i++)
        rows[i] = a + (m0 + i) * lda + k0;
    pack_transpose16(rows, kc, dst, A_LD);
}

/* The same strip of the implicit im2col matrix of x{images,h,w,cin}: row m is
 * output pixel (image, oh, ow), column k is (kh, kw, c); out-of-image taps read 0.
 * Packs tap by tap: within one tap each row's channels are contiguous in x. */
static AVX512 void pack_a_im2col(const float *x, const struct sgemm_conv_geom *g, int64_t m0,
                                 int mr, int64_t k0, int64_t kc, float *dst)
{
    int64_t img[MR], ih0[MR], iw0[MR];
    for (int i = 0; i < mr; i++) {
        int64_t m = m0 + i, ow = m % g->wo, t = m / g->wo;
        img[i] = t / g->ho;
        ih0[i] = (t % g->ho) * g->stride - g->pad;
        iw0[i] = ow * g->stride - g->pad;
    }
    for (int64_t k = k0; k < k0 + kc;) {
        int64_t tap = k / g->cin, c = k % g->cin;
        int64_t kh = tap / g->kw, kw = tap % g->kw;
        int64_t len = min64(g->cin - c, k0 + kc - k);
        const float *rows[16] = {0};
        for (int i = 0; i < mr; i++) {
            int64_t ih = ih0[i] + kh, iw = iw0[i] + kw;
            if (ih >= 0 && ih < g->h && iw >= 0 && iw < g->w)
                rows[i] = x + ((img[i] * g->h + ih) * g->w + iw) * g->cin + c;
        }
        pack_transpose16(rows, len, dst + (k - k0) * A_LD, A_LD);
        k += len;
    }
}

/* B block {kc, nc} at (k0, n0) into ceil(nc/NR) panels {kc, NR}, zero-padded. */
static AVX512 void pack_b(const struct sgemm_problem *p, const float *b, int64_t n0, int64_t nc,
                          int64_t k0, int64_t kc, float *dst)
{
    for (int64_t j = 0; j < nc; j += NR, dst += kc * NR) {
        int64_t cols = min64(NR, nc - j);
        if (p->b_trans) { /* b{N,K}: 32 rows of K → transpose in two halves */
            for (int h = 0; h < 2; h++) {
                const float *rows[16] = {0};
                for (int i = 0; i < 16 && h * 16 + i < cols; i++)
                    rows[i] = b + (n0 + j + h * 16 + i) * p->ldb + k0;
                pack_transpose16(rows, kc, dst + h * 16, NR);
            }
        } else { /* b{K,N}: rows of 32 contiguous floats */
            __mmask16 m0 = mask_first(cols), m1 = mask_first(cols - 16);
            for (int64_t k = 0; k < kc; k++) {
                const float *s = b + (k0 + k) * p->ldb + n0 + j;
                _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, s));
                _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
            }
        }
    }
}

/* --- microkernel --------------------------------------------------------------- */

/* Where one MR×NR tile goes and what its write-back adds. */
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

/* C tile{mr, ncols} (+)= A strip{kc, A_LD}ᵀ · B panel{kc, NR}, then the write-back.
 * mr is a compile-time constant in each instantiation, so acc lives in registers. */
AVX512_INLINE void kernel_body(const int mr, int64_t kc, const float *ap, const float *bp,
                               const struct tile_out *o)
{
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++)
        _mm_prefetch((const char *)(o->c + i * o->ldc), _MM_HINT_T0);
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

typedef void (*kernel_fn)(int64_t kc, const float *ap, const float *bp,
                          const struct tile_out *o);

#define DEFINE_KERNEL(R)                                                                 \
    static AVX512 void kernel_##R(int64_t kc, const float *ap, const float *bp,          \
                                  const struct tile_out *o)                              \
    {                                                                                    \
        kernel_body(R, kc, ap, bp, o);                                                   \
    }
DEFINE_KERNEL(1)
DEFINE_KERNEL(2)
DEFINE_KERNEL(3)
DEFINE_KERNEL(4)
DEFINE_KERNEL(5)
DEFINE_KERNEL(6)
DEFINE_KERNEL(7)
DEFINE_KERNEL(8)
DEFINE_KERNEL(9)
DEFINE_KERNEL(10)
DEFINE_KERNEL(11)
DEFINE_KERNEL(12)
DEFINE_KERNEL(13)
DEFINE_KERNEL(14)

/* kernels[r]: the kernel for a strip of r rows (the last strip may be short). */
static const kernel_fn kernels[MR + 1] = {
    NULL,      kernel_1,  kernel_2,  kernel_3,  kernel_4,  kernel_5,  kernel_6, kernel_7,
    kernel_8,  kernel_9,  kernel_10, kernel_11, kernel_12, kernel_13, kernel_14,
};

/* --- driver -------------------------------------------------------------------- */

struct sgemm_plan {
    const struct sgemm_problem *p;
    int64_t kc;       /* K block */
    int64_t nc_cap;   /* N block capacity (multiple of NR) */
    int64_t pieces;   /* work items per batch item */
    bool split_m;     /* pieces cut rows (else columns) */
    float *scratch;   /* per thread: A strip then B block */
    size_t per_thread; /* floats */
};

/* Cuts [0, units) into `pieces` near-equal ranges; returns range `i`. */
static void piece_range(int64_t units, int64_t pieces, int64_t i, int64_t *lo, int64_t *hi)
{
    *lo = units * i / pieces;
    *hi = units * (i + 1) / pieces;
}

/* One batch item's rows [m0, m1) × columns [n0, n1). */
static AVX512 void sgemm_block(const struct sgemm_plan *pl, int64_t bi, int64_t m0, int64_t m1,
                               int64_t n0, int64_t n1, float *ap, float *bp)
{
    const struct sgemm_problem *p = pl->p;
    const float *a = p->a + bi * p->stride_a;
    const float *b = p->b + bi * p->stride_b;
    float *c = p->c + bi * p->stride_c;
    const float *res = p->residual ? p->residual + bi * p->stride_c : NULL;
    int64_t nblocks = ceil_div(n1 - n0, pl->nc_cap);
    int64_t ncb = ceil_div(ceil_div(n1 - n0, nblocks), NR) * NR;
    for (int64_t jc = n0; jc < n1; jc += ncb) {
        int64_t nc = min64(ncb, n1 - jc);
        for (int64_t pc = 0; pc < p->k; pc += pl->kc) {
            int64_t kc = min64(pl->kc, p->k - pc);
            pack_b(p, b, jc, nc, pc, kc, bp);
            struct tile_out o = {.ldc = p->ldc, .ldr = p->ldc, .alpha = p->alpha,
                                 .accumulate = pc > 0, .final = pc + kc == p->k};
            for (int64_t ms = m0; ms < m1; ms += MR) {
                int mr = (int)min64(MR, m1 - ms);
                if (p->a_kind == SGEMM_A_IM2COL)
                    pack_a_im2col(a, &p->conv, ms, mr, pc, kc, ap);
                else
                    pack_a_rows(a, p->lda, ms, mr, pc, kc, ap);
                for (int64_t j = 0; j < nc; j += NR) {
                    o.c = c + ms * p->ldc + jc + j;
                    o.res = res ? res + ms * p->ldc + jc + j : NULL;
                    o.bias = p->bias ? p->bias + jc + j : NULL;
                    o.ncols = (int)min64(NR, nc - j);
                    kernels[mr](kc, ap, bp + (j / NR) * kc * NR, &o);
                }
            }
        }
    }
}

static void sgemm_items(void *ctx, size_t begin, size_t end, int thread)
{
    const struct sgemm_plan *pl = ctx;
    float *ap = pl->scratch + (size_t)thread * pl->per_thread;
    float *bp = ap + (size_t)pl->kc * A_LD;
    for (size_t item = begin; item < end; item++) {
        int64_t bi = (int64_t)item / pl->pieces, piece = (int64_t)item % pl->pieces;
        int64_t lo, hi;
        if (pl->split_m) {
            piece_range(ceil_div(pl->p->m, MR), pl->pieces, piece, &lo, &hi);
            sgemm_block(pl, bi, lo * MR, min64(hi * MR, pl->p->m), 0, pl->p->n, ap, bp);
        } else {
            piece_range(ceil_div(pl->p->n, NR), pl->pieces, piece, &lo, &hi);
            sgemm_block(pl, bi, 0, pl->p->m, lo * NR, min64(hi * NR, pl->p->n), ap, bp);
        }
    }
}

/* Chooses block sizes and the split of the work over `threads`. */
static void sgemm_plan_make(const struct sgemm_problem *p, int threads, struct sgemm_plan *pl)
{
    pl->p = p;
    pl->kc = ceil_div(p->k, ceil_div(p->k, KC_MAX));
    pl->nc_cap = min64(ceil_div(p->n, NR) * NR, NC_MAX);
    int64_t strips = ceil_div(p->m, MR), panels = ceil_div(p->n, NR);
    /* Duplicated packing: splitting M repacks B (N·K) per piece, N repacks A (M·K). */
    pl->split_m = p->m >= p->n;
    int64_t units = pl->split_m ? strips : panels;
    pl->pieces = 1;
    if (threads > 1 && p->batch % threads != 0 && p->batch < 4 * (int64_t)threads)
        pl->pieces = min64(threads, units);
}

enum status cpu_sgemm_avx512(struct threadpool *pool, const struct sgemm_problem *p,
                             struct errbuf *err)
{
    ASSERT(p->batch > 0 && p->m > 0 && p->n > 0 && p->k > 0);
    int threads = threadpool_size(pool);
    struct sgemm_plan pl;
    sgemm_plan_make(p, threads, &pl);
    /* A strip, then B block; 64-byte multiples keep every buffer aligned. */
    pl.per_thread = (size_t)(pl.kc * A_LD + pl.kc * pl.nc_cap);
    pl.scratch = aligned_alloc(64, pl.per_thread * sizeof(float) * (size_t)threads);
    if (!pl.scratch)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "sgemm: cannot allocate %zu bytes of scratch",
                           pl.per_thread * sizeof(float) * (size_t)threads);
    threadpool_parallel_for(pool, (size_t)(p->batch * pl.pieces), 1, sgemm_items, &pl);
    free(pl.scratch);
    return STATUS_OK;
}
