/* server/http_head.c — HTTP/1.x response heads as byte ranges (http_head.h). */
#include "server/http_head.h"

#include <string.h>
#include <strings.h>

size_t http_head_end(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* The decimal after optional blanks in [p, end), or -1 when there is none or it
 * passes 2^62. */
static long parse_length(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    long v = -1;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        const int d = *p - '0';
        if (v > ((1L << 62) - d) / 10)
            return -1; /* v·10 + d would pass 2^62 (checked before it can overflow) */
        v = (v < 0 ? 0 : v * 10) + d;
    }
    return v;
}

long http_head_content_length(const char *head, size_t head_len)
{
    const char *end = head + head_len, *line = memchr(head, '\n', head_len);
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if (eol - line > 15 && strncasecmp(line, "content-length:", 15) == 0)
            return parse_length(line + 15, eol);
        line = eol;
    }
    return -1;
}
