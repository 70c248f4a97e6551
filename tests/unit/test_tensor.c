/* tests/unit/test_tensor.c — engine/tensor.h. */
#include <stdint.h>
#include <string.h>

#include "engine/tensor.h"
#include "tests/testutil.h"

START_TEST(test_dtypes)
{
    ck_assert_uint_eq(dtype_size(DTYPE_F32), 4);
    ck_assert_uint_eq(dtype_size(DTYPE_F16), 2);
    ck_assert_uint_eq(dtype_size(DTYPE_BF16), 2);
    ck_assert_str_eq(dtype_name(DTYPE_F32), "f32");
    ck_assert_str_eq(dtype_name(DTYPE_F16), "f16");
    ck_assert_str_eq(dtype_name(DTYPE_BF16), "bf16");
    ck_assert_str_eq(dtype_name(DTYPE_COUNT_), "?");
}
END_TEST

START_TEST(test_desc_numel_nbytes)
{
    struct tensor t = tensor_desc4(DTYPE_F32, 2, 64, 64, 320);
    ck_assert_int_eq(t.ndim, 4);
    ck_assert_int_eq(tensor_numel(&t), 2 * 64 * 64 * 320);
    ck_assert_uint_eq(tensor_nbytes(&t), 2 * 64 * 64 * 320 * 4);
    ck_assert_int_eq(tensor_last_dim(&t), 320);
    ck_assert_int_eq(tensor_rows(&t), 2 * 64 * 64);
    ck_assert_ptr_null(t.data);
    ck_assert_ptr_null(t.backend);

    struct tensor h = tensor_desc3(DTYPE_F16, 1, 77, 768);
    ck_assert_int_eq(h.ndim, 3);
    ck_assert_int_eq(h.shape[3], 1); /* unused dims are 1 */
    ck_assert_uint_eq(tensor_nbytes(&h), 77 * 768 * 2);
    ck_assert_int_eq(tensor_rows(&h), 77);

    struct tensor b = tensor_desc1(DTYPE_BF16, 5);
    ck_assert_int_eq(b.ndim, 1);
    for (int i = 1; i < TENSOR_MAX_DIMS; i++)
        ck_assert_int_eq(b.shape[i], 1);
    ck_assert_uint_eq(tensor_nbytes(&b), 10);
    ck_assert_int_eq(tensor_rows(&b), 1);

    struct tensor m = tensor_desc2(DTYPE_F32, 320, 1280);
    ck_assert_int_eq(tensor_numel(&m), 320 * 1280);

    float host[6];
    struct tensor v = tensor_host(DTYPE_F32, 2, (int64_t[]){2, 3}, host);
    ck_assert_ptr_eq(v.data, host);
    ck_assert_int_eq(tensor_numel(&v), 6);
}
END_TEST

START_TEST(test_same_shape)
{
    struct tensor a = tensor_desc3(DTYPE_F32, 2, 3, 4);
    struct tensor b = tensor_desc3(DTYPE_F16, 2, 3, 4); /* dtype is not part of shape */
    struct tensor c = tensor_desc3(DTYPE_F32, 2, 4, 3);
    struct tensor d = tensor_desc4(DTYPE_F32, 2, 3, 4, 1);
    ck_assert(tensor_same_shape(&a, &b));
    ck_assert(!tensor_same_shape(&a, &c));
    ck_assert(!tensor_same_shape(&a, &d));
}
END_TEST

START_TEST(test_reshape)
{
    float data[24];
    struct tensor t = tensor_host(DTYPE_F32, 3, (int64_t[]){2, 3, 4}, data);
    ck_assert(tensor_reshape(&t, 2, (int64_t[]){6, 4}));
    ck_assert_int_eq(t.ndim, 2);
    ck_assert_int_eq(t.shape[0], 6);
    ck_assert_int_eq(t.shape[1], 4);
    ck_assert_int_eq(t.shape[2], 1);
    ck_assert_int_eq(t.shape[3], 1);
    ck_assert_ptr_eq(t.data, data);
    ck_assert(tensor_reshape(&t, 1, (int64_t[]){24}));
    ck_assert(tensor_reshape(&t, 4, (int64_t[]){1, 2, 12, 1}));
    ck_assert_int_eq(tensor_numel(&t), 24);

    struct tensor before = t;
    ck_assert(!tensor_reshape(&t, 2, (int64_t[]){5, 5}));       /* numel differs */
    ck_assert(!tensor_reshape(&t, 0, (int64_t[]){24}));         /* no dims */
    ck_assert(!tensor_reshape(&t, 5, (int64_t[]){1, 1, 1, 1, 24})); /* too many dims */
    ck_assert(!tensor_reshape(&t, 2, (int64_t[]){-4, -6}));     /* product matches, dims not */
    ck_assert(!tensor_reshape(&t, 2, (int64_t[]){24, 0}));
    ck_assert(!tensor_reshape(&t, 3, (int64_t[]){INT64_MAX, INT64_MAX, 2})); /* overflow */
    ck_assert(memcmp(&t, &before, sizeof t) == 0); /* unchanged on failure */
}
END_TEST

/* t[i]: one dim fewer, the right memory, the backend kept. */
START_TEST(test_index)
{
    uint16_t buf[3 * 2 * 5];
    struct tensor t = tensor_host(DTYPE_F16, 3, (int64_t[]){3, 2, 5}, buf);
    struct tensor p = tensor_index(&t, 2);
    ck_assert_int_eq(p.ndim, 2);
    ck_assert_int_eq(p.shape[0], 2);
    ck_assert_int_eq(p.shape[1], 5);
    ck_assert_int_eq(p.shape[2], 1);
    ck_assert_int_eq(p.dtype, DTYPE_F16);
    ck_assert_ptr_eq(p.data, buf + 2 * 10);
    ck_assert_ptr_eq(p.backend, t.backend);
}
END_TEST

START_TEST(test_describe)
{
    char buf[64];
    struct tensor t = tensor_desc4(DTYPE_F32, 2, 64, 64, 320);
    ck_assert_str_eq(tensor_describe(&t, buf, sizeof buf), "f32[2,64,64,320]");
    t = tensor_desc1(DTYPE_BF16, 7);
    ck_assert_str_eq(tensor_describe(&t, buf, sizeof buf), "bf16[7]");
    t = tensor_desc3(DTYPE_F16, 1, 77, 768);
    ck_assert_ptr_eq(tensor_describe(&t, buf, sizeof buf), buf);
    ck_assert_str_eq(buf, "f16[1,77,768]");
    t = tensor_desc2(DTYPE_F32, 123456789012LL, 3);
    ck_assert_str_eq(tensor_describe(&t, buf, sizeof buf), "f32[123456789012,3]");

    /* small buffers: a terminated prefix, nothing written past cap */
    const char *full = "f32[2,64,64,320]";
    t = tensor_desc4(DTYPE_F32, 2, 64, 64, 320);
    for (size_t cap = 1; cap <= strlen(full) + 1; cap++) {
        char small[32];
        memset(small, 0x5a, sizeof small);
        tensor_describe(&t, small, cap);
        ck_assert_uint_eq(strlen(small), cap - 1);
        ck_assert(strncmp(small, full, cap - 1) == 0);
        for (size_t i = cap; i < sizeof small; i++)
            ck_assert((unsigned char)small[i] == 0x5a);
    }
}
END_TEST

static void check_fails(const struct tensor *t, const char *expect_in_msg)
{
    struct errbuf err;
    errbuf_clear(&err);
    ck_assert_int_eq(tensor_check(t, "latents", &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(err.code, STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strncmp(err.msg, "latents: ", 9) == 0, "message does not name it: %s", err.msg);
    ck_assert_msg(strstr(err.msg, expect_in_msg) != NULL, "'%s' not in '%s'", expect_in_msg,
                  err.msg);
    ck_assert_int_eq(tensor_check(t, "latents", NULL), STATUS_INVALID_ARGUMENT);
}

START_TEST(test_check)
{
    struct errbuf err;
    errbuf_clear(&err);
    struct tensor ok = tensor_desc4(DTYPE_F16, 1, 64, 64, 4);
    ck_assert_int_eq(tensor_check(&ok, "latents", &err), STATUS_OK);
    ck_assert_int_eq(err.code, STATUS_OK);
    struct tensor one = tensor_desc1(DTYPE_F32, 1);
    ck_assert_int_eq(tensor_check(&one, "x", NULL), STATUS_OK);

    check_fails(NULL, "missing");

    struct tensor t = ok;
    t.ndim = 0;
    check_fails(&t, "0 dims");
    t.ndim = 5;
    check_fails(&t, "5 dims");
    t.ndim = -1;
    check_fails(&t, "dims");

    t = ok;
    t.dtype = DTYPE_COUNT_;
    check_fails(&t, "dtype");
    t.dtype = (enum dtype)-1;
    check_fails(&t, "dtype");

    t = tensor_desc3(DTYPE_F32, 2, 0, 3);
    check_fails(&t, "dim 1 is 0");
    t = tensor_desc2(DTYPE_F32, -5, 3);
    check_fails(&t, "dim 0 is -5");

    t = tensor_desc2(DTYPE_F32, INT64_MAX, 2);
    check_fails(&t, "too many elements");
    t = tensor_desc4(DTYPE_F32, 1 << 20, 1 << 20, 1 << 20, 1 << 20);
    check_fails(&t, "too many elements");
    /* the largest accepted: numel · 8 still fits in int64 */
    t = tensor_desc2(DTYPE_F32, (INT64_MAX / 8) / 2, 2);
    ck_assert_int_eq(tensor_check(&t, "big", NULL), STATUS_OK);
}
END_TEST

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_dtypes);
    tcase_add_test(tc, test_desc_numel_nbytes);
    tcase_add_test(tc, test_same_shape);
    tcase_add_test(tc, test_reshape);
    tcase_add_test(tc, test_index);
    tcase_add_test(tc, test_describe);
    tcase_add_test(tc, test_check);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(tensor_suite());
}
