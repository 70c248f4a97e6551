/* server/auth.h — optional bearer-token authentication of API requests.
 *
 * A request is allowed when it carries `Authorization: Bearer <key>` (scheme
 * case-insensitive, one or more spaces, no trailing garbage) and <key> is one of the
 * configured keys.  The keys are kept only as SHA-256 digests; the presented token
 * is hashed and compared with EVERY digest in constant time (all 32 bytes of each,
 * no early exit on a mismatch, on a match or on length), so the time taken tells
 * neither which key nor how much of one matched.  No keys configured: auth is off
 * and every request is allowed.
 *
 * Exempt paths (auth_exempt): /livez, /healthz, /readyz (load balancers carry no
 * token) and every OPTIONS request (a browser's CORS preflight never carries
 * Authorization).  /metrics is NOT exempt: Prometheus sends a bearer token with
 * `authorization: {credentials: …}`.
 *
 * Ownership: auth_create copies the keys (digests only; the caller should wipe its
 * copies).  Thread-safety: immutable after creation; auth_check may run on any
 * thread concurrently.
 */
#ifndef DIFFUSIOND_SERVER_AUTH_H
#define DIFFUSIOND_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

enum auth_result {
    AUTH_OK = 0,       /* allowed (or auth off, or exempt) */
    AUTH_MISSING,      /* no Authorization header */
    AUTH_BAD_SCHEME,   /* not "Bearer <token>" */
    AUTH_INVALID_KEY,  /* a bearer token that is no configured key */
};

struct auth;

/* keys[0 … n) non-empty, ≤ 512 bytes, no whitespace or control characters
 * (STATUS_INVALID_ARGUMENT naming the key's index otherwise).  n == 0: auth off. */
enum status auth_create(const char *const *keys, int n, struct auth **out,
                        struct errbuf *err);
void auth_destroy(struct auth *a); /* a may be NULL */

bool auth_enabled(const struct auth *a); /* a may be NULL: off */

/* Whether a request needs no token at all (see above). */
bool auth_exempt(const char *method, const char *path);

/* The decision for a request's Authorization header (NULL when absent). */
enum auth_result auth_check(const struct auth *a, const char *authorization);

/* For a 401: the WWW-Authenticate value (RFC 6750: `Bearer realm="diffusiond"`, plus
 * `error="invalid_request"` for a malformed header and `error="invalid_token"` for a
 * refused token) and the error message for the OpenAI-shaped body (which never
 * repeats the token).  NULL / "" for AUTH_OK. */
const char *auth_www_authenticate(enum auth_result r);
const char *auth_message(enum auth_result r);

/* SHA-256 of data[0 … len) (exposed for the tests' known answers). */
void auth_sha256(const void *data, size_t len, uint8_t digest[32]);

#endif
