/* tests/unit/test_backend_validation.c — engine/backend.c rejects wrong shapes,
 * dtypes, missing or unallocated tensors, tensors of another backend and bad
 * parameters with STATUS_INVALID_ARGUMENT and a message that names the op, before
 * the backend runs (the output is left untouched). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_backend.h"
#include "tests/testutil.h"

#define SENTINEL 12345.0f

/* Allocated f32 tensor filled with SENTINEL. */
static struct tensor make(int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    const int64_t shape[4] = {d0, d1, d2, d3};
    struct tensor t = test_tensor(test_cpu_backend(), ndim, shape, NULL);
    float *p = t.data;
    for (int64_t i = 0; i < tensor_numel(&t); i++)
        p[i] = SENTINEL;
    return t;
}

static void expect_invalid(enum status s, const struct errbuf *err, const char *op,
                           const char *what)
{
    ck_assert_msg(s == STATUS_INVALID_ARGUMENT, "%s (%s): got %s: %s", op, what, status_name(s),
                  err->msg);
    ck_assert_msg(strstr(err->msg, op) != NULL, "%s (%s): message '%s' does not name the op", op,
                  what, err->msg);
}

static void expect_untouched(const struct tensor *t)
{
    const float *p = t->data;
    int64_t written = 0;
    for (int64_t i = 0; i < tensor_numel(t); i++)
        written += p[i] != SENTINEL;
    ck_assert_msg(written == 0, "%lld outputs written by rejected calls", (long long)written);
}

START_TEST(test_attention_rejects)
{
    struct errbuf err;
    struct tensor q = make(3, 2, 10, 64, 1), k = make(3, 2, 7, 64, 1), v = make(3, 2, 7, 64, 1);
    struct tensor y = make(3, 2, 10, 64, 1), q2 = make(2, 20, 64, 1, 1);
    struct tensor k_short = make(3, 2, 7, 32, 1), v_other = make(3, 2, 8, 64, 1);
    struct tensor k_batch = make(3, 1, 7, 64, 1);
    struct attention_params p = {4, 0.25f, false}, bad_heads = {3, 0.25f, false};
    struct attention_params zero_heads = {0, 0.25f, false}, causal = {4, 0.25f, true};

    expect_invalid(backend_attention(&q2, &k, &v, &p, &y, &err), &err, "attention", "2-D q");
    expect_invalid(backend_attention(&q, &k_short, &v, &p, &y, &err), &err, "attention",
                   "k features");
    expect_invalid(backend_attention(&q, &k, &v_other, &p, &y, &err), &err, "attention",
                   "k/v lengths");
    expect_invalid(backend_attention(&q, &k_batch, &k_batch, &p, &y, &err), &err, "attention",
                   "k batch");
    expect_invalid(backend_attention(&q, &k, &v, &bad_heads, &y, &err), &err, "attention",
                   "heads not dividing");
    expect_invalid(backend_attention(&q, &k, &v, &zero_heads, &y, &err), &err, "attention",
                   "zero heads");
    expect_invalid(backend_attention(&q, &k, &v, NULL, &y, &err), &err, "attention",
                   "no params");
    expect_invalid(backend_attention(&q, &k, &v, &causal, &y, &err), &err, "attention",
                   "causal Nq != Nk");
    expect_invalid(backend_attention(&q, &k, NULL, &p, &y, &err), &err, "attention",
                   "missing v");
    expect_invalid(backend_attention(&q, &k, &v, &p, &k, &err), &err, "attention",
                   "output shape");
    struct tensor q_f16 = q; /* same memory, other dtype: a mixed-precision call */
    q_f16.dtype = DTYPE_F16;
    expect_invalid(backend_attention(&q_f16, &k, &v, &p, &y, &err), &err, "attention",
                   "dtype");
    struct tensor unalloc = tensor_desc3(DTYPE_F32, 2, 10, 64);
    expect_invalid(backend_attention(&q, &k, &v, &p, &unalloc, &err), &err, "attention",
                   "unallocated output");
    expect_untouched(&y);

    struct backend *other;
    ck_assert_int_eq(cpu_backend_create(1, &other, &err), STATUS_OK);
    const int64_t qs[3] = {2, 10, 64};
    struct tensor q_other = test_tensor(other, 3, qs, NULL);
    expect_invalid(backend_attention(&q_other, &k, &v, &p, &y, &err), &err, "attention",
                   "other backend");
    backend_free(&q_other);
    backend_destroy(other);

    struct tensor *all[] = {&q, &k, &v, &y, &q2, &k_short, &v_other, &k_batch};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        backend_free(all[i]);
}
END_TEST

START_TEST(test_norm_rejects)
{
    struct errbuf err;
    struct tensor x = make(4, 2, 4, 4, 64), y = make(4, 2, 4, 4, 64), x2 = make(2, 8, 64, 1, 1);
    struct tensor g = make(1, 64, 1, 1, 1), g_bad = make(1, 32, 1, 1, 1);
    struct tensor y_bad = make(4, 2, 4, 4, 32);
    struct group_norm_params p = {32, 1e-5f, false, NULL}, odd = {3, 1e-5f, false, NULL};
    struct group_norm_params no_eps = {32, 0.0f, false, NULL}, nan_eps = {32, NAN, false, NULL};

    expect_invalid(backend_group_norm(&x, &g, &g, &odd, &y, &err), &err, "group_norm",
                   "C % groups");
    expect_invalid(backend_group_norm(&x, &g, &g, &no_eps, &y, &err), &err, "group_norm",
                   "eps 0");
    expect_invalid(backend_group_norm(&x, &g, &g, &nan_eps, &y, &err), &err, "group_norm",
                   "eps NaN");
    expect_invalid(backend_group_norm(&x, &g, &g, NULL, &y, &err), &err, "group_norm",
                   "no params");
    expect_invalid(backend_group_norm(&x, &g_bad, NULL, &p, &y, &err), &err, "group_norm",
                   "gamma length");
    expect_invalid(backend_group_norm(&x, NULL, &g_bad, &p, &y, &err), &err, "group_norm",
                   "beta length");
    expect_invalid(backend_group_norm(&x2, &g, &g, &p, &x2, &err), &err, "group_norm",
                   "2-D input");
    expect_invalid(backend_group_norm(&x, &g, &g, &p, &y_bad, &err), &err, "group_norm",
                   "output shape");
    expect_invalid(backend_group_norm(NULL, &g, &g, &p, &y, &err), &err, "group_norm",
                   "missing input");
    struct tensor sh_c = make(2, 2, 32, 1, 1), sh_n = make(2, 1, 64, 1, 1);
    struct tensor sh_3d = make(3, 2, 1, 64, 1);
    struct group_norm_params ps = p;
    ps.shift = &sh_c;
    expect_invalid(backend_group_norm(&x, &g, &g, &ps, &y, &err), &err, "group_norm",
                   "shift channels");
    ps.shift = &sh_n;
    expect_invalid(backend_group_norm(&x, &g, &g, &ps, &y, &err), &err, "group_norm",
                   "shift samples");
    ps.shift = &sh_3d;
    expect_invalid(backend_group_norm(&x, &g, &g, &ps, &y, &err), &err, "group_norm",
                   "3-D shift");
    backend_free(&sh_c);
    backend_free(&sh_n);
    backend_free(&sh_3d);

    expect_invalid(backend_layer_norm(&x, &g_bad, NULL, 1e-5f, &y, &err), &err, "layer_norm",
                   "gamma length");
    expect_invalid(backend_layer_norm(&x, &g, &g, 0.0f, &y, &err), &err, "layer_norm", "eps 0");
    expect_invalid(backend_layer_norm(&x, &g, &g, 1e-5f, &y_bad, &err), &err, "layer_norm",
                   "output shape");
    expect_untouched(&y);

    struct tensor *all[] = {&x, &y, &x2, &g, &g_bad, &y_bad};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        backend_free(all[i]);
}
END_TEST

START_TEST(test_elementwise_rejects)
{
    struct errbuf err;
    struct tensor a = make(4, 2, 4, 4, 8), y = make(4, 2, 4, 4, 8);
    struct tensor b_bad = make(4, 2, 3, 1, 8), b_3d = make(3, 2, 16, 8, 1);
    struct tensor y_half = make(4, 2, 4, 4, 4), y_up = make(4, 2, 8, 8, 8);
    struct tensor y_up_bad = make(4, 2, 8, 3, 8), y_cat_bad = make(4, 2, 4, 4, 15);
    struct tensor t_out = make(2, 3, 16, 1, 1), x_odd = make(2, 3, 7, 1, 1);
    const float alpha[2] = {1, 1}, beta[2] = {1, 1}, times[3] = {1, 2, 3};

    expect_invalid(backend_add(&a, &b_bad, &y, &err), &err, "add", "not broadcastable");
    expect_invalid(backend_mul(&a, &b_3d, &y, &err), &err, "mul", "ndim");
    expect_invalid(backend_add(&a, &a, &y_half, &err), &err, "add", "output shape");
    expect_invalid(backend_gelu(&a, (enum gelu_kind)7, &y, &err), &err, "gelu", "kind");
    expect_invalid(backend_gelu(&a, GELU_ERF, &y_half, &err), &err, "gelu", "output shape");
    expect_invalid(backend_silu(&a, &y_half, &err), &err, "silu", "output shape");
    expect_invalid(backend_geglu(&a, &y, &err), &err, "geglu", "output not half");
    expect_invalid(backend_geglu(&x_odd, &x_odd, &err), &err, "geglu", "odd input");
    expect_invalid(backend_axpby(&a, &y, NULL, beta, &y, &err), &err, "axpby", "no alpha");
    expect_invalid(backend_axpby(&a, &y_half, alpha, beta, &y, &err), &err, "axpby", "shapes");
    /* a {2,4,4,8}: rows of 128 elements = y_half {2,4,4,4} whole; x_odd has 21 */
    const struct tensor *fit[2] = {&y_half, &y_half}, *small[2] = {&x_odd, &x_odd};
    const struct tensor *mixed[2] = {&y_half, &x_odd};
    expect_invalid(backend_gather_rows(small, NULL, 2, &a, &err), &err, "gather_rows",
                   "row size");
    expect_invalid(backend_gather_rows(fit, NULL, 1, &a, &err), &err, "gather_rows",
                   "row count");
    expect_invalid(backend_gather_rows(mixed, NULL, 2, &a, &err), &err, "gather_rows",
                   "a row of another size");
    expect_invalid(backend_gather_rows(NULL, NULL, 2, &a, &err), &err, "gather_rows", "no rows");
    expect_invalid(backend_upsample_nearest(&a, &y_up_bad, &err), &err, "upsample",
                   "output narrower than input");
    expect_invalid(backend_upsample_nearest(&b_3d, &y_up, &err), &err, "upsample", "3-D");
    expect_invalid(backend_concat_channels(&a, &a, &y_cat_bad, &err), &err, "concat",
                   "channels");
    expect_invalid(backend_concat_channels(&a, &y_half, &y_cat_bad, &err), &err, "concat",
                   "channels");

    struct timestep_embedding_params tp = {16, true, 0.0f, 10000.0f};
    struct timestep_embedding_params odd = {15, true, 0.0f, 10000.0f};
    struct timestep_embedding_params zero_div = {16, true, 8.0f, 10000.0f};
    struct timestep_embedding_params bad_period = {16, true, 0.0f, 0.0f};
    expect_invalid(backend_timestep_embedding(NULL, &tp, &t_out, &err), &err,
                   "timestep_embedding", "no timesteps");
    expect_invalid(backend_timestep_embedding(times, &odd, &t_out, &err), &err,
                   "timestep_embedding", "odd dim");
    expect_invalid(backend_timestep_embedding(times, &zero_div, &t_out, &err), &err,
                   "timestep_embedding", "half == shift");
    expect_invalid(backend_timestep_embedding(times, &bad_period, &t_out, &err), &err,
                   "timestep_embedding", "max_period 0");
    expect_invalid(backend_timestep_embedding(times, &tp, &y, &err), &err,
                   "timestep_embedding", "output shape");
    expect_untouched(&y);
    expect_untouched(&t_out);

    struct tensor *all[] = {&a, &y, &b_bad, &b_3d, &y_half, &y_up, &y_up_bad, &y_cat_bad,
                            &t_out, &x_odd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        backend_free(all[i]);
}
END_TEST

START_TEST(test_gemm_class_rejects)
{
    struct errbuf err;
    struct tensor x = make(4, 1, 8, 8, 16), w = make(4, 32, 3, 3, 16), y = make(4, 1, 8, 8, 32);
    struct tensor w_bad = make(4, 32, 3, 3, 8), bias_bad = make(1, 16, 1, 1, 1);
    struct tensor lw = make(2, 32, 16, 1, 1), lx = make(3, 2, 5, 16, 1), ly = make(3, 2, 5, 32, 1);
    struct tensor ly_bad = make(3, 2, 4, 32, 1);
    struct conv2d_params cp = {1, 1}, bad_stride = {3, 1};

    expect_invalid(backend_conv2d(&x, &w_bad, NULL, NULL, &cp, &y, &err), &err, "conv2d",
                   "Cin");
    expect_invalid(backend_conv2d(&x, &w, NULL, NULL, &bad_stride, &y, &err), &err, "conv2d",
                   "stride 3");
    expect_invalid(backend_conv2d(&x, &w, &bias_bad, NULL, &cp, &y, &err), &err, "conv2d",
                   "bias");
    expect_invalid(backend_linear(&lx, &lw, NULL, NULL, &ly_bad, &err), &err, "linear",
                   "rows");
    expect_invalid(backend_linear(&ly, &lw, NULL, NULL, &ly, &err), &err, "linear",
                   "in features");
    expect_invalid(backend_matmul(&lx, &lx, false, 1.0f, &ly, &err), &err, "matmul", "K");
    /* stacked linears: w{G,out,in}, y{G, x's leading dims, out} */
    struct tensor sw = make(3, 3, 32, 16, 1), sy = make(4, 3, 2, 5, 32);
    struct tensor sy_g = make(4, 2, 2, 5, 32), sy_rows = make(4, 3, 2, 4, 32);
    expect_invalid(backend_linear_stack(&lx, &lw, &sy, &err), &err, "linear_stack",
                   "2-D weight");
    expect_invalid(backend_linear_stack(&lx, &sw, &sy_g, &err), &err, "linear_stack",
                   "G of the output");
    expect_invalid(backend_linear_stack(&lx, &sw, &sy_rows, &err), &err, "linear_stack",
                   "rows of the output");
    expect_invalid(backend_linear_stack(&ly, &sw, &sy, &err), &err, "linear_stack",
                   "in features");
    expect_untouched(&y);
    expect_untouched(&ly);
    expect_untouched(&sy);
    expect_untouched(&sy_g);
    expect_untouched(&sy_rows);

    struct tensor *all[] = {&x,  &w,  &y,  &w_bad, &bias_bad, &lw,     &lx,
                            &ly, &ly_bad, &sw, &sy,  &sy_g,    &sy_rows};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        backend_free(all[i]);
}
END_TEST

static Suite *validation_suite(void)
{
    Suite *s = suite_create("backend_validation");
    TCase *tc = tcase_create("validation");
    tcase_add_test(tc, test_attention_rejects);
    tcase_add_test(tc, test_norm_rejects);
    tcase_add_test(tc, test_elementwise_rejects);
    tcase_add_test(tc, test_gemm_class_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(validation_suite());
}
