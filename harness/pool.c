/*
 * A pool of persistent worker threads, one per selected core, pinned with hwloc.
 *
 * Ownership and invariants:
 * - The pool owns the topology, the worker array and every block handed out by
 *   sg_worker_alloc; sg_pool_free joins the threads first, then frees them.
 * - Each sg_worker is written only by its own thread while it runs a job
 *   (allocation list, last_alloc_node) and read by the owner thread only when no
 *   job is in flight (after sg_pool_run returned, or after the threads joined).
 * - Job hand-off: the owner writes fn/ctx, resets `done`, then bumps
 *   `generation` under `lock` and broadcasts. A worker runs a job exactly once
 *   per generation change. The release/acquire pair on `generation` makes fn/ctx
 *   visible; taking `lock` before sleeping makes a wake-up impossible to miss.
 * - Completion: each worker increments `done`; the one reaching n signals
 *   `done_cond` under `lock`. sg_pool_run returns only when done == n, so the
 *   caller's ctx outlives every use of it. One sg_pool_run at a time, never
 *   from inside a worker.
 * - Workers spin briefly on `generation` before sleeping (as ggml does) so
 *   back-to-back jobs do not pay a futex wake-up; sg_pool_run's caller spins on `done`
 *   the same way. sg_pool_set_spin(p, false) makes both sleep at once (`spin_iters` 0).
 * - Binding: CPU with HWLOC_CPUBIND_THREAD|STRICT; memory policy of the thread
 *   bound to its NUMA node (strict when the OS allows, else plain bind, else
 *   first touch from the pinned thread). Synthetic topologies only plan.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "topology_internal.h"

#define SPIN_ITERS 20000

typedef enum { MB_STRICT = 0, MB_BIND = 1, MB_FIRST_TOUCH = 2, MB_PLANNED = 3 } membind_kind;
static const char *const membind_names[] = {"bind-strict", "bind", "first-touch", "planned-only"};

typedef struct {
    void *p;
    size_t bytes;
    bool hwloc; /* from hwloc_alloc_membind (free with hwloc_free) */
} sg_block;

struct sg_worker {
    _Alignas(64) sg_pool *pool;
    sg_placement pl;
    pthread_t thread;
    bool started;
    hwloc_bitmap_t cpuset, nodeset;
    membind_kind membind;
    sg_block *blocks;
    size_t n_blocks, cap_blocks;
    int last_alloc_node;
    int init_status;
    char init_msg[256];
};

struct sg_pool {
    sg_topology *topo;
    int n;
    sg_worker *workers;
    _Alignas(64) atomic_uint_fast64_t generation;
    _Alignas(64) atomic_int done;
    _Alignas(64) void (*fn)(sg_worker *, void *);
    void *ctx;
    bool stop;
    pthread_mutex_t lock;
    pthread_cond_t wake, done_cond;
    membind_kind membind;
    atomic_int spin_iters; /* SPIN_ITERS, or 0: sleep at once */
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Pins the calling thread and sets its memory policy; runs as the worker's first job. */
static void bind_self(sg_worker *w)
{
    hwloc_topology_t topo = w->pool->topo->topo;
    if (w->pool->topo->synthetic) {
        w->membind = MB_PLANNED;
        return;
    }
    if (hwloc_set_cpubind(topo, w->cpuset, HWLOC_CPUBIND_THREAD | HWLOC_CPUBIND_STRICT) != 0) {
        w->init_status = SG_EIO;
        snprintf(w->init_msg, sizeof w->init_msg, "cannot pin worker %d to CPU %d: %s",
                 w->pl.worker, w->pl.pu, strerror(errno));
        return;
    }
    int base = HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET;
    if (hwloc_set_membind(topo, w->nodeset, HWLOC_MEMBIND_BIND, base | HWLOC_MEMBIND_STRICT) == 0)
        w->membind = MB_STRICT;
    else if (hwloc_set_membind(topo, w->nodeset, HWLOC_MEMBIND_BIND, base) == 0)
        w->membind = MB_BIND;
    else
        w->membind = MB_FIRST_TOUCH; /* pinned, so first touch still lands on the local node */
}

static void *worker_main(void *arg)
{
    sg_worker *w = arg;
    sg_pool *p = w->pool;
    uint_fast64_t seen = 0;
    for (;;) {
        uint_fast64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        /* Re-read each turn: sg_pool_set_spin(p, false) ends a spin already under way. */
        for (int i = 0;
             g == seen && i < atomic_load_explicit(&p->spin_iters, memory_order_relaxed); i++) {
            cpu_relax();
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->lock);
            while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
                   !p->stop)
                pthread_cond_wait(&p->wake, &p->lock);
            pthread_mutex_unlock(&p->lock);
        }
        if (g == seen) break; /* stop requested with no new job */
        seen = g;
        if (p->stop && p->fn == NULL) break;
        p->fn(w, p->ctx);
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) + 1 == p->n) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done_cond);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

static void job_bind(sg_worker *w, void *ctx)
{
    (void)ctx;
    bind_self(w);
}

int sg_pool_run(sg_pool *p, void (*fn)(sg_worker *w, void *ctx), void *ctx)
{
    SG_ASSERT(p && fn);
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    const int spin = atomic_load_explicit(&p->spin_iters, memory_order_relaxed);
    for (int i = 0; i < spin; i++) {
        if (atomic_load_explicit(&p->done, memory_order_acquire) == p->n) return SG_OK;
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    while (atomic_load_explicit(&p->done, memory_order_acquire) != p->n)
        pthread_cond_wait(&p->done_cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return SG_OK;
}

static void free_blocks(sg_pool *p, sg_worker *w)
{
    for (size_t i = 0; i < w->n_blocks; i++) {
        if (w->blocks[i].hwloc)
            hwloc_free(p->topo->topo, w->blocks[i].p, w->blocks[i].bytes);
        else
            free(w->blocks[i].p);
    }
    free(w->blocks);
    w->blocks = NULL;
    w->n_blocks = w->cap_blocks = 0;
}

void sg_pool_free(sg_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    p->fn = NULL;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n; i++)
        if (p->workers[i].started) pthread_join(p->workers[i].thread, NULL);
    for (int i = 0; i < p->n; i++) {
        free_blocks(p, &p->workers[i]);
        hwloc_bitmap_free(p->workers[i].cpuset);
        hwloc_bitmap_free(p->workers[i].nodeset);
    }
    free(p->workers);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cond);
    sg_topology_close(p->topo);
    free(p);
}

sg_status sg_pool_create_on(const char *synthetic, const char *cpus, sg_pool **out, sg_err *err)
{
    *out = NULL;
    sg_blas_single_thread(); /* workers are the parallelism: no BLAS threads on top */
    sg_pool *p = calloc(1, sizeof *p);
    if (!p) return sg_errf(err, SG_ENOMEM, "pool: out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cond, NULL);
    atomic_init(&p->spin_iters, SPIN_ITERS);
    int rc = sg_topology_open(synthetic, &p->topo, err);
    sg_placement *pl = NULL;
    int n = 0;
    if (rc == SG_OK) rc = sg_topology_plan(p->topo, cpus, &pl, &n, err);
    if (rc == SG_OK && n > SG_POOL_MAX_WORKERS)
        rc = sg_errf(err, SG_EINPUT, "--cpus: %d workers; a run takes at most %d", n,
                     SG_POOL_MAX_WORKERS);
    if (rc == SG_OK) rc = sg_blas_reserve(n + 1, err); /* the workers and this thread */
    if (rc == SG_OK) {
        p->workers = aligned_alloc(64, ((size_t)n * sizeof *p->workers + 63) / 64 * 64);
        if (!p->workers)
            rc = sg_errf(err, SG_ENOMEM, "pool: out of memory");
        else
            memset(p->workers, 0, (size_t)n * sizeof *p->workers);
    }
    if (rc != SG_OK) {
        free(pl);
        if (!p->topo) {
            pthread_mutex_destroy(&p->lock);
            pthread_cond_destroy(&p->wake);
            pthread_cond_destroy(&p->done_cond);
            free(p);
        } else {
            sg_pool_free(p);
        }
        return rc;
    }
    for (int i = 0; i < n; i++) {
        sg_worker *w = &p->workers[i];
        w->pool = p;
        w->pl = pl[i];
        w->last_alloc_node = -1;
        w->cpuset = hwloc_bitmap_alloc();
        w->nodeset = hwloc_bitmap_alloc();
        hwloc_bitmap_only(w->cpuset, (unsigned)pl[i].pu);
        hwloc_bitmap_only(w->nodeset, (unsigned)pl[i].node);
    }
    free(pl);
    for (int i = 0; i < n; i++) {
        sg_worker *w = &p->workers[i];
        sg_status st = sg_thread_start(&w->thread, worker_main, w, err,
                                       "pool: cannot start worker thread %d", i);
        if (st) {
            p->n = i;
            sg_pool_free(p);
            return st;
        }
        w->started = true;
        p->n = i + 1;
    }
    sg_pool_run(p, job_bind, NULL);
    p->membind = MB_STRICT;
    for (int i = 0; i < n; i++) {
        sg_worker *w = &p->workers[i];
        if (w->init_status != SG_OK) {
            rc = sg_errf(err, w->init_status, "%s", w->init_msg);
            sg_pool_free(p);
            return rc;
        }
        if (w->membind > p->membind) p->membind = w->membind;
    }
    *out = p;
    return SG_OK;
}

sg_status sg_pool_create(const char *cpus, sg_pool **out, sg_err *err)
{
    return sg_pool_create_on(NULL, cpus, out, err);
}

void sg_pool_set_spin(sg_pool *p, bool spin)
{
    atomic_store_explicit(&p->spin_iters, spin ? SPIN_ITERS : 0, memory_order_relaxed);
}

int sg_pool_size(const sg_pool *p)
{
    return p->n;
}
const sg_placement *sg_pool_placement(const sg_pool *p, int i)
{
    SG_ASSERT(i >= 0 && i < p->n);
    return &p->workers[i].pl;
}
bool sg_pool_bound(const sg_pool *p)
{
    return !p->topo->synthetic;
}
const char *sg_pool_membind_policy(const sg_pool *p)
{
    return membind_names[p->membind];
}

int sg_worker_index(const sg_worker *w)
{
    return w->pl.worker;
}
int sg_worker_cpu(const sg_worker *w)
{
    return w->pl.pu;
}
int sg_worker_node(const sg_worker *w)
{
    return w->pl.node;
}
int sg_worker_count(const sg_worker *w)
{
    return w->pool->n;
}
int sg_worker_last_alloc_node(const sg_worker *w)
{
    return w->last_alloc_node;
}
int sg_worker_machine_nodes(const sg_worker *w)
{
    int n = hwloc_get_nbobjs_by_type(w->pool->topo->topo, HWLOC_OBJ_NUMANODE);
    return n > 0 ? n : 1;
}

void *sg_worker_alloc(sg_worker *w, size_t bytes)
{
    if (bytes == 0) bytes = 1;
    if (w->n_blocks == w->cap_blocks) {
        size_t cap = w->cap_blocks ? w->cap_blocks * 2 : 8;
        sg_block *nb = realloc(w->blocks, cap * sizeof *nb);
        if (!nb) return NULL;
        w->blocks = nb;
        w->cap_blocks = cap;
    }
    hwloc_topology_t topo = w->pool->topo->topo;
    sg_block b = {NULL, bytes, false};
    if (!w->pool->topo->synthetic) {
        /* Page-aligned, so also 64-byte aligned. Strict first; see bind_self for the fallbacks. */
        b.p = hwloc_alloc_membind(topo, bytes, w->nodeset, HWLOC_MEMBIND_BIND,
                                  HWLOC_MEMBIND_STRICT | HWLOC_MEMBIND_BYNODESET);
        if (!b.p)
            b.p = hwloc_alloc_membind(topo, bytes, w->nodeset, HWLOC_MEMBIND_BIND,
                                      HWLOC_MEMBIND_BYNODESET);
        b.hwloc = b.p != NULL;
    }
    if (!b.p) {
        size_t rounded = (bytes + 63) / 64 * 64;
        b.p = aligned_alloc(64, rounded);
        if (!b.p) return NULL;
    }
    memset(b.p, 0, bytes); /* touched by the worker itself: pages fault in now, not while timed */
    w->blocks[w->n_blocks++] = b;
    w->last_alloc_node = w->pl.node;
    return b.p;
}
