/*
 * The ONNX kind behind sg_model_ops. A graph the loader compiled into a pure MLP chain runs
 * on the dense forward pass itself (sg_forward_batch / sg_forward_one_probed), so it is as
 * fast as the native format. Any other graph runs its step list: GEMMs on sgemm (batch) or
 * the matvec kernel (batch 1) with the fused bias + activation epilogue, and the other
 * steps as row loops over buffers planned once at load.
 *
 * A scratch belongs to one thread: n_bufs buffers of `rows` rows x buf_width floats, rows
 * being max_batch, or fewer where that would pass ONNX_SCRATCH_BUDGET (a plan with very wide
 * rows: Tile(x, [1, 100000]) had taken 19 GB for two workers' 1,024-row scratch); a batch
 * then runs in pieces of `rows`, each row computed as it would be in one piece.
 */
#define ONNX_SCRATCH_BUDGET ((size_t)64 << 20)
#include "stagegate/model_ops.h"

#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t max_batch;
    int64_t rows;  /* rows the buffers hold (a batch runs in pieces of this many) */
    size_t stride; /* floats per buffer */
    float *mem;
    sg_forward_scratch *dense;
} onnx_scratch;

static bool onnx_probe(const uint8_t *head, size_t n)
{
    /* A ModelProto as the ONNX writers emit it starts with field 1 (ir_version, a varint):
       tag byte 0x08 and a small version. */
    return n >= 2 && head[0] == 0x08 && head[1] >= 1 && head[1] < 0x80;
}

static sg_status onnx_load(const char *path, const uint8_t *bytes, size_t len,
                           const sg_model_open_options *o, sg_model **out, sg_err *err)
{
    sg_status rc =
        sg_model_load_onnx_bytes(path, bytes, len, o ? o->onnx_output : SG_ONNX_OUTPUT_AUTO,
                                 o ? o->onnx_output_name : NULL, out, err);
    if (rc == SG_OK) (*out)->ops = &sg_model_ops_onnx;
    return rc;
}

static void onnx_describe(const sg_model *m, char *buf, size_t len)
{
    const sg_onnx_plan *p = m->onnx;
    int n = snprintf(buf, len, "onnx: opset %d, %d features", p->opset, m->n_features);
    if (p->dense)
        for (int l = 0; l < m->n_layers && n > 0 && (size_t)n < len; l++)
            n += snprintf(buf + n, len - (size_t)n, "%s%d", l == 0 ? ", layers " : "x",
                          m->layers[l].n_out);
    else if (n > 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ", %d steps", p->n_steps);
    if (n > 0 && (size_t)n < len && p->output_name[0])
        n += snprintf(buf + n, len - (size_t)n, ", graph output '%s' of %d", p->output_name,
                      p->n_graph_outputs);
    if (n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ", output %s, %s", p->output_rule,
                 p->dense ? "dense kernels" : "step plan");
}

static void onnx_scratch_free(void *v)
{
    onnx_scratch *s = v;
    if (!s) return;
    sg_forward_scratch_free(s->dense);
    sg_free_aligned(s->mem);
    free(s);
}

static sg_status onnx_scratch_new(const sg_model *m, int64_t max_batch, void **out, sg_err *err)
{
    *out = NULL;
    const sg_onnx_plan *p = m->onnx;
    if (max_batch < 1 || max_batch > INT_MAX)
        return sg_errf(err, SG_EINPUT, "forward batch size %lld is outside 1..%d",
                       (long long)max_batch, INT_MAX);
    onnx_scratch *s = calloc(1, sizeof *s);
    if (!s) return sg_errf(err, SG_ENOMEM, "out of memory allocating ONNX scratch");
    s->max_batch = max_batch;
    if (p->dense) {
        int rc = sg_forward_scratch_new(m, max_batch, &s->dense, err);
        if (rc) {
            free(s);
            return rc;
        }
        *out = s;
        return SG_OK;
    }
    size_t stride, bytes;
    int nb = p->n_bufs > 0 ? p->n_bufs : 1;
    const size_t row_bytes = (size_t)nb * (size_t)p->buf_width * sizeof(float); /* < 2^40 */
    s->rows = max_batch;
    if (row_bytes * (size_t)s->rows > ONNX_SCRATCH_BUDGET) {
        s->rows = (int64_t)(ONNX_SCRATCH_BUDGET / row_bytes);
        if (s->rows < 1) s->rows = 1;
    }
    if (!sg_mul_size((size_t)s->rows, (size_t)p->buf_width, &stride) ||
        !sg_mul_size(stride, (size_t)nb * sizeof(float), &bytes)) {
        const long long rows = (long long)s->rows;
        free(s);
        return sg_errf(err, SG_ENOMEM, "ONNX scratch of %lld rows is too large", rows);
    }
    int rc = sg_check_alloc(s->rows, bytes / (size_t)s->rows, "ONNX scratch", err);
    if (rc) {
        free(s);
        return rc;
    }
    s->stride = stride;
    s->mem = sg_alloc_aligned(bytes);
    if (!s->mem) {
        free(s);
        return sg_errf(err, SG_ENOMEM, "out of memory allocating %zu bytes of ONNX scratch", bytes);
    }
    /* First touch on the owning thread (NUMA placement, no faults in timed calls). */
    memset(s->mem, 0, bytes);
    *out = s;
    return SG_OK;
}

/*
 * erf for the fused GELU step: a rational approximation (odd degree-13 numerator, even
 * degree-8 denominator, the one Eigen and XLA use) on x clamped to [-4, 4], where erf is
 * 1 in float32. Absolute error below 5e-7 (GELU's below 1e-6 for |x| <= 6); no calls and
 * no branches, so the row loop vectorises, unlike libm's erff. The Erf operator itself
 * keeps libm's erff.
 */
static inline float gelu_erf(float x)
{
    x = x < -4.0f ? -4.0f : x > 4.0f ? 4.0f : x;
    const float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return x * p / q;
}

static inline float *bufp(const onnx_scratch *s, const float *X, int b)
{
    return b < 0 ? (float *)X : s->mem + (size_t)b * s->stride;
}

static void run_unary(const sg_kernel_ops *k, const sg_onnx_step *st, const float *in, float *out,
                      int64_t n)
{
    const size_t cnt = (size_t)n * (size_t)st->width;
    const float a = st->alpha, b = st->beta;
    sg_activation act = SG_ACT_IDENTITY;
    switch (st->unary) {
    case SG_OXU_RELU:
        act = SG_ACT_RELU;
        break;
    case SG_OXU_TANH:
        act = SG_ACT_TANH;
        break;
    case SG_OXU_SIGMOID:
        act = SG_ACT_LOGISTIC;
        break;
    case SG_OXU_LEAKY_RELU:
        for (size_t i = 0; i < cnt; i++)
            out[i] = in[i] >= 0 ? in[i] : a * in[i];
        return;
    case SG_OXU_ERF:
        for (size_t i = 0; i < cnt; i++)
            out[i] = erff(in[i]);
        return;
    case SG_OXU_SQRT:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sqrtf(in[i]);
        return;
    case SG_OXU_POW:
        if (a == 2.0f)
            for (size_t i = 0; i < cnt; i++)
                out[i] = in[i] * in[i];
        else
            for (size_t i = 0; i < cnt; i++)
                out[i] = powf(in[i], a);
        return;
    case SG_OXU_CLIP:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_clip(in[i], a, b);
        return;
    case SG_OXU_ELU:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_elu(in[i], a);
        return;
    case SG_OXU_SELU:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_selu(in[i], a, b);
        return;
    case SG_OXU_CELU:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_celu(in[i], a);
        return;
    case SG_OXU_SOFTPLUS:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_softplus(in[i]);
        return;
    case SG_OXU_SOFTSIGN:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_softsign(in[i]);
        return;
    case SG_OXU_HARD_SIGMOID:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_hard_sigmoid(in[i], a, b);
        return;
    case SG_OXU_HARD_SWISH:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_hard_swish(in[i]);
        return;
    case SG_OXU_ABS:
        for (size_t i = 0; i < cnt; i++)
            out[i] = fabsf(in[i]);
        return;
    case SG_OXU_NEG:
        for (size_t i = 0; i < cnt; i++)
            out[i] = -in[i];
        return;
    case SG_OXU_EXP:
        for (size_t i = 0; i < cnt; i++)
            out[i] = expf(in[i]);
        return;
    case SG_OXU_LOG:
        for (size_t i = 0; i < cnt; i++)
            out[i] = logf(in[i]);
        return;
    case SG_OXU_RECIPROCAL:
        for (size_t i = 0; i < cnt; i++)
            out[i] = 1.0f / in[i];
        return;
    case SG_OXU_NOT:
        for (size_t i = 0; i < cnt; i++)
            out[i] = in[i] == 0 ? 1.0f : 0.0f;
        return;
    case SG_OXU_TRUNC:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_cast_trunc(in[i], a);
        return;
    case SG_OXU_FLOOR:
        for (size_t i = 0; i < cnt; i++)
            out[i] = floorf(in[i]);
        return;
    case SG_OXU_CEIL:
        for (size_t i = 0; i < cnt; i++)
            out[i] = ceilf(in[i]);
        return;
    case SG_OXU_ROUND: /* rintf in the default rounding mode: half to even */
        for (size_t i = 0; i < cnt; i++)
            out[i] = rintf(in[i]);
        return;
    case SG_OXU_SIN:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sinf(in[i]);
        return;
    case SG_OXU_COS:
        for (size_t i = 0; i < cnt; i++)
            out[i] = cosf(in[i]);
        return;
    case SG_OXU_TAN:
        for (size_t i = 0; i < cnt; i++)
            out[i] = tanf(in[i]);
        return;
    case SG_OXU_ASIN:
        for (size_t i = 0; i < cnt; i++)
            out[i] = asinf(in[i]);
        return;
    case SG_OXU_ACOS:
        for (size_t i = 0; i < cnt; i++)
            out[i] = acosf(in[i]);
        return;
    case SG_OXU_ATAN:
        for (size_t i = 0; i < cnt; i++)
            out[i] = atanf(in[i]);
        return;
    case SG_OXU_SINH:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sinhf(in[i]);
        return;
    case SG_OXU_COSH:
        for (size_t i = 0; i < cnt; i++)
            out[i] = coshf(in[i]);
        return;
    case SG_OXU_ASINH:
        for (size_t i = 0; i < cnt; i++)
            out[i] = asinhf(in[i]);
        return;
    case SG_OXU_ACOSH:
        for (size_t i = 0; i < cnt; i++)
            out[i] = acoshf(in[i]);
        return;
    case SG_OXU_ATANH:
        for (size_t i = 0; i < cnt; i++)
            out[i] = atanhf(in[i]);
        return;
    case SG_OXU_THRESHOLDED_RELU:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_thresholded_relu(in[i], a);
        return;
    case SG_OXU_SHRINK:
        for (size_t i = 0; i < cnt; i++)
            out[i] = sg_onnx_shrink(in[i], a, b);
        return;
    case SG_OXU_SIGN:
        for (size_t i = 0; i < cnt; i++)
            out[i] = in[i] > 0 ? 1.0f : in[i] < 0 ? -1.0f : in[i]; /* 0, -0 and NaN as they are */
        return;
    case SG_OXU_ISNAN:
        for (size_t i = 0; i < cnt; i++)
            out[i] = isnan(in[i]) ? 1.0f : 0.0f;
        return;
    case SG_OXU_ISINF:
        for (size_t i = 0; i < cnt; i++)
            out[i] = isinf(in[i]) && (in[i] < 0 ? a != 0 : b != 0) ? 1.0f : 0.0f;
        return;
    case SG_OXU_COPY:
        break;
    }
    if (out != in) memcpy(out, in, cnt * sizeof(float));
    if (act != SG_ACT_IDENTITY) k->bias_act(out, n, st->width, NULL, act);
}

/* One operand value at row r, column j. */
static inline float arg_at(const sg_onnx_arg *g, const float *base, int64_t r, int w, int j)
{
    switch (g->kind) {
    case SG_OXA_ROW:
        return base[r * w + j];
    case SG_OXA_COL:
        return base[r];
    default:
        return g->value[j];
    }
}

/* Operand g's values for row r: a pointer and its step along the row (0: one value per row,
   a column broadcast). */
static inline const float *arg_row(const sg_onnx_arg *g, const float *base, int64_t r, int w,
                                   int *step)
{
    switch (g->kind) {
    case SG_OXA_ROW:
        *step = 1;
        return base + r * w;
    case SG_OXA_COL:
        *step = 0;
        return base + r;
    default:
        *step = 1;
        return g->value;
    }
}

/* One loop per operator; contiguous operands (rows and constant rows, the common case) get
   a loop the compiler vectorizes, a column broadcast the strided one. Same arithmetic both
   ways, element by element. */
#define SG_OX_BINARY_LOOP(EXPR)                                                                    \
    do {                                                                                           \
        if (sa && sb) {                                                                            \
            for (int j = 0; j < w; j++) {                                                          \
                const float x = pa[j], y = pb[j];                                                  \
                o[j] = (EXPR);                                                                     \
            }                                                                                      \
        } else {                                                                                   \
            for (int j = 0; j < w; j++) {                                                          \
                const float x = pa[j * sa], y = pb[j * sb];                                        \
                o[j] = (EXPR);                                                                     \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static void run_binary(const sg_onnx_step *st, const float *A, const float *B, float *out,
                       int64_t n)
{
    const int w = st->width;
    for (int64_t r = 0; r < n; r++) {
        float *o = out + r * w;
        int sa, sb;
        const float *pa = arg_row(&st->a, A, r, w, &sa), *pb = arg_row(&st->bb, B, r, w, &sb);
        switch (st->binary) {
        case SG_OXB_ADD:
            SG_OX_BINARY_LOOP(x + y);
            break;
        case SG_OXB_SUB:
            SG_OX_BINARY_LOOP(x - y);
            break;
        case SG_OXB_MUL:
            SG_OX_BINARY_LOOP(x * y);
            break;
        case SG_OXB_DIV:
            SG_OX_BINARY_LOOP(x / y);
            break;
        case SG_OXB_POW:
            SG_OX_BINARY_LOOP(powf(x, y));
            break;
        case SG_OXB_PRELU:
            SG_OX_BINARY_LOOP(sg_onnx_prelu(x, y));
            break;
        case SG_OXB_MAX:
            SG_OX_BINARY_LOOP(sg_onnx_max(x, y));
            break;
        case SG_OXB_MIN:
            SG_OX_BINARY_LOOP(sg_onnx_min(x, y));
            break;
        case SG_OXB_MOD:
            SG_OX_BINARY_LOOP(sg_onnx_mod(x, y));
            break;
        case SG_OXB_FMOD:
            SG_OX_BINARY_LOOP(fmodf(x, y));
            break;
        case SG_OXB_EQ:
            SG_OX_BINARY_LOOP(x == y);
            break;
        case SG_OXB_GT:
            SG_OX_BINARY_LOOP(x > y);
            break;
        case SG_OXB_LT:
            SG_OX_BINARY_LOOP(x < y);
            break;
        case SG_OXB_GE:
            SG_OX_BINARY_LOOP(x >= y);
            break;
        case SG_OXB_LE:
            SG_OX_BINARY_LOOP(x <= y);
            break;
        }
    }
}
#undef SG_OX_BINARY_LOOP

static void run_rows(const sg_onnx_step *st, const float *in, float *out, int64_t n)
{
    const int w = st->width, wi = st->in_width;
    for (int64_t r = 0; r < n; r++) {
        const float *x = in + r * wi;
        float *o = out + r * w;
        switch (st->kind) {
        case SG_OX_AFFINE:
            for (int j = 0; j < w; j++)
                o[j] = x[j] * st->scale[j] + st->shift[j];
            break;
        case SG_OX_GELU:
            for (int j = 0; j < w; j++)
                o[j] = 0.5f * x[j] * (1.0f + gelu_erf(x[j] * 0.70710678118654752f));
            break;
        case SG_OX_MEAN:
            o[0] = sg_onnx_mean_row(x, wi);
            break;
        case SG_OX_REDUCE:
            o[0] = sg_onnx_reduce_row(st->reduce, x, wi);
            break;
        case SG_OX_GATHER:
            if (st->padded)
                for (int j = 0; j < w; j++)
                    o[j] = st->cols[j] >= 0 ? x[st->cols[j]] : st->pad_value;
            else
                for (int j = 0; j < w; j++)
                    o[j] = x[st->cols[j]];
            break;
        case SG_OX_FILL:
            memcpy(o, st->b, (size_t)w * sizeof(float));
            break;
        case SG_OX_ONEHOT: {
            const int depth = st->sel_len;
            for (int i = 0; i < wi; i++) {
                const float t = truncf(x[i]);
                for (int k = 0; k < depth; k++)
                    o[i * depth + k] =
                        t == (float)k || t == (float)(k - depth) ? st->beta : st->alpha;
            }
            break;
        }
        case SG_OX_TOPK:
            sg_onnx_topk_row(x, wi, w, st->topk_largest, o);
            if (!st->topk_indices)
                for (int j = 0; j < w; j++)
                    o[j] = x[(int)o[j]];
            break;
        case SG_OX_CUMSUM: {
            float acc = 0;
            for (int i = 0; i < w; i++) {
                const int j = st->cum_reverse ? w - 1 - i : i;
                if (st->cum_exclusive) {
                    o[j] = acc;
                    acc += x[j];
                } else {
                    acc += x[j];
                    o[j] = acc;
                }
            }
            break;
        }
        case SG_OX_NORMALIZE: {
            float norm = 0;
            if (st->reduce == SG_OXR_MAX) {
                norm = -FLT_MAX;
                for (int j = 0; j < w; j++)
                    norm = x[j] > norm ? x[j] : norm; /* a NaN never wins */
            } else {
                for (int j = 0; j < w; j++)
                    norm += st->reduce == SG_OXR_L1 ? fabsf(x[j]) : x[j] * x[j];
                if (st->reduce == SG_OXR_L2) norm = sqrtf(norm);
            }
            for (int j = 0; j < w; j++)
                o[j] = norm != 0 ? x[j] / norm : x[j];
            break;
        }
        case SG_OX_LAYERNORM: {
            /* mean and variance summed pairwise, as ReduceMean (a wide row's had drifted) */
            const float mean = sg_onnx_sum_plain(x, w, 0) / (float)w,
                        var = sg_onnx_sum_sqdev(x, w, mean) / (float)w;
            const float inv = 1.0f / sqrtf(var + st->eps);
            for (int j = 0; j < w; j++)
                o[j] = (x[j] - mean) * inv * st->scale[j] + st->shift[j];
            break;
        }
        case SG_OX_SOFTMAX:
        case SG_OX_LOGSOFTMAX: {
            /* the denominator summed pairwise, as the reductions: a long row's had drifted */
            float mx = x[0];
            for (int j = 1; j < w; j++)
                mx = x[j] > mx ? x[j] : mx;
            if (st->kind == SG_OX_SOFTMAX) {
                for (int j = 0; j < w; j++)
                    o[j] = expf(x[j] - mx);
                const float s = sg_onnx_sum_plain(o, w, 0);
                for (int j = 0; j < w; j++)
                    o[j] /= s;
            } else {
                const float ls = logf(sg_onnx_sum_exp(x, w, mx));
                for (int j = 0; j < w; j++)
                    o[j] = x[j] - mx - ls;
            }
            break;
        }
        default:
            break;
        }
    }
}

/* SG_OX_RNN over n rows (sg_onnx_step.kind's comment): per direction and time step, the
   recurrence product of the previous h for every row at once (one strided sgemm into the
   gates), then each row's gates. The gates' sigmoids and tanhs run on the kernel table's
   vector activations (bias_act: the dense layers' logistic and tanh), a whole gate at a time:
   libm's tanhf, one element at a time, had been a third of an LSTM's time. */
static void run_rnn(const sg_kernel_ops *k, const sg_onnx_step *st, float *xw, float *out,
                    const float *h0, const float *c0, int64_t n)
{
    const int T = st->mm_m, H = st->mm_k, D = st->mm_n, G = st->rnn_gru ? 3 : 4;
    const int64_t ldx = (int64_t)T * D * G * H, ldo = (int64_t)T * D * 2 * H;
    const float clip = st->rnn_clip;
    for (int d = 0; d < D; d++) {
        const bool back = D == 2 ? d == 1 : st->rnn_reverse;
        const float *R = st->W + (int64_t)d * H * G * H;
        for (int s = 0; s < T; s++) {
            const int t = back ? T - 1 - s : s, tp = back ? t + 1 : t - 1;
            float *x = xw + ((int64_t)t * D + d) * G * H, *o = out + ((int64_t)t * D + d) * 2 * H;
            /* the previous h (and c) of row r: at hp + r * ldh */
            const float *hp = s    ? out + ((int64_t)tp * D + d) * 2 * H
                              : h0 ? h0 + (int64_t)d * H
                                   : NULL;
            const float *cp = s ? hp + H : c0 ? c0 + (int64_t)d * H : NULL;
            const int64_t ldh = s ? ldo : st->a.kind == SG_OXA_ROW ? (int64_t)D * H : 0;
            const int64_t ldc = s ? ldo : st->bb.kind == SG_OXA_ROW ? (int64_t)D * H : 0;
            /* gates += h_prev @ R^T (all of LSTM's; GRU's z and r, and h apart with lbr) */
            const int first = st->rnn_gru ? 2 * H : G * H;
            if (hp && ldh)
                for (int64_t r0 = 0; r0 < n; r0 += INT_MAX / 2) {
                    const int m = (int)(n - r0 < INT_MAX / 2 ? n - r0 : INT_MAX / 2);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, first, H, 1.0f,
                                hp + r0 * ldh, (int)ldh, R, G * H, 1.0f, x + r0 * ldx, (int)ldx);
                    if (st->rnn_gru && st->rnn_lbr)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, H, H, 1.0f,
                                    hp + r0 * ldh, (int)ldh, R + 2 * H, G * H, 0.0f,
                                    o + r0 * ldo + H, (int)ldo);
                }
            for (int64_t r = 0; r < n; r++) {
                float *xr = x + r * ldx, *orow = o + r * ldo;
                const float *h = hp ? hp + r * ldh : NULL, *cc = cp ? cp + r * ldc : NULL;
                if (hp && !ldh) /* constant initial h, the same for every row */
                    for (int j = 0; j < first; j++)
                        for (int q = 0; q < H; q++)
                            xr[j] += h[q] * R[(int64_t)q * G * H + j];
                if (clip > 0)
                    for (int j = 0; j < first; j++)
                        xr[j] = fminf(fmaxf(xr[j], -clip), clip);
                if (!st->rnn_gru) { /* i, o, f: sigmoid; c: tanh */
                    k->bias_act(xr, 1, 3 * H, NULL, SG_ACT_LOGISTIC);
                    k->bias_act(xr + 3 * H, 1, H, NULL, SG_ACT_TANH);
                    for (int j = 0; j < H; j++) {
                        const float c = xr[2 * H + j] * (cc ? cc[j] : 0.0f) + xr[j] * xr[3 * H + j];
                        orow[H + j] = c;
                        orow[j] = c;
                    }
                    k->bias_act(orow, 1, H, NULL, SG_ACT_TANH);
                    for (int j = 0; j < H; j++)
                        orow[j] *= xr[H + j];
                    continue;
                }
                /* GRU: z, r (sigmoid, clipped above), then h */
                k->bias_act(xr, 1, 2 * H, NULL, SG_ACT_LOGISTIC);
                float *hh = orow + H; /* the h gate's recurrence part (scratch) */
                if (st->rnn_lbr) {
                    for (int j = 0; j < H; j++) {
                        float rec = (hp && ldh ? hh[j] : 0.0f) + st->shift[d * H + j];
                        if (hp && !ldh)
                            for (int q = 0; q < H; q++)
                                rec += h[q] * R[(int64_t)q * G * H + 2 * H + j];
                        hh[j] = rec;
                    }
                } else {
                    /* (r * h_prev) @ Rh^T, into the h gate */
                    for (int j = 0; j < H; j++)
                        hh[j] = h ? xr[H + j] * h[j] : 0.0f;
                    for (int q = 0; q < H && h; q++)
                        for (int j = 0; j < H; j++)
                            xr[2 * H + j] += hh[q] * R[(int64_t)q * G * H + 2 * H + j];
                }
                for (int j = 0; j < H; j++) {
                    float a = st->rnn_lbr ? xr[2 * H + j] + xr[H + j] * hh[j] : xr[2 * H + j];
                    if (clip > 0) a = fminf(fmaxf(a, -clip), clip);
                    orow[j] = a;
                }
                k->bias_act(orow, 1, H, NULL, SG_ACT_TANH);
                for (int j = 0; j < H; j++) {
                    const float z = xr[j];
                    orow[j] = (1.0f - z) * orow[j] + z * (h ? h[j] : 0.0f);
                }
            }
        }
    }
}

static void run_step(const sg_kernel_ops *k, const sg_onnx_step *st, const float *X,
                     const onnx_scratch *s, int64_t n, bool one)
{
    float *out = bufp(s, X, st->out);
    const float *in = bufp(s, X, st->in);
    /* A row of `groups` vectors is that many rows to the per-row kernels. */
    const int64_t vectors = n * sg_onnx_groups(st);
    switch (st->kind) {
    case SG_OX_GEMM:
        if (st->wgroups > 1) {
            /* Block q of W multiplies vectors q, q + wgroups, ...: one sgemm per block over
               those vectors, strided (in pieces that fit cblas's int). */
            const int G = st->wgroups, K = st->in_width, M = st->width;
            const int64_t per = vectors / G, step = INT_MAX / 2 / G;
            for (int64_t r = 0; r < per; r += step) {
                const int64_t m = per - r < step ? per - r : step;
                for (int q = 0; q < G; q++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, M, K, 1.0f,
                                in + (r * G + q) * K, G * K, st->W + (int64_t)q * K * M, M, 0.0f,
                                out + (r * G + q) * M, G * M);
            }
            k->bias_act(out, vectors, M, st->b, (sg_activation)st->act);
        } else if (one && vectors == 1) {
            k->matvec(in, st->W, st->b, st->in_width, st->width, out);
            if (st->act != SG_ACT_IDENTITY)
                k->bias_act(out, 1, st->width, NULL, (sg_activation)st->act);
        } else {
            /* (in pieces that fit cblas's int, which a batch of grouped rows may pass) */
            for (int64_t r = 0; r < vectors; r += INT_MAX / 2) {
                const int64_t m = vectors - r < INT_MAX / 2 ? vectors - r : INT_MAX / 2;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, st->width,
                            st->in_width, 1.0f, in + r * st->in_width, st->in_width, st->W,
                            st->width, 0.0f, out + r * st->width, st->width);
            }
            k->bias_act(out, vectors, st->width, st->b, (sg_activation)st->act);
        }
        break;
    case SG_OX_UNARY:
        run_unary(k, st, in, out, n);
        break;
    case SG_OX_BINARY:
        run_binary(st, st->a.kind == SG_OXA_CONST ? NULL : bufp(s, X, st->a.buf),
                   st->bb.kind == SG_OXA_CONST ? NULL : bufp(s, X, st->bb.buf), out, n);
        break;
    case SG_OX_WHERE: {
        const float *C = st->cc.kind == SG_OXA_CONST ? NULL : bufp(s, X, st->cc.buf),
                    *A = st->a.kind == SG_OXA_CONST ? NULL : bufp(s, X, st->a.buf),
                    *B = st->bb.kind == SG_OXA_CONST ? NULL : bufp(s, X, st->bb.buf);
        const int w = st->width;
        for (int64_t r = 0; r < n; r++)
            for (int j = 0; j < w; j++)
                out[r * w + j] = arg_at(&st->cc, C, r, w, j) != 0 ? arg_at(&st->a, A, r, w, j)
                                                                  : arg_at(&st->bb, B, r, w, j);
        break;
    }
    case SG_OX_MATMUL_ROWS: {
        /* Each product accumulated left to right in float, as one row computes it alone: the
           loop runs over t outside j, so a row of the result is added to as a vector, each of
           its elements still in the order t = 0, 1, ... (no FMA in this file's flags). */
        const float *A = bufp(s, X, st->a.buf), *B = bufp(s, X, st->bb.buf);
        const int m = st->mm_m, kk = st->mm_k, nn = st->mm_n, g = st->width / (m * nn);
        const int64_t wa = (int64_t)g * m * kk, wb = (int64_t)g * kk * nn;
        for (int64_t r = 0; r < n; r++)
            for (int q = 0; q < g; q++) {
                const float *a = A + r * wa + (int64_t)q * m * kk,
                            *b = B + r * wb + (int64_t)q * kk * nn;
                float *o = out + r * st->width + (int64_t)q * m * nn;
                for (int i = 0; i < m; i++) {
                    float *oi = o + (int64_t)i * nn;
                    for (int j = 0; j < nn; j++)
                        oi[j] = 0;
                    for (int t = 0; t < kk; t++) {
                        const float av = a[(int64_t)i * kk + t], *bt = b + (int64_t)t * nn;
                        for (int j = 0; j < nn; j++)
                            oi[j] += av * bt[j];
                    }
                }
            }
        break;
    }
    case SG_OX_RNN: {
        /* the gates accumulate in the input projections, a buffer only this step reads */
        const float *h0 = st->a.kind == SG_OXA_ROW ? bufp(s, X, st->a.buf) : st->a.value,
                    *c0 = st->bb.kind == SG_OXA_ROW ? bufp(s, X, st->bb.buf) : st->bb.value;
        run_rnn(k, st, (float *)in, out, h0, c0, n);
        break;
    }
    case SG_OX_GATHER_ROWS: {
        const float *A = bufp(s, X, st->a.buf), *Ix = bufp(s, X, st->bb.buf);
        const int w = st->width, wi = st->in_width, len = st->sel_len;
        for (int64_t r = 0; r < n; r++) {
            const float *d = A + r * wi, *ix = Ix + r * w;
            float *o = out + r * w;
            for (int e = 0; e < w; e++) {
                const float q = ix[e];
                if (!(q >= (float)-len && q < (float)len)) { /* out of the axis, or NaN */
                    o[e] = NAN;
                    continue;
                }
                const int at = (int)q < 0 ? (int)q + len : (int)q;
                o[e] = d[st->cols[e] + at * st->sel_stride];
            }
        }
        break;
    }
    case SG_OX_EMBED: {
        const int t = st->in_width, e = st->width / st->in_width, v = st->emb_rows;
        for (int64_t r = 0; r < n; r++) {
            const float *x = in + r * t;
            float *o = out + r * st->width;
            for (int q = 0; q < t; q++, o += e) {
                const float ix = x[q];
                if (!(ix >= (float)-v && ix < (float)v)) { /* out of the table, or NaN */
                    for (int j = 0; j < e; j++)
                        o[j] = NAN;
                    continue;
                }
                const int64_t at = (int64_t)ix < 0 ? (int64_t)ix + v : (int64_t)ix;
                memcpy(o, st->W + at * e, (size_t)e * sizeof(float));
            }
        }
        break;
    }
    case SG_OX_TREES: {
        /* the margins go to the first n * groups floats of out (then spread out for the
           two-class forms, from the last row back so that nothing is read after written) */
        const sg_tree_ensemble *e = st->trees;
        const int G = e->n_groups, w = st->width;
        memset(out, 0, (size_t)n * (size_t)G * sizeof(float));
        if (one && n == 1)
            k->tree_margins_one(e, in, out);
        else
            k->tree_margins(e, in, n, out);
        for (int64_t r = n - 1; r >= 0; r--) {
            if (st->tree_binary) {
                float m = out[r];
                if (st->tree_div > 0) m /= st->tree_div;
                m += st->shift[0];
                if (st->tree_binary == 1) {
                    out[2 * r] = 1.0f - m;
                    out[2 * r + 1] = m;
                } else { /* ONNX Runtime's logistic: of |m|, then the complement below 0 */
                    const float v = 1.0f / (1.0f + expf(-fabsf(m)));
                    out[2 * r] = m < 0 ? v : 1.0f - v;
                    out[2 * r + 1] = m < 0 ? 1.0f - v : v;
                }
                continue;
            }
            for (int g = 0; g < w; g++) {
                float m = out[r * w + g];
                if (st->tree_div > 0) m /= st->tree_div;
                out[r * w + g] = m + st->shift[g];
            }
        }
        break;
    }
    case SG_OX_CONCAT: {
        int off = 0;
        for (int q = 0; q < st->n_parts; q++) {
            const float *p = bufp(s, X, st->parts[q]);
            const int pw = st->part_width[q];
            for (int64_t r = 0; r < n; r++)
                memcpy(out + r * st->width + off, p + r * pw, (size_t)pw * sizeof(float));
            off += pw;
        }
        break;
    }
    default:
        run_rows(st, in, out, vectors);
    }
}

static void epilogue(const sg_model *m, const sg_kernel_ops *k, const float *X,
                     const onnx_scratch *s, int64_t n, float *out)
{
    const sg_onnx_plan *p = m->onnx;
    const float *z = bufp(s, X, p->out_buf);
    const int w = p->out_width;
    switch (p->epi) {
    case SG_ONNX_EPI_LINK:
        sg_bias_link_checked(k, z, n, w, NULL, (sg_link)p->link, out);
        break;
    case SG_ONNX_EPI_PROBA1:
        for (int64_t r = 0; r < n; r++) {
            out[2 * r] = 1.0f - z[r];
            out[2 * r + 1] = z[r];
        }
        break;
    case SG_ONNX_EPI_COPY:
        memcpy(out, z, (size_t)n * (size_t)w * sizeof(float));
        break;
    }
}

static void onnx_predict_batch(const sg_model *m, const sg_kernel_ops *k, const float *X, int64_t n,
                               float *out, void *v)
{
    onnx_scratch *s = v;
    SG_ASSERT(n >= 0 && n <= s->max_batch);
    if (n == 0) return;
    if (s->dense) {
        sg_forward_batch(m, k, X, n, out, s->dense);
        return;
    }
    const sg_onnx_plan *p = m->onnx;
    const int64_t d = m->n_features, w = sg_model_output_width(m);
    for (int64_t r0 = 0; r0 < n; r0 += s->rows) {
        const int64_t rows = n - r0 < s->rows ? n - r0 : s->rows;
        for (int i = 0; i < p->n_steps; i++)
            run_step(k, &p->steps[i], X + r0 * d, s, rows, false);
        epilogue(m, k, X + r0 * d, s, rows, out + r0 * w);
    }
}

static void onnx_predict_one(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                             void *v, sg_forward_probe probe, void *ctx)
{
    onnx_scratch *s = v;
    if (s->dense) {
        sg_forward_one_probed(m, k, x, out, s->dense, probe, ctx);
        return;
    }
    const sg_onnx_plan *p = m->onnx;
    for (int i = 0; i < p->n_steps; i++) {
        run_step(k, &p->steps[i], x, s, 1, true);
        if (i == p->n_steps - 1) epilogue(m, k, x, s, 1, out);
        if (probe) probe(ctx, i);
    }
    if (p->n_steps == 0) {
        epilogue(m, k, x, s, 1, out);
        if (probe) probe(ctx, 0);
    }
}

static void onnx_cost(const sg_model *m, sg_model_cost *c)
{
    const sg_onnx_plan *p = m->onnx;
    double flops = 0;
    if (p->dense)
        for (int l = 0; l < m->n_layers; l++)
            flops += 2.0 * m->layers[l].n_in * m->layers[l].n_out;
    else
        flops = p->flops_per_row;
    c->flops_per_row = flops;
    c->bytes_per_row = 4.0 * m->n_features;
    c->param_bytes = m->param_bytes;
}

/* Dense: stage 0 is the input copy, then one per layer (as sg_forward_one_probed reports);
   a step plan: one per fused step, named after its ONNX nodes. */
static int onnx_stage_names(const sg_model *m, char names[][SG_MODEL_STAGE_NAME], int max)
{
    const sg_onnx_plan *p = m->onnx;
    int n = p->n_stages < max ? p->n_stages : max;
    for (int i = 0; i < n; i++)
        snprintf(names[i], SG_MODEL_STAGE_NAME, "%s", p->stage[i]);
    return n;
}

/* A pure MLP chain runs on the dense layers' kernels; a step plan always on sgemm. */
static void onnx_batch_paths(const sg_model *m, const void *v, int64_t n, char *buf, size_t len)
{
    const onnx_scratch *s = v;
    if (s->dense)
        sg_forward_scratch_paths(s->dense, m, n, buf, len);
    else
        snprintf(buf, len, "step plan (sgemm for its GEMMs)");
}

const sg_model_ops sg_model_ops_onnx = {
    .kind = "onnx",
    .probe = onnx_probe,
    .load = onnx_load,
    /* The digest covers the .onnx bytes and each external data file (docs/formats.md). */
    .own_digest = true,
    .describe = onnx_describe,
    .scratch_new = onnx_scratch_new,
    .scratch_free = onnx_scratch_free,
    .predict_batch = onnx_predict_batch,
    .predict_one = onnx_predict_one,
    .cost = onnx_cost,
    .stage_names = onnx_stage_names,
    .batch_paths = onnx_batch_paths,
};
