/*
 * Gate policy parsing. jansson reports syntax errors with line:column but keeps
 * no positions for values, so semantic errors (wrong type, unknown key, bad
 * range) re-scan the already-valid text for the offending field path to give
 * the user a line:column as well.
 */
#include "stagegate/policy.h"
#include "stagegate/scenario.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    bool greater_is_better;
    double lo, hi; /* the values the metric can take: a threshold outside is vacuous or unmeetable */
} metric_dir;

/* Losses and errors are lower-is-better; scores are higher-is-better (MLflow's defaults). */
static const metric_dir known_metrics[] = {
    {"accuracy", true, 0, 1},
    {"precision", true, 0, 1},
    {"recall", true, 0, 1},
    {"f1", true, 0, 1},
    {"roc_auc", true, 0, 1},
    {"average_precision", true, 0, 1},
    /* probabilities are clipped to [DBL_EPSILON, 1 - DBL_EPSILON] (sklearn's eps for
       float64): no row's loss is above -log(2^-52) = 52 ln 2 = 36.04, and none below a
       perfect row's -log(1 - 2^-52) = 2.2e-16: a threshold of 0 would fail every model */
    {"log_loss", false, 0x1p-52, 52 * M_LN2},
    {"f1_macro", true, 0, 1},
    {"f1_micro", true, 0, 1},
    {"f1_weighted", true, 0, 1},
    {"example_count", true, 1, INFINITY}, /* an empty set is refused before any check */
    {"mean_absolute_error", false, 0, INFINITY},
    {"mean_squared_error", false, 0, INFINITY},
    {"root_mean_squared_error", false, 0, INFINITY},
    {"r2_score", true, -INFINITY, 1},
    {"max_error", false, 0, INFINITY},
};
#define N_KNOWN (sizeof known_metrics / sizeof known_metrics[0])

const char *const sg_policy_metric_names[] = {
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "average_precision",
    "log_loss",
    "f1_macro",
    "f1_micro",
    "f1_weighted",
    "example_count",
    "mean_absolute_error",
    "mean_squared_error",
    "root_mean_squared_error",
    "r2_score",
    "max_error",
    NULL,
};

static const metric_dir *known_metric(const char *name)
{
    for (size_t i = 0; i < N_KNOWN; i++)
        if (!strcmp(name, known_metrics[i].name)) return &known_metrics[i];
    return NULL;
}

bool sg_metric_direction(const char *name, bool *greater_is_better)
{
    const metric_dir *m = known_metric(name);
    if (m) *greater_is_better = m->greater_is_better;
    return m != NULL;
}

/* ---- locating a field path in valid JSON text, for line:column in errors ---- */

typedef struct {
    const char *s;
    size_t n, i;
} scan;

static void skip_ws(scan *sc)
{
    while (sc->i < sc->n && strchr(" \t\r\n", sc->s[sc->i]) && sc->s[sc->i])
        sc->i++;
}

static void skip_string(scan *sc)
{
    sc->i++; /* opening quote */
    while (sc->i < sc->n && sc->s[sc->i] != '"')
        sc->i += sc->s[sc->i] == '\\' ? 2 : 1;
    sc->i++;
}

static void skip_value(scan *sc)
{
    skip_ws(sc);
    if (sc->i >= sc->n) return;
    char c = sc->s[sc->i];
    if (c == '"') {
        skip_string(sc);
    } else if (c == '{' || c == '[') {
        int depth = 0;
        while (sc->i < sc->n) {
            c = sc->s[sc->i];
            if (c == '"') {
                skip_string(sc);
                continue;
            }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') depth--;
            sc->i++;
            if (depth == 0) break;
        }
    } else {
        while (sc->i < sc->n && !strchr(",}] \t\r\n", sc->s[sc->i]))
            sc->i++;
    }
}

/* Whether the key written at raw (its text between the quotes, escapes as written) is want:
   "me\u0074rics" is metrics, as the parser read it. */
static bool key_is(const char *raw, size_t len, const char *want)
{
    if (!memchr(raw, '\\', len)) return strlen(want) == len && !memcmp(raw, want, len);
    json_t *k = json_loadb(raw - 1, len + 2, JSON_DECODE_ANY, NULL);
    bool same = json_is_string(k) && !strcmp(json_string_value(k), want);
    json_decref(k);
    return same;
}

/* At '{': finds path[0] in this object; *best is the deepest position matched so far. */
static void find_path(scan *sc, const char *const *path, int depth, size_t *best)
{
    sc->i++;
    for (;;) {
        skip_ws(sc);
        if (sc->i >= sc->n || sc->s[sc->i] != '"') return;
        size_t key_start = sc->i + 1;
        skip_string(sc);
        size_t key_len = sc->i - key_start - 1;
        skip_ws(sc);
        if (sc->i >= sc->n || sc->s[sc->i] != ':') return;
        sc->i++;
        skip_ws(sc);
        if (key_is(sc->s + key_start, key_len, path[0])) {
            /* Point at the key for the last component: that is what the user wrote wrong. */
            *best = depth == 1 ? key_start - 1 : sc->i;
            if (depth > 1 && sc->i < sc->n && sc->s[sc->i] == '{')
                find_path(sc, path + 1, depth - 1, best);
            return;
        }
        skip_value(sc);
        skip_ws(sc);
        if (sc->i >= sc->n || sc->s[sc->i] != ',') return;
        sc->i++;
    }
}

typedef struct {
    const char *source;
    const char *text;
    size_t len;
    sg_err *err;
} pctx;

/* Formats "<file>:<line>:<col>: <path> <message>" for the field path a.b.c. */
__attribute__((format(printf, 4, 5))) static int field_err(pctx *c, const char *const *path,
                                                           int depth, const char *fmt, ...)
{
    char msg[700], dotted[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (int d = 0; d < depth; d++) {
        size_t l = strlen(dotted);
        snprintf(dotted + l, sizeof dotted - l, "%s%s", d ? "." : "", path[d]);
    }
    size_t pos = 0;
    scan sc = {c->text, c->len, 0};
    skip_ws(&sc);
    if (depth > 0 && sc.i < sc.n && c->text[sc.i] == '{') find_path(&sc, path, depth, &pos);
    int line = 1, col = 1;
    for (size_t i = 0; i < pos && i < c->len; i++) {
        if (c->text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return sg_errf(c->err, SG_EINPUT, "%s:%d:%d: %s %s", c->source, line, col,
                   depth ? dotted : "policy", msg);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* Reads a number field in [lo, hi] (hi_open: value must be < hi is not needed; closed range). */
static int get_number(pctx *c, const char **path, int depth, json_t *v, double lo, double hi,
                      bool lo_open, double *out)
{
    if (!json_is_number(v))
        return field_err(c, path, depth, "must be a number, not %s", type_name(v));
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi || (lo_open && x == lo)) {
        /* The value as written, exactly: 1.0000000000000002 is not "1" next to "[0, 1]". */
        char got[40];
        sg_format_shortest(x, got, sizeof got);
        if (isinf(hi))
            return field_err(c, path, depth, "must be %s %g, got %s", lo_open ? ">" : ">=", lo, got);
        if (isinf(lo)) return field_err(c, path, depth, "must be <= %g, got %s", hi, got);
        return field_err(c, path, depth, "must be in %s%g, %g], got %s", lo_open ? "(" : "[", lo,
                         hi, got);
    }
    *out = x;
    return SG_OK;
}

static int get_bool(pctx *c, const char **path, int depth, json_t *v, bool *out)
{
    if (!json_is_boolean(v))
        return field_err(c, path, depth, "must be true or false, not %s", type_name(v));
    *out = json_is_true(v);
    return SG_OK;
}

static int want_object(pctx *c, const char **path, int depth, json_t *v)
{
    if (!json_is_object(v))
        return field_err(c, path, depth, "must be an object, not %s", type_name(v));
    return SG_OK;
}

static int parse_metric(pctx *c, const char *name, json_t *obj, sg_metric_rule *r)
{
    const char *path[3] = {"metrics", name, NULL};
    const metric_dir *known = known_metric(name);
    if (!known)
        return field_err(c, path, 2,
                         "is not a metric stagegate computes (known: accuracy, precision, "
                         "recall, f1, roc_auc, average_precision, log_loss, f1_macro, "
                         "f1_micro, f1_weighted, example_count, mean_absolute_error, "
                         "mean_squared_error, root_mean_squared_error, r2_score, max_error)");
    int rc = want_object(c, path, 2, obj);
    if (rc) return rc;
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->greater_is_better = known->greater_is_better;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        path[2] = key;
        if (!strcmp(key, "threshold")) {
            /* Within the metric's own range: accuracy >= -1 passes every model, and
               accuracy >= 95 (a percentage) none. */
            rc = get_number(c, path, 3, v, known->lo, known->hi, false, &r->threshold);
            r->has_threshold = true;
        } else if (!strcmp(key, "min_absolute_change")) {
            rc = get_number(c, path, 3, v, 0, INFINITY, false, &r->min_absolute_change);
            r->has_min_absolute_change = true;
        } else if (!strcmp(key, "min_relative_change")) {
            rc = get_number(c, path, 3, v, 0, 1, false, &r->min_relative_change);
            r->has_min_relative_change = true;
        } else if (!strcmp(key, "max_relative_regression")) {
            rc = get_number(c, path, 3, v, 0, 1, false, &r->max_relative_regression);
            r->has_max_relative_regression = true;
        } else if (!strcmp(key, "max_absolute_regression")) {
            rc = get_number(c, path, 3, v, 0, INFINITY, false, &r->max_absolute_regression);
            r->has_max_absolute_regression = true;
        } else if (!strcmp(key, "greater_is_better")) {
            rc = get_bool(c, path, 3, v, &r->greater_is_better);
        } else if (!strcmp(key, "optional")) {
            rc = get_bool(c, path, 3, v, &r->optional);
        } else {
            rc = field_err(c, path, 3,
                           "is not a known key (expected threshold, min_absolute_change, "
                           "min_relative_change, max_relative_regression, "
                           "max_absolute_regression, greater_is_better, optional)");
        }
        if (rc) return rc;
    }
    if (!r->has_threshold && !r->has_min_absolute_change && !r->has_min_relative_change &&
        !r->has_max_relative_regression && !r->has_max_absolute_regression)
        return field_err(c, path, 2,
                         "sets no bound (give threshold, min_absolute_change, "
                         "min_relative_change, max_relative_regression or "
                         "max_absolute_regression)");
    /* A threshold at the end of the metric's range the check holds it to (after
       greater_is_better, which may come after it) passes every model: accuracy >= 0, or
       log_loss with greater_is_better >= 0. */
    if (r->has_threshold &&
        (r->greater_is_better ? r->threshold <= known->lo : r->threshold >= known->hi)) {
        path[2] = "threshold";
        return field_err(c, path, 3,
                         "is %g, which every model's %s is %s or equal to: the check would pass "
                         "any model",
                         r->threshold, name, r->greater_is_better ? "above" : "below");
    }
    /* So does a regression margin that lets the value reach the end of the range from
       any baseline: f1 >= baseline - 1 x |baseline| is f1 >= 0 for every baseline, and
       accuracy >= baseline - 1 at most accuracy >= 0. (For r2_score, unbounded below, and
       the losses, unbounded above, no margin is vacuous.) */
    if (r->has_max_relative_regression) {
        double m = r->max_relative_regression;
        bool vacuous = r->greater_is_better ? known->lo >= 0 && m >= 1
                                            : isfinite(known->lo) &&
                                                  known->lo + m * fabs(known->lo) >= known->hi;
        if (vacuous) {
            path[2] = "max_relative_regression";
            return field_err(c, path, 3,
                             "is %g, which lets %s reach %g from any baseline: the check would "
                             "pass any model",
                             m, name, r->greater_is_better ? 0.0 : known->hi);
        }
    }
    if (r->has_max_absolute_regression && isfinite(known->hi - known->lo) &&
        r->max_absolute_regression >= known->hi - known->lo) {
        path[2] = "max_absolute_regression";
        return field_err(c, path, 3,
                         "is %g, the whole range of %s (%g to %g): the check would pass any "
                         "model",
                         r->max_absolute_regression, name, known->lo, known->hi);
    }
    return SG_OK;
}

static int parse_latency(pctx *c, json_t *obj, sg_gate_policy *p)
{
    const char *path[2] = {"latency", NULL};
    int rc = want_object(c, path, 1, obj);
    if (rc) return rc;
    /* Five repetitions keep A/A comparisons quiet (docs/nightly.md); 2 s each unless the
       policy counts queries instead. */
    p->latency_repetitions = SG_POLICY_DEFAULT_REPETITIONS;
    p->latency_duration_s = -1;
    bool have_scenario = false, have_pct = false, have_max = false, have_qps = false;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        path[1] = key;
        if (!strcmp(key, "scenario")) {
            const char *s = json_string_value(v);
            if (!s) return field_err(c, path, 2, "must be a string, not %s", type_name(v));
            if (!sg_scenario_find(s))
                return field_err(c, path, 2, "must be %s, got '%.64s'", sg_scenario_list(), s);
            snprintf(p->latency_scenario, sizeof p->latency_scenario, "%s", s);
            have_scenario = true;
        } else if (!strcmp(key, "percentile")) {
            if (!json_is_integer(v) || (json_integer_value(v) != 90 && json_integer_value(v) != 99))
                return field_err(c, path, 2,
                                 "must be the integer 90 or 99 (the percentiles with an "
                                 "early-stopping estimate)");
            p->latency_percentile = (int)json_integer_value(v);
            have_pct = true;
        } else if (!strcmp(key, "max_ms")) {
            /* up to a day: beyond, a budget no query could miss is not a latency check */
            rc = get_number(c, path, 2, v, 0, 86400e3, true, &p->latency_max_ms);
            have_max = true;
        } else if (!strcmp(key, "target_qps")) {
            rc = get_number(c, path, 2, v, 0, 1e9, true, &p->latency_target_qps);
            have_qps = true;
        } else if (!strcmp(key, "repetitions")) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000)
                return field_err(c, path, 2, "must be an integer in [1, 1000]");
            p->latency_repetitions = (int)json_integer_value(v);
        } else if (!strcmp(key, "duration_s")) {
            /* 0 is the length the query count alone sets (what the policy as applied
               records then); checked against min_queries below */
            /* at most the safety stop, which would cut any longer run short */
            rc = get_number(c, path, 2, v, 0, SG_SCENARIO_MAX_DURATION_S, false,
                            &p->latency_duration_s);
        } else if (!strcmp(key, "min_queries")) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > 100000000)
                return field_err(c, path, 2, "must be an integer in [1, 100000000]");
            p->latency_min_queries = json_integer_value(v);
        } else {
            rc = field_err(c, path, 2,
                           "is not a known key (expected scenario, percentile, max_ms, "
                           "target_qps, min_queries, repetitions, duration_s)");
        }
        if (rc) return rc;
    }
    path[1] = NULL;
    if (!have_scenario) return field_err(c, path, 1, "needs \"scenario\"");
    if (!have_pct) return field_err(c, path, 1, "needs \"percentile\" (90 or 99)");
    if (!have_max) return field_err(c, path, 1, "needs \"max_ms\"");
    unsigned flags = sg_scenario_find(p->latency_scenario)->flags;
    if (have_qps && !(flags & SG_SCENARIO_ARRIVAL_RATE)) {
        path[1] = "target_qps";
        return field_err(c, path, 2, "only applies to the server scenario");
    }
    if (!have_qps && (flags & SG_SCENARIO_ARRIVAL_RATE))
        return field_err(c, path, 1,
                         "needs \"target_qps\" for the %s scenario (the Poisson arrival rate)",
                         p->latency_scenario);
    /* The policy as applied names the time each repetition runs: the default unless the
       policy counts queries instead (then there is no minimum time). */
    if (p->latency_duration_s == 0 && p->latency_min_queries == 0)
        return field_err(c, path, 1,
                         "duration_s is 0 but min_queries is not given: nothing would set the "
                         "run's length");
    if (p->latency_duration_s < 0)
        p->latency_duration_s = p->latency_min_queries == 0 ? SG_POLICY_DEFAULT_DURATION_S : 0;
    /* What a run can record, checked here with the field named: the run itself had refused
       it after the candidate's evaluation, naming bench's options (--min-queries, --qps). */
    const sg_scenario id = sg_scenario_find(p->latency_scenario)->id;
    if (id == SG_SCENARIO_SINGLE_STREAM && p->latency_min_queries > SG_SCENARIO_SAMPLES_MAX) {
        path[1] = "min_queries";
        return field_err(c, path, 2, "is %lld, more than the %lld queries a run records",
                         (long long)p->latency_min_queries, SG_SCENARIO_SAMPLES_MAX);
    }
    if (id == SG_SCENARIO_SERVER) {
        const double want = sg_scenario_server_queries(
            p->latency_target_qps, p->latency_duration_s,
            p->latency_min_queries > 0 ? p->latency_min_queries : SG_SCENARIO_DEFAULT_MIN_QUERIES);
        path[1] = "target_qps";
        if (want > (double)SG_SCENARIO_SAMPLES_MAX)
            return field_err(c, path, 2,
                             "%g for %g s (or min_queries) schedules %.0f queries, more than the "
                             "%lld a run records: lower target_qps, duration_s or min_queries",
                             p->latency_target_qps, p->latency_duration_s, want,
                             SG_SCENARIO_SAMPLES_MAX);
        if (want / p->latency_target_qps > SG_SCENARIO_MAX_DURATION_S)
            return field_err(c, path, 2,
                             "%g schedules %.0f queries over about %.3g s, more than the %.0f s "
                             "a run may take: raise target_qps or lower min_queries",
                             p->latency_target_qps, want, want / p->latency_target_qps,
                             SG_SCENARIO_MAX_DURATION_S);
        path[1] = NULL;
    }
    p->has_latency = true;
    return SG_OK;
}

static int parse_memory(pctx *c, json_t *obj, sg_gate_policy *p)
{
    const char *path[2] = {"memory", NULL};
    int rc = want_object(c, path, 1, obj);
    if (rc) return rc;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        path[1] = key;
        if (!strcmp(key, "max_rss_mb")) {
            /* up to 1 PiB (2^30 MiB): beyond, no machine's memory could miss it */
            rc = get_number(c, path, 2, v, 0, 1073741824.0, true, &p->max_rss_mb);
            p->has_max_rss_mb = true;
        } else if (!strcmp(key, "max_model_mb")) {
            rc = get_number(c, path, 2, v, 0, 1073741824.0, true, &p->max_model_mb);
            p->has_max_model_mb = true;
        } else {
            rc = field_err(c, path, 2, "is not a known key (expected max_rss_mb, max_model_mb)");
        }
        if (rc) return rc;
    }
    if (!p->has_max_rss_mb && !p->has_max_model_mb)
        return field_err(c, path, 1, "sets no bound (give max_rss_mb or max_model_mb)");
    p->has_memory = true;
    return SG_OK;
}

static int parse_shadow(pctx *c, json_t *obj, sg_gate_policy *p)
{
    const char *path[3] = {"shadow", NULL, NULL};
    int rc = want_object(c, path, 1, obj);
    if (rc) return rc;
    bool have_min = false;
    /* numpy.isclose's defaults: float32 outputs of equivalent models rarely match bit for bit. */
    p->shadow_abs_tolerance = 1e-8;
    p->shadow_rel_tolerance = 1e-5;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        path[1] = key;
        if (!strcmp(key, "min_agreement")) {
            /* (0, 1]: an agreement of at least 0 holds for any two models, as a threshold
               at the end of a metric's range would (refused there too). */
            rc = get_number(c, path, 2, v, 0, 1, true, &p->shadow_min_agreement);
            have_min = true;
        } else if (!strcmp(key, "optional")) {
            rc = get_bool(c, path, 2, v, &p->shadow_optional);
        } else if (!strcmp(key, "tolerance")) {
            p->shadow_tolerance_given = true;
            rc = want_object(c, path, 2, v);
            const char *k2;
            json_t *v2;
            if (!rc) json_object_foreach(v, k2, v2)
                {
                    path[2] = k2;
                    if (!strcmp(k2, "abs"))
                        rc = get_number(c, path, 3, v2, 0, INFINITY, false,
                                        &p->shadow_abs_tolerance);
                    else if (!strcmp(k2, "rel"))
                        rc = get_number(c, path, 3, v2, 0, INFINITY, false,
                                        &p->shadow_rel_tolerance);
                    else
                        rc = field_err(c, path, 3, "is not a known key (expected abs, rel)");
                    if (rc) break;
                }
        } else {
            rc = field_err(c, path, 2,
                           "is not a known key (expected min_agreement, tolerance, optional)");
        }
        if (rc) return rc;
    }
    if (!have_min) return field_err(c, path, 1, "needs \"min_agreement\"");
    p->has_shadow = true;
    return SG_OK;
}

/* Does some check run (pass or fail) even when there is no baseline to compare with? */
static bool has_required_check(const sg_gate_policy *p)
{
    if (p->has_latency || p->has_memory || (p->has_shadow && !p->shadow_optional)) return true;
    for (int i = 0; i < p->n_metrics; i++)
        if (p->metrics[i].has_threshold || !p->metrics[i].optional) return true;
    return false;
}

sg_status sg_policy_parse(const char *text, size_t len, const char *source, sg_gate_policy *p,
                    sg_err *err)
{
    memset(p, 0, sizeof *p);
    pctx c = {source, text, len, err};
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        /* jansson says column 0 for "before the first character" (e.g. at end of file); columns are
         * 1-based. */
        if (je.line > 0)
            return sg_errf(err, SG_EINPUT, "%s:%d:%d: invalid JSON: %s", source, je.line,
                           je.column > 0 ? je.column : 1, je.text);
        return sg_errf(err, SG_EINPUT, "%s: invalid JSON: %s", source, je.text);
    }
    int rc = SG_OK;
    if (!json_is_object(root)) {
        rc = field_err(&c, NULL, 0, "must be a JSON object, not %s", type_name(root));
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        const char *path[1] = {key};
        if (!strcmp(key, "metrics")) {
            rc = want_object(&c, path, 1, v);
            const char *name;
            json_t *m;
            if (!rc) json_object_foreach(v, name, m)
                {
                    if (p->n_metrics == SG_POLICY_MAX_METRICS) {
                        rc = field_err(&c, path, 1, "has more than %d metrics",
                                       SG_POLICY_MAX_METRICS);
                        break;
                    }
                    rc = parse_metric(&c, name, m, &p->metrics[p->n_metrics]);
                    if (rc) break;
                    p->n_metrics++;
                }
        } else if (!strcmp(key, "latency")) {
            rc = parse_latency(&c, v, p);
        } else if (!strcmp(key, "memory")) {
            rc = parse_memory(&c, v, p);
        } else if (!strcmp(key, "shadow")) {
            rc = parse_shadow(&c, v, p);
        } else {
            rc = field_err(&c, path, 1,
                           "is not a known key (expected metrics, latency, memory, shadow)");
        }
        if (rc) goto out;
    }
    if (!p->n_metrics && !p->has_latency && !p->has_memory && !p->has_shadow) {
        rc =
            field_err(&c, NULL, 0, "has no checks: a gate that checks nothing would pass anything");
    } else if (!has_required_check(p)) {
        /* Every check is an optional baseline check: without a baseline all are skipped and
           the gate would pass a model whatever its figures. */
        rc = field_err(&c, NULL, 0,
                       "has no required check: every check is optional and needs a baseline, so "
                       "a gate without one would pass anything (add a threshold, a latency or "
                       "memory budget, or make a check non-optional)");
    }
out:
    json_decref(root);
    return rc;
}

sg_status sg_policy_load(const char *path, sg_gate_policy *p, sg_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = sg_read_file(path, SG_POLICY_MAX_BYTES, &data, &len, err);
    if (rc) return rc;
    rc = sg_policy_parse((const char *)data, len, path, p, err);
    /* The report names the bytes that were applied, not whatever the path holds later. */
    if (rc == SG_OK) sg_sha256_hex(data, len, p->sha256);
    free(data);
    return rc;
}

json_t *sg_policy_json(const sg_gate_policy *p)
{
    json_t *root = json_object(), *metrics = json_object();
    for (int i = 0; i < p->n_metrics; i++) {
        const sg_metric_rule *r = &p->metrics[i];
        json_t *m = json_object();
        if (r->has_threshold) json_object_set_new(m, "threshold", json_real(r->threshold));
        if (r->has_min_absolute_change)
            json_object_set_new(m, "min_absolute_change", json_real(r->min_absolute_change));
        if (r->has_min_relative_change)
            json_object_set_new(m, "min_relative_change", json_real(r->min_relative_change));
        if (r->has_max_relative_regression)
            json_object_set_new(m, "max_relative_regression",
                                json_real(r->max_relative_regression));
        if (r->has_max_absolute_regression)
            json_object_set_new(m, "max_absolute_regression",
                                json_real(r->max_absolute_regression));
        json_object_set_new(m, "greater_is_better", json_boolean(r->greater_is_better));
        json_object_set_new(m, "optional", json_boolean(r->optional));
        json_object_set_new(metrics, r->name, m);
    }
    json_object_set_new(root, "metrics", metrics);
    if (p->has_latency) {
        json_t *l = json_object();
        json_object_set_new(l, "scenario", json_string(p->latency_scenario));
        json_object_set_new(l, "percentile", json_integer(p->latency_percentile));
        json_object_set_new(l, "max_ms", json_real(p->latency_max_ms));
        if (p->latency_target_qps > 0)
            json_object_set_new(l, "target_qps", json_real(p->latency_target_qps));
        if (p->latency_min_queries > 0)
            json_object_set_new(l, "min_queries", json_integer(p->latency_min_queries));
        json_object_set_new(l, "repetitions", json_integer(p->latency_repetitions));
        if (p->latency_duration_s >= 0)
            json_object_set_new(l, "duration_s", json_real(p->latency_duration_s));
        json_object_set_new(root, "latency", l);
    }
    if (p->has_memory) {
        json_t *m = json_object();
        if (p->has_max_rss_mb) json_object_set_new(m, "max_rss_mb", json_real(p->max_rss_mb));
        if (p->has_max_model_mb) json_object_set_new(m, "max_model_mb", json_real(p->max_model_mb));
        json_object_set_new(root, "memory", m);
    }
    if (p->has_shadow) {
        json_t *s = json_object(), *t = json_object();
        json_object_set_new(s, "min_agreement", json_real(p->shadow_min_agreement));
        json_object_set_new(t, "abs", json_real(p->shadow_abs_tolerance));
        json_object_set_new(t, "rel", json_real(p->shadow_rel_tolerance));
        json_object_set_new(s, "tolerance", t);
        json_object_set_new(s, "optional", json_boolean(p->shadow_optional));
        json_object_set_new(root, "shadow", s);
    }
    return root;
}
