/*
 * The trend page: one self-contained HTML file (inline CSS and SVG, no script,
 * nothing fetched) with a chart per figure over time. Series are machine
 * fingerprints, because latency from two machines is not one line; dashed
 * verticals mark where the model version changed, so a step in a line can be
 * told apart from a new model at a glance.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stagegate/compare.h"
#include "stagegate/gate.h"
#include "stagegate/policy.h"

#define W 760
#define H 260
#define ML 78 /* left margin: y labels */
#define MR 16
#define MT 16
#define MB 40
#define MAX_SERIES 8

static const char *const palette[MAX_SERIES] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                                "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

static double epoch_of(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    return p ? (double)timegm(&tm) : NAN;
}

json_t *sg_trend_figures(const json_t *runs_doc)
{
    json_t *f = json_array();
    json_array_append_new(f, json_string("latency.p50"));
    json_array_append_new(f, json_string("latency.p99"));
    size_t i, j;
    json_t *r, *g;
    json_array_foreach(json_object_get(runs_doc, "runs"), i, r)
    {
        json_array_foreach(json_object_get(json_object_get(r, "figures"), "gated"), j, g)
        {
            char name[128];
            snprintf(name, sizeof name, "metric.%s", json_string_value(g));
            bool seen = false;
            for (size_t k = 0; k < json_array_size(f); k++)
                seen |= !strcmp(json_string_value(json_array_get(f, k)), name);
            if (!seen) json_array_append_new(f, json_string(name));
        }
    }
    return f;
}

static double figure_value(const json_t *run, const char *fig)
{
    json_t *figs = json_object_get(run, "figures"), *v;
    if (!strncmp(fig, "latency.", 8))
        v = json_object_get(json_object_get(figs, "latency_ns"), fig + 8);
    else
        v = json_object_get(json_object_get(figs, "metrics"), fig + 7);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void fmt_value(char *buf, size_t len, double v, bool latency)
{
    if (!latency)
        snprintf(buf, len, "%.4g", v);
    else if (v < 1e3)
        snprintf(buf, len, "%.0f ns", v);
    else if (v < 1e6)
        snprintf(buf, len, "%.3g us", v / 1e3);
    else
        snprintf(buf, len, "%.3g ms", v / 1e6);
}

/* Index of a fingerprint among the series (first-seen order), -1 past MAX_SERIES. */
static int series_of(json_t *series, const char *fp)
{
    for (size_t k = 0; k < json_array_size(series); k++)
        if (!strcmp(json_string_value(json_array_get(series, k)), fp)) return (int)k;
    if (json_array_size(series) >= MAX_SERIES) return -1;
    json_array_append_new(series, json_string(fp));
    return (int)json_array_size(series) - 1;
}

typedef struct {
    double x0, x1, y0, y1;
} axes;

static double px(const axes *a, double x)
{
    return ML + (x - a->x0) / (a->x1 - a->x0) * (W - ML - MR);
}
static double py(const axes *a, double y)
{
    return H - MB - (y - a->y0) / (a->y1 - a->y0) * (H - MT - MB);
}

/* Earlier runs nightly.sh hands to compare as the noise band (`registry runs --limit 21`). */
#define BAND_WINDOW 20

/*
 * The noise band one version's line is judged against: at each run with enough history, the
 * [min, max] of the version's previous runs on this fingerprint (what `compare --history` used
 * for it). Drawn as one shaded polygon, upper edge left to right, lower edge back.
 */
static void noise_band(FILE *out, const axes *a, const double *x, const double *v, size_t n,
                       const char *fp, const char *colour, long long ver)
{
    size_t first = SG_COMPARE_HISTORY_MIN_RUNS;
    if (n <= first) return;
    double *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi);
    if (!lo || !hi) {
        free(lo);
        free(hi);
        return;
    }
    for (size_t j = first; j < n; j++) {
        lo[j] = INFINITY, hi[j] = -INFINITY;
        for (size_t k = j > BAND_WINDOW ? j - BAND_WINDOW : 0; k < j; k++)
            lo[j] = fmin(lo[j], v[k]), hi[j] = fmax(hi[j], v[k]);
    }
    fprintf(out, "<polygon class=\"band\" fill=\"%s\" data-fingerprint=\"", colour);
    sg_fputs_xml_escaped(out, fp);
    fprintf(out, "\" data-version=\"%lld\" points=\"", ver);
    for (size_t j = first; j < n; j++)
        fprintf(out, "%.1f,%.1f ", px(a, x[j]), py(a, hi[j]));
    for (size_t j = n; j-- > first;)
        fprintf(out, "%.1f,%.1f ", px(a, x[j]), py(a, lo[j]));
    fprintf(out, "\"><title>v%lld noise band: min..max of the previous runs</title></polygon>\n",
            ver);
    free(lo);
    free(hi);
}

/* One machine's runs: a line per model version in the fingerprint's colour (lines of two
 * versions that run side by side would otherwise zigzag between them), labelled at its end. */
static void series_chart(FILE *out, const json_t *runs, const char *fig, const axes *a,
                         const double *xs, const char *fp, const char *colour, bool latency)
{
    size_t n = json_array_size(runs);
    json_t *versions = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(runs, i), *v = json_object_get(r, "version");
        if (!isfinite(figure_value(r, fig)) ||
            strcmp(json_string_value(json_object_get(r, "fingerprint")), fp))
            continue;
        bool known = false;
        for (size_t k = 0; !known && k < json_array_size(versions); k++)
            known = json_equal(json_array_get(versions, k), v);
        if (!known) json_array_append(versions, v);
    }
    for (size_t k = 0; k < json_array_size(versions); k++) {
        long long ver = (long long)json_integer_value(json_array_get(versions, k));
        double lx = 0, ly = 0;
        double *bx = latency ? malloc(n * sizeof *bx) : NULL,
               *bv = bx ? malloc(n * sizeof *bv) : NULL;
        size_t m = 0;
        for (size_t i = 0; bv && i < n; i++) {
            json_t *r = json_array_get(runs, i);
            double v = figure_value(r, fig);
            if (!isfinite(v) || strcmp(json_string_value(json_object_get(r, "fingerprint")), fp) ||
                json_integer_value(json_object_get(r, "version")) != ver)
                continue;
            bx[m] = xs[i], bv[m++] = v;
        }
        if (bv) noise_band(out, a, bx, bv, m, fp, colour, ver);
        free(bx);
        free(bv);
        fprintf(out, "<polyline class=\"series\" stroke=\"%s\" data-fingerprint=\"", colour);
        sg_fputs_xml_escaped(out, fp);
        fprintf(out, "\" data-version=\"%lld\" points=\"", ver);
        for (size_t i = 0; i < n; i++) {
            json_t *r = json_array_get(runs, i);
            double v = figure_value(r, fig);
            if (!isfinite(v) || strcmp(json_string_value(json_object_get(r, "fingerprint")), fp) ||
                json_integer_value(json_object_get(r, "version")) != ver)
                continue;
            lx = px(a, xs[i]), ly = py(a, v);
            fprintf(out, "%.1f,%.1f ", lx, ly);
        }
        fprintf(out, "\"/>\n<text x=\"%.1f\" y=\"%.1f\" class=\"slab\" fill=\"%s\">v%lld</text>\n",
                lx + 5, ly - 5, colour, ver);
    }
    json_decref(versions);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(runs, i);
        double v = figure_value(r, fig);
        if (!isfinite(v) || strcmp(json_string_value(json_object_get(r, "fingerprint")), fp))
            continue;
        char lbl[32];
        fmt_value(lbl, sizeof lbl, v, latency);
        bool failed = strcmp(json_string_value(json_object_get(r, "result")), "PASSED") != 0;
        fprintf(out,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\" stroke=\"%s\"><title>v%lld "
                "%s: %s%s"
                "</title></circle>\n",
                px(a, xs[i]), py(a, v), failed ? "#fff" : colour, colour,
                (long long)json_integer_value(json_object_get(r, "version")),
                json_string_value(json_object_get(r, "time")), lbl, failed ? " (gate FAILED)" : "");
    }
}

static void chart(FILE *out, const json_t *runs, const char *fig, json_t *series, const double *xs)
{
    bool latency = !strncmp(fig, "latency.", 8);
    axes a = {INFINITY, -INFINITY, INFINITY, -INFINITY};
    size_t n = json_array_size(runs), have = 0;
    for (size_t i = 0; i < n; i++) {
        double v = figure_value(json_array_get(runs, i), fig);
        a.x0 = fmin(a.x0, xs[i]), a.x1 = fmax(a.x1, xs[i]);
        if (!isfinite(v)) continue;
        have++;
        a.y0 = fmin(a.y0, v), a.y1 = fmax(a.y1, v);
    }
    fprintf(out, "<section><h2>");
    if (latency)
        fprintf(out, "latency %s <small>(lower is better)</small>", fig + 8);
    else {
        bool gib = true;
        sg_fputs_xml_escaped(out, fig + 7);
        fprintf(out, " <small>(%s is better)</small>",
                !sg_metric_direction(fig + 7, &gib) || gib ? "higher" : "lower");
    }
    fprintf(out, "</h2>\n<svg class=\"chart\" data-figure=\"");
    sg_fputs_xml_escaped(out, fig);
    fprintf(out, "\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\">\n", W, H, W, H);
    if (!have) {
        fprintf(out,
                "<text x=\"%d\" y=\"%d\" class=\"none\">no runs measured this "
                "figure</text>\n</svg></section>\n",
                W / 2 - 90, H / 2);
        return;
    }
    /* Pad the y range so a flat line sits mid-chart and points do not touch the frame. */
    double pad = (a.y1 - a.y0) * 0.1;
    if (pad <= 0) pad = fabs(a.y0) * 0.05 + 1e-9;
    a.y0 -= pad, a.y1 += pad;
    if (latency && a.y0 < 0) a.y0 = 0;
    if (a.x1 <= a.x0) a.x0 -= 1, a.x1 += 1;
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", ML, MT,
            W - ML - MR, H - MT - MB);
    for (int k = 0; k <= 4; k++) {
        double v = a.y0 + (a.y1 - a.y0) * k / 4;
        char lbl[32];
        fmt_value(lbl, sizeof lbl, v, latency);
        fprintf(out,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                "<text x=\"%d\" y=\"%.1f\" class=\"ylab\">%s</text>\n",
                ML, W - MR, py(&a, v), py(&a, v), ML - 6, py(&a, v) + 4, lbl);
    }
    /* A version is marked where it first appears. Nightly runs interleave the Staging and
     * Production versions, so "differs from the previous run" would mark every run. */
    json_t *seen = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(runs, i);
        char key[32];
        snprintf(key, sizeof key, "%lld",
                 (long long)json_integer_value(json_object_get(r, "version")));
        if (json_object_get(seen, key)) continue;
        json_object_set_new(seen, key, json_true());
        if (i == 0) continue;
        double x = (px(&a, xs[i - 1]) + px(&a, xs[i])) / 2;
        fprintf(out,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"version\"/>"
                "<text x=\"%.1f\" y=\"%d\" class=\"vlab\">v%s</text>\n",
                x, x, MT, H - MB, x + 3, MT + 12, key);
    }
    json_decref(seen);
    for (size_t s = 0; s < json_array_size(series); s++)
        series_chart(out, runs, fig, &a, xs, json_string_value(json_array_get(series, s)),
                     palette[s], latency);
    json_t *first = json_array_get(runs, 0), *last = json_array_get(runs, n - 1);
    fprintf(out,
            "<text x=\"%d\" y=\"%d\" class=\"xlab\">%s</text><text x=\"%d\" y=\"%d\" class=\"xlab "
            "end\">%s"
            "</text>\n</svg></section>\n",
            ML, H - MB + 18, json_string_value(json_object_get(first, "time")), W - MR, H - MB + 18,
            json_string_value(json_object_get(last, "time")));
}

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:800px}"
    "h1{font-size:20px}h2{font-size:15px;margin:18px 0 4px}small{color:#777;font-weight:normal}"
    ".frame{fill:none;stroke:#bbb}.grid{stroke:#eee}.series{fill:none;stroke-width:1.8}"
    ".band{fill-opacity:.15;stroke:none}"
    ".version{stroke:#999;stroke-dasharray:4 3}.vlab{font-size:11px;fill:#666}.slab{font-size:10px}"
    ".ylab{font-size:11px;fill:#555;text-anchor:end}.xlab{font-size:11px;fill:#555}.end{text-"
    "anchor:end}"
    ".none{fill:#999}table{border-collapse:collapse;font-size:13px}td,th{padding:2px "
    "8px;text-align:left}"
    ".swatch{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:middle}";

sg_status sg_trend_render(FILE *out, const json_t *doc)
{
    json_t *runs = json_object_get(doc, "runs"), *series = json_array();
    size_t n = json_array_size(runs), i;
    double *xs = calloc(n ? n : 1, sizeof *xs);
    if (!xs) {
        json_decref(series);
        return SG_ENOMEM;
    }
    /* Time on the x axis when the runs have distinct times, else run order (e.g. a fixed
     * SOURCE_DATE_EPOCH). */
    bool by_time = true;
    for (i = 0; i < n; i++) {
        xs[i] = epoch_of(json_string_value(json_object_get(json_array_get(runs, i), "time")));
        by_time &= isfinite(xs[i]) && (i == 0 || xs[i] > xs[i - 1]);
    }
    for (i = 0; !by_time && i < n; i++)
        xs[i] = (double)i;
    json_t *r;
    json_array_foreach(runs, i, r)
        series_of(series, json_string_value(json_object_get(r, "fingerprint")));
    const char *model = json_string_value(json_object_get(doc, "model"));
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
                 "charset=\"utf-8\"><title>stagegate trend: ");
    sg_fputs_xml_escaped(out, model ? model : "");
    fprintf(out, "</title><style>%s</style></head><body>\n<h1>Trend of ", css);
    sg_fputs_xml_escaped(out, model ? model : "");
    fprintf(out, "</h1>\n<p>%zu run%s", n, n == 1 ? "" : "s");
    if (n)
        fprintf(out, " from %s to %s",
                json_string_value(json_object_get(json_array_get(runs, 0), "time")),
                json_string_value(json_object_get(json_array_get(runs, n - 1), "time")));
    fprintf(
        out,
        ". One colour per machine fingerprint, one line per model version on it; dashed lines mark "
        "where a version first ran; hollow points are "
        "runs whose gate failed; the shaded band around a latency line is the min..max of that "
        "version's previous runs on the machine (from the third run on), the noise band nightly "
        "compares against. Hover a point for its version and value.</p>\n<table><tr><th></th>"
        "<th>fingerprint</th><th>CPU</th><th>cores</th><th>kernel</th><th>stagegate</th></tr>\n");
    for (size_t s = 0; s < json_array_size(series); s++) {
        json_t *m = NULL;
        json_array_foreach(runs, i,
                           r) if (!strcmp(json_string_value(json_object_get(r, "fingerprint")),
                                          json_string_value(json_array_get(series, s)))) m =
            json_object_get(r, "machine");
        fprintf(out, "<tr><td><span class=\"swatch\" style=\"background:%s\"></span></td><td>",
                palette[s]);
        const char *id = json_string_value(json_array_get(series, s));
        sg_fputs_xml_escaped(out, *id ? id : "(no latency run)");
        fprintf(out, "</td><td>");
        sg_fputs_xml_escaped(out, json_string_value(json_object_get(m, "cpu_model"))
                                      ? json_string_value(json_object_get(m, "cpu_model"))
                                      : "");
        fprintf(out, "</td><td>%lld</td><td>",
                (long long)json_integer_value(json_object_get(m, "cores")));
        sg_fputs_xml_escaped(out, json_string_value(json_object_get(m, "kernel"))
                                      ? json_string_value(json_object_get(m, "kernel"))
                                      : "");
        fprintf(out, "</td><td>");
        sg_fputs_xml_escaped(out, json_string_value(json_object_get(m, "stagegate_version"))
                                      ? json_string_value(json_object_get(m, "stagegate_version"))
                                      : "");
        fprintf(out, "</td></tr>\n");
    }
    fprintf(out, "</table>\n");
    json_t *figs = sg_trend_figures(doc);
    json_array_foreach(figs, i, r) chart(out, runs, json_string_value(r), series, xs);
    fprintf(out, "</body></html>\n");
    json_decref(figs);
    json_decref(series);
    free(xs);
    return ferror(out) ? SG_EIO : SG_OK;
}
