/* models/schedule.h — noise schedules: a diffusers scheduler config, the training
 * β / ᾱ (alphas_cumprod) / σ tables built from it, and the timestep-spacing and
 * σ-interpolation rules the samplers (models/sampler.h) use to place their steps.
 *
 * Reference: diffusers 0.42 (EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
 * DDIMScheduler, DPMSolverMultistepScheduler, DDPMScheduler, LCMScheduler).  The
 * tables are computed as diffusers computes them on the CPU, operation by operation
 * in the same precision, so they agree to the last bit or within an ulp:
 *   linear         β = torch.linspace(beta_start, beta_end, T) in float32 (torch's CPU
 *                  kernel: start + step·i below T/2, end − step·(T−1−i) above, each a
 *                  fused multiply-add);
 *   scaled_linear  β = linspace(√beta_start, √beta_end, T)² in float32;
 *   squaredcos_cap_v2  β_i = min(1 − ᾱ(i+1)/ᾱ(i), 0.999), ᾱ(t) = cos²((t/T + 0.008)/1.008
 *                  · π/2), in double, rounded to float32;
 *   rescale_betas_zero_snr  the β are rescaled to zero terminal SNR (float32 ops);
 *   ᾱ_t = cumprod(1 − β) with a double accumulator rounded per element (torch);
 *   σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) in float32, from ᾱ whose last entry is 2⁻²⁴ when
 *   rescale_betas_zero_snr is set (what the σ-based classes do), and log σ_t.
 *
 * A config records which keys its JSON had (schedule_config_has): a key that is
 * absent takes the default of the sampler class that uses it (DDIMScheduler's
 * timestep_spacing default is "leading", EulerDiscreteScheduler's "linspace", …),
 * exactly as diffusers' from_config does.  Unknown keys (_class_name,
 * skip_prk_steps, …) are ignored, as diffusers ignores them.
 *
 * Ownership: a schedule_config is a plain value (no pointers; copy it freely).  A
 * struct schedule owns its tables (schedule_free).  Thread-safety: all functions are
 * reentrant; a built schedule is immutable and may be read from any thread.
 */
#ifndef DIFFUSIOND_MODELS_SCHEDULE_H
#define DIFFUSIOND_MODELS_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

struct json_t; /* jansson */

#define SCHEDULE_MAX_TRAIN_TIMESTEPS 100000

enum schedule_beta { SCHEDULE_BETA_LINEAR, SCHEDULE_BETA_SCALED_LINEAR, SCHEDULE_BETA_COSINE };
enum schedule_prediction {
    SCHEDULE_PRED_EPSILON,
    SCHEDULE_PRED_V,      /* "v_prediction" */
    SCHEDULE_PRED_SAMPLE, /* "sample": the model predicts x₀ */
};
enum schedule_spacing { SCHEDULE_SPACING_LEADING, SCHEDULE_SPACING_TRAILING, SCHEDULE_SPACING_LINSPACE };
enum schedule_final_sigmas { SCHEDULE_FINAL_ZERO, SCHEDULE_FINAL_SIGMA_MIN };
enum schedule_timestep_type { SCHEDULE_TIMESTEP_DISCRETE, SCHEDULE_TIMESTEP_CONTINUOUS };
enum schedule_interpolation { SCHEDULE_INTERP_LINEAR, SCHEDULE_INTERP_LOG_LINEAR };
enum schedule_solver_type { SCHEDULE_SOLVER_MIDPOINT, SCHEDULE_SOLVER_HEUN };
enum schedule_variance {
    SCHEDULE_VARIANCE_FIXED_SMALL,
    SCHEDULE_VARIANCE_FIXED_SMALL_LOG,
    SCHEDULE_VARIANCE_FIXED_LARGE,
};

/* One bit per key; set in schedule_config.present when the JSON had it (non-null). */
enum schedule_field {
    SCHEDULE_F_NUM_TRAIN_TIMESTEPS,
    SCHEDULE_F_BETA_START,
    SCHEDULE_F_BETA_END,
    SCHEDULE_F_BETA_SCHEDULE,
    SCHEDULE_F_PREDICTION_TYPE,
    SCHEDULE_F_TIMESTEP_SPACING,
    SCHEDULE_F_STEPS_OFFSET,
    SCHEDULE_F_SET_ALPHA_TO_ONE,
    SCHEDULE_F_CLIP_SAMPLE,
    SCHEDULE_F_CLIP_SAMPLE_RANGE,
    SCHEDULE_F_THRESHOLDING,
    SCHEDULE_F_RESCALE_BETAS_ZERO_SNR,
    SCHEDULE_F_USE_KARRAS_SIGMAS,
    SCHEDULE_F_USE_EXPONENTIAL_SIGMAS,
    SCHEDULE_F_USE_BETA_SIGMAS,
    SCHEDULE_F_USE_LU_LAMBDAS,
    SCHEDULE_F_USE_FLOW_SIGMAS,
    SCHEDULE_F_FINAL_SIGMAS_TYPE,
    SCHEDULE_F_TIMESTEP_TYPE,
    SCHEDULE_F_INTERPOLATION_TYPE,
    SCHEDULE_F_SIGMA_MIN,
    SCHEDULE_F_SIGMA_MAX,
    SCHEDULE_F_SOLVER_TYPE,
    SCHEDULE_F_LOWER_ORDER_FINAL,
    SCHEDULE_F_EULER_AT_FINAL,
    SCHEDULE_F_LAMBDA_MIN_CLIPPED,
    SCHEDULE_F_VARIANCE_TYPE,
    SCHEDULE_F_ORIGINAL_INFERENCE_STEPS,
    SCHEDULE_F_TIMESTEP_SCALING,
    SCHEDULE_F_COUNT_
};

/* A diffusers scheduler config.  Values are diffusers' defaults until set; for the
 * keys whose default differs between classes, the sampler resolves an absent key to
 * its class's default (see models/sampler.h). */
struct schedule_config {
    uint64_t present;                  /* bit (1 << enum schedule_field) per key seen */
    int num_train_timesteps;           /* 1000 */
    double beta_start, beta_end;       /* 0.0001, 0.02 */
    enum schedule_beta beta_schedule;  /* linear */
    enum schedule_prediction prediction_type; /* epsilon */
    enum schedule_spacing timestep_spacing;   /* class default */
    int steps_offset;                  /* 0 */
    bool set_alpha_to_one;             /* class default (true for DDIM, LCM) */
    bool clip_sample;                  /* class default (true for DDIM, DDPM) */
    double clip_sample_range;          /* 1.0 */
    bool thresholding;                 /* false (true is not supported) */
    bool rescale_betas_zero_snr;       /* false */
    bool use_karras_sigmas;            /* false */
    bool use_exponential_sigmas, use_beta_sigmas, use_lu_lambdas, use_flow_sigmas; /* false (true: not supported) */
    enum schedule_final_sigmas final_sigmas_type;  /* zero */
    enum schedule_timestep_type timestep_type;     /* discrete (Euler only) */
    enum schedule_interpolation interpolation_type; /* linear (Euler only) */
    double sigma_min, sigma_max;       /* Karras range override (Euler only); absent: the schedule's */
    enum schedule_solver_type solver_type;        /* midpoint (DPM++) */
    bool lower_order_final;            /* true (DPM++) */
    bool euler_at_final;               /* false (DPM++) */
    double lambda_min_clipped;         /* −inf (DPM++) */
    enum schedule_variance variance_type; /* fixed_small (DDPM) */
    int original_inference_steps;      /* 50 (LCM) */
    double timestep_scaling;           /* 10.0 (LCM) */
};

/* diffusers' defaults, no key present. */
void schedule_config_defaults(struct schedule_config *cfg);

/* True when the config's JSON had `field` (with a non-null value). */
bool schedule_config_has(const struct schedule_config *cfg, enum schedule_field field);

/* Name of a field as it appears in scheduler_config.json. */
const char *schedule_field_name(enum schedule_field field);

/* Checks value ranges (num_train_timesteps in [2, SCHEDULE_MAX_TRAIN_TIMESTEPS],
 * finite β bounds in [0, 1), steps_offset ≥ 0, …); the message names the field. */
enum status schedule_config_validate(const struct schedule_config *cfg, struct errbuf *err);

/* Fills cfg from a parsed scheduler_config.json object: defaults, then every known
 * key.  A wrong JSON type or an unknown enum value ("beta_schedule": "foo") is
 * STATUS_INVALID_ARGUMENT naming the key; a non-null trained_betas is
 * STATUS_UNSUPPORTED.  Validates the result. */
enum status schedule_config_from_json(struct schedule_config *cfg, const struct json_t *obj,
                                      struct errbuf *err);
/* The same from JSON text (STATUS_FORMAT when it is not a JSON object) or a file
 * (STATUS_IO when it cannot be read). */
enum status schedule_config_from_string(struct schedule_config *cfg, const char *json,
                                        struct errbuf *err);
enum status schedule_config_load(struct schedule_config *cfg, const char *path,
                                 struct errbuf *err);

/* The training tables for one config. */
struct schedule {
    struct schedule_config config; /* the config it was built from */
    int n_train;            /* T = num_train_timesteps */
    float *betas;           /* [T] */
    float *alphas_cumprod;  /* [T] ᾱ, as DDIM/DDPM/LCM see it */
    float *sigmas;          /* [T] σ_t ascending in t, as Euler/DPM see it (zero-SNR tweak) */
    float *log_sigmas;      /* [T] logf(σ_t) */
    bool zero_terminal_snr; /* config.rescale_betas_zero_snr */
};

/* Builds the tables (validates cfg first).  A config whose ᾱ underflows to 0 (so many
 * steps or such large β that σ is infinite) is STATUS_INVALID_ARGUMENT naming
 * num_train_timesteps.  On failure s is left empty. */
enum status schedule_build(struct schedule *s, const struct schedule_config *cfg,
                           struct errbuf *err);
/* Frees the tables; s may be empty or NULL. */
void schedule_free(struct schedule *s);

/* ᾱ_t as the σ-based classes see it (the last entry 2⁻²⁴ under rescale_betas_zero_snr):
 * 1/(σ_t² + 1) is not bit-identical, so the samplers read this. */
float schedule_alpha_cumprod_sigma(const struct schedule *s, int t);

/* --- helpers the samplers share (exposed for tests) ---------------------------- */

/* torch.linspace(start, end, n, dtype=float32) on the CPU (n ≥ 1). */
void schedule_linspace_f32(float start, float end, int n, float *out);

/* numpy's arange(start, stop, step) length and values (double): returns the length
 * numpy gives (0 when empty) and writes at most max_out values. */
int schedule_arange(double start, double stop, double step, double *out, int max_out);

/* np.interp(t, arange(T), σ) (σ from the schedule, evaluated in double). */
double schedule_interp_sigma(const struct schedule *s, double t);

/* diffusers' _sigma_to_t: the fractional timestep whose log σ interpolates log σ
 * linearly between the two bracketing training timesteps (clipped to [0, T−1]). */
double schedule_sigma_to_t(const struct schedule *s, double sigma);

/* np.linspace(start, stop, n) in double (n ≥ 1; endpoint included). */
void schedule_linspace_f64(double start, double stop, int n, double *out);

/* set_timesteps' spacing rules: n timesteps, descending, for T training steps.
 *   leading   round(i · (T // n)) + steps_offset
 *   trailing  round(arange(T, 0, −T/n)) − 1 (the first n values, see sampler.h)
 *   linspace  linspace(0, T − 1, n), rounded to integers when round_linspace
 *             (DDIM/DDPM) and left fractional otherwise (Euler: float32 values) */
void schedule_spacing(enum schedule_spacing spacing, int T, int n, int steps_offset,
                      bool round_linspace, double *out);

/* DPMSolverMultistepScheduler's rules (an n + 1 grid less its last point for leading
 * and linspace; `last` = T − the lambda_min_clipped cut). */
void schedule_spacing_dpm(enum schedule_spacing spacing, int T, int last, int n,
                          int steps_offset, double *out);

/* Karras et al. (2022) σ ramp, ρ = 7: n values from sigma_max down to sigma_min. */
void schedule_karras_sigmas(double sigma_min, double sigma_max, int n, double *out);

#endif
