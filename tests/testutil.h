/* tests/testutil.h — helpers shared by the Check suites: deterministic random data,
 * tensors on a backend from host arrays, error measures, and the suite runner. */
#ifndef DIFFUSIOND_TESTS_TESTUTIL_H
#define DIFFUSIOND_TESTS_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/workspace.h"
#include "models/checkpoint.h"
#include "models/pipeline.h"
#include "models/sd_model.h"

/* splitmix64-based generator; independent of the engine's Philox. */
struct test_rng {
    uint64_t state;
};

struct test_rng test_rng_make(uint64_t seed);
uint64_t test_rng_u64(struct test_rng *r);
/* uniform in [lo, hi) */
float test_rng_uniform(struct test_rng *r, float lo, float hi);
/* integer uniform in [lo, hi] */
int test_rng_int(struct test_rng *r, int lo, int hi);
float test_rng_normal(struct test_rng *r);

/* n floats uniform in [lo, hi) from seed; returned buffer is malloc'ed (caller frees). */
float *test_random_floats(size_t n, uint64_t seed, float lo, float hi);

/* Allocates t{ndim,shape} (f32) on b and uploads host (may be NULL: left
 * uninitialised); fails the current test on error. */
struct tensor test_tensor(struct backend *b, int ndim, const int64_t *shape, const float *host);
/* Downloads t into a malloc'ed host array (caller frees). */
float *test_download(const struct tensor *t);

/* max |got − want| and max |want| over n elements. */
double test_max_abs_err(const float *got, const double *want, size_t n);
double test_max_abs(const double *want, size_t n);
/* Population standard deviation of n floats (double accumulation). */
double test_std(const float *x, size_t n);
/* max |a − b| over n floats; NaN anywhere gives +Inf. */
double test_max_abs_diff(const float *a, const float *b, size_t n);

/* The config keys the tiny fixtures' single files cannot give from their shapes
 * (attention heads, GroupNorm groups): new objects in ov, also set in override (an
 * options struct's config_override array).  Free with test_overrides_free. */
struct test_overrides {
    json_t *obj[CHECKPOINT_COMPONENT_COUNT_];
};
void test_tiny_overrides(bool sd2, struct test_overrides *ov,
                         const json_t *override[CHECKPOINT_COMPONENT_COUNT_]);
void test_overrides_free(struct test_overrides *ov);

struct safetensors;
/* Reads reference tensor `name` (any float dtype, or I64 converted) from st into a
 * malloc'ed float array (caller frees); its element count in *n.  Fails the test when
 * the tensor is missing. */
float *test_read_tensor(const struct safetensors *st, const char *name, size_t *n);

/* test_read_tensor for a 4-D NCHW reference ({B,C,H,W}, diffusers' layout): the
 * floats come back NHWC. */
float *test_read_tensor_nhwc(const struct safetensors *st, const char *name, size_t *n);

/* PSNR in dB of two images of n floats in [0,1] (peak 1); +Inf when identical. */
double test_psnr(const float *a, const float *b, size_t n);

/* FNV-1a 64 over n bytes (tests compare pixels with hashes of Pillow's bytes). */
uint64_t test_fnv1a(const uint8_t *p, size_t n);

/* Fails the test (naming `what`) unless max|got−want| ≤ atol + rtol·max|want|. */
void test_assert_close(const char *what, const float *got, const double *want, size_t n,
                       double atol, double rtol);

/* A fixture case's diffusers scheduler (manifest `scheduler`: {"class", "config"}) as
 * p->sampler and p->scheduler for model m: the class gives the sampler
 * (use_karras_sigmas: the Karras variant), a config timestep_spacing other than the
 * model's own gives that scheduler.  The tiny fixtures build their schedulers from the
 * hub's SD configs (no timestep_spacing: the class's default), while the saved folders
 * say what PNDM/DDIM wrote ("leading"), so an Euler case is SD_SCHEDULER_LINSPACE
 * there. */
void test_case_sampler(const json_t *sched, const struct sd_model *m, struct gen_params *p);

/* The whole file at path (a failed check when it cannot be read), NUL-terminated past
 * *len bytes; the caller frees it. */
uint8_t *test_read_file(const char *path, size_t *len);

/* A CPU backend with the default thread count; the suite's process keeps one. */
struct backend *test_cpu_backend(void);

/* An f32 workspace on test_cpu_backend (the caller destroys it). */
struct workspace test_cpu_workspace(void);

/* The tiny SD1 fixture (tests/fixtures/sd/sd1-tiny/diffusers: 64×64 native, 2 CLIP
 * layers, 77 tokens) on test_cpu_backend, or NULL (the reason printed on stderr) —
 * usable in an unchecked fixture, where a failed assertion is not allowed.  Free with
 * sd_model_free. */
struct sd_model *test_load_sd1_tiny(void);

/* Whether test_cpu_backend's GEMMs give a row the same bits whatever rows share its
 * call: the AVX-512 kernels do; the portable path's OpenBLAS (a CPU without AVX-512)
 * rounds a row by where it falls in its blocking, so there a batch's rows match their
 * runs alone to float rounding, not bit for bit. */
bool test_gemm_rows_exact(void);

/* Removes dir and everything below it (symbolic links themselves, never their
 * targets); quiet about what is already gone. */
void test_remove_tree(const char *dir);

/* Runs the suite; returns EXIT_SUCCESS only when every test passed. */
int test_run_suite(Suite *s);

#endif
