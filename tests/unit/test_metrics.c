/* tests/unit/test_metrics.c — the Prometheus registry: values, label escaping,
 * cumulative buckets, scheduler and process families, exact counts under threads.
 * `test_metrics --print` writes a populated exposition to stdout for the ctest that
 * pipes it through `promtool check metrics` (tests/CMakeLists.txt). */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "tests/testutil.h"

static struct metrics *make(const char *model)
{
    struct metrics_info info = {.version = "1.2.3", .cuda = "none", .n_models = 1};
    info.models[0] = model;
    struct metrics *m = NULL;
    struct errbuf err;
    ck_assert_int_eq(metrics_create(&info, &m, &err), STATUS_OK);
    return m;
}

static char *render(struct metrics *m, const struct scheduler_stats *s)
{
    char *out = NULL;
    size_t len = 0;
    struct errbuf err;
    ck_assert_int_eq(metrics_render(m, s, &out, &len, &err), STATUS_OK);
    ck_assert_uint_eq(len, strlen(out));
    return out;
}

/* The line of the sample `series` (exact series text), NULL when absent. */
static const char *find_series(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return p;
    return NULL;
}

static bool has_series(const char *text, const char *series)
{
    return find_series(text, series) != NULL;
}

/* The value of the sample `series`; fails the test when it is absent. */
static double sample(const char *text, const char *series)
{
    const char *p = find_series(text, series);
    ck_assert_msg(p != NULL, "series %s not found", series);
    return strtod(p + strlen(series) + 1, NULL);
}

static void populate(struct metrics *m, struct scheduler_stats *s)
{
    metrics_observe_request(m, METRICS_ROUTE_GENERATIONS, 200, 0.8);
    metrics_observe_request(m, METRICS_ROUTE_GENERATIONS, 200, 1.5);
    metrics_observe_request(m, METRICS_ROUTE_GENERATIONS, 429, 0.0002);
    metrics_observe_request(m, METRICS_ROUTE_LIVEZ, 200, 0.0001);
    metrics_observe_request(m, METRICS_ROUTE_OTHER, 404, 0.0003);
    metrics_observe_request(m, METRICS_ROUTE_OTHER, 418, 0.0003); /* not in the code set */
    metrics_observe_generation(m, 0.02, 0.8, 2, 40);
    metrics_observe_generation(m, 0.3, 1.5, 1, 20);
    metrics_reject(m, METRICS_REJECT_QUEUE_FULL);
    metrics_reject(m, METRICS_REJECT_AUTH);
    metrics_reject(m, METRICS_REJECT_AUTH);
    metrics_set_model_loaded(m, 0, true);
    metrics_set_ready(m, true);
    memset(s, 0, sizeof *s);
    s->queue_depth = 3;
    s->active_jobs = 2;
    s->active_images = 3;
    s->active_rows = 6;
    s->rows_hist[1] = 5;
    s->rows_hist[2] = 4;
    s->rows_hist[16] = 2;
    s->rows_hist[40] = 1;
    s->rows_hist[SCHED_HIST_MAX] = 1; /* ≥ 64 rows */
    s->call_hist[0] = 6;                  /* ≤ 0.25 ms */
    s->call_hist[2] = 4;                  /* (0.5, 1] ms */
    s->call_hist[SCHED_CALL_BUCKETS] = 3; /* over 1 s */
    s->unet_calls = 13;
    s->unet_graph_replays = 11;
    s->unet_graphs_recorded = 2;
    s->unet_concurrent_calls = 6;
    s->vae_graph_replays = 7;
    s->vae_graphs_failed = true;
    s->unet_s = 1.25;
    s->decode_s = 0.5;
    s->busy_s = 2.5;
    s->unet_rows = 5 + 8 + 32 + 40 + 80;
    s->submitted = 10;
    s->rejected_queue_full = 1;
    s->completed_ok = 7;
    s->cancelled = 1;
    s->mean_occupancy = 0.4;
    s->text_cache_hits = 4;
    s->text_cache_misses = 6;
}

START_TEST(test_values)
{
    struct metrics *m = make("sd-turbo");
    struct scheduler_stats s;
    populate(m, &s);
    char *t = render(m, &s);
    ck_assert_double_eq(
        sample(t, "diffusiond_http_requests_total{route=\"/v1/images/generations\",code=\"200\"}"), 2);
    ck_assert_double_eq(
        sample(t, "diffusiond_http_requests_total{route=\"/v1/images/generations\",code=\"429\"}"), 1);
    ck_assert_double_eq(sample(t, "diffusiond_http_requests_total{route=\"other\",code=\"404\"}"), 1);
    ck_assert_double_eq(sample(t, "diffusiond_http_requests_total{route=\"other\",code=\"other\"}"), 1);
    /* no series for a (route, code) never seen */
    ck_assert(!has_series(t, "diffusiond_http_requests_total{route=\"/v1/models\",code=\"200\"}"));
    ck_assert_double_eq(sample(t, "diffusiond_images_generated_total"), 3);
    ck_assert_double_eq(sample(t, "diffusiond_denoise_steps_total"), 60);
    ck_assert_double_eq(sample(t, "diffusiond_rejections_total{reason=\"queue_full\"}"), 1);
    ck_assert_double_eq(sample(t, "diffusiond_rejections_total{reason=\"auth\"}"), 2);
    ck_assert_double_eq(sample(t, "diffusiond_rejections_total{reason=\"deadline\"}"), 0);
    ck_assert_double_eq(sample(t, "diffusiond_model_loaded{model=\"sd-turbo\"}"), 1);
    ck_assert_double_eq(sample(t, "diffusiond_ready"), 1);
    ck_assert_double_eq(sample(t, "diffusiond_build_info{version=\"1.2.3\",cuda=\"none\"}"), 1);
    ck_assert_double_eq(sample(t, "diffusiond_queue_depth"), 3);
    ck_assert_double_eq(sample(t, "diffusiond_active_rows"), 6);
    ck_assert_double_eq(sample(t, "diffusiond_scheduler_completed_total{result=\"ok\"}"), 7);
    ck_assert_double_eq(sample(t, "diffusiond_text_cache_lookups_total{result=\"miss\"}"), 6);
    /* histogram sums are exact sums of the observations */
    ck_assert_double_eq_tol(sample(t, "diffusiond_generation_duration_seconds_sum"), 2.3, 1e-9);
    ck_assert_double_eq_tol(sample(t, "diffusiond_queue_wait_seconds_sum"), 0.32, 1e-9);
    ck_assert_double_eq_tol(
        sample(t, "diffusiond_http_request_duration_seconds_sum{route=\"/v1/images/generations\"}"),
        2.3002, 1e-9);
    /* every family has HELP and TYPE */
    ck_assert_ptr_nonnull(strstr(t, "# TYPE diffusiond_http_request_duration_seconds histogram\n"));
    ck_assert_ptr_nonnull(strstr(t, "# TYPE diffusiond_http_requests_total counter\n"));
    ck_assert_ptr_nonnull(strstr(t, "# HELP diffusiond_queue_depth "));
    ck_assert_ptr_nonnull(strstr(t, "# TYPE process_cpu_seconds_total counter\n"));
    free(t);
    metrics_destroy(m);
}
END_TEST

/* Buckets: cumulative, non-decreasing, +Inf == _count == observations; le bounds
 * inclusive (an observation equal to a bound falls in it). */
START_TEST(test_buckets)
{
    struct metrics *m = make("x");
    double obs[] = {0.0005, 0.0006, 0.001, 0.3, 0.3, 7, 1000, -1 /* clamped to 0 */};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        metrics_observe_request(m, METRICS_ROUTE_MODELS, 200, obs[i]);
    char *t = render(m, NULL);
    const char *h = "diffusiond_http_request_duration_seconds_bucket{route=\"/v1/models\",le=";
    char series[256];
    snprintf(series, sizeof series, "%s\"0.0005\"}", h);
    ck_assert_double_eq(sample(t, series), 2); /* 0.0005 and the clamped -1 */
    snprintf(series, sizeof series, "%s\"0.001\"}", h);
    ck_assert_double_eq(sample(t, series), 4);
    snprintf(series, sizeof series, "%s\"0.25\"}", h);
    ck_assert_double_eq(sample(t, series), 4);
    snprintf(series, sizeof series, "%s\"0.5\"}", h);
    ck_assert_double_eq(sample(t, series), 6);
    snprintf(series, sizeof series, "%s\"10\"}", h);
    ck_assert_double_eq(sample(t, series), 7);
    snprintf(series, sizeof series, "%s\"300\"}", h);
    ck_assert_double_eq(sample(t, series), 7);
    snprintf(series, sizeof series, "%s\"+Inf\"}", h);
    ck_assert_double_eq(sample(t, series), 8);
    ck_assert_double_eq(
        sample(t, "diffusiond_http_request_duration_seconds_count{route=\"/v1/models\"}"), 8);
    /* monotone over every bucket line of every histogram */
    double prev = -1;
    char last_name[256] = "";
    for (char *p = t; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        char *b = strstr(p, "_bucket{");
        char *nl = strchr(p, '\n');
        if (!b || (nl && b > nl) || *p == '#')
            continue;
        char name[256];
        const char *le = strstr(p, "le=\"");
        size_t n = (size_t)(le - p);
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        double v = strtod(strchr(p, ' ') + 1, NULL);
        if (strcmp(name, last_name) == 0)
            ck_assert_msg(v >= prev, "%s not cumulative", name);
        snprintf(last_name, sizeof last_name, "%s", name);
        prev = v;
    }
    free(t);
    metrics_destroy(m);
}
END_TEST

/* The rows histogram from the scheduler's per-rows counts. */
START_TEST(test_rows_histogram)
{
    struct metrics *m = make("x");
    struct scheduler_stats s;
    populate(m, &s);
    char *t = render(m, &s);
    ck_assert_double_eq(sample(t, "diffusiond_unet_batch_rows_bucket{le=\"1\"}"), 5);
    ck_assert_double_eq(sample(t, "diffusiond_unet_batch_rows_bucket{le=\"2\"}"), 9);
    ck_assert_double_eq(sample(t, "diffusiond_unet_batch_rows_bucket{le=\"14\"}"), 9);
    ck_assert_double_eq(sample(t, "diffusiond_unet_batch_rows_bucket{le=\"16\"}"), 11);
    ck_assert_double_eq(sample(t, "diffusiond_unet_batch_rows_bucket{le=\"48\"}"), 12);
    ck_assert_double_eq(sample(t, "diffusiond_unet_batch_rows_bucket{le=\"63\"}"), 12);
    ck_assert_double_eq(sample(t, "diffusiond_unet_batch_rows_bucket{le=\"+Inf\"}"), 13);
    ck_assert_double_eq(sample(t, "diffusiond_unet_batch_rows_count"), 13);
    ck_assert_double_eq(sample(t, "diffusiond_unet_batch_rows_sum"), 165);
    ck_assert_double_eq(sample(t, "diffusiond_unet_graph_replays_total"), 11);
    ck_assert_double_eq(sample(t, "diffusiond_unet_graphs_recorded_total"), 2);
    ck_assert_double_eq(sample(t, "diffusiond_unet_concurrent_calls_total"), 6);
    ck_assert_double_eq(sample(t, "diffusiond_vae_graph_replays_total"), 7);
    ck_assert_double_eq(sample(t, "diffusiond_graph_recording_failed{part=\"unet\"}"), 0);
    ck_assert_double_eq(sample(t, "diffusiond_graph_recording_failed{part=\"vae\"}"), 1);
    ck_assert_double_eq(sample(t, "diffusiond_unet_seconds_total"), 1.25);
    ck_assert_double_eq(sample(t, "diffusiond_unet_call_seconds_bucket{le=\"0.00025\"}"), 6);
    ck_assert_double_eq(sample(t, "diffusiond_unet_call_seconds_bucket{le=\"0.0005\"}"), 6);
    ck_assert_double_eq(sample(t, "diffusiond_unet_call_seconds_bucket{le=\"0.001\"}"), 10);
    ck_assert_double_eq(sample(t, "diffusiond_unet_call_seconds_bucket{le=\"1\"}"), 10);
    ck_assert_double_eq(sample(t, "diffusiond_unet_call_seconds_bucket{le=\"+Inf\"}"), 13);
    ck_assert_double_eq(sample(t, "diffusiond_unet_call_seconds_count"), 13);
    ck_assert_double_eq(sample(t, "diffusiond_unet_call_seconds_sum"), 1.25);
    ck_assert_double_eq(sample(t, "diffusiond_vae_decode_seconds_total"), 0.5);
    ck_assert_double_eq(sample(t, "diffusiond_scheduler_busy_seconds_total"), 2.5);
    free(t);
    /* without scheduler stats the scheduler families are absent */
    t = render(m, NULL);
    ck_assert_ptr_null(strstr(t, "diffusiond_unet_batch_rows"));
    ck_assert_ptr_null(strstr(t, "diffusiond_queue_depth"));
    free(t);
    metrics_destroy(m);
}
END_TEST

START_TEST(test_label_escaping)
{
    char out[64];
    ck_assert(metrics_escape_label("a\"b\\c\nd", out, sizeof out));
    ck_assert_str_eq(out, "a\\\"b\\\\c\\nd");
    ck_assert(!metrics_escape_label("\"\"\"\"", out, 5)); /* needs 8 + NUL */
    ck_assert_str_eq(out, "\\\"\\\"");                   /* cut at a whole escape */
    struct metrics *m = make("my \"model\"\\v1\n");
    metrics_set_model_loaded(m, 0, true);
    char *t = render(m, NULL);
    ck_assert_double_eq(sample(t, "diffusiond_model_loaded{model=\"my \\\"model\\\"\\\\v1\\n\"}"), 1);
    free(t);
    metrics_destroy(m);
}
END_TEST

START_TEST(test_process_metrics)
{
    struct metrics *m = make("x");
    char *t = render(m, NULL);
    double rss = sample(t, "process_resident_memory_bytes");
    ck_assert_double_gt(rss, 1e5);
    ck_assert_double_ge(sample(t, "process_cpu_seconds_total"), 0);
    double fds = sample(t, "process_open_fds");
    ck_assert_double_ge(fds, 3); /* stdin, stdout, stderr at least */
    double start = sample(t, "process_start_time_seconds");
    ck_assert_double_gt(start, 1.5e9);
    ck_assert_double_le(start, (double)time(NULL) + 1);
    free(t);
    metrics_destroy(m);
}
END_TEST

/* The heap gauge follows malloc both ways: 8 MiB held shows, and is gone once freed. */
START_TEST(test_heap_in_use)
{
#if defined(__SANITIZE_ADDRESS__) || !defined(__GLIBC__)
    /* ASan's allocator is not glibc's; musl has no mallinfo2 (the series is left out) */
#else
    struct metrics *m = make("x");
    const size_t big = (size_t)8 << 20;
    char *t = render(m, NULL);
    double before = sample(t, "diffusiond_heap_in_use_bytes");
    free(t);
    ck_assert_double_gt(before, 0);
    char *hold = malloc(big);
    ck_assert_ptr_nonnull(hold);
    memset(hold, 1, big);
    t = render(m, NULL);
    double held = sample(t, "diffusiond_heap_in_use_bytes");
    free(t);
    free(hold);
    t = render(m, NULL);
    double after = sample(t, "diffusiond_heap_in_use_bytes");
    free(t);
    ck_assert_double_ge(held - before, (double)big);
    ck_assert_double_lt(held - before, (double)big + (1 << 20));
    ck_assert_double_le(after, held - (double)big + (1 << 20));
    metrics_destroy(m);
#endif
}
END_TEST

START_TEST(test_bad_info)
{
    struct metrics_info info = {.n_models = METRICS_MAX_MODELS + 1};
    struct metrics *m = (struct metrics *)1;
    struct errbuf err;
    ck_assert_int_eq(metrics_create(&info, &m, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(metrics_create(NULL, &m, &err), STATUS_OK); /* all defaults */
    metrics_set_model_loaded(m, 3, true);                       /* out of range: ignored */
    char *t = render(m, NULL);
    ck_assert_double_eq(sample(t, "diffusiond_build_info{version=\"\",cuda=\"none\"}"), 1);
    free(t);
    metrics_destroy(m);
}
END_TEST

#define THREADS 8
#define PER_THREAD 200000

static void *hammer(void *arg)
{
    struct metrics *m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_observe_request(m, METRICS_ROUTE_LIVEZ, 200, 0.001 * (i % 3));
        metrics_observe_generation(m, 0.25, 0.5, 1, 2);
        metrics_reject(m, METRICS_REJECT_INVALID);
    }
    return NULL;
}

/* N threads × M increments = exactly N·M, with a scrape racing them. */
START_TEST(test_threads_exact)
{
    struct metrics *m = make("x");
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, m), 0);
    char *mid = render(m, NULL); /* concurrently */
    free(mid);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = render(m, NULL);
    const double n = (double)THREADS * PER_THREAD;
    ck_assert_double_eq(sample(t, "diffusiond_http_requests_total{route=\"/livez\",code=\"200\"}"), n);
    ck_assert_double_eq(sample(t, "diffusiond_http_request_duration_seconds_count{route=\"/livez\"}"), n);
    ck_assert_double_eq(sample(t, "diffusiond_images_generated_total"), n);
    ck_assert_double_eq(sample(t, "diffusiond_denoise_steps_total"), 2 * n);
    ck_assert_double_eq(sample(t, "diffusiond_rejections_total{reason=\"invalid\"}"), n);
    ck_assert_double_eq(sample(t, "diffusiond_queue_wait_seconds_count"), n);
    /* 0.25 s and 0.5 s are exact in nanoseconds: the sums are exact too */
    ck_assert_double_eq(sample(t, "diffusiond_queue_wait_seconds_sum"), 0.25 * n);
    ck_assert_double_eq(sample(t, "diffusiond_generation_duration_seconds_sum"), 0.5 * n);
    free(t);
    metrics_destroy(m);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_buckets);
    tcase_add_test(tc, test_rows_histogram);
    tcase_add_test(tc, test_label_escaping);
    tcase_add_test(tc, test_process_metrics);
    tcase_add_test(tc, test_heap_in_use);
    tcase_add_test(tc, test_bad_info);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("threads");
    tcase_add_test(th, test_threads_exact);
    suite_add_tcase(s, th);
    return s;
}

/* A populated exposition on stdout (for promtool). */
static int print_exposition(void)
{
    struct metrics_info info = {.version = "0.0.0-test", .cuda = "none", .n_models = 2};
    info.models[0] = "sd-turbo";
    info.models[1] = "odd \"name\"\\with\nnewline";
    struct metrics *m = NULL;
    struct errbuf err;
    if (metrics_create(&info, &m, &err) != STATUS_OK)
        return fprintf(stderr, "%s\n", err.msg), 1;
    struct scheduler_stats s;
    populate(m, &s);
    char *out = NULL;
    size_t len = 0;
    if (metrics_render(m, &s, &out, &len, &err) != STATUS_OK)
        return fprintf(stderr, "%s\n", err.msg), 1;
    fwrite(out, 1, len, stdout);
    free(out);
    metrics_destroy(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print") == 0)
        return print_exposition();
    return test_run_suite(metrics_suite());
}
