/* models/tokenizer.h — CLIP's byte-level BPE tokenizer (vocab.json + merges.txt), as
 * Stable Diffusion's text encoders expect it.
 *
 * Reference behaviour: transformers' slow CLIPTokenizer (the class diffusers loads
 * from a checkpoint's tokenizer/ folder) without ftfy installed; see
 * docs/tokenizer.md.  tokenizer_encode does, in order:
 *   1. split the raw text on the special-token strings (bos, eos, unk, pad: each
 *      becomes its own id, leftmost-longest, case-sensitive);
 *   2. per remaining piece: drop U+0000, U+FFFD and control/format/private/unassigned
 *      characters (general category C*, except \t \n \r), turn whitespace into spaces,
 *      put spaces around CJK ideographs, NFC-normalize (utf8proc), split on
 *      whitespace and lower-case each word as Python's str.lower() does (full case
 *      mapping: İ → i̇; final sigma);
 *   3. pre-tokenize each word with CLIP's pattern
 *        <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
 *      (literals case-insensitive), map each piece's UTF-8 bytes through GPT-2's
 *      bytes_to_unicode table, append "</w>" to the last symbol and apply the merges
 *      by rank; a symbol missing from the vocabulary becomes unk;
 *   4. bos + the first max_length − 2 ids + eos, then pad to max_length.
 * Characters are classified with the Unicode tables of the linked utf8proc.
 *
 * Ownership: tokenizer_load* returns a tokenizer the caller owns and releases with
 * tokenizer_free.  The caller owns every buffer it passes.
 * Thread-safety: after loading, a tokenizer is read-only except for its BPE word
 * cache, which a mutex guards; tokenizer_encode may be called concurrently on one
 * tokenizer from any number of threads.  tokenizer_free must not race with encode.
 */
#ifndef DIFFUSIOND_MODELS_TOKENIZER_H
#define DIFFUSIOND_MODELS_TOKENIZER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/status.h"

#define TOKENIZER_TOKEN_MAX 64 /* longest special-token string, NUL included */

struct tokenizer;

struct tokenizer_options {
    int max_length;     /* ids per sequence (model_max_length), ≥ 2; SD: 77 */
    bool do_lower_case; /* HF's slow CLIPTokenizer always lower-cases: keep true */
    char bos_token[TOKENIZER_TOKEN_MAX];
    char eos_token[TOKENIZER_TOKEN_MAX];
    char unk_token[TOKENIZER_TOKEN_MAX];
    char pad_token[TOKENIZER_TOKEN_MAX]; /* SD1: "<|endoftext|>"; SD2: "!" */
    int32_t pad_token_id;                /* ≥ 0: use this id for pad_token; −1: look it up */
};

struct tokenizer_result {
    int n_tokens;   /* ids the text needs with bos and eos, before truncation */
    int n_ids;      /* ids written before padding: min(n_tokens, max_length) */
    bool truncated; /* n_tokens > max_length: the text was cut to fit */
};

/* CLIP's defaults: max_length 77, lower-case, bos <|startoftext|>, eos = unk = pad =
 * <|endoftext|> (Stable Diffusion 1.x). */
void tokenizer_options_default(struct tokenizer_options *opt);

/* Fills opt from a diffusers/transformers tokenizer folder: starts from the
 * defaults, then tokenizer_config.json (model_max_length, do_lower_case, special
 * tokens as strings or {"content": ...} objects), then special_tokens_map.json
 * (which wins, as in transformers).  Either file may be absent.  Malformed JSON or
 * fields → STATUS_FORMAT; a tokenizer_class other than CLIPTokenizer[Fast] or a
 * special token with single_word set → STATUS_UNSUPPORTED. */
enum status tokenizer_options_from_dir(const char *dir, struct tokenizer_options *opt,
                                       struct errbuf *err);

/* Loads vocab_json (an object token → id) and merges_txt (first line a header,
 * then "a b" per line; as transformers, at most the first 48,894 merges are used).
 * opt may be NULL (defaults).  Missing file → STATUS_IO; malformed content, or a
 * special token missing from the vocabulary → STATUS_FORMAT; both name the file and
 * the entry or line. */
enum status tokenizer_load(const char *vocab_json, const char *merges_txt,
                           const struct tokenizer_options *opt, struct tokenizer **out,
                           struct errbuf *err);

/* tokenizer_options_from_dir(dir) + tokenizer_load(dir/vocab.json, dir/merges.txt). */
enum status tokenizer_load_dir(const char *dir, struct tokenizer **out, struct errbuf *err);

void tokenizer_free(struct tokenizer *tok);

/* Encodes utf8 (NUL-terminated) into ids[0 .. max_length): bos, text ids, eos, pad.
 * A text longer than max_length − 2 ids is cut and still ends with eos; info (may be
 * NULL) says how long it was.  Invalid UTF-8 → STATUS_INVALID_ARGUMENT naming the
 * byte offset; STATUS_OUT_OF_MEMORY.  On failure ids is unspecified. */
enum status tokenizer_encode(const struct tokenizer *tok, const char *utf8, int32_t *ids,
                             struct tokenizer_result *info, struct errbuf *err);

int tokenizer_max_length(const struct tokenizer *tok);
int32_t tokenizer_vocab_size(const struct tokenizer *tok); /* entries in vocab.json */
int32_t tokenizer_bos_id(const struct tokenizer *tok);
int32_t tokenizer_eos_id(const struct tokenizer *tok);
int32_t tokenizer_pad_id(const struct tokenizer *tok);
/* Id of an exact vocabulary string ("cat</w>"), or −1. */
int32_t tokenizer_token_id(const struct tokenizer *tok, const char *token);

#endif
