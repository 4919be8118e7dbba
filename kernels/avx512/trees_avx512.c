/*
 * AVX-512 tree kernels (compiled with -mavx512f and friends; called only after the
 * dispatcher checked cpuid and the OS's ZMM and opmask state).
 *
 * Batch: two vectors of 16 rows walk one tree in lock-step for exactly the tree's
 * depth, gathering node fields and features; leaves point to themselves, so a row
 * that reached its leaf early stays there. Two independent vectors hide the gather
 * latency. Single row: 16 trees walk at once over absolute node indices. In both,
 * the leaves of a row are added in tree order, so the bits equal the scalar
 * reference's. Rows that do not fill a block go through the scalar reference.
 */
#include "kernels/kernels_internal.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))
#define LANES 16

/* One step for a vector of walkers: idx (int32 node offsets * 4 into base) -> next. */
AI __m512i step(const int *base, __m512i off4, const float *X, __m512i rowoff)
{
    const __m512 thr = _mm512_i32gather_ps(off4, (const float *)base, 4);
    const __m512i feat = _mm512_i32gather_epi32(off4, base + 1, 4);
    const __m512i left = _mm512_i32gather_epi32(off4, base + 2, 4);
    const __m512i fidx = _mm512_and_si512(feat, _mm512_set1_epi32((int)SG_TREE_FEATURE_MASK));
    const __m512 x = _mm512_i32gather_ps(_mm512_add_epi32(rowoff, fidx), X, 4);
    const __mmask16 lt = _mm512_cmp_ps_mask(x, thr, _CMP_LT_OQ);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __mmask16 dl = _mm512_movepi32_mask(feat);
    const __mmask16 go_left = lt | (nan & dl);
    /* left + 1 when going right, left when going left. */
    const __m512i next = _mm512_mask_add_epi32(_mm512_add_epi32(left, _mm512_set1_epi32(1)),
                                               go_left, left, _mm512_setzero_si512());
    return _mm512_slli_epi32(next, 2);
}

AI void add_leaves(__m512 leaf, float *M, int64_t r, int G, int g)
{
    float tmp[LANES];
    _mm512_storeu_ps(tmp, leaf);
    for (int j = 0; j < LANES; j++)
        M[(r + j) * G + g] += tmp[j];
}

void sg_tree_margins_avx512(const sg_tree_ensemble *e, const float *X, int64_t n, float *M)
{
    const int d = e->n_features, G = e->n_groups;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i rowoff = _mm512_mullo_epi32(lane, _mm512_set1_epi32(d));
    const int64_t block = 2 * LANES;
    int64_t r0 = 0;
    for (; r0 + block <= n; r0 += block) {
        const float *Xa = X + r0 * d, *Xb = X + (r0 + LANES) * d;
        __m512 acc_a = _mm512_setzero_ps(), acc_b = _mm512_setzero_ps();
        if (G == 1) {
            acc_a = _mm512_loadu_ps(M + r0);
            acc_b = _mm512_loadu_ps(M + r0 + LANES);
        }
        for (int t = 0; t < e->n_trees; t++) {
            const int *base = (const int *)(e->nodes + e->tree_start[t]);
            __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
            for (int s = 0; s < e->tree_depth[t]; s++) {
                a = step(base, a, Xa, rowoff);
                b = step(base, b, Xb, rowoff);
            }
            const __m512 la = _mm512_i32gather_ps(a, (const float *)base + 3, 4);
            const __m512 lb = _mm512_i32gather_ps(b, (const float *)base + 3, 4);
            if (G == 1) {
                acc_a = _mm512_add_ps(acc_a, la);
                acc_b = _mm512_add_ps(acc_b, lb);
            } else {
                add_leaves(la, M, r0, G, e->tree_group[t]);
                add_leaves(lb, M, r0 + LANES, G, e->tree_group[t]);
            }
        }
        if (G == 1) {
            _mm512_storeu_ps(M + r0, acc_a);
            _mm512_storeu_ps(M + r0 + LANES, acc_b);
        }
    }
    if (r0 < n) sg_tree_margins_scalar(e, X + r0 * d, n - r0, M + r0 * G);
}

void sg_tree_margins_one_avx512(const sg_tree_ensemble *e, const float *x, float *M)
{
    const int *base = (const int *)e->nodes;
    const __m512i zero = _mm512_setzero_si512();
    int t0 = 0;
    for (; t0 + LANES <= e->n_trees; t0 += LANES) {
        int depth = 0;
        int32_t start[LANES];
        for (int j = 0; j < LANES; j++) {
            start[j] = (int32_t)e->tree_start[t0 + j];
            if (e->tree_depth[t0 + j] > depth) depth = e->tree_depth[t0 + j];
        }
        /* Absolute node offsets: a tree's root is tree_start, and its children's
           indices are relative to that start. */
        const __m512i st = _mm512_loadu_si512((const void *)start);
        __m512i rel = zero;
        for (int s = 0; s < depth; s++) {
            const __m512i off4 = _mm512_slli_epi32(_mm512_add_epi32(st, rel), 2);
            rel = _mm512_srli_epi32(step(base, off4, x, zero), 2);
        }
        const __m512i off4 = _mm512_slli_epi32(_mm512_add_epi32(st, rel), 2);
        float leaf[LANES];
        _mm512_storeu_ps(leaf, _mm512_i32gather_ps(off4, (const float *)base + 3, 4));
        for (int j = 0; j < LANES; j++)
            M[e->tree_group[t0 + j]] += leaf[j];
    }
    for (int t = t0; t < e->n_trees; t++) {
        const sg_tree_node *tree = e->nodes + e->tree_start[t];
        M[e->tree_group[t]] += tree[sg_tree_walk(tree, x)].leaf;
    }
}
