/* models/pipeline.h — txt2img over a batch of requests, step by step.
 *
 * The pipeline is built from step functions that a batching scheduler (issue 4) calls
 * directly; sd_txt2img is the simple whole-batch driver made ONLY of them:
 *
 *     gen_params_validate(model, &p, err)
 *     sd_request_begin(model, ws, &p, i, &req, err)     tokenize + text-encode, initial
 *                                                       noise, sampler state
 *     while some request is not done:
 *         sd_unet_step(model, ws, reqs, n, err)          ONE U-Net call over every row of
 *                                                       the n requests, CFG combine and
 *                                                       each request's sampler step
 *         (requests that are done leave the batch; new ones may join)
 *     sd_decode(model, ws, done_reqs, k, images, err)    VAE decode, batched, to RGB8
 *     sd_request_free(&req)
 *
 * Requests in one sd_unet_step may differ in prompt, negative prompt, seed, guidance,
 * sampler, scheduler, step count and step index; they must share the latent size (a
 * scheduler's bucket).  Rows of the U-Net batch (NHWC, {R,h,w,C}):
 *     rows [0, K)        the cond rows of the K requests with CFG (guidance > 1)
 *     rows [K, n)        the single row of each request without CFG (guidance ≤ 1)
 *     rows [n, n + K)    the uncond rows of the K CFG requests, in the same order
 * each row with its request's own timestep and context ({R,77,C}, cond and uncond of
 * equal length).  CFG is then one backend_axpby with per-row scalars over rows [0, K):
 *     guided = g·cond + (1 − g)·uncond     (= uncond + g·(cond − uncond))
 * and each request's sampler step (models/sampler.h coefficients) runs on its own row
 * with backend_axpby, on the backend where the latents live.  Every operation is per
 * row and the U-Net is batch invariant, so a request's image does not depend on its
 * batchmates (tested bit for bit).
 *
 * Noise: image i of a gen_params uses seed + i (A1111's convention: image 2 of
 * "-n 4 --seed 5" is the image of "--seed 7") and Philox subsequence 0.  Its initial
 * latent is elements [0, N) of the standard-normal stream (seed + i, 0) in NHWC order
 * (N = h·w·C), times the sampler's init_noise_sigma; the noise of step k (Euler
 * ancestral, DDIM eta > 0, DDPM, LCM) is elements [(k + 1)·N, (k + 2)·N)
 * (models/sampler.h).  Test hooks in gen_params replace them with given tensors.
 *
 * img2img (gen_params.init_image): the image x = rgb/255·2 − 1 (diffusers'
 * VaeImageProcessor) is VAE-encoded in sd_request_begin (batch 1, on the worker); its
 * latent is z = (mean + exp(logvar/2)·ε)·scaling_factor with ε elements [0, N) of
 * the stream (seed + i, subsequence 1); the schedule of `steps` steps starts at step
 * b = steps − int(steps·strength) (sampler_options.begin: DPM++ takes that step at
 * first order, as diffusers' lower_order_nums does), and the initial latent is the
 * scheduler's add_noise(z, noise, t_b) with noise elements [0, N) of (seed + i, 0):
 * z + σ_b·noise (Euler, Euler a), α·z + σ·noise with α = 1/sqrt(σ_b² + 1), σ = σ_b·α
 * (DPM++), sqrt(ᾱ_t)·z + sqrt(1 − ᾱ_t)·noise (DDIM, DDPM, LCM).  sd_request_step and
 * sd_request_steps count the steps that run (from b).
 *
 * Inpainting (gen_params.init_mask with init_image), as diffusers'
 * StableDiffusionInpaintPipeline with a 4-channel U-Net: the latent mask m is the
 * image mask binarized at 128 (its mask processor: value/255 ≥ 0.5 → 1) and sampled
 * at each latent pixel's top-left image pixel (torch's nearest interpolate), one value
 * for all latent channels.  The start is img2img's, except at strength 1, where it is
 * noise·init_noise_sigma (diffusers' is_strength_max).  After each step, the kept
 * pixels (m = 0) are reset to the image's latent z noised to the next step,
 * add_noise(z, noise, t_next) with the start's noise, and after the last step to z
 * itself: latent = m·latent + (1 − m)·z_t, an exact select.  inpaint_fill replaces z
 * under m = 1 before the start (SD_FILL_LATENT_NOISE: Philox (seed + i, subsequence 2);
 * the kept pixels are untouched).  sd_decode then composites the decoded image over
 * the start image with alpha a = min(255, 2·mask): rgb = (gen·a + start·(255 − a)) /
 * 255, rounded (A1111's overlay of its mask_for_overlay: a pixel with mask 0 is the start
 * image's exactly, one the latent repaints (mask ≥ 128) the decoder's); the image's
 * `unit` floats stay the decoder's own.
 *
 * Scheduler (the timestep spacing / σ schedule, applied over the model's scheduler
 * config; the sampler class fills in the keys the config lacks, as diffusers'
 * from_config):
 *   default   the model's scheduler config as it is;
 *   karras    Karras σ (use_karras_sigmas) over the full training range (timestep
 *             spacing linspace): Euler, DPM++ 2M (= the dpmpp_2m_karras sampler);
 *   leading, linspace, trailing   that timestep_spacing ("trailing" is ComfyUI's
 *             sgm_uniform, what SD-Turbo uses); not for LCM, which has its own.
 * "DPM++ 2M Karras" is sampler dpmpp_2m_karras with any scheduler, or dpmpp_2m with
 * scheduler karras.
 *
 * Memory: a request allocates its backend tensors (context, latent, x₀ history, noise)
 * and host scratch in sd_request_begin; sd_unet_step and sd_decode take their batch
 * tensors from the workspace and rewind it, so after a warm-up pass at the largest
 * batch no step allocates anything.
 *
 * Ownership: the caller owns params (strings are borrowed and read only during
 * gen_params_validate and sd_request_begin; the hooks' arrays, and with a mask the
 * init_image and init_mask (the overlay reads them), must live as long as the
 * request), requests (sd_request_free) and the images sd_decode returns
 * (sd_image_free).  The model is borrowed and must outlive its requests.
 * Thread-safety: a request belongs to one thread at a time; the step functions use
 * the model's backend and the caller's workspace, so they run on the backend's worker
 * thread.  gen_params_* are reentrant.
 */
#ifndef DIFFUSIOND_MODELS_PIPELINE_H
#define DIFFUSIOND_MODELS_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"
#include "engine/workspace.h"
#include "models/sampler.h"
#include "models/sd_model.h"

#define GEN_MAX_SIDE 2048    /* pixels */
#define GEN_MAX_STEPS 1000
#define GEN_MAX_GUIDANCE 100.0
#define GEN_MAX_IMAGES 64    /* n per gen_params */
#define SD_MAX_BATCH_ROWS 256 /* U-Net rows per sd_unet_step */

enum sd_scheduler {
    SD_SCHEDULER_DEFAULT = 0,
    SD_SCHEDULER_KARRAS,
    SD_SCHEDULER_LEADING,
    SD_SCHEDULER_LINSPACE,
    SD_SCHEDULER_TRAILING,
    SD_SCHEDULER_COUNT_
};

/* "default", "karras", "leading", "linspace", "trailing"; "?" out of range. */
const char *sd_scheduler_name(enum sd_scheduler s);
/* The names above (case-insensitive) and the aliases "normal", "automatic"
 * (default), "uniform" (linspace), "sgm_uniform" (trailing).  STATUS_INVALID_ARGUMENT
 * naming the field "scheduler" and the value. */
enum status sd_scheduler_parse(const char *name, enum sd_scheduler *out, struct errbuf *err);

/* A1111's display name of a sampler + scheduler ("DPM++ 2M Karras", "Euler a"), for
 * metadata. */
const char *sd_sampler_display_name(enum sampler_kind k, enum sd_scheduler s);

/* Inpainting: what the repainted latent pixels start from (AUTOMATIC1111's
 * inpainting_fill 1, 2, 3; its 0, "fill", is an image operation before the encode:
 * the caller's). */
enum sd_inpaint_fill {
    SD_FILL_ORIGINAL = 0,   /* the start image's latent (diffusers; A1111's 1) */
    SD_FILL_LATENT_NOISE,   /* standard-normal noise: Philox (seed + i, subsequence 2) */
    SD_FILL_LATENT_NOTHING, /* zeros */
    SD_FILL_COUNT_
};

/* One request.  A plain value; strings are borrowed (see the top). */
struct gen_params {
    const char *prompt;          /* UTF-8; NULL = "" */
    const char *negative_prompt; /* UTF-8 uncond prompt with CFG; NULL = "" */
    int width, height;           /* pixels: multiples of model->size_multiple, ≤ GEN_MAX_SIDE */
    int steps;                   /* 1 … GEN_MAX_STEPS (and what the sampler allows) */
    double guidance;             /* CFG scale in [0, GEN_MAX_GUIDANCE]; ≤ 1: no CFG */
    uint64_t seed;               /* image i uses seed + i ("random" is the caller's job) */
    enum sampler_kind sampler;
    enum sd_scheduler scheduler;
    int clip_skip;               /* diffusers' clip_skip: layers skipped, 0 … layers − 1
                                    (A1111's "Clip skip 2" is 1); as in diffusers it
                                    applies to the prompt, not the negative prompt */
    double eta;                  /* DDIM's eta in [0, 1] */
    int n;                       /* images, 1 … GEN_MAX_IMAGES */
    /* img2img (init_image NULL: txt2img).  The start image: RGB8, row-major,
     * width·height·3 bytes (borrowed; resizing is the caller's), and strength in
     * (0, 1].  As diffusers' StableDiffusionImg2ImgPipeline: the schedule is the one of
     * `steps` steps, of which the last k = int(steps·strength) run (k ≥ 1 required),
     * from the image's latent noised to the first of them (sd_img2img_steps). */
    const uint8_t *init_image;
    double strength;
    /* Inpainting (needs init_image; NULL: plain img2img).  The mask: 8-bit, row-major,
     * width·height bytes (borrowed), 255 = repaint, 0 = keep, values below 128 blend the
     * final overlay (see "Inpainting" at the top).  inpaint_fill: what the repainted
     * area starts from (SD_FILL_ORIGINAL unless a mask is given). */
    const uint8_t *init_mask;
    enum sd_inpaint_fill inpaint_fill;
    bool inpaint_no_overlay;     /* the caller composites the image itself (A1111's "only
                                    masked" pastes it into the whole picture): sd_decode's
                                    rgb is the decoder's */
    /* Test hooks (NULL: off; need n = 1): the initial noise {h,w,C} NHWC, before
     * init_noise_sigma (diffusers' `latents=`; img2img: the noise add_noise mixes into
     * the image's latent), the noise of each step k (step_noise[k], {h,w,C}; entries
     * of steps that draw none may be NULL; k counts from the first step of the whole
     * schedule), and img2img's posterior sample ε {h,w,C} (latent_dist.sample()). */
    const float *init_noise;
    const float *const *step_noise;
    const float *encode_noise;
};

/* Steps an img2img request runs: int(steps·strength), as diffusers' get_timesteps
 * (Python's int() of the double product); txt2img (strength ignored): steps. */
int sd_img2img_steps(int steps, double strength);

/* The model's defaults: native size, its steps/guidance/sampler, scheduler default,
 * seed 0, clip_skip 0, eta 0, n 1, empty prompts, txt2img (strength 0.75, A1111's
 * default, for a caller that sets init_image), no hooks. */
void gen_params_default(const struct sd_model *model, struct gen_params *p);

/* Checks every field against the model; the message starts with the field's name
 * ("width: must be a multiple of 8 …", "steps: …", "sampler: …").  Returns
 * STATUS_INVALID_ARGUMENT (prompts that are not UTF-8 fail in sd_request_begin). */
enum status gen_params_validate(const struct sd_model *model, const struct gen_params *p,
                                struct errbuf *err);

/* A running request (one image).  Fields are read-only outside this module. */
struct sd_request {
    const struct sd_model *model;
    uint64_t seed;              /* params.seed + image_index */
    int image_index;
    int width, height;          /* pixels */
    int lh, lw, lc;             /* latent {1,lh,lw,lc} */
    size_t n_elems;             /* lh·lw·lc */
    float guidance;
    int rows;                   /* U-Net rows: 2 with CFG (cond, uncond), else 1 */
    enum sd_scheduler scheduler;
    struct sampler_state sampler;
    bool prompt_truncated, negative_truncated; /* the tokenizer cut the text at 77 */
    struct tensor context;      /* {rows,L,C}: row 0 cond, row 1 uncond */
    struct tensor latent;       /* {1,lh,lw,lc}: the sampler's state x_t */
    struct tensor x0[2];        /* DPM++ x₀ history (data NULL when unused) */
    int x0_prev;                /* which x0[] holds the previous step's x₀ */
    struct tensor noise;        /* {1,lh,lw,lc} when a step draws noise */
    bool host_step;             /* a step clamps x₀ (clip_sample): the step runs on the host */
    float *host;                /* host scratch: noise, and on host_step latent + output */
    const float *const *step_noise; /* test hook (borrowed) */
    /* inpainting (gen_params.init_mask; all empty otherwise), {1,lh,lw,lc} each */
    struct tensor inpaint_z;     /* keep·z: the image's latent on the kept pixels, else 0 */
    struct tensor inpaint_noise; /* keep·noise: the start's noise, likewise */
    struct tensor inpaint_paint; /* 1 on the repainted pixels (m = 1), else 0 */
    const uint8_t *overlay_rgb, *overlay_mask; /* gen_params' init_image and init_mask
                                                   (borrowed until sd_decode) */
};

/* Starts image `image_index` of p (validated here too): tokenizes and encodes the
 * prompt (and the negative prompt with CFG), draws the initial latent, builds the
 * sampler.  On failure *req is empty (sd_request_free is safe). */
enum status sd_request_begin(const struct sd_model *model, struct workspace *ws,
                             const struct gen_params *p, int image_index,
                             struct sd_request *req, struct errbuf *err);

/* Precomputed text embeddings (a scheduler's text cache): cond is the prompt's
 * encoder output at p->clip_skip, uncond the negative prompt's at the last layer
 * (clip_skip 0), each {1, context_len, context_dim} on the model's backend in the
 * workspace's dtype.  uncond is read only with CFG (guidance > 1).  Borrowed: copied
 * into the request during sd_request_begin_text. */
struct sd_text_embeddings {
    const struct tensor *cond, *uncond;
    bool cond_truncated, uncond_truncated;
};

/* Encodes `text` (NULL = "") with the model's tokenizer and text encoder, skipping
 * clip_skip final layers, into out: {1, context_len, context_dim}, allocated by the
 * caller on the model's backend in ws->dtype.  *truncated (may be NULL): the tokenizer
 * cut the text at context_len tokens.  Exactly what sd_request_begin computes for a
 * context row. */
enum status sd_text_encode(const struct sd_model *model, struct workspace *ws, const char *text,
                           int clip_skip, struct tensor *out, bool *truncated,
                           struct errbuf *err);

/* sd_request_begin with the context rows copied from `text` instead of encoded (text
 * NULL: encoded as sd_request_begin does).  The prompts in p are not read then. */
enum status sd_request_begin_text(const struct sd_model *model, struct workspace *ws,
                                  const struct gen_params *p, int image_index,
                                  const struct sd_text_embeddings *text, struct sd_request *req,
                                  struct errbuf *err);

/* One denoising step for each of reqs[0 … n): one U-Net call over all their rows,
 * CFG, sampler steps.  Every request must be running (not done) and share the latent
 * size; at most SD_MAX_BATCH_ROWS rows.  STATUS_INVALID_ARGUMENT otherwise.
 * Returns once the step's device work is done (backend_sync): the caller's clock times
 * the step itself, and a queue that ran ahead of the device cannot hold the caller
 * (the scheduler) in the next download while requests wait to join. */
enum status sd_unet_step(const struct sd_model *model, struct workspace *ws,
                         struct sd_request *const *reqs, int n, struct errbuf *err);

/* U-Net graphs: the same step with the U-Net call replayed from a recorded backend
 * graph (engine/backend.h) where the backend records them (CUDA).  Per (model, rows,
 * latent size, batch tensors' addresses, workspace generation): the first call runs
 * eagerly (it plans the convolutions and grows the workspace), the second records the
 * U-Net and replays it, later ones replay it with their own timesteps — the same
 * kernels on the same data, so the same numbers as sd_unet_step.  On a backend without
 * graphs (CPU), or after a recording failed, every call runs eagerly.  At most
 * SD_GRAPHS_MAX graphs (U-Net calls and VAE decodes together: sd_decode_graphs), the
 * least recently used replaced.
 * Ownership: the caller's (sd_graphs_destroy, before the backend).  Thread-safety: one
 * thread, the one that runs the steps. */
#define SD_GRAPHS_MAX 64

struct sd_graphs;

struct sd_graphs_stats {
    unsigned recorded; /* U-Net graphs recorded */
    unsigned replays;  /* U-Net calls replayed from a graph */
    unsigned eager;    /* U-Net calls run eagerly */
    unsigned vae_recorded, vae_replays, vae_eager; /* the same for VAE decodes */
    unsigned stale;    /* graphs dropped as recorded before a backend buffer grew
                          (backend_graph_current), recorded again */
    bool unsupported;  /* the backend records no graphs (or a U-Net recording failed) */
    bool failed, vae_failed; /* a U-Net / VAE recording failed on a backend that records:
                                those calls run eagerly (slower) from then on */
};

enum status sd_graphs_create(struct sd_graphs **out, struct errbuf *err);
void sd_graphs_destroy(struct sd_graphs *g);
void sd_graphs_stats(const struct sd_graphs *g, struct sd_graphs_stats *out);

/* sd_unet_step through `graphs` (NULL: exactly sd_unet_step). */
enum status sd_unet_step_graphs(const struct sd_model *model, struct workspace *ws,
                                struct sd_graphs *graphs, struct sd_request *const *reqs,
                                int n, struct errbuf *err);

/* sd_unet_step_graphs without its closing backend_sync: the step's device work is
 * queued on the backend's selected lane (engine/backend.h) and done after the caller's
 * backend_sync, which must come before the requests are stepped, decoded or freed
 * again.  So steps of different buckets run concurrently on different lanes, each with
 * its own workspace and graphs (one thread issues them all). */
enum status sd_unet_step_launch(const struct sd_model *model, struct workspace *ws,
                                struct sd_graphs *graphs, struct sd_request *const *reqs,
                                int n, struct errbuf *err);

/* sd_unet_step_launch in two halves, so that the steps of several buckets on several
 * lanes all have their U-Net calls queued before any of them queues its CFG and
 * sampler ops (the host's launches for those would otherwise delay the next lane's
 * call).  start: the batch and the U-Net call, queued on the selected lane; complete
 * (with that lane selected again): CFG and the sampler steps, queued, and the
 * workspace rewound.  Between the two the requests and ws belong to the step.  A
 * failed start leaves nothing open (complete is not called); complete (or abandon)
 * always closes the step.  Ownership: the caller's (sd_step_destroy); one open step per sd_step. */
struct sd_step;
enum status sd_step_create(struct sd_step **out, struct errbuf *err);
void sd_step_destroy(struct sd_step *st);
bool sd_step_open(const struct sd_step *st);
enum status sd_unet_step_start(const struct sd_model *model, struct workspace *ws,
                               struct sd_graphs *graphs, struct sd_request *const *reqs, int n,
                               struct sd_step *st, struct errbuf *err);
enum status sd_unet_step_complete(struct sd_step *st, struct errbuf *err);
/* Closes an open step without its second half (its lane cannot be selected: the
 * requests' latents are left at this step's start, the caller fails them). */
void sd_unet_step_abandon(struct sd_step *st);

/* True when every step has run. */
bool sd_request_done(const struct sd_request *req);
int sd_request_step(const struct sd_request *req);   /* steps done so far */
int sd_request_steps(const struct sd_request *req);  /* steps in all */

/* A decoded image: RGB8, row-major, width·height·3 bytes; unit (optional) the same
 * pixels as floats in [0,1] (diffusers' output_type "np"). */
struct sd_image {
    int width, height;
    uint8_t *rgb;
    float *unit;
    uint64_t seed;
};

/* Decodes the finished requests reqs[0 … n) (same latent size) in one VAE call and
 * fills images[0 … n) (allocated here: free with sd_image_free); with_unit also keeps
 * the [0,1] floats.  A request that is not done → STATUS_INVALID_ARGUMENT. */
enum status sd_decode(const struct sd_model *model, struct workspace *ws,
                      struct sd_request *const *reqs, int n, bool with_unit,
                      struct sd_image *images, struct errbuf *err);

/* sd_decode with the VAE call through `graphs` (NULL: exactly sd_decode): per (model,
 * images, latent size, tensors' addresses, workspace generation) eager first, recorded
 * at the second call, replayed after — as the U-Net's (a bundled-model decode on an
 * H200 is ~2 ms of eager launches, GPU run 10).  A VAE recording that fails turns VAE
 * graphs off for `graphs`, not the U-Net's. */
enum status sd_decode_graphs(const struct sd_model *model, struct workspace *ws,
                             struct sd_graphs *graphs, struct sd_request *const *reqs, int n,
                             bool with_unit, struct sd_image *images, struct errbuf *err);

void sd_image_free(struct sd_image *img);

/* Releases a request's tensors and state; req may be empty or NULL. */
void sd_request_free(struct sd_request *req);

/* --- the whole-batch driver ---------------------------------------------------------- */

/* Called after every U-Net call: steps done / in all over every image. */
typedef void (*sd_progress_fn)(void *user, int steps_done, int steps_total);

struct sd_timings {
    double text_encode, denoise, decode; /* seconds */
    int unet_calls, steps;               /* U-Net calls, request steps in all */
};

/* Runs params[0 … n_params) to completion: every image of every params begins, they
 * denoise together (one U-Net call per latent size per iteration; requests with fewer
 * steps leave early and are decoded as they finish, batched with those finishing in
 * the same iteration), images in params order (params[0]'s n images first).
 * images must hold Σ n entries; progress and timings may be NULL.  On failure every
 * image is freed. */
enum status sd_txt2img(const struct sd_model *model, struct workspace *ws,
                       const struct gen_params *params, int n_params, bool with_unit,
                       sd_progress_fn progress, void *user, struct sd_image *images,
                       struct sd_timings *timings, struct errbuf *err);

#endif
