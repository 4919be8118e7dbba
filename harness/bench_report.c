/* What a bench run reports: the JSON document, the human table and the samples CSV. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/common.h"
#include "stagegate/json.h"
#include "stagegate/harness.h"

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *latency_json(const sg_latency_summary *s)
{
    json_t *l = json_object();
    /* Exact sample values: integers, so the CSV check compares them exactly. */
    json_object_set_new(l, "p50", json_integer((json_int_t)s->p50));
    json_object_set_new(l, "p90", json_integer((json_int_t)s->p90));
    json_object_set_new(l, "p95", json_integer((json_int_t)s->p95));
    json_object_set_new(l, "p99", json_integer((json_int_t)s->p99));
    json_object_set_new(l, "p999", json_integer((json_int_t)s->p999));
    json_object_set_new(l, "min", json_integer((json_int_t)s->min));
    json_object_set_new(l, "max", json_integer((json_int_t)s->max));
    json_object_set_new(l, "mean", num(s->mean));
    return l;
}

/* The counts behind the noise warnings, the limits they are held to, and the warnings. */
static json_t *noise_json(const sg_bench_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "involuntary_context_switches",
                        json_integer(r->involuntary_csw_in_window));
    json_object_set_new(o, "voluntary_context_switches",
                        json_integer(r->context_switches_in_window - r->involuntary_csw_in_window));
    json_object_set_new(o, "on_cpu_share", num(r->on_cpu_share));
    json_object_set_new(o, "migrations", json_integer(r->migrations));
    json_object_set_new(o, "page_faults", json_integer(r->page_faults_in_window));
    json_object_set_new(o, "throttle_events",
                        r->throttle_events >= 0 ? json_integer(r->throttle_events) : json_null());
    json_t *w = json_array();
    for (int i = 0; i < r->n_noise_warnings; i++)
        json_array_append_new(w, json_string(r->noise_warnings[i]));
    json_object_set_new(o, "noisy", json_boolean(r->n_noise_warnings > 0));
    json_object_set_new(o, "warnings", w);
    return o;
}

static json_t *noise_limits_json(void)
{
    json_t *o = json_object();
    json_object_set_new(o, "involuntary_context_switches_per_s",
                        json_real(SG_NOISE_MAX_INVOLUNTARY_CSW_PER_S));
    json_object_set_new(o, "min_on_cpu_share", json_real(SG_NOISE_MIN_ON_CPU_SHARE));
    json_object_set_new(o, "migrations", json_integer(SG_NOISE_MAX_MIGRATIONS));
    json_object_set_new(o, "page_faults", json_integer(SG_NOISE_MAX_PAGE_FAULTS));
    json_object_set_new(o, "throttle_events", json_integer(SG_NOISE_MAX_THROTTLE_EVENTS));
    return o;
}

static json_t *validity_json(const sg_bench_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "result", json_string(r->server_valid ? "VALID" : "INVALID"));
    json_object_set_new(o, "reason", json_string(r->validity_reason));
    json_object_set_new(o, "target_qps", num(r->target_qps));
    json_object_set_new(o, "scheduled_qps", num(r->scheduled_qps));
    json_object_set_new(o, "achieved_qps", num(r->qps));
    json_object_set_new(o, "latency_bound_ns", num(r->latency_bound_ns));
    json_object_set_new(o, "p99_early_stopping_ns",
                        r->es_p99.valid ? num(r->es_p99.estimate_ns) : json_null());
    return o;
}

/* What the run itself says about its honesty: cut short, noise, server validity. */
static void set_run_flags(json_t *o, const sg_bench_result *r)
{
    json_object_set_new(o, "cut_short", json_boolean(r->cut_short));
    if (r->cut_short) json_object_set_new(o, "cut_short_reason", json_string(r->cut_short_reason));
    json_object_set_new(o, "noise", noise_json(r));
    if ((sg_scenarios[r->scenario].flags & SG_SCENARIO_VERDICT))
        json_object_set_new(o, "validity", validity_json(r));
}

static json_t *repetition_json(const sg_bench_result *p, int index)
{
    json_t *o = json_object();
    json_object_set_new(o, "index", json_integer(index));
    json_object_set_new(o, "queries", json_integer(p->queries));
    json_object_set_new(o, "duration_s", num(p->duration_s));
    json_object_set_new(o, "qps", num(p->qps));
    json_object_set_new(o, "latency_ns", latency_json(&p->latency));
    set_run_flags(o, p);
    if (p->histogram) json_object_set_new(o, "histogram", sg_histogram_json(p->histogram));
    return o;
}

/* min / median / max over the repetitions of the percentiles compare judges. */
static json_t *spread_json(const sg_bench_result *r)
{
    static const char *const keys[] = {"p50", "p90", "p99", "p999"};
    const size_t offs[] = {offsetof(sg_latency_summary, p50), offsetof(sg_latency_summary, p90),
                           offsetof(sg_latency_summary, p99), offsetof(sg_latency_summary, p999)};
    json_t *o = json_object();
    for (int k = 0; k < 4; k++) {
        double lo, med, hi;
        sg_bench_spread(r, offs[k], &lo, &med, &hi);
        json_t *e = json_object();
        json_object_set_new(e, "min", num(lo));
        json_object_set_new(e, "median", num(med));
        json_object_set_new(e, "max", num(hi));
        json_object_set_new(o, keys[k], e);
    }
    return o;
}

json_t *sg_bench_result_json(const sg_bench_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "scenario", json_string(sg_scenario_name(r->scenario)));
    json_object_set_new(o, "latency_ns", latency_json(&r->latency));
    json_t *es = json_object();
    json_object_set_new(
        es, "p90", r->es_p90.valid ? json_integer((json_int_t)r->es_p90.estimate_ns) : json_null());
    json_object_set_new(
        es, "p99", r->es_p99.valid ? json_integer((json_int_t)r->es_p99.estimate_ns) : json_null());
    json_object_set_new(es, "valid", json_boolean(r->es_p90.valid && r->es_p99.valid));
    int64_t need = r->es_p90.queries_needed > r->es_p99.queries_needed ? r->es_p90.queries_needed
                                                                       : r->es_p99.queries_needed;
    json_object_set_new(es, "queries_needed", json_integer(need));
    json_object_set_new(es, "confidence", json_real(0.99));
    json_object_set_new(o, "early_stopping", es);
    json_object_set_new(o, "queries", json_integer(r->queries));
    json_object_set_new(o, "qps", num(r->qps));
    json_object_set_new(o, "throughput", num(r->throughput));
    json_t *ck = json_object();
    json_object_set_new(ck, "source",
                        json_string(r->clock.source == SG_CLOCK_TSC ? "tsc" : "clock_gettime"));
    json_object_set_new(ck, "tsc_hz",
                        r->clock.source == SG_CLOCK_TSC ? num(r->clock.tsc_hz) : json_null());
    json_object_set_new(ck, "overhead_ns", num(r->overhead_ns));
    json_object_set_new(ck, "migrations", json_integer(r->migrations));
    /* null when nothing was calibrated (clock_gettime): 0.0 had read as a perfect one */
    json_object_set_new(ck, "calibration_spread",
                        r->clock.calibrations ? num(r->clock.calib_spread) : json_null());
    if (r->clock.fallback_reason[0])
        json_object_set_new(ck, "fallback_reason", json_string(r->clock.fallback_reason));
    json_object_set_new(o, "clock", ck);
    json_t *m = json_object();
    json_object_set_new(m, "peak_rss_bytes", json_integer(r->peak_rss_bytes));
    json_object_set_new(m, "model_bytes", json_integer((json_int_t)r->model_bytes));
    json_object_set_new(m, "page_faults_in_window", json_integer(r->page_faults_in_window));
    json_object_set_new(o, "memory", m);
    json_object_set_new(o, "context_switches_in_window",
                        json_integer(r->context_switches_in_window));
    json_t *mach = sg_machine_json();
    json_object_set_new(mach, "workers", json_integer(r->workers));
    json_object_set_new(mach, "membind", json_string(r->membind));
    json_object_set(mach, "bindings", r->bindings ? r->bindings : json_array());
    json_object_set_new(o, "machine", mach);
    json_object_set_new(o, "workload", sg_json_string_safe(r->workload));
    json_object_set_new(o, "batch", json_integer(r->batch));
    if ((sg_scenarios[r->scenario].flags & SG_SCENARIO_VERDICT)) {
        json_object_set_new(o, "target_qps", num(r->target_qps));
        json_object_set_new(o, "scheduled_qps", num(r->scheduled_qps));
    }
    json_object_set_new(o, "duration_s", num(r->duration_s));
    set_run_flags(o, r);
    json_object_set_new(o, "noise_limits", noise_limits_json());
    json_object_set_new(o, "repetition_count", json_integer(r->repetitions));
    json_t *reps = json_array();
    for (int i = 0; i < r->repetitions; i++)
        json_array_append_new(reps, repetition_json(&r->reps[i], i));
    json_object_set_new(o, "repetitions", reps);
    if (r->repetitions > 0) json_object_set_new(o, "spread", spread_json(r));
    if (r->stage_ns) {
        json_t *b = json_object();
        for (int k = 0; k < r->n_stages; k++)
            json_object_set_new(b, r->stage_names[k], num(r->stage_ns[k]));
        json_object_set_new(o, "breakdown_ns", b);
    }
    if (r->histogram) json_object_set_new(o, "histogram", sg_histogram_json(r->histogram));
    return o;
}

static void dur(FILE *out, const char *name, double ns)
{
    char b[32];
    sg_format_ns(ns, b, sizeof b);
    fprintf(out, "  %-20s %*s%s\n", name, 10 - (int)sg_utf8_width(b), "", b);
}

/* CPU, cores, frequency policy and clock: what the figures below were measured on. */
static void machine_line(const sg_bench_result *r, FILE *out)
{
    json_t *m = sg_machine_json();
    char cpus[160] = "";
    size_t i, at = 0;
    json_t *b;
    if (r->bindings) json_array_foreach(r->bindings, i, b)
        {
            if (at + 12 >= sizeof cpus) break;
            int w = snprintf(cpus + at, sizeof cpus - at, "%s%lld", i ? "," : "",
                             (long long)json_integer_value(json_object_get(b, "cpu")));
            if (w > 0) at += (size_t)w;
        }
    const char *cpu = json_string_value(json_object_get(m, "cpu_model"));
    const char *gov = json_string_value(json_object_get(m, "governor"));
    const char *boost = json_string_value(json_object_get(m, "boost"));
    long long logical = json_integer_value(json_object_get(m, "logical_cpus"));
    long long allowed = json_integer_value(json_object_get(m, "allowed_cpus"));
    char limited[48] = "";
    /* inside a cpuset cgroup the run may use fewer CPUs than the machine has */
    if (allowed > 0 && allowed < logical)
        snprintf(limited, sizeof limited, ", %lld allowed", allowed);
    fprintf(out,
            "machine: %s, %lld cores (%lld logical%s), %d worker%s %s CPU %s, governor %s, "
            "boost %s, ",
            cpu ? cpu : "unknown CPU", (long long)json_integer_value(json_object_get(m, "cores")),
            logical, limited, r->workers, r->workers == 1 ? "" : "s",
            /* a synthetic topology's CPUs are planned, not run on */
            strcmp(r->membind, "planned-only") ? "on" : "planned (not pinned) for",
            cpus[0] ? cpus : "?", gov ? gov : "unknown", boost ? boost : "unknown");
    if (r->clock.source == SG_CLOCK_TSC)
        fprintf(out, "TSC %.3g GHz%s\n", r->clock.tsc_hz / 1e9,
                json_is_true(json_object_get(m, "invariant_tsc")) ? " (invariant)" : "");
    else
        fprintf(out, "clock_gettime\n");
    json_decref(m);
}

/* Size and cost of the model, and the rate achieved: GFLOP/s for dense, node visits/s for trees. */
static void model_line(const sg_bench_result *r, const sg_model_workload_info *mi, FILE *out)
{
    char size[32], params[48] = "", rate[128] = "";
    sg_format_bytes((double)mi->param_bytes, size, sizeof size);
    double rows_per_s = r->throughput;
    if (isfinite(mi->parameters)) {
        char n[32];
        sg_format_count(mi->parameters, n, sizeof n);
        snprintf(params, sizeof params, "%s parameters, ", n);
    }
    if (mi->flops_per_row > 0) {
        char f[32];
        sg_format_count(mi->flops_per_row, f, sizeof f);
        snprintf(rate, sizeof rate, "%s FLOPs/row, %.3g GFLOP/s achieved", f,
                 mi->flops_per_row * rows_per_s / 1e9);
    } else if (mi->node_visits_per_row > 0) {
        char f[32];
        sg_format_count(mi->node_visits_per_row, f, sizeof f);
        snprintf(rate, sizeof rate, "%s node visits/row, %.3g M node visits/s achieved", f,
                 mi->node_visits_per_row * rows_per_s / 1e6);
    }
    fprintf(out, "model: %s; %s%s in memory; %s\n", mi->description, params, size, rate);
}

void sg_bench_result_print(const sg_bench_result *r, FILE *out)
{
    sg_bench_result_print_model(r, NULL, out);
}

void sg_bench_result_print_model(const sg_bench_result *r, const sg_model_workload_info *mi,
                                 FILE *out)
{
    char q[32], d[32];
    sg_format_count((double)r->queries, q, sizeof q);
    sg_format_ns(r->duration_s * 1e9, d, sizeof d);
    fprintf(out, "%s: ", sg_scenario_name(r->scenario));
    sg_put_printable(out, r->workload); /* the model's file name, as the user gave it */
    fprintf(out, ", %s queries in %s on %d worker%s (%s clock)\n", q, d, r->workers,
            r->workers == 1 ? "" : "s", r->clock.source == SG_CLOCK_TSC ? "tsc" : "clock_gettime");
    machine_line(r, out);
    if (mi) model_line(r, mi, out);
    if (r->repetitions > 1) {
        static const struct {
            const char *name;
            size_t off;
        } sp[] = {{"p50", offsetof(sg_latency_summary, p50)},
                  {"p99", offsetof(sg_latency_summary, p99)}};
        fprintf(out, "%d repetitions, spread over them (min / median / max):\n", r->repetitions);
        for (int k = 0; k < 2; k++) {
            double lo, med, hi;
            char a[32], b[32], c[32];
            sg_bench_spread(r, sp[k].off, &lo, &med, &hi);
            sg_format_ns(lo, a, sizeof a);
            sg_format_ns(med, b, sizeof b);
            sg_format_ns(hi, c, sizeof c);
            fprintf(out, "  %-20s %*s%s / %*s%s / %*s%s (%.1f%% range)\n", sp[k].name,
                    10 - (int)sg_utf8_width(a), "", a, 10 - (int)sg_utf8_width(b), "", b,
                    10 - (int)sg_utf8_width(c), "", c, med > 0 ? 100 * (hi - lo) / med : 0.0);
        }
    }
    fprintf(out, "latency (per %s%s):\n",
            (sg_scenarios[r->scenario].flags & SG_SCENARIO_BATCHES) ? "batch call" : "query",
            r->repetitions > 1 ? ", all repetitions merged" : "");
    dur(out, "min", r->latency.min);
    dur(out, "p50", r->latency.p50);
    dur(out, "p90", r->latency.p90);
    dur(out, "p95", r->latency.p95);
    dur(out, "p99", r->latency.p99);
    dur(out, "p99.9", r->latency.p999);
    dur(out, "max", r->latency.max);
    dur(out, "mean", r->latency.mean);
    if (r->es_p90.valid) dur(out, "es p90", r->es_p90.estimate_ns);
    if (r->es_p99.valid) dur(out, "es p99", r->es_p99.estimate_ns);
    char qps[32], thr[32];
    sg_format_count(r->qps, qps, sizeof qps);
    sg_format_count(r->throughput, thr, sizeof thr);
    fprintf(out, "  %s queries/s, throughput %s samples/s", qps, thr);
    if ((sg_scenarios[r->scenario].flags & SG_SCENARIO_ARRIVAL_RATE)) {
        char t[32];
        sg_format_count(r->target_qps, t, sizeof t);
        fprintf(out, " (target %s queries/s, %.1f%% achieved)", t,
                r->target_qps > 0 ? 100 * r->qps / r->target_qps : 0.0);
    }
    char ov[32], rss[32], model[32];
    sg_format_ns(r->overhead_ns, ov, sizeof ov);
    sg_format_bytes((double)r->peak_rss_bytes, rss, sizeof rss);
    sg_format_bytes((double)r->model_bytes, model, sizeof model);
    /* A server query's latency runs from its scheduled arrival, not from a clock read: the
       bracket's cost is not subtracted there (the line had said it was). */
    fprintf(out, "\n  clock overhead %s %s; memory binding %s\n", ov,
            r->scenario == SG_SCENARIO_SERVER
                ? "(not subtracted: latency from the scheduled arrival)"
                : "subtracted",
            r->membind);
    fprintf(out, "memory: peak RSS %s, model %s\n", rss, model);
    if (r->stage_ns) {
        fprintf(out, "breakdown (mean per query, probes included):\n");
        for (int k = 0; k < r->n_stages; k++)
            dur(out, r->stage_names[k], r->stage_ns[k]);
    }
    if (r->histogram) {
        fprintf(out, "histogram:\n");
        sg_histogram_print(r->histogram, out, 12);
    }
    char w[8][160];
    int n = 0;
    size_t i;
    json_t *b;
    int *cpus = calloc(json_array_size(r->bindings) + 1, sizeof *cpus);
    if (r->bindings && cpus)
        json_array_foreach(r->bindings, i, b) cpus[n++] =
            (int)json_integer_value(json_object_get(b, "cpu"));
    int k = sg_machine_warnings(cpus, n, w, 6);
    free(cpus);
    for (int j = 0; j < k; j++)
        fprintf(out, "warning: %s\n", w[j]);
    if (r->clock.source != SG_CLOCK_TSC)
        fprintf(out, "warning: using clock_gettime, not the TSC: %s\n", r->clock.fallback_reason);
    for (int j = 0; j < r->n_noise_warnings; j++)
        fprintf(out, "warning: noisy machine: %s\n", r->noise_warnings[j]);
    int noisy = 0;
    for (int j = 0; j < r->repetitions; j++)
        noisy += r->reps[j].n_noise_warnings > 0;
    if (noisy && r->repetitions > 1)
        fprintf(out, "warning: noisy machine: %d of %d repetitions crossed a noise limit\n", noisy,
                r->repetitions);
    if (r->cut_short) fprintf(out, "warning: timed run cut short: %s\n", r->cut_short_reason);
    if ((sg_scenarios[r->scenario].flags & SG_SCENARIO_VERDICT))
        fprintf(out, "server: %s (%s)\n", r->server_valid ? "VALID" : "INVALID",
                r->validity_reason);
    if (!r->es_p90.valid || !r->es_p99.valid)
        fprintf(out,
                "warning: run too short for early stopping at 99%% confidence: %lld more queries "
                "needed\n",
                (long long)(r->es_p99.queries_needed > r->es_p90.queries_needed
                                ? r->es_p99.queries_needed
                                : r->es_p90.queries_needed));
}

sg_status sg_bench_write_samples(const sg_bench_result *r, const char *path, sg_err *err)
{
    sg_outfile o;
    int rc = sg_outfile_open(&o, path, err);
    if (rc != SG_OK) return rc;
    fputs("latency_ns,worker,cpu,flags\n", o.fp);
    const int n_spans = sg_bench_result_spans(r, NULL, 0);
    sg_sample_span *spans = calloc((size_t)(n_spans > 0 ? n_spans : 1), sizeof *spans);
    int *cpus = spans ? malloc(SG_SAMPLE_MAX_WORKERS * sizeof *cpus) : NULL;
    if (!spans || !cpus) {
        free(spans);
        free(cpus);
        sg_outfile_abort(&o);
        return sg_errf(err, SG_ENOMEM, "bench: out of memory writing %s", path);
    }
    sg_bench_result_spans(r, spans, n_spans);
    for (int k = 0; k < n_spans; k++) {
        /* A worker's CPU is its binding's in the repetition that timed the sample. */
        const sg_bench_result *run = r->samples ? r : &r->reps[k];
        size_t at;
        json_t *b;
        memset(cpus, 0xff, SG_SAMPLE_MAX_WORKERS * sizeof *cpus); /* -1: no binding */
        json_array_foreach(run->bindings, at, b)
        {
            const json_int_t w = json_integer_value(json_object_get(b, "worker"));
            if (w >= 0 && w < SG_SAMPLE_MAX_WORKERS)
                cpus[w] = (int)json_integer_value(json_object_get(b, "cpu"));
        }
        for (int64_t i = 0; i < spans[k].n; i++) {
            const sg_sample s = spans[k].samples[i];
            fprintf(o.fp, "%llu,%d,%d,%u\n", (unsigned long long)sg_sample_latency(s),
                    sg_sample_worker(s), cpus[sg_sample_worker(s)],
                    sg_sample_migrated(s) ? SG_SAMPLE_MIGRATED : 0u);
        }
    }
    free(spans);
    free(cpus);
    return sg_outfile_commit(&o, err);
}
