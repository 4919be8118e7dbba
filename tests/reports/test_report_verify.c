/*
 * Key files and report verification: keygen modes and no-overwrite, the unprotected
 * private key refusal, and each sg_report_verify check failing on a validly signed
 * statement that is wrong in exactly one way.
 */
#define _GNU_SOURCE /* asprintf */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stagegate/keys.h"
#include "stagegate/report.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/sg_report_test.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static mode_t mode_of(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 07777;
}

static void keygen_checks(const char *name, sg_key_type type)
{
    char prefix[512], priv[600], pub[600];
    path_in(prefix, sizeof prefix, name);
    snprintf(priv, sizeof priv, "%s.key.pem", prefix);
    snprintf(pub, sizeof pub, "%s.pub.pem", prefix);
    sg_err err;
    /* A permissive umask must not leak into the private key's mode. */
    mode_t old = umask(0);
    int rc = sg_keygen(prefix, type, &err);
    umask(old);
    assert_int_equal(rc, SG_OK);
    assert_int_equal(mode_of(priv), 0600);
    assert_int_equal(mode_of(pub), 0644);

    EVP_PKEY *sk = NULL, *pk = NULL;
    assert_int_equal(sg_key_load_private(priv, &sk, &err), SG_OK);
    assert_int_equal(sg_key_load_public(pub, &pk, &err), SG_OK);
    char id1[65], id2[65];
    assert_int_equal(sg_key_id(sk, id1, &err), SG_OK);
    assert_int_equal(sg_key_id(pk, id2, &err), SG_OK);
    assert_string_equal(id1, id2);
    assert_int_equal(EVP_PKEY_is_a(pk, type == SG_KEY_ED25519 ? "ED25519" : "EC"), 1);

    /* Raw sign/verify round trip, and a wrong message is refused. */
    uint8_t *sig = NULL;
    size_t slen = 0;
    assert_int_equal(sg_sign(sk, (const uint8_t *)"abc", 3, &sig, &slen, &err), SG_OK);
    assert_int_equal(sg_verify_sig(pk, (const uint8_t *)"abc", 3, sig, slen, &err), SG_OK);
    assert_int_equal(sg_verify_sig(pk, (const uint8_t *)"abd", 3, sig, slen, &err), SG_EREFUSED);
    free(sig);

    /* Second keygen to the same prefix refuses and leaves the key untouched. */
    assert_int_equal(sg_keygen(prefix, type, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "already exists"));
    EVP_PKEY *again = NULL;
    assert_int_equal(sg_key_load_public(pub, &again, &err), SG_OK);
    assert_int_equal(sg_key_id(again, id2, &err), SG_OK);
    assert_string_equal(id1, id2);
    EVP_PKEY_free(again);

    /* Group- or world-accessible private key: refused, message names file and mode. */
    static const mode_t bad_modes[] = {0640, 0604, 0660, 0644, 0610, 0602};
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        assert_int_equal(chmod(priv, bad_modes[i]), 0);
        EVP_PKEY *k = NULL;
        assert_int_equal(sg_key_load_private(priv, &k, &err), SG_EINPUT);
        assert_null(k);
        assert_non_null(strstr(err.msg, priv));
        assert_non_null(strstr(err.msg, "UNPROTECTED PRIVATE KEY FILE"));
        char m[8];
        snprintf(m, sizeof m, "%04o", (unsigned)bad_modes[i]);
        assert_non_null(strstr(err.msg, m));
    }
    assert_int_equal(chmod(priv, 0400), 0);
    EVP_PKEY *k = NULL;
    assert_int_equal(sg_key_load_private(priv, &k, &err), SG_OK);
    EVP_PKEY_free(k);
    /* A public key file is not a private key. */
    assert_int_equal(sg_key_load_public(priv, &k, &err), SG_EINPUT);
    /* A certificate (or any other PEM block) given as the private key is named as such,
       whatever its mode: not "UNPROTECTED PRIVATE KEY FILE", then a decoder error. */
    char cert[4200];
    snprintf(cert, sizeof cert, "%s.cert.pem", prefix);
    for (int mode = 0; mode < 2; mode++) {
        FILE *f = fopen(cert, "w");
        assert_non_null(f);
        fputs("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n", f);
        fclose(f);
        assert_int_equal(chmod(cert, mode ? 0600 : 0644), 0);
        assert_int_equal(sg_key_load_private(cert, &k, &err), SG_EINPUT);
        assert_null(k);
        assert_non_null(strstr(err.msg, cert));
        assert_non_null(
            strstr(err.msg, "is a PEM CERTIFICATE (BEGIN CERTIFICATE), not a private key"));
        assert_null(strstr(err.msg, "UNPROTECTED"));
    }
    unlink(cert);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(pk);
}

static void test_keygen_ecdsa(void **state)
{
    (void)state;
    keygen_checks("ec", SG_KEY_ECDSA_P256);
}

static void test_keygen_ed25519(void **state)
{
    (void)state;
    keygen_checks("ed", SG_KEY_ED25519);
}

static void test_unsupported_key_type(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(rsa);
    char *pem = NULL;
    sg_err err;
    assert_int_equal(sg_key_public_pem(rsa, &pem, &err), SG_OK);
    EVP_PKEY *k = NULL;
    assert_int_equal(sg_key_load_public_pem(pem, strlen(pem), "rsa.pub", &k, &err), SG_EINPUT);
    assert_null(k);
    free(pem);
    EVP_PKEY_free(rsa);
}

/* Signs the statement text as is and runs sg_report_verify on the envelope. */
static int verify_statement(EVP_PKEY *key, const char *ptype, const char *stmt, const char *model,
                            sg_report_info *info, sg_err *err)
{
    char *env = NULL;
    assert_int_equal(sg_dsse_sign(key, ptype, (const uint8_t *)stmt, strlen(stmt), &env, err),
                     SG_OK);
    int rc = sg_report_verify((const uint8_t *)env, strlen(env), key, model, info, err);
    free(env);
    return rc;
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char *statement(const char *type, const char *subjects, const char *pred_type,
                       const char *pred)
{
    char *s = NULL;
    assert_true(
        asprintf(&s, "{\"_type\":\"%s\",\"subject\":%s,\"predicateType\":\"%s\",\"predicate\":%s}",
                 type, subjects, pred_type, pred) > 0);
    return s;
}

static void expect(EVP_PKEY *k, const char *ptype, char *stmt, const char *model, int rc_want,
                   int checks_want, const char *msg_part)
{
    sg_report_info info;
    sg_err err = {{0}};
    int rc = verify_statement(k, ptype, stmt, model, &info, &err);
    if (rc != rc_want || info.checks_passed != checks_want)
        fprintf(stderr, "statement %s: %s\n", stmt, err.msg);
    assert_int_equal(rc, rc_want);
    assert_int_equal(info.checks_passed, checks_want);
    if (msg_part) assert_non_null(strstr(err.msg, msg_part));
    if (rc != SG_OK) assert_string_equal(info.result, "");
    sg_report_info_clear(&info);
    free(stmt);
}

static void test_report_checks(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    const char *T = SG_INTOTO_STATEMENT_TYPE, *P = SG_TEST_RESULT_PREDICATE,
               *PT = SG_DSSE_PAYLOAD_TYPE;
    const char *one = "[{\"name\":\"m.h5\",\"digest\":{\"sha256\":\"" SHA_B "\"}}]";
    const char *passed = "{\"result\":\"PASSED\",\"timestamp\":\"2024-01-02T03:04:05Z\"}";

    /* Valid, and every field extracted. */
    sg_report_info info;
    sg_err err;
    char *s = statement(T, one, P, passed);
    assert_int_equal(verify_statement(k, PT, s, NULL, &info, &err), SG_OK);
    assert_int_equal(info.checks_passed, SG_REPORT_NCHECKS - 1);
    assert_false(info.digest_checked);
    assert_string_equal(info.result, "PASSED");
    assert_string_equal(info.subject_name, "m.h5");
    assert_string_equal(info.subject_sha256, SHA_B);
    assert_string_equal(info.predicate_type, P);
    assert_string_equal(info.timestamp, "2024-01-02T03:04:05Z");
    char hex[65], id[65];
    sg_sha256_hex((const uint8_t *)s, strlen(s), hex);
    assert_string_equal(info.payload_sha256, hex);
    assert_int_equal(sg_key_id(k, id, &err), SG_OK);
    assert_string_equal(info.key_id, id);
    assert_non_null(info.statement);
    sg_report_info_clear(&info);
    free(s);

    expect(k, PT, statement(T, one, P, "{\"result\":\"FAILED\"}"), NULL, SG_OK, 4, NULL);
    /* A timestamp that is not RFC 3339 (a report's age is computed from it). */
    expect(k, PT, statement(T, one, P, "{\"result\":\"PASSED\",\"timestamp\":\"yesterday\"}"),
           NULL, SG_EREFUSED, 3, "predicate.timestamp \"yesterday\" is not an RFC 3339 time");
    expect(k, PT,
           statement(T, one, P,
                     "{\"result\":\"PASSED\",\"timestamp\":\"10000-01-01T00:00:00Z\"}"),
           NULL, SG_EREFUSED, 3, "not an RFC 3339 time");
    /* Each check failing on its own, signature intact. */
    expect(k, "application/json", statement(T, one, P, passed), NULL, SG_EREFUSED, 1,
           "payloadType");
    expect(k, PT, strdup("not json"), NULL, SG_EREFUSED, 2, "not valid JSON");
    expect(k, PT, strdup("[1,2]"), NULL, SG_EREFUSED, 2, "not a JSON object");
    expect(k, PT, statement("https://in-toto.io/Statement/v0.1", one, P, passed), NULL, SG_EREFUSED,
           2, "_type");
    expect(k, PT, statement(T, "[]", P, passed), NULL, SG_EREFUSED, 2, "subject");
    expect(k, PT, statement(T, "[{\"name\":\"m\",\"digest\":{\"sha256\":\"ABC\"}}]", P, passed),
           NULL, SG_EREFUSED, 2, "sha256");
    expect(k, PT,
           statement(T, "[{\"name\":\"m\",\"digest\":{\"sha512\":\"" SHA_B "\"}}]", P, passed),
           NULL, SG_EREFUSED, 2, "sha256");
    expect(k, PT,
           statement(T,
                     "[{\"name\":\"m\",\"digest\":{\"sha256\":\"" SHA_B
                     "\"}},{\"name\":\"n\",\"digest\":"
                     "{\"sha256\":\"" SHA_A "\"}}]",
                     P, passed),
           NULL, SG_EREFUSED, 2, "subject[1]");
    expect(k, PT, statement(T, one, "https://in-toto.io/attestation/test-result/v0.2", passed),
           NULL, SG_EREFUSED, 3, "predicateType");
    expect(k, PT, statement(T, one, P, "{\"result\":\"MAYBE\"}"), NULL, SG_EREFUSED, 3, "MAYBE");
    expect(k, PT, statement(T, one, P, "{}"), NULL, SG_EREFUSED, 3, "result");
    expect(k, PT, statement(T, one, P, "[]"), NULL, SG_EREFUSED, 3, "predicate");
    /* Duplicate keys inside the signed statement are refused too. */
    char *dup = NULL;
    assert_true(
        asprintf(&dup,
                 "{\"_type\":\"%s\",\"subject\":%s,\"predicateType\":\"%s\",\"predicate\":%s,"
                 "\"predicate\":{\"result\":\"PASSED\"}}",
                 T, one, P, "{\"result\":\"FAILED\"}") > 0);
    expect(k, PT, dup, NULL, SG_EREFUSED, 2, "duplicate");

    /* Subject digest against a model file: equal passes, different bytes refuse. */
    char model[512];
    path_in(model, sizeof model, "model.bin");
    FILE *f = fopen(model, "wb");
    assert_non_null(f);
    fputs("model bytes", f);
    fclose(f);
    assert_int_equal(sg_sha256_file_hex(model, hex, &err), SG_OK);
    char subj[256];
    snprintf(subj, sizeof subj, "[{\"name\":\"model.bin\",\"digest\":{\"sha256\":\"%s\"}}]", hex);
    expect(k, PT, statement(T, subj, P, passed), model, SG_OK, 5, NULL);
    expect(k, PT, statement(T, one, P, passed), model, SG_EREFUSED, 4, "does not match");
    char missing[512];
    path_in(missing, sizeof missing, "absent.h5");
    expect(k, PT, statement(T, subj, P, passed), missing, SG_EINPUT, 4, "absent.h5");

    /* The wrong public key: refused at the first check, nothing extracted. */
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char *env = NULL;
    s = statement(T, one, P, passed);
    assert_int_equal(sg_dsse_sign(k, PT, (const uint8_t *)s, strlen(s), &env, &err), SG_OK);
    assert_int_equal(sg_report_verify((const uint8_t *)env, strlen(env), other, NULL, &info, &err),
                     SG_EREFUSED);
    assert_int_equal(info.checks_passed, 0);
    assert_null(info.statement);
    assert_string_equal(info.result, "");
    sg_report_info_clear(&info);
    free(env), free(s);
    EVP_PKEY_free(other);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_ecdsa),
        cmocka_unit_test(test_keygen_ed25519),
        cmocka_unit_test(test_unsupported_key_type),
        cmocka_unit_test(test_report_checks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
