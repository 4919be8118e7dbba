/* ONNX layer nodes (Gemm, MatMul, BatchNormalization, LayerNormalization, Softmax,
   LogSoftmax, the row reductions, Slice) compiled into plan steps; the element-wise and shape-only
   nodes are in onnx_compile.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* A per-row input of rank 1 (a plain feature vector per row), or of rank 1 or more where
   `any_rank`: the layer then runs over the row's last axis, once per vector along it. */
static sg_status row_input_ranked(ox_ctx *c, size_t k, const char *what, bool any_rank, sg_err *err,
                                  int *x)
{
    int rc = ox_need_in(c, k, err, x);
    if (rc) return rc;
    if (c->vals[*x].is_const)
        return ox_node_err(c, err, SG_EINPUT,
                           "%s's input %zu ('%.100s') is a constant, but it must be the per-row "
                           "input (the rows times constant weights is what is supported)",
                           what, k, c->vals[*x].name);
    if (any_rank ? c->vals[*x].rank < 1 : c->vals[*x].rank != 1)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match: %s needs rows of rank 1%s, '%.100s' has rank %d",
                           what, any_rank ? " or more" : "", c->vals[*x].name, c->vals[*x].rank);
    return SG_OK;
}

static sg_status row_input(ox_ctx *c, size_t k, const char *what, sg_err *err, int *x)
{
    return row_input_ranked(c, k, what, false, err, x);
}

/* The vectors of `inner` values a row of value v holds, for an operator over its trailing
   axes; 0 (after an error) when inner does not divide the row or the count is too large. */
static int row_groups(ox_ctx *c, const ox_value *v, int64_t inner, sg_err *err)
{
    if (inner < 1 || v->count % inner != 0 || v->count / inner > OX_MAX_WIDTH) {
        ox_node_err(c, err, SG_EINPUT, "rows of %lld values do not split into vectors of %lld",
                    (long long)v->count, (long long)inner);
        return 0;
    }
    return (int)(v->count / inner);
}

/* An operator over the axes from `axis` on (1 .. rank of [batch, row dims...] - 1): each
   row is row_groups' vectors of *w values, the product of those axes. */
static int axis_groups(ox_ctx *c, const ox_value *v, int64_t axis, int64_t *w, sg_err *err)
{
    *w = 1;
    for (int64_t i = axis - 1; i < v->rank; i++)
        *w *= v->dims[i];
    return row_groups(c, v, *w, err);
}

static sg_status const_input(ox_ctx *c, size_t k, const char *what, sg_err *err, const ox_value **v)
{
    int i, rc = ox_need_in(c, k, err, &i);
    if (rc) return rc;
    *v = &c->vals[i];
    if (!(*v)->is_const || (*v)->dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "%s must be a constant float tensor", what);
    return SG_OK;
}

sg_status ox_op_gemm(ox_ctx *c, bool matmul, sg_err *err)
{
    int x, rc;
    const ox_value *B, *C = NULL;
    /* MatMul on rows of rank 2 or more ([batch, ..., k] @ [k, m], nn.Linear applied to a
       [batch, tokens, k] input) multiplies each vector along the last axis: one GEMM over
       batch x the vectors a row holds. Gemm's input is [batch, k] by definition. */
    if ((rc = row_input_ranked(c, 0, matmul ? "MatMul" : "Gemm", matmul, err, &x))) return rc;
    if ((rc = const_input(c, 1, "the weight (input 1)", err, &B))) return rc;
    if (!matmul && ox_in(c, 2) >= 0 && (rc = const_input(c, 2, "the bias (input 2)", err, &C)))
        return rc;
    const ox_value *vx = &c->vals[x];
    const int64_t k = vx->dims[vx->rank - 1];
    bool transB = !matmul && ox_attr_i(c, "transB", 0);
    float alpha = matmul ? 1.0f : ox_attr_f(c, "alpha", 1.0f);
    float beta = matmul ? 1.0f : ox_attr_f(c, "beta", 1.0f);
    if (!matmul && ox_attr_i(c, "transA", 0))
        return ox_node_err(c, err, SG_EINPUT, "transA=1 on the batch input is not supported");
    int64_t rows = B->rank == 2 ? B->dims[transB ? 1 : 0] : B->rank == 1 ? B->dims[0] : -1;
    int64_t m = B->rank == 2 ? B->dims[transB ? 0 : 1] : 1;
    if (B->rank < 1 || B->rank > 2 || (!matmul && B->rank != 2))
        return ox_node_err(c, err, SG_EINPUT, "weight '%.100s' has rank %d, expected 2", B->name,
                           B->rank);
    if (rows != k)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: weight '%.100s' has %lld input rows "
                           "but its input has %lld columns",
                           B->name, (long long)rows, (long long)k);
    if (m < 1 || m > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "%lld outputs", (long long)m);
    if (C && C->count != 1 && C->count != m)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: bias '%.100s' has %lld values for %lld "
                           "outputs",
                           C->name, (long long)C->count, (long long)m);
    if (C && C->rank == 2 && C->dims[0] != 1)
        return ox_node_err(c, err, SG_EINPUT,
                           "bias '%.100s' is per row; only a row vector is "
                           "supported",
                           C->name);
    sg_onnx_step *s = ox_step_new(c, SG_OX_GEMM, err);
    if (!s) return SG_ENOMEM;
    s->W = sg_alloc_aligned((size_t)k * (size_t)m * sizeof(float));
    s->b = sg_alloc_aligned((size_t)m * sizeof(float));
    if (!s->W || !s->b) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < m; j++)
            s->W[i * m + j] = alpha * (transB ? B->f[j * k + i] : B->f[i * m + j]);
    for (int64_t j = 0; j < m; j++)
        s->b[j] = C ? beta * C->f[C->count == 1 ? 0 : j] : 0.0f;
    const int groups = row_groups(c, vx, k, err);
    if (!groups) return SG_EINPUT;
    s->in = vx->data;
    s->in_width = (int)k;
    s->width = (int)m;
    s->groups = groups;
    s->act = SG_ACT_IDENTITY;
    /* The row's leading axes, then m (a weight vector drops the last axis, as numpy's). */
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, vx->dims, (size_t)vx->rank * sizeof dims[0]);
    dims[vx->rank - 1] = m;
    int v;
    return ox_dyn_out(c, B->rank == 2 ? vx->rank : vx->rank - 1, dims, err, &v);
}

sg_status ox_op_batchnorm(ox_ctx *c, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    /* More than one output is BatchNormalization's training mode (Y from the batch's own
       statistics), read or not: refused, unlike an optional output elsewhere. */
    for (size_t k = 1; k < c->node->n_output; k++)
        if (c->node->output[k] && c->node->output[k][0])
            return ox_node_err(c, err, SG_EINPUT,
                               "output %zu ('%.100s'): more than one output is training mode, "
                               "which is not supported (inference only)",
                               k, c->node->output[k]);
    if (ox_attr_i(c, "training_mode", 0))
        return ox_node_err(c, err, SG_EINPUT, "training_mode=1 is not supported (inference only)");
    const ox_value *vx = &c->vals[x], *p[4];
    static const char *const names[] = {"scale", "B", "mean", "var"};
    for (int i = 0; i < 4; i++)
        if ((rc = const_input(c, (size_t)i + 1, names[i], err, &p[i]))) return rc;
    if (vx->is_const) return ox_node_err(c, err, SG_EINPUT, "constant input is not supported");
    if (vx->rank < 1) return ox_node_err(c, err, SG_EINPUT, "input has no channel dimension");
    int64_t ch = vx->dims[0], inner = vx->count / ch;
    for (int i = 0; i < 4; i++)
        if (p[i]->count != ch)
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match the data: %s has %lld values for %lld "
                               "channels",
                               names[i], (long long)p[i]->count, (long long)ch);
    float eps = ox_attr_f(c, "epsilon", 1e-5f);
    sg_onnx_step *s = ox_step_new(c, SG_OX_AFFINE, err);
    if (!s) return SG_ENOMEM;
    s->scale = sg_alloc_aligned((size_t)vx->count * sizeof(float));
    s->shift = sg_alloc_aligned((size_t)vx->count * sizeof(float));
    if (!s->scale || !s->shift) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t j = 0; j < vx->count; j++) {
        int64_t q = j / inner;
        double sc = p[0]->f[q] / sqrt((double)p[3]->f[q] + eps);
        s->scale[j] = (float)sc;
        s->shift[j] = (float)(p[1]->f[q] - p[2]->f[q] * sc);
    }
    s->in = vx->data;
    s->in_width = s->width = (int)vx->count;
    int v;
    return ox_dyn_out(c, vx->rank, vx->dims, err, &v);
}

sg_status ox_op_layernorm(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if ((rc = row_input_ranked(c, 0, "LayerNormalization", true, err, &x))) return rc;
    if ((rc = ox_only_first_output(c, err))) return rc;
    /* Normalised over the axes from `axis` on, of the whole tensor [batch, row dims...]: the
       batch axis (0) is not supported, any later one is (each vector of the trailing axes
       normalised alone). */
    const ox_value *vx = &c->vals[x];
    int64_t axis = ox_attr_i(c, "axis", -1), full = vx->rank + 1;
    if (axis < 0) axis += full;
    if (axis < 1 || axis >= full)
        return ox_node_err(c, err, SG_EINPUT,
                           "axis %lld: only axes after the batch's are supported (rows of rank %d)",
                           (long long)ox_attr_i(c, "axis", -1), vx->rank);
    int64_t w;
    const int groups = axis_groups(c, vx, axis, &w, err);
    if (!groups) return SG_EINPUT;
    const ox_value *g, *b = NULL;
    if ((rc = const_input(c, 1, "Scale", err, &g))) return rc;
    if (ox_in(c, 2) >= 0 && (rc = const_input(c, 2, "B", err, &b))) return rc;
    if (g->count != w || (b && b->count != w))
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: Scale/B hold %lld/%lld values for "
                           "vectors of %lld",
                           (long long)g->count, (long long)(b ? b->count : w), (long long)w);
    sg_onnx_step *s = ox_step_new(c, SG_OX_LAYERNORM, err);
    if (!s) return SG_ENOMEM;
    s->scale = sg_alloc_aligned((size_t)w * sizeof(float));
    s->shift = sg_alloc_aligned((size_t)w * sizeof(float));
    if (!s->scale || !s->shift) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    memcpy(s->scale, g->f, (size_t)w * sizeof(float));
    for (int64_t j = 0; j < w; j++)
        s->shift[j] = b ? b->f[j] : 0.0f;
    s->eps = ox_attr_f(c, "epsilon", 1e-5f);
    s->in = vx->data;
    s->in_width = s->width = (int)w;
    s->groups = groups;
    int v;
    return ox_dyn_out(c, vx->rank, vx->dims, err, &v);
}

sg_status ox_op_softmax(ox_ctx *c, bool log, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    const ox_value *vx = &c->vals[x];
    if (vx->is_const) return ox_node_err(c, err, SG_EINPUT, "constant input is not supported");
    int r = vx->rank + 1;
    int64_t axis = ox_attr_i(c, "axis", c->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    /* Before opset 13 the input is flattened at axis: each vector of the axes from it on is
       one softmax (axis 1: the whole row). From 13 on it is that one axis: supported when it
       is the last (each vector along it alone). The batch axis is not supported. */
    if (axis < 1 || axis >= r || (c->opset >= 13 && axis != r - 1))
        return ox_node_err(c, err, SG_EINPUT,
                           "axis %lld over rows of rank %d: only the %s is supported",
                           (long long)ox_attr_i(c, "axis", c->opset >= 13 ? -1 : 1), vx->rank,
                           c->opset >= 13 ? "last axis" : "axes after the batch's");
    int64_t w;
    const int groups = axis_groups(c, vx, axis, &w, err);
    if (!groups) return SG_EINPUT;
    sg_onnx_step *s = ox_step_new(c, log ? SG_OX_LOGSOFTMAX : SG_OX_SOFTMAX, err);
    if (!s) return SG_ENOMEM;
    s->in = vx->data;
    s->in_width = s->width = (int)w;
    s->groups = groups;
    int v;
    return ox_dyn_out(c, vx->rank, vx->dims, err, &v);
}

/* A reduction over the last axis of rank-1 rows (the axes given as the attribute, or as the
   constant second input of ReduceSum from opset 13); kind -1 is the mean. */
static sg_status reduce_row(ox_ctx *c, int kind, sg_err *err)
{
    int x, rc;
    if ((rc = row_input_ranked(c, 0, c->node->op_type, true, err, &x))) return rc;
    int64_t axes[OX_MAX_RANK];
    int n;
    if ((rc = ox_get_axes(c, 1, axes, &n, err))) return rc;
    /* No axes with noop_with_empty_axes (ReduceSum from opset 13) reduces nothing. */
    if (n == 0 && ox_attr_i(c, "noop_with_empty_axes", 0) != 0) return ox_op_identity(c, err);
    const ox_value *vx = &c->vals[x];
    const int64_t last = vx->rank; /* the last axis of [batch, row dims...] */
    if (n != 1 || (axes[0] != last && axes[0] != -1))
        return ox_node_err(c, err, SG_EINPUT,
                           n == 0 ? "no axes: reducing over the batch is not supported"
                                  : "only the last axis is supported");
    bool keep = ox_attr_i(c, "keepdims", 1) != 0;
    const int64_t w = vx->dims[vx->rank - 1];
    const int groups = row_groups(c, vx, w, err);
    if (!groups) return SG_EINPUT;
    sg_onnx_step *s = ox_step_new(c, kind < 0 ? SG_OX_MEAN : SG_OX_REDUCE, err);
    if (!s) return SG_ENOMEM;
    if (kind >= 0) s->reduce = (sg_onnx_reduce)kind;
    s->in = vx->data;
    s->in_width = (int)w;
    s->width = 1;
    s->groups = groups;
    /* The row's leading axes, then 1 (keepdims) or nothing. */
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, vx->dims, (size_t)vx->rank * sizeof dims[0]);
    dims[vx->rank - 1] = 1;
    int v;
    return ox_dyn_out(c, keep ? vx->rank : vx->rank - 1, dims, err, &v);
}

sg_status ox_op_reduce_mean(ox_ctx *c, sg_err *err)
{
    return reduce_row(c, -1, err);
}

sg_status ox_op_reduce(ox_ctx *c, int kind, sg_err *err)
{
    return reduce_row(c, kind, err);
}

/* Slice's starts, ends, axes or steps: attribute `name` below opset 10, constant int64 input
   k from 10 on; *n = -1 when absent. */
static sg_status slice_arg(ox_ctx *c, const char *name, size_t k, int64_t *out, int *n, sg_err *err)
{
    *n = -1;
    const int64_t *src = NULL;
    size_t cnt = 0;
    if (c->opset < 10) {
        const Onnx__AttributeProto *a = ox_attr(c, name);
        if (!a) return SG_OK;
        src = a->ints;
        cnt = a->n_ints;
    } else {
        if (ox_in(c, k) < 0) return SG_OK;
        const ox_value *v = &c->vals[ox_in(c, k)];
        if (!v->is_const || v->dtype != OX_INT64)
            return ox_node_err(c, err, SG_EINPUT, "%s must be a constant int64 tensor", name);
        src = v->i;
        cnt = (size_t)v->count;
    }
    if (cnt > 2)
        return ox_node_err(c, err, SG_EINPUT, "%s has %zu entries; rows of rank 1 have 2 axes",
                           name, cnt);
    if (cnt) memcpy(out, src, cnt * sizeof *out);
    *n = (int)cnt;
    return SG_OK;
}

/* ONNX's clamping of a Slice bound on an axis of d elements. */
static int64_t slice_bound(int64_t v, int64_t d, int64_t step, bool end)
{
    if (v < 0) v = v < -d ? -1 : v + d; /* no overflow: d is small */
    if (v < 0) return step > 0 || !end ? 0 : -1;
    if (step > 0) return v > d ? d : v;
    return v > d - 1 ? d - 1 : v;
}

/*
 * Slice over the columns of rank-1 rows: the selected columns (starts, ends, steps as ONNX
 * clamps them; any step but 0) become one gather step. A slice of the batch axis must keep
 * every row (start 0 or earlier, end at or past the last, step 1).
 */
sg_status ox_op_slice(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if ((rc = row_input(c, 0, "Slice", err, &x))) return rc;
    int64_t starts[2], ends[2], axes[2] = {0, 1}, steps[2] = {1, 1};
    int ns, ne, na, nst;
    if ((rc = slice_arg(c, "starts", 1, starts, &ns, err)) ||
        (rc = slice_arg(c, "ends", 2, ends, &ne, err)) ||
        (rc = slice_arg(c, "axes", 3, axes, &na, err)) ||
        (rc = slice_arg(c, "steps", 4, steps, &nst, err)))
        return rc;
    if (ns < 1 || ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return ox_node_err(c, err, SG_EINPUT,
                           "starts, ends, axes and steps must have the same number of entries");
    if (na < 0 && ns == 1) axes[0] = 0; /* the default axes are 0, 1, ... */
    const int64_t d = c->vals[x].count;
    int64_t lo = 0, hi = d, step = 1;
    bool seen[2] = {false, false};
    for (int k = 0; k < ns; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + 2 : axes[k];
        if (a < 0 || a > 1 || seen[a])
            return ox_node_err(c, err, SG_EINPUT, "axis %lld is out of range or repeated",
                               (long long)axes[k]);
        seen[a] = true;
        if (steps[k] == 0) return ox_node_err(c, err, SG_EINPUT, "a step is 0");
        if (a == 0) {
            if (steps[k] != 1 || starts[k] > 0 || (starts[k] < 0 && starts[k] > INT32_MIN) ||
                ends[k] < INT32_MAX)
                return ox_node_err(c, err, SG_EINPUT,
                                   "slicing the batch axis is not supported (only all rows)");
            continue;
        }
        step = steps[k];
        lo = slice_bound(starts[k], d, step, false);
        hi = slice_bound(ends[k], d, step, true);
    }
    int64_t m = 0;
    /* ceil((hi - lo) / step) without overflow: a step near +-2^63 is legal (it takes one
       column), and step - 1 or -step overflowed int64. lo and hi are within [-1, d]. */
    if (step > 0 && hi > lo) m = 1 + (hi - lo - 1) / step;
    if (step < 0 && lo > hi) m = 1 + (int64_t)((uint64_t)(lo - hi - 1) / (0 - (uint64_t)step));
    if (m < 1) return ox_node_err(c, err, SG_EINPUT, "the slice selects no column");
    sg_onnx_step *s = ox_step_new(c, SG_OX_GATHER, err);
    if (!s) return SG_ENOMEM;
    s->cols = malloc((size_t)m * sizeof *s->cols);
    if (!s->cols) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t j = 0; j < m; j++)
        s->cols[j] = (int)(lo + j * step);
    s->in = c->vals[x].data;
    s->in_width = (int)d;
    s->width = (int)m;
    int v;
    return ox_dyn_out(c, 1, &m, err, &v);
}
