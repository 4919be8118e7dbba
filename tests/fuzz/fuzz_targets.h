/* Parsers of outside input, each wrapped as a fuzz target: bytes in, no crash out. */
#ifndef SG_FUZZ_TARGETS_H
#define SG_FUZZ_TARGETS_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    /* Returns 0 when the input was accepted, 1 when it was rejected with a one-line
       message, -1 when a rejection came without a usable message (a bug). */
    int (*run)(const uint8_t *data, size_t len);
    const char *const *seeds; /* NULL-terminated */
} sg_fuzz_target;

extern const sg_fuzz_target sg_fuzz_targets[];
extern const int sg_fuzz_target_count;
int sg_fuzz_setup(void); /* keys etc.; 0 on success */
#endif
