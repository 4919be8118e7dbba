/*
 * `stagegate registry` subcommands of the root of trust: init --admin/--server (registry
 * keys), keys, pin (a model's pinned policy and dataset), checkpoint, and verify-log's
 * --checkpoint.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd_registry.h"
#include "stagegate/keys.h"

const char reg_trust_usage[] =
    "usage: stagegate registry init [--admin PUB]... [--server PUB]... [--as ADMIN.pem]\n"
    "       stagegate registry keys [--json]\n"
    "       stagegate registry pin NAME --policy P --dataset D --as ADMIN.pem\n"
    "       stagegate registry checkpoint --as ADMIN.pem [--out FILE]\n"
    "       stagegate registry verify-log [--checkpoint FILE [--pubkey ADMIN.pub]]\n\n"
    "init --admin adds an admin key, the registry's root of trust: the first one is accepted\n"
    "unsigned (run it before anyone else can reach the registry); every later key, and every\n"
    "create-model and pin, needs --as an admin key. --server adds a key `stagegate serve` signs\n"
    "the requests it attests with.\n"
    "pin sets the policy and dataset a report must name to enter the model's report stage:\n"
    "a file (its sha256 is taken), sha256:HEX, or none.\n"
    "checkpoint writes the audit head signed by an admin key; keep it outside the database.\n"
    "verify-log --checkpoint refuses a log that was rewound or rewritten past it.\n"
    "Exit codes: 0 ok, 1 refused (signature, authorization, verification), 2 usage or input.\n";

sg_status reg_cli_digest_arg(const char *opt, const char *arg, char out[65], sg_err *err)
{
    out[0] = '\0';
    if (!strcmp(arg, "none")) return SG_OK;
    if (!strncmp(arg, "sha256:", 7)) {
        const char *h = arg + 7;
        if (strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64)
            return sg_errf(err, SG_EINPUT, "--%s: '%s' is not sha256: and 64 lowercase hex digits",
                           opt, arg);
        memcpy(out, h, 65);
        return SG_OK;
    }
    sg_status rc = sg_sha256_file_hex(arg, out, err);
    if (rc != SG_OK) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return sg_errf(err, rc, "--%s: %s", opt, why);
    }
    return SG_OK;
}

static sg_status read_pem(const char *path, char **pem, sg_err *err)
{
    EVP_PKEY *key = NULL;
    sg_status rc = sg_key_load_public(path, &key, err);
    if (rc == SG_OK) rc = sg_key_public_pem(key, pem, err);
    EVP_PKEY_free(key);
    return rc;
}

static sg_status add_keys(reg_cli *c, sg_registry *reg, const char *role, sg_opt_list *l,
                          sg_err *err)
{
    for (size_t i = 0; i < l->n; i++) {
        char *pem = NULL, id[65] = "";
        sg_status rc = read_pem(l->v[i], &pem, err);
        EVP_PKEY *key = NULL;
        if (rc == SG_OK) rc = sg_key_load_public_pem(pem, strlen(pem), role, &key, err);
        if (rc == SG_OK) rc = sg_key_id(key, id, err);
        EVP_PKEY_free(key);
        sg_registry_request req, *rp = NULL;
        if (rc == SG_OK && c->as) {
            rc = sg_registry_request_sign(reg, c->as, "add-key", "", 0, role, id, &req, err);
            if (rc == SG_OK) rp = &req;
        }
        if (rc == SG_OK) rc = sg_registry_add_key(reg, role, pem, rp, err);
        sg_registry_request_clear(rp);
        free(pem);
        if (rc != SG_OK) return rc;
        if (!c->json) printf("added %s key %s\n", role, id);
    }
    return SG_OK;
}

int reg_cmd_init_keys(reg_cli *c, sg_registry *reg)
{
    sg_err err;
    sg_status rc = add_keys(c, reg, "admin", &c->admins, &err);
    if (rc == SG_OK) rc = add_keys(c, reg, "server", &c->servers, &err);
    return rc == SG_OK ? 0 : reg_cli_fail(rc, &err);
}

int reg_cmd_pin(reg_cli *c, sg_registry *reg)
{
    if (!c->policy || !c->dataset)
        return sg_cli_usage_error(c->cmd, "pin needs --policy and --dataset (a file, "
                                          "sha256:HEX or none)");
    sg_err err;
    char pol[65], data[65], ev[65];
    sg_status rc = reg_cli_digest_arg("policy", c->policy, pol, &err);
    if (rc == SG_OK) rc = reg_cli_digest_arg("dataset", c->dataset, data, &err);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    sg_registry_pins_evidence(pol, data, ev);
    sg_registry_request req, *rp = NULL;
    if (c->as) {
        if ((rc = sg_registry_request_sign(reg, c->as, "set-pins", c->pos[0], 0, "", ev, &req,
                                           &err)) != SG_OK)
            return reg_cli_fail(rc, &err);
        rp = &req;
    }
    rc = sg_registry_set_pins(reg, c->pos[0], pol, data, rp, &err);
    sg_registry_request_clear(rp);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if (c->json) {
        json_t *doc = sg_registry_get_model(reg, c->pos[0], &err);
        if (!doc) return reg_cli_fail(SG_EIO, &err);
        (void)sg_json_print(doc); /* a failed write: main reports it */
        json_decref(doc);
        return 0;
    }
    printf("%s: policy %s, dataset %s\n", c->pos[0], *pol ? pol : "not pinned",
           *data ? data : "not pinned");
    return 0;
}

int reg_cmd_keys(reg_cli *c, sg_registry *reg)
{
    sg_err err;
    json_t *doc = sg_registry_keys(reg, &err);
    if (!doc) return reg_cli_fail(SG_EINPUT, &err);
    int rc = 0;
    if (c->json) {
        (void)sg_json_print(doc); /* a failed write: main reports it */
    } else {
        size_t i;
        json_t *k;
        json_t *keys = json_object_get(doc, "keys");
        if (!json_array_size(keys))
            printf("no registry keys: no root of trust (stagegate registry init --admin PUB)\n");
        json_array_foreach(keys, i, k)
        {
            printf("%-6s %s  added %s\n", sg_json_str(k, "role"), sg_json_str(k, "key_id"),
                   sg_json_str(k, "added_at"));
        }
    }
    json_decref(doc);
    return rc;
}

int reg_cmd_checkpoint(reg_cli *c, sg_registry *reg)
{
    if (!c->as) return sg_cli_usage_error(c->cmd, "checkpoint needs --as ADMIN.pem");
    sg_err err;
    char *env = NULL;
    sg_status rc = sg_registry_checkpoint(reg, c->as, &env, &err);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if (!c->out) {
        fputs(env, stdout);
        free(env);
        return 0;
    }
    sg_outfile o;
    rc = sg_outfile_open(&o, c->out, &err);
    if (rc == SG_OK) {
        if (fputs(env, o.fp) < 0) {
            sg_outfile_abort(&o);
            rc = sg_errf(&err, SG_EIO, "%s: cannot write", c->out);
        } else {
            rc = sg_outfile_commit(&o, &err);
        }
    }
    free(env);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    if (!c->json) {
        fputs("wrote checkpoint ", stderr);
        sg_put_printable(stderr, c->out);
        fputc('\n', stderr);
    }
    return 0;
}

int reg_cmd_check_checkpoint(reg_cli *c, sg_registry *reg, json_t *summary)
{
    sg_err err;
    uint8_t *env = NULL;
    size_t len = 0;
    char *pem = NULL;
    sg_status rc = sg_read_file(c->checkpoint, 1u << 20, &env, &len, &err);
    if (rc == SG_OK && c->pubkey) rc = read_pem(c->pubkey, &pem, &err);
    json_t *res = NULL;
    if (rc == SG_OK) rc = sg_registry_check_checkpoint(reg, env, len, pem, &res, &err);
    free(env);
    free(pem);
    if (rc != SG_OK) return reg_cli_fail(rc, &err);
    json_object_set_new(summary, "checkpoint", res);
    return 0;
}
