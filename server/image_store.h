/* server/image_store.h — encoded images kept for a limited time, for response_format
 * "url": a generation's images are put under one new id and served from
 * GET /v1/images/{id}/{index} until they expire.
 *
 * Bounded: at most `capacity` images in all (the oldest are evicted first when a put
 * needs room) and each lives `ttl_s` seconds.  Ids are 32 lowercase hex digits from
 * getrandom(2) (128 bits): unguessable, so the URL is the capability.  Each image
 * keeps its Content-Type ("image/png", "image/jpeg", "image/webp").
 *
 * Ownership: image_store_put takes the image buffers (malloc'ed; freed on eviction,
 * expiry or destroy); image_store_get returns a malloc'ed copy the caller frees.
 * Thread-safety: put/get/count under one internal mutex, from any thread;
 * create/destroy by the owner.  Times are the caller's monotonic ns (tests pass
 * their own).
 */
#ifndef DIFFUSIOND_SERVER_IMAGE_STORE_H
#define DIFFUSIOND_SERVER_IMAGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

#define IMAGE_STORE_ID_LEN 32
#define IMAGE_STORE_ID_BUF (IMAGE_STORE_ID_LEN + 1)

struct image_store;

/* capacity ≥ 1 images, ttl_s ≥ 1 (STATUS_INVALID_ARGUMENT naming "url_store_images" /
 * "url_ttl_s" otherwise). */
enum status image_store_create(int capacity, int ttl_s, struct image_store **out,
                               struct errbuf *err);
void image_store_destroy(struct image_store *s); /* s may be NULL */

/* Stores images[0 … n) (data[i] of lens[i] bytes, taken — also on failure — and set to
 * NULL) under a new id written to id_out; content_type is a static string.  n must
 * be in [1, capacity] (STATUS_INVALID_ARGUMENT); STATUS_IO when getrandom fails. */
enum status image_store_put(struct image_store *s, uint8_t **data, const size_t *lens, int n,
                            const char *content_type, uint64_t now_ns,
                            char id_out[IMAGE_STORE_ID_BUF], struct errbuf *err);

/* A copy of image `index` of `id`: STATUS_NOT_FOUND when the id is unknown, expired,
 * evicted, or malformed, or the index is out of range. */
enum status image_store_get(struct image_store *s, const char *id, int index, uint64_t now_ns,
                            uint8_t **out, size_t *len, const char **content_type,
                            struct errbuf *err);

/* Images held (expired ones dropped first). */
int image_store_count(struct image_store *s, uint64_t now_ns);

#endif
