/* Registered models and their lifecycle policy: stages, transitions, requirements, role keys. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry_internal.h"
#include "stagegate/json.h"
#include "stagegate/keys.h"

static const char *const default_stages[] = {"None", "Staging", REG_PRODUCTION, REG_ARCHIVED};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i])) return true;
    return false;
}

/* " (did you mean 'Production'? ...)" when s names a stage in another case, else "". */
static const char *case_hint(const char *s, const char *const *stages, size_t n, char *buf,
                             size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; s && i < n; i++)
        if (!strcasecmp(s, stages[i]))
            snprintf(buf, len, " (did you mean '%s'? stage names in a model's policy are matched exactly)",
                     stages[i]);
    return buf;
}

static int step_done(sg_registry *reg, reg_stmt *st, const char *what, sg_err *err)
{
    int s = reg_step(st);
    int rc = s == REG_DONE ? SG_OK : reg_db_error(reg, err, what);
    reg_finalize(st);
    return rc;
}

static int insert_stage(sg_registry *reg, const sg_registry_model_spec *sp, const char *stage,
                        int pos, const char *report_stage, sg_err *err)
{
    bool promoters = false;
    for (size_t i = 0; i < sp->n_promoters; i++)
        if (!strcmp(sp->promoters[i].stage, stage)) promoters = true;
    bool prod = !strcmp(stage, REG_PRODUCTION);
    bool multi = !prod;
    if (in_list(stage, sp->single_stages, sp->n_single)) multi = false;
    if (in_list(stage, sp->multi_stages, sp->n_multi)) multi = true;
    reg_stmt *st;
    int rc =
        reg_prepare(reg,
                    "INSERT INTO model_stages (model_name, stage, position, requires_report,"
                    " requires_promoter, requires_validation, requires_approval, multi_version)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, sp->name);
    reg_bind_text(st, 2, stage);
    reg_bind_int64(st, 3, pos);
    reg_bind_int64(st, 4, !strcmp(stage, report_stage));
    reg_bind_int64(st, 5, prod || promoters);
    reg_bind_int64(st, 6, prod);
    reg_bind_int64(st, 7, prod && sp->require_approval);
    reg_bind_int64(st, 8, multi);
    return step_done(reg, st, "adding a stage", err);
}

static int insert_transition(sg_registry *reg, const char *model, const char *from, const char *to,
                             sg_err *err)
{
    reg_stmt *st;
    int rc = reg_prepare(reg,
                         "INSERT INTO model_transitions (model_name, from_stage, to_stage)"
                         " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                         &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_text(st, 2, from);
    reg_bind_text(st, 3, to);
    return step_done(reg, st, "adding a transition", err);
}

/* "A>B,C>D" or the default: each stage to the next one, and any stage to Archived. */
static sg_status insert_transitions(sg_registry *reg, const sg_registry_model_spec *sp,
                              const char *const *stages, size_t n, sg_err *err)
{
    int rc = SG_OK;
    if (!sp->transitions) {
        for (size_t i = 0; rc == SG_OK && i + 1 < n; i++)
            rc = insert_transition(reg, sp->name, stages[i], stages[i + 1], err);
        for (size_t i = 0; rc == SG_OK && i < n; i++)
            if (strcmp(stages[i], REG_ARCHIVED) != 0)
                rc = insert_transition(reg, sp->name, stages[i], REG_ARCHIVED, err);
        return rc;
    }
    char *copy = strdup(sp->transitions), *rest = copy;
    if (!copy) return sg_errf(err, SG_ENOMEM, "out of memory");
    /* An empty entry (",,", or an empty list: a model whose versions could never move) is
       refused, not skipped. */
    for (char *tok; rc == SG_OK && (tok = strsep(&rest, ",")) != NULL;) {
        char *gt = strchr(tok, '>');
        if (!*tok) {
            rc = sg_errf(err, SG_EINPUT, "--transitions: an empty entry in '%s'", sp->transitions);
            break;
        }
        if (!gt) {
            rc = sg_errf(err, SG_EINPUT, "--transitions: '%s' is not FROM>TO", tok);
            break;
        }
        *gt = '\0';
        if (!in_list(tok, stages, n) || !in_list(gt + 1, stages, n))
            rc = sg_errf(err, SG_EINPUT,
                         "--transitions: '%s>%s' names a stage the model does not have", tok,
                         gt + 1);
        else
            rc = insert_transition(reg, sp->name, tok, gt + 1, err);
    }
    free(copy);
    return rc;
}

static int insert_key(sg_registry *reg, const char *model, const char *role, const char *stage,
                      const sg_registry_key_ref *ref, sg_err *err)
{
    EVP_PKEY *key = NULL;
    char id[65], *pem = NULL;
    int rc = ref->pem ? sg_key_load_public_pem(ref->pem, strlen(ref->pem), role, &key, err)
                      : sg_key_load_public(ref->path, &key, err);
    if (rc != SG_OK) return rc;
    if ((rc = sg_key_id(key, id, err)) == SG_OK) rc = sg_key_public_pem(key, &pem, err);
    EVP_PKEY_free(key);
    if (rc != SG_OK) return rc;
    reg_stmt *st;
    rc = reg_prepare(reg,
                     "INSERT INTO model_keys (model_name, role, stage, key_id, public_pem)"
                     " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                     &st, err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, model);
        reg_bind_text(st, 2, role);
        reg_bind_text(st, 3, stage ? stage : "");
        reg_bind_text(st, 4, id);
        reg_bind_text(st, 5, pem);
        rc = step_done(reg, st, "adding a key", err);
    }
    free(pem);
    return rc;
}

static sg_status check_spec(const sg_registry_model_spec *sp, const char *const *stages, size_t n,
                      const char *report_stage, sg_err *err)
{
    if (!reg_valid_name(sp->name))
        return sg_errf(
            err, SG_EINPUT,
            "model name '%s' must be 1-127 characters of letters, digits, '-', '_' or '.', "
            "not dots only",
            sp->name);
    if (n < 2 || n > REG_MAX_STAGES)
        return sg_errf(err, SG_EINPUT, "--stages: a model needs 2 to %d stages", REG_MAX_STAGES);
    for (size_t i = 0; i < n; i++) {
        if (!reg_valid_name(stages[i]))
            return sg_errf(err, SG_EINPUT, "--stages: '%s' is not a valid stage name", stages[i]);
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(stages[i], stages[j]))
                return sg_errf(err, SG_EINPUT, "--stages: stage '%s' is listed twice", stages[i]);
        /* models:/NAME/2 is version 2 and models:/NAME/latest the newest version: a stage of
           either name could never be named in a URI. */
        if (!strcasecmp(stages[i], "latest") || strspn(stages[i], "0123456789") == strlen(stages[i]))
            return sg_errf(err, SG_EINPUT,
                           "--stages: '%s' would read as a version in models:/ URIs (digits and "
                           "'latest' are reserved)",
                           stages[i]);
    }
    if (!in_list(REG_PRODUCTION, stages, n) || !in_list(REG_ARCHIVED, stages, n))
        return sg_errf(err, SG_EINPUT, "--stages: the list must include Production and Archived");
    char hint[REG_NAME_MAX + 96];
    if (!in_list(report_stage, stages, n))
        return sg_errf(err, SG_EINPUT, "--report-stage: '%s' is not one of the model's stages%s",
                       report_stage, case_hint(report_stage, stages, n, hint, sizeof hint));
    /* A new version enters the first stage without a transition, so no report would ever
       be asked for there: the gated stage would hold ungated versions. */
    if (!strcasecmp(report_stage, stages[0]))
        return sg_errf(err, SG_EINPUT,
                       "--report-stage: '%s' is the first stage, which new versions enter without "
                       "a report; name a later one",
                       report_stage);
    /* Nor may it be one a transition into needs a promoter, a validation or an approval:
       versions would enter Production (or a promoter's stage) with none of them. */
    if (!strcasecmp(stages[0], REG_PRODUCTION))
        return sg_errf(err, SG_EINPUT,
                       "--stages: Production is the first stage, which new versions enter without "
                       "a promoter, a report or an approval; list it after the report stage");
    for (size_t i = 0; i < sp->n_promoters; i++)
        if (sp->promoters[i].stage && !strcasecmp(sp->promoters[i].stage, stages[0]))
            return sg_errf(err, SG_EINPUT,
                           "--promoter: '%s' is the first stage, which new versions enter without "
                           "a promoter's request",
                           stages[0]);
    for (size_t i = 0; i < sp->n_promoters; i++)
        if (!sp->promoters[i].stage || !in_list(sp->promoters[i].stage, stages, n))
            return sg_errf(err, SG_EINPUT, "--promoter: '%s' is not one of the model's stages%s",
                           sp->promoters[i].stage ? sp->promoters[i].stage : "",
                           case_hint(sp->promoters[i].stage, stages, n, hint, sizeof hint));
    for (size_t i = 0; i < sp->n_single; i++)
        if (!in_list(sp->single_stages[i], stages, n))
            return sg_errf(err, SG_EINPUT, "--single-version: unknown stage '%s'%s",
                           sp->single_stages[i],
                           case_hint(sp->single_stages[i], stages, n, hint, sizeof hint));
    for (size_t i = 0; i < sp->n_multi; i++)
        for (size_t j = 0; j < sp->n_single; j++)
            if (!strcasecmp(sp->multi_stages[i], sp->single_stages[j]))
                return sg_errf(err, SG_EINPUT,
                               "stage '%s' is given to both --single-version and --multi-version",
                               sp->multi_stages[i]);
    for (size_t i = 0; i < sp->n_multi; i++)
        if (!in_list(sp->multi_stages[i], stages, n))
            return sg_errf(err, SG_EINPUT, "--multi-version: unknown stage '%s'%s",
                           sp->multi_stages[i],
                           case_hint(sp->multi_stages[i], stages, n, hint, sizeof hint));
    /* Archived is where the registry itself moves a version that a promotion or a rollback
       replaces, with only that transition's proof: a promoter key, a report or a one-version
       rule on it would hold for a manual archive and not for those. (--single-version
       Archived had frozen Production after its second promotion.) */
    if (!strcasecmp(report_stage, REG_ARCHIVED))
        return sg_errf(err, SG_EINPUT,
                       "--report-stage: Archived is where the registry moves replaced versions "
                       "itself; it cannot require a report");
    for (size_t i = 0; i < sp->n_promoters; i++)
        if (sp->promoters[i].stage && !strcasecmp(sp->promoters[i].stage, REG_ARCHIVED))
            return sg_errf(err, SG_EINPUT,
                           "--promoter: Archived is where the registry moves replaced versions "
                           "itself; it cannot require a promoter (leaving Production already "
                           "needs Production's)");
    for (size_t i = 0; i < sp->n_single; i++)
        if (!strcasecmp(sp->single_stages[i], REG_ARCHIVED))
            return sg_errf(err, SG_EINPUT,
                           "--single-version: Archived holds every replaced version; it cannot "
                           "hold one");
    if (sp->require_approval && sp->n_approvers == 0)
        return sg_errf(err, SG_EINPUT, "--require-approval needs at least one --approver key");
    const char *pins[] = {sp->policy_sha256, sp->dataset_sha256};
    for (int i = 0; i < 2; i++)
        if (pins[i] && *pins[i] &&
            (strlen(pins[i]) != 64 || strspn(pins[i], "0123456789abcdef") != 64))
            return sg_errf(err, SG_EINPUT, "--%s: the pin '%.80s' is not a sha256 (64 lowercase hex)",
                           i ? "dataset" : "policy", pins[i]);
    if (sp->max_report_age_days < 0)
        return sg_errf(err, SG_EINPUT, "--max-report-age must be a positive number of days");
    return SG_OK;
}

static int insert_model(sg_registry *reg, const sg_registry_model_spec *sp,
                        const char *report_stage, const char *actor, sg_err *err)
{
    char now[32];
    reg_now_utc(now);
    reg_stmt *st;
    int rc = reg_prepare(reg,
                         "INSERT INTO registered_models (name, description, require_approval,"
                         " max_report_age_days, report_stage, created_by, created_at, updated_at,"
                         " policy_sha256, dataset_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, sp->name);
    reg_bind_text(st, 2, sp->description ? sp->description : "");
    reg_bind_int64(st, 3, sp->require_approval);
    reg_bind_int64(
        st, 4, sp->max_report_age_days > 0 ? sp->max_report_age_days : REG_DEFAULT_REPORT_AGE_DAYS);
    reg_bind_text(st, 5, report_stage);
    reg_bind_text(st, 6, actor);
    reg_bind_text(st, 7, now);
    reg_bind_text(st, 8, now);
    reg_bind_text(st, 9, sp->policy_sha256 ? sp->policy_sha256 : "");
    reg_bind_text(st, 10, sp->dataset_sha256 ? sp->dataset_sha256 : "");
    int s = reg_step(st);
    if (s == REG_CONSTRAINT)
        rc = sg_errf(err, SG_EINPUT, "model '%s' already exists in registry %s", sp->name,
                     reg->path);
    else if (s != REG_DONE)
        rc = reg_db_error(reg, err, "creating a model");
    reg_finalize(st);
    return rc;
}

static sg_status insert_model_tag(sg_registry *reg, const char *model, const char *kv, sg_err *err)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return sg_errf(err, SG_EINPUT, "--tag: '%s' is not KEY=VALUE", kv);
    reg_stmt *st;
    char *key = strndup(kv, (size_t)(eq - kv));
    if (!key) return sg_errf(err, SG_ENOMEM, "out of memory");
    int rc = reg_prepare(reg,
                         "INSERT INTO model_tags (model_name, tag_key, tag_value) VALUES (?, ?, ?)"
                         " ON CONFLICT (model_name, tag_key) DO UPDATE SET tag_value ="
                         " excluded.tag_value",
                         &st, err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, model);
        reg_bind_text(st, 2, key);
        reg_bind_text(st, 3, eq + 1);
        rc = step_done(reg, st, "adding a model tag", err);
    }
    free(key);
    return rc;
}

/* An approval counts only by a key other than the promoter's: when every approver is the
   model's only Production promoter, no version could ever reach Production. */
static sg_status check_approver_other(sg_registry *reg, const char *model, sg_err *err)
{
    reg_stmt *st;
    sg_status rc = reg_prepare(
        reg,
        "SELECT (SELECT count(*) FROM model_keys WHERE model_name = ? AND role = 'promoter'"
        " AND stage = ?), (SELECT count(*) FROM model_keys a WHERE a.model_name = ? AND"
        " a.role = 'approver' AND EXISTS (SELECT 1 FROM model_keys p WHERE p.model_name ="
        " a.model_name AND p.role = 'promoter' AND p.stage = ? AND p.key_id <> a.key_id))",
        &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_text(st, 2, REG_PRODUCTION);
    reg_bind_text(st, 3, model);
    reg_bind_text(st, 4, REG_PRODUCTION);
    int64_t promoters = 0, usable = 0;
    if (reg_step(st) == REG_ROW) {
        promoters = reg_col_int64(st, 0);
        usable = reg_col_int64(st, 1);
    } else {
        rc = reg_db_error(reg, err, "checking approvers");
    }
    reg_finalize(st);
    if (rc == SG_OK && promoters > 0 && usable == 0)
        rc = sg_errf(err, SG_EINPUT,
                     "--require-approval: the only approver is the only Production promoter, "
                     "and an approval must come from another key than the promoter's, so no "
                     "version could reach Production; add another --approver or --promoter");
    return rc;
}

sg_status reg_model_insert(sg_registry *reg, const sg_registry_model_spec *sp, sg_err *err)
{
    const char *const *stages = sp->stages ? sp->stages : default_stages;
    size_t n = sp->stages ? sp->n_stages : 4;
    const char *report_stage = sp->report_stage ? sp->report_stage : "Staging";
    int rc = check_spec(sp, stages, n, report_stage, err);
    if (rc == SG_OK) rc = insert_model(reg, sp, report_stage, "", err);
    for (size_t i = 0; rc == SG_OK && i < n; i++)
        rc = insert_stage(reg, sp, stages[i], (int)i, report_stage, err);
    if (rc == SG_OK) rc = insert_transitions(reg, sp, stages, n, err);
    for (size_t i = 0; rc == SG_OK && i < sp->n_signers; i++)
        rc = insert_key(reg, sp->name, "signer", "", &sp->signers[i], err);
    for (size_t i = 0; rc == SG_OK && i < sp->n_promoters; i++)
        rc = insert_key(reg, sp->name, "promoter", sp->promoters[i].stage, &sp->promoters[i],
                        err);
    for (size_t i = 0; rc == SG_OK && i < sp->n_approvers; i++)
        rc = insert_key(reg, sp->name, "approver", "", &sp->approvers[i], err);
    if (rc == SG_OK && sp->require_approval) rc = check_approver_other(reg, sp->name, err);
    for (size_t i = 0; rc == SG_OK && i < sp->n_tags; i++)
        rc = insert_model_tag(reg, sp->name, sp->tags[i], err);
    return rc;
}

sg_status sg_registry_create_model(sg_registry *reg, const sg_registry_model_spec *sp,
                             const sg_registry_request *req, sg_err *err)
{
    char actor[65];
    /* JSON (every answer, the recorded configuration) holds UTF-8 only */
    if (sp->description && !sg_utf8_valid(sp->description))
        return sg_errf(err, SG_EINPUT, "model %s: the description is not UTF-8 text", sp->name);
    if (sp->description && strlen(sp->description) > SG_REGISTRY_DESCRIPTION_MAX)
        return sg_errf(err, SG_EINPUT, "model %s: the description is %zu bytes, more than %d",
                       sp->name, strlen(sp->description), SG_REGISTRY_DESCRIPTION_MAX);
    for (size_t i = 0; i < sp->n_tags; i++) {
        if (!sg_utf8_valid(sp->tags[i]))
            return sg_errf(err, SG_EINPUT, "model %s: tag %zu is not UTF-8 text", sp->name, i + 1);
        /* a version tag's rule for the key: a key of any length had been stored by SQLite and
           refused by PostgreSQL's index (9,000 bytes), so such a registry could not migrate */
        const char *tag = sp->tags[i], *eq = strchr(tag, '=');
        const size_t kl = eq ? (size_t)(eq - tag) : 0;
        if (eq && reg_text_chars(eq + 1, strlen(eq + 1)) > SG_REGISTRY_TAG_VALUE_MAX)
            return sg_errf(err, SG_EINPUT, "model %s: tag %zu's value is more than %d characters",
                           sp->name, i + 1, SG_REGISTRY_TAG_VALUE_MAX);
        if (eq && !reg_tag_key_ok(tag, kl))
            return sg_errf(err, SG_EINPUT,
                           "model %s: tag key '%.40s%s' must be 1-%d characters of UTF-8 on one "
                           "line, without '='",
                           sp->name, tag, kl > 40 ? "..." : "", REG_TAG_KEY_CHARS);
    }
    int rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    rc = reg_model_insert(reg, sp, err);
    /* The event records the configuration (keys, stages, pins) and an admin's signature over
     * its digest once the registry has a root of trust. */
    if (rc == SG_OK) rc = reg_config_record(reg, sp->name, "create-model", NULL, req, actor, err);
    reg_stmt *st = NULL;
    if (rc == SG_OK && *actor &&
        (rc = reg_prepare(reg, "UPDATE registered_models SET created_by = ? WHERE name = ?", &st,
                          err)) == SG_OK) {
        reg_bind_text(st, 1, actor);
        reg_bind_text(st, 2, sp->name);
        rc = step_done(reg, st, "recording a model's creator", err);
    }
    return reg_finish(reg, rc, err);
}

sg_status reg_model_load(sg_registry *reg, const char *name, reg_model *m, sg_err *err)
{
    memset(m, 0, sizeof *m);
    reg_stmt *st;
    int rc = reg_prepare(reg,
                         "SELECT require_approval, max_report_age_days, report_stage,"
                         " policy_sha256, dataset_sha256 FROM registered_models WHERE name = ?",
                         &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, name);
    int s = reg_step(st);
    if (s == REG_ROW) {
        snprintf(m->name, sizeof m->name, "%s", name);
        m->require_approval = (int)reg_col_int64(st, 0) != 0;
        m->max_report_age_days = reg_col_int64(st, 1);
        snprintf(m->report_stage, sizeof m->report_stage, "%s", reg_col_text(st, 2));
        snprintf(m->policy_sha256, sizeof m->policy_sha256, "%s", reg_col_text(st, 3));
        snprintf(m->dataset_sha256, sizeof m->dataset_sha256, "%s", reg_col_text(st, 4));
    } else {
        rc = s == REG_DONE
                 ? sg_errf(err, SG_EINPUT, "no model named '%s' in registry %s", name, reg->path)
                 : reg_db_error(reg, err, "loading a model");
    }
    reg_finalize(st);
    if (rc != SG_OK) return rc;
    rc = reg_prepare(
        reg,
        "SELECT stage, position, requires_report, requires_promoter, requires_validation,"
        " requires_approval, multi_version FROM model_stages WHERE model_name = ?"
        " ORDER BY position",
        &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, name);
    while ((s = reg_step(st)) == REG_ROW && m->n_stages < REG_MAX_STAGES) {
        reg_stage *g = &m->stages[m->n_stages++];
        snprintf(g->name, sizeof g->name, "%s", reg_col_text(st, 0));
        g->position = (int)reg_col_int64(st, 1);
        g->requires_report = (int)reg_col_int64(st, 2) != 0;
        g->requires_promoter = (int)reg_col_int64(st, 3) != 0;
        g->requires_validation = (int)reg_col_int64(st, 4) != 0;
        g->requires_approval = (int)reg_col_int64(st, 5) != 0;
        g->multi_version = (int)reg_col_int64(st, 6) != 0;
    }
    if (s != REG_DONE && s != REG_ROW) rc = reg_db_error(reg, err, "loading stages");
    reg_finalize(st);
    return rc;
}

const reg_stage *reg_model_stage(const reg_model *m, const char *stage)
{
    for (size_t i = 0; i < m->n_stages; i++)
        if (!strcasecmp(m->stages[i].name, stage)) return &m->stages[i];
    return NULL;
}

sg_status reg_transition_allowed(sg_registry *reg, const char *model, const char *from, const char *to,
                           bool *allowed, sg_err *err)
{
    json_t *cfg = reg_tx_config(reg, model);
    if (cfg) {
        *allowed = reg_config_allows(cfg, from, to);
        return SG_OK;
    }
    reg_stmt *st;
    int rc = reg_prepare(reg,
                         "SELECT 1 FROM model_transitions WHERE model_name = ? AND from_stage = ?"
                         " AND to_stage = ?",
                         &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_text(st, 2, from);
    reg_bind_text(st, 3, to);
    int s = reg_step(st);
    *allowed = s == REG_ROW;
    if (s != REG_ROW && s != REG_DONE) rc = reg_db_error(reg, err, "checking a transition");
    reg_finalize(st);
    return rc;
}

int reg_key_count(sg_registry *reg, const char *model, const char *role, const char *stage,
                  int64_t *n, sg_err *err)
{
    json_t *cfg = reg_tx_config(reg, model);
    if (cfg) {
        reg_config_key_pem(cfg, role, stage, NULL, n);
        return SG_OK;
    }
    reg_stmt *st;
    int rc = reg_prepare(
        reg, "SELECT count(*) FROM model_keys WHERE model_name = ? AND role = ? AND stage = ?", &st,
        err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_text(st, 2, role);
    reg_bind_text(st, 3, stage ? stage : "");
    if (reg_step(st) == REG_ROW)
        *n = reg_col_int64(st, 0);
    else
        rc = reg_db_error(reg, err, "counting keys");
    reg_finalize(st);
    return rc;
}

sg_status reg_key_authorized(sg_registry *reg, const char *model, const char *role, const char *stage,
                       const char *key_id, bool *ok, sg_err *err)
{
    json_t *cfg = reg_tx_config(reg, model);
    if (cfg) {
        *ok = reg_config_key_pem(cfg, role, stage, key_id, NULL) != NULL;
        return SG_OK;
    }
    reg_stmt *st;
    int rc = reg_prepare(reg,
                         "SELECT 1 FROM model_keys WHERE model_name = ? AND role = ? AND stage = ?"
                         " AND key_id = ?",
                         &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_text(st, 2, role);
    reg_bind_text(st, 3, stage ? stage : "");
    reg_bind_text(st, 4, key_id);
    int s = reg_step(st);
    *ok = s == REG_ROW;
    if (s != REG_ROW && s != REG_DONE) rc = reg_db_error(reg, err, "checking a key");
    reg_finalize(st);
    return rc;
}

static sg_status version_prepare(sg_registry *reg, const char *model, int64_t version,
                                 reg_stmt **st, sg_err *err)
{
    sg_status rc = reg_prepare(reg,
                               "SELECT stage, artifact_path, artifact_sha256 FROM model_versions"
                               " WHERE model_name = ? AND version = ?",
                               st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(*st, 1, model);
    reg_bind_int64(*st, 2, version);
    return SG_OK;
}

reg_stmt *reg_version_prefetch(sg_registry *reg, const char *model, int64_t version)
{
    reg_stmt *st = NULL;
    sg_err err;
    if (version_prepare(reg, model, version, &st, &err) != SG_OK) {
        reg->read_rc = SG_OK; /* the load prepares its own and reports */
        return NULL;
    }
    reg_prefetch(reg, st);
    return st;
}

sg_status reg_version_load(sg_registry *reg, const char *model, int64_t version, reg_version *v,
                     sg_err *err)
{
    return reg_version_load_from(reg, NULL, model, version, v, err);
}

sg_status reg_version_load_from(sg_registry *reg, reg_stmt *st, const char *model,
                                int64_t version, reg_version *v, sg_err *err)
{
    memset(v, 0, sizeof *v);
    int rc = st ? SG_OK : version_prepare(reg, model, version, &st, err);
    if (rc != SG_OK) return rc;
    int s = reg_step(st);
    if (s == REG_ROW) {
        v->version = version;
        snprintf(v->stage, sizeof v->stage, "%s", reg_col_text(st, 0));
        snprintf(v->artifact_path, sizeof v->artifact_path, "%s", reg_col_text(st, 1));
        snprintf(v->artifact_sha256, sizeof v->artifact_sha256, "%s", reg_col_text(st, 2));
    } else {
        rc = s == REG_DONE ? sg_errf(err, SG_EINPUT, "model '%s' has no version %lld", model,
                                     (long long)version)
                           : reg_db_error(reg, err, "loading a version");
    }
    reg_finalize(st);
    return rc;
}
