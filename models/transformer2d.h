/* models/transformer2d.h — diffusers' Transformer2DModel (continuous input) with
 * BasicTransformerBlocks, as the SD U-Net's attention layers use it:
 *
 *   GroupNorm(groups, eps 1e-6) → proj_in (1×1 conv, or linear when
 *   use_linear_projection; the same op on NHWC tokens) → n × [LayerNorm → self-attention
 *   → +; LayerNorm → cross-attention on the context → +; LayerNorm → GEGLU feed-forward
 *   (ff.net.0.proj {8·D, D}, ff.net.2 {D, 4·D}) → +] → proj_out → + input.
 *
 * Attention: to_q/to_k/to_v without bias, to_out.0 with bias; heads side by side, head
 * dim = channels / heads, inner width D = heads · head dim; scale 1/√head dim; the
 * softmax is f32 on the CPU backend (what upcast_attention asks of fp16 paths).
 *
 * Ownership: a loaded transformer2d owns its weight tensors (transformer2d_free).
 * Thread-safety: immutable after load; forward uses only the caller's workspace.
 */
#ifndef DIFFUSIOND_MODELS_TRANSFORMER2D_H
#define DIFFUSIOND_MODELS_TRANSFORMER2D_H

#include <stdbool.h>

#include "engine/backend.h"
#include "engine/workspace.h"
#include "models/weights.h"

struct transformer2d_config {
    int channels;           /* in/out channels C */
    int heads;
    int layers;             /* BasicTransformerBlocks */
    int cross_dim;          /* context features */
    int groups;             /* GroupNorm groups */
    bool linear_projection; /* proj_in/out stored as linear {D,C} (else conv {D,C,1,1}) */
    bool upcast_attention;
    bool external_cross_kv; /* the cross-attentions' to_k/to_v are not loaded: the caller
                               projects the context (the U-Net, for all its blocks in a
                               few stacked GEMMs) and passes the keys and values to
                               transformer2d_forward */
};

struct t2d_attention {
    /* self-attention: proj {3,D,D} = to_q, to_k, to_v stacked, to_q unused (no data);
     * cross-attention: to_q {D,D}, proj {2,D,Ckv} = to_k, to_v stacked
     * (backend_linear_stack: one GEMM for the stacked projections), or no proj with
     * external_cross_kv */
    struct tensor to_q, proj;
    struct tensor to_out_w, to_out_b; /* {D,D}, {D} */
};

struct t2d_block {
    struct tensor norm1_w, norm1_b, norm2_w, norm2_b, norm3_w, norm3_b; /* {D} */
    struct t2d_attention attn1, attn2;
    struct tensor ff_in_w, ff_in_b;   /* {8D,D}, {8D} */
    struct tensor ff_out_w, ff_out_b; /* {D,4D}, {D} */
};

struct transformer2d {
    struct transformer2d_config cfg;
    int inner;                            /* D = heads · (C / heads) */
    struct tensor norm_w, norm_b;         /* {C} */
    struct tensor proj_in_w, proj_in_b;   /* {D,C}, {D} */
    struct tensor proj_out_w, proj_out_b; /* {C,D}, {C} */
    struct t2d_block *blocks;             /* cfg.layers */
};

/* Loads "<prefix>.norm.weight", "<prefix>.transformer_blocks.N.…" etc.  Errors name the
 * tensor.  On failure t holds nothing (already freed). */
enum status transformer2d_load(struct transformer2d *t, const struct weights *w,
                               const char *prefix, const struct transformer2d_config *cfg,
                               struct backend *b, struct errbuf *err);
void transformer2d_free(struct transformer2d *t);

/* out{B,H,W,C} = Transformer2D(x{B,H,W,C}, context{B,L,cross_dim}); out ≠ x.  cross_kv:
 * NULL, or (required with external_cross_kv) 2 × layers tensors {B,L,D} — block i's
 * cross-attention keys [2i] and values [2i + 1], the context through its to_k, to_v. */
enum status transformer2d_forward(const struct transformer2d *t, struct workspace *ws,
                                  const struct tensor *x, const struct tensor *context,
                                  const struct tensor *cross_kv, struct tensor *out,
                                  struct errbuf *err);

#endif
