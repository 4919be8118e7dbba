/*
 * The gate decision: policy + measurements -> a list of checks, each passed or
 * failed with a human sentence. Pure functions over plain structs, so the
 * decision is unit-testable without running a model. Also the shadow
 * comparison, the in-toto statement, and the JUnit/Markdown/HTML renderers.
 */
#ifndef STAGEGATE_GATE_H
#define STAGEGATE_GATE_H

#include <jansson.h>
#include <openssl/evp.h>

#include "stagegate/common.h"
#include "stagegate/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A set of named metric values (what eval measured), in a fixed order. */
#define SG_GATE_MAX_VALUES 32
typedef struct {
    int n;
    char name[SG_GATE_MAX_VALUES][48];
    double value[SG_GATE_MAX_VALUES];
} sg_metric_values;

/* Adds or replaces name = value; SG_EINPUT when full. */
SG_MUST_CHECK sg_status sg_metric_values_set(sg_metric_values *mv, const char *name, double value);
/* false when the name was not measured (e.g. roc_auc for a regressor). */
bool sg_metric_values_get(const sg_metric_values *mv, const char *name, double *value);

/* What the latency scenario produced, in the form the gate needs. */
typedef struct {
    bool measured; /* false: no latency run happened (the check fails, naming why) */
    char scenario[32];
    int64_t queries; /* samples measured */
    /* LoadGen early-stopping estimates in ms; NAN when the run was too short to support one. */
    double p90_ms, p99_ms;
    int64_t p90_min_queries, p99_min_queries; /* queries the estimate needs (0 = unknown) */
    char reason[256];  /* why an estimate is missing or the run did not happen */
    char invalid[256]; /* server: why LoadGen's rules make the run INVALID; "" when VALID */
    char cut_short[200]; /* why the timed run ended before the policy's length; "" when not */
} sg_gate_latency;

typedef struct {
    bool measured;
    double peak_rss_mb; /* process peak resident set (getrusage), MiB */
    double model_mb;    /* model parameters in memory, MiB */
} sg_gate_memory;

/* Classes up to which the shadow comparison keeps (and the report holds) the label matrix:
 * k x k counts grow past what a report is for (4,095 classes made a 67 MB report). */
#define SG_SHADOW_MATRIX_MAX 64

/* Shadow comparison of candidate vs baseline predictions on the same rows. */
typedef struct {
    bool done;
    bool classification;
    int64_t rows, agreeing;
    double agreement; /* agreeing / rows */
    int n_classes;
    int64_t *matrix; /* [n_classes][n_classes], row = candidate label, col = baseline label;
                        NULL above SG_SHADOW_MATRIX_MAX classes */
    double abs_tolerance, rel_tolerance; /* regression: |c - b| <= abs + rel * |b| agrees */
    double max_abs_diff, mean_abs_diff;  /* regression */
} sg_shadow_result;

SG_MUST_CHECK sg_status sg_shadow_compare_labels(const int32_t *candidate, const int32_t *baseline, int64_t rows,
                             int n_classes, sg_shadow_result *out, sg_err *err);
SG_MUST_CHECK sg_status sg_shadow_compare_values(const float *candidate, const float *baseline, int64_t rows,
                             double abs_tol, double rel_tol, sg_shadow_result *out, sg_err *err);
void sg_shadow_result_clear(sg_shadow_result *s);
json_t *sg_shadow_result_json(const sg_shadow_result *s);

/* Everything the decision looks at; NULL baseline / shadow = no baseline model given. */
typedef struct {
    const sg_metric_values *candidate;
    const sg_metric_values *baseline;
    const sg_gate_latency *latency;
    const sg_gate_memory *memory;
    const sg_shadow_result *shadow;
} sg_gate_inputs;

typedef struct {
    char name[96]; /* e.g. "f1.max_relative_regression", "latency.p99", "shadow.agreement" */
    bool passed;
    bool skipped;   /* optional baseline check without a baseline: passed and skipped */
    double value;   /* measured value; NAN when missing */
    double limit;   /* the bound the value was held to; NAN when none could be computed */
    char op[3];     /* ">=" or "<=": value op limit must hold */
    double seconds; /* wall time of the work behind the figure, shared out among the checks
                       that use it (JUnit's time); 0 when unknown */
    char text[512]; /* e.g. "f1 0.801 < 0.95 x baseline 0.874" */
} sg_gate_check;

/* A check's value or limit as the reports and the terminal show it, in its unit (latency
 * policy figures are in ms, memory ones in MiB, shadow agreement a share), with the digits
 * that tell the value from its limit; "\u2014" when not finite. */
void sg_gate_check_number(char *buf, size_t n, const sg_gate_check *c, double v);

/* A value and the limit it is held to, in ns (time) or bytes, both in the unit that suits
 * the larger (ns to s, B to TiB) with the digits that tell them apart; keep_zeros writes
 * them as %#g does ("50.00 ns" beside "49.99 ns"). For when three digits show them alike. */
void sg_format_apart(double value, double limit, bool time, bool keep_zeros, char *v, size_t vn,
                     char *lim, size_t ln);

typedef struct {
    int n;
    sg_gate_check *checks;
    bool passed;
    int n_failed, n_skipped;
} sg_gate_decision;

SG_MUST_CHECK sg_status sg_gate_evaluate(const sg_gate_policy *p, const sg_gate_inputs *in, sg_gate_decision *out,
                     sg_err *err);
void sg_gate_decision_clear(sg_gate_decision *d);
/* Shares seconds out evenly among the checks whose name starts with prefix ("" for metric
 * checks: those without a latency., memory. or shadow. prefix). */
void sg_gate_decision_add_time(sg_gate_decision *d, const char *prefix, double seconds);
/* [{name, passed, skipped, value, limit, op, text}, ...] */
json_t *sg_gate_checks_json(const sg_gate_decision *d);

/* ---- the in-toto statement (reports/statement.c) ---- */

typedef struct {
    const char *role; /* "dataset", "policy", "baseline", "stagegate" */
    const char *path; /* file whose basename names the resource */
    char sha256[65];
} sg_resource;

typedef struct {
    const char *model_path;
    char model_sha256[65];
    sg_resource config[8];
    int n_config;
    const sg_gate_decision *decision;
    json_t *metrics;          /* borrowed; may be NULL */
    json_t *baseline_metrics; /* borrowed; NULL without a baseline */
    json_t *latency;          /* borrowed bench JSON (machine, clock, histogram); may be NULL */
    json_t *memory;
    json_t *shadow;
    json_t *policy;
    /* borrowed; NULL unless the model came from a registry: {"audit_head": {seq, hash}}, the
     * registry's audit head when the gate resolved it (docs/registry.md) */
    json_t *registry;
    /* borrowed; may be NULL: what was evaluated, as evaluated (the model's task, kind and
       description, which for ONNX names the output rule applied, --output's choice, the rows
       and whether sample weights weighted them) */
    json_t *evaluation;
    const char *timestamp; /* RFC 3339 UTC; NULL = now */
} sg_statement_inputs;

/* Builds the in-toto Statement v1 with the test-result predicate, keys in a fixed order. */
json_t *sg_statement_build(const sg_statement_inputs *in, sg_err *err);
/* Serialises the statement deterministically, signs the exact bytes (DSSE) and writes atomically.
 */
SG_MUST_CHECK sg_status sg_statement_sign_write(json_t *statement, EVP_PKEY *key, const char *out_path, sg_err *err);
/* The same, left in *o written and flushed but not yet at its path (sg_outfile_commit puts it
   there, sg_outfile_abort drops it): for outputs that must all appear or none. */
SG_MUST_CHECK sg_status sg_statement_sign_stage(json_t *statement, EVP_PKEY *key,
                                               const char *out_path, sg_outfile *o, sg_err *err);
/* Current UTC time as RFC 3339 ("2024-05-01T12:00:00Z"); SOURCE_DATE_EPOCH overrides the clock. */
void sg_rfc3339_now(char out[32]);
/* SG_EINPUT naming SOURCE_DATE_EPOCH when it is set but not seconds from 1970 to 9999. */
SG_MUST_CHECK sg_status sg_source_date_epoch_check(sg_err *err);

/* ---- renderers (reports/render_*.c); statement is what sg_statement_build returned ---- */

typedef int (*sg_render_fn)(FILE *out, const sg_gate_decision *d, json_t *statement);
SG_MUST_CHECK sg_status sg_render_junit(FILE *out, const sg_gate_decision *d, json_t *statement);
SG_MUST_CHECK sg_status sg_render_markdown(FILE *out, const sg_gate_decision *d, json_t *statement);
SG_MUST_CHECK sg_status sg_render_html(FILE *out, const sg_gate_decision *d, json_t *statement);
/*
 * The report formats a gate decision can be rendered in: one table entry per
 * format. `gate` takes one option per entry (--NAME FILE) and renders each one
 * asked for; a new format is a render_*.c file plus one line in
 * reports/report_formats.c.
 */
typedef struct {
    const char *name;      /* also the gate option: --junit, --html, --markdown */
    const char *extension; /* conventional file extension, for help and docs */
    const char *what;      /* one line for --help */
    sg_render_fn render;
} sg_report_format;
#define SG_REPORT_FORMATS_MAX 8
extern const sg_report_format sg_report_formats[];
extern const size_t sg_n_report_formats;

/* Renders into path atomically (temp file + rename). */
SG_MUST_CHECK sg_status sg_render_to_file(const char *path, sg_render_fn fn, const sg_gate_decision *d,
                      json_t *statement, sg_err *err);
/* The same, left in *o written and flushed but not yet at its path (as
   sg_statement_sign_stage). */
SG_MUST_CHECK sg_status sg_render_stage(const char *path, sg_render_fn fn,
                                       const sg_gate_decision *d, json_t *statement,
                                       sg_outfile *o, sg_err *err);

/* Escapes for XML/HTML text and attributes (&<>"'); writes to out. */
void sg_fputs_xml_escaped(FILE *out, const char *s);
/* The byte length of the Unicode direction control s starts with (U+061C, U+200E/F,
   U+202A-E, U+2066-9), or 0. Reports show such a character as "?", as a control character. */
size_t sg_bidi_control_len(const char *s);
/* The bytes of the character at s that the renderings show as "?" (0 for any other): C0
   controls (TAB, CR and LF too), DEL, C1 controls, U+2028 and U+2029, the noncharacters
   U+FFFE and U+FFFF (which XML does not allow), and the direction
   controls of sg_bidi_control_len. */
size_t sg_render_control_len(const char *s);

#ifdef __cplusplus
}
#endif
#endif
