/*
 * Log-linear latency histogram in HdrHistogram's layout with 3 significant
 * digits: values below 2048 are exact; above, each power-of-two range is cut
 * into 1024 equal sub-buckets, so a bucket is never wider than 1/1024 of its
 * values. Counts live in one flat array; merging is element-wise addition.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/harness.h"

#define SUB_BUCKET_COUNT 2048
#define SUB_BUCKET_HALF 1024
#define SUB_BUCKET_HALF_MAG 10
#define BUCKETS 53 /* covers values up to 2^63 - 1 */
#define COUNTS_LEN ((BUCKETS + 1) * SUB_BUCKET_HALF)

/* Recording fills the flat array of counts (430 KB). A finished histogram that is kept, as
   each repetition's is, is compacted to its non-empty buckets: a thousand repetitions had
   kept 430 MB of mostly zero counts. */
typedef struct {
    int64_t index;
    int64_t count;
} hist_cell;

struct sg_latency_histogram {
    int64_t total;
    int64_t *counts;  /* [COUNTS_LEN]; NULL once compacted */
    hist_cell *cells; /* compacted: the non-empty buckets, ascending */
    size_t n_cells;
};

static int bucket_of(uint64_t v)
{
    int pow2ceil = 64 - __builtin_clzll(v | (SUB_BUCKET_COUNT - 1));
    return pow2ceil - (SUB_BUCKET_HALF_MAG + 1);
}

static int64_t index_of(uint64_t v)
{
    if (v > INT64_MAX) v = INT64_MAX;
    int b = bucket_of(v);
    int64_t sub = (int64_t)(v >> b);
    return ((int64_t)(b + 1) << SUB_BUCKET_HALF_MAG) + (sub - SUB_BUCKET_HALF);
}

/* Lowest value of the bucket at a flat index. */
static uint64_t value_at_index(int64_t idx)
{
    int64_t b = (idx >> SUB_BUCKET_HALF_MAG) - 1;
    int64_t sub = (idx & (SUB_BUCKET_HALF - 1)) + SUB_BUCKET_HALF;
    if (b < 0) {
        sub -= SUB_BUCKET_HALF;
        b = 0;
    }
    return (uint64_t)sub << b;
}

uint64_t sg_histogram_lowest_equivalent(uint64_t v)
{
    return value_at_index(index_of(v));
}

uint64_t sg_histogram_highest_equivalent(uint64_t v)
{
    if (v > INT64_MAX) v = INT64_MAX;
    int b = bucket_of(v);
    return sg_histogram_lowest_equivalent(v) + ((uint64_t)1 << b) - 1;
}

sg_latency_histogram *sg_histogram_new(void)
{
    sg_latency_histogram *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    /* malloc + memset, not calloc: the pages must be touched now, not while a timed run records. */
    h->counts = malloc(COUNTS_LEN * sizeof *h->counts);
    if (!h->counts) {
        free(h);
        return NULL;
    }
    memset(h->counts, 0, COUNTS_LEN * sizeof *h->counts);
    return h;
}
void sg_histogram_free(sg_latency_histogram *h)
{
    if (!h) return;
    free(h->counts);
    free(h->cells);
    free(h);
}

/* The next non-empty bucket at or after cursor *at, in either form; false past the last. */
static bool next_cell(const sg_latency_histogram *h, int64_t *at, int64_t *index, int64_t *count)
{
    if (!h->counts) {
        if (*at >= (int64_t)h->n_cells) return false;
        *index = h->cells[*at].index;
        *count = h->cells[(*at)++].count;
        return true;
    }
    while (*at < COUNTS_LEN && !h->counts[*at])
        (*at)++;
    if (*at >= COUNTS_LEN) return false;
    *index = *at;
    *count = h->counts[(*at)++];
    return true;
}

sg_status sg_histogram_compact(sg_latency_histogram *h)
{
    if (!h->counts) return SG_OK;
    size_t n = 0;
    for (int64_t i = 0; i < COUNTS_LEN; i++)
        n += h->counts[i] != 0;
    hist_cell *c = malloc((n ? n : 1) * sizeof *c);
    if (!c) return SG_ENOMEM;
    int64_t at = 0, index, count;
    size_t k = 0;
    while (next_cell(h, &at, &index, &count))
        c[k++] = (hist_cell){index, count};
    free(h->counts);
    h->counts = NULL;
    h->cells = c;
    h->n_cells = n;
    return SG_OK;
}

void sg_histogram_record(sg_latency_histogram *h, uint64_t v)
{
    h->counts[index_of(v)]++;
    h->total++;
}

void sg_histogram_merge(sg_latency_histogram *into, const sg_latency_histogram *from)
{
    int64_t at = 0, index, count;
    while (next_cell(from, &at, &index, &count))
        into->counts[index] += count;
    into->total += from->total;
}

int64_t sg_histogram_count(const sg_latency_histogram *h)
{
    return h->total;
}

uint64_t sg_histogram_value_at(const sg_latency_histogram *h, double q)
{
    if (h->total == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    int64_t rank = (int64_t)ceil(q * (double)h->total);
    if (rank < 1) rank = 1;
    int64_t acc = 0, at = 0, index, count;
    while (next_cell(h, &at, &index, &count)) {
        acc += count;
        if (acc >= rank) return sg_histogram_highest_equivalent(value_at_index(index));
    }
    return 0;
}

json_t *sg_histogram_json(const sg_latency_histogram *h)
{
    json_t *o = json_object(), *b = json_array();
    json_object_set_new(o, "unit", json_string("ns"));
    json_object_set_new(o, "significant_digits", json_integer(3));
    json_object_set_new(o, "sub_bucket_count", json_integer(SUB_BUCKET_COUNT));
    json_object_set_new(o, "count", json_integer(h->total));
    int64_t at = 0, index, count;
    while (next_cell(h, &at, &index, &count)) {
        json_t *pair = json_array();
        json_array_append_new(pair, json_integer((json_int_t)value_at_index(index)));
        json_array_append_new(pair, json_integer(count));
        json_array_append_new(b, pair);
    }
    json_object_set_new(o, "buckets", b);
    return o;
}

sg_status sg_histogram_from_json(const json_t *j, sg_latency_histogram **out, sg_err *err)
{
    *out = NULL;
    json_t *b = json_is_object(j) ? json_object_get(j, "buckets") : NULL;
    json_t *sbc = json_is_object(j) ? json_object_get(j, "sub_bucket_count") : NULL;
    if (!json_is_array(b) || !json_is_integer(sbc))
        return sg_errf(err, SG_EINPUT,
                       "histogram: expected an object with 'buckets' and 'sub_bucket_count'");
    if (json_integer_value(sbc) != SUB_BUCKET_COUNT)
        return sg_errf(err, SG_EINPUT, "histogram: sub_bucket_count %lld is not %d",
                       (long long)json_integer_value(sbc), SUB_BUCKET_COUNT);
    sg_latency_histogram *h = sg_histogram_new();
    if (!h) return sg_errf(err, SG_ENOMEM, "histogram: out of memory");
    size_t i;
    json_t *pair;
    json_array_foreach(b, i, pair)
    {
        json_t *v = json_array_get(pair, 0), *c = json_array_get(pair, 1);
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_integer(v) ||
            !json_is_integer(c) || json_integer_value(v) < 0 || json_integer_value(c) < 0) {
            sg_histogram_free(h);
            return sg_errf(err, SG_EINPUT, "histogram: bucket %zu is not [low_ns, count]", i);
        }
        uint64_t low = (uint64_t)json_integer_value(v);
        if (sg_histogram_lowest_equivalent(low) != low) {
            sg_histogram_free(h);
            return sg_errf(err, SG_EINPUT,
                           "histogram: bucket %zu starts at %llu, not a bucket boundary", i,
                           (unsigned long long)low);
        }
        int64_t add = json_integer_value(c), *cell = &h->counts[index_of(low)];
        if (add > INT64_MAX - h->total || add > INT64_MAX - *cell) {
            sg_histogram_free(h);
            return sg_errf(err, SG_EINPUT, "histogram: counts overflow at bucket %zu", i);
        }
        *cell += add;
        h->total += add;
    }
    *out = h;
    return SG_OK;
}

void sg_histogram_print(const sg_latency_histogram *h, FILE *out, int rows)
{
    if (h->total == 0 || rows < 1) return;
    /* Rows span p0.1..p99.9 in equal log steps so one outlier does not flatten the picture. */
    double lo = (double)sg_histogram_value_at(h, 0.001),
           hi = (double)sg_histogram_value_at(h, 0.999);
    if (lo < 1) lo = 1;
    if (hi <= lo) hi = lo + 1;
    double step = pow(hi / lo, 1.0 / rows);
    int64_t *row = calloc((size_t)rows, sizeof *row);
    if (!row) return;
    int64_t maxc = 0;
    int64_t at = 0, index, count;
    while (next_cell(h, &at, &index, &count)) {
        double v = (double)value_at_index(index);
        int r = v <= lo ? 0 : (int)(log(v / lo) / log(step));
        if (r >= rows) r = rows - 1;
        if (r < 0) r = 0;
        row[r] += count;
    }
    for (int r = 0; r < rows; r++)
        maxc = row[r] > maxc ? row[r] : maxc;
    for (int r = 0; r < rows; r++) {
        char a[32], c[32];
        sg_format_ns(lo * pow(step, r), a, sizeof a);
        sg_format_count((double)row[r], c, sizeof c);
        int bar = maxc ? (int)((double)row[r] * 50.0 / (double)maxc + 0.5) : 0;
        /* printf pads bytes, and "\u00b5" is two: pad by characters. */
        fprintf(out, "  %*s%s%s |", 10 - (int)sg_utf8_width(a), "", a,
                r == 0          ? "-"
                : r == rows - 1 ? "+"
                                : " ");
        for (int k = 0; k < bar; k++)
            fputc('#', out);
        fprintf(out, " %s\n", c);
    }
    free(row);
}
