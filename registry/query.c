/* Read side: models, versions, search and history as JSON documents (the CLI prints them). */
#include <string.h>

#include "registry_internal.h"
#include "stagegate/json.h"


json_t *reg_kv_object(sg_registry *reg, const char *sql, const char *model, int64_t version,
                      bool int_values, sg_err *err)
{
    reg_stmt *st;
    if (reg_prepare(reg, sql, &st, err) != SG_OK) return NULL;
    reg_bind_text(st, 1, model);
    if (version) reg_bind_int64(st, 2, version);
    json_t *o = json_object();
    while (reg_row(reg, st, err))
        json_object_set_new(o, reg_col_text(st, 0),
                            int_values ? json_integer(reg_col_int64(st, 1))
                                       : json_string(reg_col_text(st, 1)));
    reg_finalize(st);
    return o;
}

/* The version document of a REG_VERSION_DOCS row of kind 0 (tags and aliases still empty). */
static json_t *version_row_json(reg_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(reg_col_text(st, 1)));
    json_object_set_new(o, "version", json_integer(reg_col_int64(st, 2)));
    json_object_set_new(o, "stage", json_string(reg_col_text(st, 3)));
    json_object_set_new(o, "artifact_path", json_string(reg_col_text(st, 4)));
    json_object_set_new(o, "artifact_sha256", json_string(reg_col_text(st, 5)));
    json_object_set_new(o, "created_by", json_string(reg_col_text(st, 6)));
    json_object_set_new(o, "created_at", json_string(reg_col_text(st, 7)));
    json_object_set_new(o, "updated_at", json_string(reg_col_text(st, 8)));
    json_object_set_new(o, "tags", json_object());
    json_object_set_new(o, "aliases", json_array());
    json_object_set_new(o, "validated", json_boolean(reg_col_int64(st, 9) != 0));
    json_object_set_new(o, "description", json_string(reg_col_text(st, 10)));
    return o;
}

json_t *reg_version_docs(sg_registry *reg, reg_stmt *st, sg_err *err)
{
    json_t *arr = json_array(), *cur = NULL;
    while (reg_row(reg, st, err)) {
        int64_t kind = reg_col_int64(st, 0);
        if (kind == 0) {
            cur = version_row_json(st);
            json_array_append_new(arr, cur);
            continue;
        }
        /* A tag or alias row follows its version's row (ORDER BY model, version, kind). */
        if (!cur || strcmp(sg_json_str(cur, "name"), reg_col_text(st, 1)) != 0 ||
            json_integer_value(json_object_get(cur, "version")) != reg_col_int64(st, 2))
            continue;
        if (kind == 1)
            json_object_set_new(json_object_get(cur, "tags"), reg_col_text(st, 3),
                                json_string(reg_col_text(st, 4)));
        else
            json_array_append_new(json_object_get(cur, "aliases"),
                                  json_string(reg_col_text(st, 3)));
    }
    reg_finalize(st);
    if (reg->read_rc != SG_OK) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static reg_stmt *versions_stmt(sg_registry *reg, const char *model, int64_t only, sg_err *err)
{
    reg_stmt *st;
    const char *sql = only ? REG_VERSION_DOC_BY_KEY : REG_VERSION_DOCS("v.model_name = ?1");
    if (reg_prepare(reg, sql, &st, err) != SG_OK) return NULL;
    reg_bind_text(st, 1, model);
    if (only) reg_bind_int64(st, 2, only);
    return st;
}

static json_t *versions_json(sg_registry *reg, const char *model, int64_t only, sg_err *err)
{
    reg_stmt *st = versions_stmt(reg, model, only, err);
    return st ? reg_version_docs(reg, st, err) : NULL;
}

reg_stmt *reg_version_doc_prefetch(sg_registry *reg, const char *model, int64_t version)
{
    sg_err err;
    reg_stmt *st = versions_stmt(reg, model, version, &err);
    if (!st) {
        reg->read_rc = SG_OK; /* the load prepares its own and reports */
        return NULL;
    }
    reg_prefetch(reg, st);
    return st;
}

/* A version lookup that found nothing: says so of the model when the model itself is missing
   ("model 'X' has no version 1" of a model never registered had misled). */
static sg_status no_version(sg_registry *reg, const char *model, int64_t version, sg_err *err)
{
    const int before = reg->read_rc;
    reg->read_rc = SG_OK;
    reg_stmt *st;
    bool exists = true;
    sg_status rc = reg_prepare(reg, "SELECT 1 FROM registered_models WHERE name = ?", &st, err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, model);
        exists = reg_row(reg, st, err);
        reg_finalize(st);
        rc = reg->read_rc;
    }
    reg->read_rc = before != SG_OK ? before : rc;
    if (rc != SG_OK) return rc;
    if (!exists)
        return sg_errf(err, SG_EINPUT, "no model named '%s' in registry %s", model, reg->path);
    return sg_errf(err, SG_EINPUT, "model '%s' has no version %lld", model, (long long)version);
}

sg_status reg_version_doc_load(sg_registry *reg, const char *model, int64_t version,
                               reg_version *v, json_t **doc, sg_err *err)
{
    return reg_version_doc_load_from(reg, NULL, model, version, v, doc, err);
}

sg_status reg_version_doc_load_from(sg_registry *reg, reg_stmt *st, const char *model,
                                    int64_t version, reg_version *v, json_t **doc, sg_err *err)
{
    *doc = NULL;
    if (v) memset(v, 0, sizeof *v);
    sg_status before = reg->read_rc;
    reg->read_rc = SG_OK;
    if (!st) st = versions_stmt(reg, model, version, err);
    json_t *arr = st ? reg_version_docs(reg, st, err) : NULL;
    sg_status rc = reg->read_rc;
    if (rc == SG_OK && !arr) rc = sg_errf(err, SG_ENOMEM, "out of memory loading a version");
    reg->read_rc = before != SG_OK ? before : rc;
    if (rc != SG_OK) return rc;
    json_t *o = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    if (!o) return no_version(reg, model, version, err);
    if (v) {
        v->version = version;
        snprintf(v->stage, sizeof v->stage, "%s", sg_json_str(o, "stage"));
        snprintf(v->artifact_path, sizeof v->artifact_path, "%s", sg_json_str(o, "artifact_path"));
        snprintf(v->artifact_sha256, sizeof v->artifact_sha256, "%s",
                 sg_json_str(o, "artifact_sha256"));
    }
    *doc = o;
    return SG_OK;
}

json_t *sg_registry_get_version(sg_registry *reg, const char *model, int64_t version, sg_err *err)
{
    reg_read_start(reg);
    json_t *arr = versions_json(reg, model, version, err);
    json_t *o = arr ? json_incref(json_array_get(arr, 0)) : NULL;
    json_decref(arr);
    if (arr && !o && reg->read_rc == SG_OK) /* as reg_version_load says it */
        (void)no_version(reg, model, version, err);
    return reg_read_end(reg, o);
}

sg_status sg_registry_version_digest(sg_registry *reg, const char *model, int64_t version,
                                     char sha_out[65], sg_err *err)
{
    sha_out[0] = '\0';
    reg_read_start(reg);
    reg_stmt *st;
    sg_status rc = reg_prepare(
        reg, "SELECT artifact_sha256 FROM model_versions WHERE model_name = ? AND version = ?",
        &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_int64(st, 2, version);
    bool found = reg_row(reg, st, err);
    if (found) snprintf(sha_out, 65, "%s", reg_col_text(st, 0));
    reg_finalize(st);
    if (reg->read_rc != SG_OK) return reg->read_rc;
    if (!found) return no_version(reg, model, version, err);
    return SG_OK;
}

json_t *reg_stages_json(const reg_model *m)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < m->n_stages; i++) {
        const reg_stage *g = &m->stages[i];
        json_t *s = json_object(), *req = json_array();
        json_object_set_new(s, "name", json_string(g->name));
        if (g->requires_report) json_array_append_new(req, json_string("report"));
        if (g->requires_promoter) json_array_append_new(req, json_string("promoter"));
        if (g->requires_validation) json_array_append_new(req, json_string("validation"));
        if (g->requires_approval) json_array_append_new(req, json_string("approval"));
        json_object_set_new(s, "requires", req);
        json_object_set_new(s, "multi_version", json_boolean(g->multi_version));
        json_array_append_new(arr, s);
    }
    return arr;
}

json_t *sg_registry_get_model(sg_registry *reg, const char *model, sg_err *err)
{
    reg_model m;
    reg_read_start(reg);
    if (reg_model_load(reg, model, &m, err) != SG_OK) return NULL;
    json_t *o = json_object();
    reg_stmt *st;
    if (reg_prepare(
            reg, "SELECT description, created_by, created_at FROM registered_models WHERE name = ?",
            &st, err) != SG_OK) {
        json_decref(o);
        return NULL;
    }
    reg_bind_text(st, 1, model);
    json_object_set_new(o, "name", json_string(model));
    if (reg_row(reg, st, err)) {
        json_object_set_new(o, "description", json_string(reg_col_text(st, 0)));
        json_object_set_new(o, "created_by", json_string(reg_col_text(st, 1)));
        json_object_set_new(o, "created_at", json_string(reg_col_text(st, 2)));
    }
    reg_finalize(st);
    json_object_set_new(o, "require_approval", json_boolean(m.require_approval));
    json_object_set_new(o, "max_report_age_days", json_integer(m.max_report_age_days));
    json_object_set_new(o, "report_stage", json_string(m.report_stage));
    /* the pinned gate ("" when not pinned), as the configuration the registry enforces holds
       it (docs/registry.md: an operator checks what a model is pinned to before a report is
       refused for naming another policy) */
    json_object_set_new(o, "policy_sha256", json_string(m.policy_sha256));
    json_object_set_new(o, "dataset_sha256", json_string(m.dataset_sha256));
    json_t *tags = reg_kv_object(
        reg, "SELECT tag_key, tag_value FROM model_tags WHERE model_name = ? ORDER BY tag_key",
        model, 0, false, err);
    json_object_set_new(o, "tags", tags ? tags : json_object());
    json_object_set_new(o, "stages", reg_stages_json(&m));
    json_t *tr = json_array(), *keys = json_array();
    if (reg_prepare(reg,
                    "SELECT from_stage, to_stage FROM model_transitions WHERE model_name = ?"
                    " ORDER BY from_stage, to_stage",
                    &st, err) == SG_OK) {
        reg_bind_text(st, 1, model);
        while (reg_row(reg, st, err))
            json_array_append_new(tr, json_pack("[ss]", reg_col_text(st, 0), reg_col_text(st, 1)));
        reg_finalize(st);
    }
    json_object_set_new(o, "transitions", tr);
    if (reg_prepare(reg,
                    "SELECT role, stage, key_id FROM model_keys WHERE model_name = ?"
                    " ORDER BY role, stage, key_id",
                    &st, err) == SG_OK) {
        reg_bind_text(st, 1, model);
        while (reg_row(reg, st, err))
            json_array_append_new(keys,
                                  json_pack("{ssssss}", "role", reg_col_text(st, 0), "stage",
                                            reg_col_text(st, 1), "key_id", reg_col_text(st, 2)));
        reg_finalize(st);
    }
    json_object_set_new(o, "keys", keys);
    json_t *aliases =
        reg_kv_object(reg, "SELECT alias, version FROM aliases WHERE model_name = ? ORDER BY alias",
                      model, 0, true, err);
    json_object_set_new(o, "aliases", aliases ? aliases : json_object());
    json_t *vers = versions_json(reg, model, 0, err);
    json_object_set_new(o, "versions", vers ? vers : json_array());
    return reg_read_end(reg, o);
}

json_t *sg_registry_list(sg_registry *reg, sg_err *err)
{
    reg_stmt *st;
    reg_read_start(reg);
    if (reg_prepare(reg,
                    "SELECT m.name, m.description, (SELECT count(*) FROM model_versions v WHERE"
                    " v.model_name = m.name), (SELECT max(v.version) FROM model_versions v WHERE"
                    " v.model_name = m.name AND v.stage = 'Production') FROM registered_models m"
                    " ORDER BY m.name",
                    &st, err) != SG_OK)
        return NULL;
    json_t *arr = json_array();
    while (reg_row(reg, st, err)) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(reg_col_text(st, 0)));
        json_object_set_new(o, "description", json_string(reg_col_text(st, 1)));
        json_object_set_new(o, "versions", json_integer(reg_col_int64(st, 2)));
        json_object_set_new(o, "production_version",
                            reg_col_is_null(st, 3) ? json_null()
                                                   : json_integer(reg_col_int64(st, 3)));
        json_array_append_new(arr, o);
    }
    reg_finalize(st);
    json_t *doc = json_object();
    json_object_set_new(doc, "models", arr);
    return reg_read_end(reg, doc);
}

json_t *sg_registry_search(sg_registry *reg, const char *filter, sg_err *err)
{
    reg_filter f;
    reg_read_start(reg);
    if (reg_filter_parse(filter, &f, err) != SG_OK) return NULL;
    /* name = 'x' and stage = 'y' narrow the rows the database returns (the name exactly, the
     * stage regardless of case, there as here); the filter still decides every row. */
    const char *name = NULL, *stage = NULL;
    for (size_t i = 0; i < f.n; i++)
        if (f.conds[i].op == REG_OP_EQ && f.conds[i].field == REG_F_NAME)
            name = f.conds[i].value;
        else if (f.conds[i].op == REG_OP_EQ && f.conds[i].field == REG_F_STAGE)
            stage = f.conds[i].value;
    static const char *const sql[2][2] = {
        {REG_VERSION_DOCS("1 = 1"), REG_VERSION_DOCS("lower(v.stage) = lower(?1)")},
        {REG_VERSION_DOCS("v.model_name = ?1"),
         REG_VERSION_DOCS("v.model_name = ?1 AND lower(v.stage) = lower(?2)")}};
    reg_stmt *st;
    if (reg_prepare(reg, sql[name != NULL][stage != NULL], &st, err) != SG_OK) return NULL;
    if (name) reg_bind_text(st, 1, name);
    if (stage) reg_bind_text(st, name ? 2 : 1, stage);
    /* The rows, their tags and aliases in one statement; the filter decides each version. */
    json_t *all = reg_version_docs(reg, st, err), *arr = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v)
    {
        reg_filter_row row = {
            sg_json_str(v, "name"), sg_json_str(v, "stage"), sg_json_str(v, "artifact_path"),
            json_integer_value(json_object_get(v, "version")), json_object_get(v, "tags")};
        if (reg_filter_match(&f, &row)) json_array_append(arr, v);
    }
    json_decref(all);
    json_t *doc = json_object();
    json_object_set_new(doc, "filter", json_string(filter));
    json_object_set_new(doc, "versions", arr);
    return reg_read_end(reg, doc);
}

json_t *sg_registry_history(sg_registry *reg, const char *model, sg_err *err)
{
    reg_model m;
    reg_read_start(reg);
    if (reg_model_load(reg, model, &m, err) != SG_OK) return NULL;
    reg_stmt *st;
    if (reg_prepare(reg,
                    "SELECT seq, created_at, action, version, from_stage, to_stage, actor_key_id,"
                    " evidence_sha256, detail, signature <> '', hash FROM audit_log WHERE"
                    " model_name = ? ORDER BY seq",
                    &st, err) != SG_OK)
        return NULL;
    reg_bind_text(st, 1, model);
    json_t *arr = json_array();
    while (reg_row(reg, st, err)) {
        json_t *e = json_object();
        json_object_set_new(e, "seq", json_integer(reg_col_int64(st, 0)));
        json_object_set_new(e, "time", json_string(reg_col_text(st, 1)));
        json_object_set_new(e, "action", json_string(reg_col_text(st, 2)));
        json_object_set_new(e, "version", json_integer(reg_col_int64(st, 3)));
        json_object_set_new(e, "from_stage", json_string(reg_col_text(st, 4)));
        json_object_set_new(e, "to_stage", json_string(reg_col_text(st, 5)));
        json_object_set_new(e, "actor_key_id", json_string(reg_col_text(st, 6)));
        json_object_set_new(e, "evidence_sha256", json_string(reg_col_text(st, 7)));
        json_object_set_new(e, "detail", json_string(reg_col_text(st, 8)));
        json_object_set_new(e, "signed", json_boolean((int)reg_col_int64(st, 9)));
        json_object_set_new(e, "hash", json_string(reg_col_text(st, 10)));
        json_array_append_new(arr, e);
    }
    reg_finalize(st);
    json_t *doc = json_object();
    json_object_set_new(doc, "name", json_string(model));
    json_object_set_new(doc, "events", arr);
    return reg_read_end(reg, doc);
}
