/* server/image_store.c — the URL image store (server/image_store.h): a fixed array of
 * slots, one image each, scanned linearly (capacity is a few hundred). */
#include "server/image_store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct slot {
    bool used;
    char id[IMAGE_STORE_ID_BUF];
    int index;
    uint8_t *data;
    size_t len;
    const char *content_type;
    uint64_t expires_ns;
    uint64_t seq; /* insertion order: the smallest is evicted first */
};

struct image_store {
    pthread_mutex_t lock;
    struct slot *slots; /* [capacity] */
    int capacity;
    uint64_t ttl_ns;
    uint64_t seq;
};

enum status image_store_create(int capacity, int ttl_s, struct image_store **out,
                               struct errbuf *err)
{
    *out = NULL;
    if (capacity < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "url_store_images: must be ≥ 1 (got %d)",
                           capacity);
    if (ttl_s < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "url_ttl_s: must be ≥ 1 (got %d)", ttl_s);
    struct image_store *s = calloc(1, sizeof *s);
    if (!s || !(s->slots = calloc((size_t)capacity, sizeof *s->slots))) {
        free(s);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "image store of %d images", capacity);
    }
    s->capacity = capacity;
    s->ttl_ns = (uint64_t)ttl_s * 1000000000u;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return STATUS_OK;
}

static void slot_clear(struct slot *sl)
{
    free(sl->data);
    memset(sl, 0, sizeof *sl);
}

void image_store_destroy(struct image_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->capacity; i++)
        slot_clear(&s->slots[i]);
    pthread_mutex_destroy(&s->lock);
    free(s->slots);
    free(s);
}

/* Drops expired images [lock]. */
static void expire_locked(struct image_store *s, uint64_t now_ns)
{
    for (int i = 0; i < s->capacity; i++)
        if (s->slots[i].used && now_ns >= s->slots[i].expires_ns)
            slot_clear(&s->slots[i]);
}

/* A free slot, evicting the oldest image when there is none [lock]. */
static struct slot *free_slot_locked(struct image_store *s)
{
    struct slot *oldest = NULL;
    for (int i = 0; i < s->capacity; i++) {
        struct slot *sl = &s->slots[i];
        if (!sl->used)
            return sl;
        if (!oldest || sl->seq < oldest->seq)
            oldest = sl;
    }
    slot_clear(oldest);
    return oldest;
}

static enum status new_id(char id[IMAGE_STORE_ID_BUF], struct errbuf *err)
{
    uint8_t r[IMAGE_STORE_ID_LEN / 2];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return status_fail(err, STATUS_IO, "image store: getrandom failed");
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof r; i++) {
        id[2 * i] = hex[r[i] >> 4];
        id[2 * i + 1] = hex[r[i] & 15];
    }
    id[IMAGE_STORE_ID_LEN] = '\0';
    return STATUS_OK;
}

static void free_all(uint8_t **data, int n)
{
    for (int i = 0; i < n; i++) {
        free(data[i]);
        data[i] = NULL;
    }
}

enum status image_store_put(struct image_store *s, uint8_t **data, const size_t *lens, int n,
                            const char *content_type, uint64_t now_ns,
                            char id_out[IMAGE_STORE_ID_BUF], struct errbuf *err)
{
    if (n < 1 || n > s->capacity) {
        free_all(data, n > 0 ? n : 0);
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "image store: %d images (holds 1 … %d)", n, s->capacity);
    }
    enum status st = new_id(id_out, err);
    if (st != STATUS_OK) {
        free_all(data, n);
        return st;
    }
    pthread_mutex_lock(&s->lock);
    expire_locked(s, now_ns);
    for (int i = 0; i < n; i++) {
        struct slot *sl = free_slot_locked(s);
        *sl = (struct slot){.used = true, .index = i, .data = data[i], .len = lens[i],
                            .content_type = content_type, .expires_ns = now_ns + s->ttl_ns,
                            .seq = ++s->seq};
        memcpy(sl->id, id_out, IMAGE_STORE_ID_BUF);
        data[i] = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    return STATUS_OK;
}

static bool id_wellformed(const char *id)
{
    size_t i = 0;
    for (; id[i] && i <= IMAGE_STORE_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return i == IMAGE_STORE_ID_LEN;
}

/* a == b over the id's IMAGE_STORE_ID_LEN characters in a time that does not depend on
 * where they differ (the id is the only credential of a GET). */
static bool id_equal(const char *a, const char *b)
{
    unsigned char d = 0;
    for (int i = 0; i < IMAGE_STORE_ID_LEN; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

enum status image_store_get(struct image_store *s, const char *id, int index, uint64_t now_ns,
                            uint8_t **out, size_t *len, const char **content_type,
                            struct errbuf *err)
{
    *out = NULL;
    *len = 0;
    if (!id_wellformed(id))
        return status_fail(err, STATUS_NOT_FOUND, "image: no such image");
    pthread_mutex_lock(&s->lock);
    expire_locked(s, now_ns);
    enum status st = status_fail(err, STATUS_NOT_FOUND, "image: no such image (or it expired)");
    for (int i = 0; i < s->capacity; i++) {
        const struct slot *sl = &s->slots[i];
        if (!sl->used || sl->index != index || !id_equal(sl->id, id))
            continue;
        uint8_t *copy = malloc(sl->len ? sl->len : 1);
        if (!copy) {
            st = status_fail(err, STATUS_OUT_OF_MEMORY, "image: copy of %zu bytes", sl->len);
            break;
        }
        memcpy(copy, sl->data, sl->len);
        *out = copy;
        *len = sl->len;
        *content_type = sl->content_type;
        errbuf_clear(err);
        st = STATUS_OK;
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

int image_store_count(struct image_store *s, uint64_t now_ns)
{
    pthread_mutex_lock(&s->lock);
    expire_locked(s, now_ns);
    int n = 0;
    for (int i = 0; i < s->capacity; i++)
        n += s->slots[i].used;
    pthread_mutex_unlock(&s->lock);
    return n;
}
