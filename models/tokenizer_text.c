/* models/tokenizer_text.c — see tokenizer_text.h.  Each definition cites the
 * Python/transformers behaviour it reproduces. */
#include "models/tokenizer_text.h"

#include <stdlib.h>
#include <utf8proc.h>

static bool is_letter(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static bool is_number(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* transformers' _is_whitespace: space, \t, \n, \r or category Zs. */
static bool is_bert_space(int32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
           utf8proc_category(c) == UTF8PROC_CATEGORY_ZS;
}

/* transformers' _is_control (category C*, not \t \n \r), plus NUL and U+FFFD. */
static bool is_dropped(int32_t c)
{
    if (c == 0 || c == 0xFFFD)
        return true;
    if (c == '\t' || c == '\n' || c == '\r')
        return false;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_CN || k >= UTF8PROC_CATEGORY_CC;
}

/* Python's str.isspace(): category Zs or bidirectional class WS, B or S. */
bool tokenizer_text_is_space(int32_t c)
{
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0x2028 ||
        c == 0x2029)
        return true;
    return c > 0x7F && utf8proc_category(c) == UTF8PROC_CATEGORY_ZS;
}

/* transformers' _is_chinese_char: the CJK ideograph blocks. */
static bool is_cjk(int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Unicode Case_Ignorable: Mn Me Cf Lm Sk, Word_Break MidLetter/MidNumLet/Single_Quote. */
static bool is_case_ignorable(int32_t c)
{
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
        return true;
    default:
        break;
    }
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return true;
    default:
        return false;
    }
}

/* Unicode Cased: Lu Ll Lt, anything with a case mapping, and the Other_Lowercase /
 * Other_Uppercase characters without one that are not case-ignorable (ª º, the
 * squared and negative squared Latin capitals). */
static bool is_cased(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT)
        return true;
    if (c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) ||
        (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189))
        return true;
    return utf8proc_tolower(c) != c || utf8proc_toupper(c) != c;
}

/* Python's Final_Sigma test for w[i] (a capital sigma) within the word w[0..n). */
static bool is_final_sigma(const int32_t *w, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && is_case_ignorable(w[j - 1]))
        j--;
    if (j == 0 || !is_cased(w[j - 1]))
        return false;
    for (j = i + 1; j < n && is_case_ignorable(w[j]); j++)
        ;
    return j == n || !is_cased(w[j]);
}

/* Python's str.lower() of w[0..n) into out (room for 2n); returns the new length. */
size_t tokenizer_text_lower(const int32_t *w, size_t n, int32_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] == 0x130) { /* İ → i + combining dot above (SpecialCasing) */
            out[m++] = 'i';
            out[m++] = 0x307;
        } else if (w[i] == 0x3A3) {
            out[m++] = is_final_sigma(w, n, i) ? 0x3C2 : 0x3C3;
        } else {
            out[m++] = utf8proc_tolower(w[i]);
        }
    }
    return m;
}

/* Does w[i..n) start with lit?  Letters match as the regex's IGNORECASE does. */
static size_t match_literal(const int32_t *w, size_t n, size_t i, const char *lit)
{
    size_t k = 0;
    for (; lit[k]; k++) {
        if (i + k >= n)
            return 0;
        int32_t c = w[i + k], l = (unsigned char)lit[k];
        bool letter = l >= 'a' && l <= 'z';
        bool folds = letter && (c == l - 32 || (l == 's' && c == 0x17F) || /* ſ */
                                (l == 'k' && c == 0x212A));                 /* Kelvin sign */
        if (c != l && !folds)
            return 0;
    }
    return k;
}

/* Under the pattern's IGNORECASE flag the negated class [^\s\p{L}\p{N}] of Python's
 * regex module also excludes a non-letter whose case partner is a letter or number
 * (U+0345 COMBINING GREEK YPOGEGRAMMENI ~ ι), while [\p{L}] does not take it either:
 * no alternative matches it and findall skips it. */
bool tokenizer_text_is_skipped(int32_t c)
{
    if (is_letter(c) || is_number(c))
        return false;
    int32_t lo = utf8proc_tolower(c), up = utf8proc_toupper(c);
    return is_letter(lo) || is_number(lo) || is_letter(up) || is_number(up);
}

static bool is_other(int32_t c)
{
    return !is_letter(c) && !is_number(c) && !tokenizer_text_is_skipped(c);
}

/* Length of the pre-token at w[i] (w has no whitespace, w[i] is not skipped):
 * CLIP's pattern
 * <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ */
size_t tokenizer_text_pretoken_len(const int32_t *w, size_t n, size_t i)
{
    static const char *const literals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                           "'ve", "'m", "'ll", "'d"};
    for (size_t k = 0; k < sizeof literals / sizeof *literals; k++) {
        size_t len = match_literal(w, n, i, literals[k]);
        if (len)
            return len;
    }
    size_t j = i + 1;
    if (is_letter(w[i])) {
        while (j < n && is_letter(w[j]))
            j++;
    } else if (!is_number(w[i])) {
        while (j < n && is_other(w[j]))
            j++;
    }
    return j - i;
}

/* BasicTokenizer._clean_text + _tokenize_chinese_chars of s[0..len) (valid UTF-8) into
 * out (room for 3 len bytes); returns the bytes written. */
size_t tokenizer_text_clean(const char *s, size_t len, char *out)
{
    size_t m = 0;
    for (size_t i = 0; i < len;) {
        int32_t c;
        const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s + i;
        i += (size_t)utf8proc_iterate(u, (utf8proc_ssize_t)(len - i), &c);
        if (is_dropped(c))
            continue;
        if (is_bert_space(c)) {
            out[m++] = ' ';
            continue;
        }
        bool cjk = is_cjk(c);
        if (cjk)
            out[m++] = ' ';
        m += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)out + m);
        if (cjk)
            out[m++] = ' ';
    }
    return m;
}

/* NFC of s[0..len) as code points (malloc'ed into *out). */
enum status tokenizer_text_nfc(const char *s, size_t len, int32_t **out, size_t *out_n,
                               struct errbuf *err)
{
    const utf8proc_option_t opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t n = utf8proc_decompose(u, (utf8proc_ssize_t)len, NULL, 0, opts);
    if (n < 0)
        return status_fail(err, STATUS_INTERNAL, "tokenizer: NFC: %s", utf8proc_errmsg(n));
    int32_t *buf = malloc(((size_t)n + 1) * sizeof *buf);
    if (!buf)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "tokenizer: NFC of %zu bytes", len);
    utf8proc_ssize_t m = utf8proc_decompose(u, (utf8proc_ssize_t)len, buf, n, opts);
    if (m >= 0 && m <= n)
        m = utf8proc_normalize_utf32(buf, m, opts);
    if (m < 0 || m > n) {
        free(buf);
        return status_fail(err, STATUS_INTERNAL, "tokenizer: NFC failed");
    }
    *out = buf;
    *out_n = (size_t)m;
    return STATUS_OK;
}

enum status tokenizer_text_check_utf8(const char *s, size_t len, struct errbuf *err)
{
    for (size_t i = 0; i < len;) {
        int32_t c;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "text is not valid UTF-8 at byte offset %zu", i);
        i += (size_t)k;
    }
    return STATUS_OK;
}

