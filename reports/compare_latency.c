/*
 * Latency verdicts of `stagegate compare`, judged against the variation between runs.
 *
 * The queries inside one run are not independent samples of "the model's latency":
 * most of the variation is between runs (clock frequency, neighbours on a shared
 * host, cache and page placement, which core the OS gives). A U test over the
 * ~10^6 queries of two runs therefore finds any two runs "different". So, as
 * Google Benchmark's compare.py does, the test runs over repetitions: per
 * percentile, the repetition values of OLD against those of NEW (Mann-Whitney U,
 * exact for small samples). A percentile is regressed / improved only when
 *   - the U test rejects "same distribution" at alpha, and
 *   - the medians moved by more than the relative floor (derived from A/A runs,
 *     docs/nightly.md), and by more than either run's own spread (max - min over
 *     its repetitions): a change must be larger than the noise the runs show, and
 *   - the move exceeds the clock's resolution and the tail has enough queries, and
 *   - every repetition was timed for long enough (SG_COMPARE_MIN_REPETITION_S) that runs
 *     apart in time can differ at all: repetitions of a millisecond, back to back, share one
 *     moment of the machine, so their spread does not stand for the noise between runs.
 * With one repetition on a side (or too few for the U test to reach alpha at all),
 * noise cannot be separated from change: only a move beyond the single-run floor
 * counts. A recorded history of the same version on the same fingerprint, when
 * given, is a further noise band: a value inside it is unchanged.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_internal.h"
#include "stagegate/json.h"

static const char *const pct_keys[] = {"p50", "p90", "p99", "p999"};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99.9"};
static const double pct_q[] = {0.50, 0.90, 0.99, 0.999};
static const double default_floor[] = {SG_COMPARE_FLOOR_P50, SG_COMPARE_FLOOR_P90,
                                       SG_COMPARE_FLOOR_P99, SG_COMPARE_FLOOR_P999};
static const double default_single_floor[] = {
    SG_COMPARE_SINGLE_FLOOR_P50, SG_COMPARE_SINGLE_FLOOR_P90, SG_COMPARE_SINGLE_FLOOR_P99,
    SG_COMPARE_SINGLE_FLOOR_P999};

/* The run's own (merged) percentile from latency_ns, else nearest rank over its histogram. */
static double merged_percentile(const sg_compare_run *r, int k)
{
    json_t *v = json_object_get(json_object_get(r->latency, "latency_ns"), pct_keys[k]);
    if (json_is_number(v)) return json_number_value(v);
    int64_t total = 0, acc = 0;
    for (size_t i = 0; i < r->n_bins; i++)
        total += r->bins[i].count;
    int64_t rank = (int64_t)ceil(pct_q[k] * (double)total);
    for (size_t i = 0; i < r->n_bins; i++)
        if ((acc += r->bins[i].count) >= rank && rank > 0) return r->bins[i].value;
    return NAN;
}

/*
 * LoadGen's early-stopping bound: the fewest queries for which percentile q can be claimed at
 * 99% confidence with one query above it (64 for p90, 662 for p99, about 6.6k for p99.9).
 */
static int64_t tail_min_queries(double q)
{
    double miss = 1 - q;
    for (int64_t n = 2; n < 100000000; n++) {
        double p0 = pow(q, (double)n), p1 = (double)n * miss * pow(q, (double)(n - 1));
        if (p0 + p1 <= 0.01) return n;
    }
    return INT64_MAX;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One side of a percentile: its repetition values, their median and range. */
typedef struct {
    double v[1000];
    int n, excluded;
    int64_t min_queries; /* fewest queries in a used repetition (-1 unknown) */
    double median, range;
} side;

static void side_load(const sg_compare_run *r, int k, bool discount, side *s)
{
    memset(s, 0, sizeof *s);
    s->min_queries = -1;
    if (r->n_reps == 0) {
        s->v[s->n++] = merged_percentile(r, k);
        json_t *q = json_object_get(r->latency, "queries");
        int64_t total = 0;
        for (size_t i = 0; i < r->n_bins; i++)
            total += r->bins[i].count;
        s->min_queries = json_is_integer(q) ? json_integer_value(q) : r->n_bins ? total : -1;
    } else {
        int clean = 0;
        for (int i = 0; i < r->n_reps; i++)
            clean += !r->rep_noisy[i];
        /* Noisy repetitions are left out only while enough clean ones remain to keep the test's
         * power: judging 3 clean against 5 makes a shifted pair of runs look "significant". */
        bool skip_noisy =
            discount && clean >= SG_COMPARE_MIN_CLEAN_REPETITIONS && clean < r->n_reps;
        for (int i = 0; i < r->n_reps && s->n < 1000; i++) {
            if (skip_noisy && r->rep_noisy[i]) {
                s->excluded++;
                continue;
            }
            s->v[s->n++] = r->rep_values[(size_t)i * SG_COMPARE_PERCENTILES + (size_t)k];
            if (s->min_queries < 0 || r->rep_queries[i] < s->min_queries)
                s->min_queries = r->rep_queries[i];
        }
    }
    double sorted[1000];
    memcpy(sorted, s->v, (size_t)s->n * sizeof *sorted);
    qsort(sorted, (size_t)s->n, sizeof *sorted, cmp_dbl);
    s->median = s->n % 2 ? sorted[s->n / 2] : (sorted[s->n / 2 - 1] + sorted[s->n / 2]) / 2;
    s->range = sorted[s->n - 1] - sorted[0];
}

static json_t *values_json(const side *s)
{
    json_t *a = json_array();
    for (int i = 0; i < s->n; i++)
        json_array_append_new(a, json_real(s->v[i]));
    return a;
}

/* [min, max] of percentile k over the history's runs; false when too few runs carry it. */
static bool history_band(const json_t *history, int k, double *lo, double *hi, int *runs)
{
    size_t i;
    json_t *run;
    *runs = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    json_array_foreach(json_object_get(history, "runs"), i, run)
    {
        json_t *v = json_object_get(json_object_get(json_object_get(run, "figures"), "latency_ns"),
                                    pct_keys[k]);
        if (!json_is_number(v)) continue;
        double x = json_number_value(v);
        *lo = fmin(*lo, x);
        *hi = fmax(*hi, x);
        (*runs)++;
    }
    return *runs >= SG_COMPARE_HISTORY_MIN_RUNS;
}

typedef struct {
    const char *verdict;
    char why[320];
} judgement;

static void verdict_by_direction(judgement *j, double ratio, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verdict_by_direction(judgement *j, double ratio, const char *fmt, ...)
{
    j->verdict = ratio > 1 ? "regressed" : "improved";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof j->why, fmt, ap);
    va_end(ap);
}

/* One repetition on a side, or too few for the U test: only a move beyond the fixed floor. */
static void judge_few(judgement *j, const side *a, const side *b, double ratio, double p_min,
                      double floor)
{
    char head[160];
    if (a->n < 2 || b->n < 2)
        snprintf(head, sizeof head,
                 "one repetition on a side: run-to-run noise cannot be separated from change");
    else
        snprintf(head, sizeof head,
                 "too few repetitions for the U test (%d vs %d; its smallest p-value is %.2g)",
                 a->n, b->n, p_min);
    double move = fabs(ratio - 1);
    if (move > floor)
        verdict_by_direction(j, ratio, "%s; moved %.1f%%, beyond the %.0f%% floor for such runs",
                             head, 100 * move, 100 * floor);
    else
        snprintf(j->why, sizeof j->why, "%s; within the %.0f%% floor for such runs", head,
                 100 * floor);
}

/* The shorter known timed window of the two runs (seconds), negative when neither says. */
static double shortest_window(const sg_compare_run *o, const sg_compare_run *n)
{
    double a = o->shortest_timed_s, b = n->shortest_timed_s;
    return a < 0 ? b : b < 0 ? a : fmin(a, b);
}

static json_t *percentile_row(const sg_compare_run *o, const sg_compare_run *n, int k,
                              const sg_compare_options *opt, double clock_ns, double min_window,
                              int *n_regressed)
{
    side a, b;
    side_load(o, k, opt->discount_noisy, &a);
    side_load(n, k, opt->discount_noisy, &b);
    /* Leaving noisy repetitions out must not cost the U test its power: if what remains can no
     * longer reach alpha, judge with all of them (the counts still say how many were noisy). */
    if ((a.excluded || b.excluded) &&
        sg_mannwhitney_min_p((size_t)a.n, (size_t)b.n) >= opt->alpha) {
        side_load(o, k, false, &a);
        side_load(n, k, false, &b);
    }
    double ratio =
        a.median > 0 && isfinite(a.median) && isfinite(b.median) ? b.median / a.median : NAN;
    double floor = opt->noise_floor >= 0 ? opt->noise_floor : default_floor[k];
    double single_floor =
        opt->single_run_floor >= 0 ? opt->single_run_floor : default_single_floor[k];
    double spread = fmax(a.range, b.range);
    sg_mw_result mw = {0};
    bool exact = false;
    sg_err ignored;
    bool have_u = isfinite(ratio) && sg_mannwhitney_values(a.v, (size_t)a.n, b.v, (size_t)b.n, &mw,
                                                           &exact, &ignored) == SG_OK;
    double p_min = sg_mannwhitney_min_p((size_t)a.n, (size_t)b.n);
    int64_t need = tail_min_queries(pct_q[k]);
    judgement j = {"unchanged", ""};
    double window = shortest_window(o, n);
    if (!isfinite(ratio))
        snprintf(j.why, sizeof j.why, "no value to compare");
    else if (window >= 0 && window < min_window)
        snprintf(j.why, sizeof j.why, "not judged: repetitions timed for %.3g ms, under %.3g s",
                 1e3 * window, min_window);
    else if (fabs(b.median - a.median) < clock_ns)
        snprintf(j.why, sizeof j.why, "within the clock's resolution (%.0f ns)", clock_ns);
    else if ((a.min_queries >= 0 && a.min_queries < need) ||
             (b.min_queries >= 0 && b.min_queries < need))
        snprintf(j.why, sizeof j.why, "too few queries for %s (needs %lld per repetition)",
                 pct_names[k], (long long)need);
    else if (a.n < 2 || b.n < 2 || p_min >= opt->alpha)
        judge_few(&j, &a, &b, ratio, p_min, single_floor);
    else if (fabs(ratio - 1) <= floor) /* "moved by more than the floor" is what counts, as for
                                          the single-run floor: a move of exactly it had been
                                          judged here and not there */
        snprintf(j.why, sizeof j.why, "within the noise floor (%.0f%%)", 100 * floor);
    else if (fabs(b.median - a.median) <= spread)
        snprintf(j.why, sizeof j.why,
                 "within the spread between repetitions (%.0f ns, max - min of either run)",
                 spread);
    else if (!have_u || mw.p_value >= opt->alpha)
        snprintf(j.why, sizeof j.why, "not significant (U test over %d vs %d repetitions)", a.n,
                 b.n);
    else
        verdict_by_direction(&j, ratio, "significant (U test over %d vs %d repetitions)", a.n, b.n);
    double lo, hi, nv = merged_percentile(n, k);
    int runs = 0;
    bool band = opt->history && history_band(opt->history, k, &lo, &hi, &runs);
    if (band && strcmp(j.verdict, "unchanged") && nv >= lo && nv <= hi) {
        j.verdict = "unchanged";
        snprintf(j.why, sizeof j.why,
                 "inside the history band [%.0f, %.0f] ns of %d earlier runs of this version on "
                 "this fingerprint",
                 lo, hi, runs);
    }
    if (!strcmp(j.verdict, "regressed")) (*n_regressed)++;
    json_t *r = json_object();
    json_object_set_new(r, "percentile", json_string(pct_names[k]));
    sg_json_set_real(r, "old_ns", a.median);
    sg_json_set_real(r, "new_ns", b.median);
    sg_json_set_real(r, "ratio", ratio);
    json_object_set_new(r, "verdict", json_string(j.verdict));
    json_object_set_new(r, "reason", json_string(j.why));
    json_object_set_new(r, "p_value", have_u ? json_real(mw.p_value) : json_null());
    json_object_set_new(r, "test", json_string(!have_u ? "none" : exact ? "exact" : "asymptotic"));
    json_object_set_new(r, "old_repetitions", values_json(&a));
    json_object_set_new(r, "new_repetitions", values_json(&b));
    sg_json_set_real(r, "old_spread", a.median > 0 ? a.range / a.median : NAN);
    sg_json_set_real(r, "new_spread", b.median > 0 ? b.range / b.median : NAN);
    sg_json_set_real(r, "spread_ns", spread);
    bool few = a.n < 2 || b.n < 2 || p_min >= opt->alpha;
    sg_json_set_real(r, "floor", few ? single_floor : floor);
    json_object_set_new(r, "single_run_floor_applied", json_boolean(few));
    json_t *ex = json_object();
    json_object_set_new(ex, "old", json_integer(a.excluded));
    json_object_set_new(ex, "new", json_integer(b.excluded));
    json_object_set_new(r, "noisy_excluded", ex);
    if (band) {
        json_t *h = json_object();
        sg_json_set_real(h, "min_ns", lo);
        sg_json_set_real(h, "max_ns", hi);
        json_object_set_new(h, "runs", json_integer(runs));
        sg_json_set_real(h, "new_merged_ns", nv);
        json_object_set_new(r, "history_band", h);
    }
    return r;
}

/* The within-run U test over the two merged histograms: informative only (see the header). */
static void histogram_test(const sg_compare_run *o, const sg_compare_run *n, json_t *doc)
{
    sg_mw_result mw;
    sg_err e;
    if (o->n_bins && n->n_bins &&
        sg_mannwhitney_binned(o->bins, o->n_bins, n->bins, n->n_bins, &mw, &e) == SG_OK) {
        json_t *m = json_object();
        json_object_set_new(m, "u", json_real(mw.u));
        sg_json_set_real(m, "z", mw.z);
        json_object_set_new(m, "p_value", json_real(mw.p_value));
        json_object_set_new(m, "n_old", json_integer(mw.n_old));
        json_object_set_new(m, "n_new", json_integer(mw.n_new));
        json_object_set_new(doc, "mann_whitney", m);
    } else {
        json_object_set_new(doc, "mann_whitney", json_null());
    }
}

static json_t *noisy_json(const sg_compare_run *r)
{
    json_t *o = json_object();
    int k = 0;
    for (int i = 0; i < r->n_reps; i++)
        k += r->rep_noisy[i];
    json_object_set_new(o, "repetitions", json_integer(r->n_reps ? r->n_reps : 1));
    json_object_set_new(o, "noisy", json_integer(k));
    return o;
}

json_t *sg_compare_latency(const sg_compare_run *o, const sg_compare_run *n,
                           const sg_compare_options *opt, json_t *doc, int *n_regressed,
                           sg_err *err)
{
    (void)err;
    json_t *rows = json_array();
    if (!o->latency || !n->latency) {
        json_object_set_new(doc, "mann_whitney", json_null());
        return rows;
    }
    histogram_test(o, n, doc);
    json_t *reps = json_object();
    json_object_set_new(reps, "old", noisy_json(o));
    json_object_set_new(reps, "new", noisy_json(n));
    json_object_set_new(doc, "repetitions", reps);
    double floor_ns = opt->abs_noise_floor_ns;
    if (floor_ns < 0) {
        double oa =
            json_number_value(json_object_get(json_object_get(o->latency, "clock"), "overhead_ns"));
        double ob =
            json_number_value(json_object_get(json_object_get(n->latency, "clock"), "overhead_ns"));
        floor_ns = oa > ob ? oa : ob;
        if (!(floor_ns > 0) || !isfinite(floor_ns)) floor_ns = 0;
    }
    sg_json_set_real(doc, "abs_noise_floor_ns", floor_ns);
    double min_window =
        opt->min_repetition_s >= 0 ? opt->min_repetition_s : SG_COMPARE_MIN_REPETITION_S;
    sg_json_set_real(doc, "min_repetition_s", min_window);
    json_t *win = json_object();
    json_object_set_new(win, "old",
                        o->shortest_timed_s >= 0 ? json_real(o->shortest_timed_s) : json_null());
    json_object_set_new(win, "new",
                        n->shortest_timed_s >= 0 ? json_real(n->shortest_timed_s) : json_null());
    json_object_set_new(doc, "shortest_repetition_s", win);
    for (int k = 0; k < SG_COMPARE_PERCENTILES; k++)
        json_array_append_new(rows,
                              percentile_row(o, n, k, opt, floor_ns, min_window, n_regressed));
    return rows;
}
