/* server/cors.h — Cross-Origin Resource Sharing for browser frontends.
 *
 * Off when the allow-list is empty: no CORS header on any response, and OPTIONS is
 * not treated as a preflight (the router answers it as any other method).  On: an
 * allow-list of origins, each "scheme://host[:port]" (http or https; a default port
 * — :80 for http, :443 for https — is dropped, scheme and host lower-cased, so the
 * list compares exactly with what browsers send in Origin), or the single entry "*"
 * (any origin).
 *
 * Credentials: never.  Access-Control-Allow-Credentials is never sent — the API is
 * authenticated with bearer tokens that the frontend puts in Authorization itself,
 * not with cookies — so `*` can never be paired with credentials.  With "*" in the
 * list the answer is `Access-Control-Allow-Origin: *`; otherwise it is the request's
 * Origin echoed when it is on the list (and nothing when it is not), always with
 * `Vary: Origin` so caches keep the answers apart.
 *
 * Preflight (OPTIONS carrying Origin and Access-Control-Request-Method): allowed
 * when the origin is on the list, the method is GET, POST or HEAD, and every
 * requested header is a valid token (they are echoed: bearer tokens, not cookies,
 * guard the API, so any header the page wants to send is harmless) →
 * 204 with Allow-Origin, Allow-Methods, Allow-Headers (when any were requested),
 * Max-Age (600 s), and Vary (Origin, Access-Control-Request-Method/-Headers).
 * Otherwise 403 with Vary only.
 * Simple/actual requests also get Access-Control-Expose-Headers for the headers a
 * frontend reads: X-Request-Id, Server-Timing, Retry-After, retry-after-ms.
 *
 * Ownership: cors_create copies the origins.  Thread-safety: immutable after
 * creation; cors_preflight/cors_simple may run on any thread concurrently; the
 * headers they fill belong to the caller.
 */
#ifndef DIFFUSIOND_SERVER_CORS_H
#define DIFFUSIOND_SERVER_CORS_H

#include <stdbool.h>

#include "engine/status.h"

#define CORS_MAX_HEADERS 6
#define CORS_VALUE_MAX 1024 /* longer Access-Control-Request-Headers: denied */

struct cors_header {
    const char *name;            /* a static string */
    char value[CORS_VALUE_MAX];
};

/* Headers to add to one response, in order. */
struct cors_headers {
    int n;
    struct cors_header h[CORS_MAX_HEADERS];
};

struct cors;

/* origins[0 … n): see above; STATUS_INVALID_ARGUMENT naming a bad entry ("cors
 * origin 'x': …").  n == 0: CORS off (*out is still a valid, disabled object). */
enum status cors_create(const char *const *origins, int n, struct cors **out,
                        struct errbuf *err);
void cors_destroy(struct cors *c); /* c may be NULL */

bool cors_enabled(const struct cors *c); /* c may be NULL: off */

/* Whether a request is a CORS preflight: CORS on, method OPTIONS, Origin and
 * Access-Control-Request-Method present. */
bool cors_is_preflight(const struct cors *c, const char *method, const char *origin,
                       const char *request_method);

/* The answer to a preflight: returns the HTTP status (204 allowed, 403 refused) and
 * fills out.  request_headers may be NULL. */
int cors_preflight(const struct cors *c, const char *origin, const char *request_method,
                   const char *request_headers, struct cors_headers *out);

/* Headers for any other response (origin NULL when the request had none): out->n ==
 * 0 when CORS is off; Vary: Origin always when on; Allow-Origin and Expose-Headers
 * when the origin is allowed. */
void cors_simple(const struct cors *c, const char *origin, struct cors_headers *out);

#endif
