/* tests/unit/test_ops_gemm.c — linear and batched matmul on the CPU backend
 * against naive double-precision references, on both GEMM paths (the AVX-512
 * kernels where the CPU has them, and the portable CBLAS path).
 *
 * Tolerance, per element: |got − want| ≤ 1e-5·√K·Σ|terms| + 1e-7, where Σ|terms|
 * is the sum of the magnitudes of everything summed into that element (products,
 * bias, residual).  f32 blocked summation typically errs by ~6e-8·√K·Σ|terms|
 * (worst case 6e-8·K·Σ|terms|), so the bound has wide margin for K ≤ ~25000
 * while a wrong index or a dropped term (error ~ one term) still fails it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_sgemm.h"
#include "tests/testutil.h"

/* Loop-test index → GEMM path: 0 the fastest available, 1 the portable one. */
static struct backend *backend_for_path(int path)
{
    struct backend *b = test_cpu_backend();
    cpu_gemm_force_portable(b, path == 1);
    return b;
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

/* --- linear -------------------------------------------------------------------- */

struct linear_case {
    int64_t rows, in, out;
    bool bias, residual;
};

/* want{rows,out} = x·wᵀ + bias + res, absum the matching magnitude sums. */
static void linear_ref(const struct linear_case *c, const float *x, const float *w,
                       const float *bias, const float *res, double *want, double *absum)
{
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t o = 0; o < c->out; o++) {
            double s = 0, a = 0;
            for (int64_t i = 0; i < c->in; i++) {
                double t = (double)x[r * c->in + i] * w[o * c->in + i];
                s += t;
                a += fabs(t);
            }
            if (bias) {
                s += bias[o];
                a += fabs(bias[o]);
            }
            if (res) {
                s += res[r * c->out + o];
                a += fabs(res[r * c->out + o]);
            }
            want[r * c->out + o] = s;
            absum[r * c->out + o] = a;
        }
}

static void run_linear(struct backend *b, const struct linear_case *c, uint64_t seed)
{
    size_t nx = (size_t)(c->rows * c->in), nw = (size_t)(c->out * c->in);
    size_t ny = (size_t)(c->rows * c->out);
    float *x = test_random_floats(nx, seed, -1, 1);
    float *w = test_random_floats(nw, seed + 1, -1, 1);
    float *bias = c->bias ? test_random_floats((size_t)c->out, seed + 2, -1, 1) : NULL;
    float *res = c->residual ? test_random_floats(ny, seed + 3, -1, 1) : NULL;
    double *want = malloc(ny * sizeof *want), *absum = malloc(ny * sizeof *absum);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(absum);
    linear_ref(c, x, w, bias, res, want, absum);

    /* x as {rows,in} (or {2, rows/2, in} when rows is even: leading dims) */
    int64_t xs2[2] = {c->rows, c->in}, xs3[3] = {2, c->rows / 2, c->in};
    int64_t ys2[2] = {c->rows, c->out}, ys3[3] = {2, c->rows / 2, c->out};
    bool three = c->rows % 2 == 0;
    int64_t ws[2] = {c->out, c->in}, bs[1] = {c->out};
    struct tensor tx = test_tensor(b, three ? 3 : 2, three ? xs3 : xs2, x);
    struct tensor tw = test_tensor(b, 2, ws, w);
    struct tensor tb = bias ? test_tensor(b, 1, bs, bias) : (struct tensor){0};
    struct tensor tr = res ? test_tensor(b, three ? 3 : 2, three ? ys3 : ys2, res)
                           : (struct tensor){0};
    struct tensor ty = test_tensor(b, three ? 3 : 2, three ? ys3 : ys2, NULL);
    struct errbuf err;
    enum status s = backend_linear(&tx, &tw, bias ? &tb : NULL, res ? &tr : NULL, &ty, &err);
    ck_assert_msg(s == STATUS_OK, "linear: %s", err.msg);
    float *got = test_download(&ty);
    char what[128];
    snprintf(what, sizeof what, "linear rows=%lld in=%lld out=%lld bias=%d res=%d path=%s",
             (long long)c->rows, (long long)c->in, (long long)c->out, c->bias, c->residual,
             cpu_gemm_uses_avx512(b) ? "avx512" : "portable");
    check_close(what, got, want, absum, ny, c->in);

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

START_TEST(test_linear_edge_shapes)
{
    struct backend *b = backend_for_path(_i);
    static const struct linear_case cases[] = {
        {1, 1, 1, false, false},     {1, 17, 5, true, false},    {3, 7, 33, false, true},
        {14, 16, 32, true, true},    {15, 31, 31, true, true},   {29, 100, 65, true, false},
        {6, 385, 40, false, true},   /* two K blocks */
        {2, 1280, 320, true, false}, /* M tiny, split over N */
        {800, 9, 800, true, true},   /* split M, N wider than one N block */
        {33, 770, 19, true, true},   /* K blocks of uneven size, N < one panel */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_linear(b, &cases[i], 100 + i);
}
END_TEST

START_TEST(test_linear_random_shapes)
{
    struct backend *b = backend_for_path(_i);
    struct test_rng rng = test_rng_make(7);
    for (int t = 0; t < 40; t++) {
        struct linear_case c = {
            .rows = test_rng_int(&rng, 1, 70), .in = test_rng_int(&rng, 1, 90),
            .out = test_rng_int(&rng, 1, 90), .bias = test_rng_int(&rng, 0, 1),
            .residual = test_rng_int(&rng, 0, 1),
        };
        run_linear(b, &c, 1000 + (uint64_t)t);
    }
}
END_TEST

/* Stacked linears: y[g] = x·w[g]ᵀ for each g, on x{2, rows, in}, against the reference
 * of each part (the CPU backend runs them as G linears on views). */
START_TEST(test_linear_stack)
{
    struct backend *b = backend_for_path(_i);
    const int64_t g = 3, rows = 10, in = 37, out = 24;
    float *x = test_random_floats((size_t)(2 * rows * in), 51, -1, 1);
    float *w = test_random_floats((size_t)(g * out * in), 52, -1, 1);
    struct tensor tx = test_tensor(b, 3, (int64_t[]){2, rows, in}, x);
    struct tensor tw = test_tensor(b, 3, (int64_t[]){g, out, in}, w);
    struct tensor ty = test_tensor(b, 4, (int64_t[]){g, 2, rows, out}, NULL);
    struct errbuf err;
    enum status s = backend_linear_stack(&tx, &tw, &ty, &err);
    ck_assert_msg(s == STATUS_OK, "linear_stack: %s", err.msg);
    float *got = test_download(&ty);
    const size_t part = (size_t)(2 * rows * out);
    double *want = malloc(part * sizeof *want), *absum = malloc(part * sizeof *absum);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(absum);
    const struct linear_case c = {2 * rows, in, out, false, false};
    for (int64_t k = 0; k < g; k++) {
        linear_ref(&c, x, w + k * out * in, NULL, NULL, want, absum);
        char what[64];
        snprintf(what, sizeof what, "linear_stack part %lld", (long long)k);
        check_close(what, got + k * (int64_t)part, want, absum, part, in);
    }
    free(want);
    free(absum);
    free(got);
    backend_free(&ty);
    backend_free(&tw);
    backend_free(&tx);
    free(w);
    free(x);
}
END_TEST

/* Thread counts other than the default: 1 (no split) and 3 (uneven split). */
START_TEST(test_linear_thread_counts)
{
    for (int threads = 1; threads <= 3; threads += 2) {
        struct backend *b = NULL;
        struct errbuf err;
        ck_assert_int_eq(cpu_backend_create(threads, &b, &err), STATUS_OK);
        cpu_gemm_force_portable(b, _i == 1);
        const struct linear_case cases[] = {
            {47, 33, 70, true, true}, {5, 64, 200, true, false}, {100, 50, 3, false, true}};
        for (size_t i = 0; i < 3; i++)
            run_linear(b, &cases[i], 500 + i);
        backend_destroy(b);
    }
}
END_TEST

/* --- matmul -------------------------------------------------------------------- */

struct matmul_case {
    int64_t batch, m, n, k;
    bool trans_b;
    float alpha;
};

static void matmul_ref(const struct matmul_case *c, const float *a, const float *bm,
                       double *want, double *absum)
{
    for (int64_t z = 0; z < c->batch; z++)
        for (int64_t i = 0; i < c->m; i++)
            for (int64_t j = 0; j < c->n; j++) {
                double s = 0, abs_s = 0;
                for (int64_t k = 0; k < c->k; k++) {
                    double bv = c->trans_b ? bm[(z * c->n + j) * c->k + k]
                                           : bm[(z * c->k + k) * c->n + j];
                    double t = (double)a[(z * c->m + i) * c->k + k] * bv;
                    s += t;
                    abs_s += fabs(t);
                }
                size_t o = (size_t)((z * c->m + i) * c->n + j);
                want[o] = c->alpha * s;
                absum[o] = fabs(c->alpha) * abs_s;
            }
}

static void run_matmul(struct backend *b, const struct matmul_case *c, uint64_t seed)
{
    size_t na = (size_t)(c->batch * c->m * c->k), nb = (size_t)(c->batch * c->k * c->n);
    size_t ny = (size_t)(c->batch * c->m * c->n);
    float *a = test_random_floats(na, seed, -1, 1);
    float *bm = test_random_floats(nb, seed + 1, -1, 1);
    double *want = malloc(ny * sizeof *want), *absum = malloc(ny * sizeof *absum);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(absum);
    matmul_ref(c, a, bm, want, absum);

    int64_t as[3] = {c->batch, c->m, c->k};
    int64_t bs[3] = {c->batch, c->trans_b ? c->n : c->k, c->trans_b ? c->k : c->n};
    int64_t ys[3] = {c->batch, c->m, c->n};
    struct tensor ta = test_tensor(b, 3, as, a);
    struct tensor tb = test_tensor(b, 3, bs, bm);
    struct tensor ty = test_tensor(b, 3, ys, NULL);
    struct errbuf err;
    enum status s = backend_matmul(&ta, &tb, c->trans_b, c->alpha, &ty, &err);
    ck_assert_msg(s == STATUS_OK, "matmul: %s", err.msg);
    float *got = test_download(&ty);
    char what[128];
    snprintf(what, sizeof what, "matmul %lldx%lldx%lldx%lld trans_b=%d alpha=%g path=%s",
             (long long)c->batch, (long long)c->m, (long long)c->n, (long long)c->k, c->trans_b,
             (double)c->alpha, cpu_gemm_uses_avx512(b) ? "avx512" : "portable");
    check_close(what, got, want, absum, ny, c->k);

    free(got);
    backend_free(&ty);
    backend_free(&tb);
    backend_free(&ta);
    free(want);
    free(absum);
    free(bm);
    free(a);
}

START_TEST(test_matmul_shapes)
{
    struct backend *b = backend_for_path(_i);
    static const struct matmul_case cases[] = {
        {1, 1, 1, 1, false, 1.0f},     {1, 1, 40, 17, true, 0.5f},
        {2, 77, 40, 40, true, 0.158f}, /* attention-like q·kᵀ */
        {2, 77, 40, 77, false, 1.0f},  /* and p·v */
        {3, 15, 33, 31, false, -2.0f}, {5, 4, 70, 9, true, 1.0f},
        {8, 20, 20, 400, true, 0.25f}, {1, 50, 100, 3, false, 1.0f},
        {1, 5, 50, 33, true, 1.0f},    {1, 30, 70, 500, true, 1.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_matmul(b, &cases[i], 300 + i);
}
END_TEST

START_TEST(test_matmul_random_shapes)
{
    struct backend *b = backend_for_path(_i);
    struct test_rng rng = test_rng_make(11);
    for (int t = 0; t < 30; t++) {
        struct matmul_case c = {
            .batch = test_rng_int(&rng, 1, 4), .m = test_rng_int(&rng, 1, 40),
            .n = test_rng_int(&rng, 1, 60), .k = test_rng_int(&rng, 1, 60),
            .trans_b = test_rng_int(&rng, 0, 1), .alpha = test_rng_uniform(&rng, -2, 2),
        };
        run_matmul(b, &c, 2000 + (uint64_t)t);
    }
}
END_TEST

/* --- validation ---------------------------------------------------------------- */

START_TEST(test_gemm_shape_errors)
{
    struct backend *b = test_cpu_backend();
    int64_t xs[2] = {4, 8}, ws[2] = {6, 7}, ys[2] = {4, 6}, bs[1] = {5};
    struct tensor x = test_tensor(b, 2, xs, NULL), w = test_tensor(b, 2, ws, NULL);
    struct tensor y = test_tensor(b, 2, ys, NULL), bias = test_tensor(b, 1, bs, NULL);
    struct errbuf err;
    /* weight {6,7} against 8 input features */
    ck_assert_int_eq(backend_linear(&x, &w, NULL, NULL, &y, &err), STATUS_INVALID_ARGUMENT);
    backend_free(&w);
    int64_t ws2[2] = {6, 8};
    w = test_tensor(b, 2, ws2, NULL);
    /* bias of 5 for 6 outputs */
    ck_assert_int_eq(backend_linear(&x, &w, &bias, NULL, &y, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(backend_linear(&x, &w, NULL, NULL, &y, &err), STATUS_OK);

    int64_t as[3] = {2, 3, 4}, bms[3] = {2, 5, 6}, ms[3] = {2, 3, 6};
    struct tensor a = test_tensor(b, 3, as, NULL), bm = test_tensor(b, 3, bms, NULL);
    struct tensor my = test_tensor(b, 3, ms, NULL);
    /* K mismatch: a{..,4} · bm{2,5,6} */
    ck_assert_int_eq(backend_matmul(&a, &bm, false, 1.0f, &my, &err), STATUS_INVALID_ARGUMENT);
    backend_free(&my);
    backend_free(&bm);
    backend_free(&a);
    backend_free(&bias);
    backend_free(&y);
    backend_free(&w);
    backend_free(&x);
}
END_TEST

static Suite *gemm_suite(void)
{
    Suite *s = suite_create("ops_gemm");
    TCase *tc = tcase_create("gemm");
    tcase_add_loop_test(tc, test_linear_edge_shapes, 0, 2);
    tcase_add_loop_test(tc, test_linear_random_shapes, 0, 2);
    tcase_add_loop_test(tc, test_linear_thread_counts, 0, 2);
    tcase_add_loop_test(tc, test_linear_stack, 0, 2);
    tcase_add_loop_test(tc, test_matmul_shapes, 0, 2);
    tcase_add_loop_test(tc, test_matmul_random_shapes, 0, 2);
    tcase_add_test(tc, test_gemm_shape_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(gemm_suite());
}
