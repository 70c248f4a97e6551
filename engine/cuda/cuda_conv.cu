/* engine/cuda/cuda_conv.cu — conv2d through cuDNN.
 *
 * NHWC activations, KRSC filters ({Cout,KH,KW,Cin}: the engine's layout), f32
 * accumulation (compute type float for every storage dtype), tensor-core math (TF32
 * for f32 when allowed).  Per shape (N,H,W,Cin,Cout,KH,KW,stride,padding,dtype) the
 * descriptors and the algorithm are chosen once and cached: cuDNN's heuristic ranking
 * by default, or (options.cudnn_find) cudnnFindConvolutionForwardAlgorithmEx, which
 * times the candidates on the real buffers; the shared workspace grows to the chosen
 * algorithm's need.  Bias and residual follow in one
 * epilogue kernel (cuda_bias_residual). */
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/cuda_internal.h"

#define CONV_CACHE_MAX 512
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
};

struct cuda_conv_cache {
    struct conv_entry e[CONV_CACHE_MAX];
    int n;
};

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

static enum status dnn_fail(cudnnStatus_t s, const char *what, struct errbuf *err)
{
    enum status code = s == CUDNN_STATUS_ALLOC_FAILED ? STATUS_OUT_OF_MEMORY
                       : s == CUDNN_STATUS_NOT_SUPPORTED ? STATUS_UNSUPPORTED
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
    for (int i = 0; i < c->n; i++)
        if (key_eq(&c->e[i].key, k)) {
            *out = &c->e[i];
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
        c->n++;
    *out = e;
    return STATUS_OK;
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
    struct conv_entry tmp, *e = NULL;
    memset(&tmp, 0, sizeof tmp);
    TRY(lookup(cb, &key, x->data, w->data, y->data, &tmp, &e, err));
    enum status s = cuda_workspace_reserve(cb, e->ws_bytes, err);
    if (s == STATUS_OK) {
        const float one = 1.0f, zero = 0.0f;
        cudnnStatus_t ds = cudnnConvolutionForward(cb->cudnn, &one, e->xd, x->data, e->wd, w->data,
                                                   e->cd, e->algo, cb->workspace,
                                                   cb->workspace_bytes, &zero, e->yd, y->data);
        s = ds == CUDNN_STATUS_SUCCESS ? STATUS_OK : dnn_fail(ds, "convolution", err);
    }
    if (e == &tmp)
        entry_release(&tmp);
    if (s == STATUS_OK)
        s = cuda_check_launch(cb, "conv2d", err);
    if (s == STATUS_OK)
        s = cuda_bias_residual(cb, bias, residual, y, err);
    return s;
}
