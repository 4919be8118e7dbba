/* `stagegate registry init` and `stagegate registry migrate`: schema and copies. */
#include <string.h>

#include "cmd_registry.h"

const char reg_admin_usage[] =
    "usage: stagegate registry init [--db REGISTRY] [--json] [--admin PUB]... [--server PUB]...\n"
    "                               [--as ADMIN.pem]\n"
    "       stagegate registry migrate --from SRC --to DST [--json]\n\n"
    "init creates the registry schema, or migrates an older one forward (every command does\n"
    "that too; a schema newer than this stagegate is refused). --admin adds an admin key, the\n"
    "registry's root of trust (the first unsigned, later ones --as an admin); --server adds a\n"
    "key `stagegate serve` signs attested requests with (docs/registry.md).\n"
    "migrate copies every model, version, tag, alias, approval, validation, run and the audit\n"
    "log with its hash chain from SRC into DST, which must hold no model yet (a new file, or an\n"
    "empty database). The copy commits only after DST's audit chain verifies and each table's\n"
    "row count and digest match SRC's. SRC and DST take the --db forms (a path, sqlite:PATH,\n"
    "postgresql://..., a libpq connection string).\n"
    "Exit codes: 0 ok, 1 SRC's audit log does not verify, 2 usage or input error.\n";

static int init(reg_cli *c)
{
    sg_registry *reg = NULL;
    sg_err err;
    int rc = sg_registry_open(sg_registry_path(c->db), true, &reg, &err);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if ((rc = reg_cmd_init_keys(c, reg)) != 0) {
        sg_registry_close(reg);
        return rc;
    }
    if (c->json) {
        /* the path may be any bytes: kept as \xHH where not UTF-8 (json_pack had failed, and
           nothing was printed) */
        json_t *o =
            json_pack("{s:o, s:i}", "registry", sg_json_string_safe(sg_registry_display(reg)),
                      "schema_version", SG_REGISTRY_SCHEMA_VERSION);
        (void)sg_json_print(o); /* a failed write: main reports it */
        json_decref(o);
    } else {
        fputs("registry ", stdout);
        sg_put_printable(stdout, sg_registry_display(reg));
        printf(": schema version %d\n", SG_REGISTRY_SCHEMA_VERSION);
    }
    sg_registry_close(reg);
    return rc;
}

static int migrate(reg_cli *c)
{
    if (!c->from || !c->to)
        return sg_cli_usage_error(c->cmd, "migrate needs --from SRC and --to DST");
    if (!strcmp(c->from, c->to)) return sg_cli_usage_error(c->cmd, "--from and --to are the same");
    sg_registry *src = NULL, *dst = NULL;
    sg_err err = {{0}};
    json_t *summary = NULL;
    int rc = sg_registry_open(c->from, false, &src, &err);
    if (rc == SG_OK) rc = sg_registry_open(c->to, true, &dst, &err);
    if (rc == SG_OK) rc = sg_registry_copy(src, dst, &summary, &err);
    if (rc == SG_OK && c->json) {
        json_object_set_new(summary, "from", sg_json_string_safe(sg_registry_display(src)));
        json_object_set_new(summary, "to", sg_json_string_safe(sg_registry_display(dst)));
        (void)sg_json_print(summary); /* a failed write: main reports it */
    } else if (rc == SG_OK) {
        json_t *t = json_object_get(summary, "tables");
        printf("copied %lld models, %lld versions, %lld runs and %lld audit events from ",
               (long long)json_integer_value(json_object_get(t, "registered_models")),
               (long long)json_integer_value(json_object_get(t, "model_versions")),
               (long long)json_integer_value(json_object_get(t, "runs")),
               (long long)json_integer_value(json_object_get(summary, "events")));
        sg_put_printable(stdout, sg_registry_display(src));
        fputs(" to ", stdout);
        sg_put_printable(stdout, sg_registry_display(dst));
        printf("\nverified: audit head %s\n",
               json_string_value(json_object_get(summary, "head_hash")));
    }
    json_decref(summary);
    sg_registry_close(src);
    sg_registry_close(dst);
    if (rc != SG_OK) return rc == SG_EIO && !err.msg[0] ? 2 : reg_cli_fail(rc, &err);
    return 0;
}

int reg_cmd_admin(reg_cli *c)
{
    return !strcmp(c->sub, "init") ? init(c) : migrate(c);
}
