/* api/a1111_response.h — the AUTOMATIC1111 web UI's API (/sdapi/v1), the response side:
 * the bodies its clients (the webuiapi package, Open WebUI's A1111 engine, …) read.
 *
 * POST /sdapi/v1/txt2img (a1111_txt2img_response_write):
 *     {"images":["<base64 PNG, no data: prefix>", …],     ([] with send_images false)
 *      "parameters":{prompt, negative_prompt, seed, subseed, subseed_strength,
 *                    sampler_name, scheduler, batch_size, n_iter, steps, cfg_scale,
 *                    width, height, eta, send_images,
 *                    override_settings:{sd_model_checkpoint, CLIP_stop_at_last_layers}},
 *      "info":"<a JSON object as a string: prompt, all_prompts, negative_prompt,
 *              all_negative_prompts, seed, all_seeds, subseed, all_subseeds,
 *              subseed_strength, width, height, sampler_name, cfg_scale, steps,
 *              batch_size, restore_faces, sd_model_name, sd_model_hash, seed_resize_from_w,
 *              seed_resize_from_h, extra_generation_params, index_of_first_image,
 *              infotexts (each image's PNG "parameters" text), styles, job_timestamp,
 *              clip_skip, version>",
 *      "metrics":{…},                        (as the OpenAI route's, api/openai_response.h)
 *      "warnings":["…", …]}                  (only when there are warnings)
 *   parameters and info hold the values used (the seed drawn for -1, the model's
 *   defaults for what the body left out); sampler_name is A1111's display name ("Euler
 *   a", "DPM++ 2M Karras").
 * POST /sdapi/v1/img2img: the same body (t->req.params.init_image set), with
 *   denoising_strength in parameters and info and resize_mode 0 in parameters; the init
 *   images are not echoed (A1111 echoes them in parameters: megabytes of base64 back).
 * GET /sdapi/v1/samplers:   [{"name","aliases":[…],"options":{}}, …]
 * GET /sdapi/v1/schedulers: [{"name","label","aliases":null,"default_rho","need_inner_model"}, …]
 *   Names A1111 knows where ours is one of them: automatic (the model's own
 *   spacing), karras, uniform (linspace), sgm_uniform (trailing); and leading.
 * GET /sdapi/v1/sd-models:  [{"title","model_name","hash":null,"sha256":null,"filename",
 *                            "config":null}, …]
 * GET /sdapi/v1/options:    {"sd_model_checkpoint","sd_checkpoint_hash":null,
 *                            "CLIP_stop_at_last_layers":1,"samples_format":"png"}
 * GET /sdapi/v1/progress:   {"progress","eta_relative" (the seconds of work admitted and
 *                            not yet run),"state":{skipped, interrupted,
 *                            job, job_count, job_timestamp, job_no, sampling_step,
 *                            sampling_steps},"current_image":null,"textinfo":null}
 * Errors (a1111_error_body): {"error":"<type>","detail":"<message>","body":"",
 *                            "errors":"<message>","param":…,"code":…}
 *   — A1111's error keys plus OpenAI's param and code.
 *
 * Ownership: inputs borrowed; bodies malloc'ed (NUL-terminated), freed by the caller.
 * Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_A1111_RESPONSE_H
#define DIFFUSIOND_API_A1111_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "api/a1111_request.h"
#include "api/openai_response.h"

struct a1111_txt2img_response {
    const struct a1111_request *t;      /* resolved: t->req.params holds the values used */
    const char *model_name;
    const struct api_image_out *images; /* [n_images] PNGs with their seeds */
    int n_images;                       /* ≥ 1 */
    int width, height;
    int64_t created;                    /* unix seconds: info's job_timestamp */
    struct api_image_metrics metrics;
};

/* The txt2img body (shape at the top).  STATUS_INVALID_ARGUMENT naming a missing input;
 * STATUS_OUT_OF_MEMORY. */
enum status a1111_txt2img_response_write(const struct a1111_txt2img_response *r, char **out,
                                         size_t *len, struct errbuf *err);

/* A1111's scheduler name for ours ("automatic", "karras", "uniform", …). */
const char *a1111_scheduler_name(enum sd_scheduler s);

enum status a1111_samplers_write(char **out, size_t *len, struct errbuf *err);
enum status a1111_schedulers_write(char **out, size_t *len, struct errbuf *err);
enum status a1111_models_write(const char *const *names, int n, char **out, size_t *len,
                               struct errbuf *err);
enum status a1111_options_write(const char *model_name, char **out, size_t *len,
                                struct errbuf *err);

struct a1111_progress {
    int job_count;                   /* jobs queued or running */
    int64_t steps_done, steps_total; /* over the running jobs' images */
    double eta_s;                    /* the scheduler's backlog estimate, seconds */
};

/* progress = steps_done / steps_total (0 when idle); eta_relative = eta_s. */
enum status a1111_progress_write(const struct a1111_progress *p, char **out, size_t *len,
                                 struct errbuf *err);

/* The error body (shape at the top); NULL when out of memory. */
char *a1111_error_body(const struct api_error *e, size_t *len);

#endif
