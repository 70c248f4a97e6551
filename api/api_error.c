/* api/api_error.c — status → HTTP, OpenAI error bodies. */
#include "api/api_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_out.h"

int api_http_status(enum status s)
{
    switch (s) {
    case STATUS_OK:
        return 200;
    case STATUS_INVALID_ARGUMENT:
    case STATUS_FORMAT:
    case STATUS_UNSUPPORTED:
        return 400;
    case STATUS_NOT_FOUND:
        return 404;
    case STATUS_BUSY:
        return 429;
    case STATUS_OUT_OF_MEMORY:
    case STATUS_CANCELLED:
        return 503;
    case STATUS_TIMEOUT:
        return 504;
    case STATUS_IO:
    case STATUS_DEVICE:
    case STATUS_INTERNAL:
    case STATUS_COUNT_:
        break;
    }
    return 500;
}

const char *api_error_type_for_http(int http)
{
    if (http == 401)
        return "authentication_error";
    if (http == 403)
        return "permission_error";
    if (http == 429)
        return "rate_limit_error";
    if (http >= 500)
        return "server_error";
    return "invalid_request_error";
}

/* Copies src into dst[cap], cut at a UTF-8 character boundary when it does not fit. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--; /* src[n] would be a continuation byte: drop the partial character */
    }
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Drops a character left incomplete at the end of s. */
static void cut_utf8_tail(char *s)
{
    size_t n = strlen(s);
    size_t k = n;
    while (k > 0 && ((unsigned char)s[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > 0 && ((unsigned char)s[k - 1] & 0x80)) {
        const unsigned char lead = (unsigned char)s[k - 1];
        const size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (n - (k - 1) < want)
            s[k - 1] = '\0';
    }
}

void api_error_set(struct api_error *e, int http, const char *type, const char *param,
                   const char *code, const char *fmt, ...)
{
    e->http = http;
    copy_cut(e->type, sizeof e->type, type ? type : api_error_type_for_http(http));
    copy_cut(e->param, sizeof e->param, param);
    copy_cut(e->code, sizeof e->code, code);
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof e->message)
        cut_utf8_tail(e->message); /* vsnprintf may have cut a character in two */
}

/* The field a message starts with ("steps: …" → "steps"), or "" — only an identifier
 * ([a-z0-9_]) directly followed by ':'. */
static void leading_field(const char *msg, char *out, size_t cap)
{
    size_t n = 0;
    while ((msg[n] >= 'a' && msg[n] <= 'z') || (msg[n] >= '0' && msg[n] <= '9') ||
           msg[n] == '_')
        n++;
    if (n == 0 || msg[n] != ':' || n >= cap)
        n = 0;
    memcpy(out, msg, n);
    out[n] = '\0';
}

void api_error_from_status(struct api_error *e, enum status s, const struct errbuf *err,
                           const char *param)
{
    const enum status code = err ? err->code : s;
    const char *msg = err && err->msg[0] ? err->msg : status_name(code);
    const int http = api_http_status(code == STATUS_OK ? s : code);
    api_error_set(e, http, NULL, param, NULL, "%s", msg);
    if (!param && (code == STATUS_INVALID_ARGUMENT || s == STATUS_INVALID_ARGUMENT))
        leading_field(msg, e->param, sizeof e->param);
}

/* The body through an emitter (run counting, then writing). */
static void emit(struct json_out *o, const struct api_error *e)
{
    json_out_cstr(o, "{\"error\":{\"message\":");
    json_out_string(o, e->message);
    json_out_cstr(o, ",\"type\":");
    json_out_string(o, e->type);
    json_out_cstr(o, ",\"param\":");
    json_out_string(o, e->param[0] ? e->param : NULL);
    json_out_cstr(o, ",\"code\":");
    json_out_string(o, e->code[0] ? e->code : NULL);
    json_out_cstr(o, "}}");
}

size_t api_error_format(const struct api_error *e, char *buf, size_t cap)
{
    struct json_out o = cap ? json_out_buffer(buf, cap - 1) : json_out_counter();
    emit(&o, e);
    if (cap)
        buf[o.overflow ? 0 : o.len] = '\0';
    return o.len;
}

char *api_error_body(const struct api_error *e, size_t *len)
{
    const size_t n = api_error_format(e, NULL, 0);
    char *buf = malloc(n + 1);
    if (!buf)
        return NULL;
    api_error_format(e, buf, n + 1);
    if (len)
        *len = n;
    return buf;
}
