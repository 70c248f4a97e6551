/* engine/half.h — IEEE fp16 and bfloat16 ⇄ f32 conversion.
 *
 * f32 → f16/bf16 rounds to nearest, ties to even; overflow gives ±Inf; NaN stays
 * NaN (quiet, sign kept); f16 subnormals are produced and read exactly.
 * NaN details (those of the x86 F16C instructions): f16 → f32 sets the quiet bit
 * and keeps sign and payload; f32 → f16/bf16 sets the quiet bit and keeps sign and
 * the top payload bits; bf16 → f32 is exact (a 16-bit shift), so a signalling bf16
 * NaN stays signalling.
 *
 * The scalar functions define the results.  The array forms use F16C/AVX2 or
 * AVX-512 on x86-64 when the CPU has them (chosen at run time) and give the same
 * bits as the scalar functions for every input.
 * Thread-safety: pure functions.
 */
#ifndef DIFFUSIOND_ENGINE_HALF_H
#define DIFFUSIOND_ENGINE_HALF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

float half_f16_to_f32(uint16_t h);
uint16_t half_f32_to_f16(float f);
float half_bf16_to_f32(uint16_t h);
uint16_t half_f32_to_bf16(float f);

/* Array forms (n elements; src and dst must not overlap). */
void half_f16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void half_f32_to_f16_array(const float *src, uint16_t *dst, size_t n);
void half_bf16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void half_f32_to_bf16_array(const float *src, uint16_t *dst, size_t n);

/* Array implementations, selectable for tests and benchmarks.  HALF_ISA_BEST is
 * what the plain array forms use: the widest one this CPU supports. */
enum half_isa {
    HALF_ISA_BEST = 0,
    HALF_ISA_SCALAR,
    HALF_ISA_AVX2,   /* AVX2 + F16C */
    HALF_ISA_AVX512, /* AVX-512F */
};

/* Whether this build and CPU can run `isa` (BEST and SCALAR: always). */
bool half_isa_supported(enum half_isa isa);

/* The array forms with a chosen implementation; one that is not supported falls
 * back to the scalar loop. */
void half_f16_to_f32_array_isa(enum half_isa isa, const uint16_t *src, float *dst, size_t n);
void half_f32_to_f16_array_isa(enum half_isa isa, const float *src, uint16_t *dst, size_t n);
void half_bf16_to_f32_array_isa(enum half_isa isa, const uint16_t *src, float *dst, size_t n);
void half_f32_to_bf16_array_isa(enum half_isa isa, const float *src, uint16_t *dst, size_t n);

#endif
