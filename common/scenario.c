/* The table of latency scenarios, and the one rule for which settings each takes. */
#include "stagegate/scenario.h"

#include <pthread.h>
#include <string.h>

const sg_scenario_info sg_scenarios[SG_SCENARIO_COUNT] = {
    {SG_SCENARIO_SINGLE_STREAM, "single-stream", SG_SCENARIO_ONE_WORKER,
     "closed loop, batch 1, one worker; each query takes the next row"},
    {SG_SCENARIO_SERVER, "server", SG_SCENARIO_ARRIVAL_RATE | SG_SCENARIO_VERDICT,
     "open loop, seeded Poisson arrivals at a target QPS, every worker pulls from the queue; "
     "latency counts from the scheduled arrival"},
    {SG_SCENARIO_OFFLINE, "offline", SG_SCENARIO_BATCHES,
     "every row, every worker, batches of rows per call (samples/s)"},
};

const sg_scenario_info *sg_scenario_find(const char *name)
{
    for (int i = 0; name && i < SG_SCENARIO_COUNT; i++)
        if (!strcmp(name, sg_scenarios[i].name)) return &sg_scenarios[i];
    return NULL;
}

const char *sg_scenario_name(sg_scenario s)
{
    return (unsigned)s < SG_SCENARIO_COUNT ? sg_scenarios[s].name : "unknown";
}

int sg_scenario_parse(const char *s)
{
    const sg_scenario_info *i = sg_scenario_find(s);
    return i ? (int)i->id : -1;
}

static char list_buf[256];

static void make_list(void)
{
    for (int i = 0; i < SG_SCENARIO_COUNT; i++) {
        if (i) strcat(list_buf, i == SG_SCENARIO_COUNT - 1 ? " or " : ", ");
        strcat(list_buf, sg_scenarios[i].name);
    }
}

const char *sg_scenario_list(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_list);
    return list_buf;
}

sg_status sg_scenario_check(const sg_scenario_info *s, const sg_scenario_settings *given, bool policy,
                      sg_err *err)
{
    const char *qps = policy ? "target_qps" : "--qps";
    bool rate = s->flags & SG_SCENARIO_ARRIVAL_RATE;
    if (rate && !given->arrival_rate)
        return sg_errf(err, SG_EINPUT,
                       "%s is required for the %s scenario (the Poisson arrival "
                       "rate)",
                       qps, s->name);
    if (!rate && given->arrival_rate)
        return sg_errf(err, SG_EINPUT, "%s applies to the server scenario only", qps);
    if (!rate && given->seed)
        return sg_errf(err, SG_EINPUT,
                       "--seed applies to the server scenario only (it seeds the arrival "
                       "schedule)");
    if (given->breakdown && (s->flags & SG_SCENARIO_BATCHES))
        return sg_errf(err, SG_EINPUT,
                       "--breakdown applies to the batch-1 scenarios (single-stream, server)");
    if (given->batch && !(s->flags & SG_SCENARIO_BATCHES))
        return sg_errf(err, SG_EINPUT,
                       "--batch applies to the offline scenario only (others are batch 1)");
    if (given->latency_bound && !(s->flags & SG_SCENARIO_VERDICT))
        return sg_errf(err, SG_EINPUT, "--latency-bound-ms applies to the server scenario only");
    return SG_OK;
}
