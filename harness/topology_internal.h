/* Internal to harness/: the hwloc handle behind sg_topology, shared by topology.c and pool.c. */
#ifndef STAGEGATE_HARNESS_TOPOLOGY_INTERNAL_H
#define STAGEGATE_HARNESS_TOPOLOGY_INTERNAL_H

#include <hwloc.h>

#include "stagegate/harness.h"

struct sg_topology {
    hwloc_topology_t topo;
    bool synthetic;
    hwloc_obj_type_t core_type; /* HWLOC_OBJ_CORE, or HWLOC_OBJ_PU when the machine has no cores */
};

#endif
