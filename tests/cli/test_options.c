/* The one option parser: values, flags, lists, ranges, "--", and the errors it refuses with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"

typedef struct {
    const char *model;
    bool json;
    int64_t n;
    double x;
    sg_opt_list tags;
    bool n_seen;
} parsed;

/* Parses argv (NULL-terminated) and captures the one stderr line, if any. */
static int parse(parsed *p, char *err_line, size_t cap, const char **pos, int *n_pos, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, n_pos);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    memset(p, 0, sizeof *p);
    const sg_opt opts[] = {
        SG_OPT_STR("model", &p->model),
        SG_OPT_FLAG_("json", &p->json),
        SG_OPT_INT_SEEN("n", &p->n, 1, 10, &p->n_seen),
        SG_OPT_DBL("x", &p->x, 0, 1),
        SG_OPT_LIST_("tag", &p->tags),
        SG_OPT_END_,
    };
    fflush(stderr);
    char path[] = "/tmp/sg_opts_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    int rc = sg_opts_parse("demo", opts, argc, argv, 0, pos, 2, n_pos);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fdopen(fd, "r");
    rewind(f);
    err_line[0] = '\0';
    if (!fgets(err_line, (int)cap, f)) err_line[0] = '\0';
    fclose(f);
    unlink(path);
    return rc;
}

static void values_flags_lists(void **state)
{
    (void)state;
    parsed p;
    char e[512];
    const char *pos[2];
    int n;
    assert_int_equal(parse(&p, e, sizeof e, pos, &n, "--model", "m.h5", "--json", "--n=7", "--x",
                           "0.25", "--tag", "a", "--tag=b", "first", NULL),
                     SG_OPTS_OK);
    assert_string_equal(p.model, "m.h5");
    assert_true(p.json && p.n_seen);
    assert_int_equal(p.n, 7);
    assert_true(p.x == 0.25);
    assert_int_equal(p.tags.n, 2);
    assert_string_equal(p.tags.v[1], "b");
    assert_int_equal(n, 1);
    assert_string_equal(pos[0], "first");
    assert_string_equal(e, "");
    /* "--" ends the options; a value may start with a dash */
    assert_int_equal(parse(&p, e, sizeof e, pos, &n, "--model", "-odd", "--", "--json", NULL),
                     SG_OPTS_OK);
    assert_string_equal(p.model, "-odd");
    assert_false(p.json);
    assert_string_equal(pos[0], "--json");
    assert_int_equal(parse(&p, e, sizeof e, pos, &n, "--json", "-h", "--bogus", NULL),
                     SG_OPTS_HELP);
}

static void refusals(void **state)
{
    (void)state;
    parsed p;
    char e[512];
    const char *pos[2];
    int n;
    struct {
        const char *a, *b, *want;
    } cases[] = {
        {"--reject", NULL,
         "stagegate demo: unknown option '--reject' (see 'stagegate demo --help')"},
        {"--bogus=1", NULL, "unknown option '--bogus'"},
        {"-x", NULL, "unknown option '-x'"},
        {"--model", NULL, "option '--model' needs a value"},
        {"--json=yes", NULL, "option '--json' takes no value"},
        {"--n", "11", "--n: '11' is not an integer in [1, 10]"},
        {"--n", "3x", "--n: '3x' is not an integer in [1, 10]"},
        {"--x", "nan", "--x: 'nan' is not a number in [0, 1]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse(&p, e, sizeof e, pos, &n, cases[i].a, cases[i].b, NULL);
        assert_int_equal(rc, SG_OPTS_ERROR);
        if (!strstr(e, cases[i].want))
            fail_msg("%s: got '%s', want '%s'", cases[i].a, e, cases[i].want);
        assert_non_null(strchr(e, '\n'));
    }
    assert_int_equal(parse(&p, e, sizeof e, pos, &n, "a", "b", "c", NULL), SG_OPTS_ERROR);
    assert_non_null(strstr(e, "unexpected argument 'c'"));
}

/* An option that takes one value, given twice, in any spelling: refused, whatever the
   values (a script appending `--x 0.9` to a line that has `--x 0.25` must not get either
   silently). Lists repeat; a repeated flag is still the flag. */
static void repeats(void **state)
{
    (void)state;
    parsed p;
    char e[512];
    const char *pos[2];
    int n;
    struct {
        const char *a[4], *name;
    } cases[] = {
        {{"--model", "a.h5", "--model", "b.h5"}, "--model"},
        {{"--model=a.h5", "--model", "a.h5", NULL}, "--model"},
        {{"--n", "3", "--n=3", NULL}, "--n"},
        {{"--x=0.25", "--x=0.9", NULL, NULL}, "--x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse(&p, e, sizeof e, pos, &n, cases[i].a[0], cases[i].a[1], cases[i].a[2],
                       cases[i].a[3], NULL);
        assert_int_equal(rc, SG_OPTS_ERROR);
        char want[64];
        snprintf(want, sizeof want, "option '%s' given twice (it takes one value)", cases[i].name);
        if (!strstr(e, want)) fail_msg("case %zu: got '%s', want '%s'", i, e, want);
    }
    assert_int_equal(parse(&p, e, sizeof e, pos, &n, "--json", "--tag", "a", "--json", "--tag",
                           "a", NULL),
                     SG_OPTS_OK);
    assert_true(p.json);
    assert_int_equal(p.tags.n, 2);
    assert_string_equal(e, "");
}

static void exit_codes(void **state)
{
    (void)state;
    assert_int_equal(sg_exit_code(SG_OK), 0);
    assert_int_equal(sg_exit_code(SG_EREFUSED), 1);
    assert_int_equal(sg_exit_code(SG_EINPUT), 2);
    assert_int_equal(sg_exit_code(SG_ENOMEM), 2);
    assert_int_equal(sg_exit_code(SG_EIO), 2);
    assert_int_equal(sg_exit_code(SG_EINTERNAL), 2);
}

/* Every command in the table has a summary, and names are unique. */
static void command_table(void **state)
{
    (void)state;
    assert_true(sg_n_commands >= 9);
    for (size_t i = 0; i < sg_n_commands; i++) {
        assert_non_null(sg_commands[i].fn);
        assert_true(strlen(sg_commands[i].summary) > 10);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(sg_commands[i].name, sg_commands[j].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_flags_lists),
        cmocka_unit_test(refusals),
        cmocka_unit_test(repeats),
        cmocka_unit_test(exit_codes),
        cmocka_unit_test(command_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
