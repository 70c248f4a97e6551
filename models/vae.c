/* models/vae.c — AutoencoderKL; see vae.h.
 *
 * Activations flow through two ping-pong buffers taken from the workspace at the start
 * of a pass, each as large as the biggest activation of the pass; every stage reads
 * the current buffer and writes the other (resnet and attention scratch sits above
 * them and is rewound by the stage).
 *
 * The encoder's downsample (F.pad (0,1,0,1) then conv3x3 stride 2 padding 0) is run as
 * a conv4x4 stride 2 padding 1 whose kernel holds the 3×3 one at offset (1,1) and zeros
 * in its first row and column: output o then reads rows 2o−1 … 2o+2 of the input with
 * row 2o−1 (the only one the symmetric top/left pad reaches) weighted 0, i.e. exactly
 * rows 2o … 2o+2 with the zero row below the image — diffusers' result, output size
 * included, at 16/9 of the multiply-adds of three small convs.
 *
 * The encoder's last convolution (quant_conv, or conv_out without one) is split by
 * output channel into a mean conv and a logvar conv, so no channel slice is needed.
 */
#include "models/vae.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_config.h"
#include "models/resnet.h"

#define VAE_EPS 1e-6f /* every GroupNorm of AutoencoderKL */
#define VAE_NAME_MAX 256
#define LOGVAR_MIN -30.0f
#define LOGVAR_MAX 20.0f

struct vae_conv {
    struct tensor w; /* {Cout,KH,KW,Cin} */
    struct tensor b; /* {Cout} */
};

struct vae_attn {
    struct tensor norm_w, norm_b;          /* {C} */
    struct tensor q_w, q_b, k_w, k_b, v_w, v_b; /* {C,C}, {C} */
    struct tensor o_w, o_b;                /* {C,C}, {C} */
};

struct vae_mid {
    struct resnet_block res[2];
    bool has_attn;
    struct vae_attn attn;
};

struct vae_level {
    int n_resnets;
    struct resnet_block res[VAE_MAX_LAYERS];
    bool has_sampler;
    struct vae_conv sampler; /* up: {C,3,3,C} after a nearest 2×; down: {C,4,4,C} stride 2 */
};

struct vae_model {
    struct vae_config cfg;
    struct backend *backend;
    /* encoder */
    struct vae_conv enc_in;           /* {c0,3,3,in} */
    struct vae_level down[VAE_MAX_LEVELS];
    struct vae_mid enc_mid;
    struct tensor enc_norm_w, enc_norm_b; /* {ctop} */
    struct vae_conv enc_out;          /* {2L,3,3,ctop}; unset without quant_conv */
    struct vae_conv mean_conv, logvar_conv; /* last conv split: {L,k,k,·} each */
    /* decoder */
    struct tensor shift;              /* {1,1,1,L} = shift_factor; unset when 0 */
    struct vae_conv post_quant;       /* {L,1,1,L}; unset without post_quant_conv */
    struct vae_conv dec_in;           /* {ctop,3,3,L} */
    struct vae_mid dec_mid;
    struct vae_level up[VAE_MAX_LEVELS];
    struct tensor dec_norm_w, dec_norm_b; /* {c0} */
    struct vae_conv dec_out;          /* {out,3,3,c0} */
};

/* ---------------------------------------------------------------- config ---- */

static enum status require_key(const json_t *obj, const char *key, struct errbuf *err)
{
    if (model_config_has(obj, key))
        return STATUS_OK;
    return status_fail(err, STATUS_FORMAT, "%s: missing key '%s'", model_config_source(obj), key);
}

/* Every entry of string array `key` equals `want`, and there are n of them. */
static enum status check_block_types(const json_t *obj, const char *key, const char *want, int n,
                                     struct errbuf *err)
{
    const char *types[VAE_MAX_LEVELS];
    int count;
    enum status s = require_key(obj, key, err);
    if (s == STATUS_OK)
        s = model_config_string_array(obj, key, types, VAE_MAX_LEVELS, &count, err);
    if (s != STATUS_OK)
        return s;
    if (count != n)
        return status_fail(err, STATUS_FORMAT, "%s: key '%s': %d entries, expected %d (one per "
                           "block_out_channels entry)", model_config_source(obj), key, count, n);
    for (int i = 0; i < n; i++)
        if (strcmp(types[i], want) != 0)
            return status_fail(err, STATUS_FORMAT, "%s: key '%s': unsupported block type '%s' "
                               "(only %s)", model_config_source(obj), key, types[i], want);
    return STATUS_OK;
}

static enum status read_required(const json_t *obj, struct vae_config *c, struct errbuf *err)
{
    static const char *const required[] = {"block_out_channels", "layers_per_block",
                                           "latent_channels", "scaling_factor"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        enum status s = require_key(obj, required[i], err);
        if (s != STATUS_OK)
            return s;
    }
    enum status s = model_config_int_array(obj, "block_out_channels", c->block_out_channels,
                                           VAE_MAX_LEVELS, &c->n_levels, err);
    if (s == STATUS_OK)
        s = model_config_int(obj, "layers_per_block", 0, &c->layers_per_block, err);
    if (s == STATUS_OK)
        s = model_config_int(obj, "latent_channels", 0, &c->latent_channels, err);
    if (s == STATUS_OK)
        s = model_config_float(obj, "scaling_factor", 0.0, &c->scaling_factor, err);
    if (s == STATUS_OK)
        s = check_block_types(obj, "down_block_types", "DownEncoderBlock2D", c->n_levels, err);
    if (s == STATUS_OK)
        s = check_block_types(obj, "up_block_types", "UpDecoderBlock2D", c->n_levels, err);
    return s;
}

/* Keys with diffusers' AutoencoderKL defaults. */
static enum status read_defaulted(const json_t *obj, struct vae_config *c, struct errbuf *err)
{
    const char *act;
    enum status s = model_config_int(obj, "in_channels", 3, &c->in_channels, err);
    if (s == STATUS_OK)
        s = model_config_int(obj, "out_channels", 3, &c->out_channels, err);
    if (s == STATUS_OK)
        s = model_config_int(obj, "norm_num_groups", 32, &c->norm_num_groups, err);
    if (s == STATUS_OK)
        s = model_config_int(obj, "sample_size", 32, &c->sample_size, err);
    if (s == STATUS_OK)
        s = model_config_float(obj, "shift_factor", 0.0, &c->shift_factor, err);
    if (s == STATUS_OK)
        s = model_config_bool(obj, "mid_block_add_attention", true, &c->mid_block_add_attention,
                              err);
    if (s == STATUS_OK)
        s = model_config_bool(obj, "use_quant_conv", true, &c->use_quant_conv, err);
    if (s == STATUS_OK)
        s = model_config_bool(obj, "use_post_quant_conv", true, &c->use_post_quant_conv, err);
    if (s == STATUS_OK)
        s = model_config_string(obj, "act_fn", "silu", &act, err);
    if (s == STATUS_OK && strcmp(act, "silu") != 0)
        s = status_fail(err, STATUS_FORMAT, "%s: key 'act_fn': unsupported '%s' (only silu)",
                        model_config_source(obj), act);
    return s;
}

static enum status check_values(const json_t *obj, const struct vae_config *c,
                                struct errbuf *err)
{
    const char *src = model_config_source(obj);
    if (c->n_levels < 1)
        return status_fail(err, STATUS_FORMAT, "%s: key 'block_out_channels': empty", src);
    if (c->layers_per_block < 1 || c->layers_per_block + 1 > VAE_MAX_LAYERS)
        return status_fail(err, STATUS_FORMAT, "%s: key 'layers_per_block': %d not in 1..%d", src,
                           c->layers_per_block, VAE_MAX_LAYERS - 1);
    if (c->in_channels < 1 || c->out_channels < 1 || c->latent_channels < 1)
        return status_fail(err, STATUS_FORMAT, "%s: in/out/latent channels must be positive",
                           src);
    if (c->norm_num_groups < 1)
        return status_fail(err, STATUS_FORMAT, "%s: key 'norm_num_groups': %d", src,
                           c->norm_num_groups);
    for (int i = 0; i < c->n_levels; i++)
        if (c->block_out_channels[i] < 1 || c->block_out_channels[i] % c->norm_num_groups)
            return status_fail(err, STATUS_FORMAT, "%s: key 'block_out_channels': %d is not a "
                               "positive multiple of norm_num_groups %d", src,
                               c->block_out_channels[i], c->norm_num_groups);
    if (!(c->scaling_factor > 0.0) || !isfinite(c->shift_factor))
        return status_fail(err, STATUS_FORMAT, "%s: key 'scaling_factor': must be positive "
                           "(and shift_factor finite)", src);
    return STATUS_OK;
}

enum status vae_config_from_json(const json_t *obj, struct vae_config *cfg, struct errbuf *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(obj))
        return status_fail(err, STATUS_FORMAT, "vae config: not a JSON object");
    enum status s = read_required(obj, cfg, err);
    if (s == STATUS_OK)
        s = read_defaulted(obj, cfg, err);
    if (s == STATUS_OK)
        s = check_values(obj, cfg, err);
    return s;
}

/* ------------------------------------------------------------ parameters ---- */

static const char *fmt_name(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *fmt_name(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return buf;
}

static enum status load_vec(const struct weights *w, const char *name, int64_t n,
                            struct backend *b, struct tensor *out, struct errbuf *err)
{
    return weights_load(w, name, 1, (int64_t[]){n}, b, out, err);
}

/* <prefix>.weight {c} and <prefix>.bias {c}. */
static enum status load_norm(const struct weights *w, const char *prefix, int64_t c,
                             struct backend *b, struct tensor *gamma, struct tensor *beta,
                             struct errbuf *err)
{
    char name[VAE_NAME_MAX];
    enum status s = load_vec(w, fmt_name(name, sizeof name, "%s.weight", prefix), c, b, gamma, err);
    if (s == STATUS_OK)
        s = load_vec(w, fmt_name(name, sizeof name, "%s.bias", prefix), c, b, beta, err);
    return s;
}

/* <prefix>.weight {cout,cin,k,k} as {cout,k,k,cin} and <prefix>.bias {cout}. */
static enum status load_conv(const struct weights *w, const char *prefix, int64_t cout,
                             int64_t cin, int64_t k, struct backend *b, struct vae_conv *out,
                             struct errbuf *err)
{
    char name[VAE_NAME_MAX];
    enum status s = weights_load_conv(w, fmt_name(name, sizeof name, "%s.weight", prefix), cout,
                                      cin, k, k, b, &out->w, err);
    if (s == STATUS_OK)
        s = load_vec(w, fmt_name(name, sizeof name, "%s.bias", prefix), cout, b, &out->b, err);
    return s;
}

static enum status load_linear(const struct weights *w, const char *prefix, int64_t c,
                               struct backend *b, struct tensor *weight, struct tensor *bias,
                               struct errbuf *err)
{
    char name[VAE_NAME_MAX];
    enum status s = weights_load_linear(w, fmt_name(name, sizeof name, "%s.weight", prefix), c, c,
                                        b, weight, err);
    if (s == STATUS_OK)
        s = load_vec(w, fmt_name(name, sizeof name, "%s.bias", prefix), c, b, bias, err);
    return s;
}

/* A new tensor {shape} on b holding host floats. */
static enum status upload_new(struct backend *b, int ndim, const int64_t *shape,
                              const float *host, struct tensor *out, struct errbuf *err)
{
    *out = tensor_desc(backend_weight_dtype(b), ndim, shape);
    enum status s = backend_alloc(b, out, err);
    if (s == STATUS_OK)
        s = backend_upload(out, host, DTYPE_F32, err);
    if (s != STATUS_OK)
        backend_free(out);
    return s;
}

/* A tensor's contents as malloc'ed host floats. */
static enum status download_new(const struct tensor *t, float **out, struct errbuf *err)
{
    *out = malloc((size_t)tensor_numel(t) * sizeof(float));
    if (!*out)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "vae: out of memory");
    enum status s = backend_download(t, *out, err);
    if (s != STATUS_OK) {
        free(*out);
        *out = NULL;
    }
    return s;
}

/* The 3×3 stride-2 downsample kernel {c,3,3,c} re-laid as {c,4,4,c}, see the top. */
static enum status load_downsampler(const struct weights *w, const char *prefix, int64_t c,
                                    struct backend *b, struct vae_conv *out, struct errbuf *err)
{
    struct tensor k3 = {0};
    char name[VAE_NAME_MAX];
    enum status s = weights_load_conv(w, fmt_name(name, sizeof name, "%s.weight", prefix), c, c,
                                      3, 3, b, &k3, err);
    float *h3 = NULL, *h4 = NULL;
    if (s == STATUS_OK)
        s = download_new(&k3, &h3, err);
    backend_free(&k3);
    if (s == STATUS_OK && !(h4 = calloc((size_t)(c * 16 * c), sizeof *h4)))
        s = status_fail(err, STATUS_OUT_OF_MEMORY, "vae: out of memory");
    if (s == STATUS_OK) {
        for (int64_t o = 0; o < c; o++)
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    memcpy(&h4[((o * 4 + ky + 1) * 4 + kx + 1) * c], &h3[((o * 3 + ky) * 3 + kx) * c],
                           (size_t)c * sizeof *h4);
        s = upload_new(b, 4, (int64_t[]){c, 4, 4, c}, h4, &out->w, err);
    }
    free(h3);
    free(h4);
    if (s == STATUS_OK)
        s = load_vec(w, fmt_name(name, sizeof name, "%s.bias", prefix), c, b, &out->b, err);
    return s;
}

/* Output channels [c0, c0+n) of a loaded conv as a new conv (OHWI rows are contiguous). */
static enum status conv_slice(const struct vae_conv *full, int64_t c0, int64_t n,
                              struct backend *b, struct vae_conv *out, struct errbuf *err)
{
    float *hw = NULL, *hb = NULL;
    const int64_t kh = full->w.shape[1], kw = full->w.shape[2], cin = full->w.shape[3];
    const int64_t row = kh * kw * cin;
    enum status s = download_new(&full->w, &hw, err);
    if (s == STATUS_OK)
        s = download_new(&full->b, &hb, err);
    if (s == STATUS_OK)
        s = upload_new(b, 4, (int64_t[]){n, kh, kw, cin}, hw + c0 * row, &out->w, err);
    if (s == STATUS_OK)
        s = upload_new(b, 1, (int64_t[]){n}, hb + c0, &out->b, err);
    free(hw);
    free(hb);
    return s;
}

static void conv_free(struct vae_conv *c)
{
    backend_free(&c->w);
    backend_free(&c->b);
}

/* Diffusers' current attention names, or the pre-0.14 ones many SD VAE files still
 * carry (query/key/value/proj_attn), which diffusers converts on load. */
static enum status load_attn(const struct weights *w, const char *prefix, int64_t c,
                             struct backend *b, struct vae_attn *a, struct errbuf *err)
{
    char name[VAE_NAME_MAX], probe[VAE_NAME_MAX];
    bool legacy = !weights_has(w, fmt_name(probe, sizeof probe, "%s.to_q.weight", prefix)) &&
                  weights_has(w, fmt_name(probe, sizeof probe, "%s.query.weight", prefix));
    const char *q = legacy ? "query" : "to_q", *k = legacy ? "key" : "to_k";
    const char *v = legacy ? "value" : "to_v", *o = legacy ? "proj_attn" : "to_out.0";
    enum status s = load_norm(w, fmt_name(name, sizeof name, "%s.group_norm", prefix), c, b,
                              &a->norm_w, &a->norm_b, err);
    if (s == STATUS_OK)
        s = load_linear(w, fmt_name(name, sizeof name, "%s.%s", prefix, q), c, b, &a->q_w, &a->q_b, err);
    if (s == STATUS_OK)
        s = load_linear(w, fmt_name(name, sizeof name, "%s.%s", prefix, k), c, b, &a->k_w, &a->k_b, err);
    if (s == STATUS_OK)
        s = load_linear(w, fmt_name(name, sizeof name, "%s.%s", prefix, v), c, b, &a->v_w, &a->v_b, err);
    if (s == STATUS_OK)
        s = load_linear(w, fmt_name(name, sizeof name, "%s.%s", prefix, o), c, b, &a->o_w, &a->o_b, err);
    return s;
}

static void attn_free(struct vae_attn *a)
{
    struct tensor *all[] = {&a->norm_w, &a->norm_b, &a->q_w, &a->q_b, &a->k_w,
                            &a->k_b,    &a->v_w,    &a->v_b, &a->o_w, &a->o_b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        backend_free(all[i]);
}

static struct resnet_config resnet_cfg(const struct vae_config *c, int cin, int cout)
{
    return (struct resnet_config){.in_channels = cin, .out_channels = cout, .temb_channels = 0,
                                  .groups = c->norm_num_groups, .eps = VAE_EPS,
                                  .output_scale_factor = 1.0f};
}

/* UNetMidBlock2D: resnets.0, attentions.0 (optional), resnets.1 at c channels. */
static enum status load_mid(const struct weights *w, const char *prefix,
                            const struct vae_config *cfg, int c, struct backend *b,
                            struct vae_mid *m, struct errbuf *err)
{
    char name[VAE_NAME_MAX];
    struct resnet_config rc = resnet_cfg(cfg, c, c);
    enum status s = STATUS_OK;
    for (int i = 0; i < 2 && s == STATUS_OK; i++)
        s = resnet_load(w, fmt_name(name, sizeof name, "%s.resnets.%d", prefix, i), &rc, b,
                        &m->res[i], err);
    m->has_attn = cfg->mid_block_add_attention;
    if (s == STATUS_OK && m->has_attn)
        s = load_attn(w, fmt_name(name, sizeof name, "%s.attentions.0", prefix), c, b, &m->attn,
                      err);
    return s;
}

static void mid_free(struct vae_mid *m)
{
    resnet_free(&m->res[0]);
    resnet_free(&m->res[1]);
    attn_free(&m->attn);
}

/* DownEncoderBlock2D / UpDecoderBlock2D: n resnets cin→cout→…, then the sampler. */
static enum status load_level(const struct weights *w, const char *prefix,
                              const struct vae_config *cfg, int cin, int cout, int n,
                              bool sampler, bool up, struct backend *b, struct vae_level *lv,
                              struct errbuf *err)
{
    char name[VAE_NAME_MAX];
    enum status s = STATUS_OK;
    lv->n_resnets = n;
    for (int i = 0; i < n && s == STATUS_OK; i++) {
        struct resnet_config rc = resnet_cfg(cfg, i == 0 ? cin : cout, cout);
        s = resnet_load(w, fmt_name(name, sizeof name, "%s.resnets.%d", prefix, i), &rc, b,
                        &lv->res[i], err);
    }
    lv->has_sampler = sampler;
    if (s != STATUS_OK || !sampler)
        return s;
    if (up)
        return load_conv(w, fmt_name(name, sizeof name, "%s.upsamplers.0.conv", prefix), cout,
                         cout, 3, b, &lv->sampler, err);
    return load_downsampler(w, fmt_name(name, sizeof name, "%s.downsamplers.0.conv", prefix),
                            cout, b, &lv->sampler, err);
}

static void level_free(struct vae_level *lv)
{
    for (int i = 0; i < VAE_MAX_LAYERS; i++)
        resnet_free(&lv->res[i]);
    conv_free(&lv->sampler);
}

/* The encoder's last conv, split into mean and logvar halves. */
static enum status load_moments(const struct weights *w, struct vae_model *m, struct errbuf *err)
{
    const struct vae_config *c = &m->cfg;
    const int L = c->latent_channels, ctop = c->block_out_channels[c->n_levels - 1];
    struct vae_conv full = {0};
    enum status s;
    if (c->use_quant_conv) {
        s = load_conv(w, "encoder.conv_out", 2 * L, ctop, 3, m->backend, &m->enc_out, err);
        if (s == STATUS_OK)
            s = load_conv(w, "quant_conv", 2 * L, 2 * L, 1, m->backend, &full, err);
    } else {
        s = load_conv(w, "encoder.conv_out", 2 * L, ctop, 3, m->backend, &full, err);
    }
    if (s == STATUS_OK)
        s = conv_slice(&full, 0, L, m->backend, &m->mean_conv, err);
    if (s == STATUS_OK)
        s = conv_slice(&full, L, L, m->backend, &m->logvar_conv, err);
    conv_free(&full);
    return s;
}

static enum status load_encoder(const struct weights *w, struct vae_model *m, struct errbuf *err)
{
    const struct vae_config *c = &m->cfg;
    const int nl = c->n_levels, ctop = c->block_out_channels[nl - 1];
    char name[VAE_NAME_MAX];
    enum status s = load_conv(w, "encoder.conv_in", c->block_out_channels[0], c->in_channels, 3,
                              m->backend, &m->enc_in, err);
    for (int i = 0; i < nl && s == STATUS_OK; i++)
        s = load_level(w, fmt_name(name, sizeof name, "encoder.down_blocks.%d", i), c,
                       i ? c->block_out_channels[i - 1] : c->block_out_channels[0],
                       c->block_out_channels[i], c->layers_per_block, i < nl - 1, false,
                       m->backend, &m->down[i], err);
    if (s == STATUS_OK)
        s = load_mid(w, "encoder.mid_block", c, ctop, m->backend, &m->enc_mid, err);
    if (s == STATUS_OK)
        s = load_norm(w, "encoder.conv_norm_out", ctop, m->backend, &m->enc_norm_w, &m->enc_norm_b,
                      err);
    if (s == STATUS_OK)
        s = load_moments(w, m, err);
    return s;
}

/* shift {1,1,1,L} filled with shift_factor (only when it is not 0). */
static enum status load_shift(struct vae_model *m, struct errbuf *err)
{
    const int L = m->cfg.latent_channels;
    if (m->cfg.shift_factor == 0.0)
        return STATUS_OK;
    float *h = malloc((size_t)L * sizeof *h);
    if (!h)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "vae: out of memory");
    for (int i = 0; i < L; i++)
        h[i] = (float)m->cfg.shift_factor;
    enum status s = upload_new(m->backend, 4, (int64_t[]){1, 1, 1, L}, h, &m->shift, err);
    free(h);
    return s;
}

static enum status load_decoder(const struct weights *w, struct vae_model *m, struct errbuf *err)
{
    const struct vae_config *c = &m->cfg;
    const int nl = c->n_levels, L = c->latent_channels, ctop = c->block_out_channels[nl - 1];
    char name[VAE_NAME_MAX];
    enum status s = load_shift(m, err);
    if (s == STATUS_OK && c->use_post_quant_conv)
        s = load_conv(w, "post_quant_conv", L, L, 1, m->backend, &m->post_quant, err);
    if (s == STATUS_OK)
        s = load_conv(w, "decoder.conv_in", ctop, L, 3, m->backend, &m->dec_in, err);
    if (s == STATUS_OK)
        s = load_mid(w, "decoder.mid_block", c, ctop, m->backend, &m->dec_mid, err);
    int prev = ctop;
    for (int i = 0; i < nl && s == STATUS_OK; i++) {
        int cout = c->block_out_channels[nl - 1 - i];
        s = load_level(w, fmt_name(name, sizeof name, "decoder.up_blocks.%d", i), c, prev, cout,
                       c->layers_per_block + 1, i < nl - 1, true, m->backend, &m->up[i], err);
        prev = cout;
    }
    if (s == STATUS_OK)
        s = load_norm(w, "decoder.conv_norm_out", c->block_out_channels[0], m->backend,
                      &m->dec_norm_w, &m->dec_norm_b, err);
    if (s == STATUS_OK)
        s = load_conv(w, "decoder.conv_out", c->out_channels, c->block_out_channels[0], 3,
                      m->backend, &m->dec_out, err);
    return s;
}

enum status vae_load(const struct weights *w, const struct vae_config *cfg, struct backend *b,
                     struct vae_model **out, struct errbuf *err)
{
    *out = NULL;
    if (cfg->n_levels < 1 || cfg->n_levels > VAE_MAX_LEVELS || cfg->layers_per_block < 1 ||
        cfg->layers_per_block + 1 > VAE_MAX_LAYERS || cfg->latent_channels < 1 ||
        cfg->in_channels < 1 || cfg->out_channels < 1 || !(cfg->scaling_factor > 0.0))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "vae: invalid config (%d levels, "
                           "%d layers per block, scaling_factor %g)", cfg->n_levels,
                           cfg->layers_per_block, cfg->scaling_factor);
    struct vae_model *m = calloc(1, sizeof *m);
    if (!m)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "vae: out of memory");
    m->cfg = *cfg;
    m->backend = b;
    enum status s = load_decoder(w, m, err);
    if (s == STATUS_OK)
        s = load_encoder(w, m, err);
    if (s != STATUS_OK) {
        vae_free(m);
        return s;
    }
    *out = m;
    return STATUS_OK;
}

enum status vae_load_dir(const char *dir, bool prefer_fp16, struct backend *b,
                         struct vae_model **out, struct errbuf *err)
{
    *out = NULL;
    char path[1024];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: path too long", dir);
    json_t *obj;
    enum status s = model_config_load(path, &obj, err);
    if (s != STATUS_OK)
        return s;
    struct vae_config cfg;
    s = vae_config_from_json(obj, &cfg, err);
    json_decref(obj);
    if (s != STATUS_OK)
        return s;
    struct weights *w;
    s = weights_open_dir(dir, prefer_fp16, &w, err);
    if (s != STATUS_OK)
        return s;
    s = vae_load(w, &cfg, b, out, err);
    weights_close(w);
    return s;
}

void vae_free(struct vae_model *m)
{
    if (!m)
        return;
    conv_free(&m->enc_in);
    for (int i = 0; i < VAE_MAX_LEVELS; i++) {
        level_free(&m->down[i]);
        level_free(&m->up[i]);
    }
    mid_free(&m->enc_mid);
    mid_free(&m->dec_mid);
    backend_free(&m->enc_norm_w);
    backend_free(&m->enc_norm_b);
    conv_free(&m->enc_out);
    conv_free(&m->mean_conv);
    conv_free(&m->logvar_conv);
    backend_free(&m->shift);
    conv_free(&m->post_quant);
    conv_free(&m->dec_in);
    backend_free(&m->dec_norm_w);
    backend_free(&m->dec_norm_b);
    conv_free(&m->dec_out);
    free(m);
}

const struct vae_config *vae_config(const struct vae_model *m)
{
    return &m->cfg;
}

float vae_scaling_factor(const struct vae_model *m)
{
    return (float)m->cfg.scaling_factor;
}

int vae_downscale(const struct vae_model *m)
{
    return 1 << (m->cfg.n_levels - 1);
}

/* ------------------------------------------------------------- forward ---- */

/* The current activation and the two buffers it moves between. */
struct flow {
    struct tensor buf[2]; /* f32 {capacity} each */
    int next;             /* the buffer the next stage writes */
    struct tensor x;      /* current activation {N,H,W,C} (a view of buf[1-next], or input) */
};

/* A view {n,h,w,c} of the buffer the next stage writes. */
static struct tensor flow_out(const struct flow *f, int64_t n, int64_t h, int64_t w, int64_t c)
{
    struct tensor t = f->buf[f->next];
    ASSERT(n * h * w * c <= tensor_numel(&t));
    t.ndim = 4;
    t.shape[0] = n;
    t.shape[1] = h;
    t.shape[2] = w;
    t.shape[3] = c;
    return t;
}

static void flow_advance(struct flow *f, struct tensor y)
{
    f->x = y;
    f->next ^= 1;
}

static enum status flow_init(struct flow *f, struct workspace *ws, int64_t capacity,
                             const struct tensor *input, struct errbuf *err)
{
    f->next = 0;
    f->x = *input;
    enum status s = workspace_tensor(ws, 1, (int64_t[]){capacity}, &f->buf[0], err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 1, (int64_t[]){capacity}, &f->buf[1], err);
    return s;
}

/* x ← conv(x) with `c` (stride, padding p); output channels from the weight. */
static enum status flow_conv(struct flow *f, const struct vae_conv *c, int stride, int pad,
                             struct errbuf *err)
{
    const int64_t kh = c->w.shape[1], kw = c->w.shape[2];
    const int64_t ho = (f->x.shape[1] + 2 * pad - kh) / stride + 1;
    const int64_t wo = (f->x.shape[2] + 2 * pad - kw) / stride + 1;
    struct tensor y = flow_out(f, f->x.shape[0], ho, wo, c->w.shape[0]);
    const struct conv2d_params p = {.stride = stride, .padding = pad};
    enum status s = backend_conv2d(&f->x, &c->w, &c->b, NULL, &p, &y, err);
    if (s == STATUS_OK)
        flow_advance(f, y);
    return s;
}

static enum status flow_resnet(struct flow *f, struct workspace *ws, const struct resnet_block *r,
                               struct errbuf *err)
{
    struct tensor y = flow_out(f, f->x.shape[0], f->x.shape[1], f->x.shape[2],
                               r->cfg.out_channels);
    enum status s = resnet_forward(r, ws, &f->x, NULL, &y, err);
    if (s == STATUS_OK)
        flow_advance(f, y);
    return s;
}

/* y = x + to_out(attention(q, k, v)) with q, k, v = projections of GroupNorm(x), one head
 * over the H·W tokens; scratch from ws (four {N,HW,C}), rewound. */
static enum status attn_body(const struct vae_attn *a, int groups, struct workspace *ws,
                             const struct tensor *xt, struct tensor *yt, struct errbuf *err)
{
    const int64_t n = xt->shape[0], l = xt->shape[1], c = xt->shape[2];
    const struct group_norm_params gn = {.groups = groups, .eps = VAE_EPS, .silu = false};
    const struct attention_params ap = {.heads = 1, .scale = (float)(1.0 / sqrt((double)c)),
                                        .causal = false};
    struct tensor h, q, k, v; /* {N,HW,C} each; h: normed x, then the attention output */
    const int64_t shape[3] = {n, l, c};
    enum status s = workspace_tensor(ws, 3, shape, &h, err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 3, shape, &q, err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 3, shape, &k, err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 3, shape, &v, err);
    if (s == STATUS_OK)
        s = backend_group_norm(xt, &a->norm_w, &a->norm_b, &gn, &h, err);
    if (s == STATUS_OK)
        s = backend_linear(&h, &a->q_w, &a->q_b, NULL, &q, err);
    if (s == STATUS_OK)
        s = backend_linear(&h, &a->k_w, &a->k_b, NULL, &k, err);
    if (s == STATUS_OK)
        s = backend_linear(&h, &a->v_w, &a->v_b, NULL, &v, err);
    if (s == STATUS_OK)
        s = backend_attention(&q, &k, &v, &ap, &h, err);
    if (s == STATUS_OK)
        s = backend_linear(&h, &a->o_w, &a->o_b, xt, yt, err);
    return s;
}

static enum status flow_attn(struct flow *f, struct workspace *ws, const struct vae_attn *a,
                             int groups, struct errbuf *err)
{
    const int64_t n = f->x.shape[0], hh = f->x.shape[1], ww = f->x.shape[2], c = f->x.shape[3];
    struct tensor y = flow_out(f, n, hh, ww, c);
    struct tensor xt = f->x, yt = y; /* token views {N,HW,C} */
    tensor_reshape(&xt, 3, (int64_t[]){n, hh * ww, c});
    tensor_reshape(&yt, 3, (int64_t[]){n, hh * ww, c});
    struct workspace_mark mk = workspace_mark(ws);
    enum status s = attn_body(a, groups, ws, &xt, &yt, err);
    workspace_rewind(ws, mk);
    if (s == STATUS_OK)
        flow_advance(f, y);
    return s;
}

static enum status flow_mid(struct flow *f, struct workspace *ws, const struct vae_mid *m,
                            int groups, struct errbuf *err)
{
    enum status s = flow_resnet(f, ws, &m->res[0], err);
    if (s == STATUS_OK && m->has_attn)
        s = flow_attn(f, ws, &m->attn, groups, err);
    if (s == STATUS_OK)
        s = flow_resnet(f, ws, &m->res[1], err);
    return s;
}

static enum status flow_upsample(struct flow *f, struct errbuf *err)
{
    struct tensor y = flow_out(f, f->x.shape[0], 2 * f->x.shape[1], 2 * f->x.shape[2],
                               f->x.shape[3]);
    enum status s = backend_upsample_nearest(&f->x, &y, err);
    if (s == STATUS_OK)
        flow_advance(f, y);
    return s;
}

static enum status flow_level(struct flow *f, struct workspace *ws, const struct vae_level *lv,
                              bool up, struct errbuf *err)
{
    enum status s = STATUS_OK;
    for (int i = 0; i < lv->n_resnets && s == STATUS_OK; i++)
        s = flow_resnet(f, ws, &lv->res[i], err);
    if (s != STATUS_OK || !lv->has_sampler)
        return s;
    if (up) {
        s = flow_upsample(f, err);
        return s == STATUS_OK ? flow_conv(f, &lv->sampler, 1, 1, err) : s;
    }
    return flow_conv(f, &lv->sampler, 2, 1, err); /* the 4×4 form of pad (0,1,0,1) + 3×3 */
}

/* x{1,numel} view of t: one batch row, so axpby takes one scalar. */
static struct tensor flat_row(const struct tensor *t)
{
    struct tensor v = *t;
    tensor_reshape(&v, 2, (int64_t[]){1, tensor_numel(t)});
    return v;
}

/* x ← latents / scaling_factor + shift_factor. */
static enum status flow_unscale(struct flow *f, const struct vae_model *m, struct errbuf *err)
{
    struct tensor y = flow_out(f, f->x.shape[0], f->x.shape[1], f->x.shape[2], f->x.shape[3]);
    struct tensor xf = flat_row(&f->x), yf = flat_row(&y);
    const float alpha = (float)(1.0 / m->cfg.scaling_factor), beta = 0.0f;
    enum status s = backend_axpby(&xf, &xf, &alpha, &beta, &yf, err);
    if (s == STATUS_OK && m->cfg.shift_factor != 0.0)
        s = backend_add(&y, &m->shift, &y, err);
    if (s == STATUS_OK)
        flow_advance(f, y);
    return s;
}

/* Elements of the largest activation of a decode from {n,h,w} latents. */
static int64_t decode_capacity(const struct vae_config *c, int64_t n, int64_t h, int64_t w)
{
    const int nl = c->n_levels;
    int64_t cap = n * h * w * (c->latent_channels > c->block_out_channels[nl - 1]
                                   ? c->latent_channels : c->block_out_channels[nl - 1]);
    for (int i = 0; i < nl; i++) {
        int64_t ch = c->block_out_channels[nl - 1 - i];
        if (n * h * w * ch > cap)
            cap = n * h * w * ch;
        if (i < nl - 1) {
            h *= 2;
            w *= 2;
            if (n * h * w * ch > cap)
                cap = n * h * w * ch;
        }
    }
    return cap;
}

static enum status check_decode_args(const struct vae_model *m, const struct tensor *z,
                                     const struct tensor *image, struct errbuf *err)
{
    const int64_t f = vae_downscale(m);
    if (z->ndim != 4 || z->shape[3] != m->cfg.latent_channels || image->ndim != 4 ||
        image->shape[0] != z->shape[0] || image->shape[1] != z->shape[1] * f ||
        image->shape[2] != z->shape[2] * f || image->shape[3] != m->cfg.out_channels) {
        char a[64], b[64];
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "vae decode: latents %s and image %s: expected {B,h,w,%d} and "
                           "{B,%lld·h,%lld·w,%d}", tensor_describe(z, a, sizeof a),
                           tensor_describe(image, b, sizeof b), m->cfg.latent_channels,
                           (long long)f, (long long)f, m->cfg.out_channels);
    }
    return STATUS_OK;
}

static enum status decode_body(const struct vae_model *m, struct workspace *ws,
                               const struct tensor *z, bool scaled, struct tensor *image,
                               struct errbuf *err)
{
    const struct vae_config *c = &m->cfg;
    struct flow f;
    enum status s = flow_init(&f, ws, decode_capacity(c, z->shape[0], z->shape[1], z->shape[2]),
                              z, err);
    if (s == STATUS_OK && scaled)
        s = flow_unscale(&f, m, err);                    /* {B,h,w,L} */
    if (s == STATUS_OK && c->use_post_quant_conv)
        s = flow_conv(&f, &m->post_quant, 1, 0, err);    /* {B,h,w,L} */
    if (s == STATUS_OK)
        s = flow_conv(&f, &m->dec_in, 1, 1, err);        /* {B,h,w,ctop} */
    if (s == STATUS_OK)
        s = flow_mid(&f, ws, &m->dec_mid, c->norm_num_groups, err);
    for (int i = 0; i < c->n_levels && s == STATUS_OK; i++)
        s = flow_level(&f, ws, &m->up[i], true, err);   /* … {B,H,W,c0} */
    const struct group_norm_params gn = {.groups = c->norm_num_groups, .eps = VAE_EPS,
                                         .silu = true};
    if (s == STATUS_OK)
        s = backend_group_norm(&f.x, &m->dec_norm_w, &m->dec_norm_b, &gn, &f.x, err);
    const struct conv2d_params p = {.stride = 1, .padding = 1};
    if (s == STATUS_OK)
        s = backend_conv2d(&f.x, &m->dec_out.w, &m->dec_out.b, NULL, &p, image, err);
    return s;
}

static enum status decode(const struct vae_model *m, struct workspace *ws,
                          const struct tensor *z, bool scaled, struct tensor *image,
                          struct errbuf *err)
{
    enum status s = check_decode_args(m, z, image, err);
    if (s != STATUS_OK)
        return s;
    struct workspace_mark mk = workspace_mark(ws);
    s = decode_body(m, ws, z, scaled, image, err);
    workspace_rewind(ws, mk);
    return s == STATUS_OK ? s : status_wrap(err, "vae decode");
}

enum status vae_decode(const struct vae_model *m, struct workspace *ws,
                       const struct tensor *latents, struct tensor *image, struct errbuf *err)
{
    return decode(m, ws, latents, true, image, err);
}

enum status vae_decode_raw(const struct vae_model *m, struct workspace *ws,
                           const struct tensor *z, struct tensor *image, struct errbuf *err)
{
    return decode(m, ws, z, false, image, err);
}

/* Elements of the largest activation of an encode of {n,H,W} images. */
static int64_t encode_capacity(const struct vae_config *c, int64_t n, int64_t h, int64_t w)
{
    int64_t cap = n * h * w * c->block_out_channels[0];
    for (int i = 0; i < c->n_levels; i++) {
        int64_t ch = c->block_out_channels[i];
        if (n * h * w * ch > cap)
            cap = n * h * w * ch;
        if (i < c->n_levels - 1) {
            h /= 2;
            w /= 2;
        }
    }
    if (n * h * w * 2 * c->latent_channels > cap)
        cap = n * h * w * 2 * c->latent_channels;
    return cap;
}

static enum status check_encode_args(const struct vae_model *m, const struct tensor *image,
                                     const struct tensor *mean, const struct tensor *logvar,
                                     struct errbuf *err)
{
    const int64_t f = vae_downscale(m);
    bool ok = image->ndim == 4 && image->shape[3] == m->cfg.in_channels &&
              image->shape[1] % f == 0 && image->shape[2] % f == 0;
    const struct tensor *outs[2] = {mean, logvar};
    for (int i = 0; i < 2 && ok; i++)
        ok = outs[i]->ndim == 4 && outs[i]->shape[0] == image->shape[0] &&
             outs[i]->shape[1] == image->shape[1] / f && outs[i]->shape[2] == image->shape[2] / f &&
             outs[i]->shape[3] == m->cfg.latent_channels;
    if (!ok) {
        char a[64], b[64];
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "vae encode: image %s and mean/logvar %s: expected {B,H,W,%d} with "
                           "H, W multiples of %lld and {B,H/%lld,W/%lld,%d}",
                           tensor_describe(image, a, sizeof a), tensor_describe(mean, b, sizeof b),
                           m->cfg.in_channels, (long long)f, (long long)f, (long long)f,
                           m->cfg.latent_channels);
    }
    return STATUS_OK;
}

/* logvar ← clamp(logvar, −30, 20) through host memory (only uploads when it changed). */
static enum status clamp_logvar(struct tensor *logvar, struct errbuf *err)
{
    float *h;
    enum status s = download_new(logvar, &h, err);
    if (s != STATUS_OK)
        return s;
    bool changed = false;
    for (int64_t i = 0, n = tensor_numel(logvar); i < n; i++) {
        float v = h[i] < LOGVAR_MIN ? LOGVAR_MIN : h[i] > LOGVAR_MAX ? LOGVAR_MAX : h[i];
        changed |= v != h[i];
        h[i] = v;
    }
    if (changed)
        s = backend_upload(logvar, h, DTYPE_F32, err);
    free(h);
    return s;
}

static enum status encode_body(const struct vae_model *m, struct workspace *ws,
                               const struct tensor *image, struct tensor *mean,
                               struct tensor *logvar, struct errbuf *err)
{
    const struct vae_config *c = &m->cfg;
    struct flow f;
    enum status s = flow_init(
        &f, ws, encode_capacity(c, image->shape[0], image->shape[1], image->shape[2]), image, err);
    if (s == STATUS_OK)
        s = flow_conv(&f, &m->enc_in, 1, 1, err);       /* {B,H,W,c0} */
    for (int i = 0; i < c->n_levels && s == STATUS_OK; i++)
        s = flow_level(&f, ws, &m->down[i], false, err); /* … {B,h,w,ctop} */
    if (s == STATUS_OK)
        s = flow_mid(&f, ws, &m->enc_mid, c->norm_num_groups, err);
    const struct group_norm_params gn = {.groups = c->norm_num_groups, .eps = VAE_EPS,
                                         .silu = true};
    if (s == STATUS_OK)
        s = backend_group_norm(&f.x, &m->enc_norm_w, &m->enc_norm_b, &gn, &f.x, err);
    int pad = 1; /* the split conv is conv_out (3×3) without quant_conv */
    if (s == STATUS_OK && c->use_quant_conv) {
        s = flow_conv(&f, &m->enc_out, 1, 1, err);     /* moments {B,h,w,2L} */
        pad = 0;
    }
    const struct conv2d_params p = {.stride = 1, .padding = pad};
    if (s == STATUS_OK)
        s = backend_conv2d(&f.x, &m->mean_conv.w, &m->mean_conv.b, NULL, &p, mean, err);
    if (s == STATUS_OK)
        s = backend_conv2d(&f.x, &m->logvar_conv.w, &m->logvar_conv.b, NULL, &p, logvar, err);
    return s;
}

enum status vae_encode(const struct vae_model *m, struct workspace *ws,
                       const struct tensor *image, struct tensor *mean, struct tensor *logvar,
                       struct errbuf *err)
{
    enum status s = check_encode_args(m, image, mean, logvar, err);
    if (s != STATUS_OK)
        return s;
    struct workspace_mark mk = workspace_mark(ws);
    s = encode_body(m, ws, image, mean, logvar, err);
    workspace_rewind(ws, mk);
    if (s == STATUS_OK)
        s = clamp_logvar(logvar, err);
    return s == STATUS_OK ? s : status_wrap(err, "vae encode");
}

/* ------------------------------------------------------------ host side ---- */

static float to_unit(float x)
{
    float v = x / 2.0f + 0.5f; /* as diffusers' denormalize, in f32 */
    return v > 1.0f ? 1.0f : v >= 0.0f ? v : 0.0f; /* NaN → 0 */
}

void vae_image_to_unit(const float *x, size_t n, float *unit)
{
    for (size_t i = 0; i < n; i++)
        unit[i] = to_unit(x[i]);
}

void vae_image_to_rgb8(const float *x, size_t n, uint8_t *rgb)
{
    for (size_t i = 0; i < n; i++) {
        float v = to_unit(x[i]) * 255.0f; /* numpy: f32 product, then round half to even */
        rgb[i] = (uint8_t)nearbyintf(v);
    }
}
