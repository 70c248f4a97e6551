/* engine/threadpool.c — see threadpool.h.
 *
 * A loop is published as a "generation".  Its chunks are claimed through one atomic
 * ticket = (generation << 32 | chunk count << 16 | next chunk), so a claim is valid
 * only against the loop the ticket itself names: a worker that wakes late — after
 * the loop it was woken for has finished, or while the next one is being published —
 * can never claim a chunk of a loop it did not read the parameters of.  The caller claims chunks too
 * and waits only until every chunk is DONE, not until every worker has checked in:
 * a worker the OS has not scheduled costs the loop nothing.  Workers spin briefly
 * between loops (ops come back to back inside a model's forward pass) and then sleep
 * on a condition variable.
 */
#include "engine/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Polls of the generation before a worker sleeps (a pause is ~10–150 cycles: tens to
 * hundreds of µs), and of the done
 * counter before the caller sleeps. */
#define WORKER_SPINS 4000
#define CALLER_SPINS 4000

struct threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* sleeping workers wait for a new generation */
    pthread_cond_t done; /* the caller waits for the last chunk */
    int sleeping;        /* workers asleep on `wake` (under lock) */
    bool caller_waiting; /* the caller is asleep on `done` (under lock) */
    _Atomic bool stopping;
    _Atomic int in_loop;         /* nested calls from inside a task run serially */
    _Atomic uint32_t generation; /* of the current loop */
    _Atomic uint64_t ticket;     /* generation << 32 | chunk count << 16 | next chunk */
    _Atomic size_t chunks_done;
    /* the current loop: written before its generation is published, stable until
     * all its chunks are done */
    threadpool_fn fn;
    void *ctx;
    size_t n, chunk, n_chunks;
};

struct worker_arg {
    struct threadpool *pool;
    int index;
};

#define TICKET_MAX_CHUNKS 0xffffu

static uint64_t ticket_make(uint32_t gen, size_t n_chunks)
{
    return (uint64_t)gen << 32 | (uint64_t)n_chunks << 16;
}

static uint32_t ticket_gen(uint64_t t)
{
    return (uint32_t)(t >> 32);
}

static size_t ticket_count(uint64_t t)
{
    return (size_t)(t >> 16) & TICKET_MAX_CHUNKS;
}

static size_t ticket_next(uint64_t t)
{
    return (size_t)t & TICKET_MAX_CHUNKS;
}

/* One finished chunk of a loop of n_chunks; the one that completes the loop wakes a
 * sleeping caller. */
static void chunk_finished(struct threadpool *pool, size_t n_chunks)
{
    size_t done = atomic_fetch_add_explicit(&pool->chunks_done, 1, memory_order_acq_rel) + 1;
    if (done != n_chunks)
        return;
    pthread_mutex_lock(&pool->lock);
    if (pool->caller_waiting)
        pthread_cond_signal(&pool->done);
    pthread_mutex_unlock(&pool->lock);
}

/* Claims and runs chunks of generation gen until none is left. */
static void run_chunks(struct threadpool *pool, uint32_t gen, int thread)
{
    uint64_t t = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    for (;;) {
        if (ticket_gen(t) != gen || ticket_next(t) >= ticket_count(t))
            return;
        if (!atomic_compare_exchange_weak_explicit(&pool->ticket, &t, t + 1,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue; /* t was reloaded */
        /* chunk ticket_next(t) of loop gen is ours: its parameters stay put until it
         * is done */
        size_t begin = ticket_next(t) * pool->chunk;
        size_t end = begin + pool->chunk < pool->n ? begin + pool->chunk : pool->n;
        pool->fn(pool->ctx, begin, end, thread);
        chunk_finished(pool, ticket_count(t));
        t = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    }
}

/* Waits until the generation differs from seen (or the pool stops); returns it. */
static uint32_t worker_wait(struct threadpool *pool, uint32_t seen)
{
    for (int i = 0; i < WORKER_SPINS; i++) {
        uint32_t g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen || atomic_load(&pool->stopping))
            return g;
        CPU_RELAX();
    }
    pthread_mutex_lock(&pool->lock);
    pool->sleeping++;
    while (!atomic_load(&pool->stopping) && atomic_load(&pool->generation) == seen)
        pthread_cond_wait(&pool->wake, &pool->lock);
    pool->sleeping--;
    pthread_mutex_unlock(&pool->lock);
    return atomic_load_explicit(&pool->generation, memory_order_acquire);
}

static void *worker_main(void *p)
{
    struct worker_arg arg = *(struct worker_arg *)p;
    free(p);
    struct threadpool *pool = arg.pool;
    uint32_t seen = 0;
    for (;;) {
        seen = worker_wait(pool, seen);
        if (atomic_load(&pool->stopping))
            return NULL;
        run_chunks(pool, seen, arg.index);
    }
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
    atomic_store(&pool->stopping, true);
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

/* Publishes a loop of n items in chunks of `chunk`; returns its generation. */
static uint32_t publish(struct threadpool *pool, size_t n, size_t chunk, threadpool_fn fn,
                        void *ctx)
{
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    pool->chunk = chunk;
    pool->n_chunks = (n + chunk - 1) / chunk;
    atomic_store_explicit(&pool->chunks_done, 0, memory_order_relaxed);
    uint32_t gen = atomic_load(&pool->generation) + 1;
    atomic_store_explicit(&pool->ticket, ticket_make(gen, pool->n_chunks), memory_order_release);
    pthread_mutex_lock(&pool->lock);
    atomic_store_explicit(&pool->generation, gen, memory_order_release);
    if (pool->sleeping > 0)
        pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    return gen;
}

/* Returns once every chunk of the current loop has run. */
static void wait_done(struct threadpool *pool)
{
    for (int i = 0; i < CALLER_SPINS; i++) {
        if (atomic_load_explicit(&pool->chunks_done, memory_order_acquire) == pool->n_chunks)
            return;
        CPU_RELAX();
    }
    pthread_mutex_lock(&pool->lock);
    pool->caller_waiting = true;
    while (atomic_load_explicit(&pool->chunks_done, memory_order_acquire) != pool->n_chunks)
        pthread_cond_wait(&pool->done, &pool->lock);
    pool->caller_waiting = false;
    pthread_mutex_unlock(&pool->lock);
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
    if ((n + chunk - 1) / chunk > TICKET_MAX_CHUNKS)
        chunk = (n + TICKET_MAX_CHUNKS - 1) / TICKET_MAX_CHUNKS;
    uint32_t gen = publish(pool, n, chunk, fn, ctx);
    run_chunks(pool, gen, 0);
    wait_done(pool);
    atomic_store(&pool->in_loop, 0);
}
