/* api/openai_response.h — the response bodies of the OpenAI-style routes, and the
 * Server-Timing header value.
 *
 * POST /v1/images/generations (api_images_response_write):
 *     {"created":<unix s>,
 *      "data":[{"b64_json":"<base64>","seed":<u64>} | {"url":"<url>","seed":<u64>}, …],
 *      "output_format":"png"|"jpeg"|"webp",
 *      "size":"<W>x<H>",
 *      "metrics":{"queue_ms":…,"text_encode_ms":…,"denoise_ms":…,"vae_decode_ms":…,
 *                 "image_encode_ms":…,"total_ms":…,"steps_per_second":…,
 *                 "batch_sizes":[…],"seeds":[…]},
 *      "warnings":["…", …]}                  (only when there are warnings)
 * Milliseconds and steps per second with 3 decimals; a value that is not finite or
 * is negative is written as 0.  The body is built by hand into ONE buffer whose size
 * is computed first (the same emitter runs twice: counting, then writing), so each
 * image's base64 is written once, straight into the response buffer.
 *
 * GET /v1/models (api_models_list_write):
 *     {"object":"list","data":[{"id":"<name>","object":"model","created":<unix s>,
 *                               "owned_by":"<owner>"}, …]}
 *
 * Server-Timing (api_server_timing_format), the same milliseconds:
 *     queue;dur=…, encode;dur=…, denoise;dur=…, decode;dur=…, image;dur=…, total;dur=…
 * (encode = text encode, decode = VAE decode, image = image encoding.)
 *
 * Strings are JSON-escaped (api/json_out.h): quote, backslash and control characters
 * escaped, other characters passed as UTF-8, invalid UTF-8 replaced by U+FFFD.
 *
 * Ownership: inputs are borrowed; the bodies are malloc'ed (NUL-terminated) and freed
 * by the caller.  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_OPENAI_RESPONSE_H
#define DIFFUSIOND_API_OPENAI_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "api/image_encode.h"
#include "api/openai_images.h"
#include "engine/status.h"

struct api_image_metrics {
    double queue_ms, text_encode_ms, denoise_ms, vae_decode_ms, image_encode_ms, total_ms;
    double steps_per_second;
    const int *batch_sizes; /* rows of each U-Net call the request took part in */
    int n_batch_sizes;
};

struct api_image_out {
    const uint8_t *data; /* the encoded image (b64_json) */
    size_t len;
    const char *url;     /* response_format url: the image's URL (data unused) */
    uint64_t seed;
};

struct api_images_response {
    int64_t created;                          /* unix seconds */
    enum image_format output_format;
    int width, height;
    enum api_response_format response_format;
    const struct api_image_out *images;       /* [n_images], n_images ≥ 1 */
    int n_images;
    struct api_image_metrics metrics;
    const char *const *warnings;              /* [n_warnings] */
    int n_warnings;
};

/* The generation response (shape at the top) into *out (malloc'ed, NUL-terminated),
 * its length in *len.  STATUS_INVALID_ARGUMENT naming a NULL/negative input;
 * STATUS_OUT_OF_MEMORY. */
enum status api_images_response_write(const struct api_images_response *r, char **out,
                                      size_t *len, struct errbuf *err);

/* The length api_images_response_write's body will have (the counting pass). */
size_t api_images_response_length(const struct api_images_response *r);

struct api_model_entry {
    const char *id;
    int64_t created;      /* unix seconds (e.g. when the model was loaded) */
    const char *owned_by; /* NULL: "diffusiond" */
};

/* "metrics":{…} (the member, shape at the top; seeds from images[0 … n_images)) into o:
 * shared with the A1111 route's body (api/a1111_response.h). */
struct json_out;
void api_image_metrics_emit(struct json_out *o, const struct api_image_metrics *m,
                            const struct api_image_out *images, int n_images);
/* ,"warnings":["…", …] after a member, or nothing when n is 0 (shared likewise). */
void api_warnings_emit(struct json_out *o, const char *const *warnings, int n);

/* GET /v1/models' body (shape at the top). */
enum status api_models_list_write(const struct api_model_entry *models, int n, char **out,
                                  size_t *len, struct errbuf *err);

/* The Server-Timing value into buf (always NUL-terminated when cap > 0); returns the
 * length it needs (as snprintf). */
size_t api_server_timing_format(const struct api_image_metrics *m, char *buf, size_t cap);

#endif
