/* engine/cuda/cuda_conv.cu — conv2d through cuDNN.
 *
 * NHWC activations, KRSC filters ({Cout,KH,KW,Cin}: the engine's layout), f32
 * accumulation (compute type float for every storage dtype), tensor-core math (TF32
 * for f32 when allowed).  Per shape (N,H,W,Cin,Cout,KH,KW,stride,padding,dtype) the
 * descriptors and the algorithm are chosen once and cached: cuDNN's heuristic ranking
 * by default, or (options.cudnn_find) cudnnFindConvolutionForwardAlgorithmEx, which
 * times the candidates on the real buffers; the shared workspace grows to the chosen
 * algorithm's need.  Bias and residual follow in one
 * epilogue kernel (cuda_bias_residual) — or, with options.conv_fuse, inside cuDNN's
 * call: cudnnConvolutionBiasActivationForward, y = conv(x) + residual + bias with the
 * identity activation (which cuDNN runs only on IMPLICIT_PRECOMP_GEMM; a shape it
 * refuses, and a convolution without bias, take the first way), one kernel and one
 * rounding instead of two.
 *
 * Two shapes skip cuDNN and run as cuBLASLt GEMMs (cuda_linear: bias and residual in
 * its epilogue, no extra pass):
 *   - 1×1, stride 1, no padding: y{N·H·W, Cout} = x{N·H·W, Cin} · w{Cout, Cin}ᵀ as is;
 *   - f16/bf16 with Cin % 8 == 0 over at most options.conv_gemm_rows output positions
 *     (U-Net maps of 8×8 to 64×64 at small batches, where cuDNN's kernels launch too few
 *     blocks to fill the GPU): im2col into the backend's scratch,
 *     col{N·Ho·Wo, KH·KW·Cin} (column order (ky, kx, c) = the filter's {Cout,KH,KW,Cin}
 *     rows), then y = col · w{Cout, KH·KW·Cin}ᵀ. */
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/cuda_internal.h"

#define CONV_CACHE_MAX 2048  /* entries; a full cache describes the rest per call */
#define CONV_HASH_SLOTS 4096 /* open addressing over the entries (a power of two) */
#define CONV_FIND_WORKSPACE ((size_t)512 << 20) /* most a search may try */

struct conv_key {
    int64_t n, h, w, cin, cout, kh, kw;
    int stride, padding;
    enum dtype dtype;
};

struct conv_entry {
    struct conv_key key;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws_bytes;
    /* options.conv_fuse's path for this shape: 0 not tried yet, 1 runs, -1 refused */
    int fuse;
    cudnnTensorDescriptor_t bd;      /* the bias {1, Cout, 1, 1} */
    cudnnActivationDescriptor_t ad;  /* identity */
    size_t fuse_ws_bytes;
};

struct cuda_conv_cache {
    struct conv_entry e[CONV_CACHE_MAX];
    int n;
    int slot[CONV_HASH_SLOTS]; /* 1 + index into e, 0 = empty; linear probing */
};
static_assert(CONV_HASH_SLOTS > CONV_CACHE_MAX && (CONV_HASH_SLOTS & (CONV_HASH_SLOTS - 1)) == 0,
              "the hash table always has an empty slot");

static void entry_release(struct conv_entry *e)
{
    if (e->xd)
        (void)cudnnDestroyTensorDescriptor(e->xd);
    if (e->yd)
        (void)cudnnDestroyTensorDescriptor(e->yd);
    if (e->wd)
        (void)cudnnDestroyFilterDescriptor(e->wd);
    if (e->cd)
        (void)cudnnDestroyConvolutionDescriptor(e->cd);
    if (e->bd)
        (void)cudnnDestroyTensorDescriptor(e->bd);
    if (e->ad)
        (void)cudnnDestroyActivationDescriptor(e->ad);
    memset(e, 0, sizeof *e);
}

void cuda_conv_cache_destroy(struct cuda_conv_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        entry_release(&c->e[i]);
    free(c);
}

static cudnnDataType_t cudnn_type(enum dtype dt)
{
    return dt == DTYPE_F16 ? CUDNN_DATA_HALF : dt == DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

/* cuDNN 9's statuses come in categories (NOT_SUPPORTED 3000 and its sub-codes 3001…). */
static int dnn_category(cudnnStatus_t s)
{
    return CUDNN_STATUS_CATEGORY((int)s);
}

static enum status dnn_fail(cudnnStatus_t s, const char *what, struct errbuf *err)
{
    enum status code = s == CUDNN_STATUS_ALLOC_FAILED ? STATUS_OUT_OF_MEMORY
                       : dnn_category(s) == CUDNN_STATUS_NOT_SUPPORTED ? STATUS_UNSUPPORTED
                                                                       : STATUS_DEVICE;
    return status_fail(err, code, "cudnn: %s: %s", what, cudnnGetErrorString(s));
}

#define DNN_TRY(call, what)                                                              \
    do {                                                                                 \
        cudnnStatus_t dnn_s_ = (call);                                                   \
        if (dnn_s_ != CUDNN_STATUS_SUCCESS)                                              \
            return dnn_fail(dnn_s_, what, err);                                          \
    } while (0)

static enum status describe(struct cuda_backend *cb, const struct conv_key *k,
                            struct conv_entry *e, struct errbuf *err)
{
    const cudnnDataType_t t = cudnn_type(k->dtype);
    const int64_t ho = (k->h + 2 * k->padding - k->kh) / k->stride + 1;
    const int64_t wo = (k->w + 2 * k->padding - k->kw) / k->stride + 1;
    DNN_TRY(cudnnCreateTensorDescriptor(&e->xd), "tensor descriptor");
    DNN_TRY(cudnnCreateTensorDescriptor(&e->yd), "tensor descriptor");
    DNN_TRY(cudnnCreateFilterDescriptor(&e->wd), "filter descriptor");
    DNN_TRY(cudnnCreateConvolutionDescriptor(&e->cd), "convolution descriptor");
    DNN_TRY(cudnnSetTensor4dDescriptor(e->xd, CUDNN_TENSOR_NHWC, t, (int)k->n, (int)k->cin,
                                       (int)k->h, (int)k->w),
            "input descriptor");
    DNN_TRY(cudnnSetTensor4dDescriptor(e->yd, CUDNN_TENSOR_NHWC, t, (int)k->n, (int)k->cout,
                                       (int)ho, (int)wo),
            "output descriptor");
    DNN_TRY(cudnnSetFilter4dDescriptor(e->wd, t, CUDNN_TENSOR_NHWC, (int)k->cout, (int)k->cin,
                                       (int)k->kh, (int)k->kw),
            "filter descriptor");
    DNN_TRY(cudnnSetConvolution2dDescriptor(e->cd, k->padding, k->padding, k->stride, k->stride,
                                            1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            "convolution descriptor");
    cudnnMathType_t math = k->dtype != DTYPE_F32 ? CUDNN_TENSOR_OP_MATH
                           : cb->allow_tf32      ? CUDNN_DEFAULT_MATH /* TF32 allowed */
                                                 : CUDNN_FMA_MATH;
    DNN_TRY(cudnnSetConvolutionMathType(e->cd, math), "math type");
    return STATUS_OK;
}

/* Picks the algorithm: cuDNN's heuristic ranking (instant), or with cb->cudnn_find the
 * timed search on the real buffers (y is overwritten; the op writes it next).  The
 * first candidate that works within CONV_FIND_WORKSPACE wins. */
static enum status find_algo(struct cuda_backend *cb, struct conv_entry *e, const void *x,
                             const void *w, void *y, struct errbuf *err)
{
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    size_t ws_bytes = CONV_FIND_WORKSPACE;
    if (!cb->cudnn_find) {
        cudnnStatus_t s = cudnnGetConvolutionForwardAlgorithm_v7(
            cb->cudnn, e->xd, e->wd, e->cd, e->yd, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf);
        if (s != CUDNN_STATUS_SUCCESS)
            return dnn_fail(s, "convolution algorithm heuristic", err);
    } else {
        void *ws = NULL;
        while (cudaMallocAsync(&ws, ws_bytes, cb->stream) != cudaSuccess) {
            (void)cudaGetLastError();
            ws = NULL;
            ws_bytes /= 4;
            if (ws_bytes < ((size_t)1 << 20)) {
                ws_bytes = 0;
                break;
            }
        }
        TRY(cuda_check(cb, cudaStreamSynchronize(cb->stream), "conv algorithm search", err));
        cuda_other_lanes_idle(cb);
        cudnnStatus_t s = cudnnFindConvolutionForwardAlgorithmEx(
            cb->cudnn, e->xd, x, e->wd, w, e->cd, e->yd, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
            &got, perf, ws, ws_bytes);
        if (ws)
            (void)cudaFreeAsync(ws, cb->stream);
        if (s != CUDNN_STATUS_SUCCESS)
            return dnn_fail(s, "find convolution algorithm", err);
    }
    for (int i = 0; i < got; i++) {
        size_t need = 0;
        if (perf[i].status != CUDNN_STATUS_SUCCESS ||
            cudnnGetConvolutionForwardWorkspaceSize(cb->cudnn, e->xd, e->wd, e->cd, e->yd,
                                                    perf[i].algo,
                                                    &need) != CUDNN_STATUS_SUCCESS ||
            need > ws_bytes)
            continue;
        e->algo = perf[i].algo;
        e->ws_bytes = need;
        return STATUS_OK;
    }
    return status_fail(err, STATUS_UNSUPPORTED, "cudnn: no convolution algorithm for this shape");
}

static bool key_eq(const struct conv_key *a, const struct conv_key *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->cin == b->cin &&
           a->cout == b->cout && a->kh == b->kh && a->kw == b->kw && a->stride == b->stride &&
           a->padding == b->padding && a->dtype == b->dtype;
}

/* The hash slot holding k's entry, or the empty slot where it belongs. */
static int *find_slot(struct cuda_conv_cache *c, const struct conv_key *k)
{
    const uint64_t f[] = {(uint64_t)k->n,  (uint64_t)k->h,    (uint64_t)k->w,
                          (uint64_t)k->cin, (uint64_t)k->cout, (uint64_t)k->kh,
                          (uint64_t)k->kw, (uint64_t)k->stride, (uint64_t)k->padding,
                          (uint64_t)k->dtype};
    unsigned i = (unsigned)cuda_key_hash(f, sizeof f / sizeof f[0]) & (CONV_HASH_SLOTS - 1);
    while (c->slot[i] && !key_eq(&c->e[c->slot[i] - 1].key, k))
        i = (i + 1) & (CONV_HASH_SLOTS - 1);
    return &c->slot[i];
}

/* The cached entry for k, made (and its algorithm found) on first use.  When the cache
 * is full the entry lives in *tmp and the caller releases it. */
static enum status lookup(struct cuda_backend *cb, const struct conv_key *k, const void *x,
                          const void *w, void *y, struct conv_entry *tmp,
                          struct conv_entry **out, struct errbuf *err)
{
    if (!cb->conv_cache) {
        cb->conv_cache = (struct cuda_conv_cache *)calloc(1, sizeof *cb->conv_cache);
        if (!cb->conv_cache)
            return status_fail(err, STATUS_OUT_OF_MEMORY, "conv cache: out of memory");
    }
    struct cuda_conv_cache *c = cb->conv_cache;
    int *slot = find_slot(c, k);
    if (*slot) {
        *out = &c->e[*slot - 1];
        return STATUS_OK;
    }
    struct conv_entry *e = c->n < CONV_CACHE_MAX ? &c->e[c->n] : tmp;
    memset(e, 0, sizeof *e);
    e->key = *k;
    enum status s = describe(cb, k, e, err);
    if (s == STATUS_OK)
        s = find_algo(cb, e, x, w, y, err);
    if (s != STATUS_OK) {
        entry_release(e);
        return s;
    }
    if (e != tmp)
        *slot = ++c->n;
    *out = e;
    return STATUS_OK;
}

/* --- convolutions as GEMMs ------------------------------------------------------- */

/* A 2-D view {rows, cols} of t's data. */
static struct tensor as_matrix(const struct tensor *t, int64_t rows, int64_t cols)
{
    const int64_t shape[2] = {rows, cols};
    struct tensor m = tensor_desc(t->dtype, 2, shape);
    m.data = t->data;
    m.backend = t->backend;
    return m;
}

/* col{M, KH·KW·C} from x{N,H,W,C}, 8 channels (16 bytes) per thread-step; zeros where
 * the window leaves the image.  Index i = ((m·KH + ky)·KW + kx)·C/8 + c8. */
struct im2col_dims {
    int h, w, c8, kh, kw, stride, pad, ho, wo;
};

__global__ static void im2col8_kernel(const uint4 *x, uint4 *col, unsigned total,
                                      struct im2col_dims d)
{
    cuda_pdl_enter();
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += gridDim.x * blockDim.x) {
        unsigned r = i / d.c8;
        const int c8 = (int)(i - r * d.c8);
        const int kx = (int)(r % d.kw);
        r /= d.kw;
        const int ky = (int)(r % d.kh);
        const unsigned m = r / d.kh;
        const int ox = (int)(m % d.wo);
        const unsigned t = m / d.wo;
        const int oy = (int)(t % d.ho);
        const unsigned n = t / d.ho;
        const int iy = oy * d.stride - d.pad + ky, ix = ox * d.stride - d.pad + kx;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (iy >= 0 && iy < d.h && ix >= 0 && ix < d.w)
            v = x[(((size_t)n * d.h + iy) * d.w + ix) * d.c8 + c8];
        col[i] = v;
    }
}

static bool conv_is_pointwise(const struct tensor *w, const struct conv2d_params *p)
{
    return w->shape[1] == 1 && w->shape[2] == 1 && p->stride == 1 && p->padding == 0;
}

/* Whether conv(x, w) runs as im2col + GEMM (see the file comment). */
static bool conv_wants_im2col(const struct cuda_backend *cb, const struct tensor *x,
                              const struct tensor *y)
{
    const int64_t rows = y->shape[0] * y->shape[1] * y->shape[2];
    return y->dtype != DTYPE_F32 && x->shape[3] % 8 == 0 && cuda_aligned16(x->data) &&
           rows <= cb->conv_gemm_rows;
}

/* y = conv(x, w) + bias + residual through cuda_linear, im2col first unless 1×1. */
static enum status conv_as_gemm(struct cuda_backend *cb, const struct tensor *x,
                                const struct tensor *w, const struct tensor *bias,
                                const struct tensor *residual, const struct conv2d_params *p,
                                struct tensor *y, struct errbuf *err)
{
    const int64_t rows = y->shape[0] * y->shape[1] * y->shape[2], cout = y->shape[3];
    const int64_t k = w->shape[1] * w->shape[2] * w->shape[3];
    struct tensor xm = as_matrix(x, rows, k);
    if (!conv_is_pointwise(w, p)) {
        const size_t bytes = (size_t)rows * (size_t)k * dtype_size(x->dtype);
        if (bytes / 16 > 2147483647u)
            return status_fail(err, STATUS_UNSUPPORTED, "cuda conv2d: im2col of %zu bytes",
                               bytes);
        TRY(cuda_scratch_reserve(cb, bytes, err));
        struct im2col_dims d = {(int)x->shape[1], (int)x->shape[2], (int)(x->shape[3] / 8),
                                (int)w->shape[1], (int)w->shape[2], p->stride, p->padding,
                                (int)y->shape[1], (int)y->shape[2]};
        const unsigned total = (unsigned)(bytes / 16);
        cuda_launch_kernel(cuda_launch_on(cb), im2col8_kernel, cuda_blocks(total, 256), 256, 0, 
            (const uint4 *)x->data, (uint4 *)cb->scratch, total, d);
        TRY(cuda_check_launch(cb, "conv2d im2col", err));
        xm.data = cb->scratch;
    }
    struct tensor wm = as_matrix(w, cout, k), ym = as_matrix(y, rows, cout);
    struct tensor rm;
    if (residual)
        rm = as_matrix(residual, rows, cout);
    return cuda_linear(&cb->base, &xm, &wm, bias, residual ? &rm : NULL, &ym, err);
}

/* The fused path's descriptors and workspace for e (e->fuse 1), or e->fuse −1 when
 * cuDNN refuses the shape or cannot make them (the unfused path then; never an error). */
static void fuse_prepare(struct cuda_backend *cb, struct conv_entry *e)
{
    e->fuse = -1;
    if (cudnnCreateTensorDescriptor(&e->bd) != CUDNN_STATUS_SUCCESS) {
        e->bd = NULL;
        return;
    }
    if (cudnnSetTensor4dDescriptor(e->bd, CUDNN_TENSOR_NHWC, cudnn_type(e->key.dtype), 1,
                                   (int)e->key.cout, 1, 1) != CUDNN_STATUS_SUCCESS)
        return;
    if (cudnnCreateActivationDescriptor(&e->ad) != CUDNN_STATUS_SUCCESS) {
        e->ad = NULL;
        return;
    }
    if (cudnnSetActivationDescriptor(e->ad, CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN,
                                     0.0) != CUDNN_STATUS_SUCCESS)
        return;
    if (cudnnGetConvolutionForwardWorkspaceSize(cb->cudnn, e->xd, e->wd, e->cd, e->yd,
                                                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                                &e->fuse_ws_bytes) != CUDNN_STATUS_SUCCESS)
        return;
    e->fuse = 1;
}

/* y = conv(x, w) + residual + bias in one cuDNN call (e->fuse 1).  *refused (and
 * e->fuse −1, err untouched) when cuDNN refuses the call — a NOT_SUPPORTED or BAD_PARAM
 * category, the shape's or its parameters' — and the caller takes the unfused path,
 * which writes all of y.  Any other cuDNN failure is the convolution's (a sticky device
 * fault breaks the backend, as every op's does). */
static enum status conv_fused(struct cuda_backend *cb, struct conv_entry *e,
                              const struct tensor *x, const struct tensor *w,
                              const struct tensor *bias, const struct tensor *residual,
                              struct tensor *y, bool *refused, struct errbuf *err)
{
    *refused = false;
    TRY(cuda_workspace_reserve(cb, e->fuse_ws_bytes, err));
    const float one = 1.0f, alpha2 = residual ? 1.0f : 0.0f;
    const void *z = residual ? residual->data : y->data; /* not read with alpha2 0 */
    cudnnStatus_t ds = cudnnConvolutionBiasActivationForward(
        cb->cudnn, &one, e->xd, x->data, e->wd, w->data, e->cd,
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, cb->workspace, cb->workspace_bytes,
        &alpha2, e->yd, z, e->bd, bias->data, e->ad, e->yd, y->data);
    if (ds != CUDNN_STATUS_SUCCESS) {
        const int c = dnn_category(ds);
        if (c == CUDNN_STATUS_NOT_SUPPORTED || c == CUDNN_STATUS_BAD_PARAM) {
            e->fuse = -1;
            *refused = true;
            return STATUS_OK;
        }
        TRY(cuda_check_launch(cb, "conv2d (fused)", err)); /* a sticky fault: broken */
        return dnn_fail(ds, "fused convolution", err);
    }
    cb->conv_fused_calls++;
    return cuda_check_launch(cb, "conv2d (fused)", err);
}

/* The cuDNN convolution, then bias and residual in the epilogue kernel. */
static enum status conv_unfused(struct cuda_backend *cb, struct conv_entry *e,
                                const struct tensor *x, const struct tensor *w,
                                const struct tensor *bias, const struct tensor *residual,
                                struct tensor *y, struct errbuf *err)
{
    TRY(cuda_workspace_reserve(cb, e->ws_bytes, err));
    const float one = 1.0f, zero = 0.0f;
    cudnnStatus_t ds = cudnnConvolutionForward(cb->cudnn, &one, e->xd, x->data, e->wd, w->data,
                                               e->cd, e->algo, cb->workspace,
                                               cb->workspace_bytes, &zero, e->yd, y->data);
    if (ds != CUDNN_STATUS_SUCCESS)
        return dnn_fail(ds, "convolution", err);
    TRY(cuda_check_launch(cb, "conv2d", err));
    return cuda_bias_residual(cb, bias, residual, y, err);
}

/* Whether conv(x, w) + bias + residual goes through cuDNN's fused call (preparing e's
 * descriptors on the first try). */
static bool wants_fused(struct cuda_backend *cb, struct conv_entry *e, const struct tensor *bias)
{
    if (!cb->conv_fuse || !bias || e->fuse < 0)
        return false;
    if (e->fuse == 0)
        fuse_prepare(cb, e);
    return e->fuse > 0;
}

enum status cuda_conv2d(struct backend *b, const struct tensor *x, const struct tensor *w,
                        const struct tensor *bias, const struct tensor *residual,
                        const struct conv2d_params *p, struct tensor *y, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    const struct conv_key key = {x->shape[0], x->shape[1], x->shape[2], x->shape[3],
                                 w->shape[0], w->shape[1], w->shape[2], p->stride,
                                 p->padding, y->dtype};
    if (key.n > 2147483647 || key.h > 2147483647 || key.w > 2147483647 ||
        key.cin > 2147483647 || key.cout > 2147483647)
        return status_fail(err, STATUS_UNSUPPORTED, "cuda conv2d: dimension beyond int");
    if (conv_is_pointwise(w, p) || conv_wants_im2col(cb, x, y))
        return conv_as_gemm(cb, x, w, bias, residual, p, y, err);
    struct conv_entry tmp, *e = NULL;
    memset(&tmp, 0, sizeof tmp);
    TRY(lookup(cb, &key, x->data, w->data, y->data, &tmp, &e, err));
    bool fused = wants_fused(cb, e, bias), refused = false;
    enum status s = STATUS_OK;
    if (fused)
        s = conv_fused(cb, e, x, w, bias, residual, y, &refused, err);
    if (s == STATUS_OK && (!fused || refused))
        s = conv_unfused(cb, e, x, w, bias, residual, y, err);
    if (e == &tmp)
        entry_release(&tmp);
    return s;
}
