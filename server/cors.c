/* server/cors.c — origin allow-list, preflight answers and response headers. */
#include "server/cors.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ORIGIN_MAX 512

struct cors {
    bool any;      /* "*" in the list */
    int n;
    char **origins; /* normalised */
};

static const char expose[] = "X-Request-Id, Server-Timing, Retry-After, retry-after-ms";
static const char methods[] = "GET, POST, HEAD";
static const char max_age[] = "600";

/* "scheme://host[:port]" → lower-case scheme and host, default port dropped, into out.
 * false (why set) when it is not such an origin. */
static bool normalise(const char *in, char *out, size_t cap, const char **why)
{
    size_t len = strlen(in);
    if (len == 0 || len >= ORIGIN_MAX || len >= cap)
        return (*why = "empty or longer than 511 bytes"), false;
    const char *rest;
    const char *scheme;
    if (strncasecmp(in, "http://", 7) == 0)
        scheme = "http", rest = in + 7;
    else if (strncasecmp(in, "https://", 8) == 0)
        scheme = "https", rest = in + 8;
    else
        return (*why = "must start with http:// or https://"), false;
    const char *colon = strchr(rest, ':');
    size_t host_len = colon ? (size_t)(colon - rest) : strlen(rest);
    if (host_len == 0)
        return (*why = "has no host"), false;
    for (size_t i = 0; i < host_len; i++) {
        unsigned char c = (unsigned char)rest[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '[' || c == ']'))
            return (*why = "host may hold letters, digits, '-', '.' (no path, no trailing '/')"),
                   false;
    }
    int port = -1;
    if (colon) {
        const char *p = colon + 1;
        if (!*p || strlen(p) > 5)
            return (*why = "bad port"), false;
        port = 0;
        for (; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return (*why = "bad port (no path, no trailing '/')"), false;
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535)
            return (*why = "port not in [1, 65535]"), false;
    }
    bool is_default = (port == 80 && scheme[4] == '\0') || (port == 443 && scheme[4] == 's');
    int w = snprintf(out, cap, "%s://%.*s", scheme, (int)host_len, rest);
    if (port >= 0 && !is_default)
        w += snprintf(out + w, cap - (size_t)w, ":%d", port);
    for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return true;
}

enum status cors_create(const char *const *origins, int n, struct cors **out, struct errbuf *err)
{
    *out = NULL;
    struct cors *c = calloc(1, sizeof *c);
    if (!c || (n > 0 && !(c->origins = calloc((size_t)n, sizeof *c->origins)))) {
        free(c);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "cors: %d origins", n);
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(origins[i], "*") == 0) {
            c->any = true;
            continue;
        }
        char norm[ORIGIN_MAX];
        const char *why = "";
        if (!normalise(origins[i], norm, sizeof norm, &why)) {
            cors_destroy(c);
            return status_fail(err, STATUS_INVALID_ARGUMENT, "cors origin '%.200s': %s",
                               origins[i], why);
        }
        if (!(c->origins[c->n] = strdup(norm))) {
            cors_destroy(c);
            return status_fail(err, STATUS_OUT_OF_MEMORY, "cors origins");
        }
        c->n++;
    }
    *out = c;
    return STATUS_OK;
}

void cors_destroy(struct cors *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        free(c->origins[i]);
    free(c->origins);
    free(c);
}

bool cors_enabled(const struct cors *c)
{
    return c && (c->any || c->n > 0);
}

static bool origin_allowed(const struct cors *c, const char *origin)
{
    if (!origin || !*origin)
        return false;
    if (c->any)
        return true;
    char norm[ORIGIN_MAX];
    const char *why;
    if (!normalise(origin, norm, sizeof norm, &why))
        return false; /* "null", garbage */
    for (int i = 0; i < c->n; i++)
        if (strcmp(norm, c->origins[i]) == 0)
            return true;
    return false;
}

static void add(struct cors_headers *out, const char *name, const char *value)
{
    if (out->n >= CORS_MAX_HEADERS)
        return;
    out->h[out->n].name = name;
    snprintf(out->h[out->n].value, CORS_VALUE_MAX, "%s", value);
    out->n++;
}

bool cors_is_preflight(const struct cors *c, const char *method, const char *origin,
                       const char *request_method)
{
    return cors_enabled(c) && method && strcmp(method, "OPTIONS") == 0 && origin &&
           request_method;
}

/* A comma list of header names (RFC 9110 tokens, optional whitespace), re-joined
 * with ", " into out; false when malformed or too long. */
static bool header_list(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    const char *p = in;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && (isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p)))
            p++;
        size_t len = (size_t)(p - start);
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != ',')
            return false;
        if (len == 0)
            continue;
        if (n + len + 3 > cap)
            return false;
        if (n)
            memcpy(out + n, ", ", 2), n += 2;
        memcpy(out + n, start, len);
        n += len;
        out[n] = '\0';
    }
    return true;
}

int cors_preflight(const struct cors *c, const char *origin, const char *request_method,
                   const char *request_headers, struct cors_headers *out)
{
    out->n = 0;
    if (!cors_enabled(c))
        return 403;
    add(out, "Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    if (!origin_allowed(c, origin) || !request_method ||
        (strcmp(request_method, "GET") != 0 && strcmp(request_method, "POST") != 0 &&
         strcmp(request_method, "HEAD") != 0))
        return 403;
    char headers[CORS_VALUE_MAX];
    if (request_headers && !header_list(request_headers, headers, sizeof headers))
        return 403;
    add(out, "Access-Control-Allow-Origin", c->any ? "*" : origin);
    add(out, "Access-Control-Allow-Methods", methods);
    if (request_headers && headers[0])
        add(out, "Access-Control-Allow-Headers", headers);
    add(out, "Access-Control-Max-Age", max_age);
    return 204;
}

void cors_simple(const struct cors *c, const char *origin, struct cors_headers *out)
{
    out->n = 0;
    if (!cors_enabled(c))
        return;
    add(out, "Vary", "Origin");
    if (!origin_allowed(c, origin))
        return;
    add(out, "Access-Control-Allow-Origin", c->any ? "*" : origin);
    add(out, "Access-Control-Expose-Headers", expose);
}
