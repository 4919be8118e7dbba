/*
 * The bench scenarios, run on the pinned pool.
 *
 * Ownership: the runner (the thread calling sg_bench_run) owns the run state
 * and the sample array. During a timed job each worker writes only its own
 * per-worker slot and the sample slots of the query indices it claimed from
 * the shared atomic counter `next`; an index is claimed by exactly one worker,
 * so no two threads write the same sample. The runner reads everything after
 * sg_pool_run returned (which orders all worker writes before it).
 *
 * This file is the part every scenario shares: worker set-up and warm-up, the
 * summary, the breakdown and the repetition-free run. What differs (buffer
 * sizing, the timed loop) is behind sg_scenario_runner, one entry per
 * scenario of include/stagegate/scenario.h, in scenario_<name>.c.
 */
#define _GNU_SOURCE
#include <math.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"
#include "scenario_internal.h"

/* The runners, indexed like sg_scenarios[]. */
static const sg_scenario_runner *const runners[SG_SCENARIO_COUNT] = {
    [SG_SCENARIO_SINGLE_STREAM] = &sg_runner_single_stream,
    [SG_SCENARIO_SERVER] = &sg_runner_server,
    [SG_SCENARIO_OFFLINE] = &sg_runner_offline,
};

static unsigned flags_of(const sg_bench_config *c)
{
    return sg_scenarios[c->scenario].flags;
}

void sg_scenario_record(run_ctx *x, worker_slot *s, sg_worker *w, int64_t i, uint64_t ticks,
                        uint32_t tag0, uint32_t tag1)
{
    uint64_t ns = (uint64_t)llround(sg_clock_ticks_to_ns(ticks));
    /* Moved during the query, or before it and for good: a query on another CPU than the
       one the worker was pinned to (a move between two queries had gone unseen, and a whole
       run's second half on another CPU read as "migrations 0"). */
    const bool moved = tag0 != tag1 || (s->has_home && tag0 != s->home);
    x->samples[i] = sg_sample_make(ns, sg_worker_index(w), moved);
    s->migrations += moved;
    sg_histogram_record(s->hist, ns);
}

/* n warm-up queries on the worker's rows; the fastest one's ticks (UINT64_MAX for none). */
static uint64_t warm_up(run_ctx *x, worker_slot *s, sg_worker *w, int64_t n)
{
    const int64_t batch = flags_of(x->c) & SG_SCENARIO_BATCHES ? x->c->batch : 1;
    uint64_t fastest = UINT64_MAX;
    for (int64_t i = 0; i < n; i++) {
        uint64_t a = sg_clock_now();
        x->wl->run(s->state, (i * batch + sg_worker_index(w) * 7919) % x->wl->n_rows, batch);
        uint64_t d = sg_clock_now() - a;
        if (d < fastest) fastest = d;
    }
    return fastest;
}

static void job_setup(sg_worker *w, void *arg)
{
    run_ctx *x = arg;
    worker_slot *s = &x->slots[sg_worker_index(w)];
    if (!s->active) return;
    s->hist = sg_histogram_new();
    if (!s->hist) {
        s->status = sg_errf(&s->err, SG_ENOMEM, "bench: out of memory for worker histogram");
        return;
    }
    s->status = x->wl->setup(w, x->wl->ctx, &s->state, &s->err);
    if (s->status != SG_OK) return;
    s->overhead = sg_clock_overhead_ticks(2001);
    /* (the pool binds each worker before its first job; a synthetic topology's plan binds
       none, so there is no home to leave) */
    s->home = sg_clock_cpu_tag();
    s->has_home = x->pinned;
    /* Warm-up: caches, branch predictors and lazily mapped pages, outside the window. Shared
       among the workers that run; single-stream runs one, which does all of it (it had done
       warmup / pool size + 1: one query on a 128-CPU host, whose time then sized the buffer,
       and every run was cut short at under half its window). */
    s->warm_min = warm_up(x, s, w, sg_bench_warmup_per_worker(x->c, sg_worker_count(w)));
}

/* A few warm-up queries again, just before the window: the sample array is allocated and
   touched after the warm-up (whose timing sizes it), and filling it had evicted the model
   from the caches, so the first timed query ran cold (40-60x the p50 of a 110 ns model). */
static void job_rewarm(sg_worker *w, void *arg)
{
    run_ctx *x = arg;
    worker_slot *s = &x->slots[sg_worker_index(w)];
    if (!s->active) return;
    int64_t n = sg_bench_warmup_per_worker(x->c, sg_worker_count(w));
    (void)warm_up(x, s, w, n < SG_BENCH_REWARM_MAX ? n : SG_BENCH_REWARM_MAX);
}

/* STAGEGATE_BENCH_MAX_SAMPLES lowers the cap on samples kept (memory-bound machines, and the
 * tests that a full buffer cuts a run short): a whole number from 1 to SAMPLES_MAX, or refused
 * (it had been read with atof: "abc" and "0" left the cap as it was, "100 junk" made it 100). */
static sg_status samples_max(run_ctx *x, sg_err *err)
{
    x->samples_max = (int64_t)SAMPLES_MAX;
    const char *env = getenv("STAGEGATE_BENCH_MAX_SAMPLES");
    if (!env || !*env) return SG_OK; /* unset, or set empty */
    char *end = NULL;
    errno = 0;
    /* digits only: strtoll also skips leading blanks and takes a '+' */
    long long v = isdigit((unsigned char)env[0]) ? strtoll(env, &end, 10) : 0;
    if (!end || *end || errno || v < 1 || (double)v > SAMPLES_MAX)
        return sg_errf(err, SG_EINPUT,
                       "STAGEGATE_BENCH_MAX_SAMPLES: '%.40s' is not a whole number from 1 to %.0f",
                       env, SAMPLES_MAX);
    x->samples_max = v;
    return SG_OK;
}

static void job_teardown(sg_worker *w, void *arg)
{
    run_ctx *x = arg;
    worker_slot *s = &x->slots[sg_worker_index(w)];
    if (s->state && x->wl->teardown) x->wl->teardown(s->state);
    s->state = NULL;
}

void sg_bench_config_init(sg_bench_config *c)
{
    memset(c, 0, sizeof *c);
    c->scenario = SG_SCENARIO_SINGLE_STREAM;
    c->min_duration_s = 1.0;
    c->min_queries = SG_SCENARIO_DEFAULT_MIN_QUERIES;
    c->warmup = 64;
    c->seed = 1;
    c->batch = 64;
    c->max_duration_s = SG_SCENARIO_MAX_DURATION_S;
    c->repetitions = 1;
    c->latency_bound_ns = 100e6;
}

sg_status sg_bench_check_config(const sg_bench_config *c, sg_err *err)
{
    if (!c->workload || !c->workload->run || !c->workload->setup || c->workload->n_rows <= 0)
        return sg_errf(err, SG_EINPUT, "bench: no workload (model and data) to run");
    if ((unsigned)c->scenario >= SG_SCENARIO_COUNT)
        return sg_errf(err, SG_EINPUT, "bench: unknown scenario %d", (int)c->scenario);
    if ((flags_of(c) & SG_SCENARIO_ARRIVAL_RATE) && !(c->qps > 0))
        return sg_errf(err, SG_EINPUT, "bench: --qps must be > 0 for the %s scenario",
                       sg_scenario_name(c->scenario));
    if (c->repetitions < 1 || c->repetitions > 1000)
        return sg_errf(err, SG_EINPUT, "bench: repetitions must be in [1, 1000], got %d",
                       c->repetitions);
    if (c->min_queries < 1 || c->min_duration_s < 0 || c->warmup < 0 || c->batch < 1 ||
        !(c->max_duration_s > 0) || !(c->latency_bound_ns > 0))
        return sg_errf(err, SG_EINPUT,
                       "bench: min queries, duration, warm-up and batch must be positive");
    if (c->breakdown && (flags_of(c) & SG_SCENARIO_BATCHES))
        return sg_errf(
            err, SG_EINPUT,
            "bench: --breakdown times the batch-1 path; the offline scenario runs batches");
    return SG_OK;
}

static sg_status finish(run_ctx *x, sg_pool *pool, sg_bench_result *r, double wall_s, sg_err *err)
{
    int n = sg_pool_size(pool);
    r->histogram = sg_histogram_new();
    if (!r->histogram) return sg_errf(err, SG_ENOMEM, "bench: out of memory for the histogram");
    double overhead = 0, cpu_ns = 0;
    int active = 0;
    for (int i = 0; i < n; i++) {
        worker_slot *s = &x->slots[i];
        if (!s->active) continue;
        sg_histogram_merge(r->histogram, s->hist);
        r->page_faults_in_window += s->faults;
        r->context_switches_in_window += s->csw;
        r->involuntary_csw_in_window += s->nivcsw;
        cpu_ns += (double)s->cpu_ns;
        r->migrations += s->migrations;
        overhead += sg_clock_ticks_to_ns(s->overhead);
        active++;
    }
    /* A repetition keeps its histogram: the non-empty buckets, not the recording form. */
    if (sg_histogram_compact(r->histogram) != SG_OK)
        return sg_errf(err, SG_ENOMEM, "bench: out of memory for the histogram");
    r->overhead_ns = active ? overhead / active : 0;
    r->workers = active;
    if (r->queries == 0)
        return sg_errf(err, SG_EINTERNAL,
                       "bench: the run completed no query (next %lld, target %lld)",
                       (long long)atomic_load(&x->next), (long long)x->n_target);
    int rc = sg_bench_summarize_samples(r, err);
    if (rc != SG_OK) return rc;
    r->duration_s = wall_s;
    r->qps = (double)r->queries / wall_s;
    r->on_cpu_share = active && wall_s > 0 ? cpu_ns / 1e9 / (wall_s * active) : NAN;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_rss_bytes = (int64_t)ru.ru_maxrss * 1024;
    r->bindings = json_array();
    for (int i = 0; i < n; i++) {
        if (!x->slots[i].active) continue;
        const sg_placement *p = sg_pool_placement(pool, i);
        json_t *b = json_object();
        json_object_set_new(b, "worker", json_integer(p->worker));
        json_object_set_new(b, "cpu", json_integer(p->pu));
        json_object_set_new(b, "node", json_integer(p->node));
        json_array_append_new(r->bindings, b);
    }
    snprintf(r->membind, sizeof r->membind, "%s", sg_pool_membind_policy(pool));
    return SG_OK;
}

static bool want_breakdown(const run_ctx *x)
{
    return x->c->breakdown && x->wl->stage_ticks && x->wl->n_stages > 0;
}

/* Stage totals of every worker; called when no job is in flight. */
static void stage_totals(run_ctx *x, sg_pool *pool, uint64_t *acc)
{
    memset(acc, 0, (size_t)x->wl->n_stages * sizeof *acc);
    for (int i = 0; i < sg_pool_size(pool); i++)
        if (x->slots[i].state) x->wl->stage_ticks(x->slots[i].state, acc);
}

/* Opens the breakdown window: warm-up and discarded attempts must not count. */
void sg_scenario_stage_mark(run_ctx *x, sg_pool *pool)
{
    if (x->stage_base) stage_totals(x, pool, x->stage_base);
}

static void breakdown(run_ctx *x, sg_pool *pool, sg_bench_result *r)
{
    const sg_workload *wl = x->wl;
    if (!want_breakdown(x) || !x->stage_base) return;
    uint64_t *acc = calloc((size_t)wl->n_stages, sizeof *acc);
    r->stage_ns = calloc((size_t)wl->n_stages, sizeof *r->stage_ns);
    if (!acc || !r->stage_ns) {
        free(acc);
        free(r->stage_ns);
        r->stage_ns = NULL;
        return;
    }
    stage_totals(x, pool, acc);
    for (int k = 0; k < wl->n_stages; k++)
        r->stage_ns[k] = sg_clock_ticks_to_ns(acc[k] - x->stage_base[k]) / (double)r->queries;
    r->n_stages = wl->n_stages;
    r->stage_names = wl->stage_names;
    free(acc);
}

int sg_bench_result_spans(const sg_bench_result *r, sg_sample_span *spans, int max)
{
    if (r->samples) {
        if (max >= 1) spans[0] = (sg_sample_span){r->samples, r->queries};
        return 1;
    }
    for (int i = 0; i < r->repetitions && i < max; i++)
        spans[i] = (sg_sample_span){r->reps[i].samples, r->reps[i].queries};
    return r->repetitions;
}

sg_status sg_bench_summarize_samples(sg_bench_result *r, sg_err *err)
{
    const int n = sg_bench_result_spans(r, NULL, 0);
    sg_sample_span *spans = calloc((size_t)(n > 0 ? n : 1), sizeof *spans);
    if (!spans) return sg_errf(err, SG_ENOMEM, "bench: out of memory");
    sg_bench_result_spans(r, spans, n);
    sg_status rc = sg_latency_summarize_spans(spans, n, &r->latency, &r->es_p90, &r->es_p99, err);
    free(spans);
    return rc;
}

/* Read by the progress thread: a relaxed snapshot is all a display needs. */
static int64_t progress_count(void *arg)
{
    run_ctx *x = arg;
    const sg_scenario_runner *run = runners[x->c->scenario];
    if (run->progress_count) return run->progress_count(x);
    return atomic_load_explicit(&x->done_queries, memory_order_relaxed);
}

/* "ETA 3.2 s" from the share done so far; "" before anything is known. */
static void eta(char *buf, size_t len, double frac, double elapsed)
{
    buf[0] = 0;
    if (frac > 0.001 && frac < 1) {
        char t[32];
        sg_format_ns(elapsed * (1 - frac) / frac * 1e9, t, sizeof t);
        snprintf(buf, len, ", ETA %s", t);
    }
}

static void progress_line(void *arg, int64_t done, double elapsed, char *line, size_t len)
{
    run_ctx *x = arg;
    const sg_bench_config *c = x->c;
    /* Each repetition counts from 0 again: say which one, so that is not mistaken for a restart. */
    char rep[48] = "", d[32], goal[32], e[48], el[32];
    if (c->repetitions > 1)
        snprintf(rep, sizeof rep, " [repetition %d/%d]", c->repetition_index + 1, c->repetitions);
    sg_format_count((double)done, d, sizeof d);
    sg_format_ns(elapsed * 1e9, el, sizeof el);
    if (flags_of(c) & SG_SCENARIO_BATCHES) {
        snprintf(line, len, "bench %s%s: %s rows, %s", sg_scenario_name(c->scenario), rep, d, el);
        return;
    }
    if (flags_of(c) & SG_SCENARIO_ARRIVAL_RATE) {
        /* The schedule is fixed before timing starts: the share done is of what was scheduled. */
        int64_t total = x->n_target > 0 ? x->n_target : 1;
        double frac = (double)done / (double)total;
        sg_format_count((double)total, goal, sizeof goal);
        eta(e, sizeof e, frac, elapsed);
        snprintf(line, len, "bench %s%s: %s of %s scheduled queries (%.0f%%), %s%s",
                 sg_scenario_name(c->scenario), rep, d, goal, 100 * frac, el, e);
        return;
    }
    /* Closed loop: it ends once it has both --min-queries and the minimum duration, so the
     * share done is the smaller of the two (the line had shown early stopping's 662 for p99
     * as the goal of a run that stops at a lower --min-queries). */
    int64_t need = c->min_queries > 0 ? c->min_queries : 1;
    double fq = (double)done / (double)need,
           ft = c->min_duration_s > 0 ? elapsed / c->min_duration_s : 1;
    double frac = fmin(1, fmin(fq, ft));
    sg_format_count((double)need, goal, sizeof goal);
    char dur[32];
    sg_format_ns(c->min_duration_s * 1e9, dur, sizeof dur);
    eta(e, sizeof e, frac, elapsed);
    snprintf(line, len, "bench %s%s: %s queries (at least %s and %s), %.0f%% done, %s%s",
             sg_scenario_name(c->scenario), rep, d, goal, dur, 100 * frac, el, e);
}

sg_status sg_bench_run_once(const sg_bench_config *c, sg_bench_result *r, sg_err *err)
{
    memset(r, 0, sizeof *r);
    int rc = sg_bench_check_config(c, err);
    if (rc != SG_OK) return rc;
    const sg_clock_info *ci = sg_clock();
    sg_pool *pool = NULL;
    rc = sg_pool_create(c->cpus, &pool, err);
    if (rc != SG_OK) return rc;
    int n = sg_pool_size(pool);
    if (n > SG_SAMPLE_MAX_WORKERS) { /* a sample has 16 bits for its worker */
        sg_pool_free(pool);
        return sg_errf(err, SG_EINPUT, "bench: %d workers; a run takes at most %d", n,
                       SG_SAMPLE_MAX_WORKERS);
    }
    run_ctx *x = calloc(1, sizeof *x);
    if (!x) {
        sg_pool_free(pool);
        return sg_errf(err, SG_ENOMEM, "bench: out of memory");
    }
    x->c = c;
    x->wl = c->workload;
    x->pinned = sg_pool_bound(pool);
    x->min_ticks = sg_clock_ns_to_ticks(c->min_duration_s * 1e9);
    x->max_ticks = sg_clock_ns_to_ticks(c->max_duration_s * 1e9);
    x->slots = aligned_alloc(64, (size_t)n * sizeof *x->slots);
    if (!x->slots)
        rc = sg_errf(err, SG_ENOMEM, "bench: out of memory");
    else
        memset(x->slots, 0, (size_t)n * sizeof *x->slots);
    for (int i = 0; rc == SG_OK && i < n; i++)
        x->slots[i].active = !(flags_of(c) & SG_SCENARIO_ONE_WORKER) || i == 0;
    if (rc == SG_OK) {
        sg_pool_run(pool, job_setup, x);
        for (int i = 0; i < n && rc == SG_OK; i++)
            if (x->slots[i].active && x->slots[i].status != SG_OK) {
                rc = x->slots[i].status;
                *err = x->slots[i].err;
            }
    }
    if (rc == SG_OK) rc = samples_max(x, err);
    if (rc == SG_OK) {
        /* Size the sample array before the window so it does not fault pages in while timed. */
        rc = runners[c->scenario]->prepare(x, r, err);
    }
    if (rc == SG_OK) {
        /* Touched here, before the window: calloc would leave fresh pages to fault in while timed.
         */
        x->samples = malloc((size_t)x->cap * sizeof *x->samples);
        if (x->samples) memset(x->samples, 0xff, (size_t)x->cap * sizeof *x->samples);
        if (!x->samples)
            rc =
                sg_errf(err, SG_ENOMEM, "bench: out of memory for %lld samples", (long long)x->cap);
    }
    if (rc == SG_OK && want_breakdown(x)) {
        x->stage_base = calloc((size_t)x->wl->n_stages, sizeof *x->stage_base);
        if (!x->stage_base) rc = sg_errf(err, SG_ENOMEM, "bench: out of memory for the breakdown");
    }
    if (rc == SG_OK) sg_pool_run(pool, job_rewarm, x);
    double wall = 0;
    sg_progress_monitor *pm = NULL;
    if (rc == SG_OK && c->progress) pm = sg_progress_start(progress_count, x, progress_line);
    /* Every worker's CPU (a fixed 256 had left the rest of a larger machine uncounted). */
    int *cpus = calloc((size_t)n, sizeof *cpus), n_cpus = 0;
    for (int i = 0; cpus && i < n; i++)
        if (x->slots[i].active) cpus[n_cpus++] = sg_pool_placement(pool, i)->pu;
    int64_t thr0 = cpus ? sg_throttle_count(cpus, n_cpus) : -1;
    if (rc == SG_OK) rc = runners[c->scenario]->timed(x, pool, r, &wall, err);
    int64_t thr1 = cpus ? sg_throttle_count(cpus, n_cpus) : -1;
    free(cpus);
    r->throttle_events = thr0 >= 0 && thr1 >= 0 ? thr1 - thr0 : -1;
    sg_progress_stop(pm);
    r->scenario = c->scenario;
    r->clock = *ci;
    r->target_qps = flags_of(c) & SG_SCENARIO_ARRIVAL_RATE ? c->qps : 0;
    r->latency_bound_ns = c->latency_bound_ns;
    r->batch = flags_of(c) & SG_SCENARIO_BATCHES ? c->batch : 1;
    r->model_bytes = x->wl->model_bytes;
    snprintf(r->workload, sizeof r->workload, "%s", x->wl->name ? x->wl->name : "");
    r->samples = x->samples;
    x->samples = NULL;
    if (rc == SG_OK) rc = finish(x, pool, r, wall, err);
    if (rc == SG_OK) breakdown(x, pool, r);
    if (rc == SG_OK) sg_bench_assess(r);
    sg_pool_run(pool, job_teardown, x);
    for (int i = 0; i < n; i++)
        sg_histogram_free(x->slots[i].hist);
    free(x->slots);
    free(x->sched);
    free(x->samples);
    free(x->stage_base);
    free(x);
    sg_pool_free(pool);
    if (rc != SG_OK) sg_bench_result_clear(r);
    return rc;
}

void sg_bench_result_clear(sg_bench_result *r)
{
    for (int i = 0; r->reps && i < r->repetitions; i++)
        sg_bench_result_clear(&r->reps[i]);
    free(r->reps);
    free(r->samples);
    sg_histogram_free(r->histogram);
    if (r->bindings) json_decref(r->bindings);
    free(r->stage_ns);
    memset(r, 0, sizeof *r);
}
