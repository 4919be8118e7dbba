/*
 * AVX-512 tree kernels (compiled with -mavx512f and friends; called only after the
 * dispatcher checked cpuid and the OS's ZMM and opmask state).
 *
 * Two layouts (stagegate/trees.h). Level layout (every tree of depth <= 6): a
 * block of 64 rows (4 vectors of 16) walks one tree level by level; each row's
 * threshold and feature come from the level held in registers by a permute, and
 * only the feature value is gathered. Batch 1 walks 32 trees at once (2 x 16 lanes),
 * gathering threshold, feature and value per level. Node layout (deeper trees):
 * two vectors of 16 rows walk one tree in lock-step for exactly the tree's depth,
 * gathering node fields and features (leaves point to themselves, so a row that
 * reached its leaf stays there); batch 1 walks 16 trees at once. Ensembles of depth 7
 * or 8 get a third, the 8-level layout: levels 0..5 as in the level path, levels 6 and 7
 * and the leaf gathered; batch 1 walks it as it walks the level layout. In every path the
 * leaves of a row are added in tree order, so the bits equal the scalar
 * reference's. Rows that do not fill a block go through the scalar reference.
 */
#include "kernels/kernels_internal.h"

#include <immintrin.h>
#include <stddef.h>

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

/* Rows per block on the level path: four vectors in flight hide the gather latency. */
#define NV 4

/* Each row's threshold and feature for its position on level L, from registers. */
AI void level_fields(const float *threshold, const uint32_t *feature, int L, const __m512i *pos,
                     __m512 *thr, __m512i *feat)
{
    const int base = (1 << L) - 1;
    if (L <= 4) {
        const __m512 t = _mm512_loadu_ps(threshold + base);
        const __m512i f = _mm512_loadu_si512((const void *)(feature + base));
        for (int v = 0; v < NV; v++) {
            thr[v] = _mm512_permutexvar_ps(pos[v], t);
            feat[v] = _mm512_permutexvar_epi32(pos[v], f);
        }
    } else {
        const __m512 t0 = _mm512_loadu_ps(threshold + base);
        const __m512 t1 = _mm512_loadu_ps(threshold + base + 16);
        const __m512i f0 = _mm512_loadu_si512((const void *)(feature + base));
        const __m512i f1 = _mm512_loadu_si512((const void *)(feature + base + 16));
        for (int v = 0; v < NV; v++) {
            thr[v] = _mm512_permutex2var_ps(t0, pos[v], t1);
            feat[v] = _mm512_permutex2var_epi32(f0, pos[v], f1);
        }
    }
}

/* One level for NV vectors of walkers: each row's feature value against its threshold,
 * then to child 2 pos (left) or 2 pos + 1 (right). */
AI void descend(const __m512 *thr, const __m512i *feat, const float *const *Xv, __m512i rowoff,
                __m512i *pos)
{
    const __m512i mask = _mm512_set1_epi32((int)SG_TREE_FEATURE_MASK), one = _mm512_set1_epi32(1);
    for (int v = 0; v < NV; v++) {
        const __m512i fidx = _mm512_and_si512(feat[v], mask);
        const __m512 x = _mm512_i32gather_ps(_mm512_add_epi32(rowoff, fidx), Xv[v], 4);
        const __mmask16 lt = _mm512_cmp_ps_mask(x, thr[v], _CMP_LT_OQ);
        const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        const __mmask16 go_left = lt | (nan & _mm512_movepi32_mask(feat[v]));
        const __m512i twice = _mm512_add_epi32(pos[v], pos[v]);
        pos[v] = _mm512_mask_add_epi32(twice, (__mmask16)~go_left, twice, one);
    }
}

/* One tree over NV vectors of rows on the level layout; leaves into leaf[]. */
AI void walk_levels(const sg_tree_levels *lv, int depth, const float *const *Xv, __m512i rowoff,
                    __m512 *leaf)
{
    __m512i pos[NV];
    for (int v = 0; v < NV; v++)
        pos[v] = _mm512_setzero_si512();
    for (int L = 0; L < depth; L++) {
        __m512 thr[NV];
        __m512i feat[NV];
        level_fields(lv->threshold, lv->feature, L, pos, thr, feat);
        descend(thr, feat, Xv, rowoff, pos);
    }
    const __m512 l0 = _mm512_loadu_ps(lv->leaf), l1 = _mm512_loadu_ps(lv->leaf + 16);
    const __m512 l2 = _mm512_loadu_ps(lv->leaf + 32), l3 = _mm512_loadu_ps(lv->leaf + 48);
    const __m512i bit5 = _mm512_set1_epi32(32);
    for (int v = 0; v < NV; v++) {
        const __m512 lo = _mm512_permutex2var_ps(l0, pos[v], l1);
        const __m512 hi = _mm512_permutex2var_ps(l2, pos[v], l3);
        leaf[v] = _mm512_mask_blend_ps(_mm512_test_epi32_mask(pos[v], bit5), lo, hi);
    }
}

/* One tree of depth <= 8 over NV vectors of rows on the 8-level layout: levels 0..5 from
 * registers as above, levels 6 and 7 and the leaf gathered from the tree's arrays. */
AI void walk_levels8(const sg_tree_levels8 *lv, int depth, const float *const *Xv, __m512i rowoff,
                     __m512 *leaf)
{
    __m512i pos[NV];
    for (int v = 0; v < NV; v++)
        pos[v] = _mm512_setzero_si512();
    for (int L = 0; L < depth; L++) {
        __m512 thr[NV];
        __m512i feat[NV];
        if (L <= 5) {
            level_fields(lv->threshold, lv->feature, L, pos, thr, feat);
        } else {
            const __m512i base = _mm512_set1_epi32((1 << L) - 1);
            for (int v = 0; v < NV; v++) {
                const __m512i at = _mm512_add_epi32(base, pos[v]);
                thr[v] = _mm512_i32gather_ps(at, lv->threshold, 4);
                feat[v] = _mm512_i32gather_epi32(at, (const void *)lv->feature, 4);
            }
        }
        descend(thr, feat, Xv, rowoff, pos);
    }
    for (int v = 0; v < NV; v++)
        leaf[v] = _mm512_i32gather_ps(pos[v], lv->leaf, 4);
}

/* Trees on either level layout (depth <= 6, or 7-8 with levels 6 and 7 gathered). */
static int64_t margins_levels(const sg_tree_ensemble *e, const float *X, int64_t n, float *M)
{
    const int d = e->n_features, G = e->n_groups;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i rowoff = _mm512_mullo_epi32(lane, _mm512_set1_epi32(d));
    const int64_t block = NV * LANES;
    int64_t r0 = 0;
    for (; r0 + block <= n; r0 += block) {
        const float *Xv[NV];
        __m512 acc[NV];
        for (int v = 0; v < NV; v++) {
            Xv[v] = X + (r0 + v * LANES) * d;
            acc[v] = G == 1 ? _mm512_loadu_ps(M + r0 + v * LANES) : _mm512_setzero_ps();
        }
        for (int t = 0; t < e->n_trees; t++) {
            __m512 leaf[NV];
            if (e->levels)
                walk_levels(&e->levels[t], e->tree_depth[t], Xv, rowoff, leaf);
            else
                walk_levels8(&e->levels8[t], e->tree_depth[t], Xv, rowoff, leaf);
            for (int v = 0; v < NV; v++) {
                if (G == 1)
                    acc[v] = _mm512_add_ps(acc[v], leaf[v]);
                else
                    add_leaves(leaf[v], M, r0 + v * LANES, G, e->tree_group[t]);
            }
        }
        if (G == 1)
            for (int v = 0; v < NV; v++)
                _mm512_storeu_ps(M + r0 + v * LANES, acc[v]);
    }
    return r0;
}

void sg_tree_margins_avx512(const sg_tree_ensemble *e, const float *X, int64_t n, float *M)
{
    const int d = e->n_features, G = e->n_groups;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i rowoff = _mm512_mullo_epi32(lane, _mm512_set1_epi32(d));
    const int64_t block = 2 * LANES;
    int64_t r0 = e->levels || e->levels8 ? margins_levels(e, X, n, M) : 0;
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

/* Batch 1 on the level layout: K vectors of 16 trees at once (independent gather chains
   overlap), each lane stopping at its tree's depth; three gathers a level (threshold,
   feature, x) and no child index to chase. Returns the first tree not done. */
AI void one_levels_k(const sg_tree_ensemble *e, const float *x, float *M, int t0, int K)
{
    /* Either level layout: the tree's arrays differ only in size. In floats: */
    const float *lv = e->levels ? (const float *)e->levels : (const float *)e->levels8;
    const sg_tree_level_geometry g = sg_tree_level_geometry_of(!e->levels);
    const int stride = (int)(g.size / sizeof(float)), feat_at = (int)(g.feature / sizeof(float));
    const int leaf_at = (int)(g.leaf / sizeof(float));
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i mask = _mm512_set1_epi32((int)SG_TREE_FEATURE_MASK), one = _mm512_set1_epi32(1);
    __m512i tix[2], depth[2], pos[2];
    int dmax = 0;
    for (int k = 0; k < K; k++) {
        const int t = t0 + k * LANES;
        tix[k] = _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(t), lane),
                                    _mm512_set1_epi32(stride));
        depth[k] = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(e->tree_depth + t)));
        const int dk = _mm512_reduce_max_epi32(depth[k]);
        if (dk > dmax) dmax = dk;
        pos[k] = _mm512_setzero_si512();
    }
    for (int L = 0; L < dmax; L++) {
        const __m512i level = _mm512_set1_epi32((1 << L) - 1), lvec = _mm512_set1_epi32(L);
        for (int k = 0; k < K; k++) {
            const __m512i off = _mm512_add_epi32(tix[k], _mm512_add_epi32(level, pos[k]));
            const __m512 thr = _mm512_i32gather_ps(off, lv, 4);
            const __m512i feat = _mm512_i32gather_epi32(off, (const void *)(lv + feat_at), 4);
            const __m512 v = _mm512_i32gather_ps(_mm512_and_si512(feat, mask), x, 4);
            const __mmask16 lt = _mm512_cmp_ps_mask(v, thr, _CMP_LT_OQ);
            const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            const __mmask16 go_left = lt | (nan & _mm512_movepi32_mask(feat));
            const __m512i twice = _mm512_add_epi32(pos[k], pos[k]);
            const __m512i next = _mm512_mask_add_epi32(twice, (__mmask16)~go_left, twice, one);
            pos[k] = _mm512_mask_mov_epi32(pos[k], _mm512_cmpgt_epi32_mask(depth[k], lvec), next);
        }
    }
    for (int k = 0; k < K; k++) {
        float leaf[LANES];
        const __m512i at =
            _mm512_add_epi32(tix[k], _mm512_add_epi32(_mm512_set1_epi32(leaf_at), pos[k]));
        _mm512_storeu_ps(leaf, _mm512_i32gather_ps(at, lv, 4));
        for (int j = 0; j < LANES; j++)
            M[e->tree_group[t0 + k * LANES + j]] += leaf[j];
    }
}

static int one_levels(const sg_tree_ensemble *e, const float *x, float *M)
{
    int t0 = 0;
    for (; t0 + 2 * LANES <= e->n_trees; t0 += 2 * LANES)
        one_levels_k(e, x, M, t0, 2);
    if (t0 + LANES <= e->n_trees) {
        one_levels_k(e, x, M, t0, 1);
        t0 += LANES;
    }
    return t0;
}

/* Batch 1 on the node layout (trees deeper than the level layout allows). */
static int one_nodes(const sg_tree_ensemble *e, const float *x, float *M)
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
    return t0;
}

void sg_tree_margins_one_avx512(const sg_tree_ensemble *e, const float *x, float *M)
{
    const int t0 = e->levels || e->levels8 ? one_levels(e, x, M) : one_nodes(e, x, M);
    for (int t = t0; t < e->n_trees; t++) {
        const sg_tree_node *tree = e->nodes + e->tree_start[t];
        M[e->tree_group[t]] += tree[sg_tree_walk(tree, x)].leaf;
    }
}
