/*
 * `stagegate compare` logic: is NEW worse than OLD, and is the difference real?
 * Latency is judged in compare_latency.c, against the variation between
 * repetitions. Metrics: the delta, and whether NEW crosses the policy's
 * regression margin taking OLD as the baseline.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/json.h"
#include "stagegate/compare.h"
#include "stagegate/policy.h"
#include "compare_internal.h"

void sg_compare_options_init(sg_compare_options *o)
{
    memset(o, 0, sizeof *o);
    o->alpha = 0.05;
    o->noise_floor = -1;
    o->single_run_floor = -1;
    o->discount_noisy = true;
    o->abs_noise_floor_ns = -1;
    o->min_repetition_s = -1;
}

static json_t *run_json(const sg_compare_run *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "file", sg_json_string_safe(r->path));
    if (r->file_sha256[0]) json_object_set_new(o, "file_sha256", json_string(r->file_sha256));
    if (r->payload_sha256[0])
        json_object_set_new(o, "payload_sha256", json_string(r->payload_sha256));
    json_object_set_new(o, "kind", json_string(r->kind));
    json_object_set_new(o, "verified", json_boolean(r->verified));
    if (r->verified) json_object_set_new(o, "key_id", json_string(r->key_id));
    if (r->subject[0]) json_object_set_new(o, "subject", json_string(r->subject));
    if (r->subject_sha256[0])
        json_object_set_new(o, "subject_sha256", json_string(r->subject_sha256));
    if (r->result[0]) json_object_set_new(o, "result", json_string(r->result));
    if (r->timestamp[0]) json_object_set_new(o, "timestamp", json_string(r->timestamp));
    if (r->scenario[0]) json_object_set_new(o, "scenario", json_string(r->scenario));
    json_object_set(o, "fingerprint", r->fingerprint ? r->fingerprint : json_null());
    return o;
}

/* "cpu_model: 'A' -> 'B'; kernel: ..." for the refusal message. */
static void describe_diff(const json_t *diff, char *buf, size_t cap)
{
    size_t i, len = 0;
    json_t *e;
    buf[0] = 0;
    json_array_foreach(diff, i, e)
    {
        char *a = json_dumps(json_object_get(e, "old"), JSON_ENCODE_ANY);
        char *b = json_dumps(json_object_get(e, "new"), JSON_ENCODE_ANY);
        int w = snprintf(buf + len, cap - len, "%s%s %s vs %s", i ? "; " : "",
                         json_string_value(json_object_get(e, "field")), a ? a : "?", b ? b : "?");
        free(a);
        free(b);
        if (w < 0 || (size_t)w >= cap - len) break;
        len += (size_t)w;
    }
}

/* The validation set's digest a run measured: the bench document's dataset, else the
   report's configuration entry whose role is dataset; NULL when neither says. */
static json_t *dataset_digest(const sg_compare_run *r)
{
    json_t *d = json_object_get(json_object_get(r->latency, "dataset"), "sha256");
    if (json_is_string(d)) return d;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(r->statement, "predicate"), "configuration"),
                       i, c)
    {
        json_t *role = json_object_get(json_object_get(c, "annotations"), "role");
        if (json_is_string(role) && !strcmp(json_string_value(role), "dataset"))
            return json_object_get(json_object_get(c, "digest"), "sha256");
    }
    return NULL;
}

/* A difference in what was measured: field old vs new, when both sides say and differ. */
static void differ(json_t *diff, const char *field, json_t *a, json_t *b)
{
    if (!a || !b || json_is_null(a) || json_is_null(b) || json_equal(a, b)) return;
    json_t *e = json_object();
    json_object_set_new(e, "field", json_string(field));
    json_object_set(e, "old", a);
    json_object_set(e, "new", b);
    json_array_append_new(diff, e);
}

/* A report's classifier's class values (a new reference): its evaluation.model.classes, or
   0..n_classes-1 when it names none; NULL for a bench document or a regressor. */
static json_t *run_classes(const sg_compare_run *r)
{
    json_t *m = json_object_get(
        json_object_get(json_object_get(r->statement, "predicate"), "evaluation"), "model");
    json_t *c = json_object_get(m, "classes"), *k = json_object_get(m, "n_classes");
    if (json_is_array(c)) return json_incref(c);
    if (!json_is_integer(k) || json_integer_value(k) < 1 || json_integer_value(k) > 65536)
        return NULL;
    json_t *a = json_array();
    for (json_int_t j = 0; j < json_integer_value(k); j++)
        json_array_append_new(a, json_integer(j));
    return a;
}

static sg_status check_comparable(const sg_compare_run *o, const sg_compare_run *n,
                            const sg_compare_options *opt, json_t *doc, sg_err *err)
{
    json_t *diff;
    if (o->fingerprint && n->fingerprint) {
        diff = sg_fingerprint_diff(o->fingerprint, n->fingerprint);
    } else {
        diff = json_array();
        if (o->latency || n->latency) {
            json_t *e = json_object();
            json_object_set_new(e, "field", json_string("machine"));
            json_object_set_new(e, "old", o->fingerprint ? json_string("recorded") : json_null());
            json_object_set_new(e, "new", n->fingerprint ? json_string("recorded") : json_null());
            json_array_append_new(diff, e);
        }
    }
    if (o->scenario[0] && n->scenario[0] && strcmp(o->scenario, n->scenario)) {
        json_t *e = json_object();
        json_object_set_new(e, "field", json_string("scenario"));
        json_object_set_new(e, "old", json_string(o->scenario));
        json_object_set_new(e, "new", json_string(n->scenario));
        json_array_append_new(diff, e);
    }
    /* Runs of other settings measure other things: a batch of 8 against one of 64, a server
       run at another arrival rate. */
    differ(diff, "batch", json_object_get(o->latency, "batch"), json_object_get(n->latency, "batch"));
    differ(diff, "target_qps", json_object_get(o->latency, "target_qps"),
           json_object_get(n->latency, "target_qps"));
    /* Models of other class values: label 1 of one is not label 1 of the other, so a binary
       F1 (of the second class) would compare two classes' (gate refuses such a baseline). */
    json_t *oc = run_classes(o), *nc = run_classes(n);
    differ(diff, "classes", oc, nc);
    json_decref(oc);
    json_decref(nc);
    /* Another validation set is not refused: a nightly that refreshes its data wants the
       metrics compared (a drop on tonight's data is the news). It is said, with both. */
    json_t *dsets = json_array();
    differ(dsets, "dataset sha256", dataset_digest(o), dataset_digest(n));
    json_object_set_new(doc, "dataset_differs", json_boolean(json_array_size(dsets) > 0));
    if (json_array_size(dsets)) json_object_set(doc, "datasets", json_array_get(dsets, 0));
    json_decref(dsets);
    json_object_set_new(doc, "fingerprint_match", json_boolean(json_array_size(diff) == 0));
    json_object_set_new(doc, "forced", json_boolean(opt->force && json_array_size(diff) > 0));
    json_object_set_new(doc, "differences", diff);
    if (json_array_size(diff) == 0 || opt->force) return SG_OK;
    char what[700];
    describe_diff(diff, what, sizeof what);
    return sg_errf(err, SG_EINPUT,
                   "%s and %s ran on different machines or settings (%s): not compared; "
                   "pass --force to compare anyway",
                   o->path, n->path, what);
}

/* The bound NEW must meet with OLD as the baseline; NAN when the policy sets no margin. */
static double margin_limit(json_t *rule, double old, bool gib)
{
    double lim = NAN;
    json_t *r = json_object_get(rule, "max_relative_regression"),
           *a = json_object_get(rule, "max_absolute_regression");
    /* The same 1e-12 relative slack the gate allows, so a value exactly on the bound is not a
     * regression. */
    double slack = 1e-12 * fabs(old);
    if (json_is_number(r))
        lim = gib ? old - json_number_value(r) * fabs(old) - slack
                  : old + json_number_value(r) * fabs(old) + slack;
    if (json_is_number(a)) {
        double l2 = gib ? old - json_number_value(a) - slack : old + json_number_value(a) + slack;
        lim = isnan(lim) ? l2 : gib ? fmax(lim, l2) : fmin(lim, l2);
    }
    return lim;
}

static json_t *compare_metrics(const sg_compare_run *o, const sg_compare_run *n, json_t *policy,
                               int *n_regressed)
{
    json_t *rows = json_array();
    const char *name;
    json_t *nv;
    json_object_foreach(n->metrics, name, nv)
    {
        json_t *ov = json_object_get(o->metrics, name);
        if (!json_is_number(nv) || !json_is_number(ov)) continue;
        double a = json_number_value(ov), b = json_number_value(nv);
        json_t *rule = json_object_get(json_object_get(policy, "metrics"), name);
        bool gib = true, known = sg_metric_direction(name, &gib);
        json_t *g = json_object_get(rule, "greater_is_better");
        if (json_is_boolean(g)) gib = json_is_true(g), known = true;
        double lim = margin_limit(rule, a, gib);
        bool crosses = !isnan(lim) && (gib ? b < lim : b > lim);
        /* A threshold OLD met and NEW misses is a regression even without a margin. */
        json_t *t = json_object_get(rule, "threshold");
        bool thr =
            json_is_number(t) && (gib ? a >= json_number_value(t) && b < json_number_value(t)
                                      : a <= json_number_value(t) && b > json_number_value(t));
        double d = b - a;
        const char *verdict = crosses || thr     ? "regressed"
                              : d == 0 || !known ? "unchanged"
                              : (d > 0) == gib   ? "improved"
                                                 : "worse";
        if (crosses || thr) (*n_regressed)++;
        json_t *r = json_object();
        json_object_set_new(r, "name", json_string(name));
        json_object_set_new(r, "gated", json_boolean(rule != NULL));
        sg_json_set_real(r, "old", a);
        sg_json_set_real(r, "new", b);
        sg_json_set_real(r, "delta", d);
        sg_json_set_real(r, "relative_delta", a != 0 ? d / fabs(a) : NAN);
        json_object_set_new(r, "greater_is_better", known ? json_boolean(gib) : json_null());
        sg_json_set_real(r, "margin_limit", lim);
        json_object_set_new(r, "crosses_margin", json_boolean(crosses));
        json_object_set_new(r, "crosses_threshold", json_boolean(thr));
        json_object_set_new(r, "verdict", json_string(verdict));
        json_array_append_new(rows, r);
    }
    /* A gated metric OLD had and NEW could not compute (tonight's set has one class, and the
       rule was optional, so the gate passed): regressed, not left out of the comparison. */
    json_t *ov;
    json_object_foreach(o->metrics, name, ov)
    {
        json_t *v = json_object_get(n->metrics, name);
        json_t *rule = json_object_get(json_object_get(policy, "metrics"), name);
        if (!json_is_number(ov) || json_is_number(v) || !rule) continue;
        (*n_regressed)++;
        json_t *r = json_object();
        json_object_set_new(r, "name", json_string(name));
        json_object_set_new(r, "gated", json_true());
        sg_json_set_real(r, "old", json_number_value(ov));
        json_object_set_new(r, "new", json_null());
        json_object_set_new(r, "not_computed", json_true());
        json_object_set_new(r, "verdict", json_string("regressed"));
        json_array_append_new(rows, r);
    }
    return rows;
}

/*
 * --history must be earlier runs of NEW's machine, with figures a band can be made of: a run of
 * another fingerprint, or a figure of -1 or 1e300, had widened the band without a word, and a
 * 3.6x slowdown then read as unchanged.
 */
static sg_status check_history(const json_t *history, const sg_compare_run *n, sg_err *err)
{
    static const char *const pct[] = {"p50", "p90", "p99", "p999"};
    const char *want = json_string_value(json_object_get(n->fingerprint, "id"));
    size_t i;
    json_t *run;
    const json_t *first = NULL;
    json_array_foreach(json_object_get(history, "runs"), i, run)
    {
        if (!json_is_object(run))
            return sg_errf(err, SG_EINPUT, "--history: runs[%zu] is not an object", i);
        /* The band is "earlier runs of this version": runs of another version or model had
           widened it without a word, and hidden a regression. */
        const char *model = json_string_value(json_object_get(run, "model"));
        json_t *ver = json_object_get(run, "version");
        if (!first) {
            first = run;
        } else if (model && json_is_integer(ver) &&
                   (strcmp(model, sg_json_str(first, "model")) != 0 ||
                    json_integer_value(ver) !=
                        json_integer_value(json_object_get(first, "version")))) {
            return sg_errf(err, SG_EINPUT,
                           "--history: runs[%zu] is of %.64s v%lld, runs[0] of %.64s v%lld (give "
                           "one version's runs: registry runs NAME --version V)",
                           i, model, (long long)json_integer_value(ver),
                           sg_json_str(first, "model"),
                           (long long)json_integer_value(json_object_get(first, "version")));
        }
        /* Which runs count depends on it (earlier_runs): null, 0 or "false" had counted a run
           of another key as trusted. */
        if (!json_is_boolean(json_object_get(run, "signer_trusted")))
            return sg_errf(err, SG_EINPUT,
                           "--history: runs[%zu].signer_trusted is missing or not true/false "
                           "(give `registry runs --json` output)",
                           i);
        const char *fp = json_string_value(json_object_get(run, "fingerprint"));
        if (want && (!fp || strcmp(fp, want)))
            return sg_errf(err, SG_EINPUT,
                           "--history: runs[%zu] ran on fingerprint %.32s, not NEW's %s (give the "
                           "runs of NEW's machine: registry runs NAME --fingerprint %s)",
                           i, fp ? fp : "(none)", want, want);
        json_t *lat = json_object_get(json_object_get(run, "figures"), "latency_ns");
        for (size_t k = 0; k < sizeof pct / sizeof pct[0]; k++) {
            json_t *v = json_object_get(lat, pct[k]);
            if (v && !json_is_null(v) && !sg_compare_latency_ok(v))
                return sg_errf(err, SG_EINPUT,
                               "--history: runs[%zu].figures.latency_ns.%s is not a latency "
                               "(a positive number of nanoseconds)",
                               i, pct[k]);
        }
    }
    return SG_OK;
}

/*
 * The history's earlier runs: NEW's own run (the report file NEW was loaded from, as `registry
 * runs` lists it once NEW is recorded, or the same signed statement re-encoded: its
 * payload_sha256) and a second listing of one report are left out. With
 * NEW in it, the band reached NEW's own figures, and a 2.9x slowdown read as "inside the
 * history band".
 */
static json_t *earlier_runs(const json_t *history, const sg_compare_run *n, int *left_out,
                            int *other_keys)
{
    json_t *runs = json_array(), *seen = json_object();
    size_t i;
    json_t *run;
    *left_out = *other_keys = 0;
    json_array_foreach(json_object_get(history, "runs"), i, run)
    {
        /* A run signed by a key that is not one of the model's signers (`signer_trusted`
           false: recorded with --pubkey) counts only when that key is the one that verified
           NEW (a nightly's own key). Anyone with write access to the registry can record
           runs with a key of their own: they had widened the band until a slowdown read
           as "inside the history band". */
        const char *kid = json_string_value(json_object_get(run, "signer_key_id"));
        if (json_is_false(json_object_get(run, "signer_trusted")) &&
            !(n->verified && kid && !strcmp(kid, n->key_id))) {
            (*other_keys)++;
            continue;
        }
        const char *sha = json_string_value(json_object_get(run, "report_sha256"));
        const char *psha = json_string_value(json_object_get(run, "payload_sha256"));
        const bool own =
            (sha && !strcmp(sha, n->file_sha256)) ||
            (psha && *psha && n->payload_sha256[0] && !strcmp(psha, n->payload_sha256));
        if (own || (sha && json_object_get(seen, sha))) {
            (*left_out)++;
            continue;
        }
        if (sha) json_object_set_new(seen, sha, json_true());
        json_array_append(runs, run);
    }
    json_decref(seen);
    json_t *h = json_object();
    json_object_set_new(h, "runs", runs);
    return h;
}

sg_status sg_compare_runs(const sg_compare_run *o, const sg_compare_run *n, const sg_compare_options *opt,
                    json_t **out, sg_err *err)
{
    *out = NULL;
    sg_compare_options with_earlier;
    json_t *earlier = NULL;
    int left_out = 0, other_keys = 0;
    if (opt->history) {
        sg_status hrc = check_history(opt->history, n, err);
        if (hrc) return hrc;
        earlier = earlier_runs(opt->history, n, &left_out, &other_keys);
        with_earlier = *opt;
        with_earlier.history = earlier;
        opt = &with_earlier;
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "old", run_json(o));
    json_object_set_new(doc, "new", run_json(n));
    int rc = check_comparable(o, n, opt, doc, err);
    if (rc) {
        json_decref(doc);
        json_decref(earlier);
        return rc;
    }
    if (earlier) {
        json_t *h = json_object();
        json_object_set_new(
            h, "runs", json_integer((json_int_t)json_array_size(json_object_get(earlier, "runs"))));
        json_object_set_new(h, "left_out", json_integer(left_out));
        json_object_set_new(h, "other_keys", json_integer(other_keys));
        json_object_set_new(doc, "history", h);
    }
    json_object_set_new(doc, "alpha", json_real(opt->alpha));
    json_object_set_new(doc, "noise_floor",
                        opt->noise_floor >= 0 ? json_real(opt->noise_floor) : json_null());
    json_object_set_new(doc, "single_run_floor",
                        opt->single_run_floor >= 0 ? json_real(opt->single_run_floor)
                                                   : json_null());
    int n_reg = 0;
    json_t *lat = sg_compare_latency(o, n, opt, doc, &n_reg, err);
    json_object_set_new(doc, "latency", lat);
    json_t *policy = n->policy ? n->policy : o->policy;
    json_object_set_new(doc, "policy_differs",
                        json_boolean(o->policy && n->policy && !json_equal(o->policy, n->policy)));
    json_object_set_new(doc, "metrics", compare_metrics(o, n, policy, &n_reg));
    json_object_set_new(doc, "n_regressed", json_integer(n_reg));
    json_object_set_new(doc, "regressed", json_boolean(n_reg > 0));
    json_decref(earlier);
    *out = doc;
    return SG_OK;
}

sg_status sg_compare_verdict(const json_t *cmp, const char *path, const char **verdict, sg_err *err)
{
    *verdict = NULL;
    json_t *reg = json_object_get(cmp, "regressed");
    json_t *rows[2] = {json_object_get(cmp, "latency"), json_object_get(cmp, "metrics")};
    if (!json_is_boolean(reg) || !json_is_array(rows[0]) || !json_is_array(rows[1]))
        return sg_errf(err, SG_EINPUT,
                       "%s: not a `compare --json` document (needs \"regressed\", \"latency\" "
                       "and \"metrics\")",
                       path);
    bool improved = false, worse = false, any_regressed = false;
    for (int k = 0; k < 2; k++) {
        size_t i;
        json_t *r;
        json_array_foreach(rows[k], i, r)
        {
            json_t *v = json_object_get(r, "verdict");
            if (!json_is_string(v))
                return sg_errf(err, SG_EINPUT, "%s: %s[%zu].verdict is not a string", path,
                               k ? "metrics" : "latency", i);
            const char *w = json_string_value(v);
            /* compare's own words only, and "regressed" exactly when a row says so: a
               document that contradicts itself is not a comparison (a row "regressed" under
               "regressed": false had been stored as unchanged, "bogus" as improved) */
            if (strcmp(w, "regressed") && strcmp(w, "improved") && strcmp(w, "unchanged") &&
                strcmp(w, "worse"))
                return sg_errf(err, SG_EINPUT,
                               "%s: %s[%zu].verdict \"%.32s\" is not regressed, improved, "
                               "unchanged or worse",
                               path, k ? "metrics" : "latency", i, w);
            any_regressed |= !strcmp(w, "regressed");
            improved |= !strcmp(w, "improved");
            worse |= !strcmp(w, "worse") || !strcmp(w, "regressed");
        }
    }
    if (json_is_true(reg) != any_regressed)
        return sg_errf(err, SG_EINPUT,
                       "%s: \"regressed\" is %s but %s row says regressed; not a `compare "
                       "--json` document",
                       path, json_is_true(reg) ? "true" : "false", any_regressed ? "a" : "no");
    *verdict = json_is_true(reg) ? "regressed" : improved && !worse ? "improved" : "unchanged";
    return SG_OK;
}

bool sg_compare_latency_ok(const json_t *v)
{
    const double x = json_number_value(v);
    return json_is_number(v) && x > 0 && isfinite(x) && x <= 1e15;
}
