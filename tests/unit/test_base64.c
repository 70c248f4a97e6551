/* tests/unit/test_base64.c — api/base64: the RFC 4648 §10 test vectors, every byte value
 * and every length 0…300 round-tripped, encoded lengths, malformed input rejected.
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/base64.h"
#include "tests/testutil.h"

START_TEST(test_rfc4648_vectors)
{
    static const char *const vec[][2] = {
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        const size_t n = strlen(vec[i][0]);
        char out[16];
        memset(out, '#', sizeof out);
        const size_t k = base64_encode((const uint8_t *)vec[i][0], n, out);
        ck_assert_uint_eq(k, strlen(vec[i][1]));
        ck_assert_uint_eq(base64_encoded_len(n), k);
        ck_assert_msg(memcmp(out, vec[i][1], k) == 0, "encode(\"%s\")", vec[i][0]);
        ck_assert_int_eq(out[k], '#'); /* nothing written past the end */
        uint8_t back[16];
        size_t blen = 99;
        ck_assert(base64_decode(vec[i][1], k, back, &blen));
        ck_assert_uint_eq(blen, n);
        ck_assert(memcmp(back, vec[i][0], n) == 0);
    }
}
END_TEST

START_TEST(test_all_byte_values_and_alphabet)
{
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    char enc[400];
    const size_t k = base64_encode(all, sizeof all, enc);
    ck_assert_uint_eq(k, 344); /* 4·⌈256/3⌉ */
    for (size_t i = 0; i < k; i++) {
        const char c = enc[i];
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '+' || c == '/' || (c == '=' && i >= k - 2);
        ck_assert_msg(ok, "character %zu '%c' outside the standard alphabet", i, c);
    }
    /* 0xFBEFBE → "++++" and 0xFFFFFF → "////": the two special characters */
    const uint8_t special[3] = {0xFB, 0xEF, 0xBE};
    char s4[4];
    base64_encode(special, 3, s4);
    ck_assert(memcmp(s4, "++++", 4) == 0);
    const uint8_t slash[3] = {0xFF, 0xFF, 0xFF};
    base64_encode(slash, 3, s4);
    ck_assert(memcmp(s4, "////", 4) == 0);
    uint8_t back[256];
    size_t blen = 0;
    ck_assert(base64_decode(enc, k, back, &blen));
    ck_assert_uint_eq(blen, 256);
    ck_assert(memcmp(back, all, 256) == 0);
}
END_TEST

START_TEST(test_roundtrip_lengths)
{
    struct test_rng rng = test_rng_make(7);
    uint8_t src[300], back[300];
    char enc[404];
    for (size_t n = 0; n <= 300; n++) {
        for (size_t i = 0; i < n; i++)
            src[i] = (uint8_t)test_rng_u64(&rng);
        const size_t k = base64_encode(src, n, enc);
        ck_assert_uint_eq(k, (n + 2) / 3 * 4);
        ck_assert_uint_eq(k, base64_encoded_len(n));
        const size_t pad = n % 3 == 0 ? 0 : 3 - n % 3;
        for (size_t p = 0; p < pad; p++)
            ck_assert_int_eq(enc[k - 1 - p], '=');
        size_t blen = 0;
        ck_assert_msg(base64_decode(enc, k, back, &blen), "length %zu", n);
        ck_assert_uint_eq(blen, n);
        ck_assert(memcmp(back, src, n) == 0);
    }
}
END_TEST

START_TEST(test_lengths_overflow)
{
    ck_assert_uint_eq(base64_encoded_len(0), 0);
    ck_assert_uint_eq(base64_encoded_len(1), 4);
    ck_assert_uint_eq(base64_encoded_len(3), 4);
    ck_assert_uint_eq(base64_encoded_len(4), 8);
    ck_assert_uint_eq(base64_encoded_len(SIZE_MAX), SIZE_MAX);
    ck_assert_uint_eq(base64_encoded_len(SIZE_MAX / 4 * 3), SIZE_MAX / 4 * 4);
}
END_TEST

START_TEST(test_decode_rejects_malformed)
{
    static const char *const bad[] = {
        "Zg=",      /* length not a multiple of 4 */
        "Zg",       /* no padding */
        "Z===",     /* three '=' */
        "Zg==Zg==", /* padding in the middle */
        "Zm9v\n",   /* line break */
        "Zm-v",     /* URL-safe alphabet is not the standard one */
        "Zm_v",
        "Zh==",     /* bits under the padding set (non-canonical) */
        "Zm9=",
        "=Zm9",
    };
    uint8_t out[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = 0;
        ck_assert_msg(!base64_decode(bad[i], strlen(bad[i]), out, &len), "accepted \"%s\"",
                      bad[i]);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("base64");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rfc4648_vectors);
    tcase_add_test(tc, test_all_byte_values_and_alphabet);
    tcase_add_test(tc, test_roundtrip_lengths);
    tcase_add_test(tc, test_lengths_overflow);
    tcase_add_test(tc, test_decode_rejects_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
