/*
 * Renderers: JUnit parsed by Python's xml.etree (one testcase per check,
 * failures and skips counted, hostile text escaped), Markdown rows per check,
 * and a self-contained HTML page with the two SVG charts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>

#include <cmocka.h>

#include "stagegate/gate.h"
#include "reports/render_internal.h"

static char tmpdir_path[512];

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir_path, sizeof tmpdir_path, "%s/sg-render-XXXXXX", t && *t ? t : P_tmpdir);
    return mkdtemp(tmpdir_path) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir_path);
    return system(cmd) == 0 ? 0 : -1;
}

/* A decision with a pass, a failure, a skip and text full of markup characters. */
static void make_decision(sg_gate_decision *d, json_t **statement)
{
    sg_gate_policy p;
    sg_err err;
    const char *text =
        "{\"metrics\": {\"accuracy\": {\"threshold\": 0.85},"
        " \"f1\": {\"max_relative_regression\": 0.05},"
        " \"roc_auc\": {\"min_absolute_change\": 0, \"optional\": true}},"
        " \"latency\": {\"scenario\": \"single-stream\", \"percentile\": 99, \"max_ms\": 50}}";
    assert_int_equal(sg_policy_parse(text, strlen(text), "p.json", &p, &err), SG_OK);
    sg_metric_values c = {0}, b = {0};
    assert_int_equal(sg_metric_values_set(&c, "accuracy", 0.9), SG_OK);
    assert_int_equal(sg_metric_values_set(&c, "f1", 0.801), SG_OK);
    assert_int_equal(sg_metric_values_set(&b, "f1", 0.874), SG_OK);
    sg_gate_latency lat = {
        .measured = true, .queries = 300, .p90_ms = NAN, .p99_ms = NAN, .p99_min_queries = 662};
    strcpy(lat.scenario, "single-stream");
    strcpy(lat.reason, "<script>alert('x') & \"quotes\"</script>");
    sg_gate_inputs in = {.candidate = &c, .baseline = &b, .latency = &lat};
    assert_int_equal(sg_gate_evaluate(&p, &in, d, &err), SG_OK);
    /* Baseline given but lacking roc_auc: that check fails; make one skipped by hand-editing. */
    assert_int_equal(d->n, 4);
    d->checks[2].passed = true;
    d->checks[2].skipped = true;
    snprintf(d->checks[2].text, sizeof d->checks[2].text,
             "roc_auc.min_absolute_change skipped: no baseline");
    d->n_failed = 2;
    d->n_skipped = 1;
    d->passed = false;

    sg_statement_inputs si = {
        .model_path = "dir/model <&>.h5", .decision = d, .timestamp = "2024-01-01T00:00:00Z"};
    memset(si.model_sha256, 'a', 64);
    json_t *metrics =
        json_pack("{s:f, s:f, s:i}", "accuracy", 0.9, "f1", 0.801, "example_count", 50000);
    /* The policy as applied, with a server rate to be read as a count. */
    json_t *pol = json_pack("{s:{s:s, s:i, s:f, s:f}}", "latency", "scenario", "server",
                            "percentile", 99, "max_ms", 50.0, "target_qps", 200000.0);
    si.policy = pol;
    json_t *bm = json_pack("{s:f}", "f1", 0.874);
    json_t *latency =
        json_pack("{s:s, s:{s:f, s:f, s:f, s:f, s:f}, s:{s:[[i,i],[i,i],[i,i]]}}", "scenario",
                  "single-stream", "latency_ns", "p50", 1.0e6, "p90", 2.0e6, "p99", 5.0e6, "min",
                  0.9e6, "max", 6.0e6, "histogram", "buckets", 900000, 10, 2000000, 5, 6000000, 1);
    si.metrics = metrics;
    si.baseline_metrics = bm;
    si.latency = latency;
    *statement = sg_statement_build(&si, &err);
    assert_non_null(*statement);
    json_decref(metrics);
    json_decref(pol);
    json_decref(bm);
    json_decref(latency);
}

__attribute__((noinline)) static char *slurp(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    sg_err err;
    assert_int_equal(sg_read_file(path, 1 << 22, &data, &len, &err), SG_OK);
    return (char *)data;
}

static void test_junit(void **state)
{
    (void)state;
    sg_gate_decision d;
    json_t *st;
    make_decision(&d, &st);
    char path[700], cmd[2048];
    /* Each check carries the time of the work behind it, shared among the checks it feeds. */
    sg_gate_decision_add_time(&d, "", 3.0);
    sg_gate_decision_add_time(&d, "latency.", 1.25);
    /* The failed latency check with its figures: its "<=" must be escaped like any text (a
       raw "<" made the file unreadable XML exactly when a budget was missed). */
    assert_string_equal(d.checks[3].op, "<=");
    assert_false(d.checks[3].passed);
    d.checks[3].value = 61.5;
    d.checks[3].limit = 50;
    /* U+FFFE and U+FFFF (a file name may hold them) are not allowed in XML: shown as "?". */
    snprintf(d.checks[0].text, sizeof d.checks[0].text,
             "accuracy on m\xef\xbf\xbf\xef\xbf\xbev2.h5");
    snprintf(path, sizeof path, "%s/gate.xml", tmpdir_path);
    sg_err err;
    assert_int_equal(sg_render_to_file(path, sg_render_junit, &d, st, &err), SG_OK);
    /* An independent XML parser must accept it and see exactly one testcase per check. */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as ET\n"
             "r = ET.parse(sys.argv[1]).getroot()\n"
             "tc = r.findall('.//testcase')\n"
             "f = [t for t in tc if t.find('failure') is not None]\n"
             "s = [t for t in tc if t.find('skipped') is not None]\n"
             "ts = r.find('testsuite')\n"
             "assert int(ts.get('tests')) == len(tc), ts.get('tests')\n"
             "assert int(ts.get('failures')) == len(f)\n"
             "assert 'alert(' in f[1].find('failure').get('message')\n"
             "assert ts.get('name').endswith('model <&>.h5'), ts.get('name')\n"
             "t = [c.get('time') for c in tc]\n"
             "assert t == ['1.000', '1.000', '1.000', '1.250'], t\n"
             "print(len(tc), len(f), len(s), f[0].get('name'))\" '%s' > '%s.out'",
             path, path);
    assert_int_equal(system(cmd), 0);
    char out_path[720];
    snprintf(out_path, sizeof out_path, "%s.out", path);
    char *out = slurp(out_path);
    assert_string_equal(out, "4 2 1 f1.max_relative_regression\n");
    free(out);
    char *xml = slurp(path);
    assert_null(strstr(xml, "<script>"));
    /* The numbers as the policy and the metrics give them, not 17 digits of binary noise. */
    assert_non_null(strstr(xml, "required: value &gt;= 0.8303; measured 0.801"));
    assert_non_null(strstr(xml, "required: value &lt;= 50; measured 61.5"));
    assert_non_null(strstr(xml, "accuracy on m??v2.h5"));
    assert_null(strstr(xml, "\xef\xbf"));
    free(xml);
    json_decref(st);
    sg_gate_decision_clear(&d);
}

static void test_markdown(void **state)
{
    (void)state;
    sg_gate_decision d;
    json_t *st;
    make_decision(&d, &st);
    /* a check's text quoting hostile bytes: an escape sequence and a cell separator */
    /* ... then a link, an image and an entity: shown as text, not made live in a PR comment */
    snprintf(d.checks[3].text, sizeof d.checks[3].text,
             "evil\x1b[2Jtext|pipe\x7f ![px](https:t.example)[approve](https:evil.example) "
             "&#x202E;~~x~~ \xe2\x80\xaegnp.h5 \xe2\x81\xa6x\xe2\x81\xa9 www.evil.example @team"
             " c1[\xc2\x9b\xc2\x85\t\r\n\xe2\x80\xa8\xe2\x80\xa9]");
    char path[700];
    snprintf(path, sizeof path, "%s/gate.md", tmpdir_path);
    sg_err err;
    assert_int_equal(sg_render_to_file(path, sg_render_markdown, &d, st, &err), SG_OK);
    char *md = slurp(path);
    assert_non_null(strstr(md, "❌ stagegate gate FAILED"));
    /* "<" is written as an entity so hostile text cannot open HTML tags in the comment. */
    assert_non_null(strstr(md, "f1 0.801 &lt; 0.95 x baseline 0.874"));
    assert_non_null(strstr(md, "p50 1.00 ms · p90 2.00 ms · p99 5.00 ms"));
    assert_non_null(strstr(md, "| ≤ 50.0 ms |")); /* the latency limit with its unit */
    /* a count without a baseline has the dash every missing value has */
    assert_non_null(strstr(md, "| example\\_count | 50,000 | — |"));
    assert_null(strstr(md, "<script>"));
    assert_non_null(strstr(md, "evil?\\[2Jtext\\|pipe?")); /* shown, not sent to a terminal */
    assert_non_null(
        strstr(md, "\\!\\[px\\]\\(https\\:t.example\\)\\[approve\\]\\(https\\:evil.example\\) "
                   "&amp;#x202E;\\~\\~x\\~\\~"));
    assert_null(strstr(md, "](https:evil"));
    /* direction controls shown as "?", no autolink or mention of its own */
    assert_non_null(strstr(md, " ?gnp.h5 ?x? www\\.evil.example \\@team c1\\[???????\\] |"));
    /* C1 controls (U+009B is an 8-bit CSI), TAB, CR, LF and the line separators: "?" */
    assert_null(strstr(md, "\xc2\x9b"));
    assert_null(strstr(md, "\xc2\x85"));
    assert_null(strstr(md, "\xe2\x80\xa8"));
    assert_null(strstr(md, "\xe2\x80\xae"));
    assert_null(strstr(md, "\xe2\x81\xa6"));
    assert_null(strchr(md, '\x1b'));
    assert_null(strchr(md, '\x7f'));
    int rows = 0;
    for (char *line = strtok(md, "\n"); line; line = strtok(NULL, "\n"))
        if (!strncmp(line, "| ✅ |", 6) || !strncmp(line, "| ❌ |", 6) || !strncmp(line, "| ⚪ |", 6))
            rows++;
    assert_int_equal(rows, d.n);
    free(md);
    json_decref(st);
    sg_gate_decision_clear(&d);
}

__attribute__((noinline)) static int count(const char *hay, const char *needle)
{
    int n = 0;
    size_t off = 0, len = strlen(hay);
    while (off < len) {
        const char *p = strstr(hay + off, needle);
        if (!p) break;
        n++;
        off = (size_t)(p - hay) + 1;
    }
    return n;
}

static void test_html(void **state)
{
    (void)state;
    sg_gate_decision d;
    json_t *st;
    make_decision(&d, &st);
    /* a direction override in a check's text would reverse the page's text after it */
    snprintf(d.checks[2].text, sizeof d.checks[2].text,
             "fraud-v2\xe2\x80\xaegnp.h5 \xd8\x9c. c1[\xc2\x9b\xc2\x85\t\r\n\x7f\xe2\x80\xa8]");
    char path[700];
    snprintf(path, sizeof path, "%s/gate.html", tmpdir_path);
    sg_err err;
    assert_int_equal(sg_render_to_file(path, sg_render_html, &d, st, &err), SG_OK);
    char *html = slurp(path);
    assert_int_equal(count(html, "<svg "), 2); /* histogram and CDF */
    /* Three distinct latencies, three bars; with no p99.9 given the axis reaches the slowest,
     * so nothing overflows (svg_check.py tests an outlier's overflow bar). */
    assert_int_equal(count(html, "class=\"bar\""), 3);
    assert_int_equal(count(html, "class=\"bar overflow\""), 0);
    assert_non_null(strstr(html, "p99.9"));
    /* On a narrow screen the verdict wraps (it had been cut to "4 of 7 checks ...") and each
       check is a card, not a table wider than the page. */
    assert_non_null(strstr(html, "<table class=\"checks\">"));
    assert_non_null(strstr(html, "@media (max-width:700px){"));
    assert_non_null(strstr(html, ".verdict{white-space:normal;"));
    assert_null(strstr(html, "p999"));
    assert_non_null(strstr(html, "class=\"verdict fail\""));
    assert_non_null(strstr(html, "&le; 50.0 ms"));    /* the latency limit with its unit */
    assert_non_null(strstr(html, "200,000"));         /* the policy's target_qps */
    assert_null(strstr(html, "200000"));
    assert_int_equal(count(html, "<tr class="), d.n); /* one row per check */
    assert_null(strstr(html, "<script>"));            /* the hostile reason is escaped */
    assert_non_null(strstr(html, "&lt;script&gt;"));
    assert_non_null(strstr(html, "model &lt;&amp;&gt;.h5"));
    assert_non_null(strstr(html, "fraud-v2?gnp.h5 ?. c1[???????]"));
    assert_null(strstr(html, "\xc2\x9b"));
    assert_null(strstr(html, "\xe2\x80\xae"));
    assert_null(strstr(html, "src=\"http")); /* self-contained: no external assets */
    assert_null(strstr(html, "<link"));
    free(html);
    /* Above 64 classes the report keeps no label matrix: the page says so. */
    json_t *sh = json_pack("{sbsssIsIsfsIsn}", "compared", 1, "kind", "labels", "rows", (json_int_t)50,
                           "agreeing", (json_int_t)20, "agreement", 0.4, "n_classes",
                           (json_int_t)5000, "disagreement_matrix");
    json_object_set_new(json_object_get(st, "predicate"), "shadow", sh);
    assert_int_equal(sg_render_to_file(path, sg_render_html, &d, st, &err), SG_OK);
    html = slurp(path);
    assert_non_null(strstr(html, "20 of 50 rows agree"));
    assert_non_null(strstr(html, "The label matrix is not kept for 5,000 classes"));
    free(html);
    /* Every kept matrix is drawn: one of 33 to 64 classes had been left out without a word. */
    json_t *mx = json_array();
    for (int i = 0; i < 40; i++) {
        json_t *row = json_array();
        for (int j = 0; j < 40; j++)
            json_array_append_new(row, json_integer(i == 3 && j == 39 ? 7 : 0));
        json_array_append_new(mx, row);
    }
    sh = json_pack("{sbsssIsIsfsIso}", "compared", 1, "kind", "labels", "rows", (json_int_t)50,
                   "agreeing", (json_int_t)43, "agreement", 0.86, "n_classes", (json_int_t)40,
                   "disagreement_matrix", mx);
    json_object_set_new(json_object_get(st, "predicate"), "shadow", sh);
    assert_int_equal(sg_render_to_file(path, sg_render_html, &d, st, &err), SG_OK);
    html = slurp(path);
    assert_non_null(strstr(html, "<div class=\"wide\"><table class=\"matrix\">"));
    assert_non_null(strstr(html, "<th class=\"n\">39</th>"));
    assert_non_null(strstr(html, "<tr><th>39</th>"));
    assert_null(strstr(html, "<tr><th>40</th>"));
    free(html);
    json_decref(st);
    sg_gate_decision_clear(&d);
}

/* The tables beside the checks do not round a failed comparison into an equal one: a shadow
   agreement of 29,999 of 30,000 rows read "100.00%" against a min_agreement of 1, and a metric
   and its threshold both read "0.946" in the metrics and policy tables (found from outside). */
static void test_tables_tell_value_from_limit(void **state)
{
    (void)state;
    sg_gate_decision d;
    json_t *st;
    make_decision(&d, &st);
    json_t *pred = json_object_get(st, "predicate");
    json_object_set_new(json_object_get(pred, "metrics"), "accuracy", json_real(0.94996));
    json_object_set_new(json_object_get(pred, "policy"), "metrics",
                        json_pack("{s:{s:f}, s:{s:f}}", "accuracy", "threshold", 0.95, "f1",
                                  "threshold", 0.9460001));
    json_object_set_new(pred, "shadow",
                        json_pack("{sbsssIsIsf}", "compared", 1, "kind", "labels", "rows",
                                  (json_int_t)30000, "agreeing", (json_int_t)29999, "agreement",
                                  29999.0 / 30000.0));
    char path[700];
    snprintf(path, sizeof path, "%s/tables.html", tmpdir_path);
    sg_err err;
    assert_int_equal(sg_render_to_file(path, sg_render_html, &d, st, &err), SG_OK);
    char *html = slurp(path);
    assert_non_null(strstr(html, "<b>99.997%</b>: 29,999 of 30,000 rows agree"));
    assert_null(strstr(html, "100.00%"));
    /* the threshold as written; the value with the digits that tell it from the threshold */
    assert_non_null(strstr(html, "<td>metrics.f1.threshold</td><td class=\"n\">0.9460001<"));
    assert_non_null(strstr(html, "<td>accuracy</td><td class=\"n\">0.94996<"));
    free(html);
    snprintf(path, sizeof path, "%s/tables.md", tmpdir_path);
    assert_int_equal(sg_render_to_file(path, sg_render_markdown, &d, st, &err), SG_OK);
    char *md = slurp(path);
    assert_non_null(strstr(md, "Shadow agreement with the baseline: 99.997% over 30,000 rows"));
    assert_non_null(strstr(md, "| accuracy | 0.94996 |"));
    free(md);
    /* ... nor into its limit: 2,489 of 3,000 rows (82.967%) against min_agreement 0.8297
       had read "82.97%" in the shadow sections. */
    json_object_set_new(pred, "shadow",
                        json_pack("{sbsssIsIsf}", "compared", 1, "kind", "labels", "rows",
                                  (json_int_t)3000, "agreeing", (json_int_t)2489, "agreement",
                                  2489.0 / 3000.0));
    json_object_set_new(json_object_get(pred, "policy"), "shadow",
                        json_pack("{s:f}", "min_agreement", 0.8297));
    /* The early-stopping estimate beside its limit, and the limit as written: a 50 ns p99
       against max_ms 0.00004999 had read "50.0 ns" in both places. */
    json_object_set_new(json_object_get(pred, "latency"), "early_stopping",
                        json_pack("{s:f, s:f}", "p90", 40.0, "p99", 50.0));
    json_object_set_new(json_object_get(pred, "policy"), "latency",
                        json_pack("{s:s, s:i, s:f}", "scenario", "single-stream", "percentile", 99,
                                  "max_ms", 0.00004999));
    snprintf(path, sizeof path, "%s/limit.html", tmpdir_path);
    assert_int_equal(sg_render_to_file(path, sg_render_html, &d, st, &err), SG_OK);
    html = slurp(path);
    assert_non_null(strstr(html, "<b>82.967%</b>: 2,489 of 3,000 rows agree"));
    assert_non_null(strstr(html, "p90 <b>40.0 ns</b>, p99 <b>50.00 ns</b>"));
    assert_non_null(strstr(html, "<td>latency.max_ms</td><td class=\"n\">49.99 ns<"));
    free(html);
    /* Percentiles of one value share one marker label in the charts (two labels of one line
       had been stacked, one over another marker's line). */
    json_object_set_new(json_object_get(json_object_get(pred, "latency"), "latency_ns"), "p99",
                        json_real(2.0e6));
    snprintf(path, sizeof path, "%s/same.html", tmpdir_path);
    assert_int_equal(sg_render_to_file(path, sg_render_html, &d, st, &err), SG_OK);
    html = slurp(path);
    assert_non_null(strstr(html, ">p90 = p99 2.00 ms<"));
    assert_null(strstr(html, ">p99 2.00 ms<"));
    free(html);
    snprintf(path, sizeof path, "%s/limit.md", tmpdir_path);
    assert_int_equal(sg_render_to_file(path, sg_render_markdown, &d, st, &err), SG_OK);
    md = slurp(path);
    assert_non_null(strstr(md, "Shadow agreement with the baseline: 82.967% over 3,000 rows"));
    free(md);
    json_decref(st);
    sg_gate_decision_clear(&d);
}

/* A failing value and its limit never read as one text: three digits made a 1.2504 ms p99
   against 1.25 ms, and a 36-byte model against a 35.6-byte limit, "1.25 ms <= 1.25 ms". */
static void test_check_numbers_apart(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        double value, limit;
        const char *want_value, *want_limit;
    } cases[] = {
        {"latency.p99", 1.2504, 1.25, "1.2504 ms", "1.25 ms"},
        {"latency.p99", 0.0012504, 0.00125, "1.2504 \u00b5s", "1.25 \u00b5s"},
        {"latency.p99", 2.0, 1.25, "2.00 ms", "1.25 ms"}, /* apart in three digits: as before */
        {"latency.p99", 1.25, 1.25, "1.25 ms", "1.25 ms"},
        {"memory.max_model_mb", 36.0 / 1048576, 35.6 / 1048576, "36 B", "35.6 B"},
        {"memory.max_rss_mb", 100.04, 100.0, "100.04 MiB", "100 MiB"},
        {"memory.max_rss_mb", 1000.5, 1000.0, "1000.5 MiB", "1000 MiB"},
        {"accuracy", 0.92243, 0.9224, "0.92243", "0.9224"},
        {"shadow.agreement", 0.99949, 0.9995, "99.949%", "99.950%"},
        {"shadow.agreement", 0.0005, 0.00052, "0.050%", "0.052%"}, /* below 10% */
        {"memory.max_model_mb", 1012.0 / 1048576, 1012.5 / 1048576, "1012 B", "1012.5 B"},
        /* a limit far from the value reads as itself, not rounded to the value's digits */
        {"accuracy", 0.6877, 0.99999, "0.6877", "0.99999"},
        {"accuracy", 0.6877, 0.123456789, "0.6877", "0.123456789"},
        {"accuracy", 0.6877, 0.1 + 0.2, "0.6877", "0.3"}, /* past 9 digits: apart's */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sg_gate_check c;
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "%s", cases[i].name);
        c.value = cases[i].value;
        c.limit = cases[i].limit;
        char v[64], l[64];
        sg_gate_check_number(v, sizeof v, &c, c.value);
        sg_gate_check_number(l, sizeof l, &c, c.limit);
        if (strcmp(v, cases[i].want_value) || strcmp(l, cases[i].want_limit))
            fail_msg("%s %.17g / %.17g: '%s' / '%s', wanted '%s' / '%s'", cases[i].name, c.value,
                     c.limit, v, l, cases[i].want_value, cases[i].want_limit);
    }
}

/* Tick labels never read the same twice: ticks 1 ns apart on a 2 us axis had all read
   "2 us" (the trend page's p50 chart of runs at 2,000-2,004 ns). */
static void test_tick_labels(void **state)
{
    (void)state;
    char l[32][32];
    const double fine[] = {2000, 2001, 2002, 2003, 2004};
    sg_chart_tick_ns_labels(fine, 5, l);
    assert_string_equal(l[0], "2.000 \u00b5s");
    assert_string_equal(l[1], "2.001 \u00b5s");
    assert_string_equal(l[4], "2.004 \u00b5s");
    const double half[] = {101, 101.5, 102, 102.5, 103};
    sg_chart_tick_ns_labels(half, 5, l);
    assert_string_equal(l[0], "101.0 ns");
    assert_string_equal(l[1], "101.5 ns");
    /* labels that are already distinct are left as sg_chart_tick_ns writes them */
    const double coarse[] = {0, 500, 1000, 1500};
    sg_chart_tick_ns_labels(coarse, 4, l);
    assert_string_equal(l[0], "0");
    assert_string_equal(l[1], "500 ns");
    assert_string_equal(l[2], "1 \u00b5s");
    assert_string_equal(l[3], "1.5 \u00b5s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_numbers_apart),
        cmocka_unit_test(test_tables_tell_value_from_limit),
        cmocka_unit_test(test_tick_labels),
        cmocka_unit_test(test_junit),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_html),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
