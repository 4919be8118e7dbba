/*
 * Nodes that pick by indices computed per row, and Range:
 *   - GatherElements of rows by integer rows of the same rank (torch.gather: sparsemax's
 *     threshold, a mixture of experts' chosen outputs): a step reading, for each output
 *     element, the data element its index selects along the axis; an index outside the axis
 *     gives NaN, which the output check refuses. Of constants folded.
 *   - OneHot of integer (or float, cut toward zero) rows: a step writing on where the index
 *     equals the position along the new axis (a negative index counts from the end), off
 *     elsewhere. Of constants folded.
 *   - Range of constants: folded.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

static sg_status axis_attr(ox_ctx *c, int r, int64_t dflt, int64_t *axis, sg_err *err)
{
    const int64_t a = ox_attr_i(c, "axis", dflt);
    *axis = a < 0 ? a + r : a;
    if (*axis < 0 || *axis >= r)
        return ox_node_err(c, err, SG_EINPUT, "axis %lld is out of range for rank %d", (long long)a,
                           r);
    return SG_OK;
}

sg_status ox_op_gather_elements(ox_ctx *c, sg_err *err)
{
    int x, ix, rc;
    if ((rc = ox_need_in(c, 0, err, &x)) || (rc = ox_need_in(c, 1, err, &ix))) return rc;
    const ox_value *vx = &c->vals[x], *vi = &c->vals[ix];
    if (vx->is_const != vi->is_const)
        return ox_node_err(c, err, SG_EINPUT,
                           "%s data with %s indices: supported are both per row or both "
                           "constants",
                           vx->is_const ? "constant" : "per-row",
                           vi->is_const ? "constant" : "per-row");
    const bool rows = !vx->is_const;
    if (rows && !vi->is_int)
        return ox_node_err(c, err, SG_EINPUT,
                           "indices ('%.100s') are computed per row and are not integers",
                           vi->name);
    if (!rows && (vi->dtype != OX_INT64 || vi->batch_mask))
        return ox_node_err(c, err, SG_EINPUT, "indices must be an int64 tensor");
    int64_t d[OX_MAX_RANK + 1], id[OX_MAX_RANK + 1];
    const int r = ox_full_shape(vx, d), ri = ox_full_shape(vi, id);
    if (ri != r)
        return ox_node_err(c, err, SG_EINPUT, "indices of rank %d for data of rank %d", ri, r);
    int64_t axis;
    if ((rc = axis_attr(c, r, 0, &axis, err))) return rc;
    if (rows && axis == 0)
        return ox_node_err(c, err, SG_EINPUT,
                           "axis 0 is the batch: picking across rows is not supported");
    for (int i = rows ? 1 : 0; i < r; i++)
        if (i != axis && id[i] > d[i])
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match: indices axis %d has %lld values, the "
                               "data's %lld",
                               i, (long long)id[i], (long long)d[i]);
    /* strides of the data, and each output element's offset with its index 0 */
    int64_t st[OX_MAX_RANK + 1], n = 1;
    st[r - 1] = 1;
    for (int i = r - 1; i > 0; i--)
        st[i - 1] = st[i] * d[i];
    const int first = rows ? 1 : 0;
    for (int i = first; i < r; i++)
        n *= id[i];
    int *cols = malloc((size_t)(n ? n : 1) * sizeof *cols);
    if (!cols) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t e = 0; e < n; e++) {
        int64_t q = e, off = 0;
        for (int i = r - 1; i >= first; i--) {
            const int64_t p = q % id[i];
            q /= id[i];
            if (i != axis) off += p * st[i];
        }
        cols[e] = (int)off;
    }
    int v;
    if (rows) {
        sg_onnx_step *s = ox_step_new(c, SG_OX_GATHER_ROWS, err);
        if (!s) {
            free(cols);
            return SG_ENOMEM;
        }
        s->cols = cols;
        s->a = (sg_onnx_arg){.kind = SG_OXA_ROW, .buf = c->vals[x].data};
        s->bb = (sg_onnx_arg){.kind = SG_OXA_ROW, .buf = c->vals[ix].data};
        s->in = c->vals[x].data;
        s->in_width = (int)c->vals[x].count;
        s->width = (int)n;
        s->sel_stride = (int)st[axis];
        s->sel_len = (int)d[axis];
        const bool is_int = c->vals[x].is_int, is_bool = c->vals[x].is_bool;
        const int64_t bound = c->vals[x].int_bound;
        if ((rc = ox_dyn_out(c, r - 1, id + 1, err, &v))) return rc;
        c->vals[v].is_int = is_int;
        c->vals[v].is_bool = is_bool;
        c->vals[v].int_bound = bound;
        return SG_OK;
    }
    rc = ox_const_out(c, r, id, vx->dtype, err, &v);
    if (rc) {
        free(cols);
        return rc;
    }
    vx = &c->vals[x];
    vi = &c->vals[ix];
    for (int64_t e = 0; e < n; e++) {
        int64_t k = vi->i[e];
        if (k < -d[axis] || k >= d[axis]) {
            free(cols);
            return ox_node_err(c, err, SG_EINPUT, "index %lld out of range for %lld values",
                               (long long)vi->i[e], (long long)d[axis]);
        }
        if (k < 0) k += d[axis];
        const int64_t at = cols[e] + k * st[axis];
        if (vx->dtype == OX_FLOAT)
            c->vals[v].f[e] = vx->f[at];
        else
            c->vals[v].i[e] = vx->i[at];
    }
    free(cols);
    return SG_OK;
}

sg_status ox_op_onehot(ox_ctx *c, sg_err *err)
{
    int x, di, vi, rc;
    if ((rc = ox_need_in(c, 0, err, &x)) || (rc = ox_need_in(c, 1, err, &di)) ||
        (rc = ox_need_in(c, 2, err, &vi)))
        return rc;
    const ox_value *dv = &c->vals[di], *vv = &c->vals[vi];
    if (!dv->is_const || dv->count != 1 || dv->batch_mask)
        return ox_node_err(c, err, SG_EINPUT, "depth (input 1) must be one constant");
    const double depth_d = dv->dtype == OX_FLOAT ? floor(dv->f[0]) : (double)dv->i[0];
    if (!(depth_d >= 1 && depth_d <= OX_MAX_WIDTH))
        return ox_node_err(c, err, SG_EINPUT, "depth %g (must be 1..%d)", depth_d, OX_MAX_WIDTH);
    const int64_t depth = (int64_t)depth_d;
    if (!vv->is_const || vv->count != 2)
        return ox_node_err(c, err, SG_EINPUT,
                           "values (input 2) must be a constant [off, on] of two values");
    const float off = vv->dtype == OX_FLOAT ? vv->f[0] : (float)vv->i[0],
                on = vv->dtype == OX_FLOAT ? vv->f[1] : (float)vv->i[1];
    if (vv->dtype != OX_FLOAT && (llabs(vv->i[0]) > OX_MAX_EXACT || llabs(vv->i[1]) > OX_MAX_EXACT))
        return ox_node_err(c, err, SG_EINPUT, "values beyond 2^24 are not supported");
    const ox_value *vx = &c->vals[x];
    const bool rows = !vx->is_const;
    int64_t d[OX_MAX_RANK + 1];
    const int r = ox_full_shape(vx, d);
    if (r + 1 > OX_MAX_RANK + (rows ? 1 : 0))
        return ox_node_err(c, err, SG_EINPUT, "the result would have rank %d", r + 1);
    int64_t axis;
    if ((rc = axis_attr(c, r + 1, -1, &axis, err))) return rc;
    if (rows && axis == 0) return ox_node_err(c, err, SG_EINPUT, "axis 0 would be the batch's");
    /* computed with the new axis last, then moved to `axis` */
    int64_t od[OX_MAX_RANK + 2];
    memcpy(od, d, (size_t)r * sizeof od[0]);
    od[r] = depth;
    int perm[OX_MAX_RANK + 2];
    for (int i = 0, q = 0; i <= r; i++)
        perm[i] = i == axis ? r : q++;
    const bool moved = axis != r;
    const char *saved = c->partial;
    int v;
    if (rows) {
        if (vx->is_bool || vx->is_double)
            return ox_node_err(c, err, SG_EINPUT, "indices must be integers or floats");
        if (vx->count * depth > OX_MAX_WIDTH)
            return ox_node_err(c, err, SG_EINPUT, "a row of %lld values (at most %d)",
                               (long long)(vx->count * depth), OX_MAX_WIDTH);
        sg_onnx_step *s = ox_step_new(c, SG_OX_ONEHOT, err);
        if (!s) return SG_ENOMEM;
        s->in = vx->data;
        s->in_width = (int)vx->count;
        s->width = (int)(vx->count * depth);
        s->sel_len = (int)depth;
        s->alpha = off;
        s->beta = on;
        c->partial = moved ? "the one-hot rows, new axis last" : NULL;
        rc = ox_dyn_out(c, r, od + 1, err, &v);
        c->partial = saved;
    } else {
        if ((double)vx->count * (double)depth > (double)(OX_MAX_FOLDED / sizeof(float)))
            return ox_node_err(c, err, SG_EINPUT, "the result is too large to fold");
        c->partial = moved ? "the one-hot values, new axis last" : NULL;
        rc = ox_const_out(c, r + 1, od, vv->dtype, err, &v);
        c->partial = saved;
        if (rc) return rc;
        vx = &c->vals[x];
        vv = &c->vals[vi];
        for (int64_t i = 0; i < vx->count; i++) {
            const double t = vx->dtype == OX_FLOAT ? trunc(vx->f[i]) : (double)vx->i[i];
            for (int64_t k = 0; k < depth; k++) {
                const bool hot = t == (double)k || t == (double)(k - depth);
                if (vv->dtype == OX_FLOAT)
                    c->vals[v].f[i * depth + k] = hot ? on : off;
                else
                    c->vals[v].i[i * depth + k] = hot ? vv->i[1] : vv->i[0];
            }
        }
    }
    if (rc || !moved) return rc;
    int z;
    return ox_permute(c, v, perm, NULL, err, &z);
}

sg_status ox_op_range(ox_ctx *c, sg_err *err)
{
    int in[3], rc;
    for (size_t k = 0; k < 3; k++) {
        if ((rc = ox_need_in(c, k, err, &in[k]))) return rc;
        const ox_value *v = &c->vals[in[k]];
        if (!v->is_const || v->count != 1 || v->batch_mask)
            return ox_node_err(c, err, SG_EINPUT,
                               "start, limit and delta must be constants of one value (input "
                               "%zu is not)",
                               k);
    }
    const ox_value *s = &c->vals[in[0]], *l = &c->vals[in[1]], *dl = &c->vals[in[2]];
    const bool fl = s->dtype == OX_FLOAT;
    if (l->dtype != s->dtype || dl->dtype != s->dtype)
        return ox_node_err(c, err, SG_EINPUT, "start, limit and delta differ in type");
    const double a = fl ? s->f[0] : (double)s->i[0], b = fl ? l->f[0] : (double)l->i[0],
                 st = fl ? dl->f[0] : (double)dl->i[0];
    if (st == 0 || !isfinite(a) || !isfinite(b) || !isfinite(st))
        return ox_node_err(c, err, SG_EINPUT, "delta is 0, or a bound is not finite");
    const double nn = ceil((b - a) / st);
    const int64_t n = nn > 0 ? (int64_t)nn : 0;
    if (n > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "a range of %lld values", (long long)n);
    int v;
    if ((rc = ox_const_out(c, 1, &n, s->dtype, err, &v))) return rc;
    s = &c->vals[in[0]];
    dl = &c->vals[in[2]];
    for (int64_t i = 0; i < n; i++)
        if (fl) {
            c->vals[v].f[i] = s->f[0] + (float)i * dl->f[0];
        } else {
            int64_t step, at;
            if (__builtin_mul_overflow(i, dl->i[0], &step) ||
                __builtin_add_overflow(s->i[0], step, &at))
                return ox_node_err(c, err, SG_EINPUT, "int64 overflow in the range");
            c->vals[v].i[i] = at;
        }
    return SG_OK;
}

/* EyeLike of a constant matrix: folded (of rows it would differ from row to row). */
sg_status ox_op_eyelike(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if ((rc = ox_need_in(c, 0, err, &x))) return rc;
    const ox_value *vx = &c->vals[x];
    if (!vx->is_const)
        return ox_node_err(c, err, SG_EINPUT,
                           "EyeLike of rows: the batch would be one of its two axes, and each "
                           "row would differ");
    if (vx->rank != 2)
        return ox_node_err(c, err, SG_EINPUT, "input of rank %d (2 is needed)", vx->rank);
    const int64_t dt = ox_attr_i(c, "dtype", vx->dtype == OX_FLOAT ? 1 : 7),
                  k = ox_attr_i(c, "k", 0);
    if (dt != 1 && dt != 7)
        return ox_node_err(c, err, SG_EINPUT, "dtype %s (%lld): float or int64 are supported",
                           ox_type_name(dt), (long long)dt);
    int64_t dims[2] = {vx->dims[0], vx->dims[1]};
    int v;
    if ((rc = ox_const_out(c, 2, dims, dt == 1 ? OX_FLOAT : OX_INT64, err, &v))) return rc;
    for (int64_t i = 0; i < dims[0]; i++)
        for (int64_t j = 0; j < dims[1]; j++)
            if (dt == 1)
                c->vals[v].f[i * dims[1] + j] = j - i == k ? 1.0f : 0.0f;
            else
                c->vals[v].i[i * dims[1] + j] = j - i == k;
    return SG_OK;
}

/* Size of a constant: folded. Of rows it is the batch size times the row's, known per run
   only. */
sg_status ox_op_size(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if ((rc = ox_need_in(c, 0, err, &x))) return rc;
    if (!c->vals[x].is_const)
        return ox_node_err(c, err, SG_EINPUT,
                           "Size of rows is the batch size times %lld, known only per run",
                           (long long)c->vals[x].count);
    const int64_t n = c->vals[x].count;
    int v;
    if ((rc = ox_const_out(c, 0, NULL, OX_INT64, err, &v))) return rc;
    c->vals[v].i[0] = n;
    return SG_OK;
}
