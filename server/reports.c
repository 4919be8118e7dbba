/*
 * Uploaded gate reports, kept in memory by the artifact digest they name. Any worker thread
 * may put or get; one mutex guards the table, and a get returns a copy so no caller holds a
 * pointer into it. The table is bounded (oldest entry evicted), and nothing here trusts a
 * report: the registry verifies it against the model's signers at the transition.
 */
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"
#include "stagegate/keys.h"

#define MAX_REPORTS 4096

typedef struct {
    char subject[65];
    uint8_t *env;
    size_t len;
    uint64_t seq;
} entry;

struct srv_reports {
    pthread_mutex_t mu;
    entry e[MAX_REPORTS];
    uint64_t seq;
};

srv_reports *srv_reports_new(void)
{
    srv_reports *r = calloc(1, sizeof *r);
    if (r) pthread_mutex_init(&r->mu, NULL);
    return r;
}

void srv_reports_free(srv_reports *r)
{
    if (!r) return;
    for (size_t i = 0; i < MAX_REPORTS; i++)
        free(r->e[i].env);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* The subject digest named by a DSSE envelope's in-toto statement (not verified here). */
static sg_status subject_of(const uint8_t *env, size_t len, char out[65], sg_err *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)env, len, 0, &jerr);
    const char *payload = doc ? json_string_value(json_object_get(doc, "payload")) : NULL;
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    int rc = SG_OK;
    if (!payload || sg_base64_decode(payload, &raw, &raw_len) != 0)
        rc = sg_errf(err, SG_EINPUT, "report is not a DSSE envelope with a base64 payload");
    json_t *st = rc == SG_OK ? json_loadb((const char *)raw, raw_len, 0, &jerr) : NULL;
    const char *sha = NULL;
    if (st) {
        json_t *subj = json_array_get(json_object_get(st, "subject"), 0);
        sha = json_string_value(json_object_get(json_object_get(subj, "digest"), "sha256"));
    }
    if (rc == SG_OK && (!sha || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64))
        rc = sg_errf(err, SG_EINPUT, "report's statement names no subject sha256 digest");
    if (rc == SG_OK) memcpy(out, sha, 65);
    json_decref(st);
    free(raw);
    json_decref(doc);
    return rc;
}

sg_status srv_reports_put(srv_reports *r, const uint8_t *env, size_t len, char subject_out[65],
                          sg_err *err)
{
    int rc = subject_of(env, len, subject_out, err);
    if (rc != SG_OK) return rc;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return sg_errf(err, SG_ENOMEM, "out of memory storing a report");
    memcpy(copy, env, len);
    pthread_mutex_lock(&r->mu);
    size_t slot = 0;
    for (size_t i = 0; i < MAX_REPORTS; i++) {
        if (r->e[i].env && !strcmp(r->e[i].subject, subject_out)) {
            slot = i;
            break;
        }
        if (r->e[i].seq < r->e[slot].seq) slot = i; /* free slots have seq 0: oldest */
    }
    free(r->e[slot].env);
    r->e[slot] = (entry){.env = copy, .len = len, .seq = ++r->seq};
    memcpy(r->e[slot].subject, subject_out, 65);
    pthread_mutex_unlock(&r->mu);
    return SG_OK;
}

uint8_t *srv_reports_get(srv_reports *r, const char *subject, size_t *len)
{
    uint8_t *copy = NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < MAX_REPORTS; i++)
        if (r->e[i].env && !strcmp(r->e[i].subject, subject)) {
            copy = malloc(r->e[i].len ? r->e[i].len : 1);
            if (copy) {
                memcpy(copy, r->e[i].env, r->e[i].len);
                *len = r->e[i].len;
            }
            break;
        }
    pthread_mutex_unlock(&r->mu);
    return copy;
}
