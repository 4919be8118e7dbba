/* Evaluation metrics with scikit-learn's exact definitions, accumulated over chunks. */
#ifndef STAGEGATE_METRICS_H
#define STAGEGATE_METRICS_H

#include <jansson.h>

#include "stagegate/common.h"
#include "stagegate/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    sg_task task;
    int n_classes;
    int64_t example_count;
    /* binary */
    double accuracy, precision, recall, f1, roc_auc, average_precision, log_loss;
    bool roc_auc_defined; /* false when only one class is present (sklearn raises) */
    /* multiclass (accuracy and log_loss shared) */
    double f1_macro, f1_micro, f1_weighted;
    /* classifiers: [n_classes][n_classes] weighted counts, row = true, col = predicted */
    double *confusion_matrix;
    /* regression */
    double mean_absolute_error, mean_squared_error, root_mean_squared_error, r2_score, max_error;
} sg_metrics;

/*
 * Streaming accumulator. Classification keeps per-row (label, positive score, weight)
 * only for binary ROC AUC / average precision (12 bytes a row); everything else is
 * running sums, so memory stays small.
 */
typedef struct sg_metrics_acc sg_metrics_acc;

int sg_metrics_acc_new(sg_task task, int n_classes, int64_t expected_rows, sg_metrics_acc **out,
                       sg_err *err);
void sg_metrics_acc_free(sg_metrics_acc *a);

/* Classifiers: proba [n][k] (binary k=2), true labels, predicted labels, weights (NULL = 1). */
int sg_metrics_add_classification(sg_metrics_acc *a, int64_t n, const float *proba,
                                  const int32_t *y_true, const int32_t *y_pred,
                                  const double *weights, sg_err *err);
/* Regressors: predictions [n], targets, weights (NULL = 1). */
int sg_metrics_add_regression(sg_metrics_acc *a, int64_t n, const float *pred,
                              const double *y_true, const double *weights, sg_err *err);

/* Computes final values; out->confusion_matrix is owned by out (sg_metrics_clear frees it). */
int sg_metrics_finish(sg_metrics_acc *a, sg_metrics *out, sg_err *err);
void sg_metrics_clear(sg_metrics *m);

/* Adds the metric fields (MLflow/sklearn names) to obj; only the ones valid for the task. */
int sg_metrics_to_json(const sg_metrics *m, json_t *obj);
/* Looks a metric up by name; returns false when it is not defined for the task. */
bool sg_metrics_get(const sg_metrics *m, const char *name, double *value);

#ifdef __cplusplus
}
#endif
#endif
