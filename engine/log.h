/* engine/log.h — leveled logging, plain text or JSON lines, to stderr (or a FILE).
 *
 * main.c calls log_configure() once at start-up; every other module only calls
 * log_msg() / the LOG_* macros.  Configuration is process-wide (the only state this
 * module keeps); the level is read atomically, and each line is written with one
 * fwrite under a lock, so lines from several threads never interleave.
 */
#ifndef DIFFUSIOND_ENGINE_LOG_H
#define DIFFUSIOND_ENGINE_LOG_H

#include <stdbool.h>
#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };
enum log_format { LOG_FORMAT_PLAIN = 0, LOG_FORMAT_JSON };

/* Sets the minimum level, the format and the sink (NULL = stderr). */
void log_configure(enum log_level level, enum log_format format, FILE *sink);

/* Parses "debug|info|warn|error|off"; returns false on an unknown name. */
bool log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

bool log_enabled(enum log_level level);

/* One line: time, level, module, message.  In JSON mode the message is escaped
 * and the line is {"ts":"...","level":"info","module":"...","msg":"..."}. */
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats one log line into buf (used by log_msg and by tests). Returns length. */
size_t log_format_line(char *buf, size_t cap, enum log_format format, double unix_time,
                       enum log_level level, const char *module, const char *msg);

#define LOG_DEBUGF(module, ...) log_msg(LOG_DEBUG, module, __VA_ARGS__)
#define LOG_INFOF(module, ...) log_msg(LOG_INFO, module, __VA_ARGS__)
#define LOG_WARNF(module, ...) log_msg(LOG_WARN, module, __VA_ARGS__)
#define LOG_ERRORF(module, ...) log_msg(LOG_ERROR, module, __VA_ARGS__)

#endif
