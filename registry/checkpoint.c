/*
 * Signed checkpoints of the audit head: a DSSE envelope over {registry, seq, hash, time},
 * signed by an admin key, kept outside the database. The hash chain shows any edit inside
 * the log, but not a log cut back to an earlier event with its head rewound, nor a chain
 * rewritten from the start; a checkpoint does: the log must still hold event `seq` with
 * exactly that hash.
 */
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"
#include "stagegate/keys.h"
#include "stagegate/report.h"

sg_status sg_registry_checkpoint(sg_registry *reg, const char *key_path, char **envelope,
                                 sg_err *err)
{
    *envelope = NULL;
    EVP_PKEY *key = NULL;
    sg_status rc = sg_key_load_private(key_path, &key, err);
    if (rc != SG_OK) return rc;
    char id[65], head[65] = "";
    int64_t events = 0;
    if ((rc = sg_key_id(key, id, err)) != SG_OK) goto out;
    /* The head is certified only after the log up to it verifies. */
    json_t *summary = NULL;
    rc = sg_registry_verify_log(reg, &summary, err);
    if (rc == SG_OK) {
        events = json_integer_value(json_object_get(summary, "events"));
        snprintf(head, sizeof head, "%s", json_string_value(json_object_get(summary, "head_hash")));
    }
    json_decref(summary);
    if (rc != SG_OK) goto out;
    reg_read_start(reg);
    json_t *admins = reg_replay_admin_pems(reg, err);
    if (!admins) {
        rc = reg->read_rc != SG_OK ? reg->read_rc : SG_EINTERNAL;
        goto out;
    }
    bool admin = false;
    size_t i;
    json_t *p;
    json_array_foreach(admins, i, p)
    {
        EVP_PKEY *pub = NULL;
        char pid[65];
        sg_err kerr;
        const char *pem = json_string_value(p);
        if (sg_key_load_public_pem(pem, strlen(pem), "admin", &pub, &kerr) == SG_OK &&
            sg_key_id(pub, pid, &kerr) == SG_OK && !strcmp(pid, id))
            admin = true;
        EVP_PKEY_free(pub);
    }
    json_decref(admins);
    if (!admin) {
        rc = sg_errf(err, SG_EREFUSED,
                     "refused: key %.16s is not an admin of registry %s (a checkpoint is signed "
                     "by an admin)",
                     id, reg->path);
        goto out;
    }
    char now[32];
    reg_now_utc(now);
    json_t *doc = json_pack("{sssssIssss}", "type", SG_REGISTRY_CHECKPOINT_TYPE, "registry",
                            reg->path, "seq", (json_int_t)events, "hash", head, "time", now);
    char *payload = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    if (!payload) {
        rc = sg_errf(err, SG_ENOMEM, "out of memory making a checkpoint");
        goto out;
    }
    rc = sg_dsse_sign(key, SG_REGISTRY_CHECKPOINT_TYPE, (const uint8_t *)payload, strlen(payload),
                      envelope, err);
    free(payload);
out:
    EVP_PKEY_free(key);
    return rc;
}

/* Verifies the envelope with one of the PEMs; returns the payload (malloc'd). */
static sg_status open_envelope(const uint8_t *env, size_t len, json_t *pems, char signer[65],
                               json_t **payload_out, sg_err *err)
{
    size_t i;
    json_t *p;
    sg_err last = {{0}};
    /* The envelope's own form first: a file that is not one is an input error (exit 2), not
       a signature that failed to verify. */
    json_t *e = json_loadb((const char *)env, len, JSON_REJECT_DUPLICATES, NULL);
    const bool form = json_is_object(e) && json_is_string(json_object_get(e, "payload")) &&
                      json_is_string(json_object_get(e, "payloadType")) &&
                      json_is_array(json_object_get(e, "signatures"));
    json_decref(e);
    if (!form)
        return sg_errf(err, SG_EINPUT,
                       "checkpoint is not a DSSE envelope (a JSON object with payloadType, "
                       "payload and signatures)");
    snprintf(last.msg, sizeof last.msg, "no key to verify it with");
    json_array_foreach(pems, i, p)
    {
        const char *pem = json_string_value(p);
        EVP_PKEY *pub = NULL;
        char *type = NULL;
        uint8_t *payload = NULL;
        size_t plen = 0;
        if (sg_key_load_public_pem(pem, strlen(pem), "checkpoint key", &pub, &last) != SG_OK)
            continue;
        sg_status rc = sg_dsse_verify(env, len, pub, &type, &payload, &plen, &last);
        if (rc == SG_OK && sg_key_id(pub, signer, &last) == SG_OK) {
            EVP_PKEY_free(pub);
            bool ok_type = type && !strcmp(type, SG_REGISTRY_CHECKPOINT_TYPE);
            free(type);
            json_t *doc =
                ok_type ? json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, NULL)
                        : NULL;
            free(payload);
            if (!doc)
                return sg_errf(err, SG_EINPUT, "checkpoint payload is not a stagegate checkpoint");
            *payload_out = doc;
            return SG_OK;
        }
        if (rc == SG_EINPUT) { /* a malformed envelope does not get better with another key */
            EVP_PKEY_free(pub);
            return sg_errf(err, SG_EINPUT, "%s", last.msg);
        }
        free(type);
        free(payload);
        EVP_PKEY_free(pub);
    }
    return sg_errf(err, SG_EREFUSED, "checkpoint signature does not verify (%s)", last.msg);
}

sg_status sg_registry_check_checkpoint(sg_registry *reg, const uint8_t *envelope, size_t len,
                                       const char *pubkey_pem, json_t **result, sg_err *err)
{
    *result = NULL;
    /* Verify before parse: the signature first, with the key given, else the admin keys the
     * log introduced (a log rewritten from the start brings its own admins: pass the key). */
    json_t *pems = NULL;
    sg_status rc = SG_OK;
    if (pubkey_pem) {
        pems = json_pack("[s]", pubkey_pem);
    } else {
        rc = reg->ops->begin_read(reg->store, err);
        if (rc != SG_OK) return rc;
        reg_read_start(reg);
        pems = reg_replay_admin_pems(reg, err);
        reg->ops->end_read(reg->store);
        if (!pems) return reg->read_rc != SG_OK ? reg->read_rc : SG_EINTERNAL;
    }
    json_t *doc = NULL;
    char signer[65] = "";
    rc = open_envelope(envelope, len, pems, signer, &doc, err);
    json_decref(pems);
    if (rc != SG_OK) return rc;
    json_t *jseq = json_object_get(doc, "seq");
    const char *hash = json_string_value(json_object_get(doc, "hash"));
    const char *type = json_string_value(json_object_get(doc, "type"));
    if (!json_is_integer(jseq) || json_integer_value(jseq) < 0 || !hash || strlen(hash) != 64 ||
        !type || strcmp(type, SG_REGISTRY_CHECKPOINT_TYPE) != 0 ||
        !json_is_string(json_object_get(doc, "time"))) {
        json_decref(doc);
        return sg_errf(err, SG_EINPUT,
                       "checkpoint payload is not a stagegate checkpoint (type %s, a seq, a "
                       "hash and a time)",
                       SG_REGISTRY_CHECKPOINT_TYPE);
    }
    int64_t seq = json_integer_value(jseq);
    int64_t now_events = 0;
    char at[65] = "";
    bool have = false;
    rc = reg->ops->begin_read(reg->store, err);
    if (rc == SG_OK) {
        reg_read_start(reg);
        reg_stmt *st;
        rc = reg_prepare(reg, "SELECT seq FROM audit_head WHERE id = 1", &st, err);
        if (rc == SG_OK) {
            if (reg_row(reg, st, err)) now_events = reg_col_int64(st, 0);
            reg_finalize(st);
            rc = reg->read_rc;
        }
        if (rc == SG_OK && seq > 0) {
            rc = reg_prepare(reg, "SELECT hash FROM audit_log WHERE seq = ?", &st, err);
            if (rc == SG_OK) {
                reg_bind_int64(st, 1, seq);
                if ((have = reg_row(reg, st, err)))
                    snprintf(at, sizeof at, "%s", reg_col_text(st, 0));
                reg_finalize(st);
                rc = reg->read_rc;
            }
        }
        reg->ops->end_read(reg->store);
    }
    if (rc == SG_OK && seq > 0 && (!have || now_events < seq))
        rc = sg_errf(err, SG_EREFUSED,
                     "audit log: rewound past a checkpoint: the checkpoint of %s certifies event "
                     "%lld, and the log now ends at event %lld",
                     json_string_value(json_object_get(doc, "time")), (long long)seq,
                     (long long)now_events);
    else if (rc == SG_OK && seq > 0 && strcmp(at, hash) != 0)
        rc = sg_errf(err, SG_EREFUSED,
                     "audit log: rewritten: event %lld's hash is not the one the checkpoint of %s "
                     "certifies",
                     (long long)seq, json_string_value(json_object_get(doc, "time")));
    if (rc == SG_OK) {
        json_object_set_new(doc, "signer_key_id", json_string(signer));
        *result = doc;
    } else {
        json_decref(doc);
    }
    return rc;
}

sg_status sg_registry_audit_head(sg_registry *reg, int64_t *seq, char hash[65], sg_err *err)
{
    *seq = 0;
    hash[0] = '\0';
    reg_read_start(reg);
    reg_stmt *st;
    sg_status rc = reg_prepare(reg, "SELECT seq, hash FROM audit_head WHERE id = 1", &st, err);
    if (rc != SG_OK) return rc;
    if (reg_row(reg, st, err)) {
        *seq = reg_col_int64(st, 0);
        snprintf(hash, 65, "%s", reg_col_text(st, 1));
    } else if (reg->read_rc == SG_OK) {
        rc = sg_errf(err, SG_EINPUT, "registry %s: audit head row is missing", reg->path);
    }
    reg_finalize(st);
    return rc != SG_OK ? rc : reg->read_rc;
}

sg_status sg_registry_head_uri(const char *db, int64_t *seq, char hash[65], sg_err *err)
{
    sg_registry *reg = NULL;
    sg_status rc = sg_registry_open(sg_registry_path(db), false, &reg, err);
    if (rc == SG_OK) rc = sg_registry_audit_head(reg, seq, hash, err);
    sg_registry_close(reg);
    return rc;
}

sg_status reg_report_head_check(sg_registry *reg, json_t *statement, sg_err *err)
{
    /* Absent: the gate read no registry. Present, it is an object: a signed "registry" of
       another type (a string, null) had been read as absent, skipping this check. */
    json_t *r = json_object_get(json_object_get(statement, "predicate"), "registry");
    if (!r) return SG_OK;
    if (!json_is_object(r))
        return sg_errf(err, SG_EREFUSED, "report's predicate.registry is not an object");
    json_t *h = json_object_get(r, "audit_head");
    if (!h) return SG_OK;
    json_t *jseq = json_object_get(h, "seq");
    const char *hash = json_string_value(json_object_get(h, "hash"));
    if (!json_is_integer(jseq) || json_integer_value(jseq) < 0 || !hash)
        return sg_errf(err, SG_EREFUSED, "report's registry audit head is malformed");
    int64_t seq = json_integer_value(jseq);
    /* An empty log's head is (0, REG_ZERO_HASH), as the gate writes it: a signed field
       holding anything else there had been taken unchecked. */
    if (seq == 0 && strcmp(hash, REG_ZERO_HASH) != 0)
        return sg_errf(err, SG_EREFUSED, "report's registry audit head is malformed");
    if (seq == 0) return SG_OK;
    reg_stmt *st;
    sg_status rc = reg_prepare(reg, "SELECT hash FROM audit_log WHERE seq = ?", &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_int64(st, 1, seq);
    bool have = reg_row(reg, st, err);
    bool same = have && !strcmp(reg_col_text(st, 0), hash);
    reg_finalize(st);
    if (reg->read_rc != SG_OK) return reg->read_rc;
    if (!same)
        return sg_errf(err, SG_EREFUSED,
                       "the report was gated against a registry whose audit log held event %lld "
                       "with hash %.16s...; this log %s (cut back, rewritten, or another "
                       "registry)",
                       (long long)seq, hash, have ? "has another event there" : "ends before it");
    return SG_OK;
}
