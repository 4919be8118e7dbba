/* `stagegate registry ...`: option parsing and the state-changing subcommands. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_registry.h"
#include "stagegate/model.h"

static const char usage_text[] =
    "usage: stagegate registry [--db REGISTRY] [--json] SUBCOMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "  create-model NAME [--signer PUB]... [--promoter STAGE=PUB]... [--approver PUB]...\n"
    "               [--require-approval] [--stages S1,S2,...] [--max-report-age DAYS]\n"
    "               [--report-stage STAGE] [--transitions A>B,...] [--single-version STAGE]...\n"
    "               [--multi-version STAGE]... [--description TEXT] [--tag K=V]...\n"
    "               [--policy P --dataset D] [--as ADMIN.pem]\n"
    "  create-version NAME ARTIFACT [--as KEY.pem]      prints the new version number\n"
    "  transition NAME VERSION STAGE [--report R.intoto.json] [--as KEY.pem]\n"
    "  approve NAME VERSION [--reject] [--comment TEXT] --as KEY.pem\n"
    "  rollback NAME --as KEY.pem\n"
    "  set-tag NAME VERSION KEY VALUE | delete-tag NAME VERSION KEY   [--as KEY.pem]\n"
    "  set-alias NAME ALIAS VERSION | delete-alias NAME ALIAS          [--as KEY.pem]\n"
    "  set-description NAME [VERSION] TEXT   the version's, or the model's (\"\" clears it)\n"
    "                       [--as KEY.pem]\n"
    "  get NAME [VERSION] | list | search \"FILTER\" | history NAME | keys\n"
    "  verify-log [--checkpoint FILE [--pubkey ADMIN.pub]]   replay the audit log\n"
    "  pin NAME --policy P --dataset D --as ADMIN.pem   the gate a report must have passed\n"
    "  checkpoint --as ADMIN.pem [--out FILE]          a signed audit head to keep elsewhere\n"
    "  resolve URI          models:/NAME/VERSION, models:/NAME/STAGE, models:/NAME@ALIAS\n"
    "  record REPORT [--pubkey PUB] [--model NAME] [--version V]   add a run to the history "
    "(docs/nightly.md)\n"
    "  runs NAME [--version V] [--fingerprint ID] [--limit N]   list recorded runs\n"
    "  set-run-verdict NAME REPORT VERDICT | set-run-verdict NAME REPORT --from COMPARE.json\n"
    "                       store the nightly compare verdict of a recorded run\n"
    "  init [--admin PUB]... [--server PUB]... [--as ADMIN.pem]   create the schema (or bring\n"
    "                       it up to date); add the registry's root of trust\n"
    "  migrate --from SRC --to DST   copy a registry into an empty one, verified\n"
    "  reindex-reports      list the signers of reports stored before schema 9, so that\n"
    "                       lookups read them by key (docs/registry.md)\n"
    "\n"
    "The registry is --db REGISTRY, else $" SG_REGISTRY_ENV ", else " SG_REGISTRY_DEFAULT_PATH ":\n"
    "a file path or sqlite:PATH, or a PostgreSQL database as postgresql://[USER@]HOST[:PORT]/DB,\n"
    "postgres://... or a libpq connection string (\"host=... dbname=...\"); passwords come\n"
    "from PGPASSWORD, PGPASSFILE or ~/.pgpass, never from the command line.\n"
    "--db http(s)://HOST:PORT runs the subcommand through `stagegate serve`, as the principal of\n"
    "the token in $STAGEGATE_TOKEN, else $MLFLOW_TRACKING_TOKEN (docs/server.md).\n"
    "--db and --json go before or after the subcommand (not both places for --db).\n"
    "FILTER: name = 'x', name LIKE 'f%', tags.K = 'v', stage = 'S', joined by AND.\n"
    "--json: reads print one JSON document; writes print the version (or model) they changed.\n"
    "Exit codes: 0 ok, 1 refused by a gate or an authorization check, 2 usage or input error.\n";

/* Which options a subcommand takes: each subcommand declares its own set. */
enum {
    O_DB = 1 << 0,       /* --db (also accepted before the subcommand) */
    O_JSON = 1 << 1,     /* --json (also accepted before the subcommand) */
    O_AS = 1 << 2,       /* --as KEY.pem: a signed request */
    O_REPORT = 1 << 3,   /* transition --report */
    O_APPROVE = 1 << 4,  /* approve --reject --comment */
    O_MODEL = 1 << 5,    /* create-model's policy options */
    O_RECORD = 1 << 6,   /* record --pubkey --model --version */
    O_RUNS = 1 << 7,     /* runs --version --fingerprint --limit */
    O_ADMIN = 1 << 8,    /* init, migrate: schema and copies */
    O_COPY = 1 << 9,     /* migrate --from --to */
    O_PIN = 1 << 10,     /* create-model and pin: --policy --dataset */
    O_KEYS = 1 << 11,    /* init --admin --server */
    O_CHECK = 1 << 12,   /* verify-log --checkpoint --pubkey */
    O_OUT = 1 << 13,     /* checkpoint --out */
    O_VERDICT = 1 << 14, /* set-run-verdict --from */
};
#define O_READ (O_DB | O_JSON)
#define O_WRITE (O_DB | O_JSON | O_AS)

typedef struct {
    const char *name;
    int min_pos, max_pos;
    bool write;
    unsigned opts;
} sub_spec;

static const sub_spec subs[] = {
    {"create-model", 1, 1, true, O_WRITE | O_MODEL | O_PIN},
    {"create-version", 2, 2, true, O_WRITE},
    {"transition", 3, 3, true, O_WRITE | O_REPORT},
    {"approve", 2, 2, true, O_WRITE | O_APPROVE},
    {"rollback", 1, 1, true, O_WRITE},
    {"set-tag", 4, 4, true, O_WRITE},
    {"delete-tag", 3, 3, true, O_WRITE},
    {"set-alias", 3, 3, true, O_WRITE},
    {"delete-alias", 2, 2, true, O_WRITE},
    {"set-description", 2, 3, true, O_WRITE},
    {"get", 1, 2, false, O_READ},
    {"list", 0, 0, false, O_READ},
    {"search", 0, 1, false, O_READ},
    {"history", 1, 1, false, O_READ},
    {"verify-log", 0, 0, false, O_READ | O_CHECK},
    {"keys", 0, 0, false, O_READ},
    {"pin", 1, 1, true, O_WRITE | O_PIN},
    {"checkpoint", 0, 0, false, O_READ | O_AS | O_OUT},
    {"resolve", 1, 1, false, O_READ},
    {"record", 1, 1, false, O_READ | O_RECORD},
    {"runs", 1, 1, false, O_READ | O_RUNS},
    {"set-run-verdict", 2, 3, false, O_READ | O_VERDICT},
    {"init", 0, 0, true, O_READ | O_ADMIN | O_KEYS | O_AS},
    {"migrate", 0, 0, true, O_JSON | O_ADMIN | O_COPY},
    {"reindex-reports", 0, 0, true, O_DB | O_JSON},
};

int reg_cli_fail(int rc, const sg_err *err)
{
    return sg_cli_fail(rc, err);
}

/* The subcommand's own option table, from every registry option and the set it takes. */
static void sub_options(reg_cli *c, unsigned set, sg_opt *out)
{
    const struct {
        unsigned group;
        sg_opt opt;
    } all[] = {
        {O_DB, SG_OPT_LIST_("db", &c->dbs)},
        {O_JSON, SG_OPT_FLAG_("json", &c->json)},
        {O_AS, SG_OPT_STR("as", &c->as)},
        {O_REPORT, SG_OPT_STR("report", &c->report)},
        {O_APPROVE, SG_OPT_FLAG_("reject", &c->reject)},
        {O_APPROVE, SG_OPT_STR("comment", &c->comment)},
        {O_MODEL, SG_OPT_LIST_("signer", &c->signers)},
        {O_MODEL, SG_OPT_LIST_("promoter", &c->promoters)},
        {O_MODEL, SG_OPT_LIST_("approver", &c->approvers)},
        {O_MODEL, SG_OPT_FLAG_("require-approval", &c->require_approval)},
        {O_MODEL, SG_OPT_STR("stages", &c->stages)},
        {O_MODEL, SG_OPT_INT_("max-report-age", &c->max_age, 1, 36500)},
        {O_MODEL, SG_OPT_STR("report-stage", &c->report_stage)},
        {O_MODEL, SG_OPT_STR("transitions", &c->transitions)},
        {O_MODEL, SG_OPT_LIST_("single-version", &c->single)},
        {O_MODEL, SG_OPT_LIST_("multi-version", &c->multi)},
        {O_MODEL, SG_OPT_STR("description", &c->description)},
        {O_MODEL, SG_OPT_LIST_("tag", &c->tags)},
        {O_RECORD | O_CHECK, SG_OPT_STR("pubkey", &c->pubkey)},
        {O_PIN, SG_OPT_STR("policy", &c->policy)},
        {O_PIN, SG_OPT_STR("dataset", &c->dataset)},
        {O_KEYS, SG_OPT_LIST_("admin", &c->admins)},
        {O_KEYS, SG_OPT_LIST_("server", &c->servers)},
        {O_CHECK, SG_OPT_STR("checkpoint", &c->checkpoint)},
        {O_OUT, SG_OPT_STR("out", &c->out)},
        {O_RECORD, SG_OPT_STR("model", &c->model)},
        {O_RUNS | O_RECORD, SG_OPT_VERSION_("version", &c->version)},
        {O_RUNS, SG_OPT_STR("fingerprint", &c->fingerprint)},
        {O_RUNS, SG_OPT_INT_("limit", &c->limit, 1, (double)INT64_MAX)},
        {O_COPY, SG_OPT_STR("from", &c->from)},
        {O_COPY, SG_OPT_STR("to", &c->to)},
        {O_VERDICT, SG_OPT_STR("from", &c->from)},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i].group & set) out[n++] = all[i].opt;
    out[n] = (sg_opt)SG_OPT_END_;
}

int reg_cli_parse_version(const char *s, int64_t *v)
{
    if (!sg_version_parse(s, v))
        return sg_cli_usage_error(
            "registry",
            "VERSION '%s' is not a version (1, 2, 3, ... without leading zeros or sign)", s);
    return 0;
}

/* Signs the request for this subcommand when --as was given. */
static int sign(const reg_cli *c, sg_registry *reg, const char *action, const char *model,
                int64_t version, const char *target, const char *evidence, sg_registry_request *req,
                sg_registry_request **out)
{
    *out = NULL;
    if (!c->as) return SG_OK;
    sg_err err;
    int rc =
        sg_registry_request_sign(reg, c->as, action, model, version, target, evidence, req, &err);
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
    /* The change is committed: a failed write to stdout is main's to report (it says the
       change was kept), not an input error without a word. */
    (void)sg_json_print(doc);
    json_decref(doc);
    return 0;
}

/* Splits s at commas in place; an empty entry stays, for the name check to refuse. */
static int split_list(char *s, const char **out, size_t max, size_t *n)
{
    *n = 0;
    for (char *t; (t = strsep(&s, ",")) != NULL;) {
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
                                 .multi_stages = c->multi.v,
                                 .n_multi = c->multi.n,
                                 .single_stages = c->single.v,
                                 .n_single = c->single.n,
                                 .tags = c->tags.v,
                                 .n_tags = c->tags.n,
                                 .require_approval = c->require_approval};
    sg_err err;
    sg_registry_request req, *rp = NULL;
    char pol[65] = "", data[65] = "";
    int prc = SG_OK;
    if (c->policy) prc = reg_cli_digest_arg("policy", c->policy, pol, &err);
    if (prc == SG_OK && c->dataset) prc = reg_cli_digest_arg("dataset", c->dataset, data, &err);
    if (prc != SG_OK) return reg_cli_fail(prc, &err);
    sp.policy_sha256 = pol;
    sp.dataset_sha256 = data;
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
    sp.max_report_age_days = c->max_age;
    size_t nk = c->signers.n + c->promoters.n + c->approvers.n;
    sg_registry_key_ref *keys = calloc(nk ? nk : 1, sizeof *keys);
    char **stage_copies = calloc(c->promoters.n ? c->promoters.n : 1, sizeof *stage_copies);
    int rc = keys && stage_copies ? SG_OK : sg_errf(&err, SG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == SG_OK && i < c->signers.n; i++)
        keys[i].path = c->signers.v[i];
    for (size_t i = 0; rc == SG_OK && i < c->promoters.n; i++) {
        const char *eq = strchr(c->promoters.v[i], '=');
        if (!eq || eq == c->promoters.v[i] || !eq[1]) {
            rc = sg_errf(&err, SG_EINPUT, "--promoter: '%s' is not STAGE=PUB.pem",
                         c->promoters.v[i]);
            break;
        }
        stage_copies[i] = strndup(c->promoters.v[i], (size_t)(eq - c->promoters.v[i]));
        keys[c->signers.n + i] = (sg_registry_key_ref){.stage = stage_copies[i], .path = eq + 1};
    }
    for (size_t i = 0; rc == SG_OK && i < c->approvers.n; i++)
        keys[c->signers.n + c->promoters.n + i].path = c->approvers.v[i];
    sp.signers = keys;
    sp.n_signers = c->signers.n;
    sp.promoters = keys ? keys + c->signers.n : NULL;
    sp.n_promoters = c->promoters.n;
    sp.approvers = keys ? keys + c->signers.n + c->promoters.n : NULL;
    sp.n_approvers = c->approvers.n;
    /* An admin signs the configuration the registry will record: keys, stages, pins. */
    char cfg_sha[65] = "";
    if (rc == SG_OK && c->as) rc = sg_registry_config_digest(reg, &sp, cfg_sha, &err);
    if (rc == SG_OK && c->as) {
        int src = sign(c, reg, "create-model", sp.name, 0, "", cfg_sha, &req, &rp);
        if (src != SG_OK) {
            for (size_t i = 0; stage_copies && i < c->promoters.n; i++)
                free(stage_copies[i]);
            free(stage_copies);
            free(keys);
            free(stage_buf);
            return src;
        }
    }
    if (rc == SG_OK) rc = sg_registry_create_model(reg, &sp, rp, &err);
    sg_registry_request_clear(rp);
    for (size_t i = 0; stage_copies && i < c->promoters.n; i++)
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
    if (c->as && (rc = sg_model_digest_file_hex(c->pos[1], sha, &err)) != SG_OK)
        return reg_cli_fail(rc, &err);
    if ((rc = sign(c, reg, "create-version", c->pos[0], 0, "", sha, &req, &rp)) != SG_OK) return rc;
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
    if (reg_cli_parse_version(c->pos[1], &v)) return 2;
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
    if ((rc = sign(c, reg, "transition", c->pos[0], v, c->pos[2], sha, &req, &rp)) != SG_OK) {
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
    if (reg_cli_parse_version(c->pos[1], &v)) return 2;
    if (!c->as) return sg_cli_usage_error("registry", "approve needs --as KEY.pem");
    char sha[65] = "";
    const char *comment = c->comment ? c->comment : "";
    if (*comment) sg_sha256_hex((const uint8_t *)comment, strlen(comment), sha);
    sg_registry_request req, *rp = NULL;
    int rc =
        sign(c, reg, c->reject ? "reject" : "approve", c->pos[0], v, "Production", sha, &req, &rp);
    if (rc != SG_OK) return rc;
    sg_err err;
    rc = sg_registry_approve(reg, c->pos[0], v, c->reject, comment, rp, &err);
    if (rc == SG_OK && c->json) {
        json_t *doc =
            json_pack("{sssIssss}", "name", c->pos[0], "version", (json_int_t)v, "decision",
                      c->reject ? "rejected" : "approved", "approver_key_id", rp->key_id);
        if (doc) (void)sg_json_print(doc); /* a failed write: main reports it */
        else
            rc = sg_errf(&err, SG_ENOMEM, "out of memory");
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
    int rc = sign(c, reg, "rollback", c->pos[0], 0, "Production", "", &req, &rp);
    if (rc != SG_OK) return rc;
    sg_err err;
    int64_t restored = 0, archived = 0;
    rc = sg_registry_rollback(reg, c->pos[0], rp, &restored, &archived, &err);
    sg_registry_request_clear(rp);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if (c->json) {
        json_t *doc = json_pack("{sssIsI}", "name", c->pos[0], "restored_version",
                                (json_int_t)restored, "archived_version", (json_int_t)archived);
        if (doc) (void)sg_json_print(doc); /* a failed write: main reports it */
        json_decref(doc);
        return doc ? 0 : reg_cli_fail(SG_ENOMEM, &err);
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
        if (reg_cli_parse_version(c->pos[1], &v)) return 2;
        const char *value = !strcmp(c->sub, "set-tag") ? c->pos[3] : NULL;
        char sha[65] = "";
        if (value) sg_sha256_hex((const uint8_t *)value, strlen(value), sha);
        if ((rc = sign(c, reg, c->sub, c->pos[0], v, c->pos[2], sha, &req, &rp)) != SG_OK)
            return rc;
        rc = sg_registry_set_tag(reg, c->pos[0], v, c->pos[2], value, rp, &err);
    } else {
        if (!strcmp(c->sub, "set-alias") && reg_cli_parse_version(c->pos[2], &v)) return 2;
        if ((rc = sign(c, reg, c->sub, c->pos[0], v, c->pos[1], "", &req, &rp)) != SG_OK) return rc;
        rc = sg_registry_set_alias(reg, c->pos[0], c->pos[1], v, rp, &err);
    }
    sg_registry_request_clear(rp);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    /* delete-alias leaves no version to show: the model, with its remaining aliases */
    return c->json ? print_written(reg, c->pos[0], !strcmp(c->sub, "delete-alias") ? 0 : v) : 0;
}

/* set-description NAME [VERSION] TEXT: the version's description, or the model's. */
static int cmd_set_description(reg_cli *c, sg_registry *reg)
{
    sg_err err;
    int64_t v = 0;
    if (c->n_pos == 3 && reg_cli_parse_version(c->pos[1], &v)) return 2;
    const char *text = c->pos[c->n_pos - 1];
    char sha[65];
    sg_sha256_hex((const uint8_t *)text, strlen(text), sha);
    sg_registry_request req, *rp = NULL;
    int rc = sign(c, reg, "set-description", c->pos[0], v, "", sha, &req, &rp);
    if (rc != SG_OK) return rc;
    rc = sg_registry_set_description(reg, c->pos[0], v, text, rp, &err);
    sg_registry_request_clear(rp);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    return c->json ? print_written(reg, c->pos[0], v) : 0;
}

static int cmd_reindex_reports(reg_cli *c, sg_registry *reg)
{
    sg_err err;
    int64_t listed = 0, unlisted = 0;
    int rc = sg_registry_reindex_reports(reg, &listed, &unlisted, &err);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if (c->json)
        printf("{\"listed\": %lld, \"unlisted\": %lld}\n", (long long)listed, (long long)unlisted);
    else
        printf("%lld report(s) listed under their signers, %lld under none (no trusted key "
               "verifies them)\n",
               (long long)listed, (long long)unlisted);
    return 0;
}

static int run_write(reg_cli *c, sg_registry *reg)
{
    if (!strcmp(c->sub, "reindex-reports")) return cmd_reindex_reports(c, reg);
    if (!strcmp(c->sub, "set-description")) return cmd_set_description(c, reg);
    if (!strcmp(c->sub, "pin")) return reg_cmd_pin(c, reg);
    if (!strcmp(c->sub, "create-model")) return cmd_create_model(c, reg);
    if (!strcmp(c->sub, "create-version")) return cmd_create_version(c, reg);
    if (!strcmp(c->sub, "transition")) return cmd_transition(c, reg);
    if (!strcmp(c->sub, "approve")) return cmd_approve(c, reg);
    if (!strcmp(c->sub, "rollback")) return cmd_rollback(c, reg);
    return cmd_tag_alias(c, reg);
}

/* --out must not name a file the command reads or the registry lives in (the --as key, the
   SQLite file and its journals): writing it would destroy the registry's root of trust or
   its data. */
static bool out_names_an_input(const reg_cli *c)
{
    char j[3][PATH_MAX];
    sg_cli_path ins[] = {{"--as", c->as},
                         {"--pubkey", c->pubkey},
                         {"--checkpoint", c->checkpoint},
                         {"--report", c->report},
                         {0},
                         {0},
                         {0},
                         {0},
                         {NULL, NULL}};
    sg_cli_registry_inputs(sg_registry_file(c->db), ins + 4, j);
    const sg_cli_path outs[] = {{"--out", c->out}, {NULL, NULL}};
    return sg_cli_check_outputs(c->cmd, ins, outs) != 0;
}

int sg_cmd_registry(int argc, char **argv)
{
    reg_cli c;
    memset(&c, 0, sizeof c);
    /* Global options before the subcommand, as git takes -C: registry --db PATH --json SUB ... */
    const char *global_db = NULL;
    int first = 1;
    while (first < argc && argv[first][0] == '-') {
        const char *a = argv[first];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            c.json = true;
            first++;
            continue;
        }
        const char *v = NULL;
        if (!strncmp(a, "--db=", 5)) {
            v = a + 5;
            first++;
        } else if (!strcmp(a, "--db")) {
            if (first + 1 >= argc) return sg_cli_usage_error("registry", "--db needs a value");
            v = argv[first + 1];
            first += 2;
        } else {
            return sg_cli_usage_error(
                "registry", "%s before the subcommand: only --db and --json may come there", a);
        }
        if (global_db) return sg_cli_usage_error("registry", "--db given twice");
        global_db = v;
    }
    if (first >= argc) {
        if (first == 1) {
            fputs(usage_text, stderr);
            return 2;
        }
        return sg_cli_usage_error("registry", "missing subcommand");
    }
    const sub_spec *sp = NULL;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[first], subs[i].name)) sp = &subs[i];
    if (!sp) return sg_cli_usage_error("registry", "unknown subcommand '%s'", argv[first]);
    c.sub = sp->name;
    snprintf(c.cmd, sizeof c.cmd, "registry %s", sp->name);
    sg_opt opts[32];
    sub_options(&c, sp->opts, opts);
    int prc = sg_opts_parse(c.cmd, opts, argc, argv, first + 1, c.pos, 4, &c.n_pos);
    if (prc == SG_OPTS_HELP) {
        fputs(sp->opts & (O_RECORD | O_RUNS | O_VERDICT) ? reg_runs_usage
              : sp->opts & O_ADMIN                       ? reg_admin_usage
                                                         : usage_text,
              stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    /* Two databases named is a mistake to stop at, not a choice to make quietly. */
    if (c.dbs.n + (global_db != NULL) > 1)
        return sg_cli_usage_error("registry", "--db given twice");
    c.db = global_db ? global_db : c.dbs.n ? c.dbs.v[0] : NULL;
    if (sg_cli_db_empty("registry", c.db)) return 2;
    if (c.n_pos < sp->min_pos || c.n_pos > sp->max_pos) {
        char range[32] = "";
        if (sp->max_pos > sp->min_pos) snprintf(range, sizeof range, " or %d", sp->max_pos);
        return sg_cli_usage_error(c.cmd, "%s takes %d%s argument%s, got %d", sp->name, sp->min_pos,
                                  range, sp->max_pos == 1 ? "" : "s", c.n_pos);
    }
    /* set-description NAME TEXT is the model's: a TEXT that reads as a version is most likely
       a version whose text was left out (an empty $VAR unquoted), not a description. */
    if (!strcmp(sp->name, "set-description") && c.n_pos == 2 && c.pos[1][0] &&
        strspn(c.pos[1], "0123456789") == strlen(c.pos[1]))
        return sg_cli_usage_error(c.cmd,
                                  "set-description %s %s: no TEXT after what reads as a version "
                                  "(set-description NAME VERSION TEXT; a model's own description "
                                  "may not be only digits)",
                                  c.pos[0], c.pos[1]);
    /* An option that would be accepted and then do nothing is refused. */
    if (!strcmp(sp->name, "verify-log") && c.pubkey && !c.checkpoint)
        return sg_cli_usage_error(c.cmd, "--pubkey names the admin key a --checkpoint must be "
                                         "signed by; it needs --checkpoint FILE");
    if (!strcmp(sp->name, "create-model") && !c.policy != !c.dataset)
        return sg_cli_usage_error(c.cmd, "--policy and --dataset pin the gate together (each a "
                                         "file, sha256:HEX or none)");
    if (c.out && out_names_an_input(&c)) return 2;
    if (reg_cli_is_remote(c.db)) {
        /* Everything goes to the server as JSON, which holds UTF-8 only: a byte that is not
           had been dropped from the request (a description, a tag, a stage), or failed it
           with no message. */
        for (int i = first; i < argc; i++)
            if (!sg_utf8_valid(argv[i]))
                return sg_cli_usage_error(c.cmd,
                                          "argument '%.120s' is not UTF-8 text, which a remote "
                                          "registry (JSON) cannot take",
                                          argv[i]);
        return reg_cli_remote(&c);
    }
    if (sp->opts & (O_RECORD | O_RUNS | O_VERDICT)) return reg_cmd_runs(&c);
    if (sp->opts & O_ADMIN) {
        if ((sp->opts & O_COPY) && global_db)
            return sg_cli_usage_error(c.cmd, "migrate takes --from and --to, not --db");
        return reg_cmd_admin(&c);
    }
    sg_registry *reg = NULL;
    sg_err err;
    int rc =
        sg_registry_open(sg_registry_path(c.db), !strcmp(sp->name, "create-model"), &reg, &err);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    int ret = sp->write                         ? run_write(&c, reg)
              : !strcmp(sp->name, "keys")       ? reg_cmd_keys(&c, reg)
              : !strcmp(sp->name, "checkpoint") ? reg_cmd_checkpoint(&c, reg)
                                                : reg_cli_read(&c, reg);
    sg_registry_close(reg);
    return ret;
}
