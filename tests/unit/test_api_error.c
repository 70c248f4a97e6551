/* tests/unit/test_api_error.c — api/api_error: the status → HTTP table for every status,
 * the OpenAI error type per HTTP status, the error body parsed back with jansson (param
 * and code null when absent, escaping, invalid UTF-8 replaced), the field taken from a
 * message, messages cut at a UTF-8 boundary, api_error_format's snprintf contract.
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_error.h"
#include "tests/testutil.h"

START_TEST(test_http_status_table)
{
    static const struct {
        enum status s;
        int http;
    } table[] = {
        {STATUS_OK, 200},          {STATUS_INVALID_ARGUMENT, 400}, {STATUS_OUT_OF_MEMORY, 503},
        {STATUS_IO, 500},          {STATUS_FORMAT, 400},           {STATUS_UNSUPPORTED, 400},
        {STATUS_NOT_FOUND, 404},   {STATUS_BUSY, 429},             {STATUS_CANCELLED, 503},
        {STATUS_TIMEOUT, 504},     {STATUS_DEVICE, 500},           {STATUS_INTERNAL, 500},
    };
    ck_assert_uint_eq(sizeof table / sizeof table[0], STATUS_COUNT_); /* every status */
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        ck_assert_msg(api_http_status(table[i].s) == table[i].http, "%s → %d, want %d",
                      status_name(table[i].s), api_http_status(table[i].s), table[i].http);
    ck_assert_int_eq(api_http_status(STATUS_COUNT_), 500);
    ck_assert_int_eq(api_http_status((enum status)999), 500);
}
END_TEST

START_TEST(test_types)
{
    ck_assert_str_eq(api_error_type_for_http(400), "invalid_request_error");
    ck_assert_str_eq(api_error_type_for_http(404), "invalid_request_error");
    ck_assert_str_eq(api_error_type_for_http(413), "invalid_request_error");
    ck_assert_str_eq(api_error_type_for_http(401), "authentication_error");
    ck_assert_str_eq(api_error_type_for_http(403), "permission_error");
    ck_assert_str_eq(api_error_type_for_http(429), "rate_limit_error");
    ck_assert_str_eq(api_error_type_for_http(500), "server_error");
    ck_assert_str_eq(api_error_type_for_http(503), "server_error");
}
END_TEST

/* Parses an error body and checks its one key "error" with exactly four members. */
static json_t *parse_error(const struct api_error *e)
{
    size_t len = 0;
    char *body = api_error_body(e, &len);
    ck_assert_ptr_nonnull(body);
    ck_assert_uint_eq(strlen(body), len);
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    ck_assert_msg(root != NULL, "%s: %s", body, je.text);
    free(body);
    ck_assert_uint_eq(json_object_size(root), 1);
    json_t *err = json_object_get(root, "error");
    ck_assert(json_is_object(err));
    ck_assert_uint_eq(json_object_size(err), 4);
    json_incref(err);
    json_decref(root);
    return err;
}

START_TEST(test_body_with_param_and_code)
{
    struct api_error e;
    api_error_set(&e, 404, NULL, "model", "model_not_found", "model: \"%s\" does not exist",
                  "x");
    ck_assert_int_eq(e.http, 404);
    json_t *err = parse_error(&e);
    ck_assert_str_eq(json_string_value(json_object_get(err, "message")),
                     "model: \"x\" does not exist");
    ck_assert_str_eq(json_string_value(json_object_get(err, "type")), "invalid_request_error");
    ck_assert_str_eq(json_string_value(json_object_get(err, "param")), "model");
    ck_assert_str_eq(json_string_value(json_object_get(err, "code")), "model_not_found");
    json_decref(err);
}
END_TEST

START_TEST(test_body_nulls_and_escaping)
{
    struct api_error e;
    const char *msg = "quote \" backslash \\ nl \n tab \t bell \x01 del \x7f café 🐶 end";
    api_error_set(&e, 429, NULL, NULL, NULL, "%s", msg);
    json_t *err = parse_error(&e);
    ck_assert_str_eq(json_string_value(json_object_get(err, "message")), msg);
    ck_assert_str_eq(json_string_value(json_object_get(err, "type")), "rate_limit_error");
    ck_assert(json_is_null(json_object_get(err, "param")));
    ck_assert(json_is_null(json_object_get(err, "code")));
    json_decref(err);
    /* the raw body spells the escapes as JSON does */
    char buf[512];
    api_error_format(&e, buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "\\u0001"));
    ck_assert_ptr_nonnull(strstr(buf, "\\n tab \\t"));
    ck_assert_ptr_nonnull(strstr(buf, "café 🐶")); /* non-ASCII passed as UTF-8 */
}
END_TEST

START_TEST(test_invalid_utf8_replaced)
{
    struct api_error e;
    api_error_set(&e, 400, NULL, "prompt", NULL, "prompt: bad \xff\xfe bytes \xc3");
    json_t *err = parse_error(&e); /* jansson rejects invalid UTF-8: it parsed */
    ck_assert_str_eq(json_string_value(json_object_get(err, "message")),
                     "prompt: bad \xEF\xBF\xBD\xEF\xBF\xBD bytes \xEF\xBF\xBD");
    json_decref(err);
}
END_TEST

START_TEST(test_custom_type_and_long_strings)
{
    struct api_error e;
    char longmsg[2000];
    memset(longmsg, 0, sizeof longmsg);
    for (int i = 0; i < 600; i++)
        strcat(longmsg, "é"); /* 2 bytes each: 1200 bytes */
    api_error_set(&e, 503, "server_error", NULL, "draining", "%s", longmsg);
    ck_assert_str_eq(e.type, "server_error");
    ck_assert_str_eq(e.code, "draining");
    const size_t n = strlen(e.message);
    ck_assert_uint_lt(n, API_ERROR_MESSAGE_MAX);
    ck_assert_uint_eq(n % 2, 0); /* cut between characters, not inside one */
    json_t *err = parse_error(&e);
    json_decref(err);
    char longparam[200];
    memset(longparam, 'p', sizeof longparam - 1);
    longparam[sizeof longparam - 1] = '\0';
    api_error_set(&e, 400, NULL, longparam, NULL, "x");
    ck_assert_uint_eq(strlen(e.param), API_ERROR_PARAM_MAX - 1);
}
END_TEST

START_TEST(test_from_status)
{
    struct api_error e;
    struct errbuf err;
    status_fail(&err, STATUS_INVALID_ARGUMENT, "steps: must be in [1, 150] (got 0)");
    api_error_from_status(&e, STATUS_INVALID_ARGUMENT, &err, NULL);
    ck_assert_int_eq(e.http, 400);
    ck_assert_str_eq(e.param, "steps");
    ck_assert_str_eq(e.message, "steps: must be in [1, 150] (got 0)");
    ck_assert_str_eq(e.type, "invalid_request_error");

    status_fail(&err, STATUS_INVALID_ARGUMENT, "Not a field: x");
    api_error_from_status(&e, STATUS_INVALID_ARGUMENT, &err, NULL);
    ck_assert_str_eq(e.param, ""); /* no lower-case identifier before ':' */

    status_fail(&err, STATUS_BUSY, "queue: full");
    api_error_from_status(&e, STATUS_BUSY, &err, NULL);
    ck_assert_int_eq(e.http, 429);
    ck_assert_str_eq(e.param, ""); /* fields only for invalid arguments */
    ck_assert_str_eq(e.type, "rate_limit_error");

    api_error_from_status(&e, STATUS_INTERNAL, NULL, "");
    ck_assert_int_eq(e.http, 500);
    ck_assert_str_eq(e.message, "internal");
    ck_assert_str_eq(e.type, "server_error");

    status_fail(&err, STATUS_NOT_FOUND, "no such image");
    api_error_from_status(&e, STATUS_NOT_FOUND, &err, "id");
    ck_assert_int_eq(e.http, 404);
    ck_assert_str_eq(e.param, "id");
}
END_TEST

START_TEST(test_format_snprintf_contract)
{
    struct api_error e;
    api_error_set(&e, 400, NULL, "n", NULL, "n: must be an integer");
    const size_t need = api_error_format(&e, NULL, 0);
    char *buf = malloc(need + 1);
    ck_assert_uint_eq(api_error_format(&e, buf, need + 1), need);
    ck_assert_uint_eq(strlen(buf), need);
    ck_assert_str_eq(buf, "{\"error\":{\"message\":\"n: must be an integer\",\"type\":"
                          "\"invalid_request_error\",\"param\":\"n\",\"code\":null}}");
    char small[10];
    ck_assert_uint_eq(api_error_format(&e, small, sizeof small), need);
    ck_assert_str_eq(small, ""); /* too small: empty, never a cut JSON text */
    free(buf);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("api_error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_http_status_table);
    tcase_add_test(tc, test_types);
    tcase_add_test(tc, test_body_with_param_and_code);
    tcase_add_test(tc, test_body_nulls_and_escaping);
    tcase_add_test(tc, test_invalid_utf8_replaced);
    tcase_add_test(tc, test_custom_type_and_long_strings);
    tcase_add_test(tc, test_from_status);
    tcase_add_test(tc, test_format_snprintf_contract);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
