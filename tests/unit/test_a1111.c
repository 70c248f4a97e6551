/* tests/unit/test_a1111.c — api/a1111_request and api/a1111_response (A1111's /sdapi/v1).
 *
 * Malformed txt2img bodies: one table, each row its own Check test, asserting the
 * stage that rejects it (parse, or resolve against the tiny SD1 fixture) and the
 * A1111 field named in `param` and at the start of the message.
 * Valid bodies: the defaults from the model, every honoured field applied (legacy
 * sampler names split, seed -1 random, batch_size × n_iter images, clip skip and model
 * from override_settings, unknown override keys warned), the "off" values of the
 * features this server has not accepted, what webuiapi sends by default accepted.
 * Inpainting (img2img's mask): bad masks and fields refused by name at their stage; a
 * mask of another size resized with the image, blurred (soft edge) or not (as sent),
 * inverted, its alpha read when it is an RGBA image with transparency; the fills mapped
 * (0 changes only the start image's pixels under the mask); the fields without a mask
 * change nothing; inpaint_full_res warned about.
 * Responses: txt2img's body parsed back (images decoded, parameters, info as a JSON
 * string with seeds and infotexts, send_images false), the lists (every sampler and
 * scheduler name parses back to ours), options, progress and the error body;
 * img2img's inpainting fields echoed and "Mask blur" in info and the infotext.
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/a1111_request.h"
#include "api/a1111_response.h"
#include "api/base64.h"
#include "api/image_encode.h"
#include "tests/testutil.h"
#include "tests/testutil_png.h"

static struct sd_model *g_model; /* sd1-tiny: 64x64 native */

static void load_model(void)
{
    g_model = test_load_sd1_tiny();
}

static void free_model(void)
{
    sd_model_free(g_model);
    g_model = NULL;
}

/* Parse (and resolve when parse passes) with the default limits. */
static enum status parse_resolve(const char *body, struct a1111_request *t, struct api_error *e,
                                 bool *at_parse)
{
    struct api_limits lim;
    api_limits_default(&lim);
    memset(e, 0, sizeof *e);
    enum status s = a1111_txt2img_parse(body, strlen(body), &lim, t, e);
    *at_parse = s != STATUS_OK;
    if (s == STATUS_OK)
        s = openai_images_resolve(g_model, &lim, 0x123456789abcULL, &t->req, e);
    return s;
}

/* --- malformed ------------------------------------------------------------------------ */

enum stage { AT_PARSE, AT_RESOLVE };

static const struct {
    const char *body;
    enum stage stage;
    const char *param; /* NULL: JSON null */
} BAD[] = {
    {"{\"prompt\":5}", AT_PARSE, "prompt"},
    {"{\"negative_prompt\":[]}", AT_PARSE, "negative_prompt"},
    {"{\"seed\":-2}", AT_PARSE, "seed"},
    {"{\"seed\":\"1\"}", AT_PARSE, "seed"},
    {"{\"seed\":9223372036854775807,\"batch_size\":2}", AT_PARSE, "seed"},
    {"{\"sampler_name\":\"Heun\"}", AT_PARSE, "sampler_name"},
    {"{\"sampler_index\":\"DPM adaptive\"}", AT_PARSE, "sampler_index"},
    {"{\"sampler_name\":\"Euler\",\"sampler_index\":5}", AT_PARSE, "sampler_index"},
    {"{\"scheduler\":\"exponential\"}", AT_PARSE, "scheduler"},
    {"{\"batch_size\":0}", AT_PARSE, "batch_size"},
    {"{\"batch_size\":9}", AT_PARSE, "batch_size"},
    {"{\"n_iter\":0}", AT_PARSE, "n_iter"},
    {"{\"batch_size\":4,\"n_iter\":3}", AT_PARSE, "batch_size"},
    {"{\"steps\":0}", AT_PARSE, "steps"},
    {"{\"steps\":151}", AT_PARSE, "steps"},
    {"{\"cfg_scale\":-1}", AT_PARSE, "cfg_scale"},
    {"{\"cfg_scale\":\"7\"}", AT_PARSE, "cfg_scale"},
    {"{\"width\":32}", AT_PARSE, "width"},
    {"{\"height\":4096}", AT_PARSE, "height"},
    {"{\"width\":100}", AT_RESOLVE, "width"},
    {"{\"height\":100}", AT_RESOLVE, "height"},
    {"{\"width\":64.5}", AT_PARSE, "width"},
    {"{\"eta\":2}", AT_PARSE, "eta"},
    {"{\"enable_hr\":true}", AT_PARSE, "enable_hr"},
    {"{\"enable_hr\":1}", AT_PARSE, "enable_hr"},
    {"{\"restore_faces\":true}", AT_PARSE, "restore_faces"},
    {"{\"tiling\":true}", AT_PARSE, "tiling"},
    {"{\"styles\":[\"s\"]}", AT_PARSE, "styles"},
    {"{\"styles\":\"s\"}", AT_PARSE, "styles"},
    {"{\"alwayson_scripts\":{\"controlnet\":{}}}", AT_PARSE, "alwayson_scripts"},
    {"{\"script_name\":\"x/y/z plot\"}", AT_PARSE, "script_name"},
    {"{\"subseed_strength\":0.5}", AT_PARSE, "subseed_strength"},
    {"{\"s_churn\":1}", AT_PARSE, "s_churn"},
    {"{\"seed_resize_from_w\":512}", AT_PARSE, "seed_resize_from_w"},
    {"{\"send_images\":\"yes\"}", AT_PARSE, "send_images"},
    {"{\"override_settings\":[]}", AT_PARSE, "override_settings"},
    {"{\"override_settings\":{\"CLIP_stop_at_last_layers\":0}}", AT_PARSE,
     "override_settings.CLIP_stop_at_last_layers"},
    {"{\"override_settings\":{\"CLIP_stop_at_last_layers\":3}}", AT_RESOLVE,
     "override_settings.CLIP_stop_at_last_layers"},
    {"{\"sampler_name\":\"LCM\",\"steps\":60}", AT_RESOLVE, "sampler_name"},
    {"{\"override_settings\":{\"sd_model_checkpoint\":5}}", AT_PARSE,
     "override_settings.sd_model_checkpoint"},
    {"{\"sampler_name\":\"DDIM\",\"scheduler\":\"karras\"}", AT_RESOLVE, "scheduler"},
    {"{\"prompt\":\"a\",\"prompt\":\"b\"}", AT_PARSE, "prompt"},
    {"[]", AT_PARSE, NULL},
    {"", AT_PARSE, NULL},
};

START_TEST(test_malformed)
{
    ck_assert_ptr_nonnull(g_model);
    struct a1111_request t;
    struct api_error e;
    bool at_parse = false;
    const enum status s = parse_resolve(BAD[_i].body, &t, &e, &at_parse);
    ck_assert_msg(s != STATUS_OK, "row %d (%s): accepted", _i, BAD[_i].body);
    ck_assert_msg(at_parse == (BAD[_i].stage == AT_PARSE), "row %d (%s): rejected at %s: %s", _i,
                  BAD[_i].body, at_parse ? "parse" : "resolve", e.message);
    ck_assert_int_eq(e.http, 400);
    const char *want = BAD[_i].param ? BAD[_i].param : "";
    ck_assert_msg(strcmp(e.param, want) == 0, "row %d (%s): param \"%s\", want \"%s\" (%s)", _i,
                  BAD[_i].body, e.param, want, e.message);
    if (BAD[_i].param)
        ck_assert_msg(strncmp(e.message, want, strlen(want)) == 0, "row %d: message \"%s\"", _i,
                      e.message);
    a1111_request_free(&t);
}
END_TEST

/* --- valid ---------------------------------------------------------------------------- */

START_TEST(test_defaults_from_model)
{
    struct a1111_request t;
    struct api_error e;
    bool at_parse;
    ck_assert_int_eq(parse_resolve("{}", &t, &e, &at_parse), STATUS_OK);
    struct gen_params d;
    gen_params_default(g_model, &d);
    const struct gen_params *p = &t.req.params;
    ck_assert_str_eq(p->prompt, ""); /* A1111 allows an empty prompt */
    ck_assert_int_eq(p->width, d.width);
    ck_assert_int_eq(p->height, d.height);
    ck_assert_int_eq(p->steps, d.steps);
    ck_assert_double_eq(p->guidance, d.guidance);
    ck_assert_int_eq(p->sampler, d.sampler);
    ck_assert_int_eq(p->n, 1);
    ck_assert(t.send_images);
    ck_assert(t.req.seed_random);
    ck_assert_uint_eq(p->seed, 0x123456789abcULL & API_RANDOM_SEED_MASK);
    ck_assert_int_eq(t.req.output_format, IMAGE_PNG);
    a1111_request_free(&t);
}
END_TEST

START_TEST(test_fields_applied)
{
    struct a1111_request t;
    struct api_error e;
    bool at_parse;
    const char *body =
        "{\"prompt\":\"a cat\",\"negative_prompt\":\"dog\",\"seed\":41,\"sampler_name\":"
        "\"DPM++ 2M Karras\",\"batch_size\":2,\"n_iter\":3,\"steps\":7,\"cfg_scale\":4.5,"
        "\"width\":72,\"eta\":0.25,\"send_images\":false,\"override_settings\":"
        "{\"sd_model_checkpoint\":\"m\",\"CLIP_stop_at_last_layers\":2,\"sd_vae\":\"x\","
        "\"samples_format\":null}}";
    ck_assert_int_eq(parse_resolve(body, &t, &e, &at_parse), STATUS_OK);
    const struct gen_params *p = &t.req.params;
    ck_assert_str_eq(p->prompt, "a cat");
    ck_assert_str_eq(p->negative_prompt, "dog");
    ck_assert_uint_eq(p->seed, 41);
    ck_assert(!t.req.seed_random);
    ck_assert_int_eq(p->sampler, SAMPLER_DPMPP_2M_KARRAS);
    ck_assert_int_eq(t.batch_size, 2);
    ck_assert_int_eq(t.n_iter, 3);
    ck_assert_int_eq(p->n, 6);
    ck_assert_int_eq(p->steps, 7);
    ck_assert_double_eq(p->guidance, 4.5);
    ck_assert_int_eq(p->width, 72);
    ck_assert_int_eq(p->height, 64); /* the native height */
    ck_assert_double_eq(p->eta, 0.25);
    ck_assert(!t.send_images);
    ck_assert_str_eq(t.req.model, "m");
    ck_assert_int_eq(p->clip_skip, 1); /* A1111's 2 = one layer skipped */
    ck_assert_int_eq(t.req.n_warnings, 1);
    ck_assert_ptr_nonnull(strstr(t.req.warnings[0], "override_settings.sd_vae"));
    a1111_request_free(&t);
}
END_TEST

START_TEST(test_sampler_names)
{
    static const struct {
        const char *body;
        enum sampler_kind kind;
        enum sd_scheduler sched;
    } C[] = {
        {"{\"sampler_name\":\"Euler a\"}", SAMPLER_EULER_A, SD_SCHEDULER_DEFAULT},
        {"{\"sampler_name\":\"Euler\",\"scheduler\":\"karras\"}", SAMPLER_EULER,
         SD_SCHEDULER_KARRAS},
        {"{\"sampler_name\":\"DPM++ 2M\",\"scheduler\":\"sgm_uniform\"}", SAMPLER_DPMPP_2M,
         SD_SCHEDULER_TRAILING},
        {"{\"sampler_name\":\"DDIM\",\"scheduler\":\"uniform\"}", SAMPLER_DDIM,
         SD_SCHEDULER_LINSPACE},
        {"{\"sampler_index\":\"Euler\"}", SAMPLER_EULER, SD_SCHEDULER_DEFAULT},
        /* sampler_name wins over sampler_index (webuiapi sends both) */
        {"{\"sampler_name\":\"LCM\",\"sampler_index\":\"Euler\"}", SAMPLER_LCM,
         SD_SCHEDULER_DEFAULT},
        {"{\"sampler_name\":null,\"sampler_index\":\"DDIM\",\"scheduler\":\"automatic\"}",
         SAMPLER_DDIM, SD_SCHEDULER_DEFAULT},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        struct a1111_request t;
        struct api_error e;
        bool at_parse;
        ck_assert_msg(parse_resolve(C[i].body, &t, &e, &at_parse) == STATUS_OK, "%s: %s",
                      C[i].body, e.message);
        ck_assert_int_eq(t.req.params.sampler, C[i].kind);
        ck_assert_int_eq(t.req.params.scheduler, C[i].sched);
        a1111_request_free(&t);
    }
}
END_TEST

/* What webuiapi 0.9.17's txt2img() sends when called with a prompt alone. */
START_TEST(test_webuiapi_defaults_accepted)
{
    const char *body =
        "{\"enable_hr\":false,\"hr_scale\":2,\"hr_upscaler\":\"Latent\",\"hr_second_pass_steps\":0,"
        "\"hr_resize_x\":0,\"hr_resize_y\":0,\"hr_checkpoint_name\":null,\"hr_sampler_name\":null,"
        "\"hr_scheduler\":null,\"hr_prompt\":\"\",\"hr_negative_prompt\":\"\","
        "\"denoising_strength\":0.7,\"firstphase_width\":0,\"firstphase_height\":0,"
        "\"prompt\":\"a\",\"styles\":[],\"seed\":-1,\"subseed\":-1,\"subseed_strength\":0.0,"
        "\"seed_resize_from_h\":0,\"seed_resize_from_w\":0,\"batch_size\":1,\"n_iter\":1,"
        "\"steps\":30,\"cfg_scale\":7.0,\"width\":64,\"height\":64,\"restore_faces\":false,"
        "\"tiling\":false,\"do_not_save_samples\":false,\"do_not_save_grid\":false,"
        "\"negative_prompt\":\"\",\"eta\":1.0,\"s_churn\":0,\"s_tmax\":0,\"s_tmin\":0,"
        "\"s_noise\":1,\"override_settings\":{},\"override_settings_restore_afterwards\":true,"
        "\"sampler_name\":\"Euler a\",\"scheduler\":\"automatic\",\"sampler_index\":\"Euler a\","
        "\"script_name\":null,\"script_args\":[],\"send_images\":true,\"save_images\":false,"
        "\"alwayson_scripts\":{}}";
    struct a1111_request t;
    struct api_error e;
    bool at_parse;
    ck_assert_msg(parse_resolve(body, &t, &e, &at_parse) == STATUS_OK, "%s", e.message);
    ck_assert_int_eq(t.req.params.steps, 30);
    ck_assert_int_eq(t.req.params.sampler, SAMPLER_EULER_A);
    ck_assert(t.req.seed_random);
    ck_assert_int_eq(t.req.n_warnings, 0);
    a1111_request_free(&t);
}
END_TEST

START_TEST(test_options_parse)
{
    char *model = NULL;
    struct api_error e;
    const char *b1 = "{\"sd_model_checkpoint\":\"m1\",\"sd_vae\":\"Automatic\"}";
    ck_assert_int_eq(a1111_options_parse(b1, strlen(b1), &model, &e), STATUS_OK);
    ck_assert_str_eq(model, "m1");
    free(model);
    const char *b2 = "{\"samples_format\":\"jpg\"}";
    ck_assert_int_eq(a1111_options_parse(b2, strlen(b2), &model, &e), STATUS_OK);
    ck_assert_ptr_null(model);
    const char *b3 = "{\"sd_model_checkpoint\":1}";
    ck_assert_int_ne(a1111_options_parse(b3, strlen(b3), &model, &e), STATUS_OK);
    ck_assert_str_eq(e.param, "sd_model_checkpoint");
    ck_assert_int_ne(a1111_options_parse("[]", 2, &model, &e), STATUS_OK);
}
END_TEST

/* --- responses ------------------------------------------------------------------------ */

static json_t *load(const char *body, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    ck_assert_msg(root != NULL, "not JSON (%s): %.200s", je.text, body);
    return root;
}

START_TEST(test_txt2img_response)
{
    struct a1111_request t;
    struct api_error e;
    bool at_parse;
    const char *body = "{\"prompt\":\"a \\\"q\\\"\",\"negative_prompt\":\"n\",\"seed\":9,"
                       "\"batch_size\":2,\"steps\":3,\"sampler_name\":\"Euler a\","
                       "\"override_settings\":{\"x\":1}}";
    ck_assert_int_eq(parse_resolve(body, &t, &e, &at_parse), STATUS_OK);
    static const uint8_t png0[] = {1, 2, 3, 250}, png1[] = {7};
    const struct api_image_out imgs[2] = {{.data = png0, .len = 4, .seed = 9},
                                          {.data = png1, .len = 1, .seed = 10}};
    const int batch[] = {4, 4, 4};
    const struct a1111_txt2img_response r = {
        .t = &t, .model_name = "tiny", .images = imgs, .n_images = 2, .width = 64,
        .height = 64, .created = 1700000000,
        .metrics = {.total_ms = 12.5, .batch_sizes = batch, .n_batch_sizes = 3}};
    char *out = NULL;
    size_t len = 0;
    struct errbuf err;
    ck_assert_int_eq(a1111_txt2img_response_write(&r, &out, &len, &err), STATUS_OK);
    ck_assert_uint_eq(strlen(out), len);
    json_t *root = load(out, len);
    json_t *images = json_object_get(root, "images");
    ck_assert_uint_eq(json_array_size(images), 2);
    uint8_t dec[8];
    size_t n = 0;
    const char *b0 = json_string_value(json_array_get(images, 0));
    ck_assert(base64_decode(b0, strlen(b0), dec, &n));
    ck_assert_uint_eq(n, 4);
    ck_assert_mem_eq(dec, png0, 4);
    json_t *params = json_object_get(root, "parameters");
    ck_assert_str_eq(json_string_value(json_object_get(params, "prompt")), "a \"q\"");
    ck_assert_int_eq(json_integer_value(json_object_get(params, "seed")), 9);
    ck_assert_str_eq(json_string_value(json_object_get(params, "sampler_name")), "Euler a");
    ck_assert_int_eq(json_integer_value(json_object_get(params, "batch_size")), 2);
    json_t *info = load(json_string_value(json_object_get(root, "info")),
                        strlen(json_string_value(json_object_get(root, "info"))));
    json_t *seeds = json_object_get(info, "all_seeds");
    ck_assert_int_eq(json_integer_value(json_array_get(seeds, 1)), 10);
    ck_assert_str_eq(json_string_value(json_object_get(info, "job_timestamp")),
                     "20231114221320");
    const char *it1 = json_string_value(json_array_get(json_object_get(info, "infotexts"), 1));
    ck_assert_ptr_nonnull(strstr(it1, "Negative prompt: n\nSteps: 3, Sampler: Euler a"));
    ck_assert_ptr_nonnull(strstr(it1, "Seed: 10, Size: 64x64, Model: tiny"));
    json_t *m = json_object_get(root, "metrics");
    ck_assert_uint_eq(json_array_size(json_object_get(m, "batch_sizes")), 3);
    ck_assert_uint_eq(json_array_size(json_object_get(root, "warnings")), 1);
    json_decref(info);
    json_decref(root);
    free(out);

    t.send_images = false; /* the images are not sent; info still describes them */
    ck_assert_int_eq(a1111_txt2img_response_write(&r, &out, &len, &err), STATUS_OK);
    root = load(out, len);
    ck_assert_uint_eq(json_array_size(json_object_get(root, "images")), 0);
    json_decref(root);
    free(out);
    a1111_request_free(&t);
}
END_TEST

START_TEST(test_lists_parse_back)
{
    char *out = NULL;
    size_t len = 0;
    struct errbuf err;
    ck_assert_int_eq(a1111_samplers_write(&out, &len, &err), STATUS_OK);
    json_t *root = load(out, len);
    ck_assert_uint_eq(json_array_size(root), SAMPLER_KIND_COUNT_ - 1);
    for (size_t i = 0; i < json_array_size(root); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(root, i), "name"));
        enum sampler_kind k;
        ck_assert_msg(sampler_kind_parse(name, &k, &err) == STATUS_OK, "%s", name);
    }
    json_decref(root);
    free(out);
    ck_assert_int_eq(a1111_schedulers_write(&out, &len, &err), STATUS_OK);
    root = load(out, len);
    ck_assert_uint_eq(json_array_size(root), SD_SCHEDULER_COUNT_);
    for (size_t i = 0; i < json_array_size(root); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(root, i), "name"));
        enum sd_scheduler s;
        ck_assert_msg(sd_scheduler_parse(name, &s, &err) == STATUS_OK, "%s", name);
        ck_assert_int_eq((int)s, (int)i);
        ck_assert_str_eq(a1111_scheduler_name(s), name);
    }
    json_decref(root);
    free(out);
}
END_TEST

START_TEST(test_models_options_progress_error)
{
    char *out = NULL;
    size_t len = 0;
    struct errbuf err;
    const char *names[] = {"a", "b\"c"};
    ck_assert_int_eq(a1111_models_write(names, 2, &out, &len, &err), STATUS_OK);
    json_t *root = load(out, len);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(root, 1), "title")),
                     "b\"c");
    json_decref(root);
    free(out);
    ck_assert_int_eq(a1111_options_write("a", &out, &len, &err), STATUS_OK);
    root = load(out, len);
    ck_assert_str_eq(json_string_value(json_object_get(root, "sd_model_checkpoint")), "a");
    json_decref(root);
    free(out);
    const struct a1111_progress p = {.job_count = 3, .steps_done = 5, .steps_total = 20,
                                     .eta_s = 1.5};
    ck_assert_int_eq(a1111_progress_write(&p, &out, &len, &err), STATUS_OK);
    root = load(out, len);
    ck_assert_double_eq(json_real_value(json_object_get(root, "progress")), 0.25);
    ck_assert_double_eq(json_real_value(json_object_get(root, "eta_relative")), 1.5);
    json_t *state = json_object_get(root, "state");
    ck_assert_int_eq(json_integer_value(json_object_get(state, "job_count")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(state, "sampling_steps")), 20);
    json_decref(root);
    free(out);
    const struct a1111_progress idle = {0};
    ck_assert_int_eq(a1111_progress_write(&idle, &out, &len, &err), STATUS_OK);
    root = load(out, len);
    ck_assert_double_eq(json_real_value(json_object_get(root, "progress")), 0.0);
    json_decref(root);
    free(out);
    struct api_error e;
    api_error_set(&e, 400, NULL, "steps", NULL, "steps: bad");
    out = a1111_error_body(&e, &len);
    root = load(out, len);
    ck_assert_str_eq(json_string_value(json_object_get(root, "detail")), "steps: bad");
    ck_assert_str_eq(json_string_value(json_object_get(root, "errors")), "steps: bad");
    ck_assert_str_eq(json_string_value(json_object_get(root, "param")), "steps");
    ck_assert(json_is_null(json_object_get(root, "code")));
    json_decref(root);
    free(out);
    /* a message holding bytes that are not UTF-8 (jansson's error text quotes the
     * body; found by tests/fuzz/fuzz_a1111.c): still a JSON body, U+FFFD in their place */
    api_error_set(&e, 400, NULL, NULL, NULL, "bad \xe7\xa3 byte");
    out = a1111_error_body(&e, &len);
    ck_assert_ptr_nonnull(out);
    root = load(out, len);
    ck_assert_str_eq(json_string_value(json_object_get(root, "detail")),
                     "bad \xef\xbf\xbd\xef\xbf\xbd byte");
    json_decref(root);
    free(out);
    const char *bad_name[] = {"m\xff"}; /* a model folder's name */
    ck_assert_int_eq(a1111_models_write(bad_name, 1, &out, &len, &err), STATUS_OK);
    root = load(out, len);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(root, 0), "title")),
                     "m\xef\xbf\xbd");
    json_decref(root);
    free(out);
}
END_TEST

/* --- img2img ------------------------------------------------------------------------- */

/* The base64 of a w×h PNG (a gradient); malloc'ed. */
static char *png_b64(int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    ck_assert_ptr_nonnull(rgb);
    for (int i = 0; i < w * h * 3; i++)
        rgb[i] = (uint8_t)(i * 7 % 251);
    uint8_t *png = NULL;
    size_t len = 0;
    struct errbuf err;
    ck_assert_int_eq(image_encode_png(rgb, w, h, NULL, &png, &len, &err), STATUS_OK);
    char *b64 = malloc(base64_encoded_len(len) + 1);
    ck_assert_ptr_nonnull(b64);
    b64[base64_encode(png, len, b64)] = '\0';
    free(png);
    free(rgb);
    return b64;
}

/* body = fmt with its one %s replaced by the base64 of a w×h PNG. */
static char *img2img_body(const char *fmt, int w, int h)
{
    char *b64 = png_b64(w, h);
    const size_t cap = strlen(fmt) + strlen(b64) + 1;
    char *body = malloc(cap);
    ck_assert_ptr_nonnull(body);
    snprintf(body, cap, fmt, b64);
    free(b64);
    return body;
}

enum i2i_stage { I2I_PARSE, I2I_RESOLVE, I2I_FINISH };

/* Parse, resolve and finish with lim (NULL: the defaults); *stage: where it stopped. */
static enum status img2img_run(const char *body, const struct api_limits *lim,
                               struct a1111_request *t, struct api_error *e,
                               enum i2i_stage *stage)
{
    struct api_limits def;
    api_limits_default(&def);
    if (!lim)
        lim = &def;
    memset(e, 0, sizeof *e);
    *stage = I2I_PARSE;
    enum status s = a1111_img2img_parse(body, strlen(body), lim, t, e);
    if (s != STATUS_OK)
        return s;
    *stage = I2I_RESOLVE;
    if ((s = openai_images_resolve(g_model, lim, 5, &t->req, e)) != STATUS_OK)
        return s;
    *stage = I2I_FINISH;
    return a1111_img2img_finish(t, e);
}

static const struct {
    const char *fmt; /* each %s: the base64 of a 72×80 PNG (a body without one ignores it) */
    enum i2i_stage stage;
    const char *param;
} BAD_I2I[] = {
    {"{\"prompt\":\"x\"}", I2I_PARSE, "init_images"},
    {"{\"init_images\":[]}", I2I_PARSE, "init_images"},
    {"{\"init_images\":\"%s\"}", I2I_PARSE, "init_images"},
    {"{\"init_images\":[5]}", I2I_PARSE, "init_images"},
    {"{\"init_images\":[\"not base64!\"]}", I2I_PARSE, "init_images"},
    {"{\"init_images\":[\"aGVsbG8gd29ybGQh\"]}", I2I_PARSE, "init_images"}, /* "hello world!" */
    {"{\"init_images\":[\"data:image/png;base64%s\"]}", I2I_PARSE, "init_images"},
    {"{\"init_images\":[\"%s\"],\"denoising_strength\":0}", I2I_PARSE, "denoising_strength"},
    {"{\"init_images\":[\"%s\"],\"denoising_strength\":1.5}", I2I_PARSE, "denoising_strength"},
    {"{\"init_images\":[\"%s\"],\"denoising_strength\":\"0.5\"}", I2I_PARSE,
     "denoising_strength"},
    {"{\"init_images\":[\"%s\"],\"denoising_strength\":0.1,\"steps\":8}", I2I_FINISH,
     "denoising_strength"},
    {"{\"init_images\":[\"%s\"],\"resize_mode\":1}", I2I_PARSE, "resize_mode"},
    {"{\"init_images\":[\"%s\"],\"mask\":\"not base64!\"}", I2I_PARSE, "mask"},
    {"{\"init_images\":[\"%s\"],\"mask\":\"aGVsbG8gd29ybGQh\"}", I2I_PARSE, "mask"},
    {"{\"init_images\":[\"%s\"],\"mask\":[\"%s\"]}", I2I_PARSE, "mask"},
    {"{\"init_images\":[\"%s\"],\"mask\":\"data:image/png;base64%s\"}", I2I_PARSE, "mask"},
    /* the mask's header whole, its pixels cut: refused where it is decoded */
    {"{\"init_images\":[\"%s\"],\"mask\":\"%.64s\"}", I2I_FINISH, "mask"},
    {"{\"init_images\":[\"%s\"],\"latent_mask\":\"%s\"}", I2I_PARSE, "latent_mask"},
    {"{\"init_images\":[\"%s\"],\"mask_blur\":-1}", I2I_PARSE, "mask_blur"},
    {"{\"init_images\":[\"%s\"],\"mask_blur\":2.5}", I2I_PARSE, "mask_blur"},
    {"{\"init_images\":[\"%s\"],\"mask_blur\":1001}", I2I_PARSE, "mask_blur"},
    {"{\"init_images\":[\"%s\"],\"mask_blur\":4,\"mask_blur_x\":8}", I2I_PARSE,
     "mask_blur_x"},
    {"{\"init_images\":[\"%s\"],\"mask_blur\":4,\"mask_blur_y\":0}", I2I_PARSE,
     "mask_blur_y"},
    {"{\"init_images\":[\"%s\"],\"mask_blur_y\":\"4\"}", I2I_PARSE, "mask_blur_y"},
    {"{\"init_images\":[\"%s\"],\"inpainting_fill\":4}", I2I_PARSE, "inpainting_fill"},
    {"{\"init_images\":[\"%s\"],\"inpainting_fill\":\"fill\"}", I2I_PARSE,
     "inpainting_fill"},
    {"{\"init_images\":[\"%s\"],\"inpainting_mask_invert\":2}", I2I_PARSE,
     "inpainting_mask_invert"},
    {"{\"init_images\":[\"%s\"],\"inpaint_full_res\":\"yes\"}", I2I_PARSE,
     "inpaint_full_res"},
    {"{\"init_images\":[\"%s\"],\"inpaint_full_res_padding\":-1}", I2I_PARSE,
     "inpaint_full_res_padding"},
    {"{\"init_images\":[\"%s\"],\"include_init_images\":true}", I2I_PARSE,
     "include_init_images"},
    {"{\"init_images\":[\"%s\"],\"initial_noise_multiplier\":0.5}", I2I_PARSE,
     "initial_noise_multiplier"},
    {"{\"init_images\":[\"%s\"],\"width\":100}", I2I_RESOLVE, "width"},
    {"{\"init_images\":[\"%s\"],\"steps\":0}", I2I_PARSE, "steps"},
    /* the PNG's first 48 bytes (its header whole, its pixels cut): the header read at
     * parse passes, the decode at finish does not */
    {"{\"init_images\":[\"%.64s\"]}", I2I_FINISH, "init_images"},
};

START_TEST(test_img2img_malformed)
{
    ck_assert_ptr_nonnull(g_model);
    /* every conversion of fmt gets the image (a mask row's second: the image as a mask) */
    char *b64 = png_b64(72, 80);
    const size_t cap = strlen(BAD_I2I[_i].fmt) + 2 * strlen(b64) + 1;
    char *body = malloc(cap);
    ck_assert_ptr_nonnull(body);
    snprintf(body, cap, BAD_I2I[_i].fmt, b64, b64);
    free(b64);
    struct a1111_request t;
    struct api_error e;
    enum i2i_stage stage;
    const enum status s = img2img_run(body, NULL, &t, &e, &stage);
    ck_assert_msg(s != STATUS_OK, "row %d: accepted", _i);
    ck_assert_msg(stage == BAD_I2I[_i].stage, "row %d: rejected at stage %d: %s", _i,
                  (int)stage, e.message);
    ck_assert_int_eq(e.http, 400);
    ck_assert_msg(strcmp(e.param, BAD_I2I[_i].param) == 0, "row %d: param \"%s\" (%s)", _i,
                  e.param, e.message);
    ck_assert_msg(strncmp(e.message, BAD_I2I[_i].param, strlen(BAD_I2I[_i].param)) == 0,
                  "row %d: message \"%s\"", _i, e.message);
    a1111_request_free(&t);
    free(body);
}
END_TEST

/* The image's own size rounded down to 8 by default; its pixels reach params. */
START_TEST(test_img2img_defaults)
{
    char *body = img2img_body("{\"init_images\":[\"data:image/png;base64,%s\"],\"steps\":10}",
                              100, 90);
    struct a1111_request t;
    struct api_error e;
    enum i2i_stage stage;
    ck_assert_int_eq(img2img_run(body, NULL, &t, &e, &stage), STATUS_OK);
    const struct gen_params *p = &t.req.params;
    ck_assert_int_eq(p->width, 96);
    ck_assert_int_eq(p->height, 88);
    ck_assert_double_eq(p->strength, 0.75); /* A1111's default */
    ck_assert_ptr_eq(p->init_image, t.i2i.resized.rgb);
    ck_assert_int_eq(t.i2i.resized.width, 96);
    ck_assert_int_eq(t.i2i.resized.height, 88);
    ck_assert_int_eq(t.i2i.init.width, 100);
    ck_assert_int_eq(sd_img2img_steps(p->steps, p->strength), 7);
    ck_assert_int_eq(t.req.n_warnings, 0);
    a1111_request_free(&t);
    free(body);
}
END_TEST

/* Given sides win (the image resized to them); a second image is warned about. */
START_TEST(test_img2img_fields)
{
    char *b64 = png_b64(40, 200);
    char body[4096 * 8];
    snprintf(body, sizeof body,
             "{\"init_images\":[\"%s\",\"%s\"],\"width\":64,\"height\":72,"
             "\"denoising_strength\":0.4,\"resize_mode\":0,\"mask\":null,"
             "\"include_init_images\":false,\"initial_noise_multiplier\":1,"
             "\"inpainting_fill\":1,\"image_cfg_scale\":1.5,\"seed\":4}",
             b64, b64);
    free(b64);
    struct a1111_request t;
    struct api_error e;
    enum i2i_stage stage;
    ck_assert_int_eq(img2img_run(body, NULL, &t, &e, &stage), STATUS_OK);
    ck_assert_int_eq(t.req.params.width, 64);
    ck_assert_int_eq(t.req.params.height, 72);
    ck_assert_int_eq(t.i2i.resized.width, 64);
    ck_assert_int_eq(t.i2i.resized.height, 72);
    ck_assert_double_eq(t.req.params.strength, 0.4);
    ck_assert_int_eq(t.req.n_warnings, 1);
    ck_assert_ptr_nonnull(strstr(t.req.warnings[0], "init_images"));
    a1111_request_free(&t);
}
END_TEST

/* An image above the limits is scaled down (aspect kept) with a warning; one below the
 * smallest side is refused. */
START_TEST(test_img2img_limits)
{
    struct api_limits lim;
    api_limits_default(&lim);
    lim.max_width = lim.max_height = 256;
    char *body = img2img_body("{\"init_images\":[\"%s\"],\"steps\":4}", 1000, 500);
    struct a1111_request t;
    struct api_error e;
    enum i2i_stage stage;
    ck_assert_int_eq(img2img_run(body, &lim, &t, &e, &stage), STATUS_OK);
    ck_assert_int_eq(t.req.params.width, 256);
    ck_assert_int_eq(t.req.params.height, 128);
    ck_assert_int_eq(t.req.n_warnings, 1);
    ck_assert_ptr_nonnull(strstr(t.req.warnings[0], "scaled down"));
    a1111_request_free(&t);
    free(body);
    body = img2img_body("{\"init_images\":[\"%s\"]}", 40, 40);
    ck_assert_int_ne(img2img_run(body, &lim, &t, &e, &stage), STATUS_OK);
    ck_assert_str_eq(e.param, "init_images");
    ck_assert_int_eq(stage, I2I_PARSE);
    free(body);
}
END_TEST

/* --- inpainting --------------------------------------------------------------------- */

/* A w×h gray mask, white (repaint) left of x = edge, black right of it. */
static char *mask_b64(int w, int h, int edge)
{
    uint8_t *px = malloc((size_t)w * (size_t)h);
    ck_assert_ptr_nonnull(px);
    for (int i = 0; i < w * h; i++)
        px[i] = i % w < edge ? 255 : 0;
    char *b64 = test_png_base64(px, w, h, 1);
    free(px);
    return b64;
}

/* body = fmt (one %s: a 72×80 image, the next: mask_b64) run through finish. */
static enum status inpaint_run(const char *fmt, const char *mask, struct a1111_request *t,
                               struct api_error *e)
{
    char *image = png_b64(72, 80);
    const size_t cap = strlen(fmt) + strlen(image) + strlen(mask) + 1;
    char *body = malloc(cap);
    ck_assert_ptr_nonnull(body);
    snprintf(body, cap, fmt, image, mask);
    free(image);
    enum i2i_stage stage;
    const enum status s = img2img_run(body, NULL, t, e, &stage);
    free(body);
    return s;
}

/* Whole picture (inpaint_full_res false): a mask of another size than the image
 * resized with it (A1111's), blurred by 4 by default (soft edge), the fill (0) applied
 * to the start image under it only; the strength's default stays A1111's. */
START_TEST(test_img2img_mask_applied)
{
    char *mask = mask_b64(36, 40, 18);
    struct a1111_request t;
    struct api_error e;
    ck_assert_msg(inpaint_run("{\"init_images\":[\"%s\"],\"mask\":\"data:image/png;base64,%s\","
                              "\"steps\":10,\"inpaint_full_res\":false}", mask, &t, &e) ==
                      STATUS_OK, "%s", e.message);
    const struct gen_params *p = &t.req.params;
    ck_assert_int_eq(p->width, 72);
    ck_assert_int_eq(p->height, 80);
    ck_assert_ptr_nonnull(p->init_mask);
    ck_assert_ptr_eq(p->init_mask, t.i2i.inpaint.resized.v);
    ck_assert_int_eq(t.i2i.inpaint.resized.width, 72);
    ck_assert_int_eq(t.i2i.inpaint.resized.height, 80);
    ck_assert_int_eq(p->inpaint_fill, SD_FILL_ORIGINAL);
    ck_assert_double_eq(p->strength, 0.75);
    const uint8_t *row = p->init_mask + 40 * 72;
    ck_assert_int_eq(row[0], 255);
    ck_assert_int_eq(row[71], 0);
    int soft = 0;
    for (int x = 0; x < 72; x++)
        soft += row[x] > 0 && row[x] < 255;
    ck_assert_int_ge(soft, 8); /* blur 4 at 36 wide, doubled by the resize */
    /* fill 0: only the pixels to repaint changed (image = request size: resize copies) */
    int changed = 0;
    for (int i = 0; i < 72 * 80; i++) {
        const bool same = memcmp(t.i2i.resized.rgb + 3 * i, t.i2i.init.rgb + 3 * i, 3) == 0;
        if (p->init_mask[i] < 128)
            ck_assert_msg(same, "pixel %d (mask %d) changed", i, p->init_mask[i]);
        changed += !same;
    }
    ck_assert_int_gt(changed, 72 * 80 / 4);
    ck_assert_int_eq(t.req.n_warnings, 0);
    ck_assert(!t.req.params.inpaint_no_overlay);
    a1111_request_free(&t);
    free(mask);
}
END_TEST

/* At the image's size with no blur the mask arrives as sent; inverted, its complement;
 * mask_blur_x alone blurs along x only; inpainting_fill 1-3 map to the pipeline's fills
 * and leave the start image as it is. */
START_TEST(test_img2img_mask_invert_blur_fill)
{
    char *mask = mask_b64(72, 80, 30);
    struct a1111_request t;
    struct api_error e;
    static const struct {
        const char *fields;
        enum sd_inpaint_fill fill;
        int edge_left, edge_right; /* the mask at x = 29 and 30 on every row */
        bool soft_x;               /* values strictly between 0 and 255 along x */
    } CASES[] = {
        {"\"mask_blur\":0,\"inpainting_fill\":1", SD_FILL_ORIGINAL, 255, 0, false},
        {"\"mask_blur\":0,\"inpainting_fill\":2,\"inpainting_mask_invert\":1",
         SD_FILL_LATENT_NOISE, 0, 255, false},
        {"\"mask_blur\":0,\"mask_blur_x\":0,\"mask_blur_y\":0,\"inpainting_fill\":3,"
         "\"inpainting_mask_invert\":true,\"inpaint_full_res\":0",
         SD_FILL_LATENT_NOTHING, 0, 255, false},
        {"\"mask_blur_x\":3,\"mask_blur_y\":0,\"inpainting_fill\":1", SD_FILL_ORIGINAL, -1, -1,
         true},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        char fmt[512];
        snprintf(fmt, sizeof fmt, "{\"init_images\":[\"%%s\"],\"mask\":\"%%s\",%s%s}",
                 CASES[c].fields,
                 strstr(CASES[c].fields, "full_res") ? "" : ",\"inpaint_full_res\":false");
        ck_assert_msg(inpaint_run(fmt, mask, &t, &e) == STATUS_OK, "case %zu: %s", c, e.message);
        const struct gen_params *p = &t.req.params;
        ck_assert_int_eq(p->inpaint_fill, CASES[c].fill);
        ck_assert_int_eq(memcmp(t.i2i.resized.rgb, t.i2i.init.rgb, 72 * 80 * 3), 0);
        for (int y = 0; y < 80; y++) {
            const uint8_t *row = p->init_mask + y * 72;
            if (CASES[c].edge_left >= 0) {
                ck_assert_int_eq(row[29], CASES[c].edge_left);
                ck_assert_int_eq(row[30], CASES[c].edge_right);
            }
            ck_assert_int_eq(row[29] > 0 && row[29] < 255, CASES[c].soft_x);
            ck_assert_int_eq(row[0], CASES[c].edge_left == 0 ? 0 : 255);
            ck_assert_int_eq(row[71], CASES[c].edge_left == 0 ? 255 : 0);
            ck_assert_int_eq(row[29], p->init_mask[29]); /* no blur along y */
        }
        ck_assert_int_eq(t.req.n_warnings, 0);
        a1111_request_free(&t);
    }
    free(mask);
}
END_TEST

/* A 72×80 mask, 255 on [x1, x2) × [y1, y2), 0 elsewhere (base64 PNG). */
static char *box_mask_b64(int x1, int y1, int x2, int y2)
{
    uint8_t px[72 * 80];
    for (int i = 0; i < 72 * 80; i++)
        px[i] = i % 72 >= x1 && i % 72 < x2 && i / 72 >= y1 && i / 72 < y2 ? 255 : 0;
    return test_png_base64(px, 72, 80, 1);
}

/* "Only masked" (inpaint_full_res, true by default): the mask's bounding box grown by
 * the padding and to the request's aspect ratio (A1111's get_crop_region and
 * expand_crop_region, worked by hand below), the start image's region resized to the
 * request's size as the start image, the region's mask as init_mask, the pipeline's own
 * overlay off; a box at the bottom edge is shifted back inside; a blank mask runs as
 * img2img with a warning. */
START_TEST(test_img2img_only_masked)
{
    static const struct {
        int x1, y1, x2, y2, pad;
        int cx, cy, cw, ch; /* the region */
    } CASES[] = {
        /* 20×10 padded to 28×18 (ratio 1.56 > 72/80): height int(28/0.9 − 18) = 13 more,
         * 6 above, 7 below */
        {40, 50, 60, 60, 4, 36, 40, 28, 31},
        /* 20×6 (3.33): 16 more, 8 above, 8 below → 8 past the bottom: shifted up */
        {40, 74, 60, 80, 0, 40, 58, 20, 22},
        /* 10×60 (0.17 < 0.9): width int(60·0.9 − 10) = 44 more, 22 left → past the left
         * edge by 17: shifted right */
        {5, 10, 15, 70, 0, 0, 10, 54, 60},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        char *mask = box_mask_b64(CASES[c].x1, CASES[c].y1, CASES[c].x2, CASES[c].y2);
        char fmt[256];
        snprintf(fmt, sizeof fmt, "{\"init_images\":[\"%%s\"],\"mask\":\"%%s\",\"mask_blur\":0,"
                 "\"inpainting_fill\":1,\"inpaint_full_res_padding\":%d}", CASES[c].pad);
        struct a1111_request t;
        struct api_error e;
        ck_assert_msg(inpaint_run(fmt, mask, &t, &e) == STATUS_OK, "case %zu: %s", c, e.message);
        free(mask);
        const struct api_inpaint *in = &t.i2i.inpaint;
        const struct gen_params *p = &t.req.params;
        ck_assert_msg(in->crop_x == CASES[c].cx && in->crop_y == CASES[c].cy &&
                          in->crop_w == CASES[c].cw && in->crop_h == CASES[c].ch,
                      "case %zu: region %d,%d %dx%d, want %d,%d %dx%d", c, in->crop_x,
                      in->crop_y, in->crop_w, in->crop_h, CASES[c].cx, CASES[c].cy,
                      CASES[c].cw, CASES[c].ch);
        ck_assert(api_inpaint_cropped(in));
        ck_assert(p->inpaint_no_overlay);
        ck_assert_int_eq(p->width, 72);
        ck_assert_int_eq(p->height, 80);
        ck_assert_int_eq(t.req.n_warnings, 0);
        /* the start image: the region, resized */
        struct image_rgb8 crop, want;
        struct errbuf err;
        ck_assert_int_eq(api_inpaint_crop(in, &t.i2i.init, &crop, &err), STATUS_OK);
        ck_assert_int_eq(image_resize(&crop, 72, 80, &want, &err), STATUS_OK);
        ck_assert_int_eq(memcmp(p->init_image, want.rgb, 72 * 80 * 3), 0);
        image_rgb8_free(&crop);
        image_rgb8_free(&want);
        /* the mask: the box fills the region's middle, nothing at the region's corners
         * away from it */
        const int mx = ((CASES[c].x1 + CASES[c].x2) / 2 - in->crop_x) * 72 / in->crop_w;
        const int my = ((CASES[c].y1 + CASES[c].y2) / 2 - in->crop_y) * 80 / in->crop_h;
        ck_assert_int_eq(p->init_mask[my * 72 + mx], 255);
        a1111_request_free(&t);
    }
    /* blank: img2img, no mask */
    char *blank = box_mask_b64(0, 0, 0, 0);
    struct a1111_request t;
    struct api_error e;
    ck_assert_msg(inpaint_run("{\"init_images\":[\"%s\"],\"mask\":\"%s\",\"mask_blur\":0}",
                              blank, &t, &e) == STATUS_OK, "%s", e.message);
    free(blank);
    ck_assert_ptr_null(t.req.params.init_mask);
    ck_assert(!api_inpaint_cropped(&t.i2i.inpaint));
    ck_assert_int_eq(t.req.n_warnings, 1);
    ck_assert_ptr_nonnull(strstr(t.req.warnings[0], "blank"));
    a1111_request_free(&t);
}
END_TEST

/* The paste: outside the region and where the mask is 0 the start image's pixels, where
 * it is 255 the generated image resized to the region, between a blend. */
START_TEST(test_inpaint_paste)
{
    struct api_inpaint in = {.full_res = true, .crop_x = 10, .crop_y = 20, .crop_w = 30,
                             .crop_h = 40};
    struct image_rgb8 start = {.width = 60, .height = 70, .rgb = malloc(60 * 70 * 3)};
    in.overlay = (struct image_gray8){.width = 60, .height = 70, .v = calloc(60 * 70, 1)};
    ck_assert(start.rgb && in.overlay.v);
    for (int i = 0; i < 60 * 70 * 3; i++)
        start.rgb[i] = (uint8_t)(i * 13 % 256);
    for (int y = 30; y < 50; y++)
        for (int x = 15; x < 35; x++)
            in.overlay.v[y * 60 + x] = x < 25 ? 255 : 100;
    uint8_t gen[16 * 24 * 3];
    memset(gen, 200, sizeof gen); /* a flat image: any resize of it is 200 */
    struct image_rgb8 out;
    struct errbuf err;
    ck_assert_int_eq(api_inpaint_paste(&in, &start, gen, 16, 24, &out, &err), STATUS_OK);
    ck_assert_int_eq(out.width, 60);
    ck_assert_int_eq(out.height, 70);
    for (int i = 0; i < 60 * 70; i++)
        for (int k = 0; k < 3; k++) {
            const unsigned a = in.overlay.v[i], s = start.rgb[i * 3 + k];
            const unsigned want = a == 0 ? s : (200 * a + s * (255 - a) + 127) / 255;
            ck_assert_msg(out.rgb[i * 3 + k] == want, "pixel %d: %u, want %u", i,
                          out.rgb[i * 3 + k], want);
        }
    image_rgb8_free(&out);
    image_rgb8_free(&start);
    image_gray8_free(&in.overlay);
}
END_TEST

/* An RGBA mask with transparency: its alpha, binarized at 128, is the mask (A1111's
 * create_binary_mask), not its colour (white everywhere here). */
START_TEST(test_img2img_rgba_mask_alpha)
{
    uint8_t *px = malloc(72 * 80 * 4);
    ck_assert_ptr_nonnull(px);
    for (int i = 0; i < 72 * 80; i++) {
        memset(px + 4 * i, 255, 3);
        px[4 * i + 3] = i % 72 < 10 ? 200 : i % 72 < 20 ? 128 : 0;
    }
    char *mask = test_png_base64(px, 72, 80, 4);
    free(px);
    struct a1111_request t;
    struct api_error e;
    ck_assert_msg(inpaint_run("{\"init_images\":[\"%s\"],\"mask\":\"%s\",\"mask_blur\":0,"
                              "\"inpainting_fill\":1,\"inpaint_full_res\":false}", mask, &t,
                              &e) == STATUS_OK,
                  "%s", e.message);
    const uint8_t *m = t.req.params.init_mask;
    ck_assert_int_eq(m[5], 255);
    ck_assert_int_eq(m[15], 0); /* 128 is not above 128 */
    ck_assert_int_eq(m[50], 0);
    a1111_request_free(&t);
    free(mask);
}
END_TEST

/* Without a mask the inpainting fields are checked and change nothing. */
START_TEST(test_img2img_inpaint_fields_without_mask)
{
    struct a1111_request t;
    struct api_error e;
    ck_assert_msg(inpaint_run("{\"init_images\":[\"%s\"],\"mask\":null,\"mask_blur\":8,"
                              "\"inpainting_fill\":2,\"inpainting_mask_invert\":1,"
                              "\"inpaint_full_res\":true,\"inpaint_full_res_padding\":32,"
                              "\"latent_mask\":null}%s", "", &t, &e) == STATUS_OK,
                  "%s", e.message);
    ck_assert_ptr_null(t.req.params.init_mask);
    ck_assert_int_eq(t.req.params.inpaint_fill, SD_FILL_ORIGINAL);
    ck_assert_int_eq(t.req.n_warnings, 0);
    ck_assert_int_eq(memcmp(t.i2i.resized.rgb, t.i2i.init.rgb, 72 * 80 * 3), 0);
    a1111_request_free(&t);
    /* "" is no mask either (A1111's `if mask:`) */
    ck_assert_msg(inpaint_run("{\"init_images\":[\"%s\"],\"mask\":\"%s\"}", "", &t, &e) ==
                      STATUS_OK, "%s", e.message);
    ck_assert_ptr_null(t.req.params.init_mask);
    a1111_request_free(&t);
}
END_TEST

/* The response echoes the inpainting fields in parameters (the mask nulled, as A1111
 * does), and "Mask blur" in info's extra_generation_params and the infotexts. */
START_TEST(test_img2img_mask_response)
{
    char *mask = mask_b64(72, 80, 30);
    struct a1111_request t;
    struct api_error e;
    ck_assert_msg(inpaint_run("{\"init_images\":[\"%s\"],\"mask\":\"%s\",\"mask_blur\":6,"
                              "\"inpainting_fill\":3,\"inpaint_full_res_padding\":12}",
                              mask, &t, &e) == STATUS_OK, "%s", e.message);
    static const uint8_t png[] = {1};
    const struct api_image_out img = {.data = png, .len = 1, .seed = 3};
    const struct a1111_txt2img_response r = {.t = &t, .model_name = "tiny", .images = &img,
                                             .n_images = 1, .width = 72, .height = 80};
    char *out = NULL;
    size_t len = 0;
    struct errbuf err;
    ck_assert_int_eq(a1111_txt2img_response_write(&r, &out, &len, &err), STATUS_OK);
    json_t *root = load(out, len);
    json_t *params = json_object_get(root, "parameters");
    ck_assert(json_is_null(json_object_get(params, "mask")));
    ck_assert_int_eq(json_integer_value(json_object_get(params, "mask_blur")), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(params, "mask_blur_y")), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(params, "inpainting_fill")), 3);
    ck_assert(json_is_true(json_object_get(params, "inpaint_full_res")));
    ck_assert_int_eq(json_integer_value(json_object_get(params, "inpaint_full_res_padding")), 12);
    ck_assert_int_eq(json_integer_value(json_object_get(params, "inpainting_mask_invert")), 0);
    const char *info_s = json_string_value(json_object_get(root, "info"));
    json_t *info = load(info_s, strlen(info_s));
    json_t *extra = json_object_get(info, "extra_generation_params");
    ck_assert_int_eq(json_integer_value(json_object_get(extra, "Mask blur")), 6);
    const char *it = json_string_value(json_array_get(json_object_get(info, "infotexts"), 0));
    ck_assert_ptr_nonnull(strstr(it, ", Denoising strength: 0.75, Mask blur: 6"));
    json_decref(info);
    json_decref(root);
    free(out);
    a1111_request_free(&t);
    free(mask);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("a1111");
    TCase *bad = tcase_create("malformed");
    tcase_add_unchecked_fixture(bad, load_model, free_model);
    tcase_add_loop_test(bad, test_malformed, 0, (int)(sizeof BAD / sizeof BAD[0]));
    tcase_add_loop_test(bad, test_img2img_malformed, 0, (int)(sizeof BAD_I2I / sizeof BAD_I2I[0]));
    suite_add_tcase(s, bad);
    TCase *ok = tcase_create("valid");
    tcase_add_unchecked_fixture(ok, load_model, free_model);
    tcase_add_test(ok, test_defaults_from_model);
    tcase_add_test(ok, test_fields_applied);
    tcase_add_test(ok, test_sampler_names);
    tcase_add_test(ok, test_webuiapi_defaults_accepted);
    tcase_add_test(ok, test_options_parse);
    tcase_add_test(ok, test_img2img_defaults);
    tcase_add_test(ok, test_img2img_fields);
    tcase_add_test(ok, test_img2img_limits);
    tcase_add_test(ok, test_img2img_mask_applied);
    tcase_add_test(ok, test_img2img_mask_invert_blur_fill);
    tcase_add_test(ok, test_img2img_rgba_mask_alpha);
    tcase_add_test(ok, test_img2img_only_masked);
    tcase_add_test(ok, test_inpaint_paste);
    tcase_add_test(ok, test_img2img_inpaint_fields_without_mask);
    tcase_add_test(ok, test_img2img_mask_response);
    suite_add_tcase(s, ok);
    TCase *resp = tcase_create("responses");
    tcase_add_unchecked_fixture(resp, load_model, free_model);
    tcase_add_test(resp, test_txt2img_response);
    tcase_add_test(resp, test_lists_parse_back);
    tcase_add_test(resp, test_models_options_progress_error);
    suite_add_tcase(s, resp);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
