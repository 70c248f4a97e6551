/* tests/unit/test_ops_norm.c — CPU GroupNorm (+SiLU) and LayerNorm against naive
 * two-pass references in double: NHWC and token layouts, groups = 32 with odd
 * channels per group, with and without γ/β, large means, in place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static double silu_ref(double v)
{
    return v / (1.0 + exp(-v));
}

/* --- GroupNorm ---------------------------------------------------------------- */

struct gn_case {
    int ndim;
    int64_t shape[4]; /* {N, ..., C} */
    int groups;
    bool silu, gamma, beta;
    float offset; /* x = offset + U(−2, 2) */
};

static double *gn_reference(const struct gn_case *c, const float *x, const float *gamma,
                            const float *beta, float eps)
{
    int64_t n = c->shape[0], ch = c->shape[c->ndim - 1], numel = 1;
    for (int i = 0; i < c->ndim; i++)
        numel *= c->shape[i];
    int64_t pos = numel / (n * ch), cg = ch / c->groups;
    double *y = malloc((size_t)numel * sizeof *y);
    ck_assert_ptr_nonnull(y);
    for (int64_t s = 0; s < n; s++)
        for (int64_t g = 0; g < c->groups; g++) {
            const float *xs = x + s * pos * ch;
            double sum = 0, sq = 0, cnt = (double)(pos * cg);
            for (int64_t p = 0; p < pos; p++)
                for (int64_t k = g * cg; k < (g + 1) * cg; k++)
                    sum += xs[p * ch + k];
            double mean = sum / cnt;
            for (int64_t p = 0; p < pos; p++)
                for (int64_t k = g * cg; k < (g + 1) * cg; k++)
                    sq += (xs[p * ch + k] - mean) * (xs[p * ch + k] - mean);
            double rstd = 1.0 / sqrt(sq / cnt + eps);
            for (int64_t p = 0; p < pos; p++)
                for (int64_t k = g * cg; k < (g + 1) * cg; k++) {
                    double v = (xs[p * ch + k] - mean) * rstd;
                    v = v * (gamma ? gamma[k] : 1.0) + (beta ? beta[k] : 0.0);
                    y[s * pos * ch + p * ch + k] = c->silu ? silu_ref(v) : v;
                }
        }
    return y;
}

static void gn_check(const struct gn_case *c, bool in_place, uint64_t seed)
{
    struct backend *be = test_cpu_backend();
    const float eps = 1e-5f;
    int64_t ch = c->shape[c->ndim - 1], numel = 1;
    for (int i = 0; i < c->ndim; i++)
        numel *= c->shape[i];
    float *hx = test_random_floats((size_t)numel, seed, -2.0f, 2.0f);
    for (int64_t i = 0; i < numel; i++)
        hx[i] += c->offset;
    float *hg = test_random_floats((size_t)ch, seed + 1, 0.5f, 1.5f);
    float *hb = test_random_floats((size_t)ch, seed + 2, -1.0f, 1.0f);
    double *want = gn_reference(c, hx, c->gamma ? hg : NULL, c->beta ? hb : NULL, eps);
    struct tensor x = test_tensor(be, c->ndim, c->shape, hx);
    struct tensor g = test_tensor(be, 1, &ch, hg), b = test_tensor(be, 1, &ch, hb);
    struct tensor yt = in_place ? x : test_tensor(be, c->ndim, c->shape, NULL);
    struct group_norm_params p = {c->groups, eps, c->silu, NULL};
    struct errbuf err;
    enum status s = backend_group_norm(&x, c->gamma ? &g : NULL, c->beta ? &b : NULL, &p, &yt,
                                       &err);
    ck_assert_msg(s == STATUS_OK, "%s", err.msg);
    float *got = test_download(&yt);
    char what[128];
    snprintf(what, sizeof what, "group_norm C=%lld G=%d numel=%lld silu=%d offset=%g%s",
             (long long)ch, c->groups, (long long)numel, c->silu, c->offset,
             in_place ? " in place" : "");
    /* outputs are O(1..5); f32 rounding of x − mean costs ≈ ulp(offset)·rstd
     * (≈ 1e-5 at offset 100, std 1.15), the statistics are double-accurate */
    test_assert_close(what, got, want, (size_t)numel, 2e-5 + 2e-7 * fabsf(c->offset), 1e-6);
    free(got);
    if (!in_place)
        backend_free(&yt);
    backend_free(&x);
    backend_free(&g);
    backend_free(&b);
    free(want);
    free(hx);
    free(hg);
    free(hb);
}

static const struct gn_case gn_cases[] = {
    /* ndim, shape, groups, silu, gamma, beta, offset */
    {4, {2, 8, 8, 64}, 32, false, true, true, 0},      /* SD: 2 channels per group */
    {4, {1, 5, 7, 96}, 32, true, true, true, 0},       /* odd C/groups = 3, SiLU fused */
    {4, {2, 13, 11, 320}, 32, true, true, true, 0},    /* C/groups = 10, 143 positions */
    {4, {1, 32, 32, 160}, 32, false, true, true, 0},   /* 1024 positions: many chunks */
    {3, {2, 77, 96}, 32, false, true, true, 0},        /* token layout {N, L, C} */
    {4, {2, 1, 1, 64}, 32, false, true, true, 0},      /* one position */
    {4, {1, 2, 3, 32}, 32, true, false, false, 0},     /* one channel per group, no affine */
    {4, {2, 4, 4, 12}, 4, false, true, false, 0},      /* gamma only */
    {4, {2, 4, 4, 12}, 1, true, false, true, 0},       /* beta only, one group */
    {4, {2, 16, 16, 64}, 32, false, true, true, 100},  /* |mean| ≫ std */
    {4, {1, 65, 3, 7}, 7, true, true, true, -30},      /* 195 positions, odd chunking */
};

START_TEST(test_group_norm_cases)
{
    gn_check(&gn_cases[_i], false, 10 + (uint64_t)_i);
    gn_check(&gn_cases[_i], true, 10 + (uint64_t)_i);
}
END_TEST

/* With p.shift{N,C}: the norm of x + shift (backend.c adds it, then the norm in place),
 * against the reference on x + shift computed here; out of place and in place. */
START_TEST(test_group_norm_shift)
{
    struct backend *be = test_cpu_backend();
    const struct gn_case c = {4, {2, 6, 5, 40}, 8, true, true, true, 0};
    const int64_t numel = 2 * 6 * 5 * 40, ch = 40;
    float *hx = test_random_floats((size_t)numel, 61, -2.0f, 2.0f);
    float *hs = test_random_floats(2 * 40, 62, -3.0f, 3.0f);
    float *hg = test_random_floats((size_t)ch, 63, 0.5f, 1.5f);
    float *hb = test_random_floats((size_t)ch, 64, -1.0f, 1.0f);
    float *xs = malloc((size_t)numel * sizeof *xs);
    ck_assert_ptr_nonnull(xs);
    for (int64_t i = 0; i < numel; i++)
        xs[i] = hx[i] + hs[(i / (30 * 40)) * 40 + i % 40];
    double *want = gn_reference(&c, xs, hg, hb, 1e-5f);
    struct tensor sh = test_tensor(be, 2, (int64_t[]){2, 40}, hs);
    struct tensor g = test_tensor(be, 1, &ch, hg), b = test_tensor(be, 1, &ch, hb);
    struct group_norm_params p = {8, 1e-5f, true, &sh};
    for (int in_place = 0; in_place < 2; in_place++) {
        struct tensor x = test_tensor(be, 4, c.shape, hx);
        struct tensor y = in_place ? x : test_tensor(be, 4, c.shape, NULL);
        struct errbuf err;
        ck_assert_msg(backend_group_norm(&x, &g, &b, &p, &y, &err) == STATUS_OK, "%s", err.msg);
        float *got = test_download(&y);
        test_assert_close(in_place ? "group_norm shift in place" : "group_norm shift", got,
                          want, (size_t)numel, 2e-5, 1e-6);
        free(got);
        if (!in_place)
            backend_free(&y);
        backend_free(&x);
    }
    backend_free(&sh);
    backend_free(&g);
    backend_free(&b);
    free(want);
    free(xs);
    free(hx);
    free(hs);
    free(hg);
    free(hb);
}
END_TEST

/* Constant input: variance 0 must give β (not NaN), as PyTorch does (rstd = 1/√eps). */
START_TEST(test_group_norm_constant)
{
    struct backend *be = test_cpu_backend();
    const int64_t shape[4] = {1, 4, 4, 32}, ch = 32;
    float hx[512], hb[32];
    for (int i = 0; i < 512; i++)
        hx[i] = 3.0f;
    for (int i = 0; i < 32; i++)
        hb[i] = (float)i;
    struct tensor x = test_tensor(be, 4, shape, hx), b = test_tensor(be, 1, &ch, hb);
    struct group_norm_params p = {8, 1e-5f, false, NULL};
    struct errbuf err;
    ck_assert_int_eq(backend_group_norm(&x, NULL, &b, &p, &x, &err), STATUS_OK);
    float *got = test_download(&x);
    int bad = -1;
    for (int i = 0; i < 512 && bad < 0; i++)
        if (!(fabsf(got[i] - hb[i % 32]) <= 1e-6f))
            bad = i;
    ck_assert_msg(bad < 0, "constant group: element %d", bad);
    free(got);
    backend_free(&x);
    backend_free(&b);
}
END_TEST

/* --- LayerNorm ---------------------------------------------------------------- */

struct ln_case {
    int ndim;
    int64_t shape[4];
    bool gamma, beta;
    float offset;
};

static double *ln_reference(const float *x, int64_t rows, int64_t c, const float *gamma,
                            const float *beta, float eps)
{
    double *y = malloc((size_t)(rows * c) * sizeof *y);
    ck_assert_ptr_nonnull(y);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < c; i++)
            mean += xr[i];
        mean /= (double)c;
        for (int64_t i = 0; i < c; i++)
            var += (xr[i] - mean) * (xr[i] - mean);
        double rstd = 1.0 / sqrt(var / (double)c + eps);
        for (int64_t i = 0; i < c; i++)
            y[r * c + i] = (xr[i] - mean) * rstd * (gamma ? gamma[i] : 1.0) +
                           (beta ? beta[i] : 0.0);
    }
    return y;
}

static void ln_check(const struct ln_case *c, bool in_place, uint64_t seed)
{
    struct backend *be = test_cpu_backend();
    const float eps = 1e-5f;
    int64_t ch = c->shape[c->ndim - 1], numel = 1;
    for (int i = 0; i < c->ndim; i++)
        numel *= c->shape[i];
    float *hx = test_random_floats((size_t)numel, seed, -3.0f, 3.0f);
    for (int64_t i = 0; i < numel; i++)
        hx[i] += c->offset;
    float *hg = test_random_floats((size_t)ch, seed + 1, 0.5f, 1.5f);
    float *hb = test_random_floats((size_t)ch, seed + 2, -1.0f, 1.0f);
    double *want = ln_reference(hx, numel / ch, ch, c->gamma ? hg : NULL, c->beta ? hb : NULL,
                                eps);
    struct tensor x = test_tensor(be, c->ndim, c->shape, hx);
    struct tensor g = test_tensor(be, 1, &ch, hg), b = test_tensor(be, 1, &ch, hb);
    struct tensor yt = in_place ? x : test_tensor(be, c->ndim, c->shape, NULL);
    struct errbuf err;
    enum status s = backend_layer_norm(&x, c->gamma ? &g : NULL, c->beta ? &b : NULL, eps, &yt,
                                       &err);
    ck_assert_msg(s == STATUS_OK, "%s", err.msg);
    float *got = test_download(&yt);
    char what[128];
    snprintf(what, sizeof what, "layer_norm C=%lld rows=%lld offset=%g%s", (long long)ch,
             (long long)(numel / ch), c->offset, in_place ? " in place" : "");
    /* as GroupNorm: ulp(offset)·rstd from x − mean in f32, else ~1e-6 */
    test_assert_close(what, got, want, (size_t)numel, 2e-5 + 2e-7 * fabsf(c->offset), 1e-6);
    free(got);
    if (!in_place)
        backend_free(&yt);
    backend_free(&x);
    backend_free(&g);
    backend_free(&b);
    free(want);
    free(hx);
    free(hg);
    free(hb);
}

static const struct ln_case ln_cases[] = {
    {3, {2, 77, 768}, true, true, 0},   /* CLIP ViT-L text encoder */
    {3, {2, 64, 320}, true, true, 0},   /* SD transformer block */
    {2, {5, 1}, true, true, 0},         /* one feature: output = beta */
    {1, {17}, false, false, 0},         /* one row, odd width, no affine */
    {4, {2, 3, 5, 33}, true, false, 0}, /* gamma only, 4-D */
    {2, {300, 7}, false, true, 0},      /* many short rows, beta only */
    {2, {16, 1024}, true, true, 500},   /* |mean| ≫ std */
};

START_TEST(test_layer_norm_cases)
{
    ln_check(&ln_cases[_i], false, 40 + (uint64_t)_i);
    ln_check(&ln_cases[_i], true, 40 + (uint64_t)_i);
}
END_TEST

static Suite *norm_suite(void)
{
    Suite *s = suite_create("ops_norm");
    TCase *tc = tcase_create("norm");
    tcase_add_loop_test(tc, test_group_norm_cases, 0, (int)(sizeof gn_cases / sizeof gn_cases[0]));
    tcase_add_test(tc, test_group_norm_constant);
    tcase_add_test(tc, test_group_norm_shift);
    tcase_add_loop_test(tc, test_layer_norm_cases, 0, (int)(sizeof ln_cases / sizeof ln_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(norm_suite());
}
