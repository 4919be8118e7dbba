/*
 * Batch-1 latency of XGBoost's own C API, for scripts/bench_trees.sh: a loop of
 * XGBoosterPredictFromDense on one row at a time, each call timed with
 * CLOCK_MONOTONIC_RAW; prints {"p50_ns", "p99_ns", "calls"} as JSON.
 *
 *   xgb_c_latency MODEL.json ROWS.f32 FEATURES CALLS
 *
 * ROWS.f32 holds float32 rows back to back; calls cycle through them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xgboost/c_api.h>

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "xgb_c_latency: %s: %s\n", #call, XGBGetLastError());                  \
            return 2;                                                                              \
        }                                                                                          \
    } while (0)

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: xgb_c_latency MODEL.json ROWS.f32 FEATURES CALLS\n");
        return 2;
    }
    const long d = atol(argv[3]), calls = atol(argv[4]);
    FILE *f = fopen(argv[2], "rb");
    if (!f || d < 1 || calls < 1) return 2;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    long rows = bytes / (long)sizeof(float) / d;
    float *X = malloc((size_t)bytes);
    if (!X || rows < 1 || fread(X, 1, (size_t)bytes, f) != (size_t)bytes) return 2;
    fclose(f);

    BoosterHandle b;
    CHECK(XGBoosterCreate(NULL, 0, &b));
    CHECK(XGBoosterLoadModel(b, argv[1]));
    CHECK(XGBoosterSetParam(b, "nthread", "1"));
    char iface[256];
    const char *config = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                         "\"iteration_end\": 0, \"strict_shape\": false, \"missing\": NaN, "
                         "\"cache_id\": 0}";
    uint64_t *t = malloc((size_t)calls * sizeof *t);
    const uint64_t *shape;
    uint64_t dim;
    const float *out;
    for (long i = -1000; i < calls; i++) { /* 1000 warm-up calls */
        const float *row = X + ((i + 1000) % rows) * d;
        snprintf(iface, sizeof iface,
                 "{\"data\": [%llu, true], \"shape\": [1, %ld], \"typestr\": \"<f4\", "
                 "\"version\": 3}",
                 (unsigned long long)(uintptr_t)row, d);
        uint64_t t0 = now_ns();
        CHECK(XGBoosterPredictFromDense(b, iface, config, NULL, &shape, &dim, &out));
        uint64_t t1 = now_ns();
        if (i >= 0) t[i] = t1 - t0;
    }
    qsort(t, (size_t)calls, sizeof *t, cmp_u64);
    /* Nearest rank, as stagegate's percentiles. */
    long i50 = (calls * 50 + 99) / 100 - 1, i99 = (calls * 99 + 99) / 100 - 1;
    printf("{\"p50_ns\": %llu, \"p99_ns\": %llu, \"calls\": %ld}\n", (unsigned long long)t[i50],
           (unsigned long long)t[i99], calls);
    XGBoosterFree(b);
    free(t);
    free(X);
    return 0;
}
