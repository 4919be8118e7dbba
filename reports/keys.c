/*
 * Signing keys: generation, PEM loading with the ssh-style permission check, key ids,
 * raw signing/verification and base64.
 *
 * Only two algorithms are accepted anywhere (ECDSA over P-256 with SHA-256, and pure
 * Ed25519), so a key file of another type is an input error rather than something we
 * would sign or verify with in an unreviewed mode.
 */
#define _GNU_SOURCE /* memmem */
#include "stagegate/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SG_KEY_FILE_LIMIT (64 * 1024)

/* The last OpenSSL error as text, so messages say why a library call failed. */
static const char *ossl_reason(void)
{
    static _Thread_local char buf[256];
    unsigned long e = ERR_peek_last_error();
    if (!e) return "no detail from OpenSSL";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

/* Accepts only the two supported algorithms; returns 0 and sets *type, or -1. */
static int key_type_of(EVP_PKEY *key, sg_key_type *type)
{
    if (EVP_PKEY_is_a(key, "ED25519")) {
        *type = SG_KEY_ED25519;
        return 0;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen) == 1 &&
            (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))) {
            *type = SG_KEY_ECDSA_P256;
            return 0;
        }
    }
    return -1;
}

/*
 * One key, one encoding. A P-256 public key can be written with a compressed or an
 * uncompressed point, on the named curve or with the curve's parameters spelled out; each
 * gives other DER, so another key id. Two encodings of one key would be two "different"
 * keys: a promoter approving its own promotion. Every loaded EC key is therefore set to
 * the named curve and the uncompressed point (RFC 5480's usual form, what keygen writes)
 * before its id or PEM is taken.
 */
static int key_canonical(EVP_PKEY *key)
{
    if (!EVP_PKEY_is_a(key, "EC")) return 0;
    return EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                          OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) == 1 &&
                   EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING,
                                                  OSSL_PKEY_EC_ENCODING_GROUP) == 1
               ? 0
               : -1;
}

/*
 * Whether an Ed25519 public key is one of the points of small order (or a non-canonical
 * encoding of one). Under such a key one signature verifies for every message, so anyone
 * could sign as it. The list is libsodium's ge25519_has_small_order blocklist (its
 * crypto_core/ed25519/ref10/ed25519_ref10.c), compared with bit 255 (the sign of x) cleared.
 */
static bool ed25519_small_order(EVP_PKEY *key)
{
    static const uint8_t blocklist[7][32] = {
        /* 0 (order 4) */
        {0},
        /* 1 (order 1) */
        {1},
        /* a point of order 8 */
        {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
         0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
        /* the other point of order 8 (with its negation, by the sign bit) */
        {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
         0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
        /* p - 1 (order 2) */
        {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
        /* p (=0, order 4), non-canonical */
        {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
        /* p + 1 (=1, order 1), non-canonical */
        {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    };
    uint8_t pub[32];
    size_t n = sizeof pub;
    if (!EVP_PKEY_is_a(key, "ED25519")) return false;
    if (EVP_PKEY_get_raw_public_key(key, pub, &n) != 1 || n != sizeof pub) return true;
    pub[31] &= 0x7f;
    for (size_t i = 0; i < 7; i++)
        if (!memcmp(pub, blocklist[i], sizeof pub)) return true;
    return false;
}

/*
 * OpenSSL's validation of a decoded key: for a public key, that an EC point is on P-256 and is
 * not the point at infinity, which decodes from the one-byte SEC1 encoding 0x00 and which
 * EVP_DigestVerify then accepts; under it ECDSA verification reduces to u1*G, so anyone can
 * compute a signature that verifies for any message, with no private key. For a private key,
 * also that the scalar is in range and that the public key stored with it is its own: a SEC1
 * file can carry another's public point, and `gate` had signed with such a file, naming in the
 * report the key id of a key that did not sign it.
 */
static bool key_valid(EVP_PKEY *key, bool private_part)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    bool ok = c && (private_part ? EVP_PKEY_check(c) : EVP_PKEY_public_check(c)) == 1;
    EVP_PKEY_CTX_free(c);
    return ok;
}

/*
 * Writes `data` with exactly `mode` to a fresh temp file beside `path`, opened with O_EXCL
 * and the final mode (so a private key is never readable by others, not even briefly).
 */
static sg_status stage_file(const char *path, const char *data, size_t len, mode_t mode, char *tmp,
                      size_t tmp_len, sg_err *err)
{
    int rc = sg_tmp_path_for(path, tmp, tmp_len, err);
    if (rc) return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        sg_tmp_forget(tmp);
        return sg_errf(err, SG_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    /* umask may only remove bits; fchmod makes the mode exact (e.g. 0644 for the public key). */
    int bad = fchmod(fd, mode) != 0 || sg_write_all(fd, data, len) != 0 || fsync(fd) != 0;
    int e = errno;
    if (close(fd) != 0 && !bad) bad = 1, e = errno;
    if (bad) {
        sg_tmp_remove(tmp);
        return sg_errf(err, SG_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return SG_OK;
}

/* link() publishes a staged file: it fails with EEXIST instead of overwriting. */
static int publish_file(const char *tmp, const char *path, sg_err *err)
{
    int rc =
        link(tmp, path) == 0 ? SG_OK
        : errno == EEXIST
            ? sg_errf(err, SG_EINPUT, "%s: already exists; refusing to overwrite a key file", path)
            : sg_errf(err, SG_EIO, "%s: cannot create: %s", path, strerror(errno));
    sg_tmp_remove(tmp);
    return rc;
}

/* PEM text of a key into a heap string; private selects PKCS#8 vs SPKI. */
static sg_status key_to_pem(EVP_PKEY *key, bool private_part, char **pem, size_t *pem_len, sg_err *err)
{
    *pem = NULL;
    BIO *bio = BIO_new(BIO_s_secmem());
    if (!bio) return sg_errf(err, SG_ENOMEM, "key: out of memory");
    /* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3. */
    int ok = private_part ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                          : PEM_write_bio_PUBKEY(bio, key);
    char *mem = NULL;
    long n = BIO_get_mem_data(bio, &mem);
    if (ok != 1 || n <= 0) {
        BIO_free(bio);
        return sg_errf(err, SG_EINTERNAL, "key: cannot encode PEM: %s", ossl_reason());
    }
    char *out = malloc((size_t)n + 1);
    if (!out) {
        BIO_free(bio);
        return sg_errf(err, SG_ENOMEM, "key: out of memory");
    }
    memcpy(out, mem, (size_t)n);
    out[n] = '\0';
    BIO_free(bio);
    *pem = out;
    if (pem_len) *pem_len = (size_t)n;
    return SG_OK;
}

sg_status sg_keygen(const char *prefix, sg_key_type type, sg_err *err)
{
    char priv_path[4096], pub_path[4096];
    if (!prefix || !*prefix) return sg_errf(err, SG_EINPUT, "--out: empty key prefix");
    if ((size_t)snprintf(priv_path, sizeof priv_path, "%s.key.pem", prefix) >= sizeof priv_path ||
        (size_t)snprintf(pub_path, sizeof pub_path, "%s.pub.pem", prefix) >= sizeof pub_path)
        return sg_errf(err, SG_EINPUT, "%s: key prefix too long", prefix);
    struct stat st;
    if (lstat(priv_path, &st) == 0)
        return sg_errf(err, SG_EINPUT, "%s: already exists; refusing to overwrite a key file",
                       priv_path);
    if (lstat(pub_path, &st) == 0)
        return sg_errf(err, SG_EINPUT, "%s: already exists; refusing to overwrite a key file",
                       pub_path);

    EVP_PKEY *key = type == SG_KEY_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!key) return sg_errf(err, SG_EINTERNAL, "keygen: OpenSSL failed: %s", ossl_reason());
    char *priv = NULL, *pub = NULL;
    size_t priv_len = 0, pub_len = 0;
    int rc = key_to_pem(key, true, &priv, &priv_len, err);
    if (!rc) rc = key_to_pem(key, false, &pub, &pub_len, err);
    EVP_PKEY_free(key);
    /* Both halves are written and synced before either is published, so the pair appears
     * together (the two links are back to back); a failure takes back what was published. */
    char priv_tmp[4096] = "", pub_tmp[4096] = "";
    if (!rc) rc = stage_file(priv_path, priv, priv_len, 0600, priv_tmp, sizeof priv_tmp, err);
    if (!rc) {
        rc = stage_file(pub_path, pub, pub_len, 0644, pub_tmp, sizeof pub_tmp, err);
        if (rc) sg_tmp_remove(priv_tmp);
    }
    if (!rc) {
        /* A signal between the two links had left the private half alone, and keygen then
           refused to run again ("already exists"): the pair is published with them held. */
        sigset_t saved;
        sg_tmp_signals_hold(&saved);
        rc = publish_file(priv_tmp, priv_path, err);
        if (rc) {
            sg_tmp_remove(pub_tmp);
        } else if ((rc = publish_file(pub_tmp, pub_path, err)) != SG_OK) {
            /* Half a key pair is useless and confusing: take back the private half. */
            unlink(priv_path);
        }
        sg_tmp_signals_release(&saved);
    }
    if (priv) OPENSSL_clear_free(priv, priv_len);
    free(pub);
    return rc;
}

/* No passphrase prompt: an encrypted key is an input error, never an interactive read. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/*
 * How many PEM blocks in text[0, len) are keys of the kind whose label ends in `kind`
 * ("PRIVATE KEY" or "PUBLIC KEY"). A key file holds one: with two, OpenSSL takes the first,
 * and which key signs or is trusted would depend on the order of blocks nobody looks at.
 * Other blocks (the EC PARAMETERS that `openssl ecparam -genkey` writes first) do not count.
 */
static int pem_key_blocks(const char *text, size_t len, const char *kind)
{
    static const char begin[] = "-----BEGIN ";
    const size_t bl = sizeof begin - 1, kl = strlen(kind);
    int n = 0;
    /* Every "-----BEGIN " wherever it starts, its label read to the end of its own line: a
       label had been taken to end at the next "-----" in the text, so a line "-----BEGIN
       NOTE" without its closing dashes swallowed the BEGIN of the key after it. Nor only at
       the start of a line, with nothing after the dashes: OpenSSL's reader strips trailing
       white space and a byte-order mark and reads a long line in 254-byte pieces, so a BEGIN
       line ending in a space, after a BOM, or after 254 bytes of anything was its first key
       and not counted here (a file of two keys signed with a hidden first one). */
    const char *end = text + len;
    for (const char *p = text; (p = memmem(p, (size_t)(end - p), begin, bl)) != NULL; p += bl) {
        /* ... where OpenSSL's reader would see it start a line: at a line's start, after the
           file's byte-order mark, or at a multiple of 254 bytes into a longer line. A BEGIN
           quoted inside a line of text is not a block to it, nor to this count. */
        const char *ls = p;
        while (ls > text && ls[-1] != '\n')
            ls--;
        const size_t off = (size_t)(p - ls);
        const bool bom = ls == text && off == 3 && !memcmp(text, "\xef\xbb\xbf", 3);
        if (off % 254 != 0 && !bom) continue;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *last = nl ? nl : end;
        while (last > p && (last[-1] == '\r' || last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if ((size_t)(last - p) >= bl + 5 + kl && !memcmp(last - 5, "-----", 5) &&
            !memcmp(last - 5 - kl, kind, kl))
            n++;
    }
    return n;
}

/*
 * A private key file's text, held where a fork does not copy it. The HDF5 checks fork
 * children that parse untrusted files (datasets/h5sandbox.c); what the parent holds at the
 * fork is in the child's memory, and a child taken over by a crafted file could pass it back
 * in its one-line refusal, which the parent prints. So the PEM text lives in its own mapping
 * marked MADV_WIPEONFORK (a child sees zeros; MADV_DONTFORK where that is missing: no
 * mapping at all), MADV_DONTDUMP and locked where allowed. Reading it does not parse it:
 * OpenSSL clears a key's private part when the key is freed, but its PEM decoder leaves the
 * private scalar of a P-256 key in freed heap memory (found by
 * tests/security/key_in_sandbox_child.py), which a later fork would copy. Callers parse it
 * (sg_key_file_parse) after their last such fork, and free the parsed key once used.
 */
struct sg_private_key_file {
    char *text; /* map_bytes of the mapping; len bytes of PEM and a NUL */
    size_t len, map_bytes;
    char path[4096];
};

void sg_key_file_free(sg_private_key_file *f)
{
    if (!f) return;
    if (f->text) {
        OPENSSL_cleanse(f->text, f->map_bytes);
        munmap(f->text, f->map_bytes);
    }
    free(f);
}

/* The label of the first PEM block in text ("CERTIFICATE" for "-----BEGIN CERTIFICATE-----"),
   printable and at most len - 1 bytes; false when there is none. */
static bool pem_first_label(const char *text, char *label, size_t len)
{
    const char *b = strstr(text, "-----BEGIN ");
    if (!b) return false;
    b += strlen("-----BEGIN ");
    const char *e = strstr(b, "-----");
    if (!e || e == b || (size_t)(e - b) >= len) return false;
    for (const char *q = b; q < e; q++)
        if (*q < 0x20 || *q > 0x7e) return false;
    memcpy(label, b, (size_t)(e - b));
    label[e - b] = 0;
    return true;
}

/* "EC (secp384r1)", "RSA", ...: what a refused key is, for the message. */
static void key_kind(EVP_PKEY *key, char *buf, size_t len)
{
    const char *tn = EVP_PKEY_get0_type_name(key);
    char curve[64] = "";
    size_t got = 0;
    if (EVP_PKEY_get_group_name(key, curve, sizeof curve, &got) == 1 && curve[0])
        snprintf(buf, len, "%s (curve %s)", tn ? tn : "?", curve);
    else
        snprintf(buf, len, "%s", tn ? tn : "?");
}

const char *sg_key_file_pem(const sg_private_key_file *f)
{
    return f->text;
}

sg_status sg_key_file_parse(const sg_private_key_file *f, EVP_PKEY **out, sg_err *err)
{
    *out = NULL;
    BIO *bio = BIO_new_mem_buf(f->text, (int)f->len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    if (!key)
        return sg_errf(err, SG_EINPUT, "%s: not an unencrypted PEM private key: %s", f->path,
                       ossl_reason());
    sg_key_type t;
    if (key_type_of(key, &t) != 0) {
        /* Format the message before freeing: the type name is owned by the key. */
        char kind[128];
        key_kind(key, kind, sizeof kind);
        int rc = sg_errf(err, SG_EINPUT,
                         "%s: key type %s is not supported (use ECDSA P-256 or Ed25519)",
                         f->path, kind);
        EVP_PKEY_free(key);
        return rc;
    }
    if (!key_valid(key, true)) {
        EVP_PKEY_free(key);
        return sg_errf(err, SG_EINPUT,
                       "%s: not a valid key pair (the public key stored with the private key "
                       "is not its own, or the key is out of range): %s",
                       f->path, ossl_reason());
    }
    if (key_canonical(key) != 0) {
        EVP_PKEY_free(key);
        return sg_errf(err, SG_EINPUT, "%s: the EC key cannot be put on the named curve P-256: %s",
                       f->path, ossl_reason());
    }
    *out = key;
    return SG_OK;
}

sg_status sg_key_file_read(const char *path, sg_private_key_file **out, sg_err *err)
{
    *out = NULL;
    /* Never blocks (a FIFO is refused), and the mode checked is the mode of the file read. */
    int fd = sg_open_regular(path, err);
    if (fd < 0) return SG_EINPUT;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return sg_errf(err, SG_EINPUT, "%s: cannot stat private key", path);
    }
    if (st.st_size > SG_KEY_FILE_LIMIT) {
        close(fd);
        return sg_errf(err, SG_EINPUT, "%s: private key file is larger than %d bytes", path,
                       SG_KEY_FILE_LIMIT);
    }
    sg_private_key_file *f = calloc(1, sizeof *f);
    const long page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
    const size_t map_bytes =
        ((size_t)SG_KEY_FILE_LIMIT + 1 + (size_t)page - 1) & ~((size_t)page - 1);
    void *m = f ? mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                : MAP_FAILED;
    if (m == MAP_FAILED) {
        free(f);
        close(fd);
        return sg_errf(err, SG_ENOMEM, "%s: out of memory for the private key", path);
    }
    f->text = m;
    f->map_bytes = map_bytes;
    snprintf(f->path, sizeof f->path, "%s", path);
#ifdef MADV_WIPEONFORK
    if (madvise(m, map_bytes, MADV_WIPEONFORK) != 0)
#endif
        (void)madvise(m, map_bytes, MADV_DONTFORK);
#ifdef MADV_DONTDUMP
    (void)madvise(m, map_bytes, MADV_DONTDUMP);
#endif
    (void)mlock(m, map_bytes); /* kept out of swap where the limit allows */
    char *buf = f->text;
    size_t len = 0;
    for (ssize_t got;
         len < SG_KEY_FILE_LIMIT && (got = read(fd, buf + len, SG_KEY_FILE_LIMIT - len)) != 0;) {
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            close(fd);
            sg_key_file_free(f);
            return sg_errf(err, SG_EIO, "%s: cannot read private key", path);
        }
        len += (size_t)got;
    }
    close(fd);
    buf[len] = 0;
    f->len = len;
    sg_status rc = SG_OK;
    const int blocks = pem_key_blocks(buf, len, "PRIVATE KEY");
    /* A public key given where the private one belongs: say that, not "chmod 600" and then
     * "not a private key". */
    char label[48];
    if (strstr(buf, "-----BEGIN PUBLIC KEY-----") && !strstr(buf, "PRIVATE KEY-----"))
        rc = sg_errf(err, SG_EINPUT,
                     "%s: this is a public key (BEGIN PUBLIC KEY); signing needs the private "
                     "key (keygen writes it as PREFIX.key.pem next to PREFIX.pub.pem)",
                     path);
    else if (!strstr(buf, "PRIVATE KEY-----") && pem_first_label(buf, label, sizeof label))
        /* a certificate, a request or parameters: named, whatever the file's mode */
        rc = sg_errf(err, SG_EINPUT,
                     "%s: this is a PEM %s (BEGIN %s), not a private key; signing needs the "
                     "private key (keygen writes it as PREFIX.key.pem)",
                     path, label, label);
    else if (st.st_mode & 077)
        rc = sg_errf(err, SG_EINPUT,
                     "%s: UNPROTECTED PRIVATE KEY FILE: mode %04o lets group or others access "
                     "it; run 'chmod 600 %s'",
                     path, (unsigned)(st.st_mode & 07777), path);
    else if (blocks > 1)
        rc = sg_errf(err, SG_EINPUT,
                     "%s: holds %d private keys; a key file must hold exactly one (which "
                     "would sign is not for the block order to decide)",
                     path, blocks);
    if (rc != SG_OK) {
        sg_key_file_free(f);
        return rc;
    }
    *out = f;
    return SG_OK;
}

sg_status sg_key_load_private(const char *path, EVP_PKEY **out, sg_err *err)
{
    *out = NULL;
    sg_private_key_file *f;
    sg_status rc = sg_key_file_read(path, &f, err);
    if (rc == SG_OK) rc = sg_key_file_parse(f, out, err);
    sg_key_file_free(f);
    return rc;
}

/*
 * Parsed public keys, by the SHA-256 of their exact PEM text, with their key ids. OpenSSL
 * 3.0 sets up its decoders (and encoders, for the key id) anew for every PEM it reads, which
 * costs far more than the signature check; a registry server parses the same few principal
 * and signer keys on every request. An entry holds a reference to its EVP_PKEY (public keys
 * are never modified after loading, and OpenSSL allows concurrent read-only use); a hit
 * returns another reference, so callers free what they get as before. Bounded; the oldest
 * entry is replaced. One mutex guards the table.
 */
#define KEY_CACHE_SLOTS 64
static struct {
    uint8_t pem_sha[32];
    EVP_PKEY *key;
    char id[65]; /* "" until sg_key_id computed it */
} key_cache[KEY_CACHE_SLOTS];
static size_t key_cache_next;
static pthread_mutex_t key_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *key_cache_get(const uint8_t sha[32])
{
    EVP_PKEY *key = NULL;
    pthread_mutex_lock(&key_cache_mu);
    for (size_t i = 0; i < KEY_CACHE_SLOTS && !key; i++)
        if (key_cache[i].key && !memcmp(key_cache[i].pem_sha, sha, 32) &&
            EVP_PKEY_up_ref(key_cache[i].key) == 1)
            key = key_cache[i].key;
    pthread_mutex_unlock(&key_cache_mu);
    return key;
}

static void key_cache_put(const uint8_t sha[32], EVP_PKEY *key)
{
    if (EVP_PKEY_up_ref(key) != 1) return;
    pthread_mutex_lock(&key_cache_mu);
    size_t i = key_cache_next++ % KEY_CACHE_SLOTS;
    EVP_PKEY *old = key_cache[i].key;
    memcpy(key_cache[i].pem_sha, sha, 32);
    key_cache[i].key = key;
    key_cache[i].id[0] = '\0';
    pthread_mutex_unlock(&key_cache_mu);
    EVP_PKEY_free(old);
}

sg_status sg_key_load_public_pem(const char *pem, size_t len, const char *what, EVP_PKEY **out,
                           sg_err *err)
{
    *out = NULL;
    if (!what) what = "public key";
    if (!pem || len == 0 || len > SG_KEY_FILE_LIMIT || len > (size_t)INT32_MAX)
        return sg_errf(err, SG_EINPUT, "%s: empty or oversized public key", what);
    uint8_t sha[32];
    sg_sha256((const uint8_t *)pem, len, sha);
    if ((*out = key_cache_get(sha)) != NULL) return SG_OK;
    int blocks = pem_key_blocks(pem, len, "PUBLIC KEY");
    if (blocks > 1)
        return sg_errf(err, SG_EINPUT,
                       "%s: holds %d public keys; a key file must hold exactly one (which is "
                       "trusted is not for the block order to decide)",
                       what, blocks);
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) return sg_errf(err, SG_ENOMEM, "%s: out of memory", what);
    EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!key && pem_key_blocks(pem, len, "PRIVATE KEY") > 0)
        /* Say what it is (no part of it is shown): the DECODER error had named nothing. */
        return sg_errf(err, SG_EINPUT,
                       "%s: this is a private key; give the public key (keygen writes it as "
                       "PREFIX.pub.pem next to PREFIX.key.pem)",
                       what);
    if (!key)
        return sg_errf(err, SG_EINPUT, "%s: not a PEM public key (SubjectPublicKeyInfo): %s", what,
                       ossl_reason());
    sg_key_type t;
    if (key_type_of(key, &t) != 0) {
        char kind[128];
        key_kind(key, kind, sizeof kind);
        EVP_PKEY_free(key);
        return sg_errf(err, SG_EINPUT,
                       "%s: key type %s is not supported (use ECDSA P-256 or Ed25519)", what,
                       kind);
    }
    if (ed25519_small_order(key)) {
        EVP_PKEY_free(key);
        return sg_errf(err, SG_EINPUT,
                       "%s: the Ed25519 key is a point of small order, under which anyone can "
                       "sign anything; refused",
                       what);
    }
    if (!key_valid(key, false)) {
        EVP_PKEY_free(key);
        ERR_clear_error();
        return sg_errf(err, SG_EINPUT,
                       "%s: not a valid public key (an EC point must be on P-256 and not the "
                       "point at infinity, under which anyone can sign anything); refused",
                       what);
    }
    if (key_canonical(key) != 0) {
        EVP_PKEY_free(key);
        return sg_errf(err, SG_EINPUT, "%s: the EC key cannot be put on the named curve P-256: %s",
                       what, ossl_reason());
    }
    key_cache_put(sha, key);
    *out = key;
    return SG_OK;
}

sg_status sg_key_load_public(const char *path, EVP_PKEY **out, sg_err *err)
{
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = sg_read_file(path, SG_KEY_FILE_LIMIT, &data, &len, err);
    if (rc) return rc;
    rc = sg_key_load_public_pem((const char *)data, len, path, out, err);
    free(data);
    return rc;
}

sg_status sg_key_public_pem(EVP_PKEY *key, char **pem, sg_err *err)
{
    return key_to_pem(key, false, pem, NULL, err);
}

sg_status sg_key_id(EVP_PKEY *key, char id[65], sg_err *err)
{
    /* A cached key (the cache holds a reference, so the pointer cannot be reused while it is
     * there) keeps its id once computed. */
    bool hit = false;
    pthread_mutex_lock(&key_cache_mu);
    for (size_t i = 0; i < KEY_CACHE_SLOTS && !hit; i++)
        if (key_cache[i].key == key && key_cache[i].id[0]) {
            memcpy(id, key_cache[i].id, 65);
            hit = true;
        }
    pthread_mutex_unlock(&key_cache_mu);
    if (hit) return SG_OK;
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    if (n <= 0)
        return sg_errf(err, SG_EINTERNAL, "key: cannot encode public key: %s", ossl_reason());
    sg_sha256_hex(der, (size_t)n, id);
    OPENSSL_free(der);
    pthread_mutex_lock(&key_cache_mu);
    for (size_t i = 0; i < KEY_CACHE_SLOTS; i++)
        if (key_cache[i].key == key) memcpy(key_cache[i].id, id, 65);
    pthread_mutex_unlock(&key_cache_mu);
    return SG_OK;
}

/* SHA-256 for ECDSA; NULL for Ed25519, which hashes internally (pure Ed25519). */
static const EVP_MD *digest_for(EVP_PKEY *key, bool *ok)
{
    sg_key_type t;
    *ok = key_type_of(key, &t) == 0;
    return *ok && t == SG_KEY_ECDSA_P256 ? EVP_sha256() : NULL;
}

sg_status sg_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len,
            sg_err *err)
{
    *sig = NULL;
    *sig_len = 0;
    bool ok;
    const EVP_MD *md = digest_for(key, &ok);
    if (!ok)
        return sg_errf(err, SG_EINPUT,
                       "signing key: type not supported (use ECDSA P-256 or Ed25519)");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return sg_errf(err, SG_ENOMEM, "sign: out of memory");
    size_t n = 0;
    uint8_t *buf = NULL;
    int rc = SG_OK;
    if (EVP_DigestSignInit(ctx, NULL, md, NULL, key) != 1 ||
        EVP_DigestSign(ctx, NULL, &n, msg, len) != 1) {
        rc = sg_errf(err, SG_EINTERNAL, "sign: OpenSSL failed: %s", ossl_reason());
    } else if (!(buf = malloc(n ? n : 1))) {
        rc = sg_errf(err, SG_ENOMEM, "sign: out of memory");
    } else if (EVP_DigestSign(ctx, buf, &n, msg, len) != 1) {
        rc = sg_errf(err, SG_EINTERNAL, "sign: OpenSSL failed: %s", ossl_reason());
        free(buf);
        buf = NULL;
    }
    EVP_MD_CTX_free(ctx);
    if (!rc) {
        *sig = buf;
        *sig_len = n;
    }
    return rc;
}

sg_status sg_verify_sig(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len,
                  sg_err *err)
{
    bool ok;
    const EVP_MD *md = digest_for(pub, &ok);
    if (!ok)
        return sg_errf(err, SG_EINPUT,
                       "public key: type not supported (use ECDSA P-256 or Ed25519)");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return sg_errf(err, SG_ENOMEM, "verify: out of memory");
    if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) != 1) {
        EVP_MD_CTX_free(ctx);
        return sg_errf(err, SG_EINTERNAL, "verify: OpenSSL failed: %s", ossl_reason());
    }
    /* 1 is the only "valid"; 0 and negative (e.g. malformed DER) both mean "does not verify". */
    int v = EVP_DigestVerify(ctx, sig, sig_len, msg, len);
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (v != 1) return sg_errf(err, SG_EREFUSED, "signature does not verify with this public key");
    return SG_OK;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sg_base64_encode(const uint8_t *in, size_t len)
{
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    size_t out_len = (len + 2) / 3 * 4;
    char *out = malloc(out_len + 1);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/*
 * Strict decoder: standard alphabet, length a multiple of 4, '=' only as one or two
 * final characters, and unused trailing bits zero. Strictness keeps one meaning per
 * text, so two different envelopes never decode to the same bytes by accident.
 */
int sg_base64_decode(const char *in, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    size_t len = strlen(in);
    if (len % 4 != 0) return -1;
    size_t pad = 0;
    if (len >= 1 && in[len - 1] == '=') pad++;
    if (len >= 2 && in[len - 1] == '=' && in[len - 2] == '=') pad++;
    size_t n = len / 4 * 3 - pad;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        bool last = i + 4 == len;
        for (int k = 0; k < 4; k++) {
            bool is_pad = last && (size_t)k >= 4 - pad;
            v[k] = is_pad ? 0 : b64_value((unsigned char)in[i + (size_t)k]);
            if (v[k] < 0) {
                free(buf);
                return -1;
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t take = last ? 3 - pad : 3;
        if (last && ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))) {
            free(buf); /* non-zero bits hidden under the padding: not canonical */
            return -1;
        }
        if (take >= 1) buf[o++] = (uint8_t)(w >> 16);
        if (take >= 2) buf[o++] = (uint8_t)(w >> 8);
        if (take >= 3) buf[o++] = (uint8_t)w;
    }
    *out = buf;
    *out_len = o;
    return 0;
}
