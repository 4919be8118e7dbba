/*
 * The latency histogram and CDF of the HTML report, drawn from the bench
 * histogram buckets as inline SVG.
 *
 * The x-axis ends at p99.9 x 1.5 (or the maximum, if lower), so one outlier
 * cannot squeeze the whole distribution into the first few bars; the queries
 * beyond it are one labelled overflow bar. The scale, linear or logarithmic,
 * is the one on which the central 98% of the queries spread widest, and the
 * axis title says which it is.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "render_internal.h"
#include "stagegate/common.h"
#include "stagegate/gate.h"

#define W 600.0
#define H 300.0
#define ML 64.0 /* y tick labels */
#define MR 84.0 /* the overflow column */
#define MT 54.0 /* y-axis title and two rows of percentile labels */
#define MB 44.0 /* x tick labels and the x-axis title */
#define OV_GAP 10.0
#define MAX_BINS 64
#define FONT 11.0

typedef struct {
    size_t n;
    double *v, *c; /* bucket low values (ns) and counts, ascending */
    double total;
} buckets;

typedef struct {
    buckets b;
    sg_chart_axis x;
    double over;    /* queries beyond the axis */
    double max_ns;  /* the slowest query */
    double bin_w;   /* linear bins: their width in ns; log bins: the ratio */
    double quantum; /* the data's resolution in ns */
    int nbins;
    double edges[MAX_BINS + 1]; /* bin k is [edges[k], edges[k + 1]) */
    double bins[MAX_BINS];
    json_t *lat;
} hist_plan;

static double plot_x(const hist_plan *p, double v)
{
    return ML + sg_chart_frac(&p->x, v) * (W - ML - MR);
}

static bool read_buckets(json_t *lat, buckets *b)
{
    json_t *arr = sg_render_latency_buckets(lat);
    memset(b, 0, sizeof *b);
    if (!arr) return false;
    size_t n = json_array_size(arr);
    b->v = malloc(n * sizeof *b->v);
    b->c = malloc(n * sizeof *b->c);
    if (!b->v || !b->c) return false;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        double v = json_number_value(json_array_get(e, 0)),
               c = json_number_value(json_array_get(e, 1));
        if (!(v > 0) || !(c > 0) || (b->n && v < b->v[b->n - 1])) continue;
        b->v[b->n] = v, b->c[b->n++] = c;
        b->total += c;
    }
    return b->total > 0;
}

/* The value below which a share q of the queries lie (bucket resolution). */
static double quantile(const buckets *b, double q)
{
    double cum = 0;
    for (size_t i = 0; i < b->n; i++) {
        cum += b->c[i];
        if (cum >= q * b->total) return b->v[i];
    }
    return b->v[b->n - 1];
}

/* The smallest gap between neighbouring bucket values: the clock's resolution in the data. */
static double quantum(const buckets *b)
{
    double g = INFINITY;
    for (size_t i = 1; i < b->n; i++)
        if (b->v[i] > b->v[i - 1]) g = fmin(g, b->v[i] - b->v[i - 1]);
    return isfinite(g) ? g : 1;
}

static bool plan(json_t *lat, hist_plan *p)
{
    memset(p, 0, sizeof *p);
    p->lat = lat;
    if (!read_buckets(lat, &p->b)) return false;
    const buckets *b = &p->b;
    double lo = b->v[0], mx = b->v[b->n - 1], p999 = NAN, ms;
    if (sg_render_latency_ms(lat, "p999", &ms)) p999 = ms * 1e6;
    if (!(p999 > 0)) p999 = quantile(b, 0.999);
    p->max_ns = mx;
    if (sg_render_latency_ms(lat, "max", &ms) && ms * 1e6 > mx) p->max_ns = ms * 1e6;
    double g = quantum(b);
    double hi = fmin(mx + g, p999 * 1.5);
    if (!(hi > lo)) hi = lo + g;
    /* Linear or log: whichever spreads the central 98% wider. */
    double q01 = quantile(b, 0.01), q99 = quantile(b, 0.99);
    double lin = (q99 + g - q01) / (hi - lo), lg = log10((q99 + g) / q01) / log10(hi / lo);
    p->x.log = lg > lin * 1.15;
    p->quantum = g;
    if (p->x.log) {
        /* Log-spaced edges, moved to half-way between two values the clock can give, so each
         * bin holds whole steps of it; at the fast end a bin is then one step wide, not a comb
         * of empty and full bins. */
        int want = 48;
        p->bin_w = pow(hi / lo, 1.0 / want);
        double e0 = lo - fmin(g / 2, lo / 2);
        int n = 0;
        p->edges[n++] = e0;
        for (int k = 1; k <= want && n <= MAX_BINS; k++) {
            double e = lo * pow(p->bin_w, k);
            e = e0 + ceil((e - e0) / g) * g;
            if (e > p->edges[n - 1]) p->edges[n++] = e;
        }
        p->nbins = n - 1;
        p->x.lo = e0, p->x.hi = p->edges[n - 1];
    } else {
        /* Round bins that are whole multiples of the data's resolution, so no comb appears. */
        double w = sg_chart_nice_step((hi - lo) / 48);
        if (w < 20 * g) w = ceil(w / g) * g;
        double x0 = floor(lo / w) * w;
        int nb = (int)ceil((hi - x0) / w);
        while (nb > MAX_BINS)
            w *= 2, x0 = floor(lo / w) * w, nb = (int)ceil((hi - x0) / w);
        p->nbins = nb > 0 ? nb : 1;
        for (int k = 0; k <= p->nbins; k++)
            p->edges[k] = x0 + k * w;
        p->x.lo = x0, p->x.hi = p->edges[p->nbins];
        p->bin_w = w;
    }
    int k = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i] >= p->x.hi) {
            p->over += b->c[i];
            continue;
        }
        while (k + 1 < p->nbins && b->v[i] >= p->edges[k + 1])
            k++;
        p->bins[k] += b->c[i];
    }
    return true;
}

static void svg_open(FILE *out, const char *cls, const char *label)
{
    fprintf(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart %s\" viewBox=\"0 0 %.0f %.0f\" "
        "width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"%s\">\n",
        cls, W, H, W, H, label);
}

/* x ticks and the axis title; the overflow column's label under it. */
static void x_axis(FILE *out, sg_chart_labels *l, const hist_plan *p, const char *over_label)
{
    double base = H - MB;
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n", ML,
            base, W - MR, base);
    char t[64];
    if (over_label)
        sg_chart_label(out, l, W - MR + OV_GAP + (MR - OV_GAP) / 2, base + 17, over_label, FONT,
                       "middle", "tick over", true);
    double ticks[32];
    int n = sg_chart_ticks(&p->x, W - ML - MR, 80, ticks, 32);
    char lbls[32][32];
    sg_chart_tick_ns_labels(ticks, n, lbls);
    for (int i = 0; i < n; i++) {
        double x = plot_x(p, ticks[i]);
        if (sg_chart_label_clamped(out, l, x, base + 17, lbls[i], FONT, "tick"))
            fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n",
                    x, base, x, base + 4);
    }
    snprintf(t, sizeof t, "latency per query (%s scale)", p->x.log ? "logarithmic" : "linear");
    json_t *sc = json_object_get(p->lat, "scenario");
    if (json_is_string(sc) && !strcmp(json_string_value(sc), "offline"))
        snprintf(t, sizeof t, "latency per batch call (%s scale)",
                 p->x.log ? "logarithmic" : "linear");
    sg_chart_label(out, l, ML + (W - ML - MR) / 2, H - 6, t, FONT, "middle", "axis-title", true);
}

/* p50 / p90 / p99 as dashed lines, labelled in the rows above the plot. */
static void markers(FILE *out, sg_chart_labels *l, const hist_plan *p)
{
    static const char *const keys[] = {"p50", "p90", "p99"};
    double ms_of[3];
    bool have[3];
    for (int i = 0; i < 3; i++)
        have[i] = sg_render_latency_ms(p->lat, keys[i], &ms_of[i]) && ms_of[i] > 0;
    for (int i = 0; i < 3; i++) {
        if (!have[i]) continue;
        const double ms = ms_of[i];
        double x = plot_x(p, ms * 1e6);
        if (x < ML || x > W - MR) continue;
        char t[64], v[32];
        sg_format_ns(ms * 1e6, v, sizeof v);
        /* Percentiles of one value share one line and one label ("p90 = p99 50.0 ns"): two
           labels of one line had been stacked apart, one of them over another line. */
        int o = snprintf(t, sizeof t, "%s", keys[i]);
        for (int j = i + 1; j < 3; j++)
            if (have[j] && ms_of[j] == ms) {
                o += snprintf(t + o, sizeof t - (size_t)o, " = %s", keys[j]);
                have[j] = false;
            }
        snprintf(t + o, sizeof t - (size_t)o, " %s", v);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"marker\"/>\n",
                x, MT - 4, x, H - MB);
        /* The lowest free row, text right of the line, or left of it when that is taken. */
        static const double rows[] = {MT - 8, MT - 21, MT - 34};
        for (int row = 0; row < 3; row++) {
            if (sg_chart_label(out, l, x + 3, rows[row], t, FONT, "start", "marker-label", false) ||
                sg_chart_label(out, l, x - 3, rows[row], t, FONT, "end", "marker-label", false))
                break;
        }
    }
}

static void histogram(FILE *out, const hist_plan *p)
{
    sg_chart_labels l;
    sg_chart_labels_init(&l, W, H);
    double peak = p->over;
    for (int k = 0; k < p->nbins; k++)
        peak = fmax(peak, p->bins[k]);
    double ystep = sg_chart_nice_step(peak / 4), ytop = ceil(peak / ystep) * ystep;
    double plot_h = H - MT - MB;
    svg_open(out, "histogram", "latency histogram");
    char t[96], a[32], b[32];
    if (p->x.log) {
        sg_chart_tick_ns(p->quantum, a, sizeof a);
        snprintf(t, sizeof t, "queries per bin (bins %.1f%% of their latency wide, at least %s)",
                 100 * (p->bin_w - 1), a);
    } else {
        sg_chart_tick_ns(p->bin_w, a, sizeof a);
        snprintf(t, sizeof t, "queries per bin (bins %s wide)", a);
    }
    sg_chart_label(out, &l, 4, 14, t, FONT, "start", "axis-title", true);
    for (double v = 0; v <= ytop + ystep * 1e-9; v += ystep) {
        double y = H - MB - plot_h * v / ytop;
        sg_format_count(v, a, sizeof a);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n", ML,
                y, W - MR, y);
        sg_chart_label(out, &l, ML - 6, y + 4, a, FONT, "end", "tick", false);
    }
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n", ML, MT,
            ML, H - MB);
    for (int k = 0; k < p->nbins; k++) {
        if (p->bins[k] <= 0) continue;
        double h = fmax(1.0, plot_h * p->bins[k] / ytop);
        double lo = p->edges[k], hi = p->edges[k + 1];
        double x0 = plot_x(p, lo), x1 = plot_x(p, hi);
        sg_format_ns(lo, a, sizeof a);
        sg_format_ns(hi, b, sizeof b);
        sg_format_count(p->bins[k], t, sizeof t);
        fprintf(out,
                "<rect class=\"bar\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                "data-count=\"%.0f\" data-lo-ns=\"%.6g\" data-hi-ns=\"%.6g\"><title>%s queries "
                "from %s to %s</title></rect>\n",
                x0, H - MB - h, fmax(0.5, x1 - x0 - (x1 - x0 > 4 ? 1 : 0)), h, p->bins[k], lo, hi,
                t, a, b);
    }
    char over[48] = "";
    if (p->over > 0) {
        double h = fmax(3.0, plot_h * p->over / ytop), bx = W - MR + OV_GAP + 10;
        sg_format_ns(p->x.hi, a, sizeof a);
        sg_format_ns(p->max_ns, b, sizeof b);
        sg_format_count(p->over, t, sizeof t);
        fprintf(out,
                "<rect class=\"bar overflow\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                "data-count=\"%.0f\" data-lo-ns=\"%.6g\" data-hi-ns=\"%.6g\"><title>%s queries "
                "over %s (slowest %s), beyond the axis</title></rect>\n",
                bx, H - MB - h, MR - OV_GAP - 20, h, p->over, p->x.hi, p->max_ns, t, a, b);
        char cnt[112];
        snprintf(cnt, sizeof cnt, "%s more", t);
        sg_chart_label(out, &l, bx + (MR - OV_GAP - 20) / 2, H - MB - h - 4, cnt, FONT, "middle",
                       "over", true);
        snprintf(over, sizeof over, "> %s", a);
    }
    x_axis(out, &l, p, over[0] ? over : NULL);
    markers(out, &l, p);
    fputs("</svg>\n", out);
}

static void cdf(FILE *out, const hist_plan *p)
{
    sg_chart_labels l;
    sg_chart_labels_init(&l, W, H);
    double plot_h = H - MT - MB;
    svg_open(out, "cdf", "latency CDF");
    sg_chart_label(out, &l, 4, 14, "share of queries at or below the latency", FONT, "start",
                   "axis-title", true);
    char t[64], a[32];
    for (int i = 0; i <= 4; i++) {
        double y = H - MB - plot_h * i / 4.0;
        snprintf(t, sizeof t, "%d%%", 25 * i);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n", ML,
                y, W - MR, y);
        sg_chart_label(out, &l, ML - 6, y + 4, t, FONT, "end", "tick", false);
    }
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n", ML, MT,
            ML, H - MB);
    const buckets *b = &p->b;
    double cum = 0, prev_y = H - MB;
    fprintf(out, "<polyline class=\"cdf-line\" points=\"%.1f,%.1f", ML, prev_y);
    for (size_t i = 0; i < b->n && b->v[i] < p->x.hi; i++) {
        cum += b->c[i];
        double x = plot_x(p, b->v[i]), y = H - MB - plot_h * cum / b->total;
        fprintf(out, " %.1f,%.1f %.1f,%.1f", x, prev_y, x, y); /* a step at each bucket */
        prev_y = y;
    }
    fprintf(out, " %.1f,%.1f\"/>\n", W - MR, prev_y);
    char over[48] = "";
    if (p->over > 0) {
        /* The rest of the curve, compressed into the overflow column: where it ends. */
        double cx = W - MR + OV_GAP + (MR - OV_GAP) / 2;
        fprintf(out,
                "<polyline class=\"cdf-line overflow\" points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>"
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" class=\"cdf-end\"/>\n",
                W - MR, prev_y, cx, prev_y, cx, MT, cx, MT);
        /* Some queries lie past the axis, so the share inside is not "100%": as many digits
           as that takes (20,000 queries with 10 beyond read 99.95%). */
        for (int d = 3; d <= 15; d++) {
            snprintf(t, sizeof t, "%.*g%%", d, 100 * (b->total - p->over) / b->total);
            if (strcmp(t, "100%") != 0) break;
        }
        sg_chart_label(out, &l, W - MR - 4, prev_y + 14, t, FONT, "end", "over", false);
        sg_format_ns(p->max_ns, a, sizeof a);
        snprintf(over, sizeof over, "max %s", a);
    }
    x_axis(out, &l, p, over[0] ? over : NULL);
    markers(out, &l, p);
    fputs("</svg>\n", out);
}

void sg_render_latency_charts(FILE *out, json_t *lat)
{
    hist_plan p;
    if (!plan(lat, &p)) {
        fputs(sg_render_latency_buckets(lat) ? "<p>The latency histogram is empty.</p>\n"
                                             : "<p>No latency histogram in this report.</p>\n",
              out);
    } else {
        fputs("<div class=\"charts\">\n<figure><figcaption>Latency histogram", out);
        if (p.over > 0) {
            char a[32], c[32];
            sg_format_count(p.over, c, sizeof c);
            sg_format_ns(p.x.hi, a, sizeof a);
            fprintf(out,
                    " <small>(axis ends at %s, about p99.9 &times; 1.5; the %s slower "
                    "quer%s the bar on the right)</small>",
                    a, c, p.over == 1 ? "y is" : "ies are");
        }
        fputs("</figcaption>\n", out);
        histogram(out, &p);
        fputs("</figure>\n<figure><figcaption>Latency CDF</figcaption>\n", out);
        cdf(out, &p);
        fputs("</figure>\n</div>\n", out);
    }
    free(p.b.v);
    free(p.b.c);
}
