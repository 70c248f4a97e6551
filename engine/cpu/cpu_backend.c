/* engine/cpu/cpu_backend.c — memory, dtype conversion and the vtable of the CPU
 * backend; the ops live in the other files of this folder. */
#include "engine/cpu/cpu_backend.h"

#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"
#include "engine/half.h"

/* OpenBLAS's own thread control; weak so that another CBLAS links too. */
extern void openblas_set_num_threads(int n) __attribute__((weak));

void cpu_blas_single_thread(void)
{
    if (openblas_set_num_threads)
        openblas_set_num_threads(1);
}

static void cpu_destroy(struct backend *b)
{
    struct cpu_backend *cb = cpu_of(b);
    threadpool_destroy(cb->pool);
    free(cb);
}

static enum status cpu_alloc(struct backend *b, struct tensor *t, struct errbuf *err)
{
    (void)b;
    if (t->dtype != DTYPE_F32)
        return status_fail(err, STATUS_UNSUPPORTED, "cpu backend stores f32 only, not %s",
                           dtype_name(t->dtype));
    size_t bytes = (tensor_nbytes(t) + 63) & ~(size_t)63;
    t->data = aligned_alloc(64, bytes);
    if (!t->data)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "cpu backend: cannot allocate %zu bytes",
                           bytes);
    return STATUS_OK;
}

static void cpu_free(struct backend *b, struct tensor *t)
{
    (void)b;
    free(t->data);
}

static enum status cpu_upload(struct backend *b, struct tensor *dst, const void *src,
                              enum dtype src_dtype, struct errbuf *err)
{
    (void)b;
    (void)err;
    size_t n = (size_t)tensor_numel(dst);
    switch (src_dtype) {
    case DTYPE_F32: memcpy(dst->data, src, n * sizeof(float)); break;
    case DTYPE_F16: half_f16_to_f32_array(src, dst->data, n); break;
    case DTYPE_BF16: half_bf16_to_f32_array(src, dst->data, n); break;
    default: return status_fail(err, STATUS_INVALID_ARGUMENT, "upload: unknown dtype");
    }
    return STATUS_OK;
}

static enum status cpu_download(struct backend *b, const struct tensor *src, float *dst,
                                struct errbuf *err)
{
    (void)b;
    (void)err;
    memcpy(dst, src->data, tensor_nbytes(src));
    return STATUS_OK;
}

static enum status cpu_sync(struct backend *b, struct errbuf *err)
{
    (void)b;
    (void)err;
    return STATUS_OK;
}

static const struct backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .sync = cpu_sync,
    .conv2d = cpu_conv2d,
    .linear = cpu_linear,
    .matmul = cpu_matmul,
    .group_norm = cpu_group_norm,
    .layer_norm = cpu_layer_norm,
    .attention = cpu_attention,
    .gelu = cpu_gelu,
    .geglu = cpu_geglu,
    .silu = cpu_silu,
    .add = cpu_add,
    .mul = cpu_mul,
    .axpby = cpu_axpby,
    .upsample_nearest = cpu_upsample_nearest,
    .gather_rows = cpu_gather_rows,
    .concat_channels = cpu_concat_channels,
    .timestep_embedding = cpu_timestep_embedding,
};

enum status cpu_backend_create(int n_threads, struct backend **out, struct errbuf *err)
{
    *out = NULL;
    struct cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "cpu backend: out of memory");
    enum status s = threadpool_create(n_threads, &cb->pool, err);
    if (s != STATUS_OK) {
        free(cb);
        return s;
    }
    cb->base.ops = &cpu_ops;
    cb->n_threads = threadpool_size(cb->pool);
    cpu_blas_single_thread();
    *out = &cb->base;
    return STATUS_OK;
}

int cpu_backend_threads(const struct backend *b)
{
    return ((const struct cpu_backend *)b)->n_threads;
}
