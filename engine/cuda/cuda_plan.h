/* engine/cuda/cuda_plan.h — the CUDA backend's planning choices as text: what
 * `serve --cuda-plan`, `generate --cuda-plan`, `bench load --cuda-plan` and bench_gpu
 * take and print, so that a choice a GPU run measured faster can be used without a
 * rebuild.  Plain C with no CUDA dependency: it is part of every build (a CPU-only
 * build still validates the flag).
 *
 *   "key=value,key=value,…" (spaces not allowed; "" and "default" change nothing)
 *     gn=auto|split|fused     group_norm_kernel 0 / 1 / 2
 *     stack=on|off            linear_stack
 *     autotune=on|off         gemm_autotune
 *     find=on|off             cudnn_find
 *     im2col=N                conv_gemm_rows (0 … 1 Gi; 0: every convolution on cuDNN)
 *     attention=auto|padded|exact2|exact3|bk128|sync1|lean|lean_mma
 *                             attention_kernel
 *     tiles=0|1|2             attention_row_tiles
 * Keys not given keep opt's values; a later key overrides an earlier one.
 *
 * Ownership: none (the caller's buffers).  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_ENGINE_CUDA_PLAN_H
#define DIFFUSIOND_ENGINE_CUDA_PLAN_H

#include <stddef.h>

#include "engine/cuda/cuda_backend.h"
#include "engine/status.h"

#define CUDA_PLAN_TEXT_MAX 160 /* bytes cuda_plan_format writes at most, NUL included */

/* Applies text's keys over opt's planning fields.  An unknown key, a bad value or a
 * malformed item → STATUS_INVALID_ARGUMENT naming it (opt then unchanged). */
enum status cuda_plan_parse(const char *text, struct cuda_backend_options *opt,
                            struct errbuf *err);

/* Every planning field of opt as such a text (parse gives opt's fields back). */
void cuda_plan_format(const struct cuda_backend_options *opt, char *buf, size_t cap);

#endif
