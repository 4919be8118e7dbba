/*
 * Test-only: writes the HTML pages people read, from synthetic but realistic
 * inputs, into one directory, for tests/reports/svg_check.py (and for looking at them):
 *   gate-pass.html    single-stream, 10 ns clock steps, one 4.28 ms outlier
 *   gate-fail.html    a failed gate, lognormal latency around 1 ms
 *   gate-server.html  an overloaded server run (INVALID: QPS not reached)
 *   trend.html        two versions, the second 6x slower; nightly verdicts stored from night 6
 *                     on, regressed on nights 22 (v2's first run, against v1) and 30
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/compare.h"
#include "stagegate/gate.h"

static uint64_t rng = 88172645463325252ull;

static double uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void)
{
    return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A bench JSON document from samples: percentiles, and buckets at three significant digits. */
static json_t *latency_doc(double *s, int n, const char *scenario)
{
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += s[i];
    json_t *b = json_array();
    for (int i = 0; i < n;) {
        double p = pow(10.0, floor(log10(s[i])) - 2), v = floor(s[i] / p) * p;
        int c = 0;
        while (i < n && floor(s[i] / p) * p == v)
            i++, c++;
        json_array_append_new(b, json_pack("[f,i]", v, c));
    }
#define Q(q) s[(int)((q) * (n - 1))]
    json_t *lat = json_pack("{s:s, s:{s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f}, s:i, s:i, s:f}", "scenario",
                            scenario, "latency_ns", "p50", Q(0.5), "p90", Q(0.9), "p95", Q(0.95),
                            "p99", Q(0.99), "p999", Q(0.999), "min", s[0], "max", s[n - 1], "mean",
                            sum / n, "queries", n, "repetition_count", 5, "duration_s", 10.0);
    json_object_set_new(
        lat, "early_stopping",
        json_pack("{s:f, s:f, s:b}", "p90", Q(0.9) * 1.01, "p99", Q(0.99) * 1.02, "valid", 1));
    json_object_set_new(lat, "histogram", json_pack("{s:o}", "buckets", b));
    json_object_set_new(
        lat, "machine",
        json_pack("{s:s, s:i, s:i, s:b, s:i, s:s, s:s, s:s, s:b, s:f, s:s, s:i, s:s, s:[{s:i,s:i,"
                  "s:i}], s:{s:s, s:s}}",
                  "cpu_model", "AMD EPYC 7B13", "cores", 8, "logical_cpus", 16, "smt", 1,
                  "numa_nodes", 1, "governor", "performance", "boost", "off", "clocksource", "tsc",
                  "invariant_tsc", 1, "tsc_hz", 2.6e9, "kernel", "Linux 6.1.0 x86_64", "workers", 1,
                  "membind", "bind-strict", "bindings", "worker", 0, "cpu", 2, "node", 0,
                  "stagegate", "version", "0.1.0", "build_flags", "GNU 12.2.0 Release -O3"));
    json_object_set_new(lat, "clock",
                        json_pack("{s:s, s:f}", "source", "tsc", "overhead_ns", 20.0));
    json_object_set_new(lat, "spread",
                        json_pack("{s:{s:f,s:f,s:f}, s:{s:f,s:f,s:f}}", "p50", "min", Q(0.5) * 0.98,
                                  "median", Q(0.5), "max", Q(0.5) * 1.03, "p99", "min",
                                  Q(0.99) * 0.9, "median", Q(0.99), "max", Q(0.99) * 1.2));
#undef Q
    return lat;
}

static int write_gate(const char *dir, const char *file, const char *policy_text, json_t *lat,
                      double p99_ms, bool invalid)
{
    sg_gate_policy p;
    sg_err err = {{0}};
    if (sg_policy_parse(policy_text, strlen(policy_text), "policy.json", &p, &err)) {
        fprintf(stderr, "render_fixtures: %s\n", err.msg);
        return 1;
    }
    sg_metric_values c = {0}, b = {0};
    SG_ASSERT(sg_metric_values_set(&c, "accuracy", invalid ? 0.81 : 0.9222) == SG_OK);
    SG_ASSERT(sg_metric_values_set(&c, "f1", 0.7325) == SG_OK);
    SG_ASSERT(sg_metric_values_set(&b, "f1", 0.6814) == SG_OK);
    sg_gate_latency gl = {.measured = true,
                          .queries = 100000,
                          .p90_ms = p99_ms * 0.8,
                          .p99_ms = p99_ms,
                          .p99_min_queries = 662};
    snprintf(gl.scenario, sizeof gl.scenario, "%s",
             json_string_value(json_object_get(lat, "scenario")));
    if (invalid)
        snprintf(gl.invalid, sizeof gl.invalid, "%s",
                 "QPS not reached (achieved 3,610 of 4,988 scheduled queries/s, 72%)");
    sg_gate_memory mem = {.measured = true, .peak_rss_mb = 33.45, .model_mb = 0.00635};
    sg_gate_inputs in = {.candidate = &c, .baseline = &b, .latency = &gl, .memory = &mem};
    sg_gate_decision d;
    if (sg_gate_evaluate(&p, &in, &d, &err)) {
        fprintf(stderr, "render_fixtures: %s\n", err.msg);
        return 1;
    }
    sg_statement_inputs si = {
        .model_path = "fraud <v2>.h5", .decision = &d, .timestamp = "2026-03-01T02:00:00Z"};
    memset(si.model_sha256, 'a', 64);
    si.config[si.n_config] = (sg_resource){.role = "dataset", .path = "val.h5"};
    memset(si.config[si.n_config++].sha256, 'b', 64);
    si.metrics = json_pack("{s:f, s:f, s:i}", "accuracy", invalid ? 0.81 : 0.9222, "f1", 0.7325,
                           "example_count", 100000);
    si.baseline_metrics = json_pack("{s:f, s:i}", "f1", 0.6814, "example_count", 100000);
    si.latency = lat;
    si.memory = json_pack("{s:f, s:f}", "peak_rss_mb", 33.45, "model_mb", 0.00635);
    si.policy = sg_policy_json(&p);
    json_t *st = sg_statement_build(&si, &err);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = st ? sg_render_to_file(path, sg_render_html, &d, st, &err) : 1;
    if (rc) fprintf(stderr, "render_fixtures: %s: %s\n", path, err.msg);
    json_decref(st);
    json_decref(si.metrics);
    json_decref(si.baseline_metrics);
    json_decref(si.memory);
    json_decref(si.policy);
    sg_gate_decision_clear(&d);
    return rc ? 1 : 0;
}

static int write_trend(const char *dir)
{
    json_t *runs = json_array();
    for (int night = 0; night < 40; night++) {
        int version = night < 22 ? 1 : 2;
        /* v1 wanders +-27%; v2 is 6x slower; night 30 regressed. */
        double base = version == 1 ? 717 : 4570, f = 1 + 0.27 * sin(night * 1.7);
        if (night == 30) f = 1.9;
        char t[32];
        snprintf(t, sizeof t, "2026-02-%02dT02:00:00Z", 1 + night % 28);
        if (night >= 28) snprintf(t, sizeof t, "2026-03-%02dT02:00:00Z", night - 27);
        /* Nights 0-5 were recorded before the nightly job stored verdicts. */
        const char *verdict = night < 6                    ? ""
                              : night == 22 || night == 30 ? "regressed"
                              : night % 7 == 3             ? "improved"
                                                           : "unchanged";
        json_array_append_new(
            runs,
            json_pack("{s:i, s:s, s:i, s:s, s:s, s:s, s:{s:s, s:i, s:s, s:s}, s:{s:{s:f, s:f}, "
                      "s:{s:f}, s:[s], s:{s:f, s:f}}}",
                      "id", night + 1, "verdict", verdict, "version", version, "fingerprint",
                      "3f1c9a", "time", t, "result", night == 30 ? "FAILED" : "PASSED", "machine",
                      "cpu_model", "AMD EPYC 7B13", "cores", 8, "kernel", "Linux 6.1.0",
                      "stagegate_version", "0.1.0", "figures", "latency_ns", "p50", base * f, "p99",
                      base * f * 2.4, "metrics", "accuracy", 0.92 + 0.005 * sin(night), "gated",
                      "accuracy", "limits", "latency.p99", 50000.0, "metric.accuracy", 0.85));
    }
    json_t *doc = json_pack("{s:s, s:o}", "model", "fraud-detector", "runs", runs);
    char path[4096];
    snprintf(path, sizeof path, "%s/trend.html", dir);
    FILE *f = fopen(path, "w");
    int rc = !f || sg_trend_render(f, doc) != SG_OK;
    if (f) rc |= fclose(f) != 0;
    json_decref(doc);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: render_fixtures OUTDIR\n");
        return 2;
    }
    const char *dir = argv[1];
    enum { N = 100000 };
    double *s = malloc(N * sizeof *s);
    if (!s) return 1;
    /* Single-stream: 130 ns +- a few clock steps of 10 ns, a slow tail and one 4.28 ms outlier. */
    for (int i = 0; i < N; i++) {
        double v = 130 + 10 * round(normal() * 1.1);
        if (uniform() < 0.02) v = 200 + 10 * round(uniform() * 40);
        s[i] = fmax(110, v);
    }
    s[N - 1] = 4.28e6;
    json_t *lat = latency_doc(s, N, "single-stream");
    const char *pol = "{\"metrics\": {\"accuracy\": {\"threshold\": 0.85}, \"f1\": "
                      "{\"max_relative_regression\": 0.05}}, \"latency\": {\"scenario\": "
                      "\"single-stream\", \"percentile\": 99, \"max_ms\": 50}, \"memory\": "
                      "{\"max_rss_mb\": 256}}";
    int rc = write_gate(dir, "gate-pass.html", pol, lat, 0.00025, false);
    json_decref(lat);
    /* A failed gate, lognormal around 1 ms. */
    for (int i = 0; i < N; i++)
        s[i] = 1e6 * exp(0.25 * normal());
    lat = latency_doc(s, N, "single-stream");
    const char *strict = "{\"metrics\": {\"accuracy\": {\"threshold\": 0.85}}, \"latency\": "
                         "{\"scenario\": \"single-stream\", \"percentile\": 99, \"max_ms\": 1.5}}";
    rc |= write_gate(dir, "gate-fail.html", strict, lat, 1.9, false);
    json_decref(lat);
    /* An overloaded server: queueing stretches the tail to tens of ms. */
    for (int i = 0; i < N; i++)
        s[i] = 0.8e6 + (uniform() < 0.3 ? -log(uniform()) * 8e6 : 0.2e6 * uniform());
    lat = latency_doc(s, N, "server");
    json_object_set_new(
        lat, "validity",
        json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:f}", "result", "INVALID", "reason",
                  "QPS not reached (achieved 3,610 of 4,988 scheduled queries/s, 72%)",
                  "target_qps", 5000.0, "scheduled_qps", 4987.5, "achieved_qps", 3610.2,
                  "latency_bound_ns", 1e8, "p99_early_stopping_ns", 4.1e7));
    const char *server = "{\"metrics\": {\"accuracy\": {\"threshold\": 0.85}}, \"latency\": "
                         "{\"scenario\": \"server\", \"percentile\": 99, \"max_ms\": 100, "
                         "\"target_qps\": 5000}}";
    rc |= write_gate(dir, "gate-server.html", server, lat, 41, true);
    json_decref(lat);
    free(s);
    rc |= write_trend(dir);
    return rc ? 1 : 0;
}
