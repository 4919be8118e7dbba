/*
 * The PostgreSQL backend of the registry's storage seam (store.h), on libpq.
 *
 * Concurrency model: many processes on many machines hold their own connections. Every
 * write transaction runs at READ COMMITTED and starts, before any other statement, by taking
 * one transaction-scoped advisory lock and then the one audit_head row (SELECT ... FOR
 * UPDATE), so writers queue and each one's checks and writes see the state the previous
 * writer committed: a gate's
 * check-then-act cannot interleave with another process's. The lock is registry-wide, not
 * per model, because every change appends to the one hash chain, which is a total order of
 * all writes anyway (see docs/registry.md for why this and not SERIALIZABLE with retry).
 * A client that dies or loses its connection mid-transaction leaves nothing: the server
 * rolls the transaction back, and a server that dies recovers to the last commit.
 *
 * The schema and its migrations are in store_pg_schema.c.
 *
 * Statements: the shared logic's `?` and `?N` parameters become `$N`; every value travels
 * as text and the server infers each parameter's type from the column it meets. A statement
 * runs on its first step and its rows are buffered (registry queries return few rows).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <math.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

/* libpq, opened when the first PostgreSQL registry is (sg_lazylib): every function this file
   calls goes through `pq`, typed from libpq-fe.h's declarations. */
#define PQ_FUNCS(X)                                                                                \
    X(PQclear)                                                                                     \
    X(PQcmdStatus) X(PQcmdTuples) X(PQconnectPoll) X(PQconnectStartParams) X(PQconninfo)           \
        X(PQconninfoFree) X(PQconninfoParse) X(PQconsumeInput) X(PQenterPipelineMode)              \
            X(PQerrorMessage) X(PQexitPipelineMode) X(PQfinish) X(PQflush) X(PQfreemem) X(PQftype) \
                X(PQgetResult) X(PQgetisnull) X(PQgetvalue) X(PQisBusy) X(PQmakeEmptyPGresult)     \
                    X(PQnfields) X(PQntuples) X(PQpipelineSync) X(PQresultErrorField)              \
                        X(PQresultStatus) X(PQsendPrepare) X(PQsendQuery) X(PQsendQueryParams)     \
                            X(PQsendQueryPrepared) X(PQsetNoticeProcessor) X(PQsetnonblocking)     \
                                X(PQsocket) X(PQstatus)
static struct {
    PQ_FUNCS(SG_LAZY_FIELD)
} pq;
SG_LAZYLIB(libpq, pq, PQ_FUNCS, "libpq.so.5", "a PostgreSQL registry", "libpq5");

#define PG_MAX_PARAMS 32
#define PG_LOCK_TIMEOUT_S 15
#define PG_BOOLOID 16
/* Serializes concurrent schema migrations (pg_advisory_xact_lock key, 'SGRG'). */
#define PG_MIGRATION_LOCK 0x53475247
/* The writers' queue (pg_advisory_xact_lock key: 'SGRW', 0x53475257, in decimal for the
 * SQL text); see pg_begin_write. */
#define PG_WRITE_LOCK 1397183063
#define PG_STR_(x) #x
#define PG_STR(x) PG_STR_(x)

/* A statement text this connection has run: the second run prepares it on the server, so a
 * long-lived connection parses and plans each registry statement once. One-shot commands
 * (a CLI process runs each statement once or twice) pay no extra round trip. The entry also
 * keeps the registry's text (`src`, found by its hash) with its translation, so a statement
 * prepared again is neither translated nor looked up by comparing whole texts. */
typedef struct {
    char *src;     /* the text reg_prepare was given */
    uint64_t hash; /* of src */
    char *sql;     /* src translated ($N parameters) */
    int n_params;
    int uses;
    bool prepared;
    bool preparing; /* its Prepare is in the pipeline, unanswered (pg_write) */
} pg_cached;
#define PG_CACHE 256

/* A deferred write (pg_write) or its statement's Prepare, sent in pipeline mode and not yet
 * answered: cache >= 0 is the Prepare of that cache entry; else a write labelled `what`,
 * whose constraint failure is `refused` when that is not NULL. */
typedef struct {
    int cache;
    char *what;
    char *refused;
    bool head; /* the write lock's read of the audit head: its row is kept (pg_tx_head) */
    bool is_read; /* a prefetched read: its answer goes to `read` (NULL once finalized) */
    void *read;   /* the pg_stmt, which keeps the answer for its first step */
} pg_pending;
#define PG_MAX_PENDING 64

struct reg_store {
    PGconn *conn;
    pg_cached cache[PG_CACHE];
    int n_cache;
    char display[1024]; /* the --db value without any password */
    /* The last failure (a statement, a connection), for store_error(). */
    char sqlstate[6];
    char msg[512];
    int64_t changes;
    bool commit_unknown; /* the connection broke during COMMIT */
    /* The session ended under a pipeline (its sync never came): libpq may still say
       CONNECTION_OK until it reads the end of the stream, but nothing more can be sent. */
    bool broken;
    /* No answer came within the answer timeout: the socket was shut down, and every wait
       after it ends at once (pg_error says why). */
    bool timed_out;
    bool timed_out_sending; /* ... while the server had not taken what was sent */
    double answer_s; /* the answer timeout (answer_timeout_s), read once at open */
    /* Deferred writes: the connection is in pipeline mode while pending ones wait for the
     * next read or the commit; the first that failed is kept here for pg_error(). */
    bool pipe;
    int n_pending;
    pg_pending pending[PG_MAX_PENDING];
    sg_status deferred_rc;
    sg_err deferred_err;
    /* The audit head the write lock read (pg_begin_write sends that read in the pipeline). */
    bool head_known;
    int64_t head_seq;
    char head_hash[65];
};

typedef struct {
    reg_stmt base;
    reg_store *s;
    char *sql; /* the translated text: the cache entry's when cache >= 0, else owned */
    int cache; /* the text's cache entry, -1 when the cache is full */
    int n_params;
    char *values[PG_MAX_PARAMS];
    PGresult *res;
    int row; /* the current row, -1 before the first step */
    bool ran;
    bool prefetched; /* sent in the pipeline, its answer not read yet (pg_prefetch) */
} pg_stmt;

/* Copies a libpq message into one line: errors are printed as one line. */
static void one_line(char *out, size_t n, const char *msg)
{
    size_t j = 0;
    bool space = false;
    for (const char *p = msg ? msg : ""; *p && j + 1 < n; p++) {
        bool ws = isspace((unsigned char)*p);
        if (ws) {
            space = j > 0;
            continue;
        }
        if (space && j + 2 < n) out[j++] = ' ';
        space = false;
        out[j++] = *p;
    }
    out[j] = '\0';
    /* libpq's messages start with "ERROR:  " and may end with a period. */
    if (!strncmp(out, "ERROR: ", 7)) memmove(out, out + 7, strlen(out + 7) + 1);
    if (!strncmp(out, "FATAL: ", 7)) memmove(out, out + 7, strlen(out + 7) + 1);
}

/*
 * How long a statement may wait for the server's answer. libpq waits forever: a server
 * stopped (SIGSTOP, a frozen VM) or cut off behind a firewall that drops packets had held a
 * command, or a server worker thread, until it was killed, with the transaction possibly
 * committed meanwhile. Locks have their own, shorter bound (lock_timeout).
 */
#define PG_ANSWER_TIMEOUT_S 60.0

/* The lock wait, bounded so that it ends (with its own message, 55P03) before the answer
   timeout would call a healthy server that is waiting on a lock frozen: 15 s, or 3/4 of a
   shorter answer timeout. */
static long lock_timeout_ms(const reg_store *s)
{
    const double ms = fmin(PG_LOCK_TIMEOUT_S * 1000.0, s->answer_s * 750.0);
    return ms < 1 ? 1 : (long)ms;
}

/* How long the server lets one of our sessions sit silent inside a transaction: at least a
   minute (the client may hash an artifact between statements), or the answer timeout. */
static long idle_timeout_ms(const reg_store *s)
{
    return (long)(fmax(60.0, s->answer_s) * 1000.0);
}

static double answer_timeout_s(void)
{
    const char *e = getenv("STAGEGATE_PG_ANSWER_TIMEOUT_S");
    char *end = NULL;
    double v = e && *e ? strtod(e, &end) : 0;
    return e && *e && end && !*end && v > 0 && v <= 86400 ? v : PG_ANSWER_TIMEOUT_S;
}

/*
 * The connection is in libpq's nonblocking mode (set at open): PQsend* only queue what they
 * send, and this flushes it. A blocking send had no bound: a frozen server stops reading,
 * the socket's buffer fills, and a large write (a report, a long tag) waited in write()
 * for ever, before any answer timeout could start.
 *
 * Flushes the output and waits until libpq holds a whole answer, each within the answer
 * timeout (sending: without the server taking any of it; the answer: from the end of the
 * send); past it, the socket is shut down, so libpq sees the connection end and every
 * caller takes its broken-connection path (a COMMIT without an answer reads as maybe
 * committed).
 */
static void settle(reg_store *s)
{
    const int sock = pq.PQsocket(s->conn);
    if (sock < 0 || s->timed_out) return;
    int flush = pq.PQflush(s->conn); /* 0: all sent, 1: more to send, -1: failed */
    if (flush != 1 && !pq.PQisBusy(s->conn)) return;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const double limit = s->answer_s;
    while (flush == 1 || pq.PQisBusy(s->conn)) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        const double left =
            limit - ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9);
        if (left <= 0) {
            s->timed_out = true;
            s->timed_out_sending = flush == 1;
            shutdown(sock, SHUT_RDWR);
            break;
        }
        /* While sending, the server's answers are read too (libpq's advice): a server that
           refuses early may stop reading until its own output is taken. */
        struct pollfd pfd = {.fd = sock, .events = POLLIN | (flush == 1 ? POLLOUT : 0)};
        const int r = poll(&pfd, 1, (int)ceil(left * 1000));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        if (r > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !pq.PQconsumeInput(s->conn))
            break;
        if (flush == 1) {
            /* The wait is for a server that stopped: while it takes data (the socket had
               room again), sending goes on, however long a large write takes on a slow link;
               once all is sent, the answer has the whole timeout. A single deadline for both
               had failed a 16 MB report over a 1 MB/s link that worked. */
            const bool took = r > 0 && (pfd.revents & POLLOUT);
            flush = pq.PQflush(s->conn);
            if (took || flush != 1) clock_gettime(CLOCK_MONOTONIC, &t0);
        }
    }
}

static PGresult *get_result(reg_store *s)
{
    settle(s);
    return pq.PQgetResult(s->conn);
}

/* What PQexec gives (the last result; the first error wins), bounded by the answer timeout.
   sent: whether the PQsend* call succeeded. */
static PGresult *wait_all(reg_store *s, int sent)
{
    if (!sent) return pq.PQmakeEmptyPGresult(s->conn, PGRES_FATAL_ERROR);
    PGresult *last = NULL, *r;
    while ((r = get_result(s)) != NULL) {
        const ExecStatusType st = pq.PQresultStatus(r);
        if (last && pq.PQresultStatus(last) == PGRES_FATAL_ERROR) {
            pq.PQclear(r);
        } else {
            pq.PQclear(last);
            last = r;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) break;
    }
    return last ? last : pq.PQmakeEmptyPGresult(s->conn, PGRES_FATAL_ERROR);
}

static PGresult *exec_bounded(reg_store *s, const char *sql)
{
    return wait_all(s, pq.PQsendQuery(s->conn, sql));
}

/* Keeps the failure of res (or of the connection) for pg_error(). */
static void remember(reg_store *s, const PGresult *res)
{
    const char *state = res ? pq.PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(s->sqlstate, sizeof s->sqlstate, "%s", state ? state : "");
    if (s->timed_out) {
        snprintf(s->msg, sizeof s->msg,
                 "the database server %s for %g s (a frozen or unreachable "
                 "server; STAGEGATE_PG_ANSWER_TIMEOUT_S sets the wait)",
                 s->timed_out_sending ? "took nothing more of what was sent" : "gave no answer",
                 s->answer_s);
        return;
    }
    const char *m = res ? pq.PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (m) {
        one_line(s->msg, sizeof s->msg, m);
        return;
    }
    /* libpq's own text: the first line says it; the rest is advice ("This probably means"). */
    char first[sizeof s->msg];
    snprintf(first, sizeof first, "%s", pq.PQerrorMessage(s->conn));
    char *nl = strchr(first, '\n');
    if (nl && nl[1]) *nl = '\0';
    one_line(s->msg, sizeof s->msg, first);
}

static bool connection_lost(reg_store *s)
{
    /* Class 08: connection exception; 57P01..57P03: the server shut down or is starting. */
    return s->broken || s->timed_out || pq.PQstatus(s->conn) != CONNECTION_OK ||
           !strncmp(s->sqlstate, "08", 2) || !strncmp(s->sqlstate, "57P0", 4);
}

static sg_status pg_error(reg_store *s, sg_err *err, const char *what)
{
    if (s->deferred_rc != SG_OK) { /* a deferred write failed first: that is the failure */
        *err = s->deferred_err;
        return s->deferred_rc;
    }
    if (s->commit_unknown)
        return sg_errf(err, SG_EIO,
                       "registry %s: connection lost during commit, so the change may or may not "
                       "be recorded (check with 'history'): %s",
                       s->display, s->msg);
    if (connection_lost(s))
        return sg_errf(err, SG_EIO, "registry %s: connection lost (%s): %s", s->display, what,
                       s->msg);
    if (!strcmp(s->sqlstate, "55P03"))
        return sg_errf(err, SG_EIO, "registry %s stayed locked by another session for %g s (%s)",
                       s->display, lock_timeout_ms(s) / 1000.0, what);
    if (!strcmp(s->sqlstate, "40001") || !strcmp(s->sqlstate, "40P01"))
        return sg_errf(err, SG_EIO, "registry %s: %s failed: %s", s->display, what, s->msg);
    if (!strncmp(s->sqlstate, "XX00", 4))
        return sg_errf(err, SG_EINPUT, "registry %s is corrupt (%s: %s)", s->display, what, s->msg);
    if (!strcmp(s->sqlstate, "42P01") || !strcmp(s->sqlstate, "42703"))
        return sg_errf(err, SG_EINPUT, "registry %s is not a stagegate registry (%s: %s)",
                       s->display, what, s->msg);
    if (!strncmp(s->sqlstate, "42501", 5))
        return sg_errf(err, SG_EINPUT, "registry %s: %s refused: %s", s->display, what, s->msg);
    return sg_errf(err, SG_EINTERNAL, "registry %s: %s failed: %s", s->display, what, s->msg);
}

/* Runs SQL without parameters (several statements allowed); SG_OK or the mapped error. */
static sg_status pipe_end(reg_store *s, const char *final_sql, PGresult **final_res);

static sg_status run(reg_store *s, const char *sql, PGresult **out, sg_err *err, const char *what)
{
    if (out) *out = NULL;
    if (s->pipe && pipe_end(s, NULL, NULL) != SG_OK) return pg_error(s, err, what);
    PGresult *res = exec_bounded(s, sql);
    ExecStatusType st = pq.PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = res;
        else
            pq.PQclear(res);
        return SG_OK;
    }
    remember(s, res);
    pq.PQclear(res);
    return pg_error(s, err, what);
}

static sg_status pg_exec(reg_store *s, const char *sql, sg_err *err)
{
    return run(s, sql, NULL, err, "query");
}

/* `?` becomes $k (k counting), `?N` becomes $N; quoted text is left alone. */
static char *translate(const char *sql, int *n_params)
{
    size_t len = strlen(sql);
    char *out = malloc(len * 3 + 1); /* "?" -> "$NN" at most triples */
    if (!out) return NULL;
    size_t j = 0;
    int next = 0, max = 0;
    char quote = 0;
    for (const char *p = sql; *p; p++) {
        char c = *p;
        if (quote) {
            if (c == quote) quote = 0;
            out[j++] = c;
        } else if (c == '\'' || c == '"') {
            quote = c;
            out[j++] = c;
        } else if (c == '?') {
            int k;
            if (isdigit((unsigned char)p[1])) {
                char *end;
                k = (int)strtol(p + 1, &end, 10);
                p = end - 1;
            } else {
                k = ++next;
            }
            if (k > max) max = k;
            j += (size_t)sprintf(out + j, "$%d", k);
        } else {
            out[j++] = c;
        }
    }
    out[j] = '\0';
    *n_params = max;
    return out;
}

static uint64_t text_hash(const char *t)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *t; t++)
        h = (h ^ (uint8_t)*t) * 1099511628211u;
    return h;
}

/* The cache entry of a registry statement's text, created (translated) on first sight;
 * NULL when the cache is full or out of memory. */
static pg_cached *cache_entry(reg_store *s, const char *src)
{
    uint64_t h = text_hash(src);
    for (int i = 0; i < s->n_cache; i++)
        if (s->cache[i].hash == h && !strcmp(s->cache[i].src, src)) return &s->cache[i];
    if (s->n_cache == PG_CACHE) return NULL;
    pg_cached *c = &s->cache[s->n_cache];
    memset(c, 0, sizeof *c);
    c->src = strdup(src);
    c->sql = c->src ? translate(src, &c->n_params) : NULL;
    if (!c->sql) {
        free(c->src);
        c->src = NULL;
        return NULL;
    }
    c->hash = h;
    s->n_cache++;
    return c;
}

static sg_status pg_prepare(reg_store *s, const char *sql, reg_stmt **out, sg_err *err)
{
    *out = NULL;
    pg_stmt *st = calloc(1, sizeof *st);
    pg_cached *c = st ? cache_entry(s, sql) : NULL;
    if (st) st->cache = c ? (int)(c - s->cache) : -1;
    if (st && c) {
        st->sql = c->sql;
        st->n_params = c->n_params;
    } else if (st) {
        st->sql = translate(sql, &st->n_params);
    }
    if (!st || !st->sql) {
        free(st);
        return sg_errf(err, SG_ENOMEM, "registry %s: out of memory", s->display);
    }
    SG_ASSERT(st->n_params <= PG_MAX_PARAMS);
    st->base.ops = &reg_store_pg;
    st->s = s;
    st->row = -1;
    *out = &st->base;
    return SG_OK;
}

static void set_param(pg_stmt *st, int i, char *v)
{
    SG_ASSERT(i >= 1 && i <= st->n_params && !st->ran);
    free(st->values[i - 1]);
    st->values[i - 1] = v;
}

static void pg_bind_text(reg_stmt *base, int i, const char *v)
{
    set_param((pg_stmt *)base, i, strdup(v));
}

static void pg_bind_int64(reg_stmt *base, int i, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    set_param((pg_stmt *)base, i, strdup(buf));
}

static pg_cached *cached(reg_store *s, const pg_stmt *st)
{
    return st->cache >= 0 ? &s->cache[st->cache] : NULL;
}

static PGresult *run_params(reg_store *s, pg_stmt *st)
{
    const char *const *vals = (const char *const *)st->values;
    pg_cached *c = cached(s, st);
    if (!c || (!c->prepared && c->uses++ == 0))
        return wait_all(
            s, pq.PQsendQueryParams(s->conn, st->sql, st->n_params, NULL, vals, NULL, NULL, 0));
    char name[16];
    snprintf(name, sizeof name, "sg%d", (int)(c - s->cache));
    if (!c->prepared) {
        PGresult *res = wait_all(s, pq.PQsendPrepare(s->conn, name, st->sql, st->n_params, NULL));
        if (pq.PQresultStatus(res) != PGRES_COMMAND_OK) return res;
        pq.PQclear(res);
        c->prepared = true;
    }
    return wait_all(s, pq.PQsendQueryPrepared(s->conn, name, st->n_params, vals, NULL, NULL, 0));
}

/*
 * Deferred writes. A write transaction's last statements (the validation and report rows,
 * the stage change, the audit event and the head) need no answer but success, so pg_write
 * sends them in libpq's pipeline mode without waiting, and the next read, or the commit
 * sent in the same pipeline, learns all their outcomes in one round trip: inside the
 * registry's write lock each round trip is time every other writer waits. The server runs
 * them in order, so a read after them sees their effects; once one fails, the rest of the
 * pipeline is skipped, the transaction is rolled back, and that write's failure is the
 * transaction's (pg_error reports it).
 */
static void pending_clear(reg_store *s)
{
    for (int i = 0; i < s->n_pending; i++) {
        free(s->pending[i].what);
        free(s->pending[i].refused);
    }
    s->n_pending = 0;
}

static void defer_fail(reg_store *s, const PGresult *res, const pg_pending *p)
{
    if (s->deferred_rc != SG_OK) return;
    remember(s, res);
    if (p && p->refused && !strncmp(s->sqlstate, "23", 2))
        s->deferred_rc = sg_errf(&s->deferred_err, SG_EREFUSED, "%s", p->refused);
    else
        s->deferred_rc =
            pg_error(s, &s->deferred_err, p && p->what ? p->what : "a deferred write");
}

static bool send_stmt(reg_store *s, pg_stmt *st);

/* Sends final_sql or final_st (if any) after the pending writes, ends the pipeline and reads
 * every outcome; *final_res receives the final statement's result (NULL if it did not run):
 * a read after deferred writes costs one round trip, not two. SG_OK when every write
 * succeeded, else the first failure (kept for pg_error). */
static sg_status pipe_end_with(reg_store *s, const char *final_sql, pg_stmt *final_st,
                               PGresult **final_res)
{
    if (final_res) *final_res = NULL;
    bool final = final_sql || final_st;
    /* A Prepare the final statement sends goes in as a pending entry before it. */
    bool final_sent =
        final_sql  ? pq.PQsendQueryParams(s->conn, final_sql, 0, NULL, NULL, NULL, NULL, 0) != 0
        : final_st ? send_stmt(s, final_st)
                   : false;
    bool sent = pq.PQpipelineSync(s->conn) && (!final || final_sent);
    bool final_answered = false;
    int n = s->n_pending + (final ? 1 : 0);
    for (int i = 0; i < n; i++) {
        const pg_pending *p = i < s->n_pending ? &s->pending[i] : NULL; /* NULL: the final */
        PGresult *res = get_result(s);
        if (!res) { /* the connection broke: no further results */
            if (final_sql && final_sent && s->deferred_rc == SG_OK) {
                /* The COMMIT went out and no answer came back: the server may have reached
                 * it and committed everything before the break. */
                remember(s, NULL);
                s->commit_unknown = true;
                s->deferred_rc = pg_error(s, &s->deferred_err, "commit");
            }
            defer_fail(s, NULL, p);
            break;
        }
        ExecStatusType st = pq.PQresultStatus(res);
        if (p && p->cache >= 0) {
            s->cache[p->cache].preparing = false;
            s->cache[p->cache].prepared = st == PGRES_COMMAND_OK;
        }
        if (p && p->is_read) { /* a prefetched read: its statement keeps the answer */
            /* A read that failed is the failure of what follows it in the pipeline too. */
            if (st == PGRES_FATAL_ERROR) defer_fail(s, res, p);
            pg_stmt *r = p->read;
            if (r) {
                r->res = res;
                r->prefetched = false;
            } else {
                pq.PQclear(res);
            }
            pq.PQclear(get_result(s));
            continue;
        }
        /* A failed write is the failure; the ones after it were skipped (ABORTED). */
        if (p && st == PGRES_FATAL_ERROR) defer_fail(s, res, p);
        if (p && p->head && st == PGRES_TUPLES_OK && pq.PQntuples(res) == 1 &&
            pq.PQnfields(res) == 2 && strlen(pq.PQgetvalue(res, 0, 1)) == 64) {
            s->head_seq = strtoll(pq.PQgetvalue(res, 0, 0), NULL, 10);
            memcpy(s->head_hash, pq.PQgetvalue(res, 0, 1), 65);
            s->head_known = true;
        }
        if (!p) final_answered = true;
        if (!p && final_res)
            *final_res = res;
        else
            pq.PQclear(res);
        pq.PQclear(get_result(s)); /* the NULL that ends this query's results */
    }
    PGresult *res;
    while ((res = get_result(s)) && pq.PQresultStatus(res) != PGRES_PIPELINE_SYNC)
        pq.PQclear(res);
    pq.PQclear(res);
    /* Once the final statement has answered, what follows it is the sync's round trip alone:
       a session ended there (a terminated backend flushes COMMIT's answer with its FATAL
       message, and no sync comes) must not turn a COMMIT the server made into a failure.
       The broken connection is found by the next statement. */
    if (!sent && !final_answered) defer_fail(s, NULL, NULL);
    pending_clear(s);
    if (!pq.PQexitPipelineMode(s->conn)) {
        s->broken = true;
        if (s->deferred_rc == SG_OK && !final_answered) {
            remember(s, NULL);
            snprintf(s->msg, sizeof s->msg, "the session ended before the pipeline's sync");
            s->deferred_rc = pg_error(s, &s->deferred_err, "a deferred write");
        }
    }
    s->pipe = false;
    return s->deferred_rc;
}

static sg_status pipe_end(reg_store *s, const char *final_sql, PGresult **final_res)
{
    return pipe_end_with(s, final_sql, NULL, final_res);
}

/* Sends st in the pipeline, prepared (its Prepare sent first, as a pending entry, the first
 * time) when its text is cached; false when libpq could not send it. */
static bool send_text(reg_store *s, pg_cached *c, const char *sql, int n_params,
                      const char *const *vals)
{
    char name[16];
    if (c) snprintf(name, sizeof name, "sg%d", (int)(c - s->cache));
    if (c && !c->prepared && !c->preparing) { /* prepared when its answer says so */
        if (!pq.PQsendPrepare(s->conn, name, sql, n_params, NULL)) return false;
        s->pending[s->n_pending++] =
            (pg_pending){(int)(c - s->cache), NULL, NULL, false, false, NULL};
        c->preparing = true;
    }
    return c ? pq.PQsendQueryPrepared(s->conn, name, n_params, vals, NULL, NULL, 0) != 0
             : pq.PQsendQueryParams(s->conn, sql, n_params, NULL, vals, NULL, NULL, 0) != 0;
}

static bool send_stmt(reg_store *s, pg_stmt *st)
{
    return send_text(s, cached(s, st), st->sql, st->n_params, (const char *const *)st->values);
}

static void pg_finalize(reg_stmt *base);

static sg_status pg_write(reg_stmt *base, const char *what, const char *refused, sg_err *err)
{
    pg_stmt *st = (pg_stmt *)base;
    reg_store *s = st->s;
    sg_status rc = s->deferred_rc;
    if (rc == SG_OK && !s->pipe && s->n_pending == 0) {
        if (!pq.PQenterPipelineMode(s->conn)) {
            remember(s, NULL);
            rc = pg_error(s, err, what);
        }
        s->pipe = rc == SG_OK;
    }
    /* Room for this write and a Prepare; a long transaction learns its outcomes now. */
    if (rc == SG_OK && s->n_pending + 2 > PG_MAX_PENDING && pipe_end(s, NULL, NULL) == SG_OK) {
        s->pipe = pq.PQenterPipelineMode(s->conn) != 0;
        if (!s->pipe) defer_fail(s, NULL, NULL);
    }
    rc = s->deferred_rc;
    if (rc == SG_OK) reg_test_pause("write");
    if (rc == SG_OK) {
        if (send_stmt(s, st)) {
            pg_pending *p = &s->pending[s->n_pending++];
            *p = (pg_pending){
                -1, strdup(what), refused ? strdup(refused) : NULL, false, false, NULL};
        } else {
            pg_pending p = {-1, (char *)what, (char *)refused, false, false, NULL};
            defer_fail(s, NULL, &p);
        }
        rc = s->deferred_rc;
    }
    if (rc != SG_OK) *err = s->deferred_err;
    pg_finalize(base);
    return rc;
}

static reg_step_result pg_step(reg_stmt *base)
{
    pg_stmt *st = (pg_stmt *)base;
    reg_store *s = st->s;
    if (!st->ran && st->prefetched) { /* its answer comes with the pipeline it went in */
        if (s->pipe) (void)pipe_end(s, NULL, NULL);
        if (!st->res) { /* the pipeline broke before its answer */
            st->prefetched = false;
            st->ran = true;
            if (s->deferred_rc == SG_OK) remember(s, NULL);
            return REG_ERROR;
        }
    }
    if (!st->ran && st->res) { /* prefetched and answered */
        st->ran = true;
        ExecStatusType rs = pq.PQresultStatus(st->res);
        if (rs == PGRES_COMMAND_OK) return REG_DONE;
        if (rs != PGRES_TUPLES_OK) {
            if (s->deferred_rc == SG_OK) remember(s, st->res);
            return REG_ERROR;
        }
    }
    if (!st->ran) {
        st->ran = true;
        /* The deferred writes go first, in order, and this statement after them in the same
         * round trip; if one failed, this statement was skipped in the aborted transaction:
         * the failure is that write's. */
        if (s->pipe) {
            if (s->n_pending + 2 > PG_MAX_PENDING && pipe_end(s, NULL, NULL) != SG_OK)
                return REG_ERROR;
        }
        if (s->pipe) {
            if (pipe_end_with(s, NULL, st, &st->res) != SG_OK) return REG_ERROR;
            if (!st->res) { /* sent but no answer: the connection broke */
                remember(s, NULL);
                return REG_ERROR;
            }
        } else {
            st->res = run_params(s, st);
        }
        ExecStatusType rs = pq.PQresultStatus(st->res);
        if (rs == PGRES_COMMAND_OK) {
            const char *n = pq.PQcmdTuples(st->res);
            s->changes = *n ? strtoll(n, NULL, 10) : 0;
            return REG_DONE;
        }
        if (rs != PGRES_TUPLES_OK) {
            remember(s, st->res);
            /* Class 23: integrity constraint violation (including the schema's triggers). */
            return !strncmp(s->sqlstate, "23", 2) ? REG_CONSTRAINT : REG_ERROR;
        }
    }
    if (pq.PQresultStatus(st->res) != PGRES_TUPLES_OK) return REG_ERROR;
    if (st->row + 1 < pq.PQntuples(st->res)) {
        st->row++;
        return REG_ROW;
    }
    st->row = pq.PQntuples(st->res);
    return REG_DONE;
}

static bool in_row(const pg_stmt *st, int i)
{
    return st->res && st->row >= 0 && st->row < pq.PQntuples(st->res) && i < pq.PQnfields(st->res);
}

static int64_t pg_col_int64(reg_stmt *base, int i)
{
    pg_stmt *st = (pg_stmt *)base;
    if (!in_row(st, i) || pq.PQgetisnull(st->res, st->row, i)) return 0;
    const char *v = pq.PQgetvalue(st->res, st->row, i);
    if (pq.PQftype(st->res, i) == PG_BOOLOID) return v[0] == 't'; /* SQLite's comparisons are 0/1 */
    return strtoll(v, NULL, 10);
}

static const char *pg_col_text(reg_stmt *base, int i)
{
    pg_stmt *st = (pg_stmt *)base;
    if (!in_row(st, i) || pq.PQgetisnull(st->res, st->row, i)) return "";
    if (pq.PQftype(st->res, i) == PG_BOOLOID)
        return pq.PQgetvalue(st->res, st->row, i)[0] == 't' ? "1" : "0";
    return pq.PQgetvalue(st->res, st->row, i);
}

static bool pg_col_is_null(reg_stmt *base, int i)
{
    pg_stmt *st = (pg_stmt *)base;
    return !in_row(st, i) || pq.PQgetisnull(st->res, st->row, i);
}

static void pg_finalize(reg_stmt *base)
{
    pg_stmt *st = (pg_stmt *)base;
    if (st->prefetched) /* its answer, still to come, has no statement to go to */
        for (int i = 0; i < st->s->n_pending; i++)
            if (st->s->pending[i].read == st) st->s->pending[i].read = NULL;
    for (int i = 0; i < st->n_params; i++)
        free(st->values[i]);
    pq.PQclear(st->res);
    if (st->cache < 0) free(st->sql);
    free(st);
}

static int64_t pg_changes(reg_store *s)
{
    return s->changes;
}

static int64_t pg_last_insert_id(reg_store *s)
{
    if (s->pipe && pipe_end(s, NULL, NULL) != SG_OK) return 0;
    PGresult *res = exec_bounded(s, "SELECT lastval()");
    int64_t id = pq.PQresultStatus(res) == PGRES_TUPLES_OK && pq.PQntuples(res) == 1
                     ? strtoll(pq.PQgetvalue(res, 0, 0), NULL, 10)
                     : 0;
    pq.PQclear(res);
    return id;
}

static void pg_rollback(reg_store *s);

static sg_status pg_begin_write(reg_store *s, int64_t *head_seq, char head_hash[65], sg_err *err)
{
    (void)head_seq;
    s->commit_unknown = false;
    s->deferred_rc = SG_OK;
    s->head_known = false;
    head_hash[0] = '\0'; /* known after the first read: pg_tx_head */
    /* The writers' queue: whoever holds the chain head's row writes; the rest wait. The
     * advisory lock in front of it makes the queue first come, first served: waiters on a
     * row lock race for the row each time it is released, and with 8 writers that doubled
     * the p99 of a transition (scripts/bench_registry.sh). The row lock stays the mutual
     * exclusion, so a writer that takes only the row lock still cannot interleave. The three
     * statements go in the pipeline and the transaction's first read follows them in the
     * same round trip, so once the lock is granted the read runs at once: no round trip
     * inside the lock for it. The row read is the head the transaction's first audit event
     * follows. */
    static const char *const begin[3] = {
        "BEGIN ISOLATION LEVEL READ COMMITTED",
        "SELECT pg_advisory_xact_lock(" PG_STR(PG_WRITE_LOCK) ")",
        "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"};
    if (s->pipe && pipe_end(s, NULL, NULL) != SG_OK) return pg_error(s, err, "begin");
    if (!pq.PQenterPipelineMode(s->conn)) {
        remember(s, NULL);
        return pg_error(s, err, "taking the write lock");
    }
    s->pipe = true;
    for (int i = 0; i < 3 && s->deferred_rc == SG_OK; i++) {
        pg_pending p = {-1, (char *)"taking the write lock", NULL, i == 2, false, NULL};
        /* The lock's two reads are prepared statements (parsed and planned once per
         * connection), their Prepares sent the first time in this pipeline. */
        if (i == 0 ? pq.PQsendQueryParams(s->conn, begin[i], 0, NULL, NULL, NULL, NULL, 0) != 0
                   : send_text(s, cache_entry(s, begin[i]), begin[i], 0, NULL)) {
            p.what = strdup(p.what);
            s->pending[s->n_pending++] = p;
        } else {
            defer_fail(s, NULL, &p);
        }
    }
    if (s->deferred_rc != SG_OK) {
        sg_status rc = pg_error(s, err, "taking the write lock");
        pg_rollback(s);
        return rc;
    }
    return SG_OK;
}

/* Sends a read of the write transaction into its pipeline now, to be answered with the
 * statement that next waits for an answer: two reads, one round trip. The statement keeps
 * its answer for its first step. */
static void pg_prefetch(reg_stmt *base)
{
    pg_stmt *st = (pg_stmt *)base;
    reg_store *s = st->s;
    if (!s->pipe || st->ran || st->prefetched || s->deferred_rc != SG_OK ||
        s->n_pending + 2 > PG_MAX_PENDING)
        return; /* it runs on its own at its first step */
    if (!send_stmt(s, st)) {
        defer_fail(s, NULL, NULL);
        return;
    }
    s->pending[s->n_pending++] = (pg_pending){-1, strdup("a read"), NULL, false, true, st};
    st->prefetched = true;
}

/* The audit head the write lock read (after the transaction's pipeline has been answered;
 * learns it now if not). False when it is not known (a damaged registry: no head row). */
static bool pg_tx_head(reg_store *s, int64_t *seq, char hash[65])
{
    if (!s->head_known && s->pipe) (void)pipe_end(s, NULL, NULL);
    if (!s->head_known || s->deferred_rc != SG_OK) return false;
    *seq = s->head_seq;
    memcpy(hash, s->head_hash, 65);
    return true;
}

static int pg_commit(reg_store *s, sg_err *err)
{
    PGresult *res = NULL;
    if (s->pipe) { /* the deferred writes and the COMMIT in one round trip */
        if (pipe_end(s, "COMMIT", &res) != SG_OK) {
            pq.PQclear(res);
            /* No answer at all, the COMMIT sent with the writes: a server that runs again
               may still apply it (a deferred write's "failure" is only the silence). */
            if (s->timed_out) {
                s->deferred_rc = SG_OK;
                s->commit_unknown = true;
            }
            return pg_error(s, err, "commit");
        }
    } else {
        res = exec_bounded(s, "COMMIT");
    }
    ExecStatusType st = pq.PQresultStatus(res);
    int rc = SG_OK;
    if (st != PGRES_COMMAND_OK) {
        remember(s, res);
        /* COMMIT sent and no answer from the server: it may have committed before the break.
         * An error the server sent (a terminated session, 57P01) means it rolled back. */
        s->commit_unknown = (s->broken || pq.PQstatus(s->conn) != CONNECTION_OK) && !s->sqlstate[0];
        rc = pg_error(s, err, "commit");
    } else if (strcmp(pq.PQcmdStatus(res), "COMMIT") != 0) {
        /* An aborted transaction answers COMMIT with ROLLBACK. */
        snprintf(s->msg, sizeof s->msg, "the transaction was rolled back");
        s->sqlstate[0] = '\0';
        rc = pg_error(s, err, "commit");
    }
    pq.PQclear(res);
    return rc;
}

static void pg_rollback(reg_store *s)
{
    if (s->pipe) pipe_end(s, NULL, NULL);
    if (pq.PQstatus(s->conn) == CONNECTION_OK && !s->timed_out)
        pq.PQclear(exec_bounded(s, "ROLLBACK"));
    s->deferred_rc = SG_OK;
}

static sg_status pg_begin_read(reg_store *s, sg_err *err)
{
    return run(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, err, "begin");
}

static void pg_end_read(reg_store *s)
{
    pg_rollback(s);
}

/* PostgreSQL has no whole-database quick check without extensions; reading every row of
 * every registry table makes a damaged heap page (with data checksums on) fail here. */
static int pg_check_integrity(reg_store *s, sg_err *err)
{
    /* Every table, every column of every row (a row's text form reads each value, TOASTed
       ones too): the trust keys, the report bodies and the schema row had been left out. A
       table an older schema does not have is skipped. */
    static const char *const tables[] = {
        "registered_models", "model_stages",   "model_transitions", "model_keys",  "model_tags",
        "model_versions",    "version_tags",   "aliases",           "validations", "approvals",
        "request_nonces",    "audit_log",      "audit_head",        "runs",        "registry_keys",
        "reports",           "report_signers", "stagegate_registry"};
    enum { N = sizeof tables / sizeof tables[0] };
    char sql[1536] = "SELECT";
    for (size_t i = 0, o = 6; i < N; i++) /* which exist: one round trip */
        o += (size_t)snprintf(sql + o, sizeof sql - o, "%s to_regclass('%s') IS NOT NULL",
                              i ? "," : "", tables[i]);
    PGresult *exist = NULL;
    int rc = run(s, sql, &exist, err, "integrity check");
    for (size_t i = 0; rc == SG_OK && i < N; i++) {
        if (pq.PQgetvalue(exist, 0, (int)i)[0] != 't') continue;
        snprintf(sql, sizeof sql, "SELECT count(*), sum(length(t::text)) FROM %s AS t", tables[i]);
        rc = run(s, sql, NULL, err, "integrity check");
    }
    pq.PQclear(exist);
    return rc;
}

/* Identity columns do not advance when rows arrive with their ids (a copy); move them on. */
static int pg_sync_ids(reg_store *s, sg_err *err)
{
    static const char *const tables[] = {"validations", "approvals", "runs"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT setval(pg_get_serial_sequence('%s', 'id'),"
                 " coalesce((SELECT max(id) FROM %s), 0) + 1, false)",
                 tables[i], tables[i]);
        int rc = run(s, sql, NULL, err, "advancing row ids");
        if (rc != SG_OK) return rc;
    }
    return SG_OK;
}

static int64_t schema_version(reg_store *s, bool *present, sg_err *err, int *rc)
{
    PGresult *res;
    *present = false;
    *rc = run(s, "SELECT to_regclass('stagegate_registry') IS NOT NULL", &res, err,
              "reading the schema version");
    if (*rc != SG_OK) return 0;
    bool exists = pq.PQgetvalue(res, 0, 0)[0] == 't';
    pq.PQclear(res);
    if (!exists) return 0;
    *rc = run(s, "SELECT application, schema_version FROM stagegate_registry WHERE id = 1", &res,
              err, "reading the schema version");
    if (*rc != SG_OK) return 0;
    int64_t v = 0;
    if (pq.PQntuples(res) != 1 || strcmp(pq.PQgetvalue(res, 0, 0), PG_APPLICATION) != 0)
        *rc = sg_errf(err, SG_EINPUT, "registry %s is not a stagegate registry", s->display);
    else
        v = strtoll(pq.PQgetvalue(res, 0, 1), NULL, 10);
    pq.PQclear(res);
    *present = true;
    return v;
}

/* A version below 0 is no stagegate's: it would index before the migrations. */
static sg_status bad_version(const reg_store *s, int64_t ver, sg_err *err)
{
    return sg_errf(err, SG_EINPUT,
                   "registry %s has schema version %lld, which no stagegate writes (the "
                   "stagegate_registry table was changed by hand, or is corrupt)",
                   s->display, (long long)ver);
}

static sg_status migrate(reg_store *s, bool create, sg_err *err)
{
    bool present;
    int rc;
    int64_t ver = schema_version(s, &present, err, &rc);
    if (rc != SG_OK) return rc;
    if (ver > SG_REGISTRY_SCHEMA_VERSION)
        return sg_errf(
            err, SG_EINPUT,
            "registry %s has schema version %lld, newer than this stagegate supports (%d)",
            s->display, (long long)ver, SG_REGISTRY_SCHEMA_VERSION);
    if (ver < 0) return bad_version(s, ver, err);
    if (ver == SG_REGISTRY_SCHEMA_VERSION) return SG_OK;
    if (!present && !create)
        return sg_errf(err, SG_EINPUT,
                       "registry %s holds no stagegate registry (run 'stagegate registry init' "
                       "or create a model first)",
                       s->display);
    /* A session lock taken before the transaction begins, so that the re-read below sees
       the catalog as another migrator left it: a backend refreshes its catalog caches when a
       transaction starts, not when an advisory lock it waited for is granted (twenty
       concurrent first writers had found no table, and failed creating it). */
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%d)", PG_MIGRATION_LOCK);
    rc = run(s, sql, NULL, err, "schema migration");
    if (rc != SG_OK) return rc;
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d)", PG_MIGRATION_LOCK);
    rc = run(s, "BEGIN", NULL, err, "schema migration");
    if (rc != SG_OK) {
        sg_err ignored;
        (void)run(s, sql, NULL, &ignored, "schema migration");
        return rc;
    }
    /* Re-read under the lock: another process may have migrated meanwhile. */
    ver = schema_version(s, &present, err, &rc);
    if (rc == SG_OK && ver < 0) rc = bad_version(s, ver, err);
    for (int64_t v = ver; rc == SG_OK && v < SG_REGISTRY_SCHEMA_VERSION; v++) {
        rc = run(s, reg_pg_migrations[v], NULL, err, "schema migration");
        char step[96];
        snprintf(step, sizeof step, "UPDATE stagegate_registry SET schema_version = %lld",
                 (long long)(v + 1));
        if (rc == SG_OK) rc = run(s, step, NULL, err, "schema migration");
    }
    if (rc == SG_OK) {
        reg_test_pause("commit");
        rc = pg_commit(s, err);
    }
    if (rc != SG_OK) pg_rollback(s);
    sg_err ignored; /* the session ends anyway if the unlock cannot be sent */
    (void)run(s, sql, NULL, &ignored, "schema migration");
    return rc;
}

/* postgresql:// and postgres:// URIs, and key=value connection strings ("host=... dbname=..."). */
static bool pg_accepts(const char *uri)
{
    if (!strncmp(uri, "postgresql://", 13) || !strncmp(uri, "postgres://", 11)) return true;
    const char *p = uri;
    while (*p == ' ')
        p++;
    const char *k = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    if (p == k) return false;
    while (*p == ' ')
        p++;
    /* KEYWORD=... is a connection string even when libpq cannot parse it (a misspelt
       "sslmod=require", an unmatched quote): pg_open then says why. It had been taken for a
       SQLite file name, and the write went to a local file named after the string, password
       included. A SQLite file whose name starts so is given with a directory: ./a=b.db. */
    return *p == '=';
}

/* Copies a connection string or URI, with any password replaced by "***". */
static bool is_uri(const char *uri)
{
    return !strncmp(uri, "postgresql://", 13) || !strncmp(uri, "postgres://", 11);
}

/* A URI with an '@' past its host part, before any query: a password holding a bare '/'
   ("user:pa/ss@host"), which libpq reads as host "user", port "pa" and a database named
   after the rest, and would quote back in its messages. */
static bool uri_at_past_host(const char *uri)
{
    const char *auth = strstr(uri, "://") + 3;
    const char *end = auth + strcspn(auth, "/?");
    const char *q = strchr(auth, '?');
    const char *at = memchr(end, '@', q ? (size_t)(q - end) : strlen(end));
    return at != NULL;
}

/*
 * What messages and checkpoints show of a connection: never the string itself, which may
 * hold a password in a form no masking foresees (a '/' or '&' left unencoded, a
 * percent-encoded key, a space). It is rebuilt from what libpq parsed: user, host, port
 * and database, with "***" for a password. A string libpq cannot parse is not shown.
 */
static void pg_display(const char *uri, char *out, size_t n)
{
    sg_err lerr;
    if (sg_lazylib_load(&libpq, &lerr) != SG_OK) {
        snprintf(out, n, "%s(connection string not shown)", is_uri(uri) ? "postgresql://" : "");
        return;
    }
    char *perr = NULL;
    PQconninfoOption *opts = pq.PQconninfoParse(uri, &perr);
    pq.PQfreemem(perr);
    const bool u = is_uri(uri);
    if (!opts || (u && uri_at_past_host(uri))) {
        snprintf(out, n, "%s(connection string not shown)", u ? "postgresql://" : "");
        pq.PQconninfoFree(opts);
        return;
    }
    const char *pw = NULL, *user = "", *host = "", *port = "", *db = "";
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val) continue;
        if (!strcmp(o->keyword, "password")) pw = o->val;
        if (!strcmp(o->keyword, "user")) user = o->val;
        if (!strcmp(o->keyword, "host")) host = o->val;
        if (!strcmp(o->keyword, "port")) port = o->val;
        if (!strcmp(o->keyword, "dbname")) db = o->val;
    }
    const bool has_pw = pw && *pw;
    const char *svc = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (o->val && !strcmp(o->keyword, "service")) svc = o->val;
    if (u) {
        const bool sock = host[0] == '/'; /* a Unix socket directory goes in the query */
        snprintf(out, n, "postgresql://%s%s%s%s%s%s/%s%s%s", user, has_pw ? ":***" : "",
                 *user || has_pw ? "@" : "", sock ? "" : host, !sock && *port ? ":" : "",
                 sock ? "" : port, db, sock ? "?host=" : "", sock ? host : "");
    } else {
        int k = 0;
        out[0] = '\0';
        const char *names[] = {"service", "host", "port", "user", "dbname"},
                   *vals[] = {svc ? svc : "", host, port, user, db};
        for (int i = 0; i < 5; i++)
            if (*vals[i] && k >= 0 && (size_t)k < n)
                k += snprintf(out + k, n - (size_t)k, "%s%s=%s", k ? " " : "", names[i], vals[i]);
        if (has_pw && k >= 0 && (size_t)k < n)
            snprintf(out + k, n - (size_t)k, "%spassword=***", k ? " " : "");
    }
    pq.PQconninfoFree(opts);
}


static void pg_close(reg_store *s)
{
    if (!s) return;
    pending_clear(s);
    for (int i = 0; i < s->n_cache; i++) {
        free(s->cache[i].src);
        free(s->cache[i].sql);
    }
    pq.PQfinish(s->conn);
    free(s);
}

static void quiet_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* NOTICE lines would break the one-line error contract */
}

/*
 * PQconnectdbParams, but with the quiet notice processor in place before the handshake:
 * libpq prints what the server sends outside a query (a FATAL "terminating connection"
 * when the server dies just as a session starts) through the connection's notice
 * processor, whose default writes to stderr, and a command's error is one line.
 * connect_timeout (10 s unless the connection string says otherwise) bounds the wait.
 */
static PGconn *connect_quiet(const char *const *keys, const char *const *vals)
{
    PGconn *c = pq.PQconnectStartParams(keys, vals, 1);
    if (!c) return NULL;
    pq.PQsetNoticeProcessor(c, quiet_notices, NULL);
    if (pq.PQstatus(c) == CONNECTION_BAD) return c;
    int timeout_s = 10;
    PQconninfoOption *opts = pq.PQconninfo(c);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "connect_timeout") && o->val && *o->val) timeout_s = atoi(o->val);
    pq.PQconninfoFree(opts);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        struct pollfd pfd = {.fd = pq.PQsocket(c),
                             .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left_ms = timeout_s > 0 ? (long)timeout_s * 1000 - ((now.tv_sec - t0.tv_sec) * 1000 +
                                                                 (now.tv_nsec - t0.tv_nsec) / 1000000)
                                     : -1;
        if (timeout_s > 0 && left_ms <= 0) break;
        int r = poll(&pfd, 1, timeout_s > 0 ? (int)left_ms : -1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        st = pq.PQconnectPoll(c);
    }
    return c; /* PQstatus says whether it connected; PQerrorMessage why not */
}

/*
 * The password file libpq would read (passfile=, else $PGPASSFILE, else ~/.pgpass) when no
 * password is given, refused as libpq ignores it: not a plain file, or open to group or
 * others (as ssh refuses such a key). libpq writes its own WARNING line to stderr for such a
 * file, past any message handler, which broke the one-line error; checked first, the
 * connection is not attempted. why stays empty when there is nothing to refuse.
 */
static void passfile_check(const PQconninfoOption *opts, char *why, size_t n)
{
    const char *pw = getenv("PGPASSWORD"), *file = getenv("PGPASSFILE"), *svc = getenv("PGSERVICE");
    for (const PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val) continue;
        if (!strcmp(o->keyword, "password")) pw = o->val;
        if (!strcmp(o->keyword, "passfile")) file = o->val;
        if (!strcmp(o->keyword, "service")) svc = o->val;
    }
    if (pw && *pw) return; /* libpq reads no password file then */
    /* A service file may give the password (or its own passfile), which the parse above does
       not expand: libpq decides then, as psql would. */
    if (svc && *svc) return;
    char home[4096];
    if (!file || !*file) {
        const char *h = getenv("HOME");
        if (!h || !*h) return;
        snprintf(home, sizeof home, "%s/.pgpass", h);
        file = home;
    }
    struct stat st;
    if (stat(file, &st) != 0) return; /* none: libpq reads none */
    if (!S_ISREG(st.st_mode))
        snprintf(why, n, "password file %.400s is not a plain file (libpq ignores it)", file);
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        snprintf(why, n,
                 "password file %.400s is open to group or others (mode %04o), which libpq "
                 "ignores: chmod 600 it",
                 file, (unsigned)(st.st_mode & 07777));
}

static sg_status pg_open(const char *uri, bool create, reg_store **out, sg_err *err)
{
    *out = NULL;
    sg_status lrc = sg_lazylib_load(&libpq, err);
    if (lrc != SG_OK) return lrc;
    reg_store *s = calloc(1, sizeof *s);
    if (!s) return sg_errf(err, SG_ENOMEM, "out of memory opening a registry");
    pg_display(uri, s->display, sizeof s->display);
    s->answer_s = answer_timeout_s();
    if (is_uri(uri) && uri_at_past_host(uri)) {
        sg_status rc = sg_errf(err, SG_EINPUT,
                               "registry %s: an '@' after the host: a password holding '/', "
                               "'?' or '#' must be percent-encoded (%%2F, %%3F, %%23)",
                               s->display);
        free(s);
        return rc;
    }
    char *perr = NULL;
    PQconninfoOption *parsed = pq.PQconninfoParse(uri, &perr);
    char passfile_why[600] = "";
    if (parsed) passfile_check(parsed, passfile_why, sizeof passfile_why);
    pq.PQconninfoFree(parsed);
    if (passfile_why[0]) {
        sg_status rc = sg_errf(err, SG_EINPUT, "registry %s: %s", s->display, passfile_why);
        free(s);
        return rc;
    }
    if (!parsed) {
        char why[256] = "out of memory";
        if (perr) {
            /* libpq quotes what it could not read: a password with a bare '%' ("invalid
               percent-encoded token: \"Tr0ub4dor%Horse\""), or the whole URI. A quoted part
               is shown only when it is an option's name or one character ("]", "="). */
            const bool named = !strncmp(perr, "invalid connection option", 25) ||
                               !strncmp(perr, "invalid URI query parameter", 27);
            size_t o = 0;
            for (const char *c = perr; *c && *c != '\n' && o + 5 < sizeof why;) {
                if (*c != '"') {
                    why[o++] = *c++;
                    continue;
                }
                const char *q = strchr(c + 1, '"');
                const size_t inner = q ? (size_t)(q - c - 1) : strlen(c + 1);
                const size_t span = q ? inner + 2 : inner + 1; /* with its quotes */
                /* (an option's name as libpq spells them, lowercase and '_': "Hunter2" of
                   a password with a space, "password=abc Hunter2", is not shown) */
                const bool name_like =
                    named && inner > 0 && strspn(c + 1, "abcdefghijklmnopqrstuvwxyz_") == inner;
                if ((name_like || inner == 1) && o + span + 1 < sizeof why) {
                    memcpy(why + o, c, span);
                    o += span;
                } else {
                    memcpy(why + o, "\"...\"", 5);
                    o += 5;
                }
                c += span;
            }
            why[o] = '\0';
            pq.PQfreemem(perr);
        }
        sg_status rc = sg_errf(err, SG_EINPUT, "registry %s: not a valid connection string: %s",
                               s->display, why);
        free(s);
        return rc;
    }
    /* Defaults first: what the connection string sets overrides them. The text encoding
       last, so that nothing overrides it: every text stagegate sends and reads is UTF-8, and
       PGCLIENTENCODING=LATIN1 (or client_encoding= in the string) had stored a tag
       double-encoded, and verify-log then called the honest write tampering. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname",
                                "client_encoding", NULL};
    const char *const vals[] = {"10", "stagegate", uri, "UTF8", NULL};
    s->conn = connect_quiet(keys, vals);
    int rc = SG_OK;
    if (!s->conn) {
        rc = sg_errf(err, SG_ENOMEM, "out of memory connecting to registry %s", s->display);
        goto fail;
    }
    if (pq.PQstatus(s->conn) != CONNECTION_OK) {
        remember(s, NULL);
        /* Given up after connect_timeout, libpq's message ends at "failed:" with no reason. */
        size_t ml = strlen(s->msg);
        while (ml && (s->msg[ml - 1] == ' ' || s->msg[ml - 1] == '\n'))
            s->msg[--ml] = '\0';
        if (!ml)
            snprintf(s->msg, sizeof s->msg, "timed out (connect_timeout)");
        else if (s->msg[ml - 1] == ':')
            snprintf(s->msg + ml, sizeof s->msg - ml, " timed out (connect_timeout)");
        rc = sg_errf(err, SG_EIO, "registry %s: cannot connect: %s", s->display, s->msg);
        goto fail;
    }
    pq.PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
    /* Sends only queue; settle() flushes within the answer timeout. */
    if (pq.PQsetnonblocking(s->conn, 1) != 0) {
        remember(s, NULL);
        rc = sg_errf(err, SG_EIO, "registry %s: cannot set nonblocking mode: %s", s->display,
                     s->msg);
        goto fail;
    }
    /* Generic plans: every registry statement is a lookup by key whose best plan does not
     * depend on the values, and planning it again at each execution (a custom plan) cost
     * as much as running it. */
    /* idle_in_transaction_session_timeout: a client that stops inside its transaction (a
     * frozen runner, a partition) had held the registry's write lock until TCP keepalive
     * noticed, hours later; the server now ends such a session. */
    char sql[320];
    snprintf(sql, sizeof sql,
             "SET lock_timeout = '%ldms'; SET idle_in_transaction_session_timeout = '%ldms';"
             " SET client_min_messages = warning;"
             " SET default_transaction_isolation = 'read committed';"
             " SET plan_cache_mode = force_generic_plan",
             lock_timeout_ms(s), idle_timeout_ms(s));
    if ((rc = run(s, sql, NULL, err, "session setup")) != SG_OK) goto fail;
    if ((rc = migrate(s, create, err)) != SG_OK) goto fail;
    *out = s;
    return SG_OK;
fail:
    pg_close(s);
    return rc;
}

static bool pg_alive(reg_store *s)
{
    return !connection_lost(s);
}

const reg_store_ops reg_store_pg = {
    .alive = pg_alive,
    .name = "postgresql",
    .queues_writers = true,
    .accepts = pg_accepts,
    .display = pg_display,
    .open = pg_open,
    .close = pg_close,
    .error = pg_error,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .step = pg_step,
    .col_int64 = pg_col_int64,
    .col_text = pg_col_text,
    .col_is_null = pg_col_is_null,
    .finalize = pg_finalize,
    .changes = pg_changes,
    .last_insert_id = pg_last_insert_id,
    .begin_write = pg_begin_write,
    .tx_head = pg_tx_head,
    .prefetch = pg_prefetch,
    .write = pg_write,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .begin_read = pg_begin_read,
    .end_read = pg_end_read,
    .check_integrity = pg_check_integrity,
    .sync_ids = pg_sync_ids,
};
