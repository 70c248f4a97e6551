/* engine/status.c — see status.h. */
#include "engine/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[STATUS_COUNT_] = {
    [STATUS_OK] = "ok",
    [STATUS_INVALID_ARGUMENT] = "invalid_argument",
    [STATUS_OUT_OF_MEMORY] = "out_of_memory",
    [STATUS_IO] = "io",
    [STATUS_FORMAT] = "format",
    [STATUS_UNSUPPORTED] = "unsupported",
    [STATUS_NOT_FOUND] = "not_found",
    [STATUS_BUSY] = "busy",
    [STATUS_CANCELLED] = "cancelled",
    [STATUS_TIMEOUT] = "timeout",
    [STATUS_DEVICE] = "device",
    [STATUS_INTERNAL] = "internal",
};

const char *status_name(enum status s)
{
    if ((unsigned)s >= STATUS_COUNT_)
        return "unknown";
    return status_names[s];
}

void errbuf_clear(struct errbuf *err)
{
    if (!err)
        return;
    err->code = STATUS_OK;
    err->msg[0] = '\0';
}

enum status status_fail(struct errbuf *err, enum status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

enum status status_wrap(struct errbuf *err, const char *fmt, ...)
{
    if (!err)
        return STATUS_INTERNAL;
    char prefix[ERRBUF_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[ERRBUF_MSG_MAX];
    /* truncation to ERRBUF_MSG_MAX is intended (checking the result also keeps
     * -Wformat-truncation quiet about it) */
    if (snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg) < 0)
        return err->code;
    memcpy(err->msg, joined, sizeof joined);
    return err->code;
}

void status_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
