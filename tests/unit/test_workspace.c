/* tests/unit/test_workspace.c — engine/workspace: views, alignment, mark/rewind reuse,
 * growth by blocks, reserve. */
#include <stdint.h>
#include <string.h>

#include "engine/workspace.h"
#include "tests/testutil.h"

START_TEST(test_views_aligned_disjoint_and_reused)
{
    struct workspace ws;
    struct errbuf err;
    ck_assert_int_eq(workspace_init(&ws, test_cpu_backend(), DTYPE_F32, 1 << 20, &err), STATUS_OK);
    struct workspace_mark m = workspace_mark(&ws);
    struct tensor a, b;
    ck_assert_int_eq(workspace_tensor(&ws, 2, (int64_t[]){3, 5}, &a, &err), STATUS_OK);
    ck_assert_int_eq(workspace_tensor(&ws, 1, (int64_t[]){7}, &b, &err), STATUS_OK);
    ck_assert_int_eq((uintptr_t)a.data % 256, 0);
    ck_assert_int_eq((uintptr_t)b.data % 256, 0);
    ck_assert((char *)b.data >= (char *)a.data + 15 * 4);
    ck_assert_ptr_eq(a.backend, test_cpu_backend());
    /* the views are usable by ops */
    memset(a.data, 0, tensor_nbytes(&a));
    workspace_rewind(&ws, m);
    struct tensor c;
    ck_assert_int_eq(workspace_tensor(&ws, 2, (int64_t[]){3, 5}, &c, &err), STATUS_OK);
    ck_assert_ptr_eq(c.data, a.data);
    ck_assert_int_eq(ws.n_blocks, 1);
    workspace_destroy(&ws);
}
END_TEST

START_TEST(test_grows_then_stops_allocating)
{
    struct workspace ws;
    struct errbuf err;
    ck_assert_int_eq(workspace_init(&ws, test_cpu_backend(), DTYPE_F32, 0, &err), STATUS_OK);
    for (int pass = 0; pass < 3; pass++) {
        struct workspace_mark m = workspace_mark(&ws);
        struct tensor t;
        for (int i = 0; i < 6; i++) /* 6 × 8 MiB: more than one 16 MiB block */
            ck_assert_int_eq(workspace_tensor(&ws, 1, (int64_t[]){2 << 20}, &t, &err), STATUS_OK);
        if (pass == 0)
            ck_assert_int_gt(ws.n_blocks, 1);
        const unsigned generation = ws.generation;
        workspace_rewind(&ws, m);
        if (pass == 0) /* the blocks were replaced */
            ck_assert_uint_ne(ws.generation, generation);
        /* rewound to empty after growing: one block of the high-water size */
        ck_assert_int_eq(ws.n_blocks, 1);
        ck_assert_uint_ge(ws.blocks[0].capacity, ws.high_water);
    }
    int blocks = ws.n_blocks;
    unsigned grown = ws.grow_count, generation = ws.generation;
    struct tensor t;
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(workspace_tensor(&ws, 1, (int64_t[]){2 << 20}, &t, &err), STATUS_OK);
    ck_assert_int_eq(ws.n_blocks, blocks);
    ck_assert_uint_eq(ws.grow_count, grown);
    ck_assert_uint_eq(ws.generation, generation); /* same blocks: same addresses */
    ck_assert_uint_ge(ws.high_water, (size_t)6 * (8 << 20));
    workspace_destroy(&ws);
}
END_TEST

/* Batches growing pass after pass (2, 4, ... 32 tensors of 4 MiB) never run out of
 * blocks: each pass's blocks are consolidated when it rewinds. */
START_TEST(test_growing_batches_consolidate)
{
    struct workspace ws;
    struct errbuf err;
    ck_assert_int_eq(workspace_init(&ws, test_cpu_backend(), DTYPE_F32, 0, &err), STATUS_OK);
    for (int n = 2; n <= 32; n *= 2) {
        struct workspace_mark m = workspace_mark(&ws);
        struct tensor t;
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(workspace_tensor(&ws, 1, (int64_t[]){1 << 20}, &t, &err), STATUS_OK);
        workspace_rewind(&ws, m);
        ck_assert_int_eq(ws.n_blocks, 1);
    }
    /* a nested mark rewound (things still in use) does not consolidate */
    struct tensor keep, t;
    ck_assert_int_eq(workspace_tensor(&ws, 1, (int64_t[]){1 << 20}, &keep, &err), STATUS_OK);
    struct workspace_mark inner = workspace_mark(&ws);
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(workspace_tensor(&ws, 1, (int64_t[]){1 << 20}, &t, &err), STATUS_OK);
    workspace_rewind(&ws, inner);
    ck_assert_int_gt(ws.n_blocks, 1);
    memset(keep.data, 1, tensor_nbytes(&keep)); /* still valid */
    workspace_destroy(&ws);
}
END_TEST

START_TEST(test_reserve_replaces_small_blocks)
{
    struct workspace ws;
    struct errbuf err;
    ck_assert_int_eq(workspace_init(&ws, test_cpu_backend(), DTYPE_F32, 4096, &err), STATUS_OK);
    ck_assert_int_eq(workspace_reserve(&ws, 64 << 20, &err), STATUS_OK);
    ck_assert_int_eq(ws.n_blocks, 1);
    ck_assert_uint_ge(ws.blocks[0].capacity, (size_t)64 << 20);
    struct tensor t;
    ck_assert_int_eq(workspace_tensor(&ws, 1, (int64_t[]){16 << 20}, &t, &err), STATUS_OK);
    ck_assert_int_eq(ws.n_blocks, 1);
    workspace_destroy(&ws);
}
END_TEST

START_TEST(test_bad_shape)
{
    struct workspace ws;
    struct errbuf err;
    ck_assert_int_eq(workspace_init(&ws, test_cpu_backend(), DTYPE_F32, 0, &err), STATUS_OK);
    struct tensor t;
    ck_assert_int_eq(workspace_tensor(&ws, 2, (int64_t[]){0, 3}, &t, &err), STATUS_INVALID_ARGUMENT);
    workspace_destroy(&ws);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("workspace");
    TCase *tc = tcase_create("workspace");
    tcase_add_test(tc, test_views_aligned_disjoint_and_reused);
    tcase_add_test(tc, test_grows_then_stops_allocating);
    tcase_add_test(tc, test_growing_batches_consolidate);
    tcase_add_test(tc, test_reserve_replaces_small_blocks);
    tcase_add_test(tc, test_bad_shape);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
