/* Read side for the server: registered models matched by the name conditions of a filter. */
#include <string.h>

#include "registry_internal.h"

json_t *sg_registry_search_models(sg_registry *reg, const char *filter, sg_err *err)
{
    reg_filter f;
    memset(&f, 0, sizeof f);
    reg_read_start(reg);
    if (filter && *filter && reg_filter_parse(filter, &f, err) != SG_OK) return NULL;
    for (size_t i = 0; i < f.n; i++)
        if (f.conds[i].field != REG_F_NAME) {
            sg_errf(err, SG_EINPUT,
                    "search filter: registered models can be filtered by name only");
            return NULL;
        }
    reg_stmt *st;
    if (reg_prepare(reg,
                    "SELECT name, description, created_at FROM registered_models ORDER BY name",
                    &st, err) != SG_OK)
        return NULL;
    json_t *arr = json_array();
    while (reg_row(reg, st, err)) {
        if (!reg_filter_match(&f, reg_col_text(st, 0), NULL, NULL)) continue;
        json_array_append_new(arr,
                              json_pack("{ssssss}", "name", reg_col_text(st, 0), "description",
                                        reg_col_text(st, 1), "created_at", reg_col_text(st, 2)));
    }
    reg_finalize(st);
    json_t *doc = json_object();
    json_object_set_new(doc, "models", arr);
    return reg_read_end(reg, doc);
}

json_t *sg_registry_model_summary(sg_registry *reg, const char *model, sg_err *err)
{
    reg_model m;
    reg_read_start(reg);
    if (reg_model_load(reg, model, &m, err) != SG_OK) return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(model));
    reg_stmt *st;
    if (reg_prepare(reg, "SELECT description, created_at FROM registered_models WHERE name = ?",
                    &st, err) == SG_OK) {
        reg_bind_text(st, 1, model);
        if (reg_row(reg, st, err)) {
            json_object_set_new(o, "description", json_string(reg_col_text(st, 0)));
            json_object_set_new(o, "created_at", json_string(reg_col_text(st, 1)));
        }
        reg_finalize(st);
    }
    json_object_set_new(o, "report_stage", json_string(m.report_stage));
    json_object_set_new(o, "stages", reg_stages_json(&m));
    json_t *tags = reg_kv_object(
        reg, "SELECT tag_key, tag_value FROM model_tags WHERE model_name = ? ORDER BY tag_key",
        model, 0, false, err);
    json_object_set_new(o, "tags", tags ? tags : json_object());
    json_t *aliases =
        reg_kv_object(reg, "SELECT alias, version FROM aliases WHERE model_name = ? ORDER BY alias",
                      model, 0, true, err);
    json_object_set_new(o, "aliases", aliases ? aliases : json_object());
    json_t *latest = json_array();
    if (reg_prepare(reg,
                    /* The newest version of each of the model's stages: one index lookup
                     * per stage (model_versions_by_stage), however many versions there are. */
                    "SELECT " REG_VERSION_COLS " FROM model_versions WHERE model_name = ?1 AND"
                    " version IN (SELECT (SELECT max(version) FROM model_versions w WHERE"
                    " w.model_name = ?1 AND w.stage = s.stage) FROM model_stages s WHERE"
                    " s.model_name = ?1) ORDER BY version",
                    &st, err) == SG_OK) {
        reg_bind_text(st, 1, model);
        while (reg_row(reg, st, err))
            json_array_append_new(latest, reg_version_row_json(reg, st, err));
        reg_finalize(st);
    }
    json_object_set_new(o, "latest_versions", latest);
    return reg_read_end(reg, o);
}
