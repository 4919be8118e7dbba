/* ONNX layer nodes (Gemm, MatMul, BatchNormalization, LayerNormalization, Softmax,
   LogSoftmax, ReduceMean) compiled into plan steps; the element-wise and shape-only
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
        return ox_node_err(c, err, SG_EINPUT, "%s of constants only is not supported", what);
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
    if ((rc = ox_only_first_output(c, err))) return rc;
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

sg_status ox_op_reduce_mean(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if ((rc = row_input(c, 0, "ReduceMean", err, &x))) return rc;
    int64_t axes[OX_MAX_RANK];
    int n;
    if ((rc = ox_get_axes(c, 1, axes, &n, err))) return rc;
    if (n != 1 || (axes[0] != 1 && axes[0] != -1))
        return ox_node_err(c, err, SG_EINPUT, "only the last axis of rows of rank 1 is supported");
    bool keep = ox_attr_i(c, "keepdims", 1) != 0;
    sg_onnx_step *s = ox_step_new(c, SG_OX_MEAN, err);
    if (!s) return SG_ENOMEM;
    s->in = c->vals[x].data;
    s->in_width = (int)c->vals[x].count;
    s->width = 1;
    int64_t one = 1;
    int v;
    return ox_dyn_out(c, keep ? 1 : 0, &one, err, &v);
}
