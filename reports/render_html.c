/*
 * Self-contained HTML report: no scripts, no external assets, so it can be
 * attached to a CI run or mailed. The latency histogram and CDF are inline
 * SVG drawn from the bench histogram buckets on a log-scaled time axis,
 * because latency distributions span orders of magnitude (tails).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render_internal.h"
#include "stagegate/gate.h"

#define W 640.0
#define H 220.0
#define PAD_L 48.0
#define PAD_R 16.0
#define PAD_T 12.0
#define PAD_B 34.0
#define NBINS 40

static void esc(FILE *out, const char *s)
{
    sg_fputs_xml_escaped(out, s);
}

static void num(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.4g", v);
    else
        fputs("&mdash;", out);
}

typedef struct {
    double lo, hi; /* log10(ns) range of the axis */
} axis;

static double xpos(const axis *a, double ns)
{
    double f = a->hi > a->lo ? (log10(ns) - a->lo) / (a->hi - a->lo) : 0.5;
    return PAD_L + f * (W - PAD_L - PAD_R);
}

static void x_axis(FILE *out, const axis *a, json_t *lat)
{
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", PAD_L,
            H - PAD_B, W - PAD_R, H - PAD_B);
    for (int i = 0; i <= 4; i++) {
        double lg = a->lo + (a->hi - a->lo) * i / 4.0;
        double x = PAD_L + (W - PAD_L - PAD_R) * i / 4.0;
        fprintf(
            out,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%.3g ms</text>\n",
            x, H - PAD_B + 14, pow(10.0, lg) / 1e6);
    }
    static const char *const marks[] = {"p50", "p90", "p99"};
    for (int i = 0; i < 3; i++) {
        double ms;
        if (!sg_render_latency_ms(lat, marks[i], &ms) || !(ms > 0)) continue;
        double x = xpos(a, ms * 1e6);
        if (x < PAD_L || x > W - PAD_R) continue;
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c33\" "
                "stroke-dasharray=\"3,3\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#c33\">%s</text>\n",
                x, PAD_T, x, H - PAD_B, x + 2, PAD_T + 10 + 11 * i, marks[i]);
    }
}

static void latency_svgs(FILE *out, json_t *lat)
{
    json_t *buckets = sg_render_latency_buckets(lat);
    if (!buckets) {
        fprintf(out, "<p>No latency histogram in this report.</p>\n");
        return;
    }
    size_t n = json_array_size(buckets);
    double lo = INFINITY, hi = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_array_get(buckets, i);
        double v = json_number_value(json_array_get(b, 0)),
               c = json_number_value(json_array_get(b, 1));
        if (!(v > 0) || !(c > 0)) continue;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        total += c;
    }
    if (!(total > 0)) {
        fprintf(out, "<p>The latency histogram is empty.</p>\n");
        return;
    }
    axis a = {log10(lo), log10(hi * 1.001)};
    if (a.hi - a.lo < 0.01) {
        a.lo -= 0.05;
        a.hi += 0.05;
    }
    double bins[NBINS] = {0}, peak = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_array_get(buckets, i);
        double v = json_number_value(json_array_get(b, 0)),
               c = json_number_value(json_array_get(b, 1));
        if (!(v > 0) || !(c > 0)) continue;
        int k = (int)((log10(v) - a.lo) / (a.hi - a.lo) * NBINS);
        k = k < 0 ? 0 : k >= NBINS ? NBINS - 1 : k;
        bins[k] += c;
    }
    for (int k = 0; k < NBINS; k++)
        peak = fmax(peak, bins[k]);
    double plot_h = H - PAD_T - PAD_B, bw = (W - PAD_L - PAD_R) / NBINS;
    fprintf(out,
            "<h3>Latency histogram</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"latency "
            "histogram\">\n",
            W, H, W, H);
    for (int k = 0; k < NBINS; k++) {
        if (bins[k] <= 0) continue;
        double h = plot_h * bins[k] / peak;
        fprintf(out,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                "fill=\"#4a7bd0\"><title>%.0f "
                "queries</title></rect>\n",
                PAD_L + k * bw, H - PAD_B - h, bw - 1, h, bins[k]);
    }
    fprintf(out, "<text x=\"4\" y=\"%.1f\" font-size=\"10\">%.0f</text>\n", PAD_T + 8, peak);
    x_axis(out, &a, lat);
    fprintf(out, "</svg>\n");

    fprintf(out,
            "<h3>Latency CDF</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"latency CDF\">\n"
            "<polyline fill=\"none\" stroke=\"#2a6\" stroke-width=\"1.5\" points=\"",
            W, H, W, H);
    double cum = 0, prev_y = H - PAD_B;
    fprintf(out, "%.1f,%.1f", PAD_L, prev_y);
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_array_get(buckets, i);
        double v = json_number_value(json_array_get(b, 0)),
               c = json_number_value(json_array_get(b, 1));
        if (!(v > 0) || !(c > 0)) continue;
        cum += c;
        double x = xpos(&a, v), y = H - PAD_B - plot_h * cum / total;
        fprintf(out, " %.1f,%.1f %.1f,%.1f", x, prev_y, x,
                y); /* a step: the CDF jumps at each bucket */
        prev_y = y;
    }
    fprintf(out, " %.1f,%.1f\"/>\n", W - PAD_R, prev_y);
    for (int i = 0; i <= 4; i++)
        fprintf(out, "<text x=\"4\" y=\"%.1f\" font-size=\"10\">%.2f</text>\n",
                H - PAD_B - plot_h * i / 4.0 + 3, i / 4.0);
    x_axis(out, &a, lat);
    fprintf(out, "</svg>\n");
}

sg_status sg_render_html(FILE *out, const sg_gate_decision *d, json_t *statement)
{
    const char *verdict = d->passed ? "PASSED" : "FAILED";
    fprintf(out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
            "charset=\"utf-8\">\n<title>stagegate gate "
            "%s: ",
            verdict);
    esc(out, sg_render_subject_name(statement));
    fprintf(
        out,
        "</title>\n<style>\nbody{font-family:system-ui,sans-serif;margin:2em;max-width:60em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}"
        ".pass{color:#1a7f37}.fail{color:#cf222e}.skip{color:#777}code{font-size:90%%}\n</style>\n"
        "</head>\n<body>\n");
    fprintf(out, "<h1>stagegate gate <span class=\"%s\">%s</span></h1>\n<p>Model <code>",
            d->passed ? "pass" : "fail", verdict);
    esc(out, sg_render_subject_name(statement));
    fprintf(out, "</code> sha256 <code>");
    esc(out, sg_render_subject_sha256(statement));
    const char *ts = json_string_value(sg_render_pred(statement, "timestamp"));
    fprintf(out, "</code><br>%d checks: %d passed, %d failed, %d skipped. ", d->n,
            d->n - d->n_failed - d->n_skipped, d->n_failed, d->n_skipped);
    esc(out, ts ? ts : "");
    fprintf(
        out,
        "</p>\n<h2>Checks</h2>\n<table>\n<tr><th></th><th>check</th><th>value</th><th>limit</th>"
        "<th>detail</th></tr>\n");
    for (int i = 0; i < d->n; i++) {
        const sg_gate_check *c = &d->checks[i];
        const char *cls = c->skipped ? "skip" : c->passed ? "pass" : "fail";
        fprintf(out, "<tr class=\"%s\"><td>%s</td><td>", cls,
                c->skipped  ? "&#8212;"
                : c->passed ? "&#10003;"
                            : "&#10007;");
        esc(out, c->name);
        fputs("</td><td class=\"n\">", out);
        num(out, c->value);
        fputs("</td><td class=\"n\">", out);
        if (isfinite(c->limit)) fputs(!strcmp(c->op, ">=") ? "&ge; " : "&le; ", out);
        num(out, c->limit);
        fputs("</td><td>", out);
        esc(out, c->text);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
    json_t *m = sg_render_pred(statement, "metrics"),
           *bm = sg_render_pred(statement, "baseline_metrics");
    if (json_is_object(m)) {
        fputs("<h2>Metrics</h2>\n<table>\n<tr><th>metric</th><th>candidate</th><th>baseline</th></"
              "tr>\n",
              out);
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v)
        {
            if (!json_is_number(v)) continue;
            json_t *b = json_object_get(bm, k);
            fputs("<tr><td>", out);
            esc(out, k);
            fputs("</td><td class=\"n\">", out);
            num(out, json_number_value(v));
            fputs("</td><td class=\"n\">", out);
            num(out, json_is_number(b) ? json_number_value(b) : NAN);
            fputs("</td></tr>\n", out);
        }
        fputs("</table>\n", out);
    }
    json_t *lat = sg_render_pred(statement, "latency");
    fputs("<h2>Latency</h2>\n", out);
    if (lat) {
        static const char *const pcts[] = {"min", "p50",  "p90", "p95",
                                           "p99", "p999", "max", "mean"};
        fputs("<table>\n<tr>", out);
        for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
            fprintf(out, "<th>%s</th>", pcts[i]);
        fputs("</tr>\n<tr>", out);
        for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
            double ms;
            fputs("<td class=\"n\">", out);
            if (sg_render_latency_ms(lat, pcts[i], &ms)) {
                num(out, ms);
                fputs(" ms", out);
            } else {
                fputs("&mdash;", out);
            }
            fputs("</td>", out);
        }
        fputs("</tr>\n</table>\n", out);
        latency_svgs(out, lat);
    } else {
        fputs("<p>No latency run in this report.</p>\n", out);
    }
    json_t *sh = sg_render_pred(statement, "shadow");
    json_t *agr = json_object_get(sh, "agreement");
    if (json_is_number(agr)) {
        fprintf(out,
                "<h2>Shadow agreement</h2>\n<p>%.4g of %lld rows agree with the baseline.</p>\n",
                json_number_value(agr), (long long)json_integer_value(json_object_get(sh, "rows")));
        json_t *mx = json_object_get(sh, "disagreement_matrix");
        if (json_is_array(mx) && json_array_size(mx) <= 32) {
            size_t k = json_array_size(mx);
            fputs("<table>\n<tr><th>candidate \\ baseline</th>", out);
            for (size_t j = 0; j < k; j++)
                fprintf(out, "<th>%zu</th>", j);
            fputs("</tr>\n", out);
            for (size_t i = 0; i < k; i++) {
                fprintf(out, "<tr><th>%zu</th>", i);
                for (size_t j = 0; j < k; j++)
                    fprintf(
                        out, "<td class=\"n\">%lld</td>",
                        (long long)json_integer_value(json_array_get(json_array_get(mx, i), j)));
                fputs("</tr>\n", out);
            }
            fputs("</table>\n", out);
        }
    }
    fputs("</body>\n</html>\n", out);
    return ferror(out) ? SG_EIO : SG_OK;
}
