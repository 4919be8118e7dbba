/*
 * The SQLite backend of the registry's storage seam (store.h).
 *
 * Concurrency model: several processes may open the same file. WAL lets readers run while
 * one writer works; every state change runs inside BEGIN IMMEDIATE, which takes the write
 * lock before the first read, so the checks a gate makes and the writes that follow see
 * the same state (no check-then-act race between processes). A busy handler makes later
 * writers wait instead of failing (busy_wait). A process killed inside a transaction leaves nothing:
 * the uncommitted WAL frames are ignored on the next open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "registry_internal.h"

/* 'SGRG': marks the file as a stagegate registry so a foreign SQLite file is refused. */
#define REG_APPLICATION_ID 0x53475247
#define REG_BUSY_TIMEOUT_MS 15000

struct reg_store {
    sqlite3 *db;
    char path[4096];
    struct timespec busy_since; /* when the current wait for a lock began (busy_wait) */
};

/* Whether path's file system is mounted read-only: then no process can write the file, and
   SQLite may read it as immutable (no -wal or -shm, which it could not create there). */
static bool on_read_only_fs(const char *path)
{
    struct statvfs v;
    return statvfs(path, &v) == 0 && (v.f_flag & ST_RDONLY);
}

/* Whether the directory holding path lets this process create files (the -wal and -shm a
   WAL-mode database needs for any access, read or write, while they do not exist). */
static bool dir_writable(const char *path)
{
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    return access(dirname(d), W_OK) == 0;
}

/* path as an SQLite file: URI with immutable=1 (RFC 3986: '%', '?' and '#' escaped). */
static bool immutable_uri(const char *path, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p && n + 4 < cap; p++)
        n += (size_t)(*p == '%' || *p == '?' || *p == '#' ? snprintf(out + n, cap - n, "%%%02X", *p)
                                                          : snprintf(out + n, cap - n, "%c", *p));
    return n + sizeof "?immutable=1" < cap &&
           snprintf(out + n, cap - n, "?immutable=1") == (int)(sizeof "?immutable=1" - 1);
}

/*
 * Waiting for another connection's lock: retry every half millisecond up to the timeout.
 * SQLite's own busy timeout sleeps longer the longer a connection has waited (up to 100 ms
 * between tries), so a writer that came early sleeps through the moments the lock is free
 * and later writers take it: with 8 concurrent writers that made the p99 of a transition
 * hundreds of milliseconds (scripts/bench_registry.sh). Short, equal retries keep the wait
 * close to the time the lock is actually held, for the cost of a failed lock attempt each.
 */
static int busy_wait(void *arg, int tries)
{
    reg_store *s = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (tries == 0) s->busy_since = now;
    double waited_ms = (double)(now.tv_sec - s->busy_since.tv_sec) * 1e3 +
                       (double)(now.tv_nsec - s->busy_since.tv_nsec) / 1e6;
    if (waited_ms >= REG_BUSY_TIMEOUT_MS) return 0; /* SQLITE_BUSY: "stayed locked" */
    struct timespec pause = {0, 500 * 1000};
    nanosleep(&pause, NULL);
    return 1;
}

typedef struct {
    reg_stmt base;
    sqlite3_stmt *st;
} sqlite_stmt;

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
    /* 3 -> 4: the registry's root of trust (admin keys, and server keys that sign the
     * requests they attest), each model's pinned gate (policy and dataset digests), the
     * bodies of reports, content-addressed, so verify-log can re-verify every gate, and
     * the nightly compare verdict of a run. */
    "CREATE TABLE registry_keys ("
    " key_id TEXT PRIMARY KEY,"
    " role TEXT NOT NULL CHECK (role IN ('admin', 'server')),"
    " public_pem TEXT NOT NULL,"
    " added_at TEXT NOT NULL,"
    " added_by TEXT NOT NULL);"
    "ALTER TABLE registered_models ADD COLUMN policy_sha256 TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE registered_models ADD COLUMN dataset_sha256 TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE reports ("
    " sha256 TEXT PRIMARY KEY,"
    " body TEXT NOT NULL,"
    " received_at TEXT NOT NULL,"
    " received_by TEXT NOT NULL);"
    "ALTER TABLE runs ADD COLUMN verdict TEXT NOT NULL DEFAULT '';",
    /* 4 -> 5: indexes for what every write reads from the log, so its cost inside the write
     * lock does not grow with the log: a version's events (approvals, rollbacks), a model's
     * last configuration event, and whether an admin key was ever added; a model's versions
     * by stage (search by stage, the latest version in each stage); a version's validations
     * and approvals (read by every version document and Production gate); and the digest
     * a stored report names, so the server finds an uploaded report by index ('' in rows
     * stored before: those are still found by their body). */
    "CREATE INDEX audit_log_by_version ON audit_log (model_name, version, seq);"
    "CREATE INDEX audit_log_config_events ON audit_log (model_name, seq)"
    " WHERE action IN ('create-model', 'set-pins');"
    "CREATE INDEX audit_log_admin_keys ON audit_log (seq)"
    " WHERE action = 'add-key' AND to_stage = 'admin';"
    "CREATE INDEX model_versions_by_stage ON model_versions (model_name, stage, version);"
    "CREATE INDEX validations_by_version ON validations (model_name, version);"
    "CREATE INDEX approvals_by_version ON approvals (model_name, version);"
    "ALTER TABLE reports ADD COLUMN subject_sha256 TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX reports_by_subject ON reports (subject_sha256, received_at);",
    /* 5 -> 6: a run is its signed statement, whatever bytes carried it: one envelope
     * re-encoded (URL-safe base64, a trailing newline) had been recorded as another run.
     * Runs recorded before have '' and are not compared. */
    "ALTER TABLE runs ADD COLUMN payload_sha256 TEXT NOT NULL DEFAULT '';"
    "CREATE UNIQUE INDEX runs_by_payload ON runs (model_name, payload_sha256)"
    " WHERE payload_sha256 <> '';",
    /* 6 -> 7: a version's description (MLflow's model-versions/update and create), set by
     * audited set-description events as the model's is after its creation. */
    "ALTER TABLE model_versions ADD COLUMN description TEXT NOT NULL DEFAULT '';",
    /* 7 -> 8: every run's run_at in the one spelling runs.c records (UTC, upper-case T and Z,
     * whole seconds), so that runs sort by time as text: a fraction had sorted before its
     * whole second, an offset or a lower-case "t"/"z" after later runs. A value the date
     * functions cannot read (a leap second) is left as it was. */
    "UPDATE runs SET run_at = strftime('%Y-%m-%dT%H:%M:%SZ', upper(run_at))"
    " WHERE strftime('%Y-%m-%dT%H:%M:%SZ', upper(run_at)) GLOB"
    " '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'"
    " AND run_at <> strftime('%Y-%m-%dT%H:%M:%SZ', upper(run_at));",
    /* 8 -> 9: the trusted signer keys each stored report verified with when it was stored,
     * and the payload they signed, so that a model's lookup of the reports naming an
     * artifact searches its own signers' reports by index: anyone with a token and a model
     * of their own could upload thousands of reports naming another model's artifact, and
     * each lookup verified every one with every key of that model (6,000 uploads had slowed
     * one transition from 3 ms to 7.2 s). A key is listed once per signed payload. Reports
     * stored before have signers_known 0 and are verified at each lookup, as they were. */
    "CREATE TABLE report_signers ("
    " report_sha256 TEXT NOT NULL REFERENCES reports (sha256),"
    " key_id TEXT NOT NULL,"
    " subject_sha256 TEXT NOT NULL,"
    " payload_sha256 TEXT NOT NULL,"
    " PRIMARY KEY (report_sha256, key_id),"
    " UNIQUE (key_id, payload_sha256));"
    "CREATE INDEX report_signers_by_subject ON report_signers (subject_sha256, key_id);"
    "ALTER TABLE reports ADD COLUMN signers_known INTEGER NOT NULL DEFAULT 0"
    " CHECK (signers_known IN (0, 1));"
    "CREATE INDEX reports_signers_unknown ON reports (subject_sha256) WHERE signers_known = 0;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == SG_REGISTRY_SCHEMA_VERSION,
               "one migration per schema version");

/* Why a registry is read-only to its owner: SQLite's -wal or -shm file beside it belongs to
   another user (their read of a registry in a directory they can write left them, and the
   owner can neither write through them nor, in a sticky directory, remove them). */
static void foreign_wal(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    static const char *const sfx[] = {"-wal", "-shm"};
    for (int i = 0; i < 2; i++) {
        char side[sizeof ((reg_store *)0)->path + 8];
        struct stat st;
        snprintf(side, sizeof side, "%s%s", path, sfx[i]);
        if (stat(side, &st) == 0 && st.st_uid != geteuid()) {
            snprintf(buf, len,
                     " (%s belongs to uid %u, not to this user: another user's read left it; "
                     "that user or root must remove %s-wal and %s-shm while nothing has the "
                     "registry open, and a registry belongs in a directory only its owner can "
                     "write)",
                     side, (unsigned)st.st_uid, path, path);
            return;
        }
        if (stat(side, &st) == 0 && access(side, W_OK) != 0 && access(path, W_OK) == 0) {
            snprintf(buf, len, " (%s is not writable, mode %04o, though the registry file is)",
                     side, (unsigned)(st.st_mode & 07777));
            return;
        }
    }
}

/* SQLite creates REG-wal and REG-shm with the registry file's mode. A read while the file
 * was read-only (chmod 444: a backup, an operator freezing it) left them read-only, and
 * once the file was writable again every write failed, "attempt to write a readonly
 * database", blaming the file. When the file is writable and the side files are this user's,
 * they take the file's mode again. */
static void side_files_follow(const char *path, const struct stat *db)
{
    if (access(path, W_OK) != 0) return;
    static const char *const sfx[] = {"-wal", "-shm"};
    for (int i = 0; i < 2; i++) {
        char side[sizeof((reg_store *)0)->path + 8];
        struct stat st;
        snprintf(side, sizeof side, "%s%s", path, sfx[i]);
        if (lstat(side, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            access(side, W_OK) != 0)
            (void)chmod(side, db->st_mode & 0666);
    }
}

static sg_status lite_error(reg_store *s, sg_err *err, const char *what)
{
    int code = sqlite3_extended_errcode(s->db) & 0xff;
    const char *msg = sqlite3_errmsg(s->db);
    if (code == SQLITE_READONLY) {
        char why[sizeof s->path * 3 + 256];
        foreign_wal(s->path, why, sizeof why);
        return sg_errf(err, SG_EIO, "registry %s: %s failed: %s%s", s->path, what, msg, why);
    }
    switch (code) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return sg_errf(err, SG_EINPUT, "registry %s is corrupt or not a database (%s: %s)", s->path,
                       what, msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return sg_errf(err, SG_EIO, "registry %s stayed locked by another process for %d s (%s)",
                       s->path, REG_BUSY_TIMEOUT_MS / 1000, what);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_FULL: {
        /* SQLite's "disk I/O error" hides why: the system's errno says it (a full disk or
           ulimit -f on the -wal or -shm file, even for a read-only command) */
        const int sys = sqlite3_system_errno(s->db);
        if (sys)
            return sg_errf(err, SG_EIO, "registry %s: %s failed: %s (%s)", s->path, what, msg,
                           strerror(sys));
        if (code == SQLITE_IOERR || code == SQLITE_FULL)
            return sg_errf(err, SG_EIO,
                           "registry %s: %s failed: %s (a full disk or a file size limit, "
                           "ulimit -f, on the database or its -wal or -shm file, is the usual "
                           "cause)",
                           s->path, what, msg);
        return sg_errf(err, SG_EIO, "registry %s: %s failed: %s", s->path, what, msg);
    }
    default:
        return sg_errf(err, SG_EINTERNAL, "registry %s: %s failed: %s", s->path, what, msg);
    }
}

static sg_status lite_exec(reg_store *s, const char *sql, sg_err *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) return lite_error(s, err, "query");
    return SG_OK;
}

static void lite_bind_text(reg_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(((sqlite_stmt *)st)->st, i, v, -1, SQLITE_TRANSIENT);
}

static void lite_bind_int64(reg_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(((sqlite_stmt *)st)->st, i, v);
}

static reg_step_result lite_step(reg_stmt *st)
{
    int s = sqlite3_step(((sqlite_stmt *)st)->st);
    if (s == SQLITE_ROW) return REG_ROW;
    if (s == SQLITE_DONE) return REG_DONE;
    if ((s & 0xff) == SQLITE_CONSTRAINT) return REG_CONSTRAINT;
    return REG_ERROR;
}

static int64_t lite_col_int64(reg_stmt *st, int i)
{
    return sqlite3_column_int64(((sqlite_stmt *)st)->st, i);
}

/* Text past a NUL byte: stagegate writes none (its strings are C strings, and PostgreSQL's
   text cannot hold one), so such a value was written by something else. Read as the value
   before the NUL, an edit behind it passed verify-log and was dropped by a copy; it reads as
   this marker instead, which no logged value is, so verify-log names the row. */
#define NUL_TEXT "(text holding a NUL byte: not written by stagegate)"

static const char *lite_col_text(reg_stmt *st, int i)
{
    sqlite3_stmt *s = ((sqlite_stmt *)st)->st;
    const unsigned char *t = sqlite3_column_text(s, i);
    if (!t) return "";
    return memchr(t, 0, (size_t)sqlite3_column_bytes(s, i)) ? NUL_TEXT : (const char *)t;
}

static bool lite_col_is_null(reg_stmt *st, int i)
{
    return sqlite3_column_type(((sqlite_stmt *)st)->st, i) == SQLITE_NULL;
}

static void lite_finalize(reg_stmt *st)
{
    sqlite3_finalize(((sqlite_stmt *)st)->st);
    free(st);
}

static sg_status lite_prepare(reg_store *s, const char *sql, reg_stmt **out, sg_err *err)
{
    *out = NULL;
    sqlite_stmt *st = calloc(1, sizeof *st);
    if (!st) return sg_errf(err, SG_ENOMEM, "registry %s: out of memory", s->path);
    if (sqlite3_prepare_v2(s->db, sql, -1, &st->st, NULL) != SQLITE_OK) {
        free(st);
        return lite_error(s, err, "prepare");
    }
    st->base.ops = &reg_store_sqlite;
    *out = &st->base;
    return SG_OK;
}

static int64_t lite_changes(reg_store *s)
{
    return sqlite3_changes(s->db);
}

static int64_t lite_last_insert_id(reg_store *s)
{
    return sqlite3_last_insert_rowid(s->db);
}

static sg_status lite_begin_write(reg_store *s, int64_t *head_seq, char head_hash[65],
                                  sg_err *err)
{
    /* In process: the head costs nothing to read when it is needed. */
    (void)head_seq;
    head_hash[0] = '\0';
    return lite_exec(s, "BEGIN IMMEDIATE", err);
}

static sg_status lite_commit(reg_store *s, sg_err *err)
{
    return lite_exec(s, "COMMIT", err);
}

static void lite_rollback(reg_store *s)
{
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static sg_status lite_begin_read(reg_store *s, sg_err *err)
{
    return lite_exec(s, "BEGIN", err);
}

static void lite_end_read(reg_store *s)
{
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
}

static sg_status pragma_int(reg_store *s, const char *sql, int64_t *out, sg_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return lite_error(s, err, sql);
    int rc = SG_OK;
    if (sqlite3_step(st) != SQLITE_ROW)
        rc = lite_error(s, err, sql);
    else
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* A damaged page that no query happens to read would otherwise pass unnoticed. */
static sg_status lite_check_integrity(reg_store *s, sg_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK)
        return lite_error(s, err, "quick_check");
    int rc = SG_OK;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = lite_error(s, err, "quick_check");
    } else {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (!t || strcmp((const char *)t, "ok") != 0) {
            char what[256];
            snprintf(what, sizeof what, "%s", t ? (const char *)t : "no answer");
            for (char *p = what; *p; p++) /* the error stays one line */
                if (*p == '\n' || *p == '\r') *p = ' ';
            rc = sg_errf(err, SG_EINPUT, "registry %s is corrupt (quick_check: %s)", s->path, what);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static sg_status migrate(reg_store *s, sg_err *err)
{
    int64_t ver = 0, app = 0, objects = 0;
    int rc = pragma_int(s, "PRAGMA user_version", &ver, err);
    if (rc == SG_OK) rc = pragma_int(s, "PRAGMA application_id", &app, err);
    if (rc != SG_OK) return rc;
    if (ver == SG_REGISTRY_SCHEMA_VERSION && app == REG_APPLICATION_ID) return SG_OK;
    /* Below 0 is no stagegate's version: it would index before the migrations (a negative
       user_version had run stray memory as SQL, then crashed). */
    if (ver < 0)
        return sg_errf(err, SG_EINPUT,
                       "registry %s has schema version %lld, which no stagegate writes "
                       "(PRAGMA user_version was changed by hand, or the file is corrupt)",
                       s->path, (long long)ver);
    if (ver > SG_REGISTRY_SCHEMA_VERSION && app == REG_APPLICATION_ID)
        return sg_errf(
            err, SG_EINPUT,
            "registry %s has schema version %lld, newer than this stagegate supports (%d)", s->path,
            (long long)ver, SG_REGISTRY_SCHEMA_VERSION);
    if ((rc = lite_exec(s, "BEGIN IMMEDIATE", err)) != SG_OK) return rc;
    /* Re-read under the write lock: another process may have migrated meanwhile. */
    rc = pragma_int(s, "PRAGMA user_version", &ver, err);
    if (rc == SG_OK) rc = pragma_int(s, "PRAGMA application_id", &app, err);
    if (rc == SG_OK) rc = pragma_int(s, "SELECT count(*) FROM sqlite_master", &objects, err);
    if (rc == SG_OK && ver < 0)
        rc = sg_errf(err, SG_EINPUT, "registry %s has schema version %lld, which no stagegate writes",
                     s->path, (long long)ver);
    if (rc == SG_OK && app != REG_APPLICATION_ID && (app != 0 || objects != 0))
        rc = sg_errf(err, SG_EINPUT, "%s is an SQLite database but not a stagegate registry",
                     s->path);
    for (int64_t v = ver; rc == SG_OK && v < SG_REGISTRY_SCHEMA_VERSION; v++) {
        if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            rc = lite_error(s, err, "schema migration");
            break;
        }
        char sql[128];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld; PRAGMA application_id = %d",
                 (long long)(v + 1), REG_APPLICATION_ID);
        rc = lite_exec(s, sql, err);
    }
    if (rc != SG_OK) {
        lite_rollback(s);
        return rc;
    }
    reg_test_pause("commit");
    if ((rc = lite_commit(s, err)) != SG_OK) lite_rollback(s);
    return rc;
}

/* Row ids come from the rows themselves (INTEGER PRIMARY KEY): nothing to move on. */
static int lite_sync_ids(reg_store *s, sg_err *err)
{
    (void)s;
    (void)err;
    return SG_OK;
}

static void lite_display(const char *uri, char *out, size_t n)
{
    snprintf(out, n, "%s", uri);
}

static void lite_close(reg_store *s)
{
    if (!s) return;
    sqlite3_close_v2(s->db);
    free(s);
}

/* sqlite:PATH, or a plain path (anything that is not another backend's URI). */
static bool lite_accepts(const char *uri)
{
    return !strstr(uri, "://") || !strncmp(uri, "sqlite:", 7);
}

static sg_status lite_open(const char *uri, bool create, reg_store **out, sg_err *err);

/*
 * A new registry is made whole under a temporary name next to it, then linked into place:
 * a failure half way (a full disk) had left an empty file at the path, which every later
 * read called "an empty file, not a stagegate registry". link() does not replace a file: a
 * registry another process created meanwhile wins, and this one is dropped.
 */
static sg_status create_whole(const char *path, sg_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.new-XXXXXX", path) >= (int)sizeof tmp)
        return sg_errf(err, SG_EINPUT, "registry %s: path too long", path);
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    char side[4][PATH_MAX + 16];
    /* removed on SIGINT / SIGTERM / SIGHUP too, with the side files SQLite makes beside it
       (an interrupted init or migrate --to had left REG.new-XXXXXX and its -wal and -shm);
       the signals are held from its creation until it is tracked, a window in which one had
       still left it (seen under AddressSanitizer, whose first sigaction is slow) */
    sigset_t held;
    sg_tmp_signals_hold(&held);
    int fd = mkstemp(tmp);
    const int mk_errno = errno;
    if (fd >= 0)
        for (size_t i = 0; i < 4; i++) {
            snprintf(side[i], sizeof side[i], "%s%s", tmp, sfx[i]);
            sg_tmp_track(side[i]);
        }
    sg_tmp_signals_release(&held);
    if (fd < 0)
        return sg_errf(err, SG_EIO, "registry %s cannot be created: %s", path, strerror(mk_errno));
    mode_t um = umask(0);
    umask(um);
    (void)fchmod(fd, 0666 & ~um); /* as SQLite would have created it */
    close(fd);
    reg_store *s = NULL;
    sg_err inner = {{0}};
    /* lite_open takes a URI and strips one "sqlite:": the temporary file is named as one, so
       that a path that itself starts with "sqlite:" (from --db sqlite:sqlite:x.db) is the file
       opened, not another one left behind. */
    char tmp_uri[PATH_MAX + 8];
    snprintf(tmp_uri, sizeof tmp_uri, "sqlite:%s", tmp);
    sg_status rc = lite_open(tmp_uri, true, &s, &inner);
    /* The schema is committed in the write-ahead log; the file linked into place must hold
       it alone, since the log is removed below. The close's own checkpoint reports no
       failure: on a full disk it had stopped part way, and the half-written file became the
       registry, corrupt for good. So the checkpoint is run here, checked, and the file
       synced, before the link. */
    if (rc == SG_OK) {
        int log = -1, done = -1;
        int ck = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
        if (ck != SQLITE_OK || log != 0 || done != 0) {
            snprintf(inner.msg, sizeof inner.msg, "writing it out: %s",
                     ck != SQLITE_OK ? sqlite3_errmsg(s->db) : "the checkpoint did not finish");
            rc = SG_EIO;
        }
        int cl = sqlite3_close(s->db);
        free(s);
        if (rc == SG_OK && cl != SQLITE_OK) {
            snprintf(inner.msg, sizeof inner.msg, "closing it: %s", sqlite3_errstr(cl));
            rc = SG_EIO;
        }
        int sfd = rc == SG_OK ? open(tmp, O_RDONLY | O_CLOEXEC) : -1;
        if (rc == SG_OK && (sfd < 0 || fsync(sfd) != 0)) {
            snprintf(inner.msg, sizeof inner.msg, "syncing it: %s", strerror(errno));
            rc = SG_EIO;
        }
        if (sfd >= 0) close(sfd);
    }
    if (rc != SG_OK)
        rc = sg_errf(err, rc, "registry %s cannot be created (%s)", path, inner.msg);
    else if (link(tmp, path) != 0 && errno != EEXIST)
        rc = sg_errf(err, SG_EIO, "registry %s cannot be created: %s", path, strerror(errno));
    for (size_t i = 0; i < 4; i++)
        sg_tmp_remove(side[i]);
    return rc;
}

static sg_status lite_open(const char *uri, bool create, reg_store **out, sg_err *err)
{
    *out = NULL;
    const char *path = !strncmp(uri, "sqlite:", 7) ? uri + 7 : uri;
    struct stat stb;
    bool exists = stat(path, &stb) == 0;
    if (!exists && errno == ENOENT && create) {
        sg_status rc = create_whole(path, err);
        if (rc != SG_OK) return rc;
        exists = stat(path, &stb) == 0;
    }
    if (!exists) {
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
    /* SQLite's unix VFS opens absolute paths of at most 511 bytes (its MAX_PATHNAME, 512),
       and said only "unable to open database file" beyond. */
    char cwd[PATH_MAX];
    size_t abs_len = strlen(path);
    if (path[0] != '/' && getcwd(cwd, sizeof cwd)) abs_len += strlen(cwd) + 1;
    if (abs_len >= 512)
        return sg_errf(err, SG_EINPUT,
                       "registry %s: its absolute path is %zu bytes, more than the 511 SQLite can "
                       "open (use a shorter path, or a symbolic link to it)",
                       path, abs_len);
    reg_store *s = calloc(1, sizeof *s);
    if (!s) return sg_errf(err, SG_ENOMEM, "out of memory opening registry %s", path);
    snprintf(s->path, sizeof s->path, "%s", path);
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    int rc = SG_OK;
    char fileuri[3 * sizeof s->path];
    const char *name = path;
    /* on a read-only file system: read without WAL or locks */
    const bool immutable = !create && on_read_only_fs(path);
    if (immutable) {
        if (!immutable_uri(path, fileuri, sizeof fileuri)) {
            rc = sg_errf(err, SG_EINPUT, "registry %s: path too long", path);
            goto fail;
        }
        name = fileuri;
        flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
    }
    if (!immutable && exists) side_files_follow(path, &stb);
    if (sqlite3_open_v2(name, &s->db, flags, NULL) != SQLITE_OK) {
        rc = sg_errf(err, SG_EINPUT, "registry %s cannot be opened: %s", path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_handler(s->db, busy_wait, s);
    sqlite3_extended_result_codes(s->db, 1);
    int64_t ignored;
    /* The first read is where a corrupt or foreign file shows itself. */
    if ((rc = pragma_int(s, "PRAGMA application_id", &ignored, err)) != SG_OK) {
        const int code = sqlite3_errcode(s->db) & 0xFF; /* the primary code */
        if ((code == SQLITE_READONLY || code == SQLITE_CANTOPEN) && !dir_writable(path))
            rc = sg_errf(err, SG_EINPUT,
                         "registry %s cannot be read: its directory is not writable, and SQLite "
                         "needs to create %s-wal and %s-shm next to it to read it (they exist "
                         "while a writer has it open); make the directory writable, or mount "
                         "the file system read-only to read it as it stands",
                         path, path, path);
        else if (rc != SG_EIO)
            rc = sg_errf(err, SG_EINPUT, "registry %s is corrupt or not a database (%s)", path,
                         sqlite3_errmsg(s->db));
        goto fail;
    }
    if (immutable) { /* nothing to set, nothing to migrate: a read-only file system */
        int64_t ver = 0;
        if ((rc = pragma_int(s, "PRAGMA user_version", &ver, err)) != SG_OK) goto fail;
        if (ver != SG_REGISTRY_SCHEMA_VERSION) {
            rc = sg_errf(err, SG_EINPUT,
                         "registry %s has schema version %lld, not %d, and is on a read-only "
                         "file system: it cannot be brought up to date there",
                         path, (long long)ver, SG_REGISTRY_SCHEMA_VERSION);
            goto fail;
        }
        *out = s;
        return SG_OK;
    }
    if ((rc = lite_exec(s,
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                        "PRAGMA foreign_keys = ON",
                        err)) != SG_OK)
        goto fail;
    if ((rc = migrate(s, err)) != SG_OK) goto fail;
    *out = s;
    return SG_OK;
fail:
    lite_close(s);
    return rc;
}

const reg_store_ops reg_store_sqlite = {
    .name = "sqlite",
    .accepts = lite_accepts,
    .display = lite_display,
    .open = lite_open,
    .close = lite_close,
    .error = lite_error,
    .exec = lite_exec,
    .prepare = lite_prepare,
    .bind_text = lite_bind_text,
    .bind_int64 = lite_bind_int64,
    .step = lite_step,
    .col_int64 = lite_col_int64,
    .col_text = lite_col_text,
    .col_is_null = lite_col_is_null,
    .finalize = lite_finalize,
    .changes = lite_changes,
    .last_insert_id = lite_last_insert_id,
    .begin_write = lite_begin_write,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .begin_read = lite_begin_read,
    .end_read = lite_end_read,
    .check_integrity = lite_check_integrity,
    .sync_ids = lite_sync_ids,
};
