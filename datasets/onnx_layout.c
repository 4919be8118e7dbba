/* ONNX nodes that move or repeat elements (Transpose, Expand, Tile, Split) or make a tensor
   of one value (ConstantOfShape). On constants they fold; on per-row tensors each becomes one
   gather step (out[j] = in[cols[j]], the columns computed at load), or an alias when nothing
   moves, and a fill step for a per-row tensor of one value. The batch stays the leading
   dimension: a node that would move, repeat or fix it is refused. */
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* How output axis i of a view reads its input: the input axis `src` (-1: none, a new axis
   of the output) at start + (mod ? o % mod : o) * step for output coordinate o. */
typedef struct {
    int src;
    int64_t start, step, mod;
} ox_axis_map;

/* The width of rows of shape (rank, dims): each axis at least 1, the whole within
   OX_MAX_WIDTH; else an error naming which. */
static sg_status row_width(ox_ctx *c, int rank, const int64_t *dims, int64_t *width, sg_err *err)
{
    *width = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 1 || *width * dims[i] > OX_MAX_WIDTH)
            return ox_node_err(c, err, SG_EINPUT, "a row of the result would hold %s values",
                               dims[i] < 1 ? "no" : "too many");
        *width *= dims[i];
    }
    return SG_OK;
}

/* Offset in the input (row-major strides in_stride over its axes, from axis `from`) of the
   output element at multi-index idx. */
static int64_t view_offset(const ox_axis_map *map, int rank, const int64_t *idx,
                           const int64_t *in_stride, int from)
{
    int64_t off = 0;
    for (int i = from; i < rank; i++) {
        if (map[i].src < 0) continue;
        const int64_t o = map[i].mod ? idx[i] % map[i].mod : idx[i];
        off += (map[i].start + o * map[i].step) * in_stride[map[i].src];
    }
    return off;
}

static void next_index(int64_t *idx, int rank, const int64_t *dims, int from)
{
    for (int d = rank - 1; d >= from; d--) {
        if (++idx[d] < dims[d]) return;
        idx[d] = 0;
    }
}

/*
 * Output k of the node as value x seen through map, of full shape (rank, dims). A constant
 * folds (the batch size a Shape gave follows its element, within the first 64); a per-row
 * value must keep its batch as axis 0 (map[0] reads axis 0 from 0 by 1, dims[0] == -1), and
 * becomes an alias when every element stays in place, else a gather step.
 */
static sg_status view_out(ox_ctx *c, size_t k, int x, int rank, const int64_t *dims_in,
                          const ox_axis_map *map, sg_err *err, int *out)
{
    int64_t dims[OX_MAX_RANK + 1], in_dims[OX_MAX_RANK + 1], stride[OX_MAX_RANK + 1];
    memcpy(dims, dims_in, (size_t)rank * sizeof *dims);
    const bool rows = !c->vals[x].is_const;
    if (rank > OX_MAX_RANK + (rows ? 1 : 0))
        return ox_node_err(c, err, SG_EINPUT, "rank %d is too large", rank);
    const int in_rank = ox_full_shape(&c->vals[x], in_dims);
    int64_t s = 1;
    for (int i = in_rank - 1; i >= (rows ? 1 : 0); i--) {
        stride[i] = s;
        s *= in_dims[i];
    }
    if (!rows) {
        ox_value *vx = &c->vals[x];
        const int dtype = vx->dtype;
        const uint64_t in_mask = vx->batch_mask;
        int v, rc = ox_const_out_k(c, k, rank, dims, dtype, err, &v);
        if (rc) return rc;
        vx = &c->vals[x];
        ox_value *o = &c->vals[v];
        int64_t idx[OX_MAX_RANK] = {0};
        uint64_t mask = 0;
        for (int64_t j = 0; j < o->count; j++) {
            const int64_t at = view_offset(map, rank, idx, stride, 0);
            if (dtype == OX_FLOAT)
                o->f[j] = vx->f[at];
            else
                o->i[j] = vx->i[at];
            if (at < 64 && (in_mask >> at & 1)) {
                if (j >= 64)
                    return ox_node_err(c, err, SG_EINPUT,
                                       "the batch size (from a Shape node) moved past element 63");
                mask |= (uint64_t)1 << j;
            }
            next_index(idx, rank, dims, 0);
        }
        o->batch_mask = mask;
        *out = v;
        return SG_OK;
    }
    if (rank < 1 || dims[0] != -1 || map[0].src != 0 || map[0].start || map[0].step != 1 ||
        map[0].mod)
        return ox_batch_err(c, err, "the result would not keep the batch as its first dimension");
    int64_t width;
    int rc = row_width(c, rank - 1, dims + 1, &width, err);
    if (rc) return rc;
    int *cols = malloc((size_t)width * sizeof *cols);
    if (!cols) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    int64_t idx[OX_MAX_RANK + 1] = {0};
    for (int64_t j = 0; j < width; j++) {
        cols[j] = (int)view_offset(map, rank, idx, stride, 1);
        next_index(idx, rank, dims, 1);
    }
    return ox_gather_out(c, k, x, rank - 1, dims + 1, cols, err, out);
}

sg_status ox_gather_out(ox_ctx *c, size_t k, int x, int rank, const int64_t *dims, int *cols,
                        sg_err *err, int *out)
{
    return ox_gather_out_pad(c, k, x, rank, dims, cols, 0.0f, err, out);
}

sg_status ox_gather_out_pad(ox_ctx *c, size_t k, int x, int rank, const int64_t *dims, int *cols,
                            float pad, sg_err *err, int *out)
{
    int64_t width = 1;
    for (int i = 0; i < rank; i++)
        width *= dims[i];
    bool same = width == c->vals[x].count;
    for (int64_t j = 0; same && j < width; j++)
        same = cols[j] == j;
    if (same) {
        free(cols);
        int rc = ox_alias_out_k(c, k, x, rank, dims, err);
        *out = c->n_vals - 1;
        return rc;
    }
    sg_onnx_step *st = ox_step_new(c, SG_OX_GATHER, err);
    if (!st) {
        free(cols);
        return SG_ENOMEM;
    }
    st->cols = cols;
    for (int64_t j = 0; j < width; j++)
        st->padded |= cols[j] < 0; /* a tap outside the input reads pad */
    st->pad_value = pad;
    st->in = c->vals[x].data;
    st->in_width = (int)c->vals[x].count;
    st->width = (int)width;
    const bool is_bool = c->vals[x].is_bool, is_double = c->vals[x].is_double,
               is_int = c->vals[x].is_int;
    const int64_t bound = c->vals[x].int_bound;
    const float fbound = c->vals[x].fbound;
    const sg_status rc = ox_dyn_out_k(c, k, rank, dims, err, out);
    if (rc == SG_OK) { /* moved elements keep what they are */
        c->vals[*out].is_bool = is_bool;
        c->vals[*out].is_double = is_double;
        c->vals[*out].is_int = is_int;
        c->vals[*out].int_bound = bound;
        c->vals[*out].fbound = fbound;
    }
    return rc;
}

/* A per-row output of one value per element: constant v (its leading axis, where it has as
   many as the output, must be 1) broadcast to rows of shape (rank, dims), by a fill step. */
static sg_status fill_out(ox_ctx *c, int v, int rank, const int64_t *dims, sg_err *err)
{
    ox_value kv = c->vals[v];
    if (kv.dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT,
                           "a per-row tensor of integers is not supported (only float)");
    if (kv.rank > rank + 1 || (kv.rank == rank + 1 && kv.dims[0] != 1))
        return ox_batch_err(c, err, "the result would not keep the batch as its first dimension");
    if (kv.rank == rank + 1) {
        memmove(kv.dims, kv.dims + 1, (size_t)rank * sizeof kv.dims[0]);
        kv.rank--;
    }
    int64_t width;
    float *row;
    int rc = row_width(c, rank, dims, &width, err);
    if (rc) return rc;
    rc = ox_const_row(c, &kv, rank, dims, width, &row, err);
    if (rc) return rc;
    sg_onnx_step *st = ox_step_new(c, SG_OX_FILL, err);
    if (!st) {
        sg_free_aligned(row);
        return SG_ENOMEM;
    }
    st->b = row;
    st->in = c->vals[c->input].data; /* read by nothing: the graph input, always there */
    st->in_width = (int)c->vals[c->input].count;
    st->width = (int)width;
    int o;
    return ox_dyn_out(c, rank, dims, err, &o);
}

/* A constant int64 vector input (a shape, repeats or split sizes). */
static sg_status int_vector(ox_ctx *c, size_t k, const char *what, sg_err *err, int *v)
{
    int rc = ox_need_in(c, k, err, v);
    if (rc) return rc;
    const ox_value *s = &c->vals[*v];
    if (!s->is_const || s->dtype != OX_INT64 || s->rank != 1)
        return ox_node_err(c, err, SG_EINPUT, "%s (input %zu) must be a constant int64 vector",
                           what, k);
    return SG_OK;
}

/* The shape vector value s of an Expand or ConstantOfShape into sh (*k elements): the batch
   size from a Shape node (*bm) may be its first element only, and a shape has at most
   OX_MAX_RANK elements, one more with the batch or for rows (rows: an Expand of rows). */
static sg_status batch_shape(ox_ctx *c, int s, bool rows, int64_t *sh, int64_t *k, uint64_t *bm,
                             sg_err *err)
{
    const ox_value *vs = &c->vals[s];
    *k = vs->count;
    *bm = vs->batch_mask;
    if (*k > OX_MAX_RANK + (*bm || rows ? 1 : 0))
        return ox_node_err(c, err, SG_EINPUT, "shape has %lld elements", (long long)*k);
    if (*bm & ~(uint64_t)1)
        return ox_batch_err(c, err,
                            "shape[%d] is the batch size (from a Shape node): only the first "
                            "dimension may be",
                            __builtin_ctzll(*bm & ~(uint64_t)1));
    if ((*bm & 1) && vs->i[0] != 1)
        return ox_batch_err(c, err,
                            "shape[0] is the batch size times %lld (from a Shape node): only "
                            "the batch size itself may be",
                            (long long)vs->i[0]);
    memcpy(sh, vs->i, (size_t)*k * sizeof *sh);
    return SG_OK;
}

/* The node's `axis` attribute (default 0) as an axis of a tensor of rank r. */
static sg_status node_axis(ox_ctx *c, int r, int64_t *axis, sg_err *err)
{
    *axis = ox_attr_i(c, "axis", 0);
    if (*axis < 0) *axis += r;
    if (*axis < 0 || *axis >= r)
        return ox_node_err(c, err, SG_EINPUT, "axis %lld out of range for rank %d",
                           (long long)ox_attr_i(c, "axis", 0), r);
    return SG_OK;
}

sg_status ox_op_transpose(ox_ctx *c, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    int64_t d[OX_MAX_RANK + 1], dims[OX_MAX_RANK + 1];
    const int r = ox_full_shape(&c->vals[x], d);
    const Onnx__AttributeProto *a = ox_attr(c, "perm");
    if (!c->vals[x].is_const) { /* rows: the batch may move (onnx_batch.c) */
        int64_t ld[OX_MAX_RANK + 1], f, perm[OX_MAX_RANK + 1];
        const int L = ox_logical_shape(&c->vals[x], ld, &f);
        if (a && a->n_ints != (size_t)L)
            return ox_node_err(c, err, SG_EINPUT, "perm has %zu entries for a tensor of rank %d",
                               a->n_ints, L);
        bool seen[OX_MAX_RANK + 1] = {false};
        for (int i = 0; i < L; i++) {
            perm[i] = a ? a->ints[i] : L - 1 - i;
            if (perm[i] < 0 || perm[i] >= L || seen[perm[i]])
                return ox_node_err(c, err, SG_EINPUT, "perm is not a permutation of 0..%d", L - 1);
            seen[perm[i]] = true;
        }
        return ox_placed_transpose(c, x, perm, err);
    }
    if (a && a->n_ints != (size_t)r)
        return ox_node_err(c, err, SG_EINPUT, "perm has %zu entries for a tensor of rank %d",
                           a->n_ints, r);
    ox_axis_map map[OX_MAX_RANK + 1];
    bool seen[OX_MAX_RANK + 1] = {false};
    for (int i = 0; i < r; i++) {
        const int64_t p = a ? a->ints[i] : r - 1 - i; /* no perm: the axes reversed */
        if (p < 0 || p >= r || seen[p])
            return ox_node_err(c, err, SG_EINPUT, "perm is not a permutation of 0..%d", r - 1);
        seen[p] = true;
        map[i] = (ox_axis_map){(int)p, 0, 1, 0};
        dims[i] = d[p];
    }
    int v;
    return view_out(c, 0, x, r, dims, map, err, &v);
}

/* Expand(x, shape) and ConstantOfShape's per-row case: numpy broadcasting of x to shape. A
   per-row x keeps its batch: the shape's element there is the batch size from a Shape node
   or 1; a constant x with a shape whose first element is the batch size gives rows of one
   constant row. */
sg_status ox_op_expand(ox_ctx *c, sg_err *err)
{
    int x, s, rc;
    if ((rc = ox_need_in(c, 0, err, &x)) || (rc = int_vector(c, 1, "shape", err, &s))) return rc;
    int64_t k, d[OX_MAX_RANK + 1], sh[OX_MAX_RANK + 1], dims[OX_MAX_RANK + 1];
    uint64_t bm;
    if ((rc = batch_shape(c, s, !c->vals[x].is_const, sh, &k, &bm, err))) return rc;
    const bool rows = !c->vals[x].is_const;
    const int xr = ox_full_shape(&c->vals[x], d);
    const int r = xr > k ? xr : (int)k;
    if ((rows || bm) && r > (rows ? xr : k))
        return ox_batch_err(c, err, "the result (rank %d) would put new axes before the batch", r);
    /* Shapes align from the right: the batch size in shape[0] meets input axis xr - k. */
    if (rows && bm && xr != k)
        return ox_batch_err(c, err,
                            "shape[0], the batch size (from a Shape node), would meet axis %d "
                            "of the input, not its batch",
                            xr - (int)k);
    ox_axis_map map[OX_MAX_RANK + 1];
    for (int i = 0; i < r; i++) {
        const int ix = i - (r - xr), is = i - (r - (int)k);
        const int64_t dx = ix >= 0 ? d[ix] : 1, ds = is >= 0 ? sh[is] : 1;
        const bool batch = (rows && ix == 0) || (bm && is == 0);
        if (batch) {
            /* the batch meets the batch, 1, or a constant's 1 */
            if (rows && !bm && is >= 0 && ds != 1)
                return ox_batch_err(c, err,
                                    "shape[%d] = %lld would fix the batch size, which is known "
                                    "only per run",
                                    is, (long long)ds);
            if (!rows && dx != 1)
                return ox_batch_err(c, err,
                                    "the constant's axis %d (of size %lld) would meet the batch: "
                                    "it must be 1",
                                    ix, (long long)dx);
            dims[i] = -1;
            map[i] = (ox_axis_map){ix, 0, rows ? 1 : 0, 0};
            continue;
        }
        if (ds < 0) return ox_node_err(c, err, SG_EINPUT, "shape[%d] = %lld", is, (long long)ds);
        if (dx != ds && dx != 1 && ds != 1) {
            char xs[160], ss[160];
            int64_t shown[OX_MAX_RANK + 1];
            memcpy(shown, sh, (size_t)k * sizeof *shown);
            if (bm) shown[0] = -1; /* the batch, as in the rows' shape */
            ox_shape_str(d, (size_t)xr, xs, sizeof xs);
            ox_shape_str(shown, (size_t)k, ss, sizeof ss);
            return ox_node_err(c, err, SG_EINPUT,
                               "%s does not broadcast to shape %s (-1: the batch)", xs, ss);
        }
        dims[i] = dx == 1 ? ds : dx;
        map[i] = (ox_axis_map){ix, 0, dx == 1 ? 0 : 1, 0};
    }
    int v;
    if (rows || !bm) return view_out(c, 0, x, r, dims, map, err, &v);
    return fill_out(c, x, r - 1, dims + 1, err);
}

/* ConstantOfShape(shape): a tensor of one value (the `value` attribute, one element; float 0
   when absent) of that shape. With the batch size from a Shape node as its first element it
   is per row: a fill step. */
sg_status ox_op_constant_of_shape(ox_ctx *c, sg_err *err)
{
    int s, rc = int_vector(c, 0, "shape", err, &s);
    if (rc) return rc;
    int64_t k, dims[OX_MAX_RANK + 1];
    uint64_t bm;
    if ((rc = batch_shape(c, s, false, dims, &k, &bm, err))) return rc;
    for (int64_t i = bm ? 1 : 0; i < k; i++)
        if (dims[i] < 0)
            return ox_node_err(c, err, SG_EINPUT, "shape[%lld] = %lld", (long long)i,
                               (long long)dims[i]);
    ox_value one = {.name = "value"};
    const Onnx__AttributeProto *a = ox_attr(c, "value");
    if (a && a->t) {
        sg_err e = {{0}};
        if ((rc = ox_tensor_read(c, a->t, &one, "the value", &e))) {
            /* said as the node's own refusal: "PATH: node ... : the value has ..." */
            const size_t n = strlen(c->path);
            const char *m = strncmp(e.msg, c->path, n) == 0 && !strncmp(e.msg + n, ": ", 2)
                                ? e.msg + n + 2
                                : e.msg;
            rc = ox_node_err(c, err, rc, "%s", m);
            goto out;
        }
        if (one.count != 1) {
            rc = ox_node_err(c, err, SG_EINPUT, "value holds %lld elements (must be one)",
                             (long long)one.count);
            goto out;
        }
    } else {
        one.is_const = true;
        one.dtype = OX_FLOAT;
        one.count = 1;
        if (!(one.f = sg_alloc_aligned(sizeof(float)))) {
            rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
            goto out;
        }
        one.f[0] = 0;
    }
    one.rank = 0;
    if (bm) {
        /* fill_out reads a constant of the table: put the value there for the call */
        int v = ox_value_add_unnamed(c, "ConstantOfShape's value", err);
        if (v < 0) {
            rc = SG_EINPUT;
            goto out;
        }
        ox_value *t = &c->vals[v];
        t->defined = t->is_const = true;
        t->dtype = one.dtype;
        t->count = 1;
        t->f = one.f; /* the table owns them now */
        t->i = one.i;
        one.f = NULL;
        one.i = NULL;
        /* A boolean per row (torch.zeros(n, 1, dtype=torch.bool), a padding mask's first
           column): a condition of that 0 or 1. */
        const bool cond = a && a->t && a->t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
        if (cond) {
            const int64_t bit = t->i[0] != 0;
            free(t->i);
            t->i = NULL;
            t->dtype = OX_FLOAT;
            if (!(t->f = sg_alloc_aligned(sizeof(float)))) {
                rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
                goto out;
            }
            t->f[0] = (float)bit;
        }
        rc = fill_out(c, v, (int)k - 1, dims + 1, err);
        if (rc == SG_OK && cond) c->vals[c->n_vals - 1].is_bool = true;
        goto out;
    }
    int v;
    if ((rc = ox_const_out(c, (int)k, dims, one.dtype, err, &v))) goto out;
    for (int64_t j = 0; j < c->vals[v].count; j++) {
        if (one.dtype == OX_FLOAT)
            c->vals[v].f[j] = one.f[0];
        else
            c->vals[v].i[j] = one.i[0];
    }
out:
    sg_free_aligned(one.f);
    free(one.i);
    return rc;
}

/* Tile(x, repeats): each axis repeated; a per-row x's batch only once. */
sg_status ox_op_tile(ox_ctx *c, sg_err *err)
{
    int x, rp, rc;
    if ((rc = ox_need_in(c, 0, err, &x)) || (rc = int_vector(c, 1, "repeats", err, &rp))) return rc;
    int64_t d[OX_MAX_RANK + 1], dims[OX_MAX_RANK + 1];
    const int r = ox_full_shape(&c->vals[x], d);
    const ox_value *vr = &c->vals[rp];
    /* (of a constant with the batch at an axis of size 1, onnx_batch.c took it as an Expand) */
    if (vr->batch_mask)
        return ox_batch_err(c, err,
                            "repeats[%d] is the batch size (from a Shape node): only a constant "
                            "of size 1 on that axis may be repeated by it",
                            __builtin_ctzll(vr->batch_mask));
    if (vr->count != r)
        return ox_node_err(c, err, SG_EINPUT, "repeats has %lld entries for a tensor of rank %d",
                           (long long)vr->count, r);
    const bool rows = !c->vals[x].is_const;
    ox_axis_map map[OX_MAX_RANK + 1];
    for (int i = 0; i < r; i++) {
        const int64_t n = vr->i[i];
        if (rows && i == 0) {
            if (n != 1)
                return ox_batch_err(c, err, "repeats[0] = %lld would repeat the batch",
                                    (long long)n);
            dims[0] = -1;
            map[0] = (ox_axis_map){0, 0, 1, 0};
            continue;
        }
        if (n < 0 || (d[i] && n > OX_MAX_ELEMS / d[i]))
            return ox_node_err(c, err, SG_EINPUT, "repeats[%d] = %lld", i, (long long)n);
        dims[i] = d[i] * n;
        map[i] = (ox_axis_map){i, 0, 1, d[i]};
    }
    int v;
    return view_out(c, 0, x, r, dims, map, err, &v);
}

/* Split(x) along an axis into the node's outputs: sizes from the `split` attribute (before
   opset 13) or input (13 on), else equal parts. A per-row x is not split along the batch. */
sg_status ox_op_split(ox_ctx *c, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    int64_t d[OX_MAX_RANK + 1];
    const int r = ox_full_shape(&c->vals[x], d);
    int64_t axis;
    if ((rc = node_axis(c, r, &axis, err))) return rc;
    if (!c->vals[x].is_const && axis == 0)
        return ox_batch_err(c, err, "splitting along the batch (axis 0) is not supported");
    const size_t n = c->node->n_output;
    if (n < 1 || n > 4096) return ox_node_err(c, err, SG_EINPUT, "%zu outputs", n);
    int64_t *size = malloc(n * sizeof *size);
    if (!size) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    const Onnx__AttributeProto *a = ox_attr(c, "split");
    const int64_t *given = NULL;
    size_t n_given = 0;
    if (a) {
        given = a->ints;
        n_given = a->n_ints;
    } else if (c->opset >= 13 && ox_in(c, 1) >= 0) {
        int sv;
        if ((rc = int_vector(c, 1, "split", err, &sv))) goto out;
        given = c->vals[sv].i;
        n_given = (size_t)c->vals[sv].count;
    }
    int64_t total = 0;
    if (given) {
        if (n_given != n) {
            rc = ox_node_err(c, err, SG_EINPUT, "split has %zu sizes for %zu outputs", n_given, n);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            if (given[i] < 0 || given[i] > d[axis]) {
                rc = ox_node_err(c, err, SG_EINPUT, "split[%zu] = %lld", i, (long long)given[i]);
                goto out;
            }
            size[i] = given[i];
            total += given[i];
        }
    } else {
        if (d[axis] % (int64_t)n) {
            rc = ox_node_err(c, err, SG_EINPUT,
                             "axis %lld of size %lld does not split into %zu "
                             "equal parts",
                             (long long)axis, (long long)d[axis], n);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            size[i] = d[axis] / (int64_t)n;
        total = d[axis];
    }
    if (total != d[axis]) {
        rc = ox_node_err(c, err, SG_EINPUT, "split sizes add up to %lld, axis %lld has %lld",
                         (long long)total, (long long)axis, (long long)d[axis]);
        goto out;
    }
    int64_t at = 0;
    for (size_t k = 0; k < n && rc == SG_OK; k++) {
        int64_t dims[OX_MAX_RANK + 1];
        ox_axis_map map[OX_MAX_RANK + 1];
        for (int i = 0; i < r; i++) {
            dims[i] = d[i];
            map[i] = (ox_axis_map){i, i == axis ? at : 0, 1, 0};
        }
        dims[axis] = size[k];
        at += size[k];
        if (!c->node->output[k] || !c->node->output[k][0]) continue; /* an omitted output */
        if (!c->vals[x].is_const && size[k] == 0) {
            /* rows of no values: fine while nothing reads them (it is never made) */
            const int used = ox_consumed(c, c->node->output[k]);
            if (used < 0) {
                rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
                break;
            }
            if (!used) continue;
        }
        int v;
        rc = view_out(c, k, x, r, dims, map, err, &v);
    }
out:
    free(size);
    return rc;
}

/* A per-row value x expanded to rows of shape (rank, dims) as an unnamed value (*out), for a
   binary node whose other input is wider along some axis. */
sg_status ox_expand_row(ox_ctx *c, int x, int rank, const int64_t *dims_in, sg_err *err, int *out)
{
    const ox_value *vx = &c->vals[x];
    if (vx->is_const || vx->rank != rank)
        return ox_node_err(c, err, SG_EINTERNAL, "expanding '%.100s': not rows of rank %d",
                           vx->name, rank);
    int64_t dims[OX_MAX_RANK + 1];
    ox_axis_map map[OX_MAX_RANK + 1];
    dims[0] = -1;
    map[0] = (ox_axis_map){0, 0, 1, 0};
    for (int i = 0; i < rank; i++) {
        dims[i + 1] = dims_in[i];
        map[i + 1] = (ox_axis_map){i + 1, 0, vx->dims[i] == 1 && dims_in[i] != 1 ? 0 : 1, 0};
    }
    const char *saved = c->partial;
    c->partial = "a row broadcast to the other input's shape";
    int rc = view_out(c, 0, x, rank + 1, dims, map, err, out);
    c->partial = saved;
    return rc;
}

/* Value x with its full axes in the order perm (perm[0] = 0 for rows), as output 0 of the
   node, or an unnamed value called label when label is not NULL. */
static sg_status permute_k(ox_ctx *c, size_t k, int x, const int *perm, const char *label,
                           sg_err *err, int *out);

sg_status ox_permute(ox_ctx *c, int x, const int *perm, const char *label, sg_err *err, int *out)
{
    return permute_k(c, 0, x, perm, label, err, out);
}

sg_status ox_permute_k(ox_ctx *c, size_t k, int x, const int *perm, sg_err *err, int *out)
{
    return permute_k(c, k, x, perm, NULL, err, out);
}

static sg_status permute_k(ox_ctx *c, size_t k, int x, const int *perm, const char *label,
                           sg_err *err, int *out)
{
    int64_t d[OX_MAX_RANK + 1], dims[OX_MAX_RANK + 1];
    const int r = ox_full_shape(&c->vals[x], d);
    ox_axis_map map[OX_MAX_RANK + 1];
    for (int i = 0; i < r; i++) {
        map[i] = (ox_axis_map){perm[i], 0, 1, 0};
        dims[i] = d[perm[i]];
    }
    const char *saved = c->partial;
    if (label) c->partial = label;
    int rc = view_out(c, k, x, r, dims, map, err, out);
    c->partial = saved;
    return rc;
}

/* Slice: on constants (shape arithmetic too: the batch size a Shape gave follows its
   element) and rows of any rank, constant starts, ends, axes and steps with ONNX's clamping,
   any step but 0. Of a per-row tensor the batch axis is taken whole. */
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
        if (!v->is_const || v->dtype != OX_INT64 || v->batch_mask)
            return ox_node_err(c, err, SG_EINPUT, "%s must be a constant int64 tensor", name);
        src = v->i;
        cnt = (size_t)v->count;
    }
    if (cnt > OX_MAX_RANK + 1)
        return ox_node_err(c, err, SG_EINPUT, "%s has %zu entries", name, cnt);
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

sg_status ox_op_slice(ox_ctx *c, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    enum { N = OX_MAX_RANK + 1 };
    int64_t starts[N], ends[N], axes[N], steps[N], d[N], dims[N];
    int ns, ne, na, nst;
    if ((rc = slice_arg(c, "starts", 1, starts, &ns, err)) ||
        (rc = slice_arg(c, "ends", 2, ends, &ne, err)) ||
        (rc = slice_arg(c, "axes", 3, axes, &na, err)) ||
        (rc = slice_arg(c, "steps", 4, steps, &nst, err)))
        return rc;
    if (ns < 1 || ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return ox_node_err(c, err, SG_EINPUT,
                           "starts, ends, axes and steps must have the same number of entries");
    const bool rows = !c->vals[x].is_const;
    const int r = ox_full_shape(&c->vals[x], d);
    ox_axis_map map[N];
    for (int i = 0; i < r; i++) {
        map[i] = (ox_axis_map){i, 0, 1, 0};
        dims[i] = d[i];
    }
    bool seen[N] = {false};
    for (int k = 0; k < ns; k++) {
        const int64_t a0 = na >= 0 ? axes[k] : k, a = a0 < 0 ? a0 + r : a0;
        const int64_t step = nst >= 0 ? steps[k] : 1;
        if (a < 0 || a >= r || seen[a])
            return ox_node_err(c, err, SG_EINPUT, "axis %lld is out of range or repeated",
                               (long long)a0);
        seen[a] = true;
        if (step == 0) return ox_node_err(c, err, SG_EINPUT, "a step is 0");
        if (rows && a == 0) {
            if (step != 1 || starts[k] > 0 || (starts[k] < 0 && starts[k] > INT32_MIN) ||
                ends[k] < INT32_MAX)
                return ox_node_err(c, err, SG_EINPUT,
                                   "slicing the batch axis is not supported (only all rows)");
            continue;
        }
        const int64_t lo = slice_bound(starts[k], d[a], step, false),
                      hi = slice_bound(ends[k], d[a], step, true);
        int64_t m = 0;
        /* ceil((hi - lo) / step) without overflow: a step near +-2^63 is legal (it takes one
           element), and step - 1 or -step overflowed int64. lo and hi are within [-1, d]. */
        if (step > 0 && hi > lo) m = 1 + (hi - lo - 1) / step;
        if (step < 0 && lo > hi) m = 1 + (int64_t)((uint64_t)(lo - hi - 1) / (0 - (uint64_t)step));
        if (m < 1 && rows)
            return ox_node_err(c, err, SG_EINPUT,
                               "the slice selects no column (nothing along axis %lld)",
                               (long long)a);
        dims[a] = m;
        map[a] = (ox_axis_map){(int)a, lo, m > 1 ? step : 1, 0};
    }
    int v;
    return view_out(c, 0, x, r, dims, map, err, &v);
}

/* Gather(x, indices) along an axis, the indices constant: on a constant it folds (a shape's
   elements picked, the batch size a Shape gave following its element); on rows, along any
   axis but the batch, it is a gather step (x[:, :, 1] in PyTorch). Indices computed per row
   (an embedding lookup) are not supported. */
/* Gather of a constant table along its axis 0 by integer rows (nn.Embedding of a categorical
   feature, x[:, k].long()): one step copying, per index, that row of the table. */
static sg_status embed(ox_ctx *c, int x, int ix, sg_err *err)
{
    const ox_value *vx = &c->vals[x], *vi = &c->vals[ix];
    if (!vx->is_const || vx->dtype != OX_FLOAT || vx->rank < 1)
        return ox_node_err(c, err, SG_EINPUT,
                           "indices computed per row gather only from a constant float table "
                           "(an embedding)");
    if (!vi->is_int)
        return ox_node_err(c, err, SG_EINPUT,
                           "indices ('%.100s') are computed per row and are not integers (an "
                           "embedding's indices are integer rows: a Cast to int64)",
                           vi->name);
    if (ox_attr_i(c, "axis", 0) != 0)
        return ox_node_err(c, err, SG_EINPUT,
                           "indices computed per row gather along the table's axis 0 only");
    const int64_t rows = vx->dims[0], e = rows ? vx->count / rows : 0;
    if (rows < 1 || e < 1 || vi->count > OX_MAX_WIDTH / e || vi->rank + vx->rank - 1 > OX_MAX_RANK)
        return ox_node_err(c, err, SG_EINPUT,
                           "a table of %lld rows of %lld values for %lld indices", (long long)rows,
                           (long long)e, (long long)vi->count);
    int64_t dims[OX_MAX_RANK];
    int r = 0;
    for (int i = 0; i < vi->rank; i++)
        dims[r++] = vi->dims[i];
    for (int i = 1; i < vx->rank; i++)
        dims[r++] = vx->dims[i];
    sg_onnx_step *st = ox_step_new(c, SG_OX_EMBED, err);
    if (!st) return SG_ENOMEM;
    if (!(st->W = sg_alloc_aligned((size_t)vx->count * sizeof(float))))
        return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    memcpy(st->W, vx->f, (size_t)vx->count * sizeof(float));
    st->emb_rows = (int)rows;
    st->in = vi->data;
    st->in_width = (int)vi->count;
    st->width = (int)(vi->count * e);
    int v;
    return ox_dyn_out(c, r, dims, err, &v);
}

sg_status ox_op_gather(ox_ctx *c, sg_err *err)
{
    int x, ix, rc;
    if ((rc = ox_need_in(c, 0, err, &x)) || (rc = ox_need_in(c, 1, err, &ix))) return rc;
    if (!c->vals[ix].is_const) return embed(c, x, ix, err);
    const ox_value *vi = &c->vals[ix];
    if (!vi->is_const || vi->dtype != OX_INT64 || vi->batch_mask)
        return ox_node_err(c, err, SG_EINPUT,
                           "indices must be a constant int64 tensor (indices computed per row, "
                           "an embedding lookup, are not supported)");
    const bool rows = !c->vals[x].is_const;
    int64_t d[OX_MAX_RANK + 1], dims[OX_MAX_RANK + 2];
    const int r = ox_full_shape(&c->vals[x], d);
    int64_t axis;
    if ((rc = node_axis(c, r, &axis, err))) return rc;
    if (rows && axis == 0)
        return ox_node_err(c, err, SG_EINPUT,
                           "Gather along the batch (axis 0) of rows is not supported");
    const int q = vi->rank, ro = r - 1 + q;
    if (ro > OX_MAX_RANK + (rows ? 1 : 0))
        return ox_node_err(c, err, SG_EINPUT, "the result would have rank %d", ro);
    for (int64_t k = 0; k < vi->count; k++)
        if (vi->i[k] < -d[axis] || vi->i[k] >= d[axis])
            return ox_node_err(c, err, SG_EINPUT, "index %lld out of range for %lld values",
                               (long long)vi->i[k], (long long)d[axis]);
    int n = 0;
    for (int i = 0; i < axis; i++)
        dims[n++] = d[i];
    for (int i = 0; i < q; i++)
        dims[n++] = vi->dims[i];
    for (int i = (int)axis + 1; i < r; i++)
        dims[n++] = d[i];
    /* Elements of x after the axis, and the axis' own stride. */
    int64_t inner = 1;
    for (int i = (int)axis + 1; i < r; i++)
        inner *= d[i];
    const int64_t outer_from = rows ? 1 : 0;
    int64_t outer = 1, out_count = 1;
    for (int i = (int)outer_from; i < axis; i++)
        outer *= d[i];
    for (int i = (int)outer_from; i < ro; i++) {
        if (dims[i] < 0 || (dims[i] && out_count > OX_MAX_ELEMS / dims[i]))
            return ox_node_err(c, err, SG_EINPUT, "the result would be too large");
        out_count *= dims[i];
    }
    if (rows && (out_count < 1 || out_count > OX_MAX_WIDTH))
        return ox_node_err(c, err, SG_EINPUT, "a row of %lld values (must be 1..%d)",
                           (long long)out_count, OX_MAX_WIDTH);
    /* out element (o, k, j) reads x element (o, index[k], j). */
    int64_t *src = malloc((size_t)(out_count ? out_count : 1) * sizeof *src);
    if (!src) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    vi = &c->vals[ix];
    int64_t j = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < vi->count; k++) {
            const int64_t at = vi->i[k] < 0 ? vi->i[k] + d[axis] : vi->i[k];
            for (int64_t e = 0; e < inner; e++)
                src[j++] = (o * d[axis] + at) * inner + e;
        }
    int v;
    if (rows) {
        sg_onnx_step *st = ox_step_new(c, SG_OX_GATHER, err);
        int *cols = st ? malloc((size_t)out_count * sizeof *cols) : NULL;
        if (!cols) {
            free(src);
            return st ? sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path) : SG_ENOMEM;
        }
        for (int64_t k = 0; k < out_count; k++)
            cols[k] = (int)src[k];
        free(src);
        st->cols = cols;
        st->in = c->vals[x].data;
        st->in_width = (int)c->vals[x].count;
        st->width = (int)out_count;
        /* (what the elements are, a condition or integers, keep_kind carries over) */
        return ox_dyn_out(c, ro - 1, dims + 1, err, &v);
    }
    const int dtype = c->vals[x].dtype;
    if ((rc = ox_const_out(c, ro, dims, dtype, err, &v))) {
        free(src);
        return rc;
    }
    const ox_value *vx = &c->vals[x];
    ox_value *ov = &c->vals[v];
    uint64_t mask = 0;
    for (int64_t k = 0; k < out_count; k++) {
        if (dtype == OX_FLOAT)
            ov->f[k] = vx->f[src[k]];
        else
            ov->i[k] = vx->i[src[k]];
        if (src[k] < 64 && (vx->batch_mask >> src[k] & 1)) {
            if (k >= 64) {
                free(src);
                return ox_node_err(c, err, SG_EINPUT,
                                   "the batch size (from a Shape node) gathered past element 63");
            }
            mask |= (uint64_t)1 << k;
        }
    }
    ov->batch_mask = mask;
    free(src);
    return SG_OK;
}
