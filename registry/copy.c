/*
 * Copying a registry between storage backends (`stagegate registry migrate`). Every table is
 * copied row by row with its own keys and row ids, so the audit chain's hashes (which cover
 * seq and every field) stay valid on the destination. The copy is one write transaction on
 * the destination that commits only after the destination's chain verifies and each table's
 * row count and digest equal the source's, read from one snapshot of the source.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "registry_internal.h"

typedef struct {
    const char *name;
    const char *cols;  /* in schema order */
    const char *order; /* a key: both backends list the rows in the same order */
} reg_table;

/* Parents before children (foreign keys); audit_head is updated, not inserted. */
static const reg_table tables[] = {
    {"registry_keys", "key_id, role, public_pem, added_at, added_by", "key_id"},
    {"registered_models",
     "name, description, require_approval, max_report_age_days, report_stage, created_by,"
     " created_at, updated_at, policy_sha256, dataset_sha256",
     "name"},
    {"model_stages",
     "model_name, stage, position, requires_report, requires_promoter, requires_validation,"
     " requires_approval, multi_version",
     "model_name, stage"},
    {"model_transitions", "model_name, from_stage, to_stage", "model_name, from_stage, to_stage"},
    {"model_keys", "model_name, role, stage, key_id, public_pem",
     "model_name, role, stage, key_id"},
    {"model_tags", "model_name, tag_key, tag_value", "model_name, tag_key"},
    {"model_versions",
     "model_name, version, artifact_path, artifact_sha256, created_by, created_at, updated_at,"
     " stage, stage_exclusive, description",
     "model_name, version"},
    {"version_tags", "model_name, version, tag_key, tag_value", "model_name, version, tag_key"},
    {"aliases", "model_name, alias, version", "model_name, alias"},
    {"validations",
     "id, model_name, version, stage, result, subject_sha256, signer_key_id, report_sha256,"
     " report_timestamp, recorded_at",
     "id"},
    {"approvals", "id, model_name, version, approver_key_id, decision, comment, created_at", "id"},
    {"request_nonces", "nonce, key_id, created_at", "nonce"},
    {"audit_log",
     "seq, model_name, version, action, from_stage, to_stage, actor_key_id, evidence_sha256,"
     " detail, request_text, signature, created_at, prev_hash, hash",
     "seq"},
    {"runs",
     "id, model_name, version, stage, fingerprint, machine, run_at, recorded_at, report_sha256,"
     " report_path, result, signer_key_id, scenario, figures, verdict, payload_sha256",
     "id"},
    {"reports", "sha256, body, received_at, received_by, subject_sha256, signers_known", "sha256"},
    {"report_signers", "report_sha256, key_id, subject_sha256, payload_sha256",
     "report_sha256, key_id"},
    {"audit_head", "id, seq, hash", "id"},
};
#define N_TABLES (sizeof tables / sizeof tables[0])

static int n_cols(const reg_table *t)
{
    int n = 1;
    for (const char *p = t->cols; *p; p++)
        n += *p == ',';
    return n;
}

static sg_status select_all(sg_registry *reg, const reg_table *t, reg_stmt **st, sg_err *err)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM %s ORDER BY %s", t->cols, t->name, t->order);
    return reg_prepare(reg, sql, st, err);
}

/* Row count and SHA-256 of every value (length-prefixed, NULL marked) in key order. */
static sg_status table_digest(sg_registry *reg, const reg_table *t, int64_t *rows, char hex[65],
                        sg_err *err)
{
    reg_stmt *st;
    int rc = select_all(reg, t, &st, err);
    if (rc != SG_OK) return rc;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        reg_finalize(st);
        return sg_errf(err, SG_EINTERNAL, "SHA-256 unavailable");
    }
    int nc = n_cols(t);
    *rows = 0;
    reg_read_start(reg);
    while (reg_row(reg, st, err)) {
        (*rows)++;
        for (int i = 0; i < nc; i++) {
            char pre[32];
            if (reg_col_is_null(st, i)) {
                EVP_DigestUpdate(ctx, "N\n", 2);
                continue;
            }
            const char *v = reg_col_text(st, i);
            int n = snprintf(pre, sizeof pre, "%zu:", strlen(v));
            EVP_DigestUpdate(ctx, pre, (size_t)n);
            EVP_DigestUpdate(ctx, v, strlen(v));
            EVP_DigestUpdate(ctx, "\n", 1);
        }
    }
    reg_finalize(st);
    rc = reg->read_rc;
    unsigned char d[32];
    unsigned int dl = 0;
    if (EVP_DigestFinal_ex(ctx, d, &dl) != 1 && rc == SG_OK)
        rc = sg_errf(err, SG_EINTERNAL, "SHA-256 failed");
    EVP_MD_CTX_free(ctx);
    if (rc == SG_OK) sg_hex_encode(d, 32, hex);
    return rc;
}

static int copy_table(sg_registry *src, sg_registry *dst, const reg_table *t, sg_err *err)
{
    int nc = n_cols(t);
    char sql[768];
    if (!strcmp(t->name, "audit_head")) {
        snprintf(sql, sizeof sql, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1");
    } else {
        int n = snprintf(sql, sizeof sql, "INSERT INTO %s (%s) VALUES (", t->name, t->cols);
        for (int i = 0; i < nc; i++)
            n += snprintf(sql + n, sizeof sql - (size_t)n, "%s?", i ? ", " : "");
        snprintf(sql + n, sizeof sql - (size_t)n, ")");
    }
    reg_stmt *in;
    int rc = select_all(src, t, &in, err);
    if (rc != SG_OK) return rc;
    reg_read_start(src);
    while (rc == SG_OK && reg_row(src, in, err)) {
        reg_stmt *out;
        if ((rc = reg_prepare(dst, sql, &out, err)) != SG_OK) break;
        if (!strcmp(t->name, "audit_head")) {
            dst->tx_head_hash[0] = '\0'; /* the head the lock read is replaced */
            reg_bind_int64(out, 1, reg_col_int64(in, 1));
            reg_bind_text(out, 2, reg_col_text(in, 2));
        } else {
            for (int i = 0; i < nc; i++)
                if (!reg_col_is_null(in, i)) reg_bind_text(out, i + 1, reg_col_text(in, i));
        }
        reg_step_result s = reg_step(out);
        if (s == REG_CONSTRAINT)
            rc = sg_errf(err, SG_EINPUT,
                         "registry %s refused a row of %s from %s (a constraint of the "
                         "destination schema)",
                         dst->path, t->name, src->path);
        else if (s != REG_DONE)
            rc = reg_db_error(dst, err, "copying rows");
        reg_finalize(out);
    }
    reg_finalize(in);
    if (rc == SG_OK) rc = src->read_rc;
    return rc;
}

static int dst_empty(sg_registry *dst, sg_err *err)
{
    reg_stmt *st;
    int rc = reg_prepare(dst,
                         "SELECT (SELECT count(*) FROM registered_models) + (SELECT count(*) FROM"
                         " audit_log) + (SELECT count(*) FROM request_nonces)",
                         &st, err);
    if (rc != SG_OK) return rc;
    if (reg_step(st) != REG_ROW)
        rc = reg_db_error(dst, err, "reading the destination");
    else if (reg_col_int64(st, 0) != 0)
        rc =
            sg_errf(err, SG_EINPUT,
                    "registry %s is not empty: migrate copies into a new registry only", dst->path);
    reg_finalize(st);
    return rc;
}

/* The copy, inside src's snapshot and dst's write transaction. */
static sg_status copy_all(sg_registry *src, sg_registry *dst, json_t *counts, int64_t *events,
                    char head[65], sg_err *err)
{
    char src_head[65], why[sizeof err->msg];
    reg_replay_summary sum;
    int rc = reg_audit_verify(src, events, src_head, &sum, err);
    if (rc != SG_OK) {
        snprintf(why, sizeof why, "%s", err->msg);
        return sg_errf(err, rc, "registry %s does not verify, not copying it: %s", src->path, why);
    }
    if ((rc = dst_empty(dst, err)) != SG_OK) return rc;
    for (size_t i = 0; rc == SG_OK && i < N_TABLES; i++)
        rc = copy_table(src, dst, &tables[i], err);
    if (rc == SG_OK) rc = dst->ops->sync_ids(dst->store, err);
    int64_t dst_events = 0;
    if (rc == SG_OK && (rc = reg_audit_verify(dst, &dst_events, head, &sum, err)) != SG_OK) {
        snprintf(why, sizeof why, "%s", err->msg);
        return sg_errf(err, rc, "the copy in %s does not verify: %s", dst->path, why);
    }
    if (rc == SG_OK && (dst_events != *events || strcmp(head, src_head) != 0))
        return sg_errf(err, SG_EINTERNAL, "the copy in %s ends its audit chain elsewhere",
                       dst->path);
    for (size_t i = 0; rc == SG_OK && i < N_TABLES; i++) {
        int64_t a = 0, b = 0;
        char da[65], db[65];
        rc = table_digest(src, &tables[i], &a, da, err);
        if (rc == SG_OK) rc = table_digest(dst, &tables[i], &b, db, err);
        if (rc == SG_OK && (a != b || strcmp(da, db) != 0))
            rc = sg_errf(err, SG_EINTERNAL,
                         "the copy of %s differs: %lld rows in %s, %lld in %s (digests %.12s, "
                         "%.12s)",
                         tables[i].name, (long long)a, src->path, (long long)b, dst->path, da, db);
        if (rc == SG_OK) json_object_set_new(counts, tables[i].name, json_integer(a));
    }
    return rc;
}

sg_status sg_registry_copy(sg_registry *src, sg_registry *dst, json_t **summary, sg_err *err)
{
    if (summary) *summary = NULL;
    json_t *counts = json_object();
    int64_t events = 0;
    char head[65] = "";
    int rc = src->ops->begin_read(src->store, err);
    if (rc != SG_OK) {
        json_decref(counts);
        return rc;
    }
    rc = reg_begin(dst, err);
    if (rc == SG_OK) {
        rc = copy_all(src, dst, counts, &events, head, err);
        rc = reg_finish(dst, rc, err);
    }
    src->ops->end_read(src->store);
    /* Committed: the destination's own full check, as `verify-log` runs it. */
    if (rc == SG_OK) rc = sg_registry_verify_log(dst, NULL, err);
    if (rc == SG_OK && summary) {
        json_t *o = json_object();
        json_object_set_new(o, "tables", counts);
        json_object_set_new(o, "events", json_integer(events));
        json_object_set_new(o, "head_hash", json_string(head));
        *summary = o;
        counts = NULL;
    }
    json_decref(counts);
    return rc;
}

bool sg_registry_queues_writers(const sg_registry *reg)
{
    return reg->ops->queues_writers;
}

const char *sg_registry_display(const sg_registry *reg)
{
    return reg->path;
}
