/* tests/unit/test_vae.c — models/vae: AutoencoderKL decode and encode of the sd1-tiny
 * and sd2-tiny fixtures against diffusers (max abs error ≤ 1e-4 × std of the
 * reference, issue 3), scaled-latent decode, fp16 variant, pre-0.14 attention names,
 * the pipeline's final image, 8-bit conversion, workspace reuse and error cases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/workspace.h"
#include "models/model_config.h"
#include "models/safetensors.h"
#include "models/vae.h"
#include "models/weights.h"
#include "tests/testutil.h"

#define SD DIFFUSIOND_SOURCE_DIR "/tests/fixtures/sd/"
#define REL_TOL 1e-4 /* × std(reference), issue 3 */

/* A reference tensor as host floats; NCHW ones are returned as NHWC. */
struct ref {
    int64_t n, h, w, c; /* NHWC shape */
    float *data;
};

/* `dir` is a pipeline's fixture folder (SD "sd1-tiny", or a --full one). */
static struct ref ref_load(const char *dir, const char *file, const char *name, bool nchw)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/reference/%s", dir, file);
    struct safetensors *st;
    struct errbuf err;
    ck_assert_msg(safetensors_open(path, &st, &err) == STATUS_OK, "%s", err.msg);
    const struct safetensors_tensor *t = safetensors_find(st, name);
    ck_assert_msg(t && t->ndim == 4, "%s: %s", path, name);
    float *raw = malloc(t->numel * sizeof *raw);
    ck_assert_int_eq(safetensors_read_f32(st, t, raw, t->numel, &err), STATUS_OK);
    struct ref r;
    if (!nchw) {
        r = (struct ref){t->shape[0], t->shape[1], t->shape[2], t->shape[3], raw};
    } else {
        r = (struct ref){t->shape[0], t->shape[2], t->shape[3], t->shape[1],
                         malloc(t->numel * sizeof(float))};
        for (int64_t n = 0; n < r.n; n++)
            for (int64_t c = 0; c < r.c; c++)
                for (int64_t y = 0; y < r.h; y++)
                    for (int64_t x = 0; x < r.w; x++)
                        r.data[((n * r.h + y) * r.w + x) * r.c + c] =
                            raw[((n * r.c + c) * r.h + y) * r.w + x];
        free(raw);
    }
    safetensors_close(st);
    return r;
}

static size_t ref_numel(const struct ref *r)
{
    return (size_t)(r->n * r->h * r->w * r->c);
}

/* Asserts max|got − want| ≤ rel · std(want); returns the ratio max err / std. */
static double assert_rel(const char *what, const float *got, const struct ref *want, double rel)
{
    size_t n = ref_numel(want);
    double sd = test_std(want->data, n), maxerr = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want->data[i]);
        if (!(e <= maxerr))
            maxerr = e; /* NaN sticks */
    }
    printf("%-40s max abs err %.3g, std %.3g, err/std %.3g (bound %.0e)\n", what, maxerr, sd,
           maxerr / sd, rel);
    ck_assert_msg(maxerr <= rel * sd, "%s: max abs err %g > %g × std %g", what, maxerr, rel, sd);
    return maxerr / sd;
}

static const char *label_of(const char *dir)
{
    const char *slash = strrchr(dir, '/');
    return slash ? slash + 1 : dir;
}

static struct vae_model *load_vae(const char *pipeline_dir, bool fp16)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/diffusers/vae", pipeline_dir);
    struct vae_model *m;
    struct errbuf err;
    ck_assert_msg(vae_load_dir(dir, fp16, test_cpu_backend(), &m, &err) == STATUS_OK, "%s",
                  err.msg);
    return m;
}

/* Decodes `z` (unscaled unless `scale`: then multiplied by scaling_factor first and
 * passed through vae_decode) and returns the image as host floats. */
static float *run_decode(struct vae_model *m, struct workspace *ws, const struct ref *z,
                         bool scale)
{
    struct backend *b = test_cpu_backend();
    const int f = vae_downscale(m);
    float *in = malloc(ref_numel(z) * sizeof *in);
    for (size_t i = 0; i < ref_numel(z); i++)
        in[i] = scale ? z->data[i] * vae_scaling_factor(m) : z->data[i];
    struct tensor zt = test_tensor(b, 4, (int64_t[]){z->n, z->h, z->w, z->c}, in);
    struct tensor img = test_tensor(b, 4, (int64_t[]){z->n, z->h * f, z->w * f, 3}, NULL);
    struct errbuf err;
    enum status s = scale ? vae_decode(m, ws, &zt, &img, &err)
                          : vae_decode_raw(m, ws, &zt, &img, &err);
    ck_assert_msg(s == STATUS_OK, "%s", err.msg);
    ck_assert_uint_eq(ws->in_use, 0);
    float *out = test_download(&img);
    backend_free(&zt);
    backend_free(&img);
    free(in);
    return out;
}

static void check_decode(const char *pipeline, struct vae_model *m, const char *key, bool scale)
{
    char zname[64], oname[64], what[128];
    snprintf(zname, sizeof zname, "%s.latents", key);
    snprintf(oname, sizeof oname, "%s.out", key);
    struct ref z = ref_load(pipeline, "vae.safetensors", zname, true);
    struct ref want = ref_load(pipeline, "vae.safetensors", oname, true);
    struct workspace ws = test_cpu_workspace();
    float *got = run_decode(m, &ws, &z, scale);
    snprintf(what, sizeof what, "%s %s%s", label_of(pipeline), key,
             scale ? " (scaled latents)" : "");
    assert_rel(what, got, &want, REL_TOL);
    free(got);
    free(z.data);
    free(want.data);
    workspace_destroy(&ws);
}

static void check_encode(const char *pipeline, struct vae_model *m)
{
    struct backend *b = test_cpu_backend();
    struct ref img = ref_load(pipeline, "vae.safetensors", "encode.image", true);
    struct ref mean = ref_load(pipeline, "vae.safetensors", "encode.mean", true);
    struct ref logvar = ref_load(pipeline, "vae.safetensors", "encode.logvar", true);
    struct tensor it = test_tensor(b, 4, (int64_t[]){img.n, img.h, img.w, img.c}, img.data);
    struct tensor mt = test_tensor(b, 4, (int64_t[]){mean.n, mean.h, mean.w, mean.c}, NULL);
    struct tensor lt = test_tensor(b, 4, (int64_t[]){mean.n, mean.h, mean.w, mean.c}, NULL);
    struct workspace ws = test_cpu_workspace();
    struct errbuf err;
    ck_assert_msg(vae_encode(m, &ws, &it, &mt, &lt, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_uint_eq(ws.in_use, 0);
    float *gm = test_download(&mt), *gl = test_download(&lt);
    char what[128];
    snprintf(what, sizeof what, "%s encode.mean", label_of(pipeline));
    assert_rel(what, gm, &mean, REL_TOL);
    snprintf(what, sizeof what, "%s encode.logvar", label_of(pipeline));
    assert_rel(what, gl, &logvar, REL_TOL);
    free(gm);
    free(gl);
    free(img.data);
    free(mean.data);
    free(logvar.data);
    backend_free(&it);
    backend_free(&mt);
    backend_free(&lt);
    workspace_destroy(&ws);
}

START_TEST(test_config_sd1)
{
    struct vae_model *m = load_vae(SD "sd1-tiny", false);
    const struct vae_config *c = vae_config(m);
    ck_assert_int_eq(c->n_levels, 4);
    ck_assert_int_eq(c->block_out_channels[3], 16);
    ck_assert_int_eq(c->layers_per_block, 2);
    ck_assert_int_eq(c->latent_channels, 4);
    ck_assert_int_eq(c->norm_num_groups, 4);
    ck_assert(c->shift_factor == 0.0);
    ck_assert(c->use_quant_conv && c->use_post_quant_conv && c->mid_block_add_attention);
    ck_assert_float_eq(vae_scaling_factor(m), 0.18215f);
    ck_assert_int_eq(vae_downscale(m), 8);
    vae_free(m);
}
END_TEST

START_TEST(test_decode_matches_diffusers)
{
    const char *pipes[] = {SD "sd1-tiny", SD "sd2-tiny"};
    for (int i = 0; i < 2; i++) {
        struct vae_model *m = load_vae(pipes[i], false);
        check_decode(pipes[i], m, "decode", false);
        check_decode(pipes[i], m, "decode_wide", false);
        check_decode(pipes[i], m, "decode", true);
        vae_free(m);
    }
}
END_TEST

START_TEST(test_encode_matches_diffusers)
{
    const char *pipes[] = {SD "sd1-tiny", SD "sd2-tiny"};
    for (int i = 0; i < 2; i++) {
        struct vae_model *m = load_vae(pipes[i], false);
        check_encode(pipes[i], m);
        vae_free(m);
    }
}
END_TEST

/* The fp16 variant holds exactly the fp32 weights' values (the fixture rounds every
 * weight to an fp16-representable number), and the CPU computes in f32 either way: the
 * same bound holds. */
START_TEST(test_fp16_variant)
{
    struct vae_model *m = load_vae(SD "sd1-tiny", true);
    check_decode(SD "sd1-tiny", m, "decode", false);
    check_encode(SD "sd1-tiny", m);
    vae_free(m);
}
END_TEST

/* Old diffusers files name the mid attention query/key/value/proj_attn. */
static bool legacy_names(const void *ctx, const char *name, char *out, size_t cap)
{
    (void)ctx;
    static const char *const map[][2] = {{".query.", ".to_q."}, {".key.", ".to_k."},
                                         {".value.", ".to_v."}, {".proj_attn.", ".to_out.0."}};
    if (strstr(name, ".to_q.") || strstr(name, ".to_k.") || strstr(name, ".to_v.") ||
        strstr(name, ".to_out.0."))
        return false;
    for (size_t i = 0; i < 4; i++) {
        const char *p = strstr(name, map[i][0]);
        if (p) {
            snprintf(out, cap, "%.*s%s%s", (int)(p - name), name, map[i][1],
                     p + strlen(map[i][0]));
            return true;
        }
    }
    snprintf(out, cap, "%s", name);
    return true;
}

START_TEST(test_legacy_attention_names)
{
    struct errbuf err;
    struct safetensors *st;
    ck_assert_int_eq(safetensors_open(SD "sd1-tiny/diffusers/vae/diffusion_pytorch_model.safetensors",
                                      &st, &err), STATUS_OK);
    struct weights *w;
    ck_assert_int_eq(weights_open_mapped(st, "legacy-vae", legacy_names, NULL, &w, &err),
                     STATUS_OK);
    ck_assert(!weights_has(w, "decoder.mid_block.attentions.0.to_q.weight"));
    ck_assert(weights_has(w, "decoder.mid_block.attentions.0.query.weight"));
    json_t *obj;
    ck_assert_int_eq(model_config_load(SD "sd1-tiny/diffusers/vae/config.json", &obj, &err),
                     STATUS_OK);
    struct vae_config cfg;
    ck_assert_int_eq(vae_config_from_json(obj, &cfg, &err), STATUS_OK);
    json_decref(obj);
    struct vae_model *m;
    ck_assert_msg(vae_load(w, &cfg, test_cpu_backend(), &m, &err) == STATUS_OK, "%s", err.msg);
    weights_close(w);
    safetensors_close(st);
    check_decode(SD "sd1-tiny", m, "decode", false);
    vae_free(m);
}
END_TEST

/* The last step of a txt2img run: vae_input (final latents / scaling_factor) → the
 * pipeline's output_type="np" image (NHWC in [0,1]). */
START_TEST(test_pipeline_image)
{
    struct vae_model *m = load_vae(SD "sd1-tiny", false);
    struct ref z = ref_load(SD "sd1-tiny", "pipe_euler_clipskip1_96x64.safetensors", "vae_input", true);
    struct ref want = ref_load(SD "sd1-tiny", "pipe_euler_clipskip1_96x64.safetensors", "image", false);
    ck_assert_int_eq(want.w, 96);
    struct workspace ws = test_cpu_workspace();
    float *x = run_decode(m, &ws, &z, false);
    float *unit = malloc(ref_numel(&want) * sizeof *unit);
    vae_image_to_unit(x, ref_numel(&want), unit);
    assert_rel("sd1-tiny pipe_euler_clipskip1_96x64 image", unit, &want, REL_TOL);
    free(x);
    free(unit);
    free(z.data);
    free(want.data);
    workspace_destroy(&ws);
    vae_free(m);
}
END_TEST

START_TEST(test_rgb8_as_numpy_to_pil)
{
    const float x[] = {-1.0f, 1.0f, 0.0f, -3.0f, 7.0f, NAN, 2.0f * (126.5f / 255.0f) - 1.0f,
                       0.5f};
    uint8_t rgb[8];
    vae_image_to_rgb8(x, 8, rgb);
    ck_assert_int_eq(rgb[0], 0);
    ck_assert_int_eq(rgb[1], 255);
    ck_assert_int_eq(rgb[2], 128); /* 127.5 → 128 (half to even) */
    ck_assert_int_eq(rgb[3], 0);
    ck_assert_int_eq(rgb[4], 255);
    ck_assert_int_eq(rgb[5], 0);
    ck_assert_int_le(abs(rgb[6] - 126), 1); /* near 126.5 */
    ck_assert_int_eq(rgb[7], 191); /* 0.75·255 = 191.25 */
    float u[3];
    vae_image_to_unit(x, 3, u);
    ck_assert_float_eq(u[0], 0.0f);
    ck_assert_float_eq(u[1], 1.0f);
    ck_assert_float_eq(u[2], 0.5f);
}
END_TEST

/* After the first decode of a shape, further decodes take no new workspace block. */
START_TEST(test_workspace_reused)
{
    struct vae_model *m = load_vae(SD "sd2-tiny", false);
    struct ref z = ref_load(SD "sd2-tiny", "vae.safetensors", "decode.latents", true);
    struct workspace ws = test_cpu_workspace();
    free(run_decode(m, &ws, &z, true));
    unsigned grow = ws.grow_count;
    int blocks = ws.n_blocks;
    size_t high = ws.high_water;
    for (int i = 0; i < 2; i++)
        free(run_decode(m, &ws, &z, true));
    ck_assert_uint_eq(ws.grow_count, grow);
    ck_assert_int_eq(ws.n_blocks, blocks);
    ck_assert_uint_eq(ws.high_water, high);
    free(z.data);
    workspace_destroy(&ws);
    vae_free(m);
}
END_TEST

static json_t *sd1_config_without(const char *key)
{
    json_t *obj;
    struct errbuf err;
    ck_assert_int_eq(model_config_load(SD "sd1-tiny/diffusers/vae/config.json", &obj, &err),
                     STATUS_OK);
    if (key)
        json_object_del(obj, key);
    return obj;
}

START_TEST(test_config_errors_name_key)
{
    const char *required[] = {"block_out_channels", "layers_per_block", "latent_channels",
                              "scaling_factor", "down_block_types", "up_block_types"};
    struct vae_config cfg;
    struct errbuf err;
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        json_t *obj = sd1_config_without(required[i]);
        ck_assert_int_eq(vae_config_from_json(obj, &cfg, &err), STATUS_FORMAT);
        char want[64];
        snprintf(want, sizeof want, "missing key '%s'", required[i]);
        ck_assert_msg(strstr(err.msg, want) && strstr(err.msg, "config.json"), "%s", err.msg);
        json_decref(obj);
    }
    /* defaults where diffusers has them */
    json_t *obj = sd1_config_without("use_quant_conv");
    json_object_del(obj, "shift_factor");
    ck_assert_int_eq(vae_config_from_json(obj, &cfg, &err), STATUS_OK);
    ck_assert(cfg.use_quant_conv);
    /* wrong type, unsupported block type, bad groups */
    json_object_set_new(obj, "layers_per_block", json_string("two"));
    ck_assert_int_eq(vae_config_from_json(obj, &cfg, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'layers_per_block'"), "%s", err.msg);
    json_object_set_new(obj, "layers_per_block", json_integer(2));
    json_array_set_new(json_object_get(obj, "up_block_types"), 1,
                       json_string("AttnUpDecoderBlock2D"));
    ck_assert_int_eq(vae_config_from_json(obj, &cfg, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'up_block_types'") && strstr(err.msg, "AttnUpDecoderBlock2D"),
                  "%s", err.msg);
    json_decref(obj);
    obj = sd1_config_without(NULL);
    json_object_set_new(obj, "norm_num_groups", json_integer(3));
    ck_assert_int_eq(vae_config_from_json(obj, &cfg, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "norm_num_groups"), "%s", err.msg);
    json_decref(obj);
}
END_TEST

/* Hides one tensor (ctx: its diffusers name). */
static bool hide_one(const void *ctx, const char *name, char *out, size_t cap)
{
    if (strcmp(name, (const char *)ctx) == 0)
        return false;
    snprintf(out, cap, "%s", name);
    return true;
}

START_TEST(test_missing_tensors_named)
{
    static const char *const hidden[] = {"encoder.down_blocks.1.downsamplers.0.conv.weight",
                                         "decoder.up_blocks.0.upsamplers.0.conv.bias",
                                         "quant_conv.bias",
                                         "encoder.mid_block.attentions.0.to_out.0.weight",
                                         "decoder.conv_norm_out.weight"};
    struct errbuf err;
    struct safetensors *st;
    ck_assert_int_eq(safetensors_open(SD "sd1-tiny/diffusers/vae/diffusion_pytorch_model.safetensors",
                                      &st, &err), STATUS_OK);
    json_t *obj = sd1_config_without(NULL);
    struct vae_config cfg;
    ck_assert_int_eq(vae_config_from_json(obj, &cfg, &err), STATUS_OK);
    json_decref(obj);
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
        struct weights *w;
        ck_assert_int_eq(weights_open_mapped(st, "vae", hide_one, hidden[i], &w, &err), STATUS_OK);
        struct vae_model *m;
        ck_assert_int_eq(vae_load(w, &cfg, test_cpu_backend(), &m, &err), STATUS_FORMAT);
        ck_assert_ptr_null(m);
        char want[128];
        snprintf(want, sizeof want, "missing tensor '%s'", hidden[i]);
        ck_assert_msg(strstr(err.msg, want), "%s", err.msg);
        weights_close(w);
    }
    safetensors_close(st);
}
END_TEST

START_TEST(test_weight_errors_name_tensor)
{
    struct errbuf err;
    struct weights *w;
    ck_assert_int_eq(weights_open_dir(SD "sd1-tiny/diffusers/vae", false, &w, &err), STATUS_OK);
    json_t *obj = sd1_config_without(NULL);
    struct vae_config cfg;
    ck_assert_int_eq(vae_config_from_json(obj, &cfg, &err), STATUS_OK);
    json_decref(obj);
    struct vae_model *m;

    struct vae_config bad = cfg;
    bad.latent_channels = 8; /* post_quant_conv is {4,4,1,1} */
    ck_assert_int_eq(vae_load(w, &bad, test_cpu_backend(), &m, &err), STATUS_FORMAT);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, "'post_quant_conv.weight'") && strstr(err.msg, "[4,4,1,1]"),
                  "%s", err.msg);

    bad = cfg;
    bad.block_out_channels[0] = 12; /* encoder.conv_in is {8,3,3,3} */
    bad.norm_num_groups = 4;
    ck_assert_int_eq(vae_load(w, &bad, test_cpu_backend(), &m, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'decoder.up_blocks.3.resnets.0.conv1.weight'"), "%s", err.msg);

    bad = cfg;
    bad.layers_per_block = 3; /* decoder up blocks have 3 resnets, not 4 */
    ck_assert_int_eq(vae_load(w, &bad, test_cpu_backend(), &m, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "missing tensor 'decoder.up_blocks.0.resnets.3.norm1.weight'"),
                  "%s", err.msg);

    bad = cfg;
    bad.mid_block_add_attention = false; /* loads: the attention weights are just unused */
    ck_assert_int_eq(vae_load(w, &bad, test_cpu_backend(), &m, &err), STATUS_OK);
    vae_free(m);
    weights_close(w);
}
END_TEST

START_TEST(test_shape_errors)
{
    struct backend *b = test_cpu_backend();
    struct vae_model *m = load_vae(SD "sd1-tiny", false);
    struct workspace ws = test_cpu_workspace();
    struct errbuf err;
    struct tensor z = test_tensor(b, 4, (int64_t[]){1, 4, 4, 4}, NULL);
    struct tensor img = test_tensor(b, 4, (int64_t[]){1, 16, 32, 3}, NULL);
    ck_assert_int_eq(vae_decode(m, &ws, &z, &img, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "vae decode"), "%s", err.msg);
    struct tensor mean = test_tensor(b, 4, (int64_t[]){1, 2, 4, 4}, NULL);
    struct tensor lv = test_tensor(b, 4, (int64_t[]){1, 2, 4, 4}, NULL);
    struct tensor odd = test_tensor(b, 4, (int64_t[]){1, 20, 32, 3}, NULL);
    ck_assert_int_eq(vae_encode(m, &ws, &odd, &mean, &lv, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(vae_encode(m, &ws, &img, &mean, &lv, &err), STATUS_OK);
    ck_assert_uint_eq(ws.in_use, 0);
    struct tensor *all[] = {&z, &img, &mean, &lv, &odd};
    for (size_t i = 0; i < 5; i++)
        backend_free(all[i]);
    workspace_destroy(&ws);
    vae_free(m);
}
END_TEST

/* A batch of two different latents (decode) / images (encode) gives each row what it
 * gives alone, and the references. */
START_TEST(test_batch_rows_independent)
{
    struct backend *b = test_cpu_backend();
    struct vae_model *m = load_vae(SD "sd1-tiny", false);
    struct ref z0 = ref_load(SD "sd1-tiny", "vae.safetensors", "decode.latents", true);
    struct ref z1 = ref_load(SD "sd1-tiny", "pipe_euler.safetensors", "vae_input", true);
    struct ref want0 = ref_load(SD "sd1-tiny", "vae.safetensors", "decode.out", true);
    ck_assert(z0.h == z1.h && z0.w == z1.w);
    struct ref zz = {2, z0.h, z0.w, z0.c, malloc(2 * ref_numel(&z0) * sizeof(float))};
    memcpy(zz.data, z0.data, ref_numel(&z0) * sizeof(float));
    memcpy(zz.data + ref_numel(&z0), z1.data, ref_numel(&z0) * sizeof(float));
    struct workspace ws = test_cpu_workspace();
    float *both = run_decode(m, &ws, &zz, false), *one = run_decode(m, &ws, &z1, false);
    const size_t npix = ref_numel(&want0);
    assert_rel("sd1-tiny batch 2 row 0", both, &want0, REL_TOL);
    /* 1e-6: the AVX-512 GEMM; the portable path's rounds by a row's place in its
     * blocking (tests/testutil.h, test_gemm_rows_exact) */
    const float row_tol = test_gemm_rows_exact() ? 1e-6f : 1e-5f;
    for (size_t i = 0; i < npix; i++)
        ck_assert_msg(fabsf(both[npix + i] - one[i]) <= row_tol, "row 1 [%zu]: %g vs %g", i,
                      both[npix + i], one[i]);

    /* encode: the row-0 image twice, the second half negated */
    struct ref img = ref_load(SD "sd1-tiny", "vae.safetensors", "encode.image", true);
    struct ref mean = ref_load(SD "sd1-tiny", "vae.safetensors", "encode.mean", true);
    float *two = malloc(2 * ref_numel(&img) * sizeof *two);
    for (size_t i = 0; i < ref_numel(&img); i++) {
        two[i] = img.data[i];
        two[ref_numel(&img) + i] = -img.data[i];
    }
    struct tensor it = test_tensor(b, 4, (int64_t[]){2, img.h, img.w, img.c}, two);
    struct tensor i1 = test_tensor(b, 4, (int64_t[]){1, img.h, img.w, img.c}, two + ref_numel(&img));
    const int64_t ms[4] = {2, mean.h, mean.w, mean.c}, ms1[4] = {1, mean.h, mean.w, mean.c};
    struct tensor mt = test_tensor(b, 4, ms, NULL), lt = test_tensor(b, 4, ms, NULL);
    struct tensor m1 = test_tensor(b, 4, ms1, NULL), l1 = test_tensor(b, 4, ms1, NULL);
    struct errbuf err;
    ck_assert_msg(vae_encode(m, &ws, &it, &mt, &lt, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_msg(vae_encode(m, &ws, &i1, &m1, &l1, &err) == STATUS_OK, "%s", err.msg);
    float *gm = test_download(&mt), *gm1 = test_download(&m1), *gl = test_download(&lt),
          *gl1 = test_download(&l1);
    const size_t nl = ref_numel(&mean);
    assert_rel("sd1-tiny batch 2 encode.mean row 0", gm, &mean, REL_TOL);
    for (size_t i = 0; i < nl; i++) {
        ck_assert(fabsf(gm[nl + i] - gm1[i]) <= row_tol);
        ck_assert(fabsf(gl[nl + i] - gl1[i]) <= row_tol);
    }
    struct tensor *all[] = {&it, &i1, &mt, &lt, &m1, &l1};
    for (size_t i = 0; i < 6; i++)
        backend_free(all[i]);
    float *bufs[] = {both, one, two, gm, gm1, gl, gl1, z0.data, z1.data, zz.data, want0.data,
                     img.data, mean.data};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    workspace_destroy(&ws);
    vae_free(m);
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The --full sets (SD1.5 / SD2.1 sizes, not committed), when DIFFUSIOND_FULL_DIR names
 * their folder (tools/make_fixtures.py --full → /tmp/diffusiond-full): 512×512 and
 * 512×256 decodes and a 512×512 encode, same bound, timings printed. */
START_TEST(test_full_size_sets)
{
    const char *root = getenv("DIFFUSIOND_FULL_DIR");
    if (!root || !*root)
        return;
    static const char *const pipes[] = {"sd15-full", "sd21-full"};
    for (int i = 0; i < 2; i++) {
        char dir[512], path[600];
        snprintf(dir, sizeof dir, "%s/%s", root, pipes[i]);
        snprintf(path, sizeof path, "%s/reference/vae.safetensors", dir);
        if (access(path, R_OK) != 0) {
            printf("vae %s: no reference at %s, skipped\n", pipes[i], path);
            continue;
        }
        struct vae_model *m = load_vae(dir, false);
        double t0 = now_s();
        check_decode(dir, m, "decode", false);
        double t1 = now_s();
        check_decode(dir, m, "decode_wide", false);
        double t2 = now_s();
        check_encode(dir, m);
        double t3 = now_s();
        printf("vae %s: decode 512x512 %.2f s, decode 512x256 %.2f s, encode 512x512 %.2f s "
               "(%d threads, incl. reference I/O)\n", pipes[i], t1 - t0, t2 - t1, t3 - t2,
               cpu_backend_threads(test_cpu_backend()));
        vae_free(m);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vae");
    TCase *tc = tcase_create("vae");
    tcase_add_test(tc, test_config_sd1);
    tcase_add_test(tc, test_decode_matches_diffusers);
    tcase_add_test(tc, test_encode_matches_diffusers);
    tcase_add_test(tc, test_fp16_variant);
    tcase_add_test(tc, test_legacy_attention_names);
    tcase_add_test(tc, test_pipeline_image);
    tcase_add_test(tc, test_rgb8_as_numpy_to_pil);
    tcase_add_test(tc, test_workspace_reused);
    tcase_add_test(tc, test_config_errors_name_key);
    tcase_add_test(tc, test_weight_errors_name_tensor);
    tcase_add_test(tc, test_shape_errors);
    tcase_add_test(tc, test_missing_tensors_named);
    tcase_add_test(tc, test_batch_rows_independent);
    tcase_add_test(tc, test_full_size_sets);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
