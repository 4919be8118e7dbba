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
    /* A mask's infinity (an initializer or Constant read by Add or Where) may have been
       folded into a constant; as a weight it is refused. */
    for (int64_t j = 0; j < (*v)->count; j++)
        if (!isfinite((*v)->f[j]))
            return ox_node_err(c, err, SG_EINPUT, "%s ('%.100s') element %lld is not finite", what,
                               (*v)->name, (long long)j);
    return SG_OK;
}

/* MatMul of two per-row tensors, [batch, ..., m, k] @ [batch, ..., k, n] (attention's
   q @ k^T and weights @ v, written batch first): per row, one product per matrix of the
   leading axes, which must be the same on both sides (broadcasting them is not supported). */
sg_status ox_matmul_rows(ox_ctx *c, int x, int y, sg_err *err)
{
    const ox_value *a = &c->vals[x], *b = &c->vals[y];
    if (a->rank < 2 || b->rank < 2)
        return ox_node_err(c, err, SG_EINPUT,
                           "a MatMul of two per-row tensors needs rows of rank 2 or more on both "
                           "sides ([batch, ..., m, k] @ [batch, ..., k, n]); '%.100s' is rows of "
                           "rank %d ([batch] and %d more)",
                           (a->rank < 2 ? a : b)->name, (a->rank < 2 ? a : b)->rank,
                           (a->rank < 2 ? a : b)->rank);
    const int r = a->rank;
    bool same = b->rank == r;
    for (int i = 0; same && i < r - 2; i++)
        same = a->dims[i] == b->dims[i];
    char as[160], bs[160];
    ox_shape_str(a->dims, (size_t)a->rank, as, sizeof as);
    ox_shape_str(b->dims, (size_t)b->rank, bs, sizeof bs);
    if (!same)
        return ox_node_err(c, err, SG_EINPUT,
                           "rows of shape %s and %s: the axes before the matrices must be the "
                           "same on both sides (broadcasting them is not supported)",
                           as, bs);
    const int64_t m = a->dims[r - 2], k = a->dims[r - 1], n = b->dims[r - 1];
    if (b->dims[r - 2] != k)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: rows of shape %s @ %s (%lld columns "
                           "against %lld rows)",
                           as, bs, (long long)k, (long long)b->dims[r - 2]);
    const int64_t groups = a->count / (m * k), width = groups * m * n;
    if (width < 1 || width > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "a row of %lld values (must be 1..%d)",
                           (long long)width, OX_MAX_WIDTH);
    sg_onnx_step *s = ox_step_new(c, SG_OX_MATMUL_ROWS, err);
    if (!s) return SG_ENOMEM;
    s->a = (sg_onnx_arg){.kind = SG_OXA_ROW, .buf = a->data};
    s->bb = (sg_onnx_arg){.kind = SG_OXA_ROW, .buf = b->data};
    s->in = a->data;
    s->in_width = (int)a->count;
    s->width = (int)width;
    s->mm_m = (int)m;
    s->mm_k = (int)k;
    s->mm_n = (int)n;
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, a->dims, (size_t)r * sizeof dims[0]);
    dims[r - 1] = n;
    int v;
    return ox_dyn_out(c, r, dims, err, &v);
}

sg_status ox_gemm_blocks(ox_ctx *c, int x, const float *W, int64_t wgroups, int64_t m, int rank,
                         const int64_t *dims, sg_err *err, int *out)
{
    const ox_value *vx = &c->vals[x];
    const int64_t k = vx->dims[vx->rank - 1];
    const int groups = row_groups(c, vx, k, err);
    if (!groups) return SG_EINPUT;
    if (wgroups < 1 || groups % wgroups != 0)
        return ox_node_err(c, err, SG_EINPUT,
                           "rows of %d vectors do not split into %lld weight matrices", groups,
                           (long long)wgroups);
    if (m < 1 || m > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "%lld outputs", (long long)m);
    const size_t wn = (size_t)wgroups * (size_t)k * (size_t)m;
    if (wn > (size_t)OX_MAX_ELEMS)
        return ox_node_err(c, err, SG_EINPUT, "weights of %zu values", wn);
    sg_onnx_step *s = ox_step_new(c, SG_OX_GEMM, err);
    if (!s) return SG_ENOMEM;
    s->W = sg_alloc_aligned(wn * sizeof(float));
    s->b = sg_alloc_aligned((size_t)m * sizeof(float));
    if (!s->W || !s->b) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    memcpy(s->W, W, wn * sizeof(float));
    memset(s->b, 0, (size_t)m * sizeof(float));
    s->in = vx->data;
    s->in_width = (int)k;
    s->width = (int)m;
    s->groups = groups;
    s->wgroups = wgroups > 1 ? (int)wgroups : 0;
    s->act = SG_ACT_IDENTITY;
    return ox_dyn_out(c, rank, dims, err, out);
}

/* MatMul of rows [batch, ..., m, k] by a constant [..., k, n] of rank 3 or more (a stack of
   weight matrices: TabM's ensemble members, per-feature linear layers), as numpy broadcasts
   it: each matrix [m, k] of a row times the weight matrix its indices pick. The constant's
   leading axes line up with the row's axes before its matrix, from the right; each is the
   row's size (a stacked axis) or 1 (the same weights along it), and one that lines up with
   the batch or beyond must be 1. The row's other axes and m are moved before the stacked
   ones for one GEMM per matrix of the stack, and back after. */
sg_status ox_matmul_stacked(ox_ctx *c, int x, const ox_value *B_in, sg_err *err)
{
    /* a copy: the steps below grow the value table, which B_in may point into (its data
       stay where they are) */
    const ox_value Bv = *B_in, *B = &Bv;
    const ox_value *vx = &c->vals[x];
    const int r = vx->rank, rb = B->rank;
    const int64_t k = B->dims[rb - 2], n = B->dims[rb - 1];
    char xs[160], bs[160];
    ox_shape_str(vx->dims, (size_t)r, xs, sizeof xs);
    ox_shape_str(B->dims, (size_t)rb, bs, sizeof bs);
    if (vx->dims[r - 1] != k)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: rows of shape [batch]+%s @ weight "
                           "'%.100s' of shape %s (%lld columns against %lld rows)",
                           xs, B->name, bs, (long long)vx->dims[r - 1], (long long)k);
    if (rb - 2 > r - 1)
        return ox_node_err(c, err, SG_EINPUT,
                           "rows of shape [batch]+%s @ weight '%.100s' of shape %s: the product "
                           "would have axes before the batch",
                           xs, B->name, bs);
    /* stacked[j]: row axis j (of the r - 2 before the matrix) is a stacked one */
    bool stacked[OX_MAX_RANK] = {false}, expand = false;
    int64_t wg = 1, ed[OX_MAX_RANK];
    memcpy(ed, vx->dims, (size_t)r * sizeof ed[0]);
    for (int i = 0; i < rb - 2; i++) {
        const int j = r - 2 - (rb - 2) + i; /* the row axis weight axis i lines up with */
        const int64_t w = B->dims[i];
        if (w == 1) continue;
        if (j < 0)
            return ox_node_err(c, err, SG_EINPUT,
                               "rows of shape [batch]+%s @ weight '%.100s' of shape %s: the "
                               "weight's axis %d (%lld) lines up with the batch",
                               xs, B->name, bs, i, (long long)w);
        if (w != vx->dims[j] && vx->dims[j] != 1)
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match: rows of shape [batch]+%s @ weight '%.100s' "
                               "of shape %s: the weight's axis %d (%lld) against the row's axis "
                               "%d (%lld)",
                               xs, B->name, bs, i, (long long)w, j + 1, (long long)vx->dims[j]);
        expand |= vx->dims[j] == 1; /* the row's one matrix for every weight along it */
        ed[j] = w;
        stacked[j] = true;
        wg *= w;
    }
    const char *saved0 = c->partial;
    if (expand) {
        c->partial = "the rows repeated for each matrix of the stack";
        sg_status rc0 = ox_expand_row(c, x, r, ed, err, &x);
        c->partial = saved0;
        if (rc0) return rc0;
        vx = &c->vals[x];
    }
    /* full axes (the batch is 0): the others and m, then the stacked ones, then k */
    int perm[OX_MAX_RANK + 1], back[OX_MAX_RANK + 1], q = 0;
    perm[q++] = 0;
    for (int j = 0; j < r - 2; j++)
        if (!stacked[j]) perm[q++] = j + 1;
    perm[q++] = r - 1;
    for (int j = 0; j < r - 2; j++)
        if (stacked[j]) perm[q++] = j + 1;
    perm[q++] = r;
    bool same = true;
    for (int i = 0; i <= r; i++) {
        back[perm[i]] = i;
        same &= perm[i] == i;
    }
    int64_t dims[OX_MAX_RANK];
    int v, y = x;
    const char *saved = c->partial;
    sg_status rc;
    if (!same && (rc = ox_permute(c, x, perm, "the rows with their stacked axes last", err, &y)))
        return rc;
    memcpy(dims, c->vals[y].dims, (size_t)r * sizeof dims[0]);
    dims[r - 1] = n;
    if (same) return ox_gemm_blocks(c, y, B->f, wg, n, r, dims, err, &v);
    c->partial = "the product by the stack of weights";
    rc = ox_gemm_blocks(c, y, B->f, wg, n, r, dims, err, &v);
    c->partial = saved;
    if (rc) return rc;
    return ox_permute(c, v, back, NULL, err, &y);
}

/* Gemm or MatMul of constants (a layer PyTorch left applied to a constant buffer, such as
   the encoded candidates of a retrieval model): folded, each product summed in double and
   rounded once. MatMul broadcasts as numpy; Gemm takes transA, transB, alpha, beta and C
   broadcast to [m, n]. */
static sg_status fold_product(ox_ctx *c, bool matmul, sg_err *err)
{
    const int ia = ox_in(c, 0), ib = ox_in(c, 1);
    const ox_value *A = &c->vals[ia], *B = &c->vals[ib];
    if (A->dtype != OX_FLOAT || B->dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "a product of int64 constants is not supported");
    if (A->rank < 1 || B->rank < 1 || (!matmul && (A->rank != 2 || B->rank != 2)))
        return ox_node_err(c, err, SG_EINPUT, "inputs of rank %d and %d", A->rank, B->rank);
    const bool ta = !matmul && ox_attr_i(c, "transA", 0), tb = !matmul && ox_attr_i(c, "transB", 0);
    /* as [batch..., m, k] @ [batch..., k, n] */
    const int64_t m = A->rank == 1 ? 1 : A->dims[A->rank - (ta ? 1 : 2)],
                  k = A->rank == 1 ? A->dims[0] : A->dims[A->rank - (ta ? 2 : 1)],
                  kb = B->rank == 1 ? B->dims[0] : B->dims[B->rank - (tb ? 1 : 2)],
                  n = B->rank == 1 ? 1 : B->dims[B->rank - (tb ? 2 : 1)];
    if (k != kb)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match: '%.100s' has %lld columns, '%.100s' %lld rows",
                           A->name, (long long)k, B->name, (long long)kb);
    const int ba = A->rank > 2 ? A->rank - 2 : 0, bb = B->rank > 2 ? B->rank - 2 : 0,
              nb = ba > bb ? ba : bb;
    int64_t bd[OX_MAX_RANK], batches = 1;
    for (int i = 0; i < nb; i++) {
        const int64_t da = i - (nb - ba) >= 0 ? A->dims[i - (nb - ba)] : 1,
                      db = i - (nb - bb) >= 0 ? B->dims[i - (nb - bb)] : 1;
        if (da != db && da != 1 && db != 1)
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match: batch axes %lld and %lld do not broadcast",
                               (long long)da, (long long)db);
        bd[i] = da > db ? da : db;
        batches *= bd[i];
    }
    if ((double)batches * (double)m * (double)n * (double)k > (double)OX_MAX_FOLDED)
        return ox_node_err(c, err, SG_EINPUT,
                           "folding this product of constants takes over %zu "
                           "multiplications",
                           OX_MAX_FOLDED);
    int64_t od[OX_MAX_RANK];
    int r = 0;
    for (int i = 0; i < nb; i++)
        od[r++] = bd[i];
    if (A->rank > 1 || !matmul) od[r++] = m;
    if (B->rank > 1 || !matmul) od[r++] = n;
    const ox_value *C = NULL;
    if (!matmul && ox_in(c, 2) >= 0) {
        C = &c->vals[ox_in(c, 2)];
        if (!C->is_const || C->dtype != OX_FLOAT || C->rank > 2 ||
            (C->rank == 2 &&
             ((C->dims[0] != 1 && C->dims[0] != m) || (C->dims[1] != 1 && C->dims[1] != n))) ||
            (C->rank == 1 && C->dims[0] != 1 && C->dims[0] != n))
            return ox_node_err(c, err, SG_EINPUT, "C does not broadcast to [%lld, %lld]",
                               (long long)m, (long long)n);
    }
    int v;
    sg_status rc = ox_const_out(c, r, od, OX_FLOAT, err, &v);
    if (rc) return rc;
    A = &c->vals[ia];
    B = &c->vals[ib];
    if (C) C = &c->vals[ox_in(c, 2)];
    const double alpha = matmul ? 1.0 : ox_attr_f(c, "alpha", 1.0f),
                 beta = matmul ? 1.0 : ox_attr_f(c, "beta", 1.0f);
    float *o = c->vals[v].f;
    for (int64_t q = 0; q < batches; q++) {
        /* the batch index of each side (broadcast axes read index 0) */
        int64_t qa = 0, qb = 0, rem = q, sa = 1, sb = 1;
        for (int i = nb - 1; i >= 0; i--) {
            const int64_t idx = rem % bd[i];
            rem /= bd[i];
            const int ja = i - (nb - ba), jb = i - (nb - bb);
            if (ja >= 0) {
                qa += (A->dims[ja] == 1 ? 0 : idx) * sa;
                sa *= A->dims[ja];
            }
            if (jb >= 0) {
                qb += (B->dims[jb] == 1 ? 0 : idx) * sb;
                sb *= B->dims[jb];
            }
        }
        const float *a = A->f + qa * m * k, *b = B->f + qb * k * n;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double acc = 0;
                for (int64_t t = 0; t < k; t++)
                    acc += (double)(ta ? a[t * m + i] : a[i * k + t]) *
                           (double)(tb ? b[j * k + t] : b[t * n + j]);
                acc *= alpha;
                if (C)
                    acc += beta * C->f[(C->rank == 2 && C->dims[0] != 1 ? i * C->dims[1] : 0) +
                                       (C->rank >= 1 && C->dims[C->rank - 1] != 1 ? j : 0)];
                o[(q * m + i) * n + j] = (float)acc;
            }
    }
    return SG_OK;
}

/* MatMul of a constant matrix [m, k] (or vector [k]) by rows [batch, ..., k, n]: each
   row's matrices times it from the left, as the rows transposed ([..., n, k]) times its
   transpose, one GEMM, transposed back. */
static sg_status matmul_left(ox_ctx *c, const ox_value *A_in, int y, sg_err *err)
{
    const ox_value Av = *A_in, *A = &Av; /* (a copy: the value table grows below) */
    const ox_value *vy = &c->vals[y];
    const int r = vy->rank;
    if (A->rank > 2 || r < 2)
        return ox_node_err(c, err, SG_EINPUT,
                           "a constant of rank %d times rows of rank %d: supported are a matrix "
                           "or vector times rows of rank 2 or more ([batch, ..., k, n]; rows of "
                           "rank 1 are one matrix with the batch, which would mix its rows)",
                           A->rank, r);
    const int64_t k = vy->dims[r - 2], m = A->rank == 2 ? A->dims[0] : 1, ka = A->dims[A->rank - 1];
    if (ka != k)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: '%.100s' has %lld columns, the rows' "
                           "matrices %lld rows",
                           A->name, (long long)ka, (long long)k);
    int perm[OX_MAX_RANK + 1];
    for (int i = 0; i <= r; i++)
        perm[i] = i;
    perm[r - 1] = r;
    perm[r] = r - 1;
    float *W = malloc((size_t)k * (size_t)m * sizeof *W);
    if (!W) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t t = 0; t < k; t++)
        for (int64_t i = 0; i < m; i++)
            W[t * m + i] = A->f[i * k + t];
    const char *saved = c->partial;
    int t1, t2;
    sg_status rc = ox_permute(c, y, perm, "the rows' matrices transposed", err, &t1);
    int64_t dims[OX_MAX_RANK];
    if (!rc) {
        memcpy(dims, c->vals[t1].dims, (size_t)r * sizeof dims[0]);
        dims[r - 1] = m;
        c->partial = "the product, transposed";
        rc = ox_gemm_blocks(c, t1, W, 1, m, r, dims, err, &t2);
        c->partial = saved;
    }
    free(W);
    if (rc) return rc;
    if (A->rank == 2) return ox_permute(c, t2, perm, NULL, err, &t1);
    return ox_alias_out(c, t2, r - 1, dims, err); /* a vector: [..., n] */
}

sg_status ox_op_gemm(ox_ctx *c, bool matmul, sg_err *err)
{
    int x, rc;
    const ox_value *B, *C = NULL;
    if (ox_in(c, 0) >= 0 && ox_in(c, 1) >= 0 && c->vals[ox_in(c, 0)].is_const &&
        c->vals[ox_in(c, 1)].is_const)
        return fold_product(c, matmul, err);
    if (matmul && ox_in(c, 0) >= 0 && c->vals[ox_in(c, 0)].is_const && ox_in(c, 1) >= 0) {
        const ox_value *A;
        if ((rc = const_input(c, 0, "the constant (input 0)", err, &A))) return rc;
        return matmul_left(c, A, ox_in(c, 1), err);
    }
    /* MatMul on rows of rank 2 or more ([batch, ..., k] @ [k, m], nn.Linear applied to a
       [batch, tokens, k] input) multiplies each vector along the last axis: one GEMM over
       batch x the vectors a row holds. Gemm's input is [batch, k] by definition. */
    if ((rc = row_input_ranked(c, 0, matmul ? "MatMul" : "Gemm", matmul || c->gemm_any_rank, err,
                               &x)))
        return rc;
    if (matmul && ox_in(c, 1) >= 0 && !c->vals[ox_in(c, 1)].is_const)
        return ox_matmul_rows(c, x, ox_in(c, 1), err);
    if ((rc = const_input(c, 1, "the weight (input 1)", err, &B))) return rc;
    if (matmul && B->rank >= 3) return ox_matmul_stacked(c, x, B, err);
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

/* A normalization's epsilon (default 1e-5) is finite and not negative: a negative one takes
   the square root of a negative variance, NaN at run time. */
static sg_status check_epsilon(ox_ctx *c, sg_err *err)
{
    const float eps = ox_attr_f(c, "epsilon", 1e-5f);
    if (!(eps >= 0) || !isfinite(eps))
        return ox_node_err(c, err, SG_EINPUT, "epsilon %g must be finite and 0 or more",
                           (double)eps);
    return SG_OK;
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
        if (!isfinite(sc) || !isfinite((float)sc))
            return ox_node_err(c, err, SG_EINPUT,
                               "channel %lld: var + epsilon is %g, and scale / sqrt of it is not "
                               "finite",
                               (long long)q, (double)p[3]->f[q] + eps);
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
    if ((rc = check_epsilon(c, err))) return rc;
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

/* CumSum along one axis (a constant input): on rows a step over each vector along it (the
   axis moved last and back when it is not), on constants folded (int64 too). */
sg_status ox_op_cumsum(ox_ctx *c, sg_err *err)
{
    int x, ai, rc;
    if ((rc = ox_need_in(c, 0, err, &x)) || (rc = ox_need_in(c, 1, err, &ai))) return rc;
    const ox_value *va = &c->vals[ai];
    if (!va->is_const || va->dtype != OX_INT64 || va->count != 1 || va->batch_mask)
        return ox_node_err(c, err, SG_EINPUT, "axis (input 1) must be one constant integer");
    const bool rows = !c->vals[x].is_const, excl = ox_attr_i(c, "exclusive", 0) != 0,
               rev = ox_attr_i(c, "reverse", 0) != 0;
    const int r = c->vals[x].rank + (rows ? 1 : 0);
    int64_t axis = va->i[0] < 0 ? va->i[0] + r : va->i[0];
    if (axis < 0 || axis >= r)
        return ox_node_err(c, err, SG_EINPUT, "axis %lld is out of range for rank %d",
                           (long long)va->i[0], r);
    if (rows && axis == 0)
        return ox_node_err(c, err, SG_EINPUT,
                           "axis %lld is the batch: a sum across rows is not supported",
                           (long long)va->i[0]);
    /* integer rows: each sum within the axis' length times their bound */
    const bool ints = rows && c->vals[x].is_int;
    int64_t bound = 0;
    if (ints) {
        const int64_t len = c->vals[x].dims[axis - 1]; /* (rows: axis 0 was refused) */
        if (__builtin_mul_overflow(len, c->vals[x].int_bound, &bound) || bound > OX_MAX_EXACT)
            return ox_node_err(c, err, SG_EINPUT,
                               "integer rows could exceed 2^24 here, past the integers a float "
                               "holds exactly");
    }
    if (rows && (c->vals[x].is_bool || c->vals[x].is_double))
        return ox_node_err(c, err, SG_EINPUT, "input 0 is not float or integer rows");
    int perm[OX_MAX_RANK + 1];
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[axis] = r - 1;
    perm[r - 1] = (int)axis;
    if (!rows) {
        const ox_value *vx = &c->vals[x];
        int64_t inner = 1, len = vx->dims[axis];
        for (int i = (int)axis + 1; i < r; i++)
            inner *= vx->dims[i];
        int v;
        if ((rc = ox_const_out(c, vx->rank, vx->dims, vx->dtype, err, &v))) return rc;
        vx = &c->vals[x];
        ox_value *o = &c->vals[v];
        for (int64_t base = 0; len > 0 && base < vx->count; base += len * inner)
            for (int64_t e = 0; e < inner; e++) {
                double facc = 0;
                int64_t iacc = 0;
                for (int64_t q = 0; q < len; q++) {
                    const int64_t j = base + (rev ? len - 1 - q : q) * inner + e;
                    if (vx->dtype == OX_FLOAT) {
                        const float before = (float)facc;
                        facc = (float)(facc + vx->f[j]);
                        o->f[j] = excl ? before : (float)facc;
                    } else {
                        const int64_t before = iacc;
                        if (__builtin_add_overflow(iacc, vx->i[j], &iacc))
                            return ox_node_err(c, err, SG_EINPUT, "int64 overflow in the sum");
                        o->i[j] = excl ? before : iacc;
                    }
                }
            }
        return SG_OK;
    }
    const char *saved = c->partial;
    int y = x, z;
    if (axis != r - 1 &&
        (rc = ox_permute(c, x, perm, "the input with the summed axis last", err, &y)))
        return rc;
    const ox_value *vy = &c->vals[y];
    const int64_t w = vy->dims[vy->rank - 1];
    const int groups = row_groups(c, vy, w, err);
    if (!groups) return SG_EINPUT;
    sg_onnx_step *s = ox_step_new(c, SG_OX_CUMSUM, err);
    if (!s) return SG_ENOMEM;
    s->in = vy->data;
    s->in_width = s->width = (int)w;
    s->groups = groups;
    s->cum_exclusive = excl;
    s->cum_reverse = rev;
    if (axis != r - 1) c->partial = "the cumulative sum along the last axis";
    rc = ox_dyn_out(c, vy->rank, vy->dims, err, &z);
    c->partial = saved;
    if (rc) return rc;
    c->vals[z].is_int = ints;
    c->vals[z].int_bound = bound;
    if (axis == r - 1) return SG_OK;
    if ((rc = ox_permute(c, z, perm, NULL, err, &y))) return rc;
    c->vals[y].is_int = ints;
    c->vals[y].int_bound = bound;
    return SG_OK;
}

/* TopK: the k largest (or smallest) along one axis, best first (also when sorted=0: that
   order is one ONNX allows), equal values in index order. On rows a step for the values and
   one for the indices (integer rows below the axis' size), each over every vector along the
   axis (moved last and back when it is not); on constants folded. */
sg_status ox_op_topk(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if ((rc = ox_need_in(c, 0, err, &x))) return rc;
    int64_t k;
    if (c->opset < 10) {
        k = ox_attr_i(c, "k", -1);
    } else {
        int ki;
        if ((rc = ox_need_in(c, 1, err, &ki))) return rc;
        const ox_value *vk = &c->vals[ki];
        if (!vk->is_const || vk->dtype != OX_INT64 || vk->count != 1 || vk->batch_mask)
            return ox_node_err(c, err, SG_EINPUT, "K (input 1) must be one constant integer");
        k = vk->i[0];
    }
    const bool rows = !c->vals[x].is_const, largest = ox_attr_i(c, "largest", 1) != 0;
    if (c->vals[x].dtype != OX_FLOAT || (rows && (c->vals[x].is_bool || c->vals[x].is_double)))
        return ox_node_err(c, err, SG_EINPUT,
                           "TopK of int64 constants or conditions is not "
                           "supported");
    /* integer rows rank as floats (exact); their values stay integers of the same bound */
    const bool ints = rows && c->vals[x].is_int;
    const int64_t in_bound = c->vals[x].int_bound;
    const int r = c->vals[x].rank + (rows ? 1 : 0);
    const int64_t a0 = ox_attr_i(c, "axis", -1), axis = a0 < 0 ? a0 + r : a0;
    if (axis < 0 || axis >= r)
        return ox_node_err(c, err, SG_EINPUT, "axis %lld is out of range for rank %d",
                           (long long)a0, r);
    if (rows && axis == 0)
        return ox_node_err(c, err, SG_EINPUT,
                           "axis %lld is the batch: ranking across rows is not supported",
                           (long long)a0);
    int64_t d[OX_MAX_RANK + 1];
    ox_full_shape(&c->vals[x], d);
    const int64_t w = d[axis];
    if (k < 1 || k > w)
        return ox_node_err(c, err, SG_EINPUT, "K %lld is not 1..%lld (the axis' size)",
                           (long long)k, (long long)w);
    if (w * k > (int64_t)1 << 24)
        return ox_node_err(c, err, SG_EINPUT,
                           "TopK of %lld of %lld values: at most 2^24 comparisons per vector",
                           (long long)k, (long long)w);
    int perm[OX_MAX_RANK + 1];
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[axis] = r - 1;
    perm[r - 1] = (int)axis;
    const bool moved = axis != r - 1;
    const char *saved = c->partial;
    int y = x;
    if (moved && (rc = ox_permute(c, x, perm, "the input with the ranked axis last", err, &y)))
        return rc;
    const ox_value *vy = &c->vals[y];
    const int yr = vy->rank;
    int64_t od[OX_MAX_RANK + 1];
    memcpy(od, vy->dims, (size_t)yr * sizeof od[0]);
    od[yr - 1] = k;
    for (int out = 0; out < 2; out++) {
        if (out >= (int)c->node->n_output || !c->node->output[out] || !c->node->output[out][0])
            continue;
        int v;
        if (!rows) {
            c->partial = moved ? "the ranked values, axis last" : NULL;
            rc = ox_const_out_k(c, (size_t)out, yr, od, out ? OX_INT64 : OX_FLOAT, err, &v);
            c->partial = saved;
            if (rc) return rc;
            vy = &c->vals[y];
            float *idx = malloc((size_t)k * sizeof *idx);
            if (!idx) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
            for (int64_t g = 0; g < vy->count / w; g++) {
                const float *in = vy->f + g * w;
                sg_onnx_topk_row(in, (int)w, (int)k, largest, idx);
                for (int64_t j = 0; j < k; j++)
                    if (out)
                        c->vals[v].i[g * k + j] = (int64_t)idx[j];
                    else
                        c->vals[v].f[g * k + j] = in[(int)idx[j]];
            }
            free(idx);
        } else {
            const int groups = row_groups(c, vy, w, err);
            if (!groups) return SG_EINPUT;
            sg_onnx_step *s = ox_step_new(c, SG_OX_TOPK, err);
            if (!s) return SG_ENOMEM;
            s->in = vy->data;
            s->in_width = (int)w;
            s->width = (int)k;
            s->groups = groups;
            s->topk_largest = largest;
            s->topk_indices = out == 1;
            c->partial = moved ? "the ranked values, axis last" : NULL;
            rc = ox_dyn_out_k(c, (size_t)out, yr, od, err, &v);
            c->partial = saved;
            if (rc) return rc;
            if (out || ints) {
                c->vals[v].is_int = true;
                c->vals[v].int_bound = out ? w - 1 : in_bound;
            }
        }
        if (moved) {
            /* back in place, as output `out` */
            int z;
            if (out == 0) {
                if ((rc = ox_permute(c, v, perm, NULL, err, &z))) return rc;
            } else {
                if ((rc = ox_permute_k(c, 1, v, perm, err, &z))) return rc;
            }
            if (rows && (out || ints)) {
                c->vals[z].is_int = true;
                c->vals[z].int_bound = out ? w - 1 : in_bound;
            }
        }
        vy = &c->vals[y];
    }
    return SG_OK;
}

/* InstanceNormalization of rows [C, D...] (what GroupNorm and InstanceNorm1d export as): each
   channel's D... values normalised alone (a LAYERNORM step over C vectors), then scaled and
   shifted per channel (an AFFINE step, left out when Scale is all 1 and B all 0, as GroupNorm
   writes them before its own Mul and Add). */
sg_status ox_op_instancenorm(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if (ox_in(c, 0) >= 0 && c->vals[ox_in(c, 0)].is_const)
        return ox_node_err(c, err, SG_EINPUT, "constant input is not supported");
    if ((rc = row_input_ranked(c, 0, "InstanceNormalization", true, err, &x))) return rc;
    if ((rc = check_epsilon(c, err))) return rc;
    const ox_value *vx = &c->vals[x];
    if (vx->rank < 2)
        return ox_node_err(c, err, SG_EINPUT,
                           "input '%.100s' is rows of rank %d; InstanceNormalization needs "
                           "[batch, C, D...] (a spatial axis after the channels)",
                           vx->name, vx->rank);
    const ox_value *g, *b;
    if ((rc = const_input(c, 1, "scale", err, &g)) || (rc = const_input(c, 2, "B", err, &b)))
        return rc;
    const int64_t ch = vx->dims[0], w = vx->count / ch;
    if (g->count != ch || b->count != ch)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: scale/B hold %lld/%lld values for "
                           "%lld channels",
                           (long long)g->count, (long long)b->count, (long long)ch);
    bool plain = true;
    for (int64_t q = 0; q < ch; q++)
        plain &= g->f[q] == 1.0f && b->f[q] == 0.0f;
    sg_onnx_step *s = ox_step_new(c, SG_OX_LAYERNORM, err);
    if (!s) return SG_ENOMEM;
    s->scale = sg_alloc_aligned((size_t)w * sizeof(float));
    s->shift = sg_alloc_aligned((size_t)w * sizeof(float));
    if (!s->scale || !s->shift) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t j = 0; j < w; j++) {
        s->scale[j] = 1.0f;
        s->shift[j] = 0.0f;
    }
    s->eps = ox_attr_f(c, "epsilon", 1e-5f);
    s->in = vx->data;
    s->in_width = s->width = (int)w;
    s->groups = (int)ch;
    const char *saved = c->partial;
    if (!plain) c->partial = "the input normalised per channel";
    int v;
    rc = ox_dyn_out(c, vx->rank, vx->dims, err, &v);
    c->partial = saved;
    if (rc || plain) return rc;
    vx = &c->vals[x];
    g = &c->vals[ox_in(c, 1)]; /* (read again: the output grew the value table) */
    b = &c->vals[ox_in(c, 2)];
    s = ox_step_new(c, SG_OX_AFFINE, err);
    if (!s) return SG_ENOMEM;
    s->scale = sg_alloc_aligned((size_t)vx->count * sizeof(float));
    s->shift = sg_alloc_aligned((size_t)vx->count * sizeof(float));
    if (!s->scale || !s->shift) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t j = 0; j < vx->count; j++) {
        s->scale[j] = g->f[j / w];
        s->shift[j] = b->f[j / w];
    }
    s->in = c->vals[v].data;
    s->in_width = s->width = (int)vx->count;
    return ox_dyn_out(c, vx->rank, vx->dims, err, &v);
}

/* A softmax step over the axes from `axis` on of per-row x (each vector alone), output 0. */
static sg_status softmax_from(ox_ctx *c, bool log, int x, int64_t axis, sg_err *err, int *out)
{
    const ox_value *vx = &c->vals[x];
    int64_t w;
    const int groups = axis_groups(c, vx, axis, &w, err);
    if (!groups) return SG_EINPUT;
    sg_onnx_step *s = ox_step_new(c, log ? SG_OX_LOGSOFTMAX : SG_OX_SOFTMAX, err);
    if (!s) return SG_ENOMEM;
    s->in = vx->data;
    s->in_width = s->width = (int)w;
    s->groups = groups;
    return ox_dyn_out(c, vx->rank, vx->dims, err, out);
}

static sg_status softmax_last(ox_ctx *c, bool log, int x, sg_err *err, int *out)
{
    return softmax_from(c, log, x, c->vals[x].rank, err, out);
}

/* Softmax (or its log) of each vector of `inner` values of constant x, as output 0 of shape
   x's (or, with label, an unnamed value): the step's arithmetic, folded. */
static sg_status fold_softmax(ox_ctx *c, bool is_log, int x, int64_t inner, const char *label,
                              sg_err *err, int *out)
{
    if (c->vals[x].dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "input 0 ('%.100s') is not float", c->vals[x].name);
    const char *saved = c->partial;
    if (label) c->partial = label;
    int rc = ox_const_out(c, c->vals[x].rank, c->vals[x].dims, OX_FLOAT, err, out);
    c->partial = saved;
    if (rc) return rc;
    const ox_value *vx = &c->vals[x];
    float *o = c->vals[*out].f;
    for (int64_t g = 0; inner > 0 && g < vx->count / inner; g++) {
        const float *v = vx->f + g * inner;
        float *w = o + g * inner, mx = v[0];
        for (int64_t j = 1; j < inner; j++)
            mx = v[j] > mx ? v[j] : mx;
        for (int64_t j = 0; j < inner; j++)
            w[j] = expf(v[j] - mx);
        /* as the steps compute it: the denominator summed pairwise (folded constants stay
           within OX_MAX_FOLDED, far below 2^31 values) */
        const float sf = sg_onnx_sum_plain(w, (int)inner, 0), ls = logf(sf);
        for (int64_t j = 0; j < inner; j++)
            w[j] = is_log ? v[j] - mx - ls : w[j] / sf;
    }
    return SG_OK;
}

/* Softmax of a constant: over the axes from `axis` on before opset 13, over that one axis
   from 13 (moved last and back). */
static sg_status softmax_const(ox_ctx *c, bool log, int x, sg_err *err)
{
    const int r = c->vals[x].rank;
    int64_t axis = ox_attr_i(c, "axis", c->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (r < 1 || axis < 0 || axis >= r)
        return ox_node_err(c, err, SG_EINPUT, "axis %lld out of range for rank %d",
                           (long long)ox_attr_i(c, "axis", c->opset >= 13 ? -1 : 1), r);
    int64_t inner = 1;
    for (int i = (int)axis; i < r; i++)
        inner *= c->vals[x].dims[i];
    if (c->opset < 13 || axis == r - 1) {
        int v;
        return fold_softmax(c, log, x, inner, NULL, err, &v);
    }
    int perm[OX_MAX_RANK + 1], y, z, rc;
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[axis] = r - 1;
    perm[r - 1] = (int)axis;
    if ((rc = ox_permute(c, x, perm, "the input with the softmax axis last", err, &y))) return rc;
    if ((rc = fold_softmax(c, log, y, c->vals[x].dims[axis], "the softmax along the last axis", err,
                           &z)))
        return rc;
    return ox_permute(c, z, perm, NULL, err, &y);
}

sg_status ox_op_softmax(ox_ctx *c, bool log, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    const ox_value *vx = &c->vals[x];
    if (vx->is_const) return softmax_const(c, log, x, err);
    int r = vx->rank + 1;
    int64_t axis = ox_attr_i(c, "axis", c->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    /* Before opset 13 the input is flattened at axis: each vector of the axes from it on is
       one softmax (axis 1: the whole row). From 13 on it is that one axis: supported when it
       is the last (each vector along it alone). The batch axis is not supported. */
    if (axis < 1 || axis >= r)
        return ox_node_err(c, err, SG_EINPUT,
                           "axis %lld over rows of rank %d: the batch's axis is not supported",
                           (long long)ox_attr_i(c, "axis", c->opset >= 13 ? -1 : 1), vx->rank);
    if (c->opset >= 13 && axis != r - 1) {
        /* Over another axis (torch.softmax(x, 1) on [batch, tokens, k]): that axis is swapped
           with the last by a gather step, and back after. */
        int perm[OX_MAX_RANK + 1], y, z;
        for (int i = 0; i < r; i++)
            perm[i] = i;
        perm[axis] = r - 1;
        perm[r - 1] = (int)axis;
        const char *saved = c->partial;
        if ((rc = ox_permute(c, x, perm, "the input with the softmax axis last", err, &y)))
            return rc;
        c->partial = "the softmax along the last axis";
        rc = softmax_last(c, log, y, err, &z);
        c->partial = saved;
        if (rc) return rc;
        return ox_permute(c, z, perm, NULL, err, &y);
    }
    int v;
    return softmax_from(c, log, x, axis, err, &v);
}

/* A reduction step over the last axis of per-row x (each vector along it alone), output 0
   of row shape (rank, dims); kind -1 is the mean. */
static sg_status reduce_last(ox_ctx *c, int kind, int x, int rank, const int64_t *dims, sg_err *err)
{
    const ox_value *vx = &c->vals[x];
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
    int v;
    return ox_dyn_out(c, rank, dims, err, &v);
}

/* A reduction of constant x (its axes to reduce already last, `inner` elements each) into
   output 0 of shape (rank, dims): as the steps compute it; int64 for the sum,
   product, maximum and minimum (a shape's element count: x.std() in PyTorch). */
static sg_status fold_reduce(ox_ctx *c, int kind, int x, int64_t inner, int rank,
                             const int64_t *dims, sg_err *err)
{
    const int dtype = c->vals[x].dtype;
    const bool arg = kind >= SG_OXR_ARGMAX;
    if (dtype == OX_INT64 && !arg && kind != SG_OXR_SUM && kind != SG_OXR_PROD &&
        kind != SG_OXR_MAX && kind != SG_OXR_MIN)
        return ox_node_err(c, err, SG_EINPUT, "this reduction of int64 constants is not supported");
    if (inner < 1 || inner > INT32_MAX)
        return ox_node_err(c, err, SG_EINPUT, "a reduction over %lld elements", (long long)inner);
    int v, rc = ox_const_out(c, rank, dims, arg ? OX_INT64 : dtype, err, &v);
    if (rc) return rc;
    const ox_value *vx = &c->vals[x];
    ox_value *o = &c->vals[v];
    for (int64_t g = 0; g < o->count; g++) {
        if (arg) { /* the index, first (or last) of the extreme values; a NaN wins */
            const bool max = kind == SG_OXR_ARGMAX || kind == SG_OXR_ARGMAX_LAST;
            const bool last = kind == SG_OXR_ARGMAX_LAST || kind == SG_OXR_ARGMIN_LAST;
            if (dtype == OX_FLOAT) {
                o->i[g] = (int64_t)sg_onnx_reduce_row((sg_onnx_reduce)kind, vx->f + g * inner,
                                                      (int)inner);
                continue;
            }
            const int64_t *in = vx->i + g * inner;
            int64_t best = 0;
            for (int64_t j = 1; j < inner; j++) {
                const bool wins = max ? (last ? in[j] >= in[best] : in[j] > in[best])
                                      : (last ? in[j] <= in[best] : in[j] < in[best]);
                if (wins) best = j;
            }
            o->i[g] = best;
            continue;
        }
        if (dtype == OX_FLOAT) {
            const float *in = vx->f + g * inner;
            o->f[g] = kind >= 0 ? sg_onnx_reduce_row((sg_onnx_reduce)kind, in, (int)inner)
                                : sg_onnx_mean_row(in, (int)inner);
            continue;
        }
        const int64_t *in = vx->i + g * inner;
        int64_t acc = in[0];
        for (int64_t j = 1; j < inner; j++) {
            bool over = false;
            if (kind == SG_OXR_SUM) over = __builtin_add_overflow(acc, in[j], &acc);
            if (kind == SG_OXR_PROD) over = __builtin_mul_overflow(acc, in[j], &acc);
            if (kind == SG_OXR_MAX && in[j] > acc) acc = in[j];
            if (kind == SG_OXR_MIN && in[j] < acc) acc = in[j];
            if (over) return ox_node_err(c, err, SG_EINPUT, "int64 overflow in the reduction");
        }
        o->i[g] = acc;
    }
    return SG_OK;
}

/* A reduction over the given axes (the attribute, or the constant second input from opset 13
   for ReduceSum), kind -1 the mean. On rows: any axes but the batch; the last alone is one
   step, others are first moved last by a gather step. On constants: folded (no axes: all). */

static sg_status reduce_row(ox_ctx *c, int kind, sg_err *err)
{
    int x, rc;
    if ((rc = ox_need_in(c, 0, err, &x))) return rc;
    int64_t axes[OX_MAX_RANK];
    int n;
    if ((rc = ox_get_axes(c, 1, axes, &n, err))) return rc;
    /* No axes with noop_with_empty_axes (ReduceSum from opset 13) reduces nothing. */
    if (n == 0 && ox_attr_i(c, "noop_with_empty_axes", 0) != 0) return ox_op_identity(c, err);
    return ox_reduce_axes(c, kind, x, axes, n, ox_attr_i(c, "keepdims", 1) != 0, err);
}

/* ArgMax and ArgMin over one axis (attribute, default 0): on rows a reduction step whose
   result, the index, is integer rows (exact in float); on constants folded to int64. */
sg_status ox_op_argmax(ox_ctx *c, bool max, sg_err *err)
{
    int x, rc;
    if ((rc = ox_need_in(c, 0, err, &x))) return rc;
    const bool last = ox_attr_i(c, "select_last_index", 0) != 0;
    const int kind = max ? (last ? SG_OXR_ARGMAX_LAST : SG_OXR_ARGMAX)
                         : (last ? SG_OXR_ARGMIN_LAST : SG_OXR_ARGMIN);
    int64_t axis = ox_attr_i(c, "axis", 0);
    const int r = c->vals[x].rank + (c->vals[x].is_const ? 0 : 1);
    const int64_t a = axis < 0 ? axis + r : axis;
    const int64_t size = a >= 0 && a < r ? (c->vals[x].is_const ? c->vals[x].dims[a]
                                            : a > 0             ? c->vals[x].dims[a - 1]
                                                                : 1)
                                         : 0;
    if ((rc = ox_reduce_axes(c, kind, x, &axis, 1, ox_attr_i(c, "keepdims", 1) != 0, err)))
        return rc;
    ox_value *o = &c->vals[c->n_vals - 1];
    if (!o->is_const) {
        o->is_int = true;
        o->int_bound = size > 0 ? size - 1 : 0;
    }
    return SG_OK;
}

sg_status ox_reduce_axes(ox_ctx *c, int kind, int x, const int64_t *axes, int n, bool keep,
                         sg_err *err)
{
    int rc;
    const bool rows = !c->vals[x].is_const;
    int64_t d[OX_MAX_RANK + 1];
    const int r = rows ? c->vals[x].rank + 1 : c->vals[x].rank;
    if (rows) d[0] = -1;
    memcpy(d + (rows ? 1 : 0), c->vals[x].dims, (size_t)c->vals[x].rank * sizeof d[0]);
    if (rows && c->vals[x].rank < 1)
        return ox_node_err(c, err, SG_EINPUT, "rows of rank 0 have no axis to reduce");
    bool red[OX_MAX_RANK + 1] = {false};
    if (n == 0 && rows)
        return ox_node_err(c, err, SG_EINPUT, "no axes: reducing over the batch is not supported");
    for (int i = 0; n == 0 && i < r; i++)
        red[i] = true;
    for (int k = 0; k < n; k++) {
        const int64_t a = axes[k] < 0 ? axes[k] + r : axes[k];
        if (a < 0 || a >= r || red[a])
            return ox_node_err(c, err, SG_EINPUT, "axis %lld is out of range or repeated",
                               (long long)axes[k]);
        if (rows && a == 0)
            return ox_node_err(c, err, SG_EINPUT,
                               "axis %lld is the batch: reducing over it is not supported",
                               (long long)axes[k]);
        red[a] = true;
    }
    /* The output shape, and the order that puts the reduced axes last. */
    int64_t out[OX_MAX_RANK + 1], moved[OX_MAX_RANK + 1], inner = 1;
    int perm[OX_MAX_RANK + 1], ro = 0, np = 0;
    bool in_place = true;
    for (int i = 0; i < r; i++)
        if (!red[i]) {
            in_place &= np == i;
            perm[np] = i;
            moved[np++] = d[i];
        }
    const int kept = np;
    for (int i = 0; i < r; i++)
        if (red[i]) {
            perm[np++] = i;
            inner *= d[i];
        }
    for (int i = 0; i < r; i++)
        if (!red[i] || keep) out[ro++] = red[i] ? 1 : d[i];
    int y = x;
    if (!in_place && (rc = ox_permute(c, x, perm, "the input with the reduced axes last", err, &y)))
        return rc;
    if (!rows) return fold_reduce(c, kind, y, inner, ro, out, err);
    /* Rows: [kept row axes..., the reduced ones as one], reduced over the last. */
    moved[kept] = inner;
    const char *saved = c->partial;
    const bool last_only = in_place && r - kept == 1;
    if (!last_only) {
        c->partial = "the input with the reduced axes as one";
        rc = ox_alias_out(c, y, kept, moved + 1, err);
        c->partial = saved;
        if (rc) return rc;
        y = c->n_vals - 1;
    }
    return reduce_last(c, kind, y, ro - 1, out + 1, err);
}

sg_status ox_op_reduce_mean(ox_ctx *c, sg_err *err)
{
    return reduce_row(c, -1, err);
}

sg_status ox_op_reduce(ox_ctx *c, int kind, sg_err *err)
{
    return reduce_row(c, kind, err);
}
