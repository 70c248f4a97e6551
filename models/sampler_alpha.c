/* models/sampler_alpha.c — the ᾱ-parameterised samplers: DDIM (DDIMScheduler),
 * DDPM (DDPMScheduler) and LCM (LCMScheduler); see sampler_plan.h. */
#include <math.h>

#include "models/sampler_plan.h"

static enum status unsupported(struct errbuf *err, enum sampler_kind kind, enum schedule_field f)
{
    return status_fail(err, STATUS_UNSUPPORTED, "sampler %s: scheduler config: %s: not supported",
                       sampler_kind_name(kind), schedule_field_name(f));
}

/* The timesteps must index the ᾱ table (a large steps_offset can push them out). */
static enum status check_timesteps(const struct sampler_plan_in *in, const double *ts,
                                   struct errbuf *err)
{
    for (int i = 0; i < in->n; i++)
        if (!(ts[i] >= 0.0 && ts[i] < (double)in->sched->n_train))
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "sampler %s: timestep %g of %d steps is outside [0, %d) "
                               "(steps_offset %d)",
                               sampler_kind_name(in->kind), ts[i], in->n,
                               in->sched->n_train, in->cfg.steps_offset);
    return STATUS_OK;
}

/* x₀ from the model output at ᾱ_t (β_t = 1 − ᾱ_t), as DDIM/DDPM/LCM write it. */
static void alpha_x0(enum schedule_prediction pred, float a, float b, struct sampler_coeffs_d *d)
{
    const float sa = sqrtf(a), sb = sqrtf(b);
    switch (pred) {
    case SCHEDULE_PRED_EPSILON: /* (sample − √β·model_output)/√ᾱ */
        d->x0_latent = 1.0 / sa;
        d->x0_model = -(double)sb / sa;
        return;
    case SCHEDULE_PRED_V: /* √ᾱ·sample − √β·model_output */
        d->x0_latent = sa;
        d->x0_model = -(double)sb;
        return;
    case SCHEDULE_PRED_SAMPLE:
        d->x0_latent = 0.0;
        d->x0_model = 1.0;
        return;
    }
}

static void plan_common(const struct sampler_plan_in *in, const double *ts, struct sampler_state *st)
{
    for (int i = 0; i < in->n; i++) {
        st->timesteps[i] = (float)ts[i];
        st->c_in[i] = 1.0f;
    }
    st->init_noise_sigma = 1.0f;
}

/* --- DDIM ------------------------------------------------------------------------- */

/* DDIM's predicted ε, as coefficients on (sample, model_output), scaled by `dir`. */
static void ddim_eps(enum schedule_prediction pred, float a, float b, float dir,
                     struct sampler_coeffs_d *d)
{
    const float sa = sqrtf(a), sb = sqrtf(b);
    switch (pred) {
    case SCHEDULE_PRED_EPSILON:
        d->c_model = dir;
        return;
    case SCHEDULE_PRED_V: /* √ᾱ·model_output + √β·sample */
        d->c_model = (double)dir * sa;
        d->c_latent = (double)dir * sb;
        return;
    case SCHEDULE_PRED_SAMPLE: /* (sample − √ᾱ·model_output)/√β, before any clip */
        d->c_latent = (double)dir / sb;
        d->c_model = -(double)dir * sa / sb;
        return;
    }
}

enum status sampler_plan_ddim(const struct sampler_plan_in *in, struct sampler_state *st,
                              struct errbuf *err)
{
    const struct schedule_config *c = &in->cfg;
    const struct schedule *s = in->sched;
    const int n = in->n, T = s->n_train;
    if (c->thresholding)
        return unsupported(err, in->kind, SCHEDULE_F_THRESHOLDING);
    double *ts = in->scratch;
    schedule_spacing(c->timestep_spacing, T, n, c->steps_offset, true, ts);
    enum status stat = check_timesteps(in, ts, err);
    if (stat != STATUS_OK)
        return stat;
    plan_common(in, ts, st);
    const float final_ac = c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    const float eta = (float)in->eta;
    for (int i = 0; i < n; i++) {
        const int t = (int)ts[i], prev = t - T / n;
        const float a = s->alphas_cumprod[t];
        const float ap = prev >= 0 ? s->alphas_cumprod[prev] : final_ac;
        const float b = 1.0f - a, bp = 1.0f - ap;
        const float variance = bp / b * (1.0f - a / ap);
        const float std = eta * sqrtf(variance);
        const float dir = sqrtf(1.0f - ap - std * std);
        struct sampler_coeffs_d d = {0};
        alpha_x0(c->prediction_type, a, b, &d);
        d.c_x0 = sqrtf(ap);
        ddim_eps(c->prediction_type, a, b, dir, &d);
        d.c_noise = in->eta > 0.0 ? std : 0.0f;
        sampler_coeffs_store(&d, c->clip_sample, c->clip_sample_range, &st->coeffs[i]);
    }
    return STATUS_OK;
}

/* --- DDPM ------------------------------------------------------------------------- */

static float ddpm_std(enum schedule_variance type, float a, float ap)
{
    const float cur_beta = 1.0f - a / ap;
    float variance = (1.0f - ap) / (1.0f - a) * cur_beta;
    variance = variance < 1e-20f ? 1e-20f : variance;
    switch (type) {
    case SCHEDULE_VARIANCE_FIXED_SMALL:
        return sqrtf(variance);
    case SCHEDULE_VARIANCE_FIXED_SMALL_LOG:
        return expf(0.5f * logf(variance));
    case SCHEDULE_VARIANCE_FIXED_LARGE:
        return sqrtf(cur_beta);
    }
    return 0.0f;
}

enum status sampler_plan_ddpm(const struct sampler_plan_in *in, struct sampler_state *st,
                              struct errbuf *err)
{
    const struct schedule_config *c = &in->cfg;
    const struct schedule *s = in->sched;
    const int n = in->n;
    if (c->thresholding)
        return unsupported(err, in->kind, SCHEDULE_F_THRESHOLDING);
    double *ts = in->scratch;
    schedule_spacing(c->timestep_spacing, s->n_train, n, c->steps_offset, true, ts);
    enum status stat = check_timesteps(in, ts, err);
    if (stat != STATUS_OK)
        return stat;
    plan_common(in, ts, st);
    for (int i = 0; i < n; i++) {
        const int t = (int)ts[i], prev = i + 1 < n ? (int)ts[i + 1] : -1;
        const float a = s->alphas_cumprod[t];
        const float ap = prev >= 0 ? s->alphas_cumprod[prev] : 1.0f;
        const float b = 1.0f - a, bp = 1.0f - ap;
        const float cur_alpha = a / ap, cur_beta = 1.0f - cur_alpha;
        struct sampler_coeffs_d d = {0};
        alpha_x0(c->prediction_type, a, b, &d);
        d.c_x0 = sqrtf(ap) * cur_beta / b;
        d.c_latent = sqrtf(cur_alpha) * bp / b;
        d.c_noise = t > 0 ? ddpm_std(c->variance_type, a, ap) : 0.0f;
        sampler_coeffs_store(&d, c->clip_sample, c->clip_sample_range, &st->coeffs[i]);
    }
    return STATUS_OK;
}

/* --- LCM ---------------------------------------------------------------------------- */

/* LCMScheduler.set_timesteps (strength 1): n of the original_inference_steps grid. */
static void lcm_timesteps(const struct sampler_plan_in *in, double *ts)
{
    const int orig = in->cfg.original_inference_steps, n = in->n;
    const int k = in->sched->n_train / orig;
    const double step = (double)orig / (double)n; /* linspace(0, orig, n, endpoint=False) */
    for (int i = 0; i < n; i++) {
        const int idx = (int)floor((double)i * step);
        ts[i] = (double)((orig - idx) * k - 1); /* reversed [k−1, 2k−1, …, orig·k − 1] */
    }
}

enum status sampler_plan_lcm(const struct sampler_plan_in *in, struct sampler_state *st,
                             struct errbuf *err)
{
    const struct schedule_config *c = &in->cfg;
    const struct schedule *s = in->sched;
    const int n = in->n;
    if (c->thresholding)
        return unsupported(err, in->kind, SCHEDULE_F_THRESHOLDING);
    if (n > c->original_inference_steps)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "sampler lcm: n_steps %d exceeds original_inference_steps %d", n,
                           c->original_inference_steps);
    double *ts = in->scratch;
    lcm_timesteps(in, ts);
    plan_common(in, ts, st);
    const float final_ac = c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    for (int i = 0; i < n; i++) {
        const int t = (int)ts[i];
        const bool last = i == n - 1;
        const int prev = last ? t : (int)ts[i + 1];
        const float a = s->alphas_cumprod[t];
        const float ap = prev >= 0 ? s->alphas_cumprod[prev] : final_ac;
        const float b = 1.0f - a, bp = 1.0f - ap;
        const float scaled = (float)t * (float)c->timestep_scaling;
        const float c_skip = 0.25f / (scaled * scaled + 0.25f);
        const float c_out = scaled / sqrtf(scaled * scaled + 0.25f);
        struct sampler_coeffs_d d = {0};
        alpha_x0(c->prediction_type, a, b, &d);
        /* denoised = c_out·x₀ + c_skip·sample; then √ᾱ_prev·denoised + √β_prev·noise */
        const double keep = last ? 1.0 : (double)sqrtf(ap);
        d.c_x0 = keep * c_out;
        d.c_latent = keep * c_skip;
        d.c_noise = last ? 0.0 : (double)sqrtf(bp);
        sampler_coeffs_store(&d, c->clip_sample, c->clip_sample_range, &st->coeffs[i]);
    }
    return STATUS_OK;
}
