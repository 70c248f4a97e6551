/* server/cmd_serve.h — `diffusiond serve`: the HTTP service (docs/serve.md).
 *
 * Start-up: settings (server/serve_config.h), the HTTP daemon (so /livez and /readyz
 * answer while loading), then on a loader thread the model on its device, the
 * scheduler and a warm-up generation; /readyz turns 200 when it finishes.  SIGTERM/
 * SIGINT are blocked in every thread the command creates (before any is; a thread
 * started before main passes them on to this one from a handler) and taken by this
 * thread with sigtimedwait from the moment HTTP listens (a signal during the load
 * stops it at its next tensor): on the signal readiness goes 503, the listening socket
 * closes, admitted work finishes within --drain-grace-s (the rest is answered 503),
 * every suspended connection gets its answer, the daemon stops, and the command
 * returns 0.
 *
 * Thread-safety: called once from main's thread (its tid is the pid, where the
 * handler sends the signals); no globals.
 */
#ifndef DIFFUSIOND_SERVER_CMD_SERVE_H
#define DIFFUSIOND_SERVER_CMD_SERVE_H

/* argv[0] is "serve".  Returns the exit code: 0 after a clean shutdown (or --help),
 * 1 on a runtime failure (bind, model load), 2 on a usage error. */
int cmd_serve_main(int argc, char **argv);

#endif
