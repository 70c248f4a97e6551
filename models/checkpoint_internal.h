/* models/checkpoint_internal.h — shared between checkpoint.c, checkpoint_ldm.c and
 * checkpoint_config.c; not part of the public API.
 *
 * Ownership: plain values.  Thread-safety: the map functions only read their layout.
 */
#ifndef DIFFUSIOND_MODELS_CHECKPOINT_INTERNAL_H
#define DIFFUSIOND_MODELS_CHECKPOINT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "models/checkpoint.h"
#include "models/safetensors.h"
#include "models/weights.h"

#define LDM_UNET_PREFIX "model.diffusion_model."
#define LDM_VAE_PREFIX "first_stage_model."
#define LDM_CLIP_PREFIX "cond_stage_model.transformer."
#define LDM_OPENCLIP_PREFIX "cond_stage_model.model."
#define LDM_MAX_BLOCKS 8

/* What the single-file name maps need to know about the architecture (from the
 * component configs). */
struct ldm_layout {
    int unet_layers;                      /* layers_per_block */
    int unet_blocks;                      /* len(block_out_channels) */
    bool unet_up_attn[LDM_MAX_BLOCKS];    /* up_blocks.i is CrossAttnUpBlock2D */
    int vae_blocks;                       /* len(block_out_channels) */
    bool openclip;                        /* SD2 text tower (else SD1's HF CLIP names) */
    bool clip_legacy;                     /* SD1 names without "text_model." (old files) */
    int text_hidden;                      /* hidden_size: rows of q, k, v in in_proj */
    int text_layers;                      /* num_hidden_layers the model uses */
};

/* diffusers name → file name (with its prefix) for each component (weights_ref_map_fn). */
bool ldm_map_unet(const void *layout, const char *name, struct weights_ref *ref);
bool ldm_map_vae(const void *layout, const char *name, struct weights_ref *ref);
bool ldm_map_text(const void *layout, const char *name, struct weights_ref *ref);

/* Fills the layout from the three component configs. */
enum status ldm_layout_from_configs(struct ldm_layout *lay, const json_t *unet,
                                    const json_t *vae, const json_t *text, bool openclip,
                                    struct errbuf *err);

/* Synthesises the component configs of a single file from its tensor shapes
 * (checkpoint_config.c); out[c] are new references (NULL for c it leaves alone). */
enum status ckcfg_unet(const struct safetensors *st, bool sd2, bool v_pred, json_t **out,
                       struct errbuf *err);
enum status ckcfg_vae(const struct safetensors *st, int resolution, json_t **out,
                      struct errbuf *err);
enum status ckcfg_text(const struct safetensors *st, bool openclip, bool clip_legacy,
                       json_t **out, struct errbuf *err);
enum status ckcfg_scheduler(const char *path, enum checkpoint_family family, json_t **out,
                            struct errbuf *err);
/* Checks that the keys the shapes cannot give are usable for these widths: a config
 * whose head count / group count does not divide the channels names the key. */
enum status ckcfg_check_unet(const json_t *cfg, struct errbuf *err);
enum status ckcfg_check_vae(const json_t *cfg, struct errbuf *err);
enum status ckcfg_check_text(const json_t *cfg, struct errbuf *err);

#endif
