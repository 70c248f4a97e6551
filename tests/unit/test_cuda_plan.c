/* tests/unit/test_cuda_plan.c — the CUDA backend's plan text (engine/cuda/cuda_plan.h):
 * every key and value, the round trip through cuda_plan_format, and errors that name
 * what was wrong while leaving the options unchanged.  No GPU needed. */
#include <string.h>

#include "engine/cuda/cuda_plan.h"
#include "tests/testutil.h"

/* What cuda_backend_options_default sets for planning (that function is in the .cu). */
static struct cuda_backend_options defaults(void)
{
    struct cuda_backend_options o;
    memset(&o, 0, sizeof o);
    o.allow_tf32 = true;
    o.weight_dtype = DTYPE_F16;
    return o;
}

START_TEST(test_every_key)
{
    struct cuda_backend_options o = defaults();
    struct errbuf err;
    ck_assert_int_eq(cuda_plan_parse("gn=fused,stack=on,autotune=on,find=on,im2col=8192,"
                                     "attention=bk128,tiles=2",
                                     &o, &err),
                     STATUS_OK);
    ck_assert_int_eq(o.group_norm_kernel, 2);
    ck_assert(o.linear_stack);
    ck_assert(o.gemm_autotune);
    ck_assert(o.cudnn_find);
    ck_assert_int_eq(o.conv_gemm_rows, 8192);
    ck_assert_int_eq(o.attention_kernel, CUDA_ATTENTION_EXACT_BK128);
    ck_assert_int_eq(o.attention_row_tiles, 2);
    /* the rest untouched */
    ck_assert(o.allow_tf32);
    ck_assert_int_eq(o.weight_dtype, DTYPE_F16);
    ck_assert_int_eq(cuda_plan_parse("gn=split,stack=off,attention=padded", &o, &err), STATUS_OK);
    ck_assert_int_eq(o.group_norm_kernel, 1);
    ck_assert(!o.linear_stack);
    ck_assert(o.gemm_autotune); /* not named: kept */
    ck_assert_int_eq(o.attention_kernel, CUDA_ATTENTION_PADDED);
}
END_TEST

START_TEST(test_empty_and_default_change_nothing)
{
    struct cuda_backend_options o = defaults();
    o.linear_stack = true;
    struct cuda_backend_options before;
    memcpy(&before, &o, sizeof o);
    struct errbuf err;
    ck_assert_int_eq(cuda_plan_parse("", &o, &err), STATUS_OK);
    ck_assert_int_eq(cuda_plan_parse(NULL, &o, &err), STATUS_OK);
    ck_assert_int_eq(cuda_plan_parse("default", &o, &err), STATUS_OK);
    ck_assert_mem_eq(&o, &before, sizeof o);
}
END_TEST

START_TEST(test_later_key_wins)
{
    struct cuda_backend_options o = defaults();
    struct errbuf err;
    ck_assert_int_eq(cuda_plan_parse("gn=fused,gn=split", &o, &err), STATUS_OK);
    ck_assert_int_eq(o.group_norm_kernel, 1);
}
END_TEST

START_TEST(test_round_trip)
{
    static const char *const plans[] = {
        "gn=auto,stack=off,autotune=off,find=off,im2col=0,attention=auto,tiles=0",
        "gn=fused,stack=on,autotune=on,find=off,im2col=4096,attention=exact3,tiles=1",
        "gn=split,stack=off,autotune=off,find=on,im2col=0,attention=sync1,tiles=2",
        "gn=auto,stack=on,autotune=off,find=off,im2col=0,attention=lean,tiles=0",
        "gn=auto,stack=off,autotune=off,find=off,im2col=0,attention=lean_mma,tiles=0",
    };
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        struct cuda_backend_options o = defaults();
        struct errbuf err;
        ck_assert_int_eq(cuda_plan_parse(plans[i], &o, &err), STATUS_OK);
        char text[CUDA_PLAN_TEXT_MAX];
        cuda_plan_format(&o, text, sizeof text);
        ck_assert_str_eq(text, plans[i]);
    }
    /* the longest text fits */
    struct cuda_backend_options o = defaults();
    o.group_norm_kernel = 2;
    o.linear_stack = o.gemm_autotune = o.cudnn_find = true;
    o.conv_gemm_rows = 1 << 30;
    o.attention_kernel = CUDA_ATTENTION_EXACT_BK128;
    char text[CUDA_PLAN_TEXT_MAX];
    cuda_plan_format(&o, text, sizeof text);
    ck_assert_uint_lt(strlen(text), CUDA_PLAN_TEXT_MAX - 1);
}
END_TEST

/* text → the error must be STATUS_INVALID_ARGUMENT mentioning `names`, o unchanged. */
static void expect_error(const char *text, const char *names)
{
    struct cuda_backend_options o = defaults();
    o.conv_gemm_rows = 123;
    struct cuda_backend_options before;
    memcpy(&before, &o, sizeof o);
    struct errbuf err;
    errbuf_clear(&err);
    ck_assert_msg(cuda_plan_parse(text, &o, &err) == STATUS_INVALID_ARGUMENT, "'%s' accepted",
                  text);
    ck_assert_msg(strstr(err.msg, names) != NULL, "'%s': error '%s' does not name '%s'", text,
                  err.msg, names);
    ck_assert_mem_eq(&o, &before, sizeof o);
}

START_TEST(test_errors)
{
    expect_error("gn=fast", "gn='fast'");
    expect_error("stack=yes", "stack='yes'");
    expect_error("im2col=-1", "im2col='-1'");
    expect_error("im2col=12ab", "im2col='12ab'");
    expect_error("im2col=", "im2col=''");
    expect_error("im2col=2000000000", "im2col");
    expect_error("attention=flash", "attention='flash'");
    expect_error("tiles=3", "tiles='3'");
    expect_error("speed=max", "unknown key 'speed'");
    expect_error("gn", "'gn' is not key=value");
    expect_error("=on", "is not key=value");
    expect_error("gn=fused,", "empty item");
    expect_error(",gn=fused", "empty item");
    expect_error("gn=fused,,stack=on", "empty item");
    expect_error("gn = fused", "is not key=value");
    /* a good item before a bad one is not applied either */
    expect_error("im2col=5,gn=nope", "gn='nope'");
    char long_item[200];
    memset(long_item, 'a', sizeof long_item - 1);
    long_item[sizeof long_item - 1] = '\0';
    expect_error(long_item, "too long");
}
END_TEST

static Suite *cuda_plan_suite(void)
{
    Suite *s = suite_create("cuda_plan");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_every_key);
    tcase_add_test(tc, test_empty_and_default_change_nothing);
    tcase_add_test(tc, test_later_key_wins);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(cuda_plan_suite());
}
