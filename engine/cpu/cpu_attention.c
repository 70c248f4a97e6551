/* engine/cpu/cpu_attention.c — scaled dot-product attention, tiled with online
 * softmax (flash-attention style); see cpu_attention.h for the two paths.
 *
 * Per work item (batch b, head h, queries i0..i0+nq) and per key block j0..j0+kb:
 *   s = scale · q·kᵀ            {nq, kb}   (−inf where causal hides a key)
 *   m' = max(m, rowmax s);  c = e^(m − m');  p = e^(s − m')
 *   l = c·l + rowsum p;  o = c·o + p·v     {nq, D}
 * and finally y = o / l.  The AVX-512 path keeps everything transposed (queries in
 * the 64 lanes of four vectors) and works in base 2: scale·log2(e) is folded into
 * the packed queries, so p = 2^(s − m').
 */
#include "engine/cpu/cpu_attention.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_simd.h"

#if CPU_SIMD_X86
#include <immintrin.h>
#endif

#define ATT_QBLOCK 64  /* queries per tile (= the AVX-512 path's lanes) */
#define ATT_GROUPS 8   /* AVX-512: up to this many query tiles per work item share
                          each key/value block while it is in cache */
#define ATT_KBLOCK 128 /* keys per tile */
#define ATT_BLAS_KBLOCK 512 /* keys per tile of the BLAS path: fewer, larger sgemm calls
                               (a tile's scores, 64 × 512 floats, stay in L2) */
#define ATT_ROWS 6     /* register block (keys or head dims) of the AVX-512 kernels */
#define ATT_LOG2E 1.44269504088896341f

struct att_job;
typedef void (*att_item_fn)(const struct att_job *job, size_t unit, float *scratch);

struct att_job {
    const float *q, *k, *v;
    float *y;
    int64_t nq, nk, heads, d, c; /* c = heads·d: the row stride of q, k, v and y */
    int64_t item_q;              /* queries per work item: ATT_QBLOCK · groups */
    int64_t q_blocks;            /* work items per (batch, head) */
    float scale;
    bool causal;
    bool flush_denormals; /* set FTZ/DAZ around the items */
    att_item_fn item;
    float *scratch;    /* n_threads × per_thread floats, 64-byte aligned slices */
    size_t per_thread; /* floats, a multiple of 16 */
};

/* One work item: a block of queries of one (batch, head). */
struct att_item {
    const float *q; /* {nq, D} rows of stride c, at the block's first query */
    const float *k; /* {Nk, D} rows of stride c, at key 0 */
    const float *v;
    float *y;       /* like q */
    int64_t i0;     /* index of the first query */
    int64_t nk;     /* keys to visit (causal: up to the block's last query) */
    int nq;         /* queries in the item, ≤ item_q */
};

static struct att_item att_item_of(const struct att_job *j, size_t unit)
{
    int64_t bh = (int64_t)unit / j->q_blocks, qb = (int64_t)unit % j->q_blocks;
    int64_t b = bh / j->heads, h = bh % j->heads;
    struct att_item it;
    it.i0 = qb * j->item_q;
    int64_t left = j->nq - it.i0;
    it.nq = (int)(left < j->item_q ? left : j->item_q);
    size_t head = (size_t)(h * j->d);
    size_t qrow = (size_t)((b * j->nq + it.i0) * j->c), krow = (size_t)(b * j->nk * j->c);
    it.q = j->q + qrow + head;
    it.y = j->y + qrow + head;
    it.k = j->k + krow + head;
    it.v = j->v + krow + head;
    /* causal implies Nq == Nk (validated): keys past the last query are hidden */
    it.nk = j->causal ? it.i0 + it.nq : j->nk;
    return it;
}

static int att_min(int64_t a, int64_t b)
{
    return (int)(a < b ? a : b);
}

static void att_run(void *ctx, size_t begin, size_t end, int thread)
{
    const struct att_job *j = ctx;
    float *scratch = j->scratch + (size_t)thread * j->per_thread;
#if CPU_SIMD_X86
    /* flush-to-zero and denormals-are-zero while our kernels run on this thread */
    const unsigned int csr = _mm_getcsr();
    if (j->flush_denormals)
        _mm_setcsr(csr | 0x8040u);
#endif
    for (size_t u = begin; u < end; u++)
        j->item(j, u, scratch);
#if CPU_SIMD_X86
    if (j->flush_denormals)
        _mm_setcsr(csr);
#endif
}

/* --- BLAS path ----------------------------------------------------------------
 * Scratch: s{QBLOCK, KBLOCK}, o{QBLOCK, D}, m{QBLOCK}, l{QBLOCK}. */

static size_t att_blas_scratch(int64_t d)
{
    return (size_t)(ATT_QBLOCK * ATT_BLAS_KBLOCK + ATT_QBLOCK * d + 2 * ATT_QBLOCK);
}

/* Hides key j0+c from query i0+r when j0 + c > i0 + r; diff = j0 − i0. */
static void att_blas_mask(float *s, int nq, int kb, int64_t diff)
{
    for (int r = 0; r < nq; r++) {
        int64_t first = r - diff + 1; /* first hidden column */
        for (int64_t c = first < 0 ? 0 : first; c < kb; c++)
            s[r * ATT_BLAS_KBLOCK + c] = -INFINITY;
    }
}

#define ATT_PARTS 16 /* partial maxima and sums a row: vectorisable lanes */

/* max(mx, row[0 … kb)): ATT_PARTS partial maxima, then theirs (the same value in any
 * order). */
static inline __attribute__((always_inline)) float att_row_max(const float *row, int kb,
                                                               float mx)
{
    float part[ATT_PARTS];
    for (int i = 0; i < ATT_PARTS; i++)
        part[i] = mx;
    int c = 0;
    for (; c + ATT_PARTS <= kb; c += ATT_PARTS)
        for (int i = 0; i < ATT_PARTS; i++)
            part[i] = row[c + i] > part[i] ? row[c + i] : part[i];
    for (; c < kb; c++)
        mx = row[c] > mx ? row[c] : mx;
    for (int i = 0; i < ATT_PARTS; i++)
        mx = part[i] > mx ? part[i] : mx;
    return mx;
}

/* row[c] = e^(row[c] − mx) over [0, kb) and their sum, in ATT_PARTS partial sums (a
 * fixed order for a row whatever its batch). */
static inline __attribute__((always_inline)) float att_row_exp_sum(float *row, int kb,
                                                                   float mx)
{
    float part[ATT_PARTS];
    for (int i = 0; i < ATT_PARTS; i++)
        part[i] = 0.0f;
    int c = 0;
    for (; c + ATT_PARTS <= kb; c += ATT_PARTS)
        for (int i = 0; i < ATT_PARTS; i++) {
            const float e = cpu_simd_expf(row[c + i] - mx);
            row[c + i] = e;
            part[i] += e;
        }
    float sum = 0.0f;
    for (; c < kb; c++) {
        row[c] = cpu_simd_expf(row[c] - mx);
        sum += row[c];
    }
    for (int i = 0; i < ATT_PARTS; i++)
        sum += part[i];
    return sum;
}

/* Online-softmax update of the rows of s{nq, kb} (replaced by p) and of m, l, o. */
static void att_blas_softmax(float *s, int nq, int kb, float *m, float *l, float *o, int64_t d)
{
    for (int r = 0; r < nq; r++) {
        float *row = s + (size_t)r * ATT_BLAS_KBLOCK;
        const float mx = att_row_max(row, kb, m[r]);
        const float sum = att_row_exp_sum(row, kb, mx);
        float corr = cpu_simd_expf(m[r] - mx); /* 0 on the first block (m = −inf) */
        l[r] = l[r] * corr + sum;
        m[r] = mx;
        if (corr != 1.0f)
            for (int64_t e = 0; e < d; e++)
                o[r * d + e] *= corr;
    }
}

static void att_blas_item(const struct att_job *j, size_t unit, float *scratch)
{
    struct att_item it = att_item_of(j, unit);
    const int d = (int)j->d, ld = (int)j->c;
    float *s = scratch, *o = s + ATT_QBLOCK * ATT_BLAS_KBLOCK, *m = o + ATT_QBLOCK * j->d;
    float *l = m + ATT_QBLOCK;
    memset(o, 0, sizeof *o * (size_t)(it.nq * d));
    for (int r = 0; r < it.nq; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    for (int64_t j0 = 0; j0 < it.nk; j0 += ATT_BLAS_KBLOCK) {
        int kb = att_min(ATT_BLAS_KBLOCK, it.nk - j0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, it.nq, kb, d, j->scale, it.q, ld,
                    it.k + j0 * j->c, ld, 0.0f, s, ATT_BLAS_KBLOCK);
        if (j->causal && j0 + kb - 1 > it.i0)
            att_blas_mask(s, it.nq, kb, j0 - it.i0);
        att_blas_softmax(s, it.nq, kb, m, l, o, d);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, it.nq, d, kb, 1.0f, s,
                    ATT_BLAS_KBLOCK, it.v + j0 * j->c, ld, 1.0f, o, d);
    }
    for (int r = 0; r < it.nq; r++) {
        float inv = 1.0f / l[r];
        for (int e = 0; e < d; e++)
            it.y[(size_t)r * j->c + e] = o[r * d + e] * inv;
    }
}

/* --- AVX-512 path -------------------------------------------------------------
 * Queries live in the lanes.  A tile of 64 queries keeps qt{D, 64} (scaled by
 * scale·log2 e), ot{D, 64}, m, l and bmax (block maximum) {64}; nv = ⌈nq/16⌉ vectors
 * of each 64-float row are live and padded lanes hold zero queries.  A work item
 * runs up to ATT_GROUPS tiles over each key block: the block's k and v rows are
 * packed once into kp, vp{KBLOCK, D}, and each tile turns them into st{KBLOCK, 64}
 * (scores, then probabilities).  FTZ/DAZ are on while items run. */

#if CPU_SIMD_X86

#define ATT_LANES ATT_QBLOCK

/* st{rows, 64} = k{rows, D}(stride ldk) · qt{D, 64}: rows keys × nv query vectors;
 * then hides key row r from lanes t < first + r (causal; first ≤ −rows: none) and
 * folds the rows into the running block maximum bmax{64}. */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
att_qk_tile(const float *k, size_t ldk, const float *qt, int64_t d, float *st, float *bmax,
            int64_t first, const int rows, const int nv)
{
    __m512 acc[ATT_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++)
            acc[r][v] = _mm512_setzero_ps();
    for (int64_t e = 0; e < d; e++) {
        __m512 qv[4];
        for (int v = 0; v < nv; v++)
            qv[v] = _mm512_load_ps(qt + e * ATT_LANES + 16 * v);
        for (int r = 0; r < rows; r++) {
            __m512 kb = _mm512_set1_ps(k[(size_t)r * ldk + (size_t)e]);
            for (int v = 0; v < nv; v++)
                acc[r][v] = _mm512_fmadd_ps(kb, qv[v], acc[r][v]);
        }
    }
    if (first + rows > 1) {
        const __m512 hidden = _mm512_set1_ps(-INFINITY);
        for (int r = 0; r < rows; r++)
            for (int v = 0; v < nv; v++) {
                int64_t count = first + r - 16 * v; /* hidden lanes in this vector */
                if (count <= 0)
                    continue;
                __mmask16 hide = count >= 16 ? (__mmask16)0xFFFF
                                             : (__mmask16)((1u << count) - 1u);
                acc[r][v] = _mm512_mask_mov_ps(acc[r][v], hide, hidden);
            }
    }
    for (int v = 0; v < nv; v++) {
        __m512 mx = _mm512_load_ps(bmax + 16 * v);
        for (int r = 0; r < rows; r++) {
            _mm512_store_ps(st + r * ATT_LANES + 16 * v, acc[r][v]);
            mx = _mm512_max_ps(mx, acc[r][v]);
        }
        _mm512_store_ps(bmax + 16 * v, mx);
    }
}

/* ot{rows, 64} += v{kb, rows}ᵀ(stride ldv) · pt{kb, 64}: rows head dims × nv vectors. */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void
att_pv_tile(const float *v, size_t ldv, const float *pt, int kb, float *ot, const int rows,
            const int nv)
{
    __m512 acc[ATT_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int w = 0; w < nv; w++)
            acc[r][w] = _mm512_load_ps(ot + r * ATT_LANES + 16 * w);
    for (int j = 0; j < kb; j++) {
        __m512 pv[4];
        for (int w = 0; w < nv; w++)
            pv[w] = _mm512_load_ps(pt + j * ATT_LANES + 16 * w);
        const float *vr = v + (size_t)j * ldv;
        for (int r = 0; r < rows; r++) {
            __m512 vb = _mm512_set1_ps(vr[r]);
            for (int w = 0; w < nv; w++)
                acc[r][w] = _mm512_fmadd_ps(vb, pv[w], acc[r][w]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int w = 0; w < nv; w++)
            _mm512_store_ps(ot + r * ATT_LANES + 16 * w, acc[r][w]);
}

/* Instantiates a tile kernel for rows 1..ATT_ROWS × nv 1..4 (constant trip counts
 * let the compiler keep the accumulators in registers). */
#define ATT_CASES_V(X, V) X(1, V) X(2, V) X(3, V) X(4, V) X(5, V) X(6, V)
#define ATT_CASES(X) ATT_CASES_V(X, 1) ATT_CASES_V(X, 2) ATT_CASES_V(X, 3) ATT_CASES_V(X, 4)

CPU_TARGET_AVX512 static void att_qk_rows(const float *k, size_t ldk, const float *qt, int64_t d,
                                          float *st, float *bmax, int64_t first, int rows,
                                          int nv)
{
#define ATT_QK_CASE(R, V)                                                                 \
    case (R) * 8 + (V): att_qk_tile(k, ldk, qt, d, st, bmax, first, R, V); break;
    switch (rows * 8 + nv) {
        ATT_CASES(ATT_QK_CASE)
    default: break;
    }
#undef ATT_QK_CASE
}

CPU_TARGET_AVX512 static void att_pv_rows(const float *v, size_t ldv, const float *pt, int kb,
                                          float *ot, int rows, int nv)
{
#define ATT_PV_CASE(R, V)                                                                 \
    case (R) * 8 + (V): att_pv_tile(v, ldv, pt, kb, ot, R, V); break;
    switch (rows * 8 + nv) {
        ATT_CASES(ATT_PV_CASE)
    default: break;
    }
#undef ATT_PV_CASE
}

/* 2^x for x ≤ 0: x = n + r (n integer, |r| ≤ ½), 2^r by a degree-6 polynomial
 * (relative error 6e-9 before rounding), vscalefps for 2^n.  −inf gives 0 and NaN
 * stays NaN; results below 2^−126 are flushed to 0 by the FTZ mode att_run sets
 * (denormal probabilities would slow the p·v FMAs down a hundredfold). */
CPU_TARGET_AVX512 static inline __m512 att_exp2_avx512(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-150.0f), x); /* NaN in x survives (2nd operand) */
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.5332508058997507e-04f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3394700851895845e-03f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.618491002565108e-03f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.550342285075941e-02f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022647364517877e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.931471992068655e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Online-softmax update (base 2) of st{kb, 64} → probabilities, and of m, l, ot;
 * bmax{64} holds the block's row maxima. */
CPU_TARGET_AVX512 static void att_softmax_avx512(float *st, int kb, int nv, const float *bmax,
                                                 float *m, float *l, float *ot, int64_t d)
{
    for (int w = 0; w < nv; w++) {
        const __m512 m_old = _mm512_load_ps(m + 16 * w);
        const __m512 mx = _mm512_max_ps(m_old, _mm512_load_ps(bmax + 16 * w));
        __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
        int j = 0;
        for (; j + 2 <= kb; j += 2) {
            float *p = st + j * ATT_LANES + 16 * w;
            __m512 e0 = att_exp2_avx512(_mm512_sub_ps(_mm512_load_ps(p), mx));
            __m512 e1 = att_exp2_avx512(_mm512_sub_ps(_mm512_load_ps(p + ATT_LANES), mx));
            _mm512_store_ps(p, e0);
            _mm512_store_ps(p + ATT_LANES, e1);
            sum0 = _mm512_add_ps(sum0, e0);
            sum1 = _mm512_add_ps(sum1, e1);
        }
        if (j < kb) {
            float *p = st + j * ATT_LANES + 16 * w;
            __m512 e0 = att_exp2_avx512(_mm512_sub_ps(_mm512_load_ps(p), mx));
            _mm512_store_ps(p, e0);
            sum0 = _mm512_add_ps(sum0, e0);
        }
        /* m_old = −inf on the first block: corr = 0 and l, ot are still zero */
        __m512 corr = att_exp2_avx512(_mm512_sub_ps(m_old, mx));
        __m512 sum = _mm512_add_ps(sum0, sum1);
        _mm512_store_ps(l + 16 * w, _mm512_fmadd_ps(_mm512_load_ps(l + 16 * w), corr, sum));
        _mm512_store_ps(m + 16 * w, mx);
        for (int64_t e = 0; e < d; e++) {
            float *o = ot + e * ATT_LANES + 16 * w;
            _mm512_store_ps(o, _mm512_mul_ps(_mm512_load_ps(o), corr));
        }
    }
}

/* In-register transpose of a 16×16 block: r[i] lane j ↔ r[j] lane i. */
CPU_TARGET_AVX512 static inline __attribute__((always_inline)) void att_transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

/* Lanes of the columns e0..e0+15 that exist (e < d). */
static inline __mmask16 att_cols(int64_t d, int64_t e0)
{
    return d - e0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (d - e0)) - 1u);
}

/* qt{D, 64}: the block's queries q{nq, D}(stride ldq) transposed and multiplied by
 * mul, in 16×16 blocks; lanes nq..16·⌈nq/16⌉ are zero. */
CPU_TARGET_AVX512 static void att_pack_q(const float *q, size_t ldq, int nq, int64_t d, float mul,
                                         float *qt)
{
    const __m512 vmul = _mm512_set1_ps(mul);
    for (int v = 0; v < (nq + 15) / 16; v++)
        for (int64_t e0 = 0; e0 < d; e0 += 16) {
            __mmask16 cols = att_cols(d, e0);
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                int t = 16 * v + i;
                r[i] = t < nq ? _mm512_mul_ps(_mm512_maskz_loadu_ps(cols, q + (size_t)t * ldq +
                                                                              (size_t)e0),
                                              vmul)
                              : _mm512_setzero_ps();
            }
            att_transpose16(r);
            for (int i = 0; i < 16 && e0 + i < d; i++)
                _mm512_store_ps(qt + (e0 + i) * ATT_LANES + 16 * v, r[i]);
        }
}

/* y{nq, D}(stride ldy) = ot{D, 64}ᵀ / l, in 16×16 blocks. */
CPU_TARGET_AVX512 static void att_store_y(const float *ot, const float *l, int nq, int64_t d,
                                          float *y, size_t ldy)
{
    for (int v = 0; v < (nq + 15) / 16; v++)
        for (int64_t e0 = 0; e0 < d; e0 += 16) {
            __mmask16 cols = att_cols(d, e0);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = e0 + i < d ? _mm512_load_ps(ot + (e0 + i) * ATT_LANES + 16 * v)
                                  : _mm512_setzero_ps();
            att_transpose16(r);
            for (int i = 0; i < 16 && 16 * v + i < nq; i++) {
                int t = 16 * v + i;
                __m512 inv = _mm512_set1_ps(1.0f / l[t]);
                _mm512_mask_storeu_ps(y + (size_t)t * ldy + (size_t)e0, cols,
                                      _mm512_mul_ps(r[i], inv));
            }
        }
}

/* One query tile's state in scratch: qt{D,64}, ot{D,64}, m, l, bmax {64}. */
struct att_tile {
    float *qt, *ot, *m, *l, *bmax;
    int64_t i0;  /* first query */
    int64_t nk;  /* keys it sees */
    int nq, nv;  /* queries, live vectors */
};

static size_t att_tile_floats(int64_t d)
{
    return (size_t)(2 * d * ATT_LANES + 3 * ATT_LANES);
}

static void att_tile_init(struct att_tile *t, float *mem, int64_t d)
{
    t->qt = mem;
    t->ot = t->qt + d * ATT_LANES;
    t->m = t->ot + d * ATT_LANES;
    t->l = t->m + ATT_LANES;
    t->bmax = t->l + ATT_LANES;
    memset(t->ot, 0, sizeof *t->ot * (size_t)(d * ATT_LANES));
    for (int i = 0; i < ATT_LANES; i++) {
        t->m[i] = -INFINITY;
        t->l[i] = 0.0f;
    }
}

/* Keys j0..j0+kb of one tile: scores, online softmax, p·v; kblk, vblk{kb, D} are
 * packed rows (stride D). */
CPU_TARGET_AVX512 static void att_tile_step(const struct att_job *j, struct att_tile *t,
                                            const float *kblk, const float *vblk, int64_t j0,
                                            int kb, float *st)
{
    const int64_t d = j->d;
    const size_t ld = (size_t)d;
    for (int i = 0; i < ATT_LANES; i++)
        t->bmax[i] = -INFINITY;
    for (int r = 0; r < kb; r += ATT_ROWS) {
        /* causal: key j0+r+x is hidden from lanes below j0 + r + x − i0 */
        int64_t first = j->causal ? j0 + r - t->i0 : -ATT_ROWS;
        att_qk_rows(kblk + (size_t)r * ld, ld, t->qt, d, st + r * ATT_LANES, t->bmax, first,
                    att_min(ATT_ROWS, kb - r), t->nv);
    }
    att_softmax_avx512(st, kb, t->nv, t->bmax, t->m, t->l, t->ot, d);
    for (int64_t e = 0; e < d; e += ATT_ROWS)
        att_pv_rows(vblk + e, ld, st, kb, t->ot + e * ATT_LANES, att_min(ATT_ROWS, d - e),
                    t->nv);
}

/* Scratch: st{KBLOCK, 64}, `groups` tiles, kp{KBLOCK, D}, vp{KBLOCK, D}. */
static size_t att_avx512_scratch(int64_t d, int64_t groups)
{
    return (size_t)(ATT_KBLOCK * ATT_LANES + 2 * ATT_KBLOCK * d) +
           (size_t)groups * att_tile_floats(d);
}

/* dst{rows, D} (packed) = src{rows, D}(stride ld). */
CPU_TARGET_AVX512 static void att_pack_rows(const float *src, size_t ld, int rows, int64_t d,
                                            float *dst)
{
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * ld;
        float *t = dst + (size_t)r * (size_t)d;
        int64_t e = 0;
        for (; e + 16 <= d; e += 16)
            _mm512_storeu_ps(t + e, _mm512_loadu_ps(s + e));
        if (e < d) {
            __mmask16 cols = att_cols(d, e);
            _mm512_mask_storeu_ps(t + e, cols, _mm512_maskz_loadu_ps(cols, s + e));
        }
    }
}

CPU_TARGET_AVX512 static void att_avx512_item(const struct att_job *j, size_t unit,
                                              float *scratch)
{
    struct att_item it = att_item_of(j, unit);
    const int64_t d = j->d;
    const size_t ld = (size_t)j->c;
    float *st = scratch;
    const int n_tiles = (it.nq + ATT_LANES - 1) / ATT_LANES; /* ≤ item_q / 64 */
    float *kp = st + ATT_KBLOCK * ATT_LANES + (size_t)(j->item_q / ATT_LANES) * att_tile_floats(d);
    float *vp = kp + ATT_KBLOCK * d;
    struct att_tile tiles[ATT_GROUPS];
    for (int g = 0; g < n_tiles; g++) {
        struct att_tile *t = &tiles[g];
        att_tile_init(t, st + ATT_KBLOCK * ATT_LANES + g * att_tile_floats(d), d);
        t->i0 = it.i0 + g * ATT_LANES;
        t->nq = att_min(ATT_LANES, it.nq - g * ATT_LANES);
        t->nv = (t->nq + 15) / 16;
        t->nk = j->causal ? t->i0 + t->nq : it.nk;
        att_pack_q(it.q + (size_t)(g * ATT_LANES) * ld, ld, t->nq, d, j->scale * ATT_LOG2E,
                   t->qt);
    }
    /* each key/value block is visited by every tile while it is in cache */
    for (int64_t j0 = 0; j0 < it.nk; j0 += ATT_KBLOCK) {
        int kb = att_min(ATT_KBLOCK, it.nk - j0);
        att_pack_rows(it.k + (size_t)j0 * ld, ld, kb, d, kp);
        att_pack_rows(it.v + (size_t)j0 * ld, ld, kb, d, vp);
        for (int g = 0; g < n_tiles; g++) {
            int64_t left = tiles[g].nk - j0;
            if (left > 0)
                att_tile_step(j, &tiles[g], kp, vp, j0, att_min(kb, left), st);
        }
    }
    for (int g = 0; g < n_tiles; g++)
        att_store_y(tiles[g].ot, tiles[g].l, tiles[g].nq, d, it.y + (size_t)(g * ATT_LANES) * ld,
                    ld);
}


/* --- AVX2 path ----------------------------------------------------------------
 * The AVX-512 path's design on 8-float vectors, for the x86 CPUs without AVX-512: a
 * work item is one tile of ATT2_LANES (32) queries of one (batch, head) in the lanes
 * of 4 vectors — qt{D, 32} (scaled by scale·log2 e), ot{D, 32}, m, l, bmax {32} —
 * and each block of ATT_KBLOCK keys turns into st{KBLOCK, 32} (scores, then
 * probabilities); q·kᵀ and p·v are register blocks of ATT2_ROWS (3) keys or head dims
 * × 4 vectors (12 accumulators of the 16 registers), reading k and v in place.  Every
 * query's arithmetic is its own lane's, so its result does not depend on the queries
 * beside it (a batch's rows are bit-identical to their runs alone).  FTZ/DAZ are on
 * while items run. */

#define ATT2_LANES 32
#define ATT2_ROWS 3

/* st{rows, 32} = k{rows, D}(stride ldk) · qt{D, 32}: rows keys × nv query vectors;
 * then hides key row r from lanes t < first + r (causal; first ≤ −rows: none) and
 * folds the rows into the running block maximum bmax{32}. */
CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
att2_qk_tile(const float *k, size_t ldk, const float *qt, int64_t d, float *st, float *bmax,
             int64_t first, const int rows, const int nv)
{
    __m256 acc[ATT2_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++)
            acc[r][v] = _mm256_setzero_ps();
    for (int64_t e = 0; e < d; e++) {
        __m256 qv[4];
        for (int v = 0; v < nv; v++)
            qv[v] = _mm256_load_ps(qt + e * ATT2_LANES + 8 * v);
        for (int r = 0; r < rows; r++) {
            const __m256 kb = _mm256_set1_ps(k[(size_t)r * ldk + (size_t)e]);
            for (int v = 0; v < nv; v++)
                acc[r][v] = _mm256_fmadd_ps(kb, qv[v], acc[r][v]);
        }
    }
    if (first + rows > 1) {
        const __m256 hidden = _mm256_set1_ps(-INFINITY);
        const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
        for (int r = 0; r < rows; r++)
            for (int v = 0; v < nv; v++) {
                const int64_t count = first + r - 8 * v; /* hidden lanes in this vector */
                if (count <= 0)
                    continue;
                const __m256 hide =
                    _mm256_cmp_ps(lane, _mm256_set1_ps((float)(count < 8 ? count : 8)),
                                  _CMP_LT_OQ);
                acc[r][v] = _mm256_blendv_ps(acc[r][v], hidden, hide);
            }
    }
    for (int v = 0; v < nv; v++) {
        __m256 mx = _mm256_load_ps(bmax + 8 * v);
        for (int r = 0; r < rows; r++) {
            _mm256_store_ps(st + r * ATT2_LANES + 8 * v, acc[r][v]);
            mx = _mm256_max_ps(mx, acc[r][v]);
        }
        _mm256_store_ps(bmax + 8 * v, mx);
    }
}

/* ot{rows, 32} += v{kb, rows}ᵀ(stride ldv) · pt{kb, 32}: rows head dims × nv vectors. */
CPU_TARGET_AVX2 static inline __attribute__((always_inline)) void
att2_pv_tile(const float *v, size_t ldv, const float *pt, int kb, float *ot, const int rows,
             const int nv)
{
    __m256 acc[ATT2_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int w = 0; w < nv; w++)
            acc[r][w] = _mm256_load_ps(ot + r * ATT2_LANES + 8 * w);
    for (int j = 0; j < kb; j++) {
        __m256 pv[4];
        for (int w = 0; w < nv; w++)
            pv[w] = _mm256_load_ps(pt + j * ATT2_LANES + 8 * w);
        const float *vr = v + (size_t)j * ldv;
        for (int r = 0; r < rows; r++) {
            const __m256 vb = _mm256_set1_ps(vr[r]);
            for (int w = 0; w < nv; w++)
                acc[r][w] = _mm256_fmadd_ps(vb, pv[w], acc[r][w]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int w = 0; w < nv; w++)
            _mm256_store_ps(ot + r * ATT2_LANES + 8 * w, acc[r][w]);
}

/* Instantiates a tile kernel for rows 1..ATT2_ROWS × nv 1..4. */
#define ATT2_CASES_V(X, V) X(1, V) X(2, V) X(3, V)
#define ATT2_CASES(X) ATT2_CASES_V(X, 1) ATT2_CASES_V(X, 2) ATT2_CASES_V(X, 3) ATT2_CASES_V(X, 4)

CPU_TARGET_AVX2 static void att2_qk_rows(const float *k, size_t ldk, const float *qt, int64_t d,
                                         float *st, float *bmax, int64_t first, int rows, int nv)
{
#define ATT2_QK_CASE(R, V)                                                                \
    case (R) * 8 + (V): att2_qk_tile(k, ldk, qt, d, st, bmax, first, R, V); break;
    switch (rows * 8 + nv) {
        ATT2_CASES(ATT2_QK_CASE)
    default: break;
    }
#undef ATT2_QK_CASE
}

CPU_TARGET_AVX2 static void att2_pv_rows(const float *v, size_t ldv, const float *pt, int kb,
                                         float *ot, int rows, int nv)
{
#define ATT2_PV_CASE(R, V)                                                                \
    case (R) * 8 + (V): att2_pv_tile(v, ldv, pt, kb, ot, R, V); break;
    switch (rows * 8 + nv) {
        ATT2_CASES(ATT2_PV_CASE)
    default: break;
    }
#undef ATT2_PV_CASE
}

/* 2^x for x ≤ 0: x = n + r (n integer, |r| ≤ ½), 2^r by the AVX-512 path's degree-6
 * polynomial, 2^n built in the exponent bits.  x ≤ −127 (−inf: a hidden key) gives
 * exactly 0 (n = −127 is the all-zero bit pattern); NaN stays NaN. */
CPU_TARGET_AVX2 static inline __m256 att2_exp2(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(-127.0f), x); /* NaN in x survives (2nd operand) */
    const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(1.5332508058997507e-04f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3394700851895845e-03f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(9.618491002565108e-03f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.550342285075941e-02f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(2.4022647364517877e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(6.931471992068655e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

/* Online-softmax update (base 2) of st{kb, 32} → probabilities, and of m, l, ot;
 * bmax{32} holds the block's row maxima. */
CPU_TARGET_AVX2 static void att2_softmax(float *st, int kb, int nv, const float *bmax, float *m,
                                         float *l, float *ot, int64_t d)
{
    for (int w = 0; w < nv; w++) {
        const __m256 m_old = _mm256_load_ps(m + 8 * w);
        const __m256 mx = _mm256_max_ps(m_old, _mm256_load_ps(bmax + 8 * w));
        __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
        int j = 0;
        for (; j + 2 <= kb; j += 2) {
            float *p = st + j * ATT2_LANES + 8 * w;
            const __m256 e0 = att2_exp2(_mm256_sub_ps(_mm256_load_ps(p), mx));
            const __m256 e1 = att2_exp2(_mm256_sub_ps(_mm256_load_ps(p + ATT2_LANES), mx));
            _mm256_store_ps(p, e0);
            _mm256_store_ps(p + ATT2_LANES, e1);
            sum0 = _mm256_add_ps(sum0, e0);
            sum1 = _mm256_add_ps(sum1, e1);
        }
        if (j < kb) {
            float *p = st + j * ATT2_LANES + 8 * w;
            const __m256 e0 = att2_exp2(_mm256_sub_ps(_mm256_load_ps(p), mx));
            _mm256_store_ps(p, e0);
            sum0 = _mm256_add_ps(sum0, e0);
        }
        /* m_old = −inf on the first block: corr = 0 and l, ot are still zero */
        const __m256 corr = att2_exp2(_mm256_sub_ps(m_old, mx));
        const __m256 sum = _mm256_add_ps(sum0, sum1);
        _mm256_store_ps(l + 8 * w, _mm256_fmadd_ps(_mm256_load_ps(l + 8 * w), corr, sum));
        _mm256_store_ps(m + 8 * w, mx);
        for (int64_t e = 0; e < d; e++) {
            float *o = ot + e * ATT2_LANES + 8 * w;
            _mm256_store_ps(o, _mm256_mul_ps(_mm256_load_ps(o), corr));
        }
    }
}

/* Scratch: st{KBLOCK, 32}, qt and ot {D, 32}, m, l, bmax {32}. */
static size_t att_avx2_scratch(int64_t d)
{
    return (size_t)(ATT_KBLOCK * ATT2_LANES + 2 * d * ATT2_LANES + 3 * ATT2_LANES);
}

CPU_TARGET_AVX2 static void att_avx2_item(const struct att_job *j, size_t unit, float *scratch)
{
    const struct att_item it = att_item_of(j, unit);
    const int64_t d = j->d;
    const size_t ld = (size_t)j->c;
    float *st = scratch, *qt = st + ATT_KBLOCK * ATT2_LANES, *ot = qt + d * ATT2_LANES;
    float *m = ot + d * ATT2_LANES, *l = m + ATT2_LANES, *bmax = l + ATT2_LANES;
    const float mul = j->scale * ATT_LOG2E;
    for (int t = 0; t < ATT2_LANES; t++) { /* qt{D, 32}: the queries transposed, lanes ≥ nq 0 */
        for (int64_t e = 0; e < d; e++)
            qt[e * ATT2_LANES + t] = t < it.nq ? it.q[(size_t)t * ld + (size_t)e] * mul : 0.0f;
        m[t] = -INFINITY;
        l[t] = 0.0f;
    }
    memset(ot, 0, sizeof *ot * (size_t)(d * ATT2_LANES));
    const int nv = (it.nq + 7) / 8;
    for (int64_t j0 = 0; j0 < it.nk; j0 += ATT_KBLOCK) {
        const int kb = att_min(ATT_KBLOCK, it.nk - j0);
        for (int t = 0; t < ATT2_LANES; t++)
            bmax[t] = -INFINITY;
        for (int r = 0; r < kb; r += ATT2_ROWS) {
            /* causal: key j0+r+x is hidden from lanes below j0 + r + x − i0 */
            const int64_t first = j->causal ? j0 + r - it.i0 : -ATT2_ROWS;
            att2_qk_rows(it.k + (size_t)(j0 + r) * ld, ld, qt, d, st + r * ATT2_LANES, bmax,
                         first, att_min(ATT2_ROWS, kb - r), nv);
        }
        att2_softmax(st, kb, nv, bmax, m, l, ot, d);
        for (int64_t e = 0; e < d; e += ATT2_ROWS)
            att2_pv_rows(it.v + (size_t)j0 * ld + (size_t)e, ld, st, kb, ot + e * ATT2_LANES,
                         att_min(ATT2_ROWS, d - e), nv);
    }
    for (int t = 0; t < it.nq; t++) { /* y{nq, D} = otᵀ / l */
        const float inv = 1.0f / l[t];
        float *yr = it.y + (size_t)t * ld;
        for (int64_t e = 0; e < d; e++)
            yr[e] = ot[e * ATT2_LANES + t] * inv;
    }
}

#endif /* CPU_SIMD_X86 */

/* --- entry points ------------------------------------------------------------- */

#if CPU_SIMD_X86
/* Query tiles per work item: as many as ATT_GROUPS while every thread still gets
 * about four items.  (Each query's arithmetic is the same for any grouping.) */
static int64_t att_groups(int64_t heads_total, int64_t nq, int n_threads)
{
    int64_t tiles = (nq + ATT_QBLOCK - 1) / ATT_QBLOCK;
    for (int64_t g = ATT_GROUPS; g > 1; g /= 2)
        if (heads_total * ((tiles + g - 1) / g) >= 4 * (int64_t)n_threads)
            return g;
    return 1;
}
#endif

enum status cpu_attention_with(struct backend *b, const struct tensor *q, const struct tensor *k,
                               const struct tensor *v, const struct attention_params *p,
                               enum cpu_attention_path path, struct tensor *y,
                               struct errbuf *err)
{
    if (path == CPU_ATTENTION_AUTO)
        path = cpu_simd_avx512() ? CPU_ATTENTION_AVX512
               : cpu_simd_avx2() ? CPU_ATTENTION_AVX2
                                 : CPU_ATTENTION_BLAS;
    if (path == CPU_ATTENTION_AVX512 && !cpu_simd_avx512())
        return status_fail(err, STATUS_UNSUPPORTED, "attention: this CPU has no AVX-512F/FMA");
    if (path == CPU_ATTENTION_AVX2 && !cpu_simd_avx2())
        return status_fail(err, STATUS_UNSUPPORTED, "attention: this CPU has no AVX2/FMA");
    struct att_job job = {
        .q = cpu_f32(q), .k = cpu_f32(k), .v = cpu_f32(v), .y = cpu_f32(y),
        .nq = q->shape[1], .nk = k->shape[1], .heads = p->heads, .c = q->shape[2],
        .scale = p->scale, .causal = p->causal,
    };
    struct cpu_backend *cb = cpu_of(b);
    job.d = job.c / job.heads;
    job.item_q = ATT_QBLOCK;
    job.item = att_blas_item;
    job.per_thread = att_blas_scratch(job.d);
#if CPU_SIMD_X86
    if (path == CPU_ATTENTION_AVX512) {
        job.item = att_avx512_item;
        job.flush_denormals = true;
        int64_t groups = att_groups(q->shape[0] * job.heads, job.nq, cb->n_threads);
        job.item_q = ATT_QBLOCK * groups;
        job.per_thread = att_avx512_scratch(job.d, groups);
    }
    if (path == CPU_ATTENTION_AVX2) {
        job.item = att_avx2_item;
        job.flush_denormals = true;
        job.item_q = ATT2_LANES;
        job.per_thread = att_avx2_scratch(job.d);
    }
#endif
    job.q_blocks = (job.nq + job.item_q - 1) / job.item_q;
    job.per_thread = (job.per_thread + 15) & ~(size_t)15;
    size_t bytes = (size_t)cb->n_threads * job.per_thread * sizeof(float);
    job.scratch = aligned_alloc(64, bytes);
    if (!job.scratch)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "attention: cannot allocate %zu bytes",
                           bytes);
    size_t units = (size_t)(q->shape[0] * job.heads * job.q_blocks);
    threadpool_parallel_for(cb->pool, units, 1, att_run, &job);
    free(job.scratch);
    return STATUS_OK;
}

enum status cpu_attention(struct backend *b, const struct tensor *q, const struct tensor *k,
                          const struct tensor *v, const struct attention_params *p,
                          struct tensor *y, struct errbuf *err)
{
    return cpu_attention_with(b, q, k, v, p, CPU_ATTENTION_AUTO, y, err);
}
