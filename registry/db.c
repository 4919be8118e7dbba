/*
 * Registry database: opening, schema migrations and write transactions.
 *
 * Concurrency model: several processes may open the same file. WAL lets readers run while
 * one writer works; every state change runs inside BEGIN IMMEDIATE, which takes the write
 * lock before the first read, so the checks a gate makes and the writes that follow see
 * the same state (no check-then-act race between processes). A busy timeout makes later
 * writers wait instead of failing. A process killed inside a transaction leaves nothing:
 * the uncommitted WAL frames are ignored on the next open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry_internal.h"

/* 'SGRG': marks the file as a stagegate registry so a foreign SQLite file is refused. */
#define REG_APPLICATION_ID 0x53475247
#define REG_BUSY_TIMEOUT_MS 15000

/* Migration i takes the schema from version i to i + 1. Plain SQL types and constraints so
 * the same data model fits PostgreSQL; only the append-only triggers use SQLite syntax. */
static const char *const migrations[] = {
    "CREATE TABLE registered_models ("
    " name TEXT PRIMARY KEY,"
    " description TEXT NOT NULL DEFAULT '',"
    " require_approval INTEGER NOT NULL DEFAULT 0 CHECK (require_approval IN (0, 1)),"
    " max_report_age_days INTEGER NOT NULL CHECK (max_report_age_days > 0),"
    " report_stage TEXT NOT NULL,"
    " created_by TEXT NOT NULL,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL);"
    "CREATE TABLE model_stages ("
    " model_name TEXT NOT NULL REFERENCES registered_models (name),"
    " stage TEXT NOT NULL,"
    " position INTEGER NOT NULL,"
    " requires_report INTEGER NOT NULL DEFAULT 0,"
    " requires_promoter INTEGER NOT NULL DEFAULT 0,"
    " requires_validation INTEGER NOT NULL DEFAULT 0,"
    " requires_approval INTEGER NOT NULL DEFAULT 0,"
    " multi_version INTEGER NOT NULL DEFAULT 1,"
    " PRIMARY KEY (model_name, stage),"
    " UNIQUE (model_name, position));"
    "CREATE TABLE model_transitions ("
    " model_name TEXT NOT NULL,"
    " from_stage TEXT NOT NULL,"
    " to_stage TEXT NOT NULL,"
    " PRIMARY KEY (model_name, from_stage, to_stage),"
    " FOREIGN KEY (model_name, from_stage) REFERENCES model_stages (model_name, stage),"
    " FOREIGN KEY (model_name, to_stage) REFERENCES model_stages (model_name, stage));"
    "CREATE TABLE model_keys ("
    " model_name TEXT NOT NULL REFERENCES registered_models (name),"
    " role TEXT NOT NULL CHECK (role IN ('signer', 'promoter', 'approver')),"
    " stage TEXT NOT NULL DEFAULT '',"
    " key_id TEXT NOT NULL,"
    " public_pem TEXT NOT NULL,"
    " PRIMARY KEY (model_name, role, stage, key_id));"
    "CREATE TABLE model_tags ("
    " model_name TEXT NOT NULL REFERENCES registered_models (name),"
    " tag_key TEXT NOT NULL,"
    " tag_value TEXT NOT NULL,"
    " PRIMARY KEY (model_name, tag_key));"
    "CREATE TABLE model_versions ("
    " model_name TEXT NOT NULL REFERENCES registered_models (name),"
    " version INTEGER NOT NULL CHECK (version > 0),"
    " artifact_path TEXT NOT NULL,"
    " artifact_sha256 TEXT NOT NULL,"
    " created_by TEXT NOT NULL,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL,"
    " stage TEXT NOT NULL,"
    " stage_exclusive INTEGER NOT NULL DEFAULT 0 CHECK (stage_exclusive IN (0, 1)),"
    " PRIMARY KEY (model_name, version),"
    " FOREIGN KEY (model_name, stage) REFERENCES model_stages (model_name, stage));"
    /* At most one version per model in a single-version stage (Production by default). */
    "CREATE UNIQUE INDEX model_versions_one_per_exclusive_stage"
    " ON model_versions (model_name, stage) WHERE stage_exclusive = 1;"
    "CREATE TABLE version_tags ("
    " model_name TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " tag_key TEXT NOT NULL,"
    " tag_value TEXT NOT NULL,"
    " PRIMARY KEY (model_name, version, tag_key),"
    " FOREIGN KEY (model_name, version) REFERENCES model_versions (model_name, version));"
    "CREATE TABLE aliases ("
    " model_name TEXT NOT NULL,"
    " alias TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " PRIMARY KEY (model_name, alias),"
    " FOREIGN KEY (model_name, version) REFERENCES model_versions (model_name, version));"
    "CREATE TABLE validations ("
    " id INTEGER PRIMARY KEY,"
    " model_name TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " stage TEXT NOT NULL,"
    " result TEXT NOT NULL CHECK (result IN ('PASSED', 'FAILED')),"
    " subject_sha256 TEXT NOT NULL,"
    " signer_key_id TEXT NOT NULL,"
    " report_sha256 TEXT NOT NULL,"
    " report_timestamp TEXT NOT NULL,"
    " recorded_at TEXT NOT NULL,"
    " FOREIGN KEY (model_name, version) REFERENCES model_versions (model_name, version));"
    "CREATE TABLE approvals ("
    " id INTEGER PRIMARY KEY,"
    " model_name TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " approver_key_id TEXT NOT NULL,"
    " decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),"
    " comment TEXT NOT NULL DEFAULT '',"
    " created_at TEXT NOT NULL,"
    " FOREIGN KEY (model_name, version) REFERENCES model_versions (model_name, version));"
    "CREATE TABLE request_nonces ("
    " nonce TEXT PRIMARY KEY,"
    " key_id TEXT NOT NULL,"
    " created_at TEXT NOT NULL);"
    "CREATE TABLE audit_log ("
    " seq INTEGER PRIMARY KEY,"
    " model_name TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " action TEXT NOT NULL,"
    " from_stage TEXT NOT NULL,"
    " to_stage TEXT NOT NULL,"
    " actor_key_id TEXT NOT NULL,"
    " evidence_sha256 TEXT NOT NULL,"
    " detail TEXT NOT NULL,"
    " request_text TEXT NOT NULL,"
    " signature TEXT NOT NULL,"
    " created_at TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL,"
    " hash TEXT NOT NULL);"
    /* The head records the last event so deleting the newest events is detected too. */
    "CREATE TABLE audit_head ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " seq INTEGER NOT NULL,"
    " hash TEXT NOT NULL);"
    "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" REG_ZERO_HASH "');"
    "CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
    "CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
    /* 1 -> 2: run history for nightly regression runs (registry/runs.c). */
    "CREATE TABLE runs ("
    " id INTEGER PRIMARY KEY,"
    " model_name TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " stage TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL,"
    " machine TEXT NOT NULL,"
    " run_at TEXT NOT NULL,"
    " recorded_at TEXT NOT NULL,"
    " report_sha256 TEXT NOT NULL,"
    " report_path TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " signer_key_id TEXT NOT NULL,"
    " scenario TEXT NOT NULL,"
    " figures TEXT NOT NULL,"
    " UNIQUE (model_name, report_sha256),"
    " FOREIGN KEY (model_name, version) REFERENCES model_versions (model_name, version));"
    "CREATE INDEX runs_by_model_time ON runs (model_name, run_at);",
    /* 2 -> 3: the one-per-stage index only holds while stage_exclusive is true for every row
     * in a single-version stage, so the flag may never disagree with the stage's policy (a
     * direct "UPDATE ... SET stage = 'Production'" would otherwise slip past the index). */
    "CREATE TRIGGER model_versions_exclusive_insert BEFORE INSERT ON model_versions"
    " WHEN NEW.stage_exclusive IS NOT (SELECT 1 - multi_version FROM model_stages"
    "  WHERE model_name = NEW.model_name AND stage = NEW.stage)"
    " BEGIN SELECT RAISE(ABORT, 'stage_exclusive must match the stage''s policy'); END;"
    "CREATE TRIGGER model_versions_exclusive_update BEFORE UPDATE OF stage, stage_exclusive"
    " ON model_versions WHEN NEW.stage_exclusive IS NOT (SELECT 1 - multi_version FROM"
    "  model_stages WHERE model_name = NEW.model_name AND stage = NEW.stage)"
    " BEGIN SELECT RAISE(ABORT, 'stage_exclusive must match the stage''s policy'); END;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == SG_REGISTRY_SCHEMA_VERSION,
               "one migration per schema version");

const char *sg_registry_path(const char *db_opt)
{
    if (db_opt && *db_opt) return db_opt;
    const char *env = getenv(SG_REGISTRY_ENV);
    if (env && *env) return env;
    return SG_REGISTRY_DEFAULT_PATH;
}

int reg_db_error(sg_registry *reg, sg_err *err, const char *what)
{
    int code = sqlite3_extended_errcode(reg->db) & 0xff;
    const char *msg = sqlite3_errmsg(reg->db);
    switch (code) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return sg_errf(err, SG_EINPUT, "registry %s is corrupt or not a database (%s: %s)",
                       reg->path, what, msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return sg_errf(err, SG_EIO, "registry %s stayed locked by another process for %d s (%s)",
                       reg->path, REG_BUSY_TIMEOUT_MS / 1000, what);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_FULL:
        return sg_errf(err, SG_EIO, "registry %s: %s failed: %s", reg->path, what, msg);
    default:
        return sg_errf(err, SG_EINTERNAL, "registry %s: %s failed: %s", reg->path, what, msg);
    }
}

int reg_exec(sg_registry *reg, const char *sql, sg_err *err)
{
    if (sqlite3_exec(reg->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return reg_db_error(reg, err, "query");
    return SG_OK;
}

int reg_prepare(sg_registry *reg, const char *sql, sqlite3_stmt **st, sg_err *err)
{
    if (sqlite3_prepare_v2(reg->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        int rc = reg_db_error(reg, err, "prepare");
        if (reg->read_rc == SG_OK) reg->read_rc = rc;
        return rc;
    }
    return SG_OK;
}

bool reg_row(sg_registry *reg, sqlite3_stmt *st, sg_err *err)
{
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) return true;
    if (s != SQLITE_DONE && reg->read_rc == SG_OK) reg->read_rc = reg_db_error(reg, err, "read");
    return false;
}

void reg_read_start(sg_registry *reg)
{
    reg->read_rc = SG_OK;
}

json_t *reg_read_end(sg_registry *reg, json_t *doc)
{
    if (reg->read_rc == SG_OK) return doc;
    json_decref(doc);
    return NULL;
}

int reg_begin(sg_registry *reg, sg_err *err)
{
    SG_ASSERT(!reg->in_tx);
    reg->read_rc = SG_OK;
    int rc = reg_exec(reg, "BEGIN IMMEDIATE", err);
    if (rc == SG_OK) reg->in_tx = true;
    return rc;
}

int reg_commit(sg_registry *reg, sg_err *err)
{
    SG_ASSERT(reg->in_tx);
    int rc = reg_exec(reg, "COMMIT", err);
    if (rc != SG_OK) {
        reg_rollback(reg);
        return rc;
    }
    reg->in_tx = false;
    return SG_OK;
}

void reg_rollback(sg_registry *reg)
{
    if (!reg->in_tx) return;
    sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
    reg->in_tx = false;
}

int reg_finish(sg_registry *reg, int rc, sg_err *err)
{
    if (rc != SG_OK) {
        reg_rollback(reg);
        return rc;
    }
    reg_test_pause("commit");
    return reg_commit(reg, err);
}

void reg_test_pause(const char *action)
{
    /* Lets the crash test kill a process while its transaction is open. */
    const char *want = getenv("STAGEGATE_REGISTRY_TEST_PAUSE");
    if (!want || strcmp(want, action) != 0) return;
    fprintf(stderr, "stagegate: test pause inside transaction (%s)\n", action);
    fflush(stderr);
    struct timespec ts = {30, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void reg_now_utc(char out[32])
{
    time_t t = (time_t)reg_now_epoch();
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t reg_now_epoch(void)
{
    return (int64_t)time(NULL);
}

int reg_parse_utc(const char *s, int64_t *epoch)
{
    /* RFC 3339: date 'T' time, optional fraction, then Z or +hh:mm / -hh:mm. */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) return -1;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
        off = (hh * 60L + mm) * 60L * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    *epoch = (int64_t)timegm(&tm) - off;
    return 0;
}

const char *reg_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

bool reg_valid_name(const char *s)
{
    /* Names appear in URIs (models:/NAME/STAGE, NAME@ALIAS): keep them unambiguous. */
    size_t n = strlen(s);
    if (n == 0 || n >= REG_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static int pragma_int(sg_registry *reg, const char *sql, int64_t *out, sg_err *err)
{
    sqlite3_stmt *st;
    int rc = reg_prepare(reg, sql, &st, err);
    if (rc != SG_OK) return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = reg_db_error(reg, err, sql);
    } else {
        *out = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return rc;
}

static int migrate(sg_registry *reg, sg_err *err)
{
    int64_t ver = 0, app = 0, objects = 0;
    int rc = pragma_int(reg, "PRAGMA user_version", &ver, err);
    if (rc == SG_OK) rc = pragma_int(reg, "PRAGMA application_id", &app, err);
    if (rc != SG_OK) return rc;
    if (ver == SG_REGISTRY_SCHEMA_VERSION && app == REG_APPLICATION_ID) return SG_OK;
    if (ver > SG_REGISTRY_SCHEMA_VERSION && app == REG_APPLICATION_ID)
        return sg_errf(
            err, SG_EINPUT,
            "registry %s has schema version %lld, newer than this stagegate supports (%d)",
            reg->path, (long long)ver, SG_REGISTRY_SCHEMA_VERSION);
    if ((rc = reg_begin(reg, err)) != SG_OK) return rc;
    /* Re-read under the write lock: another process may have migrated meanwhile. */
    rc = pragma_int(reg, "PRAGMA user_version", &ver, err);
    if (rc == SG_OK) rc = pragma_int(reg, "PRAGMA application_id", &app, err);
    if (rc == SG_OK) rc = pragma_int(reg, "SELECT count(*) FROM sqlite_master", &objects, err);
    if (rc == SG_OK && app != REG_APPLICATION_ID && (app != 0 || objects != 0))
        rc = sg_errf(err, SG_EINPUT, "%s is an SQLite database but not a stagegate registry",
                     reg->path);
    for (int64_t v = ver; rc == SG_OK && v < SG_REGISTRY_SCHEMA_VERSION; v++) {
        if (sqlite3_exec(reg->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            rc = reg_db_error(reg, err, "schema migration");
            break;
        }
        char sql[128];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld; PRAGMA application_id = %d",
                 (long long)(v + 1), REG_APPLICATION_ID);
        rc = reg_exec(reg, sql, err);
    }
    return reg_finish(reg, rc, err);
}

int sg_registry_open(const char *path, bool create, sg_registry **out, sg_err *err)
{
    *out = NULL;
    struct stat stb;
    if (stat(path, &stb) != 0) {
        if (errno != ENOENT || !create)
            return sg_errf(err, SG_EINPUT, "registry %s: %s%s", path, strerror(errno),
                           errno == ENOENT
                               ? " (create a model first, or pass --db / set " SG_REGISTRY_ENV ")"
                               : "");
    } else if (!S_ISREG(stb.st_mode)) {
        return sg_errf(err, SG_EINPUT, "registry %s is not a regular file", path);
    } else if (stb.st_size == 0 && !create) {
        /* SQLite would take an empty file as a new database; a read must not create one. */
        return sg_errf(err, SG_EINPUT,
                       "registry %s is an empty file, not a stagegate registry (create a model "
                       "first)",
                       path);
    } else if (access(path, R_OK) != 0) {
        return sg_errf(err, SG_EINPUT, "registry %s is not readable: %s", path, strerror(errno));
    }
    sg_registry *reg = calloc(1, sizeof *reg);
    if (!reg) return sg_errf(err, SG_ENOMEM, "out of memory opening registry %s", path);
    snprintf(reg->path, sizeof reg->path, "%s", path);
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    int rc = SG_OK;
    if (sqlite3_open_v2(path, &reg->db, flags, NULL) != SQLITE_OK) {
        rc = sg_errf(err, SG_EINPUT, "registry %s cannot be opened: %s", path,
                     reg->db ? sqlite3_errmsg(reg->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(reg->db, REG_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(reg->db, 1);
    int64_t ignored;
    /* The first read is where a corrupt or foreign file shows itself. */
    if ((rc = pragma_int(reg, "PRAGMA application_id", &ignored, err)) != SG_OK) {
        if (rc != SG_EIO)
            rc = sg_errf(err, SG_EINPUT, "registry %s is corrupt or not a database (%s)", path,
                         sqlite3_errmsg(reg->db));
        goto fail;
    }
    if ((rc = reg_exec(reg,
                       "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                       "PRAGMA foreign_keys = ON",
                       err)) != SG_OK)
        goto fail;
    if ((rc = migrate(reg, err)) != SG_OK) goto fail;
    *out = reg;
    return SG_OK;
fail:
    sg_registry_close(reg);
    return rc;
}

void sg_registry_close(sg_registry *reg)
{
    if (!reg) return;
    reg_rollback(reg);
    sqlite3_close_v2(reg->db);
    free(reg);
}
