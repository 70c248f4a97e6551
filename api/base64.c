/* api/base64.c — RFC 4648 base64, standard alphabet with padding. */
#include "api/base64.h"

static const char ALPHABET[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t n)
{
    const size_t groups = n / 3 + (n % 3 != 0);
    if (groups > SIZE_MAX / 4)
        return SIZE_MAX;
    return groups * 4;
}

size_t base64_encode(const uint8_t *src, size_t n, char *dst)
{
    char *d = dst;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) { /* 3 bytes → 4 characters */
        const uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        d[0] = ALPHABET[v >> 18];
        d[1] = ALPHABET[(v >> 12) & 63];
        d[2] = ALPHABET[(v >> 6) & 63];
        d[3] = ALPHABET[v & 63];
        d += 4;
    }
    if (i < n) { /* 1 or 2 bytes left: padded */
        const bool two = n - i == 2;
        const uint32_t v = (uint32_t)src[i] << 16 | (two ? (uint32_t)src[i + 1] << 8 : 0);
        d[0] = ALPHABET[v >> 18];
        d[1] = ALPHABET[(v >> 12) & 63];
        d[2] = two ? ALPHABET[(v >> 6) & 63] : '=';
        d[3] = '=';
        d += 4;
    }
    return (size_t)(d - dst);
}

/* The 6-bit value of a character, or −1. */
static int sextet(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bool base64_decode(const char *src, size_t n, uint8_t *dst, size_t *out_len)
{
    if (n % 4 != 0)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        const bool last = i + 4 == n;
        const int pad = last ? (src[i + 3] == '=') + (src[i + 2] == '=' && src[i + 3] == '=')
                             : 0;
        int v[4];
        for (int k = 0; k < 4 - pad; k++)
            if ((v[k] = sextet(src[i + k])) < 0)
                return false;
        for (int k = 4 - pad; k < 4; k++)
            v[k] = 0;
        const uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                           (uint32_t)v[3];
        dst[o++] = (uint8_t)(w >> 16);
        if (pad < 2)
            dst[o++] = (uint8_t)(w >> 8);
        if (pad < 1)
            dst[o++] = (uint8_t)w;
        if (pad > 0 && (w & (pad == 2 ? 0xFFFFu : 0xFFu)) != 0)
            return false; /* non-canonical: bits set under the padding */
    }
    *out_len = o;
    return true;
}
