/* tests/unit/test_access_log.c — access-log lines parse as JSON with the right
 * fields (escaping, invalid UTF-8, long fields, optional keys); request ids. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/access_log.h"
#include "tests/testutil.h"

static json_t *format_parse(const struct access_log_entry *e)
{
    static char buf[ACCESS_LOG_LINE_MAX];
    size_t n = access_log_format(e, buf, sizeof buf);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert_int_eq(buf[n - 1], '\n');
    ck_assert_ptr_null(memchr(buf, '\n', n - 1)); /* one line */
    json_error_t jerr;
    json_t *j = json_loadb(buf, n, 0, &jerr);
    ck_assert_msg(j != NULL, "not JSON (%s): %s", jerr.text, buf);
    return j;
}

START_TEST(test_fields)
{
    struct access_log_entry e;
    access_log_entry_init(&e);
    e.ts = 1767323045.678; /* 2026-01-02T03:04:05.678Z */
    e.request_id = "req-1";
    e.method = "POST";
    e.path = "/v1/images/generations";
    e.status = 200;
    e.bytes = 123456789012ULL;
    e.duration_ms = 812.45;
    e.remote = "127.0.0.1";
    e.user = "user-42";
    e.queue_ms = 3.5;
    e.total_ms = 805.25;
    json_t *j = format_parse(&e);
    ck_assert_str_eq(json_string_value(json_object_get(j, "ts")), "2026-01-02T03:04:05.678Z");
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "access");
    ck_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "req-1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "POST");
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/v1/images/generations");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "bytes")), 123456789012LL);
    ck_assert_double_eq_tol(json_number_value(json_object_get(j, "duration_ms")), 812.45, 1e-3);
    ck_assert_str_eq(json_string_value(json_object_get(j, "remote")), "127.0.0.1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "user")), "user-42");
    ck_assert_double_eq_tol(json_number_value(json_object_get(j, "queue_ms")), 3.5, 1e-3);
    ck_assert_double_eq_tol(json_number_value(json_object_get(j, "total_ms")), 805.25, 1e-3);
    json_decref(j);

    /* the optional fields left out */
    access_log_entry_init(&e);
    e.ts = 0;
    e.method = "GET";
    e.path = "/livez";
    e.status = 200;
    e.duration_ms = 0.01;
    j = format_parse(&e);
    ck_assert_ptr_null(json_object_get(j, "user"));
    ck_assert_ptr_null(json_object_get(j, "remote"));
    ck_assert_ptr_null(json_object_get(j, "queue_ms"));
    ck_assert_ptr_null(json_object_get(j, "total_ms"));
    ck_assert_str_eq(json_string_value(json_object_get(j, "request_id")), ""); /* NULL → "" */
    json_decref(j);
}
END_TEST

START_TEST(test_escaping)
{
    struct access_log_entry e;
    access_log_entry_init(&e);
    e.method = "GET";
    e.request_id = "id";
    e.path = "/a\"b\\c\nd\te\x01\x7f/é/日本";
    e.user = "bad \xff\xfe utf8 \xc3 \xe6\x97 \xed\xa0\x80 \xc0\xaf end";
    e.status = 404;
    e.duration_ms = NAN;
    e.queue_ms = INFINITY;
    json_t *j = format_parse(&e);
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")),
                     "/a\"b\\c\nd\te\x01\x7f/é/日本");
    ck_assert_str_eq(json_string_value(json_object_get(j, "user")),
                     "bad \xef\xbf\xbd\xef\xbf\xbd utf8 \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
                     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd end");
    ck_assert_double_eq(json_number_value(json_object_get(j, "duration_ms")), 0);
    ck_assert_double_eq(json_number_value(json_object_get(j, "queue_ms")), 0);
    json_decref(j);
}
END_TEST

/* Fields are cut at ACCESS_LOG_FIELD_MAX bytes, never inside a UTF-8 sequence as
 * raw bytes; the worst case (every byte escaped to 6) still fits. */
START_TEST(test_long_fields)
{
    static char ctrl[4 * ACCESS_LOG_FIELD_MAX], utf[4 * ACCESS_LOG_FIELD_MAX];
    memset(ctrl, 0x01, sizeof ctrl - 1);
    for (size_t i = 0; i + 3 < sizeof utf; i += 3)
        memcpy(utf + i, "\xe6\x97\xa5", 3); /* 日, 3 bytes: 512 is not a multiple of 3 */
    struct access_log_entry e;
    access_log_entry_init(&e);
    e.request_id = e.method = e.path = e.remote = ctrl;
    e.user = utf;
    e.status = 200;
    json_t *j = format_parse(&e);
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "path"))), ACCESS_LOG_FIELD_MAX);
    const char *u = json_string_value(json_object_get(j, "user"));
    /* 170 whole characters; the character cut at byte 512 is dropped whole */
    ck_assert_uint_eq(strlen(u), 170 * 3);
    json_decref(j);
    char small[100];
    ck_assert_uint_eq(access_log_format(&e, small, sizeof small), 0);
    ck_assert_str_eq(small, "");
}
END_TEST

START_TEST(test_request_id_valid)
{
    ck_assert(request_id_valid("abc-123_XYZ.:/+=", 16));
    ck_assert(request_id_valid("0123456789abcdef0123456789abcdef", 32));
    ck_assert(!request_id_valid("", 0));
    ck_assert(!request_id_valid(NULL, 0));
    ck_assert(!request_id_valid("a b", 3));
    ck_assert(!request_id_valid("a\"b", 3));
    ck_assert(!request_id_valid("a'b", 3));
    ck_assert(!request_id_valid("a\\b", 3));
    ck_assert(!request_id_valid("a\rb", 3));
    ck_assert(!request_id_valid("a\nb", 3));
    ck_assert(!request_id_valid("\xc3\xa9", 2));
    char id[200];
    memset(id, 'a', sizeof id);
    ck_assert(request_id_valid(id, REQUEST_ID_MAX));
    ck_assert(!request_id_valid(id, REQUEST_ID_MAX + 1));
}
END_TEST

START_TEST(test_request_id_choose)
{
    char out[REQUEST_ID_BUF], out2[REQUEST_ID_BUF];
    struct errbuf err;
    ck_assert_int_eq(request_id_choose("client-id-7", out, &err), STATUS_OK);
    ck_assert_str_eq(out, "client-id-7");
    ck_assert_int_eq(request_id_choose(NULL, out, &err), STATUS_OK);
    ck_assert_uint_eq(strlen(out), 32);
    ck_assert_uint_eq(strspn(out, "0123456789abcdef"), 32);
    ck_assert_int_eq(request_id_choose("bad id", out2, &err), STATUS_OK);
    ck_assert_uint_eq(strlen(out2), 32);
    ck_assert_str_ne(out, out2); /* 128 random bits: equal ids would be a broken generator */
    char long_id[300];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    ck_assert_int_eq(request_id_choose(long_id, out, &err), STATUS_OK);
    ck_assert_uint_eq(strlen(out), 32); /* too long: replaced, not truncated */
    long_id[REQUEST_ID_MAX] = '\0';
    ck_assert_int_eq(request_id_choose(long_id, out, &err), STATUS_OK);
    ck_assert_str_eq(out, long_id);
}
END_TEST

START_TEST(test_write_one_line)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct access_log_entry e;
    access_log_entry_init(&e);
    e.method = "GET";
    e.path = "/metrics";
    e.status = 200;
    access_log_write(f, &e);
    access_log_write(f, &e);
    fclose(f);
    int lines = 0;
    for (char *p = buf; (p = strchr(p, '\n')); p++)
        lines++;
    ck_assert_int_eq(lines, 2);
    free(buf);
}
END_TEST

static Suite *access_log_suite(void)
{
    Suite *s = suite_create("access_log");
    TCase *tc = tcase_create("access_log");
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_long_fields);
    tcase_add_test(tc, test_request_id_valid);
    tcase_add_test(tc, test_request_id_choose);
    tcase_add_test(tc, test_write_one_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(access_log_suite());
}
