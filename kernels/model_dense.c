/* The dense kind: a native model HDF5 file (standardiser + dense layers) behind sg_model_ops.
   The same file format also carries tree ensembles (scikit-learn forests and boosting). */
#include "stagegate/model_ops.h"

#include <string.h>

static bool dense_probe(const uint8_t *head, size_t n)
{
    /* The HDF5 superblock signature at offset 0 (files with a user block are not written
       by our exporter and are not claimed). */
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    return n >= sizeof sig && memcmp(head, sig, sizeof sig) == 0;
}

/* A native model HDF5 file holds either layout; its model_kind attribute says which, and
   the loader fills m->trees for a tree ensemble, whose operations then apply. */
static sg_status h5_load(const char *path, const uint8_t *bytes, size_t len,
                         const sg_model_open_options *o, sg_model **out, sg_err *err)
{
    (void)o;
    sg_status rc = sg_model_load_image(path, bytes, len, out, err);
    if (rc == SG_OK) (*out)->ops = (*out)->trees ? &sg_model_ops_trees : &sg_model_ops_dense;
    return rc;
}

static void dense_describe(const sg_model *m, char *buf, size_t len)
{
    int n = snprintf(buf, len, "dense: %d features", m->n_features);
    for (int l = 0; l < m->n_layers && n > 0 && (size_t)n < len; l++)
        n += snprintf(buf + n, len - (size_t)n, "%s%d", l == 0 ? ", layers " : "x",
                      m->layers[l].n_out);
    if (n > 0 && (size_t)n < len) snprintf(buf + n, len - (size_t)n, ", %s", sg_link_name(m->link));
}

static int dense_scratch_new(const sg_model *m, int64_t max_batch, void **out, sg_err *err)
{
    sg_forward_scratch *s = NULL;
    int rc = sg_forward_scratch_new(m, max_batch, &s, err);
    *out = s;
    return rc;
}

static void dense_scratch_free(void *s)
{
    sg_forward_scratch_free(s);
}

static void dense_predict_batch(const sg_model *m, const sg_kernel_ops *k, const float *X,
                                int64_t n, float *out, void *s)
{
    sg_forward_batch(m, k, X, n, out, s);
}

static void dense_predict_one(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                              void *s, sg_forward_probe probe, void *ctx)
{
    sg_forward_one_probed(m, k, x, out, s, probe, ctx);
}

static void dense_cost(const sg_model *m, sg_model_cost *c)
{
    double flops = m->mean ? 2.0 * m->n_features : 0;
    for (int l = 0; l < m->n_layers; l++)
        flops += 2.0 * m->layers[l].n_in * m->layers[l].n_out;
    c->flops_per_row = flops;
    c->bytes_per_row = 4.0 * m->n_features;
    c->param_bytes = m->param_bytes;
}

/* Stage indices as sg_forward_one_probed reports them: 0 standardise, l + 1 after hidden
   layer l, n_layers after the last layer and its output link. */
static int dense_stage_names(const sg_model *m, char names[][SG_MODEL_STAGE_NAME], int max)
{
    int ns = 0;
    if (max < 1) return 0;
    snprintf(names[ns++], SG_MODEL_STAGE_NAME, "standardize");
    for (int i = 0; i < m->n_layers && ns < max; i++)
        snprintf(names[ns++], SG_MODEL_STAGE_NAME, "layer%d_%dx%d%s", i + 1, m->layers[i].n_in,
                 m->layers[i].n_out, i == m->n_layers - 1 ? "_link" : "");
    return ns;
}

static void dense_batch_paths(const sg_model *m, const void *s, int64_t n, char *buf, size_t len)
{
    sg_forward_scratch_paths(s, m, n, buf, len);
}

const sg_model_ops sg_model_ops_dense = {
    .kind = "dense",
    .probe = dense_probe,
    .load = h5_load,
    .describe = dense_describe,
    .scratch_new = dense_scratch_new,
    .scratch_free = dense_scratch_free,
    .predict_batch = dense_predict_batch,
    .predict_one = dense_predict_one,
    .cost = dense_cost,
    .stage_names = dense_stage_names,
    .batch_paths = dense_batch_paths,
};
