/* engine/cpu/cpu_simd.h — runtime ISA choice and vectorisable f32 math shared by
 * the CPU backend's non-GEMM ops; not public.
 *
 * There is no global -march: hot loops are written once as plain C over spans
 * (static inline, so GCC vectorises them for whatever target the caller has) and
 * instantiated three times — the baseline ISA, inside functions marked CPU_TARGET_AVX2
 * and CPU_TARGET_AVX512 — chosen per call by cpu_simd_isa() (CPU_ISA_PICK).  ISO C
 * mode contracts nothing into FMAs, so the three compute the same bits.  The scalar math below
 * uses only comparisons, multiplies/adds and bit casts, so it vectorises without
 * -ffast-math or libmvec.
 *
 * Accuracy (measured against double over every float of the range):
 *   cpu_simd_expf     ≤ 1.3 ulp on [−87.3, 88.3]; 0 below −87.3, +inf above 88.3
 *   cpu_simd_erff     ≤ 5e-7 absolute on [−6, 6]; exactly ±1 beyond ±4
 *   sigmoid-based activations inherit expf's accuracy.
 * Thread-safety: pure functions.
 */
#ifndef DIFFUSIOND_ENGINE_CPU_SIMD_H
#define DIFFUSIOND_ENGINE_CPU_SIMD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* -DCPU_SIMD_X86=0 builds the portable code only (what non-x86 machines get). */
#ifndef CPU_SIMD_X86
#if defined(__x86_64__) || defined(__i386__)
#define CPU_SIMD_X86 1
#else
#define CPU_SIMD_X86 0
#endif
#endif

#if CPU_SIMD_X86
#define CPU_TARGET_AVX512 __attribute__((target("avx512f,fma")))
#define CPU_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define CPU_TARGET_AVX512
#define CPU_TARGET_AVX2
#endif

/* True when the AVX-512 instantiations may run on this CPU (and OS). */
static inline bool cpu_simd_avx512(void)
{
#if CPU_SIMD_X86
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

/* True when AVX2 instantiations may run (the x86 CPUs without AVX-512 of the last
 * decade).  ISO C mode contracts no a·b + c into an FMA, so an AVX2 instantiation
 * computes each element exactly as the baseline one does, 8 at a time. */
static inline bool cpu_simd_avx2(void)
{
#if CPU_SIMD_X86
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

/* The widest instantiation this CPU runs, for the ops instantiated three times. */
enum cpu_isa { CPU_ISA_BASE, CPU_ISA_AVX2, CPU_ISA_AVX512 };

static inline enum cpu_isa cpu_simd_isa(void)
{
    return cpu_simd_avx512() ? CPU_ISA_AVX512 : cpu_simd_avx2() ? CPU_ISA_AVX2 : CPU_ISA_BASE;
}

/* f's instantiation for isa: f##_avx512, f##_avx2 or f##_generic. */
#define CPU_ISA_PICK(isa, f)                                                              \
    ((isa) == CPU_ISA_AVX512 ? f##_avx512 : (isa) == CPU_ISA_AVX2 ? f##_avx2 : f##_generic)

static inline float cpu_simd_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t cpu_simd_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* e^x: x = n·ln2 + r (Cody–Waite split of ln2, |r| ≤ ln2/2), e^r by its degree-7
 * Taylor polynomial (truncation < 6e-9 relative), 2^n built in the exponent bits. */
static inline float cpu_simd_expf(float x)
{
    const float hi = 88.3f, lo = -87.3f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    float t = xc * 1.44269504088896341f + 0x1.8p23f; /* round to nearest integer */
    float n = t - 0x1.8p23f;
    int32_t ni = (int32_t)(cpu_simd_to_bits(t) - 0x4B400000u);
    float r = xc - n * 0.693145751953125f;
    r = r - n * 1.428606765330187e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    float res = p * cpu_simd_from_bits((uint32_t)(ni + 127) << 23);
    res = x < lo ? 0.0f : res;
    res = x > hi ? __builtin_inff() : res;
    return res;
}

/* x·σ(k·x) = x / (1 + e^(−k·x)): SiLU (k = 1) and the sigmoid GELUs. */
static inline float cpu_simd_x_sigmoid(float x, float k)
{
    return x / (1.0f + cpu_simd_expf(-k * x));
}

static inline float cpu_simd_silu(float x)
{
    return cpu_simd_x_sigmoid(x, 1.0f);
}

/* erf(x) as the rational minimax approximation used by Eigen/XLA for float:
 * x·P(x²)/Q(x²) on x clamped to [−4, 4] (erf(±4) = ±1 in f32). */
static inline float cpu_simd_erff(float x)
{
    float xc = x > 4.0f ? 4.0f : x;
    xc = xc < -4.0f ? -4.0f : xc;
    float x2 = xc * xc;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return xc * p / q;
}

/* GELU, exact form: ½x(1 + erf(x/√2)). */
static inline float cpu_simd_gelu_erf(float x)
{
    return 0.5f * x * (1.0f + cpu_simd_erff(x * 0.70710678118654752f));
}

/* GELU, tanh form: ½x(1 + tanh(u)) = x·σ(2u), u = √(2/π)(x + 0.044715x³). */
static inline float cpu_simd_gelu_tanh(float x)
{
    float u2 = 1.5957691216057308f * (x + 0.044715f * x * x * x);
    return x / (1.0f + cpu_simd_expf(-u2));
}

/* GELU, "quick" form (CLIP): x·σ(1.702x). */
static inline float cpu_simd_gelu_quick(float x)
{
    return cpu_simd_x_sigmoid(x, 1.702f);
}

#endif
