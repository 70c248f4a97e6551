/* engine/log.c — see log.h. */
#include "engine/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* Process-wide logging configuration, written by main.c through log_configure(). */
static _Atomic int log_min_level = LOG_INFO;
static _Atomic int log_fmt = LOG_FORMAT_PLAIN;
static FILE *_Atomic log_sink;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_configure(enum log_level level, enum log_format format, FILE *sink)
{
    atomic_store(&log_min_level, (int)level);
    atomic_store(&log_fmt, (int)format);
    atomic_store(&log_sink, sink);
}

bool log_level_parse(const char *name, enum log_level *out)
{
    for (int i = LOG_DEBUG; i <= LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    return false;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level > LOG_OFF)
        return "unknown";
    return level_names[level];
}

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load(&log_min_level) && level != LOG_OFF;
}

/* Appends s to buf as the body of a JSON string; returns the new length.  Stops
 * early so that room is left for the longest escape (6), the line's closing "}\n
 * (3) and the NUL: a cut line is still valid JSON. */
static size_t json_escape_into(char *buf, size_t len, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && len + 6 + 3 + 1 <= cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c == '\n') {
            buf[len++] = '\\';
            buf[len++] = 'n';
        } else if (c < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        } else {
            buf[len++] = (char)c;
        }
    }
    buf[len] = '\0';
    return len;
}

/* A truncated snprintf returns the length it wanted; keep appending inside buf. */
static size_t clamp_len(size_t len, size_t cap)
{
    return len < cap ? len : cap - 1;
}

size_t log_format_line(char *buf, size_t cap, enum log_format format, double unix_time,
                       enum log_level level, const char *module, const char *msg)
{
    if (cap < 64)
        return 0;
    time_t secs = (time_t)unix_time;
    int millis = (int)((unix_time - (double)secs) * 1000.0);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[96]; /* ample for any int fields, so -Wformat-truncation stays quiet */
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    size_t len;
    if (format == LOG_FORMAT_JSON) {
        len = (size_t)snprintf(buf, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"", ts,
                               log_level_name(level));
        len = json_escape_into(buf, clamp_len(len, cap), cap, module);
        len += (size_t)snprintf(buf + len, cap - len, "\",\"msg\":\"");
        len = json_escape_into(buf, clamp_len(len, cap), cap, msg);
        len += (size_t)snprintf(buf + len, cap - len, "\"}\n");
    } else {
        len = (size_t)snprintf(buf, cap, "%s %-5s [%s] %s\n", ts, log_level_name(level),
                               module, msg);
    }
    if (len >= cap) {
        len = cap - 1;
        buf[len - 1] = '\n';
    }
    return len;
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char line[2048];
    size_t len = log_format_line(line, sizeof line, (enum log_format)atomic_load(&log_fmt),
                                 (double)now.tv_sec + now.tv_nsec * 1e-9, level, module, msg);
    FILE *sink = atomic_load(&log_sink);
    if (!sink)
        sink = stderr;
    pthread_mutex_lock(&log_lock);
    fwrite(line, 1, len, sink);
    fflush(sink);
    pthread_mutex_unlock(&log_lock);
}
