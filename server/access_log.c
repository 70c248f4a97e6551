/* server/access_log.c — JSON access-log lines and request ids. */
#include "server/access_log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void access_log_entry_init(struct access_log_entry *e)
{
    memset(e, 0, sizeof *e);
    e->queue_ms = -1;
    e->total_ms = -1;
}

/* Length of the valid UTF-8 sequence at s (1 … 4), 0 when s does not start one
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Appends `"key":"escaped"` (with a leading comma unless first) to buf[*len …);
 * at most ACCESS_LOG_FIELD_MAX input bytes; invalid UTF-8 → U+FFFD.  The caller
 * guarantees room: 6 bytes of output per input byte at most, plus the key. */
static void put_string(char *buf, size_t *len, const char *key, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = *len;
    n += (size_t)sprintf(buf + n, "%s\"%s\":\"", n > 1 ? "," : "", key);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    const unsigned char *end = p + strnlen((const char *)p, ACCESS_LOG_FIELD_MAX);
    /* a cut inside a UTF-8 sequence drops the whole sequence (≤ 3 bytes back) */
    for (int back = 0; back < 3 && end > p && (*end & 0xc0) == 0x80; back++)
        end--;
    while (p < end) {
        unsigned char c = *p;
        size_t k = (size_t)(end - p) >= 4 ? utf8_seq(p) : 0;
        if (k == 0 && c >= 0x80) { /* near the cut: check the bytes that are there */
            unsigned char tmp[4] = {0};
            memcpy(tmp, p, (size_t)(end - p) < 4 ? (size_t)(end - p) : 4);
            k = utf8_seq(tmp);
            if (k > (size_t)(end - p))
                k = 0;
        }
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)sprintf(buf + n, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            p++;
        } else if (c < 0x80) {
            buf[n++] = (char)c;
            p++;
        } else if (k) {
            memcpy(buf + n, p, k);
            n += k;
            p += k;
        } else {
            n += (size_t)sprintf(buf + n, "\\ufffd");
            p++;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
    *len = n;
}

static void put_raw(char *buf, size_t *len, const char *fmt_key, double v)
{
    if (!(v >= 0 && v <= 1e12)) /* NaN, negative, absurd: never an invalid number */
        v = 0;
    *len += (size_t)sprintf(buf + *len, ",\"%s\":%.3f", fmt_key, v);
}

size_t access_log_format(const struct access_log_entry *e, char *buf, size_t cap)
{
    /* Worst case: 6 strings of 6 output bytes per input byte, keys, numbers. */
    _Static_assert(6 * (6 * ACCESS_LOG_FIELD_MAX + 24) + 256 < ACCESS_LOG_LINE_MAX,
                   "ACCESS_LOG_LINE_MAX holds the longest line");
    if (cap < ACCESS_LOG_LINE_MAX) {
        if (cap)
            buf[0] = '\0';
        return 0;
    }
    long long ms = e->ts >= 0 && e->ts < 1e15 ? llround(e->ts * 1000.0) : 0;
    time_t secs = (time_t)(ms / 1000);
    int millis = (int)(ms % 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = (size_t)snprintf(buf, 64, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                tm.tm_min, tm.tm_sec, millis);
    n += (size_t)sprintf(buf + n, ",\"type\":\"access\"");
    put_string(buf, &n, "request_id", e->request_id);
    put_string(buf, &n, "method", e->method);
    put_string(buf, &n, "path", e->path);
    n += (size_t)sprintf(buf + n, ",\"status\":%d,\"bytes\":%llu", e->status,
                         (unsigned long long)e->bytes);
    put_raw(buf, &n, "duration_ms", e->duration_ms >= 0 ? e->duration_ms : 0);
    if (e->remote)
        put_string(buf, &n, "remote", e->remote);
    if (e->user)
        put_string(buf, &n, "user", e->user);
    if (e->queue_ms >= 0)
        put_raw(buf, &n, "queue_ms", e->queue_ms);
    if (e->total_ms >= 0)
        put_raw(buf, &n, "total_ms", e->total_ms);
    n += (size_t)sprintf(buf + n, "}\n");
    return n;
}

void access_log_write(FILE *sink, const struct access_log_entry *e)
{
    char line[ACCESS_LOG_LINE_MAX];
    size_t n = access_log_format(e, line, sizeof line);
    fwrite(line, 1, n, sink ? sink : stderr);
}

bool request_id_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\'' || c == '\\')
            return false;
    }
    return true;
}

enum status request_id_generate(char out[REQUEST_ID_BUF], struct errbuf *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t k = getrandom(r + got, sizeof r - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            out[0] = '\0';
            return status_fail(err, STATUS_IO, "request id: getrandom: %s", strerror(errno));
        }
        got += (size_t)k;
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[32] = '\0';
    return STATUS_OK;
}

enum status request_id_choose(const char *header, char out[REQUEST_ID_BUF], struct errbuf *err)
{
    if (header) {
        size_t len = strnlen(header, REQUEST_ID_MAX + 1);
        if (request_id_valid(header, len)) {
            memcpy(out, header, len);
            out[len] = '\0';
            return STATUS_OK;
        }
    }
    return request_id_generate(out, err);
}
