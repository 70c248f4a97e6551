/* tests/unit/test_clip.c — models/clip: the CLIP text encoder against transformers'
 * CLIPTextModel on the sd1-tiny (quick_gelu, 2 heads) and sd2-tiny (gelu, 3 heads)
 * fixtures: last_hidden_state and diffusers' clip_skip=1 within 1e-4 × std(ref),
 * fp16 weights, shorter sequences, batch independence, workspace reuse, the tokenizer
 * end to end, and the error cases (id outside the vocabulary, wrong weight shape,
 * config). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/half.h"
#include "engine/workspace.h"
#include "models/clip.h"
#include "models/model_config.h"
#include "models/safetensors.h"
#include "models/tokenizer.h"
#include "tests/testutil.h"

#define SD_DIR DIFFUSIOND_SOURCE_DIR "/tests/fixtures/sd"
#define TOL 1e-4      /* issue 3: max abs error ≤ 1e-4 × std(reference) */
#define BATCH_TOL 1e-5 /* a batch's row against it alone, where not bit for bit */
#define TOL_FP16 1e-3 /* fp16 weight files: rounding of the weights allowed for */

/* root: the fixture set's folder (SD_DIR, or DIFFUSIOND_FULL_DIR for the --full sets). */
static const char *te_dir_in(const char *root, const char *pipe, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s/diffusers/text_encoder", root, pipe);
    return buf;
}

static const char *te_dir(const char *pipe, char *buf, size_t cap)
{
    return te_dir_in(SD_DIR, pipe, buf, cap);
}

/* --- reference tensors -------------------------------------------------------- */

struct ref {
    struct safetensors *st;
    int n_prompts, len; /* input_ids {P,L} */
};

static struct ref ref_open_in(const char *root, const char *pipe, const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/reference/%s", root, pipe, file);
    struct ref r;
    struct errbuf err;
    ck_assert_msg(safetensors_open(path, &r.st, &err) == STATUS_OK, "%s", err.msg);
    const struct safetensors_tensor *t = safetensors_find(r.st, "input_ids");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, SAFETENSORS_I32);
    ck_assert_int_eq(t->ndim, 2);
    r.n_prompts = (int)t->shape[0];
    r.len = (int)t->shape[1];
    return r;
}

static struct ref ref_open(const char *pipe, const char *file)
{
    return ref_open_in(SD_DIR, pipe, file);
}

static int32_t *ref_ids(const struct ref *r)
{
    const struct safetensors_tensor *t = safetensors_find(r->st, "input_ids");
    int32_t *ids = malloc(t->nbytes);
    ck_assert_ptr_nonnull(ids);
    memcpy(ids, t->data, t->nbytes); /* possibly unaligned in the mapping */
    return ids;
}

static float *ref_f32(const struct ref *r, const char *name, size_t *n)
{
    const struct safetensors_tensor *t = safetensors_find(r->st, name);
    ck_assert_msg(t != NULL, "reference tensor %s", name);
    float *p = malloc(t->numel * sizeof *p);
    ck_assert_ptr_nonnull(p);
    struct errbuf err;
    ck_assert_msg(safetensors_read_f32(r->st, t, p, t->numel, &err) == STATUS_OK, "%s", err.msg);
    *n = t->numel;
    return p;
}

/* --- running the encoder ------------------------------------------------------ */

static struct clip_model *load_dir(const char *dir, bool fp16)
{
    struct clip_model *m;
    struct errbuf err;
    enum status s = clip_load_dir(dir, fp16, test_cpu_backend(), &m, &err);
    ck_assert_msg(s == STATUS_OK, "%s", err.msg);
    return m;
}

static struct clip_model *load_pipe(const char *pipe)
{
    char dir[512];
    return load_dir(te_dir(pipe, dir, sizeof dir), false);
}

/* out = encoder(ids{batch,len}) downloaded to a malloc'ed host array. */
static float *encode(const struct clip_model *m, struct workspace *ws, const int32_t *ids,
                     int batch, int len, int clip_skip)
{
    int64_t shape[3] = {batch, len, clip_hidden_size(m)};
    struct tensor out = test_tensor(test_cpu_backend(), 3, shape, NULL);
    struct errbuf err;
    enum status s = clip_encode(m, ws, ids, batch, clip_skip, &out, &err);
    ck_assert_msg(s == STATUS_OK, "%s", err.msg);
    float *host = test_download(&out);
    backend_free(&out);
    return host;
}

static void workspace_make(struct workspace *ws)
{
    struct errbuf err;
    ck_assert_msg(workspace_init(ws, test_cpu_backend(), DTYPE_F32, 0, &err) == STATUS_OK, "%s",
                  err.msg);
}

/* Encodes the reference prompts of root/pipe with clip_skip and compares to its
 * reference tensor `name`. */
static void check_against_in(const char *root, const char *pipe, const struct clip_model *m,
                             const char *name, int clip_skip, double tol)
{
    struct ref r = ref_open_in(root, pipe, "text_encoder.safetensors");
    int32_t *ids = ref_ids(&r);
    size_t n;
    float *want = ref_f32(&r, name, &n);
    ck_assert_uint_eq(n, (size_t)r.n_prompts * r.len * clip_hidden_size(m));
    struct workspace ws;
    workspace_make(&ws);
    float *got = encode(m, &ws, ids, r.n_prompts, r.len, clip_skip);
    double e = test_max_abs_diff(got, want, n), sd = test_std(want, n);
    fprintf(stderr, "clip %s %s (clip_skip %d): max abs err %.3g = %.3g x std (std %.4g)\n",
            pipe, name, clip_skip, e, e / sd, sd);
    ck_assert_msg(e <= tol * sd, "%s %s: max abs err %g > %g x std %g", pipe, name, e, tol, sd);
    workspace_destroy(&ws);
    free(got);
    free(want);
    free(ids);
    safetensors_close(r.st);
}

static void check_against(const char *pipe, const struct clip_model *m, const char *name,
                          int clip_skip, double tol)
{
    check_against_in(SD_DIR, pipe, m, name, clip_skip, tol);
}

START_TEST(test_sd1_last_hidden_state)
{
    struct clip_model *m = load_pipe("sd1-tiny");
    ck_assert_int_eq(clip_hidden_size(m), 12);
    ck_assert_int_eq(clip_num_layers(m), 2);
    ck_assert_int_eq(clip_max_length(m), 77);
    ck_assert_int_eq(clip_get_config(m)->act, GELU_QUICK);
    check_against("sd1-tiny", m, "last_hidden_state", 0, TOL);
    clip_free(m);
}
END_TEST

START_TEST(test_sd1_clip_skip)
{
    struct clip_model *m = load_pipe("sd1-tiny");
    check_against("sd1-tiny", m, "clip_skip1", 1, TOL);
    check_against("sd1-tiny", m, "clip_skip1", clip_skip_from_a1111(2), TOL);
    clip_free(m);
}
END_TEST

START_TEST(test_sd2_last_hidden_state_and_clip_skip)
{
    struct clip_model *m = load_pipe("sd2-tiny");
    ck_assert_int_eq(clip_get_config(m)->act, GELU_ERF);
    ck_assert_int_eq(clip_get_config(m)->num_attention_heads, 3);
    check_against("sd2-tiny", m, "last_hidden_state", 0, TOL);
    check_against("sd2-tiny", m, "clip_skip1", 1, TOL);
    clip_free(m);
}
END_TEST

START_TEST(test_a1111_clip_skip_mapping)
{
    ck_assert_int_eq(clip_skip_from_a1111(0), 0);
    ck_assert_int_eq(clip_skip_from_a1111(1), 0);
    ck_assert_int_eq(clip_skip_from_a1111(2), 1);
    ck_assert_int_eq(clip_skip_from_a1111(3), 2);
}
END_TEST

/* clip_skip = N: the embeddings (hidden_states.0) through the final layer norm, here
 * computed in double from the reference and the file's final_layer_norm weights. */
START_TEST(test_clip_skip_all_layers_is_normed_embeddings)
{
    struct clip_model *m = load_pipe("sd1-tiny");
    struct ref r = ref_open("sd1-tiny", "text_encoder.safetensors");
    int32_t *ids = ref_ids(&r);
    size_t n;
    float *emb = ref_f32(&r, "hidden_states.0", &n);
    const int c = clip_hidden_size(m);
    char dir[512], path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", te_dir("sd1-tiny", dir, sizeof dir));
    struct safetensors *st;
    struct errbuf err;
    ck_assert_msg(safetensors_open(path, &st, &err) == STATUS_OK, "%s", err.msg);
    float g[64], b[64];
    ck_assert_int_eq(safetensors_read_f32(st, safetensors_find(st, "text_model.final_layer_norm.weight"),
                                          g, (size_t)c, &err), STATUS_OK);
    ck_assert_int_eq(safetensors_read_f32(st, safetensors_find(st, "text_model.final_layer_norm.bias"),
                                          b, (size_t)c, &err), STATUS_OK);
    float *want = malloc(n * sizeof *want);
    for (size_t row = 0; row < n / (size_t)c; row++) {
        const float *x = emb + row * (size_t)c;
        double mean = 0, var = 0;
        for (int i = 0; i < c; i++)
            mean += x[i];
        mean /= c;
        for (int i = 0; i < c; i++)
            var += (x[i] - mean) * (x[i] - mean);
        double inv = 1.0 / sqrt(var / c + 1e-5);
        for (int i = 0; i < c; i++)
            want[row * (size_t)c + i] = (float)((x[i] - mean) * inv * g[i] + b[i]);
    }
    struct workspace ws;
    workspace_make(&ws);
    float *got = encode(m, &ws, ids, r.n_prompts, r.len, clip_num_layers(m));
    double e = test_max_abs_diff(got, want, n), sd = test_std(want, n);
    ck_assert_msg(e <= TOL * sd, "max abs err %g > %g x std %g", e, TOL, sd);
    workspace_destroy(&ws);
    free(got);
    free(want);
    free(emb);
    free(ids);
    safetensors_close(st);
    safetensors_close(r.st);
    clip_free(m);
}
END_TEST

/* Causal attention: the first L' positions of a sequence depend only on its first L'
 * ids, so encoding a prefix gives the reference's first L' rows (L' < 77 exercises
 * the position-embedding prefix view). */
START_TEST(test_prefix_sequence)
{
    struct clip_model *m = load_pipe("sd2-tiny");
    struct ref r = ref_open("sd2-tiny", "text_encoder.safetensors");
    int32_t *ids = ref_ids(&r);
    size_t n;
    float *want = ref_f32(&r, "last_hidden_state", &n);
    const int c = clip_hidden_size(m), len = 13, p = 4; /* the long prompt */
    struct workspace ws;
    workspace_make(&ws);
    float *got = encode(m, &ws, ids + (size_t)p * r.len, 1, len, 0);
    const float *w = want + (size_t)p * r.len * c;
    double e = test_max_abs_diff(got, w, (size_t)len * c), sd = test_std(want, n);
    ck_assert_msg(e <= TOL * sd, "prefix: max abs err %g > %g x std %g", e, TOL, sd);
    workspace_destroy(&ws);
    free(got);
    free(want);
    free(ids);
    safetensors_close(r.st);
    clip_free(m);
}
END_TEST

/* A sequence's output does not depend on its batch; a second pass allocates nothing
 * and the workspace is rewound after every call. */
START_TEST(test_batch_independent_and_workspace_reused)
{
    struct clip_model *m = load_pipe("sd1-tiny");
    struct ref r = ref_open("sd1-tiny", "text_encoder.safetensors");
    int32_t *ids = ref_ids(&r);
    const size_t per = (size_t)r.len * clip_hidden_size(m);
    struct workspace ws;
    struct errbuf err;
    workspace_make(&ws);
    ck_assert_int_eq(workspace_reserve(&ws, clip_workspace_bytes(m, r.n_prompts, r.len, DTYPE_F32),
                                       &err), STATUS_OK);
    int blocks = ws.n_blocks;
    float *all = encode(m, &ws, ids, r.n_prompts, r.len, 0);
    ck_assert_uint_eq(ws.in_use, 0);
    ck_assert_int_eq(ws.n_blocks, blocks); /* the reservation was enough */
    ck_assert_uint_le(ws.high_water, clip_workspace_bytes(m, r.n_prompts, r.len, DTYPE_F32));
    const bool exact = test_gemm_rows_exact();
    const double sd = test_std(all, per * (size_t)r.n_prompts);
    for (int p = 0; p < r.n_prompts; p++) {
        float *one = encode(m, &ws, ids + (size_t)p * r.len, 1, r.len, 0);
        if (exact)
            ck_assert_msg(memcmp(one, all + p * per, per * sizeof(float)) == 0, "prompt %d", p);
        else /* float rounding (the portable GEMM's blocking), far below issue 3's 1e-4 */
            ck_assert_msg(test_max_abs_diff(one, all + p * per, per) <= BATCH_TOL * sd,
                          "prompt %d: max abs diff %g > %g x std %g", p,
                          test_max_abs_diff(one, all + p * per, per), BATCH_TOL, sd);
        free(one);
    }
    ck_assert_int_eq(ws.n_blocks, blocks);
    ck_assert_uint_eq(ws.grow_count, 0);
    workspace_destroy(&ws);
    free(all);
    free(ids);
    safetensors_close(r.st);
    clip_free(m);
}
END_TEST

/* The fixture's prompts (manifest.json) through the production tokenizer: ids equal
 * tokens.safetensors, and the encoder output equals last_hidden_state. */
static void tokenizer_end_to_end(const char *pipe)
{
    json_error_t jerr;
    json_t *man = json_load_file(SD_DIR "/manifest.json", 0, &jerr);
    ck_assert_msg(man != NULL, "manifest: %s", jerr.text);
    json_t *prompts = json_object_get(json_object_get(json_object_get(man, "pipelines"), pipe),
                                      "prompts");
    ck_assert(json_is_array(prompts));
    struct ref tok = ref_open(pipe, "tokens.safetensors");
    int32_t *want_ids = ref_ids(&tok);
    ck_assert_int_eq((int)json_array_size(prompts), tok.n_prompts);

    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s/diffusers/tokenizer", SD_DIR, pipe);
    struct tokenizer *tk;
    struct errbuf err;
    ck_assert_msg(tokenizer_load_dir(dir, &tk, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(tokenizer_max_length(tk), tok.len);
    int32_t *ids = malloc((size_t)tok.n_prompts * tok.len * sizeof *ids);
    for (int p = 0; p < tok.n_prompts; p++) {
        const char *text = json_string_value(json_array_get(prompts, (size_t)p));
        ck_assert_ptr_nonnull(text);
        ck_assert_msg(tokenizer_encode(tk, text, ids + (size_t)p * tok.len, NULL, &err) == STATUS_OK,
                      "%s", err.msg);
    }
    ck_assert_msg(memcmp(ids, want_ids, (size_t)tok.n_prompts * tok.len * sizeof *ids) == 0,
                  "%s: token ids differ from tokens.safetensors", pipe);

    struct clip_model *m = load_pipe(pipe);
    struct ref r = ref_open(pipe, "text_encoder.safetensors");
    size_t n;
    float *want = ref_f32(&r, "last_hidden_state", &n);
    struct workspace ws;
    workspace_make(&ws);
    float *got = encode(m, &ws, ids, tok.n_prompts, tok.len, 0);
    double e = test_max_abs_diff(got, want, n), sd = test_std(want, n);
    ck_assert_msg(e <= TOL * sd, "%s: max abs err %g > %g x std %g", pipe, e, TOL, sd);
    workspace_destroy(&ws);
    free(got);
    free(want);
    safetensors_close(r.st);
    clip_free(m);
    free(ids);
    free(want_ids);
    tokenizer_free(tk);
    safetensors_close(tok.st);
    json_decref(man);
}

START_TEST(test_tokenizer_end_to_end)
{
    tokenizer_end_to_end("sd1-tiny");
    tokenizer_end_to_end("sd2-tiny");
}
END_TEST

/* --- modified copies of the text encoder in a temp dir ------------------------ */

struct tmp_te {
    char dir[256];
    char weights[300];
    char config[300];
};

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, k, out), k);
    fclose(in);
    fclose(out);
}

/* Copies pipe's text_encoder into a temp dir as `file_name`: every tensor converted to
 * fp16 when `to_f16`; the tensor `bad` (may be NULL) given one more element in dim 0. */
static struct tmp_te tmp_te_make(const char *pipe, const char *file_name, bool to_f16,
                                 const char *bad)
{
    struct tmp_te t;
    snprintf(t.dir, sizeof t.dir, "/tmp/test_clip_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t.dir));
    char src_dir[512], path[600];
    te_dir(pipe, src_dir, sizeof src_dir);
    snprintf(path, sizeof path, "%s/config.json", src_dir);
    snprintf(t.config, sizeof t.config, "%s/config.json", t.dir);
    copy_file(path, t.config);
    snprintf(path, sizeof path, "%s/model.safetensors", src_dir);
    struct safetensors *st;
    struct errbuf err;
    ck_assert_msg(safetensors_open(path, &st, &err) == STATUS_OK, "%s", err.msg);
    size_t n = safetensors_count(st);
    struct safetensors_write_tensor *wt = calloc(n, sizeof *wt);
    int64_t (*shapes)[SAFETENSORS_MAX_DIMS] = calloc(n, sizeof *shapes);
    void **bufs = calloc(n, sizeof *bufs);
    for (size_t i = 0; i < n; i++) {
        const struct safetensors_tensor *s = safetensors_at(st, i);
        ck_assert_int_eq(s->dtype, SAFETENSORS_F32);
        memcpy(shapes[i], s->shape, sizeof shapes[i]);
        size_t numel = s->numel;
        if (bad && strcmp(s->name, bad) == 0) {
            numel = numel / (size_t)s->shape[0] * (size_t)(s->shape[0] + 1);
            shapes[i][0]++;
        }
        float *f = calloc(numel, sizeof *f);
        memcpy(f, s->data, s->nbytes);
        wt[i] = (struct safetensors_write_tensor){s->name, SAFETENSORS_F32, s->ndim, shapes[i], f};
        bufs[i] = f;
        if (to_f16) {
            uint16_t *h = malloc(numel * sizeof *h);
            half_f32_to_f16_array(f, h, numel);
            free(f);
            bufs[i] = h;
            wt[i].dtype = SAFETENSORS_F16;
            wt[i].data = h;
        }
    }
    snprintf(t.weights, sizeof t.weights, "%s/%s", t.dir, file_name);
    ck_assert_msg(safetensors_write(t.weights, wt, n, NULL, 0, &err) == STATUS_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(shapes);
    free(wt);
    safetensors_close(st);
    return t;
}

static void tmp_te_remove(const struct tmp_te *t)
{
    unlink(t->weights);
    unlink(t->config);
    rmdir(t->dir);
}

/* The fixture's weights are fp16-exact, so an fp16 file holds the same numbers: the
 * stated fp16 tolerance (1e-3 × std) holds, and on the CPU the output is bit-identical
 * to the f32 file's. */
START_TEST(test_fp16_variant)
{
    struct tmp_te t = tmp_te_make("sd1-tiny", "model.fp16.safetensors", true, NULL);
    struct clip_model *m16 = load_dir(t.dir, true);
    check_against("sd1-tiny", m16, "last_hidden_state", 0, TOL_FP16);
    check_against("sd1-tiny", m16, "clip_skip1", 1, TOL_FP16);

    struct clip_model *m32 = load_pipe("sd1-tiny");
    struct ref r = ref_open("sd1-tiny", "text_encoder.safetensors");
    int32_t *ids = ref_ids(&r);
    struct workspace ws;
    workspace_make(&ws);
    float *a = encode(m16, &ws, ids, r.n_prompts, r.len, 0);
    float *b = encode(m32, &ws, ids, r.n_prompts, r.len, 0);
    ck_assert(memcmp(a, b, (size_t)r.n_prompts * r.len * 12 * sizeof(float)) == 0);
    workspace_destroy(&ws);
    free(a);
    free(b);
    free(ids);
    safetensors_close(r.st);
    clip_free(m32);
    clip_free(m16);
    tmp_te_remove(&t);
}
END_TEST

static void expect_bad_shape(const char *tensor)
{
    struct tmp_te t = tmp_te_make("sd2-tiny", "model.safetensors", false, tensor);
    struct clip_model *m = (struct clip_model *)1;
    struct errbuf err;
    enum status s = clip_load_dir(t.dir, false, test_cpu_backend(), &m, &err);
    ck_assert_int_eq(s, STATUS_FORMAT);
    ck_assert_ptr_null(m);
    char quoted[160];
    snprintf(quoted, sizeof quoted, "'%s'", tensor);
    ck_assert_msg(strstr(err.msg, quoted) && strstr(err.msg, "shape"), "%s", err.msg);
    tmp_te_remove(&t);
}

START_TEST(test_wrong_shape_names_tensor)
{
    expect_bad_shape("text_model.encoder.layers.1.mlp.fc1.bias");
    expect_bad_shape("text_model.encoder.layers.0.self_attn.k_proj.weight");
    expect_bad_shape("text_model.embeddings.token_embedding.weight");
    expect_bad_shape("text_model.embeddings.position_embedding.weight");
    expect_bad_shape("text_model.final_layer_norm.weight");
}
END_TEST

START_TEST(test_id_outside_vocab)
{
    struct clip_model *m = load_pipe("sd1-tiny");
    int32_t ids[2 * 77];
    for (int i = 0; i < 2 * 77; i++)
        ids[i] = 49407;
    struct tensor out = test_tensor(test_cpu_backend(), 3, (int64_t[]){2, 77, 12}, NULL);
    struct workspace ws;
    workspace_make(&ws);
    struct errbuf err;
    ids[77 + 5] = 49408;
    ck_assert_int_eq(clip_encode(m, &ws, ids, 2, 0, &out, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "49408") && strstr(err.msg, "sequence 1, position 5"), "%s",
                  err.msg);
    ids[77 + 5] = -1;
    ck_assert_int_eq(clip_encode(m, &ws, ids, 2, 0, &out, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "position 5"), "%s", err.msg);
    ids[77 + 5] = 0;
    ck_assert_int_eq(clip_encode(m, &ws, ids, 2, 3, &out, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "clip_skip 3"), "%s", err.msg);
    ck_assert_int_eq(clip_encode(m, &ws, ids, 2, -1, &out, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(clip_encode(m, &ws, ids, 1, 0, &out, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_uint_eq(ws.n_blocks, 0); /* rejected before any work */
    struct tensor too_long = test_tensor(test_cpu_backend(), 3, (int64_t[]){1, 78, 12}, NULL);
    int32_t ids78[78] = {0};
    ck_assert_int_eq(clip_encode(m, &ws, ids78, 1, 0, &too_long, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "1..77"), "%s", err.msg);
    backend_free(&too_long);
    backend_free(&out);
    workspace_destroy(&ws);
    clip_free(m);
}
END_TEST

static enum status config_from(const char *text, struct clip_config *cfg, struct errbuf *err)
{
    json_t *j;
    ck_assert_int_eq(model_config_parse(text, "cfg.json", &j, err), STATUS_OK);
    enum status s = clip_config_from_json(j, cfg, err);
    json_decref(j);
    return s;
}

START_TEST(test_config)
{
    struct clip_config cfg;
    struct errbuf err;
    /* transformers' defaults for absent keys */
    ck_assert_int_eq(config_from("{}", &cfg, &err), STATUS_OK);
    ck_assert_int_eq(cfg.hidden_size, 512);
    ck_assert_int_eq(cfg.num_hidden_layers, 12);
    ck_assert_int_eq(cfg.act, GELU_QUICK);
    ck_assert_float_eq(cfg.layer_norm_eps, 1e-5f);
    ck_assert_int_eq(config_from("{\"hidden_act\": \"gelu_pytorch_tanh\"}", &cfg, &err), STATUS_OK);
    ck_assert_int_eq(cfg.act, GELU_TANH);
    ck_assert_int_eq(config_from("{\"hidden_act\": \"relu\"}", &cfg, &err), STATUS_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "cfg.json") && strstr(err.msg, "'hidden_act'") &&
                      strstr(err.msg, "relu"), "%s", err.msg);
    ck_assert_int_eq(config_from("{\"hidden_size\": \"768\"}", &cfg, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'hidden_size'"), "%s", err.msg);
    ck_assert_int_eq(config_from("{\"num_hidden_layers\": 0}", &cfg, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'num_hidden_layers'"), "%s", err.msg);
    ck_assert_int_eq(config_from("{\"hidden_size\": 12, \"num_attention_heads\": 5}", &cfg, &err),
                     STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'num_attention_heads'"), "%s", err.msg);
    ck_assert_int_eq(config_from("{\"layer_norm_eps\": -1}", &cfg, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'layer_norm_eps'"), "%s", err.msg);
    ck_assert_int_eq(clip_config_from_json(NULL, &cfg, &err), STATUS_FORMAT);

    struct clip_model *m = (struct clip_model *)1;
    ck_assert_int_eq(clip_load_dir("/nonexistent/text_encoder", false, test_cpu_backend(), &m, &err),
                     STATUS_IO);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, "/nonexistent/text_encoder/config.json"), "%s", err.msg);
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The --full sets (SD1.5 / SD2.1 sizes, not committed), when DIFFUSIOND_FULL_DIR names
 * their folder (tools/make_fixtures.py --full → /tmp/diffusiond-full): the same
 * comparisons, with the time of one encode of the 5 prompts printed. */
START_TEST(test_full_size_sets)
{
    const char *root = getenv("DIFFUSIOND_FULL_DIR");
    if (!root || !*root)
        return;
    static const char *const pipes[] = {"sd15-full", "sd21-full"};
    for (int i = 0; i < 2; i++) {
        char dir[512], path[600];
        snprintf(path, sizeof path, "%s/%s/reference/text_encoder.safetensors", root, pipes[i]);
        if (access(path, R_OK) != 0) {
            printf("clip %s: no reference at %s, skipped\n", pipes[i], path);
            continue;
        }
        double t0 = now_s();
        struct clip_model *m = load_dir(te_dir_in(root, pipes[i], dir, sizeof dir), false);
        double t1 = now_s();
        check_against_in(root, pipes[i], m, "last_hidden_state", 0, TOL);
        double t2 = now_s();
        check_against_in(root, pipes[i], m, "clip_skip1", 1, TOL);
        printf("clip %s: load %.2f s, encode 5x77 (with reference I/O) %.3f s\n", pipes[i],
               t1 - t0, t2 - t1);
        clip_free(m);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("clip");
    TCase *tc = tcase_create("clip");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sd1_last_hidden_state);
    tcase_add_test(tc, test_sd1_clip_skip);
    tcase_add_test(tc, test_sd2_last_hidden_state_and_clip_skip);
    tcase_add_test(tc, test_a1111_clip_skip_mapping);
    tcase_add_test(tc, test_clip_skip_all_layers_is_normed_embeddings);
    tcase_add_test(tc, test_prefix_sequence);
    tcase_add_test(tc, test_batch_independent_and_workspace_reused);
    tcase_add_test(tc, test_tokenizer_end_to_end);
    tcase_add_test(tc, test_fp16_variant);
    tcase_add_test(tc, test_wrong_shape_names_tensor);
    tcase_add_test(tc, test_id_outside_vocab);
    tcase_add_test(tc, test_config);
    tcase_add_test(tc, test_full_size_sets);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
