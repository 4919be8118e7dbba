/*
 * Report bodies, stored under their SHA-256. A transition into a report stage stores the
 * report it verified, so `verify-log` can verify it again later; `stagegate serve` stores
 * the reports clients upload before the transition that uses them, so they outlive a
 * restart of the server. The key is the digest of the bytes, so a row whose body was edited
 * no longer matches its key, and readers check that.
 */
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"
#include "stagegate/compare.h"
#include "stagegate/json.h"

/* Reports are JSON (DSSE envelopes): text without NUL bytes, which both backends store. */
static sg_status check_body(const uint8_t *body, size_t len, sg_err *err)
{
    if (len == 0) return sg_errf(err, SG_EINPUT, "report is empty");
    if (memchr(body, '\0', len)) return sg_errf(err, SG_EINPUT, "report contains a NUL byte");
    /* counted before parsing whatever the size: a 1 MiB upload of "[{},{},...]" had cost
       80 MB to parse */
    if (sg_json_count_values((const char *)body, len, SG_JSON_ENVELOPE_VALUES) >
        SG_JSON_ENVELOPE_VALUES)
        return sg_errf(err, SG_EINPUT,
                       "report holds more than %d JSON values: not a DSSE envelope",
                       SG_JSON_ENVELOPE_VALUES);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return sg_errf(err, SG_EINPUT, "report is not JSON (line %d: %s)", jerr.line, jerr.text);
    bool obj = json_is_object(j);
    json_decref(j);
    return obj ? SG_OK : sg_errf(err, SG_EINPUT, "report is not a JSON object");
}

void reg_report_subject(const char *body, size_t len, char out[65])
{
    sg_err ignored;
    if (sg_dsse_subject_unverified((const uint8_t *)body, len, out, &ignored) != SG_OK)
        out[0] = '\0';
}

sg_status reg_report_store(sg_registry *reg, const uint8_t *body, size_t len,
                           const char *received_by, const reg_signer_ids *signers,
                           const char *payload_sha256, char sha_out[65], sg_err *err)
{
    SG_ASSERT(reg->in_tx);
    sg_status rc = check_body(body, len, err);
    if (rc != SG_OK) return rc;
    char *text = malloc(len + 1), now[32];
    if (!text) return sg_errf(err, SG_ENOMEM, "out of memory storing a report");
    memcpy(text, body, len);
    text[len] = '\0';
    sg_sha256_hex(body, len, sha_out);
    reg_now_utc(now);
    char subject[65];
    reg_report_subject(text, len, subject);
    reg_stmt *st;
    rc = reg_prepare(reg,
                     "INSERT INTO reports (sha256, body, received_at, received_by,"
                     " subject_sha256, signers_known) VALUES (?, ?, ?, ?, ?, 1)"
                     " ON CONFLICT (sha256) DO NOTHING",
                     &st, err);
    if (rc == SG_OK) {
        reg_bind_text(st, 1, sha_out);
        reg_bind_text(st, 2, text);
        reg_bind_text(st, 3, now);
        reg_bind_text(st, 4, received_by ? received_by : "");
        reg_bind_text(st, 5, subject);
        rc = reg_write(reg, st, "storing a report", NULL, err);
    }
    free(text);
    /* Its signers, each once per signed payload: the same statement re-encoded (another
       spacing, URL-safe base64) is stored as bytes but not listed again, so re-uploads of
       one genuine report cannot multiply what a lookup verifies. */
    for (int i = 0; rc == SG_OK && i < signers->n; i++) {
        rc = reg_prepare(reg,
                         "INSERT INTO report_signers (report_sha256, key_id, subject_sha256,"
                         " payload_sha256) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                         &st, err);
        if (rc != SG_OK) break;
        reg_bind_text(st, 1, sha_out);
        reg_bind_text(st, 2, signers->id[i]);
        reg_bind_text(st, 3, subject);
        reg_bind_text(st, 4, payload_sha256);
        rc = reg_write(reg, st, "storing a report's signer", NULL, err);
    }
    /* A body stored before schema 9 (signers unknown, so verified at every lookup) gets
       them now. */
    if (rc == SG_OK && (rc = reg_prepare(reg,
                                         "UPDATE reports SET signers_known = 1 WHERE sha256 = ? AND"
                                         " signers_known = 0",
                                         &st, err)) == SG_OK) {
        reg_bind_text(st, 1, sha_out);
        rc = reg_write(reg, st, "storing a report", NULL, err);
    }
    return rc;
}

sg_status reg_report_load(sg_registry *reg, const char *sha256, uint8_t **body, size_t *len,
                          sg_err *err)
{
    *body = NULL;
    *len = 0;
    reg_stmt *st;
    sg_status rc = reg_prepare(reg, "SELECT body FROM reports WHERE sha256 = ?", &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, sha256);
    reg_step_result s = reg_step(st);
    if (s == REG_ROW) {
        const char *t = reg_col_text(st, 0);
        size_t n = strlen(t);
        char hex[65];
        sg_sha256_hex((const uint8_t *)t, n, hex);
        if (strcmp(hex, sha256) != 0) {
            rc = sg_errf(err, SG_EREFUSED,
                         "stored report sha256:%.16s... was modified: its body hashes to %.16s...",
                         sha256, hex);
        } else if (!(*body = malloc(n ? n : 1))) {
            rc = sg_errf(err, SG_ENOMEM, "out of memory reading a report");
        } else {
            memcpy(*body, t, n);
            *len = n;
        }
    } else if (s == REG_DONE) {
        rc = sg_errf(err, SG_EINPUT, "no stored report with sha256 %s", sha256);
    } else {
        rc = reg_db_error(reg, err, "reading a report");
    }
    reg_finalize(st);
    return rc;
}

/* A signature's "keyid" when it is a key id: an order for the key search, nothing more. */
static const char *keyid_of(const json_t *sig)
{
    const char *id = json_string_value(json_object_get(sig, "keyid"));
    return id && strlen(id) == 64 && strspn(id, "0123456789abcdef") == 64 ? id : NULL;
}

void reg_report_keyid_hint(const uint8_t *env, size_t len, char out[65])
{
    out[0] = '\0';
    json_t *j = json_loadb((const char *)env, len, JSON_REJECT_DUPLICATES, NULL);
    const char *id = keyid_of(json_array_get(json_object_get(j, "signatures"), 0));
    if (id) memcpy(out, id, 65);
    json_decref(j);
}

sg_status reg_report_signers(sg_registry *reg, const uint8_t *body, size_t len, const char *known,
                             bool strict, reg_signer_ids *ids, char payload_sha256[65], sg_err *err)
{
    ids->n = 0;
    payload_sha256[0] = '\0';
    json_t *env = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *sigs = json_object_get(env, "signatures");
    const size_t n = json_array_size(sigs);
    sg_report_info info;
    memset(&info, 0, sizeof info);
    sg_status rc = SG_OK;
    if (n <= 1) {
        /* One signature: the key the caller verified it with is the one, or the first
           trusted key that verifies it (the keys are tried until one does, as before). */
        if (known) {
            reg_signer_ids_add(ids, known);
            sg_dsse_payload_sha256(body, len, payload_sha256);
        } else if ((rc = reg_verify_with_signers(reg, NULL, keyid_of(json_array_get(sigs, 0)), body,
                                                 len, &info, err)) == SG_OK) {
            reg_signer_ids_add(ids, info.key_id);
            memcpy(payload_sha256, info.payload_sha256, 65);
        }
        sg_report_info_clear(&info);
        json_decref(env);
        return rc;
    }
    /* Several: each distinct signature on its own, the keys tried until one verifies it, so
       the cost is that of one signature's search per signature, never signatures times
       every key. */
    for (size_t i = 0; rc == SG_OK && i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = json_equal(json_array_get(sigs, i), json_array_get(sigs, j));
        if (seen) continue;
        /* a shallow copy: only its "signatures" member is replaced */
        json_t *one = json_copy(env), *list = json_array();
        bool ok = one && list && json_array_append(list, json_array_get(sigs, i)) == 0;
        if (ok)
            ok = json_object_set_new(one, "signatures", list) == 0; /* takes list either way */
        else
            json_decref(list);
        char *text = ok ? json_dumps(one, JSON_COMPACT) : NULL;
        json_decref(one);
        if (!text) {
            rc = sg_errf(err, SG_ENOMEM, "out of memory checking a report's signatures");
            break;
        }
        sg_err verr;
        int vrc = reg_verify_with_signers(reg, NULL, keyid_of(json_array_get(sigs, i)),
                                          (const uint8_t *)text, strlen(text), &info, &verr);
        free(text);
        if (vrc == SG_OK) {
            reg_signer_ids_add(ids, info.key_id);
            memcpy(payload_sha256, info.payload_sha256, 65);
        } else if (vrc != SG_EREFUSED) {
            rc = sg_errf(err, vrc, "%s", verr.msg);
        } else if (strict) {
            rc = sg_errf(err, SG_EREFUSED,
                         "signature %zu of %zu verifies with no trusted signer key of the "
                         "registry; not stored (upload a report once models trust every key "
                         "that signed it)",
                         i + 1, n);
        }
        sg_report_info_clear(&info);
    }
    json_decref(env);
    if (rc == SG_OK && known) reg_signer_ids_add(ids, known);
    if (rc == SG_OK && !payload_sha256[0]) sg_dsse_payload_sha256(body, len, payload_sha256);
    if (rc == SG_OK && ids->n == 0)
        rc = sg_errf(err, SG_EREFUSED,
                     "report does not verify against any trusted signer key of the registry");
    return rc;
}

sg_status sg_registry_put_report(sg_registry *reg, const uint8_t *body, size_t len,
                                 const char *received_by, char sha_out[65], sg_err *err)
{
    sg_status rc = check_body(body, len, err);
    if (rc != SG_OK) return rc;
    /* Verified before it is stored, and before the write lock is taken (a verification per
       signature, each trying the registry's trusted keys until one verifies it): a report
       no trusted signer key of the registry signed can never be used, and each stored one
       costs later lookups of its digest by its signers (150 junk uploads by a principal
       with no role had slowed one promotion from 14 ms to 5 s, for good). Every signature
       must verify: a report is found by the keys it is listed under (reg_report_store). */
    reg_signer_ids signers;
    char payload_sha256[65];
    reg_read_start(reg);
    rc = reg_report_signers(reg, body, len, NULL, true, &signers, payload_sha256, err);
    if (rc == SG_OK) rc = reg->read_rc;
    if (rc == SG_EREFUSED && !strstr(err->msg, "not stored")) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        sg_errf(err, rc,
                "%s; not stored (upload a report once a model trusts the key that "
                "signed it)",
                why);
    }
    if (rc != SG_OK) return rc;
    if ((rc = reg_begin(reg, err)) != SG_OK) return rc;
    rc = reg_report_store(reg, body, len, received_by, &signers, payload_sha256, sha_out, err);
    return reg_finish(reg, rc, err);
}

sg_status sg_registry_reindex_reports(sg_registry *reg, int64_t *listed, int64_t *unlisted,
                                      sg_err *err)
{
    *listed = *unlisted = 0;
    /* The rows to list, read once: each is then listed in its own transaction, after its
       verification (outside the write lock), so a registry in use waits for one row at a
       time, and a row listed meanwhile by an upload of the same bytes is listed again
       harmlessly (ON CONFLICT DO NOTHING). */
    json_t *todo = json_array();
    if (!todo) return sg_errf(err, SG_ENOMEM, "out of memory listing reports");
    reg_read_start(reg);
    reg_stmt *st;
    sg_status rc = reg_prepare(
        reg, "SELECT sha256 FROM reports WHERE signers_known = 0 ORDER BY sha256", &st, err);
    if (rc == SG_OK) {
        while (reg_row(reg, st, err))
            if (json_array_append_new(todo, json_string(reg_col_text(st, 0))) != 0) {
                rc = sg_errf(err, SG_ENOMEM, "out of memory listing reports");
                break;
            }
        reg_finalize(st);
        if (rc == SG_OK) rc = reg->read_rc;
    }
    size_t i;
    json_t *sha;
    json_array_foreach(todo, i, sha)
    {
        if (rc != SG_OK) break;
        uint8_t *body = NULL;
        size_t len = 0;
        reg_read_start(reg);
        if ((rc = reg_report_load(reg, json_string_value(sha), &body, &len, err)) != SG_OK) break;
        reg_signer_ids ids;
        char payload[65], stored[65];
        sg_err verr;
        /* Not strict: the signatures trusted keys verify, each under its key. A report no
           trusted key verifies any more (its key's trust was withdrawn) is listed under none,
           as its upload would now be refused (so is one that is no DSSE envelope: no key
           verifies it); no lookup finds it. Any other failure stops the run, naming the row:
           a failed read of the keys must not be taken for "no key verifies it". */
        sg_status vrc = reg_report_signers(reg, body, len, NULL, false, &ids, payload, &verr);
        if (vrc == SG_OK) vrc = reg->read_rc;
        if (vrc == SG_EREFUSED) {
            ids.n = 0;
            sg_dsse_payload_sha256(body, len, payload);
        } else if (vrc != SG_OK) {
            free(body);
            rc = sg_errf(err, vrc, "report sha256:%.16s...: %s", json_string_value(sha), verr.msg);
            break;
        }
        if ((rc = reg_begin(reg, err)) == SG_OK) {
            rc = reg_report_store(reg, body, len, NULL, &ids, payload, stored, err);
            rc = reg_finish(reg, rc, err);
        }
        free(body);
        if (rc == SG_OK) ++*(ids.n ? listed : unlisted);
    }
    json_decref(todo);
    return rc;
}

sg_status sg_registry_get_report(sg_registry *reg, const char *sha256, uint8_t **body, size_t *len,
                                 sg_err *err)
{
    if (strlen(sha256) != 64 || strspn(sha256, "0123456789abcdef") != 64)
        return sg_errf(err, SG_EINPUT, "report digest '%.80s' is not 64 lowercase hex digits",
                       sha256);
    reg_read_start(reg);
    return reg_report_load(reg, sha256, body, len, err);
}
