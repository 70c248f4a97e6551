/* engine/philox.c — see philox.h. */
#include "engine/philox.h"

#include <math.h>

static void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M4X32_0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M4X32_1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c1 = c[1], c3 = c[3];
    c[0] = hi1 ^ c1 ^ k[0];
    c[1] = lo1;
    c[2] = hi0 ^ c3 ^ k[1];
    c[3] = lo0;
}

void philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k[0] += PHILOX_W32_0;
            k[1] += PHILOX_W32_1;
        }
        philox_round(c, k);
    }
    for (int i = 0; i < 4; i++)
        out[i] = c[i];
}

/* The four words of quad q (words 4q .. 4q+3) of the stream (seed, subsequence). */
static void philox_quad(uint64_t seed, uint64_t subsequence, uint64_t q, uint32_t out[4])
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)q, (uint32_t)(q >> 32), (uint32_t)subsequence,
                             (uint32_t)(subsequence >> 32)};
    philox_block(ctr, key, out);
}

void philox_u32_fill(uint64_t seed, uint64_t subsequence, uint64_t offset, uint32_t *out,
                     size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t k = offset + i;
        uint32_t w[4];
        philox_quad(seed, subsequence, k >> 2, w);
        for (unsigned j = (unsigned)(k & 3); j < 4 && i < n; j++)
            out[i++] = w[j];
    }
}

/* Box–Muller on one pair of words, as cuRAND's _curand_box_muller (in double). */
static void philox_box_muller(uint32_t w0, uint32_t w1, float out[2])
{
    const double two_m32 = 0x1.0p-32, two_m33 = 0x1.0p-33;
    const double two_pi = 6.283185307179586476925286766559;
    double u1 = (double)w0 * two_m32 + two_m33; /* exact: in (0, 1) */
    double u2 = (double)w1 * two_m32 + two_m33;
    double r = sqrt(-2.0 * log(u1));
    double theta = two_pi * u2;
    out[0] = (float)(r * sin(theta));
    out[1] = (float)(r * cos(theta));
}

void philox_normal_fill(uint64_t seed, uint64_t subsequence, uint64_t offset, float *out,
                        size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t k = offset + i;
        uint32_t w[4];
        float z[4];
        philox_quad(seed, subsequence, k >> 2, w);
        unsigned j = (unsigned)(k & 3);
        if (j < 2)
            philox_box_muller(w[0], w[1], z);
        philox_box_muller(w[2], w[3], z + 2);
        for (; j < 4 && i < n; j++)
            out[i++] = z[j];
    }
}
