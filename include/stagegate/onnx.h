/*
 * ONNX models compiled into a plan the kernels run. The loader (datasets/model_onnx*.c)
 * folds constants, fuses MatMul/Gemm + Add + activation and BatchNormalization into one
 * GEMM step, recognises PyTorch's GELU and LayerNorm decompositions, and assigns buffers
 * once. A graph that is a pure MLP chain becomes the dense layers of sg_model itself and
 * runs on exactly the native format's kernels; any other graph runs the step list below.
 */
#ifndef STAGEGATE_ONNX_H
#define STAGEGATE_ONNX_H

#include <math.h>

#include "stagegate/common.h"
#include "stagegate/trees.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_ONNX_OPSET_MIN 9
#define SG_ONNX_OPSET_MAX 17
#define SG_ONNX_NAME 48

/* What the graph's output means when it does not end in Softmax or Sigmoid
   (docs/formats.md): the --output flag, else metadata_props "stagegate.output". */
typedef enum {
    SG_ONNX_OUTPUT_AUTO = 0,
    SG_ONNX_OUTPUT_LOGITS = 1,
    SG_ONNX_OUTPUT_PROBA = 2,
    SG_ONNX_OUTPUT_VALUE = 3,
    /* Or'ed with one of the above: it applies only to a model whose metadata_props say
       nothing (gate's --output for the baseline, which keeps its own stated meaning). */
    SG_ONNX_OUTPUT_IF_UNSAID = 0x100,
} sg_onnx_output;

/* "logits", "proba", "value"; -1 when unknown. */
int sg_onnx_output_parse(const char *s);
const char *sg_onnx_output_name(sg_onnx_output o);

typedef enum {
    SG_OX_GEMM,        /* out = act(in @ W + b) */
    SG_OX_UNARY,       /* out = f(in) */
    SG_OX_BINARY,      /* out = a op b, with row/column/constant broadcasting */
    SG_OX_AFFINE,      /* out[j] = in[j] * scale[j] + shift[j] (BatchNormalization) */
    SG_OX_LAYERNORM,   /* over each row; scale/shift may be NULL */
    SG_OX_SOFTMAX,     /* over each row */
    SG_OX_LOGSOFTMAX,  /* over each row */
    SG_OX_MEAN,        /* out[0] = mean of the row */
    SG_OX_CONCAT,      /* rows side by side */
    SG_OX_GELU,        /* 0.5 x (1 + erf(x / sqrt 2)) */
    SG_OX_REDUCE,      /* out[0] = a reduction (sg_onnx_reduce) of the row */
    SG_OX_GATHER,      /* out[j] = in[cols[j]] (Slice, Transpose, Expand, Tile, Split) */
    SG_OX_FILL,        /* out[j] = b[j] (ConstantOfShape, Expand of a constant per row) */
    SG_OX_WHERE,       /* out = cc != 0 ? a : bb, each argument as BINARY's (Where) */
    SG_OX_MATMUL_ROWS, /* per row, each of its matrices: out = a (m x k) @ bb (k x n) */
    /* out = rows of W ([emb_rows][width / in_width]) picked by the integer values of in
       (Gather of a constant table by indices per row: an embedding); an index outside
       [-emb_rows, emb_rows) gives NaN, which the output check refuses */
    SG_OX_EMBED,
    /* out[j] = in[0] + ... + in[j] over each vector, left to right in float (cum_exclusive:
       up to in[j - 1]; cum_reverse: from the end) (CumSum) */
    SG_OX_CUMSUM,
    /* out = the width (k) largest (topk_largest) or smallest values of each vector of
       in_width, best first, equal values in index order, NaN above every number; or with
       topk_indices their indices (TopK) */
    SG_OX_TOPK,
    /* out[e] = a[cols[e] + idx * sel_stride] where idx = bb[e], an integer in
       [-sel_len, sel_len) (negative: from the end), else NaN (GatherElements by indices per
       row) */
    SG_OX_GATHER_ROWS,
    /* out[i * sel_len + k] = beta (on) where trunc(in[i]) is k or k - sel_len, else alpha
       (off) (OneHot) */
    SG_OX_ONEHOT,
    /* LSTM or GRU over each row's sequence (rnn_gru; ONNX's default activations): in holds the
       input projections [mm_m (T)][mm_n (directions)][G * mm_k (H)] (G gates: LSTM i, o, f, c;
       GRU z, r, h), biases added, and is overwritten as the gates accumulate; W holds each
       direction's recurrence weights transposed, [directions][H][G * H]; out is
       [T][directions][2H]: h, then c (LSTM) or scratch (GRU). The initial h and c are a and bb
       (rows of [directions][H], or constants, zeros when absent). GRU: shift holds the
       recurrence bias of h ([directions][H]) with rnn_lbr (linear_before_reset). rnn_clip > 0
       clips every gate's input. */
    SG_OX_RNN,
    /* A tree ensemble of ONNX-ML (TreeEnsembleClassifier/Regressor) over rows of in_width
       features: out[g] = (the trees' sum for output g, from 0, in tree order, in float)
       / tree_div (AVERAGE; 0: SUM) + shift[g]; with tree_binary (one margin s of a two-class
       classifier, out of width 2) out = [1 - s, s] (1) or [sigmoid(-s), sigmoid(s)] (2) */
    SG_OX_TREES,
    /* ONNX-ML Normalizer over each row, as ONNX Runtime computes it: reduce is SG_OXR_MAX
       (the row's maximum, NaN skipped), SG_OXR_L1 or SG_OXR_L2 (sums left to right in
       float); out = in / that norm, or in itself where the norm is 0 */
    SG_OX_NORMALIZE,
} sg_onnx_step_kind;

/* Row reductions besides the mean (ReduceSum, ReduceMax, ...), summed left to right in float. */
typedef enum {
    SG_OXR_SUM,
    SG_OXR_SUM_SQUARE,
    SG_OXR_L1,
    SG_OXR_L2,
    SG_OXR_MAX,
    SG_OXR_MIN,
    SG_OXR_PROD,
    SG_OXR_LOG_SUM_EXP,
    /* ArgMax and ArgMin: the index as a float (exact below 2^24), the first of equals, or
       the last with select_last_index; a NaN wins, as in numpy and PyTorch */
    SG_OXR_ARGMAX,
    SG_OXR_ARGMIN,
    SG_OXR_ARGMAX_LAST,
    SG_OXR_ARGMIN_LAST,
} sg_onnx_reduce;

typedef enum {
    SG_OXU_RELU,
    SG_OXU_LEAKY_RELU, /* alpha */
    SG_OXU_SIGMOID,
    SG_OXU_TANH,
    SG_OXU_ERF,
    SG_OXU_SQRT,
    SG_OXU_POW, /* x ^ alpha (a constant exponent) */
    SG_OXU_COPY,
    SG_OXU_CLIP, /* alpha = min, beta = max */
    SG_OXU_ELU,  /* alpha */
    SG_OXU_SELU, /* alpha, beta = gamma */
    SG_OXU_CELU, /* alpha (not 0) */
    SG_OXU_SOFTPLUS,
    SG_OXU_SOFTSIGN,
    SG_OXU_HARD_SIGMOID, /* alpha, beta */
    SG_OXU_HARD_SWISH,
    SG_OXU_ABS,
    SG_OXU_NEG,
    SG_OXU_EXP,
    SG_OXU_LOG,
    SG_OXU_RECIPROCAL,
    SG_OXU_NOT,   /* on a condition of 0/1: x == 0 */
    SG_OXU_SIGN,  /* -1, 0 or 1 (NaN stays NaN) */
    SG_OXU_ISNAN, /* a condition: x is NaN */
    SG_OXU_ISINF, /* a condition: x is -inf (alpha != 0) or +inf (beta != 0) */
    SG_OXU_TRUNC, /* Cast of float rows to an integer type: sg_onnx_cast_trunc, alpha its 2^31 or
                     2^63 */
    SG_OXU_FLOOR,
    SG_OXU_CEIL,
    SG_OXU_ROUND, /* half to even, as ONNX Round and numpy */
    SG_OXU_SIN,
    SG_OXU_COS,
    SG_OXU_TAN,
    SG_OXU_ASIN,
    SG_OXU_ACOS,
    SG_OXU_ATAN,
    SG_OXU_SINH,
    SG_OXU_COSH,
    SG_OXU_ASINH,
    SG_OXU_ACOSH,
    SG_OXU_ATANH,
    SG_OXU_THRESHOLDED_RELU, /* alpha */
    SG_OXU_SHRINK,           /* alpha = lambd, beta = bias */
} sg_onnx_unary;

typedef enum {
    SG_OXB_ADD,
    SG_OXB_SUB,
    SG_OXB_MUL,
    SG_OXB_DIV,
    SG_OXB_POW,
    SG_OXB_PRELU, /* a < 0 ? b * a : a, b the constant slope */
    SG_OXB_MAX,
    SG_OXB_MIN,
    SG_OXB_MOD, /* Mod of integers (fmod 0): the remainder takes the divisor's sign (sg_onnx_mod) */
    SG_OXB_FMOD, /* Mod with fmod 1: C's fmod, the remainder takes the dividend's sign */
    /* Comparisons: 1 where they hold, else 0 (a condition; NaN compares false) */
    SG_OXB_EQ,
    SG_OXB_GT,
    SG_OXB_LT,
    SG_OXB_GE,
    SG_OXB_LE,
} sg_onnx_binary;

/*
 * Element-wise formulas of the ONNX operators added with opset-9..17 activations, as the
 * ONNX operator definitions state them. Constant folding at load and the run-time row
 * loops both call these, so a folded constant and a computed row agree bit for bit.
 * A NaN input gives NaN (Clip, HardSigmoid, Max and Min included, as numpy's clip,
 * maximum and minimum); the exponential forms use expm1f and log1pf where exp(x) - 1 or
 * log(1 + exp(x)) would cancel or overflow.
 */
/*
 * Cast of a float to an integer type whose values are below limit (2^31 for int32, 2^63 for
 * int64) in magnitude: toward zero; a value past the type's range, or NaN, is its smallest
 * value (-limit), as the C cast gives it on x86 (cvttss2si's "integer indefinite"), and so
 * PyTorch's .long() and .int(), numpy's astype and ONNX Runtime there. (Held as a float, a
 * value past 2^24 is a step anyway: compared or gathered by, never summed.)
 */
static inline float sg_onnx_cast_trunc(float x, float limit)
{
    return fabsf(x) < limit ? truncf(x) : -limit;
}

static inline float sg_onnx_clip(float x, float lo, float hi)
{
    /* max with lo, then min with hi: min > max gives max everywhere, as numpy's clip. */
    const float t = x < lo ? lo : x;
    return t > hi ? hi : t;
}

static inline float sg_onnx_elu(float x, float alpha)
{
    return x < 0 ? alpha * expm1f(x) : x;
}

static inline float sg_onnx_selu(float x, float alpha, float gamma)
{
    return x > 0 ? gamma * x : gamma * (alpha * expm1f(x));
}

static inline float sg_onnx_celu(float x, float alpha)
{
    return x > 0 ? x : alpha * expm1f(x / alpha);
}

static inline float sg_onnx_softplus(float x)
{
    return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

static inline float sg_onnx_softsign(float x)
{
    return x / (1.0f + fabsf(x));
}
/* ThresholdedRelu: x above alpha, else 0 (NaN gives 0, as ONNX Runtime's comparison). */
static inline float sg_onnx_thresholded_relu(float x, float alpha)
{
    return x > alpha ? x : 0.0f;
}
/* Shrink: x + bias below -lambd, x - bias above lambd, else 0 (NaN gives 0). */
static inline float sg_onnx_shrink(float x, float lambd, float bias)
{
    return x < -lambd ? x + bias : x > lambd ? x - bias : 0.0f;
}

static inline float sg_onnx_hard_sigmoid(float x, float alpha, float beta)
{
    return sg_onnx_clip(alpha * x + beta, 0.0f, 1.0f);
}

/* x * HardSigmoid(x) with alpha = 1/6, beta = 0.5 (HardSwish-14): the same bits as the
   HardSigmoid + Mul that PyTorch exports below opset 14. */
static inline float sg_onnx_hard_swish(float x)
{
    return x * sg_onnx_hard_sigmoid(x, 1.0f / 6.0f, 0.5f);
}

static inline float sg_onnx_prelu(float x, float slope)
{
    return x < 0 ? slope * x : x;
}

/* ONNX Mod with fmod 0, of integers held exactly as floats: as Python's % and numpy's mod,
   the remainder has the divisor's sign (fmodf is exact, and so is adding b to a remainder
   smaller than it). A divisor of 0 gives NaN (ONNX leaves it undefined). */
static inline float sg_onnx_mod(float a, float b)
{
    float r = fmodf(a, b);
    if (r != 0.0f && (r < 0.0f) != (b < 0.0f)) r += b;
    return r;
}

static inline float sg_onnx_max(float a, float b)
{
    return a > b || isnan(a) ? a : b;
}

static inline float sg_onnx_min(float a, float b)
{
    return a < b || isnan(a) ? a : b;
}

/*
 * Pairwise sums in float, as numpy sums float32: a block of up to 128 terms goes to eight
 * accumulators (term j to accumulator j % 8, combined as a tree), and a longer row is split
 * in halves (at a multiple of 8) summed alike. The error grows with the logarithm of the
 * length, not the length: 120,000 x 0.1 summed left to right in float had been 11990.74, not
 * 12000.0002, and eight independent accumulators run faster than one chain. TERM(v) is the
 * term of element v; name_(x, n, mx) sums TERM over x[0..n) (mx: LogSumExp's maximum).
 */
#define SG_ONNX_PAIRWISE(name_, TERM)                                                              \
    static inline float name_(const float *x, int n, float mx)                                     \
    {                                                                                              \
        (void)mx;                                                                                  \
        if (n > 128) {                                                                             \
            const int h = (n / 2 + 7) & ~7;                                                        \
            return name_(x, h, mx) + name_(x + h, n - h, mx);                                      \
        }                                                                                          \
        float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                     \
        int j = 0;                                                                                 \
        for (; j + 8 <= n; j += 8)                                                                 \
            for (int q = 0; q < 8; q++) {                                                          \
                const float v = x[j + q];                                                          \
                a[q] += (TERM);                                                                    \
            }                                                                                      \
        for (int q = 0; j < n; j++, q++) {                                                         \
            const float v = x[j];                                                                  \
            a[q] += (TERM);                                                                        \
        }                                                                                          \
        return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));                  \
    }
SG_ONNX_PAIRWISE(sg_onnx_sum_plain, v)
SG_ONNX_PAIRWISE(sg_onnx_sum_square, v *v)
SG_ONNX_PAIRWISE(sg_onnx_sum_abs, fabsf(v))
SG_ONNX_PAIRWISE(sg_onnx_sum_exp, expf(v - mx))
SG_ONNX_PAIRWISE(sg_onnx_sum_sqdev, (v - mx) * (v - mx)) /* mx: the mean */
#undef SG_ONNX_PAIRWISE

/* A row reduction (ONNX Reduce*, over the last axis): sums pairwise in float (above); the
   product left to right in double, rounded once; Max and Min propagate a NaN; LogSumExp
   subtracts the row's maximum before exponentiating. */
static inline float sg_onnx_reduce_row(sg_onnx_reduce op, const float *x, int n)
{
    switch (op) {
    case SG_OXR_SUM:
        return sg_onnx_sum_plain(x, n, 0);
    case SG_OXR_SUM_SQUARE:
        return sg_onnx_sum_square(x, n, 0);
    case SG_OXR_L2:
        return sqrtf(sg_onnx_sum_square(x, n, 0));
    case SG_OXR_L1:
        return sg_onnx_sum_abs(x, n, 0);
    case SG_OXR_MAX:
    case SG_OXR_MIN: {
        float m = x[0];
        for (int j = 1; j < n; j++)
            m = op == SG_OXR_MAX ? sg_onnx_max(m, x[j]) : sg_onnx_min(m, x[j]);
        return m;
    }
    case SG_OXR_PROD: {
        double acc = 1;
        for (int j = 0; j < n; j++)
            acc *= x[j];
        return (float)acc;
    }
    case SG_OXR_LOG_SUM_EXP: {
        float mx = x[0];
        for (int j = 1; j < n; j++)
            mx = sg_onnx_max(mx, x[j]);
        if (!isfinite(mx)) return mx; /* NaN, or every term infinite */
        return mx + logf(sg_onnx_sum_exp(x, n, mx));
    }
    case SG_OXR_ARGMAX:
    case SG_OXR_ARGMIN:
    case SG_OXR_ARGMAX_LAST:
    case SG_OXR_ARGMIN_LAST: {
        const bool max = op == SG_OXR_ARGMAX || op == SG_OXR_ARGMAX_LAST,
                   last = op == SG_OXR_ARGMAX_LAST || op == SG_OXR_ARGMIN_LAST;
        int best = 0;
        for (int j = 1; j < n; j++) {
            const float a = x[j], b = x[best];
            if (isnan(b) && !last) break; /* the first NaN */
            const bool wins = isnan(a) || (max ? (last ? a >= b : a > b) : (last ? a <= b : a < b));
            if (wins && !(isnan(b) && !isnan(a))) best = j;
        }
        return (float)best;
    }
    }
    return NAN;
}

/* Whether a ranks before b in TopK's order: greater (largest) or smaller, NaN above every
   number in both (as PyTorch's topk and sort): first among the largest, last among the
   smallest. */
static inline bool sg_onnx_topk_before(float a, float b, bool largest)
{
    if (isnan(a) || isnan(b)) return largest ? isnan(a) && !isnan(b) : isnan(b) && !isnan(a);
    return largest ? a > b : a < b;
}

/* The k best of x[0..w) (sg_onnx_topk_before), best first, equal values in index order:
   their indices into idx (as floats, exact below 2^24), by insertion. */
static inline void sg_onnx_topk_row(const float *x, int w, int k, bool largest, float *idx)
{
    int n = 0;
    for (int i = 0; i < w; i++) {
        if (n == k && !sg_onnx_topk_before(x[i], x[(int)idx[n - 1]], largest)) continue;
        int p = n < k ? n++ : k - 1;
        while (p > 0 && sg_onnx_topk_before(x[i], x[(int)idx[p - 1]], largest)) {
            idx[p] = idx[p - 1];
            p--;
        }
        idx[p] = (float)i;
    }
}

/* The mean of a row: its pairwise sum over its length. */
static inline float sg_onnx_mean_row(const float *x, int n)
{
    return sg_onnx_sum_plain(x, n, 0) / (float)n;
}

/* An operand of a binary step: a buffer row of the step's width, a buffer with one value
   per row (broadcast along the row), or a constant row of the step's width. */
typedef enum { SG_OXA_ROW, SG_OXA_COL, SG_OXA_CONST } sg_onnx_arg_kind;

typedef struct {
    sg_onnx_arg_kind kind;
    int buf;            /* ROW, COL: buffer index (-1 is the model's input X) */
    const float *value; /* CONST: [width] */
} sg_onnx_arg;

typedef struct {
    sg_onnx_step_kind kind;
    char name[SG_ONNX_NAME]; /* the ONNX node name(s) it came from, for --breakdown */
    int in;                  /* input buffer (-1: X) */
    int in_width;
    int out; /* output buffer */
    int width;
    /* GEMM, LAYERNORM, SOFTMAX, LOGSOFTMAX, MEAN, REDUCE, CUMSUM over the last axis of rows of rank
       2 or more: a row is `groups` vectors of in_width (its output `groups` vectors of width), each
       taken alone, as rows of their own. 0 or 1: the row is one vector. */
    int groups;
    /* GEMM: W holds this many [in_width][width] blocks when more than 1 (a batch of weight
       matrices: MatMul by a constant of rank 3 or more, Einsum); vector v of a row is
       multiplied by block v % wgroups (the row's vectors are [..., wgroups] in order). */
    int wgroups;
    /* GEMM */
    float *W; /* [wgroups][in_width][width], 64-byte aligned */
    float *b; /* [width] */
    int act;  /* sg_activation */
    /* UNARY */
    sg_onnx_unary unary;
    float alpha, beta; /* the operator's parameters (sg_onnx_unary says which) */
    /* BINARY */
    sg_onnx_binary binary;
    sg_onnx_arg a, bb;
    /* WHERE: the condition (a and bb are the values taken where it holds and where not) */
    sg_onnx_arg cc;
    /* MATMUL_ROWS: the matrices' sizes (a row holds width / (mm_m * mm_n) of each) */
    int mm_m, mm_k, mm_n;
    int emb_rows; /* EMBED: rows of the table */
    bool cum_exclusive, cum_reverse; /* CUMSUM */
    bool topk_largest, topk_indices; /* TOPK */
    int sel_stride, sel_len;         /* GATHER_ROWS, ONEHOT */
    bool rnn_gru, rnn_lbr, rnn_reverse; /* RNN (rnn_reverse: one direction, backward) */
    float rnn_clip;
    /* AFFINE, LAYERNORM */
    float *scale, *shift;
    float eps;
    /* CONCAT */
    int n_parts;
    int *parts, *part_width;
    /* REDUCE */
    sg_onnx_reduce reduce;
    /* GATHER: [width] input columns; with padded, a column of -1 reads pad_value (a
       convolution's or pooling window's taps in the padding) */
    int *cols;
    bool padded;
    float pad_value;
    /* TREES: the ensemble (n_groups margins), its divisor and two-class form */
    sg_tree_ensemble *trees;
    float tree_div;
    int tree_binary;
} sg_onnx_step;

/* Vectors per row of step s (sg_onnx_step.groups), and its input and output row widths. */
static inline int sg_onnx_groups(const sg_onnx_step *s)
{
    return s->groups > 1 ? s->groups : 1;
}

/* Floats in step s's W: [in_width][width] for a GEMM, the table for EMBED. */
static inline size_t sg_onnx_w_floats(const sg_onnx_step *s)
{
    if (s->kind == SG_OX_EMBED)
        return (size_t)s->emb_rows * ((size_t)s->width / (size_t)s->in_width);
    if (s->kind == SG_OX_RNN)
        return (size_t)s->mm_n * (size_t)s->mm_k * (size_t)(s->rnn_gru ? 3 : 4) * (size_t)s->mm_k;
    return (size_t)s->in_width * (size_t)s->width * (size_t)(s->wgroups > 1 ? s->wgroups : 1);
}

/* How the last buffer becomes the model's output. */
typedef enum {
    SG_ONNX_EPI_LINK,   /* bias_link with `link` (sigmoid, softmax or identity) */
    SG_ONNX_EPI_PROBA1, /* one probability p1 -> (1 - p1, p1) */
    SG_ONNX_EPI_COPY,   /* already probabilities */
} sg_onnx_epilogue;

typedef struct sg_onnx_plan {
    int opset;
    int n_steps;
    sg_onnx_step *steps;
    int n_bufs;
    int buf_width; /* widest buffer, floats per row */
    int out_buf;   /* -1 when the output is the input itself */
    int out_width;
    sg_onnx_epilogue epi;
    int link; /* sg_link for SG_ONNX_EPI_LINK */
    /* A pure MLP chain: sg_model's layers hold it and the dense kernels run it; steps is
       then empty and stage[] names the layers for --breakdown. */
    bool dense;
    int n_stages;
    char (*stage)[SG_ONNX_NAME];
    double flops_per_row;
    char output_rule[64]; /* how the output meaning was decided, for describe */
    /* The graph output named as the model's (--output-name or the model's metadata; "" when
       none was named), and how many the graph has, for describe and reports. */
    char output_name[512];
    int n_graph_outputs;
} sg_onnx_plan;

void sg_onnx_plan_free(sg_onnx_plan *p);
SG_MUST_CHECK sg_status sg_onnx_plan_clone(const sg_onnx_plan *src, sg_onnx_plan **out, sg_err *err);

#ifdef __cplusplus
}
#endif
#endif
