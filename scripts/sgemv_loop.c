/*
 * Baseline for scripts/bench_latency.sh: a plain OpenBLAS cblas_sgemv loop for
 * an MLP (relu hidden layers, sigmoid output), batch 1, one thread, each call
 * timed with clock_gettime(CLOCK_MONOTONIC_RAW). Prints "p50_ns p99_ns".
 * usage: sgemv_loop CALLS DIM0 DIM1 ... DIMk
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: sgemv_loop CALLS DIM0 DIM1 ... DIMk\n");
        return 2;
    }
    openblas_set_num_threads(1);
    int calls = atoi(argv[1]), nl = argc - 3, maxw = 0;
    int *dim = malloc(sizeof(int) * (size_t)(nl + 1));
    for (int i = 0; i <= nl; i++) {
        dim[i] = atoi(argv[i + 2]);
        if (dim[i] < 1 || calls < 1) return 2;
        if (dim[i] > maxw) maxw = dim[i];
    }
    float **W = malloc(sizeof(float *) * (size_t)nl), **B = malloc(sizeof(float *) * (size_t)nl);
    srand(1);
    for (int l = 0; l < nl; l++) {
        W[l] = malloc(sizeof(float) * (size_t)dim[l] * (size_t)dim[l + 1]);
        B[l] = malloc(sizeof(float) * (size_t)dim[l + 1]);
        for (long i = 0; i < (long)dim[l] * dim[l + 1]; i++)
            W[l][i] = (float)rand() / RAND_MAX - 0.5f;
        for (int i = 0; i < dim[l + 1]; i++)
            B[l][i] = 0.01f;
    }
    float *x = malloc(sizeof(float) * 1024 * (size_t)dim[0]),
          *a = malloc(sizeof(float) * (size_t)maxw), *b = malloc(sizeof(float) * (size_t)maxw);
    for (long i = 0; i < 1024L * dim[0]; i++)
        x[i] = (float)rand() / RAND_MAX;
    long *ns = malloc(sizeof(long) * (size_t)calls);
    volatile float sink = 0;
    for (int c = -1000; c < calls; c++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC_RAW, &t0);
        const float *in = x + (long)((c + 1000) % 1024) * dim[0];
        float *out = a;
        for (int l = 0; l < nl; l++) {
            for (int j = 0; j < dim[l + 1]; j++)
                out[j] = B[l][j];
            /* W is [n_in][n_out] row-major: y = W^T x + y */
            cblas_sgemv(CblasRowMajor, CblasTrans, dim[l], dim[l + 1], 1.0f, W[l], dim[l + 1], in,
                        1, 1.0f, out, 1);
            if (l < nl - 1)
                for (int j = 0; j < dim[l + 1]; j++)
                    out[j] = out[j] > 0 ? out[j] : 0;
            else
                for (int j = 0; j < dim[l + 1]; j++)
                    out[j] = 1.0f / (1.0f + expf(-out[j]));
            in = out;
            out = out == a ? b : a;
        }
        sink += in[0];
        clock_gettime(CLOCK_MONOTONIC_RAW, &t1);
        if (c >= 0) ns[c] = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
    }
    qsort(ns, (size_t)calls, sizeof *ns, cmp);
    printf("%ld %ld\n", ns[(calls + 1) / 2 - 1], ns[(calls * 99 + 99) / 100 - 1]);
    return 0;
}
