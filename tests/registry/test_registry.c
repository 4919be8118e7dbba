/* Registry unit tests: schema and migrations, the single-Production constraint, gates,
 * signed-request checks, and the audit chain (format re-derived independently).
 * SG_REG_BACKEND=postgresql runs them on a fresh database per test in the cluster that
 * $SG_PG_STATE describes (tests/registry/pg_cluster.sh); otherwise on SQLite files. */
#define _GNU_SOURCE
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "registry/registry_internal.h"
#include "stagegate/keys.h"
#include "test_registry_util.h"

/* A second connection to the registry's database, as an attacker with write access to it
 * has: the tests tamper with the database behind the registry's back through it. */
static bool on_pg;
static sqlite3 *raw_conn;
static PGconn *raw_pg;
static char raw_msg[512];
static bool raw_unique; /* the last raw_exec failed on a uniqueness constraint */
static char pg_host[512], pg_user[64], pg_db[64];
static int pg_serial;

/* Runs SQL on the attacker's connection: 0, or -1 with raw_msg and raw_unique set. */
static int raw_exec(const sg_registry *reg, const char *sql)
{
    raw_msg[0] = '\0';
    raw_unique = false;
    if (on_pg) {
        if (!raw_pg) raw_pg = PQconnectdb(reg->path);
        assert_int_equal(PQstatus(raw_pg), CONNECTION_OK);
        PGresult *res = PQexec(raw_pg, sql);
        int st = PQresultStatus(res);
        int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
        if (rc) {
            snprintf(raw_msg, sizeof raw_msg, "%s", PQresultErrorMessage(res));
            const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            raw_unique = code && !strcmp(code, "23505");
        }
        PQclear(res);
        return rc;
    }
    if (!raw_conn) {
        assert_int_equal(sqlite3_open(reg->path, &raw_conn), SQLITE_OK);
        sqlite3_busy_timeout(raw_conn, 5000);
        sqlite3_extended_result_codes(raw_conn, 1);
    }
    if (sqlite3_exec(raw_conn, sql, NULL, NULL, NULL) == SQLITE_OK) return 0;
    snprintf(raw_msg, sizeof raw_msg, "%s", sqlite3_errmsg(raw_conn));
    raw_unique = sqlite3_extended_errcode(raw_conn) == SQLITE_CONSTRAINT_UNIQUE;
    return -1;
}

/* NAME=VALUE from the cluster's state file (values without shell quoting). */
static void state_value(const char *text, const char *name, char *out, size_t n)
{
    char key[32];
    snprintf(key, sizeof key, "%s=", name);
    const char *p = strstr(text, key);
    assert_non_null(p);
    p += strlen(key);
    size_t len = strcspn(p, "\n");
    assert_true(len < n);
    memcpy(out, p, len);
    out[len] = '\0';
}

static void pg_admin(const char *sql)
{
    char conninfo[700];
    snprintf(conninfo, sizeof conninfo, "host=%s user=%s dbname=postgres", pg_host, pg_user);
    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
}

/* The registry URI for a test: a file in dir, or a new database in the cluster. */
static void test_db(const char *dir, char *out, size_t n)
{
    if (!on_pg) {
        snprintf(out, n, "%s/r.db", dir);
        return;
    }
    if (!pg_host[0]) {
        const char *state = getenv("SG_PG_STATE");
        uint8_t *text = NULL;
        size_t len = 0;
        sg_err err;
        if (!state || sg_read_file(state, 1 << 16, &text, &len, &err) != SG_OK)
            fail_msg("no PostgreSQL cluster: SG_PG_STATE=%s", state ? state : "(unset)");
        char *t = strndup((const char *)text, len);
        state_value(t, "PG_HOST", pg_host, sizeof pg_host);
        state_value(t, "PG_USER", pg_user, sizeof pg_user);
        free(t);
        free(text);
    }
    snprintf(pg_db, sizeof pg_db, "sgunit_%d_%d", (int)getpid(), ++pg_serial);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", pg_db);
    pg_admin(sql);
    snprintf(out, n, "postgresql://%s@/%s?host=%s", pg_user, pg_db, pg_host);
}

typedef struct {
    char dir[512], db[1200];
    char signer_key[600], signer_pub[600], alice_key[600], alice_pub[600], bob_key[600],
        bob_pub[600];
    char m1[600], m2[600];
    sg_registry *reg;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    tu_tmpdir(f->dir);
    test_db(f->dir, f->db, sizeof f->db);
    tu_keygen(f->dir, "signer", f->signer_key, f->signer_pub);
    tu_keygen(f->dir, "alice", f->alice_key, f->alice_pub);
    tu_keygen(f->dir, "bob", f->bob_key, f->bob_pub);
    tu_file(f->dir, "m1.bin", "model one\n", f->m1);
    tu_file(f->dir, "m2.bin", "model two\n", f->m2);
    sg_err err;
    assert_int_equal(sg_registry_open(f->db, true, &f->reg, &err), SG_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sg_registry_close(f->reg);
    if (raw_conn) sqlite3_close(raw_conn);
    raw_conn = NULL;
    if (raw_pg) PQfinish(raw_pg);
    raw_pg = NULL;
    if (on_pg) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", pg_db);
        pg_admin(sql);
    }
    tu_rm_rf(f->dir);
    free(f);
    return 0;
}

/* A query on the registry's own connection, through its storage backend. */
static int64_t q_int(sg_registry *reg, const char *sql)
{
    reg_stmt *st;
    sg_err err;
    assert_int_equal(reg_prepare(reg, sql, &st, &err), SG_OK);
    assert_int_equal(reg_step(st), REG_ROW);
    int64_t v = reg_col_int64(st, 0);
    reg_finalize(st);
    return v;
}

/* alice promotes to Production, bob approves; approval optional. */
static void make_model(fixture *f, const char *name, bool approval, bool multi_prod)
{
    sg_registry_key_ref signer = {.path = f->signer_pub},
                        prom = {.stage = "Production", .path = f->alice_pub};
    sg_registry_key_ref appr[2] = {{.path = f->bob_pub}, {.path = f->alice_pub}};
    const char *multi[] = {"Production"};
    sg_registry_model_spec sp = {.name = name,
                                 .signers = &signer,
                                 .n_signers = 1,
                                 .promoters = &prom,
                                 .n_promoters = 1,
                                 .approvers = appr,
                                 .n_approvers = 2,
                                 .require_approval = approval,
                                 .multi_stages = multi,
                                 .n_multi = multi_prod ? 1 : 0};
    sg_err err;
    assert_int_equal(sg_registry_create_model(f->reg, &sp, NULL, &err), SG_OK);
}

static int64_t add_version(fixture *f, const char *model, const char *path)
{
    int64_t v = 0;
    sg_err err;
    assert_int_equal(sg_registry_create_version(f->reg, model, path, NULL, &v, &err), SG_OK);
    return v;
}

static void stage_with_report(fixture *f, const char *model, int64_t v, const char *artifact)
{
    char sha[65];
    sg_err err;
    assert_int_equal(sg_sha256_file_hex(artifact, sha, &err), SG_OK);
    char *r = tu_report(f->signer_key, sha, "PASSED", NULL);
    assert_int_equal(
        sg_registry_transition(f->reg, model, v, "Staging", (uint8_t *)r, strlen(r), NULL, &err),
        SG_OK);
    free(r);
}

static int signed_transition(fixture *f, const char *key, const char *model, int64_t v,
                             const char *stage, sg_err *err)
{
    sg_registry_request req;
    assert_int_equal(
        sg_registry_request_sign(f->reg, key, "transition", model, v, stage, "", &req, err), SG_OK);
    int rc = sg_registry_transition(f->reg, model, v, stage, NULL, 0, &req, err);
    sg_registry_request_clear(&req);
    return rc;
}

static int repeat_transition(fixture *f, const char *key, const char *model, int64_t v,
                             const char *stage, bool *unchanged, sg_err *err)
{
    sg_registry_request req;
    assert_int_equal(
        sg_registry_request_sign(f->reg, key, "transition", model, v, stage, "", &req, err), SG_OK);
    int rc = sg_registry_transition_repeat(f->reg, model, v, stage, NULL, 0, &req, unchanged, err);
    sg_registry_request_clear(&req);
    return rc;
}

/* A transition into the stage the version is in: the plain call refuses it; the repeatable
   one confirms it for a caller the move there would have authorized, writing nothing (no
   event, no nonce: verify-log explains every nonce by an event), and refuses anyone else as
   the move would. A real move through it is a plain transition. */
static void test_transition_repeat(void **state)
{
    fixture *f = *state;
    make_model(f, "r", false, false);
    int64_t v1 = add_version(f, "r", f->m1);
    stage_with_report(f, "r", v1, f->m1);
    sg_err err;
    bool unchanged = true;
    assert_int_equal(repeat_transition(f, f->alice_key, "r", v1, "Production", &unchanged, &err),
                     SG_OK);
    assert_false(unchanged);
    assert_int_equal(signed_transition(f, f->alice_key, "r", v1, "Production", &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "v1 is already in Production"));
    const int64_t events = q_int(f->reg, "SELECT count(*) FROM audit_log"),
                  nonces = q_int(f->reg, "SELECT count(*) FROM request_nonces");
    assert_int_equal(repeat_transition(f, f->alice_key, "r", v1, "production", &unchanged, &err),
                     SG_OK);
    assert_true(unchanged);
    unchanged = true;
    assert_int_equal(repeat_transition(f, f->bob_key, "r", v1, "Production", &unchanged, &err),
                     SG_EREFUSED);
    assert_false(unchanged);
    assert_non_null(strstr(err.msg, "is not an authorized promoter for Production"));
    /* unsigned: refused as the move is */
    assert_int_equal(sg_registry_transition_repeat(f->reg, "r", v1, "Production", NULL, 0, NULL,
                                                   &unchanged, &err),
                     SG_EREFUSED);
    assert_int_equal(q_int(f->reg, "SELECT count(*) FROM audit_log"), events);
    assert_int_equal(q_int(f->reg, "SELECT count(*) FROM request_nonces"), nonces);
    json_t *summary = NULL;
    assert_int_equal(sg_registry_verify_log(f->reg, &summary, &err), SG_OK);
    json_decref(summary);
}

/* A tag key or an alias is compared exactly with the signed request's target: "Owner" is
   another tag than "owner" (targets had all compared regardless of case, as stages do). */
static void test_request_tag_case(void **state)
{
    fixture *f = *state;
    make_model(f, "c", false, false);
    int64_t v = add_version(f, "c", f->m1);
    sg_err err;
    char sha[65];
    sg_sha256_hex((const uint8_t *)"me", 2, sha);
    sg_registry_request req;
    assert_int_equal(
        sg_registry_request_sign(f->reg, f->alice_key, "set-tag", "c", v, "Owner", sha, &req, &err),
        SG_OK);
    assert_int_equal(sg_registry_set_tag(f->reg, "c", v, "owner", "me", &req, &err), SG_EREFUSED);
    assert_non_null(strstr(err.msg, "names target 'Owner' but the operation is on 'owner'"));
    assert_int_equal(sg_registry_set_tag(f->reg, "c", v, "Owner", "me", &req, &err), SG_OK);
    sg_registry_request_clear(&req);
    assert_int_equal(sg_registry_request_sign(f->reg, f->alice_key, "set-alias", "c", v, "Champ",
                                              "", &req, &err),
                     SG_OK);
    assert_int_equal(sg_registry_set_alias(f->reg, "c", "champ", v, &req, &err), SG_EREFUSED);
    assert_int_equal(sg_registry_set_alias(f->reg, "c", "Champ", v, &req, &err), SG_OK);
    sg_registry_request_clear(&req);
    /* a stage still compares regardless of case */
    stage_with_report(f, "c", v, f->m1);
    assert_int_equal(sg_registry_request_sign(f->reg, f->alice_key, "transition", "c", v,
                                              "production", "", &req, &err),
                     SG_OK);
    assert_int_equal(sg_registry_transition(f->reg, "c", v, "Production", NULL, 0, &req, &err),
                     SG_OK);
    sg_registry_request_clear(&req);
}

/* Deletes model m's tag k of version v and alias champion "if present", each of which must
   answer SG_OK with present as want (the flag starts at its opposite). */
static void delete_both_if_present(fixture *f, int64_t v, bool want)
{
    sg_err err;
    bool present = !want;
    assert_int_equal(sg_registry_delete_tag_if_present(f->reg, "m", v, "k", NULL, &present, &err),
                     SG_OK);
    assert_int_equal(present, want);
    present = !want;
    assert_int_equal(
        sg_registry_delete_alias_if_present(f->reg, "m", "champion", NULL, &present, &err), SG_OK);
    assert_int_equal(present, want);
}

/* Deleting a tag or an alias that is not there "if present": SG_OK, present false, and
   nothing recorded (the server's MLflow deletes had recognised the plain delete's error by
   its message text). One that is there is deleted and recorded as a plain delete is; a
   version that does not exist is still an error, and the plain deletes still refuse. */
static void test_delete_if_present(void **state)
{
    fixture *f = *state;
    make_model(f, "m", false, false);
    int64_t v = add_version(f, "m", f->m1);
    sg_err err;
    const int64_t events0 = q_int(f->reg, "SELECT count(*) FROM audit_log");
    delete_both_if_present(f, v, false);
    assert_int_equal(q_int(f->reg, "SELECT count(*) FROM audit_log"), events0);
    /* the plain deletes refuse what is not there */
    assert_int_equal(sg_registry_set_tag(f->reg, "m", v, "k", NULL, NULL, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "has no tag 'k'"));
    assert_int_equal(sg_registry_set_alias(f->reg, "m", "champion", 0, NULL, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "has no alias 'champion'"));
    /* what is there is deleted, with its event */
    assert_int_equal(sg_registry_set_tag(f->reg, "m", v, "k", "x", NULL, &err), SG_OK);
    assert_int_equal(sg_registry_set_alias(f->reg, "m", "champion", v, NULL, &err), SG_OK);
    const int64_t events1 = q_int(f->reg, "SELECT count(*) FROM audit_log");
    delete_both_if_present(f, v, true);
    assert_int_equal(q_int(f->reg, "SELECT count(*) FROM audit_log"), events1 + 2);
    assert_int_equal(q_int(f->reg, "SELECT count(*) FROM version_tags"), 0);
    assert_int_equal(q_int(f->reg, "SELECT count(*) FROM aliases"), 0);
    /* a version or model that does not exist is an error, not "absent" */
    bool present;
    assert_int_equal(
        sg_registry_delete_tag_if_present(f->reg, "m", v + 1, "k", NULL, &present, &err),
        SG_EINPUT);
    assert_int_equal(
        sg_registry_delete_alias_if_present(f->reg, "nope", "champion", NULL, &present, &err),
        SG_EINPUT);
    json_t *summary = NULL;
    assert_int_equal(sg_registry_verify_log(f->reg, &summary, &err), SG_OK);
    json_decref(summary);
}

/* A model's lookup of uploaded reports goes by the ids of its signer keys as verification
   computes them from the keys, not by model_keys.key_id: a registry made before EC keys were
   read in one point form kept another id for a compressed key there, and every upload
   (listed under the key's own id) had been missed, a newer failure with them. */
static void test_report_lookup_by_key_own_id(void **state)
{
    fixture *f = *state;
    make_model(f, "m", false, false);
    add_version(f, "m", f->m1);
    char sha[65], stored[65], found[65];
    sg_err err;
    assert_int_equal(sg_sha256_file_hex(f->m1, sha, &err), SG_OK);
    char *r = tu_report(f->signer_key, sha, "PASSED", NULL);
    assert_int_equal(sg_registry_put_report(f->reg, (uint8_t *)r, strlen(r), "up", stored, &err),
                     SG_OK);
    free(r);
    assert_int_equal(raw_exec(f->reg,
                              "UPDATE model_keys SET key_id = '"
                              "0000000000000000000000000000000000000000000000000000000000000000'"
                              " WHERE model_name = 'm' AND role = 'signer'"),
                     0);
    uint8_t *body = NULL;
    size_t len = 0;
    sg_status rc = sg_registry_find_report(f->reg, "m", sha, &body, &len, found, &err);
    if (rc != SG_OK) fail_msg("lookup: %s", err.msg);
    assert_string_equal(found, stored);
    free(body);
}

static void test_schema(void **state)
{
    fixture *f = *state;
    const char *tables =
        " ('registered_models', 'model_stages', 'model_transitions', 'model_keys',"
        " 'model_tags', 'model_versions', 'version_tags', 'aliases', 'validations',"
        " 'approvals', 'request_nonces', 'audit_log', 'audit_head')";
    char sql[768];
    if (on_pg) {
        assert_int_equal(q_int(f->reg, "SELECT schema_version FROM stagegate_registry"),
                         SG_REGISTRY_SCHEMA_VERSION);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM information_schema.tables WHERE table_schema ="
                 " current_schema() AND table_name IN %s",
                 tables);
        assert_int_equal(q_int(f->reg, sql), 13);
        assert_int_equal(
            q_int(f->reg, "SELECT count(*) FROM pg_indexes WHERE indexname ="
                          " 'model_versions_one_per_exclusive_stage' AND indexdef LIKE '%WHERE%'"),
            1);
    } else {
        assert_int_equal(q_int(f->reg, "PRAGMA user_version"), SG_REGISTRY_SCHEMA_VERSION);
        assert_int_equal(q_int(f->reg, "PRAGMA foreign_keys"), 1);
        /* Every table of schema version 1 exists (later migrations may add more). */
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN %s", tables);
        assert_int_equal(q_int(f->reg, sql), 13);
        assert_int_equal(
            q_int(f->reg,
                  "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
                  " name = 'model_versions_one_per_exclusive_stage' AND sql LIKE '%WHERE%'"),
            1);
        assert_int_equal(q_int(f->reg, "PRAGMA application_id"), 0x53475247);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_open(f->reg->path, &raw_conn), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(raw_conn, "PRAGMA journal_mode", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
    }
    /* Reopening an up-to-date registry migrates nothing and succeeds. */
    sg_registry *again = NULL;
    sg_err err;
    assert_int_equal(sg_registry_open(f->db, false, &again, &err), SG_OK);
    sg_registry_close(again);
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    if (on_pg) skip(); /* a server's faults: registry_pg_faults */
    sg_registry *r = NULL;
    sg_err err;
    char p[600];
    snprintf(p, sizeof p, "%s/absent.db", f->dir);
    assert_int_equal(sg_registry_open(p, false, &r, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "absent.db"));
    tu_file(f->dir, "junk.db",
            "this is not an sqlite database, not at all, no........................"
            "................................................................",
            p);
    assert_int_equal(sg_registry_open(p, false, &r, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "junk.db"));
    snprintf(p, sizeof p, "%s/foreign.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(sg_registry_open(p, false, &r, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "not a stagegate registry"));
    assert_null(r);
}

static void test_single_production_constraint(void **state)
{
    fixture *f = *state;
    make_model(f, "m", false, false);
    add_version(f, "m", f->m1);
    add_version(f, "m", f->m2);
    /* Bypassing the API: the partial unique index still refuses a second exclusive Production row.
     */
    assert_int_equal(raw_exec(f->reg,
                              "UPDATE model_versions SET stage = 'Production',"
                              " stage_exclusive = 1 WHERE model_name = 'm' AND version = 1"),
                     0);
    assert_int_equal(raw_exec(f->reg,
                              "UPDATE model_versions SET stage = 'Production',"
                              " stage_exclusive = 1 WHERE model_name = 'm' AND version = 2"),
                     -1);
    assert_true(raw_unique);
    /* Nor can a direct update leave the flag behind to slip past the index. */
    assert_int_equal(raw_exec(f->reg, "UPDATE model_versions SET stage = 'Production'"
                                      " WHERE model_name = 'm' AND version = 2"),
                     -1);
    assert_non_null(strstr(raw_msg, "stage_exclusive must match"));
    assert_int_equal(q_int(f->reg, "SELECT count(*) FROM model_versions WHERE model_name = 'm'"
                                   " AND stage = 'Production'"),
                     1);
    /* A model whose policy permits several Production versions keeps both. */
    make_model(f, "multi", false, true);
    int64_t a = add_version(f, "multi", f->m1), b = add_version(f, "multi", f->m2);
    stage_with_report(f, "multi", a, f->m1);
    stage_with_report(f, "multi", b, f->m2);
    sg_err err;
    assert_int_equal(signed_transition(f, f->alice_key, "multi", a, "Production", &err), SG_OK);
    assert_int_equal(signed_transition(f, f->alice_key, "multi", b, "Production", &err), SG_OK);
    assert_int_equal(q_int(f->reg, "SELECT count(*) FROM model_versions WHERE model_name = 'multi'"
                                   " AND stage = 'Production'"),
                     2);
}

static void test_gates(void **state)
{
    fixture *f = *state;
    sg_err err;
    make_model(f, "g", true, false);
    int64_t v1 = add_version(f, "g", f->m1), v2 = add_version(f, "g", f->m2);
    /* Production straight from None is not a transition the default policy allows. */
    assert_int_equal(signed_transition(f, f->alice_key, "g", v1, "Production", &err), SG_EREFUSED);
    assert_non_null(strstr(err.msg, "does not allow None -> Production"));
    /* v1's report on v2 is refused. */
    char sha1[65];
    assert_int_equal(sg_sha256_file_hex(f->m1, sha1, &err), SG_OK);
    char *r1 = tu_report(f->signer_key, sha1, "PASSED", NULL);
    assert_int_equal(
        sg_registry_transition(f->reg, "g", v2, "Staging", (uint8_t *)r1, strlen(r1), NULL, &err),
        SG_EREFUSED);
    assert_non_null(strstr(err.msg, "refused: g v2 -> Staging: report is for artifact"));
    /* A report signed by a key that is not trusted is refused. */
    char *rb = tu_report(f->bob_key, sha1, "PASSED", NULL);
    assert_int_equal(
        sg_registry_transition(f->reg, "g", v1, "Staging", (uint8_t *)rb, strlen(rb), NULL, &err),
        SG_EREFUSED);
    assert_non_null(strstr(err.msg, "does not verify"));
    char *old = tu_report(f->signer_key, sha1, "PASSED", "2001-01-01T00:00:00Z");
    assert_int_equal(
        sg_registry_transition(f->reg, "g", v1, "Staging", (uint8_t *)old, strlen(old), NULL, &err),
        SG_EREFUSED);
    assert_non_null(strstr(err.msg, "older than"));
    assert_int_equal(
        sg_registry_transition(f->reg, "g", v1, "Staging", (uint8_t *)r1, strlen(r1), NULL, &err),
        SG_OK);
    free(r1);
    free(rb);
    free(old);
    /* Refused attempts left nothing: only the successful report is on record. */
    assert_int_equal(q_int(f->reg, "SELECT count(*) FROM validations"), 1);
    /* Production: no approval, self-approval, rejection, then a proper approval. */
    assert_int_equal(signed_transition(f, f->alice_key, "g", v1, "Production", &err), SG_EREFUSED);
    assert_non_null(strstr(err.msg, "no approval on record (model requires approval)"));
    sg_registry_request req;
    assert_int_equal(sg_registry_request_sign(f->reg, f->alice_key, "approve", "g", v1,
                                              "Production", "", &req, &err),
                     SG_OK);
    assert_int_equal(sg_registry_approve(f->reg, "g", v1, false, NULL, &req, &err), SG_OK);
    sg_registry_request_clear(&req);
    assert_int_equal(signed_transition(f, f->alice_key, "g", v1, "Production", &err), SG_EREFUSED);
    assert_non_null(strstr(err.msg, "approver must differ from the promoter"));
    char sha[65];
    sg_sha256_hex((const uint8_t *)"not yet", 7, sha);
    assert_int_equal(sg_registry_request_sign(f->reg, f->bob_key, "reject", "g", v1, "Production",
                                              sha, &req, &err),
                     SG_OK);
    assert_int_equal(sg_registry_approve(f->reg, "g", v1, true, "not yet", &req, &err), SG_OK);
    sg_registry_request_clear(&req);
    assert_int_equal(signed_transition(f, f->alice_key, "g", v1, "Production", &err), SG_EREFUSED);
    assert_non_null(strstr(err.msg, "rejected by approver"));
    assert_int_equal(sg_registry_request_sign(f->reg, f->bob_key, "approve", "g", v1, "Production",
                                              "", &req, &err),
                     SG_OK);
    assert_int_equal(sg_registry_approve(f->reg, "g", v1, false, "", &req, &err), SG_OK);
    sg_registry_request_clear(&req);
    /* bob approves but may not promote */
    assert_int_equal(signed_transition(f, f->bob_key, "g", v1, "Production", &err), SG_EREFUSED);
    assert_non_null(strstr(err.msg, "not an authorized promoter"));
    assert_int_equal(signed_transition(f, f->alice_key, "g", v1, "Production", &err), SG_OK);
    /* Rollback with no earlier Production version fails clearly. */
    int64_t restored, archived;
    assert_int_equal(sg_registry_request_sign(f->reg, f->alice_key, "rollback", "g", 0,
                                              "Production", "", &req, &err),
                     SG_OK);
    assert_int_equal(sg_registry_rollback(f->reg, "g", &req, &restored, &archived, &err),
                     SG_EREFUSED);
    assert_non_null(strstr(err.msg, "no earlier Production version"));
    sg_registry_request_clear(&req);
}

static void test_request_checks(void **state)
{
    fixture *f = *state;
    sg_err err;
    make_model(f, "q", false, false);
    int64_t v1 = add_version(f, "q", f->m1), v2 = add_version(f, "q", f->m2);
    stage_with_report(f, "q", v1, f->m1);
    stage_with_report(f, "q", v2, f->m2);
    sg_registry_request req;
    /* A request signed for v2 does not promote v1. */
    assert_int_equal(sg_registry_request_sign(f->reg, f->alice_key, "transition", "q", v2,
                                              "Production", "", &req, &err),
                     SG_OK);
    assert_int_equal(sg_registry_transition(f->reg, "q", v1, "Production", NULL, 0, &req, &err),
                     SG_EREFUSED);
    assert_non_null(strstr(err.msg, "names version '2'"));
    /* A flipped signature byte fails verification. */
    req.sig[req.sig_len / 2] ^= 1;
    assert_int_equal(sg_registry_transition(f->reg, "q", v2, "Production", NULL, 0, &req, &err),
                     SG_EREFUSED);
    assert_non_null(strstr(err.msg, "does not verify"));
    req.sig[req.sig_len / 2] ^= 1;
    assert_int_equal(sg_registry_transition(f->reg, "q", v2, "Production", NULL, 0, &req, &err),
                     SG_OK);
    sg_registry_request_clear(&req);
    /* The same signed approval is accepted once, then refused as a replay. */
    assert_int_equal(sg_registry_request_sign(f->reg, f->alice_key, "approve", "q", v1,
                                              "Production", "", &req, &err),
                     SG_OK);
    assert_int_equal(sg_registry_approve(f->reg, "q", v1, false, "", &req, &err), SG_OK);
    assert_int_equal(sg_registry_approve(f->reg, "q", v1, false, "", &req, &err), SG_EREFUSED);
    assert_non_null(strstr(err.msg, "replayed nonce"));
    sg_registry_request_clear(&req);
    /* A stale request, correctly signed, is refused. */
    EVP_PKEY *key = NULL;
    assert_int_equal(sg_key_load_private(f->alice_key, &key, &err), SG_OK);
    memset(&req, 0, sizeof req);
    assert_int_equal(sg_key_id(key, req.key_id, &err), SG_OK);
    assert_int_equal(sg_key_public_pem(key, &req.pub_pem, &err), SG_OK);
    assert_true(asprintf(&req.text,
                         "stagegate-registry-request/v1\naction=transition\nmodel=q\nversion=1\n"
                         "target=Production\nevidence=\ntime=2001-01-01T00:00:00Z\n"
                         "nonce=00112233445566778899aabbccddeeff\nkey=%s\n",
                         req.key_id) > 0);
    assert_int_equal(
        sg_sign(key, (uint8_t *)req.text, strlen(req.text), &req.sig, &req.sig_len, &err), SG_OK);
    assert_int_equal(sg_registry_transition(f->reg, "q", v1, "Production", NULL, 0, &req, &err),
                     SG_EREFUSED);
    assert_non_null(strstr(err.msg, "from the registry clock"));
    sg_registry_request_clear(&req);
    EVP_PKEY_free(key);
    assert_int_equal(
        q_int(f->reg, "SELECT count(*) FROM model_versions WHERE stage = 'Production'"), 1);
}

/* Re-derives an event's hash from the documented encoding with plain OpenSSL. */
static void expected_hash(reg_stmt *st, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, "stagegate-audit/v1\n", 19);
    for (int i = 0; i < 13; i++) {
        const char *v = reg_col_text(st, i);
        char len[32];
        snprintf(len, sizeof len, "%zu:", strlen(v));
        EVP_DigestUpdate(ctx, len, strlen(len));
        EVP_DigestUpdate(ctx, v, strlen(v));
        EVP_DigestUpdate(ctx, "\n", 1);
    }
    unsigned char d[32];
    EVP_DigestFinal_ex(ctx, d, NULL);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", d[i]);
}

static void test_audit_chain(void **state)
{
    fixture *f = *state;
    sg_err err;
    make_model(f, "a", false, false);
    int64_t v1 = add_version(f, "a", f->m1);
    add_version(f, "a", f->m2);
    stage_with_report(f, "a", v1, f->m1);
    json_t *sum = NULL;
    assert_int_equal(sg_registry_verify_log(f->reg, &sum, &err), SG_OK);
    /* The changes' 4 events after the registry's own first event, its random id. */
    assert_int_equal(json_integer_value(json_object_get(sum, "events")), 5);
    json_decref(sum);
    reg_stmt *st;
    assert_int_equal(reg_prepare(f->reg,
                                 "SELECT CAST(seq AS TEXT), model_name, CAST(version AS TEXT),"
                                 " action, from_stage, to_stage, actor_key_id, evidence_sha256,"
                                 " detail, request_text, signature, created_at, prev_hash, hash"
                                 " FROM audit_log WHERE seq <= 2 ORDER BY seq",
                                 &st, &err),
                     SG_OK);
    char prev[65] = REG_ZERO_HASH, want[65];
    int rows = 0;
    while (reg_step(st) == REG_ROW) {
        if (rows == 0) { /* the registry's random id, 64 hex digits, and nothing else */
            assert_string_equal(reg_col_text(st, 3), "create-registry");
            assert_int_equal(strlen(reg_col_text(st, 8)), 64);
            assert_int_equal(strspn(reg_col_text(st, 8), "0123456789abcdef"), 64);
            assert_string_equal(reg_col_text(st, 1), "");
        }
        assert_string_equal(reg_col_text(st, 12), prev);
        expected_hash(st, want);
        assert_string_equal(reg_col_text(st, 13), want);
        memcpy(prev, want, 65);
        rows++;
    }
    reg_finalize(st);
    assert_int_equal(rows, 2);
    /* The triggers refuse edits; with them dropped, an edit or a deletion is detected. */
    assert_int_equal(raw_exec(f->reg, "UPDATE audit_log SET detail = 'x' WHERE seq = 2"), -1);
    assert_non_null(strstr(raw_msg, "append-only"));
    assert_int_equal(raw_exec(f->reg, "DELETE FROM audit_log WHERE seq = 2"), -1);
    assert_non_null(strstr(raw_msg, "append-only"));
    assert_int_equal(
        raw_exec(f->reg, on_pg ? "DROP TRIGGER audit_log_append_only_update ON audit_log;"
                                 "DROP TRIGGER audit_log_append_only_delete ON audit_log"
                               : "DROP TRIGGER audit_log_append_only_update;"
                                 "DROP TRIGGER audit_log_append_only_delete"),
        0);
    assert_int_equal(raw_exec(f->reg, "UPDATE audit_log SET detail = 'elsewhere' WHERE seq = 2"),
                     0);
    assert_int_equal(sg_registry_verify_log(f->reg, NULL, &err), SG_EREFUSED);
    assert_non_null(strstr(err.msg, "event 2"));
    assert_int_equal(raw_exec(f->reg, "DELETE FROM audit_log WHERE seq >= 2"), 0);
    assert_int_equal(sg_registry_verify_log(f->reg, NULL, &err), SG_EREFUSED);
    assert_non_null(strstr(err.msg, "head records 5 events but the chain has 1"));
}

int main(void)
{
    const char *backend = getenv("SG_REG_BACKEND");
    on_pg = backend && !strcmp(backend, "postgresql");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_production_constraint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_lookup_by_key_own_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_if_present, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transition_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_tag_case, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
