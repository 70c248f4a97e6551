/* tests/unit/test_status_log.c — engine/status.h and engine/log.h. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/log.h"
#include "engine/status.h"
#include "tests/testutil.h"

/* ---- status ------------------------------------------------------------------------ */

START_TEST(test_status_names)
{
    static const char *const want[STATUS_COUNT_] = {
        "ok",          "invalid_argument", "out_of_memory", "io",      "format",   "unsupported",
        "not_found",   "busy",             "cancelled",     "timeout", "device",   "internal"};
    for (int s = 0; s < STATUS_COUNT_; s++) {
        ck_assert_ptr_nonnull(status_name((enum status)s));
        ck_assert_str_eq(status_name((enum status)s), want[s]);
    }
    ck_assert_str_eq(status_name(STATUS_COUNT_), "unknown");
    ck_assert_str_eq(status_name((enum status)-1), "unknown");
    ck_assert_str_eq(status_name((enum status)1000), "unknown");
}
END_TEST

START_TEST(test_status_fail)
{
    struct errbuf err;
    errbuf_clear(&err);
    ck_assert_int_eq(err.code, STATUS_OK);
    ck_assert_str_eq(err.msg, "");
    enum status s = status_fail(&err, STATUS_FORMAT, "bad %s at %d", "header", 42);
    ck_assert_int_eq(s, STATUS_FORMAT);
    ck_assert_int_eq(err.code, STATUS_FORMAT);
    ck_assert_str_eq(err.msg, "bad header at 42");
    ck_assert_int_eq(status_fail(NULL, STATUS_IO, "ignored %d", 1), STATUS_IO);
    errbuf_clear(NULL);
    errbuf_clear(&err);
    ck_assert_int_eq(err.code, STATUS_OK);
    ck_assert_str_eq(err.msg, "");
}
END_TEST

START_TEST(test_status_fail_truncates)
{
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct errbuf err;
    status_fail(&err, STATUS_INTERNAL, "%s", big);
    ck_assert_uint_eq(strlen(err.msg), ERRBUF_MSG_MAX - 1);
}
END_TEST

START_TEST(test_status_wrap)
{
    struct errbuf err;
    errbuf_clear(&err);
    status_fail(&err, STATUS_NOT_FOUND, "tensor '%s' missing", "conv_in.weight");
    ck_assert_int_eq(status_wrap(&err, "loading %s", "unet"), STATUS_NOT_FOUND);
    ck_assert_str_eq(err.msg, "loading unet: tensor 'conv_in.weight' missing");
    ck_assert_int_eq(status_wrap(&err, "model"), STATUS_NOT_FOUND);
    ck_assert_str_eq(err.msg, "model: loading unet: tensor 'conv_in.weight' missing");
    ck_assert_int_eq(err.code, STATUS_NOT_FOUND);
    ck_assert_int_eq(status_wrap(NULL, "x"), STATUS_INTERNAL);
    /* a wrap that overflows is cut at the buffer's end, still terminated */
    char big[700];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(status_wrap(&err, "%s", big), STATUS_NOT_FOUND);
    ck_assert_uint_eq(strlen(err.msg), ERRBUF_MSG_MAX - 1);
    ck_assert(err.msg[0] == 'p');
    status_fail(&err, STATUS_IO, "%s", big);
    status_wrap(&err, "ctx");
    ck_assert_uint_eq(strlen(err.msg), ERRBUF_MSG_MAX - 1);
    ck_assert(strncmp(err.msg, "ctx: ppp", 8) == 0);
}
END_TEST

/* ---- log levels ------------------------------------------------------------------------ */

START_TEST(test_log_level_parse)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = LOG_DEBUG; i <= LOG_OFF; i++) {
        enum log_level lvl = (enum log_level)-1;
        ck_assert(log_level_parse(names[i], &lvl));
        ck_assert_int_eq(lvl, i);
        ck_assert_str_eq(log_level_name((enum log_level)i), names[i]);
    }
    enum log_level lvl = LOG_ERROR;
    ck_assert(!log_level_parse("verbose", &lvl));
    ck_assert(!log_level_parse("", &lvl));
    ck_assert(!log_level_parse("info ", &lvl));
    ck_assert(!log_level_parse("warning", &lvl));
    ck_assert_int_eq(lvl, LOG_ERROR); /* unchanged on failure */
    ck_assert_str_eq(log_level_name((enum log_level)99), "unknown");
}
END_TEST

START_TEST(test_log_enabled)
{
    log_configure(LOG_WARN, LOG_FORMAT_PLAIN, NULL);
    ck_assert(!log_enabled(LOG_DEBUG));
    ck_assert(!log_enabled(LOG_INFO));
    ck_assert(log_enabled(LOG_WARN));
    ck_assert(log_enabled(LOG_ERROR));
    ck_assert(!log_enabled(LOG_OFF));
    log_configure(LOG_OFF, LOG_FORMAT_PLAIN, NULL);
    ck_assert(!log_enabled(LOG_ERROR));
    log_configure(LOG_DEBUG, LOG_FORMAT_PLAIN, NULL);
    ck_assert(log_enabled(LOG_DEBUG));
    log_configure(LOG_INFO, LOG_FORMAT_PLAIN, NULL);
}
END_TEST

/* ---- log_format_line --------------------------------------------------------------------- */

/* 2023-11-14T22:13:20.500Z; .5 is exact in binary, so the milliseconds are too. */
#define T0 1700000000.5

START_TEST(test_format_plain)
{
    char buf[256];
    size_t len = log_format_line(buf, sizeof buf, LOG_FORMAT_PLAIN, T0, LOG_INFO, "engine",
                                 "hello world");
    ck_assert_str_eq(buf, "2023-11-14T22:13:20.500Z info  [engine] hello world\n");
    ck_assert_uint_eq(len, strlen(buf));
    log_format_line(buf, sizeof buf, LOG_FORMAT_PLAIN, 0.0, LOG_ERROR, "m", "x");
    ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z error [m] x\n");
    log_format_line(buf, sizeof buf, LOG_FORMAT_PLAIN, 1700000000.75, LOG_DEBUG, "m", "x");
    ck_assert_str_eq(buf, "2023-11-14T22:13:20.750Z debug [m] x\n");
}
END_TEST

START_TEST(test_format_plain_truncates)
{
    char msg[500];
    memset(msg, 'm', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    for (size_t cap = 64; cap < 200; cap += 7) {
        char buf[256];
        memset(buf, 0x5a, sizeof buf);
        size_t len = log_format_line(buf, cap, LOG_FORMAT_PLAIN, T0, LOG_WARN, "mod", msg);
        ck_assert_uint_lt(len, cap);
        ck_assert_uint_eq(strlen(buf), len);
        ck_assert(buf[len - 1] == '\n');
        for (size_t i = cap; i < sizeof buf; i++)
            ck_assert_msg((unsigned char)buf[i] == 0x5a, "cap %zu: byte %zu written", cap, i);
    }
    char tiny[63];
    ck_assert_uint_eq(log_format_line(tiny, sizeof tiny, LOG_FORMAT_PLAIN, T0, LOG_WARN, "m", "x"),
                      0);
}
END_TEST

/* Parses one JSON log line with jansson and checks its fields. */
static void check_json_line(const char *line, const char *level, const char *module,
                            const char *msg)
{
    json_error_t jerr;
    json_t *root = json_loads(line, 0, &jerr);
    ck_assert_msg(root != NULL, "invalid JSON (%s) in: %s", jerr.text, line);
    ck_assert(json_is_object(root));
    ck_assert_uint_eq(json_object_size(root), 4);
    ck_assert_str_eq(json_string_value(json_object_get(root, "level")), level);
    ck_assert_str_eq(json_string_value(json_object_get(root, "module")), module);
    ck_assert_str_eq(json_string_value(json_object_get(root, "msg")), msg);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(root, "ts")));
    json_decref(root);
}

START_TEST(test_format_json)
{
    char buf[1024];
    size_t len = log_format_line(buf, sizeof buf, LOG_FORMAT_JSON, T0, LOG_WARN, "api",
                                 "plain text");
    ck_assert_str_eq(buf, "{\"ts\":\"2023-11-14T22:13:20.500Z\",\"level\":\"warn\",\"module\":"
                          "\"api\",\"msg\":\"plain text\"}\n");
    ck_assert_uint_eq(len, strlen(buf));

    /* quotes, backslashes, newlines and every other control character */
    log_format_line(buf, sizeof buf, LOG_FORMAT_JSON, T0, LOG_INFO, "m", "a\"b\\c\nd\te\x01\x1f");
    ck_assert_ptr_nonnull(strstr(buf, "\"msg\":\"a\\\"b\\\\c\\nd\\u0009e\\u0001\\u001f\"}"));
    char all[200];
    size_t k = 0;
    for (int c = 1; c < 0x20; c++)
        all[k++] = (char)c;
    const char *rest = "\"\\/ quote\"d \x7f caf\xc3\xa9 \xe2\x82\xac";
    strcpy(all + k, rest);
    log_format_line(buf, sizeof buf, LOG_FORMAT_JSON, T0, LOG_ERROR, "mod\"ule\n", all);
    check_json_line(buf, "error", "mod\"ule\n", all);
    ck_assert(buf[strlen(buf) - 1] == '\n');
    ck_assert_ptr_null(strchr(buf, '\t')); /* raw control characters never appear */
}
END_TEST

START_TEST(test_format_json_truncates)
{
    /* a long message of control characters (6 bytes each escaped) is cut but the
     * line stays valid JSON */
    char msg[1024];
    for (size_t i = 0; i < sizeof msg - 1; i++)
        msg[i] = (i % 3) ? '\x02' : '"';
    msg[sizeof msg - 1] = '\0';
    for (size_t cap = 100; cap <= 600; cap++) { /* every way the cut can fall */
        char buf[600];
        size_t len = log_format_line(buf, cap, LOG_FORMAT_JSON, T0, LOG_INFO, "m", msg);
        ck_assert_uint_lt(len, cap);
        ck_assert_uint_eq(strlen(buf), len);
        json_error_t jerr;
        json_t *root = json_loads(buf, 0, &jerr);
        ck_assert_msg(root != NULL, "cap %zu: invalid JSON (%s): %s", cap, jerr.text, buf);
        const char *got = json_string_value(json_object_get(root, "msg"));
        ck_assert_ptr_nonnull(got);
        ck_assert(strncmp(got, msg, strlen(got)) == 0); /* a prefix of the message */
        json_decref(root);
    }

    /* a module name or header longer than the buffer: nothing written past cap */
    char module[300];
    memset(module, 'q', sizeof module - 1);
    module[sizeof module - 1] = '\0';
    for (size_t cap = 64; cap < 400; cap += 5) {
        char out[512];
        memset(out, 0x5a, sizeof out);
        size_t n = log_format_line(out, cap, LOG_FORMAT_JSON, T0, LOG_DEBUG, module, "msg");
        ck_assert_uint_lt(n, cap);
        ck_assert_uint_eq(strlen(out), n);
        for (size_t i = cap; i < sizeof out; i++)
            ck_assert_msg((unsigned char)out[i] == 0x5a, "cap %zu: byte %zu written", cap, i);
    }
    /* a timestamp far in the future makes the header itself longer */
    char out[128];
    memset(out, 0x5a, sizeof out);
    size_t n = log_format_line(out, 64, LOG_FORMAT_JSON, 1e15, LOG_DEBUG, "m", "x");
    ck_assert_uint_lt(n, 64);
    for (size_t i = 64; i < sizeof out; i++)
        ck_assert((unsigned char)out[i] == 0x5a);
}
END_TEST

/* ---- log_msg ------------------------------------------------------------------------------ */

START_TEST(test_log_msg_to_sink)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    log_configure(LOG_INFO, LOG_FORMAT_JSON, f);
    LOG_DEBUGF("test", "hidden %d", 1);
    LOG_INFOF("test", "shown %d \"%s\"", 2, "q");
    log_msg(LOG_OFF, "test", "never");
    log_configure(LOG_INFO, LOG_FORMAT_PLAIN, NULL);
    rewind(f);
    char line[2048];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    check_json_line(line, "info", "test", "shown 2 \"q\"");
    ck_assert_ptr_null(fgets(line, sizeof line, f)); /* exactly one line */
    fclose(f);
}
END_TEST

struct log_thread_arg {
    int id;
};

static void *log_thread(void *p)
{
    const struct log_thread_arg *a = p;
    for (int i = 0; i < 300; i++)
        LOG_WARNF("thr", "thread %d line %d %s", a->id, i,
                  "padding padding padding padding padding padding padding padding");
    return NULL;
}

START_TEST(test_log_lines_do_not_interleave)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    log_configure(LOG_DEBUG, LOG_FORMAT_JSON, f);
    enum { T = 4 };
    pthread_t th[T];
    struct log_thread_arg args[T];
    for (int t = 0; t < T; t++) {
        args[t].id = t;
        ck_assert_int_eq(pthread_create(&th[t], NULL, log_thread, &args[t]), 0);
    }
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    log_configure(LOG_INFO, LOG_FORMAT_PLAIN, NULL);
    rewind(f);
    char line[2048];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t jerr;
        json_t *root = json_loads(line, 0, &jerr);
        ck_assert_msg(root != NULL, "line %d broken: %s", count, line);
        json_decref(root);
        count++;
    }
    ck_assert_int_eq(count, T * 300);
    fclose(f);
}
END_TEST

static Suite *status_log_suite(void)
{
    Suite *s = suite_create("status_log");
    TCase *st = tcase_create("status");
    tcase_add_test(st, test_status_names);
    tcase_add_test(st, test_status_fail);
    tcase_add_test(st, test_status_fail_truncates);
    tcase_add_test(st, test_status_wrap);
    suite_add_tcase(s, st);
    TCase *lg = tcase_create("log");
    tcase_add_test(lg, test_log_level_parse);
    tcase_add_test(lg, test_log_enabled);
    tcase_add_test(lg, test_format_plain);
    tcase_add_test(lg, test_format_plain_truncates);
    tcase_add_test(lg, test_format_json);
    tcase_add_test(lg, test_format_json_truncates);
    tcase_add_test(lg, test_log_msg_to_sink);
    tcase_add_test(lg, test_log_lines_do_not_interleave);
    suite_add_tcase(s, lg);
    return s;
}

int main(void)
{
    return test_run_suite(status_log_suite());
}
