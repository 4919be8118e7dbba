/*
 * sgemm_peak: the machine limits benchmark results are expressed against.
 * Measures cblas_sgemm GFLOP/s (single thread and all threads, best over a
 * few large square sizes), the core's own float32 FMA peak (independent
 * fused multiply-add chains in registers, widest vectors this build targets:
 * what no kernel can exceed, and more than OpenBLAS's sgemm reaches where it
 * runs narrower kernels than the core has, as its Haswell kernel on AVX-512
 * AMD Zen 4) and a STREAM-triad memory bandwidth (a = b + s*c over arrays far
 * larger than the caches, 24 bytes counted per element as STREAM does), and
 * prints one JSON object on stdout. Runs in about 5 s on an idle machine
 * (--quick: about 2 s).
 *
 * Build and run:
 *   cc -O3 -march=native -o sgemm_peak scripts/sgemm_peak.c \
 *      $(pkg-config --cflags --libs openblas) -lpthread
 *   ./sgemm_peak [--quick]
 *
 * Threads: "all" is the number of online CPUs (OpenBLAS's own count), as an
 * offline run would use them. Each triad thread first-touches its own slice so
 * pages land on its NUMA node.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) {
        fprintf(stderr, "sgemm_peak: cannot allocate %zu bytes\n", bytes);
        exit(2);
    }
    return p;
}

/* Best GFLOP/s of C = A.B at size n: one warm-up call, then repeats within a time budget. */
static double sgemm_gflops(int n, double budget_s)
{
    float *A = xmalloc(sizeof(float) * (size_t)n * n), *B = xmalloc(sizeof(float) * (size_t)n * n),
          *C = xmalloc(sizeof(float) * (size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        A[i] = (float)(i % 17) * 0.01f;
        B[i] = (float)(i % 13) * 0.02f;
        C[i] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
    double best = 1e30;
    const double start = now();
    for (int rep = 0; rep < 1 || now() - start < budget_s; rep++) {
        const double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C,
                    n);
        const double t = now() - t0;
        if (t < best) best = t;
        if (rep >= 20) break;
    }
    free(A);
    free(B);
    free(C);
    return 2.0 * n * (double)n * n / best * 1e-9;
}

#include <immintrin.h>

/* FMA peak of one thread: ACC independent chains (enough to cover the FMA latency on every
   core we know of), each vector wide, in registers; best of a few timed repeats. */
#if defined(__AVX512F__)
typedef __m512 vec;
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VSET(x) _mm512_set1_ps(x)
#define VLANES 16
#define VNAME "avx512"
#elif defined(__FMA__)
typedef __m256 vec;
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VSET(x) _mm256_set1_ps(x)
#define VLANES 8
#define VNAME "avx2"
#endif

#ifdef VLANES
/* Chains in registers with the two operands: AVX2 has 16 vector registers, so 16 chains would
   spill to the stack (a Zen 3 core measured 58.7 GFLOP/s that way, under its sgemm's 92.5);
   12 still cover a 4-cycle latency on two FMA pipes. AVX-512 has 32. */
#if VLANES == 16
#define ACC 16
#else
#define ACC 12
#endif
static double fma_gflops_1t(long iters)
{
    double best = 1e30;
    float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        vec acc[ACC];
        for (int i = 0; i < ACC; i++)
            acc[i] = VSET((float)i * 1e-3f);
        const vec x = VSET(0.999999f), y = VSET(1e-7f);
        const double t0 = now();
        for (long it = 0; it < iters; it++)
            for (int i = 0; i < ACC; i++)
                acc[i] = VFMA(acc[i], x, y);
        const double t = now() - t0;
        if (t < best) best = t;
        float lane[VLANES];
        for (int i = 0; i < ACC; i++) {
            memcpy(lane, &acc[i], sizeof lane);
            sink += lane[0];
        }
    }
    if (sink != sink) fprintf(stderr, "sgemm_peak: FMA loop produced NaN\n");
    return 2.0 * VLANES * ACC * (double)iters / best * 1e-9;
}

typedef struct {
    long iters;
    double gflops;
} fma_arg;

static void *fma_worker(void *p)
{
    fma_arg *a = p;
    a->gflops = fma_gflops_1t(a->iters);
    return NULL;
}

/* All threads at once, each its own chains: the sum of their rates. */
static double fma_gflops_all(int threads, long iters)
{
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    fma_arg *args = calloc((size_t)threads, sizeof *args);
    for (int t = 0; t < threads; t++) {
        args[t].iters = iters;
        if (t) pthread_create(&tid[t], NULL, fma_worker, &args[t]);
    }
    fma_worker(&args[0]);
    double sum = args[0].gflops;
    for (int t = 1; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum += args[t].gflops;
    }
    free(tid);
    free(args);
    return sum;
}
#endif

typedef struct {
    double *a, *b, *c;
    size_t lo, hi;
    int reps;
    pthread_barrier_t *bar;
} triad_arg;

static void triad_slice(const triad_arg *t, int touch)
{
    if (touch) {
        for (size_t i = t->lo; i < t->hi; i++) {
            t->a[i] = 0.0;
            t->b[i] = 1.0;
            t->c[i] = 2.0;
        }
        return;
    }
    const double s = 3.0;
    double *restrict a = t->a;
    const double *restrict b = t->b, *restrict c = t->c;
    for (size_t i = t->lo; i < t->hi; i++)
        a[i] = b[i] + s * c[i];
}

/* Each worker: touch its slice, then for every rep wait at the start barrier, run, and
   wait at the end barrier; the main thread is worker 0 and times between barriers. */
static void *triad_worker(void *p)
{
    triad_arg *t = p;
    triad_slice(t, 1);
    pthread_barrier_wait(t->bar);
    for (int r = 0; r < t->reps; r++) {
        pthread_barrier_wait(t->bar);
        triad_slice(t, 0);
        pthread_barrier_wait(t->bar);
    }
    return NULL;
}

static double triad_gbs(int threads, size_t n, int reps)
{
    double *a = xmalloc(n * sizeof(double)), *b = xmalloc(n * sizeof(double)),
           *c = xmalloc(n * sizeof(double));
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    triad_arg *args = calloc((size_t)threads, sizeof *args);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    for (int t = 0; t < threads; t++)
        args[t] = (triad_arg){
            a,    b,   c, n * (size_t)t / (size_t)threads, n * (size_t)(t + 1) / (size_t)threads,
            reps, &bar};
    for (int t = 1; t < threads; t++)
        pthread_create(&tid[t], NULL, triad_worker, &args[t]);
    triad_slice(&args[0], 1);
    pthread_barrier_wait(&bar);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        pthread_barrier_wait(&bar);
        const double t0 = now();
        triad_slice(&args[0], 0);
        pthread_barrier_wait(&bar);
        const double dt = now() - t0;
        if (dt < best) best = dt;
    }
    for (int t = 1; t < threads; t++)
        pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&bar);
    const double check = a[n / 2];
    free(a);
    free(b);
    free(c);
    free(args);
    free(tid);
    if (check != 7.0) {
        fprintf(stderr, "sgemm_peak: triad produced %g, expected 7\n", check);
        exit(2);
    }
    return 3.0 * sizeof(double) * (double)n / best * 1e-9;
}

int main(int argc, char **argv)
{
    const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const double t_start = now();
    const int all = openblas_get_num_procs() > 0 ? openblas_get_num_procs() : 1;
    const int sizes[] = {1024, 1536, 2048};
    const int n_sizes = quick ? 2 : 3;
    double g1[3] = {0}, ga[3] = {0}, best1 = 0, besta = 0;

    openblas_set_num_threads(1);
    for (int i = 0; i < n_sizes; i++) {
        g1[i] = sgemm_gflops(sizes[i], quick ? 0.1 : 0.3);
        if (g1[i] > best1) best1 = g1[i];
    }
    openblas_set_num_threads(all);
    for (int i = 0; i < n_sizes; i++) {
        ga[i] = sgemm_gflops(sizes[i], quick ? 0.1 : 0.3);
        if (ga[i] > besta) besta = ga[i];
    }
    /* 3 x 64 MiB arrays: several times any last-level cache. */
    const size_t n = (size_t)8 << 20;
    const double bw1 = triad_gbs(1, n, quick ? 3 : 6);
    const double bwa = triad_gbs(all, n, quick ? 3 : 6);

#ifdef VLANES
    const long fma_iters = quick ? 2000000 : 6000000;
    const double fma1 = fma_gflops_1t(fma_iters), fmaa = fma_gflops_all(all, fma_iters);
    const char *fma_isa = VNAME;
#else
    const double fma1 = 0, fmaa = 0;
    const char *fma_isa = "none";
#endif

    char *cfg = openblas_get_config(), *core = openblas_get_corename();
    printf("{\"threads_all\": %d, \"openblas_config\": \"%s\", \"openblas_core\": \"%s\", "
           "\"sgemm_sizes\": [",
           all, cfg ? cfg : "", core ? core : "");
    for (int i = 0; i < n_sizes; i++)
        printf("%s%d", i ? ", " : "", sizes[i]);
    printf("], \"sgemm_gflops_1t\": [");
    for (int i = 0; i < n_sizes; i++)
        printf("%s%.1f", i ? ", " : "", g1[i]);
    printf("], \"sgemm_gflops_all\": [");
    for (int i = 0; i < n_sizes; i++)
        printf("%s%.1f", i ? ", " : "", ga[i]);
    printf("], \"sgemm_peak_gflops_1t\": %.1f, \"sgemm_peak_gflops_all\": %.1f, "
           "\"fma_isa\": \"%s\", \"fma_peak_gflops_1t\": %.1f, \"fma_peak_gflops_all\": %.1f, "
           "\"triad_bytes\": %zu, \"triad_gbs_1t\": %.2f, \"triad_gbs_all\": %.2f, "
           "\"seconds\": %.2f}\n",
           best1, besta, fma_isa, fma1, fmaa, 3 * n * sizeof(double), bw1, bwa, now() - t_start);
    return 0;
}
