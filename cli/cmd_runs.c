/* `stagegate registry record REPORT` and `stagegate registry runs NAME`: the run history. */
#include <math.h>
#include <string.h>

#include "cmd_registry.h"
#include "stagegate/compare.h"
#include "stagegate/keys.h"

const char reg_runs_usage[] =
    "usage: stagegate registry record REPORT [--pubkey PUB.pem] [--model NAME] [--db PATH] "
    "[--json]\n"
    "       stagegate registry runs NAME [--version V] [--fingerprint ID] [--limit N] [--db PATH] "
    "[--json]\n\n"
    "record adds a run to the history from a signed gate report: the version is the one whose\n"
    "artifact digest is the report's subject (--model picks the model when several hold it);\n"
    "the report must verify with --pubkey or, without it, with one of the model's trusted\n"
    "signer keys. runs lists a model's runs, oldest first (--limit keeps the newest N).\n"
    "Exit codes: 0 ok, 1 the report does not verify, 2 usage or input error.\n";

static double lat(const json_t *run, const char *k)
{
    json_t *v = json_object_get(json_object_get(json_object_get(run, "figures"), "latency_ns"), k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void print_run(const json_t *r)
{
    printf("#%lld %s %s v%lld %-10s %s %s", (long long)json_integer_value(json_object_get(r, "id")),
           sg_json_str(r, "time"), sg_json_str(r, "model"),
           (long long)json_integer_value(json_object_get(r, "version")), sg_json_str(r, "stage"),
           *sg_json_str(r, "fingerprint") ? sg_json_str(r, "fingerprint") : "(no machine)",
           sg_json_str(r, "result"));
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
                           g) if (!strcmp(json_string_value(g), k))
            printf("  %s %.4g", k, json_number_value(v));
    }
    printf("\n");
}

int reg_cmd_runs(reg_cli *a)
{
    bool record = !strcmp(a->sub, "record");
    const char *arg = a->pos[0];
    sg_err err = {{0}};
    EVP_PKEY *pub = NULL;
    int rc = a->pubkey ? sg_key_load_public(a->pubkey, &pub, &err) : SG_OK;
    sg_registry *reg = NULL;
    if (!rc) rc = sg_registry_open(sg_registry_path(a->db), false, &reg, &err);
    json_t *doc = NULL;
    if (!rc && record) {
        rc = sg_registry_record_run(reg, arg, pub, a->model, &doc, &err);
    } else if (!rc) {
        sg_runs_filter f = {
            .version = a->version, .fingerprint = a->fingerprint, .limit = a->limit};
        if (!(doc = sg_registry_runs(reg, arg, &f, &err))) rc = SG_EINPUT;
    }
    sg_registry_close(reg);
    EVP_PKEY_free(pub);
    if (rc) return sg_cli_fail(rc, &err);
    if (a->json) {
        rc = sg_json_print(doc) ? 2 : 0;
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
