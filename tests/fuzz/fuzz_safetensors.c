/* tests/fuzz/fuzz_safetensors.c — libFuzzer harness: any bytes as a .safetensors file
 * through safetensors_open_memory (a corrupt model file must give a clear error, never
 * a crash).  Aborts unless a rejection carries a message and an accepted file's
 * tensors lie inside the data, in offset order without overlap, each found by name,
 * and convert (safetensors_read_f32) or refuse with a message.
 *
 * Not part of ctest (needs clang's libFuzzer).  Build against a Release build's
 * libraries and run:
 *   B=build
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I. \
 *     tests/fuzz/fuzz_safetensors.c $B/models/libdiffusiond_models.a \
 *     $B/engine/libdiffusiond_engine.a $(pkg-config --libs jansson libutf8proc) \
 *     -lopenblas -lm -lpthread -o fuzz_safetensors
 *   ./fuzz_safetensors -max_total_time=120 -max_len=4096 CORPUS_DIR
 * A seed: any small file that safetensors_write made (tests/unit/test_safetensors.c).
 */
#include <stdlib.h>
#include <string.h>

#include "models/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define READ_MAX ((size_t)1 << 16) /* elements converted per tensor at most */

static void check_tensor(const struct safetensors *st, const struct safetensors_tensor *t,
                         const uint8_t *data, size_t size, size_t *end)
{
    const uint8_t *p = t->data;
    if (!t->name || !t->name[0] || p < data || t->nbytes > size ||
        p + t->nbytes > data + size || t->offset < *end)
        abort();
    *end = t->offset + t->nbytes;
    if (safetensors_find(st, t->name) != t)
        abort();
    if (t->numel > READ_MAX)
        return;
    float *dst = malloc((t->numel ? t->numel : 1) * sizeof *dst);
    if (!dst)
        return;
    struct errbuf err;
    err.msg[0] = '\0';
    if (safetensors_read_f32(st, t, dst, t->numel, &err) != STATUS_OK && !err.msg[0])
        abort();
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so that ASan sees any read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    struct safetensors *st = NULL;
    struct errbuf err;
    err.msg[0] = '\0';
    if (safetensors_open_memory(copy, size, "fuzz.safetensors", &st, &err) != STATUS_OK) {
        if (st || !err.msg[0])
            abort();
        free(copy);
        return 0;
    }
    size_t end = 0;
    for (size_t i = 0; i < safetensors_count(st); i++)
        check_tensor(st, safetensors_at(st, i), copy, size, &end);
    for (size_t i = 0; i < safetensors_metadata_count(st); i++) {
        const char *k = NULL, *v = NULL;
        if (!safetensors_metadata_at(st, i, &k, &v) || !k || !v ||
            safetensors_metadata_get(st, k) == NULL)
            abort();
    }
    safetensors_close(st);
    free(copy);
    return 0;
}
