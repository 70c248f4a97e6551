/* api/json_out.c — the counting/writing JSON emitter. */
#include "api/json_out.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/base64.h"

struct json_out json_out_counter(void)
{
    return (struct json_out){.buf = NULL, .cap = 0, .len = 0, .overflow = false};
}

struct json_out json_out_buffer(char *buf, size_t cap)
{
    return (struct json_out){.buf = buf, .cap = cap, .len = 0, .overflow = false};
}

/* Room for n more bytes at o->buf + o->len, or NULL (counting, or overflow noted). */
static char *reserve(struct json_out *o, size_t n)
{
    char *at = NULL;
    if (o->buf) {
        if (o->len <= o->cap && n <= o->cap - o->len)
            at = o->buf + o->len;
        else
            o->overflow = true;
    }
    o->len += n;
    return at;
}

void json_out_raw(struct json_out *o, const char *s, size_t n)
{
    char *at = reserve(o, n);
    if (at)
        memcpy(at, s, n);
}

void json_out_cstr(struct json_out *o, const char *s)
{
    json_out_raw(o, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s[0 … n) (RFC 3629: no overlongs, no
 * surrogates, ≤ U+10FFFF), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    const unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* The escape of a byte below 0x20, '"' or '\\' into esc; returns its length (0: none). */
static size_t escape_of(unsigned char c, char esc[7])
{
    static const char HEX[] = "0123456789abcdef";
    const char *named = NULL;
    switch (c) {
    case '"': named = "\\\""; break;
    case '\\': named = "\\\\"; break;
    case '\b': named = "\\b"; break;
    case '\f': named = "\\f"; break;
    case '\n': named = "\\n"; break;
    case '\r': named = "\\r"; break;
    case '\t': named = "\\t"; break;
    default:
        if (c >= 0x20)
            return 0;
        memcpy(esc, "\\u00", 4);
        esc[4] = HEX[c >> 4];
        esc[5] = HEX[c & 15];
        return 6;
    }
    memcpy(esc, named, 2);
    return 2;
}

void json_out_string_n(struct json_out *o, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    json_out_raw(o, "\"", 1);
    size_t run = 0; /* start of the bytes copied as they are */
    size_t i = 0;
    while (i < n) {
        char esc[7];
        size_t elen = escape_of(u[i], esc);
        size_t seq = elen ? 1 : utf8_seq_len(u + i, n - i);
        if (elen == 0 && seq > 0) {
            i += seq;
            continue;
        }
        json_out_raw(o, s + run, i - run);
        if (elen)
            json_out_raw(o, esc, elen);
        else
            json_out_raw(o, "\xEF\xBF\xBD", 3); /* U+FFFD for an ill-formed byte */
        i += 1;
        run = i;
    }
    json_out_raw(o, s + run, n - run);
    json_out_raw(o, "\"", 1);
}

void json_out_string(struct json_out *o, const char *s)
{
    if (!s)
        json_out_raw(o, "null", 4);
    else
        json_out_string_n(o, s, strlen(s));
}

void json_out_i64(struct json_out *o, int64_t v)
{
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    json_out_raw(o, tmp, (size_t)k);
}

void json_out_u64(struct json_out *o, uint64_t v)
{
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    json_out_raw(o, tmp, (size_t)k);
}

void json_out_fixed(struct json_out *o, double v, int decimals)
{
    char tmp[64];
    if (!isfinite(v) || fabs(v) >= 1e18)
        v = 0.0;
    if (decimals < 0)
        decimals = 0;
    if (decimals > 9)
        decimals = 9;
    int k = snprintf(tmp, sizeof tmp, "%.*f", decimals, v);
    json_out_raw(o, tmp, (size_t)k);
}

void json_out_base64(struct json_out *o, const uint8_t *data, size_t n)
{
    json_out_raw(o, "\"", 1);
    const size_t need = base64_encoded_len(n);
    char *at = need == SIZE_MAX ? NULL : reserve(o, need);
    if (need == SIZE_MAX)
        o->overflow = true;
    else if (at)
        base64_encode(data, n, at);
    json_out_raw(o, "\"", 1);
}

/* Runs emit twice: counting, then into one buffer of exactly that size (+ NUL). */
enum status json_out_write_twice(void (*emit)(struct json_out *, const void *), const void *arg,
                                 char **out, size_t *len, struct errbuf *err)
{
    struct json_out count = json_out_counter();
    emit(&count, arg);
    if (count.overflow || count.len == SIZE_MAX)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "JSON body: too large");
    char *buf = malloc(count.len + 1);
    if (!buf)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "JSON body: %zu bytes", count.len + 1);
    struct json_out o = json_out_buffer(buf, count.len);
    emit(&o, arg);
    if (o.overflow || o.len != count.len) {
        free(buf);
        return status_fail(err, STATUS_INTERNAL, "JSON body: the writing pass (%zu bytes) "
                           "differs from the counting pass (%zu)", o.len, count.len);
    }
    buf[o.len] = '\0';
    *out = buf;
    *len = o.len;
    return STATUS_OK;
}
