/*
 * LSTM and GRU (nn.LSTM, nn.GRU), one layer per node, forward, reverse or bidirectional, with
 * ONNX's default activations. Each row's sequence is its own: with layout 0 (PyTorch's
 * export, batch_first or not) the input is [T, batch, I], rows whose batch a Transpose moved
 * to axis 1 (onnx_batch.c hands them here); with layout 1 (opset 14) it is [batch, T, I].
 * Compiled into a GEMM step for every time step's input projection (biases folded) and one
 * recurrence step (SG_OX_RNN), then gather steps for the outputs: Y [T, directions, batch, H]
 * (layout 1: [batch, T, directions, H]) and Y_h, Y_c [directions, batch, H].
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

static sg_status const_weights(ox_ctx *c, size_t k, const char *what, int rank, const int64_t *dims,
                               const ox_value **out, sg_err *err)
{
    const int v = ox_in(c, k);
    *out = NULL;
    if (v < 0) return SG_OK;
    const ox_value *w = &c->vals[v];
    if (!w->is_const || w->dtype != OX_FLOAT || w->rank != rank)
        return ox_node_err(c, err, SG_EINPUT,
                           "%s (input %zu) must be a constant float tensor of "
                           "rank %d",
                           what, k, rank);
    for (int i = 0; i < rank; i++)
        if (w->dims[i] != dims[i]) {
            char want[96], have[96];
            ox_shape_str(dims, (size_t)rank, want, sizeof want);
            ox_shape_str(w->dims, (size_t)rank, have, sizeof have);
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match: %s (input %zu) is %s, expected %s", what, k,
                               have, want);
        }
    for (int64_t j = 0; j < w->count; j++)
        if (!isfinite(w->f[j]))
            return ox_node_err(c, err, SG_EINPUT, "%s element %lld is not finite", what,
                               (long long)j);
    *out = w;
    return SG_OK;
}

/* The initial h or c (input k): absent (zeros), per-row [directions, H] rows, or a constant
   [directions, 1, H] (the same for every row); into arg, width floats for a constant. */
static sg_status initial_state(ox_ctx *c, size_t k, const char *what, int64_t D, int64_t H,
                               bool seq_first, int64_t width, sg_onnx_arg *arg, sg_err *err)
{
    const int v = ox_in(c, k);
    if (v >= 0 && !c->vals[v].is_const) {
        const ox_value *s = &c->vals[v];
        const bool placed = ox_placed(s);
        if (s->rank != 2 || s->dims[0] != D || s->dims[1] != H || placed != seq_first ||
            (placed && (s->bpos != 1 || s->bouter || s->binner)))
            return ox_node_err(c, err, SG_EINPUT,
                               "%s (input %zu, '%.100s') must be rows of [%s, %lld, %lld]", what, k,
                               s->name, seq_first ? "directions, batch" : "batch, directions",
                               (long long)D, (long long)H);
        if (s->is_int || s->is_bool || s->is_double)
            return ox_node_err(c, err, SG_EINPUT, "%s (input %zu) is not float rows", what, k);
        *arg = (sg_onnx_arg){.kind = SG_OXA_ROW, .buf = s->data};
        return SG_OK;
    }
    float *z = sg_alloc_aligned((size_t)width * sizeof(float));
    if (!z) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    memset(z, 0, (size_t)width * sizeof(float));
    *arg = (sg_onnx_arg){.kind = SG_OXA_CONST, .value = z};
    if (v < 0) return SG_OK;
    /* [directions, 1, H] (layout 0) or [1, directions, H] (layout 1): a batch of 1 */
    const ox_value *s = &c->vals[v];
    if (s->dtype != OX_FLOAT || s->rank != 3 || s->dims[seq_first ? 0 : 1] != D ||
        s->dims[seq_first ? 1 : 0] != 1 || s->dims[2] != H)
        return ox_node_err(c, err, SG_EINPUT,
                           "%s (input %zu) is a constant: it must be [%lld, %lld, %lld] (the "
                           "same for every row)",
                           what, k, (long long)(seq_first ? D : 1), (long long)(seq_first ? 1 : D),
                           (long long)H);
    for (int64_t j = 0; j < D * H; j++) {
        if (!isfinite(s->f[j]))
            return ox_node_err(c, err, SG_EINPUT, "%s element %lld is not finite", what,
                               (long long)j);
        z[j] = s->f[j];
    }
    return SG_OK;
}

sg_status ox_op_rnn(ox_ctx *c, bool gru, bool seq_first, int outs[3], sg_err *err)
{
    outs[0] = outs[1] = outs[2] = -1;
    int x, rc;
    if ((rc = ox_need_in(c, 0, err, &x))) return rc;
    const ox_value *vx = &c->vals[x];
    const int64_t layout = ox_attr_i(c, "layout", 0);
    if (vx->is_const) return ox_node_err(c, err, SG_EINPUT, "constant input is not supported");
    if (vx->is_int || vx->is_bool || vx->is_double)
        return ox_node_err(c, err, SG_EINPUT, "input 0 is not float rows");
    if (layout == 0 && !seq_first)
        return ox_batch_err(c, err,
                            "layout 0 takes X as [seq, batch, input], and '%.100s' has the batch "
                            "first: its sequence would be the batch (move the batch to axis 1 "
                            "with a Transpose, as PyTorch's export does, or use layout 1)",
                            vx->name);
    if (vx->rank != 2)
        return ox_node_err(c, err, SG_EINPUT, "input '%.100s' is rows of rank %d, not [seq, input]",
                           vx->name, vx->rank);
    const int64_t T = vx->dims[0], I = vx->dims[1], H = ox_attr_i(c, "hidden_size", 0),
                  G = gru ? 3 : 4;
    const Onnx__AttributeProto *da = ox_attr(c, "direction");
    char dir[16] = "forward";
    if (da && da->s.data && da->s.len > 0 && da->s.len < sizeof dir) {
        memcpy(dir, da->s.data, da->s.len);
        dir[da->s.len] = 0;
    }
    const bool bidi = !strcmp(dir, "bidirectional"), reverse = !strcmp(dir, "reverse");
    if (!bidi && !reverse && strcmp(dir, "forward"))
        return ox_node_err(c, err, SG_EINPUT,
                           "direction '%.20s' is not forward, reverse or bidirectional", dir);
    const int64_t D = bidi ? 2 : 1;
    if (H < 1 || H > 65536 || T * D * 2 * H > OX_MAX_WIDTH || T * D * G * H > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "hidden_size %lld for sequences of %lld",
                           (long long)H, (long long)T);
    /* ONNX's defaults only */
    const Onnx__AttributeProto *acts = ox_attr(c, "activations");
    for (size_t i = 0; acts && i < acts->n_strings; i++) {
        const char *want = i % (gru ? 2 : 3) == 0 ? "Sigmoid" : "Tanh";
        if (acts->strings[i].len != strlen(want) ||
            memcmp(acts->strings[i].data, want, acts->strings[i].len))
            return ox_node_err(c, err, SG_EINPUT,
                               "activations other than ONNX's defaults (%s) are not supported",
                               gru ? "Sigmoid, Tanh" : "Sigmoid, Tanh, Tanh");
    }
    if (!gru && ox_attr_i(c, "input_forget", 0))
        return ox_node_err(c, err, SG_EINPUT, "input_forget=1 is not supported");
    const float clip = ox_attr_f(c, "clip", 0.0f);
    if (ox_attr(c, "clip") && !(clip > 0))
        return ox_node_err(c, err, SG_EINPUT, "clip %g must be positive", (double)clip);
    const bool lbr = gru && ox_attr_i(c, "linear_before_reset", 0) != 0;
    if (ox_in(c, 4) >= 0) {
        const ox_value *sl = &c->vals[ox_in(c, 4)];
        bool full = sl->is_const && sl->dtype == OX_INT64 && !sl->batch_mask;
        for (int64_t j = 0; full && j < sl->count; j++)
            full = sl->i[j] == T;
        if (!full)
            return ox_node_err(c, err, SG_EINPUT,
                               "sequence_lens (input 4) other than every sequence whole (%lld) is "
                               "not supported",
                               (long long)T);
    }
    if (!gru && ox_in(c, 7) >= 0)
        return ox_node_err(c, err, SG_EINPUT, "peepholes (input 7) are not supported");
    const ox_value *W, *R, *B;
    const int64_t wd[3] = {D, G * H, I}, rd[3] = {D, G * H, H}, bd[2] = {D, 2 * G * H};
    if ((rc = const_weights(c, 1, "W", 3, wd, &W, err)) ||
        (rc = const_weights(c, 2, "R", 3, rd, &R, err)) ||
        (rc = const_weights(c, 3, "B", 2, bd, &B, err)))
        return rc;
    if (!W || !R) return ox_node_err(c, err, SG_EINPUT, "W and R are required");
    /* the input projections of every time step: [T, I] @ [I, D * G * H] + folded biases */
    const int64_t GH = G * H, cols = D * GH;
    float *Wt = malloc((size_t)(I * cols) * sizeof *Wt);
    if (!Wt) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t d = 0; d < D; d++)
        for (int64_t g = 0; g < GH; g++)
            for (int64_t i = 0; i < I; i++)
                Wt[i * cols + d * GH + g] = W->f[(d * GH + g) * I + i];
    const char *saved = c->partial;
    int xw, v;
    const int64_t xd[2] = {T, cols};
    c->partial = "the input projections of every time step";
    rc = ox_gemm_blocks(c, x, Wt, 1, cols, 2, xd, err, &xw);
    c->partial = saved;
    free(Wt);
    if (rc) return rc;
    /* (the GEMM's output grew the value table: B is read again) */
    B = ox_in(c, 3) >= 0 ? &c->vals[ox_in(c, 3)] : NULL;
    float *bias = c->steps[c->n_steps - 1].b;
    for (int64_t d = 0; B && d < D; d++)
        for (int64_t g = 0; g < GH; g++) {
            const float wb = B->f[d * 2 * GH + g], rb = B->f[d * 2 * GH + GH + g];
            /* GRU with linear_before_reset keeps h's recurrence bias inside r * (...) */
            bias[d * GH + g] = gru && lbr && g >= 2 * H ? wb : wb + rb;
        }
    /* the recurrence step */
    const int64_t width = T * D * 2 * H;
    sg_onnx_step *s = ox_step_new(c, SG_OX_RNN, err);
    if (!s) return SG_ENOMEM;
    s->W = sg_alloc_aligned((size_t)(D * H * GH) * sizeof(float));
    s->shift = sg_alloc_aligned((size_t)width * sizeof(float));
    if (!s->W || !s->shift) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    memset(s->shift, 0, (size_t)width * sizeof(float));
    R = &c->vals[ox_in(c, 2)];
    B = ox_in(c, 3) >= 0 ? &c->vals[ox_in(c, 3)] : NULL;
    for (int64_t d = 0; d < D; d++)
        for (int64_t q = 0; q < H; q++)
            for (int64_t g = 0; g < GH; g++)
                s->W[(d * H + q) * GH + g] = R->f[(d * GH + g) * H + q];
    for (int64_t d = 0; gru && lbr && B && d < D; d++)
        for (int64_t j = 0; j < H; j++)
            s->shift[d * H + j] = B->f[d * 2 * GH + GH + 2 * H + j];
    s->in = c->vals[xw].data;
    s->in_width = (int)(T * cols);
    s->width = (int)width;
    s->mm_m = (int)T;
    s->mm_k = (int)H;
    s->mm_n = (int)D;
    s->rnn_gru = gru;
    s->rnn_lbr = lbr;
    s->rnn_reverse = reverse;
    s->rnn_clip = clip;
    const int step = c->n_steps - 1;
    if ((rc = initial_state(c, 5, "initial_h", D, H, seq_first, width, &c->steps[step].a, err)))
        return rc;
    if (!gru &&
        (rc = initial_state(c, 6, "initial_c", D, H, seq_first, width, &c->steps[step].bb, err)))
        return rc;
    if (gru) { /* no c: a constant of zeros, never read */
        float *z = sg_alloc_aligned((size_t)width * sizeof(float));
        if (!z) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        memset(z, 0, (size_t)width * sizeof(float));
        c->steps[step].bb = (sg_onnx_arg){.kind = SG_OXA_CONST, .value = z};
    }
    const int64_t rdims[3] = {T, D, 2 * H};
    c->partial = "the recurrence's h and c of every time step";
    rc = ox_dyn_out(c, 3, rdims, err, &v);
    c->partial = saved;
    if (rc) return rc;
    /* the outputs, each a gather of the recurrence's: Y [T, D, H]; Y_h, Y_c [D, H] */
    for (int k = 0; k < (gru ? 2 : 3); k++) {
        if ((size_t)k >= c->node->n_output || !c->node->output[k] || !c->node->output[k][0])
            continue;
        const int64_t n = k == 0 ? T * D * H : D * H;
        int *cl = malloc((size_t)n * sizeof *cl);
        if (!cl) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        for (int64_t j = 0; j < n; j++) {
            int64_t t, d, q = j % H;
            if (k == 0) {
                t = j / (D * H);
                d = j / H % D;
            } else {
                d = j / H;
                t = (D == 2 ? d == 1 : reverse) ? 0 : T - 1;
            }
            cl[j] = (int)(((t * D + d) * 2 + (k == 2)) * H + q);
        }
        const int64_t yd[3] = {T, D, H}, hd[2] = {D, H};
        if ((rc = ox_gather_out(c, (size_t)k, v, k == 0 ? 3 : 2, k == 0 ? yd : hd, cl, err,
                                &outs[k])))
            return rc;
    }
    return SG_OK;
}
