/* models/weights.c — see weights.h. */
#include "models/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NAME_MAX_LEN 512

struct weights {
    struct safetensors *st;
    bool owns_st;
    weights_name_map_fn map;
    const void *map_ctx;
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
                                weights_name_map_fn map, const void *map_ctx,
                                struct weights **out, struct errbuf *err)
{
    struct weights *w = calloc(1, sizeof *w);
    if (!w)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", label);
    w->st = st;
    w->owns_st = owns;
    w->map = map;
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
    s = weights_wrap(st, true, path, NULL, NULL, out, err);
    if (s != STATUS_OK)
        safetensors_close(st);
    return s;
}

enum status weights_open_mapped(struct safetensors *st, const char *label,
                                weights_name_map_fn map, const void *map_ctx,
                                struct weights **out, struct errbuf *err)
{
    *out = NULL;
    return weights_wrap(st, false, label, map, map_ctx, out, err);
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

const struct safetensors_tensor *weights_find(const struct weights *w, const char *name)
{
    if (!w->map)
        return safetensors_find(w->st, name);
    char mapped[NAME_MAX_LEN];
    if (!w->map(w->map_ctx, name, mapped, sizeof mapped))
        return NULL;
    return safetensors_find(w->st, mapped);
}

bool weights_has(const struct weights *w, const char *name)
{
    return weights_find(w, name) != NULL;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

/* The tensor `name`, which must have exactly the given shape. */
static enum status find_shaped(const struct weights *w, const char *name, int ndim,
                               const int64_t *shape, const struct safetensors_tensor **out,
                               struct errbuf *err)
{
    const struct safetensors_tensor *t = weights_find(w, name);
    if (!t)
        return status_fail(err, STATUS_FORMAT, "%s: missing tensor '%s'", w->label, name);
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char want[96], got[96];
        shape_str(ndim, shape, want, sizeof want);
        shape_str(t->ndim, t->shape, got, sizeof got);
        return status_fail(err, STATUS_FORMAT, "%s: tensor '%s' has shape %s, expected %s",
                           w->label, name, got, want);
    }
    *out = t;
    return STATUS_OK;
}

/* Uploads n host floats with the given engine shape to a new tensor on b. */
static enum status upload_new(struct backend *b, int ndim, const int64_t *shape,
                              const float *host, struct tensor *out, struct errbuf *err)
{
    *out = tensor_desc(DTYPE_F32, ndim, shape);
    enum status s = backend_alloc(b, out, err);
    if (s != STATUS_OK)
        return s;
    s = backend_upload(out, host, DTYPE_F32, err);
    if (s != STATUS_OK)
        backend_free(out);
    return s;
}

static enum status read_tensor(const struct weights *w, const struct safetensors_tensor *t,
                               float **host, struct errbuf *err)
{
    *host = malloc((t->numel ? t->numel : 1) * sizeof(float));
    if (!*host)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: tensor '%s': out of memory",
                           w->label, t->name);
    enum status s = safetensors_read_f32(w->st, t, *host, t->numel, err);
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
    const struct safetensors_tensor *t;
    enum status s = find_shaped(w, name, ndim, shape, &t, err);
    if (s != STATUS_OK)
        return s;
    float *host;
    s = read_tensor(w, t, &host, err);
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
                             const struct safetensors_tensor **out, struct errbuf *err)
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
    const struct safetensors_tensor *t;
    enum status s = find_conv(w, name, cout, cin, kh, kw, &t, err);
    if (s != STATUS_OK)
        return s;
    float *oihw;
    s = read_tensor(w, t, &oihw, err);
    if (s != STATUS_OK)
        return s;
    float *ohwi = malloc(t->numel * sizeof(float));
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
    const struct safetensors_tensor *t;
    enum status s = find_conv(w, name, n_out, n_in, 1, 1, &t, err);
    if (s != STATUS_OK)
        return s;
    float *host;
    s = read_tensor(w, t, &host, err);
    if (s != STATUS_OK)
        return s;
    s = upload_new(b, 2, (int64_t[]){n_out, n_in}, host, out, err);
    free(host);
    return s;
}

enum status weights_read_f32(const struct weights *w, const char *name, float *dst, size_t n,
                             struct errbuf *err)
{
    const struct safetensors_tensor *t = weights_find(w, name);
    if (!t)
        return status_fail(err, STATUS_FORMAT, "%s: missing tensor '%s'", w->label, name);
    return safetensors_read_f32(w->st, t, dst, n, err);
}
