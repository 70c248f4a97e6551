/* engine/cuda/cuda_plan.c — the CUDA backend's planning choices as text
 * (engine/cuda/cuda_plan.h). */
#include "engine/cuda/cuda_plan.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_MAX 64 /* one "key=value", NUL included */

/* A key's values by name, in field order (value i ↔ field value i). */
static const char *const GN_NAMES[] = {"auto", "split", "fused", "cluster", "tile", NULL};
static const char *const ONOFF_NAMES[] = {"off", "on", NULL};
static const char *const TILES_NAMES[] = {"0", "1", "2", NULL};
static const char *const GNCL_NAMES[] = {"auto", "2", "4", "8", NULL}; /* 0, 2, 4, 8 */
static const int GNCL_VALUES[] = {0, 2, 4, 8};
static const struct {
    const char *name;
    enum cuda_attention_kernel kernel;
} ATTENTION_NAMES[] = {
    {"auto", CUDA_ATTENTION_DEFAULT},     {"padded", CUDA_ATTENTION_PADDED},
    {"exact2", CUDA_ATTENTION_EXACT2},    {"exact3", CUDA_ATTENTION_EXACT3},
    {"bk128", CUDA_ATTENTION_EXACT_BK128}, {"sync1", CUDA_ATTENTION_EXACT_SYNC1},
    {"lean", CUDA_ATTENTION_LEAN},        {"lean_mma", CUDA_ATTENTION_LEAN_MMA},
};
#define N_ATTENTION ((int)(sizeof ATTENTION_NAMES / sizeof ATTENTION_NAMES[0]))
#define IM2COL_MAX (1 << 30)

/* The index of value in names (NULL-terminated), or -1. */
static int name_index(const char *const *names, const char *value)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], value) == 0)
            return i;
    return -1;
}

static enum status bad_value(const char *key, const char *value, const char *allowed,
                             struct errbuf *err)
{
    return status_fail(err, STATUS_INVALID_ARGUMENT, "cuda plan: %s='%s' is not %s", key, value,
                       allowed);
}

/* One "key=value" over opt. */
static enum status apply_item(const char *key, const char *value,
                              struct cuda_backend_options *opt, struct errbuf *err)
{
    int i;
    if (strcmp(key, "gn") == 0) {
        if ((i = name_index(GN_NAMES, value)) < 0)
            return bad_value(key, value, "auto, split, fused, cluster or tile", err);
        opt->group_norm_kernel = i;
    } else if (strcmp(key, "stack") == 0 || strcmp(key, "autotune") == 0 ||
               strcmp(key, "find") == 0 || strcmp(key, "pdl") == 0 ||
               strcmp(key, "convfuse") == 0) {
        if ((i = name_index(ONOFF_NAMES, value)) < 0)
            return bad_value(key, value, "on or off", err);
        bool *field = key[0] == 's'   ? &opt->linear_stack
                      : key[0] == 'a' ? &opt->gemm_autotune
                      : key[0] == 'p' ? &opt->pdl
                      : key[0] == 'c' ? &opt->conv_fuse
                                      : &opt->cudnn_find;
        *field = i == 1;
    } else if (strcmp(key, "im2col") == 0) {
        char *end;
        const long v = strtol(value, &end, 10);
        if (!value[0] || *end || v < 0 || v > IM2COL_MAX)
            return bad_value(key, value, "an integer 0 … 1073741824", err);
        opt->conv_gemm_rows = (int)v;
    } else if (strcmp(key, "attention") == 0) {
        for (i = 0; i < N_ATTENTION && strcmp(ATTENTION_NAMES[i].name, value); i++) {
        }
        if (i == N_ATTENTION)
            return bad_value(key, value,
                             "auto, padded, exact2, exact3, bk128, sync1, lean or lean_mma",
                             err);
        opt->attention_kernel = ATTENTION_NAMES[i].kernel;
    } else if (strcmp(key, "gncl") == 0) {
        if ((i = name_index(GNCL_NAMES, value)) < 0)
            return bad_value(key, value, "auto, 2, 4 or 8", err);
        opt->group_norm_cluster_max = GNCL_VALUES[i];
    } else if (strcmp(key, "tiles") == 0) {
        if ((i = name_index(TILES_NAMES, value)) < 0)
            return bad_value(key, value, "0, 1 or 2", err);
        opt->attention_row_tiles = i;
    } else {
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "cuda plan: unknown key '%s' (gn, gncl, stack, autotune, find, "
                           "im2col, attention, tiles, pdl, convfuse)",
                           key);
    }
    return STATUS_OK;
}

enum status cuda_plan_parse(const char *text, struct cuda_backend_options *opt,
                            struct errbuf *err)
{
    if (!text || !text[0] || strcmp(text, "default") == 0)
        return STATUS_OK;
    struct cuda_backend_options o = *opt; /* opt unchanged on failure */
    for (const char *p = text;;) {
        const size_t len = strcspn(p, ",");
        char item[ITEM_MAX];
        if (len == 0)
            return status_fail(err, STATUS_INVALID_ARGUMENT, "cuda plan: empty item in '%.100s'",
                               text);
        if (len >= sizeof item)
            return status_fail(err, STATUS_INVALID_ARGUMENT, "cuda plan: item '%.20s…' is too long",
                               p);
        memcpy(item, p, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        if (!eq || eq == item || strpbrk(item, " \t"))
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "cuda plan: '%s' is not key=value", item);
        *eq = '\0';
        TRY(apply_item(item, eq + 1, &o, err));
        if (!p[len])
            break;
        p += len + 1;
    }
    *opt = o;
    return STATUS_OK;
}

void cuda_plan_format(const struct cuda_backend_options *opt, char *buf, size_t cap)
{
    const char *attention = "auto";
    for (int i = 0; i < N_ATTENTION; i++)
        if (ATTENTION_NAMES[i].kernel == opt->attention_kernel)
            attention = ATTENTION_NAMES[i].name;
    const int gn = opt->group_norm_kernel;
    const int tiles = opt->attention_row_tiles;
    const char *gncl = "auto";
    for (int i = 1; GNCL_NAMES[i]; i++)
        if (GNCL_VALUES[i] == opt->group_norm_cluster_max)
            gncl = GNCL_NAMES[i];
    snprintf(buf, cap,
             "gn=%s,gncl=%s,stack=%s,autotune=%s,find=%s,im2col=%d,attention=%s,tiles=%s,pdl=%s,"
             "convfuse=%s",
             gn >= 0 && gn <= 4 ? GN_NAMES[gn] : "auto", gncl, ONOFF_NAMES[opt->linear_stack],
             ONOFF_NAMES[opt->gemm_autotune], ONOFF_NAMES[opt->cudnn_find],
             opt->conv_gemm_rows, attention, tiles >= 0 && tiles <= 2 ? TILES_NAMES[tiles] : "0",
             ONOFF_NAMES[opt->pdl], ONOFF_NAMES[opt->conv_fuse]);
}

bool cuda_plan_same(const struct cuda_backend_options *a, const struct cuda_backend_options *b)
{
    char ta[CUDA_PLAN_TEXT_MAX], tb[CUDA_PLAN_TEXT_MAX];
    cuda_plan_format(a, ta, sizeof ta);
    cuda_plan_format(b, tb, sizeof tb);
    return strcmp(ta, tb) == 0;
}

/* The alternatives, as plan texts over the base (their order is the table's; cuDNN's
 * timed search last: the workspace it grows would change the GEMMs of later trials).
 * Each field has a trial away from the default and one back to it, so that a base
 * that is not the default is measured against it too. */
static const struct {
    const char *name, *text;
} TRIALS[] = {
    {"im2col", "im2col=8192"}, /* at 2 rows every 3×3 of the U-Net; at 16, up to 16×16 */
    {"im2col_2k", "im2col=2048"}, /* 2 rows: the 8×8 to 32×32 maps; 16: the 8×8 */
    {"im2col_512", "im2col=512"}, /* 2 rows: the 8×8 and 16×16 maps; 16: none */
    {"cudnn", "im2col=0"},
    {"autotune", "autotune=on"},
    {"heuristic", "autotune=off"},
    {"gn_split", "gn=split"},
    {"gn_fused", "gn=fused"},
    {"gn_cluster", "gn=cluster,gncl=auto"},
    {"gn_cluster4", "gn=cluster,gncl=4"}, /* 2 rows: 256 blocks, one wave of residents */
    {"gn_cluster2", "gn=cluster,gncl=2"},
    {"gn_tile", "gn=tile"},
    {"stacked", "stack=on"},
    {"unstacked", "stack=off"},
    {"exact2", "attention=exact2"},
    {"lean", "attention=lean"},
    {"lean_mma", "attention=lean_mma"},
    {"lean_mma_t1", "attention=lean_mma,tiles=1"},
    {"pdl", "pdl=on"},
    {"no_pdl", "pdl=off"},
    {"convfuse", "convfuse=on"},
    {"no_convfuse", "convfuse=off"},
    {"find", "find=on"},
};
#define N_TRIALS ((int)(sizeof TRIALS / sizeof TRIALS[0]))

/* opt with the auto kernels written as what they take (gn=auto: CUDA_GN_AUTO_KERNEL, gncl=auto: 8,
 * attention=auto: CUDA_ATTENTION_AUTO_KERNEL), so that a trial that only names what
 * auto already does is no alternative. */
static struct cuda_backend_options auto_resolved(const struct cuda_backend_options *opt)
{
    struct cuda_backend_options r = *opt;
    if (r.group_norm_kernel == 0)
        r.group_norm_kernel = CUDA_GN_AUTO_KERNEL;
    if (r.group_norm_cluster_max == 0)
        r.group_norm_cluster_max = 8;
    if (r.attention_kernel == CUDA_ATTENTION_DEFAULT)
        r.attention_kernel = CUDA_ATTENTION_AUTO_KERNEL;
    return r;
}

int cuda_plan_trials(const struct cuda_backend_options *base, struct cuda_plan_trial *out,
                     int max)
{
    const struct cuda_backend_options rb = auto_resolved(base);
    int n = 0;
    for (int i = 0; i < N_TRIALS && n < max; i++) {
        struct cuda_plan_trial t;
        memset(&t, 0, sizeof t);
        t.name = TRIALS[i].name;
        t.plan = *base;
        struct errbuf ignored; /* the table's texts are valid */
        if (cuda_plan_parse(TRIALS[i].text, &t.plan, &ignored) == STATUS_OK) {
            const struct cuda_backend_options rt = auto_resolved(&t.plan);
            if (!cuda_plan_same(&rt, &rb))
                out[n++] = t;
        }
    }
    return n;
}

void cuda_plan_exclude(struct cuda_plan_trial *t, int n, const char *list)
{
    for (int i = 0; i < n; i++)
        for (const char *p = list; p && *p;) {
            const size_t len = strcspn(p, ",");
            if (len == strlen(t[i].name) && strncmp(p, t[i].name, len) == 0)
                t[i].excluded = true;
            p += len + (p[len] == ',');
        }
}

/* Whether trial plan p changes a field that dst already changed from base. */
static bool plan_overlaps(const struct cuda_backend_options *dst,
                          const struct cuda_backend_options *p,
                          const struct cuda_backend_options *base)
{
#define TAKEN(f) || (p->f != base->f && dst->f != base->f)
    return false CUDA_PLAN_FIELDS(TAKEN);
#undef TAKEN
}

/* dst takes every field in which p differs from base. */
static void plan_take(struct cuda_backend_options *dst, const struct cuda_backend_options *p,
                      const struct cuda_backend_options *base)
{
#define TAKE(f)                                                                                    \
    if (p->f != base->f)                                                                           \
        dst->f = p->f;
    CUDA_PLAN_FIELDS(TAKE)
#undef TAKE
}

bool cuda_plan_trial_faster(const struct cuda_plan_trial *t, double base_small_s,
                            double base_large_s)
{
    return t->small_s > 0 && t->small_s < 0.99 * base_small_s && t->large_s > 0 &&
           t->large_s <= 1.01 * base_large_s;
}

int cuda_plan_combine(const struct cuda_backend_options *base, double base_small_s,
                      double base_large_s, const struct cuda_plan_trial *t, int n,
                      struct cuda_backend_options *best)
{
    int order[CUDA_PLAN_TRIALS_MAX], k = 0;
    for (int i = 0; i < n && k < CUDA_PLAN_TRIALS_MAX; i++)
        if (!t[i].excluded && cuda_plan_trial_faster(&t[i], base_small_s, base_large_s))
            order[k++] = i;
    for (int i = 1; i < k; i++) /* insertion sort, fastest (small) first */
        for (int j = i; j > 0 && t[order[j]].small_s < t[order[j - 1]].small_s; j--) {
            const int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    *best = *base;
    int taken = 0;
    for (int i = 0; i < k; i++)
        if (!plan_overlaps(best, &t[order[i]].plan, base)) {
            plan_take(best, &t[order[i]].plan, base);
            taken++;
        }
    return taken;
}
