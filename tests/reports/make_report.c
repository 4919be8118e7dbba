/*
 * Test-only helper: builds a minimal in-toto test-result statement and signs it with
 * sg_dsse_sign, so the verify tests do not depend on the gate command. Options let a
 * test produce reports that are validly signed but wrong in one specific way.
 */
#include <stdlib.h>
#include <string.h>

#include "stagegate/json.h"
#include "stagegate/keys.h"
#include "stagegate/report.h"

static int die(const char *msg)
{
    fprintf(stderr, "make_report: %s\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
    const char *key_path = NULL, *out = NULL, *name = "model.h5", *sha = NULL, *subject_file = NULL;
    const char *result = "PASSED", *ptype = SG_DSSE_PAYLOAD_TYPE, *stype = SG_INTOTO_STATEMENT_TYPE;
    const char *pred_type = SG_TEST_RESULT_PREDICATE, *sha2 = NULL, *payload_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--key"))
            key_path = v;
        else if (!strcmp(o, "--out"))
            out = v;
        else if (!strcmp(o, "--subject-name"))
            name = v;
        else if (!strcmp(o, "--subject-sha256"))
            sha = v;
        else if (!strcmp(o, "--subject-file"))
            subject_file = v;
        else if (!strcmp(o, "--second-subject-sha256"))
            sha2 = v;
        else if (!strcmp(o, "--result"))
            result = v;
        else if (!strcmp(o, "--payload-type"))
            ptype = v;
        else if (!strcmp(o, "--statement-type"))
            stype = v;
        else if (!strcmp(o, "--predicate-type"))
            pred_type = v;
        else if (!strcmp(o, "--payload-file"))
            payload_file = v;
        else
            return die("unknown option");
    }
    if (argc % 2 != 1 || !key_path || !out) return die("usage: --key K --out R [options]");
    sg_err err = {{0}};
    char hex[65];
    if (subject_file) {
        if (sg_sha256_file_hex(subject_file, hex, &err)) return die(err.msg);
        sha = hex;
    }
    if (!sha && !payload_file) return die("--subject-sha256 or --subject-file is required");

    /* Key first: a refused key must leave nothing allocated and no report written. */
    EVP_PKEY *key = NULL;
    if (sg_key_load_private(key_path, &key, &err)) return die(err.msg);
    uint8_t *payload = NULL;
    size_t plen = 0;
    if (payload_file) {
        if (sg_read_file(payload_file, 1 << 20, &payload, &plen, &err)) {
            EVP_PKEY_free(key);
            return die(err.msg);
        }
    } else {
        json_t *subjects = json_pack("[{s:s, s:{s:s}}]", "name", name, "digest", "sha256", sha);
        if (sha2)
            json_array_append_new(
                subjects, json_pack("{s:s, s:{s:s}}", "name", "second", "digest", "sha256", sha2));
        json_t *stmt =
            json_pack("{s:s, s:o, s:s, s:{s:s, s:{s:s}, s:[s], s:[], s:s}}", "_type", stype,
                      "subject", subjects, "predicateType", pred_type, "predicate", "result",
                      result, "configuration", "dataset", "sha256:0000", "passedTests",
                      "accuracy 0.91 >= 0.85", "failedTests", "timestamp", "2024-01-02T03:04:05Z");
        char *text = stmt ? sg_json_dumps(stmt, false) : NULL;
        json_decref(stmt);
        if (!text) {
            EVP_PKEY_free(key);
            return die("cannot build statement");
        }
        payload = (uint8_t *)text;
        plen = strlen(text);
    }
    char *env = NULL;
    int rc = sg_dsse_sign(key, ptype, payload, plen, &env, &err);
    EVP_PKEY_free(key);
    free(payload);
    if (rc) return die(err.msg);
    sg_outfile of;
    if (sg_outfile_open(&of, out, &err)) return die(err.msg);
    fputs(env, of.fp);
    free(env);
    if (sg_outfile_commit(&of, &err)) return die(err.msg);
    return 0;
}
