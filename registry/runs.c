/*
 * Run history: one row per recorded nightly (or any) gate run. Runs are
 * observations, not lifecycle state, so they are not audit events; but only a
 * report whose signature verifies is recorded, so the history can be trusted
 * as much as the keys that signed it.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry_internal.h"
#include "stagegate/json.h"
#include "stagegate/compare.h"
#include "stagegate/keys.h"
#include "stagegate/report.h"

/* Verifies with the model's trusted signer keys (every model's when model is NULL); the first
   that verifies wins. The keys recorded under the id hint (a signature's "keyid", which
   nobody vouches for) are tried first: it orders the search and never decides it, so an
   honest signature costs one verification, not one per key of the registry ahead of its
   own. */
sg_status reg_verify_with_signers(sg_registry *reg, const char *model, const char *hint,
                                  const uint8_t *env, size_t len, sg_report_info *info, sg_err *err)
{
    reg_stmt *st;
    /* CAST: portable SQL, as PostgreSQL cannot infer a parameter's type from `? IS NULL`. */
    int rc = reg_prepare(reg,
                         "SELECT public_pem, MIN(CASE WHEN key_id = CAST(?2 AS TEXT) THEN 0"
                         " ELSE 1 END) AS later FROM model_keys WHERE role = 'signer' AND"
                         " (CAST(?1 AS TEXT) IS NULL OR model_name = ?1)"
                         " GROUP BY public_pem ORDER BY later, public_pem",
                         &st, err);
    if (rc) return rc;
    if (model) reg_bind_text(st, 1, model);
    if (hint) reg_bind_text(st, 2, hint);
    bool verified = false, any = false;
    sg_err last = {{0}};
    reg_step_result s = REG_DONE;
    while (!verified && (s = reg_step(st)) == REG_ROW) {
        const char *pem = reg_col_text(st, 0);
        EVP_PKEY *pub = NULL;
        any = true;
        if (sg_key_load_public_pem(pem, strlen(pem), "trusted signer key", &pub, &last)) continue;
        sg_report_info_clear(info);
        int vrc = sg_report_verify(env, len, pub, NULL, info, &last);
        EVP_PKEY_free(pub);
        verified = vrc == SG_OK;
        if (vrc == SG_EINPUT) { /* not a well-formed envelope: no key will do */
            reg_finalize(st);
            return sg_errf(err, SG_EINPUT, "%s", last.msg);
        }
        if (!verified && info->checks_passed > 0) { /* signed by this key: no other will do */
            reg_finalize(st);
            return sg_errf(err, SG_EREFUSED,
                           "report's signature verifies (trusted signer key %s of %s) but what "
                           "it signed is not a stagegate report: %s",
                           info->key_id, model ? model : "the registry", last.msg);
        }
    }
    reg_finalize(st);
    if (s != REG_ROW && s != REG_DONE) return reg_db_error(reg, err, "reading signer keys");
    if (!any)
        return sg_errf(err, SG_EREFUSED,
                       "%s%s has no trusted signer keys: pass --pubkey PUB.pem to record "
                       "a run signed by another key",
                       model ? "model " : "the registry", model ? model : "");
    if (!verified)
        return sg_errf(err, SG_EREFUSED,
                       "report does not verify against any trusted signer key of %s (%s)",
                       model ? model : "the registry", last.msg);
    return SG_OK;
}

void reg_signer_ids_add(reg_signer_ids *ids, const char *key_id)
{
    for (int i = 0; i < ids->n; i++)
        if (!strcmp(ids->id[i], key_id)) return;
    if (ids->n < SG_DSSE_MAX_SIGNATURES) snprintf(ids->id[ids->n++], 65, "%s", key_id);
}

/* The version holding this artifact; model (may be NULL) picks one when several models hold it. */
static sg_status find_version(sg_registry *reg, const char *sha, const char *model, int64_t want,
                        char name[REG_NAME_MAX], int64_t *version, char stage[REG_NAME_MAX],
                        sg_err *err)
{
    reg_stmt *st;
    /* CAST: portable SQL, as PostgreSQL cannot infer a parameter's type from `? IS NULL`. */
    int rc = reg_prepare(
        reg,
        "SELECT model_name, version, stage FROM model_versions WHERE artifact_sha256 = ?1"
        " AND (CAST(?2 AS TEXT) IS NULL OR model_name = ?2)"
        " AND (CAST(?3 AS BIGINT) = 0 OR version = ?3) ORDER BY model_name, version DESC",
        &st, err);
    if (rc) return rc;
    reg_bind_text(st, 1, sha);
    if (model) reg_bind_text(st, 2, model);
    reg_bind_int64(st, 3, want);
    int n = 0, twice = 0;
    int64_t second = 0;
    char others[512] = "";
    reg_step_result s;
    while ((s = reg_step(st)) == REG_ROW) {
        const char *m = reg_col_text(st, 0);
        if (n == 0) {
            snprintf(name, REG_NAME_MAX, "%s", m);
            *version = reg_col_int64(st, 1);
            snprintf(stage, REG_NAME_MAX, "%s", reg_col_text(st, 2));
            n++;
        } else if (strcmp(m, name)) {
            size_t l = strlen(others);
            snprintf(others + l, sizeof others - l, "%s%s", l ? ", " : "", m);
            n++;
        } else if (!twice++) { /* the same artifact twice in one model (a rollback's re-upload) */
            second = reg_col_int64(st, 1);
        }
    }
    reg_finalize(st);
    if (s != REG_DONE) return reg_db_error(reg, err, "finding the report's version");
    if (n == 0) {
        char which[48] = "";
        if (want) snprintf(which, sizeof which, " v%lld", (long long)want);
        return sg_errf(
            err, SG_EINPUT,
            "no registered version%s%s%s has artifact sha256:%.16s... (the report's subject)",
            which, model ? " of " : "", model ? model : "", sha);
    }
    if (n > 1)
        return sg_errf(err, SG_EINPUT,
                       "artifact sha256:%.16s... is registered under %s and %s: pass --model NAME",
                       sha, name, others);
    /* Filed under the newest, a run of the version the nightly gated (v1 in Production) had
       gone to another (v3, which holds the same file): pass the version that was gated. */
    if (twice)
        return sg_errf(err, SG_EINPUT,
                       "artifact sha256:%.16s... is v%lld and v%lld%s of %s: pass --version V", sha,
                       (long long)*version, (long long)second, twice > 1 ? " (and more)" : "",
                       name);
    return SG_OK;
}

/* What the history keeps of a report: numeric metrics, latency percentiles, gated metric names. */
static json_t *figures_of(json_t *pred)
{
    json_t *f = json_object(), *m = json_object(), *l = json_object(), *g = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(pred, "metrics"), k, v) if (json_is_number(v))
        json_object_set(m, k, v);
    static const char *const pk[] = {"p50", "p90", "p99", "p999", "mean"};
    json_t *lat = json_object_get(json_object_get(pred, "latency"), "latency_ns");
    for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++)
        if (json_is_number(json_object_get(lat, pk[i])))
            json_object_set(l, pk[i], json_object_get(lat, pk[i]));
    json_t *pol = json_object_get(pred, "policy"), *lim = json_object(), *dir = json_object();
    json_object_foreach(json_object_get(pol, "metrics"), k, v)
    {
        json_array_append_new(g, json_string(k));
        json_t *t = json_object_get(v, "threshold"), *gib = json_object_get(v, "greater_is_better");
        char name[160];
        snprintf(name, sizeof name, "metric.%s", k);
        if (json_is_number(t)) json_object_set(lim, name, t);
        /* The rule's direction, which a policy may set against the metric's usual one. */
        if (json_is_boolean(gib)) json_object_set(dir, name, gib);
    }
    json_object_set_new(f, "directions", dir);
    /* The absolute limits, for the trend page's limit lines (relative ones depend on a baseline).
     */
    json_t *pl = json_object_get(pol, "latency");
    if (json_is_number(json_object_get(pl, "max_ms")) &&
        json_is_integer(json_object_get(pl, "percentile"))) {
        char name[64];
        snprintf(name, sizeof name, "latency.p%lld",
                 (long long)json_integer_value(json_object_get(pl, "percentile")));
        json_object_set_new(lim, name,
                            json_real(json_number_value(json_object_get(pl, "max_ms")) * 1e6));
    }
    json_object_set_new(f, "limits", lim);
    json_object_set_new(f, "metrics", m);
    json_object_set_new(f, "latency_ns", l);
    json_object_set_new(f, "gated", g);
    return f;
}

/* signer_trusted: whether the key that signed the run is one of its model's signers now (a
   run recorded with --pubkey was signed by another key: a nightly's own, or anyone's). */
static const char run_cols[] =
    "SELECT id, model_name, version, stage, fingerprint, machine, run_at, recorded_at,"
    " report_sha256, report_path, result, signer_key_id, scenario, figures, verdict,"
    " payload_sha256, CASE WHEN EXISTS (SELECT 1 FROM model_keys k WHERE k.model_name ="
    " runs.model_name AND k.role = 'signer' AND k.key_id = runs.signer_key_id) THEN 1 ELSE 0"
    " END AS signer_trusted FROM runs";

static json_t *row_json(reg_stmt *st)
{
    static const char *const names[] = {"id",
                                        "model",
                                        "version",
                                        "stage",
                                        "fingerprint",
                                        "machine",
                                        "time",
                                        "recorded_at",
                                        "report_sha256",
                                        "report_path",
                                        "result",
                                        "signer_key_id",
                                        "scenario",
                                        "figures",
                                        "verdict",
                                        "payload_sha256",
                                        "signer_trusted"};
    json_t *o = json_object();
    for (int c = 0; c < 17; c++) {
        if (c == 0 || c == 2) {
            json_object_set_new(o, names[c], json_integer(reg_col_int64(st, c)));
        } else if (c == 5 || c == 13) { /* stored as JSON text written by this file */
            json_t *j = json_loads(reg_col_text(st, c), JSON_DECODE_ANY, NULL);
            json_object_set_new(o, names[c], j ? j : json_null());
        } else if (c == 16) {
            json_object_set_new(o, names[c], json_boolean(reg_col_int64(st, c) != 0));
        } else if (c == 14 || c == 15) { /* '' (the column's default): none was stored */
            const char *v = reg_col_text(st, c);
            json_object_set_new(o, names[c], v && *v ? json_string(v) : json_null());
        } else {
            json_object_set_new(o, names[c], json_string(reg_col_text(st, c)));
        }
    }
    return o;
}

static int insert_run(sg_registry *reg, const char *model, int64_t version, const char *stage,
                      json_t *pred, const sg_report_info *info, const char *report_sha,
                      const char *path, int64_t *id, sg_err *err)
{
    json_t *latency = json_object_get(pred, "latency");
    json_t *fp = sg_fingerprint_from_machine(json_object_get(latency, "machine"));
    json_t *figs = figures_of(pred);
    char *fp_text = fp ? sg_json_dumps(fp, false) : NULL, *fig_text = sg_json_dumps(figs, false);
    char now[32], abs_path[PATH_MAX], run_at[64];
    reg_now_utc(now);
    /* Runs are listed in run_at order, as text, so run_at is one spelling of the instant: UTC,
       upper-case T and Z, whole seconds (ties in the order recorded). An offset had sorted
       11:00+05:00 after 10:00Z; "t"/"z" sorted after every "T"; and a fraction sorted before
       its whole second ('.' < 'Z'), so --limit 1 had named another run the newest. The
       report keeps the time as written. */
    int64_t epoch = 0;
    struct tm tm;
    bool ok = reg_parse_utc(info->timestamp, &epoch) == SG_OK;
    time_t t = (time_t)epoch;
    ok = ok && gmtime_r(&t, &tm) && tm.tm_year >= -1900 && tm.tm_year <= 9999 - 1900;
    if (ok)
        snprintf(run_at, sizeof run_at, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (!realpath(path, abs_path)) snprintf(abs_path, sizeof abs_path, "%s", path);
    reg_stmt *st = NULL;
    int rc;
    /* A registry holds text: a path that is not UTF-8 had been stored, then dropped from
       every JSON answer (no report_path), and the nightly could no longer find the report. */
    if (!sg_utf8_valid(abs_path))
        rc = sg_errf(err, SG_EINPUT,
                     "%s: the report's path is not UTF-8 (a registry stores text): rename the "
                     "file or its directory",
                     path);
    else if (!ok)
        rc = sg_errf(err, SG_EINPUT,
                     "%s: timestamp \"%.64s\" is not a time in the years 0000..9999 once "
                     "converted to UTC",
                     path, info->timestamp);
    /* The nightly compares a run with the newest one recorded: a run dated in the future
       (a signer's clock set wrong, or SOURCE_DATE_EPOCH far ahead) would stay "the newest"
       for ever, and every later night would be compared with it. As a transition refuses
       such a report, so does record. */
    else if (epoch - reg_now_epoch() > SG_REGISTRY_REQUEST_SKEW_S)
        rc = sg_errf(err, SG_EINPUT,
                     "%s: timestamp %.64s is in the future (more than %d s ahead of this "
                     "clock): the newest run would be this one until then",
                     path, info->timestamp, SG_REGISTRY_REQUEST_SKEW_S);
    else if (!fig_text)
        rc = sg_errf(err, SG_ENOMEM, "out of memory recording a run");
    else
        rc = reg_begin(reg, err);
    if (!rc)
        rc = reg_prepare(reg,
                         "INSERT INTO runs (model_name, version, stage, fingerprint, machine, "
                         "run_at, recorded_at,"
                         " report_sha256, report_path, result, signer_key_id, scenario, figures,"
                         " payload_sha256)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                         &st, err);
    if (!rc) {
        const char *scen = json_string_value(json_object_get(latency, "scenario"));
        const char *texts[] = {model,
                               NULL,
                               stage,
                               fp ? json_string_value(json_object_get(fp, "id")) : "",
                               fp_text ? fp_text : "null",
                               run_at,
                               now,
                               report_sha,
                               abs_path,
                               info->result,
                               info->key_id,
                               scen ? scen : "",
                               fig_text,
                               info->payload_sha256};
        for (int i = 0; i < 14; i++)
            if (texts[i]) reg_bind_text(st, i + 1, texts[i]);
        reg_bind_int64(st, 2, version);
        int s = reg_step(st);
        if (s == REG_CONSTRAINT)
            rc = sg_errf(err, SG_EINPUT,
                         "%s (sha256:%.16s..., statement sha256:%.16s...) is already recorded for "
                         "%s",
                         path, report_sha, info->payload_sha256, model);
        else if (s != REG_DONE)
            rc = reg_db_error(reg, err, "recording a run");
        *id = reg->ops->last_insert_id(reg->store);
    }
    reg_finalize(st);
    if (reg->in_tx) rc = reg_finish(reg, rc, err);
    free(fp_text);
    free(fig_text);
    json_decref(fp);
    json_decref(figs);
    return rc;
}

static json_t *load_run(sg_registry *reg, int64_t id, sg_err *err)
{
    char sql[512];
    snprintf(sql, sizeof sql, "%s WHERE id = ?", run_cols);
    reg_stmt *st;
    if (reg_prepare(reg, sql, &st, err)) return NULL;
    reg_bind_int64(st, 1, id);
    json_t *o = reg_step(st) == REG_ROW ? row_json(st) : NULL;
    if (!o) reg_db_error(reg, err, "reading the recorded run");
    reg_finalize(st);
    return o;
}

/* A run is kept only with figures its history can be read back with: `compare --history`
   refuses a latency that is not a positive number of nanoseconds (up to 1e15), so a signed
   report with p50 = -7 had been recorded, then made every later nightly compare of that
   version exit 2 until the run left the 20-run window. */
static sg_status check_latencies(const char *path, json_t *pred, sg_err *err)
{
    static const char *const pk[] = {"p50", "p90", "p99", "p999", "mean"};
    json_t *lat = json_object_get(json_object_get(pred, "latency"), "latency_ns");
    for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++) {
        json_t *v = json_object_get(lat, pk[i]);
        if (v && !json_is_null(v) && !sg_compare_latency_ok(v))
            return sg_errf(err, SG_EINPUT,
                           "%s: latency.latency_ns.%s is not a latency (a positive number of "
                           "nanoseconds); not recorded",
                           path, pk[i]);
    }
    return SG_OK;
}

sg_status sg_registry_record_run(sg_registry *reg, const char *report_path, EVP_PKEY *pub,
                           const char *model, int64_t want_version, json_t **run, sg_err *err)
{
    if (run) *run = NULL;
    uint8_t *env = NULL;
    size_t len = 0;
    int rc = sg_read_file(report_path, SG_DSSE_MAX_ENVELOPE, &env, &len, err);
    if (rc) return rc;
    char report_sha[65], sha[65] = "";
    sg_sha256_hex(env, len, report_sha);
    sg_report_info info;
    memset(&info, 0, sizeof info);
    if (pub) {
        rc = sg_report_verify(env, len, pub, NULL, &info, err);
        if (rc == SG_EREFUSED) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            rc = sg_errf(err, SG_EREFUSED, "%s does not verify with the given public key: %s",
                         report_path, why);
        }
        if (!rc) memcpy(sha, info.subject_sha256, 65);
    } else {
        /* Verify before parse: the report must verify against some signer key in the registry
           before its statement names the version; then against that model's own signers. */
        char hint[65];
        reg_report_keyid_hint(env, len, hint);
        rc = reg_verify_with_signers(reg, NULL, *hint ? hint : NULL, env, len, &info, err);
        if (rc) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            sg_errf(err, rc, "%s: %s", report_path, why);
        }
        if (!rc) memcpy(sha, info.subject_sha256, 65);
    }
    char name[REG_NAME_MAX], stage[REG_NAME_MAX];
    int64_t version = 0, id = 0;
    if (!rc) rc = find_version(reg, sha, model, want_version, name, &version, stage, err);
    if (!rc && !pub) {
        char verified_by[65]; /* info is cleared before each key is tried */
        snprintf(verified_by, sizeof verified_by, "%s", info.key_id);
        rc = reg_verify_with_signers(reg, name, verified_by, env, len, &info, err);
    }
    if (!rc && strcmp(info.subject_sha256, sha))
        rc = sg_errf(err, SG_EREFUSED, "%s: the verified subject differs from the one looked up",
                     report_path);
    /* As a transition does: a report gated against another registry (or a log since cut
       back) is not a run of this one's version. */
    if (!rc && (rc = reg_report_head_check(reg, info.statement, err)) != SG_OK) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        sg_errf(err, rc, "%s: %s", report_path, why);
    }
    json_t *pred = json_object_get(info.statement, "predicate");
    if (!rc) rc = check_latencies(report_path, pred, err);
    if (!rc)
        rc = insert_run(reg, name, version, stage, pred, &info, report_sha, report_path, &id, err);
    if (!rc && run && !(*run = load_run(reg, id, err))) rc = SG_EINTERNAL;
    sg_report_info_clear(&info);
    free(env);
    return rc;
}

json_t *sg_registry_runs(sg_registry *reg, const char *model, const sg_runs_filter *f, sg_err *err)
{
    reg_model m;
    if (reg_model_load(reg, model, &m, err)) return NULL;
    char sql[768];
    /* The newest `limit` runs, then returned oldest first for charts and "previous run" logic. */
    snprintf(sql, sizeof sql,
             "SELECT * FROM (%s WHERE model_name = ?1 AND (CAST(?2 AS BIGINT) = 0 OR version = "
             "CAST(?2 AS BIGINT))"
             " AND (CAST(?3 AS TEXT) IS NULL OR fingerprint = ?3) ORDER BY run_at DESC, id DESC "
             "LIMIT ?4) AS newest"
             " ORDER BY run_at, id",
             run_cols);
    reg_stmt *st;
    if (reg_prepare(reg, sql, &st, err)) return NULL;
    reg_bind_text(st, 1, model);
    reg_bind_int64(st, 2, f ? f->version : 0);
    if (f && f->fingerprint) reg_bind_text(st, 3, f->fingerprint);
    reg_bind_int64(st, 4, f && f->limit > 0 ? f->limit : INT64_MAX); /* no limit, portably */
    json_t *arr = json_array();
    int s;
    while ((s = reg_step(st)) == REG_ROW)
        json_array_append_new(arr, row_json(st));
    if (s != REG_DONE) {
        reg_db_error(reg, err, "listing runs");
        json_decref(arr);
        arr = NULL;
    }
    reg_finalize(st);
    if (!arr) return NULL;
    json_t *doc = json_object();
    json_object_set_new(doc, "model", json_string(model));
    json_object_set_new(doc, "runs", arr);
    return doc;
}

bool sg_run_verdict_valid(const char *verdict)
{
    static const char *const ok[] = {"regressed", "improved", "unchanged", "first"};
    for (size_t i = 0; verdict && i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(verdict, ok[i])) return true;
    return false;
}

static bool hex64(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++)
        if (!strchr("0123456789abcdef", s[n])) return false;
    return n == 64;
}

sg_status sg_registry_set_run_verdict(sg_registry *reg, const char *model,
                                      const char *report_sha256, const char *verdict, json_t **run,
                                      sg_err *err)
{
    if (run) *run = NULL;
    if (!sg_run_verdict_valid(verdict))
        return sg_errf(err, SG_EINPUT,
                       "verdict '%s' is not one of regressed, improved, unchanged, first",
                       verdict ? verdict : "");
    if (!hex64(report_sha256))
        return sg_errf(err, SG_EINPUT, "report sha256 '%.80s' is not 64 lowercase hex digits",
                       report_sha256);
    reg_model m;
    int rc = reg_model_load(reg, model, &m, err);
    if (rc) return rc;
    reg_stmt *st = NULL;
    rc = reg_begin(reg, err);
    if (!rc)
        rc = reg_prepare(
            reg,
            "UPDATE runs SET verdict = ?1 WHERE model_name = ?2 AND (report_sha256 = ?3 OR"
            " payload_sha256 = ?3)",
            &st, err);
    if (!rc) {
        reg_bind_text(st, 1, verdict);
        reg_bind_text(st, 2, model);
        reg_bind_text(st, 3, report_sha256);
        if (reg_step(st) != REG_DONE)
            rc = reg_db_error(reg, err, "storing a run's verdict");
        else if (reg->ops->changes(reg->store) == 0)
            rc = sg_errf(err, SG_EINPUT,
                         "no run of %s was recorded from a report with sha256:%.16s...", model,
                         report_sha256);
    }
    reg_finalize(st);
    if (reg->in_tx) rc = reg_finish(reg, rc, err);
    if (rc || !run) return rc;
    char sql[512];
    snprintf(sql, sizeof sql, "%s WHERE model_name = ?1 AND (report_sha256 = ?2 OR payload_sha256 = ?2)",
             run_cols);
    if ((rc = reg_prepare(reg, sql, &st, err))) return rc;
    reg_bind_text(st, 1, model);
    reg_bind_text(st, 2, report_sha256);
    if (reg_step(st) == REG_ROW)
        *run = row_json(st);
    else
        rc = reg_db_error(reg, err, "reading the run back");
    reg_finalize(st);
    return rc;
}
