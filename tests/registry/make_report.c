/*
 * Test-only helper: writes a minimal signed in-toto test-result report (DSSE) for a given
 * artifact digest, so registry tests can exercise the Staging gate with reports of chosen
 * digest, result and age.
 * usage: make_report KEY.pem SHA256HEX PASSED|FAILED RFC3339-TIME|now|-Ndays OUT.json
 *        [POLICY_SHA256 DATASET_SHA256]
 * With the last two, the predicate's configuration names that policy and dataset, as gate's
 * does (the digests a pinned model compares). MAKE_REPORT_REGISTRY, when set, is JSON put
 * as the predicate's "registry" (what gate writes for a models:/ URI, or a malformed one).
 * MAKE_REPORT_PAD=N adds a predicate member "padding" of N bytes (a large report).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stagegate/keys.h"
#include "stagegate/report.h"

static void timestamp(const char *arg, char out[32])
{
    time_t t = time(NULL);
    if (arg[0] == '-') t -= (time_t)atol(arg + 1) * 86400;
    if (strcmp(arg, "now") != 0 && arg[0] != '-') {
        snprintf(out, 32, "%s", arg);
        return;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 8) {
        fprintf(stderr, "usage: make_report KEY.pem SHA256 PASSED|FAILED TIME|now|-Ndays OUT "
                        "[POLICY_SHA256 DATASET_SHA256]\n");
        return 2;
    }
    sg_err err;
    EVP_PKEY *key = NULL;
    if (sg_key_load_private(argv[1], &key, &err) != SG_OK) {
        fprintf(stderr, "make_report: %s\n", err.msg);
        return 2;
    }
    char ts[32];
    timestamp(argv[4], ts);
    json_t *st =
        json_pack("{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:s, s:s, s:[s], s:[]}}", "_type",
                  SG_INTOTO_STATEMENT_TYPE, "subject", "name", "model.h5", "digest", "sha256",
                  argv[2], "predicateType", SG_TEST_RESULT_PREDICATE, "predicate", "result",
                  argv[3], "timestamp", ts, "passedTests", "accuracy", "failedTests");
    if (argc == 8)
        json_object_set_new(
            json_object_get(st, "predicate"), "configuration",
            json_pack("[{s:s, s:{s:s}, s:{s:s}}, {s:s, s:{s:s}, s:{s:s}}]", "name", "policy.json",
                      "digest", "sha256", argv[6], "annotations", "role", "policy", "name",
                      "val.h5", "digest", "sha256", argv[7], "annotations", "role", "dataset"));
    const char *reg_json = getenv("MAKE_REPORT_REGISTRY");
    if (reg_json) {
        json_t *rj = json_loads(reg_json, JSON_DECODE_ANY, NULL);
        if (!rj) {
            fprintf(stderr, "make_report: MAKE_REPORT_REGISTRY is not JSON\n");
            return 2;
        }
        json_object_set_new(json_object_get(st, "predicate"), "registry", rj);
    }
    const char *pad = getenv("MAKE_REPORT_PAD");
    if (pad) {
        size_t n = strtoul(pad, NULL, 10);
        char *buf = malloc(n + 1);
        if (!buf) return 2;
        memset(buf, 'x', n);
        buf[n] = '\0';
        json_object_set_new(json_object_get(st, "predicate"), "padding", json_string(buf));
        free(buf);
    }
    char *payload = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
    char *env = NULL;
    int rc = sg_dsse_sign(key, SG_DSSE_PAYLOAD_TYPE, (const uint8_t *)payload, strlen(payload),
                          &env, &err);
    if (rc == SG_OK) {
        FILE *f = fopen(argv[5], "w");
        if (!f || fputs(env, f) < 0 || fclose(f) != 0) rc = SG_EIO;
    } else {
        fprintf(stderr, "make_report: %s\n", err.msg);
    }
    free(env);
    free(payload);
    json_decref(st);
    EVP_PKEY_free(key);
    return rc == SG_OK ? 0 : 2;
}
