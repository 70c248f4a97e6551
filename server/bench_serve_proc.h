/* server/bench_serve_proc.h — a `diffusiond serve` child process for the load benchmark
 * (server/bench_load.c): started from this very binary (/proc/self/exe) on a free
 * loopback port, waited for until /readyz answers 200, stopped with SIGTERM.
 *
 * bench_serve_start spawns `<exe> serve --host 127.0.0.1 --port 0 --log-level warn
 * --no-access-log <args…>` with its standard output on /dev/null and its standard error
 * on a pipe that a reader thread watches: the line "listening on http://…:PORT" gives
 * the port; every other line is copied to this process's standard error behind
 * "[serve <label>] ".  The child's environment is this process's without
 * DIFFUSIOND_API_KEYS / DIFFUSIOND_API_KEYS_FILE (the benchmark sends no key).
 * bench_serve_stop sends SIGTERM, waits for the exit (SIGKILL after the timeout) and
 * reports whether the server exited with status 0.
 *
 * Ownership: the handle owns the child, its pipe and the reader thread; stop frees it.
 * Thread-safety: one handle is used by one thread (the port may be read by any).
 */
#ifndef DIFFUSIOND_SERVER_BENCH_SERVE_PROC_H
#define DIFFUSIOND_SERVER_BENCH_SERVE_PROC_H

#include "engine/status.h"

struct bench_serve;

/* Spawns the server with args[0..n) appended and waits (up to ready_timeout_s) for its
 * port and a 200 from /readyz.  STATUS_IO when it cannot be spawned or exits first,
 * STATUS_TIMEOUT when it is not ready in time (the child is then killed). */
enum status bench_serve_start(const char *label, const char *const *args, int n,
                              int ready_timeout_s, struct bench_serve **out, struct errbuf *err);

/* The port it listens on (127.0.0.1). */
int bench_serve_port(const struct bench_serve *s);

/* SIGTERM, then waits up to timeout_s for the exit (SIGKILL past it) and frees s (NULL:
 * nothing).  STATUS_OK only when the server exited with status 0; otherwise
 * STATUS_INTERNAL (another exit status or a signal) or STATUS_TIMEOUT. */
enum status bench_serve_stop(struct bench_serve *s, int timeout_s, struct errbuf *err);

#endif
