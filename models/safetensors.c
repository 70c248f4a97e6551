/* models/safetensors.c — see safetensors.h. */
#include "models/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/half.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "models/safetensors.c assumes a little-endian host"
#endif

#define ST_METADATA_KEY "__metadata__"
#define ST_PREFIX 8u /* the header-length field */

struct st_meta {
    char *key;
    char *value;
};

struct safetensors {
    char *path;                         /* for messages */
    const unsigned char *base;          /* the whole file */
    size_t size;                        /* bytes at base */
    bool mapped;                        /* base is our mmap (else borrowed) */
    struct safetensors_tensor *tensors; /* n, sorted by offset; names owned */
    size_t n;
    const struct safetensors_tensor **by_name; /* n, sorted by name */
    struct st_meta *meta;               /* n_meta, header order; strings owned */
    size_t n_meta;
};

/* ------------------------------------------------------------------ dtypes */

static const struct {
    const char *name;
    size_t size;
} st_dtypes[SAFETENSORS_DTYPE_COUNT_] = {
    [SAFETENSORS_F64] = {"F64", 8},         [SAFETENSORS_F32] = {"F32", 4},
    [SAFETENSORS_F16] = {"F16", 2},         [SAFETENSORS_BF16] = {"BF16", 2},
    [SAFETENSORS_F8_E4M3] = {"F8_E4M3", 1}, [SAFETENSORS_F8_E5M2] = {"F8_E5M2", 1},
    [SAFETENSORS_I64] = {"I64", 8},         [SAFETENSORS_I32] = {"I32", 4},
    [SAFETENSORS_I16] = {"I16", 2},         [SAFETENSORS_I8] = {"I8", 1},
    [SAFETENSORS_U64] = {"U64", 8},         [SAFETENSORS_U32] = {"U32", 4},
    [SAFETENSORS_U16] = {"U16", 2},         [SAFETENSORS_U8] = {"U8", 1},
    [SAFETENSORS_BOOL] = {"BOOL", 1},
};

const char *safetensors_dtype_name(enum safetensors_dtype dt)
{
    if ((unsigned)dt >= SAFETENSORS_DTYPE_COUNT_)
        return "?";
    return st_dtypes[dt].name;
}

size_t safetensors_dtype_size(enum safetensors_dtype dt)
{
    if ((unsigned)dt >= SAFETENSORS_DTYPE_COUNT_)
        return 0;
    return st_dtypes[dt].size;
}

bool safetensors_dtype_parse(const char *name, enum safetensors_dtype *out)
{
    for (int i = 0; i < SAFETENSORS_DTYPE_COUNT_; i++) {
        if (strcmp(name, st_dtypes[i].name) == 0) {
            *out = (enum safetensors_dtype)i;
            return true;
        }
    }
    return false;
}

bool safetensors_engine_dtype(enum safetensors_dtype dt, enum dtype *out)
{
    switch (dt) {
    case SAFETENSORS_F32: *out = DTYPE_F32; return true;
    case SAFETENSORS_F16: *out = DTYPE_F16; return true;
    case SAFETENSORS_BF16: *out = DTYPE_BF16; return true;
    default: return false;
    }
}

/* ------------------------------------------------------------------ errors */

/* status_fail with "<path>: " in front. */
__attribute__((format(printf, 4, 5))) static enum status
st_fail(const char *path, struct errbuf *err, enum status code, const char *fmt, ...)
{
    char msg[ERRBUF_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return status_fail(err, code, "%s: %s", path, msg);
}

/* "[320,4,3,3]" into buf. */
static const char *st_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? "," : "",
                                 (long long)shape[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

/* ------------------------------------------------------------------ header fields */

static uint64_t st_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Checks the 8-byte prefix; *hlen is the header length N. */
static enum status st_check_prefix(const struct safetensors *st, size_t *hlen,
                                   struct errbuf *err)
{
    if (st->size == 0)
        return st_fail(st->path, err, STATUS_FORMAT, "file is empty");
    if (st->size < ST_PREFIX)
        return st_fail(st->path, err, STATUS_FORMAT,
                       "file is %zu bytes, shorter than the 8-byte header length", st->size);
    uint64_t n = st_le64(st->base);
    if (n < 2)
        return st_fail(st->path, err, STATUS_FORMAT,
                       "header length %llu is too small for a JSON object",
                       (unsigned long long)n);
    if (n > SAFETENSORS_MAX_HEADER)
        return st_fail(st->path, err, STATUS_FORMAT,
                       "header length %llu exceeds the limit of %u bytes",
                       (unsigned long long)n, SAFETENSORS_MAX_HEADER);
    if (n > st->size - ST_PREFIX)
        return st_fail(st->path, err, STATUS_FORMAT,
                       "header length %llu runs past the end of the file (%zu bytes)",
                       (unsigned long long)n, st->size);
    *hlen = (size_t)n;
    return STATUS_OK;
}

/* Parses the header text into a JSON object (*root, caller decrefs). */
static enum status st_load_header(const struct safetensors *st, size_t hlen, json_t **root,
                                  struct errbuf *err)
{
    const char *text = (const char *)st->base + ST_PREFIX;
    if (text[0] != '{')
        return st_fail(st->path, err, STATUS_FORMAT,
                       "header is not a JSON object (it starts with byte 0x%02x, not '{')",
                       (unsigned char)text[0]);
    json_error_t jerr;
    *root = json_loadb(text, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root)
        return st_fail(st->path, err, STATUS_FORMAT,
                       "header is not valid JSON: %s (line %d, column %d)", jerr.text,
                       jerr.line, jerr.column);
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        return st_fail(st->path, err, STATUS_FORMAT, "header is not a JSON object");
    }
    return STATUS_OK;
}

static enum status st_parse_metadata(struct safetensors *st, json_t *obj, struct errbuf *err)
{
    if (!json_is_object(obj))
        return st_fail(st->path, err, STATUS_FORMAT,
                       "'" ST_METADATA_KEY "' is not an object of strings");
    size_t count = json_object_size(obj);
    st->meta = calloc(count ? count : 1, sizeof *st->meta);
    if (!st->meta)
        return st_fail(st->path, err, STATUS_OUT_OF_MEMORY, "out of memory for metadata");
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        if (!json_is_string(value))
            return st_fail(st->path, err, STATUS_FORMAT,
                           "'" ST_METADATA_KEY "' entry '%s' is not a string", key);
        struct st_meta *m = &st->meta[st->n_meta];
        m->key = strdup(key);
        m->value = strdup(json_string_value(value));
        if (!m->key || !m->value) {
            free(m->key);
            free(m->value);
            return st_fail(st->path, err, STATUS_OUT_OF_MEMORY, "out of memory for metadata");
        }
        st->n_meta++;
    }
    return STATUS_OK;
}

/* Reads a non-negative JSON integer. */
static bool st_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static enum status st_parse_dtype(const char *path, const char *name, const json_t *entry,
                                  struct safetensors_tensor *t, struct errbuf *err)
{
    const json_t *v = json_object_get(entry, "dtype");
    if (!v)
        return st_fail(path, err, STATUS_FORMAT, "tensor '%s': missing field 'dtype'", name);
    if (!json_is_string(v))
        return st_fail(path, err, STATUS_FORMAT, "tensor '%s': 'dtype' is not a string", name);
    if (!safetensors_dtype_parse(json_string_value(v), &t->dtype))
        return st_fail(path, err, STATUS_FORMAT, "tensor '%s': unknown dtype '%s'", name,
                       json_string_value(v));
    return STATUS_OK;
}

static enum status st_parse_shape(const char *path, const char *name, const json_t *entry,
                                  struct safetensors_tensor *t, struct errbuf *err)
{
    const json_t *v = json_object_get(entry, "shape");
    if (!v)
        return st_fail(path, err, STATUS_FORMAT, "tensor '%s': missing field 'shape'", name);
    if (!json_is_array(v))
        return st_fail(path, err, STATUS_FORMAT, "tensor '%s': 'shape' is not an array", name);
    size_t ndim = json_array_size(v);
    if (ndim > SAFETENSORS_MAX_DIMS)
        return st_fail(path, err, STATUS_FORMAT,
                       "tensor '%s': 'shape' has %zu dims, more than %d", name, ndim,
                       SAFETENSORS_MAX_DIMS);
    t->ndim = (int)ndim;
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d;
        if (!st_uint(json_array_get(v, i), &d))
            return st_fail(path, err, STATUS_FORMAT,
                           "tensor '%s': 'shape'[%zu] is not a non-negative integer", name, i);
        t->shape[i] = (int64_t)d;
    }
    return STATUS_OK;
}

/* Parses data_offsets into *begin, *end (begin ≤ end, both ≥ 0). */
static enum status st_parse_offsets(const char *path, const char *name, const json_t *entry,
                                    uint64_t *begin, uint64_t *end, struct errbuf *err)
{
    const json_t *v = json_object_get(entry, "data_offsets");
    if (!v)
        return st_fail(path, err, STATUS_FORMAT, "tensor '%s': missing field 'data_offsets'",
                       name);
    if (!json_is_array(v) || json_array_size(v) != 2)
        return st_fail(path, err, STATUS_FORMAT,
                       "tensor '%s': 'data_offsets' is not an array of two integers", name);
    if (!st_uint(json_array_get(v, 0), begin) || !st_uint(json_array_get(v, 1), end))
        return st_fail(path, err, STATUS_FORMAT,
                       "tensor '%s': 'data_offsets' are not non-negative integers", name);
    if (*begin > *end)
        return st_fail(path, err, STATUS_FORMAT,
                       "tensor '%s': data_offsets [%llu,%llu] have begin > end", name,
                       (unsigned long long)*begin, (unsigned long long)*end);
    return STATUS_OK;
}

static enum status st_check_fields(const char *path, const char *name, json_t *entry,
                                   struct errbuf *err)
{
    if (!json_is_object(entry))
        return st_fail(path, err, STATUS_FORMAT, "tensor '%s': entry is not an object", name);
    const char *key;
    json_t *value;
    json_object_foreach(entry, key, value) {
        if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 &&
            strcmp(key, "data_offsets") != 0)
            return st_fail(path, err, STATUS_FORMAT, "tensor '%s': unknown field '%s'", name,
                           key);
    }
    return STATUS_OK;
}

/* numel and nbytes of t's shape and dtype; false on overflow. */
static bool st_sizes(struct safetensors_tensor *t)
{
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(numel, (uint64_t)t->shape[i], &numel))
            return false;
    t->numel = numel;
    return !__builtin_mul_overflow(numel, safetensors_dtype_size(t->dtype), &t->nbytes);
}

/* Parses and checks one tensor entry against the data section size. */
static enum status st_parse_tensor(const char *path, const char *name, json_t *entry,
                                   size_t data_size, struct safetensors_tensor *t,
                                   struct errbuf *err)
{
    if (name[0] == '\0')
        return st_fail(path, err, STATUS_FORMAT, "a tensor has an empty name");
    enum status s = st_check_fields(path, name, entry, err);
    if (s == STATUS_OK)
        s = st_parse_dtype(path, name, entry, t, err);
    if (s == STATUS_OK)
        s = st_parse_shape(path, name, entry, t, err);
    uint64_t begin = 0, end = 0;
    if (s == STATUS_OK)
        s = st_parse_offsets(path, name, entry, &begin, &end, err);
    if (s != STATUS_OK)
        return s;
    char shape[200];
    st_shape_str(t->shape, t->ndim, shape, sizeof shape);
    if (!st_sizes(t))
        return st_fail(path, err, STATUS_FORMAT,
                       "tensor '%s': shape %s × %s overflows the size arithmetic", name, shape,
                       safetensors_dtype_name(t->dtype));
    if (t->nbytes != end - begin)
        return st_fail(path, err, STATUS_FORMAT,
                       "tensor '%s': shape %s × %s needs %zu bytes but data_offsets span %llu",
                       name, shape, safetensors_dtype_name(t->dtype), t->nbytes,
                       (unsigned long long)(end - begin));
    if (end > data_size)
        return st_fail(path, err, STATUS_FORMAT,
                       "tensor '%s': data_offsets [%llu,%llu] run past the data section "
                       "(%zu bytes; file truncated?)",
                       name, (unsigned long long)begin, (unsigned long long)end, data_size);
    t->offset = (size_t)begin;
    t->name = strdup(name);
    if (!t->name)
        return st_fail(path, err, STATUS_OUT_OF_MEMORY, "out of memory for tensor names");
    return STATUS_OK;
}

/* ------------------------------------------------------------------ layout */

static int st_cmp_offset(const void *a, const void *b)
{
    const struct safetensors_tensor *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int st_cmp_name(const void *a, const void *b)
{
    const struct safetensors_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Sorted by offset, the tensors must tile [0, data_size) exactly. */
static enum status st_check_layout(struct safetensors *st, size_t data_size, struct errbuf *err)
{
    if (st->n > 1)
        qsort(st->tensors, st->n, sizeof *st->tensors, st_cmp_offset);
    size_t expected = 0;
    for (size_t i = 0; i < st->n; i++) {
        const struct safetensors_tensor *t = &st->tensors[i], *prev = i ? t - 1 : NULL;
        if (t->offset > expected && !prev)
            return st_fail(st->path, err, STATUS_FORMAT,
                           "tensor '%s': data section bytes [0,%zu) before it are not "
                           "covered by any tensor",
                           t->name, t->offset);
        if (t->offset > expected)
            return st_fail(st->path, err, STATUS_FORMAT,
                           "gap of %zu bytes between tensor '%s' (ends at %zu) and tensor "
                           "'%s' (begins at %zu)",
                           t->offset - expected, prev->name, expected, t->name, t->offset);
        if (t->offset < expected)
            return st_fail(st->path, err, STATUS_FORMAT,
                           "tensor '%s': data_offsets [%zu,%zu] overlap tensor '%s' [%zu,%zu]",
                           t->name, t->offset, t->offset + t->nbytes, prev->name,
                           prev->offset, expected);
        expected = t->offset + t->nbytes;
    }
    if (expected != data_size && st->n == 0)
        return st_fail(st->path, err, STATUS_FORMAT,
                       "%zu trailing bytes after the header but no tensors", data_size);
    if (expected != data_size)
        return st_fail(st->path, err, STATUS_FORMAT,
                       "%zu trailing bytes after the last tensor '%s' (ends at %zu of %zu) are "
                       "not covered by any tensor",
                       data_size - expected, st->tensors[st->n - 1].name, expected, data_size);
    return STATUS_OK;
}

static enum status st_index(struct safetensors *st, const unsigned char *data,
                            struct errbuf *err)
{
    st->by_name = calloc(st->n ? st->n : 1, sizeof *st->by_name);
    if (!st->by_name)
        return st_fail(st->path, err, STATUS_OUT_OF_MEMORY, "out of memory for the index");
    for (size_t i = 0; i < st->n; i++) {
        st->tensors[i].data = data + st->tensors[i].offset;
        st->by_name[i] = &st->tensors[i];
    }
    if (st->n > 1)
        qsort(st->by_name, st->n, sizeof *st->by_name, st_cmp_name);
    return STATUS_OK;
}

/* ------------------------------------------------------------------ open */

static enum status st_parse_entries(struct safetensors *st, json_t *root, size_t data_size,
                                    struct errbuf *err)
{
    size_t count = json_object_size(root);
    st->tensors = calloc(count ? count : 1, sizeof *st->tensors);
    if (!st->tensors)
        return st_fail(st->path, err, STATUS_OUT_OF_MEMORY, "out of memory for %zu tensors",
                       count);
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        enum status s;
        if (strcmp(key, ST_METADATA_KEY) == 0) {
            s = st_parse_metadata(st, value, err);
        } else {
            s = st_parse_tensor(st->path, key, value, data_size, &st->tensors[st->n], err);
            if (st->tensors[st->n].name)
                st->n++;
        }
        if (s != STATUS_OK)
            return s;
    }
    return STATUS_OK;
}

/* Validates st->base/size and fills the tables. */
static enum status st_parse(struct safetensors *st, struct errbuf *err)
{
    size_t hlen = 0;
    enum status s = st_check_prefix(st, &hlen, err);
    json_t *root = NULL;
    if (s == STATUS_OK)
        s = st_load_header(st, hlen, &root, err);
    size_t data_start = ST_PREFIX + hlen;
    if (s == STATUS_OK)
        s = st_parse_entries(st, root, st->size - data_start, err);
    json_decref(root);
    if (s == STATUS_OK)
        s = st_check_layout(st, st->size - data_start, err);
    if (s == STATUS_OK)
        s = st_index(st, st->base + data_start, err);
    return s;
}

static struct safetensors *st_new(const char *path)
{
    struct safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->path = strdup(path ? path : "(null)");
    if (!st->path) {
        free(st);
        return NULL;
    }
    return st;
}

/* Maps the file read-only (nothing mapped for an empty file). */
static enum status st_map(struct safetensors *st, struct errbuf *err)
{
    int fd = open(st->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return st_fail(st->path, err, STATUS_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    enum status s = STATUS_OK;
    if (fstat(fd, &sb) != 0)
        s = st_fail(st->path, err, STATUS_IO, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        s = st_fail(st->path, err, STATUS_IO, "not a regular file");
    else if (sb.st_size < 0 || (uint64_t)sb.st_size > SIZE_MAX)
        s = st_fail(st->path, err, STATUS_IO, "file too large to map");
    if (s == STATUS_OK && sb.st_size > 0) {
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            s = st_fail(st->path, err, STATUS_IO, "cannot mmap %lld bytes: %s",
                        (long long)sb.st_size, strerror(errno));
        } else {
            st->base = p;
            st->size = (size_t)sb.st_size;
            st->mapped = true;
        }
    }
    close(fd);
    return s;
}

enum status safetensors_open(const char *path, struct safetensors **out, struct errbuf *err)
{
    *out = NULL;
    struct safetensors *st = st_new(path);
    if (!st)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    enum status s = st_map(st, err);
    if (s == STATUS_OK)
        s = st_parse(st, err);
    if (s != STATUS_OK) {
        safetensors_close(st);
        return s;
    }
    *out = st;
    return STATUS_OK;
}

enum status safetensors_open_memory(const void *data, size_t size, const char *name,
                                    struct safetensors **out, struct errbuf *err)
{
    *out = NULL;
    struct safetensors *st = st_new(name);
    if (!st)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
    st->base = data;
    st->size = data ? size : 0;
    enum status s = st_parse(st, err);
    if (s != STATUS_OK) {
        safetensors_close(st);
        return s;
    }
    *out = st;
    return STATUS_OK;
}

void safetensors_close(struct safetensors *st)
{
    if (!st)
        return;
    if (st->mapped)
        munmap((void *)st->base, st->size);
    for (size_t i = 0; i < st->n; i++)
        free((char *)st->tensors[i].name);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->tensors);
    free(st->by_name);
    free(st->meta);
    free(st->path);
    free(st);
}

/* ------------------------------------------------------------------ lookup */

const char *safetensors_path(const struct safetensors *st) { return st->path; }

size_t safetensors_count(const struct safetensors *st) { return st->n; }

const struct safetensors_tensor *safetensors_at(const struct safetensors *st, size_t i)
{
    return i < st->n ? &st->tensors[i] : NULL;
}

const struct safetensors_tensor *safetensors_find(const struct safetensors *st,
                                                  const char *name)
{
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->by_name[mid]->name);
        if (c == 0)
            return st->by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t safetensors_metadata_count(const struct safetensors *st) { return st->n_meta; }

bool safetensors_metadata_at(const struct safetensors *st, size_t i, const char **key,
                             const char **value)
{
    if (i >= st->n_meta)
        return false;
    *key = st->meta[i].key;
    *value = st->meta[i].value;
    return true;
}

const char *safetensors_metadata_get(const struct safetensors *st, const char *key)
{
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0)
            return st->meta[i].value;
    return NULL;
}

/* ------------------------------------------------------------------ conversion */

/* OCP FP8 E4M3 ("fn": no infinities; S.1111.111 is NaN), bias 7. */
static float st_f8_e4m3_to_f32(uint8_t b)
{
    float sign = (b & 0x80) ? -1.0f : 1.0f;
    int e = (b >> 3) & 0xf, m = b & 0x7;
    if (e == 0xf && m == 0x7)
        return copysignf(NAN, sign);
    if (e == 0)
        return sign * ldexpf((float)m, -9);
    return sign * ldexpf((float)(8 + m), e - 10);
}

/* FP8 E5M2 is the top byte of an IEEE f16. */
static float st_f8_e5m2_to_f32(uint8_t b) { return half_f16_to_f32((uint16_t)(b << 8)); }

/* 16-bit source, possibly unaligned: copy chunks to an aligned buffer first. */
static void st_convert16(const unsigned char *src, float *dst, size_t n, bool bf16)
{
    uint16_t buf[1024];
    for (size_t i = 0; i < n;) {
        size_t k = n - i < 1024 ? n - i : 1024;
        memcpy(buf, src + 2 * i, 2 * k);
        if (bf16)
            half_bf16_to_f32_array(buf, dst + i, k);
        else
            half_f16_to_f32_array(buf, dst + i, k);
        i += k;
    }
}

enum status safetensors_read_f32(const struct safetensors *st,
                                 const struct safetensors_tensor *t, float *dst, size_t n,
                                 struct errbuf *err)
{
    if (n != t->numel || (n && !dst))
        return st_fail(st->path, err, STATUS_INVALID_ARGUMENT,
                       "tensor '%s': asked for %zu floats but it has %zu elements", t->name, n,
                       t->numel);
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case SAFETENSORS_F32:
        if (n)
            memcpy(dst, src, n * sizeof(float));
        return STATUS_OK;
    case SAFETENSORS_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, sizeof d);
            dst[i] = (float)d;
        }
        return STATUS_OK;
    case SAFETENSORS_F16: st_convert16(src, dst, n, false); return STATUS_OK;
    case SAFETENSORS_BF16: st_convert16(src, dst, n, true); return STATUS_OK;
    case SAFETENSORS_F8_E4M3:
        for (size_t i = 0; i < n; i++)
            dst[i] = st_f8_e4m3_to_f32(src[i]);
        return STATUS_OK;
    case SAFETENSORS_F8_E5M2:
        for (size_t i = 0; i < n; i++)
            dst[i] = st_f8_e5m2_to_f32(src[i]);
        return STATUS_OK;
    default:
        return st_fail(st->path, err, STATUS_UNSUPPORTED,
                       "tensor '%s': dtype %s cannot be read as f32", t->name,
                       safetensors_dtype_name(t->dtype));
    }
}

/* ------------------------------------------------------------------ writer */

/* Checks one tensor to write and computes its byte size. */
static enum status st_write_check(const char *path, const struct safetensors_write_tensor *w,
                                  size_t *nbytes, struct errbuf *err)
{
    if (!w->name || !w->name[0] || strcmp(w->name, ST_METADATA_KEY) == 0)
        return st_fail(path, err, STATUS_INVALID_ARGUMENT, "tensor name '%s' is not allowed",
                       w->name ? w->name : "(null)");
    if ((unsigned)w->dtype >= SAFETENSORS_DTYPE_COUNT_ || w->ndim < 0 ||
        w->ndim > SAFETENSORS_MAX_DIMS || (w->ndim > 0 && !w->shape))
        return st_fail(path, err, STATUS_INVALID_ARGUMENT, "tensor '%s': bad dtype or ndim",
                       w->name);
    struct safetensors_tensor t = {.dtype = w->dtype, .ndim = w->ndim};
    for (int i = 0; i < w->ndim; i++) {
        if (w->shape[i] < 0)
            return st_fail(path, err, STATUS_INVALID_ARGUMENT, "tensor '%s': negative dim",
                           w->name);
        t.shape[i] = w->shape[i];
    }
    if (!st_sizes(&t))
        return st_fail(path, err, STATUS_INVALID_ARGUMENT, "tensor '%s': size overflows",
                       w->name);
    if (t.nbytes && !w->data)
        return st_fail(path, err, STATUS_INVALID_ARGUMENT, "tensor '%s': no data", w->name);
    *nbytes = t.nbytes;
    return STATUS_OK;
}

static json_t *st_write_entry(const struct safetensors_write_tensor *w, size_t begin,
                              size_t end)
{
    json_t *shape = json_array();
    for (int i = 0; shape && i < w->ndim; i++)
        json_array_append_new(shape, json_integer(w->shape[i]));
    return json_pack("{s:s, s:o, s:[I,I]}", "dtype", safetensors_dtype_name(w->dtype),
                     "shape", shape, "data_offsets", (json_int_t)begin, (json_int_t)end);
}

static enum status st_write_meta(const char *path, json_t *root,
                                 const struct safetensors_kv *meta, size_t n_meta,
                                 struct errbuf *err)
{
    if (n_meta == 0)
        return STATUS_OK;
    json_t *obj = json_object();
    if (!obj || json_object_set_new(root, ST_METADATA_KEY, obj) != 0)
        return st_fail(path, err, STATUS_OUT_OF_MEMORY, "out of memory for the header");
    for (size_t i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value || json_object_get(obj, meta[i].key))
            return st_fail(path, err, STATUS_INVALID_ARGUMENT,
                           "metadata entry %zu: missing or duplicate key", i);
        if (json_object_set_new(obj, meta[i].key, json_string(meta[i].value)) != 0)
            return st_fail(path, err, STATUS_INVALID_ARGUMENT,
                           "metadata '%s': not valid UTF-8", meta[i].key);
    }
    return STATUS_OK;
}

/* The header JSON (malloc'ed text) for tensors and metadata. */
static enum status st_write_header(const char *path,
                                   const struct safetensors_write_tensor *tensors, size_t n,
                                   const struct safetensors_kv *meta, size_t n_meta,
                                   char **text, struct errbuf *err)
{
    json_t *root = json_object();
    if (!root)
        return st_fail(path, err, STATUS_OUT_OF_MEMORY, "out of memory for the header");
    enum status s = st_write_meta(path, root, meta, n_meta, err);
    size_t offset = 0;
    for (size_t i = 0; i < n && s == STATUS_OK; i++) {
        size_t nbytes = 0;
        s = st_write_check(path, &tensors[i], &nbytes, err);
        if (s == STATUS_OK && __builtin_add_overflow(offset, nbytes, &(size_t){0}))
            s = st_fail(path, err, STATUS_INVALID_ARGUMENT, "tensor '%s': size overflows",
                        tensors[i].name);
        if (s == STATUS_OK && json_object_get(root, tensors[i].name))
            s = st_fail(path, err, STATUS_INVALID_ARGUMENT, "duplicate tensor name '%s'",
                        tensors[i].name);
        if (s == STATUS_OK && json_object_set_new(root, tensors[i].name,
                                                  st_write_entry(&tensors[i], offset,
                                                                 offset + nbytes)) != 0)
            s = st_fail(path, err, STATUS_INVALID_ARGUMENT,
                        "tensor '%s': cannot encode the header entry", tensors[i].name);
        offset += nbytes;
    }
    if (s == STATUS_OK) {
        *text = json_dumps(root, JSON_COMPACT);
        if (!*text)
            s = st_fail(path, err, STATUS_OUT_OF_MEMORY, "out of memory for the header");
    }
    json_decref(root);
    return s;
}

static bool st_write_all(FILE *f, const struct safetensors_write_tensor *tensors, size_t n,
                         const char *header)
{
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) / 8 * 8;
    unsigned char prefix[ST_PREFIX];
    for (unsigned i = 0; i < ST_PREFIX; i++)
        prefix[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    bool ok = fwrite(prefix, 1, sizeof prefix, f) == sizeof prefix &&
              fwrite(header, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    for (size_t i = 0; ok && i < n; i++) {
        size_t nbytes = 0;
        st_write_check("", &tensors[i], &nbytes, NULL);
        ok = nbytes == 0 || fwrite(tensors[i].data, 1, nbytes, f) == nbytes;
    }
    return ok;
}

enum status safetensors_write(const char *path, const struct safetensors_write_tensor *tensors,
                              size_t n, const struct safetensors_kv *meta, size_t n_meta,
                              struct errbuf *err)
{
    char *header = NULL;
    enum status s = st_write_header(path, tensors, n, meta, n_meta, &header, err);
    if (s != STATUS_OK)
        return s;
    FILE *f = fopen(path, "wb");
    if (!f) {
        s = st_fail(path, err, STATUS_IO, "cannot create: %s", strerror(errno));
        free(header);
        return s;
    }
    bool ok = st_write_all(f, tensors, n, header);
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    free(header);
    if (!ok) {
        unlink(path);
        return st_fail(path, err, STATUS_IO, "write failed: %s", strerror(saved));
    }
    return STATUS_OK;
}
