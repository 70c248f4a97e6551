/* server/text_cache.c — the text-embedding LRU (linear scan: a few hundred entries,
 * each lookup far cheaper than one encode). */
#include "server/text_cache.h"

#include <stdlib.h>
#include <string.h>

#include "models/pipeline.h"

struct text_cache {
    struct text_cache_entry *entries; /* [cap], used ones have text != NULL */
    int cap, capacity;                /* array size; configured capacity */
    int size;
    uint64_t tick, hits, misses;
};

enum status text_cache_create(int capacity, struct text_cache **out, struct errbuf *err)
{
    *out = NULL;
    if (capacity < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "text_cache_entries: %d < 1", capacity);
    struct text_cache *c = calloc(1, sizeof *c);
    if (c)
        c->entries = calloc((size_t)capacity, sizeof *c->entries);
    if (!c || !c->entries) {
        free(c);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "text cache of %d entries", capacity);
    }
    c->cap = c->capacity = capacity;
    *out = c;
    return STATUS_OK;
}

static void entry_clear(struct text_cache_entry *e)
{
    backend_free(&e->emb);
    free(e->text);
    memset(e, 0, sizeof *e);
}

void text_cache_destroy(struct text_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->cap; i++)
        if (c->entries[i].text)
            entry_clear(&c->entries[i]);
    free(c->entries);
    free(c);
}

static struct text_cache_entry *find(struct text_cache *c, const struct sd_model *m,
                                     const char *text, int clip_skip)
{
    for (int i = 0; i < c->cap; i++) {
        struct text_cache_entry *e = &c->entries[i];
        if (e->text && e->model == m && e->clip_skip == clip_skip && strcmp(e->text, text) == 0)
            return e;
    }
    return NULL;
}

static struct text_cache_entry *empty_slot(struct text_cache *c)
{
    for (int i = 0; i < c->cap; i++)
        if (!c->entries[i].text)
            return &c->entries[i];
    return NULL;
}

/* A free slot: an empty one below capacity, else the LRU entry that is neither held
 * nor pinned (evicted), else an empty one past capacity (a grown array). */
static struct text_cache_entry *free_slot(struct text_cache *c, struct errbuf *err)
{
    struct text_cache_entry *e = c->size < c->capacity ? empty_slot(c) : NULL;
    if (e)
        return e;
    for (int i = 0; i < c->cap; i++) {
        struct text_cache_entry *x = &c->entries[i];
        if (x->text && !x->pinned && x->refs == 0 && (!e || x->last_use < e->last_use))
            e = x;
    }
    if (e) {
        entry_clear(e);
        c->size--;
        return e;
    }
    if ((e = empty_slot(c)))
        return e;
    struct text_cache_entry *grown = realloc(c->entries, sizeof *grown * (size_t)(c->cap * 2));
    if (!grown) {
        status_fail(err, STATUS_OUT_OF_MEMORY, "text cache: growing past %d entries", c->cap);
        return NULL;
    }
    memset(grown + c->cap, 0, sizeof *grown * (size_t)c->cap);
    c->entries = grown;
    c->cap *= 2;
    return &c->entries[c->cap / 2];
}

static enum status encode_entry(struct text_cache_entry *e, const struct sd_model *m,
                                struct workspace *ws, const char *text, int clip_skip,
                                struct errbuf *err)
{
    const int64_t shape[3] = {1, m->context_len, m->context_dim};
    e->emb = tensor_desc(ws->dtype, 3, shape);
    enum status s = backend_alloc(m->backend, &e->emb, err);
    if (s == STATUS_OK)
        s = sd_text_encode(m, ws, text, clip_skip, &e->emb, &e->truncated, err);
    if (s == STATUS_OK && !(e->text = strdup(text)))
        s = status_fail(err, STATUS_OUT_OF_MEMORY, "text cache: prompt copy");
    if (s != STATUS_OK) {
        entry_clear(e);
        return s;
    }
    e->model = m;
    e->clip_skip = clip_skip;
    e->pinned = text[0] == '\0';
    return STATUS_OK;
}

enum status text_cache_acquire(struct text_cache *c, const struct sd_model *model,
                               struct workspace *ws, const char *text, int clip_skip,
                               const struct text_cache_entry **out, struct errbuf *err)
{
    *out = NULL;
    text = text ? text : "";
    struct text_cache_entry *e = find(c, model, text, clip_skip);
    if (e) {
        c->hits++;
    } else {
        c->misses++;
        e = free_slot(c, err);
        if (!e)
            return STATUS_OUT_OF_MEMORY;
        TRY(encode_entry(e, model, ws, text, clip_skip, err));
        c->size++;
    }
    e->refs++;
    e->last_use = ++c->tick;
    *out = e;
    return STATUS_OK;
}

void text_cache_release(struct text_cache *c, const struct text_cache_entry *e)
{
    (void)c;
    if (e)
        ((struct text_cache_entry *)e)->refs--;
}

void text_cache_counters(const struct text_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c->hits;
    *misses = c->misses;
}

int text_cache_size(const struct text_cache *c)
{
    return c->size;
}
