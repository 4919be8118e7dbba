/* Internal HDF5 helpers shared by the model, dataset and prediction files of datasets/. */
#ifndef STAGEGATE_DATASETS_H5UTIL_H
#define STAGEGATE_DATASETS_H5UTIL_H

#include <hdf5.h>

#include "stagegate/common.h"

/*
 * Every HDF5 call made by datasets/ happens between sg_h5_enter() and
 * sg_h5_leave(): one process-wide mutex, so a reader thread can stream a
 * dataset while other threads load models or write predictions, whether or not
 * the HDF5 build is thread-safe. Entering also turns off HDF5's automatic
 * error-stack printing for the calling thread (the setting is per thread in
 * thread-safe builds), because errors are reported as one-line messages.
 */
void sg_h5_enter(void);
void sg_h5_leave(void);

/*
 * Opens, read-only, the file the caller already opened as fd (path names it in
 * errors), with clear one-line errors: not an HDF5 file, truncated or corrupt.
 * libhdf5 reads the same inode (through /proc/self/fd where there is one). Returns
 * a file id or H5I_INVALID_HID.
 */
hid_t sg_h5_open_fd(const char *path, int fd, sg_err *err);

/*
 * Opens an in-memory copy of a whole file (read with sg_read_file), so that a
 * digest of those bytes names exactly what was loaded. Same errors as above.
 */
hid_t sg_h5_open_image(const char *path, const uint8_t *buf, size_t len, sg_err *err);

/* Innermost message on the current thread's HDF5 error stack ("" if none). */
void sg_h5_last_error(char *buf, size_t len);

/*
 * Checks that every link on the way to name (e.g. "layers/0/W": "layers", "layers/0",
 * "layers/0/W") is a hard link inside the file: an external link would make the loaded
 * bytes come from another file that the recorded digest does not cover. SG_OK or SG_EINPUT
 * naming path and the link.
 */
SG_MUST_CHECK sg_status sg_h5_check_links(hid_t file, const char *name, const char *path, sg_err *err);

/*
 * Opens dataset name after sg_h5_check_links, then refuses storage whose bytes do not come
 * from this file, or pass through code we do not accept: external raw-data files, virtual
 * datasets, and any filter other than deflate, shuffle and Fletcher-32 (the ones h5py
 * writes, and the ones sg_h5_reader decodes itself; user-defined filters run plugin code). Returns a dataset id, or
 * H5I_INVALID_HID with err naming path, name and what is wrong.
 */
hid_t sg_h5_open_dataset(hid_t file, const char *name, hid_t dapl, const char *path, sg_err *err);

/*
 * Refuses a dataset that declares rows its file does not store: a contiguous dataset whose
 * storage was never allocated, or a chunked one with fewer chunks in its index than its
 * shape needs. libhdf5 reads such rows as the fill value; in a validation set they would be
 * invented data (a writer that died part way), and a few kilobytes could declare 2^40 rows
 * to stream. Walks the chunk index (sandboxed child first, as every parse).
 */
SG_MUST_CHECK sg_status sg_h5_check_stored(hid_t ds, const char *name, const char *path, sg_err *err);
/* A contiguous dataset's storage lies inside the file: libhdf5 reads bytes past its end as
 * zeros (a model's weights moved past the end by a crafted or cut address had loaded). */
SG_MUST_CHECK sg_status sg_h5_check_in_file(hid_t ds, const char *name, const char *path,
                                            sg_err *err);

/*
 * Reads a rank-1 or rank-2 dataset (opened with sg_h5_open_dataset) in row ranges without
 * running libhdf5's chunk reader or filter pipeline on the file's bytes: a chunked dataset's
 * chunks are fetched raw and decoded here (deflate, shuffle, Fletcher-32), every size
 * checked, and a chunk that does not give exactly one chunk's bytes is SG_EINPUT naming
 * path, name and the chunk (h5chunks.c). Contiguous and compact datasets are read with
 * H5Dread. path and name are
 * borrowed and must outlive the reader; so must ds.
 */
typedef struct sg_h5_reader sg_h5_reader;
SG_MUST_CHECK sg_status sg_h5_reader_new(hid_t ds, const char *path, const char *name,
                                         sg_h5_reader **out, sg_err *err);
/* Rows [row0, row0+n), every column, as memtype into buf (n x columns elements). */
SG_MUST_CHECK sg_status sg_h5_reader_rows(sg_h5_reader *r, hid_t memtype, int64_t row0, int64_t n,
                                          void *buf, sg_err *err);
void sg_h5_reader_free(sg_h5_reader *r);
/*
 * Called with each chunk's stored bytes as they were just fetched from the file, before any
 * filter is undone: file_off is where they start in the file (the chunk index's address plus
 * the file's base, the user block), so a digest of the file can take them instead of reading
 * them again. A status other than SG_OK ends the read with it.
 */
typedef sg_status (*sg_h5_raw_fn)(void *ctx, uint64_t file_off, const uint8_t *bytes, size_t len,
                                  sg_err *err);
void sg_h5_reader_on_raw(sg_h5_reader *r, sg_h5_raw_fn fn, void *ctx, uint64_t base);
/* A chunk never written is then SG_EINPUT, not the fill value: a validation set's rows must
 * be data (sg_h5_check_stored counts chunks; one written past the extent counted too). */
void sg_h5_reader_refuse_unwritten(sg_h5_reader *r);
/* The whole dataset as memtype, the same way; data never written (no storage, or a chunk
 * never written) is SG_EINPUT: a model's weights are data as a validation set's rows are. */
SG_MUST_CHECK sg_status sg_h5_read_all(hid_t ds, hid_t memtype, void *buf, const char *path,
                                       const char *name, sg_err *err);

/*
 * Runs parse(arg) first in a forked, resource-limited child with a seccomp filter
 * (h5sandbox.c): SG_OK when the child's parse succeeded, the child's own error when it
 * refused the file, and SG_EINPUT "malformed HDF5 file" naming path when the child died.
 * Called with the HDF5 lock held. sg_h5_sandbox_enable(false) turns the dry run off (the
 * file fuzzer does, to see crashes in-process). A child that fork left deadlocked (a lock
 * another thread held at that instant; blocked in futex wait with no CPU time moving for
 * about a second) is killed and forked again, at most three times, then SG_EINTERNAL.
 */
SG_MUST_CHECK sg_status sg_h5_sandboxed(const char *path, sg_status (*parse)(void *arg, sg_err *err),
                                        void *arg, sg_err *err);
/*
 * The same in two steps, so that the caller can work while the child parses:
 * sg_h5_sandbox_start forks the child (with the HDF5 lock held, as above) and returns at
 * once; *out is NULL when the dry run is off. sg_h5_sandbox_wait takes the child's verdict
 * (what sg_h5_sandboxed returns) and frees p; it needs no lock, and p may be NULL.
 * sg_h5_sandbox_cancel ends a child whose verdict is no longer wanted (kills and reaps it).
 * Each check has its own shared page and pipe, so two may run at once.
 */
typedef struct sg_h5_pending sg_h5_pending;
SG_MUST_CHECK sg_status sg_h5_sandbox_start(const char *path,
                                            sg_status (*parse)(void *arg, sg_err *err), void *arg,
                                            sg_h5_pending **out, sg_err *err);
SG_MUST_CHECK sg_status sg_h5_sandbox_wait(sg_h5_pending *p, sg_err *err);
void sg_h5_sandbox_cancel(sg_h5_pending *p);
void sg_h5_sandbox_enable(bool on);
/* The child's CPU-time limit in seconds (default 30; the fuzzer lowers it). */
void sg_h5_sandbox_cpu_limit(unsigned seconds);
/* In the sandboxed child, records the object being read (printf-style), which the parent
   names if the child dies; elsewhere it does nothing. */
void sg_h5_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether a link called name exists directly in loc (no error if a parent is missing). */
bool sg_h5_exists(hid_t loc, const char *name);

/*
 * Reads a string attribute (fixed or variable length) into buf.
 * Returns SG_OK, 1 when the attribute is absent, or an error naming path/where.
 */
sg_status sg_h5_attr_string(hid_t obj, const char *name, char *buf, size_t len, const char *path,
                      const char *where, sg_err *err);

/* Reads a scalar integer attribute. Returns SG_OK, 1 when absent, or an error. */
sg_status sg_h5_attr_int(hid_t obj, const char *name, int64_t *value, const char *path, const char *where,
                   sg_err *err);

/* Writes a scalar attribute (variable-length UTF-8 string, or int64). */
SG_MUST_CHECK sg_status sg_h5_write_attr_string(hid_t obj, const char *name, const char *value);
SG_MUST_CHECK sg_status sg_h5_write_attr_int(hid_t obj, const char *name, int64_t value);

/* Describes a dataset's element type for messages, e.g. "string", "int16", "float64". */
void sg_h5_type_name(hid_t type, char *buf, size_t len);

#endif
