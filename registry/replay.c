/*
 * verify-log's replay: the audit log, read from its first event, rebuilds the registry's
 * state (registry keys, models and their configuration, versions and stages, approvals,
 * validations, tags, aliases, request nonces) while every rule the live registry applies is
 * checked again on the event that claims it: the signature of the request that asked for
 * the change, the key's role in the model's configuration as it stood then, the report that
 * let a version into the report stage (re-verified from its stored body), approvals,
 * single-version stages. The rebuilt state is then compared with the tables, so a row that
 * no event explains, or an event whose rules do not hold, is reported.
 *
 * What a replay cannot know: models created before schema 4 recorded no configuration, so
 * their events are replayed for state only (no key checks) until an admin records one; and
 * before the registry's first admin key (its root of trust) the configuration events
 * themselves are unsigned. docs/registry.md lists what is and is not detected.
 */
#define _GNU_SOURCE /* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry_internal.h"
#include "stagegate/keys.h"
#include "stagegate/report.h"

typedef struct {
    char **v;
    size_t n, cap;
} strvec;

static bool sv_push(strvec *s, char *owned)
{
    if (!owned) return false;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            free(owned);
            return false;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = owned;
    return true;
}

static void sv_free(strvec *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Removes the entry that starts with prefix (order is not kept); whether there was one. */
static bool sv_take_prefix(strvec *s, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < s->n; i++)
        if (!strncmp(s->v[i], prefix, n)) {
            free(s->v[i]);
            s->v[i] = s->v[--s->n];
            return true;
        }
    return false;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

typedef struct {
    char stage[REG_NAME_MAX];
    char sha[65];
    bool was_production; /* entered Production at some point */
} rp_version;

typedef struct {
    int64_t version;
    char approver[65];
    bool rejected;
    long long signed_seq; /* the audit head its signed request names; -1 for none */
    size_t nth;           /* the approver's nth decision on the version, in log order */
} rp_approval;

typedef struct {
    char name[256];
    json_t *cfg; /* recorded configuration; NULL for a model created before schema 4 */
    rp_version *v;
    size_t nv;
    rp_approval *a;
    size_t na;
    strvec passed; /* "%020lld" versions with a passed validation */
} rp_model;

typedef struct {
    sg_registry *reg;
    json_t *keys; /* {key_id: {role, pem}} */
    bool root;
    rp_model *m;
    size_t nm;
    /* what the tables must hold, one string per row */
    strvec versions, approvals, validations, tags, aliases, nonces, models, regkeys;
    /* descriptions set by events ("model version len:text", version 0 for the model's), and
       the models whose own description an event set (create-model's is not in the log) */
    strvec descriptions, described;
    /* an automatic archive waits for the event that caused it */
    bool pending;
    char pending_model[256], pending_actor[65], pending_action[16];
    int64_t pending_version;
    int64_t seq;
    int64_t legacy_events; /* events of models without a recorded configuration */
    strvec hashes;         /* each event's hash, by seq - 1 */
    bool bound;            /* a request named its registry (registry=SEQ:HASH) */
} rp_state;

typedef struct {
    int64_t seq, version;
    const char *model, *action, *from, *to, *actor, *evidence, *detail, *request, *sig, *time;
    const char *hash;
} rp_event;

static sg_status bad(rp_state *S, const rp_event *e, sg_err *err, const char *f, ...)
    __attribute__((format(printf, 4, 5)));
static sg_status bad(rp_state *S, const rp_event *e, sg_err *err, const char *f, ...)
{
    (void)S;
    char why[768];
    va_list ap;
    va_start(ap, f);
    vsnprintf(why, sizeof why, f, ap);
    va_end(ap);
    if (e->version)
        return sg_errf(err, SG_EREFUSED, "audit log: event %lld (%s %s v%lld): %s",
                       (long long)e->seq, e->action, e->model, (long long)e->version, why);
    return sg_errf(err, SG_EREFUSED, "audit log: event %lld (%s%s%s): %s", (long long)e->seq,
                   e->action, *e->model ? " " : "", e->model, why);
}

static rp_model *find_model(rp_state *S, const char *name)
{
    for (size_t i = 0; i < S->nm; i++)
        if (!strcmp(S->m[i].name, name)) return &S->m[i];
    return NULL;
}

static rp_version *find_version(rp_model *m, int64_t v)
{
    return m && v >= 1 && (size_t)v <= m->nv ? &m->v[v - 1] : NULL;
}

/* ---- the model's recorded configuration */

static json_t *cfg_stage(json_t *cfg, const char *name)
{
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(cfg, "stages"), i, g)
    {
        if (!strcasecmp(json_string_value(json_object_get(g, "name")), name)) return g;
    }
    return NULL;
}

static bool cfg_flag(json_t *g, const char *k)
{
    return json_is_true(json_object_get(g, k));
}

static bool cfg_transition(json_t *cfg, const char *from, const char *to)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(cfg, "transitions"), i, t)
    {
        if (!strcmp(json_string_value(json_array_get(t, 0)), from) &&
            !strcmp(json_string_value(json_array_get(t, 1)), to))
            return true;
    }
    return false;
}

/* The PEM of key_id in role (and stage, for promoters), or NULL. */
static const char *cfg_key(json_t *cfg, const char *role, const char *stage, const char *key_id)
{
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(cfg, "keys"), i, k)
    {
        if (!strcmp(json_string_value(json_object_get(k, "role")), role) &&
            !strcmp(json_string_value(json_object_get(k, "stage")), stage ? stage : "") &&
            !strcmp(json_string_value(json_object_get(k, "key_id")), key_id))
            return json_string_value(json_object_get(k, "public_pem"));
    }
    return NULL;
}

static const char *cfg_str(json_t *cfg, const char *k)
{
    const char *s = json_string_value(json_object_get(cfg, k));
    return s ? s : "";
}

/* ---- requests */

/*
 * The event's request must name exactly this change, be signed by `pem` (the actor's key in
 * the role the rule needs) or, for a request `stagegate serve` attested, by a registered
 * server key once the registry has a root, and be no further from the event's time than
 * the live check allows.
 */
static sg_status check_request(rp_state *S, const rp_event *e, const char *pem, const char *action,
                               int64_t version, const char *target, const char *evidence,
                               sg_err *err)
{
    const char *t = e->request;
    if (!*t) return bad(S, e, err, "no signed request, but the rules need one");
    char got[1024], want_v[32];
    snprintf(want_v, sizeof want_v, "%lld", (long long)version);
    const struct {
        const char *name, *want;
        bool ci;
    } f[] = {{"action", action, false}, {"model", e->model, false},    {"version", want_v, false},
             {"target", target, true},  {"evidence", evidence, false}, {"key", e->actor, false}};
    if (strncmp(t, "stagegate-registry-request/v1\n", 30) != 0)
        return bad(S, e, err, "its request is not a stagegate registry request");
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!reg_request_field(t, f[i].name, got, sizeof got) ||
            (f[i].ci ? strcasecmp(got, f[i].want) : strcmp(got, f[i].want)) != 0)
            return bad(S, e, err, "its request's %s is not the event's ('%.64s')", f[i].name,
                       f[i].want);
    }
    int64_t rt = 0, et = 0;
    if (!reg_request_field(t, "time", got, sizeof got) || reg_parse_utc(got, &rt) != SG_OK ||
        reg_parse_utc(e->time, &et) != SG_OK || rt - et > SG_REGISTRY_REQUEST_SKEW_S ||
        et - rt > SG_REGISTRY_REQUEST_SKEW_S)
        return bad(S, e, err, "its request time is not within %d s of the event",
                   SG_REGISTRY_REQUEST_SKEW_S);
    if (!reg_request_field(t, "nonce", got, sizeof got) || strlen(got) < 16)
        return bad(S, e, err, "its request has no nonce");
    /* the principal must hold the role the rule names, whoever signed for it */
    if (!pem) return bad(S, e, err, "key %.16s holds no role that may do this", e->actor);
    char server[80];
    if (reg_request_field(t, "auth", got, sizeof got)) {
        /* Attested by a server for a principal it authenticated: after the root exists the
         * server must sign it with a key an admin registered. */
        if (!S->root) return SG_OK;
        const char *spem = NULL;
        if (reg_request_field(t, "server", server, sizeof server)) {
            json_t *k = json_object_get(S->keys, server);
            if (k && !strcmp(json_string_value(json_object_get(k, "role")), "server"))
                spem = json_string_value(json_object_get(k, "pem"));
        }
        if (!spem)
            return bad(S, e, err,
                       "request attested by a server that is not a registered server key");
        return reg_sig_ok(spem, t, e->sig)
                   ? SG_OK
                   : bad(S, e, err, "the server's signature on its request does not verify");
    }
    return reg_sig_ok(pem, t, e->sig)
               ? SG_OK
               : bad(S, e, err, "the request signature by key %.16s does not verify", e->actor);
}

static const char *admin_pem(rp_state *S, const char *key_id)
{
    json_t *k = json_object_get(S->keys, key_id);
    if (!k || strcmp(json_string_value(json_object_get(k, "role")), "admin") != 0) return NULL;
    return json_string_value(json_object_get(k, "pem"));
}

/* The PEM of the actor's key if it holds any role in the model's configuration or is an
 * admin: who may make the changes the rules let anyone make, once there is a root. */
static const char *member_pem(rp_state *S, rp_model *m, const char *key_id)
{
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(m->cfg, "keys"), i, k)
    {
        if (!strcmp(json_string_value(json_object_get(k, "key_id")), key_id))
            return json_string_value(json_object_get(k, "public_pem"));
    }
    return admin_pem(S, key_id);
}

/* After the root, an event of a model with a recorded configuration is signed by a member. */
static sg_status member_signed(rp_state *S, const rp_event *e, rp_model *m, int64_t version,
                               const char *target, sg_err *err)
{
    if (!S->root || !m->cfg) return SG_OK;
    return check_request(S, e, member_pem(S, m, e->actor), e->action, version, target, e->evidence,
                         err);
}

/* ---- events */

static sg_status ev_add_key(rp_state *S, const rp_event *e, sg_err *err)
{
    const char *role = e->to;
    if (strcmp(role, "admin") != 0 && strcmp(role, "server") != 0)
        return bad(S, e, err, "unknown registry key role '%s'", role);
    EVP_PKEY *key = NULL;
    char id[65];
    sg_err kerr;
    if (sg_key_load_public_pem(e->detail, strlen(e->detail), "registry key", &key, &kerr) != SG_OK)
        return bad(S, e, err, "the recorded key is not a public key");
    sg_status rc = sg_key_id(key, id, err);
    EVP_PKEY_free(key);
    if (rc != SG_OK) return rc;
    if (strcmp(id, e->evidence) != 0) return bad(S, e, err, "the key's id is not its evidence");
    if (json_object_get(S->keys, id)) return bad(S, e, err, "key %.16s was added before", id);
    if (S->root) {
        rc = check_request(S, e, admin_pem(S, e->actor), "add-key", 0, role, id, err);
        if (rc != SG_OK) return rc;
    } else if (!strcmp(role, "server")) {
        return bad(S, e, err, "a server key added before any admin key");
    }
    json_object_set_new(S->keys, id, json_pack("{ssss}", "role", role, "pem", e->detail));
    if (!strcmp(role, "admin")) S->root = true;
    if (!sv_push(&S->regkeys, fmt("%s %s %s", id, role, e->detail)))
        return sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    return SG_OK;
}

/* Everything but the pins must stay as it was. */
static bool same_but_pins(json_t *a, json_t *b)
{
    json_t *ca = json_deep_copy(a), *cb = json_deep_copy(b);
    const char *k[] = {"policy_sha256", "dataset_sha256"};
    for (int i = 0; i < 2; i++) {
        json_object_del(ca, k[i]);
        json_object_del(cb, k[i]);
    }
    bool same = json_equal(ca, cb);
    json_decref(ca);
    json_decref(cb);
    return same;
}

static sg_status ev_config(rp_state *S, const rp_event *e, sg_err *err)
{
    bool create = !strcmp(e->action, "create-model");
    rp_model *m = find_model(S, e->model);
    if (create && m) return bad(S, e, err, "the model already exists");
    if (!create && !m) return bad(S, e, err, "no such model");
    json_t *cfg = NULL;
    bool recorded = reg_config_is(e->detail, create ? e->evidence : "", &cfg);
    if (!create) {
        char sha[65];
        sg_sha256_hex((const uint8_t *)e->detail, strlen(e->detail), sha);
        recorded = reg_config_is(e->detail, sha, &cfg);
    }
    if (recorded && strcmp(cfg_str(cfg, "name"), e->model) != 0) {
        sg_status brc =
            bad(S, e, err, "its configuration is for model '%.128s'", cfg_str(cfg, "name"));
        json_decref(cfg);
        return brc;
    }
    sg_status rc = SG_OK;
    if (!create && !recorded) rc = bad(S, e, err, "it records no configuration");
    if (rc == SG_OK && !create) {
        char ev[65];
        reg_pins_evidence(cfg_str(cfg, "policy_sha256"), cfg_str(cfg, "dataset_sha256"), ev);
        if (strcmp(ev, e->evidence) != 0)
            rc = bad(S, e, err, "its evidence is not the pins it records");
        else if (m->cfg && !same_but_pins(m->cfg, cfg))
            rc = bad(S, e, err, "it changes more than the pins");
    }
    if (rc == SG_OK && S->root && !recorded)
        rc = bad(S, e, err,
                 "model created without a recorded configuration after the root of trust");
    if (rc == SG_OK && S->root)
        rc = check_request(S, e, admin_pem(S, e->actor), e->action, 0, "", e->evidence, err);
    if (rc != SG_OK) {
        json_decref(cfg);
        return rc;
    }
    if (create) {
        rp_model *nm = realloc(S->m, (S->nm + 1) * sizeof *nm);
        if (!nm) {
            json_decref(cfg);
            return sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
        }
        S->m = nm;
        m = &S->m[S->nm++];
        memset(m, 0, sizeof *m);
        snprintf(m->name, sizeof m->name, "%s", e->model);
    }
    json_decref(m->cfg);
    m->cfg = cfg;
    return SG_OK;
}

static sg_status ev_create_version(rp_state *S, const rp_event *e, sg_err *err)
{
    rp_model *m = find_model(S, e->model);
    if (!m) return bad(S, e, err, "no such model");
    if (e->version != (int64_t)m->nv + 1)
        return bad(S, e, err, "versions are numbered %zu next", m->nv + 1);
    if (strlen(e->evidence) != 64) return bad(S, e, err, "no artifact digest");
    sg_status mrc = member_signed(S, e, m, 0, "", err);
    if (mrc != SG_OK) return mrc;
    if (m->cfg) {
        json_t *first = json_array_get(json_object_get(m->cfg, "stages"), 0);
        if (strcmp(json_string_value(json_object_get(first, "name")), e->to) != 0)
            return bad(S, e, err, "a new version enters '%s', not '%s'",
                       json_string_value(json_object_get(first, "name")), e->to);
        static const char *const needs[] = {"requires_report", "requires_promoter",
                                            "requires_validation", "requires_approval"};
        for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++)
            if (cfg_flag(first, needs[i]))
                return bad(S, e, err, "a new version entered '%s', whose entry %s", e->to,
                           needs[i]);
    }
    rp_version *nv = realloc(m->v, (m->nv + 1) * sizeof *nv);
    if (!nv) return sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    m->v = nv;
    rp_version *v = &m->v[m->nv++];
    memset(v, 0, sizeof *v);
    snprintf(v->stage, sizeof v->stage, "%s", e->to);
    snprintf(v->sha, sizeof v->sha, "%s", e->evidence);
    return SG_OK;
}

static bool has_passed(rp_model *m, int64_t version)
{
    char key[32];
    snprintf(key, sizeof key, "%020lld", (long long)version);
    for (size_t i = 0; i < m->passed.n; i++)
        if (!strcmp(m->passed.v[i], key)) return true;
    return false;
}

/* The approval rule at this point of the log: no standing rejection, and an approval by a
 * key other than the promoter's. */
static sg_status approvals_ok(rp_state *S, const rp_event *e, rp_model *m, int64_t version,
                              const char *promoter, bool need_approval, sg_err *err)
{
    bool approved = false;
    for (size_t i = 0; i < m->na; i++) {
        const rp_approval *a = &m->a[i];
        if (a->version != version) continue;
        /* the approver's latest decision counts: the one whose signed request names the
           latest audit head, as the live registry decides (lifecycle.c), then the log's order */
        bool latest = true;
        for (size_t j = 0; j < m->na && latest; j++)
            if (j != i && m->a[j].version == version && !strcmp(m->a[j].approver, a->approver) &&
                (m->a[j].signed_seq > a->signed_seq ||
                 (m->a[j].signed_seq == a->signed_seq && j > i)))
                latest = false;
        if (!latest) continue;
        if (a->rejected) return bad(S, e, err, "approver %.16s had rejected it", a->approver);
        if (strcmp(a->approver, promoter) != 0) approved = true;
    }
    if (need_approval && !approved)
        return bad(S, e, err, "no approval by a key other than the promoter's");
    return SG_OK;
}

/* Re-verifies the stored report that let the version in, as the live check did. */
static sg_status replay_report(rp_state *S, const rp_event *e, rp_model *m, rp_version *v,
                               sg_err *err)
{
    uint8_t *body = NULL;
    size_t len = 0;
    sg_err lerr;
    sg_status rc = reg_report_load(S->reg, e->evidence, &body, &len, &lerr);
    if (rc != SG_OK) {
        S->reg->read_rc = SG_OK; /* a missing row is a finding, not a failed read */
        return rc == SG_ENOMEM || rc == SG_EIO ? sg_errf(err, rc, "%s", lerr.msg)
                                               : bad(S, e, err, "%s", lerr.msg);
    }
    sg_report_info info;
    memset(&info, 0, sizeof info);
    bool verified = false;
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(m->cfg, "keys"), i, k)
    {
        if (verified) break;
        if (strcmp(json_string_value(json_object_get(k, "role")), "signer") != 0) continue;
        const char *pem = json_string_value(json_object_get(k, "public_pem"));
        EVP_PKEY *pub = NULL;
        sg_err verr;
        if (sg_key_load_public_pem(pem, strlen(pem), "signer", &pub, &verr) != SG_OK) continue;
        sg_report_info_clear(&info);
        memset(&info, 0, sizeof info);
        verified = sg_report_verify(body, len, pub, NULL, &info, &verr) == SG_OK;
        EVP_PKEY_free(pub);
    }
    free(body);
    int64_t ts = 0, et = 0;
    if (!verified)
        rc = bad(S, e, err, "its report does not verify against the model's signer keys");
    else if (strcmp(info.subject_sha256, v->sha) != 0)
        rc = bad(S, e, err, "its report is for another artifact");
    else if (strcmp(info.result, "PASSED") != 0)
        rc = bad(S, e, err, "its report says %s", info.result);
    else if (reg_parse_utc(info.timestamp, &ts) != SG_OK || reg_parse_utc(e->time, &et) != SG_OK ||
             et - ts > json_integer_value(json_object_get(m->cfg, "max_report_age_days")) * 86400 ||
             ts - et > SG_REGISTRY_REQUEST_SKEW_S)
        rc = bad(S, e, err, "its report's time %s was not within the model's report age",
                 info.timestamp);
    else if (reg_pins_check(m->name, cfg_str(m->cfg, "policy_sha256"),
                            cfg_str(m->cfg, "dataset_sha256"), info.statement, &lerr) != SG_OK)
        rc = bad(S, e, err, "%s", lerr.msg);
    else if (json_integer_value(json_object_get(
                 json_object_get(
                     json_object_get(json_object_get(info.statement, "predicate"), "registry"),
                     "audit_head"),
                 "seq")) >= e->seq)
        rc = bad(S, e, err, "its report names an audit head at or after this event");
    else if ((rc = reg_report_head_check(S->reg, info.statement, &lerr)) != SG_OK)
        rc = rc == SG_EREFUSED ? bad(S, e, err, "%s", lerr.msg) : sg_errf(err, rc, "%s", lerr.msg);
    if (rc == SG_OK &&
        !sv_push(&S->validations, fmt("%s %020lld %s %s %s %s", m->name, (long long)e->version,
                                      e->to, e->evidence, info.key_id, info.result)))
        rc = sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    sg_report_info_clear(&info);
    return rc;
}

static sg_status occupy(rp_state *S, const rp_event *e, rp_model *m, json_t *g, sg_err *err)
{
    if (!g || cfg_flag(g, "multi_version")) return SG_OK;
    for (size_t i = 0; i < m->nv; i++)
        if ((int64_t)i + 1 != e->version && !strcasecmp(m->v[i].stage, e->to))
            return bad(S, e, err, "v%zu was still in %s, a single-version stage", i + 1, e->to);
    return SG_OK;
}

static sg_status ev_transition(rp_state *S, const rp_event *e, sg_err *err)
{
    rp_model *m = find_model(S, e->model);
    rp_version *v = find_version(m, e->version);
    if (!v) return bad(S, e, err, "no such version");
    if (strcmp(v->stage, e->from) != 0)
        return bad(S, e, err, "the version was in '%s', not '%s'", v->stage, e->from);
    sg_status rc = SG_OK;
    if (m->cfg) {
        json_t *g = cfg_stage(m->cfg, e->to);
        bool leaving = !strcmp(e->from, REG_PRODUCTION);
        if (!g) return bad(S, e, err, "the model has no stage '%s'", e->to);
        if (!cfg_transition(m->cfg, e->from, e->to))
            return bad(S, e, err, "the model's policy does not allow %s -> %s", e->from, e->to);
        bool promoter = cfg_flag(g, "requires_promoter");
        if (promoter || leaving) {
            const char *pem = promoter ? cfg_key(m->cfg, "promoter", e->to, e->actor) : NULL;
            if (leaving && (!promoter || pem))
                pem = cfg_key(m->cfg, "promoter", REG_PRODUCTION, e->actor);
            rc = check_request(S, e, pem, "transition", e->version, e->to, e->evidence, err);
        } else {
            rc = member_signed(S, e, m, e->version, e->to, err);
        }
        if (rc == SG_OK && cfg_flag(g, "requires_report") && !*e->evidence)
            rc = bad(S, e, err, "the stage needs a report and the event names none");
        if (rc == SG_OK && *e->evidence) rc = replay_report(S, e, m, v, err);
        if (rc == SG_OK && *e->evidence) {
            char key[32];
            snprintf(key, sizeof key, "%020lld", (long long)e->version);
            if (!sv_push(&m->passed, strdup(key)))
                rc = sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
        }
        if (rc == SG_OK && cfg_flag(g, "requires_validation") && !has_passed(m, e->version))
            rc = bad(S, e, err, "no passed validation before it");
        if (rc == SG_OK && cfg_flag(g, "requires_approval"))
            rc = approvals_ok(S, e, m, e->version, e->actor, true, err);
        if (rc == SG_OK) rc = occupy(S, e, m, g, err);
    } else {
        S->legacy_events++;
        if (*e->evidence &&
            !sv_push(&S->validations,
                     fmt("%s %020lld %s %s", m->name, (long long)e->version, e->to, e->evidence)))
            rc = sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    }
    if (rc != SG_OK) return rc;
    snprintf(v->stage, sizeof v->stage, "%s", e->to);
    if (!strcmp(e->to, REG_PRODUCTION)) v->was_production = true;
    return SG_OK;
}

static sg_status ev_archive(rp_state *S, const rp_event *e, sg_err *err)
{
    rp_model *m = find_model(S, e->model);
    rp_version *v = find_version(m, e->version);
    if (!v) return bad(S, e, err, "no such version");
    if (strcmp(v->stage, REG_PRODUCTION) != 0 || strcmp(e->from, REG_PRODUCTION) != 0)
        return bad(S, e, err, "only a version in Production is archived this way");
    long long by = 0;
    bool rollback = !strcmp(e->action, "rollback-archive");
    if (sscanf(e->detail, "replaced by v%lld", &by) != 1)
        return bad(S, e, err, "it does not say which version replaced it");
    S->pending = true;
    snprintf(S->pending_model, sizeof S->pending_model, "%s", e->model);
    snprintf(S->pending_actor, sizeof S->pending_actor, "%s", e->actor);
    snprintf(S->pending_action, sizeof S->pending_action, "%s",
             rollback ? "rollback" : "transition");
    S->pending_version = by;
    snprintf(v->stage, sizeof v->stage, "%s", e->to);
    return SG_OK;
}

static sg_status ev_approve(rp_state *S, const rp_event *e, sg_err *err)
{
    rp_model *m = find_model(S, e->model);
    if (!find_version(m, e->version)) return bad(S, e, err, "no such version");
    bool reject = !strcmp(e->action, "reject");
    char ev[65] = "";
    if (*e->detail) sg_sha256_hex((const uint8_t *)e->detail, strlen(e->detail), ev);
    if (strcmp(ev, e->evidence) != 0) return bad(S, e, err, "its evidence is not its comment");
    if (m->cfg) {
        sg_status rc = check_request(S, e, cfg_key(m->cfg, "approver", "", e->actor), e->action,
                                     e->version, REG_PRODUCTION, e->evidence, err);
        if (rc != SG_OK) return rc;
    } else {
        S->legacy_events++;
    }
    rp_approval *na = realloc(m->a, (m->na + 1) * sizeof *na);
    if (!na) return sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    m->a = na;
    rp_approval *a = &m->a[m->na++];
    a->version = e->version;
    a->rejected = reject;
    snprintf(a->approver, sizeof a->approver, "%s", e->actor);
    char ref[160];
    a->signed_seq = -1;
    if (reg_request_field(e->request, "registry", ref, sizeof ref) &&
        sscanf(ref, "%lld:", &a->signed_seq) != 1)
        a->signed_seq = -1;
    a->nth = 1;
    for (size_t i = 0; i + 1 < m->na; i++)
        if (m->a[i].version == e->version && !strcmp(m->a[i].approver, e->actor)) a->nth++;
    /* with its place among the approver's decisions: the table's rows in another order (a
       rejection swapped with an earlier approval) are not what the log says */
    if (!sv_push(&S->approvals, fmt("%s %020lld %s %zu %s %s", m->name, (long long)e->version,
                                    e->actor, a->nth, reject ? "rejected" : "approved", e->detail)))
        return sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    return SG_OK;
}

/*
 * A version back in Production without a promotion: `rollback` (the version that was in
 * Production before the current one), or `restore` (MLflow's rollback recipe through the
 * server, lifecycle.c: an Archived version). Both need a Production promoter, a version
 * that was in Production before and no standing rejection; a restore also a passed
 * validation.
 */
static sg_status ev_back_to_production(rp_state *S, const rp_event *e, bool restore, sg_err *err)
{
    rp_model *m = find_model(S, e->model);
    rp_version *v = find_version(m, e->version);
    if (!v) return bad(S, e, err, "no such version");
    if (strcmp(v->stage, e->from) != 0)
        return bad(S, e, err, "the version was in '%s', not '%s'", v->stage, e->from);
    if (restore && (strcmp(e->from, REG_ARCHIVED) != 0 || strcmp(e->to, REG_PRODUCTION) != 0))
        return bad(S, e, err, "a restore takes an Archived version to Production");
    if (!v->was_production) return bad(S, e, err, "the version was never in Production");
    if (m->cfg) {
        /* the request a rollback signs names the model; a restore's, the version */
        sg_status rc = check_request(S, e, cfg_key(m->cfg, "promoter", REG_PRODUCTION, e->actor),
                                     restore ? "transition" : "rollback", restore ? e->version : 0,
                                     REG_PRODUCTION, "", err);
        if (rc == SG_OK && restore && !has_passed(m, e->version))
            rc = bad(S, e, err, "no passed validation before it");
        if (rc == SG_OK) rc = approvals_ok(S, e, m, e->version, "", false, err);
        if (rc == SG_OK) rc = occupy(S, e, m, cfg_stage(m->cfg, REG_PRODUCTION), err);
        if (rc != SG_OK) return rc;
    } else {
        S->legacy_events++;
    }
    snprintf(v->stage, sizeof v->stage, "%s", REG_PRODUCTION);
    return SG_OK;
}

static sg_status ev_tag(rp_state *S, const rp_event *e, sg_err *err)
{
    rp_model *m = find_model(S, e->model);
    if (!find_version(m, e->version)) return bad(S, e, err, "no such version");
    const char *eq = strchr(e->detail, '=');
    bool set = !strcmp(e->action, "set-tag");
    if (set != (eq != NULL)) return bad(S, e, err, "its detail is not KEY=VALUE");
    size_t kl = set ? (size_t)(eq - e->detail) : strlen(e->detail);
    char tkey[REG_TAG_KEY_MAX];
    snprintf(tkey, sizeof tkey, "%.*s", (int)kl, e->detail);
    sg_status mrc = member_signed(S, e, m, e->version, tkey, err);
    if (mrc != SG_OK) return mrc;
    /* The key goes with its length: a key may hold a space, and "a b" = "c" must not read as
       "a" = "b c" (table_rows writes the table's key the same way). */
    char *prefix =
        fmt("%s %020lld %zu:%.*s ", m->name, (long long)e->version, kl, (int)kl, e->detail);
    if (!prefix) return sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    bool found = sv_take_prefix(&S->tags, prefix);
    sg_status rc = SG_OK;
    if (!set && !found) rc = bad(S, e, err, "the version had no such tag");
    if (rc == SG_OK && set && !sv_push(&S->tags, fmt("%s%s", prefix, eq + 1)))
        rc = sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    free(prefix);
    return rc;
}

static sg_status ev_description(rp_state *S, const rp_event *e, sg_err *err)
{
    rp_model *m = find_model(S, e->model);
    if (e->version && !find_version(m, e->version)) return bad(S, e, err, "no such version");
    char sha[65];
    sg_sha256_hex((const uint8_t *)e->detail, strlen(e->detail), sha);
    if (strcmp(sha, e->evidence) != 0)
        return bad(S, e, err, "its evidence is not its text's digest");
    sg_status rc = member_signed(S, e, m, e->version, "", err);
    if (rc != SG_OK) return rc;
    char *prefix = fmt("%s %020lld ", m->name, (long long)e->version);
    if (!prefix) return sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    (void)sv_take_prefix(&S->descriptions, prefix);
    if (*e->detail &&
        !sv_push(&S->descriptions, fmt("%s%zu:%s", prefix, strlen(e->detail), e->detail)))
        rc = sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    free(prefix);
    if (rc == SG_OK && !e->version) {
        bool seen = false;
        for (size_t i = 0; i < S->described.n && !seen; i++)
            seen = !strcmp(S->described.v[i], m->name);
        if (!seen && !sv_push(&S->described, strdup(m->name)))
            rc = sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    }
    return rc;
}

static sg_status ev_alias(rp_state *S, const rp_event *e, sg_err *err)
{
    rp_model *m = find_model(S, e->model);
    if (!m) return bad(S, e, err, "no such model");
    bool set = !strcmp(e->action, "set-alias");
    if (set && !find_version(m, e->version)) return bad(S, e, err, "no such version");
    sg_status mrc = member_signed(S, e, m, e->version, e->detail, err);
    if (mrc != SG_OK) return mrc;
    char *prefix = fmt("%s %s ", m->name, e->detail);
    if (!prefix) return sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    bool found = sv_take_prefix(&S->aliases, prefix);
    sg_status rc = SG_OK;
    if (!set && !found) rc = bad(S, e, err, "the model had no such alias");
    if (rc == SG_OK && set &&
        !sv_push(&S->aliases, fmt("%s%020lld", prefix, (long long)e->version)))
        rc = sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    free(prefix);
    return rc;
}

static sg_status apply(rp_state *S, const rp_event *e, sg_err *err)
{
    if (S->pending) {
        /* an archive is caused by a promotion (transition, or a restore) or a rollback */
        bool cause = !strcmp(e->action, S->pending_action) ||
                     (!strcmp(S->pending_action, "transition") && !strcmp(e->action, "restore"));
        bool ok = cause && !strcmp(e->model, S->pending_model) &&
                  e->version == S->pending_version && !strcmp(e->actor, S->pending_actor) &&
                  !strcmp(e->to, REG_PRODUCTION);
        S->pending = false;
        if (!ok)
            return bad(S, e, err, "the archive before it is not followed by the %s that caused it",
                       S->pending_action);
    }
    /* Every request names the registry it was made for: an event of this log before its own
     * (head_ref in request.c). One from another registry with the same names and keys would
     * name an event this log does not hold. Requests made before stagegate named it carry no
     * such line; once one did, every later one must. */
    char ref[160];
    if (*e->request && reg_request_field(e->request, "registry", ref, sizeof ref)) {
        long long rs = -1;
        char rh[65];
        int used = 0;
        if (sscanf(ref, "%lld:%64[0-9a-f]%n", &rs, rh, &used) != 2 || used != (int)strlen(ref) ||
            rs < 0 || rs >= e->seq || strlen(rh) != 64 ||
            strcmp(rh, rs == 0 ? REG_ZERO_HASH : S->hashes.v[rs - 1]) != 0)
            return bad(S, e, err,
                       "its request was made for another registry (it names event '%.100s', "
                       "which this log does not hold before it)",
                       ref);
        S->bound = true;
    } else if (*e->request && S->bound) {
        return bad(S, e, err, "its request names no registry, after requests that did");
    }
    /* every request's nonce was recorded, whether or not the rules needed the request */
    char nonce[80];
    if (*e->request && reg_request_field(e->request, "nonce", nonce, sizeof nonce) &&
        !sv_push(&S->nonces, strdup(nonce)))
        return sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log");
    const char *a = e->action;
    if (!strcmp(a, "add-key")) return ev_add_key(S, e, err);
    if (!strcmp(a, "create-model") || !strcmp(a, "set-pins")) return ev_config(S, e, err);
    /* the registry's random id: its first event, nothing else (registries made before it
       have none) */
    if (!strcmp(a, "create-registry"))
        return e->seq == 1 && !*e->model && !e->version && !*e->request && !*e->actor &&
                       strlen(e->detail) == 64 && strspn(e->detail, "0123456789abcdef") == 64
                   ? SG_OK
                   : bad(S, e, err, "a registry's id is its first event only, 64 hex digits");
    if (!find_model(S, e->model)) return bad(S, e, err, "no such model");
    if (!strcmp(a, "create-version")) return ev_create_version(S, e, err);
    if (!strcmp(a, "transition")) return ev_transition(S, e, err);
    if (!strcmp(a, "archive") || !strcmp(a, "rollback-archive")) return ev_archive(S, e, err);
    if (!strcmp(a, "approve") || !strcmp(a, "reject")) return ev_approve(S, e, err);
    if (!strcmp(a, "rollback") || !strcmp(a, "restore"))
        return ev_back_to_production(S, e, !strcmp(a, "restore"), err);
    if (!strcmp(a, "set-tag") || !strcmp(a, "delete-tag")) return ev_tag(S, e, err);
    if (!strcmp(a, "set-alias") || !strcmp(a, "delete-alias")) return ev_alias(S, e, err);
    if (!strcmp(a, "set-description")) return ev_description(S, e, err);
    return bad(S, e, err, "unknown action");
}

/* ---- the tables against the replayed state */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rows of sql, their columns joined by spaces; column 1 padded as a version when pad_col1,
 * column len_col (> 0) with its length in bytes before it ("5:owner"). */
static sg_status table_rows(sg_registry *reg, const char *sql, int ncols, bool pad_col1,
                            int len_col, strvec *out, sg_err *err)
{
    reg_stmt *st;
    sg_status rc = reg_prepare(reg, sql, &st, err);
    if (rc != SG_OK) return rc;
    while (reg_row(reg, st, err)) {
        char *row = NULL;
        for (int i = 0; i < ncols; i++) {
            char *next;
            if (i == 1 && pad_col1)
                next = fmt("%s%s%020lld", row ? row : "", row ? " " : "",
                           (long long)reg_col_int64(st, i));
            else if (len_col > 0 && i == len_col)
                next = fmt("%s%s%zu:%s", row ? row : "", row ? " " : "",
                           strlen(reg_col_text(st, i)), reg_col_text(st, i));
            else
                next = fmt("%s%s%s", row ? row : "", row ? " " : "", reg_col_text(st, i));
            free(row);
            row = next;
            if (!row) break;
        }
        if (!sv_push(out, row)) {
            rc = sg_errf(err, SG_ENOMEM, "out of memory comparing the tables with the log");
            break;
        }
    }
    reg_finalize(st);
    return rc != SG_OK ? rc : reg->read_rc;
}

static sg_status compare(const char *what, strvec *log, strvec *tab, sg_err *err)
{
    if (log->n) qsort(log->v, log->n, sizeof *log->v, cmp_str);
    if (tab->n) qsort(tab->v, tab->n, sizeof *tab->v, cmp_str);
    size_t i = 0, j = 0;
    while (i < log->n || j < tab->n) {
        int c = i == log->n ? 1 : j == tab->n ? -1 : strcmp(log->v[i], tab->v[j]);
        if (c == 0) {
            i++, j++;
            continue;
        }
        const char *row = c < 0 ? log->v[i] : tab->v[j];
        return sg_errf(err, SG_EREFUSED, "audit log: %s: %s row '%.160s' %s", what,
                       c < 0 ? "the log's" : "the table's", row,
                       c < 0 ? "is missing from the table" : "is not explained by any event");
    }
    return SG_OK;
}

static sg_status compare_tables(rp_state *S, sg_err *err)
{
    sg_registry *reg = S->reg;
    for (size_t i = 0; i < S->nm; i++) {
        rp_model *m = &S->m[i];
        if (!sv_push(&S->models, strdup(m->name)))
            return sg_errf(err, SG_ENOMEM, "out of memory comparing the tables with the log");
        for (size_t v = 0; v < m->nv; v++)
            if (!sv_push(&S->versions,
                         fmt("%s %020zu %s %s", m->name, v + 1, m->v[v].stage, m->v[v].sha)))
                return sg_errf(err, SG_ENOMEM, "out of memory comparing the tables with the log");
    }
    const struct {
        const char *what, *sql;
        int ncols;
        bool pad;
        int len_col;
        strvec *log;
    } t[] = {
        {"registered models", "SELECT name FROM registered_models", 1, false, 0, &S->models},
        {"model versions (stage, artifact digest)",
         "SELECT model_name, version, stage, artifact_sha256 FROM model_versions", 4, true, 0,
         &S->versions},
        {"approvals",
         "SELECT model_name, version, approver_key_id, ROW_NUMBER() OVER (PARTITION BY"
         " model_name, version, approver_key_id ORDER BY id), decision, comment FROM approvals",
         6, true, 0, &S->approvals},
        {"version tags", "SELECT model_name, version, tag_key, tag_value FROM version_tags", 4,
         true, 2, &S->tags},
        {"registry keys", "SELECT key_id, role, public_pem FROM registry_keys", 3, false, 0,
         &S->regkeys},
        {"request nonces", "SELECT nonce FROM request_nonces", 1, false, 0, &S->nonces},
    };
    sg_status rc = SG_OK;
    for (size_t i = 0; rc == SG_OK && i < sizeof t / sizeof t[0]; i++) {
        strvec tab = {0};
        rc = table_rows(reg, t[i].sql, t[i].ncols, t[i].pad, t[i].len_col, &tab, err);
        if (rc == SG_OK) rc = compare(t[i].what, t[i].log, &tab, err);
        sv_free(&tab);
    }
    /* descriptions: every version's, and a model's once an event set it */
    if (rc == SG_OK) {
        strvec tab = {0};
        rc = table_rows(reg,
                        "SELECT model_name, version, description FROM model_versions"
                        " WHERE description <> '' UNION ALL SELECT name, 0, description"
                        " FROM registered_models WHERE description <> ''",
                        3, true, 2, &tab, err);
        for (size_t i = 0; rc == SG_OK && i < tab.n;) {
            /* a model's row (version 0) is compared only when an event set its description */
            const char *sp = strchr(tab.v[i], ' ');
            bool model_row = sp && !strncmp(sp + 1, "00000000000000000000 ", 21), keep = !model_row;
            for (size_t k = 0; model_row && k < S->described.n && !keep; k++)
                keep = strlen(S->described.v[k]) == (size_t)(sp - tab.v[i]) &&
                       !strncmp(S->described.v[k], tab.v[i], (size_t)(sp - tab.v[i]));
            if (keep) {
                i++;
                continue;
            }
            free(tab.v[i]);
            tab.v[i] = tab.v[--tab.n];
        }
        if (rc == SG_OK) rc = compare("descriptions", &S->descriptions, &tab, err);
        sv_free(&tab);
    }
    /* aliases: model alias version (the version is the last column here) */
    if (rc == SG_OK) {
        strvec tab = {0};
        reg_stmt *st;
        rc = reg_prepare(reg, "SELECT model_name, alias, version FROM aliases", &st, err);
        while (rc == SG_OK && reg_row(reg, st, err))
            if (!sv_push(&tab, fmt("%s %s %020lld", reg_col_text(st, 0), reg_col_text(st, 1),
                                   (long long)reg_col_int64(st, 2))))
                rc = sg_errf(err, SG_ENOMEM, "out of memory comparing the tables with the log");
        if (rc == SG_OK) {
            reg_finalize(st);
            rc = reg->read_rc;
        }
        if (rc == SG_OK) rc = compare("aliases", &S->aliases, &tab, err);
        sv_free(&tab);
    }
    /* validations: with the signer and result where the log can tell them */
    if (rc == SG_OK) {
        strvec tab = {0};
        reg_stmt *st;
        rc = reg_prepare(reg,
                         "SELECT v.model_name, v.version, v.stage, v.report_sha256,"
                         " v.signer_key_id, v.result FROM validations v",
                         &st, err);
        while (rc == SG_OK && reg_row(reg, st, err)) {
            rp_model *m = find_model(S, reg_col_text(st, 0));
            bool full = m && m->cfg;
            char *row =
                full ? fmt("%s %020lld %s %s %s %s", reg_col_text(st, 0),
                           (long long)reg_col_int64(st, 1), reg_col_text(st, 2),
                           reg_col_text(st, 3), reg_col_text(st, 4), reg_col_text(st, 5))
                     : fmt("%s %020lld %s %s", reg_col_text(st, 0), (long long)reg_col_int64(st, 1),
                           reg_col_text(st, 2), reg_col_text(st, 3));
            if (!sv_push(&tab, row))
                rc = sg_errf(err, SG_ENOMEM, "out of memory comparing the tables with the log");
        }
        if (rc == SG_OK) {
            reg_finalize(st);
            rc = reg->read_rc;
        }
        if (rc == SG_OK) rc = compare("validations", &S->validations, &tab, err);
        sv_free(&tab);
    }
    /* each model's keys, stages, transitions and pins: the configuration last recorded */
    for (size_t i = 0; rc == SG_OK && i < S->nm; i++) {
        rp_model *m = &S->m[i];
        if (!m->cfg) continue;
        json_t *now = reg_config_from_tables(reg, m->name, err);
        if (!now) return reg->read_rc != SG_OK ? reg->read_rc : SG_EINTERNAL;
        if (!json_equal(now, m->cfg))
            rc = sg_errf(err, SG_EREFUSED,
                         "audit log: model %s: its keys, stages, transitions or pins in the "
                         "tables are not the configuration its events recorded",
                         m->name);
        json_decref(now);
    }
    return rc;
}

static void state_free(rp_state *S)
{
    for (size_t i = 0; i < S->nm; i++) {
        json_decref(S->m[i].cfg);
        free(S->m[i].v);
        free(S->m[i].a);
        sv_free(&S->m[i].passed);
    }
    free(S->m);
    json_decref(S->keys);
    strvec *all[] = {&S->versions, &S->approvals,    &S->validations, &S->tags,
                     &S->aliases,  &S->nonces,       &S->models,      &S->regkeys,
                     &S->hashes,   &S->descriptions, &S->described};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sv_free(all[i]);
}

sg_status reg_replay(sg_registry *reg, reg_replay_summary *sum, sg_err *err)
{
    memset(sum, 0, sizeof *sum);
    rp_state S = {.reg = reg, .keys = json_object()};
    reg_stmt *st;
    sg_status rc = reg_prepare(reg,
                               "SELECT seq, model_name, version, action, from_stage, to_stage,"
                               " actor_key_id, evidence_sha256, detail, request_text, signature,"
                               " created_at, hash FROM audit_log ORDER BY seq",
                               &st, err);
    if (rc != SG_OK) {
        state_free(&S);
        return rc;
    }
    /* The rows are copied before the next read: replay_report reads the reports table. */
    while (rc == SG_OK && reg_row(reg, st, err)) {
        char *f[13];
        for (int i = 1; i < 13; i++)
            f[i] = strdup(reg_col_text(st, i));
        rp_event e = {.seq = reg_col_int64(st, 0),
                      .model = f[1],
                      .version = reg_col_int64(st, 2),
                      .action = f[3],
                      .from = f[4],
                      .to = f[5],
                      .actor = f[6],
                      .evidence = f[7],
                      .detail = f[8],
                      .request = f[9],
                      .sig = f[10],
                      .time = f[11],
                      .hash = f[12]};
        bool oom = false;
        for (int i = 1; i < 13; i++)
            oom |= !f[i];
        oom = oom || !sv_push(&S.hashes, strdup(e.hash));
        /* seq runs from 1 without a gap (the chain check before replay): hashes[seq - 1] */
        rc = oom ? sg_errf(err, SG_ENOMEM, "out of memory replaying the audit log")
             : e.seq != (int64_t)S.hashes.n
                 ? sg_errf(err, SG_EREFUSED, "audit log: event %lld is out of sequence",
                           (long long)e.seq)
                 : apply(&S, &e, err);
        for (int i = 1; i < 13; i++)
            free(f[i]);
        S.seq = e.seq;
    }
    reg_finalize(st);
    if (rc == SG_OK) rc = reg->read_rc;
    if (rc == SG_OK && S.pending)
        rc = sg_errf(err, SG_EREFUSED,
                     "audit log: the last event archives a Production version without the %s "
                     "that caused it",
                     S.pending_action);
    /* a nonce used twice is a replayed request */
    if (rc == SG_OK) {
        if (S.nonces.n) qsort(S.nonces.v, S.nonces.n, sizeof *S.nonces.v, cmp_str);
        for (size_t i = 1; rc == SG_OK && i < S.nonces.n; i++)
            if (!strcmp(S.nonces.v[i], S.nonces.v[i - 1]))
                rc = sg_errf(err, SG_EREFUSED, "audit log: request nonce %s is used twice",
                             S.nonces.v[i]);
    }
    if (rc == SG_OK) rc = compare_tables(&S, err);
    sum->root = S.root;
    for (size_t i = 0; i < S.nm; i++)
        if (!S.m[i].cfg) sum->unrecorded_models++;
    sum->models = (int64_t)S.nm;
    sum->unchecked_events = S.legacy_events;
    json_t *k;
    const char *id;
    json_object_foreach(S.keys, id, k)
    {
        if (!strcmp(json_string_value(json_object_get(k, "role")), "admin")) sum->admins++;
    }
    state_free(&S);
    return rc;
}

json_t *reg_replay_admin_pems(sg_registry *reg, sg_err *err)
{
    /* The admin keys as the log introduced them (not as registry_keys says). */
    reg_stmt *st;
    if (reg_prepare(reg,
                    "SELECT detail FROM audit_log WHERE action = 'add-key' AND to_stage = 'admin'"
                    " ORDER BY seq",
                    &st, err) != SG_OK)
        return NULL;
    json_t *arr = json_array();
    while (reg_row(reg, st, err))
        json_array_append_new(arr, json_string(reg_col_text(st, 0)));
    reg_finalize(st);
    if (reg->read_rc != SG_OK) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}
