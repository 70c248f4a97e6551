/* engine/cuda/cuda_backend.cu — creation, memory, dtype conversion, error mapping and
 * the vtable of the CUDA backend; the ops live in the other .cu files here. */
#include "engine/cuda/cuda_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Errors after which the CUDA context is unusable (cudaGetLastError cannot clear them). */
static bool cuda_error_is_sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorAssert:
    case cudaErrorContextIsDestroyed:
    case cudaErrorUnknown:
        return true;
    default:
        return false;
    }
}

enum status cuda_check(struct cuda_backend *cb, cudaError_t e, const char *what,
                       struct errbuf *err)
{
    if (e == cudaSuccess)
        return STATUS_OK;
    (void)cudaGetLastError(); /* clears a non-sticky error; a sticky one stays */
    if (e == cudaErrorMemoryAllocation)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "cuda: %s: out of device memory", what);
    if (cuda_error_is_sticky(e))
        cb->broken = true;
    return status_fail(err, STATUS_DEVICE, "cuda: %s: %s (%s)%s", what, cudaGetErrorString(e),
                       cudaGetErrorName(e), cb->broken ? "; the device context is lost" : "");
}

enum status cuda_check_launch(struct cuda_backend *cb, const char *what, struct errbuf *err)
{
    return cuda_check(cb, cudaGetLastError(), what, err);
}

enum status cuda_usable(struct cuda_backend *cb, struct errbuf *err)
{
    if (cb->broken)
        return status_fail(err, STATUS_DEVICE,
                           "cuda: the device failed earlier (sticky error); restart the process");
    /* the current device is per host thread; the worker may not be the creator */
    return cuda_check(cb, cudaSetDevice(cb->device), "cudaSetDevice", err);
}

static bool capturing(cudaStream_t st);

/* A new backend's (and a new lane's) workspace; it grows to what the ops ask for. */
#define FIRST_WORKSPACE_BYTES ((size_t)32 << 20)

/* Grows *buf to at least `bytes` (stream-ordered; the old block is freed after the
 * work queued before it).  Never inside a recording: there cudaMallocAsync would add a
 * graph memory node, leaving *buf an address with no memory outside the graph (and the
 * old block leaked) — the recording fails instead, the buffers as they were. */
static enum status grow(struct cuda_backend *cb, void **buf, size_t *cap, size_t bytes,
                        const char *what, struct errbuf *err)
{
    if (bytes <= *cap)
        return STATUS_OK;
    if (capturing(cb->stream))
        return status_fail(err, STATUS_UNSUPPORTED,
                           "cuda: %s of %zu bytes needed while recording (have %zu)", what,
                           bytes, *cap);
    size_t want = bytes + bytes / 4;
    void *p = NULL;
    TRY(cuda_check(cb, cudaMallocAsync(&p, want, cb->stream), what, err));
    if (*buf)
        (void)cudaFreeAsync(*buf, cb->stream);
    *buf = p;
    *cap = want;
    cb->buffers_epoch++; /* graphs recorded over the old block are stale (cuda_graph_current) */
    return STATUS_OK;
}

enum status cuda_workspace_reserve(struct cuda_backend *cb, size_t bytes, struct errbuf *err)
{
    return grow(cb, &cb->workspace, &cb->workspace_bytes, bytes, "workspace", err);
}

enum status cuda_scratch_reserve(struct cuda_backend *cb, size_t bytes, struct errbuf *err)
{
    return grow(cb, &cb->scratch, &cb->scratch_bytes, bytes, "scratch", err);
}

/* --- dtype conversion ------------------------------------------------------------- */

template <typename S, typename D>
__global__ static void convert_kernel(const S *src, D *dst, size_t n)
{
    cuda_pdl_enter();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        cuda_st(dst + i, cuda_ld(src + i));
}

template <typename S>
static void convert_from(const S *src, void *dst, enum dtype dst_dt, size_t n, struct cuda_launch st)
{
    unsigned blocks = cuda_blocks(n, 256);
    CUDA_DISPATCH(dst_dt, (cuda_launch_kernel(st, convert_kernel<S, T>, blocks, 256, 0, src, (T *)dst, n)));
}

enum status cuda_convert(struct cuda_backend *cb, const void *src, enum dtype src_dt, void *dst,
                         enum dtype dst_dt, size_t n, struct errbuf *err)
{
    if (n == 0)
        return STATUS_OK;
    if (src_dt == dst_dt)
        return cuda_check(cb,
                          cudaMemcpyAsync(dst, src, n * dtype_size(src_dt),
                                          cudaMemcpyDeviceToDevice, cb->stream),
                          "convert (copy)", err);
    CUDA_DISPATCH(src_dt, convert_from((const T *)src, dst, dst_dt, n, cuda_launch_on(cb)));
    return cuda_check_launch(cb, "convert", err);
}

/* --- pinned host staging (upload/download) ------------------------------------------
 *
 * Copies from pageable memory are staged by the driver through its own pinned buffers
 * and run at a fraction of the PCIe/NVLink rate.  Large transfers go through the
 * backend's own pinned buffers instead (cb->stage, STAGE_BUFS × STAGE_BYTES, allocated
 * on first use), a chunk at a time, alternating buffers: the host's memcpy of chunk i+1
 * overlaps the DMA of chunk i.  cb->stage_done[k] is recorded after each copy that
 * reads or writes buffer k; the host waits on it before it writes (upload) or reads
 * (download) the buffer.  Copies on the device side need no wait: they are all on
 * cb->stream, in order — except a buffer's last copy on another lane's stream, which
 * a download's first use of the buffer waits for by its event, as an upload does.  So upload never reads the caller's memory after it returns
 * (its last chunk may still be in flight from the pinned buffer), and download's result
 * is complete on return.  The backend is used by one thread at a time, and so are
 * these buffers.  No pinned memory (cudaHostAlloc failed), a capture in progress, or
 * an upload under STAGE_MIN_BYTES: the pageable path, as before. */

#define STAGE_BUFS 2
#define STAGE_BYTES ((size_t)8 << 20)
/* Smaller uploads stay pageable: the driver copies those into its staging memory and
 * returns at once, where a pinned buffer might have to wait for the stream to reach
 * an earlier copy of it (small per-step uploads while a U-Net call is queued). */
#define STAGE_MIN_BYTES ((size_t)1 << 20)

static_assert(sizeof(((struct cuda_backend *)0)->stage_done) / sizeof(cudaEvent_t) ==
                  STAGE_BUFS,
              "one event per staging buffer");

static void stage_destroy(struct cuda_backend *cb)
{
    for (int k = 0; k < STAGE_BUFS; k++)
        if (cb->stage_done[k])
            (void)cudaEventDestroy(cb->stage_done[k]);
    if (cb->stage)
        (void)cudaFreeHost(cb->stage);
    cb->stage = NULL;
    memset(cb->stage_done, 0, sizeof cb->stage_done);
    (void)cudaGetLastError();
}

/* Whether the staged path may run now: the buffers exist (made here on first use) and
 * the stream is not capturing.  Never an error: without them the pageable path runs. */
static bool stage_ready(struct cuda_backend *cb)
{
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(cb->stream, &cs) != cudaSuccess ||
        cs != cudaStreamCaptureStatusNone) {
        (void)cudaGetLastError();
        return false;
    }
    if (cb->stage || cb->stage_failed)
        return cb->stage != NULL;
    void *p = NULL;
    bool ok = cudaHostAlloc(&p, STAGE_BUFS * STAGE_BYTES, cudaHostAllocDefault) == cudaSuccess;
    cb->stage = (char *)p;
    for (int k = 0; ok && k < STAGE_BUFS; k++)
        ok = cudaEventCreateWithFlags(&cb->stage_done[k], cudaEventDisableTiming) ==
             cudaSuccess;
    if (!ok) {
        stage_destroy(cb); /* clears the error; a sticky one stays for the next call */
        cb->stage_failed = true;
    }
    return ok;
}

/* Waits until buffer k's last copy is done (at once when it never had one). */
static enum status stage_wait(struct cuda_backend *cb, int k, struct errbuf *err)
{
    return cuda_check(cb, cudaEventSynchronize(cb->stage_done[k]), "staging wait", err);
}

/* One async copy that reads or writes buffer k, then its event.  If the event cannot
 * be recorded the stream is drained, so no copy is left in flight unguarded. */
static enum status stage_copy(struct cuda_backend *cb, int k, void *to, const void *from,
                              size_t len, cudaMemcpyKind kind, const char *what,
                              struct errbuf *err)
{
    cudaError_t e = cudaMemcpyAsync(to, from, len, kind, cb->stream);
    if (e == cudaSuccess) {
        e = cudaEventRecord(cb->stage_done[k], cb->stream);
        if (e != cudaSuccess)
            (void)cudaStreamSynchronize(cb->stream);
    }
    return cuda_check(cb, e, what, err);
}

static size_t stage_chunk(size_t bytes, size_t off)
{
    return bytes - off < STAGE_BYTES ? bytes - off : STAGE_BYTES;
}

/* Host → device through the pinned buffers (the caller checked stage_ready). */
static enum status h2d_staged(struct cuda_backend *cb, void *dst, const void *src, size_t bytes,
                              struct errbuf *err)
{
    for (size_t off = 0; off < bytes; off += STAGE_BYTES) {
        size_t len = stage_chunk(bytes, off);
        int k = cb->stage_next;
        cb->stage_next = (k + 1) % STAGE_BUFS;
        char *buf = cb->stage + (size_t)k * STAGE_BYTES;
        TRY(stage_wait(cb, k, err));
        memcpy(buf, (const char *)src + off, len);
        TRY(stage_copy(cb, k, (char *)dst + off, buf, len, cudaMemcpyHostToDevice, "upload",
                       err));
    }
    return STATUS_OK;
}

/* Device → host through the pinned buffers: chunk i+1 is queued before the host waits
 * for chunk i and copies it out, so the DMA runs while the host copies. */
static enum status d2h_staged(struct cuda_backend *cb, void *dst, const void *src, size_t bytes,
                              struct errbuf *err)
{
    size_t chunks = (bytes + STAGE_BYTES - 1) / STAGE_BYTES;
    int k0 = cb->stage_next;
    cb->stage_next = (int)((k0 + chunks) % STAGE_BUFS);
    for (size_t i = 0; i <= chunks; i++) {
        if (i < chunks) { /* queue chunk i; its buffer's previous chunk (i-2) is copied out */
            int k = (int)((k0 + i) % STAGE_BUFS);
            size_t off = i * STAGE_BYTES;
            if (i < STAGE_BUFS) /* its last copy may be an upload still queued on a lane */
                TRY(stage_wait(cb, k, err));
            TRY(stage_copy(cb, k, cb->stage + (size_t)k * STAGE_BYTES, (const char *)src + off,
                           stage_chunk(bytes, off), cudaMemcpyDeviceToHost, "download", err));
        }
        if (i > 0) { /* copy chunk i-1 out */
            int k = (int)((k0 + i - 1) % STAGE_BUFS);
            size_t off = (i - 1) * STAGE_BYTES;
            TRY(stage_wait(cb, k, err));
            memcpy((char *)dst + off, cb->stage + (size_t)k * STAGE_BYTES,
                   stage_chunk(bytes, off));
        }
    }
    return STATUS_OK;
}

/* Host → device: staged when large and possible, else from the caller's pageable memory
 * (the driver's copy; either way the caller's memory is not read after return). */
static enum status h2d(struct cuda_backend *cb, void *dst, const void *src, size_t bytes,
                       struct errbuf *err)
{
    if (bytes >= STAGE_MIN_BYTES && stage_ready(cb))
        return h2d_staged(cb, dst, src, bytes, err);
    return cuda_check(cb, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cb->stream),
                      "upload", err);
}

/* Device → host, staged when possible; complete only after the caller's stream sync. */
static enum status d2h(struct cuda_backend *cb, void *dst, const void *src, size_t bytes,
                       struct errbuf *err)
{
    if (bytes > 0 && stage_ready(cb))
        return d2h_staged(cb, dst, src, bytes, err);
    return cuda_check(cb, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cb->stream),
                      "download", err);
}

/* --- vtable: memory ------------------------------------------------------------- */

static void cuda_marks_destroy(struct cuda_backend *cb);

/* Lane k's state, wherever it lives now (struct cuda_lane). */
static struct cuda_lane lane_state(const struct cuda_backend *cb, int k)
{
    if (k != cb->lane)
        return cb->lanes[k];
    return (struct cuda_lane){cb->stream, cb->workspace, cb->workspace_bytes, cb->scratch,
                              cb->scratch_bytes, cb->buffers_epoch};
}

static void cuda_destroy(struct backend *b)
{
    struct cuda_backend *cb = cuda_of(b);
    (void)cudaSetDevice(cb->device);
    for (int k = 0; k < BACKEND_LANES_MAX && !cb->broken; k++)
        if (lane_state(cb, k).stream)
            (void)cudaStreamSynchronize(lane_state(cb, k).stream);
    cuda_conv_cache_destroy(cb->conv_cache);
    cuda_gemm_cache_destroy(cb->gemm_cache);
    cuda_marks_destroy(cb);
    stage_destroy(cb); /* after the syncs above: no copy reads or writes it any more */
    if (cb->cudnn)
        (void)cudnnDestroy(cb->cudnn);
    if (cb->lt)
        (void)cublasLtDestroy(cb->lt);
    for (int k = 0; k < BACKEND_LANES_MAX; k++) {
        const struct cuda_lane l = lane_state(cb, k);
        if (!l.stream)
            continue;
        if (l.workspace)
            (void)cudaFreeAsync(l.workspace, l.stream);
        if (l.scratch)
            (void)cudaFreeAsync(l.scratch, l.stream);
        (void)cudaStreamSynchronize(l.stream);
        (void)cudaStreamDestroy(l.stream);
    }
    (void)cudaGetLastError();
    free(cb);
}

static enum status cuda_alloc(struct backend *b, struct tensor *t, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    size_t bytes = (tensor_nbytes(t) + 255) & ~(size_t)255;
    if (capturing(cb->stream)) /* it would be the graph's memory, none outside it (grow) */
        return status_fail(err, STATUS_UNSUPPORTED, "cuda: alloc of %zu bytes while recording",
                           bytes);
    void *p = NULL;
    cudaError_t e = cudaMallocAsync(&p, bytes, cb->stream);
    if (e != cudaSuccess) {
        char d[64];
        enum status s = cuda_check(cb, e, "alloc", err);
        if (err)
            status_wrap(err, "%s (%zu bytes)", tensor_describe(t, d, sizeof d), bytes);
        return s;
    }
    t->data = p;
    return STATUS_OK;
}

static void cuda_free(struct backend *b, struct tensor *t)
{
    struct cuda_backend *cb = cuda_of(b);
    if (!cb->broken && cudaSetDevice(cb->device) == cudaSuccess)
        (void)cudaFreeAsync(t->data, cb->stream);
    (void)cudaGetLastError();
}

static enum status cuda_upload(struct backend *b, struct tensor *dst, const void *src,
                               enum dtype src_dtype, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    size_t n = (size_t)tensor_numel(dst);
    size_t src_bytes = n * dtype_size(src_dtype);
    if (src_dtype == dst->dtype)
        return h2d(cb, dst->data, src, src_bytes, err);
    void *tmp = NULL;
    TRY(cuda_check(cb, cudaMallocAsync(&tmp, src_bytes, cb->stream), "upload staging", err));
    enum status s = h2d(cb, tmp, src, src_bytes, err);
    if (s == STATUS_OK)
        s = cuda_convert(cb, tmp, src_dtype, dst->data, dst->dtype, n, err);
    (void)cudaFreeAsync(tmp, cb->stream);
    return s;
}

static enum status cuda_download(struct backend *b, const struct tensor *src, float *dst,
                                 struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    size_t n = (size_t)tensor_numel(src);
    const void *from = src->data;
    void *tmp = NULL;
    if (src->dtype != DTYPE_F32) {
        TRY(cuda_check(cb, cudaMallocAsync(&tmp, n * sizeof(float), cb->stream),
                       "download staging", err));
        enum status s = cuda_convert(cb, src->data, src->dtype, tmp, DTYPE_F32, n, err);
        if (s != STATUS_OK) {
            (void)cudaFreeAsync(tmp, cb->stream);
            return s;
        }
        from = tmp;
    }
    enum status s = d2h(cb, dst, from, n * sizeof(float), err);
    if (tmp)
        (void)cudaFreeAsync(tmp, cb->stream);
    if (s == STATUS_OK)
        s = cuda_check(cb, cudaStreamSynchronize(cb->stream), "download (sync)", err);
    return s;
}

void cuda_other_lanes_idle(struct cuda_backend *cb)
{
    for (int k = 0; k < BACKEND_LANES_MAX; k++)
        if (k != cb->lane && cb->lanes[k].stream)
            (void)cudaStreamSynchronize(cb->lanes[k].stream);
}

static enum status cuda_sync(struct backend *b, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    for (int k = 0; k < BACKEND_LANES_MAX; k++) {
        const cudaStream_t st = lane_state(cb, k).stream;
        if (st)
            TRY(cuda_check(cb, cudaStreamSynchronize(st), "sync", err));
    }
    return STATUS_OK;
}

static int cuda_lanes(const struct backend *b)
{
    (void)b;
    return BACKEND_LANES_MAX;
}

static bool capturing(cudaStream_t st)
{
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    const bool busy = cudaStreamIsCapturing(st, &cs) != cudaSuccess ||
                      cs != cudaStreamCaptureStatusNone;
    (void)cudaGetLastError();
    return busy;
}

/* Makes lane k the selected one: its stream (made on first use, with the setup's
 * workspace size: it grows on demand), buffers and epoch into the backend's fields,
 * cuDNN's handle onto its stream.  (A GEMM algorithm chosen for a larger workspace
 * than a lane has grows that lane's first: cuda_gemm.cu; a convolution's likewise.) */
static enum status cuda_lane_select(struct backend *b, int lane, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    if (lane == cb->lane)
        return STATUS_OK;
    if (capturing(cb->stream))
        return status_fail(err, STATUS_UNSUPPORTED, "cuda: lane %d selected while recording",
                           lane);
    struct cuda_lane to = cb->lanes[lane];
    if (!to.stream)
        TRY(cuda_check(cb, cudaStreamCreateWithFlags(&to.stream, cudaStreamNonBlocking),
                       "lane stream", err));
    cudnnStatus_t ds = cudnnSetStream(cb->cudnn, to.stream);
    if (ds != CUDNN_STATUS_SUCCESS) {
        cb->lanes[lane] = to; /* the new stream is destroyed with the backend */
        return status_fail(err, STATUS_DEVICE, "cudnnSetStream: %s", cudnnGetErrorString(ds));
    }
    const bool fresh = !to.workspace;
    cb->lanes[cb->lane] = lane_state(cb, cb->lane);
    cb->lane = lane;
    cb->stream = to.stream;
    cb->workspace = to.workspace;
    cb->workspace_bytes = to.workspace_bytes;
    cb->scratch = to.scratch;
    cb->scratch_bytes = to.scratch_bytes;
    cb->buffers_epoch = to.buffers_epoch;
    memset(&cb->lanes[lane], 0, sizeof cb->lanes[lane]);
    return fresh ? cuda_workspace_reserve(cb, FIRST_WORKSPACE_BYTES, err) : STATUS_OK;
}

static bool cuda_broken_op(const struct backend *b)
{
    return ((const struct cuda_backend *)b)->broken;
}

static enum dtype cuda_weight_dtype_op(const struct backend *b)
{
    return ((const struct cuda_backend *)b)->weight_dtype;
}

static enum status cuda_graph_begin(struct backend *b, struct errbuf *err);
static enum status cuda_graph_end(struct backend *b, void **impl, struct errbuf *err);
static enum status cuda_graph_set_timesteps(void *impl, const float *timesteps, int rows,
                                            struct errbuf *err);
static enum status cuda_graph_launch(void *impl, struct errbuf *err);
static bool cuda_graph_current(const void *impl);
static void cuda_graph_destroy(void *impl);
static enum status cuda_mark(struct backend *b, int index, struct errbuf *err);
static enum status cuda_mark_seconds(struct backend *b, int from, int to, double *seconds,
                                     struct errbuf *err);

static const struct backend_ops cuda_ops = {
    .name = "cuda",
    .destroy = cuda_destroy,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .sync = cuda_sync,
    .broken = cuda_broken_op,
    .weight_dtype = cuda_weight_dtype_op,
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
    .graph_set_timesteps = cuda_graph_set_timesteps,
    .graph_launch = cuda_graph_launch,
    .graph_current = cuda_graph_current,
    .graph_destroy = cuda_graph_destroy,
    .lanes = cuda_lanes,
    .lane_select = cuda_lane_select,
    .mark = cuda_mark,
    .mark_seconds = cuda_mark_seconds,
    .conv2d = cuda_conv2d,
    .linear = cuda_linear,
    .linear_stack = cuda_linear_stack,
    .matmul = cuda_matmul,
    .group_norm = cuda_group_norm,
    .layer_norm = cuda_layer_norm,
    .attention = cuda_attention,
    .gelu = cuda_gelu,
    .geglu = cuda_geglu,
    .silu = cuda_silu,
    .add = cuda_add,
    .mul = cuda_mul,
    .axpby = cuda_axpby,
    .upsample_nearest = cuda_upsample_nearest,
    .gather_rows = cuda_gather_rows,
    .concat_channels = cuda_concat_channels,
    .timestep_embedding = cuda_timestep_embedding,
};

/* --- creation ------------------------------------------------------------------- */

extern "C" void cuda_backend_options_default(struct cuda_backend_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->device = 0;
    opt->allow_tf32 = true;
    /* run 8 (H200, CUDA graph replays): im2col + GEMM for the 8×8 and 16×16 maps at 2
     * rows and cuBLASLt's candidates timed, 0.981× at 2 rows and 0.985× at 16 together;
     * the stacked projections 0.92× at 2 rows (run 7) */
    opt->conv_gemm_rows = 512;
    opt->gemm_autotune = true;
    opt->linear_stack = true;
    opt->weight_dtype = DTYPE_F32;
}

/* The planning options (what cuda_backend_set_plan may change later). */
static void apply_plan(struct cuda_backend *cb, const struct cuda_backend_options *opt)
{
#define APPLY(f) cb->f = opt->f;
    CUDA_PLAN_FIELDS(APPLY)
#undef APPLY
}

__global__ static void hold_kernel(unsigned long long ns);

/* Whether programmatic dependent launch can run here (cb->pdl_ok): sm_90 or later, and
 * this file's kernels (as every kernel of the backend, built alike) compiled from PTX
 * of compute_90 or later — else cuda_pdl_enter() compiled to nothing. */
static bool pdl_supported(const struct cuda_backend *cb)
{
    struct cudaFuncAttributes fa;
    const bool ok = cb->cc_major >= 9 &&
                    cudaFuncGetAttributes(&fa, hold_kernel) == cudaSuccess && fa.ptxVersion >= 90;
    if (!ok)
        (void)cudaGetLastError(); /* an attribute query's error is no op's */
    return ok;
}

static enum status setup(struct cuda_backend *cb, struct errbuf *err)
{
    TRY(cuda_check(cb, cudaSetDevice(cb->device), "cudaSetDevice", err));
    TRY(cuda_check(cb, cudaDeviceGetAttribute(&cb->cc_major, cudaDevAttrComputeCapabilityMajor,
                                              cb->device),
                   "compute capability", err));
    int smem = 0;
    TRY(cuda_check(cb, cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                              cb->device),
                   "shared memory per block", err));
    cb->max_smem = (size_t)smem;
    TRY(cuda_check(cb, cudaDeviceGetAttribute(&cb->sm_count, cudaDevAttrMultiProcessorCount,
                                              cb->device),
                   "multiprocessor count", err));
    cb->pdl_ok = pdl_supported(cb);
    TRY(cuda_check(cb, cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking),
                   "cudaStreamCreate", err));
    TRY(cuda_check(cb, cudaDeviceGetDefaultMemPool(&cb->pool, cb->device), "memory pool", err));
    uint64_t threshold = UINT64_MAX; /* keep freed blocks for reuse */
    TRY(cuda_check(cb, cudaMemPoolSetAttribute(cb->pool, cudaMemPoolAttrReleaseThreshold, &threshold),
                   "memory pool threshold", err));
    /* lanes run concurrently: a block freed on one lane's stream and wanted on another's
     * is reused only once its free has completed, never by making the second lane wait
     * for the first (which would serialise them); the pool keeps more blocks instead */
    int no = 0;
    TRY(cuda_check(cb, cudaMemPoolSetAttribute(cb->pool, cudaMemPoolReuseAllowInternalDependencies,
                                               &no),
                   "memory pool reuse", err));
    cudnnStatus_t ds = cudnnCreate(&cb->cudnn);
    if (ds != CUDNN_STATUS_SUCCESS) {
        cb->cudnn = NULL;
        return status_fail(err, STATUS_DEVICE, "cudnnCreate: %s", cudnnGetErrorString(ds));
    }
    ds = cudnnSetStream(cb->cudnn, cb->stream);
    if (ds != CUDNN_STATUS_SUCCESS)
        return status_fail(err, STATUS_DEVICE, "cudnnSetStream: %s", cudnnGetErrorString(ds));
    cublasStatus_t ls = cublasLtCreate(&cb->lt);
    if (ls != CUBLAS_STATUS_SUCCESS) {
        cb->lt = NULL;
        return status_fail(err, STATUS_DEVICE, "cublasLtCreate: status %d", (int)ls);
    }
    return cuda_workspace_reserve(cb, FIRST_WORKSPACE_BYTES, err);
}

extern "C" enum status cuda_backend_create(const struct cuda_backend_options *opt,
                                           struct backend **out, struct errbuf *err)
{
    *out = NULL;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        (void)cudaGetLastError();
        return status_fail(err, STATUS_NOT_FOUND, "cuda backend: no device (%s)",
                           e != cudaSuccess ? cudaGetErrorName(e) : "none");
    }
    if ((unsigned)opt->weight_dtype >= DTYPE_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "cuda backend: unknown weight dtype");
    if (opt->device < 0 || opt->device >= n)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "cuda backend: device %d out of range (%d device(s))", opt->device, n);
    struct cuda_backend *cb = (struct cuda_backend *)calloc(1, sizeof *cb);
    if (!cb)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "cuda backend: out of memory");
    cb->base.ops = &cuda_ops;
    cb->device = opt->device;
    cb->allow_tf32 = opt->allow_tf32;
    cb->attention_scalar = opt->attention_scalar;
    apply_plan(cb, opt);
    cb->weight_dtype = opt->weight_dtype;
    enum status s = setup(cb, err);
    if (s != STATUS_OK) {
        cuda_destroy(&cb->base);
        return s;
    }
    *out = &cb->base;
    return STATUS_OK;
}

extern "C" bool cuda_backend_broken(const struct backend *b)
{
    return ((const struct cuda_backend *)b)->broken;
}

extern "C" bool cuda_backend_is(const struct backend *b)
{
    return b && b->ops == &cuda_ops;
}

extern "C" void cuda_backend_set_plan(struct backend *b, const struct cuda_backend_options *opt)
{
    struct cuda_backend *cb = cuda_of(b);
    apply_plan(cb, opt);
    cuda_conv_cache_destroy(cb->conv_cache); /* host-side descriptors only */
    cb->conv_cache = NULL;
    cuda_gemm_cache_destroy(cb->gemm_cache);
    cb->gemm_cache = NULL;
}

/* One thread that waits on the device's global timer until ns have passed — or for
 * ns / 500 rounds of its loop, so that a timer that does not advance cannot hang it. */
__global__ static void hold_kernel(unsigned long long ns)
{
    cuda_pdl_enter();
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    for (unsigned long long round = 0; round <= ns / 500; round++) {
#if __CUDA_ARCH__ >= 700
        __nanosleep(1000);
#endif
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
        if (t - t0 >= ns)
            break;
    }
}

extern "C" enum status cuda_backend_hold(struct backend *b, double seconds, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    if (!(seconds >= 0 && seconds <= 1))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "cuda hold: %g s (0 … 1)", seconds);
    hold_kernel<<<1, 1, 0, cb->stream>>>((unsigned long long)(seconds * 1e9));
    return cuda_check_launch(cb, "hold", err);
}

extern "C" unsigned long cuda_backend_conv_fused_calls(const struct backend *b)
{
    return ((const struct cuda_backend *)b)->conv_fused_calls;
}

extern "C" size_t cuda_backend_pool_bytes(const struct backend *b)
{
    const struct cuda_backend *cb = (const struct cuda_backend *)b;
    uint64_t v = 0;
    if (cudaMemPoolGetAttribute(cb->pool, cudaMemPoolAttrReservedMemCurrent, &v) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return (size_t)v;
}

/* --- profile marks (engine/profile.h) --------------------------------------------- */

static void cuda_marks_destroy(struct cuda_backend *cb)
{
    if (!cb->marks)
        return;
    for (int i = 0; i < BACKEND_MARKS; i++)
        if (cb->marks[i])
            (void)cudaEventDestroy(cb->marks[i]);
    free(cb->marks);
    cb->marks = NULL;
}

static enum status cuda_mark(struct backend *b, int index, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    if (index < 0 || index >= BACKEND_MARKS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "cuda: mark %d out of range", index);
    if (!cb->marks && !(cb->marks = (cudaEvent_t *)calloc(BACKEND_MARKS, sizeof *cb->marks)))
        return status_fail(err, STATUS_OUT_OF_MEMORY, "cuda: marks: out of memory");
    if (!cb->marks[index])
        TRY(cuda_check(cb, cudaEventCreate(&cb->marks[index]), "mark", err));
    return cuda_check(cb, cudaEventRecord(cb->marks[index], cb->stream), "mark", err);
}

static enum status cuda_mark_seconds(struct backend *b, int from, int to, double *seconds,
                                     struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    if (!cb->marks || from < 0 || to < 0 || from >= BACKEND_MARKS || to >= BACKEND_MARKS ||
        !cb->marks[from] || !cb->marks[to])
        return status_fail(err, STATUS_INVALID_ARGUMENT, "cuda: marks %d, %d not recorded",
                           from, to);
    float ms = 0;
    TRY(cuda_check(cb, cudaEventElapsedTime(&ms, cb->marks[from], cb->marks[to]), "mark time",
                   err));
    *seconds = 1e-3 * ms;
    return STATUS_OK;
}

/* --- CUDA graphs ------------------------------------------------------------------- */

struct cuda_graph {
    struct cuda_backend *cb;
    int lane;                      /* recorded on, and replayed on, this lane */
    cudaStream_t stream;           /* its stream */
    unsigned epoch;                /* the lane's buffers_epoch it was recorded at */
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    int n_ts;                      /* timestep_embedding kernel nodes recorded */
    cudaGraphNode_t ts_node;       /* the first of them */
    struct cudaKernelNodeParams ts_params; /* its parameters as recorded (node-owned) */
};

static enum status cuda_graph_begin(struct backend *b, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    TRY(cuda_usable(cb, err));
    cb->capture_epoch = cb->buffers_epoch;
    return cuda_check(cb, cudaStreamBeginCapture(cb->stream, cudaStreamCaptureModeThreadLocal),
                      "begin capture", err);
}

/* Finds the graph's timestep_embedding kernel nodes (for cuda_graph_set_timesteps).  A
 * node that cannot be read (libraries' kernels launched through the driver API) is
 * passed over: at worst the timesteps are not settable, never a failed capture. */
static void find_timestep_nodes(struct cuda_graph *g)
{
    size_t n = 0;
    cudaGraphNode_t *nodes = NULL;
    if (cudaGraphGetNodes(g->graph, NULL, &n) == cudaSuccess && n > 0 &&
        (nodes = (cudaGraphNode_t *)calloc(n, sizeof *nodes)) != NULL &&
        cudaGraphGetNodes(g->graph, nodes, &n) == cudaSuccess) {
        for (size_t i = 0; i < n; i++) {
            cudaGraphNodeType type;
            struct cudaKernelNodeParams kp;
            if (cudaGraphNodeGetType(nodes[i], &type) != cudaSuccess ||
                type != cudaGraphNodeTypeKernel ||
                cudaGraphKernelNodeGetParams(nodes[i], &kp) != cudaSuccess ||
                !cuda_timestep_node_is(&kp))
                continue;
            if (g->n_ts++ == 0) {
                g->ts_node = nodes[i];
                g->ts_params = kp;
            }
        }
    }
    (void)cudaGetLastError(); /* what the reads above left is not the graph's failure */
    free(nodes);
}

static enum status cuda_graph_end(struct backend *b, void **out, struct errbuf *err)
{
    struct cuda_backend *cb = cuda_of(b);
    *out = NULL;
    cudaGraph_t graph = NULL;
    enum status s = cuda_check(cb, cudaStreamEndCapture(cb->stream, &graph), "end capture", err);
    if (s != STATUS_OK)
        return s;
    struct cuda_graph *g = (struct cuda_graph *)calloc(1, sizeof *g);
    if (!g) {
        (void)cudaGraphDestroy(graph);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "cuda graph: out of memory");
    }
    g->cb = cb;
    g->lane = cb->lane;
    g->stream = cb->stream;
    g->graph = graph;
    g->epoch = cb->buffers_epoch;
    if (cb->buffers_epoch != cb->capture_epoch) { /* an op grew a buffer inside the capture */
        cuda_graph_destroy(g);
        return status_fail(err, STATUS_UNSUPPORTED,
                           "cuda graph: the workspace or scratch grew while recording");
    }
    s = cuda_check(cb, cudaGraphInstantiate(&g->exec, graph, 0), "instantiate graph", err);
    if (s == STATUS_OK)
        find_timestep_nodes(g);
    if (s != STATUS_OK) {
        cuda_graph_destroy(g);
        return s;
    }
    *out = g;
    return STATUS_OK;
}

static enum status cuda_graph_set_timesteps(void *impl, const float *timesteps, int rows,
                                            struct errbuf *err)
{
    struct cuda_graph *g = (struct cuda_graph *)impl;
    TRY(cuda_usable(g->cb, err));
    if (g->n_ts != 1)
        return status_fail(err, STATUS_UNSUPPORTED,
                           "cuda graph: %d timestep embeddings recorded (one can be set)",
                           g->n_ts);
    return cuda_check(g->cb,
                      cuda_timestep_node_set(g->exec, g->ts_node, &g->ts_params, timesteps, rows),
                      "graph timesteps", err);
}

static bool cuda_graph_current(const void *impl)
{
    const struct cuda_graph *g = (const struct cuda_graph *)impl;
    return g->epoch == lane_state(g->cb, g->lane).buffers_epoch;
}

static enum status cuda_graph_launch(void *impl, struct errbuf *err)
{
    const struct cuda_graph *g = (const struct cuda_graph *)impl;
    TRY(cuda_usable(g->cb, err));
    if (!cuda_graph_current(g)) /* its kernels would write into a freed block */
        return status_fail(err, STATUS_UNSUPPORTED,
                           "cuda graph: recorded before the workspace or scratch grew; record "
                           "it again");
    return cuda_check(g->cb, cudaGraphLaunch(g->exec, g->stream), "graph launch", err);
}

static void cuda_graph_destroy(void *impl)
{
    struct cuda_graph *g = (struct cuda_graph *)impl;
    if (!g)
        return;
    if (g->exec)
        (void)cudaGraphExecDestroy(g->exec);
    if (g->graph)
        (void)cudaGraphDestroy(g->graph);
    (void)cudaGetLastError();
    free(g);
}
