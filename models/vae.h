/* models/vae.h — diffusers' AutoencoderKL (the SD VAE): decoder and encoder, built
 * from the component's config.json.
 *
 * Decoder: z = latents / scaling_factor + shift_factor → post_quant_conv (1×1) →
 *   conv_in → mid block (resnet, attention, resnet) → up blocks (block_out_channels
 *   reversed, layers_per_block+1 resnets each, nearest 2× + conv3x3 except the last) →
 *   GroupNorm+SiLU → conv_out: an image in about [-1, 1] (diffusers' vae.decode().sample,
 *   not clamped).
 * Encoder: conv_in → down blocks (layers_per_block resnets, conv3x3 stride 2 with
 *   diffusers' asymmetric zero padding (0,1,0,1) except the last) → mid block →
 *   GroupNorm+SiLU → conv_out (2·latent_channels) → quant_conv (1×1): the posterior's
 *   mean and logvar (clamped to [-30, 20]) as DiagonalGaussianDistribution has them.
 * The mid attention is single-head over the H·W tokens with scale 1/sqrt(C) and a
 * residual; every GroupNorm uses eps 1e-6 and norm_num_groups.
 *
 * Latent scaling: vae_decode takes the latents the pipeline holds (the scaled space
 * the U-Net works in) and divides by scaling_factor (adding shift_factor when the
 * config sets one) itself; vae_decode_raw takes diffusers' vae.decode input (already
 * unscaled).  vae_encode returns the unscaled posterior: a pipeline samples
 * z = mean + exp(logvar/2)·ε and multiplies by vae_scaling_factor itself.
 *
 * All tensors are NHWC: latents {B,h,w,latent_channels}, images {B,H,W,3} with
 * H = h·2^(levels−1) (8 for SD).
 *
 * Ownership: vae_load returns a model the caller releases with vae_free (before the
 * backend is destroyed); it owns its weights on the backend.
 * Thread-safety: a loaded model is immutable; vae_decode/vae_encode may run on several
 * threads at once, each with its own workspace on the model's backend.
 */
#ifndef DIFFUSIOND_MODELS_VAE_H
#define DIFFUSIOND_MODELS_VAE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/workspace.h"
#include "models/weights.h"

#define VAE_MAX_LEVELS 8
#define VAE_MAX_LAYERS 8 /* layers_per_block + 1 ≤ this */

struct vae_config {
    int in_channels;          /* image channels (3); default 3 */
    int out_channels;         /* image channels (3); default 3 */
    int latent_channels;      /* required (4 in SD) */
    int n_levels;             /* len(block_out_channels) */
    int block_out_channels[VAE_MAX_LEVELS]; /* required */
    int layers_per_block;     /* required */
    int norm_num_groups;      /* default 32 */
    int sample_size;          /* default 32; informational */
    double scaling_factor;    /* required (0.18215 in SD1/2) */
    double shift_factor;      /* null → 0 (SD); SD3/Flux-style VAEs set it */
    bool mid_block_add_attention; /* default true */
    bool use_quant_conv;      /* default true */
    bool use_post_quant_conv; /* default true */
};

struct vae_model;

/* Reads an AutoencoderKL config.json object.  Required: block_out_channels,
 * layers_per_block, latent_channels, scaling_factor, down_block_types (all
 * "DownEncoderBlock2D"), up_block_types (all "UpDecoderBlock2D"); absent → STATUS_FORMAT
 * naming the key.  act_fn must be "silu".  force_upcast, latents_mean/latents_std (not
 * used by SD pipelines) are ignored. */
enum status vae_config_from_json(const json_t *obj, struct vae_config *cfg, struct errbuf *err);

/* Builds the model from cfg with the weights of `w` (diffusers names: encoder.*,
 * decoder.*, quant_conv, post_quant_conv).  Missing tensor / wrong shape →
 * STATUS_FORMAT naming the tensor. */
enum status vae_load(const struct weights *w, const struct vae_config *cfg, struct backend *b,
                     struct vae_model **out, struct errbuf *err);

/* A diffusers vae/ folder: config.json and diffusion_pytorch_model[.fp16].safetensors. */
enum status vae_load_dir(const char *dir, bool prefer_fp16, struct backend *b,
                         struct vae_model **out, struct errbuf *err);

void vae_free(struct vae_model *m);

const struct vae_config *vae_config(const struct vae_model *m);
float vae_scaling_factor(const struct vae_model *m);
/* Image pixels per latent pixel: 2^(levels−1) (8 for SD). */
int vae_downscale(const struct vae_model *m);

/* image{B,h·f,w·f,out_channels} = decoder(latents{B,h,w,latent_channels} /
 * scaling_factor + shift_factor), f = vae_downscale.  Intermediates come from ws and
 * are released before returning. */
enum status vae_decode(const struct vae_model *m, struct workspace *ws,
                       const struct tensor *latents, struct tensor *image, struct errbuf *err);

/* The same for latents already unscaled (diffusers' vae.decode input). */
enum status vae_decode_raw(const struct vae_model *m, struct workspace *ws,
                           const struct tensor *z, struct tensor *image, struct errbuf *err);

/* mean, logvar{B,H/f,W/f,latent_channels} of image{B,H,W,in_channels} in [-1,1]
 * (H, W multiples of f).  logvar is clamped to [-30, 20] on the host (one download and
 * upload of logvar, a host buffer per call: encoding is not in the denoising loop). */
enum status vae_encode(const struct vae_model *m, struct workspace *ws,
                       const struct tensor *image, struct tensor *mean, struct tensor *logvar,
                       struct errbuf *err);

/* Host post-processing of decoded pixels (n floats, any layout), as diffusers'
 * VaeImageProcessor: unit = clamp(x/2 + 0.5, 0, 1) (output_type "np"), and 8-bit
 * rgb = round_half_even(unit·255) (numpy_to_pil); NaN gives 0. */
void vae_image_to_unit(const float *x, size_t n, float *unit);
void vae_image_to_rgb8(const float *x, size_t n, uint8_t *rgb);

#endif
