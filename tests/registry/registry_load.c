/*
 * Test and benchmark helper: CONNS threads, each with its own registry connection, share the
 * versions FIRST..LAST of MODEL (an atomic counter hands them out) and time each operation.
 *   staging     transition v -> Staging with the signed report ./rV.json (a gated promotion:
 *               the registry verifies the report's signature, digest, result and age)
 *   production  transition v -> Production with a request signed by KEY.pem
 *   get         read version v (cycling over the range, LAST - FIRST + 1 reads in all)
 *   upload      store the signed report ./rV.json as the server stores an upload (it must
 *               verify with a trusted signer key of the registry)
 * Prints one line: ops, ok, refused, failed, wall seconds, ops per second, p50 and p99 in ms.
 * Refusals (exit 1 of the CLI) are counted, not errors: concurrent promoters to Production
 * see each other. Exit 0 unless an operation failed otherwise (or the arguments are wrong).
 *
 * Threads: each thread owns its sg_registry handle and its slice of lat[] (indexed by the
 * operation number it took from `next`); main reads lat[] after joining every thread.
 * usage: registry_load DB MODEL staging|production|get|upload CONNS FIRST LAST [KEY.pem]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stagegate/registry.h"

static const char *db, *model, *mode, *key;
static int64_t first, last;
static atomic_long next;
static atomic_int n_ok, n_refused, n_failed;
static double *lat;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int one(sg_registry *reg, int64_t v, sg_err *err)
{
    if (!strcmp(mode, "get")) {
        json_t *doc = sg_registry_get_version(reg, model, v, err);
        json_decref(doc);
        return doc ? SG_OK : SG_EINPUT;
    }
    if (!strcmp(mode, "production")) {
        sg_registry_request req = {0};
        int rc =
            sg_registry_request_sign(reg, key, "transition", model, v, "Production", "", &req, err);
        if (rc == SG_OK)
            rc = sg_registry_transition(reg, model, v, "Production", NULL, 0, &req, err);
        sg_registry_request_clear(&req);
        return rc;
    }
    char path[64];
    snprintf(path, sizeof path, "r%lld.json", (long long)v);
    uint8_t *rep = NULL;
    size_t n = 0;
    int rc = sg_read_file(path, 1 << 20, &rep, &n, err);
    if (rc == SG_OK && !strcmp(mode, "upload")) {
        char sha[65];
        rc = sg_registry_put_report(reg, rep, n, "registry_load", sha, err);
    } else if (rc == SG_OK) {
        rc = sg_registry_transition(reg, model, v, "Staging", rep, n, NULL, err);
    }
    free(rep);
    return rc;
}

static void *worker(void *arg)
{
    (void)arg;
    sg_registry *reg = NULL;
    sg_err err;
    if (sg_registry_open(db, false, &reg, &err) != SG_OK) {
        fprintf(stderr, "registry_load: %s\n", err.msg);
        atomic_fetch_add(&n_failed, 1);
        return NULL;
    }
    int64_t span = last - first + 1;
    for (long i; (i = atomic_fetch_add(&next, 1)) < span;) {
        double t0 = now_ms();
        int rc = one(reg, first + i % span, &err);
        lat[i] = now_ms() - t0;
        if (rc == SG_OK) {
            atomic_fetch_add(&n_ok, 1);
        } else if (rc == SG_EREFUSED) {
            atomic_fetch_add(&n_refused, 1);
        } else {
            fprintf(stderr, "registry_load: v%lld: %s\n", (long long)(first + i % span), err.msg);
            atomic_fetch_add(&n_failed, 1);
        }
    }
    sg_registry_close(reg);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc > 8) {
        fprintf(stderr,
                "usage: registry_load DB MODEL staging|production|get|upload CONNS FIRST LAST "
                "[KEY.pem]\n");
        return 2;
    }
    db = argv[1];
    model = argv[2];
    mode = argv[3];
    int conns = atoi(argv[4]);
    first = atoll(argv[5]);
    last = atoll(argv[6]);
    key = argc == 8 ? argv[7] : NULL;
    if (conns < 1 || conns > 256 || first < 1 || last < first ||
        (!strcmp(mode, "production") && !key)) {
        fprintf(stderr, "registry_load: bad arguments\n");
        return 2;
    }
    long span = (long)(last - first + 1);
    lat = calloc((size_t)span, sizeof *lat);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    if (!lat || !th) return 2;
    double t0 = now_ms();
    for (int i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < conns; i++)
        pthread_join(th[i], NULL);
    double wall = (now_ms() - t0) / 1e3;
    qsort(lat, (size_t)span, sizeof *lat, cmp);
    printf(
        "ops %ld ok %d refused %d failed %d wall_s %.3f ops_per_s %.1f p50_ms %.2f p99_ms %.2f\n",
        span, n_ok, n_refused, n_failed, wall, (double)span / wall, lat[span / 2],
        lat[(size_t)((double)span * 0.99)]);
    free(lat);
    free(th);
    return n_failed ? 1 : 0;
}
