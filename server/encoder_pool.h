/* server/encoder_pool.h — the encoder pool: N CPU threads that run the expensive tail
 * of a generation (image encoding, base64, the response JSON) off the scheduler's
 * worker thread, whose callbacks must stay cheap.
 *
 * A FIFO of tasks (a function and its argument); encoder_pool_submit never blocks on
 * the work and never refuses (the queue grows: its length is bounded by the admitted
 * jobs, which the scheduler bounds).  encoder_pool_wait_idle waits until every
 * submitted task has run; encoder_pool_destroy runs what is still queued, then joins.
 *
 * Ownership: a task's argument belongs to the task (the pool never frees it).
 * Thread-safety: submit, pending and wait_idle from any thread (submit also from
 * inside a task); create/destroy by one owner thread.
 */
#ifndef DIFFUSIOND_SERVER_ENCODER_POOL_H
#define DIFFUSIOND_SERVER_ENCODER_POOL_H

#include <stdbool.h>

#include "engine/status.h"

typedef void (*encoder_task_fn)(void *arg);

struct encoder_pool;

/* threads ≥ 1 (STATUS_INVALID_ARGUMENT naming "encoder_threads" otherwise). */
enum status encoder_pool_create(int threads, struct encoder_pool **out, struct errbuf *err);

/* Queues fn(arg); STATUS_OUT_OF_MEMORY (the task was not queued) or
 * STATUS_INVALID_ARGUMENT after destroy began. */
enum status encoder_pool_submit(struct encoder_pool *p, encoder_task_fn fn, void *arg,
                                struct errbuf *err);

/* Tasks queued or running. */
int encoder_pool_pending(struct encoder_pool *p);

/* Waits until no task is queued or running, at most timeout_ms (< 0: forever);
 * true when idle. */
bool encoder_pool_wait_idle(struct encoder_pool *p, int timeout_ms);

/* Runs the queued tasks, joins the threads, frees; p may be NULL. */
void encoder_pool_destroy(struct encoder_pool *p);

#endif
