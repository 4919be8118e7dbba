/*
 * The registry's storage seam: what the lifecycle, governance and audit logic
 * needs from a database, as a table of operations (as SQLite's sqlite3_vfs is a
 * table of what SQLite needs from an OS). The logic speaks portable SQL with `?`
 * parameters; a backend owns the connection, the schema and its migrations, the
 * serialized write transaction, the mapping of its errors to sg_status, and
 * anything in its own dialect. store_sqlite.c and store_pg.c are the backends; no file
 * outside a backend names its database library, and no SQL outside a backend is written
 * for one dialect only.
 */
#ifndef STAGEGATE_REGISTRY_STORE_H
#define STAGEGATE_REGISTRY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stagegate/common.h"

typedef struct reg_store reg_store; /* a backend's connection */

/* A prepared statement; each backend's statement struct starts with this. */
typedef struct reg_stmt {
    const struct reg_store_ops *ops;
} reg_stmt;

typedef enum {
    REG_ROW = 1,        /* a row is available */
    REG_DONE = 2,       /* the statement finished */
    REG_CONSTRAINT = 3, /* a uniqueness, foreign-key or check constraint refused the write */
    REG_ERROR = 4,      /* anything else: store_error() says what */
} reg_step_result;

typedef struct reg_store_ops {
    const char *name;
    /* Whether begin_write queues the writers of all processes itself, first come first served,
     * with blocking waits (a server need not queue its own threads in front of it). */
    bool queues_writers;
    /* Whether this backend serves a --db value (a URI or path). */
    bool (*accepts)(const char *uri);
    /* How errors name the registry: the --db value without any secret in it. */
    void (*display)(const char *uri, char *out, size_t n);
    /* Opens (creating when asked), checks it is a stagegate registry, migrates the schema
     * forward, and refuses one newer than this binary. `display` names it in errors. */
    sg_status (*open)(const char *uri, bool create, reg_store **out, sg_err *err);
    void (*close)(reg_store *s);
    /* One line naming the registry and what failed, with the status it maps to. */
    sg_status (*error)(reg_store *s, sg_err *err, const char *what);
    sg_status (*exec)(reg_store *s, const char *sql, sg_err *err);
    sg_status (*prepare)(reg_store *s, const char *sql, reg_stmt **st, sg_err *err);
    void (*bind_text)(reg_stmt *st, int i, const char *v);
    void (*bind_int64)(reg_stmt *st, int i, int64_t v);
    reg_step_result (*step)(reg_stmt *st);
    int64_t (*col_int64)(reg_stmt *st, int i);
    const char *(*col_text)(reg_stmt *st, int i); /* "" for NULL */
    bool (*col_is_null)(reg_stmt *st, int i);
    void (*finalize)(reg_stmt *st);
    int64_t (*changes)(reg_store *s);        /* rows changed by the last write */
    /* Optional: runs a write of the current write transaction whose caller needs only its
     * success, possibly deferred until the next statement or the commit (see reg_write);
     * finalizes st. */
    sg_status (*write)(reg_stmt *st, const char *what, const char *refused, sg_err *err);
    int64_t (*last_insert_id)(reg_store *s); /* id of the last inserted row */
    /* The write transaction: serialized against every other writer from its first read, so
     * a gate's checks and the writes that follow see one state. A backend whose lock reads
     * the audit head row sets *head_seq and head_hash (else head_hash stays ""), so the
     * first append of the transaction need not read it again. */
    sg_status (*begin_write)(reg_store *s, int64_t *head_seq, char head_hash[65], sg_err *err);
    /* Optional: the audit head the write lock read, when begin_write could not say it yet
     * (PostgreSQL learns it with the transaction's first read); false when unknown. */
    bool (*tx_head)(reg_store *s, int64_t *seq, char hash[65]);
    /* Optional: a prepared and bound read of the write transaction may be sent now, to be
     * answered together with the next statement that waits for an answer (its first step
     * then reads that answer). */
    void (*prefetch)(reg_stmt *st);
    sg_status (*commit)(reg_store *s, sg_err *err);
    void (*rollback)(reg_store *s);
    /* A read snapshot (several queries that must see one state). */
    sg_status (*begin_read)(reg_store *s, sg_err *err);
    void (*end_read)(reg_store *s);
    /* The database's own consistency check (pages, indexes); SG_EINPUT naming the damage. */
    sg_status (*check_integrity)(reg_store *s, sg_err *err);
    /* After rows were inserted with their own row ids (a copy between registries), makes the
     * ids the database generates next follow them. */
    sg_status (*sync_ids)(reg_store *s, sg_err *err);
    /* Optional: false once the connection to a database server is known lost (a long-lived
       handle, the server's, is then opened again); absent: a local file, always usable. */
    bool (*alive)(reg_store *s);
} reg_store_ops;

extern const reg_store_ops reg_store_sqlite;
extern const reg_store_ops reg_store_pg;

static inline void reg_bind_text(reg_stmt *st, int i, const char *v)
{
    st->ops->bind_text(st, i, v);
}
static inline void reg_bind_int64(reg_stmt *st, int i, int64_t v)
{
    st->ops->bind_int64(st, i, v);
}
static inline reg_step_result reg_step(reg_stmt *st)
{
    return st->ops->step(st);
}
static inline int64_t reg_col_int64(reg_stmt *st, int i)
{
    return st->ops->col_int64(st, i);
}
static inline const char *reg_col_text(reg_stmt *st, int i)
{
    return st->ops->col_text(st, i);
}
static inline bool reg_col_is_null(reg_stmt *st, int i)
{
    return st->ops->col_is_null(st, i);
}
static inline void reg_finalize(reg_stmt *st)
{
    if (st) st->ops->finalize(st);
}

#endif
