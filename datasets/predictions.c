/*
 * Prediction output file (--predictions), written atomically: everything goes to
 * a temporary file beside the destination, renamed over it on commit and
 * unlinked on abort or failure. A writer is used by one thread at a time; its
 * HDF5 calls take the datasets/ lock (h5util.c) like every other HDF5 access.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"
#include "stagegate/dataset.h"

#define SG_PRED_FORMAT_NAME "stagegate-predictions"

struct sg_pred_writer {
    char path[4096];
    char tmp[4096];
    int lock_fd; /* the temp file, open and locked until it is renamed or removed */
    /* The temp file's directory, held open: a run is long, and if the directory is renamed
       meanwhile the temp file is still removed from it (it had been left there, full size). */
    int dir_fd;
    const char *tmp_base;
    hid_t file, values, labels;
    int64_t n_rows, written;
    int width;
    bool classifier;
    const int32_t *classes; /* label j is written as classes[j] (sg_pred_writer_set_classes) */
    int32_t *mapped;        /* the labels of one write, as class values */
    int64_t mapped_cap;
};

/* The temp file removed by its path, and through the directory it was made in (the same
   directory unless it was renamed during the run). */
static void remove_tmp(sg_pred_writer *w)
{
    sg_tmp_remove(w->tmp);
    if (w->dir_fd >= 0) (void)unlinkat(w->dir_fd, w->tmp_base, 0);
}

static hid_t create_2d(hid_t file, const char *name, hid_t type, int64_t rows, int cols)
{
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t space = H5Screate_simple(cols > 0 ? 2 : 1, dims, NULL);
    /* No modification time in the object header: the same predictions make the same bytes. */
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = space >= 0 && dcpl >= 0 && H5Pset_obj_track_times(dcpl, false) >= 0
                  ? H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)
                  : H5I_INVALID_HID;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return d;
}

static void close_ids(sg_pred_writer *w)
{
    if (w->labels >= 0) H5Dclose(w->labels);
    if (w->values >= 0) H5Dclose(w->values);
    if (w->file >= 0) H5Fclose(w->file);
    w->labels = w->values = w->file = H5I_INVALID_HID;
}

sg_status sg_pred_writer_open(const char *path, int64_t n_rows, int width, bool classifier,
                        sg_pred_writer **out, sg_err *err)
{
    *out = NULL;
    if (n_rows < 0 || width < 1 || (!classifier && width != 1))
        return sg_errf(err, SG_EINTERNAL, "%s: bad prediction shape %lld x %d", path,
                       (long long)n_rows, width);
    sg_pred_writer *w = calloc(1, sizeof *w);
    if (!w) return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    w->file = w->values = w->labels = H5I_INVALID_HID;
    int rc =
        strlen(path) < sizeof w->path ? SG_OK : sg_errf(err, SG_EINPUT, "%s: path too long", path);
    if (!rc) rc = sg_tmp_path_for(path, w->tmp, sizeof w->tmp, err);
    if (rc) {
        free(w);
        return rc;
    }
    strcpy(w->path, path);
    {
        const char *slash = strrchr(w->tmp, '/');
        w->tmp_base = slash ? slash + 1 : w->tmp;
        char dir[sizeof w->tmp];
        if (slash) {
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - w->tmp), w->tmp);
            if (!dir[0]) snprintf(dir, sizeof dir, "/");
        } else {
            snprintf(dir, sizeof dir, ".");
        }
        w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    w->n_rows = n_rows;
    w->width = width;
    w->classifier = classifier;
    /* The temp file is created here (O_EXCL, its random name) and locked for the whole run,
       which may be long: sg_tmp_sweep then leaves it alone, and removes it if this process is
       killed. libhdf5 opens it again; its own file lock is not needed on a file only this
       writer knows, and could clash with ours where a filesystem emulates flock with fcntl. */
    w->lock_fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (w->lock_fd < 0) {
        sg_tmp_forget(w->tmp);
        rc = sg_errf(err, SG_EIO, "%s: cannot create the output file in its directory: %s", path,
                     strerror(errno));
        if (w->dir_fd >= 0) close(w->dir_fd);
        free(w);
        return rc;
    }
    (void)sg_tmp_lock(w->lock_fd);
    sg_h5_enter();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    errno = 0;
    if (fapl >= 0 && H5Pset_file_locking(fapl, false, true) >= 0)
        w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    int create_errno = errno; /* the system's reason, if a call of libhdf5's failed (ENOSPC) */
    if (fapl >= 0) H5Pclose(fapl);
    if (w->file < 0) {
        rc = sg_errf(err, SG_EIO, "%s: cannot create the output file in its directory: %s", path,
                     create_errno ? strerror(create_errno) : "libhdf5 refused it");
    } else {
        if (sg_h5_write_attr_string(w->file, "format", SG_PRED_FORMAT_NAME) ||
            sg_h5_write_attr_int(w->file, "format_version", 1))
            rc = sg_errf(err, SG_EIO, "%s: cannot write attributes", path);
        if (!rc && classifier) {
            w->values = create_2d(w->file, "proba", H5T_IEEE_F32LE, n_rows, width);
            w->labels = create_2d(w->file, "label", H5T_STD_I32LE, n_rows, 0);
            if (w->values < 0 || w->labels < 0)
                rc = sg_errf(err, SG_EIO, "%s: cannot create /proba and /label", path);
        } else if (!rc) {
            w->values = create_2d(w->file, "prediction", H5T_IEEE_F32LE, n_rows, 0);
            if (w->values < 0) rc = sg_errf(err, SG_EIO, "%s: cannot create /prediction", path);
        }
    }
    if (rc) {
        close_ids(w);
        remove_tmp(w);
    }
    sg_h5_leave();
    if (rc) {
        close(w->lock_fd);
        free(w);
        return rc;
    }
    *out = w;
    return SG_OK;
}

/* Why a write failed: the system's reason where it left one (a full disk, the size limit),
   else libhdf5's last message. */
static const char *write_reason(int e, char *buf, size_t len)
{
    if (e) return strerror(e);
    sg_h5_last_error(buf, len);
    return buf[0] ? buf : "I/O error";
}

static herr_t write_rows(hid_t d, hid_t memtype, int64_t row0, int64_t n, int cols, const void *buf)
{
    hid_t fs = H5Dget_space(d);
    hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)(cols > 0 ? cols : 1)};
    hid_t ms = H5Screate_simple(cols > 0 ? 2 : 1, count, NULL);
    herr_t st = -1;
    if (fs >= 0 && ms >= 0 &&
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
        st = H5Dwrite(d, memtype, ms, fs, H5P_DEFAULT, buf);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return st;
}

sg_status sg_pred_writer_set_classes(sg_pred_writer *w, const int32_t *classes, int k, sg_err *err)
{
    if (!w->classifier || k != w->width || w->written)
        return sg_errf(err, SG_EINTERNAL, "%s: class values set for a %s of width %d", w->path,
                       w->classifier ? "classifier" : "regressor", w->width);
    sg_h5_enter();
    errno = 0;
    hid_t d = create_2d(w->file, "classes", H5T_STD_I32LE, k, 0);
    herr_t st = d >= 0 ? write_rows(d, H5T_NATIVE_INT32, 0, k, 0, classes) : -1;
    if (d >= 0) H5Dclose(d);
    char why[256] = "";
    const char *reason = st < 0 ? write_reason(errno, why, sizeof why) : "";
    sg_h5_leave();
    if (st < 0) return sg_errf(err, SG_EIO, "%s: writing /classes failed: %s", w->path, reason);
    w->classes = classes;
    return SG_OK;
}

sg_status sg_pred_writer_write(sg_pred_writer *w, int64_t row0, int64_t n, const float *values,
                         const int32_t *labels, sg_err *err)
{
    if (row0 < 0 || n < 0 || row0 > w->n_rows || n > w->n_rows - row0 || (w->classifier && !labels))
        return sg_errf(err, SG_EINTERNAL, "%s: bad prediction write of rows %lld..+%lld", w->path,
                       (long long)row0, (long long)n);
    if (n == 0) return SG_OK;
    if (w->classes && w->classifier) {
        if (n > w->mapped_cap) {
            int32_t *p = realloc(w->mapped, (size_t)n * sizeof *p);
            if (!p) return sg_errf(err, SG_ENOMEM, "%s: out of memory writing /label", w->path);
            w->mapped = p;
            w->mapped_cap = n;
        }
        for (int64_t i = 0; i < n; i++)
            w->mapped[i] = w->classes[labels[i]];
        labels = w->mapped;
    }
    sg_h5_enter();
    errno = 0;
    herr_t st =
        write_rows(w->values, H5T_NATIVE_FLOAT, row0, n, w->classifier ? w->width : 0, values);
    if (st >= 0 && w->classifier) st = write_rows(w->labels, H5T_NATIVE_INT32, row0, n, 0, labels);
    char why[256] = "";
    const char *reason = st < 0 ? write_reason(errno, why, sizeof why) : "";
    sg_h5_leave();
    if (st < 0) return sg_errf(err, SG_EIO, "%s: writing predictions failed: %s", w->path, reason);
    w->written += n;
    return SG_OK;
}

sg_status sg_pred_writer_commit(sg_pred_writer *w, sg_err *err)
{
    int rc = SG_OK;
    if (w->written != w->n_rows)
        rc = sg_errf(err, SG_EINTERNAL, "%s: %lld of %lld prediction rows were written", w->path,
                     (long long)w->written, (long long)w->n_rows);
    sg_h5_enter();
    char why[256] = "";
    errno = 0;
    if (!rc && H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)
        rc = sg_errf(err, SG_EIO, "%s: flushing predictions failed: %s", w->path,
                     write_reason(errno, why, sizeof why));
    hid_t f = w->file;
    w->file = H5I_INVALID_HID;
    if (w->labels >= 0) H5Dclose(w->labels);
    if (w->values >= 0) H5Dclose(w->values);
    w->labels = w->values = H5I_INVALID_HID;
    errno = 0;
    if (H5Fclose(f) < 0 && !rc)
        rc = sg_errf(err, SG_EIO, "%s: closing predictions failed: %s", w->path,
                     write_reason(errno, why, sizeof why));
    sg_h5_leave();
    if (!rc) {
        /* HDF5 does not fsync; do it so the rename never exposes unwritten data. */
        if (fsync(w->lock_fd) != 0)
            rc = sg_errf(err, SG_EIO, "%s: syncing predictions failed: %s", w->path,
                         strerror(errno));
    }
    if (!rc)
        rc = sg_commit_tmp(w->tmp, w->path, err);
    /* a failed commit (the directory renamed meanwhile) unlinked by path: by the directory */
    if (rc) remove_tmp(w);
    close(w->lock_fd);
    if (w->dir_fd >= 0) close(w->dir_fd);
    free(w->mapped);
    free(w);
    return rc;
}

void sg_pred_writer_abort(sg_pred_writer *w)
{
    if (!w) return;
    sg_h5_enter();
    close_ids(w);
    sg_h5_leave();
    remove_tmp(w);
    close(w->lock_fd);
    if (w->dir_fd >= 0) close(w->dir_fd);
    free(w->mapped);
    free(w);
}
