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

/* The end of a decimal number at s ('-'? digits, an optional fraction and exponent, as
   XGBoost writes "5E-1"), or NULL: strtod alone also takes " 0.3", "+0.3", "0x1p-2" and
   "inf", which XGBoost does not read as those numbers (it kept 0.5 for them). */
static const char *decimal_end(const char *s)
{
    const char *p = s + (*s == '-');
    const char *d0 = p;
    while (*p >= '0' && *p <= '9') p++;
    bool digits = p > d0;
    if (*p == '.') {
        const char *f0 = ++p;
        while (*p >= '0' && *p <= '9') p++;
        digits |= p > f0;
    }
    if (!digits) return NULL;
    if (*p == 'e' || *p == 'E') {
        const char *e = p + 1 + (p[1] == '+' || p[1] == '-');
        const char *e0 = e;
        while (*e >= '0' && *e <= '9') e++;
        if (e == e0) return NULL;
        p = e;
    }
    return p;
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
    const char *e = decimal_end(s);
    if (!e || *e) return false;
    *out = strtod(s, NULL);
    return true;
}

/* An integer of a parameter block, which XGBoost writes, and reads back, as a string of
   decimal digits ("8"): a JSON number, a sign, a space, a fraction or a leading zero is
   refused, as XGBoost refuses some of them and would read others differently. */
static sg_status get_int(const ctx *c, const sg_jv *obj, const char *key, const char *path, long lo,
                   long hi, long *out)
{
    const sg_jv *v = sg_jt_get(c->d, obj, key);
    if (!v) return fail(c, "%s/%s is missing", path, key);
    const char *s = sg_jt_is(v, SG_JT_STRING) ? sg_jt_str(c->d, v) : NULL;
    size_t n = s ? strlen(s) : 0;
    bool digits = n > 0 && n <= 12 && (s[0] != '0' || n == 1);
    for (size_t i = 0; digits && i < n; i++)
        digits = s[i] >= '0' && s[i] <= '9';
    if (!digits)
        return fail(c, "%s/%s is not an integer written as a string of digits (as XGBoost writes it)",
                    path, key);
    long d = strtol(s, NULL, 10);
    if (d < lo || d > hi) return fail(c, "%s/%s = %ld is outside %ld..%ld", path, key, d, lo, hi);
    *out = d;
    return SG_OK;
}

/* Element i of a tree's array that XGBoost reads as its Integer: a JSON integer ("5"). A
   string ("5") or a float ("5.0", "5E0") is refused, as XGBoost refuses it ("Invalid cast,
   from String to Integer"); UBJSON's integer types are integers. */
static bool int_at(const ctx *c, const sg_jv *arr, size_t i, double *out)
{
    const sg_jv *v = sg_jt_at(c->d, arr, i);
    if (!sg_jt_is_integer(v)) return false;
    *out = v->u.num;
    return true;
}

/* ... and one it reads as its Number: a float, written with a fraction or an exponent (as
   XGBoost writes every float, "0E0" for zero), or NaN, Infinity, -Infinity, or a UBJSON
   float. An integer ("0") is refused, as XGBoost refuses it ("from Integer to Number").
   XGBoost's Number is a float32 read from the text: the float32 nearest to the decimal, which
   is not always the float32 nearest to the double nearest to it (sg_jt_f32). */
static bool float_at(const ctx *c, const sg_jv *arr, size_t i, float *out)
{
    const sg_jv *v = sg_jt_at(c->d, arr, i);
    if (!sg_jt_is(v, SG_JT_NUMBER) || sg_jt_is_integer(v)) return false;
    *out = sg_jt_f32(v);
    return true;
}

static const sg_jv *get_array_of(const ctx *c, const sg_jv *obj, const char *key, const char *path,
                                  size_t want, const char *why, int *rc)
{
    const sg_jv *a = sg_jt_get(c->d, obj, key);
    if (!sg_jt_is(a, SG_JT_ARRAY)) {
        *rc = fail(c, "%s/%s is missing or not an array", path, key);
        return NULL;
    }
    if (want != (size_t)-1 && sg_jt_size(a) != want) {
        *rc = fail(c, "%s/%s has %zu entries, expected %zu (%s)", path, key, sg_jt_size(a), want,
                   why);
        return NULL;
    }
    return a;
}

static const sg_jv *get_array(const ctx *c, const sg_jv *obj, const char *key, const char *path,
                               size_t want, int *rc)
{
    return get_array_of(c, obj, key, path, want, "num_nodes", rc);
}

/* A categorical split's category set as sorted boundaries: the categories that go right are
 * [b[0], b[1]) u [b[2], b[3]) u ... (runs of consecutive categories, each category c standing
 * for the values [c, c + 1) that truncate to it). */
typedef struct {
    uint32_t node; /* the split's index in the tree's arrays */
    int m;         /* boundaries: twice the runs */
    float *b;      /* into tree_json.bounds */
    int64_t pair;  /* where its two children were laid out, -1 until they are */
    /* filled when the split itself is laid out (cat_resolve) */
    uint32_t feature; /* split feature, without the default-left bit */
    bool dleft;       /* a missing value goes to the left child */
    long child[2];    /* left, right */
    bool leaf[2];     /* whether that child is a leaf */
} cat_split;

typedef struct {
    const sg_jv *left, *right, *feat, *cond, *dleft, *stype;
    size_t n;
    long num_feature;
    float weight; /* dart: every leaf is scaled by it */
    char path[96];
    /* categorical splits (split_type 1), by node: cat_of[i] indexes cats, -1 otherwise */
    int32_t *cat_of;
    cat_split *cats;
    size_t n_cats;
    float *bounds;
} tree_json;

static sg_status child_of(const ctx *c, const tree_json *t, const sg_jv *arr, const char *key, size_t i,
                    long *out)
{
    double d;
    if (!int_at(c, arr, i, &d))
        return fail(c, "%s/%s/%zu is not an integer (a JSON integer, not a string or a float)",
                    t->path, key, i);
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
    /* XGBoost allocates a split's children as a pair, and its predictor takes left + 1 for the
       right branch without reading right_children: a file whose right child is elsewhere had
       been evaluated here as written and served by XGBoost as another tree. */
    if (!rc && *l >= 0 && *r != *l + 1)
        return fail(c,
                    "%s: node %zu's right child %ld is not its left child + 1 (%ld): XGBoost takes "
                    "left + 1 without reading right_children, so the two would evaluate different "
                    "trees",
                    t->path, i, *r, *l + 1);
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

/* Node i's split_indices entry (a JSON integer) and default_left (0, 1, true or false: XGBoost
 * writes 0 and 1 and also reads true and false; not "1", 1.0 or 2). A leaf's are read by no
 * prediction, but XGBoost refuses the same wrong types there ("Invalid cast"), so they are
 * checked on every node. */
static sg_status split_fields(const ctx *c, const tree_json *t, size_t i, double *feature,
                              bool *left)
{
    double v;
    if (!int_at(c, t->feat, i, feature))
        return fail(c,
                    "%s/split_indices/%zu is not an integer (a JSON integer, not a string or "
                    "a float)",
                    t->path, i);
    const sg_jv *dl = sg_jt_at(c->d, t->dleft, i);
    if (sg_jt_is_bool(dl))
        *left = sg_jt_is(dl, SG_JT_TRUE);
    else if (int_at(c, t->dleft, i, &v) && (v == 0 || v == 1))
        *left = v == 1;
    else
        return fail(c, "%s/default_left/%zu is not 0, 1, true or false", t->path, i);
    return SG_OK;
}

/* Feature and default direction of split i; its threshold too unless it is categorical (whose
 * split_condition XGBoost writes as NaN). */
static sg_status check_split(const ctx *c, const tree_json *t, size_t i, float *thr, uint32_t *feature)
{
    double v = 0;
    bool left = false;
    const bool categorical = t->cat_of && t->cat_of[i] >= 0;
    sg_status rc = split_fields(c, t, i, &v, &left);
    if (rc) return rc;
    if (v < 0 || v >= (double)t->num_feature)
        return fail(c, "%s/split_indices/%zu: feature %.0f is outside 0..%ld (num_feature)",
                    t->path, i, v, t->num_feature - 1);
    *feature = (uint32_t)v;
    float cond;
    if (!float_at(c, t->cond, i, &cond))
        return fail(c, "%s/split_conditions/%zu is not a float (XGBoost writes 5E-1, not 0.5 in "
                    "a string or the integer 0)", t->path, i);
    *thr = categorical ? NAN : cond;
    if (!categorical && !isfinite(*thr))
        return fail(c, "%s/split_conditions/%zu: threshold %g is not a finite float32", t->path, i,
                    (double)cond);
    if (left) *feature |= SG_TREE_DEFAULT_LEFT;
    return SG_OK;
}

/* ---- categorical splits ----
 *
 * XGBoost sends a row right at a categorical split when its value, truncated to an integer,
 * is in the split's category set; left when it is not, and when it is negative or not below
 * 2^24 (not a category); a missing value (NaN) follows default_left (XGBoost's Decision and
 * InvalidCat). The set is a union of runs [a, b] of categories, so "goes right" is
 * a <= x < b + 1 for one of the runs: numerical comparisons, exact in float32 below 2^24.
 * Each categorical split is therefore laid out as a small search tree of ordinary numerical
 * splits over the runs' boundaries, and every kernel and layout runs such a model unchanged.
 *
 * The boundaries b[0] < ... < b[m-1] (m = 2 runs) cut the line into regions 0..m: region r is
 * [b[r-1], b[r]), open at the ends. Odd regions are in the set (right child), even ones not
 * (left child). Regions pair up as (0, 1), (2, 3), ...: a pair is one split, x < b[lo], whose
 * children are the categorical split's own two children laid out side by side. The last
 * region, m, is alone; reaching it leads to the left child through a copy of it when it is a
 * leaf, or else through a forward node that always goes left (threshold +inf, NaN left, as
 * the padding of the level layouts). A subtree can so be reached from two places: the layout
 * is a DAG, which the kernels walk as they walk a tree. Missing values are sent, at each
 * split of the search tree, to a side that holds a region of their default direction.
 */
#define CAT_LIMIT 16777216.0 /* 2^24: categories are below it, and exact in float32 */

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static sg_status parse_categories(const ctx *c, const sg_jv *tree, tree_json *t)
{
    size_t count = 0;
    for (size_t i = 0; i < t->n; i++) {
        double v;
        if (!int_at(c, t->stype, i, &v) || (v != 0 && v != 1))
            return fail(c, "%s/split_type/%zu is not 0 (numerical) or 1 (categorical)", t->path, i);
        count += v == 1;
    }
    if (count == 0) return SG_OK;
    int rc = SG_OK;
    const sg_jv *cats, *nodes, *segs, *sizes;
    const char *why = "one per categorical split in split_type";
    if (!(cats = get_array(c, tree, "categories", t->path, (size_t)-1, &rc)) ||
        !(nodes = get_array_of(c, tree, "categories_nodes", t->path, count, why, &rc)) ||
        !(segs = get_array_of(c, tree, "categories_segments", t->path, count, why, &rc)) ||
        !(sizes = get_array_of(c, tree, "categories_sizes", t->path, count, why, &rc)))
        return rc;
    const size_t C = sg_jt_size(cats);
    t->cat_of = malloc(t->n * sizeof *t->cat_of);
    t->cats = calloc(count, sizeof *t->cats);
    t->bounds = malloc((2 * C + 1) * sizeof *t->bounds);
    double *tmp = malloc((C + 1) * sizeof *tmp);
    if (!t->cat_of || !t->cats || !t->bounds || !tmp) {
        free(tmp);
        return sg_errf(c->err, SG_ENOMEM, "%s: out of memory", c->name);
    }
    for (size_t i = 0; i < t->n; i++)
        t->cat_of[i] = -1;
    t->n_cats = count;
    size_t used = 0, nb = 0;
    double prev_node = -1;
    for (size_t j = 0; j < count && !rc; j++) {
        double node, seg, size;
        if (!int_at(c, nodes, j, &node) ||
            node <= prev_node || node >= (double)t->n) {
            rc = fail(c, "%s/categories_nodes/%zu is not a node index above the previous one",
                      t->path, j);
            break;
        }
        prev_node = node;
        double st;
        if (!int_at(c, t->stype, (size_t)node, &st) || st != 1) {
            rc = fail(c, "%s/categories_nodes/%zu: node %.0f is not a categorical split "
                      "(split_type 0)", t->path, j, node);
            break;
        }
        /* XGBoost writes each node's categories right after the previous node's. */
        if (!int_at(c, segs, j, &seg) || seg != (double)used) {
            rc = fail(c, "%s/categories_segments/%zu is not %zu (where node %.0f's categories "
                      "start)", t->path, j, used, node);
            break;
        }
        if (!int_at(c, sizes, j, &size) || size < 0 ||
            size > (double)(C - used)) {
            rc = fail(c, "%s/categories_sizes/%zu is not a count of categories within the %zu "
                      "left", t->path, j, C - used);
            break;
        }
        const size_t k = (size_t)size;
        for (size_t q = 0; q < k; q++) {
            double v;
            if (!int_at(c, cats, used + q, &v) || v < 0 ||
                v >= CAT_LIMIT) {
                rc = fail(c, "%s/categories/%zu is not a category (an integer in 0..16777215)",
                          t->path, used + q);
                break;
            }
            tmp[q] = v;
        }
        if (rc) break;
        qsort(tmp, k, sizeof *tmp, cmp_double);
        cat_split *cs = &t->cats[j];
        *cs = (cat_split){.node = (uint32_t)node, .b = t->bounds + nb, .pair = -1};
        for (size_t q = 0; q < k; q++) {
            if (q > 0 && tmp[q] == tmp[q - 1]) continue;
            if (q > 0 && tmp[q] == tmp[q - 1] + 1) { /* extends the run */
                cs->b[cs->m - 1] = (float)(tmp[q] + 1);
                continue;
            }
            cs->b[cs->m++] = (float)tmp[q];
            cs->b[cs->m++] = (float)(tmp[q] + 1);
        }
        nb += (size_t)cs->m;
        used += k;
        t->cat_of[(size_t)node] = (int32_t)j;
    }
    if (!rc && used != C)
        rc = fail(c, "%s/categories has %zu entries but the nodes' sizes add up to %zu", t->path,
                  C, used);
    free(tmp);
    return rc;
}

/* ---- layout ---- */

/* What a slot of the laid-out tree holds: an XGBoost node, a range of a categorical split's
 * regions (a split of its search tree), a copy of a leaf, or a forward node. */
enum { SLOT_NODE, SLOT_RANGE, SLOT_LEAF, SLOT_FORWARD };
typedef struct {
    uint8_t kind;
    uint32_t orig;  /* NODE, LEAF: index in the tree's arrays; RANGE: index in t->cats */
    int32_t lo, hi; /* RANGE: regions lo..hi */
} slot;

/* One tree laid out; reused from tree to tree. */
typedef struct {
    slot *s;
    sg_tree_node *nodes;
    size_t n, cap;
    uint16_t *steps; /* walk lengths, for trees with categorical splits */
} lay;

static void lay_free(lay *L)
{
    free(L->s);
    free(L->nodes);
    free(L->steps);
}

static sg_status lay_push(const ctx *c, const tree_json *t, lay *L, slot it, int64_t *pos)
{
    if (L->n == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 256;
        if (cap > SG_TREE_MAX_NODES_PER_TREE) cap = SG_TREE_MAX_NODES_PER_TREE;
        if (L->n == cap)
            return fail(c, "%s laid out has more than %d nodes", t->path,
                        SG_TREE_MAX_NODES_PER_TREE);
        slot *ns = realloc(L->s, cap * sizeof *ns);
        if (ns) L->s = ns;
        sg_tree_node *nn = ns ? realloc(L->nodes, cap * sizeof *nn) : NULL;
        if (!nn) return sg_errf(c->err, SG_ENOMEM, "%s: out of memory laying out %s", c->name, t->path);
        L->nodes = nn;
        L->cap = cap;
    }
    L->s[L->n] = it;
    *pos = (int64_t)L->n++;
    return SG_OK;
}

static sg_status leaf_node(const ctx *c, const tree_json *t, size_t i, size_t q, sg_tree_node *n)
{
    float v;
    if (!float_at(c, t->cond, i, &v))
        return fail(c, "%s/split_conditions/%zu (leaf value) is not a float (XGBoost writes "
                    "5E-1, not 0.5 in a string or the integer 0)", t->path, i);
    double ignored = 0;
    bool left = false;
    sg_status rc = split_fields(c, t, i, &ignored, &left);
    if (rc) return rc;
    float leaf = v * t->weight;
    if (!isfinite(leaf))
        return fail(c, "%s/split_conditions/%zu: leaf value %g is not a finite float32", t->path, i,
                    (double)v);
    *n = (sg_tree_node){INFINITY, SG_TREE_DEFAULT_LEFT, (uint32_t)q, leaf};
    return SG_OK;
}

/* The categorical split's two children, laid out side by side once. */
static sg_status cat_pair(const ctx *c, const tree_json *t, lay *L, cat_split *cs, int64_t *pos)
{
    if (cs->pair < 0) {
        int64_t pr;
        int rc = lay_push(c, t, L, (slot){SLOT_NODE, (uint32_t)cs->child[0], 0, 0}, &cs->pair);
        if (!rc) rc = lay_push(c, t, L, (slot){SLOT_NODE, (uint32_t)cs->child[1], 0, 0}, &pr);
        if (rc) return rc;
    }
    *pos = cs->pair;
    return SG_OK;
}

/* Reads the split's feature, direction and children once, when its own slot is laid out. A
 * child that is not a leaf is reached through forward nodes: the pair is laid out now, so
 * that no push comes between the two slots of a search-tree split's children later. */
static sg_status cat_resolve(const ctx *c, const tree_json *t, lay *L, cat_split *cs)
{
    float thr;
    uint32_t feature = 0;
    long g0, g1;
    int rc = check_split(c, t, cs->node, &thr, &feature);
    if (!rc) rc = children(c, t, cs->node, &cs->child[0], &cs->child[1]);
    for (int k = 0; k < 2 && !rc; k++) {
        rc = children(c, t, (size_t)cs->child[k], &g0, &g1);
        cs->leaf[k] = g0 < 0;
    }
    if (rc) return rc;
    cs->feature = feature & SG_TREE_FEATURE_MASK;
    cs->dleft = (feature & SG_TREE_DEFAULT_LEFT) != 0;
    int64_t pair;
    return cs->leaf[0] && cs->leaf[1] ? SG_OK : cat_pair(c, t, L, cs, &pair);
}

/* What leads to the categorical split's child (right or left) from slot q: a copy of it when
 * it is a leaf, else a forward node to where it is laid out. */
static sg_status cat_target_node(const ctx *c, const tree_json *t, const cat_split *cs, bool right,
                                 size_t q, sg_tree_node *nd)
{
    if (cs->leaf[right]) return leaf_node(c, t, (size_t)cs->child[right], q, nd);
    SG_ASSERT(cs->pair >= 0);
    *nd = (sg_tree_node){INFINITY, SG_TREE_DEFAULT_LEFT, (uint32_t)(cs->pair + (right ? 1 : 0)), 0};
    return SG_OK;
}

/* A new slot leading to that child. */
static sg_status cat_target(const ctx *c, const tree_json *t, lay *L, const cat_split *cs,
                            bool right, int64_t *pos)
{
    /* a leaf copy is filled in its turn, a forward node now */
    const uint8_t kind = cs->leaf[right] ? SLOT_LEAF : SLOT_FORWARD;
    int rc = lay_push(c, t, L, (slot){kind, (uint32_t)cs->child[right], 0, 0}, pos);
    if (rc || kind == SLOT_LEAF) return rc;
    return cat_target_node(c, t, cs, right, (size_t)*pos, &L->nodes[*pos]);
}

/* Slot q: the split of regions lo..hi (lo even) of categorical split j. */
static sg_status cat_range(const ctx *c, tree_json *t, lay *L, int32_t j, int lo, int hi, size_t q,
                           sg_tree_node *nd)
{
    cat_split *cs = &t->cats[j];
    const uint32_t f = cs->feature;
    int64_t a = 0, b = 0;
    int rc;
    if (cs->m == 0) { /* no category goes right: only a missing value may */
        if (cs->dleft) return cat_target_node(c, t, cs, false, q, nd); /* all go left */
        /* x < -inf is false for every x: non-missing values go right (to the left child),
           missing ones left (to the right child) */
        if ((rc = cat_target(c, t, L, cs, true, &a)) || (rc = cat_target(c, t, L, cs, false, &b)))
            return rc;
        SG_ASSERT(b == a + 1);
        *nd = (sg_tree_node){-INFINITY, f | SG_TREE_DEFAULT_LEFT, (uint32_t)a, 0};
        return SG_OK;
    }
    if (hi == lo + 1) { /* a pair: x < b[lo] is region lo, not in the set */
        if ((rc = cat_pair(c, t, L, cs, &a))) return rc;
        *nd = (sg_tree_node){cs->b[lo], f | (cs->dleft ? SG_TREE_DEFAULT_LEFT : 0), (uint32_t)a, 0};
        return SG_OK;
    }
    /* Split between units (pairs, and the lone last region), about half on each side. Both
       sides hold regions of either class but a lone region, so missing values go left. */
    const int units = (hi - lo) / 2 + 1 - (hi - lo) % 2;
    int s = lo + 2 * ((units + 1) / 2);
    if (s > hi) s = lo + 2 * (units / 2);
    SG_ASSERT(s > lo + 1 && s <= hi);
    if ((rc = lay_push(c, t, L, (slot){SLOT_RANGE, (uint32_t)j, lo, s - 1}, &a))) return rc;
    if (s == hi)
        rc = cat_target(c, t, L, cs, false, &b); /* the last region, not in the set */
    else
        rc = lay_push(c, t, L, (slot){SLOT_RANGE, (uint32_t)j, s, hi}, &b);
    if (rc) return rc;
    SG_ASSERT(b == a + 1);
    *nd = (sg_tree_node){cs->b[s - 1], f | SG_TREE_DEFAULT_LEFT, (uint32_t)a, 0};
    return SG_OK;
}

/* Breadth-first layout: children of a node are adjacent, right = left + 1. */
static sg_status layout(const ctx *c, tree_json *t, lay *L)
{
    L->n = 0;
    int64_t pos;
    int rc = lay_push(c, t, L, (slot){SLOT_NODE, 0, 0, 0}, &pos);
    for (size_t q = 0; !rc && q < L->n; q++) {
        const slot it = L->s[q];
        sg_tree_node nd;
        if (it.kind == SLOT_FORWARD) continue; /* written when pushed */
        if (it.kind == SLOT_LEAF) {
            rc = leaf_node(c, t, it.orig, q, &nd);
        } else if (it.kind == SLOT_RANGE) {
            rc = cat_range(c, t, L, (int32_t)it.orig, it.lo, it.hi, q, &nd);
        } else {
            long l = -1, r = -1;
            rc = children(c, t, it.orig, &l, &r);
            if (rc) break;
            if (l < 0) {
                rc = leaf_node(c, t, it.orig, q, &nd);
            } else if (t->cat_of && t->cat_of[it.orig] >= 0) {
                cat_split *cs = &t->cats[t->cat_of[it.orig]];
                rc = cat_resolve(c, t, L, cs);
                if (!rc) rc = cat_range(c, t, L, t->cat_of[it.orig], 0, cs->m, q, &nd);
            } else {
                int64_t a = 0, b = 0;
                rc = check_split(c, t, it.orig, &nd.threshold, &nd.feature);
                if (!rc) rc = lay_push(c, t, L, (slot){SLOT_NODE, (uint32_t)l, 0, 0}, &a);
                if (!rc) rc = lay_push(c, t, L, (slot){SLOT_NODE, (uint32_t)r, 0, 0}, &b);
                nd.left = (uint32_t)a;
                nd.leaf = 0;
            }
        }
        if (!rc) L->nodes[q] = nd;
    }
    return rc;
}

/* Steps a walk from the root takes at most to reach a leaf, in a layout that may be a DAG
 * (forward nodes always go left). Depth first with an explicit stack; each slot once. */
static sg_status walk_length(const ctx *c, const tree_json *t, lay *L, int *out)
{
    const uint16_t unknown = 0xFFFF;
    uint16_t *steps = realloc(L->steps, L->cap * sizeof *steps);
    uint32_t *stack = malloc(L->n * sizeof *stack);
    if (steps) L->steps = steps;
    if (!steps || !stack) {
        free(stack);
        return sg_errf(c->err, SG_ENOMEM, "%s: out of memory", c->name);
    }
    for (size_t i = 0; i < L->n; i++)
        steps[i] = unknown;
    size_t sp = 0;
    stack[sp++] = 0;
    int rc = SG_OK;
    while (sp > 0 && !rc) {
        const uint32_t i = stack[sp - 1];
        const sg_tree_node *nd = &L->nodes[i];
        if (nd->left == i) {
            steps[i] = 0;
            sp--;
            continue;
        }
        const bool always_left = nd->threshold == INFINITY && (nd->feature & SG_TREE_DEFAULT_LEFT);
        const uint32_t k0 = nd->left, k1 = always_left ? nd->left : nd->left + 1;
        if (steps[k0] == unknown || steps[k1] == unknown) {
            /* each slot is pushed at most once per unknown child; n slots bound the stack */
            if (sp == L->n) {
                rc = fail(c, "%s: the layout has a cycle", t->path);
                break;
            }
            stack[sp++] = steps[k0] == unknown ? k0 : k1;
            continue;
        }
        int s = 1 + (steps[k0] > steps[k1] ? steps[k0] : steps[k1]);
        if (s > SG_TREE_MAX_STEPS)
            rc = fail(c, "%s: with its categorical splits laid out a walk takes %d steps, more "
                      "than %d", t->path, s, SG_TREE_MAX_STEPS);
        steps[i] = (uint16_t)s;
        sp--;
    }
    free(stack);
    *out = rc ? 0 : steps[0];
    return rc;
}

/* What XGBoost reads of a tree and prediction does not use: the tree's id, its place in the
 * list (XGBoost stores the tree at that place, and crashed on an id out of place), and the
 * training statistics, one per node, each of the type XGBoost reads it as (it refuses a
 * missing or short array, or an element of another type). */
static sg_status check_unused(const ctx *c, const sg_jv *tree, const tree_json *t, int index)
{
    const sg_jv *id = sg_jt_get(c->d, tree, "id");
    if (!sg_jt_is_integer(id) || id->u.num != index)
        return fail(c, "%s/id is missing or not the integer %d, the tree's place in the list",
                    t->path, index);
    static const struct {
        const char *key;
        bool integer;
    } stats[] = {{"base_weights", false}, {"loss_changes", false}, {"sum_hessian", false},
                 {"parents", true}};
    for (size_t k = 0; k < sizeof stats / sizeof stats[0]; k++) {
        int rc = SG_OK;
        const sg_jv *a = get_array(c, tree, stats[k].key, t->path, t->n, &rc);
        if (!a) return rc;
        for (size_t i = 0; i < t->n; i++) {
            double v;
            float f;
            if (!(stats[k].integer ? int_at(c, a, i, &v) : float_at(c, a, i, &f)))
                return fail(c, "%s/%s/%zu is not %s", t->path, stats[k].key, i,
                            stats[k].integer ? "an integer" : "a float");
        }
    }
    return SG_OK;
}

static sg_status parse_tree(const ctx *c, const sg_jv *tree, int index, long num_feature, float weight,
                      sg_tree_ensemble *e, int64_t *cap, lay *L)
{
    tree_json t = {.num_feature = num_feature, .weight = weight};
    snprintf(t.path, sizeof t.path, "%s/%d", c->prefix, index);
    if (!sg_jt_is(tree, SG_JT_OBJECT)) return fail(c, "%s is not an object", t.path);
    int rc = SG_OK;
    t.left = get_array(c, tree, "left_children", t.path, (size_t)-1, &rc);
    if (!t.left) return rc;
    t.n = sg_jt_size(t.left);
    if (t.n == 0) return fail(c, "%s/left_children is empty", t.path);
    if (t.n > SG_TREE_MAX_NODES_PER_TREE)
        return fail(c, "%s has %zu nodes, more than %d", t.path, t.n, SG_TREE_MAX_NODES_PER_TREE);
    const sg_jv *tp = sg_jt_get(c->d, tree, "tree_param");
    if (!sg_jt_is(tp, SG_JT_OBJECT)) return fail(c, "%s/tree_param is missing", t.path);
    long want;
    char tpath[sizeof t.path + 16];
    snprintf(tpath, sizeof tpath, "%s/tree_param", t.path);
    if ((rc = get_int(c, tp, "num_nodes", tpath, 1, SG_TREE_MAX_NODES_PER_TREE, &want)))
        return rc;
    if ((size_t)want != t.n)
        return fail(c, "%s/num_nodes is %ld but the tree has %zu nodes", tpath, want, t.n);
    if ((rc = check_unused(c, tree, &t, index))) return rc;
    if (!(t.right = get_array(c, tree, "right_children", t.path, t.n, &rc))) return rc;
    if (!(t.feat = get_array(c, tree, "split_indices", t.path, t.n, &rc))) return rc;
    if (!(t.cond = get_array(c, tree, "split_conditions", t.path, t.n, &rc))) return rc;
    if (!(t.dleft = get_array(c, tree, "default_left", t.path, t.n, &rc))) return rc;
    if (sg_jt_get(c->d, tree, "split_type") &&
        !(t.stype = get_array(c, tree, "split_type", t.path, t.n, &rc)))
        return rc;

    uint8_t *state = calloc(t.n, 1);
    int depth = 0;
    size_t reachable = 0;
    if (!state) rc = sg_errf(c->err, SG_ENOMEM, "%s: out of memory", c->name);
    if (!rc) rc = check_structure(c, &t, state, &depth, &reachable);
    if (!rc && t.stype) rc = parse_categories(c, tree, &t);
    if (!rc) rc = layout(c, &t, L);
    if (!rc && t.n_cats) rc = walk_length(c, &t, L, &depth);
    const int64_t n = (int64_t)L->n;
    if (!rc && e->n_nodes + n > SG_TREE_MAX_NODES)
        rc = fail(c, "%s: the trees have more than %d nodes in all", t.path, SG_TREE_MAX_NODES);
    if (!rc && e->n_nodes + n > *cap) {
        int64_t ncap = *cap * 2 > e->n_nodes + n ? *cap * 2 : e->n_nodes + n;
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
    if (!rc) {
        memcpy(e->nodes + e->n_nodes, L->nodes, (size_t)n * sizeof *L->nodes);
        e->tree_start[index] = e->n_nodes;
        e->tree_depth[index] = (uint8_t)depth;
        e->n_nodes += n;
        if (depth > e->max_depth) e->max_depth = depth;
    }
    free(state);
    free(t.cat_of);
    free(t.cats);
    free(t.bounds);
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
    {"binary:hinge", SG_TREE_OUT_HINGE, false, BASE_AS_IS},
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
/* Significant digits of a decimal's mantissa, from its first non-zero digit ("5E-1": 1,
   "0.30000000000000004": 17). */
static int significant_digits(const char *s)
{
    int n = 0;
    bool started = false;
    for (; *s && *s != 'e' && *s != 'E' && *s != ']' && *s != ','; s++) {
        if (*s < '0' || *s > '9') continue;
        started |= *s != '0';
        n += started;
    }
    return n;
}

static sg_status base_score_of(const ctx *c, const sg_jv *v, long groups, double *out)
{
    const char *pp = "/learner/learner_model_param/base_score";
    const char *s = sg_jt_str(c->d, v);
    /* XGBoost 1.7 reads a base_score string of 10 or more significant digits as 0.5, without
       a word ("0.30000000000000004", Python's str of a float): here it had been the value
       written, so every row differed. A float32 needs at most 9; more are refused. */
    for (const char *e = s; e && *e;) {
        while (*e == '[' || *e == ' ' || *e == ',')
            e++;
        if (!*e) break;
        if (significant_digits(e) > 9)
            return fail(c,
                        "%s \"%.64s\" has more than 9 significant digits, which XGBoost 1.7 reads "
                        "as 0.5: write it with at most 9 (a float32 needs no more)",
                        pp, s);
        e += strcspn(e, ",");
    }
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
        const char *e = decimal_end(q);
        double x = e ? strtod(q, &end) : 0;
        if (!e || end != e) return fail(c, "%s \"%.64s\": entry %ld is not a number", pp, s, n);
        if (n == 0) first = x;
        if (x != first && !(isnan(x) && isnan(first)))
            return fail(c, "%s \"%.64s\": one intercept per output (XGBoost 3.1: per class, or "
                           "per target) is not supported; only equal entries are", pp, s);
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
            "binary:logitraw, binary:hinge, reg:logistic, reg:squarederror, reg:squaredlogerror, "
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
    if (!rc && sg_jt_get(c->d, p, "num_target"))
        rc = get_int(c, p, "num_target", pp, 1, 1L << 20, &nt);
    if (rc) return rc;
    if (nt > 1)
        return fail(c,
                    "%s/num_target is %ld: a model of several targets (multi-output regression "
                    "or multi-label) is not supported; one target only",
                    pp, nt);
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
    if (!isfinite(base))
        return fail(c, "%s/base_score %g gives the starting margin %g under %s's link (computed "
                       "in float, as XGBoost does), which is not finite",
                    pp, bs, (double)base, (*obj)->name);
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
    } else if (strcmp(n, "gblinear") == 0) {
        *model = sg_jt_get(c->d, gb, "model");
        c->prefix = "/learner/gradient_booster/model/weights";
    } else {
        return fail(c,
                    "/learner/gradient_booster/name: booster \"%.64s\" is not supported "
                    "(gbtree, dart, gblinear)",
                    n);
    }
    snprintf(e->booster, sizeof e->booster, "%s", n);
    if (!sg_jt_is(*model, SG_JT_OBJECT))
        return fail(c, "%.*s is missing", (int)strlen(c->prefix) - 6, c->prefix);
    return SG_OK;
}

/*
 * The trees that predict. A model trained with early stopping keeps every tree it grew and
 * records the best round in learner/attributes/best_iteration. XGBoost's scikit-learn
 * estimators (XGBClassifier, XGBRegressor, ...; also what MLflow's xgboost flavour serves for
 * them) predict with the rounds up to it, Booster.predict with every tree. A file the
 * scikit-learn API saved (attributes/scikit_learn) is evaluated as that estimator predicts
 * after load_model, any other as Booster.predict does. gblinear has no rounds to cut.
 */
static sg_status trees_used(const ctx *c, const sg_jv *learner, size_t nt, size_t layer,
                            size_t *used, int *best)
{
    *used = nt;
    *best = -1;
    const sg_jv *attrs = sg_jt_get(c->d, learner, "attributes");
    if (!sg_jt_get(c->d, attrs, "scikit_learn") || !sg_jt_get(c->d, attrs, "best_iteration"))
        return SG_OK;
    long bi;
    const size_t rounds = nt / layer;
    int rc = get_int(c, attrs, "best_iteration", "/learner/attributes", 0, SG_TREE_MAX_TREES, &bi);
    if (rc) return rc;
    if ((size_t)bi >= rounds)
        return fail(c, "/learner/attributes/best_iteration %ld is not below the model's %zu "
                       "rounds", bi, rounds);
    *used = ((size_t)bi + 1) * layer;
    *best = (int)bi;
    return SG_OK;
}

/*
 * The value an XGBoost scikit-learn estimator treats as missing. Its file keeps the
 * estimator's parameters in learner/attributes/scikit_learn, a JSON text (Python's, with NaN
 * for float('nan')); XGBClassifier/XGBRegressor.load_model takes `missing` back from it and
 * predict then reads a feature equal to it, in float32, as missing, as it reads NaN
 * (XGBoost's IsValidFunctor: !isnan(v) && v != missing). NaN, null or no such key: NaN only,
 * as Booster.predict. A text that does not parse, or a `missing` that is not a number, is
 * refused: load_model would fail on it, or read it some other way.
 */
static sg_status sk_missing(const ctx *c, const sg_jv *learner, sg_tree_ensemble *e)
{
    const sg_jv *attrs = sg_jt_get(c->d, learner, "attributes");
    const sg_jv *sk = sg_jt_get(c->d, attrs, "scikit_learn");
    if (!sk) return SG_OK;
    const char *text = sg_jt_str(c->d, sk);
    if (!text) return fail(c, "/learner/attributes/scikit_learn is not a string (a JSON text)");
    sg_jdoc doc;
    char name[160];
    snprintf(name, sizeof name, "%s: /learner/attributes/scikit_learn", c->name);
    sg_status rc = sg_jt_parse(name, text, sk->n, &doc, c->err);
    if (rc) return rc;
    const sg_jv *root = sg_jt_root(&doc);
    const sg_jv *m = sg_jt_is(root, SG_JT_OBJECT) ? sg_jt_get(&doc, root, "missing") : NULL;
    if (!sg_jt_is(root, SG_JT_OBJECT))
        rc = fail(c, "/learner/attributes/scikit_learn is not a JSON object");
    else if (m && !sg_jt_is(m, SG_JT_NULL) && !sg_jt_is(m, SG_JT_NUMBER))
        rc = fail(c, "/learner/attributes/scikit_learn: missing is not a number");
    else if (sg_jt_is(m, SG_JT_NUMBER) && !isnan(sg_jt_f32(m))) {
        e->has_missing_value = true;
        e->missing_value = sg_jt_f32(m); /* the float32 nearest its text, as XGBoost reads it */
    }
    sg_jt_free(&doc);
    return rc;
}

static sg_status parse_trees(ctx *c, const sg_jv *learner, const sg_jv *model, const sg_jv *weights,
                             long num_feature, sg_tree_ensemble *e)
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
    /* XGBoost sizes its tree list from num_trees (a mismatch made it crash while predicting),
       and predicts with whole layers of num_parallel_tree trees per output group, dropping
       the trees of a last, partial layer: such a file is refused, not read two ways. */
    const sg_jv *gp = sg_jt_get(c->d, model, "gbtree_model_param");
    char gpath[128];
    snprintf(gpath, sizeof gpath, "%.*s/gbtree_model_param", (int)strlen(c->prefix) - 6,
             c->prefix);
    if (!sg_jt_is(gp, SG_JT_OBJECT)) return fail(c, "%s is missing", gpath);
    long want, parallel = 1;
    int grc = get_int(c, gp, "num_trees", gpath, 0, SG_TREE_MAX_TREES, &want);
    if (!grc && sg_jt_get(c->d, gp, "num_parallel_tree"))
        grc = get_int(c, gp, "num_parallel_tree", gpath, 1, SG_TREE_MAX_TREES, &parallel);
    if (grc) return grc;
    if ((size_t)want != nt)
        return fail(c, "%s/num_trees is %ld but %s holds %zu trees", gpath, want, c->prefix, nt);
    if (nt % ((size_t)parallel * (size_t)e->n_groups) != 0)
        return fail(c, "%s: %zu trees are not whole layers of num_parallel_tree %ld x %d output "
                       "group(s) (XGBoost would drop the last %zu)", gpath, nt, parallel,
                    e->n_groups, nt % ((size_t)parallel * (size_t)e->n_groups));
    size_t used;
    if ((grc = trees_used(c, learner, nt, (size_t)parallel * (size_t)e->n_groups, &used,
                          &e->best_iteration)))
        return grc;
    e->trees_in_file = (int)nt;
    e->n_trees = (int)nt;
    e->tree_start = calloc(nt, sizeof *e->tree_start);
    e->tree_group = calloc(nt, sizeof *e->tree_group);
    e->tree_depth = calloc(nt, sizeof *e->tree_depth);
    if (!e->tree_start || !e->tree_group || !e->tree_depth)
        return sg_errf(c->err, SG_ENOMEM, "%s: out of memory for %zu trees", c->name, nt);
    int64_t cap = 0;
    lay L = {0};
    int rc = SG_OK;
    for (size_t i = 0; i < nt && !rc; i++) {
        double g;
        float w = 1;
        if (!int_at(c, info, i, &g) || g < 0 || g >= e->n_groups) {
            rc = fail(c, "%.*s/tree_info/%zu: group is not an integer in 0..%d",
                      (int)strlen(c->prefix) - 6, c->prefix, i, e->n_groups - 1);
            break;
        }
        e->tree_group[i] = (int32_t)g;
        if (weights && (!float_at(c, weights, i, &w) || !isfinite(w))) {
            rc = fail(c, "/learner/gradient_booster/weight_drop/%zu is not a finite number", i);
            break;
        }
        rc = parse_tree(c, sg_jt_at(c->d, trees, i), (int)i, num_feature, w, e, &cap, &L);
    }
    lay_free(&L);
    /* Every tree is checked; the ones past the best iteration do not predict. */
    if (!rc && used < nt) {
        e->n_trees = (int)used;
        e->n_nodes = e->tree_start[used];
        e->max_depth = 0;
        for (size_t i = 0; i < used; i++)
            if (e->tree_depth[i] > e->max_depth) e->max_depth = e->tree_depth[i];
    }
    return rc;
}

/* gblinear: one weight per feature and group, then one bias per group, all finite floats. */
static sg_status parse_linear(const ctx *c, const sg_jv *model, sg_tree_ensemble *e)
{
    const sg_jv *w = sg_jt_get(c->d, model, "weights");
    if (!sg_jt_is(w, SG_JT_ARRAY)) return fail(c, "%s is missing or not an array", c->prefix);
    const size_t G = (size_t)e->n_groups, want = ((size_t)e->n_features + 1) * G;
    if (sg_jt_size(w) != want)
        return fail(c, "%s has %zu values; num_feature %d and %zu output group(s) need %zu",
                    c->prefix, sg_jt_size(w), e->n_features, G, want);
    e->linear = malloc(want * sizeof *e->linear);
    if (!e->linear) return sg_errf(c->err, SG_ENOMEM, "%s: out of memory", c->name);
    for (size_t i = 0; i < want; i++) {
        float d;
        if (!float_at(c, w, i, &d) || !isfinite(d))
            return fail(c, "%s/%zu is not a finite number", c->prefix, i);
        e->linear[i] = d;
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
    if (e) e->best_iteration = -1;
    const sg_jv *learner = sg_jt_get(&doc, root, "learner");
    if (!rc && !sg_jt_is(learner, SG_JT_OBJECT))
        rc = fail(&c, "/learner is missing (not an XGBoost model)");
    const objective_info *obj = NULL;
    long num_class = 0;
    const sg_jv *model = NULL, *weights = NULL;
    if (!rc) rc = parse_learner(&c, learner, e, &obj, &num_class);
    if (!rc) rc = sk_missing(&c, learner, e);
    if (!rc)
        rc = parse_booster(&c, sg_jt_get(&doc, learner, "gradient_booster"), e, &model, &weights);
    if (!rc && !strcmp(e->booster, "gblinear"))
        rc = parse_linear(&c, model, e);
    else if (!rc)
        rc = parse_trees(&c, learner, model, weights, e->n_features, e);
    if (!rc && e->n_trees) rc = sg_tree_ensemble_build_levels(e, err);
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
    free(e->linear);
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
    if (nd->left != i && nd->threshold == INFINITY && (nd->feature & SG_TREE_DEFAULT_LEFT)) {
        /* a forward node (a categorical split laid out): always left */
        threshold[at] = INFINITY;
        feature[at] = SG_TREE_DEFAULT_LEFT;
        place(tree, nd->left, level + 1, 2 * pos, depth, threshold, feature, leaf);
        place(tree, nd->left, level + 1, 2 * pos + 1, depth, threshold, feature, leaf);
        return;
    }
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
    const size_t copies = (size_t)e->n_trees * g.size;
    if (copies > SG_TREE_LEVELS_MAX_BYTES &&
        copies / SG_TREE_LEVELS_MAX_RATIO > (size_t)e->n_nodes * sizeof(sg_tree_node))
        return SG_OK; /* tiny trees by the hundred thousand: the node layout only */
    uint8_t *base = sg_alloc_aligned(copies);
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
    return (e->linear ? ((size_t)e->n_features + 1) * (size_t)e->n_groups * sizeof(float) : 0) +
           (size_t)e->n_nodes * sizeof(sg_tree_node) +
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
    size_t nt = (size_t)src->n_trees, nl = 0;
    if (src->linear) nl = ((size_t)src->n_features + 1) * (size_t)src->n_groups;
    e->nodes = NULL;
    e->levels = NULL;
    e->levels8 = NULL;
    e->tree_start = NULL;
    e->tree_group = NULL;
    e->tree_depth = NULL;
    e->linear = NULL;
    bool ok = true;
    if (nt) { /* a gblinear model has no trees */
        e->nodes = sg_alloc_aligned((size_t)src->n_nodes * sizeof *e->nodes);
        e->tree_start = malloc(nt * sizeof *e->tree_start);
        e->tree_group = malloc(nt * sizeof *e->tree_group);
        e->tree_depth = malloc(nt);
        e->levels = src->levels ? sg_alloc_aligned(nt * sizeof *e->levels) : NULL;
        e->levels8 = src->levels8 ? sg_alloc_aligned(nt * sizeof *e->levels8) : NULL;
        ok = e->nodes && e->tree_start && e->tree_group && e->tree_depth &&
             (!src->levels || e->levels) && (!src->levels8 || e->levels8);
    }
    if (nl) ok = ok && (e->linear = malloc(nl * sizeof *e->linear)) != NULL;
    e->base = malloc((size_t)src->n_groups * sizeof *e->base);
    if (!ok || !e->base) {
        sg_tree_ensemble_free(e);
        return sg_errf(err, SG_ENOMEM, "out of memory cloning a tree ensemble");
    }
    /* The copy is the first touch, so the pages land on the calling thread's NUMA node. */
    if (nt) {
        memcpy(e->nodes, src->nodes, (size_t)src->n_nodes * sizeof *e->nodes);
        memcpy(e->tree_start, src->tree_start, nt * sizeof *e->tree_start);
        memcpy(e->tree_group, src->tree_group, nt * sizeof *e->tree_group);
        memcpy(e->tree_depth, src->tree_depth, nt);
        if (src->levels) memcpy(e->levels, src->levels, nt * sizeof *e->levels);
        if (src->levels8) memcpy(e->levels8, src->levels8, nt * sizeof *e->levels8);
    }
    if (nl) memcpy(e->linear, src->linear, nl * sizeof *e->linear);
    memcpy(e->base, src->base, (size_t)src->n_groups * sizeof *e->base);
    *out = e;
    return SG_OK;
}
