/* models/unet_config.c — UNet2DConditionModel config.json → struct unet_config,
 * resolved per block as diffusers' constructor does; see unet.h. */
#include <string.h>

#include "models/model_config.h"
#include "models/unet.h"

static enum status unsupported(const json_t *obj, const char *key, const char *what,
                               struct errbuf *err)
{
    return status_fail(err, STATUS_UNSUPPORTED, "%s: key '%s': %s", model_config_source(obj),
                       key, what);
}

static enum status inconsistent(const json_t *obj, const char *key, const char *what,
                                struct errbuf *err)
{
    return status_fail(err, STATUS_FORMAT, "%s: key '%s': %s", model_config_source(obj), key,
                       what);
}

/* key must be absent or null (a feature SD U-Nets do not use). */
static enum status require_null(const json_t *obj, const char *key, struct errbuf *err)
{
    if (model_config_has(obj, key))
        return unsupported(obj, key, "only null is supported", err);
    return STATUS_OK;
}

static enum status require_string(const json_t *obj, const char *key, const char *want,
                                  struct errbuf *err)
{
    const char *v;
    TRY(model_config_string(obj, key, want, &v, err));
    if (strcmp(v, want) != 0)
        return status_fail(err, STATUS_UNSUPPORTED, "%s: key '%s': \"%s\" is not supported "
                           "(only \"%s\")", model_config_source(obj), key, v, want);
    return STATUS_OK;
}

static enum status require_bool(const json_t *obj, const char *key, bool want,
                                struct errbuf *err)
{
    bool v;
    TRY(model_config_bool(obj, key, want, &v, err));
    if (v != want)
        return unsupported(obj, key, want ? "only true is supported" : "only false is supported",
                           err);
    return STATUS_OK;
}

static enum status require_number(const json_t *obj, const char *key, double want,
                                  struct errbuf *err)
{
    double v;
    TRY(model_config_float(obj, key, want, &v, err));
    if (v != want)
        return status_fail(err, STATUS_UNSUPPORTED, "%s: key '%s': %g is not supported (only %g)",
                           model_config_source(obj), key, v, want);
    return STATUS_OK;
}

/* Features outside the SD family's U-Net: each key must keep its default. */
static enum status check_unsupported_features(const json_t *obj, struct errbuf *err)
{
    static const char *const must_be_null[] = {
        "class_embed_type", "addition_embed_type", "encoder_hid_dim", "encoder_hid_dim_type",
        "time_embedding_dim", "time_embedding_act_fn", "timestep_post_act",
        "time_cond_proj_dim", "num_class_embeds", "cross_attention_norm",
        "reverse_transformer_layers_per_block",
    };
    for (size_t i = 0; i < sizeof must_be_null / sizeof must_be_null[0]; i++)
        TRY(require_null(obj, must_be_null[i], err));
    /* diffusers itself raises for it (the naming issue of attention_head_dim) */
    if (model_config_has(obj, "num_attention_heads"))
        return unsupported(obj, "num_attention_heads",
                           "must be null (diffusers rejects it too; attention_head_dim gives "
                           "the number of heads)", err);
    const char *class_name;
    TRY(model_config_string(obj, "_class_name", "UNet2DConditionModel", &class_name, err));
    if (strcmp(class_name, "UNet2DConditionModel") != 0)
        return unsupported(obj, "_class_name", "only UNet2DConditionModel is supported", err);
    TRY(require_string(obj, "act_fn", "silu", err));
    TRY(require_string(obj, "resnet_time_scale_shift", "default", err));
    TRY(require_string(obj, "time_embedding_type", "positional", err));
    TRY(require_string(obj, "attention_type", "default", err));
    TRY(require_string(obj, "mid_block_type", "UNetMidBlock2DCrossAttn", err));
    TRY(require_bool(obj, "dual_cross_attention", false, err));
    TRY(require_bool(obj, "center_input_sample", false, err));
    TRY(require_bool(obj, "resnet_skip_time_act", false, err));
    TRY(require_bool(obj, "class_embeddings_concat", false, err));
    if (model_config_has(obj, "mid_block_only_cross_attention"))
        TRY(require_bool(obj, "mid_block_only_cross_attention", false, err));
    TRY(require_number(obj, "downsample_padding", 1, err));
    TRY(require_number(obj, "mid_block_scale_factor", 1, err));
    TRY(require_number(obj, "resnet_out_scale_factor", 1, err));
    /* only_cross_attention: a bool or a per-block list, all false */
    const json_t *oca = json_object_get(obj, "only_cross_attention");
    if (json_is_array(oca)) {
        for (size_t i = 0; i < json_array_size(oca); i++)
            if (!json_is_false(json_array_get(oca, i)))
                return unsupported(obj, "only_cross_attention", "only false is supported", err);
    } else {
        TRY(require_bool(obj, "only_cross_attention", false, err));
    }
    /* norm_num_groups: null means "no conv_norm_out" in diffusers */
    if (json_is_null(json_object_get(obj, "norm_num_groups")))
        return unsupported(obj, "norm_num_groups", "null (no output norm) is not supported", err);
    return STATUS_OK;
}

static enum status parse_block_types(const json_t *obj, const char *key, const char *plain,
                                     const char *cross, const char *const *defaults,
                                     enum unet_block_type *out, int *n, struct errbuf *err)
{
    const char *names[UNET_MAX_BLOCKS];
    TRY(model_config_string_array(obj, key, names, UNET_MAX_BLOCKS, n, err));
    if (*n == 0) {
        for (*n = 0; *n < 4; (*n)++)
            names[*n] = defaults[*n];
    }
    for (int i = 0; i < *n; i++) {
        if (strcmp(names[i], plain) == 0)
            out[i] = UNET_BLOCK_PLAIN;
        else if (strcmp(names[i], cross) == 0)
            out[i] = UNET_BLOCK_CROSS_ATTN;
        else
            return status_fail(err, STATUS_UNSUPPORTED,
                               "%s: key '%s': block type \"%s\" is not supported (only %s, %s)",
                               model_config_source(obj), key, names[i], cross, plain);
    }
    return STATUS_OK;
}

static enum status parse_blocks(const json_t *obj, struct unet_config *cfg, struct errbuf *err)
{
    static const char *const down_default[] = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                               "CrossAttnDownBlock2D", "DownBlock2D"};
    static const char *const up_default[] = {"UpBlock2D", "CrossAttnUpBlock2D",
                                             "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
    int n_down, n_up, n_ch;
    TRY(parse_block_types(obj, "down_block_types", "DownBlock2D", "CrossAttnDownBlock2D",
                          down_default, cfg->down_types, &n_down, err));
    TRY(parse_block_types(obj, "up_block_types", "UpBlock2D", "CrossAttnUpBlock2D", up_default,
                          cfg->up_types, &n_up, err));
    TRY(model_config_int_array(obj, "block_out_channels", cfg->block_out_channels,
                               UNET_MAX_BLOCKS, &n_ch, err));
    if (n_ch == 0) {
        static const int def[] = {320, 640, 1280, 1280};
        memcpy(cfg->block_out_channels, def, sizeof def);
        n_ch = 4;
    }
    if (n_up != n_down)
        return inconsistent(obj, "up_block_types", "must have as many entries as down_block_types",
                            err);
    if (n_ch != n_down)
        return inconsistent(obj, "block_out_channels",
                            "must have as many entries as down_block_types", err);
    cfg->n_blocks = n_down;
    for (int i = 0; i < n_down; i++)
        if (cfg->block_out_channels[i] < 1)
            return inconsistent(obj, "block_out_channels", "entries must be positive", err);
    return STATUS_OK;
}

/* transformer_layers_per_block: an int or a per-block list of ints (nested per-layer
 * lists belong to asymmetric U-Nets and need reverse_transformer_layers_per_block). */
static enum status parse_transformer_layers(const json_t *obj, struct unet_config *cfg,
                                            struct errbuf *err)
{
    const char *key = "transformer_layers_per_block";
    const json_t *v = json_object_get(obj, key);
    if (json_is_array(v) && json_array_size(v) > 0 && json_is_array(json_array_get(v, 0)))
        return unsupported(obj, key, "per-layer lists are not supported", err);
    int per_block[UNET_MAX_BLOCKS];
    TRY(model_config_int_per_block(obj, key, cfg->n_blocks, 1, per_block, err));
    for (int i = 0; i < cfg->n_blocks; i++) {
        if (per_block[i] < 1)
            return inconsistent(obj, key, "entries must be positive", err);
        for (int j = 0; j < UNET_MAX_LAYERS; j++)
            cfg->transformer_layers_down[i][j] = per_block[i];
        /* up block i takes the reversed list */
        for (int j = 0; j <= UNET_MAX_LAYERS; j++)
            cfg->transformer_layers_up[i][j] = per_block[cfg->n_blocks - 1 - i];
    }
    cfg->transformer_layers_mid = per_block[cfg->n_blocks - 1];
    return STATUS_OK;
}

static enum status parse_attention(const json_t *obj, struct unet_config *cfg,
                                   struct errbuf *err)
{
    int n = cfg->n_blocks;
    /* num_attention_heads = num_attention_heads or attention_head_dim (the former is
     * null, checked above): the "head dim" key holds the number of heads */
    TRY(model_config_int_per_block(obj, "attention_head_dim", n, 8, cfg->heads, err));
    TRY(model_config_int_per_block(obj, "cross_attention_dim", n, 1280, cfg->cross_attention_dim,
                                   err));
    TRY(model_config_int_per_block(obj, "layers_per_block", n, 2, cfg->layers_per_block, err));
    for (int i = 0; i < n; i++) {
        int c = cfg->block_out_channels[i];
        if (cfg->heads[i] < 1 || cfg->heads[i] > c)
            return inconsistent(obj, "attention_head_dim",
                                "each entry (the number of heads) must be in 1..channels", err);
        if (cfg->cross_attention_dim[i] < 1)
            return inconsistent(obj, "cross_attention_dim", "entries must be positive", err);
        if (cfg->layers_per_block[i] < 1 || cfg->layers_per_block[i] > UNET_MAX_LAYERS)
            return status_fail(err, STATUS_UNSUPPORTED,
                               "%s: key 'layers_per_block': entries must be in 1..%d",
                               model_config_source(obj), UNET_MAX_LAYERS);
    }
    TRY(parse_transformer_layers(obj, cfg, err));
    TRY(model_config_bool(obj, "use_linear_projection", false, &cfg->use_linear_projection, err));
    TRY(model_config_bool(obj, "upcast_attention", false, &cfg->upcast_attention, err));
    return STATUS_OK;
}

static enum status parse_norms_and_convs(const json_t *obj, struct unet_config *cfg,
                                         struct errbuf *err)
{
    double eps, shift;
    TRY(model_config_int(obj, "in_channels", 4, &cfg->in_channels, err));
    TRY(model_config_int(obj, "out_channels", 4, &cfg->out_channels, err));
    if (cfg->in_channels < 1)
        return inconsistent(obj, "in_channels", "must be positive", err);
    if (cfg->out_channels < 1)
        return inconsistent(obj, "out_channels", "must be positive", err);
    TRY(model_config_int(obj, "norm_num_groups", 32, &cfg->norm_num_groups, err));
    TRY(model_config_float(obj, "norm_eps", 1e-5, &eps, err));
    cfg->norm_eps = (float)eps;
    if (cfg->norm_num_groups < 1)
        return inconsistent(obj, "norm_num_groups", "must be positive", err);
    if (!(eps > 0))
        return inconsistent(obj, "norm_eps", "must be positive", err);
    for (int i = 0; i < cfg->n_blocks; i++)
        if (cfg->block_out_channels[i] % cfg->norm_num_groups != 0)
            return inconsistent(obj, "norm_num_groups", "must divide every block_out_channels",
                                err);
    TRY(model_config_bool(obj, "flip_sin_to_cos", true, &cfg->flip_sin_to_cos, err));
    TRY(model_config_float(obj, "freq_shift", 0, &shift, err));
    cfg->freq_shift = (float)shift;
    if (cfg->block_out_channels[0] % 2 != 0)
        return unsupported(obj, "block_out_channels",
                           "an odd first entry (odd timestep embedding) is not supported", err);
    if ((float)(cfg->block_out_channels[0] / 2) - cfg->freq_shift == 0)
        return inconsistent(obj, "freq_shift", "equals half the embedding width", err);
    TRY(model_config_int(obj, "conv_in_kernel", 3, &cfg->conv_in_kernel, err));
    TRY(model_config_int(obj, "conv_out_kernel", 3, &cfg->conv_out_kernel, err));
    if (cfg->conv_in_kernel < 1 || cfg->conv_in_kernel % 2 == 0)
        return unsupported(obj, "conv_in_kernel", "must be odd and positive", err);
    if (cfg->conv_out_kernel < 1 || cfg->conv_out_kernel % 2 == 0)
        return unsupported(obj, "conv_out_kernel", "must be odd and positive", err);
    cfg->time_embed_dim = 4 * cfg->block_out_channels[0];
    return STATUS_OK;
}

enum status unet_config_from_json(const json_t *obj, struct unet_config *cfg,
                                  struct errbuf *err)
{
    memset(cfg, 0, sizeof *cfg);
    TRY(check_unsupported_features(obj, err));
    TRY(parse_blocks(obj, cfg, err));
    TRY(parse_attention(obj, cfg, err));
    TRY(parse_norms_and_convs(obj, cfg, err));
    return STATUS_OK;
}

enum status unet_config_parse(const char *json_text, const char *source,
                              struct unet_config *cfg, struct errbuf *err)
{
    json_t *obj;
    TRY(model_config_parse(json_text, source, &obj, err));
    enum status s = unet_config_from_json(obj, cfg, err);
    json_decref(obj);
    return s;
}

enum status unet_config_load_file(const char *path, struct unet_config *cfg,
                                  struct errbuf *err)
{
    json_t *obj;
    TRY(model_config_load(path, &obj, err));
    enum status s = unet_config_from_json(obj, cfg, err);
    json_decref(obj);
    return s;
}
