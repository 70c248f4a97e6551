/* engine/backend.h — the compute backend interface: memory plus one entry per op.
 *
 * Models see only `struct backend *` and tensors.  The public backend_<op>()
 * functions below validate dtypes, shapes and ownership once (backend.c) and then
 * call the backend's vtable entry, so implementations may assume valid arguments.
 *
 * Conventions (all tensors contiguous, row-major):
 *   activations NHWC {N,H,W,C}; token view {N,L,C}; linear weight {out,in};
 *   conv weight {Cout,KH,KW,Cin}; per-row scalars are host float arrays indexed by
 *   dim 0 (the batch row).  Outputs never alias inputs unless an op says so.
 *   The CPU backend computes in f32; GPU backends may store f16/bf16 and accumulate
 *   in f32.
 *
 * Ownership: backend_create functions return a backend the caller destroys with
 * backend_destroy, after freeing every tensor allocated from it.
 * Thread-safety: a backend is used by one thread at a time (its worker); ops on one
 * backend are issued in order.  Weights allocated on it may be read concurrently.
 */
#ifndef DIFFUSIOND_ENGINE_BACKEND_H
#define DIFFUSIOND_ENGINE_BACKEND_H

#include <stdbool.h>

#include "engine/status.h"
#include "engine/tensor.h"

struct backend;

struct conv2d_params {
    int stride;  /* 1 or 2 */
    int padding; /* same on all four sides */
};

struct attention_params {
    int heads;    /* head dim = C / heads */
    float scale;  /* usually 1/sqrt(head dim) */
    bool causal;  /* query i sees keys 0..i (CLIP text encoder) */
};

struct group_norm_params {
    int groups;
    float eps;
    bool silu; /* apply SiLU after the affine transform */
    /* optional {N, C}: added to x per (sample, channel) first — y = GN(x + shift), as
     * a ResNet block adds its time embedding right before its second norm (NULL: none) */
    const struct tensor *shift;
};

struct timestep_embedding_params {
    int dim;                    /* output features (even) */
    bool flip_sin_to_cos;       /* [cos, sin] instead of [sin, cos] */
    float downscale_freq_shift; /* diffusers: 1 for SD U-Nets' default, 0 with flip */
    float max_period;           /* 10000 */
};

enum gelu_kind { GELU_ERF = 0, GELU_TANH, GELU_QUICK /* x·σ(1.702x) */ };

struct backend_ops {
    const char *name;
    void (*destroy)(struct backend *b);

    /* memory: alloc sets t->data for t's dtype/shape; upload/download convert */
    enum status (*alloc)(struct backend *b, struct tensor *t, struct errbuf *err);
    void (*free)(struct backend *b, struct tensor *t);
    enum status (*upload)(struct backend *b, struct tensor *dst, const void *src,
                          enum dtype src_dtype, struct errbuf *err);
    enum status (*download)(struct backend *b, const struct tensor *src, float *dst,
                            struct errbuf *err);
    enum status (*sync)(struct backend *b, struct errbuf *err);
    /* optional (NULL: never): the device failed for good (sticky CUDA error) */
    bool (*broken)(const struct backend *b);
    /* optional (NULL: DTYPE_F32): the dtype models store weights in on this backend */
    enum dtype (*weight_dtype)(const struct backend *b);
    /* optional (NULL: no graphs): recorded op sequences, see backend_graph_begin */
    enum status (*graph_begin)(struct backend *b, struct errbuf *err);
    enum status (*graph_end)(struct backend *b, void **impl, struct errbuf *err);
    enum status (*graph_set_timesteps)(void *impl, const float *timesteps, int rows,
                                       struct errbuf *err);
    enum status (*graph_launch)(void *impl, struct errbuf *err);
    bool (*graph_current)(const void *impl); /* optional (NULL: always) */
    void (*graph_destroy)(void *impl);
    /* optional (NULL: one lane, everything in order): lanes, see backend_lane_select */
    int (*lanes)(const struct backend *b);
    enum status (*lane_select)(struct backend *b, int lane, struct errbuf *err);
    /* optional (NULL: engine/profile.h times ops between syncs): device timestamps.
     * mark records timestamp `index` (0 ≤ index < BACKEND_MARKS) in b's queue;
     * mark_seconds, once both have passed (after a sync), the time between two. */
    enum status (*mark)(struct backend *b, int index, struct errbuf *err);
    enum status (*mark_seconds)(struct backend *b, int from, int to, double *seconds,
                                struct errbuf *err);

    /* ops (arguments already validated by backend.c) */
    enum status (*conv2d)(struct backend *b, const struct tensor *x, const struct tensor *w,
                          const struct tensor *bias, const struct tensor *residual,
                          const struct conv2d_params *p, struct tensor *y, struct errbuf *err);
    enum status (*linear)(struct backend *b, const struct tensor *x, const struct tensor *w,
                          const struct tensor *bias, const struct tensor *residual,
                          struct tensor *y, struct errbuf *err);
    /* optional (NULL or STATUS_UNSUPPORTED: backend.c runs G linears) */
    enum status (*linear_stack)(struct backend *b, const struct tensor *x,
                                const struct tensor *w, struct tensor *y, struct errbuf *err);
    enum status (*matmul)(struct backend *b, const struct tensor *a, const struct tensor *bm,
                          bool trans_b, float alpha, struct tensor *y, struct errbuf *err);
    enum status (*group_norm)(struct backend *b, const struct tensor *x,
                              const struct tensor *gamma, const struct tensor *beta,
                              const struct group_norm_params *p, struct tensor *y,
                              struct errbuf *err);
    enum status (*layer_norm)(struct backend *b, const struct tensor *x,
                              const struct tensor *gamma, const struct tensor *beta, float eps,
                              struct tensor *y, struct errbuf *err);
    enum status (*attention)(struct backend *b, const struct tensor *q, const struct tensor *k,
                             const struct tensor *v, const struct attention_params *p,
                             struct tensor *y, struct errbuf *err);
    enum status (*gelu)(struct backend *b, const struct tensor *x, enum gelu_kind kind,
                        struct tensor *y, struct errbuf *err);
    enum status (*geglu)(struct backend *b, const struct tensor *x, struct tensor *y,
                         struct errbuf *err);
    enum status (*silu)(struct backend *b, const struct tensor *x, struct tensor *y,
                        struct errbuf *err);
    enum status (*add)(struct backend *b, const struct tensor *a, const struct tensor *bt,
                       struct tensor *y, struct errbuf *err);
    enum status (*mul)(struct backend *b, const struct tensor *a, const struct tensor *bt,
                       struct tensor *y, struct errbuf *err);
    enum status (*axpby)(struct backend *b, const struct tensor *x, const struct tensor *yin,
                         const float *alpha, const float *beta, struct tensor *out,
                         struct errbuf *err);
    enum status (*upsample_nearest)(struct backend *b, const struct tensor *x,
                                    struct tensor *y, struct errbuf *err);
    enum status (*gather_rows)(struct backend *b, const struct tensor *const *rows,
                               const float *scales, int n, struct tensor *dst,
                               struct errbuf *err);
    enum status (*concat_channels)(struct backend *b, const struct tensor *a,
                                   const struct tensor *bt, struct tensor *y,
                                   struct errbuf *err);
    enum status (*timestep_embedding)(struct backend *b, const float *timesteps,
                                      const struct timestep_embedding_params *p,
                                      struct tensor *y, struct errbuf *err);
};

#define BACKEND_MARKS 4096 /* device timestamps a backend keeps (mark indices) */

struct op_profile;

/* Implementations embed this as their first member. */
struct backend {
    const struct backend_ops *ops;
    struct op_profile *profile; /* NULL (calloc'd backends): not profiled; engine/profile.h */
};

const char *backend_name(const struct backend *b);
void backend_destroy(struct backend *b);

/* --- memory ------------------------------------------------------------------ */

/* Allocates storage for t (dtype and shape already set) on b; sets t->data and
 * t->backend.  On failure t->data stays NULL. */
enum status backend_alloc(struct backend *b, struct tensor *t, struct errbuf *err);
/* Frees t's storage (no-op for NULL data); leaves t->data NULL. */
void backend_free(struct tensor *t);
/* Copies numel(dst) host elements of src_dtype into dst, converting dtype. */
enum status backend_upload(struct tensor *dst, const void *src, enum dtype src_dtype,
                           struct errbuf *err);
/* Copies src into numel(src) host floats. Synchronous. */
enum status backend_download(const struct tensor *src, float *dst, struct errbuf *err);
/* Waits until every op issued on b — on every lane — is done. */
enum status backend_sync(struct backend *b, struct errbuf *err);
/* True once b's device has failed for good (a sticky CUDA error): every later call
 * fails with STATUS_DEVICE and only a new process recovers, so liveness must fail.
 * Always false for the CPU backend. */
bool backend_is_broken(const struct backend *b);
/* The dtype models load weights (and size their workspaces) in on b: DTYPE_F32 for the
 * CPU backend; the CUDA backend's is chosen at its creation (f32, f16 or bf16). */
enum dtype backend_weight_dtype(const struct backend *b);

/* --- graphs -------------------------------------------------------------------
 * Between graph_begin and graph_end the ops called on b (from this thread) are
 * recorded, not run; backend_graph_launch replays them on b in order, on the same
 * tensors (their addresses are baked in: the tensors must stay allocated, and their
 * contents are read at replay).  Host scalars are baked in as they were, except the
 * timesteps of the recorded timestep_embedding (one, of at most 256 rows), which
 * backend_graph_set_timesteps replaces for the following launches.  What a recording
 * may contain: ops whose shapes ran once before on b's selected lane (the CUDA
 * backend's algorithm choices are then made and that lane's buffers grown: a buffer
 * that would grow inside a recording fails it); no upload, download or sync.  The CPU backend records
 * nothing: graph_begin → STATUS_UNSUPPORTED.  A failed recording leaves b usable.
 * Ownership: the caller destroys a graph, before its backend.  Thread-safety: as b's. */
struct backend_graph;

/* Whether b records graphs at all (the CUDA backend; not the CPU's). */
bool backend_records_graphs(const struct backend *b);
enum status backend_graph_begin(struct backend *b, struct errbuf *err);
enum status backend_graph_end(struct backend *b, struct backend_graph **out,
                              struct errbuf *err);
enum status backend_graph_set_timesteps(struct backend_graph *g, const float *timesteps,
                                        int rows, struct errbuf *err);
enum status backend_graph_launch(struct backend_graph *g, struct errbuf *err);
/* Whether g can still be launched: false once a buffer of the backend's own that it was
 * recorded over (the CUDA backend's GEMM/convolution workspace or op scratch) has been
 * reallocated — its kernels would write into a freed block, so backend_graph_launch
 * refuses it (STATUS_UNSUPPORTED); record it again. */
bool backend_graph_current(const struct backend_graph *g);
void backend_graph_destroy(struct backend_graph *g);

/* --- lanes -------------------------------------------------------------------
 * A lane is an in-order queue of device work; the lanes of one backend run
 * concurrently (the CUDA backend: a stream each, with its own GEMM/convolution
 * workspace and op scratch; weights and tensors are shared).  Ops, uploads, downloads
 * and recordings go to the lane selected last (lane 0 from the start).  A tensor that
 * one lane writes may be used on another lane only after backend_sync; a graph is
 * recorded on, and always replays on, the lane selected at its graph_begin.  Selecting
 * inside a recording fails.  A backend without lanes (the CPU's) runs every op at once,
 * so any lane 0 … BACKEND_LANES_MAX − 1 may be selected and backend_lanes says 1.
 * Thread-safety: as b's (one thread issues to every lane). */
#define BACKEND_LANES_MAX 4

/* How many lanes of b run concurrently: 1 (CPU), BACKEND_LANES_MAX (CUDA). */
int backend_lanes(const struct backend *b);
/* Sends the following work to `lane` (0 ≤ lane < BACKEND_LANES_MAX, else
 * STATUS_INVALID_ARGUMENT). */
enum status backend_lane_select(struct backend *b, int lane, struct errbuf *err);

/* --- ops ---------------------------------------------------------------------
 * Every tensor argument lives on the same backend (the one of the output). */

/* y{N,Ho,Wo,Cout} = conv(x{N,H,W,Cin}, w{Cout,KH,KW,Cin}) + bias{Cout} + residual{y}
 * Ho = (H + 2·padding − KH)/stride + 1.  bias and residual may be NULL. */
enum status backend_conv2d(const struct tensor *x, const struct tensor *w,
                           const struct tensor *bias, const struct tensor *residual,
                           const struct conv2d_params *p, struct tensor *y, struct errbuf *err);

/* y{rows,out} = x{rows,in} · wᵀ{out,in} + bias{out} + residual{y}; any leading dims
 * of x and y (their row counts must match). */
enum status backend_linear(const struct tensor *x, const struct tensor *w,
                           const struct tensor *bias, const struct tensor *residual,
                           struct tensor *y, struct errbuf *err);

/* G linears of one input, their outputs stacked: y[g] = x{rows,in} · w[g]ᵀ for
 * w{G,out,in}, y{G, x's leading dims, out} (no bias: attention's Q/K/V projections in
 * one call).  A backend without a stacked GEMM runs G linears on views. */
enum status backend_linear_stack(const struct tensor *x, const struct tensor *w,
                                 struct tensor *y, struct errbuf *err);

/* y{B,M,N} = alpha · a{B,M,K} · bm{B,K,N} (or bm{B,N,K}ᵀ when trans_b). */
enum status backend_matmul(const struct tensor *a, const struct tensor *bm, bool trans_b,
                           float alpha, struct tensor *y, struct errbuf *err);

/* x{N,...,C} (3 or 4 dims): statistics per (sample, group) over all positions and the
 * group's C/groups channels; gamma/beta{C} may be NULL (no affine). y may be x.  With
 * p->shift{N,C}: of x + shift (one kernel where the backend has it, else an add into y
 * and the norm in place). */
enum status backend_group_norm(const struct tensor *x, const struct tensor *gamma,
                               const struct tensor *beta, const struct group_norm_params *p,
                               struct tensor *y, struct errbuf *err);

/* Normalizes each row of x{...,C} over C; gamma/beta{C} may be NULL. y may be x. */
enum status backend_layer_norm(const struct tensor *x, const struct tensor *gamma,
                               const struct tensor *beta, float eps, struct tensor *y,
                               struct errbuf *err);

/* y{B,Nq,H·D} = softmax(q·kᵀ·scale [+ causal mask]) · v per head; q{B,Nq,H·D},
 * k{B,Nk,H·D}, v{B,Nk,H·D} (heads side by side in the last dim, as the projections
 * produce them).  Never materializes an Nq×Nk matrix. */
enum status backend_attention(const struct tensor *q, const struct tensor *k,
                              const struct tensor *v, const struct attention_params *p,
                              struct tensor *y, struct errbuf *err);

/* Elementwise activations; y same shape as x; y may be x. */
enum status backend_gelu(const struct tensor *x, enum gelu_kind kind, struct tensor *y,
                         struct errbuf *err);
enum status backend_silu(const struct tensor *x, struct tensor *y, struct errbuf *err);

/* y{...,C} = x[..., :C] · gelu_erf(x[..., C:]) for x{...,2C} (diffusers' GEGLU). */
enum status backend_geglu(const struct tensor *x, struct tensor *y, struct errbuf *err);

/* y = a + bt, y = a · bt.  bt has a's ndim and each of its dims equals a's or is 1
 * (broadcast), e.g. {N,1,1,C} onto {N,H,W,C}.  y same shape as a; y may be a. */
enum status backend_add(const struct tensor *a, const struct tensor *bt, struct tensor *y,
                        struct errbuf *err);
enum status backend_mul(const struct tensor *a, const struct tensor *bt, struct tensor *y,
                        struct errbuf *err);

/* out[n] = alpha[n]·x[n] + beta[n]·yin[n] for each batch row n (dim 0); alpha and
 * beta are host arrays of shape[0] floats.  out may alias x or yin. */
enum status backend_axpby(const struct tensor *x, const struct tensor *yin, const float *alpha,
                          const float *beta, struct tensor *out, struct errbuf *err);

/* dst rows [0, n) = scales[i] · rows[i] (scales NULL: 1, exact copies): n source
 * tensors of one dst row's elements each (any shape), dst's dtype and backend; dst's
 * shape[0] is n (≤ BACKEND_GATHER_MAX).  The rows may not overlap dst.  One launch for
 * what n scaled copies did (a U-Net step's batch assembly from its requests). */
#define BACKEND_GATHER_MAX 256
enum status backend_gather_rows(const struct tensor *const *rows, const float *scales, int n,
                                struct tensor *dst, struct errbuf *err);

/* y{N,Ho,Wo,C} = nearest-neighbour resize of x{N,H,W,C} to Ho ≥ H, Wo ≥ W, as
 * PyTorch's F.interpolate(mode="nearest", size=(Ho,Wo)): source row
 * min(floor(dst · (float)H/Ho), H−1), and likewise for columns (dst/2 when Ho = 2H).
 * Exact 2× is the U-Net's and VAE's upsampler; other sizes are the U-Net's path for
 * latents that are not a multiple of its total downscale. */
enum status backend_upsample_nearest(const struct tensor *x, struct tensor *y,
                                     struct errbuf *err);

/* y{N,H,W,Ca+Cb} = [a{N,H,W,Ca}, bt{N,H,W,Cb}] along the last dim (any ndim). */
enum status backend_concat_channels(const struct tensor *a, const struct tensor *bt,
                                    struct tensor *y, struct errbuf *err);

/* y{N,dim}: sinusoidal embedding of N host timesteps, as diffusers'
 * get_timestep_embedding: exponent = −ln(max_period)·i/(half − shift), emb = t·e^exp,
 * out = [sin, cos] (or [cos, sin] when flip_sin_to_cos). */
enum status backend_timestep_embedding(const float *timesteps,
                                       const struct timestep_embedding_params *p,
                                       struct tensor *y, struct errbuf *err);

#endif
