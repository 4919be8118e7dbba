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
            sg_errf(err, SG_EINPUT, "search filter: registered models can be filtered by name only");
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
        json_array_append_new(arr, json_pack("{ssssss}", "name", reg_col_text(st, 0),
                                             "description", reg_col_text(st, 1), "created_at",
                                             reg_col_text(st, 2)));
    }
    reg_finalize(st);
    json_t *doc = json_object();
    json_object_set_new(doc, "models", arr);
    return reg_read_end(reg, doc);
}
