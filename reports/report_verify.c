/*
 * Verification of a signed test-result report, in the documented order: signature,
 * payloadType, Statement, predicateType, subject digest. The statement is parsed only
 * after sg_dsse_verify has checked the signature over its exact bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "stagegate/keys.h"
#include "stagegate/json.h"
#include "stagegate/report.h"
#include "stagegate/model.h"

#define SG_MAX_SUBJECTS 1024

const char *sg_report_check_name(int check)
{
    switch (check) {
    case SG_CHECK_SIGNATURE:
        return "signature";
    case SG_CHECK_PAYLOAD_TYPE:
        return "payloadType";
    case SG_CHECK_STATEMENT:
        return "statement";
    case SG_CHECK_PREDICATE_TYPE:
        return "predicateType";
    case SG_CHECK_SUBJECT_DIGEST:
        return "subject digest";
    default:
        return "unknown";
    }
}

void sg_report_info_clear(sg_report_info *info)
{
    if (!info) return;
    json_decref(info->statement);
    memset(info, 0, sizeof *info);
}

static bool is_lower_hex64(const char *s)
{
    if (strlen(s) != 64) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    return true;
}

/* Copies a JSON string member into a fixed field; too long or not a string is refused. */
static sg_status copy_field(char *dst, size_t cap, json_t *v, const char *what, sg_err *err)
{
    if (!json_is_string(v))
        return sg_errf(err, SG_EREFUSED, "statement: %s is missing or not a string", what);
    if (json_string_length(v) >= cap)
        return sg_errf(err, SG_EREFUSED, "statement: %s is longer than %zu bytes", what, cap - 1);
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return SG_OK;
}

/*
 * subject: a non-empty array of {name, digest: {sha256}}. A report is about one model
 * artifact, so several entries must all name the same sha256; otherwise a registry
 * comparing subject[0] and a human reading subject[1] could disagree about what passed.
 */
static sg_status check_subjects(json_t *stmt, sg_report_info *info, sg_err *err)
{
    json_t *subj = json_object_get(stmt, "subject");
    if (!json_is_array(subj) || json_array_size(subj) == 0 ||
        json_array_size(subj) > SG_MAX_SUBJECTS)
        return sg_errf(err, SG_EREFUSED,
                       "statement: \"subject\" must be an array of 1 to %d entries",
                       SG_MAX_SUBJECTS);
    for (size_t i = 0; i < json_array_size(subj); i++) {
        json_t *s = json_array_get(subj, i);
        json_t *digest = json_object_get(s, "digest");
        json_t *sha = json_object_get(digest, "sha256");
        char what[64];
        snprintf(what, sizeof what, "subject[%zu].digest.sha256", i);
        if (!json_is_object(s) || !json_is_string(json_object_get(s, "name")))
            return sg_errf(err, SG_EREFUSED, "statement: subject[%zu] has no \"name\" string", i);
        if (!json_is_string(sha) || !is_lower_hex64(json_string_value(sha)))
            return sg_errf(err, SG_EREFUSED, "statement: %s is not 64 lowercase hex digits", what);
        if (i == 0) {
            int rc = copy_field(info->subject_name, sizeof info->subject_name,
                                json_object_get(s, "name"), "subject[0].name", err);
            if (rc) return rc;
            memcpy(info->subject_sha256, json_string_value(sha), 65);
        } else if (strcmp(info->subject_sha256, json_string_value(sha)) != 0) {
            return sg_errf(err, SG_EREFUSED,
                           "statement: %s differs from subject[0]; a report must name one model",
                           what);
        }
    }
    return SG_OK;
}

static sg_status check_statement(const uint8_t *payload, size_t len, sg_report_info *info, sg_err *err)
{
    if (sg_json_count_values((const char *)payload, len, SG_JSON_STATEMENT_VALUES) >
        SG_JSON_STATEMENT_VALUES)
        return sg_errf(err, SG_EREFUSED, "statement: more than %zu JSON values",
                       SG_JSON_STATEMENT_VALUES);
    json_error_t jerr;
    json_t *stmt = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!stmt)
        return sg_errf(err, SG_EREFUSED, "statement: not valid JSON (line %d, column %d): %s",
                       jerr.line, jerr.column, jerr.text);
    info->statement = stmt;
    if (!json_is_object(stmt))
        return sg_errf(err, SG_EREFUSED, "statement: top level is not a JSON object");
    json_t *type = json_object_get(stmt, "_type");
    if (!json_is_string(type) || strcmp(json_string_value(type), SG_INTOTO_STATEMENT_TYPE) != 0)
        return sg_errf(err, SG_EREFUSED, "statement: \"_type\" is %s%s%s, expected \"%s\"",
                       json_is_string(type) ? "\"" : "",
                       json_is_string(type) ? json_string_value(type) : "missing",
                       json_is_string(type) ? "\"" : "", SG_INTOTO_STATEMENT_TYPE);
    return check_subjects(stmt, info, err);
}

static sg_status check_predicate(sg_report_info *info, sg_err *err)
{
    json_t *pt = json_object_get(info->statement, "predicateType");
    int rc =
        copy_field(info->predicate_type, sizeof info->predicate_type, pt, "\"predicateType\"", err);
    if (rc) return rc;
    if (strcmp(info->predicate_type, SG_TEST_RESULT_PREDICATE) != 0)
        return sg_errf(err, SG_EREFUSED, "statement: predicateType \"%s\" is not \"%s\"",
                       info->predicate_type, SG_TEST_RESULT_PREDICATE);
    json_t *pred = json_object_get(info->statement, "predicate");
    if (!json_is_object(pred))
        return sg_errf(err, SG_EREFUSED, "statement: \"predicate\" is missing or not an object");
    rc = copy_field(info->result, sizeof info->result, json_object_get(pred, "result"),
                    "predicate.result", err);
    if (rc) return rc;
    /* The test-result predicate allows exactly these three values. */
    if (strcmp(info->result, "PASSED") && strcmp(info->result, "WARNED") &&
        strcmp(info->result, "FAILED"))
        return sg_errf(err, SG_EREFUSED,
                       "statement: predicate.result \"%s\" is not PASSED, WARNED or FAILED",
                       info->result);
    json_t *ts = json_object_get(pred, "timestamp");
    if (!ts) return SG_OK;
    rc = copy_field(info->timestamp, sizeof info->timestamp, ts, "predicate.timestamp", err);
    int64_t when;
    if (rc == SG_OK && sg_parse_rfc3339(info->timestamp, &when) != SG_OK)
        return sg_errf(err, SG_EREFUSED,
                       "statement: predicate.timestamp \"%.64s\" is not an RFC 3339 time",
                       info->timestamp);
    return rc;
}

/* sg_report_verify with the model given as a file to hash (model_path) or as its digest
   (model_sha, named by model_path in messages); neither: no subject check. */
static sg_status verify(const uint8_t *envelope, size_t len, EVP_PKEY *pub, const char *model_path,
                        const char *model_sha, sg_report_info *info, sg_err *err)
{
    memset(info, 0, sizeof *info);
    char *ptype = NULL;
    uint8_t *payload = NULL;
    size_t plen = 0;
    int rc = sg_dsse_verify(envelope, len, pub, &ptype, &payload, &plen, err);
    if (rc) return rc;
    info->checks_passed = 1;
    if (sg_key_id(pub, info->key_id, err)) rc = SG_EINTERNAL;
    sg_sha256_hex(payload, plen, info->payload_sha256);

    if (rc) {
    } else if (strcmp(ptype, SG_DSSE_PAYLOAD_TYPE) != 0) {
        rc = sg_errf(err, SG_EREFUSED, "envelope: payloadType \"%s\" is not \"%s\"", ptype,
                     SG_DSSE_PAYLOAD_TYPE);
    } else if (info->checks_passed++, (rc = check_statement(payload, plen, info, err))) {
    } else if (info->checks_passed++, (rc = check_predicate(info, err))) {
    } else {
        info->checks_passed++;
        if (model_path) {
            char hex[65];
            info->digest_checked = true;
            if (model_sha)
                snprintf(hex, sizeof hex, "%s", model_sha);
            else
                rc = sg_model_digest_file_hex(model_path, hex, err);
            if (!rc && strcmp(hex, info->subject_sha256) != 0)
                rc = sg_errf(err, SG_EREFUSED,
                             "%s: sha256 %s does not match the report's subject digest %s",
                             model_path, hex, info->subject_sha256);
            if (!rc) info->checks_passed++;
        }
    }
    free(ptype);
    free(payload);
    /* Nothing of an unverified report may be mistaken for a verified fact. */
    if (rc) info->result[0] = '\0';
    return rc;
}

sg_status sg_report_verify(const uint8_t *envelope, size_t len, EVP_PKEY *pub,
                           const char *model_path, sg_report_info *info, sg_err *err)
{
    return verify(envelope, len, pub, model_path, NULL, info, err);
}

sg_status sg_report_verify_digest(const uint8_t *envelope, size_t len, EVP_PKEY *pub,
                                  const char *model_name, const char model_sha256[65],
                                  sg_report_info *info, sg_err *err)
{
    return verify(envelope, len, pub, model_name, model_sha256, info, err);
}
