/* models/unet.c — UNet2DConditionModel load and forward; see unet.h.
 *
 * Forward memory plan (all from the caller's workspace, rewound at the end):
 *   two ping-pong buffers sized for the largest hidden state that is not a skip;
 *   the skip connections (conv_in output, every down layer output, every downsample
 *   output) pushed as they are made and consumed in reverse by the up blocks;
 *   every layer's own scratch above them, rewound when the layer returns.
 * Every resnet's time_emb_proj(SiLU(temb)) is computed at the start of the pass, one
 * backend_linear_stack (+ one bias add) per resnet width over weights stacked at load
 * (an SD1.5 step: 3 calls, not 22 GEMMs of 2–32 rows), and stays for the pass.
 * Likewise every cross-attention's keys and values (to_k, to_v of the context, the
 * same for the whole pass): one backend_linear_stack per transformer width over the
 * blocks' to_k/to_v stacked at load (SD1.5: 3 calls, not 16 stacked GEMMs of 2·77
 * rows), the transformers given their slices (transformer2d external_cross_kv).
 */
#include "models/unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/resnet.h"
#include "models/transformer2d.h"

#define NAME_MAX_ 256
#define MAX_SKIPS (1 + UNET_MAX_BLOCKS * (UNET_MAX_LAYERS + 1))
#define MAX_RESNETS (UNET_MAX_BLOCKS * (2 * UNET_MAX_LAYERS + 1) + 2)
#define MAX_ATTNS MAX_RESNETS /* a transformer follows some of the resnets */
#define MAX_TLAYERS 16        /* blocks per transformer (transformer_layers_per_block) */

struct unet_down_block {
    int n_layers;
    struct resnet_block resnets[UNET_MAX_LAYERS];
    struct transformer2d attns[UNET_MAX_LAYERS]; /* cross-attention blocks only */
    bool has_attn, has_downsample;
    struct tensor down_w, down_b; /* {C,3,3,C}, {C}: conv stride 2 */
};

struct unet_up_block {
    int n_layers; /* layers_per_block + 1 */
    struct resnet_block resnets[UNET_MAX_LAYERS + 1];
    struct transformer2d attns[UNET_MAX_LAYERS + 1];
    bool has_attn, has_upsample;
    struct tensor up_w, up_b; /* {C,3,3,C}, {C}: conv after nearest 2× */
};

/* The time-embedding projections of the resnets of one width, stacked in loading
 * order (their time_emb_proj weights and biases). */
struct unet_temb_group {
    int64_t cout;
    int n;
    struct tensor w, b; /* {G,Cout,T}, {G,1,Cout} */
};

/* The cross-attention keys/values of the transformers of one inner width D and context
 * width: to_k and to_v of each of their blocks, in loading order, stacked. */
struct unet_kv_group {
    int inner, cross_dim, n; /* D; Ccontext; blocks in the group */
    struct tensor w;    /* {2n, D, Ccontext}: block s's to_k at 2s, to_v at 2s + 1 */
};

struct unet_model {
    struct unet_config cfg;
    struct backend *backend;
    struct tensor conv_in_w, conv_in_b;   /* {C0,k,k,Cin}, {C0} */
    struct tensor time_l1_w, time_l1_b;   /* {T,C0}, {T}; T = 4·C0 */
    struct tensor time_l2_w, time_l2_b;   /* {T,T}, {T} */
    struct unet_down_block down[UNET_MAX_BLOCKS];
    struct resnet_block mid_resnets[2];
    struct transformer2d mid_attn;
    struct unet_up_block up[UNET_MAX_BLOCKS];
    struct tensor norm_out_w, norm_out_b; /* {C0} */
    struct tensor conv_out_w, conv_out_b; /* {Cout,k,k,C0}, {Cout} */
    struct unet_temb_group temb[UNET_MAX_BLOCKS]; /* one per resnet width */
    int n_temb;
    const struct resnet_block *temb_block[MAX_RESNETS]; /* resnet k in loading order: */
    int temb_group[MAX_RESNETS], temb_slot[MAX_RESNETS]; /* its group and place in it */
    int n_temb_blocks;
    struct unet_kv_group kv[UNET_MAX_BLOCKS]; /* one per transformer width */
    int n_kv;
    const struct transformer2d *kv_attn[MAX_ATTNS]; /* transformer k in loading order: */
    int kv_group[MAX_ATTNS], kv_slot[MAX_ATTNS];    /* its group, its first block's slot */
    int n_kv_attns;
};

/* --- loading ------------------------------------------------------------------- */

/* "<prefix>.<field>" into name (an over-long name is cut, then not found, and the
 * loader's message names it). */
static const char *field_name(char *name, size_t cap, const char *prefix, const char *field)
{
    int n = snprintf(name, cap, "%s.%s", prefix, field);
    if (n < 0 || (size_t)n >= cap)
        name[cap - 1] = '\0';
    return name;
}

static enum status load_vec(const struct weights *w, const char *name, int64_t n,
                            struct backend *b, struct tensor *out, struct errbuf *err)
{
    return weights_load(w, name, 1, (int64_t[]){n}, b, out, err);
}

/* "<prefix>.weight" {cout,cin,k,k} (stored OIHW, loaded OHWI) and "<prefix>.bias". */
static enum status load_conv(const struct weights *w, const char *prefix, int64_t cout,
                             int64_t cin, int64_t k, struct backend *b, struct tensor *wt,
                             struct tensor *bias, struct errbuf *err)
{
    char name[NAME_MAX_];
    TRY(weights_load_conv(w, field_name(name, sizeof name, prefix, "weight"), cout, cin, k, k, b,
                          wt, err));
    return load_vec(w, field_name(name, sizeof name, prefix, "bias"), cout, b, bias, err);
}

static enum status load_linear(const struct weights *w, const char *prefix, int64_t n_out,
                               int64_t n_in, struct backend *b, struct tensor *wt,
                               struct tensor *bias, struct errbuf *err)
{
    char name[NAME_MAX_];
    TRY(weights_load_linear(w, field_name(name, sizeof name, prefix, "weight"), n_out, n_in, b,
                            wt, err));
    return load_vec(w, field_name(name, sizeof name, prefix, "bias"), n_out, b, bias, err);
}

static enum status load_resnet(const struct unet_model *m, const struct weights *w,
                               const char *prefix, int cin, int cout, struct resnet_block *r,
                               struct errbuf *err)
{
    struct resnet_config rc = {
        .in_channels = cin,
        .out_channels = cout,
        .temb_channels = m->cfg.time_embed_dim,
        .temb_projected = true, /* load_temb_groups stacks them */
        .groups = m->cfg.norm_num_groups,
        .eps = m->cfg.norm_eps,
        .output_scale_factor = 1.0f,
    };
    return resnet_load(w, prefix, &rc, m->backend, r, err);
}

/* The Transformer2DModel of a block whose config index is `cfg_block` (heads and
 * cross_attention_dim are per down block; up block i uses entry n−1−i). */
static enum status load_attn(const struct unet_model *m, const struct weights *w,
                             const char *prefix, int channels, int cfg_block, int layers,
                             struct transformer2d *t, struct errbuf *err)
{
    struct transformer2d_config tc = {
        .channels = channels,
        .heads = m->cfg.heads[cfg_block],
        .layers = layers,
        .cross_dim = m->cfg.cross_attention_dim[cfg_block],
        .groups = m->cfg.norm_num_groups,
        .linear_projection = m->cfg.use_linear_projection,
        .upcast_attention = m->cfg.upcast_attention,
        .external_cross_kv = true, /* load_kv_groups stacks them */
    };
    return transformer2d_load(t, w, prefix, &tc, m->backend, err);
}

static enum status load_down_block(struct unet_model *m, const struct weights *w, int i,
                                   struct errbuf *err)
{
    const struct unet_config *c = &m->cfg;
    struct unet_down_block *d = &m->down[i];
    int cout = c->block_out_channels[i];
    int cin = i == 0 ? c->block_out_channels[0] : c->block_out_channels[i - 1];
    char prefix[NAME_MAX_];
    d->n_layers = c->layers_per_block[i];
    d->has_attn = c->down_types[i] == UNET_BLOCK_CROSS_ATTN;
    d->has_downsample = i < c->n_blocks - 1;
    for (int j = 0; j < d->n_layers; j++) {
        snprintf(prefix, sizeof prefix, "down_blocks.%d.resnets.%d", i, j);
        TRY(load_resnet(m, w, prefix, j == 0 ? cin : cout, cout, &d->resnets[j], err));
        if (!d->has_attn)
            continue;
        snprintf(prefix, sizeof prefix, "down_blocks.%d.attentions.%d", i, j);
        TRY(load_attn(m, w, prefix, cout, i, c->transformer_layers_down[i][j], &d->attns[j],
                      err));
    }
    if (!d->has_downsample)
        return STATUS_OK;
    snprintf(prefix, sizeof prefix, "down_blocks.%d.downsamplers.0.conv", i);
    return load_conv(w, prefix, cout, cout, 3, m->backend, &d->down_w, &d->down_b, err);
}

static enum status load_mid_block(struct unet_model *m, const struct weights *w,
                                  struct errbuf *err)
{
    const struct unet_config *c = &m->cfg;
    int last = c->n_blocks - 1, ch = c->block_out_channels[last];
    TRY(load_resnet(m, w, "mid_block.resnets.0", ch, ch, &m->mid_resnets[0], err));
    TRY(load_attn(m, w, "mid_block.attentions.0", ch, last, c->transformer_layers_mid,
                  &m->mid_attn, err));
    return load_resnet(m, w, "mid_block.resnets.1", ch, ch, &m->mid_resnets[1], err);
}

/* Up block i (diffusers' order: deepest first).  Resnet j sees the previous hidden
 * state (prev_output_channel for j = 0, else out) concatenated with a skip (the
 * shallower level's channels for the last resnet, else out). */
static enum status load_up_block(struct unet_model *m, const struct weights *w, int i,
                                 struct errbuf *err)
{
    const struct unet_config *c = &m->cfg;
    struct unet_up_block *u = &m->up[i];
    int n = c->n_blocks, rev = n - 1 - i; /* config index of this level */
    int cout = c->block_out_channels[rev];
    int prev = c->block_out_channels[i == 0 ? n - 1 : rev + 1];
    int skip_in = c->block_out_channels[rev == 0 ? 0 : rev - 1];
    char prefix[NAME_MAX_];
    u->n_layers = c->layers_per_block[rev] + 1;
    u->has_attn = c->up_types[i] == UNET_BLOCK_CROSS_ATTN;
    u->has_upsample = i < n - 1;
    for (int j = 0; j < u->n_layers; j++) {
        int res_skip = j == u->n_layers - 1 ? skip_in : cout;
        int res_in = j == 0 ? prev : cout;
        snprintf(prefix, sizeof prefix, "up_blocks.%d.resnets.%d", i, j);
        TRY(load_resnet(m, w, prefix, res_in + res_skip, cout, &u->resnets[j], err));
        if (!u->has_attn)
            continue;
        snprintf(prefix, sizeof prefix, "up_blocks.%d.attentions.%d", i, j);
        TRY(load_attn(m, w, prefix, cout, rev, c->transformer_layers_up[i][j], &u->attns[j],
                      err));
    }
    if (!u->has_upsample)
        return STATUS_OK;
    snprintf(prefix, sizeof prefix, "up_blocks.%d.upsamplers.0.conv", i);
    return load_conv(w, prefix, cout, cout, 3, m->backend, &u->up_w, &u->up_b, err);
}

/* Resnet k in loading order (down blocks, mid block, up blocks) and its weights
 * prefix, or NULL past the last. */
static const struct resnet_block *resnet_at(const struct unet_model *m, int k, char *prefix,
                                            size_t cap)
{
    for (int i = 0; i < m->cfg.n_blocks; k -= m->down[i].n_layers, i++)
        if (k < m->down[i].n_layers) {
            snprintf(prefix, cap, "down_blocks.%d.resnets.%d", i, k);
            return &m->down[i].resnets[k];
        }
    if (k < 2) {
        snprintf(prefix, cap, "mid_block.resnets.%d", k);
        return &m->mid_resnets[k];
    }
    k -= 2;
    for (int i = 0; i < m->cfg.n_blocks; k -= m->up[i].n_layers, i++)
        if (k < m->up[i].n_layers) {
            snprintf(prefix, cap, "up_blocks.%d.resnets.%d", i, k);
            return &m->up[i].resnets[k];
        }
    return NULL;
}

/* Every resnet's place in the group of its width (groups in order of first use). */
static enum status assign_temb_groups(struct unet_model *m, struct errbuf *err)
{
    char prefix[NAME_MAX_];
    const struct resnet_block *r;
    for (int k = 0; (r = resnet_at(m, k, prefix, sizeof prefix)) != NULL; k++) {
        if (k == MAX_RESNETS)
            return status_fail(err, STATUS_INTERNAL, "unet: more than %d resnets", MAX_RESNETS);
        int g = 0;
        while (g < m->n_temb && m->temb[g].cout != r->cfg.out_channels)
            g++;
        if (g == m->n_temb) {
            if (g == UNET_MAX_BLOCKS)
                return status_fail(err, STATUS_INTERNAL, "unet: more than %d resnet widths",
                                   UNET_MAX_BLOCKS);
            m->temb[m->n_temb++].cout = r->cfg.out_channels;
        }
        m->temb_block[k] = r;
        m->temb_group[k] = g;
        m->temb_slot[k] = m->temb[g].n++;
        m->n_temb_blocks = k + 1;
    }
    return STATUS_OK;
}

/* Group g's stacked weights and biases from the resnets' "<prefix>.time_emb_proj.*". */
static enum status load_temb_group(struct unet_model *m, const struct weights *w, int g,
                                   char (*names)[NAME_MAX_], struct errbuf *err)
{
    struct unet_temb_group *tg = &m->temb[g];
    const char *wn[MAX_RESNETS], *bn[MAX_RESNETS];
    char prefix[NAME_MAX_];
    for (int k = 0; k < m->n_temb_blocks; k++) {
        if (m->temb_group[k] != g)
            continue;
        const int slot = m->temb_slot[k];
        resnet_at(m, k, prefix, sizeof prefix);
        wn[slot] = field_name(names[2 * slot], NAME_MAX_, prefix, "time_emb_proj.weight");
        bn[slot] = field_name(names[2 * slot + 1], NAME_MAX_, prefix, "time_emb_proj.bias");
    }
    TRY(weights_load_linear_stack(w, wn, tg->n, tg->cout, m->cfg.time_embed_dim, m->backend,
                                  &tg->w, err));
    return weights_load_vec_stack(w, bn, tg->n, tg->cout, m->backend, &tg->b, err);
}

/* The resnets' time-embedding projections, stacked per width (see the file comment). */
static enum status load_temb_groups(struct unet_model *m, const struct weights *w,
                                    struct errbuf *err)
{
    TRY(assign_temb_groups(m, err));
    char(*names)[NAME_MAX_] = malloc(2 * MAX_RESNETS * sizeof *names);
    if (!names)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "unet: out of memory");
    enum status s = STATUS_OK;
    for (int g = 0; g < m->n_temb && s == STATUS_OK; g++)
        s = load_temb_group(m, w, g, names, err);
    free(names);
    return s;
}

/* Transformer k in loading order (down blocks', the mid block's, up blocks') and its
 * weights prefix, or NULL past the last. */
static const struct transformer2d *attn_at(const struct unet_model *m, int k, char *prefix,
                                           size_t cap)
{
    for (int i = 0; i < m->cfg.n_blocks; i++) {
        const int n = m->down[i].has_attn ? m->down[i].n_layers : 0;
        if (k < n) {
            snprintf(prefix, cap, "down_blocks.%d.attentions.%d", i, k);
            return &m->down[i].attns[k];
        }
        k -= n;
    }
    if (k == 0) {
        snprintf(prefix, cap, "mid_block.attentions.0");
        return &m->mid_attn;
    }
    k--;
    for (int i = 0; i < m->cfg.n_blocks; i++) {
        const int n = m->up[i].has_attn ? m->up[i].n_layers : 0;
        if (k < n) {
            snprintf(prefix, cap, "up_blocks.%d.attentions.%d", i, k);
            return &m->up[i].attns[k];
        }
        k -= n;
    }
    return NULL;
}

/* Every transformer's place in the group of its inner and context widths (groups in
 * order of first use). */
static enum status assign_kv_groups(struct unet_model *m, struct errbuf *err)
{
    char prefix[NAME_MAX_];
    const struct transformer2d *t;
    for (int k = 0; (t = attn_at(m, k, prefix, sizeof prefix)) != NULL; k++) {
        if (k == MAX_ATTNS || t->cfg.layers > MAX_TLAYERS)
            return status_fail(err, STATUS_UNSUPPORTED,
                               "unet: %s: more than %d transformers or %d blocks in one",
                               prefix, MAX_ATTNS, MAX_TLAYERS);
        int g = 0;
        while (g < m->n_kv &&
               (m->kv[g].inner != t->inner || m->kv[g].cross_dim != t->cfg.cross_dim))
            g++;
        if (g == m->n_kv) {
            if (g == UNET_MAX_BLOCKS)
                return status_fail(err, STATUS_INTERNAL, "unet: more than %d transformer widths",
                                   UNET_MAX_BLOCKS);
            m->kv[g].inner = t->inner;
            m->kv[g].cross_dim = t->cfg.cross_dim;
            m->n_kv++;
        }
        m->kv_attn[k] = t;
        m->kv_group[k] = g;
        m->kv_slot[k] = m->kv[g].n;
        m->kv[g].n += t->cfg.layers;
        m->n_kv_attns = k + 1;
    }
    return STATUS_OK;
}

/* Group g's stacked to_k/to_v from "<prefix>.transformer_blocks.<i>.attn2.to_{k,v}". */
static enum status load_kv_group(struct unet_model *m, const struct weights *w, int g,
                                 struct errbuf *err)
{
    struct unet_kv_group *kg = &m->kv[g];
    char(*names)[NAME_MAX_] = malloc(2 * (size_t)kg->n * sizeof *names);
    const char **np = malloc(2 * (size_t)kg->n * sizeof *np);
    if (!names || !np) {
        free(names);
        free(np);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "unet: out of memory");
    }
    char prefix[64]; /* "up_blocks.7.attentions.8" at most */
    for (int k = 0; k < m->n_kv_attns; k++) {
        if (m->kv_group[k] != g)
            continue;
        const struct transformer2d *t = attn_at(m, k, prefix, sizeof prefix);
        for (int i = 0; i < t->cfg.layers; i++) {
            const int s = m->kv_slot[k] + i;
            snprintf(names[2 * s], NAME_MAX_, "%s.transformer_blocks.%d.attn2.to_k.weight",
                     prefix, i);
            snprintf(names[2 * s + 1], NAME_MAX_, "%s.transformer_blocks.%d.attn2.to_v.weight",
                     prefix, i);
            np[2 * s] = names[2 * s];
            np[2 * s + 1] = names[2 * s + 1];
        }
    }
    enum status s = weights_load_linear_stack(w, np, 2 * kg->n, kg->inner, kg->cross_dim,
                                              m->backend, &kg->w, err);
    free(names);
    free(np);
    return s;
}

/* The cross-attentions' keys/values projections, stacked per width (file comment). */
static enum status load_kv_groups(struct unet_model *m, const struct weights *w,
                                  struct errbuf *err)
{
    TRY(assign_kv_groups(m, err));
    for (int g = 0; g < m->n_kv; g++)
        TRY(load_kv_group(m, w, g, err));
    return STATUS_OK;
}

static enum status load_all(struct unet_model *m, const struct weights *w, struct errbuf *err)
{
    const struct unet_config *c = &m->cfg;
    struct backend *b = m->backend;
    int c0 = c->block_out_channels[0], t = c->time_embed_dim;
    TRY(load_conv(w, "conv_in", c0, c->in_channels, c->conv_in_kernel, b, &m->conv_in_w,
                  &m->conv_in_b, err));
    TRY(load_linear(w, "time_embedding.linear_1", t, c0, b, &m->time_l1_w, &m->time_l1_b, err));
    TRY(load_linear(w, "time_embedding.linear_2", t, t, b, &m->time_l2_w, &m->time_l2_b, err));
    for (int i = 0; i < c->n_blocks; i++)
        TRY(load_down_block(m, w, i, err));
    TRY(load_mid_block(m, w, err));
    for (int i = 0; i < c->n_blocks; i++)
        TRY(load_up_block(m, w, i, err));
    TRY(load_temb_groups(m, w, err));
    TRY(load_kv_groups(m, w, err));
    TRY(load_vec(w, "conv_norm_out.weight", c0, b, &m->norm_out_w, err));
    TRY(load_vec(w, "conv_norm_out.bias", c0, b, &m->norm_out_b, err));
    return load_conv(w, "conv_out", c->out_channels, c0, c->conv_out_kernel, b, &m->conv_out_w,
                     &m->conv_out_b, err);
}

/* A hand-built config must stay inside the model's fixed arrays; the rest (channels,
 * groups, heads) is checked by resnet_load / transformer2d_load. */
static enum status check_config(const struct unet_config *c, struct errbuf *err)
{
    if (c->n_blocks < 1 || c->n_blocks > UNET_MAX_BLOCKS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "unet: %d blocks (1..%d)", c->n_blocks,
                           UNET_MAX_BLOCKS);
    for (int i = 0; i < c->n_blocks; i++)
        if (c->layers_per_block[i] < 1 || c->layers_per_block[i] > UNET_MAX_LAYERS)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "unet: block %d has %d layers (1..%d)", i, c->layers_per_block[i],
                               UNET_MAX_LAYERS);
    if (c->in_channels < 1 || c->out_channels < 1 || c->conv_in_kernel < 1 ||
        c->conv_in_kernel % 2 == 0 || c->conv_out_kernel < 1 || c->conv_out_kernel % 2 == 0 ||
        c->time_embed_dim < 1 || c->block_out_channels[0] % 2 != 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "unet: bad channels, kernels or time embedding in the config");
    return STATUS_OK;
}

enum status unet_load(const struct weights *w, const struct unet_config *cfg, struct backend *b,
                      struct unet_model **out, struct errbuf *err)
{
    *out = NULL;
    TRY(check_config(cfg, err));
    struct unet_model *m = calloc(1, sizeof *m);
    if (!m)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "unet: out of memory");
    m->cfg = *cfg;
    m->backend = b;
    enum status s = load_all(m, w, err);
    if (s != STATUS_OK) {
        unet_free(m);
        return status_wrap(err, "unet (%s)", weights_label(w));
    }
    *out = m;
    return STATUS_OK;
}

void unet_free(struct unet_model *m)
{
    if (!m)
        return;
    struct tensor *top[] = {&m->conv_in_w,  &m->conv_in_b,  &m->time_l1_w,  &m->time_l1_b,
                            &m->time_l2_w,  &m->time_l2_b,  &m->norm_out_w, &m->norm_out_b,
                            &m->conv_out_w, &m->conv_out_b};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        backend_free(top[i]);
    for (int i = 0; i < UNET_MAX_BLOCKS; i++) {
        for (int j = 0; j < UNET_MAX_LAYERS; j++) {
            resnet_free(&m->down[i].resnets[j]);
            transformer2d_free(&m->down[i].attns[j]);
        }
        for (int j = 0; j <= UNET_MAX_LAYERS; j++) {
            resnet_free(&m->up[i].resnets[j]);
            transformer2d_free(&m->up[i].attns[j]);
        }
        backend_free(&m->down[i].down_w);
        backend_free(&m->down[i].down_b);
        backend_free(&m->up[i].up_w);
        backend_free(&m->up[i].up_b);
    }
    resnet_free(&m->mid_resnets[0]);
    resnet_free(&m->mid_resnets[1]);
    for (int g = 0; g < m->n_temb; g++) {
        backend_free(&m->temb[g].w);
        backend_free(&m->temb[g].b);
    }
    for (int g = 0; g < m->n_kv; g++)
        backend_free(&m->kv[g].w);
    transformer2d_free(&m->mid_attn);
    free(m);
}

const struct unet_config *unet_config(const struct unet_model *m)
{
    return &m->cfg;
}

int unet_in_channels(const struct unet_model *m)
{
    return m->cfg.in_channels;
}

int unet_out_channels(const struct unet_model *m)
{
    return m->cfg.out_channels;
}

int unet_cross_attention_dim(const struct unet_model *m)
{
    return m->cfg.cross_attention_dim[0];
}

/* --- forward ------------------------------------------------------------------- */

/* The state of one forward pass. */
struct pass {
    const struct unet_model *m;
    struct workspace *ws;
    const struct tensor *context; /* {B,L,Cctx} */
    struct tensor temb;           /* {B,T}: SiLU(time_embedding(t)) */
    struct tensor temb_proj[UNET_MAX_BLOCKS]; /* group g: {G,B,Cout}, each resnet's
                                                 time_emb_proj(temb) */
    struct tensor kv[UNET_MAX_BLOCKS]; /* group g: {2n,B,L,D}, each cross-attention's
                                          to_k(context), to_v(context) */
    struct tensor pp[2];          /* {max elems}: ping-pong hidden-state storage */
    struct tensor skips[MAX_SKIPS];
    int n_skips;
    int64_t batch;
};

/* A {B,h,w,c} view over ping-pong buffer i. */
static struct tensor pp_view(const struct pass *p, int i, int64_t h, int64_t w, int64_t c)
{
    struct tensor t = p->pp[i];
    t.ndim = 4;
    t.shape[0] = p->batch;
    t.shape[1] = h;
    t.shape[2] = w;
    t.shape[3] = c;
    return t;
}

/* The index of the ping-pong buffer t does not live in (0 when t is elsewhere). */
static int pp_other(const struct pass *p, const struct tensor *t)
{
    return t->data == p->pp[0].data ? 1 : 0;
}

/* A new skip tensor {B,h,w,c} on top of the workspace. */
static enum status push_skip(struct pass *p, int64_t h, int64_t w, int64_t c, struct tensor **out,
                             struct errbuf *err)
{
    if (p->n_skips == MAX_SKIPS)
        return status_fail(err, STATUS_INTERNAL, "unet: too many skip connections");
    struct tensor *t = &p->skips[p->n_skips];
    *out = t;
    TRY(workspace_tensor(p->ws, 4, (int64_t[]){p->batch, h, w, c}, t, err));
    p->n_skips++;
    return STATUS_OK;
}

/* Largest hidden state held in a ping-pong buffer: resnet outputs of cross-attention
 * down blocks, the mid block, up-block outputs and the upsampled states. */
static int64_t pp_elems(const struct unet_config *c, int64_t batch, int64_t h, int64_t w)
{
    int64_t best = 0;
    for (int i = 0; i < c->n_blocks; i++) {
        /* a stride-2 conv gives ceil(h/2): level i is ceil(h/2^i) */
        int64_t px = ((h + (1 << i) - 1) >> i) * ((w + (1 << i) - 1) >> i);
        int64_t down = px * c->block_out_channels[i];
        int64_t up = down * (i > 0 ? 4 : 1); /* the up block at level i upsamples */
        if (down > best)
            best = down;
        if (up > best)
            best = up;
    }
    return best * batch;
}

/* temb{B,T} = SiLU(linear_2(SiLU(linear_1(sinusoid(timesteps))))). */
static enum status time_embedding(struct pass *p, const float *timesteps, struct errbuf *err)
{
    const struct unet_config *c = &p->m->cfg;
    int64_t c0 = c->block_out_channels[0], t = c->time_embed_dim;
    TRY(workspace_tensor(p->ws, 2, (int64_t[]){p->batch, t}, &p->temb, err));
    struct workspace_mark mark = workspace_mark(p->ws);
    struct tensor e, h; /* e{B,C0} sinusoid; h{B,T} */
    struct timestep_embedding_params tp = {
        .dim = (int)c0,
        .flip_sin_to_cos = c->flip_sin_to_cos,
        .downscale_freq_shift = c->freq_shift,
        .max_period = 10000.0f,
    };
    enum status s;
    if ((s = workspace_tensor(p->ws, 2, (int64_t[]){p->batch, c0}, &e, err)) != STATUS_OK ||
        (s = workspace_tensor(p->ws, 2, (int64_t[]){p->batch, t}, &h, err)) != STATUS_OK ||
        (s = backend_timestep_embedding(timesteps, &tp, &e, err)) != STATUS_OK ||
        (s = backend_linear(&e, &p->m->time_l1_w, &p->m->time_l1_b, NULL, &h, err)) != STATUS_OK ||
        (s = backend_silu(&h, &h, err)) != STATUS_OK ||
        (s = backend_linear(&h, &p->m->time_l2_w, &p->m->time_l2_b, NULL, &p->temb, err)) !=
            STATUS_OK)
        goto out;
    /* every resnet applies SiLU to temb first: do it once here */
    s = backend_silu(&p->temb, &p->temb, err);
out:
    workspace_rewind(p->ws, mark);
    return s;
}

/* Every resnet's time_emb_proj(temb): per width one stacked GEMM and one bias add. */
static enum status temb_projections(struct pass *p, struct errbuf *err)
{
    for (int g = 0; g < p->m->n_temb; g++) {
        const struct unet_temb_group *tg = &p->m->temb[g];
        struct tensor *y = &p->temb_proj[g];
        TRY(workspace_tensor(p->ws, 3, (int64_t[]){tg->n, p->batch, tg->cout}, y, err));
        TRY(backend_linear_stack(&p->temb, &tg->w, y, err));
        TRY(backend_add(y, &tg->b, y, err));
    }
    return STATUS_OK;
}

/* Every cross-attention's keys and values: per width one stacked GEMM. */
static enum status kv_projections(struct pass *p, struct errbuf *err)
{
    const int64_t l = p->context->shape[1];
    for (int g = 0; g < p->m->n_kv; g++) {
        const struct unet_kv_group *kg = &p->m->kv[g];
        struct tensor *y = &p->kv[g];
        TRY(workspace_tensor(p->ws, 4, (int64_t[]){2 * (int64_t)kg->n, p->batch, l, kg->inner},
                             y, err));
        TRY(backend_linear_stack(p->context, &kg->w, y, err));
    }
    return STATUS_OK;
}

/* out = transformer t(x) with its blocks' cross-attention keys and values. */
static enum status run_attn(struct pass *p, const struct transformer2d *t,
                            const struct tensor *x, struct tensor *out, struct errbuf *err)
{
    for (int k = 0; k < p->m->n_kv_attns; k++)
        if (p->m->kv_attn[k] == t) {
            struct tensor kv[2 * MAX_TLAYERS];
            const struct tensor *all = &p->kv[p->m->kv_group[k]];
            for (int i = 0; i < 2 * t->cfg.layers; i++)
                kv[i] = tensor_index(all, 2 * p->m->kv_slot[k] + i);
            return transformer2d_forward(t, p->ws, x, p->context, kv, out, err);
        }
    return status_fail(err, STATUS_INTERNAL, "unet: a transformer without its keys and values");
}

/* y = resnet r(x) with its projection of the time embedding. */
static enum status run_resnet(struct pass *p, const struct resnet_block *r,
                              const struct tensor *x, struct tensor *y, struct errbuf *err)
{
    for (int k = 0; k < p->m->n_temb_blocks; k++)
        if (p->m->temb_block[k] == r) {
            const struct tensor t = tensor_index(&p->temb_proj[p->m->temb_group[k]],
                                                 p->m->temb_slot[k]);
            return resnet_forward_projected(r, p->ws, x, &t, y, err);
        }
    return status_fail(err, STATUS_INTERNAL, "unet: a resnet without its time projection");
}

static enum status conv3x3(const struct tensor *x, const struct tensor *w, const struct tensor *b,
                           int stride, struct tensor *y, struct errbuf *err)
{
    struct conv2d_params cp = {.stride = stride, .padding = 1};
    return backend_conv2d(x, w, b, NULL, &cp, y, err);
}

/* Down block i: every layer's output (and the downsampled state) becomes a skip.
 * *cur is the block's input and becomes its output. */
static enum status down_block(struct pass *p, int i, const struct tensor **cur,
                              struct errbuf *err)
{
    const struct unet_down_block *d = &p->m->down[i];
    int64_t h = (*cur)->shape[1], w = (*cur)->shape[2], c = p->m->cfg.block_out_channels[i];
    for (int j = 0; j < d->n_layers; j++) {
        struct tensor *skip = NULL, mid;
        if (d->has_attn) {
            mid = pp_view(p, pp_other(p, *cur), h, w, c);
            TRY(run_resnet(p, &d->resnets[j], *cur, &mid, err));
            TRY(push_skip(p, h, w, c, &skip, err));
            TRY(run_attn(p, &d->attns[j], &mid, skip, err));
        } else {
            TRY(push_skip(p, h, w, c, &skip, err));
            TRY(run_resnet(p, &d->resnets[j], *cur, skip, err));
        }
        *cur = skip;
    }
    if (d->has_downsample) {
        struct tensor *skip = NULL;
        TRY(push_skip(p, (h + 1) / 2, (w + 1) / 2, c, &skip, err) /* stride 2 rounds up */);
        TRY(conv3x3(*cur, &d->down_w, &d->down_b, 2, skip, err));
        *cur = skip;
    }
    return STATUS_OK;
}

static enum status mid_block(struct pass *p, const struct tensor **cur, struct tensor *a,
                             struct tensor *b, struct errbuf *err)
{
    int64_t h = (*cur)->shape[1], w = (*cur)->shape[2], c = (*cur)->shape[3];
    *a = pp_view(p, 0, h, w, c);
    *b = pp_view(p, 1, h, w, c);
    TRY(run_resnet(p, &p->m->mid_resnets[0], *cur, a, err));
    TRY(run_attn(p, &p->m->mid_attn, a, b, err));
    TRY(run_resnet(p, &p->m->mid_resnets[1], b, a, err));
    *cur = a;
    return STATUS_OK;
}

/* One up-block layer: out = resnet([*cur, skip]) (then attention), into ping-pong. */
static enum status up_layer(struct pass *p, const struct unet_up_block *u, int j,
                            const struct tensor *skip, const struct tensor **cur,
                            struct tensor *hold, struct errbuf *err)
{
    const struct tensor *x = *cur;
    int64_t h = x->shape[1], w = x->shape[2], c = u->resnets[j].cfg.out_channels;
    struct workspace_mark mark = workspace_mark(p->ws);
    struct tensor cat; /* {B,h,w,Cx+Cskip} */
    enum status s = workspace_tensor(p->ws, 4,
                                     (int64_t[]){p->batch, h, w, x->shape[3] + skip->shape[3]},
                                     &cat, err);
    if (s == STATUS_OK)
        s = backend_concat_channels(x, skip, &cat, err);
    /* x has been copied into cat: its buffer may take the resnet output */
    int dst = x->data == p->pp[0].data ? 0 : x->data == p->pp[1].data ? 1 : 0;
    hold[0] = pp_view(p, dst, h, w, c);
    if (s == STATUS_OK)
        s = run_resnet(p, &u->resnets[j], &cat, &hold[0], err);
    workspace_rewind(p->ws, mark);
    *cur = &hold[0];
    if (s != STATUS_OK || !u->has_attn)
        return s;
    hold[1] = pp_view(p, 1 - dst, h, w, c);
    s = run_attn(p, &u->attns[j], &hold[0], &hold[1], err);
    *cur = &hold[1];
    return s;
}

/* Up block i: consumes n_layers skips from the top of the stack. */
static enum status up_block(struct pass *p, int i, const struct tensor **cur,
                            struct tensor hold[2][2], int *slot, struct errbuf *err)
{
    const struct unet_up_block *u = &p->m->up[i];
    for (int j = 0; j < u->n_layers; j++) {
        if (p->n_skips == 0)
            return status_fail(err, STATUS_INTERNAL, "unet: skip stack empty");
        const struct tensor *skip = &p->skips[--p->n_skips];
        *slot ^= 1;
        TRY(up_layer(p, u, j, skip, cur, hold[*slot], err));
    }
    if (!u->has_upsample)
        return STATUS_OK;
    const struct tensor *x = *cur;
    if (p->n_skips == 0)
        return status_fail(err, STATUS_INTERNAL, "unet: no skip to upsample to");
    /* diffusers upsamples to the size of the next skip: 2× when the latent is a
     * multiple of the total downscale, one less where a stride-2 conv rounded up */
    const struct tensor *next = &p->skips[p->n_skips - 1];
    int64_t h = next->shape[1], w = next->shape[2], c = x->shape[3];
    int other = pp_other(p, x);
    *slot ^= 1;
    hold[*slot][0] = pp_view(p, other, h, w, c);
    struct workspace_mark mark = workspace_mark(p->ws);
    struct tensor up; /* {B,h,w,C} nearest */
    enum status s = workspace_tensor(p->ws, 4, (int64_t[]){p->batch, h, w, c}, &up, err);
    if (s == STATUS_OK)
        s = backend_upsample_nearest(x, &up, err);
    if (s == STATUS_OK)
        s = conv3x3(&up, &u->up_w, &u->up_b, 1, &hold[*slot][0], err);
    workspace_rewind(p->ws, mark);
    *cur = &hold[*slot][0];
    return s;
}

/* out = conv_out(SiLU(GroupNorm(cur))). */
static enum status out_head(struct pass *p, const struct tensor *cur, struct tensor *out,
                            struct errbuf *err)
{
    const struct unet_config *c = &p->m->cfg;
    struct workspace_mark mark = workspace_mark(p->ws);
    struct tensor g; /* {B,H,W,C0} */
    struct group_norm_params gp = {.groups = c->norm_num_groups, .eps = c->norm_eps, .silu = true};
    struct conv2d_params cp = {.stride = 1, .padding = (c->conv_out_kernel - 1) / 2};
    enum status s = workspace_tensor(p->ws, 4, cur->shape, &g, err);
    if (s == STATUS_OK)
        s = backend_group_norm(cur, &p->m->norm_out_w, &p->m->norm_out_b, &gp, &g, err);
    if (s == STATUS_OK)
        s = backend_conv2d(&g, &p->m->conv_out_w, &p->m->conv_out_b, NULL, &cp, out, err);
    workspace_rewind(p->ws, mark);
    return s;
}

static enum status check_forward_args(const struct unet_model *m, const struct tensor *x,
                                      const float *timesteps, const struct tensor *context,
                                      const struct tensor *out, struct errbuf *err)
{
    const struct unet_config *c = &m->cfg;
    if (!timesteps)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "unet: timesteps is NULL");
    if (x->ndim != 4 || x->shape[3] != c->in_channels)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "unet: x must be {B,H,W,%d}",
                           c->in_channels);
    if (context->ndim != 3 || context->shape[0] != x->shape[0] ||
        context->shape[2] != c->cross_attention_dim[0])
        return status_fail(err, STATUS_INVALID_ARGUMENT, "unet: context must be {%lld,L,%d}",
                           (long long)x->shape[0], c->cross_attention_dim[0]);
    if (out->ndim != 4 || out->shape[0] != x->shape[0] || out->shape[1] != x->shape[1] ||
        out->shape[2] != x->shape[2] || out->shape[3] != c->out_channels)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "unet: out must be {B,H,W,%d} like x",
                           c->out_channels);
    if (out->data == x->data || out->data == context->data)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "unet: out must not alias x or context");
    for (int i = 1; i < c->n_blocks; i++)
        if (c->cross_attention_dim[i] != c->cross_attention_dim[0])
            return status_fail(err, STATUS_UNSUPPORTED,
                               "unet: per-block cross_attention_dim needs one context per size");
    return STATUS_OK;
}

/* The whole pass over the workspace (the caller rewinds). */
static enum status forward_body(struct pass *p, const struct tensor *x, const float *timesteps,
                                struct tensor *out, struct errbuf *err)
{
    const struct unet_config *c = &p->m->cfg;
    int64_t h = x->shape[1], w = x->shape[2], n = pp_elems(c, p->batch, h, w);
    TRY(workspace_tensor(p->ws, 1, (int64_t[]){n}, &p->pp[0], err));
    TRY(workspace_tensor(p->ws, 1, (int64_t[]){n}, &p->pp[1], err));
    TRY(time_embedding(p, timesteps, err));
    TRY(temb_projections(p, err));
    TRY(kv_projections(p, err));
    struct tensor *s0 = NULL;
    TRY(push_skip(p, h, w, c->block_out_channels[0], &s0, err));
    struct conv2d_params cp = {.stride = 1, .padding = (c->conv_in_kernel - 1) / 2};
    TRY(backend_conv2d(x, &p->m->conv_in_w, &p->m->conv_in_b, NULL, &cp, s0, err));
    const struct tensor *cur = s0;
    for (int i = 0; i < c->n_blocks; i++)
        TRY(down_block(p, i, &cur, err));
    struct tensor mid[2], hold[2][2];
    TRY(mid_block(p, &cur, &mid[0], &mid[1], err));
    int slot = 0;
    for (int i = 0; i < c->n_blocks; i++)
        TRY(up_block(p, i, &cur, hold, &slot, err));
    return out_head(p, cur, out, err);
}

enum status unet_forward(const struct unet_model *m, struct workspace *ws, const struct tensor *x,
                         const float *timesteps, const struct tensor *context,
                         struct tensor *out, struct errbuf *err)
{
    TRY(check_forward_args(m, x, timesteps, context, out, err));
    struct pass p = {.m = m, .ws = ws, .context = context, .batch = x->shape[0]};
    struct workspace_mark mark = workspace_mark(ws);
    enum status s = forward_body(&p, x, timesteps, out, err);
    workspace_rewind(ws, mark);
    if (s != STATUS_OK)
        return status_wrap(err, "unet");
    return STATUS_OK;
}
