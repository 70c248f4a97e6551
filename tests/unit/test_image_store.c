/* tests/unit/test_image_store.c — server/image_store.h: put/get round trip, ids,
 * TTL expiry, eviction of the oldest at capacity, bad ids and indexes, and
 * concurrent puts/gets. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/image_store.h"
#include "tests/testutil.h"

#define S 1000000000ull

static uint8_t *bytes(const char *s)
{
    uint8_t *p = malloc(strlen(s));
    memcpy(p, s, strlen(s));
    return p;
}

static void put2(struct image_store *st, uint64_t now, const char *a, const char *b,
                 char id[IMAGE_STORE_ID_BUF])
{
    uint8_t *data[2] = {bytes(a), bytes(b)};
    const size_t lens[2] = {strlen(a), strlen(b)};
    ck_assert_int_eq(image_store_put(st, data, lens, 2, "image/png", now, id, NULL), STATUS_OK);
    ck_assert_ptr_null(data[0]);
    ck_assert_ptr_null(data[1]);
}

static void expect_get(struct image_store *st, const char *id, int index, uint64_t now,
                       const char *want)
{
    uint8_t *out = NULL;
    size_t len = 0;
    const char *ct = NULL;
    ck_assert_int_eq(image_store_get(st, id, index, now, &out, &len, &ct, NULL), STATUS_OK);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert(memcmp(out, want, len) == 0);
    ck_assert_str_eq(ct, "image/png");
    free(out);
}

static enum status try_get(struct image_store *st, const char *id, int index, uint64_t now)
{
    uint8_t *out = NULL;
    size_t len = 0;
    const char *ct = NULL;
    enum status s = image_store_get(st, id, index, now, &out, &len, &ct, NULL);
    free(out);
    return s;
}

START_TEST(test_round_trip_and_ids)
{
    struct image_store *st;
    ck_assert_int_eq(image_store_create(8, 60, &st, NULL), STATUS_OK);
    char id1[IMAGE_STORE_ID_BUF], id2[IMAGE_STORE_ID_BUF];
    put2(st, 0, "first-a", "first-b", id1);
    put2(st, 0, "second-a", "second-b", id2);
    ck_assert_uint_eq(strlen(id1), IMAGE_STORE_ID_LEN);
    ck_assert_str_ne(id1, id2);
    for (int i = 0; i < IMAGE_STORE_ID_LEN; i++)
        ck_assert(strchr("0123456789abcdef", id1[i]) != NULL);
    expect_get(st, id1, 0, 1, "first-a");
    expect_get(st, id1, 1, 1, "first-b");
    expect_get(st, id2, 1, 1, "second-b");
    ck_assert_int_eq(try_get(st, id1, 2, 1), STATUS_NOT_FOUND);   /* index past n */
    ck_assert_int_eq(try_get(st, id1, -1, 1), STATUS_NOT_FOUND);
    ck_assert_int_eq(image_store_count(st, 1), 4);
    image_store_destroy(st);
}
END_TEST

START_TEST(test_bad_ids)
{
    struct image_store *st;
    ck_assert_int_eq(image_store_create(4, 60, &st, NULL), STATUS_OK);
    char id[IMAGE_STORE_ID_BUF];
    put2(st, 0, "a", "b", id);
    char upper[IMAGE_STORE_ID_BUF];
    memcpy(upper, id, sizeof upper);
    for (int i = 0; upper[i]; i++)
        if (upper[i] >= 'a')
            upper[i] = (char)(upper[i] - 32);
    char longer[IMAGE_STORE_ID_BUF + 1];
    snprintf(longer, sizeof longer, "%s0", id);
    char shorter[IMAGE_STORE_ID_BUF];
    snprintf(shorter, sizeof shorter, "%.*s", IMAGE_STORE_ID_LEN - 1, id);
    const char *bad[] = {"", "../etc/passwd", shorter, longer, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(try_get(st, bad[i], 0, 1), STATUS_NOT_FOUND);
    if (strcmp(upper, id) != 0)
        ck_assert_int_eq(try_get(st, upper, 0, 1), STATUS_NOT_FOUND);
    image_store_destroy(st);
}
END_TEST

START_TEST(test_ttl)
{
    struct image_store *st;
    ck_assert_int_eq(image_store_create(4, 10, &st, NULL), STATUS_OK);
    char id[IMAGE_STORE_ID_BUF];
    put2(st, 5 * S, "a", "b", id);
    expect_get(st, id, 0, 14 * S, "a");                         /* 9 s old */
    ck_assert_int_eq(try_get(st, id, 0, 15 * S), STATUS_NOT_FOUND); /* 10 s: expired */
    ck_assert_int_eq(image_store_count(st, 15 * S), 0);
    image_store_destroy(st);
}
END_TEST

START_TEST(test_eviction_oldest_first)
{
    struct image_store *st;
    ck_assert_int_eq(image_store_create(4, 600, &st, NULL), STATUS_OK);
    char a[IMAGE_STORE_ID_BUF], b[IMAGE_STORE_ID_BUF], c[IMAGE_STORE_ID_BUF];
    put2(st, 0, "a0", "a1", a);
    put2(st, 1, "b0", "b1", b);
    put2(st, 2, "c0", "c1", c); /* full: a's two images go */
    ck_assert_int_eq(image_store_count(st, 3), 4);
    ck_assert_int_eq(try_get(st, a, 0, 3), STATUS_NOT_FOUND);
    ck_assert_int_eq(try_get(st, a, 1, 3), STATUS_NOT_FOUND);
    expect_get(st, b, 0, 3, "b0");
    expect_get(st, c, 1, 3, "c1");
    /* More images than the store holds: refused, buffers freed (ASan checks). */
    uint8_t *data[5];
    size_t lens[5];
    for (int i = 0; i < 5; i++) {
        data[i] = bytes("x");
        lens[i] = 1;
    }
    char id[IMAGE_STORE_ID_BUF];
    ck_assert_int_eq(image_store_put(st, data, lens, 5, "image/png", 4, id, NULL),
                     STATUS_INVALID_ARGUMENT);
    image_store_destroy(st);
    struct image_store *bad = NULL;
    ck_assert_int_eq(image_store_create(0, 1, &bad, NULL), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(image_store_create(1, 0, &bad, NULL), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(bad);
    image_store_destroy(NULL);
}
END_TEST

struct hammer {
    struct image_store *st;
    int ok;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 500; i++) {
        char id[IMAGE_STORE_ID_BUF];
        uint8_t *data[1] = {bytes("payload")};
        const size_t lens[1] = {7};
        if (image_store_put(h->st, data, lens, 1, "image/png", (uint64_t)i, id, NULL) != STATUS_OK)
            continue;
        uint8_t *out = NULL;
        size_t len = 0;
        const char *ct;
        /* Another thread may have evicted it already: found means intact. */
        if (image_store_get(h->st, id, 0, (uint64_t)i, &out, &len, &ct, NULL) == STATUS_OK)
            h->ok += len == 7 && memcmp(out, "payload", 7) == 0;
        else
            h->ok++;
        free(out);
    }
    return NULL;
}

START_TEST(test_concurrent)
{
    struct image_store *st;
    ck_assert_int_eq(image_store_create(16, 600, &st, NULL), STATUS_OK);
    pthread_t t[4];
    struct hammer h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){.st = st};
        pthread_create(&t[i], NULL, hammer_main, &h[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(h[i].ok, 500);
    }
    ck_assert_int_le(image_store_count(st, 0), 16);
    image_store_destroy(st);
}
END_TEST

static Suite *image_store_suite(void)
{
    Suite *s = suite_create("image_store");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_round_trip_and_ids);
    tcase_add_test(tc, test_bad_ids);
    tcase_add_test(tc, test_ttl);
    tcase_add_test(tc, test_eviction_oldest_first);
    tcase_add_test(tc, test_concurrent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(image_store_suite());
}
