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
 * Server: the Poisson schedule is generated before the run; query i is due at
 * t0 + sched[i]. Workers claim indices in order, wait for the due time if
 * early, and latency is end - due: a query that waited in the (implicit,
 * unbounded) queue is charged the wait, so there is no coordinated omission.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_internal.h"
#include "stagegate/harness.h"

/* 50M samples (1.2 GB): the most one timed run keeps. */
#define SAMPLES_MAX 5e7

typedef struct {
    _Alignas(64) void *state;
    uint64_t overhead;
    sg_latency_histogram *hist;
    int64_t faults, csw, nivcsw, migrations;
    int64_t cpu_ns;    /* thread CPU time spent inside timed jobs */
    uint64_t warm_min; /* fastest warm-up query, in ticks (sizes the sample buffer) */
    bool active;
    int status;
    sg_err err;
} worker_slot;

typedef struct {
    const sg_bench_config *c;
    const sg_workload *wl;
    worker_slot *slots;
    sg_sample *samples;
    int64_t cap;      /* sample slots available */
    int64_t n_target; /* server/offline: queries in this job */
    uint64_t *sched;  /* server: due offsets in ticks */
    uint64_t t0;      /* start of the timed window (ticks) */
    uint64_t min_ticks, max_ticks;
    int64_t warmup;
    int64_t row_base;     /* offline: query index of this pass's first batch */
    uint64_t *stage_base; /* --breakdown: stage totals when the timed window opened */
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

static void rusage_thread(thread_usage *u)
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
static void usage_add(worker_slot *s, const thread_usage *u0)
{
    thread_usage u1;
    rusage_thread(&u1);
    s->faults += u1.faults - u0->faults;
    s->csw += u1.csw - u0->csw;
    s->nivcsw += u1.nivcsw - u0->nivcsw;
    s->cpu_ns += u1.cpu_ns - u0->cpu_ns;
}

static void record(run_ctx *x, worker_slot *s, sg_worker *w, int64_t i, uint64_t ticks,
                   uint32_t tag0, uint32_t tag1)
{
    uint64_t ns = (uint64_t)llround(sg_clock_ticks_to_ns(ticks));
    sg_sample *smp = &x->samples[i];
    smp->latency_ns = ns;
    smp->worker = sg_worker_index(w);
    smp->cpu = sg_worker_cpu(w);
    smp->flags = tag0 != tag1 ? SG_SAMPLE_MIGRATED : 0;
    s->migrations += tag0 != tag1;
    sg_histogram_record(s->hist, ns);
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
    /* Warm-up: caches, branch predictors and lazily mapped pages, outside the window. */
    int64_t n = x->warmup / sg_worker_count(w) + 1;
    int64_t batch = x->c->scenario == SG_SCENARIO_OFFLINE ? x->c->batch : 1;
    s->warm_min = UINT64_MAX;
    for (int64_t i = 0; i < n; i++) {
        uint64_t a = sg_clock_now();
        x->wl->run(s->state, (i * batch + sg_worker_index(w) * 7919) % x->wl->n_rows, batch);
        uint64_t d = sg_clock_now() - a;
        if (d < s->warm_min) s->warm_min = d;
    }
}

static void job_single_stream(sg_worker *w, void *arg)
{
    run_ctx *x = arg;
    worker_slot *s = &x->slots[sg_worker_index(w)];
    if (!s->active) return;
    int64_t i = 0;
    thread_usage u0;
    rusage_thread(&u0);
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
        record(x, s, w, i, d > s->overhead ? d - s->overhead : 0, tag0, tag1);
    }
    usage_add(s, &u0);
    atomic_store(&x->done_queries, i);
}

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
        record(x, s, w, i, b > due ? b - due : 0, tag0, tag1);
        atomic_fetch_add(&x->done_queries, 1);
    }
    usage_add(s, &u0);
}

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
        record(x, s, w, x->row_base + k, d > s->overhead ? d - s->overhead : 0, tag0, tag1);
    }
    usage_add(s, &u0);
}

static void job_teardown(sg_worker *w, void *arg)
{
    run_ctx *x = arg;
    worker_slot *s = &x->slots[sg_worker_index(w)];
    if (s->state && x->wl->teardown) x->wl->teardown(s->state);
    s->state = NULL;
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

void sg_bench_config_init(sg_bench_config *c)
{
    memset(c, 0, sizeof *c);
    c->scenario = SG_SCENARIO_SINGLE_STREAM;
    c->min_duration_s = 1.0;
    c->min_queries = 1024;
    c->warmup = 64;
    c->seed = 1;
    c->batch = 64;
    c->max_duration_s = 600;
    c->repetitions = 1;
    c->latency_bound_ns = 100e6;
}

int sg_bench_check_config(const sg_bench_config *c, sg_err *err)
{
    if (!c->workload || !c->workload->run || !c->workload->setup || c->workload->n_rows <= 0)
        return sg_errf(err, SG_EINPUT, "bench: no workload (model and data) to run");
    if (c->scenario == SG_SCENARIO_SERVER && !(c->qps > 0))
        return sg_errf(err, SG_EINPUT, "bench: --qps must be > 0 for the server scenario");
    if (c->repetitions < 1 || c->repetitions > 1000)
        return sg_errf(err, SG_EINPUT, "bench: repetitions must be in [1, 1000], got %d",
                       c->repetitions);
    if (c->min_queries < 1 || c->min_duration_s < 0 || c->warmup < 0 || c->batch < 1 ||
        !(c->max_duration_s > 0) || !(c->latency_bound_ns > 0))
        return sg_errf(err, SG_EINPUT,
                       "bench: min queries, duration, warm-up and batch must be positive");
    if (c->breakdown && c->scenario == SG_SCENARIO_OFFLINE)
        return sg_errf(
            err, SG_EINPUT,
            "bench: --breakdown times the batch-1 path; the offline scenario runs batches");
    return SG_OK;
}

static int finish(run_ctx *x, sg_pool *pool, sg_bench_result *r, double wall_s, sg_err *err)
{
    int n = sg_pool_size(pool);
    r->histogram = sg_histogram_new();
    uint64_t *lat = malloc((size_t)(r->queries > 0 ? r->queries : 1) * sizeof *lat);
    if (!r->histogram || !lat) {
        free(lat);
        return sg_errf(err, SG_ENOMEM, "bench: out of memory summarising %lld samples",
                       (long long)r->queries);
    }
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
    r->overhead_ns = active ? overhead / active : 0;
    r->workers = active;
    if (r->queries == 0) {
        free(lat);
        return sg_errf(err, SG_EINTERNAL,
                       "bench: the run completed no query (next %lld, target %lld)",
                       (long long)atomic_load(&x->next), (long long)x->n_target);
    }
    for (int64_t i = 0; i < r->queries; i++)
        lat[i] = r->samples[i].latency_ns;
    sg_latency_summarize(lat, r->queries, &r->latency);
    sg_early_stopping(lat, r->queries, 0.90, 0.99, &r->es_p90);
    sg_early_stopping(lat, r->queries, 0.99, 0.99, &r->es_p99);
    free(lat);
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
static void stage_mark(run_ctx *x, sg_pool *pool)
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

/* Read by the progress thread: a relaxed snapshot is all a display needs. */
static int64_t progress_count(void *arg)
{
    run_ctx *x = arg;
    if (x->c->scenario == SG_SCENARIO_OFFLINE) {
        int64_t k = atomic_load_explicit(&x->next, memory_order_relaxed);
        int64_t base = __atomic_load_n(&x->row_base, __ATOMIC_RELAXED);
        return (base + (k < x->n_target ? k : x->n_target)) * x->c->batch;
    }
    return atomic_load_explicit(&x->done_queries, memory_order_relaxed);
}

static void progress_line(void *arg, int64_t done, double elapsed, char *line, size_t len)
{
    run_ctx *x = arg;
    const sg_bench_config *c = x->c;
    if (c->scenario == SG_SCENARIO_OFFLINE) {
        snprintf(line, len, "bench offline [repetition %d/%d]: %lld rows  %.1fs",
                 c->repetition_index + 1, c->repetitions, (long long)done, elapsed);
        return;
    }
    /* Queries LoadGen's early stopping needs for p99 with no overshoot beyond the allowance. */
    int64_t need_p99 = sg_early_stopping_min_queries(1, 0.99, 0.99);
    int64_t need = c->min_queries > need_p99 ? c->min_queries : need_p99;
    /* Each repetition counts from 0 again: say which one, so that is not mistaken for a restart. */
    char rep[48] = "";
    if (c->repetitions > 1)
        snprintf(rep, sizeof rep, " [repetition %d/%d]", c->repetition_index + 1, c->repetitions);
    snprintf(
        line, len,
        "bench %s%s: %lld queries (needs >= %lld; p99 early stopping >= %lld)  %.1fs (min %.1fs)",
        c->scenario == SG_SCENARIO_SERVER ? "server" : "single-stream", rep, (long long)done,
        (long long)need, (long long)need_p99, elapsed, c->min_duration_s);
}

static int timed_run(run_ctx *x, sg_pool *pool, sg_bench_result *r, double *wall, sg_err *err)
{
    const sg_bench_config *c = x->c;
    double t_start = sg_now_seconds();
    if (c->scenario == SG_SCENARIO_SINGLE_STREAM) {
        stage_mark(x, pool);
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
    } else if (c->scenario == SG_SCENARIO_SERVER) {
        stage_mark(x, pool);
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
    } else {
        int64_t per_pass = (x->wl->n_rows + c->batch - 1) / c->batch;
        stage_mark(x, pool);
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
            if ((el >= c->min_duration_s && x->row_base >= c->min_queries) ||
                el >= c->max_duration_s) {
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
    *wall = sg_now_seconds() - t_start;
    r->throughput = (double)r->queries / *wall;
    return SG_OK;
}

int sg_bench_run_once(const sg_bench_config *c, sg_bench_result *r, sg_err *err)
{
    memset(r, 0, sizeof *r);
    int rc = sg_bench_check_config(c, err);
    if (rc != SG_OK) return rc;
    const sg_clock_info *ci = sg_clock();
    sg_pool *pool = NULL;
    rc = sg_pool_create(c->cpus, &pool, err);
    if (rc != SG_OK) return rc;
    int n = sg_pool_size(pool);
    run_ctx *x = calloc(1, sizeof *x);
    if (!x) {
        sg_pool_free(pool);
        return sg_errf(err, SG_ENOMEM, "bench: out of memory");
    }
    x->c = c;
    x->wl = c->workload;
    x->warmup = c->warmup;
    x->min_ticks = sg_clock_ns_to_ticks(c->min_duration_s * 1e9);
    x->max_ticks = sg_clock_ns_to_ticks(c->max_duration_s * 1e9);
    x->slots = aligned_alloc(64, (size_t)n * sizeof *x->slots);
    if (!x->slots)
        rc = sg_errf(err, SG_ENOMEM, "bench: out of memory");
    else
        memset(x->slots, 0, (size_t)n * sizeof *x->slots);
    for (int i = 0; rc == SG_OK && i < n; i++)
        x->slots[i].active = c->scenario != SG_SCENARIO_SINGLE_STREAM || i == 0;
    if (rc == SG_OK) {
        sg_pool_run(pool, job_setup, x);
        for (int i = 0; i < n && rc == SG_OK; i++)
            if (x->slots[i].active && x->slots[i].status != SG_OK) {
                rc = x->slots[i].status;
                *err = x->slots[i].err;
            }
    }
    if (rc == SG_OK) {
        /* Size the sample array before the window so it does not fault pages in while timed. */
        if (c->scenario == SG_SCENARIO_SERVER) {
            x->n_target = (int64_t)ceil(c->qps * c->min_duration_s);
            if (x->n_target < c->min_queries) x->n_target = c->min_queries;
            x->cap = x->n_target;
            x->sched = malloc((size_t)x->n_target * sizeof *x->sched);
            if (x->sched) {
                make_schedule(x->sched, x->n_target, c->qps, c->seed);
                double span = sg_clock_ticks_to_ns(x->sched[x->n_target - 1]) / 1e9;
                r->scheduled_qps = span > 0 ? (double)x->n_target / span : c->qps;
            }
        } else if (c->scenario == SG_SCENARIO_SINGLE_STREAM) {
            /* The fastest warm-up query bounds how many queries the window can hold: sized
               from it (with a margin for a faster clock later) the buffer does not fill, and
               the run is never restarted. Past SAMPLES_MAX the run is cut short, and says so. */
            double q_ns = sg_clock_ticks_to_ns(x->slots[0].warm_min);
            if (!(q_ns > 0)) q_ns = 1;
            double est = c->min_duration_s * 1e9 / q_ns * 1.25 + 1024, most = SAMPLES_MAX;
            /* STAGEGATE_BENCH_MAX_SAMPLES lowers the cap (memory-bound machines, and the test
               that a full buffer cuts a run short instead of restarting it). */
            const char *env = getenv("STAGEGATE_BENCH_MAX_SAMPLES");
            if (env && atof(env) >= 1 && atof(env) < most) most = atof(env);
            x->cap = c->min_queries + (int64_t)(est < most ? est : most);
            if (env && atof(env) >= 1 && (double)x->cap > most) x->cap = (int64_t)most;
        } else {
            x->cap = (x->wl->n_rows + c->batch - 1) / c->batch * 2;
        }
        /* Touched here, before the window: calloc would leave fresh pages to fault in while timed.
         */
        x->samples = malloc((size_t)x->cap * sizeof *x->samples);
        if (x->samples) memset(x->samples, 0xff, (size_t)x->cap * sizeof *x->samples);
        if (!x->samples || (c->scenario == SG_SCENARIO_SERVER && !x->sched))
            rc =
                sg_errf(err, SG_ENOMEM, "bench: out of memory for %lld samples", (long long)x->cap);
    }
    if (rc == SG_OK && want_breakdown(x)) {
        x->stage_base = calloc((size_t)x->wl->n_stages, sizeof *x->stage_base);
        if (!x->stage_base) rc = sg_errf(err, SG_ENOMEM, "bench: out of memory for the breakdown");
    }
    double wall = 0;
    sg_progress_monitor *pm = NULL;
    if (rc == SG_OK && c->progress) pm = sg_progress_start(progress_count, x, progress_line);
    int cpus[256], n_cpus = 0;
    for (int i = 0; i < n && n_cpus < 256; i++)
        if (x->slots[i].active) cpus[n_cpus++] = sg_pool_placement(pool, i)->pu;
    int64_t thr0 = sg_throttle_count(cpus, n_cpus);
    if (rc == SG_OK) rc = timed_run(x, pool, r, &wall, err);
    int64_t thr1 = sg_throttle_count(cpus, n_cpus);
    r->throttle_events = thr0 >= 0 && thr1 >= 0 ? thr1 - thr0 : -1;
    sg_progress_stop(pm);
    r->scenario = c->scenario;
    r->clock = *ci;
    r->target_qps = c->scenario == SG_SCENARIO_SERVER ? c->qps : 0;
    r->latency_bound_ns = c->latency_bound_ns;
    r->batch = c->scenario == SG_SCENARIO_OFFLINE ? c->batch : 1;
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
