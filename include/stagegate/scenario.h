/*
 * The latency scenarios (MLPerf LoadGen's single-stream, server, offline): one
 * table entry per scenario with its name and which settings apply to it. The
 * bench command, the policy parser and the latency engine all read this table;
 * the engine's per-scenario run code sits behind the same index
 * (harness/scenario_*.c). Adding a scenario is an entry here and a runner there.
 */
#ifndef STAGEGATE_SCENARIO_H
#define STAGEGATE_SCENARIO_H

#include <math.h>

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SG_SCENARIO_SINGLE_STREAM = 0,
    SG_SCENARIO_SERVER = 1,
    SG_SCENARIO_OFFLINE = 2,
    SG_SCENARIO_COUNT
} sg_scenario;

/* What applies to a scenario. */
enum {
    SG_SCENARIO_ARRIVAL_RATE = 1 << 0, /* needs a target QPS (--qps, policy target_qps) */
    SG_SCENARIO_BATCHES = 1 << 1,      /* runs batches of --batch rows (else batch 1) */
    SG_SCENARIO_ONE_WORKER = 1 << 2,   /* one worker, closed loop (else every worker) */
    SG_SCENARIO_VERDICT = 1 << 3,      /* VALID / INVALID against a latency bound */
};

typedef struct {
    sg_scenario id;
    const char *name;
    unsigned flags;
    const char *what; /* one line for --help */
} sg_scenario_info;

extern const sg_scenario_info sg_scenarios[SG_SCENARIO_COUNT];

/* The most queries one timed run records (single-stream's samples, server's schedule: 50 M,
   about 1.2 GB) and the longest a run may take (its safety stop). The policy parser refuses a
   latency section past them, naming the field, before any model runs. */
#define SG_SCENARIO_SAMPLES_MAX 50000000LL
#define SG_SCENARIO_MAX_DURATION_S 600.0
/* The queries a server run schedules: target_qps x duration, at least min_queries. The run
   refuses more than SG_SCENARIO_SAMPLES_MAX, or a schedule past SG_SCENARIO_MAX_DURATION_S. */
static inline double sg_scenario_server_queries(double qps, double duration_s,
                                                long long min_queries)
{
    /* ceil of the product as the decimal figures mean it: 100 q/s for 0.07 s is 7 queries,
       though the binary product is 7.000000000000001 (it had scheduled 8). A product within
       1e-9 of a whole number is that number. */
    const double prod = qps * duration_s, near = round(prod);
    double want = fabs(prod - near) <= 1e-9 * fmax(1.0, near) ? near : ceil(prod);
    return want < (double)min_queries ? (double)min_queries : want;
}
/* The fewest queries a run records unless told (bench --min-queries, policy min_queries). */
#define SG_SCENARIO_DEFAULT_MIN_QUERIES 1024

/* The entry named name, or NULL. */
const sg_scenario_info *sg_scenario_find(const char *name);
const char *sg_scenario_name(sg_scenario s);
int sg_scenario_parse(const char *s); /* -1 when unknown */
/* "single-stream, server or offline", for messages. */
const char *sg_scenario_list(void);

/*
 * Which settings were given, checked against what the scenario takes: the same rule for
 * `bench` options and a policy's latency section. `who` prefixes the message and `style`
 * names the settings ("--qps" or "target_qps"). SG_OK or SG_EINPUT.
 */
typedef struct {
    bool arrival_rate, batch, breakdown, latency_bound, seed;
} sg_scenario_settings;
SG_MUST_CHECK sg_status sg_scenario_check(const sg_scenario_info *s, const sg_scenario_settings *given, bool policy,
                      sg_err *err);

#ifdef __cplusplus
}
#endif
#endif
