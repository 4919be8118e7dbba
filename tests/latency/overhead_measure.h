/*
 * Harness overhead, measured: the single-stream p50 of a small real kernel
 * (MLP 64-256-1, about 16k multiply-adds, big enough that the ~10 ns TSC step
 * of virtual machines is noise) against a bare loop that calls the same
 * kernel on the same CPU with no harness. The bare figure is the per-call time
 * of the least disturbed 1000-call block, since the p50 likewise leaves out
 * calls hit by interrupts or preemption. Header-only: shared by the timing
 * test (a loose sanity bound) and the benchmark that reports the ratio.
 */
#ifndef STAGEGATE_TESTS_OVERHEAD_MEASURE_H
#define STAGEGATE_TESTS_OVERHEAD_MEASURE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stagegate/harness.h"
#include "stagegate/kernels.h"
#include "stagegate/model.h"

enum { OVH_NF = 64, OVH_NH = 256, OVH_NROWS = 1024 };

typedef struct {
    sg_layer layers[2];
    sg_model m;
    float *X;
} ovh_fixture;

static void ovh_fixture_init(ovh_fixture *f)
{
    memset(f, 0, sizeof *f); /* no scaler, no optional parts */
    int dims[3] = {OVH_NF, OVH_NH, 1};
    srand(11);
    for (int l = 0; l < 2; l++) {
        sg_layer *L = &f->layers[l];
        L->n_in = dims[l];
        L->n_out = dims[l + 1];
        L->W = sg_alloc_aligned((size_t)dims[l] * (size_t)dims[l + 1] * sizeof(float));
        L->b = sg_alloc_aligned((size_t)dims[l + 1] * sizeof(float));
        for (int i = 0; i < dims[l] * dims[l + 1]; i++)
            L->W[i] = (float)rand() / RAND_MAX - 0.5f;
        for (int i = 0; i < dims[l + 1]; i++)
            L->b[i] = 0.01f * (float)i;
        L->act = l == 0 ? SG_ACT_RELU : SG_ACT_IDENTITY;
    }
    sg_model *m = &f->m;
    m->task = SG_TASK_BINARY;
    m->n_classes = 2;
    m->n_features = OVH_NF;
    m->n_outputs = 1;
    m->n_layers = 2;
    m->layers = f->layers;
    m->link = SG_LINK_SIGMOID;
    f->X = malloc(sizeof(float) * OVH_NF * OVH_NROWS);
    for (int i = 0; i < OVH_NF * OVH_NROWS; i++)
        f->X[i] = (float)rand() / RAND_MAX;
}

static void ovh_fixture_free(ovh_fixture *f)
{
    for (int l = 0; l < 2; l++) {
        sg_free_aligned(f->layers[l].W);
        sg_free_aligned(f->layers[l].b);
    }
    free(f->X);
}

typedef struct {
    const ovh_fixture *f;
    sg_forward_scratch *s;
    float out[2];
} ovh_state;

static int ovh_setup(sg_worker *w, void *ctx, void **state, sg_err *err)
{
    ovh_state *s = sg_worker_alloc(w, sizeof *s);
    if (!s) return sg_errf(err, SG_ENOMEM, "out of memory");
    s->f = ctx;
    *state = s;
    return sg_forward_scratch_new(&s->f->m, 1, &s->s, err);
}

static void ovh_run(void *state, int64_t row, int64_t rows)
{
    (void)rows;
    ovh_state *s = state;
    sg_forward_one(&s->f->m, sg_kernels(), s->f->X + (row % OVH_NROWS) * OVH_NF, s->out, s->s);
}

static void ovh_teardown(void *state)
{
    sg_forward_scratch_free(((ovh_state *)state)->s);
}

static int ovh_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Per-call ns of the fastest of 301 blocks of 1000 calls, pinned to `cpu`; -1 on error. */
static double ovh_bare_ns(const ovh_fixture *f, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
    sg_forward_scratch *s;
    sg_err err;
    if (sg_forward_scratch_new(&f->m, 1, &s, &err) != SG_OK) return -1;
    float out[2];
    enum { BLOCKS = 301, CALLS = 1000 };
    double per[BLOCKS];
    int64_t row = 0;
    for (int b = -20; b < BLOCKS; b++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC_RAW, &t0);
        for (int i = 0; i < CALLS; i++, row++)
            sg_forward_one(&f->m, sg_kernels(), f->X + (row % OVH_NROWS) * OVH_NF, out, s);
        clock_gettime(CLOCK_MONOTONIC_RAW, &t1);
        if (b >= 0)
            per[b] =
                ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / CALLS;
    }
    sg_forward_scratch_free(s);
    qsort(per, BLOCKS, sizeof per[0], ovh_cmp);
    return per[0];
}

typedef struct {
    double harness_p50_ns, bare_ns;
} ovh_result;

/* One harness run and one bare loop on the CPU the harness used. */
static int ovh_measure(ovh_fixture *f, ovh_result *out, sg_err *err)
{
    sg_workload wl = {0};
    wl.name = "tiny-mlp";
    wl.n_rows = OVH_NROWS;
    wl.ctx = f;
    wl.setup = ovh_setup;
    wl.run = ovh_run;
    wl.teardown = ovh_teardown;
    sg_bench_config cfg;
    sg_bench_config_init(&cfg);
    cfg.workload = &wl;
    cfg.min_duration_s = 0.2;
    cfg.min_queries = 5000;
    cfg.warmup = 2000;
    sg_bench_result r;
    int rc = sg_bench_run(&cfg, &r, err);
    if (rc != SG_OK) return rc;
    out->harness_p50_ns = r.latency.p50;
    /* The CPU the one worker was bound to. */
    json_t *b = json_array_get(r.reps[0].bindings, 0);
    out->bare_ns = ovh_bare_ns(f, (int)json_integer_value(json_object_get(b, "cpu")));
    sg_bench_result_clear(&r);
    return out->bare_ns > 0 ? SG_OK : sg_errf(err, SG_ENOMEM, "bare loop scratch");
}

#endif
