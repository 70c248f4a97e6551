/* models/pipeline_params.c — gen_params: defaults, validation, scheduler names. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "models/pipeline.h"
#include "models/pipeline_internal.h"

static const char *const SCHEDULER_NAMES[SD_SCHEDULER_COUNT_] = {
    [SD_SCHEDULER_DEFAULT] = "default",   [SD_SCHEDULER_KARRAS] = "karras",
    [SD_SCHEDULER_LEADING] = "leading",   [SD_SCHEDULER_LINSPACE] = "linspace",
    [SD_SCHEDULER_TRAILING] = "trailing",
};

const char *sd_scheduler_name(enum sd_scheduler s)
{
    return (unsigned)s < SD_SCHEDULER_COUNT_ ? SCHEDULER_NAMES[s] : "?";
}

enum status sd_scheduler_parse(const char *name, enum sd_scheduler *out, struct errbuf *err)
{
    static const struct {
        const char *name;
        enum sd_scheduler s;
    } aliases[] = {{"normal", SD_SCHEDULER_DEFAULT},
                   {"automatic", SD_SCHEDULER_DEFAULT},
                   {"uniform", SD_SCHEDULER_LINSPACE},
                   {"sgm_uniform", SD_SCHEDULER_TRAILING}};
    if (!name)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "scheduler: missing value");
    for (int i = 0; i < SD_SCHEDULER_COUNT_; i++)
        if (strcasecmp(name, SCHEDULER_NAMES[i]) == 0) {
            *out = (enum sd_scheduler)i;
            return STATUS_OK;
        }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].name) == 0) {
            *out = aliases[i].s;
            return STATUS_OK;
        }
    return status_fail(err, STATUS_INVALID_ARGUMENT,
                       "scheduler: unknown scheduler '%s' (default, karras, leading, linspace, "
                       "trailing)",
                       name);
}

const char *sd_sampler_display_name(enum sampler_kind k, enum sd_scheduler s)
{
    const bool karras = s == SD_SCHEDULER_KARRAS;
    switch (k) {
    case SAMPLER_EULER:
        return karras ? "Euler Karras" : "Euler";
    case SAMPLER_EULER_A:
        return "Euler a";
    case SAMPLER_DDIM:
        return "DDIM";
    case SAMPLER_DPMPP_2M:
        return karras ? "DPM++ 2M Karras" : "DPM++ 2M";
    case SAMPLER_DPMPP_2M_KARRAS:
        return "DPM++ 2M Karras";
    case SAMPLER_DDPM:
        return "DDPM";
    case SAMPLER_LCM:
        return "LCM";
    case SAMPLER_KIND_COUNT_:
        break;
    }
    return "?";
}

void gen_params_default(const struct sd_model *model, struct gen_params *p)
{
    memset(p, 0, sizeof *p);
    p->prompt = "";
    p->negative_prompt = "";
    p->width = model->native_width;
    p->height = model->native_height;
    p->steps = model->default_steps;
    p->guidance = model->default_guidance;
    p->sampler = model->default_sampler;
    p->scheduler = SD_SCHEDULER_DEFAULT;
    p->n = 1;
    p->strength = 0.75; /* read only with an init_image: AUTOMATIC1111's default */
}

struct schedule sd_schedule_variant(const struct schedule *base, enum sd_scheduler s)
{
    struct schedule v = *base; /* shares the tables; only the config differs */
    struct schedule_config *c = &v.config;
    enum schedule_spacing spacing = c->timestep_spacing;
    switch (s) {
    case SD_SCHEDULER_KARRAS:
        c->use_karras_sigmas = true;
        c->present |= 1ull << SCHEDULE_F_USE_KARRAS_SIGMAS;
        spacing = SCHEDULE_SPACING_LINSPACE;
        break;
    case SD_SCHEDULER_LEADING:
        spacing = SCHEDULE_SPACING_LEADING;
        break;
    case SD_SCHEDULER_LINSPACE:
        spacing = SCHEDULE_SPACING_LINSPACE;
        break;
    case SD_SCHEDULER_TRAILING:
        spacing = SCHEDULE_SPACING_TRAILING;
        break;
    case SD_SCHEDULER_DEFAULT:
    case SD_SCHEDULER_COUNT_:
        return v;
    }
    c->timestep_spacing = spacing;
    c->present |= 1ull << SCHEDULE_F_TIMESTEP_SPACING;
    return v;
}

static enum status check_side(const char *field, int v, int multiple, struct errbuf *err)
{
    if (v <= 0 || v > GEN_MAX_SIDE || v % multiple != 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "%s: must be a positive multiple of %d up to %d for this model (got %d)",
                           field, multiple, GEN_MAX_SIDE, v);
    return STATUS_OK;
}

static enum status check_sampler(const struct gen_params *p, struct errbuf *err)
{
    if ((unsigned)p->sampler >= SAMPLER_KIND_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sampler: unknown sampler %d",
                           (int)p->sampler);
    if ((unsigned)p->scheduler >= SD_SCHEDULER_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "scheduler: unknown scheduler %d",
                           (int)p->scheduler);
    const bool karras_ok = p->sampler == SAMPLER_EULER || p->sampler == SAMPLER_DPMPP_2M ||
                           p->sampler == SAMPLER_DPMPP_2M_KARRAS;
    if (p->scheduler == SD_SCHEDULER_KARRAS && !karras_ok)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "scheduler: karras needs sampler euler, dpmpp_2m or dpmpp_2m_karras "
                           "(got %s)",
                           sampler_kind_name(p->sampler));
    if (p->sampler == SAMPLER_LCM && p->scheduler != SD_SCHEDULER_DEFAULT)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "scheduler: lcm places its own timesteps (got %s; use default)",
                           sd_scheduler_name(p->scheduler));
    return STATUS_OK;
}

static enum status check_numbers(const struct sd_model *m, const struct gen_params *p,
                                 struct errbuf *err)
{
    if (p->steps < 1 || p->steps > GEN_MAX_STEPS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "steps: must be in [1, %d] (got %d)",
                           GEN_MAX_STEPS, p->steps);
    if (!isfinite(p->guidance) || p->guidance < 0 || p->guidance > GEN_MAX_GUIDANCE)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "guidance: must be in [0, %g] (got %g)",
                           GEN_MAX_GUIDANCE, p->guidance);
    const int layers = clip_num_layers(m->clip);
    if (p->clip_skip < 0 || p->clip_skip >= layers)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "clip_skip: must be in [0, %d] for this text encoder (got %d)",
                           layers - 1, p->clip_skip);
    if (!(p->eta >= 0.0 && p->eta <= 1.0))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "eta: must be in [0, 1] (got %g)",
                           p->eta);
    if (p->n < 1 || p->n > GEN_MAX_IMAGES)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "n: must be in [1, %d] (got %d)",
                           GEN_MAX_IMAGES, p->n);
    if ((p->init_noise || p->step_noise || p->encode_noise) && p->n != 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "n: the noise hooks need n = 1 (got %d)", p->n);
    return STATUS_OK;
}

int sd_img2img_steps(int steps, double strength)
{
    const double k = (double)steps * strength; /* Python's int(): toward zero */
    return k >= (double)steps ? steps : k > 0 ? (int)k : 0;
}

static enum status check_img2img(const struct gen_params *p, struct errbuf *err)
{
    if ((unsigned)p->inpaint_fill >= SD_FILL_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "inpaint_fill: unknown value %d",
                           (int)p->inpaint_fill);
    if (p->inpaint_fill != SD_FILL_ORIGINAL && !p->init_mask)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "inpaint_fill: needs a mask (init_mask)");
    if (!p->init_image) {
        if (p->encode_noise)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "encode_noise: the hook needs an init_image");
        if (p->init_mask)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "init_mask: a mask needs an init_image");
        return STATUS_OK;
    }
    if (!isfinite(p->strength) || p->strength <= 0.0 || p->strength > 1.0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "strength: must be in (0, 1] (got %g)",
                           p->strength);
    if (sd_img2img_steps(p->steps, p->strength) < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "strength: %g of %d steps runs no step (int(steps x strength) "
                           "must be >= 1: raise strength or steps)",
                           p->strength, p->steps);
    return STATUS_OK;
}

/* Builds the sampler once: what only its plan can tell (LCM's step limit, config
 * keys it does not support). */
static enum status check_plan(const struct sd_model *m, const struct gen_params *p,
                              struct errbuf *err)
{
    struct schedule sched = sd_schedule_variant(&m->schedule, p->scheduler);
    struct sampler_options opt;
    sampler_options_defaults(&opt);
    opt.eta = p->eta;
    if (p->init_image)
        opt.begin = p->steps - sd_img2img_steps(p->steps, p->strength);
    struct sampler_state st;
    enum status s = sampler_init(&st, p->sampler, &sched, p->steps, &opt, err);
    sampler_free(&st);
    if (s != STATUS_OK)
        return status_wrap(err, "sampler");
    return STATUS_OK;
}

enum status gen_params_validate(const struct sd_model *model, const struct gen_params *p,
                                struct errbuf *err)
{
    if (!model || !p)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "gen_params: %s is NULL",
                           !model ? "model" : "params");
    enum status s = check_side("width", p->width, model->size_multiple, err);
    if (s == STATUS_OK)
        s = check_side("height", p->height, model->size_multiple, err);
    if (s == STATUS_OK)
        s = check_sampler(p, err);
    if (s == STATUS_OK)
        s = check_numbers(model, p, err);
    if (s == STATUS_OK)
        s = check_img2img(p, err);
    if (s == STATUS_OK)
        s = check_plan(model, p, err);
    return s;
}
