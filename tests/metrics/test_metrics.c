/* Hand-checked metric cases: ties, zero division, weights, single class, streaming, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/metrics_internal.h"
#include "stagegate/metrics.h"

#define TOL 1e-12

/* cmocka 1.1.5 only compares floats; metrics need doubles. */
#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol)))                                                             \
            fail_msg("%s = %.17g, expected %.17g (tolerance %g)", #a, a_, b_, (double)(tol));      \
    } while (0)

/* Binary case from p1 scores: proba rows are (1-p1, p1), y_pred = p1 >= 0.5. */
static int binary(int n, const int32_t *y, const float *p1, const double *w, sg_metrics *m)
{
    float *proba = malloc(2 * (size_t)n * sizeof *proba);
    int32_t *pred = malloc((size_t)n * sizeof *pred);
    for (int i = 0; i < n; i++) {
        proba[2 * i] = 1.0f - p1[i];
        proba[2 * i + 1] = p1[i];
        pred[i] = p1[i] >= 0.5f;
    }
    sg_err err;
    sg_metrics_acc *a;
    assert_int_equal(sg_metrics_acc_new(SG_TASK_BINARY, 2, 0, &a, &err), SG_OK);
    int rc = sg_metrics_add_classification(a, n, proba, y, pred, w, &err);
    if (!rc) rc = sg_metrics_finish(a, m, &err);
    sg_metrics_acc_free(a);
    free(proba);
    free(pred);
    return rc;
}

static void test_binary_basic(void **state)
{
    (void)state;
    /* sklearn's documented example: roc_auc 0.75, average_precision 0.8333. */
    const int32_t y[] = {0, 0, 1, 1};
    const float p[] = {0.1f, 0.4f, 0.35f, 0.8f};
    sg_metrics m;
    assert_int_equal(binary(4, y, p, NULL, &m), SG_OK);
    assert_true(m.roc_auc_defined);
    assert_near(m.roc_auc, 0.75, TOL);
    assert_near(m.average_precision, 5.0 / 6.0, TOL);
    assert_near(m.accuracy, 0.75, TOL);
    assert_near(m.precision, 1.0, TOL);
    assert_near(m.recall, 0.5, TOL);
    assert_near(m.f1, 2.0 / 3.0, TOL);
    /* Renormalisation uses the float32 values as given. */
    double ll = 0;
    for (int i = 0; i < 4; i++) {
        double q1 = (double)p[i], q0 = (double)(1.0f - p[i]);
        ll -= log((y[i] ? q1 : q0) / (q0 + q1));
    }
    assert_near(m.log_loss, ll / 4, TOL);
    const double cm[] = {2, 0, 1, 1};
    for (int i = 0; i < 4; i++)
        assert_near(m.confusion_matrix[i], cm[i], 0);
    assert_int_equal(m.example_count, 4);
    sg_metrics_clear(&m);
}

static void test_binary_ties(void **state)
{
    (void)state;
    /* Thresholds 0.9 (1 pos, 1 neg), 0.5 (1 pos, 1 neg), 0.1 (1 pos): ROC points
       (0,0) (.5,1/3) (1,2/3) (1,1) give 1/3; AP = (1/2 + 1/2 + 3/5) / 3. */
    const int32_t y[] = {1, 0, 1, 0, 1};
    const float p[] = {0.9f, 0.9f, 0.5f, 0.5f, 0.1f};
    sg_metrics m;
    assert_int_equal(binary(5, y, p, NULL, &m), SG_OK);
    assert_near(m.roc_auc, 1.0 / 3.0, TOL);
    assert_near(m.average_precision, (0.5 + 0.5 + 0.6) / 3.0, TOL);
    sg_metrics_clear(&m);
    /* All scores equal: one threshold, AUC 0.5, AP = prevalence. */
    const int32_t y2[] = {0, 1, 0, 1, 1};
    const float p2[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    assert_int_equal(binary(5, y2, p2, NULL, &m), SG_OK);
    assert_near(m.roc_auc, 0.5, TOL);
    assert_near(m.average_precision, 0.6, TOL);
    sg_metrics_clear(&m);
    /* -0.0 and +0.0 are one threshold, as in numpy. */
    const int32_t y3[] = {1, 0};
    const float p3[] = {-0.0f, 0.0f};
    assert_int_equal(binary(2, y3, p3, NULL, &m), SG_OK);
    assert_near(m.roc_auc, 0.5, TOL);
    sg_metrics_clear(&m);
}

static void test_binary_zero_division_and_single_class(void **state)
{
    (void)state;
    sg_metrics m;
    /* Nothing predicted positive: precision 0/0 -> 0, f1 -> 0. */
    const int32_t y[] = {0, 1, 1};
    const float p[] = {0.1f, 0.2f, 0.3f};
    assert_int_equal(binary(3, y, p, NULL, &m), SG_OK);
    assert_near(m.precision, 0.0, 0);
    assert_near(m.recall, 0.0, 0);
    assert_near(m.f1, 0.0, 0);
    assert_near(m.roc_auc, 1.0, TOL);
    sg_metrics_clear(&m);

    /* Only positives: roc_auc undefined (null, not gettable), AP = 1. */
    const int32_t y1[] = {1, 1, 1};
    const float p1[] = {0.2f, 0.7f, 0.9f};
    assert_int_equal(binary(3, y1, p1, NULL, &m), SG_OK);
    assert_false(m.roc_auc_defined);
    double v = -1;
    assert_false(sg_metrics_get(&m, "roc_auc", &v));
    assert_true(sg_metrics_get(&m, "average_precision", &v));
    assert_near(v, 1.0, TOL);
    json_t *o = json_object();
    assert_int_equal(sg_metrics_to_json(&m, o), 0);
    assert_true(json_is_null(json_object_get(o, "roc_auc")));
    /* A two-class model has the averaged F1s too: predictions {0, 1, 1}, label 0 never
       true (f1 0), label 1 f1 0.8; sklearn's f1_score gives 0.4, 0.8 and 2/3. */
    assert_near(json_real_value(json_object_get(o, "f1_macro")), 0.4, TOL);
    assert_near(json_real_value(json_object_get(o, "f1_weighted")), 0.8, TOL);
    assert_near(json_real_value(json_object_get(o, "f1_micro")), 2.0 / 3.0, TOL);
    json_decref(o);
    sg_metrics_clear(&m);

    /* Only negatives: AP is 0 (sklearn sets recall to 1), recall 0/0 -> 0. */
    const int32_t y0[] = {0, 0};
    const float p0[] = {0.2f, 0.7f};
    assert_int_equal(binary(2, y0, p0, NULL, &m), SG_OK);
    assert_false(m.roc_auc_defined);
    assert_near(m.average_precision, 0.0, 0);
    assert_near(m.recall, 0.0, 0);
    assert_near(m.precision, 0.0, 0);
    sg_metrics_clear(&m);
}

static void test_binary_weights(void **state)
{
    (void)state;
    /* Thresholds 0.6 (pos w1), 0.5 (neg w2), 0.3 (pos w.5): P=1.5, N=2.
       AUC = 2*(1+1)/2 / 3 = 2/3; AP = (1/1.5)*1 + (.5/1.5)*(1.5/3.5) = 2/3 + 1/7. */
    const int32_t y[] = {0, 1, 1};
    const float p[] = {0.5f, 0.6f, 0.3f};
    const double w[] = {2, 1, 0.5};
    sg_metrics m;
    assert_int_equal(binary(3, y, p, w, &m), SG_OK);
    assert_near(m.roc_auc, 2.0 / 3.0, TOL);
    assert_near(m.average_precision, 2.0 / 3.0 + 1.0 / 7.0, TOL);
    assert_near(m.accuracy, 1.0 / 3.5, TOL);
    assert_near(m.precision, 1.0 / 3.0, TOL);
    assert_near(m.recall, 1.0 / 1.5, TOL);
    const double cm[] = {0, 2, 0.5, 1};
    for (int i = 0; i < 4; i++)
        assert_near(m.confusion_matrix[i], cm[i], 0);
    assert_true(m.weighted);
    sg_metrics_clear(&m);

    /* A zero-weight row changes nothing, but still counts as present for roc_auc. */
    const int32_t y2[] = {0, 1, 1, 0};
    const float p2[] = {0.5f, 0.6f, 0.3f, 0.99f};
    const double w2[] = {2, 1, 0.5, 0};
    assert_int_equal(binary(4, y2, p2, w2, &m), SG_OK);
    assert_near(m.roc_auc, 2.0 / 3.0, TOL);
    assert_near(m.average_precision, 2.0 / 3.0 + 1.0 / 7.0, TOL);
    assert_int_equal(m.example_count, 4);
    sg_metrics_clear(&m);
}

static void test_log_loss_clipping(void **state)
{
    (void)state;
    /* p(true) = 0 clips to DBL_EPSILON: loss -log(eps / (eps + 1 - eps)) = 36.04... */
    const int32_t y[] = {1};
    const float p[] = {0.0f};
    sg_metrics m;
    assert_int_equal(binary(1, y, p, NULL, &m), SG_OK);
    assert_near(m.log_loss, -log(DBL_EPSILON), 1e-9);
    sg_metrics_clear(&m);
}

static int multiclass(int k, int n, const int32_t *y, const int32_t *pred, sg_metrics *m)
{
    float *proba = malloc((size_t)n * (size_t)k * sizeof *proba);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            proba[i * k + j] = j == pred[i] ? 0.7f : 0.3f / (float)(k - 1);
    sg_err err;
    sg_metrics_acc *a;
    assert_int_equal(sg_metrics_acc_new(SG_TASK_MULTICLASS, k, 0, &a, &err), SG_OK);
    int rc = sg_metrics_add_classification(a, n, proba, y, pred, NULL, &err);
    if (!rc) rc = sg_metrics_finish(a, m, &err);
    sg_metrics_acc_free(a);
    free(proba);
    return rc;
}

static void test_multiclass_absent_labels(void **state)
{
    (void)state;
    /* Class 3 never appears: f1 per label {1, 2/3, 2/3}; including it would give 7/12. */
    const int32_t y[] = {0, 1, 1, 2}, pred[] = {0, 2, 1, 2};
    sg_metrics m;
    assert_int_equal(multiclass(4, 4, y, pred, &m), SG_OK);
    assert_near(m.f1_macro, 7.0 / 9.0, TOL);
    assert_near(m.f1_weighted, 0.75, TOL);
    assert_near(m.f1_micro, 0.75, TOL);
    assert_near(m.accuracy, 0.75, TOL);
    assert_near(m.confusion_matrix[1 * 4 + 2], 1, 0);
    assert_near(m.confusion_matrix[3 * 4 + 3], 0, 0);
    sg_metrics_clear(&m);
    /* A label only predicted (3) joins the set with f1 = 0. */
    const int32_t y2[] = {0, 1, 1, 2}, pred2[] = {0, 3, 1, 2};
    assert_int_equal(multiclass(4, 4, y2, pred2, &m), SG_OK);
    /* f1: c0 1, c1 (p1 r.5) 2/3, c2 1, c3 0 -> macro (8/3)/4. */
    assert_near(m.f1_macro, (8.0 / 3.0) / 4.0, TOL);
    assert_near(m.f1_weighted, (1 + 2 * (2.0 / 3.0) + 1) / 4.0, TOL);
    double v;
    assert_false(sg_metrics_get(&m, "roc_auc", &v));
    assert_true(sg_metrics_get(&m, "f1_macro", &v));
    sg_metrics_clear(&m);
}

/* One problem, one metric set: a multiclass model of 2 classes (an XGBoost multi:softprob
   with num_class 2) and a binary model with the same probabilities give the same bits for
   every metric, the binary ones (class 1 positive) and the averaged F1s, weighted or not. */
static void test_two_class_one_metric_set(void **state)
{
    (void)state;
    enum { N = 3000 };
    float *proba = malloc(2 * N * sizeof *proba);
    int32_t y[N], pred[N];
    double w[N];
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        float p1 = (float)(s >> 8) / 16777216.0f;
        proba[2 * i] = 1.0f - p1;
        proba[2 * i + 1] = p1;
        y[i] = (s >> 3) % 5 < 2 ? (p1 > 0.3f) : (int32_t)((s >> 5) & 1);
        pred[i] = p1 > 0.5f;
        w[i] = 0.5 + (double)((s >> 11) % 7);
    }
    for (int weighted = 0; weighted < 2; weighted++) {
        sg_metrics m[2];
        for (int t = 0; t < 2; t++) {
            sg_err err;
            sg_metrics_acc *a;
            assert_int_equal(
                sg_metrics_acc_new(t ? SG_TASK_MULTICLASS : SG_TASK_BINARY, 2, N, &a, &err), SG_OK);
            assert_int_equal(
                sg_metrics_add_classification(a, N, proba, y, pred, weighted ? w : NULL, &err),
                SG_OK);
            assert_int_equal(sg_metrics_finish(a, &m[t], &err), SG_OK);
            sg_metrics_acc_free(a);
        }
        static const char *const names[] = {"accuracy", "precision",         "recall",   "f1",
                                            "roc_auc",  "average_precision", "log_loss", "f1_macro",
                                            "f1_micro", "f1_weighted"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            double b = -1, mc = -2;
            assert_true(sg_metrics_get(&m[0], names[i], &b));
            assert_true(sg_metrics_get(&m[1], names[i], &mc));
            if (memcmp(&b, &mc, sizeof b) != 0)
                fail_msg("%s: binary %.17g, multiclass of 2 classes %.17g", names[i], b, mc);
        }
        /* ... and the binary ones are the binary path's own, not the averaged ones. */
        assert_true(m[0].f1 != m[0].f1_macro);
        json_t *o = json_object();
        assert_int_equal(sg_metrics_to_json(&m[1], o), 0);
        assert_non_null(json_object_get(o, "roc_auc"));
        assert_non_null(json_object_get(o, "f1_macro"));
        json_decref(o);
        sg_metrics_clear(&m[0]);
        sg_metrics_clear(&m[1]);
    }
    free(proba);
}

static int regression(int n, const double *y, const float *p, const double *w, sg_metrics *m)
{
    sg_err err;
    sg_metrics_acc *a;
    assert_int_equal(sg_metrics_acc_new(SG_TASK_REGRESSION, 0, 0, &a, &err), SG_OK);
    int rc = sg_metrics_add_regression(a, n, p, y, w, &err);
    if (!rc) rc = sg_metrics_finish(a, m, &err);
    sg_metrics_acc_free(a);
    return rc;
}

/*
 * Targets at a large offset from their spread (1e14 + k/64, a constant prediction): r2 is the
 * exact value, computed here in integers, whatever the chunking. The means' rounding at 1e14
 * had cost r2 about 1e-4 of its value, different for every chunk size.
 */
static void test_regression_offset_exact(void **state)
{
    (void)state;
    enum { N = 20000 };
    double *y = malloc(N * sizeof *y);
    float *p = malloc(N * sizeof *p);
    assert_non_null(y);
    assert_non_null(p);
    const int64_t base = INT64_C(6400000000000000); /* 1e14 in units of 1/64 */
    const float pred = 1e14f;
    const int64_t P = (int64_t)((double)pred * 64) - base; /* relative to base */
    /* Sums of k = 64 y - base, small integers: exact in int64 (r2 does not move with a
       shift of the targets and the prediction together). */
    int64_t S = 0, SS = 0;
    __int128 num = 0; /* (k - P)^2 reaches 6e14 a row */
    uint64_t r = 88172645463325252u;
    for (int i = 0; i < N; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17; /* xorshift64 */
        int64_t k = (int64_t)(r % 257) - 128;
        y[i] = (double)(base + k) / 64; /* exact: multiples of 1/64 near 1e14 are doubles */
        p[i] = pred;
        S += k;
        SS += k * k;
        num += (__int128)(k - P) * (k - P);
    }
    /* r2 = 1 - num / (SS - S^2 / N), all in units of 1/64^2 */
    const long double den = (long double)(N * SS - S * S) / N;
    const double exact = (double)(1.0L - (long double)num / den);
    double first = 0;
    const int64_t chunks[] = {N, 1024, 7, 65536};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        sg_metrics_acc *a;
        sg_err err;
        sg_metrics m;
        assert_int_equal(sg_metrics_acc_new(SG_TASK_REGRESSION, 0, 0, &a, &err), SG_OK);
        for (int64_t i = 0; i < N; i += chunks[c]) {
            int64_t k = N - i < chunks[c] ? N - i : chunks[c];
            assert_int_equal(sg_metrics_add_regression(a, k, p + i, y + i, NULL, &err), SG_OK);
        }
        assert_int_equal(sg_metrics_finish(a, &m, &err), SG_OK);
        sg_metrics_acc_free(a);
        if (fabs(m.r2_score - exact) > 1e-12 * fabs(exact))
            print_error("chunks of %lld: r2 %.17g, exact %.17g\n", (long long)chunks[c],
                        m.r2_score, exact);
        assert_true(fabs(m.r2_score - exact) <= 1e-12 * fabs(exact));
        if (c == 0) first = m.r2_score;
        assert_true(fabs(m.r2_score - first) <= 1e-14 * fabs(first));
    }
    free(y);
    free(p);
}

static void test_regression(void **state)
{
    (void)state;
    /* sklearn's documented examples: mae 0.5, mse 0.375, r2 0.948..., max_error 1. */
    const double y[] = {3, -0.5, 2, 7};
    const float p[] = {2.5f, 0.0f, 2.0f, 8.0f};
    sg_metrics m;
    assert_int_equal(regression(4, y, p, NULL, &m), SG_OK);
    assert_near(m.mean_absolute_error, 0.5, TOL);
    assert_near(m.mean_squared_error, 0.375, TOL);
    assert_near(m.root_mean_squared_error, sqrt(0.375), TOL);
    assert_near(m.r2_score, 0.9486081370449679, TOL);
    assert_near(m.max_error, 1.0, 0);
    /* Weighted: errors .5 .5 0 1 with weights 1 2 3 4 -> mae 5.5/10, mse 4.75/10. */
    const double w[] = {1, 2, 3, 4};
    assert_int_equal(regression(4, y, p, w, &m), SG_OK);
    assert_near(m.mean_absolute_error, 0.55, TOL);
    assert_near(m.mean_squared_error, 0.475, TOL);
    /* Constant targets: force_finite gives 1 for a perfect fit, else 0. */
    const double yc[] = {0.1, 0.1, 0.1};
    const float pc[] = {(float)0.1, (float)0.1, (float)0.1};
    assert_int_equal(regression(3, yc, pc, NULL, &m), SG_OK);
    assert_near(m.r2_score, 0.0, 0); /* float32 0.1 != double 0.1 */
    const double yc2[] = {2, 2, 2};
    const float pc2[] = {2, 2, 2}, pc3[] = {2, 3, 2};
    assert_int_equal(regression(3, yc2, pc2, NULL, &m), SG_OK);
    assert_near(m.r2_score, 1.0, 0);
    assert_int_equal(regression(3, yc2, pc3, NULL, &m), SG_OK);
    assert_near(m.r2_score, 0.0, 0);
    /* One row: r2 undefined (sklearn returns nan). */
    assert_int_equal(regression(1, yc2, pc3, NULL, &m), SG_OK);
    assert_false(m.r2_defined);
    json_t *o = json_object();
    assert_int_equal(sg_metrics_to_json(&m, o), 0);
    assert_true(json_is_null(json_object_get(o, "r2_score")));
    assert_null(json_object_get(o, "accuracy"));
    assert_int_equal(json_integer_value(json_object_get(o, "example_count")), 1);
    json_decref(o);
}

/* The same rows fed as one chunk and as many uneven chunks give the same metrics. */
static void test_streaming_matches_one_chunk(void **state)
{
    (void)state;
    enum { N = 20000, K = 5 };
    float *proba = malloc(N * K * sizeof *proba);
    int32_t *y = malloc(N * sizeof *y), *pred = malloc(N * sizeof *pred);
    double *w = malloc(N * sizeof *w);
    srand(7);
    for (int i = 0; i < N; i++) {
        y[i] = rand() % K;
        pred[i] = rand() % 3 ? y[i] : rand() % K;
        w[i] = (rand() % 100) / 10.0;
        float s = 0;
        for (int j = 0; j < K; j++)
            s += proba[i * K + j] = (float)(rand() % 1000 + 1);
        for (int j = 0; j < K; j++)
            proba[i * K + j] /= s;
    }
    sg_metrics m[2];
    sg_err err;
    for (int pass = 0; pass < 2; pass++) {
        sg_metrics_acc *a;
        assert_int_equal(sg_metrics_acc_new(SG_TASK_MULTICLASS, K, 0, &a, &err), SG_OK);
        for (int s = 0, len = pass ? 1 : N; s < N; s += len, len = len * 3 + 1) {
            int l = s + len > N ? N - s : len;
            assert_int_equal(
                sg_metrics_add_classification(a, l, proba + s * K, y + s, pred + s, w + s, &err),
                SG_OK);
        }
        assert_int_equal(sg_metrics_finish(a, &m[pass], &err), SG_OK);
        sg_metrics_acc_free(a);
    }
    assert_near(m[0].log_loss, m[1].log_loss, 1e-12);
    assert_near(m[0].f1_macro, m[1].f1_macro, 1e-12);
    assert_near(m[0].accuracy, m[1].accuracy, 1e-12);
    for (int i = 0; i < K * K; i++)
        assert_near(m[0].confusion_matrix[i], m[1].confusion_matrix[i], 1e-9);
    sg_metrics_clear(&m[0]);
    sg_metrics_clear(&m[1]);
    free(proba);
    free(y);
    free(pred);
    free(w);
}

/* Binary score store growing from empty over many chunks (weights moved along with keys)
   must give what one presized chunk gives. */
static void test_binary_store_growth(void **state)
{
    (void)state;
    enum { N = 30001 };
    float *proba = malloc(2 * N * sizeof *proba);
    int32_t *y = malloc(N * sizeof *y), *pred = malloc(N * sizeof *pred);
    double *w = malloc(N * sizeof *w);
    srand(3);
    for (int i = 0; i < N; i++) {
        y[i] = rand() % 3 == 0;
        float p1 = (float)((rand() % 200) / 200.0 * 0.6 + 0.4 * y[i]);
        proba[2 * i] = 1.0f - p1;
        proba[2 * i + 1] = p1;
        pred[i] = p1 >= 0.5f;
        w[i] = 0.25 * (rand() % 9);
    }
    for (int weighted = 0; weighted < 2; weighted++) {
        sg_metrics m[2];
        sg_err err;
        for (int pass = 0; pass < 2; pass++) {
            sg_metrics_acc *a;
            assert_int_equal(sg_metrics_acc_new(SG_TASK_BINARY, 2, pass ? 0 : N, &a, &err), SG_OK);
            int step = pass ? 777 : N;
            for (int s = 0; s < N; s += step) {
                int l = s + step > N ? N - s : step;
                assert_int_equal(sg_metrics_add_classification(a, l, proba + 2 * s, y + s, pred + s,
                                                               weighted ? w + s : NULL, &err),
                                 SG_OK);
            }
            assert_int_equal(sg_metrics_finish(a, &m[pass], &err), SG_OK);
            sg_metrics_acc_free(a);
        }
        assert_near(m[0].roc_auc, m[1].roc_auc, 1e-14);
        assert_near(m[0].average_precision, m[1].average_precision, 1e-14);
        assert_near(m[0].log_loss, m[1].log_loss, 1e-14);
        assert_true(m[0].roc_auc > 0.6 && m[0].roc_auc < 1.0); /* a real, non-trivial curve */
        sg_metrics_clear(&m[0]);
        sg_metrics_clear(&m[1]);
    }
    free(proba);
    free(y);
    free(pred);
    free(w);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void test_radix_sort_orders_floats(void **state)
{
    (void)state;
    enum { N = 50000 };
    uint32_t *k = malloc(N * sizeof *k), *ref = malloc(N * sizeof *ref), *ks = malloc(N * 4);
    double *w = malloc(N * sizeof *w), *ws = malloc(N * sizeof *ws);
    float *f = malloc(N * sizeof *f);
    srand(11);
    for (int i = 0; i < N; i++) {
        f[i] = (float)(rand() - RAND_MAX / 2) / (float)(rand() % 1000 + 1);
        if (i % 7 == 0) f[i] = 0.25f; /* ties */
        k[i] = ref[i] = sg_score_key(f[i]);
        w[i] = (double)f[i]; /* weights travel with their keys */
    }
    qsort(ref, N, sizeof *ref, cmp_u32);
    sg_radix_sort_keys(k, w, N, ks, ws);
    for (int i = 0; i < N; i++) {
        assert_int_equal(k[i], ref[i]);
        assert_int_equal(sg_score_key((float)w[i]), k[i]);
        if (i) assert_true(w[i - 1] <= w[i]); /* key order is float order */
    }
    free(k);
    free(ref);
    free(ks);
    free(w);
    free(ws);
    free(f);
}

static void test_bad_input(void **state)
{
    (void)state;
    sg_err err;
    sg_metrics_acc *a;
    sg_metrics m;
    const float proba[] = {0.5f, 0.5f, NAN, 1.0f};
    const int32_t y[] = {0, 2}, good[] = {0, 1};
    const double neg[] = {1, -1}, zero[] = {0, 0};
    assert_int_equal(sg_metrics_acc_new(SG_TASK_BINARY, 3, 0, &a, &err), SG_EINPUT);
    assert_int_equal(sg_metrics_acc_new(SG_TASK_BINARY, 2, 0, &a, &err), SG_OK);
    assert_int_equal(sg_metrics_add_classification(a, 2, proba, y, good, NULL, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "y_true[1]"));
    assert_int_equal(sg_metrics_add_classification(a, 2, proba, good, good, NULL, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "proba[1][0]"));
    assert_int_equal(sg_metrics_add_classification(a, 1, proba, good, good, neg + 1, &err),
                     SG_EINPUT);
    /* Nothing was added by the failed calls. */
    assert_int_equal(sg_metrics_finish(a, &m, &err), SG_EINPUT);
    assert_int_equal(sg_metrics_add_classification(a, 1, proba, good, good, zero, &err), SG_OK);
    assert_int_equal(sg_metrics_add_classification(a, 1, proba, good, good, NULL, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "some chunks"));
    assert_int_equal(sg_metrics_finish(a, &m, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "zero"));
    sg_metrics_acc_free(a);

    const double yr[] = {1, INFINITY};
    const float pr[] = {1, 2};
    assert_int_equal(sg_metrics_acc_new(SG_TASK_REGRESSION, 0, 0, &a, &err), SG_OK);
    assert_int_equal(sg_metrics_add_regression(a, 2, pr, yr, NULL, &err), SG_EINPUT);
    assert_int_equal(sg_metrics_add_classification(a, 1, proba, good, good, NULL, &err),
                     SG_EINTERNAL);
    sg_metrics_acc_free(a);
}

/*
 * The unweighted ranking walk takes exact shortcuts (integer counts, skipped +0 terms). It
 * must give the very bits the general walk gives with every weight 1: distinct scores, heavy
 * ties, one class at the top, and sizes from 1 row up.
 */
static void test_rank_unweighted_bit_identical(void **state)
{
    (void)state;
    uint64_t s = 7;
    const size_t sizes[] = {1, 2, 3, 17, 1000, 100000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (int ties = 0; ties < 3; ties++) {
            size_t np = sizes[si], nn = sizes[si] * 3 / 2 + 1;
            uint32_t *pk = malloc(np * sizeof *pk), *nk = malloc(nn * sizeof *nk);
            double *pw = malloc(np * sizeof *pw), *nw = malloc(nn * sizeof *nw);
            assert_non_null(pk);
            assert_non_null(nk);
            assert_non_null(pw);
            assert_non_null(nw);
            /* ties: 0 all distinct-ish, 1 scores on a 1e-3 grid, 2 only 5 distinct scores */
            const uint32_t mod = ties == 0 ? 0 : ties == 1 ? 1000 : 5;
            for (size_t i = 0; i < np + nn; i++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                uint32_t r = (uint32_t)(s >> 33);
                float p = mod ? (float)(r % mod) / (float)mod : (float)r / 2147483648.0f;
                if (i < np) {
                    pk[i] = sg_score_key(p * 0.5f + 0.5f);
                    pw[i] = 1.0;
                } else {
                    nk[i - np] = sg_score_key(p);
                    nw[i - np] = 1.0;
                }
            }
            qsort(pk, np, sizeof *pk, cmp_u32);
            qsort(nk, nn, sizeof *nk, cmp_u32);
            sg_rank_metrics a, b;
            sg_rank_metrics_sorted(pk, NULL, np, nk, NULL, nn, &a);
            sg_rank_metrics_sorted(pk, pw, np, nk, nw, nn, &b);
            assert_memory_equal(&a.roc_auc, &b.roc_auc, sizeof a.roc_auc);
            assert_memory_equal(&a.average_precision, &b.average_precision,
                                sizeof a.average_precision);
            assert_true(a.roc_auc >= 0.0 && a.roc_auc <= 1.0 && np + nn > 2);
            free(pk);
            free(nk);
            free(pw);
            free(nw);
        }
    }
}

/* The ranking as the store of sorted arrays does it: positives in row order, negatives in
   reverse row order (filled from the back), each sorted stably, then the general walk. */
static void reference_rank(size_t n, const int32_t *y, const float *p1, const double *w,
                           sg_rank_metrics *r)
{
    uint32_t *pk = malloc((n + 1) * sizeof *pk), *nk = malloc((n + 1) * sizeof *nk);
    uint32_t *ks = malloc((n + 1) * sizeof *ks);
    double *pw = malloc((n + 1) * sizeof *pw), *nw = malloc((n + 1) * sizeof *nw);
    double *ws = malloc((n + 1) * sizeof *ws);
    assert_true(pk && nk && ks && pw && nw && ws);
    size_t np = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i]) {
            pk[np] = sg_score_key(p1[i]);
            pw[np++] = w ? w[i] : 1.0;
        }
    }
    for (size_t i = n; i-- > 0;) {
        if (!y[i]) {
            nk[nn] = sg_score_key(p1[i]);
            nw[nn++] = w ? w[i] : 1.0;
        }
    }
    sg_radix_sort_keys(pk, w ? pw : NULL, np, ks, w ? ws : NULL);
    sg_radix_sort_keys(nk, w ? nw : NULL, nn, ks, w ? ws : NULL);
    sg_rank_metrics_sorted(pk, w ? pw : NULL, np, nk, w ? nw : NULL, nn, r);
    free(pk);
    free(nk);
    free(ks);
    free(pw);
    free(nw);
    free(ws);
}

#define assert_same_bits(a, b) assert_memory_equal(&(a), &(b), sizeof(double))

/*
 * The bucketed store of unweighted and unit-weight scores must give the bits of the sorted
 * arrays: over several blocks, with chunks of every size, scores distinct or tied or spread
 * over the whole float range (signs, zeros, subnormals, huge values), a finish in the middle
 * followed by more rows, and unit weights turning into real weights part way.
 */
static void test_bucketed_store_bit_identical(void **state)
{
    (void)state;
    enum { N = 150001 };
    float *p1 = malloc(N * sizeof *p1), *proba = malloc(2 * N * sizeof *proba);
    int32_t *y = malloc(N * sizeof *y), *pred = malloc(N * sizeof *pred);
    double *w = malloc(N * sizeof *w);
    assert_true(p1 && proba && y && pred && w);
    uint64_t s = 11;
    const float odd[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-38f, 3e38f, -3e38f, 1.0f, 0.5f, -2.0f};
    for (int kind = 0; kind < 4; kind++) {
        for (int i = 0; i < N; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t r = (uint32_t)(s >> 33);
            y[i] = (s >> 20) % 5 == 0;
            float u = (float)r / 2147483648.0f;
            if (kind == 0)
                p1[i] = y[i] ? 0.2f + 0.8f * u : 0.9f * u * u;
            else if (kind == 1)
                p1[i] = (float)((r % 1000) / 1000.0);
            else if (kind == 2)
                p1[i] = r % 4 ? odd[r % 10] : ldexpf(u, (int)(r % 200) - 120) * (r & 8 ? -1.0f : 1.0f);
            else
                p1[i] = (float)(r % 3) / 3.0f;
            proba[2 * i] = 1.0f - p1[i];
            proba[2 * i + 1] = p1[i];
            pred[i] = p1[i] >= 0.5f;
            w[i] = 1.0;
        }
        sg_rank_metrics ref;
        reference_rank(N, y, p1, NULL, &ref);
        const int steps[] = {N, 65536, 777, 1};
        for (size_t si = 0; si < sizeof steps / sizeof steps[0]; si++) {
            for (int unit = 0; unit < 2; unit++) {
                sg_metrics_acc *a;
                sg_err err;
                sg_metrics m;
                assert_int_equal(sg_metrics_acc_new(SG_TASK_BINARY, 2, si & 1 ? N : 0, &a, &err),
                                 SG_OK);
                for (int r0 = 0; r0 < N; r0 += steps[si]) {
                    int l = r0 + steps[si] > N ? N - r0 : steps[si];
                    assert_int_equal(sg_metrics_add_classification(a, l, proba + 2 * r0, y + r0,
                                                                   pred + r0,
                                                                   unit ? w + r0 : NULL, &err),
                                     SG_OK);
                    if (r0 == 0 && steps[si] < N) { /* a finish part way leaves the store usable */
                        assert_int_equal(sg_metrics_finish(a, &m, &err), SG_OK);
                        sg_metrics_clear(&m);
                    }
                }
                assert_int_equal(sg_metrics_finish(a, &m, &err), SG_OK);
                assert_true(m.roc_auc_defined);
                assert_same_bits(m.roc_auc, ref.roc_auc);
                assert_same_bits(m.average_precision, ref.average_precision);
                sg_metrics_clear(&m);
                assert_int_equal(sg_metrics_finish(a, &m, &err), SG_OK); /* finishing twice */
                assert_same_bits(m.roc_auc, ref.roc_auc);
                sg_metrics_clear(&m);
                sg_metrics_acc_free(a);
            }
        }
        /* Unit weights, then a real weight at row 100,003: everything as if weighted all
           along (sorted arrays for the ranking, per-row compensated sums for the counts). */
        for (int i = 100003; i < N; i++)
            w[i] = (double)((i * 7) % 5) * 0.375;
        reference_rank(N, y, p1, w, &ref);
        sg_ksum tp[2] = {{0, 0}}, tr[2] = {{0, 0}}, pr[2] = {{0, 0}}, cm[4] = {{0, 0}};
        for (int i = 0; i < N; i++) {
            if (y[i] == pred[i]) sg_ksum_add(&tp[y[i]], w[i]);
            sg_ksum_add(&tr[y[i]], w[i]);
            sg_ksum_add(&pr[pred[i]], w[i]);
            sg_ksum_add(&cm[2 * y[i] + pred[i]], w[i]);
        }
        double precision = sg_ksum_value(&tp[1]) / sg_ksum_value(&pr[1]);
        double recall = sg_ksum_value(&tp[1]) / sg_ksum_value(&tr[1]);
        for (int split = 0; split < 2; split++) {
            sg_metrics_acc *a;
            sg_err err;
            sg_metrics m;
            assert_int_equal(sg_metrics_acc_new(SG_TASK_BINARY, 2, split ? 0 : N, &a, &err), SG_OK);
            int cut = split ? 100003 : 65536 * 2 + 5; /* the first real weight opens a chunk, or not */
            assert_int_equal(sg_metrics_add_classification(a, cut, proba, y, pred, w, &err), SG_OK);
            assert_int_equal(sg_metrics_add_classification(a, N - cut, proba + 2 * cut, y + cut,
                                                           pred + cut, w + cut, &err),
                             SG_OK);
            assert_int_equal(sg_metrics_finish(a, &m, &err), SG_OK);
            assert_same_bits(m.roc_auc, ref.roc_auc);
            assert_same_bits(m.average_precision, ref.average_precision);
            assert_same_bits(m.precision, precision);
            assert_same_bits(m.recall, recall);
            for (int c = 0; c < 4; c++) {
                double v = sg_ksum_value(&cm[c]);
                assert_same_bits(m.confusion_matrix[c], v);
            }
            sg_metrics_clear(&m);
            sg_metrics_acc_free(a);
        }
    }
    free(p1);
    free(proba);
    free(y);
    free(pred);
    free(w);
}

/* The weight check works on bits: -0, subnormals and DBL_MAX are weights; negatives (the
   smallest too), NaN and infinities are not, wherever they sit in a chunk. */
static void test_weight_checks(void **state)
{
    (void)state;
    enum { N = 37 };
    float proba[2 * N];
    int32_t y[N], pred[N];
    double w[N];
    for (int i = 0; i < N; i++) {
        proba[2 * i] = 0.25f;
        proba[2 * i + 1] = 0.75f;
        y[i] = i % 2;
        pred[i] = 1;
    }
    const double good[] = {1.0, -0.0, 0.0, 2.5, DBL_MAX, 4.9e-324, DBL_MIN};
    const double bad[] = {-4.9e-324, -DBL_MIN, -1.0, -DBL_MAX, NAN, -NAN, INFINITY, -INFINITY};
    for (size_t g = 0; g < sizeof good / sizeof good[0]; g++) {
        for (int i = 0; i < N; i++)
            w[i] = 1.0;
        w[(g * 5) % N] = good[g];
        sg_metrics m;
        assert_int_equal(binary(N, y, (const float[N]){0}, w, &m), SG_OK);
        sg_metrics_clear(&m);
    }
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        for (int i = 0; i < N; i++)
            w[i] = 1.0;
        int at = (int)(b * 7) % N;
        w[at] = bad[b];
        sg_metrics_acc *a;
        sg_err err;
        assert_int_equal(sg_metrics_acc_new(SG_TASK_BINARY, 2, 0, &a, &err), SG_OK);
        assert_int_equal(sg_metrics_add_classification(a, N, proba, y, pred, w, &err), SG_EINPUT);
        char want[32];
        snprintf(want, sizeof want, "sample_weight[%d]", at);
        assert_non_null(strstr(err.msg, want));
        sg_metrics_acc_free(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_basic),
        cmocka_unit_test(test_binary_ties),
        cmocka_unit_test(test_binary_zero_division_and_single_class),
        cmocka_unit_test(test_binary_weights),
        cmocka_unit_test(test_log_loss_clipping),
        cmocka_unit_test(test_multiclass_absent_labels),
        cmocka_unit_test(test_two_class_one_metric_set),
        cmocka_unit_test(test_regression),
        cmocka_unit_test(test_regression_offset_exact),
        cmocka_unit_test(test_streaming_matches_one_chunk),
        cmocka_unit_test(test_binary_store_growth),
        cmocka_unit_test(test_radix_sort_orders_floats),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_rank_unweighted_bit_identical),
        cmocka_unit_test(test_bucketed_store_bit_identical),
        cmocka_unit_test(test_weight_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
