/* File helpers: SHA-256 digests, whole-file reads and atomic (temp + rename) output. */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include "stagegate/common.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

void sg_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* SHA-256 fetched from the default provider once per process: EVP_sha256() makes every
 * digest look the implementation up again (a locked table search; on the server it cost as
 * much as hashing a token on every request). Falls back to EVP_sha256() if the fetch fails. */
static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}
static const EVP_MD *sha256_md(void)
{
    pthread_once(&g_sha256_once, sha256_fetch);
    return g_sha256 ? g_sha256 : EVP_sha256();
}

void sg_sha256(const uint8_t *data, size_t len, uint8_t digest[32])
{
    unsigned int mdlen = 0;
    SG_ASSERT(EVP_Digest(data, len, digest, &mdlen, sha256_md(), NULL) == 1);
}

void sg_sha256_hex(const uint8_t *data, size_t len, char hex[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, sha256_md(), NULL);
    sg_hex_encode(md, 32, hex);
}

int sg_open_regular(const char *path, sg_err *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        sg_errf(err, SG_EINPUT, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        sg_errf(err, SG_EINPUT, "%s: not a regular file (%s)", path,
                S_ISFIFO(st.st_mode)  ? "a FIFO"
                : S_ISDIR(st.st_mode) ? "a directory"
                : S_ISCHR(st.st_mode) ? "a character device"
                                      : "not a plain file");
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* fdopen of sg_open_regular: NULL with err set. */
static FILE *fopen_regular(const char *path, sg_err *err)
{
    int fd = sg_open_regular(path, err);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        sg_errf(err, SG_EIO, "%s: cannot open stream", path);
    }
    return f;
}

/* fdopen of fd from its start: NULL with err set, fd closed. */
static FILE *fdopen_start(int fd, const char *path, sg_err *err)
{
    FILE *f = lseek(fd, 0, SEEK_SET) == 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        close(fd);
        sg_errf(err, SG_EIO, "%s: cannot open stream", path);
    }
    return f;
}

static sg_status sha256_stream(FILE *f, const char *path, uint8_t digest[32], sg_err *err);

sg_status sg_sha256_file(const char *path, uint8_t digest[32], sg_err *err)
{
    FILE *f = fopen_regular(path, err);
    if (!f) return SG_EINPUT;
    return sha256_stream(f, path, digest, err);
}

sg_status sg_sha256_fd_hex(int fd, const char *path, char hex[65], sg_err *err)
{
    FILE *f = fdopen_start(fd, path, err);
    if (!f) return SG_EIO;
    uint8_t d[32];
    sg_status rc = sha256_stream(f, path, d, err);
    if (rc == SG_OK) sg_hex_encode(d, 32, hex);
    return rc;
}

/* Hashes f to its end and closes it. */
static sg_status sha256_stream(FILE *f, const char *path, uint8_t digest[32], sg_err *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, sha256_md(), NULL) != 1) {
        fclose(f);
        EVP_MD_CTX_free(ctx);
        return sg_errf(err, SG_EINTERNAL, "%s: cannot start SHA-256", path);
    }
    uint8_t *buf = malloc(1 << 20);
    if (!buf) {
        fclose(f);
        EVP_MD_CTX_free(ctx);
        return sg_errf(err, SG_ENOMEM, "%s: out of memory hashing file", path);
    }
    size_t n;
    int rc = SG_OK;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    if (ferror(f))
        rc = sg_errf(err, SG_EIO, "%s: read error while hashing: %s", path, strerror(errno));
    unsigned int mdlen = 0;
    if (rc == SG_OK) EVP_DigestFinal_ex(ctx, digest, &mdlen);
    free(buf);
    fclose(f);
    EVP_MD_CTX_free(ctx);
    return rc;
}

sg_status sg_sha256_file_hex(const char *path, char hex[65], sg_err *err)
{
    uint8_t d[32];
    int rc = sg_sha256_file(path, d, err);
    if (rc == SG_OK) sg_hex_encode(d, 32, hex);
    return rc;
}

static sg_status read_stream(FILE *f, const char *path, size_t limit, uint8_t **data, size_t *len,
                             sg_err *err);

sg_status sg_read_file(const char *path, size_t limit, uint8_t **data, size_t *len, sg_err *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen_regular(path, err);
    if (!f) return SG_EINPUT;
    return read_stream(f, path, limit, data, len, err);
}

sg_status sg_read_fd(int fd, const char *path, size_t limit, uint8_t **data, size_t *len,
                     sg_err *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fdopen_start(fd, path, err);
    if (!f) return SG_EIO;
    return read_stream(f, path, limit, data, len, err);
}

sg_status sg_read_file_beneath(const char *dir, const char *rel, size_t limit, uint8_t **data,
                               size_t *len, sg_err *err)
{
    *data = NULL;
    *len = 0;
    char part[4096];
    if (strlen(rel) >= sizeof part) return sg_errf(err, SG_EINPUT, "%s: path too long", rel);
    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) return sg_errf(err, SG_EINPUT, "%s: cannot open: %s", dir, strerror(errno));
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        memcpy(part, p, n);
        part[n] = '\0';
        /* "./w.bin" is w.bin: a leading or inner "." names the directory it is in. */
        if (slash && strcmp(part, ".") == 0) {
            p = slash + 1;
            continue;
        }
        if (n == 0 || strcmp(part, ".") == 0 || strcmp(part, "..") == 0) {
            close(d);
            return sg_errf(err, SG_EINPUT, "%s: \"%s\" is not a plain path component", rel, part);
        }
        /* O_NOFOLLOW: a symbolic link anywhere on the way is refused, so the file opened is
           the one under dir that the name says, whatever a link would point to. */
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | (slash ? O_DIRECTORY : O_NONBLOCK);
        int nd = openat(d, part, flags);
        int e = errno;
        close(d);
        if (nd < 0)
            return sg_errf(err, SG_EINPUT, "%s: cannot open%s: %s", rel,
                           e == ELOOP || e == ENOTDIR ? " (a symbolic link, or not a directory on the way)" : "",
                           strerror(e));
        d = nd;
        if (!slash) break;
        p = slash + 1;
    }
    struct stat st;
    if (fstat(d, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(d);
        return sg_errf(err, SG_EINPUT, "%s: not a regular file", rel);
    }
    int fl = fcntl(d, F_GETFL);
    if (fl >= 0) (void)fcntl(d, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(d, "rb");
    if (!f) {
        close(d);
        return sg_errf(err, SG_EIO, "%s: cannot open stream", rel);
    }
    return read_stream(f, rel, limit, data, len, err);
}

static sg_status read_stream(FILE *f, const char *path, size_t limit, uint8_t **data, size_t *len,
                             sg_err *err)
{
    /* A file too large to read is refused before a byte of it is read: a 100 GB sparse file
       given as a model had grown the process by 0.5 GB/s towards the out-of-memory killer. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > (64 << 20)) {
        /* the memory limit (cgroup files) is read only for a file that could matter to it */
        const uint64_t size = (uint64_t)st.st_size, mem = sg_memory_limit();
        if (size > limit || (mem && size > mem)) {
            fclose(f);
            char b[32], m[32];
            sg_format_bytes((double)size, b, sizeof b);
            sg_format_bytes((double)mem, m, sizeof m);
            if (size > limit)
                return sg_errf(err, SG_EINPUT, "%s: file is larger than %zu bytes (it is %s)",
                               path, limit, b);
            return sg_errf(err, SG_EINPUT,
                           "%s: the file is %s, more than the %s of memory this process may use",
                           path, b, m);
        }
    }
    /* A regular file is read into a buffer of its size: growing by doubling had held up to
       twice the file (a 68 MB ONNX model in a 128 MiB buffer, a third of eval's peak). */
    const bool sized = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
                       (uint64_t)st.st_size <= limit;
    size_t cap = sized ? (size_t)st.st_size : limit < 4096 ? limit : 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            /* Full: one more byte decides whether the file ends here (usually: its size). */
            uint8_t extra;
            if (fread(&extra, 1, 1, f) == 0) break; /* the end, or an error (below) */
            if (cap >= limit) {
                /* A file of exactly `limit` bytes is fine: only a further byte is too many. */
                free(buf);
                fclose(f);
                return sg_errf(err, SG_EINPUT, "%s: file is larger than %zu bytes", path, limit);
            }
            cap = cap * 2 > limit ? limit : cap * 2;
            uint8_t *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            buf[n++] = extra;
            continue;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f), e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return sg_errf(err, SG_EIO, "%s: read error: %s", path, strerror(e));
    }
    if (cap - n > 65536) { /* a stream that grew past its end: give the rest back */
        uint8_t *nb = realloc(buf, n + 1);
        if (nb) buf = nb;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return SG_OK;
}

/*
 * Temp files in flight, unlinked if a signal (SIGINT, SIGTERM, SIGPIPE, SIGXCPU, ...) ends the process before they are
 * renamed or removed. Slots are claimed with a compare-and-swap and the handler only reads
 * paths whose slot is marked used, so it never sees a half-written name; unlink is
 * async-signal-safe. The handler is installed only where the signal still has its default
 * disposition, then re-raises the signal with that default.
 */
#define TMP_SLOTS 32
static char tmp_paths[TMP_SLOTS][4096];
static volatile sig_atomic_t tmp_used[TMP_SLOTS];
static int tmp_claim[TMP_SLOTS];

static void tmp_on_signal(int sig)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_used[i]) unlink(tmp_paths[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Every signal whose default ends the process without a crash: a kill by hand, a closed
   pipe, the CPU or file size limit of a CI job, a timer. */
static const int tmp_sigs[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT, SIGPIPE,   SIGUSR1,
                               SIGUSR2, SIGXCPU, SIGXFSZ, SIGALRM, SIGVTALRM, SIGPROF};

void sg_tmp_signals_hold(sigset_t *saved)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof tmp_sigs / sizeof tmp_sigs[0]; i++)
        sigaddset(&set, tmp_sigs[i]);
    pthread_sigmask(SIG_BLOCK, &set, saved);
}

void sg_tmp_signals_release(const sigset_t *saved)
{
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

static void tmp_install_handlers(void)
{
    const int *sigs = tmp_sigs;
    for (size_t i = 0; i < sizeof tmp_sigs / sizeof tmp_sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = tmp_on_signal;
            sigemptyset(&sa.sa_mask);
            sigaction(sigs[i], &sa, NULL);
        }
    }
}

void sg_tmp_forget_all(void)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        tmp_used[i] = 0;
}

void sg_tmp_track(const char *tmp)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tmp_install_handlers);
    for (int i = 0; i < TMP_SLOTS; i++) {
        int expect = 0;
        if (__atomic_compare_exchange_n(&tmp_claim[i], &expect, 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            snprintf(tmp_paths[i], sizeof tmp_paths[i], "%s", tmp);
            __atomic_store_n(&tmp_used[i], 1, __ATOMIC_RELEASE);
            return;
        }
    }
    /* All slots busy: this temp file is simply not cleaned on a signal. */
}

void sg_tmp_forget(const char *tmp)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (__atomic_load_n(&tmp_used[i], __ATOMIC_ACQUIRE) && !strcmp(tmp_paths[i], tmp)) {
            __atomic_store_n(&tmp_used[i], 0, __ATOMIC_RELEASE);
            __atomic_store_n(&tmp_claim[i], 0, __ATOMIC_RELEASE);
            return;
        }
}

void sg_tmp_remove(const char *tmp)
{
    unlink(tmp);
    sg_tmp_forget(tmp);
}

/* An output replaces only a regular file (or nothing): rename() over a device, a FIFO or a
   socket would replace the node itself -- `--predictions /dev/null` run as root turned the
   machine's /dev/null into an HDF5 file. A symbolic link is refused too: rename() replaces
   the link, not what it points to, so `--out /dev/stdout` with stdout redirected to a file
   (a link to /proc/self/fd/1, which stat() calls a regular file) turned /dev/stdout into a
   regular file holding the report, and the redirect got nothing. */
static sg_status check_output_target(const char *path, sg_err *err)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char to[512];
        ssize_t n = readlink(path, to, sizeof to - 1);
        to[n > 0 ? n : 0] = '\0';
        for (char *p = to; *p; p++) /* the error stays one line */
            if ((unsigned char)*p < 0x20) *p = '?';
        return sg_errf(err, SG_EINPUT,
                       "%s: is a symbolic link (to %s), not a regular file; an output is written "
                       "to a new file that replaces the path, which would replace the link: name "
                       "the file itself",
                       path, n > 0 ? to : "?");
    }
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode)) return SG_OK;
    return sg_errf(err, SG_EINPUT,
                   "%s: is %s, not a regular file; an output is written to a new file that "
                   "replaces the path, so only a regular file or a new name is accepted",
                   path,
                   S_ISDIR(st.st_mode)    ? "a directory"
                   : S_ISCHR(st.st_mode)  ? "a character device"
                   : S_ISBLK(st.st_mode)  ? "a block device"
                   : S_ISFIFO(st.st_mode) ? "a FIFO"
                   : S_ISSOCK(st.st_mode) ? "a socket"
                                          : "a special file");
}

bool sg_tmp_lock(int fd)
{
    /* An open-file-description lock: held while this descriptor is open, whatever else the
       process opens and closes on the same file (libhdf5 does), and independent of flock. */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

/* Whether nobody holds sg_tmp_lock on the file: a read lock is refused while a writer holds
   its write lock, and needs only a read-only descriptor. */
static bool tmp_unlocked(int fd)
{
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

/* A temp name is ".BASE.tmp." and 16 hex digits, 22 bytes around BASE: a BASE longer than
   NAME_MAX - 22 is cut to that, so that every output name the filesystem takes has one. */
#define TMP_NAME_EXTRA 22
static size_t tmp_base_len(const char *base)
{
    size_t bl = strlen(base);
    return bl > NAME_MAX - TMP_NAME_EXTRA ? NAME_MAX - TMP_NAME_EXTRA : bl;
}

/* ".BASE.tmp." followed by exactly 16 lower-case hex digits: the names sg_tmp_path_for gives. */
static bool is_tmp_name(const char *name, const char *base)
{
    size_t bl = tmp_base_len(base);
    if (name[0] != '.' || strncmp(name + 1, base, bl) || strncmp(name + 1 + bl, ".tmp.", 5))
        return false;
    const char *h = name + 1 + bl + 5;
    for (int i = 0; i < 16; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return false;
    return h[16] == '\0';
}

int sg_tmp_sweep(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    const time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!is_tmp_name(e->d_name, base)) continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue; /* a symlink, gone, or not ours to read: left alone */
        struct stat st;
        /* Ours, a regular file, untouched for SG_TMP_STALE_SECONDS (a writer takes its lock
           right after creating the file, so a newer one may be between the two), and locked
           by nobody: its writer is gone (SIGKILL, a crash, the machine's power). */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            now - st.st_mtime >= SG_TMP_STALE_SECONDS && tmp_unlocked(fd) &&
            unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
        close(fd);
    }
    closedir(d);
    return removed;
}

sg_status sg_tmp_path_for(const char *path, char *tmp, size_t tmp_len, sg_err *err)
{
    /* Same directory as the target, so rename() is atomic (same filesystem). */
    char copy[4096];
    if (strlen(path) >= sizeof copy) return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    sg_status trc = check_output_target(path, err);
    if (trc != SG_OK) return trc;
    strcpy(copy, path);
    char *dir = dirname(copy);
    char copy2[4096];
    strcpy(copy2, path);
    char *base = basename(copy2);
    /* What a killed writer of this output left behind goes first (best effort). */
    (void)sg_tmp_sweep(dir, base);
    /* An unpredictable name: another user cannot pre-create it to make a long run fail at its
     * last step (writers open it with O_EXCL). */
    uint8_t rnd[8];
    char hex[17];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return sg_errf(err, SG_EIO, "%s: no randomness for a temp name: %s", path, strerror(errno));
    sg_hex_encode(rnd, sizeof rnd, hex);
    int n = snprintf(tmp, tmp_len, "%s/.%.*s.tmp.%s", dir, (int)tmp_base_len(base), base, hex);
    if (n < 0 || (size_t)n >= tmp_len) return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    sg_tmp_track(tmp);
    return SG_OK;
}

sg_status sg_commit_tmp(const char *tmp, const char *path, sg_err *err)
{
    sg_status trc = check_output_target(path, err); /* it may have become one meanwhile */
    if (trc != SG_OK) {
        sg_tmp_remove(tmp);
        return trc;
    }
    int renamed = rename(tmp, path), e = errno;
    if (renamed != 0) unlink(tmp);
    sg_tmp_forget(tmp);
    if (renamed != 0) {
        return sg_errf(err, SG_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return SG_OK;
}

sg_status sg_outfile_open(sg_outfile *o, const char *path, sg_err *err)
{
    memset(o, 0, sizeof *o);
    if (strlen(path) >= sizeof o->path) return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    strcpy(o->path, path);
    int rc = sg_tmp_path_for(path, o->tmp_path, sizeof o->tmp_path, err);
    if (rc) return rc;
    int fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return sg_errf(err, SG_EIO, "%s: cannot create: %s", path, strerror(errno));
    (void)sg_tmp_lock(fd); /* not possible everywhere (some network filesystems): a hint */
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        close(fd);
        sg_tmp_remove(o->tmp_path);
        return sg_errf(err, SG_EIO, "%s: cannot open stream", path);
    }
    return SG_OK;
}

sg_status sg_outfile_flush(sg_outfile *o, sg_err *err)
{
    if (!o->fp) return sg_errf(err, SG_EINTERNAL, "%s: output not open", o->path);
    /* A write that failed earlier left errno and the stream's error flag; fflush tries the
       rest of the buffer again and sets errno anew when it fails. */
    errno = 0;
    int bad = fflush(o->fp) != 0 || ferror(o->fp) || fsync(fileno(o->fp)) != 0;
    int e = errno;
    if (!bad) return SG_OK;
    fclose(o->fp);
    o->fp = NULL;
    sg_tmp_remove(o->tmp_path);
    return sg_errf(err, SG_EIO, "%s: write failed: %s", o->path, e ? strerror(e) : "I/O error");
}

sg_status sg_outfile_commit(sg_outfile *o, sg_err *err)
{
    sg_status rc = sg_outfile_flush(o, err);
    if (rc) return rc;
    int bad = fclose(o->fp) != 0, e = errno;
    o->fp = NULL;
    if (bad) {
        sg_tmp_remove(o->tmp_path);
        return sg_errf(err, SG_EIO, "%s: write failed: %s", o->path, strerror(e));
    }
    return sg_commit_tmp(o->tmp_path, o->path, err);
}

/*
 * The set is put in place by exchanging each temp file with what its path held
 * (renameat2 RENAME_EXCHANGE): the old file then sits under the temp name, so a later
 * failure swaps every earlier one back and the paths hold what they held. Renaming one by
 * one had left the new renderings beside the old signed report when the report's rename
 * failed (another user's file in a sticky directory, an immutable file). A path that held
 * nothing is placed with RENAME_NOREPLACE and removed on the way back. On a file system
 * without the exchange (EINVAL), a plain rename is all there is, and that one cannot be
 * taken back.
 */
sg_status sg_outfiles_commit(sg_outfile *o, size_t n, sg_err *err)
{
    enum { PENDING, SWAPPED, PLACED, REPLACED } *how = calloc(n ? n : 1, sizeof *how);
    sg_status rc = how ? SG_OK : sg_errf(err, SG_ENOMEM, "out of memory committing outputs");
    for (size_t i = 0; i < n; i++) { /* written, synced and closed, every one */
        if (rc == SG_OK) rc = sg_outfile_flush(&o[i], err);
        if (rc == SG_OK) {
            int bad = fclose(o[i].fp) != 0, e = errno;
            o[i].fp = NULL;
            if (bad) rc = sg_errf(err, SG_EIO, "%s: write failed: %s", o[i].path, strerror(e));
        }
    }
    size_t i = 0;
    for (; rc == SG_OK && i < n; i++) {
        if ((rc = check_output_target(o[i].path, err)) != SG_OK) break;
        if (renameat2(AT_FDCWD, o[i].tmp_path, AT_FDCWD, o[i].path, RENAME_EXCHANGE) == 0) {
            how[i] = SWAPPED;
        } else if (errno == ENOENT &&
                   renameat2(AT_FDCWD, o[i].tmp_path, AT_FDCWD, o[i].path, RENAME_NOREPLACE) == 0) {
            how[i] = PLACED;
        } else if (errno == EINVAL && rename(o[i].tmp_path, o[i].path) == 0) {
            how[i] = REPLACED;
        } else {
            rc = sg_errf(err, SG_EIO, "%s: cannot write: %s", o[i].path, strerror(errno));
            break;
        }
    }
    if (rc != SG_OK) /* back to what the paths held, the latest first */
        for (size_t j = i; j-- > 0;) {
            if (how[j] == SWAPPED &&
                renameat2(AT_FDCWD, o[j].tmp_path, AT_FDCWD, o[j].path, RENAME_EXCHANGE) != 0) {
                const size_t used = strlen(err->msg);
                snprintf(err->msg + used, sizeof err->msg - used,
                         "; and %s could not be put back (%s): its earlier content is %s",
                         o[j].path, strerror(errno), o[j].tmp_path);
                how[j] = REPLACED; /* the old file stays under its temp name, named above */
            } else if (how[j] == PLACED) {
                (void)unlink(o[j].path);
            }
        }
    /* Under the temp names now: the old files (swapped in), or the new ones not used. */
    for (size_t j = 0; j < n; j++) {
        if (o[j].fp) fclose(o[j].fp);
        o[j].fp = NULL;
        if (how && (how[j] == PLACED || how[j] == REPLACED))
            sg_tmp_forget(o[j].tmp_path); /* renamed away: nothing there */
        else if (o[j].tmp_path[0])
            sg_tmp_remove(o[j].tmp_path);
    }
    free(how);
    return rc;
}

void sg_outfile_abort(sg_outfile *o)
{
    if (o->fp) {
        fclose(o->fp);
        o->fp = NULL;
    }
    if (o->tmp_path[0]) sg_tmp_remove(o->tmp_path);
}

int sg_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
