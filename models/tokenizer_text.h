/* models/tokenizer_text.h — the text stage of the CLIP tokenizer (models/tokenizer.h):
 * transformers' BasicTokenizer clean-up, Python's str.lower() and CLIP's
 * pre-tokenization pattern, over Unicode code points with utf8proc's tables.
 *
 * Every function is pure: no state, no allocation except where said.
 * Ownership: the caller owns every buffer.  Thread-safety: all reentrant.
 */
#ifndef DIFFUSIOND_MODELS_TOKENIZER_TEXT_H
#define DIFFUSIOND_MODELS_TOKENIZER_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

/* STATUS_INVALID_ARGUMENT naming the byte offset of the first invalid sequence
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
enum status tokenizer_text_check_utf8(const char *s, size_t len, struct errbuf *err);

/* BasicTokenizer._clean_text + _tokenize_chinese_chars of s[0..len) (valid UTF-8):
 * drops U+0000, U+FFFD and category C* except \t \n \r; whitespace (\t \n \r, Zs)
 * becomes ' '; CJK ideographs get a space on each side.  out needs 3·len bytes;
 * returns the bytes written. */
size_t tokenizer_text_clean(const char *s, size_t len, char *out);

/* NFC of the UTF-8 s[0..len) as code points in a malloc'ed *out (caller frees). */
enum status tokenizer_text_nfc(const char *s, size_t len, int32_t **out, size_t *out_n,
                               struct errbuf *err);

/* Python's str.isspace(). */
bool tokenizer_text_is_space(int32_t c);

/* Python's str.lower() of the word w[0..n) (İ → i + U+0307, Σ → ς in Final_Sigma
 * position) into out (room for 2n); returns the new length. */
size_t tokenizer_text_lower(const int32_t *w, size_t n, int32_t *out);

/* True for a code point no alternative of CLIP's pattern matches (so findall skips
 * it); only possible inside a word for U+0345. */
bool tokenizer_text_is_skipped(int32_t c);

/* Length (≥ 1) of the pre-token at w[i] of a word without whitespace, w[i] not
 * skipped: CLIP's pattern with IGNORECASE,
 * <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ */
size_t tokenizer_text_pretoken_len(const int32_t *w, size_t n, size_t i);

#endif
