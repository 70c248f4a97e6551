/* tests/unit/test_bench_http_client.c — server/bench_http_client.h against a scripted
 * responder thread on a loopback port: the POST as sent (line, headers, body), a large
 * Content-Length body read whole, a body delimited by the close (grown past its first
 * buffer), a non-200 answer, a body cut short, nothing listening, a slow peer (the
 * deadline), garbage, and invalid requests. */
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

#include "server/bench_http_client.h"
#include "server/http_head.h"
#include "tests/testutil.h"

/* One connection: reads the request (head and Content-Length body), waits delay_ms,
 * sends head then body_len bytes of body_byte, closes. */
struct responder {
    int listen_fd, port;
    const char *head; /* NULL: close without answering */
    size_t body_len;
    char body_byte;
    int delay_ms;
    char request[8192];
    size_t request_len;
    pthread_t thread;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static bool request_complete(const struct responder *r)
{
    const char *end = strstr(r->request, "\r\n\r\n");
    if (!end)
        return false;
    const char *cl = strstr(r->request, "Content-Length: ");
    const size_t want = cl && cl < end ? (size_t)atol(cl + 16) : 0;
    return r->request_len >= (size_t)(end + 4 - r->request) + want;
}

static void read_request(struct responder *r, int fd)
{
    while (r->request_len + 1 < sizeof r->request && !request_complete(r)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) <= 0)
            break;
        const ssize_t n = recv(fd, r->request + r->request_len,
                               sizeof r->request - 1 - r->request_len, 0);
        if (n <= 0)
            break;
        r->request_len += (size_t)n;
        r->request[r->request_len] = '\0';
    }
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        const ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

static void *responder_main(void *arg)
{
    struct responder *r = arg;
    const int fd = accept(r->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    read_request(r, fd);
    if (r->delay_ms)
        sleep_ms(r->delay_ms);
    if (r->head) {
        send_all(fd, r->head, strlen(r->head));
        char chunk[4096];
        memset(chunk, r->body_byte, sizeof chunk);
        for (size_t left = r->body_len; left > 0;) {
            const size_t n = left < sizeof chunk ? left : sizeof chunk;
            send_all(fd, chunk, n);
            left -= n;
        }
    }
    close(fd);
    return NULL;
}

static void responder_start(struct responder *r)
{
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(r->listen_fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(r->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(r->listen_fd, 4), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(r->listen_fd, (struct sockaddr *)&a, &len), 0);
    r->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&r->thread, NULL, responder_main, r), 0);
}

static void responder_join(struct responder *r)
{
    pthread_join(r->thread, NULL);
    close(r->listen_fd);
}

static enum status post(int port, const char *body, int timeout_ms,
                        struct bench_http_response *res, struct errbuf *err)
{
    const struct bench_http_request req = {.port = port, .method = "POST",
                                           .path = "/v1/images/generations", .body = body,
                                           .timeout_ms = timeout_ms};
    return bench_http_exchange(&req, res, err);
}

START_TEST(test_post_as_sent_and_large_body)
{
    char head[128];
    const size_t n = 3u << 20; /* 3 MiB: many reads */
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    struct responder r = {.head = head, .body_len = n, .body_byte = 'x'};
    responder_start(&r);
    struct bench_http_response res;
    struct errbuf err;
    const char *body = "{\"prompt\":\"a red cube\",\"steps\":4}";
    ck_assert_int_eq(post(r.port, body, 5000, &res, &err), STATUS_OK);
    responder_join(&r);
    ck_assert_int_eq(res.status_code, 200);
    ck_assert_uint_eq(res.body_len, n);
    ck_assert_int_eq(res.body[0], 'x');
    ck_assert_int_eq(res.body[n - 1], 'x');
    ck_assert_int_eq(res.body[n], '\0');
    ck_assert_ptr_nonnull(strstr(r.request, "POST /v1/images/generations HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(r.request, "Content-Type: application/json\r\n"));
    char cl[64];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", strlen(body));
    ck_assert_ptr_nonnull(strstr(r.request, cl));
    ck_assert_ptr_nonnull(strstr(r.request, "Connection: close\r\n"));
    ck_assert_str_eq(strstr(r.request, "\r\n\r\n") + 4, body);
    bench_http_response_free(&res);
    ck_assert_ptr_null(res.body);
}
END_TEST

START_TEST(test_get_close_delimited_grows)
{
    struct responder r = {.head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n",
                          .body_len = 200000, .body_byte = 'm'};
    responder_start(&r);
    const struct bench_http_request req = {.port = r.port, .method = "GET", .path = "/metrics",
                                           .timeout_ms = 5000};
    struct bench_http_response res;
    struct errbuf err;
    ck_assert_int_eq(bench_http_exchange(&req, &res, &err), STATUS_OK);
    responder_join(&r);
    ck_assert_int_eq(res.status_code, 200);
    ck_assert_uint_eq(res.body_len, 200000);
    ck_assert_int_eq(res.body[199999], 'm');
    ck_assert_ptr_nonnull(strstr(r.request, "GET /metrics HTTP/1.1\r\n"));
    ck_assert_ptr_null(strstr(r.request, "Content-Length"));
    bench_http_response_free(&res);
}
END_TEST

START_TEST(test_non_200_is_ok_with_its_code)
{
    struct responder r = {.head = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
                                  "Content-Length: 2\r\n\r\n",
                          .body_len = 2, .body_byte = '{'};
    responder_start(&r);
    struct bench_http_response res;
    struct errbuf err;
    ck_assert_int_eq(post(r.port, "{}", 5000, &res, &err), STATUS_OK);
    responder_join(&r);
    ck_assert_int_eq(res.status_code, 429);
    ck_assert_str_eq(res.body, "{{");
    bench_http_response_free(&res);
}
END_TEST

START_TEST(test_body_cut_short)
{
    struct responder r = {.head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                          .body_len = 10, .body_byte = 'y'};
    responder_start(&r);
    struct bench_http_response res;
    struct errbuf err;
    ck_assert_int_eq(post(r.port, "{}", 5000, &res, &err), STATUS_IO);
    responder_join(&r);
    ck_assert_ptr_null(res.body);
    ck_assert_ptr_nonnull(strstr(err.msg, "10 of 100"));
}
END_TEST

START_TEST(test_closed_without_answer)
{
    struct responder r = {.head = NULL};
    responder_start(&r);
    struct bench_http_response res;
    struct errbuf err;
    ck_assert_int_eq(post(r.port, "{}", 5000, &res, &err), STATUS_IO);
    responder_join(&r);
}
END_TEST

START_TEST(test_nothing_listening)
{
    struct responder r = {.head = NULL};
    responder_start(&r);
    /* connect once so the responder exits, then the port is closed */
    struct bench_http_response res;
    struct errbuf err;
    post(r.port, "{}", 5000, &res, &err);
    responder_join(&r);
    ck_assert_int_eq(post(r.port, "{}", 5000, &res, &err), STATUS_IO);
}
END_TEST

START_TEST(test_slow_peer_times_out)
{
    struct responder r = {.head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                          .delay_ms = 1500};
    responder_start(&r);
    struct bench_http_response res;
    struct errbuf err;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ck_assert_int_eq(post(r.port, "{}", 200, &res, &err), STATUS_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    const double took = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    ck_assert_double_lt(took, 1.0);
    responder_join(&r);
}
END_TEST

START_TEST(test_garbage)
{
    struct responder r = {.head = "SSH-2.0-OpenSSH\r\n\r\n"};
    responder_start(&r);
    struct bench_http_response res;
    struct errbuf err;
    ck_assert_int_eq(post(r.port, "{}", 5000, &res, &err), STATUS_FORMAT);
    responder_join(&r);
}
END_TEST

START_TEST(test_invalid_requests)
{
    struct bench_http_response res;
    struct errbuf err;
    const struct bench_http_request bad[] = {
        {.port = 0, .method = "GET", .path = "/", .timeout_ms = 100},
        {.port = 80, .method = "GET", .path = "x", .timeout_ms = 100},
        {.port = 80, .method = "GET", .path = "/", .timeout_ms = 0},
        {.port = 80, .method = NULL, .path = "/", .timeout_ms = 100},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(bench_http_exchange(&bad[i], &res, &err), STATUS_INVALID_ARGUMENT);
}
END_TEST

/* The head parser the clients share (server/http_head.h): a Content-Length is read up
 * to 2^62; longer digit strings are refused before they can overflow (UBSan in the
 * sanitizer build caught a 20-digit one). */
START_TEST(test_head_content_length)
{
    static const struct {
        const char *head;
        long want;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", 12},
        {"HTTP/1.1 200 OK\r\ncontent-length:\t0\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 4611686018427387904\r\n\r\n", 4611686018427387904L},
        {"HTTP/1.1 200 OK\r\nContent-Length: 4611686018427387905\r\n\r\n", -1},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", -1},
        {"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", -1},
        {"HTTP/1.1 200 OK\r\nServer: y\r\n\r\n", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *h = cases[i].head;
        ck_assert_msg(http_head_content_length(h, strlen(h)) == cases[i].want, "case %zu: %ld", i,
                      http_head_content_length(h, strlen(h)));
    }
}
END_TEST

static Suite *bench_http_client_suite(void)
{
    Suite *s = suite_create("bench_http_client");
    TCase *c = tcase_create("exchange");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, test_post_as_sent_and_large_body);
    tcase_add_test(c, test_get_close_delimited_grows);
    tcase_add_test(c, test_non_200_is_ok_with_its_code);
    tcase_add_test(c, test_body_cut_short);
    tcase_add_test(c, test_closed_without_answer);
    tcase_add_test(c, test_nothing_listening);
    tcase_add_test(c, test_slow_peer_times_out);
    tcase_add_test(c, test_garbage);
    tcase_add_test(c, test_invalid_requests);
    tcase_add_test(c, test_head_content_length);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    return test_run_suite(bench_http_client_suite());
}
