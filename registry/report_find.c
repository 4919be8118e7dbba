/*
 * Finding a stored report by the artifact digest it names (its subject), for `stagegate
 * serve`: a client uploads a report, then asks for a transition with MLflow's plain
 * transition-stage call, which names the version, not the report.
 *
 * Since schema 5 each stored report carries the digest its statement names (subject_sha256,
 * indexed), so the lookup is an index search. Rows stored before have '' there; for them the
 * lookup narrows the rows in the database by their body: the subject's hex digest sits inside the
 * DSSE payload, which is base64, and whatever its offset, one of three encodings of the
 * digest (one per offset modulo 3) appears verbatim in the payload's text. Each becomes a
 * LIKE pattern in which '+' and '/' are wildcards, so URL-safe base64 and a JSON-escaped
 * slash ("\/") match too. Every candidate is then parsed and only one whose statement really
 * names the subject counts. With a model, the report returned is the one, among those that
 * verify against the model's signer keys and, where the model pins its gate, name the pinned
 * policy and dataset, whose signed timestamp is the latest (the latest received among
 * equals); without one, the newest received. A report that could never stand for the model
 * (another policy's, another model's gate) is not a candidate: the latest of those had
 * shadowed the one that applies, and anyone with a token can upload one.
 *
 * Since schema 9 the candidates with a model are read by the signer keys each report was
 * verified with when stored (report_signers): only the model's own signers' reports, plus
 * rows stored before, whose signers are not known.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"
#include "stagegate/compare.h"
#include "stagegate/keys.h"

/* pats[k]: "%" + base64 of hex[skip .. skip + 3n) + "%", skip = k, '+' -> '_', '/' -> '%'. */
static sg_status patterns(const char *hex, char pats[3][96], sg_err *err)
{
    for (int k = 0; k < 3; k++) {
        size_t n = (64 - (size_t)k) / 3 * 3;
        char *b64 = sg_base64_encode((const uint8_t *)hex + k, n);
        if (!b64) return sg_errf(err, SG_ENOMEM, "out of memory");
        size_t o = 0;
        pats[k][o++] = '%';
        for (const char *c = b64; *c && o < 94; c++)
            pats[k][o++] = *c == '+' ? '_' : *c == '/' ? '%' : *c;
        pats[k][o++] = '%';
        pats[k][o] = '\0';
        free(b64);
    }
    return SG_OK;
}

/* The ids of the model's signer keys as sg_key_id computes them from the keys themselves;
   a key that does not load is left out (no report can verify with it). */
static sg_status model_signer_ids(sg_registry *reg, const char *model, char (**ids)[65], int *n,
                                  sg_err *err)
{
    *ids = NULL;
    *n = 0;
    reg_stmt *st;
    sg_status rc = reg_prepare(reg,
                               "SELECT public_pem FROM model_keys WHERE model_name = ? AND"
                               " role = 'signer' ORDER BY key_id",
                               &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, model);
    int cap = 0;
    while (rc == SG_OK && reg_row(reg, st, err)) {
        const char *pem = reg_col_text(st, 0);
        EVP_PKEY *pub = NULL;
        sg_err ignored;
        char id[65];
        if (sg_key_load_public_pem(pem, strlen(pem), "trusted signer key", &pub, &ignored))
            continue;
        bool ok = sg_key_id(pub, id, &ignored) == SG_OK;
        EVP_PKEY_free(pub);
        if (!ok) continue;
        bool dup = false;
        for (int i = 0; i < *n && !dup; i++)
            dup = strcmp((*ids)[i], id) == 0;
        if (dup) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 4;
            char(*grown)[65] = realloc(*ids, (size_t)cap * sizeof **ids);
            if (!grown) {
                rc = sg_errf(err, SG_ENOMEM, "out of memory reading signer keys");
                break;
            }
            *ids = grown;
        }
        memcpy((*ids)[(*n)++], id, 65);
    }
    reg_finalize(st);
    if (rc == SG_OK) rc = reg->read_rc;
    if (rc != SG_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

/* sg_registry_find_report, also giving the chosen report's signed time and whether it passed
   (with a model; 0 and false without one); body and len NULL for the verdict alone. */
static sg_status find_latest(sg_registry *reg, const char *model, const char *subject_sha256,
                             uint8_t **body, size_t *len, char sha_out[65], int64_t *ts_out,
                             bool *passed_out, sg_err *err)
{
    int skipped = 0;
    if (body) *body = NULL, *len = 0;
    sha_out[0] = '\0';
    if (strlen(subject_sha256) != 64 || strspn(subject_sha256, "0123456789abcdef") != 64)
        return sg_errf(err, SG_EINPUT, "artifact digest '%.80s' is not 64 lowercase hex digits",
                       subject_sha256);
    char pats[3][96];
    sg_status rc = patterns(subject_sha256, pats, err);
    if (rc != SG_OK) return rc;
    reg_model pins;
    memset(&pins, 0, sizeof pins);
    if (model && (rc = reg_model_load(reg, model, &pins, err)) != SG_OK) return rc;
    reg_read_start(reg);
    reg_stmt *st;
    /* With a model, only reports one of its signer keys verified when they were stored (by
       index), and those stored before that was recorded: another principal's uploads naming
       this artifact, signed by the keys of a model of their own, are never read, so they
       cannot slow this lookup however many there are. The ids are the keys' own, computed
       as a report's verification computes them (model_keys.key_id of a registry made before
       EC keys were read in one point form can differ). */
    char(*ids)[65] = NULL;
    int n_ids = 0;
    if (model && (rc = model_signer_ids(reg, model, &ids, &n_ids, err)) != SG_OK) return rc;
    char *sql = NULL;
    if (model) {
        size_t cap = 640 + (size_t)(n_ids ? n_ids : 1) * 16; /* ", ?N" each */
        sql = malloc(cap);
        if (!sql) {
            free(ids);
            return sg_errf(err, SG_ENOMEM, "out of memory looking up reports");
        }
        int o = snprintf(sql, cap,
                         "SELECT sha256, body, received_at FROM reports WHERE sha256 IN"
                         " (SELECT report_sha256 FROM report_signers WHERE subject_sha256 = ?1"
                         " AND key_id IN (");
        for (int i = 0; i < n_ids; i++)
            o += snprintf(sql + o, cap - (size_t)o, "%s?%d", i ? ", " : "", 5 + i);
        snprintf(sql + o, cap - (size_t)o,
                 "%s)) UNION ALL SELECT sha256, body, received_at FROM reports"
                 " WHERE signers_known = 0 AND subject_sha256 = ?1"
                 " UNION ALL SELECT sha256, body, received_at FROM reports"
                 " WHERE signers_known = 0 AND subject_sha256 = '' AND"
                 " (body LIKE ?2 OR body LIKE ?3 OR body LIKE ?4)"
                 " ORDER BY 3 DESC, 1",
                 n_ids ? "" : "NULL");
    }
    rc = reg_prepare(reg,
                     model ? sql
                           : "SELECT sha256, body FROM reports WHERE subject_sha256 = ?1 OR"
                             " (subject_sha256 = '' AND (body LIKE ?2 OR body LIKE ?3 OR"
                             " body LIKE ?4)) ORDER BY received_at DESC, sha256",
                     &st, err);
    free(sql);
    if (rc != SG_OK) {
        free(ids);
        return rc;
    }
    reg_bind_text(st, 1, subject_sha256);
    for (int k = 0; k < 3; k++)
        reg_bind_text(st, k + 2, pats[k]);
    for (int i = 0; i < n_ids; i++)
        reg_bind_text(st, 5 + i, ids[i]);
    bool found = false;
    /* With model: the verified report whose signed evaluation time is the latest. The order
       of upload decides nothing: anyone with a token can upload again (re-serialised, so as
       new bytes) a genuine old report, which must not shadow a newer verdict. */
    int64_t best_ts = INT64_MIN;
    const int64_t now = reg_now_epoch();
    /* Two reports signed in the same second (SOURCE_DATE_EPOCH gives every gate of a commit
       one time) are a tie the time cannot break: the one that did not pass wins, so a
       re-upload of an old PASSED report cannot stand in for a newer failure. */
    bool best_passed = false;
    while ((model || !found) && rc == SG_OK && reg_row(reg, st, err)) {
        const char *key = reg_col_text(st, 0), *t = reg_col_text(st, 1);
        size_t n = strlen(t);
        char subject[65], hex[65];
        reg_report_subject(t, n, subject);
        if (strcmp(subject, subject_sha256) != 0) continue;
        sg_sha256_hex((const uint8_t *)t, n, hex);
        int64_t ts = 0;
        bool passed = false;
        if (model && strcmp(hex, key) == 0) {
            /* Anyone with a token may upload; only a report the model's signers signed may
               stand for the version, so a newer forged or junk upload cannot shadow it. */
            sg_report_info info;
            memset(&info, 0, sizeof info);
            sg_err verr = {{0}};
            int vrc =
                reg_verify_with_signers(reg, model, NULL, (const uint8_t *)t, n, &info, &verr);
            sg_err perr = {{0}};
            /* ... nor one gated against another baseline than what is in Production now,
               which the transition would refuse while a good one is stored. */
            /* ... nor one dated in the future (a signer's clock set wrong), which the
               transition refuses: as the latest signed, it had shadowed every later report
               of the artifact until its date. */
            bool same = vrc == SG_OK && strcmp(info.subject_sha256, subject_sha256) == 0 &&
                        reg_parse_utc(info.timestamp, &ts) == SG_OK &&
                        ts - now <= SG_REGISTRY_REQUEST_SKEW_S &&
                        reg_pins_check(model, pins.policy_sha256, pins.dataset_sha256,
                                       info.statement, &perr) == SG_OK &&
                        reg_baseline_check(reg, model, info.statement, &perr) == SG_OK;
            passed = same && strcmp(info.result, "PASSED") == 0;
            sg_report_info_clear(&info);
            if (!same) {
                skipped++;
                continue;
            }
            if (found && (ts < best_ts || (ts == best_ts && (passed || !best_passed))))
                continue; /* rows come newest received first */
        }
        if (strcmp(hex, key) != 0) {
            rc = sg_errf(err, SG_EREFUSED,
                         "stored report sha256:%.16s... was modified: its body hashes to %.16s...",
                         key, hex);
            continue;
        }
        if (body) { /* NULL: the caller wants the verdict only */
            uint8_t *copy = malloc(n ? n : 1);
            if (!copy) {
                rc = sg_errf(err, SG_ENOMEM, "out of memory reading a report");
                continue;
            }
            memcpy(copy, t, n);
            free(*body);
            *body = copy;
            *len = n;
        }
        memcpy(sha_out, key, 65);
        best_ts = ts;
        best_passed = passed;
        found = true;
    }
    *ts_out = found ? best_ts : 0;
    *passed_out = found && best_passed;
    reg_finalize(st);
    free(ids);
    if (rc == SG_OK && reg->read_rc != SG_OK) rc = reg->read_rc;
    if (rc == SG_OK && !found)
        rc = sg_errf(err, SG_EINPUT, "no stored report %snames artifact sha256 %s%s",
                     model ? "signed by a trusted signer key " : "", subject_sha256,
                     skipped ? " (reports that do not verify, are dated in the future, or "
                               "name another policy or dataset than the model pins, were "
                               "skipped)"
                             : "");
    if (rc != SG_OK) {
        if (body) {
            free(*body);
            *body = NULL;
            *len = 0;
        }
        sha_out[0] = '\0';
    }
    return rc;
}

sg_status sg_registry_find_report(sg_registry *reg, const char *model, const char *subject_sha256,
                                  uint8_t **body, size_t *len, char sha_out[65], sg_err *err)
{
    int64_t ts;
    bool passed;
    return find_latest(reg, model, subject_sha256, body, len, sha_out, &ts, &passed, err);
}

sg_status reg_newer_verdict_check(sg_registry *reg, const char *model, const char *subject_sha256,
                                  const char *report_sha, int64_t ts, const char *stage,
                                  sg_err *err)
{
    char sha[65];
    int64_t latest = 0;
    bool passed = false;
    sg_err ferr = {{0}};
    sg_status rc =
        find_latest(reg, model, subject_sha256, NULL, NULL, sha, &latest, &passed, &ferr);
    if (rc == SG_EINPUT) return SG_OK; /* none stored besides, or none that stands */
    if (rc != SG_OK) {
        *err = ferr;
        return rc;
    }
    /* The latest stands, as it does for a transition that names no report: an older passing
       report given with the request had stepped over a newer failure. Only a strictly later
       one: under a fixed SOURCE_DATE_EPOCH every gate of a commit has one time, and a
       failure at that second would refuse every retry's report for good. (One dated past
       now, which no report given could ever follow, is no candidate of find_latest's.) */
    if (!passed && strcmp(sha, report_sha) != 0 && latest > ts)
        return sg_errf(err, SG_EREFUSED,
                       "a later report for this artifact (sha256:%.16s..., signed after the one "
                       "given) did not pass: the latest verdict stands; gate again to enter %s",
                       sha, stage);
    return SG_OK;
}
