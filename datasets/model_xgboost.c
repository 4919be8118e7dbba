/* An XGBoost JSON file as an sg_model: the common description around a tree ensemble. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/model.h"

#define MAX_JSON_MODEL_FILE ((size_t)4 << 30)

sg_status sg_model_from_xgboost_json(const char *name, const char *text, size_t len, sg_model **out,
                               sg_err *err)
{
    *out = NULL;
    sg_model *m = calloc(1, sizeof *m);
    if (!m) return sg_errf(err, SG_ENOMEM, "%s: out of memory", name);
    snprintf(m->path, sizeof m->path, "%s", name);
    int rc = sg_xgboost_json_parse(name, text, len, &m->trees, err);
    if (rc) {
        free(m);
        return rc;
    }
    const sg_tree_ensemble *e = m->trees;
    switch (e->output) {
    case SG_TREE_OUT_BINARY:
    case SG_TREE_OUT_HINGE:
        m->task = SG_TASK_BINARY;
        m->n_classes = 2;
        break;
    case SG_TREE_OUT_SOFTMAX:
        m->task = SG_TASK_MULTICLASS;
        m->n_classes = e->n_groups;
        break;
    default:
        m->task = SG_TASK_REGRESSION;
        m->n_classes = 0;
        break;
    }
    m->n_features = e->n_features;
    m->n_outputs = e->n_groups;
    m->missing_values = true;
    m->has_missing_value = e->has_missing_value;
    m->missing_value = e->missing_value;
    m->param_bytes = sg_tree_ensemble_bytes(e);
    if (e->linear)
        snprintf(m->estimator, sizeof m->estimator, "XGBoost gblinear %s, %d features",
                 e->objective, e->n_features);
    else if (e->trees_in_file > e->n_trees)
        snprintf(m->estimator, sizeof m->estimator,
                 "XGBoost %s %s, %d of %d trees (scikit-learn model, best_iteration %d), depth %d",
                 e->booster, e->objective, e->n_trees, e->trees_in_file, e->best_iteration,
                 e->max_depth);
    else
        snprintf(m->estimator, sizeof m->estimator, "XGBoost %s %s, %d trees, depth %d",
                 e->booster, e->objective, e->n_trees, e->max_depth);
    if (e->has_missing_value) {
        size_t n = strlen(m->estimator);
        snprintf(m->estimator + n, sizeof m->estimator - n, ", missing = %.9g",
                 (double)e->missing_value);
    }
    *out = m;
    return SG_OK;
}

sg_status sg_model_load_xgboost_json(const char *path, sg_model **out, sg_err *err)
{
    *out = NULL;
    if (strlen(path) >= sizeof(((sg_model *)0)->path))
        return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    /* Hash and parse the same bytes, so the digest names exactly what was evaluated. */
    uint8_t *bytes = NULL;
    size_t len = 0;
    sg_status rc = sg_read_file(path, MAX_JSON_MODEL_FILE, &bytes, &len, err);
    if (rc) return rc;
    rc = sg_model_load_xgboost_bytes(path, bytes, len, out, err);
    if (rc == SG_OK) sg_sha256(bytes, len, (*out)->sha256);
    free(bytes);
    return rc;
}

sg_status sg_model_load_xgboost_bytes(const char *path, const uint8_t *bytes, size_t len,
                                      sg_model **out, sg_err *err)
{
    *out = NULL;
    if (strlen(path) >= sizeof(((sg_model *)0)->path))
        return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    if (len > MAX_JSON_MODEL_FILE)
        return sg_errf(err, SG_EINPUT, "%s: larger than the %zu GiB limit for a JSON model", path,
                       MAX_JSON_MODEL_FILE >> 30);
    return sg_model_from_xgboost_json(path, (const char *)bytes, len, out, err);
}
