/*
 * Evaluation metrics with scikit-learn 1.2.1's exact definitions, accumulated over chunks.
 *
 * Conventions (all as sklearn.metrics, see docs in kernels/metrics.c):
 *  - binary: positive label 1, score = proba[:, 1]; precision/recall/f1 use zero_division=0.
 *  - roc_auc is undefined (JSON null, sg_metrics_get returns false) when y_true holds one class
 *    only (sklearn raises) or when one class has zero total weight (sklearn returns nan).
 *  - f1_macro/f1_micro/f1_weighted average over the labels present in y_true or y_pred.
 *  - log_loss uses labels 0..k-1, clips with eps = DBL_EPSILON (what sklearn does for float64
 *    probabilities) and renormalises every row, computed in double from the float32 input.
 *  - r2_score follows force_finite=True (constant targets: 1.0 if perfect, else 0.0) and is
 *    undefined (null) with fewer than two rows, as sklearn returns nan there.
 *  - max_error ignores weights, as sklearn does.
 * Weights must be finite and >= 0 and must not all be zero; either every chunk has weights
 * or none has (the first add call decides).
 */
#ifndef STAGEGATE_METRICS_H
#define STAGEGATE_METRICS_H

#include <jansson.h>

#include "stagegate/common.h"
#include "stagegate/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Classification sums run over blocks of this many rows from the first row of each add
   call: chunks whose sizes are multiples of it give the same bits whatever the chunking. */
#define SG_METRICS_ROW_BLOCK 256

/* Above this class count the k*k confusion matrix is not kept (NULL, omitted from JSON). */
#define SG_METRICS_CM_MAX_CLASSES 1024

typedef struct {
    sg_task task;
    int n_classes;
    int64_t example_count;
    bool weighted; /* sample weights were given (confusion matrix holds weighted sums) */
    /* binary */
    double accuracy, precision, recall, f1, roc_auc, average_precision, log_loss;
    bool roc_auc_defined; /* false when only one class is present (sklearn raises) */
    /* multiclass (accuracy and log_loss shared) */
    double f1_macro, f1_micro, f1_weighted;
    /* classifiers: [n_classes][n_classes] weighted counts, row = true, col = predicted;
       NULL when n_classes > SG_METRICS_CM_MAX_CLASSES */
    double *confusion_matrix;
    /* regression */
    double mean_absolute_error, mean_squared_error, root_mean_squared_error, r2_score, max_error;
    bool r2_defined; /* false with fewer than two rows (sklearn returns nan) */
} sg_metrics;

/*
 * Streaming accumulator. Binary classification keeps each row's positive score as a 4-byte
 * sort key (plus its 8-byte weight when weights are given) for ROC AUC / average precision;
 * everything else is compensated running sums, so memory stays small.
 */
typedef struct sg_metrics_acc sg_metrics_acc;

/* n_classes: 2 for binary, k >= 2 for multiclass, ignored for regression. expected_rows
   (0 = unknown) presizes the binary score store. */
SG_MUST_CHECK sg_status sg_metrics_acc_new(sg_task task, int n_classes, int64_t expected_rows, sg_metrics_acc **out,
                       sg_err *err);
void sg_metrics_acc_free(sg_metrics_acc *a);

/* Classifiers: proba [n][k] (binary k=2), true labels, predicted labels, weights (NULL = 1).
   Labels must lie in 0..k-1, probabilities and weights must be finite; a bad row is SG_EINPUT
   and the accumulator is left unchanged by that call. */
SG_MUST_CHECK sg_status sg_metrics_add_classification(sg_metrics_acc *a, int64_t n, const float *proba,
                                  const int32_t *y_true, const int32_t *y_pred,
                                  const double *weights, sg_err *err);
/*
 * Log-loss terms of weighted rows, for callers that compute them in parallel (rows are
 * independent; thread-safe): out[i] = log(p / s), p the clipped probability of row i's true
 * class and s its clipped row sum, exactly as sg_metrics_add_classification computes them
 * for weighted rows. k = n_classes; rows whose label lies outside 0..k-1 get NaN (the add
 * refuses them anyway).
 */
void sg_metrics_log_terms(int k, int64_t n, const float *proba, const int32_t *y_true, double *out);
/* sg_metrics_add_classification with the rows' sg_metrics_log_terms given (NULL: computed
   here); they are used only when weights are given, where the results are the same bits. */
SG_MUST_CHECK sg_status sg_metrics_add_classification_terms(sg_metrics_acc *a, int64_t n,
                                                            const float *proba,
                                                            const int32_t *y_true,
                                                            const int32_t *y_pred,
                                                            const double *weights,
                                                            const double *log_terms, sg_err *err);
/* Regressors: predictions [n], targets, weights (NULL = 1). */
SG_MUST_CHECK sg_status sg_metrics_add_regression(sg_metrics_acc *a, int64_t n, const float *pred, const double *y_true,
                              const double *weights, sg_err *err);

/* Computes final values into out (overwritten: clear a previous result first);
   out->confusion_matrix is owned by out (sg_metrics_clear frees it).
   SG_EINPUT when no rows were added or all weights are zero. The accumulator may be freed
   afterwards; finishing twice is allowed. */
SG_MUST_CHECK sg_status sg_metrics_finish(sg_metrics_acc *a, sg_metrics *out, sg_err *err);
void sg_metrics_clear(sg_metrics *m);

/* Adds the metric fields (MLflow/sklearn names) to obj; only the ones valid for the task.
   Undefined values are JSON null. Returns 0, or -1 when jansson fails to allocate. */
sg_status sg_metrics_to_json(const sg_metrics *m, json_t *obj);
/* Looks a scalar metric up by name; returns false when it is not defined for the task or its
   value is undefined (roc_auc with one class, r2_score with one row). */
bool sg_metrics_get(const sg_metrics *m, const char *name, double *value);

#ifdef __cplusplus
}
#endif
#endif
