/* Command entry points of the `stagegate` CLI and small shared CLI helpers. */
#ifndef STAGEGATE_CLI_H
#define STAGEGATE_CLI_H

#include <jansson.h>

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Each command gets argv with argv[0] = the command name; returns the process exit code. */
typedef int (*sg_command_fn)(int argc, char **argv);

int sg_cmd_eval(int argc, char **argv);     /* harness/cmd_eval.c */
int sg_cmd_bench(int argc, char **argv);    /* harness/cmd_bench.c */
int sg_cmd_clock(int argc, char **argv);    /* harness/cmd_clock.c */
int sg_cmd_keygen(int argc, char **argv);   /* reports/cmd_keys.c */
int sg_cmd_verify(int argc, char **argv);   /* reports/cmd_verify.c */
int sg_cmd_gate(int argc, char **argv);     /* harness/cmd_gate.c */
int sg_cmd_registry(int argc, char **argv); /* registry/cmd_registry.c */
int sg_cmd_compare(int argc, char **argv);  /* reports/cmd_compare.c */
int sg_cmd_trend(int argc, char **argv);    /* reports/cmd_trend.c */

/* Prints "stagegate: <msg>" on one line to stderr and returns the exit code for status. */
int sg_cli_fail(int status, const sg_err *err);
/* Prints a usage error (exit 2). */
int sg_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints one JSON document on stdout with keys in insertion order, then a newline. */
int sg_json_print(json_t *doc);
/* Serialises deterministically (insertion order, compact or indented) into a heap string. */
char *sg_json_dumps(json_t *doc, bool indent);
/* Adds a double that prints finite values as numbers and non-finite as null. */
int sg_json_set_real(json_t *obj, const char *key, double v);

/* Parses a non-negative integer / a double option value; returns -1 on error (message in err). */
int sg_parse_i64(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out,
                 sg_err *err);
int sg_parse_double(const char *opt, const char *s, double min, double max, double *out,
                    sg_err *err);

#ifdef __cplusplus
}
#endif
#endif
