/*
 * Gated stage transitions, approvals and rollback.
 *
 * Each operation runs in one BEGIN IMMEDIATE transaction: the gate checks read the state
 * under the write lock, so no other process can change it between the check and the
 * write; the stage change, any automatic archiving and the audit events commit together.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry_internal.h"
#include "stagegate/json.h"
#include "stagegate/keys.h"
#include "stagegate/model.h"
#include "stagegate/report.h"

/* Rewrites a refusal as "refused: NAME vN -> STAGE: reason". */
static sg_status refuse(sg_err *err, int rc, const char *model, int64_t v, const char *stage)
{
    if (rc != SG_EREFUSED) return rc;
    char reason[sizeof err->msg];
    const char *m = err->msg;
    if (!strncmp(m, "refused: ", 9)) m += 9;
    snprintf(reason, sizeof reason, "%s", m);
    return sg_errf(err, SG_EREFUSED, "refused: %s v%lld -> %s: %s", model, (long long)v, stage,
                   reason);
}

/* at (when not NULL) receives the time written as updated_at. */
static int set_stage(sg_registry *reg, const char *model, int64_t version, const reg_stage *g,
                     char at[32], sg_err *err)
{
    char now[32];
    reg_now_utc(now);
    if (at) memcpy(at, now, sizeof now);
    reg_stmt *st;
    int rc = reg_prepare(reg,
                         "UPDATE model_versions SET stage = ?, stage_exclusive = ?, updated_at = ?"
                         " WHERE model_name = ? AND version = ?",
                         &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, g->name);
    reg_bind_int64(st, 2, !g->multi_version);
    reg_bind_text(st, 3, now);
    reg_bind_text(st, 4, model);
    reg_bind_int64(st, 5, version);
    char refused[512];
    snprintf(refused, sizeof refused,
             "refused: %s already holds a version of %s (single-version stage)", g->name, model);
    return reg_write(reg, st, "changing a stage", refused, err);
}

static sg_status occupant_prepare(sg_registry *reg, const char *model, const char *stage,
                                  int64_t except, reg_stmt **st, sg_err *err)
{
    sg_status rc = reg_prepare(reg,
                               "SELECT count(*), coalesce(max(version), 0) FROM model_versions"
                               " WHERE model_name = ? AND stage = ? AND version <> ?",
                               st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(*st, 1, model);
    reg_bind_text(*st, 2, stage);
    reg_bind_int64(*st, 3, except);
    return SG_OK;
}

/* Versions other than `except` currently in stage; returns the count and the newest one.
 * pre: the statement, prefetched (finalized here), or NULL. */
static int stage_occupant_from(sg_registry *reg, reg_stmt *pre, const char *model,
                               const char *stage, int64_t except, int64_t *count, int64_t *newest,
                               sg_err *err)
{
    reg_stmt *st = pre;
    int rc = st ? SG_OK : occupant_prepare(reg, model, stage, except, &st, err);
    if (rc != SG_OK) return rc;
    if (reg_step(st) == REG_ROW) {
        *count = reg_col_int64(st, 0);
        *newest = reg_col_int64(st, 1);
    } else {
        rc = reg_db_error(reg, err, "finding a stage's versions");
    }
    reg_finalize(st);
    return rc;
}

static int stage_occupant(sg_registry *reg, const char *model, const char *stage, int64_t except,
                          int64_t *count, int64_t *newest, sg_err *err)
{
    return stage_occupant_from(reg, NULL, model, stage, except, count, newest, err);
}

static int record_validation(sg_registry *reg, const char *model, const reg_version *v,
                             const char *stage, const sg_report_info *info, const char *report_sha,
                             sg_err *err)
{
    char now[32];
    reg_now_utc(now);
    reg_stmt *st;
    int rc =
        reg_prepare(reg,
                    "INSERT INTO validations (model_name, version, stage, result, subject_sha256,"
                    " signer_key_id, report_sha256, report_timestamp, recorded_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &st, err);
    if (rc != SG_OK) return rc;
    const char *vals[] = {
        model,        NULL,       stage,           info->result, info->subject_sha256,
        info->key_id, report_sha, info->timestamp, now};
    for (int i = 0; i < 9; i++)
        if (i == 1)
            reg_bind_int64(st, 2, v->version);
        else
            reg_bind_text(st, i + 1, vals[i]);
    return reg_write(reg, st, "recording a validation", NULL, err);
}

/*
 * The slow parts of a gate, done before the write lock is taken so that writers queue only
 * for the database work: hashing the artifact file (a large model takes tens of ms) and
 * verifying the report's signature. Inside the lock the results are used only if what they
 * were computed from is still what the registry holds (the same artifact path, the same
 * signer key row); otherwise the work is done again there.
 */
typedef struct {
    char artifact_path[4096];
    char artifact_sha[65]; /* "" when not computed */
    bool report_ok;        /* info holds a report verified with the key below */
    char signer_pem_sha[65];
    sg_report_info info;
    /* the trusted signer keys (any model's) the report is listed under when stored, as an
       upload is (reg_report_signers) */
    reg_signer_ids signers;
} reg_precheck;

static void precheck(sg_registry *reg, const char *model, int64_t version, const uint8_t *report,
                     size_t len, reg_precheck *pre)
{
    memset(pre, 0, sizeof *pre);
    sg_err err;
    reg_read_start(reg);
    /* The version's artifact path and, with a report, the model's signer keys: one
     * statement. */
    reg_stmt *st;
    if (reg_prepare(reg,
                    report ? "SELECT 0, artifact_path, '' FROM model_versions WHERE"
                             " model_name = ?1 AND version = ?2 UNION ALL SELECT 1, public_pem,"
                             " key_id FROM model_keys WHERE model_name = ?1 AND role = 'signer'"
                             " ORDER BY 1, 3"
                           : "SELECT 0, artifact_path, '' FROM model_versions WHERE"
                             " model_name = ?1 AND version = ?2",
                    &st, &err) != SG_OK) {
        reg->read_rc = SG_OK;
        return;
    }
    reg_bind_text(st, 1, model);
    reg_bind_int64(st, 2, version);
    char path[sizeof pre->artifact_path] = "";
    json_t *pems = json_array();
    while (reg_row(reg, st, &err))
        if (reg_col_int64(st, 0) == 0)
            snprintf(path, sizeof path, "%s", reg_col_text(st, 1));
        else
            json_array_append_new(pems, json_string(reg_col_text(st, 1)));
    reg_finalize(st);
    reg->read_rc = SG_OK; /* a failed read here only means the work is done under the lock */
    if (*path && sg_model_digest_file_hex(path, pre->artifact_sha, &err) == SG_OK)
        snprintf(pre->artifact_path, sizeof pre->artifact_path, "%s", path);
    else
        pre->artifact_sha[0] = '\0';
    size_t i;
    json_t *p;
    json_array_foreach(pems, i, p)
    {
        if (pre->report_ok) break;
        const char *pem = json_string_value(p);
        EVP_PKEY *pub = NULL;
        if (sg_key_load_public_pem(pem, strlen(pem), "signer", &pub, &err) != SG_OK) continue;
        sg_report_info_clear(&pre->info);
        memset(&pre->info, 0, sizeof pre->info);
        pre->report_ok = sg_report_verify(report, len, pub, NULL, &pre->info, &err) == SG_OK;
        if (pre->report_ok) sg_sha256_hex((const uint8_t *)pem, strlen(pem), pre->signer_pem_sha);
        EVP_PKEY_free(pub);
    }
    json_decref(pems);
    /* One signature: the model's key that verified it is the one it is listed under, at no
       cost; several (rare): each is matched with a trusted key here, before the lock. */
    if (report && pre->report_ok) {
        char payload[65];
        if (reg_report_signers(reg, report, len, pre->info.key_id, false, &pre->signers, payload,
                               &err) != SG_OK)
            pre->signers.n = 0;
        reg->read_rc = SG_OK;
    }
}

/* The model's signer keys as [{key_id, public_pem}] in key id order: from the configuration
 * this transaction matched with the log when there is one (so the keys checked are the keys
 * used), else from the tables (a model created before recorded configurations). */
static json_t *signer_keys(sg_registry *reg, const char *model, sg_err *err)
{
    json_t *out = json_array(), *cfg = reg_tx_config(reg, model);
    if (cfg) {
        size_t i;
        json_t *k;
        json_array_foreach(json_object_get(cfg, "keys"), i, k)
        {
            if (!strcmp(sg_json_str(k, "role"), "signer") && !*sg_json_str(k, "stage"))
                json_array_append(out, k);
        }
        return out;
    }
    reg_stmt *st;
    if (reg_prepare(reg,
                    "SELECT key_id, public_pem FROM model_keys WHERE model_name = ?"
                    " AND role = 'signer' ORDER BY key_id",
                    &st, err) != SG_OK) {
        json_decref(out);
        return NULL;
    }
    reg_bind_text(st, 1, model);
    while (reg_row(reg, st, err))
        json_array_append_new(out, json_pack("{ssss}", "key_id", reg_col_text(st, 0), "public_pem",
                                             reg_col_text(st, 1)));
    reg_finalize(st);
    return reg_read_end(reg, out);
}

/* Whether the key that verified the report before the lock is still a signer of the model. */
static bool signer_still_trusted(json_t *keys, const reg_precheck *pre)
{
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (strcmp(sg_json_str(k, "key_id"), pre->info.key_id) != 0) continue;
        const char *pem = sg_json_str(k, "public_pem");
        char sha[65];
        sg_sha256_hex((const uint8_t *)pem, strlen(pem), sha);
        return !strcmp(sha, pre->signer_pem_sha);
    }
    return false;
}

/* Whether one of keys (the model's trusted signers) verifies report; info holds what it
 * signed. *signed_bad: a trusted key signed it, but what it signed is not a report. */
static bool verify_with(json_t *keys, const uint8_t *report, size_t len, sg_report_info *info,
                        bool *signed_bad, sg_err *last)
{
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *pem = sg_json_str(k, "public_pem");
        EVP_PKEY *pub = NULL;
        if (sg_key_load_public_pem(pem, strlen(pem), "trusted signer key", &pub, last) != SG_OK)
            continue;
        sg_report_info_clear(info);
        memset(info, 0, sizeof *info);
        bool ok = sg_report_verify(report, len, pub, NULL, info, last) == SG_OK;
        EVP_PKEY_free(pub);
        if (ok) return true;
        /* Signed by this trusted key, and what it signed is not a report: no other key
           changes that, and "does not verify" would send the reader after the wrong fault. */
        if (info->checks_passed > 0) {
            *signed_bad = true;
            return false;
        }
    }
    return false;
}

/* Verifies a report against the model's trusted signers and this version's digest. */
static int check_report(sg_registry *reg, const reg_model *m, const reg_version *v,
                        const char *stage, const uint8_t *report, size_t len,
                        const char *report_sha, reg_precheck *pre, sg_err *err)
{
    sg_report_info info;
    memset(&info, 0, sizeof info);
    bool verified = false, any = false, signed_bad = false;
    sg_err last = {{0}};
    int rc = SG_OK;
    json_t *keys = signer_keys(reg, m->name, err);
    if (!keys) return reg->read_rc != SG_OK ? reg->read_rc : SG_ENOMEM;
    any = json_array_size(keys) > 0;
    if (pre->report_ok && signer_still_trusted(keys, pre)) {
        /* the verified statement moves over; pre no longer owns it */
        info = pre->info;
        memset(&pre->info, 0, sizeof pre->info);
        pre->report_ok = false;
        verified = true;
    }
    if (!verified) verified = verify_with(keys, report, len, &info, &signed_bad, &last);
    json_decref(keys);
    int64_t ts = 0;
    if (reg->read_rc != SG_OK)
        rc = reg->read_rc;
    else if (!any)
        rc = sg_errf(err, SG_EREFUSED,
                     "model has no trusted signer keys (create it with --signer KEY.pub)");
    else if (signed_bad)
        rc = sg_errf(err, SG_EREFUSED,
                     "report's signature verifies (trusted signer key %s) but what it signed is "
                     "not a stagegate report: %s",
                     info.key_id, last.msg);
    else if (!verified)
        rc = sg_errf(err, SG_EREFUSED, "report does not verify against any trusted signer key (%s)",
                     last.msg);
    else if (strcmp(info.subject_sha256, v->artifact_sha256) != 0)
        rc = sg_errf(err, SG_EREFUSED,
                     "report is for artifact sha256:%.16s..., not this version's sha256:%.16s...",
                     info.subject_sha256, v->artifact_sha256);
    else if (strcmp(info.result, "PASSED") != 0)
        rc = sg_errf(err, SG_EREFUSED, "report result is %s, not PASSED", info.result);
    else if (reg_parse_utc(info.timestamp, &ts) != 0)
        rc = sg_errf(err, SG_EREFUSED, "report timestamp '%s' is not RFC 3339", info.timestamp);
    else if (reg_now_epoch() - ts > m->max_report_age_days * 86400)
        rc = sg_errf(err, SG_EREFUSED,
                     "report from %s is older than the model's maximum report age (%lld days)",
                     info.timestamp, (long long)m->max_report_age_days);
    else if (ts - reg_now_epoch() > SG_REGISTRY_REQUEST_SKEW_S)
        rc = sg_errf(err, SG_EREFUSED, "report timestamp %s is in the future", info.timestamp);
    /* A pinned model's gate is its own policy on its own dataset: a report made with another
     * policy (one that passes anything) or for another model's gate does not enter. */
    if (rc == SG_OK)
        rc = reg_pins_check(m->name, m->policy_sha256, m->dataset_sha256, info.statement, err);
    /* ... and against what is in Production now: a report gated against itself, or without
       the baseline its policy compares with, passes "no regression against Production"
       without meeting it. */
    if (rc == SG_OK) rc = reg_baseline_check(reg, m->name, info.statement, err);
    if (rc == SG_OK) rc = reg_report_head_check(reg, info.statement, err);
    /* ... and the latest verdict for the artifact stands: an older passing report given with
       the transition had stepped over a newer failure stored in the registry. */
    if (rc == SG_OK)
        rc = reg_newer_verdict_check(reg, m->name, v->artifact_sha256, report_sha, ts, stage, err);
    if (rc == SG_OK) rc = record_validation(reg, m->name, v, stage, &info, report_sha, err);
    /* Kept so verify-log can verify this gate again from the log alone. */
    char stored[65];
    /* Listed under the trusted keys that verified its signatures before the lock (as an
       upload is: a key of another model that co-signed it finds it too), and the model's
       key that verified it now. */
    reg_signer_ids signers = pre->signers;
    if (rc == SG_OK) reg_signer_ids_add(&signers, info.key_id);
    if (rc == SG_OK)
        rc = reg_report_store(reg, report, len, info.key_id, &signers, info.payload_sha256, stored,
                              err);
    sg_report_info_clear(&info);
    return rc;
}

/*
 * An approver's decisions are read from the audit log, from the events that carry the
 * approver's signed request for exactly that decision, never from the approvals table: the
 * table's rows (or an unsigned event) written into the database by hand decide nothing, and
 * neither does their order. The approver's latest decision is the one whose signed request
 * names the latest audit head ("registry=SEQ:HASH", which every request signs): rows of the
 * approvals table swapped, or the rejection deleted from it, had let a rejected version into
 * Production while verify-log still passed. The approver's key comes from the model's keys,
 * which reg_config_check has matched with the recorded configuration.
 */
typedef struct {
    char who[65], comment[256];
    bool rejected;
    long long signed_seq; /* the audit head the signed request names */
    int64_t seq;          /* the event's place in the log */
} reg_decision;

typedef struct {
    reg_decision *d; /* each approver's latest signed decision */
    size_t n;
} reg_decisions;

static sg_status approval_signed(sg_registry *reg, const char *model, int64_t version, bool reject,
                                 const char *text, const char *sig, const char *pem, bool *ok,
                                 sg_err *err)
{
    *ok = false;
    char want[512];
    snprintf(want, sizeof want,
             "stagegate-registry-request/v1\naction=%s\nmodel=%s\nversion=%lld\n",
             reject ? "reject" : "approve", model, (long long)version);
    if (!text || !sig || !pem || strncmp(text, want, strlen(want)) != 0) return SG_OK;
    sg_status rc = reg_recorded_request_ok(reg, text, sig, pem, ok, err);
    /* ... and made for this registry: a genuine approval copied from another registry with
       the same model and keys names an event this log does not hold */
    sg_err why;
    if (rc == SG_OK && *ok && (rc = reg_request_registry_check(reg, text, &why)) != SG_OK) {
        *ok = false;
        if (rc == SG_EREFUSED)
            rc = SG_OK;
        else
            *err = why;
    }
    return rc;
}

static sg_status approvals_prepare(sg_registry *reg, const char *model, int64_t version,
                                   reg_stmt **st, sg_err *err)
{
    /* Every approve and reject event on the version (index audit_log_by_version) with the
     * approver's key (one probe of model_keys' key). The event's signature (base64, no
     * spaces) and request text come back as one value, "SIGNATURE TEXT". */
    sg_status rc = reg_prepare(
        reg,
        "SELECT l.actor_key_id, l.action, l.detail, l.evidence_sha256,"
        " l.signature || ' ' || l.request_text,"
        " (SELECT k.public_pem FROM model_keys k WHERE k.model_name = l.model_name"
        " AND k.role = 'approver' AND k.stage = '' AND k.key_id = l.actor_key_id), l.seq"
        " FROM audit_log l WHERE l.model_name = ? AND l.version = ?"
        " AND l.action IN ('approve', 'reject') ORDER BY l.seq",
        st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(*st, 1, model);
    reg_bind_int64(*st, 2, version);
    return SG_OK;
}

typedef struct {
    char who[65], action[16], evidence[65];
    char *sig, *text, *pem, *detail; /* detail: the comment, whole (its digest is checked) */
    int64_t seq;
} reg_event_row;

/* Each approver's latest signed decision on the version. pre: approvals_prepare's statement,
   prefetched (finalized here), or NULL. */
static sg_status read_decisions(sg_registry *reg, reg_stmt *pre, const char *model, int64_t version,
                                reg_decisions *out, sg_err *err)
{
    out->d = NULL;
    out->n = 0;
    reg_stmt *st = pre;
    sg_status rc = st ? SG_OK : approvals_prepare(reg, model, version, &st, err);
    if (rc != SG_OK) return rc;
    /* The rows are read first: checking a signature may run queries of its own. */
    reg_event_row *rows = NULL;
    size_t n = 0, cap = 0;
    while (reg_row(reg, st, err)) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            reg_event_row *nr = realloc(rows, nc * sizeof *nr);
            if (!nr) {
                rc = sg_errf(err, SG_ENOMEM, "out of memory reading the approvals of %s v%lld",
                             model, (long long)version);
                break;
            }
            rows = nr;
            cap = nc;
        }
        reg_event_row *r = &rows[n++];
        snprintf(r->who, sizeof r->who, "%s", reg_col_text(st, 0));
        snprintf(r->action, sizeof r->action, "%s", reg_col_text(st, 1));
        r->detail = strdup(reg_col_text(st, 2));
        snprintf(r->evidence, sizeof r->evidence, "%s", reg_col_text(st, 3));
        const char *ev = reg_col_text(st, 4), *sp = strchr(ev, ' ');
        r->sig = r->text = r->pem = NULL;
        if (!reg_col_is_null(st, 4) && !reg_col_is_null(st, 5) && sp) {
            r->sig = strndup(ev, (size_t)(sp - ev));
            r->text = strdup(sp + 1);
            r->pem = strdup(reg_col_text(st, 5));
        }
        r->seq = reg_col_int64(st, 6);
    }
    reg_finalize(st);
    if (rc == SG_OK) rc = reg->read_rc;
    if (rc == SG_OK && n && !(out->d = calloc(n, sizeof *out->d)))
        rc = sg_errf(err, SG_ENOMEM, "out of memory reading the approvals of %s v%lld", model,
                     (long long)version);
    for (size_t i = 0; rc == SG_OK && i < n; i++) {
        const reg_event_row *r = &rows[i];
        bool reject = !strcmp(r->action, "reject"), ok = false;
        rc = approval_signed(reg, model, version, reject, r->text, r->sig, r->pem, &ok, err);
        char ref[160];
        long long sseq = -1;
        if (rc != SG_OK || !ok || !reg_request_field(r->text, "registry", ref, sizeof ref) ||
            sscanf(ref, "%lld:", &sseq) != 1)
            continue;
        reg_decision *d = NULL;
        for (size_t j = 0; j < out->n && !d; j++)
            if (!strcmp(out->d[j].who, r->who)) d = &out->d[j];
        if (d && (d->signed_seq > sseq || (d->signed_seq == sseq && d->seq > r->seq))) continue;
        if (!d) d = &out->d[out->n++];
        snprintf(d->who, sizeof d->who, "%s", r->who);
        d->rejected = reject;
        d->signed_seq = sseq;
        d->seq = r->seq;
        /* the comment as signed (the evidence is its digest), else none */
        char h[65] = "";
        const char *detail = r->detail ? r->detail : "";
        if (*detail) sg_sha256_hex((const uint8_t *)detail, strlen(detail), h);
        snprintf(d->comment, sizeof d->comment, "%s", !strcmp(h, r->evidence) ? detail : "");
    }
    for (size_t i = 0; i < n; i++) {
        free(rows[i].text);
        free(rows[i].sig);
        free(rows[i].pem);
        free(rows[i].detail);
    }
    free(rows);
    if (rc != SG_OK) {
        free(out->d);
        out->d = NULL;
        out->n = 0;
    }
    return rc;
}

/* pre: approvals_prepare's statement, prefetched (finalized here), or NULL. */
static int check_approval(sg_registry *reg, reg_stmt *pre, const char *model, int64_t version,
                          const char *promoter, sg_err *err)
{
    reg_decisions ds;
    sg_status rc = read_decisions(reg, pre, model, version, &ds, err);
    bool approved = false, self_only = false;
    for (size_t i = 0; rc == SG_OK && i < ds.n; i++) {
        if (ds.d[i].rejected)
            rc = sg_errf(err, SG_EREFUSED, "rejected by approver %.16s (%s)", ds.d[i].who,
                         *ds.d[i].comment ? ds.d[i].comment : "no comment");
        else if (!strcmp(ds.d[i].who, promoter))
            self_only = true;
        else
            approved = true;
    }
    free(ds.d);
    if (rc == SG_OK && !approved)
        rc = sg_errf(
            err, SG_EREFUSED,
            self_only
                ? "the only approval is by the promoter (approver must differ from the promoter)"
                : "no approval on record (model requires approval)");
    return rc;
}

/* Refuses when an approver's latest signed decision on the version is a rejection. */
static sg_status check_not_rejected(sg_registry *reg, const char *model, int64_t version,
                                    sg_err *err)
{
    reg_decisions ds;
    sg_status rc = read_decisions(reg, NULL, model, version, &ds, err);
    for (size_t i = 0; rc == SG_OK && i < ds.n; i++)
        if (ds.d[i].rejected)
            rc = sg_errf(err, SG_EREFUSED, "v%lld was rejected by approver %.16s (%s)",
                         (long long)version, ds.d[i].who,
                         *ds.d[i].comment ? ds.d[i].comment : "no comment");
    free(ds.d);
    return rc;
}

/* Whether a query on (model, version) returns a row. */
static sg_status version_has_row(sg_registry *reg, const char *sql, const char *model,
                                 int64_t version, bool *yes, sg_err *err)
{
    reg_stmt *st;
    sg_status rc = reg_prepare(reg, sql, &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_int64(st, 2, version);
    *yes = reg_row(reg, st, err);
    reg_finalize(st);
    return reg->read_rc;
}

/*
 * Whether the version has a passed validation on record. For a model with a recorded
 * configuration a validations row counts only when the report it names is stored, still
 * verifies against the model's signer keys, is for this version's artifact and says PASSED:
 * a row written into the database by hand validates nothing (verify-log finds it too). A
 * model without one (made before configurations were recorded) has only its rows.
 */
/*
 * stale: NULL, or where a promotion learns that the version's validations verify but were
 * gated against a baseline that is no longer in Production (*stale_found set, the first such
 * reason in *stale). Such a validation does not count for a promotion: the version was never
 * compared with what it replaces. A restore (stale NULL) brings back a version that passed
 * Production's gates before, against the Production of its day.
 */
static sg_status has_passed_validation(sg_registry *reg, const reg_model *m, const reg_version *v,
                                       const char *stage, bool *ok, sg_err *stale,
                                       bool *stale_found, sg_err *err)
{
    *ok = false;
    if (stale_found) *stale_found = false;
    static const char sql[] = "SELECT report_sha256 FROM validations WHERE model_name = ? AND"
                              " version = ? AND result = 'PASSED' ORDER BY id DESC";
    if (!reg_tx_config(reg, m->name)) return version_has_row(reg, sql, m->name, v->version, ok, err);
    reg_stmt *st;
    sg_status rc = reg_prepare(reg, sql, &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, m->name);
    reg_bind_int64(st, 2, v->version);
    /* The digests are read first: loading a report runs a query of its own. */
    char shas[16][65];
    size_t n = 0;
    while (n < 16 && reg_row(reg, st, err))
        snprintf(shas[n++], sizeof shas[0], "%s", reg_col_text(st, 0));
    reg_finalize(st);
    if ((rc = reg->read_rc) != SG_OK) return rc;
    json_t *keys = n ? signer_keys(reg, m->name, err) : NULL;
    if (n && !keys) return reg->read_rc != SG_OK ? reg->read_rc : SG_ENOMEM;
    for (size_t i = 0; rc == SG_OK && !*ok && i < n; i++) {
        uint8_t *body = NULL;
        size_t len = 0;
        sg_err lerr;
        rc = reg_report_load(reg, shas[i], &body, &len, &lerr);
        if (rc == SG_ENOMEM || rc == SG_EIO) {
            *err = lerr;
            break;
        }
        reg->read_rc = SG_OK; /* a missing or modified report validates nothing */
        rc = SG_OK;
        if (!body) continue;
        sg_report_info info;
        memset(&info, 0, sizeof info);
        bool bad = false;
        *ok = verify_with(keys, body, len, &info, &bad, &lerr) &&
              !strcmp(info.subject_sha256, v->artifact_sha256) && !strcmp(info.result, "PASSED");
        /* A genuine validation under pins the model no longer has (`pin` changed them after
           the version entered Staging) is stale too, and says so: "no passed validation ...
           enter Staging with a report first" had named a step the version, already in
           Staging, could not take. */
        if (*ok && reg_pins_check(m->name, m->policy_sha256, m->dataset_sha256, info.statement,
                                  &lerr) != SG_OK) {
            *ok = false;
            if (stale && !*stale_found) {
                sg_errf(stale, SG_EREFUSED,
                        "report was gated under pins the model no longer has (%.300s)", lerr.msg);
                *stale_found = true;
            }
        }
        /* ... and it let the version in: a transition event of this version carries it, and
           the report was within the model's age when that event was written (what
           check_report held it to then, and what verify-log checks again). A genuine
           report of the artifact made for another gate, or too old, with a row written
           beside it by hand, validates nothing. */
        int64_t ts = 0;
        if (*ok) {
            int64_t et = 0;
            *ok = false;
            reg_stmt *ev;
            if ((rc = reg_prepare(reg,
                                  "SELECT created_at FROM audit_log WHERE model_name = ? AND"
                                  " version = ? AND action = 'transition' AND evidence_sha256 = ?"
                                  " ORDER BY seq DESC LIMIT 1",
                                  &ev, err)) == SG_OK) {
                reg_bind_text(ev, 1, m->name);
                reg_bind_int64(ev, 2, v->version);
                reg_bind_text(ev, 3, shas[i]);
                if (reg_row(reg, ev, err) && reg_parse_utc(reg_col_text(ev, 0), &et) == SG_OK &&
                    reg_parse_utc(info.timestamp, &ts) == SG_OK)
                    *ok = et - ts <= m->max_report_age_days * 86400 &&
                          ts - et <= SG_REGISTRY_REQUEST_SKEW_S;
                reg_finalize(ev);
                rc = reg->read_rc;
            }
        }
        /* ... and, for a promotion, gated against what is in Production now */
        if (rc == SG_OK && *ok && stale) {
            sg_err why;
            sg_status b = reg_baseline_check(reg, m->name, info.statement, &why);
            if (b == SG_EREFUSED) {
                *ok = false;
                if (!*stale_found) *stale = why;
                *stale_found = true;
            } else if (b != SG_OK) {
                *ok = false;
                *err = why;
                rc = b;
            }
        }
        /* ... and no verdict on the artifact signed after it failed: the latest verdict
           stands for a promotion as it does for entering the report stage (a re-gate that
           failed after the version entered Staging had not stopped its promotion). */
        if (rc == SG_OK && *ok && stale) {
            sg_err why;
            sg_status b =
                reg_newer_verdict_check(reg, m->name, v->artifact_sha256, shas[i], ts, stage, &why);
            if (b != SG_OK) {
                *ok = false;
                *err = why;
                rc = b;
            }
        }
        sg_report_info_clear(&info);
        free(body);
    }
    json_decref(keys);
    return rc;
}

static sg_status check_promoter(sg_registry *reg, const char *model, const char *stage,
                                const char *actor, sg_err *err)
{
    int64_t n = 0;
    bool ok = false;
    int rc = reg_key_count(reg, model, "promoter", stage, &n, err);
    if (rc == SG_OK && n == 0)
        return sg_errf(
            err, SG_EREFUSED,
            "no promoter is authorized for %s (create the model with --promoter %s=KEY.pub)", stage,
            stage);
    if (rc == SG_OK) rc = reg_key_authorized(reg, model, "promoter", stage, actor, &ok, err);
    if (rc == SG_OK && !ok)
        rc = sg_errf(err, SG_EREFUSED, "key %.16s is not an authorized promoter for %s", actor,
                     stage);
    return rc;
}

/* Moves the current occupant of Production to Archived (same transaction as the promotion). */
static sg_status archive_occupant(sg_registry *reg, const reg_model *m, int64_t occupant,
                                  int64_t by, const char *actor, const char *action, sg_err *err)
{
    const reg_stage *arch = reg_model_stage(m, REG_ARCHIVED);
    if (!arch) return sg_errf(err, SG_EINTERNAL, "model %s has no Archived stage", m->name);
    int rc = set_stage(reg, m->name, occupant, arch, NULL, err);
    char detail[64];
    snprintf(detail, sizeof detail, "replaced by v%lld", (long long)by);
    reg_event ev = {.model = m->name,
                    .version = occupant,
                    .action = action,
                    .from_stage = REG_PRODUCTION,
                    .to_stage = arch->name,
                    .actor = actor,
                    .detail = detail};
    if (rc == SG_OK) rc = reg_audit_append(reg, &ev, err);
    return rc;
}

/*
 * The artifact on disk must still be the one registered: a gate and its approvals speak for
 * those bytes (as resolve checks when a version is used).
 */
static sg_status check_artifact(const reg_version *v, const reg_precheck *pre, sg_err *err)
{
    char now[65];
    sg_err ferr;
    if (pre && pre->artifact_sha[0] && !strcmp(pre->artifact_path, v->artifact_path))
        memcpy(now, pre->artifact_sha, sizeof now);
    else if (sg_model_digest_file_hex(v->artifact_path, now, &ferr) != SG_OK)
        return sg_errf(err, SG_EREFUSED, "artifact %s cannot be read: %s", v->artifact_path,
                       ferr.msg);
    if (strcmp(now, v->artifact_sha256) != 0)
        return sg_errf(err, SG_EREFUSED,
                       "artifact %s changed on disk since registration (sha256 %.16s..., "
                       "registered %.16s...)",
                       v->artifact_path, now, v->artifact_sha256);
    return SG_OK;
}

/* doc: the version's document as this transaction read it under the write lock; on success
 * it becomes the document the transition leaves. pre_appr, pre_occ: the approvals
 * (approvals_prepare) and the occupant of pre_stage (occupant_prepare) read for this
 * version, prefetched from a stage hint, or NULL; each is used when the stage g needs it
 * (and pre_stage is g's name), else finalized here. */
static sg_status do_transition(sg_registry *reg, const reg_model *m, const reg_version *v,
                               json_t *doc, const reg_stage *g, const uint8_t *report,
                               size_t report_len, const sg_registry_request *req, reg_precheck *pre,
                               reg_stmt *pre_appr, reg_stmt *pre_occ, const char *pre_stage,
                               sg_err *err)
{
    bool allowed = false;
    char actor[65], report_sha[65] = "";
    if (report) sg_sha256_hex(report, report_len, report_sha);
    /* Leaving Production takes what serves traffic away: it needs a Production promoter's
     * signature whatever the target stage asks for (else an unsigned move to Archived would
     * also make a later rollback impossible). */
    bool leaving_production = strcmp(v->stage, REG_PRODUCTION) == 0;
    /* So does leaving any stage a promoter guards for one that needs none (Canary ->
     * Archived): a principal without a role had taken a canary down. A move into a guarded
     * stage (Canary -> Production) is that stage's promoter's to make. */
    const reg_stage *from = reg_model_stage(m, v->stage);
    bool leaving_guarded =
        !leaving_production && from && from->requires_promoter && !g->requires_promoter;
    /* The keys and rules used below are the ones the log recorded: the caller loaded the
     * model with reg_model_load_checked. */
    int rc = reg_transition_allowed(reg, m->name, v->stage, g->name, &allowed, err);
    if (rc == SG_OK && !allowed)
        rc = sg_errf(err, SG_EREFUSED, "the policy does not allow %s -> %s", v->stage, g->name);
    if (rc == SG_OK)
        rc = reg_request_check(reg, req,
                               g->requires_promoter || leaving_production || leaving_guarded,
                               "transition", m->name, v->version, g->name, report_sha, actor, err);
    if (rc == SG_OK && g->requires_promoter) rc = check_promoter(reg, m->name, g->name, actor, err);
    if (rc == SG_OK && leaving_production)
        rc = check_promoter(reg, m->name, REG_PRODUCTION, actor, err);
    if (rc == SG_OK && leaving_guarded) rc = check_promoter(reg, m->name, from->name, actor, err);
    /* A promotion re-hashes the artifact: what the gate passed must be what is promoted. */
    if (rc == SG_OK && (g->requires_report || g->requires_validation || g->requires_approval ||
                        g->requires_promoter))
        rc = check_artifact(v, pre, err);
    if (rc == SG_OK && g->requires_report && !report)
        rc = sg_errf(err, SG_EREFUSED,
                     "entering %s requires a passing signed report (--report R.intoto.json)",
                     g->name);
    if (rc == SG_OK && report)
        rc = check_report(reg, m, v, g->name, report, report_len, report_sha, pre, err);
    /* A passed validation: one on record when the version was read under the lock, or the
     * one check_report has just recorded (it records only a verified PASSED report). */
    bool had_validation = json_is_true(json_object_get(doc, "validated"));
    bool validated = true, stale_found = false;
    sg_err stale;
    if (rc == SG_OK && g->requires_validation && !report && had_validation)
        rc = has_passed_validation(reg, m, v, g->name, &validated, &stale, &stale_found, err);
    else if (rc == SG_OK && g->requires_validation)
        validated = report != NULL;
    if (rc == SG_OK && !validated && stale_found)
        /* the validation's report is stale: what is in Production changed since the gate */
        rc = sg_errf(err, SG_EREFUSED,
                     "v%lld's validation is stale: its %s; then promote with --report",
                     (long long)v->version, stale.msg);
    else if (rc == SG_OK && !validated)
        rc = sg_errf(err, SG_EREFUSED,
                     "no passed validation on record for v%lld (enter %s with a report first)",
                     (long long)v->version, m->report_stage);
    reg_stmt *occ = pre_occ, *appr = pre_appr;
    if (occ && (rc != SG_OK || g->multi_version || strcmp(pre_stage, g->name) != 0)) {
        reg_finalize(occ);
        occ = NULL;
    }
    if (appr && (rc != SG_OK || !g->requires_approval)) {
        reg_finalize(appr);
        appr = NULL;
    }
    /* A single-version stage's occupant is read with the approvals (one round trip), when
     * neither came with the transaction's first reads. */
    if (!occ && rc == SG_OK && !g->multi_version &&
        occupant_prepare(reg, m->name, g->name, v->version, &occ, err) == SG_OK &&
        g->requires_approval && !appr)
        reg_prefetch(reg, occ);
    if (!occ) reg->read_rc = SG_OK; /* stage_occupant_from prepares its own and reports */
    if (rc == SG_OK && g->requires_approval)
        rc = check_approval(reg, appr, m->name, v->version, actor, err);
    else if (appr)
        reg_finalize(appr);
    int64_t count = 0, occupant = 0;
    if (rc == SG_OK && !g->multi_version) {
        rc = stage_occupant_from(reg, occ, m->name, g->name, v->version, &count, &occupant, err);
        occ = NULL;
    }
    if (occ) reg_finalize(occ);
    if (rc == SG_OK && count > 0) {
        if (strcmp(g->name, REG_PRODUCTION) == 0)
            rc = archive_occupant(reg, m, occupant, v->version, actor, "archive", err);
        else
            rc = sg_errf(err, SG_EREFUSED, "%s already holds v%lld (single-version stage)", g->name,
                         (long long)occupant);
    }
    char at[32];
    if (rc == SG_OK) rc = set_stage(reg, m->name, v->version, g, at, err);
    if (rc == SG_OK) {
        json_object_set_new(doc, "stage", json_string(g->name));
        json_object_set_new(doc, "updated_at", json_string(at));
        json_object_set_new(doc, "validated", json_boolean(had_validation || report));
    }
    if (rc == SG_OK) {
        reg_event ev = {.model = m->name,
                        .version = v->version,
                        .action = "transition",
                        .from_stage = v->stage,
                        .to_stage = g->name,
                        .actor = actor,
                        .evidence = report_sha,
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
    }
    if (rc == SG_OK) reg_test_pause("transition");
    return refuse(err, rc, m->name, v->version, g->name);
}

static struct reg_stage_hint *stage_hint(sg_registry *reg, const char *model, const char *asked)
{
    for (size_t i = 0; i < sizeof reg->hints / sizeof reg->hints[0]; i++)
        if (!strcmp(reg->hints[i].model, model) && !strcmp(reg->hints[i].asked, asked))
            return &reg->hints[i];
    return NULL;
}

static void stage_hint_keep(sg_registry *reg, const char *model, const char *asked,
                            const reg_stage *g)
{
    if (strlen(model) >= REG_NAME_MAX || strlen(asked) >= REG_NAME_MAX) return;
    struct reg_stage_hint *h = stage_hint(reg, model, asked);
    if (!h) {
        h = &reg->hints[reg->next_hint++ % (sizeof reg->hints / sizeof reg->hints[0])];
        snprintf(h->model, sizeof h->model, "%s", model);
        snprintf(h->asked, sizeof h->asked, "%s", asked);
    }
    snprintf(h->stage, sizeof h->stage, "%s", g->name);
    h->approval = g->requires_approval;
    h->single = !g->multi_version;
}

/*
 * A transition into the stage the version is already in, for sg_registry_transition_repeat:
 * the authorization the move there needed (the request, a promoter of the stage where the
 * stage asks for one, and a Production promoter for a version in Production, which a move
 * from there would need), and nothing else. No gate runs again: the version passed the
 * stage's gates when it entered, and stays there whatever this answer says.
 */
static sg_status confirm_stage(sg_registry *reg, const reg_model *m, const reg_version *v,
                               const reg_stage *g, const uint8_t *report, size_t report_len,
                               const sg_registry_request *req, sg_err *err)
{
    char actor[65], report_sha[65] = "";
    if (report) sg_sha256_hex(report, report_len, report_sha); /* what the request names */
    bool production = strcmp(g->name, REG_PRODUCTION) == 0;
    int rc =
        reg_request_check_unrecorded(reg, req, g->requires_promoter || production, "transition",
                                     m->name, v->version, g->name, report_sha, actor, err);
    if (rc == SG_OK && (g->requires_promoter || production))
        rc = check_promoter(reg, m->name, g->name, actor, err);
    return refuse(err, rc, m->name, v->version, g->name);
}

static sg_status transition(sg_registry *reg, const char *model, int64_t version, const char *stage,
                            const uint8_t *report, size_t report_len,
                            const sg_registry_request *req, bool *unchanged, sg_err *err)
{
    reg_model m;
    reg_version v;
    reg_precheck pre;
    precheck(reg, model, version, report, report_len, &pre);
    int rc = reg_begin(reg, err);
    if (rc != SG_OK) {
        sg_report_info_clear(&pre.info);
        return rc;
    }
    json_t *doc = NULL;
    const reg_stage *g = NULL;
    /* The version's read goes out with the configuration's: one round trip for both. So do
     * the approvals and the stage's occupant when this handle last found the stage to need
     * them (the hint only decides what is read in that round trip, never what is checked). */
    reg_stmt *vst = reg_version_doc_prefetch(reg, model, version), *appr = NULL, *occ = NULL;
    char hint_stage[REG_NAME_MAX] = "";
    const struct reg_stage_hint *h = stage_hint(reg, model, stage);
    sg_err herr;
    if (h && h->approval && approvals_prepare(reg, model, version, &appr, &herr) == SG_OK)
        reg_prefetch(reg, appr);
    if (h && h->single && occupant_prepare(reg, model, h->stage, version, &occ, &herr) == SG_OK) {
        reg_prefetch(reg, occ);
        snprintf(hint_stage, sizeof hint_stage, "%s", h->stage);
    }
    reg->read_rc = SG_OK; /* a hinted read that could not be prepared is prepared again */
    if ((rc = reg_model_load_checked(reg, model, &m, err)) != SG_OK && vst) reg_finalize(vst);
    if (rc == SG_OK &&
        (rc = reg_version_doc_load_from(reg, vst, model, version, &v, &doc, err)) == SG_OK) {
        g = reg_model_stage(&m, stage);
        if (g) stage_hint_keep(reg, model, stage, g);
        if (!g)
            rc = sg_errf(err, SG_EINPUT, "model '%s' has no stage '%s'", model, stage);
        else if (!strcmp(g->name, v.stage) && unchanged) {
            rc = confirm_stage(reg, &m, &v, g, report, report_len, req, err);
            *unchanged = rc == SG_OK;
        } else if (!strcmp(g->name, v.stage))
            rc = sg_errf(err, SG_EINPUT, "%s v%lld is already in %s", model, (long long)version,
                         g->name);
        else {
            rc = do_transition(reg, &m, &v, doc, g, report, report_len, req, &pre, appr, occ,
                               hint_stage, err);
            appr = occ = NULL;
        }
    }
    if (appr) reg_finalize(appr);
    if (occ) reg_finalize(occ);
    sg_report_info_clear(&pre.info);
    bool checked = rc == SG_OK;
    if (rc == SG_OK) { /* the answer to the caller, without a read after the commit */
        reg->tx_doc = doc;
        doc = NULL;
    }
    json_decref(doc);
    rc = reg_finish(reg, rc, err);
    /* A refusal the commit learned (a deferred write: a replayed nonce) reads as the
     * transition's, as it does when the backend reports it at once. */
    if (checked && rc == SG_EREFUSED) rc = refuse(err, rc, model, version, g->name);
    return rc;
}

sg_status sg_registry_transition(sg_registry *reg, const char *model, int64_t version,
                                 const char *stage, const uint8_t *report, size_t report_len,
                                 const sg_registry_request *req, sg_err *err)
{
    return transition(reg, model, version, stage, report, report_len, req, NULL, err);
}

sg_status sg_registry_transition_repeat(sg_registry *reg, const char *model, int64_t version,
                                        const char *stage, const uint8_t *report, size_t report_len,
                                        const sg_registry_request *req, bool *unchanged,
                                        sg_err *err)
{
    *unchanged = false;
    return transition(reg, model, version, stage, report, report_len, req, unchanged, err);
}

sg_status sg_registry_approve(sg_registry *reg, const char *model, int64_t version, bool reject,
                              const char *comment, const sg_registry_request *req, sg_err *err)
{
    reg_model m;
    reg_version v;
    char actor[65], evidence[65] = "", now[32];
    comment = comment ? comment : "";
    if (!sg_utf8_valid(comment))
        return sg_errf(err, SG_EINPUT, "the %s comment is not UTF-8 text",
                       reject ? "reject" : "approval");
    if (*comment) sg_sha256_hex((const uint8_t *)comment, strlen(comment), evidence);
    const char *action = reject ? "reject" : "approve";
    int rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    bool ok = false;
    reg_stmt *vst = reg_version_prefetch(reg, model, version);
    if ((rc = reg_model_load_checked(reg, model, &m, err)) == SG_OK)
        rc = reg_version_load_from(reg, vst, model, version, &v, err);
    else if (vst)
        reg_finalize(vst);
    if (rc == SG_OK)
        rc = reg_request_check(reg, req, true, action, model, version, REG_PRODUCTION, evidence,
                               actor, err);
    if (rc == SG_OK) rc = reg_key_authorized(reg, model, "approver", "", actor, &ok, err);
    if (rc == SG_OK && !ok)
        rc = sg_errf(err, SG_EREFUSED, "refused: key %.16s is not an authorized approver of %s",
                     actor, model);
    reg_stmt *st = NULL;
    if (rc == SG_OK)
        rc = reg_prepare(
            reg,
            "INSERT INTO approvals (model_name, version, approver_key_id, decision, comment,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            &st, err);
    if (rc == SG_OK) {
        reg_now_utc(now);
        reg_bind_text(st, 1, model);
        reg_bind_int64(st, 2, version);
        reg_bind_text(st, 3, actor);
        reg_bind_text(st, 4, reject ? "rejected" : "approved");
        reg_bind_text(st, 5, comment);
        reg_bind_text(st, 6, now);
        rc = reg_write(reg, st, "recording an approval", NULL, err);
    }
    if (rc == SG_OK) {
        reg_event ev = {.model = model,
                        .version = version,
                        .action = action,
                        .actor = actor,
                        .evidence = evidence,
                        .detail = comment,
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
    }
    return reg_finish(reg, rc, err);
}

/* The version most recently promoted to Production that is not there now. */
static int previous_production(sg_registry *reg, const char *model, int64_t current, int64_t *prev,
                               sg_err *err)
{
    reg_stmt *st;
    int rc = reg_prepare(reg,
                         "SELECT a.version FROM audit_log a JOIN model_versions v ON v.model_name ="
                         " a.model_name AND v.version = a.version WHERE a.model_name = ? AND"
                         " a.to_stage = 'Production' AND a.version <> ? AND v.stage <> 'Production'"
                         " ORDER BY a.seq DESC LIMIT 1",
                         &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_int64(st, 2, current);
    *prev = reg_row(reg, st, err) ? reg_col_int64(st, 0) : 0;
    reg_finalize(st);
    return reg->read_rc;
}

sg_status sg_registry_rollback(sg_registry *reg, const char *model, const sg_registry_request *req,
                               int64_t *restored, int64_t *archived, sg_err *err)
{
    reg_model m;
    char actor[65];
    int64_t count = 0, current = 0, prev = 0;
    *restored = *archived = 0;
    int rc = reg_begin(reg, err);
    if (rc != SG_OK) return rc;
    rc = reg_model_load_checked(reg, model, &m, err);
    if (rc == SG_OK)
        rc =
            reg_request_check(reg, req, true, "rollback", model, 0, REG_PRODUCTION, "", actor, err);
    if (rc == SG_OK) rc = check_promoter(reg, model, REG_PRODUCTION, actor, err);
    if (rc == SG_OK) rc = stage_occupant(reg, model, REG_PRODUCTION, 0, &count, &current, err);
    if (rc == SG_OK && count == 0)
        rc = sg_errf(err, SG_EREFUSED, "no version of %s is in Production", model);
    if (rc == SG_OK) rc = previous_production(reg, model, current, &prev, err);
    if (rc == SG_OK && prev == 0)
        rc = sg_errf(err, SG_EREFUSED, "no earlier Production version of %s to restore", model);
    reg_version pv;
    if (rc == SG_OK) rc = reg_version_load(reg, model, prev, &pv, err);
    /* A version an approver has since rejected does not come back through a rollback. */
    if (rc == SG_OK) rc = check_not_rejected(reg, model, prev, err);
    if (rc == SG_OK) rc = check_artifact(&pv, NULL, err);
    if (rc == SG_OK) rc = archive_occupant(reg, &m, current, prev, actor, "rollback-archive", err);
    if (rc == SG_OK)
        rc = set_stage(reg, model, prev, reg_model_stage(&m, REG_PRODUCTION), NULL, err);
    if (rc == SG_OK) {
        char detail[64];
        snprintf(detail, sizeof detail, "rolled back from v%lld", (long long)current);
        reg_event ev = {.model = model,
                        .version = prev,
                        .action = "rollback",
                        .from_stage = pv.stage,
                        .to_stage = REG_PRODUCTION,
                        .actor = actor,
                        .detail = detail,
                        .req = req};
        rc = reg_audit_append(reg, &ev, err);
    }
    if (rc == SG_OK) {
        *restored = prev;
        *archived = current;
    } else if (rc == SG_EREFUSED && strncmp(err->msg, "refused: ", 9) != 0) {
        char reason[sizeof err->msg];
        snprintf(reason, sizeof reason, "%s", err->msg);
        sg_errf(err, SG_EREFUSED, "refused: rollback of %s: %s", model, reason);
    }
    return reg_finish(reg, rc, err);
}

/* Whether an audit event ever moved the version into Production. */
static sg_status was_in_production(sg_registry *reg, const char *model, int64_t version, bool *yes,
                                   sg_err *err)
{
    return version_has_row(reg,
                           "SELECT 1 FROM audit_log WHERE model_name = ? AND version = ?"
                           " AND to_stage = 'Production'",
                           model, version, yes, err);
}

/*
 * MLflow's rollback recipe, second half: "transition the previous version (now Archived) to
 * Production". The default policy has no Archived -> Production transition, and must not
 * simply gain one (a version archived straight from Staging, or rejected since, would come
 * back through whatever Production's transition checks). A restore is held to what
 * `rollback` holds the version it restores: a Production promoter's request, the version
 * was in Production before, a passed validation, no standing rejection, an unchanged
 * artifact; the occupant of a single-version Production is archived in the same
 * transaction, and a `restore` event (Archived -> Production) is logged.
 */
static sg_status restore(sg_registry *reg, const reg_model *m, const reg_version *v,
                         const sg_registry_request *req, int64_t *archived, sg_err *err)
{
    char actor[65];
    bool ever = false, validated = false;
    /* The caller loaded the model with reg_model_load_checked. */
    sg_status rc = reg_request_check(reg, req, true, "transition", m->name, v->version,
                                     REG_PRODUCTION, "", actor, err);
    if (rc == SG_OK) rc = check_promoter(reg, m->name, REG_PRODUCTION, actor, err);
    if (rc == SG_OK) rc = was_in_production(reg, m->name, v->version, &ever, err);
    if (rc == SG_OK && !ever)
        rc = sg_errf(err, SG_EREFUSED,
                     "v%lld has never been in Production, so it cannot come back from Archived"
                     " (only a version that passed Production's gates before is restored; to"
                     " go back to the previous Production version call POST"
                     " /api/stagegate/rollback, or `stagegate registry rollback`)",
                     (long long)v->version);
    if (rc == SG_OK)
        rc = has_passed_validation(reg, m, v, REG_PRODUCTION, &validated, NULL, NULL, err);
    if (rc == SG_OK && !validated)
        rc = sg_errf(err, SG_EREFUSED, "no passed validation on record for v%lld",
                     (long long)v->version);
    if (rc == SG_OK) rc = check_not_rejected(reg, m->name, v->version, err);
    if (rc == SG_OK) rc = check_artifact(v, NULL, err);
    const reg_stage *prod = reg_model_stage(m, REG_PRODUCTION);
    int64_t count = 0, occ = 0;
    if (rc == SG_OK && !prod->multi_version)
        rc = stage_occupant(reg, m->name, REG_PRODUCTION, v->version, &count, &occ, err);
    if (rc == SG_OK && count > 0) {
        rc = archive_occupant(reg, m, occ, v->version, actor, "archive", err);
        if (rc == SG_OK) *archived = occ;
    }
    if (rc == SG_OK) rc = set_stage(reg, m->name, v->version, prod, NULL, err);
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
    if ((rc = reg_model_load_checked(reg, model, &m, err)) == SG_OK &&
        (rc = reg_version_load(reg, model, version, &v, err)) == SG_OK &&
        !strcmp(v.stage, REG_ARCHIVED))
        rc = reg_transition_allowed(reg, model, REG_ARCHIVED, REG_PRODUCTION, &allowed, err);
    if (rc == SG_OK && !strcmp(v.stage, REG_ARCHIVED) && !allowed &&
        reg_model_stage(&m, REG_PRODUCTION)) {
        *applies = true;
        rc = restore(reg, &m, &v, req, archived, err);
    } else if (rc == SG_OK) {
        rc = sg_errf(err, SG_EINPUT,
                     "%s v%lld: a restore applies to an Archived version of a model whose policy"
                     " has no Archived -> Production transition",
                     model, (long long)version);
    }
    rc = reg_finish(reg, rc, err);
    /* After the commit too: a refusal it learned (a replayed nonce) is the restore's. */
    if (*applies && rc == SG_EREFUSED) {
        char reason[sizeof err->msg];
        snprintf(reason, sizeof reason, "%s", err->msg);
        rc =
            sg_errf(err, SG_EREFUSED, "refused: %s v%lld -> Production (restore from Archived): %s",
                    model, (long long)version, reason);
    }
    return rc;
}
