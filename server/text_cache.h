/* server/text_cache.h — LRU cache of text-encoder outputs, keyed by (model, text,
 * clip_skip), for the scheduler's worker: a repeated prompt (and the empty negative
 * prompt that most requests share) is encoded once.
 *
 * Entries hold a {1, context_len, context_dim} tensor on the model's backend.  An
 * entry is held (text_cache_acquire … text_cache_release) while a request copies it;
 * held entries are never evicted, and the empty text is pinned (never evicted) once
 * encoded.  When every entry is held the cache grows past its capacity rather than
 * fail.
 *
 * Ownership: the cache owns its entries and their tensors; models are borrowed and must
 * outlive the cache (text_cache_destroy before sd_model_free).
 * Thread-safety: none; the cache belongs to the worker thread that owns the backend.
 */
#ifndef DIFFUSIOND_SERVER_TEXT_CACHE_H
#define DIFFUSIOND_SERVER_TEXT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/status.h"
#include "engine/workspace.h"
#include "models/sd_model.h"

struct text_cache_entry {
    const struct sd_model *model;
    char *text;
    int clip_skip;
    struct tensor emb;   /* {1, L, C} */
    bool truncated;
    bool pinned;         /* the empty text: never evicted */
    int refs;            /* acquires not yet released */
    uint64_t last_use;   /* LRU tick */
};

struct text_cache;

/* capacity ≥ 1 entries. */
enum status text_cache_create(int capacity, struct text_cache **out, struct errbuf *err);
void text_cache_destroy(struct text_cache *c);

/* The entry for (model, text (NULL = ""), clip_skip), encoded with sd_text_encode on a
 * miss (evicting the least recently used entry that is neither held nor pinned).
 * Held until text_cache_release. */
enum status text_cache_acquire(struct text_cache *c, const struct sd_model *model,
                               struct workspace *ws, const char *text, int clip_skip,
                               const struct text_cache_entry **out, struct errbuf *err);
void text_cache_release(struct text_cache *c, const struct text_cache_entry *e);

/* Lookups that found an entry / that encoded. */
void text_cache_counters(const struct text_cache *c, uint64_t *hits, uint64_t *misses);
/* Entries now. */
int text_cache_size(const struct text_cache *c);

#endif
