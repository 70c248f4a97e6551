/* tests/unit/test_profile.c — engine/profile.h on the CPU backend: attached, every op
 * dispatched through backend.c is counted under its (op, shapes) key with its time;
 * detached, nothing is; reset forgets; the printed table names the ops and shapes. */
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/profile.h"
#include "tests/testutil.h"

static struct tensor tensor2(int64_t rows, int64_t cols)
{
    const int64_t shape[2] = {rows, cols};
    float *host = malloc((size_t)(rows * cols) * sizeof *host);
    for (int64_t i = 0; i < rows * cols; i++)
        host[i] = (float)(i % 7) * 0.25f;
    struct tensor t = test_tensor(test_cpu_backend(), 2, shape, host);
    free(host);
    return t;
}

START_TEST(test_counts_keys_and_detach)
{
    struct backend *be = test_cpu_backend();
    struct errbuf err;
    struct op_profile *p;
    ck_assert_int_eq(op_profile_create(&p, &err), STATUS_OK);
    struct tensor a = tensor2(64, 32), b = tensor2(64, 32), y = tensor2(64, 32);
    struct tensor x = tensor2(16, 32), w = tensor2(24, 32), o = tensor2(16, 24);
    struct tensor x2 = tensor2(8, 32), o2 = tensor2(8, 24);

    ck_assert_int_eq(backend_add(&a, &b, &y, &err), STATUS_OK); /* not attached */
    op_profile_attach(be, p);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(backend_add(&a, &b, &y, &err), STATUS_OK);
    ck_assert_int_eq(backend_linear(&x, &w, NULL, NULL, &o, &err), STATUS_OK);
    ck_assert_int_eq(backend_linear(&x2, &w, NULL, NULL, &o2, &err), STATUS_OK);
    /* a rejected call is not dispatched, so not counted */
    ck_assert_int_eq(backend_linear(&x, &w, NULL, NULL, &o2, &err), STATUS_INVALID_ARGUMENT);
    op_profile_detach(be);
    ck_assert_int_eq(backend_add(&a, &b, &y, &err), STATUS_OK);

    ck_assert_int_eq(op_profile_calls(p, "add"), 3);
    ck_assert_int_eq(op_profile_calls(p, "linear"), 2);
    ck_assert_int_eq(op_profile_calls(p, NULL), 5);
    ck_assert(op_profile_seconds(p, "add") > 0);
    ck_assert(op_profile_seconds(p, NULL) >= op_profile_seconds(p, "linear"));

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    op_profile_print(p, "unit", 10, f);
    fclose(f);
    ck_assert_msg(strstr(text, "add x[64,32] w[64,32] y[64,32]") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "linear x[16,32] w[24,32] y[16,24]") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "linear x[8,32] w[24,32] y[8,24]") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "5 ops") != NULL, "%s", text);
    free(text);

    op_profile_reset(p);
    ck_assert_int_eq(op_profile_calls(p, NULL), 0);
    ck_assert(op_profile_seconds(p, NULL) == 0);
    op_profile_destroy(p);
    backend_free(&a);
    backend_free(&b);
    backend_free(&y);
    backend_free(&x);
    backend_free(&w);
    backend_free(&o);
    backend_free(&x2);
    backend_free(&o2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_counts_keys_and_detach);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
