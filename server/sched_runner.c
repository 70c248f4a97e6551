/* server/sched_runner.c — the product runner: the scheduler's image operations on the
 * real pipeline (models/pipeline.h), text through the LRU cache (server/text_cache.h).
 * Owns the worker's workspace; used only by the worker thread (the cache counters are
 * read by the worker too). */
#include <stdlib.h>
#include <string.h>

#include "server/sched_internal.h"
#include "server/text_cache.h"

struct pipeline_runner {
    const struct sd_model *models[SCHED_MAX_MODELS];
    struct workspace ws;
    struct text_cache *cache;
    struct sd_graphs *graphs; /* NULL unless cfg->unet_graphs */
};

/* The cond (prompt at clip_skip) and, with CFG, uncond (negative prompt, last layer)
 * embeddings from the cache, then sd_request_begin_text. */
static enum status pr_begin(void *ctx, int model, const struct gen_params *p, int image,
                            struct sd_request *req, struct errbuf *err)
{
    struct pipeline_runner *r = ctx;
    const struct sd_model *m = r->models[model];
    memset(req, 0, sizeof *req);
    const struct text_cache_entry *cond = NULL, *uncond = NULL;
    enum status s = text_cache_acquire(r->cache, m, &r->ws, p->prompt, p->clip_skip, &cond, err);
    if (s != STATUS_OK)
        return status_wrap(err, "prompt");
    if (p->guidance > 1.0) {
        s = text_cache_acquire(r->cache, m, &r->ws, p->negative_prompt, 0, &uncond, err);
        if (s != STATUS_OK)
            status_wrap(err, "negative_prompt");
    }
    if (s == STATUS_OK) {
        const struct sd_text_embeddings text = {
            .cond = &cond->emb, .uncond = uncond ? &uncond->emb : NULL,
            .cond_truncated = cond->truncated, .uncond_truncated = uncond && uncond->truncated};
        s = sd_request_begin_text(m, &r->ws, p, image, &text, req, err);
    }
    text_cache_release(r->cache, cond);
    text_cache_release(r->cache, uncond);
    return s;
}

static enum status pr_step(void *ctx, int model, struct sd_request *const *reqs, int n,
                           struct errbuf *err)
{
    struct pipeline_runner *r = ctx;
    return sd_unet_step_graphs(r->models[model], &r->ws, r->graphs, reqs, n, err);
}

static enum status pr_decode(void *ctx, int model, struct sd_request *const *reqs, int n,
                             struct sd_image *images, struct errbuf *err)
{
    struct pipeline_runner *r = ctx;
    return sd_decode_graphs(r->models[model], &r->ws, r->graphs, reqs, n, false, images, err);
}

static void pr_release(void *ctx, struct sd_request *req)
{
    (void)ctx;
    sd_request_free(req);
}

enum status sched_pipeline_runner_create(const struct scheduler_config *cfg,
                                         struct sched_runner *out, void **state,
                                         struct errbuf *err)
{
    *state = NULL;
    struct pipeline_runner *r = calloc(1, sizeof *r);
    if (!r)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "scheduler: pipeline runner");
    memcpy(r->models, cfg->models, sizeof r->models);
    enum status s = workspace_init(&r->ws, cfg->models[0]->backend,
                                   backend_weight_dtype(cfg->models[0]->backend), 0, err);
    if (s != STATUS_OK) {
        free(r);
        return s;
    }
    s = text_cache_create(cfg->text_cache_entries, &r->cache, err);
    if (s == STATUS_OK && cfg->unet_graphs)
        s = sd_graphs_create(&r->graphs, err);
    if (s != STATUS_OK) {
        text_cache_destroy(r->cache);
        workspace_destroy(&r->ws);
        free(r);
        return s;
    }
    *out = (struct sched_runner){.ctx = r, .begin = pr_begin, .step = pr_step,
                                 .decode = pr_decode, .release = pr_release};
    *state = r;
    return STATUS_OK;
}

void sched_pipeline_runner_destroy(void *state)
{
    struct pipeline_runner *r = state;
    if (!r)
        return;
    sd_graphs_destroy(r->graphs);
    text_cache_destroy(r->cache);
    workspace_destroy(&r->ws);
    free(r);
}

void sched_pipeline_runner_counters(void *state, struct scheduler_stats *st)
{
    const struct pipeline_runner *r = state;
    text_cache_counters(r->cache, &st->text_cache_hits, &st->text_cache_misses);
    struct sd_graphs_stats gs;
    sd_graphs_stats(r->graphs, &gs);
    st->unet_graph_replays = gs.replays;
    st->unet_graphs_recorded = gs.recorded;
    st->vae_graph_replays = gs.vae_replays;
}
