/* Internals of the registry server; not part of the public API. */
#ifndef STAGEGATE_SERVER_INTERNAL_H
#define STAGEGATE_SERVER_INTERNAL_H

#include <jansson.h>
#include <openssl/evp.h>
#include <microhttpd.h>
#include <pthread.h>

#include "stagegate/json.h"
#include "stagegate/registry.h"
#include "stagegate/server.h"

/* libmicrohttpd, opened when a server starts (sg_lazylib, srv_mhd_load in http.c): every
   call goes through `mhd`, typed from microhttpd.h's declarations. */
#define MHD_FUNCS(X)                                                                               \
    X(MHD_add_response_header)                                                                     \
    X(MHD_create_response_from_buffer) X(MHD_destroy_response) X(MHD_get_connection_info)          \
        X(MHD_get_connection_values) X(MHD_get_connection_values_n) X(MHD_get_daemon_info)         \
            X(MHD_is_feature_supported) X(MHD_lookup_connection_value) X(MHD_queue_response)       \
                X(MHD_quiesce_daemon) X(MHD_start_daemon) X(MHD_stop_daemon)
typedef struct {
    MHD_FUNCS(SG_LAZY_FIELD)
} srv_mhd_api;
extern srv_mhd_api mhd;
SG_MUST_CHECK sg_status srv_mhd_load(sg_err *err);

/* tokens.c: principals, each a public key with the SHA-256 of its token. */
typedef struct {
    uint8_t hash[32];
    char name[64];
    char key_id[65];
    char *pub_pem;
    int line; /* its line in the tokens file, for messages */
} srv_principal;

typedef struct {
    srv_principal *v;
    size_t n;
} srv_tokens;

SG_MUST_CHECK sg_status srv_tokens_load(const char *path, srv_tokens *t, sg_err *err);
void srv_tokens_free(srv_tokens *t);
/* The principal a presented token belongs to, or NULL. Compares every entry in constant time. */
const srv_principal *srv_tokens_find(const srv_tokens *t, const char *token, size_t len);

/* watchdog.c: the time limit on receiving one request (headers and body). */
typedef struct srv_watch srv_watch;
srv_watch *srv_watch_add(int fd);
void srv_watch_remove(srv_watch *w);
void srv_watch_handling(srv_watch *w, bool handling);
void srv_watch_request_line(srv_watch *w);
SG_MUST_CHECK sg_status srv_watch_start(int request_time_s, sg_err *err);
void srv_watch_stop(void);

/* The server's shared, read-only-after-start state (the tokens are swapped on SIGHUP: http.c). */
typedef struct {
    sg_server_config cfg;
    bool auth;                /* a tokens file was given (the principals: http.c, reloadable) */
    EVP_PKEY *key;            /* --key: signs attested requests; NULL without one */
    char artifact_root[4096]; /* realpath of --artifact-root, "" if none */
} srv_state;

/* One request, as the handlers see it. */
typedef struct {
    const srv_state *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const uint8_t *body;
    size_t body_len;
    json_t *json; /* the body parsed as a JSON object, or NULL (GET, or no body) */
    const srv_principal *who;
    sg_registry *reg; /* this worker thread's registry handle */
} srv_req;

typedef struct {
    unsigned status;
    json_t *body; /* owned */
    const char *allow; /* a 405's Allow header (static text), or NULL */
} srv_resp;

/* What an endpoint takes: its methods ("GET", "POST", "GET POST DELETE"; HEAD goes with
   GET), and whether a POST to it only reads (get-latest-versions, which MLflow's clients
   send as a POST), so a server without tokens answers it. */
typedef struct {
    const char *methods;
    const char *allow; /* the same as an Allow header: "GET, HEAD", "POST" */
    bool post_reads;
} srv_route_info;

/* The header a successful change's response carries: the registry's audit head after it,
 * "SEQ HASH", so a client can keep an anchor of the log outside the database. */
#define SRV_AUDIT_HEAD_HEADER "X-Stagegate-Audit-Head"

/* http helpers (http.c) */
srv_resp srv_json(unsigned status, json_t *body);
/* The 400 for a required parameter srv_param found no string for: "Missing value" when it is
   absent, "Invalid value ... must be a string" when the JSON body gives it another type. */
srv_resp srv_missing(const srv_req *r, const char *key);
srv_resp srv_error(unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a registry status and its message to MLflow's error form. */
srv_resp srv_from_status(int rc, const sg_err *err);
/* A string parameter from the JSON body, else from the query string; NULL when absent. */
const char *srv_param(const srv_req *r, const char *key);
/* Every value of a query parameter given more than once (a repeated MLflow field), in order. */
bool srv_list_param_is(const char *param, const char *field);
json_t *srv_query_all(const srv_req *r, const char *key);
/* Whether the body's fields and the query's parameters are all among known (NULL-ended);
   false with a 400 in *bad naming the first other one. For endpoints that take a decision,
   where a misspelt field must not pass for an absent one ("Reject": true had approved). */
bool srv_only_fields(const srv_req *r, const char *const *known, srv_resp *bad);
/* A version number parameter (string or integer); false with *resp set when missing or bad. */
bool srv_param_version(const srv_req *r, const char *key, int64_t *v, srv_resp *resp);
/* The request made on the caller's behalf (sg_registry_request_attest). */
SG_MUST_CHECK sg_status srv_attest(const srv_req *r, const char *action, const char *model,
                                   int64_t version, const char *target, const char *evidence,
                                   sg_registry_request *out, sg_err *err);

/* The registry serializes writers anyway (store.h: the write transaction). When its backend
 * makes writers poll (SQLite's busy lock), queueing this process's writers on one mutex first
 * spares them the polling; when it queues them itself with blocking waits (PostgreSQL), the
 * mutex is skipped (srv_serialize_writes false), so one writer's work before the database's
 * lock (verifying a report, hashing the artifact) overlaps another's time inside it. Only
 * the registry call is inside, not the reads that build the answer. */
extern bool srv_serialize_writes;
extern pthread_mutex_t srv_write_mu;
/* Time writers spent waiting for srv_write_mu and in the registry call, and their count;
 * updated under srv_stats_mu, reported once at shutdown. */
extern pthread_mutex_t srv_stats_mu;
extern double srv_write_wait_s, srv_write_held_s;
extern long srv_writes;
static inline double srv_write_lock(void)
{
    double t = sg_now_seconds();
    if (srv_serialize_writes) pthread_mutex_lock(&srv_write_mu);
    double now = sg_now_seconds();
    pthread_mutex_lock(&srv_stats_mu);
    srv_write_wait_s += now - t;
    pthread_mutex_unlock(&srv_stats_mu);
    return now;
}
static inline int srv_write_done(double since, int rc)
{
    double held = sg_now_seconds() - since;
    if (srv_serialize_writes) pthread_mutex_unlock(&srv_write_mu);
    pthread_mutex_lock(&srv_stats_mu);
    srv_write_held_s += held;
    srv_writes++;
    pthread_mutex_unlock(&srv_stats_mu);
    return rc;
}
static __thread double srv_write_since __attribute__((unused));
/* The comma operator orders the lock before the call (argument order is unspecified). */
#define SRV_WRITE(call)                                                                            \
    (srv_write_since = srv_write_lock(), srv_write_done(srv_write_since, (call)))

/* Routers: each returns true when it owns the path (resp set). */
bool srv_mlflow_route(srv_req *r, const char *path, srv_resp *resp);
bool srv_stagegate_route(srv_req *r, const char *path, srv_resp *resp);
/* The endpoint at path (below /api/2.0/mlflow/ or /api/stagegate/), or NULL. */
const srv_route_info *srv_mlflow_route_info(const char *path);
const srv_route_info *srv_stagegate_route_info(const char *path);

/* mlflow.c, shared with the stagegate endpoints */
json_t *srv_model_version_json(const json_t *v);

#endif
