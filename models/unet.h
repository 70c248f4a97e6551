/* models/unet.h — diffusers' UNet2DConditionModel for the Stable Diffusion family,
 * built from its config.json (nothing hard-coded to one size).
 *
 * Supported structure (what SD 1.x / 2.x / SD-Turbo use; everything else in the config
 * is rejected with a message naming the key):
 *   time_proj (sinusoidal, flip_sin_to_cos, freq_shift) → time_embedding (linear_1 →
 *   SiLU → linear_2); conv_in; down blocks CrossAttnDownBlock2D / DownBlock2D
 *   (ResnetBlock2D × layers_per_block [+ Transformer2DModel each], Downsample2D conv
 *   3×3 stride 2 on all but the last); mid UNetMidBlock2DCrossAttn (resnet, attention,
 *   resnet); up blocks CrossAttnUpBlock2D / UpBlock2D (layers_per_block + 1 resnets on
 *   [hidden, skip] concatenations, Upsample2D nearest 2× + conv on all but the last);
 *   conv_norm_out → SiLU → conv_out.
 *
 * Heads (diffusers' naming quirk, followed exactly): num_attention_heads must be null
 * (diffusers raises otherwise) and then the NUMBER OF HEADS of block i is
 * attention_head_dim (an int for every block, or a list per down block; the up
 * blocks take the list reversed, the mid block its last entry); head dim = channels /
 * heads.  SD1.5: 8 heads everywhere; SD2.x: [5,10,20,20] heads → head dim 64.
 *
 * Tensors: activations NHWC.  x {B,H,W,in_channels}, context {B,L,cross_attention_dim},
 * out {B,H,W,out_channels}; any H and W (stride-2 downsamplers round up; each
 * upsampler resizes to its skip's size, diffusers' odd-size path).
 * Each batch row has its own timestep (host floats, may be non-integer), so requests
 * at different steps share one call; a row's output does not depend on its batchmates.
 *
 * Ownership: unet_load returns a model owning its weights on the backend; free it
 * with unet_free before the backend.  The weights source may be closed after load.
 * unet_forward takes every intermediate from the caller's workspace and rewinds it
 * before returning (after one pass at the largest shape, no allocation at all).
 * Thread-safety: a loaded model is immutable; several threads may run unet_forward on
 * it concurrently, each with its own workspace, when the backend allows that (the
 * backend is used by one thread at a time).
 */
#ifndef DIFFUSIOND_MODELS_UNET_H
#define DIFFUSIOND_MODELS_UNET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/backend.h"
#include "engine/workspace.h"
#include "models/weights.h"

#define UNET_MAX_BLOCKS 8 /* down blocks (= up blocks) */
#define UNET_MAX_LAYERS 8 /* resnets per down block; up blocks have one more */

enum unet_block_type {
    UNET_BLOCK_PLAIN = 0,  /* DownBlock2D / UpBlock2D */
    UNET_BLOCK_CROSS_ATTN, /* CrossAttnDownBlock2D / CrossAttnUpBlock2D */
};

/* The config, resolved to per-block values the way diffusers' constructor does. */
struct unet_config {
    int in_channels, out_channels;
    int n_blocks;                                /* len(block_out_channels) */
    int block_out_channels[UNET_MAX_BLOCKS];
    int layers_per_block[UNET_MAX_BLOCKS];       /* per down block */
    enum unet_block_type down_types[UNET_MAX_BLOCKS];
    enum unet_block_type up_types[UNET_MAX_BLOCKS];
    int heads[UNET_MAX_BLOCKS];                  /* per down block (see above) */
    int cross_attention_dim[UNET_MAX_BLOCKS];    /* per down block */
    /* transformer layers per attention: down block i layer j, up block i (in up
     * order) layer j ≤ layers_per_block, and the mid block's one attention */
    int transformer_layers_down[UNET_MAX_BLOCKS][UNET_MAX_LAYERS];
    int transformer_layers_up[UNET_MAX_BLOCKS][UNET_MAX_LAYERS + 1];
    int transformer_layers_mid;
    bool use_linear_projection;
    bool upcast_attention;  /* fp32 softmax; the CPU backend computes in f32 anyway */
    int norm_num_groups;
    float norm_eps;
    bool flip_sin_to_cos;
    float freq_shift;
    int conv_in_kernel, conv_out_kernel; /* odd */
    int time_embed_dim;                  /* 4 · block_out_channels[0] */
};

struct unet_model;

/* Reads a diffusers UNet2DConditionModel config (models/model_config.h object).
 * Absent keys take diffusers' constructor defaults.  Unsupported values (block types,
 * class/addition embeddings, dual or only-cross attention, time scale shift
 * "scale_shift", num_attention_heads, …) → STATUS_UNSUPPORTED; malformed or
 * inconsistent ones → STATUS_FORMAT; the message names the source and the key. */
enum status unet_config_from_json(const json_t *obj, struct unet_config *cfg,
                                  struct errbuf *err);
/* The same from JSON text (`source` names it in messages) or from a file (e.g.
 * "<model>/unet/config.json"). */
enum status unet_config_parse(const char *json_text, const char *source,
                              struct unet_config *cfg, struct errbuf *err);
enum status unet_config_load_file(const char *path, struct unet_config *cfg,
                                  struct errbuf *err);

/* Loads every parameter (diffusers names) from w onto b.  A missing tensor or one of
 * the wrong shape → STATUS_FORMAT naming it.  On failure *out is NULL. */
enum status unet_load(const struct weights *w, const struct unet_config *cfg, struct backend *b,
                      struct unet_model **out, struct errbuf *err);
void unet_free(struct unet_model *m);

/* out{B,H,W,Cout} = UNet(x{B,H,W,Cin}, timesteps[B], context{B,L,Cctx}).  All tensors
 * on the model's backend; out must not alias x or context; timesteps[i] is row i's t
 * (cast to f32 as diffusers does; a single t for the batch is B copies of it).
 * Any H and W: where they are not multiples of the total downscale, each upsampler
 * resizes to its skip connection's size as diffusers does.  Wrong shapes →
 * STATUS_INVALID_ARGUMENT; the workspace is rewound in every case. */
enum status unet_forward(const struct unet_model *m, struct workspace *ws, const struct tensor *x,
                         const float *timesteps, const struct tensor *context,
                         struct tensor *out, struct errbuf *err);

const struct unet_config *unet_config(const struct unet_model *m);
int unet_in_channels(const struct unet_model *m);
int unet_out_channels(const struct unet_model *m);
int unet_cross_attention_dim(const struct unet_model *m);

#endif
