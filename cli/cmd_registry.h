/* Shared state of the `stagegate registry` subcommands. */
#ifndef STAGEGATE_CLI_CMD_REGISTRY_H
#define STAGEGATE_CLI_CMD_REGISTRY_H

#include "cli.h"
#include "stagegate/compare.h"
#include "stagegate/registry.h"

typedef struct {
    const char *sub;
    char cmd[64]; /* "registry SUB", for usage errors */
    const char *db, *as, *report, *comment, *stages, *transitions, *report_stage, *description;
    const char *pubkey, *model, *fingerprint; /* record, runs */
    const char *from, *to;                    /* migrate; set-run-verdict --from */
    int64_t max_age, version, limit;          /* 0 = not given */
    bool json, reject, require_approval;
    const char *pos[4]; /* positionals point into argv */
    int n_pos;
    sg_opt_list dbs; /* --db after the subcommand: at most one in all */
    sg_opt_list signers, promoters, approvers, tags, single, multi;
} reg_cli;

int reg_cli_read(reg_cli *c, sg_registry *reg);
/* Prints a read subcommand's document (get, list, search, history, verify-log) as the local
 * registry does: JSON with --json, the short human form otherwise. Takes the reference. */
int reg_cli_print(reg_cli *c, json_t *doc);
/* Every subcommand through a server: --db http://HOST:PORT or https://... (cmd_registry_remote.c). */
bool reg_cli_is_remote(const char *db);
int reg_cli_remote(reg_cli *c);
int reg_cli_fail(int rc, const sg_err *err);
/* `registry record`, `registry runs` and `registry set-run-verdict` (cmd_runs.c). */
int reg_cmd_runs(reg_cli *c);
extern const char reg_runs_usage[];
/* `registry init` and `registry migrate` (cmd_registry_admin.c). */
int reg_cmd_admin(reg_cli *c);
extern const char reg_admin_usage[];

#endif
