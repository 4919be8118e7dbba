/* Metric names (sklearn / MLflow) for JSON output and by-name look-up by the gate. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "stagegate/metrics.h"

#define T_BIN (1u << SG_TASK_BINARY)
#define T_MC (1u << SG_TASK_MULTICLASS)
#define T_CLS (T_BIN | T_MC)
#define T_REG (1u << SG_TASK_REGRESSION)
#define NO_FLAG ((size_t)-1)

/* The table order is the JSON order: scalars first, then the matrix and the row count. */
static const struct {
    const char *name;
    unsigned tasks;
    size_t value;   /* offset of the double in sg_metrics */
    size_t defined; /* offset of its bool "defined" flag, or NO_FLAG */
} metric_table[] = {
    {"accuracy", T_CLS, offsetof(sg_metrics, accuracy), NO_FLAG},
    {"precision", T_BIN, offsetof(sg_metrics, precision), NO_FLAG},
    {"recall", T_BIN, offsetof(sg_metrics, recall), NO_FLAG},
    {"f1", T_BIN, offsetof(sg_metrics, f1), NO_FLAG},
    {"roc_auc", T_BIN, offsetof(sg_metrics, roc_auc), offsetof(sg_metrics, roc_auc_defined)},
    {"average_precision", T_BIN, offsetof(sg_metrics, average_precision), NO_FLAG},
    {"f1_macro", T_CLS, offsetof(sg_metrics, f1_macro), NO_FLAG},
    {"f1_micro", T_CLS, offsetof(sg_metrics, f1_micro), NO_FLAG},
    {"f1_weighted", T_CLS, offsetof(sg_metrics, f1_weighted), NO_FLAG},
    {"log_loss", T_CLS, offsetof(sg_metrics, log_loss), NO_FLAG},
    {"mean_absolute_error", T_REG, offsetof(sg_metrics, mean_absolute_error), NO_FLAG},
    {"mean_squared_error", T_REG, offsetof(sg_metrics, mean_squared_error), NO_FLAG},
    {"root_mean_squared_error", T_REG, offsetof(sg_metrics, root_mean_squared_error), NO_FLAG},
    {"r2_score", T_REG, offsetof(sg_metrics, r2_score), offsetof(sg_metrics, r2_defined)},
    {"max_error", T_REG, offsetof(sg_metrics, max_error), NO_FLAG},
};
#define N_METRICS (sizeof metric_table / sizeof metric_table[0])

/* The binary metrics apply to every two-class classifier (binary, or multiclass of 2
   classes), the averaged F1s to every classifier: one problem has one metric set whatever
   its model's format calls it. */
static bool applies(const sg_metrics *m, size_t i)
{
    const unsigned t = metric_table[i].tasks;
    if (m->task == SG_TASK_REGRESSION) return (t & T_REG) != 0;
    if (t == T_BIN) return m->n_classes == 2;
    return (t & T_CLS) != 0;
}

/* Reads entry i; false when its value is undefined for this run. */
static bool entry_value(const sg_metrics *m, size_t i, double *v)
{
    const char *base = (const char *)m;
    memcpy(v, base + metric_table[i].value, sizeof *v);
    if (metric_table[i].defined != NO_FLAG) {
        bool ok;
        memcpy(&ok, base + metric_table[i].defined, sizeof ok);
        if (!ok) return false;
    }
    return isfinite(*v);
}

static json_t *matrix_json(const sg_metrics *m)
{
    size_t k = (size_t)m->n_classes;
    json_t *rows = json_array();
    for (size_t i = 0; rows && i < k; i++) {
        json_t *row = json_array();
        if (!row || json_array_append_new(rows, row)) {
            json_decref(rows);
            return NULL;
        }
        for (size_t j = 0; j < k; j++) {
            double v = m->confusion_matrix[i * k + j];
            /* Unweighted cells are counts: print them as integers, like sklearn's int64. */
            json_t *cell = m->weighted ? json_real(v) : json_integer((json_int_t)v);
            if (!cell || json_array_append_new(row, cell)) {
                json_decref(rows);
                return NULL;
            }
        }
    }
    return rows;
}

sg_status sg_metrics_to_json(const sg_metrics *m, json_t *obj)
{
    for (size_t i = 0; i < N_METRICS; i++) {
        if (!applies(m, i)) continue;
        double v;
        json_t *val = entry_value(m, i, &v) ? json_real(v) : json_null();
        if (!val || json_object_set_new(obj, metric_table[i].name, val)) return -1;
    }
    if (m->task != SG_TASK_REGRESSION && m->confusion_matrix) {
        json_t *cm = matrix_json(m);
        if (!cm || json_object_set_new(obj, "confusion_matrix", cm)) return -1;
    }
    json_t *n = json_integer((json_int_t)m->example_count);
    if (!n || json_object_set_new(obj, "example_count", n)) return -1;
    return 0;
}

bool sg_metrics_get(const sg_metrics *m, const char *name, double *value)
{
    if (strcmp(name, "example_count") == 0) {
        *value = (double)m->example_count;
        return true;
    }
    for (size_t i = 0; i < N_METRICS; i++) {
        if (strcmp(metric_table[i].name, name) != 0) continue;
        double v;
        if (!applies(m, i) || !entry_value(m, i, &v)) return false;
        *value = v;
        return true;
    }
    return false;
}
