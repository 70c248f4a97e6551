/* engine/nearest.h — the source index of nearest-neighbour upsampling, PyTorch's rule
 * (F.interpolate mode "nearest": src = floor(dst · in / out) in float, clamped), shared
 * by every backend so their upsample_nearest cannot drift apart.  Exact shortcuts for
 * out = in and out = 2·in.  A pure inline function: usable on the host and, compiled
 * by nvcc, on the device.  Thread-safety: pure. */
#ifndef DIFFUSIOND_ENGINE_NEAREST_H
#define DIFFUSIOND_ENGINE_NEAREST_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define NEAREST_HD __host__ __device__ __forceinline__
#else
#define NEAREST_HD inline
#endif

/* Output index dst of an axis of `out` elements → its input index of `in`. */
static NEAREST_HD int64_t nearest_src_index(int64_t dst, int64_t in, int64_t out)
{
    if (out == in)
        return dst;
    if (out == 2 * in)
        return dst >> 1;
    float scale = (float)in / (float)out;
    int64_t src = (int64_t)floorf((float)dst * scale);
    return src < in - 1 ? src : in - 1;
}

#endif
