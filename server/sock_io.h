/* server/sock_io.h — deadline-bounded I/O on a non-blocking socket, for the small HTTP
 * clients of the binary (http_probe: `diffusiond healthcheck`; bench_http_client:
 * `diffusiond bench load`).  Every call waits with poll() at most until `deadline`, a
 * time on sock_now_ms's clock; errors name what was being done.
 *
 * Ownership: the caller owns the fd and the buffers.  Thread-safety: reentrant, no
 * state (MSG_NOSIGNAL instead of a SIGPIPE handler). */
#ifndef DIFFUSIOND_SERVER_SOCK_IO_H
#define DIFFUSIOND_SERVER_SOCK_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/status.h"

/* Milliseconds on CLOCK_MONOTONIC. */
long sock_now_ms(void);

/* Milliseconds left before deadline (0 when it has passed). */
int sock_remaining_ms(long deadline);

/* Waits until fd is ready for `events` (POLLIN/POLLOUT).  STATUS_TIMEOUT "timed out
 * <what>" when the deadline passes; STATUS_IO when poll fails. */
enum status sock_wait(int fd, short events, long deadline, const char *what, struct errbuf *err);

/* Sends all of buf[0, len).  STATUS_IO on a send error, STATUS_TIMEOUT. */
enum status sock_send_all(int fd, const char *buf, size_t len, long deadline, struct errbuf *err);

/* Waits for data, then reads what is there into buf[*len, cap) (cap > *len), adding
 * to *len; *eof set when the peer closed.  STATUS_IO ("connection reset while <what>",
 * recv errors), STATUS_TIMEOUT. */
enum status sock_read_some(int fd, char *buf, size_t *len, size_t cap, long deadline,
                           const char *what, bool *eof, struct errbuf *err);

#endif
