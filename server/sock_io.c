/* server/sock_io.c — deadline-bounded socket I/O (sock_io.h). */
#include "server/sock_io.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

long sock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sock_remaining_ms(long deadline)
{
    const long left = deadline - sock_now_ms();
    return left > 0 ? (int)left : 0;
}

enum status sock_wait(int fd, short events, long deadline, const char *what, struct errbuf *err)
{
    for (;;) {
        const int left = sock_remaining_ms(deadline);
        if (left == 0)
            return status_fail(err, STATUS_TIMEOUT, "timed out %s", what);
        struct pollfd pfd = {.fd = fd, .events = events};
        const int n = poll(&pfd, 1, left);
        if (n > 0)
            return STATUS_OK;
        if (n < 0 && errno != EINTR)
            return status_fail(err, STATUS_IO, "poll while %s: %s", what, strerror(errno));
    }
}

enum status sock_send_all(int fd, const char *buf, size_t len, long deadline, struct errbuf *err)
{
    while (len > 0) {
        const ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            TRY(sock_wait(fd, POLLOUT, deadline, "sending the request", err));
        } else if (n < 0 && errno != EINTR) {
            return status_fail(err, STATUS_IO, "send: %s", strerror(errno));
        }
    }
    return STATUS_OK;
}

enum status sock_read_some(int fd, char *buf, size_t *len, size_t cap, long deadline,
                           const char *what, bool *eof, struct errbuf *err)
{
    for (;;) {
        TRY(sock_wait(fd, POLLIN, deadline, what, err));
        const ssize_t n = recv(fd, buf + *len, cap - *len, 0);
        if (n > 0) {
            *len += (size_t)n;
            return STATUS_OK;
        }
        if (n == 0) {
            *eof = true;
            return STATUS_OK;
        }
        if (errno == ECONNRESET)
            return status_fail(err, STATUS_IO, "connection reset while %s", what);
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return status_fail(err, STATUS_IO, "recv: %s", strerror(errno));
    }
}
