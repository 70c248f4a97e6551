/* tests/unit/test_ops_elementwise.c — CPU activations, GEGLU, broadcast add/mul,
 * axpby, nearest 2× upsampling, channel concat and the timestep embedding against
 * naive references (double where arithmetic is involved), in place where allowed,
 * with sizes that split work chunks mid-row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static int64_t numel_of(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

/* --- activations ---------------------------------------------------------------- */

enum act { ACT_GELU_ERF, ACT_GELU_TANH, ACT_GELU_QUICK, ACT_SILU };

static double act_ref(enum act a, double x)
{
    switch (a) {
    case ACT_GELU_ERF: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case ACT_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case ACT_GELU_QUICK: return x / (1.0 + exp(-1.702 * x));
    case ACT_SILU: return x / (1.0 + exp(-x));
    }
    return NAN;
}

static enum status act_run(enum act a, const struct tensor *x, struct tensor *y,
                           struct errbuf *err)
{
    switch (a) {
    case ACT_GELU_ERF: return backend_gelu(x, GELU_ERF, y, err);
    case ACT_GELU_TANH: return backend_gelu(x, GELU_TANH, y, err);
    case ACT_GELU_QUICK: return backend_gelu(x, GELU_QUICK, y, err);
    case ACT_SILU: return backend_silu(x, y, err);
    }
    return STATUS_INTERNAL;
}

static const char *act_name(enum act a)
{
    static const char *names[] = {"gelu_erf", "gelu_tanh", "gelu_quick", "silu"};
    return names[a];
}

/* Every activation on 70001 values: uniform in [−10, 10] plus edge values; out of
 * place and in place. */
START_TEST(test_activations)
{
    enum act a = (enum act)_i;
    struct backend *be = test_cpu_backend();
    const int64_t n = 70001;
    float *hx = test_random_floats((size_t)n, 3 + (uint64_t)_i, -10.0f, 10.0f);
    const float edges[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-4f, -1e-4f, 5.0f, -5.0f,
                           30.0f, -30.0f, 88.0f, -88.0f, 100.0f, -100.0f, 1e4f, -1e4f};
    memcpy(hx, edges, sizeof edges);
    double *want = malloc((size_t)n * sizeof *want);
    ck_assert_ptr_nonnull(want);
    for (int64_t i = 0; i < n; i++)
        want[i] = act_ref(a, hx[i]);
    struct tensor x = test_tensor(be, 1, &n, hx), y = test_tensor(be, 1, &n, NULL);
    struct errbuf err;
    ck_assert_int_eq(act_run(a, &x, &y, &err), STATUS_OK);
    float *got = test_download(&y);
    /* Per element: |err| ≤ 2e-6·max(1, |x|).  The f32 exp is ≤ 1.3 ulp, the erf
     * approximation ≤ 5e-7 absolute (·|x|/2 in GELU); tails such as silu(−100)
     * ≈ −4e-42 may flush to 0. */
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (!(fabs(got[i] - want[i]) <= 2e-6 * fmax(1.0, fabs(hx[i]))))
            bad = i;
    ck_assert_msg(bad < 0, "%s(%.9g) = %.9g, want %.9g", act_name(a),
                  (double)hx[bad < 0 ? 0 : bad], (double)got[bad < 0 ? 0 : bad],
                  want[bad < 0 ? 0 : bad]);
    free(got);
    ck_assert_int_eq(act_run(a, &x, &x, &err), STATUS_OK); /* in place */
    got = test_download(&x);
    test_assert_close(act_name(a), got, want, (size_t)n, 2e-5, 0);
    free(got);
    backend_free(&x);
    backend_free(&y);
    free(want);
    free(hx);
}
END_TEST

START_TEST(test_activation_nan_propagates)
{
    struct backend *be = test_cpu_backend();
    const int64_t n = 3;
    const float hx[3] = {NAN, INFINITY, -INFINITY};
    struct tensor x = test_tensor(be, 1, &n, hx), y = test_tensor(be, 1, &n, NULL);
    struct errbuf err;
    for (int a = ACT_GELU_ERF; a <= ACT_SILU; a++) {
        ck_assert_int_eq(act_run((enum act)a, &x, &y, &err), STATUS_OK);
        float *got = test_download(&y);
        ck_assert_msg(isnan(got[0]), "%s(NaN) = %g", act_name((enum act)a), (double)got[0]);
        ck_assert_msg(got[1] == INFINITY, "%s(inf) = %g", act_name((enum act)a), (double)got[1]);
        free(got);
    }
    backend_free(&x);
    backend_free(&y);
}
END_TEST

/* y{rows, C} = x[:, :C]·gelu_erf(x[:, C:]) */
START_TEST(test_geglu)
{
    struct backend *be = test_cpu_backend();
    const int64_t cases[][3] = {{2, 77, 33}, {1, 1, 1}, {2, 64, 1280}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int64_t xs[3] = {cases[k][0], cases[k][1], 2 * cases[k][2]};
        const int64_t ys[3] = {cases[k][0], cases[k][1], cases[k][2]};
        int64_t rows = xs[0] * xs[1], c = ys[2];
        float *hx = test_random_floats((size_t)(rows * 2 * c), 50 + k, -6.0f, 6.0f);
        double *want = malloc((size_t)(rows * c) * sizeof *want);
        ck_assert_ptr_nonnull(want);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < c; i++)
                want[r * c + i] = hx[r * 2 * c + i] * act_ref(ACT_GELU_ERF, hx[r * 2 * c + c + i]);
        struct tensor x = test_tensor(be, 3, xs, hx), y = test_tensor(be, 3, ys, NULL);
        struct errbuf err;
        ck_assert_int_eq(backend_geglu(&x, &y, &err), STATUS_OK);
        float *got = test_download(&y);
        /* |h| ≤ 6 times gelu's 2e-6·6: 1e-4 absolute is loose, 1e-6 relative of ~36 */
        test_assert_close("geglu", got, want, (size_t)(rows * c), 2e-5, 1e-6);
        free(got);
        free(want);
        free(hx);
        backend_free(&x);
        backend_free(&y);
    }
}
END_TEST

/* --- broadcast add / mul ----------------------------------------------------------- */

struct bcast_case {
    int ndim;
    int64_t a[4], b[4];
};

static const struct bcast_case bcast_cases[] = {
    {4, {2, 3, 4, 5}, {2, 3, 4, 5}},          /* same shape */
    {4, {2, 33, 17, 320}, {2, 1, 1, 320}},    /* per-sample channel bias, chunks split rows */
    {3, {3, 77, 768}, {1, 77, 768}},          /* positional embedding onto a batch */
    {4, {2, 9, 11, 300}, {2, 9, 11, 1}},      /* per-position scalar (inner broadcast) */
    {4, {2, 5, 7, 3}, {1, 1, 1, 1}},          /* one scalar */
    {4, {2, 6, 5, 4}, {1, 6, 1, 4}},          /* alternating broadcast dims */
    {2, {1000, 129}, {1000, 1}},              /* rows × scalar, crosses chunk ends */
    {1, {40000}, {1}},                        /* 1-D scalar */
    {4, {1, 1, 1, 1}, {1, 1, 1, 1}},          /* single element */
};

static void bcast_check(const struct bcast_case *c, bool mul, bool in_place, uint64_t seed)
{
    struct backend *be = test_cpu_backend();
    int64_t na = numel_of(c->ndim, c->a), nb = numel_of(c->ndim, c->b);
    float *ha = test_random_floats((size_t)na, seed, -2.0f, 2.0f);
    float *hb = test_random_floats((size_t)nb, seed + 1, -2.0f, 2.0f);
    double *want = malloc((size_t)na * sizeof *want);
    ck_assert_ptr_nonnull(want);
    int64_t idx[4] = {0, 0, 0, 0};
    for (int64_t e = 0; e < na; e++) {
        int64_t rem = e, off = 0;
        for (int d = c->ndim - 1; d >= 0; d--) {
            idx[d] = rem % c->a[d];
            rem /= c->a[d];
        }
        for (int d = 0; d < c->ndim; d++)
            off = off * c->b[d] + (c->b[d] == 1 ? 0 : idx[d]);
        want[e] = mul ? (double)ha[e] * hb[off] : (double)ha[e] + hb[off];
    }
    struct tensor a = test_tensor(be, c->ndim, c->a, ha), b = test_tensor(be, c->ndim, c->b, hb);
    struct tensor y = in_place ? a : test_tensor(be, c->ndim, c->a, NULL);
    struct errbuf err;
    enum status s = mul ? backend_mul(&a, &b, &y, &err) : backend_add(&a, &b, &y, &err);
    ck_assert_msg(s == STATUS_OK, "%s", err.msg);
    float *got = test_download(&y);
    char what[96];
    snprintf(what, sizeof what, "%s ndim=%d numel=%lld%s", mul ? "mul" : "add", c->ndim,
             (long long)na, in_place ? " in place" : "");
    /* one f32 rounding of a value ≤ 4 */
    test_assert_close(what, got, want, (size_t)na, 0, 1e-7);
    free(got);
    if (!in_place)
        backend_free(&y);
    backend_free(&a);
    backend_free(&b);
    free(want);
    free(ha);
    free(hb);
}

START_TEST(test_broadcast)
{
    for (int mul = 0; mul < 2; mul++)
        for (int in_place = 0; in_place < 2; in_place++)
            bcast_check(&bcast_cases[_i], mul, in_place, 60 + (uint64_t)_i);
}
END_TEST

/* --- axpby ---------------------------------------------------------------------------- */

START_TEST(test_axpby)
{
    struct backend *be = test_cpu_backend();
    const int64_t shape[4] = {3, 41, 43, 9}; /* rows of 15867: chunks straddle rows */
    int64_t n = numel_of(4, shape), row = n / shape[0];
    const float alpha[3] = {0.5f, -1.25f, 0.0f}, beta[3] = {2.0f, 0.75f, -1.0f};
    float *hx = test_random_floats((size_t)n, 70, -3.0f, 3.0f);
    float *hy = test_random_floats((size_t)n, 71, -3.0f, 3.0f);
    double *want = malloc((size_t)n * sizeof *want);
    ck_assert_ptr_nonnull(want);
    for (int64_t i = 0; i < n; i++)
        want[i] = (double)alpha[i / row] * hx[i] + (double)beta[i / row] * hy[i];
    for (int mode = 0; mode < 3; mode++) { /* out separate, out = x, out = yin */
        struct tensor x = test_tensor(be, 4, shape, hx), yin = test_tensor(be, 4, shape, hy);
        struct tensor out = mode == 1 ? x : mode == 2 ? yin : test_tensor(be, 4, shape, NULL);
        struct errbuf err;
        ck_assert_int_eq(backend_axpby(&x, &yin, alpha, beta, &out, &err), STATUS_OK);
        float *got = test_download(&out);
        /* two products and a sum of values ≤ 7.5: a few f32 roundings */
        test_assert_close(mode == 0 ? "axpby" : mode == 1 ? "axpby out=x" : "axpby out=y", got,
                          want, (size_t)n, 2e-6, 0);
        free(got);
        if (mode == 0)
            backend_free(&out);
        backend_free(&x);
        backend_free(&yin);
    }
    free(want);
    free(hx);
    free(hy);
}
END_TEST

/* Rows from separate tensors of any shape with the row's element count, scaled (a
 * zero and a negative scale among them) or copied exactly (scales NULL). */
START_TEST(test_gather_rows)
{
    struct backend *be = test_cpu_backend();
    enum { N = 5 };
    const int64_t dshape[3] = {N, 7, 9}, rshape[4] = {1, 3, 3, 7};
    const size_t row = 63;
    const float scales[N] = {1.0f, 0.5f, -2.0f, 0.0f, 0.18215f};
    struct tensor rows[N];
    const struct tensor *ptrs[N];
    float *host[N];
    for (int i = 0; i < N; i++) {
        host[i] = test_random_floats(row, 80 + (uint64_t)i, -4.0f, 4.0f);
        rows[i] = test_tensor(be, 4, rshape, host[i]);
        ptrs[i] = &rows[i];
    }
    struct tensor dst = test_tensor(be, 3, dshape, NULL);
    struct errbuf err;
    for (int scaled = 0; scaled < 2; scaled++) {
        ck_assert_int_eq(backend_gather_rows(ptrs, scaled ? scales : NULL, N, &dst, &err),
                         STATUS_OK);
        float *got = test_download(&dst);
        for (int i = 0; i < N; i++)
            for (size_t e = 0; e < row; e++) {
                const float want = scaled ? scales[i] * host[i][e] : host[i][e];
                ck_assert_msg(got[i * row + e] == want, "row %d element %zu: %g, want %g", i, e,
                              (double)got[i * row + e], (double)want);
            }
        free(got);
    }
    backend_free(&dst);
    for (int i = 0; i < N; i++) {
        backend_free(&rows[i]);
        free(host[i]);
    }
}
END_TEST

/* --- upsample / concat ------------------------------------------------------------------ */

/* PyTorch's nearest index, written here independently: floor(dst · in/out) in float,
 * clamped; exactly dst/2 for 2× (where float rounding could otherwise differ). */
static int64_t ref_nearest(int64_t dst, int64_t in, int64_t out)
{
    if (out == 2 * in)
        return dst / 2;
    int64_t s = (int64_t)floorf((float)dst * ((float)in / (float)out));
    return s > in - 1 ? in - 1 : s;
}

START_TEST(test_upsample_nearest)
{
    struct backend *be = test_cpu_backend();
    /* {N,H,W,C} → {Ho,Wo}: exact 2×, identity, and the U-Net's odd-size targets */
    const int64_t cases[][6] = {{2, 3, 5, 7, 6, 10}, {1, 1, 1, 1, 2, 2}, {1, 32, 32, 64, 64, 64},
                                {2, 2, 3, 5, 3, 5},  {1, 3, 4, 6, 5, 7}, {1, 5, 7, 3, 9, 13},
                                {1, 4, 4, 2, 4, 9}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int64_t *xs = cases[k];
        const int64_t ys[4] = {xs[0], xs[4], xs[5], xs[3]};
        int64_t ny = numel_of(4, ys);
        float *hx = test_random_floats((size_t)numel_of(4, xs), 80 + k, -1.0f, 1.0f);
        struct tensor x = test_tensor(be, 4, xs, hx), y = test_tensor(be, 4, ys, NULL);
        struct errbuf err;
        ck_assert_int_eq(backend_upsample_nearest(&x, &y, &err), STATUS_OK);
        float *got = test_download(&y);
        int64_t bad = -1;
        for (int64_t e = 0; e < ny && bad < 0; e++) {
            int64_t c = e % ys[3], w = (e / ys[3]) % ys[2], h = (e / (ys[3] * ys[2])) % ys[1];
            int64_t n = e / (ys[3] * ys[2] * ys[1]);
            int64_t sh = ref_nearest(h, xs[1], ys[1]), sw = ref_nearest(w, xs[2], ys[2]);
            if (got[e] != hx[((n * xs[1] + sh) * xs[2] + sw) * xs[3] + c])
                bad = e;
        }
        ck_assert_msg(bad < 0, "upsample case %zu element %lld", k, (long long)bad);
        free(got);
        free(hx);
        backend_free(&x);
        backend_free(&y);
    }
}
END_TEST

START_TEST(test_concat_channels)
{
    struct backend *be = test_cpu_backend();
    const struct {
        int ndim;
        int64_t lead[3];
        int64_t ca, cb;
    } cases[] = {{4, {2, 4, 4}, 3, 5}, {3, {2, 77, 1}, 320, 1}, {4, {2, 32, 32}, 640, 320},
                 {2, {1, 1, 1}, 1, 1}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int nd = cases[k].ndim;
        int64_t as[4], bs[4], ys[4];
        for (int i = 0; i + 1 < nd; i++)
            as[i] = bs[i] = ys[i] = cases[k].lead[i];
        as[nd - 1] = cases[k].ca;
        bs[nd - 1] = cases[k].cb;
        ys[nd - 1] = cases[k].ca + cases[k].cb;
        int64_t rows = numel_of(nd - 1, ys), ca = cases[k].ca, cb = cases[k].cb;
        float *ha = test_random_floats((size_t)(rows * ca), 90 + k, -1.0f, 1.0f);
        float *hb = test_random_floats((size_t)(rows * cb), 95 + k, -1.0f, 1.0f);
        struct tensor a = test_tensor(be, nd, as, ha), b = test_tensor(be, nd, bs, hb);
        struct tensor y = test_tensor(be, nd, ys, NULL);
        struct errbuf err;
        ck_assert_int_eq(backend_concat_channels(&a, &b, &y, &err), STATUS_OK);
        float *got = test_download(&y);
        int64_t bad = -1;
        for (int64_t r = 0; r < rows && bad < 0; r++)
            if (memcmp(got + r * (ca + cb), ha + r * ca, (size_t)ca * sizeof(float)) != 0 ||
                memcmp(got + r * (ca + cb) + ca, hb + r * cb, (size_t)cb * sizeof(float)) != 0)
                bad = r;
        ck_assert_msg(bad < 0, "concat row %lld", (long long)bad);
        free(got);
        free(ha);
        free(hb);
        backend_free(&a);
        backend_free(&b);
        backend_free(&y);
    }
}
END_TEST

/* --- timestep embedding --------------------------------------------------------------- */

/* diffusers' get_timestep_embedding, with its f32 intermediate roundings (exponent,
 * frequency, argument) and sin/cos in double. */
static double *temb_reference(const float *t, int64_t n, const struct timestep_embedding_params *p)
{
    int64_t half = p->dim / 2;
    double *y = malloc((size_t)(n * p->dim) * sizeof *y);
    ck_assert_ptr_nonnull(y);
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < half; i++) {
            float exponent = (float)-log((double)p->max_period) * (float)i;
            exponent = exponent / ((float)half - p->downscale_freq_shift);
            float arg = t[r] * (float)exp((double)exponent);
            double s = sin((double)arg), c = cos((double)arg);
            y[r * p->dim + (p->flip_sin_to_cos ? half + i : i)] = s;
            y[r * p->dim + (p->flip_sin_to_cos ? i : half + i)] = c;
        }
    return y;
}

START_TEST(test_timestep_embedding)
{
    struct backend *be = test_cpu_backend();
    const float t[5] = {0.0f, 1.0f, 999.0f, 500.5f, 37.0f};
    const struct timestep_embedding_params params[] = {
        {320, true, 0.0f, 10000.0f},  /* SD1.x/2.x U-Net */
        {256, false, 1.0f, 10000.0f}, /* diffusers' default shift */
        {2, false, 0.0f, 10000.0f},   /* smallest */
        {64, true, 0.0f, 100.0f},
    };
    for (size_t k = 0; k < sizeof params / sizeof params[0]; k++) {
        const int64_t shape[2] = {5, params[k].dim};
        double *want = temb_reference(t, 5, &params[k]);
        struct tensor y = test_tensor(be, 2, shape, NULL);
        struct errbuf err;
        ck_assert_int_eq(backend_timestep_embedding(t, &params[k], &y, &err), STATUS_OK);
        float *got = test_download(&y);
        /* the f32 frequency can differ by 1 ulp from torch's exp; at t = 999 that
         * moves the argument by ~1e-4 rad at most, hence 2e-4 */
        test_assert_close("timestep_embedding", got, want, (size_t)(5 * params[k].dim), 2e-4, 0);
        /* t = 0: sin part 0, cos part 1 exactly */
        int64_t half = params[k].dim / 2, bad = -1;
        for (int64_t i = 0; i < half && bad < 0; i++)
            if (got[params[k].flip_sin_to_cos ? half + i : i] != 0.0f ||
                got[params[k].flip_sin_to_cos ? i : half + i] != 1.0f)
                bad = i;
        ck_assert_msg(bad < 0, "timestep_embedding at t = 0, frequency %lld", (long long)bad);
        free(got);
        free(want);
        backend_free(&y);
    }
}
END_TEST

/* One SD1.5 value worked out by hand: dim 320, flip, shift 0, t = 1: the first cos
 * entry is cos(1·e^0) = cos(1), the first sin entry (index 160) is sin(1), and entry
 * 161 is sin(e^(−ln(10000)/160)). */
START_TEST(test_timestep_embedding_known_values)
{
    struct backend *be = test_cpu_backend();
    const float t = 1.0f;
    const struct timestep_embedding_params p = {320, true, 0.0f, 10000.0f};
    const int64_t shape[2] = {1, 320};
    struct tensor y = test_tensor(be, 2, shape, NULL);
    struct errbuf err;
    ck_assert_int_eq(backend_timestep_embedding(&t, &p, &y, &err), STATUS_OK);
    float *got = test_download(&y);
    ck_assert_double_eq_tol(got[0], cos(1.0), 1e-7);
    ck_assert_double_eq_tol(got[160], sin(1.0), 1e-7);
    ck_assert_double_eq_tol(got[161], sin(exp(-log(10000.0) / 160.0)), 1e-6);
    free(got);
    backend_free(&y);
}
END_TEST

static Suite *elementwise_suite(void)
{
    Suite *s = suite_create("ops_elementwise");
    TCase *tc = tcase_create("elementwise");
    tcase_add_loop_test(tc, test_activations, ACT_GELU_ERF, ACT_SILU + 1);
    tcase_add_test(tc, test_activation_nan_propagates);
    tcase_add_test(tc, test_geglu);
    tcase_add_loop_test(tc, test_broadcast, 0, (int)(sizeof bcast_cases / sizeof bcast_cases[0]));
    tcase_add_test(tc, test_axpby);
    tcase_add_test(tc, test_gather_rows);
    tcase_add_test(tc, test_upsample_nearest);
    tcase_add_test(tc, test_concat_channels);
    tcase_add_test(tc, test_timestep_embedding);
    tcase_add_test(tc, test_timestep_embedding_known_values);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(elementwise_suite());
}
