/* engine/workspace.h — activation memory on a backend, handed out as tensor views
 * into a few large blocks, released by rewinding to a mark.
 *
 * A model's forward pass takes its intermediate tensors from a workspace and rewinds
 * at the end, so after the first (warm-up) pass at the largest batch no allocation
 * happens at all: the blocks are kept and reused.  When a request does not fit, a new
 * block is added (and logged); workspace_reserve sizes it up front.  A pass that added
 * blocks leaves one: when it rewinds to empty, its blocks are replaced by a single block
 * of the high-water size, so the next pass of that size fits and a later, larger batch
 * grows from there instead of piling up blocks.  (A CUDA graph captured over views of
 * the old blocks must not be replayed after that; a capture never grows the workspace
 * when its pass was run once before.)
 *
 * Views share the backend of the workspace; never backend_free a view.
 * Ownership: the workspace owns its blocks; views are valid until the workspace is
 * rewound past them or destroyed.
 * Thread-safety: none; a workspace belongs to one worker thread.
 */
#ifndef DIFFUSIOND_ENGINE_WORKSPACE_H
#define DIFFUSIOND_ENGINE_WORKSPACE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"

#define WORKSPACE_MAX_BLOCKS 16

struct workspace_block {
    struct tensor storage; /* f32 {bytes/4} on the backend */
    size_t capacity;       /* bytes */
    size_t used;           /* bytes */
};

struct workspace {
    struct backend *backend;
    enum dtype dtype;       /* dtype of the views it hands out */
    struct workspace_block blocks[WORKSPACE_MAX_BLOCKS];
    int n_blocks;
    int current;            /* block new views come from */
    size_t high_water;      /* most bytes in use at once */
    size_t in_use;          /* bytes handed out now */
    unsigned grow_count;    /* blocks added after the first */
    bool grew;              /* blocks were added since the last rewind to empty */
    unsigned generation;    /* changes whenever a block is added, freed or replaced: the
                               same views at the same marks have the same addresses
                               while it stays (a recorded graph's condition) */
};

/* A position to rewind to. */
struct workspace_mark {
    int block;
    size_t used;
    size_t in_use;
};

/* initial_bytes may be 0 (the first request allocates). */
enum status workspace_init(struct workspace *ws, struct backend *b, enum dtype dt,
                           size_t initial_bytes, struct errbuf *err);
void workspace_destroy(struct workspace *ws);

/* Ensures one block of at least `bytes` exists, so a pass needing that much never
 * allocates; frees smaller blocks when nothing is in use. */
enum status workspace_reserve(struct workspace *ws, size_t bytes, struct errbuf *err);

/* A new view {shape} of the workspace's dtype, 256-byte aligned. */
enum status workspace_tensor(struct workspace *ws, int ndim, const int64_t *shape,
                             struct tensor *out, struct errbuf *err);

struct workspace_mark workspace_mark(const struct workspace *ws);
void workspace_rewind(struct workspace *ws, struct workspace_mark m);

#endif
