/* tests/unit/test_schedule.c — scheduler configs and training tables (models/schedule.h).
 *
 * The committed fixtures (tests/fixtures/samplers/, made by
 * tools/make_sampler_fixtures.py with diffusers 0.42.1 / torch 2.15.0) hold seven
 * scheduler_config.json objects (SD1.5's, SD2.1-v's, a v-prediction zero-SNR trailing
 * one, a cosine one, a linear one, two with the remaining options) and, for each,
 * DDIMScheduler's alphas_cumprod:
 * ours must agree to 1e-6 relative (in practice bit for bit).  Also: parse errors name
 * the key, presence bits, the spacing/interpolation helpers.  (Bit for bit except
 * under rescale_betas_zero_snr, where torch's vectorised sqrt is off by an ulp on a
 * few entries.)
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/safetensors.h"
#include "models/schedule.h"
#include "tests/testutil.h"

#define FIXTURES DIFFUSIOND_SOURCE_DIR "/tests/fixtures/samplers"

static json_t *load_cases(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(FIXTURES "/cases.json", 0, &jerr);
    ck_assert_msg(root, "cases.json: line %d: %s", jerr.line, jerr.text);
    return root;
}

static struct safetensors *load_tensors(void)
{
    struct errbuf err;
    struct safetensors *st = NULL;
    enum status s = safetensors_open(FIXTURES "/tensors.safetensors", &st, &err);
    ck_assert_msg(s == STATUS_OK, "%s", err.msg);
    return st;
}

static void build(const char *json, struct schedule_config *cfg, struct schedule *s)
{
    struct errbuf err;
    enum status st = schedule_config_from_string(cfg, json, &err);
    ck_assert_msg(st == STATUS_OK, "%s: %s", json, err.msg);
    st = schedule_build(s, cfg, &err);
    ck_assert_msg(st == STATUS_OK, "%s", err.msg);
}

START_TEST(test_alphas_cumprod_match_diffusers)
{
    json_t *root = load_cases();
    struct safetensors *st = load_tensors();
    json_t *configs = json_object_get(root, "configs");
    ck_assert_uint_ge(json_object_size(configs), 5);
    const char *name;
    json_t *obj;
    json_object_foreach(configs, name, obj) {
        struct schedule_config cfg;
        struct errbuf err;
        ck_assert_msg(schedule_config_from_json(&cfg, obj, &err) == STATUS_OK, "%s: %s", name,
                      err.msg);
        struct schedule s;
        ck_assert_msg(schedule_build(&s, &cfg, &err) == STATUS_OK, "%s: %s", name, err.msg);
        char key[128];
        snprintf(key, sizeof key, "%s/alphas_cumprod", name);
        size_t n = 0;
        float *want = test_read_tensor(st, key, &n);
        ck_assert_int_eq((int)n, s.n_train);
        double worst = 0;
        int differ = 0;
        for (size_t i = 0; i < n; i++) {
            const double rel = fabs((double)s.alphas_cumprod[i] - want[i]) /
                               fmax(fabs((double)want[i]), 1e-30);
            worst = fmax(worst, want[i] == 0.0f ? fabs((double)s.alphas_cumprod[i]) : rel);
            differ += s.alphas_cumprod[i] != want[i];
        }
        printf("schedule %-14s alphas_cumprod: %d of %zu differ, max rel err %.3g\n", name,
               differ, n, worst);
        ck_assert_msg(worst <= 1e-6, "%s: alphas_cumprod rel err %g", name, worst);
        free(want);
        schedule_free(&s);
    }
    safetensors_close(st);
    json_decref(root);
}
END_TEST

START_TEST(test_defaults_and_presence)
{
    struct schedule_config cfg;
    struct schedule s;
    build("{\"_class_name\": \"PNDMScheduler\", \"beta_schedule\": \"scaled_linear\","
          " \"beta_start\": 0.00085, \"beta_end\": 0.012, \"steps_offset\": 1,"
          " \"trained_betas\": null, \"skip_prk_steps\": true, \"sigma_min\": null}",
          &cfg, &s);
    ck_assert(schedule_config_has(&cfg, SCHEDULE_F_BETA_SCHEDULE));
    ck_assert(schedule_config_has(&cfg, SCHEDULE_F_STEPS_OFFSET));
    ck_assert(!schedule_config_has(&cfg, SCHEDULE_F_TIMESTEP_SPACING));
    ck_assert(!schedule_config_has(&cfg, SCHEDULE_F_SIGMA_MIN)); /* null = absent */
    ck_assert_int_eq(cfg.num_train_timesteps, 1000);
    ck_assert_int_eq(cfg.steps_offset, 1);
    ck_assert_int_eq(cfg.prediction_type, SCHEDULE_PRED_EPSILON);
    ck_assert_int_eq(s.n_train, 1000);
    /* SD's well-known endpoints: ᾱ_0 = 1 − 0.00085, σ_999 ≈ 14.6146 */
    ck_assert_float_eq_tol(s.alphas_cumprod[0], 0.99915f, 1e-7f);
    ck_assert_float_eq_tol(s.sigmas[999], 14.6146f, 1e-4f);
    ck_assert_float_eq_tol(s.log_sigmas[999], logf(s.sigmas[999]), 1e-7f);
    /* the config is kept with the tables */
    ck_assert_int_eq(s.config.steps_offset, 1);
    schedule_free(&s);
    schedule_free(&s); /* idempotent */
}
END_TEST

START_TEST(test_zero_snr_tables)
{
    struct schedule_config cfg;
    struct schedule s;
    build("{\"beta_schedule\": \"scaled_linear\", \"beta_start\": 0.00085, \"beta_end\": 0.012,"
          " \"rescale_betas_zero_snr\": true}",
          &cfg, &s);
    ck_assert_float_eq(s.alphas_cumprod[999], 0.0f);
    ck_assert_float_eq(schedule_alpha_cumprod_sigma(&s, 999), 0x1p-24f);
    ck_assert_float_eq(schedule_alpha_cumprod_sigma(&s, 998), s.alphas_cumprod[998]);
    ck_assert_float_eq_tol(s.sigmas[999], 4096.0f, 0.01f);
    schedule_free(&s);
}
END_TEST

struct bad_case {
    const char *json;
    enum status code;
    const char *needle; /* must appear in the message */
};

START_TEST(test_invalid_configs)
{
    static const struct bad_case cases[] = {
        {"{\"beta_schedule\": \"quadratic\"}", STATUS_INVALID_ARGUMENT, "beta_schedule"},
        {"{\"beta_schedule\": 3}", STATUS_INVALID_ARGUMENT, "beta_schedule"},
        {"{\"prediction_type\": \"flow_prediction\"}", STATUS_INVALID_ARGUMENT, "prediction_type"},
        {"{\"timestep_spacing\": \"evenly\"}", STATUS_INVALID_ARGUMENT, "timestep_spacing"},
        {"{\"num_train_timesteps\": \"1000\"}", STATUS_INVALID_ARGUMENT, "num_train_timesteps"},
        {"{\"num_train_timesteps\": 1000.5}", STATUS_INVALID_ARGUMENT, "num_train_timesteps"},
        {"{\"num_train_timesteps\": 1}", STATUS_INVALID_ARGUMENT, "num_train_timesteps"},
        {"{\"num_train_timesteps\": 0}", STATUS_INVALID_ARGUMENT, "num_train_timesteps"},
        {"{\"beta_start\": -0.1}", STATUS_INVALID_ARGUMENT, "beta_start"},
        {"{\"beta_end\": 1.5}", STATUS_INVALID_ARGUMENT, "beta_end"},
        {"{\"beta_end\": \"0.012\"}", STATUS_INVALID_ARGUMENT, "beta_end"},
        {"{\"steps_offset\": -1}", STATUS_INVALID_ARGUMENT, "steps_offset"},
        {"{\"clip_sample\": 1}", STATUS_INVALID_ARGUMENT, "clip_sample"},
        {"{\"clip_sample_range\": 0}", STATUS_INVALID_ARGUMENT, "clip_sample_range"},
        {"{\"use_karras_sigmas\": \"yes\"}", STATUS_INVALID_ARGUMENT, "use_karras_sigmas"},
        {"{\"final_sigmas_type\": \"one\"}", STATUS_INVALID_ARGUMENT, "final_sigmas_type"},
        {"{\"variance_type\": \"learned_range\"}", STATUS_INVALID_ARGUMENT, "variance_type"},
        {"{\"sigma_min\": -2}", STATUS_INVALID_ARGUMENT, "sigma_min"},
        {"{\"original_inference_steps\": 0}", STATUS_INVALID_ARGUMENT, "original_inference_steps"},
        {"{\"trained_betas\": [0.1, 0.2]}", STATUS_UNSUPPORTED, "trained_betas"},
        {"[1, 2]", STATUS_FORMAT, "not a JSON object"},
        {"{\"beta_start\": 0.1,", STATUS_FORMAT, "line"},
        {"{\"a\": 1, \"a\": 2}", STATUS_FORMAT, "duplicate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct schedule_config cfg;
        struct errbuf err;
        errbuf_clear(&err);
        enum status st = schedule_config_from_string(&cfg, cases[i].json, &err);
        ck_assert_msg(st == cases[i].code, "%s: got %s (%s)", cases[i].json, status_name(st),
                      err.msg);
        ck_assert_msg(strstr(err.msg, cases[i].needle), "%s: message \"%s\" lacks \"%s\"",
                      cases[i].json, err.msg, cases[i].needle);
    }
}
END_TEST

START_TEST(test_build_validates)
{
    struct schedule_config cfg;
    schedule_config_defaults(&cfg);
    cfg.num_train_timesteps = 1;
    struct schedule s;
    struct errbuf err;
    ck_assert_int_eq(schedule_build(&s, &cfg, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "num_train_timesteps"));
    ck_assert_ptr_null(s.alphas_cumprod);
    schedule_free(&s);
    schedule_config_defaults(&cfg);
    cfg.beta_schedule = (enum schedule_beta)7;
    ck_assert_int_eq(schedule_build(&s, &cfg, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "beta_schedule"));
    schedule_config_defaults(&cfg);
    cfg.solver_type = (enum schedule_solver_type)5;
    ck_assert_int_eq(schedule_config_validate(&cfg, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "solver_type"));
    /* in range, but ᾱ underflows (found by tests/fuzz/fuzz_model_config.c): a clear
     * error instead of an infinite σ and NaN images */
    schedule_config_defaults(&cfg);
    cfg.num_train_timesteps = 10500;
    ck_assert_int_eq(schedule_build(&s, &cfg, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "num_train_timesteps"));
    ck_assert_ptr_null(s.sigmas);
    cfg.num_train_timesteps = 1000; /* SD's: builds, every σ finite */
    ck_assert_int_eq(schedule_build(&s, &cfg, &err), STATUS_OK);
    for (int t = 0; t < s.n_train; t++)
        ck_assert(isfinite(s.sigmas[t]) && s.alphas_cumprod[t] > 0.0f);
    schedule_free(&s);
}
END_TEST

START_TEST(test_load_file)
{
    struct schedule_config cfg;
    struct errbuf err;
    ck_assert_int_eq(schedule_config_load(&cfg, FIXTURES "/no-such-file.json", &err), STATUS_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "no-such-file.json"));
    char path[] = "/tmp/test_schedule_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"beta_schedule\": \"cosine\"}", f);
    fclose(f);
    ck_assert_int_eq(schedule_config_load(&cfg, path, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_ptr_nonnull(strstr(err.msg, "beta_schedule"));
    f = fopen(path, "w");
    fputs("{\"beta_schedule\": \"squaredcos_cap_v2\", \"timestep_spacing\": \"trailing\"}", f);
    fclose(f);
    ck_assert_int_eq(schedule_config_load(&cfg, path, &err), STATUS_OK);
    ck_assert_int_eq(cfg.beta_schedule, SCHEDULE_BETA_COSINE);
    ck_assert_int_eq(cfg.timestep_spacing, SCHEDULE_SPACING_TRAILING);
    remove(path);
}
END_TEST

START_TEST(test_spacing_rules)
{
    double ts[1001];
    /* leading, SD's steps_offset 1 */
    schedule_spacing(SCHEDULE_SPACING_LEADING, 1000, 4, 1, true, ts);
    ck_assert(ts[0] == 751 && ts[1] == 501 && ts[2] == 251 && ts[3] == 1);
    /* trailing */
    schedule_spacing(SCHEDULE_SPACING_TRAILING, 1000, 4, 0, true, ts);
    ck_assert(ts[0] == 999 && ts[1] == 749 && ts[2] == 499 && ts[3] == 249);
    /* trailing where numpy's arange gives n + 1 values: the first n, all in range */
    schedule_spacing(SCHEDULE_SPACING_TRAILING, 1000, 61, 0, true, ts);
    ck_assert(ts[0] == 999);
    for (int i = 0; i < 61; i++)
        ck_assert(ts[i] >= 0 && ts[i] <= 999 && (i == 0 || ts[i] < ts[i - 1]));
    double ar[70];
    ck_assert_int_eq(schedule_arange(1000, 0, -1000.0 / 61, ar, 70), 62);
    ck_assert_int_eq(schedule_arange(1000, 0, -1000.0 / 60, ar, 70), 60);
    ck_assert_int_eq(schedule_arange(0, 10, -1, ar, 70), 0);
    /* linspace: fractional for Euler (float32 values), rounded for DDIM; n = 1 → 0 */
    schedule_spacing(SCHEDULE_SPACING_LINSPACE, 1000, 4, 0, false, ts);
    ck_assert(ts[0] == 999 && ts[1] == 666 && ts[2] == 333 && ts[3] == 0);
    schedule_spacing(SCHEDULE_SPACING_LINSPACE, 1000, 7, 0, false, ts);
    ck_assert(ts[1] == (double)(float)(999.0 * 5 / 6));
    schedule_spacing(SCHEDULE_SPACING_LINSPACE, 1000, 7, 0, true, ts);
    ck_assert(ts[1] == 832.0);
    schedule_spacing(SCHEDULE_SPACING_LINSPACE, 1000, 1, 0, false, ts);
    ck_assert(ts[0] == 0.0);
    /* DPM's n + 1 grids */
    schedule_spacing_dpm(SCHEDULE_SPACING_LEADING, 1000, 1000, 4, 1, ts);
    ck_assert(ts[0] == 801 && ts[3] == 201);
    schedule_spacing_dpm(SCHEDULE_SPACING_LINSPACE, 1000, 1000, 4, 0, ts);
    ck_assert(ts[0] == 999 && ts[1] == 749 && ts[2] == 500 && ts[3] == 250);
}
END_TEST

START_TEST(test_sigma_helpers)
{
    struct schedule_config cfg;
    struct schedule s;
    build("{\"beta_schedule\": \"scaled_linear\", \"beta_start\": 0.00085, \"beta_end\": 0.012}",
          &cfg, &s);
    for (int t = 0; t < 1000; t += 37) {
        ck_assert_double_eq(schedule_interp_sigma(&s, t), s.sigmas[t]);
        ck_assert_double_eq_tol(schedule_sigma_to_t(&s, s.sigmas[t]), t, 1e-3);
    }
    const double mid = schedule_interp_sigma(&s, 500.5);
    ck_assert(mid > s.sigmas[500] && mid < s.sigmas[501]);
    ck_assert_double_eq(schedule_interp_sigma(&s, -3), s.sigmas[0]);
    ck_assert_double_eq(schedule_interp_sigma(&s, 1e6), s.sigmas[999]);
    ck_assert_double_eq(schedule_sigma_to_t(&s, 0.0), 0.0);
    ck_assert_double_eq(schedule_sigma_to_t(&s, 1e9), 999.0);
    double k[5];
    schedule_karras_sigmas(0.03, 14.6, 5, k);
    ck_assert_double_eq_tol(k[0], 14.6, 1e-12);
    ck_assert_double_eq_tol(k[4], 0.03, 1e-15);
    for (int i = 1; i < 5; i++)
        ck_assert(k[i] < k[i - 1]);
    schedule_karras_sigmas(0.03, 14.6, 1, k);
    ck_assert_double_eq_tol(k[0], 14.6, 1e-12);
    float lin[5];
    schedule_linspace_f32(0.0f, 1.0f, 5, lin);
    ck_assert(lin[0] == 0.0f && lin[2] == 0.5f && lin[4] == 1.0f);
    schedule_linspace_f32(2.0f, 3.0f, 1, lin);
    ck_assert(lin[0] == 2.0f);
    schedule_free(&s);
}
END_TEST

static Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_alphas_cumprod_match_diffusers);
    tcase_add_test(tc, test_defaults_and_presence);
    tcase_add_test(tc, test_zero_snr_tables);
    tcase_add_test(tc, test_invalid_configs);
    tcase_add_test(tc, test_build_validates);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_spacing_rules);
    tcase_add_test(tc, test_sigma_helpers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(schedule_suite());
}
