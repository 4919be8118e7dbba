/* File helpers: SHA-256 digests, whole-file reads and atomic (temp + rename) output. */
#include "stagegate/common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sg_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

void sg_sha256_hex(const uint8_t *data, size_t len, char hex[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    sg_hex_encode(md, 32, hex);
}

int sg_sha256_file(const char *path, uint8_t digest[32], sg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sg_errf(err, SG_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        fclose(f);
        EVP_MD_CTX_free(ctx);
        return sg_errf(err, SG_EINTERNAL, "%s: cannot start SHA-256", path);
    }
    uint8_t *buf = malloc(1 << 20);
    if (!buf) {
        fclose(f);
        EVP_MD_CTX_free(ctx);
        return sg_errf(err, SG_ENOMEM, "%s: out of memory hashing file", path);
    }
    size_t n;
    int rc = SG_OK;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    if (ferror(f))
        rc = sg_errf(err, SG_EIO, "%s: read error while hashing: %s", path, strerror(errno));
    unsigned int mdlen = 0;
    if (rc == SG_OK) EVP_DigestFinal_ex(ctx, digest, &mdlen);
    free(buf);
    fclose(f);
    EVP_MD_CTX_free(ctx);
    return rc;
}

int sg_sha256_file_hex(const char *path, char hex[65], sg_err *err)
{
    uint8_t d[32];
    int rc = sg_sha256_file(path, d, err);
    if (rc == SG_OK) sg_hex_encode(d, 32, hex);
    return rc;
}

int sg_read_file(const char *path, size_t limit, uint8_t **data, size_t *len, sg_err *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sg_errf(err, SG_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = limit < 4096 ? limit : 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= limit) {
                /* A file of exactly `limit` bytes is fine: only a further byte is too many. */
                uint8_t extra;
                if (fread(&extra, 1, 1, f) == 0 && !ferror(f)) break;
                free(buf);
                fclose(f);
                return sg_errf(err, SG_EINPUT, "%s: file is larger than %zu bytes", path, limit);
            }
            cap = cap * 2 > limit ? limit : cap * 2;
            uint8_t *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f), e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return sg_errf(err, SG_EIO, "%s: read error: %s", path, strerror(e));
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return SG_OK;
}

int sg_tmp_path_for(const char *path, char *tmp, size_t tmp_len, sg_err *err)
{
    /* Same directory as the target, so rename() is atomic (same filesystem). */
    char copy[4096];
    if (strlen(path) >= sizeof copy) return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    strcpy(copy, path);
    char *dir = dirname(copy);
    char copy2[4096];
    strcpy(copy2, path);
    char *base = basename(copy2);
    static unsigned counter;
    int n = snprintf(tmp, tmp_len, "%s/.%s.tmp.%ld.%u", dir, base, (long)getpid(),
                     __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    if (n < 0 || (size_t)n >= tmp_len) return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    return SG_OK;
}

int sg_commit_tmp(const char *tmp, const char *path, sg_err *err)
{
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return sg_errf(err, SG_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return SG_OK;
}

int sg_outfile_open(sg_outfile *o, const char *path, sg_err *err)
{
    memset(o, 0, sizeof *o);
    if (strlen(path) >= sizeof o->path) return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    strcpy(o->path, path);
    int rc = sg_tmp_path_for(path, o->tmp_path, sizeof o->tmp_path, err);
    if (rc) return rc;
    int fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return sg_errf(err, SG_EIO, "%s: cannot create: %s", path, strerror(errno));
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        close(fd);
        unlink(o->tmp_path);
        return sg_errf(err, SG_EIO, "%s: cannot open stream", path);
    }
    return SG_OK;
}

int sg_outfile_commit(sg_outfile *o, sg_err *err)
{
    if (!o->fp) return sg_errf(err, SG_EINTERNAL, "%s: output not open", o->path);
    int bad = fflush(o->fp) != 0 || ferror(o->fp) || fsync(fileno(o->fp)) != 0;
    int e = errno;
    bad |= fclose(o->fp) != 0;
    o->fp = NULL;
    if (bad) {
        unlink(o->tmp_path);
        return sg_errf(err, SG_EIO, "%s: write failed: %s", o->path, strerror(e));
    }
    return sg_commit_tmp(o->tmp_path, o->path, err);
}

void sg_outfile_abort(sg_outfile *o)
{
    if (o->fp) {
        fclose(o->fp);
        o->fp = NULL;
    }
    if (o->tmp_path[0]) unlink(o->tmp_path);
}
