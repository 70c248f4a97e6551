/* engine/backend.c — argument validation in one place, then vtable dispatch. */
#include "engine/backend.h"

#include <stddef.h>
#include <stdlib.h>

#include "engine/profile.h"

#define DESC_MAX 64

/* The vtable call `call` of op `name` on backend b, timed when a profile is attached
 * (engine/profile.h); x, w: the input and weight tensors of its key (may be NULL). */
#define DISPATCH(b, name, x, w, y, call) \
    ((b)->profile ? (op_profile_begin(b), op_profile_end((b), (name), (x), (w), (y), (call))) : (call))

const char *backend_name(const struct backend *b)
{
    return b ? b->ops->name : "none";
}

void backend_destroy(struct backend *b)
{
    if (b)
        b->ops->destroy(b);
}

/* --- validation helpers ------------------------------------------------------- */

static enum status check_tensor(const struct tensor *t, const char *name, struct errbuf *err)
{
    enum status s = tensor_check(t, name, err);
    if (s != STATUS_OK)
        return s;
    if (!t->data || !t->backend)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: not allocated on a backend", name);
    return STATUS_OK;
}

/* Checks that t (optional when allow_null) is allocated, on y's backend with y's dtype. */
static enum status check_peer(const struct tensor *t, const char *name, const struct tensor *y,
                              bool allow_null, struct errbuf *err)
{
    if (!t) {
        if (allow_null)
            return STATUS_OK;
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: missing tensor", name);
    }
    enum status s = check_tensor(t, name, err);
    if (s != STATUS_OK)
        return s;
    if (t->backend != y->backend)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: on backend %s, output on %s", name,
                           backend_name(t->backend), backend_name(y->backend));
    if (t->dtype != y->dtype)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: dtype %s, output %s", name,
                           dtype_name(t->dtype), dtype_name(y->dtype));
    return STATUS_OK;
}

static enum status shape_error(struct errbuf *err, const char *op, const char *what,
                               const struct tensor *t)
{
    char d[DESC_MAX];
    return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: %s has shape %s", op, what,
                       tensor_describe(t, d, sizeof d));
}

static bool vec_of(const struct tensor *t, int64_t n)
{
    return t->ndim == 1 && t->shape[0] == n;
}

/* --- memory ------------------------------------------------------------------- */

enum status backend_alloc(struct backend *b, struct tensor *t, struct errbuf *err)
{
    t->data = NULL;
    t->backend = NULL;
    TRY(tensor_check(t, "tensor", err));
    TRY(b->ops->alloc(b, t, err));
    t->backend = b;
    return STATUS_OK;
}

void backend_free(struct tensor *t)
{
    if (t && t->data && t->backend)
        t->backend->ops->free(t->backend, t);
    if (t)
        t->data = NULL;
}

enum status backend_upload(struct tensor *dst, const void *src, enum dtype src_dtype,
                           struct errbuf *err)
{
    TRY(check_tensor(dst, "upload destination", err));
    if (!src || (unsigned)src_dtype >= DTYPE_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "upload: bad source");
    return dst->backend->ops->upload(dst->backend, dst, src, src_dtype, err);
}

enum status backend_download(const struct tensor *src, float *dst, struct errbuf *err)
{
    TRY(check_tensor(src, "download source", err));
    if (!dst)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "download: no destination");
    return src->backend->ops->download(src->backend, src, dst, err);
}

enum status backend_sync(struct backend *b, struct errbuf *err)
{
    return b->ops->sync(b, err);
}

bool backend_is_broken(const struct backend *b)
{
    return b && b->ops->broken && b->ops->broken(b);
}

enum dtype backend_weight_dtype(const struct backend *b)
{
    return b && b->ops->weight_dtype ? b->ops->weight_dtype(b) : DTYPE_F32;
}

/* --- graphs -------------------------------------------------------------------- */

struct backend_graph {
    struct backend *b;
    void *impl;
};

bool backend_records_graphs(const struct backend *b)
{
    return b->ops->graph_begin != NULL;
}

enum status backend_graph_begin(struct backend *b, struct errbuf *err)
{
    if (!b || !b->ops->graph_begin)
        return status_fail(err, STATUS_UNSUPPORTED, "graphs: the %s backend records none",
                           b ? b->ops->name : "(null)");
    return b->ops->graph_begin(b, err);
}

enum status backend_graph_end(struct backend *b, struct backend_graph **out,
                              struct errbuf *err)
{
    *out = NULL;
    if (!b || !b->ops->graph_end)
        return status_fail(err, STATUS_UNSUPPORTED, "graphs: none recording");
    struct backend_graph *g = calloc(1, sizeof *g);
    void *impl = NULL;
    enum status s = b->ops->graph_end(b, &impl, err); /* ends the recording either way */
    if (s == STATUS_OK && !g) {
        b->ops->graph_destroy(impl);
        s = status_fail(err, STATUS_OUT_OF_MEMORY, "graphs: out of memory");
    }
    if (s != STATUS_OK) {
        free(g);
        return s;
    }
    g->b = b;
    g->impl = impl;
    *out = g;
    return STATUS_OK;
}

enum status backend_graph_set_timesteps(struct backend_graph *g, const float *timesteps,
                                        int rows, struct errbuf *err)
{
    if (!g || !timesteps || rows < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "graph timesteps: none");
    return g->b->ops->graph_set_timesteps(g->impl, timesteps, rows, err);
}

bool backend_graph_current(const struct backend_graph *g)
{
    return g && (!g->b->ops->graph_current || g->b->ops->graph_current(g->impl));
}

enum status backend_graph_launch(struct backend_graph *g, struct errbuf *err)
{
    if (!g)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "graph launch: no graph");
    return g->b->ops->graph_launch(g->impl, err);
}

void backend_graph_destroy(struct backend_graph *g)
{
    if (!g)
        return;
    g->b->ops->graph_destroy(g->impl);
    free(g);
}

/* --- lanes -------------------------------------------------------------------- */

int backend_lanes(const struct backend *b)
{
    return b && b->ops->lanes ? b->ops->lanes(b) : 1;
}

enum status backend_lane_select(struct backend *b, int lane, struct errbuf *err)
{
    if (lane < 0 || lane >= BACKEND_LANES_MAX)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "lane %d outside [0, %d)", lane,
                           BACKEND_LANES_MAX);
    return b->ops->lane_select ? b->ops->lane_select(b, lane, err) : STATUS_OK;
}

/* --- ops ---------------------------------------------------------------------- */

enum status backend_conv2d(const struct tensor *x, const struct tensor *w,
                           const struct tensor *bias, const struct tensor *residual,
                           const struct conv2d_params *p, struct tensor *y, struct errbuf *err)
{
    TRY(check_tensor(y, "conv2d output", err));
    TRY(check_peer(x, "conv2d input", y, false, err));
    TRY(check_peer(w, "conv2d weight", y, false, err));
    TRY(check_peer(bias, "conv2d bias", y, true, err));
    TRY(check_peer(residual, "conv2d residual", y, true, err));
    if (!p || (p->stride != 1 && p->stride != 2) || p->padding < 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "conv2d: stride must be 1 or 2, padding >= 0");
    if (x->ndim != 4)
        return shape_error(err, "conv2d", "input", x);
    if (w->ndim != 4 || w->shape[3] != x->shape[3])
        return shape_error(err, "conv2d", "weight", w);
    int64_t kh = w->shape[1], kw = w->shape[2];
    int64_t hp = x->shape[1] + 2 * p->padding, wp = x->shape[2] + 2 * p->padding;
    if (hp < kh || wp < kw)
        return shape_error(err, "conv2d", "input smaller than kernel", x);
    int64_t ho = (hp - kh) / p->stride + 1, wo = (wp - kw) / p->stride + 1;
    const int64_t want[4] = {x->shape[0], ho, wo, w->shape[0]};
    struct tensor expect = tensor_desc(y->dtype, 4, want);
    if (!tensor_same_shape(y, &expect))
        return shape_error(err, "conv2d", "output", y);
    if (bias && !vec_of(bias, w->shape[0]))
        return shape_error(err, "conv2d", "bias", bias);
    if (residual && !tensor_same_shape(residual, y))
        return shape_error(err, "conv2d", "residual", residual);
    return DISPATCH(y->backend, "conv2d", x, w, y,
                    y->backend->ops->conv2d(y->backend, x, w, bias, residual, p, y, err));
}

enum status backend_linear(const struct tensor *x, const struct tensor *w,
                           const struct tensor *bias, const struct tensor *residual,
                           struct tensor *y, struct errbuf *err)
{
    TRY(check_tensor(y, "linear output", err));
    TRY(check_peer(x, "linear input", y, false, err));
    TRY(check_peer(w, "linear weight", y, false, err));
    TRY(check_peer(bias, "linear bias", y, true, err));
    TRY(check_peer(residual, "linear residual", y, true, err));
    if (w->ndim != 2 || w->shape[1] != tensor_last_dim(x))
        return shape_error(err, "linear", "weight", w);
    if (tensor_last_dim(y) != w->shape[0] || tensor_rows(y) != tensor_rows(x))
        return shape_error(err, "linear", "output", y);
    if (bias && !vec_of(bias, w->shape[0]))
        return shape_error(err, "linear", "bias", bias);
    if (residual && !tensor_same_shape(residual, y))
        return shape_error(err, "linear", "residual", residual);
    return DISPATCH(y->backend, "linear", x, w, y,
                    y->backend->ops->linear(y->backend, x, w, bias, residual, y, err));
}

/* An optional fused path run with `quiet` for its message: true when it declined
 * (STATUS_UNSUPPORTED: the caller takes the general path); else its status is *out
 * and its message err's. */
static bool fused_declined(enum status s, const struct errbuf *quiet, struct errbuf *err,
                           enum status *out)
{
    if (s == STATUS_UNSUPPORTED)
        return true;
    if (s != STATUS_OK && err)
        *err = *quiet;
    *out = s;
    return false;
}

static enum status linear_stack_each(const struct tensor *x, const struct tensor *w,
                                     struct tensor *y, struct errbuf *err)
{
    for (int64_t g = 0; g < w->shape[0]; g++) {
        const struct tensor wg = tensor_index(w, g);
        struct tensor yg = tensor_index(y, g);
        TRY(y->backend->ops->linear(y->backend, x, &wg, NULL, NULL, &yg, err));
    }
    return STATUS_OK;
}

static enum status linear_stack_run(const struct tensor *x, const struct tensor *w,
                                    struct tensor *y, struct errbuf *err)
{
    const struct backend_ops *ops = y->backend->ops;
    struct errbuf quiet;
    errbuf_clear(&quiet);
    enum status s = STATUS_OK;
    if (ops->linear_stack &&
        !fused_declined(ops->linear_stack(y->backend, x, w, y, &quiet), &quiet, err, &s))
        return s;
    return linear_stack_each(x, w, y, err);
}

enum status backend_linear_stack(const struct tensor *x, const struct tensor *w,
                                 struct tensor *y, struct errbuf *err)
{
    TRY(check_tensor(y, "linear_stack output", err));
    TRY(check_peer(x, "linear_stack input", y, false, err));
    TRY(check_peer(w, "linear_stack weight", y, false, err));
    if (w->ndim != 3 || w->shape[2] != tensor_last_dim(x))
        return shape_error(err, "linear_stack", "weight", w);
    bool ok = y->ndim == x->ndim + 1 && y->shape[0] == w->shape[0] &&
              tensor_last_dim(y) == w->shape[1];
    for (int d = 0; ok && d + 1 < x->ndim; d++)
        ok = y->shape[d + 1] == x->shape[d];
    if (!ok)
        return shape_error(err, "linear_stack", "output", y);
    return DISPATCH(y->backend, "linear_stack", x, w, y, linear_stack_run(x, w, y, err));
}

enum status backend_matmul(const struct tensor *a, const struct tensor *bm, bool trans_b,
                           float alpha, struct tensor *y, struct errbuf *err)
{
    TRY(check_tensor(y, "matmul output", err));
    TRY(check_peer(a, "matmul a", y, false, err));
    TRY(check_peer(bm, "matmul b", y, false, err));
    if (a->ndim != 3)
        return shape_error(err, "matmul", "a", a);
    int64_t batch = a->shape[0], m = a->shape[1], k = a->shape[2];
    int64_t n = trans_b ? bm->shape[1] : bm->shape[2];
    int64_t kb = trans_b ? bm->shape[2] : bm->shape[1];
    if (bm->ndim != 3 || bm->shape[0] != batch || kb != k)
        return shape_error(err, "matmul", "b", bm);
    if (y->ndim != 3 || y->shape[0] != batch || y->shape[1] != m || y->shape[2] != n)
        return shape_error(err, "matmul", "output", y);
    return DISPATCH(y->backend, "matmul", a, bm, y,
                    y->backend->ops->matmul(y->backend, a, bm, trans_b, alpha, y, err));
}

/* The op; with a shift it cannot fuse (STATUS_UNSUPPORTED, y untouched): y = x + shift
 * (shift as {N,1,…,C}), then the norm of y in place. */
static enum status group_norm_run(const struct tensor *x, const struct tensor *gamma,
                                  const struct tensor *beta, const struct group_norm_params *p,
                                  struct tensor *y, struct errbuf *err)
{
    const struct backend_ops *ops = y->backend->ops;
    if (!p->shift)
        return ops->group_norm(y->backend, x, gamma, beta, p, y, err);
    struct errbuf quiet;
    errbuf_clear(&quiet);
    enum status s = STATUS_OK;
    if (!fused_declined(ops->group_norm(y->backend, x, gamma, beta, p, y, &quiet), &quiet, err,
                        &s))
        return s;
    struct tensor sh = *p->shift; /* {N,C} → {N,1,…,C}: repeated over the positions */
    sh.ndim = x->ndim;
    for (int d = 1; d < TENSOR_MAX_DIMS; d++)
        sh.shape[d] = d == x->ndim - 1 ? p->shift->shape[1] : 1;
    TRY(ops->add(y->backend, x, &sh, y, err));
    struct group_norm_params plain = *p;
    plain.shift = NULL;
    return ops->group_norm(y->backend, y, gamma, beta, &plain, y, err);
}

enum status backend_group_norm(const struct tensor *x, const struct tensor *gamma,
                               const struct tensor *beta, const struct group_norm_params *p,
                               struct tensor *y, struct errbuf *err)
{
    TRY(check_tensor(y, "group_norm output", err));
    TRY(check_peer(x, "group_norm input", y, false, err));
    TRY(check_peer(gamma, "group_norm gamma", y, true, err));
    TRY(check_peer(beta, "group_norm beta", y, true, err));
    int64_t c = tensor_last_dim(x);
    if (x->ndim < 3 || !tensor_same_shape(x, y))
        return shape_error(err, "group_norm", "input/output", x);
    if (!p || p->groups < 1 || c % p->groups != 0 || !(p->eps > 0))
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "group_norm: %lld channels not divisible into %d groups (eps > 0)",
                           (long long)c, p ? p->groups : 0);
    if ((gamma && !vec_of(gamma, c)) || (beta && !vec_of(beta, c)))
        return shape_error(err, "group_norm", "gamma/beta", gamma ? gamma : beta);
    if (p->shift) {
        TRY(check_peer(p->shift, "group_norm shift", y, false, err));
        if (p->shift->ndim != 2 || p->shift->shape[0] != x->shape[0] || p->shift->shape[1] != c)
            return shape_error(err, "group_norm", "shift", p->shift);
    }
    return DISPATCH(y->backend, "group_norm", x, NULL, y, group_norm_run(x, gamma, beta, p, y, err));
}

enum status backend_layer_norm(const struct tensor *x, const struct tensor *gamma,
                               const struct tensor *beta, float eps, struct tensor *y,
                               struct errbuf *err)
{
    TRY(check_tensor(y, "layer_norm output", err));
    TRY(check_peer(x, "layer_norm input", y, false, err));
    TRY(check_peer(gamma, "layer_norm gamma", y, true, err));
    TRY(check_peer(beta, "layer_norm beta", y, true, err));
    int64_t c = tensor_last_dim(x);
    if (!tensor_same_shape(x, y))
        return shape_error(err, "layer_norm", "output", y);
    if ((gamma && !vec_of(gamma, c)) || (beta && !vec_of(beta, c)))
        return shape_error(err, "layer_norm", "gamma/beta", gamma ? gamma : beta);
    if (!(eps > 0))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "layer_norm: eps must be > 0");
    return DISPATCH(y->backend, "layer_norm", x, NULL, y,
                    y->backend->ops->layer_norm(y->backend, x, gamma, beta, eps, y, err));
}

enum status backend_attention(const struct tensor *q, const struct tensor *k,
                              const struct tensor *v, const struct attention_params *p,
                              struct tensor *y, struct errbuf *err)
{
    TRY(check_tensor(y, "attention output", err));
    TRY(check_peer(q, "attention q", y, false, err));
    TRY(check_peer(k, "attention k", y, false, err));
    TRY(check_peer(v, "attention v", y, false, err));
    if (q->ndim != 3 || !tensor_same_shape(q, y))
        return shape_error(err, "attention", "q/output", q);
    if (k->ndim != 3 || !tensor_same_shape(k, v) || k->shape[0] != q->shape[0] ||
        k->shape[2] != q->shape[2])
        return shape_error(err, "attention", "k/v", k);
    if (!p || p->heads < 1 || q->shape[2] % p->heads != 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "attention: %lld features not divisible into %d heads",
                           (long long)q->shape[2], p ? p->heads : 0);
    if (p->causal && k->shape[1] != q->shape[1])
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "attention: causal mask needs as many keys as queries");
    return DISPATCH(y->backend, "attention", q, k, y,
                    y->backend->ops->attention(y->backend, q, k, v, p, y, err));
}

static enum status check_unary(const char *op, const struct tensor *x, struct tensor *y,
                               struct errbuf *err)
{
    TRY(check_tensor(y, op, err));
    TRY(check_peer(x, op, y, false, err));
    if (!tensor_same_shape(x, y))
        return shape_error(err, op, "output", y);
    return STATUS_OK;
}

enum status backend_gelu(const struct tensor *x, enum gelu_kind kind, struct tensor *y,
                         struct errbuf *err)
{
    TRY(check_unary("gelu", x, y, err));
    if (kind != GELU_ERF && kind != GELU_TANH && kind != GELU_QUICK)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "gelu: unknown kind %d", (int)kind);
    return DISPATCH(y->backend, "gelu", x, NULL, y,
                    y->backend->ops->gelu(y->backend, x, kind, y, err));
}

enum status backend_silu(const struct tensor *x, struct tensor *y, struct errbuf *err)
{
    TRY(check_unary("silu", x, y, err));
    return DISPATCH(y->backend, "silu", x, NULL, y,
                    y->backend->ops->silu(y->backend, x, y, err));
}

enum status backend_geglu(const struct tensor *x, struct tensor *y, struct errbuf *err)
{
    TRY(check_tensor(y, "geglu output", err));
    TRY(check_peer(x, "geglu input", y, false, err));
    if (tensor_last_dim(x) != 2 * tensor_last_dim(y) || tensor_rows(x) != tensor_rows(y))
        return shape_error(err, "geglu", "output", y);
    return DISPATCH(y->backend, "geglu", x, NULL, y,
                    y->backend->ops->geglu(y->backend, x, y, err));
}

static enum status check_broadcast(const char *op, const struct tensor *a,
                                   const struct tensor *bt, struct tensor *y,
                                   struct errbuf *err)
{
    TRY(check_tensor(y, op, err));
    TRY(check_peer(a, op, y, false, err));
    TRY(check_peer(bt, op, y, false, err));
    if (!tensor_same_shape(a, y))
        return shape_error(err, op, "output", y);
    if (bt->ndim != a->ndim)
        return shape_error(err, op, "second operand", bt);
    for (int i = 0; i < a->ndim; i++)
        if (bt->shape[i] != a->shape[i] && bt->shape[i] != 1)
            return shape_error(err, op, "second operand (not broadcastable)", bt);
    return STATUS_OK;
}

enum status backend_add(const struct tensor *a, const struct tensor *bt, struct tensor *y,
                        struct errbuf *err)
{
    TRY(check_broadcast("add", a, bt, y, err));
    return DISPATCH(y->backend, "add", a, bt, y,
                    y->backend->ops->add(y->backend, a, bt, y, err));
}

enum status backend_mul(const struct tensor *a, const struct tensor *bt, struct tensor *y,
                        struct errbuf *err)
{
    TRY(check_broadcast("mul", a, bt, y, err));
    return DISPATCH(y->backend, "mul", a, bt, y,
                    y->backend->ops->mul(y->backend, a, bt, y, err));
}

enum status backend_axpby(const struct tensor *x, const struct tensor *yin, const float *alpha,
                          const float *beta, struct tensor *out, struct errbuf *err)
{
    TRY(check_tensor(out, "axpby output", err));
    TRY(check_peer(x, "axpby x", out, false, err));
    TRY(check_peer(yin, "axpby y", out, false, err));
    if (!tensor_same_shape(x, out) || !tensor_same_shape(yin, out))
        return shape_error(err, "axpby", "operands", yin);
    if (!alpha || !beta)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "axpby: missing per-row scalars");
    return DISPATCH(out->backend, "axpby", x, yin, out,
                    out->backend->ops->axpby(out->backend, x, yin, alpha, beta, out, err));
}

enum status backend_gather_rows(const struct tensor *const *rows, const float *scales, int n,
                                struct tensor *dst, struct errbuf *err)
{
    TRY(check_tensor(dst, "gather_rows output", err));
    if (!rows || n < 1 || n > BACKEND_GATHER_MAX || dst->shape[0] != n)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "gather_rows: %d rows into an output of %lld (1 … %d)", n,
                           (long long)dst->shape[0], BACKEND_GATHER_MAX);
    const int64_t row = tensor_numel(dst) / n;
    for (int i = 0; i < n; i++) {
        TRY(check_peer(rows[i], "gather_rows row", dst, false, err));
        if (tensor_numel(rows[i]) != row)
            return shape_error(err, "gather_rows", "row", rows[i]);
    }
    return DISPATCH(dst->backend, "gather_rows", rows[0], NULL, dst,
                    dst->backend->ops->gather_rows(dst->backend, rows, scales, n, dst, err));
}

enum status backend_upsample_nearest(const struct tensor *x, struct tensor *y,
                                     struct errbuf *err)
{
    TRY(check_tensor(y, "upsample output", err));
    TRY(check_peer(x, "upsample input", y, false, err));
    if (x->ndim != 4)
        return shape_error(err, "upsample_nearest", "input (need 4 dims)", x);
    if (y->ndim != 4 || y->shape[0] != x->shape[0] || y->shape[1] < x->shape[1] ||
        y->shape[2] < x->shape[2] || y->shape[3] != x->shape[3])
        return shape_error(err, "upsample_nearest", "output", y);
    return DISPATCH(y->backend, "upsample_nearest", x, NULL, y,
                    y->backend->ops->upsample_nearest(y->backend, x, y, err));
}

enum status backend_concat_channels(const struct tensor *a, const struct tensor *bt,
                                    struct tensor *y, struct errbuf *err)
{
    TRY(check_tensor(y, "concat output", err));
    TRY(check_peer(a, "concat a", y, false, err));
    TRY(check_peer(bt, "concat b", y, false, err));
    if (a->ndim != y->ndim || bt->ndim != y->ndim || tensor_rows(a) != tensor_rows(y) ||
        tensor_rows(bt) != tensor_rows(y) ||
        tensor_last_dim(a) + tensor_last_dim(bt) != tensor_last_dim(y))
        return shape_error(err, "concat_channels", "output", y);
    for (int i = 0; i + 1 < y->ndim; i++)
        if (a->shape[i] != y->shape[i] || bt->shape[i] != y->shape[i])
            return shape_error(err, "concat_channels", "operand", a);
    return DISPATCH(y->backend, "concat_channels", a, bt, y,
                    y->backend->ops->concat_channels(y->backend, a, bt, y, err));
}

enum status backend_timestep_embedding(const float *timesteps,
                                       const struct timestep_embedding_params *p,
                                       struct tensor *y, struct errbuf *err)
{
    TRY(check_tensor(y, "timestep_embedding output", err));
    if (!timesteps || !p || p->dim < 2 || p->dim % 2 != 0 || !(p->max_period > 0))
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "timestep_embedding: need timesteps, even dim >= 2, max_period > 0");
    if (y->ndim != 2 || y->shape[1] != p->dim)
        return shape_error(err, "timestep_embedding", "output", y);
    if ((float)(p->dim / 2) - p->downscale_freq_shift == 0.0f)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "timestep_embedding: dim/2 - shift must not be 0");
    return DISPATCH(y->backend, "timestep_embedding", NULL, NULL, y,
                    y->backend->ops->timestep_embedding(y->backend, timesteps, p, y, err));
}
