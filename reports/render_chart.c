/*
 * Chart pieces shared by the HTML report and the trend page: axes with
 * readable ticks, and a record of the labels already drawn so that no label is
 * placed over another one or outside the picture.
 *
 * Text widths are estimated (0.6 em per character, the average advance of a
 * sans-serif digit), which is also what tests/reports/svg_check.py assumes.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "render_internal.h"
#include "stagegate/common.h"
#include "stagegate/gate.h"

double sg_chart_frac(const sg_chart_axis *a, double v)
{
    if (a->log) {
        if (!(v > 0)) return 0;
        return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    }
    return (v - a->lo) / (a->hi - a->lo);
}

/* The smallest of 1, 2, 5 x 10^k at or above x. */
double sg_chart_nice_step(double x)
{
    if (!(x > 0) || !isfinite(x)) return 1;
    double p = pow(10.0, floor(log10(x)));
    if (!(p > 0) || !isfinite(p)) return x; /* a subnormal x: 10^k underflows to 0 */
    double f = x / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

int sg_chart_ticks(const sg_chart_axis *a, double px_len, double min_px, double *ticks, int max)
{
    int n = 0;
    if (!(a->hi > a->lo) || max <= 0) return 0;
    if (a->log) {
        /* The densest set of round values per decade that leaves room between the labels. */
        static const double mult[][9] = {
            {1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 5, 7, 0}, {1, 2, 5, 0}, {1, 3, 0}, {1, 0}};
        if (!(a->lo > 0) || !isfinite(a->hi)) return 0;
        /* Decades by their integer exponent: 10^k of a subnormal lo underflows to 0, and a
           loop that multiplied it by 10 never ended (a trend of a 5e-324 ns figure hung). */
        const int e0 = (int)floor(log10(a->lo)), e1 = (int)ceil(log10(a->hi));
        for (size_t m = 0; m < sizeof mult / sizeof mult[0]; m++) {
            n = 0;
            for (int e = e0; e <= e1 && n < max; e++) {
                const double d = pow(10.0, e);
                if (!(d > 0)) continue;
                for (int k = 0; k < 9 && mult[m][k] > 0 && n < max; k++) {
                    double v = d * mult[m][k];
                    if (v >= a->lo * (1 - 1e-9) && v <= a->hi * (1 + 1e-9)) ticks[n++] = v;
                }
            }
            bool roomy = true;
            for (int i = 1; i < n; i++)
                roomy &= (sg_chart_frac(a, ticks[i]) - sg_chart_frac(a, ticks[i - 1])) * px_len >=
                         min_px;
            if (roomy && n >= 2) return n;
        }
        if (n >= 2) return n;
        /* Less than a decade: fall back to linear ticks on the log axis. */
    }
    double step = sg_chart_nice_step((a->hi - a->lo) * min_px / px_len);
    n = 0;
    for (double v = ceil(a->lo / step - 1e-9) * step; v <= a->hi + step * 1e-9 && n < max;
         v += step)
        ticks[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    return n;
}

double sg_chart_text_width(const char *s, double font_px)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        chars += (*p & 0xC0) != 0x80; /* count UTF-8 characters, not bytes */
    return 0.6 * font_px * (double)chars;
}

void sg_chart_labels_init(sg_chart_labels *l, double w, double h)
{
    memset(l, 0, sizeof *l);
    l->w = w;
    l->h = h;
}

/* The box of a label drawn at (x, y) (baseline) with the anchor given. */
static void label_box(double x, double y, const char *text, double font_px, const char *anchor,
                      double box[4])
{
    double tw = sg_chart_text_width(text, font_px);
    double x0 = !strcmp(anchor, "end") ? x - tw : !strcmp(anchor, "middle") ? x - tw / 2 : x;
    box[0] = x0;
    box[1] = y - font_px * 0.8;
    box[2] = x0 + tw;
    box[3] = y + font_px * 0.25;
}

bool sg_chart_label_fits(const sg_chart_labels *l, double x, double y, const char *text,
                         double font_px, const char *anchor)
{
    double b[4];
    label_box(x, y, text, font_px, anchor, b);
    if (b[0] < 0 || b[1] < 0 || b[2] > l->w || b[3] > l->h) return false;
    for (int i = 0; i < l->n; i++) {
        const double *o = l->box[i];
        if (b[0] < o[2] + 2 && o[0] < b[2] + 2 && b[1] < o[3] && o[1] < b[3]) return false;
    }
    return true;
}

bool sg_chart_label(FILE *out, sg_chart_labels *l, double x, double y, const char *text,
                    double font_px, const char *anchor, const char *cls, bool force)
{
    if (!force && !sg_chart_label_fits(l, x, y, text, font_px, anchor)) return false;
    if (l->n < SG_CHART_MAX_LABELS) label_box(x, y, text, font_px, anchor, l->box[l->n++]);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"%s\"", x, y, font_px,
            anchor);
    if (cls) fprintf(out, " class=\"%s\"", cls);
    fputc('>', out);
    sg_fputs_xml_escaped(out, text);
    fputs("</text>\n", out);
    return true;
}

bool sg_chart_label_clamped(FILE *out, sg_chart_labels *l, double x, double y, const char *text,
                            double font_px, const char *cls)
{
    double tw = sg_chart_text_width(text, font_px);
    const char *anchor = "middle";
    if (x - tw / 2 < 1)
        x = 1, anchor = "start";
    else if (x + tw / 2 > l->w - 1)
        x = l->w - 1, anchor = "end";
    return sg_chart_label(out, l, x, y, text, font_px, anchor, cls, false);
}

/* "3.00 ms" -> "3 ms", "1.50 us" -> "1.5 us": round tick values need no trailing zeros. */
static void trim_zeros(char *buf)
{
    char *sp = strchr(buf, ' '), *dot = strchr(buf, '.');
    if (!sp || !dot || dot > sp) return;
    char *z = sp;
    while (z > dot + 1 && z[-1] == '0')
        z--;
    if (z == dot + 1) z = dot;
    memmove(z, sp, strlen(sp) + 1);
}

void sg_chart_tick_ns(double ns, char *buf, size_t len)
{
    if (ns == 0) {
        snprintf(buf, len, "0");
        return;
    }
    sg_format_ns(ns, buf, len);
    trim_zeros(buf);
}

void sg_chart_tick_ns_labels(const double *ticks, int n, char (*out)[32])
{
    bool same = false;
    double step = INFINITY, big = 0;
    for (int i = 0; i < n; i++) {
        sg_chart_tick_ns(ticks[i], out[i], sizeof out[i]);
        if (i && !strcmp(out[i], out[i - 1])) same = true;
        if (i && fabs(ticks[i] - ticks[i - 1]) > 0)
            step = fmin(step, fabs(ticks[i] - ticks[i - 1]));
        big = fmax(big, fabs(ticks[i]));
    }
    /* Ticks a few ns apart on a µs axis had all read "2 µs": then every label is written in
       the unit of the largest with as many decimals as the step needs. */
    if (!same || !isfinite(step) || !(big > 0)) return;
    const char *unit;
    const double scale = sg_ns_unit(big, &unit);
    int dec = (int)ceil(-log10(step / scale) - 1e-9);
    dec = dec < 0 ? 0 : dec > 9 ? 9 : dec;
    for (int i = 0; i < n; i++) {
        if (ticks[i] == 0) continue; /* "0" */
        /* every label with the same decimals, so the column reads as one scale */
        snprintf(out[i], sizeof out[i], "%.*f %s", dec, ticks[i] / scale, unit);
    }
}
