/* stagegate keygen: create a signing key pair for reports. */
#include <string.h>

#include "cli.h"
#include "stagegate/keys.h"

static void keygen_usage(FILE *out)
{
    fprintf(out, "usage: stagegate keygen --out PREFIX [--type ecdsa-p256|ed25519] [--json]\n\n"
                 "Writes PREFIX.key.pem (PKCS#8 private key, mode 0600) and PREFIX.pub.pem\n"
                 "(SubjectPublicKeyInfo public key). Existing files are never overwritten.\n"
                 "ECDSA P-256 (signatures over SHA-256, DER) is the default; Ed25519 is allowed.\n"
                 "Both files are PEM, so 'openssl' and cosign can use them directly.\n\n"
                 "exit codes: 0 keys written, 2 usage or input error\n");
}

int sg_cmd_keygen(int argc, char **argv)
{
    const char *prefix = NULL, *type_name = "ecdsa-p256";
    bool json = false;
    const sg_opt opts[] = {SG_OPT_STR("out", &prefix), SG_OPT_STR("type", &type_name),
                           SG_OPT_FLAG_("json", &json), SG_OPT_END_};
    int n_pos;
    int prc = sg_opts_parse("keygen", opts, argc, argv, 1, NULL, 0, &n_pos);
    if (prc == SG_OPTS_HELP) {
        keygen_usage(stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    if (!prefix || !*prefix) return sg_cli_usage_error("keygen", "--out PREFIX is required");
    sg_key_type type;
    if (!strcmp(type_name, "ecdsa-p256"))
        type = SG_KEY_ECDSA_P256;
    else if (!strcmp(type_name, "ed25519"))
        type = SG_KEY_ED25519;
    else
        return sg_cli_usage_error("keygen", "--type '%s' is not ecdsa-p256 or ed25519", type_name);

    sg_err err = {{0}};
    int rc = sg_keygen(prefix, type, &err);
    if (rc) return sg_cli_fail(rc, &err);

    /* Report the key id from the file just written, so what is printed is what is on disk. */
    char pub_path[4096], priv_path[4096], id[65] = "";
    snprintf(pub_path, sizeof pub_path, "%s.pub.pem", prefix);
    snprintf(priv_path, sizeof priv_path, "%s.key.pem", prefix);
    EVP_PKEY *pub = NULL;
    rc = sg_key_load_public(pub_path, &pub, &err);
    if (!rc) rc = sg_key_id(pub, id, &err);
    EVP_PKEY_free(pub);
    if (rc) return sg_cli_fail(rc, &err);
    if (json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "private_key", sg_json_string_safe(priv_path));
        json_object_set_new(doc, "public_key", sg_json_string_safe(pub_path));
        json_object_set_new(doc, "type", json_string(type_name));
        json_object_set_new(doc, "key_id", json_string(id));
        int jrc = sg_json_print(doc);
        json_decref(doc);
        if (jrc) {
            fputs("stagegate keygen: cannot write JSON to standard output; the keys ", stderr);
            sg_put_printable(stderr, priv_path);
            fputs(" and ", stderr);
            sg_put_printable(stderr, pub_path);
            fputs(" were written and kept\n", stderr);
        }
        return jrc ? 2 : 0;
    }
    /* The paths are the user's own text, shown as error lines show it: nothing a terminal
       acts on (an escape sequence in --out) reaches it. */
    fputs("private key: ", stdout);
    sg_put_printable(stdout, priv_path);
    fputs(" (mode 0600, keep it secret)\npublic key:  ", stdout);
    sg_put_printable(stdout, pub_path);
    printf("\ntype:        %s\nkey id:      %s\n", type_name, id);
    return 0;
}
