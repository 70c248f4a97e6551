/* engine/cuda/cuda_plan.h — the CUDA backend's planning choices as text: what
 * `serve --cuda-plan`, `generate --cuda-plan`, `bench load --cuda-plan` and bench_gpu
 * take and print, so that a choice a GPU run measured faster can be used without a
 * rebuild.  Plain C with no CUDA dependency: it is part of every build (a CPU-only
 * build still validates the flag).
 *
 *   "key=value,key=value,…" (spaces not allowed; "" and "default" change nothing)
 *     gn=auto|split|fused|cluster|tile  group_norm_kernel 0 / 1 / 2 / 3 / 4
 *     gncl=auto|2|4|8         group_norm_cluster_max (0 / 2 / 4 / 8)
 *     stack=on|off            linear_stack
 *     autotune=on|off         gemm_autotune
 *     find=on|off             cudnn_find
 *     im2col=N                conv_gemm_rows (0 … 1 Gi; 0: every convolution on cuDNN)
 *     attention=auto|padded|exact2|exact3|bk128|sync1|lean|lean_mma
 *                             attention_kernel
 *     tiles=0|1|2             attention_row_tiles
 *     pdl=on|off              pdl (programmatic dependent launch)
 *     convfuse=on|off         conv_fuse (bias and residual inside cuDNN's convolution)
 * Keys not given keep opt's values; a later key overrides an earlier one.
 *
 * It also holds the choosing of a plan by measurement (cuda_plan_trials / _combine:
 * the alternatives bench_gpu times, and how the faster ones are combined), plain logic
 * the unit tests check without a GPU.
 *
 * Ownership: none (the caller's buffers).  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_ENGINE_CUDA_PLAN_H
#define DIFFUSIOND_ENGINE_CUDA_PLAN_H

#include <stdbool.h>
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

/* True when a and b plan alike (every planning field equal). */
bool cuda_plan_same(const struct cuda_backend_options *a, const struct cuda_backend_options *b);

/* --- choosing a plan by measurement (bench_gpu's plan table) -------------------------- */

#define CUDA_PLAN_TRIALS_MAX 24

/* One alternative to a base plan: the base with one choice changed (a choice may set
 * more than one field: "lean_mma_t1" is attention=lean_mma,tiles=1), and what the
 * caller measured with it. */
struct cuda_plan_trial {
    const char *name;                 /* "im2col", "gn_fused", "lean", … */
    struct cuda_backend_options plan; /* the base with the choice applied */
    double small_s, large_s;          /* the caller's medians (e.g. a U-Net step at 2 and
                                         16 rows); ≤ 0: not measured */
    bool excluded;                    /* not to be chosen (cuda_plan_exclude) */
};

/* The alternatives to base that differ from it (gn=auto and attention=auto counted as the
 * kernels auto takes: CUDA_GN_AUTO_KERNEL, CUDA_ATTENTION_AUTO_KERNEL), in a fixed order,
 * into out[0 .. max);
 * their count.  Measurements zero, none excluded. */
int cuda_plan_trials(const struct cuda_backend_options *base, struct cuda_plan_trial *out,
                     int max);

/* Marks the trials named in list ("lean,gn_fused"; NULL or "": none) excluded. */
void cuda_plan_exclude(struct cuda_plan_trial *t, int n, const char *list);

/* Whether t was measured faster than the base (base_small_s, base_large_s): at small by
 * ≥ 1 %, and not slower at large by > 1 % (exclusion aside). */
bool cuda_plan_trial_faster(const struct cuda_plan_trial *t, double base_small_s,
                            double base_large_s);

/* The combination to try: over base, the trials cuda_plan_trial_faster says are faster
 * and not excluded, taken fastest (small) first, each whole or not at all — a trial whose
 * fields an earlier (faster) one already changed is left out, so no field mix arises
 * that nobody measured.  *best = the result; returns how many trials it took. */
int cuda_plan_combine(const struct cuda_backend_options *base, double base_small_s,
                      double base_large_s, const struct cuda_plan_trial *t, int n,
                      struct cuda_backend_options *best);

#endif
