/* tests/unit/test_half.c — fp16 / bf16 ⇄ f32 conversion (engine/half.h).
 *
 * Decoding is checked for all 65,536 bit patterns of each format against a
 * reference decoder written here with ldexp; encoding is checked on every
 * halfway case between neighbours, at the overflow threshold, on subnormals,
 * signed zeros and NaNs; the SIMD array paths are checked bit for bit against
 * the scalar functions.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/half.h"
#include "tests/testutil.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Reference decoders: the value of the pattern by its definition. */
static double ref_f16(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -24);
    else
        v = ldexp(1024 + m, e - 25);
    return sign ? -v : v;
}

static double ref_bf16(uint16_t h)
{
    int sign = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v;
    if (e == 255)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -133);
    else
        v = ldexp(128 + m, e - 134);
    return sign ? -v : v;
}

static bool f16_is_nan(uint16_t h)
{
    return (h & 0x7c00) == 0x7c00 && (h & 0x03ff);
}

static bool bf16_is_nan(uint16_t h)
{
    return (h & 0x7f80) == 0x7f80 && (h & 0x007f);
}

/* ---- decoding, exhaustive ----------------------------------------------------------- */

START_TEST(test_f16_decode_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float got = half_f16_to_f32((uint16_t)h);
        double want = ref_f16((uint16_t)h);
        if (f16_is_nan((uint16_t)h)) {
            ck_assert_msg(isnan(got), "%04x: not NaN", h);
            /* quiet bit set, sign and payload kept */
            uint32_t want_bits = ((h & 0x8000u) << 16) | 0x7fc00000u | ((h & 0x3ffu) << 13);
            ck_assert_msg(bits_of(got) == want_bits, "%04x -> %08x, want %08x", h,
                          bits_of(got), want_bits);
        } else {
            /* compare bits so that -0 and +0 are told apart */
            ck_assert_msg(bits_of(got) == bits_of((float)want), "%04x -> %08x (%g), want %g",
                          h, bits_of(got), (double)got, want);
        }
    }
}
END_TEST

START_TEST(test_bf16_decode_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float got = half_bf16_to_f32((uint16_t)h);
        if (bf16_is_nan((uint16_t)h)) {
            ck_assert_msg(isnan(got), "%04x: not NaN", h);
            ck_assert_uint_eq(bits_of(got), h << 16); /* exact, even signalling */
        } else {
            double want = ref_bf16((uint16_t)h);
            ck_assert_msg(bits_of(got) == bits_of((float)want), "%04x -> %08x (%g), want %g",
                          h, bits_of(got), (double)got, want);
        }
    }
}
END_TEST

START_TEST(test_f16_roundtrip_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = half_f32_to_f16(half_f16_to_f32((uint16_t)h));
        if (f16_is_nan((uint16_t)h)) {
            ck_assert_msg(f16_is_nan(back), "%04x -> %04x: NaN lost", h, back);
            ck_assert_uint_eq(back, h | 0x0200u); /* quietened, sign and payload kept */
        } else {
            ck_assert_msg(back == h, "%04x -> %04x", h, back);
        }
    }
}
END_TEST

START_TEST(test_bf16_roundtrip_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = half_f32_to_bf16(half_bf16_to_f32((uint16_t)h));
        if (bf16_is_nan((uint16_t)h)) {
            ck_assert_msg(bf16_is_nan(back), "%04x -> %04x: NaN lost", h, back);
            ck_assert_uint_eq(back, h | 0x0040u);
        } else {
            ck_assert_msg(back == h, "%04x -> %04x", h, back);
        }
    }
}
END_TEST

/* ---- encoding: round to nearest, ties to even ----------------------------------------- */

/* For the neighbours a < b (adjacent positive finite patterns) checks the exact
 * midpoint goes to the even one and its f32 neighbours go to the nearer one; then
 * the same for the negated values. */
static void check_halfway(uint16_t (*enc)(float), float (*dec)(uint16_t), uint16_t a,
                          uint16_t sign_bit)
{
    uint16_t b = (uint16_t)(a + 1);
    double fa = dec(a), fb = dec(b);
    if (isinf(fb)) /* above the largest finite value: where the next one would be */
        fb = fa + (fa - dec((uint16_t)(a - 1)));
    float mid = (float)((fa + fb) / 2);
    ck_assert_msg((double)mid * 2 == fa + fb, "%04x: midpoint inexact", a);
    uint16_t even = (a & 1) ? b : a;
    for (int s = 0; s < 2; s++) {
        float m = s ? -mid : mid;
        uint16_t sg = s ? sign_bit : 0;
        uint16_t got = enc(m);
        ck_assert_msg(got == (even | sg), "tie %a between %04x and %04x -> %04x", (double)m,
                      a | sg, b | sg, got);
        got = enc(nextafterf(m, 0.0f));
        ck_assert_msg(got == (a | sg), "below tie %a -> %04x, want %04x", (double)m, got, a | sg);
        got = enc(nextafterf(m, s ? -INFINITY : INFINITY));
        ck_assert_msg(got == (b | sg), "above tie %a -> %04x, want %04x", (double)m, got, b | sg);
    }
}

START_TEST(test_f16_halfway_all_pairs)
{
    /* every pair of neighbours from 0/min-subnormal up to 65504/Inf; the last pair
     * (0x7bff, 0x7c00) has midpoint 65520, the overflow threshold */
    for (uint32_t a = 0; a < 0x7c00; a++)
        check_halfway(half_f32_to_f16, half_f16_to_f32, (uint16_t)a, 0x8000);
}
END_TEST

START_TEST(test_bf16_halfway_all_pairs)
{
    for (uint32_t a = 0; a < 0x7f80; a++)
        check_halfway(half_f32_to_bf16, half_bf16_to_f32, (uint16_t)a, 0x8000);
}
END_TEST

START_TEST(test_f16_overflow)
{
    ck_assert_uint_eq(half_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(half_f32_to_f16(nextafterf(65520.0f, 0.0f)), 0x7bff);
    ck_assert_uint_eq(half_f32_to_f16(65520.0f), 0x7c00);
    ck_assert_uint_eq(half_f32_to_f16(-65520.0f), 0xfc00);
    ck_assert_uint_eq(half_f32_to_f16(65536.0f), 0x7c00);
    ck_assert_uint_eq(half_f32_to_f16(1e10f), 0x7c00);
    ck_assert_uint_eq(half_f32_to_f16(FLT_MAX), 0x7c00);
    ck_assert_uint_eq(half_f32_to_f16(-FLT_MAX), 0xfc00);
    ck_assert_uint_eq(half_f32_to_f16(INFINITY), 0x7c00);
    ck_assert_uint_eq(half_f32_to_f16(-INFINITY), 0xfc00);
}
END_TEST

START_TEST(test_bf16_overflow)
{
    float max_bf16 = half_bf16_to_f32(0x7f7f);
    ck_assert_uint_eq(half_f32_to_bf16(max_bf16), 0x7f7f);
    ck_assert_uint_eq(half_f32_to_bf16(float_of(0x7f7f7fffu)), 0x7f7f);
    ck_assert_uint_eq(half_f32_to_bf16(float_of(0x7f7f8000u)), 0x7f80); /* tie, to even Inf */
    ck_assert_uint_eq(half_f32_to_bf16(FLT_MAX), 0x7f80);
    ck_assert_uint_eq(half_f32_to_bf16(-FLT_MAX), 0xff80);
    ck_assert_uint_eq(half_f32_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(half_f32_to_bf16(-INFINITY), 0xff80);
}
END_TEST

START_TEST(test_f16_subnormals)
{
    ck_assert_uint_eq(half_f32_to_f16(ldexpf(1, -24)), 0x0001);
    ck_assert_uint_eq(half_f32_to_f16(-ldexpf(1, -24)), 0x8001);
    ck_assert_uint_eq(half_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie: to even 0 */
    ck_assert_uint_eq(half_f32_to_f16(-ldexpf(1, -25)), 0x8000);
    ck_assert_uint_eq(half_f32_to_f16(nextafterf(ldexpf(1, -25), 1)), 0x0001);
    ck_assert_uint_eq(half_f32_to_f16(ldexpf(3, -25)), 0x0002); /* tie 1|2: to 2 */
    ck_assert_uint_eq(half_f32_to_f16(ldexpf(5, -25)), 0x0002); /* tie 2|3: to 2 */
    ck_assert_uint_eq(half_f32_to_f16(ldexpf(1023, -24)), 0x03ff); /* largest subnormal */
    ck_assert_uint_eq(half_f32_to_f16(ldexpf(2047, -25)), 0x0400); /* tie 3ff|400 */
    ck_assert_uint_eq(half_f32_to_f16(ldexpf(1, -14)), 0x0400); /* smallest normal */
    ck_assert_uint_eq(half_f32_to_f16(ldexpf(1, -26)), 0x0000);
    ck_assert_uint_eq(half_f32_to_f16(FLT_MIN), 0x0000);
    ck_assert_uint_eq(half_f32_to_f16(float_of(1)), 0x0000);           /* f32 subnormal */
    ck_assert_uint_eq(half_f32_to_f16(float_of(0x80000001u)), 0x8000); /* keeps its sign */
    /* every f16 subnormal times 2^-24 is exact both ways */
    for (int m = 1; m < 1024; m++) {
        ck_assert_uint_eq(half_f32_to_f16(ldexpf((float)m, -24)), (unsigned)m);
        ck_assert(half_f16_to_f32((uint16_t)m) == ldexpf((float)m, -24));
    }
}
END_TEST

START_TEST(test_bf16_subnormals)
{
    ck_assert_uint_eq(half_f32_to_bf16(float_of(0x00010000u)), 0x0001);
    ck_assert_uint_eq(half_f32_to_bf16(float_of(0x00000001u)), 0x0000);
    ck_assert_uint_eq(half_f32_to_bf16(float_of(0x00008000u)), 0x0000); /* tie: to even 0 */
    ck_assert_uint_eq(half_f32_to_bf16(float_of(0x00008001u)), 0x0001);
    ck_assert_uint_eq(half_f32_to_bf16(float_of(0x00018000u)), 0x0002); /* tie 1|2 */
    ck_assert_uint_eq(half_f32_to_bf16(float_of(0x007f8000u)), 0x0080); /* up to FLT_MIN */
    ck_assert_uint_eq(half_f32_to_bf16(float_of(0x80008001u)), 0x8001);
    ck_assert(half_bf16_to_f32(0x0001) == ldexpf(1, -133));
}
END_TEST

START_TEST(test_signed_zero)
{
    ck_assert_uint_eq(half_f32_to_f16(0.0f), 0x0000);
    ck_assert_uint_eq(half_f32_to_f16(-0.0f), 0x8000);
    ck_assert_uint_eq(half_f32_to_bf16(0.0f), 0x0000);
    ck_assert_uint_eq(half_f32_to_bf16(-0.0f), 0x8000);
    ck_assert_uint_eq(bits_of(half_f16_to_f32(0x8000)), 0x80000000u);
    ck_assert_uint_eq(bits_of(half_bf16_to_f32(0x8000)), 0x80000000u);
}
END_TEST

START_TEST(test_nan_encode)
{
    /* quiet NaNs, signalling NaNs whose payload lies only in the dropped bits (they
     * must not turn into Inf), negative NaNs, payload in the kept bits */
    static const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u,
                                    0x7f801fffu, 0x7fa00000u, 0x7fffffffu, 0xffffffffu,
                                    0x7f802000u, 0x7fc12345u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        float f = float_of(nans[i]);
        uint16_t h = half_f32_to_f16(f);
        ck_assert_msg(f16_is_nan(h), "%08x -> f16 %04x is not NaN", nans[i], h);
        ck_assert_msg(h & 0x0200, "%08x -> f16 %04x not quiet", nans[i], h);
        ck_assert_uint_eq(h >> 15, nans[i] >> 31);
        ck_assert_uint_eq(h & 0x01ff, (nans[i] >> 13) & 0x01ff); /* top payload kept */
        uint16_t b = half_f32_to_bf16(f);
        ck_assert_msg(bf16_is_nan(b), "%08x -> bf16 %04x is not NaN", nans[i], b);
        ck_assert_msg(b & 0x0040, "%08x -> bf16 %04x not quiet", nans[i], b);
        ck_assert_uint_eq(b >> 15, nans[i] >> 31);
        ck_assert_uint_eq(b & 0x003f, (nans[i] >> 16) & 0x003f);
    }
    ck_assert(isnan(half_f16_to_f32(half_f32_to_f16(NAN))));
    ck_assert(isnan(half_bf16_to_f32(half_f32_to_bf16(NAN))));
}
END_TEST

/* RNE against a double-precision reference on random values: the result must be
 * one of the two neighbours and the nearer one. */
START_TEST(test_f16_random_nearest)
{
    struct test_rng r = test_rng_make(7);
    for (int i = 0; i < 200000; i++) {
        float f = ldexpf(test_rng_uniform(&r, -1, 1), test_rng_int(&r, -26, 16));
        uint16_t h = half_f32_to_f16(f);
        double err = fabs(ref_f16(h) - (double)f);
        uint16_t lo = (uint16_t)(h & 0x7fff) ? (uint16_t)(h - 1) : h;
        uint16_t hi = (uint16_t)(h + 1);
        if ((h & 0x7fff) < 0x7c00) {
            ck_assert_msg(err <= fabs(ref_f16(hi) - (double)f), "%a -> %04x", (double)f, h);
            if ((h & 0x7fff) != 0)
                ck_assert_msg(err <= fabs(ref_f16(lo) - (double)f), "%a -> %04x", (double)f, h);
        }
    }
}
END_TEST

/* ---- array paths ---------------------------------------------------------------------- */

static const enum half_isa all_isas[] = {HALF_ISA_BEST, HALF_ISA_SCALAR, HALF_ISA_AVX2,
                                         HALF_ISA_AVX512};
#define N_ISAS (sizeof all_isas / sizeof all_isas[0])

/* f32 inputs that exercise every branch: all f16/bf16 values, their midpoints and
 * neighbours, specials, and random bit patterns. */
static float *encode_inputs(size_t *n_out)
{
    size_t n = 65536 * 8 + (1u << 20);
    float *f = malloc(n * sizeof *f);
    ck_assert_ptr_nonnull(f);
    size_t k = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = half_f16_to_f32((uint16_t)h), b = half_bf16_to_f32((uint16_t)h);
        float a1 = half_f16_to_f32((uint16_t)(h + 1)), b1 = half_bf16_to_f32((uint16_t)(h + 1));
        float ma = (float)(((double)a + (double)a1) / 2), mb = (float)(((double)b + (double)b1) / 2);
        f[k++] = a;
        f[k++] = b;
        f[k++] = ma;
        f[k++] = mb;
        f[k++] = nextafterf(ma, 0);
        f[k++] = nextafterf(mb, 0);
        f[k++] = nextafterf(ma, INFINITY);
        f[k++] = float_of(bits_of(b) | 0x8000u);
    }
    struct test_rng r = test_rng_make(11);
    while (k < n)
        f[k++] = float_of((uint32_t)test_rng_u64(&r));
    *n_out = n;
    return f;
}

START_TEST(test_array_encode_matches_scalar)
{
    size_t n;
    float *src = encode_inputs(&n);
    uint16_t *want16 = malloc(n * 2), *wantb = malloc(n * 2), *got = malloc(n * 2 + 64);
    ck_assert(want16 && wantb && got);
    for (size_t i = 0; i < n; i++) {
        want16[i] = half_f32_to_f16(src[i]);
        wantb[i] = half_f32_to_bf16(src[i]);
    }
    for (size_t t = 0; t < N_ISAS; t++) {
        if (!half_isa_supported(all_isas[t]))
            continue;
        half_f32_to_f16_array_isa(all_isas[t], src, got, n);
        ck_assert_msg(memcmp(got, want16, n * 2) == 0, "f16 isa %d differs", (int)all_isas[t]);
        half_f32_to_bf16_array_isa(all_isas[t], src, got, n);
        ck_assert_msg(memcmp(got, wantb, n * 2) == 0, "bf16 isa %d differs", (int)all_isas[t]);
        /* odd lengths and unaligned starts reach the scalar tails */
        for (size_t len = 0; len < 40; len++) {
            for (size_t off = 0; off < 3; off++) {
                memset(got, 0xab, 128);
                half_f32_to_f16_array_isa(all_isas[t], src + 1000 + off, got + off, len);
                ck_assert(memcmp(got + off, want16 + 1000 + off, len * 2) == 0);
                ck_assert_uint_eq(got[off + len], 0xabab); /* nothing written past n */
                half_f32_to_bf16_array_isa(all_isas[t], src + 1000 + off, got + off, len);
                ck_assert(memcmp(got + off, wantb + 1000 + off, len * 2) == 0);
                ck_assert_uint_eq(got[off + len], 0xabab);
            }
        }
    }
    half_f32_to_f16_array(src, got, n);
    ck_assert(memcmp(got, want16, n * 2) == 0);
    half_f32_to_bf16_array(src, got, n);
    ck_assert(memcmp(got, wantb, n * 2) == 0);
    free(src);
    free(want16);
    free(wantb);
    free(got);
}
END_TEST

START_TEST(test_array_decode_matches_scalar)
{
    enum { N = 65536 };
    uint16_t *src = malloc(N * 2);
    float *want16 = malloc(N * 4), *wantb = malloc(N * 4), *got = malloc(N * 4 + 64);
    ck_assert(src && want16 && wantb && got);
    for (uint32_t h = 0; h < N; h++) {
        src[h] = (uint16_t)h;
        want16[h] = half_f16_to_f32((uint16_t)h);
        wantb[h] = half_bf16_to_f32((uint16_t)h);
    }
    for (size_t t = 0; t < N_ISAS; t++) {
        if (!half_isa_supported(all_isas[t]))
            continue;
        half_f16_to_f32_array_isa(all_isas[t], src, got, N);
        ck_assert_msg(memcmp(got, want16, N * 4) == 0, "f16 isa %d differs", (int)all_isas[t]);
        half_bf16_to_f32_array_isa(all_isas[t], src, got, N);
        ck_assert_msg(memcmp(got, wantb, N * 4) == 0, "bf16 isa %d differs", (int)all_isas[t]);
        for (size_t len = 0; len < 40; len++) {
            for (size_t off = 0; off < 3; off++) {
                memset(got, 0xab, 256);
                half_f16_to_f32_array_isa(all_isas[t], src + 0x7bf0 + off, got + off, len);
                ck_assert(memcmp(got + off, want16 + 0x7bf0 + off, len * 4) == 0);
                ck_assert_uint_eq(bits_of(got[off + len]), 0xababababu);
                half_bf16_to_f32_array_isa(all_isas[t], src + 0x7f70 + off, got + off, len);
                ck_assert(memcmp(got + off, wantb + 0x7f70 + off, len * 4) == 0);
                ck_assert_uint_eq(bits_of(got[off + len]), 0xababababu);
            }
        }
    }
    half_f16_to_f32_array(src, got, N);
    ck_assert(memcmp(got, want16, N * 4) == 0);
    half_bf16_to_f32_array(src, got, N);
    ck_assert(memcmp(got, wantb, N * 4) == 0);
    free(src);
    free(want16);
    free(wantb);
    free(got);
}
END_TEST

START_TEST(test_isa_supported)
{
    ck_assert(half_isa_supported(HALF_ISA_BEST));
    ck_assert(half_isa_supported(HALF_ISA_SCALAR));
    ck_assert(!half_isa_supported((enum half_isa)99));
    /* an unsupported choice falls back to scalar rather than failing */
    uint16_t h = 0x3c00;
    float f = 0;
    half_f16_to_f32_array_isa((enum half_isa)99, &h, &f, 1);
    ck_assert(f == 1.0f);
}
END_TEST

static Suite *half_suite(void)
{
    Suite *s = suite_create("half");
    TCase *dec = tcase_create("decode");
    tcase_add_test(dec, test_f16_decode_all);
    tcase_add_test(dec, test_bf16_decode_all);
    tcase_add_test(dec, test_f16_roundtrip_all);
    tcase_add_test(dec, test_bf16_roundtrip_all);
    suite_add_tcase(s, dec);
    TCase *enc = tcase_create("encode");
    tcase_add_test(enc, test_f16_halfway_all_pairs);
    tcase_add_test(enc, test_bf16_halfway_all_pairs);
    tcase_add_test(enc, test_f16_overflow);
    tcase_add_test(enc, test_bf16_overflow);
    tcase_add_test(enc, test_f16_subnormals);
    tcase_add_test(enc, test_bf16_subnormals);
    tcase_add_test(enc, test_signed_zero);
    tcase_add_test(enc, test_nan_encode);
    tcase_add_test(enc, test_f16_random_nearest);
    suite_add_tcase(s, enc);
    TCase *arr = tcase_create("array");
    tcase_add_test(arr, test_array_encode_matches_scalar);
    tcase_add_test(arr, test_array_decode_matches_scalar);
    tcase_add_test(arr, test_isa_supported);
    suite_add_tcase(s, arr);
    return s;
}

int main(void)
{
    return test_run_suite(half_suite());
}
