/* The stagegate CLI: the command table and the dispatch to one function per command. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stagegate/harness.h"
#include "stagegate/kernels.h"
#include "stagegate/version.h"

/* One line per command; each lives in its own cmd_*.c. */
const sg_command sg_commands[] = {
    {"eval", sg_cmd_eval, SG_CMD_NEEDS_KERNELS,
     "evaluate a model on a validation set and print metrics"},
    {"bench", sg_cmd_bench, SG_CMD_NEEDS_KERNELS,
     "latency scenarios (single-stream, server, offline) on pinned cores"},
    {"clock", sg_cmd_clock, SG_CMD_NEEDS_KERNELS,
     "show the latency clock (TSC rate, calibration spread, overhead) and the kernels"},
    {"keygen", sg_cmd_keygen, 0, "create a key pair for signing reports (PEM)"},
    {"gate", sg_cmd_gate, SG_CMD_NEEDS_KERNELS,
     "run the staging gate: metrics, latency, shadow, policy, signed report"},
    {"verify", sg_cmd_verify, 0, "verify a signed report: signature, type, digest, result"},
    {"registry", sg_cmd_registry, 0, "model registry with gated, audited stage transitions"},
    {"serve", sg_cmd_serve, 0, "registry server: MLflow's registry REST API, gates enforced"},
    {"token", sg_cmd_token, 0, "add a server token for a principal (public key)"},
    {"compare", sg_cmd_compare, 0,
     "compare two runs: latency percentiles (U test) and metric deltas"},
    {"trend", sg_cmd_trend, 0, "HTML trend page of a model's recorded runs (inline SVG charts)"},
};
const size_t sg_n_commands = sizeof sg_commands / sizeof sg_commands[0];

static void usage(FILE *out)
{
    fprintf(out, "usage: stagegate <command> [options]\n"
                 "       stagegate --version | --help\n\n"
                 "The gate a model version must pass before Staging, and the registry that\n"
                 "enforces it.\n\ncommands:\n");
    for (size_t i = 0; i < sg_n_commands; i++)
        fprintf(out, "  %-10s %s\n", sg_commands[i].name, sg_commands[i].summary);
    fprintf(out,
            "\nexit codes: 0 success or gate passed, 1 gate or verification failed,\n"
            "            2 usage or input error (one line on stderr names the file and problem)\n"
            "Run 'stagegate <command> --help' for a command's options.\n");
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

/* 0 when stdout took everything; else exit 2 with the line that says so (a closed pipe, a
   full disk: with SIGPIPE ignored, nothing else would). */
static int stdout_written(const char *what)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    int e = errno;
    fprintf(stderr, "stagegate %s: cannot write to standard output (%s)\n", what,
            e ? strerror(e) : "write error");
    return 2;
}

int sg_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "stagegate: no command given (see 'stagegate --help')\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return stdout_written(argv[1]);
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("stagegate %s (%s)\n", SG_VERSION, SG_BUILD_FLAGS);
        return stdout_written(argv[1]);
    }
    for (size_t i = 0; i < sg_n_commands; i++) {
        const sg_command *c = &sg_commands[i];
        if (strcmp(argv[1], c->name)) continue;
        /* A bad STAGEGATE_ISA is an input error, not a silent fallback; asking for help
         * needs no kernels. */
        if ((c->flags & SG_CMD_NEEDS_KERNELS) && !wants_help(argc - 1, argv + 1)) {
            sg_err err = {{0}};
            int st = sg_kernels_init(&err);
            if (st) return sg_cli_fail(st, &err);
            /* and an OPENBLAS_CORETYPE OpenBLAS did not take or this CPU cannot run */
            if ((st = sg_blas_check(&err))) return sg_cli_fail(st, &err);
            /* Likewise the clock: a misspelt STAGEGATE_CLOCK had silently kept the TSC. */
            const char *clk = getenv("STAGEGATE_CLOCK");
            if (clk && *clk && strcmp(clk, "gettime") != 0)
                return sg_cli_fail(sg_errf(&err, SG_EINPUT,
                                           "STAGEGATE_CLOCK=%.64s is not 'gettime' (the only "
                                           "value; unset it for the TSC)",
                                           clk),
                                   &err);
            const char *huge = getenv("STAGEGATE_HUGE_PAGES");
            if (huge && *huge && strcmp(huge, "0") != 0 && strcmp(huge, "1") != 0)
                return sg_cli_fail(sg_errf(&err, SG_EINPUT,
                                           "STAGEGATE_HUGE_PAGES=%.64s is not 0 or 1 (1 asks "
                                           "for transparent huge pages for large buffers)",
                                           huge),
                                   &err);
        }
        int rc = c->fn(argc - 1, argv + 1);
        /* Output that did not reach stdout (a full disk, a closed pipe) is not success. What
           the command changed before printing (a registry write, an output file) stays: the
           line says so, so that a job does not simply run the change again. */
        errno = 0;
        if ((fflush(stdout) != 0 || ferror(stdout)) && rc != 2) {
            int e = errno;
            fprintf(stderr,
                    "stagegate %s: cannot write to standard output (%s); what the command "
                    "changed before printing (a registry entry, an output file) was kept\n",
                    argv[1], e ? strerror(e) : "write error");
            return 2;
        }
        return rc;
    }
    fputs("stagegate: unknown command '", stderr);
    sg_put_printable(stderr, argv[1]);
    fputs("' (see 'stagegate --help')\n", stderr);
    return 2;
}
