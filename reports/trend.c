/*
 * The trend page: one self-contained HTML file (inline CSS and SVG, no script,
 * nothing fetched) with a chart per figure over time. Series are machine
 * fingerprints, because latency from two machines is not one line; dashed
 * verticals mark where the model version changed, so a step in a line can be
 * told apart from a new model at a glance. Regressed nights are the runs whose
 * stored nightly compare verdict is "regressed"; the page does not judge runs
 * itself (the noise band it shades is context, not a verdict).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stagegate/compare.h"
#include "stagegate/gate.h"
#include "stagegate/policy.h"
#include "render_internal.h"
#include "stagegate/common.h"

#define W 900
#define H 300
#define ML 76  /* left margin: y tick labels */
#define MR 120 /* right margin: version labels and limit labels */
#define MT 30  /* the y-axis title */
#define MB 46  /* date ticks and the x-axis title */
#define FONT 11.0
#define MAX_SERIES 8

/* One colour per model version (first-seen order), one dash pattern per machine fingerprint. */
static const char *const palette[MAX_SERIES] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                                "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};
static const char *const dashes[MAX_SERIES] = {"",    "6 3", "2 2",  "8 3 2 3",
                                               "4 4", "1 3", "10 4", "3 6"};

static double epoch_of(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!p) return NAN;
    double t = (double)timegm(&tm);
    /* RFC 3339's fraction, then its offset: 11:00+05:00 is 06:00Z (read as 11:00Z, a run
       had been drawn five hours later than it ran). */
    if (*p == '.') {
        double frac = 0, unit = 0.1;
        for (p++; *p >= '0' && *p <= '9'; p++, unit /= 10)
            frac += (*p - '0') * unit;
        t += frac;
    }
    int hh, mm;
    if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2)
        t -= (*p == '+' ? 1 : -1) * (hh * 3600.0 + mm * 60.0);
    return t;
}

json_t *sg_trend_figures(const json_t *runs_doc)
{
    json_t *f = json_array();
    size_t i, j;
    json_t *r, *g;
    /* p50 and p99, and p90 where a run's policy budgets it (its limit line had no chart) */
    bool p90 = false;
    json_array_foreach(json_object_get(runs_doc, "runs"), i, r) p90 |=
        json_object_get(json_object_get(json_object_get(r, "figures"), "limits"), "latency.p90") !=
        NULL;
    json_array_append_new(f, json_string("latency.p50"));
    if (p90) json_array_append_new(f, json_string("latency.p90"));
    json_array_append_new(f, json_string("latency.p99"));
    json_array_foreach(json_object_get(runs_doc, "runs"), i, r)
    {
        json_array_foreach(json_object_get(json_object_get(r, "figures"), "gated"), j, g)
        {
            if (!json_is_string(g)) continue; /* a run record edited in the database */
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
    if (latency)
        sg_format_ns(v, buf, len);
    else
        snprintf(buf, len, "%.4g", v);
}

/* Index of a key among the keys seen so far (first-seen order), -1 past MAX_SERIES. */
static int index_of(json_t *seen, const char *key)
{
    for (size_t k = 0; k < json_array_size(seen); k++)
        if (!strcmp(json_string_value(json_array_get(seen, k)), key)) return (int)k;
    if (json_array_size(seen) >= MAX_SERIES) return -1;
    json_array_append_new(seen, json_string(key));
    return (int)json_array_size(seen) - 1;
}

static const char *run_fp(const json_t *r)
{
    const char *s = json_string_value(json_object_get(r, "fingerprint"));
    return s ? s : "";
}

static long long run_version(const json_t *r)
{
    return (long long)json_integer_value(json_object_get(r, "version"));
}

static int version_index(json_t *versions, long long v)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", v);
    return index_of(versions, key);
}

typedef struct {
    sg_chart_axis y;
    double x0, x1;
} axes;

static double px(const axes *a, double x)
{
    return ML + (x - a->x0) / (a->x1 - a->x0) * (W - ML - MR);
}
static double py(const axes *a, double y)
{
    double f = sg_chart_frac(&a->y, y);
    return H - MB - f * (H - MT - MB);
}

/* Earlier runs nightly.sh hands to compare as the noise band (`registry runs --limit 21`). */
#define BAND_WINDOW 20

/* Whether a run was signed by a key that is not one of its model's signers (recorded with
   --pubkey); runs listed before the registry said so count as the model's. */
static bool run_foreign(const json_t *r)
{
    return json_is_false(json_object_get(r, "signer_trusted"));
}

static const char *run_key(const json_t *r)
{
    const char *k = json_string_value(json_object_get(r, "signer_key_id"));
    return k ? k : "?";
}

/* Whether nightly.sh hands run k to compare as an earlier run of run j: one signed by the same
   key, or both by the model's signers (a nightly without a key of its own). */
static bool band_counts(const json_t *k, const json_t *j)
{
    return !strcmp(run_key(k), run_key(j)) || (!run_foreign(k) && !run_foreign(j));
}

/*
 * The noise band of one version on one fingerprint: at each run with enough history, the
 * [min, max] of the previous runs (what `compare --history` uses): as nightly.sh takes them,
 * the newest BAND_WINDOW earlier runs that count for it (band_counts). lo/hi are NAN where
 * fewer than SG_COMPARE_HISTORY_MIN_RUNS count. run[j] is the run of v[j].
 */
static void band_of(const double *v, const json_t *const *run, size_t n, double *lo, double *hi)
{
    for (size_t j = 0; j < n; j++) {
        lo[j] = hi[j] = NAN;
        double l = INFINITY, h = -INFINITY;
        size_t counted = 0;
        for (size_t k = j; k-- > 0 && counted < BAND_WINDOW;) {
            if (!band_counts(run[k], run[j])) continue;
            l = fmin(l, v[k]), h = fmax(h, v[k]);
            counted++;
        }
        if (counted >= SG_COMPARE_HISTORY_MIN_RUNS) lo[j] = l, hi[j] = h;
    }
}

/* Drawn as one shaded polygon, upper edge left to right, lower edge back. */
static void noise_band(FILE *out, const axes *a, const double *x, const double *lo,
                       const double *hi, size_t n, const char *fp, const char *colour,
                       long long ver)
{
    /* one polygon per stretch of runs that have a band */
    for (size_t s = 0, e; s < n; s = e) {
        if (!isfinite(lo[s])) {
            e = s + 1;
            continue;
        }
        for (e = s; e < n && isfinite(lo[e]);)
            e++;
        fprintf(out, "<polygon class=\"band\" fill=\"%s\" data-fingerprint=\"", colour);
        sg_fputs_xml_escaped(out, fp);
        fprintf(out, "\" data-version=\"%lld\" points=\"", ver);
        for (size_t j = s; j < e; j++)
            fprintf(out, "%.1f,%.1f ", px(a, x[j]), py(a, hi[j]));
        for (size_t j = e; j-- > s;)
            fprintf(out, "%.1f,%.1f ", px(a, x[j]), py(a, lo[j]));
        fprintf(out,
                "\"><title>v%lld noise band: min..max of the previous runs</title></polygon>\n",
                ver);
    }
}

/* The nightly compare verdict stored with a run, or NULL when none was. */
static const char *run_verdict(const json_t *r)
{
    const char *v = json_string_value(json_object_get(r, "verdict"));
    return v && *v ? v : NULL;
}

/* A run's point on one chart, computed once per chart: labels are tried against every point,
 * once per version and place, and reading the runs' JSON each time made a page of 3,000
 * versions take 43 s. */
typedef struct {
    double v;       /* the figure, NAN when the run has none */
    double cx, cy;  /* where it is drawn */
    double top;     /* the top of what is drawn there (the regressed mark's, if any) */
    long long ver;  /* the run's version */
    bool regressed; /* its nightly verdict */
} chart_point;

static chart_point *chart_points(const axes *a, const json_t *runs, const char *fig,
                                 const double *xs)
{
    size_t n = json_array_size(runs);
    chart_point *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(runs, i);
        const char *verdict = run_verdict(r);
        p[i].v = figure_value(r, fig);
        p[i].ver = run_version(r);
        p[i].regressed = verdict && !strcmp(verdict, "regressed");
        p[i].cx = px(a, xs[i]);
        p[i].cy = isfinite(p[i].v) ? py(a, p[i].v) : NAN;
        p[i].top = p[i].cy - (p[i].regressed ? 17 : 5);
    }
    return p;
}

/* true when a start-anchored label at (x, y) keeps clear of every point of the chart and of the
 * regressed mark above it. */
static bool clear_of_points(const chart_point *p, size_t n, double x, double y, const char *text)
{
    double x0 = x, x1 = x + sg_chart_text_width(text, FONT), y0 = y - FONT * 0.8,
           y1 = y + FONT * 0.25;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(p[i].v)) continue;
        double cx = p[i].cx, cy = p[i].cy;
        if (x0 < cx + 5 && cx - 5 < x1 && y0 < cy + 5 && p[i].top < y1) return false;
    }
    return true;
}

/*
 * One line per (fingerprint, version): the version's colour, the fingerprint's dash. Lines of
 * two versions that run side by side would otherwise zigzag between them. A run whose nightly
 * verdict is "regressed" is marked with a red triangle, a failed gate hollow.
 */
static int cmp_version_then_index(const void *a, const void *b, void *ctx)
{
    const chart_point *p = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (p[i].ver != p[j].ver) return p[i].ver < p[j].ver ? -1 : 1;
    return i < j ? -1 : i > j;
}

static void series_chart(FILE *out, const json_t *runs, const axes *a, const double *xs,
                         const chart_point *pts, const char *fp, int fpi, json_t *versions,
                         bool latency, sg_chart_labels *l)
{
    size_t n = json_array_size(runs);
    /* This fingerprint's points, grouped by version (in the order each version first ran) and
       in run order within a version: one pass, not one over every run per version. */
    size_t *order = malloc((n ? n : 1) * sizeof *order),
           *first = malloc((n ? n : 1) * sizeof *first);
    double *bx = malloc((n ? n : 1) * sizeof *bx), *bv = malloc((n ? n : 1) * sizeof *bv),
           *lo = malloc((n ? n : 1) * sizeof *lo), *hi = malloc((n ? n : 1) * sizeof *hi);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    const json_t **brun = malloc((n ? n : 1) * sizeof *brun);
    size_t nsel = 0, ngroups = 0;
    if (order && first && bx && bv && lo && hi && idx && brun) {
        for (size_t i = 0; i < n; i++)
            if (isfinite(pts[i].v) && !strcmp(run_fp(json_array_get(runs, i)), fp))
                order[nsel++] = i;
        qsort_r(order, nsel, sizeof *order, cmp_version_then_index, (void *)pts);
        for (size_t k = 0; k < nsel; k++)
            if (k == 0 || pts[order[k]].ver != pts[order[k - 1]].ver) first[ngroups++] = k;
        /* versions in the order they first ran: by each group's first run */
        for (size_t g = 1; g < ngroups; g++)
            for (size_t h = g; h > 0 && order[first[h]] < order[first[h - 1]]; h--) {
                size_t t = first[h];
                first[h] = first[h - 1];
                first[h - 1] = t;
            }
    }
    for (size_t k = 0; k < ngroups; k++) {
        long long ver = pts[order[first[k]]].ver;
        int vi = version_index(versions, ver);
        const char *colour = vi >= 0 ? palette[vi] : "#777";
        size_t m = 0;
        for (size_t q = first[k]; q < nsel && pts[order[q]].ver == ver; q++) {
            size_t i = order[q];
            idx[m] = i, brun[m] = json_array_get(runs, i), bx[m] = xs[i], bv[m++] = pts[i].v;
        }
        band_of(bv, brun, m, lo, hi);
        if (latency) noise_band(out, a, bx, lo, hi, m, fp, colour, ver);
        fprintf(out,
                "<polyline class=\"series\" stroke=\"%s\" stroke-dasharray=\"%s\" "
                "data-fingerprint=\"",
                colour, dashes[fpi]);
        sg_fputs_xml_escaped(out, fp);
        fprintf(out, "\" data-version=\"%lld\" points=\"", ver);
        for (size_t j = 0; j < m; j++)
            fprintf(out, "%.1f,%.1f ", px(a, bx[j]), py(a, bv[j]));
        fputs("\"/>\n", out);
        for (size_t j = 0; j < m; j++) {
            json_t *r = json_array_get(runs, idx[j]);
            char lbl[32];
            fmt_value(lbl, sizeof lbl, bv[j], latency);
            const char *result = json_string_value(json_object_get(r, "result"));
            bool failed = !result || strcmp(result, "PASSED") != 0;
            const char *verdict = run_verdict(r);
            bool regressed = verdict && !strcmp(verdict, "regressed");
            long long id = (long long)json_integer_value(json_object_get(r, "id"));
            double cx = px(a, bx[j]), cy = py(a, bv[j]);
            const char *time = json_string_value(json_object_get(r, "time"));
            fprintf(out,
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\" stroke=\"%s\" "
                    "data-run=\"%lld\" data-verdict=\"",
                    cx, cy, failed ? "#fff" : colour, colour, id);
            sg_fputs_xml_escaped(out, verdict ? verdict : "");
            fprintf(out, "\"><title>v%lld ", ver);
            sg_fputs_xml_escaped(out, time ? time : "");
            fprintf(out, ": %s%s; nightly verdict: ", lbl, failed ? " (gate FAILED)" : "");
            sg_fputs_xml_escaped(out, verdict ? verdict : "none stored");
            const bool foreign = run_foreign(r);
            if (foreign) {
                fputs("; signed by key ", out);
                sg_fputs_xml_escaped(out, run_key(r));
                fputs(", not a signer of the model", out);
            }
            fputs("</title></circle>\n", out);
            if (foreign)
                fprintf(out,
                        "<circle class=\"foreign\" data-run=\"%lld\" cx=\"%.1f\" cy=\"%.1f\" "
                        "r=\"6.5\"/>\n",
                        id, cx, cy);
            if (regressed)
                fprintf(out,
                        "<path class=\"regressed\" data-run=\"%lld\" d=\"M%.1f,%.1f l-6,-10 h12 "
                        "z\"><title>regressed: the nightly compare of this run (v%lld, %s) "
                        "flagged it</title></path>\n",
                        id, cx, cy - 7, ver, lbl);
        }
        if (m) {
            char t[32];
            snprintf(t, sizeof t, "v%lld", ver);
            /* Next to the line's last point, else a row or more below or above it, clear of the
             * other labels and of the points (another version's line may start right there). */
            static const double dy[] = {0, 12, -12, 24, -24, 36, 48};
            double lx = px(a, bx[m - 1]) + 6, ly = py(a, bv[m - 1]) + 4;
            for (size_t t2 = 0; t2 < sizeof dy / sizeof dy[0]; t2++)
                if (clear_of_points(pts, n, lx, ly + dy[t2], t) &&
                    sg_chart_label(out, l, lx, ly + dy[t2], t, FONT, "start", "slab", false))
                    break;
        }
    }
    free(bx), free(bv), free(lo), free(hi), free(idx), free(brun), free(order), free(first);
}

static const char *const month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Date ticks at whole hours, days or weeks (UTC), at least 90 px apart; run numbers otherwise. */
static void x_ticks(FILE *out, const axes *a, bool by_time, sg_chart_labels *l)
{
    double plot_w = W - ML - MR, span = a->x1 - a->x0;
    if (!by_time) {
        double step = sg_chart_nice_step(span * 70 / plot_w);
        if (step < 1) step = 1;
        for (double v = ceil(a->x0 / step) * step; v <= a->x1; v += step) {
            char t[32];
            snprintf(t, sizeof t, "run %.0f", v + 1);
            if (sg_chart_label_clamped(out, l, px(a, v), H - MB + 16, t, FONT, "tick"))
                fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"axis\"/>\n",
                        px(a, v), px(a, v), H - MB, H - MB + 4);
        }
        return;
    }
    static const double steps[] = {3600,       3 * 3600,   6 * 3600,   12 * 3600,
                                   86400,      2 * 86400,  7 * 86400,  14 * 86400,
                                   28 * 86400, 91 * 86400, 364 * 86400};
    double step = steps[sizeof steps / sizeof steps[0] - 1];
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (steps[i] / span * plot_w >= 90) {
            step = steps[i];
            break;
        }
    /* Weekly steps start on a Monday (1970-01-05 was one). */
    double origin = step >= 7 * 86400 ? 4 * 86400 : 0;
    for (double v = origin + ceil((a->x0 - origin) / step) * step; v <= a->x1; v += step) {
        time_t t = (time_t)v;
        struct tm tm;
        gmtime_r(&t, &tm);
        char lbl[32];
        if (step < 86400)
            snprintf(lbl, sizeof lbl, "%s %d %02d:00", month[tm.tm_mon], tm.tm_mday, tm.tm_hour);
        else if (step >= 91 * 86400)
            snprintf(lbl, sizeof lbl, "%s %d", month[tm.tm_mon], tm.tm_year + 1900);
        else
            snprintf(lbl, sizeof lbl, "%s %d", month[tm.tm_mon], tm.tm_mday);
        if (sg_chart_label_clamped(out, l, px(a, v), H - MB + 16, lbl, FONT, "tick"))
            fprintf(out,
                    "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"grid\"/>"
                    "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"axis\"/>\n",
                    px(a, v), px(a, v), MT, H - MB, px(a, v), px(a, v), H - MB, H - MB + 4);
    }
}

/* The policy's absolute limit for this figure, from the newest run that recorded one. */
static double limit_of(const json_t *runs, const char *fig)
{
    for (size_t i = json_array_size(runs); i-- > 0;) {
        json_t *v = json_object_get(
            json_object_get(json_object_get(json_array_get(runs, i), "figures"), "limits"), fig);
        if (json_is_number(v)) return json_number_value(v);
    }
    return NAN;
}

/* "higher", "lower", or NULL when unknown: the newest gating rule's direction for this figure,
   else the metric's usual one (losses and errors lower). */
static const char *direction_of(const json_t *runs, const char *fig)
{
    if (!strncmp(fig, "latency.", 8)) return "lower";
    for (size_t i = json_array_size(runs); i-- > 0;) {
        json_t *v = json_object_get(
            json_object_get(json_object_get(json_array_get(runs, i), "figures"), "directions"),
            fig);
        if (json_is_boolean(v)) return json_is_true(v) ? "higher" : "lower";
    }
    bool gib;
    if (!strncmp(fig, "metric.", 7) && sg_metric_direction(fig + 7, &gib))
        return gib ? "higher" : "lower";
    return NULL;
}

static void chart(FILE *out, const json_t *runs, const char *fig, json_t *fps, json_t *versions,
                  const double *xs, bool by_time)
{
    bool latency = !strncmp(fig, "latency.", 8);
    axes a = {{INFINITY, -INFINITY, false}, INFINITY, -INFINITY};
    size_t n = json_array_size(runs), have = 0;
    for (size_t i = 0; i < n; i++) {
        double v = figure_value(json_array_get(runs, i), fig);
        a.x0 = fmin(a.x0, xs[i]), a.x1 = fmax(a.x1, xs[i]);
        if (!isfinite(v)) continue;
        have++;
        a.y.lo = fmin(a.y.lo, v), a.y.hi = fmax(a.y.hi, v);
    }
    double limit = limit_of(runs, fig);
    fprintf(out, "<section><h2>");
    const char *better = direction_of(runs, fig);
    if (latency)
        fprintf(out, "latency %s", fig + 8);
    else
        sg_fputs_xml_escaped(out, fig + 7);
    if (better) fprintf(out, " <small>(%s is better)</small>", better);
    fprintf(out, "</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-figure=\"");
    sg_fputs_xml_escaped(out, fig);
    fprintf(out, "\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\">\n", W, H, W, H);
    if (!have) {
        fprintf(out,
                "<text x=\"%d\" y=\"%d\" class=\"none\">no runs measured this "
                "figure</text>\n</svg></section>\n",
                W / 2 - 90, H / 2);
        return;
    }
    /* The limit joins the range when it is near the data; far off it is an arrow at the edge. */
    bool limit_in = isfinite(limit) && limit > 0 && limit <= a.y.hi * (latency ? 3 : 1.5) &&
                    limit >= a.y.lo / (latency ? 3 : 1.5);
    if (limit_in) a.y.lo = fmin(a.y.lo, limit), a.y.hi = fmax(a.y.hi, limit);
    /* Latency on a log axis once it spans more than 3x: a version 6x slower then does not
     * flatten an earlier one's swings into a line. */
    a.y.log = latency && a.y.lo > 0 && a.y.hi / a.y.lo > 3;
    if (a.y.log) {
        a.y.lo /= 1.15, a.y.hi *= 1.15;
    } else {
        double pad = (a.y.hi - a.y.lo) * 0.1;
        if (pad <= 0) pad = fabs(a.y.lo) * 0.05 + 1e-9;
        a.y.lo -= pad, a.y.hi += pad;
        if (latency && a.y.lo < 0) a.y.lo = 0;
    }
    if (a.x1 <= a.x0) a.x0 -= 1, a.x1 += 1;
    sg_chart_labels l;
    sg_chart_labels_init(&l, W, H);
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", ML, MT,
            W - ML - MR, H - MT - MB);
    char title[160];
    if (latency)
        snprintf(title, sizeof title, "%s latency per query%s", fig + 8,
                 a.y.log ? " (logarithmic scale)" : "");
    else
        snprintf(title, sizeof title, "%.120s", fig + 7);
    sg_chart_label(out, &l, 4, 14, title, FONT, "start", "axis-title", true);
    sg_chart_label(out, &l, ML + (W - ML - MR) / 2.0, H - 6,
                   by_time ? "date of the run (UTC)" : "run, in the order recorded", FONT, "middle",
                   "axis-title", true);
    double ticks[32];
    int nt = sg_chart_ticks(&a.y, H - MT - MB, 28, ticks, 32);
    char lbls[32][32];
    if (latency) sg_chart_tick_ns_labels(ticks, nt, lbls);
    for (int k = 0; k < nt; k++) {
        char num[32];
        if (!latency) snprintf(num, sizeof num, "%.4g", ticks[k]);
        const char *lbl = latency ? lbls[k] : num;
        double y = py(&a, ticks[k]);
        if (sg_chart_label(out, &l, ML - 6, y + 4, lbl, FONT, "end", "tick", false))
            fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n", ML,
                    W - MR, y, y);
    }
    x_ticks(out, &a, by_time, &l);
    chart_point *pts = chart_points(&a, runs, fig, xs);
    /* The regressed marks are drawn with the series, after the labels below: keep the labels
     * off the triangles (6 px either side of the point, 7 to 17 px above it). */
    for (size_t i = 0; pts && i < n; i++) {
        if (!pts[i].regressed || !isfinite(pts[i].v) || l.n >= SG_CHART_MAX_LABELS) continue;
        double box[4] = {pts[i].cx - 6, pts[i].cy - 17, pts[i].cx + 6, pts[i].cy - 7};
        memcpy(l.box[l.n++], box, sizeof box);
    }
    /* A version is marked where it first appears. Nightly runs interleave the Staging and
     * Production versions, so "differs from the previous run" would mark every run. */
    json_t *seen = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(runs, i);
        char key[32];
        snprintf(key, sizeof key, "v%lld", run_version(r));
        if (json_object_get(seen, key)) continue;
        json_object_set_new(seen, key, json_true());
        if (i == 0) continue;
        double x = (px(&a, xs[i - 1]) + px(&a, xs[i])) / 2;
        fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"version\"/>\n", x,
                x, MT, H - MB);
        /* At the top of the line, else lower, else at its foot: clear of other labels, of the
         * points and of their regressed marks; at the top regardless when nothing is clear. */
        static const double ys[] = {MT + 12, MT + 26, H - MB - 6, H - MB - 20};
        bool placed = false;
        for (size_t t = 0; !placed && t < sizeof ys / sizeof ys[0]; t++)
            placed = (!pts || clear_of_points(pts, n, x + 3, ys[t], key)) &&
                     sg_chart_label(out, &l, x + 3, ys[t], key, FONT, "start", "vlab", false);
        if (!placed) sg_chart_label(out, &l, x + 3, MT + 12, key, FONT, "start", "vlab", true);
    }
    json_decref(seen);
    if (isfinite(limit)) {
        char lv[32], t[64];
        fmt_value(lv, sizeof lv, limit, latency);
        if (limit_in) {
            double y = py(&a, limit);
            fprintf(out, "<line class=\"limit\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>\n",
                    ML, W - MR, y, y);
            snprintf(t, sizeof t, "limit %s", lv);
            sg_chart_label(out, &l, W - MR + 4, y + 4, t, FONT, "start", "limit-label", false);
        } else if (isfinite(limit)) {
            bool above = limit > a.y.hi;
            snprintf(t, sizeof t, "limit %s %s", lv, above ? "\u2191" : "\u2193");
            fprintf(out, "<line class=\"limit\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>\n",
                    W - MR - 30, W - MR, above ? MT : H - MB, above ? MT : H - MB);
            sg_chart_label(out, &l, W - MR + 4, above ? MT + 4 : H - MB + 4, t, FONT, "start",
                           "limit-label", false);
        }
    }
    for (size_t s = 0; pts && s < json_array_size(fps); s++)
        series_chart(out, runs, &a, xs, pts, json_string_value(json_array_get(fps, s)), (int)s,
                     versions, latency, &l);
    free(pts);
    fprintf(out, "</svg></section>\n");
}

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;color:#222;max-width:940px;"
    "padding:0 16px}"
    "h1{font-size:20px;overflow-wrap:anywhere}h2{font-size:15px;margin:18px 0 "
    "4px}small{color:#777;font-weight:normal}"
    "svg.chart{width:100%;height:auto}svg text{font-family:system-ui,sans-serif;fill:#444}"
    ".frame{fill:none;stroke:#bbb}.grid{stroke:#eee}.axis{stroke:#888}"
    ".series{fill:none;stroke-width:1.8}.band{fill-opacity:.15;stroke:none}"
    ".version{stroke:#999;stroke-dasharray:4 3}.vlab{fill:#666}"
    ".regressed{fill:#d00}.foreign{fill:none;stroke:#333;stroke-width:1.2;stroke-dasharray:2 "
    "2}.limit{stroke:#d00;stroke-width:1.2;stroke-dasharray:8 4}"
    ".limit-label{fill:#b00}.axis-title{fill:#555}"
    ".none{fill:#999}table{border-collapse:collapse;font-size:13px}td,th{padding:2px "
    "8px;text-align:left}"
    ".legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin:8px 0;padding:6px 10px;border:1px "
    "solid #ddd}.legend span{white-space:nowrap}"
    ".swatch{display:inline-block;width:22px;height:0;border-top:3px solid;vertical-align:middle;"
    "margin-right:4px}"
    ".band-swatch{height:10px;border:0;background:#888;opacity:.3}"
    /* a narrow screen scrolls each chart sideways at a readable size, rather than shrinking
       its 900-unit width to the screen's (its text had been 4 px high at 400 px) */
    "@media (max-width:700px){section,table{overflow-x:auto}table{display:block}"
    "svg.chart{width:760px;max-width:none}}"
    "@media print{body{max-width:none;margin:0}section{break-inside:avoid}"
    ".band,.legend,.regressed{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

sg_status sg_trend_render(FILE *out, const json_t *doc)
{
    json_t *runs = json_object_get(doc, "runs"), *fps = json_array(), *versions = json_array();
    size_t n = json_array_size(runs), i;
    double *xs = calloc(n ? n : 1, sizeof *xs);
    if (!xs) {
        json_decref(fps);
        json_decref(versions);
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
    {
        index_of(fps, run_fp(r));
        version_index(versions, run_version(r));
    }
    const char *model = json_string_value(json_object_get(doc, "model"));
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
                 "charset=\"utf-8\"><title>stagegate trend: ");
    sg_fputs_xml_escaped(out, model ? model : "");
    fprintf(out, "</title><style>%s</style></head><body>\n<h1>Trend of ", css);
    sg_fputs_xml_escaped(out, model ? model : "");
    fprintf(out, "</h1>\n<p>%zu run%s", n, n == 1 ? "" : "s");
    if (n) { /* the registry's text, escaped like every other string (a row edited by
                hand or migrated as it was had put markup, and script, in the page) */
        const char *t0 = json_string_value(json_object_get(json_array_get(runs, 0), "time"));
        const char *t1 = json_string_value(json_object_get(json_array_get(runs, n - 1), "time"));
        fputs(" from ", out);
        sg_fputs_xml_escaped(out, t0 ? t0 : "?");
        fputs(" to ", out);
        sg_fputs_xml_escaped(out, t1 ? t1 : "?");
    }
    /* Runs of machines past the first MAX_SERIES are not drawn (one line style each), and
       versions past them share one grey: the page says so, and its counts are of what it
       draws (they had counted every run while the charts dropped some without a word). */
    size_t n_verdict = 0, n_regressed = 0, n_hidden = 0, n_grey = 0, n_foreign = 0;
    json_t *all_fps = json_array(), *grey = json_array();
    json_array_foreach(runs, i, r)
    {
        const char *fp = run_fp(r);
        bool seen = false;
        for (size_t k = 0; k < json_array_size(all_fps) && !seen; k++)
            seen = !strcmp(json_string_value(json_array_get(all_fps, k)), fp);
        if (!seen) json_array_append_new(all_fps, json_string(fp));
        if (index_of(fps, fp) < 0) {
            n_hidden++;
            continue;
        }
        if (version_index(versions, run_version(r)) < 0) {
            n_grey++;
            char key[32];
            snprintf(key, sizeof key, "v%lld", run_version(r));
            bool listed = false;
            for (size_t k = 0; k < json_array_size(grey) && !listed; k++)
                listed = !strcmp(json_string_value(json_array_get(grey, k)), key);
            if (!listed) json_array_append_new(grey, json_string(key));
        }
        const char *v = run_verdict(r);
        n_foreign += run_foreign(r);
        n_verdict += v != NULL;
        n_regressed += v && !strcmp(v, "regressed");
    }
    const size_t n_drawn = n - n_hidden;
    fprintf(out,
            ". One colour per model version, one line style per machine; dashed verticals mark "
            "where a version first ran; hollow points are runs whose gate failed; the red dashed "
            "line is the policy's limit. Latency that spans more than 3&times; is drawn on a "
            "logarithmic axis. Hover a point for its version, value and verdict.</p>\n"
            "<p class=\"marks\">A red triangle marks a night the nightly run flagged as "
            "<b>regressed</b>: the verdict of its compare with the previous comparable run, "
            "stored with the run in the registry (%zu of %zu run%s flagged). ",
            n_regressed, n_drawn, n_drawn == 1 ? "" : "s");
    if (n_verdict < n_drawn)
        fprintf(out,
                "%zu %s no stored verdict (recorded outside the nightly job, or before it stored "
                "verdicts) and %s never marked. ",
                n_drawn - n_verdict, n_drawn - n_verdict == 1 ? "run has" : "runs have",
                n_drawn - n_verdict == 1 ? "is" : "are");
    if (n_foreign)
        fprintf(out,
                "<b>%zu run%s signed by keys that are not the model's signers</b> (recorded "
                "with <code>--pubkey</code>) %s a dotted ring; the nightly job compares a run "
                "only with runs signed by the same key, or, run by the model's signers, by the "
                "model's signers, and so does each point's noise band. ",
                n_foreign, n_foreign == 1 ? "" : "s", n_foreign == 1 ? "has" : "have");
    if (n_hidden)
        fprintf(out,
                "<b>%zu run%s of %zu more machine%s %s not drawn</b>: the page draws the first %d "
                "machines it meets (one line style each); <code>trend --limit N</code> draws only "
                "the newest N runs. ",
                n_hidden, n_hidden == 1 ? "" : "s", json_array_size(all_fps) - MAX_SERIES,
                json_array_size(all_fps) - MAX_SERIES == 1 ? "" : "s", n_hidden == 1 ? "is" : "are",
                MAX_SERIES);
    if (n_grey) {
        fprintf(out, "<b>%zu run%s of versions past the first %d share one grey</b> (", n_grey,
                n_grey == 1 ? "" : "s", MAX_SERIES);
        for (size_t k = 0; k < json_array_size(grey); k++) {
            if (k) fputs(", ", out);
            if (k == 12) {
                fputs("...", out);
                break;
            }
            fputs(json_string_value(json_array_get(grey, k)), out);
        }
        fputs("; <code>trend --version V</code> draws one). ", out);
    }
    json_decref(all_fps);
    fprintf(out, "The shaded noise band on the latency charts (from a version's fourth run on: "
                 "the min..max of up to 20 previous runs, what nightly hands to compare) is "
                 "context, not a verdict.</p>\n<div class=\"legend\">");
    for (size_t v = 0; v < json_array_size(versions); v++)
        fprintf(out, "<span><i class=\"swatch\" style=\"border-color:%s\"></i>v%s</span>",
                palette[v], json_string_value(json_array_get(versions, v)));
    if (n_grey)
        fputs("<span><i class=\"swatch\" style=\"border-color:#777\"></i>later versions</span>",
              out);
    if (n_foreign)
        fputs("<span><svg width=\"16\" height=\"16\"><circle class=\"foreign\" cx=\"8\" "
              "cy=\"8\" r=\"6.5\"/></svg> signed by another key</span>",
              out);
    json_decref(grey);
    fprintf(out, "<span><svg width=\"14\" height=\"12\"><path class=\"regressed\" "
                 "d=\"M7,11 l-6,-10 h12 z\"/></svg> regressed (nightly verdict)</span>"
                 "<span><i class=\"swatch band-swatch\"></i>noise band</span>"
                 "<span><svg width=\"26\" "
                 "height=\"8\"><line class=\"limit\" x1=\"0\" x2=\"26\" y1=\"4\" y2=\"4\"/></svg>"
                 " policy limit</span></div>\n");
    fprintf(out, "<table><tr><th>line</th><th>fingerprint</th><th>CPU</th><th>cores</th>"
                 "<th>kernel</th><th>stagegate</th></tr>\n");
    for (size_t s = 0; s < json_array_size(fps); s++) {
        json_t *m = NULL;
        json_array_foreach(runs, i,
                           r) if (!strcmp(run_fp(r), json_string_value(json_array_get(fps, s)))) m =
            json_object_get(r, "machine");
        fprintf(
            out,
            "<tr><td><svg width=\"30\" height=\"8\"><line x1=\"0\" x2=\"30\" y1=\"4\" "
            "y2=\"4\" stroke=\"#444\" stroke-width=\"2\" stroke-dasharray=\"%s\"/></svg></td><td>",
            dashes[s]);
        const char *id = json_string_value(json_array_get(fps, s));
        sg_fputs_xml_escaped(out, *id ? id : "(no latency run)");
        fprintf(out, "</td><td>");
        const char *cpu = json_string_value(json_object_get(m, "cpu_model"));
        sg_fputs_xml_escaped(out, cpu ? cpu : "");
        fprintf(out, "</td><td>%lld</td><td>",
                (long long)json_integer_value(json_object_get(m, "cores")));
        const char *k = json_string_value(json_object_get(m, "kernel"));
        sg_fputs_xml_escaped(out, k ? k : "");
        fprintf(out, "</td><td>");
        const char *sv = json_string_value(json_object_get(m, "stagegate_version"));
        sg_fputs_xml_escaped(out, sv ? sv : "");
        fprintf(out, "</td></tr>\n");
    }
    fprintf(out, "</table>\n");
    json_t *figs = sg_trend_figures(doc);
    json_array_foreach(figs, i, r)
        chart(out, runs, json_string_value(r), fps, versions, xs, by_time);
    fprintf(out, "</body></html>\n");
    json_decref(figs);
    json_decref(fps);
    json_decref(versions);
    free(xs);
    return ferror(out) ? SG_EIO : SG_OK;
}
