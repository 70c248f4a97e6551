/* models/sd_model.c — loading a Stable Diffusion checkpoint into one bundle. */
#include "models/sd_model.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/model_config.h"

void sd_model_options_default(struct sd_model_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->family = CHECKPOINT_FAMILY_AUTO;
    opt->prediction = CHECKPOINT_PREDICTION_AUTO;
}

/* The checkpoint's base name without a .safetensors extension. */
static void model_name(const char *path, char *out, size_t cap)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/')
        start--;
    size_t n = len - start;
    static const char ext[] = ".safetensors";
    if (n > sizeof ext - 1 && strncmp(path + len - (sizeof ext - 1), ext, sizeof ext - 1) == 0)
        n -= sizeof ext - 1;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, path + start, n);
    out[n] = '\0';
}

static enum status load_text(struct sd_model *m, const struct checkpoint *ck, struct errbuf *err)
{
    const struct weights *w;
    const json_t *cfg_json;
    struct clip_config cfg;
    enum status s = checkpoint_component(ck, CHECKPOINT_TEXT_ENCODER, &w, &cfg_json, err);
    if (s == STATUS_OK)
        s = clip_config_from_json(cfg_json, &cfg, err);
    if (s == STATUS_OK)
        s = clip_load(w, &cfg, m->backend, &m->clip, err);
    if (s == STATUS_OK)
        s = tokenizer_load_dir(checkpoint_tokenizer_dir(ck), &m->tokenizer, err);
    if (s != STATUS_OK)
        return s;
    m->context_len = tokenizer_max_length(m->tokenizer);
    if (m->context_len > clip_max_length(m->clip))
        return status_fail(err, STATUS_FORMAT,
                           "tokenizer: max_length %d exceeds the text encoder's %d positions",
                           m->context_len, clip_max_length(m->clip));
    m->context_dim = clip_hidden_size(m->clip);
    return STATUS_OK;
}

static enum status load_unet(struct sd_model *m, const struct checkpoint *ck, struct errbuf *err)
{
    const struct weights *w;
    const json_t *cfg_json;
    struct unet_config cfg;
    enum status s = checkpoint_component(ck, CHECKPOINT_UNET, &w, &cfg_json, err);
    if (s == STATUS_OK)
        s = unet_config_from_json(cfg_json, &cfg, err);
    if (s == STATUS_OK)
        s = unet_load(w, &cfg, m->backend, &m->unet, err);
    if (s != STATUS_OK)
        return s;
    if (unet_cross_attention_dim(m->unet) != m->context_dim)
        return status_fail(err, STATUS_FORMAT,
                           "unet: cross_attention_dim %d differs from the text encoder's "
                           "hidden_size %d",
                           unet_cross_attention_dim(m->unet), m->context_dim);
    int sample_size = 0;
    s = model_config_int(cfg_json, "sample_size", 0, &sample_size, err);
    if (s != STATUS_OK)
        return s;
    m->native_width = m->native_height = sample_size; /* latent pixels; scaled below */
    return STATUS_OK;
}

static enum status load_vae(struct sd_model *m, const struct checkpoint *ck, struct errbuf *err)
{
    const struct weights *w;
    const json_t *cfg_json;
    struct vae_config cfg;
    enum status s = checkpoint_component(ck, CHECKPOINT_VAE, &w, &cfg_json, err);
    if (s == STATUS_OK)
        s = vae_config_from_json(cfg_json, &cfg, err);
    if (s == STATUS_OK)
        s = vae_load(w, &cfg, m->backend, &m->vae, err);
    if (s != STATUS_OK)
        return s;
    m->latent_channels = cfg.latent_channels;
    if (unet_in_channels(m->unet) != m->latent_channels ||
        unet_out_channels(m->unet) != m->latent_channels)
        return status_fail(err, STATUS_FORMAT,
                           "unet: in/out_channels %d/%d differ from the VAE's latent_channels %d",
                           unet_in_channels(m->unet), unet_out_channels(m->unet),
                           m->latent_channels);
    m->downscale = vae_downscale(m->vae);
    m->size_multiple = m->downscale; /* the U-Net takes any latent size */
    return STATUS_OK;
}

static enum status load_schedule(struct sd_model *m, const struct checkpoint *ck,
                                 enum checkpoint_prediction prediction, struct errbuf *err)
{
    struct schedule_config cfg;
    enum status s = schedule_config_from_json(&cfg, checkpoint_scheduler_config(ck), err);
    if (s != STATUS_OK)
        return status_wrap(err, "scheduler config");
    if (prediction != CHECKPOINT_PREDICTION_AUTO) {
        cfg.prediction_type =
            prediction == CHECKPOINT_PREDICTION_V ? SCHEDULE_PRED_V : SCHEDULE_PRED_EPSILON;
        cfg.present |= 1ull << SCHEDULE_F_PREDICTION_TYPE;
    }
    return schedule_build(&m->schedule, &cfg, err);
}

/* The sampler behind the scheduler config's class (see the header). */
static enum sampler_kind default_sampler(const json_t *sched, const struct schedule_config *cfg)
{
    const char *cls = json_string_value(json_object_get(sched, "_class_name"));
    if (!cls)
        return SAMPLER_DPMPP_2M_KARRAS;
    if (strcmp(cls, "EulerDiscreteScheduler") == 0)
        return SAMPLER_EULER;
    if (strcmp(cls, "EulerAncestralDiscreteScheduler") == 0)
        return SAMPLER_EULER_A;
    if (strcmp(cls, "DDIMScheduler") == 0)
        return SAMPLER_DDIM;
    if (strcmp(cls, "DPMSolverMultistepScheduler") == 0)
        return cfg->use_karras_sigmas ? SAMPLER_DPMPP_2M_KARRAS : SAMPLER_DPMPP_2M;
    if (strcmp(cls, "DDPMScheduler") == 0)
        return SAMPLER_DDPM;
    if (strcmp(cls, "LCMScheduler") == 0)
        return SAMPLER_LCM;
    return SAMPLER_DPMPP_2M_KARRAS;
}

static void set_defaults(struct sd_model *m, const struct checkpoint *ck)
{
    const struct checkpoint_family_info *info = checkpoint_family_info(m->family);
    if (m->native_width > 0) {
        m->native_width *= m->downscale;
        m->native_height *= m->downscale;
    } else {
        m->native_width = m->native_height = info ? info->resolution : 512;
    }
    m->default_steps = info ? info->default_steps : 50;
    m->default_guidance = info ? info->default_guidance : 7.5;
    m->default_sampler = default_sampler(checkpoint_scheduler_config(ck), &m->schedule.config);
}

static enum status load_all(struct sd_model *m, const struct checkpoint *ck,
                            const struct sd_model_options *opt, struct errbuf *err)
{
    m->family = checkpoint_family(ck);
    m->layout = checkpoint_layout(ck);
    enum status s = load_text(m, ck, err);
    if (s == STATUS_OK)
        s = load_unet(m, ck, err);
    if (s == STATUS_OK)
        s = load_vae(m, ck, err);
    if (s == STATUS_OK)
        s = load_schedule(m, ck, opt->prediction, err);
    if (s == STATUS_OK)
        set_defaults(m, ck);
    return s;
}

/* A diffusers folder may carry diffusiond.json, the defaults its author recommends:
 *     {"default_steps": 20, "default_guidance": 5.0}
 * (keys optional; others are ignored).  Absent file: the family's defaults stay. */
static enum status load_folder_defaults(struct sd_model *m, const char *path, struct errbuf *err)
{
    char file[4096];
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return STATUS_OK;
    if ((size_t)snprintf(file, sizeof file, "%s/%s", path, SD_MODEL_DEFAULTS_FILE) >= sizeof file)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: path too long", path);
    if (stat(file, &st) != 0)
        return STATUS_OK;
    json_t *cfg;
    TRY(model_config_load(file, &cfg, err));
    enum status s = model_config_int(cfg, "default_steps", m->default_steps, &m->default_steps, err);
    if (s == STATUS_OK)
        s = model_config_float(cfg, "default_guidance", m->default_guidance,
                               &m->default_guidance, err);
    if (s == STATUS_OK && (m->default_steps < 1 || m->default_steps > 1000))
        s = status_fail(err, STATUS_FORMAT, "%s: default_steps %d is not in [1, 1000]", file,
                        m->default_steps);
    if (s == STATUS_OK && !(m->default_guidance >= 0 && m->default_guidance <= 100))
        s = status_fail(err, STATUS_FORMAT, "%s: default_guidance %g is not in [0, 100]", file,
                        m->default_guidance);
    json_decref(cfg);
    return s;
}

enum status sd_model_load(const char *path, const struct sd_model_options *opt,
                          struct sd_model **out, struct errbuf *err)
{
    *out = NULL;
    if (!path || !opt || !opt->backend)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sd_model_load: %s is required",
                           !path ? "path" : "options.backend");
    struct checkpoint_options ck_opt;
    checkpoint_options_default(&ck_opt);
    ck_opt.prefer_fp16 = opt->prefer_fp16;
    ck_opt.data_dir = opt->data_dir;
    ck_opt.family = opt->family;
    ck_opt.prediction = opt->prediction;
    ck_opt.config_dir = opt->config_dir;
    for (int c = 0; c < CHECKPOINT_COMPONENT_COUNT_; c++)
        ck_opt.config_override[c] = opt->config_override[c];
    ck_opt.cancelled = opt->cancelled;
    ck_opt.cancel_ctx = opt->cancel_ctx;
    struct checkpoint *ck;
    enum status s = checkpoint_open(path, &ck_opt, &ck, err);
    if (s != STATUS_OK)
        return s;
    struct sd_model *m = calloc(1, sizeof *m);
    if (!m) {
        checkpoint_close(ck);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "sd_model_load: model struct");
    }
    m->backend = opt->backend;
    model_name(path, m->name, sizeof m->name);
    s = load_all(m, ck, opt, err);
    checkpoint_close(ck);
    if (s == STATUS_OK)
        s = load_folder_defaults(m, path, err);
    if (s != STATUS_OK) {
        sd_model_free(m);
        return s;
    }
    *out = m;
    return STATUS_OK;
}

#ifndef DIFFUSIOND_DEFAULT_MODEL
#define DIFFUSIOND_DEFAULT_MODEL "models/default"
#endif

const char *sd_model_bundled_path(void)
{
    struct stat st;
    return stat(DIFFUSIOND_DEFAULT_MODEL, &st) == 0 && S_ISDIR(st.st_mode)
               ? DIFFUSIOND_DEFAULT_MODEL
               : NULL;
}

void sd_model_free(struct sd_model *m)
{
    if (!m)
        return;
    tokenizer_free(m->tokenizer);
    clip_free(m->clip);
    unet_free(m->unet);
    vae_free(m->vae);
    schedule_free(&m->schedule);
    free(m);
}
