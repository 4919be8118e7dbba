/*
 * Harness overhead, as a check of the measuring method (not a performance
 * claim): the single-stream p50 of a small real kernel must come out close to
 * what a bare loop of the same kernel costs. A harness that forgot to subtract
 * its bracket, double-subtracted it, timed the queue or lost the pinning would
 * be far outside the band below. The performance figure ("within 10% of a bare
 * loop") is reported by scripts/bench_latency.sh as a ratio, not asserted here.
 * Best of three runs, each run one harness measurement and one bare loop.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "overhead_measure.h"

/*
 * Bounds on harness p50 / bare loop, from 50 runs of this test on the 2-core
 * development VM under scripts/test.sh conditions, half of them with a CPU hog
 * on the other core (scripts/timing_spread.sh):
 *   Release:     best-of-3 ratio 0.90 .. 1.16 (median 1.06)
 *   ASan+UBSan:  best-of-3 ratio 0.98 .. 1.53 (median 1.05)
 * The band is set well beyond both.
 */
#define OVH_RATIO_LO 0.5
#define OVH_RATIO_HI 2.5

static void overhead(void **state)
{
    (void)state;
    ovh_fixture f;
    ovh_fixture_init(&f);
    double best = INFINITY, best_ratio = 0;
    ovh_result best_r = {0};
    for (int rep = 0; rep < 3; rep++) {
        ovh_result r = {0};
        sg_err err;
        assert_int_equal(ovh_measure(&f, &r, &err), SG_OK);
        double ratio = r.harness_p50_ns / r.bare_ns;
        if (fabs(log(ratio)) < best) {
            best = fabs(log(ratio));
            best_ratio = ratio;
            best_r = r;
        }
        if (ratio >= 0.9 && ratio <= 1.1) break;
    }
    printf("tiny model %dx%dx1: harness p50 %.1f ns, bare loop %.1f ns per call\n", OVH_NF, OVH_NH,
           best_r.harness_p50_ns, best_r.bare_ns);
    printf("timing: overhead.ratio = %.4f (bound: %.2f .. %.2f)\n", best_ratio, OVH_RATIO_LO,
           OVH_RATIO_HI);
    assert_true(best_ratio >= OVH_RATIO_LO && best_ratio <= OVH_RATIO_HI);
    ovh_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(overhead)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
