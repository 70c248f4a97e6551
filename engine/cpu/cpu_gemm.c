/* engine/cpu/cpu_gemm.c — linear and batched matmul on the CPU backend, and the
 * choice between the AVX-512 GEMM and the portable CBLAS one (cpu_sgemm.h). */
#include "engine/cpu/cpu_internal.h"
#include "engine/cpu/cpu_sgemm.h"

bool cpu_gemm_uses_avx512(const struct backend *b)
{
    const struct cpu_backend *cb = (const struct cpu_backend *)b;
    return !cb->gemm_portable && cpu_sgemm_avx512_supported();
}

void cpu_gemm_force_portable(struct backend *b, bool on)
{
    cpu_of(b)->gemm_portable = on;
}

enum status cpu_sgemm_run(struct cpu_backend *cb, const struct sgemm_problem *p,
                          struct errbuf *err)
{
    if (cpu_gemm_uses_avx512(&cb->base))
        return cpu_sgemm_avx512(cb->pool, p, err);
    return cpu_sgemm_portable(cb->pool, p, err);
}

/* y{rows,out} = x{rows,in} · w{out,in}ᵀ + bias{out} + residual{rows,out} */
enum status cpu_linear(struct backend *b, const struct tensor *x, const struct tensor *w,
                       const struct tensor *bias, const struct tensor *residual,
                       struct tensor *y, struct errbuf *err)
{
    int64_t rows = tensor_rows(x), in = tensor_last_dim(x), out = w->shape[0];
    struct sgemm_problem p = {
        .batch = 1, .m = rows, .n = out, .k = in,
        .a_kind = SGEMM_A_ROWS, .a = cpu_f32(x), .lda = in,
        .b = cpu_f32(w), .ldb = in, .b_trans = true,
        .c = cpu_f32(y), .ldc = out, .alpha = 1.0f,
        .bias = bias ? cpu_f32(bias) : NULL,
        .residual = residual ? cpu_f32(residual) : NULL,
    };
    return cpu_sgemm_run(cpu_of(b), &p, err);
}

/* y{B,M,N} = alpha · a{B,M,K} · bm{B,K,N}, or · bm{B,N,K}ᵀ with trans_b */
enum status cpu_matmul(struct backend *b, const struct tensor *a, const struct tensor *bm,
                       bool trans_b, float alpha, struct tensor *y, struct errbuf *err)
{
    int64_t batch = a->shape[0], m = a->shape[1], k = a->shape[2];
    int64_t n = y->shape[2];
    struct sgemm_problem p = {
        .batch = batch, .m = m, .n = n, .k = k,
        .a_kind = SGEMM_A_ROWS, .a = cpu_f32(a), .lda = k, .stride_a = m * k,
        .b = cpu_f32(bm), .ldb = trans_b ? k : n, .stride_b = k * n, .b_trans = trans_b,
        .c = cpu_f32(y), .ldc = n, .stride_c = m * n, .alpha = alpha,
    };
    return cpu_sgemm_run(cpu_of(b), &p, err);
}
