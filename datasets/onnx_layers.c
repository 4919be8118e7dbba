/* ONNX layer nodes (Gemm, MatMul, BatchNormalization, LayerNormalization, Softmax,
   LogSoftmax, the row reductions, Slice) compiled into plan steps; the element-wise and shape-only
   nodes are in onnx_compile.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* A per-row input of rank 1 (a plain feature vector per row), required by the layer ops. */
static sg_status row_input(ox_ctx *c, size_t k, const char *what, sg_err *err, int *x)
{
    int rc = ox_need_in(c, k, err, x);
    if (rc) return rc;
    if (c->vals[*x].is_const)
        return ox_node_err(c, err, SG_EINPUT,
                           "%s's input %zu ('%.100s') is a constant, but it must be the per-row "
                           "input (the rows times constant weights is what is supported)",
                           what, k, c->vals[*x].name);
    if (c->vals[*x].rank != 1)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match: %s needs rows of rank 1, '%.100s' has rank %d",
                           what, c->vals[*x].name, c->vals[*x].rank);
    return SG_OK;
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
    if ((rc = row_input(c, 0, matmul ? "MatMul" : "Gemm", err, &x))) return rc;
    if ((rc = const_input(c, 1, "the weight (input 1)", err, &B))) return rc;
    if (!matmul && ox_in(c, 2) >= 0 && (rc = const_input(c, 2, "the bias (input 2)", err, &C)))
        return rc;
    const int64_t k = c->vals[x].count;
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
    s->in = c->vals[x].data;
    s->in_width = (int)k;
    s->width = (int)m;
    s->act = SG_ACT_IDENTITY;
    int v;
    return ox_dyn_out(c, B->rank == 2 ? 1 : 0, &m, err, &v);
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
    if ((rc = row_input(c, 0, "LayerNormalization", err, &x))) return rc;
    if ((rc = ox_only_first_output(c, err))) return rc;
    int64_t axis = ox_attr_i(c, "axis", -1);
    if (axis != -1 && axis != 1)
        return ox_node_err(c, err, SG_EINPUT, "axis %lld: only the last axis is supported",
                           (long long)axis);
    const ox_value *g, *b = NULL;
    if ((rc = const_input(c, 1, "Scale", err, &g))) return rc;
    if (ox_in(c, 2) >= 0 && (rc = const_input(c, 2, "B", err, &b))) return rc;
    const int64_t w = c->vals[x].count;
    if (g->count != w || (b && b->count != w))
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: Scale/B hold %lld/%lld values for rows "
                           "of %lld",
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
    s->in = c->vals[x].data;
    s->in_width = s->width = (int)w;
    int v;
    return ox_dyn_out(c, 1, &w, err, &v);
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
    /* Before opset 13 the input is flattened at axis: axis 1 means the whole row. From 13
       on it is one axis, the whole row only when the row has rank 1. */
    bool whole_row = c->opset < 13 ? axis == 1 : (axis == 1 && vx->rank == 1);
    if (!whole_row)
        return ox_node_err(c, err, SG_EINPUT,
                           "axis %lld over rows of rank %d: only the whole row is supported",
                           (long long)axis, vx->rank);
    sg_onnx_step *s = ox_step_new(c, log ? SG_OX_LOGSOFTMAX : SG_OX_SOFTMAX, err);
    if (!s) return SG_ENOMEM;
    s->in = vx->data;
    s->in_width = s->width = (int)vx->count;
    int v;
    return ox_dyn_out(c, vx->rank, vx->dims, err, &v);
}

/* A reduction over the last axis of rank-1 rows (the axes given as the attribute, or as the
   constant second input of ReduceSum from opset 13); kind -1 is the mean. */
static sg_status reduce_row(ox_ctx *c, int kind, sg_err *err)
{
    int x, rc;
    if ((rc = row_input(c, 0, c->node->op_type, err, &x))) return rc;
    int64_t axes[OX_MAX_RANK];
    int n;
    if ((rc = ox_get_axes(c, 1, axes, &n, err))) return rc;
    /* No axes with noop_with_empty_axes (ReduceSum from opset 13) reduces nothing. */
    if (n == 0 && ox_attr_i(c, "noop_with_empty_axes", 0) != 0) return ox_op_identity(c, err);
    if (n != 1 || (axes[0] != 1 && axes[0] != -1))
        return ox_node_err(c, err, SG_EINPUT,
                           n == 0 ? "no axes: reducing over the batch is not supported"
                                  : "only the last axis of rows of rank 1 is supported");
    bool keep = ox_attr_i(c, "keepdims", 1) != 0;
    sg_onnx_step *s = ox_step_new(c, kind < 0 ? SG_OX_MEAN : SG_OX_REDUCE, err);
    if (!s) return SG_ENOMEM;
    if (kind >= 0) s->reduce = (sg_onnx_reduce)kind;
    s->in = c->vals[x].data;
    s->in_width = (int)c->vals[x].count;
    s->width = 1;
    int64_t one = 1;
    int v;
    return ox_dyn_out(c, keep ? 1 : 0, &one, err, &v);
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
