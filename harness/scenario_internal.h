/*
 * Internals of the latency engine shared by the scenario runners
 * (scenario_single_stream.c, scenario_server.c, scenario_offline.c) and the
 * core (scenario.c). Ownership and the threading invariant are stated at the
 * top of scenario.c.
 */
#ifndef STAGEGATE_HARNESS_SCENARIO_INTERNAL_H
#define STAGEGATE_HARNESS_SCENARIO_INTERNAL_H

#include <stdatomic.h>
#include <sys/resource.h>

#include "stagegate/harness.h"

typedef struct {
    _Alignas(64) void *state;
    uint64_t overhead;
    sg_latency_histogram *hist;
    int64_t faults, csw, nivcsw, migrations;
    int64_t cpu_ns;    /* thread CPU time spent inside timed jobs */
    uint64_t warm_min; /* fastest warm-up query, in ticks (sizes the sample buffer) */
    uint32_t home;     /* the CPU tag the pinned worker set up on (sg_clock_cpu_tag) */
    bool has_home;     /* home holds (the worker is pinned) */
    bool active;
    int status;
    sg_err err;
} worker_slot;

typedef struct run_ctx {
    const sg_bench_config *c;
    const sg_workload *wl;
    worker_slot *slots;
    sg_sample *samples;
    int64_t cap;      /* sample slots available */
    int64_t samples_max; /* single-stream, offline: the most samples kept (SAMPLES_MAX, or
                            lower with STAGEGATE_BENCH_MAX_SAMPLES) */
    int64_t n_target; /* server/offline: queries in this job */
    uint64_t *sched;  /* server: due offsets in ticks */
    uint64_t t0;      /* start of the timed window (ticks) */
    uint64_t min_ticks, max_ticks;
    int64_t row_base;     /* offline: query index of this pass's first batch */
    uint64_t *stage_base; /* --breakdown: stage totals when the timed window opened */
    bool pinned;          /* workers are bound to their CPUs (not a synthetic topology's plan) */
    _Alignas(64) atomic_llong next;
    _Alignas(64) atomic_llong done_queries;
    atomic_bool buffer_full;
} run_ctx;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

typedef struct {
    int64_t faults, csw, nivcsw, cpu_ns;
} thread_usage;

static inline void rusage_thread(thread_usage *u)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    u->faults = ru.ru_minflt + ru.ru_majflt;
    u->csw = ru.ru_nvcsw + ru.ru_nivcsw;
    u->nivcsw = ru.ru_nivcsw;
    u->cpu_ns = ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
                ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* Adds what the calling worker's thread used since *u0 to its slot. */
static inline void usage_add(worker_slot *s, const thread_usage *u0)
{
    thread_usage u1;
    rusage_thread(&u1);
    s->faults += u1.faults - u0->faults;
    s->csw += u1.csw - u0->csw;
    s->nivcsw += u1.nivcsw - u0->nivcsw;
    s->cpu_ns += u1.cpu_ns - u0->cpu_ns;
}

/* Records query i's latency (ticks) in its sample slot and the worker's histogram. */
void sg_scenario_record(run_ctx *x, worker_slot *s, sg_worker *w, int64_t i, uint64_t ticks,
                        uint32_t tag0, uint32_t tag1);
/* Opens the --breakdown window: warm-up and discarded attempts must not count. */
void sg_scenario_stage_mark(run_ctx *x, sg_pool *pool);

/* The most samples one timed run keeps (single-stream's buffer, server's schedule): 50 M,
   about 1.2 GB. */
#define SAMPLES_MAX ((double)SG_SCENARIO_SAMPLES_MAX)

/*
 * What differs between scenarios, one entry per sg_scenario (scenario.c holds the table):
 * prepare sizes the sample buffer (and anything else) before the timed window; timed runs
 * the window and sets r->queries, r->cut_short, r->throughput and *wall; progress_count (may
 * be NULL: completed queries) is what the progress line counts.
 */
typedef struct {
    int (*prepare)(run_ctx *x, sg_bench_result *r, sg_err *err);
    int (*timed)(run_ctx *x, sg_pool *pool, sg_bench_result *r, double *wall, sg_err *err);
    int64_t (*progress_count)(run_ctx *x);
} sg_scenario_runner;

extern const sg_scenario_runner sg_runner_single_stream, sg_runner_server, sg_runner_offline;

#endif
