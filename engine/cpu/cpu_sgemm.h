/* engine/cpu/cpu_sgemm.h — the CPU backend's own packed f32 GEMM (AVX-512), shared
 * by linear, matmul and conv2d; not public.
 *
 *   C{M,N} = alpha · A{M,K} · B{K,N} + bias{N} + residual{M,N}      (per batch item)
 *
 * A is either a row-major matrix or the implicit im2col view of an NHWC conv input
 * (never materialised: rows are gathered while packing).  B is stored {K,N} or,
 * with b_trans, {N,K} (PyTorch linear weights; OHWI conv weights seen as
 * {Cout, KH·KW·Cin}).  bias and residual are added in the write-back of the last
 * K block, so they cost no extra pass over C.
 *
 * The kernels are compiled for AVX-512 with function attributes only; the binary
 * runs anywhere, and cpu_sgemm_avx512_supported() tells whether this CPU can take
 * the path.  Where it cannot (or gemm_portable is set on the backend) the ops use
 * CBLAS, kept single-threaded and split over the backend's pool.
 *
 * Thread-safety: cpu_sgemm_run runs a parallel-for on the given pool, so it may be
 * called by the pool's owner only.
 */
#ifndef DIFFUSIOND_ENGINE_CPU_SGEMM_H
#define DIFFUSIOND_ENGINE_CPU_SGEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/threadpool.h"

enum sgemm_a_kind {
    SGEMM_A_ROWS = 0, /* a[m·lda + k] */
    SGEMM_A_IM2COL,   /* conv input x{images,h,w,cin}; row m = output pixel, k = (kh,kw,c) */
};

struct sgemm_conv_geom {
    int64_t h, w, cin;  /* input image size and channels */
    int64_t kh, kw;     /* kernel size */
    int64_t stride, pad;
    int64_t ho, wo;     /* output size; M = images · ho · wo */
};

struct sgemm_problem {
    int64_t batch;     /* independent products, each offset by the stride_* below */
    int64_t m, n, k;
    enum sgemm_a_kind a_kind;
    const float *a;
    int64_t lda, stride_a;
    struct sgemm_conv_geom conv; /* SGEMM_A_IM2COL only; then k = kh·kw·cin */
    const float *b;
    int64_t ldb, stride_b;
    bool b_trans;                /* b stored {N,K}: b[n·ldb + k]; else b[k·ldb + n] */
    float *c;
    int64_t ldc, stride_c;
    float alpha;
    const float *bias;           /* {N} or NULL */
    const float *residual;       /* laid out like c (ldc, stride_c) or NULL */
};

struct cpu_backend;

/* Runs p on the fastest path b allows (AVX-512 kernels, else CBLAS). */
enum status cpu_sgemm_run(struct cpu_backend *cb, const struct sgemm_problem *p,
                          struct errbuf *err);

/* The portable path: single-threaded CBLAS calls on blocks of p split over the
 * pool (im2col rows materialised per block into per-thread scratch), each block's
 * bias/residual added while it is still in cache. */
enum status cpu_sgemm_portable(struct threadpool *pool, const struct sgemm_problem *p,
                               struct errbuf *err);

/* True when this CPU (and OS) runs the AVX-512 kernels. */
bool cpu_sgemm_avx512_supported(void);

/* Runs p on the pool with the AVX-512 kernels; only when supported.  Fails only
 * when scratch memory cannot be allocated. */
enum status cpu_sgemm_avx512(struct threadpool *pool, const struct sgemm_problem *p,
                             struct errbuf *err);

/* Whether b's GEMM-class ops take the AVX-512 path (supported and not forced off). */
bool cpu_gemm_uses_avx512(const struct backend *b);

/* Forces b's GEMM-class ops onto the portable CBLAS path (on = true) or back to the
 * fastest available one.  For tests and benchmarks comparing the two. */
void cpu_gemm_force_portable(struct backend *b, bool on);

#endif
