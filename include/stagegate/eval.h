/* Streaming evaluation of a model on a validation set: what `stagegate eval` runs. */
#ifndef STAGEGATE_EVAL_H
#define STAGEGATE_EVAL_H

#include <jansson.h>

#include "stagegate/common.h"
#include "stagegate/metrics.h"
#include "stagegate/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *model_path;       /* a model HDF5 file (already resolved from a models:/ URI) */
    const char *data_path;        /* validation set HDF5 */
    const char *predictions_path; /* NULL, or where to write predictions (atomically) */
    float threshold;              /* binary decision threshold on p1; 0.5 by default */
    const char *cpus;             /* NULL = every core, else a list like "0-3,6" */
    int64_t chunk_rows;           /* 0 = automatic */
    bool keep_predictions;        /* keep labels/values in memory for shadow comparison */
    bool progress;                /* show progress on stderr */
    const char *expected_sha256;  /* NULL, or the digest the loaded model bytes must have
                                     (a registry URI's registered artifact digest) */
    sg_onnx_output onnx_output;   /* ONNX: what an output without Softmax/Sigmoid means */
} sg_eval_config;

typedef struct {
    sg_model *model; /* owned */
    sg_metrics metrics;
    int64_t rows;
    double load_seconds, predict_seconds, metrics_seconds, total_seconds;
    int32_t *pred_labels; /* [rows] when keep_predictions and a classifier */
    float *pred_values;   /* [rows] regression predictions when keep_predictions */
    char model_sha256[65];
    char data_sha256[65];
    int workers;
} sg_eval_result;

void sg_eval_config_init(sg_eval_config *c);
int sg_eval_run(const sg_eval_config *c, sg_eval_result *r, sg_err *err);
void sg_eval_result_clear(sg_eval_result *r);
/* {"model":..., "dataset":..., "metrics":{...}, "timing":{...}} */
json_t *sg_eval_result_json(const sg_eval_config *c, const sg_eval_result *r);

#ifdef __cplusplus
}
#endif
#endif
