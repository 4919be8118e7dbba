/* The stagegate executable: everything lives in the CLI library (cli/main.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include "cli.h"
#include "stagegate/harness.h"

/*
 * The address space stagegate needs before it can run at all. OpenBLAS (0.3.21) gives each
 * of its threads, one per CPU, a 128 MiB buffer, and so does each thread that calls sgemm;
 * glibc reserves a 64 MiB arena per thread. When such a reservation fails OpenBLAS retries
 * for ever: under `ulimit -v 200000` even `--version` spun at 100% CPU, and a gate of
 * 400,000 rows did below 550 MiB on 2 CPUs (it ran at 600). 192 MiB per CPU, plus as much
 * for the main thread, is that bound; anything bigger than the set-up itself (the data's
 * chunks, a model) fails as out of memory, with exit 2, as without a limit.
 */
static void check_address_space(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    const unsigned long long need = (unsigned long long)(cpus + 1) * (192ull << 20);
    static const struct {
        int resource;
        const char *what;
    } limits[] = {{RLIMIT_AS, "address-space limit (ulimit -v)"},
                  {RLIMIT_DATA, "data-segment limit (ulimit -d)"}};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        struct rlimit rl;
        if (getrlimit(limits[i].resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
            rl.rlim_cur >= need)
            continue;
        fprintf(stderr,
                "stagegate: the %s is %llu MiB; stagegate needs at least %llu MiB on this "
                "%ld-CPU machine (OpenBLAS and glibc reserve 192 MiB per thread): raise it\n",
                limits[i].what, (unsigned long long)rl.rlim_cur >> 20, need >> 20, cpus);
        /* Not exit(): OpenBLAS's destructor would wait for its threads, which may be spinning
           on the reservation that failed already. */
        fflush(stderr);
        _exit(2);
    }
}

/*
 * The stack. glibc gives each thread a stack of the stack limit's size, so under `ulimit -s
 * 128` the reader thread overflowed its 128 KiB in the digest (SIGSEGV, exit 139), and gate's
 * main thread did so below 256 KiB (found by attacking the tool). Threads now get 8 MiB, glibc's
 * usual size, whatever the limit; the main thread's soft limit is raised to 8 MiB where the
 * hard limit allows, and a hard limit below 1 MiB is refused with the figure.
 */
#define SG_STACK_BYTES (8ull << 20)
#define SG_STACK_MIN (1ull << 20)
static void check_stack(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= SG_STACK_BYTES)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < SG_STACK_MIN) {
        /* formatted into a small buffer and written with write(): fprintf on the unbuffered
           stderr takes several KiB of stack, which a limit of 16-22 KiB had not held */
        char line[160];
        int n = snprintf(line, sizeof line,
                         "stagegate: the stack limit (ulimit -s) is %llu KiB; stagegate needs "
                         "at least %llu KiB: raise it\n",
                         (unsigned long long)rl.rlim_max >> 10, SG_STACK_MIN >> 10);
        if (n > 0) (void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        _exit(2);
    }
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= SG_STACK_BYTES ? SG_STACK_BYTES
                                                                                : rl.rlim_max;
    (void)setrlimit(RLIMIT_STACK, &rl);
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) == 0) {
        if (pthread_attr_setstacksize(&attr, SG_STACK_BYTES) == 0)
            (void)pthread_setattr_default_np(&attr);
        pthread_attr_destroy(&attr);
    }
}

/*
 * Standard input, output and error are open from here on: with one closed (`2>&-`) the next
 * file opened takes its number, and the dataset opened as descriptor 2 was then what the HDF5
 * check's child pointed at /dev/null (eval failed on valid input, without a word). A closed
 * one becomes /dev/null, as the shells and daemons do.
 */
static void open_standard_fds(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (n < 0) _exit(2);
            if (n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
}

/* Ignores sig unless the caller set a disposition of its own. */
static void ignore_if_default(int sig)
{
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(sig, SIG_IGN);
}

int main(int argc, char **argv)
{
    open_standard_fds();
    check_address_space();
    check_stack();
    /* A file over the size limit (ulimit -f) fails its write with EFBIG, which the writer
       reports (exit 2, one line, its temp file removed), instead of killing the process with
       SIGXFSZ and no word. A disposition the caller set is kept. */
    ignore_if_default(SIGXFSZ);
    /* Likewise a closed pipe on stdout (`| head`): the write fails with EPIPE and the command
       says, in one line and exit 2, that what it changed before printing was kept, instead
       of dying of SIGPIPE (exit 141) after a registry write or with a report on disk. */
    ignore_if_default(SIGPIPE);
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
    /* hwloc writes its own errors to stderr ("[hwloc/linux] failed to find sysfs cpu
       topology directory" under a bad HWLOC_FSROOT), a second line beside stagegate's one;
       what stagegate needs of a topology it checks and reports itself. A value the user
       gave is kept. */
    setenv("HWLOC_HIDE_ERRORS", "2", 0);
    return sg_cli_main(argc, argv);
}
