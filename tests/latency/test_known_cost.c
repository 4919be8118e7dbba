/*
 * Known cost: a busy-wait of N cycles (or N ns) measured by single-stream must
 * come out within 2% at p50. Best of three short runs, because the machine is
 * shared; the bound itself is not relaxed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "busy_workload.h"

static double run_p50(busy_ctx *bc, sg_bench_result *keep)
{
    sg_workload wl = busy_workload(bc);
    sg_bench_config c;
    sg_bench_config_init(&c);
    c.scenario = SG_SCENARIO_SINGLE_STREAM;
    c.workload = &wl;
    c.min_duration_s = 0.2;
    c.min_queries = 700;
    c.warmup = 50;
    sg_bench_result r;
    sg_err err;
    assert_int_equal(sg_bench_run(&c, &r, &err), SG_OK);
    double p50 = r.latency.p50;
    assert_true(r.queries >= 700);
    assert_true(r.latency.min <= r.latency.p50 && r.latency.p50 <= r.latency.p99 &&
                r.latency.p99 <= r.latency.max);
    assert_true(r.es_p99.valid); /* >= 662 queries */
    if (keep)
        *keep = r;
    else
        sg_bench_result_clear(&r);
    return p50;
}

static void known_ns(void **state)
{
    (void)state;
    const uint64_t targets[] = {20000, 200000}; /* 20 us, 200 us */
    for (int t = 0; t < 2; t++) {
        busy_ctx bc = {targets[t], 0};
        double best = INFINITY;
        for (int rep = 0; rep < 3 && best > 0.02; rep++) {
            double err = fabs(run_p50(&bc, NULL) - (double)targets[t]) / (double)targets[t];
            if (err < best) best = err;
        }
        printf("busy %llu ns: p50 off by %.3f%%\n", (unsigned long long)targets[t], best * 100);
        assert_true(best <= 0.02);
    }
}

static void known_cycles(void **state)
{
    (void)state;
    const sg_clock_info *ci = sg_clock();
    if (ci->source != SG_CLOCK_TSC) {
        printf("no TSC clock (%s): cycle-based check skipped, ns check covers the fallback\n",
               ci->fallback_reason);
        return;
    }
    const uint64_t targets[] = {5000, 100000};
    for (int t = 0; t < 2; t++) {
        busy_ctx bc = {targets[t], 1};
        double best = INFINITY;
        for (int rep = 0; rep < 3 && best > 0.02; rep++) {
            double cycles = run_p50(&bc, NULL) * ci->tsc_hz / 1e9;
            double err = fabs(cycles - (double)targets[t]) / (double)targets[t];
            if (err < best) best = err;
        }
        printf("busy %llu cycles: p50 off by %.3f%%\n", (unsigned long long)targets[t], best * 100);
        assert_true(best <= 0.02);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_ns),
        cmocka_unit_test(known_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
