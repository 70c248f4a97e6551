/* engine/tensor.c — see tensor.h. */
#include "engine/tensor.h"

#include <stdio.h>
#include <string.h>

size_t dtype_size(enum dtype dt)
{
    return dt == DTYPE_F32 ? 4 : 2;
}

const char *dtype_name(enum dtype dt)
{
    switch (dt) {
    case DTYPE_F32: return "f32";
    case DTYPE_F16: return "f16";
    case DTYPE_BF16: return "bf16";
    default: return "?";
    }
}

struct tensor tensor_desc(enum dtype dt, int ndim, const int64_t *shape)
{
    struct tensor t = {.dtype = dt, .ndim = ndim};
    for (int i = 0; i < TENSOR_MAX_DIMS; i++)
        t.shape[i] = i < ndim ? shape[i] : 1;
    return t;
}

struct tensor tensor_desc1(enum dtype dt, int64_t d0)
{
    return tensor_desc(dt, 1, (int64_t[]){d0});
}

struct tensor tensor_desc2(enum dtype dt, int64_t d0, int64_t d1)
{
    return tensor_desc(dt, 2, (int64_t[]){d0, d1});
}

struct tensor tensor_desc3(enum dtype dt, int64_t d0, int64_t d1, int64_t d2)
{
    return tensor_desc(dt, 3, (int64_t[]){d0, d1, d2});
}

struct tensor tensor_desc4(enum dtype dt, int64_t n, int64_t h, int64_t w, int64_t c)
{
    return tensor_desc(dt, 4, (int64_t[]){n, h, w, c});
}

struct tensor tensor_host(enum dtype dt, int ndim, const int64_t *shape, void *data)
{
    struct tensor t = tensor_desc(dt, ndim, shape);
    t.data = data;
    return t;
}

int64_t tensor_numel(const struct tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t tensor_nbytes(const struct tensor *t)
{
    return (size_t)tensor_numel(t) * dtype_size(t->dtype);
}

int64_t tensor_last_dim(const struct tensor *t)
{
    return t->shape[t->ndim - 1];
}

int64_t tensor_rows(const struct tensor *t)
{
    return tensor_numel(t) / tensor_last_dim(t);
}

bool tensor_same_shape(const struct tensor *a, const struct tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

struct tensor tensor_index(const struct tensor *t, int64_t i)
{
    struct tensor p = *t;
    p.ndim = t->ndim - 1;
    for (int d = 0; d < TENSOR_MAX_DIMS; d++)
        p.shape[d] = d + 1 < TENSOR_MAX_DIMS ? t->shape[d + 1] : 1;
    p.data = (char *)t->data + (size_t)i * tensor_nbytes(&p);
    return p;
}

bool tensor_reshape(struct tensor *t, int ndim, const int64_t *shape)
{
    struct tensor r = tensor_desc(t->dtype, ndim, shape);
    /* tensor_check first: dims < 1 (a product of negatives can match) and products
     * that overflow are refused before numel is computed */
    if (tensor_check(&r, "reshape", NULL) != STATUS_OK || tensor_numel(&r) != tensor_numel(t))
        return false;
    t->ndim = ndim;
    memcpy(t->shape, r.shape, sizeof t->shape);
    return true;
}

const char *tensor_describe(const struct tensor *t, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "%s[", dtype_name(t->dtype));
    for (int i = 0; i < t->ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, i ? ",%lld" : "%lld",
                                (long long)t->shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
    return buf;
}

enum status tensor_check(const struct tensor *t, const char *name, struct errbuf *err)
{
    if (!t)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: missing tensor", name);
    if (t->ndim < 1 || t->ndim > TENSOR_MAX_DIMS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: %d dims (1..%d allowed)", name,
                           t->ndim, TENSOR_MAX_DIMS);
    if ((unsigned)t->dtype >= DTYPE_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: unknown dtype %d", name,
                           (int)t->dtype);
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 1)
            return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: dim %d is %lld", name, i,
                               (long long)t->shape[i]);
        if (n > INT64_MAX / 8 / t->shape[i])
            return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: too many elements", name);
        n *= t->shape[i];
    }
    return STATUS_OK;
}
