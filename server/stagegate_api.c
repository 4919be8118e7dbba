/*
 * stagegate's own endpoints (/api/stagegate/...): what the gate needs and MLflow's API has no
 * call for. Report upload, approvals, rollback, the audit history and its verification.
 */
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"
#include "stagegate/compare.h"
#include "stagegate/json.h"

/* Stored in the registry (content-addressed, received_by = the caller's key id), so it
 * outlives a restart and every server on the same database finds it. */
static srv_resp upload_report(srv_req *r)
{
    if (strcmp(r->method, "POST") != 0)
        return srv_error(405, "BAD_REQUEST", "reports are uploaded with POST");
    if (!r->body_len)
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "the request body must be a signed report");
    if (!r->who) return srv_error(401, "UNAUTHENTICATED", "uploading a report needs a token");
    /* An envelope holds a payload, its type and at most 16 signatures: counted before it is
       parsed, whatever its size (below 1 MiB the readers parse first, for a precise message;
       here 1 MiB of "[{},{},...]" had cost 80 MB a request, kept in part afterwards). */
    if (sg_json_count_values((const char *)r->body, r->body_len, SG_JSON_ENVELOPE_VALUES) >
        SG_JSON_ENVELOPE_VALUES)
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "report: the body holds more than %d JSON values, which no signed "
                         "report's envelope does",
                         SG_JSON_ENVELOPE_VALUES);
    char subject[65], sha[65];
    sg_err err = {{0}};
    /* The digest the statement names, read without building its documents (a statement of
       "[{},{},...]" had taken 160 MB to parse for a 1 MiB upload, kept after it). */
    int rc = sg_dsse_subject_unverified(r->body, r->body_len, subject, &err);
    if (rc == SG_EINPUT) rc = sg_errf(&err, SG_EINPUT, "report: %.6000s", err.msg);
    if (rc == SG_OK)
        rc = SRV_WRITE(
            sg_registry_put_report(r->reg, r->body, r->body_len, r->who->key_id, sha, &err));
    if (rc != SG_OK) return srv_from_status(rc, &err);
    return srv_json(200, json_pack("{ssss}", "report_sha256", sha, "subject_sha256", subject));
}

static srv_resp approve(srv_req *r)
{
    if (strcmp(r->method, "POST") != 0) return srv_error(405, "BAD_REQUEST", "approve takes POST");
    static const char *const fields[] = {"name", "version", "reject", "comment", NULL};
    srv_resp bad;
    if (!srv_only_fields(r, fields, &bad)) return bad;
    const char *name = srv_param(r, "name");
    if (!name) return srv_missing(r, "name");
    int64_t v;
    if (!srv_param_version(r, "version", &v, &bad)) return bad;
    /* reject is a JSON boolean: "true", 1 or a query parameter had counted as an approval. */
    const json_t *rj = r->json ? json_object_get(r->json, "reject") : NULL;
    if ((rj && !json_is_boolean(rj)) ||
        mhd.MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "reject"))
        return srv_error(400, "INVALID_PARAMETER_VALUE",
                         "reject must be true or false in the JSON body");
    bool reject = json_is_true(rj);
    const char *comment = srv_param(r, "comment");
    comment = comment ? comment : "";
    char sha[65] = "";
    if (*comment) sg_sha256_hex((const uint8_t *)comment, strlen(comment), sha);
    sg_err err = {{0}};
    sg_registry_request req;
    int rc = srv_attest(r, reject ? "reject" : "approve", name, v, "Production", sha, &req, &err);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    rc = SRV_WRITE(sg_registry_approve(r->reg, name, v, reject, comment, &req, &err));
    sg_registry_request_clear(&req);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    return srv_json(200,
                    json_pack("{sssIssss}", "name", name, "version", (json_int_t)v, "decision",
                              reject ? "rejected" : "approved", "approver_key_id", r->who->key_id));
}

static srv_resp rollback(srv_req *r)
{
    if (strcmp(r->method, "POST") != 0) return srv_error(405, "BAD_REQUEST", "rollback takes POST");
    static const char *const fields[] = {"name", NULL};
    srv_resp bad;
    if (!srv_only_fields(r, fields, &bad)) return bad;
    const char *name = srv_param(r, "name");
    if (!name) return srv_missing(r, "name");
    sg_err err = {{0}};
    sg_registry_request req;
    int rc = srv_attest(r, "rollback", name, 0, "Production", "", &req, &err);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    int64_t restored = 0, archived = 0;
    rc = SRV_WRITE(sg_registry_rollback(r->reg, name, &req, &restored, &archived, &err));
    sg_registry_request_clear(&req);
    if (rc != SG_OK) return srv_from_status(rc, &err);
    return srv_json(200, json_pack("{sssIsI}", "name", name, "restored_version",
                                   (json_int_t)restored, "archived_version", (json_int_t)archived));
}

static srv_resp history(srv_req *r)
{
    const char *name = srv_param(r, "name");
    if (!name) return srv_missing(r, "name");
    sg_err err = {{0}};
    json_t *doc = sg_registry_history(r->reg, name, &err);
    return doc ? srv_json(200, doc) : srv_from_status(SG_EINPUT, &err);
}

static srv_resp verify_log(srv_req *r)
{
    sg_err err = {{0}};
    json_t *summary = NULL;
    int rc = sg_registry_verify_log(r->reg, &summary, &err);
    if (rc != SG_OK) {
        json_decref(summary);
        return srv_error(rc == SG_EREFUSED ? 409 : 500, "INVALID_STATE", "%s", err.msg);
    }
    return srv_json(200, summary);
}

static srv_resp whoami(srv_req *r)
{
    if (!r->who) return srv_json(200, json_pack("{sn}", "principal"));
    return srv_json(
        200, json_pack("{s{ssss}}", "principal", "name", r->who->name, "key_id", r->who->key_id));
}

/* A model version as the CLI prints it (the registry's own document). */
static srv_resp version(srv_req *r)
{
    const char *name = srv_param(r, "name");
    if (!name) return srv_missing(r, "name");
    sg_err err = {{0}};
    const char *vs = srv_param(r, "version");
    json_t *doc;
    if (vs) {
        int64_t v;
        srv_resp bad;
        if (!srv_param_version(r, "version", &v, &bad)) return bad;
        doc = sg_registry_get_version(r->reg, name, v, &err);
    } else {
        doc = sg_registry_get_model(r->reg, name, &err);
    }
    return doc ? srv_json(200, doc) : srv_from_status(SG_EINPUT, &err);
}

static srv_resp list(srv_req *r)
{
    sg_err err = {{0}};
    json_t *doc = sg_registry_list(r->reg, &err);
    return doc ? srv_json(200, doc) : srv_from_status(SG_EIO, &err);
}

static srv_resp search(srv_req *r)
{
    const char *filter = srv_param(r, "filter");
    sg_err err = {{0}};
    json_t *doc = sg_registry_search(r->reg, filter ? filter : "", &err);
    return doc ? srv_json(200, doc) : srv_from_status(SG_EINPUT, &err);
}

static const srv_route_info READ = {"GET", "GET, HEAD", false}, CHANGE = {"POST", "POST", false};

/* read: answers GET and HEAD only (the others take POST). */
static const struct {
    const char *path;
    srv_resp (*fn)(srv_req *r);
    bool read;
} routes[] = {
    {"reports", upload_report, false}, {"approve", approve, false}, {"rollback", rollback, false},
    {"history", history, true},        {"verify-log", verify_log, true}, {"whoami", whoami, true},
    {"get", version, true},            {"list", list, true},             {"search", search, true},
};

const srv_route_info *srv_stagegate_route_info(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(path, routes[i].path)) return routes[i].read ? &READ : &CHANGE;
    return NULL;
}

bool srv_stagegate_route(srv_req *r, const char *path, srv_resp *resp)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(path, routes[i].path)) {
            *resp = routes[i].fn(r); /* dispatch checked the method (srv_stagegate_route_info) */
            return true;
        }
    return false;
}
