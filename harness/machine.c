/*
 * The machine record that goes with every latency number, and the checks
 * that warn when the machine is set up to distort latency.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <hwloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "machine_internal.h"
#include "topology_internal.h"
#include "stagegate/json.h"
#include "stagegate/harness.h"
#include "stagegate/kernels.h"
#include "stagegate/version.h"

/*
 * OpenBLAS's kernel family. A DYNAMIC_ARCH build (Debian's) picks its kernels from cpuid when
 * it is loaded. OpenBLAS 0.3.21 knows Intel family 6 by model; a model it does not list
 * (Emerald Rapids, family 6 model 207, for one) falls through its switch to the Pentium 4
 * case and gets the Prescott kernels: SSE3, no FMA. On such a Xeon that made sgemm 5x slower
 * (29 against 156 GFLOP/s on one core) and every hidden layer of eval with it, since the
 * fused kernels run only where their bits match sgemm's. OpenBLAS picks a family without
 * AVX2 on a CPU whose cpuid and XCR0 say AVX2 and FMA only when it does not know the CPU (its
 * own rules take Haswell wherever they see AVX2), so then stagegate selects, through
 * OpenBLAS's own OPENBLAS_CORETYPE mechanism, the family OpenBLAS gives the nearest CPU it
 * knows: Cooperlake for AVX-512 with BF16, SkylakeX for AVX-512 (F, CD, DQ, BW, VL and the
 * OS's ZMM state), else Haswell. A value of OPENBLAS_CORETYPE the user set is kept as it is
 * (OPENBLAS_CORETYPE=Prescott keeps OpenBLAS's choice). This runs once, before the first BLAS
 * call of the process.
 */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static int blas_threads_at_load;
static char core_replaced[32]; /* the family OpenBLAS had chosen, when stagegate replaced it */

const char *sg_blas_core_for_cpu(void)
{
    if (!sg_kernels_variant(SG_ISA_AVX2)) return NULL; /* also checks FMA and the YMM state */
    if (!sg_kernels_variant(SG_ISA_AVX512)) return "Haswell";
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & (1u << 28))) return "Haswell"; /* AVX512CD, which the SkylakeX kernels use */
    const unsigned max_sub = a;
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        if (a & (1u << 5)) return "Cooperlake"; /* AVX512_BF16 */
    }
    return "SkylakeX";
}

/*
 * One BLAS thread. Only when it changes something: OpenBLAS (0.3.21) shuts its thread pool
 * down before every fork() (its atfork handler; the HDF5 sandbox forks), and each later
 * openblas_set_num_threads starts the pool again. A new pool thread then spins for the pool's
 * timeout, 2^28 cycles: about 0.09 s of a core taken from the workers, in every eval. Set
 * once before the first fork, the count stays 1 and no pool comes back.
 */
static int blas_one_thread(void)
{
    int prev = openblas_get_num_threads();
    if (prev != 1) {
        openblas_set_num_threads(1);
        /* The pool OpenBLAS started when it was loaded spins just the same, from before
         * main, until a fork stops it: through a whole XGBoost JSON or ONNX model load
         * (0.1 s of a core), which does not fork. Its pthreads build exports the stop its
         * fork handler calls (it joins the pool's threads); other builds have no pool. */
        int (*stop_pool)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
        if (stop_pool) stop_pool();
    }
    return prev;
}

/* After blas_one_thread: no thread of OpenBLAS's pool runs. It must not: a pool thread that
   is still starting makes OpenBLAS's first buffer, which runs its kernel choice as well
   (a stagegate that chose while the pool started crashed in 1 of 30-200 runs). */
/* OpenBLAS's families whose kernels stop below AVX2 (the names it reports): its fallbacks
   for a CPU it does not know (Prescott on Intel, Barcelona on AMD) and older CPUs' own. */
static bool core_below_avx2(const char *core)
{
    static const char *const below[] = {
        "Prescott", "Barcelona",     "Katmai",       "Coppermine", "Northwood", "Banias",
        "Atom",     "Core2",         "Penryn",       "Dunnington", "Nehalem",   "Athlon",
        "Opteron",  "Opteron(SSE3)", "Opteron_SSE3", "Nano",       "Bobcat",    "Sandybridge"};
    for (size_t i = 0; i < sizeof below / sizeof *below; i++)
        if (strcmp(core, below[i]) == 0) return true;
    return false;
}

static void choose_core(void)
{
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *core = openblas_get_corename();
    if (!core || !core_below_avx2(core)) return;
    char was[sizeof core_replaced];
    snprintf(was, sizeof was, "%s", core);
    const char *want = sg_blas_core_for_cpu();
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!want || !quit || !init) return; /* a build for one CPU has no other kernels */
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
    quit(); /* forgets the choice; init makes it again, reading OPENBLAS_CORETYPE */
    init();
    unsetenv("OPENBLAS_CORETYPE");
    core = openblas_get_corename();
    if (core && strcmp(core, want) == 0) memcpy(core_replaced, was, sizeof was);
}

/*
 * OpenBLAS's sgemm buffers (128 MiB of address space each, untouched until used), one for
 * each thread that may call it at once, made now. OpenBLAS makes one the first time a thread
 * calls sgemm with every buffer it has in use, and when that mapping fails it retries for
 * ever: under `ulimit -v 589824` eval's chunk buffers had taken the room by then, and a
 * worker spun at 100% CPU in blas_memory_alloc with no end (found by attacking the tool). Made
 * here, they come before any of stagegate's own; a mapping that fails now is found by a
 * probe first, and reported (sg_blas_check), instead of OpenBLAS's endless retry.
 */
#define BLAS_BUFFER_BYTES ((size_t)128 << 20)
#define BLAS_BUFFERS_MAX 64
static int blas_buffers_short; /* how many of the buffers could not be mapped */
static int blas_buffers_wanted;

/* Takes n of OpenBLAS's buffers, each held while the next is taken, then gives them back: a
   buffer OpenBLAS made already is taken again without a mapping, and past the first `have`
   a new one is mapped only after a probe showed the room for it. Returns how many it got. */
static int take_buffers(int n, int have)
{
    void *(*alloc)(int) = (void *(*)(int))dlsym(RTLD_DEFAULT, "blas_memory_alloc");
    void (*release)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "blas_memory_free");
    if (!alloc || !release) return n;
    void *buf[BLAS_BUFFERS_MAX];
    int held = 0;
    for (; held < n; held++) {
        if (held >= have) {
            void *probe = mmap(NULL, BLAS_BUFFER_BYTES, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (probe == MAP_FAILED) break;
            munmap(probe, BLAS_BUFFER_BYTES);
        }
        buf[held] = alloc(0);
    }
    for (int i = 0; i < held; i++)
        if (buf[i]) release(buf[i]);
    return held;
}

static void blas_reserve(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) + 1; /* every worker, and the main thread */
    if (n < 2) n = 2;
    if (n > BLAS_BUFFERS_MAX) n = BLAS_BUFFERS_MAX;
    blas_buffers_wanted = (int)n;
    blas_buffers_short = (int)n - take_buffers((int)n, 0);
}

static void blas_setup(void)
{
    blas_threads_at_load = blas_one_thread();
    choose_core();
    blas_reserve();
}

const char *sg_blas_core(const char **replaced)
{
    pthread_once(&blas_once, blas_setup);
    if (replaced) *replaced = core_replaced[0] ? core_replaced : NULL;
    return openblas_get_corename();
}

/* What the family's kernels need that this CPU or OS lacks, or NULL when it runs them (or the
   family is not one listed here). OpenBLAS runs whatever OPENBLAS_CORETYPE names, and a family
   the CPU cannot run ends the process with SIGILL at the first sgemm (FMA4 in Excavator's,
   3DNow! in the Opteron kernels' copy routines, on an Intel CPU). */
static const char *core_lacks(const char *core)
{
    enum { AVX512, AVX2, AVX, FMA4, NOW3D };
    unsigned a, b, c = 0, d = 0;
    if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000001u) __cpuid(0x80000001u, a, b, c, d);
    const bool has[] = {sg_kernels_variant(SG_ISA_AVX512) != NULL,
                        sg_kernels_variant(SG_ISA_AVX2) != NULL, sg_cpu_avx(),
                        sg_cpu_avx() && (c & (1u << 16)), (d & (1u << 31)) != 0};
    static const char *const what[] = {"AVX-512 (F, DQ, BW, VL)", "AVX2 and FMA", "AVX",
                                       "AMD's FMA4", "AMD's 3DNow!"};
    static const struct {
        const char *family;
        int needs;
    } table[] = {{"SkylakeX", AVX512},    {"Cooperlake", AVX512}, {"SapphireRapids", AVX512},
                 {"Haswell", AVX2},       {"Zen", AVX2},          {"Sandybridge", AVX},
                 {"Bulldozer", FMA4},     {"Piledriver", FMA4},   {"Steamroller", FMA4},
                 {"Excavator", FMA4},     {"Opteron", NOW3D},     {"Opteron(SSE3)", NOW3D},
                 {"Opteron_SSE3", NOW3D}, {"Athlon", NOW3D}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcasecmp(core, table[i].family) == 0)
            return has[table[i].needs] ? NULL : what[table[i].needs];
    return NULL;
}

/*
 * Buffers for `threads` threads that may call sgemm at once. blas_reserve made one per CPU
 * online and one for the main thread; a pool planned on more workers than that (a synthetic
 * topology: "numa:1 core:4 pu:1" on 2 CPUs) had left the others to map theirs at the first
 * sgemm, and under an address-space limit a worker spun in OpenBLAS's endless retry (found
 * by attacking the tool). Taken here, before any worker computes, a mapping that fails is an
 * input error. OpenBLAS's own table is the bound: at most BLAS_BUFFERS_MAX.
 */
sg_status sg_blas_reserve(int threads, sg_err *err)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_once(&blas_once, blas_setup);
    if (threads > BLAS_BUFFERS_MAX) threads = BLAS_BUFFERS_MAX;
    pthread_mutex_lock(&lock);
    const int have = blas_buffers_wanted - blas_buffers_short;
    int held = have;
    if (threads > have && (held = take_buffers(threads, have)) == threads) {
        blas_buffers_wanted = threads;
        blas_buffers_short = 0;
    }
    pthread_mutex_unlock(&lock);
    if (threads > have && held < threads)
        return sg_errf(err, SG_EINPUT,
                       "the address-space or data limit (ulimit -v, ulimit -d) leaves no room "
                       "for %d of OpenBLAS's %d sgemm buffers of 128 MiB (one per thread that "
                       "computes: %d workers and the main thread); raise it by %d MiB or more, "
                       "or run fewer workers (--cpus)",
                       threads - held, threads, threads - 1, (threads - held) * 128);
    return SG_OK;
}

sg_status sg_blas_check(sg_err *err)
{
    const char *core = sg_blas_core(NULL), *asked = getenv("OPENBLAS_CORETYPE");
    if (blas_buffers_short)
        return sg_errf(err, SG_EINPUT,
                       "the address-space or data limit (ulimit -v, ulimit -d) leaves no room "
                       "for %d of OpenBLAS's %d sgemm buffers of 128 MiB (one per thread that "
                       "computes); raise it by %d MiB or more",
                       blas_buffers_short, blas_buffers_wanted, blas_buffers_short * 128);
    if (!core) return SG_OK;
    if (asked && strcasecmp(asked, core) != 0)
        return sg_errf(err, SG_EINPUT,
                       "OPENBLAS_CORETYPE=%.64s is not a kernel family this OpenBLAS has (it "
                       "runs %s instead); unset it or name one OpenBLAS lists",
                       asked, core);
    const char *lacks = core_lacks(core);
    if (lacks)
        return sg_errf(err, SG_EINPUT,
                       "OPENBLAS_CORETYPE=%s: OpenBLAS's %s kernels need %s, which this CPU or OS "
                       "does not have; unset it",
                       asked ? asked : core, core, lacks);
    return SG_OK;
}

int sg_blas_single_thread(void)
{
    static atomic_bool setup_reported;
    pthread_once(&blas_once, blas_setup);
    if (!atomic_exchange(&setup_reported, true)) return blas_threads_at_load;
    return blas_one_thread(); /* someone may have raised the count since */
}

const char *sg_blas_config(void)
{
    return openblas_get_config();
}
int sg_blas_threads(void)
{
    return openblas_get_num_threads();
}

/* First line of a small sysfs/proc file, newline stripped; "" when absent. */
static void read_line(const char *path, char *out, size_t len)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(out, (int)len, f)) out[strcspn(out, "\n")] = 0;
    fclose(f);
}

/* root + path: every /sys and /proc read goes through here so tests can point at a fake tree. */
static const char *at(const char *root, const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", root, path);
    return buf;
}

/* The value of `key` for the first processor in /proc/cpuinfo; "" when absent. The key must
 * match exactly: "model" is not "model name". */
static void cpuinfo_field(const char *root, const char *key, char *out, size_t len)
{
    out[0] = 0;
    char p[512];
    FILE *f = fopen(at(root, "/proc/cpuinfo", p, sizeof p), "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (!c) continue;
        char *k_end = c;
        while (k_end > line && (k_end[-1] == ' ' || k_end[-1] == '\t'))
            k_end--;
        if ((size_t)(k_end - line) != strlen(key) || strncmp(line, key, strlen(key))) continue;
        c++;
        while (*c == ' ' || *c == '\t')
            c++;
        c[strcspn(c, "\n")] = 0;
        snprintf(out, len, "%s", c);
        break;
    }
    fclose(f);
}

static void cpu_model(const char *root, char *out, size_t len)
{
    cpuinfo_field(root, "model name", out, len);
    if (!out[0]) snprintf(out, len, "unknown");
}

/* Vendor, family, model and stepping as the kernel decoded them from cpuid: the model name of
 * a virtual machine is often just "AMD EPYC", and these numbers say which generation it is
 * (AMD family 25 model 17 is Zen 4). A value the kernel does not give is null, never guessed. */
static json_t *cpu_signature(const char *root)
{
    json_t *sig = json_object();
    char v[128];
    cpuinfo_field(root, "vendor_id", v, sizeof v);
    json_object_set_new(sig, "vendor", v[0] ? json_string(v) : json_null());
    static const char *const keys[][2] = {
        {"family", "cpu family"}, {"model", "model"}, {"stepping", "stepping"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        cpuinfo_field(root, keys[i][1], v, sizeof v);
        char *end = NULL;
        long n = v[0] ? strtol(v, &end, 10) : -1;
        json_object_set_new(sig, keys[i][0],
                            n >= 0 && end && !*end ? json_integer(n) : json_null());
    }
    return sig;
}

static void governor(const char *root, int cpu, char *out, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpu%d/cpufreq/scaling_governor", root,
             cpu);
    read_line(path, out, len);
    if (!out[0]) snprintf(out, len, "unknown");
}

/* "on", "off" or "unknown": acpi-cpufreq/amd boost switch, or intel_pstate's no_turbo. */
static const char *boost_state(const char *root)
{
    char v[32], p[512];
    read_line(at(root, "/sys/devices/system/cpu/cpufreq/boost", p, sizeof p), v, sizeof v);
    if (v[0]) return v[0] == '1' ? "on" : "off";
    read_line(at(root, "/sys/devices/system/cpu/intel_pstate/no_turbo", p, sizeof p), v, sizeof v);
    if (v[0]) return v[0] == '1' ? "off" : "on";
    return "unknown";
}

const char *sg_blas_core_chosen_by(void)
{
    const char *replaced;
    sg_blas_core(&replaced);
    return replaced ? "stagegate" : getenv("OPENBLAS_CORETYPE") ? "OPENBLAS_CORETYPE" : "openblas";
}

json_t *sg_machine_json(void)
{
    return sg_machine_json_at("");
}

/*
 * This machine's topology, whatever hwloc's environment says: HWLOC_SYNTHETIC, HWLOC_XMLFILE,
 * HWLOC_FSROOT and HWLOC_CPUID_PATH describe another machine (placement is then planned only),
 * and the record had described that one: 16 cores, 32 logical CPUs and 4 NUMA nodes on a
 * 2-CPU machine. They are hidden for the load and put back; hwloc reads them nowhere else, and
 * they are set only when someone plans for another machine.
 *
 * The record counts the whole machine: inside a cpuset cgroup (a container, a CI slot), hwloc
 * keeps only the allowed CPUs by default, and a 2-core machine limited to CPU 0 was recorded
 * as a 1-core machine. *allowed is the number of logical CPUs this process may run on.
 */
static void load_this_machine(int *cores, int *pus, int *numa, int *allowed)
{
    const char *const *vars = sg_hwloc_machine_vars;
    char *saved[SG_HWLOC_MACHINE_VARS] = {0};
    for (int i = 0; i < SG_HWLOC_MACHINE_VARS; i++) {
        const char *v = getenv(vars[i]);
        if (!v) continue;
        saved[i] = strdup(v);
        unsetenv(vars[i]);
    }
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) == 0) {
        if (hwloc_topology_set_flags(topo, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED) == 0 &&
            hwloc_topology_load(topo) == 0) {
            *cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
            *pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
            *numa = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
            int w = hwloc_bitmap_weight(hwloc_topology_get_allowed_cpuset(topo));
            *allowed = w > 0 ? w : *pus;
        }
        hwloc_topology_destroy(topo);
    }
    for (int i = 0; i < SG_HWLOC_MACHINE_VARS; i++)
        if (saved[i]) {
            setenv(vars[i], saved[i], 1);
            free(saved[i]);
        }
}

json_t *sg_machine_json_at(const char *root)
{
    json_t *m = json_object();
    char buf[512];
    cpu_model(root, buf, sizeof buf);
    json_object_set_new(m, "cpu_model", json_string(buf));
    json_object_set_new(m, "cpu_signature", cpu_signature(root));
    int cores = 0, pus = 0, numa = 1, allowed = 0;
    load_this_machine(&cores, &pus, &numa, &allowed);
    if (cores <= 0) cores = pus;
    json_object_set_new(m, "cores", json_integer(cores));
    json_object_set_new(m, "logical_cpus", json_integer(pus));
    json_object_set_new(m, "allowed_cpus", json_integer(allowed > 0 ? allowed : pus));
    json_object_set_new(m, "smt", json_boolean(pus > cores));
    json_object_set_new(m, "numa_nodes", json_integer(numa > 0 ? numa : 1));
    governor(root, 0, buf, sizeof buf);
    json_object_set_new(m, "governor", json_string(buf));
    json_object_set_new(m, "boost", json_string(boost_state(root)));
    const sg_clock_info *ci = sg_clock();
    json_object_set_new(m, "clocksource",
                        json_string(ci->clocksource[0] ? ci->clocksource : "unknown"));
    json_object_set_new(m, "invariant_tsc", json_boolean(ci->cpuid_invariant_tsc));
    /* null when the TSC is not the clock, as `clock --json` says (it had read 0.0 here) */
    sg_json_set_real(m, "tsc_hz", ci->source == SG_CLOCK_TSC ? ci->tsc_hz : NAN);
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(buf, sizeof buf, "%s %s %s", u.sysname, u.release, u.machine);
        json_object_set_new(m, "kernel", json_string(buf));
    }
    json_t *blas = json_object();
    json_object_set_new(blas, "config", json_string(sg_blas_config()));
    json_object_set_new(blas, "threads", json_integer(sg_blas_threads()));
    const char *replaced;
    json_object_set_new(blas, "core", json_string(sg_blas_core(&replaced)));
    /* who chose the kernel family: OpenBLAS from cpuid, the user's OPENBLAS_CORETYPE, or
       stagegate in place of OpenBLAS's fallback, core_replaced (see sg_blas_core) */
    json_object_set_new(blas, "core_chosen_by", json_string(sg_blas_core_chosen_by()));
    if (replaced) json_object_set_new(blas, "core_replaced", json_string(replaced));
    json_object_set_new(m, "openblas", blas);
    json_t *sg = json_object();
    json_object_set_new(sg, "version", json_string(SG_VERSION));
    json_object_set_new(sg, "build_flags", json_string(SG_BUILD_FLAGS));
    /* The kernel table the run computed with (the best this CPU and OS run, or STAGEGATE_ISA's
       choice): the same model on the same machine is 2-3x apart between avx2 and avx512. */
    json_object_set_new(sg, "kernels", json_string(sg_kernels()->name));
    json_object_set_new(m, "stagegate", sg);
    return m;
}

/* Busy fraction of one CPU over ~50 ms from /proc/stat; negative when unknown. */
static double cpu_busy(const char *root, int cpu)
{
    unsigned long long v[2][8];
    char p[512];
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(at(root, "/proc/stat", p, sizeof p), "r");
        if (!f) return -1;
        char line[512], want[32];
        snprintf(want, sizeof want, "cpu%d ", cpu);
        bool found = false;
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, want, strlen(want))) continue;
            found =
                sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[k][0],
                       &v[k][1], &v[k][2], &v[k][3], &v[k][4], &v[k][5], &v[k][6], &v[k][7]) == 8;
            break;
        }
        fclose(f);
        if (!found) return -1;
        if (k == 0) nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    unsigned long long tot = 0, idle = (v[1][3] - v[0][3]) + (v[1][4] - v[0][4]);
    for (int i = 0; i < 8; i++)
        tot += v[1][i] - v[0][i];
    return tot ? 1.0 - (double)idle / (double)tot : -1;
}

int sg_machine_warnings(const int *cpus, int n, char w[][160], int max)
{
    return sg_machine_warnings_at("", cpus, n, w, max);
}

int sg_machine_warnings_at(const char *root, const int *cpus, int n, char w[][160], int max)
{
    int k = 0;
    char g[64];
    for (int i = 0; i < n && k < max; i++) {
        governor(root, cpus[i], g, sizeof g);
        if (strcmp(g, "performance") && strcmp(g, "unknown")) {
            snprintf(
                w[k++], 160,
                "CPU %d governor is '%s', not 'performance': frequency may ramp during the run",
                cpus[i], g);
            break;
        }
    }
    if (k < max && !strcmp(boost_state(root), "on"))
        snprintf(w[k++], 160,
                 "CPU boost is on: latency depends on temperature and load on other cores");
    for (int i = 0; i < n && k < max; i++) {
        char path[512], sib[128];
        snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list",
                 root, cpus[i]);
        read_line(path, sib, sizeof sib);
        /* Siblings as a list like "0,32" or "0-1"; any sibling we do not use and that is busy
         * steals the core. */
        for (char *p = sib; *p && k < max;) {
            char *end;
            long a = strtol(p, &end, 10), b = a;
            if (end == p) break;
            if (*end == '-') b = strtol(end + 1, &end, 10);
            for (long c = a; c <= b && k < max; c++) {
                bool ours = false;
                for (int j = 0; j < n; j++)
                    ours |= cpus[j] == c;
                double busy = ours ? 0 : cpu_busy(root, (int)c);
                if (busy > 0.10)
                    snprintf(w[k++], 160,
                             "SMT sibling CPU %ld of CPU %d is %.0f%% busy: it shares the core's "
                             "execution units",
                             c, cpus[i], busy * 100);
            }
            p = *end ? end + 1 : end;
        }
    }
    return k;
}
