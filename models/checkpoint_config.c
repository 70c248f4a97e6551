/* models/checkpoint_config.c — component configs of a single-file checkpoint,
 * synthesised from its tensor shapes on top of the SD1.5 / SD2.1 diffusers configs;
 * see checkpoint.h.
 *
 * From the shapes: U-Net in/out channels, block_out_channels, layers_per_block, which
 * blocks have attention, cross_attention_dim, use_linear_projection,
 * transformer_layers_per_block; VAE channels, layers, latent channels, quant convs,
 * mid attention; text vocabulary, positions, hidden/intermediate size, layers.
 * Not in the shapes: attention head counts and GroupNorm groups.  For the standard
 * widths (U-Net [320,640,1280,1280], VAE [128,256,512,512], text 768 / 1024) they are
 * SD's: U-Net attention_head_dim 8 (SD1) / [5,10,20,20] (SD2), groups 32, text heads
 * 12 / 16.  For other widths the keys are left out and ckcfg_check_* demands them
 * from the caller (config_dir / config_override).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "models/checkpoint_internal.h"
#include "models/model_config.h"

#define MAXB LDM_MAX_BLOCKS

/* The file tensor `name` (printf format), which must have `ndim` dims (−1: any). */
static enum status need(const struct safetensors *st, int ndim,
                        const struct safetensors_tensor **out, struct errbuf *err,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum status need(const struct safetensors *st, int ndim,
                        const struct safetensors_tensor **out, struct errbuf *err,
                        const char *fmt, ...)
{
    char name[WEIGHTS_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const struct safetensors_tensor *t = safetensors_find(st, name);
    if (!t)
        return status_fail(err, STATUS_FORMAT, "%s: missing tensor '%s'", safetensors_path(st), name);
    if (ndim >= 0 && t->ndim != ndim)
        return status_fail(err, STATUS_FORMAT, "%s: tensor '%s' has %d dims, expected %d",
                           safetensors_path(st), name, t->ndim, ndim);
    *out = t;
    return STATUS_OK;
}

static bool has(const struct safetensors *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool has(const struct safetensors *st, const char *fmt, ...)
{
    char name[WEIGHTS_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return safetensors_find(st, name) != NULL;
}

static json_t *int_array(const int *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static json_t *str_array(const char *const *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static bool same_ints(const int *a, const int *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* Parses a built-in JSON template (cannot fail on valid input). */
static enum status from_template(const char *text, const struct safetensors *st,
                                 const char *what, json_t **out, struct errbuf *err)
{
    char source[1200];
    snprintf(source, sizeof source, "%s (%s config synthesised from the tensor shapes)",
             safetensors_path(st), what);
    return model_config_parse(text, source, out, err);
}

/* --- U-Net ---------------------------------------------------------------------- */

struct unet_shape {
    int in_ch, out_ch, layers, blocks, cross_dim, tlayers;
    int ch[MAXB];
    bool down_attn[MAXB], up_attn[MAXB], linear_proj, mid_attn;
};

#define U LDM_UNET_PREFIX

/* layers_per_block from the first downsampler's index; blocks from the count. */
static enum status unet_levels(const struct safetensors *st, struct unet_shape *u,
                               struct errbuf *err)
{
    int n_in = 0;
    while (n_in < 64 && (has(st, U "input_blocks.%d.0.in_layers.0.weight", n_in + 1) ||
                         has(st, U "input_blocks.%d.0.op.weight", n_in + 1)))
        n_in++;
    int first_op = 0;
    for (int k = 1; k <= n_in && !first_op; k++)
        if (has(st, U "input_blocks.%d.0.op.weight", k))
            first_op = k;
    u->layers = first_op ? first_op - 1 : n_in;
    if (u->layers < 1 || (n_in + 1) % (u->layers + 1) != 0)
        return status_fail(err, STATUS_FORMAT,
                           "%s: the U-Net's input_blocks (%d, first downsampler at %d) do not "
                           "form a Stable Diffusion layout", safetensors_path(st), n_in, first_op);
    u->blocks = (n_in + 1) / (u->layers + 1);
    if (u->blocks > MAXB)
        return status_fail(err, STATUS_FORMAT, "%s: %d U-Net levels, at most %d supported",
                           safetensors_path(st), u->blocks, MAXB);
    return STATUS_OK;
}

static enum status unet_shape_read(const struct safetensors *st, struct unet_shape *u,
                                   struct errbuf *err)
{
    const struct safetensors_tensor *t;
    memset(u, 0, sizeof *u);
    enum status s = need(st, 4, &t, err, U "input_blocks.0.0.weight");
    if (s != STATUS_OK)
        return s;
    u->in_ch = (int)t->shape[1];
    if ((s = need(st, 4, &t, err, U "out.2.weight")) != STATUS_OK)
        return s;
    u->out_ch = (int)t->shape[0];
    if ((s = unet_levels(st, u, err)) != STATUS_OK)
        return s;
    int L = u->layers;
    for (int i = 0; i < u->blocks; i++) {
        if ((s = need(st, 4, &t, err, U "input_blocks.%d.0.out_layers.3.weight", 1 + i * (L + 1))))
            return s;
        u->ch[i] = (int)t->shape[0];
        u->down_attn[i] = has(st, U "input_blocks.%d.1.proj_in.weight", 1 + i * (L + 1));
        u->up_attn[i] = has(st, U "output_blocks.%d.1.proj_in.weight", i * (L + 1));
    }
    u->mid_attn = has(st, U "middle_block.1.proj_in.weight");
    const char *attn = u->mid_attn ? "middle_block.1." : NULL;
    char first[64];
    for (int i = 0; !attn && i < u->blocks; i++)
        if (u->down_attn[i]) {
            snprintf(first, sizeof first, "input_blocks.%d.1.", 1 + i * (L + 1));
            attn = first;
        }
    if (!attn)
        return STATUS_OK;
    if ((s = need(st, 2, &t, err, U "%stransformer_blocks.0.attn2.to_k.weight", attn)))
        return s;
    u->cross_dim = (int)t->shape[1];
    if ((s = need(st, -1, &t, err, U "%sproj_in.weight", attn)))
        return s;
    u->linear_proj = t->ndim == 2;
    while (u->tlayers < 64 && has(st, U "%stransformer_blocks.%d.norm1.weight", attn, u->tlayers))
        u->tlayers++;
    return STATUS_OK;
}

static const char UNET_TEMPLATE[] =
    "{\"_class_name\": \"UNet2DConditionModel\", \"act_fn\": \"silu\", "
    "\"center_input_sample\": false, \"downsample_padding\": 1, \"flip_sin_to_cos\": true, "
    "\"freq_shift\": 0, \"mid_block_scale_factor\": 1, \"norm_eps\": 1e-05, "
    "\"dual_cross_attention\": false, \"only_cross_attention\": false, "
    "\"resnet_time_scale_shift\": \"default\", \"time_embedding_type\": \"positional\", "
    "\"conv_in_kernel\": 3, \"conv_out_kernel\": 3, \"num_attention_heads\": null}";

enum status ckcfg_unet(const struct safetensors *st, bool sd2, bool v_pred, json_t **out,
                       struct errbuf *err)
{
    struct unet_shape u;
    enum status s = unet_shape_read(st, &u, err);
    if (s == STATUS_OK)
        s = from_template(UNET_TEMPLATE, st, "unet", out, err);
    if (s != STATUS_OK)
        return s;
    const char *down[MAXB], *up[MAXB];
    for (int i = 0; i < u.blocks; i++) {
        down[i] = u.down_attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D";
        up[i] = u.up_attn[i] ? "CrossAttnUpBlock2D" : "UpBlock2D";
    }
    json_t *c = *out;
    json_object_set_new(c, "in_channels", json_integer(u.in_ch));
    json_object_set_new(c, "out_channels", json_integer(u.out_ch));
    json_object_set_new(c, "block_out_channels", int_array(u.ch, u.blocks));
    json_object_set_new(c, "layers_per_block", json_integer(u.layers));
    json_object_set_new(c, "down_block_types", str_array(down, u.blocks));
    json_object_set_new(c, "up_block_types", str_array(up, u.blocks));
    json_object_set_new(c, "mid_block_type",
                        u.mid_attn ? json_string("UNetMidBlock2DCrossAttn") : json_null());
    json_object_set_new(c, "cross_attention_dim", json_integer(u.cross_dim));
    json_object_set_new(c, "use_linear_projection", json_boolean(u.linear_proj));
    json_object_set_new(c, "transformer_layers_per_block", json_integer(u.tlayers ? u.tlayers : 1));
    json_object_set_new(c, "upcast_attention", json_boolean(sd2 && v_pred));
    json_object_set_new(c, "sample_size", json_integer(sd2 && v_pred ? 96 : 64));
    static const int SD_CH[4] = {320, 640, 1280, 1280}, SD2_HEADS[4] = {5, 10, 20, 20};
    if (u.blocks == 4 && same_ints(u.ch, SD_CH, 4)) {
        json_object_set_new(c, "attention_head_dim", sd2 ? int_array(SD2_HEADS, 4) : json_integer(8));
        json_object_set_new(c, "norm_num_groups", json_integer(32));
    }
    return STATUS_OK;
}

#undef U

/* --- VAE ------------------------------------------------------------------------ */

#define V LDM_VAE_PREFIX

static const char VAE_TEMPLATE[] =
    "{\"_class_name\": \"AutoencoderKL\", \"act_fn\": \"silu\", \"scaling_factor\": 0.18215, "
    "\"force_upcast\": true, \"shift_factor\": null, \"latents_mean\": null, "
    "\"latents_std\": null}";

enum status ckcfg_vae(const struct safetensors *st, int resolution, json_t **out,
                      struct errbuf *err)
{
    const struct safetensors_tensor *t;
    int ch[MAXB], n = 0, layers = 0;
    while (n < MAXB && has(st, V "encoder.down.%d.block.0.conv1.weight", n))
        n++;
    while (layers < 64 && has(st, V "encoder.down.0.block.%d.conv1.weight", layers))
        layers++;
    if (n == 0)
        return status_fail(err, STATUS_FORMAT, "%s: missing tensor '" V
                           "encoder.down.0.block.0.conv1.weight' (no VAE)", safetensors_path(st));
    enum status s = STATUS_OK;
    for (int i = 0; i < n && s == STATUS_OK; i++)
        if ((s = need(st, 4, &t, err, V "encoder.down.%d.block.0.conv2.weight", i)) == STATUS_OK)
            ch[i] = (int)t->shape[0];
    int in_ch = 0, out_ch = 0, latent = 0;
    if (s == STATUS_OK && (s = need(st, 4, &t, err, V "encoder.conv_in.weight")) == STATUS_OK)
        in_ch = (int)t->shape[1];
    if (s == STATUS_OK && (s = need(st, 4, &t, err, V "decoder.conv_out.weight")) == STATUS_OK)
        out_ch = (int)t->shape[0];
    if (s == STATUS_OK && (s = need(st, 4, &t, err, V "decoder.conv_in.weight")) == STATUS_OK)
        latent = (int)t->shape[1];
    if (s == STATUS_OK)
        s = from_template(VAE_TEMPLATE, st, "vae", out, err);
    if (s != STATUS_OK)
        return s;
    const char *down[MAXB], *up[MAXB];
    for (int i = 0; i < n; i++) {
        down[i] = "DownEncoderBlock2D";
        up[i] = "UpDecoderBlock2D";
    }
    json_t *c = *out;
    json_object_set_new(c, "in_channels", json_integer(in_ch));
    json_object_set_new(c, "out_channels", json_integer(out_ch));
    json_object_set_new(c, "latent_channels", json_integer(latent));
    json_object_set_new(c, "block_out_channels", int_array(ch, n));
    json_object_set_new(c, "layers_per_block", json_integer(layers));
    json_object_set_new(c, "down_block_types", str_array(down, n));
    json_object_set_new(c, "up_block_types", str_array(up, n));
    json_object_set_new(c, "use_quant_conv", json_boolean(has(st, V "quant_conv.weight")));
    json_object_set_new(c, "use_post_quant_conv", json_boolean(has(st, V "post_quant_conv.weight")));
    json_object_set_new(c, "mid_block_add_attention", json_boolean(has(st, V "encoder.mid.attn_1.q.weight")));
    json_object_set_new(c, "sample_size", json_integer(resolution));
    static const int SD_CH[4] = {128, 256, 512, 512};
    if (n == 4 && same_ints(ch, SD_CH, 4))
        json_object_set_new(c, "norm_num_groups", json_integer(32));
    return STATUS_OK;
}

#undef V

/* --- text encoder ----------------------------------------------------------------- */

static const char TEXT_TEMPLATE[] =
    "{\"architectures\": [\"CLIPTextModel\"], \"model_type\": \"clip_text_model\", "
    "\"layer_norm_eps\": 1e-05, \"bos_token_id\": 0, \"eos_token_id\": 2, "
    "\"pad_token_id\": 1, \"attention_dropout\": 0.0, \"dropout\": 0.0}";

struct text_shape {
    int vocab, positions, hidden, inter, layers, proj;
};

static enum status text_shape_read(const struct safetensors *st, bool openclip,
                                   bool clip_legacy, struct text_shape *x, struct errbuf *err)
{
    const struct safetensors_tensor *t;
    const char *p = openclip      ? LDM_OPENCLIP_PREFIX
                    : clip_legacy ? LDM_CLIP_PREFIX
                                  : LDM_CLIP_PREFIX "text_model.";
    memset(x, 0, sizeof *x);
    enum status s = need(st, 2, &t, err, openclip ? "%stoken_embedding.weight"
                                                  : "%sembeddings.token_embedding.weight", p);
    if (s != STATUS_OK)
        return s;
    x->vocab = (int)t->shape[0];
    x->hidden = (int)t->shape[1];
    s = need(st, 2, &t, err, openclip ? "%spositional_embedding"
                                      : "%sembeddings.position_embedding.weight", p);
    if (s != STATUS_OK)
        return s;
    x->positions = (int)t->shape[0];
    const char *layer_fmt = openclip ? "%stransformer.resblocks.%d.ln_1.weight"
                                     : "%sencoder.layers.%d.layer_norm1.weight";
    while (x->layers < 256 && has(st, layer_fmt, p, x->layers))
        x->layers++;
    if (openclip)
        x->layers--; /* SD2 conditions on the penultimate layer: the last is unused */
    if (x->layers < 1)
        return status_fail(err, STATUS_FORMAT, "%s: the text encoder has no usable layers",
                           safetensors_path(st));
    s = need(st, 2, &t, err, openclip ? "%stransformer.resblocks.0.mlp.c_fc.weight"
                                      : "%sencoder.layers.0.mlp.fc1.weight", p);
    if (s != STATUS_OK)
        return s;
    x->inter = (int)t->shape[0];
    /* projection_dim (unused by CLIPTextModel): ViT-L's is its width (768); SD2.x's
     * config says 512 although OpenCLIP's text_projection is {1024,1024}; other widths
     * take the text_projection's. */
    x->proj = x->hidden;
    if (openclip && x->hidden == 1024)
        x->proj = 512;
    else if (openclip && (t = safetensors_find(st, LDM_OPENCLIP_PREFIX "text_projection")) &&
             t->ndim == 2)
        x->proj = (int)t->shape[1];
    return STATUS_OK;
}

enum status ckcfg_text(const struct safetensors *st, bool openclip, bool clip_legacy,
                       json_t **out, struct errbuf *err)
{
    struct text_shape x;
    enum status s = text_shape_read(st, openclip, clip_legacy, &x, err);
    if (s == STATUS_OK)
        s = from_template(TEXT_TEMPLATE, st, "text_encoder", out, err);
    if (s != STATUS_OK)
        return s;
    json_t *c = *out;
    json_object_set_new(c, "vocab_size", json_integer(x.vocab));
    json_object_set_new(c, "max_position_embeddings", json_integer(x.positions));
    json_object_set_new(c, "hidden_size", json_integer(x.hidden));
    json_object_set_new(c, "intermediate_size", json_integer(x.inter));
    json_object_set_new(c, "num_hidden_layers", json_integer(x.layers));
    json_object_set_new(c, "projection_dim", json_integer(x.proj));
    json_object_set_new(c, "hidden_act", json_string(openclip ? "gelu" : "quick_gelu"));
    if (x.hidden == (openclip ? 1024 : 768))
        json_object_set_new(c, "num_attention_heads", json_integer(x.hidden / 64));
    return STATUS_OK;
}

/* --- scheduler ------------------------------------------------------------------- */

enum status ckcfg_scheduler(const char *path, enum checkpoint_family family, json_t **out,
                            struct errbuf *err)
{
    const char *cls = "PNDMScheduler", *pred = "epsilon", *spacing = "leading";
    if (family == CHECKPOINT_FAMILY_SD2_V) {
        cls = "DDIMScheduler";
        pred = "v_prediction";
    } else if (family == CHECKPOINT_FAMILY_SD_TURBO) {
        cls = "EulerDiscreteScheduler";
        spacing = "trailing";
    }
    char text[1024];
    snprintf(text, sizeof text,
             "{\"_class_name\": \"%s\", \"beta_start\": 0.00085, \"beta_end\": 0.012, "
             "\"beta_schedule\": \"scaled_linear\", \"num_train_timesteps\": 1000, "
             "\"prediction_type\": \"%s\", \"timestep_spacing\": \"%s\", \"steps_offset\": 1, "
             "\"clip_sample\": false, \"set_alpha_to_one\": false, \"skip_prk_steps\": true, "
             "\"trained_betas\": null}",
             cls, pred, spacing);
    char source[1200];
    snprintf(source, sizeof source, "%s (scheduler config synthesised for %s)", path,
             checkpoint_family_name(family));
    return model_config_parse(text, source, out, err);
}

/* --- checks of what the shapes cannot give ----------------------------------------- */

static enum status required(const json_t *cfg, const char *key, struct errbuf *err)
{
    if (model_config_has(cfg, key))
        return STATUS_OK;
    return status_fail(err, STATUS_FORMAT,
                       "%s: key '%s' is required: the tensor shapes cannot give it for these "
                       "non-standard widths; pass checkpoint_options.config_dir or config_override",
                       model_config_source(cfg), key);
}

/* Every channel count is a multiple of per[i] (a count that must divide it). */
static enum status divides(const json_t *cfg, const char *key, const int *per, const int *ch,
                           int n, struct errbuf *err)
{
    for (int i = 0; i < n; i++)
        if (per[i] < 1 || ch[i] % per[i] != 0)
            return status_fail(err, STATUS_FORMAT, "%s: key '%s': %d does not divide %d channels",
                               model_config_source(cfg), key, per[i], ch[i]);
    return STATUS_OK;
}

static enum status check_groups(const json_t *cfg, struct errbuf *err)
{
    int ch[MAXB], n = 0, g = 0, per[MAXB];
    enum status s = required(cfg, "norm_num_groups", err);
    if (s == STATUS_OK)
        s = model_config_int_array(cfg, "block_out_channels", ch, MAXB, &n, err);
    if (s == STATUS_OK)
        s = model_config_int(cfg, "norm_num_groups", 32, &g, err);
    if (s != STATUS_OK)
        return s;
    for (int i = 0; i < n; i++)
        per[i] = g;
    return divides(cfg, "norm_num_groups", per, ch, n, err);
}

enum status ckcfg_check_unet(const json_t *cfg, struct errbuf *err)
{
    enum status s = check_groups(cfg, err);
    const char *key = model_config_has(cfg, "num_attention_heads") ? "num_attention_heads"
                                                                   : "attention_head_dim";
    if (s == STATUS_OK)
        s = required(cfg, key, err);
    int ch[MAXB], n = 0, heads[MAXB];
    if (s == STATUS_OK)
        s = model_config_int_array(cfg, "block_out_channels", ch, MAXB, &n, err);
    if (s == STATUS_OK)
        s = model_config_int_per_block(cfg, key, n, 8, heads, err);
    return s == STATUS_OK ? divides(cfg, key, heads, ch, n, err) : s;
}

enum status ckcfg_check_vae(const json_t *cfg, struct errbuf *err)
{
    return check_groups(cfg, err);
}

enum status ckcfg_check_text(const json_t *cfg, struct errbuf *err)
{
    int hidden = 0, heads = 0;
    enum status s = required(cfg, "num_attention_heads", err);
    if (s == STATUS_OK)
        s = model_config_int(cfg, "hidden_size", 0, &hidden, err);
    if (s == STATUS_OK)
        s = model_config_int(cfg, "num_attention_heads", 0, &heads, err);
    return s == STATUS_OK ? divides(cfg, "num_attention_heads", &heads, &hidden, 1, err) : s;
}
