/* tests/unit/test_cuda_plan.c — the CUDA backend's plan text (engine/cuda/cuda_plan.h):
 * every key and value, the round trip through cuda_plan_format, and errors that name
 * what was wrong while leaving the options unchanged.  No GPU needed. */
#include <stdio.h>
#include <string.h>

#include "engine/cuda/cuda_plan.h"
#include "tests/testutil.h"

/* What cuda_backend_options_default sets for planning (that function is in the .cu). */
/* The GroupNorm trial of the default base: the kernel gn=auto does not take. */
#define GN_TRIAL (CUDA_GN_AUTO_KERNEL == 1 ? "gn_fused" : "gn_split")
#define GN_TRIAL_KERNEL (CUDA_GN_AUTO_KERNEL == 1 ? 2 : 1)
/* The GroupNorm trials by group_norm_kernel 1 … 4. */
static const char *const GN_TRIALS[] = {NULL, "gn_split", "gn_fused", "gn_cluster", "gn_tile"};

static struct cuda_backend_options defaults(void)
{
    struct cuda_backend_options o;
    memset(&o, 0, sizeof o);
    o.allow_tf32 = true;
    o.linear_stack = true;
    o.gemm_autotune = true;
    o.conv_gemm_rows = 512;
    o.weight_dtype = DTYPE_F16;
    return o;
}

START_TEST(test_every_key)
{
    struct cuda_backend_options o = defaults();
    struct errbuf err;
    ck_assert_int_eq(cuda_plan_parse("gn=fused,stack=on,autotune=on,find=on,im2col=8192,"
                                     "attention=bk128,tiles=2,pdl=on,convfuse=on",
                                     &o, &err),
                     STATUS_OK);
    ck_assert(o.pdl);
    ck_assert(o.conv_fuse);
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
        "gn=auto,gncl=auto,stack=off,autotune=off,find=off,im2col=0,attention=auto,tiles=0,pdl=off,convfuse=off",
        "gn=fused,gncl=auto,stack=on,autotune=on,find=off,im2col=4096,attention=exact3,tiles=1,pdl=on,convfuse=on",
        "gn=split,gncl=2,stack=off,autotune=off,find=on,im2col=0,attention=sync1,tiles=2,pdl=off,convfuse=off",
        "gn=cluster,gncl=4,stack=on,autotune=on,find=off,im2col=512,attention=auto,tiles=0,pdl=off,convfuse=off",
        "gn=tile,gncl=auto,stack=on,autotune=on,find=off,im2col=512,attention=lean_mma,tiles=0,pdl=on,convfuse=on",
        "gn=auto,gncl=auto,stack=on,autotune=off,find=off,im2col=0,attention=lean,tiles=0,pdl=off,convfuse=off",
        "gn=auto,gncl=auto,stack=off,autotune=off,find=off,im2col=0,attention=lean_mma,tiles=0,pdl=on,convfuse=off",
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
    o.group_norm_kernel = 3;
    o.linear_stack = o.gemm_autotune = o.cudnn_find = true;
    o.conv_gemm_rows = 1 << 30;
    o.attention_kernel = CUDA_ATTENTION_EXACT_BK128;
    o.pdl = o.conv_fuse = true;
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
    expect_error("pdl=1", "pdl='1'");
    expect_error("gncl=3", "gncl='3'");
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

/* --- choosing by measurement ------------------------------------------------------ */

static int trial_index(const struct cuda_plan_trial *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return i;
    return -1;
}

/* Asserts that each name in the comma-separated `present` is among t[0 .. n) and none
 * in `absent` is. */
static void expect_trials(const struct cuda_plan_trial *t, int n, const char *present,
                          const char *absent)
{
    for (int want = 1; want >= 0; want--)
        for (const char *p = want ? present : absent; *p;) {
            char name[32];
            const size_t len = strcspn(p, ",");
            ck_assert_uint_lt(len, sizeof name);
            memcpy(name, p, len);
            name[len] = '\0';
            if (want)
                ck_assert_msg(trial_index(t, n, name) >= 0, "trial %s missing", name);
            else
                ck_assert_msg(trial_index(t, n, name) < 0, "trial %s not expected", name);
            p += len + (p[len] == ',');
        }
}

START_TEST(test_trials_differ_from_base)
{
    struct cuda_backend_options base = defaults();
    struct cuda_plan_trial t[CUDA_PLAN_TRIALS_MAX];
    const int n = cuda_plan_trials(&base, t, CUDA_PLAN_TRIALS_MAX);
    /* every trial but those the defaults already are: im2col_512, autotune, stacked, the
     * GroupNorm kernel auto takes, lean_mma (attention auto), no_pdl, no_convfuse */
    ck_assert_int_eq(n, 16);
    for (int k = 1; k <= 4; k++) {
        const int i = trial_index(t, n, GN_TRIALS[k]);
        if (k == CUDA_GN_AUTO_KERNEL)
            ck_assert_msg(i < 0, "trial %s is what gn=auto takes", GN_TRIALS[k]);
        else
            ck_assert_msg(i >= 0 && t[i].plan.group_norm_kernel == k, "trial %s", GN_TRIALS[k]);
    }
    expect_trials(t, n, "cudnn,heuristic,unstacked,exact2,pdl,convfuse",
                  "im2col_512,autotune,stacked,lean_mma,no_pdl,no_convfuse");
    ck_assert(t[trial_index(t, n, "pdl")].plan.pdl);
    ck_assert(t[trial_index(t, n, "convfuse")].plan.conv_fuse);
    /* the cluster sizes: the cluster kernel with at most 4 or 2 blocks a cluster */
    const int c4 = trial_index(t, n, "gn_cluster4"), c2 = trial_index(t, n, "gn_cluster2");
    ck_assert(c4 >= 0 && c2 >= 0);
    ck_assert_int_eq(t[c4].plan.group_norm_kernel, 3);
    ck_assert_int_eq(t[c4].plan.group_norm_cluster_max, 4);
    ck_assert_int_eq(t[c2].plan.group_norm_cluster_max, 2);
    ck_assert_str_eq(t[n - 1].name, "find"); /* its workspace growth after the others */
    for (int i = 0; i < n; i++) {
        ck_assert(!cuda_plan_same(&t[i].plan, &base));
        ck_assert(t[i].small_s == 0 && t[i].large_s == 0 && !t[i].excluded);
    }
    const int t1 = trial_index(t, n, "lean_mma_t1");
    ck_assert_int_ge(t1, 0);
    ck_assert_int_eq(t[t1].plan.attention_kernel, CUDA_ATTENTION_LEAN_MMA);
    ck_assert_int_eq(t[t1].plan.attention_row_tiles, 1);
    ck_assert_int_eq(t[trial_index(t, n, "im2col_2k")].plan.conv_gemm_rows, 2048);
    /* a base away from the defaults: the trials back to them, not those it already has */
    struct errbuf err;
    ck_assert_int_eq(cuda_plan_parse("gn=split,stack=off,im2col=2048,attention=exact2", &base,
                                     &err),
                     STATUS_OK);
    const int m = cuda_plan_trials(&base, t, CUDA_PLAN_TRIALS_MAX);
    ck_assert_int_eq(m, 16);
    expect_trials(t, m, "cudnn,stacked,gn_fused,lean_mma", "gn_split,unstacked,im2col_2k,exact2");
    /* max bounds the count */
    ck_assert_int_eq(cuda_plan_trials(&base, t, 2), 2);
}
END_TEST

/* The base at 10 ms (small) and 40 ms (large); trials timed as given. */
static int combine(const char *const *names, const double *small, const double *large, int k,
                   const char *exclude, struct cuda_backend_options *best)
{
    const struct cuda_backend_options base = defaults();
    struct cuda_plan_trial t[CUDA_PLAN_TRIALS_MAX];
    const int n = cuda_plan_trials(&base, t, CUDA_PLAN_TRIALS_MAX);
    for (int i = 0; i < k; i++) {
        const int j = trial_index(t, n, names[i]);
        ck_assert_int_ge(j, 0);
        t[j].small_s = small[i];
        t[j].large_s = large[i];
    }
    cuda_plan_exclude(t, n, exclude);
    return cuda_plan_combine(&base, 0.010, 0.040, t, n, best);
}

START_TEST(test_combine_takes_the_faster)
{
    struct cuda_backend_options best;
    /* the GroupNorm trial and unstacked faster; find slower; heuristic faster by < 1 %; im2col faster
     * at 2 rows but slower at 16 */
    const char *names[] = {GN_TRIAL, "unstacked", "find", "heuristic", "im2col"};
    const double small[] = {0.0090, 0.0097, 0.0110, 0.00995, 0.0080};
    const double large[] = {0.0380, 0.0400, 0.0400, 0.0390, 0.0420};
    ck_assert_int_eq(combine(names, small, large, 5, NULL, &best), 2);
    ck_assert_int_eq(best.group_norm_kernel, GN_TRIAL_KERNEL);
    ck_assert(!best.linear_stack);
    ck_assert(!best.cudnn_find && best.gemm_autotune);
    ck_assert_int_eq(best.conv_gemm_rows, 512);
    /* nothing faster: the base */
    const double slow[] = {0.011, 0.012, 0.013, 0.014, 0.015};
    ck_assert_int_eq(combine(names, slow, large, 5, NULL, &best), 0);
    const struct cuda_backend_options base = defaults();
    ck_assert(cuda_plan_same(&best, &base));
    /* unmeasured trials (0) are never taken */
    ck_assert_int_eq(combine(NULL, NULL, NULL, 0, NULL, &best), 0);
}
END_TEST

START_TEST(test_combine_one_choice_per_field)
{
    struct cuda_backend_options best;
    /* lean fastest, then lean_mma_t1 (attention + tiles): t1 is left out whole — no
     * "lean with one tile" that nobody measured */
    const char *att[] = {"lean", "lean_mma_t1", "exact2"};
    const double as[] = {0.0080, 0.0085, 0.0090}, al[] = {0.035, 0.035, 0.035};
    ck_assert_int_eq(combine(att, as, al, 3, NULL, &best), 1);
    ck_assert_int_eq(best.attention_kernel, CUDA_ATTENTION_LEAN);
    ck_assert_int_eq(best.attention_row_tiles, 0);
    /* t1 fastest: both its fields */
    const double as2[] = {0.0090, 0.0080, 0.0085};
    ck_assert_int_eq(combine(att, as2, al, 3, NULL, &best), 1);
    ck_assert_int_eq(best.attention_kernel, CUDA_ATTENTION_LEAN_MMA);
    ck_assert_int_eq(best.attention_row_tiles, 1);
    /* three im2col thresholds: the fastest of those not slower at 16 rows */
    const char *conv[] = {"im2col", "im2col_2k", "cudnn"};
    const double cs[] = {0.0075, 0.0080, 0.0090}, cl[] = {0.0405, 0.0400, 0.0398};
    ck_assert_int_eq(combine(conv, cs, cl, 3, NULL, &best), 1);
    ck_assert_int_eq(best.conv_gemm_rows, 2048);
}
END_TEST

START_TEST(test_combine_leaves_out_excluded)
{
    struct cuda_backend_options best;
    const char *names[] = {"lean", "exact2", GN_TRIAL};
    const double small[] = {0.0080, 0.0085, 0.0090}, large[] = {0.035, 0.035, 0.038};
    /* lean's conformance failed: the next attention kernel instead */
    ck_assert_int_eq(combine(names, small, large, 3, "lean", &best), 2);
    ck_assert_int_eq(best.attention_kernel, CUDA_ATTENTION_EXACT2);
    ck_assert_int_eq(best.group_norm_kernel, GN_TRIAL_KERNEL);
    char all[64], gn_only[32];
    snprintf(all, sizeof all, "lean,exact2,%s", GN_TRIAL);
    snprintf(gn_only, sizeof gn_only, "%s,", GN_TRIAL);
    ck_assert_int_eq(combine(names, small, large, 3, all, &best), 0);
    ck_assert_int_eq(combine(names, small, large, 3, gn_only, &best), 1);
    ck_assert_int_eq(best.group_norm_kernel, 0);
    /* a name that is only a prefix excludes nothing */
    ck_assert_int_eq(combine(names, small, large, 3, "lea,gn", &best), 2);
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
    TCase *choose = tcase_create("choose");
    tcase_add_test(choose, test_trials_differ_from_base);
    tcase_add_test(choose, test_combine_takes_the_faster);
    tcase_add_test(choose, test_combine_one_choice_per_field);
    tcase_add_test(choose, test_combine_leaves_out_excluded);
    suite_add_tcase(s, choose);
    return s;
}

int main(void)
{
    return test_run_suite(cuda_plan_suite());
}
