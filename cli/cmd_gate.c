/*
 * stagegate gate: evaluate the candidate (and the baseline), run the policy's
 * latency scenario, compare the two models' predictions, apply the policy and
 * write the signed report plus the requested renderings. Everything that can
 * make the command fail for bad input (policy, key, output paths) is checked
 * before the long runs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cli.h"
#include "stagegate/eval.h"
#include "stagegate/gate.h"
#include "stagegate/harness.h"
#include "stagegate/model_ops.h"
#include "stagegate/keys.h"
#include "stagegate/registry.h"

/* Rows kept in memory for the per-query scenarios (as `bench` does). */
#define QUERY_ROWS_MAX 65536

static const char gate_usage[] =
    "usage: stagegate gate --model M --data D [--baseline B] --policy P.json --key PREFIX.key.pem\n"
    "                      --out REPORT.intoto.json [--junit F.xml] [--html F.html] [--markdown "
    "F.md]\n"
    "                      [--json] [--cpus LIST] [--db REGISTRY.db] [--max-rows N]\n\n"
    "Evaluates the candidate model M on the validation set D, runs the policy's latency\n"
    "scenario, compares predictions with the baseline B (shadow agreement), applies the\n"
    "policy (docs/policy.md) and writes a DSSE-signed in-toto test-result report.\n"
    "M and B are model files (stagegate HDF5, XGBoost JSON or UBJSON, or ONNX; any two kinds\n"
    "may be compared)\n"
    "or registry URIs (models:/NAME/VERSION, /STAGE, @ALIAS).\n\n"
    "  --json                     print one JSON document instead of the summary\n"
    "  --cpus LIST                CPUs for evaluation and latency workers, e.g. 0-3\n"
    "  --max-rows N               refuse (exit 2) a validation set of more than N rows, before\n"
    "                             reading any: a bound on the run's time for CI\n"
    "  --output logits|proba|value  ONNX models (candidate and baseline) whose output does\n"
    "                             not end in Softmax/Sigmoid: what it means\n"
    "  --output-name NAME         ONNX models (candidate and baseline) of several graph\n"
    "                             outputs: the one that is the model's\n\n"
    "Exit codes: 0 gate passed, 1 gate failed, 2 usage or input error (bad policy, key, file).\n";

typedef struct {
    const char *model, *data, *baseline, *policy, *key, *out, *cpus, *db, *output, *output_name;
    int64_t max_rows;
    sg_onnx_output onnx_output;
    const char *render[SG_REPORT_FORMATS_MAX]; /* per sg_report_formats entry: path or NULL */
    bool json;
} gate_args;

/*
 * An output over an input (--out KEY.pem, --html MODEL.h5, --markdown REGISTRY.db) would
 * destroy it. model and baseline are the files a registry URI resolved to once it has been;
 * the registry counts as an input when either is a URI. true with the reason in why.
 */
static bool check_outputs(const gate_args *a, const char *model, const char *baseline,
                          char *why, size_t len)
{
    const bool uri = (a->model && sg_is_model_uri(a->model)) ||
                     (a->baseline && sg_is_model_uri(a->baseline));
    sg_cli_path ins[] = {{"--model", model}, {"--data", a->data}, {"--baseline", baseline},
                         {"--policy", a->policy}, {"--key", a->key}, {0}, {0}, {0}, {0},
                         {NULL, NULL}};
    char j[3][PATH_MAX];
    sg_cli_registry_inputs(sg_cli_registry_guarded(a->db, a->db || uri), ins + 5, j);
    sg_cli_path outs[2 + SG_REPORT_FORMATS_MAX];
    char names[SG_REPORT_FORMATS_MAX][24];
    size_t k = 0;
    outs[k++] = (sg_cli_path){"--out", a->out};
    for (size_t i = 0; i < sg_n_report_formats; i++) {
        snprintf(names[i], sizeof names[i], "--%s", sg_report_formats[i].name);
        outs[k++] = (sg_cli_path){names[i], a->render[i]};
    }
    outs[k] = (sg_cli_path){NULL, NULL};
    sg_err e = {{0}};
    if (sg_cli_outputs_err(ins, outs, &e) == SG_OK) return false;
    snprintf(why, len, "%s", e.msg);
    return true;
}

/* SG_OPTS_OK to go on; SG_OPTS_HELP after printing the usage; SG_OPTS_ERROR after a usage error. */
static int parse_args(int argc, char **argv, gate_args *a)
{
    memset(a, 0, sizeof *a);
    sg_opt opts[16 + SG_REPORT_FORMATS_MAX] = {
        SG_OPT_STR("model", &a->model),
        SG_OPT_STR("data", &a->data),
        SG_OPT_STR("baseline", &a->baseline),
        SG_OPT_STR("policy", &a->policy),
        SG_OPT_STR("key", &a->key),
        SG_OPT_STR("out", &a->out),
        SG_OPT_FLAG_("json", &a->json),
        SG_OPT_STR("cpus", &a->cpus),
        SG_OPT_STR("db", &a->db),
        SG_OPT_STR("output", &a->output),
        SG_OPT_STR("output-name", &a->output_name),
        SG_OPT_INT_("max-rows", &a->max_rows, 1, INT64_MAX),
    };
    size_t n = 0; /* past the options above (the rest of the array is zero); then one per
                     report format, from its table */
    while (opts[n].name)
        n++;
    for (size_t i = 0; i < sg_n_report_formats; i++)
        opts[n++] = (sg_opt)SG_OPT_STR(sg_report_formats[i].name, &a->render[i]);
    opts[n] = (sg_opt)SG_OPT_END_;
    int n_pos;
    int prc = sg_opts_parse("gate", opts, argc, argv, 1, NULL, 0, &n_pos);
    if (prc == SG_OPTS_HELP) {
        fputs(gate_usage, stdout);
        printf("\nreport formats, each written atomically next to the signed report:\n");
        for (size_t i = 0; i < sg_n_report_formats; i++)
            printf("  --%-9s F%-6s %s\n", sg_report_formats[i].name, sg_report_formats[i].extension,
                   sg_report_formats[i].what);
    }
    if (prc != SG_OPTS_OK) return prc;
    const char *missing = !a->model    ? "--model"
                          : !a->data   ? "--data"
                          : !a->policy ? "--policy"
                          : !a->key    ? "--key"
                          : !a->out    ? "--out"
                                       : NULL;
    if (missing) {
        sg_cli_usage_error("gate", "%s is required", missing);
        return SG_OPTS_ERROR;
    }
    if (sg_cli_db_empty("gate", a->db)) return SG_OPTS_ERROR;
    char why[sizeof ((sg_err *)0)->msg];
    if (check_outputs(a, a->model, a->baseline, why, sizeof why)) {
        sg_cli_usage_error("gate", "%s", why);
        return SG_OPTS_ERROR;
    }
    if (a->output) {
        int o = sg_onnx_output_parse(a->output);
        if (o < 0) {
            sg_cli_usage_error("gate", "--output is '%s', expected logits, proba or value",
                               a->output);
            return SG_OPTS_ERROR;
        }
        a->onnx_output = (sg_onnx_output)o;
    }
    return SG_OPTS_OK;
}

/* Creates and removes each output's temp file, so a bad directory fails before the long runs. */
static sg_status probe_output(const char *path, sg_err *err)
{
    if (!path) return SG_OK;
    /* rename() onto a directory would only fail at the very end, after the long runs. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return sg_errf(err, SG_EINPUT, "%s: is a directory, not an output file", path);
    sg_outfile o;
    int rc = sg_outfile_open(&o, path, err);
    if (rc) return rc;
    sg_outfile_abort(&o);
    return SG_OK;
}

/* A registry URI becomes its artifact path plus the registered digest the loaded bytes must
 * match (sha empty for a plain path). */
static int resolve(const char *name, const char *db, char *buf, size_t len, const char **out,
                   char sha[65], sg_err *err)
{
    *out = name;
    sha[0] = '\0';
    if (!name || !sg_is_model_uri(name)) return SG_OK;
    int rc = sg_cli_resolve_apart(name, db, buf, len, sha, err);
    if (!rc) *out = buf;
    return rc;
}

static void metric_values(const sg_metrics *m, sg_metric_values *mv)
{
    memset(mv, 0, sizeof *mv);
    for (int i = 0; sg_policy_metric_names[i]; i++) {
        double v;
        if (sg_metrics_get(m, sg_policy_metric_names[i], &v))
            SG_ASSERT(sg_metric_values_set(mv, sg_policy_metric_names[i], v) == SG_OK);
    }
}

static json_t *metrics_json(const sg_metrics *m)
{
    json_t *o = json_object();
    if (sg_metrics_to_json(m, o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The queries a repetition runs when the policy sets no min_queries: bench's minimum, or the
 * early-stopping estimate's for the percentile (662 for p99) when that is more. */
static int64_t default_min_queries(const sg_gate_policy *p)
{
    sg_bench_config c;
    sg_bench_config_init(&c);
    int64_t need = sg_early_stopping_min_queries(1, p->latency_percentile / 100.0, 0.99);
    return c.min_queries < need ? need : c.min_queries;
}

/* Runs the policy's scenario on the candidate and fills the gate's view of it. */
static sg_status run_latency(const gate_args *a, const sg_model *model, sg_dataset *ds,
                             const sg_gate_policy *p,
                       sg_bench_result *br, bool *ran, sg_gate_latency *lat, sg_err *err)
{
    int scenario = sg_scenario_parse(p->latency_scenario);
    if (scenario < 0)
        return sg_errf(err, SG_EINTERNAL, "gate: unknown scenario %s", p->latency_scenario);
    bool offline = sg_scenarios[scenario].flags & SG_SCENARIO_BATCHES;
    if (offline) {
        /* Its latencies are of whole batches: no per-query percentile to hold to a budget
           (docs/policy.md), so the check fails with the reason, and nothing is timed. */
        memset(lat, 0, sizeof *lat);
        snprintf(lat->reason, sizeof lat->reason,
                 "the offline scenario measures throughput, not per-query latency");
        return SG_OK;
    }
    sg_bench_config c;
    sg_bench_config_init(&c);
    c.scenario = (sg_scenario)scenario;
    c.cpus = a->cpus;
    c.qps = p->latency_target_qps;
    c.progress = sg_progress_enabled();
    /* An explicit min_queries is honoured as given, even when too few for the estimate: the check
     * says so. */
    if (p->latency_min_queries > 0) {
        c.min_queries = p->latency_min_queries;
        c.min_duration_s = 0;
    } else {
        c.min_queries = default_min_queries(p);
        c.min_duration_s = SG_POLICY_DEFAULT_DURATION_S;
    }
    if (p->latency_duration_s >= 0) c.min_duration_s = p->latency_duration_s;
    c.repetitions = p->latency_repetitions > 0 ? p->latency_repetitions : 1;
    /* LoadGen's server constraint is the policy's own bound. */
    if ((sg_scenarios[scenario].flags & SG_SCENARIO_VERDICT) && p->latency_max_ms > 0)
        c.latency_bound_ns = sg_ms_to_ns(p->latency_max_ms);
    sg_model_workload *mw = NULL;
    int rc = sg_model_workload_create_from(model, ds, QUERY_ROWS_MAX, 1, false, &mw, err);
    if (rc) return rc;
    c.workload = sg_model_workload_get(mw);
    rc = sg_bench_run(&c, br, err);
    sg_model_workload_free(mw);
    if (rc) return rc;
    *ran = true;
    memset(lat, 0, sizeof *lat);
    lat->measured = true;
    if (br->cut_short) snprintf(lat->cut_short, sizeof lat->cut_short, "%s", br->cut_short_reason);
    snprintf(lat->scenario, sizeof lat->scenario, "%s", sg_scenario_name(br->scenario));
    lat->queries = br->queries;
    lat->p90_ms = br->es_p90.valid ? br->es_p90.estimate_ns / 1e6 : NAN;
    lat->p99_ms = br->es_p99.valid ? br->es_p99.estimate_ns / 1e6 : NAN;
    lat->p90_min_queries = br->queries + br->es_p90.queries_needed;
    lat->p99_min_queries = br->queries + br->es_p99.queries_needed;
    if ((sg_scenarios[br->scenario].flags & SG_SCENARIO_VERDICT) && !br->server_valid)
        snprintf(lat->invalid, sizeof lat->invalid, "%s", br->validity_reason);
    return SG_OK;
}

/* A check's value or limit in the unit that suits it (the policy states latency in ms and
 * memory in MiB); "-" when there is none. */
static void fmt_check_number(char *buf, size_t n, const sg_gate_check *c, double v, const char *op)
{
    char num[40];
    if (!isfinite(v)) {
        snprintf(buf, n, "-");
        return;
    }
    sg_gate_check_number(num, sizeof num, c, v);
    snprintf(buf, n, "%s%s%s", op ? op : "", op ? " " : "", num);
}

/* One line per check: mark, name, measured value, the limit it was held to, and the readable
 * sentence. */
static void print_summary(const sg_gate_decision *d, const char *out)
{
    printf("    %-32s %-14s %-16s %s\n", "check", "value", "limit", "detail");
    for (int i = 0; i < d->n; i++) {
        const sg_gate_check *c = &d->checks[i];
        char value[64], limit[64];
        fmt_check_number(value, sizeof value, c, c->value, NULL);
        fmt_check_number(limit, sizeof limit, c, c->limit, c->op);
        /* Padded by characters, not bytes: "\u00b5s" is two bytes wide in UTF-8. */
        printf("  %s %-32s %s%*s %s%*s %s\n",
               c->skipped  ? "-"
               : c->passed ? "\u2713"
                           : "\u2717",
               c->name, value, 14 - (int)sg_utf8_width(value), "", limit,
               16 - (int)sg_utf8_width(limit), "", c->text);
    }
    printf("gate %s: %d checks, %d failed, %d skipped; signed report ",
           d->passed ? "PASSED" : "FAILED", d->n, d->n_failed, d->n_skipped);
    sg_put_printable(stdout, out);
    fputc('\n', stdout);
}

typedef struct {
    sg_gate_policy policy;
    sg_private_key_file *key; /* held out of forks; parsed only to sign */
    sg_eval_result cand, base;
    bool have_cand, have_base, have_bench;
    sg_bench_result bench;
    sg_shadow_result shadow;
    sg_gate_decision decision;
    json_t *statement;
    /* Loaded once and passed to every stage: candidate eval, latency, baseline eval. */
    sg_model *cand_model, *base_model;
    sg_dataset *data;
} gate_run;

static void gate_run_clear(gate_run *g)
{
    sg_key_file_free(g->key);
    if (g->have_cand) sg_eval_result_clear(&g->cand);
    if (g->have_base) sg_eval_result_clear(&g->base);
    if (g->have_bench) sg_bench_result_clear(&g->bench);
    sg_shadow_result_clear(&g->shadow);
    sg_gate_decision_clear(&g->decision);
    json_decref(g->statement);
    sg_model_free(g->cand_model);
    sg_model_free(g->base_model);
    sg_dataset_close(g->data);
}

static int build_statement(const gate_args *a, const char *model, const char *baseline, gate_run *g,
                           const sg_gate_memory *mem, sg_err *err)
{
    sg_statement_inputs si = {.model_path = model, .decision = &g->decision};
    /* The digest of the bytes that were parsed and evaluated, not of whatever the path names now.
     */
    sg_hex_encode(g->cand.model->sha256, 32, si.model_sha256);
    si.config[si.n_config] = (sg_resource){.role = "dataset", .path = a->data};
    memcpy(si.config[si.n_config++].sha256, g->cand.data_sha256, 65);
    si.config[si.n_config] = (sg_resource){.role = "policy", .path = a->policy};
    memcpy(si.config[si.n_config++].sha256, g->policy.sha256, 65);
    sg_status rc = SG_OK;
    if (baseline) {
        si.config[si.n_config] = (sg_resource){.role = "baseline", .path = baseline};
        sg_hex_encode(g->base.model->sha256, 32, si.config[si.n_config++].sha256);
    }
    /* The binary that made the decision, so a verifier can pin the gate's own version. */
    if (!rc) {
        si.config[si.n_config] = (sg_resource){.role = "stagegate", .path = "stagegate"};
        rc = sg_sha256_file_hex("/proc/self/exe", si.config[si.n_config++].sha256, err);
    }
    if (rc) return rc;
    /* A model taken from a registry: the report carries the registry's audit head as it was,
     * so a registry whose log was later cut back past it refuses the report. */
    json_t *registry = NULL;
    if (sg_is_model_uri(a->model)) {
        int64_t seq = 0;
        char head[65];
        if ((rc = sg_registry_head_uri(a->db, &seq, head, err)) != SG_OK) return rc;
        registry = json_pack("{s{sIss}}", "audit_head", "seq", (json_int_t)seq, "hash", head);
        si.registry = registry;
    }
    si.metrics = metrics_json(&g->cand.metrics);
    si.baseline_metrics = g->have_base ? metrics_json(&g->base.metrics) : NULL;
    si.latency = g->have_bench ? sg_bench_result_json(&g->bench) : NULL;
    si.memory = json_object();
    sg_json_set_real(si.memory, "peak_rss_mb", mem->peak_rss_mb);
    sg_json_set_real(si.memory, "model_mb", mem->model_mb);
    json_object_set_new(si.memory, "model_param_bytes",
                        json_integer((json_int_t)g->cand.model->param_bytes));
    si.shadow = g->have_base ? sg_shadow_result_json(&g->shadow) : NULL;
    si.policy = sg_policy_json(&g->policy);
    {
        /* What was evaluated, as evaluated: an ONNX model's output rule (the model's own, or
           --output's) decides its metrics, and sample weights weight them; neither had been
           in the statement, so one model's PASSED and FAILED reports looked alike. */
        const sg_model *m = g->cand.model;
        json_t *ev = json_object(), *jm = sg_model_summary_json(m);
        /* The rule applied, not the flag: --output logits on a graph that ends in Sigmoid is
           not used, and "logits" had been recorded for it; the baseline's had not been
           recorded at all. */
        if (m->onnx) json_object_set_new(jm, "output", sg_json_string_safe(m->onnx->output_rule));
        json_object_set_new(ev, "model", jm);
        /* The baseline as evaluated: its output rule decides the metrics its limits come from. */
        if (g->base_model) {
            json_t *jb = sg_model_summary_json(g->base_model);
            if (g->base_model->onnx)
                json_object_set_new(jb, "output",
                                    sg_json_string_safe(g->base_model->onnx->output_rule));
            json_object_set_new(ev, "baseline_model", jb);
        }
        json_object_set_new(ev, "rows", json_integer(g->cand.rows));
        json_object_set_new(ev, "sample_weight", json_boolean(sg_dataset_has_weights(g->data)));
        si.evaluation = ev;
    }
    /* The policy as applied names the query minimum a latency run was held to when the
       policy set none (default_min_queries, as run_latency applies it). */
    json_t *pl = json_object_get(si.policy, "latency");
    if (pl && g->have_bench && !json_object_get(pl, "min_queries"))
        json_object_set_new(pl, "min_queries", json_integer(default_min_queries(&g->policy)));
    g->statement = sg_statement_build(&si, err);
    json_decref(si.metrics);
    json_decref(si.baseline_metrics);
    json_decref(si.latency);
    json_decref(si.memory);
    json_decref(si.shadow);
    json_decref(si.policy);
    json_decref(si.evaluation);
    json_decref(registry);
    return g->statement ? SG_OK : SG_EINTERNAL;
}

static sg_status run_gate(const gate_args *a, gate_run *g, sg_err *err)
{
    int rc = sg_source_date_epoch_check(err);
    if (!rc) rc = sg_topology_require_real(err);
    if (!rc) rc = sg_policy_load(a->policy, &g->policy, err);
    if (!rc) rc = sg_key_file_read(a->key, &g->key, err);
    if (!rc) rc = probe_output(a->out, err);
    for (size_t i = 0; !rc && i < sg_n_report_formats; i++)
        rc = probe_output(a->render[i], err);
    char mbuf[4096], bbuf[4096], msha[65], bsha[65];
    const char *model = NULL, *baseline = NULL;
    if (!rc) rc = resolve(a->model, a->db, mbuf, sizeof mbuf, &model, msha, err);
    if (!rc) rc = resolve(a->baseline, a->db, bbuf, sizeof bbuf, &baseline, bsha, err);
    if (rc) return rc;
    char why[sizeof err->msg];
    if ((model != a->model || baseline != a->baseline) &&
        check_outputs(a, model, baseline, why, sizeof why))
        return sg_errf(err, SG_EINPUT, "%s", why);

    /*
     * Each input is opened once. The models are read, hashed (and checked against a
     * registered digest) and parsed once; the dataset is opened once and hashed through
     * that descriptor. Every stage gets these objects, so every figure in the report
     * comes from the bytes its digests name.
     */
    /* The dataset's sandboxed dry run (a child process) runs while the models load; its
       errors are reported after theirs, as when the three opened in turn. */
    sg_err data_err = {{0}};
    sg_status data_rc = sg_dataset_open_begin_max(a->data, a->max_rows, &g->data, &data_err);
    /* --output says what an ONNX model's output means: for whichever of the two is one. */
    sg_model_open_options mo = {
        .onnx_output = a->onnx_output, .onnx_only = true, .onnx_output_name = a->output_name};
    if ((rc = sg_model_open_verified(model, msha[0] ? msha : NULL, &mo, &g->cand_model, err)))
        return rc;
    /* A classifier's shadow check compares labels: a tolerance would be read and ignored. */
    if (g->policy.shadow_tolerance_given && g->cand_model->task != SG_TASK_REGRESSION)
        return sg_errf(err, SG_EINPUT,
                       "%s: shadow.tolerance applies to regression models; %s is a %s model, "
                       "whose shadow check compares labels (remove the tolerance)",
                       a->policy, model, sg_task_name(g->cand_model->task));
    if (data_rc == SG_OK) data_rc = sg_dataset_open_end(g->data, &data_err);
    if (data_rc != SG_OK) {
        *err = data_err;
        return data_rc;
    }

    sg_eval_config ec;
    sg_eval_config_init(&ec);
    ec.model_path = model;
    ec.model = g->cand_model;
    ec.data_path = a->data;
    ec.dataset = g->data;
    ec.cpus = a->cpus;
    ec.max_rows = a->max_rows;
    ec.keep_predictions = baseline != NULL;
    ec.progress = sg_progress_enabled();
    ec.expected_sha256 = msha[0] ? msha : NULL;
    /* Wall time per stage, shared out among the checks that stage feeds (JUnit's time). */
    double t = sg_now_seconds(), t_eval, t_lat = 0, t_shadow = 0;
    ec.onnx_output = a->onnx_output;
    ec.onnx_output_name = a->output_name;
    if ((rc = sg_eval_run(&ec, &g->cand, err))) return rc;
    g->have_cand = true;
    t_eval = sg_now_seconds() - t;
    /* ru_maxrss is a high-water mark. Read it after the candidate's evaluation (model,
     * per-worker copies and scratch, streaming buffers) and before the latency run, whose
     * per-query sample log grows with the query count and says nothing about the model. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    sg_gate_memory mem = {.measured = true,
                          .peak_rss_mb = (double)ru.ru_maxrss / 1024.0,
                          .model_mb = (double)g->cand.model->param_bytes / (1024.0 * 1024.0)};
    /* The baseline is read only now, so that its bytes and parameters are not in the
       candidate's peak (adding a baseline changed the memory check's verdict). */
    if (baseline) {
        /* --output is for a model that does not say what its output means: a baseline whose
           metadata_props say it keeps that (--output had overridden it, so the baseline's
           probabilities went through a second softmax and its metrics were misread). */
        sg_model_open_options bo = mo;
        if (bo.onnx_output != SG_ONNX_OUTPUT_AUTO)
            bo.onnx_output = (sg_onnx_output)(bo.onnx_output | SG_ONNX_OUTPUT_IF_UNSAID);
        if ((rc =
                 sg_model_open_verified(baseline, bsha[0] ? bsha : NULL, &bo, &g->base_model, err)))
            return rc;
        const sg_model *cm = g->cand_model, *bm = g->base_model;
        /* Two classifiers of as many classes compare, whatever their formats call them: an
           XGBoost multi:softprob of 2 classes and a binary:logistic, or an ONNX two-column
           softmax, have the same outputs and, for two classes, the same metrics. */
        if ((cm->task == SG_TASK_REGRESSION) != (bm->task == SG_TASK_REGRESSION) ||
            cm->n_classes != bm->n_classes) {
            char bd[64], cd[64];
            snprintf(bd, sizeof bd, bm->task == SG_TASK_REGRESSION ? "a %s model" : "a %s model of %d classes",
                     sg_task_name(bm->task), bm->n_classes);
            snprintf(cd, sizeof cd, cm->task == SG_TASK_REGRESSION ? "a %s model" : "a %s model of %d classes",
                     sg_task_name(cm->task), cm->n_classes);
            return sg_errf(err, SG_EINPUT,
                           "%s: the baseline is %s and the candidate %s is %s: their predictions "
                           "cannot be compared",
                           baseline, bd, model, cd);
        }
        /* The same classes, as values: label j must mean the same class in both models for
           the shadow check and the baseline's metrics (a baseline fitted on {0, 1} and a
           candidate on {1, 2} would otherwise compare as equal). */
        if (cm->task != SG_TASK_REGRESSION && !sg_classes_equal(cm, bm)) {
            char bc[160], cc[160];
            sg_classes_text(bm->classes, bm->n_classes, bc, sizeof bc);
            sg_classes_text(cm->classes, cm->n_classes, cc, sizeof cc);
            return sg_errf(err, SG_EINPUT,
                           "%s: the baseline's classes are %s and the candidate %s's %s: their "
                           "predictions cannot be compared",
                           baseline, bc, model, cc);
        }
        /* Checked now, not when the baseline's evaluation meets it after the latency run. */
        if (bm->n_features != sg_dataset_features(g->data))
            return sg_errf(err, SG_EINPUT,
                           "%s: the baseline expects %d features, and %s has %d",
                           baseline, bm->n_features, a->data, sg_dataset_features(g->data));
    }
    if (a->onnx_output != SG_ONNX_OUTPUT_AUTO && strcmp(sg_model_kind(g->cand_model), "onnx") &&
        (!g->base_model || strcmp(sg_model_kind(g->base_model), "onnx")))
        return sg_errf(err, SG_EINPUT,
                       "--output %s applies to ONNX models, and neither model is one",
                       sg_onnx_output_name(a->onnx_output));
    if (a->output_name && strcmp(sg_model_kind(g->cand_model), "onnx") &&
        (!g->base_model || strcmp(sg_model_kind(g->base_model), "onnx")))
        return sg_errf(err, SG_EINPUT,
                       "--output-name applies to ONNX models, and neither model is one");
    /* Every HDF5 check's child has been forked and has exited: only now is the key parsed
       (to fail before the latency run and the baseline's evaluation it would sign), so
       that none of them had it in memory. */
    EVP_PKEY *key = NULL;
    rc = sg_key_file_parse(g->key, &key, err);
    EVP_PKEY_free(key);
    if (rc) return rc;

    sg_gate_latency lat = {0};
    snprintf(lat.reason, sizeof lat.reason, "the policy has no latency section");
    t = sg_now_seconds();
    if (g->policy.has_latency &&
        (rc = run_latency(a, g->cand_model, g->data, &g->policy, &g->bench, &g->have_bench, &lat, err)))
        return rc;
    t_lat = sg_now_seconds() - t;
    if (baseline) {
        /* The baseline streams the same open dataset again rather than sharing the
         * candidate's pass: the memory check above measures the candidate alone. */
        ec.model_path = baseline;
        ec.model = g->base_model;
        ec.expected_sha256 = bsha[0] ? bsha : NULL;
        t = sg_now_seconds();
        if ((rc = sg_eval_run(&ec, &g->base, err))) return rc;
        g->have_base = true;
        t_eval += sg_now_seconds() - t;
        t = sg_now_seconds();
        const sg_model *cm = g->cand.model;
        if (g->cand.rows != g->base.rows)
            return sg_errf(err, SG_EINTERNAL,
                           "gate: candidate and baseline evaluated different row counts");
        if (cm->task == SG_TASK_REGRESSION)
            rc = sg_shadow_compare_values(g->cand.pred_values, g->base.pred_values, g->cand.rows,
                                          g->policy.shadow_abs_tolerance,
                                          g->policy.shadow_rel_tolerance, &g->shadow, err);
        else
            rc = sg_shadow_compare_labels(g->cand.pred_labels, g->base.pred_labels, g->cand.rows,
                                          cm->n_classes, &g->shadow, err);
        if (rc) return rc;
        t_shadow = sg_now_seconds() - t;
    }

    sg_metric_values cv, bv;
    metric_values(&g->cand.metrics, &cv);
    if (g->have_base) metric_values(&g->base.metrics, &bv);
    sg_gate_inputs in = {.candidate = &cv,
                         .baseline = g->have_base ? &bv : NULL,
                         .latency = &lat,
                         .memory = &mem,
                         .shadow = g->have_base ? &g->shadow : NULL};
    if ((rc = sg_gate_evaluate(&g->policy, &in, &g->decision, err))) return rc;
    /* Memory is read off the candidate's evaluation, so its checks take no time of their own. */
    sg_gate_decision_add_time(&g->decision, "", t_eval);
    sg_gate_decision_add_time(&g->decision, "latency.", t_lat);
    sg_gate_decision_add_time(&g->decision, "shadow.", t_shadow);
    /* The models are the bytes hashed; the dataset must not have been written since. */
    if ((rc = sg_dataset_check_unchanged(g->data, err))) return rc;
    if ((rc = build_statement(a, model, baseline, g, &mem, err))) return rc;
    if ((rc = sg_key_file_parse(g->key, &key, err))) return rc;
    /* Every output is written and flushed first, and only then renamed into place, the signed
       report last: a failure (a full disk) leaves each path as it was, never a new report
       beside the old renderings or the other way round. */
    sg_outfile outs[SG_REPORT_FORMATS_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; rc == SG_OK && i < sg_n_report_formats; i++)
        if (a->render[i])
            rc = sg_render_stage(a->render[i], sg_report_formats[i].render, &g->decision,
                                 g->statement, &outs[n++], err);
    if (rc == SG_OK) rc = sg_statement_sign_stage(g->statement, key, a->out, &outs[n++], err);
    EVP_PKEY_free(key);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            sg_outfile_abort(&outs[i]);
        return rc;
    }
    /* Flushed to disk first; the renames then run as one set, which a SIGTERM or SIGINT
       cannot split (it is delivered after them), and which a failed rename takes back
       whole: a new summary beside the old signed report had read as this run's. The
       renderings go first, the signed report last (the order they were staged in). */
    sigset_t saved;
    sg_tmp_signals_hold(&saved);
    rc = sg_outfiles_commit(outs, n, err);
    sg_tmp_signals_release(&saved);
    return rc;
}

int sg_cmd_gate(int argc, char **argv)
{
    gate_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc != SG_OPTS_OK) return prc == SG_OPTS_HELP ? 0 : 2;
    gate_run g;
    memset(&g, 0, sizeof g);
    sg_err err = {{0}};
    int rc = run_gate(&a, &g, &err);
    if (rc) {
        gate_run_clear(&g);
        return sg_cli_fail(rc, &err);
    }
    if (a.json) {
        json_t *doc = json_object();
        json_t *pred = json_object_get(g.statement, "predicate");
        json_object_set_new(doc, "result", json_string(g.decision.passed ? "PASSED" : "FAILED"));
        json_object_set_new(doc, "report", sg_json_string_safe(a.out));
        json_object_set(doc, "checks", json_object_get(pred, "checks"));
        json_object_set(doc, "passedTests", json_object_get(pred, "passedTests"));
        json_object_set(doc, "warnedTests", json_object_get(pred, "warnedTests"));
        json_object_set(doc, "failedTests", json_object_get(pred, "failedTests"));
        json_object_set(doc, "subject", json_object_get(g.statement, "subject"));
        if (sg_json_print(doc))
            rc = sg_errf(&err, SG_EIO,
                         "gate: cannot write JSON to stdout (the report and its renderings were "
                         "written and kept)");
        json_decref(doc);
    } else {
        print_summary(&g.decision, a.out);
        /* The latency figures in the report carry the same warnings under "noise". */
        if (g.have_bench) {
            for (int i = 0; i < g.bench.n_noise_warnings; i++)
                printf("warning: noisy machine during the latency run: %s\n",
                       g.bench.noise_warnings[i]);
            if (g.bench.cut_short)
                printf("warning: latency run cut short: %s\n", g.bench.cut_short_reason);
        }
    }
    bool passed = g.decision.passed;
    gate_run_clear(&g);
    if (rc) return sg_cli_fail(rc, &err);
    return passed ? 0 : 1;
}
