/* The sandboxed dry run (datasets/h5sandbox.c): what the child may not do, and how its end
   reaches the caller -- success, its own one-line refusal, or a death named as malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datasets/h5util.h"
#include "fixtures.h"

static sg_status ok_parse(void *arg, sg_err *err)
{
    (void)arg;
    (void)err;
    return SG_OK;
}

static sg_status refuse_parse(void *arg, sg_err *err)
{
    return sg_errf(err, SG_EINPUT, "%s: /X has rank 3, expected 2", (const char *)arg);
}

static sg_status crash_parse(void *arg, sg_err *err)
{
    (void)err;
    sg_h5_note("attribute %s", (const char *)arg);
    raise(SIGSEGV);
    return SG_OK;
}

/* The child killed from outside (the out-of-memory killer, a watchdog): SIGKILL. */
static sg_status killed_parse(void *arg, sg_err *err)
{
    (void)err;
    sg_h5_note("%s", (const char *)arg);
    raise(SIGKILL);
    return SG_OK;
}

/* Tries what a parser never needs; refuses (naming what worked) if any of it succeeds. */
static sg_status escape_parse(void *arg, sg_err *err)
{
    const char *dir = arg;
    char p[4200];
    snprintf(p, sizeof p, "%s/written", dir);
    int fd = open(p, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0) return sg_errf(err, SG_EINTERNAL, "open for writing worked");
    if (fork() == 0) _exit(0); /* the parent's wait reaps nothing if fork is refused */
    char *const argv[] = {"/bin/true", NULL};
    execv("/bin/true", argv);
    return sg_errf(err, SG_EINPUT, "x: contained");
}

static void test_outcomes(void **state)
{
    sg_err err = {{0}};
    assert_int_equal(sg_h5_sandboxed("f.h5", ok_parse, NULL, &err), SG_OK);
    assert_int_equal(sg_h5_sandboxed("f.h5", refuse_parse, "f.h5", &err), SG_EINPUT);
    assert_string_equal(err.msg, "f.h5: /X has rank 3, expected 2");
    assert_int_equal(sg_h5_sandboxed("f.h5", crash_parse, "format", &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "f.h5: malformed HDF5 file"));
    assert_non_null(strstr(err.msg, "reading attribute format"));
    assert_null(strchr(err.msg, '\n'));
    /* a child killed from outside does not make the file malformed: not an input error */
    assert_int_equal(sg_h5_sandboxed("f.h5", killed_parse, "/X chunk at row 0", &err), SG_EIO);
    assert_null(strstr(err.msg, "malformed"));
    assert_non_null(strstr(err.msg, "f.h5: the HDF5 check's child process was killed"));
    assert_non_null(strstr(err.msg, "the file was not checked"));
}

static void test_confined(void **state)
{
    char dir[4096];
    fx_mkdtemp(dir, sizeof dir);
    sg_err err = {{0}};
    int rc = sg_h5_sandboxed("f.h5", escape_parse, dir, &err);
    char p[4200];
    snprintf(p, sizeof p, "%s/written", dir);
    bool written = access(p, F_OK) == 0;
    unlink(p);
    rmdir(dir);
    assert_false(written);
    assert_int_equal(rc, SG_EINPUT);
    assert_string_equal(err.msg, "x: contained");
}

/* Notes the object, waits delay_ms, then dies: a note made later by another child must not
   change what this one's death names. */
typedef struct {
    const char *name;
    int delay_ms;
} slow_crash;

static sg_status slow_crash_parse(void *arg, sg_err *err)
{
    (void)err;
    const slow_crash *c = arg;
    sg_h5_note("attribute %s", c->name);
    usleep((useconds_t)c->delay_ms * 1000);
    raise(SIGSEGV);
    return SG_OK;
}

static sg_status sleep_parse(void *arg, sg_err *err)
{
    (void)arg;
    (void)err;
    sleep(30);
    return SG_OK;
}

/* Two checks at once (a dataset's and a model's): each verdict and each note is its own,
   whichever order they are waited in. */
static void test_concurrent(void **state)
{
    sg_err err = {{0}};
    slow_crash first = {"first", 400}, second = {"second", 0};
    sg_h5_pending *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(sg_h5_sandbox_start("a.h5", slow_crash_parse, &first, &a, &err), SG_OK);
    usleep(100 * 1000); /* the second child notes after the first */
    assert_int_equal(sg_h5_sandbox_start("b.h5", slow_crash_parse, &second, &b, &err), SG_OK);
    assert_int_equal(sg_h5_sandbox_start("c.h5", refuse_parse, "c.h5", &c, &err), SG_OK);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(sg_h5_sandbox_wait(c, &err), SG_EINPUT);
    assert_string_equal(err.msg, "c.h5: /X has rank 3, expected 2");
    assert_int_equal(sg_h5_sandbox_wait(b, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "b.h5: malformed HDF5 file"));
    assert_non_null(strstr(err.msg, "reading attribute second"));
    assert_int_equal(sg_h5_sandbox_wait(a, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "a.h5: malformed HDF5 file"));
    assert_non_null(strstr(err.msg, "reading attribute first"));
    /* Every child was reaped. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* A check whose verdict is no longer wanted is ended at once and leaves no child. */
static void test_cancel(void **state)
{
    sg_err err = {{0}};
    sg_h5_pending *p = NULL;
    double t0 = sg_now_seconds();
    assert_int_equal(sg_h5_sandbox_start("slow.h5", sleep_parse, NULL, &p, &err), SG_OK);
    assert_non_null(p);
    sg_h5_sandbox_cancel(p);
    assert_true(sg_now_seconds() - t0 < 10);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    sg_h5_sandbox_cancel(NULL);
    assert_int_equal(sg_h5_sandbox_wait(NULL, &err), SG_OK);
}

/* A lock another thread holds at the fork is held for ever in the child (AddressSanitizer's
   allocator lock did this to test_datasets_threads): the child blocks in futex wait. The
   parent sees it, kills it and forks again; a lock still held after three forks is an
   internal error, never a hang. */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t holder_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t holder_cv = PTHREAD_COND_INITIALIZER;
static bool holder_has_lock;

static void *holder(void *arg)
{
    int hold_ms = *(const int *)arg;
    pthread_mutex_lock(&held);
    pthread_mutex_lock(&holder_mu);
    holder_has_lock = true;
    pthread_cond_signal(&holder_cv);
    pthread_mutex_unlock(&holder_mu);
    usleep((useconds_t)hold_ms * 1000);
    pthread_mutex_unlock(&held);
    return NULL;
}

static sg_status lock_parse(void *arg, sg_err *err)
{
    (void)arg;
    (void)err;
    pthread_mutex_lock(&held);
    pthread_mutex_unlock(&held);
    return SG_OK;
}

static sg_status check_while_held(int hold_ms, sg_err *err, double *seconds)
{
    pthread_t t;
    holder_has_lock = false;
    assert_int_equal(pthread_create(&t, NULL, holder, &hold_ms), 0);
    pthread_mutex_lock(&holder_mu);
    while (!holder_has_lock)
        pthread_cond_wait(&holder_cv, &holder_mu);
    pthread_mutex_unlock(&holder_mu);
    double t0 = sg_now_seconds();
    sg_status rc = sg_h5_sandboxed("held.h5", lock_parse, NULL, err);
    *seconds = sg_now_seconds() - t0;
    pthread_join(t, NULL);
    return rc;
}

static void test_deadlocked_child(void **state)
{
    sg_err err = {{0}};
    double s;
    /* Released 1 s after the first fork: the second child runs the parse. */
    assert_int_equal(check_while_held(1000, &err, &s), SG_OK);
    assert_true(s > 1.0 && s < 20);
    /* Held through every fork. */
    assert_int_equal(check_while_held(6000, &err, &s), SG_EINTERNAL);
    assert_non_null(strstr(err.msg, "held.h5: the HDF5 check's child process deadlocked 3 times"));
    assert_true(s < 6);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_disabled(void **state)
{
    sg_err err = {{0}};
    sg_h5_sandbox_enable(false);
    /* Off: the parse is not run at all (the caller then parses in-process). */
    assert_int_equal(sg_h5_sandboxed("f.h5", crash_parse, "format", &err), SG_OK);
    sg_h5_pending *p = (sg_h5_pending *)&err;
    assert_int_equal(sg_h5_sandbox_start("f.h5", crash_parse, "format", &p, &err), SG_OK);
    assert_null(p);
    sg_h5_sandbox_enable(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcomes),
        cmocka_unit_test(test_confined),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_deadlocked_child),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
