/* engine/profile.h — where a backend's time goes, op by op: a measuring tool for
 * benchmarks (`diffusiond bench model --profile`, tests/gpu/bench_gpu --profile).
 *
 * Attached to a backend, every op dispatched through backend.c is timed and the time
 * is added to the entry keyed by (op, input shape, weight shape, output shape).  On a
 * backend with device marks (CUDA events: backend_ops.mark) an op's time is the device
 * time between a mark queued before it and one after it, read by op_profile_flush: no
 * syncs between ops, so the device runs as it does unprofiled (each op's time includes
 * any wait for the host to queue its work).  Elsewhere (the CPU) each op is bracketed
 * by backend_sync calls and timed on CLOCK_MONOTONIC.  Never attach during CUDA graph
 * capture or in the service.
 *
 * Ownership: the caller owns the op_profile; op_profile_attach borrows it until
 * op_profile_detach (detach before destroying either).
 * Thread-safety: as the backend — used by its one thread.
 */
#ifndef DIFFUSIOND_ENGINE_PROFILE_H
#define DIFFUSIOND_ENGINE_PROFILE_H

#include <stdio.h>

#include "engine/backend.h"

struct op_profile;

enum status op_profile_create(struct op_profile **out, struct errbuf *err);
void op_profile_destroy(struct op_profile *p);
void op_profile_attach(struct backend *b, struct op_profile *p);
void op_profile_detach(struct backend *b);
/* Resolves the device-timed ops queued so far (syncs b); op_profile_detach does it
 * too, so totals are complete once detached.  No-op without such ops. */
void op_profile_flush(struct backend *b);
/* Forgets every entry (keeps attachment). */
void op_profile_reset(struct op_profile *p);

/* Totals: seconds and calls over every entry, and of one op name (NULL: all). */
double op_profile_seconds(const struct op_profile *p, const char *op);
long op_profile_calls(const struct op_profile *p, const char *op);

/* A table for people: per op name (calls, ms, share), then the `top` costliest
 * shapes.  `title` heads it. */
void op_profile_print(const struct op_profile *p, const char *title, int top, FILE *f);

/* backend.c's side: op_profile_begin before an op (sync, clock), op_profile_end after
 * it (sync, clock, add); end returns st so the dispatch can be one expression.
 * Tensors may be NULL (not part of the key). */
void op_profile_begin(struct backend *b);
enum status op_profile_end(struct backend *b, const char *op, const struct tensor *x,
                           const struct tensor *w, const struct tensor *y, enum status st);

#endif
