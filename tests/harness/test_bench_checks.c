/*
 * The honesty checks of a bench run, on results with known counts: each documented noise
 * limit crossed gives exactly one warning and none is given under the limits; a server run
 * is INVALID for each of LoadGen's reasons (too few queries, latency bound exceeded) and
 * for falling behind its schedule, VALID otherwise; the spread over repetitions.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness/bench_internal.h"

static void quiet(sg_bench_result *r)
{
    memset(r, 0, sizeof *r);
    r->scenario = SG_SCENARIO_SINGLE_STREAM;
    r->workers = 1;
    r->duration_s = 2;
    r->on_cpu_share = 0.99;
    r->involuntary_csw_in_window = 20; /* 10/s: under the 50/s limit */
    r->throttle_events = -1;           /* unreadable: not a warning */
}

static void test_quiet_run(void **state)
{
    (void)state;
    sg_bench_result r;
    quiet(&r);
    sg_bench_assess(&r);
    assert_int_equal(r.n_noise_warnings, 0);
}

static void test_each_limit(void **state)
{
    (void)state;
    sg_bench_result r;
    quiet(&r);
    r.involuntary_csw_in_window = 126; /* 63/s */
    sg_bench_assess(&r);
    assert_int_equal(r.n_noise_warnings, 1);
    assert_non_null(strstr(r.noise_warnings[0], "126 involuntary context switches"));
    quiet(&r);
    r.duration_s = 0.02, r.involuntary_csw_in_window = 3; /* 150/s, but only 3: not a pattern */
    sg_bench_assess(&r);
    assert_int_equal(r.n_noise_warnings, 0);
    quiet(&r);
    r.on_cpu_share = 0.5;
    sg_bench_assess(&r);
    assert_int_equal(r.n_noise_warnings, 1);
    assert_non_null(strstr(r.noise_warnings[0], "on the CPU for 50%"));
    quiet(&r);
    r.on_cpu_share = 0.5, r.duration_s = 0.1; /* tick-accounted CPU time: too short to judge */
    r.involuntary_csw_in_window = 0;
    sg_bench_assess(&r);
    assert_int_equal(r.n_noise_warnings, 0);
    quiet(&r);
    r.migrations = 1;
    r.page_faults_in_window = 7;
    r.throttle_events = 2;
    sg_bench_assess(&r);
    assert_int_equal(r.n_noise_warnings, 3);
    assert_non_null(strstr(r.noise_warnings[0], "1 samples migrated"));
    assert_non_null(strstr(r.noise_warnings[1], "7 page faults"));
    assert_non_null(strstr(r.noise_warnings[2], "2 thermal throttling events"));
}

static void server(sg_bench_result *r)
{
    quiet(r);
    r->scenario = SG_SCENARIO_SERVER;
    r->workers = 2;
    r->queries = 2000;
    r->qps = 1000;
    r->target_qps = 1000;
    r->scheduled_qps = 1010;
    r->latency_bound_ns = 100e6;
    r->es_p99.valid = true;
    r->es_p99.estimate_ns = 2e6;
}

static void test_server_validity(void **state)
{
    (void)state;
    sg_bench_result r;
    server(&r);
    sg_bench_assess(&r);
    assert_true(r.server_valid);
    assert_non_null(strstr(r.validity_reason, "within the 100 ms bound"));
    server(&r);
    r.es_p99.estimate_ns = 701e6; /* an overloaded queue */
    sg_bench_assess(&r);
    assert_false(r.server_valid);
    assert_non_null(
        strstr(r.validity_reason, "latency bound exceeded (p99 701 ms > bound 100 ms)"));
    server(&r);
    r.qps = 442000, r.target_qps = 1e6, r.scheduled_qps = 1.001e6;
    sg_bench_assess(&r);
    assert_false(r.server_valid);
    assert_non_null(
        strstr(r.validity_reason,
               "QPS not reached (achieved 442,000 of 1,001,000 scheduled queries/s, 44%)"));
    server(&r);
    r.queries = 300, r.es_p99.valid = false, r.es_p99.queries_needed = 362;
    sg_bench_assess(&r);
    assert_false(r.server_valid);
    assert_non_null(strstr(r.validity_reason, "too few queries (300"));
    /* Not a server run: no verdict. */
    quiet(&r);
    sg_bench_assess(&r);
    assert_false(r.server_valid);
    assert_string_equal(r.validity_reason, "");
}

static void test_spread(void **state)
{
    (void)state;
    sg_bench_result r, reps[4];
    memset(&r, 0, sizeof r);
    memset(reps, 0, sizeof reps);
    const double p50[] = {1030, 990, 1100, 1000};
    for (int i = 0; i < 4; i++)
        reps[i].latency.p50 = p50[i];
    r.repetitions = 4, r.reps = reps;
    double lo, med, hi;
    sg_bench_spread(&r, offsetof(sg_latency_summary, p50), &lo, &med, &hi);
    assert_true(lo == 990 && hi == 1100 && med == 1015);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quiet_run),
        cmocka_unit_test(test_each_limit),
        cmocka_unit_test(test_server_validity),
        cmocka_unit_test(test_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
