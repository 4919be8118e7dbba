/*
 * The HTTP side of `stagegate serve`, on libmicrohttpd.
 *
 * Threads: libmicrohttpd runs a bounded pool of worker threads (cfg.threads), each polling
 * its own connections with epoll, so a slow client occupies a connection slot, never a
 * worker. A handler runs on the worker that owns the connection and uses that worker's own
 * registry handle (one sg_registry per thread, as registry.h requires), opened on first use
 * and closed by the main thread after the daemon has joined the workers. Shared state
 * (srv_state) is read-only once the daemon starts, except the in-flight counter (atomic) and
 * the principals: an immutable, reference-counted snapshot of the tokens file that a request
 * takes (under g_tokens_mu) before it authenticates and drops when its handler is done, so
 * a reload never frees a principal a handler still reads. Per request, a req_ctx is owned by
 * its connection from the first callback until the completion callback frees it.
 *
 * Signals: SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken by sigwait in
 * the main thread. SIGHUP reloads the tokens file: the new file is parsed in full first,
 * and only a file that loads without error replaces the snapshot (one pointer swap); on any
 * error the old principals stay and one line says why. SIGTERM/SIGINT stop accepting
 * (quiesce), wait for the requests in flight to complete, then stop the daemon.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"
#include "stagegate/keys.h"

typedef struct {
    double start;
    uint8_t *body;
    size_t len, cap;
    bool too_big;
    unsigned status;
    size_t sent;
    char who[96];
    char method[12];
    char url[256];
    char audit_head[65]; /* after a successful change: the registry's audit head */
    int64_t audit_seq;
} req_ctx;

static srv_state g_srv;
static atomic_int g_in_flight;

/* The principals of the tokens file: the current snapshot holds one reference, and each
 * request in dispatch holds one while it runs. */
typedef struct {
    srv_tokens t;
    atomic_int refs;
} tokens_snap;
static pthread_mutex_t g_tokens_mu = PTHREAD_MUTEX_INITIALIZER;
static tokens_snap *g_tokens;

static tokens_snap *tokens_acquire(void)
{
    pthread_mutex_lock(&g_tokens_mu);
    tokens_snap *s = g_tokens;
    if (s) atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&g_tokens_mu);
    return s;
}

static void tokens_release(tokens_snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        srv_tokens_free(&s->t);
        free(s);
    }
}

/* Parses the whole tokens file into a new snapshot (one reference, the caller's). */
static sg_status tokens_read(const char *path, tokens_snap **out, sg_err *err)
{
    *out = NULL;
    tokens_snap *s = calloc(1, sizeof *s);
    if (!s) return sg_errf(err, SG_ENOMEM, "out of memory");
    sg_status rc = srv_tokens_load(path, &s->t, err);
    /* A file without one principal would answer every call 401. At a reload it is far more
       likely an editor's save caught between truncating and writing than an intent; at the
       start, a path mistaken. Stopping the server is how every token is revoked at once. */
    if (rc == SG_OK && s->t.n == 0) {
        srv_tokens_free(&s->t);
        rc = sg_errf(err, SG_EINPUT,
                     "tokens file %s has no principals (add one with `stagegate token add`; to "
                     "revoke every token, stop the server)",
                     path);
    }
    if (rc != SG_OK) {
        free(s);
        return rc;
    }
    atomic_init(&s->refs, 1);
    *out = s;
    return SG_OK;
}

static void server_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The server's own lines (token reloads, stopping, statistics) go to stderr, never into an
   --access-log file: they had, so a failed token revocation showed only inside the access
   log, breaking its one-request-per-line format. */
static void server_log(const char *fmt, ...)
{
    FILE *log = stderr;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    flockfile(log);
    fputs("stagegate serve: ", log);
    sg_put_printable(log, line); /* it may quote a client's words */
    fputc('\n', log);
    funlockfile(log);
    fflush(log);
}

/* SIGHUP: the new file replaces the principals only if all of it loads. */
static void tokens_reload(void)
{
    if (!g_srv.auth) {
        server_log("SIGHUP: no --tokens file to reload");
        return;
    }
    sg_err err = {{0}};
    tokens_snap *fresh = NULL;
    if (tokens_read(g_srv.cfg.tokens, &fresh, &err) != SG_OK) fresh = NULL;
    tokens_snap *old = tokens_acquire();
    size_t n_old = old ? old->t.n : 0;
    tokens_release(old);
    if (!fresh) {
        server_log("tokens file not reloaded, keeping the %zu principals loaded before: %s", n_old,
                   err.msg);
        return;
    }
    size_t n = fresh->t.n;
    pthread_mutex_lock(&g_tokens_mu);
    old = g_tokens;
    g_tokens = fresh;
    pthread_mutex_unlock(&g_tokens_mu);
    tokens_release(old);
    server_log("tokens file %s reloaded: %zu principals (%zu before)", g_srv.cfg.tokens, n, n_old);
}
bool srv_serialize_writes = true; /* server_internal.h; set once before the workers start */
pthread_mutex_t srv_write_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t srv_stats_mu = PTHREAD_MUTEX_INITIALIZER;
double srv_write_wait_s, srv_write_held_s;
long srv_writes;

/* Every worker's registry handle, for the main thread to close after the workers stop. */
static pthread_mutex_t g_regs_mu = PTHREAD_MUTEX_INITIALIZER;
static sg_registry **g_regs;
static size_t g_n_regs;
static __thread sg_registry *tl_reg;

static sg_registry *thread_registry(sg_err *err)
{
    if (tl_reg) return tl_reg;
    sg_registry *reg = NULL;
    if (sg_registry_open(g_srv.cfg.db, false, &reg, err) != SG_OK) return NULL;
    pthread_mutex_lock(&g_regs_mu);
    sg_registry **v = realloc(g_regs, (g_n_regs + 1) * sizeof *v);
    if (v) {
        g_regs = v;
        g_regs[g_n_regs++] = reg;
    }
    pthread_mutex_unlock(&g_regs_mu);
    if (!v) {
        sg_registry_close(reg);
        sg_errf(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    tl_reg = reg;
    return reg;
}

/* This thread's handle lost its database connection (a PostgreSQL restart, a failover, an
   administrator's pg_terminate_backend): closed, so that the next request opens a new one.
   Every request had failed until the server was restarted. */
static void thread_registry_drop(void)
{
    sg_registry *reg = tl_reg;
    if (!reg) return;
    tl_reg = NULL;
    pthread_mutex_lock(&g_regs_mu);
    for (size_t i = 0; i < g_n_regs; i++)
        if (g_regs[i] == reg) {
            g_regs[i] = g_regs[--g_n_regs];
            break;
        }
    pthread_mutex_unlock(&g_regs_mu);
    sg_registry_close(reg);
}

/* ------------------------------------------------------------------ responses */

srv_resp srv_json(unsigned status, json_t *body)
{
    return (srv_resp){.status = status, .body = body ? body : json_object()};
}

/* Bytes that are not UTF-8 become '?' in place (a JSON string must be UTF-8, and a message
   may quote a name a client sent, or be cut inside a character): jansson refuses the whole
   string otherwise, and the answer was an empty object. */
static void utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 1
                : (*p & 0xe0) == 0xc0 ? 2
                : (*p & 0xf0) == 0xe0 ? 3
                : (*p & 0xf8) == 0xf0 ? 4
                                      : 0;
        bool ok = n > 0 && !(n == 2 && *p < 0xc2) && !(n == 4 && *p > 0xf4);
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && n == 3) /* no overlong forms, no UTF-16 surrogates */
            ok = !(*p == 0xe0 && p[1] < 0xa0) && !(*p == 0xed && p[1] >= 0xa0);
        if (ok && n == 4) ok = !(*p == 0xf0 && p[1] < 0x90) && !(*p == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

srv_resp srv_error(unsigned status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    utf8_clean(msg);
    return srv_json(status, json_pack("{ssss}", "error_code", code, "message", msg));
}

static bool has(const char *msg, const char *s)
{
    return strstr(msg, s) != NULL;
}

static srv_resp classify(int rc, const sg_err *err)
{
    const char *m = err->msg;
    switch (rc) {
    case SG_EREFUSED:
        /* Who may do it is a permission; what the version lacks is a bad parameter. */
        if (has(m, "authorized") || has(m, "signed request") || has(m, "request signature") ||
            has(m, "approver must differ") || has(m, "is not an admin") ||
            has(m, "admin's signature") || has(m, "server key") || has(m, "holds no role") ||
            has(m, "server's signature"))
            return srv_error(403, "PERMISSION_DENIED", "%s", m);
        return srv_error(400, "INVALID_PARAMETER_VALUE", "%s", m);
    case SG_EINPUT:
        if (has(m, "no model named") || has(m, "has no version") || has(m, "has no alias") ||
            has(m, "has no tag"))
            return srv_error(404, "RESOURCE_DOES_NOT_EXIST", "%s", m);
        if (has(m, "already exists")) return srv_error(400, "RESOURCE_ALREADY_EXISTS", "%s", m);
        return srv_error(400, "INVALID_PARAMETER_VALUE", "%s", m);
    case SG_ENOMEM:
    case SG_EIO:
    default:
        return srv_error(500, "INTERNAL_ERROR", "%s", m);
    }
}

/* The registry's own location (a file path, or a database's host and name) stays out of
   answers to clients: "registry /srv/data/registry.db" becomes "the server's registry". */
static void hide_registry(const sg_err *in, sg_err *out)
{
    *out = *in;
    const char *disp = tl_reg ? sg_registry_display(tl_reg) : NULL;
    if (!disp || !*disp) return;
    const size_t dl = strlen(disp);
    size_t o = 0;
    for (const char *p = in->msg; *p && o + 1 < sizeof out->msg;) {
        const char *hit = strstr(p, disp);
        if (!hit) {
            o += (size_t)snprintf(out->msg + o, sizeof out->msg - o, "%s", p);
            break;
        }
        size_t pre = (size_t)(hit - p);
        if (pre >= 9 && !strncmp(hit - 9, "registry ", 9)) pre -= 9;
        o += (size_t)snprintf(out->msg + o, sizeof out->msg - o, "%.*s%s", (int)pre, p,
                              "the server's registry");
        p = hit + dl;
        if (o >= sizeof out->msg) o = sizeof out->msg - 1;
    }
}

srv_resp srv_from_status(int rc, const sg_err *err_in)
{
    sg_err hidden;
    hide_registry(err_in, &hidden);
    const sg_err *err = &hidden;
    srv_resp resp = classify(rc, err);
    /* Tells stagegate's own client a refusal (exit 1) from an input error (exit 2). */
    if (rc == SG_EREFUSED) json_object_set_new(resp.body, "refused", json_true());
    return resp;
}

/*
 * Field names as protobuf's JSON mapping writes them (MLflow's requests are protobuf
 * messages): parsers accept both the field's name (max_results) and its lowerCamelCase JSON
 * name (maxResults), per protobuf's JSON mapping guide. MLflow's Python client sends the
 * first; clients that print messages with protobuf's defaults (JsonFormat in Java, MessageToJson
 * without preserving_proto_field_name) send the second, which had been ignored: a
 * {"maxResults": 5} listed a full page, {"archiveExistingVersions": true} archived nothing.
 */
static void camel_of(const char *snake, char *out, size_t n)
{
    size_t o = 0;
    for (const char *p = snake; *p && o + 1 < n; p++) {
        if (*p == '_' && p[1] >= 'a' && p[1] <= 'z' && o > 0) {
            out[o++] = (char)(p[1] - 'a' + 'A');
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* snake: the field name a lowerCamelCase key stands for ("" when key has no capital or is not
   a lowerCamelCase name). */
static void snake_of(const char *key, char *out, size_t n)
{
    size_t o = 0;
    bool capital = false;
    out[0] = '\0';
    if (!(key[0] >= 'a' && key[0] <= 'z')) return;
    for (const char *p = key; *p; p++) {
        if (o + 2 >= n) {
            out[0] = '\0';
            return;
        }
        if (*p >= 'A' && *p <= 'Z') {
            out[o++] = '_';
            out[o++] = (char)(*p - 'A' + 'a');
            capital = true;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
            out[o++] = *p;
        } else {
            out[0] = '\0';
            return;
        }
    }
    out[o] = '\0';
    if (!capital) out[0] = '\0';
}

/* Renames the top-level lowerCamelCase keys of a request body to the field names they stand
   for. False, naming the field in *why, when the body gives a field under both names (as
   protobuf's parser refuses a field given twice). */
static bool body_field_names(json_t *body, char *why, size_t n)
{
    /* the keys first: the object is not changed while it is walked */
    json_t *camel = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        char snake[128];
        snake_of(key, snake, sizeof snake);
        if (*snake) json_array_append_new(camel, json_string(key));
    }
    bool ok = true;
    size_t i;
    json_t *k;
    json_array_foreach(camel, i, k)
    {
        key = json_string_value(k);
        char snake[128];
        snake_of(key, snake, sizeof snake);
        if (json_object_get(body, snake)) {
            snprintf(why, n, "field %.64s is given twice, as %.64s and as %.64s", snake, key,
                     snake);
            ok = false;
            break;
        }
        json_object_set(body, snake, json_object_get(body, key));
        json_object_del(body, key);
    }
    json_decref(camel);
    return ok;
}

srv_resp srv_missing(const srv_req *r, const char *key)
{
    const json_t *v = r->json ? json_object_get(r->json, key) : NULL;
    if (v && !json_is_string(v) && !json_is_null(v))
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter '%s': it must be a string", key);
    return srv_error(400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter '%s'",
                     key);
}

const char *srv_param(const srv_req *r, const char *key)
{
    if (r->json) {
        json_t *v = json_object_get(r->json, key);
        if (json_is_string(v)) return json_string_value(v);
        /* Present in the body with another type: absent, not the query's value instead
           ({"name": 5} with ?name=M must not name M). Callers taking numbers read the body. */
        if (v) return NULL;
    }
    /* A change's parameters are its JSON body's only (docs/server.md). */
    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) return NULL;
    const char *q = mhd.MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
    if (q || !strchr(key, '_')) return q;
    char camel[128];
    camel_of(key, camel, sizeof camel);
    return mhd.MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, camel);
}

typedef struct {
    const char *key;
    json_t *values;
} query_all;

/* Whether a query parameter is an entry of the list field: its name, without regard to
   case, or its name followed by "[]" or "[N]", as jQuery, axios and PHP-style builders write
   lists (stages[]=Production), which MLflow's own server reads as the list. */
static bool list_param_is(const char *param, const char *field)
{
    const size_t n = strlen(field);
    if (strncasecmp(param, field, n) != 0) return false;
    const char *rest = param + n;
    if (!*rest) return true;
    if (*rest++ != '[') return false;
    rest += strspn(rest, "0123456789");
    return rest[0] == ']' && rest[1] == '\0';
}

/* ... or of its lowerCamelCase name (orderBy[]=...). */
bool srv_list_param_is(const char *param, const char *field)
{
    if (list_param_is(param, field)) return true;
    char camel[128];
    camel_of(field, camel, sizeof camel);
    return strcmp(camel, field) != 0 && list_param_is(param, camel);
}

static enum MHD_Result append_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    query_all *q = cls;
    /* Names match without regard to case, as srv_param's lookup does (STAGES= had been
       dropped while NAME= was read); a name without a value is kept as null, for the caller
       to refuse (a bare "stages" had been dropped, so the filter read as every stage). */
    if (srv_list_param_is(key, q->key))
        json_array_append_new(q->values, value ? json_string(value) : json_null());
    return MHD_YES;
}

typedef struct {
    const char *const *known;
    char unknown[128];
} only_fields;

static bool field_known(const char *const *known, const char *name)
{
    for (size_t i = 0; known[i]; i++)
        if (!strcmp(known[i], name)) return true;
    return false;
}

static enum MHD_Result first_unknown_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
    (void)kind;
    (void)value;
    only_fields *o = cls;
    /* Query names match without regard to case (srv_param's lookup): so here. */
    for (size_t i = 0; o->known[i]; i++)
        if (!strcasecmp(o->known[i], key)) return MHD_YES;
    snprintf(o->unknown, sizeof o->unknown, "%s", key);
    return MHD_NO;
}

bool srv_only_fields(const srv_req *r, const char *const *known, srv_resp *bad)
{
    only_fields o = {known, ""};
    const char *key, *where = "field";
    json_t *val;
    if (r->json) json_object_foreach(r->json, key, val)
        {
            if (field_known(known, key)) continue;
            snprintf(o.unknown, sizeof o.unknown, "%s", key);
            break;
        }
    if (!o.unknown[0]) {
        mhd.MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, first_unknown_arg, &o);
        where = "query parameter";
    }
    if (!o.unknown[0]) return true;
    char list[256] = "";
    for (size_t i = 0, n = 0; known[i] && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", known[i]);
    *bad = srv_error(400, "INVALID_PARAMETER_VALUE", "%s '%s' is not one %s takes (%s)", where,
                     o.unknown, r->url, list);
    return false;
}

json_t *srv_query_all(const srv_req *r, const char *key)
{
    query_all q = {key, json_array()};
    mhd.MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, append_arg, &q);
    return q.values;
}

bool srv_param_version(const srv_req *r, const char *key, int64_t *v, srv_resp *resp)
{
    json_t *j = r->json ? json_object_get(r->json, key) : NULL;
    if (json_is_integer(j) && json_integer_value(j) > 0) {
        *v = json_integer_value(j);
        return true;
    }
    if (j && !json_is_string(j)) { /* 1.5, 0, -1, true: present, and not a version */
        char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
        *resp = srv_error(400, "INVALID_PARAMETER_VALUE",
                          "parameter '%s': %.40s is not a positive integer", key,
                          text ? text : "the value");
        free(text);
        return false;
    }
    const char *s = srv_param(r, key);
    if (!s) {
        *resp = srv_missing(r, key);
        return false;
    }
    /* One spelling per version: "01" or "+1" would name version 1 under a second name. */
    if (!sg_version_parse(s, v)) {
        *resp = srv_error(400, "INVALID_PARAMETER_VALUE",
                          "parameter '%s': '%s' is not a positive integer", key, s);
        return false;
    }
    return true;
}

sg_status srv_attest(const srv_req *r, const char *action, const char *model, int64_t version,
                     const char *target, const char *evidence, sg_registry_request *out,
                     sg_err *err)
{
    if (!r->who) /* writes are refused before a handler runs without a principal */
        return sg_errf(err, SG_EREFUSED, "refused: %s %s needs an authenticated caller", action,
                       model);
    char auth[128];
    snprintf(auth, sizeof auth, "token %s via stagegate serve", r->who->name);
    if (r->srv->key)
        return sg_registry_request_attest_signed(r->reg, r->srv->key, r->who->pub_pem, auth, action,
                                                 model, version, target, evidence, out, err);
    return sg_registry_request_attest(r->reg, r->who->pub_pem, auth, action, model, version, target,
                                      evidence, out, err);
}

/* ------------------------------------------------------------------ authentication */

static const srv_principal *authenticate(struct MHD_Connection *c, const srv_tokens *tokens)
{
    const char *h =
        mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) return NULL;
    if (!strncasecmp(h, "Bearer ", 7)) {
        const char *t = h + 7;
        while (*t == ' ')
            t++;
        /* trailing white space is not the field value's (RFC 9110 section 5.5) */
        size_t n = strlen(t);
        while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
            n--;
        return srv_tokens_find(tokens, t, n);
    }
    if (!strncasecmp(h, "Basic ", 6)) {
        uint8_t *raw = NULL;
        size_t len = 0;
        if (sg_base64_decode(h + 6, &raw, &len) != 0) return NULL;
        /* user:password, the token as the password (MLflow clients send both). */
        const uint8_t *colon = memchr(raw, ':', len);
        const srv_principal *p = NULL;
        if (colon)
            p = srv_tokens_find(tokens, (const char *)colon + 1, len - (size_t)(colon + 1 - raw));
        free(raw);
        return p;
    }
    return NULL;
}

/* ------------------------------------------------------------------ dispatch */

/* Whether method is one of the space-separated words of methods. */
static bool method_in(const char *methods, const char *method)
{
    size_t n = strlen(method);
    for (const char *w = methods; *w; w += strspn(w, " ")) {
        size_t k = strcspn(w, " ");
        if (k == n && !strncmp(w, method, n)) return true;
        w += k;
    }
    return false;
}

/* The endpoint's handler on r (the route exists: dispatch_as looked it up). */
static srv_resp route_request(srv_req *r, bool mlflow, const char *path)
{
    srv_resp resp;
    if (!(mlflow ? srv_mlflow_route(r, path, &resp) : srv_stagegate_route(r, path, &resp)))
        resp = srv_error(404, "ENDPOINT_NOT_FOUND", "no endpoint %s %s", r->method, r->url);
    return resp;
}

/* More JSON values than any request of the API needs (a create-model with 64 keys in each
   role is about 1,000). */
#define SRV_JSON_MAX_VALUES 20000

/* An upper bound on the values in a JSON text: one, plus one for each ',' and ':' and each
   '[' or '{' outside strings. */
static size_t json_values_at_most(const uint8_t *b, size_t n)
{
    size_t values = 1;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        const uint8_t c = b[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ',' || c == ':' || c == '[' || c == '{') {
            values++;
        }
    }
    return values;
}

static srv_resp dispatch_as(struct MHD_Connection *conn, const char *url, const char *method,
                            req_ctx *ctx, const srv_tokens *tokens)
{
    if (!strcmp(url, "/health")) { /* the same rules as the API's reads: Allow, no body */
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            srv_resp resp = srv_error(405, "BAD_REQUEST", "/health takes GET or HEAD");
            resp.allow = "GET, HEAD";
            return resp;
        }
        if (ctx->len)
            return srv_error(400, "INVALID_PARAMETER_VALUE",
                             "a %s request takes its parameters in the query string, not a body",
                             method);
        return srv_json(200, json_pack("{ss}", "status", "OK"));
    }
    srv_req r = {.srv = &g_srv,
                 .conn = conn,
                 .method = method,
                 .url = url,
                 .body = ctx->body,
                 .body_len = ctx->len};
    if (ctx->too_big)
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "request body is larger than the server's limit of %lld bytes",
                         (long long)g_srv.cfg.max_body);
    bool stagegate = !strncmp(url, "/api/stagegate/", 15);
    bool mlflow =
        !strncmp(url, "/api/2.0/mlflow/", 16) || !strncmp(url, "/ajax-api/2.0/mlflow/", 21);
    const char *path = stagegate ? url + 15 : url + (url[1] == 'a' && url[2] == 'j' ? 21 : 16);
    const srv_route_info *route = stagegate ? srv_stagegate_route_info(path)
                                  : mlflow  ? srv_mlflow_route_info(path)
                                            : NULL;
    if (!route) return srv_error(404, "ENDPOINT_NOT_FOUND", "no endpoint %s %s", method, url);
    /* The method first, before anything about the body or the caller (RFC 9110 section
       15.5.6: a 405 names the methods the endpoint takes in Allow). */
    const bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!method_in(route->methods, get ? "GET" : method)) {
        srv_resp resp = srv_error(405, "BAD_REQUEST", "%s takes %s, not %.16s", url, route->allow,
                                  method);
        resp.allow = route->allow;
        return resp;
    }
    if (get) {
        /* A read's parameters are its query string's: with a body too, a proxy, a firewall or
           a log reading the URL would see another request than the one answered. */
        if (ctx->len)
            return srv_error(400, "INVALID_PARAMETER_VALUE",
                             "a %s request takes its parameters in the query string, not a "
                             "body",
                             method);
    } else {
        /* A change comes as JSON, declared so: a browser sends a form's or a script's
           cross-site request as text/plain, a form or multipart body without asking first,
           but not as application/json, so a page a user visits cannot make one with
           credentials the browser holds (Basic). Its parameters are the body's, and a query
           string beside them is refused rather than ignored (?reject on an approval had
           read as an approval). */
        const char *ct =
            mhd.MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        size_t n = ct ? strcspn(ct, "; \t") : 0;
        if (!ct || n != 16 || strncasecmp(ct, "application/json", 16))
            return srv_error(415, "INVALID_PARAMETER_VALUE",
                             "a %s request's body must be JSON, sent with Content-Type: "
                             "application/json (got %.60s)",
                             method, ct ? ct : "none");
        if (mhd.MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0)
            return srv_error(400, "INVALID_PARAMETER_VALUE",
                             "a %s request takes its parameters in its JSON body, not in the "
                             "query string",
                             method);
    }
    if (g_srv.auth) {
        r.who = tokens ? authenticate(conn, tokens) : NULL;
        if (!r.who)
            return srv_error(401, "UNAUTHENTICATED",
                             "a valid token is required (Authorization: Bearer TOKEN)");
        snprintf(ctx->who, sizeof ctx->who, "%s:%.16s", r.who->name, r.who->key_id);
    } else if (!get && !route->post_reads) {
        return srv_error(401, "UNAUTHENTICATED",
                         "this server has no tokens file: it serves reads only");
    }
    /* A body that is not the report endpoint's envelope must be a JSON object. */
    if (ctx->len && strcmp(url, "/api/stagegate/reports") != 0) {
        json_error_t jerr;
        /* Counted before it is parsed: a 1 MiB body of empty objects took about 80 MB to
           parse, per worker thread at once, asked by a client without a token. */
        if (json_values_at_most(ctx->body, ctx->len) > SRV_JSON_MAX_VALUES)
            return srv_error(400, "INVALID_PARAMETER_VALUE",
                             "request body holds more than %d JSON values", SRV_JSON_MAX_VALUES);
        /* Duplicate keys are refused, as every other JSON reader of stagegate refuses them:
           {"stage":"Production","stage":"Archived"} must not mean whichever a parser keeps. */
        r.json = json_loadb((const char *)ctx->body, ctx->len, JSON_REJECT_DUPLICATES, &jerr);
        if (!r.json)
            return srv_error(400, "INVALID_PARAMETER_VALUE",
                             "request body is not valid JSON (line %d column %d: %s)", jerr.line,
                             jerr.column, jerr.text);
        if (!json_is_object(r.json)) {
            json_decref(r.json);
            return srv_error(400, "INVALID_PARAMETER_VALUE", "request body is not a JSON object");
        }
        /* Fields by either of their names (maxResults is max_results). */
        char why[256];
        if (!body_field_names(r.json, why, sizeof why)) {
            json_decref(r.json);
            return srv_error(400, "INVALID_PARAMETER_VALUE", "request body: %s", why);
        }
        /* A description, tags or policy set to null is one not given, as protobuf's JSON
           mapping (MLflow's) reads it: "description": null had been refused as not a string.
           Only these: a null where a decision is asked ("reject": null) stays refused, never
           read as the default (an approval). */
        static const char *const optional[] = {"description", "tags", "stagegate_policy"};
        for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
            if (json_is_null(json_object_get(r.json, optional[i])))
                json_object_del(r.json, optional[i]);
    }
    sg_err err = {{0}};
    r.reg = thread_registry(&err);
    srv_resp resp;
    uint64_t commits = r.reg ? sg_registry_commits(r.reg) : 0;
    if (!r.reg)
        resp = srv_error(503, "TEMPORARILY_UNAVAILABLE", "registry: %s", err.msg);
    else
        resp = route_request(&r, mlflow, path);
    if (r.reg && !sg_registry_alive(r.reg)) {
        /* The connection went away under this request: a new one for the next. The request is
           answered again on a new connection when nothing of it can have been committed (no
           transaction of it committed, and the connection was not lost during a commit: the
           database rolls back what an ended session had not committed). Otherwise it is 503,
           which clients retry, with the registry's message (which says when the change may
           have been made), not a 4xx or 500. */
        const json_t *m = json_object_get(resp.body, "message");
        bool committed = sg_registry_commits(r.reg) != commits;
        bool unknown =
            committed || (json_is_string(m) && strstr(json_string_value(m), "during commit"));
        thread_registry_drop();
        r.reg = NULL;
        if (!unknown) {
            json_decref(resp.body);
            r.reg = thread_registry(&err);
            commits = 0; /* a new handle has committed nothing */
            if (!r.reg)
                resp = srv_error(503, "TEMPORARILY_UNAVAILABLE", "registry: %s", err.msg);
            else
                resp = route_request(&r, mlflow, path);
            if (r.reg && !sg_registry_alive(r.reg)) {
                committed = sg_registry_commits(r.reg) != commits; /* the second attempt's */
                thread_registry_drop();
                r.reg = NULL;
            }
        }
        /* A request whose change committed, and which succeeded, is answered as it is: the
           session ended after its COMMIT had answered (a 503 made clients make it twice). */
        if (!r.reg && committed && resp.status >= 300) {
            /* Committed, then a read for the answer met the lost session: the change is made,
               and a client that retried would make it twice. */
            json_decref(resp.body);
            resp = srv_error(503, "TEMPORARILY_UNAVAILABLE",
                             "the change was recorded (committed), but the database connection "
                             "was lost before the answer was read: check with the history "
                             "before retrying");
        } else if (!r.reg && resp.status != 503 && !(committed && resp.status < 300)) {
            m = json_object_get(resp.body, "message");
            srv_resp unavailable =
                srv_error(503, "TEMPORARILY_UNAVAILABLE", "%s",
                          json_is_string(m) ? json_string_value(m)
                                            : "the registry's database connection was lost");
            json_decref(resp.body);
            resp = unavailable;
        }
    }
    /* After a change, the audit head it left (as its commit knew it, else read after the
     * commit): a client keeps it as an anchor outside the database; a log later cut back past
     * it is then detectable. A POST that committed nothing (get-latest-versions, a search)
     * changed nothing, so it has no head to answer. */
    if (r.reg && resp.status == 200 &&
        (!strcmp(method, "POST") || !strcmp(method, "DELETE") || !strcmp(method, "PATCH")) &&
        sg_registry_commits(r.reg) != commits) {
        int64_t seq = 0;
        sg_err herr;
        if (sg_registry_last_commit_head(r.reg, &seq, ctx->audit_head))
            ctx->audit_seq = seq;
        else if (sg_registry_audit_head(r.reg, &seq, ctx->audit_head, &herr) == SG_OK)
            ctx->audit_seq = seq;
        else
            ctx->audit_head[0] = '\0';
    }
    json_decref(r.json);
    return resp;
}

/* The principals stay valid for the whole handler, even across a reload. */
static srv_resp dispatch(struct MHD_Connection *conn, const char *url, const char *method,
                         req_ctx *ctx)
{
    tokens_snap *snap = g_srv.auth ? tokens_acquire() : NULL;
    srv_resp resp = dispatch_as(conn, url, method, ctx, snap ? &snap->t : NULL);
    tokens_release(snap);
    return resp;
}

static enum MHD_Result queue(struct MHD_Connection *conn, req_ctx *ctx, srv_resp resp)
{
    char *text = sg_json_text_escape(json_dumps(resp.body, JSON_COMPACT));
    json_decref(resp.body);
    if (!text) return MHD_NO;
    size_t len = strlen(text);
    struct MHD_Response *r = mhd.MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    mhd.MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    /* RFC 9110: a 405 lists the methods the endpoint takes, a 401 how to authenticate. */
    if (resp.status == 405 && resp.allow)
        mhd.MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp.allow);
    if (resp.status == 401)
        mhd.MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                    "Bearer realm=\"stagegate\"");
    if (ctx->audit_head[0]) {
        char head[96];
        snprintf(head, sizeof head, "%lld %s", (long long)ctx->audit_seq, ctx->audit_head);
        mhd.MHD_add_response_header(r, SRV_AUDIT_HEAD_HEADER, head);
    }
    ctx->status = resp.status;
    ctx->sent = len;
    enum MHD_Result ret = mhd.MHD_queue_response(conn, resp.status, r);
    mhd.MHD_destroy_response(r);
    return ret;
}

static srv_watch *conn_watch(struct MHD_Connection *conn);

/*
 * Query strings libmicrohttpd cannot hold. It stores every query parameter as a record in
 * the connection's memory pool (cfg.max_header bytes), next to the request line itself;
 * measured on 0.9.75 a parameter costs about 64 bytes there. When the parameters run the
 * pool out, it cannot build its own error response either and the client hangs until the
 * idle timeout (about 240 empty parameters in a 16 KiB pool). The request line is seen
 * here first (the URI log callback runs before the parameters are parsed): a query whose
 * parameters would not fit with room left for the answer is cut off in place -- the URI is
 * the connection's own writable buffer -- and the request is answered 414.
 */
#define ARG_POOL_COST 64
#define POOL_RESERVE 2048
/* Sentinel request contexts on_uri returns: the query was cut off; an encoded '/' or NUL in
   the path. Neither is a req_ctx. */
static char g_uri_refused, g_path_refused;

static bool uri_mark(const void *ctx)
{
    return ctx == &g_uri_refused || ctx == &g_path_refused;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    srv_watch_request_line(conn_watch(conn));
    char *q = strchr(uri, '?');
    /* libmicrohttpd decodes the path before routing: "%2F" would become a '/' no proxy in
       front saw, "%00" would cut the path short ("/health%00x" served as /health), and
       "/api/stagegate/%61pprove" reached approve past a proxy rule on the path as written.
       No endpoint's path needs an encoded byte, so none is taken. */
    for (const char *p = uri; *p && p != q; p++)
        if (*p == '%') return &g_path_refused;
    if (!q) return NULL;
    size_t n = 1;
    for (const char *p = q + 1; *p; p++)
        n += *p == '&';
    size_t pool = (size_t)g_srv.cfg.max_header;
    size_t budget = pool > POOL_RESERVE ? pool - POOL_RESERVE : 0;
    if (strlen(uri) + ARG_POOL_COST * n <= budget) return NULL;
    q[1] = '\0'; /* libmicrohttpd now parses an empty query */
    return &g_uri_refused;
}

/* name for a message, at most cap - 1 bytes: control and non-ASCII bytes as '?' (it came from
   the client), "(empty)" for "". */
static void printable_name(char *dst, size_t cap, const char *name)
{
    size_t i = 0;
    for (const char *k = name; *k && i + 1 < cap; k++)
        dst[i++] = (unsigned char)*k < 0x20 || (unsigned char)*k >= 0x7f ? '?' : *k;
    dst[i] = '\0';
    if (i == 0) snprintf(dst, cap, "(empty)");
}

/* Message framing (RFC 9112 section 6): a body is delimited by one Content-Length or by
 * Transfer-Encoding: chunked, never both, and a request that says otherwise is refused and
 * its connection closed: a front proxy that framed it differently would see a different
 * next request on the same connection (request smuggling). libmicrohttpd accepts both
 * headers, duplicate lengths, and waits for a body in a coding it does not know. */
typedef struct {
    int cl, te;
    bool te_other, te_malformed;
    char bare_cr[40];  /* a header holding a CR that ends no line (RFC 9112 section 2.2), or "" */
    char bad_name[40]; /* a header name that is not a token (RFC 9110 section 5.1), or "" */
    char folded[40];   /* a framing or credential header continued on a second line, or "" */
    int auth; /* two credentials: which one a proxy checked and which one we use could differ */
    int ctype; /* two media types: the body is read by one, a proxy may check the other */
    int host; /* RFC 9112 section 3.2: an HTTP/1.1 request has exactly one */
    size_t bytes; /* of every header's name and value */
} framing;

/* Headers whose second reading by a proxy would change what a request is or who sends it. */
static const char *const guarded_headers[] = {MHD_HTTP_HEADER_CONTENT_LENGTH,
                                              MHD_HTTP_HEADER_TRANSFER_ENCODING,
                                              MHD_HTTP_HEADER_AUTHORIZATION,
                                              MHD_HTTP_HEADER_CONTENT_TYPE, MHD_HTTP_HEADER_HOST};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    framing *f = cls;
    /* An obsolete line folding (RFC 9112 section 5.2: reject it or unfold it). libmicrohttpd
       0.9.75 appends the continuation to the header's name and keeps the empty value:
       "Transfer-Encoding:\r\n chunked" arrives as "Transfer-Encodingchunked", which it does
       not frame by, while a proxy that unfolds the line does. A name that starts with a
       framing or credential header's and goes on is such a line. */
    for (size_t i = 0; i < sizeof guarded_headers / sizeof *guarded_headers && !f->folded[0]; i++) {
        size_t n = strlen(guarded_headers[i]);
        if (strlen(key) > n && !strncasecmp(key, guarded_headers[i], n))
            printable_name(f->folded, sizeof f->folded, guarded_headers[i]);
    }
    /* "Transfer-Encoding : chunked" (white space before the colon) is not the header to
       libmicrohttpd, but a proxy that trims the name frames the body by it (RFC 9112
       section 5.1: such a request must be answered 400). */
    size_t klen = strspn(key, "!#$%&'*+-.^_`|~0123456789"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    if ((klen == 0 || key[klen] != '\0') && !f->bad_name[0])
        printable_name(f->bad_name, sizeof f->bad_name, key);
    f->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    if (!strcasecmp(key, MHD_HTTP_HEADER_HOST)) f->host++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) f->cl++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION)) f->auth++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_TYPE)) f->ctype++;
    /* A bare CR inside a header: a parser that ends lines at it reads other headers (a
       Content-Length hidden in "X-A: a\rContent-Length: 158") and another request. */
    if (!f->bare_cr[0] && (strchr(key, '\r') || (value && strchr(value, '\r'))))
        printable_name(f->bare_cr, sizeof f->bare_cr, key);
    if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->te++;
        /* Exactly "chunked", which is what libmicrohttpd frames by: "chunked " had been taken
           for chunked here and not there, so the body was read until the connection closed
           and the requests after it on the connection were swallowed. A single other coding
           is 501; anything else (empty, quoted, a list, white space around it) is 400. */
        const char *v = value ? value : "";
        if (strcasecmp(v, "chunked") != 0) {
            bool bad = true, other = false;
            for (const char *e = v; *e;) {
                size_t len = strcspn(e, ",");
                const char *a = e, *b = e + len;
                while (a < b && (*a == ' ' || *a == '\t'))
                    a++;
                while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                    b--;
                size_t tok = strspn(a, "!#$%&'*+-.^_`|~0123456789"
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
                if (a < b && tok < (size_t)(b - a)) break; /* not a token: malformed */
                if (a < b) other |= (b - a != 7 || strncasecmp(a, "chunked", 7) != 0);
                e += len + (e[len] == ',');
                if (!*e) bad = false;
            }
            if (!bad && other)
                f->te_other = true;
            else
                f->te_malformed = true;
        }
    }
    return MHD_YES;
}

/* The field a query parameter name names: a lowerCamelCase name as its field's name
   (maxResults is max_results), any other name as itself. */
static const char *param_field(const char *name, char *buf, size_t n)
{
    snake_of(name, buf, n);
    return *buf ? buf : name;
}

/* Query parameters: each named once (which of two would a proxy or a log have read?), and
   none holding a NUL ("name=fraud%00x" would otherwise name fraud). */
typedef struct {
    const char *keys[512];
    size_t n;
    char bad[64];
    bool nul, many; /* more than keys holds: a duplicate past them would go unseen */
    bool bracket;   /* a name with '[' that is no list entry */
} query_check;

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    query_check *q = cls;
    if (q->bad[0]) return MHD_NO;
    const bool nul = strlen(key) != key_size || (value && strlen(value) != value_size);
    /* A bracket form that is no list entry (stages[x]) names no parameter: it would be
       dropped, and the answer hold every stage. */
    const bool list =
        !nul && (srv_list_param_is(key, "stages") || srv_list_param_is(key, "order_by"));
    if (!nul && strchr(key, '[') && !list) {
        printable_name(q->bad, sizeof q->bad, key);
        q->bracket = true;
        return MHD_NO;
    }
    bool dup = false;
    /* MLflow's repeated fields (stages, order_by) come as repeated parameters
       (stages=A&stages=B). Others are compared as srv_param looks them up, without case
       (version=1&VERSION=2 had answered one of them), and by field (max_results=1&maxResults=2). */
    if (!nul && !list) {
        char kb[128], ib[128];
        const char *field = param_field(key, kb, sizeof kb);
        for (size_t i = 0; i < q->n && !dup; i++)
            dup = !strcasecmp(param_field(q->keys[i], ib, sizeof ib), field);
    }
    if (nul || dup) {
        printable_name(q->bad, sizeof q->bad, key);
        q->nul = nul;
        return MHD_NO;
    }
    if (q->n == sizeof q->keys / sizeof q->keys[0]) {
        q->many = true;
        snprintf(q->bad, sizeof q->bad, "(more than %zu)", q->n);
        return MHD_NO;
    }
    q->keys[q->n++] = key;
    return MHD_YES;
}

/* The answer to a request refused before its body is read, or false; mark is what on_uri
   returned. */
static bool refuse_early(struct MHD_Connection *conn, const void *mark, const char *version,
                         srv_resp *out)
{
    if (mark == &g_path_refused) {
        *out = srv_error(400, "INVALID_PARAMETER_VALUE",
                         "the request path holds a percent-encoded byte (%%2F, %%61, ...): "
                         "no endpoint's path needs one");
        return true;
    }
    if (mark == &g_uri_refused) {
        *out = srv_error(414, "INVALID_PARAMETER_VALUE",
                         "request URI has too many query parameters or is too long for the "
                         "server's %lld-byte header limit (--max-header)",
                         (long long)g_srv.cfg.max_header);
        return true;
    }
    framing f = {0};
    mhd.MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    query_check q = {.n = 0};
    mhd.MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, check_arg, &q);
    if (q.many)
        *out = srv_error(414, "INVALID_PARAMETER_VALUE",
                         "request URI has more than %zu query parameters", q.n);
    else if (q.bad[0])
        *out = srv_error(400, "INVALID_PARAMETER_VALUE",
                         q.nul       ? "query parameter '%s' holds a NUL (%%00)"
                         : q.bracket ? "query parameter '%s' is no list entry (NAME[] or "
                                       "NAME[N] of stages or order_by)"
                                     : "query parameter '%s' is given twice",
                         q.bad);
    else if (f.bad_name[0])
        *out = srv_error(400, "INVALID_PARAMETER_VALUE",
                         "header name '%s' is not a token (no white space before the colon)",
                         f.bad_name);
    else if (f.folded[0])
        *out = srv_error(400, "INVALID_PARAMETER_VALUE",
                         "header '%s' is folded onto a second line (obsolete line folding)",
                         f.folded);
    else if (f.bare_cr[0])
        *out =
            srv_error(400, "INVALID_PARAMETER_VALUE",
                      "header '%s' holds a CR that ends no line (RFC 9112 section 2.2)", f.bare_cr);
    else if (f.te_malformed)
        *out = srv_error(400, "INVALID_PARAMETER_VALUE",
                         "Transfer-Encoding is not one coding: send exactly 'chunked' (no white "
                         "space, quotes or list)");
    else if (f.te && f.te_other)
        *out = srv_error(501, "INVALID_PARAMETER_VALUE",
                         "Transfer-Encoding other than a single chunked is not supported");
    else if (f.te && f.cl)
        *out = srv_error(400, "INVALID_PARAMETER_VALUE",
                         "request has both Content-Length and Transfer-Encoding");
    else if (f.te && version && !strcmp(version, MHD_HTTP_VERSION_1_0))
        /* RFC 9112 section 6.1: framing an HTTP/1.0 peer cannot have meant; a proxy in front
           may read that body another way. */
        *out = srv_error(400, "INVALID_PARAMETER_VALUE",
                         "an HTTP/1.0 request has no Transfer-Encoding");
    else if (f.bytes > (size_t)g_srv.cfg.max_header)
        /* checked here: libmicrohttpd's pool is twice the limit, so that a query string within
           its own budget and headers within theirs both fit, and it can still answer */
        *out = srv_error(431, "INVALID_PARAMETER_VALUE",
                         "request headers are over the server's %lld-byte limit (--max-header)",
                         (long long)g_srv.cfg.max_header);
    else if (version && !strcmp(version, MHD_HTTP_VERSION_1_1) && f.host != 1)
        *out = srv_error(400, "INVALID_PARAMETER_VALUE",
                         "an HTTP/1.1 request has exactly one Host header (it has %d)", f.host);
    else if (f.te > 1 || f.cl > 1 || f.auth > 1 || f.ctype > 1)
        *out = srv_error(400, "INVALID_PARAMETER_VALUE", "request repeats the %s header",
                         f.cl > 1     ? "Content-Length"
                         : f.te > 1   ? "Transfer-Encoding"
                         : f.auth > 1 ? "Authorization"
                                      : "Content-Type");
    else
        return false;
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    req_ctx *ctx = *con_cls;
    if (!ctx || uri_mark(ctx)) {
        const void *mark = ctx;
        ctx = calloc(1, sizeof *ctx);
        if (!ctx) return MHD_NO;
        ctx->start = sg_now_seconds();
        snprintf(ctx->method, sizeof ctx->method, "%s", method);
        snprintf(ctx->url, sizeof ctx->url, "%s", url);
        atomic_fetch_add(&g_in_flight, 1);
        *con_cls = ctx;
        srv_resp early;
        if (refuse_early(conn, mark, version, &early)) {
            /* Answered now; libmicrohttpd closes the connection rather than read a body. */
            srv_watch_handling(conn_watch(conn), true);
            return queue(conn, ctx, early);
        }
        /* A declared length over the limit is answered before any of the body is read. */
        const char *cl =
            mhd.MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoll(cl, NULL, 10) > g_srv.cfg.max_body) {
            ctx->too_big = true;
            /* Answered now; libmicrohttpd closes the connection rather than read the body. */
            srv_watch_handling(conn_watch(conn), true);
            return queue(conn, ctx, dispatch(conn, url, method, ctx));
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!ctx->too_big && ctx->len + *upload_size > (size_t)g_srv.cfg.max_body) {
            ctx->too_big = true;
            free(ctx->body);
            ctx->body = NULL;
            ctx->len = 0;
        }
        if (!ctx->too_big) {
            if (ctx->len + *upload_size + 1 > ctx->cap) {
                size_t cap = (ctx->len + *upload_size + 1) * 2;
                if (cap > (size_t)g_srv.cfg.max_body + 1) cap = (size_t)g_srv.cfg.max_body + 1;
                uint8_t *b = realloc(ctx->body, cap);
                if (!b) return MHD_NO;
                ctx->body = b;
                ctx->cap = cap;
            }
            memcpy(ctx->body + ctx->len, upload, *upload_size);
            ctx->len += *upload_size;
            ctx->body[ctx->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    srv_watch_handling(conn_watch(conn), true);
    return queue(conn, ctx, dispatch(conn, url, method, ctx));
}

static srv_watch *conn_watch(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        mhd.MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            mhd.MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? srv_watch_add(ci->connect_fd) : NULL;
    } else {
        srv_watch_remove(*socket_context);
        *socket_context = NULL;
    }
}

/* Client bytes inside the log line's quotes: as sg_put_printable shows them, and a '"' or '\\'
   as \x22, \x5c, so that "GET /x\" 200 ..." cannot end the field and forge a status. */
static void log_quoted(FILE *log, const char *s)
{
    while (*s) {
        size_t n = strcspn(s, "\"\\");
        char *part = n ? strndup(s, n) : NULL; /* sg_put_printable takes a C string */
        if (part) sg_put_printable(log, part);
        free(part);
        s += n;
        if (*s) fprintf(log, "\\x%02x", (unsigned char)*s++);
    }
}

/*
 * Appends one whole line to the access log with one write(), under the stream's lock so that
 * lines never interleave. A write cut short (a full disk) is taken back (the file truncated
 * to where the line began), so no torn line is left for the next one to be glued to; the
 * server says on stderr when lines start being lost and how many when they stop, where it
 * had lost them without a word.
 */
static void access_log_line(const char *line, size_t len)
{
    static long lost; /* under the log's lock */
    FILE *log = g_srv.cfg.access_log ? g_srv.cfg.access_log : stderr;
    const int fd = fileno(log);
    flockfile(log);
    fflush(log);
    bool ok = false;
    int e = ENOMEM;
    if (line && len) {
        ssize_t n;
        do
            n = write(fd, line, len);
        while (n < 0 && errno == EINTR);
        e = n < 0 ? errno : ENOSPC;
        ok = n == (ssize_t)len;
        /* cut short: the file (appended to, under this lock) ends with the n bytes written */
        struct stat st;
        if (!ok && n > 0 && g_srv.cfg.access_log &&
            (fstat(fd, &st) != 0 || ftruncate(fd, st.st_size - n) != 0))
            (void)!write(fd, "\n", 1);
    }
    if (g_srv.cfg.access_log && !ok && lost++ == 0)
        server_log("access log: cannot write a line (%s); request lines are lost until it "
                   "can",
                   strerror(e));
    else if (g_srv.cfg.access_log && ok && lost > 0) {
        server_log("access log: writing again; %ld request line%s lost", lost,
                   lost == 1 ? " was" : "s were");
        lost = 0;
    }
    funlockfile(log);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    req_ctx *ctx = *con_cls;
    if (!ctx || uri_mark(ctx)) return; /* no handler call was made */
    const union MHD_ConnectionInfo *ci =
        mhd.MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char addr[64] = "-";
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, addr,
                  sizeof addr);
    else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, addr,
                  sizeof addr);
    /* The time as text, formatted again only when the second changes (per thread). */
    static __thread time_t when_t = -1;
    static __thread char when[32];
    time_t now = time(NULL);
    if (now != when_t) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        when_t = now;
    }
    /* One line per request. The method and target are the client's bytes: shown, never
       acted on by whoever reads the log in a terminal, and never a line of their own. */
    char *line = NULL;
    size_t line_len = 0;
    FILE *mem = open_memstream(&line, &line_len);
    if (mem) {
        fprintf(mem, "%s %s %s \"", when, addr, ctx->who[0] ? ctx->who : "-");
        log_quoted(mem, ctx->method);
        fputc(' ', mem);
        log_quoted(mem, ctx->url);
        fprintf(mem, "\" %u %zu %.1fms%s\n", ctx->status, ctx->sent,
                (sg_now_seconds() - ctx->start) * 1e3,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
        if (fclose(mem) != 0) line_len = 0;
    }
    access_log_line(line, line_len);
    free(line);
    srv_watch_handling(conn_watch(conn), false);
    /* A large body's parse leaves the worker's heap grown; glibc keeps it per thread arena
       (4 workers had held 350 MB after a few large requests). Give it back. */
    const bool large = ctx->len > ((size_t)256 << 10);
    free(ctx->body);
    free(ctx);
    if (large) malloc_trim(0);
    *con_cls = NULL;
    atomic_fetch_sub(&g_in_flight, 1);
}

/* ------------------------------------------------------------------ start and stop */

/* Threads that libraries started before sg_server_run (OpenBLAS starts its pool when it is
 * loaded) do not block the stop and reload signals, and the kernel may deliver a
 * process-directed signal to any thread that does not block it: with the default action
 * SIGHUP would then kill the server, and SIGTERM would skip the graceful stop. This handler
 * runs only in such a thread; it sends the signal on to the main thread, which blocks it,
 * so its sigwait takes it as if it had come there. tgkill is async-signal-safe. */
static pid_t g_main_tid;
static void forward_signal(int sig)
{
    int saved = errno;
    syscall(SYS_tgkill, getpid(), g_main_tid, sig);
    errno = saved;
}

static sg_status parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
                              sg_err *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return sg_errf(err, SG_EINPUT, "--listen '%s' is not HOST:PORT", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    int64_t port;
    if (sg_parse_i64("--listen port", colon + 1, 0, 65535, &port, err) != SG_OK) return SG_EINPUT;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return sg_errf(err, SG_EINPUT, "--listen: '%s' is not an IPv6 address", host + 1);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
    } else {
        if (!strcmp(host, "localhost")) snprintf(host, sizeof host, "127.0.0.1");
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return sg_errf(err, SG_EINPUT, "--listen: '%s' is not an IPv4 address", host);
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
    }
    return SG_OK;
}

static sg_status load_config(const sg_server_config *cfg, sg_err *err)
{
    memset(&g_srv, 0, sizeof g_srv);
    g_srv.cfg = *cfg;
    sg_server_config *c = &g_srv.cfg;
    if (!c->threads) c->threads = 4;
    if (!c->max_body) c->max_body = 1 << 20;
    if (!c->max_header) c->max_header = 16 << 10;
    if (!c->timeout_s) c->timeout_s = 10;
    if (!c->request_time_s) c->request_time_s = 30;
    if (!c->max_connections) c->max_connections = 256;
    if (!c->tls_cert != !c->tls_key)
        return sg_errf(err, SG_EINPUT, "--tls-cert and --tls-key go together");
    if (c->artifact_root && !realpath(c->artifact_root, g_srv.artifact_root))
        return sg_errf(err, SG_EINPUT, "--artifact-root %s: %s", c->artifact_root, strerror(errno));
    if (c->key) {
        int rc = sg_key_load_private(c->key, &g_srv.key, err);
        if (rc != SG_OK) return rc;
    }
    if (c->tokens) {
        int rc = tokens_read(c->tokens, &g_tokens, err);
        if (rc != SG_OK) return rc;
        g_srv.auth = true;
    }
    /* Create the database (and run its migrations) once, before any worker opens it. */
    sg_registry *reg = NULL;
    int rc = sg_registry_open(c->db, true, &reg, err);
    if (rc == SG_OK) srv_serialize_writes = !sg_registry_queues_writers(reg);
    if (rc == SG_OK) sg_registry_close(reg);
    return rc;
}

static void release(void)
{
    for (size_t i = 0; i < g_n_regs; i++)
        sg_registry_close(g_regs[i]);
    free(g_regs);
    g_regs = NULL;
    g_n_regs = 0;
    tokens_release(g_tokens);
    g_tokens = NULL;
    EVP_PKEY_free(g_srv.key);
    g_srv.key = NULL;
}

/* While the daemon starts, libmicrohttpd's first message is kept for the one-line error
   instead of printed (it says "port 0" for an address it was given whole). */
static int g_starting;
static char g_start_msg[256];

/* libmicrohttpd's own messages: to stderr, never the access log (which holds request lines
   only), as one escaped line. Some quote the decoded request path ("Failed to send the
   response headers for the request for `/x\n...'"): written raw into the access log, a %0a
   in a path had added a forged request line, ESC bytes included, without a token. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (__atomic_load_n(&g_starting, __ATOMIC_ACQUIRE)) {
        if (!g_start_msg[0]) {
            line[strcspn(line, "\r\n")] = '\0';
            snprintf(g_start_msg, sizeof g_start_msg, "%s", line);
        }
        return;
    }
    server_log("%s", line); /* stderr, printable (sg_put_printable) */
}

/*
 * What GnuTLS would take and then fail every client with, refused at the start in one line:
 * a certificate outside its validity period (expired, or not valid yet) and an RSA key under
 * 2,048 bits (a 512-bit one started, then every handshake failed). A file that is no
 * certificate is left to libmicrohttpd, which names both files.
 */
static sg_status check_tls_cert(const char *path, const char *pem, size_t n, sg_err *err)
{
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x) {
        ERR_clear_error();
        return SG_OK;
    }
    sg_status rc = SG_OK;
    const ASN1_TIME *na = X509_get0_notAfter(x), *nb = X509_get0_notBefore(x);
    const int after_end = X509_cmp_current_time(na), before_start = X509_cmp_current_time(nb);
    const bool expired = after_end < 0;
    const bool early = before_start > 0;
    if (expired || early) {
        char when[64] = "?";
        BIO *m = BIO_new(BIO_s_mem());
        if (m && ASN1_TIME_print(m, expired ? na : nb) > 0) {
            int k = BIO_read(m, when, (int)sizeof when - 1);
            when[k > 0 ? k : 0] = '\0';
        }
        BIO_free(m);
        rc = sg_errf(err, SG_EINPUT, "%s: the certificate %s %s", path,
                     expired ? "expired on" : "is not valid before", when);
    }
    EVP_PKEY *k = X509_get0_pubkey(x);
    if (rc == SG_OK && k && EVP_PKEY_base_id(k) == EVP_PKEY_RSA && EVP_PKEY_get_bits(k) < 2048)
        rc = sg_errf(err, SG_EINPUT,
                     "%s: the certificate's RSA key has %d bits; TLS clients need at least 2048",
                     path, EVP_PKEY_get_bits(k));
    X509_free(x);
    return rc;
}

srv_mhd_api mhd;
SG_LAZYLIB(libmhd, mhd, MHD_FUNCS, "libmicrohttpd.so.12", "the registry server", "libmicrohttpd12");

sg_status srv_mhd_load(sg_err *err)
{
    return sg_lazylib_load(&libmhd, err);
}

sg_status sg_server_run(const sg_server_config *cfg, sg_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = srv_mhd_load(err);
    if (rc == SG_OK) rc = parse_listen(cfg->listen, &ss, &sl, err);
    if (rc == SG_OK) rc = load_config(cfg, err);
    char *cert = NULL;
    const char *key = NULL;
    sg_private_key_file *key_file = NULL;
    size_t n;
    if (rc == SG_OK && cfg->tls_cert) {
        if (mhd.MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            rc = sg_errf(err, SG_EINPUT, "this libmicrohttpd was built without TLS");
        if (rc == SG_OK) rc = sg_read_file(cfg->tls_cert, 1 << 20, (uint8_t **)&cert, &n, err);
        if (rc == SG_OK) rc = check_tls_cert(cfg->tls_cert, cert, n, err);
        /* read as the signing keys are (sg_key_file_read): a regular file that group and
           others cannot read, as ssh wants one (a mode-0644 key had been served with), in
           memory a fork does not copy, wiped when freed */
        if (rc == SG_OK) rc = sg_key_file_read(cfg->tls_key, &key_file, err);
        if (rc == SG_OK) key = sg_key_file_pem(key_file);
    }
    if (rc != SG_OK) {
        free(cert);
        sg_key_file_free(key_file);
        release();
        return rc;
    }
    /* Block the stop signals before the workers start, so they inherit the mask and only
     * sigwait below receives them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    g_main_tid = (pid_t)syscall(SYS_gettid);
    struct sigaction fwd, old_act[3];
    memset(&fwd, 0, sizeof fwd);
    fwd.sa_handler = forward_signal;
    fwd.sa_flags = SA_RESTART;
    sigfillset(&fwd.sa_mask);
    const int fwd_sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++)
        sigaction(fwd_sigs[i], &fwd, &old_act[i]);
    signal(SIGPIPE, SIG_IGN);
    if ((rc = srv_watch_start(g_srv.cfg.request_time_s, err)) != SG_OK) {
        for (int i = 0; i < 3; i++)
            sigaction(fwd_sigs[i], &old_act[i], NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        free(cert);
        sg_key_file_free(key_file);
        release();
        return rc;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
                     (cert ? MHD_USE_TLS : 0);
    const sg_server_config *c = &g_srv.cfg;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key},
        /* TLS 1.2 and 1.3 only, and no key exchange without forward secrecy: GnuTLS's
           defaults had negotiated TLS 1.0 and 1.1, and static RSA (AES128-SHA) */
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA"},
        {MHD_OPTION_END, 0, NULL},
    };
    g_start_msg[0] = '\0';
    __atomic_store_n(&g_starting, 1, __ATOMIC_RELEASE);
    struct MHD_Daemon *d = mhd.MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)c->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)c->max_header * 2, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
        NULL, MHD_OPTION_ARRAY,
        cert ? tls_opts : tls_opts + (sizeof tls_opts / sizeof tls_opts[0] - 1), MHD_OPTION_END);
    __atomic_store_n(&g_starting, 0, __ATOMIC_RELEASE);
    if (!d) {
        srv_watch_stop();
        for (int i = 0; i < 3; i++)
            sigaction(fwd_sigs[i], &old_act[i], NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        free(cert);
        sg_key_file_free(key_file);
        release();
        /* libmicrohttpd's reason: the text after its last ": " (the system's, for a bind) */
        const char *why = strrchr(g_start_msg, ':');
        why = why && why[1] ? why + 1 + (why[1] == ' ') : g_start_msg;
        const bool tls =
            cfg->tls_cert &&
            (strcasestr(g_start_msg, "x509") || strcasestr(g_start_msg, "certificate") ||
             strcasestr(g_start_msg, "key") || strcasestr(g_start_msg, "TLS"));
        if (tls)
            return sg_errf(err, SG_EINPUT, "%s, %s: not a certificate and key TLS can use (%s)",
                           cfg->tls_cert, cfg->tls_key, g_start_msg);
        return sg_errf(err, SG_EINPUT, "cannot listen on %s: %s", cfg->listen,
                       *why ? why : "in use, or not a local address?");
    }
    const union MHD_DaemonInfo *di = mhd.MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : 0;
    if (cfg->on_listen) cfg->on_listen(port, cfg->ctx);
    for (;;) {
        int sig = 0;
        if (sigwait(&stop, &sig) != 0) continue;
        if (sig != SIGHUP) {
            server_log("%s: stopping (finishing the requests in flight)", sig == SIGTERM ? "SIGTERM"
                                                                          : sig == SIGINT
                                                                              ? "SIGINT"
                                                                              : "signal");
            break;
        }
        tokens_reload();
    }
    /* Stop accepting; let the requests in flight finish (bounded), then stop the workers. */
    MHD_socket lsock = mhd.MHD_quiesce_daemon(d);
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    for (int i = 0; i < 6000 && atomic_load(&g_in_flight) > 0; i++)
        usleep(10000);
    mhd.MHD_stop_daemon(d);
    if (srv_writes)
        server_log("%ld writes: mean %.2f ms waiting for the server's write mutex, %.2f ms in "
                   "the registry%s",
                   srv_writes, srv_write_wait_s * 1e3 / (double)srv_writes,
                   srv_write_held_s * 1e3 / (double)srv_writes,
                   srv_serialize_writes ? ""
                                        : " (no mutex: the database queues writers itself; the "
                                          "wait for its lock is inside the registry time)");
    srv_watch_stop();
    /* A reload or stop signal that came while draining is answered by this stop: it must
     * not act (with its default action) once the mask is restored. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&stop, NULL, &zero) > 0)
        ;
    for (int i = 0; i < 3; i++)
        sigaction(fwd_sigs[i], &old_act[i], NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(cert);
    sg_key_file_free(key_file);
    release();
    return SG_OK;
}
