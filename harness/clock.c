/*
 * The latency clock. The TSC is used only when cpuid says it is invariant
 * (constant rate, runs in deep C-states) and the kernel still trusts it: a
 * kernel that switched its clocksource to hpet/acpi_pm has seen the TSC
 * misbehave. Its rate is calibrated against CLOCK_MONOTONIC_RAW (not slewed by
 * NTP) several times; a large spread also sends us to the fallback.
 * State is decided once (pthread_once) and read-only afterwards.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stagegate/harness.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h> /* RUNNING_ON_VALGRIND: a no-op instruction sequence natively */
#define SG_UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#else
#define SG_UNDER_VALGRIND() 0
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>
#define SG_HAVE_TSC 1
#else
#define SG_HAVE_TSC 0
#endif

#define CALIBRATIONS 7
#define CALIB_NS 20000000.0 /* 20 ms each */
#define MAX_SPREAD 0.01     /* calibrations disagreeing by more than 1%: the TSC is not steady */

static sg_clock_info g_info;
static bool g_tsc;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static uint64_t raw_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool cpuid_invariant_tsc(void)
{
#if SG_HAVE_TSC
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u) return false;
    if (!__get_cpuid(0x80000007u, &a, &b, &c, &d)) return false;
    return (d >> 8) & 1u;
#else
    return false;
#endif
}

static void read_clocksource(char *out, size_t len)
{
    out[0] = 0;
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f) return;
    if (fgets(out, (int)len, f)) out[strcspn(out, "\n")] = 0;
    fclose(f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#if SG_HAVE_TSC
/* One calibration: TSC ticks over ~20 ms of CLOCK_MONOTONIC_RAW, each end read between two clock
 * reads. */
static double calibrate_once(void)
{
    uint64_t n0a = raw_ns(), t0 = __rdtsc(), n0b = raw_ns();
    uint64_t n1a, t1, n1b;
    do {
        n1a = raw_ns();
        t1 = __rdtsc();
        n1b = raw_ns();
    } while ((double)(n1a - n0b) < CALIB_NS);
    double ns = (double)(n1a + n1b) / 2.0 - (double)(n0a + n0b) / 2.0;
    return (double)(t1 - t0) / ns * 1e9;
}
#endif

static void clock_init(void)
{
    sg_clock_info *ci = &g_info;
    ci->cpuid_invariant_tsc = cpuid_invariant_tsc();
    read_clocksource(ci->clocksource, sizeof ci->clocksource);
    const char *force = getenv("STAGEGATE_CLOCK");
    bool use = ci->cpuid_invariant_tsc;
    if (!use)
        snprintf(ci->fallback_reason, sizeof ci->fallback_reason, "cpuid reports no invariant TSC");
    if (use && (!strcmp(ci->clocksource, "hpet") || !strcmp(ci->clocksource, "acpi_pm") ||
                !strcmp(ci->clocksource, "jiffies"))) {
        use = false;
        snprintf(ci->fallback_reason, sizeof ci->fallback_reason,
                 "the kernel distrusts the TSC (clocksource %s)", ci->clocksource);
    }
    /* valgrind (3.19) cannot execute rdtscp: under it, bench would die of SIGILL. Its
       timings mean nothing anyway; what it is run for is instruction counts. */
    if (use && SG_UNDER_VALGRIND()) {
        use = false;
        snprintf(ci->fallback_reason, sizeof ci->fallback_reason,
                 "running under valgrind, which cannot execute rdtscp");
    }
    if (force && !strcmp(force, "gettime")) {
        use = false;
        snprintf(ci->fallback_reason, sizeof ci->fallback_reason,
                 "forced by STAGEGATE_CLOCK=gettime");
    }
#if SG_HAVE_TSC
    if (use) {
        double hz[CALIBRATIONS];
        for (int i = 0; i < CALIBRATIONS; i++)
            hz[i] = calibrate_once();
        qsort(hz, CALIBRATIONS, sizeof hz[0], cmp_double);
        ci->tsc_hz = hz[CALIBRATIONS / 2];
        ci->calib_spread = (hz[CALIBRATIONS - 1] - hz[0]) / ci->tsc_hz;
        ci->calibrations = CALIBRATIONS;
        if (!(ci->tsc_hz > 1e6) || ci->calib_spread > MAX_SPREAD) {
            use = false;
            snprintf(ci->fallback_reason, sizeof ci->fallback_reason,
                     "TSC calibrations disagree by %.2f%%", ci->calib_spread * 100.0);
        }
    }
#else
    use = false;
    snprintf(ci->fallback_reason, sizeof ci->fallback_reason, "not an x86 CPU");
#endif
    g_tsc = use;
    ci->source = use ? SG_CLOCK_TSC : SG_CLOCK_GETTIME;
    ci->ticks_per_ns = use ? ci->tsc_hz / 1e9 : 1.0;
    if (use) ci->fallback_reason[0] = 0;
}

const sg_clock_info *sg_clock(void)
{
    pthread_once(&g_once, clock_init);
    return &g_info;
}

uint64_t sg_clock_start(void)
{
#if SG_HAVE_TSC
    if (g_tsc) {
        _mm_lfence(); /* earlier instructions retire before we read the counter */
        return __rdtsc();
    }
#endif
    return raw_ns();
}

uint64_t sg_clock_end(void)
{
#if SG_HAVE_TSC
    if (g_tsc) {
        unsigned aux;
        uint64_t t = __rdtscp(&aux); /* waits for the measured code to finish */
        _mm_lfence();                /* later instructions do not start before the read */
        return t;
    }
#endif
    return raw_ns();
}

uint64_t sg_clock_now(void)
{
#if SG_HAVE_TSC
    if (g_tsc) return __rdtsc();
#endif
    return raw_ns();
}

uint32_t sg_clock_cpu_tag(void)
{
#if SG_HAVE_TSC
    if (g_tsc) {
        unsigned aux;
        (void)__rdtscp(&aux); /* Linux stores (node << 12) | cpu in TSC_AUX */
        return aux;
    }
#endif
    return (uint32_t)sched_getcpu();
}

double sg_clock_ticks_to_ns(uint64_t ticks)
{
    return (double)ticks / sg_clock()->ticks_per_ns;
}

uint64_t sg_clock_ns_to_ticks(double ns)
{
    double t = ns * sg_clock()->ticks_per_ns;
    return t <= 0 ? 0 : (uint64_t)llround(t);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

uint64_t sg_clock_overhead_ticks(int reps)
{
    sg_clock();
    if (reps < 1) reps = 1;
    uint64_t *d = malloc((size_t)reps * sizeof *d);
    if (!d) return 0;
    for (int i = 0; i < reps; i++) {
        uint64_t a = sg_clock_start();
        uint64_t b = sg_clock_end();
        d[i] = b - a;
    }
    qsort(d, (size_t)reps, sizeof *d, cmp_u64);
    uint64_t med = d[reps / 2];
    free(d);
    return med;
}
