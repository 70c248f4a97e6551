/* engine/half.c — see half.h.
 *
 * The scalar functions are portable C on the bit patterns and define the results.
 * On x86-64 the array forms pick, at each call, an F16C / AVX2 / AVX-512 loop when
 * the CPU has it (__builtin_cpu_supports; no -march flag is needed for the build);
 * every such loop gives the same bits as the scalar functions, which the unit tests
 * check.  NaN conventions (the same as the F16C instructions):
 *   f16 → f32: NaN gets the quiet bit set, sign and payload kept.
 *   f32 → f16 / bf16: NaN gets the quiet bit set, sign and the top payload bits kept.
 *   bf16 → f32: exact (a shift), signalling NaNs stay signalling.
 */
#include "engine/half.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HALF_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- scalar ------------------------------------------------------------------ */

float half_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* Inf, or NaN made quiet */
        return f32_from_bits(sign | 0x7f800000u | (mant ? 0x00400000u : 0) | (mant << 13));
    if (exp != 0) /* normal: rebias 15 → 127 */
        return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0)
        return f32_from_bits(sign);
    /* subnormal mant·2⁻²⁴: shift the leading one up to bit 10 */
    uint32_t e = 113; /* biased f32 exponent of 2⁻¹⁴, lowered once per shift */
    do {
        mant <<= 1;
        e--;
    } while (!(mant & 0x400u));
    return f32_from_bits(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

/* Rounds the 24-bit significand m right by `shift` (1..31) bits, ties to even. */
static uint32_t half_round_shift(uint32_t m, unsigned shift)
{
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1)))
        q++;
    return q;
}

uint16_t half_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet, top 10 payload bits kept */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* ≥ 65520 (max f16 + half an ulp) and Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* ≥ 2⁻¹⁴: a normal f16 (rounding may carry into exp) */
        uint32_t r = ax - (112u << 23);
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax <= 0x33000000u) /* ≤ 2⁻²⁵: rounds to zero (2⁻²⁵ is a tie, to even 0) */
        return sign;
    /* subnormal f16: value = m·2^(e−150); in units of 2⁻²⁴ that is m >> (126 − e) */
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | half_round_shift(m, 126u - e));
}

float half_bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

uint16_t half_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: quiet, sign and top payload kept */
        return (uint16_t)((x >> 16) | 0x0040u);
    x += 0x7fffu + ((x >> 16) & 1u); /* overflow past the max carries into Inf */
    return (uint16_t)(x >> 16);
}

/* ---- array loops: scalar -------------------------------------------------------- */

static void f16_to_f32_scalar(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_f16_to_f32(src[i]);
}

static void f32_to_f16_scalar(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_f32_to_f16(src[i]);
}

static void bf16_to_f32_scalar(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_bf16_to_f32(src[i]);
}

static void f32_to_bf16_scalar(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_f32_to_bf16(src[i]);
}


/* ---- array loops: x86 ------------------------------------------------------------ */

#ifdef HALF_X86

/* vcvtph2ps / vcvtps2ph with round-to-nearest-even (imm 0) give the scalar code's
 * bits, NaN quieting and f16 subnormals included, whatever MXCSR's FTZ/DAZ say
 * (checked over all 2^32 f32 inputs; f32 subnormals round to ±0 either way). */
__attribute__((target("avx2,f16c"))) static void f16_to_f32_avx2(const uint16_t *src,
                                                                  float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const void *)(src + i))));
    f16_to_f32_scalar(src + i, dst + i, n - i);
}

__attribute__((target("avx2,f16c"))) static void f32_to_f16_avx2(const float *src,
                                                                  uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    f32_to_f16_scalar(src + i, dst + i, n - i);
}

__attribute__((target("avx2"))) static void bf16_to_f32_avx2(const uint16_t *src, float *dst,
                                                               size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)(src + i)));
        _mm256_storeu_si256((void *)(dst + i), _mm256_slli_epi32(w, 16));
    }
    bf16_to_f32_scalar(src + i, dst + i, n - i);
}

/* bf16 rounding in integer arithmetic, as half_f32_to_bf16 does it (vcvtneps2bf16
 * is not used: it flushes subnormals).  Returns the results in the low 16 bits. */
__attribute__((target("avx2"))) static __m256i bf16_round_avx2(__m256i x)
{
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_add_epi32(x, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
    __m256i abs = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
    __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    __m256i quiet = _mm256_or_si256(x, _mm256_set1_epi32(0x00400000));
    return _mm256_srli_epi32(_mm256_blendv_epi8(rounded, quiet, is_nan), 16);
}

__attribute__((target("avx2"))) static void f32_to_bf16_avx2(const float *src, uint16_t *dst,
                                                               size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i lo = bf16_round_avx2(_mm256_loadu_si256((const void *)(src + i)));
        __m256i hi = bf16_round_avx2(_mm256_loadu_si256((const void *)(src + i + 8)));
        /* packus works per 128-bit lane (lo0 hi0 lo1 hi1); put the quads in order */
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
        _mm256_storeu_si256((void *)(dst + i), packed);
    }
    f32_to_bf16_scalar(src + i, dst + i, n - i);
}

__attribute__((target("avx512f"))) static void f16_to_f32_avx512(const uint16_t *src,
                                                                   float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(src + i))));
    f16_to_f32_scalar(src + i, dst + i, n - i);
}

__attribute__((target("avx512f"))) static void f32_to_f16_avx512(const float *src,
                                                                   uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((void *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    f32_to_f16_scalar(src + i, dst + i, n - i);
}

__attribute__((target("avx512f"))) static void bf16_to_f32_avx512(const uint16_t *src,
                                                                    float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(src + i)));
        _mm512_storeu_si512((void *)(dst + i), _mm512_slli_epi32(w, 16));
    }
    bf16_to_f32_scalar(src + i, dst + i, n - i);
}

__attribute__((target("avx512f"))) static void f32_to_bf16_avx512(const float *src,
                                                                    uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i x = _mm512_loadu_si512((const void *)(src + i));
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_add_epi32(x, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
        __m512i abs = _mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff));
        __mmask16 is_nan = _mm512_cmpgt_epi32_mask(abs, _mm512_set1_epi32(0x7f800000));
        r = _mm512_mask_or_epi32(r, is_nan, x, _mm512_set1_epi32(0x00400000));
        _mm256_storeu_si256((void *)(dst + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
    }
    f32_to_bf16_scalar(src + i, dst + i, n - i);
}

#endif /* HALF_X86 */

/* ---- dispatch -------------------------------------------------------------------- */

#ifdef HALF_X86
/* CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c"). */
static bool half_cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

bool half_isa_supported(enum half_isa isa)
{
    switch (isa) {
    case HALF_ISA_BEST:
    case HALF_ISA_SCALAR:
        return true;
#ifdef HALF_X86
    case HALF_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && half_cpu_has_f16c();
    case HALF_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
#endif
    default:
        return false;
    }
}

/* The implementation that will run for a request: BEST becomes the widest
 * supported one; an unsupported one becomes SCALAR. */
static enum half_isa half_isa_resolve(enum half_isa isa)
{
    if (isa == HALF_ISA_BEST) {
        if (half_isa_supported(HALF_ISA_AVX512))
            return HALF_ISA_AVX512;
        if (half_isa_supported(HALF_ISA_AVX2))
            return HALF_ISA_AVX2;
        return HALF_ISA_SCALAR;
    }
    return half_isa_supported(isa) ? isa : HALF_ISA_SCALAR;
}

void half_f16_to_f32_array_isa(enum half_isa isa, const uint16_t *src, float *dst, size_t n)
{
    switch (half_isa_resolve(isa)) {
#ifdef HALF_X86
    case HALF_ISA_AVX512: f16_to_f32_avx512(src, dst, n); break;
    case HALF_ISA_AVX2: f16_to_f32_avx2(src, dst, n); break;
#endif
    default: f16_to_f32_scalar(src, dst, n); break;
    }
}

void half_f32_to_f16_array_isa(enum half_isa isa, const float *src, uint16_t *dst, size_t n)
{
    switch (half_isa_resolve(isa)) {
#ifdef HALF_X86
    case HALF_ISA_AVX512: f32_to_f16_avx512(src, dst, n); break;
    case HALF_ISA_AVX2: f32_to_f16_avx2(src, dst, n); break;
#endif
    default: f32_to_f16_scalar(src, dst, n); break;
    }
}

void half_bf16_to_f32_array_isa(enum half_isa isa, const uint16_t *src, float *dst, size_t n)
{
    switch (half_isa_resolve(isa)) {
#ifdef HALF_X86
    case HALF_ISA_AVX512: bf16_to_f32_avx512(src, dst, n); break;
    case HALF_ISA_AVX2: bf16_to_f32_avx2(src, dst, n); break;
#endif
    default: bf16_to_f32_scalar(src, dst, n); break;
    }
}

void half_f32_to_bf16_array_isa(enum half_isa isa, const float *src, uint16_t *dst, size_t n)
{
    switch (half_isa_resolve(isa)) {
#ifdef HALF_X86
    case HALF_ISA_AVX512: f32_to_bf16_avx512(src, dst, n); break;
    case HALF_ISA_AVX2: f32_to_bf16_avx2(src, dst, n); break;
#endif
    default: f32_to_bf16_scalar(src, dst, n); break;
    }
}

void half_f16_to_f32_array(const uint16_t *src, float *dst, size_t n)
{
    half_f16_to_f32_array_isa(HALF_ISA_BEST, src, dst, n);
}

void half_f32_to_f16_array(const float *src, uint16_t *dst, size_t n)
{
    half_f32_to_f16_array_isa(HALF_ISA_BEST, src, dst, n);
}

void half_bf16_to_f32_array(const uint16_t *src, float *dst, size_t n)
{
    half_bf16_to_f32_array_isa(HALF_ISA_BEST, src, dst, n);
}

void half_f32_to_bf16_array(const float *src, uint16_t *dst, size_t n)
{
    half_f32_to_bf16_array_isa(HALF_ISA_BEST, src, dst, n);
}
