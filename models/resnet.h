/* models/resnet.h — diffusers' ResnetBlock2D, shared by the VAE and the U-Net.
 *
 *   h = conv1(SiLU(GroupNorm1(x)))                       {N,H,W,Cout}
 *   h = h + time_emb_proj(SiLU(temb))[:, None, None, :]  (U-Net only, temb_channels > 0)
 *   h = conv2(SiLU(GroupNorm2(h)))                       (dropout: none at inference)
 *   y = (shortcut(x) + h) / output_scale_factor
 *
 * shortcut is the 1×1 `conv_shortcut` when Cin ≠ Cout, else the identity; the sum is
 * fused into conv2 through its residual argument, and the time embedding's add into
 * norm2 (group_norm_params.shift).  Only time_embedding_norm "default"
 * (the additive one SD uses) is implemented.  Parameter names are diffusers' under a
 * prefix: <prefix>.norm1, .conv1, .time_emb_proj, .norm2, .conv2, .conv_shortcut.
 *
 * Ownership: a loaded block owns its parameter tensors (resnet_free releases them).
 * Thread-safety: a loaded block is immutable; resnet_forward may run on several
 * threads at once with different workspaces (each on the block's backend's thread
 * discipline, see engine/backend.h).
 */
#ifndef DIFFUSIOND_MODELS_RESNET_H
#define DIFFUSIOND_MODELS_RESNET_H

#include <stdbool.h>

#include "engine/backend.h"
#include "engine/workspace.h"
#include "models/weights.h"

struct resnet_config {
    int in_channels;           /* Cin */
    int out_channels;          /* Cout */
    int temb_channels;         /* 0: no time-embedding projection (VAE) */
    bool temb_projected;       /* the caller projects the time embedding for the block
                                  (resnet_forward_projected; the U-Net does all its
                                  blocks' at once): time_emb_proj is not loaded here */
    int groups;                /* GroupNorm groups for both norms */
    float eps;                 /* GroupNorm eps (VAE 1e-6, U-Net norm_eps 1e-5) */
    float output_scale_factor; /* 1 in SD */
};

struct resnet_block {
    struct resnet_config cfg;
    struct tensor norm1_w, norm1_b;   /* {Cin} */
    struct tensor conv1_w, conv1_b;   /* {Cout,3,3,Cin}, {Cout} */
    struct tensor temb_w, temb_b;     /* {Cout,temb_channels}, {Cout}; unset without temb
                                         or when cfg.temb_projected */
    struct tensor norm2_w, norm2_b;   /* {Cout} */
    struct tensor conv2_w, conv2_b;   /* {Cout,3,3,Cout}, {Cout} */
    struct tensor short_w, short_b;   /* {Cout,1,1,Cin}, {Cout}; unset when Cin == Cout */
    bool has_shortcut;
};

/* Loads the block's parameters under `prefix` (e.g. "decoder.mid_block.resnets.0").
 * Missing tensor / wrong shape → STATUS_FORMAT naming the tensor.  Invalid config
 * (channels not divisible by groups, non-positive sizes) → STATUS_INVALID_ARGUMENT.
 * On failure nothing is left allocated. */
enum status resnet_load(const struct weights *w, const char *prefix,
                        const struct resnet_config *cfg, struct backend *b,
                        struct resnet_block *out, struct errbuf *err);

void resnet_free(struct resnet_block *r);

/* y{N,H,W,Cout} = block(x{N,H,W,Cin}).  temb_silu{N,temb_channels} is SiLU(temb),
 * computed once per step by the caller and shared by every block (NULL when
 * temb_channels is 0).  y must be distinct from x; intermediates come from ws
 * ({N,H,W,Cin} and {N,H,W,Cout}, plus another {N,H,W,Cout} for a widening shortcut)
 * and are released before returning. */
enum status resnet_forward(const struct resnet_block *r, struct workspace *ws,
                           const struct tensor *x, const struct tensor *temb_silu,
                           struct tensor *y, struct errbuf *err);

/* The same for a block loaded with cfg.temb_projected: temb_proj{N,Cout} is
 * time_emb_proj(SiLU(temb)) for this block, projected by the caller (NULL when
 * temb_channels is 0).  resnet_forward refuses such a block, and this one any other. */
enum status resnet_forward_projected(const struct resnet_block *r, struct workspace *ws,
                                     const struct tensor *x, const struct tensor *temb_proj,
                                     struct tensor *y, struct errbuf *err);

#endif
