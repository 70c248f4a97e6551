/* engine/status.h — status codes and the error buffer every fallible call fills.
 *
 * Every fallible function returns `enum status` and takes a `struct errbuf *err`
 * (may be NULL) as its last argument; on failure it writes a one-line message that
 * names the offending thing (tensor, field, file).  No exit()/abort() below main.c.
 *
 * Ownership: the caller owns the errbuf.  Thread-safety: the functions are
 * reentrant; an errbuf must not be shared between threads.
 */
#ifndef DIFFUSIOND_ENGINE_STATUS_H
#define DIFFUSIOND_ENGINE_STATUS_H

#include <stddef.h>

enum status {
    STATUS_OK = 0,
    STATUS_INVALID_ARGUMENT, /* caller passed something wrong (shape, value, field) */
    STATUS_OUT_OF_MEMORY,    /* host or device allocation failed */
    STATUS_IO,               /* a file could not be opened, read or mapped */
    STATUS_FORMAT,           /* a file is malformed (corrupt checkpoint, bad JSON) */
    STATUS_UNSUPPORTED,      /* valid but not implemented by this backend/build */
    STATUS_NOT_FOUND,        /* a named thing (tensor, model, job) does not exist */
    STATUS_BUSY,             /* queue full / resource exhausted, retry later */
    STATUS_CANCELLED,        /* the work was cancelled */
    STATUS_TIMEOUT,          /* a deadline passed */
    STATUS_DEVICE,           /* the device failed (sticky CUDA error and the like) */
    STATUS_INTERNAL,         /* a bug: an invariant did not hold */
    STATUS_COUNT_
};

#define ERRBUF_MSG_MAX 512

struct errbuf {
    enum status code;
    char msg[ERRBUF_MSG_MAX];
};

/* Short stable name of a status ("invalid_argument", ...). Never NULL. */
const char *status_name(enum status s);

/* Clears err (code OK, empty message). err may be NULL. */
void errbuf_clear(struct errbuf *err);

/* Records code and a printf-style message in err (if non-NULL); returns code so a
 * caller can write `return status_fail(err, STATUS_FORMAT, "bad %s", name);`. */
enum status status_fail(struct errbuf *err, enum status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with "prefix: " (context added on the way up); returns err->code
 * (STATUS_INTERNAL when err is NULL). */
enum status status_wrap(struct errbuf *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Returns from the enclosing function with expr's status when it is not OK (the
 * message is already in err). */
#define TRY(expr)                                                                    \
    do {                                                                             \
        enum status try_s_ = (expr);                                                 \
        if (try_s_ != STATUS_OK)                                                     \
            return try_s_;                                                           \
    } while (0)

/* Programmer-error check: prints file/line/expression and aborts.  Only for
 * invariants that cannot fail on any input (never for validating input). */
#define ASSERT(cond)                                                                 \
    do {                                                                             \
        if (!(cond))                                                                 \
            status_assert_fail(#cond, __FILE__, __LINE__);                          \
    } while (0)

void status_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

#endif
