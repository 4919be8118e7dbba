/*
 * Append-only, hash-chained audit log.
 *
 * Invariant: event seq n (n = 1, 2, ...) stores prev_hash = hash of event n - 1 (zeros for
 * n = 1) and hash = SHA-256 over a length-prefixed encoding of all its fields, and
 * audit_head holds the last (seq, hash), written once per transaction just before its
 * commit (reg_commit). Events are appended only inside the write transaction that makes the
 * change they describe, so the log and the state commit or vanish together. Editing any
 * field breaks that event's hash; deleting an event breaks the sequence or the chain;
 * deleting the newest events disagrees with audit_head.
 * verify also replays stage changes and checks each version's current stage against them.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"
#include "stagegate/keys.h"

#define AUDIT_COLS 13

static void hash_field(EVP_MD_CTX *ctx, const char *v)
{
    char len[32];
    int n = snprintf(len, sizeof len, "%zu:", strlen(v));
    EVP_DigestUpdate(ctx, len, (size_t)n);
    EVP_DigestUpdate(ctx, v, strlen(v));
    EVP_DigestUpdate(ctx, "\n", 1);
}

/* fields: seq, model, version, action, from, to, actor, evidence, detail, request, sig, time, prev
 */
static int event_hash(const char *const f[AUDIT_COLS], char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char d[32];
    unsigned int dl = 0;
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return -1;
    }
    EVP_DigestUpdate(ctx, "stagegate-audit/v1\n", 19);
    for (int i = 0; i < AUDIT_COLS; i++)
        hash_field(ctx, f[i] ? f[i] : "");
    int ok = EVP_DigestFinal_ex(ctx, d, &dl) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) return -1;
    sg_hex_encode(d, 32, hex);
    return 0;
}

static int read_head(sg_registry *reg, int64_t *seq, char hash[65], sg_err *err)
{
    reg_stmt *st;
    int rc = reg_prepare(reg, "SELECT seq, hash FROM audit_head WHERE id = 1", &st, err);
    if (rc != SG_OK) return rc;
    reg_step_result s = reg_step(st);
    if (s == REG_ROW) {
        *seq = reg_col_int64(st, 0);
        snprintf(hash, 65, "%s", reg_col_text(st, 1));
    } else if (s == REG_DONE) {
        rc = sg_errf(err, SG_EREFUSED, "registry %s: audit head row is missing", reg->path);
    } else { /* a failed read (a lost connection) is not a missing row */
        rc = reg_db_error(reg, err, "reading the audit head");
    }
    reg_finalize(st);
    return rc;
}

sg_status reg_audit_append(sg_registry *reg, const reg_event *ev, sg_err *err)
{
    SG_ASSERT(reg->in_tx);
    int64_t seq = 0;
    char prev[65], hash[65], now[32], seqs[32], vers[32];
    int rc = SG_OK;
    if (!reg->tx_head_hash[0] && !reg->tx_head_dirty && reg->ops->tx_head)
        (void)reg->ops->tx_head(reg->store, &reg->tx_head_seq, reg->tx_head_hash);
    if (reg->tx_head_hash[0]) { /* read by the write lock, or written by the last append */
        seq = reg->tx_head_seq;
        memcpy(prev, reg->tx_head_hash, sizeof prev);
    } else if ((rc = read_head(reg, &seq, prev, err)) != SG_OK) {
        return rc;
    }
    if (seq == 0 && strcmp(ev->action, "create-registry") != 0) {
        /* A registry's first event is its random id (create-registry), written with its
         * first change. A request names the audit head it was signed against; two registries
         * set up alike in the same second (one admin key, init) had had the same first
         * event, so a request signed for one could be copied into the other's log and
         * verified there. */
        uint8_t rnd[32];
        char id[65];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return sg_errf(err, SG_EINTERNAL, "no random bytes for the registry's id");
        sg_hex_encode(rnd, sizeof rnd, id);
        reg_event genesis = {.model = "", .action = "create-registry", .detail = id};
        if ((rc = reg_audit_append(reg, &genesis, err)) != SG_OK) return rc;
        seq = reg->tx_head_seq;
        memcpy(prev, reg->tx_head_hash, sizeof prev);
    }
    seq++;
    reg_now_utc(now);
    snprintf(seqs, sizeof seqs, "%lld", (long long)seq);
    snprintf(vers, sizeof vers, "%lld", (long long)ev->version);
    char *sig64 = NULL;
    if (ev->req && ev->req->sig) {
        sig64 = sg_base64_encode(ev->req->sig, ev->req->sig_len);
        if (!sig64) return sg_errf(err, SG_ENOMEM, "out of memory encoding a signature");
    }
    const char *f[AUDIT_COLS] = {
        seqs,         ev->model, vers,         ev->action, ev->from_stage,
        ev->to_stage, ev->actor, ev->evidence, ev->detail, ev->req ? ev->req->text : NULL,
        sig64,        now,       prev};
    if (event_hash(f, hash) != 0) {
        free(sig64);
        return sg_errf(err, SG_EINTERNAL, "SHA-256 failed while hashing an audit event");
    }
    reg_stmt *st;
    rc =
        reg_prepare(reg,
                    "INSERT INTO audit_log (seq, model_name, version, action, from_stage, to_stage,"
                    " actor_key_id, evidence_sha256, detail, request_text, signature, created_at,"
                    " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &st, err);
    if (rc == SG_OK) {
        reg_bind_int64(st, 1, seq);
        for (int i = 1; i < AUDIT_COLS; i++)
            if (i == 2)
                reg_bind_int64(st, 3, ev->version);
            else
                reg_bind_text(st, i + 1, f[i] ? f[i] : "");
        reg_bind_text(st, 14, hash);
        rc = reg_write(reg, st, "appending an audit event", NULL, err);
    }
    free(sig64);
    if (!strcmp(ev->action, "add-key")) reg->tx_root = REG_ROOT_UNKNOWN;
    if (rc != SG_OK) {
        reg->tx_head_hash[0] = '\0';
        return rc;
    }
    /* audit_head is written once, by reg_commit, from these. */
    reg->tx_head_seq = seq;
    memcpy(reg->tx_head_hash, hash, sizeof hash);
    reg->tx_head_dirty = true;
    return SG_OK;
}

static int check_chain(sg_registry *reg, int64_t *events, char last[65], sg_err *err)
{
    reg_stmt *st;
    int rc =
        reg_prepare(reg,
                    "SELECT seq, model_name, version, action, from_stage, to_stage, actor_key_id,"
                    " evidence_sha256, detail, request_text, signature, created_at, prev_hash,"
                    " hash FROM audit_log ORDER BY seq",
                    &st, err);
    if (rc != SG_OK) return rc;
    int64_t expect = 1;
    snprintf(last, 65, "%s", REG_ZERO_HASH);
    int s;
    while (rc == SG_OK && (s = reg_step(st)) == REG_ROW) {
        int64_t seq = reg_col_int64(st, 0);
        const char *f[AUDIT_COLS];
        for (int i = 0; i < AUDIT_COLS; i++)
            f[i] = reg_col_text(st, i);
        char hash[65];
        if (seq != expect) {
            rc = sg_errf(err, SG_EREFUSED, "audit log: event %lld is missing (found %lld next)",
                         (long long)expect, (long long)seq);
        } else if (strcmp(f[12], last) != 0) {
            rc = sg_errf(err, SG_EREFUSED,
                         "audit log: event %lld does not chain to the event before it",
                         (long long)seq);
        } else if (event_hash(f, hash) != 0) {
            rc = sg_errf(err, SG_EINTERNAL, "SHA-256 failed while verifying the audit log");
        } else if (strcmp(hash, reg_col_text(st, 13)) != 0) {
            rc = sg_errf(err, SG_EREFUSED,
                         "audit log: event %lld (%s %s v%s) was modified: its hash does not match",
                         (long long)seq, f[3], f[1], f[2]);
        } else {
            snprintf(last, 65, "%s", hash);
            expect++;
        }
    }
    if (rc == SG_OK && s != REG_DONE) rc = reg_db_error(reg, err, "reading the audit log");
    reg_finalize(st);
    *events = expect - 1;
    return rc;
}

/* Every version's stage and digest must be what its own events say. */
static int check_state(sg_registry *reg, sg_err *err)
{
    reg_stmt *st;
    int rc = reg_prepare(
        reg,
        "SELECT v.model_name, v.version, v.stage, v.artifact_sha256,"
        " (SELECT a.to_stage FROM audit_log a WHERE a.model_name = v.model_name AND"
        "  a.version = v.version AND a.to_stage <> '' ORDER BY a.seq DESC LIMIT 1),"
        " (SELECT a.evidence_sha256 FROM audit_log a WHERE a.model_name = v.model_name AND"
        "  a.version = v.version AND a.action = 'create-version' ORDER BY a.seq LIMIT 1)"
        " FROM model_versions v ORDER BY v.model_name, v.version",
        &st, err);
    if (rc != SG_OK) return rc;
    int s;
    while (rc == SG_OK && (s = reg_step(st)) == REG_ROW) {
        const char *m = reg_col_text(st, 0), *stage = reg_col_text(st, 2);
        long long v = reg_col_int64(st, 1);
        if (reg_col_is_null(st, 5))
            rc = sg_errf(err, SG_EREFUSED, "audit log: %s v%lld has no create-version event", m, v);
        else if (strcmp(reg_col_text(st, 5), reg_col_text(st, 3)) != 0)
            rc = sg_errf(err, SG_EREFUSED,
                         "audit log: %s v%lld artifact digest differs from the one registered", m,
                         v);
        else if (strcmp(reg_col_text(st, 4), stage) != 0)
            rc = sg_errf(
                err, SG_EREFUSED,
                "audit log: %s v%lld is in stage '%s' but its last recorded transition was to '%s'",
                m, v, stage, reg_col_text(st, 4));
    }
    if (rc == SG_OK && s != REG_DONE) rc = reg_db_error(reg, err, "reading model versions");
    reg_finalize(st);
    return rc;
}

sg_status reg_audit_verify(sg_registry *reg, int64_t *events, char head_hash[65],
                           reg_replay_summary *sum, sg_err *err)
{
    int64_t head_seq = 0;
    char last[65], head[65];
    *events = 0;
    int rc = check_chain(reg, events, last, err);
    if (rc == SG_OK) rc = read_head(reg, &head_seq, head, err);
    if (rc == SG_OK && head_seq != *events)
        rc = sg_errf(err, SG_EREFUSED,
                     "audit log: head records %lld events but the chain has %lld (events deleted?)",
                     (long long)head_seq, (long long)*events);
    else if (rc == SG_OK && strcmp(head, last) != 0)
        rc = sg_errf(err, SG_EREFUSED,
                     "audit log: head records hash %.16s... but the chain's last event hashes to "
                     "%.16s... (the head or the last event was edited)",
                     head, last);
    if (rc == SG_OK) rc = check_state(reg, err);
    if (rc == SG_OK) rc = reg_replay(reg, sum, err);
    snprintf(head_hash, 65, "%s", rc == SG_OK ? last : "");
    return rc;
}

sg_status sg_registry_verify_log(sg_registry *reg, json_t **summary, sg_err *err)
{
    if (summary) *summary = NULL;
    int64_t events = 0;
    char last[65] = "";
    /* One read transaction so a concurrent writer cannot show us half a change. */
    int rc = reg->ops->begin_read(reg->store, err);
    if (rc != SG_OK) return rc;
    /* A damaged page that no chain query happens to read would otherwise pass unnoticed. */
    rc = reg->ops->check_integrity(reg->store, err);
    reg_replay_summary sum;
    memset(&sum, 0, sizeof sum);
    if (rc == SG_OK) rc = reg_audit_verify(reg, &events, last, &sum, err);
    reg->ops->end_read(reg->store);
    if (summary) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(rc == SG_OK));
        json_object_set_new(o, "events", json_integer(events));
        json_object_set_new(o, "head_hash", json_string(rc == SG_OK ? last : ""));
        json_object_set_new(o, "root_of_trust", json_boolean(sum.root));
        json_object_set_new(o, "admin_keys", json_integer(sum.admins));
        json_object_set_new(o, "models", json_integer(sum.models));
        json_object_set_new(o, "models_without_recorded_configuration",
                            json_integer(sum.unrecorded_models));
        json_object_set_new(o, "events_replayed_for_state_only",
                            json_integer(sum.unchecked_events));
        if (rc != SG_OK) json_object_set_new(o, "problem", json_string(err->msg));
        *summary = o;
    }
    return rc;
}
