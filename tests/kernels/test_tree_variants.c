/*
 * Tree kernels: every SIMD variant, batch and single-row, gives the same bits as
 * the scalar reference, and the scalar reference agrees with a recursive walk
 * written independently from the node layout's branch-free trick (explicit leaf
 * test, explicit NaN rule). Random ensembles with uneven depths, several groups,
 * NaN inputs, values at the thresholds, and row counts around the block sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_internal.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float urand(float lo, float hi)
{
    return lo + (hi - lo) * (float)(next_u32() >> 8) / 16777216.0f;
}

/* Thresholds come from a small grid so that inputs land exactly on them. */
static float grid(void)
{
    return (float)((int)(next_u32() % 17) - 8) * 0.25f;
}

static int levels8_built; /* ensembles that got the 8-level layout */

static sg_tree_ensemble *random_ensemble(int n_trees, int groups, int d, int max_depth)
{
    sg_tree_ensemble *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->n_trees = n_trees;
    e->n_groups = groups;
    e->n_features = d;
    e->base = malloc((size_t)groups * sizeof *e->base);
    assert_non_null(e->base);
    for (int g = 0; g < groups; g++)
        e->base[g] = 0.25f + 0.5f * (float)g;
    e->output = SG_TREE_OUT_IDENTITY;
    const int64_t per_tree = (2ll << max_depth) - 1;
    e->nodes = sg_alloc_aligned((size_t)(per_tree * n_trees) * sizeof *e->nodes);
    e->tree_start = calloc((size_t)n_trees, sizeof *e->tree_start);
    e->tree_group = calloc((size_t)n_trees, sizeof *e->tree_group);
    e->tree_depth = calloc((size_t)n_trees, 1);
    uint8_t *depth = malloc((size_t)per_tree);
    assert_true(e->nodes && e->tree_start && e->tree_group && e->tree_depth && depth);
    for (int t = 0; t < n_trees; t++) {
        sg_tree_node *tree = e->nodes + e->n_nodes;
        e->tree_start[t] = e->n_nodes;
        e->tree_group[t] = t % groups;
        const int dmax = (int)(next_u32() % (uint32_t)(max_depth + 1));
        uint32_t count = 1;
        int deepest = 0;
        depth[0] = 0;
        for (uint32_t q = 0; q < count; q++) {
            sg_tree_node *nd = &tree[q];
            if (depth[q] < dmax && (q == 0 || next_u32() % 5 != 0)) {
                nd->threshold = grid();
                nd->feature =
                    (next_u32() % (uint32_t)d) | (next_u32() & 1 ? SG_TREE_DEFAULT_LEFT : 0);
                nd->left = count;
                nd->leaf = 0;
                depth[count] = depth[count + 1] = (uint8_t)(depth[q] + 1);
                if (depth[q] + 1 > deepest) deepest = depth[q] + 1;
                count += 2;
            } else {
                *nd = (sg_tree_node){INFINITY, SG_TREE_DEFAULT_LEFT, q, urand(-1, 1)};
            }
        }
        e->tree_depth[t] = (uint8_t)deepest;
        if (deepest > e->max_depth) e->max_depth = deepest;
        e->n_nodes += count;
    }
    free(depth);
    /* Ensembles no deeper than SG_TREE_LEVELS_DEPTH also get the level layout, as on load. */
    sg_err err;
    assert_int_equal(sg_tree_ensemble_build_levels(e, &err), SG_OK);
    assert_true((e->levels != NULL) == (e->max_depth <= SG_TREE_LEVELS_DEPTH));
    assert_true((e->levels8 != NULL) == (e->max_depth > SG_TREE_LEVELS_DEPTH &&
                                         e->max_depth <= SG_TREE_LEVELS8_DEPTH));
    levels8_built += e->levels8 != NULL;
    return e;
}

/* Independent of the self-looping leaves: recursion with an explicit leaf test. */
static float walk_recursive(const sg_tree_node *tree, uint32_t i, const float *x)
{
    const sg_tree_node *nd = &tree[i];
    if (nd->left == i) return nd->leaf;
    const float v = x[nd->feature & SG_TREE_FEATURE_MASK];
    int go_left;
    if (isnan(v))
        go_left = (nd->feature & SG_TREE_DEFAULT_LEFT) != 0;
    else
        go_left = v < nd->threshold;
    return walk_recursive(tree, nd->left + (go_left ? 0u : 1u), x);
}

static float *random_rows(int64_t n, int d)
{
    float *X = malloc((size_t)n * (size_t)d * sizeof *X);
    assert_non_null(X);
    for (int64_t i = 0; i < n * d; i++) {
        const uint32_t k = next_u32() % 10;
        X[i] = k == 0 ? NAN : (k < 4 ? grid() : urand(-2.5f, 2.5f));
    }
    return X;
}

static void check_ensemble(int n_trees, int groups, int d, int max_depth)
{
    static const int64_t rows[] = {1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 129, 257};
    sg_tree_ensemble *e = random_ensemble(n_trees, groups, d, max_depth);
    for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
        const int64_t n = rows[ri];
        float *X = random_rows(n, d);
        const size_t mb = (size_t)n * (size_t)groups * sizeof(float);
        float *ref = malloc(mb), *got = malloc(mb), *one = malloc((size_t)groups * sizeof(float));
        assert_true(ref && got && one);
        for (int64_t i = 0; i < n * groups; i++)
            ref[i] = e->base[i % groups];
        sg_tree_margins_scalar(e, X, n, ref);
        /* The scalar reference against the recursive walk, summing in the same tree order. */
        for (int64_t r = 0; r < n; r++) {
            for (int g = 0; g < groups; g++) {
                float want = e->base[g];
                for (int t = 0; t < n_trees; t++)
                    if (e->tree_group[t] == g)
                        want += walk_recursive(e->nodes + e->tree_start[t], 0, X + r * d);
                assert_memory_equal(&ref[r * groups + g], &want, sizeof want);
            }
        }
        for (int isa = 0; isa < SG_ISA_COUNT; isa++) {
            const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
            if (!k) {
                print_message("skipping %s: this CPU or OS cannot run it\n",
                              sg_isa_name((sg_isa)isa));
                continue;
            }
            for (int64_t i = 0; i < n * groups; i++)
                got[i] = e->base[i % groups];
            k->tree_margins(e, X, n, got);
            if (memcmp(ref, got, mb) != 0) {
                print_error("%s batch differs from scalar: %d trees, %d groups, %lld rows\n",
                            k->name, n_trees, groups, (long long)n);
                fail();
            }
            for (int64_t r = 0; r < n; r++) {
                for (int g = 0; g < groups; g++)
                    one[g] = e->base[g];
                k->tree_margins_one(e, X + r * d, one);
                assert_memory_equal(one, ref + r * groups, (size_t)groups * sizeof(float));
            }
        }
        free(X);
        free(ref);
        free(got);
        free(one);
    }
    sg_tree_ensemble_free(e);
}

static void test_binary_shallow(void **state)
{
    check_ensemble(37, 1, 5, 3);
}

static void test_binary_deep(void **state)
{
    check_ensemble(100, 1, 64, 12);
}

static void test_multiclass(void **state)
{
    check_ensemble(45, 3, 9, 6);
}

static void test_depth_six_levels(void **state)
{
    /* The register-permute level path: depth exactly at the limit, uneven trees. */
    check_ensemble(70, 1, 33, 6);
    check_ensemble(20, 4, 7, 5);
}

static void test_depth_eight_levels(void **state)
{
    /* The 8-level layout: permutes for levels 0..5, gathers below; uneven trees, several
     * groups, a tree of depth 7 as the deepest. */
    const int before = levels8_built;
    check_ensemble(60, 1, 20, 8);
    check_ensemble(30, 3, 11, 8);
    check_ensemble(25, 2, 5, 7);
    assert_int_equal(levels8_built - before, 3);
}

static void test_stumps_and_leaves(void **state)
{
    /* max depth 1 with some trees that are a single leaf (depth 0). */
    check_ensemble(19, 2, 1, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_shallow),    cmocka_unit_test(test_binary_deep),
        cmocka_unit_test(test_multiclass),        cmocka_unit_test(test_depth_six_levels),
        cmocka_unit_test(test_depth_eight_levels), cmocka_unit_test(test_stumps_and_leaves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
