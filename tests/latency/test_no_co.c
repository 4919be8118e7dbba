/*
 * No coordinated omission: a server run at twice the measured capacity must
 * show p99 >= 10x the single-stream p50, because queries queue behind each
 * other and latency counts from the scheduled arrival. A harness that timed
 * only service time would report p99 close to p50 and fail.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "busy_workload.h"

/*
 * Bounds, checked against 50 runs of this test on the 2-core development VM
 * under scripts/test.sh conditions, half of them with a CPU hog on the other
 * core (scripts/timing_spread.sh):
 *   Release:     overloaded p99 / service >= 2023; late / early 10.6 .. 34.5;
 *                underloaded p50 / overloaded p50 <= 0.11; fastest / service >= 1.000
 *   ASan+UBSan:  overloaded p99 / service >= 4193; late / early 10.1 .. 40.4;
 *                underloaded p50 / overloaded p50 <= 0.16; fastest / service >= 0.9995
 */
#define NO_CO_QUEUE_MIN 10.0   /* overloaded p99 / service time */
#define NO_CO_GROWTH_MIN 3.0   /* mean latency of the last 10% / of the first 10% */
#define NO_CO_MIN_SERVICE 0.98 /* fastest underloaded query / service time */

static void overload(void **state)
{
    (void)state;
    busy_ctx bc = {50000, 0}; /* 50 us per query */
    sg_workload wl = busy_workload(&bc);
    sg_bench_config c;
    sg_bench_config_init(&c);
    c.workload = &wl;
    c.min_duration_s = 0.2;
    c.min_queries = 700;
    sg_bench_result ss, sv;
    sg_err err;
    assert_int_equal(sg_bench_run(&c, &ss, &err), SG_OK);
    /* Capacity of the whole pool: every worker serves one query per p50. */
    sg_pool *pool;
    assert_int_equal(sg_pool_create(NULL, &pool, &err), SG_OK);
    int workers = sg_pool_size(pool);
    sg_pool_free(pool);
    double capacity = workers * 1e9 / ss.latency.p50;
    c.scenario = SG_SCENARIO_SERVER;
    c.qps = 2 * capacity;
    c.min_duration_s = 0.1;
    c.seed = 42;
    assert_int_equal(sg_bench_run(&c, &sv, &err), SG_OK);
    printf("single-stream p50 %.0f ns; server at %.0f qps (2x capacity of %d workers): p50 %.0f "
           "ns, p99 %.0f ns\n",
           ss.latency.p50, c.qps, workers, sv.latency.p50, sv.latency.p99);
    printf("timing: no_co.server_p99_over_service = %.3f (bound: >= %.1f)\n",
           sv.latency.p99 / ss.latency.p50, NO_CO_QUEUE_MIN);
    assert_true(sv.latency.p99 >= NO_CO_QUEUE_MIN * ss.latency.p50);
    /* The queue grows: late queries wait longer than early ones. */
    sg_sample_span span;
    assert_int_equal(sg_bench_result_spans(&sv, &span, 1), 1);
    assert_int_equal(span.n, sv.queries);
    int64_t n = sv.queries, q = n / 10;
    double early = 0, late = 0;
    for (int64_t i = 0; i < q; i++) {
        early += (double)sg_sample_latency(span.samples[i]);
        late += (double)sg_sample_latency(span.samples[n - q + i]);
    }
    printf("mean latency of the first 10%%: %.0f ns, of the last 10%%: %.0f ns\n", early / q,
           late / q);
    printf("timing: no_co.late_over_early = %.3f (bound: > %.1f)\n", late / early,
           NO_CO_GROWTH_MIN);
    assert_true(late > NO_CO_GROWTH_MIN * early);
    assert_int_equal(sv.queries,
                     (int64_t)ceil(c.qps * c.min_duration_s)); /* the whole schedule ran */
    assert_int_equal(sv.workers, workers);
    /* Under capacity (a quarter of it) there is no backlog: lower latency than overloaded.
       (Not compared with the service time: on a shared machine descheduled workers add ms.) */
    sg_bench_result lo;
    c.qps = capacity / 4;
    c.min_duration_s = 0.2;
    c.min_queries = 400;
    int rc = sg_bench_run(&c, &lo, &err);
    if (rc != SG_OK) printf("%s\n", err.msg);
    assert_int_equal(rc, SG_OK);
    printf("server at %.0f qps: p50 %.0f ns\n", c.qps, lo.latency.p50);
    printf("timing: no_co.underload_p50_over_overload_p50 = %.4f (bound: < 1)\n",
           lo.latency.p50 / sv.latency.p50);
    printf("timing: no_co.underload_min_over_service = %.4f (bound: >= %.2f)\n",
           lo.latency.min / ss.latency.p50, NO_CO_MIN_SERVICE);
    assert_true(lo.latency.p50 < sv.latency.p50);
    /* never faster than the service time */
    assert_true(lo.latency.min >= NO_CO_MIN_SERVICE * ss.latency.p50);
    sg_bench_result_clear(&ss);
    sg_bench_result_clear(&sv);
    sg_bench_result_clear(&lo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(overload)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
