/* `stagegate trend NAME --html OUT.html`: the trend page from the registry's run history. */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "stagegate/compare.h"
#include "stagegate/registry.h"

static const char trend_usage[] =
    "usage: stagegate trend NAME --html OUT.html [--db PATH] [--version V] [--limit N]\n\n"
    "Writes a self-contained HTML page (inline SVG, no scripts, nothing fetched) with a chart\n"
    "of p50 and p99 latency and of each gated metric over the model's recorded runs\n"
    "(`stagegate registry record`): a colour per model version, a line style per machine\n"
    "fingerprint, version changes and the policy's limits marked, and a red triangle on the\n"
    "nights whose stored nightly verdict is regressed (`stagegate registry set-run-verdict`).\n"
    "The file is written atomically.\n"
    "Exit codes: 0 written, 2 usage or input error (unknown model, unwritable path).\n";

int sg_cmd_trend(int argc, char **argv)
{
    const char *html = NULL, *db = NULL;
    sg_runs_filter f = {0};
    sg_err err = {{0}};
    const sg_opt opts[] = {
        SG_OPT_STR("html", &html),
        SG_OPT_STR("db", &db),
        SG_OPT_VERSION_("version", &f.version),
        SG_OPT_INT_("limit", &f.limit, 1, (double)INT64_MAX),
        SG_OPT_END_,
    };
    const char *pos[2];
    int n_pos;
    int prc = sg_opts_parse("trend", opts, argc, argv, 1, pos, 2, &n_pos);
    if (prc == SG_OPTS_HELP) {
        fputs(trend_usage, stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    if (sg_cli_db_empty("trend", db)) return 2;
    if (n_pos != 1) return sg_cli_usage_error("trend", "expected one model NAME, got %d", n_pos);
    if (!html) return sg_cli_usage_error("trend", "--html OUT.html is required");
    sg_cli_path ins[5];
    char j[3][PATH_MAX];
    sg_cli_registry_inputs(sg_registry_file(db), ins, j);
    ins[4] = (sg_cli_path){NULL, NULL};
    const sg_cli_path outs[] = {{"--html", html}, {NULL, NULL}};
    if (sg_cli_check_outputs("trend", ins, outs)) return 2;
    sg_registry *reg = NULL;
    int rc = sg_registry_open(sg_registry_path(db), false, &reg, &err);
    json_t *doc = NULL;
    /* A version the model does not have is an error, as `registry get` says, not a page
       of no runs. */
    if (!rc && f.version) {
        json_t *v = sg_registry_get_version(reg, pos[0], f.version, &err);
        if (!v) rc = SG_EINPUT;
        json_decref(v);
    }
    if (!rc && !(doc = sg_registry_runs(reg, pos[0], &f, &err))) rc = SG_EINPUT;
    sg_registry_close(reg);
    sg_outfile o;
    if (!rc) rc = sg_outfile_open(&o, html, &err);
    if (!rc) {
        errno = 0; /* what a failed write leaves there is the reason */
        if (sg_trend_render(o.fp, doc)) {
            const int e = errno;
            sg_outfile_abort(&o);
            rc = sg_errf(&err, SG_EIO, "%s: write failed: %s", html,
                         e ? strerror(e) : "an error writing the page");
        } else {
            rc = sg_outfile_commit(&o, &err);
        }
    }
    size_t n = json_array_size(json_object_get(doc, "runs"));
    json_decref(doc);
    if (rc) return sg_cli_fail(rc, &err);
    fputs("stagegate: trend of ", stderr);
    sg_put_printable(stderr, pos[0]);
    fprintf(stderr, " over %zu run%s written to ", n, n == 1 ? "" : "s");
    sg_put_printable(stderr, html);
    fputc('\n', stderr);
    return 0;
}
