/* models/clip.h — the CLIP text encoder (transformers' CLIPTextModel) that turns
 * token ids into the U-Net's conditioning, driven by its config.json.
 *
 * Forward pass (transformers 4.57 CLIPTextTransformer, as Stable Diffusion uses it):
 *   h = token_embedding[ids] + position_embedding[0..L)            {B,L,C}
 *   for each layer:  h = h + out_proj(attention(q, k, v; causal, 1/sqrt(C/heads)))
 *                         with q/k/v = {q,k,v}_proj(layer_norm1(h))
 *                    h = h + fc2(act(fc1(layer_norm2(h))))
 *   out = final_layer_norm(h)
 * Only CLIP's causal mask is applied, never a padding mask (SD's pipelines pass no
 * attention_mask), so the outputs at pad positions depend on the pad id.
 *
 * clip_skip follows diffusers (StableDiffusionPipeline.encode_prompt):
 *   prompt_embeds = final_layer_norm(hidden_states[-(clip_skip + 1)])
 * where hidden_states[0] is the embedding output and hidden_states[i] the output of
 * layer i.  So clip_skip = s runs layers 1 … N−s and applies the final layer norm:
 *   s = 0  → last_hidden_state (what diffusers uses when clip_skip is None);
 *   s = 1  → the penultimate layer — A1111's "Clip skip 2"
 *            (A1111's CLIP_stop_at_last_layers k is diffusers' clip_skip k − 1,
 *            clip_skip_from_a1111 converts);
 *   s = N  → the embeddings through the final norm.
 * SD2's text encoder in diffusers is already truncated (23 of OpenCLIP's 24 layers),
 * so its "penultimate layer" conditioning is clip_skip 0 here as in diffusers.
 *
 * Token embeddings: the {vocab,C} table is read once at load into host memory (f32:
 * 152 MB for SD1's 49408×768) and the rows of each call's ids are uploaded into the
 * workspace, so no gather op is needed on the backend.  Every other weight lives on
 * the backend.
 *
 * Ownership: clip_load returns a model the caller releases with clip_free (before the
 * backend is destroyed).  The model does not keep the weights source or the config.
 * Thread-safety: a loaded model is immutable.  clip_encode issues ops on the model's
 * backend and takes its intermediates from the caller's workspace, so calls on one
 * backend are serialised as the backend requires (its worker thread); the model itself
 * may be shared.
 */
#ifndef DIFFUSIOND_MODELS_CLIP_H
#define DIFFUSIOND_MODELS_CLIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/workspace.h"
#include "models/weights.h"

struct json_t; /* jansson */

/* The fields of a CLIPTextConfig the forward pass uses (projection_dim is not). */
struct clip_config {
    int vocab_size;              /* 49408 */
    int hidden_size;             /* C: SD1 768, SD2 1024 */
    int intermediate_size;       /* MLP width: 4·C */
    int num_hidden_layers;       /* N: SD1 12, SD2 23 (diffusers) */
    int num_attention_heads;     /* divides hidden_size */
    int max_position_embeddings; /* longest sequence: 77 */
    enum gelu_kind act;          /* hidden_act: quick_gelu, gelu, gelu_new/_pytorch_tanh */
    float layer_norm_eps;        /* 1e-5 */
};

struct clip_model;

/* Fills cfg from a parsed text_encoder/config.json (models/model_config.h; messages
 * name its recorded source and the key).  Absent (or null) keys take transformers'
 * CLIPTextConfig defaults; a key of the wrong type, a size outside [1, 2^20] or heads
 * not dividing hidden_size → STATUS_FORMAT; a hidden_act other than quick_gelu,
 * gelu, gelu_new, gelu_pytorch_tanh, gelu_fast → STATUS_UNSUPPORTED. */
enum status clip_config_from_json(const struct json_t *config, struct clip_config *cfg,
                                  struct errbuf *err);

/* Loads every weight of the text encoder described by cfg from w (diffusers names,
 * text_model.…), onto b in f32.  Missing tensor or wrong shape → STATUS_FORMAT naming
 * the tensor; STATUS_OUT_OF_MEMORY.  On failure *out is NULL. */
enum status clip_load(const struct weights *w, const struct clip_config *cfg,
                      struct backend *b, struct clip_model **out, struct errbuf *err);

/* model_config_load(dir/config.json) + clip_config_from_json +
 * weights_open_dir(dir, prefer_fp16) + clip_load: a diffusers text_encoder/ folder.
 * Missing config → STATUS_IO. */
enum status clip_load_dir(const char *dir, bool prefer_fp16, struct backend *b,
                          struct clip_model **out, struct errbuf *err);

/* Frees the model's weights; m may be NULL. */
void clip_free(struct clip_model *m);

const struct clip_config *clip_get_config(const struct clip_model *m);
int clip_hidden_size(const struct clip_model *m);
int clip_num_layers(const struct clip_model *m);
int clip_max_length(const struct clip_model *m); /* max_position_embeddings */

/* diffusers' clip_skip for A1111's "Clip skip" (CLIP_stop_at_last_layers) k:
 * k − 1, and 0 for k ≤ 1. */
int clip_skip_from_a1111(int stop_at_last_layers);

/* Bytes of workspace one clip_encode of {batch, seq_len} takes in views of `dt` (pass
 * it to workspace_reserve at start-up so that encoding never allocates). */
size_t clip_workspace_bytes(const struct clip_model *m, int batch, int seq_len, enum dtype dt);

/* out{B,L,C} = the encoder's output for ids[B·L] (row-major: sequence b is
 * ids[b·L … b·L+L)), L = out->shape[1] ≤ max_position_embeddings, C = hidden_size;
 * clip_skip as described at the top (0 … N).  out is caller-allocated on the model's
 * backend in the workspace's dtype; intermediates come from ws, which is rewound to
 * where it was on return.  An id outside [0, vocab_size) → STATUS_INVALID_ARGUMENT
 * naming the sequence and position, before any work; a wrong out shape, batch < 1 or
 * clip_skip out of range → STATUS_INVALID_ARGUMENT. */
enum status clip_encode(const struct clip_model *m, struct workspace *ws, const int32_t *ids,
                        int batch, int clip_skip, struct tensor *out, struct errbuf *err);

#endif
