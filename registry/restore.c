/*
 * Restoring an archived version to Production: the second half of MLflow's own rollback
 * recipe ("archive the current Production version, then transition the previous one to
 * Production"), which `stagegate serve` accepts through plain transition-stage calls.
 *
 * The default policy has no Archived -> Production transition, and it must not simply gain
 * one: a version archived straight from Staging, or rejected since, would then come back
 * with whatever gates Production's transition checks today. A restore is instead held to
 * what `rollback` holds the version it restores to, in one write transaction:
 *   - the caller is an authorized Production promoter (a signed or attested request);
 *   - the version is in Archived now and has been in Production before (an audit event
 *     moved it there), so it passed Production's gates once;
 *   - a passed validation is on record for it, and no approver's latest decision on it is a
 *     rejection;
 *   - its artifact on disk still has the registered digest.
 * The occupant of a single-version Production, if any, is archived in the same transaction.
 * The audit log gets a `restore` event (Archived -> Production) carrying the request.
 * When the policy itself allows Archived -> Production, this does not apply: the plain
 * transition, with all its gates, is the way.
 */
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"
#include "stagegate/model.h"

static sg_status exists(sg_registry *reg, const char *sql, const char *model, int64_t version,
                        bool *found, sg_err *err)
{
    reg_stmt *st;
    sg_status rc = reg_prepare(reg, sql, &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_int64(st, 2, version);
    reg_step_result s = reg_step(st);
    *found = s == REG_ROW;
    if (s != REG_ROW && s != REG_DONE) rc = reg_db_error(reg, err, "checking a version's record");
    reg_finalize(st);
    return rc;
}

static sg_status set_stage(sg_registry *reg, const char *model, int64_t version, const reg_stage *g,
                           sg_err *err)
{
    char now[32];
    reg_now_utc(now);
    reg_stmt *st;
    sg_status rc = reg_prepare(reg,
                               "UPDATE model_versions SET stage = ?, stage_exclusive = ?,"
                               " updated_at = ? WHERE model_name = ? AND version = ?",
                               &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, g->name);
    reg_bind_int64(st, 2, !g->multi_version);
    reg_bind_text(st, 3, now);
    reg_bind_text(st, 4, model);
    reg_bind_int64(st, 5, version);
    reg_step_result s = reg_step(st);
    if (s == REG_CONSTRAINT)
        rc =
            sg_errf(err, SG_EREFUSED, "%s already holds a version (single-version stage)", g->name);
    else if (s != REG_DONE)
        rc = reg_db_error(reg, err, "changing a stage");
    reg_finalize(st);
    return rc;
}

/* The newest version other than `except` in stage, or 0. */
static sg_status occupant(sg_registry *reg, const char *model, const char *stage, int64_t except,
                          int64_t *v, sg_err *err)
{
    reg_stmt *st;
    sg_status rc = reg_prepare(reg,
                               "SELECT coalesce(max(version), 0) FROM model_versions"
                               " WHERE model_name = ? AND stage = ? AND version <> ?",
                               &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_text(st, 2, stage);
    reg_bind_int64(st, 3, except);
    if (reg_step(st) == REG_ROW)
        *v = reg_col_int64(st, 0);
    else
        rc = reg_db_error(reg, err, "finding a stage's versions");
    reg_finalize(st);
    return rc;
}

static sg_status check_not_rejected(sg_registry *reg, const char *model, int64_t version,
                                    sg_err *err)
{
    reg_stmt *st;
    sg_status rc =
        reg_prepare(reg,
                    "SELECT a.approver_key_id, a.comment FROM approvals a"
                    " WHERE a.model_name = ? AND a.version = ? AND a.decision = 'rejected'"
                    " AND a.id = (SELECT max(b.id) FROM approvals b WHERE b.model_name ="
                    " a.model_name AND b.version = a.version AND b.approver_key_id ="
                    " a.approver_key_id)",
                    &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_int64(st, 2, version);
    reg_read_start(reg);
    if (reg_row(reg, st, err))
        rc = sg_errf(err, SG_EREFUSED, "v%lld was rejected by approver %.16s (%s)",
                     (long long)version, reg_col_text(st, 0),
                     *reg_col_text(st, 1) ? reg_col_text(st, 1) : "no comment");
    reg_finalize(st);
    if (rc == SG_OK) rc = reg->read_rc;
    return rc;
}

static sg_status check_promoter(sg_registry *reg, const char *model, const char *actor, sg_err *err)
{
    int64_t n = 0;
    bool ok = false;
    sg_status rc = reg_key_count(reg, model, "promoter", REG_PRODUCTION, &n, err);
    if (rc == SG_OK && n == 0)
        return sg_errf(err, SG_EREFUSED,
                       "no promoter is authorized for Production (create the model with"
                       " --promoter Production=KEY.pub)");
    if (rc == SG_OK)
        rc = reg_key_authorized(reg, model, "promoter", REG_PRODUCTION, actor, &ok, err);
    if (rc == SG_OK && !ok)
        rc = sg_errf(err, SG_EREFUSED, "key %.16s is not an authorized promoter for Production",
                     actor);
    return rc;
}

static sg_status check_artifact(const reg_version *v, sg_err *err)
{
    char now[65];
    sg_err ferr;
    if (sg_model_digest_file_hex(v->artifact_path, now, &ferr) != SG_OK)
        return sg_errf(err, SG_EREFUSED, "artifact %s cannot be read: %s", v->artifact_path,
                       ferr.msg);
    if (strcmp(now, v->artifact_sha256) != 0)
        return sg_errf(err, SG_EREFUSED,
                       "artifact %s changed on disk since registration (sha256 %.16s...,"
                       " registered %.16s...)",
                       v->artifact_path, now, v->artifact_sha256);
    return SG_OK;
}

static sg_status restore(sg_registry *reg, const reg_model *m, const reg_version *v,
                         const sg_registry_request *req, int64_t *archived, sg_err *err)
{
    const reg_stage *prod = reg_model_stage(m, REG_PRODUCTION);
    const reg_stage *arch = reg_model_stage(m, REG_ARCHIVED);
    if (!prod || !arch)
        return sg_errf(err, SG_EINTERNAL, "model %s lacks Production or Archived", m->name);
    char actor[65];
    bool found = false;
    sg_status rc = reg_request_check(reg, req, true, "transition", m->name, v->version,
                                     REG_PRODUCTION, "", actor, err);
    if (rc == SG_OK) rc = check_promoter(reg, m->name, actor, err);
    if (rc == SG_OK)
        rc = exists(reg,
                    "SELECT 1 FROM audit_log WHERE model_name = ? AND version = ? AND"
                    " to_stage = 'Production' LIMIT 1",
                    m->name, v->version, &found, err);
    if (rc == SG_OK && !found)
        rc = sg_errf(err, SG_EREFUSED,
                     "v%lld has never been in Production, so it cannot come back from Archived"
                     " (only a version that passed Production's gates before is restored; to"
                     " go back to the previous Production version call POST"
                     " /api/stagegate/rollback, or `stagegate registry rollback`)",
                     (long long)v->version);
    if (rc == SG_OK)
        rc = exists(reg,
                    "SELECT 1 FROM validations WHERE model_name = ? AND version = ? AND"
                    " result = 'PASSED'",
                    m->name, v->version, &found, err);
    if (rc == SG_OK && !found)
        rc = sg_errf(err, SG_EREFUSED, "no passed validation on record for v%lld",
                     (long long)v->version);
    if (rc == SG_OK) rc = check_not_rejected(reg, m->name, v->version, err);
    if (rc == SG_OK) rc = check_artifact(v, err);
    int64_t occ = 0;
    if (rc == SG_OK && !prod->multi_version)
        rc = occupant(reg, m->name, prod->name, v->version, &occ, err);
    if (rc == SG_OK && occ) {
        char detail[64];
        snprintf(detail, sizeof detail, "replaced by v%lld", (long long)v->version);
        reg_event ev = {.model = m->name,
                        .version = occ,
                        .action = "archive",
                        .from_stage = REG_PRODUCTION,
                        .to_stage = arch->name,
                        .actor = actor,
                        .detail = detail};
        rc = set_stage(reg, m->name, occ, arch, err);
        if (rc == SG_OK) rc = reg_audit_append(reg, &ev, err);
        if (rc == SG_OK) *archived = occ;
    }
    if (rc == SG_OK) rc = set_stage(reg, m->name, v->version, prod, err);
    if (rc == SG_OK) {
        reg_event ev = {.model = m->name,
                        .version = v->version,
                        .action = "restore",
                        .from_stage = v->stage,
                        .to_stage = prod->name,
                        .actor = actor,
                        .detail = "restored from Archived: was in Production before",
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
    }
    return rc;
}

sg_status sg_registry_restore(sg_registry *reg, const char *model, int64_t version,
                              const sg_registry_request *req, bool *applies, int64_t *archived,
                              sg_err *err)
{
    *applies = false;
    *archived = 0;
    reg_model m;
    reg_version v;
    sg_status rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    bool allowed = true;
    if ((rc = reg_model_load(reg, model, &m, err)) == SG_OK &&
        (rc = reg_version_load(reg, model, version, &v, err)) == SG_OK &&
        !strcmp(v.stage, REG_ARCHIVED))
        rc = reg_transition_allowed(reg, model, REG_ARCHIVED, REG_PRODUCTION, &allowed, err);
    if (rc == SG_OK && !strcmp(v.stage, REG_ARCHIVED) && !allowed) {
        *applies = true;
        rc = restore(reg, &m, &v, req, archived, err);
        if (rc == SG_EREFUSED) {
            char reason[sizeof err->msg];
            snprintf(reason, sizeof reason, "%s", err->msg);
            rc = sg_errf(err, SG_EREFUSED,
                         "refused: %s v%lld -> Production (restore from Archived): %s", model,
                         (long long)version, reason);
        }
    } else if (rc == SG_OK) {
        rc = sg_errf(err, SG_EINPUT,
                     "%s v%lld: a restore applies to an Archived version of a model whose policy"
                     " has no Archived -> Production transition",
                     model, (long long)version);
    }
    return reg_finish(reg, rc, err);
}
