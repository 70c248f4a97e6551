/* tests/gpu/test_gpu_ops.c — op conformance: every op of engine/backend.h on the CUDA
 * backend against the CPU reference, on the same random inputs, in f32, f16 and bf16.
 *
 * Inputs are drawn once per case and rounded to the dtype under test, so both
 * backends see identical values; the CPU computes in f32.  The error of a case is
 * max|gpu − cpu| / max|cpu| (relative to the output's scale) and must stay under the
 * case's tolerance for that dtype (f32 GEMMs/convolutions run on TF32).  Odd shapes
 * (tails, head dims 17/64/80/128/256/320/512, broadcasts) and SD1.5's shapes (64×64×320
 * convs, 4096-token attention with 8 heads of 40, 8 heads of 160, the VAE's 4096 tokens
 * with one head of 512) are both covered.  Also: allocation
 * failure → STATUS_OUT_OF_MEMORY with the backend still usable; a captured CUDA graph
 * replays on new contents; lanes (two streams) give the same bits as one and run side
 * by side; an illegal address →
 * STATUS_DEVICE and backend_is_broken (run last: it ends the CUDA context).
 *
 * Usage: test_gpu_ops [results.json]   exit 0 all pass, 1 a failure, 77 no GPU.
 * GPU_OPS_FILTER=TEXT runs only the op cases whose name contains TEXT (and not the
 * OOM, graph and sticky-error checks).
 * Plain C (no Check): it builds on a GPU machine with no -dev packages. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/half.h"

#define MAX_TENSORS 12

struct suite {
    struct backend *cpu, *gpu;
    struct backend *gpu_scalar; /* attention on the f32 kernels (options.attention_scalar),
                                   small convolutions as im2col + GEMM (conv_gemm_rows) */
    struct backend *gpu_padded; /* flash attention on the padded kernels; GroupNorm on
                                   the statistics/merge/apply kernels; GEMMs autotuned;
                                   every convolution on cuDNN */
    struct backend *gpu_stages; /* flash attention on three K/V stages; GroupNorm on the
                                   one-kernel path wherever it applies; linear_stack as
                                   one strided-batched GEMM; GEMMs on cuBLASLt's
                                   heuristic choice */
    struct backend *gpu_bk128;  /* flash attention on key tiles of 128; GroupNorm split over
                                   thread-block clusters where that applies (sm_90) */
    struct backend *gpu_sync1;  /* flash attention with one barrier per key tile; GroupNorm on the tiled path */
    struct backend *gpu_lean;   /* flash attention with the lean softmax */
    struct backend *gpu_lean_mma; /* … and the row sums on the tensor cores */
    struct backend *gpu_exact2; /* flash attention on EXACT2 (the default before LEAN_MMA);
                                   linear_stack as G linears */
    struct backend *gpu_lean_mma_t2; /* LEAN_MMA with two row tiles per warp */
    struct backend *gpu_pdl;    /* the defaults with programmatic dependent launch */
    struct backend *gpu_convfuse; /* every convolution on cuDNN, bias and residual inside
                                     its call (options.conv_fuse) */
    FILE *json;
    int failed, passed;
    const char *filter; /* run only cases whose name contains this (NULL: all) */
};

/* --- random inputs ----------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float *random_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p)
        return NULL;
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)((double)(rng_next(&s) >> 11) / 9007199254740992.0);
    return p;
}

/* Rounds p to dtype precision in place (both backends then see the same values). */
static void round_to(float *p, size_t n, enum dtype dt)
{
    for (size_t i = 0; i < n; i++) {
        if (dt == DTYPE_F16)
            p[i] = half_f16_to_f32(half_f32_to_f16(p[i]));
        else if (dt == DTYPE_BF16)
            p[i] = half_bf16_to_f32(half_f32_to_bf16(p[i]));
    }
}

/* --- one run of a case on one backend ------------------------------------------------ */

struct run {
    struct backend *b;
    enum dtype dt;       /* the tensors' dtype on this backend */
    enum dtype round_dt; /* the dtype under test: extra inputs are rounded to it */
    struct tensor t[MAX_TENSORS];
    int n;
    struct errbuf err;
    enum status s; /* first failure */
};

static int64_t numel_of(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

/* A tensor of run->dt on the run's backend with host contents (NULL: zeros). */
static struct tensor *mk(struct run *r, int ndim, const int64_t *shape, const float *host)
{
    if (r->s != STATUS_OK || r->n == MAX_TENSORS)
        return NULL;
    struct tensor *t = &r->t[r->n];
    *t = tensor_desc(r->dt, ndim, shape);
    r->s = backend_alloc(r->b, t, &r->err);
    if (r->s != STATUS_OK)
        return NULL;
    r->n++;
    size_t n = (size_t)numel_of(ndim, shape);
    float *zeros = NULL;
    if (!host) {
        zeros = calloc(n ? n : 1, sizeof *zeros);
        host = zeros;
    }
    r->s = host ? backend_upload(t, host, DTYPE_F32, &r->err) : STATUS_OUT_OF_MEMORY;
    free(zeros);
    return r->s == STATUS_OK ? t : NULL;
}

/* The output of an op that writes all of it without reading it: NaN on the GPU (a
 * kernel that reads it, or leaves some of it unwritten, shows as NaN), zeros on the
 * CPU reference. */
static struct tensor *mk_output(struct run *r, int ndim, const int64_t *shape)
{
    if (strcmp(backend_name(r->b), "cuda") != 0)
        return mk(r, ndim, shape, NULL);
    const size_t n = (size_t)numel_of(ndim, shape);
    float *nans = malloc((n ? n : 1) * sizeof *nans);
    if (!nans) {
        r->s = STATUS_OUT_OF_MEMORY;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        nans[i] = NAN;
    struct tensor *t = mk(r, ndim, shape, nans);
    free(nans);
    return t;
}

static void run_free(struct run *r)
{
    for (int i = 0; i < r->n; i++)
        backend_free(&r->t[i]);
    r->n = 0;
}

/* A case: builds its tensors on r from the host inputs in c, runs the op, returns the
 * output tensor (NULL after a failure, recorded in r). */
struct case_def;
typedef struct tensor *(*case_fn)(struct run *r, const struct case_def *c, float **in);

#define MAX_INPUTS 6

struct case_def {
    const char *name;
    case_fn fn;
    int n_in;
    int ndim[MAX_INPUTS];
    int64_t shape[MAX_INPUTS][4];
    float lo, hi;             /* input range */
    double tol[DTYPE_COUNT_]; /* per dtype: max|Δ| / max|ref| */
    /* op parameters */
    int i0, i1;
    float f0;
    bool flag;
    int64_t out_shape[4];
};

/* --- the ops ----------------------------------------------------------------------------- */

#define IN(k) mk(r, c->ndim[k], c->shape[k], in[k])

static struct tensor *c_conv(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *x = IN(0), *w = IN(1);
    struct tensor *bias = c->n_in > 2 ? IN(2) : NULL;
    struct conv2d_params p = {c->i0, c->i1};
    if (r->s != STATUS_OK)
        return NULL;
    int64_t ho = (x->shape[1] + 2 * p.padding - w->shape[1]) / p.stride + 1;
    int64_t wo = (x->shape[2] + 2 * p.padding - w->shape[2]) / p.stride + 1;
    const int64_t ys[4] = {x->shape[0], ho, wo, w->shape[0]};
    struct tensor *res = NULL;
    if (c->flag) { /* residual: the output's shape, random */
        float *h = random_floats((size_t)numel_of(4, ys), 99, -1, 1);
        round_to(h, (size_t)numel_of(4, ys), r->round_dt);
        res = mk(r, 4, ys, h);
        free(h);
    }
    struct tensor *y = mk_output(r, 4, ys);
    if (r->s == STATUS_OK)
        r->s = backend_conv2d(x, w, bias, res, &p, y, &r->err);
    return y;
}

static struct tensor *c_linear(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *x = IN(0), *w = IN(1);
    struct tensor *bias = c->n_in > 2 ? IN(2) : NULL;
    if (r->s != STATUS_OK)
        return NULL;
    int64_t ys[4];
    memcpy(ys, x->shape, sizeof ys);
    ys[x->ndim - 1] = w->shape[0];
    struct tensor *res = NULL;
    if (c->flag) {
        size_t n = (size_t)numel_of(x->ndim, ys);
        float *h = random_floats(n, 77, -1, 1);
        round_to(h, n, r->round_dt);
        res = mk(r, x->ndim, ys, h);
        free(h);
    }
    struct tensor *y = mk(r, x->ndim, ys, NULL);
    if (r->s == STATUS_OK)
        r->s = backend_linear(x, w, bias, res, y, &r->err);
    return y;
}

/* w{G,out,in}: y{G, x's leading dims, out} */
static struct tensor *c_linear_stack(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *x = IN(0), *w = IN(1);
    if (r->s != STATUS_OK)
        return NULL;
    int64_t ys[4] = {w->shape[0], 1, 1, 1};
    for (int d = 0; d + 1 < x->ndim; d++)
        ys[d + 1] = x->shape[d];
    ys[x->ndim] = w->shape[1];
    struct tensor *y = mk(r, x->ndim + 1, ys, NULL);
    if (r->s == STATUS_OK)
        r->s = backend_linear_stack(x, w, y, &r->err);
    return y;
}

static struct tensor *c_matmul(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *a = IN(0), *bm = IN(1);
    if (r->s != STATUS_OK)
        return NULL;
    int64_t n = c->flag ? bm->shape[1] : bm->shape[2];
    struct tensor *y = mk(r, 3, (int64_t[]){a->shape[0], a->shape[1], n}, NULL);
    if (r->s == STATUS_OK)
        r->s = backend_matmul(a, bm, c->flag, c->f0, y, &r->err);
    return y;
}

/* i0 = groups, flag = silu, i1 = 1: in place (y = x), n_in 3: affine, 4: and a shift */
static struct tensor *c_group_norm(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *x = IN(0);
    struct tensor *g = c->n_in > 1 ? IN(1) : NULL, *b = c->n_in > 2 ? IN(2) : NULL;
    if (r->s != STATUS_OK)
        return NULL;
    struct tensor *sh = c->n_in > 3 ? IN(3) : NULL; /* the shift {N, C} */
    struct tensor *y = c->i1 ? x : mk(r, x->ndim, x->shape, NULL);
    struct group_norm_params p = {c->i0, 1e-5f, c->flag, sh};
    if (r->s == STATUS_OK)
        r->s = backend_group_norm(x, g, b, &p, y, &r->err);
    return y;
}

static struct tensor *c_layer_norm(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *x = IN(0);
    struct tensor *g = c->n_in > 1 ? IN(1) : NULL, *b = c->n_in > 2 ? IN(2) : NULL;
    struct tensor *y = r->s == STATUS_OK ? mk(r, x->ndim, x->shape, NULL) : NULL;
    if (r->s == STATUS_OK)
        r->s = backend_layer_norm(x, g, b, 1e-5f, y, &r->err);
    return y;
}

/* i0 = heads, flag = causal */
static struct tensor *c_attention(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *q = IN(0), *k = IN(1), *v = IN(2);
    struct tensor *y = r->s == STATUS_OK ? mk(r, 3, q->shape, NULL) : NULL;
    if (r->s != STATUS_OK)
        return NULL;
    int64_t d = q->shape[2] / c->i0;
    struct attention_params p = {c->i0, 1.0f / sqrtf((float)d), c->flag};
    r->s = backend_attention(q, k, v, &p, y, &r->err);
    return y;
}

/* i0: 0..2 gelu kind, 3 silu, 4 geglu; i1 = 1: in place */
static struct tensor *c_act(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *x = IN(0);
    if (r->s != STATUS_OK)
        return NULL;
    if (c->i0 == 4) {
        int64_t ys[4];
        memcpy(ys, x->shape, sizeof ys);
        ys[x->ndim - 1] /= 2;
        struct tensor *y = mk(r, x->ndim, ys, NULL);
        if (r->s == STATUS_OK)
            r->s = backend_geglu(x, y, &r->err);
        return y;
    }
    struct tensor *y = c->i1 ? x : mk(r, x->ndim, x->shape, NULL);
    if (r->s == STATUS_OK)
        r->s = c->i0 == 3 ? backend_silu(x, y, &r->err)
                          : backend_gelu(x, (enum gelu_kind)c->i0, y, &r->err);
    return y;
}

/* flag: mul */
static struct tensor *c_binary(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *a = IN(0), *b = IN(1);
    struct tensor *y = r->s == STATUS_OK ? mk(r, a->ndim, a->shape, NULL) : NULL;
    if (r->s == STATUS_OK)
        r->s = c->flag ? backend_mul(a, b, y, &r->err) : backend_add(a, b, y, &r->err);
    return y;
}

/* flag: out aliases x */
static struct tensor *c_axpby(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *x = IN(0), *yin = IN(1);
    if (r->s != STATUS_OK)
        return NULL;
    int64_t rows = x->shape[0];
    float *al = malloc((size_t)rows * sizeof *al), *be = malloc((size_t)rows * sizeof *be);
    for (int64_t i = 0; i < rows; i++) {
        al[i] = 0.5f + 0.25f * (float)(i % 5);
        be[i] = -1.0f + 0.125f * (float)(i % 7);
    }
    struct tensor *out = c->flag ? x : mk(r, x->ndim, x->shape, NULL);
    if (r->s == STATUS_OK)
        r->s = backend_axpby(x, yin, al, be, out, &r->err);
    free(al);
    free(be);
    return out;
}

static struct tensor *c_upsample(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *x = IN(0);
    struct tensor *y = r->s == STATUS_OK ? mk(r, 4, c->out_shape, NULL) : NULL;
    if (r->s == STATUS_OK)
        r->s = backend_upsample_nearest(x, y, &r->err);
    return y;
}

static struct tensor *c_concat(struct run *r, const struct case_def *c, float **in)
{
    struct tensor *a = IN(0), *b = IN(1);
    if (r->s != STATUS_OK)
        return NULL;
    int64_t ys[4];
    memcpy(ys, a->shape, sizeof ys);
    ys[a->ndim - 1] += b->shape[b->ndim - 1];
    struct tensor *y = mk(r, a->ndim, ys, NULL);
    if (r->s == STATUS_OK)
        r->s = backend_concat_channels(a, b, y, &r->err);
    return y;
}

/* i0 = dim, flag = flip, f0 = shift; rows from shape[0][0] (input 0 = timesteps) */
static struct tensor *c_timestep(struct run *r, const struct case_def *c, float **in)
{
    int64_t n = c->shape[0][0];
    struct tensor *y = mk(r, 2, (int64_t[]){n, c->i0}, NULL);
    struct timestep_embedding_params p = {c->i0, c->flag, c->f0, 10000.0f};
    if (r->s == STATUS_OK)
        r->s = backend_timestep_embedding(in[0], &p, y, &r->err);
    return y;
}

/* --- the case table ----------------------------------------------------------------------- */

/* tolerances: {f32, f16, bf16} */
#define TOL_EXACT {1e-6, 1e-6, 1e-6}
#define TOL_EW {2e-5, 2e-3, 1.6e-2}
#define TOL_NORM {1e-4, 4e-3, 3e-2}
#define TOL_GEMM {4e-3, 4e-3, 3e-2} /* f32 on TF32 */
#define TOL_ATT {1e-4, 4e-3, 3e-2}
#define TOL_TS {5e-4, 3e-3, 1.6e-2} /* sin/cos of args up to ~1000: f32 argument rounding */

#define S1(a) {a}
static const struct case_def CASES[] = {
    /* conv2d: {x, w, bias}; i0 stride, i1 padding, flag residual */
    {"conv3x3_odd", c_conv, 3, {4, 4, 1}, {{1, 7, 9, 5}, {6, 3, 3, 5}, S1(6)}, -1, 1, TOL_GEMM, 1, 1, 0, false, {0}},
    {"conv3x3_s2_res", c_conv, 3, {4, 4, 1}, {{2, 9, 7, 4}, {8, 3, 3, 4}, S1(8)}, -1, 1, TOL_GEMM, 2, 1, 0, true, {0}},
    {"conv1x1_nobias_res", c_conv, 2, {4, 4}, {{1, 5, 5, 8}, {16, 1, 1, 8}}, -1, 1, TOL_GEMM, 1, 0, 0, true, {0}},
    {"conv3x3_pad0", c_conv, 3, {4, 4, 1}, {{1, 6, 11, 3}, {5, 3, 3, 3}, S1(5)}, -1, 1, TOL_GEMM, 1, 0, 0, false, {0}},
    {"conv_sd_64x64x320", c_conv, 3, {4, 4, 1}, {{2, 64, 64, 320}, {320, 3, 3, 320}, S1(320)}, -1, 1, TOL_GEMM, 1, 1, 0, true, {0}},
    {"conv_sd_in_4to320", c_conv, 3, {4, 4, 1}, {{2, 64, 64, 4}, {320, 3, 3, 4}, S1(320)}, -1, 1, TOL_GEMM, 1, 1, 0, false, {0}},
    {"conv_sd_8x8x1280_res", c_conv, 3, {4, 4, 1}, {{2, 8, 8, 1280}, {1280, 3, 3, 1280}, S1(1280)}, -1, 1, TOL_GEMM, 1, 1, 0, true, {0}},
    {"conv_sd_1x1_2560to1280_res", c_conv, 3, {4, 4, 1}, {{2, 16, 16, 2560}, {1280, 1, 1, 2560}, S1(1280)}, -1, 1, TOL_GEMM, 1, 0, 0, true, {0}},
    {"conv_s2_c64_odd", c_conv, 3, {4, 4, 1}, {{3, 15, 13, 64}, {24, 3, 3, 64}, S1(24)}, -1, 1, TOL_GEMM, 2, 1, 0, false, {0}},
    {"conv_sd_down_s2", c_conv, 3, {4, 4, 1}, {{2, 32, 32, 640}, {640, 3, 3, 640}, S1(640)}, -1, 1, TOL_GEMM, 2, 1, 0, false, {0}},
    /* linear: {x, w, bias}; flag residual */
    {"linear_odd", c_linear, 3, {2, 2, 1}, {{3, 37}, {29, 37}, S1(29)}, -1, 1, TOL_GEMM, 0, 0, 0, true, {0}},
    {"linear_nobias_3d", c_linear, 2, {3, 2}, {{2, 5, 33}, {7, 33}}, -1, 1, TOL_GEMM, 0, 0, 0, false, {0}},
    {"linear_sd_qkv", c_linear, 2, {3, 2}, {{2, 4096, 320}, {320, 320}}, -1, 1, TOL_GEMM, 0, 0, 0, false, {0}},
    {"linear_sd_out_res", c_linear, 3, {3, 2, 1}, {{2, 4096, 320}, {320, 320}, S1(320)}, -1, 1, TOL_GEMM, 0, 0, 0, true, {0}},
    {"linear_sd_geglu_proj", c_linear, 3, {3, 2, 1}, {{2, 4096, 320}, {2560, 320}, S1(2560)}, -1, 1, TOL_GEMM, 0, 0, 0, false, {0}},
    {"linear_stack_odd", c_linear_stack, 2, {2, 3}, {{7, 37}, {3, 29, 37}}, -1, 1, TOL_GEMM, 0, 0, 0, false, {0}},
    {"linear_stack_sd_qkv", c_linear_stack, 2, {3, 3}, {{2, 4096, 320}, {3, 320, 320}}, -1, 1, TOL_GEMM, 0, 0, 0, false, {0}},
    {"linear_stack_sd_ctx_kv", c_linear_stack, 2, {3, 3}, {{2, 77, 768}, {2, 1280, 768}}, -1, 1, TOL_GEMM, 0, 0, 0, false, {0}},
    /* the U-Net's keys/values of every 1280-wide cross-attention in one GEMM */
    {"linear_stack_sd_ctx_kv_width", c_linear_stack, 2, {3, 3}, {{2, 77, 768}, {12, 1280, 768}}, -1, 1, TOL_GEMM, 0, 0, 0, false, {0}},
    {"linear_stack_sd_temb", c_linear_stack, 2, {2, 3}, {{2, 1280}, {12, 1280, 1280}}, -1, 1, TOL_GEMM, 0, 0, 0, false, {0}},
    {"linear_sd_ctx_k", c_linear, 2, {3, 2}, {{2, 77, 768}, {320, 768}}, -1, 1, TOL_GEMM, 0, 0, 0, false, {0}},
    /* matmul: {a, b}; flag trans_b, f0 alpha */
    {"matmul_odd", c_matmul, 2, {3, 3}, {{3, 17, 23}, {3, 23, 19}}, -1, 1, TOL_GEMM, 0, 0, 1.0f, false, {0}},
    {"matmul_transb_alpha", c_matmul, 2, {3, 3}, {{2, 33, 40}, {2, 29, 40}}, -1, 1, TOL_GEMM, 0, 0, 0.5f, true, {0}},
    /* group_norm: {x, gamma, beta}; i0 groups, i1 in place, flag silu */
    {"group_norm_odd_silu", c_group_norm, 3, {4, 1, 1}, {{2, 9, 7, 64}, S1(64), S1(64)}, -2, 3, TOL_NORM, 32, 0, 0, true, {0}},
    {"group_norm_tokens_noaffine", c_group_norm, 1, {3}, {{2, 77, 96}}, -1, 1, TOL_NORM, 8, 0, 0, false, {0}},
    {"group_norm_inplace", c_group_norm, 3, {4, 1, 1}, {{1, 5, 3, 12}, S1(12), S1(12)}, -1, 1, TOL_NORM, 3, 1, 0, false, {0}},
    {"group_norm_chunks_odd", c_group_norm, 3, {4, 1, 1}, {{1, 129, 131, 24}, S1(24), S1(24)}, -1, 1, TOL_NORM, 3, 0, 0, true, {0}},
    {"group_norm_offset_mean", c_group_norm, 1, {4}, {{2, 33, 35, 16}}, 100, 101, TOL_NORM, 4, 0, 0, false, {0}},
    {"group_norm_odd_group_width", c_group_norm, 3, {4, 1, 1}, {{2, 7, 9, 15}, S1(15), S1(15)}, -2, 3, TOL_NORM, 5, 0, 0, true, {0}},
    {"group_norm_vae_offset", c_group_norm, 3, {4, 1, 1}, {{1, 128, 96, 128}, S1(128), S1(128)}, 50, 52, TOL_NORM, 32, 1, 0, false, {0}},
    {"group_norm_shift_sd", c_group_norm, 4, {4, 1, 1, 2}, {{2, 64, 64, 320}, S1(320), S1(320), {2, 320}}, -1, 3, TOL_NORM, 32, 1, 0, true, {0}},
    /* SD's widest groups: 40, 60 and 80 channels (1280, 1920, 2560 in 32 groups), a
     * position's channel pairs over more than one warp */
    {"group_norm_shift_sd_c1280", c_group_norm, 4, {4, 1, 1, 2}, {{2, 8, 8, 1280}, S1(1280), S1(1280), {2, 1280}}, -1, 3, TOL_NORM, 32, 1, 0, true, {0}},
    {"group_norm_sd_c1920", c_group_norm, 3, {4, 1, 1}, {{2, 16, 16, 1920}, S1(1920), S1(1920)}, -1, 3, TOL_NORM, 32, 0, 0, true, {0}},
    {"group_norm_sd_c2560", c_group_norm, 3, {4, 1, 1}, {{2, 8, 8, 2560}, S1(2560), S1(2560)}, -1, 3, TOL_NORM, 32, 1, 0, true, {0}},
    {"group_norm_shift_offset", c_group_norm, 4, {4, 1, 1, 2}, {{2, 7, 9, 30}, S1(30), S1(30), {2, 30}}, 6, 8, TOL_NORM, 5, 0, 0, false, {0}},
    /* the tiled path's edges: groups of exactly one vector (8 channels), in place, an
     * offset mean, odd positions, the time-embedding shift.  The offset is shift_offset's:
     * at 50–52 (GPU run 10) the three-kernel path, which adds the shift in f16 before
     * the norm (backend.c, as diffusers does), lost 1.3e-2 (f16) and 1.1e-1 (bf16) to
     * the sum's rounding at ~100 — that path's precision, not the kernels' */
    {"group_norm_shift_offset_c40", c_group_norm, 4, {4, 1, 1, 2}, {{2, 33, 35, 40}, S1(40), S1(40), {2, 40}}, 6, 8, TOL_NORM, 5, 1, 0, true, {0}},
    {"group_norm_sd_64x64x320", c_group_norm, 3, {4, 1, 1}, {{2, 64, 64, 320}, S1(320), S1(320)}, -1, 3, TOL_NORM, 32, 0, 0, true, {0}},
    /* layer_norm: {x, gamma, beta} */
    {"layer_norm_odd", c_layer_norm, 3, {3, 1, 1}, {{3, 5, 37}, S1(37), S1(37)}, -2, 2, TOL_NORM, 0, 0, 0, false, {0}},
    {"layer_norm_noaffine", c_layer_norm, 1, {2}, {{7, 1000}}, 1, 5, TOL_NORM, 0, 0, 0, false, {0}},
    {"layer_norm_sd", c_layer_norm, 3, {3, 1, 1}, {{2, 4096, 320}, S1(320), S1(320)}, -1, 1, TOL_NORM, 0, 0, 0, false, {0}},
    {"layer_norm_c1280", c_layer_norm, 3, {3, 1, 1}, {{2, 77, 1280}, S1(1280), S1(1280)}, -2, 2, TOL_NORM, 0, 0, 0, false, {0}},
    {"layer_norm_c2048", c_layer_norm, 3, {2, 1, 1}, {{5, 2048}, S1(2048), S1(2048)}, -2, 2, TOL_NORM, 0, 0, 0, false, {0}},
    {"layer_norm_c768_gamma_only", c_layer_norm, 2, {3, 1}, {{2, 3, 768}, S1(768)}, -2, 2, TOL_NORM, 0, 0, 0, false, {0}},
    {"layer_norm_c24_offset", c_layer_norm, 1, {2}, {{9, 24}}, 100, 101, TOL_NORM, 0, 0, 0, false, {0}},
    {"layer_norm_c640_offset", c_layer_norm, 3, {3, 1, 1}, {{3, 5, 640}, S1(640), S1(640)}, 50, 52, TOL_NORM, 0, 0, 0, false, {0}},
    {"layer_norm_c2056_general", c_layer_norm, 3, {2, 1, 1}, {{3, 2056}, S1(2056), S1(2056)}, -2, 2, TOL_NORM, 0, 0, 0, false, {0}},
    /* attention: {q, k, v}; i0 heads, flag causal */
    {"attention_d64", c_attention, 3, {3, 3, 3}, {{1, 100, 128}, {1, 100, 128}, {1, 100, 128}}, -2, 2, TOL_ATT, 2, 0, 0, false, {0}},
    {"attention_d80_cross", c_attention, 3, {3, 3, 3}, {{2, 257, 160}, {2, 77, 160}, {2, 77, 160}}, -2, 2, TOL_ATT, 2, 0, 0, false, {0}},
    {"attention_d128_causal", c_attention, 3, {3, 3, 3}, {{1, 77, 256}, {1, 77, 256}, {1, 77, 256}}, -2, 2, TOL_ATT, 2, 0, 0, true, {0}},
    {"attention_d17_odd", c_attention, 3, {3, 3, 3}, {{1, 33, 51}, {1, 45, 51}, {1, 45, 51}}, -2, 2, TOL_ATT, 3, 0, 0, false, {0}},
    {"attention_sd_d160", c_attention, 3, {3, 3, 3}, {{2, 256, 1280}, {2, 256, 1280}, {2, 256, 1280}}, -1, 1, TOL_ATT, 8, 0, 0, false, {0}},
    {"attention_d256_causal", c_attention, 3, {3, 3, 3}, {{1, 70, 512}, {1, 70, 512}, {1, 70, 512}}, -1, 1, TOL_ATT, 2, 0, 0, true, {0}},
    {"attention_d512_odd", c_attention, 3, {3, 3, 3}, {{1, 300, 512}, {1, 300, 512}, {1, 300, 512}}, -1, 1, TOL_ATT, 1, 0, 0, false, {0}},
    {"attention_d512_causal", c_attention, 3, {3, 3, 3}, {{2, 77, 1024}, {2, 77, 1024}, {2, 77, 1024}}, -1, 1, TOL_ATT, 2, 0, 0, true, {0}},
    {"attention_vae_d512", c_attention, 3, {3, 3, 3}, {{1, 4096, 512}, {1, 4096, 512}, {1, 4096, 512}}, -1, 1, TOL_ATT, 1, 0, 0, false, {0}},
    {"attention_d320_generic", c_attention, 3, {3, 3, 3}, {{1, 50, 320}, {1, 61, 320}, {1, 61, 320}}, -1, 1, TOL_ATT, 1, 0, 0, false, {0}},
    {"attention_d320_generic_causal", c_attention, 3, {3, 3, 3}, {{1, 130, 640}, {1, 130, 640}, {1, 130, 640}}, -1, 1, TOL_ATT, 2, 0, 0, true, {0}},
    {"attention_d200_pad_cross", c_attention, 3, {3, 3, 3}, {{2, 45, 400}, {2, 90, 400}, {2, 90, 400}}, -1, 1, TOL_ATT, 2, 0, 0, false, {0}},
    {"attention_d168_causal", c_attention, 3, {3, 3, 3}, {{1, 97, 168}, {1, 97, 168}, {1, 97, 168}}, -1, 1, TOL_ATT, 1, 0, 0, true, {0}},
    {"attention_clip_causal", c_attention, 3, {3, 3, 3}, {{2, 77, 768}, {2, 77, 768}, {2, 77, 768}}, -1, 1, TOL_ATT, 12, 0, 0, true, {0}},
    {"attention_sd_self_d40", c_attention, 3, {3, 3, 3}, {{2, 4096, 320}, {2, 4096, 320}, {2, 4096, 320}}, -2, 2, TOL_ATT, 8, 0, 0, false, {0}},
    {"attention_d40_ragged", c_attention, 3, {3, 3, 3}, {{1, 100, 80}, {1, 130, 80}, {1, 130, 80}}, -2, 2, TOL_ATT, 2, 0, 0, false, {0}},
    {"attention_d40_ragged_causal", c_attention, 3, {3, 3, 3}, {{2, 150, 80}, {2, 150, 80}, {2, 150, 80}}, -2, 2, TOL_ATT, 2, 0, 0, true, {0}},
    {"attention_sd_cross_d40", c_attention, 3, {3, 3, 3}, {{2, 4096, 320}, {2, 77, 320}, {2, 77, 320}}, -2, 2, TOL_ATT, 8, 0, 0, false, {0}},
    /* SD2's head dim 64 with a partial key tile, causal and past-the-end query rows (two
     * row tiles per warp in the [2 tiles] variants); head dim 80 over key tiles of 64
     * and 128 ([bk 128]), the last partial, causal; SD1's mid-block cross-attention:
     * head dim 160 over 77 keys (a partial tile of 32) */
    {"attention_d64_ragged_causal", c_attention, 3, {3, 3, 3}, {{1, 150, 128}, {1, 150, 128}, {1, 150, 128}}, -2, 2, TOL_ATT, 2, 0, 0, true, {0}},
    {"attention_d64_ragged_cross", c_attention, 3, {3, 3, 3}, {{2, 200, 320}, {2, 77, 320}, {2, 77, 320}}, -2, 2, TOL_ATT, 5, 0, 0, false, {0}},
    {"attention_d80_self_causal", c_attention, 3, {3, 3, 3}, {{1, 300, 160}, {1, 300, 160}, {1, 300, 160}}, -2, 2, TOL_ATT, 2, 0, 0, true, {0}},
    {"attention_sd_cross_d160", c_attention, 3, {3, 3, 3}, {{2, 64, 1280}, {2, 77, 1280}, {2, 77, 1280}}, -1, 1, TOL_ATT, 8, 0, 0, false, {0}},
    /* activations: i0 kind (3 silu, 4 geglu), i1 in place */
    {"gelu_erf", c_act, 1, {2}, {{3, 1001}}, -6, 6, TOL_EW, 0, 0, 0, false, {0}},
    {"gelu_tanh", c_act, 1, {2}, {{3, 1001}}, -6, 6, TOL_EW, 1, 0, 0, false, {0}},
    {"gelu_quick_inplace", c_act, 1, {2}, {{3, 1001}}, -6, 6, TOL_EW, 2, 1, 0, false, {0}},
    {"silu", c_act, 1, {4}, {{2, 3, 5, 7}}, -8, 8, TOL_EW, 3, 0, 0, false, {0}},
    {"geglu", c_act, 1, {3}, {{2, 17, 66}}, -4, 4, TOL_EW, 4, 0, 0, false, {0}},
    {"geglu_sd", c_act, 1, {3}, {{2, 4096, 2560}}, -4, 4, TOL_EW, 4, 0, 0, false, {0}},
    {"geglu_c8", c_act, 1, {3}, {{3, 5, 16}}, -4, 4, TOL_EW, 4, 0, 0, false, {0}},
    {"geglu_c12_general", c_act, 1, {2}, {{7, 24}}, -4, 4, TOL_EW, 4, 0, 0, false, {0}},
    /* add/mul: {a, b}; flag mul */
    {"add_same", c_binary, 2, {4, 4}, {{2, 5, 7, 9}, {2, 5, 7, 9}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"add_bcast_channels", c_binary, 2, {4, 4}, {{2, 5, 7, 9}, {2, 1, 1, 9}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"add_bcast_batch", c_binary, 2, {4, 4}, {{2, 5, 7, 9}, {1, 5, 7, 9}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"mul_bcast_col", c_binary, 2, {2, 2}, {{6, 3}, {6, 1}}, -2, 2, TOL_EW, 0, 0, 0, true, {0}},
    {"mul_bcast_mixed", c_binary, 2, {3, 3}, {{4, 5, 6}, {1, 5, 1}}, -2, 2, TOL_EW, 0, 0, 0, true, {0}},
    {"add_same_vec", c_binary, 2, {4, 4}, {{2, 8, 8, 40}, {2, 8, 8, 40}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"mul_same_vec", c_binary, 2, {2, 2}, {{3, 24}, {3, 24}}, -2, 2, TOL_EW, 0, 0, 0, true, {0}},
    {"add_bcast_channels_sd", c_binary, 2, {4, 4}, {{2, 16, 16, 320}, {2, 1, 1, 320}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"add_bcast_c_only", c_binary, 2, {4, 4}, {{2, 3, 5, 16}, {1, 1, 1, 16}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"add_bcast_temb_bias", c_binary, 2, {3, 3}, {{12, 2, 1280}, {12, 1, 1280}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"mul_bcast_vec_row", c_binary, 2, {2, 2}, {{5, 24}, {1, 24}}, -2, 2, TOL_EW, 0, 0, 0, true, {0}},
    {"mul_bcast_tokens", c_binary, 2, {3, 3}, {{2, 7, 24}, {2, 1, 24}}, -2, 2, TOL_EW, 0, 0, 0, true, {0}},
    {"add_bcast_batch_vec", c_binary, 2, {4, 4}, {{3, 4, 5, 8}, {1, 4, 5, 8}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"add_bcast_mid_vec", c_binary, 2, {4, 4}, {{2, 3, 4, 8}, {2, 3, 1, 8}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"add_bcast_two_runs_general", c_binary, 2, {4, 4}, {{2, 3, 4, 8}, {1, 3, 1, 8}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    /* axpby: {x, y}; flag in place */
    {"axpby", c_axpby, 2, {4, 4}, {{3, 4, 5, 7}, {3, 4, 5, 7}}, -2, 2, TOL_EW, 0, 0, 0, false, {0}},
    {"axpby_inplace_300rows", c_axpby, 2, {2, 2}, {{300, 33}, {300, 33}}, -2, 2, TOL_EW, 0, 0, 0, true, {0}},
    /* upsample: out_shape */
    {"upsample_2x", c_upsample, 1, {4}, {{2, 5, 7, 3}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {2, 10, 14, 3}},
    {"upsample_odd", c_upsample, 1, {4}, {{1, 5, 7, 3}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {1, 8, 9, 3}},
    {"upsample_sd", c_upsample, 1, {4}, {{2, 32, 32, 640}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {2, 64, 64, 640}},
    {"upsample_2x_c8", c_upsample, 1, {4}, {{2, 3, 5, 8}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {2, 6, 10, 8}},
    {"upsample_2x_c4", c_upsample, 1, {4}, {{1, 3, 3, 4}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {1, 6, 6, 4}},
    {"upsample_odd_c8", c_upsample, 1, {4}, {{1, 3, 5, 8}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {1, 7, 11, 8}},
    /* concat */
    {"concat", c_concat, 2, {4, 4}, {{2, 3, 5, 7}, {2, 3, 5, 4}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {0}},
    {"concat_sd", c_concat, 2, {4, 4}, {{2, 32, 32, 640}, {2, 32, 32, 320}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {0}},
    {"concat_c8_c16", c_concat, 2, {4, 4}, {{2, 3, 5, 8}, {2, 3, 5, 16}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {0}},
    {"concat_c8_c4", c_concat, 2, {3, 3}, {{2, 7, 8}, {2, 7, 4}}, -2, 2, TOL_EXACT, 0, 0, 0, false, {0}},
    /* timestep embedding: input 0 = the timesteps {n}; i0 dim, flag flip, f0 shift */
    {"timestep_sd", c_timestep, 1, {1}, {S1(4)}, 0, 999, TOL_TS, 320, 0, 0.0f, true, {0}},
    {"timestep_shift1_300rows", c_timestep, 1, {1}, {S1(300)}, 0, 999, TOL_TS, 64, 0, 1.0f, false, {0}},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])

/* --- running and comparing ----------------------------------------------------------------- */

static const enum dtype DTYPES[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs case c on backend b in dtype dt; *out = malloc'ed host result, *n its size. */
static enum status run_case(struct backend *b, enum dtype dt, enum dtype round_dt,
                            const struct case_def *c, float **in, float **out, size_t *n,
                            struct errbuf *err)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.b = b;
    r.dt = dt;
    r.round_dt = round_dt;
    struct tensor *y = c->fn(&r, c, in);
    if (r.s == STATUS_OK && y) {
        *n = (size_t)tensor_numel(y);
        *out = malloc(*n * sizeof **out);
        r.s = *out ? backend_download(y, *out, &r.err) : STATUS_OUT_OF_MEMORY;
    }
    if (r.s != STATUS_OK && err)
        *err = r.err;
    run_free(&r);
    return r.s;
}

static void check_case(struct suite *su, struct backend *gpu, const char *variant,
                       const struct case_def *c, enum dtype dt)
{
    float *in[MAX_INPUTS] = {0};
    for (int k = 0; k < c->n_in; k++) {
        size_t n = (size_t)numel_of(c->ndim[k], c->shape[k]);
        in[k] = random_floats(n, 1000u * (uint64_t)(c - CASES) + (uint64_t)k + 1, c->lo, c->hi);
        if (c->fn != c_timestep)
            round_to(in[k], n, dt);
    }
    struct errbuf err;
    errbuf_clear(&err);
    float *ref = NULL, *got = NULL;
    size_t nr = 0, ng = 0;
    double t0 = now_ms();
    enum status s = run_case(su->cpu, DTYPE_F32, dt, c, in, &ref, &nr, &err);
    double t1 = now_ms();
    if (s == STATUS_OK)
        s = run_case(gpu, dt, dt, c, in, &got, &ng, &err);
    double t2 = now_ms();
    double max_ref = 0, max_diff = 0, sum_sq = 0;
    size_t worst_i = 0;
    bool nan = false;
    if (s == STATUS_OK) {
        for (size_t i = 0; i < nr; i++) {
            double d = fabs((double)got[i] - (double)ref[i]);
            if (isnan(got[i]) || isnan(d))
                nan = true;
            if (d > max_diff)
                worst_i = i;
            max_diff = d > max_diff ? d : max_diff;
            sum_sq += d * d;
            double a = fabs((double)ref[i]);
            max_ref = a > max_ref ? a : max_ref;
        }
    }
    double rel = max_diff / (max_ref > 1e-30 ? max_ref : 1.0);
    double rms = nr ? sqrt(sum_sq / (double)nr) / (max_ref > 1e-30 ? max_ref : 1.0) : 0;
    bool ok = s == STATUS_OK && !nan && ng == nr && rel <= c->tol[dt];
    char name[96];
    snprintf(name, sizeof name, "%s%s", c->name, variant);
    printf("%-4s %-40s %-4s  max|d|/max|ref| %.3e (tol %.1e)  rms %.3e  cpu %.1f ms gpu %.1f ms%s%s\n",
           ok ? "ok" : "FAIL", name, dtype_name(dt), rel, c->tol[dt], rms, t1 - t0, t2 - t1,
           s != STATUS_OK ? "  error: " : "", s != STATUS_OK ? err.msg : "");
    fflush(stdout);
    if (!ok && s == STATUS_OK && nr > 0) /* where it is worst, to start debugging from */
        printf("       worst at element %zu of %zu: gpu %.6g, cpu %.6g%s\n", worst_i, nr,
               (double)got[worst_i], (double)ref[worst_i], nan ? " (NaN present)" : "");
    if (su->json)
        fprintf(su->json,
                "{\"op\":\"%s\",\"dtype\":\"%s\",\"ok\":%s,\"rel_max\":%.6e,\"rel_rms\":%.6e,"
                "\"tol\":%.1e,\"status\":\"%s\"}\n",
                name, dtype_name(dt), ok ? "true" : "false", rel, rms, c->tol[dt],
                status_name(s));
    if (ok)
        su->passed++;
    else
        su->failed++;
    free(ref);
    free(got);
    for (int k = 0; k < c->n_in; k++)
        free(in[k]);
}

/* A [convfuse] case, and whether cuDNN fused it — reported (ops.json: a
 * conv_fused_case line), not checked: cuDNN decides which shapes and dtypes it fuses,
 * and a shape it refuses runs unfused and must match all the same. */
static void check_convfuse(struct suite *su, const struct case_def *c, enum dtype dt)
{
    const unsigned long before = cuda_backend_conv_fused_calls(su->gpu_convfuse);
    check_case(su, su->gpu_convfuse, "[convfuse]", c, dt);
    const unsigned long fused = cuda_backend_conv_fused_calls(su->gpu_convfuse) - before;
    printf("info %-40s %-4s  %s\n", c->name, dtype_name(dt),
           fused ? "fused by cuDNN" : "unfused (cuDNN refused, no bias, or a GEMM shape)");
    if (su->json)
        fprintf(su->json, "{\"info\":\"conv_fused_case\",\"case\":\"%s/%s\",\"count\":%lu}\n",
                c->name, dtype_name(dt), fused);
}

/* A whole-backend check's result: counted, and its ops.json line (op `name`). */
static void record_check(struct suite *su, const char *name, bool ok)
{
    if (su->json)
        fprintf(su->json, "{\"op\":\"%s\",\"ok\":%s}\n", name, ok ? "true" : "false");
    ok ? su->passed++ : su->failed++;
}

/* An allocation far beyond the card fails with OUT_OF_MEMORY; the backend lives on. */
static void check_oom(struct suite *su)
{
    struct errbuf err;
    errbuf_clear(&err);
    struct tensor big = tensor_desc2(DTYPE_F32, (int64_t)1 << 28, (int64_t)1 << 12); /* 4 TiB */
    enum status s = backend_alloc(su->gpu, &big, &err);
    bool ok = s == STATUS_OUT_OF_MEMORY && big.data == NULL && !backend_is_broken(su->gpu);
    struct tensor small = tensor_desc1(DTYPE_F32, 1000);
    float host[1000], back[1000];
    for (int i = 0; i < 1000; i++)
        host[i] = (float)i;
    if (ok)
        ok = backend_alloc(su->gpu, &small, &err) == STATUS_OK &&
             backend_upload(&small, host, DTYPE_F32, &err) == STATUS_OK &&
             backend_download(&small, back, &err) == STATUS_OK && back[999] == 999.0f;
    backend_free(&small);
    printf("%-4s %-32s (alloc 4 TiB: %s; %s)\n", ok ? "ok" : "FAIL", "oom_then_usable",
           status_name(s), err.msg);
    record_check(su, "oom_then_usable", ok);
}

/* Whether back[0..n) holds want[0..n) as stored in dt: exactly in f32, within f16
 * rounding (half an ulp: 2^-11 relative, 2^-25 among the subnormals) in f16. */
static bool transfer_matches(const float *back, const float *want, size_t n, enum dtype dt)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)back[i] - (double)want[i]);
        double tol = dt == DTYPE_F32 ? 0.0 : ldexp(fabs(want[i]), -11) + ldexp(1.0, -25);
        if (!(d <= tol))
            return false;
    }
    return true;
}

/* Uploads and downloads larger than the backend's pinned staging (2 × 8 MiB; 40 MiB
 * + a tail here) round-trip, in f32 and f16; two uploads from one host buffer that is
 * overwritten between them each keep what it held at their call (upload may not read
 * the caller's memory after it returns). */
static void check_transfer(struct suite *su)
{
    const size_t n = ((size_t)10 << 20) + 12345; /* floats: not a multiple of a chunk */
    const enum dtype dts[2] = {DTYPE_F32, DTYPE_F16};
    for (int d = 0; d < 2; d++) {
        struct errbuf err;
        errbuf_clear(&err);
        struct tensor t1 = tensor_desc1(dts[d], (int64_t)n), t2 = t1;
        float *a = random_floats(n, 101, -1000.0f, 1000.0f);
        float *b2 = random_floats(n, 202, -1000.0f, 1000.0f);
        float *host = malloc(n * sizeof *host), *back = malloc(n * sizeof *back);
        enum status s = a && b2 && host && back ? STATUS_OK : STATUS_OUT_OF_MEMORY;
        if (s == STATUS_OK)
            s = backend_alloc(su->gpu, &t1, &err);
        if (s == STATUS_OK)
            s = backend_alloc(su->gpu, &t2, &err);
        if (s == STATUS_OK) {
            memcpy(host, a, n * sizeof *host);
            s = backend_upload(&t1, host, DTYPE_F32, &err);
        }
        if (s == STATUS_OK) {
            memcpy(host, b2, n * sizeof *host); /* at once: t1's copy may be in flight */
            s = backend_upload(&t2, host, DTYPE_F32, &err);
        }
        if (s == STATUS_OK)
            memset(host, 0xff, n * sizeof *host); /* NaNs: a late read shows */
        bool ok1 = false, ok2 = false;
        if (s == STATUS_OK && (s = backend_download(&t1, back, &err)) == STATUS_OK)
            ok1 = transfer_matches(back, a, n, dts[d]);
        if (s == STATUS_OK && (s = backend_download(&t2, back, &err)) == STATUS_OK)
            ok2 = transfer_matches(back, b2, n, dts[d]);
        bool ok = s == STATUS_OK && ok1 && ok2;
        printf("%-4s %-40s %-4s (%zu floats; first %s, second %s; %s%s%s)\n",
               ok ? "ok" : "FAIL", "upload_download_staged", dtype_name(dts[d]), n,
               ok1 ? "ok" : "wrong", ok2 ? "ok" : "wrong", status_name(s), s ? ": " : "",
               s ? err.msg : "");
        if (su->json)
            fprintf(su->json,
                    "{\"op\":\"upload_download_staged\",\"dtype\":\"%s\",\"ok\":%s}\n",
                    dtype_name(dts[d]), ok ? "true" : "false");
        ok ? su->passed++ : su->failed++;
        backend_free(&t1);
        backend_free(&t2);
        free(a);
        free(b2);
        free(host);
        free(back);
    }
}

/* A captured CUDA graph (silu, then axpby with baked-in scalars) replays on the
 * tensors' current contents — on backend b, reported as `name` (with PDL: axpby, reading
 * silu's output, may be scheduled before silu ends). */
static void check_graph(struct suite *su, struct backend *b, const char *name)
{
    enum { N = 3 * 1000 };
    struct errbuf err;
    errbuf_clear(&err);
    struct tensor x = tensor_desc2(DTYPE_F32, 3, 1000), y = x;
    float host[N], back[N];
    const float al[3] = {0.5f, 1.0f, 2.0f}, be[3] = {1.0f, -1.0f, 0.25f};
    for (int i = 0; i < N; i++)
        host[i] = (float)(i % 17) * 0.25f - 2.0f;
    struct backend_graph *g = NULL;
    enum status s = backend_alloc(b, &x, &err);
    if (s == STATUS_OK)
        s = backend_alloc(b, &y, &err);
    if (s == STATUS_OK)
        s = backend_upload(&x, host, DTYPE_F32, &err);
    for (int pass = 0; pass < 2 && s == STATUS_OK; pass++) { /* warm-up, then capture */
        if (pass == 1)
            s = backend_graph_begin(b, &err);
        if (s == STATUS_OK)
            s = backend_silu(&x, &y, &err);
        if (s == STATUS_OK)
            s = backend_axpby(&y, &x, al, be, &y, &err);
        if (pass == 1) {
            enum status e = backend_graph_end(b, &g, s == STATUS_OK ? &err : NULL);
            s = s == STATUS_OK ? e : s;
        } else if (s == STATUS_OK) {
            s = backend_sync(b, &err);
        }
    }
    for (int i = 0; i < N; i++)
        host[i] = (float)(i % 13) * 0.5f - 3.0f; /* new contents after the capture */
    if (s == STATUS_OK)
        s = backend_upload(&x, host, DTYPE_F32, &err);
    if (s == STATUS_OK)
        s = backend_graph_launch(g, &err);
    if (s == STATUS_OK)
        s = backend_download(&y, back, &err);
    double worst = 0;
    for (int i = 0; s == STATUS_OK && i < N; i++) {
        float v = host[i], silu = v / (1.0f + expf(-v));
        double want = (double)al[i / 1000] * silu + (double)be[i / 1000] * v;
        double d = fabs(back[i] - want);
        worst = d > worst ? d : worst;
    }
    bool ok = s == STATUS_OK && worst < 1e-4;
    printf("%-4s %-40s (max |d| %.2e; %s%s%s)\n", ok ? "ok" : "FAIL", name, worst,
           status_name(s), s ? ": " : "", s ? err.msg : "");
    record_check(su, name, ok);
    backend_graph_destroy(g);
    backend_free(&x);
    backend_free(&y);
}

/* A graph recorded over the backend's scratch goes stale when the scratch grows: a
 * GroupNorm on the three-kernel path (its statistics in the scratch) recorded on a
 * small map, then a large map run eagerly — the graph must report itself stale
 * (backend_graph_current), its launch must be refused, and the backend must go on. */
static void check_graph_stale(struct suite *su)
{
    struct errbuf err;
    errbuf_clear(&err);
    /* a fresh backend (its scratch not grown by the cases before) on the three kernels */
    struct cuda_backend_options opt;
    cuda_backend_options_default(&opt);
    opt.group_norm_kernel = 1;
    struct backend *b = NULL;
    if (cuda_backend_create(&opt, &b, &err) != STATUS_OK) {
        printf("FAIL %-40s (backend: %s)\n", "cuda_graph_stale", err.msg);
        record_check(su, "cuda_graph_stale", false);
        return;
    }
    const int64_t small[4] = {1, 4, 4, 64}, large[4] = {2, 64, 64, 64};
    struct tensor x = tensor_desc(DTYPE_F32, 4, small), y = x;
    struct tensor bx = tensor_desc(DTYPE_F32, 4, large), by = bx;
    const struct group_norm_params p = {32, 1e-5f, false, NULL};
    struct backend_graph *g = NULL;
    enum status s = backend_alloc(b, &x, &err);
    if (s == STATUS_OK)
        s = backend_alloc(b, &y, &err);
    if (s == STATUS_OK)
        s = backend_alloc(b, &bx, &err);
    if (s == STATUS_OK)
        s = backend_alloc(b, &by, &err);
    if (s == STATUS_OK) /* eagerly first (the scratch it needs), then recorded */
        s = backend_group_norm(&x, NULL, NULL, &p, &y, &err);
    if (s == STATUS_OK)
        s = backend_sync(b, &err);
    if (s == STATUS_OK)
        s = backend_graph_begin(b, &err);
    if (s == STATUS_OK) {
        enum status run = backend_group_norm(&x, NULL, NULL, &p, &y, &err);
        enum status e = backend_graph_end(b, &g, run == STATUS_OK ? &err : NULL);
        s = run != STATUS_OK ? run : e;
    }
    const bool current_before = s == STATUS_OK && backend_graph_current(g);
    if (s == STATUS_OK) /* a map whose statistics need more scratch */
        s = backend_group_norm(&bx, NULL, NULL, &p, &by, &err);
    const bool stale = s == STATUS_OK && !backend_graph_current(g);
    struct errbuf lerr;
    errbuf_clear(&lerr);
    const enum status launched = s == STATUS_OK ? backend_graph_launch(g, &lerr) : STATUS_OK;
    if (s == STATUS_OK) /* and the backend goes on */
        s = backend_group_norm(&x, NULL, NULL, &p, &y, &err);
    if (s == STATUS_OK)
        s = backend_sync(b, &err);
    const bool ok = s == STATUS_OK && current_before && stale && launched == STATUS_UNSUPPORTED &&
                    !backend_is_broken(b);
    printf("%-4s %-40s (current after recording %s, stale after the scratch grew %s, launch "
           "%s; %s%s%s)\n",
           ok ? "ok" : "FAIL", "cuda_graph_stale", current_before ? "yes" : "no",
           stale ? "yes" : "no", status_name(launched), status_name(s), s ? ": " : "",
           s ? err.msg : "");
    record_check(su, "cuda_graph_stale", ok);
    backend_graph_destroy(g);
    backend_free(&x);
    backend_free(&y);
    backend_free(&bx);
    backend_free(&by);
    backend_destroy(b);
}

/* t allocated on b and, unless host is NULL, filled from host floats. */
static enum status alloc_filled(struct backend *b, struct tensor *t, const float *host,
                                struct errbuf *err)
{
    enum status s = backend_alloc(b, t, err);
    return s == STATUS_OK && host ? backend_upload(t, host, DTYPE_F32, err) : s;
}

/* A recording whose op would grow a buffer (here the scratch of a fresh backend, the
 * op never run before) fails with UNSUPPORTED and leaves the buffers as they were: the
 * same op then runs eagerly, records, and replays to the eager result. */
static void check_graph_grow(struct suite *su)
{
    struct errbuf err;
    errbuf_clear(&err);
    struct cuda_backend_options opt;
    cuda_backend_options_default(&opt);
    opt.group_norm_kernel = 1; /* the three-kernel path: its statistics in the scratch */
    struct backend *b = NULL;
    if (cuda_backend_create(&opt, &b, &err) != STATUS_OK) {
        printf("FAIL %-40s (backend: %s)\n", "cuda_graph_grow", err.msg);
        record_check(su, "cuda_graph_grow", false);
        return;
    }
    const int64_t shape[4] = {2, 64, 64, 64};
    const size_t n = 2 * 64 * 64 * 64;
    const struct group_norm_params p = {32, 1e-5f, true, NULL};
    struct tensor x = tensor_desc(DTYPE_F32, 4, shape), y = x;
    float *hx = random_floats(n, 21, -2, 2), *want = malloc(n * sizeof(float)),
          *got = malloc(n * sizeof(float));
    struct backend_graph *g = NULL;
    enum status s = alloc_filled(b, &x, hx, &err);
    if (s == STATUS_OK)
        s = alloc_filled(b, &y, NULL, &err);
    enum status inside = STATUS_OK;
    if (s == STATUS_OK)
        s = backend_graph_begin(b, &err);
    if (s == STATUS_OK) { /* never run before: its scratch would grow inside */
        struct errbuf ierr;
        inside = backend_group_norm(&x, NULL, NULL, &p, &y, &ierr);
        (void)backend_graph_end(b, &g, NULL);
        backend_graph_destroy(g);
        g = NULL;
    }
    if (s == STATUS_OK) /* the buffers intact: eagerly, then recorded */
        s = backend_group_norm(&x, NULL, NULL, &p, &y, &err);
    if (s == STATUS_OK)
        s = backend_download(&y, want, &err);
    if (s == STATUS_OK)
        s = backend_graph_begin(b, &err);
    if (s == STATUS_OK) {
        enum status run = backend_group_norm(&x, NULL, NULL, &p, &y, &err);
        enum status e = backend_graph_end(b, &g, run == STATUS_OK ? &err : NULL);
        s = run != STATUS_OK ? run : e;
    }
    if (s == STATUS_OK)
        s = backend_upload(&y, hx, DTYPE_F32, &err); /* overwritten by the replay */
    if (s == STATUS_OK)
        s = backend_graph_launch(g, &err);
    if (s == STATUS_OK)
        s = backend_download(&y, got, &err);
    const bool same = s == STATUS_OK && memcmp(got, want, n * sizeof(float)) == 0;
    const bool ok = s == STATUS_OK && inside == STATUS_UNSUPPORTED && same &&
                    !backend_is_broken(b);
    printf("%-4s %-40s (op growing the scratch while recording: %s; then eager, recorded, "
           "replay %s; %s%s%s)\n",
           ok ? "ok" : "FAIL", "cuda_graph_grow", status_name(inside),
           same ? "same" : "differs", status_name(s), s ? ": " : "", s ? err.msg : "");
    record_check(su, "cuda_graph_grow", ok);
    backend_graph_destroy(g);
    backend_free(&x);
    backend_free(&y);
    free(hx);
    free(want);
    free(got);
    backend_destroy(b);
}

/* The lane check's chain on lane `lane`: y = linear(GN+SiLU(conv(x))) — cuDNN or
 * im2col (workspace, scratch), the GroupNorm's statistics (scratch), cuBLASLt
 * (workspace): every per-lane buffer. */
struct lane_chain {
    struct tensor w, bias, lw, h, g, y; /* h, g, y: per input */
};

static enum status lane_chain_run(struct backend *b, int lane, const struct tensor *x,
                                  struct lane_chain *c, struct errbuf *err)
{
    const struct conv2d_params cp = {1, 1};
    const struct group_norm_params gp = {32, 1e-5f, true, NULL};
    enum status s = backend_lane_select(b, lane, err);
    if (s == STATUS_OK)
        s = backend_conv2d(x, &c->w, &c->bias, NULL, &cp, &c->h, err);
    if (s == STATUS_OK)
        s = backend_group_norm(&c->h, NULL, NULL, &gp, &c->g, err);
    if (s == STATUS_OK)
        s = backend_linear(&c->g, &c->lw, NULL, NULL, &c->y, err);
    return s;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Lanes (engine/backend.h): the chain on inputs A (lane 0) and B (lane 1) gives the same
 * bits as both on lane 0 one after the other; lane 1's work finishes while lane 0 is
 * still held busy for 0.3 s (the lanes run side by side); a graph recorded on lane 1
 * replays there (launched while lane 0 is selected); selecting a lane inside a
 * recording fails; backend_sync waits for every lane. */
static void check_lanes(struct suite *su)
{
    struct errbuf err;
    errbuf_clear(&err);
    struct cuda_backend_options opt;
    cuda_backend_options_default(&opt);
    opt.weight_dtype = DTYPE_F16;
    struct backend *b = NULL;
    if (cuda_backend_create(&opt, &b, &err) != STATUS_OK) {
        printf("FAIL %-40s (backend: %s)\n", "cuda_lanes", err.msg);
        record_check(su, "cuda_lanes", false);
        return;
    }
    enum { C = 64, HW = 16 };
    const int64_t xs[4] = {2, HW, HW, C}, ws[4] = {C, 3, 3, C}, ls[2] = {C, C};
    const size_t nx = 2 * HW * HW * C;
    struct lane_chain ch[2];
    struct tensor x[2];
    float *hx[2] = {random_floats(nx, 11, -1, 1), random_floats(nx, 12, -1, 1)};
    float *hw = random_floats(C * 9 * C, 13, -0.1f, 0.1f), *hb = random_floats(C, 14, -1, 1);
    float *hl = random_floats(C * C, 15, -0.2f, 0.2f);
    float *ref[2] = {malloc(nx * sizeof(float)), malloc(nx * sizeof(float))};
    float *got = malloc(nx * sizeof(float));
    enum status s = STATUS_OK;
    for (int k = 0; k < 2; k++) {
        ch[k].w = tensor_desc(DTYPE_F16, 4, ws);
        ch[k].bias = tensor_desc1(DTYPE_F16, C);
        ch[k].lw = tensor_desc(DTYPE_F16, 2, ls);
        ch[k].h = ch[k].g = ch[k].y = x[k] = tensor_desc(DTYPE_F16, 4, xs);
        if (s == STATUS_OK)
            s = alloc_filled(b, &x[k], hx[k], &err);
        if (s == STATUS_OK)
            s = alloc_filled(b, &ch[k].w, hw, &err);
        if (s == STATUS_OK)
            s = alloc_filled(b, &ch[k].bias, hb, &err);
        if (s == STATUS_OK)
            s = alloc_filled(b, &ch[k].lw, hl, &err);
        if (s == STATUS_OK)
            s = alloc_filled(b, &ch[k].h, NULL, &err);
        if (s == STATUS_OK)
            s = alloc_filled(b, &ch[k].g, NULL, &err);
        if (s == STATUS_OK)
            s = alloc_filled(b, &ch[k].y, NULL, &err);
    }
    /* one after the other on lane 0: the reference bits */
    for (int k = 0; k < 2 && s == STATUS_OK; k++) {
        s = lane_chain_run(b, 0, &x[k], &ch[k], &err);
        if (s == STATUS_OK)
            s = backend_download(&ch[k].y, ref[k], &err);
    }
    /* side by side: lane 0 held for 0.3 s first, lane 1 must finish during the hold */
    double lane1_s = -1;
    bool same[2] = {false, false};
    if (s == STATUS_OK)
        s = backend_sync(b, &err);
    const double t0 = wall_s();
    if (s == STATUS_OK)
        s = cuda_backend_hold(b, 0.3, &err);
    if (s == STATUS_OK)
        s = lane_chain_run(b, 0, &x[0], &ch[0], &err);
    if (s == STATUS_OK)
        s = lane_chain_run(b, 1, &x[1], &ch[1], &err);
    if (s == STATUS_OK && (s = backend_download(&ch[1].y, got, &err)) == STATUS_OK) {
        lane1_s = wall_s() - t0;
        same[1] = memcmp(got, ref[1], nx * sizeof(float)) == 0;
    }
    if (s == STATUS_OK)
        s = backend_sync(b, &err);
    const double both_s = wall_s() - t0;
    if (s == STATUS_OK)
        s = backend_lane_select(b, 0, &err);
    if (s == STATUS_OK && (s = backend_download(&ch[0].y, got, &err)) == STATUS_OK)
        same[0] = memcmp(got, ref[0], nx * sizeof(float)) == 0;
    /* a graph recorded on lane 1, launched with lane 0 selected */
    struct backend_graph *g = NULL;
    bool graph_same = false;
    enum status inside = STATUS_OK;
    if (s == STATUS_OK)
        s = backend_lane_select(b, 1, &err);
    if (s == STATUS_OK)
        s = backend_graph_begin(b, &err);
    if (s == STATUS_OK) {
        enum status run = lane_chain_run(b, 1, &x[0], &ch[1], &err);
        struct errbuf ierr;
        inside = backend_lane_select(b, 0, &ierr); /* must fail: recording */
        enum status e = backend_graph_end(b, &g, run == STATUS_OK ? &err : NULL);
        s = run != STATUS_OK ? run : e;
    }
    if (s == STATUS_OK)
        s = backend_lane_select(b, 0, &err);
    if (s == STATUS_OK)
        s = backend_graph_launch(g, &err);
    if (s == STATUS_OK)
        s = backend_sync(b, &err);
    if (s == STATUS_OK && (s = backend_download(&ch[1].y, got, &err)) == STATUS_OK)
        graph_same = memcmp(got, ref[0], nx * sizeof(float)) == 0;
    const bool ok = s == STATUS_OK && same[0] && same[1] && lane1_s >= 0 && lane1_s < 0.2 &&
                    both_s >= 0.29 && inside == STATUS_UNSUPPORTED && graph_same;
    printf("%-4s %-40s (bits as one lane: %s/%s; lane 1 done after %.3f s of lane 0's 0.3 s "
           "hold, both %.3f s; graph on lane 1 %s; select while recording %s; %s%s%s)\n",
           ok ? "ok" : "FAIL", "cuda_lanes", same[0] ? "yes" : "no", same[1] ? "yes" : "no",
           lane1_s, both_s, graph_same ? "same" : "differs", status_name(inside),
           status_name(s), s ? ": " : "", s ? err.msg : "");
    record_check(su, "cuda_lanes", ok);
    backend_graph_destroy(g);
    for (int k = 0; k < 2; k++) {
        backend_free(&x[k]);
        backend_free(&ch[k].w);
        backend_free(&ch[k].bias);
        backend_free(&ch[k].lw);
        backend_free(&ch[k].h);
        backend_free(&ch[k].g);
        backend_free(&ch[k].y);
        free(hx[k]);
        free(ref[k]);
    }
    free(hw);
    free(hb);
    free(hl);
    free(got);
    backend_destroy(b);
}

/* backend_gather_rows in each dtype: 131 rows (two launches of 128 and 3) of 1000
 * elements from separate tensors, scaled and copied; the result must be each value
 * times its scale rounded once to the dtype, exactly (the CPU's f32 product). */
static void check_gather(struct suite *su)
{
    enum { N = 131, ROW = 1000 };
    const enum dtype dts[3] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16};
    for (int d = 0; d < 3; d++) {
        struct errbuf err;
        errbuf_clear(&err);
        struct tensor rows[N];
        const struct tensor *ptrs[N];
        float scales[N];
        float *host = random_floats((size_t)N * ROW, 303, -8.0f, 8.0f);
        float *back = malloc((size_t)N * ROW * sizeof *back);
        round_to(host, (size_t)N * ROW, dts[d]);
        memset(rows, 0, sizeof rows);
        enum status s = back ? STATUS_OK : STATUS_OUT_OF_MEMORY;
        for (int i = 0; i < N && s == STATUS_OK; i++) {
            rows[i] = tensor_desc2(dts[d], 1, ROW);
            ptrs[i] = &rows[i];
            scales[i] = i % 7 == 0 ? 1.0f : 0.37f * (float)(i % 5) - 0.5f;
            s = backend_alloc(su->gpu, &rows[i], &err);
            if (s == STATUS_OK)
                s = backend_upload(&rows[i], host + (size_t)i * ROW, DTYPE_F32, &err);
        }
        struct tensor dst = tensor_desc2(dts[d], N, ROW);
        if (s == STATUS_OK)
            s = backend_alloc(su->gpu, &dst, &err);
        bool exact[2] = {false, false};
        for (int scaled = 0; scaled < 2 && s == STATUS_OK; scaled++) {
            s = backend_gather_rows(ptrs, scaled ? scales : NULL, N, &dst, &err);
            if (s == STATUS_OK)
                s = backend_download(&dst, back, &err);
            exact[scaled] = s == STATUS_OK;
            for (size_t e = 0; s == STATUS_OK && e < (size_t)N * ROW && exact[scaled]; e++) {
                float want = scaled ? scales[e / ROW] * host[e] : host[e];
                round_to(&want, 1, dts[d]);
                exact[scaled] = back[e] == want;
            }
        }
        const bool ok = s == STATUS_OK && exact[0] && exact[1];
        printf("%-4s %-40s %-4s (copies %s, scaled %s; %s%s%s)\n", ok ? "ok" : "FAIL",
               "gather_rows", dtype_name(dts[d]), exact[0] ? "exact" : "wrong",
               exact[1] ? "exact" : "wrong", status_name(s), s ? ": " : "", s ? err.msg : "");
        if (su->json)
            fprintf(su->json, "{\"op\":\"gather_rows\",\"dtype\":\"%s\",\"ok\":%s}\n",
                    dtype_name(dts[d]), ok ? "true" : "false");
        ok ? su->passed++ : su->failed++;
        for (int i = 0; i < N; i++)
            backend_free(&rows[i]);
        backend_free(&dst);
        free(host);
        free(back);
    }
}

/* GEMM autotuning meets a capture: a linear of a shape never run before, recorded first
 * (tuning must not time inside the capture: it takes the heuristic's choice), replayed,
 * then run eagerly (tuned now); both must give x·wᵀ exactly (values exact in TF32). */
static void check_graph_autotune(struct suite *su)
{
    enum { M = 37, K = 96, NO = 80 };
    struct errbuf err;
    errbuf_clear(&err);
    struct backend *b = su->gpu_padded; /* options.gemm_autotune on */
    struct tensor x = tensor_desc2(DTYPE_F32, M, K), w = tensor_desc2(DTYPE_F32, NO, K);
    struct tensor y = tensor_desc2(DTYPE_F32, M, NO), y2 = y;
    static float hx[M * K], hw[NO * K], back[M * NO], back2[M * NO];
    for (int i = 0; i < M * K; i++)
        hx[i] = (float)(i % 7 - 3) * 0.25f;
    for (int i = 0; i < NO * K; i++)
        hw[i] = (float)(i % 5 - 2) * 0.5f;
    struct backend_graph *g = NULL;
    enum status s = backend_alloc(b, &x, &err);
    if (s == STATUS_OK)
        s = backend_alloc(b, &w, &err);
    if (s == STATUS_OK)
        s = backend_alloc(b, &y, &err);
    if (s == STATUS_OK)
        s = backend_alloc(b, &y2, &err);
    if (s == STATUS_OK)
        s = backend_upload(&x, hx, DTYPE_F32, &err);
    if (s == STATUS_OK)
        s = backend_upload(&w, hw, DTYPE_F32, &err);
    if (s == STATUS_OK)
        s = backend_graph_begin(b, &err);
    if (s == STATUS_OK) {
        enum status run = backend_linear(&x, &w, NULL, NULL, &y, &err);
        enum status e = backend_graph_end(b, &g, run == STATUS_OK ? &err : NULL);
        s = run == STATUS_OK ? e : run;
    }
    if (s == STATUS_OK)
        s = backend_graph_launch(g, &err);
    if (s == STATUS_OK)
        s = backend_download(&y, back, &err);
    if (s == STATUS_OK)
        s = backend_linear(&x, &w, NULL, NULL, &y2, &err);
    if (s == STATUS_OK)
        s = backend_download(&y2, back2, &err);
    double worst = 0;
    for (int i = 0; s == STATUS_OK && i < M; i++)
        for (int j = 0; j < NO; j++) {
            double want = 0;
            for (int k = 0; k < K; k++)
                want += (double)hx[i * K + k] * hw[j * K + k];
            double d = fmax(fabs(back[i * NO + j] - want), fabs(back2[i * NO + j] - want));
            worst = d > worst ? d : worst;
        }
    bool ok = s == STATUS_OK && worst == 0 && !backend_is_broken(b);
    printf("%-4s %-40s (max |d| %.2e; %s%s%s)\n", ok ? "ok" : "FAIL",
           "cuda_graph_replay[autotuned]", worst, status_name(s), s ? ": " : "",
           s ? err.msg : "");
    record_check(su, "cuda_graph_replay[autotuned]", ok);
    backend_graph_destroy(g);
    backend_free(&x);
    backend_free(&w);
    backend_free(&y);
    backend_free(&y2);
}

/* A kernel writing through a bogus device address: STATUS_DEVICE and broken; run last. */
static void check_sticky(struct suite *su)
{
    struct errbuf err;
    errbuf_clear(&err);
    struct tensor x = tensor_desc1(DTYPE_F32, 1 << 20), y = x;
    enum status s = backend_alloc(su->gpu, &x, &err);
    if (s == STATUS_OK) {
        y.backend = su->gpu;
        y.data = (void *)(uintptr_t)0x10; /* not device memory */
        s = backend_silu(&x, &y, &err);
        if (s == STATUS_OK)
            s = backend_sync(su->gpu, &err);
    }
    bool ok = s == STATUS_DEVICE && backend_is_broken(su->gpu) &&
              backend_sync(su->gpu, NULL) == STATUS_DEVICE;
    printf("%-4s %-32s (%s: %s)\n", ok ? "ok" : "FAIL", "sticky_error_breaks", status_name(s),
           err.msg);
    record_check(su, "sticky_error_breaks", ok);
    x.data = NULL; /* the context is gone; nothing to free */
}

int main(int argc, char **argv)
{
    struct suite su;
    memset(&su, 0, sizeof su);
    su.filter = getenv("GPU_OPS_FILTER");
    struct errbuf err;
    errbuf_clear(&err);
    struct cuda_backend_options opt;
    cuda_backend_options_default(&opt);
    enum status s = cuda_backend_create(&opt, &su.gpu, &err);
    if (s == STATUS_NOT_FOUND) {
        printf("skip: %s\n", err.msg);
        return 77;
    }
    if (s != STATUS_OK) {
        fprintf(stderr, "cuda backend: %s\n", err.msg);
        return 1;
    }
    opt.pdl = true;
    if (cuda_backend_create(&opt, &su.gpu_pdl, &err) != STATUS_OK) {
        fprintf(stderr, "cuda backend (PDL): %s\n", err.msg);
        return 1;
    }
    opt.pdl = false;
    opt.conv_fuse = true;
    opt.conv_gemm_rows = 0;
    if (cuda_backend_create(&opt, &su.gpu_convfuse, &err) != STATUS_OK) {
        fprintf(stderr, "cuda backend (fused convolutions): %s\n", err.msg);
        return 1;
    }
    opt.conv_fuse = false;
    opt.attention_scalar = true;
    opt.conv_gemm_rows = 8192;
    if (cuda_backend_create(&opt, &su.gpu_scalar, &err) != STATUS_OK) {
        fprintf(stderr, "cuda backend (scalar attention): %s\n", err.msg);
        return 1;
    }
    opt.attention_scalar = false;
    opt.conv_gemm_rows = 0;
    opt.attention_kernel = CUDA_ATTENTION_PADDED;
    opt.group_norm_kernel = 1;
    opt.gemm_autotune = true;
    enum status sp = cuda_backend_create(&opt, &su.gpu_padded, &err);
    opt.attention_kernel = CUDA_ATTENTION_EXACT3;
    opt.group_norm_kernel = 2;
    opt.gemm_autotune = false;
    opt.linear_stack = true;
    if (sp == STATUS_OK)
        sp = cuda_backend_create(&opt, &su.gpu_stages, &err);
    opt.attention_kernel = CUDA_ATTENTION_EXACT_BK128;
    opt.group_norm_kernel = 3;
    opt.linear_stack = false;
    if (sp == STATUS_OK)
        sp = cuda_backend_create(&opt, &su.gpu_bk128, &err);
    opt.attention_kernel = CUDA_ATTENTION_EXACT_SYNC1;
    opt.group_norm_kernel = 4;
    if (sp == STATUS_OK)
        sp = cuda_backend_create(&opt, &su.gpu_sync1, &err);
    opt.group_norm_kernel = 0;
    opt.attention_kernel = CUDA_ATTENTION_LEAN;
    if (sp == STATUS_OK)
        sp = cuda_backend_create(&opt, &su.gpu_lean, &err);
    opt.attention_kernel = CUDA_ATTENTION_LEAN_MMA;
    if (sp == STATUS_OK)
        sp = cuda_backend_create(&opt, &su.gpu_lean_mma, &err);
    opt.attention_row_tiles = 2;
    if (sp == STATUS_OK)
        sp = cuda_backend_create(&opt, &su.gpu_lean_mma_t2, &err);
    opt.attention_kernel = CUDA_ATTENTION_EXACT2;
    opt.attention_row_tiles = 0;
    opt.linear_stack = false;
    if (sp != STATUS_OK || cuda_backend_create(&opt, &su.gpu_exact2, &err) != STATUS_OK) {
        fprintf(stderr, "cuda backend (attention kernels): %s\n", err.msg);
        return 1;
    }
    if (cpu_backend_create(0, &su.cpu, &err) != STATUS_OK) {
        fprintf(stderr, "cpu backend: %s\n", err.msg);
        return 1;
    }
    if (argc > 1 && !(su.json = fopen(argv[1], "w"))) {
        fprintf(stderr, "cannot write %s\n", argv[1]);
        return 1;
    }
    for (size_t i = 0; i < N_CASES; i++) {
        if (su.filter && !strstr(CASES[i].name, su.filter))
            continue;
        for (size_t d = 0; d < sizeof DTYPES / sizeof DTYPES[0]; d++) {
            check_case(&su, su.gpu, "", &CASES[i], DTYPES[d]);
            check_case(&su, su.gpu_pdl, "[pdl]", &CASES[i], DTYPES[d]);
            /* f16/bf16 attention runs on tensor cores by default: the f32 kernels too;
             * small f16/bf16 convolutions run as im2col + GEMM: cuDNN too */
            if (CASES[i].fn == c_attention && DTYPES[d] != DTYPE_F32) {
                check_case(&su, su.gpu_scalar, "[scalar]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_padded, "[padded]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_stages, "[3 stages]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_bk128, "[bk 128]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_sync1, "[1 sync]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_lean, "[lean]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_lean_mma, "[lean mma]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_exact2, "[exact2]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_lean_mma_t2, "[lean mma 2 tiles]", &CASES[i], DTYPES[d]);
            }
            if (CASES[i].fn == c_conv)
                check_convfuse(&su, &CASES[i], DTYPES[d]);
            if (CASES[i].fn == c_conv && DTYPES[d] != DTYPE_F32) {
                check_case(&su, su.gpu_scalar, "[im2col]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_padded, "[cudnn]", &CASES[i], DTYPES[d]);
            }
            if (CASES[i].fn == c_group_norm) {
                check_case(&su, su.gpu_padded, "[gn split]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_stages, "[gn fused]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_bk128, "[gn cluster]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_sync1, "[gn tile]", &CASES[i], DTYPES[d]);
            }
            if (CASES[i].fn == c_linear || CASES[i].fn == c_matmul ||
                CASES[i].fn == c_linear_stack) {
                check_case(&su, su.gpu_padded, "[autotuned]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_stages, "[heuristic]", &CASES[i], DTYPES[d]);
            }
            if (CASES[i].fn == c_linear_stack) {
                check_case(&su, su.gpu_stages, "[stacked gemm]", &CASES[i], DTYPES[d]);
                check_case(&su, su.gpu_exact2, "[unstacked]", &CASES[i], DTYPES[d]);
            }
        }
    }
    /* what the [convfuse] cases ran: fused by cuDNN, or its refusal's unfused path (a
     * report, not a check: cuDNN decides which shapes and dtypes it fuses) */
    printf("info %-40s %lu convolutions fused by cuDNN\n", "conv_fused_calls",
           cuda_backend_conv_fused_calls(su.gpu_convfuse));
    if (su.json)
        fprintf(su.json, "{\"info\":\"conv_fused_calls\",\"count\":%lu}\n",
                cuda_backend_conv_fused_calls(su.gpu_convfuse));
    if (!su.filter) { /* a filtered run (check.sh's sanitizer pass) is the op cases only */
        check_oom(&su);
        check_transfer(&su);
        check_gather(&su);
        check_graph(&su, su.gpu, "cuda_graph_replay");
        check_graph(&su, su.gpu_pdl, "cuda_graph_replay[pdl]");
        check_graph_autotune(&su);
        check_graph_stale(&su);
        check_graph_grow(&su);
        check_lanes(&su);
        check_sticky(&su);
    }
    printf("%d passed, %d failed\n", su.passed, su.failed);
    if (su.json)
        fclose(su.json);
    backend_destroy(su.gpu_scalar);
    backend_destroy(su.gpu_padded);
    backend_destroy(su.gpu_stages);
    backend_destroy(su.gpu_bk128);
    backend_destroy(su.gpu_sync1);
    backend_destroy(su.gpu_lean);
    backend_destroy(su.gpu_lean_mma);
    backend_destroy(su.gpu_lean_mma_t2);
    backend_destroy(su.gpu_exact2);
    backend_destroy(su.gpu_pdl);
    backend_destroy(su.gpu_convfuse);
    backend_destroy(su.gpu);
    backend_destroy(su.cpu);
    return su.failed ? 1 : 0;
}
