/* server/http_probe.c — one bounded HTTP/1.1 GET over a plain socket (http_probe.h). */
#include "server/http_probe.h"

#include <errno.h>
#include <netdb.h>
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

/* --- arguments ------------------------------------------------------------------------ */

enum status http_probe_connect_host(const char *host, char *buf, size_t cap, struct errbuf *err)
{
    if (!host || !host[0])
        return status_fail(err, STATUS_INVALID_ARGUMENT, "host: empty");
    size_t len = strlen(host);
    if (host[0] == '[') { /* "[::1]": the URL form of an IPv6 address */
        if (len < 3 || host[len - 1] != ']')
            return status_fail(err, STATUS_INVALID_ARGUMENT, "host '%s': unbalanced '['", host);
        host++;
        len -= 2;
    }
    if (len == 7 && strncmp(host, "0.0.0.0", 7) == 0) {
        host = "127.0.0.1";
        len = 9;
    } else if ((len == 2 && strncmp(host, "::", 2) == 0) ||
               (len == 3 && strncmp(host, "::0", 3) == 0)) {
        host = "::1";
        len = 3;
    }
    if (len + 1 > cap)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "host '%.64s...': too long", host);
    memcpy(buf, host, len);
    buf[len] = '\0';
    return STATUS_OK;
}

static enum status check_request(const struct http_probe_request *req, struct errbuf *err)
{
    if (req->port < 1 || req->port > 65535)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "port %d: not in 1..65535", req->port);
    if (req->timeout_ms <= 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "timeout %d ms: must be > 0",
                           req->timeout_ms);
    const char *p = req->path;
    if (!p || p[0] != '/')
        return status_fail(err, STATUS_INVALID_ARGUMENT, "path '%s': must start with '/'",
                           p ? p : "(null)");
    if (strlen(p) > 1024)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "path: longer than 1024 bytes");
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "path: space or control character at offset %ld",
                               (long)(p - req->path));
    return STATUS_OK;
}

/* --- connection ----------------------------------------------------------------------- */

/* One non-blocking connect to ai within the deadline; returns the fd or -1 with err. */
static int connect_one(const struct addrinfo *ai, long deadline, struct errbuf *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
        status_fail(err, STATUS_IO, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        status_fail(err, STATUS_IO, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (sock_wait(fd, POLLOUT, deadline, "connecting", err) != STATUS_OK) {
        close(fd);
        return -1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        status_fail(err, STATUS_IO, "connect: %s", strerror(soerr ? soerr : errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Connects to host:port, trying each resolved address until one answers. */
static enum status open_connection(const char *host, int port, long deadline, int *fd_out,
                                   struct errbuf *err)
{
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(host, service, &hints, &list);
    if (rc != 0)
        return status_fail(err, STATUS_NOT_FOUND, "resolve '%s': %s", host, gai_strerror(rc));
    struct errbuf last;
    errbuf_clear(&last);
    int fd = -1;
    for (const struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = connect_one(ai, deadline, &last);
        if (fd < 0 && last.code == STATUS_TIMEOUT)
            break;
    }
    freeaddrinfo(list);
    if (fd < 0)
        return status_fail(err, last.code ? last.code : STATUS_IO, "%s:%d: %s", host, port,
                           last.msg[0] ? last.msg : "no address");
    *fd_out = fd;
    return STATUS_OK;
}

/* --- response parsing ----------------------------------------------------------------- */

/* "HTTP/1.x DDD" then a space or the end of the line.  -1 when buf[0..len) cannot be
 * (the start of) one; 0 when too short to tell yet; the code when complete. */
static int parse_status_line(const char *buf, size_t len)
{
    static const char prefix[] = "HTTP/1.";
    size_t plen = sizeof prefix - 1;
    if (memcmp(buf, prefix, len < plen ? len : plen) != 0)
        return -1;
    if (len < plen + 5)
        return 0;
    const char *p = buf + plen;
    if (p[0] < '0' || p[0] > '9' || p[1] != ' ')
        return -1;
    int code = 0;
    for (int i = 2; i < 5; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        code = code * 10 + (p[i] - '0');
    }
    if (len < plen + 6)
        return 0;
    if ((p[5] != ' ' && p[5] != '\r') || code < 100 || code > 599)
        return -1;
    return code;
}

void http_probe_first_line(const char *buf, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (; n < len && n + 1 < cap && buf[n] != '\r' && buf[n] != '\n'; n++)
        out[n] = (buf[n] >= ' ' && buf[n] < 0x7f) ? buf[n] : '?';
    out[n] = '\0';
}

/* Reads the status line and headers into buf; *head_len is where the body starts. */
static enum status read_head(int fd, char *buf, size_t cap, size_t *len, size_t *head_len,
                             int *code, long deadline, struct errbuf *err)
{
    bool eof = false;
    while (!eof) {
        TRY(sock_read_some(fd, buf, len, cap, deadline, "waiting for the response", &eof, err));
        int c = parse_status_line(buf, *len);
        if (c < 0 && *len > 0) {
            char excerpt[41];
            http_probe_first_line(buf, *len, excerpt, sizeof excerpt);
            return status_fail(err, STATUS_FORMAT, "not an HTTP/1.x response: \"%s\"", excerpt);
        }
        *code = c;
        if (c > 0 && (*head_len = http_head_end(buf, *len)) > 0)
            return STATUS_OK;
        if (*len >= HTTP_PROBE_HEAD_MAX)
            return status_fail(err, STATUS_FORMAT, "response head over %d bytes",
                               HTTP_PROBE_HEAD_MAX);
    }
    if (*len == 0)
        return status_fail(err, STATUS_IO, "connection closed without a response");
    return status_fail(err, STATUS_FORMAT, "connection closed inside the response head");
}

/* Copies up to HTTP_PROBE_BODY_MAX body bytes into res, reading more while the peer
 * sends them; a deadline or error here only shortens the snippet. */
static void read_body(int fd, char *buf, size_t cap, size_t len, size_t head_len,
                      long deadline, struct http_probe_result *res)
{
    long want = http_head_content_length(buf, head_len);
    size_t limit = head_len + HTTP_PROBE_BODY_MAX;
    if (want >= 0 && (size_t)want < HTTP_PROBE_BODY_MAX)
        limit = head_len + (size_t)want;
    if (limit > cap)
        limit = cap;
    bool eof = false;
    struct errbuf ignored;
    while (len < limit && !eof &&
           sock_read_some(fd, buf, &len, limit, deadline, "reading the body", &eof, &ignored) ==
               STATUS_OK) {
    }
    size_t n = len > limit ? limit - head_len : len - head_len;
    memcpy(res->body, buf + head_len, n);
    res->body[n] = '\0';
    res->body_len = n;
}

/* --- the GET -------------------------------------------------------------------------- */

static enum status exchange(int fd, const struct http_probe_request *req, const char *host,
                            long deadline, struct http_probe_result *res, struct errbuf *err)
{
    char request[1200];
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: diffusiond-healthcheck"
                     "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
                     req->path, v6 ? "[" : "", host, v6 ? "]" : "", req->port);
    if (n < 0 || (size_t)n >= sizeof request)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "request line too long");
    TRY(sock_send_all(fd, request, (size_t)n, deadline, err));

    char buf[HTTP_PROBE_HEAD_MAX + HTTP_PROBE_BODY_MAX];
    size_t len = 0, head_len = 0;
    TRY(read_head(fd, buf, HTTP_PROBE_HEAD_MAX, &len, &head_len, &res->status_code, deadline,
                  err));
    read_body(fd, buf, sizeof buf, len, head_len, deadline, res);
    return STATUS_OK;
}

enum status http_probe_get(const struct http_probe_request *req, struct http_probe_result *res,
                           struct errbuf *err)
{
    long start = sock_now_ms();
    memset(res, 0, sizeof *res);
    TRY(check_request(req, err));
    char host[256];
    TRY(http_probe_connect_host(req->host, host, sizeof host, err));
    long deadline = start + req->timeout_ms;
    int fd = -1;
    TRY(open_connection(host, req->port, deadline, &fd, err));
    enum status s = exchange(fd, req, host, deadline, res, err);
    close(fd);
    res->elapsed_ms = sock_now_ms() - start;
    return s;
}
