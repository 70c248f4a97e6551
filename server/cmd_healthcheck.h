/* server/cmd_healthcheck.h — `diffusiond healthcheck`: the container's self-probe.  One
 * HTTP GET (default /readyz) to the local `diffusiond serve` through server/http_probe.h,
 * so the image's HEALTHCHECK needs no curl; exit 0 on a 2xx answer, 1 otherwise (also
 * for a usage error: Docker reserves exit code 2), with a one-line reason on stderr.
 *
 * Settings: --host/--port (else $DIFFUSIOND_HOST/$DIFFUSIOND_PORT, the variables
 * `serve` reads, else 127.0.0.1:8080; a wildcard host 0.0.0.0 or :: is probed on the
 * loopback), --path (default /readyz), --timeout-ms (default 3000; connect, send and
 * read together).  docs/deploy.md has the health semantics.
 *
 * Ownership: options point into argv/the environment strings or copy them.
 * Thread-safety: called once from main's thread; healthcheck_parse is reentrant. */
#ifndef DIFFUSIOND_SERVER_CMD_HEALTHCHECK_H
#define DIFFUSIOND_SERVER_CMD_HEALTHCHECK_H

#include <stdbool.h>

#include "engine/status.h"

#define HEALTHCHECK_DEFAULT_PATH "/readyz"
#define HEALTHCHECK_DEFAULT_TIMEOUT_MS 3000

struct healthcheck_options {
    char host[256];  /* as given (the probe maps wildcards to the loopback) */
    int port;        /* 1..65535 */
    const char *path;
    int timeout_ms;
    bool help;       /* --help was given: print usage, probe nothing */
};

/* Fills o from argv[1..argc) (argv[0] is "healthcheck"), then env_host/env_port (the
 * values of DIFFUSIOND_HOST/DIFFUSIOND_PORT, NULL or "" when unset), then the
 * defaults; flags win over the environment.  STATUS_INVALID_ARGUMENT naming the flag
 * or variable on a bad value or an unknown option. */
enum status healthcheck_parse(int argc, char **argv, const char *env_host, const char *env_port,
                              struct healthcheck_options *o, struct errbuf *err);

/* argv[0] is "healthcheck".  Returns the exit code: 0 healthy (2xx), 1 anything else. */
int cmd_healthcheck_main(int argc, char **argv);

#endif
