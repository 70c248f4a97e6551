/* engine/arena.c — see arena.h. */
#include "engine/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum status arena_init(struct arena *a, size_t capacity, struct errbuf *err)
{
    memset(a, 0, sizeof *a);
    size_t rounded = (capacity + 63) & ~(size_t)63;
    if (rounded < capacity)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "arena capacity %zu overflows",
                           capacity);
    a->base = aligned_alloc(64, rounded ? rounded : 64);
    if (!a->base)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "arena: cannot allocate %zu bytes",
                           capacity);
    a->capacity = capacity;
    return STATUS_OK;
}

void arena_destroy(struct arena *a)
{
    free(a->base);
    memset(a, 0, sizeof *a);
}

void *arena_alloc(struct arena *a, size_t size, size_t align)
{
    if (align == 0 || (align & (align - 1)) != 0 || align > 4096)
        return NULL;
    uintptr_t base = (uintptr_t)a->base;
    uintptr_t cur = base + a->used;
    uintptr_t aligned = (cur + (align - 1)) & ~(uintptr_t)(align - 1);
    size_t offset = (size_t)(aligned - base);
    if (offset > a->capacity || size > a->capacity - offset)
        return NULL;
    a->used = offset + size;
    if (a->used > a->high_water)
        a->high_water = a->used;
    return (void *)aligned;
}

void *arena_calloc(struct arena *a, size_t size, size_t align)
{
    void *p = arena_alloc(a, size, align);
    if (p)
        memset(p, 0, size);
    return p;
}

size_t arena_mark(const struct arena *a)
{
    return a->used;
}

void arena_rewind(struct arena *a, size_t mark)
{
    if (mark <= a->used)
        a->used = mark;
}

void arena_reset(struct arena *a)
{
    a->used = 0;
}
