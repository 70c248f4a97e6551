/* server/sched_runner.c — the product runner: the scheduler's image operations on the
 * real pipeline (models/pipeline.h), text through the LRU cache (server/text_cache.h).
 * Owns a workspace and the U-Net graphs per backend lane: a bucket's steps launch on
 * its lane with that lane's; text encoding, begin and decode run on lane 0 with lane
 * 0's.  Used only by the worker thread (the cache counters are read by the worker too). */
#include <stdlib.h>
#include <string.h>

#include "server/sched_internal.h"
#include "server/text_cache.h"

struct pipeline_runner {
    const struct sd_model *models[SCHED_MAX_MODELS];
    struct backend *backend;
    int lanes;
    struct workspace ws[BACKEND_LANES_MAX];      /* [lanes], lane k's */
    struct sd_graphs *graphs[BACKEND_LANES_MAX]; /* [lanes]; NULL unless cfg->unet_graphs */
    struct sd_step *steps[BACKEND_LANES_MAX];    /* [lanes]: a launched step's second half */
    struct text_cache *cache;
    bool begun;               /* lane 0 has begin work queued that another lane may read
                                 (waited for at the next launch, with lanes) */
};

/* Lane 0 for begin and decode (a no-op when it is selected). */
static enum status lane0(struct pipeline_runner *r, struct errbuf *err)
{
    return backend_lane_select(r->backend, 0, err);
}

/* The cond (prompt at clip_skip) and, with CFG, uncond (negative prompt, last layer)
 * embeddings from the cache, then sd_request_begin_text; on lane 0. */
static enum status pr_begin(void *ctx, int model, const struct gen_params *p, int image,
                            struct sd_request *req, struct errbuf *err)
{
    struct pipeline_runner *r = ctx;
    const struct sd_model *m = r->models[model];
    struct workspace *ws = &r->ws[0];
    memset(req, 0, sizeof *req);
    TRY(lane0(r, err));
    r->begun = true;
    const struct text_cache_entry *cond = NULL, *uncond = NULL;
    enum status s = text_cache_acquire(r->cache, m, ws, p->prompt, p->clip_skip, &cond, err);
    if (s != STATUS_OK)
        return status_wrap(err, "prompt");
    if (p->guidance > 1.0) {
        s = text_cache_acquire(r->cache, m, ws, p->negative_prompt, 0, &uncond, err);
        if (s != STATUS_OK)
            status_wrap(err, "negative_prompt");
    }
    if (s == STATUS_OK) {
        const struct sd_text_embeddings text = {
            .cond = &cond->emb, .uncond = uncond ? &uncond->emb : NULL,
            .cond_truncated = cond->truncated, .uncond_truncated = uncond && uncond->truncated};
        s = sd_request_begin_text(m, ws, p, image, &text, req, err);
    }
    text_cache_release(r->cache, cond);
    text_cache_release(r->cache, uncond);
    return s;
}

/* One step over reqs on `lane`, its U-Net call queued (backend_lanes: the lanes run
 * concurrently); its CFG and sampler ops follow in pr_wait, after every lane's call.
 * With lanes, the first launch after begins waits for their work on lane 0 — whatever
 * lane it is for, so that it is the begins alone that are waited for, not a call
 * launched on lane 0 this iteration — and another lane reads the requests' latents
 * and text only once written. */
static enum status pr_launch(void *ctx, int model, int lane, struct sd_request *const *reqs,
                             int n, struct errbuf *err)
{
    struct pipeline_runner *r = ctx;
    if (lane < 0 || lane >= r->lanes)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "lane %d outside [0, %d)", lane,
                           r->lanes);
    if (r->begun && r->lanes > 1)
        TRY(backend_sync(r->backend, err));
    r->begun = false;
    TRY(backend_lane_select(r->backend, lane, err));
    return sd_unet_step_start(r->models[model], &r->ws[lane], r->graphs[lane], reqs, n,
                              r->steps[lane], err);
}

/* The launched steps' second halves, each on its lane, then every lane done.  A step
 * whose lane cannot be selected is abandoned after that, when no lane still uses its
 * workspace.  A failure is every launched call's (the scheduler fails them all). */
static enum status pr_wait(void *ctx, struct errbuf *err)
{
    struct pipeline_runner *r = ctx;
    r->begun = false;
    enum status s = STATUS_OK;
    bool unselected[BACKEND_LANES_MAX] = {false};
    for (int k = 0; k < r->lanes; k++) {
        if (!sd_step_open(r->steps[k]))
            continue;
        struct errbuf kerr;
        enum status ks = backend_lane_select(r->backend, k, &kerr);
        if (ks == STATUS_OK)
            ks = sd_unet_step_complete(r->steps[k], &kerr);
        else
            unselected[k] = true;
        if (ks != STATUS_OK && s == STATUS_OK) { /* the first failure is the message */
            s = ks;
            if (err)
                *err = kerr;
        }
    }
    const enum status sync = backend_sync(r->backend, s == STATUS_OK ? err : NULL);
    for (int k = 0; k < r->lanes; k++)
        if (unselected[k])
            sd_unet_step_abandon(r->steps[k]);
    return s == STATUS_OK ? sync : s;
}

static enum status pr_step(void *ctx, int model, struct sd_request *const *reqs, int n,
                           struct errbuf *err)
{
    TRY(pr_launch(ctx, model, 0, reqs, n, err));
    return pr_wait(ctx, err);
}

static enum status pr_decode(void *ctx, int model, struct sd_request *const *reqs, int n,
                             struct sd_image *images, struct errbuf *err)
{
    struct pipeline_runner *r = ctx;
    TRY(lane0(r, err));
    return sd_decode_graphs(r->models[model], &r->ws[0], r->graphs[0], reqs, n, false, images,
                            err);
}

static void pr_release(void *ctx, struct sd_request *req)
{
    (void)ctx;
    sd_request_free(req);
}

static void runner_free(struct pipeline_runner *r)
{
    struct errbuf ignored;
    if (r->lanes > 1) /* nothing queued on any lane may use what is freed below */
        (void)backend_sync(r->backend, &ignored);
    for (int k = 0; k < r->lanes; k++) {
        sd_step_destroy(r->steps[k]);
        sd_graphs_destroy(r->graphs[k]);
        workspace_destroy(&r->ws[k]);
    }
    text_cache_destroy(r->cache);
    free(r);
}

enum status sched_pipeline_runner_create(const struct scheduler_config *cfg, int lanes,
                                         struct sched_runner *out, void **state,
                                         struct errbuf *err)
{
    *state = NULL;
    struct pipeline_runner *r = calloc(1, sizeof *r);
    if (!r)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "scheduler: pipeline runner");
    memcpy(r->models, cfg->models, sizeof r->models);
    r->backend = cfg->models[0]->backend;
    enum status s = STATUS_OK;
    for (; r->lanes < lanes && s == STATUS_OK; r->lanes++) {
        s = workspace_init(&r->ws[r->lanes], r->backend, backend_weight_dtype(r->backend), 0,
                           err);
        if (s == STATUS_OK && cfg->unet_graphs)
            s = sd_graphs_create(&r->graphs[r->lanes], err);
        if (s == STATUS_OK)
            s = sd_step_create(&r->steps[r->lanes], err);
    }
    if (s == STATUS_OK)
        s = text_cache_create(cfg->text_cache_entries, &r->cache, err);
    if (s != STATUS_OK) {
        runner_free(r);
        return s;
    }
    *out = (struct sched_runner){.ctx = r, .begin = pr_begin, .step = pr_step,
                                 .launch = pr_launch, .wait = pr_wait, .decode = pr_decode,
                                 .release = pr_release};
    *state = r;
    return STATUS_OK;
}

void sched_pipeline_runner_destroy(void *state)
{
    struct pipeline_runner *r = state;
    if (r)
        runner_free(r);
}

void sched_pipeline_runner_counters(void *state, struct scheduler_stats *st)
{
    const struct pipeline_runner *r = state;
    text_cache_counters(r->cache, &st->text_cache_hits, &st->text_cache_misses);
    st->unet_graph_replays = st->unet_graphs_recorded = st->vae_graph_replays = 0;
    st->unet_graphs_failed = st->vae_graphs_failed = false;
    for (int k = 0; k < r->lanes; k++) {
        struct sd_graphs_stats gs;
        sd_graphs_stats(r->graphs[k], &gs);
        st->unet_graph_replays += gs.replays;
        st->unet_graphs_recorded += gs.recorded;
        st->vae_graph_replays += gs.vae_replays;
        st->unet_graphs_failed |= gs.failed;
        st->vae_graphs_failed |= gs.vae_failed;
    }
}
