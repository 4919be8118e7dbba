/* Streaming evaluation of a model on a validation set: what `stagegate eval` runs. */
#ifndef STAGEGATE_EVAL_H
#define STAGEGATE_EVAL_H

#include <jansson.h>

#include "stagegate/common.h"
#include "stagegate/metrics.h"
#include "stagegate/dataset.h"
#include "stagegate/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *model_path;       /* a model HDF5 file (already resolved from a models:/ URI) */
    const char *data_path;        /* validation set HDF5 */
    const char *predictions_path; /* NULL, or where to write predictions (atomically) */
    double threshold;             /* binary decision threshold on p1; 0.5 by default */
    bool threshold_given;         /* set by --threshold: refused for a model that is not binary */
    const char *cpus;             /* NULL = every core, else a list like "0-3,6" */
    int64_t chunk_rows;           /* 0 = automatic */
    int64_t max_rows;             /* 0 = any; else a set with more rows is refused before a
                                     row is read (a small file of compressed rows can hold
                                     billions: hours of work for CI) */
    bool keep_predictions;        /* keep labels/values for shadow comparison (in a temporary
                                     file while the run measures, mapped when it is done) */
    bool progress;                /* show progress on stderr */
    const char *expected_sha256;  /* NULL, or the digest the loaded model bytes must have
                                     (a registry URI's registered artifact digest) */
    /* Loaded objects passed between stages (gate): when set, eval uses them instead of
       opening model_path / data_path, and does not free them. The dataset is hashed once
       (sg_dataset_sha256) however many evaluations read it. */
    const sg_model *model;
    struct sg_dataset *dataset;
    sg_onnx_output onnx_output;   /* ONNX: what an output without Softmax/Sigmoid means */
    const char *onnx_output_name; /* ONNX: the graph output that is the model's, or NULL */
} sg_eval_config;

typedef struct {
    const sg_model *model; /* owned unless the config lent it */
    sg_model *owned_model;
    sg_metrics metrics;
    int64_t rows;
    /* Wall-clock stages of the main thread: setup (open, check, allocate, start the pool),
       wait (for the reader: input not hidden behind compute), predict, metrics (per chunk
       plus the finish, of which metrics_finish is the ranking and final sums);
       load = setup + wait. The reader's own busy time: read (HDF5 read, decode, checks) and
       hash (the dataset digest), which overlap predict except for the wait. */
    double load_seconds, predict_seconds, metrics_seconds, total_seconds;
    double setup_seconds, wait_seconds, read_seconds, hash_seconds, metrics_finish_seconds;
    int32_t *pred_labels; /* [rows] when keep_predictions and a classifier (read-only) */
    float *pred_values;   /* [rows] regression predictions when keep_predictions (read-only) */
    size_t pred_mapped;   /* bytes of the mapping they are in (sg_eval_result_clear unmaps) */
    char model_sha256[65];
    char data_sha256[65];
    int workers;
    /* The kernels full sub-batches ran on (the largest batches, with smaller chunks), per
       layer (sg_model_batch_paths), e.g. "fused paired-edges, fused paired-edges, sgemm";
       empty for a kind that does not say. */
    char predict_paths[160];
} sg_eval_result;

void sg_eval_config_init(sg_eval_config *c);
SG_MUST_CHECK sg_status sg_eval_run(const sg_eval_config *c, sg_eval_result *r, sg_err *err);

/* The checks eval makes of a model's outputs out [n][sg_model_output_width] for rows
   row0..: every value finite, and a classifier's declared probabilities (ONNX) each in
   [0, 1] with rows summing to 1. SG_EINPUT naming the model and the first bad row. */
SG_MUST_CHECK sg_status sg_eval_check_outputs(const sg_model *m, const float *out, int64_t row0,
                                              int64_t n, sg_err *err);
void sg_eval_result_clear(sg_eval_result *r);
/* Share of the reader's busy time (read + hash) that compute hid: 1 - wait / (read + hash),
   clamped to [0, 1]; 1 when the reader had nothing to do. */
double sg_eval_input_overlap(const sg_eval_result *r);
/* {"model":..., "dataset":..., "metrics":{...}, "timing":{...}} */
json_t *sg_eval_result_json(const sg_eval_config *c, const sg_eval_result *r);
/* A model as evaluated: task, n_classes (classifiers), n_features, estimator, param_bytes,
   kind, description (an ONNX model's names the output rule applied) and cost; the "model"
   object of `eval --json` (which adds path and sha256) and of a gate report's evaluation. */
json_t *sg_model_summary_json(const sg_model *m);

#ifdef __cplusplus
}
#endif
#endif
