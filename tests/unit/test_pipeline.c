/* tests/unit/test_pipeline.c — models/pipeline: every pipe_*.safetensors case of
 * sd1-tiny and sd2-tiny through sd_txt2img with diffusers' initial noise and captured
 * step noise injected, PSNR ≥ 40 dB against diffusers' image (issue 3), through the
 * diffusers folder and the single file; batch invariance (a mixed batch, and requests
 * joining a running batch, give each request its image alone); no workspace growth
 * after warm-up; validation errors naming the field. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/workspace.h"
#include "models/pipeline.h"
#include "models/safetensors.h"
#include "models/sd_model.h"
#include "tests/testutil.h"

#define SD DIFFUSIOND_SOURCE_DIR "/tests/fixtures/sd"
#define MIN_PSNR 40.0   /* issue 3 */
#define MIN_PSNR_BATCH 45.0 /* issue 4 */

/* --- fixtures ------------------------------------------------------------------------ */

static json_t *manifest(const char *root)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.json", root);
    json_error_t e;
    json_t *m = json_load_file(path, 0, &e);
    ck_assert_msg(m, "%s: %s", path, e.text);
    return m;
}

static struct sd_model *load_model_at(const char *root, const char *pipe, bool single,
                                      enum checkpoint_prediction pred)
{
    const bool sd2 = strcmp(pipe, "sd2-tiny") == 0;
    const bool tiny = strstr(pipe, "-tiny") != NULL;
    char path[1024];
    if (single)
        snprintf(path, sizeof path, "%s/%s/%s.safetensors", root, pipe, pipe);
    else
        snprintf(path, sizeof path, "%s/%s/diffusers", root, pipe);
    struct sd_model_options opt;
    sd_model_options_default(&opt);
    opt.backend = test_cpu_backend();
    opt.prediction = pred;
    struct test_overrides ov;
    memset(&ov, 0, sizeof ov);
    if (single && tiny)
        test_tiny_overrides(sd2, &ov, opt.config_override);
    struct sd_model *m;
    struct errbuf err;
    enum status s = sd_model_load(path, &opt, &m, &err);
    test_overrides_free(&ov);
    ck_assert_msg(s == STATUS_OK, "%s: %s", path, err.msg);
    return m;
}

static struct sd_model *load_model(const char *pipe, bool single, enum checkpoint_prediction pred)
{
    return load_model_at(SD, pipe, single, pred);
}

/* --- a manifest case as gen_params ----------------------------------------------------- */

struct pipe_case {
    struct gen_params p;
    float *init_noise;
    float *noise[16];
    float *image;
    size_t image_numel;
    const char *prediction; /* the case's prediction_type */
};

static void case_load(const char *root, const char *pipe, const char *name, const json_t *c,
                      const struct sd_model *m, struct pipe_case *pc)
{
    memset(pc, 0, sizeof *pc);
    struct gen_params *p = &pc->p;
    p->prompt = json_string_value(json_object_get(c, "prompt"));
    p->negative_prompt = json_string_value(json_object_get(c, "negative_prompt"));
    p->width = (int)json_integer_value(json_object_get(c, "width"));
    p->height = (int)json_integer_value(json_object_get(c, "height"));
    p->steps = (int)json_integer_value(json_object_get(c, "steps"));
    p->guidance = json_number_value(json_object_get(c, "guidance_scale"));
    p->eta = json_number_value(json_object_get(c, "eta")); /* null → 0 */
    p->clip_skip = (int)json_integer_value(json_object_get(c, "clip_skip"));
    p->n = 1;
    const json_t *sched = json_object_get(c, "scheduler");
    test_case_sampler(sched, m, p);
    pc->prediction = json_string_value(
        json_object_get(json_object_get(sched, "config"), "prediction_type"));

    char path[1024];
    snprintf(path, sizeof path, "%s/%s/reference/pipe_%s.safetensors", root, pipe, name);
    struct safetensors *st;
    struct errbuf err;
    ck_assert_msg(safetensors_open(path, &st, &err) == STATUS_OK, "%s", err.msg);
    size_t numel;
    pc->init_noise = test_read_tensor_nhwc(st, "init_noise", &numel);
    p->init_noise = pc->init_noise;
    const int draws = (int)json_integer_value(json_object_get(c, "noise_draws"));
    ck_assert_int_le(draws, 16);
    for (int i = 0; i < draws; i++) {
        char key[32];
        snprintf(key, sizeof key, "noise.%d", i);
        pc->noise[i] = test_read_tensor_nhwc(st, key, &numel);
    }
    if (draws > 0)
        p->step_noise = (const float *const *)pc->noise;
    pc->image = test_read_tensor(st, "image", &pc->image_numel);
    safetensors_close(st);
}

static void case_free(struct pipe_case *pc)
{
    free(pc->init_noise);
    for (int i = 0; i < 16; i++)
        free(pc->noise[i]);
    free(pc->image);
}

static double run_case(struct sd_model *m, struct workspace *ws, const struct pipe_case *pc,
                       struct sd_timings *t)
{
    struct sd_image img;
    struct errbuf err;
    enum status s = sd_txt2img(m, ws, &pc->p, 1, true, NULL, NULL, &img, t, &err);
    ck_assert_msg(s == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq((size_t)img.width * (size_t)img.height * 3, pc->image_numel);
    const double db = test_psnr(img.unit, pc->image, pc->image_numel);
    sd_image_free(&img);
    return db;
}

/* Every case of one pipeline (root/pipe) through one layout. */
static void run_pipeline_at(const char *root, const char *pipe, bool single)
{
    json_t *man = manifest(root);
    const json_t *pj = json_object_get(json_object_get(man, "pipelines"), pipe);
    const json_t *cases = json_object_get(pj, "cases");
    ck_assert_int_ge(json_object_size(cases), 1);
    struct sd_model *m = load_model_at(root, pipe, single, CHECKPOINT_PREDICTION_AUTO);
    struct sd_model *m_eps = NULL;
    struct workspace ws = test_cpu_workspace();
    const char *model_pred = m->schedule.config.prediction_type == SCHEDULE_PRED_V ? "v_prediction"
                                                                                 : "epsilon";
    const char *name;
    const json_t *c;
    double worst = INFINITY;
    json_object_foreach((json_t *)cases, name, c) {
        struct pipe_case pc;
        case_load(root, pipe, name, c, m, &pc);
        struct sd_model *use = m;
        if (strcmp(pc.prediction, model_pred) != 0) { /* prediction_type overridden */
            if (!m_eps)
                m_eps = load_model_at(root, pipe, single, CHECKPOINT_PREDICTION_EPSILON);
            use = m_eps;
        }
        struct sd_timings t;
        const double db = run_case(use, &ws, &pc, &t);
        printf("pipeline %-8s %-11s %-22s %-16s %-8s %dx%d steps %d cfg %.1f: PSNR %.2f dB "
               "(text %.3f s, denoise %.3f s, decode %.3f s)\n",
               pipe, single ? "single-file" : "diffusers", name, sampler_kind_name(pc.p.sampler),
               sd_scheduler_name(pc.p.scheduler), pc.p.width, pc.p.height, pc.p.steps,
               pc.p.guidance, db, t.text_encode, t.denoise, t.decode);
        ck_assert_msg(db >= MIN_PSNR, "%s/%s (%s): PSNR %.2f dB < %.0f", pipe, name,
                      single ? "single file" : "folder", db, MIN_PSNR);
        worst = fmin(worst, db);
        case_free(&pc);
    }
    printf("pipeline %s %s: worst PSNR %.2f dB\n", pipe, single ? "single-file" : "diffusers",
           worst);
    fflush(stdout);
    workspace_destroy(&ws);
    sd_model_free(m_eps);
    sd_model_free(m);
    json_decref(man);
}

static void run_pipeline(const char *pipe, bool single)
{
    run_pipeline_at(SD, pipe, single);
}

/* The --full sets (SD1.5 512², SD2.1 768², not committed), when DIFFUSIOND_FULL_DIR
 * names them (docs/fixtures.md): the diffusers folders. */
START_TEST(test_full_sets)
{
    const char *root = getenv("DIFFUSIOND_FULL_DIR");
    if (!root || !root[0]) {
        printf("pipeline --full: skipped (DIFFUSIOND_FULL_DIR not set)\n");
        return;
    }
    json_t *man = manifest(root);
    const char *pipe;
    const json_t *pj;
    json_object_foreach(json_object_get(man, "pipelines"), pipe, pj) {
        (void)pj;
        run_pipeline_at(root, pipe, false);
    }
    json_decref(man);
}
END_TEST

START_TEST(test_sd1_folder)
{
    run_pipeline("sd1-tiny", false);
}
END_TEST

START_TEST(test_sd2_folder)
{
    run_pipeline("sd2-tiny", false);
}
END_TEST

START_TEST(test_sd1_single_file)
{
    run_pipeline("sd1-tiny", true);
}
END_TEST

START_TEST(test_sd2_single_file)
{
    run_pipeline("sd2-tiny", true);
}
END_TEST

/* --- batch invariance ------------------------------------------------------------------ */

static struct gen_params mixed_params(const struct sd_model *m, int i)
{
    struct gen_params p;
    gen_params_default(m, &p);
    p.prompt = i % 2 ? "a red cube on a table" : "a photograph of an astronaut riding a horse";
    p.negative_prompt = i == 2 ? "blurry" : "";
    p.seed = 1000 + 17 * (uint64_t)i;
    switch (i) {
    case 0: p.sampler = SAMPLER_EULER_A; p.steps = 3; p.guidance = 7.5; break;
    case 1: p.sampler = SAMPLER_DDIM; p.steps = 5; p.guidance = 1.0; p.eta = 1.0; break;
    case 2: p.sampler = SAMPLER_DPMPP_2M_KARRAS; p.steps = 4; p.guidance = 5.0; p.n = 2; break;
    case 3: p.sampler = SAMPLER_EULER; p.steps = 2; p.guidance = 3.0;
            p.scheduler = SD_SCHEDULER_KARRAS; p.width = 96; break;
    default: p.sampler = SAMPLER_DPMPP_2M; p.steps = 6; p.guidance = 9.0;
             p.scheduler = SD_SCHEDULER_TRAILING; p.clip_skip = 1; break;
    }
    return p;
}

#define N_MIXED 5
#define N_MIXED_IMAGES (N_MIXED + 1) /* params 2 has n = 2 */

static void compare_images(const char *what, const struct sd_image *a, const struct sd_image *b)
{
    ck_assert_int_eq(a->width, b->width);
    ck_assert_int_eq(a->height, b->height);
    const size_t n = (size_t)a->width * (size_t)a->height * 3;
    const double db = test_psnr(a->unit, b->unit, n);
    const bool identical = memcmp(a->unit, b->unit, n * sizeof(float)) == 0;
    printf("batch invariance %s: %s (PSNR %.2f dB)\n", what, identical ? "bit-identical" : "differs",
           db);
    /* the U-Net is batch invariant to ~1e-7 relative (tests/unit/test_unet.c), not
     * always bit for bit: the CPU kernels' split of a batch over threads can change
     * the last bit of a sum */
    ck_assert_msg(db >= MIN_PSNR_BATCH, "%s: PSNR %.2f dB", what, db);
}

/* Each image of params i alone (image j of n = seed + j alone). */
static void alone(struct sd_model *m, struct workspace *ws, struct gen_params p, int j,
                  struct sd_image *out)
{
    struct errbuf err;
    p.seed += (uint64_t)j;
    p.n = 1;
    ck_assert_msg(sd_txt2img(m, ws, &p, 1, true, NULL, NULL, out, NULL, &err) == STATUS_OK, "%s",
                  err.msg);
}

START_TEST(test_mixed_batch)
{
    struct sd_model *m = load_model("sd1-tiny", false, CHECKPOINT_PREDICTION_AUTO);
    struct workspace ws = test_cpu_workspace();
    struct gen_params p[N_MIXED];
    for (int i = 0; i < N_MIXED; i++)
        p[i] = mixed_params(m, i);
    struct sd_image batch[N_MIXED_IMAGES];
    struct sd_timings t;
    struct errbuf err;
    ck_assert_msg(sd_txt2img(m, &ws, p, N_MIXED, true, NULL, NULL, batch, &t, &err) == STATUS_OK,
                  "%s", err.msg);
    ck_assert_int_eq(t.steps, 3 + 5 + 4 + 4 + 2 + 6);
    ck_assert_int_eq(t.unet_calls, 6 + 2); /* 64x64 until its longest (6), 96x64 twice */
    int idx = 0;
    for (int i = 0; i < N_MIXED; i++)
        for (int j = 0; j < p[i].n; j++, idx++) {
            struct sd_image one;
            alone(m, &ws, p[i], j, &one);
            char what[64];
            snprintf(what, sizeof what, "params %d image %d (%s)", i, j,
                     sampler_kind_name(p[i].sampler));
            compare_images(what, &batch[idx], &one);
            sd_image_free(&one);
        }
    for (int i = 0; i < N_MIXED_IMAGES; i++)
        sd_image_free(&batch[i]);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

/* The scheduler's use: requests join a running batch at step boundaries. */
START_TEST(test_join_running_batch)
{
    struct sd_model *m = load_model("sd2-tiny", false, CHECKPOINT_PREDICTION_AUTO);
    struct workspace ws = test_cpu_workspace();
    struct gen_params pa = mixed_params(m, 4), pb = mixed_params(m, 0);
    struct sd_request a, b;
    struct errbuf err;
    ck_assert_int_eq(sd_request_begin(m, &ws, &pa, 0, &a, &err), STATUS_OK);
    struct sd_request *batch[2] = {&a, &b};
    for (int i = 0; i < 2; i++)
        ck_assert_msg(sd_unet_step(m, &ws, batch, 1, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(sd_request_begin(m, &ws, &pb, 0, &b, &err), STATUS_OK);
    while (!sd_request_done(&a) || !sd_request_done(&b)) {
        struct sd_request *run[2];
        int n = 0;
        if (!sd_request_done(&b)) /* the newcomer first: order must not matter */
            run[n++] = &b;
        if (!sd_request_done(&a))
            run[n++] = &a;
        ck_assert_msg(sd_unet_step(m, &ws, run, n, &err) == STATUS_OK, "%s", err.msg);
    }
    ck_assert_int_eq(sd_request_step(&a), pa.steps);
    ck_assert_int_eq(sd_unet_step(m, &ws, batch, 1, &err), STATUS_INVALID_ARGUMENT);
    struct sd_image img[2], one;
    ck_assert_msg(sd_decode(m, &ws, batch, 2, true, img, &err) == STATUS_OK, "%s", err.msg);
    alone(m, &ws, pa, 0, &one);
    compare_images("joined: running request", &img[0], &one);
    sd_image_free(&one);
    alone(m, &ws, pb, 0, &one);
    compare_images("joined: newcomer", &img[1], &one);
    sd_image_free(&one);
    sd_image_free(&img[0]);
    sd_image_free(&img[1]);
    sd_request_free(&a);
    sd_request_free(&b);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

/* sd_unet_step_graphs on a backend that records no graphs (the CPU): every call eager,
 * the images those of sd_unet_step; NULL graphs is sd_unet_step itself. */
START_TEST(test_graphs_fall_back_on_cpu)
{
    struct sd_model *m = load_model("sd1-tiny", false, CHECKPOINT_PREDICTION_AUTO);
    struct workspace ws = test_cpu_workspace();
    struct gen_params p = mixed_params(m, 1);
    struct sd_graphs *graphs = NULL;
    struct errbuf err;
    ck_assert_int_eq(sd_graphs_create(&graphs, &err), STATUS_OK);
    struct sd_request r;
    ck_assert_int_eq(sd_request_begin(m, &ws, &p, 0, &r, &err), STATUS_OK);
    struct sd_request *batch[1] = {&r};
    int calls = 0;
    while (!sd_request_done(&r)) {
        ck_assert_msg(sd_unet_step_graphs(m, &ws, graphs, batch, 1, &err) == STATUS_OK, "%s",
                      err.msg);
        calls++;
    }
    struct sd_graphs_stats st;
    sd_graphs_stats(graphs, &st);
    ck_assert(st.unsupported);
    ck_assert(!st.failed); /* the CPU records no graphs: not a failure */
    ck_assert_uint_eq(st.recorded, 0);
    ck_assert_uint_eq(st.replays, 0);
    ck_assert_uint_eq(st.eager, (unsigned)calls);
    struct sd_image img, one;
    ck_assert_msg(sd_decode(m, &ws, batch, 1, true, &img, &err) == STATUS_OK, "%s", err.msg);
    alone(m, &ws, p, 0, &one);
    compare_images("graphs on the CPU", &img, &one);
    sd_image_free(&one);
    sd_image_free(&img);
    sd_request_free(&r);
    sd_graphs_destroy(graphs);
    sd_graphs_stats(NULL, &st); /* no graphs: zeros */
    ck_assert_uint_eq(st.eager, 0);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

/* A step in two halves (sd_unet_step_start / _complete): two sizes' steps started
 * one after the other, each on its own workspace, then both completed, give each image
 * of its request alone; the halves refuse misuse (complete with nothing open, a second
 * start on an open step) and abandon closes a step without its second half. */
START_TEST(test_step_halves)
{
    struct sd_model *m = load_model("sd1-tiny", false, CHECKPOINT_PREDICTION_AUTO);
    struct workspace ws[2] = {test_cpu_workspace(), test_cpu_workspace()};
    struct gen_params p[2] = {mixed_params(m, 0), mixed_params(m, 2)};
    p[1].width = p[1].height = p[0].width * 3 / 2;
    struct sd_request r[2];
    struct sd_step *st[2];
    struct errbuf err;
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(sd_request_begin(m, &ws[0], &p[k], 0, &r[k], &err), STATUS_OK);
        ck_assert_int_eq(sd_step_create(&st[k], &err), STATUS_OK);
    }
    ck_assert_int_eq(sd_unet_step_complete(st[0], &err), STATUS_INVALID_ARGUMENT);
    while (!sd_request_done(&r[0]) || !sd_request_done(&r[1])) {
        for (int k = 0; k < 2; k++) {
            struct sd_request *one[1] = {&r[k]};
            if (!sd_request_done(&r[k]))
                ck_assert_msg(sd_unet_step_start(m, &ws[k], NULL, one, 1, st[k], &err) ==
                                  STATUS_OK,
                              "%s", err.msg);
        }
        if (sd_step_open(st[0])) { /* a second start on an open step is refused */
            struct sd_request *one[1] = {&r[0]};
            ck_assert_int_eq(sd_unet_step_start(m, &ws[0], NULL, one, 1, st[0], &err),
                             STATUS_INVALID_ARGUMENT);
        }
        for (int k = 0; k < 2; k++)
            if (sd_step_open(st[k]))
                ck_assert_msg(sd_unet_step_complete(st[k], &err) == STATUS_OK, "%s", err.msg);
    }
    for (int k = 0; k < 2; k++) {
        struct sd_request *one[1] = {&r[k]};
        struct sd_image img, alone_img;
        ck_assert_msg(sd_decode(m, &ws[0], one, 1, true, &img, &err) == STATUS_OK, "%s",
                      err.msg);
        alone(m, &ws[0], p[k], 0, &alone_img);
        compare_images(k ? "step halves: 1.5x size" : "step halves: native size", &img,
                       &alone_img);
        sd_image_free(&img);
        sd_image_free(&alone_img);
    }
    /* abandon: the workspace is back where the step started */
    struct sd_request fresh;
    ck_assert_int_eq(sd_request_begin(m, &ws[1], &p[0], 0, &fresh, &err), STATUS_OK);
    struct sd_request *one[1] = {&fresh};
    const struct workspace_mark before = workspace_mark(&ws[1]);
    ck_assert_int_eq(sd_unet_step_start(m, &ws[1], NULL, one, 1, st[1], &err), STATUS_OK);
    sd_unet_step_abandon(st[1]);
    ck_assert(!sd_step_open(st[1]));
    const struct workspace_mark after = workspace_mark(&ws[1]);
    ck_assert(before.block == after.block && before.used == after.used &&
              before.in_use == after.in_use);
    sd_request_free(&fresh);
    for (int k = 0; k < 2; k++) {
        sd_request_free(&r[k]);
        sd_step_destroy(st[k]);
        workspace_destroy(&ws[k]);
    }
    sd_model_free(m);
}
END_TEST

START_TEST(test_no_growth_after_warmup)
{
    struct sd_model *m = load_model("sd1-tiny", false, CHECKPOINT_PREDICTION_AUTO);
    struct workspace ws = test_cpu_workspace();
    struct gen_params p[2] = {mixed_params(m, 0), mixed_params(m, 2)};
    struct sd_image img[3];
    struct errbuf err;
    ck_assert_int_eq(sd_txt2img(m, &ws, p, 2, false, NULL, NULL, img, NULL, &err), STATUS_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_null(img[i].unit);
        sd_image_free(&img[i]);
    }
    const int blocks = ws.n_blocks;
    const unsigned grown = ws.grow_count;
    const size_t high = ws.high_water;
    ck_assert_int_eq(sd_txt2img(m, &ws, p, 2, false, NULL, NULL, img, NULL, &err), STATUS_OK);
    for (int i = 0; i < 3; i++)
        sd_image_free(&img[i]);
    ck_assert_int_eq(ws.n_blocks, blocks);
    ck_assert_uint_eq(ws.grow_count, grown);
    ck_assert_uint_eq(ws.high_water, high);
    ck_assert_uint_eq(ws.in_use, 0);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

/* --- validation and defaults ----------------------------------------------------------- */

static void expect_invalid(const struct sd_model *m, const struct gen_params *p,
                           const char *field)
{
    struct errbuf err;
    ck_assert_int_eq(gen_params_validate(m, p, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strncmp(err.msg, field, strlen(field)) == 0, "want '%s…', got: %s", field,
                  err.msg);
}

START_TEST(test_validation)
{
    struct sd_model *m = load_model("sd1-tiny", false, CHECKPOINT_PREDICTION_AUTO);
    struct gen_params p, q;
    gen_params_default(m, &p);
    struct errbuf err;
    ck_assert_msg(gen_params_validate(m, &p, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(p.width, 64); /* unet sample_size 8 × 8 */
    ck_assert_int_eq(m->size_multiple, 8); /* the VAE's: the U-Net takes any latent size */
    ck_assert_int_eq(p.sampler, SAMPLER_DPMPP_2M_KARRAS); /* PNDM is not implemented */
#define BAD(field, stmt) q = p; stmt; expect_invalid(m, &q, field)
    BAD("width", q.width = 100);
    BAD("width", q.width = 0);
    BAD("height", q.height = GEN_MAX_SIDE + 32);
    BAD("steps", q.steps = 0);
    BAD("steps", q.steps = GEN_MAX_STEPS + 1);
    BAD("guidance", q.guidance = -1);
    BAD("guidance", q.guidance = NAN);
    BAD("sampler", q.sampler = (enum sampler_kind)99);
    BAD("scheduler", q.scheduler = (enum sd_scheduler)99);
    BAD("scheduler", q.sampler = SAMPLER_DDIM; q.scheduler = SD_SCHEDULER_KARRAS);
    BAD("scheduler", q.sampler = SAMPLER_LCM; q.scheduler = SD_SCHEDULER_TRAILING);
    BAD("clip_skip", q.clip_skip = 2);
    BAD("clip_skip", q.clip_skip = -1);
    BAD("eta", q.eta = 1.5);
    BAD("n", q.n = 0);
    BAD("n", q.n = GEN_MAX_IMAGES + 1);
    BAD("n", q.n = 2; q.init_noise = (const float *)&p);
    BAD("sampler", q.sampler = SAMPLER_LCM; q.steps = 51); /* > original_inference_steps */
#undef BAD
    enum sampler_kind k;
    ck_assert_int_eq(sampler_kind_parse("no-such-sampler", &k, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "no-such-sampler"));
    enum sd_scheduler s;
    ck_assert_int_eq(sd_scheduler_parse("sgm_uniform", &s, &err), STATUS_OK);
    ck_assert_int_eq(s, SD_SCHEDULER_TRAILING);
    ck_assert_int_eq(sd_scheduler_parse("weird", &s, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strncmp(err.msg, "scheduler", 9) == 0, "%s", err.msg);
    ck_assert_str_eq(sd_sampler_display_name(SAMPLER_DPMPP_2M, SD_SCHEDULER_KARRAS),
                     "DPM++ 2M Karras");
    /* begin and txt2img validate too, and name the params */
    struct sd_request r;
    q = p;
    q.width = 100;
    struct workspace ws = test_cpu_workspace();
    ck_assert_int_eq(sd_request_begin(m, &ws, &q, 0, &r, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "width"));
    ck_assert_int_eq(sd_request_begin(m, &ws, &p, 1, &r, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "image_index"));
    sd_request_free(&r);
    struct gen_params two[2] = {p, q};
    struct sd_image img[2];
    ck_assert_int_eq(sd_txt2img(m, &ws, two, 2, false, NULL, NULL, img, NULL, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "params[1]: width"));
    ck_assert_ptr_null(img[0].rgb);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

START_TEST(test_truncation_reported)
{
    struct sd_model *m = load_model("sd1-tiny", false, CHECKPOINT_PREDICTION_AUTO);
    struct workspace ws = test_cpu_workspace();
    json_t *man = manifest(SD);
    const json_t *pj = json_object_get(json_object_get(man, "pipelines"), "sd1-tiny");
    const json_t *prompts = json_object_get(pj, "prompts"), *trunc = json_object_get(pj, "truncated");
    struct gen_params p;
    gen_params_default(m, &p);
    p.steps = 1;
    p.guidance = 7.5;
    for (size_t i = 0; i < json_array_size(prompts); i++) {
        p.prompt = json_string_value(json_array_get(prompts, i));
        p.negative_prompt = p.prompt;
        struct sd_request r;
        struct errbuf err;
        ck_assert_msg(sd_request_begin(m, &ws, &p, 0, &r, &err) == STATUS_OK, "%s", err.msg);
        ck_assert_int_eq(r.prompt_truncated, json_is_true(json_array_get(trunc, i)));
        ck_assert_int_eq(r.negative_truncated, r.prompt_truncated);
        ck_assert_int_eq(r.rows, 2);
        sd_request_free(&r);
    }
    json_decref(man);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

static void count_progress(void *user, int done, int total)
{
    int *calls = user;
    ck_assert_int_le(done, total);
    calls[0]++;
    calls[1] = done;
    calls[2] = total;
}

START_TEST(test_seed_convention_and_progress)
{
    struct sd_model *m = load_model("sd1-tiny", false, CHECKPOINT_PREDICTION_AUTO);
    struct workspace ws = test_cpu_workspace();
    struct gen_params p = mixed_params(m, 2); /* n = 2 */
    struct sd_image img[2], one;
    int calls[3] = {0, 0, 0};
    struct errbuf err;
    ck_assert_int_eq(sd_txt2img(m, &ws, &p, 1, true, count_progress, calls, img, NULL, &err),
                     STATUS_OK);
    ck_assert_int_eq(calls[0], p.steps);
    ck_assert_int_eq(calls[1], 2 * p.steps);
    ck_assert_int_eq(calls[2], 2 * p.steps);
    ck_assert_uint_eq(img[1].seed, p.seed + 1);
    struct gen_params q = p;
    q.seed = p.seed + 1;
    q.n = 1;
    ck_assert_int_eq(sd_txt2img(m, &ws, &q, 1, true, NULL, NULL, &one, NULL, &err), STATUS_OK);
    compare_images("image 1 of n=2 vs seed+1 alone", &img[1], &one);
    ck_assert_int_ne(memcmp(img[0].rgb, img[1].rgb, 64 * 64 * 3), 0);
    sd_image_free(&one);
    sd_image_free(&img[0]);
    sd_image_free(&img[1]);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

/* A temporary copy of sd1-tiny's folder (symlinks) with `defaults` as diffusiond.json
 * (NULL: none); returns the folder path in dir. */
static void folder_with_defaults(char *dir, size_t cap, const char *defaults)
{
    snprintf(dir, cap, "/tmp/diffusiond-defaults-XXXXXX");
    ck_assert(mkdtemp(dir));
    static const char *const parts[] = {"model_index.json", "scheduler", "text_encoder",
                                        "tokenizer", "unet", "vae"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char from[1024], to[1024];
        snprintf(from, sizeof from, "%s/sd1-tiny/diffusers/%s", SD, parts[i]);
        snprintf(to, sizeof to, "%s/%s", dir, parts[i]);
        ck_assert_msg(symlink(from, to) == 0, "symlink %s", to);
    }
    if (defaults) {
        char f[1024];
        snprintf(f, sizeof f, "%s/" SD_MODEL_DEFAULTS_FILE, dir);
        FILE *fp = fopen(f, "w");
        ck_assert(fp);
        fputs(defaults, fp);
        fclose(fp);
    }
}

/* diffusiond.json replaces the family's default steps and guidance; a bad one fails
 * the load naming the file. */
START_TEST(test_folder_defaults)
{
    char dir[256];
    struct sd_model_options opt;
    sd_model_options_default(&opt);
    opt.backend = test_cpu_backend();
    struct sd_model *m;
    struct errbuf err;

    folder_with_defaults(dir, sizeof dir, NULL);
    ck_assert_int_eq(sd_model_load(dir, &opt, &m, &err), STATUS_OK);
    ck_assert_int_eq(m->default_steps, 50); /* SD1's */
    ck_assert_double_eq(m->default_guidance, 7.5);
    sd_model_free(m);
    test_remove_tree(dir);

    folder_with_defaults(dir, sizeof dir, "{\"default_steps\": 20, \"default_guidance\": 5.0}");
    ck_assert_int_eq(sd_model_load(dir, &opt, &m, &err), STATUS_OK);
    ck_assert_int_eq(m->default_steps, 20);
    ck_assert_double_eq(m->default_guidance, 5.0);
    struct gen_params p;
    gen_params_default(m, &p);
    ck_assert_int_eq(p.steps, 20);
    sd_model_free(m);
    test_remove_tree(dir);

    static const char *const bad[] = {"{\"default_steps\": 0}", "{\"default_steps\": \"20\"}",
                                      "{\"default_guidance\": -1}", "[1]", "{"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        folder_with_defaults(dir, sizeof dir, bad[i]);
        enum status s = sd_model_load(dir, &opt, &m, &err);
        ck_assert_msg(s != STATUS_OK, "%s loaded", bad[i]);
        ck_assert_msg(strstr(err.msg, SD_MODEL_DEFAULTS_FILE), "%s: %s", bad[i], err.msg);
        test_remove_tree(dir);
    }
}
END_TEST

/* Tensor reads a load asks about; it cancels from read `cancel_at` on (-1: never). */
struct cancel_probe {
    int calls, cancel_at;
};

static bool probe_cancelled(void *ctx)
{
    struct cancel_probe *p = ctx;
    return p->cancel_at >= 0 && p->calls++ >= p->cancel_at;
}

static bool count_reads(void *ctx)
{
    ((struct cancel_probe *)ctx)->calls++;
    return false;
}

/* A load told to stop (a service's SIGTERM during start-up) fails with STATUS_CANCELLED
 * at its next tensor, whichever component it is in, and leaves nothing behind (the
 * ASan build checks the leaks); both layouts. */
START_TEST(test_load_cancelled)
{
    static const char *const paths[] = {SD "/sd1-tiny/diffusers",
                                        SD "/sd1-tiny/sd1-tiny.safetensors"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct sd_model_options opt;
        sd_model_options_default(&opt);
        opt.backend = test_cpu_backend();
        struct test_overrides ov; /* the single file's tiny configs */
        memset(&ov, 0, sizeof ov);
        if (i == 1)
            test_tiny_overrides(false, &ov, opt.config_override);
        struct cancel_probe all = {0, -1};
        opt.cancelled = count_reads;
        opt.cancel_ctx = &all;
        struct sd_model *m = NULL;
        struct errbuf err;
        ck_assert_int_eq(sd_model_load(paths[i], &opt, &m, &err), STATUS_OK);
        sd_model_free(m);
        ck_assert_int_gt(all.calls, 10);
        const int at[] = {0, all.calls / 3, all.calls / 2, all.calls - 1};
        for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
            struct cancel_probe p = {0, at[k]};
            opt.cancelled = probe_cancelled;
            opt.cancel_ctx = &p;
            m = (struct sd_model *)&p; /* must come back NULL */
            ck_assert_int_eq(sd_model_load(paths[i], &opt, &m, &err), STATUS_CANCELLED);
            ck_assert_ptr_null(m);
            ck_assert_msg(strstr(err.msg, "cancelled"), "%s", err.msg);
            ck_assert_int_eq(p.calls, at[k] + 1); /* stopped at the first read it refused */
        }
        test_overrides_free(&ov);
    }
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines survive a failing (forked) test */
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sd1_folder);
    tcase_add_test(tc, test_sd2_folder);
    tcase_add_test(tc, test_sd1_single_file);
    tcase_add_test(tc, test_sd2_single_file);
    suite_add_tcase(s, tc);
    TCase *tb = tcase_create("batching");
    tcase_set_timeout(tb, 300);
    tcase_add_test(tb, test_mixed_batch);
    tcase_add_test(tb, test_join_running_batch);
    tcase_add_test(tb, test_graphs_fall_back_on_cpu);
    tcase_add_test(tb, test_step_halves);
    tcase_add_test(tb, test_no_growth_after_warmup);
    tcase_add_test(tb, test_seed_convention_and_progress);
    suite_add_tcase(s, tb);
    TCase *tv = tcase_create("validation");
    tcase_add_test(tv, test_validation);
    tcase_add_test(tv, test_truncation_reported);
    tcase_add_test(tv, test_folder_defaults);
    tcase_add_test(tv, test_load_cancelled);
    suite_add_tcase(s, tv);
    TCase *tf = tcase_create("full");
    tcase_set_timeout(tf, 0); /* minutes per case on a few cores */
    tcase_add_test(tf, test_full_sets);
    suite_add_tcase(s, tf);
    return test_run_suite(s);
}
