/* engine/cpu/cpu_sgemm_blas.c — the portable GEMM path: CBLAS (single-threaded,
 * see cpu_blas_single_thread) on blocks of the problem spread over the backend's
 * pool.  Implicit im2col rows are materialised one row block at a time into
 * per-thread scratch; bias and residual are added to each block right after its
 * sgemm, while it is still in cache. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_sgemm.h"

enum {
    IM2COL_ROWS_MAX = 256,             /* rows per materialised im2col block */
    IM2COL_FLOATS_MAX = 1 << 20,       /* ... and at most 4 MiB of them */
};

struct blas_plan {
    const struct sgemm_problem *p;
    int64_t pieces;   /* work items per batch item */
    bool split_m;     /* pieces cut rows (else columns) */
    int64_t rows_max; /* im2col rows per block */
    float *scratch;   /* per thread: rows_max × k floats (im2col only) */
};

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* cols{rows, k}: rows m0.. of the im2col matrix of x (see cpu_sgemm.h). */
static void im2col_rows(const float *x, const struct sgemm_conv_geom *g, int64_t m0,
                        int64_t rows, float *cols)
{
    size_t seg = (size_t)g->cin * sizeof(float);
    for (int64_t r = 0; r < rows; r++) {
        int64_t m = m0 + r, ow = m % g->wo, t = m / g->wo, oh = t % g->ho, img = t / g->ho;
        float *dst = cols + r * g->kh * g->kw * g->cin;
        for (int64_t kh = 0; kh < g->kh; kh++) {
            int64_t ih = oh * g->stride - g->pad + kh;
            for (int64_t kw = 0; kw < g->kw; kw++, dst += g->cin) {
                int64_t iw = ow * g->stride - g->pad + kw;
                if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
                    memset(dst, 0, seg);
                else
                    memcpy(dst, x + ((img * g->h + ih) * g->w + iw) * g->cin, seg);
            }
        }
    }
}

/* c{rows, n0..n1} += bias + residual (the sgemm already applied alpha). */
static void add_epilogue(const struct sgemm_problem *p, float *c, const float *res,
                         int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    if (!p->bias && !res)
        return;
    for (int64_t m = m0; m < m1; m++) {
        float *row = c + m * p->ldc;
        if (p->bias)
            for (int64_t n = n0; n < n1; n++)
                row[n] += p->bias[n];
        if (res)
            for (int64_t n = n0; n < n1; n++)
                row[n] += res[m * p->ldc + n];
    }
}

/* Rows [m0, m1) × columns [n0, n1) of batch item bi. */
static void blas_block(const struct blas_plan *pl, int64_t bi, int64_t m0, int64_t m1,
                       int64_t n0, int64_t n1, float *scratch)
{
    const struct sgemm_problem *p = pl->p;
    const float *a = p->a + bi * p->stride_a;
    const float *b = p->b + bi * p->stride_b + (p->b_trans ? n0 * p->ldb : n0);
    float *c = p->c + bi * p->stride_c;
    const float *res = p->residual ? p->residual + bi * p->stride_c : NULL;
    int64_t step = p->a_kind == SGEMM_A_IM2COL ? pl->rows_max : m1 - m0;
    for (int64_t ms = m0; ms < m1; ms += step) {
        int64_t rows = min64(step, m1 - ms);
        const float *ablk = a + ms * p->lda;
        int64_t lda = p->lda;
        if (p->a_kind == SGEMM_A_IM2COL) {
            im2col_rows(a, &p->conv, ms, rows, scratch);
            ablk = scratch;
            lda = p->k;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, p->b_trans ? CblasTrans : CblasNoTrans,
                    (int)rows, (int)(n1 - n0), (int)p->k, p->alpha, ablk, (int)lda, b,
                    (int)p->ldb, 0.0f, c + ms * p->ldc + n0, (int)p->ldc);
        add_epilogue(p, c, res, ms, ms + rows, n0, n1);
    }
}

static void blas_items(void *ctx, size_t begin, size_t end, int thread)
{
    const struct blas_plan *pl = ctx;
    const struct sgemm_problem *p = pl->p;
    float *scratch = pl->scratch ? pl->scratch + (size_t)thread * (size_t)(pl->rows_max * p->k)
                                 : NULL;
    for (size_t item = begin; item < end; item++) {
        int64_t bi = (int64_t)item / pl->pieces, piece = (int64_t)item % pl->pieces;
        int64_t total = pl->split_m ? p->m : p->n;
        int64_t lo = total * piece / pl->pieces, hi = total * (piece + 1) / pl->pieces;
        if (pl->split_m)
            blas_block(pl, bi, lo, hi, 0, p->n, scratch);
        else
            blas_block(pl, bi, 0, p->m, lo, hi, scratch);
    }
}

enum status cpu_sgemm_portable(struct threadpool *pool, const struct sgemm_problem *p,
                               struct errbuf *err)
{
    ASSERT(p->batch > 0 && p->m > 0 && p->n > 0 && p->k > 0);
    int threads = threadpool_size(pool);
    struct blas_plan pl = {.p = p, .pieces = 1, .split_m = p->m >= p->n};
    if (threads > 1 && p->batch % threads != 0 && p->batch < 4 * (int64_t)threads)
        pl.pieces = min64(threads, pl.split_m ? p->m : p->n);
    if (p->a_kind == SGEMM_A_IM2COL) {
        pl.rows_max = min64(IM2COL_ROWS_MAX, IM2COL_FLOATS_MAX / p->k);
        if (pl.rows_max < 1)
            pl.rows_max = 1;
        size_t bytes = (size_t)(pl.rows_max * p->k) * sizeof(float) * (size_t)threads;
        pl.scratch = malloc(bytes);
        if (!pl.scratch)
            return status_fail(err, STATUS_OUT_OF_MEMORY,
                               "sgemm: cannot allocate %zu bytes of im2col scratch", bytes);
    }
    threadpool_parallel_for(pool, (size_t)(p->batch * pl.pieces), 1, blas_items, &pl);
    free(pl.scratch);
    return STATUS_OK;
}
