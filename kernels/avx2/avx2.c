/*
 * AVX2+FMA kernels (compiled with -mavx2 -mfma; only called after the
 * dispatcher checked cpuid and the OS's YMM state). Tails use vmaskmov
 * loads/stores, which do not fault on the masked-off lanes.
 */
#include "kernels/kernels_internal.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

static const int32_t mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Lanes 0..r-1 set, r in 0..8. */
AI __m256i tail_mask(int r)
{
    return _mm256_loadu_si256((const __m256i *)(mask_table + 8 - r));
}

AI __m256 pow2i(__m256i k)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

/*
 * exp: Cephes expf's reduction and degree-6 polynomial (about 1 ulp). The 2^n
 * factor is applied as two halves so n down to -150 (results in the denormal
 * range) never builds an invalid exponent; above ln(FLT_MAX) the result is inf.
 * Constants first in min/max so NaN passes through.
 */
AI __m256 exp_ps(__m256 x0)
{
    const __m256 x =
        _mm256_max_ps(_mm256_set1_ps(-104.0f), _mm256_min_ps(_mm256_set1_ps(88.7228394f), x0));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    p = _mm256_mul_ps(_mm256_mul_ps(p, pow2i(n1)), pow2i(_mm256_sub_epi32(ni, n1)));
    const __m256 over = _mm256_cmp_ps(x0, _mm256_set1_ps(88.7228394f), _CMP_GT_OQ);
    return _mm256_blendv_ps(p, _mm256_set1_ps(INFINITY), over);
}

/* Stable logistic: exp(-|z|) never overflows; z < 0 uses e/(1+e) for relative precision. */
AI __m256 logistic_ps(__m256 z)
{
    const __m256 e = exp_ps(_mm256_or_ps(z, _mm256_set1_ps(-0.0f)));
    const __m256 p = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    const __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(p, _mm256_mul_ps(e, p), neg);
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2/(e^2|x| + 1) above, which
   reaches exactly 1 once 2/(e+1) drops under half an ulp (and e = inf is fine). */
AI __m256 tanh_ps(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 ax = _mm256_andnot_ps(sign, x);
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 ps = _mm256_set1_ps(-5.70498872745e-3f);
    ps = _mm256_fmadd_ps(ps, z, _mm256_set1_ps(2.06390887954e-2f));
    ps = _mm256_fmadd_ps(ps, z, _mm256_set1_ps(-5.37397155531e-2f));
    ps = _mm256_fmadd_ps(ps, z, _mm256_set1_ps(1.33314422036e-1f));
    ps = _mm256_fmadd_ps(ps, z, _mm256_set1_ps(-3.33332819422e-1f));
    const __m256 ys = _mm256_fmadd_ps(_mm256_mul_ps(ps, z), x, x);
    const __m256 e = exp_ps(_mm256_add_ps(ax, ax));
    __m256 yl =
        _mm256_sub_ps(_mm256_set1_ps(1.0f),
                      _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    yl = _mm256_or_ps(yl, _mm256_and_ps(x, sign));
    return _mm256_blendv_ps(yl, ys, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

AI __m256 act_ps(__m256 v, sg_activation act)
{
    switch (act) {
    case SG_ACT_RELU:
        return _mm256_max_ps(_mm256_setzero_ps(), v);
    case SG_ACT_TANH:
        return tanh_ps(v);
    case SG_ACT_LOGISTIC:
        return logistic_ps(v);
    case SG_ACT_IDENTITY:
    default:
        return v;
    }
}

/* out = act(in + b) over [n][width]; in may equal out. Width 1 is one long row with a
   broadcast bias, so a regression output column is still vectorised. */
AI void map_rows(const float *in, float *out, int64_t n, int width, const float *b,
                 sg_activation act)
{
    if (width == 1) {
        /* No bias means no add at all: adding 0 would turn -0 into +0. */
        const __m256 vb = _mm256_set1_ps(b ? b[0] : 0.0f);
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(in + i);
            if (b) v = _mm256_add_ps(v, vb);
            _mm256_storeu_ps(out + i, act_ps(v, act));
        }
        if (i < n) {
            const __m256i m = tail_mask((int)(n - i));
            __m256 v = _mm256_maskload_ps(in + i, m);
            if (b) v = _mm256_add_ps(v, vb);
            _mm256_maskstore_ps(out + i, m, act_ps(v, act));
        }
        return;
    }
    for (int64_t r = 0; r < n; r++) {
        const float *x = in + r * width;
        float *y = out + r * width;
        int j = 0;
        for (; j + 8 <= width; j += 8) {
            __m256 v = _mm256_loadu_ps(x + j);
            if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + j));
            _mm256_storeu_ps(y + j, act_ps(v, act));
        }
        if (j < width) {
            const __m256i m = tail_mask(width - j);
            __m256 v = _mm256_maskload_ps(x + j, m);
            if (b) v = _mm256_add_ps(v, _mm256_maskload_ps(b + j, m));
            _mm256_maskstore_ps(y + j, m, act_ps(v, act));
        }
    }
}

static void avx2_bias_act(float *Y, int64_t n, int width, const float *b, sg_activation act)
{
    /* One specialised loop per activation so the switch is not inside the hot loop. */
    switch (act) {
    case SG_ACT_RELU:
        map_rows(Y, Y, n, width, b, SG_ACT_RELU);
        break;
    case SG_ACT_TANH:
        map_rows(Y, Y, n, width, b, SG_ACT_TANH);
        break;
    case SG_ACT_LOGISTIC:
        map_rows(Y, Y, n, width, b, SG_ACT_LOGISTIC);
        break;
    default:
        if (b) map_rows(Y, Y, n, width, b, SG_ACT_IDENTITY);
        break;
    }
}

static void avx2_standardize(float *X, int64_t n, int d, const float *mean, const float *scale)
{
    for (int64_t r = 0; r < n; r++) {
        float *x = X + r * d;
        int j = 0;
        for (; j + 8 <= d; j += 8) {
            __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(mean + j));
            _mm256_storeu_ps(x + j, _mm256_div_ps(v, _mm256_loadu_ps(scale + j)));
        }
        if (j < d) {
            const __m256i m = tail_mask(d - j);
            __m256 v = _mm256_sub_ps(_mm256_maskload_ps(x + j, m), _mm256_maskload_ps(mean + j, m));
            /* Masked-off lanes divide 0 by 1, not 0 by 0, to raise no spurious flag. */
            __m256 s = _mm256_blendv_ps(_mm256_set1_ps(1.0f), _mm256_maskload_ps(scale + j, m),
                                        _mm256_castsi256_ps(m));
            _mm256_maskstore_ps(x + j, m, _mm256_div_ps(v, s));
        }
    }
}

AI float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* y = b + x.W for n_out == 1: a dot product with four independent accumulators. */
static float dot(const float *x, const float *w, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(w + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(w + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(w + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(w + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(w + i), a0);
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        a1 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(w + i, m), a1);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/*
 * Columns j..j+8*NV of y = b + x.W, NV accumulators walking down the rows of W.
 * With NV < 4 two interleaved sets (even/odd rows) keep the FMA latency chain
 * from bounding the loop. The last vector may be masked.
 */
AI void mv_cols(const float *x, const float *W, const float *b, int n_in, int n_out, int j,
                float *y, int NV, int last_len)
{
    const __m256i full = _mm256_set1_epi32(-1), last = tail_mask(last_len);
    __m256 acc[8], acc2[8];
    for (int v = 0; v < NV; v++) {
        const __m256i m = v == NV - 1 ? last : full;
        acc[v] = b ? _mm256_maskload_ps(b + j + 8 * v, m) : _mm256_setzero_ps();
        acc2[v] = _mm256_setzero_ps();
    }
    const bool masked = last_len < 8;
    int i = 0;
    if (NV < 4) {
        for (; i + 2 <= n_in; i += 2) {
            const __m256 x0 = _mm256_set1_ps(x[i]), x1 = _mm256_set1_ps(x[i + 1]);
            const float *w0 = W + (size_t)i * (size_t)n_out + j, *w1 = w0 + n_out;
            for (int v = 0; v < NV; v++) {
                const bool mv = masked && v == NV - 1;
                acc[v] = _mm256_fmadd_ps(
                    x0, mv ? _mm256_maskload_ps(w0 + 8 * v, last) : _mm256_loadu_ps(w0 + 8 * v),
                    acc[v]);
                acc2[v] = _mm256_fmadd_ps(
                    x1, mv ? _mm256_maskload_ps(w1 + 8 * v, last) : _mm256_loadu_ps(w1 + 8 * v),
                    acc2[v]);
            }
        }
    }
    for (; i < n_in; i++) {
        const __m256 xi = _mm256_set1_ps(x[i]);
        const float *w = W + (size_t)i * (size_t)n_out + j;
        for (int v = 0; v < NV; v++) {
            const bool mv = masked && v == NV - 1;
            acc[v] = _mm256_fmadd_ps(
                xi, mv ? _mm256_maskload_ps(w + 8 * v, last) : _mm256_loadu_ps(w + 8 * v), acc[v]);
        }
    }
    for (int v = 0; v < NV; v++) {
        const __m256 s = _mm256_add_ps(acc[v], acc2[v]);
        if (masked && v == NV - 1)
            _mm256_maskstore_ps(y + j + 8 * v, last, s);
        else
            _mm256_storeu_ps(y + j + 8 * v, s);
    }
}

static void avx2_matvec(const float *x, const float *W, const float *b, int n_in, int n_out,
                        float *y)
{
    if (n_out == 1) {
        y[0] = (b ? b[0] : 0.0f) + dot(x, W, n_in);
        return;
    }
    int j = 0;
    for (; j + 64 <= n_out; j += 64)
        mv_cols(x, W, b, n_in, n_out, j, y, 8, 8);
    if (j + 32 <= n_out) {
        mv_cols(x, W, b, n_in, n_out, j, y, 4, 8);
        j += 32;
    }
    for (; j + 8 <= n_out; j += 8)
        mv_cols(x, W, b, n_in, n_out, j, y, 1, 8);
    if (j < n_out) mv_cols(x, W, b, n_in, n_out, j, y, 1, n_out - j);
}

static void softmax_row(const float *z, int k, const float *b, float *o)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 vmax = ninf;
    for (int j = 0; j < k; j += 8) {
        const __m256i m = tail_mask(j + 8 <= k ? 8 : k - j);
        __m256 t = _mm256_maskload_ps(z + j, m);
        if (b) t = _mm256_add_ps(t, _mm256_maskload_ps(b + j, m));
        _mm256_maskstore_ps(o + j, m, t);
        vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, t, _mm256_castsi256_ps(m)));
    }
    const __m256 mx = _mm256_set1_ps(hmax(vmax));
    __m256 vsum = _mm256_setzero_ps();
    for (int j = 0; j < k; j += 8) {
        const __m256i m = tail_mask(j + 8 <= k ? 8 : k - j);
        const __m256 e = exp_ps(_mm256_sub_ps(_mm256_maskload_ps(o + j, m), mx));
        _mm256_maskstore_ps(o + j, m, e);
        vsum = _mm256_add_ps(vsum, _mm256_and_ps(e, _mm256_castsi256_ps(m)));
    }
    const __m256 inv = _mm256_set1_ps(1.0f / hsum(vsum));
    for (int j = 0; j < k; j += 8) {
        const __m256i m = tail_mask(j + 8 <= k ? 8 : k - j);
        _mm256_maskstore_ps(o + j, m, _mm256_mul_ps(_mm256_maskload_ps(o + j, m), inv));
    }
}

/* Binary: (p0, p1) pairs interleaved into [n][2], both from the same exp(-|z|). */
static void binary_sigmoid(const float *Z, int64_t n, const float *b, float *out)
{
    const __m256 vb = _mm256_set1_ps(b ? b[0] : 0.0f);
    for (int64_t i = 0; i < n; i += 8) {
        const int rem = n - i >= 8 ? 8 : (int)(n - i);
        __m256 z = _mm256_maskload_ps(Z + i, tail_mask(rem));
        if (b) z = _mm256_add_ps(z, vb);
        const __m256 e = exp_ps(_mm256_or_ps(z, _mm256_set1_ps(-0.0f)));
        const __m256 p =
            _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        const __m256 q = _mm256_mul_ps(e, p);
        const __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
        const __m256 p1 = _mm256_blendv_ps(p, q, neg), p0 = _mm256_blendv_ps(q, p, neg);
        const __m256 lo = _mm256_unpacklo_ps(p0, p1), hi = _mm256_unpackhi_ps(p0, p1);
        const __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20),
                     c = _mm256_permute2f128_ps(lo, hi, 0x31);
        /* 2*rem output floats: the first 8 from a, the rest from c. */
        const int first = rem >= 4 ? 8 : 2 * rem, second = rem > 4 ? 2 * (rem - 4) : 0;
        _mm256_maskstore_ps(out + 2 * i, tail_mask(first), a);
        if (second) _mm256_maskstore_ps(out + 2 * i + 8, tail_mask(second), c);
    }
}

/*
 * Hidden layer, fused (dense_act; see kernels.h and the AVX-512 variant): a tile of up to
 * DENSE_ROWS rows x 16 columns of one 64-column stripe keeps its 12 accumulators in registers
 * for the whole input, then gets the epilogue before it is stored. Per element the order of
 * operations is OpenBLAS's: acc = fma(x_k, w_k, acc) for k = 0.. from +0, then its
 * C = acc * alpha + C with alpha 1 and C zeroed (beta 0), then bias_act's + b and activation.
 * Rows go in blocks so that the block's inputs stay in L2 and a 16-column slice of one
 * stripe's weights in L1 while the block's row tiles pass over it.
 */
#define DENSE_ROWS 6
#define DENSE_COLS 16
#define DENSE_ROW_BLOCK 96 /* a multiple of 12: SG_DENSE_PAIRED_EDGES's row groups */

AI void dense_tile(int rows, const float *X, int n_in, const float *w, const float *b,
                   sg_activation act, float *Y, int n_out)
{
    __m256 acc[DENSE_ROWS][2];
    const float *x[DENSE_ROWS];
    for (int r = 0; r < DENSE_ROWS; r++) {
        x[r] = X + (size_t)(r < rows ? r : 0) * (size_t)n_in;
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
    for (int k = 0; k < n_in; k++) {
        const __m256 w0 = _mm256_load_ps(w + (size_t)k * SG_DENSE_STRIPE),
                     w1 = _mm256_load_ps(w + (size_t)k * SG_DENSE_STRIPE + 8);
        for (int r = 0; r < DENSE_ROWS; r++) {
            if (r >= rows) break;
            const __m256 xb = _mm256_broadcast_ss(x[r] + k);
            acc[r][0] = _mm256_fmadd_ps(xb, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(xb, w1, acc[r][1]);
        }
    }
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < 2; v++) {
            __m256 t = _mm256_fmadd_ps(acc[r][v], one, zero);
            if (b) t = _mm256_add_ps(t, _mm256_loadu_ps(b + 8 * v));
            _mm256_storeu_ps(Y + (size_t)r * (size_t)n_out + 8 * v, act_ps(t, act));
        }
}

/* SG_DENSE_PAIRED_EDGES's two chains for the 8 columns at c0 (a multiple of 8, so within one
   stripe) of one row, then the epilogue, over what dense_tile stored there. */
AI void paired8(const float *x, int n_in, const float *Wp, int c0, const float *b,
                sg_activation act, float *y)
{
    const float *w = Wp + (size_t)(c0 / SG_DENSE_STRIPE) * (size_t)n_in * SG_DENSE_STRIPE +
                     c0 % SG_DENSE_STRIPE;
    __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
    int k = 0;
    for (; k + 1 < n_in; k += 2) {
        even = _mm256_fmadd_ps(_mm256_broadcast_ss(x + k),
                               _mm256_load_ps(w + (size_t)k * SG_DENSE_STRIPE), even);
        odd = _mm256_fmadd_ps(_mm256_broadcast_ss(x + k + 1),
                              _mm256_load_ps(w + (size_t)(k + 1) * SG_DENSE_STRIPE), odd);
    }
    if (k < n_in)
        even = _mm256_fmadd_ps(_mm256_broadcast_ss(x + k),
                               _mm256_load_ps(w + (size_t)k * SG_DENSE_STRIPE), even);
    __m256 t = _mm256_fmadd_ps(_mm256_add_ps(even, odd), _mm256_set1_ps(1.0f), _mm256_setzero_ps());
    if (b) t = _mm256_add_ps(t, _mm256_loadu_ps(b + c0));
    _mm256_storeu_ps(y + c0, act_ps(t, act));
}

/* The same two chains for the 6 rows of a 12-row group that take them (SG_DENSE_PAIRED_EDGES's
   kind 1), on the 8 columns at c0: the 12 chains (6 rows, even and odd inputs) run side by
   side, where one row's two chains would wait on the multiply-add latency. */
AI void paired8_rows6(const float *X, int n_in, const float *Wp, int c0, const float *b,
                      sg_activation act, float *Y, int n_out)
{
    const float *w = Wp + (size_t)(c0 / SG_DENSE_STRIPE) * (size_t)n_in * SG_DENSE_STRIPE +
                     c0 % SG_DENSE_STRIPE;
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    /* Inputs two at a time, so that which chain each feeds is known at compile time. */
    for (int k = 0; k < n_in; k += 2) {
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++) {
            if (k + p >= n_in) break;
            const __m256 wv = _mm256_load_ps(w + (size_t)(k + p) * SG_DENSE_STRIPE);
#pragma GCC unroll 6
            for (int r = 0; r < 6; r++)
                acc[r][p] = _mm256_fmadd_ps(
                    _mm256_broadcast_ss(X + (size_t)r * (size_t)n_in + (size_t)(k + p)), wv,
                    acc[r][p]);
        }
    }
    const __m256 bias = b ? _mm256_loadu_ps(b + c0) : _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
        __m256 t = _mm256_fmadd_ps(_mm256_add_ps(acc[r][0], acc[r][1]), _mm256_set1_ps(1.0f),
                                   _mm256_setzero_ps());
        if (b) t = _mm256_add_ps(t, bias);
        _mm256_storeu_ps(Y + (size_t)r * (size_t)n_out + c0, act_ps(t, act));
    }
}

AI void dense_block(const float *X, int64_t i0, int64_t i1, int n_in, const float *Wp,
                    const float *b, sg_activation act, float *Y, int n_out)
{
    for (int c = 0; c < n_out; c += DENSE_COLS) {
        const float *w = Wp + (size_t)(c / SG_DENSE_STRIPE) * (size_t)n_in * SG_DENSE_STRIPE +
                         c % SG_DENSE_STRIPE;
        const float *bc = b ? b + c : NULL;
        float *y = Y + c;
        int64_t i = i0;
        for (; i + DENSE_ROWS <= i1; i += DENSE_ROWS)
            dense_tile(DENSE_ROWS, X + i * n_in, n_in, w, bc, act, y + i * n_out, n_out);
        if (i < i1) dense_tile((int)(i1 - i), X + i * n_in, n_in, w, bc, act, y + i * n_out, n_out);
    }
}

static void avx2_dense_act(const float *X, int64_t n, int n_in, const float *Wp, const float *b,
                           sg_activation act, float *Y, int n_out, sg_dense_order order)
{
    int start[64];
    const int blocks = order == SG_DENSE_PAIRED_EDGES ? sg_paired_column_blocks(n_out, start, 64) : 0;
    for (int64_t i0 = 0; i0 < n; i0 += DENSE_ROW_BLOCK) {
        const int64_t i1 = n - i0 < DENSE_ROW_BLOCK ? n : i0 + DENSE_ROW_BLOCK;
        /* One specialised copy per activation, so that the switch is not in the epilogue. */
        switch (act) {
        case SG_ACT_RELU:
            dense_block(X, i0, i1, n_in, Wp, b, SG_ACT_RELU, Y, n_out);
            break;
        case SG_ACT_TANH:
            dense_block(X, i0, i1, n_in, Wp, b, SG_ACT_TANH, Y, n_out);
            break;
        case SG_ACT_LOGISTIC:
            dense_block(X, i0, i1, n_in, Wp, b, SG_ACT_LOGISTIC, Y, n_out);
            break;
        default:
            dense_block(X, i0, i1, n_in, Wp, b, SG_ACT_IDENTITY, Y, n_out);
            break;
        }
        /* The elements the order sums in two chains, done again over the block's rows while
           they are in cache (about 3% of a 256-wide layer's products). Column blocks are whole
           multiples of 8 columns and at least 64 wide. */
        for (int64_t i = i0; blocks && i < i1; i++) {
            const int kind = sg_paired_row_kind(i, n);
            const float *x = X + i * n_in;
            float *y = Y + i * n_out;
            if (kind == 1) {
                /* The first of 6 such rows (12-row groups start at multiples of 12, and a
                   block of rows at a multiple of DENSE_ROW_BLOCK, itself one of 12). */
                for (int c = 0; c < blocks; c++) {
                    paired8_rows6(x, n_in, Wp, start[c], b, act, y, n_out);
                    paired8_rows6(x, n_in, Wp, start[c + 1] - 8, b, act, y, n_out);
                }
                i += 5;
            } else if (kind >= 2) {
                const int to = kind == 2 ? start[1] : n_out;
                for (int c = 0; c < to; c += 8)
                    paired8(x, n_in, Wp, c, b, act, y);
            }
        }
    }
}

/*
 * Narrow output layer (dense_out; see kernels.h): Z [n][n_out] = X W for n_out up to
 * SG_OUT_MAX, one multiply-add chain per element over the inputs in order from +0, stored
 * as acc * 1 + 0. A vector holds one output of 8 rows: each 8-row x 4-input block of X is
 * transposed (two 128-bit loads per register, then two rounds of in-lane shuffles) so that
 * lane r holds row r's input k. For one or two outputs, 4 or 2 groups of 8 rows go side by
 * side, so that enough chains are in flight to hide the multiply-add latency.
 */
AI void narrow_rows(const float *X, int n_in, const float *W, float *Z, const int NO, const int G)
{
    __m256 acc[4][SG_OUT_MAX];
    for (int g = 0; g < G; g++)
        for (int j = 0; j < NO; j++)
            acc[g][j] = _mm256_setzero_ps();
    const size_t ld = (size_t)n_in;
    int k = 0;
    for (; k + 4 <= n_in; k += 4) {
        for (int g = 0; g < G; g++) {
            const float *x = X + (size_t)(8 * g) * ld + (size_t)k;
            __m256 r[4];
            for (int q = 0; q < 4; q++) /* rows q and q + 4 */
                r[q] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(x + q * ld)),
                                            _mm_loadu_ps(x + (q + 4) * ld), 1);
            const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]),
                         t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
            const __m256 v[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                                 _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
            for (int p = 0; p < 4; p++)
                for (int j = 0; j < NO; j++)
                    acc[g][j] = _mm256_fmadd_ps(
                        v[p], _mm256_broadcast_ss(W + (size_t)(k + p) * (size_t)NO + (size_t)j),
                        acc[g][j]);
        }
    }
    for (; k < n_in; k++)
        for (int g = 0; g < G; g++) {
            const float *x = X + (size_t)(8 * g) * ld + (size_t)k;
            const __m256 v = _mm256_setr_ps(x[0], x[ld], x[2 * ld], x[3 * ld], x[4 * ld],
                                            x[5 * ld], x[6 * ld], x[7 * ld]);
            for (int j = 0; j < NO; j++)
                acc[g][j] = _mm256_fmadd_ps(
                    v, _mm256_broadcast_ss(W + (size_t)k * (size_t)NO + (size_t)j), acc[g][j]);
        }
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (int g = 0; g < G; g++)
        for (int j = 0; j < NO; j++) {
            const __m256 t = _mm256_fmadd_ps(acc[g][j], one, zero);
            if (NO == 1) {
                _mm256_storeu_ps(Z + 8 * g, t);
            } else {
                float lanes[8];
                _mm256_storeu_ps(lanes, t);
                for (int r = 0; r < 8; r++)
                    Z[(size_t)(8 * g + r) * (size_t)NO + (size_t)j] = lanes[r];
            }
        }
}

AI void narrow_all(const float *X, int64_t n, int n_in, const float *W, float *Z, const int NO)
{
    const int G = NO == 1 ? 4 : NO == 2 ? 2 : 1;
    int64_t i = 0;
    for (; i + 8 * G <= n; i += 8 * G)
        narrow_rows(X + i * n_in, n_in, W, Z + i * NO, NO, G);
    for (; i + 8 <= n; i += 8)
        narrow_rows(X + i * n_in, n_in, W, Z + i * NO, NO, 1);
    for (; i < n; i++) /* the last rows one chain at a time (fmaf is the same single rounding) */
        for (int j = 0; j < NO; j++) {
            float acc = 0.0f;
            for (int kk = 0; kk < n_in; kk++)
                acc = fmaf(X[i * n_in + kk], W[(size_t)kk * (size_t)NO + (size_t)j], acc);
            Z[i * NO + j] = fmaf(acc, 1.0f, 0.0f);
        }
}

static void avx2_dense_out(const float *X, int64_t n, int n_in, const float *W, float *Z,
                           int n_out)
{
    switch (n_out) { /* one copy per width, so that the accumulators stay in registers */
    case 1: narrow_all(X, n, n_in, W, Z, 1); break;
    case 2: narrow_all(X, n, n_in, W, Z, 2); break;
    case 3: narrow_all(X, n, n_in, W, Z, 3); break;
    case 4: narrow_all(X, n, n_in, W, Z, 4); break;
    case 5: narrow_all(X, n, n_in, W, Z, 5); break;
    case 6: narrow_all(X, n, n_in, W, Z, 6); break;
    default: SG_ASSERT(n_out == 7 && SG_OUT_MAX == 7); narrow_all(X, n, n_in, W, Z, 7); break;
    }
}

static void avx2_bias_link(const float *Z, int64_t n, int n_outputs, const float *b, sg_link link,
                           float *out)
{
    if (link == SG_LINK_SIGMOID && n_outputs == 1) {
        binary_sigmoid(Z, n, b, out);
    } else if (link == SG_LINK_SOFTMAX) {
        for (int64_t r = 0; r < n; r++)
            softmax_row(Z + r * n_outputs, n_outputs, b, out + r * n_outputs);
    } else if (link == SG_LINK_SIGMOID) {
        map_rows(Z, out, n, n_outputs, b, SG_ACT_LOGISTIC);
    } else {
        map_rows(Z, out, n, n_outputs, b, SG_ACT_IDENTITY);
    }
}

const sg_kernel_ops sg_kernel_ops_avx2 = {
    .name = "avx2",
    .isa = SG_ISA_AVX2,
    .matvec = avx2_matvec,
    .bias_act = avx2_bias_act,
    .standardize = avx2_standardize,
    .bias_link = avx2_bias_link,
    .dense_act = avx2_dense_act,
    .dense_out = avx2_dense_out,
    .tree_margins = sg_tree_margins_avx2,
    .tree_margins_one = sg_tree_margins_one_avx2,
};
