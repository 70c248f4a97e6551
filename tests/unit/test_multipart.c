/* tests/unit/test_multipart.c — api/multipart: a body as curl -F writes it, bodies the
 * openai Python package (httpx) wrote (tests/fixtures/multipart/, made by
 * tools/make_multipart_fixtures.py), Content-Type variants, preamble and epilogue, the
 * boundary's text inside data, empty parts, escapes, header case, the limits, malformed
 * bodies refused with their messages, and every truncation of valid bodies.  Bodies are
 * parsed from exactly-sized heap copies (no NUL after them).
 * Built only with DIFFUSIOND_SERVER=ON (tests/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"
#include "tests/testutil.h"

#define FIXTURES DIFFUSIOND_SOURCE_DIR "/tests/fixtures/multipart/"

static uint8_t *read_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, FIXTURES "%s", name);
    return test_read_file(path, len);
}

/* Parses a malloc'ed copy of body[0 … len) holding exactly len bytes (so that an
 * over-read is a heap overflow under ASan); *copy is that copy (caller frees). */
static enum status parse_copy(const char *ct, const void *body, size_t len,
                              struct multipart_form *f, struct errbuf *err, uint8_t **copy)
{
    *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(*copy);
    if (len)
        memcpy(*copy, body, len);
    errbuf_clear(err);
    return multipart_parse(ct, *copy, len, f, err);
}

static void assert_str(const char *got, size_t got_len, const char *want)
{
    ck_assert_msg(got != NULL, "NULL where \"%s\" was expected", want);
    ck_assert_msg(got_len == strlen(want) && memcmp(got, want, got_len) == 0,
                  "\"%.*s\" where \"%s\" was expected", (int)got_len, got, want);
}

static void assert_part(const struct multipart_part *p, const char *name, const char *filename,
                        const char *ctype, const void *data, size_t len)
{
    ck_assert_ptr_nonnull(p);
    assert_str(p->name, p->name_len, name);
    if (filename)
        assert_str(p->filename, p->filename_len, filename);
    else
        ck_assert_ptr_null(p->filename);
    if (ctype)
        assert_str(p->content_type, p->content_type_len, ctype);
    else
        ck_assert_ptr_null(p->content_type);
    ck_assert_uint_eq(p->len, len);
    ck_assert(len == 0 || memcmp(p->data, data, len) == 0);
}

/* A body that must be refused with a message containing want. */
static void assert_refused(const char *ct, const char *body, size_t len, const char *want)
{
    struct multipart_form f;
    struct errbuf err;
    uint8_t *copy;
    const enum status s = parse_copy(ct, body, len, &f, &err, &copy);
    ck_assert_msg(s == STATUS_INVALID_ARGUMENT, "accepted (status %d): %.*s", (int)s,
                  (int)len, body);
    ck_assert_int_eq(f.n, 0);
    ck_assert_msg(strstr(err.msg, want) != NULL, "message \"%s\", expected \"%s\"", err.msg,
                  want);
    free(copy);
}

/* curl 8's boundary: 24 dashes and 16 hex digits (and 2 more dashes on the wire). */
#define CURL_B "------------------------d74496d66958873e"
#define CURL_CT "multipart/form-data; boundary=" CURL_B

/* What `curl -F image=@x.png -F prompt='a cat' -F n=2 URL` sends; the file's bytes hold
 * CRLF, "--", the boundary without the CRLF before it and a cut delimiter. */
static const char CURL_IMAGE[] = "\x89PNG\r\n\x1a\n\0\x01--\r\nx--" CURL_B "--\r\n-"
                                 "\r\n--" "------------------------d74496d66958873"
                                 "\n--" CURL_B "\r\n\r\n";
#define CURL_IMAGE_LEN (sizeof CURL_IMAGE - 1)

static size_t curl_body(char *buf)
{
    size_t n = 0;
#define PUT(s, len) (memcpy(buf + n, (s), (len)), n += (len))
#define PUTS(s) PUT(s, strlen(s))
    PUTS("--" CURL_B "\r\n"
         "Content-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
         "Content-Type: image/png\r\n\r\n");
    PUT(CURL_IMAGE, CURL_IMAGE_LEN);
    PUTS("\r\n--" CURL_B "\r\n"
         "Content-Disposition: form-data; name=\"prompt\"\r\n\r\n"
         "a cat\r\n--" CURL_B "\r\n"
         "Content-Disposition: form-data; name=\"n\"\r\n\r\n"
         "2\r\n--" CURL_B "--\r\n");
#undef PUTS
#undef PUT
    return n;
}

START_TEST(test_curl_body)
{
    char body[1024];
    const size_t len = curl_body(body);
    struct multipart_form f;
    struct errbuf err;
    uint8_t *copy;
    ck_assert_int_eq(parse_copy(CURL_CT, body, len, &f, &err, &copy), STATUS_OK);
    ck_assert_int_eq(f.n, 3);
    assert_part(&f.parts[0], "image", "x.png", "image/png", CURL_IMAGE, CURL_IMAGE_LEN);
    assert_part(&f.parts[1], "prompt", NULL, NULL, "a cat", 5);
    assert_part(&f.parts[2], "n", NULL, NULL, "2", 1);
    ck_assert_ptr_eq(multipart_find(&f, "prompt"), &f.parts[1]);
    /* zero-copy: the data points into the body */
    ck_assert(f.parts[0].data > copy && f.parts[0].data + f.parts[0].len < copy + len);
    ck_assert(f.parts[0].name > (const char *)copy);
    free(copy);
}
END_TEST

/* X.body parsed under X.content-type (the fixture); the caller frees *body. */
static void parse_fixture(const char *name, struct multipart_form *f, uint8_t **body)
{
    char file[128];
    size_t ct_len, len;
    snprintf(file, sizeof file, "%s.content-type", name);
    char *ct = (char *)read_fixture(file, &ct_len);
    snprintf(file, sizeof file, "%s.body", name);
    uint8_t *b = read_fixture(file, &len);
    struct errbuf err;
    const enum status s = parse_copy(ct, b, len, f, &err, body);
    ck_assert_msg(s == STATUS_OK, "%s: %s", name, err.msg);
    free(b);
    free(ct);
}

START_TEST(test_openai_edit)
{
    size_t img_len;
    uint8_t *img = read_fixture("image.bin", &img_len);
    struct multipart_form f;
    uint8_t *body;
    parse_fixture("openai_edit", &f, &body);
    ck_assert_int_eq(f.n, 4);
    assert_part(multipart_find(&f, "prompt"), "prompt", NULL, NULL, "a red fox", 9);
    assert_part(multipart_find(&f, "n"), "n", NULL, NULL, "2", 1);
    assert_part(multipart_find(&f, "size"), "size", NULL, NULL, "256x256", 7);
    assert_part(multipart_find(&f, "image"), "image", "a.png", "image/png", img, img_len);
    free(body);
    free(img);
}
END_TEST

START_TEST(test_openai_edit_multi)
{
    size_t img_len;
    uint8_t *img = read_fixture("image.bin", &img_len);
    struct multipart_form f;
    uint8_t *body;
    parse_fixture("openai_edit_multi", &f, &body);
    ck_assert_int_eq(f.n, 4);
    assert_part(&f.parts[0], "prompt", NULL, NULL, "two", 3);
    assert_part(&f.parts[1], "model", NULL, NULL, "gpt-image-1", 11);
    assert_part(&f.parts[2], "image[]", "a.png", "image/png", img, img_len);
    assert_part(&f.parts[3], "image[]", "b.webp", "image/webp", "RIFF", 4);
    ck_assert_ptr_eq(multipart_find(&f, "image[]"), &f.parts[2]); /* the first */
    ck_assert_ptr_null(multipart_find(&f, "image"));
    free(body);
    free(img);
}
END_TEST

START_TEST(test_httpx_escapes)
{
    struct multipart_form f;
    uint8_t *body;
    parse_fixture("httpx_escapes", &f, &body);
    ck_assert_int_eq(f.n, 2);
    /* httpx writes " as %22 (left as it is) and \ as \\ (unescaped) */
    assert_part(&f.parts[0], "we%22ird\\name", NULL, NULL, "v", 1);
    assert_part(&f.parts[1], "image", "x%22y\\z.png", "image/png", "\x89PNG", 4);
    ck_assert(f.parts[0].name >= f.scratch && f.parts[0].name < f.scratch + sizeof f.scratch);
    free(body);
}
END_TEST

#define SIMPLE(b) "--" b "\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--" b "--"

START_TEST(test_content_type_variants)
{
    static const struct {
        const char *ct, *body;
    } ok[] = {
        {"multipart/form-data; boundary=abc", SIMPLE("abc")},
        {"multipart/form-data; boundary=\"abc\"", SIMPLE("abc")},
        {"Multipart/Form-Data;boundary=abc", SIMPLE("abc")},
        {"  MULTIPART/FORM-DATA ; charset=utf-8; BOUNDARY=abc ; x=\"y;z\"", SIMPLE("abc")},
        {"multipart/form-data; boundary=\"a b:c?(d)\"", SIMPLE("a b:c?(d)")},
        {"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
         SIMPLE("----WebKitFormBoundary7MA4YWxkTrZu0gW")},
        /* 70 characters: the most RFC 2046 allows */
        {"multipart/form-data; boundary="
         "0123456789012345678901234567890123456789012345678901234567890123456789",
         SIMPLE("0123456789012345678901234567890123456789012345678901234567890123456789")},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct multipart_form f;
        struct errbuf err;
        uint8_t *copy;
        const enum status s = parse_copy(ok[i].ct, ok[i].body, strlen(ok[i].body), &f, &err,
                                         &copy);
        ck_assert_msg(s == STATUS_OK, "%s: %s", ok[i].ct, err.msg);
        ck_assert_int_eq(f.n, 1);
        assert_part(&f.parts[0], "x", NULL, NULL, "v", 1);
        free(copy);
    }
    ck_assert(multipart_content_type_is("multipart/form-data"));
    ck_assert(multipart_content_type_is("multipart/form-data; boundary=x"));
    ck_assert(multipart_content_type_is(" Multipart/Form-Data ;boundary=x"));
    ck_assert(!multipart_content_type_is(NULL));
    ck_assert(!multipart_content_type_is(""));
    ck_assert(!multipart_content_type_is("application/json"));
    ck_assert(!multipart_content_type_is("multipart/form-datax"));
    ck_assert(!multipart_content_type_is("multipart/mixed; boundary=x"));
    ck_assert(!multipart_content_type_is("multipart/form"));
}
END_TEST

START_TEST(test_content_type_errors)
{
    static const char *const bad[][2] = {
        {"application/json", "not multipart/form-data"},
        {"multipart/mixed; boundary=abc", "not multipart/form-data"},
        {"multipart/form-data", "no boundary in the Content-Type"},
        {"multipart/form-data; charset=utf-8", "no boundary in the Content-Type"},
        {"multipart/form-data; boundary=\"\"", "an empty boundary"},
        {"multipart/form-data; boundary=", "malformed Content-Type parameter"},
        {"multipart/form-data; boundary", "malformed Content-Type parameter"},
        {"multipart/form-data; boundary=\"abc", "malformed Content-Type parameter"},
        {"multipart/form-data; boundary=a b", "malformed Content-Type parameter"},
        {"multipart/form-data boundary=abc", "malformed Content-Type parameter"},
        {"multipart/form-data; boundary=abc; boundary=abc", "two boundary parameters"},
        {"multipart/form-data; boundary="
         "01234567890123456789012345678901234567890123456789012345678901234567890",
         "a boundary of 71 characters in the Content-Type: at most 70"},
        {"multipart/form-data; boundary=\"abc \"", "does not allow"}, /* space last */
        {"multipart/form-data; boundary=a*b", "does not allow"},
        {"multipart/form-data; boundary=\"a\\\\b\"", "does not allow"},
        {"multipart/form-data; boundary=\"a\\\"b\"", "does not allow"},
    };
    const char *body = SIMPLE("abc");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_refused(bad[i][0], body, strlen(body), bad[i][1]);
    assert_refused(NULL, body, strlen(body), "not multipart/form-data");
}
END_TEST

#define CT "multipart/form-data; boundary=XyZ"

START_TEST(test_preamble_epilogue)
{
    static const char body[] =
        "This is the preamble. --XyZ is not a delimiter here.\r\n"
        "--XyZ \t\r\n" /* transport padding */
        "Content-Disposition: form-data; name=\"a\"\r\n\r\n"
        "1\r\n--XyZ\r\n"
        "Content-Disposition: form-data; name=\"b\"\r\n\r\n"
        "2\r\n--XyZ--\r\nThis is the epilogue.\r\n--XyZ\r\nContent-Disposition: junk\r\n";
    struct multipart_form f;
    struct errbuf err;
    uint8_t *copy;
    ck_assert_int_eq(parse_copy(CT, body, sizeof body - 1, &f, &err, &copy), STATUS_OK);
    ck_assert_int_eq(f.n, 2);
    assert_part(&f.parts[0], "a", NULL, NULL, "1", 1);
    assert_part(&f.parts[1], "b", NULL, NULL, "2", 1);
    free(copy);
    /* the close delimiter at the very end, without CRLF */
    static const char tight[] = "\r\n--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n"
                                "\r\n--XyZ--";
    ck_assert_int_eq(parse_copy(CT, tight, sizeof tight - 1, &f, &err, &copy), STATUS_OK);
    ck_assert_int_eq(f.n, 1);
    assert_part(&f.parts[0], "a", NULL, NULL, "", 0);
    free(copy);
}
END_TEST

START_TEST(test_boundary_text_in_data)
{
    static const char data[] = "x--XyZ\r\n-XyZ--x--XyZ\n--XyZ\r\n-XyZ\r\n--Xy\r--XyZ\r\r\n";
    char body[512];
    const int n = snprintf(body, sizeof body,
                           "--XyZ\r\nContent-Disposition: form-data; name=\"d\"\r\n\r\n%s"
                           "\r\n--XyZ--\r\n",
                           data);
    struct multipart_form f;
    struct errbuf err;
    uint8_t *copy;
    ck_assert_int_eq(parse_copy(CT, body, (size_t)n, &f, &err, &copy), STATUS_OK);
    ck_assert_int_eq(f.n, 1);
    assert_part(&f.parts[0], "d", NULL, NULL, data, sizeof data - 1);
    free(copy);
}
END_TEST

START_TEST(test_empty_parts)
{
    static const char body[] = "--XyZ\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n"
                               "\r\n--XyZ\r\n"
                               /* headers ending at the delimiter: no blank line, no body */
                               "Content-Disposition: form-data; name=\"h\"\r\n"
                               "\r\n--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"\"\r\n\r\n"
                               "x\r\n--XyZ--";
    struct multipart_form f;
    struct errbuf err;
    uint8_t *copy;
    ck_assert_int_eq(parse_copy(CT, body, sizeof body - 1, &f, &err, &copy), STATUS_OK);
    ck_assert_int_eq(f.n, 3);
    assert_part(&f.parts[0], "e", NULL, NULL, "", 0);
    assert_part(&f.parts[1], "h", NULL, NULL, "", 0);
    assert_part(&f.parts[2], "", NULL, NULL, "x", 1);
    ck_assert_ptr_eq(multipart_find(&f, ""), &f.parts[2]);
    free(copy);
    /* an empty form, as browsers send it */
    ck_assert_int_eq(parse_copy(CT, "--XyZ--\r\n", 9, &f, &err, &copy), STATUS_OK);
    ck_assert_int_eq(f.n, 0);
    ck_assert_ptr_null(multipart_find(&f, "x"));
    free(copy);
}
END_TEST

START_TEST(test_names_and_headers)
{
    static const char body[] =
        "--XyZ\r\n"
        "content-type: Image/PNG; x=1 \r\n"
        "X-Whatever: ignored\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "CONTENT-DISPOSITION: Form-Data;filename=\"C:\\dir\\x.png\"; filename*=utf-8''y.png;"
        " NAME=\"a\\\"b\\\\c\"\r\n\r\n"
        "1\r\n--XyZ\r\n"
        "Content-Disposition: form-data; name=tok-en.1; filename=f.bin\r\n\r\n"
        "2\r\n--XyZ\r\n"
        "Content-Disposition:form-data;name=\"caf\xc3\xa9\"  \r\n\r\n"
        "3\r\n--XyZ--";
    struct multipart_form f;
    struct errbuf err;
    uint8_t *copy;
    ck_assert_int_eq(parse_copy(CT, body, sizeof body - 1, &f, &err, &copy), STATUS_OK);
    ck_assert_int_eq(f.n, 3);
    /* \" and \\ unescaped; other backslashes kept (curl sends Windows paths as they are) */
    assert_part(&f.parts[0], "a\"b\\c", "C:\\dir\\x.png", "Image/PNG; x=1", "1", 1);
    assert_part(&f.parts[1], "tok-en.1", "f.bin", NULL, "2", 1);
    assert_part(&f.parts[2], "caf\xc3\xa9", NULL, NULL, "3", 1);
    ck_assert_ptr_eq(multipart_find(&f, "a\"b\\c"), &f.parts[0]);
    ck_assert_ptr_null(multipart_find(&f, "A\"b\\c")); /* names are case-sensitive */
    ck_assert_ptr_null(multipart_find(&f, "tok-en"));
    ck_assert_ptr_null(multipart_find(NULL, "x"));
    free(copy);
}
END_TEST

/* A body of k parts named p0, p1 … */
static size_t many_parts(char *buf, int k)
{
    size_t n = 0;
    for (int i = 0; i < k; i++)
        n += (size_t)sprintf(buf + n,
                             "--XyZ\r\nContent-Disposition: form-data; name=p%d\r\n\r\n%d\r\n",
                             i, i);
    n += (size_t)sprintf(buf + n, "--XyZ--\r\n");
    return n;
}

START_TEST(test_part_limit)
{
    char buf[8192];
    size_t n = many_parts(buf, MULTIPART_MAX_PARTS);
    struct multipart_form f;
    struct errbuf err;
    uint8_t *copy;
    ck_assert_int_eq(parse_copy(CT, buf, n, &f, &err, &copy), STATUS_OK);
    ck_assert_int_eq(f.n, MULTIPART_MAX_PARTS);
    assert_part(multipart_find(&f, "p31"), "p31", NULL, NULL, "31", 2);
    free(copy);
    n = many_parts(buf, MULTIPART_MAX_PARTS + 1);
    assert_refused(CT, buf, n, "more than 32 parts");
}
END_TEST

START_TEST(test_scratch_limit)
{
    /* names with escapes: 2048 bytes unescaped in all fit, one more does not */
    static char body[16384], name[1100];
    memset(name, 'n', sizeof name);
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = 0;
        const int lens[2] = {1024, 1024 + extra}; /* each with one \" */
        for (int i = 0; i < 2; i++)
            n += (size_t)sprintf(body + n,
                                 "--XyZ\r\nContent-Disposition: form-data; name=\"\\\"%.*s\""
                                 "\r\n\r\nv\r\n",
                                 lens[i] - 1, name);
        n += (size_t)sprintf(body + n, "--XyZ--");
        if (extra) {
            assert_refused(CT, body, n, "part 2: quoted names with escapes longer than 2048");
            continue;
        }
        struct multipart_form f;
        struct errbuf err;
        uint8_t *copy;
        ck_assert_int_eq(parse_copy(CT, body, n, &f, &err, &copy), STATUS_OK);
        ck_assert_int_eq(f.n, 2);
        ck_assert_uint_eq(f.parts[1].name_len, 1024);
        ck_assert_int_eq(f.parts[1].name[0], '"');
        free(copy);
    }
}
END_TEST

#define CD "Content-Disposition: form-data; name=\"x\"\r\n"

START_TEST(test_malformed)
{
    static const char *const bad[][2] = {
        {"", "the boundary is not in the body"},
        {"--XYZ\r\n" CD "\r\nv\r\n--XYZ--", "the boundary is not in the body"},
        {"--XyZ\r\n" CD "\r\nv\r\n", "the closing boundary is missing"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ", "the closing boundary is missing"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ-", "the closing boundary is missing"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ\r", "the closing boundary is missing"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ\r\n", "the closing boundary is missing"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ \t", "the closing boundary is missing"},
        {"--XyZ\r\n" CD "\r\nv\n--XyZ--", "the closing boundary is missing"}, /* bare LF */
        {"--XyZ\r\n--XyZ--", "the closing boundary is missing"},
        {"--XyZx\r\n" CD "\r\nv\r\n--XyZ--", "before part 1 is followed by neither"},
        {"--XyZ\n" CD "\r\nv\r\n--XyZ--", "before part 1 is followed by neither"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ2\r\n--XyZ--", "before part 2 is followed by neither"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ-x", "before part 2 is followed by neither"},
        {"--XyZ\r\n\r\nv\r\n--XyZ--", "part 1: no Content-Disposition form-data name"},
        {"--XyZ\r\n\r\n--XyZ--", "part 1: no Content-Disposition form-data name"},
        {"--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ--",
         "part 1: no Content-Disposition form-data name"},
        {"--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--",
         "part 1: no Content-Disposition form-data name"},
        {"--XyZ\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nv\r\n--XyZ--",
         "part 1: no Content-Disposition form-data name"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ\r\nContent-Disposition: attachment; name=y\r\n\r\n"
         "v\r\n--XyZ--",
         "part 2: the Content-Disposition is not form-data"},
        {"--XyZ\r\nContent-Disposition: form-datax; name=y\r\n\r\nv\r\n--XyZ--",
         "part 1: the Content-Disposition is not form-data"},
        {"--XyZ\r\n" CD CD "\r\nv\r\n--XyZ--", "part 1: two Content-Disposition headers"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nv\r\n--XyZ--",
         "part 1: two name parameters"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a; filename=b; FILENAME=c\r\n\r\n"
         "v\r\n--XyZ--",
         "part 1: two filename parameters"},
        {"--XyZ\r\n" CD "Content-Type: a\r\nContent-Type: b\r\n\r\nv\r\n--XyZ--",
         "part 1: two Content-Type headers"},
        {"--XyZ\r\n" CD "Content-Type:  \r\n\r\nv\r\n--XyZ--", "part 1: an empty Content-Type"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"x\r\n\r\nv\r\n--XyZ--",
         "part 1: a malformed Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"x\\\"\r\n\r\nv\r\n--XyZ--",
         "part 1: a malformed Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name = \"x\"\r\n\r\nv\r\n--XyZ--",
         "part 1: a malformed Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"x\";\r\n\r\nv\r\n--XyZ--",
         "part 1: a malformed Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"x\" y\r\n\r\nv\r\n--XyZ--",
         "part 1: a malformed Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\r\n\r\nv\r\n--XyZ--",
         "part 1: a malformed Content-Disposition"},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"a\tb\x01\"\r\n\r\nv\r\n--XyZ--",
         "part 1: a control character in the headers"},
        {"--XyZ\r\nContent-Disposition: form-data;\n name=\"x\"\r\n\r\nv\r\n--XyZ--",
         "part 1: a control character in the headers"}, /* bare LF */
        {"--XyZ\r\n" CD "X: a\rb\r\n\r\nv\r\n--XyZ--",
         "part 1: a control character in the headers"}, /* bare CR */
        {"--XyZ\r\n" CD "X-A: b\r\n c\r\n\r\nv\r\n--XyZ--", "part 1: a folded header line"},
        {"--XyZ\r\n" CD "No colon here\r\n\r\nv\r\n--XyZ--", "part 1: a malformed header line"},
        {"--XyZ\r\n" CD ": empty name\r\n\r\nv\r\n--XyZ--", "part 1: a malformed header line"},
        {"--XyZ\r\n" CD "Bad Name: v\r\n\r\nv\r\n--XyZ--", "part 1: a malformed header line"},
        {"--XyZ\r\n" CD "\r\nv\r\n--XyZ\r\nContent-Disposition: form-data; name=\"y\"\r\n"
         "--XyZ--",
         "part 2: the headers do not end with a blank line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_refused(CT, bad[i][0], strlen(bad[i][0]), bad[i][1]);
}
END_TEST

START_TEST(test_bad_arguments)
{
    struct errbuf err;
    struct multipart_form f;
    ck_assert_int_eq(multipart_parse(CT, (const uint8_t *)"--XyZ--", 7, NULL, &err),
                     STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(multipart_parse(CT, NULL, 7, &f, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(f.n, 0);
    ck_assert_int_eq(multipart_parse(CT, NULL, 0, &f, NULL), STATUS_INVALID_ARGUMENT);
}
END_TEST

/* Every cut of a valid body fails, with no part, until the close delimiter is whole;
 * the cuts after it (into the epilogue) give the whole form. */
static void check_truncations(const char *ct, const uint8_t *body, size_t len)
{
    struct multipart_form whole, f;
    struct errbuf err;
    uint8_t *copy;
    ck_assert_int_eq(parse_copy(ct, body, len, &whole, &err, &copy), STATUS_OK);
    free(copy);
    const uint8_t *last = NULL;
    for (size_t i = 0; i + 1 < len; i++)
        if (body[i] == '-' && body[i + 1] == '-')
            last = body + i; /* the close delimiter's "--" is the last one */
    ck_assert_ptr_nonnull(last);
    const size_t closed = (size_t)(last - body) + 2;
    for (size_t cut = 0; cut < len; cut++) {
        const enum status s = parse_copy(ct, body, cut, &f, &err, &copy);
        if (cut < closed) {
            ck_assert_msg(s == STATUS_INVALID_ARGUMENT, "a cut at %zu of %zu accepted", cut,
                          len);
            ck_assert_int_eq(f.n, 0);
            ck_assert(err.msg[0] != '\0');
        } else {
            ck_assert_int_eq(s, STATUS_OK);
            ck_assert_int_eq(f.n, whole.n);
            for (int k = 0; k < f.n; k++)
                ck_assert_uint_eq(f.parts[k].len, whole.parts[k].len);
        }
        free(copy);
    }
}

START_TEST(test_truncated_everywhere)
{
    char body[1024];
    const size_t len = curl_body(body);
    check_truncations(CURL_CT, (const uint8_t *)body, len);
    static const char *const names[] = {"openai_edit", "openai_edit_multi", "httpx_escapes"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char file[128];
        size_t ct_len, blen;
        snprintf(file, sizeof file, "%s.content-type", names[i]);
        char *ct = (char *)read_fixture(file, &ct_len);
        snprintf(file, sizeof file, "%s.body", names[i]);
        uint8_t *b = read_fixture(file, &blen);
        check_truncations(ct, b, blen);
        free(b);
        free(ct);
    }
}
END_TEST

START_TEST(test_near_miss_body_is_linear)
{
    /* 4 MiB of CR LF "--" and the boundary less its last character: the worst case for
     * the delimiter search (each CR compared over the boundary's length) */
    const char *ct = "multipart/form-data; boundary="
                     "0123456789012345678901234567890123456789012345678901234567890123456789";
    const char *unit = "\r\n--012345678901234567890123456789012345678901234567890123456789"
                       "012345678";
    const size_t ul = strlen(unit), len = (size_t)4 << 20;
    uint8_t *body = malloc(len);
    ck_assert_ptr_nonnull(body);
    static const char head[] = "--0123456789012345678901234567890123456789012345678901234567"
                               "890123456789\r\nContent-Disposition: form-data; name=x\r\n\r\n";
    memcpy(body, head, sizeof head - 1);
    for (size_t i = sizeof head - 1; i < len; i++)
        body[i] = (uint8_t)unit[(i - (sizeof head - 1)) % ul];
    struct multipart_form f;
    struct errbuf err;
    ck_assert_int_eq(multipart_parse(ct, body, len, &f, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "the closing boundary is missing");
    free(body);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("multipart");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_curl_body);
    tcase_add_test(tc, test_openai_edit);
    tcase_add_test(tc, test_openai_edit_multi);
    tcase_add_test(tc, test_httpx_escapes);
    tcase_add_test(tc, test_content_type_variants);
    tcase_add_test(tc, test_content_type_errors);
    tcase_add_test(tc, test_preamble_epilogue);
    tcase_add_test(tc, test_boundary_text_in_data);
    tcase_add_test(tc, test_empty_parts);
    tcase_add_test(tc, test_names_and_headers);
    tcase_add_test(tc, test_part_limit);
    tcase_add_test(tc, test_scratch_limit);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_test(tc, test_near_miss_body_is_linear);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
