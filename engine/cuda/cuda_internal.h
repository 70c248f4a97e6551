/* engine/cuda/cuda_internal.h — shared by the CUDA backend's .cu files; not public.
 *
 * struct cuda_backend, the error mapping (cuda_check: OOM vs sticky), typed element
 * access for f32/f16/bf16 kernels, the dtype dispatch macro, and the vtable entries
 * each op file implements.  C++ (CUDA) only.
 */
#ifndef DIFFUSIOND_ENGINE_CUDA_INTERNAL_H
#define DIFFUSIOND_ENGINE_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "engine/cuda/cuda_backend.h"

struct cuda_conv_cache;
struct cuda_gemm_cache;

/* A lane (engine/backend.h): its stream and the buffers its ops write besides their
 * outputs.  The selected lane's live in struct cuda_backend's stream, workspace and
 * scratch fields; the others' here. */
struct cuda_lane {
    cudaStream_t stream;  /* NULL until the lane is first selected */
    void *workspace;
    size_t workspace_bytes;
    void *scratch;
    size_t scratch_bytes;
    unsigned buffers_epoch;
};

struct cuda_backend {
    struct backend base; /* first member */
    int device;
    bool allow_tf32;
    bool cudnn_find;     /* time convolution algorithms instead of the heuristic */
    bool attention_scalar; /* f16/bf16 attention on the f32 kernels, not tensor cores */
    int conv_gemm_rows;  /* convolutions over ≤ this many positions: im2col + GEMM */
    bool conv_fuse;      /* options.conv_fuse */
    unsigned long conv_fused_calls; /* convolutions cuDNN ran with bias/residual fused */
    int attention_row_tiles; /* 0 auto, 1 or 2 (options.attention_row_tiles) */
    int attention_kernel; /* enum cuda_attention_kernel */
    bool gemm_autotune;   /* options.gemm_autotune */
    bool linear_stack;    /* options.linear_stack */
    int group_norm_kernel; /* options.group_norm_kernel */
    int group_norm_cluster_max; /* options.group_norm_cluster_max, 0 read as 8 */
    bool pdl;              /* options.pdl */
    bool pdl_ok;           /* PDL can run here: sm_90+, and the kernels' code built from
                              compute_90 PTX or later (cuda_pdl_enter's wait compiled in;
                              a build for older GPUs JIT-compiled here has no wait) */
    int cc_major;        /* the device's compute capability (major) */
    int gn_cluster;      /* whether gn_cluster_kernel can run here (cuda_norm.cu): 0 not
                            asked yet, 1 yes, -1 no (no cluster launch, its code was built
                            from PTX below compute_90, or a cluster launch failed) */
    size_t max_smem;     /* opt-in shared memory per block, bytes */
    int sm_count;        /* multiprocessors */
    enum dtype weight_dtype;
    bool broken;         /* a sticky error was seen: everything fails from now on */
    /* the selected lane (engine/backend.h): stream, workspace, scratch and
       buffers_epoch below are its; lanes[k] holds lane k's while k is not selected */
    int lane;
    struct cuda_lane lanes[BACKEND_LANES_MAX];
    cudaStream_t stream;
    cudaMemPool_t pool;
    cudnnHandle_t cudnn;
    cublasLtHandle_t lt;
    void *workspace;     /* cuDNN/cuBLASLt workspace, grown on demand (never in capture) */
    size_t workspace_bytes;
    void *scratch;       /* small per-op device scratch (GroupNorm statistics, ...) */
    size_t scratch_bytes;
    unsigned buffers_epoch; /* changes whenever the lane's workspace or scratch is
                               (re)allocated: a graph recorded on the lane before holds
                               the freed block's address */
    unsigned capture_epoch; /* buffers_epoch when the current capture began */
    struct cuda_conv_cache *conv_cache;
    struct cuda_gemm_cache *gemm_cache;
    cudaEvent_t *marks;  /* [BACKEND_MARKS] profile timestamps, created on first use */
    /* Pinned host staging for upload/download (cuda_backend.cu): 2 buffers of 8 MiB in
     * one cudaHostAlloc block, made on first use and freed by destroy; stage_done[k] is
     * recorded after the last copy that reads or writes buffer k, and the host waits on
     * it before touching the buffer again.  Owned by the backend, so used by one thread
     * at a time.  stage_failed: the allocation failed once, the pageable path is used. */
    char *stage;
    cudaEvent_t stage_done[2];
    int stage_next;      /* the buffer the next chunk goes through */
    bool stage_failed;
};

static inline struct cuda_backend *cuda_of(struct backend *b)
{
    return (struct cuda_backend *)b;
}

/* Maps a CUDA error to a status: allocation failure → OUT_OF_MEMORY (cleared, the
 * backend lives on); a sticky error → DEVICE and cb->broken; anything else → DEVICE.
 * cudaSuccess → OK. */
enum status cuda_check(struct cuda_backend *cb, cudaError_t e, const char *what,
                       struct errbuf *err);

/* cudaGetLastError after kernel launches, through cuda_check. */
enum status cuda_check_launch(struct cuda_backend *cb, const char *what, struct errbuf *err);

/* STATUS_DEVICE when the backend is already broken; else makes its device current. */
enum status cuda_usable(struct cuda_backend *cb, struct errbuf *err);

/* Waits until every lane but the selected one is idle, so that a timing on the
 * selected lane (GEMM autotuning, cuDNN's algorithm search) runs alone: another lane's
 * queued work would skew it, and the choice serves every lane.  Errors are left to the
 * next checked call. */
void cuda_other_lanes_idle(struct cuda_backend *cb);

/* Ensures cb->workspace holds at least `bytes`; cb->scratch likewise. */
enum status cuda_workspace_reserve(struct cuda_backend *cb, size_t bytes, struct errbuf *err);
enum status cuda_scratch_reserve(struct cuda_backend *cb, size_t bytes, struct errbuf *err);

/* Caches (cuda_conv.cu, cuda_gemm.cu); destroy accepts NULL. */
void cuda_conv_cache_destroy(struct cuda_conv_cache *c);
void cuda_gemm_cache_destroy(struct cuda_gemm_cache *c);

/* A cache key's hash: FNV-1a over its fields f[0..n), mixed (the caches' hash indexes
 * take its low bits). */
static inline uint64_t cuda_key_hash(const uint64_t *f, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= f[i];
        h *= 1099511628211ull;
    }
    return h ^ h >> 29;
}

/* Blocks of `threads` covering n items, capped (kernels use grid-stride loops). */
static inline unsigned cuda_blocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    if (b < 1)
        b = 1;
    return b > 65535u * 8u ? 65535u * 8u : (unsigned)b;
}

/* --- typed element access (f32 accumulation) ------------------------------------ */

__device__ __forceinline__ float cuda_ld(const float *p) { return *p; }
__device__ __forceinline__ float cuda_ld(const __half *p) { return __half2float(*p); }
__device__ __forceinline__ float cuda_ld(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void cuda_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void cuda_st(__half *p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void cuda_st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

/* --- 16-byte vectors of 8 f16/bf16 elements ------------------------------------- */

#define CUDA_VEC 8 /* f16/bf16 elements per 16-byte vector */

/* Whether p is 16-byte aligned (NULL counts as aligned). */
static inline bool cuda_aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

/* f[0..8) = the 8 f16/bf16 elements at p (16-byte aligned). */
template <typename T>
__device__ __forceinline__ void cuda_ld8(const T *p, float f[CUDA_VEC])
{
    static_assert(sizeof(T) == 2, "8-element vectors are f16/bf16");
    uint4 u = *reinterpret_cast<const uint4 *>(p);
    const T *e = reinterpret_cast<const T *>(&u);
#pragma unroll
    for (int k = 0; k < CUDA_VEC; k++)
        f[k] = cuda_ld(e + k);
}

/* The 8 f16/bf16 elements at p (16-byte aligned) = f[0..8), rounded to nearest. */
template <typename T>
__device__ __forceinline__ void cuda_st8(T *p, const float f[CUDA_VEC])
{
    static_assert(sizeof(T) == 2, "8-element vectors are f16/bf16");
    uint4 u;
    T *e = reinterpret_cast<T *>(&u);
#pragma unroll
    for (int k = 0; k < CUDA_VEC; k++)
        cuda_st(e + k, f[k]);
    *reinterpret_cast<uint4 *>(p) = u;
}

/* Runs BODY with `T` bound to the element type of dtype DT. */
#define CUDA_DISPATCH(DT, BODY)                                                           \
    do {                                                                                  \
        switch (DT) {                                                                     \
        case DTYPE_F32: { typedef float T; BODY; } break;                                 \
        case DTYPE_F16: { typedef __half T; BODY; } break;                                \
        case DTYPE_BF16: { typedef __nv_bfloat16 T; BODY; } break;                        \
        default: break;                                                                   \
        }                                                                                 \
    } while (0)

/* --- launches ------------------------------------------------------------------------
 * Programmatic dependent launch (options.pdl, sm_90): a kernel launched with it may be
 * scheduled while the kernel before it on the stream is still finishing, its launch and
 * ramp-up hidden behind that kernel's tail.  So every kernel of this backend begins with
 * cuda_pdl_enter(): griddepcontrol.wait holds it until the grids it depends on have
 * completed and their writes are visible (at once for a plain launch), then
 * griddepcontrol.launch_dependents lets the next kernel be scheduled (which waits in
 * turn).  Below sm_90 it compiles to nothing.  tests/lint/cuda_kernels_enter.py checks that
 * every __global__ of engine/cuda/ begins with it. */
__device__ __forceinline__ void cuda_pdl_enter()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Where and how the backend's kernels launch: its stream, and whether with PDL. */
struct cuda_launch {
    cudaStream_t stream;
    bool pdl;
};

static inline struct cuda_launch cuda_launch_on(const struct cuda_backend *cb)
{
    struct cuda_launch l = {cb->stream, cb->pdl && cb->pdl_ok};
    return l;
}

/* kernel<<<grid, block, smem, l.stream>>>(args…), with the PDL attribute when l.pdl;
 * errors surface as a <<<>>> launch's do (cudaGetLastError, cuda_check_launch). */
template <typename... P, typename... A>
static inline void cuda_launch_kernel(const struct cuda_launch &l, void (*kernel)(P...),
                                      dim3 grid, dim3 block, size_t smem, A... args)
{
    if (!l.pdl) {
        kernel<<<grid, block, smem, l.stream>>>(args...);
        return;
    }
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = l.stream;
    cudaLaunchAttribute attr[1] = {};
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    (void)cudaLaunchKernelEx(&cfg, kernel, args...);
}

/* --- ops (arguments validated by engine/backend.c) ------------------------------- */

enum status cuda_convert(struct cuda_backend *cb, const void *src, enum dtype src_dt, void *dst,
                         enum dtype dst_dt, size_t n, struct errbuf *err);

enum status cuda_conv2d(struct backend *b, const struct tensor *x, const struct tensor *w,
                        const struct tensor *bias, const struct tensor *residual,
                        const struct conv2d_params *p, struct tensor *y, struct errbuf *err);
enum status cuda_linear(struct backend *b, const struct tensor *x, const struct tensor *w,
                        const struct tensor *bias, const struct tensor *residual,
                        struct tensor *y, struct errbuf *err);
enum status cuda_linear_stack(struct backend *b, const struct tensor *x, const struct tensor *w,
                              struct tensor *y, struct errbuf *err);
enum status cuda_matmul(struct backend *b, const struct tensor *a, const struct tensor *bm,
                        bool trans_b, float alpha, struct tensor *y, struct errbuf *err);
enum status cuda_group_norm(struct backend *b, const struct tensor *x, const struct tensor *gamma,
                            const struct tensor *beta, const struct group_norm_params *p,
                            struct tensor *y, struct errbuf *err);
enum status cuda_layer_norm(struct backend *b, const struct tensor *x, const struct tensor *gamma,
                            const struct tensor *beta, float eps, struct tensor *y,
                            struct errbuf *err);
enum status cuda_attention(struct backend *b, const struct tensor *q, const struct tensor *k,
                           const struct tensor *v, const struct attention_params *p,
                           struct tensor *y, struct errbuf *err);
enum status cuda_gelu(struct backend *b, const struct tensor *x, enum gelu_kind kind,
                      struct tensor *y, struct errbuf *err);
enum status cuda_geglu(struct backend *b, const struct tensor *x, struct tensor *y,
                       struct errbuf *err);
enum status cuda_silu(struct backend *b, const struct tensor *x, struct tensor *y,
                      struct errbuf *err);
enum status cuda_add(struct backend *b, const struct tensor *a, const struct tensor *bt,
                     struct tensor *y, struct errbuf *err);
enum status cuda_mul(struct backend *b, const struct tensor *a, const struct tensor *bt,
                     struct tensor *y, struct errbuf *err);
enum status cuda_axpby(struct backend *b, const struct tensor *x, const struct tensor *yin,
                       const float *alpha, const float *beta, struct tensor *out,
                       struct errbuf *err);
enum status cuda_gather_rows(struct backend *b, const struct tensor *const *rows,
                             const float *scales, int n, struct tensor *dst, struct errbuf *err);
enum status cuda_upsample_nearest(struct backend *b, const struct tensor *x, struct tensor *y,
                                  struct errbuf *err);
enum status cuda_concat_channels(struct backend *b, const struct tensor *a,
                                 const struct tensor *bt, struct tensor *y, struct errbuf *err);
enum status cuda_timestep_embedding(struct backend *b, const float *timesteps,
                                    const struct timestep_embedding_params *p, struct tensor *y,
                                    struct errbuf *err);
/* The register-resident flash-attention kernel (cuda_flash.cu): whether it takes these
 * q/k/v/y (f16/bf16, head dim d a multiple of 8 up to 160, 16-byte aligned, tensor
 * cores present, attention_scalar off), and its launch on cb->stream. */
bool cuda_flash_supports(const struct cuda_backend *cb, enum dtype dt, int d, const void *q,
                         const void *k, const void *v, const void *y);
cudaError_t cuda_flash_launch(struct cuda_backend *cb, enum dtype dt, const void *q,
                              const void *k, const void *v, void *y, int64_t batch, int64_t nq,
                              int64_t nk, int heads, int d, float scale, bool causal);
/* The wide-head flash-attention kernel (cuda_flash_wide.cu): the same, for head dims
 * that are multiples of 8 in (160, 512] (the VAE's 512-wide head; its shared memory
 * must fit cb->max_smem). */
bool cuda_flash_wide_supports(const struct cuda_backend *cb, enum dtype dt, int d,
                              const void *q, const void *k, const void *v, const void *y);
cudaError_t cuda_flash_wide_launch(struct cuda_backend *cb, enum dtype dt, const void *q,
                                   const void *k, const void *v, void *y, int64_t batch,
                                   int64_t nq, int64_t nk, int heads, int d, float scale,
                                   bool causal);
/* Graphs (cuda_elementwise.cu): whether a kernel node runs the timestep embedding, and
 * its timesteps replaced in an instantiated graph (rows as recorded, ≤ 256). */
bool cuda_timestep_node_is(const struct cudaKernelNodeParams *kp);
cudaError_t cuda_timestep_node_set(cudaGraphExec_t exec, cudaGraphNode_t node,
                                   const struct cudaKernelNodeParams *kp, const float *t,
                                   int rows);
/* y{rows,C} += bias{C} (may be NULL) + residual{rows,C} (may be NULL): the conv
 * epilogue. */
enum status cuda_bias_residual(struct cuda_backend *cb, const struct tensor *bias,
                               const struct tensor *residual, struct tensor *y,
                               struct errbuf *err);

#endif
