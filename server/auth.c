/* server/auth.c — bearer tokens checked against SHA-256 digests in constant time. */
#include "server/auth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/serve_config.h" /* SERVE_API_KEY_MAX */

struct auth {
    int n;
    uint8_t (*digests)[32];
};

/* ---- SHA-256 (FIPS 180-4) ----------------------------------------------------------- */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

/* One 64-byte block into the state h[8]. */
static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) +
                      sha_k[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void auth_sha256(const void *data, size_t len, uint8_t digest[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        sha256_block(h, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tail_len = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < tail_len; off += 64)
        sha256_block(h, tail + off);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            digest[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

/* ---- keys --------------------------------------------------------------------------- */

static bool key_ok(const char *k)
{
    size_t len = strlen(k);
    if (len == 0 || len > SERVE_API_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)k[i] <= 0x20 || (unsigned char)k[i] >= 0x7f)
            return false;
    return true;
}

enum status auth_create(const char *const *keys, int n, struct auth **out, struct errbuf *err)
{
    *out = NULL;
    if (n < 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "auth: %d keys", n);
    for (int i = 0; i < n; i++)
        if (!keys[i] || !key_ok(keys[i]))
            return status_fail(err, STATUS_INVALID_ARGUMENT, "API key %d: must be 1-%d bytes of "
                               "visible ASCII (no spaces)", i + 1, SERVE_API_KEY_MAX);
    struct auth *a = calloc(1, sizeof *a);
    if (!a || (n && !(a->digests = calloc((size_t)n, sizeof *a->digests)))) {
        free(a);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "auth: %d keys", n);
    }
    a->n = n;
    for (int i = 0; i < n; i++)
        auth_sha256(keys[i], strlen(keys[i]), a->digests[i]);
    *out = a;
    return STATUS_OK;
}

void auth_destroy(struct auth *a)
{
    if (!a)
        return;
    free(a->digests);
    free(a);
}

bool auth_enabled(const struct auth *a)
{
    return a && a->n > 0;
}

bool auth_exempt(const char *method, const char *path)
{
    if (method && strcmp(method, "OPTIONS") == 0)
        return true;
    return path && (strcmp(path, "/livez") == 0 || strcmp(path, "/healthz") == 0 ||
                    strcmp(path, "/readyz") == 0);
}

/* 1 when the digest equals one of the keys: every byte of every key is compared and
 * the differences are OR-ed, whatever matched before. */
static int digest_matches(const struct auth *a, const uint8_t d[32])
{
    volatile uint8_t any_match = 0;
    for (int i = 0; i < a->n; i++) {
        uint8_t diff = 0;
        for (int j = 0; j < 32; j++)
            diff |= (uint8_t)(a->digests[i][j] ^ d[j]);
        /* diff == 0 → 1, else 0, without a branch */
        any_match |= (uint8_t)(1 & (((unsigned)diff - 1) >> 8));
    }
    return any_match;
}

enum auth_result auth_check(const struct auth *a, const char *authorization)
{
    if (!auth_enabled(a))
        return AUTH_OK;
    if (!authorization)
        return AUTH_MISSING;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return AUTH_BAD_SCHEME;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strlen(p);
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) /* OWS that MHD may keep */
        len--;
    if (len == 0)
        return AUTH_BAD_SCHEME;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
            return AUTH_INVALID_KEY; /* no key holds such a byte */
    uint8_t d[32];
    auth_sha256(p, len, d);
    return digest_matches(a, d) ? AUTH_OK : AUTH_INVALID_KEY;
}

const char *auth_www_authenticate(enum auth_result r)
{
    switch (r) {
    case AUTH_OK: return NULL;
    case AUTH_MISSING: return "Bearer realm=\"diffusiond\"";
    case AUTH_BAD_SCHEME: return "Bearer realm=\"diffusiond\", error=\"invalid_request\"";
    case AUTH_INVALID_KEY: return "Bearer realm=\"diffusiond\", error=\"invalid_token\"";
    }
    return "Bearer realm=\"diffusiond\"";
}

const char *auth_message(enum auth_result r)
{
    switch (r) {
    case AUTH_OK: return "";
    case AUTH_MISSING:
        return "You didn't provide an API key. Send it in an Authorization header: "
               "'Authorization: Bearer YOUR_KEY'.";
    case AUTH_BAD_SCHEME:
        return "Malformed Authorization header: expected 'Bearer YOUR_KEY'.";
    case AUTH_INVALID_KEY: return "Incorrect API key provided.";
    }
    return "Unauthorized.";
}
