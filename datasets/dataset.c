/*
 * Validation-set reader (layout in docs/formats.md), streamed in row ranges.
 *
 * Ownership: an sg_dataset and its HDF5 ids belong to whichever single thread
 * is using it (normally the evaluator's reader thread); it is not shared.
 * Every HDF5 call goes through sg_h5_enter/leave (h5util.c), so that reader
 * can run while other threads compute, load models or write predictions.
 * The label scratch buffer is owned by the dataset and reused between reads.
 */
#define _GNU_SOURCE /* F_SETLEASE, F_SETSIG */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "h5util.h"
#include "stagegate/dataset.h"

#define MAX_FEATURES (1 << 24)
/* Chunk-cache bounds per dataset: enough for two row slabs of chunks, never unbounded. */
#define CACHE_MIN_BYTES ((size_t)1 << 20)
#define CACHE_MAX_BYTES ((size_t)64 << 20)

struct sg_dataset {
    char path[4096];
    int fd;          /* the one descriptor of the file: libhdf5 and the digest read through it */
    struct stat st0; /* at open: a later fstat that differs means the file was written */
    bool leased;     /* a read lease on fd (take_lease): any open for writing breaks it */
    bool hashed;
    char sha256[65];
    EVP_MD_CTX *hctx; /* the digest in progress (sg_dataset_hash_step), or NULL */
    uint64_t hash_off; /* the file's first hash_off bytes are in the digest */
    double hash_in_reads; /* seconds the digest took inside sg_dataset_read (hash_read) */
    uint8_t *hbuf;
    hid_t file, X, y, w;
    sg_h5_reader *rX, *ry, *rw; /* one per member: chunks decoded here, not by libhdf5 */
    int64_t n;
    int d;
    sg_label_kind kind;
    int y_digits; /* a float /y's significand bits (24 for float32), 0 for integers */
    int64_t chunk_rows;
    int64_t *scratch; /* labels read as int64 before range checks */
    int64_t scratch_rows;
    bool missing_ok; /* NaN in /X is a missing value (a model that routes it) */
    bool has_missing_value; /* ...and so is this value, read as NaN (XGBoost's `missing`) */
    float missing_value;
    bool x_f64;      /* /X is stored as float64 */
    /* The model the set is read for compares in float64 (sg_dataset_use_model): a float64
       /X is narrowed through its cuts, read as doubles into xd first. */
    const sg_f64_cuts *cuts;
    const char *cuts_model; /* the model's path (for the cuts' and the classes' messages) */
    /* The model's class values (sg_model.classes): /y holds them, read as their index. */
    const sg_model *classes_of;
    int class_unfit; /* a class a float /y cannot hold exactly (index), or -1 */
    double *xd;
    size_t xd_cap;
    bool opening;         /* sg_dataset_open_begin done, sg_dataset_open_end not yet */
    int64_t max_rows;     /* > 0: a set of more rows is refused before any row is read */
    sg_h5_pending *check; /* the sandboxed dry run while opening */
};

void sg_dataset_use_model(sg_dataset *ds, const sg_model *m)
{
    ds->missing_ok = m && m->missing_values;
    ds->has_missing_value = m && m->missing_values && m->has_missing_value;
    ds->missing_value = ds->has_missing_value ? m->missing_value : 0;
    ds->cuts = m ? m->f64_cuts : NULL;
    ds->cuts_model = m ? m->path : NULL;
    ds->classes_of = m && m->classes ? m : NULL;
    /* A float too narrow for a class value would round it onto another value (float32 holds
       2000000001 as 2000000000): the labels could merge classes unseen. Found once here,
       refused when labels are read. */
    ds->class_unfit = -1;
    for (int j = 0; ds->classes_of && ds->kind == SG_LABELS_FLOAT && ds->y_digits < 64 &&
                    ds->class_unfit < 0 && j < m->n_classes;
         j++) {
        uint64_t a =
            m->classes[j] < 0 ? (uint64_t)(-(int64_t)m->classes[j]) : (uint64_t)m->classes[j];
        while (a && !(a & 1))
            a >>= 1;
        if (a >> ds->y_digits) ds->class_unfit = j;
    }
}

/* A label not among the model's class values (sg_model.classes): its row, and the classes. */
static sg_status not_a_class(const sg_dataset *ds, int64_t row, const char *value, sg_err *err)
{
    const sg_model *m = ds->classes_of;
    char cls[160];
    sg_classes_text(m->classes, m->n_classes, cls, sizeof cls);
    return sg_errf(err, SG_EINPUT, "%s: /y row %lld is %s, not one of the classes %s of model %s",
                   ds->path, (long long)row, value, cls, m->path);
}

int64_t sg_dataset_rows(const sg_dataset *ds)
{
    return ds->n;
}
int sg_dataset_features(const sg_dataset *ds)
{
    return ds->d;
}
sg_label_kind sg_dataset_label_kind(const sg_dataset *ds)
{
    return ds->kind;
}
bool sg_dataset_has_weights(const sg_dataset *ds)
{
    return ds->w >= 0;
}
const char *sg_dataset_path(const sg_dataset *ds)
{
    return ds->path;
}
int64_t sg_dataset_chunk_rows(const sg_dataset *ds)
{
    return ds->chunk_rows;
}

static size_t next_prime(size_t n)
{
    for (;; n++) {
        bool prime = n > 1;
        for (size_t f = 2; prime && f * f <= n; f++)
            if (n % f == 0) prime = false;
        if (prime) return n;
    }
}

/*
 * HDF5's default chunk cache is 1 MiB per dataset: a larger chunk is then never
 * cached and a row range ending mid-chunk decompresses that chunk again on the
 * next read. Size the cache to hold two full row slabs of chunks (capped).
 */
static hid_t cache_dapl(hid_t ds, int64_t *chunk_rows)
{
    *chunk_rows = 0;
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0) return H5P_DEFAULT;
    hid_t dapl = H5P_DEFAULT;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t c[2] = {1, 1}, dims[2] = {1, 1};
        int rank = H5Pget_chunk(dcpl, 2, c);
        hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
        H5Sget_simple_extent_dims(space, dims, NULL);
        size_t es = H5Tget_size(type);
        H5Sclose(space);
        H5Tclose(type);
        size_t chunk_bytes = (size_t)c[0] * es * (rank == 2 ? (size_t)c[1] : 1);
        size_t across = rank == 2 ? (size_t)((dims[1] + c[1] - 1) / c[1]) : 1;
        size_t bytes = 2 * across * chunk_bytes;
        if (bytes < CACHE_MIN_BYTES) bytes = CACHE_MIN_BYTES;
        if (bytes > CACHE_MAX_BYTES) bytes = CACHE_MAX_BYTES;
        size_t held = chunk_bytes ? bytes / chunk_bytes + 1 : 1;
        /* The slot table is 8 bytes a slot whatever the chunks hold: uncapped, 1-byte chunks
           asked for 105 M slots (840 MB) for a 10 KB file. Chunks are fetched raw here
           (h5chunks.c), so the cache sees few of them anyway. */
        size_t want = held > SIZE_MAX / 100 ? SIZE_MAX : held * 100;
        size_t slots = next_prime(want < 521 ? 521 : want > 65521 ? 65521 : want);
        dapl = H5Pcreate(H5P_DATASET_ACCESS);
        /* w0 = 1: chunks read completely are evicted first, partial ones stay. */
        if (dapl >= 0) H5Pset_chunk_cache(dapl, slots, bytes, 1.0);
        *chunk_rows = (int64_t)c[0];
    }
    H5Pclose(dcpl);
    return dapl;
}

/* Opens name (required or optional) with a tuned chunk cache; checks rank and element class. */
static sg_status open_member(sg_dataset *ds, const char *name, bool required, int rank, hid_t *out,
                       sg_h5_reader **reader, int64_t *chunk_rows, hsize_t dims[2], sg_err *err)
{
    *out = H5I_INVALID_HID;
    if (!sg_h5_exists(ds->file, name)) {
        if (!required) return SG_OK;
        return sg_errf(err, SG_EINPUT, "%s: dataset %s is missing", ds->path, name);
    }
    hid_t probe = sg_h5_open_dataset(ds->file, name, H5P_DEFAULT, ds->path, err);
    if (probe < 0) return SG_EINPUT;
    int64_t cr;
    hid_t dapl = cache_dapl(probe, &cr);
    H5Dclose(probe);
    *out = H5Dopen2(ds->file, name, dapl);
    if (dapl != H5P_DEFAULT) H5Pclose(dapl);
    if (*out < 0) return sg_errf(err, SG_EINPUT, "%s: %s cannot be opened", ds->path, name);
    if (chunk_rows) *chunk_rows = cr;
    hid_t space = H5Dget_space(*out);
    int r = H5Sget_simple_extent_ndims(space);
    if (r == rank) H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    if (r != rank)
        return sg_errf(err, SG_EINPUT, "%s: %s has rank %d, expected %d%s", ds->path, name, r, rank,
                       rank == 2 ? " ([rows, features])" : " ([rows])");
    if (dims[0] > (hsize_t)INT64_MAX)
        return sg_errf(err, SG_EINPUT, "%s: %s declares %llu rows, more than stagegate counts",
                       ds->path, name, (unsigned long long)dims[0]);
    sg_status rc = sg_h5_check_stored(*out, name, ds->path, err);
    if (rc == SG_OK) rc = sg_h5_reader_new(*out, ds->path, name, reader, err);
    if (rc == SG_OK) sg_h5_reader_refuse_unwritten(*reader);
    return rc;
}

/* Whether d's elements are an enum of an integer type (as h5py stores numpy's bool). */
static bool enum_of_integers(hid_t d)
{
    hid_t t = H5Dget_type(d), base = t >= 0 ? H5Tget_super(t) : H5I_INVALID_HID;
    const bool ok = base >= 0 && H5Tget_class(base) == H5T_INTEGER;
    if (base >= 0) H5Tclose(base);
    if (t >= 0) H5Tclose(t);
    return ok;
}

/* Element class of a dataset: 'f' float16/32/64, 'i' integer, 'e' enum, or 0 (with its name
   in tn). */
static char elem_kind(hid_t d, char *tn, size_t len)
{
    hid_t t = H5Dget_type(d);
    sg_h5_type_name(t, tn, len);
    H5T_class_t c = H5Tget_class(t);
    size_t s = H5Tget_size(t);
    H5Tclose(t);
    if (c == H5T_FLOAT && (s == 2 || s == 4 || s == 8)) return 'f';
    if (c == H5T_INTEGER) return 'i';
    if (c == H5T_ENUM) return 'e'; /* h5py stores numpy's bool so: FALSE 0, TRUE 1 */
    return 0;
}

static sg_status check_format(sg_dataset *ds, sg_err *err)
{
    /* The format attributes are optional: plain h5py files with /X and /y load too. */
    char s[128];
    int64_t v;
    int rc = sg_h5_attr_string(ds->file, "format", s, sizeof s, ds->path, "", err);
    if (rc < 0) return rc;
    if (rc == SG_OK && strcmp(s, SG_DATASET_FORMAT_NAME) != 0)
        return sg_errf(err, SG_EINPUT, "%s: attribute format is \"%s\", expected \"%s\"", ds->path,
                       s, SG_DATASET_FORMAT_NAME);
    rc = sg_h5_attr_int(ds->file, "format_version", &v, ds->path, "", err);
    if (rc < 0) return rc;
    if (rc == SG_OK && v != SG_DATASET_FORMAT_VERSION)
        return sg_errf(err, SG_EINPUT,
                       "%s: attribute format_version is %lld, unsupported (this build reads %d)",
                       ds->path, (long long)v, SG_DATASET_FORMAT_VERSION);
    return SG_OK;
}

static sg_status open_members(sg_dataset *ds, sg_err *err)
{
    hsize_t xd[2] = {0, 0}, yd[2] = {0, 0}, wd[2] = {0, 0};
    char tn[64];
    int rc = check_format(ds, err);
    if (!rc) rc = open_member(ds, "/X", true, 2, &ds->X, &ds->rX, &ds->chunk_rows, xd, err);
    if (rc) return rc;
    const char xk = elem_kind(ds->X, tn, sizeof tn);
    if (xk != 'f' && xk != 'i')
        return sg_errf(err, SG_EINPUT,
                       "%s: /X has dtype %s, expected floats (float16, float32, float64) or "
                       "integers",
                       ds->path, tn);
    hid_t xt = H5Dget_type(ds->X);
    /* values float32 may not hold exactly: float64, and integers of more than 16 bits */
    ds->x_f64 = xt >= 0 && H5Tget_size(xt) >= (xk == 'f' ? 8u : 4u);
    if (xt >= 0) H5Tclose(xt);
    if (xd[0] == 0) return sg_errf(err, SG_EINPUT, "%s: /X has 0 rows", ds->path);
    if (xd[1] == 0 || xd[1] > MAX_FEATURES)
        return sg_errf(err, SG_EINPUT, "%s: /X has %llu features (must be 1..%d)", ds->path,
                       (unsigned long long)xd[1], MAX_FEATURES);
    ds->n = (int64_t)xd[0];
    ds->d = (int)xd[1];

    if ((rc = open_member(ds, "/y", true, 1, &ds->y, &ds->ry, NULL, yd, err))) return rc;
    char k = elem_kind(ds->y, tn, sizeof tn);
    if (!k || (k == 'e' && !enum_of_integers(ds->y)))
        return sg_errf(err, SG_EINPUT,
                       "%s: /y has dtype %s, expected class labels (integers, bools, or floats "
                       "holding whole numbers) or float targets",
                       ds->path, tn);
    ds->kind = k == 'f' ? SG_LABELS_FLOAT : SG_LABELS_INT;
    if (k == 'f') {
        hid_t yt = H5Dget_type(ds->y);
        size_t spos, epos, esize, mpos, msize = 52;
        if (yt >= 0 && H5Tget_fields(yt, &spos, &epos, &esize, &mpos, &msize) < 0) msize = 52;
        if (yt >= 0) H5Tclose(yt);
        ds->y_digits = (int)msize + 1;
    }
    if (yd[0] != xd[0])
        return sg_errf(err, SG_EINPUT, "%s: /y has %llu rows but /X has %llu", ds->path,
                       (unsigned long long)yd[0], (unsigned long long)xd[0]);

    if ((rc = open_member(ds, "/sample_weight", false, 1, &ds->w, &ds->rw, NULL, wd, err))) return rc;
    if (ds->w >= 0) {
        const char wk = elem_kind(ds->w, tn, sizeof tn);
        if (wk != 'f' && wk != 'i')
            return sg_errf(err, SG_EINPUT, "%s: /sample_weight has dtype %s, expected numbers",
                           ds->path, tn);
        if (wd[0] != xd[0])
            return sg_errf(err, SG_EINPUT, "%s: /sample_weight has %llu rows but /X has %llu",
                           ds->path, (unsigned long long)wd[0], (unsigned long long)xd[0]);
    }
    return SG_OK;
}

static void close_ids(sg_dataset *ds)
{
    sg_h5_reader_free(ds->rw);
    sg_h5_reader_free(ds->ry);
    sg_h5_reader_free(ds->rX);
    ds->rw = ds->ry = ds->rX = NULL;
    if (ds->w >= 0) H5Dclose(ds->w);
    if (ds->y >= 0) H5Dclose(ds->y);
    if (ds->X >= 0) H5Dclose(ds->X);
    if (ds->file >= 0) H5Fclose(ds->file);
    ds->w = ds->y = ds->X = ds->file = H5I_INVALID_HID;
}

/* The first and last row of d (open_members walked its whole chunk index), as reads touch them:
   in the memory type sg_dataset_read asks for, so the same conversion runs (and a float32
   /X is not widened to double here, a whole chunk row at a time, only to be thrown away). */
static sg_status walk_member(sg_dataset *ds, hid_t d, sg_h5_reader *r, int cols, hid_t mt,
                             sg_err *err)
{
    if (d < 0) return SG_OK;
    double row[64]; /* one row of up to 64 values of at most 8 bytes */
    if ((size_t)cols > sizeof row / sizeof row[0]) return SG_OK; /* wide rows: the index walk only */
    sg_status rc = sg_h5_reader_rows(r, mt, 0, 1, row, err);
    if (rc == SG_OK) rc = sg_h5_reader_rows(r, mt, ds->n - 1, 1, row, err);
    return rc;
}

static sg_status hash_read(void *arg, uint64_t off, const uint8_t *p, size_t len, sg_err *err);

/*
 * The digest takes each chunk's bytes as the reader fetches them (hash_read), when the file
 * has no user block: chunk addresses are then file offsets, whichever way a libhdf5 version
 * counts the base. With a user block the digest reads the file itself, as before.
 */
static void hash_as_read(sg_dataset *ds)
{
    hid_t fcpl = H5Fget_create_plist(ds->file);
    hsize_t userblock = 1;
    if (fcpl >= 0) {
        if (H5Pget_userblock(fcpl, &userblock) < 0) userblock = 1;
        H5Pclose(fcpl);
    }
    if (userblock != 0) return;
    sg_h5_reader *rs[3] = {ds->rX, ds->ry, ds->rw};
    for (int i = 0; i < 3; i++)
        if (rs[i]) sg_h5_reader_on_raw(rs[i], hash_read, ds, 0);
}

/*
 * The dry run in the sandboxed child (h5sandbox.c): everything sg_dataset_open parses, plus
 * each member's chunk index. A crash here refuses the file instead of ending the process.
 */
static sg_status open_in_child(void *arg, sg_err *err)
{
    sg_dataset *ds = arg;
    ds->file = sg_h5_open_fd(ds->path, ds->fd, err);
    sg_status rc = ds->file < 0 ? SG_EINPUT : open_members(ds, err);
    /* --max-rows before a row is decoded: the walk below reads the first and the last row,
       which for a set of one 1 GiB compressed chunk row had decoded it all (2.3 GB in the
       child, 4 s) before the limit was checked. */
    if (rc == SG_OK && ds->max_rows > 0 && ds->n > ds->max_rows)
        rc = sg_errf(err, SG_EINPUT, "%s: /X has %lld rows, more than --max-rows %lld", ds->path,
                     (long long)ds->n, (long long)ds->max_rows);
    hid_t ymt = ds->kind == SG_LABELS_INT ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
    if (rc == SG_OK) rc = walk_member(ds, ds->X, ds->rX, ds->d, H5T_NATIVE_FLOAT, err);
    if (rc == SG_OK) rc = walk_member(ds, ds->y, ds->ry, 1, ymt, err);
    if (rc == SG_OK) rc = walk_member(ds, ds->w, ds->rw, 1, H5T_NATIVE_DOUBLE, err);
    return rc;
}

/*
 * A read lease on the set (fcntl F_SETLEASE): the kernel grants it only while no process
 * has the file open for writing (a writable shared mapping counts), and breaks it when one
 * opens it for writing or truncates it; that process then waits until this one closes the
 * file, at most /proc/sys/fs/lease-break-time (45 s by default). The change time alone
 * missed writes through a mapping whose pages were already dirty (no page fault, so no
 * ctime update): a file changed and changed back during a run kept its digest while the
 * rows read differed. A process holding the file writable at open is refused. The break
 * notification goes to SIGURG, ignored by default: the lease's state is read
 * (lease_intact), not signalled. Without the right to a lease (not the file's owner and
 * no CAP_LEASE) or on a file system without leases, the change time is the only check.
 */
/* A network file system's client grants a lease only under a delegation or oplock from the
   server, and says EAGAIN when it holds none (NFSv4 since Linux 5.x, SMB): there EAGAIN does
   not mean another process writes the file, and the change time is the only check. */
static bool network_fs(int fd)
{
    static const unsigned long magic[] = {
        0x6969,     /* NFS */
        0x517B,     /* SMB */
        0xFF534D42, /* CIFS */
        0xFE534D42, /* SMB2 */
        0x00C36400, /* Ceph */
        0x01021997, /* 9P */
        0x65735546, /* FUSE */
        0x5346414F, /* AFS */
    };
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0) return false;
    for (size_t i = 0; i < sizeof magic / sizeof magic[0]; i++)
        if ((unsigned long)sf.f_type == magic[i]) return true;
    return false;
}

static sg_status take_lease(sg_dataset *ds, sg_err *err)
{
    if (fcntl(ds->fd, F_SETSIG, SIGURG) != 0) return SG_OK;
    if (fcntl(ds->fd, F_SETLEASE, F_RDLCK) == 0) {
        ds->leased = true;
        return SG_OK;
    }
    if ((errno == EAGAIN || errno == EBUSY) && !network_fs(ds->fd))
        return sg_errf(err, SG_EINPUT,
                       "%s: the file is open for writing by another process (or mapped writable "
                       "by one); a set that may change while it is read is not evaluated",
                       ds->path);
    return SG_OK; /* EACCES, EINVAL, ENOLCK: no lease here; the change time still checks */
}

/* False once a process opened the file for writing or truncated it since the lease. */
static bool lease_intact(const sg_dataset *ds)
{
    return !ds->leased || fcntl(ds->fd, F_GETLEASE) == F_RDLCK;
}

static sg_status lease_broken(const sg_dataset *ds, sg_err *err)
{
    return sg_errf(err, SG_EINPUT,
                   "%s: another process opened the file for writing while it was read; no "
                   "result from it is trusted",
                   ds->path);
}

sg_status sg_dataset_open_begin(const char *path, sg_dataset **out, sg_err *err)
{
    return sg_dataset_open_begin_max(path, 0, out, err);
}

sg_status sg_dataset_open_begin_max(const char *path, int64_t max_rows, sg_dataset **out,
                                    sg_err *err)
{
    *out = NULL;
    if (strlen(path) >= sizeof((sg_dataset *)0)->path)
        return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    sg_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    strcpy(ds->path, path);
    ds->max_rows = max_rows;
    ds->X = ds->y = ds->w = H5I_INVALID_HID;
    ds->fd = sg_open_regular(path, err);
    if (ds->fd < 0) {
        free(ds);
        return SG_EINPUT;
    }
    sg_status lrc = take_lease(ds, err);
    if (lrc == SG_OK && fstat(ds->fd, &ds->st0) != 0)
        lrc = sg_errf(err, SG_EIO, "%s: cannot stat: %s", path, strerror(errno));
    if (lrc != SG_OK) {
        close(ds->fd);
        free(ds);
        return lrc;
    }
    sg_h5_enter();
    sg_status rc = sg_h5_sandbox_start(path, open_in_child, ds, &ds->check, err);
    sg_h5_leave();
    if (rc) {
        close(ds->fd);
        free(ds);
        return rc;
    }
    ds->opening = true;
    *out = ds;
    return SG_OK;
}

sg_status sg_dataset_open_end(sg_dataset *ds, sg_err *err)
{
    if (!ds->opening) return SG_OK;
    sg_h5_pending *check = ds->check;
    ds->check = NULL;
    ds->opening = false;
    sg_status rc = sg_h5_sandbox_wait(check, err);
    /* The dry run parsed the file as it was; this process parses it again, and a file
       rewritten in between (a crashing one after a sound one) must not reach libhdf5 here.
       A writer that opens it later waits on the lease while this parse runs. */
    if (rc == SG_OK) rc = sg_dataset_check_unchanged(ds, err);
    sg_h5_enter();
    if (rc == SG_OK) {
        ds->file = sg_h5_open_fd(ds->path, ds->fd, err);
        rc = ds->file < 0 ? SG_EINPUT : open_members(ds, err);
    }
    if (rc == SG_OK) hash_as_read(ds);
    if (rc) close_ids(ds);
    sg_h5_leave();
    return rc;
}

sg_status sg_dataset_open(const char *path, sg_dataset **out, sg_err *err)
{
    sg_status rc = sg_dataset_open_begin(path, out, err);
    if (rc == SG_OK && (rc = sg_dataset_open_end(*out, err)) != SG_OK) {
        sg_dataset_close(*out);
        *out = NULL;
    }
    return rc;
}

void sg_dataset_close(sg_dataset *ds)
{
    if (!ds) return;
    sg_h5_sandbox_cancel(ds->check); /* opened but not finished: the child's verdict is moot */
    sg_h5_enter();
    close_ids(ds);
    sg_h5_leave();
    close(ds->fd);
    EVP_MD_CTX_free(ds->hctx);
    sg_free_aligned(ds->hbuf);
    free(ds->scratch);
    free(ds->xd);
    free(ds);
}

#define HASH_BUF (1u << 20)

sg_status sg_dataset_hash_step(sg_dataset *ds, uint64_t bytes, bool to_eof, sg_err *err)
{
    if (ds->hashed) return SG_OK;
    if (!ds->hctx) {
        ds->hctx = EVP_MD_CTX_new();
        ds->hbuf = sg_alloc_huge(HASH_BUF); /* each pread lands here: huge pages */
        if (!ds->hctx || !ds->hbuf || EVP_DigestInit_ex(ds->hctx, EVP_sha256(), NULL) != 1)
            return sg_errf(err, SG_ENOMEM, "%s: cannot start SHA-256", ds->path);
    }
    uint64_t done = 0;
    while (to_eof || done < bytes) {
        size_t want = HASH_BUF;
        if (!to_eof && bytes - done < want) want = (size_t)(bytes - done);
        ssize_t n = pread(ds->fd, ds->hbuf, want, (off_t)ds->hash_off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return sg_errf(err, SG_EIO, "%s: read error while hashing: %s", ds->path,
                           strerror(errno));
        if (n == 0) break;
        EVP_DigestUpdate(ds->hctx, ds->hbuf, (size_t)n);
        ds->hash_off += (uint64_t)n;
        done += (uint64_t)n;
    }
    return SG_OK;
}

/* A gap up to this size in front of a chunk is hashed from the file, so that the chunk's own
   bytes can then be taken as read; a chunk further ahead is left to sg_dataset_hash_step. */
#define HASH_GAP_MAX ((uint64_t)8 << 20)

/*
 * Chunk bytes just fetched from file offset off (sg_h5_raw_fn). When they continue the digest
 * (after at most HASH_GAP_MAX bytes hashed from the file in between), they go into it from
 * memory, so the file is read once instead of twice and the bytes are hashed while they are
 * in cache. The digest stays SHA-256 of the file's bytes in order: every byte goes in exactly
 * once, at its place; bytes already in are skipped; nothing past the size the file had at
 * open is taken from memory (libhdf5 reads zeros past the end of a file).
 */
static sg_status hash_read(void *arg, uint64_t off, const uint8_t *p, size_t len, sg_err *err)
{
    sg_dataset *ds = arg;
    if (!ds->hctx || ds->hashed) return SG_OK; /* no digest started: a plain read */
    const uint64_t size = (uint64_t)ds->st0.st_size;
    if (off >= size) return SG_OK;
    if (len > size - off) len = (size_t)(size - off);
    double t0 = sg_now_seconds();
    if (off > ds->hash_off) {
        if (off - ds->hash_off > HASH_GAP_MAX) return SG_OK;
        sg_status rc = sg_dataset_hash_step(ds, off - ds->hash_off, false, err);
        if (rc != SG_OK) return rc;
        if (ds->hash_off != off) return SG_OK; /* the file ended first */
    }
    if (off + len > ds->hash_off) {
        size_t skip = (size_t)(ds->hash_off - off);
        EVP_DigestUpdate(ds->hctx, p + skip, len - skip);
        ds->hash_off += len - skip;
    }
    ds->hash_in_reads += sg_now_seconds() - t0;
    return SG_OK;
}

uint64_t sg_dataset_hashed_bytes(const sg_dataset *ds)
{
    return ds->hash_off;
}

double sg_dataset_hash_seconds_in_reads(const sg_dataset *ds)
{
    return ds->hash_in_reads;
}

uint64_t sg_dataset_file_bytes(const sg_dataset *ds)
{
    return (uint64_t)ds->st0.st_size;
}

sg_status sg_dataset_sha256(sg_dataset *ds, char hex[65], sg_err *err)
{
    if (!ds->hashed) {
        /* Whatever sg_dataset_hash_step left, up to the end of the file. */
        sg_status rc = sg_dataset_hash_step(ds, 0, true, err);
        if (rc) return rc;
        uint8_t d[32];
        unsigned int mdlen = 0;
        if (EVP_DigestFinal_ex(ds->hctx, d, &mdlen) != 1)
            return sg_errf(err, SG_EINTERNAL, "%s: SHA-256 failed", ds->path);
        sg_hex_encode(d, 32, ds->sha256);
        ds->hashed = true;
        EVP_MD_CTX_free(ds->hctx);
        ds->hctx = NULL;
        sg_free_aligned(ds->hbuf);
        ds->hbuf = NULL;
    }
    memcpy(hex, ds->sha256, 65);
    return SG_OK;
}

sg_status sg_dataset_check_unchanged(const sg_dataset *ds, sg_err *err)
{
    struct stat now;
    if (fstat(ds->fd, &now) != 0)
        return sg_errf(err, SG_EIO, "%s: cannot stat: %s", ds->path, strerror(errno));
    /* Any write changes the inode's ctime, and no caller can set it back; so do a rename
     * over the path or a removal (the link count drops). Reading went on from the bytes
     * that were opened, but a gate that ran while its input changed is refused rather
     * than argued about. */
    if (now.st_size != ds->st0.st_size || now.st_mtim.tv_sec != ds->st0.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != ds->st0.st_mtim.tv_nsec ||
        now.st_ctim.tv_sec != ds->st0.st_ctim.tv_sec ||
        now.st_ctim.tv_nsec != ds->st0.st_ctim.tv_nsec)
        return sg_errf(err, SG_EINPUT,
                       "%s: the file was changed while it was read (written, replaced or "
                       "removed: its size, mtime or ctime moved); no result from it is trusted",
                       ds->path);
    if (!lease_intact(ds)) return lease_broken(ds, err);
    return SG_OK;
}

sg_status sg_dataset_check_model(const sg_dataset *ds, const sg_model *m, sg_err *err)
{
    if (ds->d != m->n_features)
        return sg_errf(err, SG_EINPUT, "%s: /X has %d features but model %s expects %d", ds->path,
                       ds->d, m->path, m->n_features);
    return SG_OK;
}

/* The check runs on the reader thread, which shares the cores with the workers, so it
 * must cost little: a branch-free test of each block's bit patterns (exponent all ones:
 * Inf or NaN; with missing values allowed, Inf only), which the compiler vectorises, and
 * the element loop only for a block that holds a bad value, to name the first one. */
#define FINITE_BLOCK 4096

static sg_status check_finite_f(const sg_dataset *ds, const float *X, int64_t row0, int64_t n,
                          sg_err *err)
{
    const size_t total = (size_t)n * (size_t)ds->d;
    const uint32_t mask = ds->missing_ok ? 0x7fffffffu : 0x7f800000u;
    for (size_t b0 = 0; b0 < total; b0 += FINITE_BLOCK) {
        const size_t b1 = total - b0 < FINITE_BLOCK ? total : b0 + FINITE_BLOCK;
        uint32_t bad = 0;
        for (size_t i = b0; i < b1; i++) {
            uint32_t u;
            memcpy(&u, &X[i], sizeof u);
            bad |= (u & mask) == 0x7f800000u;
        }
        if (!bad) continue;
        for (size_t i = b0; i < b1; i++) {
            if (isfinite(X[i]) || (ds->missing_ok && isnan(X[i]))) continue;
            return sg_errf(err, SG_EINPUT, "%s: /X row %lld column %zu is %s", ds->path,
                           (long long)(row0 + (int64_t)(i / (size_t)ds->d)), i % (size_t)ds->d,
                           isnan(X[i]) ? "NaN" : "infinite (or overflows float32)");
        }
    }
    return SG_OK;
}

static sg_status check_finite_d(const sg_dataset *ds, const char *name, const double *v, int64_t row0,
                          int64_t n, bool nonneg, sg_err *err)
{
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            return sg_errf(err, SG_EINPUT, "%s: %s row %lld is %s", ds->path, name,
                           (long long)(row0 + i), isnan(v[i]) ? "NaN" : "infinite");
        if (nonneg && v[i] < 0)
            return sg_errf(err, SG_EINPUT, "%s: %s row %lld is %g, must be >= 0", ds->path, name,
                           (long long)(row0 + i), v[i]);
    }
    return SG_OK;
}

static sg_status read_labels(sg_dataset *ds, int64_t row0, int64_t n, int32_t *labels, int n_classes,
                       sg_err *err)
{
    if (n > ds->scratch_rows) {
        int64_t *p = realloc(ds->scratch, (size_t)n * sizeof *p);
        if (!p) return sg_errf(err, SG_ENOMEM, "%s: out of memory reading /y", ds->path);
        ds->scratch = p;
        ds->scratch_rows = n;
    }
    const sg_model *cm = n_classes > 0 ? ds->classes_of : NULL;
    if (cm && cm->n_classes != n_classes)
        return sg_errf(err, SG_EINTERNAL, "%s: labels read for %d classes, the model has %d",
                       ds->path, n_classes, cm->n_classes);
    /* With class values, each label is looked up and stored as its index. */
    int64_t lo = n_classes > 0 ? 0 : INT32_MIN, hi = n_classes > 0 ? n_classes - 1 : INT32_MAX;
    if (cm) {
        lo = cm->classes[0];
        hi = cm->classes[n_classes - 1];
    }
    if (cm && ds->class_unfit >= 0)
        return sg_errf(err, SG_EINPUT,
                       "%s: /y is stored as floats of %d significant bits, which cannot hold "
                       "class %d of model %s exactly (store /y as integers)",
                       ds->path, ds->y_digits, cm->classes[ds->class_unfit], cm->path);
    if (ds->kind == SG_LABELS_FLOAT) {
        /* Labels stored as floats (numpy's astype(float), a pandas column): each must be a
           whole number; scikit-learn's metrics compare 1.0 equal to 1. */
        double *v = (double *)(void *)ds->scratch;
        int rc = sg_h5_reader_rows(ds->ry, H5T_NATIVE_DOUBLE, row0, n, v, err);
        if (rc) return rc;
        for (int64_t i = 0; i < n; i++) {
            const int j = v[i] >= (double)lo && v[i] <= (double)hi && v[i] == floor(v[i])
                              ? cm ? sg_class_index(cm, (int64_t)v[i]) : (int)v[i]
                              : -1;
            if (j >= 0) {
                labels[i] = (int32_t)j;
                continue;
            }
            char val[32] = "NaN";
            if (!isnan(v[i])) snprintf(val, sizeof val, "%.17g", v[i]);
            if (cm) return not_a_class(ds, row0 + i, val, err);
            return sg_errf(err, SG_EINPUT,
                           "%s: /y row %lld is %s, not a class label (a whole number in "
                           "%lld..%lld)",
                           ds->path, (long long)(row0 + i), val, (long long)lo, (long long)hi);
        }
        return SG_OK;
    }
    int rc = sg_h5_reader_rows(ds->ry, H5T_NATIVE_INT64, row0, n, ds->scratch, err);
    if (rc) return rc;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = ds->scratch[i];
        const int j = v < lo || v > hi ? -1 : cm ? sg_class_index(cm, v) : (int)v;
        if (j >= 0) {
            labels[i] = (int32_t)j;
            continue;
        }
        char val[32];
        /* HDF5 saturates a uint64 label above INT64_MAX, so that value means "at least". */
        snprintf(val, sizeof val, "%s%lld", v == INT64_MAX ? ">= " : "", (long long)v);
        if (cm) return not_a_class(ds, row0 + i, val, err);
        return sg_errf(err, SG_EINPUT, "%s: /y row %lld has label %s, outside %lld..%lld", ds->path,
                       (long long)(row0 + i), val, (long long)lo, (long long)hi);
    }
    return SG_OK;
}

/* Values of a float64 /X read as doubles at a time, to be narrowed through the cuts. */
#define CUTS_BLOCK ((size_t)1 << 16)

/*
 * A float64 /X for a model that compares in float64: read as doubles a block of rows at a
 * time and narrowed through the model's cuts (sg_f64_cuts_narrow), so that each split
 * decides as in float64. A value that no float32 can stand for is refused, naming it.
 */
static sg_status read_x_cuts(sg_dataset *ds, int64_t row0, int64_t n, float *X, sg_err *err)
{
    const size_t d = (size_t)ds->d;
    const int64_t block = d >= CUTS_BLOCK ? 1 : (int64_t)(CUTS_BLOCK / d);
    const size_t need = (size_t)(n < block ? n : block) * d;
    if (need > ds->xd_cap) {
        free(ds->xd);
        ds->xd_cap = 0;
        if (!(ds->xd = malloc(need * sizeof *ds->xd)))
            return sg_errf(err, SG_ENOMEM, "%s: out of memory reading /X", ds->path);
        ds->xd_cap = need;
    }
    const sg_f64_cuts *c = ds->cuts;
    for (int64_t r = 0; r < n; r += block) {
        const int64_t k = n - r < block ? n - r : block;
        sg_status rc = sg_h5_reader_rows(ds->rX, H5T_NATIVE_DOUBLE, row0 + r, k, ds->xd, err);
        if (rc != SG_OK) return rc;
        for (int64_t i = 0; i < k; i++) {
            const double *x = ds->xd + (size_t)i * d;
            float *out = X + (size_t)(r + i) * d;
            for (int f = 0; f < ds->d; f++) {
                double below, above;
                if (c->start[f] == c->start[f + 1])
                    out[f] = (float)x[f];
                else if (!sg_f64_cuts_narrow(c, f, x[f], &out[f], &below, &above))
                    return sg_errf(err, SG_EINPUT,
                                   "%s: /X row %lld column %d is %.17g, between the thresholds "
                                   "%.17g and %.17g of model %s, which no float32 separates "
                                   "(this HistGradientBoosting model compares in float64, "
                                   "stagegate in float32)",
                                   ds->path, (long long)(row0 + r + i), f, x[f], below, above,
                                   ds->cuts_model);
            }
        }
    }
    return SG_OK;
}

static int read_locked(sg_dataset *ds, int64_t row0, int64_t n, float *X, int32_t *labels,
                       double *targets, double *weights, int n_classes, sg_err *err)
{
    int rc = SG_OK;
    if (X) {
        if (ds->cuts && ds->x_f64)
            rc = read_x_cuts(ds, row0, n, X, err);
        else
            rc = sg_h5_reader_rows(ds->rX, H5T_NATIVE_FLOAT, row0, n, X, err);
        if (!rc && ds->has_missing_value) {
            /* The model's missing value, compared in float32 as XGBoost compares it (so an
               infinite one is missing, not an error); -0.0 == 0.0. */
            const float mv = ds->missing_value;
            const size_t total = (size_t)n * (size_t)ds->d;
            for (size_t i = 0; i < total; i++)
                if (X[i] == mv) X[i] = NAN;
        }
        if (!rc) rc = check_finite_f(ds, X, row0, n, err);
    }
    if (!rc && labels) rc = read_labels(ds, row0, n, labels, n_classes, err);
    if (!rc && targets) {
        rc = sg_h5_reader_rows(ds->ry, H5T_NATIVE_DOUBLE, row0, n, targets, err);
        if (!rc) rc = check_finite_d(ds, "/y", targets, row0, n, false, err);
    }
    if (!rc && weights) {
        if (ds->w < 0) {
            for (int64_t i = 0; i < n; i++)
                weights[i] = 1.0;
        } else {
            rc = sg_h5_reader_rows(ds->rw, H5T_NATIVE_DOUBLE, row0, n, weights, err);
            if (!rc) rc = check_finite_d(ds, "/sample_weight", weights, row0, n, true, err);
        }
    }
    return rc;
}

sg_status sg_dataset_read(sg_dataset *ds, int64_t row0, int64_t n, float *X, int32_t *labels,
                    double *targets, double *weights, int n_classes, sg_err *err)
{
    if (row0 < 0 || n < 0 || row0 > ds->n || n > ds->n - row0)
        return sg_errf(err, SG_EINTERNAL, "%s: rows %lld..%lld requested, the set has %lld",
                       ds->path, (long long)row0, (long long)(row0 + n - 1), (long long)ds->n);
    if (n == 0) return SG_OK;
    sg_h5_enter();
    int rc = read_locked(ds, row0, n, X, labels, targets, weights, n_classes, err);
    sg_h5_leave();
    return rc;
}
