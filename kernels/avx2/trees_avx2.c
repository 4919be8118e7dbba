/*
 * AVX2 tree kernels (compiled with -mavx2 -mfma; called only after the
 * dispatcher checked cpuid and the OS's YMM state).
 *
 * Two layouts (stagegate/trees.h). Level layout (every tree of depth <= 6): a
 * block of 32 rows (4 vectors of 8) walks one tree level by level; each row's
 * threshold and feature come from the level held in registers by a permute, and
 * only the feature value is gathered. Batch 1 walks 16 trees at once (2 x 8 lanes),
 * gathering threshold, feature and value per level. Node layout (deeper trees):
 * two vectors of 8 rows walk one tree in lock-step for exactly the tree's depth,
 * gathering node fields and features (leaves point to themselves, so a row that
 * reached its leaf stays there); batch 1 walks 8 trees at once. Ensembles of depth 7 or
 * 8 get a third, the 8-level layout: levels 0..5 as in the level path, levels 6 and 7
 * and the leaf gathered; batch 1 walks it as it walks the level layout. In every path the
 * leaves of a row are added in tree order, so the bits equal the scalar
 * reference's. Rows that do not fill a block go through the scalar reference.
 */
#include "kernels/kernels_internal.h"

#include <immintrin.h>
#include <stddef.h>

#define AI static inline __attribute__((always_inline))
#define LANES 8

/* One step for a vector of walkers: idx (int32 node offsets * 4 into base) -> next. */
AI __m256i step(const int *base, __m256i off4, const float *X, __m256i rowoff)
{
    const __m256 thr = _mm256_i32gather_ps((const float *)base, off4, 4);
    const __m256i feat = _mm256_i32gather_epi32(base + 1, off4, 4);
    const __m256i left = _mm256_i32gather_epi32(base + 2, off4, 4);
    const __m256i fidx = _mm256_and_si256(feat, _mm256_set1_epi32((int)SG_TREE_FEATURE_MASK));
    const __m256 x = _mm256_i32gather_ps(X, _mm256_add_epi32(rowoff, fidx), 4);
    const __m256 lt = _mm256_cmp_ps(x, thr, _CMP_LT_OQ);
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256 dl = _mm256_castsi256_ps(_mm256_srai_epi32(feat, 31));
    const __m256i go_left = _mm256_castps_si256(_mm256_or_ps(lt, _mm256_and_ps(nan, dl)));
    /* left + 1 when going right; go_left is -1 when going left. */
    const __m256i next = _mm256_add_epi32(_mm256_add_epi32(left, _mm256_set1_epi32(1)), go_left);
    return _mm256_slli_epi32(next, 2);
}

AI void add_leaves(__m256 leaf, float *M, int64_t r, int G, int g)
{
    float tmp[LANES];
    _mm256_storeu_ps(tmp, leaf);
    for (int j = 0; j < LANES; j++)
        M[(r + j) * G + g] += tmp[j];
}

/* Rows per block on the level path: four vectors in flight hide the gather latency. */
#define NV 4

/* tab[pos] for pos < 2^bits (bits <= 6), from registers: a permute per 8 entries, then
   blends on bits 3, 4 and 5 of pos. Every r[] the blends read was written by the permutes
   (n halves from the count written); inlined where bits is a loop variable, GCC cannot
   see that, and initialising r[] halved the AVX2 level path's rate. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
AI __m256 lookup(const float *tab, int bits, __m256i pos)
{
    __m256 r[8];
    int n = bits <= 3 ? 1 : 1 << (bits - 3);
    for (int c = 0; c < n; c++)
        r[c] = _mm256_permutevar8x32_ps(_mm256_loadu_ps(tab + 8 * c), pos);
    for (int bit = 3; bit < bits; bit++) {
        const __m256i half = _mm256_set1_epi32(1 << bit);
        const __m256 sel =
            _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(pos, half), half));
        n >>= 1;
        for (int c = 0; c < n; c++)
            r[c] = _mm256_blendv_ps(r[2 * c], r[2 * c + 1], sel);
    }
    return r[0];
}
#pragma GCC diagnostic pop

/* One tree over NV vectors of rows on the level layout; leaves into leaf[]. The lookups and
   the compare stay in one loop here: looking up all NV vectors first and then calling
   descend (as walk_levels8 does) ran 10-20% slower on this path. */
AI void walk_levels(const sg_tree_levels *lv, int depth, const float *const *Xv, __m256i rowoff,
                    __m256 *leaf)
{
    __m256i pos[NV];
    for (int v = 0; v < NV; v++)
        pos[v] = _mm256_setzero_si256();
    const __m256i mask = _mm256_set1_epi32((int)SG_TREE_FEATURE_MASK), one = _mm256_set1_epi32(1);
#pragma GCC unroll 6
    for (int L = 0; L < depth; L++) {
        const int base = (1 << L) - 1;
        for (int v = 0; v < NV; v++) {
            const __m256 thr = lookup(lv->threshold + base, L, pos[v]);
            const __m256i feat =
                _mm256_castps_si256(lookup((const float *)lv->feature + base, L, pos[v]));
            const __m256i fidx = _mm256_and_si256(feat, mask);
            const __m256 x = _mm256_i32gather_ps(Xv[v], _mm256_add_epi32(rowoff, fidx), 4);
            const __m256 lt = _mm256_cmp_ps(x, thr, _CMP_LT_OQ);
            const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
            const __m256 dl = _mm256_castsi256_ps(_mm256_srai_epi32(feat, 31));
            const __m256i go_left = _mm256_castps_si256(_mm256_or_ps(lt, _mm256_and_ps(nan, dl)));
            /* 2 pos + 1 when going right; go_left is -1 when going left. */
            pos[v] =
                _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(pos[v], pos[v]), one), go_left);
        }
    }
    for (int v = 0; v < NV; v++)
        leaf[v] = lookup(lv->leaf, depth, pos[v]);
}

/* One level for NV vectors of walkers: each row's feature value against its threshold. */
AI void descend(const __m256 *thr, const __m256i *feat, const float *const *Xv, __m256i rowoff,
                __m256i *pos)
{
    const __m256i mask = _mm256_set1_epi32((int)SG_TREE_FEATURE_MASK), one = _mm256_set1_epi32(1);
    for (int v = 0; v < NV; v++) {
        const __m256i fidx = _mm256_and_si256(feat[v], mask);
        const __m256 x = _mm256_i32gather_ps(Xv[v], _mm256_add_epi32(rowoff, fidx), 4);
        const __m256 lt = _mm256_cmp_ps(x, thr[v], _CMP_LT_OQ);
        const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
        const __m256 dl = _mm256_castsi256_ps(_mm256_srai_epi32(feat[v], 31));
        const __m256i go_left = _mm256_castps_si256(_mm256_or_ps(lt, _mm256_and_ps(nan, dl)));
        pos[v] = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(pos[v], pos[v]), one), go_left);
    }
}

/* One tree of depth <= 8 over NV vectors of rows on the 8-level layout: levels 0..5 from
 * registers as above, levels 6 and 7 and the leaf gathered from the tree's arrays. */
AI void walk_levels8(const sg_tree_levels8 *lv, int depth, const float *const *Xv, __m256i rowoff,
                     __m256 *leaf)
{
    __m256i pos[NV];
    __m256 thr[NV];
    __m256i feat[NV];
    for (int v = 0; v < NV; v++)
        pos[v] = _mm256_setzero_si256();
    const int top = depth < 6 ? depth : 6;
#pragma GCC unroll 6
    for (int L = 0; L < top; L++) {
        const int base = (1 << L) - 1;
        for (int v = 0; v < NV; v++) {
            thr[v] = lookup(lv->threshold + base, L, pos[v]);
            feat[v] = _mm256_castps_si256(lookup((const float *)lv->feature + base, L, pos[v]));
        }
        descend(thr, feat, Xv, rowoff, pos);
    }
    for (int L = 6; L < depth; L++) {
        const __m256i base = _mm256_set1_epi32((1 << L) - 1);
        for (int v = 0; v < NV; v++) {
            const __m256i at = _mm256_add_epi32(base, pos[v]);
            thr[v] = _mm256_i32gather_ps(lv->threshold, at, 4);
            feat[v] = _mm256_i32gather_epi32((const int *)lv->feature, at, 4);
        }
        descend(thr, feat, Xv, rowoff, pos);
    }
    for (int v = 0; v < NV; v++)
        leaf[v] = _mm256_i32gather_ps(lv->leaf, pos[v], 4);
}

/* Trees on either level layout (depth <= 6, or 7-8 with levels 6 and 7 gathered). */
static int64_t margins_levels(const sg_tree_ensemble *e, const float *X, int64_t n, float *M)
{
    const int d = e->n_features, G = e->n_groups;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i rowoff = _mm256_mullo_epi32(lane, _mm256_set1_epi32(d));
    const int64_t block = NV * LANES;
    int64_t r0 = 0;
    for (; r0 + block <= n; r0 += block) {
        const float *Xv[NV];
        __m256 acc[NV];
        for (int v = 0; v < NV; v++) {
            Xv[v] = X + (r0 + v * LANES) * d;
            acc[v] = G == 1 ? _mm256_loadu_ps(M + r0 + v * LANES) : _mm256_setzero_ps();
        }
        for (int t = 0; t < e->n_trees; t++) {
            __m256 leaf[NV];
            if (e->levels) {
                /* A constant depth lets the levels unroll and each lookup's permutes and
                   blends stay in registers (a depth in a variable kept them on the stack). */
                const sg_tree_levels *lv = &e->levels[t];
                switch (e->tree_depth[t]) {
                case 6:
                    walk_levels(lv, 6, Xv, rowoff, leaf);
                    break;
                case 5:
                    walk_levels(lv, 5, Xv, rowoff, leaf);
                    break;
                case 4:
                    walk_levels(lv, 4, Xv, rowoff, leaf);
                    break;
                default:
                    walk_levels(lv, e->tree_depth[t], Xv, rowoff, leaf);
                    break;
                }
            } else {
                const sg_tree_levels8 *lv = &e->levels8[t];
                switch (e->tree_depth[t]) {
                case 8:
                    walk_levels8(lv, 8, Xv, rowoff, leaf);
                    break;
                case 7:
                    walk_levels8(lv, 7, Xv, rowoff, leaf);
                    break;
                case 6:
                    walk_levels8(lv, 6, Xv, rowoff, leaf);
                    break;
                default:
                    walk_levels8(lv, e->tree_depth[t], Xv, rowoff, leaf);
                    break;
                }
            }
            for (int v = 0; v < NV; v++) {
                if (G == 1)
                    acc[v] = _mm256_add_ps(acc[v], leaf[v]);
                else
                    add_leaves(leaf[v], M, r0 + v * LANES, G, e->tree_group[t]);
            }
        }
        if (G == 1)
            for (int v = 0; v < NV; v++)
                _mm256_storeu_ps(M + r0 + v * LANES, acc[v]);
    }
    return r0;
}

void sg_tree_margins_avx2(const sg_tree_ensemble *e, const float *X, int64_t n, float *M)
{
    const int d = e->n_features, G = e->n_groups;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i rowoff = _mm256_mullo_epi32(lane, _mm256_set1_epi32(d));
    const int64_t block = 2 * LANES;
    int64_t r0 = e->levels || e->levels8 ? margins_levels(e, X, n, M) : 0;
    for (; r0 + block <= n; r0 += block) {
        const float *Xa = X + r0 * d, *Xb = X + (r0 + LANES) * d;
        __m256 acc_a = _mm256_setzero_ps(), acc_b = _mm256_setzero_ps();
        if (G == 1) {
            acc_a = _mm256_loadu_ps(M + r0);
            acc_b = _mm256_loadu_ps(M + r0 + LANES);
        }
        for (int t = 0; t < e->n_trees; t++) {
            const int *base = (const int *)(e->nodes + e->tree_start[t]);
            __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
            for (int s = 0; s < e->tree_depth[t]; s++) {
                a = step(base, a, Xa, rowoff);
                b = step(base, b, Xb, rowoff);
            }
            const __m256 la = _mm256_i32gather_ps((const float *)base + 3, a, 4);
            const __m256 lb = _mm256_i32gather_ps((const float *)base + 3, b, 4);
            if (G == 1) {
                acc_a = _mm256_add_ps(acc_a, la);
                acc_b = _mm256_add_ps(acc_b, lb);
            } else {
                add_leaves(la, M, r0, G, e->tree_group[t]);
                add_leaves(lb, M, r0 + LANES, G, e->tree_group[t]);
            }
        }
        if (G == 1) {
            _mm256_storeu_ps(M + r0, acc_a);
            _mm256_storeu_ps(M + r0 + LANES, acc_b);
        }
    }
    if (r0 < n) sg_tree_margins_scalar(e, X + r0 * d, n - r0, M + r0 * G);
}

/* Batch 1 on the level layout: 2 x 8 trees at once (two independent gather chains), each
   lane stopping at its tree's depth; three gathers a level and no child index to chase. */
AI void one_levels_k(const sg_tree_ensemble *e, const float *x, float *M, int t0, int K)
{
    /* Either level layout: the tree's arrays differ only in size. In floats: */
    const float *lv = e->levels ? (const float *)e->levels : (const float *)e->levels8;
    const sg_tree_level_geometry g = sg_tree_level_geometry_of(!e->levels);
    const int stride = (int)(g.size / sizeof(float)), feat_at = (int)(g.feature / sizeof(float));
    const int leaf_at = (int)(g.leaf / sizeof(float));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_set1_epi32((int)SG_TREE_FEATURE_MASK), one = _mm256_set1_epi32(1);
    __m256i tix[2], depth[2], pos[2];
    int dmax = 0;
    for (int k = 0; k < K; k++) {
        const int t = t0 + k * LANES;
        tix[k] = _mm256_mullo_epi32(_mm256_add_epi32(_mm256_set1_epi32(t), lane),
                                    _mm256_set1_epi32(stride));
        depth[k] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(e->tree_depth + t)));
        for (int j = 0; j < LANES; j++)
            if (e->tree_depth[t + j] > dmax) dmax = e->tree_depth[t + j];
        pos[k] = _mm256_setzero_si256();
    }
    for (int L = 0; L < dmax; L++) {
        const __m256i level = _mm256_set1_epi32((1 << L) - 1), lvec = _mm256_set1_epi32(L);
        for (int k = 0; k < K; k++) {
            const __m256i off = _mm256_add_epi32(tix[k], _mm256_add_epi32(level, pos[k]));
            const __m256 thr = _mm256_i32gather_ps(lv, off, 4);
            const __m256i feat = _mm256_i32gather_epi32((const int *)(lv + feat_at), off, 4);
            const __m256 v = _mm256_i32gather_ps(x, _mm256_and_si256(feat, mask), 4);
            const __m256 lt = _mm256_cmp_ps(v, thr, _CMP_LT_OQ);
            const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
            const __m256 dl = _mm256_castsi256_ps(_mm256_srai_epi32(feat, 31));
            const __m256i go_left = _mm256_castps_si256(_mm256_or_ps(lt, _mm256_and_ps(nan, dl)));
            const __m256i next =
                _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(pos[k], pos[k]), one), go_left);
            const __m256i active = _mm256_cmpgt_epi32(depth[k], lvec);
            pos[k] = _mm256_blendv_epi8(pos[k], next, active);
        }
    }
    for (int k = 0; k < K; k++) {
        float leaf[LANES];
        const __m256i at =
            _mm256_add_epi32(tix[k], _mm256_add_epi32(_mm256_set1_epi32(leaf_at), pos[k]));
        _mm256_storeu_ps(leaf, _mm256_i32gather_ps(lv, at, 4));
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
    const __m256i zero = _mm256_setzero_si256();
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
        const __m256i st = _mm256_loadu_si256((const __m256i *)start);
        __m256i rel = zero;
        for (int s = 0; s < depth; s++) {
            const __m256i off4 = _mm256_slli_epi32(_mm256_add_epi32(st, rel), 2);
            rel = _mm256_srli_epi32(step(base, off4, x, zero), 2);
        }
        const __m256i off4 = _mm256_slli_epi32(_mm256_add_epi32(st, rel), 2);
        float leaf[LANES];
        _mm256_storeu_ps(leaf, _mm256_i32gather_ps((const float *)base + 3, off4, 4));
        for (int j = 0; j < LANES; j++)
            M[e->tree_group[t0 + j]] += leaf[j];
    }
    return t0;
}

void sg_tree_margins_one_avx2(const sg_tree_ensemble *e, const float *x, float *M)
{
    const int t0 = e->levels || e->levels8 ? one_levels(e, x, M) : one_nodes(e, x, M);
    for (int t = t0; t < e->n_trees; t++) {
        const sg_tree_node *tree = e->nodes + e->tree_start[t];
        M[e->tree_group[t]] += tree[sg_tree_walk(tree, x)].leaf;
    }
}
