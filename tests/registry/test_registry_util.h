/* Helpers for the registry unit tests: temp dirs, keys and signed reports. */
#ifndef TEST_REGISTRY_UTIL_H
#define TEST_REGISTRY_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A new temporary directory (static buffer per call site is the caller's). */
void tu_tmpdir(char out[512]);
/* Writes DIR/NAME.key.pem and DIR/NAME.pub.pem; fills the two paths. */
void tu_keygen(const char *dir, const char *name, char key[600], char pub[600]);
/* Writes a small file with given content; returns its path in out. */
void tu_file(const char *dir, const char *name, const char *content, char out[600]);
/* A signed test-result report for the digest; ts NULL = now. Caller frees. */
char *tu_report(const char *key_path, const char *sha256, const char *result, const char *ts);
void tu_rm_rf(const char *dir);

#endif
