/*
 * Batch-1 latency of sg_forward_one on a StandardScaler + MLP 64-256-256-1
 * (relu, binary) for every variant the CPU runs, and the batch path's
 * throughput (sg_forward_batch, 8192 rows, one BLAS thread, best of 5).
 * Prints one JSON object.
 * Each figure is the per-call mean over a block of calls; the median and the
 * best block are reported, so a scheduler hiccup moves neither much.
 *   usage: sg_bench_forward_one [blocks] [calls-per-block]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "stagegate/kernels.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static float *filled(size_t n, float scale, unsigned *seed)
{
    float *p = sg_alloc_aligned(n * sizeof *p);
    if (!p) exit(2);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * ((float)rand_r(seed) / (float)RAND_MAX - 0.5f);
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const int blocks = argc > 1 ? atoi(argv[1]) : 200;
    const int calls = argc > 2 ? atoi(argv[2]) : 500;
    if (blocks < 1 || calls < 1) {
        fprintf(stderr, "usage: sg_bench_forward_one [blocks] [calls-per-block]\n");
        return 2;
    }
    unsigned seed = 42;
    const int widths[] = {64, 256, 256, 1};
    sg_layer layers[3];
    sg_model m = {.task = SG_TASK_BINARY,
                  .n_classes = 2,
                  .n_features = 64,
                  .n_outputs = 1,
                  .n_layers = 3,
                  .layers = layers,
                  .link = SG_LINK_SIGMOID};
    snprintf(m.path, sizeof m.path, "mlp-64-256-256-1");
    m.mean = filled(64, 1.0f, &seed);
    m.scale = filled(64, 0.5f, &seed);
    for (int i = 0; i < 64; i++)
        m.scale[i] += 1.0f;
    for (int l = 0; l < 3; l++) {
        layers[l] = (sg_layer){.n_in = widths[l],
                               .n_out = widths[l + 1],
                               .act = l < 2 ? SG_ACT_RELU : SG_ACT_IDENTITY};
        layers[l].W = filled((size_t)widths[l] * (size_t)widths[l + 1],
                             2.0f / sqrtf((float)widths[l]), &seed);
        layers[l].b = filled((size_t)widths[l + 1], 0.2f, &seed);
    }
    float *x = filled(64, 4.0f, &seed);
    double *t = malloc(sizeof(double) * (size_t)blocks);
    const double flops = 2.0 * (64 * 256 + 256 * 256 + 256);

    printf("{\"model\": \"StandardScaler+MLP 64-256-256-1 relu\", \"flops_per_call\": %.0f, "
           "\"blocks\": %d, \"calls_per_block\": %d, \"variants\": [",
           flops, blocks, calls);
    int first = 1;
    for (int isa = 0; isa < SG_ISA_COUNT; isa++) {
        const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
        if (!k) continue;
        sg_forward_scratch *s;
        sg_err err;
        if (sg_forward_scratch_new(&m, 1, &s, &err) != SG_OK) {
            fprintf(stderr, "sg_bench_forward_one: %s\n", err.msg);
            return 2;
        }
        float out[2];
        volatile float sink = 0;
        for (int i = 0; i < 20000; i++) { /* warm caches, predictors and clocks */
            sg_forward_one(&m, k, x, out, s);
            sink += out[1];
        }
        for (int b = 0; b < blocks; b++) {
            const double t0 = now_ns();
            for (int i = 0; i < calls; i++) {
                sg_forward_one(&m, k, x, out, s);
                sink += out[1];
            }
            t[b] = (now_ns() - t0) / calls;
        }
        qsort(t, (size_t)blocks, sizeof *t, cmp_double);
        sg_forward_scratch_free(s);

        const int64_t rows = 8192;
        float *X = filled((size_t)rows * 64, 4.0f, &seed),
              *P = sg_alloc_aligned((size_t)rows * 2 * sizeof(float));
        if (!P || sg_forward_scratch_new(&m, rows, &s, &err) != SG_OK) return 2;
        openblas_set_num_threads(1);
        double best = 1e30;
        for (int rep = 0; rep < 6; rep++) {
            const double t0 = now_ns();
            sg_forward_batch(&m, k, X, rows, P, s);
            if (rep > 0 && now_ns() - t0 < best) best = now_ns() - t0;
        }
        printf("%s{\"variant\": \"%s\", \"ns_median\": %.1f, \"ns_best\": %.1f, "
               "\"gflops_median\": %.2f, \"p1\": %.7f, \"batch_rows_per_s_1t\": %.0f, "
               "\"batch_gflops_1t\": %.1f}",
               first ? "" : ", ", k->name, t[blocks / 2], t[0], flops / t[blocks / 2], out[1],
               rows / best * 1e9, flops * rows / best);
        first = 0;
        sg_forward_scratch_free(s);
        sg_free_aligned(X);
        sg_free_aligned(P);
    }
    printf("]}\n");
    free(t);
    free(x);
    for (int l = 0; l < 3; l++) {
        sg_free_aligned(layers[l].W);
        sg_free_aligned(layers[l].b);
    }
    sg_free_aligned(m.mean);
    sg_free_aligned(m.scale);
    return 0;
}
