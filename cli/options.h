/*
 * One option parser for every command, in the way git's parse-options works:
 * each command (and each registry subcommand) declares the options it takes
 * in a table, and the parser refuses anything else with the same wording
 * everywhere. Values point into argv; nothing is allocated.
 *
 *   --name VALUE, --name=VALUE, --flag, -h/--help, and "--" ends the options.
 *   An option that takes one value may be given once (a second is a usage error); list
 *   options repeat; a repeated flag is the same flag.
 */
#ifndef STAGEGATE_CLI_OPTIONS_H
#define STAGEGATE_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SG_OPT_END = 0,
    SG_OPT_FLAG,    /* bool *: set to true */
    SG_OPT_STRING,  /* const char **: given at most once, as INT and DOUBLE */
    SG_OPT_LIST,    /* sg_opt_list *: repeatable, in order */
    SG_OPT_INT,     /* int64_t *, within [min, max] */
    SG_OPT_DOUBLE,  /* double *, within [min, max], finite */
    SG_OPT_VERSION, /* int64_t *: a registry version in its one spelling (1, 2, ... no "02") */
} sg_opt_kind;

#define SG_OPT_LIST_MAX 64
typedef struct {
    const char *v[SG_OPT_LIST_MAX];
    size_t n;
} sg_opt_list;

typedef struct {
    sg_opt_kind kind;
    const char *name; /* long name without the dashes */
    void *value;
    double min, max; /* SG_OPT_INT, SG_OPT_DOUBLE */
    bool *seen;      /* optional: set when the option was given */
} sg_opt;

#define SG_OPT_FLAG_(n, p)                                                                         \
    {                                                                                              \
        SG_OPT_FLAG, n, p, 0, 0, NULL                                                              \
    }
#define SG_OPT_STR(n, p)                                                                           \
    {                                                                                              \
        SG_OPT_STRING, n, p, 0, 0, NULL                                                            \
    }
#define SG_OPT_LIST_(n, p)                                                                         \
    {                                                                                              \
        SG_OPT_LIST, n, p, 0, 0, NULL                                                              \
    }
#define SG_OPT_INT_(n, p, lo, hi)                                                                  \
    {                                                                                              \
        SG_OPT_INT, n, p, lo, hi, NULL                                                             \
    }
#define SG_OPT_INT_SEEN(n, p, lo, hi, s)                                                           \
    {                                                                                              \
        SG_OPT_INT, n, p, lo, hi, s                                                                \
    }
#define SG_OPT_VERSION_(n, p)                                                                      \
    {                                                                                              \
        SG_OPT_VERSION, n, p, 1, 0, NULL                                                           \
    }
#define SG_OPT_DBL(n, p, lo, hi)                                                                   \
    {                                                                                              \
        SG_OPT_DOUBLE, n, p, lo, hi, NULL                                                          \
    }
#define SG_OPT_END_                                                                                \
    {                                                                                              \
        SG_OPT_END, NULL, NULL, 0, 0, NULL                                                         \
    }

enum {
    SG_OPTS_OK = 0,
    SG_OPTS_HELP = 1,   /* -h or --help was given: print usage, exit 0 */
    SG_OPTS_ERROR = -1, /* a one-line usage error was printed: exit 2 */
};

/*
 * Parses argv[first..argc) against opts; positional arguments go to pos (at
 * most max_pos, else a usage error). `cmd` names the command in errors, e.g.
 * "bench" or "registry list".
 */
int sg_opts_parse(const char *cmd, const sg_opt *opts, int argc, char **argv, int first,
                  const char **pos, int max_pos, int *n_pos);

#endif
