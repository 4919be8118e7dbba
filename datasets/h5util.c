/*
 * HDF5 access discipline for datasets/.
 *
 * Ownership and invariants: a single process-wide mutex (h5_lock) guards every
 * HDF5 call made by this folder. HDF5 identifiers (files, datasets, spaces) are
 * owned by the object that opened them (an sg_dataset, a model load in
 * progress, an sg_pred_writer) and are only used while the lock is held. The
 * Debian package may be built thread-safe or not; the lock makes no
 * assumption, and costs nothing measurable because reads are done in large row
 * blocks. HDF5's automatic error printing is switched off per thread on entry,
 * since thread-safe builds keep that setting per thread.
 */
#include "h5util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local bool h5_quiet;

void sg_h5_enter(void)
{
    pthread_mutex_lock(&h5_lock);
    static bool started;
    if (!started) {
        /* No library shutdown at exit: every file stagegate writes is closed (and synced)
           before its rename, and libhdf5 1.10 crashed in that shutdown closing a file whose
           last write had failed (a full disk, the file size limit), turning exit 2 into a
           segmentation fault. Called before anything starts the library. */
        H5dont_atexit();
        started = true;
    }
    if (!h5_quiet) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        h5_quiet = true;
    }
}

void sg_h5_leave(void)
{
    pthread_mutex_unlock(&h5_lock);
}

typedef struct {
    char first[256];
    bool truncated;
    bool locked; /* another process has it open for writing */
    bool seen;
} walk_state;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    walk_state *s = data;
    if (!s->seen && e->desc) {
        snprintf(s->first, sizeof s->first, "%s", e->desc);
        s->seen = true;
    }
    if (e->desc && strstr(e->desc, "truncated")) s->truncated = true;
    if (e->desc && (strstr(e->desc, "unable to lock file") ||
                    strstr(e->desc, "file is already open for write")))
        s->locked = true;
    return 0;
}

static void walk_errors(walk_state *s)
{
    memset(s, 0, sizeof *s);
    /* Upward starts at the innermost, most specific failure. */
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, s);
}

void sg_h5_last_error(char *buf, size_t len)
{
    walk_state s;
    walk_errors(&s);
    snprintf(buf, len, "%s", s.first);
}

static void open_failure(const char *path, sg_err *err);

/* HDF5 looks for its signature at 0, 512, 1024, 2048, ... (a user block may precede it). */
static bool fd_has_signature(int fd, off_t size)
{
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    for (off_t off = 0; off + 8 <= size; off = off ? off * 2 : 512) {
        uint8_t b[8];
        if (pread(fd, b, 8, off) == 8 && memcmp(b, sig, 8) == 0) return true;
    }
    return false;
}

hid_t sg_h5_open_fd(const char *path, int fd, sg_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        sg_errf(err, SG_EINPUT, "%s: not a regular file", path);
        return H5I_INVALID_HID;
    }
    if (!fd_has_signature(fd, st.st_size)) {
        sg_errf(err, SG_EINPUT, "%s: not an HDF5 file (no HDF5 signature found)", path);
        return H5I_INVALID_HID;
    }
    /*
     * libhdf5 opens files by name. Naming the descriptor's /proc entry opens the very
     * inode the caller opened and hashed, even if the path is renamed over meanwhile;
     * without /proc the path is the only name there is.
     */
    char name[64];
    snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
    struct stat pst;
    const char *open_name = stat(name, &pst) == 0 && pst.st_ino == st.st_ino && pst.st_dev == st.st_dev
                                ? name
                                : path;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* Strong close: closing the file also closes any object an error path left open. */
    if (fapl >= 0) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t f = H5Fopen(open_name, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
    /* Read the error stack before any other HDF5 call clears it. */
    if (f < 0) open_failure(path, err);
    if (fapl >= 0) H5Pclose(fapl);
    return f;
}

/* HDF5 looks for its signature at 0, 512, 1024, 2048, ... (a user block may precede it). */
static bool has_signature(const uint8_t *buf, size_t len)
{
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    for (size_t off = 0; off + 8 <= len; off = off ? off * 2 : 512)
        if (memcmp(buf + off, sig, 8) == 0) return true;
    return false;
}

static void open_failure(const char *path, sg_err *err)
{
    walk_state s;
    walk_errors(&s);
    if (s.truncated)
        sg_errf(err, SG_EINPUT, "%s: HDF5 file is truncated (shorter than its superblock says)",
                path);
    else if (s.locked) /* not corrupt: in use, and what it holds may still change */
        sg_errf(err, SG_EINPUT,
                "%s: HDF5 file is open for writing by another process (or was left marked so "
                "by a writer that crashed: h5clear -s clears that mark); %s",
                path, s.first[0] ? s.first : "locked");
    else
        sg_errf(err, SG_EINPUT, "%s: HDF5 file is corrupt or unreadable (%s)", path,
                s.first[0] ? s.first : "open failed");
}

hid_t sg_h5_open_image(const char *path, const uint8_t *buf, size_t len, sg_err *err)
{
    if (!has_signature(buf, len)) {
        sg_errf(err, SG_EINPUT, "%s: not an HDF5 file (no HDF5 signature found)", path);
        return H5I_INVALID_HID;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) {
        sg_errf(err, SG_EINTERNAL, "%s: cannot create HDF5 file access properties", path);
        return H5I_INVALID_HID;
    }
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t f = H5I_INVALID_HID;
    /* The core driver serves the file from memory; backing_store=0 never writes it back. */
    /*
     * The core driver refuses an image whose name exists on disk, so the image
     * gets a name of its own that no real file is expected to have.
     */
    char name[4200];
    snprintf(name, sizeof name, "%s.in-memory-image.%ld", path, (long)getpid());
    if (H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0 && H5Pset_file_image(fapl, (void *)buf, len) >= 0)
        f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    if (f < 0) open_failure(path, err);
    H5Pclose(fapl);
    return f;
}

bool sg_h5_exists(hid_t loc, const char *name)
{
    return H5Lexists(loc, name, H5P_DEFAULT) > 0;
}

void sg_h5_type_name(hid_t type, char *buf, size_t len)
{
    H5T_class_t c = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    switch (c) {
    case H5T_INTEGER:
        snprintf(buf, len, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", size * 8);
        break;
    case H5T_FLOAT:
        snprintf(buf, len, "float%zu", size * 8);
        break;
    case H5T_STRING:
        snprintf(buf, len, "string");
        break;
    case H5T_COMPOUND:
        snprintf(buf, len, "compound");
        break;
    case H5T_ENUM:
        snprintf(buf, len, "enum (e.g. bool)");
        break;
    case H5T_ARRAY:
        snprintf(buf, len, "array");
        break;
    case H5T_VLEN:
        snprintf(buf, len, "variable-length");
        break;
    case H5T_OPAQUE:
        snprintf(buf, len, "opaque");
        break;
    case H5T_REFERENCE:
        snprintf(buf, len, "reference");
        break;
    default:
        snprintf(buf, len, "unknown type");
        break;
    }
}

/* Opens attribute name on obj when it holds exactly one element. */
static int open_scalar_attr(hid_t obj, const char *name, hid_t *attr, hid_t *type, const char *path,
                            const char *where, sg_err *err)
{
    sg_h5_note("attribute %s%s", where, name);
    htri_t ex = H5Aexists(obj, name);
    if (ex <= 0) return 1;
    *attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (*attr < 0)
        return sg_errf(err, SG_EINPUT, "%s: attribute %s%s cannot be read", path, where, name);
    *type = H5Aget_type(*attr);
    hid_t space = H5Aget_space(*attr);
    hssize_t npoints = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0) H5Sclose(space);
    if (*type < 0 || npoints != 1) {
        if (*type >= 0) H5Tclose(*type);
        H5Aclose(*attr);
        return sg_errf(err, SG_EINPUT, "%s: attribute %s%s must hold a single value", path, where,
                       name);
    }
    /*
     * libhdf5 1.10 copies one element of the attribute's type out of its stored value without
     * comparing the two sizes (a heap over-read the file fuzzer found): compare them here. A
     * variable-length value is stored as a heap reference of at least 12 bytes.
     */
    bool vlen = H5Tget_class(*type) == H5T_VLEN || H5Tis_variable_str(*type) > 0;
    hsize_t need = vlen ? 12 : (hsize_t)H5Tget_size(*type);
    if (H5Aget_storage_size(*attr) < need) {
        H5Tclose(*type);
        H5Aclose(*attr);
        return sg_errf(err, SG_EINPUT,
                       "%s: attribute %s%s stores fewer bytes than its type needs; refused (the "
                       "file is corrupt or crafted)",
                       path, where, name);
    }
    return SG_OK;
}

/* Whether a fixed-length string holds anything but padding after its first NUL. */
static bool has_text_after_nul(const char *s, size_t size)
{
    for (size_t i = strlen(s); i < size; i++)
        if (s[i] != '\0') return true;
    return false;
}

sg_status sg_h5_attr_string(hid_t obj, const char *name, char *buf, size_t len, const char *path,
                      const char *where, sg_err *err)
{
    hid_t attr, type;
    int rc = open_scalar_attr(obj, name, &attr, &type, path, where, err);
    if (rc != SG_OK) return rc;
    if (H5Tget_class(type) != H5T_STRING) {
        char tn[64];
        sg_h5_type_name(type, tn, sizeof tn);
        H5Tclose(type);
        H5Aclose(attr);
        return sg_errf(err, SG_EINPUT, "%s: attribute %s%s is %s, expected a string", path, where,
                       name, tn);
    }
    hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mem, H5Tget_cset(type));
    rc = SG_OK;
    const bool variable = H5Tis_variable_str(type) > 0;
    const bool space_padded = !variable && H5Tget_strpad(type) == H5T_STR_SPACEPAD;
    if (variable) {
        char *s = NULL;
        H5Tset_size(mem, H5T_VARIABLE);
        if (H5Aread(attr, mem, &s) < 0 || !s)
            rc = sg_errf(err, SG_EINPUT, "%s: attribute %s%s cannot be read", path, where, name);
        else
            sg_utf8_copy(buf, len, s);
        if (s) H5free_memory(s);
    } else {
        /* Read as stored (no conversion, which stops at the first NUL), NUL-terminated here. */
        size_t size = H5Tget_size(type);
        char *tmp = calloc(size + 1, 1);
        if (!tmp)
            rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
        else if (H5Aread(attr, type, tmp) < 0)
            rc = sg_errf(err, SG_EINPUT, "%s: attribute %s%s cannot be read", path, where, name);
        else if (has_text_after_nul(tmp, size))
            /* "binary\0xx": C reads "binary", h5py and numpy the whole value. */
            rc = sg_errf(err, SG_EINPUT, "%s: attribute %s%s has a NUL byte inside its text",
                         path, where, name);
        else
            sg_utf8_copy(buf, len, tmp);
        free(tmp);
    }
    H5Tclose(mem);
    H5Tclose(type);
    H5Aclose(attr);
    if (rc == SG_OK && space_padded) {
        /* Space-padded fixed strings (Fortran style) compare equal to their trimmed text. Only
           those: "relu " in any other string is not "relu" to h5py or numpy, so it is not
           here either (two readers must not see two values). */
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == ' ')
            buf[--n] = '\0';
    }
    return rc;
}

sg_status sg_h5_attr_int(hid_t obj, const char *name, int64_t *value, const char *path, const char *where,
                   sg_err *err)
{
    hid_t attr, type;
    int rc = open_scalar_attr(obj, name, &attr, &type, path, where, err);
    if (rc != SG_OK) return rc;
    if (H5Tget_class(type) != H5T_INTEGER) {
        char tn[64];
        sg_h5_type_name(type, tn, sizeof tn);
        H5Tclose(type);
        H5Aclose(attr);
        return sg_errf(err, SG_EINPUT, "%s: attribute %s%s is %s, expected an integer", path, where,
                       name, tn);
    }
    /* An unsigned value past INT64_MAX would be read clamped: name the stored value. */
    uint64_t u = 0;
    if (H5Tget_sign(type) == H5T_SGN_NONE && H5Tget_size(type) >= 8) {
        if (H5Aread(attr, H5T_NATIVE_UINT64, &u) < 0)
            rc = sg_errf(err, SG_EINPUT, "%s: attribute %s%s cannot be read", path, where, name);
        else if (u > (uint64_t)INT64_MAX)
            rc = sg_errf(err, SG_EINPUT, "%s: attribute %s%s is %llu, out of range", path, where,
                         name, (unsigned long long)u);
        else
            *value = (int64_t)u;
    } else if (H5Aread(attr, H5T_NATIVE_INT64, value) < 0) {
        rc = sg_errf(err, SG_EINPUT, "%s: attribute %s%s cannot be read", path, where, name);
    }
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

sg_status sg_h5_write_attr_string(hid_t obj, const char *name, const char *value)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = attr >= 0 ? H5Awrite(attr, type, &value) : -1;
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    return st < 0 ? SG_EIO : SG_OK;
}

sg_status sg_h5_write_attr_int(hid_t obj, const char *name, int64_t value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = attr >= 0 ? H5Awrite(attr, H5T_NATIVE_INT64, &value) : -1;
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    return st < 0 ? SG_EIO : SG_OK;
}

sg_status sg_h5_check_links(hid_t file, const char *name, const char *path, sg_err *err)
{
    char prefix[1024];
    size_t len = strlen(name);
    if (len >= sizeof prefix) return sg_errf(err, SG_EINPUT, "%s: object name too long", path);
    for (size_t i = 1; i <= len; i++) {
        if (i < len && name[i] != '/') continue;
        memcpy(prefix, name, i);
        prefix[i] = '\0';
        sg_h5_note("%s", prefix);
        H5L_info_t info;
        if (H5Lget_info(file, prefix, &info, H5P_DEFAULT) < 0)
            return sg_errf(err, SG_EINPUT, "%s: %s is missing", path, prefix);
        if (info.type != H5L_TYPE_HARD)
            return sg_errf(err, SG_EINPUT,
                           "%s: %s is %s link, not an object stored in this file; refused", path,
                           prefix,
                           info.type == H5L_TYPE_EXTERNAL ? "an external"
                           : info.type == H5L_TYPE_SOFT   ? "a soft"
                                                          : "a user-defined");
    }
    return SG_OK;
}

static bool filter_allowed(H5Z_filter_t id)
{
    /* Only filters h5chunks.c undoes itself: libhdf5's filter code never sees our input. */
    return id == H5Z_FILTER_DEFLATE || id == H5Z_FILTER_SHUFFLE || id == H5Z_FILTER_FLETCHER32;
}

/*
 * Whether a compact or contiguous dataset's stored bytes cover its shape: libhdf5 1.10 reads
 * the shape's worth from a compact dataset's stored value without comparing (a heap
 * over-read the file fuzzer found). An unallocated contiguous dataset (0 bytes) reads as its
 * fill value.
 */
static bool storage_holds_extent(hid_t ds, H5D_layout_t layout)
{
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    hssize_t npoints = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    size_t es = type >= 0 ? H5Tget_size(type) : 0;
    bool vlen = type >= 0 && (H5Tget_class(type) == H5T_VLEN || H5Tis_variable_str(type) > 0);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (npoints < 0 || es == 0) return false;
    if (vlen) return true; /* never read as data: the loaders refuse the type */
    hsize_t need;
    if (__builtin_mul_overflow((hsize_t)npoints, (hsize_t)es, &need)) return false;
    hsize_t have = H5Dget_storage_size(ds);
    return have >= need || (layout == H5D_CONTIGUOUS && have == 0);
}

static sg_status check_storage(hid_t ds, const char *name, const char *path, sg_err *err)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0)
        return sg_errf(err, SG_EINPUT, "%s: %s: cannot read its storage layout", path, name);
    int rc = SG_OK;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    int n_ext = H5Pget_external_count(dcpl);
    if ((layout == H5D_COMPACT || layout == H5D_CONTIGUOUS) && n_ext == 0 &&
        !storage_holds_extent(ds, layout)) {
        H5Pclose(dcpl);
        return sg_errf(err, SG_EINPUT,
                       "%s: %s stores fewer bytes than its shape and type need; refused (the "
                       "file is corrupt or crafted)",
                       path, name);
    }
    if (layout == H5D_VIRTUAL)
        rc = sg_errf(err, SG_EINPUT,
                     "%s: %s is a virtual dataset (its data lives in other files); refused", path,
                     name);
    else if (n_ext != 0) {
        char file[256] = "?";
        off_t off;
        hsize_t size;
        if (n_ext > 0) H5Pget_external(dcpl, 0, sizeof file, file, &off, &size);
        rc = sg_errf(err, SG_EINPUT,
                     "%s: %s keeps its data in external file '%s', which the file's digest does "
                     "not cover; refused",
                     path, name, file);
    } else {
        int nf = H5Pget_nfilters(dcpl);
        for (int i = 0; i < nf && rc == SG_OK; i++) {
            unsigned flags;
            size_t nelem = 0;
            char fname[64] = "";
            H5Z_filter_t id =
                H5Pget_filter2(dcpl, (unsigned)i, &flags, &nelem, NULL, sizeof fname, fname, NULL);
            if (!filter_allowed(id))
                rc = sg_errf(err, SG_EINPUT,
                             "%s: %s uses HDF5 filter %d (%s%s%s), which stagegate does not "
                             "accept (deflate, shuffle and fletcher32 only)",
                             path, name, (int)id, fname[0] ? "'" : "", fname[0] ? fname : "unnamed",
                             fname[0] ? "'" : "");
        }
    }
    H5Pclose(dcpl);
    return rc;
}

sg_status sg_h5_check_stored(hid_t ds, const char *name, const char *path, sg_err *err)
{
    hid_t dcpl = H5Dget_create_plist(ds), space = H5Dget_space(ds);
    hsize_t dims[H5S_MAX_RANK], chunk[H5S_MAX_RANK];
    int rank = space >= 0 ? H5Sget_simple_extent_dims(space, dims, NULL) : -1;
    H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    sg_status rc = SG_OK;
    hsize_t elems = 1;
    bool big = false;
    for (int i = 0; i < rank; i++)
        big |= __builtin_mul_overflow(elems, dims[i], &elems);
    if (rank < 0 || layout == H5D_LAYOUT_ERROR) {
        rc = sg_errf(err, SG_EINPUT, "%s: %s: cannot read its shape or storage layout", path, name);
    } else if (elems == 0 && !big) {
        /* nothing to store */
    } else if (layout == H5D_CONTIGUOUS) {
        if (H5Dget_storage_size(ds) == 0)
            rc = sg_errf(err, SG_EINPUT,
                         "%s: %s declares %llu rows but the file stores none of them (rows never "
                         "written are not data)",
                         path, name, (unsigned long long)dims[0]);
    } else if (layout == H5D_CHUNKED) {
        hsize_t want = 1, have = 0;
        bool ok = H5Pget_chunk(dcpl, rank, chunk) == rank;
        for (int i = 0; ok && i < rank; i++)
            ok = chunk[i] > 0 &&
                 !__builtin_mul_overflow(want, dims[i] / chunk[i] + (dims[i] % chunk[i] != 0), &want);
        if (!ok)
            rc = sg_errf(err, SG_EINPUT,
                         "%s: %s declares %llu rows in more chunks than a file can hold", path,
                         name, (unsigned long long)dims[0]);
        else if (sg_h5_note("the chunk index of %s", name), H5Dget_num_chunks(ds, space, &have) < 0)
            rc = sg_errf(err, SG_EINPUT, "%s: %s: its chunk index cannot be read", path, name);
        else if (have < want)
            rc = sg_errf(err, SG_EINPUT,
                         "%s: %s declares %llu rows in %llu chunks but the file stores %llu of "
                         "them (rows never written are not data)",
                         path, name, (unsigned long long)dims[0], (unsigned long long)want,
                         (unsigned long long)have);
    }
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    return rc;
}

sg_status sg_h5_check_in_file(hid_t ds, const char *name, const char *path, sg_err *err)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    const bool contiguous = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (!contiguous) return SG_OK; /* chunks are bounded one by one as they are read */
    const hsize_t size = H5Dget_storage_size(ds);
    const haddr_t off = H5Dget_offset(ds);
    if (size == 0 || off == HADDR_UNDEF) return SG_OK; /* sg_h5_check_stored says "none" */
    hid_t fid = H5Iget_file_id(ds);
    hsize_t file_size = 0;
    const bool known = fid >= 0 && H5Fget_filesize(fid, &file_size) >= 0;
    if (fid >= 0) H5Fclose(fid);
    if (!known)
        return sg_errf(err, SG_EINPUT, "%s: %s: the file's size cannot be read", path, name);
    if (off > file_size || size > file_size - off)
        return sg_errf(err, SG_EINPUT,
                       "%s: %s is stored at bytes %llu..%llu, past the end of the %llu-byte file "
                       "(what lies past it would read as zeros); refused",
                       path, name, (unsigned long long)off, (unsigned long long)(off + size - 1),
                       (unsigned long long)file_size);
    return SG_OK;
}

hid_t sg_h5_open_dataset(hid_t file, const char *name, hid_t dapl, const char *path, sg_err *err)
{
    if (sg_h5_check_links(file, name, path, err) != SG_OK) return H5I_INVALID_HID;
    sg_h5_note("%s", name);
    hid_t ds = H5Dopen2(file, name, dapl);
    if (ds < 0) {
        sg_errf(err, SG_EINPUT, "%s: %s is not a dataset", path, name);
        return H5I_INVALID_HID;
    }
    if (check_storage(ds, name, path, err) != SG_OK) {
        H5Dclose(ds);
        return H5I_INVALID_HID;
    }
    return ds;
}
