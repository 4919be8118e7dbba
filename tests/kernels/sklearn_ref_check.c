/*
 * Reads the estimators dumped by sklearn_ref.py and checks sg_forward_batch and
 * sg_forward_one, for every variant the CPU runs, against scikit-learn's float64
 * output: probabilities within 1e-5 absolute, regression within 1e-6 of the
 * largest |prediction|.
 *   usage: sg_kernels_sklearn_check DIR NAME...
 * Exit 0 when all agree, 1 on a mismatch, 2 on a bad file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/kernels.h"

static FILE *open_part(const char *dir, const char *name, const char *ext)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "sklearn_ref_check: cannot open %s\n", path);
        exit(2);
    }
    return f;
}

static void get(void *p, size_t size, size_t n, FILE *f, const char *what)
{
    if (fread(p, size, n, f) != n) {
        fprintf(stderr, "sklearn_ref_check: %s is truncated\n", what);
        exit(2);
    }
}

static float *get_floats(size_t n, FILE *f, const char *what)
{
    float *p = sg_alloc_aligned(n * sizeof *p);
    if (!p) exit(2);
    get(p, sizeof *p, n, f, what);
    return p;
}

static sg_model *read_model(const char *dir, const char *name)
{
    FILE *f = open_part(dir, name, "model");
    int32_t h[6];
    get(h, 4, 6, f, name);
    if (h[3] < 1 || h[3] > SG_MAX_LAYERS || h[2] < 1) {
        fprintf(stderr, "sklearn_ref_check: %s.model has a bad header\n", name);
        exit(2);
    }
    sg_model *m = calloc(1, sizeof *m);
    m->task = (sg_task)h[0];
    m->n_classes = h[1];
    m->n_features = h[2];
    m->n_layers = h[3];
    m->link = (sg_link)h[4];
    snprintf(m->path, sizeof m->path, "%s", name);
    if (h[5]) {
        m->mean = get_floats((size_t)m->n_features, f, name);
        m->scale = get_floats((size_t)m->n_features, f, name);
    }
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    for (int l = 0; l < m->n_layers; l++) {
        int32_t lh[3];
        get(lh, 4, 3, f, name);
        sg_layer *L = &m->layers[l];
        L->n_in = lh[0];
        L->n_out = lh[1];
        L->act = (sg_activation)lh[2];
        L->W = get_floats((size_t)L->n_in * (size_t)L->n_out, f, name);
        L->b = get_floats((size_t)L->n_out, f, name);
    }
    m->n_outputs = m->layers[m->n_layers - 1].n_out;
    fclose(f);
    return m;
}

static void free_model(sg_model *m)
{
    for (int l = 0; l < m->n_layers; l++) {
        sg_free_aligned(m->layers[l].W);
        sg_free_aligned(m->layers[l].b);
    }
    free(m->layers);
    sg_free_aligned(m->mean);
    sg_free_aligned(m->scale);
    free(m);
}

/* Returns the number of mismatching values for one estimator over all variants. */
static int check(const char *dir, const char *name)
{
    sg_model *m = read_model(dir, name);
    FILE *fx = open_part(dir, name, "x"), *fe = open_part(dir, name, "expect");
    int32_t xs[2], es[2];
    get(xs, 4, 2, fx, name);
    get(es, 4, 2, fe, name);
    const int n = xs[0], w = es[1];
    const int want_w = (m->link == SG_LINK_SIGMOID && m->n_outputs == 1) ? 2 : m->n_outputs;
    if (xs[1] != m->n_features || es[0] != n || w != want_w) {
        fprintf(stderr, "sklearn_ref_check: %s: shapes disagree\n", name);
        exit(2);
    }
    float *X = get_floats((size_t)n * xs[1], fx, name);
    double *E = malloc(sizeof(double) * (size_t)n * w);
    get(E, sizeof(double), (size_t)n * w, fe, name);
    fclose(fx);
    fclose(fe);

    /* Probabilities: 1e-5 absolute. Regression: float32 weights and sums carry an absolute
       error proportional to the size of the terms, not of the result (a prediction near 0
       from targets of size 300 is a cancellation), so the bound is 1e-6 of the output scale,
       about 16 float32 ulp of the largest prediction. */
    double tol = 1e-5;
    if (m->task == SG_TASK_REGRESSION) {
        double scale = 1.0;
        for (int i = 0; i < n * w; i++)
            scale = fmax(scale, fabs(E[i]));
        tol = 1e-6 * scale;
    }
    int bad = 0;
    float *ob = malloc(sizeof(float) * (size_t)n * w), *o1 = malloc(sizeof(float) * (size_t)w);
    for (int isa = 0; isa < SG_ISA_COUNT; isa++) {
        const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
        if (!k) {
            printf("%s: skipping %s (this CPU or OS cannot run it)\n", name,
                   sg_isa_name((sg_isa)isa));
            continue;
        }
        sg_forward_scratch *s;
        sg_err err;
        if (sg_forward_scratch_new(m, n, &s, &err) != SG_OK) {
            fprintf(stderr, "sklearn_ref_check: %s\n", err.msg);
            exit(2);
        }
        sg_forward_batch(m, k, X, n, ob, s);
        double worst = 0;
        for (int r = 0; r < n; r++) {
            sg_forward_one(m, k, X + (size_t)r * xs[1], o1, s);
            for (int j = 0; j < w; j++) {
                const double e = E[(size_t)r * w + j];
                const double d = fmax(fabs(ob[(size_t)r * w + j] - e), fabs(o1[j] - e));
                if (d / tol > worst) worst = d / tol;
                if (!(d <= tol) && bad++ < 5)
                    fprintf(stderr, "%s %s row %d col %d: batch %.9g one %.9g sklearn %.9g\n", name,
                            k->name, r, j, (double)ob[(size_t)r * w + j], (double)o1[j], e);
            }
        }
        printf("%s %s: %d rows, worst error %.3f of tolerance %.3g\n", name, k->name, n, worst,
               tol);
        sg_forward_scratch_free(s);
    }
    free(ob);
    free(o1);
    free(E);
    sg_free_aligned(X);
    free_model(m);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sg_kernels_sklearn_check DIR NAME...\n");
        return 2;
    }
    int bad = 0;
    for (int i = 2; i < argc; i++)
        bad += check(argv[1], argv[i]);
    if (bad) fprintf(stderr, "sklearn_ref_check: %d values outside tolerance\n", bad);
    return bad ? 1 : 0;
}
