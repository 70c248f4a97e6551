/* models/sampler.c — sampler state: construction, the host step, noise; the
 * per-family plans are in sampler_sigma.c and sampler_alpha.c.  See sampler.h. */
#include "models/sampler.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/philox.h"
#include "models/sampler_plan.h"

static const char *const KIND_NAMES[SAMPLER_KIND_COUNT_] = {
    [SAMPLER_EULER] = "euler",
    [SAMPLER_EULER_A] = "euler_a",
    [SAMPLER_DDIM] = "ddim",
    [SAMPLER_DPMPP_2M] = "dpmpp_2m",
    [SAMPLER_DPMPP_2M_KARRAS] = "dpmpp_2m_karras",
    [SAMPLER_DDPM] = "ddpm",
    [SAMPLER_LCM] = "lcm",
};

const char *sampler_kind_name(enum sampler_kind kind)
{
    if ((unsigned)kind >= SAMPLER_KIND_COUNT_)
        return "?";
    return KIND_NAMES[kind];
}

static const struct {
    const char *alias;
    enum sampler_kind kind;
} ALIASES[] = {
    {"k_euler", SAMPLER_EULER},
    {"euler_ancestral", SAMPLER_EULER_A},
    {"k_euler_a", SAMPLER_EULER_A},
    {"k_euler_ancestral", SAMPLER_EULER_A},
    {"dpmpp2m", SAMPLER_DPMPP_2M},
    {"k_dpmpp_2m", SAMPLER_DPMPP_2M},
    {"dpm_solver_multistep", SAMPLER_DPMPP_2M},
    {"dpmpp2m_karras", SAMPLER_DPMPP_2M_KARRAS},
    {"k_dpmpp_2m_karras", SAMPLER_DPMPP_2M_KARRAS},
};

/* Lower case; "++" → "pp"; spaces and hyphens → '_'. */
static bool normalize_name(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; in[i]; i++) {
        if (o + 3 > cap)
            return false;
        const char ch = in[i];
        if (ch == '+' && in[i + 1] == '+') {
            out[o++] = 'p';
            out[o++] = 'p';
            i++;
        } else if (ch == ' ' || ch == '-') {
            out[o++] = '_';
        } else {
            out[o++] = (char)tolower((unsigned char)ch);
        }
    }
    out[o] = '\0';
    return true;
}

enum status sampler_kind_parse(const char *name, enum sampler_kind *out, struct errbuf *err)
{
    char norm[64];
    if (name && normalize_name(name, norm, sizeof norm)) {
        for (int k = 0; k < SAMPLER_KIND_COUNT_; k++) {
            if (strcmp(norm, KIND_NAMES[k]) == 0) {
                *out = (enum sampler_kind)k;
                return STATUS_OK;
            }
        }
        for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++) {
            if (strcmp(norm, ALIASES[i].alias) == 0) {
                *out = ALIASES[i].kind;
                return STATUS_OK;
            }
        }
    }
    return status_fail(err, STATUS_INVALID_ARGUMENT,
                       "sampler: unknown value \"%.64s\" (expected euler, euler_a, ddim, "
                       "dpmpp_2m, dpmpp_2m_karras, ddpm or lcm)",
                       name ? name : "(null)");
}

void sampler_options_defaults(struct sampler_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

/* --- coefficients ----------------------------------------------------------------- */

void sampler_coeffs_store(const struct sampler_coeffs_d *d, bool clip, double clip_range,
                          struct sampler_coeffs *out)
{
    memset(out, 0, sizeof *out);
    out->x0_latent = (float)d->x0_latent;
    out->x0_model = (float)d->x0_model;
    out->clip = clip;
    out->clip_range = clip ? (float)clip_range : 0.0f;
    out->c_latent = (float)d->c_latent;
    out->c_x0 = (float)d->c_x0;
    out->c_model = (float)d->c_model;
    out->c_prev = (float)d->c_prev;
    out->c_noise = (float)d->c_noise;
    out->fold_latent = (float)(d->c_latent + d->c_x0 * d->x0_latent);
    out->fold_model = (float)(d->c_model + d->c_x0 * d->x0_model);
    out->needs_noise = d->c_noise != 0.0;
    out->uses_prev_x0 = d->c_prev != 0.0;
    out->stores_x0 = d->stores_x0;
}

/* --- construction ------------------------------------------------------------------- */

static bool sigma_family(enum sampler_kind k)
{
    return k == SAMPLER_EULER || k == SAMPLER_EULER_A || k == SAMPLER_DPMPP_2M ||
           k == SAMPLER_DPMPP_2M_KARRAS;
}

/* An absent key takes the default of the diffusers class behind `kind`. */
static void resolve_class_defaults(enum sampler_kind kind, struct schedule_config *c)
{
    const bool alpha_family = !sigma_family(kind);
    if (!schedule_config_has(c, SCHEDULE_F_TIMESTEP_SPACING))
        c->timestep_spacing = alpha_family ? SCHEDULE_SPACING_LEADING : SCHEDULE_SPACING_LINSPACE;
    if (!schedule_config_has(c, SCHEDULE_F_CLIP_SAMPLE))
        c->clip_sample = kind == SAMPLER_DDIM || kind == SAMPLER_DDPM;
    if (!schedule_config_has(c, SCHEDULE_F_SET_ALPHA_TO_ONE))
        c->set_alpha_to_one = true;
}

static enum status check_request(enum sampler_kind kind, const struct schedule *sched,
                                 int n_steps, int begin, double eta, struct errbuf *err)
{
    if ((unsigned)kind >= SAMPLER_KIND_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sampler: kind %d out of range",
                           (int)kind);
    if (!sched || sched->n_train < 2 || !sched->alphas_cumprod)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sampler %s: no schedule",
                           sampler_kind_name(kind));
    if (n_steps < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sampler %s: n_steps: must be >= 1 (got %d)",
                           sampler_kind_name(kind), n_steps);
    if (n_steps > sched->n_train)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "sampler %s: n_steps: %d exceeds num_train_timesteps %d",
                           sampler_kind_name(kind), n_steps, sched->n_train);
    if (begin < 0 || begin >= n_steps)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "sampler %s: begin: step %d outside [0, %d)", sampler_kind_name(kind),
                           begin, n_steps);
    if (!(eta >= 0.0 && eta <= 1.0))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sampler %s: eta: must be in [0, 1] (got %g)",
                           sampler_kind_name(kind), eta);
    return STATUS_OK;
}

/* coeffs [n] · timesteps [n] · c_in [n] · add_noise_x [n] · add_noise_eps [n] ·
 * sigmas [n + 1] in one block. */
static enum status alloc_plan(struct sampler_state *st, int n, bool with_sigmas,
                              struct errbuf *err)
{
    const size_t floats = 4 * (size_t)n + (with_sigmas ? (size_t)n + 1 : 0);
    char *mem = malloc(sizeof(struct sampler_coeffs) * (size_t)n + sizeof(float) * floats);
    if (!mem)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "sampler: plan for %d steps", n);
    st->plan_mem = mem;
    st->coeffs = (struct sampler_coeffs *)mem;
    float *f = (float *)(mem + sizeof(struct sampler_coeffs) * (size_t)n);
    st->timesteps = f;
    st->c_in = f + n;
    st->add_noise_x = f + 2 * (size_t)n;
    st->add_noise_eps = f + 3 * (size_t)n;
    st->sigmas = with_sigmas ? f + 4 * (size_t)n : NULL;
    return STATUS_OK;
}

static enum status build_plan(const struct sampler_plan_in *in, struct sampler_state *st,
                              struct errbuf *err)
{
    switch (in->kind) {
    case SAMPLER_EULER:
        return sampler_plan_euler(in, st, err);
    case SAMPLER_EULER_A:
        return sampler_plan_euler_a(in, st, err);
    case SAMPLER_DPMPP_2M:
    case SAMPLER_DPMPP_2M_KARRAS:
        return sampler_plan_dpmpp(in, st, err);
    case SAMPLER_DDIM:
        return sampler_plan_ddim(in, st, err);
    case SAMPLER_DDPM:
        return sampler_plan_ddpm(in, st, err);
    case SAMPLER_LCM:
        return sampler_plan_lcm(in, st, err);
    case SAMPLER_KIND_COUNT_:
        break;
    }
    return status_fail(err, STATUS_INTERNAL, "sampler: no plan for kind %d", (int)in->kind);
}

static enum status ensure_rows(struct sampler_state *st, size_t n, struct errbuf *err);

/* The scheduler's add_noise at step k (see sampler_add_noise). */
static void add_noise_at(const struct schedule *sched, struct sampler_state *st, int k)
{
    switch (st->kind) {
    case SAMPLER_EULER:
    case SAMPLER_EULER_A:
        st->add_noise_x[k] = 1.0f;
        st->add_noise_eps[k] = st->sigmas[k];
        return;
    case SAMPLER_DPMPP_2M:
    case SAMPLER_DPMPP_2M_KARRAS: { /* _sigma_to_alpha_sigma_t */
        const float s = st->sigmas[k];
        st->add_noise_x[k] = 1.0f / sqrtf(s * s + 1.0f);
        st->add_noise_eps[k] = s * st->add_noise_x[k];
        return;
    }
    default: { /* DDPMScheduler.add_noise (DDIM and LCM have the same) */
        const float ac = sched->alphas_cumprod[(int)st->timesteps[k]];
        st->add_noise_x[k] = sqrtf(ac);
        st->add_noise_eps[k] = sqrtf(1.0f - ac);
        return;
    }
    }
}

static void add_noise_coeffs(const struct schedule *sched, struct sampler_state *st)
{
    for (int k = 0; k < st->n_steps; k++)
        add_noise_at(sched, st, k);
}

enum status sampler_init(struct sampler_state *st, enum sampler_kind kind,
                         const struct schedule *sched, int n_steps,
                         const struct sampler_options *opt, struct errbuf *err)
{
    memset(st, 0, sizeof *st);
    struct sampler_options defaults;
    sampler_options_defaults(&defaults);
    if (!opt)
        opt = &defaults;
    const double eta = kind == SAMPLER_DDIM ? opt->eta : 0.0;
    enum status stat = check_request(kind, sched, n_steps, opt->begin, eta, err);
    if (stat != STATUS_OK)
        return stat;
    struct sampler_plan_in in = {.kind = kind, .sched = sched, .cfg = sched->config,
                                 .n = n_steps, .begin = opt->begin, .eta = eta};
    resolve_class_defaults(kind, &in.cfg);
    in.scratch = malloc(sizeof(double) * 4 * ((size_t)n_steps + 2));
    if (!in.scratch)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "sampler: scratch for %d steps", n_steps);
    stat = alloc_plan(st, n_steps, sigma_family(kind), err);
    if (stat == STATUS_OK) {
        st->kind = kind;
        st->n_steps = n_steps;
        st->seed = opt->seed;
        st->subsequence = opt->subsequence;
        st->begin = st->step = opt->begin;
        stat = build_plan(&in, st, err);
    }
    if (stat == STATUS_OK)
        add_noise_coeffs(sched, st);
    free(in.scratch);
    if (stat == STATUS_OK && opt->n_elems > 0)
        stat = ensure_rows(st, opt->n_elems, err);
    if (stat != STATUS_OK)
        sampler_free(st);
    return stat;
}

void sampler_free(struct sampler_state *st)
{
    if (!st)
        return;
    free(st->plan_mem);
    free(st->row_mem);
    memset(st, 0, sizeof *st);
}

/* --- accessors ---------------------------------------------------------------------- */

float sampler_init_noise_sigma(const struct sampler_state *st)
{
    return st->init_noise_sigma;
}

void sampler_initial_latent(const struct sampler_state *st, float *latent, size_t n)
{
    philox_normal_fill(st->seed, st->subsequence, 0, latent, n);
    for (size_t i = 0; i < n; i++)
        latent[i] *= st->init_noise_sigma;
}

void sampler_add_noise(const struct sampler_state *st, const float *x, const float *noise,
                       float *latent, size_t n)
{
    const float a = st->add_noise_x[st->begin], b = st->add_noise_eps[st->begin];
    for (size_t i = 0; i < n; i++) {
        const float xa = a * x[i], nb = b * noise[i]; /* torch: two products, then the sum */
        latent[i] = xa + nb;
    }
}

void sampler_add_noise_coeffs(const struct sampler_state *st, int k, float *a, float *b)
{
    *a = st->add_noise_x[k];
    *b = st->add_noise_eps[k];
}

bool sampler_done(const struct sampler_state *st)
{
    return st->step >= st->n_steps;
}

int sampler_step_index(const struct sampler_state *st)
{
    return st->step;
}

int sampler_n_steps(const struct sampler_state *st)
{
    return st->n_steps;
}

float sampler_model_input_scale(const struct sampler_state *st)
{
    return sampler_done(st) ? 1.0f : st->c_in[st->step];
}

float sampler_timestep(const struct sampler_state *st)
{
    return sampler_done(st) ? 0.0f : st->timesteps[st->step];
}

const struct sampler_coeffs *sampler_step_coeffs(const struct sampler_state *st)
{
    return sampler_done(st) ? NULL : &st->coeffs[st->step];
}

uint64_t sampler_noise_offset(const struct sampler_state *st, size_t n)
{
    return ((uint64_t)st->step + 1) * (uint64_t)n;
}

/* --- the host step ------------------------------------------------------------------ */

static bool plan_needs(const struct sampler_state *st, bool noise)
{
    for (int i = 0; i < st->n_steps; i++)
        if (noise ? st->coeffs[i].needs_noise : st->coeffs[i].stores_x0)
            return true;
    return false;
}

/* Allocates the x₀-history and noise rows the plan needs, once, for rows of n. */
static enum status ensure_rows(struct sampler_state *st, size_t n, struct errbuf *err)
{
    if (st->n_elems == n)
        return STATUS_OK;
    if (st->n_elems != 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "sampler %s: row length changed from %zu to %zu",
                           sampler_kind_name(st->kind), st->n_elems, n);
    if (n == 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sampler %s: empty row",
                           sampler_kind_name(st->kind));
    const bool prev = plan_needs(st, false), noise = plan_needs(st, true);
    if (prev || noise) {
        float *rows = malloc(sizeof(float) * n * ((prev ? 1u : 0u) + (noise ? 1u : 0u)));
        if (!rows)
            return status_fail(err, STATUS_OUT_OF_MEMORY, "sampler: rows of %zu", n);
        st->row_mem = rows;
        st->prev_x0 = prev ? rows : NULL;
        st->noise = noise ? rows + (prev ? n : 0) : NULL;
    }
    st->n_elems = n;
    return STATUS_OK;
}

static float clampf(float v, float r)
{
    return v < -r ? -r : v > r ? r : v;
}

static void apply_folded(const struct sampler_coeffs *c, const float *mo, float *lat,
                         const float *noise, float *prev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float l = lat[i], m = mo[i];
        float out = c->fold_latent * l + c->fold_model * m;
        if (c->uses_prev_x0)
            out += c->c_prev * prev[i];
        if (c->needs_noise)
            out += c->c_noise * noise[i];
        if (c->stores_x0)
            prev[i] = c->x0_latent * l + c->x0_model * m;
        lat[i] = out;
    }
}

static void apply_clipped(const struct sampler_coeffs *c, const float *mo, float *lat,
                          const float *noise, float *prev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float l = lat[i], m = mo[i];
        const float x0 = clampf(c->x0_latent * l + c->x0_model * m, c->clip_range);
        float out = c->c_latent * l + c->c_x0 * x0 + c->c_model * m;
        if (c->uses_prev_x0)
            out += c->c_prev * prev[i];
        if (c->needs_noise)
            out += c->c_noise * noise[i];
        if (c->stores_x0)
            prev[i] = x0;
        lat[i] = out;
    }
}

static enum status step_apply(struct sampler_state *st, const float *model_output,
                              float *latent, const float *noise, size_t n, struct errbuf *err)
{
    const struct sampler_coeffs *c = &st->coeffs[st->step];
    if (c->needs_noise && !noise)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sampler %s: step %d needs noise",
                           sampler_kind_name(st->kind), st->step);
    if (c->clip)
        apply_clipped(c, model_output, latent, noise, st->prev_x0, n);
    else
        apply_folded(c, model_output, latent, noise, st->prev_x0, n);
    st->step++;
    return STATUS_OK;
}

static enum status step_check(const struct sampler_state *st, struct errbuf *err)
{
    if (!st->coeffs)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sampler: not initialised");
    if (sampler_done(st))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sampler %s: all %d steps done",
                           sampler_kind_name(st->kind), st->n_steps);
    return STATUS_OK;
}

enum status sampler_step(struct sampler_state *st, const float *model_output, float *latent,
                         size_t n, struct errbuf *err)
{
    enum status stat = step_check(st, err);
    if (stat == STATUS_OK)
        stat = ensure_rows(st, n, err);
    if (stat != STATUS_OK)
        return stat;
    const bool noisy = st->coeffs[st->step].needs_noise;
    if (noisy)
        philox_normal_fill(st->seed, st->subsequence, sampler_noise_offset(st, n), st->noise, n);
    return step_apply(st, model_output, latent, noisy ? st->noise : NULL, n, err);
}

enum status sampler_step_with_noise(struct sampler_state *st, const float *model_output,
                                    float *latent, const float *noise, size_t n,
                                    struct errbuf *err)
{
    enum status stat = step_check(st, err);
    if (stat == STATUS_OK)
        stat = ensure_rows(st, n, err);
    if (stat != STATUS_OK)
        return stat;
    return step_apply(st, model_output, latent, noise, n, err);
}

enum status sampler_advance(struct sampler_state *st, struct errbuf *err)
{
    enum status stat = step_check(st, err);
    if (stat != STATUS_OK)
        return stat;
    st->step++;
    return STATUS_OK;
}
