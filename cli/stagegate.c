/* The stagegate executable: everything lives in the CLI library (cli/main.c). */
#include <malloc.h>
#include <stdlib.h>
#include "cli.h"
#include "stagegate/harness.h"

int main(int argc, char **argv)
{
    /*
     * A streaming run frees and allocates the same few large buffers for every chunk
     * (libhdf5's chunk and conversion buffers among them). glibc returns them to the
     * kernel (mmap above its threshold, heap trimming above 2x that), and every chunk then
     * pays page faults to get zeroed pages back: about 3% of an eval's CPU time in a
     * profile. Keeping freed memory for reuse removes that; the peak stays the peak.
     */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    /* Every computation runs on stagegate's own worker pools, one BLAS thread each. Set
       before the HDF5 sandbox first forks, so that OpenBLAS's pool is never restarted. */
    sg_blas_single_thread();
    /*
     * hwloc dlopens every plugin it finds when a topology is first made: on Debian that
     * is PCI, OpenCL, GL and libxml2, which pull in libX11, libOpenCL and libpciaccess,
     * 3-6 ms of each run's set-up, for devices stagegate never asks about (its placement
     * needs cores, caches and NUMA nodes, which the built-in Linux component finds; XML
     * topologies still load with hwloc's built-in parser). Set before any thread starts;
     * a value the user gave is kept.
     */
    setenv("HWLOC_PLUGINS_BLACKLIST", "hwloc_pci,hwloc_opencl,hwloc_gl,hwloc_xml_libxml", 0);
    return sg_cli_main(argc, argv);
}
