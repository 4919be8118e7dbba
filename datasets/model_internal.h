/* Internal to datasets/: the layouts of the native model HDF5 format. */
#ifndef STAGEGATE_DATASETS_MODEL_INTERNAL_H
#define STAGEGATE_DATASETS_MODEL_INTERNAL_H

#include "h5util.h"
#include "stagegate/model.h"

/*
 * Reads the tree-ensemble layout (root attribute model_kind = "tree_ensemble") of an
 * open model file whose common header (task, classes, features, estimator) is already
 * in m: the output and missing_values attributes and the /trees datasets. Fills
 * m->trees, n_outputs, missing_values and param_bytes. Errors name the file and field.
 */
SG_MUST_CHECK sg_status sg_model_h5_trees(hid_t f, const char *path, sg_model *m, sg_err *err);
void sg_f64_cuts_free(sg_f64_cuts *c);

#endif
