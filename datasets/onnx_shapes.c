/* ONNX nodes that only change shapes (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
   Dropout, Cast) or make constants (Constant, Concat of constants), and Concat of rows.
   On per-row tensors they are aliases that cost nothing at run time; the batch must stay
   the leading dimension. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* Axes from the attribute (before opset 13) or from a constant input (13 and later). */
sg_status ox_get_axes(ox_ctx *c, size_t input, int64_t *axes, int *n, sg_err *err)
{
    *n = 0;
    const Onnx__AttributeProto *a = ox_attr(c, "axes");
    const int64_t *src = NULL;
    size_t cnt = 0;
    if (a) {
        src = a->ints;
        cnt = a->n_ints;
    } else if (ox_in(c, input) >= 0) {
        const ox_value *v = &c->vals[ox_in(c, input)];
        if (!v->is_const || v->dtype != OX_INT64)
            return ox_node_err(c, err, SG_EINPUT, "axes must be a constant int64 tensor");
        src = v->i;
        cnt = (size_t)v->count;
    } else {
        return SG_OK;
    }
    if (cnt > OX_MAX_RANK) return ox_node_err(c, err, SG_EINPUT, "too many axes");
    if (cnt) memcpy(axes, src, cnt * sizeof *axes);
    *n = (int)cnt;
    return SG_OK;
}

int ox_full_shape(const ox_value *v, int64_t *dims)
{
    if (v->is_const) {
        memcpy(dims, v->dims, (size_t)v->rank * sizeof *dims);
        return v->rank;
    }
    dims[0] = -1;
    memcpy(dims + 1, v->dims, (size_t)v->rank * sizeof *dims);
    return v->rank + 1;
}

/* Output of a shape-only node with full output shape (rank, dims): an alias for per-row
   input (the batch must stay the leading dimension), a copy for a constant. */
static int reshaped(ox_ctx *c, int x, int rank, const int64_t *dims, sg_err *err)
{
    const ox_value *vx = &c->vals[x];
    if (rank > OX_MAX_RANK + (vx->is_const ? 0 : 1))
        return ox_node_err(c, err, SG_EINPUT, "rank %d is too large", rank);
    if (vx->is_const) {
        int v;
        int rc = ox_const_out(c, rank, dims, vx->dtype, err, &v);
        if (rc) return rc;
        vx = &c->vals[x];
        if (c->vals[v].count != vx->count)
            return ox_node_err(c, err, SG_EINPUT, "new shape holds %lld elements, the input %lld",
                               (long long)c->vals[v].count, (long long)vx->count);
        ox_copy_values(&c->vals[v], vx);
        c->vals[v].batch_mask = vx->batch_mask; /* the elements keep their order */
        return SG_OK;
    }
    if (rank < 1 || dims[0] != -1)
        return ox_batch_err(c, err, "the result would not keep the batch as its first dimension");
    int64_t w = 1;
    for (int i = 1; i < rank; i++)
        w *= dims[i];
    if (w != vx->count)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: a row of '%.100s' holds %lld values, "
                           "the new shape %lld",
                           vx->name, (long long)vx->count, (long long)w);
    return ox_alias_out(c, x, rank - 1, dims + 1, err);
}

/* A leading -1 that takes row values into the batch's dimension: [N, T, E] viewed as
   [-1, E] is [N*T, E] (PyTorch's h.reshape(-1, E)), when the other dimensions do not hold
   a whole row. */
static bool merges_rows(const ox_value *vx, const ox_value *vs)
{
    if (vs->batch_mask || vs->count < 1 || vs->i[0] != -1) return false;
    int64_t known = 1;
    for (int64_t k = 1; k < vs->count; k++) {
        int64_t d = vs->i[k];
        if (d == 0 && k - 1 < vx->rank) d = vx->dims[k - 1];
        if (d < 1 || d > OX_MAX_ELEMS) return false; /* another -1, or refused as before */
        known *= d;
        if (known > OX_MAX_ELEMS) return false;
    }
    return known != vx->count && vx->count % known == 0;
}

int ox_op_reshape(ox_ctx *c, sg_err *err)
{
    int x, s, rc;
    if ((rc = ox_need_in(c, 0, err, &x)) || (rc = ox_need_in(c, 1, err, &s))) return rc;
    const ox_value *vs = &c->vals[s], *vx = &c->vals[x];
    if (!vs->is_const || vs->dtype != OX_INT64 || vs->rank != 1 || vs->count < 1 ||
        vs->count > OX_MAX_RANK)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape must be a constant int64 vector of 1..%d "
                           "values",
                           OX_MAX_RANK);
    /* A shape computed from a Shape node (x.view(x.size(0), -1) in PyTorch) holds the batch
       size: as its first element it is the batch, as a 0 or -1 there is. */
    const uint64_t bm = vs->batch_mask;
    if (bm && vx->is_const)
        return ox_node_err(c, err, SG_EINPUT,
                           "the shape holds the batch size (from a Shape node), and the data is "
                           "a constant");
    /* Anywhere else the batch is found in the new shape (onnx_batch.c): the batch size times
       row sizes from a Shape node, a 0 copying it, or a leading -1. */
    if (!vx->is_const &&
        (ox_placed(vx) || (bm & ~(uint64_t)1) || (bm && vs->i[0] != 1) || merges_rows(vx, vs)))
        return ox_placed_reshape(c, x, s, err);
    if (bm & ~(uint64_t)1)
        return ox_batch_err(c, err,
                            "shape[%d] is the batch size (from a Shape node): only the first "
                            "dimension may be",
                            __builtin_ctzll(bm & ~(uint64_t)1));
    /* allowzero changes only what a 0 in the shape means (a dimension of size 0, not a
       copy of the input's): without a 0 it changes nothing (it had been refused outright). */
    if (ox_attr_i(c, "allowzero", 0))
        for (int64_t k = bm ? 1 : 0; k < vs->count; k++)
            if (vs->i[k] == 0)
                return ox_node_err(c, err, SG_EINPUT,
                                   "allowzero=1 with a 0 in the shape (a dimension of size 0) is "
                                   "not supported");
    int64_t in_dims[OX_MAX_RANK + 1], dims[OX_MAX_RANK + 1];
    int in_rank = ox_full_shape(vx, in_dims), rank = (int)vs->count, infer = -1;
    /* Per-row input: the batch is the leading 0 or -1; an explicit size there would fix it. */
    int first = 0;
    if (!vx->is_const) {
        if (!bm && vs->i[0] != 0 && vs->i[0] != -1)
            return ox_batch_err(c, err,
                                "shape[0] = %lld would not keep the batch as the first dimension",
                                (long long)vs->i[0]);
        dims[0] = -1;
        first = 1;
    }
    size_t known = 1;
    for (int i = first; i < rank; i++) {
        int64_t d = vs->i[i];
        if (d == 0) {
            if (i >= in_rank)
                return ox_node_err(c, err, SG_EINPUT, "shape[%d] = 0 has no input dimension", i);
            d = in_dims[i];
        }
        if (d == -1) {
            /* ONNX allows one -1; a leading -1 taken for the batch is that one ([-1, -1] had
               been read as [batch, row]) */
            if (infer >= 0 || (first && !bm && vs->i[0] == -1))
                return ox_node_err(c, err, SG_EINPUT, "two -1 in shape (ONNX allows one)");
            infer = i;
        } else if (d < 0 || !sg_mul_size(known, (size_t)d, &known) ||
                   known > (size_t)OX_MAX_ELEMS) {
            return ox_node_err(c, err, SG_EINPUT, "shape[%d] = %lld", i, (long long)d);
        }
        dims[i] = d;
    }
    if (infer >= 0) {
        if (known == 0 || (size_t)vx->count % known)
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match the data: %lld values do not fill the new "
                               "shape",
                               (long long)vx->count);
        dims[infer] = vx->count / (int64_t)known;
    }
    return reshaped(c, x, rank, dims, err);
}

int ox_op_flatten(ox_ctx *c, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    int64_t d[OX_MAX_RANK + 1];
    int r = ox_full_shape(&c->vals[x], d);
    int64_t axis = ox_attr_i(c, "axis", 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r) return ox_node_err(c, err, SG_EINPUT, "axis out of range");
    if (!c->vals[x].is_const && axis != 1)
        return ox_batch_err(c, err, "axis %lld would not keep the batch as its first dimension",
                            (long long)axis);
    int64_t out[2] = {1, 1};
    for (int i = 0; i < r; i++)
        out[i >= axis] *= d[i];
    if (!c->vals[x].is_const) out[0] = -1;
    return reshaped(c, x, 2, out, err);
}

int ox_op_squeeze(ox_ctx *c, bool unsqueeze, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    int64_t axes[OX_MAX_RANK], d[OX_MAX_RANK + 1], out[OX_MAX_RANK + 1];
    int n;
    if ((rc = ox_get_axes(c, 1, axes, &n, err))) return rc;
    int r = ox_full_shape(&c->vals[x], d);
    int ro = unsqueeze ? r + n : r;
    if (ro > OX_MAX_RANK + (c->vals[x].is_const ? 0 : 1))
        return ox_node_err(c, err, SG_EINPUT, "rank %d is too large", ro);
    bool mark[OX_MAX_RANK + 1] = {false};
    for (int k = 0; k < n; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + ro : axes[k];
        if (a < 0 || a >= ro)
            return ox_node_err(c, err, SG_EINPUT, "axis %lld out of range", (long long)axes[k]);
        if (mark[a])
            return ox_node_err(c, err, SG_EINPUT, "axis %lld names axis %lld a second time",
                               (long long)axes[k], (long long)a);
        if (!unsqueeze && d[a] < 0) /* the batch: its size is known only per run */
            return ox_node_err(c, err, SG_EINPUT,
                               "axis %lld is the batch, which cannot be squeezed",
                               (long long)axes[k]);
        if (!unsqueeze && d[a] != 1)
            return ox_node_err(c, err, SG_EINPUT, "axis %lld has size %lld, not 1",
                               (long long)axes[k], (long long)d[a]);
        mark[a] = true;
    }
    if (unsqueeze && n == 0) return ox_node_err(c, err, SG_EINPUT, "axes are missing");
    int k = 0;
    if (unsqueeze) {
        for (int i = 0, j = 0; i < ro; i++)
            out[k++] = mark[i] ? 1 : d[j++];
    } else {
        for (int i = 0; i < r; i++)
            if (!(n ? mark[i] : d[i] == 1)) out[k++] = d[i];
    }
    return reshaped(c, x, k, out, err);
}

/* An ONNX TensorProto data type's name, for messages. */
const char *ox_type_name(int64_t t)
{
    static const char *const names[] = {"undefined",  "float",   "uint8",  "int8",   "uint16",
                                        "int16",      "int32",   "int64",  "string", "bool",
                                        "float16",    "double",  "uint32", "uint64", "complex64",
                                        "complex128", "bfloat16"};
    return t >= 0 && t < (int64_t)(sizeof names / sizeof names[0]) ? names[t] : "an unknown type";
}

int ox_op_cast(ox_ctx *c, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    int64_t to = ox_attr_i(c, "to", 0);
    const ox_value *vx = &c->vals[x];
    if (!vx->is_const) {
        /* A condition is 0/1 as floats: to float it is those numbers, to bool itself. Float
           rows to double are the same numbers, for IsInf and IsNaN only (torch.isinf). */
        const bool keep_bool = vx->is_bool && to == 9, widen = !vx->is_bool && to == 11;
        /* A condition or integers to int32 or int64: integers held exactly (is_int). */
        const bool to_int = (vx->is_bool || vx->is_int) && (to == 7 || to == 6);
        if (widen) {
            int rc2 = ox_alias_out(c, x, vx->rank, vx->dims, err);
            if (rc2 == SG_OK) {
                c->vals[c->n_vals - 1].is_double = true;
                c->vals[c->n_vals - 1].is_int = false;
            }
            return rc2;
        }
        if (to == 1 || keep_bool || to_int) { /* to float, a condition kept, or integers */
            const int64_t bound = vx->is_bool ? 1 : vx->int_bound;
            int rc2 = ox_alias_out(c, x, vx->rank, vx->dims, err);
            if (rc2 == SG_OK) {
                ox_value *o = &c->vals[c->n_vals - 1];
                o->is_bool = keep_bool;
                o->is_double = false;
                o->is_int = to_int;
                o->int_bound = to_int ? bound : 0;
                /* a condition or integers as floats: their magnitude is known */
                if (to == 1 && (vx->is_bool || vx->is_int) && bound > 0 && bound <= OX_MAX_EXACT)
                    o->fbound = (float)bound;
            }
            return rc2;
        }
        /* Floats to an integer type: toward zero, a step. Their magnitude is not known, so
           they are compared, gathered by (an embedding's indices) or cast back, never summed
           or multiplied (int_outputs: the bound is past 2^24). */
        if (!vx->is_bool && !vx->is_int && !vx->is_double && (to == 7 || to == 6)) {
            /* (unless a Clip bounded them: |trunc(x)| <= ceil(fbound)) */
            const float fb = vx->fbound;
            int rc2 = ox_emit_trunc(c, to == 6, err);
            if (rc2 == SG_OK) {
                c->vals[c->n_vals - 1].is_int = true;
                c->vals[c->n_vals - 1].int_bound =
                    fb > 0 && fb <= (float)OX_MAX_EXACT ? (int64_t)ceilf(fb) : INT64_MAX;
                c->vals[c->n_vals - 1].fbound = 0;
            }
            return rc2;
        }
        const char *kind = vx->is_bool ? "boolean" : vx->is_int ? "integer" : "float";
        return ox_node_err(c, err, SG_EINPUT,
                           "cast of %s rows to %s (type %lld): rows are cast only to float "
                           "(type 1)%s",
                           kind, ox_type_name(to), (long long)to,
                           vx->is_bool  ? ", bool (type 9), int32 or int64"
                           : vx->is_int ? ", int32 or int64"
                                        : ", int32 or int64 (toward zero)");
    }
    /* to bool (9): 0/1 as int64, as a bool initializer loads (torch.jit.script's `if` on a
       shape casts the comparison to bool before the If) */
    if (to != 1 && to != 11 && to != 7 && to != 6 && to != 9)
        return ox_node_err(c, err, SG_EINPUT,
                           "cast of a constant to %s (type %lld) is not supported",
                           ox_type_name(to), (long long)to);
    int dt = (to == 1 || to == 11) ? OX_FLOAT : OX_INT64, v;
    if (vx->batch_mask && to != 7) /* (its stored 0 means nothing: no bool of it either) */
        return ox_node_err(
            c, err, SG_EINPUT,
            "cast of the batch size (from a Shape node) to %s (type %lld): it is used "
            "only as an int64 in a shape",
            ox_type_name(to), (long long)to);
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, vx->dims, sizeof dims);
    if ((rc = ox_const_out(c, vx->rank, dims, dt, err, &v))) return rc;
    vx = &c->vals[x];
    for (int64_t k = 0; k < vx->count; k++) {
        if (dt == OX_FLOAT)
            c->vals[v].f[k] = vx->dtype == OX_FLOAT ? vx->f[k] : (float)vx->i[k];
        else if (to == 9)
            c->vals[v].i[k] = vx->dtype == OX_INT64 ? vx->i[k] != 0 : vx->f[k] != 0;
        else if (vx->dtype == OX_INT64)
            c->vals[v].i[k] = vx->i[k];
        else if (!(fabsf(vx->f[k]) < 9.2e18f))
            return ox_node_err(c, err, SG_EINPUT, "value out of int64 range");
        else
            c->vals[v].i[k] = (int64_t)vx->f[k];
    }
    c->vals[v].batch_mask = vx->batch_mask;
    return SG_OK;
}

/* Shape: the input's dimensions as a constant int64 vector (opset 15's start and end pick a
   range of them). A per-row input's batch size is known only per run: its element is marked
   (batch_mask) and holds the row sizes merged with the batch (1 when none), for a
   Reshape's shape. */
sg_status ox_op_shape(ox_ctx *c, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    int64_t d[OX_MAX_RANK + 1], factor;
    const int r = ox_logical_shape(&c->vals[x], d, &factor);
    int64_t start = ox_attr_i(c, "start", 0), end = ox_attr_i(c, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t n = end > start ? end - start : 0;
    int v;
    if ((rc = ox_const_out(c, 1, &n, OX_INT64, err, &v))) return rc;
    /* the batch's element holds the row sizes merged with it (1: none), marked */
    for (int64_t k = 0; k < n; k++) {
        c->vals[v].i[k] = d[start + k] < 0 ? factor : d[start + k];
        if (d[start + k] < 0) c->vals[v].batch_mask = (uint64_t)1 << k;
    }
    return SG_OK;
}

sg_status ox_op_constant(ox_ctx *c, sg_err *err)
{
    int v, rc = ox_new_out(c, 0, err, &v);
    if (rc) return rc;
    const Onnx__AttributeProto *a;
    ox_value *o = &c->vals[v];
    if ((a = ox_attr(c, "value")) && a->t) {
        char what[160];
        snprintf(what, sizeof what, "Constant '%.100s'", o->name);
        c->infinities_ok = true;
        const sg_status read = ox_tensor_read(c, a->t, o, what, err);
        c->infinities_ok = false;
        return read;
    }
    o->is_const = true;
    if ((a = ox_attr(c, "value_float")) || (a = ox_attr(c, "value_floats"))) {
        size_t n = a->has_f ? 1 : a->n_floats;
        o->dtype = OX_FLOAT;
        o->f = sg_alloc_aligned((n ? n : 1) * sizeof(float));
        if (!o->f) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        if (a->has_f)
            o->f[0] = a->f;
        else if (n)
            memcpy(o->f, a->floats, n * sizeof(float));
        o->rank = a->has_f ? 0 : 1;
        o->dims[0] = (int64_t)n;
        o->count = (int64_t)n;
        return SG_OK;
    }
    if ((a = ox_attr(c, "value_int")) || (a = ox_attr(c, "value_ints"))) {
        size_t n = a->has_i ? 1 : a->n_ints;
        o->dtype = OX_INT64;
        o->i = malloc((n ? n : 1) * sizeof(int64_t));
        if (!o->i) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        if (a->has_i)
            o->i[0] = a->i;
        else if (n)
            memcpy(o->i, a->ints, n * sizeof(int64_t));
        o->rank = a->has_i ? 0 : 1;
        o->dims[0] = (int64_t)n;
        o->count = (int64_t)n;
        return SG_OK;
    }
    return ox_node_err(c, err, SG_EINPUT,
                       "no supported value attribute (value, value_float(s), "
                       "value_int(s))");
}

sg_status ox_op_concat(ox_ctx *c, sg_err *err)
{
    size_t n = c->node->n_input;
    if (n < 1 || n > 4096) return ox_node_err(c, err, SG_EINPUT, "%zu inputs", n);
    int64_t axis = ox_attr_i(c, "axis", 0);
    bool all_const = true;
    for (size_t k = 0; k < n; k++) {
        if (ox_in(c, k) < 0) return ox_node_err(c, err, SG_EINPUT, "input %zu is missing", k);
        all_const &= c->vals[ox_in(c, k)].is_const;
    }
    const ox_value *v0 = &c->vals[ox_in(c, 0)];
    int64_t d0[OX_MAX_RANK + 1];
    int r = ox_full_shape(v0, d0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return ox_node_err(c, err, SG_EINPUT, "axis out of range");
    int64_t out[OX_MAX_RANK + 1];
    memcpy(out, d0, sizeof out);
    out[axis] = 0;
    for (size_t k = 0; k < n; k++) {
        int64_t d[OX_MAX_RANK + 1];
        const ox_value *v = &c->vals[ox_in(c, k)];
        if (ox_full_shape(v, d) != r || v->dtype != v0->dtype)
            return ox_node_err(c, err, SG_EINPUT, "inputs differ in rank or type");
        if (!all_const && v->is_const)
            /* (with a fixed batch, a CLS token expanded to it is such a constant) */
            return ox_batch_err(c, err, "concatenating a constant to rows is not supported");
        for (int i = 0; i < r; i++)
            if (i != axis && d[i] != d0[i]) {
                char s0[160], sk[160];
                ox_shape_str(d0, (size_t)r, s0, sizeof s0);
                ox_shape_str(d, (size_t)r, sk, sizeof sk);
                return ox_node_err(c, err, SG_EINPUT,
                                   "shape does not match the data: input %zu is %s, input 0 %s "
                                   "(-1: the batch); they may differ on axis %lld only",
                                   k, sk, s0, (long long)axis);
            }
        out[axis] += d[axis];
    }
    if (all_const) {
        /* Shapes joined (the batch size from a Shape, then -1): the marks follow their
           elements, in one vector. */
        uint64_t mask = 0;
        int64_t at = 0;
        for (size_t k = 0; k < n; k++) {
            const ox_value *v = &c->vals[ox_in(c, k)];
            if (v->batch_mask && r != 1)
                return ox_node_err(c, err, SG_EINPUT,
                                   "input %zu holds the batch size (from a Shape node), which "
                                   "is joined only into a vector (rank 1), not rank %d",
                                   k, r);
            if (v->batch_mask && at + (63 - __builtin_clzll(v->batch_mask)) >= 64)
                return ox_node_err(c, err, SG_EINPUT,
                                   "input %zu puts the batch size (from a Shape node) past "
                                   "element 63 of the vector",
                                   k);
            if (v->batch_mask) mask |= v->batch_mask << at;
            at += v->count;
        }
        /* v0 points into the value table, which adding the output may move */
        const int dtype = v0->dtype;
        int o, rc = ox_const_out(c, r, out, dtype, err, &o);
        if (rc) return rc;
        c->vals[o].batch_mask = mask;
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < axis; i++)
            outer *= out[i];
        for (int i = (int)axis + 1; i < r; i++)
            inner *= out[i];
        size_t es = dtype == OX_FLOAT ? 4 : 8, pos = 0;
        uint8_t *dst =
            c->vals[o].dtype == OX_FLOAT ? (uint8_t *)c->vals[o].f : (uint8_t *)c->vals[o].i;
        for (int64_t i = 0; i < outer; i++)
            for (size_t k = 0; k < n; k++) {
                const ox_value *v = &c->vals[ox_in(c, k)];
                size_t len = (size_t)(v->dims[axis] * inner) * es;
                const uint8_t *src =
                    v->dtype == OX_FLOAT ? (const uint8_t *)v->f : (const uint8_t *)v->i;
                memcpy(dst + pos, src + (size_t)i * len, len);
                pos += len;
            }
        return SG_OK;
    }
    if (axis == 0)
        return ox_batch_err(c, err, "concatenation along the batch (axis 0) is not supported");
    /* Rows side by side; along an inner axis of rows of rank 2 or more, then interleaved by
       a gather step: each run of the axis and the ones after it from each input in turn. */
    const bool flat = axis == 1;
    int64_t total = 0;
    for (size_t k = 0; k < n; k++)
        total += c->vals[ox_in(c, k)].count; /* each below 2^24, at most 4096 of them */
    if (total > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "a row of %lld values (must be 1..%d)",
                           (long long)total, OX_MAX_WIDTH);
    /* conditions join conditions only (the result is one again) */
    const bool bools = c->vals[ox_in(c, 0)].is_bool;
    for (size_t k = 1; k < n; k++)
        if (c->vals[ox_in(c, k)].is_bool != bools)
            return ox_node_err(c, err, SG_EINPUT,
                               "inputs 0 and %zu: one is a condition (a comparison's result), "
                               "the other numbers",
                               k);
    const char *saved = c->partial;
    if (!flat) c->partial = "the inputs side by side";
    sg_onnx_step *s = ox_step_new(c, SG_OX_CONCAT, err);
    if (!s) return SG_ENOMEM;
    s->parts = calloc(n, sizeof *s->parts);
    s->part_width = calloc(n, sizeof *s->part_width);
    if (!s->parts || !s->part_width) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    s->n_parts = (int)n;
    for (size_t k = 0; k < n; k++) {
        s->parts[k] = c->vals[ox_in(c, k)].data;
        s->part_width[k] = (int)c->vals[ox_in(c, k)].count;
    }
    s->in = s->parts[0];
    s->width = (int)total;
    int v, rc = flat ? ox_dyn_out(c, r - 1, out + 1, err, &v) : ox_dyn_out(c, 1, &total, err, &v);
    c->partial = saved;
    if (rc) return rc;
    c->vals[v].is_bool = bools;
    if (flat) return SG_OK;
    /* Output element (o, i, e), o over the axes before `axis`, i along it, e over the ones
       after, comes from the input that holds i, at its own (o, i - start, e). */
    int64_t outer = 1, inner = 1;
    for (int i = 1; i < axis; i++)
        outer *= out[i];
    for (int i = (int)axis + 1; i < r; i++)
        inner *= out[i];
    int *cols = malloc((size_t)total * sizeof *cols);
    if (!cols) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    int64_t j = 0;
    for (int64_t o = 0; o < outer; o++) {
        int64_t base = 0;
        for (size_t k = 0; k < n; k++) {
            const ox_value *p = &c->vals[ox_in(c, k)];
            const int64_t run = p->dims[axis - 1] * inner;
            for (int64_t e = 0; e < run; e++)
                cols[j++] = (int)(base + o * run + e);
            base += p->count;
        }
    }
    return ox_gather_out(c, 0, v, r - 1, out + 1, cols, err, &v);
}

int ox_op_identity(ox_ctx *c, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    if ((rc = ox_only_first_output(c, err))) return rc;
    int64_t d[OX_MAX_RANK + 1];
    int r = ox_full_shape(&c->vals[x], d);
    return reshaped(c, x, r, d, err);
}

int ox_op_dropout(ox_ctx *c, sg_err *err)
{
    int t = ox_in(c, 2);
    if (t >= 0) {
        const ox_value *v = &c->vals[t];
        if (!v->is_const || v->count != 1 || (v->dtype == OX_INT64 ? v->i[0] != 0 : v->f[0] != 0))
            return ox_node_err(c, err, SG_EINPUT, "training_mode must be a constant false");
    }
    return ox_op_identity(c, err);
}
