/* engine/workspace.c — see workspace.h. */
#include "engine/workspace.h"

#include <stdbool.h>
#include <string.h>

#include "engine/log.h"

#define WS_ALIGN 256
#define WS_MIN_BLOCK ((size_t)16 << 20)

static size_t align_up(size_t n)
{
    return (n + WS_ALIGN - 1) & ~(size_t)(WS_ALIGN - 1);
}

/* The first WS_ALIGN-aligned address at or after the block's fill level, as an offset
 * (blocks themselves may be less aligned than that). */
static size_t block_aligned_offset(const struct workspace_block *blk)
{
    uintptr_t base = (uintptr_t)blk->storage.data;
    uintptr_t at = (base + blk->used + WS_ALIGN - 1) & ~(uintptr_t)(WS_ALIGN - 1);
    return (size_t)(at - base);
}

static bool block_fits(const struct workspace_block *blk, size_t bytes)
{
    size_t start = block_aligned_offset(blk);
    return start <= blk->capacity && blk->capacity - start >= bytes;
}

static enum status block_alloc(struct workspace *ws, size_t bytes, struct errbuf *err)
{
    if (ws->n_blocks == WORKSPACE_MAX_BLOCKS)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "workspace: more than %d blocks",
                           WORKSPACE_MAX_BLOCKS);
    struct workspace_block *blk = &ws->blocks[ws->n_blocks];
    bytes = align_up(bytes) + WS_ALIGN; /* room to align the first view */
    blk->storage = tensor_desc1(DTYPE_F32, (int64_t)(bytes / 4));
    enum status s = backend_alloc(ws->backend, &blk->storage, err);
    if (s != STATUS_OK)
        return status_wrap(err, "workspace: block of %zu bytes", bytes);
    blk->capacity = bytes;
    blk->used = 0;
    ws->n_blocks++;
    ws->generation++;
    return STATUS_OK;
}

enum status workspace_init(struct workspace *ws, struct backend *b, enum dtype dt,
                           size_t initial_bytes, struct errbuf *err)
{
    memset(ws, 0, sizeof *ws);
    ws->backend = b;
    ws->dtype = dt;
    if (initial_bytes == 0)
        return STATUS_OK;
    return block_alloc(ws, initial_bytes, err);
}

void workspace_destroy(struct workspace *ws)
{
    for (int i = 0; i < ws->n_blocks; i++)
        backend_free(&ws->blocks[i].storage);
    memset(ws, 0, sizeof *ws);
}

enum status workspace_reserve(struct workspace *ws, size_t bytes, struct errbuf *err)
{
    for (int i = 0; i < ws->n_blocks; i++)
        if (ws->blocks[i].capacity >= bytes)
            return STATUS_OK;
    if (ws->in_use == 0) {
        for (int i = 0; i < ws->n_blocks; i++)
            backend_free(&ws->blocks[i].storage);
        ws->n_blocks = 0;
        ws->current = 0;
        ws->generation++;
    }
    return block_alloc(ws, bytes, err);
}

enum status workspace_tensor(struct workspace *ws, int ndim, const int64_t *shape,
                             struct tensor *out, struct errbuf *err)
{
    *out = tensor_desc(ws->dtype, ndim, shape);
    enum status s = tensor_check(out, "workspace tensor", err);
    if (s != STATUS_OK)
        return s;
    size_t bytes = align_up(tensor_nbytes(out));
    /* first fit from the current block on */
    int b = ws->current;
    while (b < ws->n_blocks && !block_fits(&ws->blocks[b], bytes))
        b++;
    if (b == ws->n_blocks) {
        size_t want = bytes > WS_MIN_BLOCK ? bytes : WS_MIN_BLOCK;
        if (ws->n_blocks > 0 && want < ws->blocks[ws->n_blocks - 1].capacity)
            want = ws->blocks[ws->n_blocks - 1].capacity;
        s = block_alloc(ws, want, err);
        if (s != STATUS_OK)
            return s;
        if (ws->n_blocks > 1) {
            ws->grow_count++;
            ws->grew = true;
            LOG_DEBUGF("workspace", "added a block of %zu bytes (%d blocks)", want, ws->n_blocks);
        }
    }
    struct workspace_block *blk = &ws->blocks[b];
    size_t start = block_aligned_offset(blk);
    out->data = (unsigned char *)blk->storage.data + start;
    out->backend = ws->backend;
    ws->in_use += start - blk->used;
    blk->used = start + bytes;
    ws->current = b;
    ws->in_use += bytes;
    if (ws->in_use > ws->high_water)
        ws->high_water = ws->in_use;
    return STATUS_OK;
}

struct workspace_mark workspace_mark(const struct workspace *ws)
{
    struct workspace_mark m = {ws->current, 0, ws->in_use};
    if (ws->current < ws->n_blocks)
        m.used = ws->blocks[ws->current].used;
    return m;
}

/* Nothing in use and several blocks: one block of the high-water size replaces them
 * (views of a single block need no alignment gaps after the first).  Allocated before
 * the old ones go, so a failure keeps the workspace as it was. */
static void consolidate(struct workspace *ws)
{
    struct workspace_block old[WORKSPACE_MAX_BLOCKS];
    const int n_old = ws->n_blocks;
    memcpy(old, ws->blocks, sizeof old);
    ws->n_blocks = 0;
    struct errbuf err;
    if (block_alloc(ws, ws->high_water, &err) != STATUS_OK) {
        LOG_DEBUGF("workspace", "kept %d blocks: %s", n_old, err.msg);
        memcpy(ws->blocks, old, sizeof old);
        ws->n_blocks = n_old;
        return;
    }
    for (int i = 0; i < n_old; i++)
        backend_free(&old[i].storage);
    memset(&ws->blocks[1], 0, sizeof ws->blocks - sizeof ws->blocks[0]);
    ws->current = 0;
    LOG_DEBUGF("workspace", "%d blocks replaced by one of %zu bytes", n_old,
               ws->blocks[0].capacity);
}

void workspace_rewind(struct workspace *ws, struct workspace_mark m)
{
    for (int b = m.block + 1; b < ws->n_blocks; b++)
        ws->blocks[b].used = 0;
    if (m.block < ws->n_blocks)
        ws->blocks[m.block].used = m.used;
    ws->current = m.block;
    ws->in_use = m.in_use;
    if (ws->in_use == 0 && ws->grew) {
        ws->grew = false;
        if (ws->n_blocks > 1)
            consolidate(ws);
    }
}
