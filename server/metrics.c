/* server/metrics.c — atomic counters and histograms, and their text exposition. */
#include "server/metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_BOUNDS 20

static const int code_values[] = {METRICS_CODES};
#define N_CODES ((int)(sizeof code_values / sizeof code_values[0]))

/* Bucket upper bounds (le), seconds unless said otherwise. */
static const double request_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10,
                                        30,     60,    120,    300};
static const double queue_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                      1,     2.5,   5,    10,    30,   60,  120,  300};
static const double generation_bounds[] = {0.05, 0.1, 0.25, 0.5, 1,  2,  3,   5,   7.5,
                                           10,   15,  20,   30,  45, 60, 120, 300, 600};
/* rows per U-Net call; the scheduler's histogram lumps rows ≥ SCHED_HIST_MAX together,
 * so the last finite bound is SCHED_HIST_MAX - 1. */
static const int rows_bounds[] = {1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48,
                                  SCHED_HIST_MAX - 1};

/* Counts per bucket (not cumulative; [n_bounds] is +Inf) and the sum in nanoseconds. */
struct histogram {
    const double *bounds;
    int n_bounds;
    _Atomic uint64_t buckets[MAX_BOUNDS + 1];
    _Atomic uint64_t sum_ns;
};

struct metrics {
    _Atomic uint64_t requests[METRICS_ROUTE_COUNT_][N_CODES + 1]; /* [N_CODES]: other */
    struct histogram request_s[METRICS_ROUTE_COUNT_];
    struct histogram queue_s, generation_s;
    _Atomic uint64_t images, steps;
    _Atomic uint64_t rejections[METRICS_REJECT_COUNT_];
    _Atomic int64_t body_bytes;
    _Atomic int model_loaded[METRICS_MAX_MODELS];
    _Atomic int ready;
    char *version, *cuda;
    char *models[METRICS_MAX_MODELS];
    int n_models;
};

static const char *const route_labels[METRICS_ROUTE_COUNT_] = {
    "/v1/images/generations", "/v1/images/edits", "/v1/models", "/v1/images/{id}/{index}",
    "/livez", "/readyz", "/metrics", "/sdapi/v1/txt2img", "/sdapi/v1/img2img",
    "/sdapi/v1/{info}", "other"};

static const char *const reject_labels[METRICS_REJECT_COUNT_] = {
    "queue_full", "deadline", "draining", "invalid", "auth", "body_budget"};

const char *metrics_route_label(enum metrics_route r)
{
    return (unsigned)r < METRICS_ROUTE_COUNT_ ? route_labels[r] : "other";
}

const char *metrics_reject_label(enum metrics_reject r)
{
    return (unsigned)r < METRICS_REJECT_COUNT_ ? reject_labels[r] : "invalid";
}

static void histogram_init(struct histogram *h, const double *bounds, int n)
{
    ASSERT(n <= MAX_BOUNDS);
    h->bounds = bounds;
    h->n_bounds = n;
    for (int i = 0; i <= MAX_BOUNDS; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->sum_ns, 0);
}

static void histogram_observe(struct histogram *h, double seconds)
{
    if (!(seconds >= 0)) /* negative or NaN: a clock that went backwards */
        seconds = 0;
    int i = 0;
    while (i < h->n_bounds && seconds > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    double ns = seconds * 1e9;
    atomic_fetch_add_explicit(&h->sum_ns, ns < 1.8e19 ? (uint64_t)ns : UINT64_MAX / 2,
                              memory_order_relaxed);
}

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

enum status metrics_create(const struct metrics_info *info, struct metrics **out,
                           struct errbuf *err)
{
    *out = NULL;
    if (info && (info->n_models < 0 || info->n_models > METRICS_MAX_MODELS))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "metrics: n_models %d not in [0, %d]",
                           info->n_models, METRICS_MAX_MODELS);
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "metrics registry");
    for (int r = 0; r < METRICS_ROUTE_COUNT_; r++) {
        for (int c = 0; c <= N_CODES; c++)
            atomic_init(&m->requests[r][c], 0);
        histogram_init(&m->request_s[r], request_bounds, COUNT(request_bounds));
    }
    histogram_init(&m->queue_s, queue_bounds, COUNT(queue_bounds));
    histogram_init(&m->generation_s, generation_bounds, COUNT(generation_bounds));
    m->version = dup_or_empty(info ? info->version : NULL);
    m->cuda = dup_or_empty(info && info->cuda ? info->cuda : "none");
    bool ok = m->version && m->cuda;
    for (int i = 0; info && i < info->n_models; i++) {
        m->models[i] = dup_or_empty(info->models[i]);
        ok = ok && m->models[i];
        m->n_models = i + 1;
    }
    if (!ok) {
        metrics_destroy(m);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "metrics registry");
    }
    *out = m;
    return STATUS_OK;
}

void metrics_destroy(struct metrics *m)
{
    if (!m)
        return;
    free(m->version);
    free(m->cuda);
    for (int i = 0; i < m->n_models; i++)
        free(m->models[i]);
    free(m);
}

static int code_index(int code)
{
    for (int i = 0; i < N_CODES; i++)
        if (code_values[i] == code)
            return i;
    return N_CODES;
}

void metrics_observe_request(struct metrics *m, enum metrics_route route, int code,
                             double seconds)
{
    if ((unsigned)route >= METRICS_ROUTE_COUNT_)
        route = METRICS_ROUTE_OTHER;
    atomic_fetch_add_explicit(&m->requests[route][code_index(code)], 1, memory_order_relaxed);
    histogram_observe(&m->request_s[route], seconds);
}

void metrics_observe_generation(struct metrics *m, double queue_s, double total_s, int images,
                                int steps)
{
    histogram_observe(&m->queue_s, queue_s);
    histogram_observe(&m->generation_s, total_s);
    atomic_fetch_add_explicit(&m->images, images > 0 ? (uint64_t)images : 0,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->steps, steps > 0 ? (uint64_t)steps : 0, memory_order_relaxed);
}

void metrics_reject(struct metrics *m, enum metrics_reject reason)
{
    if ((unsigned)reason < METRICS_REJECT_COUNT_)
        atomic_fetch_add_explicit(&m->rejections[reason], 1, memory_order_relaxed);
}

void metrics_set_model_loaded(struct metrics *m, int model, bool loaded)
{
    if (model >= 0 && model < m->n_models)
        atomic_store_explicit(&m->model_loaded[model], loaded, memory_order_relaxed);
}

void metrics_set_ready(struct metrics *m, bool ready)
{
    atomic_store_explicit(&m->ready, ready, memory_order_relaxed);
}

void metrics_add_body_bytes(struct metrics *m, int64_t delta)
{
    atomic_fetch_add_explicit(&m->body_bytes, delta, memory_order_relaxed);
}

bool metrics_escape_label(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return false;
    for (; *in; in++) {
        const char *rep = *in == '\\' ? "\\\\" : *in == '"' ? "\\\"" : *in == '\n' ? "\\n" : NULL;
        size_t need = rep ? 2 : 1;
        if (n + need >= cap) {
            out[n] = '\0';
            return false;
        }
        if (rep)
            memcpy(out + n, rep, 2);
        else
            out[n] = *in;
        n += need;
    }
    out[n] = '\0';
    return true;
}

/* ---- rendering ------------------------------------------------------------------ */

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter1(FILE *f, const char *name, const char *help, uint64_t v)
{
    family(f, name, "counter", help);
    fprintf(f, "%s %" PRIu64 "\n", name, v);
}

/* A counter of seconds (a float). */
static void counter_s(FILE *f, const char *name, const char *help, double v)
{
    family(f, name, "counter", help);
    fprintf(f, "%s %.9g\n", name, v);
}

/* A family of `type` with one label taking the values names[0 … n). */
static void family_by(FILE *f, const char *name, const char *type, const char *help,
                      const char *label_name, const char *const *names, const uint64_t *values,
                      int n)
{
    family(f, name, type, help);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label_name, names[i], values[i]);
}

static void counter_by(FILE *f, const char *name, const char *help, const char *label_name,
                       const char *const *names, const uint64_t *values, int n)
{
    family_by(f, name, "counter", help, label_name, names, values, n);
}

static void gauge1(FILE *f, const char *name, const char *help, double v)
{
    family(f, name, "gauge", help);
    fprintf(f, "%s %.17g\n", name, v);
}

/* Writes `name="escaped value"`. */
static void label(FILE *f, const char *name, const char *value)
{
    char esc[1024];
    metrics_escape_label(value, esc, sizeof esc);
    fprintf(f, "%s=\"%s\"", name, esc);
}

static void print_ns(FILE *f, uint64_t ns)
{
    fprintf(f, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
}

/* One histogram's series; labels is "" or `route="…"` (already escaped, no braces). */
static void histogram_render(FILE *f, const char *name, const char *labels,
                             const struct histogram *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i <= h->n_bounds; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->n_bounds)
            fprintf(f, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep, h->bounds[i],
                    cum);
        else
            fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
    }
    fprintf(f, "%s_sum%s%s%s ", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "");
    print_ns(f, atomic_load_explicit(&h->sum_ns, memory_order_relaxed));
    fprintf(f, "\n%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
            labels[0] ? "}" : "", cum);
}

static void render_http(FILE *f, struct metrics *m)
{
    family(f, "diffusiond_http_requests_total", "counter",
           "HTTP responses by route and status code.");
    for (int r = 0; r < METRICS_ROUTE_COUNT_; r++)
        for (int c = 0; c <= N_CODES; c++) {
            uint64_t v = atomic_load_explicit(&m->requests[r][c], memory_order_relaxed);
            if (!v)
                continue;
            char code[16];
            snprintf(code, sizeof code, "%d", c < N_CODES ? code_values[c] : 0);
            fputs("diffusiond_http_requests_total{", f);
            label(f, "route", route_labels[r]);
            fputc(',', f);
            label(f, "code", c < N_CODES ? code : "other");
            fprintf(f, "} %" PRIu64 "\n", v);
        }
    family(f, "diffusiond_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its response being queued, by route.");
    for (int r = 0; r < METRICS_ROUTE_COUNT_; r++) {
        char labels[128];
        snprintf(labels, sizeof labels, "route=\"%s\"", route_labels[r]);
        histogram_render(f, "diffusiond_http_request_duration_seconds", labels, &m->request_s[r]);
    }
    gauge1(f, "diffusiond_http_body_bytes_held",
           "Request bodies held, from their headers until their exchange ends (the budget "
           "of --max-body-bytes-total).",
           (double)atomic_load_explicit(&m->body_bytes, memory_order_relaxed));
}

static void render_generation(FILE *f, struct metrics *m)
{
    family(f, "diffusiond_queue_wait_seconds", "histogram",
           "Generation jobs' wait from submission to admission into the batch.");
    histogram_render(f, "diffusiond_queue_wait_seconds", "", &m->queue_s);
    family(f, "diffusiond_generation_duration_seconds", "histogram",
           "Generation jobs' time from submission to completion.");
    histogram_render(f, "diffusiond_generation_duration_seconds", "", &m->generation_s);
    family(f, "diffusiond_images_generated_total", "counter", "Images generated.");
    fprintf(f, "diffusiond_images_generated_total %" PRIu64 "\n",
            atomic_load_explicit(&m->images, memory_order_relaxed));
    family(f, "diffusiond_denoise_steps_total", "counter",
           "Denoising steps run, summed over the generated images.");
    fprintf(f, "diffusiond_denoise_steps_total %" PRIu64 "\n",
            atomic_load_explicit(&m->steps, memory_order_relaxed));
    uint64_t rejections[METRICS_REJECT_COUNT_];
    for (int r = 0; r < METRICS_REJECT_COUNT_; r++)
        rejections[r] = atomic_load_explicit(&m->rejections[r], memory_order_relaxed);
    counter_by(f, "diffusiond_rejections_total", "Requests refused by the HTTP layer, by reason.",
               "reason", reject_labels, rejections, METRICS_REJECT_COUNT_);
}

static void render_state(FILE *f, struct metrics *m)
{
    family(f, "diffusiond_model_loaded", "gauge", "1 when the model's weights are loaded.");
    for (int i = 0; i < m->n_models; i++) {
        fputs("diffusiond_model_loaded{", f);
        label(f, "model", m->models[i]);
        fprintf(f, "} %d\n", atomic_load_explicit(&m->model_loaded[i], memory_order_relaxed));
    }
    family(f, "diffusiond_ready", "gauge", "1 when /readyz answers 200.");
    fprintf(f, "diffusiond_ready %d\n", atomic_load_explicit(&m->ready, memory_order_relaxed));
    family(f, "diffusiond_build_info", "gauge", "Always 1; the labels describe the build.");
    fputs("diffusiond_build_info{", f);
    label(f, "version", m->version);
    fputc(',', f);
    label(f, "cuda", m->cuda);
    fputs("} 1\n", f);
}

/* The rows-per-U-Net-call histogram from the scheduler's per-rows counts. */
static void render_rows(FILE *f, const struct scheduler_stats *s)
{
    const char *name = "diffusiond_unet_batch_rows";
    family(f, name, "histogram", "Rows (images x CFG halves) per U-Net call.");
    uint64_t cum = 0;
    int idx = 0;
    for (int b = 0; b < COUNT(rows_bounds); b++) {
        for (; idx <= rows_bounds[b]; idx++)
            cum += s->rows_hist[idx];
        fprintf(f, "%s_bucket{le=\"%d\"} %" PRIu64 "\n", name, rows_bounds[b], cum);
    }
    for (; idx <= SCHED_HIST_MAX; idx++)
        cum += s->rows_hist[idx];
    fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %" PRIu64 "\n%s_count %" PRIu64 "\n",
            name, cum, name, s->unet_rows, name, cum);
}

/* The U-Net call-time histogram from the scheduler's per-bucket counts. */
static void render_calls(FILE *f, const struct scheduler_stats *s)
{
    const char *name = "diffusiond_unet_call_seconds";
    family(f, name, "histogram", "U-Net calls by duration, each until its device work is done.");
    uint64_t cum = 0;
    for (int b = 0; b < SCHED_CALL_BUCKETS; b++) {
        cum += s->call_hist[b];
        fprintf(f, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
                scheduler_call_bound_ms(b) / 1e3, cum);
    }
    cum += s->call_hist[SCHED_CALL_BUCKETS];
    fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9g\n%s_count %" PRIu64 "\n", name,
            cum, name, s->unet_s, name, cum);
}

static void render_scheduler(FILE *f, const struct scheduler_stats *s)
{
    gauge1(f, "diffusiond_queue_depth", "Generation jobs waiting for admission.", s->queue_depth);
    gauge1(f, "diffusiond_scheduler_backlog_seconds",
           "Estimated seconds of U-Net work admitted and not yet run (queued and running), "
           "at the measured call costs.", s->backlog_s);
    gauge1(f, "diffusiond_active_jobs", "Generation jobs being denoised.", s->active_jobs);
    gauge1(f, "diffusiond_active_images", "Images being denoised.", s->active_images);
    gauge1(f, "diffusiond_active_rows", "U-Net rows of the images being denoised.", s->active_rows);
    render_rows(f, s);
    gauge1(f, "diffusiond_batch_occupancy_ratio",
           "Mean rows per U-Net call divided by --max-batch-rows.", s->mean_occupancy);
    counter1(f, "diffusiond_scheduler_submitted_total",
             "Jobs the scheduler accepted; each completes exactly once (ok, error or "
             "cancelled). Refused ones count in diffusiond_scheduler_rejected_total.",
             s->submitted);
    static const char *const rejected[] = {"queue_full", "deadline", "draining"};
    const uint64_t rejected_v[] = {s->rejected_queue_full, s->rejected_deadline,
                                   s->rejected_draining};
    counter_by(f, "diffusiond_scheduler_rejected_total",
               "Jobs the scheduler refused at submission, by reason.", "reason", rejected,
               rejected_v, 3);
    static const char *const results[] = {"ok", "error", "cancelled"};
    const uint64_t results_v[] = {s->completed_ok, s->completed_error, s->cancelled};
    counter_by(f, "diffusiond_scheduler_completed_total", "Admitted jobs completed, by result.",
               "result", results, results_v, 3);
    counter1(f, "diffusiond_unet_calls_total", "U-Net calls.", s->unet_calls);
    counter1(f, "diffusiond_unet_graph_replays_total",
             "U-Net calls replayed from a recorded CUDA graph.", s->unet_graph_replays);
    counter1(f, "diffusiond_unet_graphs_recorded_total",
             "CUDA graphs recorded for U-Net calls (one per batch shape; a recording and "
             "the eager call before it are slow calls).",
             s->unet_graphs_recorded);
    counter1(f, "diffusiond_unet_concurrent_calls_total",
             "U-Net calls that ran beside another image size's call, on another device "
             "lane (serve --lanes).",
             s->unet_concurrent_calls);
    counter_s(f, "diffusiond_unet_seconds_total",
              "Seconds in U-Net calls, each until its device work is done.", s->unet_s);
    render_calls(f, s);
    counter_s(f, "diffusiond_scheduler_busy_seconds_total",
              "Seconds of scheduler iterations that did work (calls, decodes, admission, "
              "text encoding, callbacks).",
              s->busy_s);
    counter1(f, "diffusiond_vae_decode_calls_total", "VAE decoder calls.", s->decode_calls);
    counter1(f, "diffusiond_vae_decoded_images_total", "Images through the VAE decoder.",
             s->decoded_images);
    counter_s(f, "diffusiond_vae_decode_seconds_total", "Seconds in VAE decoder calls.",
              s->decode_s);
    counter1(f, "diffusiond_vae_graph_replays_total",
             "VAE decoder calls replayed from a recorded CUDA graph.", s->vae_graph_replays);
    static const char *const parts[] = {"unet", "vae"};
    const uint64_t failed_v[] = {s->unet_graphs_failed, s->vae_graphs_failed};
    family_by(f, "diffusiond_graph_recording_failed", "gauge",
              "1 once a CUDA graph recording failed for that part: its calls run eagerly "
              "(slower) from then on; the log says why.",
              "part", parts, failed_v, 2);
    static const char *const lookups[] = {"hit", "miss"};
    const uint64_t lookups_v[] = {s->text_cache_hits, s->text_cache_misses};
    counter_by(f, "diffusiond_text_cache_lookups_total",
               "Prompt-embedding cache lookups, by result.", "result", lookups, lookups_v, 2);
    gauge1(f, "diffusiond_draining", "1 once shutdown has begun.", s->draining ? 1 : 0);
}

/* ---- process metrics from /proc ---------------------------------------------------- */

struct proc_stat {
    double cpu_s, start_time_s;
    uint64_t rss_bytes, vsize_bytes;
};

/* /proc/self/stat and /proc/stat's btime; false when either cannot be read. */
static bool read_proc_stat(struct proc_stat *p)
{
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *s = strrchr(buf, ')'); /* the command name may hold spaces and ')' */
    if (!s)
        return false;
    unsigned long long v[22] = {0}; /* fields 3 … 24 of proc(5), [0] = state (skipped) */
    s += 2;
    s = strchr(s, ' '); /* past the state letter */
    for (int i = 1; s && i < 22; i++) {
        char *end;
        v[i] = strtoull(s, &end, 10);
        if (end == s)
            return false;
        s = end;
    }
    unsigned long long btime = 0;
    f = fopen("/proc/stat", "r");
    if (!f)
        return false;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (btime == 0 || tck <= 0 || page <= 0)
        return false;
    /* field k of proc(5) is v[k - 3]: utime 14, stime 15, starttime 22, vsize 23, rss 24 */
    p->cpu_s = (double)(v[11] + v[12]) / (double)tck;
    p->start_time_s = (double)btime + (double)v[19] / (double)tck;
    p->vsize_bytes = v[20];
    p->rss_bytes = v[21] * (uint64_t)page;
    return true;
}

/* Open descriptors (the directory stream's own one not counted); -1 when unknown. */
static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* Bytes the C allocator has handed out and not had back (every arena's chunks in use plus
 * its direct mmaps): unlike the resident size, which keeps the high-water mark of freed
 * heap, this falls back when memory is freed, so steady growth is a leak.  Left out
 * where the C library has no mallinfo2 (glibc < 2.33, musl). */
static void render_heap(FILE *f)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    gauge1(f, "diffusiond_heap_in_use_bytes",
           "Bytes allocated by malloc and not yet freed (glibc mallinfo2).",
           (double)(mi.uordblks + mi.hblkhd));
#else
    (void)f;
#endif
}

static void render_process(FILE *f)
{
    struct proc_stat p;
    if (read_proc_stat(&p)) {
        family(f, "process_cpu_seconds_total", "counter", "User and system CPU time, seconds.");
        fprintf(f, "process_cpu_seconds_total %.17g\n", p.cpu_s);
        gauge1(f, "process_resident_memory_bytes", "Resident memory, bytes.", (double)p.rss_bytes);
        gauge1(f, "process_virtual_memory_bytes", "Virtual memory, bytes.", (double)p.vsize_bytes);
        gauge1(f, "process_start_time_seconds", "Start time, seconds since the Unix epoch.",
               p.start_time_s);
    }
    long fds = count_fds();
    if (fds >= 0)
        gauge1(f, "process_open_fds", "Open file descriptors.", (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        gauge1(f, "process_max_fds", "Limit of open file descriptors.", (double)rl.rlim_cur);
    render_heap(f);
}

enum status metrics_render(struct metrics *m, const struct scheduler_stats *sched, char **out,
                           size_t *len, struct errbuf *err)
{
    *out = NULL;
    *len = 0;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "metrics: exposition buffer");
    render_http(f, m);
    render_generation(f, m);
    render_state(f, m);
    if (sched)
        render_scheduler(f, sched);
    render_process(f);
    bool failed = ferror(f);
    if (fclose(f) != 0 || failed || !buf) {
        free(buf);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "metrics: exposition buffer");
    }
    *out = buf;
    *len = size;
    return STATUS_OK;
}
