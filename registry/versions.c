/* Model versions: registration with the artifact's digest, version tags and aliases. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry_internal.h"
#include "stagegate/model.h"

static sg_status check_artifact(const char *artifact, char abs[PATH_MAX], char sha[65], sg_err *err)
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
    return sg_model_digest_file_hex(abs, sha, err);
}

sg_status sg_registry_create_version(sg_registry *reg, const char *model, const char *artifact,
                               const sg_registry_request *req, int64_t *version, sg_err *err)
{
    char abs[PATH_MAX], sha[65], actor[65], now[32];
    *version = 0;
    int rc = check_artifact(artifact, abs, sha, err);
    if (rc != SG_OK) return rc;
    if (!sg_utf8_valid(abs))
        return sg_errf(err, SG_EINPUT,
                       "%s: the artifact's path is not UTF-8 and could not be shown in JSON; "
                       "rename it", artifact);
    reg_model m;
    if ((rc = reg_begin(reg, err)) != SG_OK) return rc;
    /* The next version number is read with the model's configuration (sent first, both are
     * answered in one round trip under the write lock). */
    reg_stmt *st = NULL;
    rc = reg_prepare(
        reg, "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model_name = ?", &st,
        err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, model);
        reg_prefetch(reg, st);
    }
    /* The model as its recorded configuration gives it (one statement, which also says
     * whether the registry has a root of trust for the request check). */
    if (rc == SG_OK) rc = reg_model_load_checked(reg, model, &m, err);
    if (rc == SG_OK && m.n_stages == 0)
        rc = sg_errf(err, SG_EINTERNAL, "model %s has no stages", model);
    int64_t v = 0;
    if (rc == SG_OK) {
        if (reg_step(st) == REG_ROW)
            v = reg_col_int64(st, 0);
        else
            rc = reg_db_error(reg, err, "numbering a version");
    }
    reg_finalize(st);
    st = NULL;
    if (rc == SG_OK)
        rc = reg_request_check(reg, req, false, "create-version", model, 0, "", sha, actor, err);
    const reg_stage *first = &m.stages[0];
    /* create-model refuses such a first stage; a registry made before it did may hold one */
    if (rc == SG_OK && (first->requires_report || first->requires_promoter ||
                        first->requires_validation || first->requires_approval))
        rc = sg_errf(err, SG_EREFUSED,
                     "refused: model %s's first stage '%s' needs a %s to enter, and a new version "
                     "enters it without a transition; recreate the model with another stage list",
                     model, first->name,
                     first->requires_report      ? "report"
                     : first->requires_promoter  ? "promoter's request"
                     : first->requires_approval  ? "approval"
                                                 : "validation");
    if (rc == SG_OK)
        rc = reg_prepare(
            reg,
            "INSERT INTO model_versions (model_name, version, artifact_path, artifact_sha256,"
            " created_by, created_at, updated_at, stage, stage_exclusive)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &st, err);
    if (rc == SG_OK) {
        reg_now_utc(now);
        reg_bind_text(st, 1, model);
        reg_bind_int64(st, 2, v);
        reg_bind_text(st, 3, abs);
        reg_bind_text(st, 4, sha);
        reg_bind_text(st, 5, actor);
        reg_bind_text(st, 6, now);
        reg_bind_text(st, 7, now);
        reg_bind_text(st, 8, first->name);
        reg_bind_int64(st, 9, !first->multi_version);
        /* Its success is all that is needed: PostgreSQL sends it in the pipeline with the
         * audit event and the commit, and a refusal there is the commit's. */
        char refused[2 * REG_NAME_MAX + 96];
        snprintf(refused, sizeof refused,
                 "refused: %s already holds a version of %s (single-version stage)", first->name,
                 model);
        rc = reg_write(reg, st, "registering a version", refused, err);
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
    if (rc == SG_OK) { /* the new version's document, as sg_registry_get_version gives it */
        reg->tx_doc =
            json_pack("{sssIsssssssssssss{}s[]sbss}", "name", model, "version", (json_int_t)v,
                      "stage", first->name, "artifact_path", abs, "artifact_sha256", sha,
                      "created_by", actor, "created_at", now, "updated_at", now, "tags", "aliases",
                      "validated", 0, "description", "");
    }
    rc = reg_finish(reg, rc, err);
    if (rc == SG_OK) *version = v;
    return rc;
}

bool reg_tag_key_ok(const char *key, size_t len)
{
    /* No '=': the audit log records a tag as KEY=VALUE, split at the first '='; no line
       break: the key is a line of the signed request. */
    if (len == 0 || len >= REG_TAG_KEY_MAX || memchr(key, '=', len) || memchr(key, '\n', len) ||
        memchr(key, '\r', len) || memchr(key, '\0', len))
        return false;
    char copy[REG_TAG_KEY_MAX];
    memcpy(copy, key, len);
    copy[len] = '\0';
    return reg_text_chars(key, len) <= REG_TAG_KEY_CHARS && sg_utf8_valid(copy);
}

size_t reg_text_chars(const char *s, size_t len)
{
    size_t chars = 0; /* characters of UTF-8: the bytes that do not continue one */
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    return chars;
}

sg_status sg_registry_tag_check(const char *key, const char *value, sg_err *err)
{
    if (!reg_tag_key_ok(key, strlen(key)))
        return sg_errf(err, SG_EINPUT,
                       "tag key '%.160s%s' must be 1-%d characters of UTF-8 on one line, "
                       "without '='",
                       key, strlen(key) > 160 ? "..." : "", REG_TAG_KEY_CHARS);
    /* JSON (every answer, the audit log's events) holds UTF-8 only */
    if (value && !sg_utf8_valid(value))
        return sg_errf(err, SG_EINPUT, "tag %.160s: the value is not UTF-8 text", key);
    const size_t chars = value ? reg_text_chars(value, strlen(value)) : 0;
    if (chars > SG_REGISTRY_TAG_VALUE_MAX)
        return sg_errf(err, SG_EINPUT, "tag %.160s: the value is %zu characters, more than %d", key,
                       chars, SG_REGISTRY_TAG_VALUE_MAX);
    return SG_OK;
}

static sg_status tag_count_check(sg_registry *reg, const char *model, int64_t version, sg_err *err)
{
    reg_stmt *st;
    sg_status rc = reg_prepare(
        reg, "SELECT count(*) FROM version_tags WHERE model_name = ? AND version = ?", &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_int64(st, 2, version);
    int64_t n = reg_row(reg, st, err) ? reg_col_int64(st, 0) : 0;
    reg_finalize(st);
    if (reg->read_rc != SG_OK) return reg->read_rc;
    if (n > SG_REGISTRY_TAGS_MAX)
        return sg_errf(err, SG_EINPUT,
                       "%s v%lld has %d tags, the most a version may have: delete one first", model,
                       (long long)version, SG_REGISTRY_TAGS_MAX);
    return SG_OK;
}

/* present: NULL, or (a delete only) where to say whether the tag was there; with it, a tag
   the version does not have is no error, and nothing is recorded. */
static sg_status set_tag(sg_registry *reg, const char *model, int64_t version, const char *key,
                         const char *value, const sg_registry_request *req, bool *present,
                         sg_err *err)
{
    sg_status trc = sg_registry_tag_check(key, value, err);
    if (trc != SG_OK) return trc;
    const char *action = value ? "set-tag" : "delete-tag";
    char actor[65], evidence[65] = "";
    if (value) sg_sha256_hex((const uint8_t *)value, strlen(value), evidence);
    reg_version v;
    int rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    if ((rc = reg_version_load(reg, model, version, &v, err)) == SG_OK)
        rc = reg_request_check(reg, req, false, action, model, version, key, evidence, actor, err);
    reg_stmt *st = NULL;
    if (rc == SG_OK)
        rc = reg_prepare(
            reg,
            value ? "INSERT INTO version_tags (model_name, version, tag_key, tag_value)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (model_name, version, tag_key)"
                    " DO UPDATE SET tag_value = excluded.tag_value"
                  : "DELETE FROM version_tags WHERE model_name = ? AND version = ? AND tag_key = ?",
            &st, err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, model);
        reg_bind_int64(st, 2, version);
        reg_bind_text(st, 3, key);
        if (value) reg_bind_text(st, 4, value);
        if (reg_step(st) != REG_DONE) rc = reg_db_error(reg, err, action);
        reg_finalize(st);
        /* A bound on what every answer about the version carries (its tags are in each). */
        if (rc == SG_OK && value) rc = tag_count_check(reg, model, version, err);
        if (rc == SG_OK && !value && reg->ops->changes(reg->store) == 0) {
            if (present) { /* nothing to delete: nothing changed, nothing to record */
                reg_rollback(reg);
                *present = false;
                return SG_OK;
            }
            rc =
                sg_errf(err, SG_EINPUT, "%s v%lld has no tag '%s'", model, (long long)version, key);
        }
    }
    if (present) *present = true;
    if (rc == SG_OK) {
        /* The whole value, never cut: verify-log rebuilds the tags from these events. */
        size_t dl = strlen(key) + (value ? strlen(value) + 1 : 0) + 1;
        char *detail = malloc(dl);
        if (!detail) return reg_finish(reg, sg_errf(err, SG_ENOMEM, "out of memory"), err);
        snprintf(detail, dl, "%s%s%s", key, value ? "=" : "", value ? value : "");
        reg_event ev = {.model = model,
                        .version = version,
                        .action = action,
                        .actor = actor,
                        .evidence = evidence,
                        .detail = detail,
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
        free(detail);
    }
    return reg_finish(reg, rc, err);
}

sg_status sg_registry_set_tag(sg_registry *reg, const char *model, int64_t version, const char *key,
                              const char *value, const sg_registry_request *req, sg_err *err)
{
    return set_tag(reg, model, version, key, value, req, NULL, err);
}

sg_status sg_registry_delete_tag_if_present(sg_registry *reg, const char *model, int64_t version,
                                            const char *key, const sg_registry_request *req,
                                            bool *present, sg_err *err)
{
    bool was = false;
    sg_status rc = set_tag(reg, model, version, key, NULL, req, &was, err);
    if (present) *present = rc == SG_OK && was;
    return rc;
}

sg_status sg_registry_set_description(sg_registry *reg, const char *model, int64_t version,
                                      const char *text, const sg_registry_request *req, sg_err *err)
{
    const char *what = version ? "version" : "model";
    if (!sg_utf8_valid(text))
        return sg_errf(err, SG_EINPUT, "%s %s: the description is not UTF-8 text", model, what);
    if (strlen(text) > SG_REGISTRY_DESCRIPTION_MAX)
        return sg_errf(err, SG_EINPUT, "%s %s: the description is %zu bytes, more than %d", model,
                       what, strlen(text), SG_REGISTRY_DESCRIPTION_MAX);
    char actor[65], evidence[65], now[32];
    sg_sha256_hex((const uint8_t *)text, strlen(text), evidence);
    int rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    reg_version v;
    reg_model m;
    /* The version (or the model) exists, with its configuration for the request check. */
    rc = version ? reg_version_load(reg, model, version, &v, err)
                 : reg_model_load_checked(reg, model, &m, err);
    if (rc == SG_OK)
        rc = reg_request_check(reg, req, false, "set-description", model, version, "", evidence,
                               actor, err);
    reg_stmt *st = NULL;
    if (rc == SG_OK)
        rc = reg_prepare(reg,
                         version ? "UPDATE model_versions SET description = ?, updated_at = ?"
                                   " WHERE model_name = ? AND version = ?"
                                 : "UPDATE registered_models SET description = ?, updated_at = ?"
                                   " WHERE name = ?",
                         &st, err);
    if (rc == SG_OK) {
        reg_now_utc(now);
        reg_bind_text(st, 1, text);
        reg_bind_text(st, 2, now);
        reg_bind_text(st, 3, model);
        if (version) reg_bind_int64(st, 4, version);
        if (reg_step(st) != REG_DONE) rc = reg_db_error(reg, err, "set-description");
        reg_finalize(st);
    }
    if (rc == SG_OK) {
        /* The whole text, never cut: verify-log rebuilds the descriptions from these events. */
        reg_event ev = {.model = model,
                        .version = version,
                        .action = "set-description",
                        .actor = actor,
                        .evidence = evidence,
                        .detail = text,
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
    }
    return reg_finish(reg, rc, err);
}

/* present: as set_tag's, for a delete (version 0). */
static sg_status set_alias(sg_registry *reg, const char *model, const char *alias, int64_t version,
                           const sg_registry_request *req, bool *present, sg_err *err)
{
    if (!reg_valid_name(alias))
        return sg_errf(err, SG_EINPUT, "alias '%s' must be letters, digits, '-', '_' or '.'",
                       alias);
    /* MLflow reserves these (any case of "latest", and v or V and digits: a version's own
       name), so an alias never reads as a version or as the newest version. Deleting one
       that an older registry holds stays possible. */
    bool vdigits = (alias[0] == 'v' || alias[0] == 'V') && alias[1] &&
                   strspn(alias + 1, "0123456789") == strlen(alias + 1);
    if (version && (!strcasecmp(alias, "latest") || vdigits))
        return sg_errf(err, SG_EINPUT,
                       "alias '%s' is reserved ('latest' in any case, and v or V followed by "
                       "digits name versions)",
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
    reg_stmt *st = NULL;
    if (rc == SG_OK)
        rc = reg_prepare(
            reg,
            version ? "INSERT INTO aliases (model_name, alias, version) VALUES (?, ?, ?)"
                      " ON CONFLICT (model_name, alias) DO UPDATE SET version = excluded.version"
                    : "DELETE FROM aliases WHERE model_name = ? AND alias = ?",
            &st, err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, model);
        reg_bind_text(st, 2, alias);
        if (version) reg_bind_int64(st, 3, version);
        if (reg_step(st) != REG_DONE) rc = reg_db_error(reg, err, action);
        reg_finalize(st);
        if (rc == SG_OK && !version && reg->ops->changes(reg->store) == 0) {
            if (present) {
                reg_rollback(reg);
                *present = false;
                return SG_OK;
            }
            rc = sg_errf(err, SG_EINPUT, "model %s has no alias '%s'", model, alias);
        }
    }
    if (present) *present = true;
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

sg_status sg_registry_set_alias(sg_registry *reg, const char *model, const char *alias,
                                int64_t version, const sg_registry_request *req, sg_err *err)
{
    return set_alias(reg, model, alias, version, req, NULL, err);
}

sg_status sg_registry_delete_alias_if_present(sg_registry *reg, const char *model,
                                              const char *alias, const sg_registry_request *req,
                                              bool *present, sg_err *err)
{
    bool was = false;
    sg_status rc = set_alias(reg, model, alias, 0, req, &was, err);
    if (present) *present = rc == SG_OK && was;
    return rc;
}
