/* Validation sets in HDF5, read in row chunks so memory does not grow with n. */
#ifndef STAGEGATE_DATASET_H
#define STAGEGATE_DATASET_H

#include "stagegate/common.h"
#include "stagegate/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Threads: an sg_dataset is used by one thread at a time (normally the reader
 * thread). All HDF5 access made by this library (datasets, models, prediction
 * writers) is serialised by one internal lock, so one thread may read a set
 * while others compute, load models or write predictions. Code outside
 * datasets/ must not call HDF5 directly.
 */
typedef struct sg_dataset sg_dataset;

typedef enum { SG_LABELS_INT = 0, SG_LABELS_FLOAT = 1 } sg_label_kind;

/*
 * Opens the file and checks /X, /y and /sample_weight metadata (rank, dtype, row
 * counts, n > 0, optional format attributes). Values are checked as they are read.
 */
SG_MUST_CHECK sg_status sg_dataset_open(const char *path, sg_dataset **out, sg_err *err);
/*
 * The same open in two steps, so that other work (loading the model) runs while the file's
 * sandboxed dry run parses it in a child process. sg_dataset_open_begin opens the file and
 * starts the dry run; sg_dataset_open_end waits for its verdict and opens the file for real:
 * the same checks and the same errors as sg_dataset_open. The set may be used only after
 * sg_dataset_open_end returned SG_OK; it must be closed whatever either step returned
 * (begin sets *out to NULL when it fails). Closing a set whose open was not ended kills
 * the dry run.
 */
SG_MUST_CHECK sg_status sg_dataset_open_begin(const char *path, sg_dataset **out, sg_err *err);
/* The same, refusing a set of more than max_rows rows (> 0) in the dry run, before any row
   is read ("PATH: /X has N rows, more than --max-rows M"). */
SG_MUST_CHECK sg_status sg_dataset_open_begin_max(const char *path, int64_t max_rows,
                                                  sg_dataset **out, sg_err *err);
SG_MUST_CHECK sg_status sg_dataset_open_end(sg_dataset *ds, sg_err *err);
void sg_dataset_close(sg_dataset *ds);

/*
 * The file is opened once: libhdf5 and the digest both read that descriptor, so a path
 * renamed over meanwhile changes nothing. sg_dataset_sha256 hashes the file's bytes on
 * the first call and returns the same digest after. sg_dataset_check_unchanged refuses
 * (SG_EINPUT) when the file was written, renamed over or removed since it was opened (its
 * size, mtime or ctime moved), so a digest and the figures computed from the rows name the
 * same bytes.
 */
SG_MUST_CHECK sg_status sg_dataset_sha256(sg_dataset *ds, char hex[65], sg_err *err);
/*
 * Hashes the next `bytes` bytes of the file (or up to its end when to_eof) into the digest
 * sg_dataset_sha256 will return, so a reader can spread the hashing over its chunks and
 * overlap it with compute. Same thread rules as sg_dataset_read. Once a digest is started
 * (a first call, even with 0 bytes), sg_dataset_read also feeds it: each chunk's bytes as
 * they were read, when they are the file's next bytes, so that in-order reads need no
 * second pass over the file.
 */
SG_MUST_CHECK sg_status sg_dataset_hash_step(sg_dataset *ds, uint64_t bytes, bool to_eof,
                                             sg_err *err);
/* How many of the file's leading bytes the digest holds so far. */
uint64_t sg_dataset_hashed_bytes(const sg_dataset *ds);
/* Seconds sg_dataset_read spent feeding the digest (part of the reads' time). */
double sg_dataset_hash_seconds_in_reads(const sg_dataset *ds);
/* The file's size in bytes when it was opened. */
uint64_t sg_dataset_file_bytes(const sg_dataset *ds);
SG_MUST_CHECK sg_status sg_dataset_check_unchanged(const sg_dataset *ds, sg_err *err);

int64_t sg_dataset_rows(const sg_dataset *ds);
int sg_dataset_features(const sg_dataset *ds);
sg_label_kind sg_dataset_label_kind(const sg_dataset *ds);
bool sg_dataset_has_weights(const sg_dataset *ds);
const char *sg_dataset_path(const sg_dataset *ds);
/*
 * Rows per HDF5 chunk of /X, or 0 when contiguous: a good read granularity. The
 * chunk cache holds two row slabs of chunks (up to 64 MiB), so reads that are not
 * chunk-aligned do not decompress a chunk twice.
 */
int64_t sg_dataset_chunk_rows(const sg_dataset *ds);

/*
 * Checks that the set fits the model: feature count, label kind against the task
 * (integer labels for classifiers, any numeric for regression).
 */
SG_MUST_CHECK sg_status sg_dataset_check_model(const sg_dataset *ds, const sg_model *m, sg_err *err);

/*
 * Sets how the next reads take /X for model m (NULL: no model): NaN is a missing value
 * rather than an error when m routes it (sg_model.missing_values, tree ensembles; Inf stays
 * an error; off by default), and when m compares in float64 (m->f64_cuts,
 * scikit-learn's HistGradientBoosting) a float64 /X is narrowed through its cuts, so that
 * every split decides as in float64 (sg_f64_cuts_narrow); a value that no float32 stands for
 * is refused (SG_EINPUT) naming the row, the column and the two thresholds. m must stay
 * loaded while the set is read for it. The file's bytes, and so its digest, are the same.
 */
void sg_dataset_use_model(sg_dataset *ds, const sg_model *m);

/*
 * Reads rows [row0, row0+n) converting to float32. Any output pointer may be NULL.
 * labels: int32 class labels (classification), checked against 0..n_classes-1 when n_classes > 0;
 * for a model with class values (sg_model.classes, given by sg_dataset_use_model) /y holds
 * those values, and each is stored as its index (a value that is not a class is refused).
 * targets: float64 regression targets. weights: float64 sample weights (1 when absent).
 * Every value is checked for NaN/Inf (and weights for < 0); errors name the file, the
 * dataset and the first bad row. Float labels requested as int32 labels are an error.
 * An out-of-range row request is SG_EINTERNAL (a caller bug).
 */
SG_MUST_CHECK sg_status sg_dataset_read(sg_dataset *ds, int64_t row0, int64_t n, float *X, int32_t *labels,
                    double *targets, double *weights, int n_classes, sg_err *err);

/*
 * Prediction outputs (--predictions): written atomically. Commit fails (and leaves
 * no file) unless exactly n_rows rows were written.
 */
typedef struct sg_pred_writer sg_pred_writer;
/* width: k for classifiers (/proba [n,k] float32 + /label [n] int32), 1 for regression (/prediction
 * [n]). */
SG_MUST_CHECK sg_status sg_pred_writer_open(const char *path, int64_t n_rows, int width, bool classifier,
                        sg_pred_writer **out, sg_err *err);
/* A classifier whose classes are not 0..k-1 (sg_model.classes): /classes [k] int32 is
   written, and each label j given to sg_pred_writer_write goes into /label as classes[j].
   classes must outlive the writer. Called before the first write. */
SG_MUST_CHECK sg_status sg_pred_writer_set_classes(sg_pred_writer *w, const int32_t *classes, int k,
                                                   sg_err *err);
/* proba or prediction rows [row0,row0+n); labels may be NULL for regression. */
SG_MUST_CHECK sg_status sg_pred_writer_write(sg_pred_writer *w, int64_t row0, int64_t n, const float *values,
                         const int32_t *labels, sg_err *err);
SG_MUST_CHECK sg_status sg_pred_writer_commit(sg_pred_writer *w, sg_err *err); /* closes, renames, frees */
void sg_pred_writer_abort(sg_pred_writer *w);              /* closes, unlinks, frees */

#ifdef __cplusplus
}
#endif
#endif
