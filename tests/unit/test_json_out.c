/* tests/unit/test_json_out.c — api/json_out: the counting and writing passes agree,
 * nothing is written past the capacity, strings escape as JSON requires (checked by
 * parsing back with jansson) and invalid UTF-8 becomes U+FFFD, numbers, base64.
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_out.h"
#include "tests/testutil.h"

/* Emits ["s"] through both passes; returns the malloc'ed text. */
static char *string_doc(const char *s, size_t n)
{
    struct json_out c = json_out_counter();
    json_out_raw(&c, "[", 1);
    json_out_string_n(&c, s, n);
    json_out_raw(&c, "]", 1);
    char *buf = malloc(c.len + 1);
    struct json_out o = json_out_buffer(buf, c.len);
    json_out_raw(&o, "[", 1);
    json_out_string_n(&o, s, n);
    json_out_raw(&o, "]", 1);
    ck_assert(!o.overflow);
    ck_assert_uint_eq(o.len, c.len);
    buf[o.len] = '\0';
    return buf;
}

/* The one string of string_doc's output as jansson reads it (must be valid JSON). */
static char *parse_back(const char *doc)
{
    json_error_t je;
    json_t *a = json_loads(doc, 0, &je);
    ck_assert_msg(a != NULL, "%s: %s", doc, je.text);
    char *s = strdup(json_string_value(json_array_get(a, 0)));
    json_decref(a);
    return s;
}

START_TEST(test_every_ascii_byte_round_trips)
{
    char in[128];
    for (int i = 1; i < 128; i++)
        in[i - 1] = (char)i;
    in[127] = '\0';
    char *doc = string_doc(in, 127);
    char *back = parse_back(doc);
    ck_assert_str_eq(back, in);
    ck_assert_ptr_nonnull(strstr(doc, "\\u001f"));
    ck_assert_ptr_nonnull(strstr(doc, "\\b\\t\\n\\u000b\\f\\r"));
    ck_assert_ptr_nonnull(strstr(doc, "!\\\"#"));
    ck_assert_ptr_nonnull(strstr(doc, "[\\\\]"));
    free(doc);
    free(back);
}
END_TEST

START_TEST(test_nul_and_unicode)
{
    const char in[] = "a\0b é 中 🐶";
    char *doc = string_doc(in, sizeof in - 1);
    ck_assert_ptr_nonnull(strstr(doc, "a\\u0000b é 中 🐶")); /* passed as UTF-8 */
    free(doc);
}
END_TEST

START_TEST(test_invalid_utf8_becomes_replacement)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"\xff", "\xEF\xBF\xBD"},
        {"a\xc3", "a\xEF\xBF\xBD"},                 /* truncated 2-byte sequence */
        {"\xc0\xaf", "\xEF\xBF\xBD\xEF\xBF\xBD"},   /* overlong '/' */
        {"\xed\xa0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
        {"ok \xe2\x82\xac", "ok \xe2\x82\xac"},      /* € stays */
        {"\xf0\x9f\x90\xb6", "\xf0\x9f\x90\xb6"},    /* 🐶 stays */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *doc = string_doc(cases[i].in, strlen(cases[i].in));
        char *back = parse_back(doc);
        ck_assert_msg(strcmp(back, cases[i].want) == 0, "case %zu: %s", i, doc);
        free(doc);
        free(back);
    }
}
END_TEST

START_TEST(test_never_past_capacity)
{
    char buf[16];
    memset(buf, '#', sizeof buf);
    struct json_out o = json_out_buffer(buf, 8);
    json_out_string(&o, "0123456789");
    ck_assert(o.overflow);
    ck_assert_uint_eq(o.len, 12);
    for (int i = 8; i < 16; i++)
        ck_assert_int_eq(buf[i], '#');
    struct json_out b = json_out_buffer(buf, 4);
    const uint8_t data[6] = {1, 2, 3, 4, 5, 6};
    json_out_base64(&b, data, sizeof data);
    ck_assert(b.overflow);
    ck_assert_uint_eq(b.len, 10);
    for (int i = 4; i < 16; i++)
        ck_assert_int_eq(buf[i], '#');
}
END_TEST

START_TEST(test_numbers_and_null)
{
    char buf[256];
    struct json_out o = json_out_buffer(buf, sizeof buf - 1);
    json_out_i64(&o, INT64_MIN);
    json_out_raw(&o, " ", 1);
    json_out_u64(&o, UINT64_MAX);
    json_out_raw(&o, " ", 1);
    json_out_fixed(&o, 12.34567, 3);
    json_out_raw(&o, " ", 1);
    json_out_fixed(&o, NAN, 3);
    json_out_raw(&o, " ", 1);
    json_out_fixed(&o, -INFINITY, 2);
    json_out_raw(&o, " ", 1);
    json_out_fixed(&o, 1e300, 3);
    json_out_raw(&o, " ", 1);
    json_out_string(&o, NULL);
    json_out_raw(&o, " ", 1);
    json_out_base64(&o, (const uint8_t *)"foob", 4);
    buf[o.len] = '\0';
    ck_assert_str_eq(buf, "-9223372036854775808 18446744073709551615 12.346 0.000 0.00 0.000 "
                          "null \"Zm9vYg==\"");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("json_out");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_every_ascii_byte_round_trips);
    tcase_add_test(tc, test_nul_and_unicode);
    tcase_add_test(tc, test_invalid_utf8_becomes_replacement);
    tcase_add_test(tc, test_never_past_capacity);
    tcase_add_test(tc, test_numbers_and_null);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
