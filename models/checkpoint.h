/* models/checkpoint.h — a Stable Diffusion checkpoint on disk, whichever layout it has:
 * each component's tensors by diffusers name, its config, the tokenizer folder, the
 * scheduler config and the model family.
 *
 * Layouts:
 *   - diffusers folder: model_index.json; unet/, vae/, text_encoder/ with config.json
 *     and diffusion_pytorch_model[.fp16].safetensors / model[.fp16].safetensors
 *     (opt->prefer_fp16 picks the .fp16 variant where there is one); tokenizer/
 *     (vocab.json, merges.txt); scheduler/scheduler_config.json.
 *   - single file, original (CompVis/Stability "ldm") layout: model.diffusion_model.*
 *     (U-Net), first_stage_model.* (VAE), and cond_stage_model.transformer.text_model.*
 *     (SD1: CLIP ViT-L, HF names; old files without "text_model.") or cond_stage_model.model.* (SD2: OpenCLIP, q/k/v
 *     fused in attn.in_proj_*, one more resblock than SD2 uses).  The names are mapped
 *     to diffusers' (models/checkpoint_ldm.c); the configs are not in the file and are
 *     synthesised from the tensor shapes on top of the SD1.5 / SD2.1 configs
 *     (models/checkpoint_config.c).  What shapes cannot tell — attention head counts
 *     and GroupNorm groups of non-standard widths — must come from opt->config_dir or
 *     opt->config_override, else checkpoint_open fails naming the missing key.  The
 *     tokenizer is the bundled CLIP BPE vocabulary (<data_dir>/clip-bpe/sd1 or sd2).
 *
 * Family detection (checkpoint_family), in order:
 *   1. opt->family when not CHECKPOINT_FAMILY_AUTO;
 *   2. text tower: SD1 when the text encoder is CLIP ViT-L (single file:
 *      cond_stage_model.transformer.*; folder: cross_attention_dim 768, or for other
 *      widths hidden_act "quick_gelu"), SD2 when OpenCLIP (cond_stage_model.model.*;
 *      cross_attention_dim 1024, or hidden_act "gelu");
 *   3. within SD2: SD-Turbo when a config's "_name_or_path" contains "turbo"
 *      (case-insensitive), or the folder's scheduler is an Euler-type one with
 *      timestep_spacing "trailing" and epsilon prediction (sd-turbo's own config); for
 *      a single file when its metadata "modelspec.architecture"/"modelspec.title"
 *      contains "turbo", or (no such metadata) its file name does ("sd_turbo").
 *      Otherwise SD2 768-v when the prediction type is v_prediction, else SD2 base.
 *      Prediction type: opt->prediction, else the folder's scheduler config; for a
 *      single file the metadata "modelspec.prediction_type" ("v"/"epsilon"), else
 *      "modelspec.architecture" ("…-768-v" → v), else epsilon for turbo, else the
 *      file name ("768" → v as v2-1_768-ema-pruned; "512" or "base" → epsilon as
 *      v2-1_512-ema-pruned / 512-base-ema), else v_prediction — the weights cannot
 *      tell, and diffusers' from_single_file makes the same SD2 default.  With
 *      opt->config_dir the variant comes from those configs as for a folder.  A
 *      renamed SD2 base or SD-Turbo file without metadata needs opt->family,
 *      opt->prediction or opt->config_dir.
 *   SDXL (model_index.json naming text_encoder_2, or conditioner.embedders.* tensors)
 *   is STATUS_UNSUPPORTED.
 *
 * Errors (checkpoint_open): STATUS_NOT_FOUND for a missing path, model_index.json,
 * component folder, config or weights file; STATUS_FORMAT for a config that is not
 * JSON, a file that is not safetensors, a single file without model.diffusion_model.*
 * tensors, missing/ill-shaped tensors the configs are derived from, and a required
 * config key that the shapes cannot give.  Weights loaded later through
 * models/weights.h report a missing tensor, a wrong shape or a non-float dtype naming
 * the diffusers name and, for a single file, the file's name.
 *
 * Ownership: checkpoint_open returns a checkpoint the caller releases with
 * checkpoint_close; the weights, configs and strings it hands out are borrowed and
 * live until then.  Options are copied (config_override objects are merged at open
 * and not kept).
 * Thread-safety: an open checkpoint is read-only; any number of threads may read its
 * components concurrently.  Open and close are not concurrent with readers.
 */
#ifndef DIFFUSIOND_MODELS_CHECKPOINT_H
#define DIFFUSIOND_MODELS_CHECKPOINT_H

#include <jansson.h>
#include <stdbool.h>

#include "engine/status.h"
#include "models/weights.h"

enum checkpoint_component {
    CHECKPOINT_UNET = 0,
    CHECKPOINT_VAE,
    CHECKPOINT_TEXT_ENCODER,
    CHECKPOINT_SCHEDULER, /* config only (no weights) */
    CHECKPOINT_COMPONENT_COUNT_
};

enum checkpoint_layout {
    CHECKPOINT_LAYOUT_DIFFUSERS = 0,
    CHECKPOINT_LAYOUT_SINGLE_FILE,
};

enum checkpoint_family {
    CHECKPOINT_FAMILY_AUTO = 0, /* in options: detect; never returned */
    CHECKPOINT_FAMILY_SD1,      /* SD 1.x: CLIP ViT-L text, 768 context, epsilon */
    CHECKPOINT_FAMILY_SD2_BASE, /* SD 2.x base: OpenCLIP ViT-H, 1024 context, epsilon, 512 */
    CHECKPOINT_FAMILY_SD2_V,    /* SD 2.x 768-v: as base, v_prediction, 768 */
    CHECKPOINT_FAMILY_SD_TURBO, /* SD-Turbo: SD 2.1 architecture distilled, 1 step, no CFG */
    CHECKPOINT_FAMILY_COUNT_
};

enum checkpoint_prediction {
    CHECKPOINT_PREDICTION_AUTO = 0,
    CHECKPOINT_PREDICTION_EPSILON,
    CHECKPOINT_PREDICTION_V,
};

struct checkpoint_options {
    bool prefer_fp16;                      /* diffusers folder: load *.fp16.* variants */
    const char *data_dir;                  /* bundled data (clip-bpe/); NULL: build default */
    enum checkpoint_family family;         /* AUTO: detect */
    enum checkpoint_prediction prediction; /* AUTO: from the configs / metadata */
    /* Single file: a diffusers folder whose unet/, vae/, text_encoder/ config.json and
     * scheduler/scheduler_config.json replace the synthesised configs (as diffusers'
     * from_single_file(config=...)); NULL: none. */
    const char *config_dir;
    /* Keys merged over each component's config (either layout), e.g.
     * {"attention_head_dim": 2, "norm_num_groups": 4} for a non-standard U-Net. */
    const json_t *config_override[CHECKPOINT_COMPONENT_COUNT_];
    /* Optional: given to every component's weights (weights_set_cancel). */
    weights_cancel_fn cancelled;
    void *cancel_ctx;
};

struct checkpoint_family_info {
    const char *name;      /* "sd1", "sd2-base", "sd2-v", "sd-turbo" */
    int resolution;        /* native image side in pixels: 512 or 768 */
    int default_steps;     /* 50 (SD-Turbo: 1) */
    double default_guidance; /* 7.5 (SD-Turbo: 0, i.e. no CFG) */
};

struct checkpoint;

/* Zeroes opt (AUTO everything, no overrides, full precision). */
void checkpoint_options_default(struct checkpoint_options *opt);

/* Opens `path`: a diffusers folder or a single-file .safetensors.  opt may be NULL. */
enum status checkpoint_open(const char *path, const struct checkpoint_options *opt,
                            struct checkpoint **out, struct errbuf *err);
void checkpoint_close(struct checkpoint *ck);

enum checkpoint_layout checkpoint_layout(const struct checkpoint *ck);
enum checkpoint_family checkpoint_family(const struct checkpoint *ck);
/* The fixed facts of a family (a static table; NULL for AUTO/out of range). */
const struct checkpoint_family_info *checkpoint_family_info(enum checkpoint_family f);
const char *checkpoint_family_name(enum checkpoint_family f);
/* Parses "sd1", "sd2-base", "sd2-v", "sd-turbo"; false when unknown. */
bool checkpoint_family_parse(const char *name, enum checkpoint_family *out);

/* A component's weights (NULL for CHECKPOINT_SCHEDULER) and config; either out
 * pointer may be NULL.  Out of range → STATUS_INVALID_ARGUMENT. */
enum status checkpoint_component(const struct checkpoint *ck, enum checkpoint_component c,
                                 const struct weights **w, const json_t **config,
                                 struct errbuf *err);
/* The tokenizer folder (vocab.json, merges.txt, tokenizer_config.json): load it with
 * tokenizer_load_dir. */
const char *checkpoint_tokenizer_dir(const struct checkpoint *ck);
/* Shorthand for the scheduler's config. */
const json_t *checkpoint_scheduler_config(const struct checkpoint *ck);
/* The path the checkpoint was opened with. */
const char *checkpoint_path(const struct checkpoint *ck);

/* True for single-file tensors that Stable Diffusion inference does not use and the
 * name map leaves out on purpose: the DDPM schedule buffers (betas, alphas_cumprod,
 * …, posterior_*), model_ema.*, first_stage_model.loss.*, the text encoder's
 * position_ids buffer, OpenCLIP's logit_scale, text_projection and attn_mask, and the
 * last OpenCLIP resblock (SD2 conditions on the penultimate layer; `text_layers` is
 * the number of layers the text encoder uses). */
bool checkpoint_tensor_unused(const char *file_name, int text_layers);

#endif
