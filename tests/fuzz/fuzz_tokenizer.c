/* tests/fuzz/fuzz_tokenizer.c — libFuzzer harness: any bytes as a prompt through
 * tokenizer_encode with the bundled model's CLIP tokenizer (prompts are user input).
 * Aborts unless invalid UTF-8 is the only rejection (STATUS_INVALID_ARGUMENT) and an
 * accepted text gives bos, ids inside the vocabulary, eos at n_ids − 1 and pad after,
 * with n_ids = min(n_tokens, max_length) — and the same ids a second time (the BPE
 * word cache must not change an answer).
 *
 * Not part of ctest (needs clang's libFuzzer).  Build against a Release build's
 * libraries and run:
 *   B=build
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I. \
 *     -DTOKENIZER_DIR=\"$PWD/models/default/tokenizer\" tests/fuzz/fuzz_tokenizer.c \
 *     $B/models/libdiffusiond_models.a $B/engine/libdiffusiond_engine.a \
 *     $(pkg-config --libs jansson libutf8proc) -lopenblas -lm -lpthread -o fuzz_tokenizer
 *   ./fuzz_tokenizer -max_total_time=120 -max_len=1024 CORPUS_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer.h"

#ifndef TOKENIZER_DIR
#define TOKENIZER_DIR "models/default/tokenizer"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IDS 512

static struct tokenizer *tokenizer_once(void)
{
    static struct tokenizer *tok;
    if (!tok) {
        struct errbuf err;
        if (tokenizer_load_dir(TOKENIZER_DIR, &tok, &err) != STATUS_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
            abort();
        }
        if (tokenizer_max_length(tok) > MAX_IDS)
            abort();
    }
    return tok;
}

static void check_ids(const struct tokenizer *tok, const int32_t *ids,
                      const struct tokenizer_result *info)
{
    const int max = tokenizer_max_length(tok);
    const int want = info->n_tokens < max ? info->n_tokens : max;
    if (info->n_tokens < 2 || info->n_ids != want || info->truncated != (info->n_tokens > max))
        abort();
    if (ids[0] != tokenizer_bos_id(tok) || ids[info->n_ids - 1] != tokenizer_eos_id(tok))
        abort();
    for (int i = 0; i < max; i++)
        if (ids[i] < 0 || ids[i] >= tokenizer_vocab_size(tok) ||
            (i >= info->n_ids && ids[i] != tokenizer_pad_id(tok)))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct tokenizer *tok = tokenizer_once();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* an embedded NUL ends the prompt early, as it would in C */
    int32_t ids[MAX_IDS], again[MAX_IDS];
    struct tokenizer_result info, info2;
    struct errbuf err;
    enum status s = tokenizer_encode(tok, text, ids, &info, &err);
    if (s == STATUS_OK) {
        check_ids(tok, ids, &info);
        if (tokenizer_encode(tok, text, again, &info2, &err) != STATUS_OK ||
            info.n_tokens != info2.n_tokens || info.n_ids != info2.n_ids ||
            memcmp(ids, again, sizeof(int32_t) * (size_t)tokenizer_max_length(tok)) != 0)
            abort();
    } else if (s != STATUS_INVALID_ARGUMENT || !err.msg[0]) {
        abort();
    }
    free(text);
    return 0;
}
