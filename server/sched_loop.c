/* server/sched_loop.c — one iteration of the worker: cancellations and deadline expiry,
 * admission (text encode + begin), one U-Net call over the most urgent bucket (and, with
 * lanes, one over each next bucket whose lane is free, concurrently), batched decode of
 * the images that finished, completion callbacks (docs/scheduler.md). */
#include <stdlib.h>
#include <string.h>

#include "engine/log.h"
#include "server/sched_internal.h"

static double secs(uint64_t a, uint64_t b)
{
    return b > a ? (double)(b - a) * 1e-9 : 0.0;
}

static struct bucket_key bucket_of(const struct sched_job *j)
{
    return (struct bucket_key){j->model, j->p.width, j->p.height};
}

static bool key_equal(const struct bucket_key *a, const struct bucket_key *b)
{
    return a->model == b->model && a->width == b->width && a->height == b->height;
}

static bool in_bucket(const struct sched_job *j, const struct bucket_key *k)
{
    const struct bucket_key jk = bucket_of(j);
    return key_equal(&jk, k);
}

static bool same_bucket(const struct sched_job *a, const struct sched_job *b)
{
    const struct bucket_key bk = bucket_of(b);
    return in_bucket(a, &bk);
}

/* Rows of the admitted, unfinished images in j's bucket. */
static int bucket_rows(const struct scheduler *s, const struct sched_job *j)
{
    int rows = 0;
    for (const struct sched_job *a = s->active; a; a = a->next) {
        if (!same_bucket(a, j))
            continue;
        for (int i = 0; i < a->n_admit; i++)
            rows += a->images[i].finished ? 0 : a->rows;
    }
    return rows;
}

static bool work_in_flight(const struct scheduler *s)
{
    for (const struct sched_job *a = s->active; a; a = a->next)
        for (int i = 0; i < a->n_admit; i++)
            if (!a->images[i].finished)
                return true;
    return false;
}

static void wake_at(uint64_t *wake, uint64_t t)
{
    if (t && (!*wake || t < *wake))
        *wake = t;
}

static void list_remove(struct scheduler *s, struct sched_job *j)
{
    for (struct sched_job **pp = &s->active; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            return;
        }
}

static void list_append(struct scheduler *s, struct sched_job *j)
{
    struct sched_job **pp = &s->active;
    while (*pp)
        pp = &(*pp)->next;
    *pp = j;
    j->next = NULL;
}

static void queue_remove(struct scheduler *s, struct sched_job *j)
{
    for (int i = 0; i < s->queue_len; i++)
        if (s->queue[i] == j) {
            memmove(&s->queue[i], &s->queue[i + 1], sizeof *s->queue * (size_t)(s->queue_len - i - 1));
            s->queue_len--;
            return;
        }
}

/* Takes j out of the scheduler's books [lock]. */
static void forget_job(struct scheduler *s, struct sched_job *j)
{
    if (j->state == JOB_QUEUED)
        queue_remove(s, j);
    else
        list_remove(s, j);
    s->pending_rowsteps -= j->rowsteps_left;
    for (int i = 0; i < j->p.n; i++)
        s->pending_rows -= j->images[i].finished ? 0 : j->rows;
    j->rowsteps_left = 0;
    s->completing++; /* until its on_complete has returned (complete_job) */
}

static enum status ensure_scratch(struct scheduler *s, int n, struct errbuf *err)
{
    if (n <= s->scratch_cap)
        return STATUS_OK;
    struct sched_job **p = realloc(s->scratch, sizeof *p * (size_t)n * 2);
    if (!p)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "scheduler: scratch of %d jobs", n * 2);
    s->scratch = p;
    s->scratch_cap = n * 2;
    return STATUS_OK;
}

/* --- completion ---------------------------------------------------------------------- */

static void release_images(struct scheduler *s, struct sched_job *j)
{
    for (int i = 0; i < j->p.n; i++)
        if (j->images[i].begun) {
            s->runner.release(s->runner.ctx, &j->images[i].req);
            j->images[i].begun = false;
        }
}

/* Runs j's on_complete and frees it; j is already out of the books. */
static void complete_job(struct scheduler *s, struct sched_job *j, enum status st,
                         enum cancel_reason reason, const char *msg)
{
    release_images(s, j);
    const uint64_t now = sched_now(s);
    struct job_result r = {
        .job_id = j->id, .request_id = j->request_id, .status = st, .cancel_reason = reason,
        .error = st == STATUS_OK ? "" : msg, .n_images = st == STATUS_OK ? j->p.n : 0,
        .images = st == STATUS_OK ? j->out : NULL};
    struct job_metrics *m = &r.metrics;
    m->queue_s = secs(j->t_submit, j->t_admit ? j->t_admit : now);
    m->encode_s = j->encode_s;
    m->denoise_s = secs(j->t_first_step, j->t_last_step);
    m->decode_s = j->decode_s;
    m->total_s = secs(j->t_submit, now);
    m->unet_calls = j->unet_calls;
    m->mean_batch_rows = j->unet_calls ? (double)j->rows_sum / j->unet_calls : 0;
    m->steps_done = j->steps_done_total;
    m->n_batch_sizes = j->unet_calls < JOB_BATCH_SIZES_MAX ? j->unet_calls : JOB_BATCH_SIZES_MAX;
    memcpy(m->batch_sizes, j->batch_sizes, sizeof(int) * (size_t)m->n_batch_sizes);
    j->cb.on_complete(j->cb.user, &r);
    if (st == STATUS_OK && !r.images) /* taken by the callback */
        j->out = NULL;
    sched_job_free(j);
    pthread_mutex_lock(&s->lock);
    if (st == STATUS_OK)
        s->stats.completed_ok++;
    else if (st == STATUS_CANCELLED)
        s->stats.cancelled++;
    else
        s->stats.completed_error++;
    if (--s->completing == 0 && s->queue_len == 0 && !s->active)
        pthread_cond_broadcast(&s->idle_cv);
    atomic_fetch_sub(&s->hb_outstanding, 1);
    pthread_mutex_unlock(&s->lock);
}

static void fail_job(struct scheduler *s, struct sched_job *j, const struct errbuf *err)
{
    LOG_WARNF("scheduler", "job %llu failed: %s", (unsigned long long)j->id, err->msg);
    pthread_mutex_lock(&s->lock);
    forget_job(s, j);
    pthread_mutex_unlock(&s->lock);
    complete_job(s, j, err->code != STATUS_OK ? err->code : STATUS_INTERNAL, CANCEL_NONE,
                 err->msg);
}

/* --- 1. cancellations and deadlines ------------------------------------------------- */

static enum cancel_reason cancel_due(const struct scheduler *s, const struct sched_job *j,
                                     uint64_t now)
{
    if (s->cancel_all)
        return CANCEL_SHUTDOWN;
    if (j->cancel != CANCEL_NONE)
        return j->cancel;
    return j->deadline_ns && now >= j->deadline_ns ? CANCEL_DEADLINE : CANCEL_NONE;
}

static enum status run_cancellations(struct scheduler *s, uint64_t now, bool *worked,
                                     struct errbuf *err)
{
    pthread_mutex_lock(&s->lock);
    int n = 0;
    for (const struct sched_job *a = s->active; a; a = a->next)
        n++;
    enum status st = ensure_scratch(s, n + s->queue_len, err);
    n = 0;
    for (int i = 0; st == STATUS_OK && i < s->queue_len; i++)
        if (cancel_due(s, s->queue[i], now) != CANCEL_NONE)
            s->scratch[n++] = s->queue[i];
    for (struct sched_job *a = s->active; st == STATUS_OK && a; a = a->next)
        if (cancel_due(s, a, now) != CANCEL_NONE)
            s->scratch[n++] = a;
    if (st != STATUS_OK || n == 0) { /* the usual case: nothing to cancel, no allocation */
        pthread_mutex_unlock(&s->lock);
        return st;
    }
    enum cancel_reason *why = malloc(sizeof *why * (size_t)n);
    for (int i = 0; why && i < n; i++) {
        why[i] = cancel_due(s, s->scratch[i], now);
        forget_job(s, s->scratch[i]);
    }
    pthread_mutex_unlock(&s->lock);
    if (st != STATUS_OK)
        return st;
    if (!why)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "scheduler: cancellations");
    for (int i = 0; i < n; i++)
        complete_job(s, s->scratch[i], STATUS_CANCELLED, why[i], "cancelled");
    free(why);
    *worked |= n > 0;
    return STATUS_OK;
}

/* --- 2. admission ------------------------------------------------------------------- */

static int by_urgency(const void *a, const void *b)
{
    return sched_job_cmp(*(struct sched_job *const *)a, *(struct sched_job *const *)b);
}

/* Jobs with images still to admit, most urgent first, into s->scratch [lock]. */
static int candidates(struct scheduler *s)
{
    int n = 0;
    for (struct sched_job *a = s->active; a; a = a->next)
        if (a->n_admit < a->p.n)
            s->scratch[n++] = a;
    for (int i = 0; i < s->queue_len; i++)
        s->scratch[n++] = s->queue[i];
    qsort(s->scratch, (size_t)n, sizeof *s->scratch, by_urgency);
    return n;
}

/* Admits as many of j's images as its bucket has room for (at least one into an empty
 * bucket); false when the bucket is full [lock]. */
static bool admit_images(struct scheduler *s, struct sched_job *j)
{
    const int max = s->cfg.max_batch_rows;
    int rows = bucket_rows(s, j);
    while (j->n_admit < j->p.n && (rows == 0 || rows + j->rows <= max)) {
        j->n_admit++;
        rows += j->rows;
    }
    if (j->state == JOB_QUEUED && j->n_admit > 0) {
        queue_remove(s, j);
        j->state = JOB_ACTIVE;
        list_append(s, j);
    }
    return j->n_admit == j->p.n;
}

static void admit_step_mode(struct scheduler *s, int n)
{
    struct sched_job *blocked[SCHED_MAX_BUCKETS];
    int n_blocked = 0;
    for (int i = 0; i < n; i++) {
        struct sched_job *j = s->scratch[i];
        bool skip = false;
        for (int b = 0; b < n_blocked && !skip; b++)
            skip = same_bucket(blocked[b], j);
        if (!skip && !admit_images(s, j) && n_blocked < SCHED_MAX_BUCKETS)
            blocked[n_blocked++] = j; /* that bucket is full; others go on (no HOL) */
    }
}

/* request mode: when nothing runs, gather the most urgent job's bucket up to the max
 * rows or until its oldest has waited request_max_wait_ms [lock]. */
static void admit_request_mode(struct scheduler *s, int n, uint64_t now, uint64_t *wake)
{
    const struct sched_job *lead = s->scratch[0];
    int queued_rows = 0;
    uint64_t oldest = lead->t_submit;
    for (int i = 0; i < n; i++) {
        const struct sched_job *j = s->scratch[i];
        if (!same_bucket(j, lead))
            continue;
        queued_rows += j->rows * (j->p.n - j->n_admit);
        if (j->t_submit < oldest)
            oldest = j->t_submit;
    }
    const uint64_t due = oldest + (uint64_t)s->cfg.request_max_wait_ms * 1000000u;
    if (queued_rows < s->cfg.max_batch_rows && now < due && !s->draining) {
        wake_at(wake, due);
        return;
    }
    for (int i = 0; i < n; i++)
        if (same_bucket(s->scratch[i], lead) && !admit_images(s, s->scratch[i]))
            return; /* full: in order, no skipping ahead within the batch */
}

static void plan_admission(struct scheduler *s, uint64_t now, uint64_t *wake)
{
    if (s->cancel_all)
        return;
    const int n = candidates(s);
    if (n == 0)
        return;
    if (s->cfg.mode == SCHED_MODE_STEP)
        admit_step_mode(s, n);
    else if (!work_in_flight(s) && s->cfg.mode == SCHED_MODE_NONE)
        admit_images(s, s->scratch[0]);
    else if (!work_in_flight(s))
        admit_request_mode(s, n, now, wake);
}

/* Begins the admitted images (text encode through the cache, noise, sampler). */
static void begin_admitted(struct scheduler *s, bool *worked)
{
    struct sched_job *next;
    for (struct sched_job *j = s->active; j; j = next) {
        next = j->next;
        struct errbuf err;
        enum status st = STATUS_OK;
        for (; j->n_begun < j->n_admit && st == STATUS_OK; j->n_begun++) {
            struct sched_image *img = &j->images[j->n_begun];
            const uint64_t t0 = sched_now(s);
            if (!j->t_admit)
                j->t_admit = t0;
            st = s->runner.begin(s->runner.ctx, j->model, &j->p, img->index, &img->req, &err);
            img->begun = st == STATUS_OK;
            const double dt = secs(t0, sched_now(s));
            j->encode_s += dt;
            if (st == STATUS_OK && j->p.init_image) {
                pthread_mutex_lock(&s->lock);
                sched_record_start_encode(s, (double)j->p.width * (double)j->p.height, dt);
                pthread_mutex_unlock(&s->lock);
            }
            *worked = true;
        }
        if (st != STATUS_OK)
            fail_job(s, j, &err);
    }
}

/* --- 3. one U-Net call --------------------------------------------------------------- */


static bool has_running(const struct sched_job *j)
{
    for (int i = 0; i < j->n_begun; i++)
        if (j->images[i].begun && !j->images[i].finished)
            return true;
    return false;
}

/* The lane of bucket k: i % lanes for the i-th bucket ever stepped, so a bucket keeps
 * its lane (and the graphs recorded there); a full table starts over [worker]. */
static int lane_of(struct scheduler *s, const struct bucket_key *k)
{
    for (int i = 0; i < s->n_lane_of; i++)
        if (key_equal(&s->lane_of[i], k))
            return i % s->lanes;
    if (s->n_lane_of == SCHED_MAX_BUCKETS)
        s->n_lane_of = 0;
    s->lane_of[s->n_lane_of] = *k;
    return s->n_lane_of++ % s->lanes;
}

/* This iteration's calls into s->calls (their keys and lanes), by the urgency of each
 * bucket's most urgent running job: the first bucket always, then — with lanes > 1 —
 * each next bucket whose lane is still free.  Their count [worker]. */
static int plan_calls(struct scheduler *s)
{
    int n = 0, nc = 0;
    for (struct sched_job *j = s->active; j; j = j->next)
        if (has_running(j))
            s->scratch[n++] = j;
    qsort(s->scratch, (size_t)n, sizeof *s->scratch, by_urgency);
    for (int i = 0; i < n && nc < s->lanes; i++) {
        const struct bucket_key k = bucket_of(s->scratch[i]);
        bool taken = false;
        for (int c = 0; c < nc && !taken; c++)
            taken = key_equal(&s->calls[c].key, &k);
        if (taken)
            continue;
        const int lane = lane_of(s, &k);
        for (int c = 0; c < nc && !taken; c++)
            taken = s->calls[c].lane == lane;
        if (taken)
            continue; /* its lane runs a more urgent bucket: next iteration */
        s->calls[nc].key = k;
        s->calls[nc].lane = lane;
        s->calls[nc].n = s->calls[nc].rows = 0;
        nc++;
    }
    return nc;
}

/* Whether image i of j runs and fits in a call of `rows` rows (one always runs)
 * [worker]. */
static bool image_fits(const struct scheduler *s, const struct sched_job *j, int i, int rows)
{
    const struct sched_image *img = &j->images[i];
    return img->begun && !img->finished &&
           (rows == 0 || rows + j->rows <= s->cfg.max_batch_rows);
}

/* Rows of j's running images that fit beside `rows` [worker]. */
static int fitting_rows(const struct scheduler *s, const struct sched_job *j, int rows)
{
    int add = 0;
    for (int i = 0; i < j->n_begun; i++)
        if (image_fits(s, j, i, rows + add))
            add += j->rows;
    return add;
}

/* The running images of call c's bucket into c, most urgent job first, ≤ max rows; a
 * job joins the call unless its rows would make a more urgent job in it miss its due
 * time (sched_join_delays: on a GPU an extra row is nearly free and everyone joins; on
 * a CPU a short request is not slowed by a long one that has time to spare) [worker]. */
static void gather_batch(struct scheduler *s, struct sched_call *c)
{
    int n = 0, jn = 0, n_in = 0, rows = 0;
    for (struct sched_job *j = s->active; j; j = j->next)
        if (in_bucket(j, &c->key))
            s->scratch[jn++] = j;
    qsort(s->scratch, (size_t)jn, sizeof *s->scratch, by_urgency);
    const double pixels = (double)c->key.width * (double)c->key.height;
    const uint64_t now = sched_now(s);
    for (int k = 0; k < jn; k++) {
        struct sched_job *j = s->scratch[k];
        const int add = fitting_rows(s, j, rows);
        if (add == 0 ||
            (n_in > 0 && sched_join_delays(s, s->scratch, n_in, rows, add, pixels, now)))
            continue;
        for (int i = 0; i < j->n_begun; i++) {
            if (!image_fits(s, j, i, rows))
                continue;
            c->batch[n] = &j->images[i];
            c->reqs[n++] = &j->images[i].req;
            rows += j->rows;
        }
        s->scratch[n_in++] = j; /* the jobs in the call, at the front (k ≥ n_in) */
    }
    c->n = n;
    c->rows = rows;
}

static int job_steps_left(const struct sched_job *j)
{
    int left = 0;
    for (int i = 0; i < j->p.n; i++)
        if (j->steps - j->images[i].steps_done > left)
            left = j->steps - j->images[i].steps_done;
    return left;
}

/* The call-time histogram's bucket of a call of `seconds`. */
static int call_bucket(double seconds)
{
    int b = 0;
    while (b < SCHED_CALL_BUCKETS && seconds * 1e3 > scheduler_call_bound_ms(b))
        b++;
    return b;
}

/* Books one step of call c (it ran from t0 to t1, beside nc − 1 others) [lock]. */
static void account_step(struct scheduler *s, const struct sched_call *c, int nc,
                         uint64_t t0, uint64_t t1)
{
    const int rows = c->rows;
    sched_record_step(s, rows, (int64_t)c->key.width * c->key.height, secs(t0, t1));
    s->stats.unet_s += secs(t0, t1); /* calls side by side: each the iteration's time */
    s->stats.unet_calls++;
    s->stats.unet_concurrent_calls += nc > 1;
    s->stats.unet_rows += (uint64_t)rows;
    s->stats.rows_hist[rows < SCHED_HIST_MAX ? rows : SCHED_HIST_MAX]++;
    s->stats.call_hist[call_bucket(secs(t0, t1))]++;
    for (int i = 0; i < c->n; i++) {
        struct sched_image *img = c->batch[i];
        struct sched_job *j = img->job;
        img->steps_done++;
        s->pending_rowsteps -= j->rows;
        j->rowsteps_left -= j->rows;
        if (img->steps_done >= j->steps) {
            img->finished = true;
            s->pending_rows -= j->rows;
        }
        j->steps_done_total++;
        if (!j->t_first_step)
            j->t_first_step = t0;
        j->t_last_step = t1;
        j->steps_left_max = job_steps_left(j);
    }
}

static int job_index(struct sched_job *const *jobs, int nj, const struct sched_job *j)
{
    for (int i = 0; i < nj; i++)
        if (jobs[i] == j)
            return i;
    return -1;
}

/* The distinct jobs of imgs[0 … n) into jobs[], in order; their count. */
static int distinct_jobs(struct sched_image *const *imgs, int n, struct sched_job **jobs)
{
    int nj = 0;
    for (int i = 0; i < n; i++)
        if (job_index(jobs, nj, imgs[i]->job) < 0)
            jobs[nj++] = imgs[i]->job;
    return nj;
}

/* Each job of call c once: its call count, rows and progress callback. */
static void report_progress(const struct sched_call *c)
{
    struct sched_job *jobs[SD_MAX_BATCH_ROWS];
    const int nj = distinct_jobs(c->batch, c->n, jobs);
    for (int i = 0; i < nj; i++) {
        struct sched_job *j = jobs[i];
        if (j->unet_calls < JOB_BATCH_SIZES_MAX)
            j->batch_sizes[j->unet_calls] = c->rows;
        j->unet_calls++;
        j->rows_sum += c->rows;
        if (j->cb.on_progress)
            j->cb.on_progress(j->cb.user, j->id, j->steps_done_total, j->steps * j->p.n);
    }
}

/* Fails every job with an image in call c, once: the distinct jobs are collected
 * first, since fail_job frees a job together with the images c->batch points into. */
static void fail_batch_jobs(struct scheduler *s, const struct sched_call *c)
{
    struct sched_job *jobs[SD_MAX_BATCH_ROWS];
    const int nj = distinct_jobs(c->batch, c->n, jobs);
    for (int i = 0; i < nj; i++)
        fail_job(s, jobs[i], &c->err);
}

/* --- 4. decode and complete ---------------------------------------------------------- */

static enum status decode_chunk(struct scheduler *s, struct sched_image **imgs, int k,
                                struct errbuf *err)
{
    struct sd_request *reqs[SD_MAX_BATCH_ROWS];
    struct sd_image out[SD_MAX_BATCH_ROWS];
    for (int i = 0; i < k; i++)
        reqs[i] = &imgs[i]->req;
    const uint64_t t0 = sched_now(s);
    const struct sched_job *j0 = imgs[0]->job;
    TRY(s->runner.decode(s->runner.ctx, j0->model, reqs, k, out, err));
    const double dt = secs(t0, sched_now(s));
    for (int i = 0; i < k; i++) {
        struct sched_job *j = imgs[i]->job;
        j->out[imgs[i]->index] = out[i];
        s->runner.release(s->runner.ctx, &imgs[i]->req);
        imgs[i]->begun = false;
        j->n_decoded++;
    }
    struct sched_job *jobs[SD_MAX_BATCH_ROWS];
    const int nj = distinct_jobs(imgs, k, jobs);
    for (int i = 0; i < nj; i++) /* each job's decode time once per call */
        jobs[i]->decode_s += dt;
    pthread_mutex_lock(&s->lock);
    sched_record_decode(s, k, dt);
    s->stats.decode_s += dt;
    s->stats.decode_calls++;
    s->stats.decoded_images += (uint64_t)k;
    pthread_mutex_unlock(&s->lock);
    return STATUS_OK;
}

/* Decodes the images of call c that finished in it, decode_batch at a time; then
 * completes the jobs with every image decoded (a failed chunk fails its jobs). */
static void decode_finished(struct scheduler *s, const struct sched_call *c, bool *worked)
{
    struct sched_image *done[SD_MAX_BATCH_ROWS];
    struct sched_job *jobs[SD_MAX_BATCH_ROWS];
    bool failed[SD_MAX_BATCH_ROWS] = {false};
    int k = 0;
    for (int i = 0; i < c->n; i++)
        if (c->batch[i]->finished)
            done[k++] = c->batch[i];
    if (k == 0) /* the usual call: nobody finished */
        return;
    const int nj = distinct_jobs(done, k, jobs);
    struct errbuf ferr;
    errbuf_clear(&ferr);
    for (int at = 0; at < k; at += s->cfg.decode_batch) {
        const int m = k - at < s->cfg.decode_batch ? k - at : s->cfg.decode_batch;
        struct errbuf err;
        *worked = true;
        if (decode_chunk(s, done + at, m, &err) == STATUS_OK)
            continue;
        ferr = err;
        for (int i = at; i < at + m; i++)
            failed[job_index(jobs, nj, done[i]->job)] = true;
    }
    for (int i = 0; i < nj; i++) {
        struct sched_job *j = jobs[i];
        if (failed[i]) {
            fail_job(s, j, &ferr);
        } else if (j->n_decoded == j->p.n) {
            pthread_mutex_lock(&s->lock);
            forget_job(s, j);
            pthread_mutex_unlock(&s->lock);
            complete_job(s, j, STATUS_OK, CANCEL_NONE, "");
        }
    }
}

/* Runs calls[0 … nc): with one lane through the runner's step; with lanes, each
 * launched on its lane, then one wait for all (a failed wait fails every call that
 * launched) [worker]. */
static void run_calls(struct scheduler *s, int nc)
{
    for (int i = 0; i < nc; i++) {
        struct sched_call *c = &s->calls[i];
        errbuf_clear(&c->err);
        c->st = s->lanes == 1
                    ? s->runner.step(s->runner.ctx, c->key.model, c->reqs, c->n, &c->err)
                    : s->runner.launch(s->runner.ctx, c->key.model, c->lane, c->reqs, c->n,
                                       &c->err);
    }
    if (s->lanes == 1)
        return;
    struct errbuf werr;
    if (s->runner.wait(s->runner.ctx, &werr) == STATUS_OK)
        return;
    for (int i = 0; i < nc; i++)
        if (s->calls[i].st == STATUS_OK) {
            s->calls[i].st = werr.code != STATUS_OK ? werr.code : STATUS_INTERNAL;
            s->calls[i].err = werr;
        }
}

/* The iteration's U-Net calls: the bucket of the most urgent running job (earliest
 * deadline, then earliest due time — a short job overtakes a long one at the next step
 * boundary, and a waiting job's due time comes), over every running image in it up to
 * the max rows; with lanes, the next buckets in that order whose lanes are free, each
 * its own call, concurrently.  Admission never waits for another bucket (no head-of-
 * line blocking).  Then each call's books, progress, decodes and completions. */
static void step_buckets(struct scheduler *s, bool *worked)
{
    const int nc = plan_calls(s);
    if (nc == 0)
        return;
    for (int i = 0; i < nc; i++)
        gather_batch(s, &s->calls[i]);
    const uint64_t t0 = sched_now(s);
    run_calls(s, nc);
    const uint64_t t1 = sched_now(s);
    atomic_store(&s->hb_ns, t1);
    *worked = true;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < nc; i++)
        if (s->calls[i].st == STATUS_OK)
            account_step(s, &s->calls[i], nc, t0, t1);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < nc; i++) {
        const struct sched_call *c = &s->calls[i];
        if (c->st != STATUS_OK) {
            fail_batch_jobs(s, c);
            continue;
        }
        report_progress(c);
        decode_finished(s, c, worked);
    }
}

/* --- the iteration ----------------------------------------------------------------------- */

static void update_gauges(struct scheduler *s, uint64_t *wake)
{
    int jobs = 0, images = 0, rows = 0, buckets = 0;
    int64_t steps_done = 0, steps_total = 0;
    const struct sched_job *seen[SCHED_MAX_BUCKETS];
    for (const struct sched_job *j = s->active; j; j = j->next) {
        jobs++;
        steps_done += j->steps_done_total;
        steps_total += (int64_t)j->steps * j->p.n;
        bool running = false;
        for (int i = 0; i < j->n_begun; i++)
            if (j->images[i].begun && !j->images[i].finished) {
                images++;
                rows += j->rows;
                running = true;
            }
        bool known = false;
        for (int b = 0; b < buckets && !known; b++)
            known = same_bucket(seen[b], j);
        if (running && !known && buckets < SCHED_MAX_BUCKETS)
            seen[buckets++] = j;
        wake_at(wake, j->deadline_ns);
    }
    for (int i = 0; i < s->queue_len; i++)
        wake_at(wake, s->queue[i]->deadline_ns);
    s->stats.active_jobs = jobs;
    s->stats.active_images = images;
    s->stats.active_rows = rows;
    s->stats.active_steps_done = steps_done;
    s->stats.active_steps_total = steps_total;
    s->stats.buckets = buckets;
    if (s->pipeline_runner)
        sched_pipeline_runner_counters(s->pipeline_runner, &s->stats);
}

enum status sched_iterate(struct scheduler *s, bool *worked, uint64_t *wake_ns,
                          struct errbuf *err)
{
    *worked = false;
    *wake_ns = 0;
    const uint64_t now = sched_now(s);
    atomic_store(&s->hb_ns, now); /* woken early from a wait: alive from now */
    TRY(run_cancellations(s, now, worked, err));
    pthread_mutex_lock(&s->lock);
    int n = s->queue_len;
    for (const struct sched_job *a = s->active; a; a = a->next)
        n++;
    enum status st = ensure_scratch(s, n, err);
    if (st == STATUS_OK)
        plan_admission(s, now, wake_ns);
    pthread_mutex_unlock(&s->lock);
    TRY(st);
    begin_admitted(s, worked);
    step_buckets(s, worked);
    const uint64_t end = sched_now(s);
    pthread_mutex_lock(&s->lock);
    update_gauges(s, wake_ns);
    if (*worked)
        s->stats.busy_s += secs(now, end);
    pthread_mutex_unlock(&s->lock);
    /* the watchdog's heartbeat; a deliberate wait (request mode's gather, a deadline)
     * is no stall until the time it waits for */
    atomic_store(&s->hb_ns, !*worked && *wake_ns > end ? *wake_ns : end);
    return st;
}
