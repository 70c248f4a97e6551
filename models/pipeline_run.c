/* models/pipeline_run.c — sd_txt2img: the whole-batch driver, made only of the step
 * functions of models/pipeline.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/pipeline.h"

#define SD_DECODE_BATCH 4 /* images per VAE call (its workspace grows with the batch) */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct run {
    const struct sd_model *model;
    struct workspace *ws;
    struct sd_request *reqs;   /* [total] in image order */
    struct sd_request **batch; /* [total] scratch */
    bool *decoded;             /* [total] */
    bool *taken;               /* [total] scratch: in this iteration's U-Net batch */
    int total, steps_total;
    struct sd_timings t;
};

static enum status begin_all(struct run *r, const struct gen_params *params, int n_params,
                             struct errbuf *err)
{
    const double t0 = now_s();
    int idx = 0;
    for (int i = 0; i < n_params; i++)
        for (int j = 0; j < params[i].n; j++, idx++) {
            enum status s = sd_request_begin(r->model, r->ws, &params[i], j, &r->reqs[idx], err);
            if (s != STATUS_OK)
                return n_params > 1 ? status_wrap(err, "params[%d]", i) : s;
            r->steps_total += sd_request_steps(&r->reqs[idx]);
        }
    r->t.text_encode = now_s() - t0;
    return STATUS_OK;
}

static bool same_size(const struct sd_request *a, const struct sd_request *b)
{
    return a->lh == b->lh && a->lw == b->lw;
}

/* One U-Net call per latent size over the running requests (split at the row limit). */
static enum status step_all(struct run *r, struct errbuf *err)
{
    bool *taken = r->taken;
    memset(taken, 0, sizeof *taken * (size_t)r->total);
    for (int i = 0; i < r->total; i++) {
        const struct sd_request *lead = &r->reqs[i];
        if (taken[i] || !lead->model || sd_request_done(lead))
            continue;
        int n = 0, rows = 0;
        for (int j = i; j < r->total; j++) {
            struct sd_request *q = &r->reqs[j];
            if (taken[j] || !q->model || sd_request_done(q) || !same_size(lead, q) ||
                rows + q->rows > SD_MAX_BATCH_ROWS)
                continue;
            r->batch[n++] = q;
            rows += q->rows;
            taken[j] = true;
        }
        enum status s = sd_unet_step(r->model, r->ws, r->batch, n, err);
        if (s != STATUS_OK)
            return s;
        r->t.unet_calls++;
        r->t.steps += n;
    }
    return STATUS_OK;
}

/* Decodes the requests that finished (still holding state), batched by size, and
 * frees them. */
static enum status decode_finished(struct run *r, bool with_unit, struct sd_image *images,
                                   struct errbuf *err)
{
    const double t0 = now_s();
    for (int i = 0; i < r->total; i++) {
        struct sd_request *lead = &r->reqs[i];
        if (!lead->model || !sd_request_done(lead))
            continue;
        int n = 0, idx[SD_DECODE_BATCH];
        for (int j = i; j < r->total && n < SD_DECODE_BATCH; j++) {
            struct sd_request *q = &r->reqs[j];
            if (q->model && sd_request_done(q) && same_size(lead, q)) {
                idx[n] = j;
                r->batch[n++] = q;
            }
        }
        struct sd_image out[SD_DECODE_BATCH];
        enum status s = sd_decode(r->model, r->ws, r->batch, n, with_unit, out, err);
        if (s != STATUS_OK)
            return s;
        for (int k = 0; k < n; k++) {
            images[idx[k]] = out[k];
            r->decoded[idx[k]] = true;
            sd_request_free(&r->reqs[idx[k]]);
        }
        i--; /* the lead was freed: look at position i again for the next group */
    }
    r->t.decode += now_s() - t0;
    return STATUS_OK;
}

static int steps_done(const struct run *r)
{
    int done = 0;
    for (int i = 0; i < r->total; i++)
        done += r->decoded[i] ? 0 : sd_request_step(&r->reqs[i]);
    return done;
}

static enum status run_loop(struct run *r, bool with_unit, sd_progress_fn progress, void *user,
                            struct sd_image *images, struct errbuf *err)
{
    const double t0 = now_s();
    int finished_steps = 0, left = r->total;
    while (left > 0) {
        enum status s = step_all(r, err);
        for (int i = 0; s == STATUS_OK && i < r->total; i++)
            if (!r->decoded[i] && sd_request_done(&r->reqs[i]))
                finished_steps += sd_request_steps(&r->reqs[i]);
        if (s == STATUS_OK)
            s = decode_finished(r, with_unit, images, err);
        if (s != STATUS_OK)
            return s;
        left = 0;
        for (int i = 0; i < r->total; i++)
            left += !r->decoded[i];
        if (progress)
            progress(user, finished_steps + steps_done(r), r->steps_total);
    }
    r->t.denoise = now_s() - t0 - r->t.decode;
    return STATUS_OK;
}

static enum status check_args(const struct gen_params *params, int n_params,
                              struct sd_image *images, int *total, struct errbuf *err)
{
    if (!params || n_params < 1 || !images)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sd_txt2img: %s",
                           !images ? "no image array" : "no params");
    *total = 0;
    for (int i = 0; i < n_params; i++) {
        if (params[i].n < 1 || params[i].n > GEN_MAX_IMAGES)
            return status_fail(err, STATUS_INVALID_ARGUMENT, "params[%d]: n: must be in [1, %d] (got %d)",
                               i, GEN_MAX_IMAGES, params[i].n);
        *total += params[i].n;
    }
    return STATUS_OK;
}

enum status sd_txt2img(const struct sd_model *model, struct workspace *ws,
                       const struct gen_params *params, int n_params, bool with_unit,
                       sd_progress_fn progress, void *user, struct sd_image *images,
                       struct sd_timings *timings, struct errbuf *err)
{
    int total = 0;
    enum status s = check_args(params, n_params, images, &total, err);
    if (s != STATUS_OK)
        return s;
    memset(images, 0, sizeof *images * (size_t)total);
    struct run r = {.model = model, .ws = ws, .total = total};
    r.reqs = calloc((size_t)total, sizeof *r.reqs);
    r.batch = calloc((size_t)total, sizeof *r.batch);
    r.decoded = calloc((size_t)total, sizeof *r.decoded);
    r.taken = calloc((size_t)total, sizeof *r.taken);
    if (!r.reqs || !r.batch || !r.decoded || !r.taken)
        s = status_fail(err, STATUS_OUT_OF_MEMORY, "sd_txt2img: %d requests", total);
    if (s == STATUS_OK)
        s = begin_all(&r, params, n_params, err);
    if (s == STATUS_OK)
        s = run_loop(&r, with_unit, progress, user, images, err);
    for (int i = 0; r.reqs && i < total; i++) {
        sd_request_free(&r.reqs[i]);
        if (s != STATUS_OK)
            sd_image_free(&images[i]);
    }
    if (timings)
        *timings = r.t;
    free(r.reqs);
    free(r.batch);
    free(r.decoded);
    free(r.taken);
    return s;
}
