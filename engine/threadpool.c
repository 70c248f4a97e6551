/* engine/threadpool.c — see threadpool.h.
 *
 * A loop is published as a "generation": workers sleep on a condition variable
 * until the generation changes, then claim chunks from an atomic counter until the
 * loop is exhausted.  The caller claims chunks too and waits until every worker has
 * reported back for that generation.
 */
#include "engine/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* workers wait for a new generation */
    pthread_cond_t done;  /* caller waits for workers to finish one */
    unsigned long generation;
    int workers_busy;
    bool stopping;
    _Atomic int in_loop; /* nested calls from inside a task run serially */
    /* the current loop */
    threadpool_fn fn;
    void *ctx;
    size_t n, chunk;
    _Atomic size_t next;
};

struct worker_arg {
    struct threadpool *pool;
    int index;
};

static void run_chunks(struct threadpool *pool, int thread)
{
    for (;;) {
        size_t begin = atomic_fetch_add(&pool->next, pool->chunk);
        if (begin >= pool->n)
            return;
        size_t end = begin + pool->chunk < pool->n ? begin + pool->chunk : pool->n;
        pool->fn(pool->ctx, begin, end, thread);
    }
}

static void *worker_main(void *p)
{
    struct worker_arg arg = *(struct worker_arg *)p;
    free(p);
    struct threadpool *pool = arg.pool;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && pool->generation == seen)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->stopping)
            break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->lock);
        run_chunks(pool, arg.index);
        pthread_mutex_lock(&pool->lock);
        if (--pool->workers_busy == 0)
            pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

int threadpool_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

enum status threadpool_create(int n_threads, struct threadpool **out, struct errbuf *err)
{
    *out = NULL;
    if (n_threads <= 0)
        n_threads = threadpool_cpu_count();
    struct threadpool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "threadpool: out of memory");
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    if (!pool->threads) {
        pool->n_threads = 1; /* no workers to join */
        threadpool_destroy(pool);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "threadpool: out of memory");
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *arg = malloc(sizeof *arg);
        if (arg) { /* filled before the thread starts: the worker reads and frees it */
            arg->pool = pool;
            arg->index = i;
        }
        if (!arg || pthread_create(&pool->threads[i], NULL, worker_main, arg) != 0) {
            free(arg);
            pool->n_threads = i; /* join only the ones started */
            threadpool_destroy(pool);
            return status_fail(err, STATUS_INTERNAL, "threadpool: cannot start thread %d", i);
        }
    }
    *out = pool;
    return STATUS_OK;
}

void threadpool_destroy(struct threadpool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}

int threadpool_size(const struct threadpool *pool)
{
    return pool ? pool->n_threads : 1;
}

/* The calling thread's index in pool: a worker's own index when called from inside
 * one of its tasks, else 0 (the owner). */
static int self_index(const struct threadpool *pool)
{
    pthread_t self = pthread_self();
    for (int i = 1; i < pool->n_threads; i++)
        if (pthread_equal(self, pool->threads[i]))
            return i;
    return 0;
}

void threadpool_parallel_for(struct threadpool *pool, size_t n, size_t grain, threadpool_fn fn,
                             void *ctx)
{
    if (n == 0)
        return;
    if (grain == 0)
        grain = 1;
    int expected = 0;
    if (!pool || pool->n_threads == 1 || n <= grain ||
        !atomic_compare_exchange_strong(&pool->in_loop, &expected, 1)) {
        /* serial, in the caller's own thread slot so that per-thread scratch indexed by
         * `thread` is never shared with another running thread */
        fn(ctx, 0, n, pool ? self_index(pool) : 0);
        return;
    }
    /* About four chunks per thread balances uneven chunks without much overhead. */
    size_t chunk = (n + (size_t)pool->n_threads * 4 - 1) / ((size_t)pool->n_threads * 4);
    if (chunk < grain)
        chunk = grain;
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    pool->chunk = chunk;
    atomic_store(&pool->next, 0);
    pool->workers_busy = pool->n_threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    run_chunks(pool, 0);

    pthread_mutex_lock(&pool->lock);
    while (pool->workers_busy > 0)
        pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    atomic_store(&pool->in_loop, 0);
}
