/*
 * The tree-ensemble kind: an XGBoost JSON file behind sg_model_ops. The kernels
 * add the leaves into per-row margins (kernels/trees_*.c); the output link is
 * applied here by scalar code shared by every ISA, so every variant's output has
 * the same bits. A scratch (one per thread) holds the margins of max_batch rows.
 */
#include "kernels/kernels_internal.h"
#include "stagegate/model_ops.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t max_batch;
    float *margins; /* [max_batch][n_groups] */
} tree_scratch;

/* An XGBoost model is a JSON object: '{' after optional whitespace and a UTF-8 BOM. The
   loader then checks that it really is one and names what is missing. */
static bool trees_probe(const uint8_t *head, size_t n)
{
    size_t i = 0;
    if (n >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF) i = 3;
    while (i < n && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n'))
        i++;
    return i < n && head[i] == '{';
}

static void trees_describe(const sg_model *m, char *buf, size_t len)
{
    const sg_tree_ensemble *e = m->trees;
    /* The estimator's missing value, which the data's reads turn into NaN. */
    char miss[48] = "";
    if (m->has_missing_value)
        snprintf(miss, sizeof miss, ", missing = %.9g", (double)m->missing_value);
    if (e->linear) {
        snprintf(buf, len, "linear: %s %s, %d features, %d output group(s)%s", e->booster,
                 e->objective, e->n_features, e->n_groups, miss);
        return;
    }
    char of[64] = "";
    if (e->trees_in_file > e->n_trees)
        snprintf(of, sizeof of, " of %d (best_iteration %d)", e->trees_in_file, e->best_iteration);
    snprintf(buf, len, "tree_ensemble: %s %s, %d trees%s, max depth %d, %lld nodes, %d features%s",
             e->booster, e->objective, e->n_trees, of, e->max_depth, (long long)e->n_nodes,
             e->n_features, miss);
}

static sg_status trees_scratch_new(const sg_model *m, int64_t max_batch, void **out, sg_err *err)
{
    *out = NULL;
    const int G = m->trees->n_groups;
    if (max_batch < 1 || max_batch > INT_MAX)
        return sg_errf(err, SG_EINPUT, "tree batch size %lld is outside 1..%d",
                       (long long)max_batch, INT_MAX);
    if ((uint64_t)max_batch > SIZE_MAX / sizeof(float) / (uint64_t)G)
        return sg_errf(err, SG_ENOMEM, "tree scratch of %lld rows x %d is too large",
                       (long long)max_batch, G);
    tree_scratch *s = calloc(1, sizeof *s);
    size_t bytes = (size_t)max_batch * (size_t)G * sizeof(float);
    if (s) s->margins = sg_alloc_aligned(bytes);
    if (!s || !s->margins) {
        free(s);
        return sg_errf(err, SG_ENOMEM, "out of memory for a tree scratch of %zu bytes", bytes);
    }
    /* First touch on the owning thread: NUMA-local, and no page faults when timed. */
    memset(s->margins, 0, bytes);
    s->max_batch = max_batch;
    *out = s;
    return SG_OK;
}

static void trees_scratch_free(void *p)
{
    tree_scratch *s = p;
    if (!s) return;
    sg_free_aligned(s->margins);
    free(s);
}

/* XGBoost's softmax: float exponentials of (z - max), summed in double. */
static void softmax_row(const float *z, int k, float *out)
{
    float mx = z[0];
    for (int j = 1; j < k; j++)
        if (z[j] > mx) mx = z[j];
    double sum = 0;
    for (int j = 0; j < k; j++) {
        out[j] = expf(z[j] - mx);
        sum += out[j];
    }
    for (int j = 0; j < k; j++)
        out[j] /= (float)sum;
}

static void apply_link(const sg_tree_ensemble *e, float *M, int64_t n, float *out)
{
    const int G = e->n_groups;
    if (e->mean_of > 0) {
        const float d = (float)e->mean_of;
        for (int64_t i = 0; i < n * G; i++)
            M[i] /= d;
    }
    for (int64_t r = 0; r < n; r++) {
        switch (e->output) {
        case SG_TREE_OUT_BINARY:
            /* p0 from logistic(-z) keeps a tiny p0's relative precision, as the dense path. */
            out[2 * r] = sg_logistic_ref(-M[r]);
            out[2 * r + 1] = sg_logistic_ref(M[r]);
            break;
        case SG_TREE_OUT_HINGE: /* binary:hinge predicts the class itself */
            out[2 * r] = M[r] > 0 ? 0.0f : 1.0f;
            out[2 * r + 1] = M[r] > 0 ? 1.0f : 0.0f;
            break;
        case SG_TREE_OUT_SIGMOID:
            out[r] = sg_logistic_ref(M[r]);
            break;
        case SG_TREE_OUT_EXP: /* XGBoost's PredTransform for its log-link objectives, in float */
            out[r] = expf(M[r]);
            break;
        case SG_TREE_OUT_SOFTMAX:
            softmax_row(M + r * G, G, out + r * G);
            break;
        case SG_TREE_OUT_PROBA_BINARY:
            out[2 * r] = 1.0f - M[r];
            out[2 * r + 1] = M[r];
            break;
        case SG_TREE_OUT_PROBA:
            memcpy(out + r * G, M + r * G, (size_t)G * sizeof(float));
            break;
        default:
            out[r] = M[r];
            break;
        }
    }
}

static void fill_base(const sg_tree_ensemble *e, float *M, int64_t n)
{
    const int G = e->n_groups;
    for (int64_t r = 0; r < n; r++)
        for (int g = 0; g < G; g++)
            M[r * G + g] = e->base[g];
}

/*
 * gblinear's margins, as XGBoost's linear predictor sums them: bias + base, then each present
 * feature's product in feature order, in float; a missing (NaN) feature adds nothing. This
 * file is built for the baseline ISA, so no multiply-add is fused and the bits are XGBoost's.
 */
static void linear_margins(const sg_tree_ensemble *e, const float *X, int64_t n, float *M)
{
    const int G = e->n_groups, F = e->n_features;
    const float *W = e->linear, *bias = e->linear + (size_t)F * (size_t)G;
    for (int64_t r = 0; r < n; r++) {
        const float *x = X + r * F;
        for (int g = 0; g < G; g++) {
            float psum = bias[g] + e->base[g];
            for (int f = 0; f < F; f++)
                if (!isnan(x[f])) psum += x[f] * W[(size_t)f * (size_t)G + (size_t)g];
            M[r * G + g] = psum;
        }
    }
}

static void trees_predict_batch(const sg_model *m, const sg_kernel_ops *k, const float *X,
                                int64_t n, float *out, void *p)
{
    tree_scratch *s = p;
    SG_ASSERT(n >= 0 && n <= s->max_batch);
    const sg_tree_ensemble *e = m->trees;
    if (e->linear) {
        linear_margins(e, X, n, s->margins);
    } else {
        fill_base(e, s->margins, n);
        k->tree_margins(e, X, n, s->margins);
    }
    apply_link(e, s->margins, n, out);
}

static void trees_predict_one(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                              void *p, sg_forward_probe probe, void *ctx)
{
    tree_scratch *s = p;
    const sg_tree_ensemble *e = m->trees;
    if (e->linear) {
        linear_margins(e, x, 1, s->margins);
    } else {
        fill_base(e, s->margins, 1);
        k->tree_margins_one(e, x, s->margins);
    }
    if (probe) probe(ctx, 0);
    apply_link(e, s->margins, 1, out);
    if (probe) probe(ctx, 1);
}

static void trees_cost(const sg_model *m, sg_model_cost *c)
{
    const sg_tree_ensemble *e = m->trees;
    double visits = 0;
    for (int t = 0; t < e->n_trees; t++)
        visits += e->tree_depth[t] + 1; /* the levels walked plus the leaf read */
    c->node_visits_per_row = visits;
    if (e->linear) c->flops_per_row = 2.0 * e->n_features * e->n_groups;
    c->bytes_per_row = 4.0 * e->n_features;
    c->param_bytes = m->param_bytes;
}

static int trees_stage_names(const sg_model *m, char names[][SG_MODEL_STAGE_NAME], int max)
{
    if (max < 2) return 0;
    if (m->trees->linear)
        snprintf(names[0], SG_MODEL_STAGE_NAME, "linear");
    else
        snprintf(names[0], SG_MODEL_STAGE_NAME, "trees_%d", m->trees->n_trees);
    snprintf(names[1], SG_MODEL_STAGE_NAME, "link");
    return 2;
}

static sg_status json_load(const char *path, const uint8_t *bytes, size_t len,
                           const sg_model_open_options *o, sg_model **out, sg_err *err)
{
    (void)o;
    return sg_model_load_xgboost_bytes(path, bytes, len, out, err);
}

const sg_model_ops sg_model_ops_trees = {
    .kind = "tree_ensemble",
    .probe = trees_probe,
    .load = json_load,
    .describe = trees_describe,
    .scratch_new = trees_scratch_new,
    .scratch_free = trees_scratch_free,
    .predict_batch = trees_predict_batch,
    .predict_one = trees_predict_one,
    .cost = trees_cost,
    .stage_names = trees_stage_names,
};
