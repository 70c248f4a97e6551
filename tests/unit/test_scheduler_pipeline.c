/* tests/unit/test_scheduler_pipeline.c — server/scheduler through the real pipeline on
 * the sd1-tiny fixture: concurrent requests with different samplers, steps, guidance
 * and n share U-Net calls, join and leave at step boundaries; each image inside a
 * full mixed batch matches the same request alone (PSNR ≥ 45 dB, issue 4); a
 * cancelled request frees its rows within one step; the text cache encodes each
 * (prompt, clip_skip) once; a burst from two threads completes every job exactly once. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/workspace.h"
#include "models/pipeline.h"
#include "server/scheduler.h"
#include "tests/testutil.h"

#define MIN_PSNR_BATCH 45.0 /* issue 4 */
#define MAX_JOBS 64

static struct sd_model *load_sd1(void)
{
    struct sd_model *m = test_load_sd1_tiny();
    ck_assert_ptr_nonnull(m);
    return m;
}

struct rec {
    pthread_mutex_t lock;
    struct scheduler *sched;
    int complete[MAX_JOBS];
    enum status status[MAX_JOBS];
    struct job_metrics metrics[MAX_JOBS];
    int n_images[MAX_JOBS];
    struct sd_image *images[MAX_JOBS];
    int progress_calls[MAX_JOBS];
    uint64_t first_call[MAX_JOBS];  /* scheduler's U-Net call count at its first progress */
    uint64_t cancel_id;
    int cancel_at;
};

static void on_progress(void *user, uint64_t id, int done, int total)
{
    struct rec *r = user;
    (void)total;
    struct scheduler_stats st;
    scheduler_stats(r->sched, &st);
    pthread_mutex_lock(&r->lock);
    if (r->progress_calls[id]++ == 0)
        r->first_call[id] = st.unet_calls;
    const bool cancel = id == r->cancel_id && done == r->cancel_at;
    pthread_mutex_unlock(&r->lock);
    if (cancel)
        ck_assert_int_eq(scheduler_cancel(r->sched, id, CANCEL_CLIENT, NULL), STATUS_OK);
}

static void on_complete(void *user, struct job_result *res)
{
    struct rec *r = user;
    pthread_mutex_lock(&r->lock);
    r->complete[res->job_id]++;
    r->status[res->job_id] = res->status;
    r->metrics[res->job_id] = res->metrics;
    r->n_images[res->job_id] = res->n_images;
    r->images[res->job_id] = job_result_take_images(res);
    pthread_mutex_unlock(&r->lock);
}

static void rec_free(struct rec *r)
{
    for (int i = 0; i < MAX_JOBS; i++) {
        for (int k = 0; k < r->n_images[i]; k++)
            sd_image_free(&r->images[i][k]);
        free(r->images[i]);
    }
    free(r);
}

static struct scheduler *make_lanes(const struct sd_model *m, int max_rows, int lanes,
                                    struct rec *r)
{
    struct scheduler_config cfg;
    scheduler_config_default(&cfg);
    cfg.models[0] = m;
    cfg.n_models = 1;
    cfg.max_batch_rows = max_rows;
    cfg.lanes = lanes;
    /* arrival order: the calls these tests count must not depend on the wall-clock step
     * costs that step mode's due times and join rule read (those are tested on a fake
     * clock in test_scheduler.c); with it every running request joins every call */
    cfg.due_factor = -1;
    struct scheduler *s;
    struct errbuf err;
    ck_assert_msg(scheduler_create(&cfg, &s, &err) == STATUS_OK, "%s", err.msg);
    r->sched = s;
    return s;
}

static struct scheduler *make(const struct sd_model *m, int max_rows, struct rec *r)
{
    return make_lanes(m, max_rows, 0, r);
}

static uint64_t submit(struct scheduler *s, struct rec *r, const struct gen_params *p)
{
    const struct job_callbacks cb = {.on_progress = on_progress, .on_complete = on_complete,
                                     .user = r};
    uint64_t id;
    struct errbuf err;
    ck_assert_msg(scheduler_submit(s, p, &cb, NULL, &id, NULL, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_lt(id, MAX_JOBS);
    return id;
}

static void poll1(struct scheduler *s)
{
    struct errbuf err;
    ck_assert_msg(scheduler_poll(s, NULL, NULL, &err) == STATUS_OK, "%s", err.msg);
}

/* The mix: different samplers, steps, guidance (with and without CFG), n. */
static struct gen_params mixed(const struct sd_model *m, int i)
{
    struct gen_params p;
    gen_params_default(m, &p);
    p.prompt = i % 2 ? "a red cube on a table" : "a photograph of an astronaut riding a horse";
    p.negative_prompt = i == 2 ? "blurry" : "";
    p.seed = 500 + 31 * (uint64_t)i;
    switch (i) {
    case 0: p.sampler = SAMPLER_EULER_A; p.steps = 6; p.guidance = 7.5; break;
    case 1: p.sampler = SAMPLER_DDIM; p.steps = 4; p.guidance = 1.0; p.eta = 1.0; break;
    case 2: p.sampler = SAMPLER_DPMPP_2M_KARRAS; p.steps = 3; p.guidance = 5.0; p.n = 2; break;
    default: p.sampler = SAMPLER_EULER; p.steps = 5; p.guidance = 1.0; p.clip_skip = 1; break;
    }
    return p;
}

static double psnr_rgb8(const struct sd_image *a, const struct sd_image *b)
{
    ck_assert_int_eq(a->width, b->width);
    ck_assert_int_eq(a->height, b->height);
    const size_t n = (size_t)a->width * (size_t)a->height * 3;
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a->rgb[i] - (double)b->rgb[i];
        se += d * d;
    }
    return se == 0 ? INFINITY : 10 * log10(255.0 * 255.0 / (se / (double)n));
}

/* Image j of p alone, through the whole-batch driver (no scheduler, no text cache). */
static void alone(const struct sd_model *m, struct gen_params p, int j, struct sd_image *out)
{
    struct workspace ws;
    struct errbuf err;
    ck_assert_int_eq(workspace_init(&ws, m->backend, DTYPE_F32, 0, &err), STATUS_OK);
    p.seed += (uint64_t)j;
    p.n = 1;
    ck_assert_msg(sd_txt2img(m, &ws, &p, 1, false, NULL, NULL, out, NULL, &err) == STATUS_OK,
                  "%s", err.msg);
    workspace_destroy(&ws);
}

/* Requests 0 and 1 start; 2 (n = 2) and 3 join at the next step boundary: 8 rows, the
 * configured maximum.  Each leaves when its steps are done. */
START_TEST(test_join_leave_and_invariance)
{
    struct sd_model *m = load_sd1();
    struct rec *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    struct scheduler *s = make(m, 8, r);
    struct gen_params p[4];
    uint64_t id[4];
    for (int i = 0; i < 4; i++)
        p[i] = mixed(m, i);
    id[0] = submit(s, r, &p[0]);
    id[1] = submit(s, r, &p[1]);
    poll1(s); /* call 1: rows 2 + 1 */
    id[2] = submit(s, r, &p[2]);
    id[3] = submit(s, r, &p[3]);
    for (int i = 0; i < 6; i++)
        poll1(s);
    struct scheduler_stats st;
    scheduler_stats(s, &st);
    /* calls: 1 [0,1] 3 rows; 2–4 [0,1,2a,2b,3] 8 rows (2 leaves after its 3 steps, 1
     * after its 4th); 5–6 [0,3] 3 rows (3 joined at call 2 and has 5 steps, 0 has 6) */
    ck_assert_uint_eq(st.unet_calls, 6);
    ck_assert_uint_eq(st.rows_hist[3], 3);
    ck_assert_uint_eq(st.rows_hist[8], 3);
    ck_assert(st.mean_rows > 1.0);
    printf("mixed batch: %llu U-Net calls, mean rows %.2f, occupancy %.2f\n",
           (unsigned long long)st.unet_calls, st.mean_rows, st.mean_occupancy);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(r->complete[id[i]], 1);
        ck_assert_int_eq(r->status[id[i]], STATUS_OK);
        /* one step per call it was in: joined and left at step boundaries */
        ck_assert_int_eq(r->metrics[id[i]].unet_calls, p[i].steps);
        ck_assert_int_eq(r->metrics[id[i]].steps_done, p[i].steps * p[i].n);
        ck_assert_uint_eq(r->first_call[id[i]], i < 2 ? 1 : 2);
        for (int j = 0; j < p[i].n; j++) {
            struct sd_image one;
            alone(m, p[i], j, &one);
            const double db = psnr_rgb8(&r->images[id[i]][j], &one);
            printf("request %d image %d (%s) in the batch vs alone: %.2f dB\n", i, j,
                   sampler_kind_name(p[i].sampler), db);
            ck_assert_msg(db >= MIN_PSNR_BATCH, "request %d image %d: %.2f dB", i, j, db);
            ck_assert_uint_eq(r->images[id[i]][j].seed, p[i].seed + (uint64_t)j);
            sd_image_free(&one);
        }
    }
    /* encoded once each: prompts A, B at clip_skip 0, B at clip_skip 1, negatives ""
     * and "blurry"; hits: request 2's prompt (A) for image 0, both rows for image 1 */
    ck_assert_uint_eq(st.text_cache_misses, 5);
    ck_assert_uint_eq(st.text_cache_hits, 3);
    scheduler_destroy(s);
    rec_free(r);
    sd_model_free(m);
}
END_TEST

/* Lanes 2 on the real pipeline (the CPU runs the two lanes' calls one after the other;
 * the scheduler's books and each lane's own workspace are what is tested here, the
 * GPU's concurrency in tests/gpu): two sizes step in the same iterations, one call
 * each, and each image is the one it is alone. */
START_TEST(test_lanes_two_sizes_invariance)
{
    struct sd_model *m = load_sd1();
    struct rec *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    struct scheduler *s = make_lanes(m, 8, 2, r);
    struct gen_params p[2] = {mixed(m, 0), mixed(m, 3)};
    p[1].width = p[1].height = p[0].width * 3 / 2;
    uint64_t id[2];
    for (int i = 0; i < 2; i++)
        id[i] = submit(s, r, &p[i]);
    for (int i = 0; i < p[0].steps; i++)
        poll1(s);
    struct scheduler_stats st;
    scheduler_stats(s, &st);
    ck_assert_uint_eq(st.unet_calls, (uint64_t)(p[0].steps + p[1].steps));
    ck_assert_uint_eq(st.unet_concurrent_calls, 2 * (uint64_t)p[1].steps);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(r->complete[id[i]], 1);
        ck_assert_int_eq(r->status[id[i]], STATUS_OK);
        ck_assert_int_eq(r->metrics[id[i]].unet_calls, p[i].steps);
        struct sd_image one;
        alone(m, p[i], 0, &one);
        ck_assert_int_eq(r->images[id[i]][0].width, p[i].width);
        const double db = psnr_rgb8(&r->images[id[i]][0], &one);
        printf("lanes: request %d (%dx%d) beside the other size vs alone: %.2f dB\n", i,
               p[i].width, p[i].height, db);
        ck_assert_msg(db >= MIN_PSNR_BATCH, "request %d: %.2f dB", i, db);
        sd_image_free(&one);
    }
    scheduler_destroy(s);
    rec_free(r);
    sd_model_free(m);
}
END_TEST

/* Cancelled from its progress callback at step 3 on the worker thread: the next call
 * has only the other request's rows. */
START_TEST(test_cancel_frees_slot)
{
    struct sd_model *m = load_sd1();
    struct rec *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    struct scheduler *s = make(m, 8, r);
    struct gen_params a = mixed(m, 0), b = mixed(m, 0);
    a.steps = b.steps = 10;
    b.seed = 9;
    const uint64_t ia = submit(s, r, &a);
    const uint64_t ib = submit(s, r, &b);
    r->cancel_id = ib;
    r->cancel_at = 3;
    struct errbuf err;
    ck_assert_int_eq(scheduler_start(s, &err), STATUS_OK);
    ck_assert_msg(scheduler_drain(s, -1, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(r->status[ib], STATUS_CANCELLED);
    ck_assert_int_eq(r->metrics[ib].steps_done, 3);
    ck_assert_int_eq(r->status[ia], STATUS_OK);
    /* A: 3 calls of 4 rows, then 7 of its own 2 */
    ck_assert_double_eq_tol(r->metrics[ia].mean_batch_rows, (3 * 4 + 7 * 2) / 10.0, 1e-9);
    scheduler_destroy(s);
    rec_free(r);
    sd_model_free(m);
}
END_TEST

struct burst {
    struct scheduler *s;
    struct rec *r;
    const struct sd_model *m;
    int first, count;
    uint64_t ids[MAX_JOBS];
};

static void *submitter(void *arg)
{
    struct burst *b = arg;
    for (int i = 0; i < b->count; i++) {
        struct gen_params p = mixed(b->m, (b->first + i) % 4);
        p.steps = 1 + (b->first + i) % 4;
        p.width = (i % 3 == 0) ? 96 : 64;
        p.seed = (uint64_t)(b->first + i);
        b->ids[i] = submit(b->s, b->r, &p);
        usleep(500);
    }
    return NULL;
}

START_TEST(test_concurrent_burst)
{
    struct sd_model *m = load_sd1();
    struct rec *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    struct scheduler *s = make(m, 8, r);
    struct errbuf err;
    ck_assert_int_eq(scheduler_start(s, &err), STATUS_OK);
    struct burst b[2] = {{s, r, m, 0, 24, {0}}, {s, r, m, 100, 24, {0}}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, submitter, &b[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_msg(scheduler_drain(s, -1, &err) == STATUS_OK, "%s", err.msg);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < b[i].count; k++) {
            const uint64_t id = b[i].ids[k];
            ck_assert_int_eq(r->complete[id], 1);
            ck_assert_int_eq(r->status[id], STATUS_OK);
            ck_assert_int_ge(r->n_images[id], 1);
        }
    struct scheduler_stats st;
    scheduler_stats(s, &st);
    printf("burst: %llu jobs, %llu U-Net calls, mean rows %.2f, text cache %llu hits / %llu "
           "misses\n",
           (unsigned long long)st.completed_ok, (unsigned long long)st.unet_calls, st.mean_rows,
           (unsigned long long)st.text_cache_hits, (unsigned long long)st.text_cache_misses);
    ck_assert_uint_eq(st.completed_ok, 48);
    ck_assert(st.mean_rows > 1.0);
    scheduler_destroy(s);
    rec_free(r);
    sd_model_free(m);
}
END_TEST

/* The cache's embeddings give the request exactly what encoding in begin gives. */
START_TEST(test_begin_with_embeddings)
{
    struct sd_model *m = load_sd1();
    struct workspace ws;
    struct errbuf err;
    ck_assert_int_eq(workspace_init(&ws, m->backend, DTYPE_F32, 0, &err), STATUS_OK);
    struct gen_params p = mixed(m, 2);
    p.n = 1;
    p.clip_skip = 1;
    const int64_t shape[3] = {1, m->context_len, m->context_dim};
    struct tensor cond = tensor_desc(DTYPE_F32, 3, shape), uncond = cond;
    ck_assert_int_eq(backend_alloc(m->backend, &cond, &err), STATUS_OK);
    ck_assert_int_eq(backend_alloc(m->backend, &uncond, &err), STATUS_OK);
    ck_assert_int_eq(sd_text_encode(m, &ws, p.prompt, 1, &cond, NULL, &err), STATUS_OK);
    ck_assert_int_eq(sd_text_encode(m, &ws, p.negative_prompt, 0, &uncond, NULL, &err), STATUS_OK);
    const struct sd_text_embeddings text = {.cond = &cond, .uncond = &uncond};
    struct sd_request a, b;
    ck_assert_int_eq(sd_request_begin(m, &ws, &p, 0, &a, &err), STATUS_OK);
    ck_assert_int_eq(sd_request_begin_text(m, &ws, &p, 0, &text, &b, &err), STATUS_OK);
    float *ca = test_download(&a.context), *cb = test_download(&b.context);
    ck_assert_int_eq(memcmp(ca, cb, tensor_nbytes(&a.context)), 0);
    free(ca);
    free(cb);
    struct tensor bad = tensor_desc(DTYPE_F32, 3, (const int64_t[3]){1, 5, m->context_dim});
    const struct sd_text_embeddings wrong = {.cond = &bad, .uncond = &uncond};
    struct sd_request c;
    ck_assert_int_eq(sd_request_begin_text(m, &ws, &p, 0, &wrong, &c, &err),
                     STATUS_INVALID_ARGUMENT);
    sd_request_free(&c);
    sd_request_free(&a);
    sd_request_free(&b);
    backend_free(&cond);
    backend_free(&uncond);
    workspace_destroy(&ws);
    sd_model_free(m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("scheduler_pipeline");
    TCase *tc = tcase_create("sd1-tiny");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_join_leave_and_invariance);
    tcase_add_test(tc, test_cancel_frees_slot);
    tcase_add_test(tc, test_lanes_two_sizes_invariance);
    tcase_add_test(tc, test_concurrent_burst);
    tcase_add_test(tc, test_begin_with_embeddings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
