/* Test helpers: build HDF5 model and dataset files with the HDF5 C API in a temp dir. */
#ifndef SG_TEST_DATASETS_FIXTURES_H
#define SG_TEST_DATASETS_FIXTURES_H

#include <hdf5.h>
#include <stdbool.h>
#include <stdint.h>

/* A fresh directory under $TMPDIR (or the system temp dir); removed by fx_rmtree. */
void fx_mkdtemp(char *dir, size_t len);
void fx_rmtree(const char *dir);
/* Number of entries in dir other than . and .. */
int fx_count_entries(const char *dir);

/* Writes a dataset named name of the given file type from memory of memtype. */
void fx_write(hid_t loc, const char *name, hid_t filetype, hid_t memtype, int rank,
              const hsize_t *dims, const void *data);
/* Same with a chunked (and optionally gzip-compressed) layout. */
void fx_write_chunked(hid_t loc, const char *name, hid_t filetype, hid_t memtype, int rank,
                      const hsize_t *dims, const hsize_t *chunk, int gzip, const void *data);
void fx_attr_str(hid_t obj, const char *name, const char *value);
void fx_attr_fixed_str(hid_t obj, const char *name, const char *value);
void fx_attr_int(hid_t obj, const char *name, int64_t value);
/* Replaces an existing attribute or dataset. */
void fx_replace_attr_str(hid_t obj, const char *name, const char *value);
void fx_replace_attr_int(hid_t obj, const char *name, int64_t value);

/*
 * A valid binary model: n_features 4, scaler, layers 0 (W [4,3], relu) and
 * 1 (W [3,1], identity), link sigmoid. Parameters are i*0.01 style values.
 */
void fx_write_binary_model(const char *path);
/* Opens a file read-write for a mutation. */
hid_t fx_open_rw(const char *path);

/* Truncates a file to the given fraction of its size. */
void fx_truncate(const char *path, double fraction);
void fx_write_text(const char *path, const char *text);

#endif
