/* A program built against the installed headers and libraries (pkg-config stagegate). */
#include <stdio.h>
#include <string.h>

#include <stagegate/common.h>
#include <stagegate/json.h>
#include <stagegate/kernels.h>
#include <stagegate/version.h>

int main(void)
{
    char hex[65];
    sg_sha256_hex((const unsigned char *)"abc", 3, hex);
    sg_err err = {{0}};
    if (sg_kernels_init(&err) != SG_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    json_t *doc = json_pack("{ssss}", "version", SG_VERSION, "sha256_abc", hex);
    char *s = sg_json_dumps(doc, false);
    puts(s);
    free(s);
    json_decref(doc);
    return strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0;
}
