/* server/encoder_pool.c — the encoder pool (server/encoder_pool.h): a mutex, two
 * condition variables, a singly linked FIFO. */
#include "server/encoder_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct task {
    encoder_task_fn fn;
    void *arg;
    struct task *next;
};

struct encoder_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_cv, idle_cv;
    struct task *head, *tail; /* [lock] */
    int pending;              /* [lock] queued + running */
    bool stop;                /* [lock] */
    int n_threads;
    pthread_t *threads;
};

static void *encoder_main(void *arg)
{
    struct encoder_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->work_cv, &p->lock);
        struct task *t = p->head;
        if (!t)
            break; /* stopping and nothing left */
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        t->fn(t->arg);
        free(t);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0)
            pthread_cond_broadcast(&p->idle_cv);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void pool_free(struct encoder_pool *p)
{
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->idle_cv);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

enum status encoder_pool_create(int threads, struct encoder_pool **out, struct errbuf *err)
{
    *out = NULL;
    if (threads < 1 || threads > 256)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "encoder_threads: %d is not in [1, 256]", threads);
    struct encoder_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)threads, sizeof *p->threads))) {
        free(p);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "encoder pool");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_cv, &ca);
    pthread_cond_init(&p->idle_cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, encoder_main, p) != 0) {
            p->n_threads = i;
            encoder_pool_destroy(p);
            return status_fail(err, STATUS_INTERNAL, "encoder pool: thread %d of %d", i,
                               threads);
        }
    }
    p->n_threads = threads;
    *out = p;
    return STATUS_OK;
}

enum status encoder_pool_submit(struct encoder_pool *p, encoder_task_fn fn, void *arg,
                                struct errbuf *err)
{
    struct task *t = malloc(sizeof *t);
    if (!t)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "encoder pool: task");
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->stop) {
        pthread_mutex_unlock(&p->lock);
        free(t);
        return status_fail(err, STATUS_INVALID_ARGUMENT, "encoder pool: shutting down");
    }
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->pending++;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->lock);
    return STATUS_OK;
}

int encoder_pool_pending(struct encoder_pool *p)
{
    pthread_mutex_lock(&p->lock);
    const int n = p->pending;
    pthread_mutex_unlock(&p->lock);
    return n;
}

bool encoder_pool_wait_idle(struct encoder_pool *p, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (timeout_ms >= 0) {
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (p->pending > 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&p->idle_cv, &p->lock);
        else if (pthread_cond_timedwait(&p->idle_cv, &p->lock, &ts) == ETIMEDOUT)
            break;
    }
    const bool idle = p->pending == 0;
    pthread_mutex_unlock(&p->lock);
    return idle;
}

void encoder_pool_destroy(struct encoder_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    /* No threads (a failed create): nothing can be queued yet. */
    pool_free(p);
}
