/* engine/arena.h — bump allocator over one block allocated up front.
 *
 * Used for the worker workspace (sized at start-up for the largest batch) and for
 * per-request memory freed in one call.  arena_alloc never calls malloc: when the
 * block is exhausted it returns NULL (and the caller reports STATUS_OUT_OF_MEMORY).
 *
 * Ownership: the arena owns its block; pointers it returns are valid until
 * arena_reset / arena_rewind past them / arena_destroy.
 * Thread-safety: none; one arena belongs to one thread at a time.
 */
#ifndef DIFFUSIOND_ENGINE_ARENA_H
#define DIFFUSIOND_ENGINE_ARENA_H

#include <stddef.h>

#include "engine/status.h"

struct arena {
    unsigned char *base; /* the block (64-byte aligned) */
    size_t capacity;     /* bytes in the block */
    size_t used;         /* bytes handed out, including alignment padding */
    size_t high_water;   /* largest `used` seen since init */
};

/* Allocates a block of `capacity` bytes. */
enum status arena_init(struct arena *a, size_t capacity, struct errbuf *err);
void arena_destroy(struct arena *a);

/* Returns `size` bytes aligned to `align` (a power of two ≤ 4096), or NULL when the
 * arena cannot satisfy the request.  size 0 returns a valid unique-free pointer. */
void *arena_alloc(struct arena *a, size_t size, size_t align);

/* Like arena_alloc, then zero-fills. */
void *arena_calloc(struct arena *a, size_t size, size_t align);

/* A mark is the current fill level; rewinding frees everything allocated after it. */
size_t arena_mark(const struct arena *a);
void arena_rewind(struct arena *a, size_t mark);
void arena_reset(struct arena *a);

#endif
