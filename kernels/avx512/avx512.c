/*
 * AVX-512F kernels (compiled with -mavx512f/dq/bw/vl -mfma; only called after
 * the dispatcher checked cpuid and the OS's ZMM state). Tails use masked
 * loads/stores, which do not fault on the masked-off lanes.
 */
#include "kernels/kernels_internal.h"

#include <immintrin.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

/* Lanes 0..r-1 set, r in 0..16. */
AI __mmask16 tail_mask(int r)
{
    return (__mmask16)((1u << r) - 1u);
}

/*
 * exp: Cephes expf's reduction and degree-6 polynomial (about 1 ulp), scaled by
 * 2^n with vscalefps, which also produces the correct denormals, zero and
 * infinity at the ends of the range. Constants first in min/max so NaN passes.
 */
AI __m512 exp_ps(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_min_ps(_mm512_set1_ps(89.0f), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* Stable logistic: exp(-|z|) never overflows; z < 0 uses e/(1+e) for relative precision. */
AI __m512 logistic_ps(__m512 z)
{
    const __m512 sign = _mm512_set1_ps(-0.0f);
    const __m512 e = exp_ps(_mm512_or_ps(z, sign));
    const __m512 p = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    const __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(p, neg, e, p);
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2/(e^2|x| + 1) above, which
   reaches exactly 1 once 2/(e+1) drops under half an ulp (and e = inf is fine). */
AI __m512 tanh_ps(__m512 x)
{
    const __m512 sign = _mm512_set1_ps(-0.0f);
    const __m512 ax = _mm512_andnot_ps(sign, x);
    const __m512 z = _mm512_mul_ps(x, x);
    __m512 ps = _mm512_set1_ps(-5.70498872745e-3f);
    ps = _mm512_fmadd_ps(ps, z, _mm512_set1_ps(2.06390887954e-2f));
    ps = _mm512_fmadd_ps(ps, z, _mm512_set1_ps(-5.37397155531e-2f));
    ps = _mm512_fmadd_ps(ps, z, _mm512_set1_ps(1.33314422036e-1f));
    ps = _mm512_fmadd_ps(ps, z, _mm512_set1_ps(-3.33332819422e-1f));
    const __m512 ys = _mm512_fmadd_ps(_mm512_mul_ps(ps, z), x, x);
    const __m512 e = exp_ps(_mm512_add_ps(ax, ax));
    __m512 yl =
        _mm512_sub_ps(_mm512_set1_ps(1.0f),
                      _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    yl = _mm512_or_ps(yl, _mm512_and_ps(x, sign));
    const __mmask16 small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(small, yl, ys);
}

AI __m512 act_ps(__m512 v, sg_activation act)
{
    switch (act) {
    case SG_ACT_RELU:
        return _mm512_max_ps(_mm512_setzero_ps(), v);
    case SG_ACT_TANH:
        return tanh_ps(v);
    case SG_ACT_LOGISTIC:
        return logistic_ps(v);
    case SG_ACT_IDENTITY:
    default:
        return v;
    }
}

/* out = act(in + b) over [n][width]; in may equal out. Width 1 is treated as one long
   row with a broadcast bias, so a regression output column is still vectorised. */
AI void map_rows(const float *in, float *out, int64_t n, int width, const float *b,
                 sg_activation act)
{
    if (width == 1) {
        /* No bias means no add at all: adding 0 would turn -0 into +0. */
        const __m512 vb = _mm512_set1_ps(b ? b[0] : 0.0f);
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            __m512 v = _mm512_loadu_ps(in + i);
            if (b) v = _mm512_add_ps(v, vb);
            _mm512_storeu_ps(out + i, act_ps(v, act));
        }
        if (i < n) {
            const __mmask16 m = tail_mask((int)(n - i));
            __m512 v = _mm512_maskz_loadu_ps(m, in + i);
            if (b) v = _mm512_add_ps(v, vb);
            _mm512_mask_storeu_ps(out + i, m, act_ps(v, act));
        }
        return;
    }
    for (int64_t r = 0; r < n; r++) {
        const float *x = in + r * width;
        float *y = out + r * width;
        int j = 0;
        for (; j + 16 <= width; j += 16) {
            __m512 v = _mm512_loadu_ps(x + j);
            if (b) v = _mm512_add_ps(v, _mm512_loadu_ps(b + j));
            _mm512_storeu_ps(y + j, act_ps(v, act));
        }
        if (j < width) {
            const __mmask16 m = tail_mask(width - j);
            __m512 v = _mm512_maskz_loadu_ps(m, x + j);
            if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + j));
            _mm512_mask_storeu_ps(y + j, m, act_ps(v, act));
        }
    }
}

static void avx512_bias_act(float *Y, int64_t n, int width, const float *b, sg_activation act)
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

static void avx512_standardize(float *X, int64_t n, int d, const float *mean, const float *scale)
{
    for (int64_t r = 0; r < n; r++) {
        float *x = X + r * d;
        int j = 0;
        for (; j + 16 <= d; j += 16) {
            __m512 v = _mm512_sub_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(mean + j));
            _mm512_storeu_ps(x + j, _mm512_div_ps(v, _mm512_loadu_ps(scale + j)));
        }
        if (j < d) {
            const __mmask16 m = tail_mask(d - j);
            __m512 v =
                _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, mean + j));
            /* Masked-off lanes divide 0 by 1, not 0 by 0, to raise no spurious flag. */
            __m512 s = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, scale + j);
            _mm512_mask_storeu_ps(x + j, m, _mm512_div_ps(v, s));
        }
    }
}

/* y = b + x.W for n_out == 1: a dot product with four independent accumulators. */
static float dot(const float *x, const float *w, int n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(w + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(w + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(w + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(w + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(w + i), a0);
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, w + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/*
 * Columns j..j+16*NV of y = b + x.W: NV accumulators walk down the rows of W, so
 * each row's slice is read as one contiguous run (NV = 16 covers a 256-wide layer
 * in a single sequential pass over W; AVX-512 has 32 registers). With NV < 4 two
 * interleaved sets (even/odd rows) keep the FMA latency chain from bounding the
 * loop. The last vector may be masked. The unroll pragmas let GCC keep the
 * accumulator arrays in registers.
 */
AI void mv_cols(const float *x, const float *W, const float *b, int n_in, int n_out, int j,
                float *y, const int NV, __mmask16 last)
{
    __m512 acc[16], acc2[16];
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) {
        const __mmask16 m = v == NV - 1 ? last : (__mmask16)0xFFFF;
        acc[v] = b ? _mm512_maskz_loadu_ps(m, b + j + 16 * v) : _mm512_setzero_ps();
        acc2[v] = _mm512_setzero_ps();
    }
    int i = 0;
    if (NV < 4) {
        for (; i + 2 <= n_in; i += 2) {
            const __m512 x0 = _mm512_set1_ps(x[i]), x1 = _mm512_set1_ps(x[i + 1]);
            const float *w0 = W + (size_t)i * (size_t)n_out + j, *w1 = w0 + n_out;
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++) {
                const __mmask16 m = v == NV - 1 ? last : (__mmask16)0xFFFF;
                acc[v] = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, w0 + 16 * v), acc[v]);
                acc2[v] = _mm512_fmadd_ps(x1, _mm512_maskz_loadu_ps(m, w1 + 16 * v), acc2[v]);
            }
        }
    }
    for (; i < n_in; i++) {
        const __m512 xi = _mm512_set1_ps(x[i]);
        const float *w = W + (size_t)i * (size_t)n_out + j;
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++) {
            const __mmask16 m = v == NV - 1 ? last : (__mmask16)0xFFFF;
            acc[v] = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(m, w + 16 * v), acc[v]);
        }
    }
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) {
        const __mmask16 m = v == NV - 1 ? last : (__mmask16)0xFFFF;
        _mm512_mask_storeu_ps(y + j + 16 * v, m, NV < 4 ? _mm512_add_ps(acc[v], acc2[v]) : acc[v]);
    }
}

static void avx512_matvec(const float *x, const float *W, const float *b, int n_in, int n_out,
                          float *y)
{
    if (n_out == 1) {
        y[0] = (b ? b[0] : 0.0f) + dot(x, W, n_in);
        return;
    }
    int j = 0;
    for (; j + 256 <= n_out; j += 256)
        mv_cols(x, W, b, n_in, n_out, j, y, 16, 0xFFFF);
    for (; j + 128 <= n_out; j += 128)
        mv_cols(x, W, b, n_in, n_out, j, y, 8, 0xFFFF);
    if (j + 64 <= n_out) {
        mv_cols(x, W, b, n_in, n_out, j, y, 4, 0xFFFF);
        j += 64;
    }
    for (; j + 16 <= n_out; j += 16)
        mv_cols(x, W, b, n_in, n_out, j, y, 1, 0xFFFF);
    if (j < n_out) mv_cols(x, W, b, n_in, n_out, j, y, 1, tail_mask(n_out - j));
}

static void softmax_row(const float *z, int k, const float *b, float *o)
{
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < k; j += 16) {
        const __mmask16 m = j + 16 <= k ? (__mmask16)0xFFFF : tail_mask(k - j);
        __m512 t = _mm512_maskz_loadu_ps(m, z + j);
        if (b) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, b + j));
        _mm512_mask_storeu_ps(o + j, m, t);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, t);
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 vsum = _mm512_setzero_ps();
    for (int j = 0; j < k; j += 16) {
        const __mmask16 m = j + 16 <= k ? (__mmask16)0xFFFF : tail_mask(k - j);
        const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, o + j), mx));
        _mm512_mask_storeu_ps(o + j, m, e);
        vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (int j = 0; j < k; j += 16) {
        const __mmask16 m = j + 16 <= k ? (__mmask16)0xFFFF : tail_mask(k - j);
        _mm512_mask_storeu_ps(o + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, o + j), inv));
    }
}

/*
 * Hidden layer, fused: a tile of up to DENSE_ROWS rows x one 64-column stripe keeps its 24
 * accumulators in registers for the whole input, then gets the epilogue before it is
 * stored. The order of operations per element is OpenBLAS's: acc = fma(x_k, w_k, acc) for
 * k = 0.. from +0, then its C = acc * alpha + C with alpha 1 and C zeroed (beta 0), then
 * bias_act's + b and activation. Rows are taken in blocks so that the block's inputs and
 * one stripe of weights stay in L2 while every stripe passes over them.
 */
#define DENSE_ROWS 6
#define DENSE_ROW_BLOCK 96 /* a multiple of 12: SG_DENSE_PAIRED_EDGES's row groups */

AI void dense_tile(int rows, const float *X, int n_in, const float *Wp, const float *b,
                   sg_activation act, float *Y, int n_out)
{
    __m512 acc[DENSE_ROWS][4];
    const float *x[DENSE_ROWS];
    for (int r = 0; r < DENSE_ROWS; r++) {
        x[r] = X + (size_t)(r < rows ? r : 0) * (size_t)n_in;
        for (int v = 0; v < 4; v++)
            acc[r][v] = _mm512_setzero_ps();
    }
    for (int k = 0; k < n_in; k++) {
        const float *w = Wp + (size_t)k * SG_DENSE_STRIPE;
        const __m512 w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 16),
                     w2 = _mm512_load_ps(w + 32), w3 = _mm512_load_ps(w + 48);
        for (int r = 0; r < DENSE_ROWS; r++) {
            if (r >= rows) break;
            const __m512 xb = _mm512_set1_ps(x[r][k]);
            acc[r][0] = _mm512_fmadd_ps(xb, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(xb, w1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(xb, w2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(xb, w3, acc[r][3]);
        }
    }
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < 4; v++) {
            __m512 t = _mm512_fmadd_ps(acc[r][v], one, zero);
            if (b) t = _mm512_add_ps(t, _mm512_loadu_ps(b + 16 * v));
            _mm512_storeu_ps(Y + (size_t)r * (size_t)n_out + 16 * v, act_ps(t, act));
        }
    }
}

/* SG_DENSE_PAIRED_EDGES's two chains for columns c0 .. c0 + cw - 1 of one row (cw <= 16,
   within one stripe), then the epilogue, over what dense_tile stored there. */
AI void paired_cols(const float *x, int n_in, const float *Wp, int c0, int cw, const float *b,
                    sg_activation act, float *y)
{
    const float *w = Wp + (size_t)(c0 / SG_DENSE_STRIPE) * (size_t)n_in * SG_DENSE_STRIPE +
                     c0 % SG_DENSE_STRIPE;
    const __mmask16 m = tail_mask(cw);
    __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
    int k = 0;
    for (; k + 1 < n_in; k += 2) {
        even = _mm512_fmadd_ps(_mm512_set1_ps(x[k]),
                               _mm512_maskz_loadu_ps(m, w + (size_t)k * SG_DENSE_STRIPE), even);
        odd = _mm512_fmadd_ps(_mm512_set1_ps(x[k + 1]),
                              _mm512_maskz_loadu_ps(m, w + (size_t)(k + 1) * SG_DENSE_STRIPE), odd);
    }
    if (k < n_in)
        even = _mm512_fmadd_ps(_mm512_set1_ps(x[k]),
                               _mm512_maskz_loadu_ps(m, w + (size_t)k * SG_DENSE_STRIPE), even);
    __m512 t = _mm512_fmadd_ps(_mm512_add_ps(even, odd), _mm512_set1_ps(1.0f), _mm512_setzero_ps());
    if (b) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, b + c0));
    _mm512_mask_storeu_ps(y + c0, m, act_ps(t, act));
}

/* SG_DENSE_PAIRED_EDGES's two chains for the 6 rows of a 12-row group that take them, on the
   8 columns at a and the 8 at e of one column block at once: each input's two weight rows
   share one vector (a's in the low half, e's in the high), and the 12 chains (6 rows, even
   and odd inputs) run side by side, where one row's two chains would wait on the multiply-add
   latency. Then the epilogue, over what dense_tile stored there. */
AI void paired_edges6(const float *X, int n_in, const float *Wp, int a, int e, const float *b,
                      sg_activation act, float *Y, int n_out)
{
    const float *wa = Wp + (size_t)(a / SG_DENSE_STRIPE) * (size_t)n_in * SG_DENSE_STRIPE +
                      a % SG_DENSE_STRIPE;
    const float *we = Wp + (size_t)(e / SG_DENSE_STRIPE) * (size_t)n_in * SG_DENSE_STRIPE +
                      e % SG_DENSE_STRIPE;
    __m512 acc[6][2];
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    /* Inputs two at a time, so that which chain each feeds is known at compile time. */
    for (int k = 0; k < n_in; k += 2) {
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++) {
            if (k + p >= n_in) break;
            const size_t o = (size_t)(k + p) * SG_DENSE_STRIPE;
            const __m512 w = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(wa + o)),
                                                _mm256_loadu_ps(we + o), 1);
#pragma GCC unroll 6
            for (int r = 0; r < 6; r++)
                acc[r][p] = _mm512_fmadd_ps(
                    _mm512_set1_ps(X[(size_t)r * (size_t)n_in + (size_t)(k + p)]), w, acc[r][p]);
        }
    }
    const __m512 bias = b ? _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(b + a)),
                                               _mm256_loadu_ps(b + e), 1)
                          : _mm512_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
        __m512 t = _mm512_fmadd_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_set1_ps(1.0f),
                                   _mm512_setzero_ps());
        if (b) t = _mm512_add_ps(t, bias);
        t = act_ps(t, act);
        float *y = Y + (size_t)r * (size_t)n_out;
        _mm256_storeu_ps(y + a, _mm512_castps512_ps256(t));
        _mm256_storeu_ps(y + e, _mm512_extractf32x8_ps(t, 1));
    }
}

static void avx512_dense_act(const float *X, int64_t n, int n_in, const float *Wp, const float *b,
                             sg_activation act, float *Y, int n_out, sg_dense_order order)
{
    const int stripes = n_out / SG_DENSE_STRIPE;
    int start[64];
    const int blocks = order == SG_DENSE_PAIRED_EDGES ? sg_paired_column_blocks(n_out, start, 64) : 0;
    for (int64_t i0 = 0; i0 < n; i0 += DENSE_ROW_BLOCK) {
        const int64_t i1 = n - i0 < DENSE_ROW_BLOCK ? n : i0 + DENSE_ROW_BLOCK;
        for (int s = 0; s < stripes; s++) {
            const float *w = Wp + (size_t)s * (size_t)n_in * SG_DENSE_STRIPE;
            const float *bs = b ? b + s * SG_DENSE_STRIPE : NULL;
            float *y = Y + s * SG_DENSE_STRIPE;
            int64_t i = i0;
            for (; i + DENSE_ROWS <= i1; i += DENSE_ROWS)
                dense_tile(DENSE_ROWS, X + i * n_in, n_in, w, bs, act, y + i * n_out, n_out);
            if (i < i1)
                dense_tile((int)(i1 - i), X + i * n_in, n_in, w, bs, act, y + i * n_out, n_out);
        }
        /* The elements the order sums in two chains, done again over the block's rows while
           they are in cache (about 3% of a 256-wide layer's products). */
        for (int64_t i = i0; blocks && i < i1; i++) {
            const int kind = sg_paired_row_kind(i, n);
            const float *x = X + i * n_in;
            float *y = Y + i * n_out;
            if (kind == 1) {
                /* The first of 6 such rows (12-row groups start at multiples of 12, and a
                   block of rows at a multiple of DENSE_ROW_BLOCK, itself one of 12). Blocks
                   are at least 64 columns wide, so their two edges never meet. */
                for (int c = 0; c < blocks; c++)
                    paired_edges6(x, n_in, Wp, start[c], start[c + 1] - 8, b, act, y, n_out);
                i += 5;
            } else if (kind >= 2) {
                /* Blocks are whole multiples of 8 columns, not always of 16. */
                const int to = kind == 2 ? start[1] : n_out;
                for (int c = 0; c < to; c += 16)
                    paired_cols(x, n_in, Wp, c, to - c < 16 ? to - c : 16, b, act, y);
            }
        }
    }
}

/*
 * Two-class softmax, 16 rows at a time. Per row it does what softmax_row does for k = 2,
 * operation for operation: its lane reductions reduce to max_ps(t0, t1) (operands in that
 * order) and to t0's exp + t1's exp, so the bits are the same. A block holding a
 * non-finite logit goes through softmax_row, whose NaN handling is not reproduced here.
 * Per row, softmax_row costs about as much as the whole output layer's sgemm.
 */
static void softmax2_rows(const float *Z, int64_t n, const float *b, float *out)
{
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    /* fpclass: quiet NaN, +Inf, -Inf, signalling NaN */
    const int nonfinite = 0x01 | 0x08 | 0x10 | 0x80;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 za = _mm512_loadu_ps(Z + 2 * i), zb = _mm512_loadu_ps(Z + 2 * i + 16);
        __m512 t0 = _mm512_permutex2var_ps(za, even, zb), t1 = _mm512_permutex2var_ps(za, odd, zb);
        if (b) {
            t0 = _mm512_add_ps(t0, _mm512_set1_ps(b[0]));
            t1 = _mm512_add_ps(t1, _mm512_set1_ps(b[1]));
        }
        if (_mm512_fpclass_ps_mask(t0, nonfinite) | _mm512_fpclass_ps_mask(t1, nonfinite)) {
            for (int64_t r = i; r < i + 16; r++)
                softmax_row(Z + 2 * r, 2, b, out + 2 * r);
            continue;
        }
        const __m512 mx = _mm512_max_ps(t0, t1);
        const __m512 e0 = exp_ps(_mm512_sub_ps(t0, mx)), e1 = exp_ps(_mm512_sub_ps(t1, mx));
        const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(e0, e1));
        const __m512 p0 = _mm512_mul_ps(e0, inv), p1 = _mm512_mul_ps(e1, inv);
        _mm512_storeu_ps(out + 2 * i, _mm512_permutex2var_ps(p0, lo, p1));
        _mm512_storeu_ps(out + 2 * i + 16, _mm512_permutex2var_ps(p0, hi, p1));
    }
    for (; i < n; i++)
        softmax_row(Z + 2 * i, 2, b, out + 2 * i);
}

/* Binary: (p0, p1) pairs interleaved into [n][2], both from the same exp(-|z|). */
AI void sigmoid_pair(__m512 z, __m512 *p0, __m512 *p1)
{
    const __m512 e = exp_ps(_mm512_or_ps(z, _mm512_set1_ps(-0.0f)));
    const __m512 p = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    const __m512 q = _mm512_mul_ps(e, p);
    const __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    *p1 = _mm512_mask_blend_ps(neg, p, q);
    *p0 = _mm512_mask_blend_ps(neg, q, p);
}

static void binary_sigmoid(const float *Z, int64_t n, const float *b, float *out)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 vb = _mm512_set1_ps(b ? b[0] : 0.0f);
    int64_t i = 0;
    for (; i < n; i += 16) {
        const int rem = n - i >= 16 ? 16 : (int)(n - i);
        __m512 p0, p1;
        __m512 z = _mm512_maskz_loadu_ps(tail_mask(rem), Z + i);
        if (b) z = _mm512_add_ps(z, vb);
        sigmoid_pair(z, &p0, &p1);
        const __m512 a = _mm512_permutex2var_ps(p0, lo, p1), c = _mm512_permutex2var_ps(p0, hi, p1);
        /* 2*rem output floats: the first 16 from a, the rest from c. */
        const int first = rem >= 8 ? 16 : 2 * rem, second = rem > 8 ? 2 * (rem - 8) : 0;
        _mm512_mask_storeu_ps(out + 2 * i, tail_mask(first), a);
        if (second) _mm512_mask_storeu_ps(out + 2 * i + 16, tail_mask(second), c);
    }
}

static void avx512_bias_link(const float *Z, int64_t n, int n_outputs, const float *b, sg_link link,
                             float *out)
{
    if (link == SG_LINK_SIGMOID && n_outputs == 1) {
        binary_sigmoid(Z, n, b, out);
    } else if (link == SG_LINK_SOFTMAX && n_outputs == 2) {
        softmax2_rows(Z, n, b, out);
    } else if (link == SG_LINK_SOFTMAX) {
        for (int64_t r = 0; r < n; r++)
            softmax_row(Z + r * n_outputs, n_outputs, b, out + r * n_outputs);
    } else if (link == SG_LINK_SIGMOID) {
        map_rows(Z, out, n, n_outputs, b, SG_ACT_LOGISTIC);
    } else {
        map_rows(Z, out, n, n_outputs, b, SG_ACT_IDENTITY);
    }
}

const sg_kernel_ops sg_kernel_ops_avx512 = {
    .name = "avx512",
    .isa = SG_ISA_AVX512,
    .matvec = avx512_matvec,
    .bias_act = avx512_bias_act,
    .standardize = avx512_standardize,
    .bias_link = avx512_bias_link,
    .dense_act = avx512_dense_act,
    .tree_margins = sg_tree_margins_avx512,
    .tree_margins_one = sg_tree_margins_one_avx512,
};
