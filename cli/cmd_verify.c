/* stagegate verify: check a signed report (DSSE envelope, in-toto test-result statement). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stagegate/keys.h"
#include "stagegate/registry.h"
#include "stagegate/report.h"

static void verify_usage(FILE *out)
{
    fprintf(out,
            "usage: stagegate verify REPORT.intoto.json --pubkey PUB.pem [--model M] [--db REGISTRY]\n"
            "                        [--json]\n\n"
            "Checks, in this order: the signature over the DSSE PAE with PUB.pem, the\n"
            "payloadType (%s), the in-toto Statement v1,\n"
            "the predicateType (%s), and with --model\n"
            "that the subject digest equals the sha256 of the model file M (or of the\n"
            "registered version a models:/ URI names, whose file must still match the\n"
            "registry's digest; --db picks the registry).\n\n"
            "exit codes: 0 valid and PASSED; 1 invalid, not PASSED, or digest mismatch;\n"
            "            2 usage or input error (missing file, unreadable key or model)\n",
            SG_DSSE_PAYLOAD_TYPE, SG_TEST_RESULT_PREDICATE);
}

/* Detail text shown for a check that passed. */
static void pass_detail(int check, const sg_report_info *info, const char *model, char *out,
                        size_t cap)
{
    switch (check) {
    case SG_CHECK_SIGNATURE:
        snprintf(out, cap, "verified with key %s", info->key_id);
        break;
    case SG_CHECK_PAYLOAD_TYPE:
        snprintf(out, cap, "%s", SG_DSSE_PAYLOAD_TYPE);
        break;
    case SG_CHECK_STATEMENT:
        snprintf(out, cap, "subject %s sha256:%s", info->subject_name, info->subject_sha256);
        break;
    case SG_CHECK_PREDICATE_TYPE:
        snprintf(out, cap, "%s", info->predicate_type);
        break;
    case SG_CHECK_SUBJECT_DIGEST:
        snprintf(out, cap, "matches %s", model);
        break;
    default:
        out[0] = '\0';
    }
}

/* What the report's signer wrote (a subject name, a message quoting it) may hold a newline
   or an escape sequence that would draw a "[pass]" line of its own: it is printed through
   sg_put_printable. */
int sg_cmd_verify(int argc, char **argv)
{
    const char *report = NULL, *pubkey = NULL, *model = NULL, *db = NULL;
    bool json = false;
    const sg_opt opts[] = {SG_OPT_STR("pubkey", &pubkey), SG_OPT_STR("model", &model),
                           SG_OPT_STR("db", &db), SG_OPT_FLAG_("json", &json), SG_OPT_END_};
    const char *pos[2];
    int n_pos;
    int prc = sg_opts_parse("verify", opts, argc, argv, 1, pos, 2, &n_pos);
    if (prc == SG_OPTS_HELP) {
        verify_usage(stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    if (sg_cli_db_empty("verify", db)) return 2;
    if (n_pos > 1) return sg_cli_usage_error("verify", "more than one report given ('%s')", pos[1]);
    if (n_pos == 1) report = pos[0];
    if (!report) return sg_cli_usage_error("verify", "REPORT.intoto.json is required");
    if (!pubkey) return sg_cli_usage_error("verify", "--pubkey PUB.pem is required");

    sg_err err = {{0}};
    /* A models:/ URI names a registered version: its file, after the registry has checked
       that the file still has the digest it registered. */
    if (db && !(model && sg_is_model_uri(model)))
        return sg_cli_usage_error("verify", "--db applies only with --model models:/...");
    char resolved[4096], registered[65] = "";
    if (model && sg_is_model_uri(model)) {
        int st = sg_registry_resolve_uri(model, db, resolved, sizeof resolved, registered, &err);
        if (st) return sg_cli_fail(st, &err);
    }
    EVP_PKEY *pub = NULL;
    int rc = sg_key_load_public(pubkey, &pub, &err);
    if (rc) return sg_cli_fail(rc, &err);
    uint8_t *env = NULL;
    size_t env_len = 0;
    rc = sg_read_file(report, SG_DSSE_MAX_ENVELOPE, &env, &env_len, &err);
    if (rc) {
        EVP_PKEY_free(pub);
        return sg_cli_fail(rc, &err);
    }
    sg_report_info info;
    /* A registered version is its registered digest (the file had it just now): hashing
       the file again here had let a file renamed over in between stand for the version. */
    rc = registered[0] ? sg_report_verify_digest(env, env_len, pub, model, registered, &info, &err)
                       : sg_report_verify(env, env_len, pub, model, &info, &err);
    free(env);
    EVP_PKEY_free(pub);
    if (rc && rc != SG_EREFUSED) { /* unreadable model or internal failure: not a verdict */
        sg_report_info_clear(&info);
        return sg_cli_fail(rc, &err);
    }
    bool valid = rc == SG_OK;
    bool passed = valid && !strcmp(info.result, "PASSED");
    int nchecks = model ? SG_REPORT_NCHECKS : SG_REPORT_NCHECKS - 1;

    json_t *doc = json ? json_object() : NULL, *checks = json ? json_array() : NULL;
    if (!json) {
        /* a file name is not for the terminal to act on (escape sequences, bytes that are
           not UTF-8): shown as \xHH, as every other name is */
        fputs("report: ", stdout);
        sg_put_printable(stdout, report);
        fputc('\n', stdout);
    }
    for (int c = 0; c < SG_REPORT_NCHECKS; c++) {
        const char *status, *mark;
        char detail[sizeof err.msg + 200];
        if (c < info.checks_passed) {
            status = "pass", mark = "[pass]";
            pass_detail(c, &info, model, detail, sizeof detail);
        } else if (c == info.checks_passed && c < nchecks && !valid) {
            status = "fail", mark = "[FAIL]";
            snprintf(detail, sizeof detail, "%s", err.msg);
        } else {
            status = "skip", mark = "[skip]";
            snprintf(detail, sizeof detail, "%s",
                     c == SG_CHECK_SUBJECT_DIGEST && !model ? "no --model given" : "not checked");
        }
        if (json) {
            json_t *e = json_object();
            json_object_set_new(e, "name", json_string(sg_report_check_name(c)));
            json_object_set_new(e, "status", json_string(status));
            json_object_set_new(e, "detail", sg_json_string_safe(detail));
            json_array_append_new(checks, e);
        } else {
            printf("  %s %-15s ", mark, sg_report_check_name(c));
            sg_put_printable(stdout, detail);
            putchar('\n');
        }
    }
    if (json) {
        json_object_set_new(doc, "report", sg_json_string_safe(report));
        json_object_set_new(doc, "valid", json_boolean(valid));
        json_object_set_new(doc, "result", valid ? json_string(info.result) : json_null());
        json_object_set_new(doc, "passed", json_boolean(passed));
        json_object_set_new(doc, "key_id", valid ? json_string(info.key_id) : json_null());
        json_object_set_new(doc, "subject_name",
                            valid ? json_string(info.subject_name) : json_null());
        json_object_set_new(doc, "subject_sha256",
                            valid ? json_string(info.subject_sha256) : json_null());
        json_object_set_new(doc, "payload_sha256",
                            valid ? json_string(info.payload_sha256) : json_null());
        json_object_set_new(doc, "timestamp",
                            valid && info.timestamp[0] ? json_string(info.timestamp) : json_null());
        json_object_set_new(doc, "checks", checks);
        json_object_set_new(doc, "error", valid ? json_null() : sg_json_string_safe(err.msg));
        sg_json_print(doc);
        json_decref(doc);
    } else if (valid) {
        fputs("result: ", stdout);
        sg_put_printable(stdout, info.result);
        putchar('\n');
    } else {
        printf("result: INVALID (the report's contents cannot be trusted)\n");
    }
    sg_report_info_clear(&info);
    if (!valid) {
        /* the path as every other place shows it: a name holding escape sequences had moved
           the cursor up and written "result: PASSED" over the INVALID line */
        fputs("stagegate: ", stderr);
        sg_put_printable(stderr, report);
        fputs(": ", stderr);
        sg_put_printable(stderr, err.msg);
        fputc('\n', stderr);
        return 1;
    }
    return passed ? 0 : 1;
}
