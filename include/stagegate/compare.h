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
SG_MUST_CHECK sg_status sg_mannwhitney_binned(const sg_bin *x, size_t nx, const sg_bin *y, size_t ny, sg_mw_result *out,
                          sg_err *err);

/*
 * Mann-Whitney U test on two small samples of values (one percentile per repetition), as
 * scipy.stats.mannwhitneyu(x, y, alternative="two-sided") with its default method "auto"
 * (SciPy 1.10): the exact distribution of U when either sample has at most 8 values and no
 * value is tied, else the tie-corrected normal approximation with continuity correction.
 * *exact says which was used (z is NAN then). SG_EINPUT when a sample is empty or not finite.
 */
SG_MUST_CHECK sg_status sg_mannwhitney_values(const double *x, size_t nx, const double *y, size_t ny, sg_mw_result *out,
                          bool *exact, sg_err *err);
/* The smallest two-sided p-value the exact test can reach with nx and ny values, 2 / C(nx+ny, nx)
 * (capped at 1): with 3 against 3 it is 0.1, so no difference can be significant at 0.05. */
double sg_mannwhitney_min_p(size_t nx, size_t ny);

/* ---------------------------------------------------------------- compare */

/* Percentiles compare judges: p50, p90, p99, p99.9. */
#define SG_COMPARE_PERCENTILES 4

/* A run to compare: a signed gate report or a `bench --json` document, normalised. */
typedef struct {
    char path[4096];
    char file_sha256[65]; /* of the file's bytes, as `registry record` knows a report by */
    char kind[8];      /* "report" or "bench" */
    bool verified;     /* the report's signature verified against a given public key */
    char key_id[65];   /* the key that verified it */
    char result[16];   /* report result, "" for bench */
    char subject[512]; /* report subject name, "" for bench */
    char subject_sha256[65];
    /* SHA-256 of the envelope's payload (the signed statement), "" for bench: a run is known
       by it too, so the same report re-encoded is still NEW's own run */
    char payload_sha256[65];
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
    /* Repetitions (bench --repetitions): 0 for a run recorded without them, which counts as
       one repetition whose values are the run's own percentiles. */
    int n_reps;
    double *rep_values;   /* [n_reps][SG_COMPARE_PERCENTILES] p50, p90, p99, p99.9 (owned) */
    int64_t *rep_queries; /* [n_reps] */
    bool *rep_noisy;      /* [n_reps] the repetition crossed a noise limit (owned) */
    /* The shortest timed window of a repetition (of the run when it has none), in seconds;
       negative when the document does not say (recorded before duration_s was kept). */
    double shortest_timed_s;
} sg_compare_run;

/*
 * Loads path. A DSSE envelope is verified with pub when pub != NULL (SG_EREFUSED when
 * it does not verify); without pub its payload is read unverified and run->verified is
 * false. Anything else must be a bench JSON document (latency_ns, histogram, machine).
 */
SG_MUST_CHECK sg_status sg_compare_load(const char *path, EVP_PKEY *pub, sg_compare_run *run, sg_err *err);
/* The same on bytes already read; path names them in errors. */
SG_MUST_CHECK sg_status sg_compare_load_buffer(const char *path, const uint8_t *data, size_t len, EVP_PKEY *pub,
                           sg_compare_run *run, sg_err *err);
void sg_compare_run_clear(sg_compare_run *run);
/* Whether a run's recorded latency figure is one a history can hold: a positive, finite number
   of nanoseconds up to 1e15 (what `compare --history` reads back, and `registry record`
   stores). Absent or null figures are the caller's to allow. */
bool sg_compare_latency_ok(const json_t *v);
/* Reads an envelope's payload without verifying it (for lookups only). Caller frees. */
/* The one subject digest (sha256, 64 hex digits) an envelope's statement names, read
 * without building the documents (a flat tape of 16 bytes a value: jansson took about 700 bytes
 * for each "{}" of a statement made of them, 160 MB for a 1 MiB upload). Unverified, as
 * sg_dsse_payload_unverified. SG_EINPUT, naming what is wrong, when there is not exactly one. */
SG_MUST_CHECK sg_status sg_dsse_subject_unverified(const uint8_t *env, size_t len, char out[65],
                                                   sg_err *err);
SG_MUST_CHECK sg_status sg_dsse_payload_unverified(const uint8_t *env, size_t len, json_t **statement, sg_err *err);

/*
 * Default relative floors, derived from 20 A/A pairs of 5-repetition runs on the 2-core
 * development VM under a load average of 2 to 6 (docs/nightly.md): at least the largest move of
 * the repetition medians seen between two runs of the same model (10.5%, 11.1%, 10.8% and 105%).
 */
#define SG_COMPARE_FLOOR_P50 0.12
#define SG_COMPARE_FLOOR_P90 0.12
#define SG_COMPARE_FLOOR_P99 0.12
#define SG_COMPARE_FLOOR_P999 1.10
/*
 * With one repetition on a side (or too few for the U test), the floor a move must exceed: at
 * least the largest move of one repetition against one seen in the same A/A runs (13%, 18%,
 * 49% and 316% over 100 pairs).
 */
#define SG_COMPARE_SINGLE_FLOOR_P50 0.20
#define SG_COMPARE_SINGLE_FLOOR_P90 0.20
#define SG_COMPARE_SINGLE_FLOOR_P99 0.50
#define SG_COMPARE_SINGLE_FLOOR_P999 3.20
/* Noisy repetitions are left out of a side only while this many clean ones remain. */
#define SG_COMPARE_MIN_CLEAN_REPETITIONS 5
/* A recorded history needs this many runs before it counts as a noise band. */
#define SG_COMPARE_HISTORY_MIN_RUNS 3
/*
 * The shortest timed window a repetition needs before its latency is judged at all. Shorter
 * repetitions, back to back, share one moment of the machine, so their spread says nothing of
 * the variation between runs. A/A runs on the loaded development VM (docs/nightly.md): with
 * 700 queries per repetition (0.03-1.4 ms) identical runs were flagged in 7 of 27 pairs; with
 * 0.5 s (Google Benchmark's default minimum time per run) in 2 of 23, at p99; with 1 s (bench's
 * default --duration) and 2 s (the policy's default duration_s) in none of 22 each.
 */
#define SG_COMPARE_MIN_REPETITION_S 1.0

typedef struct {
    double alpha; /* significance level of the U test over repetitions, default 0.05 */
    /* Relative change below which a percentile is unchanged; negative (the default) means the
       per-percentile defaults SG_COMPARE_FLOOR_*. */
    double noise_floor;
    /* Negative (the default) means the per-percentile SG_COMPARE_SINGLE_FLOOR_*. */
    double single_run_floor;
    /* Leave out repetitions that crossed a noise limit while SG_COMPARE_MIN_CLEAN_REPETITIONS
       clean ones remain (default true). */
    bool discount_noisy;
    /* Optional `registry runs --json` document: earlier runs of the same version on the same
       fingerprint. A move that stays inside their [min, max] is unchanged. Borrowed. */
    const json_t *history;
    /* Absolute change (ns) below which a percentile is unchanged. Negative (the default) means
       automatic: the larger timing-bracket overhead of the two runs (clock.overhead_ns), since a
       change smaller than the bracket's own cost is below what the clock resolves. */
    double abs_noise_floor_ns;
    /* Repetitions timed for less than this (seconds) are not judged. Negative (the default)
       means SG_COMPARE_MIN_REPETITION_S; 0 judges every run. */
    double min_repetition_s;
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
SG_MUST_CHECK sg_status sg_compare_runs(const sg_compare_run *old_run, const sg_compare_run *new_run,
                    const sg_compare_options *o, json_t **out, sg_err *err);
/* The human table with arrows. */
void sg_compare_print(const json_t *cmp, FILE *out);
/*
 * One word for a whole comparison (a `compare --json` document), as the registry stores it
 * with a run: "regressed" when anything regressed; "improved" when something improved and
 * nothing got worse, not even within its margin; else "unchanged". SG_EINPUT naming path when
 * cmp is not such a document.
 */
SG_MUST_CHECK sg_status sg_compare_verdict(const json_t *cmp, const char *path, const char **verdict,
                                           sg_err *err);

/* ------------------------------------------------------------------ trend */

/* Writes the self-contained HTML trend page for a sg_registry_runs document. */
SG_MUST_CHECK sg_status sg_trend_render(FILE *out, const json_t *runs_doc);
/* Figures charted for a runs document: "latency.p50", "latency.p99", then "metric.NAME"
 * for each gated metric in first-seen order (a JSON array of strings). */
json_t *sg_trend_figures(const json_t *runs_doc);

#ifdef __cplusplus
}
#endif
#endif
