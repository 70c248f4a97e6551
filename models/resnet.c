/* models/resnet.c — see resnet.h. */
#include "models/resnet.h"

#include <stdio.h>
#include <string.h>

#define RESNET_NAME_MAX 512

/* "<prefix>.<leaf>.<field>" into buf (an over-long name is cut and then simply not
 * found, which the loader reports naming it). */
static const char *param_name(char *buf, size_t cap, const char *prefix, const char *leaf,
                              const char *field)
{
    int n = snprintf(buf, cap, "%s.%s.%s", prefix, leaf, field);
    if (n < 0 || (size_t)n >= cap)
        buf[cap - 1] = '\0';
    return buf;
}

/* A GroupNorm's weight and bias {c}. */
static enum status load_norm(const struct weights *w, const char *prefix, const char *leaf,
                             int64_t c, struct backend *b, struct tensor *gamma,
                             struct tensor *beta, struct errbuf *err)
{
    char name[RESNET_NAME_MAX];
    enum status s = weights_load(w, param_name(name, sizeof name, prefix, leaf, "weight"), 1,
                                 (int64_t[]){c}, b, gamma, err);
    if (s != STATUS_OK)
        return s;
    s = weights_load(w, param_name(name, sizeof name, prefix, leaf, "bias"), 1, (int64_t[]){c}, b, beta,
                     err);
    if (s != STATUS_OK)
        backend_free(gamma);
    return s;
}

/* A convolution's weight {cout,k,k,cin} (engine layout) and bias {cout}. */
static enum status load_conv(const struct weights *w, const char *prefix, const char *leaf,
                             int64_t cout, int64_t cin, int64_t k, struct backend *b,
                             struct tensor *weight, struct tensor *bias, struct errbuf *err)
{
    char name[RESNET_NAME_MAX];
    enum status s = weights_load_conv(w, param_name(name, sizeof name, prefix, leaf, "weight"), cout, cin,
                                      k, k, b, weight, err);
    if (s != STATUS_OK)
        return s;
    s = weights_load(w, param_name(name, sizeof name, prefix, leaf, "bias"), 1, (int64_t[]){cout}, b, bias,
                     err);
    if (s != STATUS_OK)
        backend_free(weight);
    return s;
}

/* A linear layer's weight {cout,cin} and bias {cout}. */
static enum status load_linear(const struct weights *w, const char *prefix, const char *leaf,
                               int64_t cout, int64_t cin, struct backend *b,
                               struct tensor *weight, struct tensor *bias, struct errbuf *err)
{
    char name[RESNET_NAME_MAX];
    enum status s = weights_load_linear(w, param_name(name, sizeof name, prefix, leaf, "weight"), cout,
                                        cin, b, weight, err);
    if (s != STATUS_OK)
        return s;
    s = weights_load(w, param_name(name, sizeof name, prefix, leaf, "bias"), 1, (int64_t[]){cout}, b, bias,
                     err);
    if (s != STATUS_OK)
        backend_free(weight);
    return s;
}

static enum status check_config(const struct resnet_config *c, const char *prefix,
                                struct errbuf *err)
{
    if (c->in_channels <= 0 || c->out_channels <= 0 || c->temb_channels < 0 || c->groups <= 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "%s: bad resnet sizes (in %d, out %d, temb %d, groups %d)", prefix,
                           c->in_channels, c->out_channels, c->temb_channels, c->groups);
    if (c->in_channels % c->groups || c->out_channels % c->groups)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "%s: channels %d/%d not divisible by %d groups", prefix,
                           c->in_channels, c->out_channels, c->groups);
    if (!(c->eps > 0.0f) || !(c->output_scale_factor > 0.0f))
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "%s: eps and output_scale_factor must be positive", prefix);
    return STATUS_OK;
}

static enum status load_params(const struct weights *w, const char *prefix,
                               struct backend *b, struct resnet_block *r, struct errbuf *err)
{
    const int64_t cin = r->cfg.in_channels, cout = r->cfg.out_channels;
    enum status s = load_norm(w, prefix, "norm1", cin, b, &r->norm1_w, &r->norm1_b, err);
    if (s == STATUS_OK)
        s = load_conv(w, prefix, "conv1", cout, cin, 3, b, &r->conv1_w, &r->conv1_b, err);
    if (s == STATUS_OK && r->cfg.temb_channels > 0 && !r->cfg.temb_projected)
        s = load_linear(w, prefix, "time_emb_proj", cout, r->cfg.temb_channels, b, &r->temb_w,
                        &r->temb_b, err);
    if (s == STATUS_OK)
        s = load_norm(w, prefix, "norm2", cout, b, &r->norm2_w, &r->norm2_b, err);
    if (s == STATUS_OK)
        s = load_conv(w, prefix, "conv2", cout, cout, 3, b, &r->conv2_w, &r->conv2_b, err);
    if (s == STATUS_OK && r->has_shortcut)
        s = load_conv(w, prefix, "conv_shortcut", cout, cin, 1, b, &r->short_w, &r->short_b,
                      err);
    return s;
}

enum status resnet_load(const struct weights *w, const char *prefix,
                        const struct resnet_config *cfg, struct backend *b,
                        struct resnet_block *out, struct errbuf *err)
{
    memset(out, 0, sizeof *out);
    enum status s = check_config(cfg, prefix, err);
    if (s != STATUS_OK)
        return s;
    out->cfg = *cfg;
    out->has_shortcut = cfg->in_channels != cfg->out_channels;
    s = load_params(w, prefix, b, out, err);
    if (s != STATUS_OK)
        resnet_free(out);
    return s;
}

void resnet_free(struct resnet_block *r)
{
    struct tensor *all[] = {&r->norm1_w, &r->norm1_b, &r->conv1_w, &r->conv1_b,
                            &r->temb_w,  &r->temb_b,  &r->norm2_w, &r->norm2_b,
                            &r->conv2_w, &r->conv2_b, &r->short_w, &r->short_b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        backend_free(all[i]);
}

/* t{N,Cout} = time_emb_proj(temb_silu): added to h before norm2 (the norm's shift). */
static enum status project_temb(const struct resnet_block *r, struct workspace *ws,
                                const struct tensor *temb_silu, int64_t n, struct tensor *t,
                                struct errbuf *err)
{
    TRY(workspace_tensor(ws, 2, (int64_t[]){n, r->cfg.out_channels}, t, err));
    return backend_linear(temb_silu, &r->temb_w, &r->temb_b, NULL, t, err);
}

/* temb is SiLU(temb){N,temb_channels} (projected false) or the block's projection
 * {N,Cout} (projected true), as the block was loaded for. */
static enum status check_inputs(const struct resnet_block *r, const struct tensor *x,
                                const struct tensor *temb, bool projected,
                                const struct tensor *y, struct errbuf *err)
{
    const struct resnet_config *c = &r->cfg;
    if (x->ndim != 4 || x->shape[3] != c->in_channels || y->ndim != 4 ||
        y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] ||
        y->shape[2] != x->shape[2] || y->shape[3] != c->out_channels)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "resnet: x must be {N,H,W,%d} and y {N,H,W,%d}", c->in_channels,
                           c->out_channels);
    if (c->temb_channels > 0 && projected != c->temb_projected)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           projected ? "resnet: the block projects its time embedding itself "
                                       "(resnet_forward)"
                                     : "resnet: the block's time embedding is projected by the "
                                       "caller (resnet_forward_projected)");
    const int64_t temb_width = projected ? c->out_channels : c->temb_channels;
    if (c->temb_channels > 0 && (!temb || temb->ndim != 2 || temb->shape[0] != x->shape[0] ||
                                 temb->shape[1] != temb_width))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "resnet: temb must be {N,%lld}",
                           (long long)temb_width);
    if (x->data == y->data)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "resnet: y must not alias x");
    return STATUS_OK;
}

/* The block body; intermediates from ws (the caller rewinds).  temb as check_inputs
 * took it. */
static enum status forward_body(const struct resnet_block *r, struct workspace *ws,
                                const struct tensor *x, const struct tensor *temb,
                                struct tensor *y, struct errbuf *err)
{
    const struct resnet_config *c = &r->cfg;
    const int64_t n = x->shape[0], hh = x->shape[1], ww = x->shape[2];
    const struct group_norm_params gn = {.groups = c->groups, .eps = c->eps, .silu = true};
    struct group_norm_params gn2 = gn; /* norm2 of h + time_emb_proj(temb) */
    const struct conv2d_params k3 = {.stride = 1, .padding = 1}, k1 = {.stride = 1, .padding = 0};
    struct tensor a, h; /* a{N,H,W,Cin}: SiLU(norm1(x)); h{N,H,W,Cout}: conv1 → norm2 */
    enum status s = workspace_tensor(ws, 4, (int64_t[]){n, hh, ww, c->in_channels}, &a, err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 4, (int64_t[]){n, hh, ww, c->out_channels}, &h, err);
    if (s == STATUS_OK)
        s = backend_group_norm(x, &r->norm1_w, &r->norm1_b, &gn, &a, err);
    if (s == STATUS_OK)
        s = backend_conv2d(&a, &r->conv1_w, &r->conv1_b, NULL, &k3, &h, err);
    struct tensor t; /* {N,Cout} */
    if (s == STATUS_OK && c->temb_channels > 0 && c->temb_projected) {
        gn2.shift = temb;
    } else if (s == STATUS_OK && c->temb_channels > 0) {
        s = project_temb(r, ws, temb, n, &t, err);
        gn2.shift = &t;
    }
    if (s == STATUS_OK)
        s = backend_group_norm(&h, &r->norm2_w, &r->norm2_b, &gn2, &h, err);
    const struct tensor *shortcut = x; /* {N,H,W,Cout} */
    struct tensor sc;
    if (s == STATUS_OK && r->has_shortcut) {
        /* a is dead after conv1: the shortcut {N,H,W,Cout} reuses it when Cout ≤ Cin */
        if (c->out_channels <= c->in_channels) {
            sc = a;
            sc.shape[3] = c->out_channels;
        } else {
            s = workspace_tensor(ws, 4, (int64_t[]){n, hh, ww, c->out_channels}, &sc, err);
        }
        if (s == STATUS_OK)
            s = backend_conv2d(x, &r->short_w, &r->short_b, NULL, &k1, &sc, err);
        shortcut = &sc;
    }
    if (s == STATUS_OK)
        s = backend_conv2d(&h, &r->conv2_w, &r->conv2_b, shortcut, &k3, y, err);
    return s;
}

/* y /= output_scale_factor (diffusers divides the sum). */
static enum status apply_output_scale(const struct resnet_block *r, struct tensor *y,
                                      struct errbuf *err)
{
    if (r->cfg.output_scale_factor == 1.0f)
        return STATUS_OK;
    struct tensor flat = *y; /* {1, numel}: one row, one scalar */
    tensor_reshape(&flat, 2, (int64_t[]){1, tensor_numel(y)});
    const float alpha = 1.0f / r->cfg.output_scale_factor, beta = 0.0f;
    return backend_axpby(&flat, &flat, &alpha, &beta, &flat, err);
}

/* Checks, then the body over ws (rewound after), then the output scale. */
static enum status forward(const struct resnet_block *r, struct workspace *ws,
                           const struct tensor *x, const struct tensor *temb, bool projected,
                           struct tensor *y, struct errbuf *err)
{
    enum status s = check_inputs(r, x, temb, projected, y, err);
    if (s != STATUS_OK)
        return s;
    struct workspace_mark m = workspace_mark(ws);
    s = forward_body(r, ws, x, temb, y, err);
    workspace_rewind(ws, m);
    if (s == STATUS_OK)
        s = apply_output_scale(r, y, err);
    return s;
}

enum status resnet_forward(const struct resnet_block *r, struct workspace *ws,
                           const struct tensor *x, const struct tensor *temb_silu,
                           struct tensor *y, struct errbuf *err)
{
    return forward(r, ws, x, temb_silu, false, y, err);
}

enum status resnet_forward_projected(const struct resnet_block *r, struct workspace *ws,
                                     const struct tensor *x, const struct tensor *temb_proj,
                                     struct tensor *y, struct errbuf *err)
{
    return forward(r, ws, x, temb_proj, true, y, err);
}
