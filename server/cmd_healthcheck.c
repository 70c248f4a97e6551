/* server/cmd_healthcheck.c — `diffusiond healthcheck` (cmd_healthcheck.h). */
#include "server/cmd_healthcheck.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_probe.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: diffusiond healthcheck [options]\n"
            "\n"
            "Probes the local `diffusiond serve` with one HTTP GET and exits 0 when it\n"
            "answers 2xx, 1 otherwise (one line on stderr says why).  Made for a\n"
            "container's HEALTHCHECK: no arguments are needed there, the image's\n"
            "DIFFUSIOND_HOST/DIFFUSIOND_PORT say where `serve` listens.\n"
            "\n"
            "  --host HOST       address to probe (default: $DIFFUSIOND_HOST, else\n"
            "                    127.0.0.1; 0.0.0.0 and :: probe the loopback)\n"
            "  --port N          port (default: $DIFFUSIOND_PORT, else 8080)\n"
            "  --path PATH       route (default " HEALTHCHECK_DEFAULT_PATH
            "; /livez for liveness)\n"
            "  --timeout-ms N    deadline for connect + request + response (default %d)\n"
            "  --help            this text\n"
            "\n"
            "Exit status: 0 healthy (2xx), 1 unhealthy, unreachable or a usage error\n"
            "(Docker reserves 2).\n",
            HEALTHCHECK_DEFAULT_TIMEOUT_MS);
}

static enum status parse_int(const char *s, long lo, long hi, const char *what, int *out,
                             struct errbuf *err)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: '%s' is not an integer in %ld..%ld",
                           what, s, lo, hi);
    *out = (int)v;
    return STATUS_OK;
}

static enum status set_host(struct healthcheck_options *o, const char *host, const char *what,
                            struct errbuf *err)
{
    if (!host[0] || strlen(host) >= sizeof o->host)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: empty or longer than %zu bytes",
                           what, sizeof o->host - 1);
    strcpy(o->host, host);
    return STATUS_OK;
}

/* "--name value" or "--name=value": the value of argv[*i] for name, advancing *i; NULL
 * when argv[*i] is another option. */
static const char *option_value(int argc, char **argv, int *i, const char *name,
                                enum status *s, struct errbuf *err)
{
    size_t n = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *s = status_fail(err, STATUS_INVALID_ARGUMENT, "%s: needs a value", name);
        return NULL;
    }
    return argv[++*i];
}

static enum status parse_flag(int argc, char **argv, int *i, struct healthcheck_options *o,
                              bool *host_set, bool *port_set, struct errbuf *err)
{
    enum status s = STATUS_OK;
    const char *v;
    if (strcmp(argv[*i], "--help") == 0 || strcmp(argv[*i], "-h") == 0) {
        o->help = true;
        return STATUS_OK;
    }
    if ((v = option_value(argc, argv, i, "--host", &s, err))) {
        *host_set = true;
        return set_host(o, v, "--host", err);
    }
    if (!s && (v = option_value(argc, argv, i, "--port", &s, err))) {
        *port_set = true;
        return parse_int(v, 1, 65535, "--port", &o->port, err);
    }
    if (!s && (v = option_value(argc, argv, i, "--path", &s, err))) {
        if (v[0] != '/')
            return status_fail(err, STATUS_INVALID_ARGUMENT, "--path: '%s' must start with '/'",
                               v);
        o->path = v;
        return STATUS_OK;
    }
    if (!s && (v = option_value(argc, argv, i, "--timeout-ms", &s, err)))
        return parse_int(v, 1, 600000, "--timeout-ms", &o->timeout_ms, err);
    if (s)
        return s;
    return status_fail(err, STATUS_INVALID_ARGUMENT, "unknown option '%s' (see --help)",
                       argv[*i]);
}

enum status healthcheck_parse(int argc, char **argv, const char *env_host, const char *env_port,
                              struct healthcheck_options *o, struct errbuf *err)
{
    memset(o, 0, sizeof *o);
    o->path = HEALTHCHECK_DEFAULT_PATH;
    o->timeout_ms = HEALTHCHECK_DEFAULT_TIMEOUT_MS;
    o->port = 8080;
    strcpy(o->host, "127.0.0.1");
    bool host_set = false, port_set = false;
    for (int i = 1; i < argc && !o->help; i++)
        TRY(parse_flag(argc, argv, &i, o, &host_set, &port_set, err));
    if (!host_set && env_host && env_host[0])
        TRY(set_host(o, env_host, "DIFFUSIOND_HOST", err));
    if (!port_set && env_port && env_port[0]) {
        TRY(parse_int(env_port, 0, 65535, "DIFFUSIOND_PORT", &o->port, err));
        if (o->port == 0) /* serve's "pick a free port": nothing fixed to probe */
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "DIFFUSIOND_PORT=0 (a port picked at start-up) cannot be "
                               "probed; pass --port");
    }
    return STATUS_OK;
}

int cmd_healthcheck_main(int argc, char **argv)
{
    struct healthcheck_options o;
    struct errbuf err;
    errbuf_clear(&err);
    if (healthcheck_parse(argc, argv, getenv("DIFFUSIOND_HOST"), getenv("DIFFUSIOND_PORT"), &o,
                          &err) != STATUS_OK) {
        fprintf(stderr, "diffusiond healthcheck: %s\n", err.msg);
        return 1;
    }
    if (o.help) {
        usage(stdout);
        return 0;
    }
    struct http_probe_request req = {
        .host = o.host, .port = o.port, .path = o.path, .timeout_ms = o.timeout_ms};
    struct http_probe_result res;
    const char *h = o.host;
    bool v6 = strchr(h, ':') && h[0] != '[';
    if (http_probe_get(&req, &res, &err) != STATUS_OK) {
        fprintf(stderr, "unhealthy: GET http://%s%s%s:%d%s: %s (%s)\n", v6 ? "[" : "", h,
                v6 ? "]" : "", o.port, o.path, err.msg, status_name(err.code));
        return 1;
    }
    char body[128];
    http_probe_first_line(res.body, res.body_len, body, sizeof body);
    bool ok = res.status_code >= 200 && res.status_code < 300;
    fprintf(ok ? stdout : stderr, "%s: GET http://%s%s%s:%d%s -> %d in %ld ms%s%s\n",
            ok ? "healthy" : "unhealthy", v6 ? "[" : "", h, v6 ? "]" : "", o.port, o.path,
            res.status_code, res.elapsed_ms, body[0] ? ": " : "", body);
    return ok ? 0 : 1;
}
