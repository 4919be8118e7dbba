/*
 * XGBoost JSON models (Booster.save_model("m.json"), schema of XGBoost >= 1.0)
 * parsed into the breadth-first node layout of stagegate/trees.h.
 *
 * The file is outside input: every array length, index and number is checked
 * before use, and every error names the file and the JSON path of the bad value.
 * The tree structure is walked depth-first from the root once (which finds
 * out-of-range children, cycles, nodes reachable twice and excessive depth with
 * an explicit stack bounded by SG_TREE_MAX_DEPTH), then laid out breadth-first.
 * Nodes the root cannot reach (XGBoost's deleted nodes) are dropped.
 */
#include "stagegate/trees.h"

#include "json_tape.h"

#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TREES "/learner/gradient_booster/model/trees"

typedef struct {
    const char *name;
    sg_err *err;
    const char *prefix; /* JSON path of the gbtree model object */
    const sg_jdoc *d;
} ctx;

static sg_status fail(const ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static sg_status fail(const ctx *c, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sg_errf(c->err, SG_EINPUT, "%s: %s", c->name, msg);
}

/* XGBoost writes most scalars of its parameter blocks as strings ("5E-1", "3"). */
static bool number_of(const ctx *c, const sg_jv *v, double *out)
{
    if (sg_jt_is(v, SG_JT_NUMBER)) {
        *out = v->u.num;
        return true;
    }
    if (!sg_jt_is(v, SG_JT_STRING)) return false;
    const char *s = sg_jt_str(c->d, v);
    char *end = NULL;
    *out = strtod(s, &end);
    return end != s && *end == '\0';
}

static sg_status get_int(const ctx *c, const sg_jv *obj, const char *key, const char *path, long lo,
                   long hi, long *out)
{
    const sg_jv *v = sg_jt_get(c->d, obj, key);
    double d;
    if (!v) return fail(c, "%s/%s is missing", path, key);
    if (!number_of(c, v, &d) || d != floor(d)) return fail(c, "%s/%s is not an integer", path, key);
    if (d < (double)lo || d > (double)hi)
        return fail(c, "%s/%s = %.0f is outside %ld..%ld", path, key, d, lo, hi);
    *out = (long)d;
    return SG_OK;
}

static const sg_jv *get_array(const ctx *c, const sg_jv *obj, const char *key, const char *path,
                               size_t want, int *rc)
{
    const sg_jv *a = sg_jt_get(c->d, obj, key);
    if (!sg_jt_is(a, SG_JT_ARRAY)) {
        *rc = fail(c, "%s/%s is missing or not an array", path, key);
        return NULL;
    }
    if (want != (size_t)-1 && sg_jt_size(a) != want) {
        *rc = fail(c, "%s/%s has %zu entries, expected %zu (num_nodes)", path, key,
                   sg_jt_size(a), want);
        return NULL;
    }
    return a;
}

typedef struct {
    const sg_jv *left, *right, *feat, *cond, *dleft, *stype;
    size_t n;
    long num_feature;
    char path[96];
} tree_json;

static sg_status child_of(const ctx *c, const tree_json *t, const sg_jv *arr, const char *key, size_t i,
                    long *out)
{
    double d;
    if (!number_of(c, sg_jt_at(c->d, arr, i), &d) || d != floor(d))
        return fail(c, "%s/%s/%zu is not an integer", t->path, key, i);
    if (d != -1 && (d < 0 || d >= (double)t->n))
        return fail(c, "%s/%s/%zu: child index %.0f is outside 0..%zu", t->path, key, i, d,
                    t->n - 1);
    *out = (long)d;
    return SG_OK;
}

/* Children of node i: both -1 on a leaf, both valid otherwise. */
static sg_status children(const ctx *c, const tree_json *t, size_t i, long *l, long *r)
{
    int rc = child_of(c, t, t->left, "left_children", i, l);
    if (!rc) rc = child_of(c, t, t->right, "right_children", i, r);
    if (!rc && ((*l < 0) != (*r < 0)))
        return fail(c, "%s: node %zu has one child (left %ld, right %ld)", t->path, i, *l, *r);
    return rc;
}

/* Depth-first walk: 0 unseen, 1 on the current path, 2 finished. */
static sg_status check_structure(const ctx *c, const tree_json *t, uint8_t *state, int *depth_out,
                           size_t *reachable)
{
    struct frame {
        size_t node;
        int next; /* 0: visit left, 1: visit right, 2: done */
    } stack[SG_TREE_MAX_DEPTH + 2];
    int sp = 0, max_depth = 0;
    size_t count = 1;
    stack[0] = (struct frame){0, 0};
    state[0] = 1;
    while (sp >= 0) {
        struct frame *f = &stack[sp];
        long l = -1, r = -1;
        int rc = children(c, t, f->node, &l, &r);
        if (rc) return rc;
        if (l < 0 || f->next == 2) {
            state[f->node] = 2;
            sp--;
            continue;
        }
        size_t ch = (size_t)(f->next == 0 ? l : r);
        f->next++;
        if (state[ch] == 1)
            return fail(c, "%s: node %zu has child %zu, one of its ancestors (a cycle)", t->path,
                        f->node, ch);
        if (state[ch] == 2)
            return fail(c, "%s: node %zu is reachable twice (again from node %zu)", t->path, ch,
                        f->node);
        if (sp + 1 > SG_TREE_MAX_DEPTH)
            return fail(c, "%s: depth exceeds the limit of %d", t->path, SG_TREE_MAX_DEPTH);
        state[ch] = 1;
        count++;
        stack[++sp] = (struct frame){ch, 0};
        if (sp > max_depth) max_depth = sp;
    }
    *depth_out = max_depth;
    *reachable = count;
    return SG_OK;
}

static sg_status check_split(const ctx *c, const tree_json *t, size_t i, float *thr, uint32_t *feature)
{
    double v;
    if (t->stype && !number_of(c, sg_jt_at(c->d, t->stype, i), &v))
        return fail(c, "%s/split_type/%zu is not a number", t->path, i);
    if (t->stype && v != 0)
        return fail(c, "%s/split_type/%zu: node %zu is a categorical split, which is not supported",
                    t->path, i, i);
    if (!number_of(c, sg_jt_at(c->d, t->feat, i), &v) || v != floor(v))
        return fail(c, "%s/split_indices/%zu is not an integer", t->path, i);
    if (v < 0 || v >= (double)t->num_feature)
        return fail(c, "%s/split_indices/%zu: feature %.0f is outside 0..%ld (num_feature)",
                    t->path, i, v, t->num_feature - 1);
    *feature = (uint32_t)v;
    if (!number_of(c, sg_jt_at(c->d, t->cond, i), &v))
        return fail(c, "%s/split_conditions/%zu is not a number", t->path, i);
    *thr = (float)v;
    if (!isfinite(*thr))
        return fail(c, "%s/split_conditions/%zu: threshold %g is not a finite float32", t->path, i,
                    v);
    const sg_jv *dl = sg_jt_at(c->d, t->dleft, i);
    if (sg_jt_is_bool(dl))
        *feature |= sg_jt_is(dl, SG_JT_TRUE) ? SG_TREE_DEFAULT_LEFT : 0;
    else if (number_of(c, dl, &v) && (v == 0 || v == 1))
        *feature |= v == 1 ? SG_TREE_DEFAULT_LEFT : 0;
    else
        return fail(c, "%s/default_left/%zu is not 0, 1, true or false", t->path, i);
    return SG_OK;
}

/* Breadth-first layout: children of a node are adjacent, right = left + 1. */
static sg_status layout(const ctx *c, const tree_json *t, size_t reachable, float weight,
                  sg_tree_node *out, size_t *order)
{
    size_t count = 1;
    order[0] = 0;
    for (size_t q = 0; q < count; q++) {
        size_t i = order[q];
        long l = -1, r = -1;
        int rc = children(c, t, i, &l, &r);
        if (rc) return rc;
        sg_tree_node *n = &out[q];
        if (l < 0) {
            double v;
            if (!number_of(c, sg_jt_at(c->d, t->cond, i), &v))
                return fail(c, "%s/split_conditions/%zu (leaf value) is not a number", t->path, i);
            float leaf = (float)v * weight;
            if (!isfinite(leaf))
                return fail(c, "%s/split_conditions/%zu: leaf value %g is not a finite float32",
                            t->path, i, v);
            *n = (sg_tree_node){INFINITY, SG_TREE_DEFAULT_LEFT, (uint32_t)q, leaf};
            continue;
        }
        SG_ASSERT(count + 2 <= reachable);
        rc = check_split(c, t, i, &n->threshold, &n->feature);
        if (rc) return rc;
        n->left = (uint32_t)count;
        n->leaf = 0;
        order[count++] = (size_t)l;
        order[count++] = (size_t)r;
    }
    SG_ASSERT(count == reachable);
    return SG_OK;
}

static sg_status parse_tree(const ctx *c, const sg_jv *tree, int index, long num_feature, float weight,
                      sg_tree_ensemble *e, int64_t *cap)
{
    tree_json t = {.num_feature = num_feature};
    snprintf(t.path, sizeof t.path, "%s/%d", c->prefix, index);
    if (!sg_jt_is(tree, SG_JT_OBJECT)) return fail(c, "%s is not an object", t.path);
    int rc = SG_OK;
    t.left = get_array(c, tree, "left_children", t.path, (size_t)-1, &rc);
    if (!t.left) return rc;
    t.n = sg_jt_size(t.left);
    if (t.n == 0) return fail(c, "%s/left_children is empty", t.path);
    if (t.n > SG_TREE_MAX_NODES_PER_TREE)
        return fail(c, "%s has %zu nodes, more than %d", t.path, t.n, SG_TREE_MAX_NODES_PER_TREE);
    if (!(t.right = get_array(c, tree, "right_children", t.path, t.n, &rc))) return rc;
    if (!(t.feat = get_array(c, tree, "split_indices", t.path, t.n, &rc))) return rc;
    if (!(t.cond = get_array(c, tree, "split_conditions", t.path, t.n, &rc))) return rc;
    if (!(t.dleft = get_array(c, tree, "default_left", t.path, t.n, &rc))) return rc;
    if (sg_jt_get(c->d, tree, "split_type") &&
        !(t.stype = get_array(c, tree, "split_type", t.path, t.n, &rc)))
        return rc;

    uint8_t *state = calloc(t.n, 1);
    size_t *order = malloc(t.n * sizeof *order);
    int depth = 0;
    size_t reachable = 0;
    if (!state || !order) rc = sg_errf(c->err, SG_ENOMEM, "%s: out of memory", c->name);
    if (!rc) rc = check_structure(c, &t, state, &depth, &reachable);
    if (!rc && e->n_nodes + (int64_t)reachable > SG_TREE_MAX_NODES)
        rc = fail(c, "%s: the trees have more than %d nodes in all", t.path, SG_TREE_MAX_NODES);
    if (!rc && e->n_nodes + (int64_t)reachable > *cap) {
        int64_t ncap =
            *cap * 2 > e->n_nodes + (int64_t)reachable ? *cap * 2 : e->n_nodes + (int64_t)reachable;
        sg_tree_node *grown = sg_alloc_aligned((size_t)ncap * sizeof *grown);
        if (!grown) {
            rc = sg_errf(c->err, SG_ENOMEM, "%s: out of memory for %lld tree nodes", c->name,
                         (long long)ncap);
        } else {
            if (e->n_nodes) memcpy(grown, e->nodes, (size_t)e->n_nodes * sizeof *grown);
            sg_free_aligned(e->nodes);
            e->nodes = grown;
            *cap = ncap;
        }
    }
    if (!rc) rc = layout(c, &t, reachable, weight, e->nodes + e->n_nodes, order);
    if (!rc) {
        e->tree_start[index] = e->n_nodes;
        e->tree_depth[index] = (uint8_t)depth;
        e->n_nodes += (int64_t)reachable;
        if (depth > e->max_depth) e->max_depth = depth;
    }
    free(state);
    free(order);
    return rc;
}

/* How base_score becomes the margin every row starts from (XGBoost's ProbToMargin). */
typedef enum {
    BASE_AS_IS,  /* the margin itself */
    BASE_LOGIT,  /* a probability: its logit */
    BASE_LOG,    /* a mean of a log-link objective: its log */
} base_link;

typedef struct {
    const char *name;
    sg_tree_output output;
    bool multi;
    base_link base;
} objective_info;

static const objective_info objectives[] = {
    {"binary:logistic", SG_TREE_OUT_BINARY, false, BASE_LOGIT},
    {"binary:logitraw", SG_TREE_OUT_BINARY, false, BASE_AS_IS},
    {"reg:logistic", SG_TREE_OUT_SIGMOID, false, BASE_LOGIT},
    {"reg:squarederror", SG_TREE_OUT_IDENTITY, false, BASE_AS_IS},
    {"reg:squaredlogerror", SG_TREE_OUT_IDENTITY, false, BASE_AS_IS},
    {"reg:pseudohubererror", SG_TREE_OUT_IDENTITY, false, BASE_AS_IS},
    {"reg:absoluteerror", SG_TREE_OUT_IDENTITY, false, BASE_AS_IS},
    {"count:poisson", SG_TREE_OUT_EXP, false, BASE_LOG},
    {"reg:gamma", SG_TREE_OUT_EXP, false, BASE_LOG},
    {"reg:tweedie", SG_TREE_OUT_EXP, false, BASE_LOG},
    {"multi:softprob", SG_TREE_OUT_SOFTMAX, true, BASE_AS_IS},
    {"multi:softmax", SG_TREE_OUT_SOFTMAX, true, BASE_AS_IS},
};

/*
 * base_score: a number or a number in a string ("5E-1") up to XGBoost 2.0; from 2.1 a list
 * in a string, "[5E-1]", one entry per output. One entry is the scalar of old. XGBoost 3.1
 * may fit one intercept per class for multi:*; softmax ignores a shift common to every
 * class, so equal entries are that same scalar, whatever link they are stored through.
 * Unequal per-class entries are refused rather than guessed at.
 */
static sg_status base_score_of(const ctx *c, const sg_jv *v, long groups, double *out)
{
    const char *pp = "/learner/learner_model_param/base_score";
    const char *s = sg_jt_str(c->d, v);
    if (!s || s[0] != '[') {
        if (!number_of(c, v, out)) return fail(c, "%s is missing or not a number", pp);
        return SG_OK;
    }
    long n = 0;
    double first = 0;
    const char *q = s + 1;
    for (;;) {
        char *end = NULL;
        while (*q == ' ') q++;
        double x = strtod(q, &end);
        if (end == q) return fail(c, "%s \"%.64s\": entry %ld is not a number", pp, s, n);
        if (n == 0) first = x;
        if (x != first && !(isnan(x) && isnan(first)))
            return fail(c, "%s \"%.64s\": one intercept per class (XGBoost 3.1) is not supported; "
                           "only equal entries are", pp, s);
        n++;
        q = end;
        while (*q == ' ') q++;
        if (*q == ',') {
            q++;
            continue;
        }
        if (*q == ']' && q[1] == '\0') break;
        return fail(c, "%s \"%.64s\" is not a list of numbers", pp, s);
    }
    if (n != 1 && n != groups)
        return fail(c, "%s \"%.64s\" has %ld entries for %ld output%s", pp, s, n, groups,
                    groups == 1 ? "" : "s");
    *out = first;
    return SG_OK;
}

static sg_status parse_learner(const ctx *c, const sg_jv *learner, sg_tree_ensemble *e,
                         const objective_info **obj, long *num_class)
{
    const sg_jv *o = sg_jt_get(c->d, sg_jt_get(c->d, learner, "objective"), "name");
    if (!sg_jt_is(o, SG_JT_STRING)) return fail(c, "/learner/objective/name is missing");
    *obj = NULL;
    for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++)
        if (strcmp(sg_jt_str(c->d, o), objectives[i].name) == 0) *obj = &objectives[i];
    if (!*obj)
        return fail(
            c,
            "/learner/objective/name: objective \"%.64s\" is not supported (binary:logistic, "
            "binary:logitraw, reg:logistic, reg:squarederror, reg:squaredlogerror, "
            "reg:pseudohubererror, reg:absoluteerror, count:poisson, reg:gamma, reg:tweedie, "
            "multi:softprob, multi:softmax)",
            sg_jt_str(c->d, o));
    snprintf(e->objective, sizeof e->objective, "%s", (*obj)->name);
    const sg_jv *p = sg_jt_get(c->d, learner, "learner_model_param");
    const char *pp = "/learner/learner_model_param";
    if (!sg_jt_is(p, SG_JT_OBJECT)) return fail(c, "%s is missing", pp);
    long nf, nt = 1;
    int rc = get_int(c, p, "num_feature", pp, 1, 1L << 24, &nf);
    if (!rc) rc = get_int(c, p, "num_class", pp, 0, 65536, num_class);
    if (!rc && sg_jt_get(c->d, p, "num_target")) rc = get_int(c, p, "num_target", pp, 1, 1, &nt);
    if (rc) return rc;
    if ((*obj)->multi && *num_class < 2)
        return fail(c, "%s/num_class is %ld but %s needs at least 2 classes", pp, *num_class,
                    (*obj)->name);
    if (!(*obj)->multi && *num_class > 1)
        return fail(c, "%s/num_class is %ld for the single-output objective %s", pp, *num_class,
                    (*obj)->name);
    double bs = 0;
    rc = base_score_of(c, sg_jt_get(c->d, p, "base_score"), (*obj)->multi ? *num_class : 1, &bs);
    if (rc) return rc;
    float base = (float)bs;
    /* XGBoost's ProbToMargin, in float as it computes it. */
    if ((*obj)->base == BASE_LOGIT) {
        if (!(base > 0 && base < 1))
            return fail(c, "%s/base_score %g is not in (0, 1) as %s needs", pp, bs, (*obj)->name);
        base = -logf(1.0f / base - 1.0f);
    } else if ((*obj)->base == BASE_LOG) {
        if (!(base > 0))
            return fail(c, "%s/base_score %g is not above 0 as %s needs", pp, bs, (*obj)->name);
        base = logf(base);
    }
    if (!isfinite(base)) return fail(c, "%s/base_score %g is not finite", pp, bs);
    e->n_features = (int)nf;
    e->n_groups = (*obj)->multi ? (int)*num_class : 1;
    /* XGBoost starts every output group from the same base_score. */
    e->base = malloc((size_t)e->n_groups * sizeof *e->base);
    if (!e->base) return sg_errf(c->err, SG_ENOMEM, "%s: out of memory", c->name);
    for (int g = 0; g < e->n_groups; g++)
        e->base[g] = base;
    e->output = (*obj)->output;
    return SG_OK;
}

static sg_status parse_booster(ctx *c, const sg_jv *gb, sg_tree_ensemble *e, const sg_jv **model,
                         const sg_jv **weights)
{
    const sg_jv *name = sg_jt_get(c->d, gb, "name");
    if (!sg_jt_is(name, SG_JT_STRING)) return fail(c, "/learner/gradient_booster/name is missing");
    const char *n = sg_jt_str(c->d, name);
    *weights = NULL;
    if (strcmp(n, "gbtree") == 0) {
        *model = sg_jt_get(c->d, gb, "model");
        c->prefix = TREES;
    } else if (strcmp(n, "dart") == 0) {
        *model = sg_jt_get(c->d, sg_jt_get(c->d, gb, "gbtree"), "model");
        *weights = sg_jt_get(c->d, gb, "weight_drop");
        c->prefix = "/learner/gradient_booster/gbtree/model/trees";
        if (!sg_jt_is(*weights, SG_JT_ARRAY))
            return fail(c, "/learner/gradient_booster/weight_drop is missing (dart)");
    } else {
        return fail(c,
                    "/learner/gradient_booster/name: booster \"%.64s\" is not supported "
                    "(gbtree, dart)",
                    n);
    }
    snprintf(e->booster, sizeof e->booster, "%s", n);
    if (!sg_jt_is(*model, SG_JT_OBJECT))
        return fail(c, "%.*s is missing", (int)strlen(c->prefix) - 6, c->prefix);
    return SG_OK;
}

static sg_status parse_trees(ctx *c, const sg_jv *model, const sg_jv *weights, long num_feature,
                       sg_tree_ensemble *e)
{
    const sg_jv *trees = sg_jt_get(c->d, model, "trees");
    const sg_jv *info = sg_jt_get(c->d, model, "tree_info");
    if (!sg_jt_is(trees, SG_JT_ARRAY)) return fail(c, "%s is missing or not an array", c->prefix);
    size_t nt = sg_jt_size(trees);
    if (nt == 0) return fail(c, "%s: the model has zero trees", c->prefix);
    if (nt > SG_TREE_MAX_TREES)
        return fail(c, "%s: %zu trees, more than %d", c->prefix, nt, SG_TREE_MAX_TREES);
    if (!sg_jt_is(info, SG_JT_ARRAY) || sg_jt_size(info) != nt)
        return fail(c, "%.*s/tree_info must list one group per tree (%zu)",
                    (int)strlen(c->prefix) - 6, c->prefix, nt);
    if (weights && sg_jt_size(weights) != nt)
        return fail(c, "/learner/gradient_booster/weight_drop has %zu entries for %zu trees",
                    sg_jt_size(weights), nt);
    e->n_trees = (int)nt;
    e->tree_start = calloc(nt, sizeof *e->tree_start);
    e->tree_group = calloc(nt, sizeof *e->tree_group);
    e->tree_depth = calloc(nt, sizeof *e->tree_depth);
    if (!e->tree_start || !e->tree_group || !e->tree_depth)
        return sg_errf(c->err, SG_ENOMEM, "%s: out of memory for %zu trees", c->name, nt);
    int64_t cap = 0;
    for (size_t i = 0; i < nt; i++) {
        double g, w = 1;
        if (!number_of(c, sg_jt_at(c->d, info, i), &g) || g != floor(g) || g < 0 || g >= e->n_groups)
            return fail(c, "%.*s/tree_info/%zu: group is not an integer in 0..%d",
                        (int)strlen(c->prefix) - 6, c->prefix, i, e->n_groups - 1);
        e->tree_group[i] = (int32_t)g;
        if (weights && (!number_of(c, sg_jt_at(c->d, weights, i), &w) || !isfinite((float)w)))
            return fail(c, "/learner/gradient_booster/weight_drop/%zu is not a finite number", i);
        int rc = parse_tree(c, sg_jt_at(c->d, trees, i), (int)i, num_feature, (float)w, e, &cap);
        if (rc) return rc;
    }
    return SG_OK;
}

sg_status sg_xgboost_json_parse(const char *name, const char *text, size_t len, sg_tree_ensemble **out,
                          sg_err *err)
{
    *out = NULL;
    ctx c = {.name = name, .err = err, .prefix = TREES};
    sg_jdoc doc;
    /* Booster.save_model writes UBJSON for a .ubj name (and by default from XGBoost 2.1):
       the same document, told apart by its second byte. */
    sg_status prc = sg_jt_looks_ubjson(text, len) ? sg_jt_parse_ubjson(name, text, len, &doc, err)
                                                  : sg_jt_parse(name, text, len, &doc, err);
    if (prc) return prc;
    c.d = &doc;
    const sg_jv *root = sg_jt_root(&doc);
    sg_tree_ensemble *e = calloc(1, sizeof *e);
    int rc = e ? SG_OK : sg_errf(err, SG_ENOMEM, "%s: out of memory", name);
    const sg_jv *learner = sg_jt_get(&doc, root, "learner");
    if (!rc && !sg_jt_is(learner, SG_JT_OBJECT))
        rc = fail(&c, "/learner is missing (not an XGBoost model)");
    const objective_info *obj = NULL;
    long num_class = 0;
    const sg_jv *model = NULL, *weights = NULL;
    if (!rc) rc = parse_learner(&c, learner, e, &obj, &num_class);
    if (!rc)
        rc = parse_booster(&c, sg_jt_get(&doc, learner, "gradient_booster"), e, &model, &weights);
    if (!rc) rc = parse_trees(&c, model, weights, e->n_features, e);
    if (!rc) rc = sg_tree_ensemble_build_levels(e, err);
    sg_jt_free(&doc);
    if (rc) {
        sg_tree_ensemble_free(e);
        return rc;
    }
    *out = e;
    return SG_OK;
}

void sg_tree_ensemble_free(sg_tree_ensemble *e)
{
    if (!e) return;
    sg_free_aligned(e->nodes);
    free(e->tree_start);
    free(e->tree_group);
    free(e->tree_depth);
    free(e->base);
    sg_free_aligned(e->levels);
    sg_free_aligned(e->levels8);
    free(e);
}

/* Places the subtree under node i (at level `level`, position pos) into level-ordered
 * arrays (threshold and feature by (2^level - 1 + pos), leaf by position). */
static void place(const sg_tree_node *tree, uint32_t i, int level, uint32_t pos, int depth,
                  float *threshold, uint32_t *feature, float *leaf)
{
    const sg_tree_node *nd = &tree[i];
    if (level == depth) {
        leaf[pos] = nd->leaf;
        return;
    }
    const uint32_t at = (1u << level) - 1 + pos;
    if (nd->left == i) { /* a leaf above the last level: always left, down to its value */
        threshold[at] = INFINITY;
        feature[at] = SG_TREE_DEFAULT_LEFT;
        place(tree, i, level + 1, 2 * pos, depth, threshold, feature, leaf);
        place(tree, i, level + 1, 2 * pos + 1, depth, threshold, feature, leaf); /* unreachable */
        return;
    }
    threshold[at] = nd->threshold;
    feature[at] = nd->feature;
    place(tree, nd->left, level + 1, 2 * pos, depth, threshold, feature, leaf);
    place(tree, nd->left + 1, level + 1, 2 * pos + 1, depth, threshold, feature, leaf);
}

sg_status sg_tree_ensemble_build_levels(sg_tree_ensemble *e, sg_err *err)
{
    const bool eight = e->max_depth > SG_TREE_LEVELS_DEPTH;
    if (e->max_depth > SG_TREE_LEVELS8_DEPTH) return SG_OK; /* the node layout only */
    const sg_tree_level_geometry g = sg_tree_level_geometry_of(eight);
    uint8_t *base = sg_alloc_aligned((size_t)e->n_trees * g.size);
    if (!base) return sg_errf(err, SG_ENOMEM, "out of memory for %d trees", e->n_trees);
    memset(base, 0, (size_t)e->n_trees * g.size);
    for (int t = 0; t < e->n_trees; t++) {
        uint8_t *lv = base + (size_t)t * g.size;
        place(e->nodes + e->tree_start[t], 0, 0, 0, e->tree_depth[t], (float *)(lv + g.threshold),
              (uint32_t *)(lv + g.feature), (float *)(lv + g.leaf));
    }
    if (eight)
        e->levels8 = (sg_tree_levels8 *)base;
    else
        e->levels = (sg_tree_levels *)base;
    return SG_OK;
}

size_t sg_tree_ensemble_bytes(const sg_tree_ensemble *e)
{
    return (size_t)e->n_nodes * sizeof(sg_tree_node) +
           (size_t)e->n_trees * (sizeof(int64_t) + sizeof(int32_t) + 1) +
           (e->levels ? (size_t)e->n_trees * sizeof(sg_tree_levels) : 0) +
           (e->levels8 ? (size_t)e->n_trees * sizeof(sg_tree_levels8) : 0);
}

sg_status sg_tree_ensemble_clone(const sg_tree_ensemble *src, sg_tree_ensemble **out, sg_err *err)
{
    *out = NULL;
    sg_tree_ensemble *e = malloc(sizeof *e);
    if (!e) return sg_errf(err, SG_ENOMEM, "out of memory cloning a tree ensemble");
    *e = *src;
    size_t nt = (size_t)src->n_trees;
    e->nodes = sg_alloc_aligned((size_t)src->n_nodes * sizeof *e->nodes);
    e->tree_start = malloc(nt * sizeof *e->tree_start);
    e->tree_group = malloc(nt * sizeof *e->tree_group);
    e->tree_depth = malloc(nt);
    e->levels = src->levels ? sg_alloc_aligned(nt * sizeof *e->levels) : NULL;
    e->levels8 = src->levels8 ? sg_alloc_aligned(nt * sizeof *e->levels8) : NULL;
    e->base = malloc((size_t)src->n_groups * sizeof *e->base);
    if (!e->nodes || !e->tree_start || !e->tree_group || !e->tree_depth ||
        (src->levels && !e->levels) || (src->levels8 && !e->levels8) || !e->base) {
        sg_tree_ensemble_free(e);
        return sg_errf(err, SG_ENOMEM, "out of memory cloning a tree ensemble");
    }
    /* The copy is the first touch, so the pages land on the calling thread's NUMA node. */
    memcpy(e->nodes, src->nodes, (size_t)src->n_nodes * sizeof *e->nodes);
    memcpy(e->tree_start, src->tree_start, nt * sizeof *e->tree_start);
    memcpy(e->tree_group, src->tree_group, nt * sizeof *e->tree_group);
    memcpy(e->tree_depth, src->tree_depth, nt);
    if (src->levels) memcpy(e->levels, src->levels, nt * sizeof *e->levels);
    if (src->levels8) memcpy(e->levels8, src->levels8, nt * sizeof *e->levels8);
    memcpy(e->base, src->base, (size_t)src->n_groups * sizeof *e->base);
    *out = e;
    return SG_OK;
}
