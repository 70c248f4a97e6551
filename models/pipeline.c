/* models/pipeline.c — the step functions: request begin, one batched U-Net step with
 * CFG and per-request sampler steps, batched VAE decode. */
#include "models/pipeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/log.h"
#include "engine/philox.h"
#include "models/pipeline_internal.h"

static const float ONE = 1.0f, ZERO = 0.0f;

_Static_assert(SD_MAX_BATCH_ROWS <= BACKEND_GATHER_MAX, "a batch is one backend_gather_rows");

/* Rows [row0, row0 + rows) of t (dim 0) as a tensor of the same storage. */
static struct tensor row_view(const struct tensor *t, int64_t row0, int64_t rows)
{
    struct tensor v = *t;
    const size_t row_bytes = tensor_nbytes(t) / (size_t)t->shape[0];
    v.shape[0] = rows;
    v.data = (char *)t->data + (size_t)row0 * row_bytes;
    return v;
}

/* dst = scale · src (one row each; scale 1 is an exact copy). */
static enum status copy_scaled(const struct tensor *src, float scale, struct tensor *dst,
                               struct errbuf *err)
{
    return backend_axpby(src, src, &scale, &ZERO, dst, err);
}

/* --- begin --------------------------------------------------------------------------- */

static enum status alloc_tensor(const struct sd_model *m, enum dtype dt, int ndim,
                                const int64_t *shape, struct tensor *t, struct errbuf *err)
{
    *t = tensor_desc(dt, ndim, shape);
    return backend_alloc(m->backend, t, err);
}

/* out {1,L,C} = the text encoder's output for `text`; `what` names it in messages. */
static enum status encode_into(const struct sd_model *m, struct workspace *ws, const char *text,
                               int clip_skip, const char *what, struct tensor *out,
                               bool *truncated, struct errbuf *err)
{
    int32_t *ids = malloc(sizeof *ids * (size_t)m->context_len);
    if (!ids)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: token ids", what);
    struct tokenizer_result info;
    enum status s = tokenizer_encode(m->tokenizer, text ? text : "", ids, &info, err);
    if (s == STATUS_OK) {
        if (truncated)
            *truncated = info.truncated;
        if (info.truncated)
            LOG_WARNF("pipeline", "%s: %d tokens, truncated to %d (CLIP's limit)", what,
                      info.n_tokens, m->context_len);
        s = clip_encode(m->clip, ws, ids, 1, clip_skip, out, err);
    }
    free(ids);
    return s;
}

enum status sd_text_encode(const struct sd_model *model, struct workspace *ws, const char *text,
                           int clip_skip, struct tensor *out, bool *truncated,
                           struct errbuf *err)
{
    if (!out || out->ndim != 3 || out->shape[0] != 1 || out->shape[1] != model->context_len ||
        out->shape[2] != model->context_dim)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "sd_text_encode: out must be {1,%d,%d}", model->context_len,
                           model->context_dim);
    if (clip_skip < 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "clip_skip: %d is negative", clip_skip);
    return encode_into(model, ws, text, clip_skip, "prompt", out, truncated, err);
}

/* context row `row` = the text encoder's output for `text`. */
static enum status encode_text(const struct sd_model *m, struct workspace *ws, const char *text,
                               int clip_skip, struct sd_request *req, int row, bool *truncated,
                               struct errbuf *err)
{
    struct tensor out = row_view(&req->context, row, 1);
    return encode_into(m, ws, text, clip_skip, row == 0 ? "prompt" : "negative_prompt", &out,
                       truncated, err);
}

/* context row `row` = a precomputed embedding (an exact copy). */
static enum status copy_text(const struct sd_model *m, const struct tensor *src,
                             struct sd_request *req, int row, struct errbuf *err)
{
    if (!src || src->ndim != 3 || src->shape[0] != 1 || src->shape[1] != m->context_len ||
        src->shape[2] != m->context_dim || src->dtype != req->context.dtype)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "text embeddings: %s must be {1,%d,%d} in the workspace's dtype",
                           row == 0 ? "cond" : "uncond", m->context_len, m->context_dim);
    struct tensor dst = row_view(&req->context, row, 1);
    return copy_scaled(src, 1.0f, &dst, err);
}

enum plan_need { NEED_NOISE, NEED_X0_HISTORY, NEED_CLIP };

/* Whether any step of the request's plan draws noise / keeps x₀ / clamps x₀. */
static bool plan_has(const struct sampler_state *st, enum plan_need need)
{
    for (int i = 0; i < st->n_steps; i++) {
        const struct sampler_coeffs *c = &st->coeffs[i];
        if ((need == NEED_NOISE && c->needs_noise) || (need == NEED_X0_HISTORY && c->stores_x0) ||
            (need == NEED_CLIP && c->clip))
            return true;
    }
    return false;
}

static enum status init_sampler(const struct sd_model *m, const struct gen_params *p,
                                struct sd_request *req, struct errbuf *err)
{
    struct schedule sched = sd_schedule_variant(&m->schedule, p->scheduler);
    struct sampler_options opt;
    sampler_options_defaults(&opt);
    opt.eta = p->eta;
    opt.seed = req->seed;
    opt.subsequence = 0;
    if (p->init_image)
        opt.begin = p->steps - sd_img2img_steps(p->steps, p->strength);
    enum status s = sampler_init(&req->sampler, p->sampler, &sched, p->steps, &opt, err);
    if (s != STATUS_OK)
        return status_wrap(err, "sampler");
    req->host_step = plan_has(&req->sampler, NEED_CLIP);
    return STATUS_OK;
}

static enum status init_text(const struct sd_model *m, struct workspace *ws,
                             const struct gen_params *p, const struct sd_text_embeddings *text,
                             struct sd_request *req, struct errbuf *err)
{
    const int64_t shape[3] = {req->rows, m->context_len, m->context_dim};
    enum status s = alloc_tensor(m, ws->dtype, 3, shape, &req->context, err);
    if (s != STATUS_OK)
        return s;
    if (text) {
        req->prompt_truncated = text->cond_truncated;
        s = copy_text(m, text->cond, req, 0, err);
        if (s == STATUS_OK && req->rows == 2) {
            req->negative_truncated = text->uncond_truncated;
            s = copy_text(m, text->uncond, req, 1, err);
        }
        return s;
    }
    s = encode_text(m, ws, p->prompt, p->clip_skip, req, 0, &req->prompt_truncated, err);
    if (s != STATUS_OK)
        return status_wrap(err, "prompt");
    if (req->rows == 2) {
        /* diffusers' encode_prompt applies clip_skip to the prompt only: the
         * negative prompt always takes the last layer (see models/pipeline.h) */
        s = encode_text(m, ws, p->negative_prompt, 0, req, 1, &req->negative_truncated, err);
        if (s != STATUS_OK)
            return status_wrap(err, "negative_prompt");
    }
    return STATUS_OK;
}

/* img2img: the image's latent z = (mean + exp(logvar/2)·ε)·scaling_factor into
 * z[0 … n) (host), diffusers' vae.encode(image).latent_dist.sample() · scaling_factor. */
static enum status encode_image(const struct sd_model *m, struct workspace *ws,
                                const struct gen_params *p, const struct sd_request *req,
                                float *z, struct errbuf *err)
{
    const size_t px = (size_t)req->width * (size_t)req->height * 3, n = req->n_elems;
    float *host = malloc(sizeof(float) * (px > 2 * n ? px : 2 * n));
    if (!host)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "init_image: %zu floats", px);
    for (size_t i = 0; i < px; i++) { /* VaeImageProcessor: /255, then 2x − 1, in float32 */
        const float unit = (float)p->init_image[i] / 255.0f;
        host[i] = 2.0f * unit - 1.0f;
    }
    const int64_t is[4] = {1, req->height, req->width, 3}, zs[4] = {1, req->lh, req->lw, req->lc};
    const struct workspace_mark mark = workspace_mark(ws);
    struct tensor image, mean, logvar;
    enum status s = workspace_tensor(ws, 4, is, &image, err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 4, zs, &mean, err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 4, zs, &logvar, err);
    if (s == STATUS_OK)
        s = backend_upload(&image, host, DTYPE_F32, err);
    if (s == STATUS_OK)
        s = vae_encode(m->vae, ws, &image, &mean, &logvar, err);
    if (s == STATUS_OK)
        s = backend_download(&mean, host, err);
    if (s == STATUS_OK)
        s = backend_download(&logvar, host + n, err);
    workspace_rewind(ws, mark);
    if (s == STATUS_OK) {
        float *eps = z; /* ε, then z in place */
        if (p->encode_noise)
            memcpy(eps, p->encode_noise, sizeof(float) * n);
        else
            philox_normal_fill(req->seed, 1, 0, eps, n);
        const float scale = vae_scaling_factor(m->vae);
        for (size_t i = 0; i < n; i++) {
            const float std = expf(0.5f * host[n + i]);
            z[i] = scale * (host[i] + std * eps[i]);
        }
    }
    free(host);
    return s == STATUS_OK ? STATUS_OK : status_wrap(err, "init_image");
}

/* img2img's initial latent into req->host: add_noise(z, noise) at the first step. */
static enum status init_img2img(const struct sd_model *m, struct workspace *ws,
                                const struct gen_params *p, struct sd_request *req,
                                struct errbuf *err)
{
    const size_t n = req->n_elems;
    float *z = malloc(sizeof(float) * n);
    if (!z)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "init_image: latent of %zu floats", n);
    enum status s = encode_image(m, ws, p, req, z, err);
    float *noise = s == STATUS_OK && inpaint_wanted(p) ? malloc(sizeof(float) * n) : req->host;
    if (!noise)
        s = status_fail(err, STATUS_OUT_OF_MEMORY, "init_mask: noise of %zu floats", n);
    if (s == STATUS_OK) {
        if (p->init_noise)
            memcpy(noise, p->init_noise, sizeof(float) * n);
        else
            philox_normal_fill(req->seed, 0, 0, noise, n);
        if (inpaint_wanted(p))
            s = inpaint_begin(m, p, req, z, noise, req->host, err);
        else
            sampler_add_noise(&req->sampler, z, noise, req->host, n);
    }
    if (noise != req->host)
        free(noise);
    free(z);
    return s;
}

/* latent, x₀ history, noise tensors and host scratch; the initial latent. */
static enum status init_latent(const struct sd_model *m, struct workspace *ws,
                               const struct gen_params *p, struct sd_request *req,
                               struct errbuf *err)
{
    const int64_t shape[4] = {1, req->lh, req->lw, req->lc};
    const size_t n = req->n_elems;
    req->host = malloc(sizeof(float) * n * (req->host_step ? 3 : 1));
    if (!req->host)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "request: host scratch of %zu floats", n);
    enum status s = alloc_tensor(m, ws->dtype, 4, shape, &req->latent, err);
    const bool history = !req->host_step && plan_has(&req->sampler, NEED_X0_HISTORY);
    for (int i = 0; i < 2 && s == STATUS_OK && history; i++)
        s = alloc_tensor(m, ws->dtype, 4, shape, &req->x0[i], err);
    if (s == STATUS_OK && !req->host_step && plan_has(&req->sampler, NEED_NOISE))
        s = alloc_tensor(m, ws->dtype, 4, shape, &req->noise, err);
    if (s != STATUS_OK)
        return s;
    if (p->init_image) {
        s = init_img2img(m, ws, p, req, err);
        if (s != STATUS_OK)
            return s;
    } else if (p->init_noise) {
        const float sigma = sampler_init_noise_sigma(&req->sampler);
        for (size_t i = 0; i < n; i++)
            req->host[i] = p->init_noise[i] * sigma;
    } else {
        sampler_initial_latent(&req->sampler, req->host, n);
    }
    return backend_upload(&req->latent, req->host, DTYPE_F32, err);
}

enum status sd_request_begin(const struct sd_model *model, struct workspace *ws,
                             const struct gen_params *p, int image_index,
                             struct sd_request *req, struct errbuf *err)
{
    return sd_request_begin_text(model, ws, p, image_index, NULL, req, err);
}

enum status sd_request_begin_text(const struct sd_model *model, struct workspace *ws,
                                  const struct gen_params *p, int image_index,
                                  const struct sd_text_embeddings *text, struct sd_request *req,
                                  struct errbuf *err)
{
    memset(req, 0, sizeof *req);
    enum status s = gen_params_validate(model, p, err);
    if (s != STATUS_OK)
        return s;
    if (image_index < 0 || image_index >= p->n)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "image_index: %d outside [0, %d)",
                           image_index, p->n);
    req->model = model;
    req->seed = p->seed + (uint64_t)image_index;
    req->image_index = image_index;
    req->width = p->width;
    req->height = p->height;
    req->lh = p->height / model->downscale;
    req->lw = p->width / model->downscale;
    req->lc = model->latent_channels;
    req->n_elems = (size_t)req->lh * (size_t)req->lw * (size_t)req->lc;
    req->guidance = (float)p->guidance;
    req->rows = p->guidance > 1.0 ? 2 : 1;
    req->scheduler = p->scheduler;
    req->step_noise = p->step_noise;
    s = init_sampler(model, p, req, err);
    if (s == STATUS_OK)
        s = init_text(model, ws, p, text, req, err);
    if (s == STATUS_OK)
        s = init_latent(model, ws, p, req, err);
    if (s != STATUS_OK)
        sd_request_free(req);
    return s;
}

void sd_request_free(struct sd_request *req)
{
    if (!req)
        return;
    backend_free(&req->context);
    backend_free(&req->latent);
    backend_free(&req->x0[0]);
    backend_free(&req->x0[1]);
    backend_free(&req->noise);
    inpaint_free(req);
    sampler_free(&req->sampler);
    free(req->host);
    memset(req, 0, sizeof *req);
}

bool sd_request_done(const struct sd_request *req)
{
    return sampler_done(&req->sampler);
}

int sd_request_step(const struct sd_request *req)
{
    return sampler_step_index(&req->sampler) - req->sampler.begin;
}

int sd_request_steps(const struct sd_request *req)
{
    return sampler_n_steps(&req->sampler) - req->sampler.begin;
}

/* --- one step ------------------------------------------------------------------------ */

/* The current step's noise: the test hook's, else the request's Philox draw. */
static enum status step_noise(struct sd_request *req, float *out, struct errbuf *err)
{
    const int k = sampler_step_index(&req->sampler);
    if (req->step_noise) {
        if (!req->step_noise[k])
            return status_fail(err, STATUS_INVALID_ARGUMENT, "step_noise[%d]: missing", k);
        memcpy(out, req->step_noise[k], sizeof(float) * req->n_elems);
        return STATUS_OK;
    }
    philox_normal_fill(req->seed, 0, sampler_noise_offset(&req->sampler, req->n_elems), out,
                       req->n_elems);
    return STATUS_OK;
}

/* The sampler's update with per-row scalars on the backend (models/sampler.h):
 * x₀ = a·latent + b·model → history; latent = fold_l·latent + fold_m·model
 * + c_prev·prev_x₀ + c_noise·noise. */
static enum status step_backend(struct sd_request *req, const struct tensor *mo,
                                struct errbuf *err)
{
    const struct sampler_coeffs *c = sampler_step_coeffs(&req->sampler);
    const int next = 1 - req->x0_prev;
    enum status s = STATUS_OK;
    if (c->stores_x0)
        s = backend_axpby(&req->latent, mo, &c->x0_latent, &c->x0_model, &req->x0[next], err);
    if (s == STATUS_OK)
        s = backend_axpby(&req->latent, mo, &c->fold_latent, &c->fold_model, &req->latent, err);
    if (s == STATUS_OK && c->uses_prev_x0)
        s = backend_axpby(&req->latent, &req->x0[req->x0_prev], &ONE, &c->c_prev, &req->latent,
                          err);
    if (s == STATUS_OK && c->needs_noise) {
        s = step_noise(req, req->host, err);
        if (s == STATUS_OK)
            s = backend_upload(&req->noise, req->host, DTYPE_F32, err);
        if (s == STATUS_OK)
            s = backend_axpby(&req->latent, &req->noise, &ONE, &c->c_noise, &req->latent, err);
    }
    if (s != STATUS_OK)
        return s;
    if (c->stores_x0)
        req->x0_prev = next;
    return sampler_advance(&req->sampler, err);
}

/* A step that clamps x₀ (clip_sample) has no backend op: it runs on the host rows. */
static enum status step_host(struct sd_request *req, const struct tensor *mo, struct errbuf *err)
{
    const size_t n = req->n_elems;
    float *noise = req->host, *lat = req->host + n, *out = req->host + 2 * n;
    enum status s = backend_download(&req->latent, lat, err);
    if (s == STATUS_OK)
        s = backend_download(mo, out, err);
    if (s != STATUS_OK)
        return s;
    if (sampler_step_coeffs(&req->sampler)->needs_noise) {
        s = step_noise(req, noise, err);
        if (s == STATUS_OK)
            s = sampler_step_with_noise(&req->sampler, out, lat, noise, n, err);
    } else {
        s = sampler_step_with_noise(&req->sampler, out, lat, NULL, n, err);
    }
    return s == STATUS_OK ? backend_upload(&req->latent, lat, DTYPE_F32, err) : s;
}

static enum status check_batch(struct sd_request *const *reqs, int n, int *rows,
                               struct errbuf *err)
{
    if (!reqs || n < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sd_unet_step: no requests");
    *rows = 0;
    for (int i = 0; i < n; i++) {
        const struct sd_request *r = reqs[i];
        if (!r || !r->model || sd_request_done(r))
            return status_fail(err, STATUS_INVALID_ARGUMENT, "sd_unet_step: request %d is %s", i,
                               !r || !r->model ? "not begun" : "done");
        if (r->lh != reqs[0]->lh || r->lw != reqs[0]->lw || r->lc != reqs[0]->lc)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "sd_unet_step: request %d is %dx%d, request 0 %dx%d (one latent "
                               "size per call)",
                               i, r->width, r->height, reqs[0]->width, reqs[0]->height);
        *rows += r->rows;
    }
    if (*rows > SD_MAX_BATCH_ROWS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sd_unet_step: %d rows exceed %d",
                           *rows, SD_MAX_BATCH_ROWS);
    return STATUS_OK;
}

struct batch {
    struct tensor x, ctx, out; /* {R,h,w,C}, {R,L,Cctx}, {R,h,w,C} */
    float t[SD_MAX_BATCH_ROWS];
    int order[SD_MAX_BATCH_ROWS]; /* batch position → request index; CFG ones first */
    int n, k;                     /* requests, requests with CFG */
};

/* Where batch row `row` comes from: request r's latent (scaled for the model input) and
 * its context row `which` (0 cond, 1 uncond), at its current step. */
struct batch_sources {
    const struct tensor *x[SD_MAX_BATCH_ROWS], *ctx[SD_MAX_BATCH_ROWS];
    float scale[SD_MAX_BATCH_ROWS];
    struct tensor ctx_rows[SD_MAX_BATCH_ROWS]; /* the context row views ctx points at */
};

static void source_row(struct batch *b, struct batch_sources *src, const struct sd_request *r,
                       int row, int which)
{
    b->t[row] = sampler_timestep(&r->sampler);
    src->x[row] = &r->latent;
    src->scale[row] = sampler_model_input_scale(&r->sampler);
    src->ctx_rows[row] = row_view(&r->context, which, 1);
    src->ctx[row] = &src->ctx_rows[row];
}

static enum status build_batch(const struct sd_model *m, struct workspace *ws,
                               struct sd_request *const *reqs, int n, int rows, struct batch *b,
                               struct errbuf *err)
{
    const struct sd_request *r0 = reqs[0];
    const int64_t xs[4] = {rows, r0->lh, r0->lw, r0->lc};
    const int64_t cs[3] = {rows, m->context_len, m->context_dim};
    enum status s = workspace_tensor(ws, 4, xs, &b->x, err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 3, cs, &b->ctx, err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 4, xs, &b->out, err);
    int pos = 0;
    for (int pass = 0; pass < 2; pass++) /* CFG requests first, then the others */
        for (int i = 0; i < n; i++)
            if ((reqs[i]->rows == 2) == (pass == 0))
                b->order[pos++] = i;
    b->n = n;
    b->k = 0;
    for (int i = 0; i < n; i++)
        b->k += reqs[i]->rows == 2;
    if (s != STATUS_OK)
        return s;
    struct batch_sources *src = malloc(sizeof *src);
    if (!src)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "sd_unet_step: batch sources");
    for (int pos = 0; pos < n; pos++) {
        const struct sd_request *r = reqs[b->order[pos]];
        source_row(b, src, r, pos, 0);
        if (r->rows == 2)
            source_row(b, src, r, n + pos, 1);
    }
    /* the batch in two launches (backend_gather_rows), not two copies a row */
    s = backend_gather_rows(src->x, src->scale, rows, &b->x, err);
    if (s == STATUS_OK)
        s = backend_gather_rows(src->ctx, NULL, rows, &b->ctx, err);
    free(src);
    return s;
}

/* rows [0, k) = g·cond + (1 − g)·uncond with uncond at rows [n, n + k). */
static enum status apply_cfg(struct sd_request *const *reqs, struct batch *b, struct errbuf *err)
{
    if (b->k == 0)
        return STATUS_OK;
    float g[SD_MAX_BATCH_ROWS], h[SD_MAX_BATCH_ROWS];
    for (int pos = 0; pos < b->k; pos++) {
        g[pos] = reqs[b->order[pos]]->guidance;
        h[pos] = 1.0f - g[pos];
    }
    struct tensor cond = row_view(&b->out, 0, b->k), uncond = row_view(&b->out, b->n, b->k);
    return backend_axpby(&cond, &uncond, g, h, &cond, err);
}

/* --- graphs (U-Net calls and VAE decodes) --------------------------------------------- */

/* What a graph was recorded over: the model, the call (U-Net or VAE decode), its rows
 * and latent size, its tensors' addresses (in, context, out) and the workspace's
 * generation — a replay runs on exactly those. */
struct graph_key {
    const struct sd_model *model;
    bool vae;
    int rows;
    int64_t lh, lw, lc;
    const void *x, *ctx, *out;
    unsigned generation;
};

struct sd_graph_entry {
    struct graph_key key;
    bool warm;                 /* ran eagerly once */
    struct backend_graph *graph;
    uint64_t used;             /* tick of the last use */
};

struct sd_graphs {
    struct sd_graph_entry e[SD_GRAPHS_MAX];
    int n;
    uint64_t tick;
    bool vae_off;              /* a VAE recording failed: decodes eager from now on */
    struct sd_graphs_stats stats;
};

enum status sd_graphs_create(struct sd_graphs **out, struct errbuf *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? STATUS_OK : status_fail(err, STATUS_OUT_OF_MEMORY, "sd_graphs: out of memory");
}

void sd_graphs_destroy(struct sd_graphs *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n; i++)
        backend_graph_destroy(g->e[i].graph);
    free(g);
}

void sd_graphs_stats(const struct sd_graphs *g, struct sd_graphs_stats *out)
{
    if (g)
        *out = g->stats;
    else
        memset(out, 0, sizeof *out);
}

/* The key of a call from `in` (rows, latent size) to `out` (ctx: the U-Net's context). */
static struct graph_key graph_key_of(const struct sd_model *m, bool vae, const struct tensor *in,
                                     const struct tensor *ctx, const struct tensor *out,
                                     unsigned generation)
{
    struct graph_key k = {.model = m, .vae = vae, .rows = (int)in->shape[0],
                          .lh = in->shape[1], .lw = in->shape[2], .lc = in->shape[3],
                          .x = in->data, .ctx = ctx ? ctx->data : NULL, .out = out->data,
                          .generation = generation};
    return k;
}

static bool key_equal(const struct graph_key *a, const struct graph_key *b)
{
    return a->model == b->model && a->vae == b->vae && a->rows == b->rows && a->lh == b->lh &&
           a->lw == b->lw && a->lc == b->lc && a->x == b->x && a->ctx == b->ctx &&
           a->out == b->out && a->generation == b->generation;
}

/* The entry for this key: found, or made (replacing the least recently used). */
static struct sd_graph_entry *graph_entry(struct sd_graphs *g, const struct graph_key *key)
{
    g->tick++;
    for (int i = 0; i < g->n; i++)
        if (key_equal(&g->e[i].key, key)) {
            g->e[i].used = g->tick;
            return &g->e[i];
        }
    int slot = 0;
    if (g->n < SD_GRAPHS_MAX)
        slot = g->n++;
    else
        for (int i = 1; i < g->n; i++)
            if (g->e[i].used < g->e[slot].used)
                slot = i;
    struct sd_graph_entry *e = &g->e[slot];
    if (e->graph) { /* a replay of it may still be queued */
        struct errbuf ignored;
        (void)backend_sync(key->model->backend, &ignored);
        backend_graph_destroy(e->graph);
    }
    *e = (struct sd_graph_entry){.key = *key, .used = g->tick};
    return e;
}

/* The ops of one call (unet_run: call is the struct batch; vae_run), eager or being
 * recorded. */
typedef enum status (*graph_run_fn)(const struct sd_model *m, struct workspace *ws, void *call,
                                    struct errbuf *err);

static enum status unet_run(const struct sd_model *m, struct workspace *ws, void *call,
                            struct errbuf *err)
{
    struct batch *b = call;
    return unet_forward(m->unet, ws, &b->x, b->t, &b->ctx, &b->out, err);
}

struct vae_call_args {
    const struct tensor *z;
    struct tensor *img;
};

static enum status vae_run(const struct sd_model *m, struct workspace *ws, void *call,
                           struct errbuf *err)
{
    struct vae_call_args *a = call;
    return vae_decode(m->vae, ws, a->z, a->img, err);
}

/* Records run(call) into e->graph (a U-Net's with its timesteps settable: t, rows);
 * false when it cannot be used.  A backend that records nothing, or a U-Net recording
 * that failed, turns graphs off for good (stats.unsupported); a VAE recording that
 * failed turns VAE graphs off (vae_off). */
static bool graph_record(struct sd_graphs *g, struct sd_graph_entry *e, struct workspace *ws,
                         graph_run_fn run_fn, void *call, const float *t, int rows)
{
    const struct sd_model *model = e->key.model;
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = backend_graph_begin(model->backend, &err);
    if (s != STATUS_OK) { /* the CPU backend's answer: no graphs of this kind */
        if (e->key.vae)
            g->vae_off = true;
        else
            g->stats.unsupported = true;
        LOG_DEBUGF("pipeline", "no %s graphs: %s", e->key.vae ? "VAE" : "U-Net", err.msg);
        return false;
    }
    const unsigned generation = ws->generation;
    enum status run = run_fn(model, ws, call, &err);
    struct backend_graph *graph = NULL;
    s = backend_graph_end(model->backend, &graph, run == STATUS_OK ? &err : NULL);
    if (run == STATUS_OK && s == STATUS_OK && t) /* its timesteps must be settable */
        s = backend_graph_set_timesteps(graph, t, rows, &err);
    if (run != STATUS_OK || s != STATUS_OK || ws->generation != generation) {
        /* an op that cannot be recorded, or the workspace moved: eager from now on */
        backend_graph_destroy(graph);
        if (run != STATUS_OK || s != STATUS_OK) { /* a backend that records: worth a warning */
            if (e->key.vae)
                g->vae_off = g->stats.vae_failed = true;
            else
                g->stats.unsupported = g->stats.failed = true;
            LOG_WARNF("pipeline", "%s graphs off from now on (calls run eagerly): %s",
                      e->key.vae ? "VAE" : "U-Net", err.msg[0] ? err.msg : "recording failed");
        } else {
            LOG_DEBUGF("pipeline", "%s graph not recorded: the workspace grew while recording",
                       e->key.vae ? "VAE" : "U-Net");
        }
        return false;
    }
    e->graph = graph;
    if (e->key.vae)
        g->stats.vae_recorded++;
    else
        g->stats.recorded++;
    return true;
}

/* One call through the graphs: replayed, recorded then replayed, or eager (the first
 * call of a key, a backend without graphs, VAE graphs off).  t: the U-Net's timesteps
 * (NULL: a VAE decode). */
static enum status graph_call(struct sd_graphs *g, struct workspace *ws,
                              const struct graph_key *key, graph_run_fn run_fn, void *call,
                              const float *t, struct errbuf *err)
{
    struct sd_graph_entry *e = NULL;
    if (g && !(key->vae ? g->vae_off : g->stats.unsupported)) {
        e = graph_entry(g, key);
        if (e->graph && !backend_graph_current(e->graph)) {
            /* recorded before a backend buffer (workspace, scratch) was reallocated; a
             * replay of it may still be queued */
            struct errbuf ignored;
            (void)backend_sync(key->model->backend, &ignored);
            backend_graph_destroy(e->graph);
            e->graph = NULL;
            g->stats.stale++;
        }
        if (!e->graph && e->warm && !graph_record(g, e, ws, run_fn, call, t, key->rows))
            e = NULL;
    }
    if (!e || !e->graph) {
        if (g && key->vae)
            g->stats.vae_eager++;
        else if (g)
            g->stats.eager++;
        TRY(run_fn(key->model, ws, call, err));
        if (e) /* recorded next time: a call that failed (out of memory) may not have grown
                  the workspace to what the recording needs */
            e->warm = true;
        return STATUS_OK;
    }
    if (t)
        TRY(backend_graph_set_timesteps(e->graph, t, key->rows, err));
    TRY(backend_graph_launch(e->graph, err));
    if (key->vae)
        g->stats.vae_replays++;
    else
        g->stats.replays++;
    return STATUS_OK;
}

/* The U-Net call of a built batch. */
static enum status unet_call(const struct sd_model *model, struct workspace *ws,
                             struct sd_graphs *g, struct batch *b, struct errbuf *err)
{
    const struct graph_key key = graph_key_of(model, false, &b->x, &b->ctx, &b->out,
                                              ws->generation);
    return graph_call(g, ws, &key, unet_run, b, b->t, err);
}

/* A step between its U-Net call and its CFG and sampler ops (pipeline.h). */
struct sd_step {
    struct workspace *ws;
    struct workspace_mark mark;
    struct sd_request *reqs[SD_MAX_BATCH_ROWS];
    int n;
    bool open;                 /* started, not yet completed */
    struct batch b;
};

enum status sd_step_create(struct sd_step **out, struct errbuf *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? STATUS_OK : status_fail(err, STATUS_OUT_OF_MEMORY, "sd_step: out of memory");
}

void sd_step_destroy(struct sd_step *st)
{
    free(st);
}

bool sd_step_open(const struct sd_step *st)
{
    return st->open;
}

enum status sd_unet_step_start(const struct sd_model *model, struct workspace *ws,
                               struct sd_graphs *graphs, struct sd_request *const *reqs, int n,
                               struct sd_step *st, struct errbuf *err)
{
    if (st->open)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sd_unet_step_start: a step is open");
    int rows = 0;
    enum status s = check_batch(reqs, n, &rows, err);
    if (s != STATUS_OK)
        return s;
    st->ws = ws;
    st->mark = workspace_mark(ws);
    st->n = n;
    memcpy(st->reqs, reqs, sizeof *reqs * (size_t)n);
    s = build_batch(model, ws, reqs, n, rows, &st->b, err);
    if (s == STATUS_OK)
        s = unet_call(model, ws, graphs, &st->b, err);
    if (s != STATUS_OK)
        workspace_rewind(ws, st->mark);
    st->open = s == STATUS_OK;
    return s;
}

enum status sd_unet_step_complete(struct sd_step *st, struct errbuf *err)
{
    if (!st->open)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sd_unet_step_complete: no open step");
    struct batch *b = &st->b;
    enum status s = apply_cfg(st->reqs, b, err);
    for (int pos = 0; pos < st->n && s == STATUS_OK; pos++) {
        struct sd_request *r = st->reqs[b->order[pos]];
        const struct tensor mo = row_view(&b->out, pos, 1);
        s = r->host_step ? step_host(r, &mo, err) : step_backend(r, &mo, err);
        if (s == STATUS_OK)
            s = inpaint_after_step(r, err);
    }
    workspace_rewind(st->ws, st->mark);
    st->open = false;
    return s;
}

void sd_unet_step_abandon(struct sd_step *st)
{
    if (st->open)
        workspace_rewind(st->ws, st->mark);
    st->open = false;
}

enum status sd_unet_step_launch(const struct sd_model *model, struct workspace *ws,
                                struct sd_graphs *graphs, struct sd_request *const *reqs,
                                int n, struct errbuf *err)
{
    struct sd_step st; /* ~5 KB */
    st.open = false;
    enum status s = sd_unet_step_start(model, ws, graphs, reqs, n, &st, err);
    return s == STATUS_OK ? sd_unet_step_complete(&st, err) : s;
}

enum status sd_unet_step_graphs(const struct sd_model *model, struct workspace *ws,
                                struct sd_graphs *graphs, struct sd_request *const *reqs,
                                int n, struct errbuf *err)
{
    enum status s = sd_unet_step_launch(model, ws, graphs, reqs, n, err);
    /* done on the device before returning (pipeline.h): a GPU queue lets the host run
     * a whole request's steps ahead, then wait in its decode while arrivals wait too */
    return s == STATUS_OK ? backend_sync(model->backend, err) : s;
}

enum status sd_unet_step(const struct sd_model *model, struct workspace *ws,
                         struct sd_request *const *reqs, int n, struct errbuf *err)
{
    return sd_unet_step_graphs(model, ws, NULL, reqs, n, err);
}

/* --- decode -------------------------------------------------------------------------- */

static enum status check_decode(struct sd_request *const *reqs, int n, struct errbuf *err)
{
    if (!reqs || n < 1 || n > SD_MAX_BATCH_ROWS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "sd_decode: %d requests (1 … %d)", n,
                           SD_MAX_BATCH_ROWS);
    for (int i = 0; i < n; i++) {
        if (!reqs[i] || !reqs[i]->model || !sd_request_done(reqs[i]))
            return status_fail(err, STATUS_INVALID_ARGUMENT, "sd_decode: request %d is not done",
                               i);
        if (reqs[i]->lh != reqs[0]->lh || reqs[i]->lw != reqs[0]->lw)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "sd_decode: request %d's size differs from request 0's", i);
    }
    return STATUS_OK;
}

static enum status images_from_host(const float *host, int n, int w, int h, bool with_unit,
                                    struct sd_request *const *reqs, struct sd_image *images,
                                    struct errbuf *err)
{
    const size_t px = (size_t)w * (size_t)h * 3;
    for (int i = 0; i < n; i++) {
        struct sd_image *img = &images[i];
        memset(img, 0, sizeof *img);
        img->width = w;
        img->height = h;
        img->seed = reqs[i]->seed;
        img->rgb = malloc(px);
        img->unit = with_unit ? malloc(sizeof(float) * px) : NULL;
        if (!img->rgb || (with_unit && !img->unit)) {
            for (int j = 0; j <= i; j++)
                sd_image_free(&images[j]);
            return status_fail(err, STATUS_OUT_OF_MEMORY, "sd_decode: image %d", i);
        }
        vae_image_to_rgb8(host + px * (size_t)i, px, img->rgb);
        inpaint_overlay(reqs[i], img->rgb);
        if (with_unit)
            vae_image_to_unit(host + px * (size_t)i, px, img->unit);
    }
    return STATUS_OK;
}

enum status sd_decode_graphs(const struct sd_model *model, struct workspace *ws,
                             struct sd_graphs *graphs, struct sd_request *const *reqs, int n,
                             bool with_unit, struct sd_image *images, struct errbuf *err)
{
    enum status s = check_decode(reqs, n, err);
    if (s != STATUS_OK)
        return s;
    const struct sd_request *r0 = reqs[0];
    const int w = r0->lw * model->downscale, h = r0->lh * model->downscale;
    const int64_t zs[4] = {n, r0->lh, r0->lw, r0->lc}, is[4] = {n, h, w, 3};
    float *host = malloc(sizeof(float) * (size_t)n * (size_t)w * (size_t)h * 3);
    if (!host)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "sd_decode: %d images of %dx%d", n, w, h);
    const struct workspace_mark mark = workspace_mark(ws);
    struct tensor z, img;
    s = workspace_tensor(ws, 4, zs, &z, err);
    if (s == STATUS_OK)
        s = workspace_tensor(ws, 4, is, &img, err);
    const struct tensor *latents[SD_MAX_BATCH_ROWS];
    for (int i = 0; i < n; i++)
        latents[i] = &reqs[i]->latent;
    if (s == STATUS_OK)
        s = backend_gather_rows(latents, NULL, n, &z, err);
    if (s == STATUS_OK) {
        const struct graph_key key = graph_key_of(model, true, &z, NULL, &img, ws->generation);
        struct vae_call_args call = {&z, &img};
        s = graph_call(graphs, ws, &key, vae_run, &call, NULL, err);
    }
    if (s == STATUS_OK)
        s = backend_download(&img, host, err);
    workspace_rewind(ws, mark);
    if (s == STATUS_OK)
        s = images_from_host(host, n, w, h, with_unit, reqs, images, err);
    free(host);
    return s;
}

enum status sd_decode(const struct sd_model *model, struct workspace *ws,
                      struct sd_request *const *reqs, int n, bool with_unit,
                      struct sd_image *images, struct errbuf *err)
{
    return sd_decode_graphs(model, ws, NULL, reqs, n, with_unit, images, err);
}

void sd_image_free(struct sd_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    free(img->unit);
    memset(img, 0, sizeof *img);
}
