/*
 * ONNX-ML (domain ai.onnx.ml, opsets 1..3): the operators that scikit-learn pipelines and
 * gradient-boosted trees are exported with (skl2onnx, onnxmltools).
 *
 * A tree ensemble becomes one step that runs stagegate's own tree kernels
 * (sg_tree_ensemble, the layout XGBoost and scikit-learn models load into). Every other
 * operator is written as the default-domain nodes that compute it (Scaler as Sub and Mul,
 * Normalizer as a reduction and Div, Imputer as IsNaN or Equal and Where, ...), compiled
 * by the same code as any graph's nodes: a node is built in memory, named as the ML node,
 * its constants named after it.
 *
 * Where ONNX leaves a case open, the answer is ONNX Runtime's, the runtime these models are
 * served with; where its answer is a quirk the spec does not back (a two-class classifier
 * with one score and all weights positive skips the logistic), the model is refused with a
 * line that says so.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

#define AT(t) ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__##t

static const char *const ml_ops[] = {
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "LinearClassifier",
    "LinearRegressor",
    "Scaler",
    "Normalizer",
    "Imputer",
    "Binarizer",
    "ArrayFeatureExtractor",
    "ZipMap",
};

bool ox_ml_op_supported(const char *op)
{
    for (size_t i = 0; i < sizeof ml_ops / sizeof ml_ops[0]; i++)
        if (!strcmp(op, ml_ops[i])) return true;
    return false;
}

const char *ox_ml_supported_ops(void)
{
    return "TreeEnsembleClassifier, TreeEnsembleRegressor, LinearClassifier, LinearRegressor, "
           "Scaler, Normalizer, Imputer, Binarizer, ArrayFeatureExtractor, ZipMap";
}

bool ox_ml_is_label(const ox_ctx *c, const char *name)
{
    for (int i = 0; i < c->n_ml_labels; i++)
        if (!strcmp(c->ml_labels[i], name)) return true;
    return false;
}

/* ---- building blocks ---- */

/* "NODE/what": a name for a part of the ML node, owned by the context; refused if the graph
   has a value of that name already. */
static const char *part_name(ox_ctx *c, const char *what, sg_err *err)
{
    if (c->n_owned == c->cap_owned) {
        int cap = c->cap_owned ? 2 * c->cap_owned : 16;
        char **o = realloc(c->owned, (size_t)cap * sizeof *o);
        if (!o) {
            sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
            return NULL;
        }
        c->owned = o;
        c->cap_owned = cap;
    }
    /* NODE/what#INDEX: ONNX requires node names to be neither given nor unique, so the
       node's index keeps two nodes' parts apart; a counter, a value the graph named so */
    const char *node = c->node->name && c->node->name[0] ? c->node->name : c->node->op_type;
    size_t len = strlen(node) + strlen(what) + 48;
    char *s = malloc(len);
    if (!s) {
        sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        return NULL;
    }
    c->owned[c->n_owned++] = s;
    snprintf(s, len, "%s/%s#%d", node, what, c->node_index);
    for (int k = 1; ox_value_find(c, s) >= 0; k++)
        snprintf(s, len, "%s/%s#%d.%d", node, what, c->node_index, k);
    return s;
}

/* A float (f) or int64 (i) constant of the given shape, named part_name(what). */
static sg_status part_const(ox_ctx *c, const char *what, int rank, const int64_t *dims,
                            const float *f, const int64_t *i, const char **name, sg_err *err)
{
    if (!(*name = part_name(c, what, err))) return SG_EINPUT;
    int v = ox_value_add(c, *name, err);
    if (v < 0) return SG_EINPUT;
    ox_value *x = &c->vals[v];
    int64_t n = 1;
    for (int k = 0; k < rank; k++) {
        x->dims[k] = dims[k];
        n *= dims[k];
    }
    x->defined = x->is_const = true;
    x->rank = rank;
    x->count = n;
    x->dtype = f ? OX_FLOAT : OX_INT64;
    if (f) {
        if (!(x->f = sg_alloc_aligned((size_t)(n ? n : 1) * sizeof(float))))
            return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        memcpy(x->f, f, (size_t)n * sizeof(float));
    } else {
        if (!(x->i = malloc((size_t)(n ? n : 1) * sizeof(int64_t))))
            return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        if (i) memcpy(x->i, i, (size_t)n * sizeof(int64_t));
    }
    return SG_OK;
}

typedef struct {
    const char *name;
    int type; /* AT(INT), AT(INTS), AT(FLOAT) */
    int64_t i;
    const int64_t *ints;
    size_t n_ints;
} part_attr;

/* Compiles a default-domain node OP (named as the ML node) reading ins, writing out. */
static sg_status part_node(ox_ctx *c, const char *op, const char *const *ins, size_t n_in,
                           const char *out, const part_attr *at, size_t n_at, sg_err *err)
{
    Onnx__AttributeProto a[2], *ap[2];
    for (size_t k = 0; k < n_at && k < 2; k++) {
        onnx__attribute_proto__init(&a[k]);
        a[k].name = (char *)at[k].name;
        a[k].has_type = true;
        a[k].type = (Onnx__AttributeProto__AttributeType)at[k].type;
        if (at[k].type == AT(INT)) {
            a[k].has_i = true;
            a[k].i = at[k].i;
        } else {
            a[k].n_ints = at[k].n_ints;
            a[k].ints = (int64_t *)at[k].ints;
        }
        ap[k] = &a[k];
    }
    Onnx__NodeProto nd;
    onnx__node_proto__init(&nd);
    const Onnx__NodeProto *self = c->node;
    nd.name = self->name;
    nd.op_type = (char *)op;
    nd.domain = (char *)"";
    nd.n_input = n_in;
    nd.input = (char **)ins;
    nd.n_output = 1;
    nd.output = (char **)&out;
    nd.n_attribute = n_at;
    nd.attribute = ap;
    c->node = &nd;
    sg_status rc = ox_compile_node(c, err);
    c->node = self;
    return rc;
}

/* Input 0 as float rows [batch, F]: the value index, F in *width. */
static sg_status rows_in(ox_ctx *c, int *x, int64_t *width, sg_err *err)
{
    int rc = ox_need_in(c, 0, err, x);
    if (rc) return rc;
    const ox_value *v = &c->vals[*x];
    if (v->is_const || v->rank != 1 || v->is_int || v->is_bool || ox_placed(v))
        return ox_node_err(c, err, SG_EINPUT,
                           "input 0 ('%.100s') must be float rows of [batch, features]", v->name);
    *width = v->count;
    return SG_OK;
}

/* A FLOATS attribute of 1 or n values (dflt when absent and dflt is finite), widened to n;
   every value must be finite. */
static sg_status floats_n(ox_ctx *c, const char *name, int64_t n, float dflt, float *out,
                          sg_err *err)
{
    const Onnx__AttributeProto *a = ox_attr(c, name);
    if (!a || !a->n_floats) {
        if (!isfinite(dflt)) return ox_node_err(c, err, SG_EINPUT, "'%s' is missing", name);
        for (int64_t j = 0; j < n; j++)
            out[j] = dflt;
        return SG_OK;
    }
    if ((int64_t)a->n_floats != 1 && (int64_t)a->n_floats != n)
        return ox_node_err(c, err, SG_EINPUT,
                           "'%s' has %zu values; 1 or %lld (one per feature) are needed", name,
                           a->n_floats, (long long)n);
    for (int64_t j = 0; j < n; j++) {
        out[j] = a->floats[a->n_floats == 1 ? 0 : j];
        if (!isfinite(out[j]))
            return ox_node_err(c, err, SG_EINPUT, "%s[%lld] is not finite", name,
                               (long long)(a->n_floats == 1 ? 0 : j));
    }
    return SG_OK;
}

/* post_transform of a classifier or regressor: 0 NONE, 1 LOGISTIC, 2 SOFTMAX; other
   transforms refused. */
static sg_status post_transform(ox_ctx *c, int *out, sg_err *err)
{
    const Onnx__AttributeProto *a = ox_attr(c, "post_transform");
    const char *s = a && a->has_s ? (const char *)a->s.data : "NONE";
    size_t len = a && a->has_s ? a->s.len : 4;
    if (len == 4 && !memcmp(s, "NONE", 4))
        *out = 0;
    else if (len == 8 && !memcmp(s, "LOGISTIC", 8))
        *out = 1;
    else if (len == 7 && !memcmp(s, "SOFTMAX", 7))
        *out = 2;
    else
        return ox_node_err(c, err, SG_EINPUT,
                           "post_transform '%.*s' is not supported (NONE, LOGISTIC, SOFTMAX are)",
                           (int)(len > 40 ? 40 : len), s);
    return SG_OK;
}

/* The class labels: classlabels_int64s (classlabels_ints for LinearClassifier), distinct
   integers in increasing order (scikit-learn's classes_), the same in every node that names
   them; *n their count. The model maps /y and /label through them (sg_model.classes). */
static sg_status class_labels(ox_ctx *c, const char *ints_name, int64_t *n, sg_err *err)
{
    const Onnx__AttributeProto *s = ox_attr(c, "classlabels_strings");
    if (s && s->n_strings)
        return ox_node_err(c, err, SG_EINPUT,
                           "the class labels are strings; stagegate reads integer class labels "
                           "(export the classifier on integer labels)");
    const Onnx__AttributeProto *a = ox_attr(c, ints_name);
    if (!a || !a->n_ints)
        return ox_node_err(c, err, SG_EINPUT, "'%s' is missing: the classes are not named",
                           ints_name);
    if (a->n_ints < 2 || a->n_ints > SG_MAX_CLASSES)
        return ox_node_err(c, err, SG_EINPUT, "%zu classes (2..%d are supported)", a->n_ints,
                           SG_MAX_CLASSES);
    for (size_t j = 0; j < a->n_ints; j++) {
        if (a->ints[j] < INT32_MIN || a->ints[j] > INT32_MAX)
            return ox_node_err(c, err, SG_EINPUT, "%s[%zu] is %lld, outside int32", ints_name, j,
                               (long long)a->ints[j]);
        if (j > 0 && a->ints[j] <= a->ints[j - 1])
            return ox_node_err(c, err, SG_EINPUT,
                               "%s[%zu] is %lld, not above [%zu] = %lld: the classes must be "
                               "distinct and in increasing order, as scikit-learn's classes_ are",
                               ints_name, j, (long long)a->ints[j], j - 1,
                               (long long)a->ints[j - 1]);
    }
    if (c->ml_classes && (c->n_ml_classes != a->n_ints ||
                          memcmp(c->ml_classes, a->ints, a->n_ints * sizeof *a->ints) != 0))
        return ox_node_err(c, err, SG_EINPUT, "its %s differ from those of node '%.100s'",
                           ints_name, c->ml_classes_node);
    if (!c->ml_classes) {
        c->ml_classes = a->ints;
        c->n_ml_classes = a->n_ints;
        c->ml_classes_node = c->node->name && c->node->name[0] ? c->node->name : c->node->op_type;
    }
    *n = (int64_t)a->n_ints;
    return SG_OK;
}

/* A classifier's output 0, the label: computed by nothing, so read by no node; a graph output
   naming it is left out of the model's outputs. */
static sg_status label_output(ox_ctx *c, sg_err *err)
{
    const char *name = c->node->n_output > 0 ? c->node->output[0] : NULL;
    if (!name || !name[0]) return SG_OK;
    const Onnx__GraphProto *g = c->mp->graph;
    for (size_t i = 0; i < g->n_node; i++) {
        if (c->skip && c->skip[i]) continue; /* a head of another output, not run */
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if (g->node[i]->input[k] && !strcmp(g->node[i]->input[k], name)) {
                char who[160];
                if (g->node[i]->name && g->node[i]->name[0])
                    snprintf(who, sizeof who, "node '%.100s'", g->node[i]->name);
                else
                    snprintf(who, sizeof who, "node #%zu (%.40s)", i,
                             g->node[i]->op_type ? g->node[i]->op_type : "no op_type");
                return ox_node_err(c, err, SG_EINPUT,
                                   "its label output '%.100s' is read by %s; stagegate takes "
                                   "the class probabilities (output 1) and computes no labels",
                                   name, who);
            }
    }
    if (c->n_ml_labels == c->cap_ml_labels) {
        int cap = c->cap_ml_labels ? 2 * c->cap_ml_labels : 4;
        const char **l = realloc(c->ml_labels, (size_t)cap * sizeof *l);
        if (!l) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        c->ml_labels = l;
        c->cap_ml_labels = cap;
    }
    c->ml_labels[c->n_ml_labels++] = name;
    return SG_OK;
}

/* A classifier's scores: output 1 (the probabilities). *out_name its name. */
static sg_status scores_name(ox_ctx *c, const char **out_name, sg_err *err)
{
    if (c->node->n_output < 2 || !c->node->output[1] || !c->node->output[1][0])
        return ox_node_err(c, err, SG_EINPUT,
                           "output 1 (the class probabilities) is not named; stagegate reads it");
    *out_name = c->node->output[1];
    return SG_OK;
}

/* Value name holds what kind says (probabilities or a value), made by this node. */
static void mark_named(ox_ctx *c, const char *name, int kind)
{
    int v = ox_value_find(c, name);
    if (v >= 0) c->vals[v].ml_kind = (int8_t)kind;
    c->ml_source = c->node->name && c->node->name[0] ? c->node->name : c->node->op_type;
}

/* ---- the simple operators ---- */

static sg_status op_scaler(ox_ctx *c, sg_err *err)
{
    int x;
    int64_t F = 0;
    sg_status rc = rows_in(c, &x, &F, err);
    if (rc) return rc;
    float *off = malloc((size_t)F * sizeof *off), *scl = malloc((size_t)F * sizeof *scl);
    const char *xo = c->vals[x].name, *ko, *ks, *t;
    if (!off || !scl) {
        rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        goto out;
    }
    if ((rc = floats_n(c, "offset", F, 0.0f, off, err)) ||
        (rc = floats_n(c, "scale", F, 1.0f, scl, err)))
        goto out;
    if ((rc = part_const(c, "offset", 1, &F, off, NULL, &ko, err)) ||
        (rc = part_const(c, "scale", 1, &F, scl, NULL, &ks, err)))
        goto out;
    if (!(t = part_name(c, "centred", err))) {
        rc = SG_EINPUT;
        goto out;
    }
    {
        const char *a[2] = {xo, ko}, *b[2] = {t, ks};
        if ((rc = part_node(c, "Sub", a, 2, t, NULL, 0, err))) goto out;
        rc = part_node(c, "Mul", b, 2, c->node->output[0], NULL, 0, err);
    }
out:
    free(off);
    free(scl);
    return rc;
}

static sg_status op_normalizer(ox_ctx *c, sg_err *err)
{
    int x;
    int64_t F = 0;
    sg_status rc = rows_in(c, &x, &F, err);
    if (rc) return rc;
    const Onnx__AttributeProto *a = ox_attr(c, "norm");
    const char *s = a && a->has_s ? (const char *)a->s.data : "MAX";
    size_t len = a && a->has_s ? a->s.len : 3;
    const int kind = len == 3 && !memcmp(s, "MAX", 3)  ? SG_OXR_MAX
                     : len == 2 && !memcmp(s, "L1", 2) ? SG_OXR_L1
                     : len == 2 && !memcmp(s, "L2", 2) ? SG_OXR_L2
                                                       : -1;
    if (kind < 0)
        return ox_node_err(c, err, SG_EINPUT, "norm '%.*s' is not MAX, L1 or L2",
                           (int)(len > 40 ? 40 : len), s);
    const bool proba = c->vals[x].ml_kind == OX_ML_PROBA && kind == SG_OXR_L1;
    sg_onnx_step *st = ox_step_new(c, SG_OX_NORMALIZE, err);
    if (!st) return SG_ENOMEM;
    st->in = c->vals[x].data;
    st->in_width = st->width = (int)F;
    st->reduce = (sg_onnx_reduce)kind;
    int v;
    if ((rc = ox_dyn_out(c, 1, &F, err, &v))) return rc;
    /* L1 of probabilities (a one-vs-rest classifier's sigmoids made to sum to 1) */
    if (proba) mark_named(c, c->node->output[0], OX_ML_PROBA);
    return SG_OK;
}

static sg_status op_imputer(ox_ctx *c, sg_err *err)
{
    int x;
    int64_t F = 0;
    sg_status rc = rows_in(c, &x, &F, err);
    if (rc) return rc;
    const Onnx__AttributeProto *ii = ox_attr(c, "imputed_value_int64s");
    if (ii && ii->n_ints)
        return ox_node_err(c, err, SG_EINPUT,
                           "imputed_value_int64s: integer inputs are not supported");
    float *imp = malloc((size_t)F * sizeof *imp);
    if (!imp) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    const char *xo = c->vals[x].name, *ki = NULL, *kr = NULL, *cond = NULL;
    if ((rc = floats_n(c, "imputed_value_floats", F, NAN, imp, err)) ||
        (rc = part_const(c, "imputed", 1, &F, imp, NULL, &ki, err))) {
        free(imp);
        return rc;
    }
    free(imp);
    /* ONNX Runtime: a NaN replaced value replaces NaN, another replaces values equal to it */
    const float rep = ox_attr_f(c, "replaced_value_float", 0.0f);
    if (!(cond = part_name(c, "missing", err))) return SG_EINPUT;
    if (isnan(rep)) {
        c->routes_nan = true;
        const char *i1[1] = {xo};
        rc = part_node(c, "IsNaN", i1, 1, cond, NULL, 0, err);
    } else {
        const int64_t one = 1;
        if ((rc = part_const(c, "replaced", 1, &one, &rep, NULL, &kr, err))) return rc;
        const char *i2[2] = {xo, kr};
        /* Equal of floats, which ONNX defines from opset 11: the Imputer's own comparison
           at any opset */
        const int opset = c->opset;
        if (c->opset < 11) c->opset = 11;
        rc = part_node(c, "Equal", i2, 2, cond, NULL, 0, err);
        c->opset = opset;
    }
    if (rc) return rc;
    const char *i3[3] = {cond, ki, xo};
    return part_node(c, "Where", i3, 3, c->node->output[0], NULL, 0, err);
}

static sg_status op_binarizer(ox_ctx *c, sg_err *err)
{
    int x;
    int64_t F = 0;
    sg_status rc = rows_in(c, &x, &F, err);
    if (rc) return rc;
    const float thr = ox_attr_f(c, "threshold", 0.0f);
    if (!isfinite(thr)) return ox_node_err(c, err, SG_EINPUT, "threshold is not finite");
    const int64_t one = 1;
    const char *k, *cond, *xo = c->vals[x].name;
    if ((rc = part_const(c, "threshold", 1, &one, &thr, NULL, &k, err))) return rc;
    if (!(cond = part_name(c, "above", err))) return SG_EINPUT;
    const char *i2[2] = {xo, k}, *i1[1] = {cond};
    const part_attr to = {"to", AT(INT), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, NULL, 0};
    if ((rc = part_node(c, "Greater", i2, 2, cond, NULL, 0, err))) return rc;
    return part_node(c, "Cast", i1, 1, c->node->output[0], &to, 1, err);
}

static sg_status op_array_feature_extractor(ox_ctx *c, sg_err *err)
{
    int x, y;
    int64_t F = 0;
    sg_status rc = rows_in(c, &x, &F, err);
    if (rc || (rc = ox_need_in(c, 1, err, &y))) return rc;
    const ox_value *vy = &c->vals[y];
    if (!vy->is_const || vy->dtype != OX_INT64 || vy->count < 1)
        return ox_node_err(c, err, SG_EINPUT,
                           "the indices (input 1, '%.100s') must be int64 constants", vy->name);
    for (int64_t j = 0; j < vy->count; j++)
        if (vy->i[j] < 0 || vy->i[j] >= F)
            return ox_node_err(c, err, SG_EINPUT,
                               "index %lld (element %lld of '%.100s') is outside 0..%lld",
                               (long long)vy->i[j], (long long)j, vy->name, (long long)(F - 1));
    const int64_t n = vy->count;
    const char *k, *xo = c->vals[x].name;
    int64_t *ix = malloc((size_t)n * sizeof *ix);
    if (!ix) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    memcpy(ix, c->vals[y].i, (size_t)n * sizeof *ix);
    rc = part_const(c, "indices", 1, &n, NULL, ix, &k, err);
    free(ix);
    if (rc) return rc;
    const char *i2[2] = {xo, k};
    const part_attr ax = {"axis", AT(INT), 1, NULL, 0};
    return part_node(c, "Gather", i2, 2, c->node->output[0], &ax, 1, err);
}

/* ZipMap: the graph sees a sequence of maps from class to probability; the rows stay the
   probability tensor it was made from. */
static sg_status op_zipmap(ox_ctx *c, sg_err *err)
{
    int x, v;
    int64_t K;
    sg_status rc = rows_in(c, &x, &K, err);
    if (rc) return rc;
    int64_t n = 0;
    if ((rc = class_labels(c, "classlabels_int64s", &n, err))) return rc;
    if (n != K)
        return ox_node_err(c, err, SG_EINPUT, "%lld class labels for %lld probabilities",
                           (long long)n, (long long)K);
    const int8_t kind = c->vals[x].ml_kind;
    if ((rc = ox_alias_out(c, x, 1, &K, err))) return rc;
    v = c->n_vals - 1;
    c->vals[v].ml_kind = kind;
    c->vals[v].ml_zipmap = true;
    return SG_OK;
}

/* ---- linear models ---- */

static sg_status op_linear(ox_ctx *c, bool classifier, sg_err *err)
{
    int x;
    int64_t F = 0;
    sg_status rc = rows_in(c, &x, &F, err);
    if (rc) return rc;
    const Onnx__AttributeProto *co = ox_attr(c, "coefficients"), *in = ox_attr(c, "intercepts");
    if (!co || !co->n_floats || co->n_floats % (size_t)F)
        return ox_node_err(c, err, SG_EINPUT,
                           "coefficients hold %zu values, not a whole number of rows of %lld "
                           "features",
                           co ? co->n_floats : 0, (long long)F);
    const int64_t K = (int64_t)co->n_floats / F;
    if (in && in->n_floats && (int64_t)in->n_floats != K)
        return ox_node_err(c, err, SG_EINPUT, "%zu intercepts for %lld rows of coefficients",
                           in->n_floats, (long long)K);
    for (size_t j = 0; j < co->n_floats; j++)
        if (!isfinite(co->floats[j]))
            return ox_node_err(c, err, SG_EINPUT, "coefficients[%zu] is not finite", j);
    for (size_t j = 0; in && j < in->n_floats; j++)
        if (!isfinite(in->floats[j]))
            return ox_node_err(c, err, SG_EINPUT, "intercepts[%zu] is not finite", j);
    int post;
    if ((rc = post_transform(c, &post, err))) return rc;
    const char *out = c->node->output[0];
    int64_t labels = 0;
    if (classifier) {
        if ((rc = class_labels(c, "classlabels_ints", &labels, err)) ||
            (rc = label_output(c, err)) || (rc = scores_name(c, &out, err)))
            return rc;
        if (K != labels && !(K == 1 && labels == 2))
            return ox_node_err(c, err, SG_EINPUT, "%lld rows of coefficients for %lld classes",
                               (long long)K, (long long)labels);
        if (K == 1 && post != 0)
            return ox_node_err(c, err, SG_EINPUT,
                               "one row of coefficients for two classes with post_transform "
                               "%s: ONNX Runtime writes [1 - s, s] of the raw score and skips "
                               "the transform, so the output is ambiguous (export both classes' "
                               "rows)",
                               post == 1 ? "LOGISTIC" : "SOFTMAX");
    } else {
        if (K != 1)
            return ox_node_err(c, err, SG_EINPUT, "%lld targets; one is supported", (long long)K);
        if (post != 0)
            return ox_node_err(c, err, SG_EINPUT, "post_transform of a regressor is not supported");
    }
    const int64_t wd[2] = {K, F};
    float *b = calloc((size_t)K, sizeof *b);
    if (!b) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t j = 0; in && j < (int64_t)in->n_floats; j++)
        b[j] = in->floats[j];
    const char *kw, *kb, *xo = c->vals[x].name;
    rc = part_const(c, "coefficients", 2, wd, co->floats, NULL, &kw, err);
    if (!rc) rc = part_const(c, "intercepts", 1, &K, b, NULL, &kb, err);
    free(b);
    if (rc) return rc;
    const part_attr tb = {"transB", AT(INT), 1, NULL, 0};
    const char *g3[3] = {xo, kw, kb};
    const bool more = classifier && (post != 0 || K == 1);
    const char *score = more ? part_name(c, "score", err) : out;
    if (!score) return SG_EINPUT;
    if ((rc = part_node(c, "Gemm", g3, 3, score, &tb, 1, err))) return rc;
    if (classifier && K == 1) { /* [1 - s, s], as ONNX Runtime writes it */
        static const float w2[2] = {-1.0f, 1.0f}, b2[2] = {1.0f, 0.0f};
        const int64_t d12[2] = {1, 2}, two = 2;
        const char *kw2, *kb2;
        if ((rc = part_const(c, "two_classes", 2, d12, w2, NULL, &kw2, err)) ||
            (rc = part_const(c, "two_classes_bias", 1, &two, b2, NULL, &kb2, err)))
            return rc;
        const char *g[3] = {score, kw2, kb2};
        if ((rc = part_node(c, "Gemm", g, 3, out, NULL, 0, err))) return rc;
    } else if (classifier && post == 1) {
        const char *i1[1] = {score};
        if ((rc = part_node(c, "Sigmoid", i1, 1, out, NULL, 0, err))) return rc;
    } else if (classifier && post == 2) {
        const char *i1[1] = {score};
        const part_attr ax = {"axis", AT(INT), 1, NULL, 0};
        if ((rc = part_node(c, "Softmax", i1, 1, out, &ax, 1, err))) return rc;
    }
    mark_named(c, out, classifier ? OX_ML_PROBA : OX_ML_VALUE);
    return SG_OK;
}

/* ---- tree ensembles ---- */

/* Doubles of a TensorProto attribute (…_as_tensor): double_data or raw little-endian. */
static sg_status tensor_doubles(ox_ctx *c, const char *name, double **out, size_t *n, sg_err *err)
{
    *out = NULL;
    *n = 0;
    const Onnx__AttributeProto *a = ox_attr(c, name);
    if (!a || !a->t) return SG_OK;
    const Onnx__TensorProto *t = a->t;
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE &&
        t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "'%s' is not a tensor of doubles or floats", name);
    if (t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL || t->n_external_data)
        return ox_node_err(c, err, SG_EINPUT, "'%s' has external data", name);
    const bool dbl = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    const size_t esz = dbl ? 8 : 4;
    size_t cnt = t->has_raw_data ? t->raw_data.len / esz : dbl ? t->n_double_data : t->n_float_data;
    if (t->has_raw_data && t->raw_data.len % esz)
        return ox_node_err(c, err, SG_EINPUT, "'%s' holds %zu bytes, not whole values", name,
                           t->raw_data.len);
    size_t dn = 1;
    for (size_t k = 0; k < t->n_dims; k++)
        if (t->dims[k] < 0 || !sg_mul_size(dn, (size_t)t->dims[k], &dn))
            return ox_node_err(c, err, SG_EINPUT, "'%s' has %s", name,
                               t->dims[k] < 0 ? "a negative dimension"
                                              : "dimensions whose product overflows");
    if (t->n_dims && dn != cnt)
        return ox_node_err(c, err, SG_EINPUT, "'%s' holds %zu values for its shape's %zu", name,
                           cnt, dn);
    double *d = malloc((cnt ? cnt : 1) * sizeof *d);
    if (!d) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (size_t k = 0; k < cnt; k++) {
        if (t->has_raw_data) {
            if (dbl) {
                memcpy(&d[k], t->raw_data.data + 8 * k, 8);
            } else {
                float f;
                memcpy(&f, t->raw_data.data + 4 * k, 4);
                d[k] = f;
            }
        } else {
            d[k] = dbl ? t->double_data[k] : t->float_data[k];
        }
    }
    *out = d;
    *n = cnt;
    return SG_OK;
}

/* A float list attribute, or its _as_tensor form (doubles); both: refused. */
static sg_status values_of(ox_ctx *c, const char *name, double **out, size_t *n, sg_err *err)
{
    char tn[64];
    snprintf(tn, sizeof tn, "%s_as_tensor", name);
    const Onnx__AttributeProto *a = ox_attr(c, name);
    int rc = tensor_doubles(c, tn, out, n, err);
    if (rc) return rc;
    if (*out && a && a->n_floats) {
        free(*out);
        *out = NULL;
        return ox_node_err(c, err, SG_EINPUT, "both '%s' and '%s' are given", name, tn);
    }
    if (*out || !a || !a->n_floats) return SG_OK;
    double *d = malloc(a->n_floats * sizeof *d);
    if (!d) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (size_t k = 0; k < a->n_floats; k++)
        d[k] = a->floats[k];
    *out = d;
    *n = a->n_floats;
    return SG_OK;
}

/* An INTS attribute that must have n values (n < 0: any); *v NULL when absent and optional. */
static sg_status ints_of(ox_ctx *c, const char *name, int64_t n, bool optional, const int64_t **v,
                         size_t *count, sg_err *err)
{
    const Onnx__AttributeProto *a = ox_attr(c, name);
    *v = a && a->n_ints ? a->ints : NULL;
    *count = a ? a->n_ints : 0;
    if (!*v && optional) return SG_OK;
    if (!*v && n != 0) return ox_node_err(c, err, SG_EINPUT, "'%s' is missing", name);
    if (n >= 0 && (int64_t)*count != n)
        return ox_node_err(c, err, SG_EINPUT, "'%s' has %zu values; nodes_treeids has %lld", name,
                           *count, (long long)n);
    return SG_OK;
}

enum { M_LEAF, M_LEQ, M_LT, M_GTE, M_GT };

typedef struct {
    int64_t N; /* nodes in the attributes */
    const int64_t *tree, *id, *feat, *tru, *fal, *miss;
    double *thr;
    const char *thr_name; /* the attribute the thresholds came from */
    uint8_t *mode;
    int64_t *order;           /* attribute indices sorted by (tree id, node id) */
    int64_t n_trees, *tstart; /* tree t's nodes: order[tstart[t] .. tstart[t + 1]) */
    int64_t K;                /* outputs (classes or targets) */
    /* The leaf weights, by (tree, output, node): one entry per leaf and output, weights
       given twice summed in the order given. Memory follows the weights given, never
       nodes x outputs. */
    struct weight {
        int64_t t, k, q, j; /* tree (index), output, node id, position in the attribute */
        float w;
    } * w;
    int64_t n_w;
} raw;

static const raw *sort_ctx;
static int by_tree_node(const void *a, const void *b)
{
    const int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    const raw *r = sort_ctx;
    if (r->tree[i] != r->tree[j]) return r->tree[i] < r->tree[j] ? -1 : 1;
    if (r->id[i] != r->id[j]) return r->id[i] < r->id[j] ? -1 : 1;
    return 0;
}

static void raw_free(raw *r)
{
    free(r->thr);
    free(r->mode);
    free(r->order);
    free(r->tstart);
    free(r->w);
}

static sg_status read_modes(ox_ctx *c, raw *r, sg_err *err)
{
    const Onnx__AttributeProto *a = ox_attr(c, "nodes_modes");
    if (!a || (int64_t)a->n_strings != r->N)
        return ox_node_err(c, err, SG_EINPUT, "nodes_modes has %zu values; nodes_treeids has %lld",
                           a ? a->n_strings : 0, (long long)r->N);
    static const struct {
        const char *s;
        int m;
    } names[] = {{"LEAF", M_LEAF},
                 {"BRANCH_LEQ", M_LEQ},
                 {"BRANCH_LT", M_LT},
                 {"BRANCH_GTE", M_GTE},
                 {"BRANCH_GT", M_GT}};
    for (int64_t i = 0; i < r->N; i++) {
        const ProtobufCBinaryData *s = &a->strings[i];
        int m = -1;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (s->len == strlen(names[k].s) && !memcmp(s->data, names[k].s, s->len))
                m = names[k].m;
        if (m < 0)
            return ox_node_err(c, err, SG_EINPUT,
                               "nodes_modes[%lld] is '%.*s'; LEAF, BRANCH_LEQ, BRANCH_LT, "
                               "BRANCH_GTE and BRANCH_GT are supported",
                               (long long)i, (int)(s->len > 40 ? 40 : s->len),
                               (const char *)s->data);
        r->mode[i] = (uint8_t)m;
    }
    return SG_OK;
}

/* Reads the node tuples, sorts them by tree and node, and checks each tree's node ids are
   0..n-1. */
static sg_status read_nodes(ox_ctx *c, int64_t F, raw *r, sg_err *err)
{
    size_t n;
    int rc = ints_of(c, "nodes_treeids", -1, false, &r->tree, &n, err);
    if (rc) return rc;
    r->N = (int64_t)n;
    if (r->N < 1 || r->N > SG_TREE_MAX_NODES)
        return ox_node_err(c, err, SG_EINPUT, "%lld nodes (1..%d are supported)", (long long)r->N,
                           SG_TREE_MAX_NODES);
    if ((rc = ints_of(c, "nodes_nodeids", r->N, false, &r->id, &n, err)) ||
        (rc = ints_of(c, "nodes_featureids", r->N, false, &r->feat, &n, err)) ||
        (rc = ints_of(c, "nodes_truenodeids", r->N, false, &r->tru, &n, err)) ||
        (rc = ints_of(c, "nodes_falsenodeids", r->N, false, &r->fal, &n, err)) ||
        (rc = ints_of(c, "nodes_missing_value_tracks_true", r->N, true, &r->miss, &n, err)))
        return rc;
    if ((rc = values_of(c, "nodes_values", &r->thr, &n, err))) return rc;
    r->thr_name = ox_attr(c, "nodes_values_as_tensor") ? "nodes_values_as_tensor" : "nodes_values";
    if (!r->thr || (int64_t)n != r->N)
        return ox_node_err(c, err, SG_EINPUT, "%s has %zu values; nodes_treeids has %lld",
                           r->thr_name, r->thr ? n : 0, (long long)r->N);
    r->mode = malloc((size_t)r->N);
    r->order = malloc((size_t)r->N * sizeof *r->order);
    r->tstart = malloc(((size_t)r->N + 1) * sizeof *r->tstart);
    if (!r->mode || !r->order || !r->tstart)
        return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    if ((rc = read_modes(c, r, err))) return rc;
    for (int64_t i = 0; i < r->N; i++) {
        r->order[i] = i;
        if (r->mode[i] == M_LEAF) continue;
        if (r->feat[i] < 0 || r->feat[i] >= F)
            return ox_node_err(c, err, SG_EINPUT,
                               "nodes_featureids[%lld] is %lld; the input has features 0..%lld",
                               (long long)i, (long long)r->feat[i], (long long)(F - 1));
        /* ±inf is a real split (every number one way, NaN as tracked), which scikit-learn's
           HistGradientBoosting makes; the features are finite or NaN */
        if (isnan(r->thr[i]))
            return ox_node_err(c, err, SG_EINPUT, "%s[%lld] is NaN", r->thr_name, (long long)i);
        if (r->miss && r->miss[i] != 0 && r->miss[i] != 1)
            return ox_node_err(c, err, SG_EINPUT,
                               "nodes_missing_value_tracks_true[%lld] is %lld, not 0 or 1",
                               (long long)i, (long long)r->miss[i]);
    }
    sort_ctx = r;
    qsort(r->order, (size_t)r->N, sizeof *r->order, by_tree_node);
    r->n_trees = 0;
    for (int64_t q = 0; q < r->N; q++) {
        const int64_t i = r->order[q];
        const bool first = q == 0 || r->tree[r->order[q - 1]] != r->tree[i];
        if (first) r->tstart[r->n_trees++] = q;
        const int64_t want = q - r->tstart[r->n_trees - 1];
        if (r->id[i] != want)
            return ox_node_err(c, err, SG_EINPUT,
                               "tree %lld: node ids are not 0..n-1 (%s %lld where %lld is next)",
                               (long long)r->tree[i],
                               !first && r->id[i] == r->id[r->order[q - 1]] ? "a second" : "id",
                               (long long)r->id[i], (long long)want);
    }
    r->tstart[r->n_trees] = r->N;
    if (r->n_trees > SG_TREE_MAX_TREES)
        return ox_node_err(c, err, SG_EINPUT, "%lld trees (at most %d)", (long long)r->n_trees,
                           SG_TREE_MAX_TREES);
    return SG_OK;
}

/* Tree t of r by its tree id (binary search), -1 when none. */
static int64_t tree_of(const raw *r, int64_t tid)
{
    int64_t lo = 0, hi = r->n_trees - 1;
    while (lo <= hi) {
        const int64_t m = (lo + hi) / 2, v = r->tree[r->order[r->tstart[m]]];
        if (v == tid) return m;
        if (v < tid)
            lo = m + 1;
        else
            hi = m - 1;
    }
    return -1;
}

static int by_tree_output_node(const void *a, const void *b)
{
    const struct weight *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    if (x->k != y->k) return x->k < y->k ? -1 : 1;
    if (x->q != y->q) return x->q < y->q ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

/* The leaf weights (class_* or target_*): into r->w, by tree, output and node. *single:
   every weight names one and the same output (a two-class classifier's one score); *all_pos:
   no weight is negative. */
static sg_status read_weights(ox_ctx *c, const char *pre, raw *r, bool *single, int64_t *only,
                              bool *all_pos, sg_err *err)
{
    char nt[32], nn[32], ni[32], nw[32];
    snprintf(nt, sizeof nt, "%s_treeids", pre);
    snprintf(nn, sizeof nn, "%s_nodeids", pre);
    snprintf(ni, sizeof ni, "%s_ids", pre);
    snprintf(nw, sizeof nw, "%s_weights", pre);
    const int64_t *wt, *wn, *wi;
    size_t n, m;
    double *w = NULL;
    int rc = ints_of(c, nt, -1, false, &wt, &n, err);
    if (rc) return rc;
    const Onnx__AttributeProto *a;
    if ((a = ox_attr(c, nn)) == NULL || a->n_ints != n || (a = ox_attr(c, ni)) == NULL ||
        a->n_ints != n)
        return ox_node_err(c, err, SG_EINPUT, "%s, %s and %s differ in length", nt, nn, ni);
    wn = ox_attr(c, nn)->ints;
    wi = ox_attr(c, ni)->ints;
    if ((rc = values_of(c, nw, &w, &m, err))) return rc;
    if (!w || m != n) {
        free(w);
        return ox_node_err(c, err, SG_EINPUT, "%s has %zu values; %s has %zu", nw, w ? m : 0, nt,
                           n);
    }
    if (!(r->w = malloc((n ? n : 1) * sizeof *r->w))) {
        free(w);
        return sg_errf(err, SG_ENOMEM, "%s: out of memory for %zu weights", c->path, n);
    }
    *single = true;
    *all_pos = true;
    *only = n ? wi[0] : 0;
    for (size_t j = 0; j < n; j++) {
        const int64_t t = tree_of(r, wt[j]);
        if (t < 0 || wn[j] < 0 || wn[j] >= r->tstart[t + 1] - r->tstart[t]) {
            free(w);
            return ox_node_err(c, err, SG_EINPUT,
                               "weight %zu is for tree %lld node %lld, which does not exist", j,
                               (long long)wt[j], (long long)wn[j]);
        }
        const int64_t i = r->order[r->tstart[t] + wn[j]];
        if (r->mode[i] != M_LEAF) {
            free(w);
            return ox_node_err(c, err, SG_EINPUT,
                               "weight %zu is for tree %lld node %lld, which is not a leaf", j,
                               (long long)wt[j], (long long)wn[j]);
        }
        if (wi[j] < 0 || wi[j] >= r->K) {
            free(w);
            return ox_node_err(c, err, SG_EINPUT, "%s[%zu] is %lld, outside 0..%lld", ni, j,
                               (long long)wi[j], (long long)(r->K - 1));
        }
        const float v = (float)w[j];
        if (!isfinite(v)) {
            free(w);
            return ox_node_err(c, err, SG_EINPUT, "%s[%zu] is not a finite float", nw, j);
        }
        if (wi[j] != *only) *single = false;
        if (v < 0) *all_pos = false;
        r->w[j] = (struct weight){t, wi[j], wn[j], (int64_t)j, v};
    }
    free(w);
    qsort(r->w, n, sizeof *r->w, by_tree_output_node);
    int64_t m2 = 0;
    for (size_t j = 0; j < n; j++) {
        if (m2 && r->w[m2 - 1].t == r->w[j].t && r->w[m2 - 1].k == r->w[j].k &&
            r->w[m2 - 1].q == r->w[j].q)
            r->w[m2 - 1].w += r->w[j].w;
        else
            r->w[m2++] = r->w[j];
    }
    r->n_w = m2;
    return SG_OK;
}

/* Lays out tree t of r with leaf values lv (by node id) breadth-first into out, children
   adjacent, from the root (node 0); *count its nodes, *depth its depth. */
static sg_status lay_tree(ox_ctx *c, const raw *r, int64_t t, const float *lv, sg_tree_node *out,
                          int64_t *slot, uint8_t *seen, uint8_t *depth_of, int64_t *count,
                          int *depth, sg_err *err)
{
    const int64_t base = r->tstart[t], n = r->tstart[t + 1] - base, tid = r->tree[r->order[base]];
    memset(seen, 0, (size_t)n);
    int64_t placed = 1;
    slot[0] = 0; /* slot[p]: the node (id) at position p */
    seen[0] = 1;
    depth_of[0] = 0;
    *depth = 0;
    for (int64_t p = 0; p < placed; p++) {
        const int64_t id = slot[p], i = r->order[base + id];
        if (r->mode[i] == M_LEAF) {
            out[p] = (sg_tree_node){INFINITY, SG_TREE_DEFAULT_LEFT, (uint32_t)p, lv[id]};
            continue;
        }
        const int64_t ti = r->tru[i], fi = r->fal[i];
        if (ti < 0 || ti >= n || fi < 0 || fi >= n)
            return ox_node_err(
                c, err, SG_EINPUT,
                "tree %lld node %lld: its %s node id %lld is not in the tree (0..%lld)",
                (long long)tid, (long long)id, ti < 0 || ti >= n ? "true" : "false",
                (long long)(ti < 0 || ti >= n ? ti : fi), (long long)(n - 1));
        if (seen[ti] || seen[fi] || ti == fi)
            return ox_node_err(c, err, SG_EINPUT,
                               "tree %lld node %lld: node %lld is reached twice (a cycle or a "
                               "shared node)",
                               (long long)tid, (long long)id,
                               (long long)(seen[ti] || ti == fi ? ti : fi));
        if (depth_of[p] + 1 > SG_TREE_MAX_DEPTH)
            return ox_node_err(c, err, SG_EINPUT, "tree %lld is deeper than the limit of %d",
                               (long long)tid, SG_TREE_MAX_DEPTH);
        if (placed + 2 > SG_TREE_MAX_NODES_PER_TREE)
            return ox_node_err(c, err, SG_EINPUT, "tree %lld has too many nodes", (long long)tid);
        /* "x < th goes left": LEQ x <= t, GT its complement; LT x < t, GTE its complement */
        const double th = r->thr[i];
        const int m = r->mode[i];
        const float t32 = m == M_LEQ || m == M_GT ? sg_tree_le32(th) : sg_tree_lt32(th);
        const bool left_true = m == M_LEQ || m == M_LT;
        const bool nan_true = r->miss && r->miss[i];
        const int64_t left = left_true ? ti : fi, right = left_true ? fi : ti;
        out[p] = (sg_tree_node){
            t32, (uint32_t)r->feat[i] | (nan_true == left_true ? SG_TREE_DEFAULT_LEFT : 0u),
            (uint32_t)placed, 0.0f};
        slot[placed] = left;
        slot[placed + 1] = right;
        seen[left] = seen[right] = 1;
        depth_of[placed] = depth_of[placed + 1] = (uint8_t)(depth_of[p] + 1);
        if (depth_of[p] + 1 > *depth) *depth = depth_of[p] + 1;
        placed += 2;
    }
    *count = placed;
    return SG_OK;
}

/* The ensemble of r: one tree per (tree, output) that has weights, in tree order, grouped by
   output (groups outputs; with single, every tree to group 0). */
static sg_status build_ensemble(ox_ctx *c, const raw *r, int64_t F, int groups, bool single,
                                sg_tree_ensemble **out, sg_err *err)
{
    *out = NULL;
    /* one tree per run of weights of one (tree, output) */
    int64_t copies = 0, widest = 1;
    size_t cap = 0;
    for (int64_t g = 0; g < r->n_w; g++)
        if (g == 0 || r->w[g].t != r->w[g - 1].t || r->w[g].k != r->w[g - 1].k) {
            copies++;
            cap += (size_t)(r->tstart[r->w[g].t + 1] - r->tstart[r->w[g].t]);
        }
    for (int64_t t = 0; t < r->n_trees; t++)
        if (r->tstart[t + 1] - r->tstart[t] > widest) widest = r->tstart[t + 1] - r->tstart[t];
    if (copies > SG_TREE_MAX_TREES)
        return ox_node_err(c, err, SG_EINPUT, "%lld trees by output (at most %d)",
                           (long long)copies, SG_TREE_MAX_TREES);
    sg_tree_ensemble *e = calloc(1, sizeof *e);
    int64_t *slot = malloc((size_t)widest * sizeof *slot);
    uint8_t *seen = malloc((size_t)widest), *dep = malloc((size_t)widest);
    float *lv = calloc((size_t)widest, sizeof *lv);
    sg_status rc = SG_OK;
    if (!e || !slot || !seen || !dep || !lv) {
        rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        goto done;
    }
    if (cap > SG_TREE_MAX_NODES) {
        rc = ox_node_err(c, err, SG_EINPUT, "%zu tree nodes by output (at most %d)", cap,
                         SG_TREE_MAX_NODES);
        goto done;
    }
    e->n_groups = groups;
    e->n_features = (int)F;
    e->output = SG_TREE_OUT_IDENTITY;
    e->best_iteration = -1;
    snprintf(e->objective, sizeof e->objective, "onnx-ml");
    snprintf(e->booster, sizeof e->booster, "gbtree");
    e->nodes = sg_alloc_aligned((cap ? cap : 1) * sizeof *e->nodes);
    e->tree_start = malloc((size_t)(copies ? copies : 1) * sizeof *e->tree_start);
    e->tree_group = malloc((size_t)(copies ? copies : 1) * sizeof *e->tree_group);
    e->tree_depth = malloc((size_t)(copies ? copies : 1));
    e->base = calloc((size_t)groups, sizeof *e->base);
    if (!e->nodes || !e->tree_start || !e->tree_group || !e->tree_depth || !e->base) {
        rc = sg_errf(err, SG_ENOMEM, "%s: out of memory for %zu tree nodes", c->path, cap);
        goto done;
    }
    int64_t o = 0, q = 0;
    for (int64_t g = 0, h; g < r->n_w && rc == SG_OK; g = h) {
        const int64_t t = r->w[g].t, k = r->w[g].k;
        for (h = g; h < r->n_w && r->w[h].t == t && r->w[h].k == k; h++)
            lv[r->w[h].q] = r->w[h].w;
        int64_t n = 0;
        int d = 0;
        rc = lay_tree(c, r, t, lv, e->nodes + o, slot, seen, dep, &n, &d, err);
        for (int64_t u = g; u < h; u++)
            lv[r->w[u].q] = 0;
        if (rc) break;
        e->tree_start[q] = o;
        e->tree_group[q] = single ? 0 : (int32_t)k;
        e->tree_depth[q] = (uint8_t)d;
        if (d > e->max_depth) e->max_depth = d;
        o += n;
        q++;
    }
    /* a tree no weight reads adds nothing, but must still be a tree */
    {
        sg_tree_node *tmp = rc == SG_OK ? sg_alloc_aligned((size_t)widest * sizeof *tmp) : NULL;
        if (rc == SG_OK && !tmp) rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        for (int64_t t = 0, g = 0; rc == SG_OK && t < r->n_trees; t++) {
            while (g < r->n_w && r->w[g].t < t)
                g++;
            if (g < r->n_w && r->w[g].t == t) continue;
            int64_t n = 0;
            int d = 0;
            rc = lay_tree(c, r, t, lv, tmp, slot, seen, dep, &n, &d, err);
        }
        sg_free_aligned(tmp);
    }
    e->n_trees = (int)q;
    e->trees_in_file = (int)q;
    e->n_nodes = o;
    if (rc == SG_OK) rc = sg_tree_ensemble_build_levels(e, err);
done:
    free(slot);
    free(seen);
    free(dep);
    free(lv);
    if (rc) {
        sg_tree_ensemble_free(e);
        return rc;
    }
    *out = e;
    return SG_OK;
}

static sg_status op_trees(ox_ctx *c, bool classifier, sg_err *err)
{
    int x;
    int64_t F = 0;
    sg_status rc = rows_in(c, &x, &F, err);
    if (rc) return rc;
    raw r = {0};
    double *base = NULL;
    size_t n_base = 0;
    sg_tree_ensemble *e = NULL;
    int post = 0;
    bool single = false, all_pos = true, average = false;
    int64_t only = 0;
    const char *out = c->node->output[0];
    if ((rc = post_transform(c, &post, err))) goto done;
    if (classifier) {
        if ((rc = class_labels(c, "classlabels_int64s", &r.K, err)) ||
            (rc = label_output(c, err)) || (rc = scores_name(c, &out, err)))
            goto done;
    } else {
        r.K = ox_attr_i(c, "n_targets", 1);
        if (r.K != 1) {
            rc = ox_node_err(c, err, SG_EINPUT, "n_targets is %lld; one is supported",
                             (long long)r.K);
            goto done;
        }
        if (post != 0) {
            rc = ox_node_err(c, err, SG_EINPUT, "post_transform of a regressor is not supported");
            goto done;
        }
        const Onnx__AttributeProto *ag = ox_attr(c, "aggregate_function");
        if (ag && ag->has_s) {
            const char *s = (const char *)ag->s.data;
            if (ag->s.len == 7 && !memcmp(s, "AVERAGE", 7))
                average = true;
            else if (!(ag->s.len == 3 && !memcmp(s, "SUM", 3))) {
                rc = ox_node_err(c, err, SG_EINPUT,
                                 "aggregate_function '%.*s' is not supported (SUM and AVERAGE are)",
                                 (int)(ag->s.len > 40 ? 40 : ag->s.len), s);
                goto done;
            }
        }
    }
    if ((rc = read_nodes(c, F, &r, err))) goto done;
    if ((rc = read_weights(c, classifier ? "class" : "target", &r, &single, &only, &all_pos, err)))
        goto done;
    if ((rc = values_of(c, "base_values", &base, &n_base, err))) goto done;
    /* Two classes, one score (every weight for class 0): ONNX Runtime's binary case. With
       every weight for class 1 it computes two columns, class 0's of no trees. */
    const bool binary = classifier && r.K == 2 && single && only == 0;
    if (classifier && r.K == 2 && single && only == 1 && post != 2) {
        rc = ox_node_err(c, err, SG_EINPUT,
                         "every weight is for class 1 of two: ONNX Runtime gives class 0 no "
                         "score and writes %s, which are not probabilities",
                         post == 1 ? "[0.5, sigmoid(s)]" : "[0, s]");
        goto done;
    }
    if (classifier && r.K == 2 && n_base == 2) {
        rc = ox_node_err(c, err, SG_EINPUT,
                         "two base_values for a two-class classifier: ONNX leaves their use "
                         "open, and ONNX Runtime adds class 1's to class 0's trees");
        goto done;
    }
    if (binary) {
        if (n_base > 1) {
            rc = ox_node_err(c, err, SG_EINPUT,
                             "%zu base_values for a two-class classifier with one score: ONNX "
                             "leaves their use open (one is taken)",
                             n_base);
            goto done;
        }
        if (post == 2 || (post == 1 && all_pos) || (post == 0 && !all_pos)) {
            rc = ox_node_err(c, err, SG_EINPUT,
                             "a two-class classifier with one score, post_transform %s and %s "
                             "weights: %s",
                             post == 0   ? "NONE"
                             : post == 1 ? "LOGISTIC"
                                         : "SOFTMAX",
                             all_pos ? "no negative" : "negative",
                             post == 1   ? "ONNX Runtime writes [1 - s, s] and skips the logistic, "
                                           "so the output is ambiguous"
                             : post == 0 ? "the scores [-s, s] are not probabilities"
                                         : "a softmax of one score is not defined here");
            goto done;
        }
    } else if (n_base > 0 && (int64_t)n_base != r.K) {
        rc = ox_node_err(c, err, SG_EINPUT, "%zu base_values for %lld outputs", n_base,
                         (long long)r.K);
        goto done;
    }
    for (size_t j = 0; j < n_base; j++)
        if (!isfinite((float)base[j])) {
            rc = ox_node_err(c, err, SG_EINPUT, "base_values[%zu] is not a finite float", j);
            goto done;
        }
    if ((rc = build_ensemble(c, &r, F, binary ? 1 : (int)r.K, binary, &e, err))) goto done;
    c->routes_nan = true;
    {
        const int width = binary ? 2 : (int)r.K;
        const char *score = classifier && post != 0 && !binary ? part_name(c, "scores", err) : out;
        if (!score) {
            rc = SG_EINPUT;
            goto done;
        }
        sg_onnx_step *s = ox_step_new(c, SG_OX_TREES, err);
        if (!s) {
            rc = SG_ENOMEM;
            goto done;
        }
        s->in = c->vals[x].data;
        s->in_width = (int)F;
        s->width = width;
        s->trees = e;
        e = NULL;
        s->tree_div = average ? (float)r.n_trees : 0.0f;
        s->tree_binary = binary ? (post == 1 ? 2 : 1) : 0;
        if (!(s->shift = sg_alloc_aligned((size_t)width * sizeof(float)))) {
            rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
            goto done;
        }
        for (int g = 0; g < width; g++)
            s->shift[g] = g < (int)n_base ? (float)base[g] : 0.0f;
        /* the step writes the scores (a value of this node named score) */
        if (ox_value_find(c, score) >= 0) {
            rc = ox_node_err(c, err, SG_EINPUT, "output '%.100s' is defined twice", score);
            goto done;
        }
        int v = ox_value_add(c, score, err);
        if (v < 0) {
            rc = SG_EINPUT;
            goto done;
        }
        {
            const int64_t w = width;
            ox_value *sv = &c->vals[v];
            sv->defined = true;
            sv->rank = 1;
            sv->dims[0] = w;
            sv->count = w;
            sv->dtype = OX_FLOAT;
            sv->producer = c->n_steps - 1;
            s = &c->steps[c->n_steps - 1];
            s->out = v;
        }
        if (score != out) {
            const char *i1[1] = {score};
            const part_attr ax = {"axis", AT(INT), 1, NULL, 0};
            rc = post == 1 ? part_node(c, "Sigmoid", i1, 1, out, NULL, 0, err)
                           : part_node(c, "Softmax", i1, 1, out, &ax, 1, err);
            if (rc) goto done;
        }
        mark_named(c, out, classifier ? OX_ML_PROBA : OX_ML_VALUE);
    }
done:
    sg_tree_ensemble_free(e);
    free(base);
    raw_free(&r);
    return rc;
}

sg_status ox_compile_ml(ox_ctx *c, sg_err *err)
{
    const char *op = c->node->op_type;
    if (!strcmp(op, "TreeEnsembleClassifier")) return op_trees(c, true, err);
    if (!strcmp(op, "TreeEnsembleRegressor")) return op_trees(c, false, err);
    if (!strcmp(op, "LinearClassifier")) return op_linear(c, true, err);
    if (!strcmp(op, "LinearRegressor")) return op_linear(c, false, err);
    if (!strcmp(op, "Scaler")) return op_scaler(c, err);
    if (!strcmp(op, "Normalizer")) return op_normalizer(c, err);
    if (!strcmp(op, "Imputer")) return op_imputer(c, err);
    if (!strcmp(op, "Binarizer")) return op_binarizer(c, err);
    if (!strcmp(op, "ArrayFeatureExtractor")) return op_array_feature_extractor(c, err);
    if (!strcmp(op, "ZipMap")) return op_zipmap(c, err);
    return ox_node_err(c, err, SG_EINTERNAL, "no compiler for %s", op);
}
