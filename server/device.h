/* server/device.h — the backend a command runs on, from its --device / --dtype
 * settings: one place for `serve` and `generate`.
 *
 *   "cpu"   the CPU backend (f32) with `threads` threads (0: all CPUs)
 *   "cuda"  the CUDA backend, device 0, weights and activations in `dtype`
 *           (f16, bf16, f32); a build without the CUDA backend → STATUS_UNSUPPORTED,
 *           a machine without a driver/GPU → the backend's STATUS_NOT_FOUND
 *   "auto"  cuda when this build has the CUDA backend and it can be created, else cpu
 *           (why is logged)
 * cuda_plan: the CUDA backend's planning choices (engine/cuda/cuda_plan.h), over its
 * defaults; NULL or "": the defaults.  Checked on every device (a CPU run ignores it).
 *
 * Ownership: *out belongs to the caller (backend_destroy).  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_SERVER_DEVICE_H
#define DIFFUSIOND_SERVER_DEVICE_H

#include "engine/backend.h"
#include "engine/status.h"

/* device NULL: "cpu"; dtype NULL: "f16".  *chosen (may be NULL): "cpu" or "cuda".
 * An unknown device or dtype, or a bad plan → STATUS_INVALID_ARGUMENT naming "device",
 * "dtype" or "cuda plan". */
enum status device_backend_create(const char *device, const char *dtype, const char *cuda_plan,
                                  int threads, struct backend **out, const char **chosen,
                                  struct errbuf *err);

#endif
