/*
 * `stagegate registry --db http(s)://HOST:PORT ...`: the registry subcommands through a
 * `stagegate serve`, with libcurl. The caller is the principal of the token in
 * $STAGEGATE_TOKEN (else $MLFLOW_TRACKING_TOKEN); the server applies the registry's rules
 * and answers with the same reason text, which is printed as the local registry prints it,
 * with the same exit codes (1 refused, 2 input or usage error).
 */
/* libcurl is opened when a command first talks to a server (sg_lazylib), and called through
   pointers: its headers' type-checking macros, which would wrap those calls, are off. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_registry.h"

#define CURL_FUNCS(X)                                                                              \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_escape) X(curl_easy_getinfo) X(curl_easy_init) X(curl_easy_perform)                \
        X(curl_easy_reset) X(curl_easy_setopt) X(curl_easy_strerror) X(curl_free)                  \
            X(curl_global_cleanup) X(curl_global_init) X(curl_slist_append) X(curl_slist_free_all)
static struct {
    CURL_FUNCS(SG_LAZY_FIELD)
} curl;
SG_LAZYLIB(libcurl, curl, CURL_FUNCS, "libcurl.so.4", "a registry through a server", "libcurl4");

#define M "/api/2.0/mlflow/"
#define SGAPI "/api/stagegate/"

typedef struct {
    char *data;
    size_t len;
} buf;

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
    buf *b = ctx;
    size_t add = size * n;
    if (b->len + add > (64u << 20)) return 0;
    char *d = realloc(b->data, b->len + add + 1);
    if (!d) return 0;
    memcpy(d + b->len, p, add);
    b->len += add;
    d[b->len] = '\0';
    b->data = d;
    return add;
}

bool reg_cli_is_remote(const char *db)
{
    return db && (!strncmp(db, "http://", 7) || !strncmp(db, "https://", 8));
}

typedef struct {
    reg_cli *c;
    CURL *curl;
    char base[1024];
} remote;

/* One call; *out is the response document on 200. Returns the exit code (0 on success). */
static int call(remote *r, const char *method, const char *path, const char *body, size_t len,
                json_t **out)
{
    *out = NULL;
    char url[4096];
    snprintf(url, sizeof url, "%s%s", r->base, path);
    buf b = {0};
    struct curl_slist *h = NULL;
    const char *var = "STAGEGATE_TOKEN", *token = getenv(var);
    if (!token || !*token) token = getenv(var = "MLFLOW_TRACKING_TOKEN");
    char auth[512];
    if (token && *token) {
        /* One printable word: a CR or LF would end the header and start another of the
           caller's making, and a longer token would be cut short here. */
        size_t n = 0;
        while (token[n] > 0x20 && token[n] < 0x7f)
            n++;
        if (token[n] || n > sizeof auth - 32) {
            fprintf(stderr, "stagegate: $%s: %s\n", var,
                    token[n] ? "a token is one word of printable characters (this one holds a "
                               "space, a control character or a byte past ASCII)"
                             : "longer than 480 characters");
            free(b.data);
            return 2;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl.curl_slist_append(h, auth);
    }
    h = curl.curl_slist_append(h, "Content-Type: application/json");
    CURL *c = r->curl;
    curl.curl_easy_reset(c);
    curl.curl_easy_setopt(c, CURLOPT_URL, url);
    curl.curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl.curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl.curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl.curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl.curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl.curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    const char *ca = getenv("STAGEGATE_CA_BUNDLE");
    if (ca && *ca) curl.curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    if (body) {
        curl.curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl.curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    CURLcode cc = curl.curl_easy_perform(c);
    long status = 0;
    curl.curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl.curl_slist_free_all(h);
    if (cc != CURLE_OK) {
        free(b.data);
        fputs("stagegate: registry server ", stderr);
        sg_put_printable(stderr, r->base);
        fprintf(stderr, ": %s\n", curl.curl_easy_strerror(cc));
        return 2;
    }
    json_error_t jerr;
    json_t *doc = b.data ? json_loads(b.data, 0, &jerr) : NULL;
    free(b.data);
    if (status == 200 && doc) {
        *out = doc;
        return 0;
    }
    const char *msg = doc ? sg_json_str(doc, "message") : "";
    /* the server's words: one line, nothing a terminal would act on */
    fputs("stagegate: ", stderr);
    sg_put_printable(stderr, *msg ? msg : "the server's answer is not JSON");
    fputc('\n', stderr);
    bool refused = status == 401 || status == 403 ||
                   json_is_true(json_object_get(doc, "refused")) ||
                   (status == 409 && strstr(path, "verify-log"));
    json_decref(doc);
    return refused ? 1 : 2;
}

static int post(remote *r, const char *path, json_t *body, json_t **out)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) return 2;
    int rc = call(r, "POST", path, text, strlen(text), out);
    free(text);
    return rc;
}

/* GET path?k1=v1&k2=v2 (NULL values skipped). */
static int get(remote *r, const char *path, const char *k1, const char *v1, const char *k2,
               const char *v2, json_t **out)
{
    char q[8192];
    size_t n = (size_t)snprintf(q, sizeof q, "%s", path);
    const char *ks[2] = {k1, k2}, *vs[2] = {v1, v2};
    for (int i = 0; i < 2; i++) {
        if (!ks[i] || !vs[i]) continue;
        char *e = curl.curl_easy_escape(r->curl, vs[i], 0);
        if (!e) return 2;
        n += (size_t)snprintf(q + n, n < sizeof q ? sizeof q - n : 0, "%c%s=%s",
                              strchr(q, '?') ? '&' : '?', ks[i], e);
        curl.curl_free(e);
    }
    if (n >= sizeof q) return sg_cli_usage_error(r->c->cmd, "arguments too long");
    return call(r, "GET", q, NULL, 0, out);
}

static int print_written(remote *r, const char *model, const char *version)
{
    json_t *doc;
    int rc = get(r, SGAPI "get", "name", model, "version", version, &doc);
    if (rc) return rc;
    (void)sg_json_print(doc); /* a failed write: main reports it */
    json_decref(doc);
    return 0;
}

static int pem_list(const sg_opt_list *l, json_t *arr, bool staged, json_t *by_stage)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *path = l->v[i];
        char stage[128] = "";
        if (staged) {
            const char *eq = strchr(path, '=');
            if (!eq || (size_t)(eq - path) >= sizeof stage)
                return sg_cli_usage_error("registry create-model",
                                          "--promoter: '%s' is not STAGE=PUB.pem", path);
            memcpy(stage, path, (size_t)(eq - path));
            stage[eq - path] = '\0';
            path = eq + 1;
        }
        uint8_t *pem = NULL;
        size_t len = 0;
        sg_err err;
        int rc = sg_read_file(path, 1 << 20, &pem, &len, &err);
        if (rc != SG_OK) return sg_cli_fail(rc, &err);
        json_t *s = json_stringn((const char *)pem, len);
        free(pem);
        if (staged) {
            json_t *a = json_object_get(by_stage, stage);
            if (!a) json_object_set_new(by_stage, stage, a = json_array());
            json_array_append_new(a, s);
        } else {
            json_array_append_new(arr, s);
        }
    }
    return 0;
}

static json_t *string_array(const sg_opt_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->v[i]));
    return a;
}

static int create_model(remote *r)
{
    reg_cli *c = r->c;
    json_t *pol = json_object(), *signers = json_array(), *approvers = json_array(),
           *promoters = json_object();
    json_object_set_new(pol, "signers", signers);
    json_object_set_new(pol, "approvers", approvers);
    json_object_set_new(pol, "promoters", promoters);
    int rc = pem_list(&c->signers, signers, false, NULL);
    if (!rc) rc = pem_list(&c->approvers, approvers, false, NULL);
    if (!rc) rc = pem_list(&c->promoters, NULL, true, promoters);
    if (rc) {
        json_decref(pol);
        return rc;
    }
    /* The gate's pins, as the local create-model takes them (a file, sha256:HEX or none). */
    char pin_policy[65] = "", pin_data[65] = "";
    sg_err err;
    sg_status prc = SG_OK;
    if (c->policy) prc = reg_cli_digest_arg("policy", c->policy, pin_policy, &err);
    if (prc == SG_OK && c->dataset) prc = reg_cli_digest_arg("dataset", c->dataset, pin_data, &err);
    if (prc != SG_OK) {
        json_decref(pol);
        return reg_cli_fail(prc, &err);
    }
    if (pin_policy[0]) json_object_set_new(pol, "policy_sha256", json_string(pin_policy));
    if (pin_data[0]) json_object_set_new(pol, "dataset_sha256", json_string(pin_data));
    json_object_set_new(pol, "require_approval", json_boolean(c->require_approval));
    if (c->max_age) json_object_set_new(pol, "max_report_age_days", json_integer(c->max_age));
    if (c->report_stage) json_object_set_new(pol, "report_stage", json_string(c->report_stage));
    if (c->transitions) json_object_set_new(pol, "transitions", json_string(c->transitions));
    if (c->stages) {
        json_t *st = json_array();
        /* Every entry, empty ones too: the server refuses those, as the local command does. */
        char *copy = strdup(c->stages), *rest = copy;
        for (char *t; rest && (t = strsep(&rest, ",")) != NULL;)
            json_array_append_new(st, json_string(t));
        free(copy);
        json_object_set_new(pol, "stages", st);
    }
    json_object_set_new(pol, "single_version", string_array(&c->single));
    json_object_set_new(pol, "multi_version", string_array(&c->multi));
    json_t *tags = json_array();
    for (size_t i = 0; i < c->tags.n; i++) {
        const char *eq = strchr(c->tags.v[i], '=');
        if (!eq || eq == c->tags.v[i]) {
            json_decref(tags);
            json_decref(pol);
            return sg_cli_usage_error(c->cmd, "--tag: '%s' is not KEY=VALUE", c->tags.v[i]);
        }
        json_array_append_new(tags, json_pack("{s:s%,s:s}", "key", c->tags.v[i],
                                              (size_t)(eq - c->tags.v[i]), "value", eq + 1));
    }
    json_t *body =
        json_pack("{s:s,s:o,s:o}", "name", c->pos[0], "stagegate_policy", pol, "tags", tags);
    if (c->description) json_object_set_new(body, "description", json_string(c->description));
    json_t *doc;
    if ((rc = post(r, M "registered-models/create", body, &doc))) return rc;
    json_decref(doc);
    if (c->json) return print_written(r, c->pos[0], NULL);
    printf("created model %s\n", c->pos[0]);
    return 0;
}

/* An answer with status 200 that lacks what the command reports is no answer from a
   stagegate server (a misdirected URL, a proxy answering JSON): exit 2, never a success
   printed from empty fields ("audit log verified: 0 events" had come from "{}"). */
static int unexpected(remote *r, json_t *doc, const char *what)
{
    json_decref(doc);
    fputs("stagegate: registry server ", stderr);
    sg_put_printable(stderr, r->base);
    fprintf(stderr, ": unexpected answer (%s)\n", what);
    return 2;
}

static bool hex64(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int create_version(remote *r)
{
    reg_cli *c = r->c;
    char abs[2 * PATH_MAX + 2], uri[2 * PATH_MAX + 16];
    /* The server reads the artifact itself (under its --artifact-root) and computes its
       digest. The path is the caller's: made absolute against this directory even when it
       is not here (the server may see it where this machine does not), never left relative
       for the server to read under its root (another file than the one named here). */
    if (!realpath(c->pos[1], abs)) {
        char cwd[PATH_MAX];
        if (c->pos[1][0] == '/')
            snprintf(abs, sizeof abs, "%s", c->pos[1]);
        else if (getcwd(cwd, sizeof cwd))
            snprintf(abs, sizeof abs, "%s/%s", cwd, c->pos[1]);
        else
            return sg_cli_usage_error(c->cmd, "artifact %s: %s", c->pos[1], strerror(errno));
    }
    snprintf(uri, sizeof uri, "file://%s", abs);
    json_t *doc;
    int rc = post(r, M "model-versions/create",
                  json_pack("{ssss}", "name", c->pos[0], "source", uri), &doc);
    if (rc) return rc;
    const char *v = sg_json_str(json_object_get(doc, "model_version"), "version");
    int64_t vn;
    if (!sg_version_parse(v, &vn)) return unexpected(r, doc, "no model_version.version");
    if (c->json)
        rc = print_written(r, c->pos[0], v);
    else {
        sg_put_printable(stdout, v);
        putchar('\n');
    }
    json_decref(doc);
    return rc;
}

static int transition(remote *r)
{
    reg_cli *c = r->c;
    json_t *doc;
    int rc;
    json_t *body =
        json_pack("{ssssss}", "name", c->pos[0], "version", c->pos[1], "stage", c->pos[2]);
    if (c->report) {
        /* The report travels inside the transition request: one call, as locally. */
        uint8_t *rep = NULL;
        size_t len = 0;
        sg_err err;
        if ((rc = sg_read_file(c->report, 64u << 20, &rep, &len, &err)) != SG_OK) {
            json_decref(body);
            return sg_cli_fail(rc, &err);
        }
        json_object_set_new(body, "stagegate_report", json_stringn((const char *)rep, len));
        free(rep);
    }
    rc = post(r, M "model-versions/transition-stage", body, &doc);
    if (rc) return rc;
    /* The server confirms a transition into the current stage for MLflow's clients, which
       retry; this command answers as it does on a local registry. */
    bool unchanged = json_is_true(json_object_get(doc, "stagegate_unchanged"));
    json_decref(doc);
    if (unchanged) {
        sg_err err;
        return sg_cli_fail(
            sg_errf(&err, SG_EINPUT, "%s v%s is already in %s", c->pos[0], c->pos[1], c->pos[2]),
            &err);
    }
    if (c->json) return print_written(r, c->pos[0], c->pos[1]);
    printf("%s v%s -> %s\n", c->pos[0], c->pos[1], c->pos[2]);
    return 0;
}

static int approve(remote *r)
{
    reg_cli *c = r->c;
    json_t *body =
        json_pack("{sssssb}", "name", c->pos[0], "version", c->pos[1], "reject", c->reject);
    if (c->comment) json_object_set_new(body, "comment", json_string(c->comment));
    json_t *doc;
    int rc = post(r, SGAPI "approve", body, &doc);
    if (rc) return rc;
    if (!hex64(json_string_value(json_object_get(doc, "approver_key_id"))))
        return unexpected(r, doc, "no approver_key_id");
    if (c->json)
        (void)sg_json_print(doc); /* a failed write: main reports it */
    else
        printf("%s v%s %s by key %.16s\n", c->pos[0], c->pos[1],
               c->reject ? "rejected" : "approved", sg_json_str(doc, "approver_key_id"));
    json_decref(doc);
    return rc;
}

static int rollback(remote *r)
{
    reg_cli *c = r->c;
    json_t *doc;
    int rc = post(r, SGAPI "rollback", json_pack("{ss}", "name", c->pos[0]), &doc);
    if (rc) return rc;
    if (json_integer_value(json_object_get(doc, "restored_version")) < 1)
        return unexpected(r, doc, "no restored_version");
    if (c->json)
        (void)sg_json_print(doc); /* a failed write: main reports it */
    else
        printf("%s: v%lld restored to Production, v%lld archived\n", c->pos[0],
               (long long)json_integer_value(json_object_get(doc, "restored_version")),
               (long long)json_integer_value(json_object_get(doc, "archived_version")));
    json_decref(doc);
    return rc;
}

/* set-description: MLflow's update of the version, or of the model. */
static int set_description(remote *r)
{
    reg_cli *c = r->c;
    const bool of_version = c->n_pos == 3;
    json_t *body = json_pack("{ssss}", "name", c->pos[0], "description", c->pos[c->n_pos - 1]);
    if (body && of_version) json_object_set_new(body, "version", json_string(c->pos[1]));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    json_t *doc = NULL;
    int rc = text ? call(r, "PATCH",
                         of_version ? M "model-versions/update" : M "registered-models/update",
                         text, strlen(text), &doc)
                  : 2;
    free(text);
    json_decref(doc);
    if (rc || !c->json) return rc;
    return print_written(r, c->pos[0], of_version ? c->pos[1] : NULL);
}

static int tag_alias(remote *r)
{
    reg_cli *c = r->c;
    const char *s = c->sub;
    json_t *doc = NULL;
    int rc;
    if (!strcmp(s, "set-tag"))
        rc = post(r, M "model-versions/set-tag",
                  json_pack("{ssssssss}", "name", c->pos[0], "version", c->pos[1], "key", c->pos[2],
                            "value", c->pos[3]),
                  &doc);
    else if (!strcmp(s, "delete-tag")) {
        char *t = json_dumps(
            json_pack("{ssssss}", "name", c->pos[0], "version", c->pos[1], "key", c->pos[2]),
            JSON_COMPACT);
        rc = t ? call(r, "DELETE", M "model-versions/delete-tag", t, strlen(t), &doc) : 2;
        free(t);
    } else if (!strcmp(s, "set-alias"))
        rc =
            post(r, M "registered-models/alias",
                 json_pack("{ssssss}", "name", c->pos[0], "alias", c->pos[1], "version", c->pos[2]),
                 &doc);
    else {
        char *t =
            json_dumps(json_pack("{ssss}", "name", c->pos[0], "alias", c->pos[1]), JSON_COMPACT);
        rc = t ? call(r, "DELETE", M "registered-models/alias", t, strlen(t), &doc) : 2;
        free(t);
    }
    json_decref(doc);
    if (rc || !c->json) return rc;
    bool version = !strcmp(s, "set-tag") || !strcmp(s, "delete-tag");
    return print_written(r, c->pos[0],
                         version                   ? c->pos[1]
                         : !strcmp(s, "set-alias") ? c->pos[2]
                                                   : NULL);
}

static int read_sub(remote *r)
{
    reg_cli *c = r->c;
    json_t *doc = NULL;
    int rc;
    if (!strcmp(c->sub, "get"))
        rc = get(r, SGAPI "get", "name", c->pos[0], "version", c->n_pos == 2 ? c->pos[1] : NULL,
                 &doc);
    else if (!strcmp(c->sub, "list"))
        rc = get(r, SGAPI "list", NULL, NULL, NULL, NULL, &doc);
    else if (!strcmp(c->sub, "search"))
        rc = get(r, SGAPI "search", "filter", c->n_pos ? c->pos[0] : "", NULL, NULL, &doc);
    else if (!strcmp(c->sub, "history"))
        rc = get(r, SGAPI "history", "name", c->pos[0], NULL, NULL, &doc);
    else
        rc = get(r, SGAPI "verify-log", NULL, NULL, NULL, NULL, &doc);
    if (rc) return rc;
    if (!strcmp(c->sub, "verify-log") &&
        (!json_is_true(json_object_get(doc, "ok")) ||
         !json_is_integer(json_object_get(doc, "events")) ||
         !hex64(json_string_value(json_object_get(doc, "head_hash")))))
        return unexpected(r, doc, "no ok, events and head_hash");
    if (!strcmp(c->sub, "get") && !json_is_string(json_object_get(doc, "name")))
        return unexpected(r, doc, "no name");
    return reg_cli_print(c, doc);
}

int reg_cli_remote(reg_cli *c)
{
    const char *s = c->sub;
    /* The root of trust is managed next to the database, with the admin's key file. */
    if (!strcmp(s, "resolve") || !strcmp(s, "record") || !strcmp(s, "runs") ||
        !strcmp(s, "set-run-verdict") || !strcmp(s, "pin") || !strcmp(s, "keys") ||
        !strcmp(s, "checkpoint") || !strcmp(s, "init") || !strcmp(s, "reindex-reports") ||
        (!strcmp(s, "verify-log") && c->checkpoint))
        return sg_cli_usage_error(c->cmd, "%s works on a local registry only, not through a server",
                                  s);
    if (c->as)
        return sg_cli_usage_error(c->cmd, "--as: through a server the caller is the principal of "
                                          "its token ($STAGEGATE_TOKEN), not a key file");
    sg_err lerr;
    sg_status lrc = sg_lazylib_load(&libcurl, &lerr);
    if (lrc != SG_OK) return sg_cli_fail(lrc, &lerr);
    if (curl.curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return sg_cli_usage_error(c->cmd, "libcurl failed to start");
    remote r = {.c = c, .curl = curl.curl_easy_init()};
    if (!r.curl) return 2;
    snprintf(r.base, sizeof r.base, "%s", c->db);
    size_t n = strlen(r.base);
    while (n && r.base[n - 1] == '/')
        r.base[--n] = '\0';
    int rc;
    if (!strcmp(s, "create-model"))
        rc = create_model(&r);
    else if (!strcmp(s, "create-version"))
        rc = create_version(&r);
    else if (!strcmp(s, "transition"))
        rc = transition(&r);
    else if (!strcmp(s, "approve"))
        rc = approve(&r);
    else if (!strcmp(s, "rollback"))
        rc = rollback(&r);
    else if (!strcmp(s, "set-description"))
        rc = set_description(&r);
    else if (strstr(s, "-tag") || strstr(s, "-alias"))
        rc = tag_alias(&r);
    else
        rc = read_sub(&r);
    curl.curl_easy_cleanup(r.curl);
    curl.curl_global_cleanup();
    return rc;
}
