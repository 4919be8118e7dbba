/* Model versions: registration with the artifact's digest, version tags and aliases. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry_internal.h"

static int check_artifact(const char *artifact, char abs[PATH_MAX], char sha[65], sg_err *err)
{
    struct stat stb;
    if (stat(artifact, &stb) != 0)
        return sg_errf(err, SG_EINPUT, "artifact %s: %s", artifact, strerror(errno));
    if (!S_ISREG(stb.st_mode))
        return sg_errf(err, SG_EINPUT, "artifact %s is not a regular file", artifact);
    if (access(artifact, R_OK) != 0)
        return sg_errf(err, SG_EINPUT, "artifact %s is not readable: %s", artifact,
                       strerror(errno));
    /* Stored absolute so models:/ URIs resolve from any working directory. */
    if (!realpath(artifact, abs))
        return sg_errf(err, SG_EINPUT, "artifact %s: %s", artifact, strerror(errno));
    return sg_sha256_file_hex(abs, sha, err);
}

int sg_registry_create_version(sg_registry *reg, const char *model, const char *artifact,
                               const sg_registry_request *req, int64_t *version, sg_err *err)
{
    char abs[PATH_MAX], sha[65], actor[65], now[32];
    *version = 0;
    int rc = check_artifact(artifact, abs, sha, err);
    if (rc != SG_OK) return rc;
    reg_model m;
    if ((rc = reg_begin(reg, err)) != SG_OK) return rc;
    rc = reg_model_load(reg, model, &m, err);
    if (rc == SG_OK && m.n_stages == 0)
        rc = sg_errf(err, SG_EINTERNAL, "model %s has no stages", model);
    if (rc == SG_OK)
        rc = reg_request_check(reg, req, false, "create-version", model, 0, "", sha, actor, err);
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    if (rc == SG_OK)
        rc = reg_prepare(
            reg, "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model_name = ?",
            &st, err);
    if (rc == SG_OK) {
        sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        else
            rc = reg_db_error(reg, err, "numbering a version");
        sqlite3_finalize(st);
    }
    const reg_stage *first = &m.stages[0];
    if (rc == SG_OK)
        rc = reg_prepare(
            reg,
            "INSERT INTO model_versions (model_name, version, artifact_path, artifact_sha256,"
            " created_by, created_at, updated_at, stage, stage_exclusive)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &st, err);
    if (rc == SG_OK) {
        reg_now_utc(now);
        sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, v);
        sqlite3_bind_text(st, 3, abs, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, sha, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, actor, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, now, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 7, now, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 8, first->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 9, !first->multi_version);
        int s = sqlite3_step(st);
        if ((s & 0xff) == SQLITE_CONSTRAINT)
            rc = sg_errf(err, SG_EREFUSED,
                         "refused: %s already holds a version of %s (single-version stage)",
                         first->name, model);
        else if (s != SQLITE_DONE)
            rc = reg_db_error(reg, err, "registering a version");
        sqlite3_finalize(st);
    }
    if (rc == SG_OK) {
        reg_event ev = {.model = model,
                        .version = v,
                        .action = "create-version",
                        .to_stage = first->name,
                        .actor = actor,
                        .evidence = sha,
                        .detail = abs,
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
    }
    rc = reg_finish(reg, rc, err);
    if (rc == SG_OK) *version = v;
    return rc;
}

int sg_registry_set_tag(sg_registry *reg, const char *model, int64_t version, const char *key,
                        const char *value, const sg_registry_request *req, sg_err *err)
{
    if (!*key || strchr(key, '\n') || strlen(key) >= REG_NAME_MAX)
        return sg_errf(err, SG_EINPUT, "tag key '%s' must be 1-127 characters on one line", key);
    const char *action = value ? "set-tag" : "delete-tag";
    char actor[65], evidence[65] = "";
    if (value) sg_sha256_hex((const uint8_t *)value, strlen(value), evidence);
    reg_version v;
    int rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    if ((rc = reg_version_load(reg, model, version, &v, err)) == SG_OK)
        rc = reg_request_check(reg, req, false, action, model, version, key, evidence, actor, err);
    sqlite3_stmt *st = NULL;
    if (rc == SG_OK)
        rc = reg_prepare(
            reg,
            value ? "INSERT OR REPLACE INTO version_tags (model_name, version, tag_key, tag_value)"
                    " VALUES (?, ?, ?, ?)"
                  : "DELETE FROM version_tags WHERE model_name = ? AND version = ? AND tag_key = ?",
            &st, err);
    if (rc == SG_OK) {
        sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, version);
        sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
        if (value) sqlite3_bind_text(st, 4, value, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) rc = reg_db_error(reg, err, action);
        sqlite3_finalize(st);
        if (rc == SG_OK && !value && sqlite3_changes(reg->db) == 0)
            rc =
                sg_errf(err, SG_EINPUT, "%s v%lld has no tag '%s'", model, (long long)version, key);
    }
    if (rc == SG_OK) {
        char detail[1024];
        snprintf(detail, sizeof detail, "%s%s%s", key, value ? "=" : "", value ? value : "");
        reg_event ev = {.model = model,
                        .version = version,
                        .action = action,
                        .actor = actor,
                        .evidence = evidence,
                        .detail = detail,
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
    }
    return reg_finish(reg, rc, err);
}

int sg_registry_set_alias(sg_registry *reg, const char *model, const char *alias, int64_t version,
                          const sg_registry_request *req, sg_err *err)
{
    if (!reg_valid_name(alias) || !strcmp(alias, "latest"))
        return sg_errf(err, SG_EINPUT,
                       "alias '%s' must be letters, digits, '-', '_' or '.' (and not 'latest')",
                       alias);
    const char *action = version ? "set-alias" : "delete-alias";
    char actor[65];
    reg_version v;
    reg_model m;
    int rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    rc = version ? reg_version_load(reg, model, version, &v, err)
                 : reg_model_load(reg, model, &m, err);
    if (rc == SG_OK)
        rc = reg_request_check(reg, req, false, action, model, version, alias, "", actor, err);
    sqlite3_stmt *st = NULL;
    if (rc == SG_OK)
        rc = reg_prepare(
            reg,
            version ? "INSERT OR REPLACE INTO aliases (model_name, alias, version) VALUES (?, ?, ?)"
                    : "DELETE FROM aliases WHERE model_name = ? AND alias = ?",
            &st, err);
    if (rc == SG_OK) {
        sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, alias, -1, SQLITE_TRANSIENT);
        if (version) sqlite3_bind_int64(st, 3, version);
        if (sqlite3_step(st) != SQLITE_DONE) rc = reg_db_error(reg, err, action);
        sqlite3_finalize(st);
        if (rc == SG_OK && !version && sqlite3_changes(reg->db) == 0)
            rc = sg_errf(err, SG_EINPUT, "model %s has no alias '%s'", model, alias);
    }
    if (rc == SG_OK) {
        reg_event ev = {.model = model,
                        .version = version,
                        .action = action,
                        .actor = actor,
                        .detail = alias,
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
    }
    return reg_finish(reg, rc, err);
}
