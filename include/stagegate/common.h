/* Shared status codes, error reporting and file helpers used by every part. */
#ifndef STAGEGATE_COMMON_H
#define STAGEGATE_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: 0 is success, negative values are errors. */
typedef enum {
    SG_OK = 0,
    SG_EINPUT = -1,    /* bad input: file, field, option (exit 2) */
    SG_ENOMEM = -2,    /* allocation failed (exit 2) */
    SG_EIO = -3,       /* I/O error (exit 2) */
    SG_EREFUSED = -4,  /* a check, gate or verification said no (exit 1) */
    SG_EINTERNAL = -5, /* a bug or an unexpected library failure (exit 2) */
} sg_status;

const char *sg_status_string(int status);

/* On a function returning sg_status where ignoring the result is a bug. */
#define SG_MUST_CHECK __attribute__((warn_unused_result))

/* One human sentence naming the file or field and what is wrong: room for a path as long as
   PATH_MAX (4096) and the sentence around it (1,024 bytes had cut the reason off a long
   path's message). */
typedef struct {
    char msg[6144];
} sg_err;

/* Formats err->msg and returns status, so callers can `return sg_errf(...)`. */
sg_status sg_errf(sg_err *err, sg_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* pthread_create with the reason in the error: "WHAT: strerror", and for EAGAIN the figures of
   the limits that cause it (ulimit -v leaving no room for the thread's 8 MiB stack, ulimit -u).
   WHAT names the thread, e.g. "pool: cannot start worker thread 3". SG_ENOMEM for EAGAIN, else
   SG_EINTERNAL. */
sg_status sg_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg, sg_err *err,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * A shared library opened the first time a command needs it (dlopen), not when stagegate
 * starts: libpq (the PostgreSQL registry), libcurl (a registry through a server) and
 * libmicrohttpd (serve). Linked at start-up, they and what they link (Kerberos, LDAP, GnuTLS,
 * SSH: 31 of the 48 libraries) were mapped and relocated by every run, about half of a
 * short command's time, and were in the address space of every gate that reads untrusted
 * files. The user lists the functions it calls and a bind function that stores each address
 * in its own typed pointer (`__typeof__` of the library's declaration); the addresses are
 * published only once every one resolved.
 */
typedef struct sg_lazylib {
    const char *soname;  /* what dlopen is given: the ABI the headers describe, "libpq.so.5" */
    const char *what;    /* what needs it, for the message: "the PostgreSQL registry" */
    const char *package; /* the Debian package that installs it: "libpq5" */
    const char *const *names;
    size_t count;
    void (*bind)(void *const *addresses); /* stores addresses[i], the function names[i] */
    pthread_mutex_t lock;
    int loaded; /* read and written atomically */
} sg_lazylib;

/* Opens the library and binds its functions, once; later calls return at once. Thread-safe.
   SG_EIO naming the library, what needs it and dlerror's reason when it cannot be loaded
   or lacks a function (it is tried again on the next call). */
sg_status sg_lazylib_load(sg_lazylib *lib, sg_err *err) SG_MUST_CHECK;

/* For a list FUNCS(X) of X(function) entries: SG_LAZY_FIELD declares a pointer typed as the
   library's declaration of it (`struct { FUNCS(SG_LAZY_FIELD) } api;`), and SG_LAZYLIB
   defines the sg_lazylib LIB that fills API from the library SONAME when loaded. */
#define SG_LAZY_FIELD(f) __typeof__(f) *f;
#define SG_LAZY_NAME_(f) #f,
#define SG_LAZY_BIND_(f) api_->f = (__typeof__(api_->f))a[i++];
#define SG_LAZYLIB(lib, api, FUNCS, soname_, what_, package_)                                      \
    static const char *const lib##_names[] = {FUNCS(SG_LAZY_NAME_)};                               \
    static void lib##_bind(void *const *a)                                                         \
    {                                                                                              \
        __typeof__(api) *api_ = &(api);                                                            \
        size_t i = 0;                                                                              \
        FUNCS(SG_LAZY_BIND_)                                                                       \
    }                                                                                              \
    static sg_lazylib lib = {.soname = soname_,                                                    \
                             .what = what_,                                                        \
                             .package = package_,                                                  \
                             .names = lib##_names,                                                 \
                             .count = sizeof lib##_names / sizeof *lib##_names,                    \
                             .bind = lib##_bind,                                                   \
                             .lock = PTHREAD_MUTEX_INITIALIZER}

/* Programmer errors abort with file:line; runtime failures are status codes. */
#define SG_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) sg_assert_fail(#cond, __FILE__, __LINE__);                                    \
    } while (0)
_Noreturn void sg_assert_fail(const char *expr, const char *file, int line);

/* a * b into *out; false when the product does not fit a size_t. Sizes that come from
 * outside input are multiplied with this, never with a bare `*`. */
static inline bool sg_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* RFC 3339 exactly (YYYY-MM-DDTHH:MM:SS, an optional fraction, then Z or +hh:mm/-hh:mm,
   every field in range) to seconds since 1970; -1 when s is not such a time. */
SG_MUST_CHECK sg_status sg_parse_rfc3339(const char *s, int64_t *epoch);

/* v with the fewest significant digits that read back as v ("0.95", not
   "0.94999999999999996"). */
void sg_format_shortest(double v, char *buf, size_t len);
/* The precision (%.*g, at least 4) at which a and b print differently, so that a check's
   text never reads "0.9642 < 0.9642"; 4 when they are equal. */
int sg_digits_apart(double a, double b);
/* The precision for a limit shown beside a value: sg_digits_apart's, or more where the limit
   needs them to read as itself (up to 9 digits), so that a threshold of 0.99999 is not shown
   as "1". */
int sg_digits_limit(double value, double limit);

/* Physical memory of this machine in bytes (0 when unknown). */
uint64_t sg_physical_memory(void);
/* The memory this process may use: physical memory, or its cgroup's limit when lower
   (cgroup v2 memory.max, v1 memory.limit_in_bytes), or what the address-space or data
   limit (ulimit -v, -d) leaves of what the process maps now, when lower still; 0 when
   unknown. sg_memory_limit_at reads the given
   /proc/self/cgroup and cgroup mount instead, without the process limits (tests). */
uint64_t sg_memory_limit(void);
uint64_t sg_memory_limit_at(const char *proc_cgroup, const char *sysfs);

/*
 * Checks before an allocation sized by outside input: `count` elements of `size` bytes
 * must be representable and fit in the memory this process may use (sg_memory_limit).
 * Returns SG_OK, or SG_EINPUT with "WHAT: COUNT rows need N GiB, more than the M GiB..." (a
 * declared size far beyond the machine is bad input, not an out-of-memory at run time).
 */
SG_MUST_CHECK sg_status sg_check_alloc(int64_t count, size_t size, const char *what, sg_err *err);

/* Allocation helpers; aligned memory is 64-byte aligned and freed with sg_free_aligned. */
void *sg_alloc_aligned(size_t bytes);
void sg_free_aligned(void *p);
/*
 * A large buffer first touched on a hot path (a chunk of the validation set that read(2)
 * copies into, a score store, a sort's scratch): from 512 KiB up, rounded up to whole 2 MiB
 * and 2 MiB-aligned. It is marked for transparent huge pages (a page fault per 2 MiB
 * instead of per 4 KiB) only when STAGEGATE_HUGE_PAGES=1: which is cheaper depends on the
 * host. Where the hypervisor shadows the guest's page tables, a 4 KiB first touch cost
 * 10 us (an Intel VM of 2026-12-04), and huge pages made eval 9% faster. Where the guest
 * hands its free memory back to the host (virtio-balloon free page reporting, which
 * reports whole free blocks of 2 MiB and more), a huge page first touched after a few idle
 * seconds cost 2-7 ms against 1.1 ms for 512 small pages (AMD VMs of 2026-12-06/07), and
 * eval started cold was 5-17% slower with them, the same warm. A system that compacts
 * memory to find huge pages on request may also stall the touch. Smaller sizes are
 * sg_alloc_aligned. Freed with sg_free_aligned (free).
 */
void *sg_alloc_huge(size_t bytes);
/* STAGEGATE_HUGE_PAGES=1: sg_alloc_huge asks for transparent huge pages (unset, empty or 0:
   it does not). */
bool sg_huge_pages_wanted(void);

/* What fresh memory costs on this host, in the two kinds of page sg_alloc_huge may use:
   `rounds` times each (alternating which goes first), `bytes` of memory mapped, advised
   (MADV_NOHUGEPAGE or MADV_HUGEPAGE) and written once, every region unmapped only at the end
   (so that no touch reuses memory just freed, as a cold run's allocations do not). Medians in ms;
   huge_bytes: how much of the last huge-page round the kernel backed with huge pages
   (AnonHugePages); thp: the kernel's transparent_hugepage setting ("always", "madvise", "never" or
   "unknown"). */
typedef struct {
    size_t bytes;
    int rounds;
    double small_ms, huge_ms;             /* medians */
    double small_range[2], huge_range[2]; /* fastest and slowest round */
    size_t huge_bytes;
    char thp[16];
} sg_first_touch;
sg_status sg_first_touch_measure(size_t bytes, int rounds, sg_first_touch *out, sg_err *err);

/* SHA-256 of a whole file; hex is 64 chars plus NUL. */
SG_MUST_CHECK sg_status sg_sha256_file(const char *path, uint8_t digest[32], sg_err *err);
SG_MUST_CHECK sg_status sg_sha256_file_hex(const char *path, char hex[65], sg_err *err);
void sg_sha256_hex(const uint8_t *data, size_t len, char hex[65]);
void sg_sha256(const uint8_t *data, size_t len, uint8_t digest[32]);
void sg_hex_encode(const uint8_t *in, size_t len, char *out);

/*
 * Atomic output: write to a unique, unpredictably named temporary file in the
 * destination's directory (O_EXCL), then rename over the destination. A failure,
 * an abort, SIGINT or SIGTERM leaves no file behind at either path; after SIGKILL the next
 * write of the same output removes the temp file (sg_tmp_sweep).
 */
typedef struct {
    char path[4096];
    char tmp_path[4096];
    FILE *fp; /* open for writing after sg_outfile_open */
} sg_outfile;

SG_MUST_CHECK sg_status sg_outfile_open(sg_outfile *o, const char *path, sg_err *err);
/* Writes what is buffered to the disk (flush, fsync); the file stays open and is not yet at
   its path. For outputs that must all appear or none: flush each, then commit each only if
   every flush succeeded (else abort each). A failure removes the temp file and names the
   system's reason (a full disk, the file size limit). */
SG_MUST_CHECK sg_status sg_outfile_flush(sg_outfile *o, sg_err *err);
/* Flushes, closes and renames the temp file over the path. */
SG_MUST_CHECK sg_status sg_outfile_commit(sg_outfile *o, sg_err *err);
void sg_outfile_abort(sg_outfile *o);
/* Commits n outputs as one set: each flushed, synced and closed, then each put at its path
   by exchange with what the path held; a failure (a full disk, a path that cannot be
   replaced) puts every path back as it was and removes every temp file. */
SG_MUST_CHECK sg_status sg_outfiles_commit(sg_outfile *o, size_t n, sg_err *err);

/* For writers that create the file themselves (HDF5): pick a temp name, then commit by rename.
 * It first removes what killed writers of the same output left (sg_tmp_sweep). */
SG_MUST_CHECK sg_status sg_tmp_path_for(const char *path, char *tmp, size_t tmp_len, sg_err *err);
/*
 * A writer holds a write lock on its temp file (sg_tmp_lock on a descriptor it keeps open
 * until the rename) so that sg_tmp_sweep can tell it from one whose writer was killed
 * (SIGKILL, an out-of-memory kill, a crash, a power cut: nothing runs to unlink it).
 * sg_tmp_sweep removes from dir the temp files of outputs named base that are this user's,
 * regular, unmodified for SG_TMP_STALE_SECONDS and unlocked; returns how many.
 */
#define SG_TMP_STALE_SECONDS 60
bool sg_tmp_lock(int fd);
int sg_tmp_sweep(const char *dir, const char *base);
/* Temp files named by sg_tmp_path_for are unlinked on SIGINT / SIGTERM / SIGHUP until they
 * are renamed (sg_commit_tmp) or forgotten after their own unlink. */
void sg_tmp_track(const char *tmp);
void sg_tmp_forget(const char *tmp);
void sg_tmp_remove(const char *tmp); /* unlink + forget */
/* In a forked child: the parent's temp files are the parent's, and a signal that ends the
 * child must leave them alone. */
void sg_tmp_forget_all(void);
SG_MUST_CHECK sg_status sg_commit_tmp(const char *tmp, const char *path, sg_err *err);
/*
 * Holds off, in the calling thread, the signals whose handler removes the temp files
 * (SIGINT, SIGTERM, ...) while several outputs are renamed into place as one set, so that a
 * signal cannot leave some new and some old; it is delivered when released (SIGKILL cannot
 * be held). The set to restore goes in *saved.
 */
void sg_tmp_signals_hold(sigset_t *saved);
void sg_tmp_signals_release(const sigset_t *saved);

/* A bound given in ms as ns, rounded to 1e-6 ns: ms * 1e6 alone is inexact in binary
   (0.00397 ms gave 3969.9999999999995 ns, so a p99 of exactly 3,970 ns was over its bound). */
double sg_ms_to_ns(double ms);
/* A duration in ns in the unit that suits it, three significant digits: "870 ns", "2.35 \u00b5s",
 * "45.7 ms", "1.20 s"; "-" when not finite. */
void sg_format_ns(double ns, char *buf, size_t len);
/* The unit that suits ns (s, ms, \u00b5s, ns: the largest not above |ns|, ns below 1 ns): its
   scale in ns, its name in *unit. */
double sg_ns_unit(double ns, const char **unit);
/* A count as an integer with thousands separators: "100,000"; "-" when not finite. */
void sg_format_count(double v, char *buf, size_t len);
/* A size in bytes in binary units, three significant digits: "512 B", "1.50 KiB", "33.4 MiB". */
void sg_format_bytes(double bytes, char *buf, size_t len);
/* Writes s with what a terminal would act on rather than show written as \xHH, byte by
 * byte: control characters (C0, DEL, C1), bidirectional controls, and bytes that are not
 * well-formed UTF-8. Error lines quote names and values from outside input (a model's
 * strings, a server's message, a file name): one line, and nothing in it reaches the
 * terminal as a command. */
void sg_put_printable(FILE *f, const char *s);
/* Whether sg_put_printable would write s as it is. */
bool sg_is_printable(const char *s);
/* Length of the well-formed UTF-8 sequence at p (1 for an ASCII byte), 0 when p does not
 * start one before end (RFC 3629, Unicode Table 3-7: overlong forms, surrogates and code
 * points above U+10FFFF are not well-formed). */
size_t sg_utf8_len(const unsigned char *p, const unsigned char *end);
/* Whether s is well-formed UTF-8. */
bool sg_utf8_valid(const char *s);
/* Copies src into buf (len bytes with the NUL), cut where it must be at a character
   boundary: a cut in the middle of one had been shown, and signed, as "\xc3". */
void sg_utf8_copy(char *buf, size_t len, const char *src);
/* Characters (not bytes) in a UTF-8 string: the columns it takes in a terminal table. */
size_t sg_utf8_width(const char *s);

/* Monotonic wall time in seconds, for coarse timings (not latency samples). */
double sg_now_seconds(void);

/*
 * Opens an input file read-only without ever blocking on it: O_NONBLOCK so a FIFO or device
 * cannot hang the open, then fstat on the descriptor and S_ISREG required (what is checked
 * is what is read). Returns the descriptor (blocking again), or -1 with err naming the file.
 */
int sg_open_regular(const char *path, sg_err *err);

/* Reads a whole file into a NUL-terminated heap buffer (caller frees). Limit in bytes. */
SG_MUST_CHECK sg_status sg_read_file(const char *path, size_t limit, uint8_t **data, size_t *len, sg_err *err);
/* sg_read_file and sg_sha256_file_hex of a descriptor the caller opened (sg_open_regular),
   from its start: one open for a caller that looks at the file first. Both close fd. */
SG_MUST_CHECK sg_status sg_read_fd(int fd, const char *path, size_t limit, uint8_t **data,
                                   size_t *len, sg_err *err);
SG_MUST_CHECK sg_status sg_sha256_fd_hex(int fd, const char *path, char hex[65], sg_err *err);
/* Writes all of buf to fd, retrying short writes and EINTR: 0, or -1 with errno set (EIO when
   a write wrote nothing). */
int sg_write_all(int fd, const void *buf, size_t len);
/* The same for rel (relative, '/'-separated, no "." or ".." parts) under directory dir, refusing
 * a symbolic link anywhere on the way: the file read is inside dir. */
SG_MUST_CHECK sg_status sg_read_file_beneath(const char *dir, const char *rel, size_t limit,
                                             uint8_t **data, size_t *len, sg_err *err);

/* true when stderr is a terminal and progress display is wanted (STAGEGATE_PROGRESS=0|1 overrides).
 */
bool sg_progress_enabled(void);

/*
 * A progress line on stderr, redrawn about twice a second by a background
 * thread while long work runs elsewhere. count() is read without locks (a
 * relaxed snapshot) and format() builds the line. Start returns NULL when the
 * thread cannot start; stop(NULL) is a no-op.
 */
typedef struct sg_progress_monitor sg_progress_monitor;
typedef int64_t (*sg_progress_count_fn)(void *ctx);
typedef void (*sg_progress_format_fn)(void *ctx, int64_t done, double elapsed, char *line,
                                      size_t len);
sg_progress_monitor *sg_progress_start(sg_progress_count_fn count, void *ctx,
                                       sg_progress_format_fn format);
void sg_progress_stop(sg_progress_monitor *m);

#ifdef __cplusplus
}
#endif
#endif
