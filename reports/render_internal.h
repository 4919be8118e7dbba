/* Helpers shared by the renderers (reports/render_*.c only). */
#ifndef STAGEGATE_RENDER_INTERNAL_H
#define STAGEGATE_RENDER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "stagegate/gate.h"

/* predicate.<key> of a statement (NULL when absent or null). */
json_t *sg_render_pred(json_t *statement, const char *key);
const char *sg_render_subject_name(json_t *statement);
const char *sg_render_subject_sha256(json_t *statement);
/* A latency percentile ("p50", "p99", ...) from the bench JSON, in ms; false when absent. */
bool sg_render_latency_ms(json_t *latency, const char *pct, double *ms);
/* A fraction as a percentage with two decimals, or more where two would show a part as 100%
   or as 0% ("99.997%"), or as its limit (NAN: none) when it is not. */
void sg_render_percent(double frac, double limit, char *buf, size_t n);
/* The policy's shadow.min_agreement in the statement, or NAN. */
double sg_render_shadow_limit(json_t *statement);
/* Significant digits to show metric NAME's value v with: 4, or enough to tell it from the
   policy's threshold and from the baseline's value (NULL or non-number: none). */
int sg_render_metric_digits(json_t *statement, const char *name, double v, const json_t *baseline);
/* The bench histogram's buckets [[low_ns, count], ...] or NULL. */
json_t *sg_render_latency_buckets(json_t *latency);

/* Charts (reports/render_chart.c). */
typedef struct {
    double lo, hi; /* the axis range, in data units */
    bool log;      /* logarithmic: lo must be > 0 */
} sg_chart_axis;

/* Where v falls on the axis, 0 at lo and 1 at hi (outside [0, 1] beyond them). */
double sg_chart_frac(const sg_chart_axis *a, double v);
/* The smallest of 1, 2, 5 x 10^k at or above x. */
double sg_chart_nice_step(double x);
/* Round tick values on the axis at least min_px apart over px_len pixels; returns the count. */
int sg_chart_ticks(const sg_chart_axis *a, double px_len, double min_px, double *ticks, int max);
/* A round tick value in ns without trailing zeros: "3 ms", "1.5 \u00b5s". */
void sg_chart_tick_ns(double ns, char *buf, size_t len);
/* Every tick's label as sg_chart_tick_ns writes it, unless two would read the same: then all
   in one unit with the decimals the step between ticks needs ("2.001 µs"). */
void sg_chart_tick_ns_labels(const double *ticks, int n, char (*out)[32]);
/* Estimated width in px of a label (UTF-8) at this font size. */
double sg_chart_text_width(const char *s, double font_px);

#define SG_CHART_MAX_LABELS 128
/* The boxes of the labels drawn so far in one SVG of size w x h. */
typedef struct {
    double w, h;
    int n;
    double box[SG_CHART_MAX_LABELS][4]; /* x0, y0, x1, y1 */
} sg_chart_labels;

void sg_chart_labels_init(sg_chart_labels *l, double w, double h);
/* true when the label would lie inside the picture and clear of every label drawn so far. */
bool sg_chart_label_fits(const sg_chart_labels *l, double x, double y, const char *text,
                         double font_px, const char *anchor);
/* Draws the label (escaped) when it fits, or always with force; records its box. */
bool sg_chart_label(FILE *out, sg_chart_labels *l, double x, double y, const char *text,
                    double font_px, const char *anchor, const char *cls, bool force);
/* A label centred on x, moved inside the picture when it would stick out at either side. */
bool sg_chart_label_clamped(FILE *out, sg_chart_labels *l, double x, double y, const char *text,
                            double font_px, const char *cls);

/* The latency histogram and CDF of a bench JSON document, as two inline SVGs. */
void sg_render_latency_charts(FILE *out, json_t *latency);

#endif
