/*
 * Test-only tool: loads a model and a validation set through the datasets/ API
 * and prints the model's outputs computed by a plain double-precision forward
 * pass, independent of the optimised kernels. The exporter test compares them
 * with scikit-learn's predict_proba / predict.
 *
 * usage: model_forward MODEL.h5 DATA.h5   (stdout: a header line, then one row per sample)
 * Exit 2 with the loader's one-line message on any load/read error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "stagegate/dataset.h"
#include "stagegate/model.h"

static double act(sg_activation a, double z)
{
    switch (a) {
    case SG_ACT_RELU:
        return z > 0 ? z : 0;
    case SG_ACT_TANH:
        return tanh(z);
    case SG_ACT_LOGISTIC:
        return 1.0 / (1.0 + exp(-z));
    default:
        return z;
    }
}

/* out receives sg_model_output_width(m) values: class probabilities or the prediction. */
static void forward(const sg_model *m, const float *x, double *a, double *b, double *out)
{
    for (int j = 0; j < m->n_features; j++)
        a[j] = m->mean ? ((double)x[j] - m->mean[j]) / m->scale[j] : x[j];
    for (int l = 0; l < m->n_layers; l++) {
        const sg_layer *L = &m->layers[l];
        for (int o = 0; o < L->n_out; o++) {
            double z = L->b[o];
            for (int i = 0; i < L->n_in; i++)
                z += a[i] * (double)L->W[(size_t)i * L->n_out + o];
            b[o] = act(L->act, z);
        }
        double *t = a;
        a = b;
        b = t;
    }
    if (m->link == SG_LINK_SIGMOID) {
        out[1] = 1.0 / (1.0 + exp(-a[0]));
        out[0] = 1.0 - out[1];
    } else if (m->link == SG_LINK_SOFTMAX) {
        double mx = a[0], s = 0;
        for (int k = 1; k < m->n_outputs; k++)
            mx = a[k] > mx ? a[k] : mx;
        for (int k = 0; k < m->n_outputs; k++)
            s += out[k] = exp(a[k] - mx);
        for (int k = 0; k < m->n_outputs; k++)
            out[k] /= s;
    } else {
        out[0] = a[0];
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: model_forward MODEL.h5 DATA.h5\n");
        return 2;
    }
    sg_err err = {{0}};
    sg_model *m = NULL;
    sg_dataset *ds = NULL;
    int rc = sg_model_load(argv[1], &m, &err);
    if (!rc) rc = sg_dataset_open(argv[2], &ds, &err);
    if (!rc) rc = sg_dataset_check_model(ds, m, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        sg_model_free(m);
        sg_dataset_close(ds);
        return 2;
    }
    int64_t n = sg_dataset_rows(ds);
    int w = sg_model_output_width(m), mw = sg_model_max_width(m);
    char hex[65];
    sg_hex_encode(m->sha256, 32, hex);
    printf("task=%s n_classes=%d n_features=%d n_layers=%d link=%s width=%d rows=%lld sha256=%s",
           sg_task_name(m->task), m->n_classes, m->n_features, m->n_layers, sg_link_name(m->link),
           w, (long long)n, hex);
    for (int l = 0; l < m->n_layers; l++)
        printf(" layer%d=%dx%d:%s", l, m->layers[l].n_in, m->layers[l].n_out,
               sg_activation_name(m->layers[l].act));
    printf("\n");
    float *X = malloc((size_t)n * (size_t)m->n_features * sizeof *X);
    double *a = malloc((size_t)mw * sizeof *a), *b = malloc((size_t)mw * sizeof *b);
    double *o = malloc((size_t)w * sizeof *o);
    int32_t *labels = m->task == SG_TASK_REGRESSION ? NULL : malloc((size_t)n * sizeof *labels);
    rc = sg_dataset_read(ds, 0, n, X, labels, NULL, NULL, m->n_classes, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
    } else {
        for (int64_t r = 0; r < n; r++) {
            forward(m, X + r * m->n_features, a, b, o);
            for (int k = 0; k < w; k++)
                printf(k ? " %.17g" : "%.17g", o[k]);
            printf("\n");
        }
    }
    free(o);
    free(labels);
    free(X);
    free(a);
    free(b);
    sg_dataset_close(ds);
    sg_model_free(m);
    return rc ? 2 : 0;
}
