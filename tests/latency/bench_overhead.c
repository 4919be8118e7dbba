/*
 * Benchmark, not a test: harness overhead as a ratio. Runs the overhead
 * measurement N times (default 5) and prints each harness p50 / bare-loop
 * ratio and their median; scripts/bench_latency.sh reports the median.
 * usage: sg_bench_overhead [N]
 */
#include "overhead_measure.h"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5;
    if (n < 1 || n > 1000) {
        fprintf(stderr, "sg_bench_overhead: N must be 1..1000\n");
        return 2;
    }
    ovh_fixture f;
    ovh_fixture_init(&f);
    double *ratios = calloc((size_t)n, sizeof *ratios);
    if (!ratios) return 2;
    for (int i = 0; i < n; i++) {
        ovh_result r = {0};
        sg_err err;
        if (ovh_measure(&f, &r, &err) != SG_OK) {
            fprintf(stderr, "sg_bench_overhead: %s\n", err.msg);
            return 2;
        }
        ratios[i] = r.harness_p50_ns / r.bare_ns;
        printf("run %d: harness p50 %.1f ns, bare loop %.1f ns, ratio %.3f\n", i + 1,
               r.harness_p50_ns, r.bare_ns, ratios[i]);
    }
    qsort(ratios, (size_t)n, sizeof *ratios, ovh_cmp);
    printf("median ratio %.3f min %.3f max %.3f\n", ratios[n / 2], ratios[0], ratios[n - 1]);
    free(ratios);
    ovh_fixture_free(&f);
    return 0;
}
