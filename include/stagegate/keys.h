/* Signing keys (ECDSA P-256 by default, Ed25519 allowed) in PEM: PKCS#8 private, SPKI public. */
#ifndef STAGEGATE_KEYS_H
#define STAGEGATE_KEYS_H

#include <openssl/evp.h>

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SG_KEY_ECDSA_P256 = 0, SG_KEY_ED25519 = 1 } sg_key_type;

/* Writes PREFIX.key.pem (mode 0600) and PREFIX.pub.pem atomically. */
SG_MUST_CHECK sg_status sg_keygen(const char *prefix, sg_key_type type, sg_err *err);

/* Loads a private key; refuses a file readable or writable by group/others (as ssh does). */
SG_MUST_CHECK sg_status sg_key_load_private(const char *path, EVP_PKEY **out, sg_err *err);

/*
 * A private key file read once and held for later signing, in memory a fork does not copy
 * (MADV_WIPEONFORK): a process that forks children to parse untrusted files (the HDF5
 * checks) between reading its key and signing keeps the key out of them. sg_key_file_read
 * makes sg_key_load_private's checks of the file (mode, one private-key block) without
 * parsing the key; sg_key_file_parse parses it. Parse only after the last fork of such a
 * child (OpenSSL's decoder leaves key bytes in freed memory), and free the key once used.
 */
typedef struct sg_private_key_file sg_private_key_file;
SG_MUST_CHECK sg_status sg_key_file_read(const char *path, sg_private_key_file **out, sg_err *err);
SG_MUST_CHECK sg_status sg_key_file_parse(const sg_private_key_file *f, EVP_PKEY **out,
                                          sg_err *err);
void sg_key_file_free(sg_private_key_file *f);
/* The file's PEM text, NUL-terminated, valid until sg_key_file_free: for a library that parses
   the key itself (the server's TLS key goes to GnuTLS). */
const char *sg_key_file_pem(const sg_private_key_file *f);
SG_MUST_CHECK sg_status sg_key_load_public(const char *path, EVP_PKEY **out, sg_err *err);
SG_MUST_CHECK sg_status sg_key_load_public_pem(const char *pem, size_t len, const char *what, EVP_PKEY **out,
                           sg_err *err);
/* SPKI PEM text of a key's public half (heap string). */
SG_MUST_CHECK sg_status sg_key_public_pem(EVP_PKEY *key, char **pem, sg_err *err);
/* Key id: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo (64 chars + NUL). */
SG_MUST_CHECK sg_status sg_key_id(EVP_PKEY *key, char id[65], sg_err *err);

/* Signs msg: ECDSA P-256 with SHA-256 (DER signature) or pure Ed25519. */
SG_MUST_CHECK sg_status sg_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len,
            sg_err *err);
/* Returns SG_OK when valid, SG_EREFUSED when the signature does not verify. */
SG_MUST_CHECK sg_status sg_verify_sig(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len,
                  sg_err *err) __attribute__((warn_unused_result));

/* Base64 (standard alphabet, padded) without newlines. */
char *sg_base64_encode(const uint8_t *in, size_t len);
int sg_base64_decode(const char *in, uint8_t **out, size_t *out_len); /* -1 on bad input */

#ifdef __cplusplus
}
#endif
#endif
