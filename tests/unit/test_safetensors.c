/* tests/unit/test_safetensors.c — the safetensors reader and writer: valid files
 * (from the writer and hand-built bytes), unaligned data, metadata, conversions,
 * one test per malformed-file case, and random corruption of a valid file. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/half.h"
#include "models/safetensors.h"
#include "tests/testutil.h"

/* ------------------------------------------------------------------ helpers */

struct tmp {
    char dir[256];
    char file[300]; /* <dir>/model.safetensors */
};

static void tmp_make(struct tmp *t)
{
    const char *base = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/st_test_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->file, sizeof t->file, "%s/model.safetensors", t->dir);
}

static void tmp_done(struct tmp *t)
{
    unlink(t->file);
    rmdir(t->dir);
}

struct bytes {
    unsigned char *p;
    size_t n;
};

static void bytes_free(struct bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->n = 0;
}

/* 8-byte length `hlen` (little-endian), then header text, then ndata data bytes
 * (zeros when data is NULL). */
static struct bytes bytes_make_len(uint64_t hlen, const char *header, size_t header_len,
                                   const void *data, size_t ndata)
{
    struct bytes b = {malloc(8 + header_len + ndata + 1), 8 + header_len + ndata};
    ck_assert_ptr_nonnull(b.p);
    for (int i = 0; i < 8; i++)
        b.p[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b.p + 8, header, header_len);
    if (data)
        memcpy(b.p + 8 + header_len, data, ndata);
    else
        memset(b.p + 8 + header_len, 0, ndata);
    return b;
}

static struct bytes bytes_make(const char *header, const void *data, size_t ndata)
{
    return bytes_make_len(strlen(header), header, strlen(header), data, ndata);
}

static void write_file(const char *path, const struct bytes *b)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b->p, 1, b->n, f), b->n);
    ck_assert_int_eq(fclose(f), 0);
}

static struct bytes read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    struct bytes b = {malloc((size_t)n + 1), (size_t)n};
    ck_assert_ptr_nonnull(b.p);
    ck_assert_uint_eq(fread(b.p, 1, b.n, f), b.n);
    fclose(f);
    return b;
}

/* Opens b through a file and through memory; both must fail with `code` and a
 * message naming the file and containing `sub`. */
static void expect_fail(const struct bytes *b, enum status code, const char *sub)
{
    struct tmp t;
    tmp_make(&t);
    write_file(t.file, b);
    struct safetensors *st = (struct safetensors *)1;
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = safetensors_open(t.file, &st, &err);
    tmp_done(&t);
    ck_assert_msg(s == code, "open: want %s, got %s (%s)", status_name(code), status_name(s),
                  err.msg);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(err.msg, t.file) == err.msg, "message does not name the file: %s",
                  err.msg);
    ck_assert_msg(strstr(err.msg, sub), "message lacks '%s': %s", sub, err.msg);

    /* the same through memory, from an exact-size copy (ASan sees over-reads) */
    unsigned char *copy = malloc(b->n ? b->n : 1);
    ck_assert_ptr_nonnull(copy);
    if (b->n)
        memcpy(copy, b->p, b->n);
    errbuf_clear(&err);
    s = safetensors_open_memory(copy, b->n, "mem.safetensors", &st, &err);
    free(copy);
    ck_assert_msg(s == code, "memory: want %s, got %s (%s)", status_name(code), status_name(s),
                  err.msg);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(err.msg, "mem.safetensors: ") == err.msg, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, sub), "message lacks '%s': %s", sub, err.msg);
}

static void expect_header_fail(const char *header, size_t ndata, const char *sub)
{
    struct bytes b = bytes_make(header, NULL, ndata);
    expect_fail(&b, STATUS_FORMAT, sub);
    bytes_free(&b);
}

static struct safetensors *open_ok(const char *path)
{
    struct safetensors *st = NULL;
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = safetensors_open(path, &st, &err);
    ck_assert_msg(s == STATUS_OK, "open: %s", err.msg);
    ck_assert_ptr_nonnull(st);
    return st;
}

static struct safetensors *open_bytes_ok(const struct bytes *b)
{
    struct safetensors *st = NULL;
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = safetensors_open_memory(b->p, b->n, "mem", &st, &err);
    ck_assert_msg(s == STATUS_OK, "open: %s", err.msg);
    return st;
}

static void read_f32_ok(const struct safetensors *st, const char *name, float *dst, size_t n)
{
    const struct safetensors_tensor *t = safetensors_find(st, name);
    ck_assert_msg(t != NULL, "tensor %s missing", name);
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = safetensors_read_f32(st, t, dst, n, &err);
    ck_assert_msg(s == STATUS_OK, "read %s: %s", name, err.msg);
}

static void assert_floats_eq(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "[%zu]: %g != %g", i, (double)got[i],
                      (double)want[i]);
}

/* ------------------------------------------------------------------ valid files */

START_TEST(test_dtype_names)
{
    for (int i = 0; i < SAFETENSORS_DTYPE_COUNT_; i++) {
        enum safetensors_dtype dt;
        ck_assert(safetensors_dtype_parse(safetensors_dtype_name(i), &dt));
        ck_assert_int_eq(dt, i);
        ck_assert_uint_gt(safetensors_dtype_size(i), 0);
    }
    enum safetensors_dtype dt;
    ck_assert(!safetensors_dtype_parse("f16", &dt));
    ck_assert(!safetensors_dtype_parse("", &dt));
    ck_assert_str_eq(safetensors_dtype_name(SAFETENSORS_DTYPE_COUNT_), "?");
    enum dtype e;
    ck_assert(safetensors_engine_dtype(SAFETENSORS_F16, &e) && e == DTYPE_F16);
    ck_assert(safetensors_engine_dtype(SAFETENSORS_BF16, &e) && e == DTYPE_BF16);
    ck_assert(safetensors_engine_dtype(SAFETENSORS_F32, &e) && e == DTYPE_F32);
    ck_assert(!safetensors_engine_dtype(SAFETENSORS_F64, &e));
    ck_assert(!safetensors_engine_dtype(SAFETENSORS_I8, &e));
}
END_TEST

START_TEST(test_writer_round_trip)
{
    struct tmp t;
    tmp_make(&t);
    const float w[6] = {1.5f, -2.0f, 0.25f, 3.0f, -0.125f, 1e-3f};
    const float hv[4] = {1.0f, -2.5f, 65504.0f, 0.0009765625f}; /* exact in f16 */
    const float bv[3] = {1.0f, -256.0f, 0.5f};                  /* exact in bf16 */
    uint16_t h[4], bf[3];
    half_f32_to_f16_array(hv, h, 4);
    half_f32_to_bf16_array(bv, bf, 3);
    const float scalar = 42.0f;
    const int64_t s_w[2] = {2, 3}, s_h[1] = {4}, s_b[3] = {1, 3, 1}, s_z[2] = {0, 5};
    const struct safetensors_write_tensor tensors[] = {
        {"model.weight", SAFETENSORS_F32, 2, s_w, w},
        {"model.half", SAFETENSORS_F16, 1, s_h, h},
        {"model.bf", SAFETENSORS_BF16, 3, s_b, bf},
        {"scalar", SAFETENSORS_F32, 0, NULL, &scalar},
        {"empty", SAFETENSORS_F32, 2, s_z, NULL},
    };
    const struct safetensors_kv meta[] = {{"format", "pt"},
                                          {"note", "diffusiond \xc3\xa9t\xc3\xa9"}};
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = safetensors_write(t.file, tensors, 5, meta, 2, &err);
    ck_assert_msg(s == STATUS_OK, "write: %s", err.msg);

    /* layout: data section 8-aligned, header padded with spaces */
    struct bytes raw = read_file(t.file);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | raw.p[i];
    ck_assert_uint_eq((8 + hlen) % 8, 0);
    ck_assert_uint_eq(raw.n, 8 + hlen + 24 + 8 + 6 + 4 + 0);
    ck_assert_int_eq(raw.p[8], '{');
    bytes_free(&raw);

    struct safetensors *st = open_ok(t.file);
    tmp_done(&t);
    ck_assert_uint_eq(safetensors_count(st), 5);
    ck_assert_str_eq(safetensors_path(st), t.file);

    const struct safetensors_tensor *tw = safetensors_find(st, "model.weight");
    ck_assert_ptr_nonnull(tw);
    ck_assert_int_eq(tw->dtype, SAFETENSORS_F32);
    ck_assert_int_eq(tw->ndim, 2);
    ck_assert_int_eq(tw->shape[0], 2);
    ck_assert_int_eq(tw->shape[1], 3);
    ck_assert_uint_eq(tw->numel, 6);
    ck_assert_uint_eq(tw->nbytes, 24);
    float got[6];
    read_f32_ok(st, "model.weight", got, 6);
    assert_floats_eq(got, w, 6);
    read_f32_ok(st, "model.half", got, 4);
    assert_floats_eq(got, hv, 4);
    read_f32_ok(st, "model.bf", got, 3);
    assert_floats_eq(got, bv, 3);
    ck_assert_int_eq(safetensors_find(st, "model.bf")->ndim, 3);

    const struct safetensors_tensor *ts = safetensors_find(st, "scalar");
    ck_assert_int_eq(ts->ndim, 0);
    ck_assert_uint_eq(ts->numel, 1);
    read_f32_ok(st, "scalar", got, 1);
    ck_assert(got[0] == 42.0f);

    const struct safetensors_tensor *te = safetensors_find(st, "empty");
    ck_assert_uint_eq(te->numel, 0);
    ck_assert_uint_eq(te->nbytes, 0);
    read_f32_ok(st, "empty", NULL, 0);

    ck_assert_ptr_null(safetensors_find(st, "model"));
    ck_assert_ptr_null(safetensors_find(st, "zzz"));
    ck_assert_ptr_null(safetensors_find(st, ""));

    /* iteration is in data order (the order written) */
    size_t prev_end = 0;
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const struct safetensors_tensor *x = safetensors_at(st, i);
        ck_assert_uint_eq(x->offset, prev_end);
        prev_end = x->offset + x->nbytes;
        ck_assert_ptr_eq(safetensors_find(st, x->name), x);
    }
    ck_assert_ptr_null(safetensors_at(st, 5));

    ck_assert_uint_eq(safetensors_metadata_count(st), 2);
    ck_assert_str_eq(safetensors_metadata_get(st, "format"), "pt");
    ck_assert_str_eq(safetensors_metadata_get(st, "note"), "diffusiond \xc3\xa9t\xc3\xa9");
    ck_assert_ptr_null(safetensors_metadata_get(st, "missing"));
    const char *k, *v;
    ck_assert(safetensors_metadata_at(st, 0, &k, &v));
    ck_assert_str_eq(k, "format");
    ck_assert(safetensors_metadata_at(st, 1, &k, &v));
    ck_assert_str_eq(k, "note");
    ck_assert(!safetensors_metadata_at(st, 2, &k, &v));
    safetensors_close(st);
}
END_TEST

/* Bytes put together by hand, independent of the writer: tensors listed out of
 * data order, whitespace inside the JSON and space padding after it. */
START_TEST(test_hand_built)
{
    const char *header = "{ \"b\" : {\"dtype\":\"F32\", \"shape\":[2], \"data_offsets\":[4,12]},\n"
                         "  \"a\": {\"shape\": [2], \"data_offsets\": [0, 4], \"dtype\": \"F16\"},"
                         "  \"__metadata__\": {\"format\": \"pt\"} }     ";
    const unsigned char data[12] = {
        0x00, 0x3c, 0x00, 0xc0,                         /* f16 1.0, -2.0 */
        0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x40, 0x40, /* f32 0.5, 3.0 */
    };
    struct bytes b = bytes_make(header, data, sizeof data);
    struct tmp t;
    tmp_make(&t);
    write_file(t.file, &b);
    struct safetensors *st = open_ok(t.file);
    tmp_done(&t);
    ck_assert_uint_eq(safetensors_count(st), 2);
    ck_assert_str_eq(safetensors_at(st, 0)->name, "a");
    ck_assert_str_eq(safetensors_at(st, 1)->name, "b");
    float got[2];
    read_f32_ok(st, "a", got, 2);
    assert_floats_eq(got, (const float[]){1.0f, -2.0f}, 2);
    read_f32_ok(st, "b", got, 2);
    assert_floats_eq(got, (const float[]){0.5f, 3.0f}, 2);
    ck_assert_str_eq(safetensors_metadata_get(st, "format"), "pt");
    safetensors_close(st);
    bytes_free(&b);
}
END_TEST

/* tests/fixtures/safetensors/reference.safetensors: written by Hugging Face's
 * safetensors (tools/make_safetensors_fixtures.py holds the same values). */
static void fixture_path(char *buf, size_t cap)
{
#ifdef DIFFUSIOND_SOURCE_DIR
    snprintf(buf, cap, "%s/tests/fixtures/safetensors/reference.safetensors",
             DIFFUSIOND_SOURCE_DIR);
#else
    /* __FILE__ is .../tests/unit/test_safetensors.c */
    snprintf(buf, cap, "%s", __FILE__);
    char *slash = strrchr(buf, '/');
    ck_assert_ptr_nonnull(slash);
    snprintf(slash, cap - (size_t)(slash - buf), "/../fixtures/safetensors/reference.safetensors");
#endif
}

START_TEST(test_reference_fixture)
{
    char path[1024];
    fixture_path(path, sizeof path);
    struct safetensors *st = open_ok(path);
    ck_assert_uint_eq(safetensors_count(st), 8);
    float got[6];
    read_f32_ok(st, "w32", got, 6);
    assert_floats_eq(got, (const float[]){-1.0f, -0.75f, -0.5f, -0.25f, 0.0f, 0.25f}, 6);
    ck_assert_int_eq(safetensors_find(st, "w32")->shape[1], 3);
    read_f32_ok(st, "w16", got, 4);
    assert_floats_eq(got, (const float[]){1.0f, -2.0f, 0.5f, 65504.0f}, 4);
    read_f32_ok(st, "wbf", got, 3);
    assert_floats_eq(got, (const float[]){1.0f, -3.0f, 0.015625f}, 3);
    read_f32_ok(st, "w64", got, 2);
    assert_floats_eq(got, (const float[]){(float)0.1, -1e10f}, 2);
    read_f32_ok(st, "s", got, 1);
    ck_assert(got[0] == 7.5f && safetensors_find(st, "s")->ndim == 0);
    read_f32_ok(st, "e4", got, 2);
    assert_floats_eq(got, (const float[]){1.0f, -2.0f}, 2);
    const struct safetensors_tensor *z = safetensors_find(st, "z");
    ck_assert(z->dtype == SAFETENSORS_F16 && z->ndim == 2 && z->numel == 0);

    const struct safetensors_tensor *ids = safetensors_find(st, "ids");
    ck_assert_int_eq(ids->dtype, SAFETENSORS_I64);
    int64_t iv[3];
    memcpy(iv, ids->data, sizeof iv);
    ck_assert(iv[0] == 1 && iv[1] == 2 && iv[2] == 3);
    ck_assert_int_eq(safetensors_read_f32(st, ids, got, 3, NULL), STATUS_UNSUPPORTED);

    ck_assert_str_eq(safetensors_metadata_get(st, "format"), "pt");
    ck_assert(strncmp(safetensors_metadata_get(st, "source"), "safetensors ", 12) == 0);
    safetensors_close(st);
}
END_TEST

START_TEST(test_empty_header_ok)
{
    struct bytes b = bytes_make("{}", NULL, 0);
    struct safetensors *st = open_bytes_ok(&b);
    ck_assert_uint_eq(safetensors_count(st), 0);
    ck_assert_uint_eq(safetensors_metadata_count(st), 0);
    ck_assert_ptr_null(safetensors_find(st, "x"));
    safetensors_close(st);
    bytes_free(&b);

    b = bytes_make("{\"__metadata__\":{}}   ", NULL, 0);
    st = open_bytes_ok(&b);
    ck_assert_uint_eq(safetensors_count(st), 0);
    safetensors_close(st);
    bytes_free(&b);
}
END_TEST

/* The data section starts at an odd file offset and tensors sit at offsets that are
 * not multiples of their element size: reads must not assume alignment. */
START_TEST(test_unaligned)
{
    const char *header = "{\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                         "\"f\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[1,13]},"
                         "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[13,19]},"
                         "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[19,35]},"
                         "\"bf\":{\"dtype\":\"BF16\",\"shape\":[1025],\"data_offsets\":[35,2085]}}";
    char padded[1024]; /* data section 8-aligned, so every tensor below is misaligned */
    snprintf(padded, sizeof padded, "%s        ", header);
    padded[strlen(header) + (8 - (8 + strlen(header)) % 8) % 8] = '\0';
    unsigned char data[2085];
    const float fv[3] = {1.25f, -7.0f, 1e30f};
    const float hv[3] = {0.5f, -1.0f, 2048.0f};
    const double dv[2] = {-0.75, 1e300};
    uint16_t h[3];
    half_f32_to_f16_array(hv, h, 3);
    data[0] = 0xab;
    memcpy(data + 1, fv, 12);
    memcpy(data + 13, h, 6);
    memcpy(data + 19, dv, 16);
    float bv[1025];
    uint16_t bf[1025];
    for (int i = 0; i < 1025; i++)
        bv[i] = (float)(i % 256 - 128); /* exact in bf16 */
    half_f32_to_bf16_array(bv, bf, 1025);
    memcpy(data + 35, bf, sizeof bf);

    struct bytes b = bytes_make(padded, data, sizeof data);
    ck_assert_uint_eq((8 + strlen(padded)) % 8, 0);
    struct tmp t;
    tmp_make(&t);
    write_file(t.file, &b);
    struct safetensors *st = open_ok(t.file);
    tmp_done(&t);
    const struct safetensors_tensor *tf = safetensors_find(st, "f");
    ck_assert_uint_ne((uintptr_t)tf->data % 4, 0);
    ck_assert_uint_ne((uintptr_t)safetensors_find(st, "h")->data % 2, 0);
    ck_assert_uint_ne((uintptr_t)safetensors_find(st, "d")->data % 8, 0);
    ck_assert_uint_ne((uintptr_t)safetensors_find(st, "bf")->data % 2, 0);
    float got[1025];
    read_f32_ok(st, "f", got, 3);
    assert_floats_eq(got, fv, 3);
    read_f32_ok(st, "h", got, 3);
    assert_floats_eq(got, hv, 3);
    read_f32_ok(st, "d", got, 2);
    ck_assert(got[0] == -0.75f && isinf(got[1]));
    read_f32_ok(st, "bf", got, 1025);
    assert_floats_eq(got, bv, 1025);
    ck_assert_int_eq(((const unsigned char *)safetensors_find(st, "pad")->data)[0], 0xab);
    safetensors_close(st);
    bytes_free(&b);
}
END_TEST

START_TEST(test_fp8_and_unsupported_reads)
{
    const char *header = "{\"e4\":{\"dtype\":\"F8_E4M3\",\"shape\":[6],\"data_offsets\":[0,6]},"
                         "\"e5\":{\"dtype\":\"F8_E5M2\",\"shape\":[3],\"data_offsets\":[6,9]},"
                         "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[9,13]}}";
    const unsigned char data[13] = {0x38, 0xb8, 0x7e, 0x01, 0x00, 0x7f, /* e4m3 */
                                    0x3c, 0xc0, 0x7c,                   /* e5m2 */
                                    1,    0,    0,    0};
    struct bytes b = bytes_make(header, data, sizeof data);
    struct safetensors *st = open_bytes_ok(&b);
    float got[6];
    read_f32_ok(st, "e4", got, 6);
    ck_assert(got[0] == 1.0f && got[1] == -1.0f && got[2] == 448.0f);
    ck_assert(got[3] == ldexpf(1.0f, -9) && got[4] == 0.0f && isnan(got[5]));
    read_f32_ok(st, "e5", got, 3);
    ck_assert(got[0] == 1.0f && got[1] == -2.0f && isinf(got[2]));

    struct errbuf err;
    errbuf_clear(&err);
    enum status s = safetensors_read_f32(st, safetensors_find(st, "i"), got, 1, &err);
    ck_assert_int_eq(s, STATUS_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "mem: tensor 'i': dtype I32"), "%s", err.msg);
    s = safetensors_read_f32(st, safetensors_find(st, "e4"), got, 5, &err);
    ck_assert_int_eq(s, STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "tensor 'e4': asked for 5 floats but it has 6"), "%s",
                  err.msg);
    safetensors_close(st);
    bytes_free(&b);
}
END_TEST

START_TEST(test_writer_errors)
{
    struct tmp t;
    tmp_make(&t);
    const float v = 1.0f;
    const int64_t shape[1] = {1}, neg[1] = {-1};
    struct errbuf err;
    struct safetensors_write_tensor dup[2] = {{"a", SAFETENSORS_F32, 1, shape, &v},
                                              {"a", SAFETENSORS_F32, 1, shape, &v}};
    ck_assert_int_eq(safetensors_write(t.file, dup, 2, NULL, 0, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "duplicate tensor name 'a'"), "%s", err.msg);
    struct safetensors_write_tensor bad[1] = {{"__metadata__", SAFETENSORS_F32, 1, shape, &v}};
    ck_assert_int_eq(safetensors_write(t.file, bad, 1, NULL, 0, &err), STATUS_INVALID_ARGUMENT);
    bad[0].name = "";
    ck_assert_int_eq(safetensors_write(t.file, bad, 1, NULL, 0, &err), STATUS_INVALID_ARGUMENT);
    bad[0].name = "x";
    bad[0].shape = neg;
    ck_assert_int_eq(safetensors_write(t.file, bad, 1, NULL, 0, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(access(t.file, F_OK), -1); /* nothing written */

    char missing[400];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.safetensors", t.dir);
    ck_assert_int_eq(safetensors_write(missing, dup, 1, NULL, 0, &err), STATUS_IO);
    ck_assert_msg(strstr(err.msg, "cannot create"), "%s", err.msg);
    tmp_done(&t);
}
END_TEST

/* ------------------------------------------------------------------ I/O failures */

START_TEST(test_nonexistent_file)
{
    struct safetensors *st = (struct safetensors *)1;
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = safetensors_open("/nonexistent/dir/model.safetensors", &st, &err);
    ck_assert_int_eq(s, STATUS_IO);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(err.msg, "/nonexistent/dir/model.safetensors: cannot open"), "%s",
                  err.msg);
}
END_TEST

START_TEST(test_directory)
{
    struct tmp t;
    tmp_make(&t);
    struct safetensors *st = NULL;
    struct errbuf err;
    enum status s = safetensors_open(t.dir, &st, &err);
    tmp_done(&t);
    ck_assert_int_eq(s, STATUS_IO);
    ck_assert_msg(strstr(err.msg, "not a regular file"), "%s", err.msg);
}
END_TEST

/* ------------------------------------------------------------------ malformed prefix */

START_TEST(test_empty_file)
{
    struct bytes b = {malloc(1), 0};
    expect_fail(&b, STATUS_FORMAT, "file is empty");
    bytes_free(&b);
}
END_TEST

START_TEST(test_shorter_than_8)
{
    struct bytes b = {malloc(5), 5};
    memcpy(b.p, "\x02\0\0\0\0", 5);
    expect_fail(&b, STATUS_FORMAT, "file is 5 bytes, shorter than the 8-byte header length");
    bytes_free(&b);
}
END_TEST

START_TEST(test_header_length_past_file)
{
    struct bytes b = bytes_make_len(100, "{}", 2, NULL, 10);
    expect_fail(&b, STATUS_FORMAT, "header length 100 runs past the end of the file (20 bytes)");
    bytes_free(&b);
    b = bytes_make_len(UINT64_MAX, "{}", 2, NULL, 0); /* 8 + N would overflow */
    expect_fail(&b, STATUS_FORMAT, "exceeds the limit");
    bytes_free(&b);
}
END_TEST

START_TEST(test_header_length_over_limit)
{
    struct bytes b = bytes_make_len(100000001, "{}", 2, NULL, 0);
    expect_fail(&b, STATUS_FORMAT, "header length 100000001 exceeds the limit");
    bytes_free(&b);
}
END_TEST

START_TEST(test_header_length_too_small)
{
    struct bytes b = bytes_make_len(0, "{}", 2, NULL, 0);
    expect_fail(&b, STATUS_FORMAT, "header length 0 is too small");
    bytes_free(&b);
    b = bytes_make_len(1, "{}", 2, NULL, 0);
    expect_fail(&b, STATUS_FORMAT, "header length 1 is too small");
    bytes_free(&b);
}
END_TEST

START_TEST(test_truncated_file)
{
    /* a valid file with its last 4 bytes cut off */
    struct bytes b = bytes_make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                                NULL, 4);
    expect_fail(&b, STATUS_FORMAT, "tensor 'a': data_offsets [0,8] run past the data section");
    bytes_free(&b);
}
END_TEST

/* ------------------------------------------------------------------ malformed header */

#define HEADER_FAIL_TEST(test_name, header, ndata, sub)                                       \
    START_TEST(test_name) { expect_header_fail(header, ndata, sub); }                        \
    END_TEST

#define T1(fields) "{\"t\":{" fields "}}"
#define OK_FIELDS "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

HEADER_FAIL_TEST(test_not_json, "{not json}", 0, "header is not valid JSON")
HEADER_FAIL_TEST(test_json_truncated, "{\"t\":{\"dtype\":", 0, "header is not valid JSON")
HEADER_FAIL_TEST(test_json_array, "[{\"t\":1}]", 0, "header is not a JSON object")
HEADER_FAIL_TEST(test_json_string, "\"abc\"", 0, "header is not a JSON object")
HEADER_FAIL_TEST(test_leading_space, " {}", 0, "header is not a JSON object")
HEADER_FAIL_TEST(test_trailing_garbage, "{} x", 0, "header is not valid JSON")
HEADER_FAIL_TEST(test_two_objects, "{}{}", 0, "header is not valid JSON")
HEADER_FAIL_TEST(test_invalid_utf8, "{\"\xff\":1}", 0, "header is not valid JSON")
HEADER_FAIL_TEST(test_duplicate_tensor,
                 "{\"t\":{" OK_FIELDS "},\"t\":{" OK_FIELDS "}}", 8, "duplicate object key")
HEADER_FAIL_TEST(test_duplicate_field,
                 T1("\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]"),
                 8, "duplicate object key")
HEADER_FAIL_TEST(test_duplicate_metadata, "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0,
                 "duplicate object key")
HEADER_FAIL_TEST(test_entry_not_object, "{\"t\":[1,2]}", 0, "tensor 't': entry is not an object")
HEADER_FAIL_TEST(test_unknown_field,
                 T1("\"dtype\":\"F32\",\"shape\":[2],\"offsets\":[0,8]"), 8,
                 "tensor 't': unknown field 'offsets'")
HEADER_FAIL_TEST(test_empty_name,
                 "{\"\":{" OK_FIELDS "}}", 8, "a tensor has an empty name")
HEADER_FAIL_TEST(test_unknown_dtype,
                 T1("\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,8]"), 8,
                 "tensor 't': unknown dtype 'F12'")
HEADER_FAIL_TEST(test_lowercase_dtype,
                 T1("\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]"), 8,
                 "tensor 't': unknown dtype 'f32'")
HEADER_FAIL_TEST(test_dtype_not_string,
                 T1("\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]"), 8,
                 "tensor 't': 'dtype' is not a string")
HEADER_FAIL_TEST(test_dtype_missing, T1("\"shape\":[2],\"data_offsets\":[0,8]"), 8,
                 "tensor 't': missing field 'dtype'")
HEADER_FAIL_TEST(test_shape_negative,
                 T1("\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]"), 8,
                 "tensor 't': 'shape'[1] is not a non-negative integer")
HEADER_FAIL_TEST(test_shape_real,
                 T1("\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]"), 8,
                 "tensor 't': 'shape'[0] is not a non-negative integer")
HEADER_FAIL_TEST(test_shape_string,
                 T1("\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]"), 8,
                 "tensor 't': 'shape'[0] is not a non-negative integer")
HEADER_FAIL_TEST(test_shape_missing, T1("\"dtype\":\"F32\",\"data_offsets\":[0,8]"), 8,
                 "tensor 't': missing field 'shape'")
HEADER_FAIL_TEST(test_shape_not_array,
                 T1("\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]"), 8,
                 "tensor 't': 'shape' is not an array")
HEADER_FAIL_TEST(test_shape_too_many_dims,
                 T1("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]"), 8,
                 "tensor 't': 'shape' has 9 dims, more than 8")
HEADER_FAIL_TEST(test_offsets_missing, T1("\"dtype\":\"F32\",\"shape\":[2]"), 8,
                 "tensor 't': missing field 'data_offsets'")
HEADER_FAIL_TEST(test_offsets_one, T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]"), 8,
                 "tensor 't': 'data_offsets' is not an array of two integers")
HEADER_FAIL_TEST(test_offsets_three,
                 T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]"), 8,
                 "tensor 't': 'data_offsets' is not an array of two integers")
HEADER_FAIL_TEST(test_offsets_object,
                 T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"a\":0}"), 8,
                 "tensor 't': 'data_offsets' is not an array of two integers")
HEADER_FAIL_TEST(test_offsets_negative,
                 T1("\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-8,-8]"), 0,
                 "tensor 't': 'data_offsets' are not non-negative integers")
HEADER_FAIL_TEST(test_offsets_real,
                 T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]"), 8,
                 "tensor 't': 'data_offsets' are not non-negative integers")
HEADER_FAIL_TEST(test_offsets_huge_integer,
                 T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]"),
                 8, "header is not valid JSON")
HEADER_FAIL_TEST(test_offsets_begin_after_end,
                 T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]"), 8,
                 "tensor 't': data_offsets [8,0] have begin > end")
HEADER_FAIL_TEST(test_offsets_out_of_range,
                 T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]"), 8,
                 "tensor 't': data_offsets [8,16] run past the data section (8 bytes")
HEADER_FAIL_TEST(test_size_mismatch,
                 "{\"unet.conv_in.weight\":{\"dtype\":\"F16\",\"shape\":[320,4,3,3],"
                 "\"data_offsets\":[0,23038]}}",
                 23038,
                 "tensor 'unet.conv_in.weight': shape [320,4,3,3] × F16 needs 23040 bytes but "
                 "data_offsets span 23038")
HEADER_FAIL_TEST(test_size_mismatch_scalar,
                 T1("\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]"), 4,
                 "tensor 't': shape [] × F64 needs 8 bytes but data_offsets span 4")
HEADER_FAIL_TEST(test_shape_product_overflow,
                 T1("\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]"),
                 0, "tensor 't': shape [4611686018427387904,4] × F32 overflows")
HEADER_FAIL_TEST(test_byte_count_overflow,
                 T1("\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]"),
                 0, "× F64 overflows")
HEADER_FAIL_TEST(test_overlap,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, "tensor 'b': data_offsets [4,12] overlap tensor 'a' [0,8]")
HEADER_FAIL_TEST(test_same_offsets,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
                 8, "overlap tensor")
HEADER_FAIL_TEST(test_empty_tensor_inside_other,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                 8, "tensor 'z': data_offsets [4,4] overlap tensor 'a' [0,8]")
HEADER_FAIL_TEST(test_gap,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
                 16, "gap of 4 bytes between tensor 'a' (ends at 8) and tensor 'b' (begins at 12)")
HEADER_FAIL_TEST(test_gap_at_start,
                 T1("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]"), 8,
                 "tensor 't': data section bytes [0,4) before it are not covered")
HEADER_FAIL_TEST(test_end_not_covered,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16,
                 "8 trailing bytes after the last tensor 'a' (ends at 8 of 16)")
HEADER_FAIL_TEST(test_trailing_byte, T1(OK_FIELDS), 9,
                 "1 trailing bytes after the last tensor 't'")
HEADER_FAIL_TEST(test_data_without_tensors, "{}", 4,
                 "4 trailing bytes after the header but no tensors")
HEADER_FAIL_TEST(test_metadata_value_not_string, "{\"__metadata__\":{\"k\":\"v\",\"n\":1}}", 0,
                 "'__metadata__' entry 'n' is not a string")
HEADER_FAIL_TEST(test_metadata_value_object, "{\"__metadata__\":{\"k\":{\"a\":\"b\"}}}", 0,
                 "'__metadata__' entry 'k' is not a string")
HEADER_FAIL_TEST(test_metadata_not_object, "{\"__metadata__\":[\"a\",\"b\"]}", 0,
                 "'__metadata__' is not an object of strings")
/* Nested 64 deep (within jansson's limit): parsed, then rejected by shape. */
START_TEST(test_deep_nesting)
{
    char h[256];
    size_t n = (size_t)sprintf(h, "{\"__metadata__\":");
    memset(h + n, '[', 64);
    memset(h + n + 64, ']', 64);
    strcpy(h + n + 128, "}");
    expect_header_fail(h, 0, "'__metadata__' is not an object");
}
END_TEST

START_TEST(test_nul_in_header)
{
    /* padding with NUL bytes instead of spaces is not JSON */
    const char header[8] = {'{', '}', ' ', ' ', '\0', '\0', '\0', '\0'};
    struct bytes b = bytes_make_len(8, header, 8, NULL, 0);
    expect_fail(&b, STATUS_FORMAT, "header is not valid JSON");
    bytes_free(&b);
}
END_TEST

START_TEST(test_very_deep_nesting)
{
    /* deeper than jansson's limit: rejected, no stack overflow */
    size_t depth = 100000;
    char *h = malloc(2 * depth + 32);
    ck_assert_ptr_nonnull(h);
    size_t n = (size_t)sprintf(h, "{\"__metadata__\":");
    memset(h + n, '[', depth);
    memset(h + n + depth, ']', depth);
    strcpy(h + n + 2 * depth, "}");
    expect_header_fail(h, 0, "header is not valid JSON");
    free(h);
}
END_TEST

/* ------------------------------------------------------------------ corruption */

/* A valid file with several dtypes, produced by the writer, as bytes. */
static struct bytes fuzz_seed(void)
{
    struct tmp t;
    tmp_make(&t);
    float f[12];
    uint16_t h[6];
    for (int i = 0; i < 12; i++)
        f[i] = (float)i * 0.5f - 3.0f;
    half_f32_to_f16_array(f, h, 6);
    const double d[2] = {1.0, -2.0};
    const signed char i8[3] = {1, -2, 3};
    const unsigned char e4[4] = {0x38, 0x7f, 0x00, 0xff};
    const int64_t s1[2] = {3, 4}, s2[1] = {6}, s3[1] = {2}, s4[2] = {3, 1}, s5[1] = {4},
                  s6[2] = {0, 3};
    const struct safetensors_write_tensor w[] = {
        {"down.0.weight", SAFETENSORS_F32, 2, s1, f}, {"down.0.bias", SAFETENSORS_F16, 1, s2, h},
        {"mid.scale", SAFETENSORS_F64, 1, s3, d},     {"ids", SAFETENSORS_I8, 2, s4, i8},
        {"fp8", SAFETENSORS_F8_E4M3, 1, s5, e4},      {"nothing", SAFETENSORS_BF16, 2, s6, NULL},
        {"s", SAFETENSORS_BF16, 0, NULL, h},
    };
    const struct safetensors_kv meta[] = {{"format", "pt"}, {"k", "v"}};
    struct errbuf err;
    ck_assert_int_eq(safetensors_write(t.file, w, 7, meta, 2, &err), STATUS_OK);
    struct bytes b = read_file(t.file);
    tmp_done(&t);
    return b;
}

/* Whatever opened must be internally consistent and readable (base NULL: the
 * bounds are not known to the caller). */
static void fuzz_check(const struct safetensors *st, const unsigned char *base, size_t size)
{
    for (size_t i = 0; i < safetensors_count(st); i++) {
        const struct safetensors_tensor *t = safetensors_at(st, i);
        const unsigned char *p = t->data;
        ck_assert(!base || (p >= base + 8 && p + t->nbytes <= base + size));
        ck_assert_ptr_eq(safetensors_find(st, t->name), t);
        float *dst = malloc((t->numel ? t->numel : 1) * sizeof *dst);
        ck_assert_ptr_nonnull(dst);
        enum status s = safetensors_read_f32(st, t, dst, t->numel, NULL);
        ck_assert(s == STATUS_OK || s == STATUS_UNSUPPORTED);
        free(dst);
    }
    for (size_t i = 0; i < safetensors_metadata_count(st); i++) {
        const char *k, *v;
        ck_assert(safetensors_metadata_at(st, i, &k, &v));
        ck_assert_ptr_eq(safetensors_metadata_get(st, k), v);
    }
}

static void fuzz_mutate(struct test_rng *r, unsigned char *p, size_t *n, size_t hend)
{
    static const char interesting[] = "{}[]\":,-0123456789e. \\";
    int kind = test_rng_int(r, 0, 9);
    if (kind == 0) { /* truncate */
        *n = (size_t)test_rng_int(r, 0, (int)*n);
        return;
    }
    int edits = test_rng_int(r, 1, 4);
    for (int e = 0; e < edits && *n > 0; e++) {
        size_t pos = test_rng_int(r, 0, 9) < 8 ? (size_t)test_rng_int(r, 8, (int)hend - 1)
                                                : (size_t)test_rng_int(r, 0, (int)*n - 1);
        if (pos >= *n)
            continue;
        switch (test_rng_int(r, 0, 2)) {
        case 0: p[pos] ^= (unsigned char)(1u << test_rng_int(r, 0, 7)); break;
        case 1: p[pos] = (unsigned char)test_rng_int(r, 0, 255); break;
        default: p[pos] = (unsigned char)interesting[test_rng_int(r, 0, sizeof interesting - 2)];
        }
    }
}

START_TEST(test_random_corruption)
{
    struct bytes seed = fuzz_seed();
    size_t hend = 8 + (size_t)seed.p[0] + 256 * (size_t)seed.p[1];
    ck_assert_uint_lt(hend, seed.n);
    struct test_rng r = test_rng_make(20240607);
    int ok = 0, failed = 0;
    for (int it = 0; it < 20000; it++) {
        size_t n = seed.n;
        unsigned char *p = malloc(n);
        ck_assert_ptr_nonnull(p);
        memcpy(p, seed.p, n);
        fuzz_mutate(&r, p, &n, hend);
        unsigned char *exact = malloc(n ? n : 1); /* exact size: ASan sees over-reads */
        ck_assert_ptr_nonnull(exact);
        memcpy(exact, p, n);
        free(p);
        struct safetensors *st = NULL;
        struct errbuf err;
        errbuf_clear(&err);
        enum status s = safetensors_open_memory(exact, n, "fuzz", &st, &err);
        if (s == STATUS_OK) {
            fuzz_check(st, exact, n);
            safetensors_close(st);
            ok++;
        } else {
            ck_assert_msg(s == STATUS_FORMAT, "%s: %s", status_name(s), err.msg);
            ck_assert_ptr_null(st);
            ck_assert(strncmp(err.msg, "fuzz: ", 6) == 0);
            failed++;
        }
        free(exact);
    }
    ck_assert_int_gt(ok, 100);
    ck_assert_int_gt(failed, 1000);
    bytes_free(&seed);
}
END_TEST

/* A few corrupted files through the mmap path too. */
START_TEST(test_random_corruption_files)
{
    struct bytes seed = fuzz_seed();
    size_t hend = 8 + (size_t)seed.p[0] + 256 * (size_t)seed.p[1];
    struct test_rng r = test_rng_make(77);
    struct tmp t;
    tmp_make(&t);
    for (int it = 0; it < 300; it++) {
        struct bytes b = {malloc(seed.n), seed.n};
        memcpy(b.p, seed.p, seed.n);
        fuzz_mutate(&r, b.p, &b.n, hend);
        write_file(t.file, &b);
        struct safetensors *st = NULL;
        struct errbuf err;
        enum status s = safetensors_open(t.file, &st, &err);
        ck_assert(s == STATUS_OK || s == STATUS_FORMAT);
        if (s == STATUS_OK) {
            fuzz_check(st, NULL, 0);
            safetensors_close(st);
        }
        bytes_free(&b);
    }
    tmp_done(&t);
    bytes_free(&seed);
}
END_TEST

/* ------------------------------------------------------------------ suite */

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *valid = tcase_create("valid");
    tcase_add_test(valid, test_dtype_names);
    tcase_add_test(valid, test_writer_round_trip);
    tcase_add_test(valid, test_hand_built);
    tcase_add_test(valid, test_reference_fixture);
    tcase_add_test(valid, test_empty_header_ok);
    tcase_add_test(valid, test_unaligned);
    tcase_add_test(valid, test_fp8_and_unsupported_reads);
    tcase_add_test(valid, test_writer_errors);
    suite_add_tcase(s, valid);

    TCase *bad = tcase_create("malformed");
    tcase_add_test(bad, test_nonexistent_file);
    tcase_add_test(bad, test_directory);
    tcase_add_test(bad, test_empty_file);
    tcase_add_test(bad, test_shorter_than_8);
    tcase_add_test(bad, test_header_length_past_file);
    tcase_add_test(bad, test_header_length_over_limit);
    tcase_add_test(bad, test_header_length_too_small);
    tcase_add_test(bad, test_truncated_file);
    tcase_add_test(bad, test_not_json);
    tcase_add_test(bad, test_json_truncated);
    tcase_add_test(bad, test_json_array);
    tcase_add_test(bad, test_json_string);
    tcase_add_test(bad, test_leading_space);
    tcase_add_test(bad, test_trailing_garbage);
    tcase_add_test(bad, test_two_objects);
    tcase_add_test(bad, test_invalid_utf8);
    tcase_add_test(bad, test_nul_in_header);
    tcase_add_test(bad, test_duplicate_tensor);
    tcase_add_test(bad, test_duplicate_field);
    tcase_add_test(bad, test_duplicate_metadata);
    tcase_add_test(bad, test_entry_not_object);
    tcase_add_test(bad, test_unknown_field);
    tcase_add_test(bad, test_empty_name);
    tcase_add_test(bad, test_unknown_dtype);
    tcase_add_test(bad, test_lowercase_dtype);
    tcase_add_test(bad, test_dtype_not_string);
    tcase_add_test(bad, test_dtype_missing);
    tcase_add_test(bad, test_shape_negative);
    tcase_add_test(bad, test_shape_real);
    tcase_add_test(bad, test_shape_string);
    tcase_add_test(bad, test_shape_missing);
    tcase_add_test(bad, test_shape_not_array);
    tcase_add_test(bad, test_shape_too_many_dims);
    tcase_add_test(bad, test_offsets_missing);
    tcase_add_test(bad, test_offsets_one);
    tcase_add_test(bad, test_offsets_three);
    tcase_add_test(bad, test_offsets_object);
    tcase_add_test(bad, test_offsets_negative);
    tcase_add_test(bad, test_offsets_real);
    tcase_add_test(bad, test_offsets_huge_integer);
    tcase_add_test(bad, test_offsets_begin_after_end);
    tcase_add_test(bad, test_offsets_out_of_range);
    tcase_add_test(bad, test_size_mismatch);
    tcase_add_test(bad, test_size_mismatch_scalar);
    tcase_add_test(bad, test_shape_product_overflow);
    tcase_add_test(bad, test_byte_count_overflow);
    tcase_add_test(bad, test_overlap);
    tcase_add_test(bad, test_same_offsets);
    tcase_add_test(bad, test_empty_tensor_inside_other);
    tcase_add_test(bad, test_gap);
    tcase_add_test(bad, test_gap_at_start);
    tcase_add_test(bad, test_end_not_covered);
    tcase_add_test(bad, test_trailing_byte);
    tcase_add_test(bad, test_data_without_tensors);
    tcase_add_test(bad, test_metadata_value_not_string);
    tcase_add_test(bad, test_metadata_value_object);
    tcase_add_test(bad, test_metadata_not_object);
    tcase_add_test(bad, test_deep_nesting);
    tcase_add_test(bad, test_very_deep_nesting);
    suite_add_tcase(s, bad);

    TCase *fuzz = tcase_create("corruption");
    tcase_set_timeout(fuzz, 300);
    tcase_add_test(fuzz, test_random_corruption);
    tcase_add_test(fuzz, test_random_corruption_files);
    suite_add_tcase(s, fuzz);
    return s;
}

int main(void) { return test_run_suite(safetensors_suite()); }
