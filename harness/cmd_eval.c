/* stagegate eval: evaluate a model on a validation set and print its metrics. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/cli.h"
#include "stagegate/eval.h"
#include "stagegate/registry.h"

static const char eval_usage[] =
    "usage: stagegate eval --model MODEL --data VAL.h5 [--json] [--predictions OUT.h5]\n"
    "                      [--threshold 0.5] [--cpus LIST] [--chunk-rows N] [--db REGISTRY]\n"
    "\n"
    "Runs the model over every row of the validation set, streaming it in chunks on a\n"
    "pool of pinned workers (one per core), and prints scikit-learn-compatible metrics.\n"
    "\n"
    "  --model MODEL        model HDF5 file, or a registry URI: models:/NAME/VERSION,\n"
    "                       models:/NAME/STAGE, models:/NAME@ALIAS\n"
    "  --data FILE          validation set HDF5 (/X, /y, optional /sample_weight)\n"
    "  --json               print one JSON document: model, dataset, metrics, timing\n"
    "  --predictions FILE   write /proba + /label (classifiers) or /prediction (regressors)\n"
    "  --threshold T        binary decision threshold on P(class 1) (default 0.5)\n"
    "  --cpus LIST          cores to run on, e.g. 0-3,6 (default: all)\n"
    "  --chunk-rows N       rows read per chunk (default 65536)\n"
    "  --db FILE            registry database for models:/ URIs (default $STAGEGATE_REGISTRY\n"
    "                       or ./stagegate.db)\n"
    "\n"
    "exit codes: 0 ok, 2 usage or input error (one line on stderr naming the file)\n";

static void print_human(const sg_eval_config *c, const sg_eval_result *r)
{
    json_t *m = json_object();
    sg_metrics_to_json(&r->metrics, m);
    printf("model    %s (%s, sha256 %.12s)\n", c->model_path, sg_task_name(r->model->task),
           r->model_sha256);
    printf("dataset  %s (%lld rows)\n", c->data_path, (long long)r->rows);
    printf("metrics\n");
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v)
    {
        if (json_is_real(v))
            printf("  %-24s %.6f\n", key, json_real_value(v));
        else if (json_is_integer(v))
            printf("  %-24s %lld\n", key, (long long)json_integer_value(v));
        else if (json_is_null(v))
            printf("  %-24s undefined\n", key);
        else if (json_is_array(v)) {
            printf("  %-24s\n", key);
            size_t i;
            json_t *row;
            json_array_foreach(v, i, row)
            {
                printf("    ");
                size_t j;
                json_t *cell;
                json_array_foreach(row, j, cell) printf(" %10g", json_number_value(cell));
                printf("\n");
            }
        }
    }
    printf("timing   load %.3fs  predict %.3fs  metrics %.3fs  total %.3fs  (%d workers)\n",
           r->load_seconds, r->predict_seconds, r->metrics_seconds, r->total_seconds, r->workers);
    json_decref(m);
}

int sg_cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"data", required_argument, 0, 'd'},
                                         {"json", no_argument, 0, 'j'},
                                         {"predictions", required_argument, 0, 'p'},
                                         {"threshold", required_argument, 0, 't'},
                                         {"cpus", required_argument, 0, 'c'},
                                         {"chunk-rows", required_argument, 0, 'k'},
                                         {"db", required_argument, 0, 'D'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    sg_eval_config c;
    sg_eval_config_init(&c);
    bool json = false;
    const char *db = NULL;
    sg_err err = {{0}};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        double dv;
        int64_t iv;
        switch (opt) {
        case 'm':
            c.model_path = optarg;
            break;
        case 'd':
            c.data_path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'p':
            c.predictions_path = optarg;
            break;
        case 'c':
            c.cpus = optarg;
            break;
        case 'D':
            db = optarg;
            break;
        case 't':
            if (sg_parse_double("--threshold", optarg, 0.0, 1.0, &dv, &err))
                return sg_cli_usage_error("eval", "%s", err.msg);
            c.threshold = (float)dv;
            break;
        case 'k':
            if (sg_parse_i64("--chunk-rows", optarg, 1, 1 << 24, &iv, &err))
                return sg_cli_usage_error("eval", "%s", err.msg);
            c.chunk_rows = iv;
            break;
        case 'h':
            fputs(eval_usage, stdout);
            return 0;
        default:
            return sg_cli_usage_error("eval", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
        }
    }
    if (optind < argc) return sg_cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!c.model_path) return sg_cli_usage_error("eval", "--model is required");
    if (!c.data_path) return sg_cli_usage_error("eval", "--data is required");

    char resolved[4096], registered[65];
    if (sg_is_model_uri(c.model_path)) {
        int st = sg_registry_resolve_uri_digest(c.model_path, db, resolved, sizeof resolved,
                                                registered, &err);
        if (st) return sg_cli_fail(st, &err);
        c.model_path = resolved;
        c.expected_sha256 = registered;
    }
    /* Progress goes to stderr on a terminal only, so --json stdout stays one document. */
    c.progress = sg_progress_enabled();

    sg_eval_result r;
    int st = sg_eval_run(&c, &r, &err);
    if (st) return sg_cli_fail(st, &err);
    int printed;
    if (json) {
        json_t *doc = sg_eval_result_json(&c, &r);
        printed = doc ? sg_json_print(doc) : -1;
        json_decref(doc);
    } else {
        print_human(&c, &r);
        printed = fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
    }
    sg_eval_result_clear(&r);
    /* A script reading `eval --json > metrics.json` must not get exit 0 with a cut file. */
    if (printed != 0)
        return sg_cli_fail(SG_EIO, &(sg_err){.msg = "stdout: writing the result failed"});
    return 0;
}
