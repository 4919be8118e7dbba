/*
 * Server (LoadGen): the Poisson schedule is generated before the run; query i is due at
 * t0 + sched[i]. Workers claim indices in order, wait for the due time if early, and
 * latency is end - due: a query that waited in the (implicit, unbounded) queue is charged
 * the wait, so there is no coordinated omission.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scenario_internal.h"

static void job_server(sg_worker *w, void *arg)
{
    run_ctx *x = arg;
    worker_slot *s = &x->slots[sg_worker_index(w)];
    thread_usage u0;
    rusage_thread(&u0);
    for (;;) {
        int64_t since = (int64_t)(sg_clock_now() - x->t0); /* negative during the lead-in */
        if (since > 0 && (uint64_t)since >= x->max_ticks) break;
        int64_t i = atomic_fetch_add(&x->next, 1);
        if (i >= x->n_target) break;
        uint64_t due = x->t0 + x->sched[i];
        while ((int64_t)(sg_clock_now() - due) < 0)
            cpu_relax();
        uint32_t tag0 = sg_clock_cpu_tag();
        x->wl->run(s->state, i % x->wl->n_rows, 1);
        uint64_t b = sg_clock_end();
        uint32_t tag1 = sg_clock_cpu_tag();
        /* From the scheduled arrival, not from when a worker got to it. */
        sg_scenario_record(x, s, w, i, b > due ? b - due : 0, tag0, tag1);
        atomic_fetch_add(&x->done_queries, 1);
    }
    usage_add(s, &u0);
}

static uint64_t splitmix64(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Poisson arrivals: exponential gaps with mean 1/qps, from a seeded generator. */
static void make_schedule(uint64_t *sched, int64_t n, double qps, uint64_t seed)
{
    uint64_t st = seed;
    double t_ns = 0;
    for (int64_t i = 0; i < n; i++) {
        double u = ((double)(splitmix64(&st) >> 11) + 0.5) / 9007199254740992.0; /* (0,1) */
        t_ns += -log(u) / qps * 1e9;
        sched[i] = sg_clock_ns_to_ticks(t_ns);
    }
}

static sg_status prepare(run_ctx *x, sg_bench_result *r, sg_err *err)
{
    const sg_bench_config *c = x->c;
    double want = sg_scenario_server_queries(c->qps, c->min_duration_s, c->min_queries);
    /* Refused up front: --qps 1e9 for 0.2 s had built a schedule of 2e8 queries (9.4 GB)
       and run for minutes. */
    if (want > (double)x->samples_max) /* STAGEGATE_BENCH_MAX_SAMPLES's cap too */
        return sg_errf(err, SG_EINPUT,
                       "--qps %g for %g s (or --min-queries) schedules %.0f queries, more than "
                       "the %lld a run records%s: lower --qps or --duration",
                       c->qps, c->min_duration_s, want, (long long)x->samples_max,
                       (double)x->samples_max < SAMPLES_MAX
                           ? " (the cap STAGEGATE_BENCH_MAX_SAMPLES sets; for gate, the policy's "
                             "target_qps, duration_s and min_queries)"
                           : "");
    /* So is a schedule the safety stop would cut: --qps 0.01 made 1,024 arrivals over about
       28 hours, every worker spinning on the clock until the stop. */
    if (want / c->qps > c->max_duration_s)
        return sg_errf(err, SG_EINPUT,
                       "--qps %g schedules %.0f queries over about %.3g s, more than the %.0f s "
                       "a run may take: raise --qps or lower --min-queries",
                       c->qps, want, want / c->qps, c->max_duration_s);
    x->n_target = (int64_t)want;
    x->cap = x->n_target;
    x->sched = malloc((size_t)x->n_target * sizeof *x->sched);
    if (!x->sched)
        return sg_errf(err, SG_ENOMEM, "bench: out of memory for a schedule of %lld queries",
                       (long long)x->n_target);
    make_schedule(x->sched, x->n_target, c->qps, c->seed);
    double span = sg_clock_ticks_to_ns(x->sched[x->n_target - 1]) / 1e9;
    r->scheduled_qps = span > 0 ? (double)x->n_target / span : c->qps;
    return SG_OK;
}

static int timed(run_ctx *x, sg_pool *pool, sg_bench_result *r, double *wall, sg_err *err)
{
    (void)err;
    const sg_bench_config *c = x->c;
    double t_start = sg_now_seconds();
    sg_scenario_stage_mark(x, pool);
    x->t0 = sg_clock_now() + sg_clock_ns_to_ticks(1e6); /* 1 ms lead to wake every worker */
    sg_pool_run(pool, job_server, x);
    r->queries = atomic_load(&x->next) < x->n_target ? atomic_load(&x->next) : x->n_target;
    t_start += 1e-3;
    if (r->queries < x->n_target) {
        r->cut_short = true;
        snprintf(r->cut_short_reason, sizeof r->cut_short_reason,
                 "safety stop (max duration %.0f s) after %lld of %lld scheduled queries",
                 c->max_duration_s, (long long)r->queries, (long long)x->n_target);
    }
    *wall = sg_now_seconds() - t_start;
    r->throughput = (double)r->queries / *wall;
    return SG_OK;
}

const sg_scenario_runner sg_runner_server = {prepare, timed, NULL};
