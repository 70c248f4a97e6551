/* tests/unit/test_encoder_pool.c — server/encoder_pool.h: every task runs exactly once,
 * on several threads at once, submit from inside a task, wait_idle, destroy runs what
 * is queued, bad thread counts. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "server/encoder_pool.h"
#include "tests/testutil.h"

struct counter {
    atomic_int runs;
    atomic_int running, max_running;
    int per_task[256];
};

struct task_arg {
    struct counter *c;
    int index;
    int sleep_us;
};

static void count_task(void *p)
{
    struct task_arg *a = p;
    const int now = atomic_fetch_add(&a->c->running, 1) + 1;
    int prev = atomic_load(&a->c->max_running);
    while (now > prev && !atomic_compare_exchange_weak(&a->c->max_running, &prev, now))
        ;
    if (a->sleep_us)
        usleep((useconds_t)a->sleep_us);
    a->c->per_task[a->index]++;
    atomic_fetch_add(&a->c->runs, 1);
    atomic_fetch_sub(&a->c->running, 1);
}

START_TEST(test_each_task_once)
{
    struct encoder_pool *p;
    ck_assert_int_eq(encoder_pool_create(3, &p, NULL), STATUS_OK);
    static struct counter c;
    memset(&c, 0, sizeof c);
    struct task_arg args[256];
    for (int i = 0; i < 256; i++) {
        args[i] = (struct task_arg){.c = &c, .index = i, .sleep_us = i % 16 == 0 ? 2000 : 0};
        ck_assert_int_eq(encoder_pool_submit(p, count_task, &args[i], NULL), STATUS_OK);
    }
    ck_assert(encoder_pool_wait_idle(p, 30000));
    ck_assert_int_eq(encoder_pool_pending(p), 0);
    ck_assert_int_eq(atomic_load(&c.runs), 256);
    for (int i = 0; i < 256; i++)
        ck_assert_int_eq(c.per_task[i], 1);
    ck_assert_int_le(atomic_load(&c.max_running), 3);
    encoder_pool_destroy(p);
}
END_TEST

START_TEST(test_parallel)
{
    /* Three sleeping tasks on three threads overlap: at least two ran at once. */
    struct encoder_pool *p;
    ck_assert_int_eq(encoder_pool_create(3, &p, NULL), STATUS_OK);
    static struct counter c;
    memset(&c, 0, sizeof c);
    struct task_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (struct task_arg){.c = &c, .index = i, .sleep_us = 200000};
        encoder_pool_submit(p, count_task, &args[i], NULL);
    }
    ck_assert(encoder_pool_wait_idle(p, 30000));
    ck_assert_int_ge(atomic_load(&c.max_running), 2);
    encoder_pool_destroy(p);
}
END_TEST

struct chain {
    struct encoder_pool *p;
    atomic_int depth;
};

static void chain_task(void *arg)
{
    struct chain *ch = arg;
    if (atomic_fetch_add(&ch->depth, 1) < 9)
        encoder_pool_submit(ch->p, chain_task, ch, NULL); /* from inside a task */
}

START_TEST(test_submit_from_task_and_wait)
{
    struct chain ch = {0};
    ck_assert_int_eq(encoder_pool_create(1, &ch.p, NULL), STATUS_OK);
    encoder_pool_submit(ch.p, chain_task, &ch, NULL);
    ck_assert(encoder_pool_wait_idle(ch.p, 30000));
    ck_assert_int_eq(atomic_load(&ch.depth), 10);
    encoder_pool_destroy(ch.p);
}
END_TEST

START_TEST(test_wait_times_out_and_destroy_runs_queue)
{
    struct encoder_pool *p;
    ck_assert_int_eq(encoder_pool_create(1, &p, NULL), STATUS_OK);
    static struct counter c;
    memset(&c, 0, sizeof c);
    struct task_arg args[5];
    for (int i = 0; i < 5; i++) {
        args[i] = (struct task_arg){.c = &c, .index = i, .sleep_us = 50000};
        encoder_pool_submit(p, count_task, &args[i], NULL);
    }
    ck_assert(!encoder_pool_wait_idle(p, 10)); /* 250 ms of work: not idle in 10 ms */
    encoder_pool_destroy(p);                   /* runs the rest, then joins */
    ck_assert_int_eq(atomic_load(&c.runs), 5);
}
END_TEST

START_TEST(test_bad_threads)
{
    struct encoder_pool *p = (void *)1;
    struct errbuf err;
    ck_assert_int_eq(encoder_pool_create(0, &p, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(p);
    ck_assert(strstr(err.msg, "encoder_threads") != NULL);
    encoder_pool_destroy(NULL);
}
END_TEST

static Suite *encoder_pool_suite(void)
{
    Suite *s = suite_create("encoder_pool");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_each_task_once);
    tcase_add_test(tc, test_parallel);
    tcase_add_test(tc, test_submit_from_task_and_wait);
    tcase_add_test(tc, test_wait_times_out_and_destroy_runs_queue);
    tcase_add_test(tc, test_bad_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(encoder_pool_suite());
}
