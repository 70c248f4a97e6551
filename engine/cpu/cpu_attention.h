/* engine/cpu/cpu_attention.h — the CPU attention kernels behind cpu_attention(), with
 * the instruction-set choice exposed so that tests can run every path on one
 * machine; not public.
 *
 * Algorithm (both paths): flash-attention style.  Work items are (batch, head,
 * block of queries); each walks the keys in blocks, keeping the running row maximum
 * m, the running denominator l and the unnormalised output O of its queries in
 * per-thread scratch, rescaling them when m grows (online softmax).  Memory is
 * O(query block × (key block + head dim)) per thread; no Nq×Nk matrix exists.
 *
 *   CPU_ATTENTION_BLAS    q·kᵀ and p·v tiles (64 queries × 512 keys) via cblas_sgemm
 *                         on the strided head slices (lda = H·D); softmax with 16
 *                         partial maxima and sums a row (vectorised).  What a CPU
 *                         without AVX2 runs.
 *   CPU_ATTENTION_AVX512  queries in vector lanes: tiles of 64 queries are packed
 *                         transposed ({D, 64}); up to 8 tiles share each packed
 *                         key/value block; q·kᵀ and p·v are register-blocked FMA
 *                         kernels (6 rows × 4 vectors); softmax runs on whole
 *                         vectors with a polynomial 2^x.  ~70% of the FMA peak
 *                         per core at SD1.5's shapes (see test_ops_attention.c).
 *   CPU_ATTENTION_AVX2    the same design on 8-float vectors: one tile of 32 queries
 *                         a work item, k and v read in place, 3 rows × 4 vectors.
 *                         A query's result is its lane's alone: the same bits in
 *                         any batch (the AVX-512 path's likewise).
 */
#ifndef DIFFUSIOND_ENGINE_CPU_ATTENTION_H
#define DIFFUSIOND_ENGINE_CPU_ATTENTION_H

#include "engine/cpu/cpu_internal.h"

enum cpu_attention_path {
    CPU_ATTENTION_AUTO = 0, /* AVX-512 when the CPU has it, else AVX2, else BLAS */
    CPU_ATTENTION_BLAS,
    CPU_ATTENTION_AVX512,   /* STATUS_UNSUPPORTED where the CPU lacks AVX-512F/FMA */
    CPU_ATTENTION_AVX2,     /* STATUS_UNSUPPORTED where the CPU lacks AVX2/FMA */
};

/* cpu_attention() with an explicit path; arguments as validated by backend.c. */
enum status cpu_attention_with(struct backend *b, const struct tensor *q, const struct tensor *k,
                               const struct tensor *v, const struct attention_params *p,
                               enum cpu_attention_path path, struct tensor *y,
                               struct errbuf *err);

#endif
