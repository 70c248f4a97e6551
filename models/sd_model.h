/* models/sd_model.h — a loaded Stable Diffusion model: everything the txt2img pipeline
 * (models/pipeline.h) needs from one checkpoint, on one backend.
 *
 * sd_model_load opens the checkpoint (models/checkpoint.h: a diffusers folder or a
 * single-file original-layout .safetensors), loads the CLIP BPE tokenizer, the CLIP
 * text encoder, the U-Net and the VAE onto opt->backend, builds the noise schedule
 * from the scheduler config, records the family and its defaults, and closes the
 * checkpoint again (every weight has been uploaded by then).
 *
 * Defaults a request starts from (gen_params_default):
 *   size      unet config sample_size × VAE downscale (diffusers' pipeline default:
 *             512 for SD 1.x, 768 for SD 2.x 768-v), else the family's resolution;
 *   steps, guidance  the family's (checkpoint_family_info: 50 and 7.5; SD-Turbo 1, 0);
 *   sampler   the one behind the scheduler config's _class_name (Euler → euler,
 *             EulerAncestral → euler_a, DDIM → ddim, DPMSolverMultistep → dpmpp_2m
 *             (dpmpp_2m_karras with use_karras_sigmas), DDPM → ddpm, LCM → lcm);
 *             dpmpp_2m_karras for any other class (PNDM, SD 1.5's, is not implemented).
 * opt->prediction (when not AUTO) also replaces the scheduler config's
 * prediction_type, as diffusers' `prediction_type=` override does.
 *
 * Ownership: sd_model_load returns a model the caller releases with sd_model_free
 * before destroying the backend; the backend is borrowed.  Options are read during the
 * call only.
 * Thread-safety: a loaded model is immutable; any number of threads may read it, and
 * run the pipeline on it each with its own workspace as the backend allows (a backend
 * is used by one thread at a time).
 */
#ifndef DIFFUSIOND_MODELS_SD_MODEL_H
#define DIFFUSIOND_MODELS_SD_MODEL_H

#include <jansson.h>
#include <stdbool.h>

#include "engine/backend.h"
#include "engine/status.h"
#include "models/checkpoint.h"
#include "models/clip.h"
#include "models/sampler.h"
#include "models/schedule.h"
#include "models/tokenizer.h"
#include "models/unet.h"
#include "models/vae.h"

#define SD_MODEL_NAME_MAX 256

struct sd_model_options {
    struct backend *backend;               /* required; borrowed */
    bool prefer_fp16;                      /* diffusers folder: *.fp16.* variants */
    enum checkpoint_family family;         /* AUTO: detect */
    enum checkpoint_prediction prediction; /* AUTO: the scheduler config's */
    const char *config_dir;                /* single file: configs from this folder */
    const char *data_dir;                  /* bundled data; NULL: the build's */
    /* Keys merged over each component's config (see checkpoint_options). */
    const json_t *config_override[CHECKPOINT_COMPONENT_COUNT_];
    /* Optional: asked before each tensor is read; true → STATUS_CANCELLED, nothing
     * left allocated (a service stopped during start-up; weights_set_cancel). */
    weights_cancel_fn cancelled;
    void *cancel_ctx;
};

/* Immutable after sd_model_load; fields are read-only for everyone else. */
struct sd_model {
    struct backend *backend;
    char name[SD_MODEL_NAME_MAX];    /* the checkpoint's base name, for metadata */
    enum checkpoint_family family;
    enum checkpoint_layout layout;
    struct tokenizer *tokenizer;
    struct clip_model *clip;
    struct unet_model *unet;
    struct vae_model *vae;
    struct schedule schedule;        /* training tables + the scheduler config */
    int context_len;                 /* tokens per prompt: 77 */
    int context_dim;                 /* text encoder width = U-Net cross-attention dim */
    int latent_channels;             /* 4 */
    int downscale;                   /* image pixels per latent pixel: 8 */
    int size_multiple;               /* image sides must be multiples of this (8: the VAE's) */
    int native_width, native_height; /* default image size in pixels */
    int default_steps;
    double default_guidance;
    enum sampler_kind default_sampler;
};

/* Zeroes opt: no backend, AUTO family and prediction, full precision, no overrides. */
void sd_model_options_default(struct sd_model_options *opt);

/* The optional file in a diffusers folder with the author's recommended defaults
 * ({"default_steps": N, "default_guidance": G}); they replace the family's. */
#define SD_MODEL_DEFAULTS_FILE "diffusiond.json"

/* Loads `path` (diffusers folder or single file).  Errors come from the checkpoint and
 * component loaders (they name the file, tensor or key); a text encoder whose width is
 * not the U-Net's cross_attention_dim, or a tokenizer whose max_length exceeds the
 * text encoder's positions → STATUS_FORMAT.  On failure *out is NULL. */
enum status sd_model_load(const char *path, const struct sd_model_options *opt,
                          struct sd_model **out, struct errbuf *err);

/* The bundled default model's folder (the build's DIFFUSIOND_DEFAULT_MODEL, a source
 * build's models/default), or NULL when it is not there.  Callers let --model and
 * $DIFFUSIOND_MODEL take precedence. */
const char *sd_model_bundled_path(void);

/* Frees everything; m may be NULL. */
void sd_model_free(struct sd_model *m);

#endif
