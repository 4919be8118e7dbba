/* CLI helpers: the one place where a status becomes an exit code and a usage error is printed. */
#define _GNU_SOURCE /* pipe2 */
#include "cli.h"

#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stagegate/registry.h"

/* The only mapping from a status to a process exit code. */
int sg_exit_code(int status)
{
    if (status == SG_OK) return 0;
    if (status == SG_EREFUSED) return 1;
    return 2;
}

int sg_cli_fail(int status, const sg_err *err)
{
    fputs("stagegate: ", stderr);
    const char *msg = err && err->msg[0] ? err->msg : sg_status_string(status);
    sg_put_printable(stderr, msg);
    /* Out of memory under an address-space limit is most often the limit: say its figure, so
       the user knows what to raise (or to lower --chunk-rows). */
    struct rlimit rl;
    if (status == SG_ENOMEM && !strstr(msg, "ulimit -v") && getrlimit(RLIMIT_AS, &rl) == 0 &&
        rl.rlim_cur != RLIM_INFINITY)
        fprintf(stderr, " (the address-space limit, ulimit -v, is %llu MiB)",
                (unsigned long long)(rl.rlim_cur >> 20));
    else if (status == SG_ENOMEM && !strstr(msg, "ulimit -d") && getrlimit(RLIMIT_DATA, &rl) == 0 &&
             rl.rlim_cur != RLIM_INFINITY)
        fprintf(stderr, " (the data limit, ulimit -d, is %llu MiB)",
                (unsigned long long)(rl.rlim_cur >> 20));
    fputc('\n', stderr);
    return sg_exit_code(status);
}

int sg_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "stagegate %s: ", cmd);
    sg_put_printable(stderr, msg);
    fprintf(stderr, " (see 'stagegate %s --help')\n", cmd);
    return 2;
}

/* Where a path would be: realpath of its directory plus its last name (the file need not
   exist); false when the directory cannot be resolved. */
static bool where(const char *path, char out[PATH_MAX])
{
    char d[PATH_MAX], b[PATH_MAX], rd[PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    snprintf(b, sizeof b, "%s", path);
    if (!realpath(dirname(d), rd)) return false;
    return snprintf(out, PATH_MAX, "%s/%s", rd, basename(b)) < PATH_MAX;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char wa[PATH_MAX], wb[PATH_MAX];
    return where(a, wa) && where(b, wb) && strcmp(wa, wb) == 0;
}

/* The first output that would overwrite an input or another output, described in msg. */
static bool outputs_conflict(const sg_cli_path *inputs, const sg_cli_path *outputs, char *msg,
                             size_t len)
{
    /* An empty option (an unset variable in a script) named no file: the run had gone on and
       failed at its end with ": cannot write", or at once with ": cannot open". */
    for (const sg_cli_path *i = inputs; i->what; i++)
        if (i->path && !*i->path && i->what[0] == '-') {
            snprintf(msg, len, "%s is empty", i->what);
            return true;
        }
    for (const sg_cli_path *o = outputs; o->what; o++) {
        if (!o->path) continue;
        size_t pl = strlen(o->path);
        char w[PATH_MAX];
        if (pl == 0) {
            snprintf(msg, len, "%s is empty", o->what);
            return true;
        }
        if (o->path[pl - 1] == '/') {
            snprintf(msg, len, "%s %s ends in '/': it names a directory, not a file", o->what,
                     o->path);
            return true;
        }
        /* Its directory must be there now, not only when the run is over. */
        if (!where(o->path, w)) {
            snprintf(msg, len, "%s %s: its directory does not exist or cannot be searched",
                     o->what, o->path);
            return true;
        }
        for (const sg_cli_path *i = inputs; i->what; i++)
            if (i->path && same_file(o->path, i->path)) {
                snprintf(msg, len, "%s %s is the same file as %s: writing it would destroy an input",
                         o->what, o->path, i->what);
                return true;
            }
        for (const sg_cli_path *q = outputs; q < o; q++)
            if (q->path && same_file(o->path, q->path)) {
                snprintf(msg, len, "%s and %s are the same file (%s)", q->what, o->what, o->path);
                return true;
            }
    }
    return false;
}

int sg_cli_check_outputs(const char *cmd, const sg_cli_path *inputs, const sg_cli_path *outputs)
{
    char msg[3 * PATH_MAX];
    return outputs_conflict(inputs, outputs, msg, sizeof msg)
               ? sg_cli_usage_error(cmd, "%s", msg)
               : 0;
}

sg_status sg_cli_outputs_err(const sg_cli_path *inputs, const sg_cli_path *outputs, sg_err *err)
{
    char msg[3 * PATH_MAX];
    return outputs_conflict(inputs, outputs, msg, sizeof msg) ? sg_errf(err, SG_EINPUT, "%s", msg)
                                                              : SG_OK;
}

int sg_cli_db_empty(const char *cmd, const char *db)
{
    return db && !*db ? sg_cli_usage_error(cmd, "--db is empty") : 0;
}

const char *sg_cli_registry_guarded(const char *db, bool used)
{
    const char *file = sg_registry_file(db);
    struct stat st;
    return used || (file && stat(file, &st) == 0) ? file : NULL;
}

void sg_cli_registry_inputs(const char *file, sg_cli_path ins[4], char bufs[3][PATH_MAX])
{
    static const char *const sfx[3] = {"-wal", "-shm", "-journal"};
    static const char *const what[3] = {"the registry's write-ahead log",
                                        "the registry's shared memory file",
                                        "the registry's journal"};
    ins[0] = (sg_cli_path){"the registry", file};
    for (int k = 0; k < 3; k++) {
        if (file) snprintf(bufs[k], PATH_MAX, "%s%s", file, sfx[k]);
        ins[k + 1] = (sg_cli_path){what[k], file ? bufs[k] : NULL};
    }
}

/* What the child sends back: the status, then the message or the path and digest. */
typedef struct {
    int rc;
    sg_err err;
    char sha256[65];
    char path[4096];
} resolved_msg;

sg_status sg_cli_resolve_apart(const char *uri, const char *db, char *path, size_t len,
                               char sha256[65], sg_err *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return sg_errf(err, SG_EIO, "%s: cannot create a pipe to resolve it: %s", uri,
                       strerror(errno));
    fflush(NULL);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return sg_errf(err, SG_EIO, "%s: cannot fork to resolve it: %s", uri, strerror(e));
    }
    if (pid == 0) {
        /* Ends with the parent: a SIGTERM to stagegate had left the child waiting out a
           locked registry's busy timeout (15 s) or a silent server's connect timeout. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1); /* the parent died before the line above */
        close(fds[0]);
        sg_tmp_forget_all();
        resolved_msg *m = calloc(1, sizeof *m);
        if (m) {
            m->rc = sg_registry_resolve_uri_digest(uri, db, m->path, sizeof m->path, m->sha256,
                                                   &m->err);
            const char *p = (const char *)m;
            size_t left = sizeof *m;
            while (left) {
                ssize_t n = write(fds[1], p, left);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) break;
                p += n, left -= (size_t)n;
            }
        }
        _exit(m ? 0 : 1);
    }
    close(fds[1]);
    resolved_msg *m = calloc(1, sizeof *m);
    size_t got = 0;
    while (m && got < sizeof *m) {
        ssize_t n = read(fds[0], (char *)m + got, sizeof *m - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    sg_status rc;
    if (!m) {
        rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", uri);
    } else if (got != sizeof *m) {
        rc =
            WIFSIGNALED(status)
                ? sg_errf(err, SG_EIO, "%s: the process resolving it was killed (signal %d, %s)",
                          uri, WTERMSIG(status), strsignal(WTERMSIG(status)))
                : sg_errf(err, SG_EIO, "%s: the process resolving it ended without an answer", uri);
    } else if (m->rc != SG_OK) {
        m->err.msg[sizeof m->err.msg - 1] = '\0';
        *err = m->err;
        rc = m->rc;
    } else if (strnlen(m->path, sizeof m->path) >= len || strnlen(m->sha256, 65) != 64) {
        rc = sg_errf(err, SG_EINPUT, "%s: the artifact path is too long", uri);
    } else {
        memcpy(path, m->path, strlen(m->path) + 1);
        memcpy(sha256, m->sha256, 65);
        rc = SG_OK;
    }
    free(m);
    return rc;
}
