/* tests/unit/test_cors.c — CORS: off means no headers; allow-list matching with
 * normalisation; preflight allowed/refused; "*" never with credentials. */
#include <check.h>
#include <string.h>

#include "server/cors.h"
#include "tests/testutil.h"

static struct cors *make(const char *const *origins, int n)
{
    struct cors *c = NULL;
    struct errbuf err;
    ck_assert_int_eq(cors_create(origins, n, &c, &err), STATUS_OK);
    return c;
}

/* The value of header name in h, NULL when absent; no header appears twice. */
static const char *get(const struct cors_headers *h, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < h->n; i++)
        if (strcasecmp(h->h[i].name, name) == 0) {
            ck_assert_msg(v == NULL, "%s twice", name);
            v = h->h[i].value;
        }
    return v;
}

static void no_credentials(const struct cors_headers *h)
{
    ck_assert_ptr_null(get(h, "Access-Control-Allow-Credentials"));
}

START_TEST(test_off)
{
    struct cors *c = make(NULL, 0);
    ck_assert(!cors_enabled(c));
    ck_assert(!cors_enabled(NULL));
    struct cors_headers h;
    cors_simple(c, "https://a.example", &h);
    ck_assert_int_eq(h.n, 0);
    ck_assert(!cors_is_preflight(c, "OPTIONS", "https://a.example", "POST"));
    ck_assert_int_eq(cors_preflight(c, "https://a.example", "POST", NULL, &h), 403);
    ck_assert_int_eq(h.n, 0);
    cors_destroy(c);
}
END_TEST

START_TEST(test_allow_list)
{
    const char *list[] = {"https://App.Example.com", "http://localhost:3000",
                          "https://secure.example:443", "http://plain.example:80"};
    struct cors *c = make(list, 4);
    ck_assert(cors_enabled(c));
    struct cors_headers h;
    static const struct { const char *origin; bool ok; } cases[] = {
        {"https://app.example.com", true},
        {"https://APP.example.com", true},     /* host is case-insensitive */
        {"http://app.example.com", false},     /* scheme differs */
        {"https://app.example.com:8443", false}, /* port differs */
        {"https://app.example.com:443", true}, /* default port = none */
        {"https://app.example.com.evil.io", false},
        {"https://evil.io/https://app.example.com", false},
        {"http://localhost:3000", true},
        {"http://localhost", false},
        {"http://localhost:30000", false},
        {"https://secure.example", true},
        {"http://plain.example", true},
        {"null", false},
        {"", false},
        {"https://app.example.com/", false},  /* an Origin has no path */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cors_simple(c, cases[i].origin, &h);
        ck_assert_str_eq(get(&h, "Vary"), "Origin");
        const char *acao = get(&h, "Access-Control-Allow-Origin");
        if (cases[i].ok) {
            ck_assert_msg(acao && strcmp(acao, cases[i].origin) == 0, "%s", cases[i].origin);
            ck_assert_ptr_nonnull(strstr(get(&h, "Access-Control-Expose-Headers"), "X-Request-Id"));
        } else {
            ck_assert_msg(acao == NULL, "%s allowed", cases[i].origin);
        }
        no_credentials(&h);
    }
    cors_simple(c, NULL, &h); /* no Origin: same-origin or not a browser */
    ck_assert_int_eq(h.n, 1);
    ck_assert_str_eq(get(&h, "Vary"), "Origin");
    cors_destroy(c);
}
END_TEST

START_TEST(test_preflight)
{
    const char *list[] = {"https://app.example"};
    struct cors *c = make(list, 1);
    struct cors_headers h;
    ck_assert(cors_is_preflight(c, "OPTIONS", "https://app.example", "POST"));
    ck_assert(!cors_is_preflight(c, "OPTIONS", "https://app.example", NULL));
    ck_assert(!cors_is_preflight(c, "OPTIONS", NULL, "POST"));
    ck_assert(!cors_is_preflight(c, "POST", "https://app.example", "POST"));

    ck_assert_int_eq(cors_preflight(c, "https://app.example", "POST",
                                    "content-type,authorization, x-request-id", &h), 204);
    ck_assert_str_eq(get(&h, "Access-Control-Allow-Origin"), "https://app.example");
    ck_assert_ptr_nonnull(strstr(get(&h, "Access-Control-Allow-Methods"), "POST"));
    ck_assert_str_eq(get(&h, "Access-Control-Allow-Headers"),
                     "content-type, authorization, x-request-id");
    ck_assert_str_eq(get(&h, "Access-Control-Max-Age"), "600");
    ck_assert_ptr_nonnull(strstr(get(&h, "Vary"), "Origin"));
    no_credentials(&h);

    /* no requested headers: no Allow-Headers */
    ck_assert_int_eq(cors_preflight(c, "https://app.example", "GET", NULL, &h), 204);
    ck_assert_ptr_null(get(&h, "Access-Control-Allow-Headers"));
    /* refused: origin, method, malformed header list (injection attempt) */
    ck_assert_int_eq(cors_preflight(c, "https://other.example", "POST", NULL, &h), 403);
    ck_assert_ptr_null(get(&h, "Access-Control-Allow-Origin"));
    ck_assert_ptr_nonnull(get(&h, "Vary"));
    ck_assert_int_eq(cors_preflight(c, "https://app.example", "DELETE", NULL, &h), 403);
    ck_assert_ptr_null(get(&h, "Access-Control-Allow-Origin"));
    ck_assert_int_eq(cors_preflight(c, "https://app.example", "POST", "x\r\nSet-Cookie: a", &h),
                     403);
    ck_assert_int_eq(cors_preflight(c, "https://app.example", "POST", "a b", &h), 403);
    char huge[CORS_VALUE_MAX + 10];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    ck_assert_int_eq(cors_preflight(c, "https://app.example", "POST", huge, &h), 403);
    cors_destroy(c);
}
END_TEST

START_TEST(test_star)
{
    const char *list[] = {"https://app.example", "*"};
    struct cors *c = make(list, 2);
    struct cors_headers h;
    cors_simple(c, "https://anything.example", &h);
    ck_assert_str_eq(get(&h, "Access-Control-Allow-Origin"), "*");
    no_credentials(&h);
    ck_assert_int_eq(cors_preflight(c, "https://anything.example", "POST", "authorization", &h),
                     204);
    ck_assert_str_eq(get(&h, "Access-Control-Allow-Origin"), "*");
    no_credentials(&h);
    cors_destroy(c);
}
END_TEST

START_TEST(test_bad_origins)
{
    static const char *bad[] = {"app.example", "ftp://app.example", "https://",
                                "https://app.example/", "https://app.example/path",
                                "https://app.example:0", "https://app.example:99999",
                                "https://app.example:", "https://a b", "https://app.example:80x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cors *c = (struct cors *)1;
        struct errbuf err;
        ck_assert_msg(cors_create(&bad[i], 1, &c, &err) == STATUS_INVALID_ARGUMENT, "%s", bad[i]);
        ck_assert_ptr_null(c);
        ck_assert_ptr_nonnull(strstr(err.msg, "cors origin"));
    }
}
END_TEST

static Suite *cors_suite(void)
{
    Suite *s = suite_create("cors");
    TCase *tc = tcase_create("cors");
    tcase_add_test(tc, test_off);
    tcase_add_test(tc, test_allow_list);
    tcase_add_test(tc, test_preflight);
    tcase_add_test(tc, test_star);
    tcase_add_test(tc, test_bad_origins);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(cors_suite());
}
