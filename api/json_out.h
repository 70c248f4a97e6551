/* api/json_out.h — a JSON text emitter for bodies built by hand into one buffer sized
 * up front: run the same emitting code twice, first with a counting writer
 * (json_out_counter: nothing written, len grows), then with a writer over a buffer of
 * exactly that length (json_out_buffer).  Nothing is ever written past the capacity;
 * a writer that ran out of room has overflow set.
 *
 * Strings (json_out_string): '"' and '\\' escaped, control characters U+0000–U+001F as
 * \b \f \n \r \t or \u00XX, DEL and all other characters passed as UTF-8 bytes;
 * bytes that are not well-formed UTF-8 are replaced by U+FFFD, so the output is always
 * valid UTF-8 JSON.
 *
 * Ownership: the buffer is the caller's.  Thread-safety: a writer belongs to one
 * thread; the functions are reentrant.
 */
#ifndef DIFFUSIOND_API_JSON_OUT_H
#define DIFFUSIOND_API_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

struct json_out {
    char *buf;     /* NULL: counting */
    size_t cap;    /* bytes buf holds */
    size_t len;    /* bytes emitted so far (counted even past cap) */
    bool overflow; /* something did not fit */
};

struct json_out json_out_counter(void);
struct json_out json_out_buffer(char *buf, size_t cap);

void json_out_raw(struct json_out *o, const char *s, size_t n);
void json_out_cstr(struct json_out *o, const char *s);          /* raw, NUL-terminated */
void json_out_string(struct json_out *o, const char *s);        /* "escaped"; NULL → null */
void json_out_string_n(struct json_out *o, const char *s, size_t n);
void json_out_i64(struct json_out *o, int64_t v);
void json_out_u64(struct json_out *o, uint64_t v);
/* Fixed decimals (0–9); NaN, ±Inf and |v| ≥ 1e18 → 0 (bounded output). */
void json_out_fixed(struct json_out *o, double v, int decimals);
/* "<base64 of data>" written straight into the buffer. */
void json_out_base64(struct json_out *o, const uint8_t *data, size_t n);

/* A whole body: emit(o, arg) run twice, counting, then into one malloc'ed buffer of
 * exactly that size (+ NUL) → *out (the caller frees), *len.  STATUS_OUT_OF_MEMORY;
 * STATUS_INTERNAL when the two passes differ. */
enum status json_out_write_twice(void (*emit)(struct json_out *, const void *), const void *arg,
                                 char **out, size_t *len, struct errbuf *err);

#endif
