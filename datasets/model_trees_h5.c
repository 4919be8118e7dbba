/*
 * The tree-ensemble layout of the native model HDF5 format (docs/formats.md), as
 * scripts/export_sklearn.py writes it for scikit-learn forests and boosting.
 *
 * Nodes are stored breadth-first with adjacent children, so the structure check is
 * one pass: walking the nodes in order, every split's left child must be the next
 * unassigned index. That proves each node is reached exactly once from the root (no
 * cycle, nothing unreachable, nothing shared) and lets the depth follow along.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

typedef struct {
    int64_t *n_nodes, *group, *left, *feature, *default_left;
    double *threshold, *leaf, *base;
    double *threshold_f64; /* NULL when the file has none (every model but HistGradientBoosting) */
    int64_t T, N, G;
} raw_trees;

static void raw_free(raw_trees *r)
{
    free(r->n_nodes);
    free(r->group);
    free(r->left);
    free(r->feature);
    free(r->default_left);
    free(r->threshold);
    free(r->threshold_f64);
    free(r->leaf);
    free(r->base);
}

/* Reads a rank-1 integer or float dataset of `want` values (want < 0: any length 1..max). */
static sg_status read_vec(hid_t f, const char *path, const char *name, bool integer, int64_t want,
                    int64_t max, void **out, int64_t *len, sg_err *err)
{
    *out = NULL;
    if (!sg_h5_exists(f, "trees") || !sg_h5_exists(f, name))
        return sg_errf(err, SG_EINPUT, "%s: %s is missing", path, name);
    /* Links, external storage and filters checked as for every model dataset. */
    hid_t ds = sg_h5_open_dataset(f, name, H5P_DEFAULT, path, err);
    if (ds < 0) return SG_EINPUT;
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    int rc = SG_OK;
    char tn[64];
    sg_h5_type_name(type, tn, sizeof tn);
    H5T_class_t cls = H5Tget_class(type);
    hsize_t n = 0;
    if (integer ? cls != H5T_INTEGER : cls != H5T_FLOAT)
        rc = sg_errf(err, SG_EINPUT, "%s: %s has dtype %s, expected %s", path, name, tn,
                     integer ? "an integer type" : "float32 or float64");
    else if (H5Sget_simple_extent_ndims(space) != 1)
        rc = sg_errf(err, SG_EINPUT, "%s: %s must have rank 1", path, name);
    else {
        H5Sget_simple_extent_dims(space, &n, NULL);
        if (want >= 0 && (int64_t)n != want)
            rc = sg_errf(err, SG_EINPUT, "%s: %s has %llu values, expected %lld", path, name,
                         (unsigned long long)n, (long long)want);
        else if (n < 1 || (int64_t)n > max)
            rc = sg_errf(err, SG_EINPUT, "%s: %s has %llu values (must be 1..%lld)", path, name,
                         (unsigned long long)n, (long long)max);
    }
    void *buf = rc ? NULL : malloc((size_t)n * 8);
    if (!rc && !buf) rc = sg_errf(err, SG_ENOMEM, "%s: out of memory reading %s", path, name);
    if (!rc)
        rc = sg_h5_read_all(ds, integer ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, buf, path, name, err);
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(ds);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    if (len) *len = (int64_t)n;
    return SG_OK;
}

static sg_status read_raw(hid_t f, const char *path, int64_t G, raw_trees *r, sg_err *err)
{
    void *p;
    int rc = read_vec(f, path, "/trees/n_nodes", true, -1, SG_TREE_MAX_TREES, &p, &r->T, err);
    if (rc) return rc;
    r->n_nodes = p;
    r->N = 0;
    for (int64_t t = 0; t < r->T; t++) {
        if (r->n_nodes[t] < 1 || r->n_nodes[t] > SG_TREE_MAX_NODES_PER_TREE)
            return sg_errf(err, SG_EINPUT, "%s: /trees/n_nodes[%lld] is %lld (must be 1..%d)", path,
                           (long long)t, (long long)r->n_nodes[t], SG_TREE_MAX_NODES_PER_TREE);
        r->N += r->n_nodes[t];
        if (r->N > SG_TREE_MAX_NODES)
            return sg_errf(err, SG_EINPUT, "%s: the trees have more than %d nodes in all", path,
                           SG_TREE_MAX_NODES);
    }
    r->G = G;
    struct {
        const char *name;
        bool integer;
        int64_t want;
        void **dst;
    } v[] = {
        {"/trees/group", true, r->T, (void **)&r->group},
        {"/trees/left", true, r->N, (void **)&r->left},
        {"/trees/feature", true, r->N, (void **)&r->feature},
        {"/trees/default_left", true, r->N, (void **)&r->default_left},
        {"/trees/threshold", false, r->N, (void **)&r->threshold},
        {"/trees/leaf_value", false, r->N, (void **)&r->leaf},
        {"/trees/base_margin", false, G, (void **)&r->base},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0] && rc == SG_OK; i++)
        rc = read_vec(f, path, v[i].name, v[i].integer, v[i].want, INT64_MAX, v[i].dst, NULL, err);
    /* Optional: the float64 thresholds of a model that compares in float64. */
    if (rc == SG_OK && sg_h5_exists(f, "/trees/threshold_f64")) {
        hid_t ds = sg_h5_open_dataset(f, "/trees/threshold_f64", H5P_DEFAULT, path, err);
        if (ds < 0) return SG_EINPUT;
        hid_t type = H5Dget_type(ds);
        char tn[64];
        sg_h5_type_name(type, tn, sizeof tn);
        const bool f64 = H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == 8;
        H5Tclose(type);
        H5Dclose(ds);
        if (!f64)
            return sg_errf(err, SG_EINPUT,
                           "%s: /trees/threshold_f64 has dtype %s, expected float64", path, tn);
        rc = read_vec(f, path, "/trees/threshold_f64", false, r->N, INT64_MAX,
                      (void **)&r->threshold_f64, NULL, err);
    }
    return rc;
}

/* What scripts/sklearn_trees.py stores for a float64 threshold t: x32 <= t exactly when
   x32 < the next float32 above the largest float32 <= t: sg_tree_le32 (stagegate/trees.h). */

void sg_f64_cuts_free(sg_f64_cuts *c)
{
    if (!c) return;
    free(c->start);
    free(c->cut);
    free(c->floor32);
    free(c);
}

typedef struct {
    int64_t feature;
    double t;
} feature_cut;

static int cmp_cut(const void *a, const void *b)
{
    const feature_cut *x = a, *y = b;
    if (x->feature != y->feature) return x->feature < y->feature ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}

/*
 * /trees/threshold_f64 (after build checked the structure): every split's float32 threshold
 * must be what the exporter derives from the float64 one, every value finite (+inf allowed on
 * a split, which then sends every present value left). Collects the distinct finite
 * thresholds of each feature into m->f64_cuts.
 */
static sg_status build_cuts(const char *path, const raw_trees *r, sg_model *m, sg_err *err)
{
    feature_cut *all = malloc((size_t)r->N * sizeof *all);
    sg_f64_cuts *c = calloc(1, sizeof *c);
    if (c) c->start = calloc((size_t)m->n_features + 1, sizeof *c->start);
    sg_status rc = SG_OK;
    if (!all || !c || !c->start) rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    int64_t n = 0;
    for (int64_t t = 0, o = 0; rc == SG_OK && t < r->T; o += r->n_nodes[t], t++) {
        for (int64_t q = 0; q < r->n_nodes[t] && rc == SG_OK; q++) {
            const int64_t g = o + q;
            const double v = r->threshold_f64[g];
            const bool split = r->left[g] != -1;
            if (isnan(v) || v == -INFINITY || (!split && !isfinite(v))) {
                rc = sg_errf(err, SG_EINPUT,
                             "%s: /trees/threshold_f64[%lld] (tree %lld node %lld) is %s", path,
                             (long long)g, (long long)t, (long long)q,
                             isnan(v) ? "NaN"
                             : split  ? "-inf"
                                      : "not finite (on a leaf)");
            } else if (split && sg_tree_le32(v) != (float)r->threshold[g]) {
                rc = sg_errf(
                    err, SG_EINPUT,
                    "%s: /trees/threshold[%lld] (tree %lld node %lld) is %.9g, but "
                    "/trees/threshold_f64[%lld] is %.17g, from which the exporter derives %.9g",
                    path, (long long)g, (long long)t, (long long)q, r->threshold[g], (long long)g,
                    v, (double)sg_tree_le32(v));
            } else if (split && isfinite(v)) {
                all[n++] = (feature_cut){r->feature[g], v};
            }
        }
    }
    if (rc == SG_OK) {
        qsort(all, (size_t)n, sizeof *all, cmp_cut);
        c->n_features = m->n_features;
        c->cut = malloc(((size_t)n + 1) * sizeof *c->cut);
        c->floor32 = malloc(((size_t)n + 1) * sizeof *c->floor32);
        if (!c->cut || !c->floor32) rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    }
    if (rc == SG_OK) {
        int64_t k = 0;
        for (int64_t i = 0; i < n; i++) {
            if (k > 0 && all[i].feature == all[i - 1].feature && all[i].t == all[i - 1].t) continue;
            c->cut[k] = all[i].t;
            c->floor32[k] = sg_tree_floor32(all[i].t);
            c->start[all[i].feature + 1] = ++k;
        }
        for (int f = 0; f < m->n_features; f++) /* features without cuts: empty ranges */
            if (c->start[f + 1] < c->start[f]) c->start[f + 1] = c->start[f];
    }
    free(all);
    if (rc != SG_OK) {
        sg_f64_cuts_free(c);
        return rc;
    }
    m->f64_cuts = c;
    return SG_OK;
}

bool sg_f64_cuts_narrow(const sg_f64_cuts *c, int f, double x, float *out, double *below,
                        double *above)
{
    const float x32 = (float)x;
    *out = x32;
    const int64_t s = c->start[f], e = c->start[f + 1];
    if (s == e || isnan(x) || isinf(x32)) return true;
    int64_t i = s, j = e; /* i: the first cut >= x, so x lies in (cut[i - 1], cut[i]] */
    while (i < j) {
        const int64_t mid = i + (j - i) / 2;
        if (c->cut[mid] < x)
            i = mid + 1;
        else
            j = mid;
    }
    const float lo = i > s ? c->floor32[i - 1] : -INFINITY, hi = i < e ? c->floor32[i] : INFINITY;
    if (lo < x32 && x32 <= hi) return true;
    if (x32 > hi && hi > lo) {
        *out = hi;
        return true;
    }
    if (x32 <= lo && nextafterf(lo, INFINITY) <= hi) {
        *out = nextafterf(lo, INFINITY);
        return true;
    }
    *below = i > s ? c->cut[i - 1] : -INFINITY;
    *above = i < e ? c->cut[i] : INFINITY;
    return false;
}

/* One tree at node offset o: checks and lays it out into out[0..n). */
static sg_status build_tree(const char *path, const raw_trees *r, int n_features, int64_t t, int64_t o,
                      sg_tree_node *out, uint8_t *depth, int *max_depth, sg_err *err)
{
    const int64_t n = r->n_nodes[t];
    int64_t count = 1;
    depth[0] = 0;
    *max_depth = 0;
    for (int64_t q = 0; q < n; q++) {
        const int64_t g = o + q; /* index into the /trees arrays */
        if (q >= count)
            return sg_errf(err, SG_EINPUT,
                           "%s: tree %lld node %lld (/trees/left[%lld]) is not reachable from "
                           "the root",
                           path, (long long)t, (long long)q, (long long)g);
        if (r->left[g] == -1) {
            const float v = (float)r->leaf[g];
            if (!isfinite(v))
                return sg_errf(err, SG_EINPUT,
                               "%s: /trees/leaf_value[%lld] (tree %lld node %lld) is not a "
                               "finite float32",
                               path, (long long)g, (long long)t, (long long)q);
            out[q] = (sg_tree_node){INFINITY, SG_TREE_DEFAULT_LEFT, (uint32_t)q, v};
            continue;
        }
        if (r->left[g] != count || count + 2 > n)
            return sg_errf(err, SG_EINPUT,
                           "%s: /trees/left[%lld] (tree %lld node %lld) is %lld; breadth-first "
                           "order with %lld nodes needs %lld (or -1 on a leaf)",
                           path, (long long)g, (long long)t, (long long)q, (long long)r->left[g],
                           (long long)n, (long long)count);
        if (r->feature[g] < 0 || r->feature[g] >= n_features)
            return sg_errf(err, SG_EINPUT,
                           "%s: /trees/feature[%lld] (tree %lld node %lld) is %lld, outside "
                           "0..%d",
                           path, (long long)g, (long long)t, (long long)q, (long long)r->feature[g],
                           n_features - 1);
        /* +inf is a real split (every present value left, a missing one by default_left),
           which scikit-learn's HistGradientBoosting makes; NaN compares with nothing. */
        const float thr = (float)r->threshold[g];
        if (isnan(thr))
            return sg_errf(err, SG_EINPUT,
                           "%s: /trees/threshold[%lld] (tree %lld node %lld) is NaN", path,
                           (long long)g, (long long)t, (long long)q);
        if (r->default_left[g] != 0 && r->default_left[g] != 1)
            return sg_errf(err, SG_EINPUT, "%s: /trees/default_left[%lld] is %lld, not 0 or 1",
                           path, (long long)g, (long long)r->default_left[g]);
        if (depth[q] + 1 > SG_TREE_MAX_DEPTH)
            return sg_errf(err, SG_EINPUT, "%s: tree %lld is deeper than the limit of %d", path,
                           (long long)t, SG_TREE_MAX_DEPTH);
        depth[count] = depth[count + 1] = (uint8_t)(depth[q] + 1);
        if (depth[q] + 1 > *max_depth) *max_depth = depth[q] + 1;
        out[q] = (sg_tree_node){
            thr, (uint32_t)r->feature[g] | (r->default_left[g] ? SG_TREE_DEFAULT_LEFT : 0u),
            (uint32_t)count, 0.0f};
        count += 2;
    }
    return SG_OK;
}

static int build(const char *path, const raw_trees *r, const sg_model *m, sg_tree_ensemble *e,
                 sg_err *err)
{
    const size_t T = (size_t)r->T;
    e->n_trees = (int)r->T;
    e->n_groups = (int)r->G;
    e->n_features = m->n_features;
    e->n_nodes = r->N;
    e->nodes = sg_alloc_aligned((size_t)r->N * sizeof *e->nodes);
    e->tree_start = malloc(T * sizeof *e->tree_start);
    e->tree_group = malloc(T * sizeof *e->tree_group);
    e->tree_depth = malloc(T);
    e->base = malloc((size_t)r->G * sizeof *e->base);
    int64_t widest = 1;
    for (int64_t t = 0; t < r->T; t++)
        if (r->n_nodes[t] > widest) widest = r->n_nodes[t];
    uint8_t *depth = malloc((size_t)widest); /* per node of one tree, reused */
    int rc = SG_OK;
    if (!e->nodes || !e->tree_start || !e->tree_group || !e->tree_depth || !e->base || !depth)
        rc =
            sg_errf(err, SG_ENOMEM, "%s: out of memory for %lld tree nodes", path, (long long)r->N);
    for (int64_t g = 0; rc == SG_OK && g < r->G; g++) {
        e->base[g] = (float)r->base[g];
        if (!isfinite(e->base[g]))
            rc = sg_errf(err, SG_EINPUT, "%s: /trees/base_margin[%lld] is not a finite float32",
                         path, (long long)g);
    }
    int64_t o = 0;
    for (int64_t t = 0; rc == SG_OK && t < r->T; t++) {
        if (r->group[t] < 0 || r->group[t] >= r->G) {
            rc = sg_errf(err, SG_EINPUT, "%s: /trees/group[%lld] is %lld, outside 0..%lld", path,
                         (long long)t, (long long)r->group[t], (long long)(r->G - 1));
            break;
        }
        int d = 0;
        rc = build_tree(path, r, m->n_features, t, o, e->nodes + o, depth, &d, err);
        e->tree_start[t] = o;
        e->tree_group[t] = (int32_t)r->group[t];
        e->tree_depth[t] = (uint8_t)d;
        if (d > e->max_depth) e->max_depth = d;
        o += r->n_nodes[t];
    }
    free(depth);
    if (rc == SG_OK) rc = sg_tree_ensemble_build_levels(e, err);
    return rc;
}


/*
 * Output "probability": each group's summed leaves are the probability itself, so the sum
 * must lie in [0, 1] for every row. Bounded at load for every row at once: the base plus
 * each tree's smallest leaf, and the base plus each tree's largest, per group (a forest's
 * leaves are class fractions over the tree count, so its bounds are 0 and 1).
 */
static sg_status check_probability_bounds(const char *path, const sg_tree_ensemble *e, sg_err *err)
{
    const int G = e->n_groups;
    double *lo = calloc((size_t)G * 2 + 2, sizeof *lo), *hi = lo + G + 1;
    if (!lo) return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    for (int g = 0; g < G; g++)
        lo[g] = hi[g] = e->base[g];
    for (int t = 0; t < e->n_trees; t++) {
        const int64_t start = e->tree_start[t];
        const int64_t end = t + 1 < e->n_trees ? e->tree_start[t + 1] : e->n_nodes;
        double mn = INFINITY, mx = -INFINITY;
        for (int64_t i = start; i < end; i++) {
            const sg_tree_node *nd = &e->nodes[i];
            if ((int64_t)nd->left + start != i) continue; /* not a leaf */
            if (nd->leaf < mn) mn = nd->leaf;
            if (nd->leaf > mx) mx = nd->leaf;
        }
        if (mn <= mx) {
            lo[e->tree_group[t]] += mn;
            hi[e->tree_group[t]] += mx;
        }
    }
    const double tol = 1e-5, d = e->mean_of > 0 ? e->mean_of : 1;
    sg_status rc = SG_OK;
    for (int g = 0; g < G && rc == SG_OK; g++)
        if (lo[g] / d < -tol || hi[g] / d > 1 + tol)
            rc = sg_errf(err, SG_EINPUT,
                         "%s: output is \"probability\" but the leaves of group %d can sum to "
                         "%.6g (smallest) or %.6g (largest)%s, outside [0, 1]",
                         path, g, lo[g] / d, hi[g] / d,
                         e->mean_of > 0 ? " once divided by mean_of" : "");
    free(lo);
    return rc;
}

/*
 * A forest's sum is divided by mean_of after it is taken, in float32: targets near FLT_MAX
 * (3.4e38) could make the sum of a group's trees overflow where their mean does not. When
 * the base plus every tree's largest |leaf| could pass FLT_MAX, the leaves are divided
 * first instead (the sum is then of leaf / mean_of, as before format 2) and mean_of is 0.
 */
static void divide_leaves_if_sum_overflows(raw_trees *r, int64_t *mean_of)
{
    double *bound = calloc((size_t)r->G, sizeof *bound);
    if (!bound) return; /* the sum is kept: at worst an output that is not finite, refused */
    bool over = false;
    for (int64_t g = 0; g < r->G; g++)
        bound[g] = fabs(r->base[g]);
    int64_t o = 0;
    for (int64_t t = 0; t < r->T && !over; t++) {
        double mx = 0;
        for (int64_t i = o; i < o + r->n_nodes[t] && i < r->N; i++)
            if (r->left[i] < 0 && fabs(r->leaf[i]) > mx) mx = fabs(r->leaf[i]);
        if (r->group[t] >= 0 && r->group[t] < r->G) {
            bound[r->group[t]] += mx;
            over = bound[r->group[t]] > FLT_MAX;
        }
        o += r->n_nodes[t];
    }
    free(bound);
    if (!over) return;
    for (int64_t i = 0; i < r->N; i++)
        r->leaf[i] /= (double)*mean_of;
    for (int64_t g = 0; g < r->G; g++)
        r->base[g] /= (double)*mean_of;
    *mean_of = 0;
}

sg_status sg_model_h5_trees(hid_t f, const char *path, sg_model *m, sg_err *err)
{
    char out[32];
    int rc = sg_h5_attr_string(f, "output", out, sizeof out, path, "", err);
    if (rc == 1) return sg_errf(err, SG_EINPUT, "%s: attribute output is missing", path);
    if (rc) return rc;
    /* What each task may do with the summed leaves. */
    static const struct {
        sg_task task;
        const char *name;
        sg_tree_output output;
    } outputs[] = {
        {SG_TASK_BINARY, "sigmoid", SG_TREE_OUT_BINARY},
        {SG_TASK_BINARY, "probability", SG_TREE_OUT_PROBA_BINARY},
        {SG_TASK_MULTICLASS, "softmax", SG_TREE_OUT_SOFTMAX},
        {SG_TASK_MULTICLASS, "probability", SG_TREE_OUT_PROBA},
        {SG_TASK_REGRESSION, "identity", SG_TREE_OUT_IDENTITY},
        {SG_TASK_REGRESSION, "sigmoid", SG_TREE_OUT_SIGMOID},
        {SG_TASK_REGRESSION, "exp", SG_TREE_OUT_EXP},
    };
    int found = -1;
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++)
        if (outputs[i].task == m->task && strcmp(outputs[i].name, out) == 0) found = (int)i;
    if (found < 0)
        return sg_errf(err, SG_EINPUT,
                       "%s: attribute output is \"%s\", which a %s tree ensemble cannot have "
                       "(binary: sigmoid, probability; multiclass: softmax, probability; "
                       "regression: identity, sigmoid, exp)",
                       path, out, sg_task_name(m->task));
    int64_t missing = 0;
    rc = sg_h5_attr_int(f, "missing_values", &missing, path, "", err);
    if (rc < 0) return rc;
    if (rc == 0 && missing != 0 && missing != 1)
        return sg_errf(err, SG_EINPUT, "%s: attribute missing_values is %lld, not 0 or 1", path,
                       (long long)missing);
    /* mean_of (format 2): the outputs are the trees' mean, (base + sum) / mean_of. */
    int64_t mean_of = 0;
    rc = sg_h5_attr_int(f, "mean_of", &mean_of, path, "", err);
    if (rc < 0) return rc;
    if (rc == SG_OK) {
        if (m->format_version < 2)
            return sg_errf(err, SG_EINPUT,
                           "%s: attribute mean_of needs format_version 2 (the file says %d: a "
                           "build that ignores mean_of would read the sums as the outputs)",
                           path, m->format_version);
        if (mean_of < 1 || mean_of > SG_TREE_MAX_TREES)
            return sg_errf(err, SG_EINPUT, "%s: attribute mean_of is %lld, outside 1..%d", path,
                           (long long)mean_of, SG_TREE_MAX_TREES);
        const sg_tree_output o = outputs[found].output;
        if (o != SG_TREE_OUT_PROBA_BINARY && o != SG_TREE_OUT_PROBA && o != SG_TREE_OUT_IDENTITY)
            return sg_errf(err, SG_EINPUT,
                           "%s: attribute mean_of is given with output \"%s\"; a forest's mean "
                           "is read with output probability or identity",
                           path, out);
    } else {
        mean_of = 0;
    }
    const int64_t G = m->task == SG_TASK_MULTICLASS ? m->n_classes : 1;
    raw_trees r = {0};
    sg_tree_ensemble *e = calloc(1, sizeof *e);
    rc = e ? read_raw(f, path, G, &r, err) : sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    if (rc == SG_OK && mean_of > 0) divide_leaves_if_sum_overflows(&r, &mean_of);
    if (rc == SG_OK) {
        e->output = outputs[found].output;
        e->mean_of = (int)mean_of;
        snprintf(e->booster, sizeof e->booster, "sklearn");
        snprintf(e->objective, sizeof e->objective, "%s", out);
        rc = build(path, &r, m, e, err);
    }
    if (rc == SG_OK && r.threshold_f64) rc = build_cuts(path, &r, m, err);
    raw_free(&r);
    if (rc == SG_OK && (e->output == SG_TREE_OUT_PROBA_BINARY || e->output == SG_TREE_OUT_PROBA))
        rc = check_probability_bounds(path, e, err);
    if (rc) {
        sg_tree_ensemble_free(e);
        sg_f64_cuts_free(m->f64_cuts);
        m->f64_cuts = NULL;
        return rc;
    }
    m->trees = e;
    m->n_outputs = e->n_groups;
    m->missing_values = missing == 1;
    m->param_bytes = sg_tree_ensemble_bytes(e);
    return SG_OK;
}
