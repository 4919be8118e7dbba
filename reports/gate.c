/*
 * The gate decision. Every bound in the policy becomes one check with a value,
 * a limit and a sentence a reviewer can read without the policy at hand.
 * Baseline-relative limits use |baseline| so that "no more than 5% worse"
 * keeps its meaning for metrics that can be negative (r2_score).
 */
#include "stagegate/gate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sg_status sg_metric_values_set(sg_metric_values *mv, const char *name, double value)
{
    for (int i = 0; i < mv->n; i++)
        if (!strcmp(mv->name[i], name)) {
            mv->value[i] = value;
            return SG_OK;
        }
    if (mv->n == SG_GATE_MAX_VALUES || strlen(name) >= sizeof mv->name[0]) return SG_EINPUT;
    snprintf(mv->name[mv->n], sizeof mv->name[0], "%s", name);
    mv->value[mv->n++] = value;
    return SG_OK;
}

bool sg_metric_values_get(const sg_metric_values *mv, const char *name, double *value)
{
    if (!mv) return false;
    for (int i = 0; i < mv->n; i++)
        if (!strcmp(mv->name[i], name)) {
            *value = mv->value[i];
            return true;
        }
    return false;
}

static sg_status add_check(sg_gate_decision *d, sg_err *err)
{
    sg_gate_check *c = realloc(d->checks, (size_t)(d->n + 1) * sizeof *c);
    if (!c) return sg_errf(err, SG_ENOMEM, "gate: out of memory for checks");
    d->checks = c;
    memset(&c[d->n], 0, sizeof c[d->n]);
    c[d->n].value = NAN;
    c[d->n].limit = NAN;
    d->n++;
    return SG_OK;
}

__attribute__((format(printf, 2, 3))) static void set_text(sg_gate_check *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->text, sizeof c->text, fmt, ap);
    va_end(ap);
}

/*
 * value op limit. Limits derived from a baseline get a 1e-12 relative slack so
 * that binary rounding of b*(1-r) cannot fail a candidate that meets the bound
 * exactly on paper (MLflow moved to Decimal for the same reason).
 */
/* value against limit, allowing `slack` past it (0: exact). */
static bool holds(double value, double limit, bool greater_is_better, double slack)
{
    if (!isfinite(value) || isnan(limit)) return false;
    return greater_is_better ? value >= limit - slack : value <= limit + slack;
}

/* "<" or ">" for a failing comparison, ">=" or "<=" for a passing one. */
static const char *rel_sym(bool passed, bool gib)
{
    if (passed) return gib ? ">=" : "<=";
    return gib ? "<" : ">";
}

typedef enum { B_MIN_ABS, B_MIN_REL, B_MAX_REL_REG, B_MAX_ABS_REG } baseline_bound;

static void baseline_check(sg_gate_check *c, const sg_metric_rule *r, baseline_bound kind,
                           double amount, const sg_gate_inputs *in, bool have_value, double v)
{
    static const char *const suffix[] = {"min_absolute_change", "min_relative_change",
                                         "max_relative_regression", "max_absolute_regression"};
    bool gib = r->greater_is_better;
    snprintf(c->name, sizeof c->name, "%s.%s", r->name, suffix[kind]);
    snprintf(c->op, sizeof c->op, "%s", gib ? ">=" : "<=");
    c->value = have_value ? v : NAN;
    if (!in->baseline) {
        c->skipped = r->optional;
        c->passed = r->optional;
        if (r->optional)
            set_text(c, "%s skipped: no baseline model given (optional)", c->name);
        else
            set_text(c, "%s needs a baseline model (--baseline) and none was given", c->name);
        return;
    }
    double b;
    if (!sg_metric_values_get(in->baseline, r->name, &b) || !isfinite(b)) {
        set_text(c, "%s: the baseline model has no %s value", c->name, r->name);
        return;
    }
    if (!have_value) {
        set_text(c, "%s was not measured for the candidate (not defined for this model or dataset)",
                 r->name);
        return;
    }
    /* Sign of the allowed move: improvements point along the good direction, regressions against
     * it. */
    double good = gib ? 1.0 : -1.0;
    const double move = kind == B_MIN_REL || kind == B_MAX_REL_REG ? amount * fabs(b) : amount;
    const double limit = kind == B_MIN_ABS || kind == B_MIN_REL ? b + good * move : b - good * move;
    c->limit = limit;
    /* The slack is relative to the operands of the limit's arithmetic (1e-12 of the largest),
       so it covers their binary rounding at any scale: an MSE of 1e-13 is held to its
       baseline as strictly as one of 1e3. */
    c->passed = holds(v, limit, gib, 1e-12 * fmax(fabs(b), fmax(fabs(move), fabs(limit))));
    const char *sym = rel_sym(c->passed, gib);
    /* Digits enough to tell the value from the limit it was held to. */
    const int p = sg_digits_apart(v, limit);
    /* When four digits would not show the value apart from the limit, the limit is written
       out too ("accuracy 0.92241 < baseline 0.91341 + 0.009 (= 0.92241...)"). */
    char lim[64] = "";
    if (p > 4) snprintf(lim, sizeof lim, " (= %.*g)", p, limit);
    if (kind == B_MIN_REL || kind == B_MAX_REL_REG) {
        double factor = (kind == B_MIN_REL ? 1.0 + good * amount : 1.0 - good * amount);
        /* digits enough to show the factor is not 1 (r = 1e-5 read "1 x baseline") */
        const int fp = factor == 1.0 ? 4 : sg_digits_apart(factor, 1.0);
        if (b >= 0)
            set_text(c, "%s %.*g %s %.*g x baseline %.*g%s", r->name, p, v, sym,
                     fp > 4 ? fp : 4, factor, p, b, lim);
        else
            set_text(c, "%s %.*g %s baseline %.*g %s %.4g%% of |baseline| (%.*g)", r->name, p, v,
                     sym, p, b, (kind == B_MIN_REL) == gib ? "+" : "-", amount * 100.0, p, limit);
    } else {
        set_text(c, "%s %.*g %s baseline %.*g %s %.4g%s", r->name, p, v, sym, p, b,
                 (kind == B_MIN_ABS) == gib ? "+" : "-", amount, lim);
    }
}

static int metric_checks(const sg_metric_rule *r, const sg_gate_inputs *in, sg_gate_decision *d,
                         sg_err *err)
{
    double v = NAN;
    bool have = sg_metric_values_get(in->candidate, r->name, &v) && isfinite(v);
    int rc;
    if (r->has_threshold) {
        if ((rc = add_check(d, err))) return rc;
        sg_gate_check *c = &d->checks[d->n - 1];
        snprintf(c->name, sizeof c->name, "%s.threshold", r->name);
        snprintf(c->op, sizeof c->op, "%s", r->greater_is_better ? ">=" : "<=");
        c->limit = r->threshold;
        c->value = have ? v : NAN;
        /* The same relative slack as a baseline's limits: an F1 of exactly 0.8 on paper
           (TP 8, FP 1, FN 3) computes as 0.7999999999999999, scikit-learn's too, and had
           failed `f1 >= 0.8`; a weighted accuracy of 0.9 came out one unit in the last
           place low. */
        c->passed =
            have && holds(v, r->threshold, r->greater_is_better, 1e-12 * fabs(r->threshold));
        if (!have)
            set_text(
                c, "%s was not measured for the candidate (not defined for this model or dataset)",
                r->name);
        else
            set_text(c, "%s %.*g %s %.*g", r->name, sg_digits_apart(v, r->threshold), v,
                     rel_sym(c->passed, r->greater_is_better), sg_digits_limit(v, r->threshold),
                     r->threshold);
    }
    const struct {
        bool on;
        baseline_bound kind;
        double amount;
    } bounds[] = {
        {r->has_min_absolute_change, B_MIN_ABS, r->min_absolute_change},
        {r->has_min_relative_change, B_MIN_REL, r->min_relative_change},
        {r->has_max_relative_regression, B_MAX_REL_REG, r->max_relative_regression},
        {r->has_max_absolute_regression, B_MAX_ABS_REG, r->max_absolute_regression},
    };
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        if (!bounds[i].on) continue;
        if ((rc = add_check(d, err))) return rc;
        baseline_check(&d->checks[d->n - 1], r, bounds[i].kind, bounds[i].amount, in, have, v);
    }
    return SG_OK;
}

/* Each latency and size in the unit that suits it: "330 ns", "1.25 ms", "6.50 KiB". */
static void fmt_ms(char *buf, size_t n, double ms)
{
    sg_format_ns(ms * 1e6, buf, n);
}

static void fmt_mb(char *buf, size_t n, double mib)
{
    sg_format_bytes(mib * 1048576.0, buf, n);
}

/* A value and its limit, each in its human unit: when three digits show them alike but
   they differ ("1.00 MiB > 1.00 MiB"), both are written with the digits that tell them
   apart, in the unit that suits the larger (ns to s for ms, B to TiB for MiB: 5.000e-05 ms
   had been printed for 50.00 ns). */
static void apart(char *v, size_t vn, double value, char *lim, size_t ln, double limit,
                  const char *unit)
{
    if (strcmp(v, lim) != 0 || value == limit) return;
    const bool ms = !strcmp(unit, "ms");
    const double base = ms ? 1e6 : 1048576.0; /* ms to ns, MiB to bytes */
    sg_format_apart(value * base, limit * base, ms, true, v, vn, lim, ln);
}

static int latency_check(const sg_gate_policy *p, const sg_gate_inputs *in, sg_gate_decision *d,
                         sg_err *err)
{
    int rc = add_check(d, err);
    if (rc) return rc;
    sg_gate_check *c = &d->checks[d->n - 1];
    const sg_gate_latency *l = in->latency;
    int pct = p->latency_percentile;
    snprintf(c->name, sizeof c->name, "latency.p%d", pct);
    snprintf(c->op, sizeof c->op, "<=");
    c->limit = p->latency_max_ms;
    if (!l || !l->measured) {
        set_text(c, "%s p%d was not measured: %s", p->latency_scenario, pct,
                 l && l->reason[0] ? l->reason : "no latency run");
        return SG_OK;
    }
    if (strcmp(l->scenario, p->latency_scenario)) {
        set_text(c, "latency was measured in scenario %s but the policy asks for %s", l->scenario,
                 p->latency_scenario);
        return SG_OK;
    }
    double est = pct == 99 ? l->p99_ms : l->p90_ms;
    int64_t need = pct == 99 ? l->p99_min_queries : l->p90_min_queries;
    if (!isfinite(est)) {
        char needs[64] = "", q[32], n[32];
        sg_format_count((double)need, n, sizeof n);
        sg_format_count((double)l->queries, q, sizeof q);
        if (need > 0) snprintf(needs, sizeof needs, " (needs at least %s)", n);
        set_text(c,
                 "%s p%d: a run of %s queries is too short for the early-stopping estimate%s%s%s",
                 l->scenario, pct, q, needs, l->reason[0] ? ": " : "", l->reason);
        return SG_OK;
    }
    c->value = est;
    if (l->invalid[0]) {
        set_text(c, "%s run INVALID: %s", l->scenario, l->invalid);
        return SG_OK;
    }
    c->passed = holds(est, p->latency_max_ms, false, 0);
    char v[48], lim[48], q[32];
    fmt_ms(v, sizeof v, est);
    fmt_ms(lim, sizeof lim, p->latency_max_ms);
    apart(v, sizeof v, est, lim, sizeof lim, p->latency_max_ms, "ms");
    sg_format_count((double)l->queries, q, sizeof q);
    /* A run cut short (the sample buffer full before the policy's duration) says so in the
       signed text and every rendering: the estimate stands on its queries, the length the
       policy asked for was not run (it had read as a full run). */
    set_text(c, "%s p%d %s %s %s (early-stopping estimate over %s queries%s%s)", l->scenario, pct,
             v, rel_sym(c->passed, false), lim, q, l->cut_short[0] ? "; run cut short: " : "",
             l->cut_short);
    return SG_OK;
}

static int memory_check(const char *name, const char *what, double value, double limit,
                        bool measured, sg_gate_decision *d, sg_err *err)
{
    int rc = add_check(d, err);
    if (rc) return rc;
    sg_gate_check *c = &d->checks[d->n - 1];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->op, sizeof c->op, "<=");
    c->limit = limit;
    if (!measured) {
        set_text(c, "%s was not measured", what);
        return SG_OK;
    }
    c->value = value;
    c->passed = holds(value, limit, false, 0);
    char v[48], lim[48];
    fmt_mb(v, sizeof v, value);
    fmt_mb(lim, sizeof lim, limit);
    apart(v, sizeof v, value, lim, sizeof lim, limit, "MiB");
    set_text(c, "%s %s %s %s", what, v, rel_sym(c->passed, false), lim);
    return SG_OK;
}

static int shadow_check(const sg_gate_policy *p, const sg_gate_inputs *in, sg_gate_decision *d,
                        sg_err *err)
{
    int rc = add_check(d, err);
    if (rc) return rc;
    sg_gate_check *c = &d->checks[d->n - 1];
    snprintf(c->name, sizeof c->name, "shadow.agreement");
    snprintf(c->op, sizeof c->op, ">=");
    c->limit = p->shadow_min_agreement;
    const sg_shadow_result *s = in->shadow;
    if (!in->baseline || !s || !s->done) {
        c->skipped = c->passed = p->shadow_optional && !in->baseline;
        if (c->skipped)
            set_text(c, "shadow.agreement skipped: no baseline model given (optional)");
        else if (!in->baseline)
            set_text(c, "shadow.agreement needs a baseline model (--baseline) and none was given");
        else
            set_text(c, "shadow.agreement: the shadow comparison did not run");
        return SG_OK;
    }
    c->value = s->agreement;
    c->passed = s->rows > 0 && holds(s->agreement, c->limit, true, 0);
    char agreeing[32], rows[32];
    sg_format_count((double)s->agreeing, agreeing, sizeof agreeing);
    sg_format_count((double)s->rows, rows, sizeof rows);
    const int dp = sg_digits_apart(s->agreement, c->limit);
    if (s->classification)
        set_text(c, "shadow agreement %.*g %s %.*g (%s of %s rows predict the baseline's label)",
                 dp, s->agreement, rel_sym(c->passed, true), dp, c->limit, agreeing, rows);
    else {
        /* the tolerance as applied, to the digit: %g had shown 0.2499999 as 0.25 */
        char at[32], rt[32];
        sg_format_shortest(s->abs_tolerance, at, sizeof at);
        sg_format_shortest(s->rel_tolerance, rt, sizeof rt);
        set_text(c, "shadow agreement %.*g %s %.*g (%s of %s rows within %s + %s x |baseline|)", dp,
                 s->agreement, rel_sym(c->passed, true), dp, c->limit, agreeing, rows, at, rt);
    }
    return SG_OK;
}

sg_status sg_gate_evaluate(const sg_gate_policy *p, const sg_gate_inputs *in, sg_gate_decision *out,
                     sg_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = SG_OK;
    for (int i = 0; i < p->n_metrics && !rc; i++)
        rc = metric_checks(&p->metrics[i], in, out, err);
    if (!rc && p->has_latency) rc = latency_check(p, in, out, err);
    const sg_gate_memory *m = in->memory;
    bool mem = m && m->measured;
    if (!rc && p->has_memory && p->has_max_rss_mb)
        rc = memory_check("memory.max_rss_mb", "peak RSS", mem ? m->peak_rss_mb : NAN,
                          p->max_rss_mb, mem, out, err);
    if (!rc && p->has_memory && p->has_max_model_mb)
        rc = memory_check("memory.max_model_mb", "model size", mem ? m->model_mb : NAN,
                          p->max_model_mb, mem, out, err);
    if (!rc && p->has_shadow) rc = shadow_check(p, in, out, err);
    if (rc) {
        sg_gate_decision_clear(out);
        return rc;
    }
    out->passed = true;
    for (int i = 0; i < out->n; i++) {
        if (!out->checks[i].passed) {
            out->passed = false;
            out->n_failed++;
        }
        if (out->checks[i].skipped) out->n_skipped++;
    }
    return SG_OK;
}

void sg_gate_decision_clear(sg_gate_decision *d)
{
    free(d->checks);
    memset(d, 0, sizeof *d);
}

json_t *sg_gate_checks_json(const sg_gate_decision *d)
{
    json_t *arr = json_array();
    for (int i = 0; i < d->n; i++) {
        const sg_gate_check *c = &d->checks[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(c->name));
        json_object_set_new(o, "passed", json_boolean(c->passed));
        json_object_set_new(o, "skipped", json_boolean(c->skipped));
        json_object_set_new(o, "value", isfinite(c->value) ? json_real(c->value) : json_null());
        json_object_set_new(o, "limit", isfinite(c->limit) ? json_real(c->limit) : json_null());
        json_object_set_new(o, "op", json_string(c->op));
        json_object_set_new(o, "text", json_string(c->text));
        json_array_append_new(arr, o);
    }
    return arr;
}

static bool is_metric_check(const char *name)
{
    return strncmp(name, "latency.", 8) && strncmp(name, "memory.", 7) &&
           strncmp(name, "shadow.", 7);
}

void sg_gate_decision_add_time(sg_gate_decision *d, const char *prefix, double seconds)
{
    int n = 0;
    for (int i = 0; i < d->n; i++)
        n += *prefix ? !strncmp(d->checks[i].name, prefix, strlen(prefix))
                     : is_metric_check(d->checks[i].name);
    for (int i = 0; n && i < d->n; i++)
        if (*prefix ? !strncmp(d->checks[i].name, prefix, strlen(prefix))
                    : is_metric_check(d->checks[i].name))
            d->checks[i].seconds += seconds / n;
}
