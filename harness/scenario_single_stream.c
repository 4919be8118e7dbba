/*
 * Single-stream (LoadGen): one worker, closed loop, batch 1; each query takes the next row.
 * The sample buffer is sized from the fastest warm-up query and the loop's own cost so the
 * window never fills it;
 * if it does, the run stops there and says so (it is never restarted).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scenario_internal.h"


static void job_single_stream(sg_worker *w, void *arg)
{
    run_ctx *x = arg;
    worker_slot *s = &x->slots[sg_worker_index(w)];
    if (!s->active) return;
    int64_t i = 0;
    thread_usage u0;
    rusage_thread(&u0);
    /* The last untimed queries run here, in the window's own job, with nothing between them
       and query 0: after the pool's re-warm job the worker slept on the pool's condition
       variable while the main thread read the throttle counters, and getrusage ran just
       before the loop, so the first timed query ran cold (1.3-4x the median on a 3 us MLP)
       and was the early-stopping p90 of 64-query runs in 9 of 10. Rows from the end of the
       set, so the window's first rows are not cached by it. */
    for (int64_t k = 1; k <= SG_SINGLE_STREAM_REWARM; k++)
        x->wl->run(s->state, (x->wl->n_rows - k % x->wl->n_rows) % x->wl->n_rows, 1);
    uint64_t t0 = sg_clock_now();
    for (;; i++) {
        uint64_t now = sg_clock_now();
        if (i >= x->c->min_queries && now - t0 >= x->min_ticks) break;
        if (now - t0 >= x->max_ticks) break;
        /* Never restart a timed run: stop here, and the result says it was cut short. */
        if (i >= x->cap) {
            atomic_store(&x->buffer_full, true);
            break;
        }
        if ((i & 255) == 0) atomic_store_explicit(&x->done_queries, i, memory_order_relaxed);
        uint32_t tag0 = sg_clock_cpu_tag();
        uint64_t a = sg_clock_start();
        x->wl->run(s->state, i % x->wl->n_rows, 1);
        uint64_t b = sg_clock_end();
        uint32_t tag1 = sg_clock_cpu_tag();
        uint64_t d = b - a;
        sg_scenario_record(x, s, w, i, d > s->overhead ? d - s->overhead : 0, tag0, tag1);
    }
    usage_add(s, &u0);
    atomic_store(&x->done_queries, i);
}

/*
 * What one turn of job_single_stream's loop costs besides the query: its clock reads and CPU
 * tags (the recording is left out, so this is a lower bound). The least of 16 batches, so a
 * preemption of this thread does not inflate it. For a 40 ns model the loop's own cost is
 * several times the query's, and leaving it out had sized the buffer at the 50 M-sample cap:
 * 1.2 GB touched per repetition, a third of a 2-second gate's wall time in page faults.
 */
static double loop_overhead_ns(void)
{
    uint64_t best = UINT64_MAX, sink = 0;
    enum { TURNS = 256 };
    for (int b = 0; b < 16; b++) {
        uint64_t t0 = sg_clock_now();
        for (int i = 0; i < TURNS; i++) {
            uint32_t tag0 = sg_clock_cpu_tag();
            uint64_t a = sg_clock_start(), e = sg_clock_end();
            uint32_t tag1 = sg_clock_cpu_tag();
            sink += (e - a) + (tag0 ^ tag1) + sg_clock_now();
        }
        uint64_t d = sg_clock_now() - t0;
        if (d < best) best = d;
    }
    __asm__ volatile("" : : "r"(sink));
    return sg_clock_ticks_to_ns(best) / TURNS;
}

static int prepare(run_ctx *x, sg_bench_result *r, sg_err *err)
{
    (void)r;
    const sg_bench_config *c = x->c;
    /* Refused up front, as the server scenario does: the buffer had been min_queries on top
       of the cap, and --min-queries 1e9 zero-filled 24 GB (killed by the OOM killer). */
    if (c->min_queries > x->samples_max) /* STAGEGATE_BENCH_MAX_SAMPLES's cap too */
        return sg_errf(err, SG_EINPUT,
                       "--min-queries %lld is more than the %lld queries a run records%s",
                       (long long)c->min_queries, (long long)x->samples_max,
                       (double)x->samples_max < SAMPLES_MAX
                           ? " (the cap STAGEGATE_BENCH_MAX_SAMPLES sets; for gate, min_queries "
                             "is the policy's, or the early-stopping minimum)"
                           : "");
    /* The fastest warm-up query bounds how many queries the window can hold: sized
       from it, with a margin, the buffer does not fill, and the run is never restarted.
       Past SAMPLES_MAX the run is cut short, and says so. The margin is 2: the first
       queries run colder than the steady state (caches, branch predictors, the clock's
       frequency), and an outside check measured warm-up queries at 1.6-1.9x the steady
       state of a 1.2 us model, which a margin of 1.25 cut short in 76 of 180 runs. */
    double q_ns = sg_clock_ticks_to_ns(x->slots[0].warm_min);
    if (!(q_ns > 0)) q_ns = 1;
    /* A cost both the warm-up minimum and the steady state pay: adding it keeps the margin. */
    double loop_ns = loop_overhead_ns();
    if (loop_ns > 0 && isfinite(loop_ns)) q_ns += loop_ns;
    double est = c->min_duration_s * 1e9 / q_ns * 2.0 + 1024, most = (double)x->samples_max;
    x->cap = c->min_queries + (int64_t)(est < most ? est : most);
    if ((double)x->cap > most) x->cap = (int64_t)most;
    return SG_OK;
}

static int timed(run_ctx *x, sg_pool *pool, sg_bench_result *r, double *wall, sg_err *err)
{
    (void)err;
    const sg_bench_config *c = x->c;
    double t_start = sg_now_seconds();
    sg_scenario_stage_mark(x, pool);
    sg_pool_run(pool, job_single_stream, x);
    r->queries = atomic_load(&x->done_queries);
    double el = sg_now_seconds() - t_start;
    if (atomic_load(&x->buffer_full)) {
        r->cut_short = true;
        snprintf(r->cut_short_reason, sizeof r->cut_short_reason,
                 "sample buffer full after %lld queries, %.2f s of the %.2f s asked",
                 (long long)r->queries, el, c->min_duration_s);
    } else if (r->queries < c->min_queries || el < c->min_duration_s) {
        r->cut_short = true;
        snprintf(r->cut_short_reason, sizeof r->cut_short_reason,
                 "safety stop (max duration %.0f s) after %lld queries", c->max_duration_s,
                 (long long)r->queries);
    }
    *wall = sg_now_seconds() - t_start;
    r->throughput = (double)r->queries / *wall;
    return SG_OK;
}

const sg_scenario_runner sg_runner_single_stream = {prepare, timed, NULL};
