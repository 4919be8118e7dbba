/* JSON form of an evaluation: the `stagegate eval --json` contract. */
#include "stagegate/json.h"
#include "stagegate/eval.h"

json_t *sg_eval_result_json(const sg_eval_config *c, const sg_eval_result *r)
{
    json_t *doc = json_object();
    json_t *model = json_object();
    json_object_set_new(model, "path", json_string(c->model_path));
    json_object_set_new(model, "sha256", json_string(r->model_sha256));
    json_object_set_new(model, "task", json_string(sg_task_name(r->model->task)));
    if (r->model->task != SG_TASK_REGRESSION)
        json_object_set_new(model, "n_classes", json_integer(r->model->n_classes));
    json_object_set_new(model, "n_features", json_integer(r->model->n_features));
    json_object_set_new(model, "estimator", json_string(r->model->estimator));
    json_object_set_new(model, "param_bytes", json_integer((json_int_t)r->model->param_bytes));
    json_object_set_new(doc, "model", model);

    json_t *ds = json_object();
    json_object_set_new(ds, "path", json_string(c->data_path));
    json_object_set_new(ds, "sha256", json_string(r->data_sha256));
    json_object_set_new(ds, "rows", json_integer(r->rows));
    json_object_set_new(doc, "dataset", ds);

    json_t *metrics = json_object();
    sg_metrics_to_json(&r->metrics, metrics);
    json_object_set_new(doc, "metrics", metrics);
    if (r->model->task == SG_TASK_BINARY) sg_json_set_real(doc, "threshold", c->threshold);

    json_t *timing = json_object();
    sg_json_set_real(timing, "load_seconds", r->load_seconds);
    sg_json_set_real(timing, "predict_seconds", r->predict_seconds);
    sg_json_set_real(timing, "metrics_seconds", r->metrics_seconds);
    sg_json_set_real(timing, "total_seconds", r->total_seconds);
    json_object_set_new(timing, "workers", json_integer(r->workers));
    json_object_set_new(doc, "timing", timing);
    return doc;
}
