/* engine/cuda/cuda_backend.h — the CUDA backend: every op of engine/backend.h on one
 * NVIDIA GPU, checked op by op against the CPU reference (tests/gpu/).
 *
 * Storage: tensors may be DTYPE_F32, DTYPE_F16 or DTYPE_BF16 (an op's tensors share
 * one dtype, as backend.c validates); every op accumulates in f32.  f32 GEMMs and
 * convolutions may use TF32 tensor cores (options.allow_tf32).  Upload and download
 * convert dtypes on the device.
 *   conv2d     cuDNN (NHWC activations, KRSC filters = the engine's {Cout,KH,KW,Cin}),
 *              the algorithm chosen once per shape (heuristic, or timed with
 *              options.cudnn_find) and cached; bias and residual in one fused
 *              epilogue kernel.
 *   linear     cuBLASLt, bias in the GEMM epilogue, residual as its C operand (β = 1);
 *   matmul     cuBLASLt strided-batched; algorithms cached per shape and alignment.
 *   attention  flash-attention kernels of this backend (online softmax, no Nq×Nk
 *              buffer): f16/bf16 on tensor cores (WMMA, head dims ≤ 512 padded to
 *              16, compute capability ≥ 8.0); f32 — and f16/bf16 with
 *              options.attention_scalar — on a tiled warp kernel for head dims ≤ 256
 *              (SD1.5's 40/80/160, 64, 128, any other), a block-per-row kernel above.
 *   the rest   kernels of this backend (GroupNorm with SiLU fused, LayerNorm, GEGLU,
 *              GELU/SiLU, broadcast add/mul, per-row axpby, upsample, concat,
 *              timestep embedding).  Per-row scalars and timesteps travel as kernel
 *              arguments (no host→device copy), so a sampler step keeps its latents on
 *              the GPU and stays capturable in a CUDA graph.
 * Memory comes from a stream-ordered pool (cudaMallocAsync on the backend's stream,
 * release threshold unlimited, so a warm pool never returns to the driver).
 *
 * Errors: an allocation the device cannot satisfy → STATUS_OUT_OF_MEMORY for that
 * call and the backend lives on.  A sticky CUDA error (illegal address, launch failure,
 * …) → STATUS_DEVICE, and from then on cuda_backend_broken() / backend_is_broken() is
 * true and every call fails with STATUS_DEVICE: the context is lost, only a new
 * process recovers (the server's liveness probe reports it; the orchestrator restarts).
 * A build without a driver or GPU: cuda_backend_create fails with STATUS_NOT_FOUND.
 *
 * Ops are asynchronous on the backend's one stream; download and sync wait for it.
 * Ownership/thread-safety: as engine/backend.h (one thread issues a backend's ops).
 */
#ifndef DIFFUSIOND_ENGINE_CUDA_BACKEND_H
#define DIFFUSIOND_ENGINE_CUDA_BACKEND_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/backend.h"

/* Which flash-attention kernel takes f16/bf16 head dims that are multiples of 8 up to
 * 160 (benchmarks and tests compare them; the default is the measured best). */
enum cuda_attention_kernel {
    CUDA_ATTENTION_DEFAULT = 0, /* LEAN_MMA (the measured best: run 7, H200) */
    CUDA_ATTENTION_PADDED,      /* one kernel per padded dim (40 → 48), two K/V stages */
    CUDA_ATTENTION_EXACT2,      /* SD's head dims (40, 64, 80, 128, 160) on kernels built
                                   for exactly them (no padding columns), two stages;
                                   other dims padded */
    CUDA_ATTENTION_EXACT3,      /* the same with three K/V stages */
    CUDA_ATTENTION_EXACT_BK128, /* the same, two stages, key tiles of 128 for head dims
                                   ≤ 80 (one 16-row tile per warp) */
    CUDA_ATTENTION_EXACT_SYNC1, /* EXACT2 with one barrier per key tile, not two */
    CUDA_ATTENTION_LEAN,        /* EXACT2 with the softmax in fewer instructions per score:
                                   no mask on whole tiles, 32-bit limits on partial ones,
                                   the scale folded into one FFMA before ex2 (a positive
                                   scale; else EXACT2) */
    CUDA_ATTENTION_LEAN_MMA,    /* LEAN with the row sums on the tensor cores (P · ones, one
                                   more mma per 16 keys) instead of one FADD per score */
};

/* The group_norm_kernel that 0 (auto) is, 1 … 4 (each falls back as it says where it
 * does not apply): 3, the cluster one-kernel path — adopted by the H200's plan table in
 * GPU run 9 (U-Net step at 2 rows 6.13 ms replayed against the one-block kernel's 6.31;
 * run 7 had moved auto from the three kernels to the one-block kernel, 0.71× at 2 rows).
 * cuda_norm.cu decides by it; cuda_plan.c leaves out the trial auto already is. */
#define CUDA_GN_AUTO_KERNEL 3

/* The kernel attention_kernel 0 (auto) is (cuda_flash.cu launches it; cuda_plan.c
 * leaves out the trial auto already is). */
#define CUDA_ATTENTION_AUTO_KERNEL CUDA_ATTENTION_LEAN_MMA

/* The planning fields of cuda_backend_options (what a plan text sets and
 * cuda_backend_set_plan changes): X(field) for each, the one list their copies and
 * comparisons expand. */
#define CUDA_PLAN_FIELDS(X)                                                              \
    X(cudnn_find) X(conv_gemm_rows) X(gemm_autotune) X(linear_stack) X(group_norm_kernel) \
    X(attention_kernel) X(attention_row_tiles) X(pdl) X(group_norm_cluster_max) X(conv_fuse)

struct cuda_backend_options {
    int device;              /* CUDA device index */
    bool allow_tf32;         /* f32 GEMMs/convolutions on TF32 tensor cores */
    bool cudnn_find;         /* per conv shape, time cuDNN's algorithms on first use
                                (slower first call) instead of its heuristic choice */
    bool pdl;                /* programmatic dependent launch of the backend's own
                                kernels on sm_90 (each overlaps its launch with the tail
                                of the kernel before it; cuda_internal.h); off by
                                default until a GPU run measures it */
    int group_norm_cluster_max; /* group_norm_kernel 3's most blocks a cluster (2, 4 or 8;
                                   0: 8); 8 can leave a partial second wave of blocks
                                   (512 at 2 rows for 396 resident), so the plan table
                                   and bench_gpu's GroupNorm table compare 4 and 2 */
    bool attention_scalar;   /* f16/bf16 attention on the f32 (CUDA-core) kernels instead
                                of the tensor-core one (tests compare both) */
    int attention_row_tiles; /* flash attention's 16-row query tiles per warp: 0 = chosen
                                per shape, 1 or 2 = always (benchmarks compare) */
    enum cuda_attention_kernel attention_kernel;
    bool gemm_autotune;      /* per GEMM shape, time cuBLASLt's candidate algorithms on
                                first use (eagerly, never in a capture) and keep the
                                fastest, instead of the heuristic's first */
    bool linear_stack;       /* linear_stack as one strided-batched GEMM (the input's
                                batch stride 0) instead of G linears (on by default:
                                measured faster, run 7) */
    int group_norm_kernel;   /* 0: CUDA_GN_AUTO_KERNEL, 1: statistics/merge/apply
                                kernels, 2: one kernel per (sample, group) where it
                                applies (f16/bf16, even group width, ≤ 128 Ki values a
                                group: every U-Net map; else 1), 3: as 2, and on sm_90
                                with few (sample, group) pairs each group split over a
                                cluster of up to 8 blocks, 4: two kernels over whole
                                positions (16-byte loads) where they apply (f16/bf16,
                                C % 8 == 0, groups of ≥ 8 channels: the U-Net's maps;
                                else as 3); benchmarks and tests compare */
    bool conv_fuse;          /* cuDNN convolutions with a bias add it (and the residual)
                                inside cuDNN's call (cudnnConvolutionBiasActivationForward
                                on IMPLICIT_PRECOMP_GEMM) instead of a kernel after it;
                                off by default until a GPU run measures it */
    int conv_gemm_rows;      /* f16/bf16 convolutions with at most this many output
                                positions (N·Ho·Wo) run as im2col + cuBLASLt GEMM instead
                                of cuDNN (small maps, where cuDNN leaves most of the GPU
                                idle); 0: never.  1×1 stride-1 ones are GEMMs always */
    enum dtype weight_dtype; /* what backend_weight_dtype reports: models load their
                                weights, and size workspaces, in it (f32, f16, bf16) */
};

/* device 0, TF32 allowed, heuristic conv algorithms, conv_gemm_rows 512 (im2col + GEMM
 * for the smallest maps, cuDNN for the rest), GEMM algorithms timed on first use
 * (gemm_autotune), linear_stack on, f32 weights; the attention and GroupNorm kernels
 * auto (CUDA_ATTENTION_AUTO_KERNEL, CUDA_GN_AUTO_KERNEL) — the plan GPU run 8 measured
 * fastest (docs/benchmarks.md). */
void cuda_backend_options_default(struct cuda_backend_options *opt);

/* No driver/GPU or device out of range → STATUS_NOT_FOUND / STATUS_INVALID_ARGUMENT;
 * a cuDNN/cuBLASLt handle that cannot be made → STATUS_DEVICE. */
enum status cuda_backend_create(const struct cuda_backend_options *opt, struct backend **out,
                                struct errbuf *err);

/* True once a sticky device error was seen (see above).  b must be a CUDA backend. */
bool cuda_backend_broken(const struct backend *b);

/* True when b is a CUDA backend. */
bool cuda_backend_is(const struct backend *b);

/* Queues a kernel that keeps b's device busy for `seconds` (0 … 1), so that the host
 * can queue the work after it before the device starts on it: device marks
 * (engine/profile.h) then time the device alone, not the host's launch pace (an eager
 * SD1.5 step at 2 rows is launch-bound).  Benchmarks only; not during a capture. */
enum status cuda_backend_hold(struct backend *b, double seconds, struct errbuf *err);

/* Changes how ops are planned — opt's cudnn_find, conv_gemm_rows, gemm_autotune,
 * linear_stack, attention_kernel, attention_row_tiles and group_norm_kernel (the
 * rest of opt is not read) — and forgets the convolution and GEMM plans made so far, so
 * that each shape is planned again on its next use (benchmarks compare the choices).
 * Not during a capture.  b must be a CUDA backend. */
void cuda_backend_set_plan(struct backend *b, const struct cuda_backend_options *opt);

/* Convolutions run so far with bias and residual inside cuDNN's call (options.conv_fuse;
 * tests tell whether cuDNN took the fused path at all). */
unsigned long cuda_backend_conv_fused_calls(const struct backend *b);

/* Bytes the backend's memory pool holds now (in use and cached). */
size_t cuda_backend_pool_bytes(const struct backend *b);

/* CUDA graphs are engine/backend.h's backend_graph_* (stream capture, thread-local mode,
 * on the backend's stream).  A failed capture → STATUS_DEVICE (the backend is not broken
 * by it); backend_graph_set_timesteps rewrites the recorded timestep_embedding kernel
 * node's by-value timesteps in the instantiated graph (cudaGraphExecKernelNodeSetParams),
 * so launches already queued keep theirs. */

#ifdef __cplusplus
}
#endif

#endif
