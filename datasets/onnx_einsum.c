/*
 * Einsum, compiled into the steps the other nodes use. The operands are contracted two at a
 * time, left to right; before each contraction an index that neither the other operand nor
 * anything later reads is summed away (a ReduceSum). The indices of a pair then fall into
 * four sets: shared and kept (G), shared and summed (K), kept from the first alone (L) and
 * from the second alone (R). With the per-row operand laid out as [batch, L, G, K]:
 *   - times a constant laid out as [G, K, R]: one GEMM step, each vector of K values times
 *     the matrix of its G index (a stack of weight matrices when G is not empty);
 *   - times another per-row operand laid out as [batch, G, K, R]: a per-row MatMul step
 *     ([G, L, K] @ [G, K, R] in each row).
 * Constants alone are folded. Gather steps move axes where needed. The batch's index must
 * stay the first of the output, and a repeated index within one operand (a diagonal) or
 * ellipsis dimensions that broadcast are refused.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* Labels: a letter's code, or OX_ELL + j for the j-th ellipsis dimension from the right. */
#define OX_ELL 256
#define OX_MAX_TERMS 16

typedef struct {
    int v; /* value index */
    bool rows;
    int r; /* full rank (the batch axis 0 included for rows) */
    int lab[OX_MAX_RANK + 1];
    int64_t dim[OX_MAX_RANK + 1]; /* -1 for the batch */
} term;

static bool has(const int *labs, int n, int l)
{
    for (int i = 0; i < n; i++)
        if (labs[i] == l) return true;
    return false;
}

static void label_str(int l, char *buf, size_t len)
{
    if (l >= OX_ELL)
        snprintf(buf, len, "... dimension %d from the right", l - OX_ELL + 1);
    else
        snprintf(buf, len, "'%c'", l);
}

/* One side of the equation's terms (spaces dropped): labels into lab (at most max), the
   ellipsis' position into *ell (-1: none). */
static sg_status parse_term(ox_ctx *c, const char *eq, const char *s, size_t n, int *lab, int *nl,
                            int *ell, sg_err *err)
{
    *nl = 0;
    *ell = -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') continue;
        if (s[i] == '.') {
            if (*ell >= 0 || i + 2 >= n || s[i + 1] != '.' || s[i + 2] != '.')
                return ox_node_err(c, err, SG_EINPUT,
                                   "equation '%.100s': a '.' that is not one ellipsis '...' of a "
                                   "term",
                                   eq);
            *ell = *nl;
            i += 2;
            continue;
        }
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return ox_node_err(c, err, SG_EINPUT,
                               "equation '%.100s': character '%c' is not a letter", eq, s[i]);
        if (*nl >= OX_MAX_RANK + 1)
            return ox_node_err(c, err, SG_EINPUT,
                               "equation '%.100s': a term of more than %d indices", eq,
                               OX_MAX_RANK + 1);
        lab[(*nl)++] = s[i];
    }
    return SG_OK;
}

/* A term's labels with its ellipsis (at ell, e dimensions) expanded. */
static sg_status expand_ellipsis(ox_ctx *c, const char *eq, int *lab, int nl, int ell, int e,
                                 int *out_n, sg_err *err)
{
    if (ell < 0) {
        *out_n = nl;
        return SG_OK;
    }
    if (nl + e > OX_MAX_RANK + 1)
        return ox_node_err(c, err, SG_EINPUT, "equation '%.100s': a term of more than %d indices",
                           eq, OX_MAX_RANK + 1);
    memmove(lab + ell + e, lab + ell, (size_t)(nl - ell) * sizeof *lab);
    for (int j = 0; j < e; j++)
        lab[ell + j] = OX_ELL + (e - 1 - j);
    *out_n = nl + e;
    return SG_OK;
}

/* The labels' sizes must agree; the batch's label (-1) only at a per-row operand's axis 0. */
static sg_status check_sizes(ox_ctx *c, const char *eq, const term *t, int n, sg_err *err)
{
    for (int a = 0; a < n; a++)
        for (int i = 0; i < t[a].r; i++) {
            for (int j = 0; j < i; j++)
                if (t[a].lab[j] == t[a].lab[i]) {
                    char l[48];
                    label_str(t[a].lab[i], l, sizeof l);
                    return ox_node_err(c, err, SG_EINPUT,
                                       "equation '%.100s': index %s repeats in input %d (a "
                                       "diagonal), which is not supported",
                                       eq, l, a);
                }
            for (int b = 0; b <= a; b++)
                for (int j = 0; j < t[b].r; j++) {
                    if (t[b].lab[j] != t[a].lab[i] || (a == b && j == i)) continue;
                    const int64_t x = t[a].dim[i], y = t[b].dim[j];
                    char l[48];
                    label_str(t[a].lab[i], l, sizeof l);
                    if ((x < 0) != (y < 0))
                        return ox_node_err(c, err, SG_EINPUT,
                                           "equation '%.100s': index %s is the batch in one input "
                                           "and a row axis in another (it would mix rows of the "
                                           "batch)",
                                           eq, l);
                    if (x != y)
                        return ox_node_err(c, err, SG_EINPUT,
                                           "shape does not match: equation '%.100s': index %s "
                                           "has size %lld in input %d and %lld in input %d%s",
                                           eq, l, (long long)y, b, (long long)x, a,
                                           x == 1 || y == 1 ? " (broadcasting is not supported)"
                                                            : "");
                }
        }
    return SG_OK;
}

static int64_t dim_of(const term *t, int l)
{
    for (int i = 0; i < t->r; i++)
        if (t->lab[i] == l) return t->dim[i];
    return 1;
}

static void set_term(ox_ctx *c, term *t, int v)
{
    t->v = v;
    t->rows = !c->vals[v].is_const;
    t->r = ox_full_shape(&c->vals[v], t->dim);
}

/* Sums away t's indices not in keep (n labels). */
static sg_status sum_out(ox_ctx *c, const char *eq, term *t, const int *keep, int n, sg_err *err)
{
    int64_t axes[OX_MAX_RANK + 1];
    int na = 0, lab[OX_MAX_RANK + 1], nl = 0;
    for (int i = 0; i < t->r; i++) {
        if (has(keep, n, t->lab[i])) {
            lab[nl++] = t->lab[i];
            continue;
        }
        if (t->rows && i == 0) {
            char l[48];
            label_str(t->lab[0], l, sizeof l);
            return ox_node_err(c, err, SG_EINPUT,
                               "equation '%.100s': the batch's index %s is summed over (the "
                               "output must keep it as its first index)",
                               eq, l);
        }
        axes[na++] = i;
    }
    if (!na) return SG_OK;
    const char *saved = c->partial;
    c->partial = "an input of Einsum summed over an index no other reads";
    const int rc = ox_reduce_axes(c, SG_OXR_SUM, t->v, axes, na, false, err);
    c->partial = saved;
    if (rc) return rc;
    set_term(c, t, c->n_vals - 1);
    memcpy(t->lab, lab, (size_t)nl * sizeof *lab);
    return SG_OK;
}

/* t with its axes in the order of labels order (all of t's), as the partial value label (or
   output 0 when label is NULL). */
static sg_status permute_to(ox_ctx *c, term *t, const int *order, const char *label, sg_err *err)
{
    int perm[OX_MAX_RANK + 1];
    bool same = true;
    for (int i = 0; i < t->r; i++) {
        perm[i] = 0;
        for (int j = 0; j < t->r; j++)
            if (t->lab[j] == order[i]) perm[i] = j;
        same &= perm[i] == i;
    }
    if (same && label) return SG_OK;
    int v, rc = ox_permute(c, t->v, perm, label, err, &v);
    if (rc) return rc;
    set_term(c, t, v);
    memcpy(t->lab, order, (size_t)t->r * sizeof *order);
    return SG_OK;
}

/* Per-row t under another row shape, as a partial value. */
static sg_status reshape_rows(ox_ctx *c, term *t, int rank, const int64_t *dims, sg_err *err)
{
    const char *saved = c->partial;
    c->partial = "an input of Einsum laid out for a product";
    int rc = ox_alias_out(c, t->v, rank, dims, err);
    c->partial = saved;
    if (rc) return rc;
    t->v = c->n_vals - 1;
    return SG_OK;
}

/* Two constants: folded, summing in float in index order, over their indices; the result
   keeps the indices in keep (a's, then b's). */
static sg_status fold_pair(ox_ctx *c, term *a, const term *b, const int *keep, int nk, sg_err *err)
{
    if (c->vals[a->v].dtype != OX_FLOAT || c->vals[b->v].dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "Einsum of int64 constants is not supported");
    int all[2 * (OX_MAX_RANK + 1)], na = 0, res[OX_MAX_RANK + 1], nr = 0;
    int64_t size[2 * (OX_MAX_RANK + 1)], rdims[OX_MAX_RANK + 1], iters = 1;
    for (int s = 0; s < 2; s++) {
        const term *t = s ? b : a;
        for (int i = 0; i < t->r; i++)
            if (!has(all, na, t->lab[i])) {
                size[na] = t->dim[i];
                iters *= t->dim[i];
                if (iters > (int64_t)(OX_MAX_FOLDED / sizeof(float)))
                    return ox_node_err(c, err, SG_EINPUT,
                                       "folding Einsum of constants takes more than %zu products",
                                       OX_MAX_FOLDED / sizeof(float));
                all[na++] = t->lab[i];
                if (has(keep, nk, t->lab[i])) {
                    if (nr >= OX_MAX_RANK)
                        return ox_node_err(c, err, SG_EINPUT, "a result of rank over %d",
                                           OX_MAX_RANK);
                    rdims[nr] = t->dim[i];
                    res[nr++] = t->lab[i];
                }
            }
    }
    const char *saved = c->partial;
    c->partial = "a product of Einsum's constant inputs";
    int v, rc = ox_const_out(c, nr, rdims, OX_FLOAT, err, &v);
    c->partial = saved;
    if (rc) return rc;
    /* strides of each index in a, b and the result */
    int64_t sa[2 * (OX_MAX_RANK + 1)] = {0}, sb[2 * (OX_MAX_RANK + 1)] = {0},
                                  sr[2 * (OX_MAX_RANK + 1)] = {0}, idx[2 * (OX_MAX_RANK + 1)] = {0};
    for (int q = 0; q < na; q++) {
        int64_t st = 1;
        for (int i = a->r - 1; i >= 0; st *= a->dim[i--])
            if (a->lab[i] == all[q]) sa[q] = st;
        st = 1;
        for (int i = b->r - 1; i >= 0; st *= b->dim[i--])
            if (b->lab[i] == all[q]) sb[q] = st;
        st = 1;
        for (int i = nr - 1; i >= 0; st *= rdims[i--])
            if (res[i] == all[q]) sr[q] = st;
    }
    const float *A = c->vals[a->v].f, *B = c->vals[b->v].f;
    float *R = c->vals[v].f;
    for (int64_t j = 0; j < c->vals[v].count; j++)
        R[j] = 0;
    for (int64_t it = 0; it < iters; it++) {
        int64_t ia = 0, ib = 0, ir = 0;
        for (int q = 0; q < na; q++) {
            ia += idx[q] * sa[q];
            ib += idx[q] * sb[q];
            ir += idx[q] * sr[q];
        }
        R[ir] += A[ia] * B[ib];
        for (int q = na - 1; q >= 0; q--) {
            if (++idx[q] < size[q]) break;
            idx[q] = 0;
        }
    }
    set_term(c, a, v);
    memcpy(a->lab, res, (size_t)nr * sizeof *res);
    return SG_OK;
}

/* Appends k labels to a list of n; the new length. */
static int put(int *dst, int n, const int *src, int k)
{
    memcpy(dst + n, src, (size_t)k * sizeof *src);
    return n + k;
}

/* Appends k labels of term t and their sizes; the new length. */
static int put_dims(int *res, int64_t *dims, int n, const term *t, const int *labs, int k)
{
    for (int i = 0; i < k; i++) {
        res[n] = labs[i];
        dims[n++] = dim_of(t, labs[i]);
    }
    return n;
}

static int64_t product(const term *t, const int *labs, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= dim_of(t, labs[i]);
    return p;
}

static sg_status too_many(ox_ctx *c, const char *eq, sg_err *err)
{
    return ox_node_err(c, err, SG_EINPUT, "equation '%.100s': a product of rank over %d", eq,
                       OX_MAX_RANK);
}

/* The product of a and b (a per-row or both constants), into a; keep: the indices read
   after (the output's and later inputs'). */
static sg_status contract(ox_ctx *c, const char *eq, term *a, term *b, const int *keep, int nk,
                          sg_err *err)
{
    int rc, k2[(OX_MAX_TERMS + 2) * (OX_MAX_RANK + 1)], n2 = 0;
    /* each side keeps what the other or later nodes read */
    for (int s = 0; s < 2; s++) {
        term *t = s ? b : a, *o = s ? a : b;
        n2 = 0;
        for (int i = 0; i < nk; i++)
            k2[n2++] = keep[i];
        for (int i = 0; i < o->r; i++)
            k2[n2++] = o->lab[i];
        if ((rc = sum_out(c, eq, t, k2, n2, err))) return rc;
    }
    if (!a->rows && !b->rows) return fold_pair(c, a, b, keep, nk, err);
    term *R = a->rows ? a : b, *O = a->rows ? b : a;
    const int beta = R->lab[0];
    int G[OX_MAX_RANK + 1], K[OX_MAX_RANK + 1], L[OX_MAX_RANK + 1], Rr[OX_MAX_RANK + 1];
    int ng = 0, nkk = 0, nl = 0, nr = 0;
    for (int i = 1; i < R->r; i++) {
        const int l = R->lab[i];
        if (!has(O->lab, O->r, l))
            L[nl++] = l;
        else if (has(keep, nk, l))
            G[ng++] = l;
        else
            K[nkk++] = l;
    }
    for (int i = O->rows ? 1 : 0; i < O->r; i++)
        if (!has(R->lab, R->r, O->lab[i])) Rr[nr++] = O->lab[i];
    const int64_t gs = product(R, G, ng), ls = product(R, L, nl), ks = product(R, K, nkk),
                  rs = product(O, Rr, nr);
    if (1 + nl + ng + nr > OX_MAX_RANK + 1) return too_many(c, eq, err);
    int order[OX_MAX_RANK + 1], n = 0, res[OX_MAX_RANK + 1];
    int64_t dims[OX_MAX_RANK + 1];
    if (!O->rows) {
        /* [batch, L, G, K] times [G, K, R] */
        const ox_value *w = &c->vals[O->v];
        if (w->dtype != OX_FLOAT)
            return ox_node_err(c, err, SG_EINPUT, "input '%.100s' is not float", w->name);
        for (int64_t j = 0; j < w->count; j++)
            if (!isfinite(w->f[j]))
                return ox_node_err(c, err, SG_EINPUT, "weight '%.100s' element %lld is not finite",
                                   w->name, (long long)j);
        order[0] = beta;
        n = put(order, put(order, put(order, 1, L, nl), G, ng), K, nkk);
        if ((rc = permute_to(c, R, order, "an input of Einsum laid out for a product", err)))
            return rc;
        n = put(order, put(order, put(order, 0, G, ng), K, nkk), Rr, nr);
        if ((rc = permute_to(c, O, order, "a constant of Einsum laid out for a product", err)))
            return rc;
        const int64_t two[2] = {ls * gs, ks};
        if ((rc = reshape_rows(c, R, 2, two, err))) return rc;
        res[0] = beta;
        dims[0] = -1;
        n = put_dims(res, dims, put_dims(res, dims, put_dims(res, dims, 1, R, L, nl), R, G, ng), O,
                     Rr, nr);
        const char *saved = c->partial;
        c->partial = "a product in Einsum";
        int v;
        rc = ox_gemm_blocks(c, R->v, c->vals[O->v].f, gs, rs, n - 1, dims + 1, err, &v);
        c->partial = saved;
        if (rc) return rc;
    } else {
        /* [batch, G, L, K] @ [batch, G, K, R] */
        if (O->lab[0] != beta) {
            char l1[48], l2[48];
            label_str(beta, l1, sizeof l1);
            label_str(O->lab[0], l2, sizeof l2);
            return ox_node_err(c, err, SG_EINPUT,
                               "equation '%.100s': two per-row inputs with batch indices %s and "
                               "%s (it would mix rows of the batch)",
                               eq, l1, l2);
        }
        order[0] = beta;
        n = put(order, put(order, put(order, 1, G, ng), L, nl), K, nkk);
        if ((rc = permute_to(c, R, order, "an input of Einsum laid out for a product", err)))
            return rc;
        n = put(order, put(order, put(order, 1, G, ng), K, nkk), Rr, nr);
        if ((rc = permute_to(c, O, order, "an input of Einsum laid out for a product", err)))
            return rc;
        res[0] = beta;
        dims[0] = -1;
        n = put_dims(res, dims, put_dims(res, dims, put_dims(res, dims, 1, R, G, ng), R, L, nl), O,
                     Rr, nr);
        const int64_t ra[3] = {gs, ls, ks}, rb[3] = {gs, ks, rs};
        if ((rc = reshape_rows(c, R, 3, ra, err)) || (rc = reshape_rows(c, O, 3, rb, err)))
            return rc;
        const char *saved = c->partial;
        c->partial = "a product in Einsum";
        rc = ox_matmul_rows(c, R->v, O->v, err);
        if (!rc) {
            c->partial = "a product in Einsum";
            rc = ox_alias_out(c, c->n_vals - 1, n - 1, dims + 1, err);
        }
        c->partial = saved;
        if (rc) return rc;
    }
    set_term(c, a, c->n_vals - 1);
    memcpy(a->lab, res, (size_t)n * sizeof *res);
    return SG_OK;
}

sg_status ox_op_einsum(ox_ctx *c, sg_err *err)
{
    const Onnx__AttributeProto *at = ox_attr(c, "equation");
    if (!at || !at->s.data || at->s.len == 0)
        return ox_node_err(c, err, SG_EINPUT, "attribute 'equation' is missing");
    char eq[256];
    if (at->s.len >= sizeof eq || memchr(at->s.data, 0, at->s.len))
        return ox_node_err(c, err, SG_EINPUT, "attribute 'equation' is not a short string");
    memcpy(eq, at->s.data, at->s.len);
    eq[at->s.len] = 0;
    const size_t n_in = c->node->n_input;
    if (n_in < 1 || n_in > OX_MAX_TERMS)
        return ox_node_err(c, err, SG_EINPUT, "%zu inputs (1..%d are supported)", n_in,
                           OX_MAX_TERMS);
    term t[OX_MAX_TERMS];
    int rc;
    for (size_t k = 0; k < n_in; k++) {
        int v;
        if ((rc = ox_need_in(c, k, err, &v))) return rc;
        set_term(c, &t[k], v);
    }
    const char *arrow = strstr(eq, "->");
    const size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
    /* the inputs' terms */
    int e_max = 0, count[128] = {0};
    size_t pos = 0;
    for (size_t k = 0; k < n_in; k++) {
        size_t end = pos;
        while (end < lhs_len && eq[end] != ',')
            end++;
        if ((end == lhs_len) != (k == n_in - 1))
            return ox_node_err(c, err, SG_EINPUT,
                               "equation '%.100s' does not have one term per input (%zu)", eq,
                               n_in);
        int nl, ell, lab[OX_MAX_RANK + 1];
        if ((rc = parse_term(c, eq, eq + pos, end - pos, lab, &nl, &ell, err))) return rc;
        const int e = t[k].r - nl;
        if (e < 0 || (ell < 0 && e != 0))
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match: equation '%.100s' has %d indices for input "
                               "%zu ('%.100s'), of rank %d",
                               eq, nl, k, c->vals[t[k].v].name, t[k].r);
        int n = 0;
        if ((rc = expand_ellipsis(c, eq, lab, nl, ell, e, &n, err))) return rc;
        memcpy(t[k].lab, lab, (size_t)n * sizeof *lab);
        if (e > e_max) e_max = e;
        for (int i = 0; i < n; i++)
            if (lab[i] < 128) count[lab[i]]++;
        pos = end + 1;
    }
    if ((rc = check_sizes(c, eq, t, (int)n_in, err))) return rc;
    /* the output's */
    int out[OX_MAX_RANK + 1], no = 0;
    if (arrow) {
        const char *o = arrow + 2;
        int ell;
        if ((rc = parse_term(c, eq, o, strlen(o), out, &no, &ell, err))) return rc;
        if ((rc = expand_ellipsis(c, eq, out, no, ell, e_max, &no, err))) return rc;
        for (int i = 0; i < no; i++) {
            bool found = false;
            for (size_t k = 0; k < n_in; k++)
                found |= has(t[k].lab, t[k].r, out[i]);
            char l[48];
            label_str(out[i], l, sizeof l);
            if (!found || has(out, i, out[i]))
                return ox_node_err(c, err, SG_EINPUT, "equation '%.100s': output index %s %s", eq,
                                   l, found ? "repeats" : "is in no input");
        }
    } else { /* implicit: the ellipsis, then the letters used once, in order */
        for (int j = e_max - 1; j >= 0; j--)
            out[no++] = OX_ELL + j;
        for (int l = 'A'; l <= 'z'; l++)
            if (count[l] == 1) {
                if (no >= OX_MAX_RANK + 1) return too_many(c, eq, err);
                out[no++] = l;
            }
    }
    /* left to right */
    term acc = t[0];
    for (size_t k = 1; k < n_in; k++) {
        int keep[(OX_MAX_TERMS + 1) * (OX_MAX_RANK + 1)], nk = 0;
        for (int i = 0; i < no; i++)
            keep[nk++] = out[i];
        for (size_t q = k + 1; q < n_in; q++)
            for (int i = 0; i < t[q].r; i++)
                keep[nk++] = t[q].lab[i];
        if ((rc = contract(c, eq, &acc, &t[k], keep, nk, err))) return rc;
    }
    if ((rc = sum_out(c, eq, &acc, out, no, err))) return rc;
    if (acc.rows && out[0] != acc.lab[0]) {
        char l[48];
        label_str(acc.lab[0], l, sizeof l);
        return ox_batch_err(
            c, err, "equation '%.100s': the output must keep the batch's index %s first", eq, l);
    }
    return permute_to(c, &acc, out, NULL, err);
}
