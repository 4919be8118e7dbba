/* models:/ URIs (MLflow's forms) resolved to artifact paths, re-checking the artifact's digest. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry_internal.h"
#include "stagegate/model.h"

#define URI_PREFIX "models:/"

bool sg_is_model_uri(const char *s)
{
    return s && !strncmp(s, URI_PREFIX, strlen(URI_PREFIX));
}

/* Digits (no sign, no leading zero) naming a number past the largest int64. */
static bool past_int64(const char *s)
{
    const size_t n = strlen(s);
    return n > 19 || (n == 19 && strcmp(s, "9223372036854775807") > 0);
}

static bool all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

bool sg_version_parse(const char *s, int64_t *v)
{
    if (!s || *s < '1' || *s > '9' || !all_digits(s)) return false;
    int64_t n = 0;
    for (; *s; s++) {
        int d = *s - '0';
        if (n > (INT64_MAX - d) / 10) return false;
        n = n * 10 + d;
    }
    *v = n;
    return true;
}

static int pick_version(sg_registry *reg, const char *sql, const char *model, const char *arg,
                        int64_t *version, sg_err *err)
{
    reg_stmt *st;
    int rc = reg_prepare(reg, sql, &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    if (arg) reg_bind_text(st, 2, arg);
    int s = reg_step(st);
    *version = (s == REG_ROW && !reg_col_is_null(st, 0)) ? reg_col_int64(st, 0) : 0;
    if (s != REG_ROW && s != REG_DONE) rc = reg_db_error(reg, err, "resolving a URI");
    reg_finalize(st);
    return rc;
}

/* Splits the URI and finds the version it names. */
static sg_status uri_version(sg_registry *reg, const char *uri, char *model, size_t mlen,
                       int64_t *version, sg_err *err)
{
    const char *rest = uri + strlen(URI_PREFIX);
    const char *at = strchr(rest, '@'), *slash = strchr(rest, '/');
    const char *sep = at ? at : slash;
    if (!sep || sep == rest || (at && slash) || !sep[1] || (size_t)(sep - rest) >= mlen)
        return sg_errf(
            err, SG_EINPUT,
            "%s: expected models:/NAME/VERSION, models:/NAME/STAGE or models:/NAME@ALIAS", uri);
    memcpy(model, rest, (size_t)(sep - rest));
    model[sep - rest] = '\0';
    const char *ref = sep + 1;
    reg_model m;
    int rc = reg_model_load(reg, model, &m, err);
    if (rc != SG_OK) return rc;
    const reg_stage *g = NULL;
    if (at)
        rc = pick_version(reg, "SELECT version FROM aliases WHERE model_name = ? AND alias = ?",
                          model, ref, version, err);
    else if (all_digits(ref) && !sg_version_parse(ref, version))
        return sg_errf(err, SG_EINPUT,
                       "%s: '%s' is not a version (a version is written 1, 2, 3, ... without "
                       "leading zeros)",
                       uri, ref);
    else if (all_digits(ref))
        /* BIGINT: PostgreSQL's INTEGER is 32 bits, and a version past 2^31 had been an SQL
           type error there where SQLite said no version matches. Past int64 no version can
           match. */
        rc = pick_version(reg,
                          "SELECT version FROM model_versions WHERE model_name = ? AND version = "
                          "CAST(? AS BIGINT)",
                          model, past_int64(ref) ? "0" : ref, version, err);
    else if (!strcasecmp(ref, "latest")) /* any case, as MLflow's models:/ URIs */
        rc = pick_version(reg, "SELECT max(version) FROM model_versions WHERE model_name = ?",
                          model, NULL, version, err);
    else if ((g = reg_model_stage(&m, ref)) != NULL)
        /* Several versions in one stage: the newest, as MLflow's latest-in-stage. */
        rc = pick_version(
            reg, "SELECT max(version) FROM model_versions WHERE model_name = ? AND stage = ?",
            model, g->name, version, err);
    else
        return sg_errf(err, SG_EINPUT, "%s: model %s has no stage, version or alias '%s'", uri,
                       model, ref);
    if (rc == SG_OK && *version == 0)
        rc = sg_errf(err, SG_EINPUT, "%s: no version of %s %s '%s'", uri, model,
                     at  ? "has alias"
                     : g ? "is in stage"
                         : "matches",
                     ref);
    return rc;
}

static sg_status resolve(sg_registry *reg, const char *uri, char *path_out, size_t len,
                         json_t **info, bool hash_file, sg_err *err)
{
    if (info) *info = NULL;
    if (!sg_is_model_uri(uri)) return sg_errf(err, SG_EINPUT, "'%s' is not a models:/ URI", uri);
    char model[REG_NAME_MAX], sha[65];
    int64_t version = 0;
    reg_version v;
    int rc = uri_version(reg, uri, model, sizeof model, &version, err);
    if (rc == SG_OK) rc = reg_version_load(reg, model, version, &v, err);
    if (rc != SG_OK) return rc;
    sg_err ferr;
    if (hash_file && sg_model_digest_file_hex(v.artifact_path, sha, &ferr) != SG_OK)
        return sg_errf(err, SG_EINPUT, "%s (%s v%lld): artifact cannot be read: %s", uri, model,
                       (long long)version, ferr.msg);
    if (hash_file && strcmp(sha, v.artifact_sha256) != 0)
        return sg_errf(err, SG_EINPUT,
                       "%s (%s v%lld): artifact %s changed on disk since registration (sha256 "
                       "%.16s..., registered %.16s...)",
                       uri, model, (long long)version, v.artifact_path, sha, v.artifact_sha256);
    if (strlen(v.artifact_path) >= len)
        return sg_errf(err, SG_EINPUT, "%s: artifact path is too long", uri);
    memcpy(path_out, v.artifact_path, strlen(v.artifact_path) + 1);
    if (info)
        *info = json_pack("{sssssIssssss}", "uri", uri, "name", model, "version",
                          (json_int_t)version, "stage", v.stage, "artifact_path", v.artifact_path,
                          "artifact_sha256", v.artifact_sha256);
    return SG_OK;
}

sg_status sg_registry_resolve(sg_registry *reg, const char *uri, char *path_out, size_t len,
                              json_t **info, sg_err *err)
{
    return resolve(reg, uri, path_out, len, info, true, err);
}

/* The one-shot forms: opens the registry, resolves (hashing the file when hash_file), and
   gives the registered digest. */
static sg_status resolve_once(const char *uri, const char *db_path_or_null, char *path_out,
                              size_t len, char sha256_out[65], bool hash_file, sg_err *err)
{
    sg_registry *reg = NULL;
    int rc = sg_registry_open(sg_registry_path(db_path_or_null), false, &reg, err);
    if (rc != SG_OK) return rc;
    json_t *info = NULL;
    rc = resolve(reg, uri, path_out, len, &info, hash_file, err);
    sg_registry_close(reg);
    const char *sha =
        rc == SG_OK ? json_string_value(json_object_get(info, "artifact_sha256")) : NULL;
    if (rc == SG_OK && (!sha || strlen(sha) != 64))
        rc = sg_errf(err, SG_EINTERNAL, "%s: the registry returned no artifact digest", uri);
    if (rc == SG_OK) memcpy(sha256_out, sha, 65);
    json_decref(info);
    return rc;
}

sg_status sg_registry_resolve_uri_digest(const char *uri, const char *db_path_or_null,
                                         char *path_out, size_t len, char sha256_out[65],
                                         sg_err *err)
{
    /* The caller reads the artifact once and checks these digests before parsing it
     * (sg_model_open_verified); hashing the file here as well would read it twice. */
    return resolve_once(uri, db_path_or_null, path_out, len, sha256_out, false, err);
}

sg_status sg_registry_resolve_uri(const char *uri, const char *db_path_or_null, char *path_out,
                                  size_t len, char sha256_out[65], sg_err *err)
{
    return resolve_once(uri, db_path_or_null, path_out, len, sha256_out, true, err);
}
