/* tests/fuzz/fuzz_json_out.c — libFuzzer harness: any bytes as a JSON string and as
 * base64 through api/json_out's two passes.  Aborts unless both passes agree, jansson
 * parses the text, a valid UTF-8 input comes back exactly, and the base64 decodes to
 * the input.
 *
 * Not part of ctest (needs clang's libFuzzer).  Build and run:
 *   clang -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -I. \
 *     $(pkg-config --cflags jansson) tests/fuzz/fuzz_json_out.c api/json_out.c \
 *     api/base64.c engine/status.c $(pkg-config --libs jansson) -o fuzz_json_out
 *   ./fuzz_json_out -max_total_time=60 CORPUS_DIR
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/base64.h"
#include "api/json_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void emit(struct json_out *o, const uint8_t *data, size_t size)
{
    json_out_raw(o, "[", 1);
    json_out_string_n(o, (const char *)data, size);
    json_out_raw(o, ",", 1);
    json_out_base64(o, data, size);
    json_out_raw(o, "]", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_out count = json_out_counter();
    emit(&count, data, size);
    char *buf = malloc(count.len + 1);
    struct json_out o = json_out_buffer(buf, count.len);
    emit(&o, data, size);
    if (o.overflow || o.len != count.len)
        abort();
    json_error_t je;
    json_t *arr = json_loadb(buf, o.len, JSON_ALLOW_NUL, &je);
    if (!arr)
        abort();
    json_t *want = json_stringn((const char *)data, size); /* NULL: not valid UTF-8 */
    if (want && !json_equal(want, json_array_get(arr, 0)))
        abort();
    json_decref(want);
    const json_t *b64 = json_array_get(arr, 1);
    uint8_t *back = malloc(size + 3);
    size_t n = 0;
    if (!base64_decode(json_string_value(b64), json_string_length(b64), back, &n) ||
        n != size || memcmp(back, data, size) != 0)
        abort();
    free(back);
    json_decref(arr);
    free(buf);
    return 0;
}
