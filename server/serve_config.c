/* server/serve_config.c — the settings table and the parser built on it. */
#include "server/serve_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "models/pipeline.h"

enum setting_type {
    SET_STRING,   /* char[] field of `size` bytes */
    SET_INT,      /* int in [min, max] */
    SET_BYTES,    /* int64_t in [min, max], optional KiB/MiB/GiB suffix */
    SET_BOOL,     /* --x / --no-x; env 1/0/true/false/yes/no/on/off */
    SET_BATCHING, /* enum sched_mode */
    SET_LOG_FORMAT,
    SET_LOG_LEVEL,
    SET_ORIGINS,  /* comma list → cors_origins */
    SET_KEYS,     /* comma list → api_keys (environment only) */
};

struct setting {
    const char *flag; /* without "--"; NULL: environment only */
    const char *env;
    enum setting_type type;
    size_t offset;    /* into struct serve_config */
    size_t size;      /* SET_STRING: the array's size */
    int64_t min, max;
    const char *def;  /* the default, parsed by serve_config_default and shown in docs */
    const char *help;
};

#define F(field) offsetof(struct serve_config, field), sizeof(((struct serve_config *)0)->field)
#define KIB 1024LL
#define MIB (1024LL * 1024)
#define GIB (1024LL * 1024 * 1024)

/* THE table: parser, --help, docs/serve-settings.md and describe all read it. */
static const struct setting settings[] = {
    {"host", "DIFFUSIOND_HOST", SET_STRING, F(host), 0, 0, "127.0.0.1",
     "address to listen on (the Docker image sets 0.0.0.0)"},
    {"port", "DIFFUSIOND_PORT", SET_INT, F(port), 0, 65535, "8080",
     "TCP port; 0 picks a free port and logs it"},
    {"model", "DIFFUSIOND_MODEL", SET_STRING, F(model), 0, 0, "",
     "diffusers folder or .safetensors file; empty: the bundled model (models/default; the build's DIFFUSIOND_DEFAULT_MODEL)"},
    {"model-name", "DIFFUSIOND_MODEL_NAME", SET_STRING, F(model_name), 0, 0, "",
     "the model's id in /v1/models and in requests' \"model\"; empty: the model path's base name"},
    {"threads", "DIFFUSIOND_THREADS", SET_INT, F(threads), 0, 4096, "0",
     "CPU compute threads; 0: all CPUs"},
    {"device", "DIFFUSIOND_DEVICE", SET_STRING, F(device), 0, 0, "auto",
     "where the model runs: cpu, cuda, or auto (cuda when the build has it and a GPU is there)"},
    {"dtype", "DIFFUSIOND_DTYPE", SET_STRING, F(dtype), 0, 0, "f16",
     "on cuda: weights and activations in f16, bf16 or f32 (the CPU computes in f32)"},
    {"cuda-plan", "DIFFUSIOND_CUDA_PLAN", SET_STRING, F(cuda_plan), 0, 0, "",
     "on cuda: planning choices over the defaults, key=value,… (gn=auto|split|fused|cluster|tile, gncl=auto|2|4|8, stack=on|off, autotune=on|off, find=on|off, im2col=N, attention=…, tiles=0|1|2, pdl=on|off, convfuse=on|off; docs/cuda.md); empty: the defaults"},
    {"warmup", "DIFFUSIOND_WARMUP", SET_BOOL, F(warmup), 0, 0, "true",
     "run one generation before /readyz reports ready, on a GPU with U-Net graphs one per "
     "batch size up to --max-batch-rows (--no-warmup to skip)"},
    {"batching", "DIFFUSIOND_BATCHING", SET_BATCHING, F(batching), 0, 0, "step",
     "batching mode: step (continuous, per denoising step), request, or none"},
    {"max-batch-rows", "DIFFUSIOND_MAX_BATCH_ROWS", SET_INT, F(max_batch_rows), 1,
     SD_MAX_BATCH_ROWS, "16", "U-Net rows per call (an image with guidance > 1 takes 2)"},
    {"lanes", "DIFFUSIOND_LANES", SET_INT, F(lanes), 1, BACKEND_LANES_MAX, "1",
     "step batching: image sizes stepped at once, one U-Net call each on its own device "
     "stream (cuda; the CPU runs them one after the other)"},
    {"queue-capacity", "DIFFUSIOND_QUEUE_CAPACITY", SET_INT, F(queue_capacity), 1, 1000000,
     "64", "jobs waiting for admission; beyond it requests get 429"},
    {"request-max-wait-ms", "DIFFUSIOND_REQUEST_MAX_WAIT_MS", SET_INT, F(request_max_wait_ms),
     0, 60000, "50", "request batching: longest wait to gather a batch; 0: no wait"},
    {"text-cache-entries", "DIFFUSIOND_TEXT_CACHE_ENTRIES", SET_INT, F(text_cache_entries), 1,
     1000000, "256", "prompt embeddings kept (LRU)"},
    {"unet-graphs", "DIFFUSIOND_UNET_GRAPHS", SET_BOOL, F(unet_graphs), 0, 0, "true",
     "on cuda: replay each U-Net call from a recorded CUDA graph (the CPU ignores it)"},
    {"max-body-bytes", "DIFFUSIOND_MAX_BODY_BYTES", SET_BYTES, F(max_body_bytes), 1 * KIB,
     1 * GIB, "8MiB", "largest request body (img2img's base64 images); 413 above it (suffixes KiB, MiB, GiB)"},
    {"max-body-bytes-total", "DIFFUSIOND_MAX_BODY_BYTES_TOTAL", SET_BYTES,
     F(max_body_bytes_total), 1 * KIB, 64 * GIB, "256MiB",
     "request bodies held at once, from their headers until the answer (uploads waiting "
     "in the queue included); a request past it gets 503 with Retry-After; at least "
     "--max-body-bytes"},
    {"max-connections", "DIFFUSIOND_MAX_CONNECTIONS", SET_INT, F(max_connections), 1, 1000000,
     "256", "open HTTP connections at most"},
    {"max-connections-per-ip", "DIFFUSIOND_MAX_CONNECTIONS_PER_IP", SET_INT,
     F(max_connections_per_ip), 0, 1000000, "0",
     "open HTTP connections from one client address at most (refused past it; "
     "0: no limit — behind a proxy every client has the proxy's address)"},
    {"connection-timeout-s", "DIFFUSIOND_CONNECTION_TIMEOUT_S", SET_INT,
     F(connection_timeout_s), 1, 86400, "30", "idle connection timeout, seconds"},
    {"connection-memory-bytes", "DIFFUSIOND_CONNECTION_MEMORY_BYTES", SET_BYTES,
     F(connection_memory_bytes), 4 * KIB, 1 * GIB, "64KiB",
     "libmicrohttpd's memory limit per connection"},
    {"max-width", "DIFFUSIOND_MAX_WIDTH", SET_INT, F(max_width), 8, GEN_MAX_SIDE, "2048",
     "largest image width, pixels (multiple of 8)"},
    {"max-height", "DIFFUSIOND_MAX_HEIGHT", SET_INT, F(max_height), 8, GEN_MAX_SIDE, "2048",
     "largest image height, pixels (multiple of 8)"},
    {"min-side", "DIFFUSIOND_MIN_SIDE", SET_INT, F(min_side), 8, GEN_MAX_SIDE, "64",
     "smallest image width or height, pixels (multiple of 8)"},
    {"max-n", "DIFFUSIOND_MAX_N", SET_INT, F(max_n), 1, GEN_MAX_IMAGES, "8",
     "most images per request (\"n\")"},
    {"max-steps", "DIFFUSIOND_MAX_STEPS", SET_INT, F(max_steps), 1, GEN_MAX_STEPS, "150",
     "most denoising steps per request (\"steps\")"},
    {"max-prompt-chars", "DIFFUSIOND_MAX_PROMPT_CHARS", SET_INT, F(max_prompt_chars), 1,
     1000000, "4000", "longest prompt or negative prompt, characters"},
    {"url-ttl-s", "DIFFUSIOND_URL_TTL_S", SET_INT, F(url_ttl_s), 1, 86400 * 7, "600",
     "response_format url: seconds an image stays downloadable"},
    {"url-store-images", "DIFFUSIOND_URL_STORE_IMAGES", SET_INT, F(url_store_images), 1,
     1000000, "256", "response_format url: images kept at most (oldest dropped first)"},
    {"encoder-threads", "DIFFUSIOND_ENCODER_THREADS", SET_INT, F(encoder_threads), 1, 256, "2",
     "threads encoding PNG/JPEG/WebP and base64"},
    {"api-keys-file", "DIFFUSIOND_API_KEYS_FILE", SET_STRING, F(api_keys_file), 0, 0, "",
     "file of API keys, one per line ('#' comments); with DIFFUSIOND_API_KEYS or this, "
     "requests need 'Authorization: Bearer <key>'"},
    {NULL, "DIFFUSIOND_API_KEYS", SET_KEYS, F(api_keys), 0, 0, "",
     "comma-separated API keys (environment only: keys never appear in ps)"},
    {"cors-origins", "DIFFUSIOND_CORS_ORIGINS", SET_ORIGINS, F(cors_origins), 0, 0, "",
     "comma-separated allowed origins (scheme://host[:port], or *); empty: CORS off"},
    {"drain-grace-s", "DIFFUSIOND_DRAIN_GRACE_S", SET_INT, F(drain_grace_s), 0, 86400, "30",
     "on SIGTERM/SIGINT: seconds admitted work may take to finish"},
    {"watchdog-s", "DIFFUSIOND_WATCHDOG_S", SET_INT, F(watchdog_s), 1, 86400, "300",
     "/livez fails when a worker with work finishes no U-Net step for this long"},
    {"log-format", "DIFFUSIOND_LOG_FORMAT", SET_LOG_FORMAT, F(log_format), 0, 0, "plain",
     "log lines: plain or json"},
    {"log-level", "DIFFUSIOND_LOG_LEVEL", SET_LOG_LEVEL, F(log_level), 0, 0, "info",
     "debug, info, warn, error or off"},
    {"access-log", "DIFFUSIOND_ACCESS_LOG", SET_BOOL, F(access_log), 0, 0, "true",
     "one JSON line per request on standard output (--no-access-log to stop)"},
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* Where a value came from, for the error message. */
enum source { FROM_DEFAULT, FROM_ENV, FROM_FLAG };

static const char *source_name(enum source s)
{
    return s == FROM_FLAG ? "command line" : s == FROM_ENV ? "environment" : "default";
}

static enum status bad_value(const struct setting *s, enum source src, const char *value,
                             const char *why, struct errbuf *err)
{
    if (s->flag)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "--%s / %s: '%.200s' (from the %s) %s",
                           s->flag, s->env, value, source_name(src), why);
    return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: (from the %s) %s", s->env,
                       source_name(src), why);
}

static bool parse_i64(const char *v, int64_t *out)
{
    if (!*v || isspace((unsigned char)*v))
        return false;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (errno || *end)
        return false;
    *out = x;
    return true;
}

/* "65536", "64KiB", "1MiB", "2GiB" (also k/K/KB, m/M/MB, g/G/GB: all binary). */
static bool parse_bytes(const char *v, int64_t *out)
{
    if (!isdigit((unsigned char)*v))
        return false;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (errno)
        return false;
    static const struct { const char *suffix; int64_t mult; } units[] = {
        {"", 1}, {"k", KIB}, {"K", KIB}, {"KB", KIB}, {"KiB", KIB}, {"m", MIB}, {"M", MIB},
        {"MB", MIB}, {"MiB", MIB}, {"g", GIB}, {"G", GIB}, {"GB", GIB}, {"GiB", GIB}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (x > INT64_MAX / units[i].mult)
                return false;
            *out = x * units[i].mult;
            return true;
        }
    }
    return false;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return (*out = true), true;
        if (strcasecmp(v, no[i]) == 0)
            return (*out = false), true;
    }
    return false;
}

static void free_list(char ***list, int *n)
{
    for (int i = 0; i < *n; i++) {
        /* keys: wipe before freeing */
        volatile char *p = (*list)[i];
        while (*p)
            *p++ = 0;
        free((*list)[i]);
    }
    free(*list);
    *list = NULL;
    *n = 0;
}

/* Trims ASCII whitespace at both ends of s[0 … len); returns the start, *len updated. */
static const char *trim(const char *s, size_t *len)
{
    while (*len && isspace((unsigned char)s[0]))
        s++, (*len)--;
    while (*len && isspace((unsigned char)s[*len - 1]))
        (*len)--;
    return s;
}

static enum status list_push(char ***list, int *n, int max, const char *s, size_t len,
                             const char *what, struct errbuf *err)
{
    if (*n >= max)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "more than %d %s", max, what);
    char **grown = realloc(*list, (size_t)(*n + 1) * sizeof *grown);
    if (!grown)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s list", what);
    *list = grown;
    char *copy = strndup(s, len);
    if (!copy)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s list", what);
    grown[(*n)++] = copy;
    return STATUS_OK;
}

/* An API key: 1 … SERVE_API_KEY_MAX bytes of visible ASCII (no spaces, no commas). */
static bool key_sane(const char *s, size_t len)
{
    if (len == 0 || len > SERVE_API_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == ',')
            return false;
    return true;
}

/* Splits a comma list into *list (replacing it); empty items are skipped. */
static enum status parse_list(const struct setting *s, enum source src, const char *v,
                              char ***list, int *n, struct errbuf *err)
{
    bool keys = s->type == SET_KEYS;
    free_list(list, n);
    for (const char *p = v;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = trim(p, &len);
        if (len) {
            if (keys && !key_sane(item, len))
                return bad_value(s, src, "…", "has a key that is longer than 512 bytes or "
                                 "holds spaces or control characters", err);
            enum status st = list_push(list, n, keys ? SERVE_MAX_API_KEYS : SERVE_MAX_CORS_ORIGINS,
                                       item, len, keys ? "API keys" : "CORS origins", err);
            if (st != STATUS_OK)
                return status_wrap(err, "%s", s->env);
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return STATUS_OK;
}

static enum status set_string(const struct setting *s, enum source src, const char *v,
                              char *field, struct errbuf *err)
{
    size_t len = strlen(v);
    if (len >= s->size)
        return bad_value(s, src, v, "is too long", err);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return bad_value(s, src, v, "holds a control character", err);
    memcpy(field, v, len + 1);
    return STATUS_OK;
}

/* Applies one value to cfg.  A value shown in errors is never a key. */
static enum status apply(struct serve_config *cfg, const struct setting *s, enum source src,
                         const char *v, struct errbuf *err)
{
    char *field = (char *)cfg + s->offset;
    char why[128];
    int64_t x = 0;
    switch (s->type) {
    case SET_STRING:
        return set_string(s, src, v, field, err);
    case SET_INT:
    case SET_BYTES:
        if (!(s->type == SET_INT ? parse_i64(v, &x) : parse_bytes(v, &x)))
            return bad_value(s, src, v, s->type == SET_INT ? "is not an integer"
                                                           : "is not a byte count", err);
        if (x < s->min || x > s->max) {
            snprintf(why, sizeof why, "is not in [%" PRId64 ", %" PRId64 "]", s->min, s->max);
            return bad_value(s, src, v, why, err);
        }
        if (s->type == SET_INT)
            *(int *)(void *)field = (int)x;
        else
            *(int64_t *)(void *)field = x;
        return STATUS_OK;
    case SET_BOOL:
        if (!parse_bool(v, (bool *)(void *)field))
            return bad_value(s, src, v, "is not a boolean (true/false, 1/0, yes/no, on/off)", err);
        return STATUS_OK;
    case SET_BATCHING:
        if (sched_mode_parse(v, (enum sched_mode *)(void *)field, NULL) != STATUS_OK)
            return bad_value(s, src, v, "is not one of step, request, none", err);
        return STATUS_OK;
    case SET_LOG_FORMAT:
        if (strcmp(v, "plain") == 0)
            cfg->log_format = LOG_FORMAT_PLAIN;
        else if (strcmp(v, "json") == 0)
            cfg->log_format = LOG_FORMAT_JSON;
        else
            return bad_value(s, src, v, "is not one of plain, json", err);
        return STATUS_OK;
    case SET_LOG_LEVEL:
        if (!log_level_parse(v, &cfg->log_level))
            return bad_value(s, src, v, "is not one of debug, info, warn, error, off", err);
        return STATUS_OK;
    case SET_ORIGINS:
        return parse_list(s, src, v, &cfg->cors_origins, &cfg->n_cors_origins, err);
    case SET_KEYS:
        return parse_list(s, src, v, &cfg->api_keys, &cfg->n_api_keys, err);
    }
    return status_fail(err, STATUS_INTERNAL, "setting type %d", (int)s->type);
}

const char *serve_env_envp(void *ctx, const char *name)
{
    size_t n = strlen(name);
    for (char **e = ctx; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

void serve_config_default(struct serve_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        enum status st = apply(cfg, &settings[i], FROM_DEFAULT, settings[i].def, NULL);
        ASSERT(st == STATUS_OK); /* the table's own defaults */
    }
}

static const struct setting *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].flag && strlen(settings[i].flag) == len &&
            strncmp(settings[i].flag, name, len) == 0)
            return &settings[i];
    return NULL;
}

static enum status apply_env(struct serve_config *cfg, const struct serve_env *env,
                             struct errbuf *err)
{
    for (size_t i = 0; env && env->get && i < N_SETTINGS; i++) {
        const char *v = env->get(env->ctx, settings[i].env);
        if (v)
            TRY(apply(cfg, &settings[i], FROM_ENV, v, err));
    }
    return STATUS_OK;
}

/* One argument at argv[*i] (and maybe its value at argv[*i + 1]). */
static enum status apply_arg(struct serve_config *cfg, int argc, char **argv, int *i,
                             struct errbuf *err)
{
    const char *a = argv[*i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
        return (cfg->help = SERVE_HELP_TEXT), STATUS_OK;
    if (strcmp(a, "--help-markdown") == 0)
        return (cfg->help = SERVE_HELP_MARKDOWN), STATUS_OK;
    if (strncmp(a, "--", 2) != 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "unexpected argument '%.200s' "
                           "(settings are --name value; see --help)", a);
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct setting *s = find_flag(name, len);
    if (!s && !eq && strncmp(name, "no-", 3) == 0) {
        s = find_flag(name + 3, len - 3);
        if (s && s->type == SET_BOOL)
            return apply(cfg, s, FROM_FLAG, "false", err);
        s = NULL;
    }
    if (!s)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "unknown option '--%.*s' (see --help)",
                           (int)(len > 200 ? 200 : len), name);
    if (s->type == SET_BOOL && !eq)
        return apply(cfg, s, FROM_FLAG, "true", err);
    if (eq)
        return apply(cfg, s, FROM_FLAG, eq + 1, err);
    if (*i + 1 >= argc)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "--%s / %s: needs a value", s->flag,
                           s->env);
    return apply(cfg, s, FROM_FLAG, argv[++*i], err);
}

/* Reads the keys file: one key a line, '#' comments, blank lines skipped. */
static enum status read_keys_file(struct serve_config *cfg, struct errbuf *err)
{
    FILE *f = fopen(cfg->api_keys_file, "r");
    if (!f)
        return status_fail(err, STATUS_IO, "--api-keys-file / DIFFUSIOND_API_KEYS_FILE: "
                           "cannot read '%.300s': %s", cfg->api_keys_file, strerror(errno));
    char line[SERVE_API_KEY_MAX + 64];
    enum status st = STATUS_OK;
    int lineno = 0;
    while (st == STATUS_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            st = status_fail(err, STATUS_INVALID_ARGUMENT, "%.300s:%d: line too long",
                             cfg->api_keys_file, lineno);
            break;
        }
        const char *key = trim(line, &len);
        if (len == 0 || key[0] == '#')
            continue;
        if (!key_sane(key, len))
            st = status_fail(err, STATUS_INVALID_ARGUMENT, "%.300s:%d: a key is 1-%d bytes "
                             "of visible ASCII without commas", cfg->api_keys_file, lineno,
                             SERVE_API_KEY_MAX);
        else
            st = list_push(&cfg->api_keys, &cfg->n_api_keys, SERVE_MAX_API_KEYS, key, len,
                           "API keys", err);
    }
    if (st == STATUS_OK && ferror(f))
        st = status_fail(err, STATUS_IO, "%.300s: read error", cfg->api_keys_file);
    memset(line, 0, sizeof line);
    fclose(f);
    return st;
}

/* Checks that need several settings; errors name every flag involved. */
static enum status validate(const struct serve_config *cfg, struct errbuf *err)
{
    if (!cfg->host[0])
        return status_fail(err, STATUS_INVALID_ARGUMENT, "--host / DIFFUSIOND_HOST: empty");
    if (strcmp(cfg->device, "auto") && strcmp(cfg->device, "cpu") && strcmp(cfg->device, "cuda"))
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "--device / DIFFUSIOND_DEVICE: '%s' is not auto, cpu or cuda",
                           cfg->device);
    if (strcmp(cfg->dtype, "f16") && strcmp(cfg->dtype, "bf16") && strcmp(cfg->dtype, "f32"))
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "--dtype / DIFFUSIOND_DTYPE: '%s' is not f16, bf16 or f32", cfg->dtype);
    struct cuda_backend_options plan;
    memset(&plan, 0, sizeof plan);
    if (cuda_plan_parse(cfg->cuda_plan, &plan, err) != STATUS_OK)
        return status_wrap(err, "--cuda-plan / DIFFUSIOND_CUDA_PLAN");
    static const struct { const char *flag, *env; size_t off; } sides[] = {
        {"max-width", "DIFFUSIOND_MAX_WIDTH", offsetof(struct serve_config, max_width)},
        {"max-height", "DIFFUSIOND_MAX_HEIGHT", offsetof(struct serve_config, max_height)},
        {"min-side", "DIFFUSIOND_MIN_SIDE", offsetof(struct serve_config, min_side)},
    };
    for (int i = 0; i < 3; i++) {
        int v = *(const int *)(const void *)((const char *)cfg + sides[i].off);
        if (v % 8)
            return status_fail(err, STATUS_INVALID_ARGUMENT, "--%s / %s: %d is not a "
                               "multiple of 8", sides[i].flag, sides[i].env, v);
    }
    if (cfg->max_body_bytes_total < cfg->max_body_bytes)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "--max-body-bytes-total / "
                           "DIFFUSIOND_MAX_BODY_BYTES_TOTAL: %lld is below --max-body-bytes "
                           "(%lld): a largest body could never be taken",
                           (long long)cfg->max_body_bytes_total, (long long)cfg->max_body_bytes);
    if (cfg->min_side > cfg->max_width || cfg->min_side > cfg->max_height)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "--min-side / DIFFUSIOND_MIN_SIDE: "
                           "%d is above --max-width (%d) or --max-height (%d)", cfg->min_side,
                           cfg->max_width, cfg->max_height);
    return STATUS_OK;
}

enum status serve_config_parse(struct serve_config *cfg, int argc, char **argv,
                               const struct serve_env *env, struct errbuf *err)
{
    serve_config_default(cfg);
    TRY(apply_env(cfg, env, err));
    for (int i = 1; i < argc; i++) {
        TRY(apply_arg(cfg, argc, argv, &i, err));
        if (cfg->help != SERVE_HELP_NONE)
            return STATUS_OK;
    }
    if (cfg->api_keys_file[0])
        TRY(read_keys_file(cfg, err));
    return validate(cfg, err);
}

void serve_config_free(struct serve_config *cfg)
{
    if (!cfg)
        return;
    free_list(&cfg->api_keys, &cfg->n_api_keys);
    free_list(&cfg->cors_origins, &cfg->n_cors_origins);
}

/* How a setting's value is named in the docs' type column and after its flag in --help. */
static void type_names(const struct setting *s, const char **doc, const char **metavar)
{
    static const struct { const char *doc, *metavar; } names[] = {
        [SET_STRING] = {"path", "PATH"},     [SET_INT] = {"integer", "N"},
        [SET_BYTES] = {"bytes", "BYTES"},    [SET_BOOL] = {"boolean", ""},
        [SET_BATCHING] = {"step|request|none", "MODE"},
        [SET_LOG_FORMAT] = {"plain|json", "FORMAT"},
        [SET_LOG_LEVEL] = {"level", "LEVEL"}, [SET_ORIGINS] = {"list", "LIST"},
        [SET_KEYS] = {"list", ""},
    };
    *doc = names[s->type].doc;
    *metavar = names[s->type].metavar;
    if (s->type == SET_STRING && strcmp(s->flag, "host") == 0)
        *doc = "address", *metavar = "ADDR";
    else if (s->type == SET_STRING && strcmp(s->flag, "model-name") == 0)
        *doc = "string", *metavar = "NAME";
    else if (s->type == SET_STRING && strcmp(s->flag, "device") == 0)
        *doc = "auto|cpu|cuda", *metavar = "DEVICE";
    else if (s->type == SET_STRING && strcmp(s->flag, "dtype") == 0)
        *doc = "f16|bf16|f32", *metavar = "DTYPE";
    else if (s->type == SET_STRING && strcmp(s->flag, "cuda-plan") == 0)
        *doc = "plan", *metavar = "PLAN";
}

static void range_doc(const struct setting *s, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (s->type == SET_INT || s->type == SET_BYTES)
        snprintf(buf, cap, "%" PRId64 " … %" PRId64, s->min, s->max);
}

void serve_config_print_help(FILE *out)
{
    fprintf(out,
            "usage: diffusiond serve [options]\n"
            "\n"
            "Serves the OpenAI-compatible image API (POST /v1/images/generations, GET\n"
            "/v1/models, /livez, /readyz, /metrics).  Every option is also an environment\n"
            "variable; an option given on the command line wins over the variable.\n"
            "\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *doc, *metavar;
        type_names(s, &doc, &metavar);
        char flag[96], range[64];
        if (!s->flag)
            snprintf(flag, sizeof flag, "(environment only)");
        else if (s->type == SET_BOOL)
            snprintf(flag, sizeof flag, "--%s, --no-%s", s->flag, s->flag);
        else
            snprintf(flag, sizeof flag, "--%s %s", s->flag, metavar);
        range_doc(s, range, sizeof range);
        fprintf(out, "  %s\n      %s\n      env %s; default %s%s%s\n", flag, s->help, s->env,
                s->def[0] ? s->def : "(empty)", range[0] ? "; range " : "", range);
    }
    fprintf(out, "  --help, -h\n      this text\n"
                 "  --help-markdown\n      the settings as a Markdown table (docs/serve-settings.md)\n");
}

/* Writes s escaped for a Markdown table cell ('|', and '<' '>' that would be HTML). */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '>')
            fputs("&gt;", out);
        else if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s, out);
    }
}

void serve_config_print_markdown(FILE *out)
{
    fprintf(out,
            "# `diffusiond serve` settings\n"
            "\n"
            "<!-- Generated by `diffusiond serve --help-markdown` from the settings table in\n"
            "     server/serve_config.c; tests/unit/test_serve_config.c fails when this file\n"
            "     differs from it.  Do not edit by hand. -->\n"
            "\n"
            "Every setting is a command-line flag and a `DIFFUSIOND_*` environment variable.\n"
            "A flag wins over its variable, a variable over the default.  A bad value stops\n"
            "the server at start-up with a message naming the flag and the variable.\n"
            "Booleans: `--x` / `--no-x`, or the variable set to `true`/`false`, `1`/`0`,\n"
            "`yes`/`no`, `on`/`off`.  Byte counts take `KiB`, `MiB`, `GiB` suffixes.\n"
            "API keys are never a flag (a flag shows in `ps`).  A malformed variable is an\n"
            "error even when a flag overrides it: the environment should be fixed.\n"
            "\n"
            "| flag | environment variable | type | default | range | meaning |\n"
            "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        char range[64];
        range_doc(s, range, sizeof range);
        if (s->flag)
            fprintf(out, "| `--%s` | `%s` | ", s->flag, s->env);
        else
            fprintf(out, "| — | `%s` | ", s->env);
        const char *doc, *metavar;
        type_names(s, &doc, &metavar);
        md_cell(out, doc);
        fputs(" | ", out);
        if (s->def[0])
            fprintf(out, "`%s`", s->def);
        else
            fputs("(empty)", out);
        fprintf(out, " | %s | ", range);
        md_cell(out, s->help);
        fputs(" |\n", out);
    }
}

/* A setting's current value as text (API keys: their count, never a key). */
static void value_text(const struct serve_config *cfg, const struct setting *s, char *buf,
                       size_t cap)
{
    const void *field = (const char *)cfg + s->offset;
    switch (s->type) {
    case SET_STRING: snprintf(buf, cap, "%s", (const char *)field); return;
    case SET_INT: snprintf(buf, cap, "%d", *(const int *)field); return;
    case SET_BYTES: snprintf(buf, cap, "%" PRId64, *(const int64_t *)field); return;
    case SET_BOOL: snprintf(buf, cap, "%s", *(const bool *)field ? "true" : "false"); return;
    case SET_BATCHING: snprintf(buf, cap, "%s", sched_mode_name(cfg->batching)); return;
    case SET_LOG_FORMAT:
        snprintf(buf, cap, "%s", cfg->log_format == LOG_FORMAT_JSON ? "json" : "plain");
        return;
    case SET_LOG_LEVEL: snprintf(buf, cap, "%s", log_level_name(cfg->log_level)); return;
    case SET_KEYS: snprintf(buf, cap, "%d", cfg->n_api_keys); return;
    case SET_ORIGINS: {
        size_t n = 0;
        buf[0] = '\0';
        for (int k = 0; k < cfg->n_cors_origins && n < cap; k++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", k ? "," : "", cfg->cors_origins[k]);
        return;
    }
    }
    buf[0] = '\0';
}

size_t serve_config_describe(const struct serve_config *cfg, char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_SETTINGS && len < cap - 1; i++) {
        char value[SERVE_PATH_MAX];
        value_text(cfg, &settings[i], value, sizeof value);
        int w = snprintf(buf + len, cap - len, "%s%s=%s", i ? " " : "",
                         settings[i].flag ? settings[i].flag : "api-keys", value);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (len >= cap)
        len = cap - 1;
    return len;
}

/* K: the most images a warm-up job has (CFG rows / 2, at most a request's n). */
static int warmup_images_max(const struct serve_config *cfg)
{
    const int k = cfg->max_batch_rows / 2;
    return k > GEN_MAX_IMAGES ? GEN_MAX_IMAGES : k;
}

int serve_warmup_jobs(const struct serve_config *cfg, bool graphs)
{
    if (!cfg->warmup)
        return 0;
    const int k = warmup_images_max(cfg);
    return graphs && k >= 1 ? k + 1 : 1;
}

void serve_warmup_job(const struct serve_config *cfg, bool graphs, int i,
                      struct serve_warmup_job *job)
{
    const int k = warmup_images_max(cfg);
    /* K, K, K − 1, … 1: the first job's U-Net call and decode are the largest, so the
     * workspace reaches its high-water mark there (and its generation, part of every
     * graph's key, moves for the last time); the second records the K-image graph anew
     * (so with K = 1 too: the first job's decode moves the generation) */
    job->images = graphs && k >= 1 ? (i == 0 ? k : k - i + 1) : 1;
    job->steps = graphs ? 3 : 2;
}

void serve_config_to_scheduler(const struct serve_config *cfg, struct scheduler_config *sc)
{
    sc->mode = cfg->batching;
    sc->max_batch_rows = cfg->max_batch_rows;
    sc->queue_capacity = cfg->queue_capacity;
    /* The scheduler reads 0 as "its default" and < 0 as "no wait". */
    sc->request_max_wait_ms = cfg->request_max_wait_ms > 0 ? cfg->request_max_wait_ms : -1;
    sc->text_cache_entries = cfg->text_cache_entries;
    sc->unet_graphs = cfg->unet_graphs;
    sc->lanes = cfg->lanes;
}
