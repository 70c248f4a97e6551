/* tests/unit/test_openai_images.c — api/openai_images and api/openai_response.
 *
 * Malformed requests: one table, each row its own Check test (a loop test), asserting
 * the HTTP status AND the `param` named (and that the message starts with it) at the
 * stage that must reject it (parse, or resolve against the tiny SD1 fixture).
 * Valid requests: defaults filled from the model, every field applied, unknown and
 * null fields ignored, a prompt over 77 tokens → a warning, limits clamping the
 * model's default steps, model selection.
 * Responses: the images body parsed back with jansson — every field, base64 decoded
 * back to the bytes, escaping of warnings, the counted length; /v1/models; the
 * Server-Timing value.
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/base64.h"
#include "api/openai_images.h"
#include "api/openai_response.h"
#include "models/clip.h"
#include "tests/testutil.h"

static struct sd_model *g_model; /* sd1-tiny: 64x64 native, 2 CLIP layers, 77 tokens */

static void load_model(void)
{
    g_model = test_load_sd1_tiny();
}

static void free_model(void)
{
    sd_model_free(g_model);
    g_model = NULL;
}

/* --- malformed requests ---------------------------------------------------------------- */

enum stage { AT_PARSE, AT_RESOLVE };

struct bad_case {
    const char *body; /* "@name": built by make_body */
    enum stage stage;
    int http;
    const char *param; /* NULL: JSON null */
};

static const struct bad_case BAD[] = {
    /* prompt */
    {"{\"n\":1}", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":\"\"}", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":5}", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":null}", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":[\"a\"]}", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":true}", AT_PARSE, 400, "prompt"},
    {"@long_prompt", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":\"a\",\"negative_prompt\":5}", AT_PARSE, 400, "negative_prompt"},
    {"@long_negative", AT_PARSE, 400, "negative_prompt"},
    /* n */
    {"{\"prompt\":\"a\",\"n\":0}", AT_PARSE, 400, "n"},
    {"{\"prompt\":\"a\",\"n\":-1}", AT_PARSE, 400, "n"},
    {"{\"prompt\":\"a\",\"n\":9}", AT_PARSE, 400, "n"},
    {"{\"prompt\":\"a\",\"n\":\"2\"}", AT_PARSE, 400, "n"},
    {"{\"prompt\":\"a\",\"n\":2.5}", AT_PARSE, 400, "n"},
    {"{\"prompt\":\"a\",\"n\":-1.0}", AT_PARSE, 400, "n"},
    {"{\"prompt\":\"a\",\"n\":1e300}", AT_PARSE, 400, "n"},
    {"{\"prompt\":\"a\",\"seed\":1e19}", AT_PARSE, 400, "seed"},
    {"{\"prompt\":\"a\",\"n\":true}", AT_PARSE, 400, "n"},
    {"{\"prompt\":\"a\",\"n\":99999999999999999999}", AT_PARSE, 400, "n"},
    {"{\"prompt\":\"a\",\"n\":9223372036854775807}", AT_PARSE, 400, "n"},
    /* size */
    {"{\"prompt\":\"a\",\"size\":\"abc\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"512\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"512x\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"x512\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"513x512\"}", AT_RESOLVE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"512x100\"}", AT_RESOLVE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"0x0\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"99999x512\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"999999x512\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"32x32\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"4096x512\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"512x4096\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":512}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"512x512x\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\" 512x512\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"-64x64\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"512X512\"}", AT_PARSE, 400, "size"},
    {"{\"prompt\":\"a\",\"size\":\"+512x512\"}", AT_PARSE, 400, "size"},
    /* formats */
    {"{\"prompt\":\"a\",\"response_format\":\"png\"}", AT_PARSE, 400, "response_format"},
    {"{\"prompt\":\"a\",\"response_format\":1}", AT_PARSE, 400, "response_format"},
    {"{\"prompt\":\"a\",\"output_format\":\"gif\"}", AT_PARSE, 400, "output_format"},
    {"{\"prompt\":\"a\",\"output_format\":\"JPEG\"}", AT_PARSE, 400, "output_format"},
    {"{\"prompt\":\"a\",\"output_format\":[\"png\"]}", AT_PARSE, 400, "output_format"},
    {"{\"prompt\":\"a\",\"output_compression\":-1}", AT_PARSE, 400, "output_compression"},
    {"{\"prompt\":\"a\",\"output_compression\":101}", AT_PARSE, 400, "output_compression"},
    {"{\"prompt\":\"a\",\"output_compression\":\"80\"}", AT_PARSE, 400, "output_compression"},
    {"{\"prompt\":\"a\",\"output_compression\":80.5}", AT_PARSE, 400, "output_compression"},
    /* steps, guidance */
    {"{\"prompt\":\"a\",\"steps\":0}", AT_PARSE, 400, "steps"},
    {"{\"prompt\":\"a\",\"steps\":151}", AT_PARSE, 400, "steps"},
    {"{\"prompt\":\"a\",\"steps\":\"20\"}", AT_PARSE, 400, "steps"},
    {"{\"prompt\":\"a\",\"guidance_scale\":-1}", AT_PARSE, 400, "guidance_scale"},
    {"{\"prompt\":\"a\",\"guidance_scale\":101}", AT_PARSE, 400, "guidance_scale"},
    {"{\"prompt\":\"a\",\"guidance_scale\":\"7.5\"}", AT_PARSE, 400, "guidance_scale"},
    {"{\"prompt\":\"a\",\"guidance_scale\":\"NaN\"}", AT_PARSE, 400, "guidance_scale"},
    {"{\"prompt\":\"a\",\"guidance_scale\":NaN}", AT_PARSE, 400, "guidance_scale"},
    {"{\"prompt\":\"a\",\"guidance_scale\":Infinity}", AT_PARSE, 400, "guidance_scale"},
    {"{\"prompt\":\"a\",\"guidance_scale\":1e999}", AT_PARSE, 400, "guidance_scale"},
    {"{\"prompt\":\"a\",\"guidance_scale\":false}", AT_PARSE, 400, "guidance_scale"},
    /* seed */
    {"{\"prompt\":\"a\",\"seed\":-1}", AT_PARSE, 400, "seed"},
    {"{\"prompt\":\"a\",\"seed\":\"42\"}", AT_PARSE, 400, "seed"},
    {"{\"prompt\":\"a\",\"seed\":18446744073709551616}", AT_PARSE, 400, "seed"},
    {"{\"prompt\":\"a\",\"seed\":18446744073709551615}", AT_PARSE, 400, "seed"},
    {"{\"prompt\":\"a\",\"seed\":1.5}", AT_PARSE, 400, "seed"},
    {"{\"prompt\":\"a\",\"seed\":9223372036854775807,\"n\":2}", AT_PARSE, 400, "seed"},
    /* sampler, scheduler, clip_skip */
    {"{\"prompt\":\"a\",\"sampler\":\"foo\"}", AT_PARSE, 400, "sampler"},
    {"{\"prompt\":\"a\",\"sampler\":3}", AT_PARSE, 400, "sampler"},
    {"{\"prompt\":\"a\",\"scheduler\":\"bogus\"}", AT_PARSE, 400, "scheduler"},
    {"{\"prompt\":\"a\",\"scheduler\":{}}", AT_PARSE, 400, "scheduler"},
    {"{\"prompt\":\"a\",\"sampler\":\"ddim\",\"scheduler\":\"karras\"}", AT_RESOLVE, 400,
     "scheduler"},
    {"{\"prompt\":\"a\",\"clip_skip\":2}", AT_RESOLVE, 400, "clip_skip"},
    {"{\"prompt\":\"a\",\"clip_skip\":-1}", AT_PARSE, 400, "clip_skip"},
    {"{\"prompt\":\"a\",\"clip_skip\":4294967296}", AT_PARSE, 400, "clip_skip"},
    /* deadline and priority (the scheduler's) */
    {"{\"prompt\":\"a\",\"deadline_ms\":0}", AT_PARSE, 400, "deadline_ms"},
    {"{\"prompt\":\"a\",\"deadline_ms\":86400001}", AT_PARSE, 400, "deadline_ms"},
    {"{\"prompt\":\"a\",\"deadline_ms\":\"500\"}", AT_PARSE, 400, "deadline_ms"},
    {"{\"prompt\":\"a\",\"deadline_ms\":1.5}", AT_PARSE, 400, "deadline_ms"},
    {"{\"prompt\":\"a\",\"priority\":101}", AT_PARSE, 400, "priority"},
    {"{\"prompt\":\"a\",\"priority\":-101}", AT_PARSE, 400, "priority"},
    {"{\"prompt\":\"a\",\"priority\":true}", AT_PARSE, 400, "priority"},
    /* OpenAI fields */
    {"{\"prompt\":\"a\",\"model\":5}", AT_PARSE, 400, "model"},
    {"{\"prompt\":\"a\",\"model\":\"\"}", AT_PARSE, 400, "model"},
    {"{\"prompt\":\"a\",\"user\":5}", AT_PARSE, 400, "user"},
    {"@long_user", AT_PARSE, 400, "user"},
    {"{\"prompt\":\"a\",\"quality\":\"ultra\"}", AT_PARSE, 400, "quality"},
    {"{\"prompt\":\"a\",\"style\":\"bad\"}", AT_PARSE, 400, "style"},
    {"{\"prompt\":\"a\",\"stream\":true}", AT_PARSE, 400, "stream"},
    {"{\"prompt\":\"a\",\"stream\":\"no\"}", AT_PARSE, 400, "stream"},
    /* the body as JSON */
    {"{\"prompt\":\"a\",\"prompt\":\"b\"}", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":\"a\",\"n\":1,\"n\":2}", AT_PARSE, 400, "n"},
    {"hello", AT_PARSE, 400, NULL},
    {"[{\"prompt\":\"a\"}]", AT_PARSE, 400, NULL},
    {"", AT_PARSE, 400, NULL},
    {"   ", AT_PARSE, 400, NULL},
    {"null", AT_PARSE, 400, NULL},
    {"\"prompt\"", AT_PARSE, 400, NULL},
    {"{\"prompt\":\"a\"} x", AT_PARSE, 400, NULL},
    {"{\"prompt\":\"a\"}{}", AT_PARSE, 400, NULL},
    {"{\"prompt\":\"a\"", AT_PARSE, 400, NULL},
    {"{\"prompt\":\"a\",}", AT_PARSE, 400, NULL},
    {"{'prompt':'a'}", AT_PARSE, 400, NULL},
    {"\xEF\xBB\xBF{\"prompt\":\"a\"}", AT_PARSE, 400, NULL}, /* UTF-8 BOM */
    {"@depth_top", AT_PARSE, 400, NULL},
    {"@depth_field", AT_PARSE, 400, "x"},
    {"{\"prompt\":\"a \xff b\"}", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":\"\xc0\xaf\"}", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":\"\\ud800\"}", AT_PARSE, 400, "prompt"},
    {"{\"pr\xffompt\":\"a\"}", AT_PARSE, 400, NULL},
    {"{\"prompt\":\"a\\u0000b\"}", AT_PARSE, 400, "prompt"},
    {"@raw_nul", AT_PARSE, 400, "prompt"},
    {"{\"prompt\":\"a\tb\"}", AT_PARSE, 400, "prompt"}, /* raw control character */
    {"{\"prompt\":\"a\",\"extra\":1e400}", AT_PARSE, 400, "extra"},
};

/* Bodies too long or odd for a literal; malloc'ed, length in *len. */
static char *make_body(const char *name, size_t *len)
{
    size_t cap = 20000;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    size_t n = 0;
    if (strcmp(name, "@long_prompt") == 0 || strcmp(name, "@long_negative") == 0) {
        const bool neg = name[6] == 'n';
        n = (size_t)sprintf(b, neg ? "{\"prompt\":\"a\",\"negative_prompt\":\"" : "{\"prompt\":\"");
        for (int i = 0; i < 4001; i++) /* 4001 characters of 2 bytes: counted as characters */
            n += (size_t)sprintf(b + n, "%s", i % 2 ? "é" : "a");
        n += (size_t)sprintf(b + n, "\"}");
    } else if (strcmp(name, "@long_user") == 0) {
        n = (size_t)sprintf(b, "{\"prompt\":\"a\",\"user\":\"");
        for (int i = 0; i < API_USER_MAX_CHARS + 1; i++)
            b[n++] = 'u';
        n += (size_t)sprintf(b + n, "\"}");
    } else if (strcmp(name, "@depth_top") == 0 || strcmp(name, "@depth_field") == 0) {
        if (name[7] == 'f')
            n = (size_t)sprintf(b, "{\"prompt\":\"a\",\"x\":");
        for (int i = 0; i < 5000; i++)
            b[n++] = '[';
        for (int i = 0; i < 5000; i++)
            b[n++] = ']';
        if (name[7] == 'f')
            b[n++] = '}';
    } else if (strcmp(name, "@raw_nul") == 0) {
        static const char body[] = "{\"prompt\":\"a\0b\"}";
        n = sizeof body - 1;
        memcpy(b, body, n);
    } else {
        ck_abort_msg("no body %s", name);
    }
    ck_assert_uint_lt(n, cap);
    *len = n;
    return b;
}

START_TEST(test_malformed)
{
    const struct bad_case *c = &BAD[_i];
    ck_assert_ptr_nonnull(g_model);
    size_t len = strlen(c->body);
    char *owned = c->body[0] == '@' ? make_body(c->body, &len) : NULL;
    const char *body = owned ? owned : c->body;
    struct api_limits lim;
    api_limits_default(&lim);
    struct openai_image_request req;
    struct api_error e;
    memset(&e, 0, sizeof e);
    enum status s = openai_images_parse(body, len, &lim, &req, &e);
    if (c->stage == AT_PARSE) {
        ck_assert_msg(s != STATUS_OK, "row %d (%.60s): parse accepted it", _i, body);
    } else {
        ck_assert_msg(s == STATUS_OK, "row %d (%.60s): parse failed: %s", _i, body, e.message);
        s = openai_images_resolve(g_model, &lim, 7, &req, &e);
        ck_assert_msg(s != STATUS_OK, "row %d (%.60s): resolve accepted it", _i, body);
    }
    ck_assert_msg(e.http == c->http, "row %d (%.60s): http %d, want %d (%s)", _i, body, e.http,
                  c->http, e.message);
    ck_assert_str_eq(e.type, "invalid_request_error");
    ck_assert_msg(strcmp(e.param, c->param ? c->param : "") == 0,
                  "row %d (%.60s): param \"%s\", want \"%s\" (%s)", _i, body, e.param,
                  c->param ? c->param : "(null)", e.message);
    if (c->param) { /* the message starts with the field */
        const size_t k = strlen(c->param);
        ck_assert_msg(strncmp(e.message, c->param, k) == 0 && e.message[k] == ':',
                      "row %d: message \"%s\" does not start with \"%s:\"", _i, e.message,
                      c->param);
    }
    ck_assert_uint_gt(strlen(e.message), 0);
    /* the error body is valid JSON naming the same param */
    size_t blen = 0;
    char *eb = api_error_body(&e, &blen);
    json_error_t je;
    json_t *root = json_loadb(eb, blen, JSON_REJECT_DUPLICATES, &je);
    ck_assert_msg(root != NULL, "row %d: error body %s: %s", _i, eb, je.text);
    const json_t *param = json_object_get(json_object_get(root, "error"), "param");
    ck_assert(c->param ? json_is_string(param) : json_is_null(param));
    json_decref(root);
    free(eb);
    openai_image_request_free(&req);
    free(owned);
}
END_TEST

/* --- valid requests -------------------------------------------------------------------- */

/* parse + resolve of a literal that must succeed. */
static void accept(const char *body, const struct api_limits *lim, uint64_t random_seed,
                   struct openai_image_request *req)
{
    ck_assert_ptr_nonnull(g_model);
    struct api_error e;
    enum status s = openai_images_parse(body, strlen(body), lim, req, &e);
    ck_assert_msg(s == STATUS_OK, "%s: parse: %s", body, e.message);
    s = openai_images_resolve(g_model, lim, random_seed, req, &e);
    ck_assert_msg(s == STATUS_OK, "%s: resolve: %s", body, e.message);
}

START_TEST(test_defaults_from_model)
{
    struct api_limits lim;
    api_limits_default(&lim);
    struct openai_image_request req;
    accept("{\"prompt\":\"a red cube\"}", &lim, 0xDEADBEEFCAFEull, &req);
    const struct gen_params *p = &req.params;
    ck_assert_str_eq(p->prompt, "a red cube");
    ck_assert_str_eq(p->negative_prompt, "");
    ck_assert_int_eq(p->width, g_model->native_width);
    ck_assert_int_eq(p->height, g_model->native_height);
    ck_assert_int_eq(p->width, 64);
    ck_assert_int_eq(p->steps, g_model->default_steps);
    ck_assert(p->guidance == g_model->default_guidance);
    ck_assert_int_eq(p->sampler, g_model->default_sampler);
    ck_assert_int_eq(p->scheduler, SD_SCHEDULER_DEFAULT);
    ck_assert_int_eq(p->clip_skip, 0);
    ck_assert_int_eq(p->n, 1);
    ck_assert_int_eq(req.deadline_ms, 0); /* none */
    ck_assert_int_eq(req.priority, 0);
    ck_assert(p->seed == 0xDEADBEEFCAFEull); /* the caller's random seed (< 2^53: as is) */
    ck_assert(req.seed_random);
    ck_assert_int_eq(req.output_format, IMAGE_PNG);
    ck_assert_int_eq(req.quality, API_DEFAULT_QUALITY);
    ck_assert_int_eq(req.response_format, API_RESPONSE_B64_JSON);
    ck_assert_ptr_null(req.model);
    ck_assert_ptr_null(req.user);
    ck_assert_int_eq(req.n_warnings, 0);
    openai_image_request_free(&req);
}
END_TEST

START_TEST(test_every_field_applied)
{
    struct api_limits lim;
    api_limits_default(&lim);
    struct openai_image_request req;
    accept("{\"prompt\":\"a café 🐶\",\"negative_prompt\":\"blurry\",\"n\":3,"
           "\"size\":\"128x64\",\"response_format\":\"url\",\"output_format\":\"webp\","
           "\"output_compression\":0,\"model\":\"sd1-tiny\",\"user\":\"u-1\","
           "\"quality\":\"hd\",\"style\":\"vivid\",\"stream\":false,\"steps\":12,"
           "\"guidance_scale\":4,\"seed\":9223372036854775805,\"sampler\":\"euler_a\","
           "\"scheduler\":\"trailing\",\"clip_skip\":1,\"deadline_ms\":86400000,"
           "\"priority\":-100}",
           &lim, 5, &req);
    const struct gen_params *p = &req.params;
    ck_assert_str_eq(p->prompt, "a café 🐶");
    ck_assert_str_eq(p->negative_prompt, "blurry");
    ck_assert_int_eq(p->n, 3);
    ck_assert_int_eq(p->width, 128);
    ck_assert_int_eq(p->height, 64);
    ck_assert_int_eq(req.response_format, API_RESPONSE_URL);
    ck_assert_int_eq(req.output_format, IMAGE_WEBP);
    ck_assert_int_eq(req.quality, 0);
    ck_assert_str_eq(req.model, "sd1-tiny");
    ck_assert_str_eq(req.user, "u-1");
    ck_assert_int_eq(p->steps, 12);
    ck_assert(p->guidance == 4.0); /* a JSON integer is a number */
    ck_assert(p->seed == 9223372036854775805ull); /* + 2 = 2^63 − 1 */
    ck_assert(!req.seed_random);
    ck_assert_int_eq(p->sampler, SAMPLER_EULER_A);
    ck_assert_int_eq(p->scheduler, SD_SCHEDULER_TRAILING);
    ck_assert_int_eq(p->clip_skip, 1);
    ck_assert_int_eq(req.deadline_ms, 86400000);
    ck_assert_int_eq(req.priority, -100);
    openai_image_request_free(&req);

    accept("{\"prompt\":\"x\",\"output_format\":\"jpeg\",\"guidance_scale\":7.25,"
           "\"sampler\":\"DPM++ 2M Karras\",\"scheduler\":\"karras\",\"size\":\"auto\","
           "\"seed\":0}",
           &lim, 5, &req);
    ck_assert_int_eq(req.output_format, IMAGE_JPEG);
    ck_assert(req.params.guidance == 7.25);
    ck_assert_int_eq(req.params.sampler, SAMPLER_DPMPP_2M_KARRAS);
    ck_assert_int_eq(req.params.width, 64);
    ck_assert(req.params.seed == 0 && !req.seed_random);
    openai_image_request_free(&req);

    /* JSON Schema's integer: a number with no fractional part; user counted in code points */
    char body[1200];
    int k = snprintf(body, sizeof body, "{\"prompt\":\"x\",\"n\":2.0,\"steps\":3e0,\"user\":\"");
    for (int i = 0; i < API_USER_MAX_CHARS; i++)
        k += snprintf(body + k, sizeof body - (size_t)k, "é");
    snprintf(body + k, sizeof body - (size_t)k, "\"}");
    accept(body, &lim, 5, &req);
    ck_assert_int_eq(req.params.n, 2);
    ck_assert_int_eq(req.params.steps, 3);
    ck_assert_uint_eq(strlen(req.user), 2 * API_USER_MAX_CHARS);
    openai_image_request_free(&req);
    accept("{\"prompt\":\"x\",\"seed\":1e18}", &lim, 5, &req);
    ck_assert(req.params.seed == 1000000000000000000ull && !req.seed_random);
    openai_image_request_free(&req);
}
END_TEST

START_TEST(test_seed_ranges)
{
    struct api_limits lim;
    api_limits_default(&lim);
    struct openai_image_request req;
    accept("{\"prompt\":\"a\"}", &lim, UINT64_MAX, &req); /* random: low 53 bits */
    ck_assert(req.params.seed == API_RANDOM_SEED_MASK && req.seed_random);
    openai_image_request_free(&req);
    accept("{\"prompt\":\"a\",\"seed\":9223372036854775806,\"n\":2}", &lim, 0, &req);
    ck_assert(req.params.seed == 9223372036854775806ull); /* seed + 1 = 2^63 − 1: fits */
    openai_image_request_free(&req);
}
END_TEST

START_TEST(test_unknown_and_null_fields_ignored)
{
    struct api_limits lim;
    api_limits_default(&lim);
    struct openai_image_request req;
    accept("{\"foo\":{\"bar\":[1,2,{\"baz\":null}]},\"prompt\":\"a\",\"background\":"
           "\"transparent\",\"moderation\":\"low\",\"partial_images\":2,\"n\":null,"
           "\"seed\":null,\"size\":null,\"user\":null,\"model\":null,\"Prompt\":5}",
           &lim, 11, &req);
    ck_assert_str_eq(req.params.prompt, "a");
    ck_assert_int_eq(req.params.n, 1);
    ck_assert(req.params.seed == 11 && req.seed_random);
    ck_assert_ptr_null(req.model);
    ck_assert_int_eq(req.n_warnings, 0);
    openai_image_request_free(&req);
    /* integers beyond 64 bits in ignored fields (Python's json writes them) do not
     * make the body unreadable; the read fields keep their exact 64-bit values, and
     * digits inside strings are untouched */
    accept("{\"x\":[-15869832131938678210560,{\"y\":922649505793620223933284352}],"
           "\"prompt\":\"99999999999999999999999 \\\"-1\",\"seed\":9223372036854775807}",
           &lim, 0, &req);
    ck_assert_str_eq(req.params.prompt, "99999999999999999999999 \"-1");
    ck_assert(req.params.seed == 9223372036854775807ull);
    openai_image_request_free(&req);
}
END_TEST

START_TEST(test_long_prompt_warns)
{
    struct api_limits lim;
    api_limits_default(&lim);
    char body[4096];
    size_t n = (size_t)sprintf(body, "{\"prompt\":\"");
    for (int i = 0; i < 100; i++) /* 100 words → 102 tokens with start and end */
        n += (size_t)sprintf(body + n, "cat ");
    sprintf(body + n, "\",\"negative_prompt\":\"short\"}");
    struct openai_image_request req;
    accept(body, &lim, 1, &req);
    ck_assert_int_eq(req.n_warnings, 1);
    ck_assert_msg(strncmp(req.warnings[0], "prompt: ", 8) == 0, "%s", req.warnings[0]);
    ck_assert_ptr_nonnull(strstr(req.warnings[0], "truncated to 77"));
    /* the token count comes from the model's tokenizer */
    struct tokenizer_result info;
    int32_t ids[77];
    ck_assert_int_eq(tokenizer_encode(g_model->tokenizer, req.params.prompt, ids, &info, NULL),
                     STATUS_OK);
    char want[32];
    snprintf(want, sizeof want, "%d tokens", info.n_tokens);
    ck_assert_ptr_nonnull(strstr(req.warnings[0], want));
    ck_assert_int_gt(info.n_tokens, 77);
    openai_image_request_free(&req);

    /* 75 tokens of text + start + end = 77 fits: no warning */
    n = (size_t)sprintf(body, "{\"prompt\":\"");
    for (int i = 0; i < 75; i++)
        n += (size_t)sprintf(body + n, "cat ");
    sprintf(body + n, "\"}");
    accept(body, &lim, 1, &req);
    ck_assert_int_eq(req.n_warnings, 0);
    openai_image_request_free(&req);
}
END_TEST

START_TEST(test_limits)
{
    struct api_limits lim;
    api_limits_default(&lim);
    ck_assert_int_eq(api_limits_check(&lim, NULL), STATUS_OK);
    lim.max_steps = 10; /* below the model's default (50): clamped, with a warning */
    struct openai_image_request req;
    accept("{\"prompt\":\"a\"}", &lim, 1, &req);
    ck_assert_int_gt(g_model->default_steps, 10);
    ck_assert_int_eq(req.params.steps, 10);
    ck_assert_int_eq(req.n_warnings, 1);
    ck_assert(strncmp(req.warnings[0], "steps: ", 7) == 0);
    openai_image_request_free(&req);
    /* the native size outside the limits is an error naming size */
    api_limits_default(&lim);
    lim.min_side = 128;
    struct api_error e;
    ck_assert_int_eq(openai_images_parse("{\"prompt\":\"a\"}", 14, &lim, &req, &e), STATUS_OK);
    ck_assert_int_ne(openai_images_resolve(g_model, &lim, 1, &req, &e), STATUS_OK);
    ck_assert_str_eq(e.param, "size");
    openai_image_request_free(&req);
    /* max_n and max prompt length follow the limits */
    lim.max_n = 2;
    lim.max_prompt_chars = 3;
    ck_assert_int_ne(openai_images_parse("{\"prompt\":\"a\",\"n\":3}", 20, &lim, &req, &e),
                     STATUS_OK);
    ck_assert_str_eq(e.param, "n");
    ck_assert_int_ne(openai_images_parse("{\"prompt\":\"abcd\"}", 17, &lim, &req, &e), STATUS_OK);
    ck_assert_str_eq(e.param, "prompt");
    const char *three = "{\"prompt\":\"éé🐶\"}"; /* 3 characters in 8 bytes */
    ck_assert_int_eq(openai_images_parse(three, strlen(three), &lim, &req, &e), STATUS_OK);
    openai_image_request_free(&req);
    /* bad limits name the setting */
    struct errbuf err;
    api_limits_default(&lim);
    lim.max_width = 4096;
    ck_assert_int_eq(api_limits_check(&lim, &err), STATUS_INVALID_ARGUMENT);
    ck_assert(strncmp(err.msg, "max_width:", 10) == 0);
    api_limits_default(&lim);
    lim.min_side = 4;
    ck_assert_int_eq(api_limits_check(&lim, &err), STATUS_INVALID_ARGUMENT);
    ck_assert(strncmp(err.msg, "min_side:", 9) == 0);
}
END_TEST

START_TEST(test_model_select)
{
    const char *names[] = {"sd15", "turbo"};
    struct api_error e;
    ck_assert_int_eq(api_model_select(NULL, names, 2, &e), 0);
    ck_assert_int_eq(api_model_select("turbo", names, 2, &e), 1);
    ck_assert_int_eq(api_model_select("dall-e-3", names, 2, &e), -1);
    ck_assert_int_eq(e.http, 404);
    ck_assert_str_eq(e.param, "model");
    ck_assert_str_eq(e.code, "model_not_found");
    ck_assert_str_eq(e.type, "invalid_request_error");
    ck_assert(strncmp(e.message, "model:", 6) == 0);
    ck_assert_int_eq(api_model_select("SD15", names, 2, &e), -1); /* exact, case-sensitive */
}
END_TEST

START_TEST(test_free_is_safe)
{
    struct openai_image_request req;
    memset(&req, 0, sizeof req);
    openai_image_request_free(&req);
    openai_image_request_free(NULL);
    struct api_limits lim;
    api_limits_default(&lim);
    struct api_error e;
    ck_assert_int_ne(openai_images_parse(NULL, 0, &lim, &req, &e), STATUS_OK);
    ck_assert_int_eq(e.http, 400);
    openai_image_request_free(&req);
}
END_TEST

/* Random mutations of valid bodies (bytes flipped, inserted, deleted, truncated): the
 * parser never crashes (ASan/UBSan builds run this too), answers OK or a 400 with a
 * message, and whatever it accepts resolves to OK or a 400. */
START_TEST(test_mutations_never_crash)
{
    static const char *const seeds[] = {
        "{\"prompt\":\"a cat\",\"n\":2,\"size\":\"64x64\",\"seed\":5,\"steps\":3}",
        "{\"prompt\":\"é 🐶\",\"negative_prompt\":\"x\",\"guidance_scale\":7.5,"
        "\"sampler\":\"euler_a\",\"scheduler\":\"karras\",\"clip_skip\":1}",
        "{\"prompt\":\"a\",\"output_format\":\"webp\",\"output_compression\":80,"
        "\"response_format\":\"url\",\"user\":\"u\",\"x\":[1,{\"y\":null}]}",
    };
    static const char alphabet[] = "{}[]\":,0123456789.-+eE\\ntrufalsx \x00\x7f\xc3\xa9\xff";
    struct api_limits lim;
    api_limits_default(&lim);
    struct test_rng rng = test_rng_make(42);
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 6000; iter++) {
        char buf[512];
        const char *seed = seeds[iter % 3];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        const int edits = test_rng_int(&rng, 1, 4);
        for (int k = 0; k < edits && n > 0; k++) {
            const size_t at = (size_t)test_rng_int(&rng, 0, (int)n - 1);
            const char c = alphabet[test_rng_int(&rng, 0, (int)sizeof alphabet - 2)];
            switch (test_rng_int(&rng, 0, 3)) {
            case 0: buf[at] = c; break;                                  /* replace */
            case 1:                                                      /* insert */
                if (n + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = c;
                    n++;
                }
                break;
            case 2: memmove(buf + at, buf + at + 1, n - at - 1); n--; break; /* delete */
            default: n = at; break;                                      /* truncate */
            }
        }
        struct openai_image_request req;
        struct api_error e;
        memset(&e, 0, sizeof e);
        enum status s = openai_images_parse(buf, n, &lim, &req, &e);
        if (s == STATUS_OK) {
            s = openai_images_resolve(g_model, &lim, 9, &req, &e);
            ck_assert_msg(s == STATUS_OK || e.http == 400, "%.*s: resolve %d %s", (int)n, buf,
                          e.http, e.message);
        } else {
            ck_assert_msg(e.http == 400 && e.message[0], "%.*s: parse %d", (int)n, buf, e.http);
        }
        s == STATUS_OK ? accepted++ : rejected++;
        openai_image_request_free(&req);
    }
    ck_assert_int_gt(accepted, 100); /* the mutations exercise both paths */
    ck_assert_int_gt(rejected, 1000);
}
END_TEST

/* --- responses ------------------------------------------------------------------------- */

static json_t *load_json(const char *body, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    ck_assert_msg(root != NULL, "%.200s: %s", body, je.text);
    ck_assert_uint_eq(strlen(body), len);
    return root;
}

START_TEST(test_images_response_b64)
{
    enum { N = 5 };
    static const size_t lens[N] = {0, 1, 2, 3, 10007};
    uint8_t *bytes[N];
    struct api_image_out imgs[N];
    struct test_rng rng = test_rng_make(3);
    for (int i = 0; i < N; i++) {
        bytes[i] = malloc(lens[i] + 1);
        for (size_t k = 0; k < lens[i]; k++)
            bytes[i][k] = (uint8_t)test_rng_u64(&rng);
        imgs[i] = (struct api_image_out){bytes[i], lens[i], NULL,
                                         (i == 4 ? INT64_MAX : 1000 + (uint64_t)i)};
    }
    const int batch[] = {2, 4, 4, 1};
    const char *warnings[] = {"prompt: \"quoted\" \\ back\nslash\x01 é 🐶", "second"};
    struct api_images_response r = {
        .created = 1764300000, .output_format = IMAGE_WEBP, .width = 640, .height = 384,
        .response_format = API_RESPONSE_B64_JSON, .images = imgs, .n_images = N,
        .metrics = {.queue_ms = 1.25, .text_encode_ms = 2.5, .denoise_ms = 1000.125,
                    .vae_decode_ms = 30, .image_encode_ms = 4.0626, .total_ms = 1040.5,
                    .steps_per_second = 19.99, .batch_sizes = batch, .n_batch_sizes = 4},
        .warnings = warnings, .n_warnings = 2};
    char *out = NULL;
    size_t len = 0;
    struct errbuf err;
    ck_assert_int_eq(api_images_response_write(&r, &out, &len, &err), STATUS_OK);
    ck_assert_uint_eq(len, api_images_response_length(&r));
    json_t *root = load_json(out, len);
    ck_assert_uint_eq(json_object_size(root), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "created")), 1764300000);
    ck_assert_str_eq(json_string_value(json_object_get(root, "output_format")), "webp");
    ck_assert_str_eq(json_string_value(json_object_get(root, "size")), "640x384");
    const json_t *data = json_object_get(root, "data");
    ck_assert_uint_eq(json_array_size(data), N);
    for (int i = 0; i < N; i++) {
        const json_t *d = json_array_get(data, i);
        ck_assert_uint_eq(json_object_size(d), 2);
        const json_t *b64 = json_object_get(d, "b64_json");
        ck_assert(json_is_string(b64));
        uint8_t *back = malloc(lens[i] + 3);
        size_t blen = 0;
        ck_assert(base64_decode(json_string_value(b64), json_string_length(b64), back, &blen));
        ck_assert_uint_eq(blen, lens[i]);
        ck_assert(memcmp(back, bytes[i], lens[i]) == 0);
        free(back);
        ck_assert_int_eq(json_integer_value(json_object_get(d, "seed")),
                         i == 4 ? INT64_MAX : 1000 + i);
    }
    const json_t *m = json_object_get(root, "metrics");
    ck_assert_uint_eq(json_object_size(m), 9);
    ck_assert(fabs(json_number_value(json_object_get(m, "queue_ms")) - 1.25) < 1e-9);
    ck_assert(fabs(json_number_value(json_object_get(m, "text_encode_ms")) - 2.5) < 1e-9);
    ck_assert(fabs(json_number_value(json_object_get(m, "denoise_ms")) - 1000.125) < 1e-9);
    ck_assert(fabs(json_number_value(json_object_get(m, "vae_decode_ms")) - 30) < 1e-9);
    ck_assert(fabs(json_number_value(json_object_get(m, "image_encode_ms")) - 4.063) < 1e-9);
    ck_assert(fabs(json_number_value(json_object_get(m, "total_ms")) - 1040.5) < 1e-9);
    ck_assert(fabs(json_number_value(json_object_get(m, "steps_per_second")) - 19.99) < 1e-9);
    const json_t *bs = json_object_get(m, "batch_sizes");
    ck_assert_uint_eq(json_array_size(bs), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(json_integer_value(json_array_get(bs, i)), batch[i]);
    ck_assert_uint_eq(json_array_size(json_object_get(m, "seeds")), N);
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(m, "seeds"), 2)), 1002);
    ck_assert_ptr_nonnull(strstr(out, "\"seeds\":[1000,1001,1002,1003,9223372036854775807]"));
    const json_t *w = json_object_get(root, "warnings");
    ck_assert_uint_eq(json_array_size(w), 2);
    ck_assert_str_eq(json_string_value(json_array_get(w, 0)), warnings[0]);
    ck_assert_str_eq(json_string_value(json_array_get(w, 1)), warnings[1]);
    json_decref(root);
    free(out);
    for (int i = 0; i < N; i++)
        free(bytes[i]);
}
END_TEST

START_TEST(test_images_response_url_no_warnings)
{
    struct api_image_out imgs[2] = {{NULL, 0, "http://h/v1/images/ab\"c/0", 7},
                                    {NULL, 0, "http://h/v1/images/abc/1", 8}};
    struct api_images_response r = {.created = 5, .output_format = IMAGE_JPEG, .width = 64,
                                     .height = 64, .response_format = API_RESPONSE_URL,
                                     .images = imgs, .n_images = 2,
                                     .metrics = {.queue_ms = -3, .total_ms = NAN}};
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(api_images_response_write(&r, &out, &len, NULL), STATUS_OK);
    json_t *root = load_json(out, len);
    ck_assert_ptr_null(json_object_get(root, "warnings")); /* only when there are some */
    const json_t *d0 = json_array_get(json_object_get(root, "data"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(d0, "url")), imgs[0].url);
    ck_assert_ptr_null(json_object_get(d0, "b64_json"));
    ck_assert_str_eq(json_string_value(json_object_get(root, "output_format")), "jpeg");
    const json_t *m = json_object_get(root, "metrics");
    ck_assert(json_number_value(json_object_get(m, "queue_ms")) == 0.0);  /* negative → 0 */
    ck_assert(json_number_value(json_object_get(m, "total_ms")) == 0.0);  /* NaN → 0 */
    ck_assert_uint_eq(json_array_size(json_object_get(m, "batch_sizes")), 0);
    json_decref(root);
    free(out);
    /* bad inputs are errors, not crashes */
    struct errbuf err;
    r.n_images = 0;
    ck_assert_int_eq(api_images_response_write(&r, &out, &len, &err), STATUS_INVALID_ARGUMENT);
    r.n_images = 2;
    imgs[1].url = NULL;
    ck_assert_int_eq(api_images_response_write(&r, &out, &len, &err), STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_u64_seed_written_exactly)
{
    /* the writer takes any u64 (the server echoes what the pipeline used) */
    const uint8_t px[1] = {0};
    struct api_image_out img = {px, 1, NULL, UINT64_MAX};
    struct api_images_response r = {.created = 1, .output_format = IMAGE_PNG, .width = 8,
                                     .height = 8, .images = &img, .n_images = 1};
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(api_images_response_write(&r, &out, &len, NULL), STATUS_OK);
    ck_assert_ptr_nonnull(strstr(out, "{\"b64_json\":\"AA==\",\"seed\":18446744073709551615}"));
    ck_assert_ptr_nonnull(strstr(out, "\"seeds\":[18446744073709551615]"));
    free(out);
}
END_TEST

START_TEST(test_models_list)
{
    const struct api_model_entry models[] = {{"sd1-tiny", 1764300000, NULL},
                                             {"my \"model\"", 1, "someone"}};
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(api_models_list_write(models, 2, &out, &len, NULL), STATUS_OK);
    json_t *root = load_json(out, len);
    ck_assert_str_eq(json_string_value(json_object_get(root, "object")), "list");
    const json_t *data = json_object_get(root, "data");
    ck_assert_uint_eq(json_array_size(data), 2);
    const json_t *m0 = json_array_get(data, 0);
    ck_assert_uint_eq(json_object_size(m0), 4);
    ck_assert_str_eq(json_string_value(json_object_get(m0, "id")), "sd1-tiny");
    ck_assert_str_eq(json_string_value(json_object_get(m0, "object")), "model");
    ck_assert_int_eq(json_integer_value(json_object_get(m0, "created")), 1764300000);
    ck_assert_str_eq(json_string_value(json_object_get(m0, "owned_by")), "diffusiond");
    const json_t *m1 = json_array_get(data, 1);
    ck_assert_str_eq(json_string_value(json_object_get(m1, "id")), "my \"model\"");
    ck_assert_str_eq(json_string_value(json_object_get(m1, "owned_by")), "someone");
    json_decref(root);
    free(out);
    ck_assert_int_eq(api_models_list_write(NULL, 0, &out, &len, NULL), STATUS_OK);
    ck_assert_str_eq(out, "{\"object\":\"list\",\"data\":[]}");
    free(out);
}
END_TEST

START_TEST(test_server_timing)
{
    const struct api_image_metrics m = {.queue_ms = 1.5, .text_encode_ms = 2, .denoise_ms = 300.25,
                                        .vae_decode_ms = 40, .image_encode_ms = 5.0004,
                                        .total_ms = 349.75};
    char buf[256];
    const size_t n = api_server_timing_format(&m, buf, sizeof buf);
    ck_assert_str_eq(buf, "queue;dur=1.500, encode;dur=2.000, denoise;dur=300.250, "
                          "decode;dur=40.000, image;dur=5.000, total;dur=349.750");
    ck_assert_uint_eq(n, strlen(buf));
    char small[8];
    ck_assert_uint_eq(api_server_timing_format(&m, small, sizeof small), n);
    ck_assert_uint_eq(strlen(small), 7);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("openai_images");
    TCase *bad = tcase_create("malformed");
    tcase_add_unchecked_fixture(bad, load_model, free_model);
    tcase_add_loop_test(bad, test_malformed, 0, (int)(sizeof BAD / sizeof BAD[0]));
    suite_add_tcase(s, bad);
    TCase *ok = tcase_create("valid");
    tcase_add_unchecked_fixture(ok, load_model, free_model);
    tcase_add_test(ok, test_defaults_from_model);
    tcase_add_test(ok, test_every_field_applied);
    tcase_add_test(ok, test_seed_ranges);
    tcase_add_test(ok, test_unknown_and_null_fields_ignored);
    tcase_add_test(ok, test_long_prompt_warns);
    tcase_add_test(ok, test_limits);
    tcase_add_test(ok, test_model_select);
    tcase_add_test(ok, test_free_is_safe);
    tcase_add_test(ok, test_mutations_never_crash);
    suite_add_tcase(s, ok);
    TCase *resp = tcase_create("responses");
    tcase_add_test(resp, test_images_response_b64);
    tcase_add_test(resp, test_images_response_url_no_warnings);
    tcase_add_test(resp, test_u64_seed_written_exactly);
    tcase_add_test(resp, test_models_list);
    tcase_add_test(resp, test_server_timing);
    suite_add_tcase(s, resp);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
