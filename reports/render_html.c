/*
 * Self-contained HTML report: no scripts, no external assets, so it can be
 * attached to a CI run or mailed. It opens with a one-line verdict, then the
 * checks, the latency (table and inline SVG charts, reports/render_latency_svg.c),
 * the metrics, and what the run was measured on: machine, dataset, policy.
 * Every figure carries its unit; latencies and sizes are written in the unit
 * that suits each value. Rendering only reads the statement: what was signed
 * is not changed by how it is shown.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render_internal.h"
#include "stagegate/common.h"
#include "stagegate/gate.h"

static void esc(FILE *out, const char *s)
{
    sg_fputs_xml_escaped(out, s);
}

static void num(FILE *out, double v, int digits)
{
    if (isfinite(v))
        fprintf(out, "%.*g", digits, v);
    else
        fputs("&mdash;", out);
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : dflt;
}

static const char css[] =
    "body{font:14px/1.45 system-ui,sans-serif;color:#1f2328;margin:0 auto;padding:0 24px 32px;"
    "max-width:1232px}"
    ".verdict{margin:0 -24px 16px;padding:10px 24px;font-size:17px;font-weight:600;"
    "white-space:nowrap;overflow:hidden;text-overflow:ellipsis}"
    ".verdict.pass{background:#1a7f37;color:#fff}.verdict.fail{background:#cf222e;color:#fff}"
    "h1{font-size:20px;margin:.4em 0 .2em;overflow-wrap:anywhere}h2{font-size:16px;margin:1.4em 0 "
    ".4em;border-bottom:1px "
    "solid #d0d7de;padding-bottom:2px}"
    ".meta{color:#57606a;margin:0}code{font-size:90%;word-break:break-all}"
    "table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #d0d7de;padding:3px "
    "8px;text-align:left;vertical-align:top}td.file{overflow-wrap:anywhere}td.sha "
    "code{white-space:nowrap}th{background:#f6f8fa;font-weight:600}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.nw{white-"
    "space:"
    "nowrap}"
    "tr.pass td:first-child{color:#1a7f37}tr.fail td:first-child,tr.fail td.n{color:#cf222e}"
    "tr.skip{color:#6e7781}.pass{color:#1a7f37}.fail{color:#cf222e}"
    ".cols{display:grid;grid-template-columns:1fr 1fr;gap:0 32px}"
    ".charts{display:grid;grid-template-columns:1fr 1fr;gap:16px}"
    "figure{margin:0}figcaption{font-weight:600;margin:.3em 0}figcaption small{font-weight:normal;"
    "color:#57606a}svg.chart{width:100%;height:auto;max-width:600px}"
    "svg text{fill:#24292f;font-family:system-ui,sans-serif}.axis{stroke:#57606a}.grid{stroke:#"
    "eaeef2}.bar{fill:#4a7bd0}.bar.overflow{fill:#d4731c}.over{fill:#b35900}"
    ".marker{stroke:#cf222e;stroke-dasharray:3 3}.marker-label{fill:#cf222e}"
    ".axis-title{fill:#57606a}.cdf-line{fill:none;stroke:#1a7f37;stroke-width:1.6}"
    ".cdf-line.overflow{stroke-dasharray:2 2}.cdf-end{fill:#1a7f37}"
    ".cols>*{min-width:0}.wide{overflow-x:auto;max-width:100%}.wide table.matrix td,.wide "
    "table.matrix th{padding:1px "
    "4px;font-size:12px}"
    "@media (max-width:1100px){.charts,.cols{grid-template-columns:1fr}}"
    /* A phone or a narrow CI pane: the verdict wraps instead of losing its reason to an
       ellipsis, each check is a card (mark, name, value, limit; its text below), and other
       tables scroll inside the page rather than widening it. */
    "@media (max-width:700px){body{padding:0 12px 24px}.verdict{white-space:normal;"
    "margin:0 -12px 12px;padding:10px 12px}table.checks tr:first-child{display:none}"
    "table.checks,table.checks tbody,table.checks tr{display:block}table.checks tr{border:1px "
    "solid #d0d7de;margin:0 0 8px;padding:4px 8px}table.checks td{border:0;"
    "padding:0 6px 0 0;display:inline-block}table.checks td:last-child{display:block;padding:2px 0 "
    "0;color:#57606a;"
    "overflow-wrap:anywhere}table:not(.checks){display:block;overflow-x:auto;max-width:100%}}"
    "@media print{body{max-width:none;padding:0;font-size:11px}.verdict{margin:0 0 10px;"
    "-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    ".charts{grid-template-columns:1fr}h2{break-after:avoid}table,figure{break-inside:avoid}"
    "svg.chart{max-width:600px}}";

/* The one line at the top: the verdict, the model, and why. */
static void verdict_banner(FILE *out, const sg_gate_decision *d, json_t *statement)
{
    const sg_gate_check *why = NULL;
    for (int i = 0; i < d->n && !why; i++)
        if (!d->checks[i].passed && !d->checks[i].skipped) why = &d->checks[i];
    char line[1024];
    int len = snprintf(line, sizeof line, "%s \u2014 %s: ", d->passed ? "PASSED" : "FAILED",
                       sg_render_subject_name(statement));
    size_t at = len > 0 && (size_t)len < sizeof line ? (size_t)len : 0;
    if (why)
        snprintf(line + at, sizeof line - at, "%d of %d checks failed; first: %s", d->n_failed,
                 d->n, why->text);
    else
        snprintf(line + at, sizeof line - at, "all %d checks passed%s", d->n - d->n_skipped,
                 d->n_skipped ? " (some skipped)" : "");
    /* The latency figure against its budget: what a performance engineer looks for first. */
    for (int i = 0; i < d->n; i++) {
        const sg_gate_check *c = &d->checks[i];
        if (strncmp(c->name, "latency.", 8) || !isfinite(c->value) || c == why) continue;
        char v[32], lim[32];
        sg_gate_check_number(v, sizeof v, c, c->value);
        sg_gate_check_number(lim, sizeof lim, c, c->limit);
        at = strlen(line);
        snprintf(line + at, sizeof line - at, " \u00b7 %s %s %s %s%s", c->name + 8, v,
                 c->value <= c->limit ? "\u2264" : ">", lim,
                 c->passed || c->value > c->limit ? "" : " but the run is INVALID");
        break;
    }
    fprintf(out, "<div class=\"verdict %s\" title=\"", d->passed ? "pass" : "fail");
    esc(out, line);
    fputs("\">", out);
    esc(out, line);
    fputs("</div>\n", out);
}

static void checks_table(FILE *out, const sg_gate_decision *d)
{
    fputs("<h2>Checks</h2>\n<table class=\"checks\">\n<tr><th></th><th>check</th><th "
          "class=\"n\">value</th>"
          "<th class=\"n\">limit</th><th>detail</th></tr>\n",
          out);
    for (int i = 0; i < d->n; i++) {
        const sg_gate_check *c = &d->checks[i];
        const char *cls = c->skipped ? "skip" : c->passed ? "pass" : "fail";
        char v[48], lim[48];
        sg_gate_check_number(v, sizeof v, c, c->value);
        sg_gate_check_number(lim, sizeof lim, c, c->limit);
        fprintf(out, "<tr class=\"%s\"><td>%s</td><td>", cls,
                c->skipped  ? "&#8212;"
                : c->passed ? "&#10003;"
                            : "&#10007;");
        esc(out, c->name);
        fputs("</td><td class=\"n\">", out);
        esc(out, v);
        fputs("</td><td class=\"n\">", out);
        if (isfinite(c->limit)) fputs(!strcmp(c->op, ">=") ? "&ge; " : "&le; ", out);
        esc(out, lim);
        fputs("</td><td>", out);
        esc(out, c->text);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
}

static void ns_cell(FILE *out, double ns)
{
    char b[32];
    sg_format_ns(ns, b, sizeof b);
    fputs("<td class=\"n\">", out);
    esc(out, b);
    fputs("</td>", out);
}

static void count_cell(FILE *out, json_t *v)
{
    char b[48];
    sg_format_count(json_is_number(v) ? json_number_value(v) : NAN, b, sizeof b);
    fprintf(out, "<td class=\"n\">%s</td>", json_is_number(v) ? b : "&mdash;");
}

/* Percentiles as "p99.9", never the JSON key "p999". */
static const struct {
    const char *key, *label;
} pcts[] = {{"min", "min"}, {"p50", "p50"},    {"p90", "p90"}, {"p95", "p95"},
            {"p99", "p99"}, {"p999", "p99.9"}, {"max", "max"}, {"mean", "mean"}};

/* ns in the unit that suits it (ns to s) with `digits` significant digits. */
static void ns_digits(double ns, int digits, char *buf, size_t n)
{
    const char *unit;
    const double scale = sg_ns_unit(ns, &unit);
    snprintf(buf, n, "%#.*g %s", digits, ns / scale, unit);
}

/* An estimate beside the limit it is held to: three digits, or the digits that tell them
   apart when three show them alike (a failed 50 ns p99 against a 49.99 ns limit had read
   "50.0 ns" here while the check said it failed). */
static void ns_beside(double ns, double limit_ns, char *buf, size_t n)
{
    char a[48], b[48];
    sg_format_ns(ns, a, sizeof a);
    sg_format_ns(limit_ns, b, sizeof b);
    if (!isfinite(ns) || !isfinite(limit_ns) || ns == limit_ns || strcmp(a, b) != 0) {
        snprintf(buf, n, "%s", a);
        return;
    }
    sg_format_apart(ns, limit_ns, true, true, buf, n, b, sizeof b);
}

static void latency_tables(FILE *out, json_t *lat, json_t *statement)
{
    json_t *ns = json_object_get(lat, "latency_ns");
    const char *sc = str_or(lat, "scenario", "bench");
    fputs("<table>\n<tr><th>scenario</th>", out);
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
        fprintf(out, "<th class=\"n\">%s</th>", pcts[i].label);
    fputs("<th class=\"n\">queries</th><th class=\"n\">repetitions</th><th class=\"n\">timed</th>"
          "</tr>\n<tr><td class=\"nw\">",
          out);
    esc(out, sc);
    fputs("</td>", out);
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
        double ms;
        ns_cell(out, sg_render_latency_ms(lat, pcts[i].key, &ms) ? ms * 1e6 : NAN);
    }
    count_cell(out, json_object_get(lat, "queries"));
    count_cell(out, json_object_get(lat, "repetition_count"));
    json_t *dur = json_object_get(lat, "duration_s");
    ns_cell(out, json_is_number(dur) ? json_number_value(dur) * 1e9 : NAN);
    fputs("</tr>\n</table>\n", out);
    (void)ns;
    json_t *es = json_object_get(lat, "early_stopping");
    if (json_is_object(es)) {
        fputs("<p>Early-stopping estimates at 99% confidence (what the gate holds to its limit): ",
              out);
        char a[48], b[48];
        json_t *e90 = json_object_get(es, "p90"), *e99 = json_object_get(es, "p99");
        json_t *pl = json_object_get(sg_render_pred(statement, "policy"), "latency");
        json_t *max = json_object_get(pl, "max_ms");
        const json_int_t pct = json_integer_value(json_object_get(pl, "percentile"));
        const double lim = json_is_number(max) ? json_number_value(max) * 1e6 : NAN;
        ns_beside(json_is_number(e90) ? json_number_value(e90) : NAN, pct == 90 ? lim : NAN, a,
                  sizeof a);
        ns_beside(json_is_number(e99) ? json_number_value(e99) : NAN, pct == 99 ? lim : NAN, b,
                  sizeof b);
        fprintf(out, "p90 <b>%s</b>, p99 <b>%s</b>.</p>\n", a, b);
    }
    json_t *sp = json_object_get(lat, "spread");
    if (json_is_object(sp) && json_integer_value(json_object_get(lat, "repetition_count")) > 1) {
        fputs(
            "<table>\n<tr><th>over the repetitions</th><th class=\"n\">min</th>"
            "<th class=\"n\">median</th><th class=\"n\">max</th><th class=\"n\">range</th></tr>\n",
            out);
        for (size_t i = 1; i < 6; i++) {
            if (i == 3) continue; /* p95 is not kept per repetition */
            json_t *e = json_object_get(sp, pcts[i].key);
            if (!json_is_object(e)) continue;
            double lo = json_number_value(json_object_get(e, "min")),
                   med = json_number_value(json_object_get(e, "median")),
                   hi = json_number_value(json_object_get(e, "max"));
            fprintf(out, "<tr><td>%s</td>", pcts[i].label);
            ns_cell(out, lo);
            ns_cell(out, med);
            ns_cell(out, hi);
            fprintf(out, "<td class=\"n\">%.1f%%</td></tr>\n",
                    med > 0 ? 100 * (hi - lo) / med : 0.0);
        }
        fputs("</table>\n", out);
    }
}

/* Target against achieved arrival rate and LoadGen's verdict, for server runs. */
static void server_section(FILE *out, json_t *lat)
{
    json_t *v = json_object_get(lat, "validity");
    if (!json_is_object(v)) return;
    const char *res = str_or(v, "result", "?");
    double target = json_number_value(json_object_get(v, "target_qps")),
           sched = json_number_value(json_object_get(v, "scheduled_qps")),
           got = json_number_value(json_object_get(v, "achieved_qps"));
    char a[48], b[48], c[48], bound[32], es[32];
    sg_format_count(target, a, sizeof a);
    sg_format_count(sched, b, sizeof b);
    sg_format_count(got, c, sizeof c);
    json_t *lb = json_object_get(v, "latency_bound_ns"),
           *e99 = json_object_get(v, "p99_early_stopping_ns");
    sg_format_ns(json_is_number(lb) ? json_number_value(lb) : NAN, bound, sizeof bound);
    sg_format_ns(json_is_number(e99) ? json_number_value(e99) : NAN, es, sizeof es);
    fprintf(out,
            "<h2>Server run <span class=\"%s\">%s</span></h2>\n<table>\n<tr><th></th>"
            "<th class=\"n\">queries/s</th><th class=\"n\">of target</th></tr>\n"
            "<tr><td>target</td><td class=\"n\">%s</td><td class=\"n\">100%%</td></tr>\n"
            "<tr><td>scheduled (seeded Poisson arrivals)</td><td class=\"n\">%s</td>"
            "<td class=\"n\">%.1f%%</td></tr>\n"
            "<tr class=\"%s\"><td>achieved</td><td class=\"n\">%s</td><td "
            "class=\"n\">%.1f%%</td></tr>\n"
            "</table>\n<p>p99 (early-stopping estimate) %s against a bound of %s. ",
            !strcmp(res, "VALID") ? "pass" : "fail", !strcmp(res, "VALID") ? "VALID" : "INVALID", a,
            b, target > 0 ? 100 * sched / target : NAN, got >= 0.9 * sched ? "pass" : "fail", c,
            target > 0 ? 100 * got / target : NAN, es, bound);
    esc(out, str_or(v, "reason", ""));
    fputs(".</p>\n", out);
}

static void kv_row(FILE *out, const char *k, const char *v)
{
    fprintf(out, "<tr><th>%s</th><td>", k);
    esc(out, v && *v ? v : "\u2014");
    fputs("</td></tr>\n", out);
}

static void machine_section(FILE *out, json_t *lat)
{
    json_t *m = json_object_get(lat, "machine"), *ck = json_object_get(lat, "clock");
    if (!json_is_object(m)) return;
    char buf[512];
    fputs("<section><h2>Machine</h2>\n<table>\n", out);
    kv_row(out, "CPU", str_or(m, "cpu_model", ""));
    long long logical = json_integer_value(json_object_get(m, "logical_cpus"));
    long long allowed = json_integer_value(json_object_get(m, "allowed_cpus"));
    char limited[64] = "";
    /* a cpuset cgroup's limit (reports from before the field have none) */
    if (allowed > 0 && allowed < logical)
        snprintf(limited, sizeof limited, " (%lld allowed to the run)", allowed);
    snprintf(buf, sizeof buf,
             "%lld used (%lld worker%s) of %lld cores, %lld logical CPUs%s; SMT %s; "
             "%lld NUMA node%s",
             (long long)json_integer_value(json_object_get(m, "workers")),
             (long long)json_integer_value(json_object_get(m, "workers")),
             json_integer_value(json_object_get(m, "workers")) == 1 ? "" : "s",
             (long long)json_integer_value(json_object_get(m, "cores")), logical, limited,
             json_is_true(json_object_get(m, "smt")) ? "on" : "off",
             (long long)json_integer_value(json_object_get(m, "numa_nodes")),
             json_integer_value(json_object_get(m, "numa_nodes")) == 1 ? "" : "s");
    kv_row(out, "cores", buf);
    size_t at = 0, i;
    json_t *b;
    buf[0] = 0;
    json_array_foreach(json_object_get(m, "bindings"), i, b)
    {
        if (at >= sizeof buf - 40) {
            snprintf(buf + at, sizeof buf - at, ", \u2026");
            break;
        }
        int w = snprintf(buf + at, sizeof buf - at, "%sworker %lld \u2192 CPU %lld (node %lld)",
                         i ? ", " : "", (long long)json_integer_value(json_object_get(b, "worker")),
                         (long long)json_integer_value(json_object_get(b, "cpu")),
                         (long long)json_integer_value(json_object_get(b, "node")));
        if (w > 0) at += (size_t)w;
    }
    if (at < sizeof buf - 40)
        snprintf(buf + at, sizeof buf - at, "%smemory %s", at ? "; " : "",
                 str_or(m, "membind", "?"));
    kv_row(out, "bindings", buf);
    snprintf(buf, sizeof buf, "governor %s, boost %s", str_or(m, "governor", "unknown"),
             str_or(m, "boost", "unknown"));
    kv_row(out, "frequency", buf);
    double hz = json_number_value(json_object_get(m, "tsc_hz"));
    snprintf(buf, sizeof buf, "%s clock%s; TSC %s, %.4g GHz; clocksource %s",
             str_or(ck, "source", "?"),
             json_is_number(json_object_get(ck, "overhead_ns")) ? "" : "",
             json_is_true(json_object_get(m, "invariant_tsc")) ? "invariant" : "not invariant",
             hz / 1e9, str_or(m, "clocksource", "?"));
    if (json_is_number(json_object_get(ck, "overhead_ns"))) {
        char o[32];
        sg_format_ns(json_number_value(json_object_get(ck, "overhead_ns")), o, sizeof o);
        at = strlen(buf);
        snprintf(buf + at, sizeof buf - at, "; %s timer overhead subtracted per query", o);
    }
    kv_row(out, "clock", buf);
    kv_row(out, "kernel", str_or(m, "kernel", ""));
    json_t *ob = json_object_get(m, "openblas");
    if (json_is_object(ob)) {
        snprintf(buf, sizeof buf, "%s", str_or(ob, "config", ""));
        const char *by = str_or(ob, "core_chosen_by", ""); /* absent from older reports */
        if (strcmp(by, "stagegate") == 0)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf),
                     "; %s kernels chosen by stagegate in place of OpenBLAS's fallback %s",
                     str_or(ob, "core", "?"), str_or(ob, "core_replaced", "?"));
        else if (strcmp(by, "OPENBLAS_CORETYPE") == 0)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf),
                     "; %s kernels set by OPENBLAS_CORETYPE", str_or(ob, "core", "?"));
        kv_row(out, "OpenBLAS", buf);
    }
    json_t *sg = json_object_get(m, "stagegate");
    snprintf(buf, sizeof buf, "%s (%s)", str_or(sg, "version", "?"),
             str_or(sg, "build_flags", "?"));
    if (json_is_string(json_object_get(sg, "kernels"))) /* absent from older reports */
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "; %s kernels",
                 str_or(sg, "kernels", "?"));
    kv_row(out, "stagegate", buf);
    fputs("</table></section>\n", out);
}

/* The inputs by digest, with the dataset's row count. */
static void inputs_section(FILE *out, json_t *statement)
{
    json_t *cfg = sg_render_pred(statement, "configuration");
    if (!json_is_array(cfg) || !json_array_size(cfg)) return;
    json_t *rows = json_object_get(sg_render_pred(statement, "metrics"), "example_count");
    fputs("<section><h2>Dataset and inputs</h2>\n<table>\n<tr><th>role</th><th>file</th>"
          "<th class=\"n\">rows</th><th>sha256</th></tr>\n",
          out);
    size_t i;
    json_t *e;
    json_array_foreach(cfg, i, e)
    {
        const char *role = str_or(json_object_get(e, "annotations"), "role", "");
        fputs("<tr><td>", out);
        esc(out, role);
        fputs("</td><td class=\"file\">", out);
        esc(out, str_or(e, "name", ""));
        fputs("</td>", out);
        if (!strcmp(role, "dataset"))
            count_cell(out, rows);
        else
            fputs("<td class=\"n\"></td>", out);
        fputs("<td class=\"sha\"><code>", out);
        esc(out, str_or(json_object_get(e, "digest"), "sha256", ""));
        fputs("</code></td></tr>\n", out);
    }
    fputs("</table></section>\n", out);
}

/* The policy as the gate applied it, one row per rule, limits in their units. */
static void policy_rows(FILE *out, const char *prefix, json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
        if (json_is_object(v)) {
            policy_rows(out, path, v);
            continue;
        }
        char val[64];
        size_t kl = strlen(k);
        if (json_is_number(v) && kl > 3 && !strcmp(k + kl - 3, "_ms")) {
            /* A limit as written: its own significant digits (at least three), in the unit
               that suits it (max_ms 0.00004999 had read "50.0 ns"). */
            char w[40];
            sg_format_shortest(json_number_value(v), w, sizeof w);
            int digits = 0;
            for (const char *c = w; *c && *c != 'e' && *c != 'E'; c++)
                if (*c >= '0' && *c <= '9' && (digits || *c != '0')) digits++;
            ns_digits(json_number_value(v) * 1e6, digits < 3 ? 3 : digits, val, sizeof val);
            if (digits <= 3) sg_format_ns(json_number_value(v) * 1e6, val, sizeof val);
        } else if (json_is_number(v) && kl > 3 && !strcmp(k + kl - 3, "_mb"))
            sg_format_bytes(json_number_value(v) * 1048576.0, val, sizeof val);
        else if (json_is_integer(v))
            sg_format_count((double)json_integer_value(v), val, sizeof val);
        else if (json_is_number(v) && fabs(json_number_value(v)) >= 1000 &&
                 fabs(json_number_value(v)) < 1e15 &&
                 json_number_value(v) == floor(json_number_value(v)))
            /* a whole rate such as target_qps 200000 reads as the counts do: "200,000" */
            sg_format_count(json_number_value(v), val, sizeof val);
        else if (json_is_number(v))
            sg_format_shortest(json_number_value(v), val, sizeof val); /* as written */
        else if (json_is_boolean(v))
            snprintf(val, sizeof val, "%s", json_is_true(v) ? "yes" : "no");
        else if (json_is_string(v))
            snprintf(val, sizeof val, "%s", json_string_value(v));
        else
            continue;
        fputs("<tr><td>", out);
        esc(out, path);
        fputs("</td><td class=\"n\">", out);
        esc(out, val);
        fputs("</td></tr>\n", out);
    }
}

static void policy_section(FILE *out, json_t *statement)
{
    json_t *p = sg_render_pred(statement, "policy");
    if (!json_is_object(p)) return;
    fputs(
        "<section><h2>Policy as applied</h2>\n<table>\n<tr><th>rule</th><th class=\"n\">value</th>"
        "</tr>\n",
        out);
    policy_rows(out, "", p);
    fputs("</table></section>\n", out);
}

static void metrics_section(FILE *out, json_t *statement)
{
    json_t *m = sg_render_pred(statement, "metrics"),
           *bm = sg_render_pred(statement, "baseline_metrics");
    if (!json_is_object(m)) return;
    fputs("<section><h2>Metrics</h2>\n<table>\n<tr><th>metric</th><th class=\"n\">candidate</th>"
          "<th class=\"n\">baseline</th><th class=\"n\">change</th></tr>\n",
          out);
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        if (!json_is_number(v)) continue;
        json_t *b = json_object_get(bm, k);
        bool count = !strcmp(k, "example_count");
        fputs("<tr><td>", out);
        esc(out, count ? "rows evaluated" : k);
        fputs("</td>", out);
        if (count) {
            count_cell(out, v);
            count_cell(out, b);
            fputs("<td class=\"n\"></td></tr>\n", out);
            continue;
        }
        fputs("<td class=\"n\">", out);
        const int dv = sg_render_metric_digits(statement, k, json_number_value(v), b);
        num(out, json_number_value(v), dv);
        fputs("</td><td class=\"n\">", out);
        num(out, json_is_number(b) ? json_number_value(b) : NAN, dv);
        fputs("</td><td class=\"n\">", out);
        if (json_is_number(b)) fprintf(out, "%+.4g", json_number_value(v) - json_number_value(b));
        fputs("</td></tr>\n", out);
    }
    fputs("</table></section>\n", out);
}

static void memory_section(FILE *out, json_t *statement, json_t *lat)
{
    json_t *mem = sg_render_pred(statement, "memory");
    if (!json_is_object(mem)) return;
    char a[32];
    fputs("<section><h2>Memory</h2>\n<table>\n<tr><th></th><th class=\"n\">size</th></tr>\n", out);
    json_t *rss = json_object_get(mem, "peak_rss_mb"), *model = json_object_get(mem, "model_mb");
    if (json_is_number(rss)) {
        sg_format_bytes(json_number_value(rss) * 1048576.0, a, sizeof a);
        fprintf(
            out,
            "<tr><td>peak RSS after evaluating the candidate</td><td class=\"n\">%s</td></tr>\n",
            a);
    }
    json_t *lrss = json_object_get(json_object_get(lat, "memory"), "peak_rss_bytes");
    if (json_is_number(lrss)) {
        sg_format_bytes(json_number_value(lrss), a, sizeof a);
        fprintf(out, "<tr><td>peak RSS after the latency run</td><td class=\"n\">%s</td></tr>\n",
                a);
    }
    if (json_is_number(model)) {
        sg_format_bytes(json_number_value(model) * 1048576.0, a, sizeof a);
        fprintf(out, "<tr><td>model parameters</td><td class=\"n\">%s</td></tr>\n", a);
    }
    fputs("</table></section>\n", out);
}

static void shadow_section(FILE *out, json_t *statement)
{
    json_t *sh = sg_render_pred(statement, "shadow");
    json_t *agr = json_object_get(sh, "agreement");
    if (!json_is_number(agr)) return;
    char a[48], b[48];
    sg_format_count((double)json_integer_value(json_object_get(sh, "agreeing")), a, sizeof a);
    sg_format_count((double)json_integer_value(json_object_get(sh, "rows")), b, sizeof b);
    char pct[48];
    sg_render_percent(json_number_value(agr), sg_render_shadow_limit(statement), pct, sizeof pct);
    fprintf(out,
            "<section><h2>Shadow agreement</h2>\n<p><b>%s</b>: %s of %s rows agree with the "
            "baseline.</p>\n",
            pct, a, b);
    json_t *mx = json_object_get(sh, "disagreement_matrix");
    if (json_is_null(mx) && json_is_integer(json_object_get(sh, "n_classes"))) {
        char k[48];
        sg_format_count((double)json_integer_value(json_object_get(sh, "n_classes")), k, sizeof k);
        fprintf(out, "<p>The label matrix is not kept for %s classes (only up to %d).</p>\n", k,
                SG_SHADOW_MATRIX_MAX);
    }
    /* Every matrix the statement keeps (up to SG_SHADOW_MATRIX_MAX classes): one above 32
       classes had been left out without a word. A wide one scrolls in its own box. */
    if (json_is_array(mx) && json_array_size(mx) > 0 &&
        json_array_size(mx) <= SG_SHADOW_MATRIX_MAX) {
        size_t k = json_array_size(mx);
        fputs("<div class=\"wide\"><table class=\"matrix\">\n<tr><th>rows: candidate \\ "
              "baseline label</th>",
              out);
        for (size_t j = 0; j < k; j++)
            fprintf(out, "<th class=\"n\">%zu</th>", j);
        fputs("</tr>\n", out);
        for (size_t i = 0; i < k; i++) {
            fprintf(out, "<tr><th>%zu</th>", i);
            for (size_t j = 0; j < k; j++)
                count_cell(out, json_array_get(json_array_get(mx, i), j));
            fputs("</tr>\n", out);
        }
        fputs("</table></div>\n", out);
    }
    fputs("</section>\n", out);
}

sg_status sg_render_html(FILE *out, const sg_gate_decision *d, json_t *statement)
{
    const char *verdict = d->passed ? "PASSED" : "FAILED";
    fprintf(out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width\">\n<title>stagegate gate %s: ",
            verdict);
    esc(out, sg_render_subject_name(statement));
    fprintf(out, "</title>\n<style>\n%s\n</style>\n</head>\n<body>\n", css);
    verdict_banner(out, d, statement);
    fprintf(out, "<h1>stagegate gate <span class=\"%s\">%s</span>: ", d->passed ? "pass" : "fail",
            verdict);
    esc(out, sg_render_subject_name(statement));
    fputs("</h1>\n<p class=\"meta\">sha256 <code>", out);
    esc(out, sg_render_subject_sha256(statement));
    const char *ts = json_string_value(sg_render_pred(statement, "timestamp"));
    fprintf(out, "</code> &middot; %d checks: %d passed, %d failed, %d skipped &middot; ", d->n,
            d->n - d->n_failed - d->n_skipped, d->n_failed, d->n_skipped);
    esc(out, ts ? ts : "");
    fputs("</p>\n", out);
    checks_table(out, d);
    json_t *lat = sg_render_pred(statement, "latency");
    fputs("<h2>Latency</h2>\n", out);
    if (lat) {
        latency_tables(out, lat, statement);
        sg_render_latency_charts(out, lat);
        server_section(out, lat);
    } else {
        fputs("<p>No latency run in this report.</p>\n", out);
    }
    fputs("<div class=\"cols\">\n", out);
    metrics_section(out, statement);
    shadow_section(out, statement);
    memory_section(out, statement, lat);
    policy_section(out, statement);
    fputs("</div>\n", out);
    inputs_section(out, statement);
    if (lat) machine_section(out, lat);
    fputs("</body>\n</html>\n", out);
    return ferror(out) ? SG_EIO : SG_OK;
}
