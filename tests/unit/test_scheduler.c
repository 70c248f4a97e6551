/* tests/unit/test_scheduler.c — server/scheduler with a fake clock and a fake step
 * runner (the only place fakes are allowed, issue 4): admission (queue full, deadline,
 * the estimate), ordering (no head-of-line blocking across buckets, priority, earliest
 * deadline, longest wait), joining and leaving at step boundaries, the row limit,
 * cancellation (by id, disconnect, deadline, queued or running), request and none
 * modes, lanes (two buckets' calls in one iteration, each bucket on its own lane), and
 * a threaded burst where every admitted job completes exactly once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/scheduler.h"
#include "tests/testutil.h"

#define MS 1000000ull
#define MAX_CALLS 256
#define MAX_JOBS 256

/* --- the fakes ------------------------------------------------------------------------ */

struct fake {
    uint64_t now;                 /* the fake clock, ns */
    uint64_t per_call, per_row;   /* step cost */
    int calls;
    int call_rows[MAX_CALLS];
    int call_n[MAX_CALLS];
    uint64_t call_seed[MAX_CALLS][16]; /* seeds of the call's requests */
    int begins;
    uint64_t begin_seed[MAX_JOBS];
    int released;
    bool real_clock;              /* threaded test: costs are real sleeps */
    int fail_call;                /* > 0: U-Net call number fail_call fails (the device's
                                     error for that call, as a CUDA out-of-memory) */
    int lanes;                    /* > 0: cfg.lanes, and the runner launches and waits */
    int call_lane[MAX_CALLS];     /* the lane of each launched call */
    int iteration;                /* waits so far: the iteration of each launch … */
    int call_iteration[MAX_CALLS];
    uint64_t launched_cost;       /* the longest launched call since the last wait */
    uint64_t begin_i2i;           /* the clock's advance at an image-to-image begin (its
                                     start image's VAE encode) */
    const uint8_t *begin_image, *begin_mask; /* the last begin's params … */
    uint8_t begin_image_last, begin_mask_last; /* … and their last bytes */
    enum sd_inpaint_fill begin_fill;
    pthread_mutex_t lock;
};

static uint64_t fake_now(void *ctx)
{
    struct fake *f = ctx;
    return __atomic_load_n(&f->now, __ATOMIC_SEQ_CST);
}

static enum status fake_begin(void *ctx, int model, const struct gen_params *p, int image,
                              struct sd_request *req, struct errbuf *err)
{
    (void)model;
    (void)err;
    struct fake *f = ctx;
    memset(req, 0, sizeof *req);
    req->rows = p->guidance > 1.0 ? 2 : 1;
    req->width = p->width;
    req->height = p->height;
    req->seed = p->seed + (uint64_t)image;
    if (p->init_image)
        __atomic_add_fetch(&f->now, f->begin_i2i, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&f->lock);
    const size_t pixels = (size_t)p->width * (size_t)p->height;
    f->begin_image = p->init_image;
    f->begin_mask = p->init_mask;
    f->begin_image_last = p->init_image ? p->init_image[pixels * 3 - 1] : 0;
    f->begin_mask_last = p->init_mask ? p->init_mask[pixels - 1] : 0;
    f->begin_fill = p->inpaint_fill;
    if (f->begins < MAX_JOBS)
        f->begin_seed[f->begins] = req->seed;
    f->begins++;
    pthread_mutex_unlock(&f->lock);
    return STATUS_OK;
}

/* Records a call of reqs[0 … n) on `lane` (its rows, seeds, iteration); whether it is
 * the one to fail (fail_call).  Its cost goes to *cost. */
static bool fake_record_call(struct fake *f, struct sd_request *const *reqs, int n, int lane,
                             uint64_t *cost)
{
    int rows = 0;
    for (int i = 0; i < n; i++)
        rows += reqs[i]->rows;
    pthread_mutex_lock(&f->lock);
    if (f->calls < MAX_CALLS) {
        f->call_rows[f->calls] = rows;
        f->call_n[f->calls] = n;
        f->call_lane[f->calls] = lane;
        f->call_iteration[f->calls] = f->iteration;
        for (int i = 0; i < n && i < 16; i++)
            f->call_seed[f->calls][i] = reqs[i]->seed;
    }
    f->calls++;
    const bool fail = f->calls == f->fail_call;
    pthread_mutex_unlock(&f->lock);
    *cost = f->per_call + f->per_row * (uint64_t)rows;
    return fail;
}

static enum status fake_step(void *ctx, int model, struct sd_request *const *reqs, int n,
                             struct errbuf *err)
{
    (void)model;
    struct fake *f = ctx;
    uint64_t cost;
    if (fake_record_call(f, reqs, n, 0, &cost))
        return status_fail(err, STATUS_DEVICE, "fake step: the device failed this call");
    if (f->real_clock)
        usleep((useconds_t)(cost / 1000));
    else
        __atomic_add_fetch(&f->now, cost, __ATOMIC_SEQ_CST);
    return STATUS_OK;
}

/* Concurrent calls: recorded as fake_step does, but the clock moves at the wait, by
 * the longest call launched since the last one (they ran side by side). */
static enum status fake_launch(void *ctx, int model, int lane, struct sd_request *const *reqs,
                               int n, struct errbuf *err)
{
    (void)model;
    struct fake *f = ctx;
    uint64_t cost;
    const bool fail = fake_record_call(f, reqs, n, lane, &cost);
    pthread_mutex_lock(&f->lock);
    if (!fail && cost > f->launched_cost)
        f->launched_cost = cost;
    pthread_mutex_unlock(&f->lock);
    return fail ? status_fail(err, STATUS_DEVICE, "fake launch: the device failed this call")
                : STATUS_OK;
}

static enum status fake_wait(void *ctx, struct errbuf *err)
{
    (void)err;
    struct fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    __atomic_add_fetch(&f->now, f->launched_cost, __ATOMIC_SEQ_CST);
    f->launched_cost = 0;
    f->iteration++;
    pthread_mutex_unlock(&f->lock);
    return STATUS_OK;
}

static enum status fake_decode(void *ctx, int model, struct sd_request *const *reqs, int n,
                               struct sd_image *images, struct errbuf *err)
{
    (void)ctx;
    (void)model;
    (void)err;
    for (int i = 0; i < n; i++) {
        images[i] = (struct sd_image){.width = 1, .height = 1, .seed = reqs[i]->seed};
        images[i].rgb = calloc(3, 1);
    }
    return STATUS_OK;
}

static void fake_release(void *ctx, struct sd_request *req)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    f->released++;
    pthread_mutex_unlock(&f->lock);
    memset(req, 0, sizeof *req);
}

static const struct sched_runner FAKE_RUNNER = {
    .begin = fake_begin, .step = fake_step, .decode = fake_decode, .release = fake_release};

/* Completion records, by job id. */
struct record {
    pthread_mutex_t lock;
    int complete[MAX_JOBS];     /* on_complete calls */
    enum status status[MAX_JOBS];
    enum cancel_reason reason[MAX_JOBS];
    int progress[MAX_JOBS];     /* last steps_done */
    int complete_call[MAX_JOBS]; /* fake->calls when it completed */
    struct job_metrics metrics[MAX_JOBS];
    int n_images[MAX_JOBS];
    struct fake *fake;
    struct scheduler *sched;
    uint64_t cancel_at_progress_id; /* cancel this job from its progress callback … */
    int cancel_at_step;             /* … when it reaches this many steps */
};

static void on_progress(void *user, uint64_t id, int done, int total)
{
    struct record *r = user;
    (void)total;
    pthread_mutex_lock(&r->lock);
    r->progress[id % MAX_JOBS] = done;
    const bool cancel = id == r->cancel_at_progress_id && done == r->cancel_at_step;
    pthread_mutex_unlock(&r->lock);
    if (cancel)
        ck_assert_int_eq(scheduler_cancel(r->sched, id, CANCEL_CLIENT, NULL), STATUS_OK);
}

static void on_complete(void *user, struct job_result *res)
{
    struct record *r = user;
    pthread_mutex_lock(&r->lock);
    const uint64_t id = res->job_id % MAX_JOBS;
    r->complete[id]++;
    r->status[id] = res->status;
    r->reason[id] = res->cancel_reason;
    r->complete_call[id] = r->fake->calls;
    r->metrics[id] = res->metrics;
    r->n_images[id] = res->n_images;
    pthread_mutex_unlock(&r->lock);
}

static struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    f->now = 1000 * MS;
    f->per_call = 40 * MS;
    f->per_row = 10 * MS;
    return f;
}

static struct record *record_new(struct fake *f)
{
    struct record *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->fake = f;
    return r;
}

static const struct sd_model *const DUMMY_MODEL = (const struct sd_model *)&FAKE_RUNNER;

static struct scheduler *make_sched(struct fake *f, enum sched_mode mode, int max_rows,
                                    int queue_cap, struct record *rec)
{
    static struct sched_runner runner;
    struct scheduler_config cfg;
    scheduler_config_default(&cfg);
    cfg.models[0] = DUMMY_MODEL;
    cfg.n_models = 1;
    cfg.mode = mode;
    cfg.max_batch_rows = max_rows;
    cfg.queue_capacity = queue_cap;
    cfg.request_max_wait_ms = 100;
    cfg.decode_batch = 2;
    if (!f->real_clock)
        cfg.clock = (struct sched_clock){.now_ns = fake_now, .ctx = f};
    runner = FAKE_RUNNER;
    runner.ctx = f;
    if (f->lanes > 0) {
        runner.launch = fake_launch;
        runner.wait = fake_wait;
        cfg.lanes = f->lanes;
    }
    cfg.runner = &runner;
    struct scheduler *s;
    struct errbuf err;
    ck_assert_msg(scheduler_create(&cfg, &s, &err) == STATUS_OK, "%s", err.msg);
    rec->sched = s;
    return s;
}

static struct gen_params params(uint64_t seed, int steps, double guidance, int w, int h)
{
    struct gen_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "a cube";
    p.seed = seed;
    p.steps = steps;
    p.guidance = guidance;
    p.width = w;
    p.height = h;
    p.n = 1;
    return p;
}

static uint64_t submit(struct scheduler *s, struct record *rec, struct gen_params p,
                       int64_t deadline_ms, int priority)
{
    const struct job_callbacks cb = {.on_progress = on_progress, .on_complete = on_complete,
                                     .user = rec};
    const struct submit_options opt = {.deadline_ms = deadline_ms, .priority = priority};
    uint64_t id = 0;
    struct admission adm;
    struct errbuf err;
    ck_assert_msg(scheduler_submit(s, &p, &cb, &opt, &id, &adm, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(adm.reason, ADMIT_OK);
    return id;
}

static void poll1(struct scheduler *s)
{
    struct errbuf err;
    ck_assert_msg(scheduler_poll(s, NULL, NULL, &err) == STATUS_OK, "%s", err.msg);
}

static bool call_has(const struct fake *f, int call, uint64_t seed)
{
    for (int i = 0; i < f->call_n[call]; i++)
        if (f->call_seed[call][i] == seed)
            return true;
    return false;
}

static void teardown(struct scheduler *s, struct fake *f, struct record *r)
{
    scheduler_destroy(s);
    ck_assert_int_eq(f->released, f->begins); /* every begun request released */
    free(f);
    free(r);
}

/* --- joining and leaving ------------------------------------------------------------ */

START_TEST(test_join_and_leave)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 16, 8, r);
    /* A's deadline puts it first in the call; B joins since A keeps it */
    const uint64_t a = submit(s, r, params(100, 4, 7.5, 64, 64), 10000, 0);
    poll1(s); /* A admitted, its step 1 */
    const uint64_t b = submit(s, r, params(200, 2, 1.0, 64, 64), 0, 0);
    poll1(s); /* B joins: A step 2, B step 1 */
    struct scheduler_stats mid; /* the running jobs' steps (A1111's /progress) */
    scheduler_stats(s, &mid);
    ck_assert_int_eq(mid.active_jobs, 2);
    ck_assert_int_eq(mid.active_steps_done, 3);
    ck_assert_int_eq(mid.active_steps_total, 6);
    /* the backlog: A's 2 steps × 2 rows + B's 1 × 1 = 5 row-steps at 3 rows a call,
     * measured at 70 ms (40 + 10 a row) */
    ck_assert_double_eq_tol(mid.backlog_s, 5 * 0.070 / 3, 1e-9);
    poll1(s); /* A 3, B 2 → B leaves, decoded, completes */
    ck_assert_int_eq(r->complete[b], 1);
    ck_assert_int_eq(r->complete[a], 0);
    poll1(s); /* A 4 alone */
    ck_assert_int_eq(f->calls, 4);
    const int want_rows[4] = {2, 3, 3, 2};
    for (int c = 0; c < 4; c++)
        ck_assert_int_eq(f->call_rows[c], want_rows[c]);
    ck_assert(!call_has(f, 0, 200) && call_has(f, 1, 200) && call_has(f, 2, 200) &&
              !call_has(f, 3, 200));
    ck_assert_int_eq(r->complete[a], 1);
    ck_assert_int_eq(r->status[a], STATUS_OK);
    ck_assert_int_eq(r->n_images[a], 1);
    ck_assert_int_eq(r->progress[a], 4);
    ck_assert_int_eq(r->metrics[a].unet_calls, 4);
    ck_assert_double_eq_tol(r->metrics[a].mean_batch_rows, 2.5, 1e-9);
    ck_assert_int_eq(r->metrics[b].unet_calls, 2);
    struct scheduler_stats st;
    scheduler_stats(s, &st);
    ck_assert_uint_eq(st.unet_calls, 4);
    ck_assert_uint_eq(st.unet_rows, 10);
    ck_assert_uint_eq(st.rows_hist[2], 2);
    ck_assert_uint_eq(st.rows_hist[3], 2);
    ck_assert_double_eq_tol(st.mean_rows, 2.5, 1e-9);
    /* step time EWMA per batch size, from the fake cost (40 ms + 10 ms/row) */
    ck_assert_double_eq_tol(st.step_ewma_s[2], 0.060, 1e-9);
    ck_assert_double_eq_tol(st.step_ewma_s[3], 0.070, 1e-9);
    /* the call-time histogram: 60 and 70 ms calls, all in (50, 100] ms */
    ck_assert_uint_eq(st.call_hist[7], 0);
    ck_assert_uint_eq(st.call_hist[8], 4);
    ck_assert_uint_eq(st.call_hist[9], 0);
    ck_assert_uint_eq(st.completed_ok, 2);
    ck_assert_int_eq(st.active_rows, 0);
    ck_assert_int_eq(st.active_steps_total, 0);
    ck_assert_double_eq(st.backlog_s, 0.0);
    teardown(s, f, r);
}
END_TEST

/* n > 1: one request per image; the row limit holds newcomers back until rows free. */
START_TEST(test_row_limit_and_images)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 4, 8, r);
    struct gen_params p = params(10, 3, 5.0, 64, 64);
    p.n = 2; /* 2 images × 2 rows: fills the 4 rows */
    const uint64_t a = submit(s, r, p, 0, 0);
    /* 8 steps: due after A (2 × 8 × 0.1 s > 2 × 3 × 0.2 s), so A goes first */
    const uint64_t b = submit(s, r, params(50, 8, 5.0, 64, 64), 0, 0);
    poll1(s);
    ck_assert_int_eq(f->call_rows[0], 4);
    ck_assert(call_has(f, 0, 10) && call_has(f, 0, 11) && !call_has(f, 0, 50));
    poll1(s);
    poll1(s); /* A's images finish */
    ck_assert_int_eq(r->complete[a], 1);
    ck_assert_int_eq(r->n_images[a], 2);
    poll1(s); /* B joins now */
    ck_assert(call_has(f, 3, 50));
    ck_assert_int_eq(f->call_rows[3], 2);
    for (int i = 0; i < 7; i++)
        poll1(s);
    ck_assert_int_eq(r->complete[b], 1);
    for (int c = 0; c < f->calls; c++)
        ck_assert_int_le(f->call_rows[c], 4);
    teardown(s, f, r);
}
END_TEST

/* A CFG request is 2 rows even when the limit is 1: it runs alone rather than never. */
START_TEST(test_request_wider_than_limit)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 1, 8, r);
    const uint64_t a = submit(s, r, params(1, 2, 7.5, 64, 64), 0, 0);
    const uint64_t b = submit(s, r, params(2, 2, 1.0, 64, 64), 0, 0);
    for (int i = 0; i < 4; i++)
        poll1(s);
    ck_assert_int_eq(r->status[a], STATUS_OK);
    ck_assert_int_eq(r->complete[a], 1);
    ck_assert_int_eq(r->complete[b], 1);
    for (int c = 0; c < f->calls; c++)
        ck_assert_int_eq(f->call_n[c], 1);
    teardown(s, f, r);
}
END_TEST

/* --- ordering ----------------------------------------------------------------------- */

START_TEST(test_no_head_of_line_blocking)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 2, 8, r);
    const uint64_t a = submit(s, r, params(1, 5, 7.5, 64, 64), 0, 0); /* fills 64x64 */
    poll1(s);                                                          /* A's step 1 */
    const uint64_t b = submit(s, r, params(2, 2, 7.5, 64, 64), 0, 0); /* waits for A */
    const uint64_t c = submit(s, r, params(3, 2, 7.5, 96, 64), 0, 0); /* other bucket */
    poll1(s);
    ck_assert_int_eq(f->begins, 2); /* C began although B (ahead of it) waits: admission
                                       skips the full bucket */
    ck_assert_uint_eq(f->begin_seed[1], 3);
    poll1(s);
    ck_assert_int_eq(r->complete[c], 1); /* C (due first: 2 steps) did not wait for A */
    ck_assert_int_eq(r->complete_call[c], 3);
    ck_assert(call_has(f, 1, 3) && call_has(f, 2, 3));
    ck_assert_int_eq(r->complete[a], 0);
    for (int i = 0; i < 10; i++)
        poll1(s);
    ck_assert_int_eq(r->complete_call[a], 7);
    ck_assert_int_eq(r->complete[b], 1); /* B waited for A's rows only */
    ck_assert_int_eq(r->complete_call[b], 9);
    teardown(s, f, r);
}
END_TEST

/* A less urgent job joins a call only if the jobs already in it still finish by their
 * due times at the bigger call's measured cost: on a GPU-like cost (40 ms a call + 1 ms
 * a row) the long job joins the short one at once; on a CPU-like cost (30 ms a row) it
 * waits until the short one's slack allows it. */
static void join_case(uint64_t per_call, uint64_t per_row, bool expect_join)
{
    struct fake *f = fake_new();
    f->per_call = per_call;
    f->per_row = per_row;
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 16, 8, r);
    submit(s, r, params(1, 1, 7.5, 64, 64), 0, 0);
    poll1(s); /* the cost at 2 rows measured */
    for (uint64_t i = 0; i < 3; i++)
        submit(s, r, params(2 + i, 1, 7.5, 64, 64), 0, 0);
    poll1(s); /* … and at 6 */
    ck_assert_int_eq(f->call_rows[1], 6);
    struct gen_params lp = params(10, 20, 7.5, 64, 64);
    lp.n = 2;
    const uint64_t l = submit(s, r, lp, 0, 0); /* 4 rows */
    poll1(s);
    const uint64_t t_sh = f->now;
    const uint64_t sh = submit(s, r, params(20, 4, 7.5, 64, 64), 0, 0);
    for (int i = 0; i < 4; i++)
        poll1(s);
    ck_assert_int_eq(r->complete[sh], 1);
    ck_assert_int_eq(r->complete_call[sh], 7);
    /* the short job finished within its due time: 2 × its 4 steps alone */
    ck_assert_uint_le(f->now - t_sh, 2 * 4 * (per_call + 2 * per_row));
    for (int c = 3; c < 7; c++)
        ck_assert(call_has(f, c, 20));
    if (expect_join) {
        for (int c = 3; c < 7; c++)
            ck_assert_int_eq(f->call_rows[c], 6);
    } else { /* the long job waits while joining would make the short one late, then
                joins with the slack left */
        ck_assert_int_eq(f->call_rows[3], 2);
        ck_assert_int_eq(f->call_rows[6], 6);
    }
    for (int i = 0; i < 40 && !r->complete[l]; i++)
        poll1(s);
    ck_assert_int_eq(r->complete[l], 1);
    teardown(s, f, r);
}

START_TEST(test_join_keeps_due_times)
{
    join_case(40 * MS, 1 * MS, true);
    join_case(0, 30 * MS, false);
}
END_TEST

/* One bucket per U-Net call, chosen by due time: a short job arriving later in another
 * bucket overtakes a running long one at the next step boundary; the long one is not
 * starved by a stream of short ones, since its due time comes. */
START_TEST(test_short_overtakes_long_without_starving_it)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 2, 200, r);
    /* long: 20 steps × 2 rows at the initial guess 0.05 s a row → alone 2 s, due 4 s
     * after its submit; a call costs 60 ms (40 + 10 a row) */
    const uint64_t t0 = f->now;
    const uint64_t l = submit(s, r, params(1, 20, 7.5, 96, 96), 0, 0);
    poll1(s);
    poll1(s);
    const uint64_t sh = submit(s, r, params(2, 2, 7.5, 64, 64), 0, 0);
    poll1(s);
    poll1(s);
    ck_assert_int_eq(r->complete[sh], 1); /* its two steps came next */
    ck_assert_int_eq(r->complete_call[sh], 4);
    ck_assert_int_eq(r->progress[l], 2);
    /* a short job (2 calls) arrives every other call, each due later than the one
     * before: the shorts go first until they are due after the long job, which then
     * runs to its end */
    uint64_t shorts[200];
    int n = 0;
    for (int call = 0; !r->complete[l] && n < 190; call++) {
        if (call % 2 == 0) {
            shorts[n] = submit(s, r, params(100 + (uint64_t)n, 2, 7.5, 64, 64), 0, 0);
            n++;
        }
        poll1(s);
    }
    ck_assert_int_eq(r->complete[l], 1);
    ck_assert_uint_ge(f->now, t0 + 3500 * MS);
    ck_assert_uint_le(f->now, t0 + 4000 * MS + 19 * 60 * MS + 240 * MS);
    for (int i = 0; i < 400 && !r->complete[shorts[n - 1] % MAX_JOBS]; i++)
        poll1(s);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(r->complete[shorts[i] % MAX_JOBS], 1);
    teardown(s, f, r);
}
END_TEST

START_TEST(test_priority_deadline_then_wait)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 2, 8, r);
    submit(s, r, params(1, 1, 7.5, 64, 64), 0, 0); /* runs first, alone */
    poll1(s);
    submit(s, r, params(2, 1, 7.5, 64, 64), 0, 0);         /* oldest, no deadline */
    f->now += MS;
    submit(s, r, params(3, 1, 7.5, 64, 64), 0, 0);         /* younger, no deadline */
    submit(s, r, params(4, 1, 7.5, 64, 64), 60000, 0);     /* a late deadline */
    submit(s, r, params(5, 1, 7.5, 64, 64), 30000, 0);     /* an earlier deadline */
    submit(s, r, params(6, 1, 7.5, 64, 64), 0, 1);         /* priority */
    for (int i = 0; i < 5; i++)
        poll1(s); /* one at a time (2 rows each) */
    const uint64_t want[6] = {1, 6, 5, 4, 2, 3};
    ck_assert_int_eq(f->begins, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(f->begin_seed[i], want[i]);
    teardown(s, f, r);
}
END_TEST

/* --- cancellation --------------------------------------------------------------------- */

START_TEST(test_cancel_running_and_queued)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 4, 8, r);
    const uint64_t a = submit(s, r, params(1, 6, 7.5, 64, 64), 0, 0);
    const uint64_t b = submit(s, r, params(2, 6, 7.5, 64, 64), 0, 0);
    const uint64_t c = submit(s, r, params(3, 6, 7.5, 64, 64), 0, 0); /* queued: rows full */
    poll1(s);
    poll1(s);
    ck_assert_int_eq(scheduler_cancel(s, b, CANCEL_CLIENT, NULL), STATUS_OK);
    ck_assert_int_eq(scheduler_disconnect(s, c, NULL), STATUS_OK);
    poll1(s); /* B's slot is free at this step boundary: C is gone too */
    ck_assert_int_eq(r->complete[b], 1);
    ck_assert_int_eq(r->status[b], STATUS_CANCELLED);
    ck_assert_int_eq(r->reason[b], CANCEL_CLIENT);
    ck_assert_int_eq(r->metrics[b].steps_done, 2);
    ck_assert_int_eq(r->complete[c], 1);
    ck_assert_int_eq(r->reason[c], CANCEL_DISCONNECT);
    ck_assert_int_eq(r->metrics[c].unet_calls, 0);
    ck_assert_int_eq(f->call_rows[2], 2); /* only A in the next call */
    ck_assert(!call_has(f, 2, 2));
    struct errbuf err;
    ck_assert_int_eq(scheduler_cancel(s, b, CANCEL_CLIENT, &err), STATUS_NOT_FOUND);
    for (int i = 0; i < 4; i++)
        poll1(s);
    ck_assert_int_eq(r->complete[a], 1);
    ck_assert_int_eq(r->status[a], STATUS_OK);
    struct scheduler_stats st;
    scheduler_stats(s, &st);
    ck_assert_uint_eq(st.cancelled, 2);
    teardown(s, f, r);
}
END_TEST

/* Cancelled from its own progress callback (the worker thread): not one more step. */
START_TEST(test_cancel_from_callback)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 8, 8, r);
    const uint64_t a = submit(s, r, params(1, 5, 7.5, 64, 64), 0, 0);
    const uint64_t b = submit(s, r, params(2, 5, 7.5, 64, 64), 0, 0);
    r->cancel_at_progress_id = b;
    r->cancel_at_step = 2;
    for (int i = 0; i < 6; i++)
        poll1(s);
    ck_assert_int_eq(r->status[b], STATUS_CANCELLED);
    ck_assert_int_eq(r->metrics[b].steps_done, 2);
    ck_assert(call_has(f, 1, 2) && !call_has(f, 2, 2));
    ck_assert_int_eq(r->status[a], STATUS_OK);
    teardown(s, f, r);
}
END_TEST

START_TEST(test_deadline_expiry)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 8, 8, r);
    /* 60 ms a step: 10 steps need 600 ms; the first guess (50 ms/row) admits 2 s */
    const uint64_t a = submit(s, r, params(1, 10, 7.5, 64, 64), 2000, 0);
    poll1(s);
    f->now += 1990 * MS; /* a stall: the deadline passes mid-way */
    poll1(s);
    ck_assert_int_eq(r->complete[a], 1);
    ck_assert_int_eq(r->status[a], STATUS_CANCELLED);
    ck_assert_int_eq(r->reason[a], CANCEL_DEADLINE);
    ck_assert_int_eq(r->metrics[a].steps_done, 1);
    teardown(s, f, r);
}
END_TEST

/* --- admission ------------------------------------------------------------------------ */

START_TEST(test_admission_queue_full)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 2, 2, r);
    submit(s, r, params(1, 10, 7.5, 64, 64), 0, 0);
    poll1(s); /* running; its step cost is measured */
    submit(s, r, params(2, 10, 7.5, 64, 64), 0, 0);
    submit(s, r, params(3, 10, 7.5, 64, 64), 0, 0);
    struct gen_params p = params(4, 10, 7.5, 64, 64);
    const struct job_callbacks cb = {.on_complete = on_complete, .user = r};
    struct admission adm;
    struct errbuf err;
    ck_assert_int_eq(scheduler_submit(s, &p, &cb, NULL, NULL, &adm, &err), STATUS_BUSY);
    ck_assert_int_eq(adm.reason, ADMIT_QUEUE_FULL);
    ck_assert_int_eq(adm.queue_depth, 2);
    /* the running job has 9 steps of 60 ms left */
    ck_assert_int_eq(adm.retry_after_ms, 540);
    ck_assert_msg(strstr(err.msg, "queue_full") != NULL, "%s", err.msg);
    struct scheduler_stats st;
    scheduler_stats(s, &st);
    ck_assert_uint_eq(st.rejected_queue_full, 1);
    ck_assert_int_eq(st.queue_depth, 2);
    teardown(s, f, r); /* the two queued ones are cancelled (shutdown), once each */
    (void)0;
}
END_TEST

START_TEST(test_admission_deadline_and_estimate)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 8, 8, r);
    const uint64_t a = submit(s, r, params(1, 10, 7.5, 64, 64), 0, 0);
    poll1(s); /* measured: 2 rows → 60 ms */
    /* a second CFG job of 10 steps: the batch will be 4 rows (80 ms), work ahead
     * 9·2 + 10·2 = 38 row-steps → 38 · 80/4 ms = 760 ms; its own 10 · 80 ms = 800 ms */
    struct gen_params p = params(2, 10, 7.5, 64, 64);
    const struct job_callbacks cb = {.on_complete = on_complete, .user = r};
    struct submit_options opt = {.deadline_ms = 500};
    struct admission adm;
    struct errbuf err;
    ck_assert_int_eq(scheduler_submit(s, &p, &cb, &opt, NULL, &adm, &err), STATUS_TIMEOUT);
    ck_assert_int_eq(adm.reason, ADMIT_DEADLINE);
    /* 4 rows never measured: scaled from 2 rows, 120 ms → 1.2 s expected */
    ck_assert_double_eq_tol(adm.expected_s, 1.2, 1e-9);
    ck_assert_int_eq(adm.retry_after_ms, 700);
    opt.deadline_ms = 5000;
    uint64_t b;
    ck_assert_int_eq(scheduler_submit(s, &p, &cb, &opt, &b, &adm, &err), STATUS_OK);
    const uint64_t t_submit = f->now;
    for (int i = 0; i < 12; i++)
        poll1(s);
    ck_assert_int_eq(r->status[b], STATUS_OK);
    ck_assert_int_eq(r->status[a], STATUS_OK);
    const double actual = (double)(f->now - t_submit) * 1e-9;
    printf("admission estimate %.3f s, actual %.3f s\n", adm.expected_s, actual);
    ck_assert(adm.expected_s >= actual * 0.9); /* conservative, not wildly so */
    ck_assert(adm.expected_s <= actual * 2.0);
    struct scheduler_stats st;
    scheduler_stats(s, &st);
    ck_assert_uint_eq(st.rejected_deadline, 1);
    teardown(s, f, r);
}
END_TEST

/* The estimate of an image-to-image job (deadline refusals, due times) counts its start
 * image's VAE encode at the seconds per pixel measured on earlier begins: nothing
 * before one was measured, 40 ms per 64² image after. */
static double estimate(struct scheduler *s, struct record *r, struct gen_params p)
{
    const struct job_callbacks cb = {.on_complete = on_complete, .user = r};
    const struct submit_options opt = {.deadline_ms = 1};
    struct admission adm;
    struct errbuf err;
    ck_assert_int_eq(scheduler_submit(s, &p, &cb, &opt, NULL, &adm, &err), STATUS_TIMEOUT);
    return adm.expected_s;
}

START_TEST(test_admission_counts_start_encodes)
{
    struct fake *f = fake_new();
    f->begin_i2i = 40 * MS;
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 8, 8, r);
    static uint8_t start[96 * 64 * 3];
    struct gen_params t2i = params(1, 10, 7.5, 64, 64), i2i = t2i;
    i2i.init_image = start;
    i2i.strength = 1.0; /* the same 10 steps */
    ck_assert_double_eq_tol(estimate(s, r, i2i), estimate(s, r, t2i), 1e-12);
    const uint64_t a = submit(s, r, i2i, 0, 0);
    poll1(s); /* begun (40 ms measured) and stepped */
    const double e_t = estimate(s, r, t2i), e_i = estimate(s, r, i2i);
    printf("estimate: txt2img %.3f s, img2img %.3f s\n", e_t, e_i);
    ck_assert_double_eq_tol(e_i - e_t, 0.040, 1e-9);
    struct gen_params wide = i2i; /* 1.5× the pixels: 60 ms */
    wide.width = 96;
    struct gen_params wide_t = t2i;
    wide_t.width = 96;
    ck_assert_double_eq_tol(estimate(s, r, wide) - estimate(s, r, wide_t), 0.060, 1e-9);
    for (int i = 0; i < 12; i++)
        poll1(s);
    ck_assert_int_eq(r->status[a], STATUS_OK);
    teardown(s, f, r);
}
END_TEST

/* The job copies the start image and the mask (width·height bytes) at submit: the
 * caller's buffers may change or go right after; the fill is kept. */
START_TEST(test_submit_copies_image_and_mask)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 8, 8, r);
    uint8_t *image = malloc(96 * 64 * 3), *mask = malloc(96 * 64);
    ck_assert(image && mask);
    memset(image, 11, 96 * 64 * 3);
    memset(mask, 222, 96 * 64);
    struct gen_params p = params(1, 4, 7.5, 96, 64);
    p.init_image = image;
    p.init_mask = mask;
    p.inpaint_fill = SD_FILL_LATENT_NOISE;
    p.strength = 1.0;
    const uint64_t a = submit(s, r, p, 0, 0);
    memset(image, 0, 96 * 64 * 3);
    memset(mask, 0, 96 * 64);
    poll1(s); /* begun */
    ck_assert_ptr_nonnull(f->begin_mask);
    ck_assert_ptr_ne(f->begin_mask, mask);
    ck_assert_ptr_ne(f->begin_image, image);
    free(image);
    free(mask);
    ck_assert_int_eq(f->begin_image_last, 11);
    ck_assert_int_eq(f->begin_mask_last, 222);
    ck_assert_int_eq(f->begin_fill, SD_FILL_LATENT_NOISE);
    for (int i = 0; i < 8; i++)
        poll1(s);
    ck_assert_int_eq(r->status[a], STATUS_OK);
    teardown(s, f, r);
}
END_TEST

START_TEST(test_draining_rejects)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 8, 8, r);
    const uint64_t a = submit(s, r, params(1, 3, 7.5, 64, 64), 0, 0);
    struct errbuf err;
    ck_assert_msg(scheduler_drain(s, -1, &err) == STATUS_OK, "%s", err.msg); /* polls here */
    ck_assert_int_eq(r->complete[a], 1);
    ck_assert_int_eq(r->status[a], STATUS_OK);
    struct gen_params p = params(2, 3, 7.5, 64, 64);
    const struct job_callbacks cb = {.on_complete = on_complete, .user = r};
    struct admission adm;
    ck_assert_int_eq(scheduler_submit(s, &p, &cb, NULL, NULL, &adm, &err), STATUS_BUSY);
    ck_assert_int_eq(adm.reason, ADMIT_DRAINING);
    teardown(s, f, r);
}
END_TEST

/* --- modes ------------------------------------------------------------------------------- */

START_TEST(test_request_mode)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_REQUEST, 8, 8, r);
    const uint64_t a = submit(s, r, params(1, 4, 7.5, 64, 64), 0, 0);
    bool worked = true;
    uint64_t wake = 0;
    ck_assert_int_eq(scheduler_poll(s, &worked, &wake, NULL), STATUS_OK);
    ck_assert(!worked);                       /* gathering */
    ck_assert_uint_eq(wake, f->now + 100 * MS); /* until the max wait */
    f->now += 50 * MS;
    const uint64_t b = submit(s, r, params(2, 2, 7.5, 64, 64), 0, 0);
    f->now += 50 * MS;
    poll1(s); /* the oldest waited 100 ms: A and B start together */
    ck_assert_int_eq(f->call_rows[0], 4);
    const uint64_t c = submit(s, r, params(3, 2, 7.5, 64, 64), 0, 0);
    poll1(s); /* B finishes; C does not join the running batch */
    ck_assert_int_eq(r->complete[b], 1);
    poll1(s);
    ck_assert(!call_has(f, 2, 3));
    ck_assert_int_eq(f->call_rows[2], 2);
    poll1(s); /* A's last step */
    ck_assert_int_eq(r->complete[a], 1);
    f->now += 200 * MS;
    poll1(s);
    poll1(s);
    ck_assert_int_eq(r->complete[c], 1);
    /* a full batch does not wait */
    for (int i = 0; i < 4; i++)
        submit(s, r, params(10 + (uint64_t)i, 1, 7.5, 64, 64), 0, 0);
    const int before = f->calls;
    poll1(s);
    ck_assert_int_eq(f->calls, before + 1);
    ck_assert_int_eq(f->call_rows[before], 8);
    teardown(s, f, r);
}
END_TEST

START_TEST(test_none_mode)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_NONE, 8, 8, r);
    const uint64_t a = submit(s, r, params(1, 3, 7.5, 64, 64), 0, 0);
    const uint64_t b = submit(s, r, params(2, 2, 1.0, 64, 64), 0, 0);
    for (int i = 0; i < 5; i++)
        poll1(s);
    ck_assert_int_eq(f->calls, 5);
    for (int c = 0; c < 5; c++)
        ck_assert_int_eq(f->call_n[c], 1);
    ck_assert_int_eq(r->complete[a], 1);
    ck_assert_int_eq(r->complete[b], 1);
    ck_assert_int_eq(r->complete_call[a], 3); /* first come, first served: the shorter B */
    ck_assert_int_eq(r->complete_call[b], 5); /* does not overtake A in mode none */
    teardown(s, f, r);
}
END_TEST

START_TEST(test_config_validation)
{
    struct scheduler_config cfg;
    scheduler_config_default(&cfg);
    struct scheduler *s;
    struct errbuf err;
    ck_assert_int_eq(scheduler_create(&cfg, &s, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strncmp(err.msg, "models", 6) == 0, "%s", err.msg);
    cfg.models[0] = DUMMY_MODEL;
    cfg.n_models = 1;
    cfg.runner = &FAKE_RUNNER;
    cfg.max_batch_rows = SD_MAX_BATCH_ROWS + 1;
    ck_assert_int_eq(scheduler_create(&cfg, &s, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strncmp(err.msg, "max_batch_rows", 14) == 0, "%s", err.msg);
    cfg.max_batch_rows = 0;
    cfg.lanes = 2; /* the fake runner has no launch */
    ck_assert_int_eq(scheduler_create(&cfg, &s, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strncmp(err.msg, "lanes", 5) == 0, "%s", err.msg);
    cfg.lanes = BACKEND_LANES_MAX + 1;
    ck_assert_int_eq(scheduler_create(&cfg, &s, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strncmp(err.msg, "lanes", 5) == 0, "%s", err.msg);
    enum sched_mode m;
    ck_assert_int_eq(sched_mode_parse("request", &m, NULL), STATUS_OK);
    ck_assert_int_eq(m, SCHED_MODE_REQUEST);
    ck_assert_int_eq(sched_mode_parse("bogus", &m, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strncmp(err.msg, "batching", 8) == 0, "%s", err.msg);
}
END_TEST

/* --- threads: a burst, cancellations from another thread, drain ------------------------ */

struct burst_ctx {
    struct scheduler *s;
    uint64_t ids[MAX_JOBS];
    int n;
};

static void *canceller(void *arg)
{
    struct burst_ctx *b = arg;
    for (int i = 0; i < __atomic_load_n(&b->n, __ATOMIC_ACQUIRE); i += 7) {
        scheduler_cancel(b->s, b->ids[i], CANCEL_CLIENT, NULL);
        struct scheduler_stats st;
        scheduler_stats(b->s, &st);
        usleep(200);
    }
    return NULL;
}

START_TEST(test_threaded_burst)
{
    struct fake *f = fake_new();
    f->real_clock = true;
    f->per_call = 200000; /* 0.2 ms */
    f->per_row = 20000;
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 8, 200, r);
    struct errbuf err;
    ck_assert_int_eq(scheduler_start(s, &err), STATUS_OK);
    static struct burst_ctx b;
    memset(&b, 0, sizeof b);
    b.s = s;
    struct test_rng rng = test_rng_make(7);
    pthread_t t;
    for (int i = 0; i < 150; i++) {
        struct gen_params p = params((uint64_t)i, test_rng_int(&rng, 1, 12),
                                     test_rng_int(&rng, 0, 1) ? 7.5 : 1.0,
                                     test_rng_int(&rng, 0, 1) ? 64 : 96, 64);
        p.n = test_rng_int(&rng, 1, 3);
        b.ids[b.n] = submit(s, r, p, 0, test_rng_int(&rng, 0, 1));
        __atomic_store_n(&b.n, b.n + 1, __ATOMIC_RELEASE);
        if (i == 20)
            pthread_create(&t, NULL, canceller, &b);
    }
    pthread_join(t, NULL);
    ck_assert_msg(scheduler_drain(s, -1, &err) == STATUS_OK, "%s", err.msg);
    int ok = 0, cancelled = 0;
    for (int i = 0; i < b.n; i++) {
        ck_assert_int_eq(r->complete[b.ids[i]], 1); /* exactly once */
        ok += r->status[b.ids[i]] == STATUS_OK;
        cancelled += r->status[b.ids[i]] == STATUS_CANCELLED;
    }
    ck_assert_int_eq(ok + cancelled, b.n);
    struct scheduler_stats st;
    scheduler_stats(s, &st);
    ck_assert_uint_eq(st.completed_ok + st.cancelled, (uint64_t)b.n);
    ck_assert(st.mean_rows > 1.0);
    printf("burst: %d ok, %d cancelled, %llu calls, mean rows %.2f\n", ok, cancelled,
           (unsigned long long)st.unet_calls, st.mean_rows);
    teardown(s, f, r);
}
END_TEST

START_TEST(test_destroy_cancels_admitted)
{
    struct fake *f = fake_new();
    f->real_clock = true;
    f->per_call = 1000000;
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 4, 50, r);
    struct errbuf err;
    ck_assert_int_eq(scheduler_start(s, &err), STATUS_OK);
    uint64_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = submit(s, r, params((uint64_t)i, 30, 7.5, 64, 64), 0, 0);
    usleep(5000);
    scheduler_destroy(s);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(r->complete[ids[i]], 1);
        ck_assert_int_eq(r->reason[ids[i]], CANCEL_SHUTDOWN);
    }
    ck_assert_int_eq(f->released, f->begins);
    free(f);
    free(r);
}
END_TEST

/* --- liveness heartbeat and per-job batch sizes --------------------------------------- */

/* A U-Net call that fails fails each job with an image in it exactly once — a job of
 * several images included (its images are freed with it) — and the others run on. */
/* --- lanes: buckets side by side ------------------------------------------------------ */

/* Two sizes with lanes 2: each iteration steps both buckets, one call each, the first
 * bucket stepped on lane 0 and the second on lane 1 for good (its graphs stay there);
 * the clock moves by the longer call only; a third size shares lane 0 with the first,
 * so it runs only in iterations that lane is free or when it is the most urgent. */
START_TEST(test_lanes_step_buckets_side_by_side)
{
    struct fake *f = fake_new();
    f->lanes = 2;
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 16, 8, r);
    const uint64_t a = submit(s, r, params(100, 4, 7.5, 64, 64), 0, 0);
    const uint64_t c = submit(s, r, params(300, 4, 7.5, 64, 64), 0, 0);
    const uint64_t b = submit(s, r, params(200, 4, 7.5, 96, 96), 0, 0);
    const uint64_t t0 = f->now;
    for (int i = 0; i < 4; i++)
        poll1(s);
    ck_assert_int_eq(f->calls, 8);
    for (int k = 0; k < 8; k++) {
        ck_assert_int_eq(f->call_iteration[k], k / 2);
        const bool small = call_has(f, k, 100);
        ck_assert_int_eq(call_has(f, k, 300), small);
        ck_assert_int_eq(call_has(f, k, 200), !small);
        ck_assert_int_eq(f->call_lane[k], small ? 0 : 1);
        ck_assert_int_eq(f->call_rows[k], small ? 4 : 2);
    }
    /* side by side: 4 iterations of the longer call (40 + 4 × 10 ms) */
    ck_assert_uint_eq(f->now - t0, 4 * 80 * MS);
    ck_assert_int_eq(r->complete[a] + r->complete[b] + r->complete[c], 3);
    ck_assert_int_eq(r->status[b], STATUS_OK);
    ck_assert_int_eq(r->metrics[b].unet_calls, 4);
    struct scheduler_stats st;
    scheduler_stats(s, &st);
    ck_assert_uint_eq(st.unet_calls, 8);
    ck_assert_uint_eq(st.unet_concurrent_calls, 8);
    ck_assert_double_eq_tol(st.unet_s, 0.640, 1e-9); /* each call the iteration's 80 ms */
    /* 96² is the most urgent now (its deadline), then a third size, then 64² — whose
     * lane the third size shares: two calls an iteration, 96² on lane 1 as before */
    const uint64_t d = submit(s, r, params(400, 2, 7.5, 96, 96), 5000, 0);
    const uint64_t e = submit(s, r, params(500, 2, 7.5, 128, 128), 6000, 0);
    const uint64_t g = submit(s, r, params(600, 2, 7.5, 64, 64), 0, 0);
    const int first = f->calls;
    poll1(s);
    ck_assert_int_eq(f->calls - first, 2);
    ck_assert(call_has(f, first, 400) && f->call_lane[first] == 1);
    ck_assert(call_has(f, first + 1, 500) && f->call_lane[first + 1] == 0);
    poll1(s); /* d and e finish */
    ck_assert_int_eq(r->complete[d] + r->complete[e], 2);
    ck_assert_int_eq(r->complete[g], 0); /* its lane was taken both times */
    poll1(s);
    poll1(s);
    ck_assert_int_eq(r->complete[g], 1);
    ck_assert_int_eq(f->call_lane[f->calls - 1], 0);
    teardown(s, f, r);
}
END_TEST

/* A failed launch fails the jobs of its call only; the other bucket's go on. */
START_TEST(test_lanes_failed_launch_fails_its_call_only)
{
    struct fake *f = fake_new();
    f->lanes = 2;
    f->fail_call = 3; /* iteration 2's first call: the 64² bucket */
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 16, 8, r);
    const uint64_t a = submit(s, r, params(100, 3, 7.5, 64, 64), 0, 0);
    const uint64_t b = submit(s, r, params(200, 3, 7.5, 96, 96), 0, 0);
    poll1(s);
    poll1(s);
    ck_assert_int_eq(r->complete[a], 1);
    ck_assert_int_eq(r->status[a], STATUS_DEVICE);
    ck_assert_int_eq(r->complete[b], 0);
    poll1(s);
    ck_assert_int_eq(r->complete[b], 1);
    ck_assert_int_eq(r->status[b], STATUS_OK);
    ck_assert_int_eq(r->metrics[b].unet_calls, 3);
    teardown(s, f, r);
}
END_TEST

START_TEST(test_failed_step_fails_its_jobs_once)
{
    struct fake *f = fake_new();
    struct record *r = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 16, 8, r);
    f->fail_call = 2;
    struct gen_params two = params(100, 4, 7.5, 64, 64);
    two.n = 2;
    const uint64_t a = submit(s, r, two, 0, 0);
    const uint64_t b = submit(s, r, params(200, 4, 7.5, 64, 64), 0, 0);
    poll1(s); /* call 1: a's two images and b */
    poll1(s); /* call 2 fails */
    ck_assert_int_eq(r->complete[a], 1);
    ck_assert_int_eq(r->complete[b], 1);
    ck_assert_int_eq(r->status[a], STATUS_DEVICE);
    ck_assert_int_eq(r->status[b], STATUS_DEVICE);
    const uint64_t c = submit(s, r, params(300, 2, 7.5, 64, 64), 0, 0);
    poll1(s);
    poll1(s);
    ck_assert_int_eq(r->complete[c], 1);
    ck_assert_int_eq(r->status[c], STATUS_OK);
    ck_assert_int_eq(r->complete[a] + r->complete[b], 2); /* still once each */
    teardown(s, f, r);
}
END_TEST

START_TEST(test_stall_and_batch_sizes)
{
    struct fake *f = fake_new();
    struct record *rec = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_STEP, 16, 8, rec);
    ck_assert_double_eq(scheduler_stall_s(s), 0); /* idle: never stalled */
    __atomic_add_fetch(&f->now, 50 * 1000 * MS, __ATOMIC_SEQ_CST);
    ck_assert_double_eq(scheduler_stall_s(s), 0);
    const uint64_t a = submit(s, rec, params(1, 3, 1.0, 64, 64), 0, 0); /* 1 row */
    ck_assert_double_eq(scheduler_stall_s(s), 0); /* work arrived just now */
    __atomic_add_fetch(&f->now, 10 * 1000 * MS, __ATOMIC_SEQ_CST);
    ck_assert_double_eq_tol(scheduler_stall_s(s), 10.0, 1e-6); /* work, no iteration */
    poll1(s);
    ck_assert_double_eq(scheduler_stall_s(s), 0);
    const uint64_t b = submit(s, rec, params(2, 2, 7.5, 64, 64), 0, 0); /* CFG: 2 rows */
    for (int i = 0; i < 20 && (!rec->complete[a % MAX_JOBS] || !rec->complete[b % MAX_JOBS]); i++)
        poll1(s);
    ck_assert_int_eq(rec->complete[a % MAX_JOBS], 1);
    ck_assert_int_eq(rec->complete[b % MAX_JOBS], 1);
    __atomic_add_fetch(&f->now, 1000 * 1000 * MS, __ATOMIC_SEQ_CST);
    ck_assert_double_eq(scheduler_stall_s(s), 0); /* all done: idle again */
    /* A took part in every call from the first until it finished. */
    const struct job_metrics *ma = &rec->metrics[a % MAX_JOBS], *mb = &rec->metrics[b % MAX_JOBS];
    ck_assert_int_eq(ma->n_batch_sizes, ma->unet_calls);
    ck_assert_int_eq(ma->unet_calls, 3);
    for (int k = 0; k < ma->n_batch_sizes; k++)
        ck_assert_int_eq(ma->batch_sizes[k], f->call_rows[k]);
    ck_assert_int_eq(ma->batch_sizes[0], 1);
    ck_assert_int_eq(mb->n_batch_sizes, 2);
    ck_assert_int_eq(mb->batch_sizes[0], 3); /* shared with A */
    ck_assert_int_eq(mb->batch_sizes[1], f->call_rows[rec->complete_call[b % MAX_JOBS] - 1]);
    teardown(s, f, rec);
}
END_TEST

/* Request mode's gather wait is a deliberate wait, not a stall (a --request-max-wait-ms
 * longer than --watchdog-s made /livez fail while one request waited for company). */
START_TEST(test_gather_wait_is_no_stall)
{
    struct fake *f = fake_new();
    struct record *rec = record_new(f);
    struct scheduler *s = make_sched(f, SCHED_MODE_REQUEST, 16, 8, rec); /* waits 100 ms */
    const uint64_t a = submit(s, rec, params(1, 2, 7.5, 64, 64), 0, 0);
    uint64_t wake = 0;
    struct errbuf err;
    ck_assert_int_eq(scheduler_poll(s, NULL, &wake, &err), STATUS_OK);
    ck_assert_int_eq(f->calls, 0); /* gathering */
    ck_assert_uint_gt(wake, f->now);
    __atomic_store_n(&f->now, wake - 10 * MS, __ATOMIC_SEQ_CST);
    ck_assert_double_eq(scheduler_stall_s(s), 0);
    __atomic_store_n(&f->now, wake + 500 * MS, __ATOMIC_SEQ_CST); /* the worker overslept */
    ck_assert_double_eq_tol(scheduler_stall_s(s), 0.5, 1e-6);
    for (int i = 0; i < 10 && !rec->complete[a % MAX_JOBS]; i++)
        poll1(s);
    ck_assert_int_eq(rec->complete[a % MAX_JOBS], 1);
    teardown(s, f, rec);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("scheduler");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_join_and_leave);
    tcase_add_test(tc, test_row_limit_and_images);
    tcase_add_test(tc, test_request_wider_than_limit);
    tcase_add_test(tc, test_no_head_of_line_blocking);
    tcase_add_test(tc, test_short_overtakes_long_without_starving_it);
    tcase_add_test(tc, test_join_keeps_due_times);
    tcase_add_test(tc, test_priority_deadline_then_wait);
    tcase_add_test(tc, test_cancel_running_and_queued);
    tcase_add_test(tc, test_cancel_from_callback);
    tcase_add_test(tc, test_deadline_expiry);
    tcase_add_test(tc, test_admission_queue_full);
    tcase_add_test(tc, test_admission_deadline_and_estimate);
    tcase_add_test(tc, test_admission_counts_start_encodes);
    tcase_add_test(tc, test_submit_copies_image_and_mask);
    tcase_add_test(tc, test_draining_rejects);
    tcase_add_test(tc, test_request_mode);
    tcase_add_test(tc, test_none_mode);
    tcase_add_test(tc, test_config_validation);
    tcase_add_test(tc, test_threaded_burst);
    tcase_add_test(tc, test_destroy_cancels_admitted);
    tcase_add_test(tc, test_stall_and_batch_sizes);
    tcase_add_test(tc, test_failed_step_fails_its_jobs_once);
    tcase_add_test(tc, test_lanes_step_buckets_side_by_side);
    tcase_add_test(tc, test_lanes_failed_launch_fails_its_call_only);
    tcase_add_test(tc, test_gather_wait_is_no_stall);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
