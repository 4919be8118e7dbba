/*
 * DSSE v1 envelopes: PAE, signing, and verify-before-parse verification.
 *
 * Verification reads only the three envelope fields, checks a signature over the PAE
 * of the decoded bytes, and hands back exactly those bytes. Nothing inside the payload
 * is looked at here, and the payload is never re-serialized: the signature covers the
 * bytes that were base64-encoded, so any re-encoding would verify something else.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/keys.h"
#include "stagegate/json.h"
#include "stagegate/report.h"

sg_status sg_dsse_pae(const char *payload_type, const uint8_t *payload, size_t len, uint8_t **pae,
                size_t *pae_len)
{
    *pae = NULL;
    *pae_len = 0;
    size_t tlen = strlen(payload_type);
    char head[128];
    /* "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body; lengths are plain decimal. */
    int h1 = snprintf(head, sizeof head, "DSSEv1 %zu ", tlen);
    if (h1 < 0 || (size_t)h1 >= sizeof head) return SG_EINTERNAL;
    char mid[64];
    int h2 = snprintf(mid, sizeof mid, " %zu ", len);
    if (h2 < 0 || (size_t)h2 >= sizeof mid) return SG_EINTERNAL;
    if (tlen > SIZE_MAX / 2 || len > SIZE_MAX / 2 - tlen - 256) return SG_EINPUT;
    size_t total = (size_t)h1 + tlen + (size_t)h2 + len;
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf) return SG_ENOMEM;
    size_t o = 0;
    memcpy(buf + o, head, (size_t)h1), o += (size_t)h1;
    memcpy(buf + o, payload_type, tlen), o += tlen;
    memcpy(buf + o, mid, (size_t)h2), o += (size_t)h2;
    if (len) memcpy(buf + o, payload, len), o += len;
    *pae = buf;
    *pae_len = o;
    return SG_OK;
}

sg_status sg_dsse_sign(EVP_PKEY *key, const char *payload_type, const uint8_t *payload, size_t len,
                 char **envelope_json, sg_err *err)
{
    *envelope_json = NULL;
    if (len > SG_DSSE_MAX_PAYLOAD)
        return sg_errf(err, SG_EINPUT, "payload: %zu bytes is over the %u-byte limit", len,
                       (unsigned)SG_DSSE_MAX_PAYLOAD);
    /* Nothing is signed that the verifier would refuse to read. */
    if (sg_json_count_values((const char *)payload, len, SG_JSON_STATEMENT_VALUES) >
        SG_JSON_STATEMENT_VALUES)
        return sg_errf(err, SG_EINPUT, "payload: more than %zu JSON values, which verify refuses",
                       SG_JSON_STATEMENT_VALUES);
    uint8_t *pae = NULL, *sig = NULL;
    size_t pae_len = 0, sig_len = 0;
    char keyid[65];
    int rc = sg_dsse_pae(payload_type, payload, len, &pae, &pae_len);
    if (rc) return sg_errf(err, rc, "payload: cannot build the DSSE PAE");
    rc = sg_key_id(key, keyid, err);
    if (!rc) rc = sg_sign(key, pae, pae_len, &sig, &sig_len, err);
    free(pae);
    if (rc) return rc;

    char *b64_payload = sg_base64_encode(payload, len);
    char *b64_sig = sg_base64_encode(sig, sig_len);
    free(sig);
    json_t *env = json_object(), *sigs = json_array(), *entry = json_object();
    json_t *type_str = json_string(payload_type); /* NULL when not valid UTF-8 */
    if (!type_str) {
        rc = sg_errf(err, SG_EINPUT, "payloadType: not a valid UTF-8 string");
    } else if (!b64_payload || !b64_sig || !env || !sigs || !entry ||
               json_object_set_new(entry, "keyid", json_string(keyid)) ||
               json_object_set_new(entry, "sig", json_string(b64_sig)) ||
               json_array_append(sigs, entry) ||
               json_object_set_new(env, "payload", json_string(b64_payload)) ||
               json_object_set(env, "payloadType", type_str) ||
               json_object_set(env, "signatures", sigs)) {
        rc = sg_errf(err, SG_ENOMEM, "envelope: out of memory");
    }
    if (!rc) {
        char *text = json_dumps(env, JSON_PRESERVE_ORDER | JSON_INDENT(2));
        size_t tl = text ? strlen(text) : 0;
        char *withnl = text ? realloc(text, tl + 2) : NULL;
        if (!withnl) {
            free(text);
            rc = sg_errf(err, SG_ENOMEM, "envelope: out of memory");
        } else {
            withnl[tl] = '\n';
            withnl[tl + 1] = '\0';
            *envelope_json = withnl;
        }
    }
    json_decref(type_str);
    json_decref(entry);
    json_decref(sigs);
    json_decref(env);
    free(b64_payload);
    free(b64_sig);
    return rc;
}

/*
 * The DSSE protocol says verifiers MUST accept standard and URL-safe base64. Map the
 * URL-safe alphabet (never mixed with the standard one) and restore omitted padding,
 * then use the strict decoder.
 */
int sg_dsse_base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    bool url = strpbrk(in, "-_") != NULL, std = strpbrk(in, "+/") != NULL;
    if (url && std) return -1;
    if (len % 4 == 1 || len > SIZE_MAX - 4) return -1;
    char *copy = malloc(len + 3);
    if (!copy) return -1;
    memcpy(copy, in, len);
    size_t n = len;
    if (len % 4 != 0) {
        if (memchr(in, '=', len)) { /* padding present but truncated: not valid either way */
            free(copy);
            return -1;
        }
        while (n % 4)
            copy[n++] = '=';
    }
    copy[n] = '\0';
    for (size_t i = 0; url && i < n; i++) {
        if (copy[i] == '-')
            copy[i] = '+';
        else if (copy[i] == '_')
            copy[i] = '/';
    }
    int rc = sg_base64_decode(copy, out, out_len);
    free(copy);
    return rc;
}

/* Rejects any member not in `allowed` (NULL-terminated), so no field is silently ignored. */
static sg_status only_members(json_t *obj, const char *const *allowed, const char *where, sg_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(k, *a);
        if (!ok) return sg_errf(err, SG_EREFUSED, "%s: unexpected field \"%s\"", where, k);
    }
    return SG_OK;
}

sg_status sg_dsse_verify(const uint8_t *envelope, size_t len, EVP_PKEY *pub, char **payload_type,
                   uint8_t **payload, size_t *payload_len, sg_err *err)
{
    *payload_type = NULL;
    *payload = NULL;
    *payload_len = 0;
    if (len > SG_DSSE_MAX_ENVELOPE)
        return sg_errf(err, SG_EREFUSED, "envelope: %zu bytes is over the %u-byte limit", len,
                       (unsigned)SG_DSSE_MAX_ENVELOPE);
    if (len > SG_JSON_COUNT_FROM &&
        sg_json_count_values((const char *)envelope, len, SG_JSON_ENVELOPE_VALUES) >
        SG_JSON_ENVELOPE_VALUES)
        return sg_errf(err, SG_EREFUSED,
                       "envelope: more than %d JSON values (an envelope holds a payload, its "
                       "type and at most 16 signatures)",
                       SG_JSON_ENVELOPE_VALUES);
    json_error_t jerr;
    /* Duplicate keys are refused: two "payload" members could be read differently by two tools. */
    json_t *env = json_loadb((const char *)envelope, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!env && jerr.line < 0) /* jansson's mark of a failed allocation */
        return sg_errf(err, SG_ENOMEM, "envelope: out of memory parsing %zu bytes", len);
    if (!env)
        return sg_errf(err, SG_EREFUSED, "envelope: not valid JSON (line %d, column %d): %s",
                       jerr.line, jerr.column, jerr.text);
    int rc = SG_OK;
    uint8_t *body = NULL, *pae = NULL;
    size_t body_len = 0, pae_len = 0;
    static const char *const top_fields[] = {"payload", "payloadType", "signatures", NULL};
    static const char *const sig_fields[] = {"keyid", "sig", NULL};
    json_t *jp = json_object_get(env, "payload"), *jt = json_object_get(env, "payloadType");
    json_t *js = json_object_get(env, "signatures");
    if (!json_is_object(env)) {
        rc = sg_errf(err, SG_EREFUSED, "envelope: top level is not a JSON object");
    } else if ((rc = only_members(env, top_fields, "envelope", err))) {
    } else if (!json_is_string(jp)) {
        rc = sg_errf(err, SG_EREFUSED, "envelope: \"payload\" is missing or not a string");
    } else if (!json_is_string(jt)) {
        rc = sg_errf(err, SG_EREFUSED, "envelope: \"payloadType\" is missing or not a string");
    } else if (!json_is_array(js) || json_array_size(js) == 0 ||
               json_array_size(js) > SG_DSSE_MAX_SIGNATURES) {
        rc = sg_errf(err, SG_EREFUSED,
                     "envelope: \"signatures\" must be an array of 1 to %d entries",
                     SG_DSSE_MAX_SIGNATURES);
    } else if (sg_dsse_base64_decode(json_string_value(jp), json_string_length(jp), &body, &body_len)) {
        rc = sg_errf(err, SG_EREFUSED, "envelope: \"payload\" is not valid base64");
    } else if ((rc = sg_dsse_pae(json_string_value(jt), body, body_len, &pae, &pae_len))) {
        rc = sg_errf(err, rc, "envelope: cannot build the DSSE PAE");
    }
    /* Every entry must be well formed; the envelope verifies if any signature does. */
    bool verified = false;
    for (size_t i = 0; !rc && i < json_array_size(js); i++) {
        json_t *e = json_array_get(js, i);
        char where[64];
        snprintf(where, sizeof where, "envelope: signatures[%zu]", i);
        json_t *sig_str = json_object_get(e, "sig"), *kid = json_object_get(e, "keyid");
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        if (!json_is_object(e)) {
            rc = sg_errf(err, SG_EREFUSED, "%s is not an object", where);
        } else if ((rc = only_members(e, sig_fields, where, err))) {
        } else if (kid && !json_is_string(kid)) {
            rc = sg_errf(err, SG_EREFUSED, "%s: \"keyid\" is not a string", where);
        } else if (!json_is_string(sig_str) || json_string_length(sig_str) == 0) {
            rc = sg_errf(err, SG_EREFUSED, "%s: \"sig\" is missing or empty", where);
        } else if (sg_dsse_base64_decode(json_string_value(sig_str), json_string_length(sig_str), &sig,
                                  &sig_len)) {
            rc = sg_errf(err, SG_EREFUSED, "%s: \"sig\" is not valid base64", where);
        } else if (!verified) {
            /* keyid is an unauthenticated hint (DSSE): it never decides anything. */
            sg_err verr;
            int v = sg_verify_sig(pub, pae, pae_len, sig, sig_len, &verr);
            if (v == SG_OK)
                verified = true;
            else if (v != SG_EREFUSED)
                rc = sg_errf(err, v, "%s", verr.msg);
        }
        free(sig);
    }
    if (!rc && !verified) {
        char id[65] = "?";
        sg_err ierr;
        if (sg_key_id(pub, id, &ierr)) strcpy(id, "?");
        rc = sg_errf(err, SG_EREFUSED,
                     "envelope: no signature verifies over the DSSE PAE with public key %.16s...",
                     id);
    }
    if (!rc) {
        *payload_type = strdup(json_string_value(jt));
        if (!*payload_type) rc = sg_errf(err, SG_ENOMEM, "envelope: out of memory");
    }
    free(pae);
    if (rc) {
        free(body);
    } else {
        *payload = body;
        *payload_len = body_len;
    }
    json_decref(env);
    return rc;
}

void sg_dsse_payload_sha256(const uint8_t *envelope, size_t len, char hex[65])
{
    hex[0] = '\0';
    /* bounded as every parse of an envelope from outside is: an envelope holds a few values,
       its payload one string however large */
    const bool small = len <= SG_JSON_COUNT_FROM ||
                       sg_json_count_values((const char *)envelope, len,
                                            SG_JSON_ENVELOPE_VALUES + 1) <= SG_JSON_ENVELOPE_VALUES;
    json_t *e = small ? json_loadb((const char *)envelope, len, 0, NULL) : NULL;
    json_t *p = json_object_get(e, "payload");
    uint8_t *raw = NULL;
    size_t rl = 0;
    if (json_is_string(p) &&
        sg_dsse_base64_decode(json_string_value(p), json_string_length(p), &raw, &rl) == 0)
        sg_sha256_hex(raw, rl, hex);
    free(raw);
    json_decref(e);
}
