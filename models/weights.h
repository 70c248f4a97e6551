/* models/weights.h — one model component's tensors, looked up by their diffusers
 * names, whichever file layout they came from.
 *
 * A weight source is opened on a diffusers component folder (unet/, vae/,
 * text_encoder/: diffusion_pytorch_model[.fp16].safetensors or model[.fp16].safetensors)
 * or on a component of a single-file original-layout checkpoint (models/checkpoint.h
 * supplies the name map, which may point a diffusers name at a row slice of a file
 * tensor).  Components load their parameters through weights_load*,
 * which check the shape (errors name the tensor and the file), convert the dtype to
 * the backend's, change the layout where the engine's differs from PyTorch's
 * (convolutions: OIHW → OHWI) and upload.
 *
 * Ownership: the source owns its mapped file(s); tensors loaded from it are owned by
 * the caller (free with backend_free) and stay valid after weights_close.
 * Thread-safety: a source may be read from several threads; open/close are not
 * concurrent with reads.
 */
#ifndef DIFFUSIOND_MODELS_WEIGHTS_H
#define DIFFUSIOND_MODELS_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/backend.h"
#include "models/safetensors.h"

struct weights;

#define WEIGHTS_NAME_MAX 512

/* Where a diffusers name lives in the file: the file's tensor `name`, whole
 * (row_count == 0) or only its rows [row_begin, row_begin + row_count) along dim 0
 * (e.g. q, k or v out of OpenCLIP's fused attn.in_proj_weight {3C,C}). */
struct weights_ref {
    char name[WEIGHTS_NAME_MAX];
    int64_t row_begin;
    int64_t row_count;
};

/* Maps a diffusers name to the file's name; writes at most cap bytes into out.
 * Returns false when the component has no such tensor in this layout. */
typedef bool (*weights_name_map_fn)(const void *ctx, const char *diffusers_name, char *out,
                                    size_t cap);

/* The same with row slices: fills *ref with the file tensor (and rows).  Returns false
 * when the component has no such tensor in this layout (ref->name may then hold the
 * file name the layout would have used, or be empty). */
typedef bool (*weights_ref_map_fn)(const void *ctx, const char *diffusers_name,
                                   struct weights_ref *ref);

/* Opens the component folder `dir` of a diffusers checkpoint; prefers the fp16 variant
 * when `prefer_fp16` and it exists, else the full-precision file. */
enum status weights_open_dir(const char *dir, bool prefer_fp16, struct weights **out,
                             struct errbuf *err);

/* Wraps an already open safetensors file (shared, not closed by weights_close) with a
 * name map (NULL: identity).  `label` names the component in error messages. */
enum status weights_open_mapped(struct safetensors *st, const char *label,
                                weights_name_map_fn map, const void *map_ctx,
                                struct weights **out, struct errbuf *err);

/* weights_open_mapped with a map that may point a name at a row slice (SD2's fused
 * OpenCLIP q/k/v; models/checkpoint_ldm.c). */
enum status weights_open_mapped_ref(struct safetensors *st, const char *label,
                                    weights_ref_map_fn map, const void *map_ctx,
                                    struct weights **out, struct errbuf *err);

void weights_close(struct weights *w);

/* Optional: every read of a tensor from w (weights_load*, weights_read_f32) first asks
 * cancelled(ctx) and fails with STATUS_CANCELLED when it says true — a service told to
 * stop while it loads a large checkpoint.  cancelled runs on the loading thread. */
typedef bool (*weights_cancel_fn)(void *ctx);
void weights_set_cancel(struct weights *w, weights_cancel_fn cancelled, void *ctx);

/* Where `name` lives in the file (identity for an unmapped source); false when the
 * layout has no such tensor. */
bool weights_resolve(const struct weights *w, const char *name, struct weights_ref *ref);

/* The file tensor behind a diffusers name (for a row slice: the whole file tensor),
 * or NULL when there is none. */
const struct safetensors_tensor *weights_find(const struct weights *w, const char *name);
bool weights_has(const struct weights *w, const char *name);

/* The tensor `name` as the component sees it: the file tensor, or its row slice
 * (shape[0] = row_count, data/nbytes/numel of the slice; `name` stays the file's).
 * Missing tensor or a slice outside the file tensor → STATUS_FORMAT naming both the
 * diffusers name and the file's. */
enum status weights_view(const struct weights *w, const char *name,
                         struct safetensors_tensor *out, struct errbuf *err);

/* Loads `name` with exactly the shape {shape[0..ndim)} (PyTorch's order) into a new
 * f32-or-backend-dtype tensor on b.  Missing tensor, other shape or a dtype that is
 * not floating-point (I32, BOOL, ...) → STATUS_FORMAT naming the tensor (for a mapped
 * source: its diffusers name and its file name). */
enum status weights_load(const struct weights *w, const char *name, int ndim,
                         const int64_t *shape, struct backend *b, struct tensor *out,
                         struct errbuf *err);

/* Loads a PyTorch convolution weight {Cout,Cin,KH,KW} as the engine's {Cout,KH,KW,Cin}.
 * A linear weight {Cout,Cin} stored where a 1×1 conv is expected (or the converse,
 * as SD2/VAE attention projections are) is accepted: {Cout,Cin,1,1} ≡ {Cout,Cin}. */
enum status weights_load_conv(const struct weights *w, const char *name, int64_t cout,
                              int64_t cin, int64_t kh, int64_t kw, struct backend *b,
                              struct tensor *out, struct errbuf *err);

/* Loads a linear weight {out,in}; a {out,in,1,1} conv-shaped tensor is accepted. */
enum status weights_load_linear(const struct weights *w, const char *name, int64_t n_out,
                                int64_t n_in, struct backend *b, struct tensor *out,
                                struct errbuf *err);

/* Loads g linear weights {out,in} (names[0..g)) as one {g,out,in} tensor (for
 * backend_linear_stack); each as weights_load_linear accepts it. */
enum status weights_load_linear_stack(const struct weights *w, const char *const *names, int g,
                                      int64_t n_out, int64_t n_in, struct backend *b,
                                      struct tensor *out, struct errbuf *err);

/* Loads g vectors {n} (names[0..g)) as one {g,1,n} tensor: the biases of a
 * weights_load_linear_stack, added to its {g,rows,n} output by backend_add. */
enum status weights_load_vec_stack(const struct weights *w, const char *const *names, int g,
                                   int64_t n, struct backend *b, struct tensor *out,
                                   struct errbuf *err);

/* Reads `name` (n elements, any float dtype; a row slice reads only its rows) into
 * host floats; errors as weights_load's. */
enum status weights_read_f32(const struct weights *w, const char *name, float *dst, size_t n,
                             struct errbuf *err);

/* The label used in messages ("…/unet/diffusion_pytorch_model.safetensors"). */
const char *weights_label(const struct weights *w);

#endif
