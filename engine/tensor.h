/* engine/tensor.h — dense tensors: dtype, up to 4 dims, row-major, contiguous.
 *
 * Activations are NHWC: shape {N, H, W, C}; the token view {N, H·W, C} that
 * attention uses is the same memory.  Linear weights are {out, in} (PyTorch's
 * layout); convolution weights are {Cout, KH, KW, Cin} (OHWI, cuDNN's NHWC filter
 * layout).  A tensor's memory belongs to the backend named in `backend` (NULL for a
 * host view the caller owns); tensor structs themselves are plain values.
 *
 * Thread-safety: the helpers are pure functions.
 */
#ifndef DIFFUSIOND_ENGINE_TENSOR_H
#define DIFFUSIOND_ENGINE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

#define TENSOR_MAX_DIMS 4

enum dtype { DTYPE_F32 = 0, DTYPE_F16, DTYPE_BF16, DTYPE_COUNT_ };

struct backend;

struct tensor {
    enum dtype dtype;
    int ndim;                        /* 1..TENSOR_MAX_DIMS */
    int64_t shape[TENSOR_MAX_DIMS];  /* shape[i] ≥ 1 for i < ndim; unused dims are 1 */
    void *data;                      /* contiguous, row-major */
    struct backend *backend;         /* owner of data; NULL: host memory */
};

size_t dtype_size(enum dtype dt);
const char *dtype_name(enum dtype dt);

/* A descriptor with no data: ndim dims from `shape`. */
struct tensor tensor_desc(enum dtype dt, int ndim, const int64_t *shape);
struct tensor tensor_desc1(enum dtype dt, int64_t d0);
struct tensor tensor_desc2(enum dtype dt, int64_t d0, int64_t d1);
struct tensor tensor_desc3(enum dtype dt, int64_t d0, int64_t d1, int64_t d2);
struct tensor tensor_desc4(enum dtype dt, int64_t n, int64_t h, int64_t w, int64_t c);

/* A host view over caller memory. */
struct tensor tensor_host(enum dtype dt, int ndim, const int64_t *shape, void *data);

int64_t tensor_numel(const struct tensor *t);
size_t tensor_nbytes(const struct tensor *t);
/* Size of the last dim (channels / features). */
int64_t tensor_last_dim(const struct tensor *t);
/* numel / last dim: the number of rows of the 2-D view {rows, last}. */
int64_t tensor_rows(const struct tensor *t);

bool tensor_same_shape(const struct tensor *a, const struct tensor *b);

/* t[i]: the sub-tensor at index i of dim 0 (ndim ≥ 2), one dim fewer, same memory
 * (a part of a stacked tensor such as backend_linear_stack's weights and output). */
struct tensor tensor_index(const struct tensor *t, int64_t i);
/* Same memory, new shape with equal numel; false when numel differs. */
bool tensor_reshape(struct tensor *t, int ndim, const int64_t *shape);

/* "f32[2,64,64,320]" into buf; returns buf. */
const char *tensor_describe(const struct tensor *t, char *buf, size_t cap);

/* Checks ndim/shape sanity (1..4 dims, every dim ≥ 1, numel without overflow). */
enum status tensor_check(const struct tensor *t, const char *name, struct errbuf *err);

#endif
