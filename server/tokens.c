/*
 * The tokens file: one principal per line, "SHA256(token) KEY_ID NAME BASE64(PUBLIC PEM)".
 * Tokens are 256 random bits, so a plain SHA-256 of one is as hard to invert as the token is
 * to guess; a slow password hash would add nothing. The file is refused when group or others
 * may read it, and a presented token is compared with every entry in constant time.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server_internal.h"
#include "stagegate/keys.h"

#define SRV_TOKENS_FILE_MAX (16 << 20)

static sg_status check_mode(int fd, const char *path, sg_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return sg_errf(err, SG_EIO, "tokens file %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return sg_errf(err, SG_EINPUT, "tokens file %s is not a regular file", path);
    if (st.st_mode & 077)
        return sg_errf(err, SG_EINPUT,
                       "tokens file %s is accessible by group or others (mode %03o); chmod 600 it",
                       path, (unsigned)(st.st_mode & 0777));
    /* about 700 bytes a principal: 16 MiB is over 20,000 of them (a 256 MB file had been read
       whole, 307 MB of memory, before it was refused) */
    if (st.st_size > SRV_TOKENS_FILE_MAX)
        return sg_errf(err, SG_EINPUT, "tokens file %s is %lld bytes, over the %d MiB limit", path,
                       (long long)st.st_size, SRV_TOKENS_FILE_MAX >> 20);
    return SG_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static sg_status parse_line(char *line, const char *path, int lineno, srv_principal *p, sg_err *err)
{
    char *save = NULL;
    char *hash = strtok_r(line, " \t", &save), *id = strtok_r(NULL, " \t", &save);
    char *name = strtok_r(NULL, " \t", &save), *pem64 = strtok_r(NULL, " \t\n", &save);
    if (!hash || !id || !name || !pem64 || strlen(hash) != 64 || strlen(id) != 64 ||
        strlen(name) >= sizeof p->name)
        return sg_errf(err, SG_EINPUT, "tokens file %s: line %d is not HASH KEY_ID NAME PEM", path,
                       lineno);
    /* The name goes into the audit log and answers: UTF-8 text without control characters, as
       `token add` writes it (a hand-edited byte 0xff had made every write of that principal
       fail on PostgreSQL, and succeed on SQLite with a non-UTF-8 log entry). */
    bool clean = sg_utf8_valid(name);
    for (const char *c = name; clean && *c; c++)
        clean = (unsigned char)*c > ' ' && *c != 0x7f;
    if (!clean)
        return sg_errf(err, SG_EINPUT,
                       "tokens file %s: line %d: the name is not UTF-8 text without spaces or "
                       "control characters",
                       path, lineno);
    for (int i = 0; i < 32; i++) {
        int hi = hex_value(hash[2 * i]), lo = hex_value(hash[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return sg_errf(err, SG_EINPUT, "tokens file %s: line %d: bad hash", path, lineno);
        p->hash[i] = (uint8_t)(hi << 4 | lo);
    }
    uint8_t *pem = NULL;
    size_t pem_len = 0;
    if (sg_base64_decode(pem64, &pem, &pem_len) != 0)
        return sg_errf(err, SG_EINPUT, "tokens file %s: line %d: bad key", path, lineno);
    p->pub_pem = malloc(pem_len + 1);
    if (!p->pub_pem) {
        free(pem);
        return sg_errf(err, SG_ENOMEM, "out of memory");
    }
    memcpy(p->pub_pem, pem, pem_len);
    p->pub_pem[pem_len] = '\0';
    free(pem);
    EVP_PKEY *key = NULL;
    int rc = sg_key_load_public_pem(p->pub_pem, pem_len, "tokens file key", &key, err);
    char real_id[65];
    if (rc == SG_OK) rc = sg_key_id(key, real_id, err);
    EVP_PKEY_free(key);
    if (rc == SG_OK && strcmp(real_id, id) != 0)
        rc = sg_errf(err, SG_EINPUT, "tokens file %s: line %d: key id does not match its key", path,
                     lineno);
    memcpy(p->key_id, real_id, sizeof p->key_id);
    snprintf(p->name, sizeof p->name, "%s", name);
    return rc;
}

static int by_hash(const void *a, const void *b)
{
    const srv_principal *const *x = a, *const *y = b;
    int c = memcmp((*x)->hash, (*y)->hash, sizeof(*x)->hash);
    return c ? c : ((*x)->line > (*y)->line) - ((*x)->line < (*y)->line);
}

/* One token, one principal. A token's hash on two lines (a line pasted twice, or a hand edit
   giving another's token a second key) had been accepted, and the last line silently decided
   whose key the holder acted with; the file is refused, naming both lines. */
static sg_status check_unique(const srv_tokens *t, const char *path, sg_err *err)
{
    if (t->n < 2) return SG_OK;
    const srv_principal **v = malloc(t->n * sizeof *v);
    if (!v) return sg_errf(err, SG_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->n; i++)
        v[i] = &t->v[i];
    qsort(v, t->n, sizeof *v, by_hash);
    sg_status rc = SG_OK;
    for (size_t i = 1; i < t->n && rc == SG_OK; i++)
        if (memcmp(v[i - 1]->hash, v[i]->hash, sizeof v[i]->hash) == 0)
            rc = sg_errf(err, SG_EINPUT,
                         "tokens file %s: line %d has the token of line %d (a token belongs to "
                         "one principal; delete one of the lines)",
                         path, v[i]->line, v[i - 1]->line);
    free(v);
    return rc;
}

sg_status srv_tokens_load(const char *path, srv_tokens *t, sg_err *err)
{
    memset(t, 0, sizeof t[0]);
    /* O_NONBLOCK: a FIFO put in its place had blocked the start, or a SIGHUP reload in the
       signal thread, so that SIGTERM was never handled; check_mode refuses it */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return sg_errf(err, SG_EINPUT, "tokens file %s: %s", path, strerror(errno));
    int rc = check_mode(fd, path, err);
    int fl = fcntl(fd, F_GETFL);
    if (rc == SG_OK && fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = rc == SG_OK ? fdopen(fd, "r") : NULL;
    if (!f) {
        close(fd);
        return rc != SG_OK ? rc : sg_errf(err, SG_EIO, "tokens file %s: cannot read", path);
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    while (rc == SG_OK && getline(&line, &cap, f) >= 0) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        srv_principal *v = realloc(t->v, (t->n + 1) * sizeof *v);
        if (!v) {
            rc = sg_errf(err, SG_ENOMEM, "out of memory");
            break;
        }
        t->v = v;
        memset(&t->v[t->n], 0, sizeof t->v[0]);
        t->v[t->n].line = lineno;
        rc = parse_line(line, path, lineno, &t->v[t->n], err);
        t->n++;
    }
    free(line);
    fclose(f);
    if (rc == SG_OK) rc = check_unique(t, path, err);
    if (rc != SG_OK) srv_tokens_free(t);
    return rc;
}

void srv_tokens_free(srv_tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].pub_pem);
    free(t->v);
    memset(t, 0, sizeof *t);
}

const srv_principal *srv_tokens_find(const srv_tokens *t, const char *token, size_t len)
{
    uint8_t h[32];
    sg_sha256((const uint8_t *)token, len, h);
    const srv_principal *found = NULL;
    /* Every entry is compared, whatever matched, so the time does not depend on which one. */
    for (size_t i = 0; i < t->n; i++)
        if (CRYPTO_memcmp(h, t->v[i].hash, sizeof h) == 0) found = &t->v[i];
    return found;
}

sg_status sg_server_token_add(const char *tokens_path, const char *pub_path, const char *name,
                              char token_out[SG_SERVER_TOKEN_LEN + 1], sg_err *err)
{
    token_out[0] = '\0';
    name = name && *name ? name : "token";
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return sg_errf(err, SG_EINPUT, "--name '%s': no spaces or control characters", name);
    if (!sg_utf8_valid(name)) return sg_errf(err, SG_EINPUT, "--name: not UTF-8 text");
    if (strlen(name) >= sizeof((srv_principal *)0)->name)
        return sg_errf(err, SG_EINPUT, "--name: at most 63 characters");
    EVP_PKEY *key = NULL;
    char id[65], *pem = NULL;
    int rc = sg_key_load_public(pub_path, &key, err);
    if (rc == SG_OK) rc = sg_key_id(key, id, err);
    if (rc == SG_OK) rc = sg_key_public_pem(key, &pem, err);
    EVP_PKEY_free(key);
    if (rc != SG_OK) return rc;
    uint8_t raw[32];
    char token[SG_SERVER_TOKEN_LEN + 1], hash[65];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        free(pem);
        return sg_errf(err, SG_EINTERNAL, "no randomness for a token");
    }
    memcpy(token, "sgt_", 4);
    sg_hex_encode(raw, sizeof raw, token + 4);
    sg_sha256_hex((const uint8_t *)token, strlen(token), hash);
    char *pem64 = sg_base64_encode((const uint8_t *)pem, strlen(pem));
    free(pem);
    if (!pem64) return sg_errf(err, SG_ENOMEM, "out of memory");
    /* A file that is there must already be a tokens file: any other file with mode 0600 (a
       private key, a tokens file given by mistake as another's) had had a line appended. */
    struct stat st;
    const bool existed = stat(tokens_path, &st) == 0;
    if (existed && st.st_size > 0) {
        srv_tokens existing;
        sg_err why = {{0}};
        if (srv_tokens_load(tokens_path, &existing, &why) != SG_OK) {
            free(pem64);
            return sg_errf(err, SG_EINPUT, "%s; not adding a token to it", why.msg);
        }
        srv_tokens_free(&existing);
    }
    int fd = open(tokens_path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0)
        rc = sg_errf(err, SG_EINPUT, "tokens file %s: %s", tokens_path,
                     errno == ENXIO ? "is a FIFO, not a regular file" : strerror(errno));
    if (rc == SG_OK) rc = check_mode(fd, tokens_path, err);
    if (rc == SG_OK) {
        /* The line is written whole or not at all: a write cut short (a full disk, ulimit -f)
           had been ignored, so a token was printed that was never stored, or half a line
           left that made the file unreadable to the server and to the next token add. */
        struct stat at;
        char *line = NULL;
        const off_t size0 = fstat(fd, &at) == 0 ? at.st_size : -1;
        int n = asprintf(&line, "%s %s %s %s\n", hash, id, name, pem64);
        if (n < 0) {
            line = NULL;
            rc = sg_errf(err, SG_ENOMEM, "out of memory");
        }
        if (rc == SG_OK && sg_write_all(fd, line, (size_t)n) != 0)
            rc = sg_errf(err, SG_EIO, "tokens file %s: %s; no token added", tokens_path,
                         strerror(errno));
        if (rc == SG_OK && fsync(fd) != 0)
            rc = sg_errf(err, SG_EIO, "tokens file %s: %s; no token added", tokens_path,
                         strerror(errno));
        if (rc != SG_OK && size0 >= 0) {
            if (existed)
                (void)!ftruncate(fd, size0);
            else
                (void)unlink(tokens_path);
        }
        free(line);
    }
    if (fd >= 0 && close(fd) != 0 && rc == SG_OK)
        rc = sg_errf(err, SG_EIO, "tokens file %s: %s", tokens_path, strerror(errno));
    free(pem64);
    if (rc == SG_OK) memcpy(token_out, token, sizeof token);
    OPENSSL_cleanse(token, sizeof token);
    return rc;
}
