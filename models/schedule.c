/* models/schedule.c — scheduler configs and training tables; see schedule.h. */
#include "models/schedule.h"

#include "models/model_config.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const FIELD_NAMES[SCHEDULE_F_COUNT_] = {
    [SCHEDULE_F_NUM_TRAIN_TIMESTEPS] = "num_train_timesteps",
    [SCHEDULE_F_BETA_START] = "beta_start",
    [SCHEDULE_F_BETA_END] = "beta_end",
    [SCHEDULE_F_BETA_SCHEDULE] = "beta_schedule",
    [SCHEDULE_F_PREDICTION_TYPE] = "prediction_type",
    [SCHEDULE_F_TIMESTEP_SPACING] = "timestep_spacing",
    [SCHEDULE_F_STEPS_OFFSET] = "steps_offset",
    [SCHEDULE_F_SET_ALPHA_TO_ONE] = "set_alpha_to_one",
    [SCHEDULE_F_CLIP_SAMPLE] = "clip_sample",
    [SCHEDULE_F_CLIP_SAMPLE_RANGE] = "clip_sample_range",
    [SCHEDULE_F_THRESHOLDING] = "thresholding",
    [SCHEDULE_F_RESCALE_BETAS_ZERO_SNR] = "rescale_betas_zero_snr",
    [SCHEDULE_F_USE_KARRAS_SIGMAS] = "use_karras_sigmas",
    [SCHEDULE_F_USE_EXPONENTIAL_SIGMAS] = "use_exponential_sigmas",
    [SCHEDULE_F_USE_BETA_SIGMAS] = "use_beta_sigmas",
    [SCHEDULE_F_USE_LU_LAMBDAS] = "use_lu_lambdas",
    [SCHEDULE_F_USE_FLOW_SIGMAS] = "use_flow_sigmas",
    [SCHEDULE_F_FINAL_SIGMAS_TYPE] = "final_sigmas_type",
    [SCHEDULE_F_TIMESTEP_TYPE] = "timestep_type",
    [SCHEDULE_F_INTERPOLATION_TYPE] = "interpolation_type",
    [SCHEDULE_F_SIGMA_MIN] = "sigma_min",
    [SCHEDULE_F_SIGMA_MAX] = "sigma_max",
    [SCHEDULE_F_SOLVER_TYPE] = "solver_type",
    [SCHEDULE_F_LOWER_ORDER_FINAL] = "lower_order_final",
    [SCHEDULE_F_EULER_AT_FINAL] = "euler_at_final",
    [SCHEDULE_F_LAMBDA_MIN_CLIPPED] = "lambda_min_clipped",
    [SCHEDULE_F_VARIANCE_TYPE] = "variance_type",
    [SCHEDULE_F_ORIGINAL_INFERENCE_STEPS] = "original_inference_steps",
    [SCHEDULE_F_TIMESTEP_SCALING] = "timestep_scaling",
};

const char *schedule_field_name(enum schedule_field field)
{
    if ((unsigned)field >= SCHEDULE_F_COUNT_)
        return "?";
    return FIELD_NAMES[field];
}

void schedule_config_defaults(struct schedule_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->num_train_timesteps = 1000;
    cfg->beta_start = 0.0001;
    cfg->beta_end = 0.02;
    cfg->beta_schedule = SCHEDULE_BETA_LINEAR;
    cfg->prediction_type = SCHEDULE_PRED_EPSILON;
    cfg->timestep_spacing = SCHEDULE_SPACING_LINSPACE;
    cfg->set_alpha_to_one = true;
    cfg->clip_sample = false;
    cfg->clip_sample_range = 1.0;
    cfg->final_sigmas_type = SCHEDULE_FINAL_ZERO;
    cfg->timestep_type = SCHEDULE_TIMESTEP_DISCRETE;
    cfg->interpolation_type = SCHEDULE_INTERP_LINEAR;
    cfg->solver_type = SCHEDULE_SOLVER_MIDPOINT;
    cfg->lower_order_final = true;
    cfg->lambda_min_clipped = -INFINITY;
    cfg->variance_type = SCHEDULE_VARIANCE_FIXED_SMALL;
    cfg->original_inference_steps = 50;
    cfg->timestep_scaling = 10.0;
}

bool schedule_config_has(const struct schedule_config *cfg, enum schedule_field field)
{
    return (unsigned)field < SCHEDULE_F_COUNT_ && (cfg->present >> field) & 1u;
}

static enum status bad_field(struct errbuf *err, enum schedule_field f, const char *why)
{
    return status_fail(err, STATUS_INVALID_ARGUMENT, "scheduler config: %s: %s",
                       schedule_field_name(f), why);
}

static bool beta_ok(double b)
{
    return isfinite(b) && b >= 0.0 && b < 1.0;
}

enum status schedule_config_validate(const struct schedule_config *cfg, struct errbuf *err)
{
    if (cfg->num_train_timesteps < 2 || cfg->num_train_timesteps > SCHEDULE_MAX_TRAIN_TIMESTEPS)
        return bad_field(err, SCHEDULE_F_NUM_TRAIN_TIMESTEPS, "must be in [2, 100000]");
    if (!beta_ok(cfg->beta_start))
        return bad_field(err, SCHEDULE_F_BETA_START, "must be finite and in [0, 1)");
    if (!beta_ok(cfg->beta_end))
        return bad_field(err, SCHEDULE_F_BETA_END, "must be finite and in [0, 1)");
    if ((unsigned)cfg->beta_schedule > SCHEDULE_BETA_COSINE)
        return bad_field(err, SCHEDULE_F_BETA_SCHEDULE, "unknown value");
    if ((unsigned)cfg->prediction_type > SCHEDULE_PRED_SAMPLE)
        return bad_field(err, SCHEDULE_F_PREDICTION_TYPE, "unknown value");
    if ((unsigned)cfg->timestep_spacing > SCHEDULE_SPACING_LINSPACE)
        return bad_field(err, SCHEDULE_F_TIMESTEP_SPACING, "unknown value");
    if ((unsigned)cfg->final_sigmas_type > SCHEDULE_FINAL_SIGMA_MIN)
        return bad_field(err, SCHEDULE_F_FINAL_SIGMAS_TYPE, "unknown value");
    if ((unsigned)cfg->timestep_type > SCHEDULE_TIMESTEP_CONTINUOUS)
        return bad_field(err, SCHEDULE_F_TIMESTEP_TYPE, "unknown value");
    if ((unsigned)cfg->interpolation_type > SCHEDULE_INTERP_LOG_LINEAR)
        return bad_field(err, SCHEDULE_F_INTERPOLATION_TYPE, "unknown value");
    if ((unsigned)cfg->solver_type > SCHEDULE_SOLVER_HEUN)
        return bad_field(err, SCHEDULE_F_SOLVER_TYPE, "unknown value");
    if ((unsigned)cfg->variance_type > SCHEDULE_VARIANCE_FIXED_LARGE)
        return bad_field(err, SCHEDULE_F_VARIANCE_TYPE, "unknown value");
    if (cfg->steps_offset < 0 || cfg->steps_offset >= cfg->num_train_timesteps)
        return bad_field(err, SCHEDULE_F_STEPS_OFFSET, "must be in [0, num_train_timesteps)");
    if (!(cfg->clip_sample_range > 0.0) || !isfinite(cfg->clip_sample_range))
        return bad_field(err, SCHEDULE_F_CLIP_SAMPLE_RANGE, "must be finite and > 0");
    if (schedule_config_has(cfg, SCHEDULE_F_SIGMA_MIN) && !(cfg->sigma_min > 0.0 && isfinite(cfg->sigma_min)))
        return bad_field(err, SCHEDULE_F_SIGMA_MIN, "must be finite and > 0");
    if (schedule_config_has(cfg, SCHEDULE_F_SIGMA_MAX) && !(cfg->sigma_max > 0.0 && isfinite(cfg->sigma_max)))
        return bad_field(err, SCHEDULE_F_SIGMA_MAX, "must be finite and > 0");
    if (isnan(cfg->lambda_min_clipped))
        return bad_field(err, SCHEDULE_F_LAMBDA_MIN_CLIPPED, "must be a number");
    if (cfg->original_inference_steps < 1 || cfg->original_inference_steps > cfg->num_train_timesteps)
        return bad_field(err, SCHEDULE_F_ORIGINAL_INFERENCE_STEPS,
                         "must be in [1, num_train_timesteps]");
    if (!isfinite(cfg->timestep_scaling))
        return bad_field(err, SCHEDULE_F_TIMESTEP_SCALING, "must be finite");
    return STATUS_OK;
}

/* --- JSON ------------------------------------------------------------------------ */

struct enum_name {
    const char *name;
    int value;
};

static const struct enum_name BETA_NAMES[] = {
    {"linear", SCHEDULE_BETA_LINEAR},
    {"scaled_linear", SCHEDULE_BETA_SCALED_LINEAR},
    {"squaredcos_cap_v2", SCHEDULE_BETA_COSINE},
    {NULL, 0},
};
static const struct enum_name PRED_NAMES[] = {
    {"epsilon", SCHEDULE_PRED_EPSILON},
    {"v_prediction", SCHEDULE_PRED_V},
    {"sample", SCHEDULE_PRED_SAMPLE},
    {NULL, 0},
};
static const struct enum_name SPACING_NAMES[] = {
    {"leading", SCHEDULE_SPACING_LEADING},
    {"trailing", SCHEDULE_SPACING_TRAILING},
    {"linspace", SCHEDULE_SPACING_LINSPACE},
    {NULL, 0},
};
static const struct enum_name FINAL_NAMES[] = {
    {"zero", SCHEDULE_FINAL_ZERO},
    {"sigma_min", SCHEDULE_FINAL_SIGMA_MIN},
    {NULL, 0},
};
static const struct enum_name TTYPE_NAMES[] = {
    {"discrete", SCHEDULE_TIMESTEP_DISCRETE},
    {"continuous", SCHEDULE_TIMESTEP_CONTINUOUS},
    {NULL, 0},
};
static const struct enum_name INTERP_NAMES[] = {
    {"linear", SCHEDULE_INTERP_LINEAR},
    {"log_linear", SCHEDULE_INTERP_LOG_LINEAR},
    {NULL, 0},
};
static const struct enum_name SOLVER_NAMES[] = {
    {"midpoint", SCHEDULE_SOLVER_MIDPOINT},
    {"heun", SCHEDULE_SOLVER_HEUN},
    /* diffusers maps the DEIS/UniPC solver names to midpoint */
    {"logrho", SCHEDULE_SOLVER_MIDPOINT},
    {"bh1", SCHEDULE_SOLVER_MIDPOINT},
    {"bh2", SCHEDULE_SOLVER_MIDPOINT},
    {NULL, 0},
};
static const struct enum_name VARIANCE_NAMES[] = {
    {"fixed_small", SCHEDULE_VARIANCE_FIXED_SMALL},
    {"fixed_small_log", SCHEDULE_VARIANCE_FIXED_SMALL_LOG},
    {"fixed_large", SCHEDULE_VARIANCE_FIXED_LARGE},
    {NULL, 0},
};

enum value_kind { VK_INT, VK_DOUBLE, VK_BOOL, VK_ENUM };

/* parse_field stores enum values through an int */
_Static_assert(sizeof(enum schedule_beta) == sizeof(int) &&
                   sizeof(enum schedule_prediction) == sizeof(int) &&
                   sizeof(enum schedule_spacing) == sizeof(int) &&
                   sizeof(enum schedule_final_sigmas) == sizeof(int) &&
                   sizeof(enum schedule_timestep_type) == sizeof(int) &&
                   sizeof(enum schedule_interpolation) == sizeof(int) &&
                   sizeof(enum schedule_solver_type) == sizeof(int) &&
                   sizeof(enum schedule_variance) == sizeof(int),
               "schedule enums are int-sized");

struct field_spec {
    enum schedule_field field;
    enum value_kind kind;
    size_t offset;
    const struct enum_name *names; /* VK_ENUM */
};

#define SPEC(f, k, member, names) {f, k, offsetof(struct schedule_config, member), names}
static const struct field_spec SPECS[] = {
    SPEC(SCHEDULE_F_NUM_TRAIN_TIMESTEPS, VK_INT, num_train_timesteps, NULL),
    SPEC(SCHEDULE_F_BETA_START, VK_DOUBLE, beta_start, NULL),
    SPEC(SCHEDULE_F_BETA_END, VK_DOUBLE, beta_end, NULL),
    SPEC(SCHEDULE_F_BETA_SCHEDULE, VK_ENUM, beta_schedule, BETA_NAMES),
    SPEC(SCHEDULE_F_PREDICTION_TYPE, VK_ENUM, prediction_type, PRED_NAMES),
    SPEC(SCHEDULE_F_TIMESTEP_SPACING, VK_ENUM, timestep_spacing, SPACING_NAMES),
    SPEC(SCHEDULE_F_STEPS_OFFSET, VK_INT, steps_offset, NULL),
    SPEC(SCHEDULE_F_SET_ALPHA_TO_ONE, VK_BOOL, set_alpha_to_one, NULL),
    SPEC(SCHEDULE_F_CLIP_SAMPLE, VK_BOOL, clip_sample, NULL),
    SPEC(SCHEDULE_F_CLIP_SAMPLE_RANGE, VK_DOUBLE, clip_sample_range, NULL),
    SPEC(SCHEDULE_F_THRESHOLDING, VK_BOOL, thresholding, NULL),
    SPEC(SCHEDULE_F_RESCALE_BETAS_ZERO_SNR, VK_BOOL, rescale_betas_zero_snr, NULL),
    SPEC(SCHEDULE_F_USE_KARRAS_SIGMAS, VK_BOOL, use_karras_sigmas, NULL),
    SPEC(SCHEDULE_F_USE_EXPONENTIAL_SIGMAS, VK_BOOL, use_exponential_sigmas, NULL),
    SPEC(SCHEDULE_F_USE_BETA_SIGMAS, VK_BOOL, use_beta_sigmas, NULL),
    SPEC(SCHEDULE_F_USE_LU_LAMBDAS, VK_BOOL, use_lu_lambdas, NULL),
    SPEC(SCHEDULE_F_USE_FLOW_SIGMAS, VK_BOOL, use_flow_sigmas, NULL),
    SPEC(SCHEDULE_F_FINAL_SIGMAS_TYPE, VK_ENUM, final_sigmas_type, FINAL_NAMES),
    SPEC(SCHEDULE_F_TIMESTEP_TYPE, VK_ENUM, timestep_type, TTYPE_NAMES),
    SPEC(SCHEDULE_F_INTERPOLATION_TYPE, VK_ENUM, interpolation_type, INTERP_NAMES),
    SPEC(SCHEDULE_F_SIGMA_MIN, VK_DOUBLE, sigma_min, NULL),
    SPEC(SCHEDULE_F_SIGMA_MAX, VK_DOUBLE, sigma_max, NULL),
    SPEC(SCHEDULE_F_SOLVER_TYPE, VK_ENUM, solver_type, SOLVER_NAMES),
    SPEC(SCHEDULE_F_LOWER_ORDER_FINAL, VK_BOOL, lower_order_final, NULL),
    SPEC(SCHEDULE_F_EULER_AT_FINAL, VK_BOOL, euler_at_final, NULL),
    SPEC(SCHEDULE_F_LAMBDA_MIN_CLIPPED, VK_DOUBLE, lambda_min_clipped, NULL),
    SPEC(SCHEDULE_F_VARIANCE_TYPE, VK_ENUM, variance_type, VARIANCE_NAMES),
    SPEC(SCHEDULE_F_ORIGINAL_INFERENCE_STEPS, VK_INT, original_inference_steps, NULL),
    SPEC(SCHEDULE_F_TIMESTEP_SCALING, VK_DOUBLE, timestep_scaling, NULL),
};
#undef SPEC

static enum status parse_enum(const struct field_spec *sp, const json_t *v, int *out,
                              struct errbuf *err)
{
    const char *s = json_string_value(v);
    if (!s)
        return bad_field(err, sp->field, "expected a string");
    for (const struct enum_name *e = sp->names; e->name; e++) {
        if (strcmp(e->name, s) == 0) {
            *out = e->value;
            return STATUS_OK;
        }
    }
    char known[256] = "";
    size_t used = 0;
    for (const struct enum_name *e = sp->names; e->name && used < sizeof known; e++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", e->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return status_fail(err, STATUS_INVALID_ARGUMENT,
                       "scheduler config: %s: unknown value \"%.64s\" (expected one of: %s)",
                       schedule_field_name(sp->field), s, known);
}

static enum status parse_int(const struct field_spec *sp, const json_t *v, int *out,
                             struct errbuf *err)
{
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return bad_field(err, sp->field, "expected an integer");
    if (d != floor(d) || d < -2147483648.0 || d > 2147483647.0)
        return bad_field(err, sp->field, "expected an integer");
    *out = (int)d;
    return STATUS_OK;
}

static enum status parse_field(const struct field_spec *sp, const json_t *v,
                               struct schedule_config *cfg, struct errbuf *err)
{
    char *dst = (char *)cfg + sp->offset;
    switch (sp->kind) {
    case VK_INT:
        return parse_int(sp, v, (int *)dst, err);
    case VK_DOUBLE:
        if (!json_is_number(v))
            return bad_field(err, sp->field, "expected a number");
        *(double *)dst = json_number_value(v);
        return STATUS_OK;
    case VK_BOOL:
        if (!json_is_boolean(v))
            return bad_field(err, sp->field, "expected true or false");
        *(bool *)dst = json_is_true(v);
        return STATUS_OK;
    case VK_ENUM: {
        int e = 0;
        enum status st = parse_enum(sp, v, &e, err);
        if (st == STATUS_OK)
            memcpy(dst, &e, sizeof e); /* the enums are int-sized */
        return st;
    }
    }
    return status_fail(err, STATUS_INTERNAL, "scheduler config: bad field kind");
}

enum status schedule_config_from_json(struct schedule_config *cfg, const json_t *obj,
                                      struct errbuf *err)
{
    schedule_config_defaults(cfg);
    if (!json_is_object(obj))
        return status_fail(err, STATUS_FORMAT, "scheduler config: not a JSON object");
    const json_t *tb = json_object_get(obj, "trained_betas");
    if (tb && !json_is_null(tb))
        return status_fail(err, STATUS_UNSUPPORTED,
                           "scheduler config: trained_betas: an explicit beta array is not supported");
    for (size_t i = 0; i < sizeof SPECS / sizeof SPECS[0]; i++) {
        const struct field_spec *sp = &SPECS[i];
        const json_t *v = json_object_get(obj, schedule_field_name(sp->field));
        if (!v || json_is_null(v))
            continue;
        enum status st = parse_field(sp, v, cfg, err);
        if (st != STATUS_OK)
            return st;
        cfg->present |= UINT64_C(1) << sp->field;
    }
    return schedule_config_validate(cfg, err);
}

enum status schedule_config_from_string(struct schedule_config *cfg, const char *json,
                                        struct errbuf *err)
{
    json_t *root;
    enum status st = model_config_parse(json, "scheduler config", &root, err);
    if (st != STATUS_OK) {
        schedule_config_defaults(cfg);
        return st;
    }
    st = schedule_config_from_json(cfg, root, err);
    json_decref(root);
    return st;
}

enum status schedule_config_load(struct schedule_config *cfg, const char *path,
                                 struct errbuf *err)
{
    json_t *root;
    enum status st = model_config_load(path, &root, err);
    if (st != STATUS_OK) {
        schedule_config_defaults(cfg);
        return st;
    }
    st = schedule_config_from_json(cfg, root, err);
    json_decref(root);
    if (st != STATUS_OK)
        return status_wrap(err, "%s", path);
    return STATUS_OK;
}

/* --- numerics helpers ----------------------------------------------------------- */

void schedule_linspace_f32(float start, float end, int n, float *out)
{
    if (n == 1) {
        out[0] = start;
        return;
    }
    const float step = (end - start) / (float)(n - 1);
    const int half = n / 2;
    for (int i = 0; i < n; i++) {
        if (i < half)
            out[i] = fmaf(step, (float)i, start);
        else
            out[i] = fmaf(-step, (float)(n - 1 - i), end);
    }
}

int schedule_arange(double start, double stop, double step, double *out, int max_out)
{
    double len = ceil((stop - start) / step);
    if (!(len > 0))
        return 0;
    if (len > 1e9)
        len = 1e9;
    const int n = (int)len;
    const double delta = (start + step) - start; /* numpy fills start + i·(x₁ − x₀) */
    for (int i = 0; i < n && i < max_out; i++)
        out[i] = i == 0 ? start : i == 1 ? start + step : start + (double)i * delta;
    return n;
}

double schedule_interp_sigma(const struct schedule *s, double t)
{
    const int last = s->n_train - 1;
    if (isnan(t))
        return t;
    if (t <= 0.0)
        return s->sigmas[0];
    if (t >= (double)last)
        return s->sigmas[last];
    const int j = (int)floor(t);
    if ((double)j == t)
        return s->sigmas[j];
    const double slope = ((double)s->sigmas[j + 1] - (double)s->sigmas[j]) / 1.0;
    return slope * (t - (double)j) + (double)s->sigmas[j];
}

double schedule_sigma_to_t(const struct schedule *s, double sigma)
{
    const double log_sigma = log(fmax(sigma, 1e-10));
    int low = 0;
    for (int i = 0; i < s->n_train; i++)
        if (log_sigma - (double)s->log_sigmas[i] >= 0.0)
            low = i;
    if (low > s->n_train - 2)
        low = s->n_train - 2;
    const double lo = s->log_sigmas[low], hi = s->log_sigmas[low + 1];
    double w = (lo - log_sigma) / (lo - hi);
    w = w < 0.0 ? 0.0 : w > 1.0 ? 1.0 : w;
    return (1.0 - w) * (double)low + w * (double)(low + 1);
}

void schedule_linspace_f64(double start, double stop, int n, double *out)
{
    if (n == 1) {
        out[0] = start; /* numpy: step is NaN, y = 0·delta + start */
        return;
    }
    const double step = (stop - start) / (double)(n - 1);
    for (int i = 0; i < n - 1; i++)
        out[i] = (double)i * step + start;
    out[n - 1] = stop;
}

static void reverse(double *v, int n)
{
    for (int i = 0, j = n - 1; i < j; i++, j--) {
        const double t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* round(arange(start, 0, −T/n)) − 1, first n values (numpy may give n + 1). */
static void spacing_trailing(int start, int T, int n, double *out)
{
    const int got = schedule_arange((double)start, 0.0, -((double)T / n), out, n);
    for (int i = 0; i < n; i++)
        out[i] = i < got ? nearbyint(out[i]) - 1.0 : -1.0;
}

void schedule_spacing(enum schedule_spacing spacing, int T, int n, int steps_offset,
                      bool round_linspace, double *out)
{
    switch (spacing) {
    case SCHEDULE_SPACING_LINSPACE:
        schedule_linspace_f64(0.0, (double)(T - 1), n, out);
        for (int i = 0; i < n; i++)
            out[i] = round_linspace ? nearbyint(out[i]) : (double)(float)out[i];
        reverse(out, n);
        return;
    case SCHEDULE_SPACING_LEADING: {
        const int ratio = T / n;
        for (int i = 0; i < n; i++)
            out[i] = (double)((n - 1 - i) * ratio + steps_offset);
        return;
    }
    case SCHEDULE_SPACING_TRAILING:
        spacing_trailing(T, T, n, out);
        return;
    }
}

void schedule_spacing_dpm(enum schedule_spacing spacing, int T, int last, int n,
                          int steps_offset, double *out)
{
    switch (spacing) {
    case SCHEDULE_SPACING_LINSPACE: {
        /* linspace(0, last − 1, n + 1).round()[::-1][:-1]: drop the grid's first point */
        const double step = n > 0 ? (double)(last - 1) / (double)n : 0.0;
        for (int i = 0; i < n; i++) {
            const int k = n - i; /* grid index, n … 1 */
            const double v = k == n ? (double)(last - 1) : (double)k * step;
            out[i] = nearbyint(v);
        }
        return;
    }
    case SCHEDULE_SPACING_LEADING: {
        const int ratio = last / (n + 1);
        for (int i = 0; i < n; i++)
            out[i] = (double)((n - i) * ratio + steps_offset);
        return;
    }
    case SCHEDULE_SPACING_TRAILING:
        spacing_trailing(last, T, n, out);
        return;
    }
}

void schedule_karras_sigmas(double sigma_min, double sigma_max, int n, double *out)
{
    const double rho = 7.0;
    const double min_inv_rho = pow(sigma_min, 1.0 / rho);
    const double max_inv_rho = pow(sigma_max, 1.0 / rho);
    const double step = n > 1 ? 1.0 / (double)(n - 1) : 0.0;
    for (int i = 0; i < n; i++) {
        const double ramp = (n > 1 && i == n - 1) ? 1.0 : (double)i * step;
        out[i] = pow(max_inv_rho + ramp * (min_inv_rho - max_inv_rho), rho);
    }
}

/* --- tables ------------------------------------------------------------------------ */

static double cosine_alpha_bar(double t)
{
    const double c = cos((t + 0.008) / 1.008 * M_PI / 2);
    return c * c;
}

static void betas_cosine(int T, float *betas)
{
    for (int i = 0; i < T; i++) {
        const double t1 = (double)i / T, t2 = (double)(i + 1) / T;
        const double b = 1 - cosine_alpha_bar(t2) / cosine_alpha_bar(t1);
        betas[i] = (float)(b < 0.999 ? b : 0.999);
    }
}

static void cumprod_one_minus(const float *betas, int T, float *ac)
{
    double acc = 1.0;
    for (int i = 0; i < T; i++) {
        const float alpha = 1.0f - betas[i];
        acc *= alpha;
        ac[i] = (float)acc;
    }
}

/* diffusers' rescale_zero_terminal_snr, in float32 as torch runs it; `tmp` has T. */
static void rescale_zero_snr(float *betas, int T, float *tmp)
{
    cumprod_one_minus(betas, T, tmp);
    for (int i = 0; i < T; i++)
        tmp[i] = sqrtf(tmp[i]);
    const float s0 = tmp[0], sT = tmp[T - 1];
    const float scale = s0 / (s0 - sT);
    for (int i = 0; i < T; i++) {
        const float v = (tmp[i] - sT) * scale;
        tmp[i] = v * v;
    }
    /* alphas = [ᾱ₀, ᾱ₁/ᾱ₀, …]; betas = 1 − alphas (walk down so tmp stays intact) */
    for (int i = T - 1; i >= 1; i--)
        betas[i] = 1.0f - tmp[i] / tmp[i - 1];
    betas[0] = 1.0f - tmp[0];
}

static enum status betas_fill(const struct schedule_config *cfg, float *betas, float *tmp,
                              struct errbuf *err)
{
    const int T = cfg->num_train_timesteps;
    switch (cfg->beta_schedule) {
    case SCHEDULE_BETA_LINEAR:
        schedule_linspace_f32((float)cfg->beta_start, (float)cfg->beta_end, T, betas);
        break;
    case SCHEDULE_BETA_SCALED_LINEAR:
        schedule_linspace_f32((float)sqrt(cfg->beta_start), (float)sqrt(cfg->beta_end), T,
                              betas);
        for (int i = 0; i < T; i++)
            betas[i] = betas[i] * betas[i];
        break;
    case SCHEDULE_BETA_COSINE:
        betas_cosine(T, betas);
        break;
    }
    if (cfg->rescale_betas_zero_snr)
        rescale_zero_snr(betas, T, tmp);
    for (int i = 0; i < T; i++)
        if (!(betas[i] >= 0.0f && betas[i] <= 1.0f))
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "scheduler config: beta_schedule: beta[%d] = %g is outside [0, 1]",
                               i, (double)betas[i]);
    return STATUS_OK;
}

enum status schedule_build(struct schedule *s, const struct schedule_config *cfg,
                           struct errbuf *err)
{
    memset(s, 0, sizeof *s);
    enum status st = schedule_config_validate(cfg, err);
    if (st != STATUS_OK)
        return st;
    const int T = cfg->num_train_timesteps;
    float *mem = malloc(sizeof(float) * 4 * (size_t)T);
    if (!mem)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "schedule: %d timesteps", T);
    s->config = *cfg;
    s->n_train = T;
    s->zero_terminal_snr = cfg->rescale_betas_zero_snr;
    s->betas = mem;
    s->alphas_cumprod = mem + T;
    s->sigmas = mem + 2 * (size_t)T;
    s->log_sigmas = mem + 3 * (size_t)T;
    st = betas_fill(cfg, s->betas, s->sigmas, err);
    if (st != STATUS_OK) {
        schedule_free(s);
        return st;
    }
    cumprod_one_minus(s->betas, T, s->alphas_cumprod);
    for (int i = 0; i < T; i++) {
        float ac = s->alphas_cumprod[i];
        if (cfg->rescale_betas_zero_snr && i == T - 1)
            ac = 0x1p-24f;
        s->sigmas[i] = sqrtf((1.0f - ac) / ac);
        s->log_sigmas[i] = logf(s->sigmas[i]);
        if (!isfinite(s->sigmas[i])) { /* ᾱ = 0: a step from there would be NaN */
            schedule_free(s);
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "num_train_timesteps: %d steps of β in [%g, %g] take ᾱ to 0 "
                               "(in float32) at t = %d, where σ is infinite",
                               T, cfg->beta_start, cfg->beta_end, i);
        }
    }
    return STATUS_OK;
}

void schedule_free(struct schedule *s)
{
    if (!s)
        return;
    free(s->betas);
    memset(s, 0, sizeof *s);
}

float schedule_alpha_cumprod_sigma(const struct schedule *s, int t)
{
    /* the σ table was built from the tweaked ᾱ; ᾱ differs from the raw one only at
     * the last entry under zero-SNR, where σ = sqrt((1 − 2⁻²⁴)/2⁻²⁴) */
    if (s->zero_terminal_snr && t == s->n_train - 1)
        return 0x1p-24f;
    return s->alphas_cumprod[t];
}
