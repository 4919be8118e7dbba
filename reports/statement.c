/*
 * The signed gate report: an in-toto Statement v1 with the test-result
 * predicate, serialised once with a fixed key order and signed over exactly
 * those bytes (DSSE). Nothing is re-serialised after signing. jansson formats
 * reals independently of the process locale, and the CLI never calls
 * setlocale, so the bytes do not depend on LC_NUMERIC either.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stagegate/json.h"
#include "stagegate/gate.h"
#include "stagegate/report.h"
#include "stagegate/version.h"

/* A file's base name as a statement's "name": verify holds a subject's name to 511 bytes,
   so a longer one (a non-UTF-8 name, escaped 4 bytes a byte, passes that at 128 bytes) is
   cut at a character boundary and ends in "…"; the digest, not the name, names the file. */
static json_t *name_json(const char *base)
{
    json_t *j = sg_json_string_safe(base);
    if (!j || json_string_length(j) <= 511) return j;
    const char *t = json_string_value(j);
    size_t n = 508;
    while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
        n--;
    char cut[512];
    memcpy(cut, t, n);
    memcpy(cut + n, "\xe2\x80\xa6", 4); /* "…" and the NUL */
    json_decref(j);
    return json_string(cut);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The last second of year 9999: a four-digit RFC 3339 year. */
#define SDE_MAX 253402300799LL

/* SOURCE_DATE_EPOCH as seconds: 1 when set and valid, 0 when unset, -1 when malformed
   (digits only, 0 to the end of 9999). */
static int source_date_epoch(long long *v)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (!sde || !*sde) return 0;
    char *end = NULL;
    errno = 0;
    *v = strtoll(sde, &end, 10);
    return !errno && end && !*end && sde[0] >= '0' && sde[0] <= '9' && *v >= 0 && *v <= SDE_MAX
               ? 1
               : -1;
}

sg_status sg_source_date_epoch_check(sg_err *err)
{
    long long v;
    if (source_date_epoch(&v) >= 0) return SG_OK;
    return sg_errf(err, SG_EINPUT,
                   "SOURCE_DATE_EPOCH '%.40s' is not a number of seconds from 1970 to the end of "
                   "9999 (the reproducible-builds convention); unset it or fix it",
                   getenv("SOURCE_DATE_EPOCH"));
}

void sg_rfc3339_now(char out[32])
{
    time_t t = time(NULL);
    /* Reproducible builds' convention: a fixed clock for byte-identical reports (a malformed
       value is refused before the run, sg_source_date_epoch_check). */
    long long v;
    if (source_date_epoch(&v) == 1) t = (time_t)v;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

static json_t *digest_obj(const char *sha256)
{
    json_t *d = json_object();
    json_object_set_new(d, "sha256", json_string(sha256));
    return d;
}

/* A borrowed object, or null, so the predicate always has the same keys. */
static json_t *or_null(json_t *j)
{
    return j ? json_incref(j) : json_null();
}

json_t *sg_statement_build(const sg_statement_inputs *in, sg_err *err)
{
    if (!in->model_path || strlen(in->model_sha256) != 64 || !in->decision) {
        sg_errf(err, SG_EINTERNAL, "statement: model path, model digest and decision are required");
        return NULL;
    }
    json_t *st = json_object();
    json_object_set_new(st, "_type", json_string(SG_INTOTO_STATEMENT_TYPE));
    json_t *subject = json_array(), *s0 = json_object();
    json_object_set_new(s0, "name", name_json(base_name(in->model_path)));
    json_object_set_new(s0, "digest", digest_obj(in->model_sha256));
    json_array_append_new(subject, s0);
    json_object_set_new(st, "subject", subject);
    json_object_set_new(st, "predicateType", json_string(SG_TEST_RESULT_PREDICATE));

    json_t *pred = json_object();
    const sg_gate_decision *d = in->decision;
    json_object_set_new(pred, "result", json_string(d->passed ? "PASSED" : "FAILED"));
    json_t *config = json_array();
    for (int i = 0; i < in->n_config; i++) {
        const sg_resource *r = &in->config[i];
        json_t *o = json_object(), *ann = json_object();
        json_object_set_new(o, "name", name_json(base_name(r->path)));
        json_object_set_new(o, "digest", digest_obj(r->sha256));
        json_object_set_new(ann, "role", json_string(r->role));
        json_object_set_new(o, "annotations", ann);
        json_array_append_new(config, o);
    }
    json_object_set_new(pred, "configuration", config);
    /* Skipped optional checks are warnings in the test-result vocabulary: not failures, not proof.
     */
    json_t *passed = json_array(), *warned = json_array(), *failed = json_array();
    for (int i = 0; i < d->n; i++) {
        const sg_gate_check *c = &d->checks[i];
        json_array_append_new(c->skipped  ? warned
                              : c->passed ? passed
                                          : failed,
                              sg_json_string_safe(c->text));
    }
    json_object_set_new(pred, "passedTests", passed);
    json_object_set_new(pred, "warnedTests", warned);
    json_object_set_new(pred, "failedTests", failed);
    json_object_set_new(pred, "checks", sg_gate_checks_json(d));
    json_object_set_new(pred, "metrics", or_null(in->metrics));
    json_object_set_new(pred, "baseline_metrics", or_null(in->baseline_metrics));
    json_object_set_new(pred, "latency", or_null(in->latency));
    json_object_set_new(pred, "memory", or_null(in->memory));
    json_object_set_new(pred, "shadow", or_null(in->shadow));
    json_object_set_new(pred, "policy", or_null(in->policy));
    if (in->registry) json_object_set_new(pred, "registry", json_incref(in->registry));
    if (in->evaluation) json_object_set_new(pred, "evaluation", json_incref(in->evaluation));
    json_t *tool = json_object();
    json_object_set_new(tool, "version", json_string(SG_VERSION));
    json_object_set_new(tool, "build", json_string(SG_BUILD_FLAGS));
    json_object_set_new(pred, "stagegate", tool);
    char now[32];
    if (!in->timestamp) sg_rfc3339_now(now);
    json_object_set_new(pred, "timestamp", json_string(in->timestamp ? in->timestamp : now));
    /* A time SOURCE_DATE_EPOCH fixed is not when the gate ran: the statement says so (it had
       looked like the run's own time, any year). */
    long long sde;
    if (!in->timestamp && source_date_epoch(&sde) == 1)
        json_object_set_new(pred, "timestamp_source", json_string("SOURCE_DATE_EPOCH"));
    json_object_set_new(st, "predicate", pred);
    return st;
}

sg_status sg_statement_sign_write(json_t *statement, EVP_PKEY *key, const char *out_path, sg_err *err)
{
    sg_outfile o;
    sg_status rc = sg_statement_sign_stage(statement, key, out_path, &o, err);
    return rc ? rc : sg_outfile_commit(&o, err);
}

sg_status sg_statement_sign_stage(json_t *statement, EVP_PKEY *key, const char *out_path,
                                  sg_outfile *o, sg_err *err)
{
    memset(o, 0, sizeof *o);
    char *payload = sg_json_dumps(statement, false);
    if (!payload) return sg_errf(err, SG_ENOMEM, "%s: could not serialise the statement", out_path);
    char *envelope = NULL;
    int rc = sg_dsse_sign(key, SG_DSSE_PAYLOAD_TYPE, (const uint8_t *)payload, strlen(payload),
                          &envelope, err);
    free(payload);
    if (rc) return rc;
    rc = sg_outfile_open(o, out_path, err);
    if (!rc) {
        if (fputs(envelope, o->fp) < 0 || fputc('\n', o->fp) == EOF) {
            const int e = errno;
            sg_outfile_abort(o);
            rc = sg_errf(err, SG_EIO, "%s: write failed: %s", out_path, strerror(e));
        } else {
            rc = sg_outfile_flush(o, err);
        }
    }
    free(envelope);
    return rc;
}
