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

/*
 * One read of everything a model's checks need: its row, stages, transitions and keys, its
 * last configuration event and whether the registry has a root of trust. One statement, so
 * a registry across a network pays one round trip for it inside the write lock. Rows come
 * back tagged by kind and in the order the configuration lists them (stages by position,
 * transitions by from/to, keys by role/stage/key id), as the tables' own ORDER BY would.
 */
enum { ROW_MODEL, ROW_STAGE, ROW_TRANSITION, ROW_KEY, ROW_EVENT, ROW_ROOT };

typedef struct {
    json_t *cfg;       /* the configuration from the tables; NULL when the model does not exist */
    int64_t event_seq; /* the last create-model / set-pins event: 0 if none */
    char *event_detail;
    bool root;
} config_read;

static void config_read_clear(config_read *r)
{
    json_decref(r->cfg);
    free(r->event_detail);
    memset(r, 0, sizeof *r);
}

static json_t *int_bool(reg_stmt *st, int i)
{
    return json_boolean(reg_col_int64(st, i) != 0);
}

static sg_status config_read_all(sg_registry *reg, const char *model, config_read *r,
                                 sg_err *err)
{
    memset(r, 0, sizeof *r);
    reg_stmt *st;
    sg_status rc = reg_prepare(
        reg,
        "SELECT 0, 0, report_stage, policy_sha256, dataset_sha256, '', require_approval,"
        " max_report_age_days, 0, 0, 0 FROM registered_models WHERE name = ?1"
        " UNION ALL SELECT 1, position, stage, '', '', '', requires_report, requires_promoter,"
        " requires_validation, requires_approval, multi_version FROM model_stages"
        " WHERE model_name = ?1"
        " UNION ALL SELECT 2, 0, from_stage, to_stage, '', '', 0, 0, 0, 0, 0"
        " FROM model_transitions WHERE model_name = ?1"
        " UNION ALL SELECT 3, 0, role, stage, key_id, public_pem, 0, 0, 0, 0, 0"
        " FROM model_keys WHERE model_name = ?1"
        " UNION ALL SELECT 4, seq, detail, '', '', '', 0, 0, 0, 0, 0 FROM (SELECT seq, detail"
        " FROM audit_log WHERE model_name = ?1 AND action IN ('create-model', 'set-pins')"
        " ORDER BY seq DESC LIMIT 1) AS last_config"
        " UNION ALL SELECT 5, 0, '', '', '', '', 0, 0, 0, 0, 0 WHERE EXISTS (SELECT 1"
        " FROM audit_log WHERE action = 'add-key' AND to_stage = 'admin')"
        " ORDER BY 1, 2, 3, 4, 5",
        &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    json_t *stages = json_array(), *trans = json_array(), *keys = json_array();
    while (reg_row(reg, st, err)) {
        const char *t1 = reg_col_text(st, 2), *t2 = reg_col_text(st, 3);
        switch (reg_col_int64(st, 0)) {
        case ROW_MODEL:
            r->cfg = json_pack("{sssssOsIssssss}", "format", CONFIG_FORMAT, "name", model,
                               "require_approval", int_bool(st, 6), "max_report_age_days",
                               (json_int_t)reg_col_int64(st, 7), "report_stage", t1,
                               "policy_sha256", t2, "dataset_sha256", reg_col_text(st, 4));
            json_decref(json_object_get(r->cfg, "require_approval")); /* "O" took a reference */
            break;
        case ROW_STAGE: {
            json_t *g = json_object();
            json_object_set_new(g, "name", json_string(t1));
            json_object_set_new(g, "requires_report", int_bool(st, 6));
            json_object_set_new(g, "requires_promoter", int_bool(st, 7));
            json_object_set_new(g, "requires_validation", int_bool(st, 8));
            json_object_set_new(g, "requires_approval", int_bool(st, 9));
            json_object_set_new(g, "multi_version", int_bool(st, 10));
            json_array_append_new(stages, g);
            break;
        }
        case ROW_TRANSITION:
            json_array_append_new(trans, json_pack("[ss]", t1, t2));
            break;
        case ROW_KEY:
            json_array_append_new(keys, json_pack("{ssssssss}", "role", t1, "stage", t2, "key_id",
                                                  reg_col_text(st, 4), "public_pem",
                                                  reg_col_text(st, 5)));
            break;
        case ROW_EVENT:
            r->event_seq = reg_col_int64(st, 1);
            free(r->event_detail);
            r->event_detail = strdup(t1);
            break;
        case ROW_ROOT:
            r->root = true;
            break;
        }
    }
    reg_finalize(st);
    rc = reg->read_rc;
    if (rc == SG_OK && r->cfg) {
        json_object_set_new(r->cfg, "stages", stages);
        json_object_set_new(r->cfg, "transitions", trans);
        json_object_set_new(r->cfg, "keys", keys);
    } else {
        json_decref(stages);
        json_decref(trans);
        json_decref(keys);
    }
    if (rc == SG_OK && r->event_seq && !r->event_detail)
        rc = sg_errf(err, SG_ENOMEM, "out of memory reading a configuration event");
    if (rc != SG_OK) config_read_clear(r);
    return rc;
}

json_t *reg_config_from_tables(sg_registry *reg, const char *model, sg_err *err)
{
    config_read r;
    if (config_read_all(reg, model, &r, err) != SG_OK) return NULL;
    json_t *cfg = r.cfg;
    r.cfg = NULL;
    config_read_clear(&r);
    if (!cfg) sg_errf(err, SG_EINPUT, "no model named '%s' in registry %s", model, reg->path);
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
    if (reg->in_tx && reg->tx_root != REG_ROOT_UNKNOWN) { /* read with the configuration */
        *yes = reg->tx_root == REG_ROOT_YES;
        return SG_OK;
    }
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

char *reg_admin_key_pem(sg_registry *reg, const char *key_id, sg_err *err)
{
    return registry_key_pem(reg, "admin", key_id, err);
}

sg_status reg_config_check(sg_registry *reg, const char *model, sg_err *err)
{
    config_read r;
    sg_status rc = config_read_all(reg, model, &r, err);
    if (rc != SG_OK) return rc;
    if (reg->in_tx) reg->tx_root = r.root ? REG_ROOT_YES : REG_ROOT_NO;
    /* A model created before schema 4 recorded no configuration: nothing to compare with
     * (verify-log says so). No model at all: the caller's load says so. */
    if (!r.cfg || !r.event_detail || strncmp(r.event_detail, "{\"", 2) != 0) {
        config_read_clear(&r);
        return SG_OK;
    }
    char want[65], got[65];
    sg_sha256_hex((const uint8_t *)r.event_detail, strlen(r.event_detail), want);
    char *text = reg_config_text(r.cfg, got);
    if (!text) {
        config_read_clear(&r);
        return sg_errf(err, SG_ENOMEM, "out of memory hashing a configuration");
    }
    free(text);
    if (strcmp(got, want) != 0) {
        rc = sg_errf(err, SG_EREFUSED,
                     "refused: the keys, stages or pins of model %s in the database differ "
                     "from its configuration event %lld (the tables were changed outside "
                     "stagegate; run verify-log)",
                     model, (long long)r.event_seq);
        config_read_clear(&r);
        return rc;
    }
    /* The rest of the transaction checks keys and transitions against this, not the tables
     * again: what was matched with the log is what is used. */
    if (reg->in_tx) {
        json_decref(reg->tx_cfg);
        reg->tx_cfg = r.cfg;
        r.cfg = NULL;
    }
    config_read_clear(&r);
    return SG_OK;
}

json_t *reg_tx_config(sg_registry *reg, const char *model)
{
    if (!reg->in_tx || !reg->tx_cfg) return NULL;
    const char *name = json_string_value(json_object_get(reg->tx_cfg, "name"));
    return name && !strcmp(name, model) ? reg->tx_cfg : NULL;
}

void reg_tx_config_forget(sg_registry *reg)
{
    json_decref(reg->tx_cfg);
    reg->tx_cfg = NULL;
}

static bool text_is(json_t *o, const char *field, const char *want)
{
    const char *v = json_string_value(json_object_get(o, field));
    return v && !strcmp(v, want);
}

const char *reg_config_key_pem(json_t *cfg, const char *role, const char *stage,
                               const char *key_id, int64_t *count)
{
    const char *pem = NULL;
    size_t i;
    json_t *k;
    if (count) *count = 0;
    json_array_foreach(json_object_get(cfg, "keys"), i, k)
    {
        if (!text_is(k, "role", role) || !text_is(k, "stage", stage ? stage : "")) continue;
        if (count) (*count)++;
        if (!pem && key_id && text_is(k, "key_id", key_id))
            pem = json_string_value(json_object_get(k, "public_pem"));
    }
    return pem;
}

bool reg_config_has_key(json_t *cfg, const char *key_id)
{
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(cfg, "keys"), i, k)
    {
        if (text_is(k, "key_id", key_id)) return true;
    }
    return false;
}

bool reg_config_allows(json_t *cfg, const char *from, const char *to)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(cfg, "transitions"), i, t)
    {
        const char *a = json_string_value(json_array_get(t, 0));
        const char *b = json_string_value(json_array_get(t, 1));
        if (a && b && !strcmp(a, from) && !strcmp(b, to)) return true;
    }
    return false;
}

sg_status reg_model_load_checked(sg_registry *reg, const char *name, reg_model *m, sg_err *err)
{
    sg_status rc = reg_config_check(reg, name, err);
    json_t *cfg = rc == SG_OK ? reg_tx_config(reg, name) : NULL;
    if (rc != SG_OK || !cfg) return rc != SG_OK ? rc : reg_model_load(reg, name, m, err);
    /* The model as the checked configuration gives it (the same columns reg_model_load
     * reads; stages in position order). */
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->require_approval = json_is_true(json_object_get(cfg, "require_approval"));
    m->max_report_age_days = json_integer_value(json_object_get(cfg, "max_report_age_days"));
    snprintf(m->report_stage, sizeof m->report_stage, "%s",
             json_string_value(json_object_get(cfg, "report_stage")));
    snprintf(m->policy_sha256, sizeof m->policy_sha256, "%s",
             json_string_value(json_object_get(cfg, "policy_sha256")));
    snprintf(m->dataset_sha256, sizeof m->dataset_sha256, "%s",
             json_string_value(json_object_get(cfg, "dataset_sha256")));
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(cfg, "stages"), i, g)
    {
        if (m->n_stages == REG_MAX_STAGES) break;
        reg_stage *st = &m->stages[m->n_stages++];
        snprintf(st->name, sizeof st->name, "%s", json_string_value(json_object_get(g, "name")));
        st->position = (int)i;
        st->requires_report = json_is_true(json_object_get(g, "requires_report"));
        st->requires_promoter = json_is_true(json_object_get(g, "requires_promoter"));
        st->requires_validation = json_is_true(json_object_get(g, "requires_validation"));
        st->requires_approval = json_is_true(json_object_get(g, "requires_approval"));
        st->multi_version = json_is_true(json_object_get(g, "multi_version"));
    }
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
    reg_tx_config_forget(reg); /* the tables were just written */
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
    reg_tx_config_forget(reg); /* the pins change below */
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
/* The digest of the report's one configuration entry with role; NULL when there is none or
   several (ambiguous, not evidence). *count (when not NULL): how many there are. */
static const char *report_config_digest(json_t *statement, const char *role, size_t *count)
{
    json_t *cfg = json_object_get(json_object_get(statement, "predicate"), "configuration");
    size_t i, n = 0;
    json_t *e;
    const char *found = NULL;
    json_array_foreach(cfg, i, e)
    {
        const char *r =
            json_string_value(json_object_get(json_object_get(e, "annotations"), "role"));
        if (r && !strcmp(r, role) && n++ == 0)
            found = json_string_value(json_object_get(json_object_get(e, "digest"), "sha256"));
    }
    if (count) *count = n;
    return n == 1 ? found : NULL;
}

sg_status reg_pins_check(const char *model, const char *policy_pin, const char *dataset_pin,
                         json_t *statement, sg_err *err)
{
    const struct {
        const char *role, *pin;
    } pins[] = {{"policy", policy_pin}, {"dataset", dataset_pin}};
    for (size_t i = 0; i < 2; i++) {
        if (!pins[i].pin || !*pins[i].pin) continue;
        const char *got = report_config_digest(statement, pins[i].role, NULL);
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

/* Whether the policy a report was gated with compares with a baseline: a metric rule made
   relative to it, or a shadow section. */
static bool policy_uses_baseline(json_t *statement)
{
    json_t *pol = json_object_get(json_object_get(statement, "predicate"), "policy");
    if (json_object_get(pol, "shadow")) return true;
    static const char *const rel[] = {"min_absolute_change", "min_relative_change",
                                      "max_relative_regression", "max_absolute_regression"};
    const char *name;
    json_t *r;
    json_object_foreach(json_object_get(pol, "metrics"), name, r)
    {
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++)
            if (json_object_get(r, rel[i])) return true;
    }
    return false;
}

sg_status reg_baseline_check(sg_registry *reg, const char *model, json_t *statement, sg_err *err)
{
    /* Two entries for the role are ambiguous, as for the pins. */
    size_t count = 0;
    const char *got = report_config_digest(statement, "baseline", &count);
    /* The versions in Production now (several when the stage is multi-version). */
    reg_stmt *st;
    sg_status rc = reg_prepare(reg,
                               "SELECT version, artifact_sha256 FROM model_versions WHERE"
                               " model_name = ? AND stage = 'Production' ORDER BY version",
                               &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    char first[65] = "";
    int64_t first_v = 0;
    bool any = false, matched = false;
    while (reg_row(reg, st, err)) {
        if (!any) {
            first_v = reg_col_int64(st, 0);
            snprintf(first, sizeof first, "%s", reg_col_text(st, 1));
        }
        any = true;
        matched |= got && !strcmp(got, reg_col_text(st, 1));
    }
    reg_finalize(st);
    if ((rc = reg->read_rc) != SG_OK || !any || matched) return rc;
    if (count > 1)
        return sg_errf(err, SG_EREFUSED, "report names %zu baselines; a report names one", count);
    if (!got) {
        if (!policy_uses_baseline(statement)) return SG_OK;
        return sg_errf(err, SG_EREFUSED,
                       "report was gated without a baseline, and its policy compares with one "
                       "while model %s has v%lld in Production: gate it with --baseline "
                       "models:/%s/Production",
                       model, (long long)first_v, model);
    }
    return sg_errf(err, SG_EREFUSED,
                   "report was gated against baseline sha256:%.16s..., which is not what model "
                   "%s has in Production (v%lld, sha256:%.16s...): gate it with --baseline "
                   "models:/%s/Production",
                   got, model, (long long)first_v, first, model);
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
