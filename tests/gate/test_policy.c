/* Policy parsing: the documented example, defaults, and each kind of error with line:column and
 * field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "stagegate/policy.h"

static int parse(const char *text, sg_gate_policy *p, sg_err *err)
{
    memset(err, 0, sizeof *err);
    return sg_policy_parse(text, strlen(text), "p.json", p, err);
}

/* Parses text expecting SG_EINPUT and an error message containing want. */
static void expect_error(const char *text, const char *want)
{
    sg_gate_policy p;
    sg_err err;
    int rc = parse(text, &p, &err);
    if (rc != SG_EINPUT || !strstr(err.msg, want))
        print_error("policy:\n%s\nrc=%d error: '%s'\nwanted substring: '%s'\n", text, rc, err.msg,
                    want);
    assert_int_equal(rc, SG_EINPUT);
    assert_non_null(strstr(err.msg, want));
    /* Every policy error, syntax or semantic, starts with FILE:LINE:COLUMN (1-based). */
    int line = 0, col = 0, n = 0;
    if (sscanf(err.msg, "p.json:%d:%d: %n", &line, &col, &n) != 2 || n == 0 || line < 1 || col < 1)
        print_error("error '%s' does not start with p.json:LINE:COLUMN\n", err.msg);
    assert_true(n > 0 && line >= 1 && col >= 1);
}

static void test_issue_example(void **state)
{
    (void)state;
    const char *text =
        "{\n"
        "  \"metrics\": {\n"
        "    \"accuracy\": {\"threshold\": 0.85},\n"
        "    \"f1\":       {\"max_relative_regression\": 0.05},\n"
        "    \"roc_auc\":  {\"threshold\": 0.90, \"min_absolute_change\": 0.0}\n"
        "  },\n"
        "  \"latency\": {\"scenario\": \"single-stream\", \"percentile\": 99, \"max_ms\": 50},\n"
        "  \"memory\":  {\"max_rss_mb\": 512, \"max_model_mb\": 64},\n"
        "  \"shadow\":  {\"min_agreement\": 0.90}\n"
        "}\n";
    sg_gate_policy p;
    sg_err err;
    assert_int_equal(parse(text, &p, &err), SG_OK);
    assert_int_equal(p.n_metrics, 3);
    /* Policy-file order is kept: checks appear in the order the author wrote them. */
    assert_string_equal(p.metrics[0].name, "accuracy");
    assert_true(p.metrics[0].has_threshold);
    assert_true(p.metrics[0].greater_is_better);
    assert_true(p.metrics[0].threshold == 0.85);
    assert_false(p.metrics[0].has_max_relative_regression);
    assert_string_equal(p.metrics[1].name, "f1");
    assert_true(p.metrics[1].has_max_relative_regression);
    assert_true(p.metrics[1].max_relative_regression == 0.05);
    assert_false(p.metrics[1].has_threshold);
    assert_false(p.metrics[1].optional);
    assert_string_equal(p.metrics[2].name, "roc_auc");
    assert_true(p.metrics[2].has_min_absolute_change);
    assert_true(p.metrics[2].min_absolute_change == 0.0);
    assert_true(p.has_latency);
    assert_string_equal(p.latency_scenario, "single-stream");
    assert_int_equal(p.latency_percentile, 99);
    assert_true(p.latency_max_ms == 50);
    assert_true(p.has_memory && p.has_max_rss_mb && p.has_max_model_mb);
    assert_true(p.max_rss_mb == 512 && p.max_model_mb == 64);
    assert_true(p.has_shadow);
    assert_true(p.shadow_min_agreement == 0.90);
    assert_true(p.shadow_abs_tolerance == 1e-8 && p.shadow_rel_tolerance == 1e-5);
}

static void test_directions(void **state)
{
    (void)state;
    sg_gate_policy p;
    sg_err err;
    const char *text =
        "{\"metrics\": {\"log_loss\": {\"threshold\": 0.4},"
        " \"mean_absolute_error\": {\"max_relative_regression\": 0.1, \"optional\": true},"
        " \"r2_score\": {\"threshold\": 0.5},"
        " \"max_error\": {\"threshold\": 3, \"greater_is_better\": true}},"
        " \"shadow\": {\"min_agreement\": 0.5, \"tolerance\": {\"abs\": 0.01, \"rel\": 0}, "
        "\"optional\": true}}";
    assert_int_equal(parse(text, &p, &err), SG_OK);
    assert_int_equal(p.n_metrics, 4);
    assert_false(p.metrics[0].greater_is_better); /* a loss */
    assert_false(p.metrics[1].greater_is_better); /* an error */
    assert_true(p.metrics[1].optional);
    assert_true(p.metrics[2].greater_is_better);
    assert_true(p.metrics[3].greater_is_better); /* explicit override wins */
    assert_true(p.shadow_abs_tolerance == 0.01 && p.shadow_rel_tolerance == 0.0);
    assert_true(p.shadow_optional);
    bool gib;
    assert_true(sg_metric_direction("root_mean_squared_error", &gib));
    assert_false(gib);
    assert_true(sg_metric_direction("f1_macro", &gib));
    assert_true(gib);
    assert_false(sg_metric_direction("bogus", &gib));
}

static void test_syntax_error_has_line_column(void **state)
{
    (void)state;
    /* Missing comma after line 2's object: jansson reports line 3. */
    expect_error("{\n  \"metrics\": {\"f1\": {\"threshold\": 0.9}}\n  \"latency\": {}\n}",
                 "p.json:3:");
    expect_error("{\"metrics\": {\"f1\": {\"threshold\": 0.9}}, \"metrics\": {}}", "p.json:1:");
    expect_error("", "p.json");
    expect_error("\n", "p.json:2:1: invalid JSON");
}

static void test_field_errors_name_path_and_position(void **state)
{
    (void)state;
    /* Line 3, column 12 is where "threshold" starts (its opening quote). */
    expect_error("{\n  \"metrics\": {\n    \"f1\": {\"threshold\": \"high\"}\n  }\n}",
                 "p.json:3:12: metrics.f1.threshold must be a number, not a string");
    expect_error("{\n  \"metrics\": {\n    \"f1\": {\"treshold\": 0.9}\n  }\n}",
                 "p.json:3:12: metrics.f1.treshold is not a known key");
    expect_error("{\"metrics\": {\"f2\": {\"threshold\": 0.9}}}",
                 "p.json:1:14: metrics.f2 is not a metric");
    expect_error("{\"metric\": {}}", "p.json:1:2: metric is not a known key");
    /* Keys written with escapes are found as the parser read them (the position had been 1:1). */
    expect_error(
        "{\n  \"metrics\": {\"accuracy\": {\"threshold\": 0.5}},\n  \"me\\u0074rics2\": 1\n}",
        "p.json:3:3: metrics2 is not a known key");
    expect_error("{\"m\\u0065trics\": {\"f\\u0032\": {\"threshold\": 0.9}}}",
                 "p.json:1:19: metrics.f2 is not a metric");
    /* A threshold outside what the metric can take: vacuous (every model passes) or never met
       (a percentage written for a fraction). */
    expect_error("{\"metrics\": {\"accuracy\": {\"threshold\": -1}}}",
                 "metrics.accuracy.threshold must be in [0, 1], got -1");
    expect_error("{\"metrics\": {\"roc_auc\": {\"threshold\": 95}}}",
                 "metrics.roc_auc.threshold must be in [0, 1], got 95");
    /* Budgets no run could miss are not checks (they also garbled the tables). */
    expect_error("{\"latency\": {\"scenario\": \"single-stream\", \"percentile\": 99, "
                 "\"max_ms\": 1e300}}",
                 "latency.max_ms must be in (0, 8.64e+07], got 1e+300");
    expect_error("{\"memory\": {\"max_rss_mb\": 1e300}}",
                 "memory.max_rss_mb must be in (0, 1.07374e+09], got 1e+300");
    /* Just past the bound: the value as written, not rounded back into the range. */
    expect_error("{\"metrics\": {\"accuracy\": {\"threshold\": 1.0000000000000002}}}",
                 "metrics.accuracy.threshold must be in [0, 1], got 1.0000000000000002");
    expect_error("{\"metrics\": {\"log_loss\": {\"threshold\": -0.5}}}",
                 "metrics.log_loss.threshold must be in [2.22045e-16, 36.0437], got -0.5");
    expect_error("{\"metrics\": {\"r2_score\": {\"threshold\": 1.5}}}",
                 "metrics.r2_score.threshold must be <= 1, got 1.5");
    expect_error("{\"metrics\": {\"example_count\": {\"threshold\": -3}}}",
                 "metrics.example_count.threshold must be >= 1, got -3");
    /* Every set has a row (an empty one is refused), and no clipped log_loss is above
       -log(2^-52) = 36.04: these thresholds pass any model. */
    expect_error("{\"metrics\": {\"example_count\": {\"threshold\": 1}}}",
                 "metrics.example_count.threshold is 1, which every model's example_count is "
                 "above or equal to");
    expect_error("{\"metrics\": {\"example_count\": {\"threshold\": 1e-300}}}",
                 "metrics.example_count.threshold must be >= 1, got 1e-300");
    expect_error("{\"metrics\": {\"log_loss\": {\"threshold\": 37}}}",
                 "metrics.log_loss.threshold must be in [2.22045e-16, 36.0437], got 37");
    /* ...and none is below a perfect row's -log(1 - 2^-52) = 2^-52: a threshold of 0 fails
       every model, and is refused as the other end is (it had been accepted) */
    expect_error("{\"metrics\": {\"log_loss\": {\"threshold\": 0}}}",
                 "metrics.log_loss.threshold must be in [2.22045e-16, 36.0437], got 0");
    /* a whole number as written, not "4e+01" */
    expect_error("{\"metrics\": {\"log_loss\": {\"threshold\": 40}}}",
                 "metrics.log_loss.threshold must be in [2.22045e-16, 36.0437], got 40");
    expect_error("{\"metrics\": {\"log_loss\": {\"threshold\": 36.043653389117154}}}",
                 "metrics.log_loss.threshold is 36.0437, which every model's log_loss is below");
    /* At the end of the range the check holds the metric to: every model passes, whichever
       order greater_is_better comes in. */
    expect_error("{\"metrics\": {\"accuracy\": {\"threshold\": 0}}}",
                 "metrics.accuracy.threshold is 0, which every model's accuracy is above or "
                 "equal to: the check would pass any model");
    expect_error(
        "{\"metrics\": {\"log_loss\": {\"threshold\": 2.220446049250313e-16, "
        "\"greater_is_better\": true}}}",
        "metrics.log_loss.threshold is 2.22045e-16, which every model's log_loss is above");
    expect_error("{\"metrics\": {\"accuracy\": {\"greater_is_better\": false, \"threshold\": 1}}}",
                 "metrics.accuracy.threshold is 1, which every model's accuracy is below");
    expect_error(
        "{\"latency\": {\"scenario\": \"single-stream\", \"percentile\": 95, \"max_ms\": 5}}",
        "latency.percentile must be the integer 90 or 99");
    expect_error("{\"latency\": {\"scenario\": \"batch\", \"percentile\": 99, \"max_ms\": 5}}",
                 "latency.scenario must be single-stream, server or offline");
    expect_error("{\"latency\": {\"scenario\": \"server\", \"percentile\": 99, \"max_ms\": 5}}",
                 "latency needs \"target_qps\" for the server scenario");
    expect_error("{\"latency\": {\"scenario\": \"server\", \"percentile\": 99, \"max_ms\": -1}}",
                 "latency.max_ms must be in (0, 8.64e+07], got -1");
    expect_error("{\"latency\": {\"percentile\": 99, \"max_ms\": 5}}",
                 "p.json:1:2: latency needs \"scenario\"");
    /* What a run can record, refused here with the field named (the run had refused it
       after the candidate's evaluation, naming bench's --min-queries and --qps) */
    expect_error("{\"latency\": {\"scenario\": \"single-stream\", \"percentile\": 99, "
                 "\"max_ms\": 5, \"min_queries\": 60000000}}",
                 "latency.min_queries is 60000000, more than the 50000000 queries a run records");
    expect_error("{\"latency\": {\"scenario\": \"server\", \"percentile\": 99, \"max_ms\": 5, "
                 "\"target_qps\": 1e9}}",
                 "latency.target_qps 1e+09 for 2 s (or min_queries) schedules 2000000000 queries, "
                 "more than the 50000000 a run records");
    expect_error("{\"latency\": {\"scenario\": \"server\", \"percentile\": 99, \"max_ms\": 5, "
                 "\"target_qps\": 0.5}}",
                 "latency.target_qps 0.5 schedules 1024 queries over about 2.05e+03 s, more than "
                 "the 600 s a run may take");
    expect_error("{\"latency\": {\"scenario\": \"offline\", \"percentile\": 99, \"max_ms\": 5, "
                 "\"target_qps\": 10}}",
                 "latency.target_qps only applies to the server scenario");
    expect_error("{\"metrics\": {\"f1\": {\"min_relative_change\": 1.5}}}",
                 "metrics.f1.min_relative_change must be in [0, 1], got 1.5");
    expect_error("{\"metrics\": {\"f1\": {\"optional\": \"yes\"}}}",
                 "metrics.f1.optional must be true or false");
    expect_error("{\"metrics\": {\"f1\": {\"optional\": true}}}", "metrics.f1 sets no bound");
    expect_error("{\"metrics\": {\"f1\": 0.9}}", "metrics.f1 must be an object, not a number");
    expect_error("{\"memory\": {}}", "memory sets no bound");
    expect_error("{\"shadow\": {\"min_agreement\": 0.9, \"tolerance\": {\"absolute\": 1}}}",
                 "shadow.tolerance.absolute is not a known key");
    expect_error("{\"shadow\": {\"tolerance\": {\"abs\": 1}}}", "shadow needs \"min_agreement\"");
    /* An agreement of at least 0 holds for any two models: vacuous, refused. */
    expect_error("{\"shadow\": {\"min_agreement\": 0}}",
                 "shadow.min_agreement must be in (0, 1], got 0");
    /* A regression margin that lets a bounded metric reach the end of its range from any
       baseline is vacuous too. */
    expect_error("{\"metrics\": {\"f1\": {\"max_relative_regression\": 1}}}",
                 "p.json:1:21: metrics.f1.max_relative_regression is 1, which lets f1 reach 0 "
                 "from any baseline: the check would pass any model");
    expect_error("{\"metrics\": {\"example_count\": {\"max_relative_regression\": 1}}}",
                 "metrics.example_count.max_relative_regression is 1");
    expect_error("{\"metrics\": {\"log_loss\": {\"greater_is_better\": true, "
                 "\"max_relative_regression\": 1}}}",
                 "metrics.log_loss.max_relative_regression is 1, which lets log_loss reach 0");
    expect_error("{\"metrics\": {\"accuracy\": {\"max_absolute_regression\": 1}}}",
                 "metrics.accuracy.max_absolute_regression is 1, the whole range of accuracy (0 "
                 "to 1): the check would pass any model");
    expect_error("{\"metrics\": {\"roc_auc\": {\"greater_is_better\": false, "
                 "\"max_absolute_regression\": 2.5}}}",
                 "metrics.roc_auc.max_absolute_regression is 2.5, the whole range");
    {
        /* Just inside, or on metrics whose range has no end on that side: accepted. */
        static const char *const ok[] = {
            "{\"metrics\": {\"f1\": {\"max_relative_regression\": 0.999}}}",
            "{\"metrics\": {\"accuracy\": {\"max_absolute_regression\": 0.999}}}",
            "{\"metrics\": {\"r2_score\": {\"max_relative_regression\": 1}}}",
            "{\"metrics\": {\"log_loss\": {\"max_relative_regression\": 1}}}",
            "{\"metrics\": {\"mean_squared_error\": {\"max_absolute_regression\": 1e9}}}",
            "{\"metrics\": {\"accuracy\": {\"greater_is_better\": false, "
            "\"max_relative_regression\": 1}}}",
        };
        for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
            sg_gate_policy p;
            sg_err err;
            int rc = parse(ok[i], &p, &err);
            if (rc != SG_OK) print_error("policy %s refused: %s\n", ok[i], err.msg);
            assert_int_equal(rc, SG_OK);
        }
    }
    expect_error("{}", "p.json:1:1: policy has no checks");
    /* Only optional baseline checks: without a baseline every one is skipped. */
    expect_error("{\"metrics\": {\"f1\": {\"max_relative_regression\": 0.05, \"optional\": true}}}",
                 "policy has no required check");
    expect_error("{\"metrics\": {\"f1\": {\"max_relative_regression\": 0.05, \"optional\": true}},"
                 " \"shadow\": {\"min_agreement\": 0.9, \"optional\": true}}",
                 "policy has no required check");
    expect_error("[1]", "policy must be a JSON object, not an array");
}

static void test_json_roundtrip(void **state)
{
    (void)state;
    sg_gate_policy p, q;
    sg_err err;
    const char *text =
        "{\"metrics\": {\"f1\": {\"threshold\": 0.8, \"max_relative_regression\": 0.05}},"
        " \"latency\": {\"scenario\": \"server\", \"percentile\": 90, \"max_ms\": 7.5, "
        "\"target_qps\": 100}}";
    assert_int_equal(parse(text, &p, &err), SG_OK);
    json_t *j = sg_policy_json(&p);
    char *s = json_dumps(j, JSON_PRESERVE_ORDER);
    assert_int_equal(parse(s, &q, &err), SG_OK);
    assert_memory_equal(&p, &q, sizeof p);
    /* The policy as applied names the default time per repetition... */
    json_t *l = json_object_get(j, "latency");
    assert_true(json_real_value(json_object_get(l, "duration_s")) == SG_POLICY_DEFAULT_DURATION_S);
    assert_int_equal(json_integer_value(json_object_get(l, "repetitions")),
                     SG_POLICY_DEFAULT_REPETITIONS);
    free(s);
    json_decref(j);
    /* ...and 0 when the policy counts queries instead (the count alone sets the length). */
    assert_int_equal(parse("{\"latency\": {\"scenario\": \"single-stream\", \"percentile\": 99, "
                           "\"max_ms\": 5, \"min_queries\": 5000}}",
                           &p, &err),
                     SG_OK);
    j = sg_policy_json(&p);
    l = json_object_get(j, "latency");
    assert_true(json_real_value(json_object_get(l, "duration_s")) == 0.0);
    assert_int_equal(json_integer_value(json_object_get(l, "min_queries")), 5000);
    /* ... which reads back as a policy (the policy as applied is one) */
    char *applied = json_dumps(j, 0);
    json_decref(j);
    assert_int_equal(parse(applied, &p, &err), SG_OK);
    free(applied);
    assert_true(p.latency_duration_s == 0.0 && p.latency_min_queries == 5000);
    /* A duration of 0 with nothing else to end the run is refused. */
    expect_error("{\"latency\": {\"scenario\": \"single-stream\", \"percentile\": 99, "
                 "\"max_ms\": 5, \"duration_s\": 0}}",
                 "latency duration_s is 0 but min_queries is not given");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_example),
        cmocka_unit_test(test_directions),
        cmocka_unit_test(test_syntax_error_has_line_column),
        cmocka_unit_test(test_field_errors_name_path_and_position),
        cmocka_unit_test(test_json_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
