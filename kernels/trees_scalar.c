/*
 * Scalar reference of the tree kernels. Rows are taken in blocks so a block's
 * features stay in L1 while every tree is walked for it; within a row the
 * leaves are added in tree order, the order every SIMD variant keeps.
 */
#include "kernels/kernels_internal.h"

void sg_tree_margins_scalar(const sg_tree_ensemble *e, const float *X, int64_t n, float *M)
{
    const int d = e->n_features, G = e->n_groups;
    for (int64_t r0 = 0; r0 < n; r0 += SG_TREE_ROW_BLOCK) {
        const int64_t r1 = r0 + SG_TREE_ROW_BLOCK < n ? r0 + SG_TREE_ROW_BLOCK : n;
        for (int t = 0; t < e->n_trees; t++) {
            const sg_tree_node *tree = e->nodes + e->tree_start[t];
            const int g = e->tree_group[t];
            for (int64_t r = r0; r < r1; r++)
                M[r * G + g] += tree[sg_tree_walk(tree, X + r * d)].leaf;
        }
    }
}

void sg_tree_margins_one_scalar(const sg_tree_ensemble *e, const float *x, float *M)
{
    for (int t = 0; t < e->n_trees; t++) {
        const sg_tree_node *tree = e->nodes + e->tree_start[t];
        M[e->tree_group[t]] += tree[sg_tree_walk(tree, x)].leaf;
    }
}
