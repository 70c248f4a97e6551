/* engine/cpu/cpu_conv.c — 2-D convolution on NHWC activations as an implicit GEMM.
 *
 * With output pixels as rows and (kh, kw, cin) as the reduction index, an OHWI
 * weight {Cout, KH, KW, Cin} is already the {N, K} matrix of a GEMM
 *   y{pixels, Cout} = im2col(x){pixels, KH·KW·Cin} · w{Cout, KH·KW·Cin}ᵀ,
 * so every kernel size goes through cpu_sgemm: a 1×1 stride-1 unpadded conv is a
 * plain GEMM over x itself; any other conv gathers its im2col rows while packing
 * (AVX-512 path) or one row block at a time (portable path).  Bias and residual
 * are added in the GEMM's write-back.
 */
#include "engine/cpu/cpu_internal.h"
#include "engine/cpu/cpu_sgemm.h"

/* y{N,Ho,Wo,Cout} = conv(x{N,H,W,Cin}, w{Cout,KH,KW,Cin}) + bias{Cout} + residual */
enum status cpu_conv2d(struct backend *b, const struct tensor *x, const struct tensor *w,
                       const struct tensor *bias, const struct tensor *residual,
                       const struct conv2d_params *cp, struct tensor *y, struct errbuf *err)
{
    int64_t cin = x->shape[3], cout = w->shape[0], kh = w->shape[1], kw = w->shape[2];
    struct sgemm_conv_geom g = {
        .h = x->shape[1], .w = x->shape[2], .cin = cin, .kh = kh, .kw = kw,
        .stride = cp->stride, .pad = cp->padding, .ho = y->shape[1], .wo = y->shape[2],
    };
    bool pointwise = kh == 1 && kw == 1 && cp->stride == 1 && cp->padding == 0;
    struct sgemm_problem p = {
        .batch = 1, .m = y->shape[0] * g.ho * g.wo, .n = cout, .k = kh * kw * cin,
        .a_kind = pointwise ? SGEMM_A_ROWS : SGEMM_A_IM2COL, .a = cpu_f32(x), .lda = cin,
        .conv = g,
        .b = cpu_f32(w), .ldb = kh * kw * cin, .b_trans = true,
        .c = cpu_f32(y), .ldc = cout, .alpha = 1.0f,
        .bias = bias ? cpu_f32(bias) : NULL,
        .residual = residual ? cpu_f32(residual) : NULL,
    };
    return cpu_sgemm_run(cpu_of(b), &p, err);
}
