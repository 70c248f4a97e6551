/* server/http_head.h — reading an HTTP/1.x response head as it arrives, for the small
 * clients of the binary (http_probe, bench_http_client).  The head is a byte range,
 * not a C string: nothing here reads past `len`.
 *
 * Ownership: none (borrowed buffers).  Thread-safety: pure functions. */
#ifndef DIFFUSIOND_SERVER_HTTP_HEAD_H
#define DIFFUSIOND_SERVER_HTTP_HEAD_H

#include <stddef.h>

/* The end of the head ("\r\n\r\n" included) in buf[0, len), or 0 when not there yet. */
size_t http_head_end(const char *buf, size_t len);

/* The Content-Length of head[0, head_len) (a header line after the status line), or
 * -1 when absent, malformed or over 2^62. */
long http_head_content_length(const char *head, size_t head_len);

#endif
