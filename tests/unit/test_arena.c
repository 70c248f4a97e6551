/* tests/unit/test_arena.c — engine/arena.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/arena.h"
#include "tests/testutil.h"

/* The oversized-allocation tests ask malloc for huge blocks and expect NULL back;
 * AddressSanitizer aborts on those unless told to return NULL. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static struct arena make_arena(size_t capacity)
{
    struct arena a;
    struct errbuf err;
    errbuf_clear(&err);
    ck_assert_msg(arena_init(&a, capacity, &err) == STATUS_OK, "arena_init: %s", err.msg);
    return a;
}

START_TEST(test_alignment)
{
    struct arena a = make_arena(1 << 16);
    ck_assert_uint_eq((uintptr_t)a.base % 64, 0);
    for (size_t align = 1; align <= 4096; align *= 2) {
        for (size_t size = 0; size < 70; size += 13) {
            void *p = arena_alloc(&a, size, align);
            ck_assert_ptr_nonnull(p);
            ck_assert_msg((uintptr_t)p % align == 0, "align %zu: %p", align, p);
            arena_alloc(&a, 1, 1); /* misalign the next request */
        }
    }
    /* pointers lie inside the block and do not overlap */
    arena_reset(&a);
    unsigned char *prev_end = a.base;
    for (int i = 0; i < 100; i++) {
        size_t size = (size_t)(i * 7 % 50) + 1;
        unsigned char *p = arena_alloc(&a, size, (size_t)1 << (i % 7));
        ck_assert_ptr_nonnull(p);
        ck_assert(p >= prev_end);
        ck_assert(p + size <= a.base + a.capacity);
        memset(p, i, size);
        prev_end = p + size;
    }
    arena_destroy(&a);
}
END_TEST

START_TEST(test_bad_alignment)
{
    struct arena a = make_arena(4096);
    ck_assert_ptr_null(arena_alloc(&a, 8, 0));
    ck_assert_ptr_null(arena_alloc(&a, 8, 3));
    ck_assert_ptr_null(arena_alloc(&a, 8, 48));
    ck_assert_ptr_null(arena_alloc(&a, 8, 8192));
    ck_assert_ptr_null(arena_alloc(&a, 8, SIZE_MAX));
    ck_assert_uint_eq(a.used, 0);
    arena_destroy(&a);
}
END_TEST

START_TEST(test_exhaustion)
{
    struct arena a = make_arena(1000);
    ck_assert_uint_eq(a.capacity, 1000);
    void *p = arena_alloc(&a, 1000, 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(a.used, 1000);
    ck_assert_ptr_null(arena_alloc(&a, 1, 1));
    ck_assert_uint_eq(a.used, 1000); /* a failed request changes nothing */
    arena_reset(&a);
    ck_assert_ptr_nonnull(arena_alloc(&a, 600, 64));
    ck_assert_ptr_null(arena_alloc(&a, 401, 1));
    ck_assert_ptr_nonnull(arena_alloc(&a, 400, 1));
    ck_assert_ptr_null(arena_alloc(&a, 1, 1));
    /* padding counts: 10 bytes used, a 64-aligned request for 960 needs 1024 */
    arena_reset(&a);
    ck_assert_ptr_nonnull(arena_alloc(&a, 10, 1));
    ck_assert_ptr_null(arena_alloc(&a, 960, 64));
    ck_assert_ptr_nonnull(arena_alloc(&a, 936, 64));
    arena_destroy(&a);
}
END_TEST

START_TEST(test_mark_rewind)
{
    struct arena a = make_arena(4096);
    void *first = arena_alloc(&a, 100, 16);
    size_t mark = arena_mark(&a);
    ck_assert_uint_eq(mark, a.used);
    void *p = arena_alloc(&a, 500, 16);
    arena_alloc(&a, 700, 64);
    ck_assert_uint_gt(a.used, mark);
    arena_rewind(&a, mark);
    ck_assert_uint_eq(a.used, mark);
    ck_assert_ptr_eq(arena_alloc(&a, 500, 16), p); /* the same memory again */
    /* nested marks */
    size_t m2 = arena_mark(&a);
    arena_alloc(&a, 10, 1);
    size_t m3 = arena_mark(&a);
    arena_alloc(&a, 10, 1);
    arena_rewind(&a, m3);
    ck_assert_uint_eq(a.used, m3);
    arena_rewind(&a, m2);
    ck_assert_uint_eq(a.used, m2);
    /* a mark beyond the fill level is ignored */
    arena_rewind(&a, m2 + 100);
    ck_assert_uint_eq(a.used, m2);
    arena_rewind(&a, 0);
    ck_assert_ptr_eq(arena_alloc(&a, 100, 16), first);
    arena_destroy(&a);
}
END_TEST

START_TEST(test_reset_and_high_water)
{
    struct arena a = make_arena(8192);
    ck_assert_uint_eq(a.high_water, 0);
    arena_alloc(&a, 3000, 1);
    size_t mark = arena_mark(&a);
    arena_alloc(&a, 2000, 1);
    ck_assert_uint_eq(a.high_water, 5000);
    arena_rewind(&a, mark);
    ck_assert_uint_eq(a.high_water, 5000); /* remembers the peak */
    arena_alloc(&a, 1000, 1);
    ck_assert_uint_eq(a.high_water, 5000);
    arena_alloc(&a, 3000, 1);
    ck_assert_uint_eq(a.high_water, 7000);
    arena_reset(&a);
    ck_assert_uint_eq(a.used, 0);
    ck_assert_uint_eq(a.high_water, 7000);
    ck_assert_ptr_null(arena_alloc(&a, 9000, 1)); /* failures do not move it */
    ck_assert_uint_eq(a.high_water, 7000);
    ck_assert_ptr_eq(arena_alloc(&a, 1, 1), a.base);
    arena_destroy(&a);
    ck_assert_ptr_null(a.base);
    ck_assert_uint_eq(a.capacity, 0);
}
END_TEST

START_TEST(test_zero_size)
{
    struct arena a = make_arena(256);
    void *p = arena_alloc(&a, 0, 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(a.used, 0);
    void *q = arena_alloc(&a, 0, 64);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq((uintptr_t)q % 64, 0);
    arena_alloc(&a, 256, 1); /* full */
    ck_assert_ptr_nonnull(arena_alloc(&a, 0, 1));
    arena_destroy(&a);
    /* an arena of capacity 0 */
    a = make_arena(0);
    ck_assert_ptr_nonnull(a.base);
    ck_assert_ptr_nonnull(arena_alloc(&a, 0, 1));
    ck_assert_ptr_null(arena_alloc(&a, 1, 1));
    arena_destroy(&a);
}
END_TEST

START_TEST(test_huge_sizes)
{
    struct arena a = make_arena(4096);
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX, 1));
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX, 64));
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX - 4095, 4096));
    ck_assert_ptr_null(arena_calloc(&a, SIZE_MAX, 1));
    arena_alloc(&a, 100, 1);
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX - 50, 1));
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX - 99, 1)); /* used + size wraps to 0 */
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX - 100, 1));
    ck_assert_uint_eq(a.used, 100);
    ck_assert_uint_eq(a.high_water, 100);
    arena_destroy(&a);

    struct errbuf err;
    errbuf_clear(&err);
    ck_assert_int_eq(arena_init(&a, SIZE_MAX, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(err.code, STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "arena"));
    ck_assert_ptr_null(a.base);
    errbuf_clear(&err);
    ck_assert_int_eq(arena_init(&a, SIZE_MAX - 63, &err), STATUS_OUT_OF_MEMORY);
    ck_assert_int_eq(err.code, STATUS_OUT_OF_MEMORY);
    ck_assert_ptr_null(a.base);
    arena_destroy(&a); /* harmless after a failed init */
    ck_assert_int_eq(arena_init(&a, SIZE_MAX, NULL), STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_calloc_zeroes)
{
    struct arena a = make_arena(1024);
    size_t mark = arena_mark(&a);
    unsigned char *p = arena_alloc(&a, 512, 1);
    memset(p, 0xff, 512);
    arena_rewind(&a, mark);
    unsigned char *z = arena_calloc(&a, 512, 1);
    ck_assert_ptr_eq(z, p);
    for (int i = 0; i < 512; i++)
        ck_assert_uint_eq(z[i], 0);
    ck_assert_ptr_nonnull(arena_calloc(&a, 0, 8));
    arena_destroy(&a);
}
END_TEST

static Suite *arena_suite(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_alignment);
    tcase_add_test(tc, test_bad_alignment);
    tcase_add_test(tc, test_exhaustion);
    tcase_add_test(tc, test_mark_rewind);
    tcase_add_test(tc, test_reset_and_high_water);
    tcase_add_test(tc, test_zero_size);
    tcase_add_test(tc, test_huge_sizes);
    tcase_add_test(tc, test_calloc_zeroes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(arena_suite());
}
