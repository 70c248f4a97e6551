/* tests/unit/test_serve_config.c — serve settings: defaults, env < flag precedence,
 * every kind of bad value naming flag and variable, keys from env and file, help and
 * the committed docs/serve-settings.md against the table. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/serve_config.h"
#include "tests/testutil.h"

/* A parse with env (NULL-terminated "NAME=value" list) and args (NULL-terminated). */
static enum status parse(struct serve_config *cfg, const char **env, const char **args,
                         struct errbuf *err)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"serve";
    for (int i = 0; args && args[i]; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    struct serve_env e = {serve_env_envp, (void *)env};
    errbuf_clear(err);
    return serve_config_parse(cfg, argc, argv, env ? &e : NULL, err);
}

START_TEST(test_defaults)
{
    struct serve_config c;
    struct errbuf err;
    ck_assert_int_eq(parse(&c, NULL, NULL, &err), STATUS_OK);
    ck_assert_str_eq(c.host, "127.0.0.1");
    ck_assert_int_eq(c.port, 8080);
    ck_assert_str_eq(c.model, "");
    ck_assert_int_eq(c.threads, 0);
    ck_assert(c.warmup);
    ck_assert_int_eq(c.batching, SCHED_MODE_STEP);
    ck_assert_int_eq(c.max_batch_rows, 16);
    ck_assert_int_eq(c.queue_capacity, 64);
    ck_assert_int_eq(c.max_body_bytes, 8 * 1024 * 1024);
    ck_assert_int_eq(c.max_connections, 256);
    ck_assert_int_eq(c.connection_timeout_s, 30);
    ck_assert_int_eq(c.connection_memory_bytes, 64 * 1024);
    ck_assert_int_eq(c.max_width, 2048);
    ck_assert_int_eq(c.max_height, 2048);
    ck_assert_int_eq(c.min_side, 64);
    ck_assert_int_eq(c.max_n, 8);
    ck_assert_int_eq(c.max_steps, 150);
    ck_assert_int_eq(c.max_prompt_chars, 4000);
    ck_assert_int_eq(c.url_ttl_s, 600);
    ck_assert_int_eq(c.url_store_images, 256);
    ck_assert_int_eq(c.encoder_threads, 2);
    ck_assert_int_eq(c.n_api_keys, 0);
    ck_assert_int_eq(c.n_cors_origins, 0);
    ck_assert_int_eq(c.drain_grace_s, 30);
    ck_assert_int_eq(c.watchdog_s, 300);
    ck_assert_int_eq(c.log_format, LOG_FORMAT_PLAIN);
    ck_assert_int_eq(c.log_level, LOG_INFO);
    ck_assert(c.access_log);
    ck_assert_str_eq(c.cuda_plan, "");
    ck_assert_int_eq(c.help, SERVE_HELP_NONE);
    serve_config_free(&c);
}
END_TEST

START_TEST(test_env_then_flag_precedence)
{
    const char *env[] = {"DIFFUSIOND_PORT=9000", "DIFFUSIOND_HOST=0.0.0.0",
                         "DIFFUSIOND_BATCHING=request", "DIFFUSIOND_WARMUP=off",
                         "DIFFUSIOND_MAX_BODY_BYTES=2MiB", "DIFFUSIOND_LOG_FORMAT=json",
                         "DIFFUSIOND_CUDA_PLAN=gn=fused,stack=on", "OTHER=1",
                         "DIFFUSIOND_PORTX=1", NULL};
    struct serve_config c;
    struct errbuf err;
    ck_assert_int_eq(parse(&c, env, NULL, &err), STATUS_OK);
    ck_assert_int_eq(c.port, 9000);
    ck_assert_str_eq(c.host, "0.0.0.0");
    ck_assert_int_eq(c.batching, SCHED_MODE_REQUEST);
    ck_assert(!c.warmup);
    ck_assert_int_eq(c.max_body_bytes, 2 * 1024 * 1024);
    ck_assert_int_eq(c.log_format, LOG_FORMAT_JSON);
    ck_assert_str_eq(c.cuda_plan, "gn=fused,stack=on");
    serve_config_free(&c);

    const char *args[] = {"--port", "9100", "--host=::1", "--warmup", "--batching", "none",
                          "--max-body-bytes=512KiB", "--log-format", "plain", NULL};
    ck_assert_int_eq(parse(&c, env, args, &err), STATUS_OK);
    ck_assert_int_eq(c.port, 9100);
    ck_assert_str_eq(c.host, "::1");
    ck_assert(c.warmup);
    ck_assert_int_eq(c.batching, SCHED_MODE_NONE);
    ck_assert_int_eq(c.max_body_bytes, 512 * 1024);
    ck_assert_int_eq(c.log_format, LOG_FORMAT_PLAIN);
    serve_config_free(&c);

    /* the last of repeated flags wins; --no-x and --x=false */
    const char *args2[] = {"--port", "1", "--port", "2", "--no-access-log", "--warmup=false",
                           NULL};
    ck_assert_int_eq(parse(&c, NULL, args2, &err), STATUS_OK);
    ck_assert_int_eq(c.port, 2);
    ck_assert(!c.access_log);
    ck_assert(!c.warmup);
    serve_config_free(&c);
}
END_TEST

/* Each bad value: INVALID_ARGUMENT, and the message names the flag and the variable. */
static void expect_bad(const char **env, const char **args, const char *flag, const char *var)
{
    struct serve_config c;
    struct errbuf err;
    enum status st = parse(&c, env, args, &err);
    serve_config_free(&c);
    ck_assert_msg(st == STATUS_INVALID_ARGUMENT, "%s: status %s", flag, status_name(st));
    ck_assert_msg(strstr(err.msg, flag) != NULL, "'%s' not in '%s'", flag, err.msg);
    if (var)
        ck_assert_msg(strstr(err.msg, var) != NULL, "'%s' not in '%s'", var, err.msg);
}

START_TEST(test_bad_values_name_flag_and_env)
{
    static const struct { const char *arg, *flag, *var; } flags[] = {
        {"--port=70000", "--port", "DIFFUSIOND_PORT"},
        {"--port=-1", "--port", "DIFFUSIOND_PORT"},
        {"--port=80x", "--port", "DIFFUSIOND_PORT"},
        {"--port=", "--port", "DIFFUSIOND_PORT"},
        {"--port= 80", "--port", "DIFFUSIOND_PORT"},
        {"--port=99999999999999999999", "--port", "DIFFUSIOND_PORT"},
        {"--threads=-2", "--threads", "DIFFUSIOND_THREADS"},
        {"--batching=fast", "--batching", "DIFFUSIOND_BATCHING"},
        {"--max-batch-rows=0", "--max-batch-rows", "DIFFUSIOND_MAX_BATCH_ROWS"},
        {"--max-batch-rows=257", "--max-batch-rows", "DIFFUSIOND_MAX_BATCH_ROWS"},
        {"--queue-capacity=0", "--queue-capacity", "DIFFUSIOND_QUEUE_CAPACITY"},
        {"--max-body-bytes=1TiB", "--max-body-bytes", "DIFFUSIOND_MAX_BODY_BYTES"},
        {"--max-body-bytes=12", "--max-body-bytes", "DIFFUSIOND_MAX_BODY_BYTES"},
        {"--max-body-bytes=-5", "--max-body-bytes", "DIFFUSIOND_MAX_BODY_BYTES"},
        {"--connection-memory-bytes=9999999999999999999k", "--connection-memory-bytes",
         "DIFFUSIOND_CONNECTION_MEMORY_BYTES"},
        {"--max-width=4096", "--max-width", "DIFFUSIOND_MAX_WIDTH"},
        {"--max-width=1004", "--max-width", "DIFFUSIOND_MAX_WIDTH"}, /* not a multiple of 8 */
        {"--min-side=4", "--min-side", "DIFFUSIOND_MIN_SIDE"},
        {"--min-side=100", "--min-side", "DIFFUSIOND_MIN_SIDE"},
        {"--max-n=0", "--max-n", "DIFFUSIOND_MAX_N"},
        {"--max-n=65", "--max-n", "DIFFUSIOND_MAX_N"},
        {"--max-steps=1001", "--max-steps", "DIFFUSIOND_MAX_STEPS"},
        {"--warmup=maybe", "--warmup", "DIFFUSIOND_WARMUP"},
        {"--log-format=xml", "--log-format", "DIFFUSIOND_LOG_FORMAT"},
        {"--log-level=loud", "--log-level", "DIFFUSIOND_LOG_LEVEL"},
        {"--host=", "--host", "DIFFUSIOND_HOST"},
        {"--encoder-threads=0", "--encoder-threads", "DIFFUSIOND_ENCODER_THREADS"},
        {"--cuda-plan=gn=fast", "--cuda-plan", "DIFFUSIOND_CUDA_PLAN"},
        {"--cuda-plan=turbo", "--cuda-plan", "DIFFUSIOND_CUDA_PLAN"},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const char *args[] = {flags[i].arg, NULL};
        expect_bad(NULL, args, flags[i].flag, flags[i].var);
    }
    /* the same through the environment */
    const char *env1[] = {"DIFFUSIOND_PORT=http", NULL};
    expect_bad(env1, NULL, "--port", "DIFFUSIOND_PORT");
    const char *env2[] = {"DIFFUSIOND_WATCHDOG_S=0", NULL};
    expect_bad(env2, NULL, "--watchdog-s", "DIFFUSIOND_WATCHDOG_S");
    const char *env3[] = {"DIFFUSIOND_MIN_SIDE=2048", "DIFFUSIOND_MAX_HEIGHT=512", NULL};
    expect_bad(env3, NULL, "--min-side", "--max-height");
    /* a bad env value is an error even when a flag would override it later: the
     * operator's environment is wrong and should be fixed */
    const char *args4[] = {"--port", "1", NULL};
    expect_bad(env1, args4, "--port", "environment");
    /* a missing value, an unknown flag, a positional argument */
    const char *a5[] = {"--port", NULL};
    expect_bad(NULL, a5, "--port", "needs a value");
    const char *a6[] = {"--prot", "1", NULL};
    expect_bad(NULL, a6, "--prot", "unknown");
    const char *a7[] = {"model.safetensors", NULL};
    expect_bad(NULL, a7, "model.safetensors", NULL);
    const char *a8[] = {"--no-port", NULL}; /* --no- only for booleans */
    expect_bad(NULL, a8, "--no-port", NULL);
    /* keys are never a flag */
    const char *a9[] = {"--api-keys", "k", NULL};
    expect_bad(NULL, a9, "--api-keys", "unknown");
}
END_TEST

START_TEST(test_lists)
{
    const char *env[] = {"DIFFUSIOND_API_KEYS= sk-one ,,sk-two,", NULL};
    const char *args[] = {"--cors-origins", "https://a.example, http://localhost:3000", NULL};
    struct serve_config c;
    struct errbuf err;
    ck_assert_int_eq(parse(&c, env, args, &err), STATUS_OK);
    ck_assert_int_eq(c.n_api_keys, 2);
    ck_assert_str_eq(c.api_keys[0], "sk-one");
    ck_assert_str_eq(c.api_keys[1], "sk-two");
    ck_assert_int_eq(c.n_cors_origins, 2);
    ck_assert_str_eq(c.cors_origins[0], "https://a.example");
    ck_assert_str_eq(c.cors_origins[1], "http://localhost:3000");
    /* describe shows the key count, never a key */
    char line[4096];
    size_t n = serve_config_describe(&c, line, sizeof line);
    ck_assert_uint_eq(n, strlen(line));
    ck_assert_ptr_null(strstr(line, "sk-one"));
    ck_assert_ptr_nonnull(strstr(line, "api-keys=2"));
    ck_assert_ptr_nonnull(strstr(line, "cors-origins=https://a.example,http://localhost:3000"));
    ck_assert_ptr_nonnull(strstr(line, "port=8080"));
    /* a truncated describe stays NUL-terminated inside cap */
    char tiny[16];
    ck_assert_uint_eq(serve_config_describe(&c, tiny, sizeof tiny), 15);
    ck_assert_uint_eq(strlen(tiny), 15);
    serve_config_free(&c);
    ck_assert_int_eq(c.n_api_keys, 0);
    ck_assert_ptr_null(c.api_keys);

    /* a key with a space inside: the error must not show the key */
    const char *env2[] = {"DIFFUSIOND_API_KEYS=good,bad key", NULL};
    ck_assert_int_eq(parse(&c, env2, NULL, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "DIFFUSIOND_API_KEYS"));
    ck_assert_ptr_null(strstr(err.msg, "bad key"));
    ck_assert_ptr_null(strstr(err.msg, "good"));
    serve_config_free(&c);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_keys_file)
{
    char path[] = "/tmp/diffusiond_keys_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_file(path, "# production keys\n\n  sk-file-1  \nsk-file-2\n   # indented comment\n"
                     "sk-file-3"); /* no final newline */
    char flag[300];
    snprintf(flag, sizeof flag, "--api-keys-file=%s", path);
    const char *env[] = {"DIFFUSIOND_API_KEYS=sk-env", NULL};
    const char *args[] = {flag, NULL};
    struct serve_config c;
    struct errbuf err;
    ck_assert_int_eq(parse(&c, env, args, &err), STATUS_OK);
    ck_assert_int_eq(c.n_api_keys, 4);
    ck_assert_str_eq(c.api_keys[0], "sk-env");
    ck_assert_str_eq(c.api_keys[1], "sk-file-1");
    ck_assert_str_eq(c.api_keys[2], "sk-file-2");
    ck_assert_str_eq(c.api_keys[3], "sk-file-3");
    serve_config_free(&c);

    /* through the environment variable too */
    char envf[300];
    snprintf(envf, sizeof envf, "DIFFUSIOND_API_KEYS_FILE=%s", path);
    const char *env2[] = {envf, NULL};
    ck_assert_int_eq(parse(&c, env2, NULL, &err), STATUS_OK);
    ck_assert_int_eq(c.n_api_keys, 3);
    serve_config_free(&c);

    /* a bad line names the file and line, not the key */
    write_file(path, "sk-ok\nsk bad\n");
    ck_assert_int_eq(parse(&c, NULL, args, &err), STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, ":2:"));
    ck_assert_ptr_null(strstr(err.msg, "sk bad"));
    serve_config_free(&c);

    /* unreadable: STATUS_IO naming flag, variable and file */
    unlink(path);
    ck_assert_int_eq(parse(&c, NULL, args, &err), STATUS_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "--api-keys-file"));
    ck_assert_ptr_nonnull(strstr(err.msg, "DIFFUSIOND_API_KEYS_FILE"));
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    serve_config_free(&c);
}
END_TEST

START_TEST(test_help_flags)
{
    struct serve_config c;
    struct errbuf err;
    const char *a1[] = {"--port=1", "--help", "--bogus", NULL};
    ck_assert_int_eq(parse(&c, NULL, a1, &err), STATUS_OK);
    ck_assert_int_eq(c.help, SERVE_HELP_TEXT);
    serve_config_free(&c);
    const char *a2[] = {"--help-markdown", NULL};
    ck_assert_int_eq(parse(&c, NULL, a2, &err), STATUS_OK);
    ck_assert_int_eq(c.help, SERVE_HELP_MARKDOWN);
    serve_config_free(&c);
}
END_TEST

static char *capture(void (*print)(FILE *), size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    ck_assert_ptr_nonnull(f);
    print(f);
    fclose(f);
    return buf;
}

/* --help names every flag and every variable; each flag the help names parses. */
START_TEST(test_help_lists_every_setting)
{
    size_t len;
    char *help = capture(serve_config_print_help, &len);
    static const char *const vars[] = {
        "DIFFUSIOND_HOST", "DIFFUSIOND_PORT", "DIFFUSIOND_MODEL", "DIFFUSIOND_MODEL_NAME",
        "DIFFUSIOND_THREADS", "DIFFUSIOND_BATCHING", "DIFFUSIOND_MAX_BATCH_ROWS",
        "DIFFUSIOND_QUEUE_CAPACITY", "DIFFUSIOND_REQUEST_MAX_WAIT_MS",
        "DIFFUSIOND_TEXT_CACHE_ENTRIES", "DIFFUSIOND_MAX_BODY_BYTES",
        "DIFFUSIOND_MAX_CONNECTIONS", "DIFFUSIOND_MAX_CONNECTIONS_PER_IP",
        "DIFFUSIOND_CONNECTION_TIMEOUT_S",
        "DIFFUSIOND_CONNECTION_MEMORY_BYTES", "DIFFUSIOND_MAX_WIDTH", "DIFFUSIOND_MAX_HEIGHT",
        "DIFFUSIOND_MIN_SIDE", "DIFFUSIOND_MAX_N", "DIFFUSIOND_MAX_STEPS",
        "DIFFUSIOND_MAX_PROMPT_CHARS", "DIFFUSIOND_URL_TTL_S", "DIFFUSIOND_URL_STORE_IMAGES",
        "DIFFUSIOND_ENCODER_THREADS", "DIFFUSIOND_API_KEYS_FILE", "DIFFUSIOND_API_KEYS;",
        "DIFFUSIOND_CORS_ORIGINS", "DIFFUSIOND_DRAIN_GRACE_S", "DIFFUSIOND_WATCHDOG_S",
        "DIFFUSIOND_WARMUP", "DIFFUSIOND_LOG_FORMAT", "DIFFUSIOND_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        ck_assert_msg(strstr(help, vars[i]), "%s missing from --help", vars[i]);
    /* every "  --flag" line of the help is accepted by the parser */
    int flags = 0;
    for (char *p = help; (p = strstr(p, "\n  --")); p++) {
        char name[64];
        ck_assert_int_eq(sscanf(p + 5, "%63[a-z-]", name), 1);
        if (strcmp(name, "help") == 0 || strcmp(name, "help-markdown") == 0)
            continue;
        char arg[80];
        snprintf(arg, sizeof arg, "--%s", name);
        /* booleans take no value; the others get one that may be out of range, but
         * the error must then be about the value, not an unknown option */
        const char *args[] = {arg, "1", NULL};
        struct serve_config c;
        struct errbuf err;
        enum status st = parse(&c, NULL, args, &err);
        serve_config_free(&c);
        ck_assert_msg(st == STATUS_OK || !strstr(err.msg, "unknown option"), "%s: %s", arg,
                      err.msg);
        flags++;
    }
    ck_assert_int_ge(flags, 30);
    free(help);
}
END_TEST

/* docs/serve-settings.md is exactly what --help-markdown prints. */
START_TEST(test_docs_match_table)
{
    size_t len;
    char *md = capture(serve_config_print_markdown, &len);
    const char *path = DIFFUSIOND_SOURCE_DIR "/docs/serve-settings.md";
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s missing: run `diffusiond serve --help-markdown > %s` "
                  "(or `<build>/tests/test_serve_config --markdown`)", path, path);
    char *doc = malloc(len + 2);
    size_t got = fread(doc, 1, len + 1, f);
    fclose(f);
    ck_assert_msg(got == len && memcmp(doc, md, len) == 0,
                  "docs/serve-settings.md differs from the settings table: regenerate it "
                  "with `diffusiond serve --help-markdown > docs/serve-settings.md` (or "
                  "`<build>/tests/test_serve_config --markdown`)");
    /* and the table has a row per setting (31 settings + header + rule) */
    int rows = 0;
    for (char *p = md; (p = strstr(p, "\n| ")); p++)
        rows++;
    ck_assert_int_ge(rows, 32);
    free(doc);
    free(md);
}
END_TEST

START_TEST(test_to_scheduler)
{
    struct serve_config c;
    struct errbuf err;
    const char *args[] = {"--batching=request", "--max-batch-rows=8", "--queue-capacity=5",
                          "--request-max-wait-ms=0", "--text-cache-entries=9",
                          "--no-unet-graphs", NULL};
    ck_assert_int_eq(parse(&c, NULL, args, &err), STATUS_OK);
    struct scheduler_config sc;
    scheduler_config_default(&sc);
    serve_config_to_scheduler(&c, &sc);
    ck_assert_int_eq(sc.mode, SCHED_MODE_REQUEST);
    ck_assert_int_eq(sc.max_batch_rows, 8);
    ck_assert_int_eq(sc.queue_capacity, 5);
    ck_assert_int_lt(sc.request_max_wait_ms, 0); /* 0 = no wait = the scheduler's < 0 */
    ck_assert_int_eq(sc.text_cache_entries, 9);
    ck_assert(!sc.unet_graphs);
    serve_config_free(&c);
    const char *args2[] = {"--request-max-wait-ms=20", NULL};
    ck_assert_int_eq(parse(&c, NULL, args2, &err), STATUS_OK);
    serve_config_to_scheduler(&c, &sc);
    ck_assert_int_eq(sc.request_max_wait_ms, 20);
    ck_assert(sc.unet_graphs); /* on by default */
    serve_config_free(&c);
}
END_TEST

/* The warm-up: one 2-step generation, or with U-Net graphs one 3-step job per even
 * row count (k images, CFG) up to max_batch_rows, the largest first and twice; none with
 * --no-warmup. */
START_TEST(test_warmup_jobs)
{
    struct serve_config c;
    serve_config_default(&c);
    c.max_batch_rows = 16;
    struct serve_warmup_job w;
    ck_assert_int_eq(serve_warmup_jobs(&c, false), 1);
    serve_warmup_job(&c, false, 0, &w);
    ck_assert_int_eq(w.images, 1);
    ck_assert_int_eq(w.steps, 2);
    ck_assert_int_eq(serve_warmup_jobs(&c, true), 9);
    const int want[9] = {8, 8, 7, 6, 5, 4, 3, 2, 1}; /* the largest first, then 16 … 2 rows */
    for (int i = 0; i < 9; i++) {
        serve_warmup_job(&c, true, i, &w);
        ck_assert_int_eq(w.images, want[i]);
        ck_assert_int_eq(w.steps, 3); /* eager (autotune), recorded, replayed */
    }
    c.max_batch_rows = 256; /* at most a request's n (GEN_MAX_IMAGES) a job */
    ck_assert_int_eq(serve_warmup_jobs(&c, true), GEN_MAX_IMAGES + 1);
    serve_warmup_job(&c, true, 0, &w);
    ck_assert_int_eq(w.images, GEN_MAX_IMAGES);
    serve_warmup_job(&c, true, GEN_MAX_IMAGES, &w);
    ck_assert_int_eq(w.images, 1);
    c.max_batch_rows = 3; /* one CFG image fits: twice (the first's decode moves the
                             workspace's generation, which the second's graph keys) */
    ck_assert_int_eq(serve_warmup_jobs(&c, true), 2);
    serve_warmup_job(&c, true, 1, &w);
    ck_assert_int_eq(w.images, 1);
    c.max_batch_rows = 1; /* no CFG image fits a call: one plain job */
    ck_assert_int_eq(serve_warmup_jobs(&c, true), 1);
    c.warmup = false;
    ck_assert_int_eq(serve_warmup_jobs(&c, true), 0);
    ck_assert_int_eq(serve_warmup_jobs(&c, false), 0);
}
END_TEST

static Suite *serve_config_suite(void)
{
    Suite *s = suite_create("serve_config");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_env_then_flag_precedence);
    tcase_add_test(tc, test_bad_values_name_flag_and_env);
    tcase_add_test(tc, test_lists);
    tcase_add_test(tc, test_keys_file);
    tcase_add_test(tc, test_help_flags);
    tcase_add_test(tc, test_to_scheduler);
    suite_add_tcase(s, tc);
    TCase *doc = tcase_create("docs");
    tcase_add_test(doc, test_help_lists_every_setting);
    tcase_add_test(doc, test_docs_match_table);
    tcase_add_test(doc, test_warmup_jobs);
    suite_add_tcase(s, doc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--markdown") == 0) { /* regenerates the docs page */
        serve_config_print_markdown(stdout);
        return 0;
    }
    return test_run_suite(serve_config_suite());
}
