/* models/safetensors.h — strict reader (and a small writer) for .safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the
 * data section.  The JSON is an object mapping tensor name → {"dtype", "shape",
 * "data_offsets": [begin, end]} (offsets relative to the data section), plus an
 * optional "__metadata__" object of string → string.
 *
 * safetensors_open validates everything before any byte of tensor data is used:
 *   - the file is ≥ 8 bytes; 2 ≤ N ≤ 100 000 000 (the reference limit) and
 *     8 + N ≤ file size;
 *   - the header starts with '{' and is one JSON object (jansson, duplicate keys
 *     rejected, only whitespace after it — writers pad with spaces);
 *   - each tensor entry is an object with exactly the fields dtype (a known name,
 *     see enum safetensors_dtype), shape (≤ SAFETENSORS_MAX_DIMS non-negative
 *     integers; [] is a scalar) and data_offsets (two integers, begin ≤ end);
 *     names are non-empty;
 *   - product(shape) × dtype size == end − begin, with overflow-checked arithmetic;
 *   - sorted by offset, the tensors are contiguous from 0, neither overlap nor leave
 *     gaps, and the last one ends exactly at the end of the file;
 *   - "__metadata__", when present, is an object whose values are all strings.
 * Failures: STATUS_IO when the file cannot be opened/stat'ed/mapped (or is not a
 * regular file), STATUS_FORMAT for every malformed file, STATUS_OUT_OF_MEMORY; the
 * message names the file and the offending tensor or field.
 *
 * Tensor data is never assumed aligned: `data` may point anywhere in the mapping,
 * so read it with memcpy or safetensors_read_f32 (which does).  The host must be
 * little-endian (checked at compile time).
 *
 * dtypes: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 I16 I8 U64 U32 U16 U8 BOOL are
 * recognised; safetensors_read_f32 converts the floating ones (F8_E4M3 is the
 * "fn" variant: no infinities, S.1111.111 is NaN) and reports STATUS_UNSUPPORTED
 * for the integer and boolean ones.  Any other dtype string is STATUS_FORMAT.
 *
 * Ownership: safetensors_open returns a handle the caller releases with
 * safetensors_close.  The handle owns the read-only private mapping and copies of
 * every name and metadata string; every pointer it hands out (tensor structs, names,
 * data, metadata) stays valid until safetensors_close.  safetensors_open_memory
 * borrows the caller's buffer, which must outlive the handle.  The file must not be
 * truncated while it is open (the mapping would then fault on access).
 * Thread-safety: opening and writing are reentrant; an open handle is immutable, so
 * any number of threads may read from it concurrently; close it once, after them.
 */
#ifndef DIFFUSIOND_MODELS_SAFETENSORS_H
#define DIFFUSIOND_MODELS_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"
#include "engine/tensor.h"

#define SAFETENSORS_MAX_DIMS 8
#define SAFETENSORS_MAX_HEADER 100000000u /* bytes, as the reference implementation */

enum safetensors_dtype {
    SAFETENSORS_F64 = 0,
    SAFETENSORS_F32,
    SAFETENSORS_F16,
    SAFETENSORS_BF16,
    SAFETENSORS_F8_E4M3,
    SAFETENSORS_F8_E5M2,
    SAFETENSORS_I64,
    SAFETENSORS_I32,
    SAFETENSORS_I16,
    SAFETENSORS_I8,
    SAFETENSORS_U64,
    SAFETENSORS_U32,
    SAFETENSORS_U16,
    SAFETENSORS_U8,
    SAFETENSORS_BOOL,
    SAFETENSORS_DTYPE_COUNT_
};

struct safetensors_tensor {
    const char *name;                      /* non-empty, NUL-terminated */
    enum safetensors_dtype dtype;
    int ndim;                              /* 0..SAFETENSORS_MAX_DIMS (0: scalar) */
    int64_t shape[SAFETENSORS_MAX_DIMS];   /* dims ≥ 0; unused entries are 0 */
    size_t numel;                          /* product of shape (1 for a scalar) */
    const void *data;                      /* in the mapping; possibly unaligned */
    size_t nbytes;                         /* numel × dtype size */
    size_t offset;                         /* begin, relative to the data section */
};

struct safetensors;

/* The file's format name ("F16", ...) and element size in bytes; "?"/0 for a value
 * out of range. */
const char *safetensors_dtype_name(enum safetensors_dtype dt);
size_t safetensors_dtype_size(enum safetensors_dtype dt);
/* Parses a format name; false when unknown. */
bool safetensors_dtype_parse(const char *name, enum safetensors_dtype *out);
/* The engine dtype with the same storage (F32/F16/BF16); false for the others. */
bool safetensors_engine_dtype(enum safetensors_dtype dt, enum dtype *out);

/* Maps and validates `path` (see the top of this file).  On success *out is a new
 * handle; on failure *out is NULL. */
enum status safetensors_open(const char *path, struct safetensors **out, struct errbuf *err);

/* The same validation over `size` bytes at `data` (borrowed; must outlive the
 * handle).  `name` is used in messages and returned by safetensors_path. */
enum status safetensors_open_memory(const void *data, size_t size, const char *name,
                                    struct safetensors **out, struct errbuf *err);

/* Unmaps and frees; st may be NULL. */
void safetensors_close(struct safetensors *st);

/* The path (or name) the handle was opened with. */
const char *safetensors_path(const struct safetensors *st);

/* Tensors in data-offset order (i < count), and lookup by exact name (NULL when
 * absent; O(log n)). */
size_t safetensors_count(const struct safetensors *st);
const struct safetensors_tensor *safetensors_at(const struct safetensors *st, size_t i);
const struct safetensors_tensor *safetensors_find(const struct safetensors *st,
                                                  const char *name);

/* "__metadata__": entries in header order, and lookup (NULL when absent). */
size_t safetensors_metadata_count(const struct safetensors *st);
bool safetensors_metadata_at(const struct safetensors *st, size_t i, const char **key,
                             const char **value);
const char *safetensors_metadata_get(const struct safetensors *st, const char *key);

/* Converts tensor t (from st) to n = t->numel floats in dst.  F32/F64/F16/BF16/F8
 * are converted; other dtypes give STATUS_UNSUPPORTED, n ≠ numel gives
 * STATUS_INVALID_ARGUMENT; messages name the file and the tensor. */
enum status safetensors_read_f32(const struct safetensors *st,
                                 const struct safetensors_tensor *t, float *dst, size_t n,
                                 struct errbuf *err);

/* --- writer (tools and tests) ------------------------------------------------ */

struct safetensors_write_tensor {
    const char *name;
    enum safetensors_dtype dtype;
    int ndim;              /* 0..SAFETENSORS_MAX_DIMS */
    const int64_t *shape;  /* ndim dims ≥ 0 (may be NULL when ndim is 0) */
    const void *data;      /* numel × dtype size bytes, little-endian, in dtype */
};

struct safetensors_kv {
    const char *key;
    const char *value;
};

/* Writes the tensors (data laid out in the given order) and the metadata (n_meta
 * entries; may be NULL/0) to path: header padded with spaces so the data section
 * starts at a multiple of 8.  Names must be non-empty, unique and not
 * "__metadata__" (STATUS_INVALID_ARGUMENT); STATUS_IO when writing fails (a partial
 * file is removed). */
enum status safetensors_write(const char *path, const struct safetensors_write_tensor *tensors,
                              size_t n, const struct safetensors_kv *meta, size_t n_meta,
                              struct errbuf *err);

#endif
