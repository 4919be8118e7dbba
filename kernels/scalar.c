/*
 * Scalar reference kernels: plain C and libm, the yardstick every SIMD variant
 * is tested against and the fallback on CPUs without AVX2.
 */
#include "kernels/kernels_internal.h"

#include <math.h>

float sg_logistic_ref(float z)
{
    /* exp of a non-positive argument never overflows; for z < 0 the e/(1+e) form keeps
       the relative precision of tiny probabilities (scipy.special.expit does the same). */
    float e = expf(-fabsf(z));
    float p = 1.0f / (1.0f + e);
    return z >= 0.0f ? p : e * p;
}

static void scalar_matvec(const float *x, const float *W, const float *b, int n_in, int n_out,
                          float *y)
{
    for (int j = 0; j < n_out; j++)
        y[j] = b ? b[j] : 0.0f;
    for (int i = 0; i < n_in; i++) {
        const float xi = x[i];
        const float *w = W + (size_t)i * (size_t)n_out;
        for (int j = 0; j < n_out; j++)
            y[j] += xi * w[j];
    }
}

static void scalar_bias_act(float *Y, int64_t n, int width, const float *b, sg_activation act)
{
    /* The switch sits outside the element loops: per element it became an unpredictable
       branch on the sign of relu's input (7-10 ns an element on real layer outputs). */
    for (int64_t r = 0; r < n; r++) {
        float *y = Y + r * width;
        if (b)
            for (int j = 0; j < width; j++)
                y[j] += b[j];
        switch (act) {
        case SG_ACT_RELU:
            /* NaN passes, like numpy.maximum; -0 stays -0, like the SIMD max. */
            for (int j = 0; j < width; j++)
                y[j] = y[j] < 0.0f ? 0.0f : y[j];
            break;
        case SG_ACT_TANH:
            for (int j = 0; j < width; j++)
                y[j] = tanhf(y[j]);
            break;
        case SG_ACT_LOGISTIC:
            for (int j = 0; j < width; j++)
                y[j] = sg_logistic_ref(y[j]);
            break;
        case SG_ACT_IDENTITY:
        default:
            break;
        }
    }
}

static void scalar_standardize(float *X, int64_t n, int d, const float *mean, const float *scale)
{
    for (int64_t r = 0; r < n; r++) {
        float *x = X + r * d;
        for (int j = 0; j < d; j++)
            x[j] = (x[j] - mean[j]) / scale[j];
    }
}

static void softmax_row(const float *z, int k, const float *b, float *out)
{
    float mx = -INFINITY;
    for (int j = 0; j < k; j++) {
        float t = b ? z[j] + b[j] : z[j];
        out[j] = t;
        if (t > mx) mx = t;
    }
    float sum = 0.0f;
    for (int j = 0; j < k; j++) {
        out[j] = expf(out[j] - mx);
        sum += out[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < k; j++)
        out[j] *= inv;
}

static void scalar_bias_link(const float *Z, int64_t n, int n_outputs, const float *b, sg_link link,
                             float *out)
{
    if (link == SG_LINK_SIGMOID && n_outputs == 1) {
        for (int64_t r = 0; r < n; r++) {
            float z = b ? Z[r] + b[0] : Z[r];
            out[2 * r] = sg_logistic_ref(-z);
            out[2 * r + 1] = sg_logistic_ref(z);
        }
        return;
    }
    for (int64_t r = 0; r < n; r++) {
        const float *z = Z + r * n_outputs;
        float *o = out + r * n_outputs;
        if (link == SG_LINK_SOFTMAX) {
            softmax_row(z, n_outputs, b, o);
            continue;
        }
        for (int j = 0; j < n_outputs; j++) {
            float t = b ? z[j] + b[j] : z[j];
            o[j] = link == SG_LINK_SIGMOID ? sg_logistic_ref(t) : t;
        }
    }
}

const sg_kernel_ops sg_kernel_ops_scalar = {
    .name = "scalar",
    .isa = SG_ISA_SCALAR,
    .matvec = scalar_matvec,
    .bias_act = scalar_bias_act,
    .standardize = scalar_standardize,
    .bias_link = scalar_bias_link,
    .tree_margins = sg_tree_margins_scalar,
    .tree_margins_one = sg_tree_margins_one_scalar,
};
