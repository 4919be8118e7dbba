/* The stagegate executable: everything lives in the CLI library (cli/main.c). */
#include "cli.h"

int main(int argc, char **argv)
{
    return sg_cli_main(argc, argv);
}
