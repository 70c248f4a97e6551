/* tests/unit/test_checkpoint.c — models/checkpoint: both layouts of sd1-tiny and
 * sd2-tiny, family detection, configs synthesised from shapes equal to the diffusers
 * ones, the single-file name map proven tensor by tensor (every diffusers tensor found
 * with identical values, no file tensor left unmapped but the known-unused ones), the
 * bundled tokenizer, and every malformed-checkpoint case with its error. */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/workspace.h"
#include "models/checkpoint.h"
#include "models/clip.h"
#include "models/model_config.h"
#include "models/schedule.h"
#include "models/tokenizer.h"
#include "models/unet.h"
#include "models/vae.h"
#include "tests/testutil.h"

#define SD DIFFUSIOND_SOURCE_DIR "/tests/fixtures/sd"
#define SD1_DIR SD "/sd1-tiny/diffusers"
#define SD2_DIR SD "/sd2-tiny/diffusers"
#define SD1_FILE SD "/sd1-tiny/sd1-tiny.safetensors"
#define SD2_FILE SD "/sd2-tiny/sd2-tiny.safetensors"

/* --- helpers ------------------------------------------------------------------------- */

static struct checkpoint *open_ok(const char *path, const struct checkpoint_options *opt)
{
    struct checkpoint *ck;
    struct errbuf err;
    enum status s = checkpoint_open(path, opt, &ck, &err);
    ck_assert_msg(s == STATUS_OK, "%s: %s", path, err.msg);
    return ck;
}

static struct checkpoint *open_single(const char *path, bool sd2,
                                      struct checkpoint_options *opt)
{
    struct test_overrides ov;
    test_tiny_overrides(sd2, &ov, opt->config_override);
    struct checkpoint *ck = open_ok(path, opt);
    test_overrides_free(&ov); /* merged at open, not kept */
    return ck;
}

static void expect_fail(const char *path, const struct checkpoint_options *opt,
                        enum status want, const char *needle1, const char *needle2)
{
    struct checkpoint *ck = (struct checkpoint *)1;
    struct errbuf err;
    enum status s = checkpoint_open(path, opt, &ck, &err);
    ck_assert_msg(s == want, "%s: status %s, want %s (%s)", path, status_name(s),
                  status_name(want), s ? err.msg : "");
    ck_assert_ptr_null(ck);
    ck_assert_msg(strstr(err.msg, needle1), "'%s' not in: %s", needle1, err.msg);
    ck_assert_msg(!needle2 || strstr(err.msg, needle2), "'%s' not in: %s", needle2, err.msg);
}

static void make_tmpdir(char *buf)
{
    strcpy(buf, "/tmp/test_checkpoint_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Copies a safetensors file with changes: `drop` is left out; `change` gets a new
 * shape/dtype/data; metadata may be added. */
struct tensor_change {
    const char *name;
    enum safetensors_dtype dtype;
    int ndim;
    int64_t shape[4];
};

static void rewrite(const char *src, const char *dst, const char *drop,
                    const struct tensor_change *change, const struct safetensors_kv *meta,
                    size_t n_meta)
{
    struct safetensors *st;
    struct errbuf err;
    ck_assert_int_eq(safetensors_open(src, &st, &err), STATUS_OK);
    size_t n = safetensors_count(st), k = 0;
    struct safetensors_write_tensor *wt = calloc(n, sizeof *wt);
    void *zeros = calloc(1, 1 << 16);
    for (size_t i = 0; i < n; i++) {
        const struct safetensors_tensor *t = safetensors_at(st, i);
        if (drop && strcmp(t->name, drop) == 0)
            continue;
        wt[k] = (struct safetensors_write_tensor){t->name, t->dtype, t->ndim, t->shape, t->data};
        if (change && strcmp(t->name, change->name) == 0)
            wt[k] = (struct safetensors_write_tensor){t->name, change->dtype, change->ndim,
                                                      change->shape, zeros};
        k++;
    }
    ck_assert_msg(safetensors_write(dst, wt, k, meta, n_meta, &err) == STATUS_OK, "%s", err.msg);
    free(zeros);
    free(wt);
    safetensors_close(st);
}

static void fake_folder(char *dir, const char *skip, bool index);

/* --- layouts and families -------------------------------------------------------------- */

START_TEST(test_diffusers_sd1)
{
    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    struct checkpoint *ck = open_ok(SD1_DIR, &opt);
    ck_assert_int_eq(checkpoint_layout(ck), CHECKPOINT_LAYOUT_DIFFUSERS);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD1);
    ck_assert_str_eq(checkpoint_family_name(checkpoint_family(ck)), "sd1");
    ck_assert_str_eq(checkpoint_tokenizer_dir(ck), SD1_DIR "/tokenizer");
    const struct weights *w;
    const json_t *cfg;
    struct errbuf err;
    for (int c = 0; c < CHECKPOINT_SCHEDULER; c++) {
        ck_assert_int_eq(checkpoint_component(ck, c, &w, &cfg, &err), STATUS_OK);
        ck_assert_ptr_nonnull(w);
        ck_assert_ptr_nonnull(cfg);
        ck_assert_ptr_null(strstr(weights_label(w), ".fp16."));
    }
    ck_assert_int_eq(checkpoint_component(ck, CHECKPOINT_SCHEDULER, &w, &cfg, &err), STATUS_OK);
    ck_assert_ptr_null(w);
    ck_assert_str_eq(json_string_value(json_object_get(cfg, "_class_name")), "PNDMScheduler");
    ck_assert_ptr_eq(cfg, checkpoint_scheduler_config(ck));
    ck_assert_int_eq(checkpoint_component(ck, CHECKPOINT_COMPONENT_COUNT_, &w, &cfg, &err),
                     STATUS_INVALID_ARGUMENT);
    checkpoint_close(ck);

    opt.prefer_fp16 = true; /* unet and vae have .fp16 variants; text_encoder has not */
    ck = open_ok(SD1_DIR, &opt);
    checkpoint_component(ck, CHECKPOINT_UNET, &w, NULL, &err);
    ck_assert_ptr_nonnull(strstr(weights_label(w), "diffusion_pytorch_model.fp16.safetensors"));
    checkpoint_component(ck, CHECKPOINT_TEXT_ENCODER, &w, NULL, &err);
    ck_assert_ptr_nonnull(strstr(weights_label(w), "model.safetensors"));
    checkpoint_close(ck);
}
END_TEST

START_TEST(test_diffusers_sd2_and_overrides)
{
    struct checkpoint *ck = open_ok(SD2_DIR, NULL);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD2_V);
    checkpoint_close(ck);

    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    opt.prediction = CHECKPOINT_PREDICTION_EPSILON;
    ck = open_ok(SD2_DIR, &opt);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD2_BASE);
    checkpoint_close(ck);

    /* SD-Turbo's scheduler (Euler, trailing, epsilon) through a config override */
    checkpoint_options_default(&opt);
    json_t *sched = json_pack("{s:s, s:s, s:s}", "_class_name", "EulerDiscreteScheduler",
                              "timestep_spacing", "trailing", "prediction_type", "epsilon");
    opt.config_override[CHECKPOINT_SCHEDULER] = sched;
    ck = open_ok(SD2_DIR, &opt);
    json_decref(sched);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD_TURBO);
    const struct checkpoint_family_info *info = checkpoint_family_info(checkpoint_family(ck));
    ck_assert_int_eq(info->default_steps, 1);
    ck_assert_double_eq(info->default_guidance, 0.0);
    ck_assert_str_eq(model_config_source(checkpoint_scheduler_config(ck)),
                     SD2_DIR "/scheduler/scheduler_config.json");
    checkpoint_close(ck);

    /* or its _name_or_path */
    checkpoint_options_default(&opt);
    json_t *unet = json_pack("{s:s}", "_name_or_path", "stabilityai/SD-Turbo");
    opt.config_override[CHECKPOINT_UNET] = unet;
    ck = open_ok(SD2_DIR, &opt);
    json_decref(unet);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD_TURBO);
    checkpoint_close(ck);

    checkpoint_options_default(&opt);
    opt.family = CHECKPOINT_FAMILY_SD2_BASE;
    ck = open_ok(SD2_DIR, &opt);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD2_BASE);
    checkpoint_close(ck);
}
END_TEST

START_TEST(test_family_table)
{
    enum checkpoint_family f;
    ck_assert(checkpoint_family_parse("sd2-v", &f));
    ck_assert_int_eq(f, CHECKPOINT_FAMILY_SD2_V);
    ck_assert_int_eq(checkpoint_family_info(f)->resolution, 768);
    ck_assert(checkpoint_family_parse("sd1", &f));
    ck_assert_int_eq(checkpoint_family_info(f)->resolution, 512);
    ck_assert_int_eq(checkpoint_family_info(f)->default_steps, 50);
    ck_assert(!checkpoint_family_parse("sdxl", &f));
    ck_assert_ptr_null(checkpoint_family_info(CHECKPOINT_FAMILY_AUTO));
}
END_TEST

/* The synthesised config has the diffusers folder's value for every listed key. */
static void expect_same_keys(const json_t *got, const char *ref_path, const char *const *keys)
{
    json_t *ref;
    struct errbuf err;
    ck_assert_msg(model_config_load(ref_path, &ref, &err) == STATUS_OK, "%s", err.msg);
    for (int i = 0; keys[i]; i++) {
        json_t *a = json_object_get(got, keys[i]), *b = json_object_get(ref, keys[i]);
        char *sa = a ? json_dumps(a, JSON_ENCODE_ANY) : NULL;
        char *sb = b ? json_dumps(b, JSON_ENCODE_ANY) : NULL;
        ck_assert_msg(a && b && json_equal(a, b), "%s: key '%s': got %s, want %s", ref_path,
                      keys[i], sa ? sa : "(absent)", sb ? sb : "(absent)");
        free(sa);
        free(sb);
    }
    json_decref(ref);
}

static const char *const UNET_KEYS[] = {
    "in_channels", "out_channels", "block_out_channels", "layers_per_block",
    "down_block_types", "up_block_types", "mid_block_type", "cross_attention_dim",
    "use_linear_projection", "transformer_layers_per_block", "upcast_attention",
    "attention_head_dim", "num_attention_heads", "norm_num_groups", "norm_eps", "act_fn",
    "flip_sin_to_cos", "freq_shift", "downsample_padding", "center_input_sample",
    "mid_block_scale_factor", "conv_in_kernel", "conv_out_kernel", "time_embedding_type",
    "resnet_time_scale_shift", "only_cross_attention", "dual_cross_attention", NULL};
static const char *const VAE_KEYS[] = {
    "in_channels", "out_channels", "latent_channels", "block_out_channels",
    "layers_per_block", "down_block_types", "up_block_types", "norm_num_groups",
    "scaling_factor", "use_quant_conv", "use_post_quant_conv", "mid_block_add_attention",
    "act_fn", "force_upcast", NULL};
static const char *const TEXT_KEYS[] = {
    "vocab_size", "max_position_embeddings", "hidden_size", "intermediate_size",
    "num_hidden_layers", "num_attention_heads", "hidden_act", "layer_norm_eps",
    "bos_token_id", "eos_token_id", "pad_token_id", "projection_dim", NULL};
static const char *const SCHED_KEYS[] = {
    "_class_name", "beta_start", "beta_end", "beta_schedule", "num_train_timesteps",
    "prediction_type", "timestep_spacing", "steps_offset", "set_alpha_to_one", "clip_sample",
    "skip_prk_steps", NULL};

/* A single file: the tiny ones with their head/group overrides, full-size ones
 * (standard widths) with none. */
static struct checkpoint *open_file(const char *file, bool sd2, bool tiny)
{
    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    return tiny ? open_single(file, sd2, &opt) : open_ok(file, &opt);
}

static const char *const SAMPLE_SIZE[] = {"sample_size", NULL};

static void check_single_configs(const char *file, const char *dir, bool sd2, bool tiny)
{
    struct checkpoint *ck = open_file(file, sd2, tiny);
    ck_assert_int_eq(checkpoint_layout(ck), CHECKPOINT_LAYOUT_SINGLE_FILE);
    ck_assert_int_eq(checkpoint_family(ck), sd2 ? CHECKPOINT_FAMILY_SD2_V : CHECKPOINT_FAMILY_SD1);
    const json_t *cfg;
    struct errbuf err;
    char ref[1024];
    static const char *const *const keys[] = {UNET_KEYS, VAE_KEYS, TEXT_KEYS, SCHED_KEYS};
    static const char *const files[] = {"unet/config.json", "vae/config.json",
                                        "text_encoder/config.json",
                                        "scheduler/scheduler_config.json"};
    for (int c = 0; c < CHECKPOINT_COMPONENT_COUNT_; c++) {
        ck_assert_int_eq(checkpoint_component(ck, c, NULL, &cfg, &err), STATUS_OK);
        ck_assert_ptr_nonnull(strstr(model_config_source(cfg), file));
        snprintf(ref, sizeof ref, "%s/%s", dir, files[c]);
        expect_same_keys(cfg, ref, keys[c]);
        if (!tiny && c != CHECKPOINT_TEXT_ENCODER && c != CHECKPOINT_SCHEDULER)
            expect_same_keys(cfg, ref, SAMPLE_SIZE); /* the tiny models are 64 px */
    }
    checkpoint_close(ck);
}

START_TEST(test_single_configs_from_shapes)
{
    check_single_configs(SD1_FILE, SD1_DIR, false, true);
    check_single_configs(SD2_FILE, SD2_DIR, true, true);
}
END_TEST

START_TEST(test_single_config_dir)
{
    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    opt.config_dir = SD2_DIR;
    struct checkpoint *ck = open_ok(SD2_FILE, &opt);
    const json_t *cfg;
    struct errbuf err;
    checkpoint_component(ck, CHECKPOINT_UNET, NULL, &cfg, &err);
    ck_assert_str_eq(model_config_source(cfg), SD2_DIR "/unet/config.json");
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD2_V);
    checkpoint_close(ck);

    /* the folder's scheduler decides the SD2 variant, as for a folder */
    json_t *sched = json_pack("{s:s}", "prediction_type", "epsilon");
    opt.config_override[CHECKPOINT_SCHEDULER] = sched;
    ck = open_ok(SD2_FILE, &opt);
    json_decref(sched);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD2_BASE);
    checkpoint_close(ck);
}
END_TEST

START_TEST(test_single_needs_what_shapes_cannot_give)
{
    expect_fail(SD1_FILE, NULL, STATUS_FORMAT, "'norm_num_groups' is required", "config_override");
    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    json_t *unet = json_pack("{s:i}", "norm_num_groups", 4);
    opt.config_override[CHECKPOINT_UNET] = unet;
    expect_fail(SD1_FILE, &opt, STATUS_FORMAT, "'attention_head_dim' is required", "unet config");
    json_decref(unet);
    /* a head count that does not divide the width */
    struct test_overrides ov;
    test_tiny_overrides(false, &ov, opt.config_override);
    json_object_set_new(ov.obj[CHECKPOINT_TEXT_ENCODER], "num_attention_heads", json_integer(5));
    expect_fail(SD1_FILE, &opt, STATUS_FORMAT, "'num_attention_heads': 5 does not divide 12", NULL);
    test_overrides_free(&ov);
}
END_TEST

START_TEST(test_single_sd2_family_rules)
{
    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    opt.prediction = CHECKPOINT_PREDICTION_EPSILON;
    struct checkpoint *ck = open_single(SD2_FILE, true, &opt);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD2_BASE);
    ck_assert_str_eq(json_string_value(json_object_get(checkpoint_scheduler_config(ck),
                                                       "prediction_type")), "epsilon");
    checkpoint_close(ck);

    checkpoint_options_default(&opt);
    opt.family = CHECKPOINT_FAMILY_SD_TURBO;
    ck = open_single(SD2_FILE, true, &opt);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD_TURBO);
    const json_t *sched = checkpoint_scheduler_config(ck);
    ck_assert_str_eq(json_string_value(json_object_get(sched, "timestep_spacing")), "trailing");
    ck_assert_str_eq(json_string_value(json_object_get(sched, "_class_name")), "EulerDiscreteScheduler");
    checkpoint_close(ck);

    checkpoint_options_default(&opt);
    opt.family = CHECKPOINT_FAMILY_SD1; /* contradicts the OpenCLIP tower */
    expect_fail(SD2_FILE, &opt, STATUS_FORMAT, "family sd1 asked for", "OpenCLIP");

    /* SAI model-spec metadata */
    char dir[64], path[128];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    struct safetensors_kv eps[] = {{"modelspec.prediction_type", "epsilon"}};
    rewrite(SD2_FILE, path, NULL, NULL, eps, 1);
    checkpoint_options_default(&opt);
    ck = open_single(path, true, &opt);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD2_BASE);
    checkpoint_close(ck);
    struct safetensors_kv turbo[] = {{"modelspec.architecture", "stable-diffusion-v2-turbo"}};
    rewrite(SD2_FILE, path, NULL, NULL, turbo, 1);
    ck = open_single(path, true, &opt);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD_TURBO);
    checkpoint_close(ck);

    /* no metadata: the file name (SD2.1's published names, sd_turbo) */
    static const struct {
        const char *name;
        enum checkpoint_family want;
    } names[] = {{"v2-1_512-ema-pruned.safetensors", CHECKPOINT_FAMILY_SD2_BASE},
                 {"512-base-ema.safetensors", CHECKPOINT_FAMILY_SD2_BASE},
                 {"v2-1_768-ema-pruned.safetensors", CHECKPOINT_FAMILY_SD2_V},
                 {"sd_turbo.safetensors", CHECKPOINT_FAMILY_SD_TURBO},
                 {"model.safetensors", CHECKPOINT_FAMILY_SD2_V}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i].name);
        ck_assert_int_eq(symlink(SD2_FILE, path), 0);
        ck = open_single(path, true, &opt);
        ck_assert_msg(checkpoint_family(ck) == names[i].want, "%s: %s", names[i].name,
                      checkpoint_family_name(checkpoint_family(ck)));
        checkpoint_close(ck);
    }
    test_remove_tree(dir);
}
END_TEST

/* Each family's synthesised scheduler config is one models/schedule accepts. */
START_TEST(test_single_scheduler_configs_parse)
{
    static const struct {
        enum checkpoint_family family;
        enum schedule_prediction pred;
        enum schedule_spacing spacing;
    } cases[] = {{CHECKPOINT_FAMILY_SD1, SCHEDULE_PRED_EPSILON, SCHEDULE_SPACING_LEADING},
                 {CHECKPOINT_FAMILY_SD2_BASE, SCHEDULE_PRED_EPSILON, SCHEDULE_SPACING_LEADING},
                 {CHECKPOINT_FAMILY_SD2_V, SCHEDULE_PRED_V, SCHEDULE_SPACING_LEADING},
                 {CHECKPOINT_FAMILY_SD_TURBO, SCHEDULE_PRED_EPSILON, SCHEDULE_SPACING_TRAILING}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool sd2 = cases[i].family != CHECKPOINT_FAMILY_SD1;
        struct checkpoint_options opt;
        checkpoint_options_default(&opt);
        opt.family = cases[i].family;
        struct checkpoint *ck = open_single(sd2 ? SD2_FILE : SD1_FILE, sd2, &opt);
        struct schedule_config cfg;
        struct errbuf err;
        ck_assert_msg(schedule_config_from_json(&cfg, checkpoint_scheduler_config(ck), &err) == STATUS_OK,
                      "%s", err.msg);
        ck_assert_msg(schedule_config_validate(&cfg, &err) == STATUS_OK, "%s", err.msg);
        ck_assert_int_eq(cfg.prediction_type, cases[i].pred);
        ck_assert_int_eq(cfg.timestep_spacing, cases[i].spacing);
        ck_assert_int_eq(cfg.beta_schedule, SCHEDULE_BETA_SCALED_LINEAR);
        checkpoint_close(ck);
    }
}
END_TEST

START_TEST(test_sdxl_rejected)
{
    char dir[64], path[256];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/sdxl.safetensors", dir);
    float x[2] = {1, 2};
    struct safetensors_write_tensor t[2] = {
        {"model.diffusion_model.out.2.bias", SAFETENSORS_F32, 1, (int64_t[]){2}, x},
        {"conditioner.embedders.0.transformer.text_model.final_layer_norm.bias", SAFETENSORS_F32,
         1, (int64_t[]){2}, x}};
    struct errbuf err;
    ck_assert_int_eq(safetensors_write(path, t, 2, NULL, 0, &err), STATUS_OK);
    expect_fail(path, NULL, STATUS_UNSUPPORTED, "SDXL", "conditioner.embedders");
    test_remove_tree(dir);

    fake_folder(dir, NULL, false);
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    write_text(path, "{\"_class_name\": \"StableDiffusionXLPipeline\", "
                     "\"text_encoder_2\": [\"transformers\", \"CLIPTextModelWithProjection\"]}");
    expect_fail(dir, NULL, STATUS_UNSUPPORTED, "SDXL", "text_encoder_2");
    /* [null, null] is no component */
    write_text(path, "{\"text_encoder_2\": [null, null]}");
    struct checkpoint *ck = open_ok(dir, NULL);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD1);
    checkpoint_close(ck);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_single_tokenizer_bundled)
{
    static const char *const files[] = {SD1_FILE, SD2_FILE};
    static const int32_t pads[] = {49407, 0}; /* SD1 pads with <|endoftext|>, SD2 with "!" */
    for (int i = 0; i < 2; i++) {
        struct checkpoint_options opt;
        checkpoint_options_default(&opt);
        struct checkpoint *ck = open_single(files[i], i == 1, &opt);
        struct tokenizer *tok;
        struct errbuf err;
        ck_assert_msg(tokenizer_load_dir(checkpoint_tokenizer_dir(ck), &tok, &err) == STATUS_OK,
                      "%s", err.msg);
        ck_assert_int_eq(tokenizer_pad_id(tok), pads[i]);
        ck_assert_int_eq(tokenizer_vocab_size(tok), 49408);
        tokenizer_free(tok);
        checkpoint_close(ck);
    }
    struct checkpoint_options opt;
    struct test_overrides ov;
    checkpoint_options_default(&opt);
    test_tiny_overrides(false, &ov, opt.config_override);
    opt.data_dir = "/nonexistent/data";
    expect_fail(SD1_FILE, &opt, STATUS_NOT_FOUND, "/nonexistent/data/clip-bpe/sd1/vocab.json", NULL);
    test_overrides_free(&ov);
}
END_TEST

/* --- the name map, tensor by tensor ------------------------------------------------------- */

/* Marks every file tensor (or row slice) a diffusers name maps to. */
struct coverage {
    const struct safetensors *file;
    int64_t *rows_used; /* per file tensor: rows covered (slices) or −1 (whole) */
};

static void cover(struct coverage *cov, const struct weights_ref *ref)
{
    for (size_t i = 0; i < safetensors_count(cov->file); i++) {
        const struct safetensors_tensor *t = safetensors_at(cov->file, i);
        if (strcmp(t->name, ref->name) != 0)
            continue;
        if (ref->row_count > 0)
            cov->rows_used[i] += ref->row_count;
        else
            cov->rows_used[i] = -1;
    }
}

/* Every tensor of the folder's component c is in the single file with equal values. */
static size_t check_component_map(const struct checkpoint *folder, const struct checkpoint *single,
                                  int c, struct coverage *cov)
{
    const struct weights *wd, *ws;
    struct errbuf err;
    checkpoint_component(folder, c, &wd, NULL, &err);
    checkpoint_component(single, c, &ws, NULL, &err);
    struct safetensors *st;
    ck_assert_int_eq(safetensors_open(weights_label(wd), &st, &err), STATUS_OK);
    size_t n = safetensors_count(st);
    for (size_t i = 0; i < n; i++) {
        const char *name = safetensors_at(st, i)->name;
        struct safetensors_tensor vd, vs;
        ck_assert_int_eq(weights_view(wd, name, &vd, &err), STATUS_OK);
        ck_assert_msg(weights_view(ws, name, &vs, &err) == STATUS_OK, "%s", err.msg);
        ck_assert_msg(vd.numel == vs.numel, "%s: %zu vs %zu elements", name, vd.numel, vs.numel);
        float *a = malloc(vd.numel * sizeof *a), *b = malloc(vd.numel * sizeof *b);
        ck_assert_int_eq(weights_read_f32(wd, name, a, vd.numel, &err), STATUS_OK);
        ck_assert_msg(weights_read_f32(ws, name, b, vs.numel, &err) == STATUS_OK, "%s", err.msg);
        size_t bad = 0;
        for (size_t k = 0; k < vd.numel; k++)
            bad += a[k] != b[k];
        ck_assert_msg(bad == 0, "%s (file '%s'): %zu of %zu values differ", name, vs.name, bad,
                      vd.numel);
        free(a);
        free(b);
        struct weights_ref ref;
        ck_assert(weights_resolve(ws, name, &ref));
        cover(cov, &ref);
    }
    safetensors_close(st);
    return n;
}

static void check_map(const char *dir, const char *file, bool sd2, bool tiny, size_t want_total,
                      int text_layers)
{
    struct checkpoint *folder = open_ok(dir, NULL);
    struct checkpoint *single = open_file(file, sd2, tiny);
    struct safetensors *st;
    struct errbuf err;
    ck_assert_int_eq(safetensors_open(file, &st, &err), STATUS_OK);
    struct coverage cov = {st, calloc(safetensors_count(st), sizeof(int64_t))};
    size_t total = 0;
    for (int c = 0; c < CHECKPOINT_SCHEDULER; c++)
        total += check_component_map(folder, single, c, &cov);
    if (want_total) /* the manifest's single_file_verification count */
        ck_assert_uint_eq(total, want_total);
    size_t unused = 0;
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const struct safetensors_tensor *t = safetensors_at(st, i);
        if (cov.rows_used[i] == -1 || (cov.rows_used[i] > 0 && cov.rows_used[i] == t->shape[0]))
            continue;
        ck_assert_msg(cov.rows_used[i] == 0, "%s: only %lld of %lld rows mapped", t->name,
                      (long long)cov.rows_used[i], (long long)t->shape[0]);
        ck_assert_msg(checkpoint_tensor_unused(t->name, text_layers),
                      "%s: single-file tensor left unmapped", t->name);
        unused++;
    }
    ck_assert_uint_gt(unused, 0);
    free(cov.rows_used);
    safetensors_close(st);
    checkpoint_close(folder);
    checkpoint_close(single);
}

START_TEST(test_map_sd1_every_tensor)
{
    check_map(SD1_DIR, SD1_FILE, false, true, 776, 2);
}
END_TEST

START_TEST(test_map_sd2_every_tensor)
{
    check_map(SD2_DIR, SD2_FILE, true, true, 606, 2);
    /* the dropped last OpenCLIP layer and the CLIP-only extras */
    ck_assert(checkpoint_tensor_unused("cond_stage_model.model.transformer.resblocks.2.ln_1.weight", 2));
    ck_assert(!checkpoint_tensor_unused("cond_stage_model.model.transformer.resblocks.1.ln_1.weight", 2));
    ck_assert(checkpoint_tensor_unused("cond_stage_model.model.logit_scale", 2));
    ck_assert(checkpoint_tensor_unused("first_stage_model.loss.logvar", 2));
    ck_assert(!checkpoint_tensor_unused("model.diffusion_model.out.2.weight", 2));
}
END_TEST

START_TEST(test_map_slices_and_names)
{
    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    struct checkpoint *ck = open_single(SD2_FILE, true, &opt);
    const struct weights *w;
    struct errbuf err;
    checkpoint_component(ck, CHECKPOINT_TEXT_ENCODER, &w, NULL, &err);
    struct weights_ref ref;
    ck_assert(weights_resolve(w, "text_model.encoder.layers.1.self_attn.k_proj.weight", &ref));
    ck_assert_str_eq(ref.name, "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight");
    ck_assert_int_eq(ref.row_begin, 12);
    ck_assert_int_eq(ref.row_count, 12);
    ck_assert(!weights_resolve(w, "text_model.encoder.layers.2.layer_norm1.weight", &ref));
    struct tensor t;
    ck_assert_int_eq(weights_load_linear(w, "text_model.encoder.layers.0.self_attn.v_proj.weight",
                                         12, 12, test_cpu_backend(), &t, &err), STATUS_OK);
    backend_free(&t);
    ck_assert_int_eq(weights_load(w, "text_model.encoder.layers.0.self_attn.q_proj.bias", 1,
                                  (int64_t[]){36}, test_cpu_backend(), &t, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "rows [0,12)") && strstr(err.msg, "[12]"), "%s", err.msg);
    checkpoint_component(ck, CHECKPOINT_VAE, &w, NULL, &err);
    ck_assert(weights_resolve(w, "decoder.up_blocks.3.resnets.0.conv_shortcut.weight", &ref));
    ck_assert_str_eq(ref.name, "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight");
    ck_assert(weights_resolve(w, "encoder.mid_block.attentions.0.to_out.0.bias", &ref));
    ck_assert_str_eq(ref.name, "first_stage_model.encoder.mid.attn_1.proj_out.bias");
    checkpoint_component(ck, CHECKPOINT_UNET, &w, NULL, &err);
    ck_assert(weights_resolve(w, "up_blocks.1.upsamplers.0.conv.weight", &ref));
    ck_assert_str_eq(ref.name, "model.diffusion_model.output_blocks.3.2.conv.weight");
    ck_assert(weights_resolve(w, "down_blocks.1.downsamplers.0.conv.bias", &ref));
    ck_assert_str_eq(ref.name, "model.diffusion_model.input_blocks.4.0.op.bias");
    ck_assert(!weights_resolve(w, "down_blocks.2.downsamplers.0.conv.bias", &ref));
    ck_assert(!weights_resolve(w, "no_such.weight", &ref));
    checkpoint_component(ck, CHECKPOINT_VAE, &w, NULL, &err);
    ck_assert(weights_resolve(w, "decoder.up_blocks.0.upsamplers.0.conv.weight", &ref));
    ck_assert_str_eq(ref.name, "first_stage_model.decoder.up.3.upsample.conv.weight");
    /* VAE mid attention: a 1×1 conv in the file, a linear for diffusers */
    ck_assert_int_eq(weights_load_linear(w, "decoder.mid_block.attentions.0.to_q.weight", 16, 16,
                                         test_cpu_backend(), &t, &err), STATUS_OK);
    backend_free(&t);
    checkpoint_close(ck);
}
END_TEST

/* --- malformed checkpoints ------------------------------------------------------------------ */

START_TEST(test_err_path_missing)
{
    expect_fail("/nonexistent/model", NULL, STATUS_NOT_FOUND, "/nonexistent/model",
                "no such file");
}
END_TEST

/* A diffusers folder in a temp dir: model_index.json and the components as symlinks to
 * sd1-tiny's, except `skip`. */
static void fake_folder(char *dir, const char *skip, bool index)
{
    static const char *const parts[] = {"unet", "vae", "text_encoder", "tokenizer", "scheduler"};
    char src[512], dst[512];
    make_tmpdir(dir);
    if (index) {
        snprintf(dst, sizeof dst, "%s/model_index.json", dir);
        ck_assert_int_eq(symlink(SD1_DIR "/model_index.json", dst), 0);
    }
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (skip && strcmp(parts[i], skip) == 0)
            continue;
        snprintf(src, sizeof src, "%s/%s", SD1_DIR, parts[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, parts[i]);
        ck_assert_int_eq(symlink(src, dst), 0);
    }
}

START_TEST(test_err_folder_structure)
{
    char dir[64], path[256];
    fake_folder(dir, NULL, false);
    expect_fail(dir, NULL, STATUS_NOT_FOUND, "no model_index.json", "not a diffusers folder");
    test_remove_tree(dir);

    fake_folder(dir, "vae", true);
    snprintf(path, sizeof path, "%s/vae: missing component folder", dir);
    expect_fail(dir, NULL, STATUS_NOT_FOUND, path, NULL);
    test_remove_tree(dir);

    fake_folder(dir, "tokenizer", true);
    expect_fail(dir, NULL, STATUS_NOT_FOUND, "/tokenizer: missing component folder", NULL);
    test_remove_tree(dir);

    /* model_index.json that is not JSON */
    fake_folder(dir, NULL, false);
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    write_text(path, "{ not json");
    expect_fail(dir, NULL, STATUS_FORMAT, path, "not JSON");
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_err_component_config_and_weights)
{
    char dir[64], unet[128], path[256];
    /* unet/ with the weights but no config.json */
    fake_folder(dir, "unet", true);
    snprintf(unet, sizeof unet, "%s/unet", dir);
    ck_assert_int_eq(mkdir(unet, 0755), 0);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", unet);
    ck_assert_int_eq(symlink(SD1_DIR "/unet/diffusion_pytorch_model.safetensors", path), 0);
    snprintf(path, sizeof path, "%s/config.json: missing component config", unet);
    expect_fail(dir, NULL, STATUS_NOT_FOUND, path, NULL);

    /* config.json that is not JSON */
    snprintf(path, sizeof path, "%s/config.json", unet);
    write_text(path, "block_out_channels = [8, 16]");
    expect_fail(dir, NULL, STATUS_FORMAT, path, "not JSON");

    /* a config but no weights */
    remove(path);
    ck_assert_int_eq(symlink(SD1_DIR "/unet/config.json", path), 0);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", unet);
    remove(path);
    expect_fail(dir, NULL, STATUS_NOT_FOUND, unet, "diffusion_pytorch_model[.fp16].safetensors");

    /* scheduler/ without scheduler_config.json */
    test_remove_tree(dir);
    fake_folder(dir, "scheduler", true);
    snprintf(path, sizeof path, "%s/scheduler", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    expect_fail(dir, NULL, STATUS_NOT_FOUND, "scheduler_config.json: missing component config", NULL);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_err_single_not_safetensors_or_not_sd)
{
    char dir[64], path[128];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_text(path, "this is a text file, not a checkpoint\n");
    expect_fail(path, NULL, STATUS_FORMAT, "not a safetensors checkpoint", path);
    char ckpt[160];
    snprintf(ckpt, sizeof ckpt, "%s/v1-5-pruned.ckpt", dir);
    write_text(ckpt, "PK\003\004 pickle");
    expect_fail(ckpt, NULL, STATUS_FORMAT, ".ckpt files are Python pickles", "convert it");

    /* a dtype the format does not know */
    static const char hdr[] = "{\"model.diffusion_model.out.2.bias\": {\"dtype\": \"Q4\", "
                              "\"shape\": [2], \"data_offsets\": [0, 1]}}";
    FILE *f = fopen(path, "wb");
    uint64_t len = sizeof hdr - 1;
    fwrite(&len, 8, 1, f);
    fwrite(hdr, 1, len, f);
    fputc(0, f);
    fclose(f);
    expect_fail(path, NULL, STATUS_FORMAT, "not a safetensors checkpoint",
                "tensor 'model.diffusion_model.out.2.bias': unknown dtype 'Q4'");

    /* a valid safetensors file with no Stable Diffusion tensors */
    float x[2] = {1, 2};
    struct safetensors_write_tensor t = {"linear.weight", SAFETENSORS_F32, 1, (int64_t[]){2}, x};
    struct errbuf err;
    ck_assert_int_eq(safetensors_write(path, &t, 1, NULL, 0, &err), STATUS_OK);
    expect_fail(path, NULL, STATUS_FORMAT,
                "no model.diffusion_model.* tensors: not a Stable Diffusion checkpoint", path);

    /* a U-Net but no text encoder */
    t.name = "model.diffusion_model.out.2.bias";
    ck_assert_int_eq(safetensors_write(path, &t, 1, NULL, 0, &err), STATUS_OK);
    expect_fail(path, NULL, STATUS_FORMAT, "no text encoder", NULL);
    test_remove_tree(dir);
}
END_TEST

/* Opens a rewritten sd1-tiny single file and loads one tensor from `comp`. */
static enum status load_from_rewritten(const char *path, int comp, const char *name, int ndim,
                                       const int64_t *shape, struct errbuf *err)
{
    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    struct checkpoint *ck = open_single(path, false, &opt);
    const struct weights *w;
    checkpoint_component(ck, comp, &w, NULL, err);
    struct tensor t;
    enum status s = weights_load(w, name, ndim, shape, test_cpu_backend(), &t, err);
    if (s == STATUS_OK)
        backend_free(&t);
    checkpoint_close(ck);
    return s;
}

#define RES_CONV1_BIAS "model.diffusion_model.output_blocks.2.0.in_layers.2.bias"

START_TEST(test_err_single_missing_tensor)
{
    char dir[64], path[128];
    struct errbuf err;
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    rewrite(SD1_FILE, path, RES_CONV1_BIAS, NULL, NULL, 0);
    enum status s = load_from_rewritten(path, CHECKPOINT_UNET, "up_blocks.0.resnets.2.conv1.bias",
                                        1, (int64_t[]){32}, &err);
    ck_assert_int_eq(s, STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "missing tensor 'up_blocks.0.resnets.2.conv1.bias'") &&
                      strstr(err.msg, "'" RES_CONV1_BIAS "'") && strstr(err.msg, path),
                  "%s", err.msg);

    /* a tensor the configs are derived from: checkpoint_open names it */
    rewrite(SD1_FILE, path, "first_stage_model.decoder.conv_in.weight", NULL, NULL, 0);
    struct checkpoint_options opt;
    struct test_overrides ov;
    checkpoint_options_default(&opt);
    test_tiny_overrides(false, &ov, opt.config_override);
    expect_fail(path, &opt, STATUS_FORMAT, "missing tensor 'first_stage_model.decoder.conv_in.weight'", NULL);
    test_overrides_free(&ov);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_err_single_shape_and_dtype)
{
    char dir[64], path[128];
    struct errbuf err;
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    struct tensor_change shape = {RES_CONV1_BIAS, SAFETENSORS_F16, 1, {31}};
    rewrite(SD1_FILE, path, NULL, &shape, NULL, 0);
    enum status s = load_from_rewritten(path, CHECKPOINT_UNET, "up_blocks.0.resnets.2.conv1.bias",
                                        1, (int64_t[]){32}, &err);
    ck_assert_int_eq(s, STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'up_blocks.0.resnets.2.conv1.bias'") &&
                      strstr(err.msg, RES_CONV1_BIAS) && strstr(err.msg, "shape [31], expected [32]"),
                  "%s", err.msg);

    struct tensor_change dtype = {RES_CONV1_BIAS, SAFETENSORS_I32, 1, {32}};
    rewrite(SD1_FILE, path, NULL, &dtype, NULL, 0);
    s = load_from_rewritten(path, CHECKPOINT_UNET, "up_blocks.0.resnets.2.conv1.bias", 1,
                            (int64_t[]){32}, &err);
    ck_assert_int_eq(s, STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'up_blocks.0.resnets.2.conv1.bias'") &&
                      strstr(err.msg, RES_CONV1_BIAS) && strstr(err.msg, "dtype I32"),
                  "%s", err.msg);
    float buf[32];
    ck_assert_int_eq(load_from_rewritten(path, CHECKPOINT_UNET, "conv_in.bias", 1, (int64_t[]){8}, &err),
                     STATUS_OK);
    (void)buf;
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_err_folder_dtype)
{
    /* a diffusers weights file with an I32 tensor */
    char dir[64], unet[128], path[256];
    struct errbuf err;
    fake_folder(dir, "unet", true);
    snprintf(unet, sizeof unet, "%s/unet", dir);
    ck_assert_int_eq(mkdir(unet, 0755), 0);
    snprintf(path, sizeof path, "%s/config.json", unet);
    ck_assert_int_eq(symlink(SD1_DIR "/unet/config.json", path), 0);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", unet);
    struct tensor_change dtype = {"conv_in.bias", SAFETENSORS_I32, 1, {8}};
    rewrite(SD1_DIR "/unet/diffusion_pytorch_model.safetensors", path, NULL, &dtype, NULL, 0);
    struct checkpoint *ck = open_ok(dir, NULL);
    const struct weights *w;
    checkpoint_component(ck, CHECKPOINT_UNET, &w, NULL, &err);
    struct tensor t;
    ck_assert_int_eq(weights_load(w, "conv_in.bias", 1, (int64_t[]){8}, test_cpu_backend(), &t, &err),
                     STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'conv_in.bias'") && strstr(err.msg, "dtype I32") &&
                      strstr(err.msg, path), "%s", err.msg);
    checkpoint_close(ck);
    test_remove_tree(dir);
}
END_TEST

/* --- the single files through the production models ---------------------------------------- */

/* A reference tensor as host floats (4-D NCHW → NHWC); integers converted. */
static float *ref_read(const char *pipeline, const char *file, const char *name, int64_t *shape,
                       size_t *numel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/reference/%s", SD, pipeline, file);
    struct safetensors *st;
    struct errbuf err;
    ck_assert_msg(safetensors_open(path, &st, &err) == STATUS_OK, "%s", err.msg);
    const struct safetensors_tensor *t = safetensors_find(st, name);
    ck_assert_msg(t, "%s: %s", path, name);
    float *raw = malloc(t->numel * sizeof *raw);
    if (t->dtype == SAFETENSORS_I32 || t->dtype == SAFETENSORS_I64) {
        for (size_t i = 0; i < t->numel; i++) {
            int64_t v = 0;
            if (t->dtype == SAFETENSORS_I32) {
                int32_t v32;
                memcpy(&v32, (const char *)t->data + 4 * i, 4);
                v = v32;
            } else {
                memcpy(&v, (const char *)t->data + 8 * i, 8);
            }
            raw[i] = (float)v;
        }
    } else {
        ck_assert_int_eq(safetensors_read_f32(st, t, raw, t->numel, &err), STATUS_OK);
    }
    for (int i = 0; i < t->ndim; i++)
        shape[i] = t->shape[i];
    *numel = t->numel;
    if (t->ndim == 4) { /* NCHW → NHWC */
        int64_t n = t->shape[0], c = t->shape[1], h = t->shape[2], w = t->shape[3];
        float *nhwc = malloc(t->numel * sizeof *nhwc);
        for (int64_t a = 0; a < n; a++)
            for (int64_t k = 0; k < c; k++)
                for (int64_t y = 0; y < h; y++)
                    for (int64_t x = 0; x < w; x++)
                        nhwc[((a * h + y) * w + x) * c + k] = raw[((a * c + k) * h + y) * w + x];
        free(raw);
        raw = nhwc;
        shape[1] = h;
        shape[2] = w;
        shape[3] = c;
    }
    safetensors_close(st);
    return raw;
}

/* max |got − want| ≤ 1e-4 × std(want) (issue 3). */
static void assert_close_std(const char *what, const float *got, const float *want, size_t n)
{
    double mean = 0, sq = 0, maxerr = 0;
    for (size_t i = 0; i < n; i++)
        mean += want[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sq += (want[i] - mean) * (want[i] - mean);
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= maxerr))
            maxerr = e;
    }
    double sd = sqrt(sq / (double)n);
    ck_assert_msg(maxerr <= 1e-4 * sd, "%s: max abs err %g > 1e-4 × std %g", what, maxerr, sd);
}

static struct workspace ws_make(void)
{
    struct workspace ws;
    struct errbuf err;
    ck_assert_int_eq(workspace_init(&ws, test_cpu_backend(), DTYPE_F32, 0, &err), STATUS_OK);
    return ws;
}

static void run_text(const struct checkpoint *ck, const char *pipeline)
{
    const struct weights *w;
    const json_t *cfgj;
    struct errbuf err;
    struct clip_config cfg;
    struct clip_model *m;
    checkpoint_component(ck, CHECKPOINT_TEXT_ENCODER, &w, &cfgj, &err);
    ck_assert_msg(clip_config_from_json(cfgj, &cfg, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_msg(clip_load(w, &cfg, test_cpu_backend(), &m, &err) == STATUS_OK, "%s", err.msg);
    int64_t ishape[4], oshape[4];
    size_t ni, no;
    float *idsf = ref_read(pipeline, "text_encoder.safetensors", "input_ids", ishape, &ni);
    float *want = ref_read(pipeline, "text_encoder.safetensors", "last_hidden_state", oshape, &no);
    int32_t *ids = malloc(ni * sizeof *ids);
    for (size_t i = 0; i < ni; i++)
        ids[i] = (int32_t)idsf[i];
    struct workspace ws = ws_make();
    struct tensor out = test_tensor(test_cpu_backend(), 3, oshape, NULL);
    ck_assert_msg(clip_encode(m, &ws, ids, (int)ishape[0], 0, &out, &err) == STATUS_OK, "%s", err.msg);
    float *got = test_download(&out);
    assert_close_std("text encoder", got, want, no);
    free(got);
    backend_free(&out);
    workspace_destroy(&ws);
    free(ids);
    free(idsf);
    free(want);
    clip_free(m);
}

static void run_vae(const struct checkpoint *ck, const char *pipeline)
{
    const struct weights *w;
    const json_t *cfgj;
    struct errbuf err;
    struct vae_config cfg;
    struct vae_model *m;
    checkpoint_component(ck, CHECKPOINT_VAE, &w, &cfgj, &err);
    ck_assert_msg(vae_config_from_json(cfgj, &cfg, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_msg(vae_load(w, &cfg, test_cpu_backend(), &m, &err) == STATUS_OK, "%s", err.msg);
    int64_t zs[4], os[4];
    size_t nz, no;
    float *z = ref_read(pipeline, "vae.safetensors", "decode.latents", zs, &nz);
    float *want = ref_read(pipeline, "vae.safetensors", "decode.out", os, &no);
    struct workspace ws = ws_make();
    struct tensor zt = test_tensor(test_cpu_backend(), 4, zs, z);
    struct tensor img = test_tensor(test_cpu_backend(), 4, os, NULL);
    ck_assert_msg(vae_decode_raw(m, &ws, &zt, &img, &err) == STATUS_OK, "%s", err.msg);
    float *got = test_download(&img);
    assert_close_std("vae decode", got, want, no);
    free(got);
    backend_free(&zt);
    backend_free(&img);
    workspace_destroy(&ws);
    free(z);
    free(want);
    vae_free(m);
}

static void run_unet(const struct checkpoint *ck, const char *pipeline)
{
    const struct weights *w;
    const json_t *cfgj;
    struct errbuf err;
    struct unet_config cfg;
    struct unet_model *m;
    checkpoint_component(ck, CHECKPOINT_UNET, &w, &cfgj, &err);
    ck_assert_msg(unet_config_from_json(cfgj, &cfg, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_msg(unet_load(w, &cfg, test_cpu_backend(), &m, &err) == STATUS_OK, "%s", err.msg);
    int64_t xs[4], ts[4], cs[4], os[4];
    size_t nx, nt, nc, no;
    float *x = ref_read(pipeline, "unet.safetensors", "int.sample", xs, &nx);
    float *t = ref_read(pipeline, "unet.safetensors", "int.timestep", ts, &nt);
    float *c = ref_read(pipeline, "unet.safetensors", "int.encoder_hidden_states", cs, &nc);
    float *want = ref_read(pipeline, "unet.safetensors", "int.out", os, &no);
    struct workspace ws = ws_make();
    struct tensor xt = test_tensor(test_cpu_backend(), 4, xs, x);
    struct tensor ct = test_tensor(test_cpu_backend(), 3, cs, c);
    struct tensor out = test_tensor(test_cpu_backend(), 4, os, NULL);
    ck_assert_msg(unet_forward(m, &ws, &xt, t, &ct, &out, &err) == STATUS_OK, "%s", err.msg);
    float *got = test_download(&out);
    assert_close_std("unet", got, want, no);
    free(got);
    backend_free(&xt);
    backend_free(&ct);
    backend_free(&out);
    workspace_destroy(&ws);
    free(x);
    free(t);
    free(c);
    free(want);
    unet_free(m);
}

static void run_single(const char *file, const char *pipeline, bool sd2)
{
    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    struct checkpoint *ck = open_single(file, sd2, &opt);
    run_text(ck, pipeline);
    run_vae(ck, pipeline);
    run_unet(ck, pipeline);
    checkpoint_close(ck);
}

START_TEST(test_single_file_sd1_through_models)
{
    run_single(SD1_FILE, "sd1-tiny", false);
}
END_TEST

START_TEST(test_single_file_sd2_through_models)
{
    run_single(SD2_FILE, "sd2-tiny", true);
}
END_TEST

/* The --full sets (SD1.5 / SD2.1 sizes, not committed; tools/make_fixtures.py --full),
 * when DIFFUSIOND_FULL_DIR names their folder: standard widths, so no overrides — heads
 * and groups come from the SD configs; configs equal to the folders', every tensor
 * mapped with identical values (SD2.1: 24 resblocks in the file, 23 used). */
START_TEST(test_full_size_single_files)
{
    const char *root = getenv("DIFFUSIOND_FULL_DIR");
    if (!root || !*root)
        return;
    static const struct {
        const char *name;
        bool sd2;
        int text_layers;
        enum checkpoint_family family;
    } sets[] = {{"sd15-full", false, 12, CHECKPOINT_FAMILY_SD1},
                {"sd21-full", true, 23, CHECKPOINT_FAMILY_SD2_V}};
    for (int i = 0; i < 2; i++) {
        char dir[512], file[600];
        snprintf(dir, sizeof dir, "%s/%s/diffusers", root, sets[i].name);
        snprintf(file, sizeof file, "%s/%s/%s.safetensors", root, sets[i].name, sets[i].name);
        if (access(file, R_OK) != 0) {
            printf("checkpoint %s: no %s, skipped\n", sets[i].name, file);
            continue;
        }
        struct checkpoint *ck = open_file(file, sets[i].sd2, false);
        ck_assert_int_eq(checkpoint_family(ck), sets[i].family);
        checkpoint_close(ck);
        check_single_configs(file, dir, sets[i].sd2, false);
        check_map(dir, file, sets[i].sd2, false, 0, sets[i].text_layers);
        printf("checkpoint %s: configs and every tensor match the diffusers folder\n", sets[i].name);
    }
}
END_TEST

/* SD1 files from old transformers versions: no "text_model." in the CLIP names. */
START_TEST(test_single_file_sd1_legacy_clip_names)
{
    char dir[64], path[128];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/old.safetensors", dir);
    struct safetensors *st;
    struct errbuf err;
    ck_assert_int_eq(safetensors_open(SD1_FILE, &st, &err), STATUS_OK);
    size_t n = safetensors_count(st);
    struct safetensors_write_tensor *wt = calloc(n, sizeof *wt);
    char(*names)[256] = calloc(n, sizeof *names);
    static const char old[] = "cond_stage_model.transformer.text_model.";
    for (size_t i = 0; i < n; i++) {
        const struct safetensors_tensor *t = safetensors_at(st, i);
        if (strncmp(t->name, old, sizeof old - 1) == 0)
            snprintf(names[i], sizeof names[i], "cond_stage_model.transformer.%s", t->name + sizeof old - 1);
        else
            snprintf(names[i], sizeof names[i], "%s", t->name);
        wt[i] = (struct safetensors_write_tensor){names[i], t->dtype, t->ndim, t->shape, t->data};
    }
    ck_assert_int_eq(safetensors_write(path, wt, n, NULL, 0, &err), STATUS_OK);
    free(wt);
    free(names);
    safetensors_close(st);

    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    struct checkpoint *ck = open_single(path, false, &opt);
    ck_assert_int_eq(checkpoint_family(ck), CHECKPOINT_FAMILY_SD1);
    const struct weights *w;
    checkpoint_component(ck, CHECKPOINT_TEXT_ENCODER, &w, NULL, &err);
    struct weights_ref ref;
    ck_assert(weights_resolve(w, "text_model.encoder.layers.1.mlp.fc2.bias", &ref));
    ck_assert_str_eq(ref.name, "cond_stage_model.transformer.encoder.layers.1.mlp.fc2.bias");
    run_text(ck, "sd1-tiny");
    checkpoint_close(ck);
    ck_assert(checkpoint_tensor_unused("cond_stage_model.transformer.embeddings.position_ids", 2));
    test_remove_tree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("layouts");
    tcase_add_test(tc, test_diffusers_sd1);
    tcase_add_test(tc, test_diffusers_sd2_and_overrides);
    tcase_add_test(tc, test_family_table);
    tcase_add_test(tc, test_single_configs_from_shapes);
    tcase_add_test(tc, test_single_config_dir);
    tcase_add_test(tc, test_single_needs_what_shapes_cannot_give);
    tcase_add_test(tc, test_single_sd2_family_rules);
    tcase_add_test(tc, test_single_tokenizer_bundled);
    tcase_add_test(tc, test_single_scheduler_configs_parse);
    suite_add_tcase(s, tc);
    TCase *map = tcase_create("map");
    tcase_add_test(map, test_map_sd1_every_tensor);
    tcase_add_test(map, test_map_sd2_every_tensor);
    tcase_add_test(map, test_map_slices_and_names);
    tcase_add_test(map, test_single_file_sd1_through_models);
    tcase_add_test(map, test_single_file_sd2_through_models);
    tcase_add_test(map, test_single_file_sd1_legacy_clip_names);
    tcase_add_test(map, test_full_size_single_files);
    suite_add_tcase(s, map);
    TCase *bad = tcase_create("malformed");
    tcase_add_test(bad, test_err_path_missing);
    tcase_add_test(bad, test_err_folder_structure);
    tcase_add_test(bad, test_err_component_config_and_weights);
    tcase_add_test(bad, test_err_single_not_safetensors_or_not_sd);
    tcase_add_test(bad, test_err_single_missing_tensor);
    tcase_add_test(bad, test_err_single_shape_and_dtype);
    tcase_add_test(bad, test_err_folder_dtype);
    tcase_add_test(bad, test_sdxl_rejected);
    suite_add_tcase(s, bad);
    return test_run_suite(s);
}
