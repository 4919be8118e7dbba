/* The sandboxed dry run (datasets/h5sandbox.c): what the child may not do, and how its end
   reaches the caller -- success, its own one-line refusal, or a death named as malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void test_disabled(void **state)
{
    sg_err err = {{0}};
    sg_h5_sandbox_enable(false);
    /* Off: the parse is not run at all (the caller then parses in-process). */
    assert_int_equal(sg_h5_sandboxed("f.h5", crash_parse, "format", &err), SG_OK);
    sg_h5_sandbox_enable(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcomes),
        cmocka_unit_test(test_confined),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
