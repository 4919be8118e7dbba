#define _GNU_SOURCE /* asprintf */
/*
 * Signed requests. An actor signs a canonical text naming exactly the change it asks for;
 * the registry re-derives each field from the operation it is asked to perform and refuses
 * a request that names anything else, is stale, or replays a nonce. The text and signature
 * are kept in the audit log so anyone can re-check who asked for what.
 */
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry_internal.h"
#include "stagegate/keys.h"

#define REQ_HEADER "stagegate-registry-request/v1"

static bool field_ok(const char *s)
{
    return !strchr(s, '\n') && !strchr(s, '\r');
}

static char *build_text(const char *action, const char *model, int64_t version, const char *target,
                        const char *evidence, const char *when, const char *nonce,
                        const char *key_id, const char *head)
{
    size_t n = strlen(action) + strlen(model) + strlen(target) + strlen(evidence) + strlen(when) +
               strlen(nonce) + strlen(key_id) + strlen(head) + 176;
    char *t = malloc(n);
    if (!t) return NULL;
    snprintf(t, n,
             REQ_HEADER "\naction=%s\nmodel=%s\nversion=%lld\ntarget=%s\nevidence=%s\ntime=%s\n"
                        "nonce=%s\nkey=%s\nregistry=%s\n",
             action, model, (long long)version, target, evidence, when, nonce, key_id, head);
    return t;
}

/* The registry a request is for, as its audit head when it is made ("SEQ:HASH"): a request
   signed for one registry names an event no other registry's log holds, so it cannot be
   replayed into another registry with the same model names and keys. */
static sg_status head_ref(sg_registry *reg, char out[96], sg_err *err)
{
    int64_t seq = 0;
    char hash[65];
    sg_status rc = sg_registry_audit_head(reg, &seq, hash, err);
    if (rc == SG_OK) snprintf(out, 96, "%lld:%s", (long long)seq, hash);
    return rc;
}

sg_status sg_registry_request_sign(sg_registry *reg, const char *key_path, const char *action,
                                   const char *model, int64_t version, const char *target,
                                   const char *evidence, sg_registry_request *req, sg_err *err)
{
    memset(req, 0, sizeof *req);
    target = target ? target : "";
    evidence = evidence ? evidence : "";
    if (!field_ok(action) || !field_ok(model) || !field_ok(target) || !field_ok(evidence))
        return sg_errf(err, SG_EINPUT, "request fields must not contain line breaks");
    char head[96];
    int rc = head_ref(reg, head, err);
    if (rc != SG_OK) return rc;
    EVP_PKEY *key = NULL;
    rc = sg_key_load_private(key_path, &key, err);
    if (rc != SG_OK) return rc;
    uint8_t raw[16];
    char nonce[33], when[32];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        rc = sg_errf(err, SG_EINTERNAL, "no randomness for a request nonce");
        goto out;
    }
    sg_hex_encode(raw, sizeof raw, nonce);
    reg_now_utc(when);
    if ((rc = sg_key_id(key, req->key_id, err)) != SG_OK) goto out;
    if ((rc = sg_key_public_pem(key, &req->pub_pem, err)) != SG_OK) goto out;
    req->text =
        build_text(action, model, version, target, evidence, when, nonce, req->key_id, head);
    if (!req->text) {
        rc = sg_errf(err, SG_ENOMEM, "out of memory signing a request");
        goto out;
    }
    rc = sg_sign(key, (const uint8_t *)req->text, strlen(req->text), &req->sig, &req->sig_len, err);
out:
    EVP_PKEY_free(key);
    if (rc != SG_OK) sg_registry_request_clear(req);
    return rc;
}

sg_status sg_registry_request_attest(sg_registry *reg, const char *pub_pem, const char *auth,
                                     const char *action, const char *model, int64_t version,
                                     const char *target, const char *evidence,
                                     sg_registry_request *req, sg_err *err)
{
    memset(req, 0, sizeof *req);
    target = target ? target : "";
    evidence = evidence ? evidence : "";
    if (!field_ok(action) || !field_ok(model) || !field_ok(target) || !field_ok(evidence) ||
        !field_ok(auth))
        return sg_errf(err, SG_EINPUT, "request fields must not contain line breaks");
    char head[96];
    int rc = head_ref(reg, head, err);
    if (rc != SG_OK) return rc;
    EVP_PKEY *pub = NULL;
    rc = sg_key_load_public_pem(pub_pem, strlen(pub_pem), "principal key", &pub, err);
    if (rc != SG_OK) return rc;
    uint8_t raw[16];
    char nonce[33], when[32];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        rc = sg_errf(err, SG_EINTERNAL, "no randomness for a request nonce");
        goto out;
    }
    sg_hex_encode(raw, sizeof raw, nonce);
    reg_now_utc(when);
    if ((rc = sg_key_id(pub, req->key_id, err)) != SG_OK) goto out;
    req->pub_pem = strdup(pub_pem);
    char *text =
        build_text(action, model, version, target, evidence, when, nonce, req->key_id, head);
    size_t n = text ? strlen(text) + strlen(auth) + 8 : 0;
    req->text = text ? malloc(n) : NULL;
    if (req->text) snprintf(req->text, n, "%sauth=%s\n", text, auth);
    free(text);
    if (!req->text || !req->pub_pem) {
        rc = sg_errf(err, SG_ENOMEM, "out of memory making a request");
        goto out;
    }
    req->attested = true;
out:
    EVP_PKEY_free(pub);
    if (rc != SG_OK) sg_registry_request_clear(req);
    return rc;
}

sg_status sg_registry_request_attest_signed(sg_registry *reg, EVP_PKEY *server_key,
                                            const char *pub_pem, const char *auth,
                                            const char *action, const char *model, int64_t version,
                                            const char *target, const char *evidence,
                                            sg_registry_request *req, sg_err *err)
{
    char sid[65];
    sg_status rc = sg_key_id(server_key, sid, err);
    if (rc != SG_OK) return rc;
    /* The server names its own key inside the attested text, then signs the whole text. */
    char *how = NULL;
    if (asprintf(&how, "%s\nserver=%s", auth, sid) < 0)
        return sg_errf(err, SG_ENOMEM, "out of memory making a request");
    if (!field_ok(auth)) {
        free(how);
        return sg_errf(err, SG_EINPUT, "request fields must not contain line breaks");
    }
    rc = sg_registry_request_attest(reg, pub_pem, "", action, model, version, target, evidence, req,
                                    err);
    if (rc == SG_OK) {
        /* replace the empty auth line the plain attestation wrote */
        size_t n = strlen(req->text) - strlen("auth=\n");
        char *text = NULL;
        if (asprintf(&text, "%.*sauth=%s\n", (int)n, req->text, how) < 0) text = NULL;
        free(req->text);
        req->text = text;
        if (!text) rc = sg_errf(err, SG_ENOMEM, "out of memory making a request");
    }
    free(how);
    if (rc == SG_OK)
        rc = sg_sign(server_key, (const uint8_t *)req->text, strlen(req->text), &req->sig,
                     &req->sig_len, err);
    if (rc != SG_OK) sg_registry_request_clear(req);
    return rc;
}

void sg_registry_request_clear(sg_registry_request *req)
{
    if (!req) return;
    free(req->text);
    free(req->sig);
    free(req->pub_pem);
    memset(req, 0, sizeof *req);
}

bool reg_request_field(const char *text, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, name, nl) && p[nl] == '=') {
            const char *v = p + nl + 1, *e = strchr(v, '\n');
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            if (vl >= len) return false;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
    }
    return false;
}

/* ci: compared regardless of case (a stage target: stage names are unique regardless of
   case). */
static sg_status expect_field_ci(const char *text, const char *name, const char *want, bool ci,
                                 sg_err *err)
{
    char got[1024];
    if (!reg_request_field(text, name, got, sizeof got))
        return sg_errf(err, SG_EREFUSED, "refused: signed request has no %s field", name);
    if (ci ? strcasecmp(got, want) != 0 : strcmp(got, want) != 0)
        return sg_errf(err, SG_EREFUSED,
                       "refused: signed request names %s '%s' but the operation is on '%s'", name,
                       got, want);
    return SG_OK;
}

static sg_status expect_field(const char *text, const char *name, const char *want, sg_err *err)
{
    return expect_field_ci(text, name, want, false, err);
}

sg_status reg_request_registry_check(sg_registry *reg, const char *text, sg_err *err)
{
    char ref[160], hash[65];
    long long seq = -1;
    int used = 0;
    if (!reg_request_field(text, "registry", ref, sizeof ref))
        return sg_errf(err, SG_EREFUSED,
                       "refused: signed request names no registry (a request made by an older "
                       "stagegate; sign it again)");
    if (sscanf(ref, "%lld:%64[0-9a-f]%n", &seq, hash, &used) != 2 || used != (int)strlen(ref) ||
        seq < 0 || strlen(hash) != 64)
        return sg_errf(err, SG_EREFUSED,
                       "refused: signed request's registry '%.100s' is not SEQ:HASH", ref);
    bool held = false;
    if (seq == 0) {
        held = !strcmp(hash, REG_ZERO_HASH);
    } else {
        reg_stmt *st;
        sg_status rc = reg_prepare(reg, "SELECT hash FROM audit_log WHERE seq = ?", &st, err);
        if (rc != SG_OK) return rc;
        reg_bind_int64(st, 1, seq);
        if (reg_row(reg, st, err)) held = !strcmp(reg_col_text(st, 0), hash);
        reg_finalize(st);
        if (reg->read_rc != SG_OK) return reg->read_rc;
    }
    return held ? SG_OK
                : sg_errf(err, SG_EREFUSED,
                          "refused: signed request was made for another registry (it names audit "
                          "event %lld with hash %.16s..., which this registry's log does not hold)",
                          seq, hash);
}

static sg_status check_fields(sg_registry *reg, const sg_registry_request *req, const char *action,
                              const char *model, int64_t version, const char *target,
                              const char *evidence, sg_err *err)
{
    char vbuf[32], when[64];
    snprintf(vbuf, sizeof vbuf, "%lld", (long long)version);
    /* A tag key or an alias is the target of these, and "Owner" is another tag than "owner":
       a request signed for one must not change the other. Every other target is a stage,
       a role or empty. */
    static const char *const exact[] = {"set-tag", "delete-tag", "set-alias", "delete-alias"};
    bool stage_target = true;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(action, exact[i])) stage_target = false;
    if (strncmp(req->text, REQ_HEADER "\n", strlen(REQ_HEADER) + 1) != 0)
        return sg_errf(err, SG_EREFUSED, "refused: not a stagegate registry request");
    int rc;
    if ((rc = expect_field(req->text, "action", action, err)) != SG_OK ||
        (rc = expect_field(req->text, "model", model, err)) != SG_OK ||
        (rc = expect_field(req->text, "version", vbuf, err)) != SG_OK ||
        (rc = expect_field_ci(req->text, "target", target, stage_target, err)) != SG_OK ||
        (rc = expect_field(req->text, "evidence", evidence, err)) != SG_OK ||
        (rc = expect_field(req->text, "key", req->key_id, err)) != SG_OK)
        return rc;
    int64_t t;
    if (!reg_request_field(req->text, "time", when, sizeof when) || reg_parse_utc(when, &t) != 0)
        return sg_errf(err, SG_EREFUSED, "refused: signed request has no valid time");
    int64_t skew = reg_now_epoch() - t;
    if (skew > SG_REGISTRY_REQUEST_SKEW_S || skew < -SG_REGISTRY_REQUEST_SKEW_S)
        return sg_errf(err, SG_EREFUSED,
                       "refused: signed request time %s is more than %d s from the registry clock",
                       when, SG_REGISTRY_REQUEST_SKEW_S);
    return reg_request_registry_check(reg, req->text, err);
}

static sg_status record_nonce(sg_registry *reg, const sg_registry_request *req, sg_err *err)
{
    char nonce[80], now[32];
    if (!reg_request_field(req->text, "nonce", nonce, sizeof nonce) || strlen(nonce) < 16)
        return sg_errf(err, SG_EREFUSED, "refused: signed request has no nonce");
    reg_now_utc(now);
    reg_stmt *st;
    int rc = reg_prepare(
        reg, "INSERT INTO request_nonces (nonce, key_id, created_at) VALUES (?, ?, ?)", &st, err);
    if (rc != SG_OK) return rc;
    reg_bind_text(st, 1, nonce);
    reg_bind_text(st, 2, req->key_id);
    reg_bind_text(st, 3, now);
    /* A write whose only answer is success or a duplicate: PostgreSQL sends it in the
     * pipeline with what follows, so a replay is refused at the transaction's next read or
     * at its commit, and the transaction never commits. */
    char replayed[160];
    snprintf(replayed, sizeof replayed,
             "refused: signed request was already used (replayed nonce %s)", nonce);
    return reg_write(reg, st, "recording request nonce", replayed, err);
}

/* After the root of trust exists, an attested request must be signed by a server key an
 * admin registered (the key it names in its server= line). */
static sg_status check_attestation(sg_registry *reg, const sg_registry_request *req, sg_err *err)
{
    bool root = false;
    sg_status rc = reg_root_exists(reg, &root, err);
    if (rc != SG_OK || !root) return rc;
    char sid[80];
    const char *auth = strstr(req->text, "\nauth=");
    if (!auth || !reg_request_field(auth + 1, "server", sid, sizeof sid) || !req->sig)
        return sg_errf(err, SG_EREFUSED,
                       "refused: this registry has a root of trust; a server's request must be "
                       "signed with a server key an admin added (stagegate serve --key, "
                       "registry init --server)");
    char *pem = reg_server_key_pem(reg, sid, err);
    if (reg->read_rc != SG_OK) {
        free(pem);
        return reg->read_rc;
    }
    if (!pem)
        return sg_errf(err, SG_EREFUSED, "refused: key %.16s is not a server key of this registry",
                       sid);
    EVP_PKEY *pub = NULL;
    rc = sg_key_load_public_pem(pem, strlen(pem), "server key", &pub, err);
    free(pem);
    sg_err verr;
    if (rc == SG_OK && sg_verify_sig(pub, (const uint8_t *)req->text, strlen(req->text), req->sig,
                                     req->sig_len, &verr) != SG_OK)
        rc = sg_errf(err, SG_EREFUSED,
                     "refused: the server's signature (key %.16s) does not verify", sid);
    EVP_PKEY_free(pub);
    return rc == SG_EINPUT ? SG_EREFUSED : rc;
}

/* The key holds a role in the model (signer, promoter, approver) or is an admin. */
/* Whether key_id holds a role in the model (as the configuration matched with the log gives
 * the roles: a key row written into model_keys by hand is not a member) or is an admin key
 * that an add-key event of the log introduced. */
static sg_status member_check(sg_registry *reg, const char *model, const char *key_id, sg_err *err)
{
    json_t *cfg = reg_tx_config(reg, model);
    sg_status rc = SG_OK;
    if (!cfg && (rc = reg_config_check(reg, model, err)) != SG_OK) return rc;
    cfg = reg_tx_config(reg, model);
    bool ok = false;
    if (cfg) {
        ok = reg_config_has_key(cfg, key_id);
    } else { /* a model created before schema 4 recorded no configuration to hold them to */
        reg_stmt *st;
        if ((rc = reg_prepare(reg, "SELECT 1 FROM model_keys WHERE model_name = ? AND key_id = ?",
                              &st, err)) != SG_OK)
            return rc;
        reg_bind_text(st, 1, model);
        reg_bind_text(st, 2, key_id);
        ok = reg_row(reg, st, err);
        reg_finalize(st);
        if (reg->read_rc != SG_OK) return reg->read_rc;
    }
    if (!ok) {
        char *pem = reg_admin_key_pem(reg, key_id, err);
        if (reg->read_rc != SG_OK) {
            free(pem);
            return reg->read_rc;
        }
        ok = pem != NULL;
        free(pem);
    }
    return ok ? SG_OK
              : sg_errf(err, SG_EREFUSED,
                        "refused: key %.16s holds no role in model %s and is not an admin", key_id,
                        model);
}

static sg_status request_check(sg_registry *reg, const sg_registry_request *req, bool required,
                               const char *action, const char *model, int64_t version,
                               const char *target, const char *evidence, bool record,
                               char actor_out[65], sg_err *err)
{
    actor_out[0] = '\0';
    /* Once the registry has a root of trust every change is signed: a change the model's
     * rules let anyone make (a new version, a tag, an alias, an ungated stage) needs a key
     * that holds a role in the model, or an admin's. */
    bool member = false;
    if (!required && *model) {
        bool root = false;
        sg_status rrc = reg_root_exists(reg, &root, err);
        if (rrc != SG_OK) return rrc;
        required = member = root;
    }
    if (!req || !req->text) {
        if (member)
            return sg_errf(err, SG_EREFUSED,
                           "refused: %s %s needs a signed request (--as KEY.pem) by a key that "
                           "holds a role in the model: the registry has a root of trust",
                           action, model);
        if (required)
            return sg_errf(
                err, SG_EREFUSED,
                "refused: %s%s%s needs a signed request from an authorized actor (--as KEY.pem)",
                action, *model ? " " : "", model);
        return SG_OK;
    }
    if ((!req->sig && !req->attested) || !req->pub_pem)
        return sg_errf(err, SG_EREFUSED, "refused: request is not signed");
    EVP_PKEY *pub = NULL;
    int rc =
        sg_key_load_public_pem(req->pub_pem, strlen(req->pub_pem), "request signer key", &pub, err);
    if (rc != SG_OK) return rc == SG_EINPUT ? SG_EREFUSED : rc;
    char id[65];
    if ((rc = sg_key_id(pub, id, err)) != SG_OK) goto out;
    if (strcmp(id, req->key_id) != 0) {
        rc = sg_errf(err, SG_EREFUSED, "refused: request key id does not match its public key");
        goto out;
    }
    sg_err verr;
    if (!req->attested && sg_verify_sig(pub, (const uint8_t *)req->text, strlen(req->text),
                                        req->sig, req->sig_len, &verr) != SG_OK) {
        rc = sg_errf(err, SG_EREFUSED, "refused: request signature by key %.16s does not verify",
                     id);
        goto out;
    }
    if (req->attested && (rc = check_attestation(reg, req, err)) != SG_OK) goto out;
    if ((rc = check_fields(reg, req, action, model, version, target ? target : "",
                           evidence ? evidence : "", err)) != SG_OK)
        goto out;
    if (record && (rc = record_nonce(reg, req, err)) != SG_OK) goto out;
    if (member && (rc = member_check(reg, model, id, err)) != SG_OK) goto out;
    memcpy(actor_out, id, 65);
out:
    EVP_PKEY_free(pub);
    return rc;
}

sg_status reg_request_check(sg_registry *reg, const sg_registry_request *req, bool required,
                            const char *action, const char *model, int64_t version,
                            const char *target, const char *evidence, char actor_out[65],
                            sg_err *err)
{
    return request_check(reg, req, required, action, model, version, target, evidence, true,
                         actor_out, err);
}

sg_status reg_request_check_unrecorded(sg_registry *reg, const sg_registry_request *req,
                                       bool required, const char *action, const char *model,
                                       int64_t version, const char *target, const char *evidence,
                                       char actor_out[65], sg_err *err)
{
    return request_check(reg, req, required, action, model, version, target, evidence, false,
                         actor_out, err);
}
