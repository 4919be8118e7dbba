/* stagegate clock: which latency clock is in use, its rate, calibration spread and overhead,
   and which compute kernels this CPU and OS can run and which one runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stagegate/harness.h"
#include "stagegate/kernels.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: stagegate clock [--cpus LIST] [--json]\n\n"
                 "Checks for an invariant TSC (cpuid and the kernel clocksource), calibrates its\n"
                 "rate against CLOCK_MONOTONIC_RAW, and measures the empty-bracket overhead\n"
                 "(lfence;rdtsc ... rdtscp;lfence) on each pinned core.\n"
                 "STAGEGATE_CLOCK=gettime forces the clock_gettime fallback.\n"
                 "It also names the compute kernels this CPU and OS can run (cpuid and XCR0)\n"
                 "and the ones in use: the best, or STAGEGATE_ISA=scalar|avx2|avx512.\n"
                 "And it times the first touch of 64 MiB of fresh memory in 4 KiB pages and in\n"
                 "transparent huge pages (five rounds each: medians and ranges), which tells\n"
                 "whether STAGEGATE_HUGE_PAGES=1 may speed eval up here (docs/latency.md).\n"
                 "Exit codes: 0 ok, 2 usage error or a STAGEGATE_ISA this machine cannot run.\n");
}

typedef struct {
    uint64_t *ticks;
} overhead_ctx;

static void measure(sg_worker *w, void *arg)
{
    overhead_ctx *c = arg;
    c->ticks[sg_worker_index(w)] = sg_clock_overhead_ticks(20001);
}

int sg_cmd_clock(int argc, char **argv)
{
    bool json = false;
    const char *cpus = NULL;
    const sg_opt opts[] = {SG_OPT_FLAG_("json", &json), SG_OPT_STR("cpus", &cpus), SG_OPT_END_};
    int n_pos;
    int prc = sg_opts_parse("clock", opts, argc, argv, 1, NULL, 0, &n_pos);
    if (prc == SG_OPTS_HELP) {
        usage(stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    sg_err err = {{0}};
    const sg_clock_info *ci = sg_clock();
    sg_pool *pool = NULL;
    int rc = sg_pool_create(cpus, &pool, &err);
    if (rc != SG_OK) return sg_cli_fail(rc, &err);
    /* One slot per worker, however many CPUs the machine has (a fixed 1,024 had been written
       past by the workers of a larger machine, and crashed the command). */
    int n = sg_pool_size(pool);
    uint64_t *ticks = calloc((size_t)n, sizeof *ticks);
    if (!ticks) {
        sg_pool_free(pool);
        return sg_cli_fail(sg_errf(&err, SG_ENOMEM, "out of memory for %d workers", n), &err);
    }
    overhead_ctx ctx = {ticks};
    sg_pool_run(pool, measure, &ctx);
    const char *src = ci->source == SG_CLOCK_TSC ? "tsc" : "clock_gettime";
    /* main() has checked STAGEGATE_ISA: the table in use is the one every command runs. */
    const char *in_use = sg_kernels()->name, *runnable[SG_ISA_COUNT];
    int n_runnable = 0;
    const char *blas_replaced, *blas_core = sg_blas_core(&blas_replaced);
    sg_first_touch ft;
    if ((rc = sg_first_touch_measure((size_t)64 << 20, 5, &ft, &err)) != SG_OK) {
        sg_pool_free(pool);
        free(ticks);
        return sg_cli_fail(rc, &err);
    }
    /* Huge pages pay off where their first touch is the cheaper in every round, and only when
       granted; where the rounds disagree the host decides round by round (memory it must back
       again after idle: docs/latency.md), and only eval timed both ways can say. */
    const bool granted = ft.huge_bytes * 2 >= ft.bytes;
    const double *sr = ft.small_range, *hr = ft.huge_range;
    const char *advice = !granted              ? "huge pages not granted here"
                         : hr[1] < 0.9 * sr[0] ? "STAGEGATE_HUGE_PAGES=1 may help here"
                         : hr[0] > 1.1 * sr[1] ? "keep STAGEGATE_HUGE_PAGES unset here"
                         : hr[1] <= 1.1 * sr[0] && hr[0] >= 0.9 * sr[1]
                             ? "no difference here"
                             : "it varies from round to round here: time eval both ways "
                               "(scripts/bench_eval.sh)";
    for (int i = 0; i < SG_ISA_COUNT; i++)
        if (sg_kernels_variant((sg_isa)i)) runnable[n_runnable++] = sg_isa_name((sg_isa)i);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "source", json_string(src));
        json_object_set_new(o, "invariant_tsc", json_boolean(ci->cpuid_invariant_tsc));
        json_object_set_new(o, "clocksource", json_string(ci->clocksource));
        sg_json_set_real(o, "tsc_hz", ci->source == SG_CLOCK_TSC ? ci->tsc_hz : NAN);
        /* null when nothing was calibrated (STAGEGATE_CLOCK=gettime), not a spread of 0 */
        sg_json_set_real(o, "calibration_spread", ci->calibrations ? ci->calib_spread : NAN);
        json_object_set_new(o, "calibrations", json_integer(ci->calibrations));
        if (ci->fallback_reason[0])
            json_object_set_new(o, "fallback_reason", json_string(ci->fallback_reason));
        json_t *per = json_array();
        for (int i = 0; i < n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "cpu", json_integer(sg_pool_placement(pool, i)->pu));
            json_object_set_new(e, "overhead_ticks", json_integer((json_int_t)ticks[i]));
            sg_json_set_real(e, "overhead_ns", sg_clock_ticks_to_ns(ticks[i]));
            json_array_append_new(per, e);
        }
        json_object_set_new(o, "overhead", per);
        /* false on a synthetic topology: its CPUs are planned, and the threads ran unpinned */
        json_object_set_new(o, "pinned", json_boolean(sg_pool_bound(pool)));
        json_t *k = json_object(), *can = json_array();
        json_object_set_new(k, "in_use", json_string(in_use));
        for (int i = 0; i < n_runnable; i++)
            json_array_append_new(can, json_string(runnable[i]));
        json_object_set_new(k, "runnable", can);
        json_object_set_new(o, "kernels", k);
        json_t *blas = json_object();
        json_object_set_new(blas, "core", json_string(blas_core));
        json_object_set_new(blas, "replaced",
                            blas_replaced ? json_string(blas_replaced) : json_null());
        json_object_set_new(blas, "chosen_by", json_string(sg_blas_core_chosen_by()));
        json_object_set_new(o, "openblas", blas);
        json_t *t = json_object();
        json_object_set_new(t, "bytes", json_integer((json_int_t)ft.bytes));
        json_object_set_new(t, "rounds", json_integer(ft.rounds));
        sg_json_set_real(t, "small_pages_ms", ft.small_ms);
        sg_json_set_real(t, "huge_pages_ms", ft.huge_ms);
        json_t *sra = json_array(), *hra = json_array();
        for (int i = 0; i < 2; i++) {
            json_array_append_new(sra, json_real(ft.small_range[i]));
            json_array_append_new(hra, json_real(ft.huge_range[i]));
        }
        json_object_set_new(t, "small_pages_range_ms", sra);
        json_object_set_new(t, "huge_pages_range_ms", hra);
        json_object_set_new(t, "huge_pages_granted_bytes", json_integer((json_int_t)ft.huge_bytes));
        json_object_set_new(t, "transparent_hugepage", json_string(ft.thp));
        json_object_set_new(t, "advice", json_string(advice));
        json_object_set_new(o, "first_touch", t);
        sg_json_print(o);
        json_decref(o);
    } else {
        if (ci->fallback_reason[0])
            printf("clock in use:        %s (fallback: %s)\n", src, ci->fallback_reason);
        else
            printf("clock in use:        %s\n", src);
        printf("invariant TSC:       %s (cpuid), kernel clocksource %s\n",
               ci->cpuid_invariant_tsc ? "yes" : "no",
               ci->clocksource[0] ? ci->clocksource : "unknown");
        if (ci->calibrations)
            printf("TSC frequency:       %.0f Hz (median of %d calibrations, spread %.4f%%)\n",
                   ci->tsc_hz, ci->calibrations, ci->calib_spread * 100);
        if (!sg_pool_bound(pool))
            printf("workers:             planned only: a synthetic hwloc topology (%d CPUs) "
                   "that is not this machine; the overheads below ran on unpinned threads\n",
                   n);
        for (int i = 0; i < n; i++)
            if (ci->source == SG_CLOCK_TSC)
                printf("overhead on CPU %-3d  %llu cycles = %.1f ns\n",
                       sg_pool_placement(pool, i)->pu, (unsigned long long)ticks[i],
                       sg_clock_ticks_to_ns(ticks[i]));
            else /* the ticks are nanoseconds already */
                printf("overhead on CPU %-3d  %llu ns\n", sg_pool_placement(pool, i)->pu,
                       (unsigned long long)ticks[i]);
        printf("kernels:             %s in use (this CPU and OS can run:", in_use);
        for (int i = 0; i < n_runnable; i++)
            printf(" %s", runnable[i]);
        printf(")\n");
        if (blas_replaced)
            printf("OpenBLAS kernels:    %s (OpenBLAS chose %s, a fallback without AVX2 for a CPU "
                   "it does not know; OPENBLAS_CORETYPE overrides)\n",
                   blas_core, blas_replaced);
        else if (!strcmp(sg_blas_core_chosen_by(), "OPENBLAS_CORETYPE"))
            printf("OpenBLAS kernels:    %s (chosen by OPENBLAS_CORETYPE)\n", blas_core);
        else
            printf("OpenBLAS kernels:    %s\n", blas_core);
        printf("first touch:         %zu MiB in 4 KiB pages %.1f ms (%.1f-%.1f), in huge pages "
               "%.1f ms (%.1f-%.1f; %zu MiB of them granted; THP %s), medians of %d rounds: %s\n",
               ft.bytes >> 20, ft.small_ms, sr[0], sr[1], ft.huge_ms, hr[0], hr[1],
               ft.huge_bytes >> 20, ft.thp, ft.rounds, advice);
    }
    sg_pool_free(pool);
    free(ticks);
    return 0;
}
