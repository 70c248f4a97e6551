/* engine/cuda/cuda_device.cu — see cuda_device.h. */
#include "engine/cuda/cuda_device.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Errors meaning "there is no usable GPU here" rather than "the GPU failed". */
static bool cuda_error_is_absent(cudaError_t e)
{
    return e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ||
           e == cudaErrorStubLibrary || e == cudaErrorCallRequiresNewerDriver ||
           e == cudaErrorDevicesUnavailable || e == cudaErrorSystemDriverMismatch ||
           e == cudaErrorCompatNotSupportedOnDevice;
}

static enum status cuda_fail(struct errbuf *err, cudaError_t e, const char *what)
{
    enum status code = cuda_error_is_absent(e) ? STATUS_NOT_FOUND : STATUS_DEVICE;
    return status_fail(err, code, "%s: %s (%s)", what, cudaGetErrorString(e),
                       cudaGetErrorName(e));
}

extern "C" enum status cuda_device_count(int *out, struct errbuf *err)
{
    *out = 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the non-sticky error */
        int driver = 0;
        if (cudaDriverGetVersion(&driver) == cudaSuccess && driver == 0)
            return status_fail(err, STATUS_NOT_FOUND,
                               "no CUDA driver loaded (libcuda.so missing): %s",
                               cudaGetErrorName(e));
        return cuda_fail(err, e, "cudaGetDeviceCount");
    }
    if (n <= 0)
        return status_fail(err, STATUS_NOT_FOUND, "cudaGetDeviceCount: no CUDA device");
    *out = n;
    return STATUS_OK;
}

static enum status check_index(int idx, struct errbuf *err)
{
    int n = 0;
    enum status s = cuda_device_count(&n, err);
    if (s != STATUS_OK)
        return s;
    if (idx < 0 || idx >= n)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "CUDA device index %d out of range (%d device(s))", idx, n);
    return STATUS_OK;
}

extern "C" enum status cuda_device_describe(int idx, char *buf, size_t cap, struct errbuf *err)
{
    if (cap > 0)
        buf[0] = '\0';
    enum status s = check_index(idx, err);
    if (s != STATUS_OK)
        return s;
    cudaDeviceProp prop;
    memset(&prop, 0, sizeof prop);
    cudaError_t e = cudaGetDeviceProperties(&prop, idx);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return cuda_fail(err, e, "cudaGetDeviceProperties");
    }
    if (cap > 0)
        snprintf(buf, cap, "%s, compute %d.%d, %d SMs, %.1f GiB", prop.name, prop.major,
                 prop.minor, prop.multiProcessorCount,
                 (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return STATUS_OK;
}

extern "C" void cuda_versions(int *runtime, int *driver)
{
    *runtime = 0;
    *driver = 0;
    if (cudaRuntimeGetVersion(runtime) != cudaSuccess)
        *runtime = 0;
    if (cudaDriverGetVersion(driver) != cudaSuccess)
        *driver = 0;
    (void)cudaGetLastError();
}

__global__ static void selftest_axpy(int n, float a, const float *x, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}

enum { SELFTEST_N = 4099 }; /* not a multiple of the block size: tests the tail */

extern "C" enum status cuda_device_selftest(int idx, struct errbuf *err)
{
    enum status s = check_index(idx, err);
    if (s != STATUS_OK)
        return s;

    const size_t bytes = SELFTEST_N * sizeof(float);
    const float a = 1.5f;
    float *host = (float *)malloc(3 * bytes); /* x, y, result */
    if (!host)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "CUDA self-test: %zu host bytes",
                           3 * bytes);
    float *hx = host, *hy = host + SELFTEST_N, *out = host + 2 * SELFTEST_N;
    for (int i = 0; i < SELFTEST_N; i++) {
        hx[i] = (float)(i % 97) * 0.25f;
        hy[i] = (float)(i % 13) - 6.0f;
    }

    float *dx = NULL, *dy = NULL;
    cudaError_t e = cudaSuccess;
    const char *what = "cudaSetDevice";
    if ((e = cudaSetDevice(idx)) != cudaSuccess)
        goto done;
    what = "cudaMalloc";
    if ((e = cudaMalloc((void **)&dx, bytes)) != cudaSuccess ||
        (e = cudaMalloc((void **)&dy, bytes)) != cudaSuccess)
        goto done;
    what = "cudaMemcpy (host to device)";
    if ((e = cudaMemcpy(dx, hx, bytes, cudaMemcpyHostToDevice)) != cudaSuccess ||
        (e = cudaMemcpy(dy, hy, bytes, cudaMemcpyHostToDevice)) != cudaSuccess)
        goto done;
    what = "kernel launch";
    selftest_axpy<<<(SELFTEST_N + 255) / 256, 256>>>(SELFTEST_N, a, dx, dy);
    if ((e = cudaGetLastError()) != cudaSuccess)
        goto done;
    what = "cudaMemcpy (device to host)";
    if ((e = cudaMemcpy(out, dy, bytes, cudaMemcpyDeviceToHost)) != cudaSuccess)
        goto done;
    for (int i = 0; i < SELFTEST_N; i++) {
        float want = a * hx[i] + hy[i];
        if (fabsf(out[i] - want) > 1e-5f) {
            s = status_fail(err, STATUS_DEVICE, "CUDA self-test on device %d: y[%d] = %g, want %g",
                            idx, i, (double)out[i], (double)want);
            break;
        }
    }

done:
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        s = cuda_fail(err, e, what);
    }
    if (dx)
        cudaFree(dx);
    if (dy)
        cudaFree(dy);
    free(host);
    return s;
}
