/* The option parser every command uses (see options.h). */
#include "options.h"

#include <string.h>

#include "cli.h"
#include "stagegate/registry.h"

static const sg_opt *find(const sg_opt *opts, const char *name, size_t len)
{
    for (const sg_opt *o = opts; o->kind != SG_OPT_END; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len)) return o;
    return NULL;
}

/* A bound written as a double; INT64_MAX itself rounds up past the int64 range. */
static int64_t i64_bound(double v)
{
    if (v >= 9.2233720368547758e18) return INT64_MAX;
    if (v <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)v;
}

static int store(const char *cmd, const sg_opt *o, const char *v)
{
    char opt[128];
    snprintf(opt, sizeof opt, "--%s", o->name);
    sg_err err = {{0}};
    switch (o->kind) {
    case SG_OPT_STRING:
        *(const char **)o->value = v;
        break;
    case SG_OPT_LIST: {
        sg_opt_list *l = o->value;
        if (l->n == SG_OPT_LIST_MAX) {
            sg_cli_usage_error(cmd, "%s given more than %d times", opt, SG_OPT_LIST_MAX);
            return SG_OPTS_ERROR;
        }
        l->v[l->n++] = v;
        break;
    }
    case SG_OPT_INT:
        if (sg_parse_i64(opt, v, i64_bound(o->min), i64_bound(o->max), o->value, &err) != 0) {
            sg_cli_usage_error(cmd, "%s", err.msg);
            return SG_OPTS_ERROR;
        }
        break;
    case SG_OPT_VERSION:
        /* As the registry writes versions: "02" or "+2" would name version 2 a second way. */
        if (!sg_version_parse(v, o->value)) {
            sg_cli_usage_error(
                cmd, "%s '%s' is not a version (1, 2, 3, ... without leading zeros or sign)", opt,
                v);
            return SG_OPTS_ERROR;
        }
        break;
    case SG_OPT_DOUBLE:
        if (sg_parse_double(opt, v, o->min, o->max, o->value, &err) != 0) {
            sg_cli_usage_error(cmd, "%s", err.msg);
            return SG_OPTS_ERROR;
        }
        break;
    default:
        SG_ASSERT(!"option kind takes no value");
    }
    if (o->seen) *o->seen = true;
    return SG_OPTS_OK;
}

/* The most options a command's table holds (checked): enough for a bitmap on the stack. */
#define MAX_OPTS 128

int sg_opts_parse(const char *cmd, const sg_opt *opts, int argc, char **argv, int first,
                  const char **pos, int max_pos, int *n_pos)
{
    *n_pos = 0;
    bool only_pos = false;
    /* Options that take one value, given once: a second `--threshold` (a script that appends
       to a command line, say) is refused rather than silently overriding the first. */
    bool given[MAX_OPTS] = {false};
    size_t n_opts = 0;
    while (opts[n_opts].kind != SG_OPT_END)
        n_opts++;
    SG_ASSERT(n_opts <= MAX_OPTS);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !strcmp(a, "-")) {
            if (*n_pos >= max_pos) {
                sg_cli_usage_error(cmd, "unexpected argument '%s'", a);
                return SG_OPTS_ERROR;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return SG_OPTS_HELP;
        const char *name = a + 2, *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const sg_opt *o = a[1] == '-' ? find(opts, name, len) : NULL;
        if (!o) {
            sg_cli_usage_error(cmd, "unknown option '%.*s'", (int)(eq ? eq - a : (long)strlen(a)),
                               a);
            return SG_OPTS_ERROR;
        }
        if (o->kind == SG_OPT_FLAG) {
            if (eq) {
                sg_cli_usage_error(cmd, "option '--%s' takes no value", o->name);
                return SG_OPTS_ERROR;
            }
            *(bool *)o->value = true;
            if (o->seen) *o->seen = true;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                sg_cli_usage_error(cmd, "option '--%s' needs a value", o->name);
                return SG_OPTS_ERROR;
            }
            v = argv[++i];
            /* "--db --help": the value was forgotten. Taken as the value, the help request
               was lost, and main had skipped its checks of the environment for it. */
            if (!strcmp(v, "--help") || !strcmp(v, "-h")) {
                sg_cli_usage_error(cmd, "option '--%s' needs a value (got %s)", o->name, v);
                return SG_OPTS_ERROR;
            }
        }
        if (o->kind != SG_OPT_LIST) {
            if (given[o - opts]) {
                sg_cli_usage_error(cmd, "option '--%s' given twice (it takes one value)", o->name);
                return SG_OPTS_ERROR;
            }
            given[o - opts] = true;
        }
        if (store(cmd, o, v) != SG_OPTS_OK) return SG_OPTS_ERROR;
    }
    return SG_OPTS_OK;
}
