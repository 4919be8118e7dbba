/*
 * The machine record and the distortion warnings on fake /sys and /proc trees:
 * files missing (as in VMs and containers) give "unknown" and no warning, never
 * a failure; a powersave governor and boost on are reported.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <dirent.h>
#include <dlfcn.h>

#include "harness/machine_internal.h"
#include "stagegate/harness.h"

static char g_root[256];

static void put(const char *rel, const char *text)
{
    char path[512], dir[512];
    snprintf(path, sizeof path, "%s%s", g_root, rel);
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + strlen(g_root) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(dir, 0700);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp =
        getenv("TMPDIR"); /* else the working directory (the build tree under ctest) */
    if (tmp && *tmp)
        snprintf(g_root, sizeof g_root, "%s/sg_machine_XXXXXX", tmp);
    else
        snprintf(g_root, sizeof g_root, "sg_machine_XXXXXX");
    return mkdtemp(g_root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *str(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* Nothing under root: every field is still there, unreadable ones say "unknown". */
static void missing_files(void **state)
{
    (void)state;
    json_t *m = sg_machine_json_at(g_root);
    assert_non_null(m);
    assert_string_equal(str(m, "cpu_model"), "unknown");
    const json_t *sig = json_object_get(m, "cpu_signature");
    const char *sig_keys[] = {"vendor", "family", "model", "stepping"};
    for (int i = 0; i < 4; i++)
        assert_true(json_is_null(json_object_get(sig, sig_keys[i])));
    assert_string_equal(str(m, "governor"), "unknown");
    assert_string_equal(str(m, "boost"), "unknown");
    str(m, "clocksource");
    str(m, "kernel");
    const char *ints[] = {"cores", "logical_cpus", "numa_nodes"};
    for (int i = 0; i < 3; i++) {
        assert_true(json_is_integer(json_object_get(m, ints[i])));
        assert_true(json_integer_value(json_object_get(m, ints[i])) >= 1);
    }
    assert_true(json_is_boolean(json_object_get(m, "smt")));
    const json_t *blas = json_object_get(m, "openblas");
    str(blas, "config");
    assert_true(json_is_integer(json_object_get(blas, "threads")));
    const json_t *sg = json_object_get(m, "stagegate");
    assert_true(strlen(str(sg, "version")) > 0);
    str(sg, "build_flags");
    json_decref(m);
    char w[8][160];
    int cpus[2] = {0, 1};
    assert_int_equal(sg_machine_warnings_at(g_root, cpus, 2, w, 8), 0);
}

static void governor_and_boost(void **state)
{
    (void)state;
    put("/proc/cpuinfo", "processor\t: 0\nmodel name\t: Test CPU 9000 @ 3.0GHz\n");
    put("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "performance\n");
    put("/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor", "powersave\n");
    put("/sys/devices/system/cpu/cpufreq/boost", "1\n");
    json_t *m = sg_machine_json_at(g_root);
    assert_string_equal(str(m, "cpu_model"), "Test CPU 9000 @ 3.0GHz");
    assert_string_equal(str(m, "governor"), "performance");
    assert_string_equal(str(m, "boost"), "on");
    json_decref(m);
    char w[8][160];
    int cpus[2] = {0, 1};
    /* CPU 0 alone is fine on the governor; boost is machine-wide. */
    assert_int_equal(sg_machine_warnings_at(g_root, cpus, 1, w, 8), 1);
    assert_non_null(strstr(w[0], "boost is on"));
    assert_int_equal(sg_machine_warnings_at(g_root, cpus, 2, w, 8), 2);
    assert_non_null(strstr(w[0], "CPU 1 governor is 'powersave'"));
    assert_non_null(strstr(w[1], "boost is on"));
    assert_int_equal(sg_machine_warnings_at(g_root, cpus, 2, w, 1), 1); /* max respected */
    /* No acpi-cpufreq switch: intel_pstate's no_turbo decides (1 = boost off). */
    char path[512];
    snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpufreq/boost", g_root);
    assert_int_equal(remove(path), 0);
    put("/sys/devices/system/cpu/intel_pstate/no_turbo", "1\n");
    m = sg_machine_json_at(g_root);
    assert_string_equal(str(m, "boost"), "off");
    json_decref(m);
    assert_int_equal(sg_machine_warnings_at(g_root, cpus, 1, w, 8), 0);
    put("/sys/devices/system/cpu/intel_pstate/no_turbo", "0\n");
    assert_int_equal(sg_machine_warnings_at(g_root, cpus, 1, w, 8), 1);
    assert_non_null(strstr(w[0], "boost is on"));
}

/* A sibling we use ourselves is never "busy"; an idle or unreadable one is not either. */
static long long sig_int(const json_t *m, const char *key)
{
    const json_t *v = json_object_get(json_object_get(m, "cpu_signature"), key);
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

/* A virtual machine's model name says little ("AMD EPYC"); the signature says which CPU it is.
 * "model" must not be read from "model name", nor a later processor's block used. */
static void cpu_signature(void **state)
{
    (void)state;
    put("/proc/cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
                         "model\t\t: 17\nmodel name\t: AMD EPYC\nstepping\t: 0\n\n"
                         "processor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\n"
                         "model\t\t: 2\nmodel name\t: AMD EPYC\nstepping\t: 1\n");
    json_t *m = sg_machine_json_at(g_root);
    assert_string_equal(str(m, "cpu_model"), "AMD EPYC");
    assert_string_equal(str(json_object_get(m, "cpu_signature"), "vendor"), "AuthenticAMD");
    assert_int_equal(sig_int(m, "family"), 25);
    assert_int_equal(sig_int(m, "model"), 17);
    assert_int_equal(sig_int(m, "stepping"), 0);
    json_decref(m);
    /* A non-numeric value is reported as unknown (null), not parsed as a prefix. */
    put("/proc/cpuinfo", "model name\t: X\ncpu family\t: 6x\nmodel\t\t: \n");
    m = sg_machine_json_at(g_root);
    const json_t *sig = json_object_get(m, "cpu_signature");
    assert_true(json_is_null(json_object_get(sig, "family")));
    assert_true(json_is_null(json_object_get(sig, "model")));
    assert_true(json_is_null(json_object_get(sig, "vendor")));
    assert_string_equal(str(m, "cpu_model"), "X");
    json_decref(m);
}

static void smt_siblings(void **state)
{
    (void)state;
    put("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list", "0-1\n");
    put("/sys/devices/system/cpu/intel_pstate/no_turbo", "1\n");
    put("/proc/stat", "cpu  1 0 1 100 0 0 0 0 0 0\ncpu0 1 0 1 100 0 0 0 0 0 0\n"
                      "cpu1 1 0 1 100 0 0 0 0 0 0\n");
    char w[8][160];
    int both[2] = {0, 1}, one[1] = {0};
    assert_int_equal(sg_machine_warnings_at(g_root, both, 2, w, 8), 0);
    assert_int_equal(sg_machine_warnings_at(g_root, one, 1, w, 8), 0); /* counters did not move */
}

/* ThreadSanitizer runs a background thread of its own in every process. */
#ifdef __SANITIZE_THREAD__
#define SANITIZER_THREADS 1
#else
#define SANITIZER_THREADS 0
#endif

/* Threads of this process. */
static int task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/*
 * Workers are the parallelism, so OpenBLAS runs one thread: setting that also stops the pool
 * OpenBLAS started when it loaded (its pthreads build; it spins until stopped), and a second
 * call changes nothing. Runs first, before anything here could fork or start threads.
 */
static void blas_single_thread_stops_pool(void **state)
{
    (void)state;
    int before = task_count();
    int prev = sg_blas_single_thread();
    assert_int_equal(sg_blas_threads(), 1);
    if (prev > 1 && dlsym(RTLD_DEFAULT, "blas_thread_shutdown_")) {
        assert_true(before > 1 + SANITIZER_THREADS); /* the pool OpenBLAS started at load */
        assert_int_equal(task_count(), 1 + SANITIZER_THREADS);
    }
    int after = task_count();
    assert_int_equal(sg_blas_single_thread(), 1);
    assert_int_equal(task_count(), after);
}

/*
 * OpenBLAS's kernel family: never its fallback without AVX2 on a CPU that runs AVX2 and FMA (an
 * x86 CPU OpenBLAS 0.3.21 does not know got its Prescott SSE3 kernels, sgemm 5x slower); when
 * stagegate replaced it, the family is the one this CPU calls for and the machine record says
 * who chose and what it replaced.
 */
static void blas_core_is_not_the_fallback(void **state)
{
    (void)state;
    const char *replaced, *core = sg_blas_core(&replaced);
    const char *best = sg_blas_core_for_cpu();
    assert_non_null(core);
    json_t *m = sg_machine_json();
    assert_non_null(m);
    const json_t *blas = json_object_get(m, "openblas");
    assert_string_equal(json_string_value(json_object_get(blas, "core")), core);
    const char *by = json_string_value(json_object_get(blas, "core_chosen_by"));
    assert_non_null(by);
    if (getenv("OPENBLAS_CORETYPE")) { /* the user's choice is never replaced */
        assert_null(replaced);
        assert_string_equal(by, "OPENBLAS_CORETYPE");
    } else if (best) {
        assert_string_not_equal(core, "Prescott");
        assert_string_equal(by, replaced ? "stagegate" : "openblas");
    }
    if (replaced) {
        assert_non_null(best);
        assert_string_equal(core, best);
        assert_string_not_equal(replaced, core);
        assert_string_equal(json_string_value(json_object_get(blas, "core_replaced")), replaced);
    } else {
        assert_null(json_object_get(blas, "core_replaced"));
    }
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blas_single_thread_stops_pool),
        cmocka_unit_test(blas_core_is_not_the_fallback),
        cmocka_unit_test_setup_teardown(missing_files, setup, teardown),
        cmocka_unit_test_setup_teardown(governor_and_boost, setup, teardown),
        cmocka_unit_test_setup_teardown(cpu_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(smt_siblings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
