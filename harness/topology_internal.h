/* Internal to harness/: the hwloc handle behind sg_topology, shared by topology.c and pool.c. */
#ifndef STAGEGATE_HARNESS_TOPOLOGY_INTERNAL_H
#define STAGEGATE_HARNESS_TOPOLOGY_INTERNAL_H

#include <hwloc.h>

#include "stagegate/harness.h"

/* hwloc's own variables that describe another machine than this one (topology.c):
   HWLOC_SYNTHETIC, HWLOC_XMLFILE, HWLOC_FSROOT, HWLOC_CPUID_PATH. */
#define SG_HWLOC_MACHINE_VARS 4
extern const char *const sg_hwloc_machine_vars[SG_HWLOC_MACHINE_VARS];
/* The first of them that is set (non-empty), or NULL. */
const char *sg_hwloc_machine_var_set(void);

struct sg_topology {
    hwloc_topology_t topo;
    bool synthetic;
    hwloc_obj_type_t core_type; /* HWLOC_OBJ_CORE, or HWLOC_OBJ_PU when the machine has no cores */
};

#endif
