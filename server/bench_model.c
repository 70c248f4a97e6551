/* server/bench_model.c — `diffusiond bench model`: the Stable Diffusion models of a
 * checkpoint on the CPU backend, timed the way a request uses them.
 *
 *   unet   one U-Net step: batch 2 (the CFG pair: cond and uncond rows), latent
 *          size/8 × size/8, 77 context tokens, t = 999 for both rows
 *   vae    one VAE decode of one latent to a size × size image
 *
 * Inputs are standard-normal Philox streams with fixed seeds (the timing does not
 * depend on the values; random weights give finite activations).  Each part runs in
 * a forked child of its own, which creates the backend, loads only that component,
 * runs it once to warm up (the workspace grows to its high-water mark there) and
 * then --repeat timed runs; the median is the figure.  The child measures memory
 * three ways, from /proc/self/status and getrusage:
 *
 *   rss_load   VmRSS once the component is on the backend and the checkpoint is
 *              closed (its mapping gone): the resident weights plus the binary;
 *   peak_load  VmHWM at that moment: the peak while loading (the file's mapped pages
 *              and the weights' backend copies are resident together);
 *   peak_run   VmHWM over the warm-up and timed runs, the high-water mark having
 *              been reset to the current RSS (clear_refs 5) after loading: weights +
 *              inputs + workspace + the kernels' scratch, what the process needs to
 *              serve;
 *   peak_all   the larger of the two: the part's process peak.  (The reset also
 *              resets what getrusage's ru_maxrss reports, so that is used only
 *              where /proc cannot be written, and then peak_run is not given.)
 *
 * Nothing else runs in the parent, so the figures are the part's alone.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_sgemm.h"
#include "engine/philox.h"
#include "engine/profile.h"
#include "engine/threadpool.h"
#include "engine/workspace.h"
#include "models/checkpoint.h"
#include "models/unet.h"
#include "models/vae.h"
#include "server/bench.h"

extern char *openblas_get_corename(void) __attribute__((weak));

#define MODEL_REPEAT_MAX 100
#define CONTEXT_TOKENS 77

enum model_part { PART_UNET = 0, PART_VAE, PART_COUNT_ };

static const char *const part_names[PART_COUNT_] = {"unet", "vae"};

struct model_opts {
    const char *model;
    const char *config_dir; /* single file: a diffusers folder with the configs */
    int threads;
    int repeat;
    int size;     /* image side in pixels */
    int batch;    /* U-Net rows (2: one CFG pair) */
    const char *json;
    const char *only; /* "unet", "vae" or NULL: both */
    int profile;      /* > 0: after timing, one profiled run, its `profile` costliest shapes */
};

/* What a child sends back through its pipe (plain data: same binary both sides). */
struct part_result {
    int status; /* enum status */
    char msg[512];
    char what[96];     /* e.g. "unet step, batch 2, latent 64x64" */
    double load_s;     /* checkpoint open + config + load onto the backend */
    double warmup_s;   /* first run (workspace grows) */
    double median_s, best_s, worst_s;
    double cpu_s;      /* median process CPU seconds of a timed run */
    double runs_s[MODEL_REPEAT_MAX]; /* each timed run, in order */
    int n_runs;
    long rss_load_kib, peak_load_kib, peak_run_kib, peak_all_kib; /* -1: unknown */
    size_t workspace_bytes; /* workspace high-water mark */
};

/* --- time and memory ------------------------------------------------------------- */

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), -1 when unavailable. */
static long proc_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kib = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* Resets VmHWM to the current RSS (Linux ≥ 4.0); false when not permitted. */
static bool reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static const char *coretype(void)
{
    const char *e = getenv("OPENBLAS_CORETYPE");
    return e && *e ? e : "unset";
}

static const char *blas_core(void)
{
    return openblas_get_corename ? openblas_get_corename() : "n/a";
}

/* --- inputs ---------------------------------------------------------------------- */

/* A backend tensor {shape} of standard-normal values from Philox (seed, 0). */
static enum status normal_tensor(struct backend *b, int ndim, const int64_t *shape,
                                 uint64_t seed, struct tensor *t, struct errbuf *err)
{
    *t = tensor_desc(DTYPE_F32, ndim, shape);
    enum status s = backend_alloc(b, t, err);
    if (s != STATUS_OK)
        return s;
    size_t n = (size_t)tensor_numel(t);
    float *h = malloc(n * sizeof *h);
    if (!h) {
        backend_free(t);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "bench model: out of memory");
    }
    philox_normal_fill(seed, 0, 0, h, n);
    s = backend_upload(t, h, DTYPE_F32, err);
    free(h);
    if (s != STATUS_OK)
        backend_free(t);
    return s;
}

static enum status empty_tensor(struct backend *b, int ndim, const int64_t *shape,
                                struct tensor *t, struct errbuf *err)
{
    *t = tensor_desc(DTYPE_F32, ndim, shape);
    return backend_alloc(b, t, err);
}

/* --- the parts ------------------------------------------------------------------- */

/* One part's model and inputs, loaded in the child. */
struct part_job {
    enum model_part part;
    struct unet_model *unet;
    struct vae_model *vae;
    struct workspace ws;
    struct tensor x, ctx, out; /* U-Net: latents, context, prediction; VAE: latents, -, image */
    float timesteps[8];
};

static enum status part_run(struct part_job *j, struct errbuf *err)
{
    if (j->part == PART_UNET)
        return unet_forward(j->unet, &j->ws, &j->x, j->timesteps, &j->ctx, &j->out, err);
    return vae_decode(j->vae, &j->ws, &j->x, &j->out, err);
}

static enum status load_unet(const struct checkpoint *ck, struct backend *be,
                             struct part_job *j, struct errbuf *err)
{
    const struct weights *w;
    const json_t *config;
    struct unet_config cfg;
    enum status s = checkpoint_component(ck, CHECKPOINT_UNET, &w, &config, err);
    if (s == STATUS_OK)
        s = unet_config_from_json(config, &cfg, err);
    if (s == STATUS_OK)
        s = unet_load(w, &cfg, be, &j->unet, err);
    return s;
}

static enum status load_vae(const struct checkpoint *ck, struct backend *be,
                            struct part_job *j, struct errbuf *err)
{
    const struct weights *w;
    const json_t *config;
    struct vae_config cfg;
    enum status s = checkpoint_component(ck, CHECKPOINT_VAE, &w, &config, err);
    if (s == STATUS_OK)
        s = vae_config_from_json(config, &cfg, err);
    if (s == STATUS_OK)
        s = vae_load(w, &cfg, be, &j->vae, err);
    return s;
}

/* Opens the checkpoint, loads the part's component, closes the checkpoint. */
static enum status part_load(const struct model_opts *o, struct backend *be,
                             struct part_job *j, struct errbuf *err)
{
    struct checkpoint *ck = NULL;
    struct checkpoint_options opt;
    checkpoint_options_default(&opt);
    opt.config_dir = o->config_dir;
    enum status s = checkpoint_open(o->model, &opt, &ck, err);
    if (s != STATUS_OK)
        return s;
    s = j->part == PART_UNET ? load_unet(ck, be, j, err) : load_vae(ck, be, j, err);
    checkpoint_close(ck);
    return s;
}

static enum status unet_inputs(const struct model_opts *o, struct backend *be,
                               struct part_job *j, struct part_result *r, struct errbuf *err)
{
    const int64_t b = o->batch, h = o->size / 8;
    const int64_t xs[4] = {b, h, h, unet_in_channels(j->unet)};
    const int64_t cs[3] = {b, CONTEXT_TOKENS, unet_cross_attention_dim(j->unet)};
    const int64_t os[4] = {b, h, h, unet_out_channels(j->unet)};
    for (int i = 0; i < o->batch; i++)
        j->timesteps[i] = 999.0f;
    snprintf(r->what, sizeof r->what, "unet step, batch %d, latent %lldx%lld", o->batch,
             (long long)h, (long long)h);
    enum status s = normal_tensor(be, 4, xs, 1, &j->x, err);
    if (s == STATUS_OK)
        s = normal_tensor(be, 3, cs, 2, &j->ctx, err);
    if (s == STATUS_OK)
        s = empty_tensor(be, 4, os, &j->out, err);
    return s;
}

static enum status vae_inputs(const struct model_opts *o, struct backend *be,
                              struct part_job *j, struct part_result *r, struct errbuf *err)
{
    const int f = vae_downscale(j->vae);
    if (o->size % f != 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "bench model: --size %d is not a multiple of the VAE's %d", o->size, f);
    const int64_t h = o->size / f;
    const int64_t xs[4] = {1, h, h, vae_config(j->vae)->latent_channels};
    const int64_t is[4] = {1, o->size, o->size, vae_config(j->vae)->out_channels};
    snprintf(r->what, sizeof r->what, "vae decode, 1 image %dx%d", o->size, o->size);
    enum status s = normal_tensor(be, 4, xs, 3, &j->x, err);
    if (s == STATUS_OK)
        s = empty_tensor(be, 4, is, &j->out, err);
    return s;
}

/* Warm-up run, then o->repeat timed runs: median, best, worst, median CPU time. */
static enum status part_time(const struct model_opts *o, struct part_job *j,
                             struct part_result *r, struct errbuf *err)
{
    double wall[MODEL_REPEAT_MAX], cpu[MODEL_REPEAT_MAX];
    double t0 = clock_s(CLOCK_MONOTONIC);
    enum status s = part_run(j, err);
    r->warmup_s = clock_s(CLOCK_MONOTONIC) - t0;
    for (int i = 0; i < o->repeat && s == STATUS_OK; i++) {
        double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        s = part_run(j, err);
        wall[i] = clock_s(CLOCK_MONOTONIC) - w0;
        cpu[i] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    if (s != STATUS_OK)
        return s;
    int n = o->repeat;
    memcpy(r->runs_s, wall, (size_t)n * sizeof wall[0]);
    r->n_runs = n;
    qsort(wall, (size_t)n, sizeof wall[0], cmp_double);
    qsort(cpu, (size_t)n, sizeof cpu[0], cmp_double);
    r->median_s = n % 2 ? wall[n / 2] : 0.5 * (wall[n / 2 - 1] + wall[n / 2]);
    r->cpu_s = n % 2 ? cpu[n / 2] : 0.5 * (cpu[n / 2 - 1] + cpu[n / 2]);
    r->best_s = wall[0];
    r->worst_s = wall[n - 1];
    r->workspace_bytes = j->ws.high_water;
    return STATUS_OK;
}

/* One more run with every op timed between syncs (engine/profile.h), printed. */
static enum status part_profile(const struct model_opts *o, struct backend *be,
                                struct part_job *j, const struct part_result *r,
                                struct errbuf *err)
{
    struct op_profile *prof;
    TRY(op_profile_create(&prof, err));
    op_profile_attach(be, prof);
    enum status s = part_run(j, err);
    op_profile_detach(be);
    if (s == STATUS_OK) {
        op_profile_print(prof, r->what, o->profile, stdout);
        fflush(stdout);
    }
    op_profile_destroy(prof);
    return s;
}

static void part_release(struct part_job *j)
{
    backend_free(&j->x);
    backend_free(&j->ctx);
    backend_free(&j->out);
    workspace_destroy(&j->ws);
    unet_free(j->unet);
    vae_free(j->vae);
}

/* The child's work: everything of one part, results into r. */
static enum status part_measure(const struct model_opts *o, enum model_part part,
                                struct part_result *r, struct errbuf *err)
{
    struct backend *be = NULL;
    struct part_job j = {.part = part};
    enum status s = cpu_backend_create(o->threads, &be, err);
    if (s != STATUS_OK)
        return s;
    double t0 = clock_s(CLOCK_MONOTONIC);
    s = part_load(o, be, &j, err);
    r->load_s = clock_s(CLOCK_MONOTONIC) - t0;
    bool reset = false;
    if (s == STATUS_OK) {
        r->rss_load_kib = proc_status_kib("VmRSS");
        r->peak_load_kib = proc_status_kib("VmHWM");
        reset = reset_peak_rss();
        s = part == PART_UNET ? unet_inputs(o, be, &j, r, err) : vae_inputs(o, be, &j, r, err);
    }
    if (s == STATUS_OK)
        s = workspace_init(&j.ws, be, DTYPE_F32, 0, err);
    if (s == STATUS_OK)
        s = part_time(o, &j, r, err);
    if (s == STATUS_OK && o->profile > 0)
        s = part_profile(o, be, &j, r, err);
    if (s == STATUS_OK && reset) {
        r->peak_run_kib = proc_status_kib("VmHWM");
        r->peak_all_kib = r->peak_run_kib > r->peak_load_kib ? r->peak_run_kib : r->peak_load_kib;
    }
    part_release(&j);
    backend_destroy(be);
    return s;
}

static void child_main(const struct model_opts *o, enum model_part part, int fd)
{
    struct part_result r = {.rss_load_kib = -1, .peak_load_kib = -1, .peak_run_kib = -1,
                            .peak_all_kib = -1};
    struct errbuf err;
    errbuf_clear(&err);
    r.status = (int)part_measure(o, part, &r, &err);
    if (r.status != STATUS_OK)
        snprintf(r.msg, sizeof r.msg, "%s", err.msg);
    struct rusage ru;
    if (r.peak_all_kib < 0 && getrusage(RUSAGE_SELF, &ru) == 0)
        r.peak_all_kib = ru.ru_maxrss; /* no reset happened: the whole child's peak */
    ssize_t w = write(fd, &r, sizeof r);
    (void)w;
}

/* Reads up to n bytes until EOF; returns the count. */
static size_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* Runs one part in a forked child and collects its result. */
static enum status part_fork(const struct model_opts *o, enum model_part part,
                             struct part_result *r, struct errbuf *err)
{
    int fds[2];
    if (pipe(fds) != 0)
        return status_fail(err, STATUS_INTERNAL, "bench model: pipe failed");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return status_fail(err, STATUS_INTERNAL, "bench model: fork failed");
    }
    if (pid == 0) { /* child: measure, report, leave without the parent's atexit */
        close(fds[0]);
        child_main(o, part, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    size_t got = read_full(fds[0], r, sizeof *r);
    close(fds[0]);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    if (got != sizeof *r)
        return status_fail(err, STATUS_INTERNAL, "bench model: %s child died (wait status %d)",
                           part_names[part], wstatus);
    if (r->status != STATUS_OK)
        return status_fail(err, (enum status)r->status, "%s: %s", part_names[part], r->msg);
    return STATUS_OK;
}

/* --- output ---------------------------------------------------------------------- */

static double mib(long kib)
{
    return kib < 0 ? -1.0 : (double)kib / 1024.0;
}

static void print_header(const struct model_opts *o)
{
    printf("diffusiond bench model: %s\n  %d threads, median of %d after 1 warm-up, size %d, "
           "OPENBLAS_CORETYPE=%s (OpenBLAS core %s), AVX-512 GEMM kernels: %s\n",
           o->model, o->threads, o->repeat, o->size, coretype(), blas_core(),
           cpu_sgemm_avx512_supported() ? "yes" : "no (CBLAS only)");
    fflush(stdout);
}

static void print_result(const struct part_result *r)
{
    printf("\n%s\n"
           "  median %.3f s (best %.3f, worst %.3f; CPU %.2f s per run = %.2f cores busy)\n"
           "  warm-up %.3f s, load %.2f s, workspace %.1f MiB\n"
           "  RSS after load %.0f MiB (peak while loading %.0f MiB); peak RSS in the runs "
           "%.0f MiB; part's process peak %.0f MiB\n",
           r->what, r->median_s, r->best_s, r->worst_s, r->cpu_s,
           r->median_s > 0 ? r->cpu_s / r->median_s : 0.0, r->warmup_s, r->load_s,
           (double)r->workspace_bytes / (1024.0 * 1024.0), mib(r->rss_load_kib),
           mib(r->peak_load_kib), mib(r->peak_run_kib), mib(r->peak_all_kib));
    fflush(stdout);
}

static void write_part_json(FILE *f, const char *name, const struct part_result *r)
{
    fprintf(f,
            "    \"%s\": {\"what\": \"%s\", \"seconds\": %.6f, \"best_seconds\": %.6f, "
            "\"worst_seconds\": %.6f, \"cpu_seconds\": %.6f, \"warmup_seconds\": %.6f, "
            "\"load_seconds\": %.6f, \"workspace_bytes\": %zu, \"rss_after_load_kib\": %ld, "
            "\"peak_rss_load_kib\": %ld, \"peak_rss_runs_kib\": %ld, \"peak_rss_part_kib\": %ld",
            name, r->what, r->median_s, r->best_s, r->worst_s, r->cpu_s, r->warmup_s, r->load_s,
            r->workspace_bytes, r->rss_load_kib, r->peak_load_kib, r->peak_run_kib,
            r->peak_all_kib);
    fprintf(f, ", \"runs_seconds\": [");
    for (int i = 0; i < r->n_runs; i++)
        fprintf(f, "%s%.6f", i ? ", " : "", r->runs_s[i]);
    fprintf(f, "]}");
}

static enum status write_json(const struct model_opts *o, const struct part_result *r,
                              const bool *done, struct errbuf *err)
{
    FILE *f = fopen(o->json, "w");
    if (!f)
        return status_fail(err, STATUS_IO, "bench model: cannot write %s", o->json);
    fprintf(f,
            "{\n  \"model\": \"%s\",\n  \"threads\": %d,\n  \"repeat\": %d,\n  \"size\": %d,\n"
            "  \"batch\": %d,\n  \"openblas_coretype\": \"%s\",\n  \"openblas_core\": \"%s\",\n"
            "  \"avx512_gemm\": %s,\n  \"parts\": {\n",
            o->model, o->threads, o->repeat, o->size, o->batch, coretype(), blas_core(),
            cpu_sgemm_avx512_supported() ? "true" : "false");
    bool first = true;
    for (int p = 0; p < PART_COUNT_; p++) {
        if (!done[p])
            continue;
        fputs(first ? "" : ",\n", f);
        write_part_json(f, part_names[p], &r[p]);
        first = false;
    }
    fprintf(f, "\n  }\n}\n");
    return fclose(f) == 0 ? STATUS_OK
                          : status_fail(err, STATUS_IO, "bench model: cannot write %s", o->json);
}

/* --- options --------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: diffusiond bench model --model PATH [--threads N] [--repeat N] [--size S]\n"
            "                              [--batch N] [--only unet|vae] [--json FILE]\n"
            "                              [--config-dir DIR] [--profile N]\n"
            "  --model PATH  a diffusers folder or a single-file .safetensors checkpoint\n"
            "  --config-dir DIR  single file: a diffusers folder whose configs to use\n"
            "  --threads N   backend threads (default: one per online CPU)\n"
            "  --repeat N    timed runs per part after one warm-up, median reported (default 3)\n"
            "  --size S      image side in pixels (default 512): U-Net latent S/8, VAE S×S\n"
            "  --batch N     U-Net batch rows (default 2: the CFG pair of one image)\n"
            "  --only PART   unet or vae (default: both, each in its own child process)\n"
            "  --json FILE   also write the results as JSON to FILE\n"
            "  --profile N   then one more run with each op timed between syncs: time per\n"
            "                op and the N costliest shapes (engine/profile.h)\n");
}

static bool part_wanted(const struct model_opts *o, enum model_part p)
{
    return !o->only || strcmp(o->only, part_names[p]) == 0;
}

/* Returns 0 on success, 1 on --help (printed), 2 on a bad option. */
static int parse_args(int argc, char **argv, struct model_opts *o)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"threads", required_argument, NULL, 't'},
        {"repeat", required_argument, NULL, 'r'}, {"size", required_argument, NULL, 's'},
        {"batch", required_argument, NULL, 'b'},  {"only", required_argument, NULL, 'o'},
        {"json", required_argument, NULL, 'j'},   {"config-dir", required_argument, NULL, 'c'},
        {"profile", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct model_opts){.threads = threadpool_cpu_count(), .repeat = 3, .size = 512,
                             .batch = 2};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm': o->model = optarg; break;
        case 't': o->threads = atoi(optarg); break;
        case 'r': o->repeat = atoi(optarg); break;
        case 's': o->size = atoi(optarg); break;
        case 'b': o->batch = atoi(optarg); break;
        case 'o': o->only = optarg; break;
        case 'j': o->json = optarg; break;
        case 'c': o->config_dir = optarg; break;
        case 'p': o->profile = atoi(optarg); break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    bool only_ok = !o->only || strcmp(o->only, "unet") == 0 || strcmp(o->only, "vae") == 0;
    if (optind != argc || !o->model || !only_ok || o->threads < 1 || o->repeat < 1 ||
        o->repeat > MODEL_REPEAT_MAX || o->size < 8 || o->size % 8 != 0 || o->batch < 1 ||
        o->batch > 8 || o->profile < 0) {
        usage(stderr);
        return 2;
    }
    return 0;
}

int bench_model_main(int argc, char **argv)
{
    struct model_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    print_header(&o);
    struct part_result r[PART_COUNT_] = {0};
    bool done[PART_COUNT_] = {false};
    struct errbuf err;
    errbuf_clear(&err);
    enum status s = STATUS_OK;
    for (int p = 0; p < PART_COUNT_ && s == STATUS_OK; p++) {
        if (!part_wanted(&o, (enum model_part)p))
            continue;
        s = part_fork(&o, (enum model_part)p, &r[p], &err);
        if (s == STATUS_OK) {
            done[p] = true;
            print_result(&r[p]);
        }
    }
    if (s == STATUS_OK && o.json)
        s = write_json(&o, r, done, &err);
    if (s != STATUS_OK)
        fprintf(stderr, "diffusiond bench model: %s: %s\n", status_name(s), err.msg);
    return s == STATUS_OK ? 0 : 1;
}
