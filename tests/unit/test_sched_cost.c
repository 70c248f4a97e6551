/* tests/unit/test_sched_cost.c — the scheduler's cost model (server/sched_admission.c,
 * through server/sched_internal.h): U-Net call costs kept apart by image size, so that
 * a job's time alone (its due time), the join rule and admission price its own size.
 *
 * Before, one EWMA per row count over every size was scaled by the job's pixels over an
 * EWMA of every call's pixels; the two moved at different rates (the row count's only
 * at calls of that many rows), so a size mix that differs between row counts — short
 * 64² jobs at 2 and 4 rows, a 128² one at 2 — priced calls well off (the first test's
 * sequence: 4 rows at 64² at 45 ms for a measured 80, 2 rows at 128² at 303 ms for a
 * measured 240; the test checks that the old formula is that far off there).
 * The scheduler struct is zeroed apart from its settings: the model reads and writes
 * only its cost fields. */
#include <math.h>
#include <string.h>

#include "server/sched_internal.h"
#include "tests/testutil.h"

#define PX64 (64 * 64)
#define PX96 (96 * 96)
#define PX128 (128 * 128)

static struct scheduler *new_model(void)
{
    static struct scheduler s;
    memset(&s, 0, sizeof s);
    scheduler_config_default(&s.cfg);
    s.cfg.max_batch_rows = 16;
    s.cfg.initial_step_s = 0.050;
    return &s;
}

START_TEST(test_sizes_kept_apart)
{
    struct scheduler *s = new_model();
    for (int i = 0; i < 3; i++)
        sched_record_step(s, 2, PX128, 0.240);
    for (int i = 0; i < 6; i++) { /* a 64² batch moves every call's pixel mix */
        sched_record_step(s, 4, PX64, 0.080);
        sched_record_step(s, 2, PX64, 0.060);
    }
    sched_record_step(s, 2, PX128, 0.240);
    ck_assert_double_eq_tol(sched_call_cost(s, 2, PX128), 0.240, 1e-12);
    ck_assert_double_eq_tol(sched_call_cost(s, 2, PX64), 0.060, 1e-12);
    ck_assert_double_eq_tol(sched_call_cost(s, 4, PX64), 0.080, 1e-12);
    /* the statistics keep the all-sizes EWMA per row count */
    ck_assert(s->stats.step_ewma_s[2] > 0.060 && s->stats.step_ewma_s[2] < 0.240);
    /* the former estimate (the all-sizes EWMA × pixels ÷ the calls' pixel EWMA) */
    const double old_64_4 = s->stats.step_ewma_s[4] * PX64 / s->step_pixels_ewma;
    const double old_128_2 = s->stats.step_ewma_s[2] * PX128 / s->step_pixels_ewma;
    ck_assert_double_eq_tol(old_64_4, 0.0453, 1e-4);
    ck_assert_double_eq_tol(old_128_2, 0.3031, 1e-4);
}
END_TEST

START_TEST(test_rows_scaled_within_a_size)
{
    struct scheduler *s = new_model();
    sched_record_step(s, 2, PX64, 0.060);
    sched_record_step(s, 8, PX64, 0.200);
    sched_record_step(s, 2, PX128, 0.240);
    /* 3 rows at 64²: from 2 rows (the nearest below), linearly; 1 row: from 2, down */
    ck_assert_double_eq_tol(sched_call_cost(s, 3, PX64), 0.090, 1e-12);
    ck_assert_double_eq_tol(sched_call_cost(s, 1, PX64), 0.030, 1e-12);
    /* 16 rows: from 8 */
    ck_assert_double_eq_tol(sched_call_cost(s, 16, PX64), 0.400, 1e-12);
    /* 4 rows at 128²: its own size's 2 rows, not 64²'s 4-row ratio */
    ck_assert_double_eq_tol(sched_call_cost(s, 4, PX128), 0.480, 1e-12);
}
END_TEST

START_TEST(test_unmeasured_size_from_the_nearest)
{
    struct scheduler *s = new_model();
    ck_assert_double_eq_tol(sched_call_cost(s, 3, PX64), 0.150, 1e-12); /* the guess */
    sched_record_step(s, 2, PX64, 0.060);
    sched_record_step(s, 2, PX128, 0.240);
    /* 96² is nearer 128² (ratio 1.78) than 64² (2.25): 0.240 · 9216 / 16384 */
    ck_assert_double_eq_tol(sched_call_cost(s, 2, PX96), 0.240 * PX96 / PX128, 1e-12);
    /* 32² is nearest 64²: 0.060 / 4 */
    ck_assert_double_eq_tol(sched_call_cost(s, 2, 32 * 32), 0.015, 1e-12);
}
END_TEST

START_TEST(test_least_recently_measured_size_replaced)
{
    struct scheduler *s = new_model();
    for (int k = 0; k <= SCHED_COST_SIZES; k++) /* one size more than the table holds */
        sched_record_step(s, 1, (int64_t)(64 + 8 * k) * 64, 0.010 * (k + 1));
    /* the first (64×64) is gone: priced from its nearest, 72×64 (0.020 · 64/72) */
    ck_assert_double_eq_tol(sched_call_cost(s, 1, PX64), 0.020 * 64.0 / 72.0, 1e-12);
    for (int k = 1; k <= SCHED_COST_SIZES; k++)
        ck_assert_double_eq_tol(sched_call_cost(s, 1, (double)(64 + 8 * k) * 64),
                                0.010 * (k + 1), 1e-12);
    /* measuring 72×64 again keeps it; the next new size replaces 80×64 */
    sched_record_step(s, 1, 72 * 64, 0.020);
    sched_record_step(s, 1, 200 * 64, 0.5);
    ck_assert_double_eq_tol(sched_call_cost(s, 1, 72 * 64), 0.020, 1e-12);
    ck_assert_double_eq_tol(sched_call_cost(s, 1, 200 * 64), 0.5, 1e-12);
    ck_assert_double_eq_tol(sched_call_cost(s, 1, 80 * 64), 0.040 * 80.0 / 88.0, 1e-12);
}
END_TEST

START_TEST(test_alone_seconds_and_join_rule_at_the_jobs_size)
{
    struct scheduler *s = new_model();
    sched_record_step(s, 2, PX128, 0.240);
    for (int i = 0; i < 8; i++)
        sched_record_step(s, 4, PX64, 0.080);
    sched_record_decode(s, 1, 0.010);
    struct sched_job j;
    memset(&j, 0, sizeof j);
    j.rows = 2;
    j.p.n = 1;
    j.p.steps = 10;
    j.steps = 10;
    j.p.width = j.p.height = 128;
    ck_assert_double_eq_tol(sched_alone_seconds(s, &j), 10 * 0.240 + 0.010, 1e-12);
    /* the join rule: a 128² job due in 2.5 s with 10 steps left meets it at 2 rows (2.41
     * s); a third row at 128² was never measured: it may join (and so is measured) … */
    j.steps_left_max = 10;
    j.due_ns = (uint64_t)2.5e9;
    struct sched_job *in[1] = {&j};
    ck_assert(!sched_join_delays(s, in, 1, 2, 2, PX128, 0));
    /* … once 4 rows cost 0.300 s at 128², two more rows would make it late (3.01 s) */
    sched_record_step(s, 4, PX128, 0.300);
    ck_assert(sched_join_delays(s, in, 1, 2, 2, PX128, 0));
    /* at 64², where 4 rows are cheap, the same numbers do not delay a 64² job */
    j.p.width = j.p.height = 64;
    sched_record_step(s, 2, PX64, 0.060);
    ck_assert(!sched_join_delays(s, in, 1, 2, 2, PX64, 0));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sched_cost");
    TCase *tc = tcase_create("cost");
    tcase_add_test(tc, test_sizes_kept_apart);
    tcase_add_test(tc, test_rows_scaled_within_a_size);
    tcase_add_test(tc, test_unmeasured_size_from_the_nearest);
    tcase_add_test(tc, test_least_recently_measured_size_replaced);
    tcase_add_test(tc, test_alone_seconds_and_join_rule_at_the_jobs_size);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
