/* engine/profile.c — see profile.h.  Entries live in one growing array, searched
 * linearly by key (a U-Net step has a few hundred distinct shapes: profiling is not
 * the hot path, the syncs are). */
#include "engine/profile.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 160

struct op_entry {
    char key[KEY_MAX]; /* "conv2d x[2,64,64,320] w[320,3,3,320] y[2,64,64,320]" */
    const char *op;    /* static string from backend.c */
    long calls;
    double seconds;
};

/* An op timed between two device marks, resolved by op_profile_flush. */
struct op_pending {
    int entry;     /* index into e */
    int from, to;  /* mark indices */
};

struct op_profile {
    struct op_entry *e;
    int n, cap;
    double t0;     /* of the op in flight (sync timing) */
    int mark0;     /* its first mark (device timing) */
    struct op_pending pend[BACKEND_MARKS / 2];
    int n_pend;    /* marks in use: 2·n_pend */
    bool marked;   /* some op was timed on the device */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum status op_profile_create(struct op_profile **out, struct errbuf *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? STATUS_OK : status_fail(err, STATUS_OUT_OF_MEMORY, "op profile");
}

void op_profile_destroy(struct op_profile *p)
{
    if (p)
        free(p->e);
    free(p);
}

void op_profile_attach(struct backend *b, struct op_profile *p)
{
    b->profile = p;
}

void op_profile_detach(struct backend *b)
{
    op_profile_flush(b);
    b->profile = NULL;
}

void op_profile_reset(struct op_profile *p)
{
    p->n = 0;
    p->n_pend = 0;
    p->marked = false;
}

/* Device marks where b has them and they work (a failed mark falls back to syncs). */
static bool use_marks(const struct backend *b)
{
    return b->ops->mark && b->ops->mark_seconds;
}

void op_profile_flush(struct backend *b)
{
    struct op_profile *p = b->profile;
    if (!p || p->n_pend == 0)
        return;
    backend_sync(b, NULL);
    for (int i = 0; i < p->n_pend; i++) {
        double sec = 0;
        if (b->ops->mark_seconds(b, p->pend[i].from, p->pend[i].to, &sec, NULL) == STATUS_OK)
            p->e[p->pend[i].entry].seconds += sec;
    }
    p->n_pend = 0;
}

void op_profile_begin(struct backend *b)
{
    struct op_profile *p = b->profile;
    if (use_marks(b)) {
        if (p->n_pend == BACKEND_MARKS / 2)
            op_profile_flush(b);
        p->mark0 = 2 * p->n_pend;
        if (b->ops->mark(b, p->mark0, NULL) == STATUS_OK)
            return;
    }
    p->mark0 = -1;
    backend_sync(b, NULL);
    p->t0 = now_s();
}

/* Appends " name[d0,d1,…]" for t (nothing for NULL) at *len. */
static void key_shape(char *key, size_t *len, const char *name, const struct tensor *t)
{
    if (!t || *len >= KEY_MAX)
        return;
    int k = snprintf(key + *len, KEY_MAX - *len, " %s[", name);
    for (int d = 0; d < t->ndim && k > 0 && *len + (size_t)k < KEY_MAX; d++)
        k += snprintf(key + *len + k, KEY_MAX - *len - (size_t)k, d ? ",%lld" : "%lld",
                      (long long)t->shape[d]);
    if (k > 0 && *len + (size_t)k < KEY_MAX)
        k += snprintf(key + *len + k, KEY_MAX - *len - (size_t)k, "]");
    *len = k > 0 && *len + (size_t)k < KEY_MAX ? *len + (size_t)k : KEY_MAX - 1;
}

static struct op_entry *find_or_add(struct op_profile *p, const char *op, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (p->e[i].op == op && strcmp(p->e[i].key, key) == 0)
            return &p->e[i];
    if (p->n == p->cap) {
        const int cap = p->cap ? 2 * p->cap : 256;
        struct op_entry *e = realloc(p->e, (size_t)cap * sizeof *e);
        if (!e)
            return NULL;
        p->e = e;
        p->cap = cap;
    }
    struct op_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    e->op = op;
    snprintf(e->key, sizeof e->key, "%s", key);
    return e;
}

enum status op_profile_end(struct backend *b, const char *op, const struct tensor *x,
                           const struct tensor *w, const struct tensor *y, enum status st)
{
    struct op_profile *p = b->profile;
    const bool marked = p->mark0 >= 0 && b->ops->mark(b, p->mark0 + 1, NULL) == STATUS_OK;
    double dt = 0;
    if (!marked) {
        backend_sync(b, NULL);
        dt = now_s() - p->t0;
    }
    char key[KEY_MAX];
    size_t len = (size_t)snprintf(key, sizeof key, "%s", op);
    key_shape(key, &len, "x", x);
    key_shape(key, &len, "w", w);
    key_shape(key, &len, "y", y);
    struct op_entry *e = find_or_add(p, op, key);
    if (e) {
        e->calls++;
        e->seconds += dt;
        p->marked |= marked;
        if (marked)
            p->pend[p->n_pend++] =
                (struct op_pending){.entry = (int)(e - p->e), .from = p->mark0, .to = p->mark0 + 1};
    }
    return st;
}

/* Seconds and calls over the entries of op (NULL: all). */
static void totals(const struct op_profile *p, const char *op, double *seconds, long *calls)
{
    *seconds = 0;
    *calls = 0;
    for (int i = 0; i < p->n; i++)
        if (!op || strcmp(p->e[i].op, op) == 0) {
            *seconds += p->e[i].seconds;
            *calls += p->e[i].calls;
        }
}

double op_profile_seconds(const struct op_profile *p, const char *op)
{
    double s;
    long c;
    totals(p, op, &s, &c);
    return s;
}

long op_profile_calls(const struct op_profile *p, const char *op)
{
    double s;
    long c;
    totals(p, op, &s, &c);
    return c;
}

static int by_seconds_desc(const void *a, const void *b)
{
    const double x = ((const struct op_entry *)a)->seconds, y = ((const struct op_entry *)b)->seconds;
    return (x < y) - (x > y);
}

void op_profile_print(const struct op_profile *p, const char *title, int top, FILE *f)
{
    const double total = op_profile_seconds(p, NULL);
    fprintf(f, "profile: %s — %ld ops, %.3f ms (%s)\n", title,
            op_profile_calls(p, NULL), total * 1e3,
            p->marked ? "device time of each op, between device marks" : "each op between syncs");
    struct op_entry *sorted = malloc((size_t)(p->n ? p->n : 1) * sizeof *sorted);
    if (!sorted)
        return;
    /* per op name: the first entry of each name carries the name's totals */
    int n_ops = 0;
    for (int i = 0; i < p->n; i++) {
        bool seen = false;
        for (int k = 0; k < n_ops && !seen; k++)
            seen = strcmp(sorted[k].op, p->e[i].op) == 0;
        if (!seen)
            sorted[n_ops++] = (struct op_entry){.op = p->e[i].op,
                                                .calls = op_profile_calls(p, p->e[i].op),
                                                .seconds = op_profile_seconds(p, p->e[i].op)};
    }
    qsort(sorted, (size_t)n_ops, sizeof *sorted, by_seconds_desc);
    fprintf(f, "  %-20s %7s %10s %6s\n", "op", "calls", "ms", "share");
    for (int k = 0; k < n_ops; k++)
        fprintf(f, "  %-20s %7ld %10.3f %5.1f%%\n", sorted[k].op, sorted[k].calls,
                sorted[k].seconds * 1e3, total > 0 ? 100 * sorted[k].seconds / total : 0);
    memcpy(sorted, p->e, (size_t)p->n * sizeof *sorted);
    qsort(sorted, (size_t)p->n, sizeof *sorted, by_seconds_desc);
    fprintf(f, "  the %d costliest shapes:\n", top < p->n ? top : p->n);
    for (int i = 0; i < p->n && i < top; i++)
        fprintf(f, "  %9.3f ms %5.1f%% %5ld× %s\n", sorted[i].seconds * 1e3,
                total > 0 ? 100 * sorted[i].seconds / total : 0, sorted[i].calls, sorted[i].key);
    free(sorted);
}
