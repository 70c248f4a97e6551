/* server/serve_config.h — every setting of `diffusiond serve`: defaults, flags,
 * DIFFUSIOND_* environment variables, validation, --help and the docs table.
 *
 * ONE table of settings (serve_config.c: name, flag, env variable, type, default,
 * bounds, help) drives the parser, `--help`, `--help-markdown` (docs/serve-settings.md
 * is that output, and tests/unit/test_serve_config.c fails when the committed file
 * differs from it) and serve_config_describe: flags, env names, help and docs cannot
 * drift apart.
 *
 * Precedence: a flag wins over its environment variable, which wins over the default.
 * Every bad value is STATUS_INVALID_ARGUMENT with a message that names both the flag
 * and the variable ("--port / DIFFUSIOND_PORT: 70000 is not in [0, 65535]").
 * API keys are never a flag (they would show in `ps`): DIFFUSIOND_API_KEYS (comma
 * list) and/or --api-keys-file / DIFFUSIOND_API_KEYS_FILE (one key per line, '#'
 * comments and blank lines skipped, surrounding spaces trimmed); both may be given,
 * the keys are the union.  No keys: auth off.
 *
 * The parser reads no global state: the environment comes in through a lookup
 * (serve_env_envp wraps an envp/environ array; tests pass their own).
 *
 * Ownership: serve_config_parse fills a caller-owned struct; the key and origin lists
 * are heap-allocated and released by serve_config_free (call it also after a failed
 * parse).  Thread-safety: none needed — parse once at start-up, read-only afterwards.
 */
#ifndef DIFFUSIOND_SERVER_SERVE_CONFIG_H
#define DIFFUSIOND_SERVER_SERVE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/cuda/cuda_plan.h"
#include "engine/log.h"
#include "engine/status.h"
#include "server/scheduler.h"

#define SERVE_PATH_MAX 4096
#define SERVE_NAME_MAX 256
#define SERVE_MAX_API_KEYS 1024
#define SERVE_MAX_CORS_ORIGINS 64
#define SERVE_API_KEY_MAX 512 /* bytes per key */

/* What the command line asked for besides serving. */
enum serve_help { SERVE_HELP_NONE = 0, SERVE_HELP_TEXT, SERVE_HELP_MARKDOWN };

struct serve_config {
    /* network */
    char host[SERVE_NAME_MAX];          /* bind address; default 127.0.0.1 */
    int port;                           /* 0: pick a free port (cmd_serve logs it) */
    /* model */
    char model[SERVE_PATH_MAX];         /* "": the bundled model (sd_model_bundled_path) */
    char model_name[SERVE_NAME_MAX];    /* "": the model path's base name */
    int threads;                        /* CPU compute threads; 0: all CPUs */
    char device[16];                    /* "auto" (default), "cpu", "cuda" */
    char dtype[8];                      /* cuda weights/activations: "f16" (default), "bf16", "f32" */
    char cuda_plan[CUDA_PLAN_TEXT_MAX]; /* cuda: planning choices (engine/cuda/cuda_plan.h); "": defaults */
    bool warmup;                        /* one generation before /readyz says ready */
    bool unet_graphs;                   /* scheduler_config.unet_graphs */
    /* scheduler (server/scheduler.h's scheduler_config) */
    enum sched_mode batching;
    int max_batch_rows, queue_capacity, request_max_wait_ms, text_cache_entries;
    int lanes;                          /* scheduler_config.lanes */
    /* HTTP limits */
    int64_t max_body_bytes;             /* 413 above it (8 MiB: img2img's images) */
    int64_t max_body_bytes_total;       /* bodies held at once; 503 past it */
    int max_connections;                /* 256 */
    int max_connections_per_ip;         /* 0: no limit */
    int connection_timeout_s;           /* idle timeout, 30 */
    int64_t connection_memory_bytes;    /* MHD per-connection memory limit, 64 KiB */
    /* request limits */
    int max_width, max_height;          /* ≤ GEN_MAX_SIDE, multiples of 8 */
    int min_side;                       /* ≥ 8, multiple of 8 */
    int max_n, max_steps, max_prompt_chars;
    /* response_format "url" */
    int url_ttl_s, url_store_images;
    int encoder_threads;
    /* operations */
    char api_keys_file[SERVE_PATH_MAX]; /* "" none */
    char **api_keys;                    /* [n_api_keys], owned; env + file */
    int n_api_keys;
    char **cors_origins;                /* [n_cors_origins], owned; empty: CORS off */
    int n_cors_origins;
    int drain_grace_s;                  /* SIGTERM: admitted work may finish within it */
    int watchdog_s;                     /* a worker with work and no U-Net step this long: /livez 503 */
    enum log_format log_format;
    enum log_level log_level;
    bool access_log;                    /* one JSON line per request (server/access_log.h) */
    /* set by the parser */
    enum serve_help help;               /* --help / --help-markdown was given */
};

/* An environment lookup: the value of `name` or NULL when unset. */
struct serve_env {
    const char *(*get)(void *ctx, const char *name);
    void *ctx;
};

/* A lookup over a NULL-terminated "NAME=value" array (main's envp, environ);
 * ctx is that array (char **). */
const char *serve_env_envp(void *ctx, const char *name);

/* The defaults (no allocation). */
void serve_config_default(struct serve_config *cfg);

/* Defaults, then env (env may be NULL: none), then argv[1 … argc) (argv[0] is the
 * command name, "serve").  `--flag value` and `--flag=value`; booleans as
 * --warmup / --no-warmup.  Unknown flags, missing values and bad values are
 * STATUS_INVALID_ARGUMENT naming flag and variable; an unreadable keys file is
 * STATUS_IO naming the file.  --help / --help-markdown set cfg->help and stop. */
enum status serve_config_parse(struct serve_config *cfg, int argc, char **argv,
                               const struct serve_env *env, struct errbuf *err);

/* Releases the key and origin lists; cfg stays valid with none.  cfg may be NULL. */
void serve_config_free(struct serve_config *cfg);

/* `diffusiond serve --help`: usage, then every setting with its flag, variable,
 * default and help. */
void serve_config_print_help(FILE *out);

/* The Markdown settings table (docs/serve-settings.md, byte for byte). */
void serve_config_print_markdown(FILE *out);

/* The effective settings as one line "host=… port=… …" for the start-up log;
 * API keys shown only as a count.  Returns the length (truncated to cap-1). */
size_t serve_config_describe(const struct serve_config *cfg, char *buf, size_t cap);

/* The start-up warm-up (--warmup): jobs run one after another before /readyz says
 * ready.  Without U-Net graphs one generation of 2 steps at the native size (every
 * buffer of a step); where the U-Net calls replay CUDA graphs (`graphs`: --unet-graphs
 * on a backend that records them) one job of k images for k = K, K, K − 1, … 1
 * (K = max_batch_rows / 2), 3 steps each (CFG: 2k rows) — the eager call autotunes the
 * new GEMM shapes, the second records the graph — so that the first requests at each
 * batch size are replays, not ~60 ms stalls (the bundled model on an H200, GPU run 10).
 * The largest job comes first so that the workspace's growth (which moves every graph's
 * key) is over before the others record, and again to record its own graph after it.
 * Job i's images and steps. */
struct serve_warmup_job {
    int images, steps;
};
/* The number of warm-up jobs (0: --no-warmup); *job = job i of them (i < count). */
int serve_warmup_jobs(const struct serve_config *cfg, bool graphs);
void serve_warmup_job(const struct serve_config *cfg, bool graphs, int i,
                      struct serve_warmup_job *job);

/* Copies the scheduler settings into sc (models, clock, runner left untouched). */
void serve_config_to_scheduler(const struct serve_config *cfg, struct scheduler_config *sc);

#endif
