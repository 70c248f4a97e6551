/* engine/cuda/cuda_device.h — CUDA device discovery and a device self-test.
 *
 * The first piece of the CUDA backend (engine/cuda/): it tells what the CUDA runtime
 * sees, and proves that the device code this build carries runs on the card.  It is
 * plain C; only files under engine/cuda/ include CUDA's own headers.
 *
 * The runtime is linked statically (libcudart_static), so a binary built with CUDA
 * starts on a machine without the driver or a GPU: these calls then fail with
 * STATUS_NOT_FOUND and say why, and the process falls back to the CPU backend.
 *
 * Thread-safety: all functions may be called from any thread (the CUDA runtime is
 * thread-safe); cuda_device_selftest makes `idx` the calling thread's current device.
 */
#ifndef DIFFUSIOND_ENGINE_CUDA_DEVICE_H
#define DIFFUSIOND_ENGINE_CUDA_DEVICE_H

#include <stddef.h>

/* engine/status.h has no C++ guards of its own; .cu files see it through here. */
#ifdef __cplusplus
extern "C" {
#endif

#include "engine/status.h"

/* Number of usable CUDA devices in *out.  No driver, a driver too old for this
 * runtime, or no GPU: *out = 0 and STATUS_NOT_FOUND with the runtime's reason;
 * any other runtime failure: STATUS_DEVICE. */
enum status cuda_device_count(int *out, struct errbuf *err);

/* One line about device idx into buf (always NUL-terminated when cap > 0), e.g.
 * "NVIDIA H100 80GB HBM3, compute 9.0, 132 SMs, 79.1 GiB".
 * idx out of range: STATUS_INVALID_ARGUMENT; no device at all: as cuda_device_count. */
enum status cuda_device_describe(int idx, char *buf, size_t cap, struct errbuf *err);

/* CUDA runtime version this binary carries and the driver's (0 when there is no
 * driver), both as 1000·major + 10·minor.  Never fails. */
void cuda_versions(int *runtime, int *driver);

/* Runs a small kernel (y = a·x + y over a few thousand floats) on device idx, copies
 * the result back and checks it: proves the build's device code (its
 * CMAKE_CUDA_ARCHITECTURES) loads and runs on this card.  STATUS_DEVICE when a CUDA
 * call fails or a result is wrong. */
enum status cuda_device_selftest(int idx, struct errbuf *err);

#ifdef __cplusplus
}
#endif

#endif
