/*
 * Repetitions and the honesty checks of a bench run.
 *
 * A nightly comparison has to tell a change from the noise between runs: clock
 * frequency, neighbours on a shared host, cache and page placement differ from
 * one run to the next far more than the queries inside one run do. So a run is
 * N independent repetitions, each with its own pool, set-up and warm-up; the
 * result keeps every repetition's summary and histogram next to the merged
 * figures, and `compare` tests repetition values against each other (the way
 * Google Benchmark's compare.py runs its U test over repetitions).
 *
 * Each repetition, and the merged run, is also checked against the documented
 * noise limits (SG_NOISE_*), and a server run gets LoadGen's VALID / INVALID.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

int64_t sg_throttle_count(const int *cpus, int n)
{
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        char path[128];
        snprintf(path, sizeof path,
                 "/sys/devices/system/cpu/cpu%d/thermal_throttle/core_throttle_count", cpus[i]);
        FILE *f = fopen(path, "r");
        long long v = 0;
        if (!f) return -1; /* virtual machines and many ARM boards do not expose it */
        int ok = fscanf(f, "%lld", &v) == 1;
        fclose(f);
        if (!ok) return -1;
        sum += v;
    }
    return n ? sum : -1;
}

static void noise_warning(sg_bench_result *r, const char *fmt, ...)
{
    if (r->n_noise_warnings >= (int)(sizeof r->noise_warnings / sizeof r->noise_warnings[0]))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->noise_warnings[r->n_noise_warnings++], sizeof r->noise_warnings[0], fmt, ap);
    va_end(ap);
}

static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 2 >= cap) return;
    if (len) {
        snprintf(buf + len, cap - len, "; ");
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* LoadGen's server rules, plus the arrival rate: an overloaded server falls behind its schedule. */
static void server_validity(sg_bench_result *r)
{
    r->validity_reason[0] = 0;
    r->server_valid = true;
    size_t cap = sizeof r->validity_reason;
    if (!r->es_p99.valid) {
        r->server_valid = false;
        append(r->validity_reason, cap,
               "too few queries (%lld; p99 early stopping at 99%% confidence needs %lld more)",
               (long long)r->queries, (long long)r->es_p99.queries_needed);
    } else if (r->es_p99.estimate_ns > r->latency_bound_ns) {
        r->server_valid = false;
        char est[32], bound[32];
        sg_format_ns(r->es_p99.estimate_ns, est, sizeof est);
        sg_format_ns(r->latency_bound_ns, bound, sizeof bound);
        append(r->validity_reason, cap, "latency bound exceeded (p99 %s > bound %s)", est, bound);
    }
    if (r->scheduled_qps > 0 && r->qps < SG_SERVER_MIN_QPS_SHARE * r->scheduled_qps) {
        r->server_valid = false;
        char got[32], sched[32];
        sg_format_count(r->qps, got, sizeof got);
        sg_format_count(r->scheduled_qps, sched, sizeof sched);
        append(r->validity_reason, cap,
               "QPS not reached (achieved %s of %s scheduled queries/s, %.0f%%)", got, sched,
               100 * r->qps / r->scheduled_qps);
    }
    if (r->server_valid) {
        char est[32], bound[32];
        sg_format_ns(r->es_p99.estimate_ns, est, sizeof est);
        sg_format_ns(r->latency_bound_ns, bound, sizeof bound);
        char got[32], sched[32];
        sg_format_count(r->qps, got, sizeof got);
        sg_format_count(r->scheduled_qps, sched, sizeof sched);
        snprintf(r->validity_reason, cap,
                 "p99 %s within the %s bound; achieved %s of %s scheduled queries/s", est, bound,
                 got, sched);
    }
}

void sg_bench_assess(sg_bench_result *r)
{
    r->n_noise_warnings = 0;
    double worker_s = r->duration_s * (r->workers > 0 ? r->workers : 1);
    double inv_rate = worker_s > 0 ? (double)r->involuntary_csw_in_window / worker_s : 0;
    /* A rate over a few milliseconds says little: a couple of switches are not a pattern. */
    if (inv_rate > SG_NOISE_MAX_INVOLUNTARY_CSW_PER_S &&
        r->involuntary_csw_in_window >= SG_NOISE_MIN_INVOLUNTARY_CSW)
        noise_warning(r,
                      "%lld involuntary context switches in the timed window (%.0f/s per worker, "
                      "limit %.0f/s): other tasks ran on the measured CPUs",
                      (long long)r->involuntary_csw_in_window, inv_rate,
                      SG_NOISE_MAX_INVOLUNTARY_CSW_PER_S);
    /* CPU time is accounted in scheduler ticks (4 ms at HZ=250): only a long window shows it. */
    if (isfinite(r->on_cpu_share) && r->duration_s >= SG_NOISE_MIN_WINDOW_FOR_CPU_SHARE_S &&
        r->on_cpu_share < SG_NOISE_MIN_ON_CPU_SHARE)
        noise_warning(r,
                      "the workers were on the CPU for %.0f%% of the timed window (limit %.0f%%)",
                      100 * r->on_cpu_share, 100 * SG_NOISE_MIN_ON_CPU_SHARE);
    if (r->migrations > SG_NOISE_MAX_MIGRATIONS)
        noise_warning(r, "%lld samples migrated between CPUs (flagged in --samples)",
                      (long long)r->migrations);
    if (r->page_faults_in_window > SG_NOISE_MAX_PAGE_FAULTS)
        noise_warning(r, "%lld page faults inside the timed window",
                      (long long)r->page_faults_in_window);
    if (r->throttle_events > SG_NOISE_MAX_THROTTLE_EVENTS)
        noise_warning(r, "%lld thermal throttling events on the measured CPUs",
                      (long long)r->throttle_events);
    if ((sg_scenarios[r->scenario].flags & SG_SCENARIO_VERDICT)) server_validity(r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void sg_bench_spread(const sg_bench_result *r, size_t field_offset, double *min, double *median,
                     double *max)
{
    int n = r->repetitions;
    *min = *median = *max = NAN;
    double *v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
    if (!v) return;
    for (int i = 0; i < n; i++)
        memcpy(&v[i], (const char *)&r->reps[i].latency + field_offset, sizeof v[i]);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *min = v[0];
    *max = v[n - 1];
    *median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    free(v);
}

/* The merged figures: sums, query-weighted means, percentiles over all samples, which stay
   in the repetitions (r->reps must be set): they had been copied into one array, and their
   latencies copied again to be sorted, 40 more bytes a query at the peak. */
static sg_status merge(sg_bench_result *reps, int n, sg_bench_result *r, sg_err *err)
{
    const sg_bench_result *a = &reps[0];
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += reps[i].queries;
    r->histogram = sg_histogram_new();
    if (!r->histogram) return sg_errf(err, SG_ENOMEM, "bench: out of memory");
    r->scenario = a->scenario;
    r->target_qps = a->target_qps;
    r->latency_bound_ns = a->latency_bound_ns;
    r->batch = a->batch;
    r->workers = a->workers;
    r->clock = a->clock;
    r->model_bytes = a->model_bytes;
    memcpy(r->membind, a->membind, sizeof r->membind);
    memcpy(r->workload, a->workload, sizeof r->workload);
    r->bindings = json_incref(a->bindings);
    r->throttle_events = 0;
    double overhead = 0, cpu_w = 0, thr_w = 0, sched_s = 0;
    int cut = 0, first_cut = 0;
    char first_reason[sizeof r->cut_short_reason] = "";
    for (int i = 0; i < n; i++) {
        sg_bench_result *p = &reps[i];
        r->queries += p->queries;
        sg_histogram_merge(r->histogram, p->histogram);
        r->duration_s += p->duration_s;
        r->migrations += p->migrations;
        r->page_faults_in_window += p->page_faults_in_window;
        r->context_switches_in_window += p->context_switches_in_window;
        r->involuntary_csw_in_window += p->involuntary_csw_in_window;
        if (p->peak_rss_bytes > r->peak_rss_bytes) r->peak_rss_bytes = p->peak_rss_bytes;
        overhead += p->overhead_ns / n;
        cpu_w += p->on_cpu_share * p->duration_s;
        thr_w += p->throughput * p->duration_s;
        if (p->scheduled_qps > 0) sched_s += (double)p->queries / p->scheduled_qps;
        r->throttle_events = r->throttle_events < 0 || p->throttle_events < 0
                                 ? -1
                                 : r->throttle_events + p->throttle_events;
        if (p->cut_short && !r->cut_short) {
            r->cut_short = true;
            first_cut = i;
            snprintf(first_reason, sizeof first_reason, "%s", p->cut_short_reason);
        }
        cut += p->cut_short;
    }
    /* every repetition cut short is counted: the first one's reason had been given as if it
       were the only one */
    if (r->cut_short && n == 1) /* "repetition 1 of 1" says nothing */
        snprintf(r->cut_short_reason, sizeof r->cut_short_reason, "%s", first_reason);
    else if (r->cut_short && cut == 1)
        snprintf(r->cut_short_reason, sizeof r->cut_short_reason, "repetition %d of %d: %s",
                 first_cut + 1, n, first_reason);
    else if (r->cut_short)
        snprintf(r->cut_short_reason, sizeof r->cut_short_reason,
                 "%d of %d repetitions; the first, repetition %d: %s", cut, n, first_cut + 1,
                 first_reason);
    r->overhead_ns = overhead;
    r->on_cpu_share = r->duration_s > 0 ? cpu_w / r->duration_s : NAN;
    r->throughput = r->duration_s > 0 ? thr_w / r->duration_s : NAN;
    r->qps = r->duration_s > 0 ? (double)r->queries / r->duration_s : NAN;
    r->scheduled_qps = sched_s > 0 ? (double)r->queries / sched_s : 0;
    if (a->stage_ns) {
        r->stage_ns = calloc((size_t)a->n_stages, sizeof *r->stage_ns);
        if (r->stage_ns) {
            r->n_stages = a->n_stages;
            r->stage_names = a->stage_names;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < a->n_stages && reps[i].stage_ns; k++)
                    r->stage_ns[k] += reps[i].stage_ns[k] * (double)reps[i].queries / (double)total;
        }
    }
    int rc = sg_bench_summarize_samples(r, err);
    if (rc == SG_OK) sg_bench_assess(r);
    return rc;
}

sg_status sg_bench_run(const sg_bench_config *c, sg_bench_result *r, sg_err *err)
{
    memset(r, 0, sizeof *r);
    int rc = sg_bench_check_config(c, err);
    if (rc) return rc;
    int n = c->repetitions;
    sg_bench_result *reps = calloc((size_t)n, sizeof *reps);
    if (!reps) return sg_errf(err, SG_ENOMEM, "bench: out of memory");
    for (int i = 0; i < n && rc == SG_OK; i++) {
        sg_bench_config ci = *c;
        ci.repetition_index = i;
        rc = sg_bench_run_once(&ci, &reps[i], err);
        /* Hand back what the buffer sized from the warm-up did not use before the next run. */
        if (rc == SG_OK && reps[i].queries > 0) {
            sg_sample *s = realloc(reps[i].samples, (size_t)reps[i].queries * sizeof *s);
            if (s) reps[i].samples = s;
        }
    }
    r->reps = reps;
    r->repetitions = n;
    if (rc == SG_OK) rc = merge(reps, n, r, err);
    if (rc) sg_bench_result_clear(r);
    return rc;
}
