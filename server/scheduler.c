/* server/scheduler.c — the scheduler's API: configuration, the worker thread, submit,
 * cancel, statistics, drain.  The iteration itself is sched_loop.c. */
#include "server/scheduler.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/log.h"
#include "server/sched_internal.h"

static const char *const MODE_NAMES[SCHED_MODE_COUNT_] = {"step", "request", "none"};

const char *sched_mode_name(enum sched_mode m)
{
    return (unsigned)m < SCHED_MODE_COUNT_ ? MODE_NAMES[m] : "?";
}

enum status sched_mode_parse(const char *name, enum sched_mode *out, struct errbuf *err)
{
    for (int i = 0; i < SCHED_MODE_COUNT_; i++)
        if (name && strcasecmp(name, MODE_NAMES[i]) == 0) {
            *out = (enum sched_mode)i;
            return STATUS_OK;
        }
    return status_fail(err, STATUS_INVALID_ARGUMENT,
                       "batching: '%s' is not one of step, request, none", name ? name : "");
}

const char *cancel_reason_name(enum cancel_reason r)
{
    static const char *const names[] = {"none", "client", "disconnect", "deadline", "shutdown"};
    return (unsigned)r <= CANCEL_SHUTDOWN ? names[r] : "?";
}

const char *admission_reason_name(enum admission_reason r)
{
    static const char *const names[] = {"ok", "queue_full", "deadline", "draining"};
    return (unsigned)r <= ADMIT_DRAINING ? names[r] : "?";
}

struct sd_image *job_result_take_images(struct job_result *r)
{
    struct sd_image *img = r->images;
    r->images = NULL;
    r->n_images = 0;
    return img;
}

void scheduler_config_default(struct scheduler_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->mode = SCHED_MODE_STEP;
    cfg->unet_graphs = true;
}

static uint64_t monotonic_ns(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sched_now(const struct scheduler *s)
{
    return s->cfg.clock.now_ns(s->cfg.clock.ctx);
}

/* Fills the zero fields with defaults and checks the rest. */
static enum status config_resolve(struct scheduler_config *c, struct errbuf *err)
{
    if (c->n_models < 1 || c->n_models > SCHED_MAX_MODELS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "models: %d given, need 1 … %d",
                           c->n_models, SCHED_MAX_MODELS);
    for (int i = 0; i < c->n_models; i++)
        if (!c->models[i] || (!c->runner && c->models[i]->backend != c->models[0]->backend))
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "models[%d]: %s", i, !c->models[i] ? "NULL" :
                               "on another backend (one scheduler per device)");
    if ((unsigned)c->mode >= SCHED_MODE_COUNT_)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "mode: %d unknown", (int)c->mode);
    c->max_batch_rows = c->max_batch_rows ? c->max_batch_rows : 16;
    c->queue_capacity = c->queue_capacity ? c->queue_capacity : 64;
    c->request_max_wait_ms = c->request_max_wait_ms ? c->request_max_wait_ms : 50;
    if (c->request_max_wait_ms < 0)
        c->request_max_wait_ms = 0;
    c->text_cache_entries = c->text_cache_entries ? c->text_cache_entries : 256;
    c->decode_batch = c->decode_batch ? c->decode_batch : 4;
    c->initial_step_s = c->initial_step_s > 0 ? c->initial_step_s : 0.05;
    if (!isfinite(c->due_factor))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "due_factor: not a finite number");
    c->due_factor = c->due_factor == 0 ? 2.0 : c->due_factor < 0 ? 0.0 : c->due_factor;
    if (!c->clock.now_ns)
        c->clock.now_ns = monotonic_ns;
    if (c->max_batch_rows < 1 || c->max_batch_rows > SD_MAX_BATCH_ROWS)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "max_batch_rows: %d outside [1, %d]",
                           c->max_batch_rows, SD_MAX_BATCH_ROWS);
    if (c->queue_capacity < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "queue_capacity: %d < 1",
                           c->queue_capacity);
    if (c->text_cache_entries < 1 || c->decode_batch < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: must be ≥ 1",
                           c->decode_batch < 1 ? "decode_batch" : "text_cache_entries");
    return STATUS_OK;
}

/* cfg.lanes → s->lanes: 0 read as 1 (until a GPU run has measured two lanes against
 * one: tests/gpu/check.sh's load and load1 stages); 1 outside step mode. */
static enum status resolve_lanes(struct scheduler *s, struct errbuf *err)
{
    const struct scheduler_config *c = &s->cfg;
    if (c->lanes < 0 || c->lanes > BACKEND_LANES_MAX)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "lanes: %d outside [0, %d]", c->lanes,
                           BACKEND_LANES_MAX);
    const bool launches = !c->runner || (c->runner->launch && c->runner->wait);
    if (c->lanes > 1 && !launches)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "lanes: %d, but the runner has no launch/wait", c->lanes);
    const int lanes = c->lanes > 0 ? c->lanes : 1;
    s->lanes = c->mode == SCHED_MODE_STEP ? lanes : 1;
    return STATUS_OK;
}

static void free_scratch(struct scheduler *s)
{
    for (int k = 0; k < BACKEND_LANES_MAX; k++) {
        free(s->calls[k].batch);
        free(s->calls[k].reqs);
    }
    free(s->scratch);
    free(s->queue);
}

static enum status alloc_scratch(struct scheduler *s, struct errbuf *err)
{
    const int rows = s->cfg.max_batch_rows;
    s->scratch_cap = s->cfg.queue_capacity + 8;
    bool ok = true;
    for (int k = 0; k < s->lanes; k++) {
        s->calls[k].batch = calloc((size_t)rows, sizeof *s->calls[k].batch);
        s->calls[k].reqs = calloc((size_t)rows, sizeof *s->calls[k].reqs);
        ok = ok && s->calls[k].batch && s->calls[k].reqs;
    }
    s->scratch = calloc((size_t)s->scratch_cap, sizeof *s->scratch);
    s->queue = calloc((size_t)s->cfg.queue_capacity, sizeof *s->queue);
    if (!ok || !s->scratch || !s->queue)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "scheduler: scratch arrays");
    return STATUS_OK;
}

static enum status init_sync(struct scheduler *s, struct errbuf *err)
{
    pthread_condattr_t ca;
    if (pthread_mutex_init(&s->lock, NULL) != 0 || pthread_condattr_init(&ca) != 0)
        return status_fail(err, STATUS_INTERNAL, "scheduler: mutex");
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    const bool ok = pthread_cond_init(&s->work_cv, &ca) == 0 && pthread_cond_init(&s->idle_cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    return ok ? STATUS_OK : status_fail(err, STATUS_INTERNAL, "scheduler: condition variables");
}

enum status scheduler_create(const struct scheduler_config *cfg, struct scheduler **out,
                             struct errbuf *err)
{
    *out = NULL;
    struct scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "scheduler");
    s->cfg = *cfg;
    s->next_id = 1;
    enum status st = config_resolve(&s->cfg, err);
    if (st == STATUS_OK)
        st = resolve_lanes(s, err);
    if (st == STATUS_OK)
        st = alloc_scratch(s, err);
    if (st == STATUS_OK)
        st = init_sync(s, err);
    if (st == STATUS_OK && s->cfg.runner)
        s->runner = *s->cfg.runner;
    else if (st == STATUS_OK)
        st = sched_pipeline_runner_create(&s->cfg, s->lanes, &s->runner, &s->pipeline_runner,
                                          err);
    if (st != STATUS_OK) {
        free_scratch(s);
        free(s);
        return st;
    }
    s->stats.mode = s->cfg.mode;
    *out = s;
    return STATUS_OK;
}

/* --- the worker thread ------------------------------------------------------------- */

static void wait_for_work(struct scheduler *s, uint64_t kick, uint64_t wake_ns)
{
    while (!s->stop && s->kick == kick) {
        if (!wake_ns) {
            pthread_cond_wait(&s->work_cv, &s->lock);
            continue;
        }
        const uint64_t now = sched_now(s);
        if (now >= wake_ns)
            return;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        const uint64_t at = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (wake_ns - now);
        ts.tv_sec = (time_t)(at / 1000000000u);
        ts.tv_nsec = (long)(at % 1000000000u);
        if (pthread_cond_timedwait(&s->work_cv, &s->lock, &ts) == ETIMEDOUT)
            return;
    }
}

static void *worker_main(void *arg)
{
    struct scheduler *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        const uint64_t kick = s->kick;
        pthread_mutex_unlock(&s->lock);
        bool worked = false;
        uint64_t wake = 0;
        struct errbuf err;
        if (sched_iterate(s, &worked, &wake, &err) != STATUS_OK)
            LOG_ERRORF("scheduler", "iteration: %s", err.msg);
        pthread_mutex_lock(&s->lock);
        if (!worked)
            wait_for_work(s, kick, wake);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

enum status scheduler_start(struct scheduler *s, struct errbuf *err)
{
    if (s->started)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "scheduler_start: already started");
    if (pthread_create(&s->thread, NULL, worker_main, s) != 0)
        return status_fail(err, STATUS_INTERNAL, "scheduler_start: pthread_create failed");
    s->started = true;
    return STATUS_OK;
}

/* --- submit ------------------------------------------------------------------------ */

void sched_job_free(struct sched_job *j)
{
    if (!j)
        return;
    if (j->out)
        for (int i = 0; i < j->p.n; i++)
            sd_image_free(&j->out[i]);
    free(j->out);
    free(j->images);
    free(j->prompt);
    free(j->negative);
    free(j->request_id);
    free(j->init_image);
    free(j->init_mask);
    free(j);
}

static char *dup_or_null(const char *x, bool *failed)
{
    if (!x)
        return NULL;
    char *d = strdup(x);
    *failed |= !d;
    return d;
}

/* A copy of bytes[0 … n), or NULL for NULL. */
static uint8_t *dup_bytes(const uint8_t *bytes, size_t n, bool *failed)
{
    if (!bytes)
        return NULL;
    uint8_t *d = malloc(n);
    if (d)
        memcpy(d, bytes, n);
    *failed |= !d;
    return d;
}

static enum status job_new(const struct gen_params *p, const struct job_callbacks *cb,
                           const struct submit_options *opt, struct sched_job **out,
                           struct errbuf *err)
{
    struct sched_job *j = calloc(1, sizeof *j);
    bool failed = !j;
    if (j) {
        j->p = *p;
        j->prompt = dup_or_null(p->prompt, &failed);
        j->negative = dup_or_null(p->negative_prompt, &failed);
        j->request_id = dup_or_null(opt->request_id, &failed);
        const size_t pixels = (size_t)p->width * (size_t)p->height;
        j->init_image = dup_bytes(p->init_image, pixels * 3, &failed);
        j->init_mask = dup_bytes(p->init_mask, pixels, &failed);
        j->images = calloc((size_t)p->n, sizeof *j->images);
        j->out = calloc((size_t)p->n, sizeof *j->out);
        failed |= !j->images || !j->out;
    }
    if (failed) {
        sched_job_free(j);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "scheduler_submit: job");
    }
    j->p.prompt = j->prompt;
    j->p.negative_prompt = j->negative;
    j->p.init_image = j->init_image;
    j->p.init_mask = j->init_mask;
    j->steps = p->init_image ? sd_img2img_steps(p->steps, p->strength) : p->steps;
    j->cb = *cb;
    j->model = opt->model;
    j->priority = opt->priority;
    j->rows = p->guidance > 1.0 ? 2 : 1;
    for (int i = 0; i < p->n; i++) {
        j->images[i].job = j;
        j->images[i].index = i;
    }
    j->rowsteps_left = (int64_t)j->rows * p->n * j->steps;
    j->steps_left_max = j->steps;
    *out = j;
    return STATUS_OK;
}

static enum status check_submit(const struct scheduler *s, const struct gen_params *p,
                                const struct job_callbacks *cb, const struct submit_options *opt,
                                struct errbuf *err)
{
    if (!p || !cb || !cb->on_complete)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "scheduler_submit: params and an on_complete callback are required");
    if (opt->model < 0 || opt->model >= s->cfg.n_models)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "model: index %d outside [0, %d)",
                           opt->model, s->cfg.n_models);
    if (opt->deadline_ms < 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "deadline_ms: %lld is negative",
                           (long long)opt->deadline_ms);
    if (s->cfg.runner)   /* a fake runner's "models" are not real ones */
        return p->n >= 1 && p->n <= GEN_MAX_IMAGES && p->steps >= 1
                   ? STATUS_OK
                   : status_fail(err, STATUS_INVALID_ARGUMENT, "n/steps: out of range");
    return gen_params_validate(s->cfg.models[opt->model], p, err);
}

static enum status reject(struct scheduler *s, const struct admission *a, struct admission *adm,
                          struct errbuf *err)
{
    if (adm)
        *adm = *a;
    if (a->reason == ADMIT_QUEUE_FULL)
        s->stats.rejected_queue_full++;
    else if (a->reason == ADMIT_DEADLINE)
        s->stats.rejected_deadline++;
    else
        s->stats.rejected_draining++;
    if (a->reason == ADMIT_DEADLINE)
        return status_fail(err, STATUS_TIMEOUT,
                           "deadline: expected completion in %.3f s is past it; retry after %lld ms",
                           a->expected_s, (long long)a->retry_after_ms);
    return status_fail(err, STATUS_BUSY, "%s: %d jobs waiting; retry after %lld ms",
                       admission_reason_name(a->reason), a->queue_depth,
                       (long long)a->retry_after_ms);
}

enum status scheduler_submit(struct scheduler *s, const struct gen_params *p,
                             const struct job_callbacks *cb, const struct submit_options *opt,
                             uint64_t *job_id, struct admission *adm, struct errbuf *err)
{
    const struct submit_options none = {0};
    opt = opt ? opt : &none;
    if (adm)
        memset(adm, 0, sizeof *adm);
    TRY(check_submit(s, p, cb, opt, err));
    struct sched_job *j = NULL;
    TRY(job_new(p, cb, opt, &j, err));
    pthread_mutex_lock(&s->lock);
    j->t_submit = sched_now(s);
    j->deadline_ns = opt->deadline_ms ? j->t_submit + (uint64_t)opt->deadline_ms * 1000000u : 0;
    /* step mode only: the other modes are today's baselines, first come first served */
    j->due_ns = j->t_submit;
    if (s->cfg.mode == SCHED_MODE_STEP)
        j->due_ns += (uint64_t)(s->cfg.due_factor * sched_alone_seconds(s, j) * 1e9);
    struct admission a;
    sched_admission_judge(s, j, j->t_submit, &a);
    if (a.reason != ADMIT_OK) {
        enum status st = reject(s, &a, adm, err);
        pthread_mutex_unlock(&s->lock);
        sched_job_free(j);
        return st;
    }
    j->id = s->next_id++;
    j->state = JOB_QUEUED;
    if (atomic_fetch_add(&s->hb_outstanding, 1) == 0)
        atomic_store(&s->hb_ns, j->t_submit); /* an idle worker's clock starts now */
    s->queue[s->queue_len++] = j;
    s->pending_rowsteps += j->rowsteps_left;
    s->pending_rows += j->rows * p->n;
    s->stats.submitted++;
    s->kick++;
    if (adm)
        *adm = a;
    if (job_id)
        *job_id = j->id;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->lock);
    return STATUS_OK;
}

/* --- cancel, stats ------------------------------------------------------------------- */

static struct sched_job *find_job(struct scheduler *s, uint64_t id)
{
    for (int i = 0; i < s->queue_len; i++)
        if (s->queue[i]->id == id)
            return s->queue[i];
    for (struct sched_job *j = s->active; j; j = j->next)
        if (j->id == id)
            return j;
    return NULL;
}

enum status scheduler_cancel(struct scheduler *s, uint64_t job_id, enum cancel_reason reason,
                             struct errbuf *err)
{
    if (reason == CANCEL_NONE)
        reason = CANCEL_CLIENT;
    pthread_mutex_lock(&s->lock);
    struct sched_job *j = find_job(s, job_id);
    if (j && j->cancel == CANCEL_NONE)
        j->cancel = reason;
    s->kick++;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->lock);
    return j ? STATUS_OK
             : status_fail(err, STATUS_NOT_FOUND, "job %llu: unknown or already completing",
                           (unsigned long long)job_id);
}

enum status scheduler_disconnect(struct scheduler *s, uint64_t job_id, struct errbuf *err)
{
    return scheduler_cancel(s, job_id, CANCEL_DISCONNECT, err);
}

double scheduler_call_bound_ms(int b)
{
    static const double bounds[SCHED_CALL_BUCKETS] = {0.25, 0.5, 1,  2,   5,  10,
                                                      20,   50,  100, 250, 1000};
    return bounds[b];
}

void scheduler_stats(struct scheduler *s, struct scheduler_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    out->queue_depth = s->queue_len;
    out->draining = s->draining;
    out->backlog_s = sched_backlog_seconds(s);
    pthread_mutex_unlock(&s->lock);
    if (s->pipeline_runner && !s->started) /* the worker updates these when started */
        sched_pipeline_runner_counters(s->pipeline_runner, out);
    out->mean_rows = out->unet_calls ? (double)out->unet_rows / (double)out->unet_calls : 0;
    out->mean_occupancy = out->mean_rows / s->cfg.max_batch_rows;
}

double scheduler_stall_s(struct scheduler *s)
{
    if (atomic_load(&s->hb_outstanding) <= 0)
        return 0;
    const uint64_t hb = atomic_load(&s->hb_ns), now = sched_now(s);
    return now > hb ? (double)(now - hb) * 1e-9 : 0;
}

/* --- poll, drain, destroy -------------------------------------------------------------- */

enum status scheduler_poll(struct scheduler *s, bool *worked, uint64_t *wake_ns,
                           struct errbuf *err)
{
    if (s->started)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "scheduler_poll: the worker is running");
    bool w = false;
    uint64_t wake = 0;
    enum status st = sched_iterate(s, &w, &wake, err);
    if (worked)
        *worked = w;
    if (wake_ns)
        *wake_ns = wake;
    return st;
}

static bool idle_locked(const struct scheduler *s)
{
    return s->queue_len == 0 && s->active == NULL && s->completing == 0;
}

/* Waits (started) or polls (not started) until idle or the deadline (0: none). */
static bool wait_idle(struct scheduler *s, int64_t grace_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (grace_ms >= 0) {
        ts.tv_sec += grace_ms / 1000;
        ts.tv_nsec += (grace_ms % 1000) * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    bool idle = idle_locked(s);
    while (!idle) {
        if (s->started) {
            if (grace_ms < 0)
                pthread_cond_wait(&s->idle_cv, &s->lock);
            else if (pthread_cond_timedwait(&s->idle_cv, &s->lock, &ts) == ETIMEDOUT)
                break;
        } else {
            pthread_mutex_unlock(&s->lock);
            struct errbuf err;
            if (sched_iterate(s, &(bool){false}, &(uint64_t){0}, &err) != STATUS_OK)
                LOG_ERRORF("scheduler", "drain: %s", err.msg);
            pthread_mutex_lock(&s->lock);
        }
        idle = idle_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
    return idle;
}

/* Cancels everything admitted (CANCEL_SHUTDOWN) and waits for it to complete. */
static void cancel_everything(struct scheduler *s)
{
    pthread_mutex_lock(&s->lock);
    s->cancel_all = true;
    s->kick++;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->lock);
    wait_idle(s, -1);
    pthread_mutex_lock(&s->lock);
    s->cancel_all = false;
    pthread_mutex_unlock(&s->lock);
}

enum status scheduler_drain(struct scheduler *s, int64_t grace_ms, struct errbuf *err)
{
    pthread_mutex_lock(&s->lock);
    s->draining = true;
    s->kick++;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->lock);
    if (wait_idle(s, grace_ms))
        return STATUS_OK;
    cancel_everything(s);
    return status_fail(err, STATUS_TIMEOUT, "drain: grace of %lld ms ran out; the rest was cancelled",
                       (long long)grace_ms);
}

void scheduler_destroy(struct scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->draining = true;
    pthread_mutex_unlock(&s->lock);
    cancel_everything(s);
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->work_cv);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    if (s->pipeline_runner)
        sched_pipeline_runner_destroy(s->pipeline_runner);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->idle_cv);
    pthread_mutex_destroy(&s->lock);
    free_scratch(s);
    free(s);
}
