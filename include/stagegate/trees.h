/* Tree ensembles (XGBoost gbtree/dart) in the compact layout the tree kernels traverse. */
#ifndef STAGEGATE_TREES_H
#define STAGEGATE_TREES_H

#include "stagegate/common.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Deeper trees are refused on load: traversal cost and stack use stay bounded. */
#define SG_TREE_MAX_DEPTH 64
/* A categorical split is laid out as a few numerical ones (datasets/xgboost_json.c), so a
 * walk may take more steps than the tree has levels: at most this many (tree_depth is a byte). */
#define SG_TREE_MAX_STEPS 255
#define SG_TREE_MAX_TREES (1 << 20)
#define SG_TREE_MAX_NODES_PER_TREE (1 << 24)
/* All trees together: node offsets times four fit the int32 indices of SIMD gathers. */
#define SG_TREE_MAX_NODES (1 << 28)
/* Bit 31 of sg_tree_node.feature: a missing value (NaN) goes to the left child. */
#define SG_TREE_DEFAULT_LEFT 0x80000000u
#define SG_TREE_FEATURE_MASK 0x7fffffffu

/*
 * One node, 16 bytes, stored breadth-first per tree so that the children of a
 * node are adjacent (right = left + 1) and the shallow levels share cache lines.
 * A leaf points to itself (left == its own index), has threshold +inf, feature 0
 * and the default-left bit: every row, NaN or not, then "goes left" back onto the
 * leaf, so a fixed number of branch-free steps (the tree's depth) reaches the leaf
 * for any row. That is what lets the SIMD kernels walk many rows in lock-step.
 */
/* A double threshold t as a float32 one for "x < th" on float32 x, compared exactly as in
   double: x <= t is x < sg_tree_le32(t) (the next float32 above the largest float32 <= t),
   x < t is x < sg_tree_lt32(t) (the smallest float32 >= t). */
static inline float sg_tree_floor32(double t)
{
    float f = (float)t;
    if ((double)f > t) f = nextafterf(f, -INFINITY);
    return f;
}

static inline float sg_tree_le32(double t)
{
    return nextafterf(sg_tree_floor32(t), INFINITY);
}

static inline float sg_tree_lt32(double t)
{
    float f = (float)t;
    if ((double)f < t) f = nextafterf(f, INFINITY);
    return f;
}

typedef struct {
    float threshold;  /* x < threshold goes left, compared in float32 as XGBoost does */
    uint32_t feature; /* split feature | SG_TREE_DEFAULT_LEFT */
    uint32_t left;    /* index of the left child within the tree; own index on a leaf */
    float leaf;       /* leaf value times the tree's weight (dart); 0 on a split */
} sg_tree_node;

/*
 * Trees of depth <= SG_TREE_LEVELS_DEPTH also get a level-ordered copy, padded to a
 * complete tree of their own depth: the nodes of level L sit at [2^L - 1, 2^(L+1) - 1),
 * the children of position p are 2p and 2p + 1 of the next level, and a leaf above the
 * last level becomes a node that always goes left (+inf threshold, default left) down
 * to its value. A whole level then fits in one or two SIMD registers, so a kernel picks
 * each row's threshold and feature with a register permute instead of a gather.
 */
#define SG_TREE_LEVELS_DEPTH 6
typedef struct {
    float threshold[63]; /* levels 0..5 */
    uint32_t feature[63];
    float leaf[64]; /* by position on the tree's last level */
} sg_tree_levels;

/*
 * The same level order for ensembles whose deepest tree has 7 or 8 levels: levels 0..5
 * still come from registers, levels 6 and 7 and the leaves by a gather from the tree's
 * own 3 KiB, about half the gathers of the node layout's walk.
 */
#define SG_TREE_LEVELS8_DEPTH 8
typedef struct {
    float threshold[255]; /* levels 0..7 */
    uint32_t feature[255];
    float leaf[256];
    uint32_t pad[2]; /* 3072 bytes: a whole number of cache lines */
} sg_tree_levels8;

/*
 * A level copy has a fixed size per tree (760 bytes, or 3 KiB) whatever the tree holds: a
 * million one-leaf trees (16 MB of nodes) would carry 760 MB of it. An ensemble keeps the
 * node layout alone when its copies would pass both SG_TREE_LEVELS_MAX_BYTES and
 * SG_TREE_LEVELS_MAX_RATIO times its nodes; the node walk gives the same bits, at about
 * half the batch speed (2,000 depth-1 trees: 0.36 s against 0.57 s on 200,000 rows).
 */
#define SG_TREE_LEVELS_MAX_BYTES ((size_t)256 << 20)
#define SG_TREE_LEVELS_MAX_RATIO 8

/*
 * Where the fields of a level layout sit, whichever of the two an ensemble carries: tree t's
 * copy starts at byte t * size; threshold, feature and leaf are at these byte offsets.
 */
typedef struct {
    size_t size, threshold, feature, leaf;
} sg_tree_level_geometry;

static inline sg_tree_level_geometry sg_tree_level_geometry_of(bool eight)
{
    if (eight)
        return (sg_tree_level_geometry){sizeof(sg_tree_levels8),
                                        offsetof(sg_tree_levels8, threshold),
                                        offsetof(sg_tree_levels8, feature),
                                        offsetof(sg_tree_levels8, leaf)};
    return (sg_tree_level_geometry){sizeof(sg_tree_levels), offsetof(sg_tree_levels, threshold),
                                    offsetof(sg_tree_levels, feature),
                                    offsetof(sg_tree_levels, leaf)};
}

/* How margins become outputs. */
typedef enum {
    SG_TREE_OUT_IDENTITY = 0,     /* regression: the margin */
    SG_TREE_OUT_SIGMOID = 1,      /* regression in [0,1] (reg:logistic) */
    SG_TREE_OUT_BINARY = 2,       /* binary classifier: [1 - p1, p1], p1 = sigmoid(margin) */
    SG_TREE_OUT_SOFTMAX = 3,      /* multiclass: softmax over the groups' margins */
    SG_TREE_OUT_PROBA_BINARY = 4, /* binary, the sum is p1 (forests): [1 - p1, p1] */
    SG_TREE_OUT_PROBA = 5,        /* multiclass, the sums are the probabilities (forests) */
    SG_TREE_OUT_EXP = 6,          /* regression: exp(margin) (count:poisson, reg:gamma, reg:tweedie) */
    SG_TREE_OUT_HINGE = 7,        /* binary classifier: p1 = 1 when the margin is above 0, else 0 */
} sg_tree_output;

typedef struct {
    int n_trees;
    int n_groups;   /* outputs before the link: 1, or the class count for multi:* */
    int n_features; /* splits use features 0..n_features-1 */
    int max_depth;  /* deepest tree, edges from the root to a leaf */
    sg_tree_output output;
    float *base;         /* [n_groups] each group's margin before the trees */
    int64_t n_nodes;     /* all trees */
    sg_tree_node *nodes; /* [n_nodes], 64-byte aligned, trees back to back */
    int64_t *tree_start; /* [n_trees] offset of each tree's root in nodes */
    int32_t *tree_group; /* [n_trees] the output group each tree adds to */
    uint8_t *tree_depth; /* [n_trees] steps of each tree's walk: its depth, more with categorical splits */
    /* [n_trees], 64-byte aligned, when max_depth <= SG_TREE_LEVELS_DEPTH; NULL otherwise */
    sg_tree_levels *levels;
    /* [n_trees], 64-byte aligned, when SG_TREE_LEVELS_DEPTH < max_depth <=
       SG_TREE_LEVELS8_DEPTH; NULL otherwise */
    sg_tree_levels8 *levels8;
    /* gblinear (then n_trees is 0): [(n_features + 1) * n_groups] in XGBoost's order, feature
       f's weight for group g at f * n_groups + g, then the groups' biases; NULL for trees. A
       group's margin is base + bias, then + x_f * w in feature order, in float, skipping a
       missing (NaN) feature, as XGBoost's linear predictor sums it. */
    float *linear;
    char objective[32];
    char booster[16];
    /* XGBoost: trees in the file (n_trees may be fewer) and the early-stopping best iteration
       the predictions stop at (-1: all trees predict). */
    int trees_in_file;
    int best_iteration;
    /* XGBoost's scikit-learn estimators: the value their `missing` parameter names (saved in
       learner/attributes/scikit_learn), which predict treats as missing like NaN, compared
       as float32. has_missing_value false: only NaN is missing (Booster.predict). */
    bool has_missing_value;
    float missing_value;
    /* > 0: each output is (base + the trees' sum) / mean_of, divided in float32 before the
       link: a forest's mean over its trees, with its leaves unscaled, as scikit-learn
       averages (a tie of 25 votes in 50 is 25 / 50 = 0.5 exactly; 25 leaves of 1/50 summed
       to 0.50000006). 0: the sum itself. */
    int mean_of;
} sg_tree_ensemble;

/*
 * The tree-ensemble layout of the native model HDF5 format is read by sg_model_load
 * (stagegate/model.h), with the same node layout and limits.
 *
 * Parses an XGBoost JSON model (Booster.save_model("m.json"), schema of XGBoost
 * >= 1.0) from memory and builds the compact layout. `name` is the file name used
 * in errors, which have the form "NAME: JSON_PATH: what is wrong". Categorical splits
 * become small search trees of numerical ones. Refuses unknown boosters and objectives,
 * category sets that are not integers in 0..2^24-1, child indices out of range,
 * cycles, nodes reachable twice, split features >= num_feature, non-finite
 * thresholds or leaves, depth above SG_TREE_MAX_DEPTH and zero trees.
 */
SG_MUST_CHECK sg_status sg_xgboost_json_parse(const char *name, const char *text, size_t len, sg_tree_ensemble **out,
                          sg_err *err);
/* Builds e->levels from e->nodes when max_depth <= SG_TREE_LEVELS_DEPTH, e->levels8 when
 * it is at most SG_TREE_LEVELS8_DEPTH, within the budget above (SG_ENOMEM). */
SG_MUST_CHECK sg_status sg_tree_ensemble_build_levels(sg_tree_ensemble *e, sg_err *err);
/* A deep copy whose node array is first touched by the calling thread (NUMA-local). */
SG_MUST_CHECK sg_status sg_tree_ensemble_clone(const sg_tree_ensemble *src, sg_tree_ensemble **out, sg_err *err);
void sg_tree_ensemble_free(sg_tree_ensemble *e);
/* Bytes of the node arrays and per-tree tables. */
size_t sg_tree_ensemble_bytes(const sg_tree_ensemble *e);

#ifdef __cplusplus
}
#endif
#endif
