/* models/transformer2d.c — Transformer2DModel load and forward; see transformer2d.h. */
#include "models/transformer2d.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_ 256

/* --- loading ------------------------------------------------------------------- */

/* "<prefix><sep><suffix>" into name (an over-long name is cut, then not found, and
 * the loader's message names it). */
static const char *join(char *name, size_t cap, const char *prefix, const char *sep,
                        const char *suffix)
{
    int n = snprintf(name, cap, "%s%s%s", prefix, sep, suffix);
    if (n < 0 || (size_t)n >= cap)
        name[cap - 1] = '\0';
    return name;
}

static enum status load_vec(const struct weights *w, const char *prefix, const char *suffix,
                            int64_t n, struct backend *b, struct tensor *out, struct errbuf *err)
{
    char name[NAME_MAX_];
    return weights_load(w, join(name, sizeof name, prefix, ".", suffix), 1, (int64_t[]){n}, b,
                        out, err);
}

static enum status load_lin(const struct weights *w, const char *prefix, const char *suffix,
                            int64_t n_out, int64_t n_in, struct backend *b, struct tensor *out,
                            struct errbuf *err)
{
    char name[NAME_MAX_];
    return weights_load_linear(w, join(name, sizeof name, prefix, ".", suffix), n_out, n_in, b,
                               out, err);
}

static void attention_free(struct t2d_attention *a)
{
    backend_free(&a->to_q);
    backend_free(&a->proj);
    backend_free(&a->to_out_w);
    backend_free(&a->to_out_b);
}

static void block_free(struct t2d_block *blk)
{
    backend_free(&blk->norm1_w);
    backend_free(&blk->norm1_b);
    backend_free(&blk->norm2_w);
    backend_free(&blk->norm2_b);
    backend_free(&blk->norm3_w);
    backend_free(&blk->norm3_b);
    attention_free(&blk->attn1);
    attention_free(&blk->attn2);
    backend_free(&blk->ff_in_w);
    backend_free(&blk->ff_in_b);
    backend_free(&blk->ff_out_w);
    backend_free(&blk->ff_out_b);
}

void transformer2d_free(struct transformer2d *t)
{
    if (t->blocks) {
        for (int i = 0; i < t->cfg.layers; i++)
            block_free(&t->blocks[i]);
        free(t->blocks);
    }
    backend_free(&t->norm_w);
    backend_free(&t->norm_b);
    backend_free(&t->proj_in_w);
    backend_free(&t->proj_in_b);
    backend_free(&t->proj_out_w);
    backend_free(&t->proj_out_b);
    memset(t, 0, sizeof *t);
}

/* attn: "<prefix>.to_q.weight" … "<prefix>.to_out.0.bias"; keys/values from kv_dim
 * (self-attention: kv_dim 0, keys/values from the queries' input; kv_dim < 0: a
 * cross-attention whose to_k/to_v the caller applies, external_cross_kv). */
static enum status attention_load(struct t2d_attention *a, const struct weights *w,
                                  const char *prefix, int d, int kv_dim, struct backend *b,
                                  struct errbuf *err)
{
    char q[NAME_MAX_], k[NAME_MAX_], v[NAME_MAX_];
    const char *names[3] = {join(q, sizeof q, prefix, ".", "to_q.weight"),
                            join(k, sizeof k, prefix, ".", "to_k.weight"),
                            join(v, sizeof v, prefix, ".", "to_v.weight")};
    if (kv_dim == 0)
        TRY(weights_load_linear_stack(w, names, 3, d, d, b, &a->proj, err));
    else {
        TRY(load_lin(w, prefix, "to_q.weight", d, d, b, &a->to_q, err));
        if (kv_dim > 0)
            TRY(weights_load_linear_stack(w, names + 1, 2, d, kv_dim, b, &a->proj, err));
    }
    TRY(load_lin(w, prefix, "to_out.0.weight", d, d, b, &a->to_out_w, err));
    return load_vec(w, prefix, "to_out.0.bias", d, b, &a->to_out_b, err);
}

/* cross_dim < 0: attn2's keys and values come from the caller (external_cross_kv). */
static enum status block_load(struct t2d_block *blk, const struct weights *w, const char *prefix,
                              int d, int cross_dim, struct backend *b, struct errbuf *err)
{
    char sub[NAME_MAX_];
    TRY(load_vec(w, prefix, "norm1.weight", d, b, &blk->norm1_w, err));
    TRY(load_vec(w, prefix, "norm1.bias", d, b, &blk->norm1_b, err));
    TRY(load_vec(w, prefix, "norm2.weight", d, b, &blk->norm2_w, err));
    TRY(load_vec(w, prefix, "norm2.bias", d, b, &blk->norm2_b, err));
    TRY(load_vec(w, prefix, "norm3.weight", d, b, &blk->norm3_w, err));
    TRY(load_vec(w, prefix, "norm3.bias", d, b, &blk->norm3_b, err));
    TRY(attention_load(&blk->attn1, w, join(sub, sizeof sub, prefix, ".", "attn1"), d, 0, b, err));
    TRY(attention_load(&blk->attn2, w, join(sub, sizeof sub, prefix, ".", "attn2"), d, cross_dim,
                       b, err));
    TRY(load_lin(w, prefix, "ff.net.0.proj.weight", 8 * (int64_t)d, d, b, &blk->ff_in_w, err));
    TRY(load_vec(w, prefix, "ff.net.0.proj.bias", 8 * (int64_t)d, b, &blk->ff_in_b, err));
    TRY(load_lin(w, prefix, "ff.net.2.weight", d, 4 * (int64_t)d, b, &blk->ff_out_w, err));
    return load_vec(w, prefix, "ff.net.2.bias", d, b, &blk->ff_out_b, err);
}

static enum status load_all(struct transformer2d *t, const struct weights *w, const char *prefix,
                            struct backend *b, struct errbuf *err)
{
    const struct transformer2d_config *c = &t->cfg;
    int d = t->inner;
    TRY(load_vec(w, prefix, "norm.weight", c->channels, b, &t->norm_w, err));
    TRY(load_vec(w, prefix, "norm.bias", c->channels, b, &t->norm_b, err));
    /* 1×1 conv {D,C,1,1} (SD1) or linear {D,C} (SD2): the loader accepts both */
    TRY(load_lin(w, prefix, "proj_in.weight", d, c->channels, b, &t->proj_in_w, err));
    TRY(load_vec(w, prefix, "proj_in.bias", d, b, &t->proj_in_b, err));
    TRY(load_lin(w, prefix, "proj_out.weight", c->channels, d, b, &t->proj_out_w, err));
    TRY(load_vec(w, prefix, "proj_out.bias", c->channels, b, &t->proj_out_b, err));
    t->blocks = calloc((size_t)c->layers, sizeof *t->blocks);
    if (!t->blocks)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", prefix);
    for (int i = 0; i < c->layers; i++) {
        char sub[NAME_MAX_], idx[32];
        snprintf(idx, sizeof idx, "%d", i);
        TRY(block_load(&t->blocks[i], w, join(sub, sizeof sub, prefix, ".transformer_blocks.", idx),
                       d, c->external_cross_kv ? -1 : c->cross_dim, b, err));
    }
    return STATUS_OK;
}

enum status transformer2d_load(struct transformer2d *t, const struct weights *w,
                               const char *prefix, const struct transformer2d_config *cfg,
                               struct backend *b, struct errbuf *err)
{
    memset(t, 0, sizeof *t);
    if (cfg->channels < 1 || cfg->heads < 1 || cfg->heads > cfg->channels || cfg->layers < 1 ||
        cfg->cross_dim < 1 || cfg->groups < 1 || cfg->channels % cfg->groups != 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "%s: bad transformer config (channels %d, heads %d, layers %d, "
                           "cross_dim %d, groups %d)",
                           prefix, cfg->channels, cfg->heads, cfg->layers, cfg->cross_dim,
                           cfg->groups);
    t->cfg = *cfg;
    t->inner = cfg->heads * (cfg->channels / cfg->heads);
    enum status s = load_all(t, w, prefix, b, err);
    if (s != STATUS_OK)
        transformer2d_free(t);
    return s;
}

/* --- forward ------------------------------------------------------------------- */

static enum status ws_tensor3(struct workspace *ws, int64_t a, int64_t b, int64_t c,
                              struct tensor *out, struct errbuf *err)
{
    return workspace_tensor(ws, 3, (int64_t[]){a, b, c}, out, err);
}

/* y{B,N,D} = x + to_out(attention(q, k, v)); n{B,N,D}, kv{B,L,Ckv}.  Self-attention
 * (a->proj {3,D,D}): q, k, v = n·[to_q; to_k; to_v]ᵀ in one stacked GEMM; cross: q =
 * to_q(n), then k, v = kv·[to_k; to_v]ᵀ in one — or given (given_kv: k, v {B,L,D}). */
static enum status attention_forward(const struct transformer2d *t, const struct t2d_attention *a,
                                     struct workspace *ws, const struct tensor *n,
                                     const struct tensor *kv, const struct tensor *given_kv,
                                     const struct tensor *x, struct tensor *y,
                                     struct errbuf *err)
{
    int64_t bsz = n->shape[0], nq = n->shape[1], nk = kv->shape[1], d = t->inner;
    const bool self = a->proj.shape[0] == 3;
    const bool project = self || !given_kv;
    struct workspace_mark mark = workspace_mark(ws);
    struct tensor qs, kvs, o; /* qs {1,B,N,D} (cross only); kvs {2|3,B,L,D}; o {B,N,D} */
    enum status s;
    if ((project &&
         (s = workspace_tensor(ws, 4, (int64_t[]){self ? 3 : 2, bsz, nk, d}, &kvs, err)) !=
             STATUS_OK) ||
        (!self && (s = workspace_tensor(ws, 4, (int64_t[]){1, bsz, nq, d}, &qs, err)) !=
                      STATUS_OK) ||
        (s = ws_tensor3(ws, bsz, nq, d, &o, err)) != STATUS_OK)
        goto out;
    if (project && (s = backend_linear_stack(kv, &a->proj, &kvs, err)) != STATUS_OK)
        goto out;
    struct tensor q = self ? tensor_index(&kvs, 0) : tensor_index(&qs, 0);
    const struct tensor k = project ? tensor_index(&kvs, self ? 1 : 0) : given_kv[0];
    const struct tensor v = project ? tensor_index(&kvs, self ? 2 : 1) : given_kv[1];
    if (!self && (s = backend_linear(n, &a->to_q, NULL, NULL, &q, err)) != STATUS_OK)
        goto out;
    struct attention_params p = {
        .heads = t->cfg.heads,
        .scale = 1.0f / sqrtf((float)(d / t->cfg.heads)),
        .causal = false,
    };
    if ((s = backend_attention(&q, &k, &v, &p, &o, err)) != STATUS_OK)
        goto out;
    s = backend_linear(&o, &a->to_out_w, &a->to_out_b, x, y, err);
out:
    workspace_rewind(ws, mark);
    return s;
}

/* y{B,N,D} = x + ff(LayerNorm3(x)): ff.net.0.proj {8D} → GEGLU {4D} → ff.net.2 {D}. */
static enum status feed_forward(const struct transformer2d *t, const struct t2d_block *blk,
                                struct workspace *ws, const struct tensor *x, struct tensor *y,
                                struct errbuf *err)
{
    int64_t bsz = x->shape[0], n = x->shape[1], d = t->inner;
    struct workspace_mark mark = workspace_mark(ws);
    struct tensor nrm, h, g; /* nrm {B,N,D}; h {B,N,8D}; g {B,N,4D} */
    enum status s;
    if ((s = ws_tensor3(ws, bsz, n, d, &nrm, err)) != STATUS_OK ||
        (s = ws_tensor3(ws, bsz, n, 8 * d, &h, err)) != STATUS_OK ||
        (s = ws_tensor3(ws, bsz, n, 4 * d, &g, err)) != STATUS_OK)
        goto out;
    if ((s = backend_layer_norm(x, &blk->norm3_w, &blk->norm3_b, 1e-5f, &nrm, err)) != STATUS_OK ||
        (s = backend_linear(&nrm, &blk->ff_in_w, &blk->ff_in_b, NULL, &h, err)) != STATUS_OK ||
        (s = backend_geglu(&h, &g, err)) != STATUS_OK)
        goto out;
    s = backend_linear(&g, &blk->ff_out_w, &blk->ff_out_b, x, y, err);
out:
    workspace_rewind(ws, mark);
    return s;
}

/* One BasicTransformerBlock: y{B,N,D} from x{B,N,D}; x is clobbered (scratch).
 * cross_kv: its cross-attention's keys and values, or NULL (projected here). */
static enum status block_forward(const struct transformer2d *t, const struct t2d_block *blk,
                                 struct workspace *ws, struct tensor *x,
                                 const struct tensor *context, const struct tensor *cross_kv,
                                 struct tensor *y, struct errbuf *err)
{
    struct workspace_mark mark = workspace_mark(ws);
    struct tensor nrm; /* {B,N,D}: LayerNorm output feeding each sub-layer */
    enum status s = ws_tensor3(ws, x->shape[0], x->shape[1], t->inner, &nrm, err);
    if (s != STATUS_OK)
        goto out;
    /* self-attention: y = x + attn1(LN1(x)) */
    if ((s = backend_layer_norm(x, &blk->norm1_w, &blk->norm1_b, 1e-5f, &nrm, err)) != STATUS_OK ||
        (s = attention_forward(t, &blk->attn1, ws, &nrm, &nrm, NULL, x, y, err)) != STATUS_OK)
        goto out;
    /* cross-attention: x = y + attn2(LN2(y), context) */
    if ((s = backend_layer_norm(y, &blk->norm2_w, &blk->norm2_b, 1e-5f, &nrm, err)) != STATUS_OK ||
        (s = attention_forward(t, &blk->attn2, ws, &nrm, context, cross_kv, y, x, err)) !=
            STATUS_OK)
        goto out;
    /* feed-forward: y = x + ff(LN3(x)) */
    s = feed_forward(t, blk, ws, x, y, err);
out:
    workspace_rewind(ws, mark);
    return s;
}

/* Tokens {B,N,D} after GroupNorm and proj_in. */
static enum status project_in(const struct transformer2d *t, struct workspace *ws,
                              const struct tensor *x, struct tensor *tokens, struct errbuf *err)
{
    struct workspace_mark mark = workspace_mark(ws);
    struct tensor nrm; /* {B,H,W,C} */
    struct group_norm_params gp = {.groups = t->cfg.groups, .eps = 1e-6f, .silu = false};
    enum status s = workspace_tensor(ws, 4, x->shape, &nrm, err);
    if (s != STATUS_OK)
        goto out;
    if ((s = backend_group_norm(x, &t->norm_w, &t->norm_b, &gp, &nrm, err)) != STATUS_OK)
        goto out;
    int64_t bsz = x->shape[0], n = x->shape[1] * x->shape[2];
    tensor_reshape(&nrm, 3, (int64_t[]){bsz, n, t->cfg.channels}); /* {B,N,C} */
    s = backend_linear(&nrm, &t->proj_in_w, &t->proj_in_b, NULL, tokens, err);
out:
    workspace_rewind(ws, mark);
    return s;
}

/* Whether cross_kv holds 2 × layers tensors {B,L,D} for context {B,L,·}. */
static bool cross_kv_fits(const struct transformer2d *t, const struct tensor *context,
                          const struct tensor *cross_kv)
{
    for (int i = 0; i < 2 * t->cfg.layers; i++) {
        const struct tensor *k = &cross_kv[i];
        if (k->ndim != 3 || k->shape[0] != context->shape[0] ||
            k->shape[1] != context->shape[1] || k->shape[2] != t->inner)
            return false;
    }
    return true;
}

enum status transformer2d_forward(const struct transformer2d *t, struct workspace *ws,
                                  const struct tensor *x, const struct tensor *context,
                                  const struct tensor *cross_kv, struct tensor *out,
                                  struct errbuf *err)
{
    if (x->ndim != 4 || x->shape[3] != t->cfg.channels || !tensor_same_shape(x, out) ||
        context->ndim != 3 || context->shape[0] != x->shape[0] ||
        context->shape[2] != t->cfg.cross_dim)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "transformer2d: x must be {B,H,W,%d}, out the same, context "
                           "{B,L,%d}", t->cfg.channels, t->cfg.cross_dim);
    if (cross_kv ? !cross_kv_fits(t, context, cross_kv) : t->cfg.external_cross_kv)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "transformer2d: cross_kv must be %d tensors {B,L,%d}%s",
                           2 * t->cfg.layers, t->inner,
                           cross_kv ? "" : " (its to_k/to_v were not loaded)");
    int64_t bsz = x->shape[0], n = x->shape[1] * x->shape[2];
    struct workspace_mark mark = workspace_mark(ws);
    struct tensor a, b2; /* {B,N,D} ping-pong token buffers */
    enum status s;
    if ((s = ws_tensor3(ws, bsz, n, t->inner, &a, err)) != STATUS_OK ||
        (s = ws_tensor3(ws, bsz, n, t->inner, &b2, err)) != STATUS_OK ||
        (s = project_in(t, ws, x, &a, err)) != STATUS_OK)
        goto out;
    struct tensor *cur = &a, *next = &b2;
    for (int i = 0; i < t->cfg.layers; i++) {
        if ((s = block_forward(t, &t->blocks[i], ws, cur, context,
                               cross_kv ? &cross_kv[2 * i] : NULL, next, err)) != STATUS_OK)
            goto out;
        struct tensor *tmp = cur;
        cur = next;
        next = tmp;
    }
    /* out = x + proj_out(tokens), on the {B,N,C} views */
    struct tensor xv = *x, ov = *out;
    tensor_reshape(&xv, 3, (int64_t[]){bsz, n, t->cfg.channels});
    tensor_reshape(&ov, 3, (int64_t[]){bsz, n, t->cfg.channels});
    s = backend_linear(cur, &t->proj_out_w, &t->proj_out_b, &xv, &ov, err);
out:
    workspace_rewind(ws, mark);
    return s;
}
