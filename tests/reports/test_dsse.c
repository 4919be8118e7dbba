/*
 * DSSE unit tests: PAE against the spec, base64 edge cases, the DSSE project's Ed25519
 * test vectors (Ed25519 is deterministic, so our signature must equal theirs byte for
 * byte), envelope parsing refusals, and tampering with every bit of a signed envelope.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/keys.h"
#include "stagegate/report.h"

static void assert_pae(const char *type, const char *body, size_t body_len, const char *expect,
                       size_t expect_len)
{
    uint8_t *pae = NULL;
    size_t n = 0;
    assert_int_equal(sg_dsse_pae(type, (const uint8_t *)body, body_len, &pae, &n), SG_OK);
    assert_int_equal(n, expect_len);
    assert_memory_equal(pae, expect, expect_len);
    free(pae);
}

static void test_pae_spec_vectors(void **state)
{
    (void)state;
    /* The example in the DSSE protocol document. */
    const char *e1 = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
    assert_pae("http://example.com/HelloWorld", "hello world", 11, e1, strlen(e1));
    /* Empty body keeps the trailing space: "... 0 ". */
    const char *e2 = "DSSEv1 28 application/vnd.in-toto+json 0 ";
    assert_pae("application/vnd.in-toto+json", "", 0, e2, strlen(e2));
    /* LEN is bytes of UTF-8, not characters: "exämple" is 29 bytes for 28 characters. */
    const char *e3 = "DSSEv1 29 application/vnd.ex\xc3\xa4mple+json 2 {}";
    assert_pae("application/vnd.ex\xc3\xa4mple+json", "{}", 2, e3, strlen(e3));
    /* Binary body with a NUL is copied verbatim. */
    const char body4[] = {'a', 0, 'b'};
    const char e4[] = "DSSEv1 1 t 3 a\0b";
    assert_pae("t", body4, 3, e4, sizeof e4 - 1);
}

static void test_base64_rfc4648(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *enc = sg_base64_encode((const uint8_t *)plain[i], strlen(plain[i]));
        assert_string_equal(enc, coded[i]);
        free(enc);
        uint8_t *dec = NULL;
        size_t n = 99;
        assert_int_equal(sg_base64_decode(coded[i], &dec, &n), 0);
        assert_int_equal(n, strlen(plain[i]));
        if (n) assert_memory_equal(dec, plain[i], n);
        free(dec);
    }
}

static void test_base64_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[300];
    uint32_t x = 12345;
    for (size_t len = 0; len <= sizeof buf; len++) {
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
        if (len == 3) memset(buf, 0xff, 3); /* the "///" corner */
        char *enc = sg_base64_encode(buf, len);
        assert_non_null(enc);
        assert_int_equal(strlen(enc), (len + 2) / 3 * 4);
        uint8_t *dec = NULL;
        size_t n = 0;
        assert_int_equal(sg_base64_decode(enc, &dec, &n), 0);
        assert_int_equal(n, len);
        if (len) assert_memory_equal(dec, buf, len);
        free(dec);
        free(enc);
    }
}

static void test_base64_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg=",          /* length not a multiple of 4 */
        "Zg",           /* missing padding (strict decoder) */
        "Zh==",         /* non-zero bits under the padding */
        "Zm9=",         /* same, one pad */
        "Zg=a",         /* pad in the middle */
        "=Zg=",         /* pad first */
        "Z===",         /* three pads */
        "====",         /* only pads */
        "Zm9v\n",       /* newline */
        "Zm 9v",        /* space */
        "Zm9-",         /* URL-safe alphabet is not standard base64 */
        "Zm9vYg==Zm9v", /* data after padding */
        "Zm9\x80",      /* non-ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *dec = (uint8_t *)1;
        size_t n = 7;
        assert_int_equal(sg_base64_decode(bad[i], &dec, &n), -1);
        assert_null(dec);
        assert_int_equal(n, 0);
    }
}

/* Key "A" of the DSSE test vectors: the RFC 8032 test 1 Ed25519 seed. */
static EVP_PKEY *vector_key(void)
{
    static const uint8_t seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60,
                                     0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
                                     0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
                                     0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
    assert_non_null(k);
    return k;
}

static int verify_text(const char *env, EVP_PKEY *pub, char **type, uint8_t **body, size_t *n)
{
    sg_err err;
    return sg_dsse_verify((const uint8_t *)env, strlen(env), pub, type, body, n, &err);
}

static const char *const vec_payload = "{\"_type\":\"https://in-toto.io/Statement/v1\"}";
static const char *const vec_sig =
    "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA==";

static void test_dsse_vectors_ed25519(void **state)
{
    (void)state;
    EVP_PKEY *k = vector_key();
    sg_err err;
    /* Signing reproduces the published signature exactly. */
    char *env = NULL;
    assert_int_equal(sg_dsse_sign(k, SG_DSSE_PAYLOAD_TYPE, (const uint8_t *)vec_payload,
                                  strlen(vec_payload), &env, &err),
                     SG_OK);
    json_t *doc = json_loads(env, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "payload")),
                        "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==");
    json_t *s0 = json_array_get(json_object_get(doc, "signatures"), 0);
    assert_string_equal(json_string_value(json_object_get(s0, "sig")), vec_sig);
    char id[65];
    assert_int_equal(sg_key_id(k, id, &err), SG_OK);
    assert_string_equal(json_string_value(json_object_get(s0, "keyid")), id);
    json_decref(doc);

    char *type = NULL;
    uint8_t *body = NULL;
    size_t n = 0;
    assert_int_equal(verify_text(env, k, &type, &body, &n), SG_OK);
    assert_string_equal(type, SG_DSSE_PAYLOAD_TYPE);
    assert_int_equal(n, strlen(vec_payload));
    assert_memory_equal(body, vec_payload, n);
    free(type), free(body), free(env);

    /* URL-safe base64 in payload and sig must be accepted (DSSE: verifiers MUST). */
    const char *urlsafe =
        "{\"payload\":\"-_-_Pj8=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":"
        "[{\"keyid\":\"A\",\"sig\":\"P-_KHICeR7tI6S_YyejJTRtrXhcQyQ2LYPaL8h90KjC9qN8HU_"
        "svOQ6TuDOT1HIrsGW886"
        "DbWNWcCmX5twLrAw==\"}]}";
    assert_int_equal(verify_text(urlsafe, k, &type, &body, &n), SG_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(body, "\xfb\xff\xbf\x3e\x3f", 5);
    free(type), free(body);

    /* Empty payload. */
    const char *empty =
        "{\"payload\":\"\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":"
        "[{\"sig\":\"gSggCAaTLTYyRH6FIDBem6meyIynsYy8RTHVzwx9tnTb7Bg/1jMWnuVgI/"
        "gffqmbsC2VX5/jHfkkDqsj7CDbDg==\"}]}";
    assert_int_equal(verify_text(empty, k, &type, &body, &n), SG_OK);
    assert_int_equal(n, 0);
    free(type), free(body);

    /* The same signature under a different payloadType must not verify. */
    char swapped[512];
    snprintf(
        swapped, sizeof swapped,
        "{\"payload\":\"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==\","
        "\"payloadType\":\"application/vnd.example.other+json\",\"signatures\":[{\"sig\":\"%s\"}]}",
        vec_sig);
    assert_int_equal(verify_text(swapped, k, &type, &body, &n), SG_EREFUSED);
    assert_null(type);
    assert_null(body);
    EVP_PKEY_free(k);
}

/* Builds envelope text from raw parts; type bytes are escaped so any byte can be tried. */
static char *envelope_text(const uint8_t *payload, size_t plen, const uint8_t *type, size_t tlen,
                           const uint8_t *sig, size_t slen)
{
    char *p64 = sg_base64_encode(payload, plen), *s64 = sg_base64_encode(sig, slen);
    size_t cap = strlen(p64) + strlen(s64) + tlen * 6 + 128;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t o = (size_t)snprintf(out, cap, "{\"payload\":\"%s\",\"payloadType\":\"", p64);
    for (size_t i = 0; i < tlen; i++) {
        if (type[i] < 0x20 || type[i] == '"' || type[i] == '\\')
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", type[i]);
        else
            out[o++] = (char)type[i];
    }
    snprintf(out + o, cap - o, "\",\"signatures\":[{\"sig\":\"%s\"}]}", s64);
    free(p64), free(s64);
    return out;
}

static int try_verify(const uint8_t *payload, size_t plen, const uint8_t *type, size_t tlen,
                      const uint8_t *sig, size_t slen, EVP_PKEY *pub)
{
    char *env = envelope_text(payload, plen, type, tlen, sig, slen);
    char *t = NULL;
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = verify_text(env, pub, &t, &b, &n);
    free(env), free(t), free(b);
    return rc;
}

/* Every single-bit change of payload, payloadType or signature must be refused. */
static void tamper_all_bits(EVP_PKEY *key)
{
    const char *payload =
        "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"m.h5\","
        "\"digest\":{\"sha256\":\"00ff\"}}],\"predicate\":{\"result\":\"FAILED\"}}";
    size_t plen = strlen(payload);
    uint8_t *pae = NULL, *sig = NULL;
    size_t pae_len = 0, slen = 0;
    sg_err err;
    assert_int_equal(
        sg_dsse_pae(SG_DSSE_PAYLOAD_TYPE, (const uint8_t *)payload, plen, &pae, &pae_len), SG_OK);
    assert_int_equal(sg_sign(key, pae, pae_len, &sig, &slen, &err), SG_OK);
    free(pae);
    uint8_t p[512], t[64], s[128];
    size_t tlen = strlen(SG_DSSE_PAYLOAD_TYPE);
    memcpy(p, payload, plen), memcpy(t, SG_DSSE_PAYLOAD_TYPE, tlen), memcpy(s, sig, slen);
    /* Sanity: the untouched parts verify, so a refusal below is caused by the flip. */
    assert_int_equal(try_verify(p, plen, t, tlen, s, slen, key), SG_OK);
    int refused = 0, total = 0;
    for (size_t i = 0; i < plen; i++)
        for (int b = 0; b < 8; b++, total++) {
            p[i] ^= (uint8_t)(1u << b);
            refused += try_verify(p, plen, t, tlen, s, slen, key) != SG_OK;
            p[i] ^= (uint8_t)(1u << b);
        }
    for (size_t i = 0; i < tlen; i++)
        for (int b = 0; b < 8; b++, total++) {
            t[i] ^= (uint8_t)(1u << b);
            refused += try_verify(p, plen, t, tlen, s, slen, key) != SG_OK;
            t[i] ^= (uint8_t)(1u << b);
        }
    for (size_t i = 0; i < slen; i++)
        for (int b = 0; b < 8; b++, total++) {
            s[i] ^= (uint8_t)(1u << b);
            refused += try_verify(p, plen, t, tlen, s, slen, key) != SG_OK;
            s[i] ^= (uint8_t)(1u << b);
        }
    assert_int_equal(refused, total);
    /* Truncated or extended payload and signature too. */
    assert_int_not_equal(try_verify(p, plen - 1, t, tlen, s, slen, key), SG_OK);
    assert_int_not_equal(try_verify(p, plen, t, tlen, s, slen - 1, key), SG_OK);
    assert_int_not_equal(try_verify(p, plen, t, tlen - 1, s, slen, key), SG_OK);
    free(sig);
}

static void test_tamper_every_bit_ecdsa(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    tamper_all_bits(k);
    EVP_PKEY_free(k);
}

static void test_tamper_every_bit_ed25519(void **state)
{
    (void)state;
    EVP_PKEY *k = vector_key();
    tamper_all_bits(k);
    EVP_PKEY_free(k);
}

static void test_envelope_refusals(void **state)
{
    (void)state;
    EVP_PKEY *k = vector_key();
    const char *p64 = "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==";
    char buf[1024];
    char *type;
    uint8_t *body;
    size_t n;
#define REFUSE(...)                                                                                \
    do {                                                                                           \
        snprintf(buf, sizeof buf, __VA_ARGS__);                                                    \
        assert_int_equal(verify_text(buf, k, &type, &body, &n), SG_EREFUSED);                      \
        assert_null(body);                                                                         \
    } while (0)
    /* Control: the genuine envelope verifies. */
    snprintf(buf, sizeof buf,
             "{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s\"}]}", p64,
             SG_DSSE_PAYLOAD_TYPE, vec_sig);
    assert_int_equal(verify_text(buf, k, &type, &body, &n), SG_OK);
    free(type), free(body);
    /* A second "payload" member: the first is genuine, the second could be what another tool reads.
     */
    REFUSE("{\"payload\":\"%s\",\"payload\":\"e30=\",\"payloadType\":\"%s\",\"signatures\":[{"
           "\"sig\":\"%s\"}]}",
           p64, SG_DSSE_PAYLOAD_TYPE, vec_sig);
    REFUSE("{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s\",\"sig\":\"%"
           "s\"}]}",
           p64, SG_DSSE_PAYLOAD_TYPE, vec_sig, vec_sig);
    REFUSE(
        "{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s\"}],\"extra\":1}",
        p64, SG_DSSE_PAYLOAD_TYPE, vec_sig);
    REFUSE("{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[]}", p64,
           SG_DSSE_PAYLOAD_TYPE);
    REFUSE("{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"keyid\":\"x\"}]}", p64,
           SG_DSSE_PAYLOAD_TYPE);
    REFUSE("{\"payload\":\"%s\",\"payloadType\":\"%s\"}", p64, SG_DSSE_PAYLOAD_TYPE);
    REFUSE("{\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s\"}]}", SG_DSSE_PAYLOAD_TYPE,
           vec_sig);
    REFUSE("{\"payload\":\"%s\",\"payloadType\":7,\"signatures\":[{\"sig\":\"%s\"}]}", p64,
           vec_sig);
    REFUSE("{\"payload\":\"%s!\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s\"}]}", p64,
           SG_DSSE_PAYLOAD_TYPE, vec_sig);
    REFUSE("{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s=\"}]}", p64,
           SG_DSSE_PAYLOAD_TYPE, vec_sig);
    REFUSE("{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s\"}]} trailing",
           p64, SG_DSSE_PAYLOAD_TYPE, vec_sig);
    REFUSE("[\"%s\"]", p64);
    REFUSE(
        "{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s\",\"keyid\":5}]}",
        p64, SG_DSSE_PAYLOAD_TYPE, vec_sig);
    /* Mixed alphabets in one string are neither standard nor URL-safe base64. */
    REFUSE("{\"payload\":\"-+-_Pj8=\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s\"}]}",
           SG_DSSE_PAYLOAD_TYPE, vec_sig);
    /* One bad and one good signature: accepted; only bad ones: refused. */
    snprintf(buf, sizeof buf,
             "{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"AAAA\"},{"
             "\"sig\":\"%s\"}]}",
             p64, SG_DSSE_PAYLOAD_TYPE, vec_sig);
    assert_int_equal(verify_text(buf, k, &type, &body, &n), SG_OK);
    free(type), free(body);
    REFUSE("{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"AAAA\"},{\"sig\":"
           "\"AAAB\"}]}",
           p64, SG_DSSE_PAYLOAD_TYPE);
    /* Too many signatures. */
    size_t o = (size_t)snprintf(buf, sizeof buf,
                                "{\"payload\":\"%s\",\"payloadType\":\"x\",\"signatures\":[", p64);
    for (int i = 0; i <= SG_DSSE_MAX_SIGNATURES; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s{\"sig\":\"AAAA\"}", i ? "," : "");
    snprintf(buf + o, sizeof buf - o, "]}");
    assert_int_equal(verify_text(buf, k, &type, &body, &n), SG_EREFUSED);
#undef REFUSE
    /* Oversized input is refused before it is parsed. */
    uint8_t *big = calloc(1, (size_t)SG_DSSE_MAX_ENVELOPE + 1);
    assert_non_null(big);
    sg_err err;
    assert_int_equal(
        sg_dsse_verify(big, (size_t)SG_DSSE_MAX_ENVELOPE + 1, k, &type, &body, &n, &err),
        SG_EREFUSED);
    assert_non_null(strstr(err.msg, "limit"));
    free(big);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pae_spec_vectors),
        cmocka_unit_test(test_base64_rfc4648),
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_dsse_vectors_ed25519),
        cmocka_unit_test(test_tamper_every_bit_ecdsa),
        cmocka_unit_test(test_tamper_every_bit_ed25519),
        cmocka_unit_test(test_envelope_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
