/* stagegate eval: evaluate a model on a validation set and print its metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stagegate/eval.h"
#include "stagegate/model_ops.h"
#include "stagegate/registry.h"

static const char eval_usage[] =
    "usage: stagegate eval --model MODEL --data VAL.h5 [--json] [--breakdown]\n"
    "                      [--predictions OUT.h5] [--threshold 0.5] [--cpus LIST]\n"
    "                      [--chunk-rows N] [--max-rows N] [--db REGISTRY]\n"
    "                      [--output logits|proba|value] [--output-name NAME]\n"
    "\n"
    "Runs the model over every row of the validation set, streaming it in chunks on a\n"
    "pool of pinned workers (one per core), and prints scikit-learn-compatible metrics.\n"
    "\n"
    "  --model MODEL        model file (stagegate HDF5, XGBoost JSON or UBJSON, or ONNX, told\n"
    "                       apart by content), or a registry URI: models:/NAME/VERSION,\n"
    "                       models:/NAME/STAGE, models:/NAME@ALIAS\n"
    "  --data FILE          validation set HDF5 (/X, /y, optional /sample_weight)\n"
    "  --json               print one JSON document: model, dataset, metrics, timing\n"
    "  --breakdown          after the metrics, show where the time went: setup, waiting for\n"
    "                       input, predict, metrics, and how much of the reader's work\n"
    "                       (read, decode, digest) predict hid\n"
    "  --predictions FILE   write /proba + /label (classifiers) or /prediction (regressors)\n"
    "  --threshold T        binary classifiers: decision threshold on P(class 1), or on\n"
    "                       P(the second class) for a model of other class values\n"
    "                       (default 0.5; refused for other models)\n"
    "  --cpus LIST          cores to run on, e.g. 0-3,6 (default: all)\n"
    "  --output KIND        ONNX: logits, proba or value, what an output that does not end\n"
    "                       in Softmax or Sigmoid means (else metadata_props says)\n"
    "  --output-name NAME   ONNX: the graph output that is the model's, for a graph of\n"
    "                       several (a head's logits beside others); the rest are not run\n"
    "  --chunk-rows N       rows read per chunk, rounded up to a multiple of 1024 (default: a\n"
    "                       classifier's first chunk 8192 rows, doubling up to 65536)\n"
    "  --max-rows N         refuse a set of more than N rows before reading any (a bound on\n"
    "                       the run's time: a small file of compressed rows can hold billions)\n"
    "  --db FILE            registry database for models:/ URIs (default $STAGEGATE_REGISTRY\n"
    "                       or ./stagegate.db)\n"
    "\n"
    "environment: STAGEGATE_ISA=scalar|avx2|avx512 picks the kernels; STAGEGATE_HUGE_PAGES=1\n"
    "puts the large buffers on transparent huge pages (docs/latency.md: faster on some\n"
    "hosts, slower cold on others)\n"
    "exit codes: 0 ok, 2 usage or input error (one line on stderr naming the file)\n";

static void print_human(const sg_eval_config *c, const sg_eval_result *r)
{
    json_t *m = json_object();
    sg_metrics_to_json(&r->metrics, m);
    fputs("model    ", stdout);
    sg_put_printable(stdout, c->model_path);
    printf(" (%s, sha256 %.12s)\ndataset  ", sg_task_name(r->model->task), r->model_sha256);
    sg_put_printable(stdout, c->data_path);
    printf(" (%lld rows)\n", (long long)r->rows);
    const sg_model *md = r->model;
    if (md->task != SG_TASK_REGRESSION && md->classes) {
        /* The labels are the model's class values: the matrix's rows and columns are them in
           this order, and the binary metrics' positive class is the second. */
        char cls[160];
        sg_classes_text(md->classes, md->n_classes, cls, sizeof cls);
        printf("classes  %s", cls);
        if (md->n_classes == 2)
            printf(", positive class %d (precision, recall, f1, average precision)",
                   md->classes[1]);
        printf("\n");
    }
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

/* --breakdown: where the wall clock went, and how much of the input work predict hid. */
static void print_breakdown(const sg_eval_result *r)
{
    double T = r->total_seconds > 0 ? r->total_seconds : 1;
    double other = r->total_seconds - r->setup_seconds - r->wait_seconds - r->predict_seconds -
                   r->metrics_seconds;
    printf("stages (wall clock of the main thread; %% of %.3f s)\n", r->total_seconds);
    printf("  %-34s %9.3f s %5.1f%%\n", "setup (open, check, pool)", r->setup_seconds,
           100 * r->setup_seconds / T);
    printf("  %-34s %9.3f s %5.1f%%\n", "waiting for input", r->wait_seconds,
           100 * r->wait_seconds / T);
    printf("  %-34s %9.3f s %5.1f%%\n", "predict", r->predict_seconds,
           100 * r->predict_seconds / T);
    printf("  %-34s %9.3f s %5.1f%%\n", "metrics per chunk",
           r->metrics_seconds - r->metrics_finish_seconds,
           100 * (r->metrics_seconds - r->metrics_finish_seconds) / T);
    printf("  %-34s %9.3f s %5.1f%%\n", "metrics finish (ranking, sums)",
           r->metrics_finish_seconds, 100 * r->metrics_finish_seconds / T);
    printf("  %-34s %9.3f s %5.1f%%\n", "other (copies, writes, digest end)", other,
           100 * other / T);
    printf("reader thread (overlaps predict)\n");
    printf("  %-34s %9.3f s\n", "read, decode, check", r->read_seconds);
    printf("  %-34s %9.3f s\n", "dataset digest", r->hash_seconds);
    printf("  %-34s %8.1f%%\n", "hidden behind compute", 100 * sg_eval_input_overlap(r));
    sg_model_cost cost;
    sg_model_cost_of(r->model, &cost);
    if (cost.flops_per_row > 0 && r->predict_seconds > 0)
        printf("predict  %.1f GFLOP/s over %d workers (%.0f FLOPs per row)\n",
               cost.flops_per_row * (double)r->rows / r->predict_seconds / 1e9, r->workers,
               cost.flops_per_row);
    else if (cost.node_visits_per_row > 0 && r->predict_seconds > 0)
        printf("predict  %.3g node visits/s over %d workers\n",
               cost.node_visits_per_row * (double)r->rows / r->predict_seconds, r->workers);
    if (r->predict_paths[0]) printf("predict kernels per layer: %s\n", r->predict_paths);
}

int sg_cmd_eval(int argc, char **argv)
{
    sg_eval_config c;
    sg_eval_config_init(&c);
    bool json = false, breakdown = false;
    const char *db = NULL, *output = NULL;
    sg_err err = {{0}};
    double threshold = NAN; /* NaN: not given */
    int64_t chunk_rows = c.chunk_rows;
    const sg_opt opts[] = {
        SG_OPT_STR("model", &c.model_path),
        SG_OPT_STR("data", &c.data_path),
        SG_OPT_FLAG_("json", &json),
        SG_OPT_FLAG_("breakdown", &breakdown),
        SG_OPT_STR("predictions", &c.predictions_path),
        SG_OPT_DBL("threshold", &threshold, 0.0, 1.0),
        SG_OPT_STR("cpus", &c.cpus),
        SG_OPT_INT_("chunk-rows", &chunk_rows, 1, 1 << 24),
        SG_OPT_INT_("max-rows", &c.max_rows, 1, INT64_MAX),
        SG_OPT_STR("db", &db),
        SG_OPT_STR("output", &output),
        SG_OPT_STR("output-name", &c.onnx_output_name),
        SG_OPT_END_,
    };
    int n_pos;
    int prc = sg_opts_parse("eval", opts, argc, argv, 1, NULL, 0, &n_pos);
    if (prc == SG_OPTS_HELP) {
        fputs(eval_usage, stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    if (sg_cli_db_empty("eval", db)) return 2;
    c.threshold_given = !isnan(threshold);
    if (c.threshold_given) c.threshold = threshold; /* compared in double: 0.99999999999 is not 1 */
    /* Rounded up to whole sub-batches of 1024 rows: OpenBLAS rounds a row's products
     * differently with its place in the batch (measured: --chunk-rows 700, 1000, 1500 or 9000
     * changed the last bits of thousands of an MLP's probabilities on an AVX-512 Zen 4 host,
     * every multiple of 1024 gave the default run's bits), and the metrics must not depend on
     * the chunking. The harness itself takes any height (its tests drive uneven chunks). */
    c.chunk_rows = chunk_rows > 0 ? (chunk_rows + 1023) / 1024 * 1024 : chunk_rows;
    if (!c.model_path) return sg_cli_usage_error("eval", "--model is required");
    if (!c.data_path) return sg_cli_usage_error("eval", "--data is required");
    if (output) {
        int o = sg_onnx_output_parse(output);
        if (o < 0)
            return sg_cli_usage_error("eval", "--output is '%s', expected logits, proba or value",
                                      output);
        c.onnx_output = (sg_onnx_output)o;
    }

    char resolved[4096], registered[65];
    if (sg_is_model_uri(c.model_path)) {
        int st =
            sg_cli_resolve_apart(c.model_path, db, resolved, sizeof resolved, registered, &err);
        if (st) return sg_cli_fail(st, &err);
        c.model_path = resolved;
        c.expected_sha256 = registered;
    }
    /* Predictions written over the model or the set would destroy them. */
    sg_cli_path ins[] = {{"--model", c.model_path}, {"--data", c.data_path}, {0}, {0}, {0}, {0},
                         {NULL, NULL}};
    char j[3][PATH_MAX];
    sg_cli_registry_inputs(sg_cli_registry_guarded(db, db || c.expected_sha256), ins + 2, j);
    const sg_cli_path outs[] = {{"--predictions", c.predictions_path}, {NULL, NULL}};
    if (sg_cli_check_outputs("eval", ins, outs)) return 2;
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
        if (breakdown) print_breakdown(&r);
        printed = fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
    }
    sg_eval_result_clear(&r);
    /* A script reading `eval --json > metrics.json` must not get exit 0 with a cut file. */
    if (printed != 0) {
        sg_err e;
        return sg_cli_fail(sg_errf(&e, SG_EIO, "stdout: writing the result failed%s",
                                   c.predictions_path ? " (the --predictions file was written and kept)"
                                               : ""),
                           &e);
    }
    return 0;
}
