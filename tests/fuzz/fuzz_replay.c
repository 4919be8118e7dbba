/*
 * Deterministic fuzzing that runs in CI with any compiler: every target gets its
 * seeds plus many seeded mutations of them (bit flips, byte substitutions with
 * JSON-significant characters, truncations, duplications, insertions). Run under
 * ASan/UBSan this finds memory errors and undefined behaviour in the parsers;
 * in any build it checks the contract that a rejection carries a one-line
 * message. Built with clang and -DSTAGEGATE_FUZZ=ON, fuzz_libfuzzer.c drives the
 * same targets with libFuzzer for open-ended runs.
 *
 *   sg_fuzz_replay [ITERATIONS_PER_TARGET] [SEED]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_targets.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char tokens[] = "{}[]\":,\\0123456789-+.eE \n\t'%_aAzZ=/\x80\xff";

/* One mutation of src into dst (capacity cap); returns the new length. */
static size_t mutate(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    if (n > cap) n = cap;
    memcpy(dst, src, n);
    int rounds = 1 + (int)(rnd() % 4);
    for (int r = 0; r < rounds; r++) {
        size_t pos = n ? (size_t)(rnd() % n) : 0;
        switch (rnd() % 6) {
        case 0:
            if (n) dst[pos] ^= (uint8_t)(1u << (rnd() % 8));
            break;
        case 1:
            if (n) dst[pos] = (uint8_t)tokens[rnd() % (sizeof tokens - 1)];
            break;
        case 2:
            n = pos;
            break; /* truncate */
        case 3:    /* insert a token */
            if (n < cap) {
                memmove(dst + pos + 1, dst + pos, n - pos);
                dst[pos] = (uint8_t)tokens[rnd() % (sizeof tokens - 1)];
                n++;
            }
            break;
        case 4: /* duplicate a span */
            if (n) {
                size_t len = 1 + (size_t)(rnd() % (n - pos));
                if (n + len <= cap) {
                    memmove(dst + pos + len, dst + pos, n - pos);
                    n += len;
                }
            }
            break;
        case 5:
            if (n) dst[pos] = (uint8_t)rnd();
            break;
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 20261127;
    if (sg_fuzz_setup() != 0) {
        fprintf(stderr, "fuzz: setup failed\n");
        return 2;
    }
    enum { CAP = 8192 };
    uint8_t *buf = malloc(CAP), *cur = malloc(CAP);
    int bad = 0;
    for (int t = 0; t < sg_fuzz_target_count; t++) {
        const sg_fuzz_target *ft = &sg_fuzz_targets[t];
        int nseeds = 0;
        while (ft->seeds[nseeds])
            nseeds++;
        long accepted = 0, rejected = 0;
        for (int s = 0; s < nseeds; s++) {
            int v = ft->run((const uint8_t *)ft->seeds[s], strlen(ft->seeds[s]));
            if (v < 0) {
                fprintf(stderr, "FAIL %s: seed %d rejected without a message\n", ft->name, s);
                bad++;
            }
        }
        for (long i = 0; i < iters; i++) {
            /* Mutate a seed, or keep walking from the previous mutant. */
            const char *seed = ft->seeds[rnd() % (uint64_t)nseeds];
            size_t n = mutate((const uint8_t *)seed, strlen(seed), buf, CAP);
            if (rnd() % 2) n = mutate(buf, n, cur, CAP), memcpy(buf, cur, n);
            int v = ft->run(buf, n);
            if (v < 0) {
                fprintf(stderr,
                        "FAIL %s: iteration %ld: rejected without a one-line message: %.*s\n",
                        ft->name, i, (int)(n < 200 ? n : 200), (const char *)buf);
                if (++bad > 20) break;
            } else if (v == 0) {
                accepted++;
            } else {
                rejected++;
            }
        }
        printf("fuzz %-10s %ld inputs: %ld accepted, %ld rejected\n", ft->name, iters, accepted,
               rejected);
    }
    free(buf);
    free(cur);
    if (bad) {
        printf("%d contract violations\n", bad);
        return 1;
    }
    printf("all fuzz targets kept their contract\n");
    return 0;
}
