/* `stagegate trend NAME --html OUT.html`: the trend page from the registry's run history. */
#include <getopt.h>
#include <string.h>

#include "stagegate/cli.h"
#include "stagegate/compare.h"

static const char trend_usage[] =
    "usage: stagegate trend NAME --html OUT.html [--db PATH] [--version V] [--limit N]\n\n"
    "Writes a self-contained HTML page (inline SVG, no scripts, nothing fetched) with a chart\n"
    "of p50 and p99 latency and of each gated metric over the model's recorded runs\n"
    "(`stagegate registry record`): one line per machine fingerprint, model version changes\n"
    "marked. The file is written atomically.\n"
    "Exit codes: 0 written, 2 usage or input error (unknown model, unwritable path).\n";

int sg_cmd_trend(int argc, char **argv)
{
    static const struct option opts[] = {
        {"html", required_argument, 0, 'o'},    {"db", required_argument, 0, 'd'},
        {"version", required_argument, 0, 'v'}, {"limit", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *html = NULL, *db = NULL;
    sg_runs_filter f = {0};
    sg_err err = {{0}};
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'o':
            html = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'v':
            if (sg_parse_i64("--version", optarg, 1, INT64_MAX, &f.version, &err))
                return sg_cli_fail(SG_EINPUT, &err);
            break;
        case 'l':
            if (sg_parse_i64("--limit", optarg, 1, INT64_MAX, &f.limit, &err))
                return sg_cli_fail(SG_EINPUT, &err);
            break;
        case 'h':
            fputs(trend_usage, stdout);
            return 0;
        default:
            return sg_cli_usage_error("trend", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return sg_cli_usage_error("trend", "expected one model NAME, got %d", argc - optind);
    if (!html) return sg_cli_usage_error("trend", "--html OUT.html is required");
    sg_registry *reg = NULL;
    int rc = sg_registry_open(sg_registry_path(db), false, &reg, &err);
    json_t *doc = NULL;
    if (!rc && !(doc = sg_registry_runs(reg, argv[optind], &f, &err))) rc = SG_EINPUT;
    sg_registry_close(reg);
    sg_outfile o;
    if (!rc) rc = sg_outfile_open(&o, html, &err);
    if (!rc) {
        if (sg_trend_render(o.fp, doc)) {
            sg_outfile_abort(&o);
            rc = sg_errf(&err, SG_EIO, "%s: write failed", html);
        } else {
            rc = sg_outfile_commit(&o, &err);
        }
    }
    size_t n = json_array_size(json_object_get(doc, "runs"));
    json_decref(doc);
    if (rc) return sg_cli_fail(rc, &err);
    fprintf(stderr, "stagegate: trend of %s over %zu run%s written to %s\n", argv[optind], n,
            n == 1 ? "" : "s", html);
    return 0;
}
