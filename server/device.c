/* server/device.c — the backend from --device / --dtype (server/device.h). */
#include "server/device.h"

#include <string.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_plan.h"
#include "engine/log.h"
#ifdef DIFFUSIOND_HAVE_CUDA_BACKEND
#include "engine/cuda/cuda_backend.h"
#endif

static enum status cuda_create(const char *dtype, const char *cuda_plan, struct backend **out,
                               struct errbuf *err)
{
#ifdef DIFFUSIOND_HAVE_CUDA_BACKEND
    struct cuda_backend_options opt;
    cuda_backend_options_default(&opt);
    opt.weight_dtype = !dtype || !strcmp(dtype, "f16") ? DTYPE_F16
                       : !strcmp(dtype, "bf16")        ? DTYPE_BF16
                                                       : DTYPE_F32;
    TRY(cuda_plan_parse(cuda_plan, &opt, err));
    return cuda_backend_create(&opt, out, err);
#else
    (void)dtype;
    (void)cuda_plan;
    (void)out;
    return status_fail(err, STATUS_UNSUPPORTED, "device cuda: this build has no CUDA backend");
#endif
}

enum status device_backend_create(const char *device, const char *dtype, const char *cuda_plan,
                                  int threads, struct backend **out, const char **chosen,
                                  struct errbuf *err)
{
    *out = NULL;
    device = device ? device : "cpu";
    if (strcmp(device, "cpu") && strcmp(device, "cuda") && strcmp(device, "auto"))
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "device: '%s' is not cpu, cuda or auto", device);
    if (dtype && strcmp(dtype, "f16") && strcmp(dtype, "bf16") && strcmp(dtype, "f32"))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "dtype: '%s' is not f16, bf16 or f32",
                           dtype);
    struct cuda_backend_options check; /* a bad plan fails on any device */
    memset(&check, 0, sizeof check);
    TRY(cuda_plan_parse(cuda_plan, &check, err));
    if (strcmp(device, "cpu") != 0) {
        enum status st = cuda_create(dtype, cuda_plan, out, err);
        if (st == STATUS_OK || strcmp(device, "cuda") == 0) {
            if (chosen)
                *chosen = "cuda";
            return st;
        }
        LOG_INFOF("device", "auto: running on the CPU (%s)", err ? err->msg : "no CUDA device");
    }
    if (chosen)
        *chosen = "cpu";
    return cpu_backend_create(threads, out, err);
}
