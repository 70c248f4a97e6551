/* tests/unit/test_ops_conv.c — conv2d (NHWC, OHWI weights) on the CPU backend
 * against a naive double-precision reference, on both GEMM paths (AVX-512 kernels
 * where the CPU has them, and the portable im2col + CBLAS path).
 *
 * Tolerance, per element: |got − want| ≤ 1e-5·√K·Σ|terms| + 1e-7 with
 * K = KH·KW·Cin and Σ|terms| the sum of the magnitudes of every product, bias and
 * residual summed into the element (see test_ops_gemm.c for the reasoning).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_sgemm.h"
#include "tests/testutil.h"

struct conv_case {
    int64_t n, h, w, cin, cout, k; /* square kernel k×k */
    int stride, pad;
    bool bias, residual;
};

static int64_t out_size(int64_t in, int64_t k, int stride, int pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

static struct backend *backend_for_path(int path)
{
    struct backend *b = test_cpu_backend();
    cpu_gemm_force_portable(b, path == 1);
    return b;
}

static void conv_ref(const struct conv_case *c, const float *x, const float *w,
                     const float *bias, const float *res, double *want, double *absum)
{
    int64_t ho = out_size(c->h, c->k, c->stride, c->pad);
    int64_t wo = out_size(c->w, c->k, c->stride, c->pad);
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t oh = 0; oh < ho; oh++)
            for (int64_t ow = 0; ow < wo; ow++)
                for (int64_t co = 0; co < c->cout; co++) {
                    double s = 0, a = 0;
                    for (int64_t kh = 0; kh < c->k; kh++)
                        for (int64_t kw = 0; kw < c->k; kw++) {
                            int64_t ih = oh * c->stride - c->pad + kh;
                            int64_t iw = ow * c->stride - c->pad + kw;
                            if (ih < 0 || ih >= c->h || iw < 0 || iw >= c->w)
                                continue;
                            const float *xp = x + ((n * c->h + ih) * c->w + iw) * c->cin;
                            const float *wp = w + ((co * c->k + kh) * c->k + kw) * c->cin;
                            for (int64_t ci = 0; ci < c->cin; ci++) {
                                double t = (double)xp[ci] * wp[ci];
                                s += t;
                                a += fabs(t);
                            }
                        }
                    size_t o = (size_t)(((n * ho + oh) * wo + ow) * c->cout + co);
                    if (bias) {
                        s += bias[co];
                        a += fabs(bias[co]);
                    }
                    if (res) {
                        s += res[o];
                        a += fabs(res[o]);
                    }
                    want[o] = s;
                    absum[o] = a;
                }
}

static void check_close(const char *what, const float *got, const double *want,
                        const double *absum, size_t n, int64_t k)
{
    /* one ck_assert for the first bad element: Check records every assertion it
     * passes, which would dominate the run time over 10⁵ elements */
    double scale = 1e-5 * sqrt((double)k);
    size_t bad = n;
    for (size_t i = 0; i < n && bad == n; i++)
        if (!(fabs((double)got[i] - want[i]) <= scale * absum[i] + 1e-7))
            bad = i;
    ck_assert_msg(bad == n, "%s: element %zu: got %.9g want %.9g (bound %.3g)", what, bad,
                  bad < n ? (double)got[bad] : 0.0, bad < n ? want[bad] : 0.0,
                  bad < n ? scale * absum[bad] + 1e-7 : 0.0);
}

static void run_conv(struct backend *b, const struct conv_case *c, uint64_t seed)
{
    int64_t ho = out_size(c->h, c->k, c->stride, c->pad);
    int64_t wo = out_size(c->w, c->k, c->stride, c->pad);
    size_t nx = (size_t)(c->n * c->h * c->w * c->cin);
    size_t nw = (size_t)(c->cout * c->k * c->k * c->cin);
    size_t ny = (size_t)(c->n * ho * wo * c->cout);
    float *x = test_random_floats(nx, seed, -1, 1);
    float *w = test_random_floats(nw, seed + 1, -1, 1);
    float *bias = c->bias ? test_random_floats((size_t)c->cout, seed + 2, -1, 1) : NULL;
    float *res = c->residual ? test_random_floats(ny, seed + 3, -1, 1) : NULL;
    double *want = malloc(ny * sizeof *want), *absum = malloc(ny * sizeof *absum);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(absum);
    conv_ref(c, x, w, bias, res, want, absum);

    int64_t xs[4] = {c->n, c->h, c->w, c->cin}, ws[4] = {c->cout, c->k, c->k, c->cin};
    int64_t ys[4] = {c->n, ho, wo, c->cout}, bs[1] = {c->cout};
    struct tensor tx = test_tensor(b, 4, xs, x), tw = test_tensor(b, 4, ws, w);
    struct tensor tb = bias ? test_tensor(b, 1, bs, bias) : (struct tensor){0};
    struct tensor tr = res ? test_tensor(b, 4, ys, res) : (struct tensor){0};
    struct tensor ty = test_tensor(b, 4, ys, NULL);
    struct conv2d_params p = {.stride = c->stride, .padding = c->pad};
    struct errbuf err;
    enum status s = backend_conv2d(&tx, &tw, bias ? &tb : NULL, res ? &tr : NULL, &p, &ty, &err);
    ck_assert_msg(s == STATUS_OK, "conv2d: %s", err.msg);
    float *got = test_download(&ty);
    char what[160];
    snprintf(what, sizeof what,
             "conv n=%lld %lldx%lldx%lld->%lld k=%lld s=%d p=%d bias=%d res=%d path=%s",
             (long long)c->n, (long long)c->h, (long long)c->w, (long long)c->cin,
             (long long)c->cout, (long long)c->k, c->stride, c->pad, c->bias, c->residual,
             cpu_gemm_uses_avx512(b) ? "avx512" : "portable");
    check_close(what, got, want, absum, ny, c->k * c->k * c->cin);

    free(got);
    backend_free(&ty);
    backend_free(&tr);
    backend_free(&tb);
    backend_free(&tw);
    backend_free(&tx);
    free(want);
    free(absum);
    free(res);
    free(bias);
    free(w);
    free(x);
}

START_TEST(test_conv_edge_shapes)
{
    struct backend *b = backend_for_path(_i);
    static const struct conv_case cases[] = {
        /* n  h  w  cin cout k  s  p  bias  res */
        {1, 7, 9, 3, 5, 3, 1, 1, true, false},     /* odd channels, padded 3×3 */
        {2, 7, 9, 3, 5, 3, 2, 1, true, true},      /* stride 2 */
        {1, 8, 8, 16, 32, 1, 1, 0, true, true},    /* pointwise: plain GEMM */
        {2, 5, 6, 17, 33, 1, 2, 0, false, true},   /* 1×1 stride 2 (im2col) */
        {1, 4, 5, 6, 7, 1, 1, 1, true, false},     /* 1×1 with padding */
        {1, 9, 7, 5, 4, 5, 1, 2, true, true},      /* 5×5 */
        {1, 6, 7, 4, 9, 2, 2, 0, false, false},    /* 2×2 stride 2 */
        {1, 3, 3, 2, 3, 3, 1, 0, false, false},    /* output 1×1 */
        {1, 1, 1, 8, 70, 3, 1, 1, true, true},     /* 1-pixel image: only centre tap */
        {1, 5, 6, 200, 40, 3, 1, 1, true, true},   /* K blocks cross taps */
        {1, 2, 2, 64, 300, 3, 1, 1, true, false},  /* few pixels, many outputs */
        {2, 16, 16, 8, 8, 3, 2, 1, true, true},    /* M ≫ N */
        {1, 4, 4, 400, 8, 3, 1, 1, true, true},    /* row strips, cin in two K blocks */
        {1, 3, 30, 4, 6, 3, 1, 1, true, true},     /* three strips per output row */
        {1, 2, 3, 5, 6, 1, 1, 2, true, true},      /* rows and columns of padding only */
        {1, 3, 3, 50, 100, 3, 1, 1, true, true},   /* few pixels: weight broadcast, K > 384 */
        {1, 12, 12, 100, 20, 3, 2, 1, true, true}, /* stride 2, K blocks cross taps */
        {2, 330, 4, 400, 4, 3, 1, 1, true, true},  /* row strips in several bands */
        {1, 10, 10, 400, 96, 3, 1, 1, true, true}, /* row strips, K blocks outermost */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_conv(b, &cases[i], 100 + i);
}
END_TEST

START_TEST(test_conv_random_shapes)
{
    struct backend *b = backend_for_path(_i);
    struct test_rng rng = test_rng_make(5);
    static const int ksizes[] = {1, 1, 3, 3, 2, 5};
    for (int t = 0; t < 30; t++) {
        struct conv_case c = {
            .n = test_rng_int(&rng, 1, 2), .h = test_rng_int(&rng, 1, 10),
            .w = test_rng_int(&rng, 1, 10), .cin = test_rng_int(&rng, 1, 40),
            .cout = test_rng_int(&rng, 1, 40), .k = ksizes[test_rng_int(&rng, 0, 5)],
            .stride = test_rng_int(&rng, 1, 2), .pad = test_rng_int(&rng, 0, 2),
            .bias = test_rng_int(&rng, 0, 1), .residual = test_rng_int(&rng, 0, 1),
        };
        if (c.h + 2 * c.pad < c.k || c.w + 2 * c.pad < c.k)
            c.pad = (int)c.k; /* keep the kernel inside the padded image */
        run_conv(b, &c, 1000 + (uint64_t)t);
    }
}
END_TEST

/* Thread counts other than the default: 1 (no split) and 3 (uneven pieces), on
 * shapes that take each way of feeding the kernels. */
START_TEST(test_conv_thread_counts)
{
    static const struct conv_case cases[] = {
        {1, 9, 11, 20, 12, 3, 1, 1, true, true},  /* row strips */
        {1, 3, 4, 30, 50, 3, 1, 1, true, true},   /* weight broadcast */
        {1, 9, 11, 20, 12, 3, 2, 1, true, true},  /* packed im2col */
        {2, 5, 7, 24, 10, 1, 1, 0, true, true},   /* pointwise */
    };
    for (int threads = 1; threads <= 3; threads += 2) {
        struct backend *b = NULL;
        struct errbuf err;
        ck_assert_int_eq(cpu_backend_create(threads, &b, &err), STATUS_OK);
        cpu_gemm_force_portable(b, _i == 1);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            run_conv(b, &cases[i], 700 + i);
        backend_destroy(b);
    }
}
END_TEST

START_TEST(test_conv_shape_errors)
{
    struct backend *b = test_cpu_backend();
    int64_t xs[4] = {1, 6, 6, 4}, ws[4] = {8, 3, 3, 5}, ys[4] = {1, 6, 6, 8};
    struct tensor x = test_tensor(b, 4, xs, NULL), w = test_tensor(b, 4, ws, NULL);
    struct tensor y = test_tensor(b, 4, ys, NULL);
    struct conv2d_params p = {.stride = 1, .padding = 1};
    struct errbuf err;
    /* weight Cin 5 against input Cin 4 */
    ck_assert_int_eq(backend_conv2d(&x, &w, NULL, NULL, &p, &y, &err), STATUS_INVALID_ARGUMENT);
    backend_free(&w);
    int64_t ws2[4] = {8, 3, 3, 4};
    w = test_tensor(b, 4, ws2, NULL);
    /* output 6×6 but stride 2 gives 3×3 */
    struct conv2d_params p2 = {.stride = 2, .padding = 1};
    ck_assert_int_eq(backend_conv2d(&x, &w, NULL, NULL, &p2, &y, &err), STATUS_INVALID_ARGUMENT);
    struct conv2d_params p3 = {.stride = 3, .padding = 1};
    ck_assert_int_eq(backend_conv2d(&x, &w, NULL, NULL, &p3, &y, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(backend_conv2d(&x, &w, NULL, NULL, &p, &y, &err), STATUS_OK);
    backend_free(&y);
    backend_free(&w);
    backend_free(&x);
}
END_TEST

static Suite *conv_suite(void)
{
    Suite *s = suite_create("ops_conv");
    TCase *tc = tcase_create("conv");
    tcase_add_loop_test(tc, test_conv_edge_shapes, 0, 2);
    tcase_add_loop_test(tc, test_conv_random_shapes, 0, 2);
    tcase_add_loop_test(tc, test_conv_thread_counts, 0, 2);
    tcase_add_test(tc, test_conv_shape_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(conv_suite());
}
