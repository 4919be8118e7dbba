/* CLI helpers: the one place where a status becomes an exit code and a usage error is printed. */
#include "cli.h"

#include <stdarg.h>

/* The only mapping from a status to a process exit code. */
int sg_exit_code(int status)
{
    if (status == SG_OK) return 0;
    if (status == SG_EREFUSED) return 1;
    return 2;
}

int sg_cli_fail(int status, const sg_err *err)
{
    fprintf(stderr, "stagegate: %s\n", err && err->msg[0] ? err->msg : sg_status_string(status));
    return sg_exit_code(status);
}

int sg_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "stagegate %s: %s (see 'stagegate %s --help')\n", cmd, msg, cmd);
    return 2;
}
