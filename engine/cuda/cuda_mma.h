/* engine/cuda/cuda_mma.h — the PTX wrappers shared by the mma.sync flash-attention
 * kernels (cuda_flash.cu, cuda_flash_wide.cu): cp.async (16 bytes, zero-fill), ldmatrix
 * (x4/x2, plain and transposed), mma.sync m16n8k16 and m16n8k8 with f32 accumulators
 * for f16 and bf16, ex2 and packing two floats into one register of two T.  Compute capability ≥ 8.0 only:
 * callers guard their kernel bodies with __CUDA_ARCH__ >= 800.  CUDA C++ only. */
#ifndef DIFFUSIOND_ENGINE_CUDA_MMA_H
#define DIFFUSIOND_ENGINE_CUDA_MMA_H

#include <stdint.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

__device__ __forceinline__ uint32_t cm_smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* 16 bytes global → shared; src_bytes 0 zero-fills the destination. */
__device__ __forceinline__ void cm_cp16(void *dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(cm_smem_addr(dst)),
                 "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cm_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cm_cp_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void cm_ldm_x4(uint32_t r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(cm_smem_addr(p)));
}
__device__ __forceinline__ void cm_ldm_x2(uint32_t r[2], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(cm_smem_addr(p)));
}
__device__ __forceinline__ void cm_ldm_x2_trans(uint32_t r[2], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(cm_smem_addr(p)));
}
__device__ __forceinline__ void cm_ldm_x4_trans(uint32_t r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(cm_smem_addr(p)));
}

/* d{16×8, f32} += a{16×16} · b{16×8} */
template <typename T> __device__ __forceinline__ void cm_mma(float d[4], const uint32_t a[4],
                                                             uint32_t b0, uint32_t b1);
template <> __device__ __forceinline__ void cm_mma<__half>(float d[4], const uint32_t a[4],
                                                           uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <> __device__ __forceinline__ void cm_mma<__nv_bfloat16>(float d[4], const uint32_t a[4],
                                                                  uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* d{16×8, f32} += a{16×8} · b{8×8} (m16n8k8: a head dim's last 8 when it is 8 mod 16) */
template <typename T> __device__ __forceinline__ void cm_mma8(float d[4], const uint32_t a[2],
                                                              uint32_t b);
template <> __device__ __forceinline__ void cm_mma8<__half>(float d[4], const uint32_t a[2],
                                                            uint32_t b)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b));
}
template <> __device__ __forceinline__ void cm_mma8<__nv_bfloat16>(float d[4],
                                                                   const uint32_t a[2], uint32_t b)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b));
}

/* 2^x on the special-function unit (flush-to-zero; 2^−inf = 0): the softmax's exp. */
__device__ __forceinline__ float cm_ex2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* One m16n8 score tile s (this thread's four: rows row0, row0 + 8 × keys key0, key0 + 1)
 * masked and scaled for a base-2 softmax: a key at or past nk, or (causal) after its row,
 * → −inf; the rest × scale_log2.  whole: no key of the tile is masked (skips the tests);
 * both flash kernels' default softmax. */
__device__ __forceinline__ void cm_mask_scale(float (&s)[4], int64_t key0, int64_t row0,
                                              int64_t row1, int64_t nk, bool causal,
                                              bool whole, float scale_log2)
{
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const int64_t key = key0 + (e & 1);
        const int64_t row = e < 2 ? row0 : row1;
        const bool ok = whole || (key < nk && (!causal || key <= row));
        s[e] = ok ? s[e] * scale_log2 : -INFINITY;
    }
}

/* The max of v over the four lanes of a quad (the threads holding one mma row). */
__device__ __forceinline__ float cm_quad_max(float v)
{
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

/* Two 1.0 of T in one register (a B fragment of ones: row sums on the tensor cores). */
template <typename T> __device__ __forceinline__ uint32_t cm_ones2();
template <> __device__ __forceinline__ uint32_t cm_ones2<__half>() { return 0x3c003c00u; }
template <> __device__ __forceinline__ uint32_t cm_ones2<__nv_bfloat16>() { return 0x3f803f80u; }

/* Two floats → one register of two T (lower half = first). */
template <typename T> __device__ __forceinline__ uint32_t cm_pack(float lo, float hi);
template <> __device__ __forceinline__ uint32_t cm_pack<__half>(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi);
    return *(uint32_t *)&h;
}
template <> __device__ __forceinline__ uint32_t cm_pack<__nv_bfloat16>(float lo, float hi)
{
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&h;
}

/* The shape of one attention call, as both flash kernels take it (by value). */
struct cm_attn_dims {
    int64_t nq, nk;
    int heads, d;
    float scale_log2; /* scale · log2(e): the softmax runs in base 2 */
    bool causal;
};

static inline struct cm_attn_dims cm_attn_dims_make(int64_t nq, int64_t nk, int heads, int d,
                                                    float scale, bool causal)
{
    struct cm_attn_dims p;
    p.nq = nq;
    p.nk = nk;
    p.heads = heads;
    p.d = d;
    p.scale_log2 = scale * 1.4426950408889634f;
    p.causal = causal;
    return p;
}

#endif
