/*
 * MLflow Model Registry REST endpoints (/api/2.0/mlflow/...), mapped onto the registry's own
 * functions. Shapes follow MLflow's REST API reference (docs/server.md names each source);
 * the registry's JSON is translated here, and every change is made as the caller's
 * principal through an attested request, so the registry applies its rules and writes the
 * audit entries itself.
 */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <limits.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server_internal.h"
#include "stagegate/model.h"

/* ------------------------------------------------------------------ shapes */

/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12; d may run past the
 * month's end, counting on as timegm does). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The registry's own timestamps, "YYYY-MM-DDTHH:MM:SS" and a zone letter (reg_now_utc), read
 * by position; -1 when the text is not exactly that (ms_of then reads it as before). Two per
 * version in every answer: sscanf and timegm cost more than the rest of the conversion. */
static json_int_t ms_fast(const char *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    int v[20];
    for (int i = 0; i < 19; i++) {
        if (shape[i] == 'd') {
            if (t[i] < '0' || t[i] > '9') return -1;
            v[i] = t[i] - '0';
        } else if (t[i] != shape[i]) {
            return -1;
        }
    }
    int y = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3], mo = v[5] * 10 + v[6],
        d = v[8] * 10 + v[9], h = v[11] * 10 + v[12], mi = v[14] * 10 + v[15],
        se = v[17] * 10 + v[18];
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 60) return -1;
    return (json_int_t)((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000);
}

static json_int_t ms_of(const char *rfc3339)
{
    json_int_t fast = rfc3339 ? ms_fast(rfc3339) : -1;
    if (fast >= 0) return fast;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!rfc3339 || sscanf(rfc3339, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                           &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (json_int_t)timegm(&tm) * 1000;
}

static json_t *kv_list(const json_t *obj, const char *kname, const char *vname, bool int_values)
{
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        char buf[32];
        const char *s = json_string_value(v);
        if (int_values) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
            s = buf;
        }
        json_array_append_new(arr, json_pack("{ssss}", kname, k, vname, s ? s : ""));
    }
    return arr;
}

/* The registry's version document as MLflow's ModelVersion. */
json_t *srv_model_version_json(const json_t *v)
{
    char ver[32];
    snprintf(ver, sizeof ver, "%lld", (long long)json_integer_value(json_object_get(v, "version")));
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(sg_json_str(v, "name")));
    json_object_set_new(o, "version", json_string(ver));
    json_object_set_new(o, "creation_timestamp", json_integer(ms_of(sg_json_str(v, "created_at"))));
    json_object_set_new(o, "last_updated_timestamp",
                        json_integer(ms_of(sg_json_str(v, "updated_at"))));
    json_object_set_new(o, "current_stage", json_string(sg_json_str(v, "stage")));
    json_object_set_new(o, "description", json_string(sg_json_str(v, "description")));
    json_object_set_new(o, "source", json_string(sg_json_str(v, "artifact_path")));
    json_object_set_new(o, "run_id", json_string(""));
    json_object_set_new(o, "status", json_string("READY"));
    json_object_set_new(o, "tags", kv_list(json_object_get(v, "tags"), "key", "value", false));
    json_object_set_new(o, "aliases", json_deep_copy(json_object_get(v, "aliases")));
    /* stagegate's own fields; MLflow clients ignore fields they do not know. */
    json_object_set_new(o, "artifact_sha256", json_string(sg_json_str(v, "artifact_sha256")));
    json_object_set_new(o, "validated",
                        json_boolean(json_is_true(json_object_get(v, "validated"))));
    return o;
}

static bool in_stages(const json_t *stages, const char *stage)
{
    if (!json_array_size(stages)) return true;
    size_t i;
    json_t *s;
    json_array_foreach(stages, i, s) if (json_is_string(s) &&
                                         !strcasecmp(json_string_value(s), stage)) return true;
    return false;
}

/* The newest version in each stage (of those listed; all when stages is empty), MLflow's
 * "latest versions", in the model's stage order. */
static json_t *latest_versions(const json_t *model, const json_t *stages)
{
    json_t *arr = json_array(), *versions = json_object_get(model, "latest_versions");
    size_t i, j;
    json_t *st, *v;
    json_array_foreach(json_object_get(model, "stages"), i, st)
    {
        const char *stage = sg_json_str(st, "name");
        if (!*stage || !in_stages(stages, stage)) continue;
        const json_t *best = NULL;
        json_array_foreach(versions, j, v) if (!strcmp(sg_json_str(v, "stage"), stage)) best = v;
        if (best) json_array_append_new(arr, srv_model_version_json(best));
    }
    return arr;
}

static json_t *registered_model_json(const json_t *m)
{
    json_t *o = json_object();
    json_int_t created = ms_of(sg_json_str(m, "created_at")), updated = created,
               own = ms_of(sg_json_str(m, "updated_at")); /* set-description moves it */
    if (own > updated) updated = own;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(m, "latest_versions"), i, v)
    {
        json_int_t t = ms_of(sg_json_str(v, "updated_at"));
        if (t > updated) updated = t;
    }
    json_object_set_new(o, "name", json_string(sg_json_str(m, "name")));
    json_object_set_new(o, "creation_timestamp", json_integer(created));
    json_object_set_new(o, "last_updated_timestamp", json_integer(updated));
    const char *d = sg_json_str(m, "description");
    json_object_set_new(o, "description", json_string(d ? d : ""));
    json_object_set_new(o, "latest_versions", latest_versions(m, NULL));
    json_object_set_new(o, "tags", kv_list(json_object_get(m, "tags"), "key", "value", false));
    json_object_set_new(o, "aliases",
                        kv_list(json_object_get(m, "aliases"), "alias", "version", true));
    json_t *pol = json_object();
    json_object_set(pol, "stages", json_object_get(m, "stages"));
    json_object_set(pol, "report_stage", json_object_get(m, "report_stage"));
    json_object_set_new(o, "stagegate_policy", pol);
    return o;
}

static srv_resp model_doc(srv_req *r, const char *name, const char *key)
{
    sg_err err = {{0}};
    json_t *m = sg_registry_model_summary(r->reg, name, &err);
    if (!m) return srv_from_status(SG_EINPUT, &err);
    json_t *o = json_object();
    json_object_set_new(o, key, registered_model_json(m));
    json_decref(m);
    return srv_json(200, o);
}

static srv_resp version_doc(srv_req *r, const char *name, int64_t v)
{
    sg_err err = {{0}};
    json_t *doc = sg_registry_get_version(r->reg, name, v, &err);
    if (!doc) return srv_from_status(SG_EINPUT, &err);
    json_t *o = json_pack("{so}", "model_version", srv_model_version_json(doc));
    json_decref(doc);
    return srv_json(200, o);
}

/* The answer to a change of one version: the document the write itself left (no read after
 * the commit), else read. */
static srv_resp written_doc(srv_req *r, const char *name, int64_t v, json_t *doc)
{
    if (!doc) return version_doc(r, name, v);
    return srv_json(200, json_pack("{so}", "model_version", srv_model_version_json(doc)));
}

#define REQUIRE(var, key)                                                                          \
    const char *var = srv_param(r, key);                                                           \
    if (!var || !*var) return srv_missing(r, key)

/* A GET endpoint answers HEAD too, as its route's Allow header says. */
#define METHOD(m)                                                                                  \
    if (strcmp(r->method, m) != 0 && (strcmp(m, "GET") != 0 || strcmp(r->method, "HEAD") != 0))   \
    return srv_error(405, "BAD_REQUEST", "%s needs %s, not %s", r->url, m, r->method)

/* ------------------------------------------------------------------ registered models */

/* PEM keys from a JSON array of strings into refs (stage for promoters). */
static size_t add_keys(const json_t *arr, const char *stage, sg_registry_key_ref *out, size_t n,
                       size_t max)
{
    size_t i;
    json_t *k;
    json_array_foreach(arr, i, k) if (json_is_string(k) && n < max) out[n++] =
        (sg_registry_key_ref){.stage = stage, .pem = json_string_value(k)};
    return n;
}

/* An array of at most max strings, or absent. */
static bool string_array(const json_t *v, size_t max)
{
    if (!v) return true;
    if (!json_is_array(v) || json_array_size(v) > max) return false;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) if (!json_is_string(e)) return false;
    return true;
}

/* The body's tags: an array of at most 64 {key, value} string objects that the registry
   takes (sg_registry_tag_check: a model's tags and a version's have one rule). what receives
   the fault, if any. */
static void tags_check(const srv_req *r, char *what, size_t len)
{
    const json_t *tags = r->json ? json_object_get(r->json, "tags") : NULL;
    if (!tags) return;
    if (!json_is_array(tags) || json_array_size(tags) > 64) {
        snprintf(what, len, "tags must be an array of at most 64 {key, value} objects");
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach((json_t *)tags, i, t)
    {
        const json_t *k = json_object_get(t, "key"), *v = json_object_get(t, "value");
        if (!json_is_object(t) || !json_is_string(k) || (v && !json_is_string(v))) {
            snprintf(what, len, "tags[%zu] must be {\"key\": string, \"value\": string}", i);
            return;
        }
        /* the registry's own rule, checked before anything is created: a key it refuses
           only after the version was made had answered 400 for a version that exists */
        sg_err terr;
        if (sg_registry_tag_check(json_string_value(k), v ? json_string_value(v) : NULL, &terr)) {
            snprintf(what, len, "tags[%zu]: %.400s", i, terr.msg);
            return;
        }
    }
}

/*
 * The create-model body's types, checked before anything is created: a policy field of the
 * wrong type (require_approval "true", signers as one string, a 65th key) had been dropped or
 * read as its default with 200, leaving the model weaker than asked. Unknown policy keys are
 * refused too (a misspelt "approver" would otherwise mean no approvers). Tag keys hold no '='
 * (the registry records a tag as KEY=VALUE).
 */
/*
 * The "description" of a create or an update: a string of at most SG_REGISTRY_DESCRIPTION_MAX
 * bytes ("" clears it). Absent is NULL; another type is refused, not read as absent.
 */
static bool description_param(srv_req *r, const char **out, srv_resp *bad)
{
    *out = srv_param(r, "description");
    json_t *j = r->json ? json_object_get(r->json, "description") : NULL;
    if (j && !json_is_string(j)) {
        *bad = srv_error(400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter 'description': it must be a string");
        return false;
    }
    if (*out && strlen(*out) > SG_REGISTRY_DESCRIPTION_MAX) {
        *bad = srv_error(400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter 'description': %zu bytes, more than %d",
                         strlen(*out), SG_REGISTRY_DESCRIPTION_MAX);
        return false;
    }
    return true;
}

static bool create_model_body_ok(const srv_req *r, srv_resp *bad)
{
    const json_t *pol = r->json ? json_object_get(r->json, "stagegate_policy") : NULL;
    const char *why = NULL;
    char what[512] = "";
    if (pol && !json_is_object(pol)) {
        why = "stagegate_policy must be an object";
    } else if (pol) {
        static const char *const known[] = {"signers", "promoters", "approvers", "stages",
                                            "single_version", "multi_version", "report_stage",
                                            "transitions", "require_approval",
                                            "max_report_age_days", "policy_sha256",
                                            "dataset_sha256"};
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)pol, key, v)
        {
            size_t k = 0;
            while (k < sizeof known / sizeof known[0] && strcmp(key, known[k]) != 0)
                k++;
            if (k == sizeof known / sizeof known[0]) {
                snprintf(what, sizeof what, "stagegate_policy.%.64s is not a known key", key);
                break;
            }
        }
        const json_t *prom = json_object_get(pol, "promoters");
        if (!what[0] && prom && !json_is_object(prom)) why = "stagegate_policy.promoters must be an object of stage: [PEM keys]";
        if (!what[0] && !why && prom) {
            json_object_foreach((json_t *)prom, key, v) if (!string_array(v, 64))
            {
                snprintf(what, sizeof what,
                         "stagegate_policy.promoters.%.64s must be an array of at most 64 PEM keys",
                         key);
                break;
            }
        }
        static const char *const lists[] = {"signers", "approvers", "stages", "single_version",
                                            "multi_version"};
        for (size_t k = 0; !what[0] && !why && k < sizeof lists / sizeof lists[0]; k++)
            if (!string_array(json_object_get(pol, lists[k]), 64))
                snprintf(what, sizeof what,
                         "stagegate_policy.%s must be an array of at most 64 strings", lists[k]);
        static const char *const strs[] = {"report_stage", "transitions", "policy_sha256",
                                           "dataset_sha256"};
        for (size_t k = 0; !what[0] && !why && k < sizeof strs / sizeof strs[0]; k++) {
            const json_t *sv = json_object_get(pol, strs[k]);
            if (sv && !json_is_string(sv))
                snprintf(what, sizeof what, "stagegate_policy.%s must be a string", strs[k]);
        }
        const json_t *ra = json_object_get(pol, "require_approval"),
                     *age = json_object_get(pol, "max_report_age_days");
        if (!what[0] && !why && ra && !json_is_boolean(ra))
            why = "stagegate_policy.require_approval must be true or false";
        if (!what[0] && !why && age &&
            (!json_is_integer(age) || json_integer_value(age) < 1 ||
             json_integer_value(age) > 36500))
            why = "stagegate_policy.max_report_age_days must be an integer from 1 to 36500";
    }
    if (!what[0] && !why) tags_check(r, what, sizeof what);
    if (!what[0] && !why) return true;
    *bad = srv_error(400, "INVALID_PARAMETER_VALUE", "%s", what[0] ? what : why);
    return false;
}

static srv_resp create_model(srv_req *r)
{
    METHOD("POST");
    REQUIRE(name, "name");
    srv_resp bad;
    if (!create_model_body_ok(r, &bad)) return bad;
    const char *description = NULL;
    if (!description_param(r, &description, &bad)) return bad;
    const json_t *pol = r->json ? json_object_get(r->json, "stagegate_policy") : NULL;
    enum { MAXK = 64 };
    sg_registry_key_ref signers[MAXK], approvers[MAXK];
    size_t ns = add_keys(json_object_get(pol, "signers"), NULL, signers, 0, MAXK), np = 0;
    const char *stage;
    json_t *keys;
    /* Up to 64 keys per stage (create_model_body_ok), all of them kept: one array of 64 for
       every stage together had dropped the stages after the 64th key, and a stage whose
       promoters were dropped needs none. */
    size_t total = 0;
    json_object_foreach((json_t *)json_object_get(pol, "promoters"), stage, keys) total +=
        json_array_size(keys);
    sg_registry_key_ref *promoters = calloc(total ? total : 1, sizeof *promoters);
    if (!promoters) return srv_error(500, "INTERNAL_ERROR", "out of memory");
    json_object_foreach((json_t *)json_object_get(pol, "promoters"), stage, keys) np =
        add_keys(keys, stage, promoters, np, total);
    size_t na = add_keys(json_object_get(pol, "approvers"), NULL, approvers, 0, MAXK);
    const char *tags[MAXK];
    char *tag_buf[MAXK];
    size_t nt = 0;
    size_t i;
    json_t *t;
    json_array_foreach(r->json ? json_object_get(r->json, "tags") : NULL, i, t)
    {
        const char *k = json_string_value(json_object_get(t, "key"));
        const char *v = json_string_value(json_object_get(t, "value"));
        if (!k || nt == MAXK) continue;
        size_t len = strlen(k) + (v ? strlen(v) : 0) + 2;
        tag_buf[nt] = malloc(len);
        if (!tag_buf[nt]) break;
        snprintf(tag_buf[nt], len, "%s=%s", k, v ? v : "");
        tags[nt] = tag_buf[nt];
        nt++;
    }
    json_t *age = json_object_get(pol, "max_report_age_days");
    const char *stages[64], *single[64], *multi[64];
    size_t n_stages = 0, n_single = 0, n_multi = 0;
    json_array_foreach(json_object_get(pol, "stages"), i, t) if (json_is_string(t) && n_stages < 64)
        stages[n_stages++] = json_string_value(t);
    json_array_foreach(json_object_get(pol, "single_version"), i,
                       t) if (json_is_string(t) && n_single < 64) single[n_single++] =
        json_string_value(t);
    json_array_foreach(json_object_get(pol, "multi_version"), i,
                       t) if (json_is_string(t) && n_multi < 64) multi[n_multi++] =
        json_string_value(t);
    sg_registry_model_spec sp = {
        .name = name,
        .description = description,
        .report_stage = json_string_value(json_object_get(pol, "report_stage")),
        .stages = n_stages ? stages : NULL,
        .n_stages = n_stages,
        .transitions = json_string_value(json_object_get(pol, "transitions")),
        .single_stages = single,
        .n_single = n_single,
        .multi_stages = multi,
        .n_multi = n_multi,
        .signers = signers,
        .n_signers = ns,
        .promoters = promoters,
        .n_promoters = np,
        .approvers = approvers,
        .n_approvers = na,
        .tags = tags,
        .n_tags = nt,
        .require_approval = json_is_true(json_object_get(pol, "require_approval")),
        .max_report_age_days = json_is_integer(age) ? json_integer_value(age) : 0,
        .policy_sha256 = json_string_value(json_object_get(pol, "policy_sha256")),
        .dataset_sha256 = json_string_value(json_object_get(pol, "dataset_sha256")),
    };
    sg_err err = {{0}};
    sg_registry_request req;
    char cfg_sha[65] = "";
    /* The request names the configuration it creates, as a CLI admin's signature does. */
    int arc = SRV_WRITE(sg_registry_config_digest(r->reg, &sp, cfg_sha, &err)), rc = arc;
    if (arc == SG_OK) arc = rc = srv_attest(r, "create-model", name, 0, "", cfg_sha, &req, &err);
    if (rc == SG_OK) rc = SRV_WRITE(sg_registry_create_model(r->reg, &sp, &req, &err));
    if (arc == SG_OK) sg_registry_request_clear(&req);
    for (size_t k = 0; k < nt; k++)
        free(tag_buf[k]);
    free(promoters);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    return model_doc(r, name, "registered_model");
}

static srv_resp get_model(srv_req *r)
{
    METHOD("GET");
    REQUIRE(name, "name");
    return model_doc(r, name, "registered_model");
}

/*
 * max_results (1..most, default dflt) and page_token (the offset of the page, as the
 * next_page_token of the previous answer gave it). A value out of range or not a number is
 * refused, as MLflow refuses it, rather than quietly answered with another page. MLflow's
 * own bounds: registered models 100 by default, at most 1000; model versions 10,000 by
 * default (what its clients send when given none), at most 200,000.
 */
static bool page_args(const srv_req *r, int64_t dflt, int64_t most, int64_t *max, int64_t *off,
                      srv_resp *resp)
{
    *max = dflt;
    *off = 0;
    sg_err err;
    /* A JSON body's max_results is an integer or a string; the query's is a string. */
    json_t *mj = r->json ? json_object_get(r->json, "max_results") : NULL;
    bool bad = false;
    if (mj && !json_is_string(mj)) {
        bad = !json_is_integer(mj) || json_integer_value(mj) < 1 || json_integer_value(mj) > most;
        if (!bad) *max = json_integer_value(mj);
    } else {
        const char *m = srv_param(r, "max_results");
        bad = m && sg_parse_i64("max_results", m, 1, most, max, &err) != SG_OK;
    }
    if (bad) {
        *resp = srv_error(400, "INVALID_PARAMETER_VALUE",
                          "Invalid value for request parameter max_results: it must be an "
                          "integer from 1 to %lld",
                          (long long)most);
        return false;
    }
    json_t *pj = r->json ? json_object_get(r->json, "page_token") : NULL;
    const char *p = srv_param(r, "page_token");
    if ((pj && !json_is_string(pj)) ||
        (p && *p && sg_parse_i64("page_token", p, 0, INT32_MAX, off, &err) != SG_OK)) {
        *resp = srv_error(400, "INVALID_PARAMETER_VALUE",
                          "Invalid page token: pass the next_page_token of the previous page");
        return false;
    }
    return true;
}

/* One page of all (from page_args' offset); sets doc's next_page_token if more follow. */
static json_t *page(json_t *all, int64_t max, int64_t off, json_t *doc)
{
    json_t *out = json_array();
    size_t n = json_array_size(all), from = (size_t)off, to = from + (size_t)max;
    for (size_t i = from; i < n && i < to; i++)
        json_array_append(out, json_array_get(all, i));
    if (to < n) {
        char tok[32];
        snprintf(tok, sizeof tok, "%zu", to);
        json_object_set_new(doc, "next_page_token", json_string(tok));
    }
    return out;
}

/*
 * order_by, as MLflow reads it: clauses "COLUMN [ASC|DESC]" (keywords in any case), from the
 * JSON body's array or repeated query parameters, applied in turn; ties keep the registry's
 * order. A column the endpoint does not sort by, or anything else after it, is 400 (an
 * unknown column had been answered in the default order, "version_number ASC,
 * last_updated_timestamp DESC" read as descending versions).
 */
typedef struct {
    const char *name;  /* as the client writes it */
    const char *field; /* in the answer's JSON */
    bool numeric;      /* compared as integers (a version is a string of digits) */
} order_col;

typedef struct {
    const order_col *col;
    bool desc;
} order_key;

#define ORDER_MAX 8

static bool order_parse(srv_req *r, const order_col *cols, size_t n_cols, order_key *keys, int *n,
                        srv_resp *bad)
{
    *n = 0;
    json_t *list = r->json ? json_incref(json_object_get(r->json, "order_by")) : NULL;
    if (json_is_null(list)) {
        json_decref(list);
        list = NULL;
    }
    if (!list) list = srv_query_all(r, "order_by");
    const char *why = json_is_array(list) ? NULL : "order_by must be an array of strings";
    size_t i;
    json_t *c;
    char clause[160] = "";
    json_array_foreach(list, i, c)
    {
        if (why) break;
        const char *t = json_string_value(c);
        if (!t || *n == ORDER_MAX) {
            why = t ? "order_by has more than 8 clauses"
                    : "order_by has an entry that is not a string";
            break;
        }
        snprintf(clause, sizeof clause, "%s", t);
        char col[64] = "", dir[16] = "", extra[2] = "";
        int got = sscanf(t, " %63s %15s %1s", col, dir, extra);
        const order_col *oc = NULL;
        for (size_t k = 0; got >= 1 && k < n_cols && !oc; k++)
            if (!strcasecmp(col, cols[k].name)) oc = &cols[k];
        if (!oc || got == 3 || (got == 2 && strcasecmp(dir, "ASC") && strcasecmp(dir, "DESC"))) {
            why = "invalid order_by clause";
            break;
        }
        keys[*n].col = oc;
        keys[*n].desc = got == 2 && !strcasecmp(dir, "DESC");
        (*n)++;
    }
    json_decref(list);
    if (!why) return true;
    char known[160] = "";
    for (size_t k = 0, o = 0; k < n_cols && o < sizeof known; k++)
        o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", k ? ", " : "", cols[k].name);
    *bad =
        srv_error(400, "INVALID_PARAMETER_VALUE",
                  "%s '%.100s': expected COLUMN [ASC|DESC], COLUMN one of %s", why, clause, known);
    return false;
}

typedef struct {
    json_t *v;
    size_t at;
} order_item;

typedef struct {
    const order_key *keys;
    int n;
} order_by;

static int order_cmp(const void *a, const void *b, void *arg)
{
    const order_item *x = a, *y = b;
    const order_by *o = arg;
    for (int k = 0; k < o->n; k++) {
        const order_col *c = o->keys[k].col;
        const json_t *jx = json_object_get(x->v, c->field), *jy = json_object_get(y->v, c->field);
        int d;
        if (c->numeric) {
            const long long nx = json_is_string(jx) ? atoll(json_string_value(jx))
                                                    : (long long)json_integer_value(jx),
                            ny = json_is_string(jy) ? atoll(json_string_value(jy))
                                                    : (long long)json_integer_value(jy);
            d = (nx > ny) - (nx < ny);
        } else {
            const char *sx = json_string_value(jx), *sy = json_string_value(jy);
            d = strcmp(sx ? sx : "", sy ? sy : "");
        }
        if (d) return o->keys[k].desc ? -d : d;
    }
    /* Ties as MLflow's stores break them: name ascending, then the newest version first
       (versions made in one second share their timestamps, and "the newest by
       creation_timestamp DESC" had been the oldest of them). */
    const char *nx = json_string_value(json_object_get(x->v, "name")),
               *ny = json_string_value(json_object_get(y->v, "name"));
    int d = strcmp(nx ? nx : "", ny ? ny : "");
    if (d) return d;
    const char *vx = json_string_value(json_object_get(x->v, "version")),
               *vy = json_string_value(json_object_get(y->v, "version"));
    if (vx && vy) {
        const long long a1 = atoll(vx), b1 = atoll(vy);
        if (a1 != b1) return (a1 < b1) - (a1 > b1);
    }
    return (x->at > y->at) - (x->at < y->at);
}

/* all sorted in place by keys (a stable sort: ties keep their order). */
static void order_apply(json_t *all, const order_key *keys, int n)
{
    size_t len = json_array_size(all);
    if (!n || len < 2) return;
    order_item *it = malloc(len * sizeof *it);
    if (!it) return; /* (out of memory: the registry's order) */
    for (size_t i = 0; i < len; i++)
        it[i] = (order_item){json_incref(json_array_get(all, i)), i};
    order_by o = {keys, n};
    qsort_r(it, len, sizeof *it, order_cmp, &o);
    json_array_clear(all);
    for (size_t i = 0; i < len; i++)
        json_array_append_new(all, it[i].v);
    free(it);
}

static srv_resp search_models(srv_req *r)
{
    int64_t max, off;
    srv_resp bad;
    if (!page_args(r, 100, 1000, &max, &off, &bad)) return bad;
    static const order_col cols[] = {{"name", "name", false},
                                     {"timestamp", "last_updated_timestamp", true},
                                     {"last_updated_timestamp", "last_updated_timestamp", true}};
    order_key keys[ORDER_MAX];
    int n_keys;
    if (!order_parse(r, cols, sizeof cols / sizeof cols[0], keys, &n_keys, &bad)) return bad;
    sg_err err = {{0}};
    json_t *found = sg_registry_search_models(r->reg, srv_param(r, "filter"), &err);
    if (!found) return srv_from_status(SG_EINPUT, &err);
    json_t *doc = json_object();
    /* Ordered by name (the default, or every clause on name): the page is cut from the names
       the search found, and only its models are summarised (every match had been, so one page
       of 1,000 models took 0.3 s). Another order needs each model's timestamps first. */
    bool by_name = true;
    for (int k = 0; k < n_keys; k++)
        by_name &= !strcmp(keys[k].col->field, "name");
    json_t *names = json_incref(json_object_get(found, "models"));
    json_decref(found);
    json_t *chosen = names;
    if (by_name) {
        order_apply(names, keys, n_keys);
        chosen = page(names, max, off, doc);
    }
    json_t *all = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(chosen, i, m)
    {
        json_t *full = sg_registry_model_summary(r->reg, sg_json_str(m, "name"), &err);
        if (full) json_array_append_new(all, registered_model_json(full));
        json_decref(full);
    }
    if (by_name) {
        json_decref(chosen);
        json_object_set_new(doc, "registered_models", all);
    } else {
        order_apply(all, keys, n_keys);
        json_object_set_new(doc, "registered_models", page(all, max, off, doc));
        json_decref(all);
    }
    json_decref(names);
    return srv_json(200, doc);
}

static srv_resp latest(srv_req *r)
{
    REQUIRE(name, "name");
    sg_err err = {{0}};
    json_t *m = sg_registry_model_summary(r->reg, name, &err);
    if (!m) return srv_from_status(SG_EINPUT, &err);
    json_t *stages = r->json ? json_incref(json_object_get(r->json, "stages")) : NULL;
    if (json_is_null(stages)) { /* as protobuf's JSON mapping reads a null: not given */
        json_decref(stages);
        stages = NULL;
    }
    if (!stages) {
        /* GET: stages=A&stages=B */
        stages = srv_query_all(r, "stages");
    }
    /* A filter that cannot be read is refused, not dropped: "every stage" would answer a
       deploy script asking for Production with versions in other stages. */
    const char *why = !json_is_array(stages) ? "stages must be an array of stage names" : NULL;
    size_t i;
    json_t *s;
    json_array_foreach(stages, i, s)
    {
        if (why) break;
        if (!json_is_string(s)) {
            why = "stages has an entry that is not a stage name (a parameter without a value?)";
            break;
        }
        bool known = false;
        size_t j;
        json_t *g;
        json_array_foreach(json_object_get(m, "stages"), j, g) known =
            known || (json_is_string(s) && !strcasecmp(json_string_value(s), sg_json_str(g, "name")));
        if (!known) why = "stages names a stage the model does not have";
    }
    if (why) {
        srv_resp bad = srv_error(400, "INVALID_PARAMETER_VALUE", "%s (model '%s')", why, name);
        json_decref(stages);
        json_decref(m);
        return bad;
    }
    json_t *doc = json_pack("{so}", "model_versions", latest_versions(m, stages));
    json_decref(stages);
    json_decref(m);
    return srv_json(200, doc);
}

/* ------------------------------------------------------------------ model versions */

/* The artifact a source names, confined to the artifact root: a file:// URI or a path
 * (relative ones from the root). Symlinks are resolved before the check, so one that
 * points out of the root is refused too. */
/* Whether path p (absolute, resolved or normalised) is below root, or root itself when
   self_ok; a root of "/" holds every path. */
static bool within_root(const char *p, const char *root, bool self_ok)
{
    const size_t rl = strlen(root);
    if (strcmp(root, "/") == 0) return true;
    return strncmp(p, root, rl) == 0 && (p[rl] == '/' || (self_ok && p[rl] == '\0'));
}

/* Whether text starts with a URI scheme and ':' (RFC 3986: a letter, then letters, digits,
   '+', '-' or '.'), as "runs:/..." and "models:/..." do. */
static bool has_scheme(const char *text)
{
    if (!isalpha((unsigned char)text[0])) return false;
    size_t n = 1;
    while (isalnum((unsigned char)text[n]) || (text[n] && strchr("+-.", text[n])))
        n++;
    return text[n] == ':';
}

static srv_resp confine(srv_req *r, const char *source, char real[PATH_MAX], bool *ok)
{
    *ok = false;
    const char *root = r->srv->artifact_root;
    if (!*root)
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "source '%s': this server has no --artifact-root, so it reads no sources",
                         source);
    const char *path = source;
    if (!strncmp(source, "file://", 7)) {
        path = source + 7;
        if (*path != '/')
            return srv_error(400, "INVALID_PARAMETER_VALUE",
                             "source '%s': a file:// URI needs an absolute path (file:///...)",
                             source);
    } else if (strstr(source, "://") || has_scheme(source)) {
        /* also MLflow's schemes without "//": runs:/ID/model, models:/NAME/1 (one had been
           read as a relative path, and a file of that name registered) */
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "source '%s': only file:// URIs and paths are served", source);
    }
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return srv_error(400, "INVALID_PARAMETER_VALUE",
                             "source '%s': '..' is not allowed in a source path", source);
    char joined[PATH_MAX * 2];
    if (*path == '/')
        snprintf(joined, sizeof joined, "%s", path);
    else
        snprintf(joined, sizeof joined, "%s/%s", root, path);
    /* An absolute path is first checked as written (empty and '.' components dropped), before
       the file system is asked anything: otherwise "no such file" (400) against "outside the
       artifact root" (403) told any token holder which files exist anywhere on the server. */
    if (*path == '/') {
        char norm[PATH_MAX * 2];
        size_t o = 0;
        for (const char *c = joined; *c && o + 2 < sizeof norm;) {
            while (*c == '/')
                c++;
            const char *e = c;
            while (*e && *e != '/')
                e++;
            if (e == c) break;
            if (!(e - c == 1 && *c == '.')) {
                norm[o++] = '/';
                for (; c < e && o + 1 < sizeof norm; c++)
                    norm[o++] = *c;
            }
            c = e;
        }
        norm[o] = '\0';
        if (!within_root(norm, root, false))
            return srv_error(403, "PERMISSION_DENIED",
                             "source '%s' is outside the server's artifact root", source);
    }
    if (!realpath(joined, real)) {
        const int e = errno;
        /* The deepest directory on the path that resolves decides: one outside the root is
           403 whether or not the rest exists (through a link in the root to '/', "no such
           file" against "outside" had told which files exist elsewhere). */
        char dir[PATH_MAX * 2], up[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", joined);
        for (char *slash; (slash = strrchr(dir, '/')) != NULL && slash > dir;) {
            *slash = '\0';
            if (!realpath(dir, up)) continue;
            if (!within_root(up, root, true))
                return srv_error(403, "PERMISSION_DENIED",
                                 "source '%s' is outside the server's artifact root", source);
            break;
        }
        return srv_error(400, "INVALID_PARAMETER_VALUE", "source '%s' cannot be read: %s", source,
                         strerror(e));
    }
    if (!within_root(real, root, false))
        return srv_error(403, "PERMISSION_DENIED",
                         "source '%s' is outside the server's artifact root", source);
    *ok = true;
    return (srv_resp){.status = 0};
}

/* MLflow's model-versions/update and registered-models/update: the description, audited. */
static srv_resp update(srv_req *r, bool of_version)
{
    METHOD("PATCH");
    REQUIRE(name, "name");
    int64_t v = 0;
    srv_resp bad;
    if (of_version && !srv_param_version(r, "version", &v, &bad)) return bad;
    /* Without a description the description is cleared, as MLflow's stores set it to None
       (its clients send none when given none). */
    const char *text;
    if (!description_param(r, &text, &bad)) return bad;
    if (!text) text = "";
    char sha[65];
    sg_sha256_hex((const uint8_t *)text, strlen(text), sha);
    sg_err err = {{0}};
    sg_registry_request req;
    int rc = srv_attest(r, "set-description", name, v, "", sha, &req, &err);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    rc = SRV_WRITE(sg_registry_set_description(r->reg, name, v, text, &req, &err));
    sg_registry_request_clear(&req);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    return of_version ? version_doc(r, name, v) : model_doc(r, name, "registered_model");
}
static srv_resp update_version(srv_req *r)
{
    return update(r, true);
}
static srv_resp update_model(srv_req *r)
{
    return update(r, false);
}

static srv_resp create_version(srv_req *r)
{
    METHOD("POST");
    REQUIRE(name, "name");
    REQUIRE(source, "source");
    /* Tags are checked before the version is made: one refused after it had been committed
       answered 400 for a version that existed, and a client's retry made another. */
    char what[512] = "";
    tags_check(r, what, sizeof what);
    if (what[0]) return srv_error(400, "INVALID_PARAMETER_VALUE", "%s", what);
    /* So is the description (MLflow's create takes one); run_id names a run of a tracking
       server this one does not have, and is not kept. */
    const char *description = NULL;
    srv_resp bad_text;
    if (!description_param(r, &description, &bad_text)) return bad_text;
    char real[PATH_MAX], sha[65];
    bool ok;
    srv_resp bad = confine(r, source, real, &ok);
    if (!ok) return bad;
    sg_err err = {{0}};
    /* The server hashes what it will register; a digest the client sends is ignored. */
    int rc = sg_model_digest_file_hex(real, sha, &err);
    if (rc != SG_OK)
        return srv_error(400, "INVALID_PARAMETER_VALUE", "source '%s' cannot be read: %s", source,
                         err.msg);
    sg_registry_request req;
    int64_t v = 0;
    if ((rc = srv_attest(r, "create-version", name, 0, "", sha, &req, &err)) != SG_OK)
        return srv_from_status(rc, &err);
    rc = SRV_WRITE(sg_registry_create_version(r->reg, name, real, &req, &v, &err));
    sg_registry_request_clear(&req);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    if (description && *description) {
        char dsha[65];
        sg_sha256_hex((const uint8_t *)description, strlen(description), dsha);
        if ((rc = srv_attest(r, "set-description", name, v, "", dsha, &req, &err)) != SG_OK)
            return srv_from_status(rc, &err);
        rc = SRV_WRITE(sg_registry_set_description(r->reg, name, v, description, &req, &err));
        sg_registry_request_clear(&req);
        if (rc != SG_OK) return srv_from_status(rc, &err);
    }
    json_t *tags = r->json ? json_object_get(r->json, "tags") : NULL;
    if (!json_array_size(tags) && !(description && *description)) {
        json_t *doc = sg_registry_written_version(r->reg, name, v);
        srv_resp resp = written_doc(r, name, v, doc);
        json_decref(doc);
        return resp;
    }
    size_t i;
    json_t *t;
    json_array_foreach(r->json ? json_object_get(r->json, "tags") : NULL, i, t)
    {
        const char *k = json_string_value(json_object_get(t, "key"));
        const char *val = json_string_value(json_object_get(t, "value"));
        if (!k) continue;
        if (!val) val = ""; /* no value: an empty one, as registered-models/create stores it */
        char vsha[65];
        sg_sha256_hex((const uint8_t *)val, strlen(val), vsha);
        if ((rc = srv_attest(r, "set-tag", name, v, k, vsha, &req, &err)) != SG_OK)
            return srv_from_status(rc, &err);
        rc = SRV_WRITE(sg_registry_set_tag(r->reg, name, v, k, val, &req, &err));
        sg_registry_request_clear(&req);
        if (rc != SG_OK) return srv_from_status(rc, &err);
    }
    return version_doc(r, name, v);
}

/* model-versions/get, and get-download-uri (Get Download URI For ModelVersion Artifacts): where
 * the version's artifact is, the same text as its model_version's source, from which MLflow's
 * clients download. */
static srv_resp read_version(srv_req *r, bool uri_only)
{
    METHOD("GET");
    REQUIRE(name, "name");
    int64_t v;
    srv_resp bad;
    if (!srv_param_version(r, "version", &v, &bad)) return bad;
    if (!uri_only) return version_doc(r, name, v);
    sg_err err = {{0}};
    json_t *doc = sg_registry_get_version(r->reg, name, v, &err);
    if (!doc) return srv_from_status(SG_EINPUT, &err);
    json_t *o = json_pack("{ss}", "artifact_uri", sg_json_str(doc, "artifact_path"));
    json_decref(doc);
    return srv_json(200, o);
}

static srv_resp get_version(srv_req *r)
{
    return read_version(r, false);
}
static srv_resp download_uri(srv_req *r)
{
    return read_version(r, true);
}

static srv_resp search_versions(srv_req *r)
{
    int64_t max, off;
    srv_resp bad;
    if (!page_args(r, 10000, 200000, &max, &off, &bad)) return bad;
    static const order_col cols[] = {{"name", "name", false},
                                     {"version_number", "version", true},
                                     {"version", "version", true},
                                     {"creation_timestamp", "creation_timestamp", true},
                                     {"last_updated_timestamp", "last_updated_timestamp", true}};
    order_key keys[ORDER_MAX];
    int n_keys;
    if (!order_parse(r, cols, sizeof cols / sizeof cols[0], keys, &n_keys, &bad)) return bad;
    const char *filter = srv_param(r, "filter");
    sg_err err = {{0}};
    json_t *found = sg_registry_search(r->reg, filter ? filter : "", &err);
    if (!found) return srv_from_status(SG_EINPUT, &err);
    json_t *all = json_array(), *doc = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(found, "versions"), i, v)
        json_array_append_new(all, srv_model_version_json(v));
    json_decref(found);
    order_apply(all, keys, n_keys);
    json_object_set_new(doc, "model_versions", page(all, max, off, doc));
    json_decref(all);
    return srv_json(200, doc);
}

/*
 * A model's stages (the registry's "stages" array: name, requires, multi_version), cached
 * for the process: the registry writes a model's stages once, when the model is created,
 * and never changes them, so a transition need not read the whole model summary each time
 * to learn whether its target stage takes a report. The cache decides only what the server
 * passes to the registry, which enforces the gate itself: a stale entry could at worst pass
 * a report where none is needed (verified all the same) or none where one is (refused).
 * Entries are private copies; a caller gets its own copy, so no JSON value is shared
 * between threads.
 */
#define POLICY_CACHE 256
static struct {
    char name[256];
    json_t *stages;
} policy_cache[POLICY_CACHE];
static unsigned policy_next;
static pthread_mutex_t policy_mu = PTHREAD_MUTEX_INITIALIZER;

static json_t *model_stages(srv_req *r, const char *name, sg_err *err)
{
    json_t *hit = NULL;
    pthread_mutex_lock(&policy_mu);
    for (unsigned i = 0; i < POLICY_CACHE && !hit; i++)
        if (policy_cache[i].stages && !strcmp(policy_cache[i].name, name))
            hit = json_deep_copy(policy_cache[i].stages);
    pthread_mutex_unlock(&policy_mu);
    if (hit) return hit;
    json_t *m = sg_registry_model_summary(r->reg, name, err);
    if (!m) return NULL;
    json_t *stages = json_deep_copy(json_object_get(m, "stages"));
    json_decref(m);
    if (!json_is_array(stages)) {
        json_decref(stages);
        sg_errf(err, SG_EINTERNAL, "model %s: the registry gave no stages", name);
        return NULL;
    }
    json_t *copy = strlen(name) < sizeof policy_cache[0].name ? json_deep_copy(stages) : NULL;
    if (copy) {
        pthread_mutex_lock(&policy_mu);
        unsigned i = policy_next++ % POLICY_CACHE;
        json_t *old = policy_cache[i].stages;
        snprintf(policy_cache[i].name, sizeof policy_cache[i].name, "%s", name);
        policy_cache[i].stages = copy;
        pthread_mutex_unlock(&policy_mu);
        json_decref(old);
    }
    return stages;
}

static const json_t *stage_entry(const json_t *stages, const char *stage)
{
    size_t i;
    json_t *st;
    json_array_foreach(stages, i, st) if (!strcasecmp(sg_json_str(st, "name"), stage)) return st;
    return NULL;
}

static bool stage_requires_report(const json_t *stages, const char *stage)
{
    size_t j;
    json_t *req;
    json_array_foreach(json_object_get(stage_entry(stages, stage), "requires"), j,
                       req) if (!strcmp(json_string_value(req), "report")) return true;
    return false;
}

/* unchanged (NULL for a plain transition): a version already in stage is confirmed rather
 * than refused, as MLflow answers a transition into the current stage (its clients retry a
 * request whose answer was lost), and *unchanged says so. */
static int transition_as(srv_req *r, const char *name, int64_t v, const char *stage,
                         const uint8_t *report, size_t len, bool *unchanged, sg_err *err)
{
    char sha[65] = "";
    if (report) sg_sha256_hex(report, len, sha);
    sg_registry_request req;
    int rc = srv_attest(r, "transition", name, v, stage, sha, &req, err);
    if (rc != SG_OK) return rc;
    rc = unchanged
             ? SRV_WRITE(sg_registry_transition_repeat(r->reg, name, v, stage, report, len, &req,
                                                       unchanged, err))
             : SRV_WRITE(sg_registry_transition(r->reg, name, v, stage, report, len, &req, err));
    sg_registry_request_clear(&req);
    return rc;
}

/*
 * MLflow's rollback recipe: archive the Production version, then transition an Archived one
 * to Production. The policy has no Archived -> Production transition by default, so that
 * transition was refused; sg_registry_restore brings the version back if it has been in
 * Production before (with the same checks as a rollback: Production promoter, passed
 * validation, no standing rejection, unchanged artifact). When the restore does not apply
 * (the version is not Archived, or the policy allows the transition and its gates said no),
 * the transition's own refusal stands.
 */
static int try_restore(srv_req *r, const char *name, int64_t v, int refused, sg_err *err)
{
    sg_err e = {{0}};
    json_t *cur = sg_registry_get_version(r->reg, name, v, &e);
    bool archived_now = cur && !strcmp(sg_json_str(cur, "stage"), "Archived");
    json_decref(cur);
    if (!archived_now) return refused;
    sg_registry_request req;
    int rc = srv_attest(r, "transition", name, v, "Production", "", &req, &e);
    bool applies = false;
    int64_t displaced = 0;
    if (rc == SG_OK) {
        rc = SRV_WRITE(sg_registry_restore(r->reg, name, v, &req, &applies, &displaced, &e));
        sg_registry_request_clear(&req);
    }
    if (!applies) return refused;
    *err = e;
    return rc;
}

static srv_resp transition(srv_req *r)
{
    METHOD("POST");
    REQUIRE(name, "name");
    REQUIRE(stage, "stage");
    int64_t v;
    srv_resp bad;
    if (!srv_param_version(r, "version", &v, &bad)) return bad;
    /* archive_existing_versions is a boolean (or MLflow's "true"/"false" text), checked
       before anything moves: 1 or "yes" had archived nothing, with 200. */
    json_t *arch = r->json ? json_object_get(r->json, "archive_existing_versions") : NULL;
    const char *as = json_string_value(arch);
    if (arch && !json_is_boolean(arch) && !json_is_null(arch) &&
        !(as && (!strcasecmp(as, "true") || !strcasecmp(as, "false"))))
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "archive_existing_versions must be true or false");
    bool archive = json_is_true(arch) || (as && !strcasecmp(as, "true"));
    /* Archiving the other versions of Archived or None moves nothing anywhere: MLflow refuses
       the flag for a stage that is not an active one (its store's
       test_transition_model_version_stage_when_archive_existing_versions_is_true), and so
       does this server, before anything moves (it had run one no-op archiving per version). */
    if (archive && (!strcasecmp(stage, "Archived") || !strcasecmp(stage, "None")))
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "archive_existing_versions applies to an active stage, not to %s", stage);
    sg_err err = {{0}};
    json_t *stages = model_stages(r, name, &err);
    if (!stages) return srv_from_status(SG_EINPUT, &err);
    uint8_t *report = NULL;
    size_t len = 0;
    /* stagegate_report: the envelope's text inline, passed as the CLI's --report is (one call
     * from `registry --db http://... transition --report R`). */
    const char *inline_report = srv_param(r, "stagegate_report");
    if (!inline_report && r->json && json_object_get(r->json, "stagegate_report")) {
        json_decref(stages);
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "stagegate_report is the report's text, a JSON string");
    }
    if (inline_report && r->json) {
        len = strlen(inline_report);
        report = malloc(len ? len : 1);
        if (report) memcpy(report, inline_report, len);
    } else if (stage_requires_report(stages, stage)) {
        /* Entering the report stage takes the newest report stored in the registry for this
         * version's exact digest; none found is no error here: the registry refuses the
         * transition with its own reason. */
        char digest[65];
        int drc = sg_registry_version_digest(r->reg, name, v, digest, &err);
        if (drc != SG_OK) {
            json_decref(stages);
            return srv_from_status(SG_EINPUT, &err);
        }
        char report_sha[65];
        int frc = sg_registry_find_report(r->reg, name, digest, &report, &len, report_sha, &err);
        if (frc != SG_OK && frc != SG_EINPUT) {
            json_decref(stages);
            return srv_from_status(frc, &err);
        }
    }
    /* archive_existing_versions archives the versions in the stage before this transition,
     * read before it: a search after it had also found versions other clients promoted in
     * the meantime, so three concurrent promotions could archive each other and leave the
     * stage empty. The version promoted last is then archived by no one. */
    const json_t *entry = stage_entry(stages, stage);
    json_t *before = NULL;
    if (archive && strcasecmp(stage, "Archived") != 0 &&
        json_is_true(json_object_get(entry, "multi_version"))) {
        /* Names and stages are [A-Za-z0-9._-] (the registry refuses others), so quoting is
         * safe; the stage as the registry spells it is the policy's. */
        char filter[512];
        snprintf(filter, sizeof filter, "name = '%s' AND stage = '%s'", name,
                 sg_json_str(entry, "name"));
        before = sg_registry_search(r->reg, filter, &err);
        if (!before) {
            free(report);
            json_decref(stages);
            return srv_from_status(SG_EINTERNAL, &err);
        }
    }
    bool unchanged = false;
    int rc = transition_as(r, name, v, stage, report, len, &unchanged, &err);
    free(report);
    /* The version's document as the transition left it: the archiving below changes other
     * versions only. */
    json_t *doc = rc == SG_OK ? sg_registry_written_version(r->reg, name, v) : NULL;
    if (rc == SG_EREFUSED && !strcmp(sg_json_str(entry, "name"), "Production"))
        rc = try_restore(r, name, v, rc, &err);
    /* archive_existing_versions: every other version that was in the stage goes to Archived,
     * each through the registry. A single-version stage holds none by now (the registry
     * archived Production's occupant in the transition, and refuses to enter another
     * occupied one). */
    if (rc == SG_OK && before) {
        sg_err aerr = {{0}};
        int arc = SG_OK;
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(before, "versions"), i, o)
        {
            int64_t ov = json_integer_value(json_object_get(o, "version"));
            if (ov == v || arc != SG_OK) continue;
            arc = transition_as(r, name, ov, "Archived", NULL, 0, NULL, &aerr);
            if (arc == SG_OK) continue;
            /* Moved out of the stage meanwhile (another client archived it): nothing to do. */
            sg_err gerr = {{0}};
            json_t *now = sg_registry_get_version(r->reg, name, ov, &gerr);
            if (now && strcasecmp(sg_json_str(now, "stage"), stage) != 0) arc = SG_OK;
            json_decref(now);
        }
        if (arc != SG_OK) {
            /* The transition itself is committed: answered as done (a 4xx made clients retry
               a change that had happened), with what the archiving could not do. */
            json_decref(before);
            json_decref(stages);
            srv_resp resp = written_doc(r, name, v, doc);
            json_decref(doc);
            json_object_set_new(resp.body, "archive_existing_versions_error",
                                json_string(aerr.msg));
            if (unchanged) json_object_set_new(resp.body, "stagegate_unchanged", json_true());
            return resp;
        }
    }
    json_decref(before);
    json_decref(stages);
    if (rc != SG_OK) {
        json_decref(doc);
        return srv_from_status(rc, &err);
    }
    srv_resp resp = written_doc(r, name, v, doc);
    json_decref(doc);
    /* The version was in the stage already (MLflow clients ignore a field they do not know;
       the CLI client answers as a local registry does). */
    if (unchanged && resp.status == 200)
        json_object_set_new(resp.body, "stagegate_unchanged", json_true());
    return resp;
}

static srv_resp tag(srv_req *r, bool set)
{
    METHOD(set ? "POST" : "DELETE");
    REQUIRE(name, "name");
    REQUIRE(key, "key");
    int64_t v;
    srv_resp bad;
    if (!srv_param_version(r, "version", &v, &bad)) return bad;
    const char *value = NULL;
    char sha[65] = "";
    if (set) {
        value = srv_param(r, "value");
        if (!value) return srv_missing(r, "value");
        sg_sha256_hex((const uint8_t *)value, strlen(value), sha);
    }
    sg_err err = {{0}};
    sg_registry_request req;
    int rc = srv_attest(r, set ? "set-tag" : "delete-tag", name, v, key, sha, &req, &err);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    /* Deleting a tag the version does not have changes nothing and succeeds, as in MLflow
       (its clients' clean-up code raised on the 404); nothing is recorded. */
    rc = set ? SRV_WRITE(sg_registry_set_tag(r->reg, name, v, key, value, &req, &err))
             : SRV_WRITE(sg_registry_delete_tag_if_present(r->reg, name, v, key, &req, NULL, &err));
    sg_registry_request_clear(&req);
    return rc == SG_OK ? srv_json(200, NULL) : srv_from_status(rc, &err);
}

static srv_resp alias(srv_req *r)
{
    REQUIRE(name, "name");
    REQUIRE(alias_name, "alias");
    sg_err err = {{0}};
    /* HEAD is GET without content (the route offers it; it had been answered 405) */
    if (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD")) {
        json_t *m = sg_registry_model_summary(r->reg, name, &err);
        if (!m) return srv_from_status(SG_EINPUT, &err);
        json_t *v = json_object_get(json_object_get(m, "aliases"), alias_name);
        int64_t ver = json_integer_value(v);
        json_decref(m);
        if (!v)
            return srv_error(404, "RESOURCE_DOES_NOT_EXIST", "model %s has no alias '%s'", name,
                             alias_name);
        return version_doc(r, name, ver);
    }
    int64_t v = 0;
    srv_resp bad;
    bool set = !strcmp(r->method, "POST");
    if (!set && strcmp(r->method, "DELETE") != 0)
        return srv_error(405, "BAD_REQUEST", "%s takes GET, POST or DELETE", r->url);
    if (set && !srv_param_version(r, "version", &v, &bad)) return bad;
    sg_registry_request req;
    int rc = srv_attest(r, set ? "set-alias" : "delete-alias", name, v, alias_name, "", &req, &err);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    /* ... and so does deleting an alias that is not set */
    rc = set ? SRV_WRITE(sg_registry_set_alias(r->reg, name, alias_name, v, &req, &err))
             : SRV_WRITE(
                   sg_registry_delete_alias_if_present(r->reg, name, alias_name, &req, NULL, &err));
    sg_registry_request_clear(&req);
    return rc == SG_OK ? srv_json(200, NULL) : srv_from_status(rc, &err);
}

static srv_resp set_tag(srv_req *r)
{
    return tag(r, true);
}
static srv_resp delete_tag(srv_req *r)
{
    return tag(r, false);
}

static const srv_route_info GET = {"GET", "GET, HEAD", false}, POST = {"POST", "POST", false},
                            GET_POST_READ = {"GET POST", "GET, HEAD, POST", true},
                            ALIAS = {"GET POST DELETE", "GET, HEAD, POST, DELETE", false},
                            DELETE = {"DELETE", "DELETE", false}, PATCH = {"PATCH", "PATCH", false};

static const struct {
    const char *path;
    srv_resp (*fn)(srv_req *r);
    const srv_route_info *info;
} routes[] = {
    {"registered-models/create", create_model, &POST},
    {"registered-models/get", get_model, &GET},
    {"registered-models/search", search_models, &GET},
    {"registered-models/get-latest-versions", latest, &GET_POST_READ},
    {"registered-models/alias", alias, &ALIAS},
    {"registered-models/update", update_model, &PATCH},
    {"model-versions/create", create_version, &POST},
    {"model-versions/get", get_version, &GET},
    {"model-versions/update", update_version, &PATCH},
    {"model-versions/get-download-uri", download_uri, &GET},
    {"model-versions/search", search_versions, &GET},
    {"model-versions/transition-stage", transition, &POST},
    {"model-versions/set-tag", set_tag, &POST},
    {"model-versions/delete-tag", delete_tag, &DELETE},
};

const srv_route_info *srv_mlflow_route_info(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(path, routes[i].path)) return routes[i].info;
    return NULL;
}

bool srv_mlflow_route(srv_req *r, const char *path, srv_resp *resp)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(path, routes[i].path)) {
            *resp = routes[i].fn(r);
            return true;
        }
    return false;
}
