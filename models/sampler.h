/* models/sampler.h — per-request sampler state machines (Euler, Euler ancestral,
 * DDIM, DPM++ 2M, DPM++ 2M Karras, DDPM, LCM) that reproduce diffusers' scheduler
 * classes step for step.
 *
 * One struct sampler_state per request (per image row): its own kind, step count,
 * step index, timesteps/σ for that count, multistep history and noise stream, so
 * requests with different samplers and step counts can share one U-Net batch.  A
 * driver does, for each request in the batch:
 *
 *     sampler_init(&st, kind, &schedule, n_steps, &opt, err);
 *     latent[i] = noise[i] · sampler_init_noise_sigma(&st)     (pipeline.prepare_latents)
 *     while (!sampler_done(&st)):
 *         row input  = latent · sampler_model_input_scale(&st)  (scale_model_input)
 *         row t      = sampler_timestep(&st)                    (what the U-Net gets)
 *         … one batched U-Net call (CFG combined) gives model_output for the row …
 *         sampler_step(&st, model_output, latent, n, err)       (scheduler.step)
 *     sampler_free(&st);
 *
 * What each kind matches (diffusers 0.42, the class built with from_config(config)):
 *   SAMPLER_EULER            EulerDiscreteScheduler (s_churn 0; Karras σ when the
 *                            config says use_karras_sigmas; timestep_type continuous,
 *                            interpolation_type log_linear, final_sigmas_type)
 *   SAMPLER_EULER_A          EulerAncestralDiscreteScheduler
 *   SAMPLER_DDIM             DDIMScheduler, step(eta = options.eta)
 *   SAMPLER_DPMPP_2M         DPMSolverMultistepScheduler(algorithm_type "dpmsolver++",
 *                            solver_order 2; solver_type, lower_order_final,
 *                            euler_at_final, final_sigmas_type, lambda_min_clipped and
 *                            use_karras_sigmas from the config)
 *   SAMPLER_DPMPP_2M_KARRAS  the same with use_karras_sigmas = true
 *   SAMPLER_DDPM             DDPMScheduler (variance_type fixed_small, fixed_small_log
 *                            or fixed_large)
 *   SAMPLER_LCM              LCMScheduler (original_inference_steps, timestep_scaling;
 *                            at the last step the new latent is the denoised output)
 * A config key that is absent takes the class's own default (DDIM: timestep_spacing
 * "leading", clip_sample true, set_alpha_to_one true; Euler/DPM: "linspace"; …).
 * Rejected with STATUS_UNSUPPORTED, naming the key: thresholding, use_exponential_
 * sigmas, use_beta_sigmas, use_lu_lambdas, use_flow_sigmas, and prediction_type
 * "sample" for Euler ancestral (diffusers raises there too).
 *
 * Where this departs from diffusers, on purpose:
 *   - the step index always starts at 0 (diffusers' SDXL pipeline: set_begin_index(0));
 *     StableDiffusionPipeline instead looks the first timestep up, which fails with an
 *     IndexError when a schedule repeats its first timestep (DPM++ Karras on cosine or
 *     zero-SNR schedules);
 *   - for the step counts where numpy's arange(T, 0, −T/n) yields n + 1 values
 *     (timestep_spacing "trailing", n = 61, 103, …), diffusers runs an extra step at
 *     timestep −1; here the first n are kept;
 *   - Euler with interpolation_type log_linear and timestep_type continuous: diffusers
 *     derives n + 1 timesteps (one per σ of its n + 1-point ramp) and runs n + 1
 *     steps; here n (with discrete timesteps both run n steps, ending at σ_min as
 *     diffusers does).
 *
 * The update of every step is linear in (latent, model_output, previous x₀, noise)
 * up to an optional clamp of x₀ (clip_sample): struct sampler_coeffs spells it out so
 * a device backend can apply it with per-row scalars (backend_axpby) — see
 * sampler_step_coeffs and sampler_advance.  sampler_step applies the same
 * coefficients on a host f32 row.
 *
 * Noise (Euler ancestral, DDIM eta > 0, DDPM, LCM) comes from the request's own
 * Philox stream (engine/philox.h: seed, subsequence from the options): the noise of
 * step k (0-based) is elements [(k + 1)·n, (k + 2)·n) of the standard-normal stream,
 * and elements [0, n) are the initial latent noise (sampler_initial_latent).  So a
 * request's result never depends on its batchmates or on which steps drew noise.
 *
 * Ownership: sampler_init allocates the state's arrays (and, when options.n_elems > 0,
 * its history/noise rows); sampler_free releases them.  Nothing is allocated by a
 * step, except once, at the first step of a state initialised with n_elems = 0.
 * Thread-safety: a state belongs to one thread at a time; different states are
 * independent (the schedule they were built from is only read during sampler_init).
 */
#ifndef DIFFUSIOND_MODELS_SAMPLER_H
#define DIFFUSIOND_MODELS_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"
#include "models/schedule.h"

enum sampler_kind {
    SAMPLER_EULER,
    SAMPLER_EULER_A,
    SAMPLER_DDIM,
    SAMPLER_DPMPP_2M,
    SAMPLER_DPMPP_2M_KARRAS,
    SAMPLER_DDPM,
    SAMPLER_LCM,
    SAMPLER_KIND_COUNT_
};

/* "euler", "euler_a", "ddim", "dpmpp_2m", "dpmpp_2m_karras", "ddpm", "lcm";
 * "?" out of range. */
const char *sampler_kind_name(enum sampler_kind kind);

/* Parses a sampler name, case-insensitively: the names above, and the usual
 * aliases ("euler_ancestral", "euler a", "k_euler", "dpm++ 2m", "dpm++ 2m karras",
 * "dpmpp_2m karras", "ddim", "lcm", …).  STATUS_INVALID_ARGUMENT naming the value. */
enum status sampler_kind_parse(const char *name, enum sampler_kind *out, struct errbuf *err);

struct sampler_options {
    double eta;           /* DDIM only, in [0, 1]: 0 is deterministic DDIM (default) */
    uint64_t seed;        /* the request's noise stream (engine/philox.h) */
    uint64_t subsequence;
    size_t n_elems;       /* latent elements per row; > 0 allocates the rows now */
    int begin;            /* img2img: the first step that runs, in [0, n_steps): the
                             schedule stays the n_steps one (diffusers' set_begin_index);
                             DPM++ takes that step at first order */
};

/* eta 0, seed 0, subsequence 0, n_elems 0. */
void sampler_options_defaults(struct sampler_options *opt);

/* One step as coefficients (see the top of the file):
 *     x₀   = x0_latent·latent + x0_model·model_output, then clamped to ±clip_range
 *            when clip is set;
 *     new  = latent·c_latent + x₀·c_x0 + model_output·c_model + prev_x0·c_prev
 *            + noise·c_noise
 * where prev_x0 is the x₀ of the previous step (DPM++ second order).  When clip is
 * false the same update folds to
 *     new  = latent·fold_latent + model_output·fold_model + prev_x0·c_prev + noise·c_noise.
 * needs_noise: c_noise ≠ 0 (this step draws noise); uses_prev_x0: c_prev ≠ 0;
 * stores_x0: the next step reads this step's x₀. */
struct sampler_coeffs {
    float x0_latent, x0_model;
    bool clip;
    float clip_range;
    float c_latent, c_x0, c_model, c_prev, c_noise;
    float fold_latent, fold_model;
    bool needs_noise, uses_prev_x0, stores_x0;
};

struct sampler_state {
    enum sampler_kind kind;
    int n_steps;
    int begin;                      /* the first step (options.begin) */
    int step;                       /* index of the next step; n_steps when done */
    float *add_noise_x, *add_noise_eps; /* [n_steps] add_noise's factors at each step
                                       (sampler_add_noise_coeffs) */
    float init_noise_sigma;
    float *timesteps;               /* [n_steps] what the U-Net receives */
    float *sigmas;                  /* [n_steps + 1] Euler/DPM families; NULL otherwise */
    float *c_in;                    /* [n_steps] scale_model_input's factor */
    struct sampler_coeffs *coeffs;  /* [n_steps] */
    uint64_t seed, subsequence;
    size_t n_elems;                 /* row length once known (0 before) */
    float *prev_x0;                 /* [n_elems] DPM++ history (host path) */
    float *noise;                   /* [n_elems] Philox scratch (host path) */
    void *plan_mem, *row_mem;       /* the allocations */
};

/* Builds the state for n_steps steps of `kind` over `sched` (its config supplies the
 * options).  opt may be NULL (defaults).  Errors name the field: n_steps < 1 or >
 * num_train_timesteps, LCM n_steps > original_inference_steps, eta outside [0, 1],
 * unsupported config keys.  On failure the state is empty (sampler_free is safe). */
enum status sampler_init(struct sampler_state *st, enum sampler_kind kind,
                         const struct schedule *sched, int n_steps,
                         const struct sampler_options *opt, struct errbuf *err);

/* Frees what sampler_init/sampler_step allocated; st may be empty or NULL. */
void sampler_free(struct sampler_state *st);

/* The factor the initial noise is multiplied by (init_noise_sigma). */
float sampler_init_noise_sigma(const struct sampler_state *st);

/* Fills latent[0..n) with the request's initial noise (Philox elements [0, n)) times
 * init_noise_sigma. */
void sampler_initial_latent(const struct sampler_state *st, float *latent, size_t n);

/* img2img's start: latent[i] = a·x[i] + b·noise[i], the scheduler's add_noise(x,
 * noise, timestep of step `begin`): Euler, Euler a: a = 1, b = σ; DPM++: a = 1/sqrt(σ²
 * + 1), b = σ·a; DDIM, DDPM, LCM: a = sqrt(ᾱ_t), b = sqrt(1 − ᾱ_t) — float32 as
 * diffusers evaluates it.  latent may alias x or noise. */
void sampler_add_noise(const struct sampler_state *st, const float *x, const float *noise,
                       float *latent, size_t n);

/* The factors a, b of add_noise at the timestep of step k in [0, n_steps) (as above):
 * what inpainting mixes the kept pixels with after each step. */
void sampler_add_noise_coeffs(const struct sampler_state *st, int k, float *a, float *b);

bool sampler_done(const struct sampler_state *st);
int sampler_step_index(const struct sampler_state *st);
int sampler_n_steps(const struct sampler_state *st);

/* For the current step (not done): the scale applied to the latent before the U-Net
 * (1/sqrt(σ² + 1) for Euler and Euler ancestral, 1 otherwise) and the timestep the
 * U-Net receives (a float: Euler's may be fractional). */
float sampler_model_input_scale(const struct sampler_state *st);
float sampler_timestep(const struct sampler_state *st);

/* The current step's coefficients (NULL when done). */
const struct sampler_coeffs *sampler_step_coeffs(const struct sampler_state *st);

/* Philox element offset of the current step's noise for rows of n elements:
 * (step + 1)·n. */
uint64_t sampler_noise_offset(const struct sampler_state *st, size_t n);

/* Applies the current step to latent[0..n) in place (model_output: n values), drawing
 * noise from the request's Philox stream when the step needs it, and advances.  n must
 * be the same at every step.  STATUS_INVALID_ARGUMENT when done or n changes. */
enum status sampler_step(struct sampler_state *st, const float *model_output, float *latent,
                         size_t n, struct errbuf *err);

/* The same with the caller's noise (n values; may be NULL when the step needs none):
 * the hook tests use to feed diffusers' own noise. */
enum status sampler_step_with_noise(struct sampler_state *st, const float *model_output,
                                    float *latent, const float *noise, size_t n,
                                    struct errbuf *err);

/* Advances past the current step without touching any host row: for a driver that
 * applied sampler_step_coeffs itself (and keeps its own x₀ history). */
enum status sampler_advance(struct sampler_state *st, struct errbuf *err);

#endif
