/*
 * One interface for every model kind, like sqlite3_vfs: a table of operations
 * each kind fills (dense MLP/linear from HDF5, tree ensembles from XGBoost JSON).
 * eval, bench, gate and shadow agreement call through it and never ask which
 * kind they hold. A file is matched to a kind by its content, not its name.
 */
#ifndef STAGEGATE_MODEL_OPS_H
#define STAGEGATE_MODEL_OPS_H

#include "stagegate/common.h"
#include "stagegate/kernels.h"
#include "stagegate/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What one row costs. A dense model counts FLOPs, a tree ensemble node visits. */
typedef struct {
    double flops_per_row;       /* multiply-adds count 2 */
    double node_visits_per_row; /* tree ensembles: sum of the trees' depths (the kernels walk
                                   exactly that many levels per row) */
    double bytes_per_row;       /* input features read */
    size_t param_bytes;         /* parameters the model touches */
} sg_model_cost;

#define SG_MODEL_MAX_STAGES 66
#define SG_MODEL_STAGE_NAME 48

/* What a command says about the model beyond its file. */
typedef struct sg_model_open_options {
    /* ONNX: what an output that does not end in Softmax/Sigmoid means (--output). */
    sg_onnx_output onnx_output;
    /* The setting is for whichever model is ONNX (gate's two models): another kind ignores
       it. Without this flag another kind refuses it (SG_EINPUT), as it would not apply. */
    bool onnx_only;
    /* ONNX: the graph output that is the model's, for a graph of several (--output-name);
       NULL: none named. Another kind refuses it unless onnx_only, as above. */
    const char *onnx_output_name;
} sg_model_open_options;

typedef struct sg_model_ops {
    const char *kind; /* "dense", "tree_ensemble", "onnx" */
    /* Does a file that starts with these bytes (up to 512 of them) belong to this kind? */
    bool (*probe)(const uint8_t *head, size_t n);
    /* Parses and fully validates the bytes of the file at path (already read once, and
       hashed, by sg_model_open); errors name the file and the field. o may be NULL. A kind
       whose format refers to other files (ONNX external data) sets own_digest and folds
       their bytes into m->sha256 itself. */
    sg_status (*load)(const char *path, const uint8_t *bytes, size_t len,
                      const sg_model_open_options *o, sg_model **out, sg_err *err);
    /* m->sha256 is the loader's (the file plus what it refers to), not the file's alone. */
    bool own_digest;
    /* One line: kind, shape and size, e.g. "tree_ensemble: 300 trees, depth 6, 2 classes". */
    void (*describe)(const sg_model *m, char *buf, size_t len);
    /* Per-thread scratch for up to max_batch rows. */
    sg_status (*scratch_new)(const sg_model *m, int64_t max_batch, void **out, sg_err *err);
    void (*scratch_free)(void *scratch);
    /* X [n][n_features] -> out [n][sg_model_output_width(m)]: probabilities for classifiers
       (binary: two columns, as predict_proba), the prediction for regressors. */
    void (*predict_batch)(const sg_model *m, const sg_kernel_ops *k, const float *X, int64_t n,
                          float *out, void *scratch);
    /* Batch 1 with the latency path's kernels; probe (may be NULL) is called after each stage
       that stage_names lists, with the stage's index. */
    void (*predict_one)(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                        void *scratch, sg_forward_probe probe, void *ctx);
    void (*cost)(const sg_model *m, sg_model_cost *out);
    /* Names of the stages predict_one reports (--breakdown); returns their count. */
    int (*stage_names)(const sg_model *m, char names[][SG_MODEL_STAGE_NAME], int max);
    /* Optional: which kernels batches of n rows (n <= 0: the largest run) ran on with this
       scratch, one line (dense layers: sg_forward_scratch_paths). */
    void (*batch_paths)(const sg_model *m, const void *scratch, int64_t n, char *buf, size_t len);
} sg_model_ops;

extern const sg_model_ops sg_model_ops_dense;
extern const sg_model_ops sg_model_ops_trees;
extern const sg_model_ops sg_model_ops_onnx;

/*
 * Opens a model file of any kind: reads the whole file once, hashes those bytes into
 * m->sha256, asks each kind's probe, and parses the same bytes with the first kind that
 * claims them (HDF5 signature: dense; JSON: XGBoost; a protobuf starting with ir_version:
 * ONNX). Sets m->ops. A file no kind claims is SG_EINPUT naming the file. The file is
 * opened exactly once (an ONNX model's external data files once each).
 */
SG_MUST_CHECK sg_status sg_model_open(const char *path, sg_model **out, sg_err *err);
/* The same with options (NULL: the defaults). */
SG_MUST_CHECK sg_status sg_model_open_with(const char *path, const sg_model_open_options *o,
                                           sg_model **out, sg_err *err);
/*
 * As sg_model_open_with, but when expected_sha256 (64 hex digits) is not NULL the model's
 * digest must be that one. It is checked before any byte is parsed (a registry URI's
 * registered digest: verify before parse), except for a kind whose digest covers more than
 * the file (own_digest: ONNX with external data), which is checked once those bytes are
 * read and before the model is used. A mismatch is SG_EINPUT naming both digests.
 */
SG_MUST_CHECK sg_status sg_model_open_verified(const char *path, const char *expected_sha256,
                                               const sg_model_open_options *o, sg_model **out,
                                               sg_err *err);

/* Calls through m->ops; NULL-safe frees. */
SG_MUST_CHECK sg_status sg_model_scratch_new(const sg_model *m, int64_t max_batch, void **out, sg_err *err);
void sg_model_scratch_free(const sg_model *m, void *scratch);
void sg_model_predict_batch(const sg_model *m, const sg_kernel_ops *k, const float *X, int64_t n,
                            float *out, void *scratch);
void sg_model_predict_one(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                          void *scratch, sg_forward_probe probe, void *ctx);
void sg_model_describe(const sg_model *m, char *buf, size_t len);
void sg_model_cost_of(const sg_model *m, sg_model_cost *out);
const char *sg_model_kind(const sg_model *m);
/* ops->batch_paths, or an empty line for a kind without one. */
void sg_model_batch_paths(const sg_model *m, const void *scratch, int64_t n, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
