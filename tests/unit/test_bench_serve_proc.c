/* tests/unit/test_bench_serve_proc.c — server/bench_serve_proc.h against a stand-in
 * server: bench_serve_start spawns /proc/self/exe, which is this test binary, so
 * `<this> serve …` runs fake_serve below instead of the suite.  The stand-in logs the
 * "listening on" line as `diffusiond serve --port 0` does, answers every request with
 * 200 (or 503 for a while), and exits with a chosen status on SIGTERM.  Checked: the
 * port from the log line, the wait for /readyz, the arguments and the environment the
 * child gets (no API keys), exit status 0 / another status / an early death / a
 * SIGTERM ignored (SIGKILL after the timeout). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/bench_serve_proc.h"
#include "server/http_probe.h"
#include "tests/testutil.h"

/* --- the stand-in server (runs in the spawned child) ---------------------------------- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void answer(int fd, bool ready)
{
    char buf[2048];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 1000) > 0 && recv(fd, buf, sizeof buf, 0) > 0) {
        const char *r = ready ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                              : "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        send(fd, r, strlen(r), MSG_NOSIGNAL);
    }
    close(fd);
}

static volatile sig_atomic_t term_seen; /* the stand-in's SIGTERM flag (child only) */

static void on_term(int sig)
{
    (void)sig;
    term_seen = 1;
}

/* FAKE_SERVE: ok | exit3 | die | stubborn; FAKE_SERVE_ARGS: a file for argv and env. */
static int fake_serve(int argc, char **argv)
{
    const char *how = getenv("FAKE_SERVE") ? getenv("FAKE_SERVE") : "ok";
    const char *args_file = getenv("FAKE_SERVE_ARGS");
    if (args_file) {
        FILE *f = fopen(args_file, "w");
        for (int i = 0; f && i < argc; i++)
            fprintf(f, "%s\n", argv[i]);
        if (f)
            fprintf(f, "keys=%s\n", getenv("DIFFUSIOND_API_KEYS") ? "set" : "unset");
        if (f)
            fclose(f);
    }
    if (strcmp(how, "die") == 0) {
        fprintf(stderr, "stand-in: failing at start-up\n");
        return 1;
    }
    /* A handler, not a blocked mask: threads the libraries start before main would
     * take the signal with its default action. */
    struct sigaction sa = {.sa_handler = strcmp(how, "stubborn") != 0 ? on_term : SIG_IGN};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    const int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
        return 1;
    fprintf(stderr, "stand-in: a log line before the port\n");
    fprintf(stderr, "diffusiond serve: listening on http://127.0.0.1:%d\n", ntohs(a.sin_port));
    const double ready_at = mono_s() + 0.3; /* /readyz 503 until then */
    for (;;) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0) {
            const int fd = accept(lfd, NULL, NULL);
            if (fd >= 0)
                answer(fd, mono_s() >= ready_at);
        }
        if (term_seen)
            return strcmp(how, "exit3") == 0 ? 3 : 0;
    }
}

/* --- the tests ------------------------------------------------------------------------- */

static char args_path[64];

static void use_stand_in(const char *how)
{
    snprintf(args_path, sizeof args_path, "/tmp/test_bench_serve_proc.%d", (int)getpid());
    setenv("FAKE_SERVE", how, 1);
    setenv("FAKE_SERVE_ARGS", args_path, 1);
    setenv("DIFFUSIOND_API_KEYS", "secret-key", 1);
}

static char *read_args(void)
{
    static char buf[4096];
    FILE *f = fopen(args_path, "r");
    ck_assert_ptr_nonnull(f);
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(args_path);
    return buf;
}

START_TEST(test_start_ready_stop_exit_0)
{
    use_stand_in("ok");
    const char *extra[] = {"--batching", "request", "--threads", "2"};
    struct bench_serve *s;
    struct errbuf err;
    const double t0 = mono_s();
    ck_assert_int_eq(bench_serve_start("request", extra, 4, 30, &s, &err), STATUS_OK);
    ck_assert_double_ge(mono_s() - t0, 0.25); /* waited for the 200, not just the port */
    const int port = bench_serve_port(s);
    ck_assert_int_gt(port, 0);
    const struct http_probe_request req = {.host = "127.0.0.1", .port = port,
                                           .path = "/readyz", .timeout_ms = 2000};
    struct http_probe_result res;
    ck_assert_int_eq(http_probe_get(&req, &res, &err), STATUS_OK);
    ck_assert_int_eq(res.status_code, 200);
    ck_assert_msg(bench_serve_stop(s, 10, &err) == STATUS_OK, "%s", err.msg);
    const char *args = read_args();
    ck_assert_ptr_nonnull(strstr(args, "serve\n--host\n127.0.0.1\n--port\n0\n"));
    ck_assert_ptr_nonnull(strstr(args, "--no-access-log\n"));
    ck_assert_ptr_nonnull(strstr(args, "--batching\nrequest\n--threads\n2\n"));
    ck_assert_ptr_nonnull(strstr(args, "keys=unset\n"));
}
END_TEST

START_TEST(test_exit_status_reported)
{
    use_stand_in("exit3");
    struct bench_serve *s;
    struct errbuf err;
    ck_assert_int_eq(bench_serve_start("step", NULL, 0, 30, &s, &err), STATUS_OK);
    ck_assert_int_eq(bench_serve_stop(s, 10, &err), STATUS_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "status 3"));
    read_args();
}
END_TEST

START_TEST(test_early_death)
{
    use_stand_in("die");
    struct bench_serve *s = (struct bench_serve *)1;
    struct errbuf err;
    ck_assert_int_eq(bench_serve_start("none", NULL, 0, 30, &s, &err), STATUS_IO);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err.msg, "exited"));
    read_args();
}
END_TEST

START_TEST(test_sigterm_ignored_is_killed)
{
    use_stand_in("stubborn");
    struct bench_serve *s;
    struct errbuf err;
    ck_assert_int_eq(bench_serve_start("step", NULL, 0, 30, &s, &err), STATUS_OK);
    const double t0 = mono_s();
    ck_assert_int_eq(bench_serve_stop(s, 1, &err), STATUS_TIMEOUT);
    ck_assert_double_lt(mono_s() - t0, 5.0);
    read_args();
}
END_TEST

START_TEST(test_stop_null)
{
    struct errbuf err;
    ck_assert_int_eq(bench_serve_stop(NULL, 1, &err), STATUS_OK);
}
END_TEST

static Suite *bench_serve_proc_suite(void)
{
    Suite *s = suite_create("bench_serve_proc");
    TCase *c = tcase_create("child");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, test_start_ready_stop_exit_0);
    tcase_add_test(c, test_exit_status_reported);
    tcase_add_test(c, test_early_death);
    tcase_add_test(c, test_sigterm_ignored_is_killed);
    tcase_add_test(c, test_stop_null);
    suite_add_tcase(s, c);
    return s;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return fake_serve(argc, argv);
    return test_run_suite(bench_serve_proc_suite());
}
