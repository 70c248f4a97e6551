/* server/cmd_serve.h — `diffusiond serve`: the HTTP service (docs/serve.md).
 *
 * Start-up: settings (server/serve_config.h), the HTTP daemon (so /livez and /readyz
 * answer while loading), the model on the CPU backend, the scheduler, a warm-up
 * generation; /readyz turns 200 when it finishes.  SIGTERM/SIGINT are blocked in every
 * thread (before any is created) and taken by this thread with sigtimedwait: on the
 * signal readiness goes 503, the listening socket closes, admitted work finishes
 * within --drain-grace-s (the rest is answered 503), every suspended connection gets
 * its answer, the daemon stops, and the command returns 0.
 *
 * Thread-safety: called once from main's thread; no globals.
 */
#ifndef DIFFUSIOND_SERVER_CMD_SERVE_H
#define DIFFUSIOND_SERVER_CMD_SERVE_H

/* argv[0] is "serve".  Returns the exit code: 0 after a clean shutdown (or --help),
 * 1 on a runtime failure (bind, model load), 2 on a usage error. */
int cmd_serve_main(int argc, char **argv);

#endif
