/* `stagegate registry record REPORT`, `stagegate registry runs NAME` and `stagegate registry
 * set-run-verdict NAME REPORT VERDICT`: the run history and the nightly verdicts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_registry.h"
#include "stagegate/compare.h"
#include "stagegate/json.h"
#include "stagegate/keys.h"
#include "stagegate/report.h"

const char reg_runs_usage[] =
    "usage: stagegate registry record REPORT [--pubkey PUB.pem] [--model NAME] [--version V]\n"
    "                                [--db PATH] [--json]\n"
    "       stagegate registry runs NAME [--version V] [--fingerprint ID] [--limit N] [--db PATH] "
    "[--json]\n"
    "       stagegate registry set-run-verdict NAME REPORT (VERDICT | --from COMPARE.json) "
    "[--db PATH] [--json]\n\n"
    "record adds a run to the history from a signed gate report: the version is the one whose\n"
    "artifact digest is the report's subject (--model picks the model when several hold it,\n"
    "--version the version when one model holds it twice);\n"
    "the report must verify with --pubkey or, without it, with one of the model's trusted\n"
    "signer keys. runs lists a model's runs, oldest first (--limit keeps the newest N).\n"
    "set-run-verdict stores the verdict of the nightly compare of a recorded run: REPORT is\n"
    "the report file it was recorded from, or that file's SHA-256; VERDICT is regressed,\n"
    "improved, unchanged or first (nothing to compare with), or --from the `compare --json`\n"
    "output (regressed if anything regressed; improved if something improved and nothing got\n"
    "worse; else unchanged). The trend page marks the nights whose verdict is regressed.\n"
    "Exit codes: 0 ok, 1 the report does not verify, 2 usage or input error.\n";

static double lat(const json_t *run, const char *k)
{
    json_t *v = json_object_get(json_object_get(json_object_get(run, "figures"), "latency_ns"), k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void print_run_text(const json_t *r)
{
    printf("#%lld %s %s v%lld %-10s %s %s", (long long)json_integer_value(json_object_get(r, "id")),
           sg_json_str(r, "time"), sg_json_str(r, "model"),
           (long long)json_integer_value(json_object_get(r, "version")), sg_json_str(r, "stage"),
           *sg_json_str(r, "fingerprint") ? sg_json_str(r, "fingerprint") : "(no machine)",
           sg_json_str(r, "result"));
    if (json_is_string(json_object_get(r, "verdict")))
        printf(" (nightly: %s)", sg_json_str(r, "verdict"));
    if (json_is_false(json_object_get(r, "signer_trusted")))
        printf(" (signed by key %.12s, not a signer of the model)",
               sg_json_str(r, "signer_key_id"));
    if (isfinite(lat(r, "p50")) && isfinite(lat(r, "p99"))) {
        char a[32], b[32];
        sg_format_ns(lat(r, "p50"), a, sizeof a);
        sg_format_ns(lat(r, "p99"), b, sizeof b);
        printf("  p50 %s p99 %s", a, b);
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(r, "figures"), "metrics"), k, v)
    {
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(json_object_get(r, "figures"), "gated"), i,
                           g) if (json_is_string(g) && json_is_number(v) &&
                                  !strcmp(json_string_value(g), k))
            printf("  %s %.4g", k, json_number_value(v));
    }
    printf("\n");
}

/* A run as one line; its strings (a report's model name, a verdict) shown, not acted on. */
static void print_run(json_t *r)
{
    json_t *p = sg_json_printable(r);
    if (p) print_run_text(p);
    json_decref(p);
}

static bool is_sha256_hex(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");
    return n == 64 && !s[n];
}

/* The verdict to store: given, or read off a `compare --json` document. */
static sg_status verdict_arg(reg_cli *a, const char **verdict, json_t **cmp, sg_err *err)
{
    if (a->n_pos == 3 && a->from)
        return sg_errf(err, SG_EINPUT,
                       "set-run-verdict: give VERDICT or --from COMPARE.json, not both");
    if (a->n_pos == 2 && !a->from)
        return sg_errf(err, SG_EINPUT, "set-run-verdict: missing VERDICT (or --from COMPARE.json)");
    if (!a->from) {
        *verdict = a->pos[2];
        return SG_OK;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = sg_read_file(a->from, 64u << 20, &data, &len, err);
    if (rc) return rc;
    json_error_t jerr;
    *cmp = json_loadb((const char *)data, len, 0, &jerr);
    free(data);
    if (!*cmp)
        return sg_errf(err, SG_EINPUT, "%s: not JSON (line %d: %s)", a->from, jerr.line, jerr.text);
    return sg_compare_verdict(*cmp, a->from, verdict, err);
}

/* REPORT is a SHA-256 in hex, or the report file, hashed as `registry record` hashes it. */
static sg_status report_sha_arg(const char *arg, char sha[65], char *payload_sha, sg_err *err)
{
    if (payload_sha) payload_sha[0] = '\0';
    if (is_sha256_hex(arg)) { /* stored in lower case, as sha256sum prints it */
        for (int i = 0; i < 65; i++)
            sha[i] = (char)(arg[i] >= 'A' && arg[i] <= 'F' ? arg[i] - 'A' + 'a' : arg[i]);
        return SG_OK;
    }
    uint8_t *env = NULL;
    size_t len = 0;
    int rc = sg_read_file(arg, SG_DSSE_MAX_ENVELOPE, &env, &len, err);
    if (rc) return rc;
    sg_sha256_hex(env, len, sha);
    /* And its signed statement's digest (payload_sha), which a run is also known by: the
       same report re-encoded is other bytes (record refuses it as already recorded). Only
       a digest to look a run up by; nothing here is trusted. */
    if (payload_sha) sg_dsse_payload_sha256(env, len, payload_sha);
    free(env);
    return SG_OK;
}

static int cmd_set_verdict(reg_cli *a)
{
    sg_err err = {{0}};
    const char *verdict = NULL;
    json_t *cmp = NULL, *doc = NULL;
    char sha[65], psha[65] = "";
    int rc = verdict_arg(a, &verdict, &cmp, &err);
    if (!rc && !sg_run_verdict_valid(verdict))
        rc =
            sg_errf(&err, SG_EINPUT,
                    "verdict '%.64s' is not one of regressed, improved, unchanged, first", verdict);
    if (!rc) rc = report_sha_arg(a->pos[1], sha, psha, &err);
    /* The comparison must be about this run's report: one whose NEW was another report (of
       another version, another night) had set its verdict here. */
    if (!rc && cmp) {
        json_t *nw = json_object_get(cmp, "new");
        const char *judged = json_string_value(json_object_get(nw, "file_sha256"));
        const char *jp = json_string_value(json_object_get(nw, "payload_sha256"));
        if (!judged)
            rc = sg_errf(&err, SG_EINPUT,
                         "%s: new.file_sha256 is missing, so the report it judges is unknown (made "
                         "by an older stagegate? run compare --json again)",
                         a->from);
        /* the same signed statement in other bytes (re-encoded) is the same report */
        else if (strcmp(judged, sha) != 0 && !(jp && psha[0] && !strcmp(jp, psha)))
            rc = sg_errf(&err, SG_EINPUT,
                         "%s judges another report (new.file_sha256 %.16s..., not %.16s... of %s)",
                         a->from, judged, sha, a->pos[1]);
    }
    sg_registry *reg = NULL;
    if (!rc) rc = sg_registry_open(sg_registry_path(a->db), false, &reg, &err);
    if (!rc) rc = sg_registry_set_run_verdict(reg, a->pos[0], sha, verdict, &doc, &err);
    /* a file that is the recorded report re-encoded: the run is found by its statement */
    if (rc == SG_EINPUT && psha[0] && strstr(err.msg, "no run of")) {
        sg_err e2 = {{0}};
        int rc2 = sg_registry_set_run_verdict(reg, a->pos[0], psha, verdict, &doc, &e2);
        if (rc2 != SG_EINPUT || !strstr(e2.msg, "no run of")) {
            rc = rc2;
            err = e2;
        }
    }
    sg_registry_close(reg);
    json_decref(cmp); /* verdict is argv or a string literal, not cmp's */
    if (rc) return sg_cli_fail(rc, &err);
    if (a->json) {
        (void)sg_json_print(doc); /* a failed write: main reports it */
    } else {
        printf("verdict stored for run #%lld: ",
               (long long)json_integer_value(json_object_get(doc, "id")));
        print_run(doc);
    }
    json_decref(doc);
    return rc;
}

int reg_cmd_runs(reg_cli *a)
{
    if (!strcmp(a->sub, "set-run-verdict")) return cmd_set_verdict(a);
    bool record = !strcmp(a->sub, "record");
    const char *arg = a->pos[0];
    sg_err err = {{0}};
    EVP_PKEY *pub = NULL;
    int rc = a->pubkey ? sg_key_load_public(a->pubkey, &pub, &err) : SG_OK;
    sg_registry *reg = NULL;
    if (!rc) rc = sg_registry_open(sg_registry_path(a->db), false, &reg, &err);
    json_t *doc = NULL;
    if (!rc && record) {
        rc = sg_registry_record_run(reg, arg, pub, a->model, a->version, &doc, &err);
    } else if (!rc) {
        sg_runs_filter f = {
            .version = a->version, .fingerprint = a->fingerprint, .limit = a->limit};
        /* A version the model does not have is an error, as in `trend` and `registry get`,
           not an empty list with exit 0. */
        if (f.version) {
            json_t *v = sg_registry_get_version(reg, arg, f.version, &err);
            if (!v) rc = SG_EINPUT;
            json_decref(v);
        }
        if (!rc && !(doc = sg_registry_runs(reg, arg, &f, &err))) rc = SG_EINPUT;
    }
    sg_registry_close(reg);
    EVP_PKEY_free(pub);
    if (rc) return sg_cli_fail(rc, &err);
    if (a->json) {
        (void)sg_json_print(doc); /* a failed write: main reports it */
    } else if (record) {
        printf("recorded run #%lld: ", (long long)json_integer_value(json_object_get(doc, "id")));
        print_run(doc);
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(doc, "runs"), i, r) print_run(r);
        if (!json_array_size(json_object_get(doc, "runs")))
            printf("no runs recorded for %s\n", arg);
    }
    json_decref(doc);
    return rc;
}
