#!/usr/bin/python3
"""Reference test: ONNX graphs of several outputs, one of which is the model's (--output-name,
or metadata_props stagegate.output_name), against PyTorch 1.13 on the same rows.

A multi-task network exported by torch.onnx.export returns (logits, a regression head, an
embedding); the embedding head uses an operator stagegate does not run (Trilu, from
torch.triu). Checked:
- --output-name logits: probabilities within 1e-5 of PyTorch's softmax, the metrics those of
  scikit-learn on them, eval --json's model.graph_output and description naming it, and the
  unneeded heads neither compiled (the unsupported operator does not refuse the model) nor
  run (the step count is the classifier's alone);
- --output-name value with --output value: the regression head against PyTorch;
- the name in metadata_props (and the flag overriding it);
- class values of a plain graph in metadata_props stagegate.classes (/y of -1 and 1), and
  its malformed forms refused;
- refusals (exit 2, one line naming the model): several outputs and no name (the names
  listed), a name that is not a graph output, --output-name on a model of another kind, the
  label output of an ONNX-ML classifier named as the model's output;
- gate: the signed report's evaluation.model.graph_output, and bench taking the flag.
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from sklearn.metrics import log_loss, roc_auc_score

SG = os.environ["STAGEGATE_BIN"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


class MultiTask(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.trunk = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU())
        self.cls = torch.nn.Linear(32, 2)
        self.reg = torch.nn.Linear(32, 1)
        self.emb = torch.nn.Linear(32, 4)

    def forward(self, x):
        h = self.trunk(x)
        logits = self.cls(h)
        # Another task's head through an operator stagegate does not run (Trilu).
        aux = torch.triu(h[:, :16].reshape(-1, 4, 4)).sum((1, 2), keepdim=False).unsqueeze(1)
        return logits, self.reg(h), self.emb(h) + aux


def run(*args):
    p = subprocess.run([SG, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def refused(args, path, want, what):
    rc, _, err = run(*args)
    lines = err.strip().splitlines()
    check(rc == 2 and len(lines) == 1 and path in lines[0] and want in lines[0],
          f"{what}: exit {rc}, stderr {err.strip()!r} (want exit 2, one line with {want!r})")


def main():
    tmp = tempfile.mkdtemp(prefix="sg_multi_out_")
    net = MultiTask().eval()
    r = np.random.default_rng(5)
    X = r.normal(size=(3000, 16)).astype(np.float32)
    with torch.no_grad():
        logits, value, _ = (t.numpy().astype(np.float64) for t in net(torch.from_numpy(X)))
    proba = np.exp(logits - logits.max(1, keepdims=True))
    proba /= proba.sum(1, keepdims=True)
    y = (r.random(len(X)) < proba[:, 1]).astype(np.int64)
    data = os.path.join(tmp, "val.h5")
    with h5py.File(data, "w") as f:
        f["X"], f["y"] = X, y
    reg_data = os.path.join(tmp, "val_reg.h5")
    with h5py.File(reg_data, "w") as f:
        f["X"], f["y"] = X, value[:, 0] + r.normal(scale=0.1, size=len(X))
    path = os.path.join(tmp, "multi.onnx")
    torch.onnx.export(net, torch.from_numpy(X[:4]), path, input_names=["x"],
                      output_names=["logits", "value", "embedding"], opset_version=14,
                      dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}, "value": {0: "n"},
                                    "embedding": {0: "n"}})
    ops = {n.op_type for n in onnx.load(path).graph.node}
    check("Trilu" in ops, f"the export has no Trilu to leave out: {sorted(ops)}")

    # The classifier's logits: softmax applied by stagegate (--output logits).
    pred = os.path.join(tmp, "pred.h5")
    rc, out, err = run("eval", "--model", path, "--data", data, "--output-name", "logits",
                       "--output", "logits", "--json", "--predictions", pred)
    if check(rc == 0, f"eval --output-name logits: exit {rc}: {err.strip()}"):
        doc = json.loads(out)
        with h5py.File(pred) as f:
            got = f["proba"][()].astype(np.float64)
        d = float(np.abs(got - proba).max())
        check(d <= 1e-5, f"logits head: max |proba - PyTorch| = {d:.3g}")
        m = doc["metrics"]
        check(abs(m["log_loss"] - log_loss(y, got)) <= 1e-9 and
              abs(m["roc_auc"] - roc_auc_score(y, got[:, 1])) <= 1e-9,
              f"logits head metrics {m['log_loss']}, {m['roc_auc']}")
        desc = doc["model"]["description"]
        check(doc["model"].get("graph_output") == "logits" and
              "graph output 'logits' of 3" in desc,
              f"model.graph_output {doc['model'].get('graph_output')!r}, description {desc!r}")
        print(f"ok   --output-name logits: max diff {d:.2g}; {desc}")
        # Only the classifier's steps: trunk Gemm + ReLU and the head's Gemm (a dense chain).
        check("layers 32x2" in desc and "dense kernels" in desc,
              f"the unneeded heads were compiled into the plan: {desc}")

    # The regression head.
    rc, out, err = run("eval", "--model", path, "--data", reg_data, "--output-name", "value",
                       "--output", "value", "--json", "--predictions", pred)
    if check(rc == 0, f"eval --output-name value: exit {rc}: {err.strip()}"):
        with h5py.File(pred) as f:
            got = f["prediction"][()].astype(np.float64).reshape(-1)
        d = float(np.max(np.abs(got - value[:, 0]) / np.maximum(1, np.abs(value[:, 0]))))
        check(d <= 1e-5, f"value head: max relative diff {d:.3g} from PyTorch")
        check(json.loads(out)["model"]["task"] == "regression", "value head is a regressor")
        print(f"ok   --output-name value: max diff {d:.2g}")

    # The name in the model's metadata, and the flag over it.
    mp = onnx.load(path)
    mp.metadata_props.add(key="stagegate.output_name", value="logits")
    mp.metadata_props.add(key="stagegate.output", value="logits")
    named = os.path.join(tmp, "named.onnx")
    onnx.save(mp, named)
    rc, out, err = run("eval", "--model", named, "--data", data, "--json")
    check(rc == 0 and json.loads(out)["model"].get("graph_output") == "logits",
          f"metadata_props stagegate.output_name: exit {rc}: {err.strip()}")
    rc, out, err = run("eval", "--model", named, "--data", reg_data, "--json", "--output-name",
                       "value", "--output", "value")
    check(rc == 0 and json.loads(out)["model"].get("graph_output") == "value",
          f"--output-name over the metadata: exit {rc}: {err.strip()}")
    print("ok   metadata_props stagegate.output_name, and the flag over it")

    # Class values of a plain graph (a network trained on -1/1 labels): metadata_props
    # stagegate.classes, as export_torch.py --classes writes it; /y holds -1 and 1.
    pm1_data = os.path.join(tmp, "val_pm1.h5")
    with h5py.File(pm1_data, "w") as f:
        f["X"], f["y"] = X, np.where(y == 1, 1, -1)
    for value, want in (("-1,1", None), (" -1 , 1 ", None), ("-1,1\n", None),
                        ("1,-1", "stagegate.classes[1] is -1, not above [0] = 1"),
                        ("-1 1", "expected integers separated by commas"),
                        ("-1,1,", "expected integers separated by commas"),
                        ("-1,1,2", "names more than the output's 2 classes"),
                        ("0", "stagegate.classes holds 1 values for 2 classes")):
        mp = onnx.load(named)
        mp.metadata_props.add(key="stagegate.classes", value=value)
        cpath = os.path.join(tmp, "classes.onnx")
        onnx.save(mp, cpath)
        if want:
            refused(["eval", "--model", cpath, "--data", pm1_data], cpath, want,
                    f"stagegate.classes {value!r}")
            continue
        rc, out, err = run("eval", "--model", cpath, "--data", pm1_data, "--json",
                           "--predictions", pred)
        if check(rc == 0, f"stagegate.classes {value!r}: exit {rc}: {err.strip()}"):
            doc = json.loads(out)
            with h5py.File(pred) as f:
                label = f["label"][()]
                got = f["proba"][()].astype(np.float64)
            ypm = np.where(y == 1, 1, -1)
            check(doc["model"].get("classes") == [-1, 1] and set(np.unique(label)) <= {-1, 1}
                  and np.array_equal(label, np.where(got[:, 1] > 0.5, 1, -1))
                  and abs(doc["metrics"]["log_loss"] - log_loss(ypm, got, labels=[-1, 1])) <= 1e-9,
                  f"stagegate.classes {value!r}: model.classes {doc['model'].get('classes')}")
    mp = onnx.load(path)
    mp.metadata_props.add(key="stagegate.classes", value="-1,1")
    cpath = os.path.join(tmp, "classes_reg.onnx")
    onnx.save(mp, cpath)
    refused(["eval", "--model", cpath, "--data", reg_data, "--output-name", "value", "--output",
             "value"], cpath, "stagegate.classes is given for a regression model",
            "stagegate.classes on a regressor")
    # export_torch.py --classes writes it.
    simple = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    whole = os.path.join(tmp, "simple.pt")
    torch.save(simple, whole)
    spath = os.path.join(tmp, "simple.onnx")
    src = os.environ["STAGEGATE_SOURCE_DIR"]
    subprocess.run(["/usr/bin/python3", os.path.join(src, "scripts/export_torch.py"), whole, spath,
                    "--output", "logits", "--classes=-1,1"], check=True, capture_output=True)
    rc, out, err = run("eval", "--model", spath, "--data", pm1_data, "--json", "--predictions",
                       pred)
    if check(rc == 0, f"export_torch.py --classes: exit {rc}: {err.strip()}"):
        with torch.no_grad():
            ref = torch.softmax(simple(torch.from_numpy(X)), 1).numpy().astype(np.float64)
        with h5py.File(pred) as f:
            d = float(np.abs(f["proba"][()] - ref).max())
        check(json.loads(out)["model"].get("classes") == [-1, 1] and d <= 1e-5,
              f"export_torch.py --classes: model {json.loads(out)['model']}, max diff {d:.3g}")
    print("ok   metadata_props stagegate.classes, export_torch.py --classes")

    # Refusals.
    refused(["eval", "--model", path, "--data", data], path,
            "the graph has 3 outputs ('logits', 'value', 'embedding'); name the model's with "
            "--output-name", "several outputs, no name")
    refused(["eval", "--model", path, "--data", data, "--output-name", "probs"], path,
            "--output-name 'probs' is not a graph output (they are 'logits', 'value', "
            "'embedding')", "a name that is not an output")
    xgb_like = os.path.join(tmp, "m.h5")
    with h5py.File(xgb_like, "w") as f:
        f.attrs.update({"format": "stagegate-model", "format_version": 1, "link": "sigmoid",
                        "n_classes": 2, "n_features": 16, "task": "binary"})
        g = f.create_group("layers/0")
        g.attrs["activation"] = "identity"
        g["W"], g["b"] = np.ones((16, 1), np.float32), np.zeros(1, np.float32)
    refused(["eval", "--model", xgb_like, "--data", data, "--output-name", "logits"], xgb_like,
            "--output-name applies to ONNX models only", "--output-name on an HDF5 model")
    # An ONNX-ML classifier's label is no model output.
    ML = "ai.onnx.ml"
    lin = helper.make_node("LinearClassifier", ["x"], ["label", "probabilities"], name="lin",
                           domain=ML, coefficients=[0.1] * 32, intercepts=[0.0, 0.0],
                           classlabels_ints=[0, 1], post_transform="SOFTMAX")
    gml = helper.make_graph([lin], "ml", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 16])], [
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])])
    mml = helper.make_model(gml, opset_imports=[helper.make_opsetid("", 15),
                                                helper.make_opsetid(ML, 1)])
    mml.ir_version = 8
    ml_path = os.path.join(tmp, "ml.onnx")
    onnx.save(mml, ml_path)
    refused(["eval", "--model", ml_path, "--data", data, "--output-name", "label"], ml_path,
            "--output-name 'label' is a classifier's label", "the label output named")
    rc, out, err = run("eval", "--model", ml_path, "--data", data, "--output-name",
                       "probabilities", "--json")
    check(rc == 0, f"an ONNX-ML classifier's probabilities named: exit {rc}: {err.strip()}")
    # Without a name, a (label, probabilities) pair is taken only when the probabilities are
    # that classifier's: a label beside an unrelated head had been taken as the head, silently.
    def ml_graph(nodes, outputs, inits=()):
        gg = helper.make_graph(nodes, "ml", [helper.make_tensor_value_info(
            "x", TensorProto.FLOAT, ["N", 16])], outputs, list(inits))
        mm = helper.make_model(gg, opset_imports=[helper.make_opsetid("", 15),
                                                  helper.make_opsetid(ML, 1)])
        mm.ir_version = 8
        return mm
    W2 = numpy_helper.from_array(r.normal(size=(16, 2)).astype(np.float32), "W2")
    aux_vi = helper.make_tensor_value_info("aux", TensorProto.FLOAT, ["N", 2])
    label_vi = helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])
    unrelated = os.path.join(tmp, "label_aux.onnx")
    onnx.save(ml_graph([lin, helper.make_node("MatMul", ["x", "W2"], ["aux"], name="mm")],
                       [label_vi, aux_vi], [W2]), unrelated)
    refused(["eval", "--model", unrelated, "--data", data, "--output", "logits"], unrelated,
            "'label' (a classifier's label) and 'aux', which is not that classifier's "
            "probabilities: name the model's with --output-name", "a label beside another head")
    rc, out, err = run("eval", "--model", unrelated, "--data", data, "--output", "logits",
                       "--output-name", "aux", "--json")
    check(rc == 0 and json.loads(out)["model"].get("graph_output") == "aux",
          f"the other head named: exit {rc}: {err.strip()}")
    # A label read only by a head that is not taken does not refuse the model.
    cast = helper.make_node("Cast", ["label"], ["labelf"], to=TensorProto.FLOAT)
    uns = helper.make_node("Unsqueeze", ["labelf", "ax"], ["labelu"])
    ax = numpy_helper.from_array(np.array([1], np.int64), "ax")
    reads_label = os.path.join(tmp, "label_read_by_head.onnx")
    onnx.save(ml_graph([lin, cast, uns], [
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
        helper.make_tensor_value_info("labelu", TensorProto.FLOAT, ["N", 1])], [ax]), reads_label)
    rc, out, err = run("eval", "--model", reads_label, "--data", data, "--output-name",
                       "probabilities", "--json")
    check(rc == 0, f"a label read only by another head: exit {rc}: {err.strip()}")
    rc, out, err = run("eval", "--model", reads_label, "--data", reg_data, "--output-name",
                       "labelu", "--output", "value")
    check(rc == 2 and "its label output 'label' is read by node #1 (Cast)" in err,
          f"the head that reads the label taken: exit {rc}: {err.strip()}")
    # Two outputs and no name: the message says how to name one.
    two = os.path.join(tmp, "two.onnx")
    mp = onnx.load(path)
    del mp.graph.output[2]
    onnx.save(mp, two)
    refused(["eval", "--model", two, "--data", data], two,
            "the graph has 2 outputs, 'logits' and 'value'; name the model's with --output-name",
            "two outputs, no name")
    refused(["eval", "--model", path, "--data", data, "--output-name", "x" * 600], path,
            "--output-name names an output of 600 bytes (at most 511)", "a 600-byte name")
    # A graph of one output with a name: only what it needs is compiled (a dead Trilu node
    # does not refuse it), and the name is recorded.
    one = os.path.join(tmp, "one.onnx")
    mp = onnx.load(path)
    del mp.graph.output[1:]
    onnx.save(mp, one)
    rc, out, err = run("eval", "--model", one, "--data", data, "--output", "logits",
                       "--output-name", "logits", "--json")
    check(rc == 0 and json.loads(out)["model"].get("graph_output") == "logits" and
          "graph output 'logits' of 1" in json.loads(out)["model"]["description"],
          f"one output named: exit {rc}: {err.strip()}")
    print("ok   refusals")

    # gate and bench take it too; the signed report names the output.
    key = os.path.join(tmp, "k")
    subprocess.run([SG, "keygen", "--out", key], check=True, capture_output=True)
    policy = os.path.join(tmp, "p.json")
    with open(policy, "w") as f:
        json.dump({"metrics": {"accuracy": {"threshold": 0.1}}}, f)
    report = os.path.join(tmp, "r.json")
    rc, out, err = run("gate", "--model", path, "--baseline", path, "--data", data, "--policy",
                       policy, "--key", key + ".key.pem", "--cpus", "0", "--out", report,
                       "--output-name", "logits", "--output", "logits")
    if check(rc == 0, f"gate --output-name: exit {rc}: {err.strip()}"):
        import base64
        st = json.loads(base64.b64decode(json.load(open(report))["payload"]))
        ev = st["predicate"]["evaluation"]
        check(ev["model"].get("graph_output") == "logits" and
              ev["baseline_model"].get("graph_output") == "logits",
              f"the report's evaluation: {ev['model']}")
    rc, out, err = run("bench", "--model", path, "--data", data, "--scenario", "offline",
                       "--duration", "0.2", "--cpus", "0", "--output-name", "logits",
                       "--output", "logits", "--json")
    check(rc == 0, f"bench --output-name: exit {rc}: {err.strip()}")
    print("ok   gate and bench")
    if failures:
        print(f"{len(failures)} failed")
        sys.exit(1)
    subprocess.run(["rm", "-rf", tmp])
    print("multi-output ONNX: all cases passed")


if __name__ == "__main__":
    main()
