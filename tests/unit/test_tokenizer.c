/* tests/unit/test_tokenizer.c — CLIP BPE tokenizer (models/tokenizer.h).
 *
 * The committed fixtures (tests/fixtures/tokenizer/, made by
 * tools/make_tokenizer_fixtures.py with transformers' slow CLIPTokenizer) hold the
 * real CLIP vocabulary and the ids of several hundred strings under the SD1 and SD2
 * configurations; every string must give identical ids, length and truncation flag.
 * Also: concurrent encoding, the word cache filling up, invalid UTF-8, and malformed
 * or missing files and configurations.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/tokenizer.h"
#include "models/tokenizer_text.h"
#include "tests/testutil.h"

#define FIXTURES DIFFUSIOND_SOURCE_DIR "/tests/fixtures/tokenizer"
#define MAX_IDS 77

struct fixture_case {
    const char *config; /* "sd1" or "sd2" */
    const char *text;
    int n_tokens;
    bool truncated;
    int32_t ids[MAX_IDS];
};

struct fixtures {
    json_t *root;
    struct fixture_case *cases;
    size_t n;
};

static void fixtures_load(struct fixtures *f)
{
    json_error_t jerr;
    f->root = json_load_file(FIXTURES "/token_ids.json", 0, &jerr);
    ck_assert_msg(f->root, "token_ids.json: line %d: %s", jerr.line, jerr.text);
    ck_assert_int_eq(json_integer_value(json_object_get(f->root, "max_length")), MAX_IDS);
    json_t *cases = json_object_get(f->root, "cases");
    f->n = json_array_size(cases);
    ck_assert_uint_ge(f->n, 200);
    f->cases = calloc(f->n, sizeof *f->cases);
    ck_assert_ptr_nonnull(f->cases);
    for (size_t i = 0; i < f->n; i++) {
        json_t *c = json_array_get(cases, i);
        struct fixture_case *fc = &f->cases[i];
        fc->config = json_string_value(json_object_get(c, "config"));
        fc->text = json_string_value(json_object_get(c, "text"));
        fc->n_tokens = (int)json_integer_value(json_object_get(c, "n_tokens"));
        fc->truncated = json_is_true(json_object_get(c, "truncated"));
        json_t *ids = json_object_get(c, "ids");
        ck_assert(fc->config && fc->text && json_array_size(ids) == MAX_IDS);
        for (size_t k = 0; k < MAX_IDS; k++)
            fc->ids[k] = (int32_t)json_integer_value(json_array_get(ids, k));
    }
}

static void fixtures_free(struct fixtures *f)
{
    free(f->cases);
    json_decref(f->root);
}

static struct tokenizer *load_sd1(void)
{
    struct errbuf err;
    struct tokenizer *tok = NULL;
    enum status st = tokenizer_load_dir(FIXTURES, &tok, &err);
    ck_assert_msg(st == STATUS_OK, "load_dir: %s", err.msg);
    return tok;
}

static struct tokenizer *load_sd2(void)
{
    struct errbuf err;
    struct tokenizer_options opt;
    enum status st = tokenizer_options_from_dir(FIXTURES "/sd2", &opt, &err);
    ck_assert_msg(st == STATUS_OK, "options_from_dir: %s", err.msg);
    struct tokenizer *tok = NULL;
    st = tokenizer_load(FIXTURES "/vocab.json", FIXTURES "/merges.txt", &opt, &tok, &err);
    ck_assert_msg(st == STATUS_OK, "load: %s", err.msg);
    return tok;
}

/* Prints text with non-ASCII bytes escaped (diagnostics only). */
static void print_escaped(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    for (int i = 0; p[i] && i < 80; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f)
            fputc(p[i], stderr);
        else
            fprintf(stderr, "\\x%02x", p[i]);
    }
}

/* Encodes one case; returns true when ids, length and flag all match. */
static bool check_case(const struct tokenizer *tok, const struct fixture_case *fc, bool verbose)
{
    int32_t ids[MAX_IDS];
    struct tokenizer_result info;
    struct errbuf err;
    enum status st = tokenizer_encode(tok, fc->text, ids, &info, &err);
    bool ok = st == STATUS_OK && memcmp(ids, fc->ids, sizeof ids) == 0 &&
              info.n_tokens == fc->n_tokens && info.truncated == fc->truncated &&
              info.n_ids == (fc->n_tokens < MAX_IDS ? fc->n_tokens : MAX_IDS);
    if (!ok && verbose) {
        fprintf(stderr, "mismatch [%s] \"", fc->config);
        print_escaped(fc->text);
        fprintf(stderr, "\" status %s n_tokens %d/%d\n  got :", status_name(st), info.n_tokens,
                fc->n_tokens);
        for (int k = 0; k < MAX_IDS && k < fc->n_tokens + 1; k++)
            fprintf(stderr, " %d", ids[k]);
        fprintf(stderr, "\n  want:");
        for (int k = 0; k < MAX_IDS && k < fc->n_tokens + 1; k++)
            fprintf(stderr, " %d", fc->ids[k]);
        fprintf(stderr, "\n");
    }
    return ok;
}

static void check_config(const struct tokenizer *tok, const char *config)
{
    struct fixtures f;
    fixtures_load(&f);
    size_t checked = 0, bad = 0;
    for (size_t i = 0; i < f.n; i++) {
        if (strcmp(f.cases[i].config, config) != 0)
            continue;
        checked++;
        bad += !check_case(tok, &f.cases[i], true);
    }
    fixtures_free(&f);
    ck_assert_uint_gt(checked, 0);
    ck_assert_msg(bad == 0, "%zu of %zu %s strings differ from transformers", bad, checked, config);
}

START_TEST(test_fixture_ids_sd1)
{
    struct tokenizer *tok = load_sd1();
    check_config(tok, "sd1");
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_fixture_ids_sd2)
{
    struct tokenizer *tok = load_sd2();
    check_config(tok, "sd2");
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_fixture_ids_default_options)
{
    struct errbuf err;
    struct tokenizer *tok = NULL;
    enum status st =
        tokenizer_load(FIXTURES "/vocab.json", FIXTURES "/merges.txt", NULL, &tok, &err);
    ck_assert_msg(st == STATUS_OK, "%s", err.msg);
    check_config(tok, "sd1");
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_accessors)
{
    struct tokenizer *sd1 = load_sd1(), *sd2 = load_sd2();
    ck_assert_int_eq(tokenizer_vocab_size(sd1), 49408);
    ck_assert_int_eq(tokenizer_max_length(sd1), 77);
    ck_assert_int_eq(tokenizer_bos_id(sd1), 49406);
    ck_assert_int_eq(tokenizer_eos_id(sd1), 49407);
    ck_assert_int_eq(tokenizer_pad_id(sd1), 49407);
    ck_assert_int_eq(tokenizer_pad_id(sd2), 0);
    ck_assert_int_eq(tokenizer_token_id(sd1, "cat</w>"), 2368);
    ck_assert_int_eq(tokenizer_token_id(sd1, "!"), 0);
    ck_assert_int_eq(tokenizer_token_id(sd1, "no such token"), -1);

    int32_t ids[MAX_IDS];
    struct tokenizer_result info;
    ck_assert_int_eq(tokenizer_encode(sd1, "a photo of a cat", ids, &info, NULL), STATUS_OK);
    const int32_t want[] = {49406, 320, 1125, 539, 320, 2368, 49407, 49407};
    ck_assert_mem_eq(ids, want, sizeof want);
    ck_assert_int_eq(info.n_tokens, 7);
    ck_assert_int_eq(info.n_ids, 7);
    ck_assert(!info.truncated);
    ck_assert_int_eq(tokenizer_encode(sd2, "a photo of a cat", ids, &info, NULL), STATUS_OK);
    ck_assert_int_eq(ids[6], 49407);
    ck_assert_int_eq(ids[7], 0);
    tokenizer_free(sd1);
    tokenizer_free(sd2);
}
END_TEST

/* --- concurrency and the word cache ---------------------------------------------- */

struct thread_job {
    const struct tokenizer *tok;
    const struct fixtures *f;
    size_t bad;
};

static void *encode_all(void *arg)
{
    struct thread_job *job = arg;
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < job->f->n; i++)
            if (strcmp(job->f->cases[i].config, "sd1") == 0)
                job->bad += !check_case(job->tok, &job->f->cases[i], false);
    return NULL;
}

START_TEST(test_concurrent_encode)
{
    struct tokenizer *tok = load_sd1();
    struct fixtures f;
    fixtures_load(&f);
    enum { N_THREADS = 8 };
    pthread_t threads[N_THREADS];
    struct thread_job jobs[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        jobs[t] = (struct thread_job){tok, &f, 0};
        ck_assert_int_eq(pthread_create(&threads[t], NULL, encode_all, &jobs[t]), 0);
    }
    size_t bad = 0;
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(threads[t], NULL);
        bad += jobs[t].bad;
    }
    ck_assert_uint_eq(bad, 0);
    fixtures_free(&f);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_cache_fills_up)
{
    /* More distinct words than the cache holds: it is cleared and refilled, and
     * results stay right. */
    struct tokenizer *tok = load_sd1();
    char text[64];
    int32_t ids[MAX_IDS], again[MAX_IDS];
    for (int i = 0; i < 40000; i++) {
        snprintf(text, sizeof text, "zq%c%c%c%c", 'a' + i % 26, 'a' + i / 26 % 26,
                 'a' + i / 676 % 26, 'a' + i / 17576 % 26);
        ck_assert_int_eq(tokenizer_encode(tok, text, ids, NULL, NULL), STATUS_OK);
        ck_assert_int_eq(tokenizer_encode(tok, text, again, NULL, NULL), STATUS_OK);
        ck_assert_mem_eq(ids, again, sizeof ids);
    }
    check_config(tok, "sd1");
    tokenizer_free(tok);
}
END_TEST

/* --- invalid input ---------------------------------------------------------------- */

START_TEST(test_invalid_utf8)
{
    struct tokenizer *tok = load_sd1();
    const struct {
        const char *text;
        int offset;
    } cases[] = {
        {"ab\x80", 2},           /* lone continuation byte */
        {"\xc3", 0},             /* truncated 2-byte sequence */
        {"ok \xe2\x82", 3},      /* truncated 3-byte sequence */
        {"abc\xc0\x80", 3},      /* overlong NUL */
        {"\xe0\x80\xaf", 0},     /* overlong '/' */
        {"x\xed\xa0\x80", 1},    /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", 0}, /* beyond U+10FFFF */
        {"caf\xc3\xa9 \xff", 6}, /* 0xFF never occurs */
        {"\xc3(", 0},            /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int32_t ids[MAX_IDS];
        struct errbuf err;
        errbuf_clear(&err);
        enum status st = tokenizer_encode(tok, cases[i].text, ids, NULL, &err);
        ck_assert_int_eq(st, STATUS_INVALID_ARGUMENT);
        char want[64];
        snprintf(want, sizeof want, "byte offset %d", cases[i].offset);
        ck_assert_msg(strstr(err.msg, want), "case %zu: \"%s\" lacks \"%s\"", i, err.msg, want);
    }
    ck_assert_int_eq(tokenizer_encode(tok, NULL, NULL, NULL, NULL), STATUS_INVALID_ARGUMENT);
    tokenizer_free(tok);
}
END_TEST

/* --- small hand-made vocabularies ---------------------------------------------------- */

struct tmpdir {
    char path[256];
};

static void tmpdir_make(struct tmpdir *d)
{
    const char *base = getenv("TMPDIR");
    snprintf(d->path, sizeof d->path, "%s/test_tokenizer.XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(d->path));
}

/* Writes text to d/name; path (cap bytes) receives the file's path. */
static const char *tmp_write(const struct tmpdir *d, const char *name, const char *text, char *path,
                             size_t cap)
{
    snprintf(path, cap, "%s/%s", d->path, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void tmpdir_remove(const struct tmpdir *d)
{
    const char *names[] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                           "special_tokens_map.json"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", d->path, names[i]);
        unlink(path);
    }
    rmdir(d->path);
}

#define TINY_VOCAB                                                                          \
    "{\"h\": 0, \"i\": 1, \"x\": 2, \"h</w>\": 3, \"i</w>\": 4, \"hi</w>\": 5,"             \
    " \"<|startoftext|>\": 6, \"<|endoftext|>\": 7}"
#define TINY_MERGES "#version: 0.2\nh i</w>\n"

static enum status tiny_load(const char *vocab, const char *merges,
                             const struct tokenizer_options *opt, struct tokenizer **tok,
                             struct errbuf *err)
{
    struct tmpdir d;
    tmpdir_make(&d);
    char vp[512], mp[512];
    tmp_write(&d, "vocab.json", vocab, vp, sizeof vp);
    tmp_write(&d, "merges.txt", merges, mp, sizeof mp);
    errbuf_clear(err);
    enum status st = tokenizer_load(vp, mp, opt, tok, err);
    tmpdir_remove(&d);
    return st;
}

START_TEST(test_tiny_vocab_unk_and_truncation)
{
    struct tokenizer_options opt;
    tokenizer_options_default(&opt);
    opt.max_length = 5;
    struct tokenizer *tok = NULL;
    struct errbuf err;
    ck_assert_msg(tiny_load(TINY_VOCAB, TINY_MERGES, &opt, &tok, &err) == STATUS_OK, "%s", err.msg);
    int32_t ids[5];
    struct tokenizer_result info;
    ck_assert_int_eq(tokenizer_encode(tok, "HI", ids, &info, &err), STATUS_OK);
    const int32_t hi[] = {6, 5, 7, 7, 7};
    ck_assert_mem_eq(ids, hi, sizeof hi);
    /* "x</w>" and "q" are not in the vocabulary: unk (= <|endoftext|>) */
    ck_assert_int_eq(tokenizer_encode(tok, "hx q", ids, &info, &err), STATUS_OK);
    ck_assert_int_eq(info.n_tokens, 5);
    const int32_t unk[] = {6, 0, 7, 7, 7};
    ck_assert_mem_eq(ids, unk, sizeof unk);
    ck_assert_int_eq(tokenizer_encode(tok, "hi hi hi hi", ids, &info, &err), STATUS_OK);
    const int32_t cut[] = {6, 5, 5, 5, 7};
    ck_assert_mem_eq(ids, cut, sizeof cut);
    ck_assert_int_eq(info.n_tokens, 6);
    ck_assert_int_eq(info.n_ids, 5);
    ck_assert(info.truncated);
    ck_assert_int_eq(tokenizer_encode(tok, "", ids, &info, &err), STATUS_OK);
    ck_assert_int_eq(info.n_tokens, 2);
    tokenizer_free(tok);

    opt.max_length = 1;
    ck_assert_int_eq(tiny_load(TINY_VOCAB, TINY_MERGES, &opt, &tok, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(tok);
}
END_TEST

START_TEST(test_malformed_vocab)
{
    const char *bad[] = {
        "{\"h\": 0, ",                             /* truncated JSON */
        "[0, 1, 2]",                               /* not an object */
        "{}",                                      /* empty */
        "{\"h\": \"zero\"}",                       /* id not an integer */
        "{\"h\": -1}",                             /* negative id */
        "{\"h\": 4294967296}",                     /* id out of range */
        "{\"h\": 0, \"h\": 1}",                    /* duplicate key */
        "{\"h\": 0, \"i\": 1, \"hi</w>\": 2}",     /* no special tokens */
        "{\"h\": 0, \"<|endoftext|>\": 1}",        /* no bos */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct tokenizer *tok = NULL;
        struct errbuf err;
        enum status st = tiny_load(bad[i], TINY_MERGES, NULL, &tok, &err);
        ck_assert_msg(st == STATUS_FORMAT, "case %zu: %s: %s", i, status_name(st), err.msg);
        ck_assert_ptr_null(tok);
        ck_assert_msg(strstr(err.msg, "vocab.json"), "case %zu: \"%s\" names no file", i, err.msg);
    }
}
END_TEST

START_TEST(test_malformed_merges)
{
    const char *bad[] = {
        "#version: 0.2\nh i</w> x\n",     /* three fields */
        "#version: 0.2\nh\n",             /* one field */
        "#version: 0.2\nh i</w>\n\nh i\n", /* blank line inside */
    };
    const char *line[] = {"line 2", "line 2", "line 3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct tokenizer *tok = NULL;
        struct errbuf err;
        enum status st = tiny_load(TINY_VOCAB, bad[i], NULL, &tok, &err);
        ck_assert_msg(st == STATUS_FORMAT, "case %zu: %s: %s", i, status_name(st), err.msg);
        ck_assert_msg(strstr(err.msg, "merges.txt") && strstr(err.msg, line[i]), "case %zu: %s", i,
                      err.msg);
        ck_assert_ptr_null(tok);
    }
    /* header only, trailing blank lines, CRLF: all fine */
    const char *good[] = {"#version: 0.2\n", "#version: 0.2\r\nh i</w>\r\n\r\n\n"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        struct tokenizer *tok = NULL;
        struct errbuf err;
        ck_assert_msg(tiny_load(TINY_VOCAB, good[i], NULL, &tok, &err) == STATUS_OK, "%s", err.msg);
        tokenizer_free(tok);
    }
}
END_TEST

START_TEST(test_missing_files)
{
    struct tokenizer *tok = NULL;
    struct errbuf err;
    enum status st =
        tokenizer_load("/nonexistent/vocab.json", FIXTURES "/merges.txt", NULL, &tok, &err);
    ck_assert_int_eq(st, STATUS_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/vocab.json"));
    st = tokenizer_load(FIXTURES "/vocab.json", "/nonexistent/merges.txt", NULL, &tok, &err);
    ck_assert_int_eq(st, STATUS_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/merges.txt"));
    st = tokenizer_load_dir("/nonexistent", &tok, &err);
    ck_assert_int_eq(st, STATUS_IO);
    st = tokenizer_load(FIXTURES, FIXTURES "/merges.txt", NULL, &tok, &err); /* a directory */
    ck_assert_int_eq(st, STATUS_IO);
    ck_assert_ptr_null(tok);
    ck_assert_int_eq(tokenizer_load(NULL, NULL, NULL, &tok, &err), STATUS_INVALID_ARGUMENT);
}
END_TEST

/* --- configuration folders ---------------------------------------------------------- */

static enum status options_from(const char *config, const char *special,
                                struct tokenizer_options *opt, struct errbuf *err)
{
    struct tmpdir d;
    tmpdir_make(&d);
    char path[512];
    if (config)
        tmp_write(&d, "tokenizer_config.json", config, path, sizeof path);
    if (special)
        tmp_write(&d, "special_tokens_map.json", special, path, sizeof path);
    errbuf_clear(err);
    enum status st = tokenizer_options_from_dir(d.path, opt, err);
    tmpdir_remove(&d);
    return st;
}

START_TEST(test_options_from_dir)
{
    struct tokenizer_options opt;
    struct errbuf err;
    ck_assert_int_eq(options_from(NULL, NULL, &opt, &err), STATUS_OK); /* defaults */
    ck_assert_int_eq(opt.max_length, 77);
    ck_assert(opt.do_lower_case);
    ck_assert_str_eq(opt.pad_token, "<|endoftext|>");

    ck_assert_int_eq(options_from("{\"model_max_length\": 10, \"pad_token\": \"<|endoftext|>\","
                                  " \"do_lower_case\": false,"
                                  " \"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}}",
                                  "{\"pad_token\": {\"content\": \"!\"}}", &opt, &err),
                     STATUS_OK);
    ck_assert_int_eq(opt.max_length, 10);
    ck_assert(!opt.do_lower_case);
    ck_assert_str_eq(opt.bos_token, "<s>");
    ck_assert_str_eq(opt.pad_token, "!"); /* special_tokens_map.json wins */

    const struct {
        const char *config, *special;
        enum status want;
    } bad[] = {
        {"{\"model_max_length\": ", NULL, STATUS_FORMAT},
        {"[]", NULL, STATUS_FORMAT},
        {"{\"model_max_length\": \"77\"}", NULL, STATUS_FORMAT},
        {"{\"model_max_length\": 1}", NULL, STATUS_FORMAT},
        {"{\"do_lower_case\": 1}", NULL, STATUS_FORMAT},
        {"{\"tokenizer_class\": \"BertTokenizer\"}", NULL, STATUS_UNSUPPORTED},
        {"{\"pad_token\": 5}", NULL, STATUS_FORMAT},
        {"{\"pad_token\": \"\"}", NULL, STATUS_FORMAT},
        {NULL, "{\"eos_token\": {\"content\": \"</s>\", \"single_word\": true}}",
         STATUS_UNSUPPORTED},
        {NULL, "{\"unk_token\": {\"lstrip\": false}}", STATUS_FORMAT},
        {NULL, "{\"bos_token\": \"<|startoftext|>\", \"bos_token\": \"x\"}", STATUS_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        enum status st = options_from(bad[i].config, bad[i].special, &opt, &err);
        ck_assert_msg(st == bad[i].want, "case %zu: %s: %s", i, status_name(st), err.msg);
        ck_assert_msg(strstr(err.msg, ".json"), "case %zu: \"%s\" names no file", i, err.msg);
    }
}
END_TEST

START_TEST(test_special_token_not_in_vocab)
{
    struct tokenizer_options opt;
    tokenizer_options_default(&opt);
    snprintf(opt.pad_token, sizeof opt.pad_token, "<pad>");
    struct tokenizer *tok = NULL;
    struct errbuf err;
    ck_assert_int_eq(tiny_load(TINY_VOCAB, TINY_MERGES, &opt, &tok, &err), STATUS_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "<pad>"));
    opt.pad_token_id = 2; /* an explicit id needs no lookup */
    ck_assert_int_eq(tiny_load(TINY_VOCAB, TINY_MERGES, &opt, &tok, &err), STATUS_OK);
    ck_assert_int_eq(tokenizer_pad_id(tok), 2);
    tokenizer_free(tok);
}
END_TEST

/* --- the text stage on its own ------------------------------------------------------ */

START_TEST(test_text_lower)
{
    /* Python: "İΣΑΣ ΑΣ. Σ".lower() per word */
    const int32_t w1[] = {0x130, 0x3A3, 0x391, 0x3A3}, want1[] = {'i', 0x307, 0x3C3, 0x3B1, 0x3C2};
    const int32_t w2[] = {0x391, 0x3A3, '.'}, want2[] = {0x3B1, 0x3C2, '.'};
    const int32_t w3[] = {0x3A3}, want3[] = {0x3C3};
    int32_t out[16];
    ck_assert_uint_eq(tokenizer_text_lower(w1, 4, out), 5);
    ck_assert_mem_eq(out, want1, sizeof want1);
    ck_assert_uint_eq(tokenizer_text_lower(w2, 3, out), 3);
    ck_assert_mem_eq(out, want2, sizeof want2);
    ck_assert_uint_eq(tokenizer_text_lower(w3, 1, out), 1);
    ck_assert_mem_eq(out, want3, sizeof want3);
}
END_TEST

START_TEST(test_text_pretokens)
{
    /* "don't!!x1" → "don", "'t", "!!", "x", "1" */
    const int32_t w[] = {'d', 'o', 'n', '\'', 't', '!', '!', 'x', '1'};
    const size_t want[] = {3, 2, 2, 1, 1};
    size_t i = 0;
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        size_t len = tokenizer_text_pretoken_len(w, 9, i);
        ck_assert_uint_eq(len, want[k]);
        i += len;
    }
    ck_assert_uint_eq(i, 9);
    ck_assert(tokenizer_text_is_skipped(0x345));
    ck_assert(!tokenizer_text_is_skipped('a') && !tokenizer_text_is_skipped('!'));
    ck_assert(tokenizer_text_is_space(0x2028) && tokenizer_text_is_space(0x3000));
    ck_assert(!tokenizer_text_is_space(0x200B));
}
END_TEST

START_TEST(test_text_clean_and_nfc)
{
    /* "a\tb\u200d中e\u0301": tab → space, ZWJ dropped, spaces around 中; NFC → é */
    const char in[] = "a\tb\xe2\x80\x8d\xe4\xb8\xad" "e\xcc\x81";
    char out[3 * sizeof in];
    size_t n = tokenizer_text_clean(in, strlen(in), out);
    const char want[] = "a b \xe4\xb8\xad " "e\xcc\x81";
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_mem_eq(out, want, n);
    int32_t *cps = NULL;
    size_t m = 0;
    ck_assert_int_eq(tokenizer_text_nfc(out, n, &cps, &m, NULL), STATUS_OK);
    const int32_t nfc[] = {'a', ' ', 'b', ' ', 0x4E2D, ' ', 0xE9};
    ck_assert_uint_eq(m, 7);
    ck_assert_mem_eq(cps, nfc, sizeof nfc);
    free(cps);
}
END_TEST

static Suite *tokenizer_suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *fix = tcase_create("fixtures");
    tcase_set_timeout(fix, 300);
    tcase_add_test(fix, test_fixture_ids_sd1);
    tcase_add_test(fix, test_fixture_ids_sd2);
    tcase_add_test(fix, test_fixture_ids_default_options);
    tcase_add_test(fix, test_accessors);
    tcase_add_test(fix, test_concurrent_encode);
    tcase_add_test(fix, test_cache_fills_up);
    tcase_add_test(fix, test_invalid_utf8);
    suite_add_tcase(s, fix);
    TCase *files = tcase_create("files");
    tcase_add_test(files, test_tiny_vocab_unk_and_truncation);
    tcase_add_test(files, test_malformed_vocab);
    tcase_add_test(files, test_malformed_merges);
    tcase_add_test(files, test_missing_files);
    tcase_add_test(files, test_options_from_dir);
    tcase_add_test(files, test_special_token_not_in_vocab);
    suite_add_tcase(s, files);
    TCase *text = tcase_create("text");
    tcase_add_test(text, test_text_lower);
    tcase_add_test(text, test_text_pretokens);
    tcase_add_test(text, test_text_clean_and_nfc);
    suite_add_tcase(s, text);
    return s;
}

int main(void)
{
    return test_run_suite(tokenizer_suite());
}
