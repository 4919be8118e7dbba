/* `stagegate registry ...`: option parsing and the state-changing subcommands. */
#include <stdlib.h>
#include <string.h>

#include "cmd_internal.h"

static const char usage_text[] =
    "usage: stagegate registry [--db PATH] [--json] SUBCOMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "  create-model NAME [--signer PUB]... [--promoter STAGE=PUB]... [--approver PUB]...\n"
    "               [--require-approval] [--stages S1,S2,...] [--max-report-age DAYS]\n"
    "               [--report-stage STAGE] [--transitions A>B,...] [--single-version STAGE]...\n"
    "               [--multi-version STAGE]... [--description TEXT] [--tag K=V]... [--as KEY.pem]\n"
    "  create-version NAME ARTIFACT [--as KEY.pem]      prints the new version number\n"
    "  transition NAME VERSION STAGE [--report R.intoto.json] [--as KEY.pem]\n"
    "  approve NAME VERSION [--reject] [--comment TEXT] --as KEY.pem\n"
    "  rollback NAME --as KEY.pem\n"
    "  set-tag NAME VERSION KEY VALUE | delete-tag NAME VERSION KEY   [--as KEY.pem]\n"
    "  set-alias NAME ALIAS VERSION | delete-alias NAME ALIAS          [--as KEY.pem]\n"
    "  get NAME [VERSION] | list | search \"FILTER\" | history NAME | verify-log\n"
    "  resolve URI          models:/NAME/VERSION, models:/NAME/STAGE, models:/NAME@ALIAS\n"
    "  record REPORT [--pubkey PUB] [--model NAME]      add a run to the history "
    "(docs/nightly.md)\n"
    "  runs NAME [--version V] [--fingerprint ID] [--limit N]   list recorded runs\n"
    "\n"
    "The database is --db PATH, else $" SG_REGISTRY_ENV ", else " SG_REGISTRY_DEFAULT_PATH ".\n"
    "--db and --json go before or after the subcommand (not both places for --db).\n"
    "FILTER: name = 'x', name LIKE 'f%', tags.K = 'v', stage = 'S', joined by AND.\n"
    "--json: reads print one JSON document; writes print the version (or model) they changed.\n"
    "Exit codes: 0 ok, 1 refused by a gate or an authorization check, 2 usage or input error.\n";

typedef struct {
    const char *name;
    int min_pos, max_pos;
    bool write;
} sub_spec;

static const sub_spec subs[] = {
    {"create-model", 1, 1, true}, {"create-version", 2, 2, true}, {"transition", 3, 3, true},
    {"approve", 2, 2, true},      {"rollback", 1, 1, true},       {"set-tag", 4, 4, true},
    {"delete-tag", 3, 3, true},   {"set-alias", 3, 3, true},      {"delete-alias", 2, 2, true},
    {"get", 1, 2, false},         {"list", 0, 0, false},          {"search", 0, 1, false},
    {"history", 1, 1, false},     {"verify-log", 0, 0, false},    {"resolve", 1, 1, false},
};

int reg_cli_fail(int rc, const sg_err *err)
{
    return sg_cli_fail(rc, err);
}

/* Options taking a value: where each one is stored. */
static const char **value_slot(reg_cli *c, const char *opt)
{
    static const char *const names[] = {"--db",           "--as",          "--report",
                                        "--comment",      "--stages",      "--transitions",
                                        "--report-stage", "--description", "--max-report-age"};
    const char **slots[] = {&c->db,           &c->as,          &c->report,
                            &c->comment,      &c->stages,      &c->transitions,
                            &c->report_stage, &c->description, &c->max_age};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(opt, names[i])) return slots[i];
    return NULL;
}

static int parse_args(reg_cli *c, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], **slot;
        if (!strcmp(a, "--json"))
            c->json = true;
        else if (!strcmp(a, "--reject"))
            c->reject = true;
        else if (!strcmp(a, "--require-approval"))
            c->require_approval = true;
        else if (a[0] == '-' && a[1] == '-' && a[2]) {
            if (i + 1 >= argc) return sg_cli_usage_error("registry", "%s needs a value", a);
            const char *v = argv[++i];
            /* Two databases on one line is a mistake (often one before and one after the
             * subcommand); silently picking one could write to the wrong registry. */
            if (!strcmp(a, "--db") && c->db)
                return sg_cli_usage_error("registry", "--db given twice");
            if ((slot = value_slot(c, a)) != NULL)
                *slot = v;
            else if (!strcmp(a, "--signer"))
                c->signers[c->n_signers++] = v;
            else if (!strcmp(a, "--promoter"))
                c->promoters[c->n_promoters++] = v;
            else if (!strcmp(a, "--approver"))
                c->approvers[c->n_approvers++] = v;
            else if (!strcmp(a, "--tag"))
                c->tags[c->n_tags++] = v;
            else if (!strcmp(a, "--single-version"))
                c->single[c->n_single++] = v;
            else if (!strcmp(a, "--multi-version"))
                c->multi[c->n_multi++] = v;
            else
                return sg_cli_usage_error("registry", "unknown option %s", a);
        } else {
            c->pos[c->n_pos++] = a;
        }
    }
    return 0;
}

static int parse_version(const char *s, int64_t *v)
{
    sg_err err;
    if (sg_parse_i64("VERSION", s, 1, INT64_MAX, v, &err) != 0)
        return sg_cli_usage_error("registry", "VERSION '%s' is not a positive integer", s);
    return 0;
}

/* Signs the request for this subcommand when --as was given. */
static int sign(const reg_cli *c, const char *action, const char *model, int64_t version,
                const char *target, const char *evidence, sg_registry_request *req,
                sg_registry_request **out)
{
    *out = NULL;
    if (!c->as) return SG_OK;
    sg_err err;
    int rc = sg_registry_request_sign(c->as, action, model, version, target, evidence, req, &err);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    *out = req;
    return SG_OK;
}

/* With --json a successful write prints the state it left: the version (version > 0) or the
 * model, so scripts read the new version number or stage from one JSON document. */
static int print_written(sg_registry *reg, const char *model, int64_t version)
{
    sg_err err;
    json_t *doc = version > 0 ? sg_registry_get_version(reg, model, version, &err)
                              : sg_registry_get_model(reg, model, &err);
    if (!doc) return reg_cli_fail(SG_EIO, &err);
    int rc = sg_json_print(doc) == 0 ? 0 : 2;
    json_decref(doc);
    return rc;
}

static int split_list(char *s, const char **out, size_t max, size_t *n)
{
    *n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == max) return -1;
        out[(*n)++] = t;
    }
    return 0;
}

static int cmd_create_model(reg_cli *c, sg_registry *reg)
{
    sg_registry_model_spec sp = {.name = c->pos[0],
                                 .description = c->description,
                                 .transitions = c->transitions,
                                 .report_stage = c->report_stage,
                                 .multi_stages = c->multi,
                                 .n_multi = c->n_multi,
                                 .single_stages = c->single,
                                 .n_single = c->n_single,
                                 .tags = c->tags,
                                 .n_tags = c->n_tags,
                                 .require_approval = c->require_approval};
    sg_err err;
    sg_registry_request req, *rp = NULL;
    int signed_rc = sign(c, "create-model", sp.name, 0, "", "", &req, &rp);
    if (signed_rc != SG_OK) return signed_rc;
    const char *stages[64];
    char *stage_buf = NULL;
    if (c->stages) {
        stage_buf = strdup(c->stages);
        if (!stage_buf || split_list(stage_buf, stages, 64, &sp.n_stages) != 0) {
            free(stage_buf);
            sg_registry_request_clear(rp);
            return sg_cli_usage_error("registry", "--stages: too many stages");
        }
        sp.stages = stages;
    }
    if (c->max_age && sg_parse_i64("--max-report-age", c->max_age, 1, 36500,
                                   &sp.max_report_age_days, &err) != 0) {
        free(stage_buf);
        sg_registry_request_clear(rp);
        return reg_cli_fail(SG_EINPUT, &err);
    }
    size_t nk = c->n_signers + c->n_promoters + c->n_approvers;
    sg_registry_key_ref *keys = calloc(nk ? nk : 1, sizeof *keys);
    char **stage_copies = calloc(c->n_promoters ? c->n_promoters : 1, sizeof *stage_copies);
    int rc = keys && stage_copies ? SG_OK : sg_errf(&err, SG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == SG_OK && i < c->n_signers; i++)
        keys[i].path = c->signers[i];
    for (size_t i = 0; rc == SG_OK && i < c->n_promoters; i++) {
        const char *eq = strchr(c->promoters[i], '=');
        if (!eq) {
            rc = sg_errf(&err, SG_EINPUT, "--promoter: '%s' is not STAGE=PUB.pem", c->promoters[i]);
            break;
        }
        stage_copies[i] = strndup(c->promoters[i], (size_t)(eq - c->promoters[i]));
        keys[c->n_signers + i] = (sg_registry_key_ref){.stage = stage_copies[i], .path = eq + 1};
    }
    for (size_t i = 0; rc == SG_OK && i < c->n_approvers; i++)
        keys[c->n_signers + c->n_promoters + i].path = c->approvers[i];
    sp.signers = keys;
    sp.n_signers = c->n_signers;
    sp.promoters = keys ? keys + c->n_signers : NULL;
    sp.n_promoters = c->n_promoters;
    sp.approvers = keys ? keys + c->n_signers + c->n_promoters : NULL;
    sp.n_approvers = c->n_approvers;
    if (rc == SG_OK) rc = sg_registry_create_model(reg, &sp, rp, &err);
    sg_registry_request_clear(rp);
    for (size_t i = 0; stage_copies && i < c->n_promoters; i++)
        free(stage_copies[i]);
    free(stage_copies);
    free(keys);
    free(stage_buf);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if (c->json) return print_written(reg, c->pos[0], 0);
    printf("created model %s\n", c->pos[0]);
    return 0;
}

static int cmd_create_version(reg_cli *c, sg_registry *reg)
{
    sg_err err;
    char sha[65] = "";
    sg_registry_request req, *rp = NULL;
    int64_t v = 0;
    int rc;
    if (c->as && (rc = sg_sha256_file_hex(c->pos[1], sha, &err)) != SG_OK)
        return reg_cli_fail(rc, &err);
    if ((rc = sign(c, "create-version", c->pos[0], 0, "", sha, &req, &rp)) != SG_OK) return rc;
    rc = sg_registry_create_version(reg, c->pos[0], c->pos[1], rp, &v, &err);
    sg_registry_request_clear(rp);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if (c->json) return print_written(reg, c->pos[0], v);
    printf("%lld\n", (long long)v);
    return 0;
}

static int cmd_transition(reg_cli *c, sg_registry *reg)
{
    int64_t v;
    if (parse_version(c->pos[1], &v)) return 2;
    sg_err err;
    uint8_t *report = NULL;
    size_t len = 0;
    char sha[65] = "";
    int rc;
    if (c->report) {
        if ((rc = sg_read_file(c->report, 64u << 20, &report, &len, &err)) != SG_OK)
            return reg_cli_fail(rc, &err);
        sg_sha256_hex(report, len, sha);
    }
    sg_registry_request req, *rp = NULL;
    if ((rc = sign(c, "transition", c->pos[0], v, c->pos[2], sha, &req, &rp)) != SG_OK) {
        free(report);
        return rc;
    }
    rc = sg_registry_transition(reg, c->pos[0], v, c->pos[2], report, len, rp, &err);
    sg_registry_request_clear(rp);
    free(report);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if (c->json) return print_written(reg, c->pos[0], v);
    printf("%s v%lld -> %s\n", c->pos[0], (long long)v, c->pos[2]);
    return 0;
}

static int cmd_approve(reg_cli *c, sg_registry *reg)
{
    int64_t v;
    if (parse_version(c->pos[1], &v)) return 2;
    if (!c->as) return sg_cli_usage_error("registry", "approve needs --as KEY.pem");
    char sha[65] = "";
    const char *comment = c->comment ? c->comment : "";
    if (*comment) sg_sha256_hex((const uint8_t *)comment, strlen(comment), sha);
    sg_registry_request req, *rp = NULL;
    int rc = sign(c, c->reject ? "reject" : "approve", c->pos[0], v, "Production", sha, &req, &rp);
    if (rc != SG_OK) return rc;
    sg_err err;
    rc = sg_registry_approve(reg, c->pos[0], v, c->reject, comment, rp, &err);
    if (rc == SG_OK && c->json) {
        json_t *doc =
            json_pack("{sssIssss}", "name", c->pos[0], "version", (json_int_t)v, "decision",
                      c->reject ? "rejected" : "approved", "approver_key_id", rp->key_id);
        if (!doc || sg_json_print(doc) != 0)
            rc = sg_errf(&err, SG_EIO, "cannot write JSON to stdout");
        json_decref(doc);
    } else if (rc == SG_OK) {
        printf("%s v%lld %s by key %.16s\n", c->pos[0], (long long)v,
               c->reject ? "rejected" : "approved", rp->key_id);
    }
    sg_registry_request_clear(rp);
    return rc == SG_OK ? 0 : reg_cli_fail(rc, &err);
}

static int cmd_rollback(reg_cli *c, sg_registry *reg)
{
    if (!c->as) return sg_cli_usage_error("registry", "rollback needs --as KEY.pem");
    sg_registry_request req, *rp = NULL;
    int rc = sign(c, "rollback", c->pos[0], 0, "Production", "", &req, &rp);
    if (rc != SG_OK) return rc;
    sg_err err;
    int64_t restored = 0, archived = 0;
    rc = sg_registry_rollback(reg, c->pos[0], rp, &restored, &archived, &err);
    sg_registry_request_clear(rp);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if (c->json) {
        json_t *doc = json_pack("{sssIsI}", "name", c->pos[0], "restored_version",
                                (json_int_t)restored, "archived_version", (json_int_t)archived);
        rc = doc && sg_json_print(doc) == 0 ? 0 : 2;
        json_decref(doc);
        return rc;
    }
    printf("%s: v%lld restored to Production, v%lld archived\n", c->pos[0], (long long)restored,
           (long long)archived);
    return 0;
}

static int cmd_tag_alias(reg_cli *c, sg_registry *reg)
{
    sg_err err;
    int64_t v = 0;
    int rc;
    sg_registry_request req, *rp = NULL;
    bool tag = !strcmp(c->sub, "set-tag") || !strcmp(c->sub, "delete-tag");
    if (tag) {
        if (parse_version(c->pos[1], &v)) return 2;
        const char *value = !strcmp(c->sub, "set-tag") ? c->pos[3] : NULL;
        char sha[65] = "";
        if (value) sg_sha256_hex((const uint8_t *)value, strlen(value), sha);
        if ((rc = sign(c, c->sub, c->pos[0], v, c->pos[2], sha, &req, &rp)) != SG_OK) return rc;
        rc = sg_registry_set_tag(reg, c->pos[0], v, c->pos[2], value, rp, &err);
    } else {
        if (!strcmp(c->sub, "set-alias") && parse_version(c->pos[2], &v)) return 2;
        if ((rc = sign(c, c->sub, c->pos[0], v, c->pos[1], "", &req, &rp)) != SG_OK) return rc;
        rc = sg_registry_set_alias(reg, c->pos[0], c->pos[1], v, rp, &err);
    }
    sg_registry_request_clear(rp);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    /* delete-alias leaves no version to show: the model, with its remaining aliases */
    return c->json ? print_written(reg, c->pos[0], !strcmp(c->sub, "delete-alias") ? 0 : v) : 0;
}

static int run_write(reg_cli *c, sg_registry *reg)
{
    if (!strcmp(c->sub, "create-model")) return cmd_create_model(c, reg);
    if (!strcmp(c->sub, "create-version")) return cmd_create_version(c, reg);
    if (!strcmp(c->sub, "transition")) return cmd_transition(c, reg);
    if (!strcmp(c->sub, "approve")) return cmd_approve(c, reg);
    if (!strcmp(c->sub, "rollback")) return cmd_rollback(c, reg);
    return cmd_tag_alias(c, reg);
}

/* Global options before the subcommand, as git takes `-C`: `registry --db PATH --json get m`.
 * Only --db and --json may come there; they are moved to just after the subcommand, so each
 * subcommand's own parser sees one argument list. Returns the new argc, or -1 with *ret set
 * (usage error or --help). */
static int hoist_global_options(int argc, char **argv, char **out, int *ret)
{
    int i = 1, n = 0;
    out[n++] = argv[0];
    char *db_opt = NULL, *db = NULL, *json = NULL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            *ret = 0;
            return -1;
        }
        if (!strcmp(a, "--json")) {
            json = argv[i];
            continue;
        }
        if (strcmp(a, "--db") != 0) {
            *ret = sg_cli_usage_error("registry",
                                      "%s before the subcommand: only --db and --json may come "
                                      "there; put it after the subcommand",
                                      a);
            return -1;
        }
        if (db) {
            *ret = sg_cli_usage_error("registry", "--db given twice");
            return -1;
        }
        if (i + 1 >= argc) {
            *ret = sg_cli_usage_error("registry", "--db needs a value");
            return -1;
        }
        db_opt = argv[i];
        db = argv[++i];
    }
    if (i >= argc) {
        *ret = sg_cli_usage_error("registry", "missing subcommand");
        return -1;
    }
    out[n++] = argv[i++];
    if (db) out[n++] = db_opt, out[n++] = db;
    if (json) out[n++] = json;
    while (i < argc)
        out[n++] = argv[i++];
    out[n] = NULL;
    return n;
}

int sg_cmd_registry(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (argv[1][0] == '-') {
        char **moved = calloc((size_t)argc + 1, sizeof *moved);
        if (!moved) return 2;
        int ret = 0, n = hoist_global_options(argc, argv, moved, &ret);
        if (n > 0) ret = sg_cmd_registry(n, moved);
        free(moved);
        return ret;
    }
    /* The run history has its own options (registry/cmd_runs.c). */
    if (!strcmp(argv[1], "record") || !strcmp(argv[1], "runs")) return reg_cmd_runs(argc, argv);
    const sub_spec *sp = NULL;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name)) sp = &subs[i];
    if (!sp) return sg_cli_usage_error("registry", "unknown subcommand '%s'", argv[1]);
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    reg_cli c = {.sub = sp->name};
    size_t n = (size_t)argc;
    const char **buf = calloc(7 * n, sizeof *buf);
    if (!buf) return 2;
    c.pos = buf, c.signers = buf + n, c.promoters = buf + 2 * n, c.approvers = buf + 3 * n;
    c.tags = buf + 4 * n, c.single = buf + 5 * n, c.multi = buf + 6 * n;
    int ret = parse_args(&c, argc, argv);
    if (ret == 0 && ((int)c.n_pos < sp->min_pos || (int)c.n_pos > sp->max_pos))
        ret = sg_cli_usage_error("registry", "%s takes %d%s argument%s, got %zu", sp->name,
                                 sp->min_pos, sp->max_pos > sp->min_pos ? " or more" : "",
                                 sp->max_pos == 1 ? "" : "s", c.n_pos);
    if (ret != 0) {
        free(buf);
        return ret;
    }
    sg_registry *reg = NULL;
    sg_err err;
    int rc =
        sg_registry_open(sg_registry_path(c.db), !strcmp(sp->name, "create-model"), &reg, &err);
    if (rc != SG_OK) {
        free(buf);
        return reg_cli_fail(rc, &err);
    }
    ret = sp->write ? run_write(&c, reg) : reg_cli_read(&c, reg);
    sg_registry_close(reg);
    free(buf);
    return ret;
}
