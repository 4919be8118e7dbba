/*
 * Forward pass: sg_forward_batch (OpenBLAS + fused epilogue) and sg_forward_one
 * (matvec only) for every available variant, against a naive double-precision
 * forward written here from the model definition, over the model shapes the
 * scikit-learn exporter produces. Models are built in memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/kernels.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float urand(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 40) * (1.0 / 16777216.0));
}

static float *aligned_fill(size_t n, float lo, float hi)
{
    float *p = sg_alloc_aligned(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = urand(lo, hi);
    return p;
}

/* widths: n_features, hidden..., n_outputs; acts for the hidden layers. */
static sg_model *make_model(sg_task task, int n_classes, const int *widths, int n_widths,
                            sg_activation act, sg_link link, bool standardize)
{
    sg_model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->task = task;
    m->n_classes = n_classes;
    m->n_features = widths[0];
    m->n_outputs = widths[n_widths - 1];
    m->n_layers = n_widths - 1;
    m->link = link;
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    for (int l = 0; l < m->n_layers; l++) {
        sg_layer *L = &m->layers[l];
        L->n_in = widths[l];
        L->n_out = widths[l + 1];
        const float s = 1.5f / sqrtf((float)L->n_in);
        L->W = aligned_fill((size_t)L->n_in * (size_t)L->n_out, -s, s);
        L->b = aligned_fill((size_t)L->n_out, -0.5f, 0.5f);
        L->act = l == m->n_layers - 1 ? SG_ACT_IDENTITY : act;
    }
    if (standardize) {
        m->mean = aligned_fill((size_t)m->n_features, -3, 3);
        m->scale = aligned_fill((size_t)m->n_features, 0.2f, 4);
    }
    snprintf(m->path, sizeof m->path, "in-memory test model");
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

static int out_width(const sg_model *m)
{
    return (m->link == SG_LINK_SIGMOID && m->n_outputs == 1) ? 2 : m->n_outputs;
}

/* The reference: textbook double-precision forward, written independently of the kernels. */
static void naive_forward(const sg_model *m, const float *x, double *out)
{
    double a[1024], z[1024];
    for (int j = 0; j < m->n_features; j++)
        a[j] = m->mean ? ((double)x[j] - m->mean[j]) / m->scale[j] : x[j];
    for (int l = 0; l < m->n_layers; l++) {
        const sg_layer *L = &m->layers[l];
        for (int j = 0; j < L->n_out; j++) {
            double s = L->b[j];
            for (int i = 0; i < L->n_in; i++)
                s += a[i] * L->W[(size_t)i * L->n_out + j];
            switch (L->act) {
            case SG_ACT_RELU:
                s = s > 0 ? s : 0;
                break;
            case SG_ACT_TANH:
                s = tanh(s);
                break;
            case SG_ACT_LOGISTIC:
                s = 1 / (1 + exp(-s));
                break;
            default:
                break;
            }
            z[j] = s;
        }
        memcpy(a, z, sizeof(double) * (size_t)L->n_out);
    }
    const int k = m->n_outputs;
    if (m->link == SG_LINK_SIGMOID && k == 1) {
        out[1] = 1 / (1 + exp(-a[0]));
        out[0] = 1 / (1 + exp(a[0]));
    } else if (m->link == SG_LINK_SOFTMAX) {
        double mx = a[0], sum = 0;
        for (int j = 1; j < k; j++)
            mx = fmax(mx, a[j]);
        for (int j = 0; j < k; j++)
            sum += exp(a[j] - mx);
        for (int j = 0; j < k; j++)
            out[j] = exp(a[j] - mx) / sum;
    } else {
        for (int j = 0; j < k; j++)
            out[j] = m->link == SG_LINK_SIGMOID ? 1 / (1 + exp(-a[j])) : a[j];
    }
}

/* Runs one model through every available variant, both paths, against the reference. */
static void check_model(sg_model *m, int n)
{
    const int d = m->n_features, ow = out_width(m);
    float *X = aligned_fill((size_t)n * d, -4, 4);
    double *ref = malloc(sizeof(double) * (size_t)n * ow);
    for (int r = 0; r < n; r++)
        naive_forward(m, X + (size_t)r * d, ref + (size_t)r * ow);
    float *Xcopy = malloc(sizeof(float) * (size_t)n * d);
    memcpy(Xcopy, X, sizeof(float) * (size_t)n * d);

    for (int isa = 0; isa < SG_ISA_COUNT; isa++) {
        const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
        if (!k) {
            print_message("skipping %s: this CPU or OS cannot run it\n", sg_isa_name((sg_isa)isa));
            continue;
        }
        sg_forward_scratch *s = NULL;
        sg_err err;
        assert_int_equal(sg_forward_scratch_new(m, n, &s, &err), SG_OK);
        float *ob = malloc(sizeof(float) * (size_t)n * ow + 64),
              *o1 = malloc(sizeof(float) * (size_t)ow + 64);
        for (int i = 0; i < n * ow + 16; i++)
            ob[i] = -9.0f;
        sg_forward_batch(m, k, X, n, ob, s);
        assert_memory_equal(X, Xcopy, sizeof(float) * (size_t)n * d); /* input untouched */
        for (int i = n * ow; i < n * ow + 16; i++)
            assert_true(ob[i] == -9.0f);
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < ow + 16; j++)
                o1[j] = -9.0f;
            sg_forward_one(m, k, X + (size_t)r * d, o1, s);
            for (int j = ow; j < ow + 16; j++)
                assert_true(o1[j] == -9.0f);
            for (int j = 0; j < ow; j++) {
                const double e = ref[(size_t)r * ow + j];
                /* 1e-5 absolute is the bar against scikit-learn's float64 predict_proba;
                   regression outputs are unbounded, so relative there. */
                const double tol = m->task == SG_TASK_REGRESSION ? 1e-5 * fmax(1, fabs(e)) : 1e-5;
                const float b = ob[(size_t)r * ow + j], one = o1[j];
                if (!(fabs(b - e) <= tol && fabs(one - e) <= tol)) {
                    print_error("%s %s row %d col %d: batch %.9g one %.9g ref %.9g\n", k->name,
                                m->estimator, r, j, (double)b, (double)one, e);
                    fail();
                }
            }
        }
        free(ob);
        free(o1);
        sg_forward_scratch_free(s);
    }
    free(X);
    free(Xcopy);
    free(ref);
}

#define MODEL(task, k, act, link, std, ...)                                                        \
    do {                                                                                           \
        const int w_[] = {__VA_ARGS__};                                                            \
        sg_model *m_ = make_model(task, k, w_, (int)(sizeof w_ / sizeof w_[0]), act, link, std);   \
        snprintf(m_->estimator, sizeof m_->estimator, "%s", #__VA_ARGS__);                         \
        check_model(m_, 37);                                                                       \
        free_model(m_);                                                                            \
    } while (0)

static void test_linear_models(void **st)
{
    (void)st;
    /* StandardScaler + binary LogisticRegression, multinomial, Ridge/LinearRegression. */
    MODEL(SG_TASK_BINARY, 2, SG_ACT_IDENTITY, SG_LINK_SIGMOID, true, 20, 1);
    MODEL(SG_TASK_MULTICLASS, 5, SG_ACT_IDENTITY, SG_LINK_SOFTMAX, false, 33, 5);
    MODEL(SG_TASK_MULTICLASS, 3, SG_ACT_IDENTITY, SG_LINK_SOFTMAX, true, 4, 3);
    MODEL(SG_TASK_REGRESSION, 0, SG_ACT_IDENTITY, SG_LINK_IDENTITY, true, 17, 1);
    MODEL(SG_TASK_REGRESSION, 0, SG_ACT_IDENTITY, SG_LINK_IDENTITY, false, 1, 1);
}

static void test_mlps(void **st)
{
    (void)st;
    MODEL(SG_TASK_BINARY, 2, SG_ACT_RELU, SG_LINK_SIGMOID, true, 64, 256, 256, 1);
    MODEL(SG_TASK_MULTICLASS, 3, SG_ACT_TANH, SG_LINK_SOFTMAX, true, 20, 17, 3);
    MODEL(SG_TASK_MULTICLASS, 10, SG_ACT_LOGISTIC, SG_LINK_SOFTMAX, false, 31, 63, 15, 10);
    MODEL(SG_TASK_BINARY, 2, SG_ACT_IDENTITY, SG_LINK_SIGMOID, false, 7, 16, 1);
    MODEL(SG_TASK_REGRESSION, 0, SG_ACT_RELU, SG_LINK_IDENTITY, true, 8, 257, 1);
    MODEL(SG_TASK_REGRESSION, 0, SG_ACT_TANH, SG_LINK_IDENTITY, false, 3, 7, 255, 1);
}

typedef struct {
    int calls;
    int stages[SG_MAX_LAYERS + 1];
} probe_log;

static void record(void *ctx, int stage)
{
    probe_log *p = ctx;
    p->stages[p->calls++] = stage;
}

static void test_probe_stages(void **st)
{
    (void)st;
    const int w[] = {5, 9, 9, 2};
    sg_model *m = make_model(SG_TASK_MULTICLASS, 2, w, 4, SG_ACT_RELU, SG_LINK_SOFTMAX, true);
    sg_forward_scratch *s;
    sg_err err;
    assert_int_equal(sg_forward_scratch_new(m, 1, &s, &err), SG_OK);
    float x[5] = {1, 2, 3, 4, 5}, o[2], o_plain[2];
    probe_log log = {0};
    sg_forward_one_probed(m, sg_kernels(), x, o, s, record, &log);
    assert_int_equal(log.calls, 4); /* standardize + three layers */
    for (int i = 0; i < 4; i++)
        assert_int_equal(log.stages[i], i);
    sg_forward_one(m, sg_kernels(), x, o_plain, s);
    assert_memory_equal(o, o_plain, sizeof o);
    sg_forward_scratch_free(s);
    free_model(m);
}

static void test_scratch_errors(void **st)
{
    (void)st;
    const int w[] = {4, 2};
    sg_model *m = make_model(SG_TASK_BINARY, 2, w, 2, SG_ACT_IDENTITY, SG_LINK_SOFTMAX, false);
    sg_forward_scratch *s = (sg_forward_scratch *)m; /* must be reset to NULL on error */
    sg_err err = {{0}};
    assert_int_equal(sg_forward_scratch_new(m, 0, &s, &err), SG_EINPUT);
    assert_null(s);
    assert_non_null(strstr(err.msg, "batch size 0"));
    m->n_layers = 0;
    assert_int_equal(sg_forward_scratch_new(m, 8, &s, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "in-memory test model"));
    m->n_layers = 1;
    sg_forward_scratch_free(NULL);
    free_model(m);
}

static void test_predict_labels(void **st)
{
    (void)st;
    const float bin[] = {0.5f, 0.5f, 0.7f, 0.3f, 0.2f, 0.8f, 0.6f, 0.4f};
    int32_t lab[4];
    sg_predict_labels(bin, 4, 2, 0.5f, lab);
    assert_int_equal(lab[0], 0); /* p1 == threshold is not above it: class 0, as predict */
    assert_int_equal(lab[1], 0);
    assert_int_equal(lab[2], 1);
    assert_int_equal(lab[3], 0);
    sg_predict_labels(bin, 4, 2, 0.35f, lab);
    assert_int_equal(lab[3], 1);
    /* The threshold is compared in double: 0.99999999999 rounds to 1.0f, and a probability
       of exactly 1 is above it (recall had been 0 for an all-agreeing forest). */
    const float sure[] = {0.0f, 1.0f};
    sg_predict_labels(sure, 1, 2, 0.99999999999, lab);
    assert_int_equal(lab[0], 1);
    sg_predict_labels(sure, 1, 2, 1.0, lab);
    assert_int_equal(lab[0], 0);
    const float multi[] = {0.2f,  0.4f,     0.4f,     /* tie: first max */ 0.5f,
                           0.25f, 0.25f,    0.1f,     0.1f,
                           0.8f,  1.0f / 3, 1.0f / 3, 1.0f / 3};
    sg_predict_labels(multi, 4, 3, 0.5f, lab);
    assert_int_equal(lab[0], 1);
    assert_int_equal(lab[1], 0);
    assert_int_equal(lab[2], 2);
    assert_int_equal(lab[3], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_models),  cmocka_unit_test(test_mlps),
        cmocka_unit_test(test_probe_stages),   cmocka_unit_test(test_scratch_errors),
        cmocka_unit_test(test_predict_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
