/* DSSE envelopes holding in-toto Statements v1: signing and verification. */
#ifndef STAGEGATE_REPORT_H
#define STAGEGATE_REPORT_H

#include <jansson.h>
#include <openssl/evp.h>

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_DSSE_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define SG_INTOTO_STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define SG_TEST_RESULT_PREDICATE "https://in-toto.io/attestation/test-result/v0.1"

/* Limits on untrusted input: an envelope larger than this is refused before parsing. */
#define SG_DSSE_MAX_ENVELOPE (64u << 20)
#define SG_DSSE_MAX_PAYLOAD (48u << 20) /* base64 of this still fits the envelope limit */
#define SG_DSSE_MAX_SIGNATURES 16

/* DSSE v1 pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
SG_MUST_CHECK sg_status sg_dsse_pae(const char *payload_type, const uint8_t *payload, size_t len, uint8_t **pae,
                size_t *pae_len);

/*
 * Signs payload bytes exactly as given and returns the envelope JSON text (heap, ends with
 * a newline): {"payload", "payloadType", "signatures": [{"keyid", "sig"}]}, keyid = hex
 * SHA-256 of the signer's DER SubjectPublicKeyInfo. Write the text as is.
 */
SG_MUST_CHECK sg_status sg_dsse_sign(EVP_PKEY *key, const char *payload_type, const uint8_t *payload, size_t len,
                 char **envelope_json, sg_err *err);

/* Base64 as DSSE verifiers must take it: the standard or the URL-safe alphabet (not mixed),
   padding optional; 0 on success (*out malloc'd), -1 otherwise. */
int sg_dsse_base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len);
/* SHA-256 (hex) of an envelope's decoded payload, the signed statement a report is also known
   by (the same report re-encoded is other bytes); "" when there is none to decode. Not a
   verification: only a digest to look a report up by. */
void sg_dsse_payload_sha256(const uint8_t *envelope, size_t len, char hex[65]);

/*
 * Verifies an envelope: parses only the envelope fields, checks a signature over the PAE
 * with pub, then returns the payload bytes that were signed. Nothing inside the payload is
 * parsed before the signature verifies. SG_EREFUSED on a bad signature.
 */
SG_MUST_CHECK sg_status sg_dsse_verify(const uint8_t *envelope, size_t len, EVP_PKEY *pub, char **payload_type,
                   uint8_t **payload, size_t *payload_len, sg_err *err)
    __attribute__((warn_unused_result));

/* What a verified test-result report says; only fields covered by the signature. */
typedef struct {
    char result[16]; /* "PASSED" or "FAILED" */
    char subject_name[512];
    char subject_sha256[65];
    char predicate_type[256];
    char timestamp[64];      /* RFC 3339 UTC, from the predicate */
    char key_id[65];         /* id of the key that verified it */
    char payload_sha256[65]; /* digest of the signed payload bytes (evidence) */
    json_t *statement;       /* the parsed statement (owned; free with sg_report_info_clear) */
    int checks_passed;       /* how many checks, in sg_report_check order, passed */
    bool digest_checked;     /* true when a model file was compared with the subject */
} sg_report_info;

/* The checks sg_report_verify runs, in this order; it stops at the first that fails. */
typedef enum {
    SG_CHECK_SIGNATURE = 0,  /* a signature over the DSSE PAE verifies with the public key */
    SG_CHECK_PAYLOAD_TYPE,   /* payloadType == SG_DSSE_PAYLOAD_TYPE */
    SG_CHECK_STATEMENT,      /* payload is an in-toto Statement v1 with one consistent subject */
    SG_CHECK_PREDICATE_TYPE, /* predicateType == SG_TEST_RESULT_PREDICATE, result well formed */
    SG_CHECK_SUBJECT_DIGEST, /* subject sha256 == sha256(model file); only with a model path */
    SG_REPORT_NCHECKS
} sg_report_check;

/* Short name of a check for output ("signature", "payloadType", ...). */
const char *sg_report_check_name(int check);

/*
 * Full verification in the documented order: signature over the PAE, payloadType,
 * statement _type, predicateType, then (when model_path != NULL) subject digest == sha256(model).
 * Returns SG_OK if valid (inspect info->result for PASSED/WARNED/FAILED), SG_EREFUSED if
 * invalid, SG_EINPUT when the model file cannot be read. info is always initialised (clear
 * it with sg_report_info_clear even on failure); on failure info->checks_passed says which
 * check failed. Fields of info are filled only from a payload whose signature verified.
 */
SG_MUST_CHECK sg_status sg_report_verify(const uint8_t *envelope, size_t len, EVP_PKEY *pub, const char *model_path,
                     sg_report_info *info, sg_err *err) __attribute__((warn_unused_result));
/* As sg_report_verify, with the model given by its digest (hex), named model_name in
   messages: a caller that has hashed the bytes once (or holds a registered digest) checks
   the subject against that, not against a second read of a file that may have changed. */
SG_MUST_CHECK sg_status sg_report_verify_digest(const uint8_t *envelope, size_t len, EVP_PKEY *pub,
                                                const char *model_name, const char model_sha256[65],
                                                sg_report_info *info, sg_err *err);
void sg_report_info_clear(sg_report_info *info);

#ifdef __cplusplus
}
#endif
#endif
