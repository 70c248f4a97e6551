/* tests/unit/test_philox.c — Philox4x32-10 and the normal stream (engine/philox.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/philox.h"
#include "tests/testutil.h"

/* Random123 tests/kat_vectors, rows "philox4x32 10": counter[4] key[2] -> out[4]. */
static const uint32_t kat[3][10] = {
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x6627e8d5,
     0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
     0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
     0x94fdcceb, 0x5001e420, 0x24126ea1},
};

START_TEST(test_kat_vectors)
{
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        philox_block(&kat[v][0], &kat[v][4], out);
        for (int i = 0; i < 4; i++)
            ck_assert_msg(out[i] == kat[v][6 + i], "vector %d word %d: %08x, want %08x", v, i,
                          out[i], kat[v][6 + i]);
        /* out may alias the counter */
        uint32_t inplace[4] = {kat[v][0], kat[v][1], kat[v][2], kat[v][3]};
        philox_block(inplace, &kat[v][4], inplace);
        ck_assert(memcmp(inplace, out, sizeof out) == 0);
    }
}
END_TEST

/* The counter/key layout: word 4q+j of (seed, subsequence) is
 * philox_block({q lo, q hi, sub lo, sub hi}, {seed lo, seed hi})[j]. */
START_TEST(test_stream_layout)
{
    const uint64_t seed = 0x0123456789abcdefull, sub = 0xfedcba9876543210ull;
    const uint64_t quads[] = {0, 1, 2, 0xffffffffull, 0x100000000ull, 0x3fffffffffffffffull,
                              (5ull << 32) + 7};
    for (size_t t = 0; t < sizeof quads / sizeof quads[0]; t++) {
        uint64_t q = quads[t];
        uint32_t ctr[4] = {(uint32_t)q, (uint32_t)(q >> 32), (uint32_t)sub,
                           (uint32_t)(sub >> 32)};
        uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        uint32_t want[4], got[4];
        philox_block(ctr, key, want);
        philox_u32_fill(seed, sub, q * 4, got, 4);
        ck_assert(memcmp(got, want, sizeof want) == 0);
        for (unsigned j = 0; j < 4; j++) {
            uint32_t one;
            philox_u32_fill(seed, sub, q * 4 + j, &one, 1);
            ck_assert_uint_eq(one, want[j]);
        }
    }
    /* seed 0 / subsequence 0 / quad 0 is the first KAT vector */
    uint32_t w[4];
    philox_u32_fill(0, 0, 0, w, 4);
    ck_assert(memcmp(w, &kat[0][6], sizeof w) == 0);
}
END_TEST

/* Box–Muller as the header states it, written independently: from the 32-bit
 * stream, in long double. */
static double ref_normal(uint64_t seed, uint64_t sub, uint64_t k)
{
    uint32_t w[2];
    philox_u32_fill(seed, sub, k & ~(uint64_t)1, w, 2);
    long double u1 = ((long double)w[0] + 0.5L) / 4294967296.0L;
    long double u2 = ((long double)w[1] + 0.5L) / 4294967296.0L;
    long double r = sqrtl(-2.0L * logl(u1));
    long double th = 2.0L * 3.14159265358979323846264338327950288L * u2;
    return (double)((k & 1) ? r * cosl(th) : r * sinl(th));
}

START_TEST(test_normal_formula)
{
    const uint64_t seeds[] = {0, 42, 0x0123456789abcdefull};
    for (size_t s = 0; s < 3; s++) {
        for (uint64_t sub = 0; sub < 3; sub++) {
            float got[64];
            uint64_t off = sub * 1000003 + s;
            philox_normal_fill(seeds[s], sub, off, got, 64);
            for (int i = 0; i < 64; i++) {
                double want = ref_normal(seeds[s], sub, off + (uint64_t)i);
                ck_assert_msg(fabs(got[i] - want) <= 1e-6 * fmax(1.0, fabs(want)),
                              "seed %d sub %d elem %d: %.9g, want %.9g", (int)s, (int)sub, i,
                              (double)got[i], want);
            }
        }
    }
}
END_TEST

/* Golden values from an independent Python implementation (math.sin/cos/log in
 * double, rounded to float), to catch a change of convention. */
START_TEST(test_normal_golden)
{
    static const float seed0[8] = {-0.92466259f, 0.991137683f, -0.482068598f, -0.617608964f,
                                   0.180825904f, -0.153638229f, 0.197439715f, 0.831735134f};
    static const float seed42[8] = {0.19401896f, -0.97018981f, 1.92392671f, -1.23562074f,
                                    0.139137492f, -0.07318151f, 0.326682955f, -1.10666502f};
    static const float mixed[6] = {-0.433781743f, 2.08188558f, 0.499472558f,
                                   1.15595567f,   -0.263240844f, 0.254232556f};
    float got[8];
    philox_normal_fill(0, 0, 0, got, 8);
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq_tol(got[i], seed0[i], 1e-6f);
    philox_normal_fill(42, 0, 0, got, 8);
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq_tol(got[i], seed42[i], 1e-6f);
    philox_normal_fill(0x0123456789abcdefull, 7, 1000001, got, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(got[i], mixed[i], 1e-6f);
}
END_TEST

START_TEST(test_chunk_independence)
{
    enum { N = 4099 };
    float *whole = malloc(N * sizeof *whole), *parts = malloc(N * sizeof *parts);
    ck_assert(whole && parts);
    struct test_rng r = test_rng_make(3);
    const uint64_t bases[] = {0, 1, 2, 3, 5, 1ull << 40, (1ull << 62) + 3};
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        philox_normal_fill(99, 5, bases[b], whole, N);
        for (int trial = 0; trial < 20; trial++) {
            /* random piece sizes, including 0, 1, 2, 3 */
            size_t i = 0;
            memset(parts, 0, N * sizeof *parts);
            while (i < N) {
                size_t len = (size_t)test_rng_int(&r, 0, trial < 10 ? 7 : 300);
                if (len > N - i)
                    len = N - i;
                philox_normal_fill(99, 5, bases[b] + i, parts + i, len);
                i += len;
            }
            ck_assert_msg(memcmp(whole, parts, N * sizeof *whole) == 0, "base %zu trial %d", b,
                          trial);
        }
        /* any sub-range read alone equals the same slice of the whole */
        for (int trial = 0; trial < 200; trial++) {
            size_t lo = (size_t)test_rng_int(&r, 0, N - 1);
            size_t len = (size_t)test_rng_int(&r, 0, (int)(N - lo));
            philox_normal_fill(99, 5, bases[b] + lo, parts, len);
            ck_assert(memcmp(parts, whole + lo, len * sizeof *parts) == 0);
        }
    }
    /* the same for the 32-bit stream */
    uint32_t *uw = malloc(N * sizeof *uw), *up = malloc(N * sizeof *up);
    ck_assert(uw && up);
    philox_u32_fill(1, 2, 3, uw, N);
    for (size_t i = 0; i < N;) {
        size_t len = (size_t)test_rng_int(&r, 0, 9);
        if (len > N - i)
            len = N - i;
        philox_u32_fill(1, 2, 3 + i, up + i, len);
        i += len;
    }
    ck_assert(memcmp(uw, up, N * sizeof *uw) == 0);
    free(uw);
    free(up);
    free(whole);
    free(parts);
}
END_TEST

/* Element indices wrap modulo 2^64: the range across the end continues at 0. */
START_TEST(test_offset_wrap)
{
    float across[8], start[5];
    philox_normal_fill(7, 1, UINT64_MAX - 2, across, 8);
    philox_normal_fill(7, 1, 0, start, 5);
    ck_assert(memcmp(across + 3, start, sizeof start) == 0);
    for (int i = 0; i < 8; i++)
        ck_assert(isfinite(across[i]));
}
END_TEST

START_TEST(test_normal_statistics)
{
    enum { N = 1000000 };
    float *z = malloc(N * sizeof *z);
    ck_assert_ptr_nonnull(z);
    philox_normal_fill(2024, 0, 0, z, N);
    double s1 = 0, s2 = 0, s4 = 0, lag = 0;
    size_t within1 = 0, within2 = 0;
    for (size_t i = 0; i < N; i++) {
        double v = z[i];
        ck_assert_msg(isfinite(v), "element %zu is %g", i, v);
        s1 += v;
        s2 += v * v;
        s4 += v * v * v * v;
        if (i + 1 < N)
            lag += v * (double)z[i + 1];
        within1 += fabs(v) < 1.0;
        within2 += fabs(v) < 2.0;
    }
    double mean = s1 / N, var = s2 / N - mean * mean, kurt = s4 / N;
    /* bounds at about 5 standard errors of each estimate */
    ck_assert_msg(fabs(mean) < 5.0 / sqrt(N), "mean %g", mean);
    ck_assert_msg(fabs(var - 1.0) < 5.0 * sqrt(2.0 / N), "variance %g", var);
    ck_assert_msg(fabs(kurt - 3.0) < 5.0 * sqrt(96.0 / N), "fourth moment %g", kurt);
    ck_assert_msg(fabs(lag / (N - 1)) < 5.0 / sqrt(N), "lag-1 correlation %g", lag / (N - 1));
    double p1 = 0.682689492137086, p2 = 0.954499736103642;
    ck_assert_msg(fabs((double)within1 / N - p1) < 5.0 * sqrt(p1 * (1 - p1) / N), "P(|z|<1) %g",
                  (double)within1 / N);
    ck_assert_msg(fabs((double)within2 / N - p2) < 5.0 * sqrt(p2 * (1 - p2) / N), "P(|z|<2) %g",
                  (double)within2 / N);
    free(z);
}
END_TEST

/* Seeds (both key words) and subsequences (both counter words) select different
 * streams; the same arguments give the same stream. */
START_TEST(test_streams_differ)
{
    enum { N = 64 };
    struct {
        uint64_t seed, sub;
    } cfg[] = {{0, 0}, {1, 0}, {1ull << 32, 0}, {0, 1}, {0, 1ull << 32}, {1, 1}};
    size_t nc = sizeof cfg / sizeof cfg[0];
    float v[6][N];
    for (size_t c = 0; c < nc; c++)
        philox_normal_fill(cfg[c].seed, cfg[c].sub, 0, v[c], N);
    for (size_t a = 0; a < nc; a++) {
        for (size_t b = a + 1; b < nc; b++) {
            int same = 0;
            for (int i = 0; i < N; i++)
                same += v[a][i] == v[b][i];
            ck_assert_msg(same < 2, "streams %zu and %zu share %d of %d values", a, b, same, N);
        }
    }
    float again[N];
    philox_normal_fill(cfg[2].seed, cfg[2].sub, 0, again, N);
    ck_assert(memcmp(again, v[2], sizeof again) == 0);
    /* a shifted offset is the shifted stream, not a new one */
    philox_normal_fill(0, 0, 10, again, N - 10);
    ck_assert(memcmp(again, v[0] + 10, (N - 10) * sizeof(float)) == 0);
}
END_TEST

START_TEST(test_zero_length)
{
    float sentinel = 123.0f;
    philox_normal_fill(1, 2, 3, &sentinel, 0);
    ck_assert(sentinel == 123.0f);
    uint32_t u = 77;
    philox_u32_fill(1, 2, 3, &u, 0);
    ck_assert_uint_eq(u, 77);
}
END_TEST

static Suite *philox_suite(void)
{
    Suite *s = suite_create("philox");
    TCase *tc = tcase_create("block");
    tcase_add_test(tc, test_kat_vectors);
    tcase_add_test(tc, test_stream_layout);
    suite_add_tcase(s, tc);
    tc = tcase_create("normal");
    tcase_add_test(tc, test_normal_formula);
    tcase_add_test(tc, test_normal_golden);
    tcase_add_test(tc, test_chunk_independence);
    tcase_add_test(tc, test_offset_wrap);
    tcase_add_test(tc, test_normal_statistics);
    tcase_add_test(tc, test_streams_differ);
    tcase_add_test(tc, test_zero_length);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(philox_suite());
}
