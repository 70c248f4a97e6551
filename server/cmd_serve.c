/* server/cmd_serve.c — `diffusiond serve` (server/cmd_serve.h): wiring, start-up,
 * the signal loop, and the drain. */
#include "server/cmd_serve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine/log.h"
#include "models/sd_model.h"
#include "server/auth.h"
#include "server/cors.h"
#include "server/device.h"
#include "server/encoder_pool.h"
#include "server/http.h"
#include "server/image_store.h"
#include "server/metrics.h"
#include "server/routes.h"
#include "server/scheduler.h"
#include "server/serve_config.h"

#ifndef DIFFUSIOND_VERSION
#define DIFFUSIOND_VERSION "dev"
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define CLIENT_CHECK_MS 200   /* how often suspended clients are checked for a hang-up */
#define FLUSH_WAIT_MS 5000    /* after the drain: answers still being written */

extern char **environ;

struct serve {
    struct serve_config cfg;
    char model_path[SERVE_PATH_MAX];
    char model_name[SERVE_NAME_MAX];
    struct metrics *metrics;
    struct auth *auth;
    struct cors *cors;
    struct encoder_pool *pool;
    struct image_store *store;
    struct routes *routes;
    struct http_server *http;
    struct backend *backend;
    struct sd_model *model;
    struct scheduler *sched;
    uint64_t warmup_t0;
    /* the warm-up's jobs (serve_warmup_jobs), one after another: the next is submitted
     * by the previous one's completion (the scheduler's worker thread) */
    int warmup_jobs, warmup_next;
    bool warmup_graphs;
    /* The model loads on its own thread while the main thread already waits for
     * signals: one during the load is taken at once and stops it at its next tensor.
     * load_status and load_err are the loader's until it is joined. */
    pthread_t loader;
    bool loader_started;
    atomic_bool load_done;    /* the loader finished (load_status, load_err are set) */
    atomic_bool stop_loading; /* SIGTERM/SIGINT came first: the load's cancel check */
    enum status load_status;
    struct errbuf load_err;
};

/* --- set-up ---------------------------------------------------------------------------- */

/* --model, else the bundled model (the same lookup as generate). */
static enum status resolve_model(struct serve *sv, struct errbuf *err)
{
    const char *p = sv->cfg.model[0] ? sv->cfg.model : sd_model_bundled_path();
    if (!p)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "--model / DIFFUSIOND_MODEL is required (the bundled default model "
                           "is not installed)");
    snprintf(sv->model_path, sizeof sv->model_path, "%s", p);
    if (sv->cfg.model_name[0]) {
        snprintf(sv->model_name, sizeof sv->model_name, "%s", sv->cfg.model_name);
        return STATUS_OK;
    }
    /* The base name, without a trailing slash or a .safetensors extension. */
    char tmp[SERVE_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", p);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    char *base = strrchr(tmp, '/');
    if (base && strcmp(base + 1, "diffusers") == 0 && base > tmp) {
        *base = '\0'; /* <name>/diffusers (the fixtures' layout): the parent names it */
        base = strrchr(tmp, '/');
    }
    base = base ? base + 1 : tmp;
    snprintf(sv->model_name, sizeof sv->model_name, "%.*s", SERVE_NAME_MAX - 1, base);
    char *ext = strstr(sv->model_name, ".safetensors");
    if (ext && ext[strlen(".safetensors")] == '\0' && ext != sv->model_name)
        *ext = '\0';
    return STATUS_OK;
}

static enum status make_services(struct serve *sv, struct errbuf *err)
{
    const char *names[1] = {sv->model_name};
    const struct metrics_info info = {.version = DIFFUSIOND_VERSION, .cuda = "none",
                                      .models = {names[0]}, .n_models = 1};
    TRY(metrics_create(&info, &sv->metrics, err));
    TRY(auth_create((const char *const *)sv->cfg.api_keys, sv->cfg.n_api_keys, &sv->auth, err));
    TRY(cors_create((const char *const *)sv->cfg.cors_origins, sv->cfg.n_cors_origins, &sv->cors,
                    err));
    TRY(encoder_pool_create(sv->cfg.encoder_threads, &sv->pool, err));
    TRY(image_store_create(sv->cfg.url_store_images, sv->cfg.url_ttl_s, &sv->store, err));
    struct routes_config rc = {
        .metrics = sv->metrics, .auth = sv->auth, .cors = sv->cors, .pool = sv->pool,
        .store = sv->store, .max_body_bytes = (size_t)sv->cfg.max_body_bytes,
        .max_body_bytes_total = (size_t)sv->cfg.max_body_bytes_total,
        .watchdog_s = sv->cfg.watchdog_s, .url_ttl_s = sv->cfg.url_ttl_s,
        .url_store_images = sv->cfg.url_store_images,
        .access_log = sv->cfg.access_log ? stdout : NULL};
    api_limits_default(&rc.limits);
    rc.limits.max_width = sv->cfg.max_width;
    rc.limits.max_height = sv->cfg.max_height;
    rc.limits.min_side = sv->cfg.min_side;
    rc.limits.max_n = sv->cfg.max_n;
    rc.limits.max_steps = sv->cfg.max_steps;
    rc.limits.max_prompt_chars = sv->cfg.max_prompt_chars;
    return routes_create(&rc, &sv->routes, err);
}

static enum status start_http(struct serve *sv, struct errbuf *err)
{
    const struct http_config hc = {
        .host = sv->cfg.host, .port = sv->cfg.port, .max_connections = sv->cfg.max_connections,
        .max_connections_per_ip = sv->cfg.max_connections_per_ip,
        .connection_timeout_s = sv->cfg.connection_timeout_s,
        .connection_memory = (size_t)sv->cfg.connection_memory_bytes,
        .max_body_bytes = (size_t)sv->cfg.max_body_bytes};
    struct http_handlers h;
    routes_handlers(sv->routes, &h);
    TRY(http_server_start(&hc, &h, &sv->http, err));
    const char *host = sv->cfg.host[0] ? sv->cfg.host : "127.0.0.1";
    const bool v6 = strchr(host, ':') != NULL; /* an IPv6 address goes in brackets */
    const int port = http_server_port(sv->http);
    if (sv->cfg.port == 0 && !log_enabled(LOG_INFO)) /* the chosen port must be seen */
        fprintf(stderr, "diffusiond serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "",
                host, v6 ? "]" : "", port);
    LOG_INFOF("serve", "listening on http://%s%s%s:%d (%s, max %d connections)", v6 ? "[" : "",
              host, v6 ? "]" : "", port, http_server_poller(sv->http), sv->cfg.max_connections);
    return STATUS_OK;
}

/* The model load's cancel check (sd_model_options.cancelled): a signal came first. */
static bool stop_requested(void *ctx)
{
    return atomic_load(&((struct serve *)ctx)->stop_loading);
}

static enum status load_model(struct serve *sv, struct errbuf *err)
{
    const uint64_t t0 = http_now_ns();
    const char *device = "cpu";
    TRY(device_backend_create(sv->cfg.device, sv->cfg.dtype, sv->cfg.cuda_plan, sv->cfg.threads,
                              &sv->backend, &device, err));
    struct sd_model_options opt;
    sd_model_options_default(&opt);
    opt.backend = sv->backend;
    opt.cancelled = stop_requested;
    opt.cancel_ctx = sv;
    enum status s = sd_model_load(sv->model_path, &opt, &sv->model, err);
    if (s == STATUS_CANCELLED)
        return s;
    if (s != STATUS_OK)
        return status_wrap(err, "model '%s'", sv->model_path);
    struct scheduler_config sc;
    scheduler_config_default(&sc);
    serve_config_to_scheduler(&sv->cfg, &sc);
    sc.models[0] = sv->model;
    sc.n_models = 1;
    TRY(scheduler_create(&sc, &sv->sched, err));
    TRY(scheduler_start(sv->sched, err));
    const struct sd_model *models[1] = {sv->model};
    const char *names[1] = {sv->model_name};
    routes_attach_model(sv->routes, sv->sched, models, names, 1, (int64_t)time(NULL));
    metrics_set_model_loaded(sv->metrics, 0, true);
    LOG_INFOF("serve", "model %s loaded from %s in %.2f s (%s on %s, %s batching)",
              sv->model_name, sv->model_path, (double)(http_now_ns() - t0) * 1e-9,
              checkpoint_family_name(sv->model->family), device,
              sched_mode_name(sv->cfg.batching));
    return STATUS_OK;
}

/* --- warm-up: one generation through the scheduler; ready when it completes --------- */

static void set_ready(struct serve *sv)
{
    if (routes_advance_state(sv->routes, SERVE_WARMING, SERVE_READY)) {
        metrics_set_ready(sv->metrics, true);
        if (routes_state(sv->routes) != SERVE_READY) /* the drain began meanwhile */
            metrics_set_ready(sv->metrics, false);
    }
}

static enum status submit_warmup_job(struct serve *sv, struct errbuf *err);

static void warmup_done(void *user, struct job_result *res)
{
    struct serve *sv = user;
    if (res->status != STATUS_OK) {
        LOG_WARNF("serve", "warm-up generation failed (%s); ready anyway", res->error);
        set_ready(sv);
        return;
    }
    if (sv->warmup_next < sv->warmup_jobs) {
        struct errbuf err;
        errbuf_clear(&err);
        if (submit_warmup_job(sv, &err) == STATUS_OK)
            return;
        LOG_WARNF("serve", "warm-up job %d of %d not submitted (%s); ready anyway",
                  sv->warmup_next, sv->warmup_jobs, err.msg);
    } else {
        LOG_INFOF("serve", "warm-up done in %.2f s (%d generation%s%s); ready",
                  (double)(http_now_ns() - sv->warmup_t0) * 1e-9, sv->warmup_jobs,
                  sv->warmup_jobs == 1 ? "" : "s",
                  sv->warmup_graphs ? ", a U-Net graph per batch size" : "");
    }
    set_ready(sv);
}

/* Submits warm-up job warmup_next (serve_warmup_job) and counts it. */
static enum status submit_warmup_job(struct serve *sv, struct errbuf *err)
{
    struct serve_warmup_job w;
    /* counted before the submission: the job may complete (warmup_done reads the count)
     * before scheduler_submit returns */
    serve_warmup_job(&sv->cfg, sv->warmup_graphs, sv->warmup_next++, &w);
    struct gen_params p;
    gen_params_default(sv->model, &p);
    p.prompt = "a warm-up picture";
    p.n = w.images;
    p.steps = p.steps > w.steps ? w.steps : p.steps; /* every buffer of a step */
    if (gen_params_validate(sv->model, &p, NULL) != STATUS_OK)
        p.n = 1; /* one image, then (the default's n) */
    const struct job_callbacks cb = {.on_complete = warmup_done, .user = sv};
    const struct submit_options opt = {.request_id = "warm-up"};
    return scheduler_submit(sv->sched, &p, &cb, &opt, NULL, NULL, err);
}

static enum status start_warmup(struct serve *sv, struct errbuf *err)
{
    routes_set_state(sv->routes, SERVE_WARMING);
    sv->warmup_graphs = sv->cfg.unet_graphs && backend_records_graphs(sv->backend);
    sv->warmup_jobs = serve_warmup_jobs(&sv->cfg, sv->warmup_graphs);
    sv->warmup_next = 0;
    if (sv->warmup_jobs == 0) {
        set_ready(sv);
        return STATUS_OK;
    }
    sv->warmup_t0 = http_now_ns();
    return submit_warmup_job(sv, err);
}

/* --- the loader thread ------------------------------------------------------------------- */

static void *loader_main(void *arg)
{
    struct serve *sv = arg;
    errbuf_clear(&sv->load_err);
    enum status s = load_model(sv, &sv->load_err);
    if (s == STATUS_OK)
        s = start_warmup(sv, &sv->load_err);
    sv->load_status = s;
    atomic_store(&sv->load_done, true);
    return NULL;
}

static enum status start_loader(struct serve *sv, struct errbuf *err)
{
    const int e = pthread_create(&sv->loader, NULL, loader_main, sv);
    if (e != 0)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "model loader thread: %s", strerror(e));
    sv->loader_started = true;
    return STATUS_OK;
}

/* Stops a load still running (its next tensor read fails) and joins the loader. */
static void stop_loader(struct serve *sv)
{
    if (!sv->loader_started)
        return;
    atomic_store(&sv->stop_loading, true);
    pthread_join(sv->loader, NULL);
    sv->loader_started = false;
}

/* --- the signal loop and the drain ---------------------------------------------------- */

/* Waits for SIGTERM/SIGINT, checking suspended clients meanwhile; returns the signal,
 * or 0 once `until` (when not NULL) is true. */
static int wait_for_signal(struct serve *sv, const sigset_t *set, atomic_bool *until)
{
    const struct timespec tick = {.tv_sec = 0, .tv_nsec = CLIENT_CHECK_MS * 1000000L};
    const struct timespec short_tick = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};
    for (;;) {
        if (until && atomic_load(until))
            return 0;
        const int sig = sigtimedwait(set, NULL, until ? &short_tick : &tick);
        if (sig > 0)
            return sig;
        if (sv->http)
            http_server_check_clients(sv->http);
    }
}

static void drain(struct serve *sv)
{
    routes_set_state(sv->routes, SERVE_DRAINING);
    metrics_set_ready(sv->metrics, false);
    http_server_quiesce(sv->http);
    int deferred = 0, open = 0;
    http_server_counts(sv->http, &deferred, &open);
    LOG_INFOF("serve", "draining: %d requests waiting for images, grace %d s", deferred,
              sv->cfg.drain_grace_s);
    struct errbuf err;
    if (sv->sched && scheduler_drain(sv->sched, (int64_t)sv->cfg.drain_grace_s * 1000, &err) !=
                         STATUS_OK)
        LOG_WARNF("serve", "%s (answered 503)", err.msg);
    encoder_pool_wait_idle(sv->pool, -1); /* every completion has answered its exchange */
    /* The answers are queued; let the daemon write them out. */
    const uint64_t until = http_now_ns() + (uint64_t)FLUSH_WAIT_MS * 1000000u;
    while (http_now_ns() < until) {
        http_server_counts(sv->http, &deferred, &open);
        if (open == 0)
            break;
        http_server_check_clients(sv->http);
        nanosleep(&(struct timespec){.tv_nsec = 10000000L}, NULL);
    }
    if (open)
        LOG_WARNF("serve", "%d answers still being written at shutdown", open);
}

static void teardown(struct serve *sv)
{
    http_server_stop(sv->http);
    scheduler_destroy(sv->sched);
    encoder_pool_destroy(sv->pool);
    image_store_destroy(sv->store);
    routes_destroy(sv->routes);
    sd_model_free(sv->model);
    if (sv->backend)
        backend_destroy(sv->backend);
    cors_destroy(sv->cors);
    auth_destroy(sv->auth);
    metrics_destroy(sv->metrics);
    serve_config_free(&sv->cfg);
}

static int parse(struct serve *sv, int argc, char **argv)
{
    struct errbuf err;
    const struct serve_env env = {.get = serve_env_envp, .ctx = environ};
    if (serve_config_parse(&sv->cfg, argc, argv, &env, &err) != STATUS_OK) {
        fprintf(stderr, "diffusiond serve: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (sv->cfg.help == SERVE_HELP_TEXT)
        serve_config_print_help(stdout);
    else if (sv->cfg.help == SERVE_HELP_MARKDOWN)
        serve_config_print_markdown(stdout);
    if (sv->cfg.help != SERVE_HELP_NONE)
        return -1;
    log_configure(sv->cfg.log_level, sv->cfg.log_format, NULL);
    if (sv->cfg.access_log) /* one access-log line per request, each as it happens */
        setvbuf(stdout, NULL, _IOLBF, 0);
    if (resolve_model(sv, &err) != STATUS_OK) {
        fprintf(stderr, "diffusiond serve: %s\n", err.msg);
        return EXIT_USAGE;
    }
    char desc[2048];
    serve_config_describe(&sv->cfg, desc, sizeof desc);
    LOG_INFOF("serve", "diffusiond %s: %s", DIFFUSIOND_VERSION, desc);
    return 0;
}

/* SIGTERM/SIGINT caught by a thread that does not block them — OpenBLAS's workers,
 * started before main and so outside the mask — are passed on to the main thread (its
 * tid is the pid), which blocks them until its sigtimedwait takes them; without this
 * the kernel's choice of such a thread meant the default action (exit 143, no drain)
 * whenever the main thread was not inside sigtimedwait. */
static void pass_to_main_thread(int sig)
{
    const int saved = errno;
    (void)syscall(SYS_tgkill, getpid(), getpid(), sig);
    errno = saved;
}

static void take_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pass_to_main_thread;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
}

int cmd_serve_main(int argc, char **argv)
{
    /* Before any thread of ours exists: each inherits the mask; only sigtimedwait below
     * takes these signals (pass_to_main_thread for the threads that were there before). */
    sigset_t set;
    take_signals(&set);

    struct serve sv;
    memset(&sv, 0, sizeof sv);
    atomic_init(&sv.load_done, false);
    atomic_init(&sv.stop_loading, false);
    int rc = parse(&sv, argc, argv);
    if (rc != 0) {
        serve_config_free(&sv.cfg);
        return rc < 0 ? 0 : rc;
    }
    struct errbuf err;
    errbuf_clear(&err);
    enum status st = make_services(&sv, &err);
    if (st == STATUS_OK)
        st = start_http(&sv, &err);
    if (st == STATUS_OK)
        st = start_loader(&sv, &err);
    int sig = 0;
    if (st == STATUS_OK) {
        sig = wait_for_signal(&sv, &set, &sv.load_done);
        stop_loader(&sv); /* done already, or cancelled at its next tensor */
        st = sv.load_status;
        err = sv.load_err;
    }
    if (sig != 0) { /* SIGTERM/SIGINT while the model loaded: a clean stop */
        LOG_INFOF("serve", "%s while loading the model: shutting down",
                  sig == SIGINT ? "SIGINT" : "SIGTERM");
        drain(&sv);
        teardown(&sv);
        LOG_INFOF("serve", "stopped");
        return 0;
    }
    if (st != STATUS_OK) {
        LOG_ERRORF("serve", "%s", err.msg);
        if (sv.http)
            drain(&sv);
        teardown(&sv);
        return st == STATUS_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_RUNTIME;
    }
    sig = wait_for_signal(&sv, &set, NULL);
    LOG_INFOF("serve", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    drain(&sv);
    teardown(&sv);
    LOG_INFOF("serve", "stopped");
    return 0;
}
