/* tests/unit/test_http.c — server/http.h on a real libmicrohttpd daemon on a loopback
 * port, driven by a raw-socket client: early answers (body never read), bodies,
 * deferred answers from other threads (late, and racing the MHD thread before it can
 * suspend), and the exchange state machine when a client disconnects while suspended:
 * on_abort with the tag, on_finished once, the route data freed exactly once whatever
 * the order of the answer and the hang-up (ASan/LSan check the frees). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/http.h"
#include "tests/testutil.h"

/* --- the test's handlers ------------------------------------------------------------ */

struct tstate {
    atomic_int aborts, finished, freed, finished_unsent;
    _Atomic uint64_t last_tag;
    atomic_int last_code;
    struct http_exchange *_Atomic held; /* /hold: the deferred exchange */
};

struct rdata {
    struct tstate *t;
};

static void rdata_free(void *p)
{
    struct rdata *d = p;
    atomic_fetch_add(&d->t->freed, 1);
    free(d);
}

struct later {
    struct http_exchange *ex;
    int delay_us;
};

static void *responder(void *arg)
{
    struct later *l = arg;
    if (l->delay_us)
        usleep((useconds_t)l->delay_us);
    http_exchange_respond(l->ex, http_response_copy(200, "text/plain", "late", 4));
    free(l);
    return NULL;
}

static void respond_from_thread(struct http_exchange *ex, int delay_us)
{
    struct later *l = malloc(sizeof *l);
    *l = (struct later){.ex = ex, .delay_us = delay_us};
    pthread_t t;
    pthread_create(&t, NULL, responder, l);
    pthread_detach(t);
}

static void h_headers(void *user, struct http_exchange *ex)
{
    struct tstate *t = user;
    struct rdata *d = malloc(sizeof *d);
    d->t = t;
    http_exchange_set_data(ex, d, rdata_free);
    if (strcmp(http_exchange_path(ex), "/early") == 0)
        http_exchange_respond(ex, http_response_copy(413, "text/plain", "too big", 7));
}

static void h_request(void *user, struct http_exchange *ex)
{
    struct tstate *t = user;
    const char *p = http_exchange_path(ex);
    if (strcmp(p, "/echo") == 0) {
        size_t len;
        const uint8_t *b = http_exchange_body(ex, &len);
        struct http_response *r = http_response_copy(200, "application/json", b, len);
        http_response_header(r, "X-Test", "yes", NULL);
        http_exchange_respond(ex, r);
    } else if (strcmp(p, "/defer") == 0 || strcmp(p, "/race") == 0) {
        http_exchange_defer(ex);
        http_exchange_set_tag(ex, 7);
        respond_from_thread(ex, p[1] == 'd' ? 50000 : 0);
        if (p[1] == 'r')
            usleep(2000); /* the answer very likely comes before the MHD thread suspends */
    } else if (strcmp(p, "/hold") == 0) {
        http_exchange_defer(ex);
        http_exchange_set_tag(ex, 42);
        atomic_store(&t->held, ex);
    } else {
        http_exchange_respond(ex, http_response_copy(404, NULL, NULL, 0));
    }
}

static void h_abort(void *user, struct http_exchange *ex, uint64_t tag)
{
    (void)ex;
    struct tstate *t = user;
    atomic_store(&t->last_tag, tag);
    atomic_fetch_add(&t->aborts, 1);
}

static void h_finished(void *user, struct http_exchange *ex, int code, bool sent)
{
    (void)ex;
    struct tstate *t = user;
    atomic_store(&t->last_code, code);
    if (!sent)
        atomic_fetch_add(&t->finished_unsent, 1);
    atomic_fetch_add(&t->finished, 1);
}

static struct http_server *start(struct tstate *t)
{
    memset(t, 0, sizeof *t);
    const struct http_config cfg = {.host = "127.0.0.1", .port = 0, .max_connections = 64,
                                    .connection_timeout_s = 10, .connection_memory = 64 * 1024,
                                    .max_body_bytes = 1 << 20};
    const struct http_handlers h = {.user = t, .on_headers = h_headers, .on_request = h_request,
                                    .on_abort = h_abort, .on_finished = h_finished};
    struct http_server *s = NULL;
    struct errbuf err;
    ck_assert_msg(http_server_start(&cfg, &h, &s, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_gt(http_server_port(s), 0);
    return s;
}

/* --- a raw client ---------------------------------------------------------------------- */

static int client_send(int port, const char *req)
{
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const size_t n = strlen(req);
    ck_assert_int_eq(send(fd, req, n, MSG_NOSIGNAL), (ssize_t)n);
    return fd;
}

/* Reads until the peer closes; returns the response (static buffer). */
static const char *client_read(int fd)
{
    static char buf[65536];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof buf - 1 && (k = recv(fd, buf + len, sizeof buf - 1 - len, 0)) > 0)
        len += (size_t)k;
    buf[len] = '\0';
    close(fd);
    return buf;
}

static const char *roundtrip(int port, const char *req)
{
    return client_read(client_send(port, req));
}

static void wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 5000 && atomic_load(v) < want; i++)
        usleep(1000);
    ck_assert_int_eq(atomic_load(v), want);
}

/* --- tests ------------------------------------------------------------------------------ */

START_TEST(test_early_answer_and_body)
{
    struct tstate t;
    struct http_server *s = start(&t);
    const int port = http_server_port(s);
    /* Early answer: the declared 100000-byte body is never read. */
    const char *r = roundtrip(port, "POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                                    "Connection: close\r\n\r\n");
    ck_assert_msg(strncmp(r, "HTTP/1.1 413", 12) == 0, "%s", r);
    ck_assert(strstr(r, "too big") != NULL);
    /* A body accumulated and echoed, headers set by the route. */
    r = roundtrip(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n"
                        "Connection: close\r\n\r\n{\"hello\":\"x\"}");
    ck_assert_msg(strncmp(r, "HTTP/1.1 200", 12) == 0, "%s", r);
    ck_assert(strstr(r, "X-Test: yes") != NULL);
    ck_assert(strstr(r, "\r\n\r\n{\"hello\":\"x\"}") != NULL);
    wait_for(&t.freed, 2);
    ck_assert_int_eq(atomic_load(&t.finished), 2);
    ck_assert_int_eq(atomic_load(&t.aborts), 0);
    http_server_stop(s);
}
END_TEST

START_TEST(test_deferred_answers)
{
    struct tstate t;
    struct http_server *s = start(&t);
    const int port = http_server_port(s);
    for (int i = 0; i < 40; i++) {
        const char *path = i % 2 ? "/race" : "/defer";
        char req[128];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
        const char *r = roundtrip(port, req);
        ck_assert_msg(strncmp(r, "HTTP/1.1 200", 12) == 0, "%s: %s", path, r);
        ck_assert(strstr(r, "\r\n\r\nlate") != NULL);
    }
    wait_for(&t.freed, 40);
    int deferred = -1, open = -1;
    http_server_counts(s, &deferred, &open);
    ck_assert_int_eq(deferred, 0);
    ck_assert_int_eq(open, 0);
    ck_assert_int_eq(atomic_load(&t.aborts), 0);
    http_server_stop(s);
}
END_TEST

/* Sends /hold, waits until the route holds the deferred exchange; returns the socket. */
static int hold(struct tstate *t, int port, struct http_exchange **ex)
{
    atomic_store(&t->held, NULL);
    const int fd = client_send(port, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    for (int i = 0; i < 5000 && !atomic_load(&t->held); i++)
        usleep(1000);
    *ex = atomic_load(&t->held);
    ck_assert_ptr_nonnull(*ex);
    return fd;
}

START_TEST(test_disconnect_then_answer)
{
    struct tstate t;
    struct http_server *s = start(&t);
    struct http_exchange *ex;
    const int fd = hold(&t, http_server_port(s), &ex);
    usleep(20000); /* suspended by now */
    ck_assert_int_eq(http_server_check_clients(s), 0); /* still connected */
    close(fd);
    int gone = 0;
    for (int i = 0; i < 2000 && !gone; i++) {
        gone = http_server_check_clients(s);
        usleep(1000);
    }
    ck_assert_int_eq(gone, 1);
    wait_for(&t.aborts, 1);
    ck_assert_uint_eq(atomic_load(&t.last_tag), 42);
    wait_for(&t.finished, 1);
    ck_assert_int_eq(atomic_load(&t.finished_unsent), 1);
    ck_assert_int_eq(atomic_load(&t.last_code), 499);
    ck_assert_int_eq(atomic_load(&t.freed), 0); /* the deferral still holds it */
    int deferred = 0;
    http_server_counts(s, &deferred, NULL);
    ck_assert_int_eq(deferred, 1);
    /* The answer comes after all: dropped, and the exchange freed now. */
    http_exchange_respond(ex, http_response_copy(200, "text/plain", "late", 4));
    ck_assert_int_eq(atomic_load(&t.freed), 1);
    http_server_counts(s, &deferred, NULL);
    ck_assert_int_eq(deferred, 0);
    http_server_stop(s);
}
END_TEST

struct race {
    struct http_exchange *ex;
    int delay_us;
};

static void *answer_later(void *arg)
{
    struct race *r = arg;
    usleep((useconds_t)r->delay_us);
    http_exchange_respond(r->ex, http_response_copy(200, "text/plain", "late", 4));
    return NULL;
}

START_TEST(test_disconnect_races_answer)
{
    /* Hang-up and answer in both orders and at the same time: every exchange is
     * finished once and freed once; the abort comes only when the answer had not. */
    struct tstate t;
    struct http_server *s = start(&t);
    const int port = http_server_port(s);
    const int rounds = 60;
    for (int i = 0; i < rounds; i++) {
        struct http_exchange *ex;
        const int fd = hold(&t, port, &ex);
        usleep(2000);
        struct race r = {.ex = ex, .delay_us = (i % 6) * 300};
        pthread_t th;
        pthread_create(&th, NULL, answer_later, &r);
        close(fd);
        for (int k = 0; k < 10; k++) {
            http_server_check_clients(s);
            usleep(200);
        }
        pthread_join(th, NULL);
        for (int k = 0; k < 2000 && atomic_load(&t.freed) < i + 1; k++) {
            http_server_check_clients(s);
            usleep(1000);
        }
        ck_assert_int_eq(atomic_load(&t.freed), i + 1);
        ck_assert_int_eq(atomic_load(&t.finished), i + 1);
    }
    ck_assert_int_le(atomic_load(&t.aborts), rounds);
    int deferred = -1, open = -1;
    http_server_counts(s, &deferred, &open);
    ck_assert_int_eq(deferred, 0);
    ck_assert_int_eq(open, 0);
    http_server_stop(s);
}
END_TEST

START_TEST(test_bad_host_and_headers)
{
    const struct http_config cfg = {.host = "not-an-address", .port = 0, .max_connections = 4,
                                    .connection_timeout_s = 1, .connection_memory = 65536,
                                    .max_body_bytes = 1024};
    const struct http_handlers h = {0};
    struct http_server *s = NULL;
    struct errbuf err;
    ck_assert_int_eq(http_server_start(&cfg, &h, &s, &err), STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(err.msg, "host") != NULL);
    struct http_response *r = http_response_new(200, "text/plain", NULL, 0);
    ck_assert_int_eq(http_response_header(r, "X-A", "bad\r\nInjected: 1", NULL),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(http_response_header(r, "content-type", "application/json", NULL), STATUS_OK);
    ck_assert_str_eq(http_response_get_header(r, "Content-Type"), "application/json");
    ck_assert_int_eq(r->n_headers, 1);
    http_response_free(r);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_early_answer_and_body);
    tcase_add_test(tc, test_deferred_answers);
    tcase_add_test(tc, test_disconnect_then_answer);
    tcase_add_test(tc, test_disconnect_races_answer);
    tcase_add_test(tc, test_bad_host_and_headers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(http_suite());
}
