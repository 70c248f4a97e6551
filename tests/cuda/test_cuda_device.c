/* tests/cuda/test_cuda_device.c — the CUDA device probe (engine/cuda/cuda_device.h).
 *
 * Built only with the CUDA backend.  Without a driver or GPU (a build machine) it
 * checks that every call fails cleanly with STATUS_NOT_FOUND and a reason; with a
 * GPU it checks the description of each device and runs the kernel self-test on it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/cuda_device.h"

START_TEST(count_is_clean)
{
    struct errbuf err;
    errbuf_clear(&err);
    int n = -1;
    enum status s = cuda_device_count(&n, &err);
    if (s == STATUS_OK) {
        ck_assert_int_gt(n, 0);
    } else {
        ck_assert_msg(s == STATUS_NOT_FOUND, "status %s: %s", status_name(s), err.msg);
        ck_assert_int_eq(n, 0);
        ck_assert_msg(err.msg[0] != '\0', "no reason given");
    }
}
END_TEST

START_TEST(describe_each_device)
{
    struct errbuf err;
    errbuf_clear(&err);
    int n = 0;
    if (cuda_device_count(&n, &err) != STATUS_OK) {
        char buf[64] = "x";
        ck_assert_int_eq(cuda_device_describe(0, buf, sizeof buf, &err), STATUS_NOT_FOUND);
        ck_assert_str_eq(buf, "");
        return;
    }
    for (int i = 0; i < n; i++) {
        char buf[256];
        ck_assert_int_eq(cuda_device_describe(i, buf, sizeof buf, &err), STATUS_OK);
        ck_assert_msg(strstr(buf, "compute ") != NULL, "description '%s'", buf);
    }
    char small[8];
    ck_assert_int_eq(cuda_device_describe(0, small, sizeof small, &err), STATUS_OK);
    ck_assert_uint_lt(strlen(small), sizeof small);
}
END_TEST

START_TEST(describe_rejects_bad_index)
{
    struct errbuf err;
    errbuf_clear(&err);
    int n = 0;
    char buf[64];
    enum status want = cuda_device_count(&n, &err) == STATUS_OK ? STATUS_INVALID_ARGUMENT
                                                                : STATUS_NOT_FOUND;
    ck_assert_int_eq(cuda_device_describe(-1, buf, sizeof buf, &err), want);
    ck_assert_int_eq(cuda_device_describe(n, buf, sizeof buf, &err), want);
}
END_TEST

START_TEST(selftest_each_device)
{
    struct errbuf err;
    errbuf_clear(&err);
    int n = 0;
    if (cuda_device_count(&n, &err) != STATUS_OK) {
        ck_assert_int_eq(cuda_device_selftest(0, &err), STATUS_NOT_FOUND);
        return;
    }
    for (int i = 0; i < n; i++) {
        enum status s = cuda_device_selftest(i, &err);
        ck_assert_msg(s == STATUS_OK, "device %d: %s", i, err.msg);
    }
}
END_TEST

START_TEST(versions)
{
    int runtime = -1, driver = -1;
    cuda_versions(&runtime, &driver);
    ck_assert_int_ge(runtime, 12000);
    ck_assert_int_ge(driver, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_device");
    TCase *tc = tcase_create("probe");
    tcase_add_test(tc, count_is_clean);
    tcase_add_test(tc, describe_each_device);
    tcase_add_test(tc, describe_rejects_bad_index);
    tcase_add_test(tc, selftest_each_device);
    tcase_add_test(tc, versions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
