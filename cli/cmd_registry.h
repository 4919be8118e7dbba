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
    const char *policy, *dataset; /* create-model and pin: a file, sha256:HEX or none */
    sg_opt_list admins, servers;  /* init --admin --server */
    const char *out, *checkpoint; /* checkpoint --out, verify-log --checkpoint */
} reg_cli;

int reg_cli_read(reg_cli *c, sg_registry *reg);
/* Prints a read subcommand's document (get, list, search, history, verify-log) as the local
 * registry does: JSON with --json, the short human form otherwise. Takes the reference. */
int reg_cli_print(reg_cli *c, json_t *doc);
/* Every subcommand through a server: --db http://HOST:PORT or https://... (cmd_registry_remote.c). */
bool reg_cli_is_remote(const char *db);
int reg_cli_remote(reg_cli *c);
int reg_cli_fail(int rc, const sg_err *err);
/* A VERSION argument in its one spelling (sg_version_parse); else a usage error, 2. */
int reg_cli_parse_version(const char *s, int64_t *v);
/* `registry record`, `registry runs` and `registry set-run-verdict` (cmd_runs.c). */
int reg_cmd_runs(reg_cli *c);
extern const char reg_runs_usage[];
/* `registry init` and `registry migrate` (cmd_registry_admin.c). */
int reg_cmd_admin(reg_cli *c);
extern const char reg_admin_usage[];

/* The root of trust (cmd_registry_trust.c). */
extern const char reg_trust_usage[];
/* A pin argument: a file (its sha256), sha256:HEX, or none (""). */
SG_MUST_CHECK sg_status reg_cli_digest_arg(const char *opt, const char *arg, char out[65],
                                           sg_err *err);
int reg_cmd_init_keys(reg_cli *c, sg_registry *reg);
int reg_cmd_pin(reg_cli *c, sg_registry *reg);
int reg_cmd_keys(reg_cli *c, sg_registry *reg);
int reg_cmd_checkpoint(reg_cli *c, sg_registry *reg);
/* verify-log --checkpoint: adds {"checkpoint": ...} to summary; exit status. */
int reg_cmd_check_checkpoint(reg_cli *c, sg_registry *reg, json_t *summary);

#endif
