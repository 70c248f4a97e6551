/* models/weights.c — see weights.h. */
#include "models/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct weights {
    struct safetensors *st;
    bool owns_st;
    weights_name_map_fn map;     /* at most one of map and ref_map */
    weights_ref_map_fn ref_map;
    const void *map_ctx;
    weights_cancel_fn cancelled; /* optional: asked before each tensor read */
    void *cancel_ctx;
    char label[1024];
};

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The weight file of a diffusers component folder, or false. */
static bool find_component_file(const char *dir, bool prefer_fp16, char *out, size_t cap)
{
    static const char *const stems[] = {"diffusion_pytorch_model", "model"};
    for (int pass = 0; pass < 2; pass++) {
        bool fp16 = prefer_fp16 ? pass == 0 : pass == 1;
        for (size_t i = 0; i < sizeof stems / sizeof stems[0]; i++) {
            int n = snprintf(out, cap, "%s/%s%s.safetensors", dir, stems[i], fp16 ? ".fp16" : "");
            if (n > 0 && (size_t)n < cap && file_exists(out))
                return true;
        }
    }
    return false;
}

static enum status weights_wrap(struct safetensors *st, bool owns, const char *label,
                                weights_name_map_fn map, weights_ref_map_fn ref_map,
                                const void *map_ctx, struct weights **out, struct errbuf *err)
{
    struct weights *w = calloc(1, sizeof *w);
    if (!w)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", label);
    w->st = st;
    w->owns_st = owns;
    w->map = map;
    w->ref_map = ref_map;
    w->map_ctx = map_ctx;
    snprintf(w->label, sizeof w->label, "%s", label);
    *out = w;
    return STATUS_OK;
}

enum status weights_open_dir(const char *dir, bool prefer_fp16, struct weights **out,
                             struct errbuf *err)
{
    *out = NULL;
    char path[1000];
    if (!find_component_file(dir, prefer_fp16, path, sizeof path))
        return status_fail(err, STATUS_NOT_FOUND,
                           "%s: no diffusion_pytorch_model[.fp16].safetensors or "
                           "model[.fp16].safetensors", dir);
    struct safetensors *st;
    enum status s = safetensors_open(path, &st, err);
    if (s != STATUS_OK)
        return s;
    s = weights_wrap(st, true, path, NULL, NULL, NULL, out, err);
    if (s != STATUS_OK)
        safetensors_close(st);
    return s;
}

enum status weights_open_mapped(struct safetensors *st, const char *label,
                                weights_name_map_fn map, const void *map_ctx,
                                struct weights **out, struct errbuf *err)
{
    *out = NULL;
    return weights_wrap(st, false, label, map, NULL, map_ctx, out, err);
}

enum status weights_open_mapped_ref(struct safetensors *st, const char *label,
                                    weights_ref_map_fn map, const void *map_ctx,
                                    struct weights **out, struct errbuf *err)
{
    *out = NULL;
    return weights_wrap(st, false, label, NULL, map, map_ctx, out, err);
}

void weights_close(struct weights *w)
{
    if (!w)
        return;
    if (w->owns_st)
        safetensors_close(w->st);
    free(w);
}

const char *weights_label(const struct weights *w)
{
    return w->label;
}

bool weights_resolve(const struct weights *w, const char *name, struct weights_ref *ref)
{
    memset(ref, 0, sizeof *ref);
    if (w->ref_map)
        return w->ref_map(w->map_ctx, name, ref);
    if (w->map)
        return w->map(w->map_ctx, name, ref->name, sizeof ref->name);
    size_t len = strlen(name);
    if (len >= sizeof ref->name)
        return false;
    memcpy(ref->name, name, len + 1);
    return true;
}

const struct safetensors_tensor *weights_find(const struct weights *w, const char *name)
{
    struct weights_ref ref;
    if (!weights_resolve(w, name, &ref))
        return NULL;
    return safetensors_find(w->st, ref.name);
}

bool weights_has(const struct weights *w, const char *name)
{
    return weights_find(w, name) != NULL;
}

/* " (file tensor 'x' rows [a,b))" for a mapped source whose file name differs. */
static void file_name_note(const char *name, const struct weights_ref *ref, char *buf,
                           size_t cap)
{
    buf[0] = 0;
    if (ref->row_count > 0)
        snprintf(buf, cap, " (file tensor '%s' rows [%lld,%lld))", ref->name,
                 (long long)ref->row_begin, (long long)(ref->row_begin + ref->row_count));
    else if (ref->name[0] && strcmp(ref->name, name) != 0)
        snprintf(buf, cap, " (file tensor '%s')", ref->name);
}

enum status weights_view(const struct weights *w, const char *name,
                         struct safetensors_tensor *out, struct errbuf *err)
{
    struct weights_ref ref;
    char note[WEIGHTS_NAME_MAX + 64];
    bool mapped = weights_resolve(w, name, &ref);
    file_name_note(name, &ref, note, sizeof note);
    const struct safetensors_tensor *t = mapped ? safetensors_find(w->st, ref.name) : NULL;
    if (!t)
        return status_fail(err, STATUS_FORMAT, "%s: missing tensor '%s'%s", w->label, name,
                           mapped ? note : " (not in this layout)");
    *out = *t;
    if (ref.row_count <= 0)
        return STATUS_OK;
    if (t->ndim < 1 || ref.row_begin < 0 || ref.row_begin > t->shape[0] ||
        ref.row_count > t->shape[0] - ref.row_begin)
        return status_fail(err, STATUS_FORMAT, "%s: tensor '%s'%s: the file tensor has %lld rows",
                           w->label, name, note, t->ndim ? (long long)t->shape[0] : 0LL);
    size_t row_elems = t->shape[0] ? t->numel / (size_t)t->shape[0] : 0;
    size_t row_bytes = row_elems * safetensors_dtype_size(t->dtype);
    out->shape[0] = ref.row_count;
    out->numel = row_elems * (size_t)ref.row_count;
    out->nbytes = row_bytes * (size_t)ref.row_count;
    out->data = (const unsigned char *)t->data + row_bytes * (size_t)ref.row_begin;
    out->offset = t->offset + row_bytes * (size_t)ref.row_begin;
    return STATUS_OK;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

static bool is_float_dtype(enum safetensors_dtype dt)
{
    return dt == SAFETENSORS_F32 || dt == SAFETENSORS_F16 || dt == SAFETENSORS_BF16 ||
           dt == SAFETENSORS_F64 || dt == SAFETENSORS_F8_E4M3 || dt == SAFETENSORS_F8_E5M2;
}

/* The view of `name`, which must be floating-point. */
static enum status find_float(const struct weights *w, const char *name,
                              struct safetensors_tensor *t, struct errbuf *err)
{
    enum status s = weights_view(w, name, t, err);
    if (s != STATUS_OK || is_float_dtype(t->dtype))
        return s;
    struct weights_ref ref;
    char note[WEIGHTS_NAME_MAX + 64];
    weights_resolve(w, name, &ref);
    file_name_note(name, &ref, note, sizeof note);
    return status_fail(err, STATUS_FORMAT,
                       "%s: tensor '%s'%s has dtype %s, expected a floating-point dtype",
                       w->label, name, note, safetensors_dtype_name(t->dtype));
}

/* The view of `name`, which must have exactly the given shape. */
static enum status find_shaped(const struct weights *w, const char *name, int ndim,
                               const int64_t *shape, struct safetensors_tensor *t,
                               struct errbuf *err)
{
    enum status s = find_float(w, name, t, err);
    if (s != STATUS_OK)
        return s;
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char want[96], got[96], note[WEIGHTS_NAME_MAX + 64];
        struct weights_ref ref;
        weights_resolve(w, name, &ref);
        file_name_note(name, &ref, note, sizeof note);
        shape_str(ndim, shape, want, sizeof want);
        shape_str(t->ndim, t->shape, got, sizeof got);
        return status_fail(err, STATUS_FORMAT, "%s: tensor '%s'%s has shape %s, expected %s",
                           w->label, name, note, got, want);
    }
    return STATUS_OK;
}

/* Uploads n host floats with the given engine shape to a new tensor on b. */
static enum status upload_new(struct backend *b, int ndim, const int64_t *shape,
                              const float *host, struct tensor *out, struct errbuf *err)
{
    *out = tensor_desc(backend_weight_dtype(b), ndim, shape);
    enum status s = backend_alloc(b, out, err);
    if (s != STATUS_OK)
        return s;
    s = backend_upload(out, host, DTYPE_F32, err);
    if (s != STATUS_OK)
        backend_free(out);
    return s;
}

void weights_set_cancel(struct weights *w, weights_cancel_fn cancelled, void *ctx)
{
    w->cancelled = cancelled;
    w->cancel_ctx = ctx;
}

/* n floats of t into dst, unless the load was cancelled. */
static enum status read_f32(const struct weights *w, const struct safetensors_tensor *t,
                            float *dst, size_t n, struct errbuf *err)
{
    if (w->cancelled && w->cancelled(w->cancel_ctx))
        return status_fail(err, STATUS_CANCELLED, "%s: loading cancelled", w->label);
    return safetensors_read_f32(w->st, t, dst, n, err);
}

static enum status read_tensor(const struct weights *w, const struct safetensors_tensor *t,
                               float **host, struct errbuf *err)
{
    *host = malloc((t->numel ? t->numel : 1) * sizeof(float));
    if (!*host)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: tensor '%s': out of memory",
                           w->label, t->name);
    enum status s = read_f32(w, t, *host, t->numel, err);
    if (s != STATUS_OK) {
        free(*host);
        *host = NULL;
    }
    return s;
}

enum status weights_load(const struct weights *w, const char *name, int ndim,
                         const int64_t *shape, struct backend *b, struct tensor *out,
                         struct errbuf *err)
{
    struct safetensors_tensor t;
    enum status s = find_shaped(w, name, ndim, shape, &t, err);
    if (s != STATUS_OK)
        return s;
    float *host;
    s = read_tensor(w, &t, &host, err);
    if (s != STATUS_OK)
        return s;
    s = upload_new(b, ndim, shape, host, out, err);
    free(host);
    return s;
}

/* Finds a conv-or-linear weight of {cout,cin,kh,kw}; a 1×1 kernel may be stored as
 * {cout,cin}. */
static enum status find_conv(const struct weights *w, const char *name, int64_t cout,
                             int64_t cin, int64_t kh, int64_t kw,
                             struct safetensors_tensor *out, struct errbuf *err)
{
    const struct safetensors_tensor *t = weights_find(w, name);
    if (t && kh == 1 && kw == 1 && t->ndim == 2)
        return find_shaped(w, name, 2, (int64_t[]){cout, cin}, out, err);
    return find_shaped(w, name, 4, (int64_t[]){cout, cin, kh, kw}, out, err);
}

enum status weights_load_conv(const struct weights *w, const char *name, int64_t cout,
                              int64_t cin, int64_t kh, int64_t kw, struct backend *b,
                              struct tensor *out, struct errbuf *err)
{
    struct safetensors_tensor t;
    enum status s = find_conv(w, name, cout, cin, kh, kw, &t, err);
    if (s != STATUS_OK)
        return s;
    float *oihw;
    s = read_tensor(w, &t, &oihw, err);
    if (s != STATUS_OK)
        return s;
    float *ohwi = malloc(t.numel * sizeof(float));
    if (!ohwi) {
        free(oihw);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", w->label);
    }
    /* {Cout,Cin,KH,KW} → {Cout,KH,KW,Cin} */
    for (int64_t o = 0; o < cout; o++)
        for (int64_t i = 0; i < cin; i++)
            for (int64_t y = 0; y < kh; y++)
                for (int64_t x = 0; x < kw; x++)
                    ohwi[((o * kh + y) * kw + x) * cin + i] = oihw[((o * cin + i) * kh + y) * kw + x];
    free(oihw);
    s = upload_new(b, 4, (int64_t[]){cout, kh, kw, cin}, ohwi, out, err);
    free(ohwi);
    return s;
}

enum status weights_load_linear(const struct weights *w, const char *name, int64_t n_out,
                                int64_t n_in, struct backend *b, struct tensor *out,
                                struct errbuf *err)
{
    struct safetensors_tensor t;
    enum status s = find_conv(w, name, n_out, n_in, 1, 1, &t, err);
    if (s != STATUS_OK)
        return s;
    float *host;
    s = read_tensor(w, &t, &host, err);
    if (s != STATUS_OK)
        return s;
    s = upload_new(b, 2, (int64_t[]){n_out, n_in}, host, out, err);
    free(host);
    return s;
}

/* g tensors names[0..g) as one tensor of `shape` (g parts of shape's other dims): each
 * found as a linear weight {rows, cols} (cols > 0) or a vector {rows} (cols 0). */
static enum status load_stacked(const struct weights *w, const char *const *names, int g,
                                int64_t rows, int64_t cols, int ndim, const int64_t *shape,
                                struct backend *b, struct tensor *out, struct errbuf *err)
{
    const size_t each = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    float *all = malloc((size_t)g * each * sizeof *all);
    if (!all)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: tensor '%s': out of memory",
                           w->label, names[0]);
    enum status s = STATUS_OK;
    for (int i = 0; i < g && s == STATUS_OK; i++) {
        struct safetensors_tensor t;
        s = cols > 0 ? find_conv(w, names[i], rows, cols, 1, 1, &t, err)
                     : find_shaped(w, names[i], 1, (int64_t[]){rows}, &t, err);
        if (s == STATUS_OK)
            s = read_f32(w, &t, all + (size_t)i * each, each, err);
    }
    if (s == STATUS_OK)
        s = upload_new(b, ndim, shape, all, out, err);
    free(all);
    return s;
}

enum status weights_load_linear_stack(const struct weights *w, const char *const *names, int g,
                                      int64_t n_out, int64_t n_in, struct backend *b,
                                      struct tensor *out, struct errbuf *err)
{
    return load_stacked(w, names, g, n_out, n_in, 3, (int64_t[]){g, n_out, n_in}, b, out, err);
}

enum status weights_load_vec_stack(const struct weights *w, const char *const *names, int g,
                                   int64_t n, struct backend *b, struct tensor *out,
                                   struct errbuf *err)
{
    return load_stacked(w, names, g, n, 0, 3, (int64_t[]){g, 1, n}, b, out, err);
}

enum status weights_read_f32(const struct weights *w, const char *name, float *dst, size_t n,
                             struct errbuf *err)
{
    struct safetensors_tensor t;
    enum status s = find_float(w, name, &t, err);
    if (s != STATUS_OK)
        return s;
    return read_f32(w, &t, dst, n, err);
}
