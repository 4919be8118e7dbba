/*
 * Nightly regression runs: machine fingerprints, the Mann-Whitney U test on
 * binned latency histograms, `stagegate compare` of two runs, the run history
 * kept in the registry and the trend page built from it.
 */
#ifndef STAGEGATE_COMPARE_H
#define STAGEGATE_COMPARE_H

#include <jansson.h>
#include <openssl/evp.h>

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ fingerprint */

/*
 * The fields of a machine record (sg_machine_json, as embedded in bench JSON
 * and reports under "machine") that decide whether two latency runs are
 * comparable: cpu_model, cores, tsc_mhz (TSC Hz rounded to 10 MHz, so
 * calibration jitter does not split a machine in two; null without a TSC),
 * kernel, openblas (build config), stagegate_version; plus "id", the first 16
 * hex digits of the SHA-256 of those fields. NULL when machine is not an object.
 */
json_t *sg_fingerprint_from_machine(const json_t *machine);
/* [{"field", "old", "new"}, ...] for each field that differs (empty array when equal). */
json_t *sg_fingerprint_diff(const json_t *old_fp, const json_t *new_fp);

/* ----------------------------------------------------------- Mann-Whitney */

/* One histogram bucket: every observation in it counts as the value `value` (ties). */
typedef struct {
    double value;
    int64_t count;
} sg_bin;

typedef struct {
    int64_t n_old, n_new;
    double u;       /* U of the OLD sample, as scipy.stats.mannwhitneyu(old, new).statistic */
    double z;       /* standardised max(U1, U2) with continuity correction */
    double p_value; /* two-sided, tie-corrected normal approximation */
} sg_mw_result;

/*
 * Mann-Whitney U test on two binned samples, bins ascending by value with
 * unique values. Equals scipy.stats.mannwhitneyu(x, y, method="asymptotic",
 * use_continuity=True, alternative="two-sided") on the expanded samples.
 * SG_EINPUT when either sample is empty or bins are not ascending.
 */
int sg_mannwhitney_binned(const sg_bin *x, size_t nx, const sg_bin *y, size_t ny, sg_mw_result *out,
                          sg_err *err);

/* ---------------------------------------------------------------- compare */

/* A run to compare: a signed gate report or a `bench --json` document, normalised. */
typedef struct {
    char path[4096];
    char kind[8];      /* "report" or "bench" */
    bool verified;     /* the report's signature verified against a given public key */
    char key_id[65];   /* the key that verified it */
    char result[16];   /* report result, "" for bench */
    char subject[512]; /* report subject name, "" for bench */
    char subject_sha256[65];
    char timestamp[64];
    char scenario[32];
    json_t *statement;   /* report statement (owned) or NULL */
    json_t *latency;     /* bench JSON (borrowed from statement/doc) or NULL */
    json_t *metrics;     /* borrowed or NULL */
    json_t *policy;      /* borrowed or NULL */
    json_t *fingerprint; /* owned, or NULL when no machine record */
    json_t *doc;         /* bench document (owned) or NULL */
    sg_bin *bins;        /* latency histogram buckets (owned), NULL when absent */
    size_t n_bins;
} sg_compare_run;

/*
 * Loads path. A DSSE envelope is verified with pub when pub != NULL (SG_EREFUSED when
 * it does not verify); without pub its payload is read unverified and run->verified is
 * false. Anything else must be a bench JSON document (latency_ns, histogram, machine).
 */
int sg_compare_load(const char *path, EVP_PKEY *pub, sg_compare_run *run, sg_err *err);
void sg_compare_run_clear(sg_compare_run *run);
/* Reads an envelope's payload without verifying it (for lookups only). Caller frees. */
int sg_dsse_payload_unverified(const uint8_t *env, size_t len, json_t **statement, sg_err *err);

typedef struct {
    double alpha;       /* significance level, default 0.05 */
    double noise_floor; /* relative change below which a percentile is unchanged, default 0.01 */
    /* Absolute change (ns) below which a percentile is unchanged. Negative (the default) means
       automatic: the larger timing-bracket overhead of the two runs (clock.overhead_ns), since a
       change smaller than the bracket's own cost is below what the clock resolves. */
    double abs_noise_floor_ns;
    bool force; /* compare across different fingerprints / scenarios */
} sg_compare_options;

void sg_compare_options_init(sg_compare_options *o);

/*
 * Compares NEW with OLD: fingerprints (SG_EINPUT naming the differences unless
 * force), per latency percentile (p50, p90, p99, p99.9) ratio and verdict
 * improved / regressed / unchanged with the U test's p-value, per metric delta
 * and whether it crosses the policy's regression margin. *out is the JSON
 * document `compare --json` prints; out["regressed"] says whether anything regressed.
 */
int sg_compare_runs(const sg_compare_run *old_run, const sg_compare_run *new_run,
                    const sg_compare_options *o, json_t **out, sg_err *err);
/* The human table with arrows. */
void sg_compare_print(const json_t *cmp, FILE *out);

/* ------------------------------------------------------------------ trend */

/* Writes the self-contained HTML trend page for a sg_registry_runs document. */
int sg_trend_render(FILE *out, const json_t *runs_doc);
/* Figures charted for a runs document: "latency.p50", "latency.p99", then "metric.NAME"
 * for each gated metric in first-seen order (a JSON array of strings). */
json_t *sg_trend_figures(const json_t *runs_doc);

#ifdef __cplusplus
}
#endif
#endif
