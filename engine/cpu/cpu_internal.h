/* engine/cpu/cpu_internal.h — shared by the CPU backend's op files; not public.
 *
 * Each op file implements the vtable entries declared here.  Ops run on the
 * backend's pool via threadpool_parallel_for; per-thread scratch is indexed by the
 * thread argument of the loop body.
 */
#ifndef DIFFUSIOND_ENGINE_CPU_INTERNAL_H
#define DIFFUSIOND_ENGINE_CPU_INTERNAL_H

#include "engine/backend.h"
#include "engine/threadpool.h"

struct cpu_backend {
    struct backend base; /* first member: (struct backend *) casts to this */
    struct threadpool *pool;
    int n_threads;
    bool gemm_portable; /* GEMM-class ops take the CBLAS path even where the AVX-512
                           kernels run (tests compare both; cpu_sgemm.h) */
};

static inline struct cpu_backend *cpu_of(struct backend *b)
{
    return (struct cpu_backend *)b;
}

static inline float *cpu_f32(const struct tensor *t)
{
    return (float *)t->data;
}

/* Makes the BLAS library single-threaded (called once at backend creation). */
void cpu_blas_single_thread(void);

/* cpu_gemm.c / cpu_conv.c */
enum status cpu_conv2d(struct backend *b, const struct tensor *x, const struct tensor *w,
                       const struct tensor *bias, const struct tensor *residual,
                       const struct conv2d_params *p, struct tensor *y, struct errbuf *err);
enum status cpu_linear(struct backend *b, const struct tensor *x, const struct tensor *w,
                       const struct tensor *bias, const struct tensor *residual,
                       struct tensor *y, struct errbuf *err);
enum status cpu_matmul(struct backend *b, const struct tensor *a, const struct tensor *bm,
                       bool trans_b, float alpha, struct tensor *y, struct errbuf *err);

/* cpu_norm.c */
enum status cpu_group_norm(struct backend *b, const struct tensor *x, const struct tensor *gamma,
                           const struct tensor *beta, const struct group_norm_params *p,
                           struct tensor *y, struct errbuf *err);
enum status cpu_layer_norm(struct backend *b, const struct tensor *x, const struct tensor *gamma,
                           const struct tensor *beta, float eps, struct tensor *y,
                           struct errbuf *err);

/* cpu_attention.c */
enum status cpu_attention(struct backend *b, const struct tensor *q, const struct tensor *k,
                          const struct tensor *v, const struct attention_params *p,
                          struct tensor *y, struct errbuf *err);

/* cpu_elementwise.c */
enum status cpu_gelu(struct backend *b, const struct tensor *x, enum gelu_kind kind,
                     struct tensor *y, struct errbuf *err);
enum status cpu_geglu(struct backend *b, const struct tensor *x, struct tensor *y,
                      struct errbuf *err);
enum status cpu_silu(struct backend *b, const struct tensor *x, struct tensor *y,
                     struct errbuf *err);
enum status cpu_add(struct backend *b, const struct tensor *a, const struct tensor *bt,
                    struct tensor *y, struct errbuf *err);
enum status cpu_mul(struct backend *b, const struct tensor *a, const struct tensor *bt,
                    struct tensor *y, struct errbuf *err);
enum status cpu_axpby(struct backend *b, const struct tensor *x, const struct tensor *yin,
                      const float *alpha, const float *beta, struct tensor *out,
                      struct errbuf *err);
enum status cpu_upsample_nearest(struct backend *b, const struct tensor *x, struct tensor *y,
                                 struct errbuf *err);
enum status cpu_gather_rows(struct backend *b, const struct tensor *const *rows,
                            const float *scales, int n, struct tensor *dst, struct errbuf *err);
enum status cpu_concat_channels(struct backend *b, const struct tensor *a,
                                const struct tensor *bt, struct tensor *y, struct errbuf *err);
enum status cpu_timestep_embedding(struct backend *b, const float *timesteps,
                                   const struct timestep_embedding_params *p, struct tensor *y,
                                   struct errbuf *err);

#endif
