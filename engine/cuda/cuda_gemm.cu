/* engine/cuda/cuda_gemm.cu — linear and matmul through cuBLASLt.
 *
 * Row-major products are computed as their column-major transposes:
 *   linear  y{rows,out} = x·wᵀ + bias + residual  ⇔  Yᶜ{out,rows} = op(W)·Xᶜ with
 *           A = w (stored in×out column-major, transposed), B = x (in×rows), bias in
 *           the epilogue (CUBLASLT_EPILOGUE_BIAS: one value per output feature, i.e.
 *           per row of Yᶜ), residual as C with β = 1;
 *   matmul  y{B,M,N} = α·a·bm  ⇔  Yᶜ{N,M} = op(bm)·aᶜ, strided-batched;
 *   linear_stack  y[g] = x·w[g]ᵀ: linear's roles, strided-batched over g with x's
 *           batch stride 0.
 * f16/bf16 operands with f32 compute and scale; f32 with TF32 tensor cores when
 * allowed.  Descriptors and the heuristic's first algorithm (options.gemm_autotune: the
 * fastest of its first GEMM_CANDIDATES, timed on first use) are cached per (shape,
 * dtype, transposition, batch, epilogue, residual, operand alignments).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/cuda_internal.h"

#define GEMM_CACHE_MAX 4096 /* entries; a full cache describes the rest per call, untuned */
#define GEMM_HASH_SLOTS 8192 /* open addressing over the entries (a power of two) */

struct gemm_key {
    int64_t m, n, k, batch;
    int64_t stride_a, stride_b, stride_d;
    enum dtype dtype;
    bool trans_a, bias, residual;
    unsigned align; /* smallest alignment of the operands' addresses, bytes (≤ 256) */
};

#define GEMM_CANDIDATES 8 /* algorithms options.gemm_autotune times per shape */

struct gemm_entry {
    struct gemm_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    cublasLtMatmulAlgo_t cand[GEMM_CANDIDATES]; /* the heuristic's list, best first */
    int n_cand;
    bool tuned; /* algo is the fastest of cand, timed (or tuning is off) */
    size_t ws_bytes; /* the workspace the candidates were chosen for (may use) */
};

struct cuda_gemm_cache {
    struct gemm_entry e[GEMM_CACHE_MAX];
    int n;
    int slot[GEMM_HASH_SLOTS]; /* 1 + index into e, 0 = empty; linear probing */
};
static_assert(GEMM_HASH_SLOTS > GEMM_CACHE_MAX && (GEMM_HASH_SLOTS & (GEMM_HASH_SLOTS - 1)) == 0,
              "the hash table always has an empty slot");

static void entry_release(struct gemm_entry *e)
{
    if (e->op)
        (void)cublasLtMatmulDescDestroy(e->op);
    if (e->la)
        (void)cublasLtMatrixLayoutDestroy(e->la);
    if (e->lb)
        (void)cublasLtMatrixLayoutDestroy(e->lb);
    if (e->lc)
        (void)cublasLtMatrixLayoutDestroy(e->lc);
    memset(e, 0, sizeof *e);
}

void cuda_gemm_cache_destroy(struct cuda_gemm_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        entry_release(&c->e[i]);
    free(c);
}

static enum status lt_fail(cublasStatus_t s, const char *what, struct errbuf *err)
{
    enum status code = s == CUBLAS_STATUS_ALLOC_FAILED  ? STATUS_OUT_OF_MEMORY
                       : s == CUBLAS_STATUS_NOT_SUPPORTED ? STATUS_UNSUPPORTED
                                                          : STATUS_DEVICE;
    return status_fail(err, code, "cublasLt: %s: status %d", what, (int)s);
}

#define LT_TRY(call, what)                                                               \
    do {                                                                                 \
        cublasStatus_t lt_s_ = (call);                                                   \
        if (lt_s_ != CUBLAS_STATUS_SUCCESS)                                              \
            return lt_fail(lt_s_, what, err);                                            \
    } while (0)

static cudaDataType_t lt_type(enum dtype dt)
{
    return dt == DTYPE_F16 ? CUDA_R_16F : dt == DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static unsigned align_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    unsigned al = 256;
    while (al > 1 && (a & (al - 1)))
        al >>= 1;
    return al;
}

static enum status layout(cublasLtMatrixLayout_t *l, cudaDataType_t t, int64_t rows,
                          int64_t cols, int64_t ld, int64_t batch, int64_t stride,
                          struct errbuf *err)
{
    LT_TRY(cublasLtMatrixLayoutCreate(l, t, (uint64_t)rows, (uint64_t)cols, ld), "layout");
    if (batch > 1) {
        int32_t bc = (int32_t)batch;
        LT_TRY(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc,
                                                sizeof bc),
               "batch count");
        LT_TRY(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                &stride, sizeof stride),
               "batch stride");
    }
    return STATUS_OK;
}

static enum status describe(struct cuda_backend *cb, const struct gemm_key *k,
                            struct gemm_entry *e, struct errbuf *err)
{
    const cudaDataType_t t = lt_type(k->dtype);
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    if (k->dtype == DTYPE_F32 && cb->allow_tf32)
        compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    LT_TRY(cublasLtMatmulDescCreate(&e->op, compute, CUDA_R_32F), "matmul descriptor");
    cublasOperation_t ta = k->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
    LT_TRY(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta),
           "transa");
    LT_TRY(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb),
           "transb");
    if (k->bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        LT_TRY(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                              sizeof epi),
               "epilogue");
        cudaDataType_t bt = t;
        LT_TRY(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt,
                                              sizeof bt),
               "bias type");
    }
    /* A: k×m stored when transposed, else m×k; B: k×n; C/D: m×n. */
    if (k->trans_a)
        TRY(layout(&e->la, t, k->k, k->m, k->k, k->batch, k->stride_a, err));
    else
        TRY(layout(&e->la, t, k->m, k->k, k->m, k->batch, k->stride_a, err));
    TRY(layout(&e->lb, t, k->k, k->n, k->k, k->batch, k->stride_b, err));
    TRY(layout(&e->lc, t, k->m, k->n, k->m, k->batch, k->stride_d, err));

    cublasLtMatmulPreference_t pref;
    LT_TRY(cublasLtMatmulPreferenceCreate(&pref), "preference");
    uint64_t ws = cb->workspace_bytes;
    e->ws_bytes = cb->workspace_bytes;
    uint32_t al = k->align;
    cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    const cublasLtMatmulPreferenceAttributes_t aligns[] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (size_t i = 0; s == CUBLAS_STATUS_SUCCESS && i < sizeof aligns / sizeof aligns[0]; i++)
        s = cublasLtMatmulPreferenceSetAttribute(pref, aligns[i], &al, sizeof al);
    cublasLtMatmulHeuristicResult_t res[GEMM_CANDIDATES];
    memset(res, 0, sizeof res);
    int got = 0;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic(cb->lt, e->op, e->la, e->lb, e->lc, e->lc, pref,
                                           cb->gemm_autotune ? GEMM_CANDIDATES : 1, res, &got);
    (void)cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS)
        return lt_fail(s, "algorithm heuristic", err);
    if (got < 1)
        return status_fail(err, STATUS_UNSUPPORTED,
                           "cublasLt: no algorithm for %lldx%lldx%lld (batch %lld)",
                           (long long)k->m, (long long)k->n, (long long)k->k,
                           (long long)k->batch);
    e->algo = res[0].algo;
    for (int i = 0; i < got && i < GEMM_CANDIDATES; i++)
        if (res[i].state == CUBLAS_STATUS_SUCCESS)
            e->cand[e->n_cand++] = res[i].algo;
    e->tuned = !cb->gemm_autotune || e->n_cand < 2;
    return STATUS_OK;
}

static bool key_eq(const struct gemm_key *a, const struct gemm_key *b)
{
    return a->m == b->m && a->n == b->n && a->k == b->k && a->batch == b->batch &&
           a->stride_a == b->stride_a && a->stride_b == b->stride_b &&
           a->stride_d == b->stride_d && a->dtype == b->dtype && a->trans_a == b->trans_a &&
           a->bias == b->bias && a->residual == b->residual && a->align == b->align;
}

static uint64_t key_hash(const struct gemm_key *k)
{
    const uint64_t f[] = {(uint64_t)k->m,        (uint64_t)k->n,        (uint64_t)k->k,
                          (uint64_t)k->batch,    (uint64_t)k->stride_a, (uint64_t)k->stride_b,
                          (uint64_t)k->stride_d, (uint64_t)k->dtype,
                          (uint64_t)k->trans_a | (uint64_t)k->bias << 1 |
                              (uint64_t)k->residual << 2 | (uint64_t)k->align << 3};
    return cuda_key_hash(f, sizeof f / sizeof f[0]);
}

/* The hash slot holding k's entry, or the empty slot where it belongs (the table is
 * never full: GEMM_HASH_SLOTS > GEMM_CACHE_MAX). */
static int *find_slot(struct cuda_gemm_cache *c, const struct gemm_key *k)
{
    unsigned i = (unsigned)key_hash(k) & (GEMM_HASH_SLOTS - 1);
    while (c->slot[i] && !key_eq(&c->e[c->slot[i] - 1].key, k))
        i = (i + 1) & (GEMM_HASH_SLOTS - 1);
    return &c->slot[i];
}

/* k's cached entry, else a new one described now: in the cache while it has room,
 * else in *tmp (the caller releases it; it is not tuned) [stream owner]. */
static enum status lookup(struct cuda_backend *cb, const struct gemm_key *k,
                          struct gemm_entry *tmp, struct gemm_entry **out, struct errbuf *err)
{
    if (!cb->gemm_cache) {
        cb->gemm_cache = (struct cuda_gemm_cache *)calloc(1, sizeof *cb->gemm_cache);
        if (!cb->gemm_cache)
            return status_fail(err, STATUS_OUT_OF_MEMORY, "gemm cache: out of memory");
    }
    struct cuda_gemm_cache *c = cb->gemm_cache;
    int *slot = find_slot(c, k);
    if (*slot) {
        *out = &c->e[*slot - 1];
        return STATUS_OK;
    }
    struct gemm_entry *e = c->n < GEMM_CACHE_MAX ? &c->e[c->n] : tmp;
    memset(e, 0, sizeof *e);
    e->key = *k;
    enum status s = describe(cb, k, e, err);
    if (s != STATUS_OK) {
        entry_release(e);
        return s;
    }
    if (e != tmp)
        *slot = ++c->n;
    else
        e->tuned = true; /* timed afresh at every call otherwise: the heuristic's first */
    *out = e;
    return STATUS_OK;
}

/* options.gemm_autotune: times each candidate of e (GEMM_TUNE_RUNS runs after one warm
 * one, CUDA events) on the real operands into a scratch D with β = 0 (D may alias the
 * residual C, which a timing run must not overwrite) and keeps the fastest in e->algo.
 * Only outside a capture, and with the other lanes idle (cuda_other_lanes_idle); a
 * candidate that fails is passed over; any failure of the
 * tuning itself leaves the heuristic's choice. */
#define GEMM_TUNE_RUNS 3
static void tune(struct cuda_backend *cb, struct gemm_entry *e, const void *a, const void *bmat,
                 float alpha, size_t d_bytes)
{
    e->tuned = true;
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(cb->stream, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone) {
        (void)cudaGetLastError();
        e->tuned = false; /* try again on an eager call */
        return;
    }
    cuda_other_lanes_idle(cb);
    void *scratch = NULL;
    cudaEvent_t t0 = NULL, t1 = NULL;
    if (cudaMallocAsync(&scratch, d_bytes, cb->stream) != cudaSuccess ||
        cudaEventCreate(&t0) != cudaSuccess || cudaEventCreate(&t1) != cudaSuccess) {
        (void)cudaGetLastError();
        goto done;
    }
    {
        const float beta = 0.0f;
        float best_ms = -1.0f;
        for (int i = 0; i < e->n_cand; i++) {
            float ms = 0.0f;
            bool ok = true;
            for (int r = 0; r <= GEMM_TUNE_RUNS && ok; r++) {
                if (r == 1)
                    ok = cudaEventRecord(t0, cb->stream) == cudaSuccess;
                ok = ok && cublasLtMatmul(cb->lt, e->op, &alpha, a, e->la, bmat, e->lb, &beta,
                                          scratch, e->lc, scratch, e->lc, &e->cand[i],
                                          cb->workspace, cb->workspace_bytes,
                                          cb->stream) == CUBLAS_STATUS_SUCCESS;
            }
            ok = ok && cudaEventRecord(t1, cb->stream) == cudaSuccess &&
                 cudaEventSynchronize(t1) == cudaSuccess &&
                 cudaEventElapsedTime(&ms, t0, t1) == cudaSuccess;
            (void)cudaGetLastError();
            if (ok && (best_ms < 0 || ms < best_ms)) {
                best_ms = ms;
                e->algo = e->cand[i];
            }
        }
    }
done:
    if (scratch)
        (void)cudaFreeAsync(scratch, cb->stream);
    if (t0)
        (void)cudaEventDestroy(t0);
    if (t1)
        (void)cudaEventDestroy(t1);
    (void)cudaGetLastError();
}

/* D = alpha·op(A)·B (+ bias) (+ C with β = 1); see the file comment for the roles. */
static enum status gemm(struct cuda_backend *cb, struct gemm_key *k, const void *a,
                        const void *bmat, const void *c, const void *bias, void *d, float alpha,
                        struct errbuf *err)
{
    TRY(cuda_usable(cb, err));
    unsigned al = align_of(a);
    unsigned al_b = align_of(bmat), al_d = align_of(d), al_c = c ? align_of(c) : 256;
    al = al < al_b ? al : al_b;
    al = al < al_d ? al : al_d;
    al = al < al_c ? al : al_c;
    k->align = al;
    struct gemm_entry tmp, *e = NULL;
    memset(&tmp, 0, sizeof tmp);
    TRY(lookup(cb, k, &tmp, &e, err));
    /* chosen on a lane with a larger workspace: this lane's grows to it */
    enum status s = cuda_workspace_reserve(cb, e->ws_bytes, err);
    if (bias) {
        cublasStatus_t ls = cublasLtMatmulDescSetAttribute(
            e->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
        if (ls != CUBLAS_STATUS_SUCCESS)
            s = lt_fail(ls, "bias pointer", err);
    }
    if (s == STATUS_OK && !e->tuned)
        tune(cb, e, a, bmat, alpha,
             (size_t)(k->m * k->n * (k->batch > 1 ? k->batch : 1)) * dtype_size(k->dtype));
    if (s == STATUS_OK) {
        const float beta = c ? 1.0f : 0.0f;
        cublasStatus_t ls = cublasLtMatmul(cb->lt, e->op, &alpha, a, e->la, bmat, e->lb, &beta,
                                           c ? c : d, e->lc, d, e->lc, &e->algo, cb->workspace,
                                           cb->workspace_bytes, cb->stream);
        if (ls != CUBLAS_STATUS_SUCCESS)
            s = lt_fail(ls, "matmul", err);
    }
    if (e == &tmp)
        entry_release(&tmp);
    return s == STATUS_OK ? cuda_check_launch(cb, "gemm", err) : s;
}

enum status cuda_linear(struct backend *b, const struct tensor *x, const struct tensor *w,
                        const struct tensor *bias, const struct tensor *residual,
                        struct tensor *y, struct errbuf *err)
{
    struct gemm_key k;
    memset(&k, 0, sizeof k);
    k.m = w->shape[0];       /* out */
    k.n = tensor_rows(x);    /* rows */
    k.k = w->shape[1];       /* in */
    k.batch = 1;
    k.dtype = y->dtype;
    k.trans_a = true;
    k.bias = bias != NULL;
    k.residual = residual != NULL;
    return gemm(cuda_of(b), &k, w->data, x->data, residual ? residual->data : NULL,
                bias ? bias->data : NULL, y->data, 1.0f, err);
}

/* y{G,rows,out}[g] = x{rows,in} · w{G,out,in}[g]ᵀ: one strided-batched GEMM, x's batch
 * stride 0 (every g reads the same x). */
enum status cuda_linear_stack(struct backend *b, const struct tensor *x, const struct tensor *w,
                              struct tensor *y, struct errbuf *err)
{
    if (!cuda_of(b)->linear_stack)
        return status_fail(err, STATUS_UNSUPPORTED, "cuda linear_stack: off (options)");
    struct gemm_key k;
    memset(&k, 0, sizeof k);
    k.batch = w->shape[0];   /* G */
    k.m = w->shape[1];       /* out */
    k.n = tensor_rows(x);    /* rows */
    k.k = w->shape[2];       /* in */
    k.stride_a = k.m * k.k;  /* w[g] */
    k.stride_b = 0;          /* x, shared */
    k.stride_d = k.m * k.n;  /* y[g] */
    k.dtype = y->dtype;
    k.trans_a = true;
    return gemm(cuda_of(b), &k, w->data, x->data, NULL, NULL, y->data, 1.0f, err);
}

enum status cuda_matmul(struct backend *b, const struct tensor *a, const struct tensor *bm,
                        bool trans_b, float alpha, struct tensor *y, struct errbuf *err)
{
    struct gemm_key k;
    memset(&k, 0, sizeof k);
    k.batch = a->shape[0];
    k.m = y->shape[2];       /* N */
    k.n = a->shape[1];       /* M */
    k.k = a->shape[2];       /* K */
    k.stride_a = k.m * k.k;  /* bm: K·N per batch */
    k.stride_b = k.n * k.k;  /* a: M·K */
    k.stride_d = k.m * k.n;  /* y: M·N */
    k.dtype = y->dtype;
    k.trans_a = trans_b;
    return gemm(cuda_of(b), &k, bm->data, a->data, NULL, NULL, y->data, alpha, err);
}
