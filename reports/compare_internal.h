/* Internal to reports: the latency half of `compare`. */
#ifndef STAGEGATE_COMPARE_INTERNAL_H
#define STAGEGATE_COMPARE_INTERNAL_H

#include "stagegate/compare.h"

/* The "latency" rows of the compare document; also sets doc's "mann_whitney",
 * "abs_noise_floor_ns" and "repetitions". Counts regressed percentiles into *n_regressed. */
json_t *sg_compare_latency(const sg_compare_run *o, const sg_compare_run *n,
                           const sg_compare_options *opt, json_t *doc, int *n_regressed,
                           sg_err *err);

#endif
