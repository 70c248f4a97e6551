/* engine/threadpool.h — a fixed pool of worker threads running parallel-for loops.
 *
 * The calling thread takes part in every loop (it is thread index 0), so a pool of
 * n threads starts n-1 workers.  One pool per backend: BLAS is kept single-threaded
 * and called from inside pool tasks, so the two never oversubscribe the cores.
 *
 * Ownership: the creator owns the pool and destroys it after its last loop.
 * Thread-safety: threadpool_parallel_for may be called by one thread at a time per
 * pool (the backend's owner); calls from inside a task run serially in that task.
 */
#ifndef DIFFUSIOND_ENGINE_THREADPOOL_H
#define DIFFUSIOND_ENGINE_THREADPOOL_H

#include <stddef.h>

#include "engine/status.h"

struct threadpool;

/* Runs items [begin, end) of a loop on thread `thread` (0 ≤ thread < pool size). */
typedef void (*threadpool_fn)(void *ctx, size_t begin, size_t end, int thread);

/* n_threads ≤ 0 means one per online CPU. */
enum status threadpool_create(int n_threads, struct threadpool **out, struct errbuf *err);
void threadpool_destroy(struct threadpool *pool);

int threadpool_size(const struct threadpool *pool);

/* Calls fn over [0, n) split into chunks of at least `grain` items, spread over the
 * pool; returns when every chunk has run.  pool may be NULL (runs serially). */
void threadpool_parallel_for(struct threadpool *pool, size_t n, size_t grain, threadpool_fn fn,
                             void *ctx);

/* Number of online CPUs (at least 1). */
int threadpool_cpu_count(void);

#endif
