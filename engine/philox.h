/* engine/philox.h — Philox4x32-10 counter-based RNG and the noise streams built on it.
 *
 * philox_block is Random123's philox4x32_10 (multipliers 0xD2511F53, 0xCD9E8D57;
 * Weyl key increments 0x9E3779B9, 0xBB67AE85; 10 rounds) and reproduces
 * Random123's known-answer vectors.
 *
 * Streams follow cuRAND's curand_init(seed, subsequence, offset, &philox_state)
 * so that a CUDA kernel can draw the same numbers:
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { q & 0xffffffff, q >> 32, subsequence & 0xffffffff, subsequence >> 32 }
 *   word k of the 32-bit stream (seed, subsequence) is philox_block(counter(q = k / 4),
 *   key)[k % 4] — the k-th value curand() returns after curand_init(seed, subsequence, 0).
 *
 * Standard normals (philox_normal_fill): element k of the normal stream comes from
 * the pair of words (w0, w1) = words (2·⌊k/2⌋, 2·⌊k/2⌋ + 1), as in cuRAND's
 * _curand_box_muller / curand_normal2 / curand_normal4:
 *   u1 = w0·2⁻³² + 2⁻³³,  u2 = w1·2⁻³² + 2⁻³³        (both in (0, 1), never 0 or 1)
 *   r  = sqrt(−2·ln u1),   θ = 2π·u2
 *   element 2j = r·sin θ,  element 2j+1 = r·cos θ
 * So normal element k uses words k and k±1, and curand_normal() called repeatedly
 * after curand_init(seed, subsequence, offset) with an even offset yields elements
 * offset, offset+1, ….  The transform is evaluated in double precision and rounded
 * once to float (cuRAND evaluates it in float with fast device math, so its values
 * agree with these to a few ulp, not bit for bit; a CUDA kernel that must match the
 * CPU bit for bit evaluates the same double formula).
 *
 * Thread-safety: pure functions; no state is kept between calls.
 */
#ifndef DIFFUSIOND_ENGINE_PHILOX_H
#define DIFFUSIOND_ENGINE_PHILOX_H

#include <stddef.h>
#include <stdint.h>

#define PHILOX_M4X32_0 0xD2511F53u
#define PHILOX_M4X32_1 0xCD9E8D57u
#define PHILOX_W32_0 0x9E3779B9u
#define PHILOX_W32_1 0xBB67AE85u

/* One Philox4x32-10 block: out = philox4x32_10(ctr, key).  out may alias ctr. */
void philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Words [offset, offset + n) of the 32-bit stream (seed, subsequence). */
void philox_u32_fill(uint64_t seed, uint64_t subsequence, uint64_t offset, uint32_t *out,
                     size_t n);

/* Elements [offset, offset + n) of the standard-normal stream (seed, subsequence).
 * Element k depends only on (seed, subsequence, k), so filling a range at once or
 * in pieces at any offsets gives the same values.  Indices wrap modulo 2⁶⁴. */
void philox_normal_fill(uint64_t seed, uint64_t subsequence, uint64_t offset, float *out,
                        size_t n);

#endif
