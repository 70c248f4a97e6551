/* engine/cpu/cpu_backend.h — the CPU backend: the f32 reference every other backend
 * is tested against.
 *
 * It owns one thread pool; BLAS runs single-threaded inside pool tasks, so the two
 * never oversubscribe the cores.  Tensors on it must be DTYPE_F32 for compute ops
 * (upload converts f16/bf16 sources to f32).
 * Ownership/thread-safety: see engine/backend.h.
 */
#ifndef DIFFUSIOND_ENGINE_CPU_BACKEND_H
#define DIFFUSIOND_ENGINE_CPU_BACKEND_H

#include "engine/backend.h"

/* n_threads ≤ 0: one per online CPU. */
enum status cpu_backend_create(int n_threads, struct backend **out, struct errbuf *err);

/* The backend's thread count. */
int cpu_backend_threads(const struct backend *b);

#endif
