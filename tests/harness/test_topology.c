/*
 * Placement on hwloc synthetic topologies (2 and 4 NUMA nodes, with and without
 * SMT), and on the real machine: each worker runs where it is bound and its
 * buffers sit on its node.
 */
#define _GNU_SOURCE
#include <hwloc.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "stagegate/harness.h"

#define TWO_NUMA "pack:2 numa:1 core:4 pu:1"
#define FOUR_NUMA_SMT "pack:2 numa:2 core:2 pu:2"

static void plan_two_numa(void **state)
{
    (void)state;
    sg_topology *t;
    sg_err err;
    assert_int_equal(sg_topology_open(TWO_NUMA, &t, &err), SG_OK);
    assert_true(sg_topology_is_synthetic(t));
    assert_int_equal(sg_topology_cores(t), 8);
    assert_int_equal(sg_topology_numa_nodes(t), 2);
    sg_placement *p;
    int n;
    assert_int_equal(sg_topology_plan(t, NULL, &p, &n, &err), SG_OK);
    assert_int_equal(n, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(p[i].worker, i);
        assert_int_equal(p[i].core, i);
        assert_int_equal(p[i].pu, i);
        assert_int_equal(p[i].node, i / 4);
    }
    free(p);
    assert_int_equal(sg_topology_plan(t, "2-5", &p, &n, &err), SG_OK);
    assert_int_equal(n, 4);
    const int pu[] = {2, 3, 4, 5}, node[] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(p[i].pu, pu[i]);
        assert_int_equal(p[i].node, node[i]);
    }
    free(p);
    assert_int_equal(sg_topology_plan(t, "7,0", &p, &n, &err), SG_OK);
    assert_int_equal(n, 2);
    assert_true(p[0].pu == 0 && p[0].node == 0 && p[1].pu == 7 && p[1].node == 1);
    free(p);
    const char *bad[] = {"8", "a", "3-1", "1,", "1;2", "-1", "0-", "", ",", " 0", "+1", "0- 1", "0, 1", "-0", "0-+1"}; /* "": not every core; signs and spaces: not digits */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = (sg_placement *)1;
        assert_int_equal(sg_topology_plan(t, bad[i], &p, &n, &err), SG_EINPUT);
        assert_null(p);
        assert_non_null(strstr(err.msg, "--cpus"));
    }
    sg_topology_close(t);
}

static void plan_four_numa_smt(void **state)
{
    (void)state;
    sg_topology *t;
    sg_err err;
    assert_int_equal(sg_topology_open(FOUR_NUMA_SMT, &t, &err), SG_OK);
    assert_int_equal(sg_topology_numa_nodes(t), 4);
    assert_int_equal(sg_topology_cores(t), 8);
    assert_int_equal(sg_topology_pus(t), 16);
    sg_placement *p;
    int n;
    assert_int_equal(sg_topology_plan(t, "all", &p, &n, &err), SG_OK);
    assert_int_equal(n, 8); /* one worker per core, not per hardware thread */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(p[i].pu, 2 * i);
        assert_int_equal(p[i].node, i / 2);
    }
    free(p);
    /* Both siblings of core 0 listed: still one worker there. */
    assert_int_equal(sg_topology_plan(t, "0,1,13", &p, &n, &err), SG_OK);
    assert_int_equal(n, 2);
    assert_true(p[0].pu == 0 && p[0].core == 0 && p[0].node == 0);
    assert_true(p[1].pu == 13 && p[1].core == 6 && p[1].node == 3);
    free(p);
    sg_topology_close(t);
    assert_int_equal(sg_topology_open("nonsense:3", &t, &err), SG_EINPUT);
    /* Sizes hwloc would take minutes and gigabytes to build are refused before it starts: a
       flat level past 2,048, or past 4,096 CPUs in all (attributes in parentheses skipped). */
    assert_int_equal(sg_topology_open("core:65537 pu:1", &t, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "a level of 65537 objects is more than the 2048"));
    assert_int_equal(sg_topology_open("pack:16 numa:16(memory=1GB) core:257 pu:1", &t, &err),
                     SG_EINPUT);
    assert_non_null(strstr(err.msg, "describes 65792 CPUs, more than the 4096"));
    assert_int_equal(sg_topology_open("pack:2 numa:2(memory=1GB) core:8 pu:2", &t, &err), SG_OK);
    assert_int_equal(sg_topology_pus(t), 64);
    sg_topology_close(t);
}

typedef struct {
    int node[64], alloc_node[64], cpu_seen[64], runs[64];
    uintptr_t addr[64];
    int zero[64];
} probe_ctx;

static void probe(sg_worker *w, void *arg)
{
    probe_ctx *c = arg;
    int i = sg_worker_index(w);
    unsigned char *b = sg_worker_alloc(w, 10000);
    c->addr[i] = (uintptr_t)b;
    c->zero[i] = b != NULL;
    for (int k = 0; b && k < 10000; k++)
        c->zero[i] &= b[k] == 0;
    c->node[i] = sg_worker_node(w);
    c->alloc_node[i] = sg_worker_last_alloc_node(w);
    c->cpu_seen[i] = sched_getcpu();
    c->runs[i]++;
}

static void count_run(sg_worker *w, void *arg)
{
    atomic_int *runs = arg;
    atomic_fetch_add(&runs[sg_worker_index(w)], 1);
}

/* CPU time the process used over `jobs` jobs, each followed by an idle gap of gap_us. */
static double idle_cpu_seconds(sg_pool *p, int jobs, int gap_us, atomic_int *runs)
{
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    for (int j = 0; j < jobs; j++) {
        sg_pool_run(p, count_run, runs);
        usleep((useconds_t)gap_us);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    return (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
}

/* With the spin off (eval's pool), idle workers sleep at once instead of burning their cores
   between jobs, and no job is lost or run twice. */
static void pool_without_spin(void **state)
{
    (void)state;
    sg_pool *p;
    sg_err err;
    assert_int_equal(sg_pool_create(NULL, &p, &err), SG_OK);
    int n = sg_pool_size(p);
    atomic_int runs[64] = {0};
    double spinning = idle_cpu_seconds(p, 100, 2000, runs);
    sg_pool_set_spin(p, false);
    double sleeping = idle_cpu_seconds(p, 100, 2000, runs);
    for (int j = 0; j < 2000; j++) /* back to back: every wake-up goes through the futex */
        sg_pool_run(p, count_run, runs);
    sg_pool_set_spin(p, true);
    for (int j = 0; j < 100; j++)
        sg_pool_run(p, count_run, runs);
    for (int i = 0; i < n; i++)
        assert_int_equal(atomic_load(&runs[i]), 2300);
    sg_pool_free(p);
    /* Spinning, each of the 100 gaps costs every worker (and the caller, while it waits) up
       to SPIN_ITERS pauses; sleeping, only the wake-ups. */
    print_message("idle CPU over 100 gaps: spinning %.1f ms, sleeping %.1f ms\n", 1e3 * spinning,
                  1e3 * sleeping);
    assert_true(sleeping < spinning / 3);
}

static void pool_synthetic(void **state)
{
    (void)state;
    sg_pool *p;
    sg_err err;
    assert_int_equal(sg_pool_create_on(FOUR_NUMA_SMT, "4-15", &p, &err), SG_OK);
    assert_int_equal(sg_pool_size(p), 6);
    assert_false(sg_pool_bound(p));
    assert_string_equal(sg_pool_membind_policy(p), "planned-only");
    probe_ctx c;
    memset(&c, 0, sizeof c);
    for (int r = 0; r < 5; r++)
        sg_pool_run(p, probe, &c);
    for (int i = 0; i < 6; i++) {
        int want = (4 + 2 * i) / 4; /* PUs 4,6 -> node 1; 8,10 -> 2; 12,14 -> 3 */
        assert_int_equal(sg_pool_placement(p, i)->pu, 4 + 2 * i);
        assert_int_equal(c.node[i], want);
        assert_int_equal(c.alloc_node[i], want);
        assert_true(c.zero[i]);
        assert_int_equal(c.addr[i] % 64, 0);
        assert_int_equal(c.runs[i], 5); /* each job ran exactly once per worker */
    }
    sg_pool_free(p);
    /* The environment variable selects a synthetic topology for sg_pool_create. */
    setenv("STAGEGATE_HWLOC_SYNTHETIC", TWO_NUMA, 1);
    assert_int_equal(sg_pool_create(NULL, &p, &err), SG_OK);
    unsetenv("STAGEGATE_HWLOC_SYNTHETIC");
    assert_int_equal(sg_pool_size(p), 8);
    memset(&c, 0, sizeof c);
    sg_pool_run(p, probe, &c);
    for (int i = 0; i < 8; i++)
        assert_int_equal(c.alloc_node[i], i / 4);
    sg_pool_free(p);
}

static void pool_real(void **state)
{
    (void)state;
    sg_pool *p;
    sg_err err;
    assert_int_equal(sg_pool_create(NULL, &p, &err), SG_OK);
    assert_true(sg_pool_bound(p));
    int n = sg_pool_size(p);
    assert_true(n >= 1 && n <= 64);
    probe_ctx c;
    memset(&c, 0, sizeof c);
    hwloc_topology_t topo;
    hwloc_topology_init(&topo);
    hwloc_topology_load(topo);
    hwloc_bitmap_t ns = hwloc_bitmap_alloc();
    for (int r = 0; r < 200; r++) {
        sg_pool_run(p, probe, &c);
        for (int i = 0; i < n; i++) {
            /* Pinned: the kernel ran the worker on exactly the CPU it was bound to. */
            assert_int_equal(c.cpu_seen[i], sg_pool_placement(p, i)->pu);
        }
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(c.runs[i], 200);
        assert_true(c.zero[i]);
        /* The touched buffer's pages are on the worker's node. */
        assert_int_equal(
            hwloc_get_area_memlocation(topo, (void *)c.addr[i], 10000, ns, HWLOC_MEMBIND_BYNODESET),
            0);
        assert_int_equal(hwloc_bitmap_first(ns), c.node[i]);
        assert_int_equal(hwloc_bitmap_weight(ns), 1);
    }
    hwloc_bitmap_free(ns);
    hwloc_topology_destroy(topo);
    sg_pool_free(p);
    /* A CPU that does not exist is an input error naming the option. */
    assert_int_equal(sg_pool_create("4096", &p, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "--cpus"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plan_two_numa),
        cmocka_unit_test(plan_four_numa_smt),
        cmocka_unit_test(pool_synthetic),
        cmocka_unit_test(pool_real),
        cmocka_unit_test(pool_without_spin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
