/*
 * The registry's root of trust and each model's signed configuration.
 *
 * Admin keys (`registry init --admin PUB`) are the root: once one exists, creating a model,
 * changing its pins and adding further admin or server keys need a request signed by an
 * admin. A model's configuration (stages and what entering each needs, transitions, role
 * keys, pins) is written into its create-model / set-pins event as canonical JSON, and the
 * event's evidence is that JSON's SHA-256, which the admin's signature covers. Before a key
 * of the model is used, the configuration rebuilt from the tables must hash to the evidence
 * of the model's last configuration event, so a key or pin written into the tables by hand
 * is not honoured; verify-log (replay.c) re-checks every such event from the log.
 */
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"
#include "stagegate/keys.h"

#define CONFIG_FORMAT "stagegate-model-config/v1"

static json_t *bool_col(reg_stmt *st, int i)
{
    return json_boolean(reg_col_int64(st, i) != 0);
}

json_t *reg_config_from_tables(sg_registry *reg, const char *model, sg_err *err)
{
    reg_stmt *st;
    json_t *cfg = NULL;
    if (reg_prepare(reg,
                    "SELECT require_approval, max_report_age_days, report_stage, policy_sha256,"
                    " dataset_sha256 FROM registered_models WHERE name = ?",
                    &st, err) != SG_OK)
        return NULL;
    reg_bind_text(st, 1, model);
    reg_step_result s = reg_step(st);
    if (s == REG_ROW) {
        cfg =
            json_pack("{sssssOsIssssss}", "format", CONFIG_FORMAT, "name", model,
                      "require_approval", bool_col(st, 0), "max_report_age_days",
                      (json_int_t)reg_col_int64(st, 1), "report_stage", reg_col_text(st, 2),
                      "policy_sha256", reg_col_text(st, 3), "dataset_sha256", reg_col_text(st, 4));
        json_decref(json_object_get(cfg, "require_approval")); /* "O" took a reference */
    } else if (s == REG_DONE) {
        sg_errf(err, SG_EINPUT, "no model named '%s' in registry %s", model, reg->path);
    } else {
        reg_db_error(reg, err, "reading a model's configuration");
    }
    reg_finalize(st);
    if (!cfg) return NULL;
    json_t *stages = json_array(), *trans = json_array(), *keys = json_array();
    json_object_set_new(cfg, "stages", stages);
    json_object_set_new(cfg, "transitions", trans);
    json_object_set_new(cfg, "keys", keys);
    sg_status rc = reg_prepare(reg,
                               "SELECT stage, requires_report, requires_promoter,"
                               " requires_validation, requires_approval, multi_version"
                               " FROM model_stages WHERE model_name = ? ORDER BY position",
                               &st, err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, model);
        while (reg_row(reg, st, err)) {
            json_t *g = json_object();
            json_object_set_new(g, "name", json_string(reg_col_text(st, 0)));
            json_object_set_new(g, "requires_report", bool_col(st, 1));
            json_object_set_new(g, "requires_promoter", bool_col(st, 2));
            json_object_set_new(g, "requires_validation", bool_col(st, 3));
            json_object_set_new(g, "requires_approval", bool_col(st, 4));
            json_object_set_new(g, "multi_version", bool_col(st, 5));
            json_array_append_new(stages, g);
        }
        reg_finalize(st);
        rc = reg->read_rc;
    }
    if (rc == SG_OK)
        rc = reg_prepare(reg,
                         "SELECT from_stage, to_stage FROM model_transitions WHERE model_name = ?"
                         " ORDER BY from_stage, to_stage",
                         &st, err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, model);
        while (reg_row(reg, st, err))
            json_array_append_new(trans,
                                  json_pack("[ss]", reg_col_text(st, 0), reg_col_text(st, 1)));
        reg_finalize(st);
        rc = reg->read_rc;
    }
    if (rc == SG_OK)
        rc = reg_prepare(reg,
                         "SELECT role, stage, key_id, public_pem FROM model_keys"
                         " WHERE model_name = ? ORDER BY role, stage, key_id",
                         &st, err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, model);
        while (reg_row(reg, st, err))
            json_array_append_new(keys,
                                  json_pack("{ssssssss}", "role", reg_col_text(st, 0), "stage",
                                            reg_col_text(st, 1), "key_id", reg_col_text(st, 2),
                                            "public_pem", reg_col_text(st, 3)));
        reg_finalize(st);
        rc = reg->read_rc;
    }
    if (rc != SG_OK) {
        json_decref(cfg);
        return NULL;
    }
    return cfg;
}

char *reg_config_text(json_t *cfg, char sha_out[65])
{
    char *text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (text) sg_sha256_hex((const uint8_t *)text, strlen(text), sha_out);
    return text;
}

bool reg_config_is(const char *detail, const char *evidence, json_t **cfg_out)
{
    *cfg_out = NULL;
    char sha[65];
    if (strncmp(detail, "{", 1) != 0 || strlen(evidence) != 64) return false;
    sg_sha256_hex((const uint8_t *)detail, strlen(detail), sha);
    if (strcmp(sha, evidence) != 0) return false;
    json_t *cfg = json_loads(detail, JSON_REJECT_DUPLICATES, NULL);
    const char *fmt = json_string_value(json_object_get(cfg, "format"));
    if (!fmt || strcmp(fmt, CONFIG_FORMAT) != 0) {
        json_decref(cfg);
        return false;
    }
    *cfg_out = cfg;
    return true;
}

sg_status reg_root_exists(sg_registry *reg, bool *yes, sg_err *err)
{
    /* From the append-only log, not from registry_keys: deleting a key row must not turn the
     * root off. */
    reg_stmt *st;
    sg_status rc = reg_prepare(
        reg, "SELECT 1 FROM audit_log WHERE action = 'add-key' AND to_stage = 'admin'", &st, err);
    if (rc != SG_OK) return rc;
    *yes = reg_row(reg, st, err);
    reg_finalize(st);
    return reg->read_rc;
}

/* The PEM of a registry key of this role that an add-key event introduced, or NULL. */
static char *registry_key_pem(sg_registry *reg, const char *role, const char *key_id, sg_err *err)
{
    reg_stmt *st;
    char *pem = NULL;
    if (reg_prepare(reg,
                    "SELECT k.public_pem FROM registry_keys k WHERE k.key_id = ? AND k.role = ?"
                    " AND EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'add-key'"
                    " AND a.to_stage = k.role AND a.evidence_sha256 = k.key_id)",
                    &st, err) != SG_OK)
        return NULL;
    reg_bind_text(st, 1, key_id);
    reg_bind_text(st, 2, role);
    if (reg_row(reg, st, err)) pem = strdup(reg_col_text(st, 0));
    reg_finalize(st);
    return pem;
}

sg_status reg_admin_check(sg_registry *reg, const sg_registry_request *req, const char *action,
                          const char *model, int64_t version, const char *target,
                          const char *evidence, char actor[65], sg_err *err)
{
    bool root = false;
    sg_status rc = reg_root_exists(reg, &root, err);
    if (rc != SG_OK) return rc;
    rc = reg_request_check(reg, req, root, action, model, version, target, evidence, actor, err);
    if (rc != SG_OK || !root) return rc;
    char *pem = registry_key_pem(reg, "admin", actor, err);
    if (reg->read_rc != SG_OK) {
        free(pem);
        return reg->read_rc;
    }
    if (!pem)
        return sg_errf(err, SG_EREFUSED,
                       "refused: %s %s needs an admin's signature; key %.16s is not an admin of "
                       "this registry",
                       action, *model ? model : "", actor);
    free(pem);
    return SG_OK;
}

char *reg_server_key_pem(sg_registry *reg, const char *key_id, sg_err *err)
{
    return registry_key_pem(reg, "server", key_id, err);
}

sg_status reg_config_check(sg_registry *reg, const char *model, sg_err *err)
{
    reg_stmt *st;
    sg_status rc = reg_prepare(reg,
                               "SELECT seq, detail FROM audit_log WHERE model_name = ?"
                               " AND action IN ('create-model', 'set-pins')"
                               " ORDER BY seq DESC LIMIT 1",
                               &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    char want[65] = "";
    int64_t seq = 0;
    bool recorded = false;
    if (reg_row(reg, st, err)) {
        seq = reg_col_int64(st, 0);
        const char *d = reg_col_text(st, 1);
        recorded = strncmp(d, "{\"", 2) == 0;
        if (recorded) sg_sha256_hex((const uint8_t *)d, strlen(d), want);
    }
    reg_finalize(st);
    if (reg->read_rc != SG_OK) return reg->read_rc;
    /* A model created before schema 4 recorded no configuration: nothing to compare with
     * (verify-log says so). */
    if (!recorded) return SG_OK;
    json_t *cfg = reg_config_from_tables(reg, model, err);
    if (!cfg) return reg->read_rc != SG_OK ? reg->read_rc : SG_EINPUT;
    char got[65];
    char *text = reg_config_text(cfg, got);
    json_decref(cfg);
    if (!text) return sg_errf(err, SG_ENOMEM, "out of memory hashing a configuration");
    free(text);
    if (strcmp(got, want) != 0)
        return sg_errf(err, SG_EREFUSED,
                       "refused: the keys, stages or pins of model %s in the database differ "
                       "from its configuration event %lld (the tables were changed outside "
                       "stagegate; run verify-log)",
                       model, (long long)seq);
    return SG_OK;
}

static sg_status append_config_event(sg_registry *reg, const char *model, const char *action,
                                     const char *actor, const char *text, const char *sha,
                                     const sg_registry_request *req, sg_err *err)
{
    reg_event ev = {.model = model,
                    .action = action,
                    .actor = actor,
                    .evidence = sha,
                    .detail = text,
                    .req = req};
    return reg_audit_append(reg, &ev, err);
}

sg_status reg_config_record(sg_registry *reg, const char *model, const char *action,
                            const char *evidence, const sg_registry_request *req, char actor[65],
                            sg_err *err)
{
    json_t *cfg = reg_config_from_tables(reg, model, err);
    if (!cfg) return reg->read_rc != SG_OK ? reg->read_rc : SG_EINTERNAL;
    char sha[65];
    char *text = reg_config_text(cfg, sha);
    json_decref(cfg);
    if (!text) return sg_errf(err, SG_ENOMEM, "out of memory hashing a configuration");
    /* create-model signs the whole configuration; set-pins signs the pins it sets. */
    if (!evidence) evidence = sha;
    sg_status rc = reg_admin_check(reg, req, action, model, 0, "", evidence, actor, err);
    if (rc == SG_OK) rc = append_config_event(reg, model, action, actor, text, evidence, req, err);
    free(text);
    return rc;
}

void reg_pins_evidence(const char *policy_sha256, const char *dataset_sha256, char sha_out[65])
{
    char text[160];
    int n = snprintf(text, sizeof text, "policy=%s\ndataset=%s\n", policy_sha256, dataset_sha256);
    sg_sha256_hex((const uint8_t *)text, (size_t)n, sha_out);
}

static bool hex64(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

sg_status sg_registry_set_pins(sg_registry *reg, const char *model, const char *policy_sha256,
                               const char *dataset_sha256, const sg_registry_request *req,
                               sg_err *err)
{
    if ((*policy_sha256 && !hex64(policy_sha256)) || (*dataset_sha256 && !hex64(dataset_sha256)))
        return sg_errf(err, SG_EINPUT, "a pin must be a sha256 of 64 lowercase hex digits");
    sg_status rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    reg_model m;
    /* An admin signs the pins on top of the configuration there is: that must be the one the
     * log recorded, or the signature would bless keys written into the tables by hand. */
    if ((rc = reg_model_load(reg, model, &m, err)) == SG_OK) rc = reg_config_check(reg, model, err);
    reg_stmt *st = NULL;
    if (rc == SG_OK)
        rc = reg_prepare(reg,
                         "UPDATE registered_models SET policy_sha256 = ?, dataset_sha256 = ?,"
                         " updated_at = ? WHERE name = ?",
                         &st, err);
    if (rc == SG_OK) {
        char now[32];
        reg_now_utc(now);
        reg_bind_text(st, 1, policy_sha256);
        reg_bind_text(st, 2, dataset_sha256);
        reg_bind_text(st, 3, now);
        reg_bind_text(st, 4, model);
        if (reg_step(st) != REG_DONE) rc = reg_db_error(reg, err, "changing pins");
        reg_finalize(st);
    }
    char evidence[65], actor[65];
    reg_pins_evidence(policy_sha256, dataset_sha256, evidence);
    if (rc == SG_OK) rc = reg_config_record(reg, model, "set-pins", evidence, req, actor, err);
    return reg_finish(reg, rc, err);
}

sg_status sg_registry_config_digest(sg_registry *reg, const sg_registry_model_spec *spec,
                                    char sha_out[65], sg_err *err)
{
    /* The configuration a create-model would record: made by the same code, in a transaction
     * that is then rolled back, so what an admin signs is exactly what will be checked. */
    sha_out[0] = '\0';
    sg_status rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    rc = reg_model_insert(reg, spec, err);
    json_t *cfg = rc == SG_OK ? reg_config_from_tables(reg, spec->name, err) : NULL;
    if (rc == SG_OK && !cfg) rc = reg->read_rc != SG_OK ? reg->read_rc : SG_EINTERNAL;
    char *text = cfg ? reg_config_text(cfg, sha_out) : NULL;
    if (cfg && !text) rc = sg_errf(err, SG_ENOMEM, "out of memory hashing a configuration");
    free(text);
    json_decref(cfg);
    reg_rollback(reg);
    return rc;
}

sg_status sg_registry_add_key(sg_registry *reg, const char *role, const char *pem,
                              const sg_registry_request *req, sg_err *err)
{
    if (strcmp(role, "admin") != 0 && strcmp(role, "server") != 0)
        return sg_errf(err, SG_EINPUT, "registry key role '%s' is not admin or server", role);
    EVP_PKEY *key = NULL;
    char id[65], actor[65], *norm = NULL;
    sg_status rc = sg_key_load_public_pem(pem, strlen(pem), role, &key, err);
    if (rc != SG_OK) return rc;
    if ((rc = sg_key_id(key, id, err)) == SG_OK) rc = sg_key_public_pem(key, &norm, err);
    EVP_PKEY_free(key);
    if (rc != SG_OK) return rc;
    if ((rc = reg_begin(reg, err)) != SG_OK) {
        free(norm);
        return rc;
    }
    bool root = false;
    rc = reg_root_exists(reg, &root, err);
    /* The first admin is the root: trusted on first use, like an ssh host key. A server key
     * is added by an admin, so a root must exist first. */
    if (rc == SG_OK && !root && strcmp(role, "server") == 0)
        rc = sg_errf(err, SG_EREFUSED,
                     "refused: a server key is added by an admin; this registry has none "
                     "(stagegate registry init --admin PUB first)");
    if (rc == SG_OK) rc = reg_admin_check(reg, req, "add-key", "", 0, role, id, actor, err);
    reg_stmt *st = NULL;
    if (rc == SG_OK)
        rc = reg_prepare(reg,
                         "INSERT INTO registry_keys (key_id, role, public_pem, added_at, added_by)"
                         " VALUES (?, ?, ?, ?, ?)",
                         &st, err);
    if (rc == SG_OK) {
        char now[32];
        reg_now_utc(now);
        reg_bind_text(st, 1, id);
        reg_bind_text(st, 2, role);
        reg_bind_text(st, 3, norm);
        reg_bind_text(st, 4, now);
        reg_bind_text(st, 5, actor);
        reg_step_result s = reg_step(st);
        if (s == REG_CONSTRAINT)
            rc = sg_errf(err, SG_EINPUT, "key %.16s is already a registry key", id);
        else if (s != REG_DONE)
            rc = reg_db_error(reg, err, "adding a registry key");
        reg_finalize(st);
    }
    if (rc == SG_OK) {
        reg_event ev = {.model = "",
                        .action = "add-key",
                        .to_stage = role,
                        .actor = actor,
                        .evidence = id,
                        .detail = norm,
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
    }
    free(norm);
    return reg_finish(reg, rc, err);
}

json_t *sg_registry_keys(sg_registry *reg, sg_err *err)
{
    reg_read_start(reg);
    reg_stmt *st;
    if (reg_prepare(reg,
                    "SELECT key_id, role, added_at, added_by FROM registry_keys"
                    " ORDER BY role, key_id",
                    &st, err) != SG_OK)
        return NULL;
    json_t *arr = json_array();
    while (reg_row(reg, st, err))
        json_array_append_new(arr, json_pack("{ssssssss}", "key_id", reg_col_text(st, 0), "role",
                                             reg_col_text(st, 1), "added_at", reg_col_text(st, 2),
                                             "added_by", reg_col_text(st, 3)));
    reg_finalize(st);
    json_t *doc = json_pack("{so}", "keys", arr);
    return reg_read_end(reg, doc);
}

/* The digest a report's configuration gives for a role ("dataset", "policy"), or NULL. */
static const char *report_config_digest(json_t *statement, const char *role)
{
    json_t *cfg = json_object_get(json_object_get(statement, "predicate"), "configuration");
    size_t i;
    json_t *e;
    const char *found = NULL;
    json_array_foreach(cfg, i, e)
    {
        const char *r =
            json_string_value(json_object_get(json_object_get(e, "annotations"), "role"));
        if (r && !strcmp(r, role)) {
            if (found) return NULL; /* two entries for one role: ambiguous, not evidence */
            found = json_string_value(json_object_get(json_object_get(e, "digest"), "sha256"));
        }
    }
    return found;
}

sg_status reg_pins_check(const char *model, const char *policy_pin, const char *dataset_pin,
                         json_t *statement, sg_err *err)
{
    const struct {
        const char *role, *pin;
    } pins[] = {{"policy", policy_pin}, {"dataset", dataset_pin}};
    for (size_t i = 0; i < 2; i++) {
        if (!pins[i].pin || !*pins[i].pin) continue;
        const char *got = report_config_digest(statement, pins[i].role);
        if (!got)
            return sg_errf(err, SG_EREFUSED,
                           "report names no single %s digest, and model %s pins its %s",
                           pins[i].role, model, pins[i].role);
        if (strcmp(got, pins[i].pin) != 0)
            return sg_errf(err, SG_EREFUSED,
                           "report's %s sha256:%.16s... is not the %s pinned for model %s "
                           "(sha256:%.16s...)",
                           pins[i].role, got, pins[i].role, model, pins[i].pin);
    }
    return SG_OK;
}

void sg_registry_pins_evidence(const char *policy_sha256, const char *dataset_sha256,
                               char sha_out[65])
{
    reg_pins_evidence(policy_sha256, dataset_sha256, sha_out);
}

bool reg_sig_ok(const char *pem, const char *text, const char *sig64)
{
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    EVP_PKEY *pub = NULL;
    sg_err verr;
    bool ok = false;
    if (*sig64 && sg_base64_decode(sig64, &sig, &sig_len) == 0 &&
        sg_key_load_public_pem(pem, strlen(pem), "key", &pub, &verr) == SG_OK)
        ok = sg_verify_sig(pub, (const uint8_t *)text, strlen(text), sig, sig_len, &verr) == SG_OK;
    EVP_PKEY_free(pub);
    free(sig);
    return ok;
}

sg_status reg_recorded_request_ok(sg_registry *reg, const char *text, const char *sig64,
                                  const char *pem, bool *ok, sg_err *err)
{
    *ok = false;
    char server[80];
    if (reg_request_field(text, "auth", server, sizeof server)) {
        /* attested by `stagegate serve`: trusted as such before the root of trust exists,
         * signed by a registered server key after */
        bool root = false;
        sg_status rc = reg_root_exists(reg, &root, err);
        if (rc != SG_OK) return rc;
        if (!root) {
            *ok = true;
            return SG_OK;
        }
        if (!reg_request_field(text, "server", server, sizeof server)) return SG_OK;
        char *spem = reg_server_key_pem(reg, server, err);
        if (reg->read_rc != SG_OK) {
            free(spem);
            return reg->read_rc;
        }
        *ok = spem && reg_sig_ok(spem, text, sig64);
        free(spem);
        return SG_OK;
    }
    *ok = reg_sig_ok(pem, text, sig64);
    return SG_OK;
}
