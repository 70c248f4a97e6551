/* server/bench_http_client.c — one bounded HTTP/1.1 exchange on the loopback address
 * (bench_http_client.h). */
#include "server/bench_http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/http_head.h"
#include "server/sock_io.h"

static enum status connect_loopback(int port, long deadline, int *out, struct errbuf *err)
{
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return status_fail(err, STATUS_IO, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    enum status s = STATUS_OK;
    if (connect(fd, (const struct sockaddr *)&a, sizeof a) != 0) {
        if (errno != EINPROGRESS)
            s = status_fail(err, STATUS_IO, "connect 127.0.0.1:%d: %s", port, strerror(errno));
        else
            s = sock_wait(fd, POLLOUT, deadline, "connecting", err);
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (s == STATUS_OK && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr))
            s = status_fail(err, STATUS_IO, "connect 127.0.0.1:%d: %s", port,
                            strerror(soerr ? soerr : errno));
    }
    if (s != STATUS_OK) {
        close(fd);
        return s;
    }
    *out = fd;
    return STATUS_OK;
}

/* "HTTP/1.x DDD": the code, or -1. */
static int status_code(const char *head, size_t len)
{
    if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
        return -1;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return -1;
        code = code * 10 + (head[i] - '0');
    }
    return code >= 100 && code <= 599 ? code : -1;
}

/* Reads the head into head[0..*len); *head_len: where the body starts. */
static enum status read_head(int fd, char *head, size_t *len, size_t *head_len, long deadline,
                             struct errbuf *err)
{
    bool eof = false;
    while (!eof) {
        if (*len >= BENCH_HTTP_HEAD_MAX)
            return status_fail(err, STATUS_FORMAT, "response head over %d bytes",
                               BENCH_HTTP_HEAD_MAX);
        TRY(sock_read_some(fd, head, len, BENCH_HTTP_HEAD_MAX, deadline, "reading the response",
                           &eof, err));
        if ((*head_len = http_head_end(head, *len)) > 0)
            return STATUS_OK;
    }
    return status_fail(err, STATUS_IO, *len ? "connection closed inside the response head"
                                            : "connection closed without a response");
}

/* The body: what came with the head, then the rest up to Content-Length (or EOF). */
static enum status read_body(int fd, const char *head, size_t len, size_t head_len,
                             long deadline, struct bench_http_response *res, struct errbuf *err)
{
    const long want = http_head_content_length(head, head_len);
    if (want > (long)BENCH_HTTP_BODY_MAX)
        return status_fail(err, STATUS_FORMAT, "body of %ld bytes over the bound", want);
    size_t cap = want >= 0 ? (size_t)want : 65536;
    size_t n = len - head_len;
    if (n > cap)
        n = cap; /* bytes past Content-Length: ignored */
    char *body = malloc(cap + 1);
    if (!body)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "body of %zu bytes", cap);
    memcpy(body, head + head_len, n);
    bool eof = false;
    enum status s = STATUS_OK;
    while (s == STATUS_OK && !eof && (want < 0 || n < (size_t)want)) {
        if (n == cap) { /* no Content-Length: grow */
            char *bigger = cap * 2 <= BENCH_HTTP_BODY_MAX ? realloc(body, cap * 2 + 1) : NULL;
            if (!bigger) {
                s = status_fail(err, STATUS_FORMAT, "body over %zu bytes", cap);
                break;
            }
            body = bigger;
            cap *= 2;
        }
        s = sock_read_some(fd, body, &n, cap, deadline, "reading the response", &eof, err);
    }
    if (s == STATUS_OK && want >= 0 && n < (size_t)want)
        s = status_fail(err, STATUS_IO, "connection closed after %zu of %ld body bytes", n, want);
    if (s != STATUS_OK) {
        free(body);
        return s;
    }
    body[n] = '\0';
    res->body = body;
    res->body_len = n;
    return STATUS_OK;
}

static enum status exchange(int fd, const struct bench_http_request *req, long deadline,
                            struct bench_http_response *res, struct errbuf *err)
{
    const size_t body_len = req->body ? strlen(req->body) : 0;
    char head[BENCH_HTTP_HEAD_MAX];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: diffusiond-bench\r\n"
                     "Accept: application/json\r\nConnection: close\r\n",
                     req->method, req->path, req->port);
    if (req->body && n > 0 && (size_t)n < sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    if (n > 0 && (size_t)n < sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (n < 0 || (size_t)n >= sizeof head)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "request head too long");
    TRY(sock_send_all(fd, head, (size_t)n, deadline, err));
    if (body_len)
        TRY(sock_send_all(fd, req->body, body_len, deadline, err));
    size_t len = 0, head_len = 0;
    TRY(read_head(fd, head, &len, &head_len, deadline, err));
    res->status_code = status_code(head, head_len);
    if (res->status_code < 0)
        return status_fail(err, STATUS_FORMAT, "not an HTTP/1.x status line");
    return read_body(fd, head, len, head_len, deadline, res, err);
}

enum status bench_http_exchange(const struct bench_http_request *req,
                                struct bench_http_response *res, struct errbuf *err)
{
    memset(res, 0, sizeof *res);
    if (req->port < 1 || req->port > 65535 || req->timeout_ms <= 0 || !req->method ||
        !req->path || req->path[0] != '/')
        return status_fail(err, STATUS_INVALID_ARGUMENT, "bad request (port %d, path %s)",
                           req->port, req->path ? req->path : "(null)");
    const long deadline = sock_now_ms() + req->timeout_ms;
    int fd = -1;
    TRY(connect_loopback(req->port, deadline, &fd, err));
    const enum status s = exchange(fd, req, deadline, res, err);
    close(fd);
    return s;
}

void bench_http_response_free(struct bench_http_response *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}
