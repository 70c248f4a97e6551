/* api/base64.h — Base64 (RFC 4648 §4: the standard alphabet A–Z a–z 0–9 + /, with '='
 * padding, no line breaks) encoded into a caller's buffer, and decoded back (tests,
 * tools).
 *
 * Ownership: the caller owns every buffer.  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_BASE64_H
#define DIFFUSIOND_API_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters the encoding of n bytes takes: 4·⌈n/3⌉ (no NUL).  SIZE_MAX when that
 * overflows size_t. */
size_t base64_encoded_len(size_t n);

/* Writes base64_encoded_len(n) characters of src[0 … n) to dst (no NUL); returns that
 * count.  dst must hold them. */
size_t base64_encode(const uint8_t *src, size_t n, char *dst);

/* Decodes src[0 … n) (length a multiple of 4, padding only at the end, standard
 * alphabet only) into dst (room for 3·n/4 bytes); *out_len = bytes written.  Returns
 * false on any malformed input. */
bool base64_decode(const char *src, size_t n, uint8_t *dst, size_t *out_len);

#endif
