/* models/checkpoint.c — opening a checkpoint in either layout, family detection; see
 * checkpoint.h.  Name maps: checkpoint_ldm.c; single-file configs: checkpoint_config.c. */
#include "models/checkpoint.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/checkpoint_internal.h"
#include "models/model_config.h"

#ifndef DIFFUSIOND_DATA_DIR
#define DIFFUSIOND_DATA_DIR "models/data"
#endif

#define CK_PATH_MAX 1024
#define N_WEIGHTED 3 /* unet, vae, text encoder */

struct checkpoint {
    char path[CK_PATH_MAX];
    enum checkpoint_layout layout;
    enum checkpoint_family family;
    struct safetensors *file; /* single file */
    struct ldm_layout lay;    /* single file: what the name maps need */
    struct weights *w[N_WEIGHTED];
    json_t *config[CHECKPOINT_COMPONENT_COUNT_];
    char tokenizer_dir[CK_PATH_MAX];
};

static const char *const COMPONENT_DIRS[CHECKPOINT_COMPONENT_COUNT_] = {
    [CHECKPOINT_UNET] = "unet",
    [CHECKPOINT_VAE] = "vae",
    [CHECKPOINT_TEXT_ENCODER] = "text_encoder",
    [CHECKPOINT_SCHEDULER] = "scheduler",
};

static const char *const CONFIG_FILES[CHECKPOINT_COMPONENT_COUNT_] = {
    [CHECKPOINT_UNET] = "config.json",
    [CHECKPOINT_VAE] = "config.json",
    [CHECKPOINT_TEXT_ENCODER] = "config.json",
    [CHECKPOINT_SCHEDULER] = "scheduler_config.json",
};

static const struct checkpoint_family_info FAMILIES[CHECKPOINT_FAMILY_COUNT_] = {
    [CHECKPOINT_FAMILY_SD1] = {"sd1", 512, 50, 7.5},
    [CHECKPOINT_FAMILY_SD2_BASE] = {"sd2-base", 512, 50, 7.5},
    [CHECKPOINT_FAMILY_SD2_V] = {"sd2-v", 768, 50, 7.5},
    [CHECKPOINT_FAMILY_SD_TURBO] = {"sd-turbo", 512, 1, 0.0},
};

/* --- small helpers ------------------------------------------------------------------ */

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static enum status join(char *out, size_t cap, const char *a, const char *b, struct errbuf *err)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s/%s: path too long", a, b);
    return STATUS_OK;
}

/* Case-insensitive substring test. */
static bool contains_ci(const char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (; s && *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && tolower((unsigned char)s[i]) == needle[i])
            i++;
        if (i == n)
            return true;
    }
    return false;
}

/* Loads a config that must exist: missing → NOT_FOUND, not JSON → FORMAT. */
static enum status load_required(const char *path, const char *what, json_t **out,
                                 struct errbuf *err)
{
    *out = NULL;
    if (!is_file(path))
        return status_fail(err, STATUS_NOT_FOUND, "%s: missing %s", path, what);
    return model_config_load(path, out, err);
}

/* Merges a copy of `override` over cfg (its keys win); the source stays cfg's. */
static enum status apply_override(json_t *cfg, const json_t *override, struct errbuf *err)
{
    if (!override)
        return STATUS_OK;
    if (!json_is_object(override))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: config override is not an object",
                           model_config_source(cfg));
    json_t *copy = json_deep_copy(override);
    json_t *src = json_incref(json_object_get(cfg, MODEL_CONFIG_SOURCE_KEY));
    int rc = copy ? json_object_update(cfg, copy) : -1;
    json_decref(copy);
    if (src)
        json_object_set(cfg, MODEL_CONFIG_SOURCE_KEY, src);
    json_decref(src);
    if (rc != 0)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", model_config_source(cfg));
    return STATUS_OK;
}

/* --- family ---------------------------------------------------------------------------- */

/* "_name_or_path" of any config (or the model index) mentions turbo. */
static bool configs_say_turbo(json_t *const *configs, int n)
{
    for (int i = 0; i < n; i++) {
        const char *s = configs[i] ? json_string_value(json_object_get(configs[i], "_name_or_path")) : NULL;
        if (contains_ci(s, "turbo"))
            return true;
    }
    return false;
}

/* sd-turbo's scheduler: Euler-type, trailing spacing, epsilon. */
static bool scheduler_says_turbo(const json_t *sched)
{
    const char *cls = json_string_value(json_object_get(sched, "_class_name"));
    const char *spacing = json_string_value(json_object_get(sched, "timestep_spacing"));
    const char *pred = json_string_value(json_object_get(sched, "prediction_type"));
    return cls && strncmp(cls, "Euler", 5) == 0 && spacing && strcmp(spacing, "trailing") == 0 &&
           (!pred || strcmp(pred, "epsilon") == 0);
}

/* Within SD2: turbo, else by prediction type. */
static enum checkpoint_family sd2_variant(bool turbo, bool v_pred)
{
    if (turbo)
        return CHECKPOINT_FAMILY_SD_TURBO;
    return v_pred ? CHECKPOINT_FAMILY_SD2_V : CHECKPOINT_FAMILY_SD2_BASE;
}

static bool family_is_sd2(enum checkpoint_family f)
{
    return f == CHECKPOINT_FAMILY_SD2_BASE || f == CHECKPOINT_FAMILY_SD2_V ||
           f == CHECKPOINT_FAMILY_SD_TURBO;
}

static enum status sd2_variant_from_configs(struct checkpoint *ck, const json_t *index,
                                            const struct checkpoint_options *opt,
                                            struct errbuf *err);

/* A diffusers folder: SD1 or SD2 from the text tower, then the SD2 variant. */
static enum status folder_family(struct checkpoint *ck, const json_t *index,
                                 const struct checkpoint_options *opt, struct errbuf *err)
{
    int cross;
    const char *act;
    const json_t *unet = ck->config[CHECKPOINT_UNET], *text = ck->config[CHECKPOINT_TEXT_ENCODER];
    enum status s = model_config_int(unet, "cross_attention_dim", 1280, &cross, err);
    if (s == STATUS_OK)
        s = model_config_string(text, "hidden_act", "quick_gelu", &act, err);
    if (s != STATUS_OK)
        return s;
    bool sd2 = cross == 1024 || (cross != 768 && strcmp(act, "gelu") == 0);
    if (opt->family != CHECKPOINT_FAMILY_AUTO) {
        ck->family = opt->family;
        return STATUS_OK;
    }
    if (!sd2) {
        ck->family = CHECKPOINT_FAMILY_SD1;
        return STATUS_OK;
    }
    return sd2_variant_from_configs(ck, index, opt, err);
}

/* Within SD2, from the configs: turbo hints, else the scheduler's prediction type. */
static enum status sd2_variant_from_configs(struct checkpoint *ck, const json_t *index,
                                            const struct checkpoint_options *opt,
                                            struct errbuf *err)
{
    const char *pred;
    enum status s = model_config_string(ck->config[CHECKPOINT_SCHEDULER], "prediction_type",
                                        "epsilon", &pred, err);
    if (s != STATUS_OK)
        return s;
    bool v = opt->prediction == CHECKPOINT_PREDICTION_AUTO ? strcmp(pred, "v_prediction") == 0
                                                           : opt->prediction == CHECKPOINT_PREDICTION_V;
    json_t *all[CHECKPOINT_COMPONENT_COUNT_ + 1];
    memcpy(all, ck->config, sizeof ck->config);
    all[CHECKPOINT_COMPONENT_COUNT_] = (json_t *)index;
    bool turbo = configs_say_turbo(all, CHECKPOINT_COMPONENT_COUNT_ + 1) ||
                 scheduler_says_turbo(ck->config[CHECKPOINT_SCHEDULER]);
    ck->family = sd2_variant(turbo, v);
    return STATUS_OK;
}

/* A single SD2 file: the variant from options, else the SAI model-spec metadata,
 * else 768-v (diffusers' from_single_file default for SD2). */
static enum checkpoint_family single_sd2_family(const struct safetensors *st,
                                                const struct checkpoint_options *opt)
{
    const char *arch = safetensors_metadata_get(st, "modelspec.architecture");
    const char *title = safetensors_metadata_get(st, "modelspec.title");
    const char *pred = safetensors_metadata_get(st, "modelspec.prediction_type");
    const char *base = strrchr(safetensors_path(st), '/');
    base = base ? base + 1 : safetensors_path(st);
    bool turbo = contains_ci(arch, "turbo") || contains_ci(title, "turbo");
    if (!arch && !title)
        turbo = contains_ci(base, "turbo");
    bool v = true;
    if (opt->prediction != CHECKPOINT_PREDICTION_AUTO)
        v = opt->prediction == CHECKPOINT_PREDICTION_V;
    else if (pred)
        v = pred[0] == 'v';
    else if (arch)
        v = contains_ci(arch, "768-v");
    else if (turbo)
        v = false;
    else if (contains_ci(base, "768"))
        v = true; /* v2-1_768-ema-pruned, 768-v-ema */
    else if (contains_ci(base, "512") || contains_ci(base, "base"))
        v = false; /* v2-1_512-ema-pruned, 512-base-ema */
    return sd2_variant(turbo, v);
}

/* --- diffusers folder ---------------------------------------------------------------- */

static enum status folder_component(struct checkpoint *ck, enum checkpoint_component c,
                                    const struct checkpoint_options *opt, struct errbuf *err)
{
    char dir[CK_PATH_MAX], cfg[CK_PATH_MAX];
    enum status s = join(dir, sizeof dir, ck->path, COMPONENT_DIRS[c], err);
    if (s != STATUS_OK)
        return s;
    if (!is_dir(dir))
        return status_fail(err, STATUS_NOT_FOUND, "%s: missing component folder", dir);
    if ((s = join(cfg, sizeof cfg, dir, CONFIG_FILES[c], err)) != STATUS_OK)
        return s;
    if ((s = load_required(cfg, "component config", &ck->config[c], err)) != STATUS_OK)
        return s;
    if ((s = apply_override(ck->config[c], opt->config_override[c], err)) != STATUS_OK)
        return s;
    if (c == CHECKPOINT_SCHEDULER)
        return STATUS_OK;
    return weights_open_dir(dir, opt->prefer_fp16, &ck->w[c], err);
}

static enum status folder_tokenizer(struct checkpoint *ck, struct errbuf *err)
{
    static const char *const files[] = {"vocab.json", "merges.txt"};
    char path[CK_PATH_MAX];
    enum status s = join(ck->tokenizer_dir, sizeof ck->tokenizer_dir, ck->path, "tokenizer", err);
    if (s != STATUS_OK)
        return s;
    if (!is_dir(ck->tokenizer_dir))
        return status_fail(err, STATUS_NOT_FOUND, "%s: missing component folder", ck->tokenizer_dir);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if ((s = join(path, sizeof path, ck->tokenizer_dir, files[i], err)) != STATUS_OK)
            return s;
        if (!is_file(path))
            return status_fail(err, STATUS_NOT_FOUND, "%s: missing tokenizer file", path);
    }
    return STATUS_OK;
}

/* model_index.json lists `key` as ["library", "Class"] (not [null, null]). */
static bool index_names_component(const json_t *index, const char *key)
{
    const json_t *v = json_object_get(index, key);
    return json_is_array(v) && json_is_string(json_array_get(v, 1));
}

static enum status open_folder(struct checkpoint *ck, const struct checkpoint_options *opt,
                               struct errbuf *err)
{
    char path[CK_PATH_MAX];
    json_t *index = NULL;
    ck->layout = CHECKPOINT_LAYOUT_DIFFUSERS;
    enum status s = join(path, sizeof path, ck->path, "model_index.json", err);
    if (s == STATUS_OK && !is_file(path))
        s = status_fail(err, STATUS_NOT_FOUND, "%s: no model_index.json: not a diffusers folder",
                        ck->path);
    if (s == STATUS_OK)
        s = model_config_load(path, &index, err);
    if (s == STATUS_OK && index_names_component(index, "text_encoder_2"))
        s = status_fail(err, STATUS_UNSUPPORTED,
                        "%s: an SDXL pipeline (text_encoder_2 in model_index.json): not supported yet",
                        ck->path);
    for (int c = 0; s == STATUS_OK && c < CHECKPOINT_COMPONENT_COUNT_; c++)
        s = folder_component(ck, (enum checkpoint_component)c, opt, err);
    if (s == STATUS_OK)
        s = folder_tokenizer(ck, err);
    if (s == STATUS_OK)
        s = folder_family(ck, index, opt, err);
    json_decref(index);
    return s;
}

/* --- single file ---------------------------------------------------------------------- */

static bool has_prefix(const struct safetensors *st, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < safetensors_count(st); i++)
        if (strncmp(safetensors_at(st, i)->name, prefix, n) == 0)
            return true;
    return false;
}

/* SD1 (CLIP, HF names) or SD2 (OpenCLIP) text tower; FORMAT when neither. */
static enum status single_text_tower(struct checkpoint *ck, bool *openclip,
                                     struct errbuf *err)
{
    if (!has_prefix(ck->file, LDM_UNET_PREFIX))
        return status_fail(err, STATUS_FORMAT,
                           "%s: no " LDM_UNET_PREFIX "* tensors: not a Stable Diffusion checkpoint",
                           ck->path);
    if (has_prefix(ck->file, "conditioner.embedders."))
        return status_fail(err, STATUS_UNSUPPORTED,
                           "%s: an SDXL checkpoint (conditioner.embedders.*): not supported yet",
                           ck->path);
    if (has_prefix(ck->file, LDM_CLIP_PREFIX "text_model.")) {
        *openclip = false;
        return STATUS_OK;
    }
    if (has_prefix(ck->file, LDM_CLIP_PREFIX "embeddings.")) {
        *openclip = false;
        ck->lay.clip_legacy = true;
        return STATUS_OK;
    }
    if (has_prefix(ck->file, LDM_OPENCLIP_PREFIX)) {
        *openclip = true;
        return STATUS_OK;
    }
    return status_fail(err, STATUS_FORMAT,
                       "%s: no text encoder (" LDM_CLIP_PREFIX "text_model.* or " LDM_OPENCLIP_PREFIX
                       "*): not a Stable Diffusion 1.x/2.x checkpoint", ck->path);
}

/* The configs from opt->config_dir (as a diffusers folder's). */
static enum status configs_from_dir(struct checkpoint *ck, const char *dir, struct errbuf *err)
{
    char sub[CK_PATH_MAX], path[CK_PATH_MAX];
    enum status s = STATUS_OK;
    for (int c = 0; s == STATUS_OK && c < CHECKPOINT_COMPONENT_COUNT_; c++) {
        s = join(sub, sizeof sub, dir, COMPONENT_DIRS[c], err);
        if (s == STATUS_OK)
            s = join(path, sizeof path, sub, CONFIG_FILES[c], err);
        if (s == STATUS_OK)
            s = load_required(path, "component config", &ck->config[c], err);
    }
    return s;
}

static enum status synthesise_configs(struct checkpoint *ck, bool openclip, struct errbuf *err)
{
    bool v = ck->family == CHECKPOINT_FAMILY_SD2_V;
    int res = FAMILIES[ck->family].resolution;
    enum status s = ckcfg_unet(ck->file, openclip, v, &ck->config[CHECKPOINT_UNET], err);
    if (s == STATUS_OK)
        s = ckcfg_vae(ck->file, res, &ck->config[CHECKPOINT_VAE], err);
    if (s == STATUS_OK)
        s = ckcfg_text(ck->file, openclip, ck->lay.clip_legacy, &ck->config[CHECKPOINT_TEXT_ENCODER],
                       err);
    if (s == STATUS_OK)
        s = ckcfg_scheduler(ck->path, ck->family, &ck->config[CHECKPOINT_SCHEDULER], err);
    return s;
}

static enum status single_configs(struct checkpoint *ck, bool openclip,
                                  const struct checkpoint_options *opt, struct errbuf *err)
{
    enum status s = opt->config_dir ? configs_from_dir(ck, opt->config_dir, err)
                                    : synthesise_configs(ck, openclip, err);
    for (int c = 0; s == STATUS_OK && c < CHECKPOINT_COMPONENT_COUNT_; c++)
        s = apply_override(ck->config[c], opt->config_override[c], err);
    if (s == STATUS_OK)
        s = ckcfg_check_unet(ck->config[CHECKPOINT_UNET], err);
    if (s == STATUS_OK)
        s = ckcfg_check_vae(ck->config[CHECKPOINT_VAE], err);
    if (s == STATUS_OK)
        s = ckcfg_check_text(ck->config[CHECKPOINT_TEXT_ENCODER], err);
    return s;
}

static enum status single_weights(struct checkpoint *ck, struct errbuf *err)
{
    static const weights_ref_map_fn maps[N_WEIGHTED] = {ldm_map_unet, ldm_map_vae, ldm_map_text};
    char label[CK_PATH_MAX + 32];
    enum status s = STATUS_OK;
    for (int c = 0; s == STATUS_OK && c < N_WEIGHTED; c++) {
        snprintf(label, sizeof label, "%s [%s]", ck->path, COMPONENT_DIRS[c]);
        s = weights_open_mapped_ref(ck->file, label, maps[c], &ck->lay, &ck->w[c], err);
    }
    return s;
}

static enum status single_tokenizer(struct checkpoint *ck, bool openclip,
                                    const struct checkpoint_options *opt, struct errbuf *err)
{
    const char *data = opt->data_dir ? opt->data_dir : DIFFUSIOND_DATA_DIR;
    int n = snprintf(ck->tokenizer_dir, sizeof ck->tokenizer_dir, "%s/clip-bpe/%s", data,
                     openclip ? "sd2" : "sd1");
    if (n < 0 || (size_t)n >= sizeof ck->tokenizer_dir)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: data_dir path too long", data);
    char vocab[CK_PATH_MAX];
    enum status s = join(vocab, sizeof vocab, ck->tokenizer_dir, "vocab.json", err);
    if (s == STATUS_OK && !is_file(vocab))
        s = status_fail(err, STATUS_NOT_FOUND,
                        "%s: bundled CLIP vocabulary missing (set checkpoint_options.data_dir)", vocab);
    return s;
}

/* opt->family (which must match the text tower), else by the rules in checkpoint.h. */
static enum status single_family(struct checkpoint *ck, bool openclip,
                                 const struct checkpoint_options *opt, struct errbuf *err)
{
    if (opt->family == CHECKPOINT_FAMILY_AUTO) {
        ck->family = openclip ? single_sd2_family(ck->file, opt) : CHECKPOINT_FAMILY_SD1;
        return STATUS_OK;
    }
    if (family_is_sd2(opt->family) != openclip)
        return status_fail(err, STATUS_FORMAT, "%s: family %s asked for, but the text encoder is %s",
                           ck->path, checkpoint_family_name(opt->family),
                           openclip ? "OpenCLIP (SD2)" : "CLIP ViT-L (SD1)");
    ck->family = opt->family;
    return STATUS_OK;
}

/* A hint for the pickle formats we never load. */
static enum status not_safetensors(const char *path, struct errbuf *err)
{
    static const char *const pickles[] = {".ckpt", ".pt", ".pth", ".bin"};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof pickles / sizeof pickles[0]; i++) {
        size_t k = strlen(pickles[i]);
        if (n > k && strcmp(path + n - k, pickles[i]) == 0)
            return status_wrap(err, "not a safetensors checkpoint (%s files are Python pickles, "
                                    "which are never loaded: convert it to .safetensors)",
                               pickles[i]);
    }
    return status_wrap(err, "not a safetensors checkpoint");
}

static enum status open_single(struct checkpoint *ck, const struct checkpoint_options *opt,
                               struct errbuf *err)
{
    ck->layout = CHECKPOINT_LAYOUT_SINGLE_FILE;
    enum status s = safetensors_open(ck->path, &ck->file, err);
    if (s == STATUS_FORMAT)
        return not_safetensors(ck->path, err);
    bool openclip = false;
    if (s == STATUS_OK)
        s = single_text_tower(ck, &openclip, err);
    if (s != STATUS_OK)
        return s;
    if ((s = single_family(ck, openclip, opt, err)) != STATUS_OK)
        return s;
    if ((s = single_configs(ck, openclip, opt, err)) != STATUS_OK)
        return s;
    /* configs from a diffusers folder: its scheduler knows the prediction type */
    if (opt->config_dir && openclip && opt->family == CHECKPOINT_FAMILY_AUTO &&
        (s = sd2_variant_from_configs(ck, NULL, opt, err)) != STATUS_OK)
        return s;
    bool legacy = ck->lay.clip_legacy;
    s = ldm_layout_from_configs(&ck->lay, ck->config[CHECKPOINT_UNET], ck->config[CHECKPOINT_VAE],
                                ck->config[CHECKPOINT_TEXT_ENCODER], openclip, err);
    ck->lay.clip_legacy = legacy;
    if (s == STATUS_OK)
        s = single_weights(ck, err);
    if (s == STATUS_OK)
        s = single_tokenizer(ck, openclip, opt, err);
    return s;
}

/* --- public ---------------------------------------------------------------------------- */

void checkpoint_options_default(struct checkpoint_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

enum status checkpoint_open(const char *path, const struct checkpoint_options *opt,
                            struct checkpoint **out, struct errbuf *err)
{
    struct checkpoint_options defaults;
    *out = NULL;
    if (!opt) {
        checkpoint_options_default(&defaults);
        opt = &defaults;
    }
    if ((unsigned)opt->family >= CHECKPOINT_FAMILY_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: options.family out of range", path);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return status_fail(err, STATUS_NOT_FOUND, "%s: no such file or directory", path);
    if (strlen(path) >= CK_PATH_MAX)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: path too long", path);
    struct checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    snprintf(ck->path, sizeof ck->path, "%s", path);
    enum status s = S_ISDIR(sb.st_mode) ? open_folder(ck, opt, err) : open_single(ck, opt, err);
    if (s != STATUS_OK) {
        checkpoint_close(ck);
        return s;
    }
    for (int c = 0; c < N_WEIGHTED && opt->cancelled; c++)
        if (ck->w[c])
            weights_set_cancel(ck->w[c], opt->cancelled, opt->cancel_ctx);
    *out = ck;
    return STATUS_OK;
}

void checkpoint_close(struct checkpoint *ck)
{
    if (!ck)
        return;
    for (int c = 0; c < N_WEIGHTED; c++)
        weights_close(ck->w[c]);
    for (int c = 0; c < CHECKPOINT_COMPONENT_COUNT_; c++)
        json_decref(ck->config[c]);
    safetensors_close(ck->file);
    free(ck);
}

enum checkpoint_layout checkpoint_layout(const struct checkpoint *ck)
{
    return ck->layout;
}

enum checkpoint_family checkpoint_family(const struct checkpoint *ck)
{
    return ck->family;
}

const struct checkpoint_family_info *checkpoint_family_info(enum checkpoint_family f)
{
    if (f <= CHECKPOINT_FAMILY_AUTO || f >= CHECKPOINT_FAMILY_COUNT_)
        return NULL;
    return &FAMILIES[f];
}

const char *checkpoint_family_name(enum checkpoint_family f)
{
    const struct checkpoint_family_info *info = checkpoint_family_info(f);
    return info ? info->name : "auto";
}

bool checkpoint_family_parse(const char *name, enum checkpoint_family *out)
{
    for (int f = CHECKPOINT_FAMILY_SD1; f < CHECKPOINT_FAMILY_COUNT_; f++)
        if (strcmp(name, FAMILIES[f].name) == 0) {
            *out = (enum checkpoint_family)f;
            return true;
        }
    return false;
}

enum status checkpoint_component(const struct checkpoint *ck, enum checkpoint_component c,
                                 const struct weights **w, const json_t **config,
                                 struct errbuf *err)
{
    if ((unsigned)c >= CHECKPOINT_COMPONENT_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: component %d out of range",
                           ck->path, (int)c);
    if (w)
        *w = (int)c < N_WEIGHTED ? ck->w[c] : NULL;
    if (config)
        *config = ck->config[c];
    return STATUS_OK;
}

const char *checkpoint_tokenizer_dir(const struct checkpoint *ck)
{
    return ck->tokenizer_dir;
}

const json_t *checkpoint_scheduler_config(const struct checkpoint *ck)
{
    return ck->config[CHECKPOINT_SCHEDULER];
}

const char *checkpoint_path(const struct checkpoint *ck)
{
    return ck->path;
}

/* --- tensors the map leaves out on purpose ------------------------------------------- */

static const char *const UNUSED_EXACT[] = {
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "logvar", "model.logvar",
    LDM_CLIP_PREFIX "text_model.embeddings.position_ids", LDM_CLIP_PREFIX "embeddings.position_ids",
    LDM_OPENCLIP_PREFIX "logit_scale", LDM_OPENCLIP_PREFIX "text_projection",
    LDM_OPENCLIP_PREFIX "attn_mask",
};

static const char *const UNUSED_PREFIXES[] = {"model_ema.", "first_stage_model.loss."};

bool checkpoint_tensor_unused(const char *name, int text_layers)
{
    for (size_t i = 0; i < sizeof UNUSED_EXACT / sizeof UNUSED_EXACT[0]; i++)
        if (strcmp(name, UNUSED_EXACT[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof UNUSED_PREFIXES / sizeof UNUSED_PREFIXES[0]; i++)
        if (strncmp(name, UNUSED_PREFIXES[i], strlen(UNUSED_PREFIXES[i])) == 0)
            return true;
    static const char resblocks[] = LDM_OPENCLIP_PREFIX "transformer.resblocks.";
    if (strncmp(name, resblocks, sizeof resblocks - 1) == 0)
        return atoi(name + sizeof resblocks - 1) >= text_layers;
    static const char layers[] = LDM_CLIP_PREFIX "text_model.encoder.layers.";
    if (strncmp(name, layers, sizeof layers - 1) == 0)
        return atoi(name + sizeof layers - 1) >= text_layers;
    static const char old_layers[] = LDM_CLIP_PREFIX "encoder.layers.";
    if (strncmp(name, old_layers, sizeof old_layers - 1) == 0)
        return atoi(name + sizeof old_layers - 1) >= text_layers;
    return false;
}
