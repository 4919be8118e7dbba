/* JSON form of an evaluation: the `stagegate eval --json` contract. */
#include "stagegate/json.h"
#include "stagegate/eval.h"
#include "stagegate/model_ops.h"

json_t *sg_model_summary_json(const sg_model *m)
{
    json_t *model = json_object();
    json_object_set_new(model, "task", json_string(sg_task_name(m->task)));
    if (m->task != SG_TASK_REGRESSION)
        json_object_set_new(model, "n_classes", json_integer(m->n_classes));
    if (m->task != SG_TASK_REGRESSION && m->classes) {
        /* The class values, when they are not 0..n_classes-1: output column j is classes[j]. */
        json_t *cl = json_array();
        for (int j = 0; j < m->n_classes; j++)
            json_array_append_new(cl, json_integer(m->classes[j]));
        json_object_set_new(model, "classes", cl);
    }
    json_object_set_new(model, "n_features", json_integer(m->n_features));
    json_object_set_new(model, "estimator", sg_json_string_safe(m->estimator));
    json_object_set_new(model, "param_bytes", json_integer((json_int_t)m->param_bytes));
    json_object_set_new(model, "kind", json_string(sg_model_kind(m)));
    /* The graph output taken of several (--output-name or the model's metadata). */
    if (m->onnx && m->onnx->output_name[0])
        json_object_set_new(model, "graph_output", sg_json_string_safe(m->onnx->output_name));
    char desc[256];
    sg_model_describe(m, desc, sizeof desc);
    json_object_set_new(model, "description", sg_json_string_safe(desc));
    sg_model_cost cost;
    sg_model_cost_of(m, &cost);
    json_t *jc = json_object();
    if (cost.flops_per_row > 0) sg_json_set_real(jc, "flops_per_row", cost.flops_per_row);
    if (cost.node_visits_per_row > 0)
        sg_json_set_real(jc, "node_visits_per_row", cost.node_visits_per_row);
    sg_json_set_real(jc, "input_bytes_per_row", cost.bytes_per_row);
    json_object_set_new(model, "cost", jc);
    return model;
}

json_t *sg_eval_result_json(const sg_eval_config *c, const sg_eval_result *r)
{
    json_t *doc = json_object();
    json_t *model = json_object();
    json_object_set_new(model, "path", sg_json_string_safe(c->model_path));
    json_object_set_new(model, "sha256", json_string(r->model_sha256));
    json_t *summary = sg_model_summary_json(r->model);
    json_object_update(model, summary); /* after path and sha256: the key order of old */
    json_decref(summary);
    json_object_set_new(doc, "model", model);

    json_t *ds = json_object();
    json_object_set_new(ds, "path", sg_json_string_safe(c->data_path));
    json_object_set_new(ds, "sha256", json_string(r->data_sha256));
    json_object_set_new(ds, "rows", json_integer(r->rows));
    json_object_set_new(doc, "dataset", ds);

    json_t *metrics = json_object();
    sg_metrics_to_json(&r->metrics, metrics);
    json_object_set_new(doc, "metrics", metrics);
    if (r->model->task != SG_TASK_REGRESSION && r->model->n_classes == 2)
        sg_json_set_real(doc, "threshold", c->threshold);

    json_t *timing = json_object();
    sg_json_set_real(timing, "load_seconds", r->load_seconds);
    sg_json_set_real(timing, "predict_seconds", r->predict_seconds);
    sg_json_set_real(timing, "metrics_seconds", r->metrics_seconds);
    sg_json_set_real(timing, "total_seconds", r->total_seconds);
    /* The stages behind those four (see sg_eval_result): main-thread wall clock, then the
       reader's busy time and the share of it that predict hid. */
    sg_json_set_real(timing, "setup_seconds", r->setup_seconds);
    sg_json_set_real(timing, "wait_seconds", r->wait_seconds);
    sg_json_set_real(timing, "metrics_finish_seconds", r->metrics_finish_seconds);
    sg_json_set_real(timing, "read_seconds", r->read_seconds);
    sg_json_set_real(timing, "hash_seconds", r->hash_seconds);
    sg_json_set_real(timing, "input_overlapped", sg_eval_input_overlap(r));
    json_object_set_new(timing, "workers", json_integer(r->workers));
    if (r->predict_paths[0])
        json_object_set_new(timing, "predict_paths", json_string(r->predict_paths));
    json_object_set_new(doc, "timing", timing);
    return doc;
}
