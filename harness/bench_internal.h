/* Internal to the harness: the single timed run behind sg_bench_run and its checks. */
#ifndef STAGEGATE_BENCH_INTERNAL_H
#define STAGEGATE_BENCH_INTERNAL_H

#include "stagegate/harness.h"

SG_MUST_CHECK sg_status sg_bench_check_config(const sg_bench_config *c, sg_err *err);
/* One timed run (one repetition): pool, set-up, warm-up, window, summary. */
SG_MUST_CHECK sg_status sg_bench_run_once(const sg_bench_config *c, sg_bench_result *r, sg_err *err);
/* Exact percentiles and LoadGen early-stopping estimates of r's samples (its own, or those of
   its repetitions when it merges them). */
SG_MUST_CHECK sg_status sg_bench_summarize_samples(sg_bench_result *r, sg_err *err);
/* Noise warnings against the SG_NOISE_* limits and, for server runs, the validity verdict. */
void sg_bench_assess(sg_bench_result *r);
/* Sum of the thermal throttle counters of these CPUs; -1 when the kernel does not expose them. */
int64_t sg_throttle_count(const int *cpus, int n);

#endif
