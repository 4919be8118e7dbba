/*
 * Gate decision semantics: MLflow MetricThreshold directions and min_*_change,
 * regression margins, optional baselines, latency/memory/shadow checks, and
 * the signed statement built from a decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>

#include <cmocka.h>

#include "stagegate/gate.h"
#include "stagegate/keys.h"
#include "stagegate/report.h"

static sg_gate_policy policy_from(const char *text)
{
    sg_gate_policy p;
    sg_err err = {{0}};
    int rc = sg_policy_parse(text, strlen(text), "test-policy.json", &p, &err);
    if (rc) print_error("%s\n", err.msg);
    assert_int_equal(rc, SG_OK);
    return p;
}

/* Evaluates a one-metric policy and returns the single check (copied). */
static sg_gate_check one_check_p(sg_gate_policy p, const char *metric, double cand,
                                 const double *base)
{
    sg_metric_values c = {0}, b = {0};
    assert_int_equal(sg_metric_values_set(&c, metric, cand), SG_OK);
    if (base) assert_int_equal(sg_metric_values_set(&b, metric, *base), SG_OK);
    sg_gate_inputs in = {.candidate = &c, .baseline = base ? &b : NULL};
    sg_gate_decision d;
    sg_err err;
    assert_int_equal(sg_gate_evaluate(&p, &in, &d, &err), SG_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.passed, d.checks[0].passed);
    sg_gate_check out = d.checks[0];
    sg_gate_decision_clear(&d);
    return out;
}

static sg_gate_check one_check(const char *policy, const char *metric, double cand,
                               const double *base)
{
    return one_check_p(policy_from(policy), metric, cand, base);
}

/* The parser refuses a policy whose only check is an optional one (it would pass anything
   without a baseline), so the decision for an optional rule is tested on the struct: the
   policy parsed without the flag, then the flag set. */
static sg_gate_check one_optional_check(const char *policy, const char *metric, double cand,
                                        const double *base)
{
    sg_gate_policy p = policy_from(policy);
    assert_int_equal(p.n_metrics, 1);
    p.metrics[0].optional = true;
    return one_check_p(p, metric, cand, base);
}

static void test_threshold_directions(void **state)
{
    (void)state;
    const char *acc = "{\"metrics\": {\"accuracy\": {\"threshold\": 0.85}}}";
    sg_gate_check c = one_check(acc, "accuracy", 0.9, NULL);
    assert_true(c.passed);
    assert_string_equal(c.name, "accuracy.threshold");
    assert_string_equal(c.text, "accuracy 0.9 >= 0.85");
    assert_true(one_check(acc, "accuracy", 0.85, NULL).passed); /* the bound itself passes (>=) */
    /* A value on the bound on paper but a rounding below it passes, as against a baseline:
       F1 = 16/20 computed from precision and recall (as scikit-learn does) is
       0.7999999999999999. 1e-11 below is a real miss. */
    const char *f1 = "{\"metrics\": {\"f1\": {\"threshold\": 0.8}}}";
    const double p = 8.0 / 9.0, rc = 8.0 / 11.0, f = 2 * p * rc / (p + rc);
    assert_true(f < 0.8);
    assert_true(one_check(f1, "f1", f, NULL).passed);
    assert_false(one_check(f1, "f1", 0.8 - 1e-11, NULL).passed);
    const char *mse = "{\"metrics\": {\"mean_squared_error\": {\"threshold\": 0.3}}}";
    assert_true(one_check(mse, "mean_squared_error", nextafter(0.3, 1.0), NULL).passed);
    assert_false(one_check(mse, "mean_squared_error", 0.3 + 1e-11, NULL).passed);
    c = one_check(acc, "accuracy", 0.84, NULL);
    assert_false(c.passed);
    assert_string_equal(c.text, "accuracy 0.84 < 0.85");
    /* Close to the bound: as many digits as it takes to tell them apart ("0.9642 < 0.9642"). */
    const char *close = "{\"metrics\": {\"accuracy\": {\"threshold\": 0.96424}}}";
    c = one_check(close, "accuracy", 0.964213, NULL);
    assert_false(c.passed);
    assert_string_equal(c.text, "accuracy 0.96421 < 0.96424");
    /* Far apart, the limit still reads as itself: a threshold of 0.99999 had read "1". */
    c = one_check("{\"metrics\": {\"accuracy\": {\"threshold\": 0.99999, "
                  "\"greater_is_better\": false}}}",
                  "accuracy", 0.6877, NULL);
    assert_string_equal(c.text, "accuracy 0.6877 <= 0.99999");
    /* Losses: lower is better, so the threshold is an upper bound. */
    const char *ll = "{\"metrics\": {\"log_loss\": {\"threshold\": 0.35}}}";
    assert_true(one_check(ll, "log_loss", 0.30, NULL).passed);
    c = one_check(ll, "log_loss", 0.40, NULL);
    assert_false(c.passed);
    assert_string_equal(c.text, "log_loss 0.4 > 0.35");
    assert_string_equal(c.op, "<=");
    /* A metric the candidate does not have (roc_auc of a regressor) fails, it is not skipped. */
    c = one_check(acc, "r2_score", 0.9, NULL);
    assert_false(c.passed);
    assert_non_null(strstr(c.text, "accuracy was not measured"));
}

static void test_min_changes(void **state)
{
    (void)state;
    double b = 0.80;
    const char *abs_p = "{\"metrics\": {\"roc_auc\": {\"min_absolute_change\": 0.02}}}";
    sg_gate_check c = one_check(abs_p, "roc_auc", 0.83, &b);
    assert_true(c.passed);
    assert_true(fabs(c.limit - 0.82) < 1e-12);
    c = one_check(abs_p, "roc_auc", 0.81, &b);
    assert_false(c.passed);
    assert_string_equal(c.text, "roc_auc 0.81 < baseline 0.8 + 0.02");
    /* Within four digits of the bound: the bound is written out as well. */
    double b2 = 0.9134;
    const char *abs_acc = "{\"metrics\": {\"accuracy\": {\"min_absolute_change\": 0.009}}}";
    c = one_check(abs_acc, "accuracy", 0.92239, &b2);
    assert_false(c.passed);
    assert_string_equal(c.text, "accuracy 0.92239 < baseline 0.9134 + 0.009 (= 0.9224)");
    const char *rel_p = "{\"metrics\": {\"f1\": {\"min_relative_change\": 0.05}}}";
    assert_true(one_check(rel_p, "f1", 0.85, &b).passed);
    c = one_check(rel_p, "f1", 0.83, &b);
    assert_false(c.passed);
    assert_true(fabs(c.limit - 0.84) < 1e-12);
    assert_string_equal(c.text, "f1 0.83 < 1.05 x baseline 0.8");
    /* Lower-is-better improvement: MAE must drop by at least 0.1. */
    double mae = 1.0;
    const char *mae_p = "{\"metrics\": {\"mean_absolute_error\": {\"min_absolute_change\": 0.1}}}";
    assert_true(one_check(mae_p, "mean_absolute_error", 0.85, &mae).passed);
    c = one_check(mae_p, "mean_absolute_error", 0.95, &mae);
    assert_false(c.passed);
    assert_string_equal(c.text, "mean_absolute_error 0.95 > baseline 1 - 0.1");
    /* min_absolute_change 0 (issue example): equal to the baseline is enough. */
    assert_true(
        one_check("{\"metrics\": {\"roc_auc\": {\"min_absolute_change\": 0}}}", "roc_auc", 0.8, &b)
            .passed);
}

static void test_regression_margins(void **state)
{
    (void)state;
    /* The lecture: F1 must stay within 5% of the baseline's. */
    const char *p = "{\"metrics\": {\"f1\": {\"max_relative_regression\": 0.05}}}";
    double b = 0.874;
    sg_gate_check c = one_check(p, "f1", 0.801, &b);
    assert_false(c.passed);
    assert_string_equal(c.text, "f1 0.801 < 0.95 x baseline 0.874");
    assert_true(fabs(c.limit - 0.8303) < 1e-12);
    assert_true(one_check(p, "f1", 0.84, &b).passed);
    /* Exactly on the bound as written in decimal: rounding of b*(1-r) must not fail it. */
    assert_true(one_check(p, "f1", 0.8303, &b).passed);
    assert_false(one_check(p, "f1", 0.8302, &b).passed);
    /* Lower is better: candidate <= baseline * (1 + r). */
    double ll = 0.40;
    c = one_check("{\"metrics\": {\"log_loss\": {\"max_relative_regression\": 0.05}}}", "log_loss",
                  0.43, &ll);
    assert_false(c.passed);
    assert_string_equal(c.text, "log_loss 0.43 > 1.05 x baseline 0.4");
    assert_true(one_check("{\"metrics\": {\"log_loss\": {\"max_relative_regression\": 0.05}}}",
                          "log_loss", 0.41, &ll)
                    .passed);
    /* A negative baseline (r2) keeps the meaning "no more than 50% worse": limit -0.3, not -0.1. */
    double r2 = -0.2;
    const char *r2p = "{\"metrics\": {\"r2_score\": {\"max_relative_regression\": 0.5}}}";
    assert_true(one_check(r2p, "r2_score", -0.25, &r2).passed);
    c = one_check(r2p, "r2_score", -0.35, &r2);
    assert_false(c.passed);
    assert_true(fabs(c.limit - (-0.3)) < 1e-12);
    /* Absolute margin. */
    const char *ap = "{\"metrics\": {\"accuracy\": {\"max_absolute_regression\": 0.02}}}";
    double acc = 0.90;
    assert_true(one_check(ap, "accuracy", 0.881, &acc).passed);
    c = one_check(ap, "accuracy", 0.879, &acc);
    assert_false(c.passed);
    assert_string_equal(c.text, "accuracy 0.879 < baseline 0.9 - 0.02");
    /* The slack scales with the operands: an error metric near 1e-13 (targets scaled by
       1e-8) twice its baseline's is a regression, as it is at any other scale (an absolute
       1e-12 slack had passed it against "no regression at all"). */
    double mse = 2.801e-13;
    const char *rel = "{\"metrics\": {\"mean_squared_error\": {\"max_relative_regression\": "
                      "0.05}}}",
               *none = "{\"metrics\": {\"mean_squared_error\": {\"max_absolute_regression\": "
                       "0}}}";
    assert_false(one_check(rel, "mean_squared_error", 5.645e-13, &mse).passed);
    assert_false(one_check(none, "mean_squared_error", 5.645e-13, &mse).passed);
    assert_false(one_check(none, "mean_squared_error", 2.8011e-13, &mse).passed);
    assert_true(one_check(none, "mean_squared_error", 2.801e-13, &mse).passed);
    assert_false(one_check(rel, "mean_squared_error", 2.9411e-13, &mse).passed);
    assert_true(one_check(rel, "mean_squared_error", 2.94105e-13, &mse).passed);
    double big = 1e3; /* ... and at another scale */
    assert_true(one_check(none, "mean_squared_error", 1e3, &big).passed);
    assert_false(one_check(none, "mean_squared_error", 1000.000001, &big).passed);
    assert_true(one_check(rel, "mean_squared_error", 1050, &big).passed);
}

static void test_missing_baseline(void **state)
{
    (void)state;
    sg_gate_check c =
        one_check("{\"metrics\": {\"f1\": {\"max_relative_regression\": 0.05}}}", "f1", 0.9, NULL);
    assert_false(c.passed);
    assert_false(c.skipped);
    assert_non_null(strstr(c.text, "needs a baseline model (--baseline)"));
    c = one_optional_check("{\"metrics\": {\"f1\": {\"max_relative_regression\": 0.05}}}", "f1",
                           0.9, NULL);
    assert_true(c.passed);
    assert_true(c.skipped);
    assert_non_null(strstr(c.text, "skipped"));
    /* Optional only excuses a missing baseline, not a worse candidate. */
    double b = 0.95;
    c = one_optional_check("{\"metrics\": {\"f1\": {\"max_relative_regression\": 0.05}}}", "f1",
                           0.5, &b);
    assert_false(c.passed);
    assert_false(c.skipped);
}

static void test_latency_memory_shadow(void **state)
{
    (void)state;
    sg_gate_policy p = policy_from(
        "{\"latency\": {\"scenario\": \"single-stream\", \"percentile\": 99, \"max_ms\": 5},"
        " \"memory\": {\"max_rss_mb\": 100, \"max_model_mb\": 1},"
        " \"shadow\": {\"min_agreement\": 0.9}}");
    sg_metric_values cand = {0}, base = {0};
    sg_gate_latency lat = {.measured = true, .queries = 5000, .p90_ms = 2.0, .p99_ms = 4.5};
    strcpy(lat.scenario, "single-stream");
    sg_gate_memory mem = {.measured = true, .peak_rss_mb = 80, .model_mb = 1.5};
    int32_t cl[] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 2}, bl[] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    sg_shadow_result sh;
    sg_err err;
    assert_int_equal(sg_shadow_compare_labels(cl, bl, 10, 3, &sh, &err), SG_OK);
    sg_gate_inputs in = {
        .candidate = &cand, .baseline = &base, .latency = &lat, .memory = &mem, .shadow = &sh};
    sg_gate_decision d;
    assert_int_equal(sg_gate_evaluate(&p, &in, &d, &err), SG_OK);
    assert_int_equal(d.n, 4);
    assert_string_equal(d.checks[0].name, "latency.p99");
    assert_true(d.checks[0].passed);
    assert_string_equal(
        d.checks[0].text,
        "single-stream p99 4.50 ms <= 5.00 ms (early-stopping estimate over 5,000 queries)");
    assert_true(d.checks[1].passed);
    assert_string_equal(d.checks[2].name, "memory.max_model_mb");
    assert_false(d.checks[2].passed);
    assert_string_equal(d.checks[2].text, "model size 1.50 MiB > 1.00 MiB");
    assert_string_equal(d.checks[3].name, "shadow.agreement");
    assert_true(d.checks[3].passed);
    assert_true(d.checks[3].value == 0.9);
    assert_false(d.passed);
    assert_int_equal(d.n_failed, 1);
    sg_gate_decision_clear(&d);
    /* Just over a limit, where three digits show value and limit alike: written with the
       digits that tell them apart ("1.00 MiB > 1.00 MiB" had read as a contradiction). */
    mem.model_mb = 1.0000114;
    lat.p99_ms = 5.0000002;
    assert_int_equal(sg_gate_evaluate(&p, &in, &d, &err), SG_OK);
    assert_string_equal(d.checks[2].text, "model size 1.00001 MiB > 1.00000 MiB");
    assert_non_null(strstr(d.checks[0].text, "p99 5.0000002 ms > 5.0000000 ms"));
    sg_gate_decision_clear(&d);
    /* ... in the unit that suits them, not in ms ("5.000e-05 ms > 4.999e-05 ms"). */
    sg_gate_policy tiny = policy_from(
        "{\"latency\": {\"scenario\": \"single-stream\", \"percentile\": 99, \"max_ms\": "
        "0.00004999}}");
    lat.p99_ms = 0.00005;
    assert_int_equal(sg_gate_evaluate(&tiny, &in, &d, &err), SG_OK);
    assert_non_null(strstr(d.checks[0].text, "p99 50.00 ns > 49.99 ns"));
    sg_gate_decision_clear(&d);
    mem.model_mb = 1.5;
    lat.p99_ms = 4.5;

    /* A run too short for the early-stopping estimate fails, saying why. */
    lat.p99_ms = NAN;
    lat.queries = 300;
    lat.p99_min_queries = 662;
    assert_int_equal(sg_gate_evaluate(&p, &in, &d, &err), SG_OK);
    assert_false(d.checks[0].passed);
    assert_non_null(strstr(d.checks[0].text, "300 queries is too short"));
    assert_non_null(strstr(d.checks[0].text, "662"));
    sg_gate_decision_clear(&d);
    /* Measured in another scenario than the policy's: fails. */
    lat.p99_ms = 1;
    strcpy(lat.scenario, "server");
    assert_int_equal(sg_gate_evaluate(&p, &in, &d, &err), SG_OK);
    assert_false(d.checks[0].passed);
    sg_gate_decision_clear(&d);

    /* No baseline: shadow fails unless optional. */
    in.baseline = NULL;
    in.shadow = NULL;
    assert_int_equal(sg_gate_evaluate(&p, &in, &d, &err), SG_OK);
    assert_false(d.checks[3].passed);
    sg_gate_decision_clear(&d);
    p.shadow_optional = true;
    assert_int_equal(sg_gate_evaluate(&p, &in, &d, &err), SG_OK);
    assert_true(d.checks[3].passed && d.checks[3].skipped);
    assert_int_equal(d.n_skipped, 1);
    sg_gate_decision_clear(&d);
    sg_shadow_result_clear(&sh);
}

static void test_shadow_comparisons(void **state)
{
    (void)state;
    int32_t c[] = {0, 1, 1, 2, 2, 0}, b[] = {0, 1, 2, 2, 0, 0};
    sg_shadow_result s;
    sg_err err;
    assert_int_equal(sg_shadow_compare_labels(c, b, 6, 3, &s, &err), SG_OK);
    assert_int_equal(s.agreeing, 4);
    assert_true(fabs(s.agreement - 4.0 / 6.0) < 1e-15);
    /* rows = candidate label, columns = baseline label */
    assert_int_equal(s.matrix[0 * 3 + 0], 2);
    assert_int_equal(s.matrix[1 * 3 + 2], 1);
    assert_int_equal(s.matrix[2 * 3 + 0], 1);
    assert_int_equal(s.matrix[2 * 3 + 2], 1);
    assert_int_equal(s.matrix[2 * 3 + 1], 0);
    json_t *j = sg_shadow_result_json(&s);
    assert_int_equal(json_integer_value(json_array_get(
                         json_array_get(json_object_get(j, "disagreement_matrix"), 1), 2)),
                     1);
    json_decref(j);
    sg_shadow_result_clear(&s);
    /* Above SG_SHADOW_MATRIX_MAX classes agreement is counted without the k x k matrix
     * (5,000 classes had been refused; 4,095 made a 67 MB report). */
    int32_t cw[] = {0, 4999, 17, 17}, bw[] = {0, 4998, 17, 3};
    assert_int_equal(sg_shadow_compare_labels(cw, bw, 4, 5000, &s, &err), SG_OK);
    assert_int_equal(s.agreeing, 2);
    assert_null(s.matrix);
    j = sg_shadow_result_json(&s);
    assert_true(json_is_null(json_object_get(j, "disagreement_matrix")));
    assert_int_equal(json_integer_value(json_object_get(j, "agreeing")), 2);
    json_decref(j);
    sg_shadow_result_clear(&s);
    int32_t bad[] = {0, 5};
    assert_int_equal(sg_shadow_compare_labels(bad, b, 2, 3, &s, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "row 1"));

    /* numpy.isclose(c, b, rtol=1e-5, atol=1e-8) gives [True, True, False, False]. */
    float cv[] = {1.0f, 2.0f, 3.0f, -1.0f}, bv[] = {1.0f, 2.00001f, 3.1f, 1.0f};
    assert_int_equal(sg_shadow_compare_values(cv, bv, 4, 1e-8, 1e-5, &s, &err), SG_OK);
    assert_int_equal(s.agreeing, 2);
    assert_true(fabs(s.max_abs_diff - 2.0) < 1e-6);
    sg_shadow_result_clear(&s);
}

/* A FAILED decision becomes a statement whose failedTests names f1, signed and verifiable. */
static void test_statement_signed(void **state)
{
    (void)state;
    sg_gate_policy p = policy_from("{\"metrics\": {\"accuracy\": {\"threshold\": 0.85},"
                                   " \"f1\": {\"max_relative_regression\": 0.05}}}");
    sg_metric_values c = {0}, b = {0};
    assert_int_equal(sg_metric_values_set(&c, "accuracy", 0.9), SG_OK);
    assert_int_equal(sg_metric_values_set(&c, "f1", 0.801), SG_OK);
    assert_int_equal(sg_metric_values_set(&b, "accuracy", 0.91), SG_OK);
    assert_int_equal(sg_metric_values_set(&b, "f1", 0.874), SG_OK);
    sg_gate_inputs in = {.candidate = &c, .baseline = &b};
    sg_gate_decision d;
    sg_err err;
    assert_int_equal(sg_gate_evaluate(&p, &in, &d, &err), SG_OK);
    assert_false(d.passed);

    const char *tmpdir = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/sg-gate-test-XXXXXX", tmpdir && *tmpdir ? tmpdir : P_tmpdir);
    assert_non_null(mkdtemp(tmpl));
    char model[600], prefix[600], keyp[700], pubp[700], out[700];
    snprintf(model, sizeof model, "%s/cand.h5", tmpl);
    FILE *f = fopen(model, "wb");
    assert_non_null(f);
    fputs("not really a model, but it has a digest", f);
    fclose(f);
    sg_statement_inputs si = {
        .model_path = model, .decision = &d, .timestamp = "2024-01-02T03:04:05Z"};
    assert_int_equal(sg_sha256_file_hex(model, si.model_sha256, &err), SG_OK);
    si.config[0] = (sg_resource){.role = "dataset", .path = model};
    memcpy(si.config[0].sha256, si.model_sha256, 65);
    si.n_config = 1;
    json_t *st = sg_statement_build(&si, &err);
    assert_non_null(st);
    json_t *pred = json_object_get(st, "predicate");
    assert_string_equal(json_string_value(json_object_get(st, "predicateType")),
                        SG_TEST_RESULT_PREDICATE);
    assert_string_equal(json_string_value(json_object_get(pred, "result")), "FAILED");
    json_t *failed = json_object_get(pred, "failedTests");
    assert_int_equal(json_array_size(failed), 1);
    assert_string_equal(json_string_value(json_array_get(failed, 0)),
                        "f1 0.801 < 0.95 x baseline 0.874");
    assert_int_equal(json_array_size(json_object_get(pred, "passedTests")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(st, "subject"), 0), "name")),
                        "cand.h5");

    snprintf(prefix, sizeof prefix, "%s/k", tmpl);
    snprintf(keyp, sizeof keyp, "%s.key.pem", prefix);
    snprintf(pubp, sizeof pubp, "%s.pub.pem", prefix);
    snprintf(out, sizeof out, "%s/r.intoto.json", tmpl);
    assert_int_equal(sg_keygen(prefix, SG_KEY_ECDSA_P256, &err), SG_OK);
    EVP_PKEY *key = NULL, *pub = NULL;
    assert_int_equal(sg_key_load_private(keyp, &key, &err), SG_OK);
    assert_int_equal(sg_statement_sign_write(st, key, out, &err), SG_OK);
    assert_int_equal(sg_key_load_public(pubp, &pub, &err), SG_OK);
    uint8_t *env = NULL;
    size_t len = 0;
    assert_int_equal(sg_read_file(out, 1 << 20, &env, &len, &err), SG_OK);
    sg_report_info info;
    memset(&info, 0, sizeof info);
    int vrc = sg_report_verify(env, len, pub, model, &info, &err);
    if (vrc) print_error("%s\n", err.msg);
    assert_int_equal(vrc, SG_OK);
    assert_string_equal(info.result, "FAILED");
    assert_string_equal(info.timestamp, "2024-01-02T03:04:05Z");
    sg_report_info_clear(&info);
    free(env);
    EVP_PKEY_free(key);
    EVP_PKEY_free(pub);
    json_decref(st);
    sg_gate_decision_clear(&d);
    unlink(model);
    unlink(keyp);
    unlink(pubp);
    unlink(out);
    rmdir(tmpl);
}

static void test_timestamp_source_date_epoch(void **state)
{
    (void)state;
    char ts[32];
    setenv("SOURCE_DATE_EPOCH", "86400", 1);
    sg_rfc3339_now(ts);
    unsetenv("SOURCE_DATE_EPOCH");
    assert_string_equal(ts, "1970-01-02T00:00:00Z");
    /* Beyond year 9999, negative, or not digits: refused before a run (it gave
       "10000-01-01T00:00:00Z" and, near INT64_MAX, bytes of an unset struct tm). */
    sg_err err;
    static const char *const bad[] = {"253402300800", "9223372036854775807", "-1", "1e9", " 5",
                                      "12abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("SOURCE_DATE_EPOCH", bad[i], 1);
        assert_int_equal(sg_source_date_epoch_check(&err), SG_EINPUT);
        assert_non_null(strstr(err.msg, "SOURCE_DATE_EPOCH"));
        sg_rfc3339_now(ts); /* never a time beyond RFC 3339's four-digit year */
        assert_int_equal(strlen(ts), 20);
    }
    setenv("SOURCE_DATE_EPOCH", "253402300799", 1);
    assert_int_equal(sg_source_date_epoch_check(&err), SG_OK);
    sg_rfc3339_now(ts);
    assert_string_equal(ts, "9999-12-31T23:59:59Z");
    unsetenv("SOURCE_DATE_EPOCH");
    assert_int_equal(sg_source_date_epoch_check(&err), SG_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_directions),
        cmocka_unit_test(test_min_changes),
        cmocka_unit_test(test_regression_margins),
        cmocka_unit_test(test_missing_baseline),
        cmocka_unit_test(test_latency_memory_shadow),
        cmocka_unit_test(test_shadow_comparisons),
        cmocka_unit_test(test_statement_signed),
        cmocka_unit_test(test_timestamp_source_date_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
