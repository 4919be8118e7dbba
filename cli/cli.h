/*
 * The CLI layer: the command table, one file per command, the option parser.
 * It sits above every library (cli -> registry, reports, harness -> kernels ->
 * datasets -> common) and is the only place where a status becomes an exit
 * code: 0 success, 1 refused (gate failed, verification failed, registry
 * refused), 2 usage or input error.
 */
#ifndef STAGEGATE_CLI_H
#define STAGEGATE_CLI_H

#include <limits.h>

#include "stagegate/common.h"
#include "stagegate/json.h"

#include "options.h"

/* Each command gets argv with argv[0] = the command name; returns the process exit code. */
typedef int (*sg_command_fn)(int argc, char **argv);

/* What a command needs before it runs. */
enum {
    SG_CMD_NEEDS_KERNELS = 1 << 0, /* initialise the compute kernels (STAGEGATE_ISA) first */
};

typedef struct {
    const char *name;
    sg_command_fn fn;
    unsigned flags;
    const char *summary;
} sg_command;

/* The command table (main.c) and its size. */
extern const sg_command sg_commands[];
extern const size_t sg_n_commands;

/* Runs `stagegate ARGS...` as main does; returns the exit code. */
int sg_cli_main(int argc, char **argv);

int sg_cmd_eval(int argc, char **argv);     /* cmd_eval.c */
int sg_cmd_bench(int argc, char **argv);    /* cmd_bench.c */
int sg_cmd_clock(int argc, char **argv);    /* cmd_clock.c */
int sg_cmd_keygen(int argc, char **argv);   /* cmd_keys.c */
int sg_cmd_verify(int argc, char **argv);   /* cmd_verify.c */
int sg_cmd_gate(int argc, char **argv);     /* cmd_gate.c */
int sg_cmd_registry(int argc, char **argv); /* cmd_registry.c */
int sg_cmd_compare(int argc, char **argv);  /* cmd_compare.c */
int sg_cmd_trend(int argc, char **argv);    /* cmd_trend.c */
int sg_cmd_serve(int argc, char **argv);    /* cmd_serve.c */
int sg_cmd_token(int argc, char **argv);    /* cmd_serve.c */

/* Maps a status to the documented process exit code: 0, 1 (refused) or 2. */
int sg_exit_code(int status);
/* Prints "stagegate: <msg>" on one line to stderr and returns the exit code for status. */
int sg_cli_fail(int status, const sg_err *err);
/* Prints a usage error naming the command (exit 2). */
int sg_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An option's path and how to name it ("--out"); lists end with what == NULL, NULL paths are
 * options not given. */
typedef struct {
    const char *what, *path;
} sg_cli_path;
/* 0 when no output names the same file as an input or as another output (by device and inode
 * when both exist, else by resolved directory and name); else a usage error (exit 2). */
int sg_cli_check_outputs(const char *cmd, const sg_cli_path *inputs, const sg_cli_path *outputs);
/* The same check for a command past its usage stage: SG_EINPUT with the reason in err. */
sg_status sg_cli_outputs_err(const sg_cli_path *inputs, const sg_cli_path *outputs, sg_err *err);
/* A usage error (2) when --db was given empty: an unset variable in a script is not "the
 * default registry", which could resolve a model from another registry in the working
 * directory; else 0. */
int sg_cli_db_empty(const char *cmd, const char *db);
/* A registry's local files as inputs for that check: the SQLite file (sg_registry_file; NULL
   for none) and its -wal, -shm and -journal, into ins[0..3], their names built in bufs. */
void sg_cli_registry_inputs(const char *file, sg_cli_path ins[4], char bufs[3][PATH_MAX]);
/* The registry file an output must not overwrite: --db's (or $STAGEGATE_REGISTRY's) when the
   command uses the registry, and otherwise that file too if it exists (gate --out with
   STAGEGATE_REGISTRY set and no models:/ URI had replaced the registry with the report). */
const char *sg_cli_registry_guarded(const char *db, bool used);

/*
 * A models:/ URI resolved to its artifact path and registered digest (as
 * sg_registry_resolve_uri_digest) in a forked child, so that the registry's library, page
 * cache and connection never enter this process's memory: the peak resident set that gate
 * holds to memory.max_rss_mb (and eval and bench report) is the same whether a model was
 * named by path or by URI. Had it been resolved here, a URI baseline added about 1 MiB
 * (libsqlite3's pages) and flipped a budget the same candidate passed with a file baseline.
 */
SG_MUST_CHECK sg_status sg_cli_resolve_apart(const char *uri, const char *db, char *path,
                                             size_t len, char sha256[65], sg_err *err);

#endif
