/* server/bench_serve_proc.c — a `diffusiond serve` child for the load benchmark
 * (bench_serve_proc.h). */
#include "server/bench_serve_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/http_probe.h"

extern char **environ;

#define SERVE_MAX_ARGS 48
#define POLL_MS 20

struct bench_serve {
    char label[32];
    pid_t pid;
    bool reaped;
    int wstatus;
    FILE *err_in; /* the child's standard error */
    pthread_t reader;
    bool reader_started;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int port; /* 0 until the log line is seen */
    bool eof; /* the child's standard error closed */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L},
              NULL);
}

/* --- the reader thread: the port line, the rest copied to stderr --------------------- */

static int port_of_line(const char *line)
{
    const char *p = strstr(line, "listening on http://");
    if (!p)
        return 0;
    const char *colon = strrchr(p, ':');
    const int port = colon ? atoi(colon + 1) : 0;
    return port > 0 && port < 65536 ? port : 0;
}

static void *reader_main(void *arg)
{
    struct bench_serve *s = arg;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, s->err_in)) > 0) {
        const int port = port_of_line(line);
        if (port) {
            pthread_mutex_lock(&s->lock);
            if (!s->port)
                s->port = port;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        fprintf(stderr, "[serve %s] %s%s", s->label, line, line[n - 1] == '\n' ? "" : "\n");
    }
    free(line);
    pthread_mutex_lock(&s->lock);
    s->eof = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* --- spawning --------------------------------------------------------------------------- */

/* environ without the API-key variables, in envp[0..cap) (NULL-terminated; malloc'd). */
static char **child_environment(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "DIFFUSIOND_API_KEYS=", 20) != 0 &&
            strncmp(environ[i], "DIFFUSIOND_API_KEYS_FILE=", 25) != 0)
            envp[k++] = environ[i];
    return envp;
}

static enum status spawn_child(struct bench_serve *s, const char *const *args, int n,
                               struct errbuf *err)
{
    static const char *const fixed[] = {"diffusiond", "serve", "--host", "127.0.0.1",
                                        "--port", "0", "--log-level", "warn",
                                        "--no-access-log"};
    const int n_fixed = (int)(sizeof fixed / sizeof fixed[0]);
    if (n < 0 || n_fixed + n >= SERVE_MAX_ARGS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "serve: %d arguments", n);
    char *argv[SERVE_MAX_ARGS];
    for (int i = 0; i < n_fixed; i++)
        argv[i] = (char *)fixed[i];
    for (int i = 0; i < n; i++)
        argv[n_fixed + i] = (char *)args[i];
    argv[n_fixed + n] = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return status_fail(err, STATUS_IO, "pipe: %s", strerror(errno));
    char **envp = child_environment();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
    const int rc = envp ? posix_spawn(&s->pid, "/proc/self/exe", &fa, NULL, argv, envp) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return status_fail(err, STATUS_IO, "spawning /proc/self/exe serve: %s", strerror(rc));
    }
    s->err_in = fdopen(fds[0], "r");
    if (!s->err_in) {
        close(fds[0]);
        return status_fail(err, STATUS_IO, "fdopen: %s", strerror(errno));
    }
    if (pthread_create(&s->reader, NULL, reader_main, s) != 0)
        return status_fail(err, STATUS_IO, "reader thread");
    s->reader_started = true;
    return STATUS_OK;
}

/* true when the child has exited (reaped now or before). */
static bool child_exited(struct bench_serve *s)
{
    if (!s->reaped && s->pid > 0 && waitpid(s->pid, &s->wstatus, WNOHANG) == s->pid)
        s->reaped = true;
    return s->reaped;
}

static enum status wait_port(struct bench_serve *s, double deadline, struct errbuf *err)
{
    pthread_mutex_lock(&s->lock);
    while (!s->port && !s->eof && now_s() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->lock, &ts);
    }
    const int port = s->port;
    pthread_mutex_unlock(&s->lock);
    if (port)
        return STATUS_OK;
    if (child_exited(s) || s->eof)
        return status_fail(err, STATUS_IO, "serve %s exited before listening", s->label);
    return status_fail(err, STATUS_TIMEOUT, "serve %s: no port within the start-up time",
                       s->label);
}

static enum status wait_ready(struct bench_serve *s, double deadline, struct errbuf *err)
{
    const struct http_probe_request req = {.host = "127.0.0.1", .port = s->port,
                                           .path = "/readyz", .timeout_ms = 2000};
    while (now_s() < deadline) {
        struct http_probe_result res;
        struct errbuf ignored;
        if (http_probe_get(&req, &res, &ignored) == STATUS_OK && res.status_code == 200)
            return STATUS_OK;
        if (child_exited(s))
            return status_fail(err, STATUS_IO, "serve %s exited before it was ready", s->label);
        sleep_ms(POLL_MS);
    }
    return status_fail(err, STATUS_TIMEOUT, "serve %s: /readyz not 200 within the start-up time",
                       s->label);
}

enum status bench_serve_start(const char *label, const char *const *args, int n,
                              int ready_timeout_s, struct bench_serve **out, struct errbuf *err)
{
    *out = NULL;
    struct bench_serve *s = calloc(1, sizeof *s);
    if (!s)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "bench_serve");
    snprintf(s->label, sizeof s->label, "%s", label);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cv, NULL);
    const double deadline = now_s() + ready_timeout_s;
    enum status st = spawn_child(s, args, n, err);
    if (st == STATUS_OK)
        st = wait_port(s, deadline, err);
    if (st == STATUS_OK)
        st = wait_ready(s, deadline, err);
    if (st != STATUS_OK) {
        if (s->pid > 0 && !child_exited(s))
            kill(s->pid, SIGKILL);
        struct errbuf ignored;
        bench_serve_stop(s, 5, &ignored);
        return st;
    }
    *out = s;
    return STATUS_OK;
}

int bench_serve_port(const struct bench_serve *s)
{
    return s->port;
}

static enum status exit_status(const struct bench_serve *s, struct errbuf *err)
{
    if (WIFEXITED(s->wstatus) && WEXITSTATUS(s->wstatus) == 0)
        return STATUS_OK;
    if (WIFEXITED(s->wstatus))
        return status_fail(err, STATUS_INTERNAL, "serve %s exited with status %d", s->label,
                           WEXITSTATUS(s->wstatus));
    return status_fail(err, STATUS_INTERNAL, "serve %s killed by signal %d", s->label,
                       WIFSIGNALED(s->wstatus) ? WTERMSIG(s->wstatus) : 0);
}

enum status bench_serve_stop(struct bench_serve *s, int timeout_s, struct errbuf *err)
{
    if (!s)
        return STATUS_OK;
    enum status st = STATUS_OK;
    if (s->pid > 0) {
        if (!child_exited(s))
            kill(s->pid, SIGTERM);
        const double deadline = now_s() + timeout_s;
        while (!child_exited(s) && now_s() < deadline)
            sleep_ms(POLL_MS);
        if (!s->reaped) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &s->wstatus, 0);
            s->reaped = true;
            st = status_fail(err, STATUS_TIMEOUT, "serve %s: no exit %d s after SIGTERM",
                             s->label, timeout_s);
        } else {
            st = exit_status(s, err);
        }
    }
    if (s->reader_started)
        pthread_join(s->reader, NULL);
    if (s->err_in)
        fclose(s->err_in);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return st;
}
