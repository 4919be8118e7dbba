/*
 * The in-memory model. Every kind fills the common description (task, classes,
 * features, outputs, estimator, path, digest); a dense model holds a standardiser
 * followed by a chain of dense layers, a tree ensemble holds `trees`. Callers never
 * look at the kind: they go through `ops` (stagegate/model_ops.h), which
 * sg_model_open sets.
 */
#ifndef STAGEGATE_MODEL_H
#define STAGEGATE_MODEL_H

#include "stagegate/common.h"
#include "stagegate/onnx.h"
#include "stagegate/trees.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_MODEL_FORMAT_NAME "stagegate-model"
/* Versions 1 to 3 are read; 2 adds a tree ensemble's mean_of and 3 a classifier's /classes
   (docs/formats.md), so that a build that would ignore either refuses the file. */
#define SG_MODEL_FORMAT_VERSION 3
#define SG_DATASET_FORMAT_NAME "stagegate-dataset"
#define SG_DATASET_FORMAT_VERSION 1
#define SG_MAX_LAYERS 64
#define SG_MAX_CLASSES 65536

typedef enum { SG_TASK_BINARY = 0, SG_TASK_MULTICLASS = 1, SG_TASK_REGRESSION = 2 } sg_task;

typedef enum {
    SG_ACT_IDENTITY = 0,
    SG_ACT_RELU = 1,
    SG_ACT_TANH = 2,
    SG_ACT_LOGISTIC = 3,
} sg_activation;

/* Output link applied after the last layer. */
typedef enum { SG_LINK_IDENTITY = 0, SG_LINK_SIGMOID = 1, SG_LINK_SOFTMAX = 2 } sg_link;

typedef struct {
    int n_in;
    int n_out;
    float *W; /* [n_in][n_out] row-major, 64-byte aligned */
    float *b; /* [n_out] */
    /* Activation of this layer; the last layer's is identity (the link follows). */
    sg_activation act;
} sg_layer;

/*
 * A model that compares features in float64 (scikit-learn's HistGradientBoosting: its file
 * has /trees/threshold_f64), while the kernels compare in float32. Per feature, the distinct
 * finite float64 split thresholds ascending ("cuts"), and for each the largest float32 at
 * most it. A float64 /X is narrowed through them (sg_f64_cuts_narrow), so that every split
 * decides as it does in float64; a float32 /X needs nothing (it is exact already).
 */
typedef struct {
    int n_features;
    int64_t *start; /* [n_features + 1]: feature f's cuts are [start[f], start[f + 1]) */
    double *cut;    /* [start[n_features]], ascending within a feature */
    float *floor32; /* [start[n_features]]: the largest float32 <= cut[i] */
} sg_f64_cuts;

/*
 * x, a float64 value of feature f, as the float32 the kernels must see so that each of the
 * feature's splits decides as `x <= cut` does: x lies in (cut[i-1], cut[i]] (with -inf and
 * +inf past the ends), and the value returned is the float32 nearest to x in
 * (floor32[i-1], floor32[i]] -- (float)x whenever that lies there. NaN stays NaN, and a value
 * whose float32 rounding is infinite stays infinite (the dataset refuses it). Returns false
 * when no float32 lies in that interval (two cuts with the same float32 floor and x between
 * them); then *below and *above are those two cuts.
 */
bool sg_f64_cuts_narrow(const sg_f64_cuts *c, int f, double x, float *out, double *below,
                        double *above);

typedef struct sg_model {
    sg_task task;
    int n_classes; /* 2 for binary, k for multiclass, 0 for regression */
    int n_features;
    int n_outputs; /* columns of the last layer: 1 (binary, regression) or k (multiclass) */
    float *mean;   /* [n_features] or NULL when there is no standardisation */
    float *scale;  /* [n_features] or NULL */
    int n_layers;
    sg_layer *layers;
    sg_link link;
    /* Free text from the exporter, e.g. "Pipeline(StandardScaler, MLPClassifier(...))". */
    char estimator[192];
    char path[4096];
    uint8_t sha256[32]; /* digest of the file it was loaded from */
    size_t param_bytes; /* bytes of weights, biases and standardisation, or of tree nodes */
    /* Tree ensembles: the trees (NULL for dense models, whose layers are above). */
    sg_tree_ensemble *trees;
    /* ONNX models: the compiled plan (for a pure MLP chain, its layers are above and the
       plan only names them). */
    sg_onnx_plan *onnx;
    /* NaN in a feature is a missing value the model routes (trees), not an input error. */
    bool missing_values;
    int format_version; /* the native HDF5 file's (1 or 2); 0 for other formats */
    /* A finite or infinite value that the model also reads as missing (XGBoost's scikit-learn
       `missing`; sg_dataset_use_model reads it as NaN), when has_missing_value. */
    bool has_missing_value;
    float missing_value;
    /* Features compared in float64 (scikit-learn HistGradientBoosting), or NULL; not cloned. */
    sg_f64_cuts *f64_cuts;
    /* A classifier whose outputs are declared probabilities rather than made so by a link
       (an ONNX graph read as `proba`): eval checks each row is one as it computes it. */
    bool proba_declared;
    /* The kind's operations; set by sg_model_open, copied by sg_model_clone. */
    const struct sg_model_ops *ops;
    /* A classifier's class values in increasing order, [n_classes], when they are not
       0..n_classes-1 (a model fitted on {1, 2} or {-1, 1}); NULL when they are. Output
       column j, and label j as the kernels and metrics count it, is class classes[j]:
       /y is read through it (sg_dataset_use_model) and /label written back through it. */
    int32_t *classes;
} sg_model;

/*
 * Checks a classifier's class values as a file gives them (n of them, for a model of k
 * classes): n == k, each within int32, strictly increasing. On success *out is a new array
 * of them, or NULL when they are exactly 0..k-1 (which needs no mapping). On failure
 * returns false with why filled ("[2] is 1, not above [1] = 5") and *out NULL.
 */
bool sg_classes_from(const int64_t *v, size_t n, int k, int32_t **out, char *why, size_t len);
/* The index of class value v in m's classes (0..n_classes-1), or -1 when v is not one. */
int sg_class_index(const sg_model *m, int64_t v);
/* Whether a and b have the same class values (0..k-1 when they give none). */
bool sg_classes_equal(const sg_model *a, const sg_model *b);
/* m's classes as text for a message, "(-1, 1)" or "(0, 1, 2, ..., 9)", at most len bytes. */
void sg_classes_text(const int32_t *classes, int k, char *buf, size_t len);

/*
 * Loads and fully validates a model file (docs/formats.md). Errors name the file and
 * the dataset/attribute. The file is read once into memory: sha256 is the digest of
 * exactly the bytes that were parsed. Parameters stored as float64 are converted.
 */
SG_MUST_CHECK sg_status sg_model_load(const char *path, sg_model **out, sg_err *err);
/*
 * Loads an XGBoost JSON model (Booster.save_model) from a file, hashing exactly the
 * bytes parsed. Errors name the file and the JSON path (stagegate/trees.h).
 */
SG_MUST_CHECK sg_status sg_model_load_xgboost_json(const char *path, sg_model **out, sg_err *err);
/* The loaders on bytes already read from path (path names the file in errors); they leave
   m->sha256 to the caller, who hashed the bytes. */
SG_MUST_CHECK sg_status sg_model_load_image(const char *path, const uint8_t *bytes, size_t len,
                                            sg_model **out, sg_err *err);
SG_MUST_CHECK sg_status sg_model_load_xgboost_bytes(const char *path, const uint8_t *bytes,
                                                    size_t len, sg_model **out, sg_err *err);
/* The same from bytes already in memory (the fuzz target); name is used in errors. */
SG_MUST_CHECK sg_status sg_model_from_xgboost_json(const char *name, const char *text, size_t len, sg_model **out,
                               sg_err *err);
/*
 * Loads an ONNX model and compiles it (stagegate/onnx.h). output says what a graph output
 * that does not end in Softmax/Sigmoid means (AUTO: the file's metadata_props must say).
 * External data is read from the model's directory; sha256 covers the .onnx bytes and
 * then each external file's (docs/formats.md).
 */
SG_MUST_CHECK sg_status sg_model_load_onnx(const char *path, sg_onnx_output output, sg_model **out, sg_err *err);
/* The same on the .onnx bytes already read from path (external data is read from path's
   directory, and sha256 covers the bytes and that data). output_name (NULL: none) names the
   graph output that is the model's (--output-name), for a graph of several outputs. */
SG_MUST_CHECK sg_status sg_model_load_onnx_bytes(const char *path, const uint8_t *bytes, size_t len,
                                                 sg_onnx_output output, const char *output_name,
                                                 sg_model **out, sg_err *err);
/* The same from bytes in memory, refusing external data (the fuzz target). */
SG_MUST_CHECK sg_status sg_model_from_onnx(const char *name, const uint8_t *bytes, size_t len, sg_onnx_output output,
                       sg_model **out, sg_err *err);
/* The digest a loaded model's sha256 would have, from the file alone: its SHA-256, except for
   an ONNX model with external data (the .onnx bytes, then each data file's; docs/formats.md).
   What the registry records and `verify --model` checks. hex is 64 chars plus NUL. */
SG_MUST_CHECK sg_status sg_model_digest_file_hex(const char *path, char hex[65], sg_err *err);
void sg_model_free(sg_model *m);

/* Columns of the probability/prediction output: k for classifiers (binary 2), 1 for regression. */
int sg_model_output_width(const sg_model *m);
/* Widest layer, for scratch sizing. */
int sg_model_max_width(const sg_model *m);

/* A deep copy whose buffers are allocated and first touched by the calling thread (NUMA-local). */
SG_MUST_CHECK sg_status sg_model_clone(const sg_model *m, sg_model **out, sg_err *err);

const char *sg_task_name(sg_task t);
const char *sg_activation_name(sg_activation a);
const char *sg_link_name(sg_link l);

#ifdef __cplusplus
}
#endif
#endif
