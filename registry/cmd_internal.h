/* Shared state of the `stagegate registry` subcommands. */
#ifndef STAGEGATE_REGISTRY_CMD_INTERNAL_H
#define STAGEGATE_REGISTRY_CMD_INTERNAL_H

#include "stagegate/cli.h"
#include "stagegate/registry.h"

typedef struct {
    const char *sub;
    const char *db;
    const char *as;
    const char *report;
    const char *comment;
    const char *stages;
    const char *transitions;
    const char *report_stage;
    const char *description;
    const char *max_age;
    bool json, reject, require_approval;
    /* repeated options and positionals point into argv */
    const char **pos, **signers, **promoters, **approvers, **tags, **single, **multi;
    size_t n_pos, n_signers, n_promoters, n_approvers, n_tags, n_single, n_multi;
} reg_cli;

int reg_cli_read(reg_cli *c, sg_registry *reg);
int reg_cli_fail(int rc, const sg_err *err);
/* `registry record` and `registry runs` (cmd_runs.c); argv[0] = "registry". */
int reg_cmd_runs(int argc, char **argv);

#endif
