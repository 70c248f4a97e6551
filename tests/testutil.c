/* tests/testutil.c — see testutil.h. */
#include "tests/testutil.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_sgemm.h"
#include "models/safetensors.h"

struct test_rng test_rng_make(uint64_t seed)
{
    struct test_rng r = {seed ^ 0x9e3779b97f4a7c15ull};
    return r;
}

uint64_t test_rng_u64(struct test_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float test_rng_uniform(struct test_rng *r, float lo, float hi)
{
    double u = (double)(test_rng_u64(r) >> 11) * 0x1.0p-53;
    return (float)(lo + (hi - lo) * u);
}

int test_rng_int(struct test_rng *r, int lo, int hi)
{
    return lo + (int)(test_rng_u64(r) % (uint64_t)(hi - lo + 1));
}

float test_rng_normal(struct test_rng *r)
{
    double u1 = ((double)(test_rng_u64(r) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = (double)(test_rng_u64(r) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

float *test_random_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    struct test_rng r = test_rng_make(seed);
    for (size_t i = 0; i < n; i++)
        p[i] = test_rng_uniform(&r, lo, hi);
    return p;
}

struct tensor test_tensor(struct backend *b, int ndim, const int64_t *shape, const float *host)
{
    struct tensor t = tensor_desc(DTYPE_F32, ndim, shape);
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = backend_alloc(b, &t, &err);
    ck_assert_msg(s == STATUS_OK, "alloc: %s", err.msg);
    if (host) {
        s = backend_upload(&t, host, DTYPE_F32, &err);
        ck_assert_msg(s == STATUS_OK, "upload: %s", err.msg);
    }
    return t;
}

float *test_download(const struct tensor *t)
{
    float *p = malloc(tensor_nbytes(t));
    ck_assert_ptr_nonnull(p);
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = backend_download(t, p, &err);
    ck_assert_msg(s == STATUS_OK, "download: %s", err.msg);
    return p;
}

double test_max_abs_err(const float *got, const double *want, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= m)) /* NaN counts as infinitely wrong */
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

double test_max_abs(const double *want, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(want[i]) > m)
            m = fabs(want[i]);
    return m;
}

void test_assert_close(const char *what, const float *got, const double *want, size_t n,
                       double atol, double rtol)
{
    double e = test_max_abs_err(got, want, n);
    double bound = atol + rtol * test_max_abs(want, n);
    ck_assert_msg(e <= bound, "%s: max abs error %.3g exceeds %.3g (n=%zu)", what, e, bound, n);
}

double test_std(const float *x, size_t n)
{
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    return sqrt(var / (double)n);
}

double test_max_abs_diff(const float *a, const float *b, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= e)) /* NaN counts as infinitely wrong */
            e = isnan(d) ? INFINITY : d;
    }
    return e;
}

float *test_read_tensor(const struct safetensors *st, const char *name, size_t *n)
{
    const struct safetensors_tensor *t = safetensors_find(st, name);
    ck_assert_msg(t != NULL, "reference tensor %s missing", name);
    float *p = malloc((t->numel ? t->numel : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    if (t->dtype == SAFETENSORS_I64) {
        for (size_t i = 0; i < t->numel; i++) {
            int64_t v;
            memcpy(&v, (const char *)t->data + 8 * i, 8);
            p[i] = (float)v;
        }
    } else {
        struct errbuf err;
        ck_assert_msg(safetensors_read_f32(st, t, p, t->numel, &err) == STATUS_OK, "%s", err.msg);
    }
    *n = t->numel;
    return p;
}

static enum sd_scheduler spacing_variant(const char *spacing, const char *model_spacing)
{
    if (!spacing || (model_spacing && strcmp(spacing, model_spacing) == 0))
        return SD_SCHEDULER_DEFAULT;
    enum sd_scheduler s;
    ck_assert_int_eq(sd_scheduler_parse(spacing, &s, NULL), STATUS_OK);
    return s;
}

void test_case_sampler(const json_t *sched, const struct sd_model *m, struct gen_params *p)
{
    static const char *const spacing_names[] = {"leading", "trailing", "linspace"};
    const struct schedule_config *mc = &m->schedule.config;
    const char *model_spacing = schedule_config_has(mc, SCHEDULE_F_TIMESTEP_SPACING)
                                    ? spacing_names[mc->timestep_spacing]
                                    : NULL; /* the sampler class's default */
    const char *cls = json_string_value(json_object_get(sched, "class"));
    const json_t *cfg = json_object_get(sched, "config");
    const bool karras = json_is_true(json_object_get(cfg, "use_karras_sigmas"));
    ck_assert_ptr_nonnull(cls);
    p->scheduler = spacing_variant(json_string_value(json_object_get(cfg, "timestep_spacing")),
                                   model_spacing);
    if (strcmp(cls, "EulerDiscreteScheduler") == 0) {
        p->sampler = SAMPLER_EULER;
    } else if (strcmp(cls, "EulerAncestralDiscreteScheduler") == 0) {
        p->sampler = SAMPLER_EULER_A;
    } else if (strcmp(cls, "DDIMScheduler") == 0) {
        p->sampler = SAMPLER_DDIM;
    } else if (strcmp(cls, "DDPMScheduler") == 0) {
        p->sampler = SAMPLER_DDPM;
    } else if (strcmp(cls, "LCMScheduler") == 0) {
        p->sampler = SAMPLER_LCM;
        p->scheduler = SD_SCHEDULER_DEFAULT; /* LCM places its own timesteps */
    } else {
        ck_assert_str_eq(cls, "DPMSolverMultistepScheduler");
        p->sampler = karras ? SAMPLER_DPMPP_2M_KARRAS : SAMPLER_DPMPP_2M;
        if (karras)
            p->scheduler = SD_SCHEDULER_DEFAULT;
    }
    if (karras && p->sampler == SAMPLER_EULER)
        p->scheduler = SD_SCHEDULER_KARRAS;
}

float *test_read_tensor_nhwc(const struct safetensors *st, const char *name, size_t *n)
{
    const struct safetensors_tensor *t = safetensors_find(st, name);
    ck_assert_msg(t != NULL && t->ndim == 4, "reference tensor %s: missing or not 4-D", name);
    float *raw = test_read_tensor(st, name, n);
    const int64_t B = t->shape[0], C = t->shape[1], H = t->shape[2], W = t->shape[3];
    float *out = malloc((*n ? *n : 1) * sizeof *out);
    ck_assert_ptr_nonnull(out);
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++)
                    out[((b * H + y) * W + x) * C + c] = raw[((b * C + c) * H + y) * W + x];
    free(raw);
    return out;
}

uint64_t test_fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

double test_psnr(const float *a, const float *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - (double)b[i];
        se += d * d;
    }
    return se == 0 ? INFINITY : 10.0 * log10(1.0 / (se / (double)n));
}

void test_tiny_overrides(bool sd2, struct test_overrides *ov,
                         const json_t *override[CHECKPOINT_COMPONENT_COUNT_])
{
    memset(ov, 0, sizeof *ov);
    ov->obj[CHECKPOINT_UNET] = sd2 ? json_pack("{s:[i,i,i], s:i}", "attention_head_dim", 1, 2, 4,
                                               "norm_num_groups", 4)
                                   : json_pack("{s:i, s:i}", "attention_head_dim", 2,
                                               "norm_num_groups", 4);
    ov->obj[CHECKPOINT_VAE] = json_pack("{s:i}", "norm_num_groups", 4);
    ov->obj[CHECKPOINT_TEXT_ENCODER] = json_pack("{s:i}", "num_attention_heads", sd2 ? 3 : 2);
    for (int c = 0; c < CHECKPOINT_COMPONENT_COUNT_; c++)
        override[c] = ov->obj[c];
}

void test_overrides_free(struct test_overrides *ov)
{
    for (int c = 0; c < CHECKPOINT_COMPONENT_COUNT_; c++)
        json_decref(ov->obj[c]);
}

struct backend *test_cpu_backend(void)
{
    static struct backend *cpu; /* one per test process, freed at exit */
    if (!cpu) {
        struct errbuf err;
        enum status s = cpu_backend_create(0, &cpu, &err);
        ck_assert_msg(s == STATUS_OK, "cpu backend: %s", err.msg);
    }
    return cpu;
}

uint8_t *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    const long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

struct workspace test_cpu_workspace(void)
{
    struct workspace ws;
    struct errbuf err;
    ck_assert_int_eq(workspace_init(&ws, test_cpu_backend(), DTYPE_F32, 0, &err), STATUS_OK);
    return ws;
}

struct sd_model *test_load_sd1_tiny(void)
{
    static const char path[] = DIFFUSIOND_SOURCE_DIR "/tests/fixtures/sd/sd1-tiny/diffusers";
    struct sd_model_options opt;
    sd_model_options_default(&opt);
    opt.backend = test_cpu_backend();
    struct sd_model *m = NULL;
    struct errbuf err;
    if (sd_model_load(path, &opt, &m, &err) != STATUS_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return NULL;
    }
    return m;
}

bool test_gemm_rows_exact(void)
{
    return cpu_gemm_uses_avx512(test_cpu_backend());
}

int test_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
