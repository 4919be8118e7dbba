/* What a bench run reports: the JSON document, the human table and the samples CSV. */
#include <math.h>
#include <string.h>

#include "stagegate/json.h"
#include "stagegate/harness.h"

static const char *const scenario_names[] = {"single-stream", "server", "offline"};

const char *sg_scenario_name(sg_scenario s)
{
    return (unsigned)s < 3 ? scenario_names[s] : "unknown";
}

int sg_scenario_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, scenario_names[i])) return i;
    return -1;
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *sg_bench_result_json(const sg_bench_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "scenario", json_string(sg_scenario_name(r->scenario)));
    json_t *l = json_object();
    /* Exact sample values: integers, so the CSV check compares them exactly. */
    json_object_set_new(l, "p50", json_integer((json_int_t)r->latency.p50));
    json_object_set_new(l, "p90", json_integer((json_int_t)r->latency.p90));
    json_object_set_new(l, "p95", json_integer((json_int_t)r->latency.p95));
    json_object_set_new(l, "p99", json_integer((json_int_t)r->latency.p99));
    json_object_set_new(l, "p999", json_integer((json_int_t)r->latency.p999));
    json_object_set_new(l, "min", json_integer((json_int_t)r->latency.min));
    json_object_set_new(l, "max", json_integer((json_int_t)r->latency.max));
    json_object_set_new(l, "mean", num(r->latency.mean));
    json_object_set_new(o, "latency_ns", l);
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
    json_object_set_new(ck, "calibration_spread", num(r->clock.calib_spread));
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
    json_object_set_new(o, "workload", json_string(r->workload));
    json_object_set_new(o, "batch", json_integer(r->batch));
    if (r->scenario == SG_SCENARIO_SERVER) json_object_set_new(o, "target_qps", num(r->target_qps));
    json_object_set_new(o, "duration_s", num(r->duration_s));
    if (r->stage_ns) {
        json_t *b = json_object();
        for (int k = 0; k < r->n_stages; k++)
            json_object_set_new(b, r->stage_names[k], num(r->stage_ns[k]));
        json_object_set_new(o, "breakdown_ns", b);
    }
    if (r->histogram) json_object_set_new(o, "histogram", sg_histogram_json(r->histogram));
    return o;
}

static void us(FILE *out, const char *name, double ns)
{
    fprintf(out, "  %-20s %12.3f us\n", name, ns / 1e3);
}

void sg_bench_result_print(const sg_bench_result *r, FILE *out)
{
    fprintf(out, "%s: %s, %lld queries in %.2f s on %d worker%s (%s clock)\n",
            sg_scenario_name(r->scenario), r->workload, (long long)r->queries, r->duration_s,
            r->workers, r->workers == 1 ? "" : "s",
            r->clock.source == SG_CLOCK_TSC ? "tsc" : "clock_gettime");
    fprintf(out, "latency (per %s):\n",
            r->scenario == SG_SCENARIO_OFFLINE ? "batch call" : "query");
    us(out, "min", r->latency.min);
    us(out, "p50", r->latency.p50);
    us(out, "p90", r->latency.p90);
    us(out, "p95", r->latency.p95);
    us(out, "p99", r->latency.p99);
    us(out, "p99.9", r->latency.p999);
    us(out, "max", r->latency.max);
    us(out, "mean", r->latency.mean);
    if (r->es_p90.valid) us(out, "es p90", r->es_p90.estimate_ns);
    if (r->es_p99.valid) us(out, "es p99", r->es_p99.estimate_ns);
    fprintf(out, "  qps %.1f, throughput %.1f samples/s", r->qps, r->throughput);
    if (r->scenario == SG_SCENARIO_SERVER) fprintf(out, " (target %.1f qps)", r->target_qps);
    fprintf(out, "\n  clock overhead %.1f ns subtracted; memory binding %s\n", r->overhead_ns,
            r->membind);
    if (r->stage_ns) {
        fprintf(out, "breakdown (mean per query, probes included):\n");
        for (int k = 0; k < r->n_stages; k++)
            us(out, r->stage_names[k], r->stage_ns[k]);
    }
    if (r->histogram) {
        fprintf(out, "histogram:\n");
        sg_histogram_print(r->histogram, out, 12);
    }
    char w[8][160];
    int cpus[256], n = 0;
    size_t i;
    json_t *b;
    if (r->bindings)
        json_array_foreach(r->bindings, i, b) if (n < 256) cpus[n++] =
            (int)json_integer_value(json_object_get(b, "cpu"));
    int k = sg_machine_warnings(cpus, n, w, 6);
    for (int j = 0; j < k; j++)
        fprintf(out, "warning: %s\n", w[j]);
    if (r->clock.source != SG_CLOCK_TSC)
        fprintf(out, "warning: using clock_gettime, not the TSC: %s\n", r->clock.fallback_reason);
    if (r->migrations)
        fprintf(out, "warning: %lld samples migrated between CPUs (flagged in --samples)\n",
                (long long)r->migrations);
    if (r->page_faults_in_window)
        fprintf(out, "warning: %lld page faults inside the timed window\n",
                (long long)r->page_faults_in_window);
    if (!r->es_p90.valid || !r->es_p99.valid)
        fprintf(out,
                "warning: run too short for early stopping at 99%% confidence: %lld more queries "
                "needed\n",
                (long long)(r->es_p99.queries_needed > r->es_p90.queries_needed
                                ? r->es_p99.queries_needed
                                : r->es_p90.queries_needed));
}

int sg_bench_write_samples(const sg_bench_result *r, const char *path, sg_err *err)
{
    sg_outfile o;
    int rc = sg_outfile_open(&o, path, err);
    if (rc != SG_OK) return rc;
    fputs("latency_ns,worker,cpu,flags\n", o.fp);
    for (int64_t i = 0; i < r->queries; i++) {
        const sg_sample *s = &r->samples[i];
        fprintf(o.fp, "%llu,%d,%d,%u\n", (unsigned long long)s->latency_ns, s->worker, s->cpu,
                s->flags);
    }
    return sg_outfile_commit(&o, err);
}
