/* server/sched_admission.c — the cost model (step time EWMA per batch size) and the
 * admission decision (docs/scheduler.md, "Admission"). */
#include <math.h>

#include "server/sched_internal.h"

#define EWMA_ALPHA 0.2

static int hist_index(int rows)
{
    return rows < SCHED_HIST_MAX ? rows : SCHED_HIST_MAX;
}

double sched_step_cost(const struct scheduler *s, int rows)
{
    if (rows < 1)
        rows = 1;
    const int i = hist_index(rows);
    if (s->step_ewma[i] > 0)
        return s->step_ewma[i];
    /* nearest measured size below (scaled up linearly: conservative where rows are
     * cheaper in bulk), else above (scaled down), else the configured guess */
    for (int k = i - 1; k >= 1; k--)
        if (s->step_ewma[k] > 0)
            return s->step_ewma[k] * (double)rows / (double)k;
    for (int k = i + 1; k <= SCHED_HIST_MAX; k++)
        if (s->step_ewma[k] > 0)
            return s->step_ewma[k] * (double)rows / (double)k;
    return s->cfg.initial_step_s * (double)rows;
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
    s->step_ewma[i] = ewma_add(s->step_ewma[i], seconds);
    s->stats.step_ewma_s[i] = s->step_ewma[i];
}

void sched_record_decode(struct scheduler *s, int images, double seconds)
{
    s->decode_ewma = ewma_add(s->decode_ewma, seconds / (images > 0 ? images : 1));
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

/* A call's cost at images of `pixels` pixels against the measured calls' size mix. */
static double pixel_scale(const struct scheduler *s, double pixels)
{
    return s->step_pixels_ewma > 0 ? pixels / s->step_pixels_ewma : 1.0;
}

double sched_alone_seconds(const struct scheduler *s, const struct sched_job *j)
{
    const int max_rows = s->cfg.max_batch_rows;
    const int all = j->rows * j->p.n;
    const int b = all < max_rows ? all : max_rows;
    const int rounds = (all + max_rows - 1) / max_rows;
    const double scale = pixel_scale(s, (double)j->p.width * (double)j->p.height);
    return (double)j->p.steps * rounds * sched_step_cost(s, b) * scale + s->decode_ewma * j->p.n;
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
    if (s->step_ewma[hist_index(rows + add)] <= 0)
        return false;
    const double scale = pixel_scale(s, pixels);
    const double before = sched_step_cost(s, rows) * scale;
    const double after = sched_step_cost(s, rows + add) * scale;
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

/* Expected seconds from now until job j completes if admitted:
 *   b     = the batch the device will run: every unfinished row (admitted and j's),
 *           at most max_batch_rows (one image's rows in mode none);
 *   drain = all row-steps ahead, j's included, at the measured cost per row at b;
 *   own   = j's own steps at b (it cannot finish faster than its step count);
 * expected = max(drain, own) + its decode. */
static double expected_seconds(const struct scheduler *s, const struct sched_job *j)
{
    const int max_rows = s->cfg.max_batch_rows;
    const int64_t own_rowsteps = (int64_t)j->rows * j->p.n * j->p.steps;
    int b = s->pending_rows + j->rows * j->p.n;
    if (s->cfg.mode == SCHED_MODE_NONE)
        b = j->rows * j->p.n;
    if (b > max_rows)
        b = max_rows;
    if (b < 1)
        b = 1;
    const double t = sched_step_cost(s, b);
    const double drain = (double)(s->pending_rowsteps + own_rowsteps) * t / (double)b;
    const int rounds = (j->rows * j->p.n + max_rows - 1) / max_rows; /* n too big for one call */
    const double own = (double)j->p.steps * t * (rounds > 0 ? rounds : 1);
    return fmax(drain, own) + s->decode_ewma * j->p.n;
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
        const double t = left > 0 ? left * sched_step_cost(s, b) : s->cfg.request_max_wait_ms / 1e3;
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
