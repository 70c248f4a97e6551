/* tests/unit/test_resnet.c — models/resnet: ResnetBlock2D against a naive double
 * reference on the fixture weights (VAE block with a 1×1 shortcut, U-Net blocks with
 * the time-embedding projection), workspace rewound, bad config and shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/workspace.h"
#include "models/resnet.h"
#include "models/weights.h"
#include "tests/testutil.h"

#define FIX DIFFUSIOND_SOURCE_DIR "/tests/fixtures/sd/sd1-tiny/diffusers"

struct ref_params { /* PyTorch layouts, host floats */
    float *n1w, *n1b, *c1w, *c1b, *tw, *tb, *n2w, *n2b, *c2w, *c2b, *sw, *sb;
};

static float *read_param(const struct weights *w, const char *prefix, const char *leaf, size_t n)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, leaf);
    float *p = malloc(n * sizeof *p);
    struct errbuf err;
    ck_assert_msg(weights_read_f32(w, name, p, n, &err) == STATUS_OK, "%s", err.msg);
    return p;
}

static struct ref_params read_ref(const struct weights *w, const char *prefix,
                                  const struct resnet_config *c)
{
    size_t ci = (size_t)c->in_channels, co = (size_t)c->out_channels;
    struct ref_params p = {0};
    p.n1w = read_param(w, prefix, "norm1.weight", ci);
    p.n1b = read_param(w, prefix, "norm1.bias", ci);
    p.c1w = read_param(w, prefix, "conv1.weight", co * ci * 9);
    p.c1b = read_param(w, prefix, "conv1.bias", co);
    if (c->temb_channels) {
        p.tw = read_param(w, prefix, "time_emb_proj.weight", co * (size_t)c->temb_channels);
        p.tb = read_param(w, prefix, "time_emb_proj.bias", co);
    }
    p.n2w = read_param(w, prefix, "norm2.weight", co);
    p.n2b = read_param(w, prefix, "norm2.bias", co);
    p.c2w = read_param(w, prefix, "conv2.weight", co * co * 9);
    p.c2b = read_param(w, prefix, "conv2.bias", co);
    if (ci != co) {
        p.sw = read_param(w, prefix, "conv_shortcut.weight", co * ci);
        p.sb = read_param(w, prefix, "conv_shortcut.bias", co);
    }
    return p;
}

static void free_ref(struct ref_params *p)
{
    float *all[] = {p->n1w, p->n1b, p->c1w, p->c1b, p->tw, p->tb,
                    p->n2w, p->n2b, p->c2w, p->c2b, p->sw, p->sb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* In place: x{N,HW,C} → SiLU(GroupNorm(x)) in double. */
static void ref_gn_silu(double *x, int n, int hw, int c, int groups, double eps,
                        const float *g, const float *b)
{
    int cg = c / groups;
    for (int s = 0; s < n; s++)
        for (int gi = 0; gi < groups; gi++) {
            double sum = 0, sq = 0;
            for (int p = 0; p < hw; p++)
                for (int k = 0; k < cg; k++)
                    sum += x[((size_t)s * hw + p) * c + gi * cg + k];
            double mean = sum / (hw * cg);
            for (int p = 0; p < hw; p++)
                for (int k = 0; k < cg; k++) {
                    double d = x[((size_t)s * hw + p) * c + gi * cg + k] - mean;
                    sq += d * d;
                }
            double inv = 1.0 / sqrt(sq / (hw * cg) + eps);
            for (int p = 0; p < hw; p++)
                for (int k = 0; k < cg; k++) {
                    int ch = gi * cg + k;
                    double *v = &x[((size_t)s * hw + p) * c + ch];
                    double y = (*v - mean) * inv * g[ch] + b[ch];
                    *v = y / (1.0 + exp(-y));
                }
        }
}

/* y{N,H,W,co} = conv(x{N,H,W,ci}, w{co,ci,k,k} OIHW) + b, stride 1, pad k/2. */
static void ref_conv(const double *x, int n, int h, int wd, int ci, const float *w,
                     const float *b, int co, int k, double *y)
{
    int pad = k / 2;
    for (int s = 0; s < n; s++)
        for (int oy = 0; oy < h; oy++)
            for (int ox = 0; ox < wd; ox++)
                for (int o = 0; o < co; o++) {
                    double acc = b[o];
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy + ky - pad, ix = ox + kx - pad;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= wd)
                                continue;
                            for (int i = 0; i < ci; i++)
                                acc += x[(((size_t)s * h + iy) * wd + ix) * ci + i] *
                                       w[((o * ci + i) * k + ky) * k + kx];
                        }
                    y[(((size_t)s * h + oy) * wd + ox) * co + o] = acc;
                }
}

/* The block in double: y{N,H,W,co}. */
static double *ref_resnet(const struct ref_params *p, const struct resnet_config *c,
                          const float *x, const float *temb_silu, int n, int h, int wd)
{
    int ci = c->in_channels, co = c->out_channels, hw = h * wd;
    size_t nin = (size_t)n * hw * ci, nout = (size_t)n * hw * co;
    double *a = malloc(nin * sizeof *a), *hb = malloc(nout * sizeof *hb);
    double *y = malloc(nout * sizeof *y), *xd = malloc(nin * sizeof *xd);
    for (size_t i = 0; i < nin; i++)
        a[i] = xd[i] = x[i];
    ref_gn_silu(a, n, hw, ci, c->groups, c->eps, p->n1w, p->n1b);
    ref_conv(a, n, h, wd, ci, p->c1w, p->c1b, co, 3, hb);
    for (int s = 0; s < n && c->temb_channels; s++)
        for (int o = 0; o < co; o++) {
            double t = p->tb[o];
            for (int i = 0; i < c->temb_channels; i++)
                t += (double)p->tw[o * c->temb_channels + i] * temb_silu[s * c->temb_channels + i];
            for (int q = 0; q < hw; q++)
                hb[((size_t)s * hw + q) * co + o] += t;
        }
    ref_gn_silu(hb, n, hw, co, c->groups, c->eps, p->n2w, p->n2b);
    ref_conv(hb, n, h, wd, co, p->c2w, p->c2b, co, 3, y);
    if (p->sw) {
        ref_conv(xd, n, h, wd, ci, p->sw, p->sb, co, 1, hb);
        for (size_t i = 0; i < nout; i++)
            y[i] += hb[i];
    } else {
        for (size_t i = 0; i < nout; i++)
            y[i] += xd[i];
    }
    for (size_t i = 0; i < nout; i++)
        y[i] /= c->output_scale_factor;
    free(a);
    free(hb);
    free(xd);
    return y;
}

static void check_block(const char *dir, const char *prefix, struct resnet_config cfg, int n,
                        int h, int wd)
{
    struct backend *b = test_cpu_backend();
    struct errbuf err;
    struct weights *w;
    ck_assert_msg(weights_open_dir(dir, false, &w, &err) == STATUS_OK, "%s", err.msg);
    struct resnet_block r;
    ck_assert_msg(resnet_load(w, prefix, &cfg, b, &r, &err) == STATUS_OK, "%s", err.msg);
    ck_assert(r.has_shortcut == (cfg.in_channels != cfg.out_channels));

    size_t nin = (size_t)n * h * wd * cfg.in_channels, nout = (size_t)n * h * wd * cfg.out_channels;
    float *xh = test_random_floats(nin, 11, -2.0f, 2.0f);
    float *th = cfg.temb_channels ? test_random_floats((size_t)n * cfg.temb_channels, 12, -1, 1) : NULL;
    struct tensor x = test_tensor(b, 4, (int64_t[]){n, h, wd, cfg.in_channels}, xh);
    struct tensor t = {0};
    if (th)
        t = test_tensor(b, 2, (int64_t[]){n, cfg.temb_channels}, th);
    struct tensor y = test_tensor(b, 4, (int64_t[]){n, h, wd, cfg.out_channels}, NULL);
    struct workspace ws;
    ck_assert_int_eq(workspace_init(&ws, b, DTYPE_F32, 0, &err), STATUS_OK);
    ck_assert_msg(resnet_forward(&r, &ws, &x, th ? &t : NULL, &y, &err) == STATUS_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(ws.in_use, 0); /* rewound */

    struct ref_params p = read_ref(w, prefix, &cfg);
    double *want = ref_resnet(&p, &cfg, xh, th, n, h, wd);
    float *got = test_download(&y);
    test_assert_close(prefix, got, want, nout, 1e-5, 1e-5);

    free(got);
    free(want);
    free_ref(&p);
    free(xh);
    free(th);
    workspace_destroy(&ws);
    backend_free(&x);
    backend_free(&y);
    backend_free(&t);
    resnet_free(&r);
    weights_close(w);
}

START_TEST(test_vae_block_with_shortcut)
{
    struct resnet_config c = {.in_channels = 16, .out_channels = 8, .groups = 4, .eps = 1e-6f,
                              .output_scale_factor = 1.0f};
    check_block(FIX "/vae", "decoder.up_blocks.3.resnets.0", c, 2, 6, 5);
}
END_TEST

START_TEST(test_vae_block_identity)
{
    struct resnet_config c = {.in_channels = 16, .out_channels = 16, .groups = 4, .eps = 1e-6f,
                              .output_scale_factor = 1.0f};
    check_block(FIX "/vae", "decoder.mid_block.resnets.1", c, 1, 4, 4);
}
END_TEST

START_TEST(test_unet_block_with_temb)
{
    struct resnet_config c = {.in_channels = 8, .out_channels = 16, .temb_channels = 32,
                              .groups = 4, .eps = 1e-5f, .output_scale_factor = 1.0f};
    check_block(FIX "/unet", "down_blocks.1.resnets.0", c, 2, 4, 4);
    c.in_channels = 16;
    c.output_scale_factor = 2.0f; /* not SD's, but the op must honour it */
    check_block(FIX "/unet", "down_blocks.1.resnets.1", c, 2, 4, 4);
}
END_TEST

/* A block loaded with temb_projected (the U-Net's way: it projects every block's time
 * embedding at once) gives what the block gives with its own projection, and each
 * entry point refuses the other kind of block. */
START_TEST(test_unet_block_projected_by_caller)
{
    struct backend *b = test_cpu_backend();
    struct errbuf err;
    struct weights *w;
    ck_assert_int_eq(weights_open_dir(FIX "/unet", false, &w, &err), STATUS_OK);
    const char *prefix = "down_blocks.1.resnets.0";
    struct resnet_config c = {.in_channels = 8, .out_channels = 16, .temb_channels = 32,
                              .groups = 4, .eps = 1e-5f, .output_scale_factor = 1.0f};
    struct resnet_block own, proj;
    ck_assert_msg(resnet_load(w, prefix, &c, b, &own, &err) == STATUS_OK, "%s", err.msg);
    c.temb_projected = true;
    ck_assert_msg(resnet_load(w, prefix, &c, b, &proj, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_ptr_null(proj.temb_w.data); /* not loaded: the caller has it */

    const int n = 2, hw = 4;
    float *xh = test_random_floats((size_t)n * hw * hw * 8, 21, -2.0f, 2.0f);
    float *th = test_random_floats((size_t)n * 32, 22, -1.0f, 1.0f);
    struct tensor x = test_tensor(b, 4, (int64_t[]){n, hw, hw, 8}, xh);
    struct tensor temb = test_tensor(b, 2, (int64_t[]){n, 32}, th);
    struct tensor t = test_tensor(b, 2, (int64_t[]){n, 16}, NULL);
    struct tensor y1 = test_tensor(b, 4, (int64_t[]){n, hw, hw, 16}, NULL);
    struct tensor y2 = test_tensor(b, 4, (int64_t[]){n, hw, hw, 16}, NULL);
    struct workspace ws;
    ck_assert_int_eq(workspace_init(&ws, b, DTYPE_F32, 0, &err), STATUS_OK);
    ck_assert_int_eq(backend_linear(&temb, &own.temb_w, &own.temb_b, NULL, &t, &err), STATUS_OK);
    ck_assert_msg(resnet_forward(&own, &ws, &x, &temb, &y1, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_msg(resnet_forward_projected(&proj, &ws, &x, &t, &y2, &err) == STATUS_OK, "%s",
                  err.msg);
    float *a = test_download(&y1), *bb = test_download(&y2);
    for (size_t i = 0; i < (size_t)n * hw * hw * 16; i++)
        ck_assert_msg(a[i] == bb[i], "element %zu: %g vs %g", i, a[i], bb[i]);

    ck_assert_int_eq(resnet_forward(&proj, &ws, &x, &temb, &y2, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "resnet_forward_projected"), "%s", err.msg);
    ck_assert_int_eq(resnet_forward_projected(&own, &ws, &x, &t, &y2, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "itself"), "%s", err.msg);
    ck_assert_int_eq(resnet_forward_projected(&proj, &ws, &x, &temb, &y2, &err),
                     STATUS_INVALID_ARGUMENT); /* {N,32}, not the block's {N,16} */
    ck_assert_msg(strstr(err.msg, "{N,16}"), "%s", err.msg);

    free(a);
    free(bb);
    free(xh);
    free(th);
    workspace_destroy(&ws);
    struct tensor *all[] = {&x, &temb, &t, &y1, &y2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        backend_free(all[i]);
    resnet_free(&own);
    resnet_free(&proj);
    weights_close(w);
}
END_TEST

START_TEST(test_errors_name_tensor_and_config)
{
    struct backend *b = test_cpu_backend();
    struct errbuf err;
    struct weights *w;
    ck_assert_int_eq(weights_open_dir(FIX "/vae", false, &w, &err), STATUS_OK);
    struct resnet_block r;
    /* wrong width: norm1 is {16} in the file */
    struct resnet_config c = {.in_channels = 8, .out_channels = 8, .groups = 4, .eps = 1e-6f,
                              .output_scale_factor = 1.0f};
    ck_assert_int_eq(resnet_load(w, "decoder.mid_block.resnets.0", &c, b, &r, &err),
                     STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'decoder.mid_block.resnets.0.norm1.weight'"), "%s", err.msg);
    /* the VAE has no time_emb_proj */
    c = (struct resnet_config){.in_channels = 16, .out_channels = 16, .temb_channels = 32,
                               .groups = 4, .eps = 1e-6f, .output_scale_factor = 1.0f};
    ck_assert_int_eq(resnet_load(w, "decoder.mid_block.resnets.0", &c, b, &r, &err),
                     STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'decoder.mid_block.resnets.0.time_emb_proj.weight'"), "%s",
                  err.msg);
    c.temb_channels = 0;
    c.groups = 3;
    ck_assert_int_eq(resnet_load(w, "decoder.mid_block.resnets.0", &c, b, &r, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "decoder.mid_block.resnets.0"), "%s", err.msg);

    c.groups = 4;
    ck_assert_int_eq(resnet_load(w, "decoder.mid_block.resnets.0", &c, b, &r, &err), STATUS_OK);
    struct tensor x = test_tensor(b, 4, (int64_t[]){1, 2, 2, 8}, NULL);
    struct tensor y = test_tensor(b, 4, (int64_t[]){1, 2, 2, 16}, NULL);
    struct workspace ws;
    ck_assert_int_eq(workspace_init(&ws, b, DTYPE_F32, 0, &err), STATUS_OK);
    ck_assert_int_eq(resnet_forward(&r, &ws, &x, NULL, &y, &err), STATUS_INVALID_ARGUMENT);
    workspace_destroy(&ws);
    backend_free(&x);
    backend_free(&y);
    resnet_free(&r);
    weights_close(w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resnet");
    TCase *tc = tcase_create("resnet");
    tcase_add_test(tc, test_vae_block_with_shortcut);
    tcase_add_test(tc, test_vae_block_identity);
    tcase_add_test(tc, test_unet_block_with_temb);
    tcase_add_test(tc, test_unet_block_projected_by_caller);
    tcase_add_test(tc, test_errors_name_tensor_and_config);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
