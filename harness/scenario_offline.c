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
    int64_t batch = x->c->batch, rows = x->wl->n_rows;
    rusage_thread(&u0);
    for (;;) {
        int64_t k = atomic_fetch_add(&x->next, 1);
        if (k >= x->n_target) break;
        int64_t r0 = k * batch, n = rows - r0 < batch ? rows - r0 : batch;
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
    (void)err;
    x->cap = (x->wl->n_rows + x->c->batch - 1) / x->c->batch * 2;
    return SG_OK;
}

static sg_status timed(run_ctx *x, sg_pool *pool, sg_bench_result *r, double *wall, sg_err *err)
{
    const sg_bench_config *c = x->c;
    double t_start = sg_now_seconds();
    int64_t per_pass = (x->wl->n_rows + c->batch - 1) / c->batch;
    sg_scenario_stage_mark(x, pool);
    for (int pass = 0;; pass++) {
        if (x->row_base + per_pass > x->cap) {
            int64_t cap = x->cap * 2 + per_pass;
            sg_sample *ns = realloc(x->samples, (size_t)cap * sizeof *ns);
            if (!ns) return sg_errf(err, SG_ENOMEM, "bench: out of memory for samples");
            /* Touched between passes so the new pages do not fault in while timed. */
            memset(ns + x->cap, 0xff, (size_t)(cap - x->cap) * sizeof *ns);
            x->samples = ns;
            x->cap = cap;
        }
        atomic_store(&x->next, 0);
        x->n_target = per_pass;
        sg_pool_run(pool, job_offline, x);
        __atomic_store_n(&x->row_base, x->row_base + per_pass, __ATOMIC_RELAXED);
        double el = sg_now_seconds() - t_start;
        if ((el >= c->min_duration_s && x->row_base >= c->min_queries) || el >= c->max_duration_s) {
            if (el < c->min_duration_s || x->row_base < c->min_queries) {
                r->cut_short = true;
                snprintf(r->cut_short_reason, sizeof r->cut_short_reason,
                         "safety stop (max duration %.0f s)", c->max_duration_s);
            }
            r->queries = x->row_base;
            *wall = el;
            r->throughput = (double)(pass + 1) * (double)x->wl->n_rows / el;
            return SG_OK;
        }
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
