/* server/sched_admission.c — the cost model (step time EWMA per batch size) and the
 * admission decision (docs/scheduler.md, "Admission"). */
#include <math.h>
#include <string.h>

#include "server/sched_internal.h"

#define EWMA_ALPHA 0.2

static int hist_index(int rows)
{
    return rows < SCHED_HIST_MAX ? rows : SCHED_HIST_MAX;
}

/* The cost of `rows` rows from one size's table: measured there, else the nearest
 * measured row count below (scaled up linearly: conservative where rows are cheaper in
 * bulk), else above (scaled down); 0 when the table is empty. */
static double rows_cost(const double *step, int rows)
{
    if (rows < 1)
        rows = 1;
    const int i = hist_index(rows);
    if (step[i] > 0)
        return step[i];
    for (int k = i - 1; k >= 1; k--)
        if (step[k] > 0)
            return step[k] * (double)rows / (double)k;
    for (int k = i + 1; k <= SCHED_HIST_MAX; k++)
        if (step[k] > 0)
            return step[k] * (double)rows / (double)k;
    return 0.0;
}

static const struct sched_size_cost *size_cost_at(const struct scheduler *s, double pixels)
{
    for (int i = 0; i < SCHED_COST_SIZES; i++)
        if (s->size_cost[i].pixels > 0 && (double)s->size_cost[i].pixels == pixels)
            return &s->size_cost[i];
    return NULL;
}

double sched_call_cost(const struct scheduler *s, int rows, double pixels)
{
    const struct sched_size_cost *own = size_cost_at(s, pixels);
    const double c = own ? rows_cost(own->step, rows) : 0.0;
    if (c > 0)
        return c;
    const struct sched_size_cost *near = NULL; /* the nearest size by pixel ratio */
    double best = 0;
    for (int i = 0; i < SCHED_COST_SIZES && pixels > 0; i++) {
        const struct sched_size_cost *z = &s->size_cost[i];
        if (z->pixels <= 0)
            continue;
        const double d = fabs(log((double)z->pixels / pixels));
        if (!near || d < best)
            near = z, best = d;
    }
    const double nc = near ? rows_cost(near->step, rows) : 0.0;
    if (nc > 0)
        return nc * pixels / (double)near->pixels;
    return s->cfg.initial_step_s * (double)(rows < 1 ? 1 : rows);
}

/* The slot of a measured size: its own, a free one, or the least recently measured. */
static struct sched_size_cost *size_cost_slot(struct scheduler *s, int64_t pixels)
{
    struct sched_size_cost *lru = &s->size_cost[0];
    for (int i = 0; i < SCHED_COST_SIZES; i++) {
        struct sched_size_cost *z = &s->size_cost[i];
        if (z->pixels == pixels)
            return z;
        if (z->pixels == 0 || (lru->pixels != 0 && z->used < lru->used))
            lru = z;
    }
    memset(lru, 0, sizeof *lru);
    lru->pixels = pixels;
    return lru;
}

/* An exponentially weighted moving average: its first value is the first sample. */
static double ewma_add(double avg, double sample)
{
    return avg > 0 ? (1 - EWMA_ALPHA) * avg + EWMA_ALPHA * sample : sample;
}

void sched_record_step(struct scheduler *s, int rows, int64_t pixels, double seconds)
{
    const int i = hist_index(rows);
    s->step_pixels_ewma = ewma_add(s->step_pixels_ewma, (double)pixels);
    s->stats.step_ewma_s[i] = ewma_add(s->stats.step_ewma_s[i], seconds);
    if (pixels > 0) {
        struct sched_size_cost *z = size_cost_slot(s, pixels);
        z->step[i] = ewma_add(z->step[i], seconds);
        z->used = ++s->calls_measured;
    }
}

void sched_record_decode(struct scheduler *s, int images, double seconds)
{
    s->decode_ewma = ewma_add(s->decode_ewma, seconds / (images > 0 ? images : 1));
}

void sched_record_start_encode(struct scheduler *s, double pixels, double seconds)
{
    if (pixels > 0)
        s->start_encode_ewma = ewma_add(s->start_encode_ewma, seconds / pixels);
}

/* The VAE encodes of j's start images (image to image; 0 for text to image): each image
 * encodes its own, at the measured seconds per pixel. */
static double start_encode_seconds(const struct scheduler *s, const struct sched_job *j)
{
    if (!j->p.init_image)
        return 0.0;
    return s->start_encode_ewma * (double)j->p.width * (double)j->p.height * j->p.n;
}

int sched_job_cmp(const struct sched_job *a, const struct sched_job *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    const uint64_t da = a->deadline_ns ? a->deadline_ns : UINT64_MAX;
    const uint64_t db = b->deadline_ns ? b->deadline_ns : UINT64_MAX;
    if (da != db)
        return da < db ? -1 : 1;
    if (a->due_ns != b->due_ns)
        return a->due_ns < b->due_ns ? -1 : 1;
    if (a->t_submit != b->t_submit)
        return a->t_submit < b->t_submit ? -1 : 1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

double sched_alone_seconds(const struct scheduler *s, const struct sched_job *j)
{
    const int max_rows = s->cfg.max_batch_rows;
    const int all = j->rows * j->p.n;
    const int b = all < max_rows ? all : max_rows;
    const int rounds = (all + max_rows - 1) / max_rows;
    const double pixels = (double)j->p.width * (double)j->p.height;
    return start_encode_seconds(s, j) + (double)j->steps * rounds * sched_call_cost(s, b, pixels) +
           s->decode_ewma * j->p.n;
}

static bool meets(const struct sched_job *j, uint64_t now, double step_s, double decode_s)
{
    const uint64_t due = j->deadline_ns && j->deadline_ns < j->due_ns ? j->deadline_ns : j->due_ns;
    const double finish = (double)j->steps_left_max * step_s + decode_s * j->p.n;
    return (double)now + finish * 1e9 <= (double)due;
}

bool sched_join_delays(const struct scheduler *s, struct sched_job *const *in, int n, int rows,
                       int add, double pixels, uint64_t now)
{
    const struct sched_size_cost *z = size_cost_at(s, pixels);
    if (!z || z->step[hist_index(rows + add)] <= 0)
        return false;
    const double before = sched_call_cost(s, rows, pixels);
    const double after = sched_call_cost(s, rows + add, pixels);
    for (int i = 0; i < n; i++)
        if (meets(in[i], now, before, s->decode_ewma) && !meets(in[i], now, after, s->decode_ewma))
            return true;
    return false;
}

/* The smallest number of steps any active job still has (its finishing frees rows). */
static int min_steps_left(const struct scheduler *s)
{
    int best = 0;
    for (const struct sched_job *j = s->active; j; j = j->next)
        if (j->steps_left_max > 0 && (best == 0 || j->steps_left_max < best))
            best = j->steps_left_max;
    return best;
}

/* The image size of the measured calls' mix (j's own before any call). */
static double mix_pixels(const struct scheduler *s, const struct sched_job *j)
{
    return s->step_pixels_ewma > 0 ? s->step_pixels_ewma
                                   : (double)j->p.width * (double)j->p.height;
}

double sched_backlog_seconds(const struct scheduler *s)
{
    if (s->pending_rowsteps <= 0 || s->pending_rows <= 0)
        return 0.0;
    const int cap = s->cfg.mode == SCHED_MODE_NONE ? 2 : s->cfg.max_batch_rows;
    const int b = s->pending_rows < cap ? s->pending_rows : cap;
    return (double)s->pending_rowsteps * sched_call_cost(s, b, s->step_pixels_ewma) / (double)b;
}

/* Expected seconds from now until job j completes if admitted:
 *   b     = the batch the device will run: every unfinished row (admitted and j's),
 *           at most max_batch_rows (one image's rows in mode none);
 *   drain = all row-steps ahead at the measured cost per row at b (the others' at the
 *           measured calls' size mix, j's at its own size);
 *   own   = j's own steps at b (it cannot finish faster than its step count);
 * expected = its start images' encodes + max(drain, own) + its decode. */
static double expected_seconds(const struct scheduler *s, const struct sched_job *j)
{
    const int max_rows = s->cfg.max_batch_rows;
    const int64_t own_rowsteps = (int64_t)j->rows * j->p.n * j->steps;
    int b = s->pending_rows + j->rows * j->p.n;
    if (s->cfg.mode == SCHED_MODE_NONE)
        b = j->rows * j->p.n;
    if (b > max_rows)
        b = max_rows;
    if (b < 1)
        b = 1;
    /* the work ahead at the measured calls' size mix, j's own at its size */
    const double t_mix = sched_call_cost(s, b, mix_pixels(s, j));
    const double t = sched_call_cost(s, b, (double)j->p.width * (double)j->p.height);
    const double drain = ((double)s->pending_rowsteps * t_mix + (double)own_rowsteps * t) /
                         (double)b;
    const int rounds = (j->rows * j->p.n + max_rows - 1) / max_rows; /* n too big for one call */
    const double own = (double)j->steps * t * (rounds > 0 ? rounds : 1);
    return start_encode_seconds(s, j) + fmax(drain, own) + s->decode_ewma * j->p.n;
}

void sched_admission_judge(const struct scheduler *s, const struct sched_job *j, uint64_t now,
                           struct admission *adm)
{
    adm->reason = ADMIT_OK;
    adm->retry_after_ms = 0;
    adm->queue_depth = s->queue_len;
    adm->expected_s = expected_seconds(s, j);
    if (s->draining) {
        adm->reason = ADMIT_DRAINING;
        return;
    }
    if (s->queue_len >= s->cfg.queue_capacity) {
        adm->reason = ADMIT_QUEUE_FULL;
        const int left = min_steps_left(s);
        const int b = s->pending_rows < s->cfg.max_batch_rows ? s->pending_rows : s->cfg.max_batch_rows;
        const double t = left > 0 ? left * sched_call_cost(s, b, mix_pixels(s, j))
                                  : s->cfg.request_max_wait_ms / 1e3;
        adm->retry_after_ms = (int64_t)ceil(t * 1e3 - 1e-6);
        if (adm->retry_after_ms < 1)
            adm->retry_after_ms = 1;
        return;
    }
    if (j->deadline_ns) {
        const double budget = (double)(j->deadline_ns - now) * 1e-9;
        if (adm->expected_s > budget) {
            adm->reason = ADMIT_DEADLINE;
            adm->retry_after_ms = (int64_t)ceil((adm->expected_s - budget) * 1e3 - 1e-6);
            if (adm->retry_after_ms < 1)
                adm->retry_after_ms = 1;
        }
    }
}
