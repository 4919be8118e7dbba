/*
 * Registry database access for the shared registry logic: opening through the storage
 * backend that serves the --db value (store.h), statements, the read-error discipline and
 * write transactions. Nothing here knows which database it runs on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry_internal.h"
#include "stagegate/json.h"

/* The storage backends, tried in order; the first that accepts the --db value serves it
 * (SQLite last: it takes any plain path). */
static const reg_store_ops *const backends[] = {&reg_store_pg, &reg_store_sqlite};

const char *sg_registry_path(const char *db_opt)
{
    if (db_opt && *db_opt) return db_opt;
    const char *env = getenv(SG_REGISTRY_ENV);
    if (env && *env) return env;
    return SG_REGISTRY_DEFAULT_PATH;
}

const char *sg_registry_file(const char *db_opt)
{
    const char *uri = sg_registry_path(db_opt);
    if (reg_store_pg.accepts(uri) || !reg_store_sqlite.accepts(uri)) return NULL;
    return !strncmp(uri, "sqlite:", 7) ? uri + 7 : uri;
}

sg_status reg_db_error(sg_registry *reg, sg_err *err, const char *what)
{
    return reg->ops->error(reg->store, err, what);
}

sg_status reg_exec(sg_registry *reg, const char *sql, sg_err *err)
{
    return reg->ops->exec(reg->store, sql, err);
}

sg_status reg_prepare(sg_registry *reg, const char *sql, reg_stmt **st, sg_err *err)
{
    int rc = reg->ops->prepare(reg->store, sql, st, err);
    if (rc != SG_OK && reg->read_rc == SG_OK) reg->read_rc = rc;
    return rc;
}

void reg_prefetch(sg_registry *reg, reg_stmt *st)
{
    if (reg->in_tx && reg->ops->prefetch) reg->ops->prefetch(st);
}

bool reg_row(sg_registry *reg, reg_stmt *st, sg_err *err)
{
    reg_step_result s = reg_step(st);
    if (s == REG_ROW) return true;
    if (s != REG_DONE && reg->read_rc == SG_OK) reg->read_rc = reg_db_error(reg, err, "read");
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

static void tx_forget(sg_registry *reg)
{
    json_decref(reg->tx_cfg);
    reg->tx_cfg = NULL;
    reg->tx_head_hash[0] = '\0';
    reg->tx_head_dirty = false;
    reg->tx_root = REG_ROOT_UNKNOWN;
    json_decref(reg->tx_doc);
    reg->tx_doc = NULL;
}

sg_status reg_begin(sg_registry *reg, sg_err *err)
{
    SG_ASSERT(!reg->in_tx);
    reg->read_rc = SG_OK;
    tx_forget(reg);
    json_decref(reg->written_doc);
    reg->written_doc = NULL;
    int rc = reg->ops->begin_write(reg->store, &reg->tx_head_seq, reg->tx_head_hash, err);
    if (rc == SG_OK) reg->in_tx = true;
    return rc;
}

sg_status reg_commit(sg_registry *reg, sg_err *err)
{
    SG_ASSERT(reg->in_tx);
    int rc = SG_OK;
    /* The head once per transaction, however many events it appended (an archiving
     * promotion appends two); PostgreSQL sends it in the pipeline with the COMMIT. */
    if (reg->tx_head_dirty && reg->tx_head_hash[0]) {
        reg_stmt *st;
        rc = reg_prepare(reg, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", &st, err);
        if (rc == SG_OK) {
            reg_bind_int64(st, 1, reg->tx_head_seq);
            reg_bind_text(st, 2, reg->tx_head_hash);
            rc = reg_write(reg, st, "updating the audit head", NULL, err);
        }
    }
    if (rc == SG_OK) rc = reg->ops->commit(reg->store, err);
    if (rc != SG_OK) {
        reg_rollback(reg);
        return rc;
    }
    reg->in_tx = false;
    reg->commits++;
    reg->commit_head_seq = reg->tx_head_seq;
    memcpy(reg->commit_head_hash, reg->tx_head_hash, sizeof reg->commit_head_hash);
    reg->written_doc = reg->tx_doc;
    reg->tx_doc = NULL;
    tx_forget(reg);
    return SG_OK;
}

json_t *sg_registry_written_version(const sg_registry *reg, const char *model, int64_t version)
{
    const json_t *d = reg->written_doc;
    if (!d || strcmp(sg_json_str(d, "name"), model) != 0 ||
        json_integer_value(json_object_get(d, "version")) != version)
        return NULL;
    return json_deep_copy(d);
}

bool sg_registry_alive(sg_registry *reg)
{
    return !reg->ops->alive || reg->ops->alive(reg->store);
}

uint64_t sg_registry_commits(const sg_registry *reg)
{
    return reg->commits;
}

bool sg_registry_last_commit_head(const sg_registry *reg, int64_t *seq, char hash[65])
{
    if (!reg->commits || !reg->commit_head_hash[0]) return false;
    *seq = reg->commit_head_seq;
    memcpy(hash, reg->commit_head_hash, 65);
    return true;
}

void reg_rollback(sg_registry *reg)
{
    tx_forget(reg);
    if (!reg->in_tx) return;
    reg->ops->rollback(reg->store);
    reg->in_tx = false;
}

sg_status reg_write(sg_registry *reg, reg_stmt *st, const char *what, const char *refused,
                    sg_err *err)
{
    SG_ASSERT(reg->in_tx);
    if (reg->ops->write) return reg->ops->write(st, what, refused, err);
    reg_step_result s = reg_step(st);
    sg_status rc = SG_OK;
    if (s == REG_CONSTRAINT && refused)
        rc = sg_errf(err, SG_EREFUSED, "%s", refused);
    else if (s != REG_DONE)
        rc = reg_db_error(reg, err, what);
    reg_finalize(st);
    return rc;
}

sg_status reg_finish(sg_registry *reg, int rc, sg_err *err)
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
    /* Lets the crash tests kill a process, or the server, while its transaction is open;
     * STAGEGATE_REGISTRY_TEST_PAUSE_S sets how long, in seconds, fractions allowed (default
     * 30 s). */
    const char *want = getenv("STAGEGATE_REGISTRY_TEST_PAUSE");
    if (!want || strcmp(want, action) != 0) return;
    const char *secs = getenv("STAGEGATE_REGISTRY_TEST_PAUSE_S");
    double n = secs ? strtod(secs, NULL) : 30;
    if (!(n > 0 && n < 3600)) n = 30;
    fprintf(stderr, "stagegate: test pause inside transaction (%s)\n", action);
    fflush(stderr);
    struct timespec ts = {(time_t)n, (long)((n - (double)(time_t)n) * 1e9)};
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

sg_status reg_parse_utc(const char *s, int64_t *epoch)
{
    return sg_parse_rfc3339(s, epoch);
}

bool reg_valid_name(const char *s)
{
    /* Names appear in URIs (models:/NAME/STAGE, NAME@ALIAS): keep them unambiguous. */
    size_t n = strlen(s);
    if (n == 0 || n >= REG_NAME_MAX) return false;
    /* "." and "..": models:/../1 read as a path step to anyone who sees it. */
    if (strspn(s, ".") == n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

sg_status sg_registry_open(const char *uri, bool create, sg_registry **out, sg_err *err)
{
    *out = NULL;
    const reg_store_ops *ops = NULL;
    for (size_t i = 0; !ops && i < sizeof backends / sizeof backends[0]; i++)
        if (backends[i]->accepts(uri)) ops = backends[i];
    if (!ops) {
        /* Only the scheme: the rest may hold a password. */
        const char *sep = strstr(uri, "://");
        int n = sep ? (int)(sep - uri) : (int)strlen(uri);
        return sg_errf(err, SG_EINPUT,
                       "registry %.*s://...: no storage backend serves this URI (postgresql://, "
                       "postgres://, a libpq connection string, sqlite:PATH or a path)",
                       n > 32 ? 32 : n, uri);
    }
    sg_registry *reg = calloc(1, sizeof *reg);
    if (!reg) return sg_errf(err, SG_ENOMEM, "out of memory opening a registry");
    ops->display(uri, reg->path, sizeof reg->path);
    reg->ops = ops;
    int rc = ops->open(uri, create, &reg->store, err);
    if (rc != SG_OK) {
        free(reg);
        return rc;
    }
    *out = reg;
    return SG_OK;
}

void sg_registry_close(sg_registry *reg)
{
    if (!reg) return;
    reg_rollback(reg);
    json_decref(reg->written_doc);
    reg->ops->close(reg->store);
    free(reg);
}
