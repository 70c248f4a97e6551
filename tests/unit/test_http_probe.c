/* tests/unit/test_http_probe.c — server/http_probe.h and server/cmd_healthcheck.h against a
 * scripted responder thread on a loopback port: healthy (200), unready (503), down
 * (nothing listening), slow (deadline), garbage, a flood without an end of head, a
 * close without a response, the bounded body, wildcard hosts, and the option parsing
 * (flags over environment over defaults). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/cmd_healthcheck.h"
#include "server/http_probe.h"
#include "tests/testutil.h"

/* ---- the responder ------------------------------------------------------------------- */

/* One connection: read the request head, wait delay_ms, send response, then
 * flood_bytes of 'a' (or close at once when response is NULL). */
struct responder {
    int listen_fd, port, family;
    const char *response;
    int delay_ms;
    size_t flood_bytes;
    char request[2048];
    size_t request_len;
    size_t flood_sent;
    pthread_t thread;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void read_request(struct responder *r, int fd)
{
    long deadline = mono_ms() + 3000;
    while (r->request_len + 1 < sizeof r->request && mono_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, r->request + r->request_len,
                         sizeof r->request - 1 - r->request_len, 0);
        if (n <= 0)
            break;
        r->request_len += (size_t)n;
        r->request[r->request_len] = '\0';
        if (strstr(r->request, "\r\n\r\n"))
            break;
    }
}

static void *responder_main(void *arg)
{
    struct responder *r = arg;
    struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};
    if (poll(&p, 1, 5000) <= 0)
        return NULL;
    int fd = accept(r->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    read_request(r, fd);
    if (r->delay_ms)
        sleep_ms(r->delay_ms);
    if (r->response)
        (void)!send(fd, r->response, strlen(r->response), MSG_NOSIGNAL);
    char chunk[4096];
    memset(chunk, 'a', sizeof chunk);
    while (r->flood_sent < r->flood_bytes) {
        ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        r->flood_sent += (size_t)n;
    }
    close(fd);
    return NULL;
}

/* Listens on the loopback (IPv4, or IPv6 when v6) on a free port.  False when the
 * address family is not available here. */
static bool responder_listen(struct responder *r, bool v6)
{
    r->family = v6 ? AF_INET6 : AF_INET;
    r->listen_fd = socket(r->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->listen_fd < 0)
        return false;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    if (bind(r->listen_fd, (struct sockaddr *)&ss, len) != 0 || listen(r->listen_fd, 4) != 0) {
        close(r->listen_fd);
        return false;
    }
    len = sizeof ss;
    ck_assert_int_eq(getsockname(r->listen_fd, (struct sockaddr *)&ss, &len), 0);
    r->port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    return true;
}

static void responder_start(struct responder *r, const char *response)
{
    r->response = response;
    if (r->listen_fd <= 0)
        ck_assert(responder_listen(r, false));
    ck_assert_int_eq(pthread_create(&r->thread, NULL, responder_main, r), 0);
}

static void responder_stop(struct responder *r)
{
    pthread_join(r->thread, NULL);
    close(r->listen_fd);
}

static enum status probe(int port, const char *host, const char *path, int timeout_ms,
                         struct http_probe_result *res, struct errbuf *err)
{
    struct http_probe_request req = {
        .host = host, .port = port, .path = path, .timeout_ms = timeout_ms};
    errbuf_clear(err);
    return http_probe_get(&req, res, err);
}

/* ---- http_probe ---------------------------------------------------------------------- */

START_TEST(test_healthy_200)
{
    struct responder r = {0};
    responder_start(&r, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 3\r\n\r\nok\n");
    struct http_probe_result res;
    struct errbuf err;
    ck_assert_int_eq(probe(r.port, "127.0.0.1", "/readyz", 2000, &res, &err), STATUS_OK);
    responder_stop(&r);
    ck_assert_int_eq(res.status_code, 200);
    ck_assert_str_eq(res.body, "ok\n");
    ck_assert_uint_eq(res.body_len, 3);
    ck_assert_msg(strncmp(r.request, "GET /readyz HTTP/1.1\r\n", 22) == 0, "request: %s",
                  r.request);
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%d\r\n", r.port);
    ck_assert_msg(strstr(r.request, host), "Host header in: %s", r.request);
    ck_assert_ptr_nonnull(strstr(r.request, "\r\nConnection: close\r\n"));
}
END_TEST

START_TEST(test_unready_503)
{
    struct responder r = {0};
    responder_start(&r, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n"
                        "Content-Length: 8\r\n\r\nloading\n");
    struct http_probe_result res;
    struct errbuf err;
    ck_assert_int_eq(probe(r.port, "127.0.0.1", "/readyz", 2000, &res, &err), STATUS_OK);
    responder_stop(&r);
    ck_assert_int_eq(res.status_code, 503);
    ck_assert_str_eq(res.body, "loading\n");
}
END_TEST

/* A port nobody listens on: refused at once, far inside the deadline. */
START_TEST(test_down_is_quick)
{
    struct responder r = {0};
    ck_assert(responder_listen(&r, false));
    int port = r.port;
    close(r.listen_fd); /* bound, never listened on again: refused */
    struct http_probe_result res;
    struct errbuf err;
    long t0 = mono_ms();
    ck_assert_int_eq(probe(port, "127.0.0.1", "/readyz", 5000, &res, &err), STATUS_IO);
    long dt = mono_ms() - t0;
    ck_assert_msg(dt < 1000, "refused after %ld ms", dt);
    ck_assert_msg(strstr(err.msg, "refused"), "message: %s", err.msg);
}
END_TEST

/* Accepts, then answers only after the deadline: STATUS_TIMEOUT near timeout_ms. */
START_TEST(test_slow_times_out)
{
    struct responder r = {.delay_ms = 1500};
    responder_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    struct http_probe_result res;
    struct errbuf err;
    long t0 = mono_ms();
    enum status s = probe(r.port, "127.0.0.1", "/readyz", 200, &res, &err);
    long dt = mono_ms() - t0;
    responder_stop(&r);
    ck_assert_int_eq(s, STATUS_TIMEOUT);
    ck_assert_msg(dt >= 190 && dt < 1000, "timed out after %ld ms (deadline 200)", dt);
    ck_assert_msg(strstr(err.msg, "timed out"), "message: %s", err.msg);
}
END_TEST

START_TEST(test_garbage)
{
    struct responder r = {0};
    responder_start(&r, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    struct http_probe_result res;
    struct errbuf err;
    ck_assert_int_eq(probe(r.port, "127.0.0.1", "/readyz", 2000, &res, &err), STATUS_FORMAT);
    responder_stop(&r);
    ck_assert_str_eq(err.msg, "not an HTTP/1.x response: \"SSH-2.0-OpenSSH_9.2\"");
}
END_TEST

/* Status codes out of range and malformed status lines are garbage too. */
START_TEST(test_bad_status_lines)
{
    static const char *const bad[] = {
        "HTTP/1.1 99 Low\r\n\r\n",   "HTTP/1.1 600 High\r\n\r\n", "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 20x OK\r\n\r\n",   "http/1.1 200 OK\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct responder r = {0};
        responder_start(&r, bad[i]);
        struct http_probe_result res;
        struct errbuf err;
        enum status s = probe(r.port, "127.0.0.1", "/readyz", 2000, &res, &err);
        responder_stop(&r);
        ck_assert_msg(s == STATUS_FORMAT, "'%s': %s (%s)", bad[i], status_name(s), err.msg);
    }
}
END_TEST

/* A head that never ends: rejected at HTTP_PROBE_HEAD_MAX, not read to the end. */
START_TEST(test_flood_is_bounded)
{
    struct responder r = {.flood_bytes = 4u << 20};
    responder_start(&r, "HTTP/1.1 200 OK\r\nX-Flood: ");
    struct http_probe_result res;
    struct errbuf err;
    long t0 = mono_ms();
    enum status s = probe(r.port, "127.0.0.1", "/readyz", 3000, &res, &err);
    long dt = mono_ms() - t0;
    responder_stop(&r);
    ck_assert_int_eq(s, STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "head over"), "message: %s", err.msg);
    ck_assert_msg(dt < 2000, "took %ld ms", dt);
    ck_assert_msg(r.flood_sent < (4u << 20), "the probe read all %zu bytes", r.flood_sent);
}
END_TEST

START_TEST(test_closed_without_response)
{
    struct responder r = {0};
    responder_start(&r, NULL);
    struct http_probe_result res;
    struct errbuf err;
    ck_assert_int_eq(probe(r.port, "127.0.0.1", "/readyz", 2000, &res, &err), STATUS_IO);
    responder_stop(&r);
    ck_assert_msg(strstr(err.msg, "without a response"), "message: %s", err.msg);
}
END_TEST

/* A long body is cut at HTTP_PROBE_BODY_MAX; a body without Content-Length (HTTP/1.0,
 * close-delimited) is read until the close. */
START_TEST(test_body_bounded_and_close_delimited)
{
    struct responder r = {.flood_bytes = 1u << 20};
    responder_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n");
    struct http_probe_result res;
    struct errbuf err;
    ck_assert_int_eq(probe(r.port, "127.0.0.1", "/livez", 3000, &res, &err), STATUS_OK);
    responder_stop(&r);
    ck_assert_int_eq(res.status_code, 200);
    ck_assert_uint_eq(res.body_len, HTTP_PROBE_BODY_MAX);
    ck_assert_uint_eq(strlen(res.body), HTTP_PROBE_BODY_MAX);

    struct responder r2 = {0};
    responder_start(&r2, "HTTP/1.0 204 No Content\r\nServer: x\r\n\r\nbye");
    ck_assert_int_eq(probe(r2.port, "localhost", "/healthz", 2000, &res, &err), STATUS_OK);
    responder_stop(&r2);
    ck_assert_int_eq(res.status_code, 204);
    ck_assert_str_eq(res.body, "bye");
}
END_TEST

/* 0.0.0.0 (the container's DIFFUSIOND_HOST) probes 127.0.0.1; [::1] and :: probe ::1. */
START_TEST(test_wildcard_and_v6_hosts)
{
    struct responder r = {0};
    responder_start(&r, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    struct http_probe_result res;
    struct errbuf err;
    ck_assert_int_eq(probe(r.port, "0.0.0.0", "/readyz", 2000, &res, &err), STATUS_OK);
    responder_stop(&r);
    ck_assert_int_eq(res.status_code, 200);

    struct responder r6 = {0};
    if (!responder_listen(&r6, true))
        return; /* no IPv6 loopback on this machine */
    responder_start(&r6, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    ck_assert_int_eq(probe(r6.port, "[::]", "/readyz", 2000, &res, &err), STATUS_OK);
    responder_stop(&r6);
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: [::1]:%d\r\n", r6.port);
    ck_assert_msg(strstr(r6.request, host), "Host header in: %s", r6.request);
}
END_TEST

START_TEST(test_connect_host)
{
    char buf[64];
    struct errbuf err;
    static const char *const cases[][2] = {{"0.0.0.0", "127.0.0.1"}, {"::", "::1"},
                                           {"[::]", "::1"},          {"[::1]", "::1"},
                                           {"10.1.2.3", "10.1.2.3"}, {"localhost", "localhost"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(http_probe_connect_host(cases[i][0], buf, sizeof buf, &err), STATUS_OK);
        ck_assert_str_eq(buf, cases[i][1]);
    }
    ck_assert_int_eq(http_probe_connect_host("", buf, sizeof buf, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(http_probe_connect_host("[::1", buf, sizeof buf, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(http_probe_connect_host("a-very-long-host-name", buf, 8, &err),
                     STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_invalid_requests)
{
    struct http_probe_result res;
    struct errbuf err;
    ck_assert_int_eq(probe(0, "127.0.0.1", "/readyz", 100, &res, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(probe(65536, "127.0.0.1", "/readyz", 100, &res, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(probe(8080, "127.0.0.1", "readyz", 100, &res, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(probe(8080, "127.0.0.1", "/a b", 100, &res, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(probe(8080, "127.0.0.1", "/a\r\nX: y", 100, &res, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(probe(8080, "127.0.0.1", "/readyz", 0, &res, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(probe(8080, "no-such-host.invalid", "/readyz", 500, &res, &err),
                     STATUS_NOT_FOUND);
}
END_TEST

/* ---- healthcheck options and exit codes ---------------------------------------------- */

START_TEST(test_parse_defaults_env_flags)
{
    struct healthcheck_options o;
    struct errbuf err;
    char *none[] = {"healthcheck"};
    ck_assert_int_eq(healthcheck_parse(1, none, NULL, NULL, &o, &err), STATUS_OK);
    ck_assert_str_eq(o.host, "127.0.0.1");
    ck_assert_int_eq(o.port, 8080);
    ck_assert_str_eq(o.path, "/readyz");
    ck_assert_int_eq(o.timeout_ms, HEALTHCHECK_DEFAULT_TIMEOUT_MS);
    ck_assert(!o.help);

    ck_assert_int_eq(healthcheck_parse(1, none, "0.0.0.0", "9000", &o, &err), STATUS_OK);
    ck_assert_str_eq(o.host, "0.0.0.0");
    ck_assert_int_eq(o.port, 9000);

    char *flags[] = {"healthcheck", "--host", "::1", "--port=9100", "--path", "/livez",
                     "--timeout-ms", "250"};
    ck_assert_int_eq(healthcheck_parse(8, flags, "0.0.0.0", "9000", &o, &err), STATUS_OK);
    ck_assert_str_eq(o.host, "::1");
    ck_assert_int_eq(o.port, 9100);
    ck_assert_str_eq(o.path, "/livez");
    ck_assert_int_eq(o.timeout_ms, 250);

    char *help[] = {"healthcheck", "--help", "--bogus"};
    ck_assert_int_eq(healthcheck_parse(3, help, NULL, NULL, &o, &err), STATUS_OK);
    ck_assert(o.help);
}
END_TEST

START_TEST(test_parse_errors_name_the_setting)
{
    struct healthcheck_options o;
    struct errbuf err;
    char *bad_port[] = {"healthcheck", "--port", "80x"};
    ck_assert_int_eq(healthcheck_parse(3, bad_port, NULL, NULL, &o, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "--port"), "%s", err.msg);
    char *missing[] = {"healthcheck", "--timeout-ms"};
    ck_assert_int_eq(healthcheck_parse(2, missing, NULL, NULL, &o, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "--timeout-ms: needs a value"), "%s", err.msg);
    char *path[] = {"healthcheck", "--path=readyz"};
    ck_assert_int_eq(healthcheck_parse(2, path, NULL, NULL, &o, &err), STATUS_INVALID_ARGUMENT);
    char *unknown[] = {"healthcheck", "--hostname", "x"};
    ck_assert_int_eq(healthcheck_parse(3, unknown, NULL, NULL, &o, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "unknown option '--hostname'"), "%s", err.msg);
    char *none[] = {"healthcheck"};
    ck_assert_int_eq(healthcheck_parse(1, none, NULL, "eighty", &o, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "DIFFUSIOND_PORT"), "%s", err.msg);
    ck_assert_int_eq(healthcheck_parse(1, none, NULL, "0", &o, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "DIFFUSIOND_PORT=0"), "%s", err.msg);
}
END_TEST

static int run_main(int port, const char *path)
{
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    char *argv[] = {"healthcheck", "--host", "127.0.0.1", "--port", port_s, "--path",
                    (char *)path, "--timeout-ms", "1000"};
    return cmd_healthcheck_main(9, argv);
}

/* The command's exit codes: 0 for 2xx only. */
START_TEST(test_main_exit_codes)
{
    static const struct {
        const char *response;
        int want;
    } cases[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0},
                 {"HTTP/1.1 204 No Content\r\n\r\n", 0},
                 {"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9\r\n\r\ndraining\n", 1},
                 {"HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n", 1},
                 {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 1},
                 {"garbage\r\n\r\n", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct responder r = {0};
        responder_start(&r, cases[i].response);
        int rc = run_main(r.port, "/readyz");
        responder_stop(&r);
        ck_assert_msg(rc == cases[i].want, "case %zu: exit %d, want %d", i, rc, cases[i].want);
    }
    struct responder down = {0};
    ck_assert(responder_listen(&down, false));
    close(down.listen_fd);
    ck_assert_int_eq(run_main(down.port, "/readyz"), 1);
    char *bad[] = {"healthcheck", "--port", "0"};
    ck_assert_int_eq(cmd_healthcheck_main(3, bad), 1); /* usage errors are 1, not 2 */
}
END_TEST

static Suite *http_probe_suite(void)
{
    Suite *s = suite_create("http_probe");
    TCase *p = tcase_create("probe");
    tcase_set_timeout(p, 60);
    tcase_add_test(p, test_healthy_200);
    tcase_add_test(p, test_unready_503);
    tcase_add_test(p, test_down_is_quick);
    tcase_add_test(p, test_slow_times_out);
    tcase_add_test(p, test_garbage);
    tcase_add_test(p, test_bad_status_lines);
    tcase_add_test(p, test_flood_is_bounded);
    tcase_add_test(p, test_closed_without_response);
    tcase_add_test(p, test_body_bounded_and_close_delimited);
    tcase_add_test(p, test_wildcard_and_v6_hosts);
    tcase_add_test(p, test_connect_host);
    tcase_add_test(p, test_invalid_requests);
    suite_add_tcase(s, p);
    TCase *c = tcase_create("healthcheck");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, test_parse_defaults_env_flags);
    tcase_add_test(c, test_parse_errors_name_the_setting);
    tcase_add_test(c, test_main_exit_codes);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    return test_run_suite(http_probe_suite());
}
