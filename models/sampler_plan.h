/* models/sampler_plan.h — internal to the sampler module: the per-family builders
 * that turn (schedule, resolved config, n_steps) into a state's timesteps, σ, input
 * scales and per-step coefficients.  sampler.c allocates the arrays and calls them;
 * nothing else includes this header.
 *
 * Every builder follows its diffusers class operation by operation: the scalars that
 * torch evaluates as float32 0-d tensors are evaluated here in float (GCC with
 * -std=c11 does not fuse multiply-adds; a compiler that does, clang's default, moves
 * a scalar by an ulp, far inside the tests' tolerance), and the coefficients are
 * then formed from those floats in double and rounded once.
 *
 * Ownership: the builders write into the caller's arrays and allocate nothing.
 * Thread-safety: pure functions of their inputs.
 */
#ifndef DIFFUSIOND_MODELS_SAMPLER_PLAN_H
#define DIFFUSIOND_MODELS_SAMPLER_PLAN_H

#include "models/sampler.h"

struct sampler_plan_in {
    enum sampler_kind kind;
    const struct schedule *sched;
    struct schedule_config cfg; /* with the class defaults filled in */
    int n;                      /* n_steps */
    int begin;                  /* the first step that runs (options.begin) */
    double eta;
    double *scratch;            /* 4·(n + 2) doubles */
};

/* One step's update in double before rounding (see struct sampler_coeffs). */
struct sampler_coeffs_d {
    double x0_latent, x0_model;
    double c_latent, c_x0, c_model, c_prev, c_noise;
    bool stores_x0;
};

/* Rounds d into *out, with the clamp (clip, range), and folds x₀ in. */
void sampler_coeffs_store(const struct sampler_coeffs_d *d, bool clip, double clip_range,
                          struct sampler_coeffs *out);

/* Euler, Euler ancestral, DPM++ 2M (Karras): fill st->timesteps, st->sigmas, st->c_in,
 * st->coeffs, st->init_noise_sigma. */
enum status sampler_plan_euler(const struct sampler_plan_in *in, struct sampler_state *st,
                               struct errbuf *err);
enum status sampler_plan_euler_a(const struct sampler_plan_in *in, struct sampler_state *st,
                                 struct errbuf *err);
enum status sampler_plan_dpmpp(const struct sampler_plan_in *in, struct sampler_state *st,
                               struct errbuf *err);

/* DDIM, DDPM, LCM: fill st->timesteps, st->c_in (1), st->coeffs, init_noise_sigma 1. */
enum status sampler_plan_ddim(const struct sampler_plan_in *in, struct sampler_state *st,
                              struct errbuf *err);
enum status sampler_plan_ddpm(const struct sampler_plan_in *in, struct sampler_state *st,
                              struct errbuf *err);
enum status sampler_plan_lcm(const struct sampler_plan_in *in, struct sampler_state *st,
                             struct errbuf *err);

#endif
