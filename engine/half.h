/* engine/half.h — IEEE fp16 and bfloat16 ⇄ f32 conversion.
 *
 * f32 → f16/bf16 rounds to nearest, ties to even; overflow gives ±Inf; NaN stays
 * NaN (quiet, sign kept); f16 subnormals are produced and read exactly.
 * Thread-safety: pure functions.
 */
#ifndef DIFFUSIOND_ENGINE_HALF_H
#define DIFFUSIOND_ENGINE_HALF_H

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

#endif
