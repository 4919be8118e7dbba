/* The gate policy: which metrics, latency, memory and shadow bounds a candidate must meet. */
#ifndef STAGEGATE_POLICY_H
#define STAGEGATE_POLICY_H

#include <jansson.h>

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_POLICY_MAX_METRICS 32
#define SG_POLICY_MAX_BYTES (1u << 20)

/*
 * One metric's rules, after MLflow's MetricThreshold plus regression margins.
 * Each has_* flag says whether the policy set that bound.
 */
/* Latency repetitions and seconds per repetition when a policy does not say (docs/nightly.md). */
#define SG_POLICY_DEFAULT_REPETITIONS 5
#define SG_POLICY_DEFAULT_DURATION_S 2.0

typedef struct {
    char name[48];
    bool greater_is_better; /* from the policy, else the metric's known direction */
    bool has_threshold, has_min_absolute_change, has_min_relative_change;
    bool has_max_relative_regression, has_max_absolute_regression;
    double threshold;               /* value >= t (or <= t when lower is better) */
    double min_absolute_change;     /* value >= baseline + c (mirrored) */
    double min_relative_change;     /* value >= baseline + c*|baseline| (mirrored) */
    double max_relative_regression; /* value >= baseline - r*|baseline| (mirrored) */
    double max_absolute_regression; /* value >= baseline - a (mirrored) */
    bool optional; /* baseline checks are skipped, not failed, without a baseline */
} sg_metric_rule;

typedef struct {
    int n_metrics;
    sg_metric_rule metrics[SG_POLICY_MAX_METRICS]; /* in policy-file order */

    bool has_latency;
    char latency_scenario[32]; /* "single-stream", "server" or "offline" */
    int latency_percentile;    /* 90 or 99 */
    double latency_max_ms;
    double latency_target_qps;   /* server scenario only; 0 = bench's default */
    int64_t latency_min_queries; /* 0 = enough for the percentile's early-stopping estimate */
    /* Independent timed runs and the minimum duration of each; duration < 0 = the default (2 s,
       or 0 when min_queries is given, which then alone decides the run's length). */
    int latency_repetitions; /* default SG_POLICY_DEFAULT_REPETITIONS */
    double latency_duration_s;

    bool has_memory;
    bool has_max_rss_mb, has_max_model_mb;
    double max_rss_mb, max_model_mb;

    bool has_shadow;
    double shadow_min_agreement; /* fraction of rows in [0, 1] */
    double shadow_abs_tolerance; /* regression: |c - b| <= abs + rel * |b| counts as agreeing */
    double shadow_rel_tolerance;
    bool shadow_tolerance_given; /* the policy names a tolerance (regression models only) */
    bool shadow_optional;
    char sha256[65]; /* of the bytes sg_policy_load parsed ("" after sg_policy_parse) */
} sg_gate_policy;

/* Known metric names that a policy may gate on (DESIGN.md names), NULL-terminated. */
extern const char *const sg_policy_metric_names[];

/* Direction of a known metric: losses and errors are lower-is-better. false when unknown. */
bool sg_metric_direction(const char *name, bool *greater_is_better);

/*
 * Parses policy JSON text. source names the file in errors, which also carry the
 * line:column where jansson knows it and the field path (e.g. `metrics.f1.threshold`).
 * Unknown keys, wrong types and out-of-range values are SG_EINPUT.
 */
SG_MUST_CHECK sg_status sg_policy_parse(const char *text, size_t len, const char *source, sg_gate_policy *p,
                    sg_err *err);
SG_MUST_CHECK sg_status sg_policy_load(const char *path, sg_gate_policy *p, sg_err *err);

/* The policy as JSON with every default filled in (for reports). */
json_t *sg_policy_json(const sg_gate_policy *p);

#ifdef __cplusplus
}
#endif
#endif
