/* api/multipart.c — multipart/form-data (RFC 7578 over RFC 2046), zero-copy. */
#include "api/multipart.h"

#include <string.h>

/* --- characters and small scanners (all bounded by an end, never by a NUL) ----------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7230's tchar. */
static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A control character other than HTAB (CR and LF included). */
static bool is_ctl(char c)
{
    const unsigned char u = (unsigned char)c;
    return (u < 0x20 && u != '\t') || u == 0x7F;
}

/* RFC 2046's bchars (space included; the caller checks it is not last). */
static bool is_bchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("'()+_,-./:=? ", c) != NULL;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* s[0 … n) equals the lower-case literal lit, ignoring case. */
static bool ieq(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != lit[i])
            return false;
    return true;
}

static size_t skip_ows(const char *s, size_t n, size_t i)
{
    while (i < n && is_ows(s[i]))
        i++;
    return i;
}

static size_t token_end(const char *s, size_t n, size_t i)
{
    while (i < n && is_tchar(s[i]))
        i++;
    return i;
}

/* One `;` parameter: name=token or name="quoted" (val_* is what is between the
 * quotes, escapes still in; escaped says whether \" or \\ occurs). */
struct param {
    const char *name, *val;
    size_t name_len, val_len;
    bool escaped;
};

/* The quoted string opening at s[i] == '"': its closing quote's index in *close,
 * whether it holds \" or \\ in *escaped.  False when it is not closed or holds a
 * control character. */
static bool quoted_scan(const char *s, size_t n, size_t i, size_t *close, bool *escaped)
{
    *escaped = false;
    for (size_t j = i + 1; j < n; j++) {
        if (s[j] == '"') {
            *close = j;
            return true;
        }
        if (is_ctl(s[j]))
            return false;
        if (s[j] == '\\' && j + 1 < n && (s[j + 1] == '"' || s[j + 1] == '\\')) {
            *escaped = true;
            j++;
        }
    }
    return false;
}

/* Copies src[0 … n) to dst (may be NULL: only counts) turning \" and \\ into " and \;
 * returns the length. */
static size_t unescape(const char *src, size_t n, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\\' && i + 1 < n && (src[i + 1] == '"' || src[i + 1] == '\\'))
            i++;
        if (dst)
            dst[o] = src[i];
        o++;
    }
    return o;
}

enum param_result { PARAM_END, PARAM_OK, PARAM_MALFORMED };

/* Reads the next `OWS ; OWS name=value` of s[*i … n) into *p. */
static enum param_result param_next(const char *s, size_t n, size_t *i, struct param *p)
{
    size_t k = skip_ows(s, n, *i);
    if (k == n)
        return PARAM_END;
    if (s[k] != ';')
        return PARAM_MALFORMED;
    k = skip_ows(s, n, k + 1);
    const size_t ne = token_end(s, n, k);
    if (ne == k || ne == n || s[ne] != '=')
        return PARAM_MALFORMED;
    p->name = s + k;
    p->name_len = ne - k;
    k = ne + 1;
    p->escaped = false;
    if (k < n && s[k] == '"') {
        size_t close;
        if (!quoted_scan(s, n, k, &close, &p->escaped))
            return PARAM_MALFORMED;
        p->val = s + k + 1;
        p->val_len = close - k - 1;
        *i = close + 1;
        return PARAM_OK;
    }
    const size_t ve = token_end(s, n, k);
    if (ve == k)
        return PARAM_MALFORMED;
    p->val = s + k;
    p->val_len = ve - k;
    *i = ve;
    return PARAM_OK;
}

/* --- the Content-Type ---------------------------------------------------------------- */

static const char FORM_DATA[] = "multipart/form-data";

/* Where the parameters of a multipart/form-data content_type start, or NULL. */
static const char *form_data_params(const char *content_type)
{
    if (!content_type)
        return NULL;
    const char *s = content_type;
    while (is_ows(*s))
        s++;
    const size_t k = sizeof FORM_DATA - 1;
    if (strlen(s) < k || !ieq(s, k, FORM_DATA))
        return NULL;
    if (s[k] != '\0' && s[k] != ';' && !is_ows(s[k]))
        return NULL;
    return s + k;
}

bool multipart_content_type_is(const char *content_type)
{
    return form_data_params(content_type) != NULL;
}

/* The boundary (unescaped, NUL-terminated) of content_type into b[0 … 70], its length in
 * *blen. */
static enum status content_type_boundary(const char *content_type, char *b, size_t *blen,
                                         struct errbuf *err)
{
    const char *s = form_data_params(content_type);
    if (!s)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "the Content-Type is not multipart/form-data");
    const size_t n = strlen(s);
    size_t i = 0;
    struct param p, found = {0};
    enum param_result r;
    while ((r = param_next(s, n, &i, &p)) == PARAM_OK) {
        if (!ieq(p.name, p.name_len, "boundary"))
            continue;
        if (found.name)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "two boundary parameters in the Content-Type");
        found = p;
    }
    if (r == PARAM_MALFORMED)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "a malformed Content-Type parameter");
    if (!found.name)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "no boundary in the Content-Type");
    const size_t len = unescape(found.val, found.val_len, NULL);
    if (len == 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "an empty boundary in the Content-Type");
    if (len > MULTIPART_BOUNDARY_MAX)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "a boundary of %zu characters in the Content-Type: at most %d", len,
                           MULTIPART_BOUNDARY_MAX);
    unescape(found.val, found.val_len, b);
    b[len] = '\0';
    for (size_t k = 0; k < len; k++)
        if (!is_bchar(b[k]) || (k == len - 1 && b[k] == ' '))
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "the boundary in the Content-Type has a character RFC 2046 "
                               "does not allow");
    *blen = len;
    return STATUS_OK;
}

/* --- one part's headers ---------------------------------------------------------------- */

/* A parameter's value as a string: in place, or unescaped into the form's scratch. */
static enum status param_value(struct multipart_form *f, int part, const struct param *p,
                               const char **out, size_t *out_len, struct errbuf *err)
{
    if (!p->escaped) {
        *out = p->val;
        *out_len = p->val_len;
        return STATUS_OK;
    }
    const size_t len = unescape(p->val, p->val_len, NULL);
    if (len > MULTIPART_SCRATCH_MAX - f->scratch_used)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "part %d: quoted names with escapes longer than %d bytes in all",
                           part, MULTIPART_SCRATCH_MAX);
    char *dst = f->scratch + f->scratch_used;
    unescape(p->val, p->val_len, dst);
    f->scratch_used += len;
    *out = dst;
    *out_len = len;
    return STATUS_OK;
}

/* Content-Disposition: form-data; name=…; filename=… (v[0 … n), trimmed). */
static enum status disposition_parse(struct multipart_form *f, int part, const char *v,
                                     size_t n, struct multipart_part *out, struct errbuf *err)
{
    size_t i = token_end(v, n, 0);
    if (!ieq(v, i, "form-data"))
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "part %d: the Content-Disposition is not form-data", part);
    struct param p;
    enum param_result r;
    while ((r = param_next(v, n, &i, &p)) == PARAM_OK) {
        const bool is_name = ieq(p.name, p.name_len, "name");
        if (!is_name && !ieq(p.name, p.name_len, "filename"))
            continue; /* filename*, and anything else */
        const char **dst = is_name ? &out->name : &out->filename;
        if (*dst)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "part %d: two %s parameters in the Content-Disposition", part,
                               is_name ? "name" : "filename");
        TRY(param_value(f, part, &p, dst, is_name ? &out->name_len : &out->filename_len,
                        err));
    }
    if (r == PARAM_MALFORMED)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "part %d: a malformed Content-Disposition", part);
    return STATUS_OK;
}

/* One header line s[0 … n) (no CRLF, no control characters). */
static enum status header_line(struct multipart_form *f, int part, const char *s, size_t n,
                               bool *seen_cd, struct multipart_part *out, struct errbuf *err)
{
    if (n > 0 && is_ows(s[0]))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "part %d: a folded header line",
                           part);
    const size_t ne = token_end(s, n, 0);
    if (ne == 0 || ne == n || s[ne] != ':')
        return status_fail(err, STATUS_INVALID_ARGUMENT, "part %d: a malformed header line",
                           part);
    size_t vb = skip_ows(s, n, ne + 1), ve = n;
    while (ve > vb && is_ows(s[ve - 1]))
        ve--;
    if (ieq(s, ne, "content-disposition")) {
        if (*seen_cd)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "part %d: two Content-Disposition headers", part);
        *seen_cd = true;
        return disposition_parse(f, part, s + vb, ve - vb, out, err);
    }
    if (ieq(s, ne, "content-type")) {
        if (out->content_type)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "part %d: two Content-Type headers", part);
        if (ve == vb)
            return status_fail(err, STATUS_INVALID_ARGUMENT, "part %d: an empty Content-Type",
                               part);
        out->content_type = s + vb;
        out->content_type_len = ve - vb;
    }
    return STATUS_OK;
}

/* The part p[0 … n) between a delimiter line and the next delimiter's CRLF. */
static enum status part_parse(struct multipart_form *f, int part, const char *p, size_t n,
                              struct multipart_part *out, struct errbuf *err)
{
    *out = (struct multipart_part){0};
    bool seen_cd = false;
    size_t i = 0;
    while (i < n) { /* headers end at a blank line, or (no content) at the part's end */
        size_t j = i;
        while (j < n && !(p[j] == '\r' && j + 1 < n && p[j + 1] == '\n')) {
            if (is_ctl(p[j]))
                return status_fail(err, STATUS_INVALID_ARGUMENT,
                                   "part %d: a control character in the headers", part);
            j++;
        }
        if (j == n)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "part %d: the headers do not end with a blank line", part);
        if (j == i) {
            i += 2;
            break;
        }
        TRY(header_line(f, part, p + i, j - i, &seen_cd, out, err));
        i = j + 2;
    }
    if (!out->name)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "part %d: no Content-Disposition form-data name", part);
    out->data = (const uint8_t *)p + i; /* i ≤ n */
    out->len = n - i;
    return STATUS_OK;
}

/* --- the body -------------------------------------------------------------------------- */

/* The first occurrence of pat[0 … m) (which starts with '\r') in b[from … len), or
 * SIZE_MAX.  At most m comparisons at each CR. */
static size_t find_delim(const uint8_t *b, size_t len, size_t from, const char *pat, size_t m)
{
    while (from < len && len - from >= m) {
        const uint8_t *cr = memchr(b + from, '\r', len - from - m + 1);
        if (!cr)
            return SIZE_MAX;
        const size_t at = (size_t)(cr - b);
        if (memcmp(cr, pat, m) == 0)
            return at;
        from = at + 1;
    }
    return SIZE_MAX;
}

enum delim_kind { DELIM_PART, DELIM_CLOSE, DELIM_TRUNCATED, DELIM_BAD };

/* What follows a boundary that ends at b[*pos]: "--" (close), or transport padding and
 * CRLF (a part follows: *pos moves past them). */
static enum delim_kind delim_follow(const uint8_t *b, size_t len, size_t *pos)
{
    size_t i = *pos;
    if (i < len && b[i] == '-')
        return i + 1 == len ? DELIM_TRUNCATED : b[i + 1] == '-' ? DELIM_CLOSE : DELIM_BAD;
    while (i < len && (b[i] == ' ' || b[i] == '\t'))
        i++;
    if (i == len || (b[i] == '\r' && i + 1 == len))
        return DELIM_TRUNCATED;
    if (b[i] != '\r' || b[i + 1] != '\n')
        return DELIM_BAD;
    *pos = i + 2;
    return DELIM_PART;
}

enum status multipart_parse(const char *content_type, const uint8_t *body, size_t len,
                            struct multipart_form *out, struct errbuf *err)
{
    if (!out)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "multipart_parse: out is NULL");
    out->n = 0;
    out->scratch_used = 0;
    if (!body && len > 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "multipart_parse: body is NULL");
    char delim[4 + MULTIPART_BOUNDARY_MAX + 1] = "\r\n--";
    size_t blen = 0;
    TRY(content_type_boundary(content_type, delim + 4, &blen, err));
    const size_t m = 4 + blen; /* CRLF "--" boundary */
    size_t pos;
    if (len >= m - 2 && memcmp(body, delim + 2, m - 2) == 0) {
        pos = m - 2; /* no preamble */
    } else {
        const size_t at = find_delim(body, len, 0, delim, m);
        if (at == SIZE_MAX)
            return status_fail(err, STATUS_INVALID_ARGUMENT, "the boundary is not in the body");
        pos = at + m;
    }
    for (int part = 1;; part++) {
        switch (delim_follow(body, len, &pos)) {
        case DELIM_CLOSE:
            return STATUS_OK;
        case DELIM_TRUNCATED:
            out->n = 0;
            return status_fail(err, STATUS_INVALID_ARGUMENT, "the closing boundary is missing");
        case DELIM_BAD:
            out->n = 0;
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "the boundary before part %d is followed by neither "
                               "CRLF nor \"--\"",
                               part);
        case DELIM_PART:
            break;
        }
        if (part > MULTIPART_MAX_PARTS) {
            out->n = 0;
            return status_fail(err, STATUS_INVALID_ARGUMENT, "more than %d parts",
                               MULTIPART_MAX_PARTS);
        }
        const size_t at = find_delim(body, len, pos, delim, m);
        if (at == SIZE_MAX) {
            out->n = 0;
            return status_fail(err, STATUS_INVALID_ARGUMENT, "the closing boundary is missing");
        }
        const enum status s = part_parse(out, part, (const char *)body + pos, at - pos,
                                         &out->parts[part - 1], err);
        if (s != STATUS_OK) {
            out->n = 0;
            return s;
        }
        out->n = part;
        pos = at + m;
    }
}

const struct multipart_part *multipart_find(const struct multipart_form *f, const char *name)
{
    if (!f || !name)
        return NULL;
    const size_t n = strlen(name);
    for (int i = 0; i < f->n; i++)
        if (f->parts[i].name_len == n && memcmp(f->parts[i].name, name, n) == 0)
            return &f->parts[i];
    return NULL;
}
