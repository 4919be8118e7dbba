/* Rows whose batch is not the leading dimension. PyTorch's nn.MultiheadAttention (and so
   nn.TransformerEncoderLayer, batch first or not) exports its attention sequence first: the
   batch moves to axis 1 ([T, N, E]), is merged with the heads ([T, N*H, d], then
   [N*H, T, d] for the products) and with the tokens ([T*N, E] for the output projection),
   and comes back to axis 0 at the end.

   Per row nothing changes: a row's values stay one block in memory, in the order of the
   row axes. A value records where the batch sits in the shape the graph sees (ox_value's
   bpos, bouter, binner): Transpose moves it (and the row axes, by a gather step), Reshape
   finds it in the new shape (the batch size a Shape node gave, times row sizes, or the 0 or
   -1 there), Shape gives it. Every other node reading such rows has its axes and constants
   translated to the rows' memory order and is compiled as on any rows; a node that would
   mix the batch with row values (an axis that is the batch, a constant along it) is
   refused. */
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

int ox_logical_shape(const ox_value *v, int64_t *dims, int64_t *factor)
{
    *factor = 1;
    if (v->is_const) {
        memcpy(dims, v->dims, (size_t)v->rank * sizeof *dims);
        return v->rank;
    }
    const int g = v->bouter + v->binner, r = v->rank + 1 - g;
    for (int a = 0, p = 0; a < r; a++) {
        if (a == v->bpos) {
            for (int j = 0; j < g; j++)
                *factor *= v->dims[p++];
            dims[a] = -1;
        } else {
            dims[a] = v->dims[p++];
        }
    }
    return r;
}

/* Axis a of the shape the graph sees of rows v, as an axis of [batch, row dims...]; 0 for
   the batch. */
static int row_axis(const ox_value *v, int a)
{
    if (a < v->bpos) return a + 1;
    if (a == v->bpos) return 0;
    return a + v->bouter + v->binner;
}

static void place(ox_value *o, int pos, int outer, int inner)
{
    o->bpos = (int8_t)pos;
    o->bouter = (int8_t)outer;
    o->binner = (int8_t)inner;
}

/* "[6,-1,8] (-1: the batch, merged with 2 row values)" for messages. */
static void describe(const ox_value *v, char *buf, size_t len)
{
    int64_t d[OX_MAX_RANK + 1] = {0}, f;
    const int r = ox_logical_shape(v, d, &f);
    char s[160];
    ox_shape_str(d, (size_t)r, s, sizeof s);
    if (f > 1)
        snprintf(buf, len, "%s (-1: the batch times %lld)", s, (long long)f);
    else
        snprintf(buf, len, "%s (-1: the batch)", s);
}

sg_status ox_placed_transpose(ox_ctx *c, int x, const int64_t *perm, sg_err *err)
{
    const ox_value *v = &c->vals[x];
    int64_t ld[OX_MAX_RANK + 1], f;
    const int L = ox_logical_shape(v, ld, &f), g = v->bouter + v->binner;
    const int outer = v->bouter, inner = v->binner;
    int full[OX_MAX_RANK + 1], n = 1, j = 0;
    full[0] = 0;
    for (int i = 0; i < L; i++) {
        const int p = (int)perm[i];
        if (p == v->bpos) {
            j = i;
            for (int k = 0; k < g; k++)
                full[n++] = 1 + v->bpos + k;
        } else {
            full[n++] = row_axis(v, p);
        }
    }
    int out, rc = ox_permute(c, x, full, NULL, err, &out);
    if (rc) return rc;
    place(&c->vals[out], j, outer, inner);
    return SG_OK;
}

sg_status ox_placed_reshape(ox_ctx *c, int x, int s, sg_err *err)
{
    const ox_value *v = &c->vals[x], *vs = &c->vals[s];
    int64_t ld[OX_MAX_RANK + 1], f;
    const int L = ox_logical_shape(v, ld, &f);
    /* The row's values before the batch (A) and after it (B), in memory order. */
    const int q = v->bpos + v->bouter;
    int64_t A = 1, B = 1;
    for (int i = 0; i < v->rank; i++) {
        if (i < q)
            A *= v->dims[i];
        else
            B *= v->dims[i];
    }
    const bool allowzero = ox_attr_i(c, "allowzero", 0) != 0;
    const int n = (int)vs->count;
    int64_t dims[OX_MAX_RANK + 1], known = 1, kfac = 0;
    int j = -1, infer = -1;
    for (int i = 0; i < n; i++) {
        int64_t d = vs->i[i];
        bool batch = i < 64 && (vs->batch_mask >> i & 1);
        if (!batch && d == 0) {
            if (allowzero)
                return ox_node_err(c, err, SG_EINPUT,
                                   "allowzero=1 with a 0 in the shape (a dimension of size 0) is "
                                   "not supported");
            if (i >= L)
                return ox_node_err(c, err, SG_EINPUT, "shape[%d] = 0 has no input dimension", i);
            batch = ld[i] < 0;
            d = batch ? f : ld[i];
        }
        if (batch) {
            if (j >= 0)
                return ox_batch_err(c, err, "shape[%d] and shape[%d] both hold the batch", j, i);
            if (d < 1 || d > OX_MAX_ELEMS) /* the row sizes merged with it, from a Mul */
                return ox_node_err(c, err, SG_EINPUT,
                                   "shape[%d] is the batch size times %lld, more than any row "
                                   "holds",
                                   i, (long long)d);
            j = i;
            kfac = d;
            dims[i] = -1;
            continue;
        }
        if (d == -1) {
            if (infer >= 0)
                return ox_node_err(c, err, SG_EINPUT, "two -1 in shape (ONNX allows one)");
            infer = i;
            continue;
        }
        if (d < 1 || d > OX_MAX_ELEMS || (known *= d) > OX_MAX_ELEMS)
            return ox_node_err(c, err, SG_EINPUT, "shape[%d] = %lld", i, (long long)d);
        dims[i] = d;
    }
    char in[240];
    describe(v, in, sizeof in);
    if (j < 0) { /* a -1 holds the batch and what is left of a row */
        if (infer < 0 || (infer > 0 && !ox_placed(v)))
            return ox_batch_err(c, err,
                                "no dimension of the new shape holds the batch of rows of shape "
                                "%s (the batch size from a Shape node, a 0 copying the batch's "
                                "dimension, or a -1: as shape[0] when the batch is the first "
                                "dimension)",
                                in);
        if (v->count % known)
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match the data: rows of shape %s do not fill the "
                               "new shape",
                               in);
        j = infer;
        kfac = v->count / known;
        dims[j] = -1;
        infer = -1;
    } else if (infer >= 0) {
        if (kfac > v->count || v->count % (known * kfac))
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match the data: rows of shape %s do not fill the "
                               "new shape",
                               in);
        dims[infer] = v->count / (known * kfac);
        known *= dims[infer];
    }
    if (kfac < 1 || kfac > v->count || known * kfac != v->count)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: a row of '%.100s' (shape %s) holds "
                           "%lld values, the new shape %lld",
                           v->name, in, (long long)v->count, (long long)(known * kfac));
    int64_t pre = 1, post = 1;
    for (int i = 0; i < n; i++)
        if (i != j) *(i < j ? &pre : &post) *= dims[i];
    if (A % pre || B % post || (A / pre) * (B / post) != kfac)
        return ox_batch_err(c, err,
                            "shape[%d] holds the batch, which would not be a whole part of it: "
                            "rows of shape %s hold %lld values before the batch and %lld after "
                            "it, the new shape %lld before shape[%d] and %lld after",
                            j, in, (long long)A, (long long)B, (long long)pre, j, (long long)post);
    const int64_t a = A / pre, b = B / post;
    int64_t out[OX_MAX_RANK + 2];
    int r = 0;
    for (int i = 0; i < j; i++)
        out[r++] = dims[i];
    if (a > 1) out[r++] = a;
    if (b > 1) out[r++] = b;
    for (int i = j + 1; i < n; i++)
        out[r++] = dims[i];
    if (r > OX_MAX_RANK) return ox_node_err(c, err, SG_EINPUT, "rank %d is too large", n);
    int rc = ox_alias_out(c, x, r, out, err);
    if (rc) return rc;
    place(&c->vals[c->n_vals - 1], j, a > 1, b > 1);
    return SG_OK;
}

static bool listed(const char *op, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(op, list[i])) return true;
    return false;
}
#define LISTED(op, list) listed(op, list, sizeof list / sizeof list[0])

/* c->node becomes a copy with attribute name set to vals (n of them; an INT when !ints). */
static sg_status set_attr(ox_ctx *c, ox_placed_state *st, const char *name, const int64_t *vals,
                          int n, bool ints, sg_err *err)
{
    const Onnx__NodeProto *nd = st->node;
    if (nd->n_attribute >= sizeof st->attrs / sizeof st->attrs[0])
        return ox_node_err(c, err, SG_EINPUT, "%zu attributes", nd->n_attribute);
    st->copy = *nd;
    onnx__attribute_proto__init(&st->attr);
    st->attr.name = (char *)name;
    if (ints) {
        st->attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        memcpy(st->ints, vals, (size_t)n * sizeof *vals);
        st->attr.ints = st->ints;
        st->attr.n_ints = (size_t)n;
    } else {
        st->attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        st->attr.has_i = 1;
        st->attr.i = vals[0];
    }
    size_t m = 0;
    bool replaced = false;
    for (size_t i = 0; i < nd->n_attribute; i++) {
        const bool same = nd->attribute[i]->name && !strcmp(nd->attribute[i]->name, name);
        st->attrs[m++] = same ? &st->attr : nd->attribute[i];
        replaced |= same;
    }
    if (!replaced) st->attrs[m++] = &st->attr;
    st->copy.attribute = st->attrs;
    st->copy.n_attribute = m;
    c->node = &st->copy;
    return SG_OK;
}

/* Input k as a constant int64 vector of vals (n), read by the node in place of its own. */
static sg_status override_ints(ox_ctx *c, size_t k, const int64_t *vals, int n, sg_err *err)
{
    const char *saved = c->partial;
    c->partial = "axes in the rows' memory order";
    int64_t len = n;
    int v, rc = ox_const_out(c, 1, &len, OX_INT64, err, &v);
    c->partial = saved;
    if (rc) return rc;
    memcpy(c->vals[v].i, vals, (size_t)n * sizeof *vals);
    c->in_override[k] = v;
    return SG_OK;
}

/* Logical axis `a` (of L) normalized, refused when it is out of range or the batch. */
static sg_status axis_of(ox_ctx *c, const ox_value *x, int L, int64_t a, int64_t *out, sg_err *err)
{
    const int64_t given = a;
    if (a < 0) a += L;
    if (a < 0 || a >= L)
        return ox_node_err(c, err, SG_EINPUT, "axis %lld is out of range for rank %d",
                           (long long)given, L);
    if (a == x->bpos) {
        char d[240];
        describe(x, d, sizeof d);
        return ox_batch_err(c, err, "axis %lld is the batch of '%.100s' (rows of shape %s)",
                            (long long)given, x->name, d);
    }
    *out = a;
    return SG_OK;
}

/* Constant input k laid out for the rows: aligned from the right with the graph's shape of
   x, 1 along the batch, then given the rows' axes (size 1 where the batch merges). */
static sg_status relay_const(ox_ctx *c, size_t k, const ox_value *x, sg_err *err)
{
    int ik = ox_in(c, k);
    const ox_value *kv = &c->vals[ik];
    int64_t ld[OX_MAX_RANK + 1], f;
    const int L = ox_logical_shape(x, ld, &f);
    if (kv->rank < L - x->bpos) return SG_OK; /* within the axes after the batch */
    char d[240];
    describe(x, d, sizeof d);
    if (kv->rank > L)
        return ox_batch_err(c, err,
                            "constant '%.100s' has rank %d, more than the rows (shape %s) it "
                            "is broadcast with",
                            kv->name, kv->rank, d);
    const int off = L - kv->rank;
    if (kv->dims[x->bpos - off] != 1)
        return ox_batch_err(c, err,
                            "constant '%.100s' has %lld values along the batch of the rows "
                            "(shape %s) it is broadcast with",
                            kv->name, (long long)kv->dims[x->bpos - off], d);
    int64_t dims[OX_MAX_RANK * 2];
    int r = 0;
    for (int a = off; a < L; a++) {
        if (a == x->bpos)
            for (int j = 0; j < x->bouter + x->binner; j++)
                dims[r++] = 1;
        else
            dims[r++] = kv->dims[a - off];
    }
    int skip = 0; /* leading 1s broadcast anyway */
    while (r - skip > OX_MAX_RANK && dims[skip] == 1)
        skip++;
    if (r - skip > OX_MAX_RANK) return ox_node_err(c, err, SG_EINPUT, "rank %d is too large", r);
    const char *saved = c->partial;
    c->partial = "a constant in the rows' memory order";
    int v, rc = ox_const_out(c, r - skip, dims + skip, kv->dtype, err, &v);
    c->partial = saved;
    if (rc) return rc;
    ox_copy_values(&c->vals[v], &c->vals[ik]);
    c->in_override[k] = v;
    return SG_OK;
}

static const char *const same_shape_ops[] = {"Clip", "Cast",  "Identity", "Dropout",
                                             "Not",  "IsNaN", "IsInf"};
static const char *const broadcast_ops[] = {
    "Add",         "Sub",  "Mul",   "Div",   "Pow",     "Max",  "Min",
    "Sum",         "Mean", "Where", "Equal", "Greater", "Less", "GreaterOrEqual",
    "LessOrEqual", "And",  "Or",    "PRelu", "Mod"};
static const char *const reduce_ops[] = {"ReduceMean", "ReduceSum",  "ReduceSumSquare",
                                         "ReduceL1",   "ReduceL2",   "ReduceMax",
                                         "ReduceMin",  "ReduceProd", "ReduceLogSumExp"};

static sg_status begin_reduce(ox_ctx *c, ox_placed_state *st, const ox_value *x, int L, sg_err *err)
{
    int64_t axes[OX_MAX_RANK];
    int n;
    sg_status rc = ox_get_axes(c, 1, axes, &n, err);
    if (rc) return rc;
    if (n == 0)
        return ox_batch_err(
            c, err, "a reduction over every axis would take in the batch of '%.100s'", x->name);
    int64_t t[OX_MAX_RANK];
    int before = 0;
    for (int k = 0; k < n; k++) {
        int64_t a = 0;
        if ((rc = axis_of(c, x, L, axes[k], &a, err))) return rc;
        before += a < x->bpos;
        t[k] = row_axis(x, (int)a);
    }
    if (!ox_attr_i(c, "keepdims", 1)) st->bpos = (int8_t)(x->bpos - before);
    if (ox_attr(c, "axes")) return set_attr(c, st, "axes", t, n, true, err);
    return override_ints(c, 1, t, n, err);
}

static void begin_active(ox_ctx *c, ox_placed_state *st, int pos, int outer, int inner)
{
    st->active = true;
    st->first_new = c->n_vals;
    st->bpos = (int8_t)pos;
    st->bouter = (int8_t)outer;
    st->binner = (int8_t)inner;
    for (int k = 0; k < 4; k++)
        c->in_override[k] = -1;
    c->overriding = true;
}

/* Where the batch size from a Shape node is in constant int64 vector vs, when it is in one
   element only; else -1. */
static int batch_mark(const ox_value *vs)
{
    const uint64_t bm = vs->batch_mask;
    if (!vs->is_const || vs->dtype != OX_INT64 || vs->rank != 1 || !bm || (bm & (bm - 1)))
        return -1;
    return __builtin_ctzll(bm);
}

/* Expand of a constant to a shape holding the batch size at j > 0 (a CLS token or a learned
   query expanded to the batch sequence first, [1, N, E]): the same rows as an Expand with the
   batch first and the constant's axis j (1 there) dropped, the batch then placed at j. */
static sg_status begin_expand(ox_ctx *c, ox_placed_state *st, sg_err *err)
{
    const int x = ox_in(c, 0), s = ox_in(c, 1);
    if (x < 0 || s < 0) return SG_OK;
    const ox_value *vx = &c->vals[x], *vs = &c->vals[s];
    const int j = batch_mark(vs);
    if (!vx->is_const || j < 0 || (j == 0 && vs->i[0] == 1) || vs->count > OX_MAX_RANK ||
        vx->rank > vs->count)
        return SG_OK; /* not this case: the Expand compiles (or is refused) as it is */
    const int n = (int)vs->count, cj = j - (n - vx->rank);
    /* the batch size times f > 1 (from a Mul): every row's f values along j the same */
    const int64_t f = vs->i[j];
    if (f < 1 || f > OX_MAX_WIDTH) return SG_OK;
    if (cj >= 0 && vx->dims[cj] != 1)
        return ox_batch_err(c, err,
                            "the constant's axis %d (of size %lld) would meet the batch: it must "
                            "be 1",
                            cj, (long long)vx->dims[cj]);
    begin_active(c, st, j, 0, f > 1);
    /* The constant without its axis j (with f > 1 it stays, a 1 broadcast to f), and the
       shape [batch, the row axes in order]. */
    int64_t kd[OX_MAX_RANK], sd[OX_MAX_RANK + 1];
    int kr = 0;
    for (int i = 0; i < vx->rank; i++)
        if (i != cj || f > 1) kd[kr++] = vx->dims[i];
    sd[0] = 1;
    for (int i = 0, m = 1; i < n; i++)
        if (i != j)
            sd[m++] = vs->i[i];
        else if (f > 1)
            sd[m++] = f;
    const char *saved = c->partial;
    c->partial = "the Expand with the batch first";
    int k, sh, rc = ox_const_out(c, kr, kd, vx->dtype, err, &k);
    int64_t len = n + (f > 1);
    if (rc == SG_OK) rc = ox_const_out(c, 1, &len, OX_INT64, err, &sh);
    c->partial = saved;
    if (rc) return rc;
    ox_copy_values(&c->vals[k], &c->vals[x]);
    memcpy(c->vals[sh].i, sd, (size_t)len * sizeof *sd);
    c->vals[sh].batch_mask = 1;
    c->in_override[0] = k;
    c->in_override[1] = sh;
    return SG_OK;
}

/* Tile of a constant whose repeats hold the batch size at j, where the constant has size 1
   (nn.MultiheadAttention's add_bias_kv: bias_k.repeat(1, bsz, 1)): the constant tiled by
   the other repeats at load, then expanded to the batch at j as begin_expand does. */
static sg_status begin_tile(ox_ctx *c, ox_placed_state *st, sg_err *err)
{
    const int x = ox_in(c, 0), s = ox_in(c, 1);
    if (x < 0 || s < 0) return SG_OK;
    const ox_value *vx = &c->vals[x], *vs = &c->vals[s];
    const int j = batch_mark(vs), r = vx->rank;
    if (!vx->is_const || j < 0 || vs->count != vx->rank) return SG_OK;
    if (vs->i[j] != 1 || vx->dims[j] != 1)
        return ox_batch_err(c, err,
                            "repeats[%d] is the batch size%s: the constant's axis %d must be 1 "
                            "(it is %lld) for each row to get one copy",
                            j, vs->i[j] != 1 ? " times a number" : "", j, (long long)vx->dims[j]);
    int64_t od[OX_MAX_RANK], in_stride[OX_MAX_RANK], sh[OX_MAX_RANK], stride = 1;
    for (int i = r - 1; i >= 0; i--) {
        in_stride[i] = stride;
        stride *= vx->dims[i];
    }
    for (int i = 0; i < r; i++) {
        const int64_t rep = i == j ? 1 : vs->i[i];
        if (rep < 0 || (vx->dims[i] && rep > OX_MAX_ELEMS / vx->dims[i]))
            return ox_node_err(c, err, SG_EINPUT, "repeats[%d] = %lld", i, (long long)rep);
        od[i] = vx->dims[i] * rep;
        sh[i] = od[i];
    }
    const char *saved = c->partial;
    c->partial = "the constant tiled";
    int k, v, rc = ox_const_out(c, r, od, vx->dtype, err, &k);
    int64_t len = r;
    if (rc == SG_OK) rc = ox_const_out(c, 1, &len, OX_INT64, err, &v);
    c->partial = saved;
    if (rc) return rc;
    vx = &c->vals[x];
    int64_t idx[OX_MAX_RANK] = {0};
    for (int64_t e = 0; e < c->vals[k].count; e++) {
        int64_t at = 0;
        for (int i = 0; i < r; i++)
            at += (idx[i] % vx->dims[i]) * in_stride[i];
        if (vx->dtype == OX_FLOAT)
            c->vals[k].f[e] = vx->f[at];
        else
            c->vals[k].i[e] = vx->i[at];
        for (int i = r - 1; i >= 0 && ++idx[i] == od[i]; i--)
            idx[i] = 0;
    }
    memcpy(c->vals[v].i, sh, (size_t)r * sizeof *sh);
    c->vals[v].batch_mask = (uint64_t)1 << j;
    c->overriding = true;
    c->in_override[0] = k;
    c->in_override[1] = v;
    c->in_override[2] = c->in_override[3] = -1;
    if ((rc = begin_expand(c, st, err))) return rc; /* (the batch first: as it is) */
    st->done = true;
    return ox_op_expand(c, err);
}

/* ConstantOfShape to a shape holding the batch size times f at j (attention's zeros of
   [bsz * num_heads, 1, head_dim]): rows of one value, f of them merged with the batch (which
   of its sides they are on does not matter: every value is the same). */
static sg_status begin_constant_of_shape(ox_ctx *c, ox_placed_state *st, sg_err *err)
{
    const int s = ox_in(c, 0);
    if (s < 0) return SG_OK;
    const ox_value *vs = &c->vals[s];
    const int j = batch_mark(vs), n = (int)vs->count;
    if (j < 0 || vs->count > OX_MAX_RANK) return SG_OK;
    const int64_t f = vs->i[j];
    if (j == 0 && f == 1) return SG_OK; /* the batch first: as it is */
    if (f < 1 || f > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "shape[%d] is the batch size times %lld", j,
                           (long long)f);
    begin_active(c, st, j, 0, f > 1);
    /* [batch, the row axes in order: f where the batch is] */
    int64_t sd[OX_MAX_RANK + 1], len = 0;
    sd[len++] = 1;
    for (int i = 0; i < n; i++)
        if (i != j)
            sd[len++] = vs->i[i];
        else if (f > 1)
            sd[len++] = f;
    if (len > OX_MAX_RANK + 1) return ox_node_err(c, err, SG_EINPUT, "shape has %d elements", n);
    const char *saved = c->partial;
    c->partial = "the shape with the batch first";
    int sh, rc = ox_const_out(c, 1, &len, OX_INT64, err, &sh);
    c->partial = saved;
    if (rc) return rc;
    memcpy(c->vals[sh].i, sd, (size_t)len * sizeof *sd);
    c->vals[sh].batch_mask = 1;
    c->in_override[0] = sh;
    return SG_OK;
}

/* Squeeze and Unsqueeze of rows whose batch moved: their axes translated, the batch's place
   recounted. */
static sg_status begin_squeeze(ox_ctx *c, ox_placed_state *st, const ox_value *x, int L,
                               bool unsqueeze, sg_err *err)
{
    int64_t axes[OX_MAX_RANK], ld[OX_MAX_RANK + 1], f, t[OX_MAX_RANK + 1];
    int n;
    sg_status rc = ox_get_axes(c, 1, axes, &n, err);
    if (rc) return rc;
    ox_logical_shape(x, ld, &f);
    int nt = 0, pos = x->bpos;
    if (!unsqueeze) {
        bool drop[OX_MAX_RANK + 1] = {false};
        for (int k = 0; k < n; k++) {
            int64_t a = 0;
            if ((rc = axis_of(c, x, L, axes[k], &a, err))) return rc;
            drop[a] = true;
        }
        for (int a = 0; a < L; a++) {
            if (n ? !drop[a] : (a == x->bpos || ld[a] != 1)) continue;
            t[nt++] = row_axis(x, a);
            if (a < x->bpos) pos--;
        }
        if (nt == 0) return SG_OK; /* nothing to squeeze: as it is */
    } else {
        const int lo = L + n;
        bool ins[OX_MAX_RANK * 2] = {false};
        if (lo > OX_MAX_RANK + 1) return ox_node_err(c, err, SG_EINPUT, "rank %d is too large", lo);
        for (int k = 0; k < n; k++) {
            const int64_t a = axes[k] < 0 ? axes[k] + lo : axes[k];
            if (a < 0 || a >= lo || ins[a])
                return ox_node_err(c, err, SG_EINPUT, "axis %lld is out of range or repeated",
                                   (long long)axes[k]);
            ins[a] = true;
        }
        int in_axis = 0, at = 1;
        for (int q = 0; q < lo; q++) {
            if (ins[q]) {
                t[nt++] = at++;
            } else {
                if (in_axis == x->bpos) {
                    pos = q;
                    at += x->bouter + x->binner;
                } else {
                    at++;
                }
                in_axis++;
            }
        }
    }
    st->bpos = (int8_t)pos;
    if (ox_attr(c, "axes")) return set_attr(c, st, "axes", t, nt, true, err);
    return override_ints(c, 1, t, nt, err);
}

/* MatMul of rows whose batch moved by a stack of weight matrices ([k, N, d] @ [k, d, h], as
   x.expand(k, -1, -1) then torch.bmm exports an ensemble): compiled here, on the rows'
   memory order. Where the batch is the matrices' rows (N in [k, N, d]), each row holds one
   vector per matrix of the stack: [k, d] is seen as [k, 1, d]. Where it is among the stacked
   axes, the weight's axis against it must be 1 and is left out. */
static sg_status begin_matmul_stack(ox_ctx *c, ox_placed_state *st, const ox_value *x, int L,
                                    sg_err *err)
{
    const int ix = (int)(x - c->vals);
    const ox_value *W = &c->vals[ox_in(c, 1)];
    char d[240];
    describe(x, d, sizeof d);
    const int lead = W->rank - 2;
    if (x->bouter || x->binner || L - 2 - lead < 0)
        return ox_batch_err(c, err,
                            "weight '%.100s' of rank %d with rows whose batch moved (shape %s): "
                            "the batch would meet the stack of matrices%s",
                            W->name, W->rank, d,
                            x->bouter || x->binner ? " merged with other axes" : "");
    ox_value w = *W; /* the weight with its axis against the batch left out: a view */
    const int at = x->bpos - (L - 2 - lead); /* the weight's axis against the batch */
    if (x->bpos < L - 2 && at >= 0) {
        if (W->dims[at] != 1)
            return ox_batch_err(c, err,
                                "weight '%.100s' has %lld matrices along the batch of rows of "
                                "shape %s",
                                W->name, (long long)W->dims[at], d);
        memmove(w.dims + at, w.dims + at + 1, (size_t)(w.rank - at - 1) * sizeof w.dims[0]);
        w.rank--;
    }
    const char *saved = c->partial;
    sg_status rc;
    st->done = true;
    if (x->bpos < L - 2) return ox_matmul_stacked(c, ix, &w, err);
    /* the batch is the matrices' rows: [..., k] as [..., 1, k], and back */
    int64_t dims[OX_MAX_RANK];
    const int r = x->rank;
    if (r + 1 > OX_MAX_RANK) return ox_node_err(c, err, SG_EINPUT, "rows of rank %d", r);
    memcpy(dims, x->dims, (size_t)(r - 1) * sizeof dims[0]);
    dims[r - 1] = 1;
    dims[r] = x->dims[r - 1];
    c->partial = "the rows, one vector per matrix";
    rc = ox_alias_out(c, ix, r + 1, dims, err);
    if (!rc) {
        c->partial = "the product by the stack";
        rc = ox_matmul_stacked(c, c->n_vals - 1, &w, err);
    }
    c->partial = saved;
    if (rc) return rc;
    const ox_value *o = &c->vals[c->n_vals - 1];
    memcpy(dims, o->dims, (size_t)(r - 1) * sizeof dims[0]);
    dims[r - 1] = o->dims[r];
    return ox_alias_out(c, c->n_vals - 1, r, dims, err);
}

sg_status ox_placed_begin(ox_ctx *c, const char *op, ox_placed_state *st, sg_err *err)
{
    st->active = false;
    st->done = false;
    st->node = c->node;
    if (!strcmp(op, "Transpose") || !strcmp(op, "Reshape") || !strcmp(op, "Shape")) return SG_OK;
    if (!strcmp(op, "Expand") || !strcmp(op, "ConstantOfShape") || !strcmp(op, "Tile")) {
        sg_status rc = op[0] == 'E'   ? begin_expand(c, st, err)
                       : op[0] == 'C' ? begin_constant_of_shape(c, st, err)
                                      : begin_tile(c, st, err);
        if (rc || st->active) return rc;
        c->overriding = false;
    }
    int p = -1;
    for (size_t k = 0; k < c->node->n_input && p < 0; k++) {
        const int v = ox_in(c, k);
        if (v >= 0 && ox_placed(&c->vals[v])) p = v;
    }
    /* Unsqueeze may also move the batch of rows that have it first ([N, E] to [1, N, E]). */
    if (p < 0 && !strcmp(op, "Unsqueeze") && ox_in(c, 0) >= 0 && !c->vals[ox_in(c, 0)].is_const)
        p = ox_in(c, 0);
    if (p < 0) return SG_OK;
    const ox_value *x = &c->vals[p];
    char d[240];
    describe(x, d, sizeof d);
    int64_t ld[OX_MAX_RANK + 1], f;
    const int L = ox_logical_shape(x, ld, &f);
    for (size_t k = 0; k < c->node->n_input; k++) {
        const int v = ox_in(c, k);
        if (v < 0 || c->vals[v].is_const || v == p) continue;
        const ox_value *y = &c->vals[v];
        int64_t yd[OX_MAX_RANK + 1], yf;
        bool same = ox_logical_shape(y, yd, &yf) == L && y->bpos == x->bpos &&
                    y->bouter == x->bouter && y->binner == x->binner && yf == f;
        for (int j = 0; same && j < x->bouter + x->binner; j++)
            same = y->dims[x->bpos + j] == x->dims[x->bpos + j];
        if (!same) {
            char e[240];
            describe(y, e, sizeof e);
            return ox_batch_err(c, err,
                                "input %zu ('%.100s', rows of shape %s) and '%.100s' (rows of "
                                "shape %s) do not have their batch in the same place",
                                k, y->name, e, x->name, d);
        }
    }
    begin_active(c, st, x->bpos, x->bouter, x->binner);
    sg_status rc = SG_OK;
    if (ox_is_unary(op) || LISTED(op, same_shape_ops)) return SG_OK;
    if (LISTED(op, broadcast_ops)) {
        if (c->node->n_input > 4)
            return ox_batch_err(c, err, "%zu inputs with rows whose batch moved (shape %s)",
                                c->node->n_input, d);
        for (size_t k = 0; k < c->node->n_input && k < 4 && !rc; k++)
            if (ox_in(c, k) >= 0 && c->vals[ox_in(c, k)].is_const) rc = relay_const(c, k, x, err);
        return rc;
    }
    if (LISTED(op, reduce_ops)) return begin_reduce(c, st, x, L, err);
    if (!strcmp(op, "ArgMax") || !strcmp(op, "ArgMin")) {
        int64_t a = 0;
        if ((rc = axis_of(c, x, L, ox_attr_i(c, "axis", 0), &a, err))) return rc;
        if (!ox_attr_i(c, "keepdims", 1) && a < x->bpos) st->bpos--;
        const int64_t t = row_axis(x, (int)a);
        return set_attr(c, st, "axis", &t, 1, false, err);
    }
    if (!strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze"))
        return begin_squeeze(c, st, x, L, op[0] == 'U', err);
    const bool softmax = !strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax");
    if (softmax || !strcmp(op, "LayerNormalization")) {
        /* Softmax before opset 13 and LayerNormalization run over every axis from `axis` on */
        const bool from = !softmax || c->opset < 13;
        int64_t a = ox_attr_i(c, "axis", softmax && c->opset < 13 ? 1 : -1), t;
        if (a < 0) a += L;
        if (from && a >= 0 && a <= x->bpos)
            return ox_batch_err(c, err,
                                "axis %lld: the axes from it on would take in the batch of "
                                "'%.100s' (rows of shape %s)",
                                (long long)a, x->name, d);
        if ((rc = axis_of(c, x, L, a, &t, err))) return rc;
        t = row_axis(x, (int)t);
        return set_attr(c, st, "axis", &t, 1, false, err);
    }
    /* Along an axis other than the batch: Split's parts, Concat's inputs (rows, the batch in
       the same place), Gather's constant indices (which replace that axis by theirs) */
    const bool split = !strcmp(op, "Split"), concat = !strcmp(op, "Concat");
    if (split || concat || !strcmp(op, "Gather")) {
        if (!concat && ox_in(c, 0) != p)
            return ox_batch_err(c, err, "%s's indices are rows whose batch moved (shape %s)", op,
                                d);
        int64_t a = ox_attr_i(c, "axis", 0), t = 0;
        if ((rc = axis_of(c, x, L, a, &t, err))) return rc;
        if (!split && !concat && t < x->bpos) {
            const int ix = ox_in(c, 1);
            if (ix >= 0) st->bpos = (int8_t)(x->bpos - 1 + c->vals[ix].rank);
        }
        t = row_axis(x, (int)t);
        return set_attr(c, st, "axis", &t, 1, false, err);
    }
    if (!strcmp(op, "Slice")) {
        if (c->opset < 10) { /* starts, ends and axes are attributes */
            const Onnx__AttributeProto *sa = ox_attr(c, "starts"), *aa = ox_attr(c, "axes");
            if (!sa || sa->n_ints > OX_MAX_RANK || (aa && aa->n_ints != sa->n_ints))
                return ox_node_err(c, err, SG_EINPUT, "starts, ends and axes do not match");
            const int n = (int)sa->n_ints;
            int64_t t[OX_MAX_RANK];
            for (int k = 0; k < n; k++) {
                int64_t a = 0;
                if ((rc = axis_of(c, x, L, aa ? aa->ints[k] : k, &a, err))) return rc;
                t[k] = row_axis(x, (int)a);
            }
            return set_attr(c, st, "axes", t, n, true, err);
        }
        const int ist = ox_in(c, 1);
        if (ist < 0 || !c->vals[ist].is_const || c->vals[ist].count > OX_MAX_RANK)
            return ox_node_err(c, err, SG_EINPUT, "starts must be a constant int64 vector");
        const int n = (int)c->vals[ist].count;
        int64_t t[OX_MAX_RANK];
        const int ia = ox_in(c, 3);
        if (ia >= 0 &&
            (!c->vals[ia].is_const || c->vals[ia].dtype != OX_INT64 || c->vals[ia].count != n))
            return ox_node_err(c, err, SG_EINPUT,
                               "axes must be a constant int64 vector as long as starts");
        for (int k = 0; k < n; k++) {
            int64_t a = 0;
            if ((rc = axis_of(c, x, L, ia >= 0 ? c->vals[ia].i[k] : k, &a, err))) return rc;
            t[k] = row_axis(x, (int)a);
        }
        return override_ints(c, 3, t, n, err);
    }
    if (!strcmp(op, "Expand") && ox_in(c, 0) == p) {
        /* rows repeated along their other axes ([1, N, H] to [D, N, H]): the shape in the
           rows' memory order, the batch's element (1, -1 or the batch size) left out */
        const int is = ox_in(c, 1);
        const ox_value *vs = is >= 0 ? &c->vals[is] : NULL;
        if (!vs || !vs->is_const || vs->dtype != OX_INT64 || vs->count != L || x->bouter ||
            x->binner)
            return ox_batch_err(c, err,
                                "Expand of rows whose batch moved (shape %s) takes a constant "
                                "shape of rank %d, the batch on its own",
                                d, L);
        int64_t t[OX_MAX_RANK + 1];
        int m = 0;
        for (int k = 0; k < L; k++) {
            const bool batch = vs->batch_mask >> k & 1;
            if (k == x->bpos) {
                if (!(batch && vs->i[k] == 1) && !(!batch && (vs->i[k] == 1 || vs->i[k] == -1)))
                    return ox_batch_err(c, err,
                                        "Expand's shape[%d] would repeat the batch of '%.100s' "
                                        "(rows of shape %s)",
                                        k, x->name, d);
                continue;
            }
            if (batch)
                return ox_batch_err(c, err,
                                    "Expand's shape[%d] is the batch size, away from the batch "
                                    "of '%.100s' (rows of shape %s)",
                                    k, x->name, d);
            t[m++] = vs->i[k];
        }
        int64_t full[OX_MAX_RANK + 2];
        full[0] = 1;
        memcpy(full + 1, t, (size_t)m * sizeof t[0]);
        return override_ints(c, 1, full, m + 1, err);
    }
    if (!strcmp(op, "LSTM") || !strcmp(op, "GRU")) {
        /* [T, batch, I] (layout 0, as PyTorch exports): each row's sequence is its own. Y
           is [T, directions, batch, H], Y_h and Y_c [directions, batch, H]. */
        int outs[3];
        st->done = true;
        st->active = false;
        if (ox_attr_i(c, "layout", 0) != 0 || ox_in(c, 0) != p || x->bpos != 1 || x->bouter ||
            x->binner || L != 3)
            return ox_batch_err(c, err,
                                "%s of '%.100s' (rows of shape %s): with layout 0 the input must "
                                "be [seq, batch, input], the batch at axis 1 alone",
                                op, x->name, d);
        if ((rc = ox_op_rnn(c, op[0] == 'G', true, outs, err))) return rc;
        for (int k = 0; k < 3; k++)
            if (outs[k] >= 0) place(&c->vals[outs[k]], k == 0 ? 2 : 1, 0, 0);
        return SG_OK;
    }
    if (!strcmp(op, "MatMul")) {
        const int ia = ox_in(c, 0), ib = ox_in(c, 1);
        if (ia < 0 || ib < 0 || c->vals[ia].is_const)
            return ox_batch_err(c, err,
                                "a MatMul whose second input is rows whose batch moved (shape "
                                "%s) and first a constant",
                                d);
        if (x->bpos >= L - (c->vals[ib].is_const ? 1 : 2))
            return ox_batch_err(c, err,
                                "the batch of '%.100s' (rows of shape %s) would be one of the "
                                "multiplied axes",
                                x->name, d);
        if (c->vals[ib].is_const && c->vals[ib].rank > 2)
            return begin_matmul_stack(c, st, x, L, err);
        return SG_OK;
    }
    if (!strcmp(op, "Gemm")) {
        if (ox_in(c, 0) != p || L != 2 || x->bpos != 0 || ox_attr_i(c, "transA", 0))
            return ox_batch_err(c, err,
                                "Gemm of rows whose batch moved (shape %s) is supported with "
                                "the rows as input 0, [batch*tokens, k], transA=0",
                                d);
        c->gemm_any_rank = true;
        return SG_OK;
    }
    return ox_batch_err(c, err,
                        "'%.100s' is rows of shape %s, whose batch a Transpose or Reshape "
                        "moved; %s is not supported on them (move the batch back to the "
                        "first axis before it)",
                        x->name, d, op);
}

void ox_placed_end(ox_ctx *c, ox_placed_state *st, sg_status rc)
{
    c->node = st->node;
    c->overriding = false;
    c->gemm_any_rank = false;
    if (rc != SG_OK || !st->active) return;
    for (int v = st->first_new; v < c->n_vals; v++)
        if (!c->vals[v].is_const) place(&c->vals[v], st->bpos, st->bouter, st->binner);
}
