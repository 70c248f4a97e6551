/* api/openai_images.h — POST /v1/images/generations: the request body (OpenAI's Images
 * API plus our extensions) parsed, checked and resolved into a struct gen_params.
 *
 * Two stages:
 *   openai_images_parse(body, len, limits, &req, &e)
 *       JSON → fields.  The body must be one UTF-8 JSON object (jansson, duplicate
 *       keys rejected, no NUL, no trailing bytes, nesting ≤ jansson's 2048).  Each
 *       known field's JSON type and model-independent range are checked; unknown
 *       fields are ignored.
 *   openai_images_resolve(model, limits, random_seed, &req, &e)
 *       against the chosen model: gen_params_default(model) for what the body left
 *       out, then the limits, then gen_params_validate; the prompt is counted with the
 *       model's tokenizer and, past its context (77 tokens), a warning says it was cut.
 * Every violation is a 400 invalid_request_error whose param names the field and
 * whose message starts with it ("n: must be an integer in [1, 8] (got 9)"); a body that
 * is not JSON / not an object is a 400 with param null (or the top-level field whose
 * value could not be read: "seed" for 18446744073709551616, "prompt" for bad UTF-8).
 *
 * Fields (docs/api.md is the full table):
 *   prompt            string, required, non-empty, ≤ max_prompt_chars code points
 *   negative_prompt   string, ≤ max_prompt_chars code points
 *   n                 integer in [1, max_n]; default 1
 *   size              "WxH" (decimal digits), "auto" or absent = the model's native size;
 *                     W, H multiples of the model's size_multiple (8) within
 *                     [min_side, max_width] × [min_side, max_height]
 *   response_format   "b64_json" (default) | "url"
 *   output_format     "png" (default) | "jpeg" | "webp"
 *   output_compression integer in [0, 100]: JPEG/WebP quality (default 90; PNG ignores
 *                     it; JPEG uses max(1, q); WebP 100 is lossless)
 *   model             string (which model is the server's choice: api_model_select)
 *   user              string, ≤ 256 bytes (logged only)
 *   quality           "auto"|"standard"|"hd"|"low"|"medium"|"high" — accepted, ignored
 *   style             "vivid"|"natural" — accepted, ignored
 *   stream            false accepted; true → 400 (not supported)
 *   steps             integer in [1, max_steps]; default the model's
 *   guidance_scale    number in [0, 100]; default the model's
 *   seed              integer in [0, 2^63 − 1], and seed + n − 1 ≤ 2^63 − 1 (image i
 *                     uses seed + i); absent: the caller's random_seed's low 53 bits
 *   sampler           a models/sampler.h name (sampler_kind_parse); default the model's
 *   scheduler         a models/pipeline.h name (sd_scheduler_parse); default "default"
 *   clip_skip         integer, layers skipped, in [0, text encoder layers − 1]
 *   deadline_ms       integer in [1, API_MAX_DEADLINE_MS]: the images within this many ms
 *                     of arrival, else none — refused at once (429, code "deadline",
 *                     Retry-After) when the scheduler's estimate cannot meet it, 504
 *                     when it passes while the job runs; absent: no deadline
 *   priority          integer in [API_MIN_PRIORITY, API_MAX_PRIORITY]: higher runs
 *                     first (the scheduler's order: priority, deadline, due time,
 *                     wait); default 0
 * Integers must be JSON integers: 2.0, 2e0, "2" and true are rejected for n.
 *
 * Ownership: the request owns its strings (malloc'ed; params.prompt and
 * params.negative_prompt point into them); release with openai_image_request_free,
 * which is safe on a zeroed or failed request.  The model and limits are borrowed.
 * Thread-safety: reentrant (the tokenizer may be shared: its encode is thread-safe).
 */
#ifndef DIFFUSIOND_API_OPENAI_IMAGES_H
#define DIFFUSIOND_API_OPENAI_IMAGES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api_error.h"
#include "api/image_encode.h"
#include "models/pipeline.h"
#include "models/sd_model.h"

#define API_DEFAULT_QUALITY 90   /* output_compression when absent */
#define API_USER_MAX_CHARS 256 /* code points, as JSON Schema's maxLength counts */
#define API_MAX_DEADLINE_MS 86400000 /* a day */
#define API_MIN_PRIORITY (-100)
#define API_MAX_PRIORITY 100
#define API_MAX_WARNINGS 4
/* A random seed keeps its low 53 bits: exact as a JSON number in every client
 * (JavaScript's doubles too), and seed + i never passes 2^63 − 1. */
#define API_RANDOM_SEED_MASK ((UINT64_C(1) << 53) - 1)

/* The server's request limits (serve_config fills them from its flags). */
struct api_limits {
    int max_width, max_height; /* pixels, ≤ GEN_MAX_SIDE; default 2048 */
    int min_side;              /* pixels, ≥ 8; default 64 */
    int max_n;                 /* ≤ GEN_MAX_IMAGES; default 8 */
    int max_steps;             /* ≤ GEN_MAX_STEPS; default 150 */
    int max_prompt_chars;      /* Unicode code points per prompt; default 4000 */
};

/* The defaults above. */
void api_limits_default(struct api_limits *l);

/* Checks the limits themselves (a server's settings): errors name the field
 * ("max_width: …", "min_side: …"). */
enum status api_limits_check(const struct api_limits *l, struct errbuf *err);

enum api_response_format { API_RESPONSE_B64_JSON = 0, API_RESPONSE_URL };

/* "b64_json" / "url". */
const char *api_response_format_name(enum api_response_format f);
/* "png" / "jpeg" / "webp". */
const char *api_output_format_name(enum image_format f);

struct openai_image_request {
    /* Owned strings (NULL when absent). */
    char *prompt, *negative_prompt, *model, *user;
    /* What the body gave (parse); has_* false = absent → the model's default. */
    bool has_size, has_steps, has_guidance, has_seed, has_sampler, has_scheduler,
        has_clip_skip, has_eta;
    int width, height;          /* when has_size ("auto" leaves it false); 0: the model's
                                   native side (A1111's width or height alone) */
    bool a1111_fields;          /* errors name A1111's fields (api/a1111_request.h):
                                   width/height, cfg_scale, batch_size, sampler_name,
                                   override_settings.CLIP_stop_at_last_layers */
    int steps;
    double guidance;
    uint64_t seed;
    enum sampler_kind sampler;
    enum sd_scheduler scheduler;
    int clip_skip;
    double eta;          /* DDIM's eta when has_eta (A1111's eta; the OpenAI route has none) */
    int64_t deadline_ms; /* 0: none */
    int priority;        /* default 0 */
    /* Resolved in parse (model-independent). */
    int n;                                  /* default 1 */
    enum image_format output_format;        /* default IMAGE_PNG */
    int quality;                            /* output_compression, default 90 */
    enum api_response_format response_format;
    /* Filled by resolve. */
    struct gen_params params;               /* validated against the model */
    bool seed_random;                       /* the seed was the caller's random_seed */
    char *warnings[API_MAX_WARNINGS];       /* owned, one line each */
    int n_warnings;
};

/* Stage 1: body[0 … len) → req (zeroed first).  On failure e is filled (400) and req
 * holds nothing to free (openai_image_request_free is still safe); STATUS_OUT_OF_MEMORY
 * gives a 503 error. */
enum status openai_images_parse(const char *body, size_t len, const struct api_limits *limits,
                                struct openai_image_request *req, struct api_error *e);

/* Stage 1 for a body already read as a JSON object (root is borrowed): what
 * openai_images_parse does after json_field_load. */
enum status openai_images_parse_object(const json_t *root, const struct api_limits *limits,
                                       struct openai_image_request *req, struct api_error *e);

/* Stage 2: req → req->params for `model`.  random_seed (its low 53 bits) is used when
 * the body had no seed (the caller draws it, e.g. with getrandom(2): the api layer
 * holds no RNG);
 * req->seed_random says so and params.seed holds it, to be echoed.  Prompts over the
 * tokenizer's max_length are not an error: a warning is added per prompt
 * ("prompt: truncated to 77 tokens (it has 93)").  Errors are 400s naming the
 * request's field (gen_params' width/height → "size", guidance → "guidance_scale"). */
enum status openai_images_resolve(const struct sd_model *model, const struct api_limits *limits,
                                  uint64_t random_seed, struct openai_image_request *req,
                                  struct api_error *e);

/* Adds a copy of `text` (one line) to req->warnings; past API_MAX_WARNINGS it is
 * dropped.  STATUS_OUT_OF_MEMORY (e a 503). */
enum status openai_image_request_warn(struct openai_image_request *req, const char *text,
                                      struct api_error *e);

/* Frees the owned strings and warnings and zeroes req; req may be NULL. */
void openai_image_request_free(struct openai_image_request *req);

/* Which of names[0 … n) the request's "model" asks for: NULL (absent) → 0; an exact
 * match → its index; otherwise −1 with e a 404 invalid_request_error, code
 * "model_not_found", param "model". */
int api_model_select(const char *requested, const char *const *names, int n,
                     struct api_error *e);

#endif
