/*
 * libFuzzer entry (clang, -DSTAGEGATE_FUZZ=ON). The target is chosen with
 * SG_FUZZ_TARGET=policy|envelope|report|base64|filter|histogram, e.g.
 *   SG_FUZZ_TARGET=policy ./sg_fuzz -max_total_time=60 corpus/
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_targets.h"

static const sg_fuzz_target *target;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *name = getenv("SG_FUZZ_TARGET");
    for (int i = 0; name && i < sg_fuzz_target_count; i++)
        if (!strcmp(name, sg_fuzz_targets[i].name)) target = &sg_fuzz_targets[i];
    if (!target || sg_fuzz_setup() != 0) {
        fprintf(stderr, "set SG_FUZZ_TARGET to one of the targets in fuzz_targets.c\n");
        exit(2);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
    if (target->run(data, len) < 0) abort();
    return 0;
}
