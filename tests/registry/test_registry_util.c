/* Helpers for the registry unit tests: temp dirs, keys and signed reports. */
#define _GNU_SOURCE
#include "test_registry_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <cmocka.h>

#include "stagegate/keys.h"
#include "stagegate/report.h"

void tu_tmpdir(char out[512])
{
    const char *base = getenv("TMPDIR");
    snprintf(out, 512, "%s/sg-registry-XXXXXX", base && *base ? base : P_tmpdir);
    assert_non_null(mkdtemp(out));
}

void tu_keygen(const char *dir, const char *name, char key[600], char pub[600])
{
    char prefix[560];
    sg_err err;
    snprintf(prefix, sizeof prefix, "%s/%s", dir, name);
    assert_int_equal(sg_keygen(prefix, SG_KEY_ECDSA_P256, &err), SG_OK);
    snprintf(key, 600, "%s.key.pem", prefix);
    snprintf(pub, 600, "%s.pub.pem", prefix);
}

void tu_file(const char *dir, const char *name, const char *content, char out[600])
{
    snprintf(out, 600, "%s/%s", dir, name);
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

char *tu_report(const char *key_path, const char *sha256, const char *result, const char *ts)
{
    char now[32];
    if (!ts) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
        ts = now;
    }
    EVP_PKEY *key = NULL;
    sg_err err;
    assert_int_equal(sg_key_load_private(key_path, &key, &err), SG_OK);
    json_t *st =
        json_pack("{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:s, s:s}}", "_type", SG_INTOTO_STATEMENT_TYPE,
                  "subject", "name", "model.h5", "digest", "sha256", sha256, "predicateType",
                  SG_TEST_RESULT_PREDICATE, "predicate", "result", result, "timestamp", ts);
    char *payload = json_dumps(st, JSON_COMPACT);
    char *env = NULL;
    assert_int_equal(sg_dsse_sign(key, SG_DSSE_PAYLOAD_TYPE, (const uint8_t *)payload,
                                  strlen(payload), &env, &err),
                     SG_OK);
    free(payload);
    json_decref(st);
    EVP_PKEY_free(key);
    return env;
}

void tu_rm_rf(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}
