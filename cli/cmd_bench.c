/* stagegate bench: LoadGen-style latency scenarios for one model on pinned per-core workers. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "stagegate/dataset.h"
#include "stagegate/harness.h"
#include "stagegate/gate.h"
#include "stagegate/model_ops.h"
#include "stagegate/registry.h"

/* Rows kept in memory for the per-query scenarios; queries cycle through them. */
#define QUERY_ROWS_MAX 65536

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: stagegate bench --model M --data D --scenario single-stream|server|offline\n"
        "                       [--qps Q] [--duration S] [--min-queries N] [--warmup N]\n"
        "                       [--seed N] [--batch N] [--cpus LIST] [--json]\n"
        "                       [--samples OUT.csv] [--breakdown] [--repetitions N]\n"
        "                       [--latency-bound-ms MS]\n\n"
        "  single-stream  closed loop, batch 1, one worker; each query takes the next row\n"
        "  server         open loop, seeded Poisson arrivals at --qps, every worker pulls\n"
        "                 from the queue; latency counts from the scheduled arrival\n"
        "  offline        every row, every worker, --batch rows per call (samples/s)\n\n"
        "  --duration S      minimum timed duration of each repetition (default 1)\n"
        "  --repetitions N   independent runs, each with its own set-up and warm-up (default 1);\n"
        "                    the JSON keeps each one's percentiles, query count and histogram,\n"
        "                    and `compare` judges change against their spread (5 x 2 s is\n"
        "                    what nightly uses, docs/nightly.md)\n"
        "  --latency-bound-ms MS  server: p99 bound of a VALID run (default 100, LoadGen's)\n"
        "  --min-queries N   minimum queries (default 1024)\n"
        "  --warmup N        warm-up queries before timing (default 64)\n"
        "  --seed N          server schedule seed (default 1)\n"
        "  --batch N         offline rows per call (default 64)\n"
        "  --cpus LIST       CPUs to use, e.g. 0-3,6 (default: every core the process\n"
        "                    was started on, as taskset sets it; one worker per core)\n"
        "  --samples OUT     write latency_ns,worker,cpu,flags per query, in issue order\n"
        "  --breakdown       time each layer of the batch-1 path (adds probe cost)\n"
        "  --json            print one JSON document\n"
        "  --output logits|proba|value  ONNX: what an output that does not end in Softmax or\n"
        "                    Sigmoid means (docs/formats.md)\n"
        "  --output-name NAME  ONNX: the graph output that is the model's, for a graph of\n"
        "                    several\n"
        "  --db FILE         registry for models:/NAME/VERSION|STAGE, models:/NAME@ALIAS\n\n"
        "Environment: STAGEGATE_CLOCK=gettime forces the clock_gettime fallback;\n"
        "STAGEGATE_HWLOC_SYNTHETIC plans on an hwloc synthetic topology (no binding);\n"
        "STAGEGATE_HUGE_PAGES=1 puts large buffers on transparent huge pages (see\n"
        "docs/latency.md: faster on some hosts, slower cold on others).\n"
        "OpenBLAS runs single-threaded inside the workers.\n"
        "Warnings (and \"noise\" in the JSON) flag runs that crossed the noise limits of\n"
        "docs/latency.md: involuntary context switches, time off the CPU, migrations, page\n"
        "faults, thermal throttling. A single-stream run is never restarted; one whose sample\n"
        "buffer filled is cut short and says so (\"cut_short\"). Server runs end with\n"
        "VALID or INVALID and the reason (latency bound, QPS not reached, too few queries).\n"
        "Exit codes: 0 ok, 2 usage or input error.\n");
}

/* What makes a run identifiable and repeatable: when, on which files, with which settings. */
static sg_status add_run_identity(json_t *doc, const sg_bench_config *c,
                                  const sg_model_workload_info *mi, const char *model,
                                  const char *data, const char data_sha[65])
{
    char now[32];
    sg_rfc3339_now(now);
    json_object_set_new(doc, "timestamp", json_string(now));
    /* as a gate report says it: a fixed time is not when the run was made */
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) json_object_set_new(doc, "timestamp_source", json_string("SOURCE_DATE_EPOCH"));
    json_t *m = json_object();
    json_object_set_new(m, "path", sg_json_string_safe(model));
    json_object_set_new(m, "sha256", json_string(mi->sha256));
    json_object_set_new(m, "description", json_string(mi->description));
    json_object_set_new(m, "parameters",
                        isfinite(mi->parameters) ? json_integer((json_int_t)mi->parameters)
                                                 : json_null());
    json_object_set_new(m, "param_bytes", json_integer((json_int_t)mi->param_bytes));
    json_object_set_new(m, "flops_per_row", json_real(mi->flops_per_row));
    json_object_set_new(m, "node_visits_per_row", json_real(mi->node_visits_per_row));
    double rows_per_s = json_number_value(json_object_get(doc, "throughput"));
    json_object_set_new(m, "achieved_gflops",
                        mi->flops_per_row > 0 && isfinite(rows_per_s)
                            ? json_real(mi->flops_per_row * rows_per_s / 1e9)
                            : json_null());
    json_object_set_new(m, "achieved_node_visits_per_s",
                        mi->node_visits_per_row > 0 && isfinite(rows_per_s)
                            ? json_real(mi->node_visits_per_row * rows_per_s)
                            : json_null());
    json_object_set_new(doc, "model", m);
    json_t *d = json_object();
    json_object_set_new(d, "path", sg_json_string_safe(data));
    json_object_set_new(d, "sha256", json_string(data_sha));
    json_object_set_new(doc, "dataset", d);
    json_t *workers = json_object_get(json_object_get(doc, "machine"), "workers");
    json_object_set_new(doc, "warmup",
                        json_integer(sg_bench_warmup(c, (int)json_integer_value(workers))));
    json_object_set_new(doc, "seed", json_integer((json_int_t)c->seed));
    return SG_OK;
}

int sg_cmd_bench(int argc, char **argv)
{
    sg_bench_config c;
    sg_bench_config_init(&c);
    const char *model = NULL, *data = NULL, *samples = NULL, *db = NULL, *scenario = NULL;
    const char *output = NULL, *output_name = NULL;
    bool json = false, have_batch = false, have_bound = false;
    int64_t repetitions = c.repetitions;
    double bound_ms = 0;
    sg_err err = {{0}};
    int64_t seed = (int64_t)c.seed;
    bool have_seed = false;
    const sg_opt opts[] = {
        SG_OPT_STR("model", &model),
        SG_OPT_STR("data", &data),
        SG_OPT_STR("scenario", &scenario),
        SG_OPT_DBL("qps", &c.qps, 1e-3, 1e9),
        SG_OPT_DBL("duration", &c.min_duration_s, 0, SG_SCENARIO_MAX_DURATION_S),
        SG_OPT_INT_("min-queries", &c.min_queries, 1, 1000000000),
        SG_OPT_INT_("repetitions", &repetitions, 1, 1000),
        {SG_OPT_DOUBLE, "latency-bound-ms", &bound_ms, 1e-6, 1e7, &have_bound},
        SG_OPT_INT_("warmup", &c.warmup, 0, 100000000),
        SG_OPT_INT_SEEN("seed", &seed, 0, (double)INT64_MAX, &have_seed),
        SG_OPT_INT_SEEN("batch", &c.batch, 1, 1 << 20, &have_batch),
        SG_OPT_STR("cpus", &c.cpus),
        SG_OPT_FLAG_("json", &json),
        SG_OPT_STR("samples", &samples),
        SG_OPT_FLAG_("breakdown", &c.breakdown),
        SG_OPT_STR("db", &db),
        SG_OPT_STR("output", &output),
        SG_OPT_STR("output-name", &output_name),
        SG_OPT_END_,
    };
    int n_pos;
    int prc = sg_opts_parse("bench", opts, argc, argv, 1, NULL, 0, &n_pos);
    if (prc == SG_OPTS_HELP) {
        usage(stdout);
        return 0;
    }
    if (prc != SG_OPTS_OK) return 2;
    if (sg_cli_db_empty("bench", db)) return 2;
    c.seed = (uint64_t)seed;
    c.repetitions = (int)repetitions;
    if (have_bound) c.latency_bound_ns = sg_ms_to_ns(bound_ms);
    if (scenario) {
        const sg_scenario_info *si = sg_scenario_find(scenario);
        if (!si)
            return sg_cli_usage_error("bench", "--scenario: '%s' is not %s", scenario,
                                      sg_scenario_list());
        c.scenario = si->id;
    }
    if (!model || !data) return sg_cli_usage_error("bench", "--model and --data are required");
    if (!scenario) return sg_cli_usage_error("bench", "--scenario is required");
    /* its time stamps the --json document: a malformed value had been ignored silently */
    if (sg_source_date_epoch_check(&err) != SG_OK) return sg_cli_fail(SG_EINPUT, &err);
    sg_scenario_settings given = {.arrival_rate = c.qps > 0,
                                  .batch = have_batch,
                                  .breakdown = c.breakdown,
                                  .latency_bound = have_bound,
                                  .seed = have_seed};
    if (sg_scenario_check(&sg_scenarios[c.scenario], &given, false, &err) != SG_OK)
        return sg_cli_usage_error("bench", "%s", err.msg);
    /* A models:/ URI gives the registered digest: the model file is read once and those
       bytes are checked against it before any is parsed, as eval and gate do. */
    char resolved[4096], registered[65] = "";
    if (sg_is_model_uri(model)) {
        int st = sg_cli_resolve_apart(model, db, resolved, sizeof resolved, registered, &err);
        if (st) return sg_cli_fail(st, &err);
        model = resolved;
    }
    /* Samples written over the model or the set would destroy them. */
    sg_cli_path ins[] = {{"--model", model}, {"--data", data}, {0}, {0}, {0}, {0}, {NULL, NULL}};
    char j[3][PATH_MAX];
    sg_cli_registry_inputs(sg_cli_registry_guarded(db, db || registered[0]), ins + 2, j);
    const sg_cli_path outs[] = {{"--samples", samples}, {NULL, NULL}};
    if (sg_cli_check_outputs("bench", ins, outs)) return 2;
    bool offline = sg_scenarios[c.scenario].flags & SG_SCENARIO_BATCHES;
    sg_model *m = NULL;
    sg_dataset *ds = NULL;
    sg_model_workload *mw = NULL;
    sg_model_open_options mo = {.onnx_output = SG_ONNX_OUTPUT_AUTO,
                                .onnx_output_name = output_name};
    if (output) {
        int o = sg_onnx_output_parse(output);
        if (o < 0)
            return sg_cli_usage_error("bench", "--output is '%s', expected logits, proba or value",
                                      output);
        mo.onnx_output = (sg_onnx_output)o;
    }
    /* The dataset's digest (bench --json) is read through the descriptor its rows came
       from, so the set is opened once too. */
    char data_sha[65] = "";
    int rc = sg_model_open_verified(model, registered[0] ? registered : NULL, &mo, &m, &err);
    if (rc == SG_OK) rc = sg_dataset_open(data, &ds, &err);
    if (rc == SG_OK)
        rc = sg_model_workload_create_from(m, ds, offline ? 0 : QUERY_ROWS_MAX,
                                           offline ? c.batch : 1, c.breakdown, &mw, &err);
    if (rc == SG_OK && json) rc = sg_dataset_sha256(ds, data_sha, &err);
    if (rc == SG_OK && json) rc = sg_dataset_check_unchanged(ds, &err);
    sg_dataset_close(ds); /* the workload copied its rows */
    if (rc != SG_OK) {
        sg_model_workload_free(mw);
        sg_model_free(m);
        return sg_cli_fail(rc, &err);
    }
    c.workload = sg_model_workload_get(mw);
    c.progress = sg_progress_enabled();
    sg_bench_result r;
    rc = sg_bench_run(&c, &r, &err);
    if (rc != SG_OK) {
        sg_model_workload_free(mw);
        sg_model_free(m);
        return sg_cli_fail(rc, &err);
    }
    if (samples) rc = sg_bench_write_samples(&r, samples, &err);
    if (rc == SG_OK) {
        sg_model_workload_info mi;
        sg_model_workload_info_get(mw, &mi);
        if (json) {
            json_t *doc = sg_bench_result_json(&r);
            if (doc) rc = add_run_identity(doc, &c, &mi, model, data, data_sha);
            if (rc == SG_OK && (!doc || sg_json_print(doc) != 0))
                rc = sg_errf(&err, SG_EIO, "bench: cannot write JSON to stdout%s",
                             samples ? " (the --samples file was written and kept)" : "");
            json_decref(doc);
        } else {
            sg_bench_result_print_model(&r, &mi, stdout);
        }
    }
    sg_bench_result_clear(&r);
    sg_model_workload_free(mw); /* after the report: the stage names belong to the workload */
    sg_model_free(m);           /* after the workload, which borrows it */
    return rc == SG_OK ? 0 : sg_cli_fail(rc, &err);
}
