/*
 * The latency engine: hwloc topology, a pool of pinned per-core workers, the
 * rdtsc clock, latency statistics and histograms, and the bench scenarios
 * (single-stream, server, offline) behind `stagegate bench` and `stagegate clock`.
 */
#ifndef STAGEGATE_HARNESS_H
#define STAGEGATE_HARNESS_H

#include <jansson.h>

#include "stagegate/common.h"
#include "stagegate/scenario.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- topology */

typedef struct sg_topology sg_topology;

/*
 * Loads the machine topology. synthetic: NULL reads the env var
 * STAGEGATE_HWLOC_SYNTHETIC and, when that is unset too, discovers the real
 * machine; otherwise an hwloc synthetic description such as
 * "pack:2 numa:1 core:4 pu:1". Synthetic topologies plan placement but cannot bind.
 */
SG_MUST_CHECK sg_status sg_topology_open(const char *synthetic, sg_topology **out, sg_err *err);
void sg_topology_close(sg_topology *t);
/* true for a synthetic topology, and for one hwloc's environment (HWLOC_SYNTHETIC,
   HWLOC_XMLFILE, HWLOC_FSROOT without HWLOC_THISSYSTEM=1) says is not this machine. */
bool sg_topology_is_synthetic(const sg_topology *t);
/* SG_EINPUT naming the variable when the topology stagegate would use is not this machine's:
   a signed report's latency and machine record must be measured here. */
SG_MUST_CHECK sg_status sg_topology_require_real(sg_err *err);
int sg_topology_cores(const sg_topology *t);
int sg_topology_pus(const sg_topology *t);
int sg_topology_numa_nodes(const sg_topology *t);

/* Where one worker runs: logical core index, OS index of its PU, OS index of its NUMA node. */
typedef struct {
    int worker;
    int core; /* hwloc logical index of the core */
    int pu;   /* OS CPU number the worker is bound to */
    int node; /* OS index of the NUMA node holding its memory */
} sg_placement;

/*
 * One worker per core among the CPUs in `cpus` ("0-3,6", OS CPU numbers; NULL,
 * "" or "all" = every core). A core listed through several SMT siblings still
 * gets one worker, on the first listed sibling. *out is malloc'ed.
 */
SG_MUST_CHECK sg_status sg_topology_plan(const sg_topology *t, const char *cpus, sg_placement **out, int *n,
                     sg_err *err);

/* ------------------------------------------------------------------- pool */

typedef struct sg_pool sg_pool;
typedef struct sg_worker sg_worker;

/* At most this many workers (a latency sample has 16 bits for its worker): a larger plan is
   refused before any thread starts. */
#define SG_POOL_MAX_WORKERS 65536
/* Pool on the real machine (or STAGEGATE_HWLOC_SYNTHETIC), one pinned worker per selected core. */
SG_MUST_CHECK sg_status sg_pool_create(const char *cpus, sg_pool **out, sg_err *err);
/* Pool on an explicit topology description (see sg_topology_open). */
SG_MUST_CHECK sg_status sg_pool_create_on(const char *synthetic, const char *cpus, sg_pool **out, sg_err *err);
void sg_pool_free(sg_pool *p);
int sg_pool_size(const sg_pool *p);
const sg_placement *sg_pool_placement(const sg_pool *p, int worker);
/* true when workers are really bound (false on synthetic topologies). */
bool sg_pool_bound(const sg_pool *p);
/* How memory binding went: "bind-strict", "bind", "first-touch" or "planned-only". */
const char *sg_pool_membind_policy(const sg_pool *p);

/*
 * Whether idle workers (between jobs) and sg_pool_run's caller (waiting for them) spin for
 * a moment before they sleep. On by default: latency runs hand out jobs back to back, and a
 * sleeping worker would add a futex wake-up to each. eval turns it off: its jobs are chunks
 * milliseconds apart, and a thread spinning in between takes its core from the reader.
 */
void sg_pool_set_spin(sg_pool *p, bool spin);

/* Runs fn(worker, ctx) on every worker at once and returns when all have returned. */
int sg_pool_run(sg_pool *p, void (*fn)(sg_worker *w, void *ctx), void *ctx);

int sg_worker_index(const sg_worker *w);
int sg_worker_cpu(const sg_worker *w);  /* OS CPU number it is bound to */
int sg_worker_node(const sg_worker *w); /* OS index of its NUMA node */
/* The number of workers in the pool this worker belongs to. */
int sg_worker_count(const sg_worker *w);

/*
 * Node-local memory, 64-byte aligned, zeroed by the calling worker (touched
 * before timing). Owned by the pool: freed by sg_pool_free. Call only from
 * inside the worker's fn. NULL when out of memory.
 */
void *sg_worker_alloc(sg_worker *w, size_t bytes);
/* NUMA node the last sg_worker_alloc was bound (or planned) to; -1 before any. */
int sg_worker_last_alloc_node(const sg_worker *w);
/* NUMA nodes of the machine the pool is on (of the synthetic topology when planned). */
int sg_worker_machine_nodes(const sg_worker *w);

/* ----------------------------------------------------------- model share */

struct sg_model;
/*
 * The copy of a model each worker predicts with. Prediction only reads a model (what a
 * worker writes is in its scratch), so the workers of one NUMA node share one copy, made --
 * and so first touched -- by the first of the node's workers to ask for it. Memory then
 * grows with the nodes, not the workers (a 500 MB forest on 64 cores of one node had been
 * 65 copies). On a machine with one node the workers share the model as loaded, unless
 * `fresh`: bench asks for a copy on every node, so that each repetition draws the model's
 * pages (and their cache sets) again. A copy is freed when the last of its workers
 * releases it.
 */
typedef struct sg_model_share sg_model_share;
SG_MUST_CHECK sg_status sg_model_share_new(const struct sg_model *m, bool fresh,
                                           sg_model_share **out, sg_err *err);
/* From a worker's set-up: the model it predicts with (shared: never freed by the caller). */
SG_MUST_CHECK sg_status sg_model_share_get(sg_model_share *s, sg_worker *w,
                                           const struct sg_model **out, sg_err *err);
/* From the same worker's teardown, once per successful get. */
void sg_model_share_release(sg_model_share *s, sg_worker *w);
/* Copies made since sg_model_share_new (the loaded model itself is not counted). */
int sg_model_share_copies_made(const sg_model_share *s);
void sg_model_share_free(sg_model_share *s);

/* ------------------------------------------------------------------ clock */

typedef enum { SG_CLOCK_TSC = 0, SG_CLOCK_GETTIME = 1 } sg_clock_source;

typedef struct {
    sg_clock_source source;
    bool cpuid_invariant_tsc;  /* cpuid 0x80000007 EDX bit 8 */
    char clocksource[64];      /* kernel clocksource, "" when unreadable */
    char fallback_reason[160]; /* why clock_gettime is used, "" when TSC */
    double tsc_hz;             /* median of the calibrations (0 when no TSC) */
    double calib_spread;       /* (max - min) / median over the calibrations */
    int calibrations;
    double ticks_per_ns; /* tsc_hz / 1e9, or 1 for clock_gettime */
} sg_clock_info;

/*
 * Decides the clock once per process (thread-safe): TSC when cpuid says the TSC
 * is invariant and the kernel trusts it, calibrated against CLOCK_MONOTONIC_RAW;
 * clock_gettime(CLOCK_MONOTONIC_RAW) otherwise or when STAGEGATE_CLOCK=gettime.
 */
const sg_clock_info *sg_clock(void);

/* A timestamp in clock ticks: `lfence; rdtsc` (start) / `rdtscp; lfence` (end), or ns. */
uint64_t sg_clock_start(void);
uint64_t sg_clock_end(void);
/* Any time (not a bracket), for schedules and deadlines. */
uint64_t sg_clock_now(void);
/* CPU tag for migration checks: TSC_AUX (rdtscp) or sched_getcpu(). */
uint32_t sg_clock_cpu_tag(void);
double sg_clock_ticks_to_ns(uint64_t ticks);
uint64_t sg_clock_ns_to_ticks(double ns);
/* Median empty-bracket cost in ticks on the calling (pinned) thread. */
uint64_t sg_clock_overhead_ticks(int reps);

/* ------------------------------------------------------------------ stats */

typedef struct {
    double p50, p90, p95, p99, p999, min, max, mean;
} sg_latency_summary;

/* Nearest rank over sorted data: the ceil(q*n)-th smallest (1-based), q in (0,1]. */
uint64_t sg_percentile_sorted(const uint64_t *sorted, int64_t n, double q);

/*
 * MLPerf LoadGen's early stopping. sg_early_stopping_min_queries: the fewest
 * queries for which `overshoots` latencies above the percentile still let us
 * claim it at `confidence` (h(t) + t in LoadGen's terms; 64 for p90 and 662 for
 * p99 at t = 1 and 99%).
 */
int64_t sg_early_stopping_min_queries(int64_t overshoots, double percentile, double confidence);

typedef struct {
    double estimate_ns;     /* the early-stopping percentile estimate (NAN when invalid) */
    bool valid;             /* enough queries for t = 1 */
    int64_t queries_needed; /* extra queries needed when not valid, else 0 */
    int64_t overshoots;     /* t: queries above the estimate that are tolerated */
} sg_early_stop;

void sg_early_stopping(const uint64_t *sorted_ns, int64_t n, double percentile, double confidence,
                       sg_early_stop *out);
/* The same without the data: fills `out` but its estimate (NAN) and returns the 0-based index
   of the estimate in sorted order (n - t), or -1 when n is too few. */
int64_t sg_early_stopping_index(int64_t n, double percentile, double confidence,
                                sg_early_stop *out);

/*
 * One timed query, in 8 bytes, so that a long run's log stays small (a 5 x 2 s run of a 40 ns
 * model keeps 60 M of them): the latency in ns in the low SG_SAMPLE_LATENCY_BITS bits (39
 * hours; a longer one is stored as that), then the worker's index (16 bits), then whether the
 * query moved between CPUs (the top bit). A worker is pinned to one CPU, which its binding
 * names (sg_bench_result.bindings).
 */
typedef struct {
    uint64_t bits;
} sg_sample;

#define SG_SAMPLE_LATENCY_BITS 47
#define SG_SAMPLE_MAX_LATENCY_NS ((UINT64_C(1) << SG_SAMPLE_LATENCY_BITS) - 1)
#define SG_SAMPLE_MAX_WORKERS SG_POOL_MAX_WORKERS
#define SG_SAMPLE_MIGRATED 1u /* the flags column of `bench --samples` */

static inline sg_sample sg_sample_make(uint64_t ns, int worker, bool migrated)
{
    if (ns > SG_SAMPLE_MAX_LATENCY_NS) ns = SG_SAMPLE_MAX_LATENCY_NS;
    sg_sample s = {ns | (uint64_t)(uint16_t)worker << SG_SAMPLE_LATENCY_BITS |
                   (uint64_t)migrated << 63};
    return s;
}
static inline uint64_t sg_sample_latency(sg_sample s)
{
    return s.bits & SG_SAMPLE_MAX_LATENCY_NS;
}
static inline int sg_sample_worker(sg_sample s)
{
    return (int)(uint16_t)(s.bits >> SG_SAMPLE_LATENCY_BITS);
}
static inline bool sg_sample_migrated(sg_sample s)
{
    return s.bits >> 63;
}

/* Samples read in place: a run's log is one span per repetition. */
typedef struct {
    const sg_sample *samples;
    int64_t n;
} sg_sample_span;

/*
 * Exact nearest-rank percentiles (p50 .. p999), min, max and mean of every latency in the
 * spans, and LoadGen's early-stopping estimates of p90 and p99 at 99% confidence (es_p90,
 * es_p99; either may be NULL). Each figure is an order statistic whose rank follows from the
 * count alone, so nothing is sorted or copied: a radix selection finds them all in a few
 * passes over the samples. The same figures as sorting every latency. At least one sample.
 * Errors: SG_ENOMEM (a few hundred KiB of counters).
 */
SG_MUST_CHECK sg_status sg_latency_summarize_spans(const sg_sample_span *spans, int n_spans,
                                                   sg_latency_summary *s, sg_early_stop *es_p90,
                                                   sg_early_stop *es_p99, sg_err *err);

/* -------------------------------------------------------------- histogram */

/*
 * Log-linear latency histogram with 3 significant digits (HdrHistogram's
 * layout: 2048 sub-buckets, values up to 2^63 ns). Each worker fills its own;
 * they are merged for the report, and a repetition keeps its merged one compacted.
 */
typedef struct sg_latency_histogram sg_latency_histogram;

sg_latency_histogram *sg_histogram_new(void);
void sg_histogram_free(sg_latency_histogram *h);
void sg_histogram_record(sg_latency_histogram *h, uint64_t value);
/* into must not be compacted; from may be. */
void sg_histogram_merge(sg_latency_histogram *into, const sg_latency_histogram *from);
/* Keeps only the non-empty buckets (a few KB, against 430 for the recording form). Every
   reader takes either form; record and merge-into need the recording form. SG_ENOMEM leaves
   h as it was. */
SG_MUST_CHECK sg_status sg_histogram_compact(sg_latency_histogram *h);
int64_t sg_histogram_count(const sg_latency_histogram *h);
/* The value at quantile q (0..1): the highest value equivalent to the bucket holding that rank. */
uint64_t sg_histogram_value_at(const sg_latency_histogram *h, double q);
/* Lowest / highest value that falls into the same bucket as v. */
uint64_t sg_histogram_lowest_equivalent(uint64_t v);
uint64_t sg_histogram_highest_equivalent(uint64_t v);
/*
 * {"unit":"ns","significant_digits":3,"sub_bucket_count":2048,"count":N,
 *  "buckets":[[bucket_low_ns, count], ...]} with only non-empty buckets, ascending.
 */
json_t *sg_histogram_json(const sg_latency_histogram *h);
SG_MUST_CHECK sg_status sg_histogram_from_json(const json_t *j, sg_latency_histogram **out, sg_err *err);
/* Text histogram (about `rows` lines) for human output. */
void sg_histogram_print(const sg_latency_histogram *h, FILE *out, int rows);

/* ---------------------------------------------------------------- bench */

/* The scenarios and what applies to each: include/stagegate/scenario.h. */

/*
 * What is timed. setup runs once on each worker before timing (allocate with
 * sg_worker_alloc / clone the model there, and touch it); run executes one
 * query of `rows` rows starting at row index `row` (mod n_rows is the
 * workload's job). Must be thread-safe across workers' states.
 */
typedef struct {
    const char *name;
    int64_t n_rows;
    size_t model_bytes;
    void *ctx;
    sg_status (*setup)(sg_worker *w, void *ctx, void **state, sg_err *err);
    void (*run)(void *state, int64_t row, int64_t rows);
    void (*teardown)(void *state); /* may be NULL */
    /* Optional breakdown: stage names and accumulated ticks per stage (NULL when absent). */
    int n_stages;
    const char *const *stage_names;
    void (*stage_ticks)(void *state, uint64_t *acc); /* adds this worker's totals into acc */
} sg_workload;

typedef struct {
    sg_scenario scenario;
    const char *cpus;      /* NULL = every core; single-stream uses the first worker only */
    double qps;            /* server target; required > 0 for server */
    double min_duration_s; /* default 1 s (offline: ignored) */
    int64_t min_queries;   /* default 1024 */
    int64_t warmup;        /* queries before timing, default 64 */
    uint64_t seed;         /* server schedule seed, default 1 */
    int64_t batch;         /* rows per query in offline (default 64); 1 otherwise */
    double max_duration_s; /* safety stop, default 600 s */
    bool breakdown;
    bool progress; /* queries done vs needed on stderr, about twice a second */
    const sg_workload *workload;
    /* Independent timed runs, each with its own pool, set-up and warm-up (default 1). The
       between-run variation they show is what `compare` judges a change against. */
    int repetitions;
    /* Server: LoadGen's latency constraint for a VALID run, on the early-stopping p99
       (default 100 ms, LoadGen's TestSettings::server_target_latency_ns). */
    double latency_bound_ns;
    /* Set by sg_bench_run for the progress line ("repetition 2/5"): which run this is. */
    int repetition_index;
} sg_bench_config;

/*
 * The warm-up queries a run makes: single-stream sizes its sample buffer from the fastest of
 * them, so it makes at least SG_SINGLE_STREAM_MIN_WARMUP (with --warmup 0 or 1 the one cold
 * query had sized it for a third of the run, which was then cut short every time).
 */
#define SG_SINGLE_STREAM_MIN_WARMUP 16
static inline int64_t sg_bench_warmup_per_worker(const sg_bench_config *c, int workers)
{
    if (c->scenario == SG_SCENARIO_SINGLE_STREAM)
        return c->warmup < SG_SINGLE_STREAM_MIN_WARMUP ? SG_SINGLE_STREAM_MIN_WARMUP : c->warmup;
    /* shared among the workers, at least one each (the first query is the cold one) */
    int64_t n = workers > 0 ? (c->warmup + workers - 1) / workers : c->warmup;
    return n < 1 ? 1 : n;
}
/* The re-warm each worker runs just before its window (at most this many of its warm-up
   count again), and the untimed queries single-stream's window job runs before query 0. */
#define SG_BENCH_REWARM_MAX 16
#define SG_SINGLE_STREAM_REWARM 8
static inline int64_t sg_bench_rewarm_per_worker(const sg_bench_config *c, int workers)
{
    int64_t n = sg_bench_warmup_per_worker(c, workers);
    return (n < SG_BENCH_REWARM_MAX ? n : SG_BENCH_REWARM_MAX) +
           (c->scenario == SG_SCENARIO_SINGLE_STREAM ? SG_SINGLE_STREAM_REWARM : 0);
}
/* ...and in all, re-warm included, what the JSON's "warmup" says (it had said --warmup's
   value while each of the workers ran warmup / workers + 1, and --warmup 0 ran one each;
   then it had left the re-warm out). */
static inline int64_t sg_bench_warmup(const sg_bench_config *c, int workers)
{
    return (sg_bench_warmup_per_worker(c, workers) + sg_bench_rewarm_per_worker(c, workers)) *
           (c->scenario == SG_SCENARIO_SINGLE_STREAM || workers < 1 ? 1 : workers);
}

/* The documented limits above which a timed run is reported as noisy (docs/latency.md). */
#define SG_NOISE_MAX_INVOLUNTARY_CSW_PER_S 50.0 /* preemptions per second per worker... */
#define SG_NOISE_MIN_INVOLUNTARY_CSW 10         /* ...and at least this many in the window */
#define SG_NOISE_MIN_ON_CPU_SHARE 0.90          /* worker CPU time / wall time of the window, */
#define SG_NOISE_MIN_WINDOW_FOR_CPU_SHARE_S 1.0 /* judged on windows at least this long */
#define SG_NOISE_MAX_MIGRATIONS 0               /* samples whose CPU changed while timed */
#define SG_NOISE_MAX_PAGE_FAULTS 0              /* faults inside the window, after warm-up */
#define SG_NOISE_MAX_THROTTLE_EVENTS 0          /* thermal throttle count increase */
/* Server: a run whose achieved QPS is below this share of the scheduled rate is INVALID. */
#define SG_SERVER_MIN_QPS_SHARE 0.95

typedef struct sg_bench_result_s {
    sg_scenario scenario;
    int64_t queries;
    /* [queries] in issue order (offline: one per batch call). A merged run (sg_bench_run) has
       none: its samples are its repetitions' (sg_bench_result_spans). */
    sg_sample *samples;
    sg_latency_summary latency;
    sg_early_stop es_p90, es_p99;
    double duration_s;
    double qps;        /* completed queries per second */
    double throughput; /* rows (samples) per second */
    double target_qps;
    int64_t batch;
    int workers;
    sg_clock_info clock;
    double overhead_ns; /* mean over workers of the subtracted bracket cost */
    int64_t migrations;
    int64_t page_faults_in_window;
    int64_t context_switches_in_window;
    int64_t peak_rss_bytes;
    size_t model_bytes;
    sg_latency_histogram *histogram; /* merged per-worker histograms */
    char membind[32];
    char workload[128];
    json_t *bindings; /* [{"worker":i,"cpu":c,"node":n}] */
    int n_stages;
    const char *const *stage_names; /* borrowed from the workload: valid while it lives */
    double *stage_ns;               /* mean ns per query per stage, [n_stages] when breakdown */
    /* What could make the figures unrepresentative. */
    int64_t involuntary_csw_in_window; /* part of context_switches_in_window */
    double on_cpu_share;               /* workers' CPU time / (workers x wall time) */
    int64_t throttle_events;           /* thermal throttle count increase; -1 unreadable */
    int n_noise_warnings;
    char noise_warnings[6][200]; /* one per limit crossed (the SG_NOISE_* limits) */
    /* Single-stream stops timing when its sample buffer (sized from the warm-up) is full,
       rather than restarting; a safety stop (max duration) also cuts a run short. */
    bool cut_short;
    char cut_short_reason[200];
    /* Server only: LoadGen-style validity. */
    double scheduled_qps; /* queries / span of the Poisson schedule */
    double latency_bound_ns;
    bool server_valid;
    char validity_reason[256];
    /* The independent repetitions (each without samples; this result merges them). */
    int repetitions;
    struct sg_bench_result_s *reps;
} sg_bench_result;

void sg_bench_config_init(sg_bench_config *c);
/*
 * c->repetitions independent runs; r merges them (samples concatenated in run order,
 * histograms added, percentiles over all samples) and keeps each run in r->reps.
 */
SG_MUST_CHECK sg_status sg_bench_run(const sg_bench_config *c, sg_bench_result *r, sg_err *err);
/* Spread of one figure over the repetitions: min, median, max of reps[i].latency.<field>. */
void sg_bench_spread(const sg_bench_result *r, size_t field_offset, double *min, double *median,
                     double *max);
void sg_bench_result_clear(sg_bench_result *r);
/* r's samples in issue order: its own array, or one span per repetition when r merges them.
   Fills at most max spans (none: NULL, 0) and returns how many there are. */
int sg_bench_result_spans(const sg_bench_result *r, sg_sample_span *spans, int max);
/* The JSON document `stagegate bench --json` prints (machine included). */
json_t *sg_bench_result_json(const sg_bench_result *r);
/* Human table, text histogram and distortion warnings. */
/* What bench reports about the model: its size and what one row costs. */
typedef struct {
    char description[256];
    char sha256[65];            /* of the model file as loaded */
    double parameters;          /* dense: weights, biases, standardisation; trees: NAN */
    size_t param_bytes;         /* parameters (or tree nodes) in memory */
    double flops_per_row;       /* dense; 0 for trees */
    double node_visits_per_row; /* trees; 0 for dense */
} sg_model_workload_info;
void sg_bench_result_print(const sg_bench_result *r, FILE *out);
/* The same, with a machine line and, when mi is not NULL, the model's size and achieved rate. */
void sg_bench_result_print_model(const sg_bench_result *r, const sg_model_workload_info *mi,
                                 FILE *out);
/* `latency_ns,worker,cpu,flags`, one row per query in issue order, written atomically. */
SG_MUST_CHECK sg_status sg_bench_write_samples(const sg_bench_result *r, const char *path, sg_err *err);

/* Machine record: CPU, cores/SMT, NUMA, governor, boost, clocksource, kernel, OpenBLAS, build. */
json_t *sg_machine_json(void);
/* Warnings about things that distort latency (governor, boost, busy SMT sibling). */
int sg_machine_warnings(const int *cpus, int n, char warnings[][160], int max);

/* Model workload for `bench`: loads model and dataset (at most max_rows rows; 0 = all). */
typedef struct sg_model_workload sg_model_workload;
struct sg_model_open_options;
/* open may be NULL (the defaults). */
SG_MUST_CHECK sg_status sg_model_workload_create(const char *model_path,
                                                 const struct sg_model_open_options *open,
                                                 const char *data_path, int64_t max_rows,
                                                 int64_t max_batch, bool breakdown,
                                                 sg_model_workload **out, sg_err *err);
/* The same on a model and an open dataset the caller already holds (gate passes its loaded
 * objects between stages): the model stays the caller's and must outlive the workload; the
 * first max_rows rows of ds are copied during the call. */
struct sg_model;
struct sg_dataset;
SG_MUST_CHECK sg_status sg_model_workload_create_from(const struct sg_model *model, struct sg_dataset *ds,
                                                      int64_t max_rows, int64_t max_batch,
                                                      bool breakdown, sg_model_workload **out,
                                                      sg_err *err);
const sg_workload *sg_model_workload_get(const sg_model_workload *mw);

void sg_model_workload_info_get(const sg_model_workload *mw, sg_model_workload_info *out);
void sg_model_workload_free(sg_model_workload *mw);

/* OpenBLAS's kernel family in use ("SkylakeX", "Haswell", ...). The first call (made by
   sg_blas_single_thread) replaces a family without AVX2 (OpenBLAS's fallback for a CPU it does
   not know, Prescott on Intel) on a CPU that runs AVX2 and FMA with the family of the nearest
   CPU OpenBLAS knows (harness/machine.c); *replaced (may be NULL) is then the family replaced,
   else NULL. The first call of either sets one BLAS thread and stops
   OpenBLAS's pool before choosing: call it before any other thread uses BLAS. */
const char *sg_blas_core(const char **replaced);
/* Who chose the family: "openblas" (from cpuid), "OPENBLAS_CORETYPE" (the user) or
   "stagegate" (in place of OpenBLAS's fallback). */
const char *sg_blas_core_chosen_by(void);
/* The OpenBLAS kernel family this CPU and OS run best ("Cooperlake", "SkylakeX", "Haswell"),
   NULL without AVX2 and FMA. */
const char *sg_blas_core_for_cpu(void);
/* An OPENBLAS_CORETYPE that OpenBLAS did not take (it chose another family), or a family in
   use whose kernels this CPU cannot run (they would end the process with SIGILL): an input
   error naming the variable. */
sg_status sg_blas_check(sg_err *err);
/* Makes OpenBLAS's sgemm buffers for `threads` threads computing at once (a pool's workers
   and the main thread) before any of them runs; SG_EINPUT naming the limit when the address
   space has no room for them. sg_pool_create calls it. */
SG_MUST_CHECK sg_status sg_blas_reserve(int threads, sg_err *err);
/* Sets OpenBLAS to one thread (workers are the parallelism); returns the previous count.
   Call it before anything forks (see harness/machine.c): the CLI does so first thing. */
int sg_blas_single_thread(void);
/* OpenBLAS build config string and current thread count. */
const char *sg_blas_config(void);
int sg_blas_threads(void);

#ifdef __cplusplus
}
#endif
#endif
