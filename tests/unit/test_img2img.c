/* tests/unit/test_img2img.c — img2img (gen_params.init_image, strength) against
 * diffusers' StableDiffusionImg2ImgPipeline on sd1-tiny: every img2img_<case>.safetensors
 * of tools/make_img2img_fixtures.py (manifest pipelines.sd1-tiny.img2img.cases) with
 * diffusers' posterior sample ε, add_noise noise and step noise injected, step by step
 * (sd_request_begin, sd_unet_step, sd_decode) and through sd_txt2img, through the
 * diffusers folder and the single file:
 *   - the noised initial latent (VAE encode + add_noise): max |C − ref| ≤ 1e-4 × std,
 *     issue 3's component tolerance;
 *   - each step's latent: the same 1e-4 × std (it tells where a failing case
 *     diverges);
 *   - the image: PSNR ≥ 40 dB (issue 3, as tests/unit/test_pipeline.c).
 * And: sd_img2img_steps is Python's int(steps·strength); strength outside (0, 1] or
 * giving 0 steps is STATUS_INVALID_ARGUMENT naming "strength"; with the hooks off an
 * img2img image is deterministic, differs from the txt2img image of its seed, follows
 * the seed + i convention and draws the Philox streams models/pipeline.h documents.
 *
 * Inpainting (gen_params.init_mask) the same way, against diffusers'
 * StableDiffusionInpaintPipeline (tools/make_inpaint_fixtures.py, manifest
 * pipelines.sd1-tiny.inpaint.cases): each step's latent after the kept pixels' reset
 * within STEP_TOL, the decoder's floats (`unit`, before the overlay) PSNR ≥ 40 dB, and
 * the 8-bit image exactly the overlay of the decoder's pixels on the start image
 * (kept pixels the start image's own).  Plus: a mask needs an image, a fill needs a
 * mask; each fill gives its own masked area and the same kept pixels; an inpainting
 * request inside a batch with txt2img and img2img requests gives its images alone. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/philox.h"
#include "engine/workspace.h"
#include "models/pipeline.h"
#include "models/safetensors.h"
#include "models/sd_model.h"
#include "tests/testutil.h"

#define SD DIFFUSIOND_SOURCE_DIR "/tests/fixtures/sd"
#define PIPE "sd1-tiny"
#define MIN_PSNR 40.0       /* issue 3: the image */
#define MIN_PSNR_SAME 45.0  /* issue 4: the same request through another driver */
#define COMPONENT_TOL 1e-4  /* issue 3: × std(reference), the initial latent */
#define STEP_TOL 1e-4       /* × std(reference), each step's latent (measured ≤ 6e-6) */
#define MAX_STEPS 64

/* --- fixtures ------------------------------------------------------------------------ */

/* pipelines.sd1-tiny.<kind>.cases: kind "img2img" or "inpaint". */
static json_t *fixture_cases(const char *kind, json_t **man)
{
    json_error_t e;
    *man = json_load_file(SD "/manifest.json", 0, &e);
    ck_assert_msg(*man, "manifest.json: %s", e.text);
    const json_t *cases = json_object_get(
        json_object_get(json_object_get(json_object_get(*man, "pipelines"), PIPE), kind),
        "cases");
    ck_assert_msg(json_object_size(cases) >= 1,
                  "no pipelines." PIPE ".%s.cases (tools/make_%s_fixtures.py)", kind, kind);
    return (json_t *)cases;
}


static struct sd_model *load_model(bool single)
{
    if (!single) {
        struct sd_model *m = test_load_sd1_tiny();
        ck_assert_ptr_nonnull(m);
        return m;
    }
    struct sd_model_options opt;
    sd_model_options_default(&opt);
    opt.backend = test_cpu_backend();
    struct test_overrides ov;
    test_tiny_overrides(false, &ov, opt.config_override);
    struct sd_model *m;
    struct errbuf err;
    enum status s = sd_model_load(SD "/" PIPE "/" PIPE ".safetensors", &opt, &m, &err);
    test_overrides_free(&ov);
    ck_assert_msg(s == STATUS_OK, "single file: %s", err.msg);
    return m;
}

struct i2i_case {
    const char *name;
    struct gen_params p;
    int t_start, steps_run;
    uint8_t *rgb, *mask;                /* mask: inpainting cases only */
    float *encode_noise, *init_noise, *latents_init;
    float *noise[MAX_STEPS];            /* noise.i (step t_start + i) */
    const float *step_noise[MAX_STEPS]; /* indexed by the whole schedule's step */
    float *latents[MAX_STEPS];          /* step.i.latents, i counting the steps that ran */
    size_t n_lat;                       /* latent elements */
    float *image;                       /* NHWC [0,1] */
    size_t image_numel;
};

static void case_load(const struct sd_model *m, const char *name, const json_t *c,
                      struct i2i_case *k)
{
    memset(k, 0, sizeof *k);
    k->name = name;
    struct gen_params *p = &k->p;
    p->prompt = json_string_value(json_object_get(c, "prompt"));
    p->negative_prompt = json_string_value(json_object_get(c, "negative_prompt"));
    p->width = (int)json_integer_value(json_object_get(c, "width"));
    p->height = (int)json_integer_value(json_object_get(c, "height"));
    p->steps = (int)json_integer_value(json_object_get(c, "steps"));
    p->strength = json_number_value(json_object_get(c, "strength"));
    p->guidance = json_number_value(json_object_get(c, "guidance_scale"));
    p->eta = json_number_value(json_object_get(c, "eta")); /* null → 0 */
    p->n = 1;
    p->seed = 12345; /* unused: every draw is a hook */
    test_case_sampler(json_object_get(c, "scheduler"), m, p);
    ck_assert_str_eq(sampler_kind_name(p->sampler),
                     json_string_value(json_object_get(c, "sampler")));
    struct errbuf err;
    k->t_start = (int)json_integer_value(json_object_get(c, "t_start"));
    k->steps_run = (int)json_integer_value(json_object_get(c, "steps_run"));
    ck_assert_int_le(p->steps, MAX_STEPS);
    ck_assert_int_eq(k->t_start + k->steps_run, p->steps);

    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SD, json_string_value(json_object_get(c, "file")));
    struct safetensors *st;
    ck_assert_msg(safetensors_open(path, &st, &err) == STATUS_OK, "%s", err.msg);
    const struct safetensors_tensor *img = safetensors_find(st, "init_image");
    ck_assert_ptr_nonnull(img);
    ck_assert_int_eq(img->dtype, SAFETENSORS_U8);
    ck_assert_uint_eq(img->numel, (size_t)p->width * (size_t)p->height * 3);
    k->rgb = malloc(img->numel);
    memcpy(k->rgb, img->data, img->numel);
    p->init_image = k->rgb;
    const struct safetensors_tensor *mask = safetensors_find(st, "init_mask");
    if (mask) { /* an inpainting case */
        ck_assert_int_eq(mask->dtype, SAFETENSORS_U8);
        ck_assert_uint_eq(mask->numel, (size_t)p->width * (size_t)p->height);
        k->mask = malloc(mask->numel);
        memcpy(k->mask, mask->data, mask->numel);
        p->init_mask = k->mask;
    }
    size_t n;
    float *t_start = test_read_tensor(st, "t_start", &n);
    ck_assert_int_eq((int)t_start[0], k->t_start);
    free(t_start);
    k->encode_noise = test_read_tensor_nhwc(st, "encode_noise", &k->n_lat);
    k->init_noise = test_read_tensor_nhwc(st, "init_noise", &n);
    ck_assert_uint_eq(n, k->n_lat);
    if (safetensors_find(st, "latents_init")) /* img2img's add_noise output */
        k->latents_init = test_read_tensor_nhwc(st, "latents_init", &n);
    p->encode_noise = k->encode_noise;
    p->init_noise = k->init_noise;
    const int draws = (int)json_integer_value(json_object_get(c, "noise_draws"));
    /* a draw per step from t_start on; LCM draws none at its last step */
    ck_assert(draws >= 0 && draws <= k->steps_run);
    for (int i = 0; i < draws; i++) {
        char key[32];
        snprintf(key, sizeof key, "noise.%d", i);
        k->noise[i] = test_read_tensor_nhwc(st, key, &n);
        k->step_noise[k->t_start + i] = k->noise[i]; /* steps before t_start: NULL */
    }
    if (draws > 0)
        p->step_noise = k->step_noise;
    for (int i = 0; i < k->steps_run; i++) {
        char key[32];
        snprintf(key, sizeof key, "step.%d.latents", i);
        k->latents[i] = test_read_tensor_nhwc(st, key, &n);
    }
    k->image = test_read_tensor(st, "image", &k->image_numel);
    safetensors_close(st);
}

static void case_free(struct i2i_case *k)
{
    free(k->rgb);
    free(k->mask);
    free(k->encode_noise);
    free(k->init_noise);
    free(k->latents_init);
    for (int i = 0; i < MAX_STEPS; i++) {
        free(k->noise[i]);
        free(k->latents[i]);
    }
    free(k->image);
}

/* max |got − want| / std(want) */
static double rel_err(const float *got, const float *want, size_t n)
{
    return test_max_abs_diff(got, want, n) / test_std(want, n);
}

/* Inpainting: the 8-bit image is the decoder's pixels (round(unit·255)) composited
 * over the start image with alpha min(255, 2·mask), exactly; the kept pixels (mask 0) are
 * the start image's and some repainted ones differ from it.  img2img: 8-bit = the
 * decoder's pixels. */
static void check_overlay(const struct i2i_case *k, const struct sd_image *img)
{
    const size_t px = (size_t)img->width * (size_t)img->height;
    size_t kept = 0, kept_same = 0, painted = 0, painted_differ = 0;
    for (size_t i = 0; i < px * 3; i++) {
        const unsigned gen = (unsigned)nearbyintf(img->unit[i] * 255.0f);
        const unsigned m = k->mask ? k->mask[i / 3] : 255, start = k->rgb[i];
        const unsigned a = m < 128 ? 2 * m : 255; /* A1111's overlay alpha */
        const unsigned want = (gen * a + start * (255 - a) + 127) / 255;
        ck_assert_msg(img->rgb[i] == want, "%s: pixel %zu channel %zu: %u, want %u (decoder %u, "
                      "start %u, mask %u)", k->name, i / 3, i % 3, img->rgb[i], want, gen,
                      start, m);
        kept += a == 0;
        kept_same += a == 0 && img->rgb[i] == start;
        painted += a == 255;
        painted_differ += a == 255 && img->rgb[i] != start;
    }
    if (k->mask) {
        printf("inpaint %-11s overlay exact: %zu kept samples all the start image's, %zu of %zu "
               "repainted ones differ from it\n", k->name, kept_same, painted_differ, painted);
        ck_assert(kept > 0 && kept_same == kept);
        ck_assert_msg(painted_differ > painted / 2, "%s: the repainted area is the start image",
                      k->name);
    }
}

/* One case step by step, checked at every step, then through sd_txt2img. */
static double run_case(struct sd_model *m, struct workspace *ws, const struct i2i_case *k,
                       const char *layout)
{
    const struct gen_params *p = &k->p;
    struct errbuf err;
    ck_assert_int_eq(sd_img2img_steps(p->steps, p->strength), k->steps_run);
    ck_assert_msg(gen_params_validate(m, p, &err) == STATUS_OK, "%s: %s", k->name, err.msg);

    struct sd_request req;
    ck_assert_msg(sd_request_begin(m, ws, p, 0, &req, &err) == STATUS_OK, "%s: %s", k->name,
                  err.msg);
    ck_assert_uint_eq(req.n_elems, k->n_lat);
    ck_assert_int_eq(sd_request_steps(&req), k->steps_run);
    ck_assert_int_eq(sd_request_step(&req), 0);
    float *lat = test_download(&req.latent);
    const double e0 = k->latents_init ? rel_err(lat, k->latents_init, k->n_lat) : 0.0;
    free(lat);
    if (k->latents_init) /* inpainting: the first step's latent tells */
        printf("img2img %-11s %-11s latents_init: max err %.3g × std\n", layout, k->name, e0);
    ck_assert_msg(e0 <= COMPONENT_TOL, "%s (%s): initial latent max err %.3g × std > %g",
                  k->name, layout, e0, COMPONENT_TOL);

    struct sd_request *batch[1] = {&req};
    double worst = 0;
    for (int i = 0; i < k->steps_run; i++) {
        ck_assert(!sd_request_done(&req));
        ck_assert_msg(sd_unet_step(m, ws, batch, 1, &err) == STATUS_OK, "%s step %d: %s",
                      k->name, i, err.msg);
        ck_assert_int_eq(sd_request_step(&req), i + 1);
        lat = test_download(&req.latent);
        const double e = rel_err(lat, k->latents[i], k->n_lat);
        free(lat);
        printf("img2img %-11s %-11s step %d (schedule step %d): max err %.3g × std\n", layout,
               k->name, i, k->t_start + i, e);
        ck_assert_msg(e <= STEP_TOL, "%s (%s): step %d (schedule step %d) latent max err "
                      "%.3g × std > %g", k->name, layout, i, k->t_start + i, e, STEP_TOL);
        worst = fmax(worst, e);
    }
    ck_assert(sd_request_done(&req));

    struct sd_image img;
    ck_assert_msg(sd_decode(m, ws, batch, 1, true, &img, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(img.width, p->width);
    ck_assert_int_eq(img.height, p->height);
    ck_assert_uint_eq((size_t)img.width * (size_t)img.height * 3, k->image_numel);
    const double db = test_psnr(img.unit, k->image, k->image_numel);
    const double emax = test_max_abs_diff(img.unit, k->image, k->image_numel);
    printf("img2img %-11s %-11s %-8s %dx%d steps %d strength %.2f (t_start %d, %d run): "
           "latents_init %.3g × std, steps worst %.3g × std, image max abs err %.3g, "
           "PSNR %.2f dB\n",
           layout, k->name, sampler_kind_name(p->sampler), p->width, p->height, p->steps,
           p->strength, k->t_start, k->steps_run, e0, worst, emax, db);
    ck_assert_msg(db >= MIN_PSNR, "%s (%s): PSNR %.2f dB < %.0f", k->name, layout, db, MIN_PSNR);
    check_overlay(k, &img);
    sd_request_free(&req);

    /* the whole-batch driver: the same image */
    struct sd_image whole;
    ck_assert_msg(sd_txt2img(m, ws, p, 1, true, NULL, NULL, &whole, NULL, &err) == STATUS_OK,
                  "%s: %s", k->name, err.msg);
    const double db_whole = test_psnr(whole.unit, img.unit, k->image_numel);
    ck_assert_msg(db_whole >= MIN_PSNR_SAME, "%s (%s): sd_txt2img vs steps: PSNR %.2f dB",
                  k->name, layout, db_whole);
    sd_image_free(&whole);
    sd_image_free(&img);
    fflush(stdout);
    return db;
}

static void run_all(bool single, const char *kind)
{
    const char *layout = single ? "single-file" : "diffusers";
    json_t *man;
    const json_t *cases = fixture_cases(kind, &man);
    struct sd_model *m = load_model(single);
    struct workspace ws = test_cpu_workspace();
    const char *name;
    const json_t *c;
    double worst = INFINITY;
    json_object_foreach((json_t *)cases, name, c) {
        struct i2i_case k;
        case_load(m, name, c, &k);
        worst = fmin(worst, run_case(m, &ws, &k, layout));
        case_free(&k);
    }
    printf("%s %s: worst PSNR %.2f dB over %zu cases\n", kind, layout, worst,
           json_object_size(cases));
    workspace_destroy(&ws);
    sd_model_free(m);
    json_decref(man);
}

START_TEST(test_fixtures_folder)
{
    run_all(false, "img2img");
}
END_TEST

START_TEST(test_fixtures_single_file)
{
    run_all(true, "img2img");
}
END_TEST

START_TEST(test_inpaint_fixtures_folder)
{
    run_all(false, "inpaint");
}
END_TEST

START_TEST(test_inpaint_fixtures_single_file)
{
    run_all(true, "inpaint");
}
END_TEST

/* --- steps, validation -------------------------------------------------------------- */

START_TEST(test_img2img_steps)
{
    /* Python's int(steps * strength) of the double product */
    static const struct {
        int steps;
        double strength;
        int want;
    } t[] = {
        {10, 0.6, 6}, {8, 0.75, 6}, {10, 0.5, 5}, {10, 0.8, 8}, {10, 0.3, 3}, {4, 0.2, 0},
        {50, 1.0, 50}, {1, 1.0, 1}, {100, 0.29, 28}, /* 28.999999999999996 */
        {100, 0.58, 57},                             /* 57.99999999999999 */
        {50, 0.57, 28},                              /* 28.499999999999996 */
        {10, 0.7, 7}, {3, 0.1, 0}, {20, 0.35, 7}, {1000, 0.001, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        ck_assert_msg(sd_img2img_steps(t[i].steps, t[i].strength) == t[i].want,
                      "sd_img2img_steps(%d, %g) = %d, want %d", t[i].steps, t[i].strength,
                      sd_img2img_steps(t[i].steps, t[i].strength), t[i].want);
}
END_TEST

static void expect_invalid(const struct sd_model *m, const struct gen_params *p,
                           const char *field)
{
    struct errbuf err;
    ck_assert_int_eq(gen_params_validate(m, p, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strncmp(err.msg, field, strlen(field)) == 0, "want '%s…', got: %s", field,
                  err.msg);
}

static uint8_t gray[64 * 64 * 3];

START_TEST(test_strength_validation)
{
    struct sd_model *m = load_model(false);
    struct gen_params p, q;
    gen_params_default(m, &p);
    memset(gray, 128, sizeof gray);
    p.init_image = gray;
    p.strength = 0.5;
    p.steps = 10;
    struct errbuf err;
    ck_assert_msg(gen_params_validate(m, &p, &err) == STATUS_OK, "%s", err.msg);
#define BAD(field, stmt) q = p; stmt; expect_invalid(m, &q, field)
#define GOOD(stmt) q = p; stmt; \
    ck_assert_msg(gen_params_validate(m, &q, &err) == STATUS_OK, "%s", err.msg)
    BAD("strength", q.steps = 4; q.strength = 0.2);   /* int(0.8) = 0 steps */
    BAD("strength", q.steps = 3; q.strength = 0.1);   /* int(0.30000000000000004) = 0 */
    BAD("strength", q.strength = 0);
    BAD("strength", q.strength = -0.5);
    BAD("strength", q.strength = 1.0000001);
    BAD("strength", q.strength = 1.5);
    BAD("strength", q.strength = NAN);
    BAD("strength", q.strength = INFINITY);
    BAD("n", q.n = 2; q.encode_noise = (const float *)gray); /* hooks need n = 1 */
    GOOD(q.strength = 1.0);
    GOOD(q.steps = 4; q.strength = 0.25);              /* 1 step */
    GOOD(q.steps = 1; q.strength = 1.0);
    GOOD(q.init_image = NULL; q.strength = 0);         /* txt2img: strength not read */
    GOOD(q.init_image = NULL; q.strength = 7);
#undef BAD
#undef GOOD
    /* sd_request_begin and sd_txt2img validate too */
    q = p;
    q.steps = 4;
    q.strength = 0.2;
    struct workspace ws = test_cpu_workspace();
    struct sd_request r;
    ck_assert_int_eq(sd_request_begin(m, &ws, &q, 0, &r, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "strength"), "%s", err.msg);
    sd_request_free(&r);
    struct sd_image img;
    ck_assert_int_eq(sd_txt2img(m, &ws, &q, 1, false, NULL, NULL, &img, NULL, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "strength"), "%s", err.msg);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

/* --- without hooks ------------------------------------------------------------------- */

/* The first 64×64 case of `kind`'s fixtures: its start image, and (mask not NULL) its
 * mask (malloc'ed). */
static uint8_t *fixture_start(const struct sd_model *m, const char *kind, uint8_t **mask)
{
    json_t *man;
    const json_t *cases = fixture_cases(kind, &man);
    const char *name;
    const json_t *c;
    uint8_t *rgb = NULL;
    json_object_foreach((json_t *)cases, name, c) {
        if (json_integer_value(json_object_get(c, "width")) != 64 ||
            json_integer_value(json_object_get(c, "height")) != 64)
            continue;
        struct i2i_case k;
        case_load(m, name, c, &k);
        rgb = k.rgb;
        if (mask)
            *mask = k.mask;
        k.rgb = NULL;
        if (mask)
            k.mask = NULL;
        case_free(&k);
        break;
    }
    ck_assert_ptr_nonnull(rgb);
    ck_assert(!mask || *mask);
    json_decref(man);
    return rgb;
}

static void generate(struct sd_model *m, struct workspace *ws, const struct gen_params *p,
                     struct sd_image *out)
{
    struct errbuf err;
    ck_assert_msg(sd_txt2img(m, ws, p, 1, true, NULL, NULL, out, NULL, &err) == STATUS_OK, "%s",
                  err.msg);
}

START_TEST(test_deterministic_without_hooks)
{
    struct sd_model *m = load_model(false);
    struct workspace ws = test_cpu_workspace();
    const int w = 64, h = 64;
    uint8_t *rgb = fixture_start(m, "img2img", NULL);
    struct gen_params p;
    gen_params_default(m, &p);
    p.prompt = "a photograph of an astronaut riding a horse";
    p.negative_prompt = "blurry";
    p.width = w;
    p.height = h;
    p.steps = 6;
    p.guidance = 7.5;
    p.sampler = SAMPLER_EULER_A; /* draws step noise too */
    p.seed = 4242;
    p.init_image = rgb;
    p.strength = 0.6;
    const size_t nb = (size_t)w * (size_t)h * 3;

    struct sd_image a, b, t2i, other, pair[2];
    generate(m, &ws, &p, &a);
    generate(m, &ws, &p, &b);
    ck_assert_msg(memcmp(a.rgb, b.rgb, nb) == 0, "img2img: same seed, different pixels");
    ck_assert_msg(memcmp(a.unit, b.unit, nb * sizeof(float)) == 0,
                  "img2img: same seed, different floats");

    struct gen_params q = p;
    q.init_image = NULL;
    generate(m, &ws, &q, &t2i);
    printf("img2img vs txt2img, seed %llu: PSNR %.2f dB\n", (unsigned long long)p.seed,
           test_psnr(a.unit, t2i.unit, nb));
    ck_assert_msg(memcmp(a.rgb, t2i.rgb, nb) != 0, "img2img gave the txt2img image");

    q = p;
    q.seed = p.seed + 1;
    generate(m, &ws, &q, &other);
    ck_assert_msg(memcmp(a.rgb, other.rgb, nb) != 0, "img2img: seeds 4242 and 4243 agree");

    /* image 1 of n = 2 is the image of seed + 1 alone */
    q = p;
    q.n = 2;
    struct errbuf err;
    ck_assert_msg(sd_txt2img(m, &ws, &q, 1, true, NULL, NULL, pair, NULL, &err) == STATUS_OK,
                  "%s", err.msg);
    const double db0 = test_psnr(pair[0].unit, a.unit, nb);
    const double db1 = test_psnr(pair[1].unit, other.unit, nb);
    printf("img2img n=2: image 0 vs seed alone %.2f dB, image 1 vs seed + 1 alone %.2f dB\n",
           db0, db1);
    ck_assert_msg(db0 >= MIN_PSNR_SAME && db1 >= MIN_PSNR_SAME, "n=2: %.2f / %.2f dB", db0, db1);

    /* the hooks off draw what models/pipeline.h says: ε = (seed, subsequence 1)
     * elements [0, N), the add_noise noise (seed, 0) [0, N), step k's noise (seed, 0)
     * [(k + 1)·N, (k + 2)·N) with k counting the whole schedule's steps */
    {
        const size_t N = (size_t)(h / 8) * (size_t)(w / 8) * 4; /* sd1-tiny: factor 8, 4 ch */
        const int b = p.steps - sd_img2img_steps(p.steps, p.strength);
        float *eps = malloc(N * sizeof *eps), *noise = malloc(N * sizeof *noise);
        float *steps[MAX_STEPS] = {0};
        philox_normal_fill(p.seed, 1, 0, eps, N);
        philox_normal_fill(p.seed, 0, 0, noise, N);
        for (int k = b; k < p.steps; k++) {
            steps[k] = malloc(N * sizeof(float));
            philox_normal_fill(p.seed, 0, (uint64_t)(k + 1) * N, steps[k], N);
        }
        struct gen_params hk = p;
        hk.encode_noise = eps;
        hk.init_noise = noise;
        hk.step_noise = (const float *const *)steps;
        struct sd_image hooked;
        generate(m, &ws, &hk, &hooked);
        printf("img2img hooks = the documented Philox streams: %s (PSNR %.2f dB)\n",
               memcmp(hooked.unit, a.unit, nb * sizeof(float)) == 0 ? "bit-identical" : "differs",
               test_psnr(hooked.unit, a.unit, nb));
        ck_assert_msg(memcmp(hooked.unit, a.unit, nb * sizeof(float)) == 0,
                      "img2img: the hooks set to the documented streams change the image");
        sd_image_free(&hooked);
        for (int k = 0; k < MAX_STEPS; k++)
            free(steps[k]);
        free(eps);
        free(noise);
    }

    /* strength 1: every step of the schedule runs (from the image's latent noised to
     * the first timestep) */
    q = p;
    q.strength = 1.0;
    struct sd_request r;
    ck_assert_msg(sd_request_begin(m, &ws, &q, 0, &r, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(sd_request_steps(&r), p.steps);
    sd_request_free(&r);

    for (int i = 0; i < 2; i++)
        sd_image_free(&pair[i]);
    sd_image_free(&a);
    sd_image_free(&b);
    sd_image_free(&t2i);
    sd_image_free(&other);
    free(rgb);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

/* Samples where a differs from b, over the pixels whose mask is `value`. */
static size_t differ_where(const uint8_t *a, const uint8_t *b, const uint8_t *mask,
                           unsigned value, size_t px)
{
    size_t n = 0;
    for (size_t i = 0; i < px * 3; i++)
        n += mask[i / 3] == value && a[i] != b[i];
    return n;
}

START_TEST(test_inpaint_validation_and_fill)
{
    struct sd_model *m = load_model(false);
    struct workspace ws = test_cpu_workspace();
    uint8_t *rgb, *mask;
    rgb = fixture_start(m, "inpaint", &mask);
    struct gen_params p, q;
    gen_params_default(m, &p);
    p.prompt = "a red apple on a table";
    p.width = p.height = 64;
    p.steps = 6;
    p.guidance = 7.5;
    p.sampler = SAMPLER_EULER_A;
    p.seed = 99;
    p.init_image = rgb;
    p.init_mask = mask;
    p.strength = 0.6;
    struct errbuf err;
    ck_assert_msg(gen_params_validate(m, &p, &err) == STATUS_OK, "%s", err.msg);
    q = p;
    q.init_image = NULL;
    expect_invalid(m, &q, "init_mask");
    q = p;
    q.init_mask = NULL;
    q.inpaint_fill = SD_FILL_LATENT_NOISE;
    expect_invalid(m, &q, "inpaint_fill");
    q = p;
    q.inpaint_fill = SD_FILL_COUNT_;
    expect_invalid(m, &q, "inpaint_fill");

    /* each fill: the kept pixels are the start image's, the repainted area its own;
     * the same request twice gives the same pixels */
    const size_t px = 64 * 64, nb = px * 3;
    struct sd_image img[SD_FILL_COUNT_], again;
    for (int f = 0; f < SD_FILL_COUNT_; f++) {
        q = p;
        q.inpaint_fill = (enum sd_inpaint_fill)f;
        generate(m, &ws, &q, &img[f]);
        ck_assert_uint_eq(differ_where(img[f].rgb, rgb, mask, 0, px), 0);
        ck_assert_msg(differ_where(img[f].rgb, rgb, mask, 255, px) > 0,
                      "fill %d: the repainted area is the start image", f);
    }
    q = p;
    q.inpaint_fill = SD_FILL_LATENT_NOISE;
    generate(m, &ws, &q, &again);
    ck_assert(memcmp(again.rgb, img[SD_FILL_LATENT_NOISE].rgb, nb) == 0);
    sd_image_free(&again);
    for (int f = 0; f < SD_FILL_COUNT_; f++)
        for (int g = f + 1; g < SD_FILL_COUNT_; g++) {
            const size_t d = differ_where(img[f].rgb, img[g].rgb, mask, 255, px);
            printf("inpaint fills %d and %d at strength 0.6: %zu repainted samples differ\n", f,
                   g, d);
            ck_assert_msg(d > 0, "fills %d and %d give the same image", f, g);
        }
    /* at strength 1 the start is pure noise: the fill changes nothing */
    for (int f = 0; f < SD_FILL_COUNT_; f++) {
        sd_image_free(&img[f]);
        q = p;
        q.strength = 1.0;
        q.inpaint_fill = (enum sd_inpaint_fill)f;
        generate(m, &ws, &q, &img[f]);
        if (f > 0)
            ck_assert_msg(memcmp(img[f].rgb, img[0].rgb, nb) == 0,
                          "strength 1: fill %d changed the image", f);
    }
    /* inpaint_no_overlay: the decoder's pixels as they are (the caller pastes) */
    q = p;
    q.inpaint_no_overlay = true;
    generate(m, &ws, &q, &again);
    size_t decoder = 0;
    for (size_t i = 0; i < nb; i++)
        decoder += again.rgb[i] == (uint8_t)nearbyintf(again.unit[i] * 255.0f);
    ck_assert_uint_eq(decoder, nb);
    ck_assert(differ_where(again.rgb, rgb, mask, 0, px) > 0);
    sd_image_free(&again);
    /* without a mask the same request is img2img: it changes the kept pixels too */
    q = p;
    q.init_mask = NULL;
    generate(m, &ws, &q, &again);
    ck_assert(differ_where(again.rgb, rgb, mask, 0, px) > 0);
    sd_image_free(&again);
    for (int f = 0; f < SD_FILL_COUNT_; f++)
        sd_image_free(&img[f]);
    free(rgb);
    free(mask);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

/* An inpainting request (n = 2) inside one batch with a txt2img and an img2img request
 * gives the images it gives alone (issue 4's batch invariance). */
START_TEST(test_inpaint_in_mixed_batch)
{
    struct sd_model *m = load_model(false);
    struct workspace ws = test_cpu_workspace();
    uint8_t *rgb, *mask;
    rgb = fixture_start(m, "inpaint", &mask);
    struct gen_params p[3];
    for (int i = 0; i < 3; i++) {
        gen_params_default(m, &p[i]);
        p[i].prompt = i == 1 ? "a red cube" : "a photograph of an astronaut riding a horse";
        p[i].width = p[i].height = 64;
        p[i].guidance = 7.5;
        p[i].seed = 500 + (uint64_t)i;
    }
    p[0].sampler = SAMPLER_EULER_A; /* inpainting, two images */
    p[0].steps = 6;
    p[0].init_image = rgb;
    p[0].init_mask = mask;
    p[0].strength = 0.8;
    p[0].n = 2;
    p[1].sampler = SAMPLER_DPMPP_2M; /* txt2img */
    p[1].steps = 5;
    p[2].sampler = SAMPLER_EULER; /* img2img */
    p[2].steps = 8;
    p[2].init_image = rgb;
    p[2].strength = 0.5;
    struct sd_image batch[4];
    struct errbuf err;
    ck_assert_msg(sd_txt2img(m, &ws, p, 3, true, NULL, NULL, batch, NULL, &err) == STATUS_OK,
                  "%s", err.msg);
    const size_t nb = 64 * 64 * 3;
    int idx = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < p[i].n; j++, idx++) {
            struct gen_params q = p[i];
            q.seed += (uint64_t)j;
            q.n = 1;
            struct sd_image one;
            generate(m, &ws, &q, &one);
            const double db = test_psnr(batch[idx].unit, one.unit, nb);
            printf("inpaint mixed batch: params %d image %d vs alone: PSNR %.2f dB\n", i, j, db);
            ck_assert_msg(db >= MIN_PSNR_SAME, "params %d image %d: %.2f dB", i, j, db);
            sd_image_free(&one);
        }
    ck_assert_uint_eq(differ_where(batch[0].rgb, rgb, mask, 0, 64 * 64), 0);
    ck_assert_uint_eq(differ_where(batch[1].rgb, rgb, mask, 0, 64 * 64), 0);
    for (int i = 0; i < 4; i++)
        sd_image_free(&batch[i]);
    free(rgb);
    free(mask);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines survive a failing (forked) test */
    Suite *s = suite_create("img2img");
    TCase *tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_fixtures_folder);
    tcase_add_test(tc, test_fixtures_single_file);
    tcase_add_test(tc, test_inpaint_fixtures_folder);
    tcase_add_test(tc, test_inpaint_fixtures_single_file);
    suite_add_tcase(s, tc);
    TCase *tv = tcase_create("validation");
    tcase_set_timeout(tv, 120);
    tcase_add_test(tv, test_img2img_steps);
    tcase_add_test(tv, test_strength_validation);
    tcase_add_test(tv, test_deterministic_without_hooks);
    tcase_add_test(tv, test_inpaint_validation_and_fill);
    tcase_add_test(tv, test_inpaint_in_mixed_batch);
    suite_add_tcase(s, tv);
    return test_run_suite(s);
}
