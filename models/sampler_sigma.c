/* models/sampler_sigma.c — the σ-parameterised samplers: Euler
 * (EulerDiscreteScheduler), Euler ancestral (EulerAncestralDiscreteScheduler) and
 * DPM++ 2M (DPMSolverMultistepScheduler, dpmsolver++, order 2); see sampler_plan.h. */
#include <math.h>

#include "models/sampler_plan.h"

static enum status unsupported(struct errbuf *err, enum sampler_kind kind, enum schedule_field f)
{
    return status_fail(err, STATUS_UNSUPPORTED, "sampler %s: scheduler config: %s: not supported",
                       sampler_kind_name(kind), schedule_field_name(f));
}

/* init_noise_sigma of the Euler classes: max σ, or sqrt(max σ² + 1) for "leading". */
static float euler_init_sigma(const float *sigmas, int n_sig, enum schedule_spacing spacing)
{
    float mx = sigmas[0];
    for (int i = 1; i < n_sig; i++)
        mx = sigmas[i] > mx ? sigmas[i] : mx;
    if (spacing == SCHEDULE_SPACING_LEADING)
        return sqrtf(mx * mx + 1.0f);
    return mx;
}

static float final_sigma(const struct schedule *s, enum schedule_final_sigmas type)
{
    if (type == SCHEDULE_FINAL_ZERO)
        return 0.0f;
    const float ac0 = s->alphas_cumprod[0];
    return sqrtf((1.0f - ac0) / ac0);
}

/* scale_model_input: sample / (σ² + 1) ** 0.5 */
static float input_scale(float sigma)
{
    return (float)(1.0 / (double)sqrtf(sigma * sigma + 1.0f));
}

/* x₀ from the model output at σ (Euler classes; σ̂ = σ as s_churn = 0). */
static void euler_x0(enum schedule_prediction pred, float sigma, struct sampler_coeffs_d *d)
{
    switch (pred) {
    case SCHEDULE_PRED_EPSILON: /* sample − σ̂·model_output */
        d->x0_latent = 1.0;
        d->x0_model = -(double)sigma;
        return;
    case SCHEDULE_PRED_V: { /* model_output·(−σ/sqrt(σ²+1)) + sample/(σ²+1) */
        const float k = -sigma / sqrtf(sigma * sigma + 1.0f);
        d->x0_latent = 1.0 / (double)(sigma * sigma + 1.0f);
        d->x0_model = k;
        return;
    }
    case SCHEDULE_PRED_SAMPLE:
        d->x0_latent = 0.0;
        d->x0_model = 1.0;
        return;
    }
}

/* Euler's σ ramp: interpolation, then Karras if asked (the timesteps then follow σ
 * through _sigma_to_t).  ts/sig hold n + 1 doubles.  Returns how many σ it set: n, or
 * n + 1 for log_linear interpolation, whose ramp already ends at σ_min — diffusers
 * appends the final σ after it, so the steps never reach the final σ. */
static int euler_sigmas(const struct sampler_plan_in *in, double *ts, double *sig)
{
    const struct schedule *s = in->sched;
    const struct schedule_config *c = &in->cfg;
    const int n = in->n, T = s->n_train;
    int n_in = n;
    schedule_spacing(c->timestep_spacing, T, n, c->steps_offset, false, ts);
    if (c->interpolation_type == SCHEDULE_INTERP_LOG_LINEAR) {
        /* torch.linspace(log σ_max, log σ_min, n + 1).exp() in float32 */
        float *lin = (float *)(in->scratch + 2 * (n + 2)); /* n + 1 floats */
        schedule_linspace_f32(logf(s->sigmas[T - 1]), logf(s->sigmas[0]), n + 1, lin);
        for (int i = 0; i <= n; i++)
            sig[i] = expf(lin[i]);
        n_in = n + 1;
    } else {
        for (int i = 0; i < n; i++)
            sig[i] = schedule_interp_sigma(s, ts[i]);
    }
    if (!c->use_karras_sigmas)
        return n_in;
    const double smin = schedule_config_has(c, SCHEDULE_F_SIGMA_MIN) ? c->sigma_min : sig[n_in - 1];
    const double smax = schedule_config_has(c, SCHEDULE_F_SIGMA_MAX) ? c->sigma_max : sig[0];
    schedule_karras_sigmas(smin, smax, n, sig);
    for (int i = 0; i < n; i++)
        ts[i] = (float)schedule_sigma_to_t(s, sig[i]);
    return n;
}

enum status sampler_plan_euler(const struct sampler_plan_in *in, struct sampler_state *st,
                               struct errbuf *err)
{
    const struct schedule_config *c = &in->cfg;
    const int n = in->n;
    if (c->use_exponential_sigmas)
        return unsupported(err, in->kind, SCHEDULE_F_USE_EXPONENTIAL_SIGMAS);
    if (c->use_beta_sigmas)
        return unsupported(err, in->kind, SCHEDULE_F_USE_BETA_SIGMAS);
    double *ts = in->scratch, *sig = in->scratch + (n + 2);
    const int n_sig = euler_sigmas(in, ts, sig);
    for (int i = 0; i < n_sig; i++)
        st->sigmas[i] = (float)sig[i];
    if (n_sig == n)
        st->sigmas[n] = final_sigma(in->sched, c->final_sigmas_type);
    const bool continuous = c->timestep_type == SCHEDULE_TIMESTEP_CONTINUOUS &&
                            c->prediction_type == SCHEDULE_PRED_V;
    for (int i = 0; i < n; i++) {
        st->timesteps[i] = continuous ? 0.25f * logf(st->sigmas[i]) : (float)ts[i];
        st->c_in[i] = input_scale(st->sigmas[i]);
    }
    st->init_noise_sigma = euler_init_sigma(st->sigmas, n + 1, c->timestep_spacing);
    for (int i = 0; i < n; i++) {
        const float sigma = st->sigmas[i];
        const float dt = st->sigmas[i + 1] - sigma;
        struct sampler_coeffs_d d = {0};
        euler_x0(c->prediction_type, sigma, &d);
        /* sample + (sample − x₀)/σ̂ · dt */
        d.c_latent = 1.0 + (double)dt / sigma;
        d.c_x0 = -(double)dt / sigma;
        sampler_coeffs_store(&d, false, 0.0, &st->coeffs[i]);
    }
    return STATUS_OK;
}

enum status sampler_plan_euler_a(const struct sampler_plan_in *in, struct sampler_state *st,
                                 struct errbuf *err)
{
    const struct schedule_config *c = &in->cfg;
    const int n = in->n;
    if (c->prediction_type == SCHEDULE_PRED_SAMPLE)
        return unsupported(err, in->kind, SCHEDULE_F_PREDICTION_TYPE);
    double *ts = in->scratch;
    schedule_spacing(c->timestep_spacing, in->sched->n_train, n, c->steps_offset, false, ts);
    for (int i = 0; i < n; i++) {
        st->sigmas[i] = (float)schedule_interp_sigma(in->sched, ts[i]);
        st->timesteps[i] = (float)ts[i];
        st->c_in[i] = input_scale(st->sigmas[i]);
    }
    st->sigmas[n] = 0.0f;
    st->init_noise_sigma = euler_init_sigma(st->sigmas, n + 1, c->timestep_spacing);
    for (int i = 0; i < n; i++) {
        const float s_from = st->sigmas[i], s_to = st->sigmas[i + 1];
        const float up = sqrtf(s_to * s_to * (s_from * s_from - s_to * s_to) / (s_from * s_from));
        const float down = sqrtf(s_to * s_to - up * up);
        const float dt = down - s_from;
        struct sampler_coeffs_d d = {0};
        euler_x0(c->prediction_type, s_from, &d);
        d.c_latent = 1.0 + (double)dt / s_from;
        d.c_x0 = -(double)dt / s_from;
        d.c_noise = up;
        sampler_coeffs_store(&d, false, 0.0, &st->coeffs[i]);
    }
    return STATUS_OK;
}

/* --- DPM++ 2M ------------------------------------------------------------------ */

struct vp {
    float alpha, sigma, lambda; /* α_t = 1/sqrt(σ²+1), σ_t = σ·α_t, λ = log α − log σ */
};

static struct vp vp_of(float sigma)
{
    struct vp v;
    v.alpha = 1.0f / sqrtf(sigma * sigma + 1.0f);
    v.sigma = sigma * v.alpha;
    v.lambda = logf(v.alpha) - logf(v.sigma);
    return v;
}

/* torch.searchsorted(flip(λ_t), lambda_min_clipped): how many of the flipped λ are
 * below the cut. */
static int dpm_clipped_idx(const struct schedule *s, double cut)
{
    int count = 0;
    for (int t = 0; t < s->n_train; t++) {
        const float ac = schedule_alpha_cumprod_sigma(s, t);
        const float lambda = logf(sqrtf(ac)) - logf(sqrtf(1.0f - ac));
        if ((double)lambda < (double)(float)cut)
            count++;
    }
    return count;
}

static void dpm_sigmas(const struct sampler_plan_in *in, bool karras, double *ts, double *sig)
{
    const struct schedule *s = in->sched;
    const struct schedule_config *c = &in->cfg;
    const int n = in->n, T = s->n_train;
    if (karras) {
        /* sigma_min/sigma_max are no DPMSolverMultistepScheduler parameters, but
         * from_config keeps unknown keys on the config, where _convert_to_karras
         * finds them */
        const double smin = schedule_config_has(c, SCHEDULE_F_SIGMA_MIN) ? c->sigma_min : s->sigmas[0];
        const double smax = schedule_config_has(c, SCHEDULE_F_SIGMA_MAX) ? c->sigma_max : s->sigmas[T - 1];
        schedule_karras_sigmas(smin, smax, n, sig);
        for (int i = 0; i < n; i++) {
            double t = schedule_sigma_to_t(s, sig[i]);
            if (c->beta_schedule != SCHEDULE_BETA_COSINE)
                t = nearbyint(t);
            ts[i] = trunc(t); /* .to(torch.int64) */
        }
        return;
    }
    const int last = T - dpm_clipped_idx(s, c->lambda_min_clipped);
    schedule_spacing_dpm(c->timestep_spacing, T, last, n, c->steps_offset, ts);
    for (int i = 0; i < n; i++)
        sig[i] = schedule_interp_sigma(s, ts[i]);
}

static void dpm_x0(enum schedule_prediction pred, struct vp s, struct sampler_coeffs_d *d)
{
    switch (pred) {
    case SCHEDULE_PRED_EPSILON: /* (sample − σ_t·model_output)/α_t */
        d->x0_latent = 1.0 / s.alpha;
        d->x0_model = -(double)s.sigma / s.alpha;
        return;
    case SCHEDULE_PRED_V: /* α_t·sample − σ_t·model_output */
        d->x0_latent = s.alpha;
        d->x0_model = -(double)s.sigma;
        return;
    case SCHEDULE_PRED_SAMPLE:
        d->x0_latent = 0.0;
        d->x0_model = 1.0;
        return;
    }
}

/* Step i of n: first order at the first step that runs (diffusers' lower_order_nums
 * is 0 there, at set_begin_index's step too) and (lower_order_final …) at the end. */
static bool dpm_first_order(const struct schedule_config *c, int i, int begin, int n)
{
    const bool lower_final = i == n - 1 &&
                             (c->euler_at_final || (c->lower_order_final && n < 15) ||
                              c->final_sigmas_type == SCHEDULE_FINAL_ZERO);
    return i == begin || lower_final;
}

static void dpm_step(const struct schedule_config *c, const float *sigmas, int i, int begin,
                     int n, struct sampler_coeffs_d *d)
{
    const struct vp s0 = vp_of(sigmas[i]), t = vp_of(sigmas[i + 1]);
    const float h = t.lambda - s0.lambda;
    const float a = t.alpha * (expf(-h) - 1.0f); /* α_t·(e^(−h) − 1) */
    dpm_x0(c->prediction_type, s0, d);
    d->c_latent = t.sigma / s0.sigma;
    d->stores_x0 = i + 1 < n;
    if (dpm_first_order(c, i, begin, n)) {
        d->c_x0 = -(double)a; /* σ_t/σ_s·x − α_t(e^(−h) − 1)·D0 */
        return;
    }
    const struct vp s1 = vp_of(sigmas[i - 1]);
    const float h0 = s0.lambda - s1.lambda;
    const float r0 = h0 / h;
    const float inv_r0 = 1.0f / r0; /* D1 = (1/r0)·(m0 − m1) */
    if (c->solver_type == SCHEDULE_SOLVER_HEUN) {
        const float k = t.alpha * ((expf(-h) - 1.0f) / h + 1.0f);
        d->c_x0 = -(double)a + (double)k * inv_r0;
        d->c_prev = -(double)k * inv_r0;
    } else {
        const float half_a = 0.5f * a;
        d->c_x0 = -(double)a - (double)half_a * inv_r0;
        d->c_prev = (double)half_a * inv_r0;
    }
}

enum status sampler_plan_dpmpp(const struct sampler_plan_in *in, struct sampler_state *st,
                               struct errbuf *err)
{
    const struct schedule_config *c = &in->cfg;
    const int n = in->n;
    static const enum schedule_field rejected[] = {
        SCHEDULE_F_THRESHOLDING, SCHEDULE_F_USE_EXPONENTIAL_SIGMAS, SCHEDULE_F_USE_BETA_SIGMAS,
        SCHEDULE_F_USE_LU_LAMBDAS, SCHEDULE_F_USE_FLOW_SIGMAS};
    const bool set[] = {c->thresholding, c->use_exponential_sigmas, c->use_beta_sigmas,
                        c->use_lu_lambdas, c->use_flow_sigmas};
    for (size_t k = 0; k < sizeof set / sizeof set[0]; k++)
        if (set[k])
            return unsupported(err, in->kind, rejected[k]);
    const bool karras = in->kind == SAMPLER_DPMPP_2M_KARRAS || c->use_karras_sigmas;
    double *ts = in->scratch, *sig = in->scratch + (n + 2);
    dpm_sigmas(in, karras, ts, sig);
    for (int i = 0; i < n; i++) {
        st->sigmas[i] = (float)sig[i];
        st->timesteps[i] = (float)ts[i];
        st->c_in[i] = 1.0f;
    }
    st->sigmas[n] = final_sigma(in->sched, c->final_sigmas_type);
    st->init_noise_sigma = 1.0f;
    for (int i = 0; i < n; i++) {
        struct sampler_coeffs_d d = {0};
        dpm_step(c, st->sigmas, i, in->begin, n, &d);
        sampler_coeffs_store(&d, false, 0.0, &st->coeffs[i]);
    }
    return STATUS_OK;
}
