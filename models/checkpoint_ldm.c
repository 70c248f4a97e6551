/* models/checkpoint_ldm.c — diffusers → original single-file ("ldm") tensor names for
 * the U-Net, the VAE and the SD1/SD2 text encoders; see checkpoint.h.
 *
 * U-Net (under model.diffusion_model.), L = layers_per_block:
 *   conv_in → input_blocks.0.0; time_embedding.linear_{1,2} → time_embed.{0,2};
 *   down_blocks.i.resnets.j → input_blocks.(1+i(L+1)+j).0, .attentions.j → ….1,
 *   down_blocks.i.downsamplers.0.conv → input_blocks.((i+1)(L+1)).0.op;
 *   mid_block.resnets.0 / attentions.0 / resnets.1 → middle_block.0 / 1 / 2;
 *   up_blocks.i.resnets.j → output_blocks.(i(L+1)+j).0, .attentions.j → ….1,
 *   up_blocks.i.upsamplers.0.conv → output_blocks.(i(L+1)+L).(2 with attention, else 1).conv;
 *   conv_norm_out / conv_out → out.0 / out.2.  Resnets: norm1 in_layers.0, conv1
 *   in_layers.2, time_emb_proj emb_layers.1, norm2 out_layers.0, conv2 out_layers.3,
 *   conv_shortcut skip_connection.  Transformer internals keep diffusers' names.
 * VAE (under first_stage_model.), n = len(block_out_channels):
 *   encoder.down_blocks.i.resnets.j → encoder.down.i.block.j, .downsamplers.0 → .downsample;
 *   decoder.up_blocks.i → decoder.up.(n−1−i) (block.j / upsample); mid_block.resnets.0/1
 *   → mid.block_1/2; mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0} →
 *   mid.attn_1.{norm,q,k,v,proj_out} (stored as 1×1 convs); conv_norm_out → norm_out;
 *   conv_shortcut → nin_shortcut; the rest (conv_in, conv_out, quant_conv,
 *   post_quant_conv) unchanged.
 * SD1 text: cond_stage_model.transformer. + the HF name (files written by old
 *   transformers versions lack its "text_model." part, as A1111 also accepts).
 * SD2 text (cond_stage_model.model., OpenCLIP): token_embedding.weight,
 *   positional_embedding, ln_final; layers.i → transformer.resblocks.i with
 *   self_attn.{q,k,v}_proj → rows [0,D), [D,2D), [2D,3D) of attn.in_proj_{weight,bias},
 *   self_attn.out_proj → attn.out_proj, layer_norm1/2 → ln_1/2, mlp.fc1/fc2 →
 *   mlp.c_fc/c_proj.  Layers ≥ text_layers are not part of the model.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/checkpoint_internal.h"
#include "models/model_config.h"

/* Consumes `lit` at *p. */
static bool eat(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

/* Consumes "<decimal>." at *p (at most 4 digits). */
static bool eat_index(const char **p, int *v)
{
    const char *s = *p;
    int x = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 5) {
        x = x * 10 + (*s++ - '0');
        digits++;
    }
    if (digits == 0 || digits > 4 || *s != '.')
        return false;
    *v = x;
    *p = s + 1;
    return true;
}

static bool put(struct weights_ref *ref, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool put(struct weights_ref *ref, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ref->name, sizeof ref->name, fmt, ap);
    va_end(ap);
    return n > 0 && (size_t)n < sizeof ref->name;
}

/* --- U-Net ---------------------------------------------------------------------- */

static const char *const RESNET_MAP[][2] = {
    {"norm1.", "in_layers.0."},     {"conv1.", "in_layers.2."},
    {"time_emb_proj.", "emb_layers.1."}, {"norm2.", "out_layers.0."},
    {"conv2.", "out_layers.3."},    {"conv_shortcut.", "skip_connection."},
};

/* A resnet's inner name in the original layout. */
static bool unet_resnet(struct weights_ref *ref, const char *block, const char *rest)
{
    for (size_t i = 0; i < sizeof RESNET_MAP / sizeof RESNET_MAP[0]; i++) {
        const char *r = rest;
        if (eat(&r, RESNET_MAP[i][0]))
            return put(ref, LDM_UNET_PREFIX "%s%s%s", block, RESNET_MAP[i][1], r);
    }
    return false;
}

static bool unet_down(const struct ldm_layout *lay, const char *p, struct weights_ref *ref)
{
    int i, j, L = lay->unet_layers;
    char block[64];
    if (!eat_index(&p, &i) || i >= lay->unet_blocks)
        return false;
    if (eat(&p, "resnets.") && eat_index(&p, &j) && j < L) {
        snprintf(block, sizeof block, "input_blocks.%d.0.", 1 + i * (L + 1) + j);
        return unet_resnet(ref, block, p);
    }
    if (eat(&p, "attentions.") && eat_index(&p, &j) && j < L)
        return put(ref, LDM_UNET_PREFIX "input_blocks.%d.1.%s", 1 + i * (L + 1) + j, p);
    if (eat(&p, "downsamplers.0.conv.") && i < lay->unet_blocks - 1)
        return put(ref, LDM_UNET_PREFIX "input_blocks.%d.0.op.%s", (i + 1) * (L + 1), p);
    return false;
}

static bool unet_up(const struct ldm_layout *lay, const char *p, struct weights_ref *ref)
{
    int i, j, L = lay->unet_layers;
    char block[64];
    if (!eat_index(&p, &i) || i >= lay->unet_blocks)
        return false;
    if (eat(&p, "resnets.") && eat_index(&p, &j) && j <= L) {
        snprintf(block, sizeof block, "output_blocks.%d.0.", i * (L + 1) + j);
        return unet_resnet(ref, block, p);
    }
    if (eat(&p, "attentions.") && eat_index(&p, &j) && j <= L)
        return put(ref, LDM_UNET_PREFIX "output_blocks.%d.1.%s", i * (L + 1) + j, p);
    if (eat(&p, "upsamplers.0.conv.") && i < lay->unet_blocks - 1)
        return put(ref, LDM_UNET_PREFIX "output_blocks.%d.%d.conv.%s", i * (L + 1) + L,
                   lay->unet_up_attn[i] ? 2 : 1, p);
    return false;
}

bool ldm_map_unet(const void *layout, const char *name, struct weights_ref *ref)
{
    const struct ldm_layout *lay = layout;
    const char *p = name;
    memset(ref, 0, sizeof *ref);
    if (eat(&p, "conv_in."))
        return put(ref, LDM_UNET_PREFIX "input_blocks.0.0.%s", p);
    if (eat(&p, "time_embedding.linear_1."))
        return put(ref, LDM_UNET_PREFIX "time_embed.0.%s", p);
    if (eat(&p, "time_embedding.linear_2."))
        return put(ref, LDM_UNET_PREFIX "time_embed.2.%s", p);
    if (eat(&p, "conv_norm_out."))
        return put(ref, LDM_UNET_PREFIX "out.0.%s", p);
    if (eat(&p, "conv_out."))
        return put(ref, LDM_UNET_PREFIX "out.2.%s", p);
    if (eat(&p, "down_blocks."))
        return unet_down(lay, p, ref);
    if (eat(&p, "up_blocks."))
        return unet_up(lay, p, ref);
    if (eat(&p, "mid_block.resnets.0."))
        return unet_resnet(ref, "middle_block.0.", p);
    if (eat(&p, "mid_block.attentions.0."))
        return put(ref, LDM_UNET_PREFIX "middle_block.1.%s", p);
    if (eat(&p, "mid_block.resnets.1."))
        return unet_resnet(ref, "middle_block.2.", p);
    return false;
}

/* --- VAE ------------------------------------------------------------------------ */

/* A VAE resnet's inner name: conv_shortcut → nin_shortcut, the rest unchanged. */
static bool vae_resnet(struct weights_ref *ref, const char *block, const char *rest)
{
    const char *r = rest;
    if (eat(&r, "conv_shortcut."))
        return put(ref, LDM_VAE_PREFIX "%snin_shortcut.%s", block, r);
    return put(ref, LDM_VAE_PREFIX "%s%s", block, rest);
}

static const char *const VAE_ATTN_MAP[][2] = {
    {"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."}, {"to_v.", "v."},
    {"to_out.0.", "proj_out."},
};

static bool vae_mid(const char *side, const char *p, struct weights_ref *ref)
{
    char block[64];
    if (eat(&p, "resnets.0.")) {
        snprintf(block, sizeof block, "%s.mid.block_1.", side);
        return vae_resnet(ref, block, p);
    }
    if (eat(&p, "resnets.1.")) {
        snprintf(block, sizeof block, "%s.mid.block_2.", side);
        return vae_resnet(ref, block, p);
    }
    if (!eat(&p, "attentions.0."))
        return false;
    for (size_t i = 0; i < sizeof VAE_ATTN_MAP / sizeof VAE_ATTN_MAP[0]; i++) {
        const char *r = p;
        if (eat(&r, VAE_ATTN_MAP[i][0]))
            return put(ref, LDM_VAE_PREFIX "%s.mid.attn_1.%s%s", side, VAE_ATTN_MAP[i][1], r);
    }
    return false;
}

static bool vae_side(const struct ldm_layout *lay, const char *side, const char *p,
                     struct weights_ref *ref)
{
    int i, j, n = lay->vae_blocks;
    char block[64];
    bool enc = side[0] == 'e';
    const char *rest0 = p;
    if (eat(&p, "mid_block."))
        return vae_mid(side, p, ref);
    if (eat(&p, "conv_norm_out."))
        return put(ref, LDM_VAE_PREFIX "%s.norm_out.%s", side, p);
    if (eat(&p, enc ? "down_blocks." : "up_blocks.")) {
        if (!eat_index(&p, &i) || i >= n)
            return false;
        int level = enc ? i : n - 1 - i;
        if (eat(&p, "resnets.") && eat_index(&p, &j)) {
            snprintf(block, sizeof block, "%s.%s.%d.block.%d.", side, enc ? "down" : "up", level, j);
            return vae_resnet(ref, block, p);
        }
        if (eat(&p, enc ? "downsamplers.0." : "upsamplers.0."))
            return put(ref, LDM_VAE_PREFIX "%s.%s.%d.%s.%s", side, enc ? "down" : "up", level,
                       enc ? "downsample" : "upsample", p);
        return false;
    }
    if (eat(&p, "conv_in.") || eat(&p, "conv_out."))
        return put(ref, LDM_VAE_PREFIX "%s.%s", side, rest0);
    return false;
}

bool ldm_map_vae(const void *layout, const char *name, struct weights_ref *ref)
{
    const struct ldm_layout *lay = layout;
    const char *p = name;
    memset(ref, 0, sizeof *ref);
    if (eat(&p, "encoder."))
        return vae_side(lay, "encoder", p, ref);
    if (eat(&p, "decoder."))
        return vae_side(lay, "decoder", p, ref);
    if (eat(&p, "quant_conv.") || eat(&p, "post_quant_conv."))
        return put(ref, LDM_VAE_PREFIX "%s", name);
    return false;
}

/* --- text encoders -------------------------------------------------------------- */

static const char *const OPENCLIP_LAYER_MAP[][2] = {
    {"self_attn.out_proj.", "attn.out_proj."}, {"layer_norm1.", "ln_1."},
    {"layer_norm2.", "ln_2."}, {"mlp.fc1.", "mlp.c_fc."}, {"mlp.fc2.", "mlp.c_proj."},
};

static bool openclip_layer(const struct ldm_layout *lay, const char *p, struct weights_ref *ref)
{
    int i;
    if (!eat_index(&p, &i) || i >= lay->text_layers)
        return false;
    static const char qkv[] = "qkv";
    for (int j = 0; j < 3; j++) {
        char part[32];
        snprintf(part, sizeof part, "self_attn.%c_proj.", qkv[j]);
        const char *r = p;
        if (!eat(&r, part))
            continue;
        if (strcmp(r, "weight") != 0 && strcmp(r, "bias") != 0)
            return false;
        ref->row_begin = (int64_t)j * lay->text_hidden;
        ref->row_count = lay->text_hidden;
        return put(ref, LDM_OPENCLIP_PREFIX "transformer.resblocks.%d.attn.in_proj_%s", i, r);
    }
    for (size_t k = 0; k < sizeof OPENCLIP_LAYER_MAP / sizeof OPENCLIP_LAYER_MAP[0]; k++) {
        const char *r = p;
        if (eat(&r, OPENCLIP_LAYER_MAP[k][0]))
            return put(ref, LDM_OPENCLIP_PREFIX "transformer.resblocks.%d.%s%s", i,
                       OPENCLIP_LAYER_MAP[k][1], r);
    }
    return false;
}

static bool openclip_map(const struct ldm_layout *lay, const char *name, struct weights_ref *ref)
{
    const char *p = name;
    if (strcmp(name, "text_model.embeddings.token_embedding.weight") == 0)
        return put(ref, LDM_OPENCLIP_PREFIX "token_embedding.weight");
    if (strcmp(name, "text_model.embeddings.position_embedding.weight") == 0)
        return put(ref, LDM_OPENCLIP_PREFIX "positional_embedding");
    if (eat(&p, "text_model.final_layer_norm."))
        return put(ref, LDM_OPENCLIP_PREFIX "ln_final.%s", p);
    if (eat(&p, "text_model.encoder.layers."))
        return openclip_layer(lay, p, ref);
    return false;
}

/* SD1: the HF names under the prefix (old files: without "text_model."); layers
 * beyond the model's are not part of it. */
static bool clip_map(const struct ldm_layout *lay, const char *name, struct weights_ref *ref)
{
    const char *p = name;
    int i;
    if (!eat(&p, "text_model."))
        return false;
    const char *inner = p;
    if (eat(&p, "encoder.layers.") && (!eat_index(&p, &i) || i >= lay->text_layers))
        return false;
    return put(ref, LDM_CLIP_PREFIX "%s", lay->clip_legacy ? inner : name);
}

bool ldm_map_text(const void *layout, const char *name, struct weights_ref *ref)
{
    const struct ldm_layout *lay = layout;
    memset(ref, 0, sizeof *ref);
    return lay->openclip ? openclip_map(lay, name, ref) : clip_map(lay, name, ref);
}

/* --- layout from configs ------------------------------------------------------- */

static enum status block_count(const json_t *cfg, const char *key, int *n, struct errbuf *err)
{
    int ch[LDM_MAX_BLOCKS + 1];
    enum status s = model_config_int_array(cfg, key, ch, LDM_MAX_BLOCKS, n, err);
    if (s == STATUS_OK && *n < 1)
        return status_fail(err, STATUS_FORMAT, "%s: key '%s': expected 1 to %d blocks",
                           model_config_source(cfg), key, LDM_MAX_BLOCKS);
    return s;
}

enum status ldm_layout_from_configs(struct ldm_layout *lay, const json_t *unet,
                                    const json_t *vae, const json_t *text, bool openclip,
                                    struct errbuf *err)
{
    memset(lay, 0, sizeof *lay);
    lay->openclip = openclip;
    enum status s = block_count(unet, "block_out_channels", &lay->unet_blocks, err);
    if (s == STATUS_OK)
        s = model_config_int(unet, "layers_per_block", 2, &lay->unet_layers, err);
    const char *types[LDM_MAX_BLOCKS];
    int n_types = 0;
    if (s == STATUS_OK)
        s = model_config_string_array(unet, "up_block_types", types, LDM_MAX_BLOCKS, &n_types, err);
    if (s == STATUS_OK && n_types != lay->unet_blocks)
        s = status_fail(err, STATUS_FORMAT, "%s: key 'up_block_types': %d entries, expected %d",
                        model_config_source(unet), n_types, lay->unet_blocks);
    for (int i = 0; s == STATUS_OK && i < n_types; i++)
        lay->unet_up_attn[i] = strncmp(types[i], "CrossAttn", 9) == 0;
    if (s == STATUS_OK)
        s = block_count(vae, "block_out_channels", &lay->vae_blocks, err);
    if (s == STATUS_OK)
        s = model_config_int(text, "hidden_size", 0, &lay->text_hidden, err);
    if (s == STATUS_OK)
        s = model_config_int(text, "num_hidden_layers", 0, &lay->text_layers, err);
    if (s == STATUS_OK && lay->unet_layers < 1)
        s = status_fail(err, STATUS_FORMAT, "%s: key 'layers_per_block': expected ≥ 1",
                        model_config_source(unet));
    return s;
}
