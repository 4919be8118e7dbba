/*
 * Shadow comparison: the candidate and the baseline predict the same rows and
 * we count how often they agree. Classifiers compare labels and keep a
 * candidate-vs-baseline label matrix (where the disagreements are); regressors
 * agree when numpy.isclose would say so: |c - b| <= abs + rel * |b|.
 */
#include "stagegate/gate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

sg_status sg_shadow_compare_labels(const int32_t *candidate, const int32_t *baseline, int64_t rows,
                             int n_classes, sg_shadow_result *out, sg_err *err)
{
    memset(out, 0, sizeof *out);
    if (rows <= 0) return sg_errf(err, SG_EINPUT, "shadow comparison: no rows to compare");
    if (n_classes < 2)
        return sg_errf(err, SG_EINPUT, "shadow comparison: %d classes (at least 2)", n_classes);
    size_t k = (size_t)n_classes;
    if (n_classes <= SG_SHADOW_MATRIX_MAX) {
        out->matrix = calloc(k * k, sizeof *out->matrix);
        if (!out->matrix)
            return sg_errf(err, SG_ENOMEM, "shadow comparison: out of memory for a %dx%d matrix",
                           n_classes, n_classes);
    }
    for (int64_t i = 0; i < rows; i++) {
        int32_t c = candidate[i], b = baseline[i];
        if (c < 0 || c >= n_classes || b < 0 || b >= n_classes) {
            sg_shadow_result_clear(out);
            return sg_errf(err, SG_EINPUT,
                           "shadow comparison: row %lld has label %d vs %d outside [0, %d)",
                           (long long)i, c, b, n_classes);
        }
        if (out->matrix) out->matrix[(size_t)c * k + (size_t)b]++;
        out->agreeing += c == b;
    }
    out->done = true;
    out->classification = true;
    out->n_classes = n_classes;
    out->rows = rows;
    out->agreement = (double)out->agreeing / (double)rows;
    return SG_OK;
}

sg_status sg_shadow_compare_values(const float *candidate, const float *baseline, int64_t rows,
                             double abs_tol, double rel_tol, sg_shadow_result *out, sg_err *err)
{
    memset(out, 0, sizeof *out);
    if (rows <= 0) return sg_errf(err, SG_EINPUT, "shadow comparison: no rows to compare");
    double sum = 0, mx = 0;
    for (int64_t i = 0; i < rows; i++) {
        double c = candidate[i], b = baseline[i];
        double diff = fabs(c - b);
        if (!isfinite(diff))
            return sg_errf(err, SG_EINPUT,
                           "shadow comparison: row %lld has a non-finite prediction", (long long)i);
        out->agreeing += diff <= abs_tol + rel_tol * fabs(b);
        sum += diff;
        if (diff > mx) mx = diff;
    }
    out->done = true;
    out->rows = rows;
    out->abs_tolerance = abs_tol;
    out->rel_tolerance = rel_tol;
    out->agreement = (double)out->agreeing / (double)rows;
    out->max_abs_diff = mx;
    out->mean_abs_diff = sum / (double)rows;
    return SG_OK;
}

void sg_shadow_result_clear(sg_shadow_result *s)
{
    free(s->matrix);
    memset(s, 0, sizeof *s);
}

json_t *sg_shadow_result_json(const sg_shadow_result *s)
{
    json_t *o = json_object();
    if (!s || !s->done) {
        json_object_set_new(o, "compared", json_false());
        return o;
    }
    json_object_set_new(o, "compared", json_true());
    json_object_set_new(o, "kind", json_string(s->classification ? "labels" : "values"));
    json_object_set_new(o, "rows", json_integer(s->rows));
    json_object_set_new(o, "agreeing", json_integer(s->agreeing));
    json_object_set_new(o, "agreement", json_real(s->agreement));
    if (s->classification && !s->matrix) {
        json_object_set_new(o, "n_classes", json_integer(s->n_classes));
        json_object_set_new(o, "disagreement_matrix", json_null());
        char why[64];
        snprintf(why, sizeof why, "not kept: more classes than %d", SG_SHADOW_MATRIX_MAX);
        json_object_set_new(o, "matrix_axes", json_string(why));
    } else if (s->classification) {
        /* Rows are the candidate's label, columns the baseline's: off-diagonal cells are
         * disagreements. */
        json_t *m = json_array();
        for (int i = 0; i < s->n_classes; i++) {
            json_t *row = json_array();
            for (int j = 0; j < s->n_classes; j++)
                json_array_append_new(
                    row, json_integer(s->matrix[(size_t)i * (size_t)s->n_classes + (size_t)j]));
            json_array_append_new(m, row);
        }
        json_object_set_new(o, "disagreement_matrix", m);
        json_object_set_new(o, "matrix_axes",
                            json_string("rows: candidate label, columns: baseline label"));
    } else {
        json_object_set_new(o, "abs_tolerance", json_real(s->abs_tolerance));
        json_object_set_new(o, "rel_tolerance", json_real(s->rel_tolerance));
        json_object_set_new(o, "max_abs_diff", json_real(s->max_abs_diff));
        json_object_set_new(o, "mean_abs_diff", json_real(s->mean_abs_diff));
    }
    return o;
}
