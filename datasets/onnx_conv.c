/*
 * Convolutions and pooling over rows [C, D1, ..., DS] (1 to 3 spatial axes), compiled into
 * the steps the other nodes use:
 *   - Conv: a gather step lays each row out as its windows ([P, C, K], P output positions,
 *     K kernel taps; taps in the padding read 0), a GEMM step multiplies each window by the
 *     kernels (one GEMM per group, a stack of weight matrices, when group > 1), and a gather
 *     step moves the channels first again ([M, O1, ..., OS]);
 *   - MaxPool and AveragePool: a gather step lays each row out as [C, P, K] (padding reads
 *     -inf for the maximum, 0 for the sum) and a reduction step takes each window's maximum,
 *     or its sum divided by the window's count (a division step);
 *   - GlobalAveragePool and GlobalMaxPool: a reduction over the spatial axes.
 * The output sizes, padding (explicit or auto_pad), strides, dilations and ceil_mode follow
 * ONNX; a window that would start in the right padding under ceil_mode is dropped, as
 * PyTorch and ONNX Runtime do.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

typedef struct {
    int S;     /* spatial axes */
    int64_t C; /* channels */
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
    int64_t P, K; /* output positions, taps per window */
} ox_window;

/* An ints attribute of S values, or dflt for each when absent. */
static sg_status ints_attr(ox_ctx *c, const char *name, int n, int64_t dflt, int64_t *out,
                           sg_err *err)
{
    const Onnx__AttributeProto *a = ox_attr(c, name);
    if (!a || a->n_ints == 0) {
        for (int i = 0; i < n; i++)
            out[i] = dflt;
        return SG_OK;
    }
    if (a->n_ints != (size_t)n)
        return ox_node_err(c, err, SG_EINPUT, "attribute '%s' has %zu values, expected %d", name,
                           a->n_ints, n);
    for (int i = 0; i < n; i++)
        out[i] = a->ints[i];
    return SG_OK;
}

/* The window geometry of per-row x for kernel sizes k (S of them, already set in w->k). */
static sg_status window_shape(ox_ctx *c, const ox_value *vx, bool ceil_mode, ox_window *w,
                              sg_err *err)
{
    const int S = w->S;
    w->C = vx->dims[0];
    int rc;
    int64_t pads[6];
    if ((rc = ints_attr(c, "strides", S, 1, w->s, err)) ||
        (rc = ints_attr(c, "dilations", S, 1, w->d, err)) ||
        (rc = ints_attr(c, "pads", 2 * S, 0, pads, err)))
        return rc;
    const Onnx__AttributeProto *ap = ox_attr(c, "auto_pad");
    char mode[16] = "NOTSET";
    if (ap && ap->s.data && ap->s.len > 0 && ap->s.len < sizeof mode) {
        memcpy(mode, ap->s.data, ap->s.len);
        mode[ap->s.len] = 0;
    } else if (ap && ap->s.len >= sizeof mode) {
        return ox_node_err(c, err, SG_EINPUT,
                           "auto_pad is not NOTSET, SAME_UPPER, SAME_LOWER or "
                           "VALID");
    }
    const bool same = !strcmp(mode, "SAME_UPPER") || !strcmp(mode, "SAME_LOWER");
    if (!same && strcmp(mode, "NOTSET") && strcmp(mode, "VALID"))
        return ox_node_err(c, err, SG_EINPUT,
                           "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", mode);
    w->P = 1;
    w->K = 1;
    for (int i = 0; i < S; i++) {
        w->in[i] = vx->dims[1 + i];
        if (w->k[i] < 1 || w->s[i] < 1 || w->d[i] < 1 || w->k[i] > OX_MAX_WIDTH ||
            w->s[i] > OX_MAX_WIDTH || w->d[i] > OX_MAX_WIDTH)
            return ox_node_err(c, err, SG_EINPUT,
                               "axis %d: kernel %lld, stride %lld, dilation %lld (each must be "
                               "at least 1)",
                               i, (long long)w->k[i], (long long)w->s[i], (long long)w->d[i]);
        const int64_t span = (w->k[i] - 1) * w->d[i] + 1;
        if (same) {
            w->out[i] = (w->in[i] + w->s[i] - 1) / w->s[i];
            int64_t total = (w->out[i] - 1) * w->s[i] + span - w->in[i];
            if (total < 0) total = 0;
            w->pb[i] = mode[5] == 'U' ? total / 2 : total - total / 2;
            w->pe[i] = total - w->pb[i];
        } else {
            w->pb[i] = strcmp(mode, "VALID") ? pads[i] : 0;
            w->pe[i] = strcmp(mode, "VALID") ? pads[S + i] : 0;
            if (w->pb[i] < 0 || w->pe[i] < 0 || w->pb[i] > OX_MAX_WIDTH || w->pe[i] > OX_MAX_WIDTH)
                return ox_node_err(c, err, SG_EINPUT, "axis %d: pads %lld and %lld", i,
                                   (long long)w->pb[i], (long long)w->pe[i]);
            const int64_t room = w->in[i] + w->pb[i] + w->pe[i] - span;
            if (room < 0)
                return ox_node_err(c, err, SG_EINPUT,
                                   "shape does not match the data: axis %d of %lld values "
                                   "(padded to %lld) is shorter than the kernel's span %lld",
                                   i, (long long)w->in[i],
                                   (long long)(w->in[i] + w->pb[i] + w->pe[i]), (long long)span);
            /* (auto_pad VALID: floor, ceil_mode or not, as ONNX states) */
            const bool up = ceil_mode && strcmp(mode, "VALID");
            w->out[i] = (up ? (room + w->s[i] - 1) / w->s[i] : room / w->s[i]) + 1;
            /* the last window must start inside the input or its left padding */
            if (up && (w->out[i] - 1) * w->s[i] >= w->in[i] + w->pb[i]) w->out[i]--;
        }
        w->P *= w->out[i];
        w->K *= w->k[i];
        if (w->P > OX_MAX_WIDTH || w->K > OX_MAX_WIDTH)
            return ox_node_err(c, err, SG_EINPUT, "windows too large");
    }
    if (w->C * w->P * w->K > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "the windows of a row hold %lld values (at most %d)",
                           (long long)(w->C * w->P * w->K), OX_MAX_WIDTH);
    return SG_OK;
}

/* Where tap t of the window at output position p reads channel ch: the element's index in
   the row, or -1 in the padding. */
static int tap_source(const ox_window *w, int64_t ch, int64_t p, int64_t t)
{
    int64_t src = ch, pos[3], tap[3];
    for (int i = w->S - 1; i >= 0; i--) {
        pos[i] = p % w->out[i];
        p /= w->out[i];
        tap[i] = t % w->k[i];
        t /= w->k[i];
    }
    for (int i = 0; i < w->S; i++) {
        const int64_t at = pos[i] * w->s[i] - w->pb[i] + tap[i] * w->d[i];
        if (at < 0 || at >= w->in[i]) return -1;
        src = src * w->in[i] + at;
    }
    return (int)src;
}

/* A gather step of the windows of per-row x: [P, C, K] (channels_inner) or [C, P, K], taps in
   the padding reading pad; output 0 or the partial value, of row shape (rank, dims). */
static sg_status windows(ox_ctx *c, int x, const ox_window *w, bool channels_inner, float pad,
                         int rank, const int64_t *dims, sg_err *err, int *out)
{
    const int64_t n = w->C * w->P * w->K;
    int *cols = malloc((size_t)n * sizeof *cols);
    if (!cols) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    int64_t j = 0;
    for (int64_t a = 0; a < (channels_inner ? w->P : w->C); a++)
        for (int64_t b = 0; b < (channels_inner ? w->C : w->P); b++)
            for (int64_t t = 0; t < w->K; t++)
                cols[j++] = channels_inner ? tap_source(w, b, a, t) : tap_source(w, a, b, t);
    return ox_gather_out_pad(c, 0, x, rank, dims, cols, pad, err, out);
}

static sg_status spatial_input(ox_ctx *c, const char *op, sg_err *err, int *x)
{
    int rc = ox_need_in(c, 0, err, x);
    if (rc) return rc;
    const ox_value *vx = &c->vals[*x];
    if (vx->is_const) return ox_node_err(c, err, SG_EINPUT, "constant input is not supported");
    if (vx->rank < 2 || vx->rank > 4)
        return ox_node_err(c, err, SG_EINPUT,
                           "input '%.100s' is rows of rank %d; %s needs [batch, C, D1...] with 1 "
                           "to 3 spatial axes",
                           vx->name, vx->rank, op);
    return SG_OK;
}

sg_status ox_op_conv(ox_ctx *c, sg_err *err)
{
    int x, rc, wi;
    if ((rc = spatial_input(c, "Conv", err, &x))) return rc;
    if ((rc = ox_need_in(c, 1, err, &wi))) return rc;
    const ox_value *W = &c->vals[wi], *B = NULL;
    const int S = c->vals[x].rank - 1;
    if (!W->is_const || W->dtype != OX_FLOAT || W->rank != S + 2)
        return ox_node_err(c, err, SG_EINPUT,
                           "the weight (input 1) must be a constant float tensor of rank %d "
                           "([M, C/group, kernel...])",
                           S + 2);
    for (int64_t j = 0; j < W->count; j++)
        if (!isfinite(W->f[j]))
            return ox_node_err(c, err, SG_EINPUT, "weight '%.100s' element %lld is not finite",
                               W->name, (long long)j);
    if (ox_in(c, 2) >= 0) {
        B = &c->vals[ox_in(c, 2)];
        if (!B->is_const || B->dtype != OX_FLOAT || B->count != W->dims[0])
            return ox_node_err(c, err, SG_EINPUT,
                               "the bias (input 2) must be a constant float tensor of %lld values",
                               (long long)W->dims[0]);
        for (int64_t j = 0; j < B->count; j++)
            if (!isfinite(B->f[j]))
                return ox_node_err(c, err, SG_EINPUT, "bias '%.100s' element %lld is not finite",
                                   B->name, (long long)j);
    }
    ox_window w = {.S = S};
    for (int i = 0; i < S; i++)
        w.k[i] = W->dims[2 + i];
    int64_t ks[3];
    if ((rc = ints_attr(c, "kernel_shape", S, 0, ks, err))) return rc;
    for (int i = 0; i < S; i++)
        if (ks[i] && ks[i] != w.k[i])
            return ox_node_err(c, err, SG_EINPUT, "kernel_shape[%d] is %lld, the weight's %lld", i,
                               (long long)ks[i], (long long)w.k[i]);
    if ((rc = window_shape(c, &c->vals[x], false, &w, err))) return rc;
    const int64_t G = ox_attr_i(c, "group", 1), M = W->dims[0];
    if (G < 1 || w.C % G != 0 || M % G != 0 || W->dims[1] != w.C / G)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: %lld channels, group %lld and a "
                           "weight of %lld kernels over %lld channels",
                           (long long)w.C, (long long)G, (long long)M, (long long)W->dims[1]);
    if (w.P * M > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "an output row of %lld values (at most %d)",
                           (long long)(w.P * M), OX_MAX_WIDTH);
    const int64_t Cg = w.C / G, Mg = M / G, KC = Cg * w.K;
    /* the windows, [P, G, Cg * K] */
    const char *saved = c->partial;
    c->partial = "the input's windows";
    int cols_v, gemm_v;
    const int64_t wdims[3] = {w.P, G, KC};
    rc = windows(c, x, &w, true, 0.0f, 3, wdims, err, &cols_v);
    c->partial = saved;
    if (rc) return rc;
    /* the kernels as G blocks of [Cg * K][Mg] */
    float *Wb = malloc((size_t)G * (size_t)KC * (size_t)Mg * sizeof *Wb);
    if (!Wb) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    W = &c->vals[wi];
    for (int64_t g = 0; g < G; g++)
        for (int64_t r = 0; r < KC; r++)
            for (int64_t j = 0; j < Mg; j++)
                Wb[(g * KC + r) * Mg + j] = W->f[(g * Mg + j) * KC + r];
    int64_t odims[4];
    for (int i = 0; i < S; i++)
        odims[i] = w.out[i];
    odims[S] = M;
    c->partial = "the convolution, channels last";
    rc = ox_gemm_blocks(c, cols_v, Wb, G, Mg, S + 1, odims, err, &gemm_v);
    c->partial = saved;
    free(Wb);
    if (rc) return rc;
    B = B ? &c->vals[ox_in(c, 2)] : NULL; /* (the steps' outputs grew the value table) */
    if (B && G == 1) memcpy(c->steps[c->n_steps - 1].b, B->f, (size_t)M * sizeof(float));
    /* channels first: [M, O...] */
    int perm[5] = {0, S + 1, 1, 2, 3};
    if (!B || G == 1) return ox_permute(c, gemm_v, perm, NULL, err, &x);
    c->partial = "the convolution";
    rc = ox_permute(c, gemm_v, perm, NULL, err, &x);
    c->partial = saved;
    if (rc) return rc;
    /* a bias per group's kernels: an affine step (scale 1) */
    sg_onnx_step *s = ox_step_new(c, SG_OX_AFFINE, err);
    if (!s) return SG_ENOMEM;
    const int64_t n = M * w.P;
    s->scale = sg_alloc_aligned((size_t)n * sizeof(float));
    s->shift = sg_alloc_aligned((size_t)n * sizeof(float));
    if (!s->scale || !s->shift) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    B = &c->vals[ox_in(c, 2)];
    for (int64_t j = 0; j < n; j++) {
        s->scale[j] = 1.0f;
        s->shift[j] = B->f[j / w.P];
    }
    s->in = c->vals[x].data;
    s->in_width = s->width = (int)n;
    int v;
    int64_t fd[4] = {M, w.out[0], w.out[1], w.out[2]};
    return ox_dyn_out(c, S + 1, fd, err, &v);
}

/* MaxPool (max) and AveragePool. */
sg_status ox_op_pool(ox_ctx *c, bool max, sg_err *err)
{
    int x, rc;
    if ((rc = spatial_input(c, max ? "MaxPool" : "AveragePool", err, &x))) return rc;
    if ((rc = ox_only_first_output(c, err))) return rc;
    const ox_value *vx = &c->vals[x];
    ox_window w = {.S = vx->rank - 1};
    const Onnx__AttributeProto *ka = ox_attr(c, "kernel_shape");
    if (!ka || ka->n_ints != (size_t)w.S)
        return ox_node_err(c, err, SG_EINPUT, "kernel_shape must have %d values", w.S);
    for (int i = 0; i < w.S; i++)
        w.k[i] = ka->ints[i];
    const bool ceil_mode = ox_attr_i(c, "ceil_mode", 0) != 0;
    if ((rc = window_shape(c, vx, ceil_mode, &w, err))) return rc;
    const bool include_pad = ox_attr_i(c, "count_include_pad", 0) != 0;
    const char *saved = c->partial;
    c->partial = "the input's windows";
    int cols_v, red_v;
    const int64_t wdims[3] = {w.C, w.P, w.K};
    rc = windows(c, x, &w, false, max ? -INFINITY : 0.0f, 3, wdims, err, &cols_v);
    c->partial = saved;
    if (rc) return rc;
    int64_t odims[4] = {w.C, w.out[0], w.out[1], w.out[2]};
    const int64_t axis = 3;
    /* every window whole inside the input (or counted whole): the mean step */
    bool whole = true;
    float *count = sg_alloc_aligned((size_t)(w.C * w.P) * sizeof(float));
    if (!count) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t p = 0; p < w.P; p++) {
        int64_t n = 1, q = p;
        for (int i = w.S - 1; i >= 0; i--) {
            const int64_t pos = q % w.out[i], lo = pos * w.s[i] - w.pb[i];
            q /= w.out[i];
            const int64_t from = include_pad ? -w.pb[i] : 0,
                          to = include_pad ? w.in[i] + w.pe[i] : w.in[i];
            int64_t in = 0;
            for (int64_t t = 0; t < w.k[i]; t++)
                in += lo + t >= from && lo + t < to;
            n *= in;
        }
        whole &= n == w.K;
        for (int64_t ch = 0; ch < w.C; ch++)
            count[ch * w.P + p] = (float)n;
    }
    if (max || whole) {
        sg_free_aligned(count);
        c->partial = max ? "the windows' maxima" : "the windows' means";
        rc = ox_reduce_axes(c, max ? SG_OXR_MAX : -1, cols_v, &axis, 1, false, err);
        c->partial = saved;
        if (rc) return rc;
        return ox_alias_out(c, c->n_vals - 1, w.S + 1, odims, err);
    }
    c->partial = "the windows' sums";
    rc = ox_reduce_axes(c, SG_OXR_SUM, cols_v, &axis, 1, false, err);
    c->partial = saved;
    if (rc) {
        sg_free_aligned(count);
        return rc;
    }
    red_v = c->n_vals - 1;
    sg_onnx_step *s = ox_step_new(c, SG_OX_BINARY, err);
    if (!s) {
        sg_free_aligned(count);
        return SG_ENOMEM;
    }
    s->binary = SG_OXB_DIV;
    s->a = (sg_onnx_arg){.kind = SG_OXA_ROW, .buf = c->vals[red_v].data};
    s->bb = (sg_onnx_arg){.kind = SG_OXA_CONST, .value = count};
    s->in = c->vals[red_v].data;
    s->width = (int)(w.C * w.P);
    int v;
    return ox_dyn_out(c, w.S + 1, odims, err, &v);
}

/* GlobalAveragePool (max false) and GlobalMaxPool: over the spatial axes, kept as 1s. */
sg_status ox_op_global_pool(ox_ctx *c, bool max, sg_err *err)
{
    int x, rc;
    if ((rc = spatial_input(c, max ? "GlobalMaxPool" : "GlobalAveragePool", err, &x))) return rc;
    int64_t axes[3];
    const int S = c->vals[x].rank - 1;
    for (int i = 0; i < S; i++)
        axes[i] = 2 + i;
    return ox_reduce_axes(c, max ? SG_OXR_MAX : -1, x, axes, S, true, err);
}

/* Pad: constant (any value), reflect or edge, along any axes but the batch; a negative pad
   crops. On rows a gather step (taps outside read the value), on constants folded. */
sg_status ox_op_pad(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if ((rc = ox_need_in(c, 0, err, &x))) return rc;
    const ox_value *vx = &c->vals[x];
    const bool rows = !vx->is_const;
    int64_t d[OX_MAX_RANK + 1], pads[2 * (OX_MAX_RANK + 1)];
    const int r = ox_full_shape(vx, d);
    char mode[16] = "constant";
    const Onnx__AttributeProto *ma = ox_attr(c, "mode");
    if (ma && ma->s.data && ma->s.len) {
        if (ma->s.len >= sizeof mode)
            return ox_node_err(c, err, SG_EINPUT, "mode is not constant, reflect or edge");
        memcpy(mode, ma->s.data, ma->s.len);
        mode[ma->s.len] = 0;
    }
    const int kind = !strcmp(mode, "constant")  ? 0
                     : !strcmp(mode, "reflect") ? 1
                     : !strcmp(mode, "edge")    ? 2
                                                : -1;
    if (kind < 0)
        return ox_node_err(c, err, SG_EINPUT, "mode '%s' is not constant, reflect or edge", mode);
    float value = 0;
    size_t n_pads;
    if (c->opset < 11) {
        const Onnx__AttributeProto *pa = ox_attr(c, "pads");
        if (!pa) return ox_node_err(c, err, SG_EINPUT, "attribute 'pads' is missing");
        n_pads = pa->n_ints;
        if (n_pads == (size_t)(2 * r)) memcpy(pads, pa->ints, n_pads * sizeof *pads);
        value = ox_attr_f(c, "value", 0.0f);
    } else {
        int pv;
        if ((rc = ox_need_in(c, 1, err, &pv))) return rc;
        const ox_value *p = &c->vals[pv];
        if (!p->is_const || p->dtype != OX_INT64 || p->batch_mask)
            return ox_node_err(c, err, SG_EINPUT, "pads (input 1) must be a constant int64 tensor");
        n_pads = (size_t)p->count;
        if (n_pads == (size_t)(2 * r)) memcpy(pads, p->i, n_pads * sizeof *pads);
        if (ox_in(c, 2) >= 0) {
            const ox_value *cv = &c->vals[ox_in(c, 2)];
            if (!cv->is_const || cv->count != 1)
                return ox_node_err(c, err, SG_EINPUT,
                                   "constant_value (input 2) must be one "
                                   "constant value");
            value = cv->dtype == OX_FLOAT ? cv->f[0] : (float)cv->i[0];
        }
    }
    if (n_pads != (size_t)(2 * r))
        return ox_node_err(c, err, SG_EINPUT, "pads has %zu values for an input of rank %d", n_pads,
                           r);
    if (rows && (pads[0] || pads[r]))
        return ox_node_err(c, err, SG_EINPUT, "padding the batch axis is not supported");
    int64_t od[OX_MAX_RANK + 1], count = 1;
    for (int i = 0; i < r; i++) {
        if (rows && i == 0) {
            od[0] = -1;
            continue;
        }
        if (pads[i] < -d[i] || pads[r + i] < -d[i] || pads[i] > OX_MAX_WIDTH ||
            pads[r + i] > OX_MAX_WIDTH)
            return ox_node_err(c, err, SG_EINPUT, "axis %d: pads %lld and %lld", i,
                               (long long)pads[i], (long long)pads[r + i]);
        od[i] = d[i] + pads[i] + pads[r + i];
        if (od[i] < (rows ? 1 : 0))
            return ox_node_err(c, err, SG_EINPUT, "axis %d is cropped to %lld values", i,
                               (long long)od[i]);
        /* reflect and edge read the axis left after any crop: it must hold a value to
           repeat, and reflect's pads must be below its length */
        const int64_t kept =
            d[i] + (pads[i] < 0 ? pads[i] : 0) + (pads[r + i] < 0 ? pads[r + i] : 0);
        if (kind != 0 && (pads[i] > 0 || pads[r + i] > 0) &&
            (kept < 1 || (kind == 1 && (pads[i] >= kept || pads[r + i] >= kept))))
            return ox_node_err(c, err, SG_EINPUT,
                               "axis %d of %lld values (%lld after cropping): %s pads %lld and "
                               "%lld %s",
                               i, (long long)d[i], (long long)kept, kind == 1 ? "reflect" : "edge",
                               (long long)pads[i], (long long)pads[r + i],
                               kind == 1 ? "must be below it" : "need a value to repeat");
        count *= od[i];
        if (count > (rows ? OX_MAX_WIDTH : OX_MAX_ELEMS))
            return ox_node_err(c, err, SG_EINPUT, "the padded tensor is too large");
    }
    if (!rows && vx->dtype != OX_FLOAT && kind == 0 && value != (float)(int64_t)value)
        return ox_node_err(c, err, SG_EINPUT, "an int64 tensor padded with %g", value);
    /* each output element's source: an index into x, or -1 for the value */
    const int first = rows ? 1 : 0;
    int64_t *src = malloc((size_t)(count ? count : 1) * sizeof *src);
    if (!src) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t j = 0; j < count; j++) {
        int64_t q = j, at = 0, stride = 1;
        bool out = false;
        for (int i = r - 1; i >= first; i--) {
            int64_t p = q % od[i] - pads[i];
            q /= od[i];
            if (p < 0 || p >= d[i]) {
                if (kind == 0)
                    out = true;
                else if (kind == 2)
                    p = p < 0 ? 0 : d[i] - 1;
                else
                    p = p < 0 ? -p : 2 * (d[i] - 1) - p;
            }
            at += p * stride;
            stride *= d[i];
        }
        src[j] = out ? -1 : at;
    }
    int v;
    if (rows) {
        int *cols = malloc((size_t)count * sizeof *cols);
        if (!cols) {
            free(src);
            return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        }
        for (int64_t j = 0; j < count; j++)
            cols[j] = (int)src[j];
        free(src);
        return ox_gather_out_pad(c, 0, x, r - 1, od + 1, cols, value, err, &v);
    }
    rc = ox_const_out(c, r, od, vx->dtype, err, &v);
    if (rc) {
        free(src);
        return rc;
    }
    vx = &c->vals[x];
    ox_value *o = &c->vals[v];
    for (int64_t j = 0; j < count; j++)
        if (vx->dtype == OX_FLOAT)
            o->f[j] = src[j] < 0 ? value : vx->f[src[j]];
        else
            o->i[j] = src[j] < 0 ? (int64_t)value : vx->i[src[j]];
    free(src);
    return SG_OK;
}
