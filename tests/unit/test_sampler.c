/* tests/unit/test_sampler.c — sampler state machines (models/sampler.h).
 *
 * Parity with diffusers: tests/fixtures/samplers/ (tools/make_sampler_fixtures.py,
 * diffusers 0.42.1 / torch 2.15.0) holds 181 runs: 8 samplers (Euler, Euler ancestral,
 * DDIM eta 0 and 0.7, DPM++ 2M, DPM++ 2M Karras, DDPM, LCM) × 5 scheduler configs ×
 * n_steps ∈ {1, 4, 20, 25}, plus two configs with the remaining options (continuous
 * timesteps, log-linear interpolation, Karras range, Heun solver, λ clipping,
 * euler_at_final, DDPM variance types), each from the same initial noise (2×4×4×4) with a fake
 * U-Net computed identically here:
 *     model_output[i] = f32(0.1·x_in[i] + 0.5·sin(0.01·t + 0.37·i)).
 * Checked per run: the timesteps and σ (relative 1e-6), init_noise_sigma and the
 * input scales (relative 1e-6), and the latent after every step, with diffusers' own
 * noise fed through sampler_step_with_noise:
 *     max |ours − diffusers| ≤ 1e-5 × scale,
 * scale = the largest |latent| of that run (initial latent included).
 *
 * Unit tests: invalid requests rejected with a message naming the field, states
 * interleaved step by step equal states run alone (batch independence), Philox noise
 * reproducible per seed and laid out as documented, the coefficient path
 * (sampler_step_coeffs + sampler_advance) equal to sampler_step, name parsing.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/philox.h"
#include "models/safetensors.h"
#include "models/sampler.h"
#include "tests/testutil.h"

#define FIXTURES DIFFUSIOND_SOURCE_DIR "/tests/fixtures/samplers"
#define N_ELEMS 128
#define TRAJ_TOL 1e-5
#define TABLE_TOL 1e-6

static const char *const SD1_CONFIG =
    "{\"_class_name\": \"PNDMScheduler\", \"beta_end\": 0.012, \"beta_schedule\": "
    "\"scaled_linear\", \"beta_start\": 0.00085, \"num_train_timesteps\": 1000, "
    "\"set_alpha_to_one\": false, \"skip_prk_steps\": true, \"steps_offset\": 1, "
    "\"trained_betas\": null, \"clip_sample\": false}";

/* The fake U-Net (tools/make_sampler_fixtures.py has the same). */
static void fake_model(const float *x_in, double t, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(0.1 * (double)x_in[i] + 0.5 * sin(0.01 * t + 0.37 * (double)i));
}

static void schedule_from(const char *json, struct schedule *s)
{
    struct schedule_config cfg;
    struct errbuf err;
    ck_assert_msg(schedule_config_from_string(&cfg, json, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_msg(schedule_build(s, &cfg, &err) == STATUS_OK, "%s", err.msg);
}

static void init_ok(struct sampler_state *st, enum sampler_kind kind, const struct schedule *s,
                    int n, const struct sampler_options *opt)
{
    struct errbuf err;
    enum status rc = sampler_init(st, kind, s, n, opt, &err);
    ck_assert_msg(rc == STATUS_OK, "init %s/%d: %s", sampler_kind_name(kind), n, err.msg);
}

/* One driver iteration on a host row: scale, fake U-Net, step (Philox noise). */
static void drive_step(struct sampler_state *st, float *latent, size_t n)
{
    float x_in[N_ELEMS], mo[N_ELEMS];
    ck_assert_uint_le(n, N_ELEMS);
    const float c = sampler_model_input_scale(st);
    for (size_t i = 0; i < n; i++)
        x_in[i] = latent[i] * c;
    fake_model(x_in, sampler_timestep(st), mo, n);
    struct errbuf err;
    ck_assert_msg(sampler_step(st, mo, latent, n, &err) == STATUS_OK, "%s", err.msg);
}

/* --- fixtures --------------------------------------------------------------------- */

struct fixtures {
    json_t *root;
    struct safetensors *st;
    float latent0[N_ELEMS];
};

static float *read_tensor(const struct fixtures *f, const char *name, size_t want)
{
    const struct safetensors_tensor *t = safetensors_find(f->st, name);
    if (!t)
        return NULL;
    ck_assert_uint_eq(t->numel, want);
    float *buf = malloc(want * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    struct errbuf err;
    ck_assert_msg(safetensors_read_f32(f->st, t, buf, want, &err) == STATUS_OK, "%s", err.msg);
    return buf;
}

static void fixtures_load(struct fixtures *f)
{
    json_error_t jerr;
    f->root = json_load_file(FIXTURES "/cases.json", 0, &jerr);
    ck_assert_msg(f->root, "cases.json: line %d: %s", jerr.line, jerr.text);
    struct errbuf err;
    ck_assert_msg(safetensors_open(FIXTURES "/tensors.safetensors", &f->st, &err) == STATUS_OK,
                  "%s", err.msg);
    float *l0 = read_tensor(f, "latent0", N_ELEMS);
    ck_assert_ptr_nonnull(l0);
    memcpy(f->latent0, l0, sizeof f->latent0);
    free(l0);
}

static void fixtures_free(struct fixtures *f)
{
    safetensors_close(f->st);
    json_decref(f->root);
}

static bool close_rel(double got, double want, double tol)
{
    return fabs(got - want) <= tol * fabs(want) + 1e-12;
}

static enum sampler_kind fixture_kind(const char *name)
{
    if (strcmp(name, "ddim_eta") == 0)
        return SAMPLER_DDIM;
    enum sampler_kind k;
    struct errbuf err;
    ck_assert_msg(sampler_kind_parse(name, &k, &err) == STATUS_OK, "%s", err.msg);
    return k;
}

/* Timesteps, σ, init_noise_sigma, input scales. */
static void check_tables(const struct sampler_state *st, const json_t *c, const char *name)
{
    const int n = st->n_steps;
    const json_t *ts = json_object_get(c, "timesteps"), *cin = json_object_get(c, "c_in");
    ck_assert_int_eq((int)json_array_size(ts), n);
    for (int i = 0; i < n; i++) {
        const double want = json_number_value(json_array_get(ts, (size_t)i));
        ck_assert_msg(close_rel(st->timesteps[i], want, TABLE_TOL), "%s: timestep %d: %.9g vs %.9g",
                      name, i, (double)st->timesteps[i], want);
        const double want_c = json_number_value(json_array_get(cin, (size_t)i));
        ck_assert_msg(close_rel(st->c_in[i], want_c, TABLE_TOL), "%s: c_in %d: %.9g vs %.9g", name,
                      i, (double)st->c_in[i], want_c);
    }
    const json_t *sig = json_object_get(c, "sigmas");
    if (json_is_array(sig)) {
        ck_assert_ptr_nonnull(st->sigmas);
        /* diffusers' log_linear Euler keeps one σ more, which no step reads */
        ck_assert_int_ge((int)json_array_size(sig), n + 1);
        for (int i = 0; i <= n; i++) {
            const double want = json_number_value(json_array_get(sig, (size_t)i));
            ck_assert_msg(close_rel(st->sigmas[i], want, TABLE_TOL), "%s: sigma %d: %.9g vs %.9g",
                          name, i, (double)st->sigmas[i], want);
        }
    }
    const double want_init = json_number_value(json_object_get(c, "init_noise_sigma"));
    ck_assert_msg(close_rel(st->init_noise_sigma, want_init, TABLE_TOL),
                  "%s: init_noise_sigma %.9g vs %.9g", name, (double)st->init_noise_sigma, want_init);
}

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)v[i]));
    return m;
}

/* Runs one fixture case; returns max err / scale. */
static double run_case(const struct fixtures *f, const json_t *c, const struct schedule *s)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *sampler = json_string_value(json_object_get(c, "sampler"));
    const int n = (int)json_integer_value(json_object_get(c, "n_steps"));
    struct sampler_options opt;
    sampler_options_defaults(&opt);
    opt.eta = json_number_value(json_object_get(c, "eta"));
    struct sampler_state st;
    init_ok(&st, fixture_kind(sampler), s, n, &opt);
    check_tables(&st, c, name);

    char key[160];
    snprintf(key, sizeof key, "%s/trajectory", name);
    float *traj = read_tensor(f, key, (size_t)n * N_ELEMS);
    ck_assert_msg(traj, "%s missing", key);
    snprintf(key, sizeof key, "%s/noise", name);
    float *noise = read_tensor(f, key, (size_t)n * N_ELEMS);
    const json_t *drew = json_object_get(c, "drew_noise");

    float latent[N_ELEMS], x_in[N_ELEMS], mo[N_ELEMS];
    for (int i = 0; i < N_ELEMS; i++)
        latent[i] = f->latent0[i] * sampler_init_noise_sigma(&st);
    double scale = fmax(max_abs(latent, N_ELEMS), max_abs(traj, (size_t)n * N_ELEMS));
    double worst = 0;
    for (int k = 0; k < n; k++) {
        const struct sampler_coeffs *co = sampler_step_coeffs(&st);
        ck_assert_msg(!co->needs_noise || json_is_true(json_array_get(drew, (size_t)k)),
                      "%s: step %d draws noise where diffusers drew none", name, k);
        const float c_in = sampler_model_input_scale(&st);
        for (int i = 0; i < N_ELEMS; i++)
            x_in[i] = latent[i] * c_in;
        fake_model(x_in, sampler_timestep(&st), mo, N_ELEMS);
        struct errbuf err;
        const float *z = noise ? noise + (size_t)k * N_ELEMS : NULL;
        ck_assert_msg(sampler_step_with_noise(&st, mo, latent, z, N_ELEMS, &err) == STATUS_OK,
                      "%s: %s", name, err.msg);
        for (int i = 0; i < N_ELEMS; i++)
            worst = fmax(worst, fabs((double)latent[i] - traj[(size_t)k * N_ELEMS + i]));
    }
    ck_assert(sampler_done(&st));
    ck_assert_msg(worst <= TRAJ_TOL * scale, "%s: trajectory max err %.3g > %.0e × scale %.4g",
                  name, worst, TRAJ_TOL, scale);
    free(traj);
    free(noise);
    sampler_free(&st);
    return worst / scale;
}

START_TEST(test_trajectories_match_diffusers)
{
    struct fixtures f;
    fixtures_load(&f);
    json_t *configs = json_object_get(f.root, "configs");
    json_t *cases = json_object_get(f.root, "cases");
    ck_assert_uint_ge(json_array_size(cases), 181);
    double worst[SAMPLER_KIND_COUNT_ + 1] = {0};
    const char *cname;
    json_t *cobj;
    json_object_foreach(configs, cname, cobj) {
        struct schedule_config cfg;
        struct schedule s;
        struct errbuf err;
        ck_assert_msg(schedule_config_from_json(&cfg, cobj, &err) == STATUS_OK, "%s", err.msg);
        ck_assert_msg(schedule_build(&s, &cfg, &err) == STATUS_OK, "%s", err.msg);
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c) {
            if (strcmp(json_string_value(json_object_get(c, "config")), cname) != 0)
                continue;
            const char *sampler = json_string_value(json_object_get(c, "sampler"));
            const int slot = strcmp(sampler, "ddim_eta") == 0 ? SAMPLER_KIND_COUNT_
                                                              : (int)fixture_kind(sampler);
            worst[slot] = fmax(worst[slot], run_case(&f, c, &s));
        }
        schedule_free(&s);
    }
    for (int k = 0; k <= SAMPLER_KIND_COUNT_; k++)
        printf("sampler %-16s worst trajectory err / scale = %.3g\n",
               k == SAMPLER_KIND_COUNT_ ? "ddim (eta 0.7)" : sampler_kind_name(k), worst[k]);
    fixtures_free(&f);
}
END_TEST

/* --- validation ------------------------------------------------------------------- */

static void expect_init_error(enum sampler_kind kind, const struct schedule *s, int n,
                              const struct sampler_options *opt, enum status code,
                              const char *needle)
{
    struct sampler_state st;
    struct errbuf err;
    errbuf_clear(&err);
    enum status rc = sampler_init(&st, kind, s, n, opt, &err);
    ck_assert_msg(rc == code, "%s/%d: got %s (%s)", sampler_kind_name(kind), n, status_name(rc),
                  err.msg);
    ck_assert_msg(strstr(err.msg, needle), "message \"%s\" lacks \"%s\"", err.msg, needle);
    ck_assert_ptr_null(st.coeffs);
    sampler_free(&st);
}

START_TEST(test_invalid_requests)
{
    struct schedule s;
    schedule_from(SD1_CONFIG, &s);
    struct sampler_options opt;
    sampler_options_defaults(&opt);
    for (int k = 0; k < SAMPLER_KIND_COUNT_; k++) {
        expect_init_error((enum sampler_kind)k, &s, 0, NULL, STATUS_INVALID_ARGUMENT, "n_steps");
        expect_init_error((enum sampler_kind)k, &s, -3, NULL, STATUS_INVALID_ARGUMENT, "n_steps");
        expect_init_error((enum sampler_kind)k, &s, 1001, NULL, STATUS_INVALID_ARGUMENT,
                          "num_train_timesteps");
    }
    expect_init_error(SAMPLER_LCM, &s, 51, NULL, STATUS_INVALID_ARGUMENT, "original_inference_steps");
    opt.eta = 1.5;
    expect_init_error(SAMPLER_DDIM, &s, 10, &opt, STATUS_INVALID_ARGUMENT, "eta");
    opt.eta = -0.1;
    expect_init_error(SAMPLER_DDIM, &s, 10, &opt, STATUS_INVALID_ARGUMENT, "eta");
    expect_init_error((enum sampler_kind)99, &s, 10, NULL, STATUS_INVALID_ARGUMENT, "kind");
    expect_init_error(SAMPLER_EULER, NULL, 10, NULL, STATUS_INVALID_ARGUMENT, "schedule");
    /* eta is a DDIM option: the others ignore it */
    struct sampler_state st;
    init_ok(&st, SAMPLER_EULER, &s, 10, &opt);
    sampler_free(&st);
    schedule_free(&s);

    /* config options that are parsed but not implemented */
    static const struct {
        const char *json;
        enum sampler_kind kind;
        const char *field;
    } unsupported[] = {
        {"{\"thresholding\": true}", SAMPLER_DDIM, "thresholding"},
        {"{\"thresholding\": true}", SAMPLER_DDPM, "thresholding"},
        {"{\"thresholding\": true}", SAMPLER_LCM, "thresholding"},
        {"{\"thresholding\": true}", SAMPLER_DPMPP_2M, "thresholding"},
        {"{\"use_beta_sigmas\": true}", SAMPLER_EULER, "use_beta_sigmas"},
        {"{\"use_exponential_sigmas\": true}", SAMPLER_DPMPP_2M_KARRAS, "use_exponential_sigmas"},
        {"{\"use_lu_lambdas\": true}", SAMPLER_DPMPP_2M, "use_lu_lambdas"},
        {"{\"use_flow_sigmas\": true}", SAMPLER_DPMPP_2M, "use_flow_sigmas"},
        {"{\"prediction_type\": \"sample\"}", SAMPLER_EULER_A, "prediction_type"},
    };
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        schedule_from(unsupported[i].json, &s);
        expect_init_error(unsupported[i].kind, &s, 10, NULL, STATUS_UNSUPPORTED,
                          unsupported[i].field);
        schedule_free(&s);
    }
    /* a steps_offset that pushes DDIM past the table */
    schedule_from("{\"steps_offset\": 999, \"timestep_spacing\": \"leading\"}", &s);
    expect_init_error(SAMPLER_DDIM, &s, 4, NULL, STATUS_INVALID_ARGUMENT, "steps_offset");
    schedule_free(&s);
}
END_TEST

START_TEST(test_step_misuse)
{
    struct schedule s;
    schedule_from(SD1_CONFIG, &s);
    struct sampler_state st;
    init_ok(&st, SAMPLER_DPMPP_2M, &s, 2, NULL);
    float latent[8] = {0}, mo[8] = {0};
    struct errbuf err;
    ck_assert_int_eq(sampler_step(&st, mo, latent, 8, &err), STATUS_OK);
    ck_assert_int_eq(sampler_step(&st, mo, latent, 4, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "row length"));
    ck_assert_int_eq(sampler_step(&st, mo, latent, 8, &err), STATUS_OK);
    ck_assert(sampler_done(&st));
    ck_assert_ptr_null(sampler_step_coeffs(&st));
    ck_assert_int_eq(sampler_step(&st, mo, latent, 8, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "done"));
    ck_assert_int_eq(sampler_advance(&st, &err), STATUS_INVALID_ARGUMENT);
    sampler_free(&st);
    /* a stochastic step without noise */
    init_ok(&st, SAMPLER_EULER_A, &s, 3, NULL);
    ck_assert_int_eq(sampler_step_with_noise(&st, mo, latent, NULL, 8, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "noise"));
    sampler_free(&st);
    sampler_free(&st); /* idempotent */
    ck_assert_int_eq(sampler_step(&st, mo, latent, 8, &err), STATUS_INVALID_ARGUMENT);
    schedule_free(&s);
}
END_TEST

/* --- batching properties ---------------------------------------------------------- */

struct request {
    enum sampler_kind kind;
    int n_steps;
    uint64_t seed;
};

static const struct request REQUESTS[] = {
    {SAMPLER_EULER_A, 7, 11},  {SAMPLER_DPMPP_2M_KARRAS, 20, 12}, {SAMPLER_DDIM, 4, 13},
    {SAMPLER_LCM, 4, 14},      {SAMPLER_DDPM, 9, 15},             {SAMPLER_EULER, 25, 16},
    {SAMPLER_DPMPP_2M, 13, 17}, {SAMPLER_EULER_A, 7, 18},
};
#define N_REQ (sizeof REQUESTS / sizeof REQUESTS[0])
#define ROW 64

static void request_init(const struct request *r, const struct schedule *s,
                         struct sampler_state *st, float *latent)
{
    struct sampler_options opt;
    sampler_options_defaults(&opt);
    opt.seed = r->seed;
    opt.subsequence = 3;
    opt.eta = 0.5;
    opt.n_elems = ROW;
    init_ok(st, r->kind, s, r->n_steps, &opt);
    sampler_initial_latent(st, latent, ROW);
}

START_TEST(test_interleaved_equals_alone)
{
    struct schedule s;
    schedule_from(SD1_CONFIG, &s);
    static float alone[N_REQ][ROW], mixed[N_REQ][ROW];
    for (size_t r = 0; r < N_REQ; r++) {
        struct sampler_state st;
        request_init(&REQUESTS[r], &s, &st, alone[r]);
        while (!sampler_done(&st))
            drive_step(&st, alone[r], ROW);
        sampler_free(&st);
    }
    /* all requests in one "batch": each iteration steps every unfinished state; the
     * later half joins three iterations late */
    struct sampler_state st[N_REQ];
    bool joined[N_REQ] = {false};
    for (int iter = 0;; iter++) {
        bool any = false;
        for (size_t r = 0; r < N_REQ; r++) {
            if (!joined[r] && (r < N_REQ / 2 || iter >= 3)) {
                request_init(&REQUESTS[r], &s, &st[r], mixed[r]);
                joined[r] = true;
            }
            if (joined[r] && !sampler_done(&st[r])) {
                drive_step(&st[r], mixed[r], ROW);
                any = true;
            }
        }
        if (!any && iter >= 3)
            break;
    }
    for (size_t r = 0; r < N_REQ; r++) {
        ck_assert_msg(memcmp(alone[r], mixed[r], sizeof alone[r]) == 0,
                      "request %zu (%s) differs inside the batch", r,
                      sampler_kind_name(REQUESTS[r].kind));
        sampler_free(&st[r]);
    }
    /* the two Euler-a requests differ only by seed: different images */
    ck_assert(memcmp(alone[0], alone[7], sizeof alone[0]) != 0);
    schedule_free(&s);
}
END_TEST

static void run_alone(const struct schedule *s, enum sampler_kind kind, int n, uint64_t seed,
                      float *latent)
{
    struct sampler_options opt;
    sampler_options_defaults(&opt);
    opt.seed = seed;
    opt.eta = 1.0;
    struct sampler_state st;
    init_ok(&st, kind, s, n, &opt);
    sampler_initial_latent(&st, latent, ROW);
    while (!sampler_done(&st))
        drive_step(&st, latent, ROW);
    sampler_free(&st);
}

START_TEST(test_philox_noise_per_seed)
{
    struct schedule s;
    schedule_from(SD1_CONFIG, &s);
    static const enum sampler_kind stochastic[] = {SAMPLER_EULER_A, SAMPLER_DDIM, SAMPLER_DDPM,
                                                   SAMPLER_LCM};
    for (size_t k = 0; k < sizeof stochastic / sizeof stochastic[0]; k++) {
        float a[ROW], b[ROW], c[ROW];
        run_alone(&s, stochastic[k], 6, 42, a);
        run_alone(&s, stochastic[k], 6, 42, b);
        run_alone(&s, stochastic[k], 6, 43, c);
        ck_assert_msg(memcmp(a, b, sizeof a) == 0, "%s: same seed, different result",
                      sampler_kind_name(stochastic[k]));
        ck_assert_msg(memcmp(a, c, sizeof a) != 0, "%s: the seed does not matter",
                      sampler_kind_name(stochastic[k]));
    }
    /* the documented layout: initial noise at [0, n), step k's at [(k+1)·n, (k+2)·n) */
    struct sampler_options opt;
    sampler_options_defaults(&opt);
    opt.seed = 7;
    opt.subsequence = 5;
    struct sampler_state st, ref;
    init_ok(&st, SAMPLER_EULER_A, &s, 5, &opt);
    init_ok(&ref, SAMPLER_EULER_A, &s, 5, &opt);
    float l1[ROW], l2[ROW], z[ROW];
    sampler_initial_latent(&st, l1, ROW);
    philox_normal_fill(7, 5, 0, z, ROW);
    for (int i = 0; i < ROW; i++) {
        ck_assert_float_eq(l1[i], z[i] * sampler_init_noise_sigma(&st));
        l2[i] = l1[i];
    }
    while (!sampler_done(&st)) {
        float mo[ROW];
        for (int i = 0; i < ROW; i++)
            mo[i] = 0.01f * (float)i;
        ck_assert_uint_eq(sampler_noise_offset(&ref, ROW), (uint64_t)(sampler_step_index(&ref) + 1) * ROW);
        philox_normal_fill(7, 5, sampler_noise_offset(&ref, ROW), z, ROW);
        struct errbuf err;
        ck_assert_int_eq(sampler_step(&st, mo, l1, ROW, &err), STATUS_OK);
        ck_assert_int_eq(sampler_step_with_noise(&ref, mo, l2, z, ROW, &err), STATUS_OK);
        ck_assert(memcmp(l1, l2, sizeof l1) == 0);
    }
    sampler_free(&st);
    sampler_free(&ref);
    schedule_free(&s);
}
END_TEST

/* A device-style driver: applies the folded coefficients itself, keeps its own x₀
 * history, calls sampler_advance. */
START_TEST(test_coeffs_path_equals_step)
{
    struct schedule s;
    schedule_from(SD1_CONFIG, &s);
    for (int k = 0; k < SAMPLER_KIND_COUNT_; k++) {
        struct sampler_options opt;
        sampler_options_defaults(&opt);
        opt.seed = 99;
        opt.eta = 0.3;
        struct sampler_state a, b;
        init_ok(&a, (enum sampler_kind)k, &s, 12, &opt);
        init_ok(&b, (enum sampler_kind)k, &s, 12, &opt);
        float la[ROW], lb[ROW], prev[ROW] = {0};
        sampler_initial_latent(&a, la, ROW);
        memcpy(lb, la, sizeof la);
        while (!sampler_done(&a)) {
            float x_in[ROW], mo[ROW], z[ROW];
            for (int i = 0; i < ROW; i++)
                x_in[i] = lb[i] * sampler_model_input_scale(&b);
            fake_model(x_in, sampler_timestep(&b), mo, ROW);
            const struct sampler_coeffs *c = sampler_step_coeffs(&b);
            ck_assert(!c->clip);
            philox_normal_fill(99, 0, sampler_noise_offset(&b, ROW), z, ROW);
            for (int i = 0; i < ROW; i++) {
                float out = c->fold_latent * lb[i] + c->fold_model * mo[i];
                if (c->uses_prev_x0)
                    out += c->c_prev * prev[i];
                if (c->needs_noise)
                    out += c->c_noise * z[i];
                if (c->stores_x0)
                    prev[i] = c->x0_latent * lb[i] + c->x0_model * mo[i];
                lb[i] = out;
            }
            struct errbuf err;
            ck_assert_int_eq(sampler_advance(&b, &err), STATUS_OK);
            drive_step(&a, la, ROW);
        }
        ck_assert(sampler_done(&b));
        ck_assert_msg(memcmp(la, lb, sizeof la) == 0, "%s: coefficient path differs",
                      sampler_kind_name((enum sampler_kind)k));
        sampler_free(&a);
        sampler_free(&b);
    }
    schedule_free(&s);
}
END_TEST

START_TEST(test_class_defaults)
{
    /* SD1.5's file has no timestep_spacing: DDIM uses "leading", Euler "linspace";
     * clip_sample false in the file wins over DDIM's default true */
    struct schedule s;
    schedule_from(SD1_CONFIG, &s);
    struct sampler_state st;
    init_ok(&st, SAMPLER_DDIM, &s, 4, NULL);
    ck_assert(st.timesteps[0] == 751.0f && st.timesteps[3] == 1.0f);
    ck_assert(!st.coeffs[0].clip);
    sampler_free(&st);
    init_ok(&st, SAMPLER_EULER, &s, 4, NULL);
    ck_assert(st.timesteps[0] == 999.0f && st.timesteps[3] == 0.0f);
    sampler_free(&st);
    schedule_free(&s);
    /* without clip_sample, DDIM and DDPM clip (their class default), LCM does not */
    schedule_from("{\"beta_schedule\": \"scaled_linear\", \"beta_start\": 0.00085,"
                  " \"beta_end\": 0.012}", &s);
    init_ok(&st, SAMPLER_DDIM, &s, 4, NULL);
    ck_assert(st.coeffs[0].clip && st.coeffs[0].clip_range == 1.0f);
    sampler_free(&st);
    init_ok(&st, SAMPLER_DDPM, &s, 4, NULL);
    ck_assert(st.coeffs[0].clip);
    sampler_free(&st);
    init_ok(&st, SAMPLER_LCM, &s, 4, NULL);
    ck_assert(!st.coeffs[0].clip);
    sampler_free(&st);
    /* DPM++ 2M: first and last steps first order, the rest use the x₀ history */
    init_ok(&st, SAMPLER_DPMPP_2M, &s, 5, NULL);
    ck_assert(!st.coeffs[0].uses_prev_x0 && !st.coeffs[4].uses_prev_x0);
    ck_assert(st.coeffs[1].uses_prev_x0 && st.coeffs[3].uses_prev_x0);
    ck_assert(st.coeffs[0].stores_x0 && !st.coeffs[4].stores_x0);
    ck_assert_ptr_null(st.prev_x0); /* rows come at the first step */
    sampler_free(&st);
    /* trailing with a step count numpy gives n + 1 values for: n steps, t ≥ 0 */
    schedule_free(&s);
    schedule_from("{\"timestep_spacing\": \"trailing\"}", &s);
    init_ok(&st, SAMPLER_EULER, &s, 61, NULL);
    ck_assert(st.timesteps[0] == 999.0f && st.timesteps[60] >= 0.0f);
    sampler_free(&st);
    schedule_free(&s);
}
END_TEST

START_TEST(test_kind_names)
{
    static const struct {
        const char *name;
        enum sampler_kind kind;
    } names[] = {
        {"euler", SAMPLER_EULER},
        {"Euler", SAMPLER_EULER},
        {"k_euler", SAMPLER_EULER},
        {"euler_a", SAMPLER_EULER_A},
        {"Euler a", SAMPLER_EULER_A},
        {"euler_ancestral", SAMPLER_EULER_A},
        {"DDIM", SAMPLER_DDIM},
        {"dpmpp_2m", SAMPLER_DPMPP_2M},
        {"DPM++ 2M", SAMPLER_DPMPP_2M},
        {"dpm++_2m_karras", SAMPLER_DPMPP_2M_KARRAS},
        {"DPM++ 2M Karras", SAMPLER_DPMPP_2M_KARRAS},
        {"ddpm", SAMPLER_DDPM},
        {"LCM", SAMPLER_LCM},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        enum sampler_kind k;
        struct errbuf err;
        ck_assert_msg(sampler_kind_parse(names[i].name, &k, &err) == STATUS_OK, "%s", err.msg);
        ck_assert_msg(k == names[i].kind, "%s", names[i].name);
    }
    for (int k = 0; k < SAMPLER_KIND_COUNT_; k++) {
        enum sampler_kind back;
        ck_assert_int_eq(sampler_kind_parse(sampler_kind_name((enum sampler_kind)k), &back, NULL),
                         STATUS_OK);
        ck_assert_int_eq(back, k);
    }
    enum sampler_kind k;
    struct errbuf err;
    ck_assert_int_eq(sampler_kind_parse("heun", &k, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "heun"));
    ck_assert_int_eq(sampler_kind_parse(NULL, &k, &err), STATUS_INVALID_ARGUMENT);
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_int_eq(sampler_kind_parse(longname, &k, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_str_eq(sampler_kind_name((enum sampler_kind)42), "?");
}
END_TEST

static Suite *sampler_suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_trajectories_match_diffusers);
    tcase_add_test(tc, test_invalid_requests);
    tcase_add_test(tc, test_step_misuse);
    tcase_add_test(tc, test_interleaved_equals_alone);
    tcase_add_test(tc, test_philox_noise_per_seed);
    tcase_add_test(tc, test_coeffs_path_equals_step);
    tcase_add_test(tc, test_class_defaults);
    tcase_add_test(tc, test_kind_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(sampler_suite());
}
