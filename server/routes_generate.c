/* server/routes_generate.c — POST /v1/images/generations and /v1/images/edits, POST
 * /sdapi/v1/txt2img and /img2img (server/routes.h): one path, two dialects (the body's
 * fields and the answer's shape).
 *
 *   MHD thread    text to image: parse + resolve (api/openai_images.h; A1111's bodies
 *                 through api/a1111_request.h), defer the exchange, submit to the
 *                 scheduler (429/503 when it refuses), tag the exchange with the job id
 *                 (for a disconnect), return: the connection is suspended.  Image to
 *                 image (A1111's img2img, the edits route's multipart form through
 *                 api/openai_edits.h): defer and hold the exchange at once and hand the
 *                 job to the encoder pool, which parses the body there (its JSON and
 *                 base64 or its form: megabytes), decodes and resizes the start image
 *                 and its mask (api_img2img_finish: the costly part) and goes on from
 *                 "submit" (a client that left meanwhile gets its job cancelled when
 *                 the tag is set) — so a large upload never stalls this thread.
 *   worker        on_complete: copies the result, takes the images, hands the job to
 *                 the encoder pool (cheap: no encoding on the worker).
 *   encoder pool  encodes the images (PNG/JPEG/WebP), stores them for "url", writes
 *                 the JSON with its base64 straight into the response buffer, adds
 *                 Server-Timing, answers (which resumes the connection) and frees the job.
 * The job is owned by exactly one thread at a time along that chain; the exchange
 * stays alive until it is answered (its deferral reference), even if the client left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api/a1111_response.h"
#include "api/openai_edits.h"
#include "api/openai_response.h"
#include "engine/log.h"
#include "server/encoder_pool.h"
#include "server/image_store.h"
#include "server/routes_internal.h"

#define URL_BASE_MAX 300

struct gen_job {
    struct routes *r;
    struct http_exchange *ex;
    bool a1111;                 /* txt2img or img2img: A1111's body and answer */
    struct a1111_request t;     /* the OpenAI generations' request (t.req) and A1111's */
    struct openai_edit_request edit; /* the edits route's */
    struct openai_image_request *req; /* the route's request: &t.req or &edit.req */
    const char *body;           /* the exchange's body (read until the job is parsed) */
    size_t body_len;
    char *content_type;         /* the edits route's Content-Type (copied on the MHD thread) */
    int model;
    char base_url[URL_BASE_MAX]; /* "http://host:port" or "" (relative URLs) */
    /* the result (on_complete) */
    enum status status;
    enum cancel_reason reason;
    char error[ERRBUF_MSG_MAX];
    struct sd_image *images;
    int n_images;
    struct job_metrics m;
};

static void job_free(struct gen_job *j)
{
    for (int i = 0; j->images && i < j->n_images; i++)
        sd_image_free(&j->images[i]);
    free(j->images);
    a1111_request_free(&j->t);
    openai_edit_request_free(&j->edit);
    free(j->content_type);
    free(j);
}

static uint64_t random_seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
    }
    return v & 0xffffffffull; /* A1111-sized seeds, easy to retype */
}

/* Host header → "scheme://host" when it looks like a host[:port]; else "". */
static void base_url(struct http_exchange *ex, char *buf, size_t cap)
{
    buf[0] = '\0';
    const char *host = http_exchange_header(ex, "Host");
    if (!host || !*host || strlen(host) > 255)
        return;
    for (const char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(".-:[]", *p)))
            return;
    const char *proto = http_exchange_header(ex, "X-Forwarded-Proto");
    snprintf(buf, cap, "%s://%s", proto && strcmp(proto, "https") == 0 ? "https" : "http", host);
}

/* --- the answer (encoder pool) --------------------------------------------------------- */

static double ms(double s) { return s * 1e3; }

static const char *content_type(enum image_format f)
{
    return f == IMAGE_JPEG ? "image/jpeg" : f == IMAGE_WEBP ? "image/webp" : "image/png";
}

static void answer_failure(struct gen_job *j)
{
    struct api_error e;
    struct http_response *resp;
    if (j->status == STATUS_CANCELLED && j->reason == CANCEL_SHUTDOWN)
        api_error_set(&e, 503, NULL, NULL, "shutting_down",
                      "the server shut down before the images were ready; retry");
    else if (j->status == STATUS_CANCELLED && j->reason == CANCEL_DEADLINE)
        api_error_set(&e, 504, "server_error", NULL, "deadline_exceeded",
                      "deadline_ms: it passed before the images were ready (%lld ms)",
                      (long long)j->req->deadline_ms);
    else if (j->status == STATUS_CANCELLED)
        api_error_set(&e, 503, NULL, NULL, "cancelled", "the request was cancelled (%s)",
                      cancel_reason_name(j->reason));
    else {
        struct errbuf err = {.code = j->status};
        snprintf(err.msg, sizeof err.msg, "%s", j->error);
        api_error_from_status(&e, j->status, &err, "");
        LOG_ERRORF("serve", "generation failed: %s", j->error);
    }
    resp = routes_error_response(j->ex, &e);
    if (resp && e.http == 503) /* shutting down or out of memory: another replica may do it */
        http_response_header(resp, "Retry-After", "5", NULL);
    routes_answer(j->r, j->ex, resp);
}

/* Encodes every image into data[i]/lens[i]; STATUS_* with err on failure. */
static enum status encode_images(struct gen_job *j, uint8_t **data, size_t *lens,
                                 struct errbuf *err)
{
    const struct gen_params *p = &j->req->params;
    const struct routes *r = j->r;
    const struct api_img2img *i2i = j->a1111 ? &j->t.i2i : &j->edit.i2i;
    for (int i = 0; i < j->n_images; i++) {
        const struct sd_image *im = &j->images[i];
        struct image_meta meta = image_meta_for(p, r->names[j->model], im); /* its size */
        meta.mask_blur = api_inpaint_mask_blur(&i2i->inpaint);
        struct image_rgb8 out = {.width = im->width, .height = im->height, .rgb = im->rgb};
        struct image_rgb8 pasted = {0}; /* "only masked": into the whole start image */
        if (api_inpaint_cropped(&i2i->inpaint)) {
            TRY(api_inpaint_paste(&i2i->inpaint, &i2i->init, im->rgb, im->width, im->height,
                                  &pasted, err));
            out = pasted;
        }
        const enum status s = image_encode(j->req->output_format, out.rgb, out.width,
                                           out.height, j->req->quality, &meta, &data[i],
                                           &lens[i], err);
        image_rgb8_free(&pasted);
        TRY(s);
    }
    return STATUS_OK;
}

static void fill_metrics(const struct gen_job *j, double image_ms, double total_ms,
                         struct api_image_metrics *am)
{
    const struct job_metrics *m = &j->m;
    *am = (struct api_image_metrics){
        .queue_ms = ms(m->queue_s), .text_encode_ms = ms(m->encode_s),
        .denoise_ms = ms(m->denoise_s), .vae_decode_ms = ms(m->decode_s),
        .image_encode_ms = image_ms, .total_ms = total_ms,
        .steps_per_second = m->denoise_s > 0 ? m->steps_done / m->denoise_s : 0,
        .batch_sizes = m->batch_sizes, .n_batch_sizes = m->n_batch_sizes};
}

/* The body in the route's dialect. */
static enum status write_body(const struct gen_job *j, const struct api_image_out *out, int n,
                              const struct api_image_metrics *m, char **body, size_t *len,
                              struct errbuf *err)
{
    const int64_t created = (int64_t)time(NULL);
    if (j->a1111) {
        const struct a1111_txt2img_response resp = {
            .t = &j->t, .model_name = j->r->names[j->model], .images = out, .n_images = n,
            .width = j->req->params.width, .height = j->req->params.height, .created = created,
            .metrics = *m};
        return a1111_txt2img_response_write(&resp, body, len, err);
    }
    const struct api_images_response resp = {
        .created = created, .output_format = j->req->output_format,
        .width = j->images[0].width, .height = j->images[0].height,
        .response_format = j->req->response_format, .images = out, .n_images = n,
        .metrics = *m, .warnings = (const char *const *)j->req->warnings,
        .n_warnings = j->req->n_warnings};
    return api_images_response_write(&resp, body, len, err);
}

/* Builds the body (b64 or urls) and answers; frees data[] (taken by the store for url). */
static enum status write_answer(struct gen_job *j, uint8_t **data, size_t *lens, double image_ms,
                                struct errbuf *err)
{
    struct routes *r = j->r;
    const int n = j->n_images;
    struct api_image_out out[GEN_MAX_IMAGES];
    char urls[GEN_MAX_IMAGES][URL_BASE_MAX + 64];
    if (j->req->response_format == API_RESPONSE_URL) {
        char id[IMAGE_STORE_ID_BUF];
        TRY(image_store_put(r->cfg.store, data, lens, n, content_type(j->req->output_format),
                            http_now_ns(), id, err));
        for (int i = 0; i < n; i++)
            snprintf(urls[i], sizeof urls[i], "%s/v1/images/%s/%d", j->base_url, id, i);
    }
    for (int i = 0; i < n; i++)
        out[i] = (struct api_image_out){
            .data = data[i], .len = lens[i], .seed = j->images[i].seed,
            .url = j->req->response_format == API_RESPONSE_URL ? urls[i] : NULL};
    const double total_ms = (double)(http_now_ns() - http_exchange_start_ns(j->ex)) * 1e-6;
    struct api_image_metrics am;
    fill_metrics(j, image_ms, total_ms, &am);
    char *body = NULL;
    size_t len = 0;
    TRY(write_body(j, out, n, &am, &body, &len, err));
    struct http_response *hr = http_response_new(200, "application/json", body, len);
    char timing[256];
    api_server_timing_format(&am, timing, sizeof timing);
    if (hr)
        http_response_header(hr, "Server-Timing", timing, NULL);
    struct route_req *rq = http_exchange_data(j->ex);
    rq->queue_ms = am.queue_ms;
    rq->total_ms = total_ms;
    metrics_observe_generation(r->cfg.metrics, j->m.queue_s, j->m.total_s, n, j->m.steps_done);
    routes_answer(r, j->ex, hr);
    return STATUS_OK;
}

static void encode_task(void *arg)
{
    struct gen_job *j = arg;
    if (j->status != STATUS_OK || j->n_images < 1) {
        answer_failure(j);
        job_free(j);
        return;
    }
    uint8_t *data[GEN_MAX_IMAGES] = {0};
    size_t lens[GEN_MAX_IMAGES] = {0};
    struct errbuf err;
    const uint64_t t0 = http_now_ns();
    enum status st = encode_images(j, data, lens, &err);
    const double image_ms = (double)(http_now_ns() - t0) * 1e-6;
    if (st == STATUS_OK)
        st = write_answer(j, data, lens, image_ms, &err);
    for (int i = 0; i < j->n_images; i++)
        free(data[i]);
    if (st != STATUS_OK) {
        j->status = st == STATUS_INVALID_ARGUMENT ? STATUS_INTERNAL : st;
        snprintf(j->error, sizeof j->error, "image encoding: %.400s", err.msg);
        answer_failure(j);
    }
    job_free(j);
}

/* Worker thread: must stay cheap. */
static void on_complete(void *user, struct job_result *res)
{
    struct gen_job *j = user;
    j->status = res->status;
    j->reason = res->cancel_reason;
    snprintf(j->error, sizeof j->error, "%s", res->error ? res->error : "");
    j->m = res->metrics;
    j->n_images = res->status == STATUS_OK ? res->n_images : 0;
    j->images = res->status == STATUS_OK ? job_result_take_images(res) : NULL;
    if (!j->images)
        j->n_images = 0;
    struct errbuf err;
    if (encoder_pool_submit(j->r->cfg.pool, encode_task, j, &err) != STATUS_OK)
        encode_task(j); /* out of memory for a task node: do it here rather than lose it */
}

/* --- the request (MHD thread) ------------------------------------------------------------ */

static void answer_rejection(struct routes *r, struct http_exchange *ex, enum status st,
                             const struct admission *adm, const struct errbuf *err)
{
    struct api_error e;
    if (st == STATUS_BUSY && adm->reason == ADMIT_DRAINING) {
        routes_answer_unavailable(r, ex);
        return;
    }
    if (st == STATUS_BUSY || st == STATUS_TIMEOUT) {
        const bool full = st == STATUS_BUSY;
        metrics_reject(r->cfg.metrics, full ? METRICS_REJECT_QUEUE_FULL : METRICS_REJECT_DEADLINE);
        api_error_set(&e, 429, "rate_limit_error", NULL, full ? "queue_full" : "deadline",
                      "%s: the server is busy (%d requests waiting); retry after %lld ms",
                      full ? "queue full" : "deadline", adm->queue_depth,
                      (long long)adm->retry_after_ms);
        struct http_response *resp = routes_error_response(ex, &e);
        const int64_t ra_ms = adm->retry_after_ms > 0 ? adm->retry_after_ms : 1000;
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)((ra_ms + 999) / 1000));
        if (resp)
            http_response_header(resp, "Retry-After", v, NULL);
        snprintf(v, sizeof v, "%lld", (long long)ra_ms);
        if (resp)
            http_response_header(resp, "retry-after-ms", v, NULL);
        routes_answer(r, ex, resp);
        return;
    }
    metrics_reject(r->cfg.metrics, METRICS_REJECT_INVALID);
    api_error_from_status(&e, st, err, NULL);
    routes_answer_error(r, ex, &e);
}

/* Stage 1 in the route's dialect: j->req points at the request filled. */
static enum status parse(struct routes *r, enum metrics_route route, struct gen_job *j,
                         struct api_error *e)
{
    const struct api_limits *lim = &r->cfg.limits;
    const char *body = j->body;
    const size_t len = j->body_len;
    switch (route) {
    case METRICS_ROUTE_IMG2IMG: return a1111_img2img_parse(body, len, lim, &j->t, e);
    case METRICS_ROUTE_TXT2IMG: return a1111_txt2img_parse(body, len, lim, &j->t, e);
    case METRICS_ROUTE_EDITS:
        j->req = &j->edit.req;
        return openai_edits_parse(j->content_type, (const uint8_t *)body, len, lim, &j->edit, e);
    default: return openai_images_parse(body, len, lim, j->req, e);
    }
}

/* Parse, select the model, resolve; false when answered with an error.  Any thread
 * (the body and the headers it needs are the job's). */
static bool prepare(struct routes *r, struct http_exchange *ex, struct gen_job *j)
{
    struct api_error e;
    struct route_req *rq = http_exchange_data(ex);
    enum status st = parse(r, rq->route, j, &e);
    if (st == STATUS_OK) {
        j->model = j->a1111 ? routes_a1111_model(r, j->req->model,
                                                 "override_settings.sd_model_checkpoint", &e)
                            : api_model_select(j->req->model, r->names, r->n_models, &e);
        if (j->model < 0)
            st = STATUS_NOT_FOUND;
    }
    if (st == STATUS_OK && j->req->response_format == API_RESPONSE_URL &&
        r->cfg.url_store_images > 0 && j->req->n > r->cfg.url_store_images) {
        api_error_set(&e, 400, NULL, "n", NULL,
                      "n: at most %d images with response_format \"url\" (the image store "
                      "holds %d; see --url-store-images)",
                      r->cfg.url_store_images, r->cfg.url_store_images);
        st = STATUS_INVALID_ARGUMENT;
    }
    if (st == STATUS_OK)
        st = openai_images_resolve(r->models[j->model], &r->cfg.limits, random_seed(), j->req,
                                   &e);
    if (st == STATUS_OK) {
        if (j->req->user && !(rq->user = strdup(j->req->user)))
            LOG_WARNF("serve", "out of memory copying the user field");
        return true;
    }
    metrics_reject(r->cfg.metrics, METRICS_REJECT_INVALID);
    routes_answer_error(r, ex, &e);
    return false;
}

/* The start image decoded and resized into the request (api/img2img.h; a no-op for a
 * text-to-image request); false when answered with an error.  Any thread. */
static bool finish(struct gen_job *j)
{
    struct api_error e;
    const enum status st = j->req == &j->edit.req ? openai_edits_finish(&j->edit, &e)
                                                  : a1111_img2img_finish(&j->t, &e);
    if (st == STATUS_OK)
        return true;
    metrics_reject(j->r->cfg.metrics, METRICS_REJECT_INVALID);
    routes_answer_error(j->r, j->ex, &e);
    return false;
}

/* Submits the prepared job to the scheduler (the exchange is deferred): answers a
 * refusal, or tags the exchange with the job id for a disconnect.  Any thread; with
 * `held`, the caller's hold on the exchange (http_exchange_hold) is released here. */
static void submit(struct gen_job *j, bool held)
{
    struct routes *r = j->r;
    struct http_exchange *ex = j->ex;
    const struct route_req *rq = http_exchange_data(ex);
    const struct job_callbacks cb = {.on_complete = on_complete, .user = j};
    const struct submit_options opt = {.model = j->model, .request_id = rq->request_id,
                                       .deadline_ms = j->req->deadline_ms,
                                       .priority = j->req->priority};
    uint64_t job_id = 0;
    struct admission adm;
    struct errbuf err;
    const enum status st = scheduler_submit(r->sched, &j->req->params, &cb, &opt, &job_id, &adm,
                                            &err);
    if (st != STATUS_OK) {
        answer_rejection(r, ex, st, &adm, &err);
        job_free(j);
    } else if (http_exchange_set_tag(ex, job_id + 1) &&
               scheduler_disconnect(r->sched, job_id, &err) == STATUS_OK) {
        /* the client left while its image was being decoded: no on_abort will come */
        LOG_INFOF("serve", "job %llu: client disconnected; cancelled",
                  (unsigned long long)job_id);
    }
    /* j now belongs to the completion chain (it may already be gone); ex to its answer */
    if (held)
        http_exchange_release(ex);
}

/* Encoder pool: an image-to-image job from its body on — the parse (an 8 MB body's
 * JSON and base64, or multipart form: ~50 ms), the start image's decode and resize (a
 * 12-megapixel JPEG: ~0.5 s), the submission — off the HTTP thread, which meanwhile
 * serves every other connection. */
static void image_task(void *arg)
{
    struct gen_job *j = arg;
    struct http_exchange *ex = j->ex;
    if (prepare(j->r, ex, j) && finish(j))
        submit(j, true);
    else {
        job_free(j);
        http_exchange_release(ex);
    }
}

static bool image_route(enum metrics_route route)
{
    return route == METRICS_ROUTE_IMG2IMG || route == METRICS_ROUTE_EDITS;
}

void routes_generate(struct routes *r, struct http_exchange *ex)
{
    struct route_req *rq = http_exchange_data(ex);
    struct gen_job *j = calloc(1, sizeof *j);
    if (!j) {
        http_exchange_respond(ex, NULL);
        return;
    }
    j->r = r;
    j->ex = ex;
    j->req = &j->t.req;
    j->a1111 = rq->route == METRICS_ROUTE_TXT2IMG || rq->route == METRICS_ROUTE_IMG2IMG;
    j->body = (const char *)http_exchange_body(ex, &j->body_len);
    base_url(ex, j->base_url, sizeof j->base_url);
    if (rq->route == METRICS_ROUTE_EDITS) {
        const char *type = http_exchange_header(ex, "Content-Type");
        if (!(j->content_type = strdup(type ? type : ""))) {
            job_free(j);
            http_exchange_respond(ex, NULL);
            return;
        }
    }
    if (!image_route(rq->route)) { /* a small JSON body: parsed here */
        if (!prepare(r, ex, j)) {
            job_free(j);
            return;
        }
        http_exchange_defer(ex);
        submit(j, false);
        return;
    }
    http_exchange_defer(ex);
    http_exchange_hold(ex); /* the body stays readable until the task is done with it */
    struct errbuf err;
    if (encoder_pool_submit(r->cfg.pool, image_task, j, &err) != STATUS_OK)
        image_task(j); /* out of memory for a task node: do it here rather than lose it */
}

void routes_generate_abort(struct routes *r, uint64_t tag)
{
    if (!tag || !r->sched)
        return;
    struct errbuf err;
    if (scheduler_disconnect(r->sched, tag - 1, &err) == STATUS_OK)
        LOG_INFOF("serve", "job %llu: client disconnected; cancelled",
                  (unsigned long long)(tag - 1));
}
