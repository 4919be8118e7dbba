/* The stagegate executable: everything lives in the CLI library (cli/main.c). */
#include <malloc.h>
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
    return sg_cli_main(argc, argv);
}
