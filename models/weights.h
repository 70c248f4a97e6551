/* models/weights.h — one model component's tensors, looked up by their diffusers
 * names, whichever file layout they came from.
 *
 * A weight source is opened on a diffusers component folder (unet/, vae/,
 * text_encoder/: diffusion_pytorch_model[.fp16].safetensors or model[.fp16].safetensors)
 * or on a component of a single-file original-layout checkpoint (models/checkpoint.h
 * supplies the name map).  Components load their parameters through weights_load*,
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

/* Maps a diffusers name to the file's name; writes at most cap bytes into out.
 * Returns false when the component has no such tensor in this layout. */
typedef bool (*weights_name_map_fn)(const void *ctx, const char *diffusers_name, char *out,
                                    size_t cap);

/* Opens the component folder `dir` of a diffusers checkpoint; prefers the fp16 variant
 * when `prefer_fp16` and it exists, else the full-precision file. */
enum status weights_open_dir(const char *dir, bool prefer_fp16, struct weights **out,
                             struct errbuf *err);

/* Wraps an already open safetensors file (shared, not closed by weights_close) with a
 * name map (NULL: identity).  `label` names the component in error messages. */
enum status weights_open_mapped(struct safetensors *st, const char *label,
                                weights_name_map_fn map, const void *map_ctx,
                                struct weights **out, struct errbuf *err);

void weights_close(struct weights *w);

/* The file tensor behind a diffusers name, or NULL. */
const struct safetensors_tensor *weights_find(const struct weights *w, const char *name);
bool weights_has(const struct weights *w, const char *name);

/* Loads `name` with exactly the shape {shape[0..ndim)} (PyTorch's order) into a new
 * f32-or-backend-dtype tensor on b.  Missing tensor, other shape or unknown dtype →
 * STATUS_FORMAT naming the tensor. */
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

/* Reads `name` (n elements, any float dtype) into host floats. */
enum status weights_read_f32(const struct weights *w, const char *name, float *dst, size_t n,
                             struct errbuf *err);

/* The label used in messages ("…/unet/diffusion_pytorch_model.safetensors"). */
const char *weights_label(const struct weights *w);

#endif
