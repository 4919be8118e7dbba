/* Read side for the server: registered models matched by the name and tag conditions of a
   filter. */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"

json_t *sg_registry_search_models(sg_registry *reg, const char *filter, sg_err *err)
{
    reg_filter f;
    memset(&f, 0, sizeof f);
    reg_read_start(reg);
    if (filter && *filter && reg_filter_parse(filter, &f, err) != SG_OK) return NULL;
    if (!reg_filter_model_fields(&f)) {
        sg_errf(err, SG_EINPUT,
                "search filter: registered models can be filtered by name and tags only, not "
                "by stage, version_number, run_id or source_path");
        return NULL;
    }
    /* Each model's row, then its tags (one row each), in name order; the tags only when the
       filter reads them (every tag of every model had been read for each page). */
    bool by_tag = false;
    for (size_t i = 0; i < f.n; i++)
        by_tag |= f.conds[i].field == REG_F_TAG;
    reg_stmt *st;
    if (reg_prepare(reg,
                    by_tag ? "SELECT m.name, m.description, m.created_at, t.tag_key, t.tag_value"
                             " FROM registered_models m LEFT JOIN model_tags t"
                             " ON t.model_name = m.name ORDER BY m.name, t.tag_key"
                           : "SELECT name, description, created_at, NULL, NULL FROM"
                             " registered_models ORDER BY name",
                    &st, err) != SG_OK)
        return NULL;
    json_t *arr = json_array(), *cur = NULL, *tags = NULL;
    char *name = NULL; /* the model being gathered, NULL before the first row */
    for (;;) {
        bool row = reg_row(reg, st, err);
        if (name && (!row || strcmp(reg_col_text(st, 0), name) != 0)) {
            const reg_filter_row one = {name, NULL, NULL, 0, tags};
            if (reg_filter_match(&f, &one)) json_array_append(arr, cur);
            json_decref(cur);
            json_decref(tags);
            free(name);
            cur = tags = NULL;
            name = NULL;
        }
        if (!row) break;
        if (!name) {
            name = strdup(reg_col_text(st, 0));
            cur = json_pack("{ssssss}", "name", reg_col_text(st, 0), "description",
                            reg_col_text(st, 1), "created_at", reg_col_text(st, 2));
            tags = json_object();
            if (!name) {
                json_decref(cur);
                json_decref(tags);
                reg_finalize(st);
                json_decref(arr);
                sg_errf(err, SG_ENOMEM, "out of memory searching models");
                return NULL;
            }
        }
        if (!reg_col_is_null(st, 3))
            json_object_set_new(tags, reg_col_text(st, 3), json_string(reg_col_text(st, 4)));
    }
    reg_finalize(st);
    json_t *doc = json_object();
    json_object_set_new(doc, "models", arr);
    return reg_read_end(reg, doc);
}

/* The model's row, stages, tags and aliases: one statement, rows tagged by kind. */
enum { SUM_MODEL, SUM_STAGE, SUM_TAG, SUM_ALIAS };

json_t *sg_registry_model_summary(sg_registry *reg, const char *model, sg_err *err)
{
    reg_read_start(reg);
    reg_stmt *st;
    if (reg_prepare(reg,
                    "SELECT 0, 0, description, created_at, report_stage, 0, 0, 0, 0, 0,"
                    " updated_at FROM registered_models WHERE name = ?1"
                    " UNION ALL SELECT 1, position, stage, '', '', requires_report,"
                    " requires_promoter, requires_validation, requires_approval, multi_version,"
                    " '' FROM model_stages WHERE model_name = ?1"
                    " UNION ALL SELECT 2, 0, tag_key, tag_value, '', 0, 0, 0, 0, 0, ''"
                    " FROM model_tags WHERE model_name = ?1"
                    " UNION ALL SELECT 3, 0, alias, '', '', version, 0, 0, 0, 0, ''"
                    " FROM aliases WHERE model_name = ?1"
                    " ORDER BY 1, 2, 3",
                    &st, err) != SG_OK)
        return NULL;
    reg_bind_text(st, 1, model);
    reg_model m;
    memset(&m, 0, sizeof m);
    bool found = false;
    json_t *o = json_object(), *tags = json_object(), *aliases = json_object();
    json_object_set_new(o, "name", json_string(model));
    while (reg_row(reg, st, err)) {
        const char *t1 = reg_col_text(st, 2);
        switch (reg_col_int64(st, 0)) {
        case SUM_MODEL:
            found = true;
            json_object_set_new(o, "description", json_string(t1));
            json_object_set_new(o, "created_at", json_string(reg_col_text(st, 3)));
            json_object_set_new(o, "updated_at", json_string(reg_col_text(st, 10)));
            snprintf(m.report_stage, sizeof m.report_stage, "%s", reg_col_text(st, 4));
            break;
        case SUM_STAGE:
            if (m.n_stages < REG_MAX_STAGES) {
                reg_stage *g = &m.stages[m.n_stages++];
                snprintf(g->name, sizeof g->name, "%s", t1);
                g->position = (int)reg_col_int64(st, 1);
                g->requires_report = reg_col_int64(st, 5) != 0;
                g->requires_promoter = reg_col_int64(st, 6) != 0;
                g->requires_validation = reg_col_int64(st, 7) != 0;
                g->requires_approval = reg_col_int64(st, 8) != 0;
                g->multi_version = reg_col_int64(st, 9) != 0;
            }
            break;
        case SUM_TAG:
            json_object_set_new(tags, t1, json_string(reg_col_text(st, 3)));
            break;
        case SUM_ALIAS:
            json_object_set_new(aliases, t1, json_integer(reg_col_int64(st, 5)));
            break;
        }
    }
    reg_finalize(st);
    json_object_set_new(o, "report_stage", json_string(m.report_stage));
    json_object_set_new(o, "stages", reg_stages_json(&m));
    json_object_set_new(o, "tags", tags);
    json_object_set_new(o, "aliases", aliases);
    if (reg->read_rc == SG_OK && !found) {
        json_decref(o);
        sg_errf(err, SG_EINPUT, "no model named '%s' in registry %s", model, reg->path);
        return NULL;
    }
    /* The newest version of each of the model's stages, the stages named as parameters
     * (?2, ?3, ...: the ones just read): each stage's newest version is one index probe
     * (model_versions_by_stage) and the versions are found by key, whatever plan the
     * database made for the statement and however many versions the model has. (Filters
     * such as "version IN (the newest per stage)" let PostgreSQL's generic plan, made while
     * the tables were small, hash every version of the model on each call.) All in one
     * statement, so the versions are the newest at one moment; their tags and aliases too. */
    json_t *latest = NULL;
    enum { MAX_LISTED = 16 };
    char *sql = NULL;
    if (reg->read_rc == SG_OK && m.n_stages > 0 && m.n_stages <= MAX_LISTED) {
        char list[MAX_LISTED * 112 + 8];
        size_t n = 0;
        for (size_t i = 0; i < m.n_stages && n < sizeof list; i++)
            n += (size_t)snprintf(list + n, sizeof list - n,
                                  "%s(SELECT max(w.version) FROM model_versions w"
                                  " WHERE w.model_name = ?1 AND w.stage = ?%zu)",
                                  i ? ", " : "", i + 2);
        if (n < sizeof list &&
            asprintf(&sql,
                     "SELECT 0, v.model_name, v.version, v.stage, v.artifact_path,"
                     " v.artifact_sha256, v.created_by, v.created_at, "
                     "v.updated_at, " REG_VERSION_VALIDATED ", v.description FROM model_versions v"
                     " WHERE v.model_name = ?1 AND v.version IN (%s)"
                     " UNION ALL SELECT 1, model_name, version, tag_key, tag_value, '', '', '',"
                     " '', 0, '' FROM version_tags WHERE model_name = ?1 AND version IN (%s)"
                     " UNION ALL SELECT 2, model_name, version, alias, '', '', '', '', '', 0, ''"
                     " FROM aliases WHERE model_name = ?1 AND version IN (%s)"
                     " ORDER BY 2, 3, 1, 4",
                     list, list, list) < 0)
            sql = NULL;
    }
    if (reg->read_rc == SG_OK && m.n_stages > 0 &&
        reg_prepare(
            reg,
            sql ? sql
                : "WITH l AS (SELECT v.model_name, v.version, v.stage, v.artifact_path,"
                  " v.artifact_sha256, v.created_by, v.created_at, v.updated_at,"
                  " v.description FROM model_stages s JOIN model_versions v ON v.model_name ="
                  " s.model_name AND v.version = (SELECT max(w.version) FROM"
                  " model_versions w WHERE w.model_name = s.model_name AND w.stage ="
                  " s.stage) WHERE s.model_name = ?1)"
                  " SELECT 0, l.model_name, l.version, l.stage, l.artifact_path,"
                  " l.artifact_sha256, l.created_by, l.created_at, l.updated_at,"
                  " COALESCE((SELECT 1 FROM validations WHERE validations.model_name ="
                  " l.model_name AND validations.version = l.version AND"
                  " validations.result = 'PASSED' LIMIT 1), 0), l.description FROM l"
                  " UNION ALL SELECT 1, t.model_name, t.version, t.tag_key, t.tag_value,"
                  " '', '', '', '', 0, '' FROM l JOIN version_tags t ON t.model_name ="
                  " l.model_name AND t.version = l.version"
                  " UNION ALL SELECT 2, a.model_name, a.version, a.alias, '', '', '', '',"
                  " '', 0, '' FROM aliases a WHERE a.model_name = ?1 AND a.version IN"
                  " (SELECT version FROM l)"
                  " ORDER BY 2, 3, 1, 4",
            &st, err) == SG_OK) {
        reg_bind_text(st, 1, model);
        for (size_t i = 0; sql && i < m.n_stages; i++)
            reg_bind_text(st, (int)i + 2, m.stages[i].name);
        latest = reg_version_docs(reg, st, err);
    }
    free(sql);
    json_object_set_new(o, "latest_versions", latest ? latest : json_array());
    return reg_read_end(reg, o);
}
