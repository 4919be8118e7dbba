/*
 * Offline (LoadGen): every row, every worker, --batch rows per call; passes over the set
 * repeat until the minimum duration and query count are met. Reports samples/s.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scenario_internal.h"

static void job_offline(sg_worker *w, void *arg)
{
    run_ctx *x = arg;
    worker_slot *s = &x->slots[sg_worker_index(w)];
    thread_usage u0;
    int64_t batch = x->c->batch, rows = x->wl->n_rows, per_pass = (rows + batch - 1) / batch;
    rusage_thread(&u0);
    for (;;) {
        int64_t k = atomic_fetch_add(&x->next, 1);
        if (k >= x->n_target) break;
        /* call k of this job's passes over the set */
        int64_t r0 = k % per_pass * batch, n = rows - r0 < batch ? rows - r0 : batch;
        uint32_t tag0 = sg_clock_cpu_tag();
        uint64_t a = sg_clock_start();
        x->wl->run(s->state, r0, n);
        uint64_t b = sg_clock_end();
        uint32_t tag1 = sg_clock_cpu_tag();
        uint64_t d = b - a;
        sg_scenario_record(x, s, w, x->row_base + k, d > s->overhead ? d - s->overhead : 0, tag0,
                           tag1);
    }
    usage_add(s, &u0);
}

static int prepare(run_ctx *x, sg_bench_result *r, sg_err *err)
{
    (void)r;
    int64_t per_pass = (x->wl->n_rows + x->c->batch - 1) / x->c->batch;
    if (per_pass > x->samples_max)
        return sg_errf(err, SG_EINPUT,
                       "offline: one pass over the set is %lld calls of --batch %lld, more than the "
                       "%lld a run records (raise --batch)",
                       (long long)per_pass, (long long)x->c->batch, (long long)x->samples_max);
    if (x->c->min_queries > x->samples_max)
        return sg_errf(err, SG_EINPUT, "--min-queries %lld is more than the %lld calls a run records",
                       (long long)x->c->min_queries, (long long)x->samples_max);
    x->cap = per_pass * 2 > x->samples_max ? x->samples_max : per_pass * 2;
    return SG_OK;
}

/* Each job hands the workers enough passes over the set to last about this long: a job
   per pass had cost about 1 ms of hand-over per pass on a small set once every CPU had a
   worker (2,000 rows: 2.0 M rows/s on 2 workers against 10.9 M on one). */
#define JOB_SECONDS 0.02

static sg_status timed(run_ctx *x, sg_pool *pool, sg_bench_result *r, double *wall, sg_err *err)
{
    const sg_bench_config *c = x->c;
    double t_start = sg_now_seconds();
    int64_t per_pass = (x->wl->n_rows + c->batch - 1) / c->batch, passes = 1, done = 0;
    sg_scenario_stage_mark(x, pool);
    for (;;) {
        int64_t calls = per_pass * passes;
        /* At most the sample cap is kept, as in the other scenarios: the log had grown for
           the whole run (6.6 GB in 30 s of a 1-feature model at batch 1), and a run of a few
           minutes would have been killed for memory. A full log ends the run, which says so. */
        if (x->row_base + calls > x->samples_max) {
            passes = (x->samples_max - x->row_base) / per_pass;
            if (passes < 1) {
                double el = sg_now_seconds() - t_start;
                r->cut_short = true;
                snprintf(r->cut_short_reason, sizeof r->cut_short_reason,
                         "sample buffer full after %lld calls, %.2f s of the %.2f s asked",
                         (long long)x->row_base, el, c->min_duration_s);
                r->queries = x->row_base;
                *wall = el;
                r->throughput = el > 0 ? (double)done * (double)x->wl->n_rows / el : 0;
                return SG_OK;
            }
            calls = per_pass * passes;
        }
        if (x->row_base + calls > x->cap) {
            int64_t cap = x->cap * 2 + calls;
            if (cap > x->samples_max) cap = x->samples_max;
            sg_sample *ns = realloc(x->samples, (size_t)cap * sizeof *ns);
            if (!ns) return sg_errf(err, SG_ENOMEM, "bench: out of memory for samples");
            /* Touched between jobs so the new pages do not fault in while timed. */
            memset(ns + x->cap, 0xff, (size_t)(cap - x->cap) * sizeof *ns);
            x->samples = ns;
            x->cap = cap;
        }
        double t_job = sg_now_seconds();
        atomic_store(&x->next, 0);
        x->n_target = calls;
        sg_pool_run(pool, job_offline, x);
        __atomic_store_n(&x->row_base, x->row_base + calls, __ATOMIC_RELAXED);
        done += passes;
        double now = sg_now_seconds(), el = now - t_start;
        if ((el >= c->min_duration_s && x->row_base >= c->min_queries) || el >= c->max_duration_s) {
            if (el < c->min_duration_s || x->row_base < c->min_queries) {
                r->cut_short = true;
                snprintf(r->cut_short_reason, sizeof r->cut_short_reason,
                         "safety stop (max duration %.0f s)", c->max_duration_s);
            }
            r->queries = x->row_base;
            *wall = el;
            r->throughput = (double)done * (double)x->wl->n_rows / el;
            return SG_OK;
        }
        /* The next job: JOB_SECONDS long at this job's pace, at most double, and no longer
           than what is left of the minimum duration (or a pass). */
        double per = (now - t_job) / (double)passes, left = c->min_duration_s - el;
        int64_t want = per > 0 ? (int64_t)(JOB_SECONDS / per) : passes * 2;
        if (left > 0 && per > 0 && (double)want * per > left) want = (int64_t)(left / per) + 1;
        passes = want < 1 ? 1 : want > passes * 2 ? passes * 2 : want;
    }
}

/* Rows done so far (read by the progress thread: a relaxed snapshot is enough). */
static int64_t progress_count(run_ctx *x)
{
    int64_t k = atomic_load_explicit(&x->next, memory_order_relaxed);
    int64_t base = __atomic_load_n(&x->row_base, __ATOMIC_RELAXED);
    return (base + (k < x->n_target ? k : x->n_target)) * x->c->batch;
}

const sg_scenario_runner sg_runner_offline = {prepare, timed, progress_count};
