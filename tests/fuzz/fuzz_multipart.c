/* tests/fuzz/fuzz_multipart.c — libFuzzer harness: any bytes as a POST /v1/images/edits
 * multipart/form-data body through api/multipart.  The first byte picks the
 * Content-Type: even, "multipart/form-data; boundary=XyZ" and the rest is the body; odd,
 * the bytes up to the first LF are the Content-Type and those after it the body.
 * Aborts unless a rejection is INVALID_ARGUMENT with a message and no parts, and an
 * accepted form has at most MULTIPART_MAX_PARTS parts, each with a name, whose strings
 * lie in the body (or a name/filename in the form's scratch), whose contents lie in the
 * body in order without overlapping, never hold CRLF "--" and the boundary (for XyZ),
 * and are found by name (multipart_find gives the first part of that name).  Then the
 * same body through openai_edits_parse (the edits route's mapping of the form): a 400
 * or 503 whose message starts with its param, or a request with a prompt and a start
 * image whose header gave a size within the limits and a size for the request (and a
 * mask part, if any, of the image's size with transparency).
 *
 * Not part of ctest (needs clang's libFuzzer).  Build (the api modules compiled from
 * source so that the sanitizers instrument them, against a Release build's libraries)
 * and run:
 *   S=api; B=build
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I. \
 *     $(pkg-config --cflags jansson) tests/fuzz/fuzz_multipart.c $S/multipart.c \
 *     $S/openai_edits.c $S/openai_images.c $S/img2img.c $S/image_decode.c $S/inpaint.c \
 *     $S/image_mask.c $S/image_fill.c \
 *     $S/json_fields.c $S/api_error.c $S/json_out.c $S/base64.c $S/image_encode.c \
 *     $B/models/libdiffusiond_models.a $B/engine/libdiffusiond_engine.a \
 *     $(pkg-config --libs jansson libutf8proc libpng libturbojpeg libwebp) -lopenblas -lm \
 *     -lpthread -o fuzz_multipart
 *   mkdir -p corpus && for f in tests/fixtures/multipart/[a-z]*.body; do \
 *     { printf '\001'; cat "${f%.body}.content-type"; printf '\n'; cat "$f"; } \
 *       > "corpus/$(basename "$f")"; done
 *   { printf '\000--XyZ\r\nContent-Disposition: form-data; name="a"; filename="b\\"c"';
 *     printf '\r\nContent-Type: t\r\n\r\nv\r\n--XyZ--'; } > corpus/xyz
 *   ./fuzz_multipart -max_total_time=120 -max_len=4096 corpus
 */
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"
#include "api/openai_edits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char FIXED_CT[] = "multipart/form-data; boundary=XyZ";

/* p[0 … n) lies in [lo, lo + len). */
static int inside(const void *p, size_t n, const void *lo, size_t len)
{
    const uintptr_t a = (uintptr_t)p, b = (uintptr_t)lo;
    return a >= b && n <= len && a - b <= len - n;
}

static int has_delimiter(const uint8_t *d, size_t n)
{
    static const char delim[] = "\r\n--XyZ";
    for (size_t i = 0; i + sizeof delim - 1 <= n; i++)
        if (memcmp(d + i, delim, sizeof delim - 1) == 0)
            return 1;
    return 0;
}

static void check_form(const struct multipart_form *f, const uint8_t *body, size_t len,
                       int fixed)
{
    if (f->n < 0 || f->n > MULTIPART_MAX_PARTS || f->scratch_used > sizeof f->scratch)
        abort();
    const uint8_t *prev_end = body;
    for (int i = 0; i < f->n; i++) {
        const struct multipart_part *p = &f->parts[i];
        if (!p->name)
            abort();
        if (!inside(p->name, p->name_len, body, len) &&
            !inside(p->name, p->name_len, f->scratch, f->scratch_used))
            abort();
        if (p->filename && !inside(p->filename, p->filename_len, body, len) &&
            !inside(p->filename, p->filename_len, f->scratch, f->scratch_used))
            abort();
        if (p->content_type && (p->content_type_len == 0 ||
                                !inside(p->content_type, p->content_type_len, body, len)))
            abort();
        if (!inside(p->data, p->len, body, len) || p->data < prev_end)
            abort();
        prev_end = p->data + p->len;
        if (fixed && has_delimiter(p->data, p->len))
            abort();
        char name[MULTIPART_SCRATCH_MAX + 1];
        if (p->name_len < sizeof name && !memchr(p->name, '\0', p->name_len)) {
            memcpy(name, p->name, p->name_len);
            name[p->name_len] = '\0';
            const struct multipart_part *q = multipart_find(f, name);
            if (!q || q > p || q->name_len != p->name_len ||
                memcmp(q->name, p->name, p->name_len) != 0)
                abort();
        }
    }
}

/* The edits route's mapping of the same body: a clean refusal naming its field, or a
 * request with a prompt and a start image within the limits. */
static void check_edit(const char *ct, const uint8_t *body, size_t len)
{
    struct api_limits lim;
    api_limits_default(&lim);
    struct openai_edit_request r;
    struct api_error e;
    const enum status s = openai_edits_parse(ct, body, len, &lim, &r, &e);
    if (s != STATUS_OK) {
        const size_t p = strlen(e.param);
        if ((e.http != 400 && e.http != 503) || !e.message[0] ||
            (p && strncmp(e.message, e.param, p) != 0) || r.i2i.bytes || r.req.prompt)
            abort();
        return;
    }
    if (!r.req.prompt || !api_img2img_has_image(&r.i2i) || r.i2i.width < 1 ||
        r.i2i.height < 1 || r.i2i.width > API_IMG2IMG_MAX_SIDE ||
        r.i2i.height > API_IMG2IMG_MAX_SIDE || !(r.i2i.strength > 0 && r.i2i.strength <= 1) ||
        (r.req.width != 0 && r.req.width < lim.min_side) ||
        (r.i2i.inpaint.bytes && (r.i2i.inpaint.width != r.i2i.width ||
                                 r.i2i.inpaint.height != r.i2i.height)))
        abort();
    openai_edit_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const int fixed = (data[0] & 1) == 0;
    char ct_buf[256];
    const char *ct = FIXED_CT;
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    if (!fixed) {
        const uint8_t *lf = memchr(body, '\n', len);
        const size_t k = lf ? (size_t)(lf - body) : len;
        if (k >= sizeof ct_buf)
            return 0;
        memcpy(ct_buf, body, k);
        ct_buf[k] = '\0';
        ct = ct_buf;
        body += lf ? k + 1 : k;
        len -= lf ? k + 1 : k;
    }
    /* an exactly-sized copy: a read past the body is a heap overflow */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return 0;
    memcpy(copy, body, len);
    struct multipart_form *f = malloc(sizeof *f);
    if (!f)
        abort();
    struct errbuf err = {0};
    const enum status s = multipart_parse(ct, copy, len, f, &err);
    if (s == STATUS_OK)
        check_form(f, copy, len, fixed);
    else if (s != STATUS_INVALID_ARGUMENT || err.msg[0] == '\0' || f->n != 0)
        abort();
    free(f);
    check_edit(ct, copy, len);
    free(copy);
    return 0;
}
