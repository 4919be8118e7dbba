/*
 * A sandboxed dry run of libhdf5's metadata parsing.
 *
 * h5chunks.c keeps file bytes away from libhdf5's filter pipeline, but libhdf5 also parses
 * object headers, B-trees, heaps and attribute values itself, and some corrupt structures
 * crash it (the HDF5 file fuzzer, tests/fuzz/fuzz_hdf5.c, finds a segfault in H5HG_read from
 * a corrupt global-heap reference within a second). So before a validation set or model is
 * opened for real, the same parse runs in a forked child: the child opens the file, reads
 * every attribute and layout the loader reads and walks each chunk index (datasets), or
 * loads the whole model (models), then exits. Its limits: no file writes (RLIMIT_FSIZE 0),
 * bounded CPU time, no core dump, and a seccomp filter that refuses exec, fork, sockets,
 * ptrace and any open for writing. A child that dies before its verdict (a signal, or a
 * sanitizer's exit) makes the file "malformed" (SG_EINPUT, exit 2); one that refuses the
 * file passes its one-line message back through a pipe; one that succeeds lets the parent
 * do the same parse, on the same bytes (a model's in-memory image; a dataset's open
 * descriptor), in-process.
 *
 * Ownership and locking: sg_h5_sandboxed is called with the HDF5 lock held (h5util.c);
 * the child inherits that state and makes its HDF5 calls without taking the lock (the
 * parent's other threads do not exist in the child). The child leaves with _exit, so no
 * atexit handler (libhdf5's among them) runs twice.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "h5util.h"

static bool sandbox_on = true;
/* CPU seconds the child may use: a corrupt structure can make libhdf5 loop (the fuzzer found
   one in the global heap, an outside attack a 13 KB model that looped for minutes); a real
   parse, even of a model of hundreds of megabytes, takes a few seconds. */
static unsigned cpu_seconds = 30;

void sg_h5_sandbox_cpu_limit(unsigned seconds)
{
    cpu_seconds = seconds ? seconds : 1;
}
/* What the child is reading (a page shared with the parent), for the message if it dies. */
#define NOTE_BYTES 256
static char *note_page; /* in the child: its check's page */
static bool in_child;

void sg_h5_note(const char *fmt, ...)
{
    if (!in_child) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note_page, NOTE_BYTES, fmt, ap);
    va_end(ap);
}

void sg_h5_sandbox_enable(bool on)
{
    sandbox_on = on;
}

#define DENY(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

/* Refuses what a parser never needs; everything else (reads, memory, signals) is allowed. */
static void install_seccomp(void)
{
#if defined(__x86_64__)
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        DENY(__NR_execve), DENY(__NR_execveat), DENY(__NR_fork), DENY(__NR_vfork),
        DENY(__NR_clone), DENY(__NR_clone3), DENY(__NR_socket), DENY(__NR_connect),
        DENY(__NR_bind), DENY(__NR_ptrace), DENY(__NR_process_vm_writev), DENY(__NR_unlink),
        DENY(__NR_unlinkat), DENY(__NR_rename), DENY(__NR_renameat), DENY(__NR_renameat2),
        DENY(__NR_truncate), DENY(__NR_ftruncate), DENY(__NR_chmod), DENY(__NR_fchmod),
        DENY(__NR_fchmodat), DENY(__NR_mkdir), DENY(__NR_mkdirat), DENY(__NR_link),
        DENY(__NR_linkat), DENY(__NR_symlink), DENY(__NR_symlinkat),
        /* open(path, flags) and openat(dir, path, flags): read-only opens only. */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC, 4, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
        (void)prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
#endif
}

static void limit(int resource, rlim_t value)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) != 0) return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < value) value = rl.rlim_max;
    rl.rlim_cur = value;
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > value) rl.rlim_max = value;
    (void)setrlimit(resource, &rl);
}

struct sg_h5_pending {
    pid_t pid;
    int fd;          /* the pipe's read end: the child's status byte and message */
    char *note;      /* NOTE_BYTES shared with the child: what it was reading */
    char path[4096]; /* for the messages */
    sg_status (*parse)(void *arg, sg_err *err);
    void *arg; /* parse's; the caller keeps it valid until the verdict */
};

static void pending_free(sg_h5_pending *p)
{
    if (p->fd >= 0) close(p->fd);
    if (p->note) munmap(p->note, NOTE_BYTES);
    free(p);
}

/* Forks the child for p (the HDF5 lock held by the caller); sets p->pid and p->fd. */
static sg_status spawn(sg_h5_pending *p, sg_err *err)
{
    snprintf(p->note, NOTE_BYTES, "the superblock");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return sg_errf(err, SG_EIO, "%s: cannot create a pipe for the HDF5 check: %s", p->path,
                       strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return sg_errf(err, SG_EIO, "%s: cannot fork for the HDF5 check: %s", p->path,
                       strerror(errno));
    }
    if (pid == 0) {
        in_child = true;
        note_page = p->note;
        close(fds[0]);
        /* What dies here is reported by the parent in one line: no crash report on stderr. */
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, 2);
            close(null);
        }
        limit(RLIMIT_FSIZE, 0);
        limit(RLIMIT_CORE, 0);
        /* SIGXCPU at the soft limit; the hard one, a little later, would be SIGKILL, which
           could not be told from any other kill. */
        limit(RLIMIT_CPU, cpu_seconds + 2);
        struct rlimit cpu;
        if (getrlimit(RLIMIT_CPU, &cpu) == 0 && cpu.rlim_max > cpu_seconds) {
            cpu.rlim_cur = cpu_seconds;
            (void)setrlimit(RLIMIT_CPU, &cpu);
        }
        /* A fault here must end the child at once, whatever handler the caller installed. */
        /* (Nor may one run the parent's temp file cleanup: that handler is the parent's.) */
        static const int fatal[] = {SIGSEGV, SIGBUS,  SIGFPE,  SIGILL,    SIGABRT, SIGXCPU,
                                    SIGXFSZ, SIGINT,  SIGTERM, SIGHUP,    SIGQUIT, SIGPIPE,
                                    SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF};
        for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
            signal(fatal[i], SIG_DFL);
        install_seccomp();
        sg_err e = {{0}};
        sg_status rc = p->parse(p->arg, &e);
        int8_t code = (int8_t)rc; /* statuses are small negative numbers */
        if (write(fds[1], &code, 1) == 1 && rc != SG_OK)
            (void)!write(fds[1], e.msg, strnlen(e.msg, sizeof e.msg));
        _exit(0);
    }
    close(fds[1]);
    p->pid = pid;
    p->fd = fds[0];
    return SG_OK;
}

sg_status sg_h5_sandbox_start(const char *path, sg_status (*parse)(void *arg, sg_err *err),
                              void *arg, sg_h5_pending **out, sg_err *err)
{
    *out = NULL;
    if (!sandbox_on) return SG_OK;
    sg_h5_pending *p = calloc(1, sizeof *p);
    if (!p) return sg_errf(err, SG_ENOMEM, "%s: out of memory for the HDF5 check", path);
    p->fd = -1;
    p->parse = parse;
    p->arg = arg;
    snprintf(p->path, sizeof p->path, "%s", path);
    /* Each check has its own page, so that two children can run at once. */
    void *pg = mmap(NULL, NOTE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pg == MAP_FAILED) {
        free(p);
        return sg_errf(err, SG_EIO, "%s: cannot map memory for the HDF5 check: %s", path,
                       strerror(errno));
    }
    p->note = pg;
    sg_status rc = spawn(p, err);
    if (rc != SG_OK) {
        pending_free(p);
        return rc;
    }
    *out = p;
    return SG_OK;
}

/*
 * Whether the child is deadlocked. It has one thread, but fork copied the parent's memory
 * as it was, locks included: a lock another thread of the parent held at that instant (an
 * allocator's, say -- AddressSanitizer's allocator, unlike glibc's malloc, does not take
 * its locks around fork) is held for ever in the child, and the child blocks in futex wait
 * on its first use. A single-threaded process blocked in futex wait can never be woken.
 * The kernel says which system call a blocked process is in (/proc/PID/syscall); the CPU
 * time must not move either.
 */
static bool child_in_futex_wait(pid_t pid, unsigned long long *cpu)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    char *end;
    long nr = strtol(buf, &end, 10);
    if (end == buf || nr != SYS_futex) return false;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    /* After the command name (in parentheses, which may hold anything): state is field 3,
       utime and stime fields 14 and 15. */
    const char *q = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!q || sscanf(q + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return false;
    bool same = *cpu == ut + st;
    *cpu = ut + st;
    return same;
}

/* Polls while the child works: a child seen blocked in futex wait, its CPU time unchanged,
   on STUCK_POLLS polls in a row is deadlocked. */
#define POLL_MS 250
#define STUCK_POLLS 4
#define SPAWN_TRIES 3

/* Reads the child's status byte and message, or says it is stuck (and kills it). */
static bool read_verdict(sg_h5_pending *p, int8_t *code, bool *have_code, sg_err *child,
                         size_t *got)
{
    int stuck = 0;
    unsigned long long cpu = ~0ULL;
    for (;;) {
        struct pollfd pf = {.fd = p->fd, .events = POLLIN};
        int r = poll(&pf, 1, POLL_MS);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            stuck = child_in_futex_wait(p->pid, &cpu) ? stuck + 1 : 0;
            if (stuck >= STUCK_POLLS) {
                kill(p->pid, SIGKILL);
                return false;
            }
            continue;
        }
        ssize_t n = read(p->fd, *have_code ? (void *)(child->msg + *got) : code,
                         *have_code ? sizeof child->msg - 1 - *got : 1);
        if (n == 0) return true;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return true;
        }
        if (!*have_code)
            *have_code = true;
        else
            *got += (size_t)n;
        if (*got >= sizeof child->msg - 1) return true;
    }
}

static sg_status wait_verdict(sg_h5_pending *p, bool locked, sg_err *err)
{
    if (!p) return SG_OK;
    sg_err child = {{0}};
    int8_t code = 0;
    size_t got = 0;
    bool have_code = false;
    int status = 0;
    for (int tries = 1;; tries++) {
        bool done = read_verdict(p, &code, &have_code, &child, &got);
        while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (done) break;
        /* Deadlocked by the fork itself, not by the file: fork again, as often as
           SPAWN_TRIES, with the HDF5 lock held as at the first fork. */
        close(p->fd);
        p->fd = -1;
        if (tries == SPAWN_TRIES) {
            sg_status rc = sg_errf(err, SG_EINTERNAL,
                                   "%s: the HDF5 check's child process deadlocked %d times in a "
                                   "row (a lock held by another thread when it was forked)",
                                   p->path, tries);
            pending_free(p);
            return rc;
        }
        if (!locked) sg_h5_enter();
        sg_status rc = spawn(p, err);
        if (!locked) sg_h5_leave();
        if (rc != SG_OK) {
            pending_free(p);
            return rc;
        }
    }
    /* The verdict is written after the parse, and only _exit follows it: a child that wrote
       it and then exited finished the parse, whatever its exit status. (Under valgrind the
       status is not ours: callgrind, refused its output file by the filter, exits 1.) */
    bool clean = WIFEXITED(status) && have_code;
    char what[NOTE_BYTES], path[sizeof p->path];
    snprintf(what, sizeof what, "%s", p->note);
    memcpy(path, p->path, sizeof path);
    pending_free(p);
    if (!clean) {
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)
            return sg_errf(err, SG_EINPUT,
                           "%s: malformed HDF5 file: the HDF5 library was still reading %s after "
                           "%u s of CPU time (a loop); refused",
                           path, what, cpu_seconds);
        /* SIGKILL is never the parse's own: the out-of-memory killer or another process
           sent it (a file that exhausts memory meets the child's address-space limit and
           fails inside libhdf5), and the file was not judged. */
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            return sg_errf(err, SG_EIO,
                           "%s: the HDF5 check's child process was killed (signal 9, by the "
                           "out-of-memory killer or another process) while reading %s; the "
                           "file was not checked",
                           path, what);
        if (WIFSIGNALED(status))
            return sg_errf(err, SG_EINPUT,
                           "%s: malformed HDF5 file: the HDF5 library crashed reading %s "
                           "(signal %d, %s); refused",
                           path, what, WTERMSIG(status), strsignal(WTERMSIG(status)));
        return sg_errf(err, SG_EINPUT,
                       "%s: malformed HDF5 file: the HDF5 library failed reading %s (exit %d); "
                       "refused",
                       path, what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    if (code == SG_OK) return SG_OK;
    child.msg[got] = '\0';
    return sg_errf(err, (sg_status)code, "%s", child.msg[0] ? child.msg : "refused");
}

sg_status sg_h5_sandbox_wait(sg_h5_pending *p, sg_err *err)
{
    return wait_verdict(p, false, err);
}

void sg_h5_sandbox_cancel(sg_h5_pending *p)
{
    if (!p) return;
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    pending_free(p);
}

sg_status sg_h5_sandboxed(const char *path, sg_status (*parse)(void *arg, sg_err *err), void *arg,
                          sg_err *err)
{
    sg_h5_pending *p;
    sg_status rc = sg_h5_sandbox_start(path, parse, arg, &p, err);
    return rc != SG_OK ? rc : wait_verdict(p, true, err);
}
