/* server/main.c — the diffusiond binary: subcommand dispatch and process wiring.
 * The only place that may call exit() or own process-wide state. */
#include <stdio.h>
#include <string.h>

#include "engine/log.h"
#include "engine/threadpool.h"
#include "server/bench.h"
#include "server/cmd_healthcheck.h"
#ifdef DIFFUSIOND_HAVE_GENERATE
#include "server/cmd_generate.h"
#endif
#ifdef DIFFUSIOND_HAVE_SERVE
#include "server/cmd_serve.h"
#endif

#ifdef DIFFUSIOND_HAVE_CUDA
#include "engine/cuda/cuda_device.h"
#endif

#ifndef DIFFUSIOND_VERSION
#define DIFFUSIOND_VERSION "dev"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: diffusiond <command> [options]\n"
            "\n"
            "commands:\n"
            "  serve         the HTTP service (OpenAI images API, health, metrics)\n"
            "  generate      text to image from the command line (PNG/JPEG)\n"
            "  bench ops     benchmark the engine's heaviest ops against the machine's peak\n"
            "  bench model   time a checkpoint's U-Net step and VAE decode on the CPU\n"
            "  bench load    batching scheduler under Poisson load: goodput per batching mode\n"
            "  healthcheck   probe the local `serve` (GET /readyz): exit 0 when 2xx\n"
            "  version       print version and build configuration\n"
            "  help          this text\n"
            "\n"
            "`diffusiond <command> --help` describes a command's options.\n");
}

#ifdef DIFFUSIOND_HAVE_CUDA
/* "cuda: N device(s)" and one line per device, or "cuda: no device (<reason>)". */
static void print_cuda_devices(void)
{
    int runtime = 0, driver = 0;
    cuda_versions(&runtime, &driver);
    printf("cuda backend: built (runtime %d.%d, driver %d.%d)\n", runtime / 1000,
           (runtime % 1000) / 10, driver / 1000, (driver % 1000) / 10);
    struct errbuf err;
    errbuf_clear(&err);
    int n = 0;
    if (cuda_device_count(&n, &err) != STATUS_OK) {
        printf("cuda: no device (%s)\n", err.msg);
        return;
    }
    printf("cuda: %d device(s)\n", n);
    for (int i = 0; i < n; i++) {
        char desc[256];
        if (cuda_device_describe(i, desc, sizeof desc, &err) == STATUS_OK)
            printf("  cuda:%d  %s\n", i, desc);
        else
            printf("  cuda:%d  (%s)\n", i, err.msg);
    }
}
#endif

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: diffusiond version\n"
               "Prints the version, the CPU count and the CUDA backend: whether this\n"
               "binary was built with it and which devices the CUDA runtime sees.\n");
        return 0;
    }
    printf("diffusiond %s\n", DIFFUSIOND_VERSION);
    printf("cpus: %d\n", threadpool_cpu_count());
#ifdef DIFFUSIOND_HAVE_CUDA
    print_cuda_devices();
#else
    printf("cuda backend: not built\n");
#endif
    return 0;
}

static int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: diffusiond bench <suite> [options]\n"
                "suites:\n"
                "  ops   conv/attention/SGEMM GFLOP/s vs the measured FMA peak\n"
                "  model U-Net step (CFG batch) and VAE decode of a checkpoint: seconds, RSS\n"
                "  load  the batching scheduler under Poisson arrivals: goodput per mode\n");
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "ops") == 0)
        return bench_ops_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "model") == 0)
        return bench_model_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "load") == 0)
        return bench_load_main(argc - 1, argv + 1);
    fprintf(stderr, "diffusiond bench: unknown suite '%s'\n", argv[1]);
    return 2;
}

int main(int argc, char **argv)
{
    log_configure(LOG_INFO, LOG_FORMAT_PLAIN, NULL);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if (strcmp(cmd, "healthcheck") == 0)
        return cmd_healthcheck_main(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) {
#ifdef DIFFUSIOND_HAVE_SERVE
        return cmd_serve_main(argc - 1, argv + 1);
#else
        fprintf(stderr, "diffusiond: 'serve' is not in this build (DIFFUSIOND_SERVER=OFF)\n");
        return 2;
#endif
    }
    if (strcmp(cmd, "generate") == 0) {
#ifdef DIFFUSIOND_HAVE_GENERATE
        return cmd_generate_main(argc - 1, argv + 1);
#else
        fprintf(stderr, "diffusiond: 'generate' is not in this build (DIFFUSIOND_SERVER=OFF "
                        "leaves out the image encoders it needs)\n");
        return 2;
#endif
    }
    fprintf(stderr, "diffusiond: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
