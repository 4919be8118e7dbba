/*
 * Reading HDF5 datasets without handing untrusted chunks to libhdf5's chunk reader and
 * filter pipeline.
 *
 * libhdf5 trusts what its filters return: a deflate chunk relabelled as shuffle in the
 * file's filter-pipeline message made it copy a whole chunk's worth of bytes out of the
 * shorter compressed buffer (a heap over-read). So for a dataset with filters, nothing
 * here calls H5Dread: each chunk's stored bytes are fetched raw with H5Dread_chunk (its
 * size read from the chunk index first and bounded), and the filters are undone here --
 * deflate with zlib, shuffle and Fletcher-32 by hand -- with every size checked: the
 * pipeline must end in exactly one chunk's bytes, or the read is refused naming the file,
 * the dataset and the chunk. libhdf5 then only converts element types in memory
 * (H5Tconvert), on buffers sized here. Chunked datasets without filters are read the same
 * way (their chunks must store exactly one chunk's bytes): libhdf5 also trusts the chunk
 * index's sizes there, and copied a whole chunk out of a smaller buffer when one was patched
 * (found by the file fuzzer). Contiguous and compact datasets are read with H5Dread, after
 * sg_h5_open_dataset checked that their stored size covers their shape.
 *
 * Streaming: a reader keeps one decoded chunk row (every chunk across the columns, in the
 * caller's memory type), so a row range that ends mid-chunk does not decode that chunk
 * again for the next range. Memory is one chunk row plus two chunk buffers, never the
 * whole dataset.
 *
 * Ownership: a reader belongs to the object that made it (a dataset member or one model
 * load) and borrows its HDF5 dataset id; it is only used under sg_h5_enter (h5util.c).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "h5util.h"

/* A chunk and one decoded chunk row are each bounded (HDF5 itself caps a chunk at 4 GiB). */
#define CHUNK_MAX_BYTES ((size_t)1 << 30)
#define SLAB_MAX_BYTES ((size_t)1 << 30)
#define MAX_FILTERS 32 /* H5Z_MAX_NFILTERS */
/* Values a contiguous float64 dataset read as float32 goes through at a time (1 MiB). */
#define NARROW_BLOCK ((size_t)1 << 17)
/* libhdf5 1.10's H5Dget_chunk_info_by_coord walks the whole chunk index for each chunk, so a
   set of many small chunks took time quadratic in their number (64,000 chunks, 55 s).
   Beyond this many, chunks are located with H5Dget_chunk_storage_size, a lookup in the
   index, which gives no address: their bytes then do not feed the digest as they are read,
   and the digest reads the file itself (sg_dataset_hash_step). */
#define COORD_LOOKUP_MAX 4096

struct sg_h5_reader {
    hid_t ds, ftype; /* ds borrowed; ftype owned (the file's element type) */
    const char *path, *name;
    int rank;
    hsize_t dims[2], chunk[2]; /* rank 1: dims[1] = chunk[1] = 1 */
    size_t es;                 /* file element size */
    int nf;
    H5Z_filter_t filter[MAX_FILTERS];
    bool chunked; /* read chunk by chunk here; otherwise H5Dread */
    bool by_size; /* many chunks: located by H5Dget_chunk_storage_size (see decode_chunk) */
    bool edge_raw;  /* H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS: partial edge chunks unfiltered */
    bool no_unwritten; /* a chunk never written is refused, not read as the fill value */
    size_t chunk_elems, chunk_bytes;
    uint8_t *fill; /* es bytes: the value of a chunk never written */
    uint8_t *buf[2];
    size_t buf_cap;
    uint8_t *slab; /* decoded chunk row slab_row, as slab_type */
    size_t slab_cap;
    int64_t slab_row;
    hid_t slab_type;
    sg_h5_raw_fn raw_fn; /* sg_h5_reader_on_raw */
    void *raw_ctx;
    uint64_t raw_base;
};

void sg_h5_reader_on_raw(sg_h5_reader *r, sg_h5_raw_fn fn, void *ctx, uint64_t base)
{
    if (r->by_size) return; /* no chunk addresses (COORD_LOOKUP_MAX) */
    r->raw_fn = fn;
    r->raw_ctx = ctx;
    r->raw_base = base;
}

static sg_status fail(const sg_h5_reader *r, sg_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static sg_status fail(const sg_h5_reader *r, sg_err *err, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sg_errf(err, SG_EINPUT, "%s: %s %s; refused (the file is corrupt or crafted)", r->path,
                   r->name, what);
}

void sg_h5_reader_free(sg_h5_reader *r)
{
    if (!r) return;
    if (r->ftype >= 0) H5Tclose(r->ftype);
    free(r->fill);
    sg_free_aligned(r->buf[0]);
    sg_free_aligned(r->buf[1]);
    sg_free_aligned(r->slab);
    free(r);
}

/* Filter list and chunk shape of a chunked dataset, each checked. */
static sg_status read_pipeline(sg_h5_reader *r, hid_t dcpl, sg_err *err)
{
    r->nf = H5Pget_nfilters(dcpl);
    if (r->nf < 0 || r->nf > MAX_FILTERS)
        return fail(r, err, "has an unreadable filter pipeline (%d filters)", r->nf);
    r->chunked = H5Pget_layout(dcpl) == H5D_CHUNKED;
    if (r->nf > 0 && !r->chunked) return fail(r, err, "has filters but is not stored in chunks");
    if (!r->chunked) return SG_OK;
    for (int i = 0; i < r->nf; i++) {
        unsigned flags, cd[8] = {0};
        size_t ncd = 8;
        r->filter[i] = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
        if (r->filter[i] == H5Z_FILTER_SHUFFLE && (ncd < 1 || cd[0] != r->es))
            return fail(r, err,
                        "has a shuffle filter for %u-byte elements, but its elements have %zu "
                        "bytes",
                        ncd ? cd[0] : 0, r->es);
        if (r->filter[i] != H5Z_FILTER_DEFLATE && r->filter[i] != H5Z_FILTER_SHUFFLE &&
            r->filter[i] != H5Z_FILTER_FLETCHER32)
            return fail(r, err, "uses HDF5 filter %d (deflate, shuffle and fletcher32 only)",
                        (int)r->filter[i]);
    }
    /* A layout option stores the partial chunks at the dataset's edges without running the
       filters, though their filter mask says none was skipped: libhdf5 decides by this flag. */
    unsigned opts = 0;
    if (H5Pget_chunk_opts(dcpl, &opts) < 0) return fail(r, err, "has unreadable chunk options");
    r->edge_raw = (opts & H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS) != 0;
    /* The order h5py and libhdf5's own setters give (shuffle, deflate, Fletcher-32 last) is
       the one decoded here, each step sized to one chunk: another legal order (a checksum
       before compression, shuffle after it) is refused as unsupported, not as corrupt. */
    static const H5Z_filter_t order[] = {H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE,
                                         H5Z_FILTER_FLETCHER32};
    for (int i = 0, at = 0; i < r->nf; i++) {
        while (at < 3 && order[at] != r->filter[i])
            at++;
        if (at == 3)
            return sg_errf(err, SG_EINPUT,
                           "%s: %s applies its filters in an order stagegate does not decode "
                           "(filter %d of %d is %s); write it with shuffle, then gzip, then "
                           "fletcher32 (h5py's order)",
                           r->path, r->name, i + 1, r->nf,
                           r->filter[i] == H5Z_FILTER_SHUFFLE   ? "shuffle"
                           : r->filter[i] == H5Z_FILTER_DEFLATE ? "deflate"
                                                                : "fletcher32");
        at++;
    }
    hsize_t c[2] = {1, 1};
    if (H5Pget_chunk(dcpl, 2, c) != r->rank || c[0] == 0 || c[1] == 0)
        return fail(r, err, "has an invalid chunk shape");
    r->chunk[0] = c[0];
    r->chunk[1] = r->rank == 2 ? c[1] : 1;
    if (__builtin_mul_overflow((size_t)r->chunk[0], (size_t)r->chunk[1], &r->chunk_elems) ||
        __builtin_mul_overflow(r->chunk_elems, r->es, &r->chunk_bytes) ||
        r->chunk_bytes > CHUNK_MAX_BYTES)
        return fail(r, err, "has chunks of %llu x %llu elements (more than %zu MiB each)",
                    (unsigned long long)r->chunk[0], (unsigned long long)r->chunk[1],
                    CHUNK_MAX_BYTES >> 20);
    const hsize_t across = (r->dims[0] + r->chunk[0] - 1) / r->chunk[0],
                  down = r->rank == 2 ? (r->dims[1] + r->chunk[1] - 1) / r->chunk[1] : 1;
    r->by_size = across > COORD_LOOKUP_MAX || across * down > COORD_LOOKUP_MAX;
    r->fill = calloc(1, r->es);
    if (!r->fill) return sg_errf(err, SG_ENOMEM, "%s: out of memory", r->path);
    H5D_fill_value_t defined;
    if (H5Pfill_value_defined(dcpl, &defined) >= 0 && defined == H5D_FILL_VALUE_USER_DEFINED &&
        H5Pget_fill_value(dcpl, r->ftype, r->fill) < 0)
        memset(r->fill, 0, r->es);
    return SG_OK;
}

sg_status sg_h5_reader_new(hid_t ds, const char *path, const char *name, sg_h5_reader **out,
                           sg_err *err)
{
    *out = NULL;
    sg_h5_reader *r = calloc(1, sizeof *r);
    if (!r) return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    r->ds = ds;
    r->path = path;
    r->name = name;
    r->slab_row = -1;
    r->slab_type = H5I_INVALID_HID;
    r->ftype = H5Dget_type(ds);
    hid_t space = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
    r->rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    r->dims[1] = 1;
    sg_status rc = SG_OK;
    if (r->ftype < 0 || dcpl < 0 || (r->rank != 1 && r->rank != 2))
        rc = fail(r, err, "has an unreadable type, layout or shape");
    else if (H5Sget_simple_extent_dims(space, r->dims, NULL) < 0 ||
             (r->es = H5Tget_size(r->ftype)) == 0)
        rc = fail(r, err, "has an unreadable shape or element size");
    if (rc == SG_OK) rc = read_pipeline(r, dcpl, err);
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (rc != SG_OK) {
        sg_h5_reader_free(r);
        return rc;
    }
    *out = r;
    return SG_OK;
}

void sg_h5_reader_refuse_unwritten(sg_h5_reader *r)
{
    r->no_unwritten = true;
}

static sg_status grow(uint8_t **p, size_t *cap, size_t need, const sg_h5_reader *r, sg_err *err)
{
    if (need <= *cap) return SG_OK;
    /* Scratch: nothing in it is kept. Huge pages where it is large (an X chunk is often
       1 MiB), as its first touch is on the reader's path (sg_alloc_huge). */
    sg_free_aligned(*p);
    *p = NULL;
    *cap = 0;
    uint8_t *q = sg_alloc_huge(need);
    if (!q) return sg_errf(err, SG_ENOMEM, "%s: out of memory reading %s", r->path, r->name);
    *p = q;
    *cap = need;
    return SG_OK;
}

/* HDF5's Fletcher-32 (H5_checksum_fletcher32): 16-bit big-endian words, odd byte padded. */
static uint32_t fletcher32(const uint8_t *d, size_t len)
{
    uint32_t s1 = 0, s2 = 0;
    for (size_t n = len / 2; n > 0;) {
        size_t t = n > 360 ? 360 : n;
        n -= t;
        for (; t > 0; t--, d += 2) {
            s1 += (uint32_t)d[0] << 8 | d[1];
            s2 += s1;
        }
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    if (len % 2) {
        s1 += (uint32_t)d[0] << 8;
        s2 += s1;
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    s1 = (s1 & 0xffff) + (s1 >> 16);
    s2 = (s2 & 0xffff) + (s2 >> 16);
    return s2 << 16 | s1;
}

/* The chunk's place for messages: "chunk at row R" (and column C for rank 2). */
static const char *where(const sg_h5_reader *r, const hsize_t off[2], char *buf, size_t len)
{
    if (r->rank == 2)
        snprintf(buf, len, "chunk at row %llu, column %llu", (unsigned long long)off[0],
                 (unsigned long long)off[1]);
    else
        snprintf(buf, len, "chunk at row %llu", (unsigned long long)off[0]);
    return buf;
}

/* Undoes filter i on *len bytes of in into out (capacity buf_cap); returns its output. */
static sg_status undo_filter(sg_h5_reader *r, int i, const hsize_t off[2], uint8_t *in,
                             uint8_t *out, size_t *len, uint8_t **result, sg_err *err)
{
    char at[96];
    *result = out;
    switch (r->filter[i]) {
    case H5Z_FILTER_FLETCHER32: {
        if (*len < 4) return fail(r, err, "%s is too short for its checksum", where(r, off, at, 96));
        *len -= 4;
        const uint8_t *s = in + *len;
        uint32_t stored = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
                          (uint32_t)s[3] << 24;
        uint32_t sum = fletcher32(in, *len);
        /* Files from HDF5 before 1.6.3 store the sum with each 16-bit half byte-swapped. */
        uint32_t swapped = (sum & 0x00ff00ffu) << 8 | (sum & 0xff00ff00u) >> 8;
        if (stored != sum && stored != swapped)
            return fail(r, err, "%s fails its Fletcher-32 checksum", where(r, off, at, 96));
        *result = in;
        return SG_OK;
    }
    case H5Z_FILTER_DEFLATE: {
        z_stream z = {0};
        if (inflateInit(&z) != Z_OK)
            return sg_errf(err, SG_ENOMEM, "%s: out of memory reading %s", r->path, r->name);
        z.next_in = in;
        z.avail_in = (uInt)*len;
        z.next_out = out;
        z.avail_out = (uInt)r->chunk_bytes; /* never more than one chunk */
        int zr = inflate(&z, Z_FINISH);
        size_t got = z.total_out;
        bool full = z.avail_out == 0;
        inflateEnd(&z);
        if (zr != Z_STREAM_END)
            return fail(r, err, "%s %s", where(r, off, at, 96),
                        zr == Z_DATA_ERROR ? "is not valid deflate data"
                        : full             ? "inflates to more than one chunk's bytes"
                                           : "is truncated deflate data");
        *len = got;
        return SG_OK;
    }
    case H5Z_FILTER_SHUFFLE: {
        /* A shuffle always sees a whole chunk: any other length means the pipeline lies. */
        if (*len != r->chunk_bytes)
            return fail(r, err, "%s gives the shuffle filter %zu bytes, but a chunk holds %zu",
                        where(r, off, at, 96), *len, r->chunk_bytes);
        const size_t es = r->es, n = r->chunk_elems;
        for (size_t b = 0; b < es; b++) {
            const uint8_t *src = in + b * n;
            uint8_t *dst = out + b;
            for (size_t k = 0; k < n; k++)
                dst[k * es] = src[k];
        }
        return SG_OK;
    }
    }
    return fail(r, err, "uses HDF5 filter %d", (int)r->filter[i]);
}

/*
 * Decodes the chunk at off into one of the reader's buffers (*out, chunk_bytes of the
 * file type, with room to convert in place to a memory type of ms bytes). direct, when
 * not NULL, is chunk_bytes of the caller's memory that may take an unfiltered chunk as it
 * is stored (then *out == direct), saving a copy on the reader thread.
 */
static sg_status decode_chunk(sg_h5_reader *r, const hsize_t off[2], size_t ms, uint8_t *direct,
                              uint8_t **out, sg_err *err)
{
    char at[96];
    hsize_t stored = 0;
    sg_h5_note("%s %s", r->name, where(r, off, at, 96));
    unsigned mask0 = 0;
    haddr_t addr = HADDR_UNDEF;
    if (r->by_size) {
        /* A chunk never written stores no bytes: its address stays undefined (the fill). */
        if (H5Dget_chunk_storage_size(r->ds, off, &stored) < 0)
            return fail(r, err, "%s cannot be found in the chunk index", where(r, off, at, 96));
        if (stored > 0) addr = 0; /* somewhere in the file: only its bytes are needed */
    } else if (H5Dget_chunk_info_by_coord(r->ds, off, &mask0, &addr, &stored) < 0) {
        return fail(r, err, "%s cannot be found in the chunk index", where(r, off, at, 96));
    }
    /* Deflate is optional in HDF5: a chunk it cannot shrink is stored as it is. */
    if (stored > 2 * (hsize_t)r->chunk_bytes + 64)
        return fail(r, err, "%s stores %llu bytes, more than its filters make of a %zu-byte chunk",
                    where(r, off, at, 96), (unsigned long long)stored, r->chunk_bytes);
    size_t conv = r->chunk_elems * (ms > r->es ? ms : r->es);
    size_t need = (size_t)stored > conv ? (size_t)stored : conv;
    if (need > r->buf_cap) {
        size_t cap = r->buf_cap;
        sg_status rc = grow(&r->buf[0], &cap, need, r, err);
        if (rc == SG_OK) rc = grow(&r->buf[1], &r->buf_cap, need, r, err);
        if (rc != SG_OK) return rc;
    }
    if (addr == HADDR_UNDEF && r->no_unwritten)
        return sg_errf(err, SG_EINPUT,
                       "%s: %s %s was never written (rows never written are not data); refused",
                       r->path, r->name, where(r, off, at, 96));
    if (addr == HADDR_UNDEF) { /* never written: the fill value, as libhdf5 gives */
        for (size_t k = 0; k < r->chunk_elems; k++)
            memcpy(r->buf[0] + k * r->es, r->fill, r->es);
        *out = r->buf[0];
        return SG_OK;
    }
    uint32_t mask = 0;
    if (stored == 0) /* an index entry with no bytes: nothing to fetch, and no chunk either */
        return fail(r, err, "%s stores 0 bytes, but a chunk holds %zu", where(r, off, at, 96),
                    r->chunk_bytes);
    /* The filters this chunk went through: none for a partial edge chunk under edge_raw. */
    const bool edge = off[0] + r->chunk[0] > r->dims[0] ||
                      (r->rank == 2 && off[1] + r->chunk[1] > r->dims[1]);
    const int nf = r->edge_raw && edge ? 0 : r->nf;
    /* Only a chunk whose index entry says exactly one chunk's bytes is read into direct, so
       libhdf5 writes no more than the caller's memory holds. */
    uint8_t *into = direct && nf == 0 && stored == (hsize_t)r->chunk_bytes ? direct : r->buf[0];
    if (H5Dread_chunk(r->ds, H5P_DEFAULT, off, &mask, into) < 0) {
        char why[256];
        sg_h5_last_error(why, sizeof why);
        return fail(r, err, "%s cannot be read (%s)", where(r, off, at, 96),
                    why[0] ? why : "read failed");
    }
    uint8_t *cur = into;
    size_t len = (size_t)stored;
    if (r->raw_fn) {
        sg_status rc = r->raw_fn(r->raw_ctx, r->raw_base + (uint64_t)addr, into, len, err);
        if (rc != SG_OK) return rc;
    }
    for (int i = nf - 1; i >= 0; i--) {
        if (mask & (1u << i)) continue; /* this filter was skipped when the chunk was written */
        uint8_t *next;
        sg_status rc = undo_filter(r, i, off, cur, cur == r->buf[0] ? r->buf[1] : r->buf[0], &len,
                                   &next, err);
        if (rc != SG_OK) return rc;
        cur = next;
    }
    if (len != r->chunk_bytes)
        return fail(r, err, "%s %s %zu bytes, but a chunk holds %zu", where(r, off, at, 96),
                    nf ? "decodes to" : "stores", len, r->chunk_bytes);
    *out = cur;
    return SG_OK;
}

/*
 * Whether reading as memtype narrows the file's 8-byte floats, or its integers, to float32.
 * Then they are converted to native doubles first (a byte swap at most; integers exactly, up
 * to 2^53 in magnitude) and narrowed here, with the C cast (round to nearest even, subnormals
 * kept), as numpy's astype(np.float32) does: libhdf5's generic conversion, which it uses for a
 * big-endian float64, rounds ties away and loses subnormal results, so the same values stored
 * big-endian gave other float32 inputs than little-endian. 2-byte floats widen exactly.
 */
static bool narrows(const sg_h5_reader *r, hid_t memtype)
{
    const H5T_class_t c = H5Tget_class(r->ftype);
    return ((c == H5T_FLOAT && r->es != 4) || c == H5T_INTEGER) &&
           H5Tequal(memtype, H5T_NATIVE_FLOAT) > 0;
}

/* Past 2^53 in magnitude an integer may round on its way to double, and rounding it again to
   float32 can then give another value than rounding it once: such values are refused. */
#define EXACT_INT_MAX 9007199254740992.0

/*
 * n rows of w doubles (row stride sstride) to floats (row stride dstride). With ints (the
 * file holds integers), false at the first value past EXACT_INT_MAX, its place in *at_row and
 * *at_col, before anything of its row is written.
 */
static bool narrow_rows(const double *src, size_t sstride, float *dst, size_t dstride, size_t n,
                        size_t w, bool ints, size_t *at_row, size_t *at_col)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; ints && k < w; k++)
            if (fabs(src[i * sstride + k]) > EXACT_INT_MAX) {
                *at_row = i;
                *at_col = k;
                return false;
            }
        for (size_t k = 0; k < w; k++)
            dst[i * dstride + k] = (float)src[i * sstride + k];
    }
    return true;
}

static sg_status inexact_int(const sg_h5_reader *r, uint64_t row, uint64_t col, sg_err *err)
{
    return sg_errf(err, SG_EINPUT,
                   "%s: %s row %llu column %llu holds an integer beyond 2^53 in magnitude, which "
                   "stagegate does not convert to float32 (store such features as float32)",
                   r->path, r->name, (unsigned long long)row, (unsigned long long)col);
}

/*
 * Decodes chunk row ci (every chunk across) as memtype into dst, or into the reader's slab
 * (kept for the next read) when dst is NULL.
 */
static sg_status load_slab(sg_h5_reader *r, hid_t memtype, int64_t ci, uint8_t *dst, sg_err *err)
{
    const size_t ms = H5Tget_size(memtype), cols = (size_t)r->dims[1];
    size_t slab_bytes;
    if (__builtin_mul_overflow((size_t)r->chunk[0], cols, &slab_bytes) ||
        __builtin_mul_overflow(slab_bytes, ms, &slab_bytes) || slab_bytes > SLAB_MAX_BYTES)
        /* a size limit, not damage: h5py writes such chunks when asked to */
        return sg_errf(err, SG_EINPUT,
                       "%s: %s has chunks of %llu rows across %zu columns, more than the %zu MiB "
                       "a chunk may take to hold here; rewrite it with smaller chunks (h5py: "
                       "chunks=True)",
                       r->path, r->name, (unsigned long long)r->chunk[0], cols,
                       SLAB_MAX_BYTES >> 20);
    sg_status rc = dst ? SG_OK : grow(&r->slab, &r->slab_cap, slab_bytes, r, err);
    if (rc != SG_OK) return rc;
    if (!dst) {
        r->slab_row = -1;
        dst = r->slab;
    }
    const bool same = H5Tequal(r->ftype, memtype) > 0, narrow = !same && narrows(r, memtype);
    const bool ints = H5Tget_class(r->ftype) == H5T_INTEGER;
    /* the type libhdf5 converts to: native doubles when they are narrowed here */
    const hid_t via = narrow ? H5T_NATIVE_DOUBLE : memtype;
    const bool convert = !same && !(narrow && H5Tequal(r->ftype, H5T_NATIVE_DOUBLE) > 0);
    const hsize_t row0 = (hsize_t)ci * r->chunk[0];
    const size_t rows = (size_t)(r->dims[0] - row0 < r->chunk[0] ? r->dims[0] - row0 : r->chunk[0]);
    const size_t c1 = (size_t)r->chunk[1];
    /* A full chunk spanning every column, in the type asked for, is laid out in the file as
       in dst: it is read straight there. */
    uint8_t *direct = same && c1 == cols && rows == (size_t)r->chunk[0] ? dst : NULL;
    for (size_t col0 = 0; col0 < cols; col0 += c1) {
        const hsize_t off[2] = {row0, (hsize_t)col0};
        uint8_t *chunk = NULL;
        if ((rc = decode_chunk(r, off, narrow ? sizeof(double) : ms, direct, &chunk, err)) != SG_OK)
            return rc;
        if (chunk == dst) continue;
        if (convert && H5Tconvert(r->ftype, via, r->chunk_elems, chunk, NULL, H5P_DEFAULT) < 0)
            return fail(r, err, "cannot be converted to the type it is read as");
        const size_t w = cols - col0 < c1 ? cols - col0 : c1;
        size_t at_row = 0, at_col = 0;
        if (!narrow)
            for (size_t i = 0; i < rows; i++)
                memcpy(dst + (i * cols + col0) * ms, chunk + i * c1 * ms, w * ms);
        else if (!narrow_rows((const double *)(void *)chunk, c1, (float *)(void *)dst + col0, cols,
                              rows, w, ints, &at_row, &at_col))
            return inexact_int(r, row0 + at_row, col0 + at_col, err);
    }
    if (dst == r->slab) {
        r->slab_row = ci;
        r->slab_type = memtype;
    }
    return SG_OK;
}

sg_status sg_h5_reader_rows(sg_h5_reader *r, hid_t memtype, int64_t row0, int64_t n, void *buf,
                            sg_err *err)
{
    if (n <= 0) return SG_OK;
    if (row0 < 0 || (hsize_t)row0 > r->dims[0] || (hsize_t)n > r->dims[0] - (hsize_t)row0)
        return sg_errf(err, SG_EINTERNAL, "%s: %s rows %lld..%lld requested, it has %llu", r->path,
                       r->name, (long long)row0, (long long)(row0 + n - 1),
                       (unsigned long long)r->dims[0]);
    if (!r->chunked && narrows(r, memtype)) {
        /* As native doubles, a block of rows at a time, then narrowed (see narrows). */
        const size_t cols = r->rank == 2 ? (size_t)r->dims[1] : 1;
        const int64_t block = cols >= NARROW_BLOCK ? 1 : (int64_t)(NARROW_BLOCK / cols);
        double *tmp = malloc((size_t)(n < block ? n : block) * cols * sizeof *tmp);
        if (!tmp) return sg_errf(err, SG_ENOMEM, "%s: out of memory reading %s", r->path, r->name);
        sg_status rc = SG_OK;
        const bool ints = H5Tget_class(r->ftype) == H5T_INTEGER;
        for (int64_t i = 0; rc == SG_OK && i < n; i += block) {
            const int64_t k = n - i < block ? n - i : block;
            size_t at_row = 0, at_col = 0;
            rc = sg_h5_reader_rows(r, H5T_NATIVE_DOUBLE, row0 + i, k, tmp, err);
            if (rc == SG_OK && !narrow_rows(tmp, cols, (float *)buf + (size_t)i * cols, cols,
                                            (size_t)k, cols, ints, &at_row, &at_col))
                rc = inexact_int(r, (uint64_t)(row0 + i) + at_row, at_col, err);
        }
        free(tmp);
        return rc;
    }
    if (!r->chunked) {
        sg_h5_note("%s rows %lld..%lld", r->name, (long long)row0, (long long)(row0 + n - 1));
        hid_t fs = H5Dget_space(r->ds);
        hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, r->dims[1]};
        hid_t ms = H5Screate_simple(r->rank, count, NULL);
        /* A read that converts types goes through libhdf5's conversion buffer, 1 MiB
           zero-filled by default however few the values (a float64 scaler of 64 values): no
           bigger than the request, so that it costs no first touches it does not need. */
        const size_t es = H5Tget_size(memtype) > r->es ? H5Tget_size(memtype) : r->es;
        size_t tconv = (size_t)1 << 20, whole;
        if (!__builtin_mul_overflow((size_t)n, (size_t)r->dims[1], &whole) &&
            !__builtin_mul_overflow(whole, es, &whole) && whole < tconv)
            tconv = whole > es ? whole : es;
        hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
        herr_t st = -1;
        if (fs >= 0 && ms >= 0 && dxpl >= 0 && H5Pset_buffer(dxpl, tconv, NULL, NULL) >= 0 &&
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
            st = H5Dread(r->ds, memtype, ms, fs, dxpl, buf);
        if (dxpl >= 0) H5Pclose(dxpl);
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
        if (st < 0) {
            char why[256];
            sg_h5_last_error(why, sizeof why);
            return sg_errf(err, SG_EINPUT, "%s: %s rows %lld..%lld cannot be read (%s)", r->path,
                           r->name, (long long)row0, (long long)(row0 + n - 1),
                           why[0] ? why : "read failed");
        }
        return SG_OK;
    }
    const size_t row_bytes = (size_t)r->dims[1] * H5Tget_size(memtype);
    const int64_t cr = (int64_t)r->chunk[0];
    uint8_t *dst = buf;
    for (int64_t row = row0; row < row0 + n;) {
        const int64_t ci = row / cr, first = ci * cr;
        /* Without forming (ci + 1) * cr, which passes INT64_MAX in the last chunk of a shape
           near 2^63 rows. */
        const bool whole_chunk_left = row0 + n - first >= cr;
        const int64_t end = whole_chunk_left ? first + cr : row0 + n;
        const bool cached = r->slab_row == ci && r->slab_type == memtype;
        if (!cached && row == first && (whole_chunk_left || end == (int64_t)r->dims[0])) {
            /* The whole chunk row is wanted: decode it straight into the caller's buffer. */
            sg_status rc = load_slab(r, memtype, ci, dst, err);
            if (rc != SG_OK) return rc;
            dst += (size_t)(end - row) * row_bytes;
            row = end;
            continue;
        }
        if (!cached) {
            sg_status rc = load_slab(r, memtype, ci, NULL, err);
            if (rc != SG_OK) return rc;
        }
        memcpy(dst, r->slab + (size_t)(row - ci * cr) * row_bytes, (size_t)(end - row) * row_bytes);
        dst += (size_t)(end - row) * row_bytes;
        row = end;
    }
    return SG_OK;
}

sg_status sg_h5_read_all(hid_t ds, hid_t memtype, void *buf, const char *path, const char *name,
                         sg_err *err)
{
    /* A model's weights (or a tree's thresholds) that were never written read as the fill
       value, zeros: a file whose writer stopped before its data, taken as a model. Refused,
       as the validation set's rows are. */
    sg_h5_reader *r = NULL;
    sg_status rc = sg_h5_check_stored(ds, name, path, err);
    if (rc == SG_OK) rc = sg_h5_check_in_file(ds, name, path, err);
    if (rc == SG_OK) rc = sg_h5_reader_new(ds, path, name, &r, err);
    if (rc == SG_OK) sg_h5_reader_refuse_unwritten(r);
    if (rc == SG_OK) rc = sg_h5_reader_rows(r, memtype, 0, (int64_t)r->dims[0], buf, err);
    sg_h5_reader_free(r);
    return rc;
}
