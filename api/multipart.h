/* api/multipart.h — a strict, zero-copy parser of a complete multipart/form-data body
 * (RFC 7578 over RFC 2046), for POST /v1/images/edits: what `curl -F`, the openai
 * Python package (httpx's multipart encoder) and browsers send.
 *
 * The request's Content-Type must be multipart/form-data (type and subtype
 * case-insensitive) with a boundary parameter (parameter names case-insensitive, in any
 * order among others, token or quoted-string value): 1…70 characters of RFC 2046's
 * bchars (letters, digits, '()+_,-./:=? and space, not last).
 *
 * The body: an optional preamble (RFC 2046 allows one; it is skipped, and must end in
 * CRLF before the first delimiter, or be absent so that the body starts with
 * "--boundary"), then parts each opened by "--boundary" (transport padding of spaces
 * and tabs, then CRLF), the last closed by CRLF "--boundary--"; whatever follows the
 * close delimiter (the epilogue) is ignored.  A delimiter that is followed by anything
 * else is refused (RFC 2046: the boundary must not occur in a part), and so is a body
 * without the close delimiter (truncated): no partial result.  A body that is only the
 * close delimiter is an empty form (n = 0: browsers send it for a form with no fields).
 *
 * Each part: header lines ended by CRLF (no bare LF or CR, no control characters, no
 * folded lines), then a blank line, then the content up to the next delimiter's CRLF.
 * (A part whose headers end exactly at the next delimiter, without the blank line, has
 * no content, as RFC 2046's grammar allows.)  Header names are case-insensitive;
 * Content-Disposition is required, once, of type form-data, with a name parameter (and
 * optionally filename; parameters in any order, token or quoted-string values, other
 * parameters such as filename* ignored); Content-Type is optional, once, its value
 * (trimmed, parameters included) handed back as it is.  Other headers (e.g.
 * Content-Transfer-Encoding, which RFC 7578 deprecates) are ignored.  In quoted
 * strings only \" and \\ are escapes; a backslash before any other character stays
 * (curl sends a Windows path's backslashes unescaped); httpx's and browsers' %22 / %0A
 * percent-escapes are not decoded.  The parts' contents are not interpreted (a nested
 * multipart/mixed is one opaque part).
 *
 * Errors: STATUS_INVALID_ARGUMENT with a message that names no request field (the caller
 * prefixes its own), parts counted from 1:
 *     "the Content-Type is not multipart/form-data", "no boundary in the Content-Type",
 *     "a boundary of 71 characters in the Content-Type: at most 70",
 *     "the boundary is not in the body", "more than 32 parts",
 *     "part 3: no Content-Disposition form-data name",
 *     "the boundary before part 2 is followed by neither CRLF nor \"--\"",
 *     "the closing boundary is missing", "part 1: a control character in the headers" …
 *
 * Cost: linear.  Each delimiter search resumes where the last one ended and compares
 * at most 4 + 70 bytes at each CR of the body, so the whole parse is O(len · boundary
 * length) at worst (O(len) for bodies without many CRs followed by "--" and a prefix of
 * the boundary).  Nothing is allocated.
 *
 * Ownership: the parts point into the caller's body (which must outlive them and need
 * not be NUL-terminated) — except a name or filename that had escapes, which is
 * unescaped into the form's own scratch buffer.  So a form must not be copied or moved
 * while its parts are used; there is nothing to free.  None of the strings are
 * NUL-terminated: use the lengths.  Thread-safety: reentrant (a form must not be shared
 * between threads while it is being filled).
 */
#ifndef DIFFUSIOND_API_MULTIPART_H
#define DIFFUSIOND_API_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

#define MULTIPART_MAX_PARTS 32
/* RFC 2046's limit on a boundary's length. */
#define MULTIPART_BOUNDARY_MAX 70
/* Room for the names and filenames that need unescaping, all parts together. */
#define MULTIPART_SCRATCH_MAX 2048

struct multipart_part {
    const char *name; /* the Content-Disposition name parameter */
    size_t name_len;
    const char *filename; /* NULL when absent */
    size_t filename_len;
    const char *content_type; /* the Content-Type header's value; NULL when absent */
    size_t content_type_len;
    const uint8_t *data; /* the part's content, in the body */
    size_t len;
};

struct multipart_form {
    struct multipart_part parts[MULTIPART_MAX_PARTS];
    int n;
    size_t scratch_used;
    char scratch[MULTIPART_SCRATCH_MAX]; /* unescaped quoted names and filenames */
};

/* True when content_type (a Content-Type header value; NULL gives false) is
 * multipart/form-data, whatever its parameters. */
bool multipart_content_type_is(const char *content_type);

/* Parses the len bytes of body (non-NULL when len > 0) under the request's Content-Type
 * value (NUL-terminated) into *out (see the top of this file).  On failure out->n is 0.
 * out NULL: STATUS_INVALID_ARGUMENT naming it (a programmer error). */
enum status multipart_parse(const char *content_type, const uint8_t *body, size_t len,
                            struct multipart_form *out, struct errbuf *err);

/* The first part named name (exact, case-sensitive), or NULL. */
const struct multipart_part *multipart_find(const struct multipart_form *f, const char *name);

#endif
