/*
 * Test-only workloads of known cost: spin for N TSC cycles, or for N ns of
 * CLOCK_MONOTONIC_RAW (a clock the harness does not use when it has the TSC,
 * so the check also covers the TSC calibration). Header-only, tests only.
 */
#ifndef STAGEGATE_TESTS_BUSY_WORKLOAD_H
#define STAGEGATE_TESTS_BUSY_WORKLOAD_H

#include <time.h>
#include <x86intrin.h>

#include "stagegate/harness.h"

typedef struct {
    uint64_t amount; /* cycles or ns */
    int use_cycles;
} busy_ctx;

static inline uint64_t busy_raw_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int busy_setup(sg_worker *w, void *ctx, void **state, sg_err *err)
{
    (void)w;
    (void)err;
    *state = ctx;
    return SG_OK;
}

static void busy_run(void *state, int64_t row, int64_t rows)
{
    (void)row;
    const busy_ctx *c = state;
    uint64_t amount = c->amount * (uint64_t)rows;
    if (c->use_cycles) {
        uint64_t t0 = __rdtsc();
        while (__rdtsc() - t0 < amount) {
        }
    } else {
        uint64_t t0 = busy_raw_ns();
        while (busy_raw_ns() - t0 < amount) {
        }
    }
}

static inline sg_workload busy_workload(busy_ctx *c)
{
    sg_workload w = {0};
    w.name = c->use_cycles ? "busy-wait-cycles" : "busy-wait-ns";
    w.n_rows = 1024;
    w.ctx = c;
    w.setup = busy_setup;
    w.run = busy_run;
    return w;
}

#endif
