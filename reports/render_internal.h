/* Helpers shared by the renderers (reports/render_*.c only). */
#ifndef STAGEGATE_RENDER_INTERNAL_H
#define STAGEGATE_RENDER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

/* predicate.<key> of a statement (NULL when absent or null). */
json_t *sg_render_pred(json_t *statement, const char *key);
const char *sg_render_subject_name(json_t *statement);
const char *sg_render_subject_sha256(json_t *statement);
/* A latency percentile ("p50", "p99", ...) from the bench JSON, in ms; false when absent. */
bool sg_render_latency_ms(json_t *latency, const char *pct, double *ms);
/* The bench histogram's buckets [[low_ns, count], ...] or NULL. */
json_t *sg_render_latency_buckets(json_t *latency);

#endif
