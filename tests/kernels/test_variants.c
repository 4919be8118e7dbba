/*
 * Every SIMD variant against the scalar reference (and the scalar reference
 * against double-precision math), for every kernel, activation and link, over
 * awkward sizes and extreme inputs. A variant the CPU lacks is skipped, loudly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_internal.h"

static const int sizes[] = {1, 3, 7, 15, 16, 17, 31, 63, 255, 257};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

/* Inputs that exercise the ends of exp/tanh/logistic: saturation, zero, denormals. */
static const float extremes[] = {100.0f, -100.0f, 0.0f,    -0.0f,   1e-40f,  -1e-40f,
                                 1e-30f, -1e-30f, 0.625f,  -0.625f, 0.6249f, 9.0f,
                                 -9.0f,  44.0f,   -44.0f,  87.0f,   -87.0f,  88.8f,
                                 -88.8f, 104.0f,  -104.0f, 200.0f,  -200.0f, 1e-3f};
#define NEXTREMES ((int)(sizeof extremes / sizeof extremes[0]))

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float urand(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 40) * (1.0 / 16777216.0));
}

static float *fill(int n, float lo, float hi)
{
    float *p = malloc((size_t)n * sizeof *p);
    assert_non_null(p);
    for (int i = 0; i < n; i++)
        p[i] = urand(lo, hi);
    return p;
}

/* |a - r| <= rel*|r| + abs, with NaN never passing; prints the culprit on failure. */
static void expect_close(const char *what, int idx, float a, double r, double rel, double abs_tol)
{
    const double diff = fabs((double)a - r);
    if (!(diff <= rel * fabs(r) + abs_tol)) {
        print_error("%s[%d]: got %.9g, expected %.9g (diff %.3g)\n", what, idx, (double)a, r, diff);
        fail();
    }
}

static const sg_kernel_ops *variant_or_skip(sg_isa isa)
{
    const sg_kernel_ops *v = sg_kernels_variant(isa);
    if (!v) {
        print_message("skipping %s: this CPU or OS cannot run it\n", sg_isa_name(isa));
        skip();
    }
    return v;
}

static double act_ref(double v, sg_activation a)
{
    switch (a) {
    case SG_ACT_RELU:
        return v < 0 ? 0 : v;
    case SG_ACT_TANH:
        return tanh(v);
    case SG_ACT_LOGISTIC:
        return 1.0 / (1.0 + exp(-v));
    default:
        return v;
    }
}

static void check_matvec(const sg_kernel_ops *k)
{
    const sg_kernel_ops *ref = &sg_kernel_ops_scalar;
    for (int a = 0; a < NSIZES; a++)
        for (int c = 0; c < NSIZES; c++) {
            const int n_in = sizes[a], n_out = sizes[c];
            float *x = fill(n_in, -2, 2), *W = fill(n_in * n_out, -1, 1), *b = fill(n_out, -1, 1);
            if (n_in > 2) {
                x[0] = 1e-40f;
                x[1] = 100.0f;
                x[2] = -100.0f;
            }
            float *y = malloc((size_t)n_out * 4 + 64), *yr = malloc((size_t)n_out * 4);
            /* A guard after y catches a tail store that runs past n_out. */
            for (int j = 0; j < n_out + 16; j++)
                y[j] = 12345.0f;
            for (int use_b = 0; use_b < 2; use_b++) {
                k->matvec(x, W, use_b ? b : NULL, n_in, n_out, y);
                ref->matvec(x, W, use_b ? b : NULL, n_in, n_out, yr);
                for (int j = 0; j < n_out; j++) {
                    double exact = use_b ? b[j] : 0.0, mag = fabs(exact);
                    for (int i = 0; i < n_in; i++) {
                        exact += (double)x[i] * W[(size_t)i * n_out + j];
                        mag += fabs((double)x[i] * W[(size_t)i * n_out + j]);
                    }
                    /* Float summation of n_in terms: error bounded by ~n*eps*sum|terms|. */
                    const double tol = 2.0 * n_in * FLT_EPSILON * mag + 1e-30;
                    expect_close("matvec vs double", j, y[j], exact, 0, tol);
                    expect_close("scalar matvec vs double", j, yr[j], exact, 0, tol);
                }
                for (int j = n_out; j < n_out + 16; j++)
                    assert_true(y[j] == 12345.0f);
            }
            free(x);
            free(W);
            free(b);
            free(y);
            free(yr);
        }
}

static void check_bias_act(const sg_kernel_ops *k)
{
    const sg_kernel_ops *ref = &sg_kernel_ops_scalar;
    const int rows[] = {1, 3, 17};
    for (int act = SG_ACT_IDENTITY; act <= SG_ACT_LOGISTIC; act++)
        for (int s = 0; s < NSIZES; s++)
            for (int ri = 0; ri < 3; ri++) {
                const int w = sizes[s], n = rows[ri], total = n * w;
                float *Y = fill(total + 16, -12, 12), *b = fill(w, -1, 1);
                for (int i = 0; i < total; i++)
                    if (i % 3 == 0) Y[i] = extremes[(i / 3) % NEXTREMES];
                for (int i = total; i < total + 16; i++)
                    Y[i] = 777.0f;
                float *Yr = malloc((size_t)total * 4 + 4);
                memcpy(Yr, Y, (size_t)total * 4);
                /* Bias NULL on the even widths so both paths are covered. */
                const float *bb = (s % 2) ? b : NULL;
                k->bias_act(Y, n, w, bb, (sg_activation)act);
                ref->bias_act(Yr, n, w, bb, (sg_activation)act);
                for (int i = 0; i < total; i++) {
                    if (act == SG_ACT_IDENTITY || act == SG_ACT_RELU) {
                        /* One correctly rounded add: must be bit-identical. */
                        if (memcmp(&Y[i], &Yr[i], 4) != 0) {
                            print_error("act %d w %d: %g vs %g at %d\n", act, w, Y[i], Yr[i], i);
                            fail();
                        }
                    } else {
                        expect_close("bias_act vs scalar", i, Y[i], Yr[i], 1e-6, 1e-37);
                    }
                }
                for (int i = total; i < total + 16; i++)
                    assert_true(Y[i] == 777.0f);
                free(Y);
                free(b);
                free(Yr);
            }
}

/* The scalar reference itself against double math, and saturation exactly at ±1/0/1. */
static void check_activations_exact(const sg_kernel_ops *k)
{
    const int n = NEXTREMES + 4000;
    for (int act = SG_ACT_TANH; act <= SG_ACT_LOGISTIC; act++) {
        float *Y = malloc((size_t)n * 4);
        float *in = malloc((size_t)n * 4);
        for (int i = 0; i < n; i++)
            in[i] = i < NEXTREMES ? extremes[i] : -20.0f + 40.0f * (float)(i - NEXTREMES) / 4000.0f;
        memcpy(Y, in, (size_t)n * 4);
        k->bias_act(Y, 1, n, NULL, (sg_activation)act);
        for (int i = 0; i < n; i++) {
            const double r = act_ref(in[i], (sg_activation)act);
            /* A few ulp relative; denormal results only need to be tiny. */
            expect_close(act == SG_ACT_TANH ? "tanh" : "logistic", i, Y[i], r, 4e-7, 1e-38);
        }
        for (int i = 0; i < NEXTREMES; i++) {
            const float x = extremes[i];
            if (act == SG_ACT_TANH && fabsf(x) >= 10.0f)
                assert_true(Y[i] == (x > 0 ? 1.0f : -1.0f));
            if (act == SG_ACT_LOGISTIC && x >= 20.0f) assert_true(Y[i] == 1.0f);
            if (act == SG_ACT_LOGISTIC && x <= -100.0f) assert_true(Y[i] >= 0.0f && Y[i] < 1e-40f);
        }
        free(Y);
        free(in);
    }
}

static void check_standardize(const sg_kernel_ops *k)
{
    for (int s = 0; s < NSIZES; s++) {
        const int d = sizes[s], n = 5;
        float *X = fill(n * d + 16, -50, 50), *mean = fill(d, -5, 5), *scale = fill(d, 0.01f, 30);
        X[0] = 1e-40f;
        for (int i = n * d; i < n * d + 16; i++)
            X[i] = 3.0f;
        float *Xr = malloc((size_t)n * d * 4), *orig = malloc((size_t)n * d * 4);
        memcpy(Xr, X, (size_t)n * d * 4);
        memcpy(orig, X, (size_t)n * d * 4);
        k->standardize(X, n, d, mean, scale);
        sg_kernel_ops_scalar.standardize(Xr, n, d, mean, scale);
        /* A subtraction and a true division, both correctly rounded: bit-identical. */
        assert_memory_equal(X, Xr, (size_t)n * d * 4);
        for (int i = n * d; i < n * d + 16; i++)
            assert_true(X[i] == 3.0f);
        for (int i = 0; i < n * d; i++)
            expect_close("standardize vs double", i, X[i],
                         ((double)orig[i] - mean[i % d]) / scale[i % d], 1e-6, 1e-37);
        free(X);
        free(mean);
        free(scale);
        free(Xr);
        free(orig);
    }
}

static void check_bias_link(const sg_kernel_ops *k)
{
    const int rows = 37;
    for (int s = 0; s < NSIZES; s++) {
        const int w = sizes[s];
        float *Z = fill(rows * w, -15, 15), *b = fill(w, -2, 2);
        for (int i = 0; i < rows * w; i += 4)
            Z[i] = extremes[(i / 4) % NEXTREMES];
        float *o = malloc((size_t)rows * w * 4 * 2 + 64), *orf = malloc((size_t)rows * w * 4 * 2);

        for (int link = SG_LINK_IDENTITY; link <= SG_LINK_SOFTMAX; link++) {
            const int ow = (link == SG_LINK_SIGMOID && w == 1) ? 2 : w;
            for (int i = 0; i < rows * ow + 16; i++)
                o[i] = -5.0f;
            k->bias_link(Z, rows, w, b, (sg_link)link, o);
            sg_kernel_ops_scalar.bias_link(Z, rows, w, b, (sg_link)link, orf);
            for (int i = rows * ow; i < rows * ow + 16; i++)
                assert_true(o[i] == -5.0f);
            for (int r = 0; r < rows; r++) {
                const float *z = Z + r * w;
                double mx = -INFINITY, sum = 0, psum = 0;
                for (int j = 0; j < w; j++)
                    mx = fmax(mx, (double)(z[j] + b[j]));
                for (int j = 0; j < w; j++)
                    sum += exp((double)(z[j] + b[j]) - mx);
                for (int j = 0; j < ow; j++) {
                    const int i = r * ow + j;
                    double exact;
                    const double t = (double)(z[link == SG_LINK_SIGMOID && w == 1 ? 0 : j] +
                                              b[link == SG_LINK_SIGMOID && w == 1 ? 0 : j]);
                    if (link == SG_LINK_IDENTITY)
                        exact = t;
                    else if (link == SG_LINK_SOFTMAX)
                        exact = exp(t - mx) / sum;
                    else if (w == 1)
                        exact = j == 1 ? 1 / (1 + exp(-t)) : 1 / (1 + exp(t));
                    else
                        exact = 1 / (1 + exp(-t));
                    expect_close("bias_link vs scalar", i, o[i], orf[i], 1e-6, 1e-30);
                    expect_close("bias_link vs double", i, o[i], exact, 1e-6, 1e-7);
                    expect_close("scalar bias_link vs double", i, orf[i], exact, 1e-6, 1e-7);
                    psum += o[i];
                }
                if (link == SG_LINK_SOFTMAX || (link == SG_LINK_SIGMOID && w == 1))
                    expect_close("row sum", r, (float)psum, 1.0, 0, 1e-6 * ow);
            }
        }
        /* Softmax in place (Z == out) is allowed. */
        float *Zc = malloc((size_t)rows * w * 4);
        memcpy(Zc, Z, (size_t)rows * w * 4);
        k->bias_link(Zc, rows, w, b, SG_LINK_SOFTMAX, Zc);
        k->bias_link(Z, rows, w, b, SG_LINK_SOFTMAX, o);
        assert_memory_equal(Zc, o, (size_t)rows * w * 4);
        free(Zc);
        free(Z);
        free(b);
        free(o);
        free(orf);
    }
}

/* A one-hot-ish logit row must not overflow: softmax([100, -100, ...]) is (1, 0, ...). */
static void check_softmax_extreme(const sg_kernel_ops *k)
{
    float z[17], o[17];
    for (int j = 0; j < 17; j++)
        z[j] = -100.0f;
    z[16] = 100.0f;
    k->bias_link(z, 1, 17, NULL, SG_LINK_SOFTMAX, o);
    assert_true(o[16] == 1.0f);
    for (int j = 0; j < 16; j++)
        assert_true(o[j] >= 0.0f && o[j] < 1e-40f);
}

static void run_all(const sg_kernel_ops *k)
{
    check_matvec(k);
    check_bias_act(k);
    check_activations_exact(k);
    check_standardize(k);
    check_bias_link(k);
    check_softmax_extreme(k);
}

static void test_scalar(void **st)
{
    (void)st;
    run_all(&sg_kernel_ops_scalar);
}
static void test_avx2(void **st)
{
    (void)st;
    run_all(variant_or_skip(SG_ISA_AVX2));
}
static void test_avx512(void **st)
{
    (void)st;
    run_all(variant_or_skip(SG_ISA_AVX512));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar),
        cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
