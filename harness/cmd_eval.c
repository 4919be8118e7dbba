/* stagegate eval: placeholder replaced by the streaming evaluator. */
#include "stagegate/cli.h"

int sg_cmd_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sg_err err;
    sg_errf(&err, SG_EINTERNAL, "eval: not built yet");
    return sg_cli_fail(SG_EINTERNAL, &err);
}
