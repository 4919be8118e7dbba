/*
 * hwloc topology and worker placement: one worker per core among the chosen
 * CPUs, each with the NUMA node that holds its memory. Placement is pure
 * computation over the topology so synthetic topologies test it exactly.
 */
#define _GNU_SOURCE
#include "topology_internal.h"

#include <errno.h>
#include <hwloc/glibc-sched.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The CPUs the process was started on (taskset, numactl --physcpubind, a job scheduler's
   binding), read before any thread of stagegate is pinned: a run without --cpus uses those
   only (it had used every CPU of the machine). */
static cpu_set_t start_affinity;
static bool have_start_affinity;
__attribute__((constructor)) static void read_start_affinity(void)
{
    have_start_affinity = sched_getaffinity(0, sizeof start_affinity, &start_affinity) == 0;
}

/*
 * A synthetic description's size, refused past what hwloc builds in seconds: hwloc's load
 * grows faster than linearly with a level's width (one flat level of 16,384 cores ran for
 * minutes; 65,536 nested ones took 70 s and 5.9 GB before the worker cap refused them). The
 * count multiplies every level's arity ("type:N", attributes in parentheses skipped), which
 * is the number of PUs.
 */
#define SYNTHETIC_MAX_PUS 4096
#define SYNTHETIC_MAX_ARITY 2048
static sg_status synthetic_size_ok(const char *desc, const char *name, sg_err *err)
{
    double pus = 1;
    int depth = 0;
    for (const char *p = desc; *p; p++) {
        if (*p == '(' || *p == '[') depth++;
        if ((*p == ')' || *p == ']') && depth > 0) depth--;
        if (depth || *p != ':') continue;
        char *end;
        double n = strtod(p + 1, &end);
        if (end == p + 1) continue;
        if (n > SYNTHETIC_MAX_ARITY)
            return sg_errf(err, SG_EINPUT,
                           "%s: a level of %.0f objects is more than the %d a synthetic topology "
                           "may have",
                           name, n, SYNTHETIC_MAX_ARITY);
        pus *= n > 0 ? n : 1;
    }
    if (pus > SYNTHETIC_MAX_PUS)
        return sg_errf(err, SG_EINPUT,
                       "%s describes %.0f CPUs, more than the %d a synthetic topology may have",
                       name, pus, SYNTHETIC_MAX_PUS);
    return SG_OK;
}

const char *const sg_hwloc_machine_vars[SG_HWLOC_MACHINE_VARS] = {
    "HWLOC_SYNTHETIC", "HWLOC_XMLFILE", "HWLOC_FSROOT", "HWLOC_CPUID_PATH"};

const char *sg_hwloc_machine_var_set(void)
{
    for (int i = 0; i < SG_HWLOC_MACHINE_VARS; i++) {
        const char *v = getenv(sg_hwloc_machine_vars[i]);
        if (v && *v) return sg_hwloc_machine_vars[i];
    }
    return NULL;
}

sg_status sg_topology_open(const char *synthetic, sg_topology **out, sg_err *err)
{
    *out = NULL;
    const char *what = "the synthetic topology";
    if (!synthetic) {
        const char *env = getenv("STAGEGATE_HWLOC_SYNTHETIC");
        if (env && *env) synthetic = env, what = "STAGEGATE_HWLOC_SYNTHETIC";
    }
    if (synthetic && synthetic_size_ok(synthetic, what, err)) return SG_EINPUT;
    const char *hwloc_env = getenv("HWLOC_SYNTHETIC");
    if (!synthetic && hwloc_env && *hwloc_env &&
        synthetic_size_ok(hwloc_env, "HWLOC_SYNTHETIC", err))
        return SG_EINPUT;
    sg_topology *t = calloc(1, sizeof *t);
    if (!t) return sg_errf(err, SG_ENOMEM, "topology: out of memory");
    if (hwloc_topology_init(&t->topo) != 0) {
        free(t);
        return sg_errf(err, SG_EINTERNAL, "hwloc: topology init failed");
    }
    if (synthetic) {
        if (hwloc_topology_set_synthetic(t->topo, synthetic) != 0) {
            hwloc_topology_destroy(t->topo);
            free(t);
            return sg_errf(err, SG_EINPUT, "hwloc synthetic topology '%s' is not valid", synthetic);
        }
        t->synthetic = true;
    }
    if (hwloc_topology_load(t->topo) != 0) {
        int e = errno;
        hwloc_topology_destroy(t->topo);
        free(t);
        /* most often hwloc's own variables naming a file or root it cannot read: say which */
        const char *var = synthetic ? NULL : sg_hwloc_machine_var_set();
        if (var)
            return sg_errf(err, SG_EINPUT, "hwloc: topology load failed with %s=%.256s: %s", var,
                           getenv(var), strerror(e));
        return sg_errf(err, SG_EINTERNAL, "hwloc: topology load failed: %s", strerror(e));
    }
    /* hwloc's own HWLOC_SYNTHETIC, HWLOC_XMLFILE or HWLOC_FSROOT describe another machine
       (unless HWLOC_THISSYSTEM=1 says it is this one): placement is then planned only, as
       for STAGEGATE_HWLOC_SYNTHETIC. Binding to its CPUs had silently failed while the
       machine record, signed reports included, claimed 2 NUMA nodes and workers on CPUs this
       machine does not have. */
    if (!t->synthetic && !hwloc_topology_is_thissystem(t->topo)) t->synthetic = true;
    /* Some VMs expose PUs without core objects; then each PU counts as a core. */
    t->core_type =
        hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    *out = t;
    return SG_OK;
}

void sg_topology_close(sg_topology *t)
{
    if (!t) return;
    hwloc_topology_destroy(t->topo);
    free(t);
}

bool sg_topology_is_synthetic(const sg_topology *t)
{
    return t->synthetic;
}

sg_status sg_topology_require_real(sg_err *err)
{
    sg_topology *t = NULL;
    sg_status rc = sg_topology_open(NULL, &t, err);
    if (rc) return rc;
    bool synthetic = t->synthetic;
    sg_topology_close(t);
    if (!synthetic) return SG_OK;
    const char *set = getenv("STAGEGATE_HWLOC_SYNTHETIC") && *getenv("STAGEGATE_HWLOC_SYNTHETIC")
                          ? "STAGEGATE_HWLOC_SYNTHETIC"
                          : sg_hwloc_machine_var_set();
    if (!set) set = "an hwloc setting";
    return sg_errf(err, SG_EINPUT,
                   "%s describes a topology that is not this machine's: a signed report is "
                   "measured on the machine it names (unset it)",
                   set);
}
int sg_topology_cores(const sg_topology *t)
{
    return hwloc_get_nbobjs_by_type(t->topo, t->core_type);
}
int sg_topology_pus(const sg_topology *t)
{
    return hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
}
int sg_topology_numa_nodes(const sg_topology *t)
{
    int n = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
    return n > 0 ? n : 1;
}

/* Strict "0-3,6" parser: numbers and ranges only, every CPU must exist. */
static sg_status parse_cpu_list(const sg_topology *t, const char *s, hwloc_bitmap_t set, sg_err *err)
{
    hwloc_const_cpuset_t all = hwloc_topology_get_topology_cpuset(t->topo);
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        /* digits only: strtol alone also took " 0", "+1" and "0- 1" */
        long a = *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : (end = (char *)p, 0);
        if (end == p || errno || a < 0 || a > 1 << 20)
            return sg_errf(err, SG_EINPUT, "--cpus: '%s' is not a CPU list like 0-3,6", s);
        long b = a;
        p = end;
        if (*p == '-') {
            p++;
            b = *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : (end = (char *)p, 0);
            if (end == p || errno || b < a || b > 1 << 20)
                return sg_errf(err, SG_EINPUT, "--cpus: '%s' is not a CPU list like 0-3,6", s);
            p = end;
        }
        for (long c = a; c <= b; c++) {
            if (!hwloc_bitmap_isset(all, (unsigned)c)) {
                char have[256];
                hwloc_bitmap_list_snprintf(have, sizeof have, all);
                /* A CPU the kernel has but this process may not use (a cgroup's cpuset) is
                   not "not on this machine" */
                if (!t->synthetic && c < sysconf(_SC_NPROCESSORS_CONF))
                    return sg_errf(err, SG_EINPUT,
                                   "--cpus: CPU %ld is outside the CPUs this process may use "
                                   "(its cpuset: CPUs %s)",
                                   c, have);
                return sg_errf(err, SG_EINPUT, "--cpus: CPU %ld is not on this machine (CPUs %s)",
                               c, have);
            }
            hwloc_bitmap_set(set, (unsigned)c);
        }
        if (*p == ',') {
            p++;
            if (!*p) return sg_errf(err, SG_EINPUT, "--cpus: '%s' ends with a comma", s);
        } else if (*p) {
            return sg_errf(err, SG_EINPUT, "--cpus: '%s' is not a CPU list like 0-3,6", s);
        }
    }
    return SG_OK;
}

static int node_of(const sg_topology *t, hwloc_obj_t core)
{
    (void)t;
    if (core->nodeset && !hwloc_bitmap_iszero(core->nodeset)) {
        int n = hwloc_bitmap_first(core->nodeset);
        if (n >= 0) return n;
    }
    return 0;
}

sg_status sg_topology_plan(const sg_topology *t, const char *cpus, sg_placement **out, int *n,
                     sg_err *err)
{
    *out = NULL;
    *n = 0;
    /* An empty list given on purpose (--cpus "" from an unset variable) is an error, not
       every core: NULL alone means the option was not given. */
    if (cpus && !*cpus) return sg_errf(err, SG_EINPUT, "--cpus: the CPU list is empty");
    hwloc_bitmap_t want = hwloc_bitmap_alloc();
    if (!want) return sg_errf(err, SG_ENOMEM, "topology: out of memory");
    int rc = SG_OK;
    if (!cpus || !strcmp(cpus, "all")) {
        hwloc_bitmap_copy(want, hwloc_topology_get_topology_cpuset(t->topo));
        /* Within the CPUs the process was started on, when that leaves any (a synthetic
           topology plans over all of its own). */
        hwloc_bitmap_t start = hwloc_bitmap_alloc();
        if (start && have_start_affinity && !t->synthetic &&
            hwloc_cpuset_from_glibc_sched_affinity(t->topo, start, &start_affinity,
                                                   sizeof start_affinity) == 0 &&
            hwloc_bitmap_intersects(want, start))
            hwloc_bitmap_and(want, want, start);
        hwloc_bitmap_free(start);
    } else
        rc = parse_cpu_list(t, cpus, want, err);
    int ncores = sg_topology_cores(t);
    sg_placement *pl = rc == SG_OK ? calloc((size_t)(ncores > 0 ? ncores : 1), sizeof *pl) : NULL;
    if (rc == SG_OK && !pl) rc = sg_errf(err, SG_ENOMEM, "topology: out of memory");
    int k = 0;
    for (int i = 0; rc == SG_OK && i < ncores; i++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(t->topo, t->core_type, (unsigned)i);
        hwloc_bitmap_t both = hwloc_bitmap_alloc();
        hwloc_bitmap_and(both, core->cpuset, want);
        int pu = hwloc_bitmap_first(both);
        hwloc_bitmap_free(both);
        if (pu < 0) continue;
        pl[k].worker = k;
        pl[k].core = i;
        pl[k].pu = pu;
        pl[k].node = node_of(t, core);
        k++;
    }
    hwloc_bitmap_free(want);
    if (rc == SG_OK && k == 0) rc = sg_errf(err, SG_EINPUT, "--cpus: '%s' selects no core", cpus);
    if (rc != SG_OK) {
        free(pl);
        return rc;
    }
    *out = pl;
    *n = k;
    return SG_OK;
}
