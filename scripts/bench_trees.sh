#!/bin/bash
# Benchmark of tree-ensemble inference: stagegate against XGBoost and scikit-learn,
# all in one run on the same data and thread count (read the figures as ratios:
# shared machines are noisy). A benchmark, not a test: it asserts nothing.
#
#   ./scripts/bench_trees.sh [ROWS]      default 1,000,000 rows x 64 features
#
# STAGEGATE_BUILD_DIR picks the build folder (default build/release); BENCH_DIR the
# folder for cached data and raw results (default build/bench).
#
# Case: binary:logistic, 300 trees of depth 6 (XGBoost, hist), float32 set.
#   1. batch: stagegate eval's predict time vs xgboost inplace_predict (nthread = the
#      worker count) vs scikit-learn HistGradientBoostingClassifier.predict_proba
#      (300 iterations, max_depth 6, OpenMP threads = the worker count); median of 3 each;
#   2. batch 1: stagegate bench single-stream p50/p99 (one pinned core) vs a loop over
#      the XGBoost C API (XGBoosterPredictFromDense on one row, nthread 1) vs Python
#      inplace_predict on one row;
#   3. node visits per second (levels walked + leaf reads) and per core cycle;
#   4. the same model exported to ONNX-ML (TreeEnsembleClassifier, as onnxmltools writes it):
#      stagegate eval's predict time and batch-1 p50 against the native XGBoost load;
#   5. eval end to end (median of 3) against the trees' limit: the node visits at the batch
#      kernel's one-core rate (best of 3 offline runs on core 0) times the workers, and
#      against that limit plus the dataset digest (SHA-256 of the file at one core's rate,
#      over the workers), which eval cannot skip.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
. scripts/bench_setup.sh
cc -O2 -o "$B/xgb_c_latency" scripts/xgb_c_latency.c -lxgboost

if [ ! -f "$B/trees_$ROWS.h5" ] || [ ! -f "$B/trees300.json" ] || [ ! -f "$B/hgb300.joblib" ]; then
    echo "== making a $ROWS x 64 set, an XGBoost model and a HistGradientBoosting model (cached in $B)" >&2
    /usr/bin/python3 - "$B" "$ROWS" <<'PY'
import sys, h5py, joblib, numpy as np, xgboost as xgb
from sklearn.ensemble import HistGradientBoostingClassifier
B, ROWS = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(11)
w = rng.normal(size=64)
def rows(n):
    X = rng.normal(size=(n, 64)).astype(np.float32)
    z = X @ w / 8 + np.sin(X[:, 0] * 2) + X[:, 1] * X[:, 2]
    return X, (z + rng.normal(scale=0.5, size=n) > 0).astype(np.int32)
X, y = rows(ROWS)
with h5py.File(f"{B}/trees_{ROWS}.h5", "w") as f:
    f.create_dataset("X", data=X, chunks=(min(ROWS, 16384), 64))
    f["y"] = y
Xt, yt = rows(100000)
b = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "tree_method": "hist",
               "seed": 1}, xgb.DMatrix(Xt, label=yt), 300)
b.save_model(f"{B}/trees300.json")
h = HistGradientBoostingClassifier(max_iter=300, max_depth=6, max_leaf_nodes=64,
                                   early_stopping=False, random_state=1).fit(Xt, yt)
joblib.dump(h, f"{B}/hgb300.joblib")
X[:2000].tofile(f"{B}/trees_rows.f32")
PY
fi

if [ ! -f "$B/trees300.onnx" ]; then
    echo "== the same XGBoost model as ONNX-ML (TreeEnsembleClassifier, as onnxmltools lays it out)" >&2
    /usr/bin/python3 - "$B" <<'PY'
import json, sys
import numpy as np, onnx, xgboost as xgb
from onnx import TensorProto, helper
B = sys.argv[1]
b = xgb.Booster(model_file=f"{B}/trees300.json")
keys = ("nodes_treeids nodes_nodeids nodes_featureids nodes_values nodes_modes nodes_truenodeids "
        "nodes_falsenodeids nodes_missing_value_tracks_true class_treeids class_nodeids class_ids "
        "class_weights").split()
a = {k: [] for k in keys}
def walk(t, n):
    split = "leaf" not in n
    for k, v in (("nodes_treeids", t), ("nodes_nodeids", n["nodeid"]),
                 ("nodes_featureids", int(n["split"][1:]) if split else 0),
                 ("nodes_values", n["split_condition"] if split else 0.0),
                 ("nodes_modes", "BRANCH_LT" if split else "LEAF"),
                 ("nodes_truenodeids", n["yes"] if split else 0),
                 ("nodes_falsenodeids", n["no"] if split else 0),
                 ("nodes_missing_value_tracks_true", int(split and n["missing"] == n["yes"]))):
        a[k].append(v)
    if not split:
        for k, v in (("class_treeids", t), ("class_nodeids", n["nodeid"]), ("class_ids", 0),
                     ("class_weights", n["leaf"])):
            a[k].append(v)
    for ch in n.get("children", []):
        walk(t, ch)
for t, d in enumerate(b.get_dump(dump_format="json")):
    walk(t, json.loads(d))
bs = float(json.loads(b.save_config())["learner"]["learner_model_param"]["base_score"])
node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "proba"], domain="ai.onnx.ml",
                        name="xgb300", classlabels_int64s=[0, 1], post_transform="LOGISTIC",
                        base_values=[float(np.log(bs / (1 - bs)))], **a)
g = helper.make_graph([node], "xgb300", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 64])],
                      [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                       helper.make_tensor_value_info("proba", TensorProto.FLOAT, [None, 2])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 1)])
onnx.checker.check_model(m)
onnx.save(m, f"{B}/trees300.onnx")
PY
fi

echo "== stagegate eval (3 runs, end to end timed)" >&2
cat "$B/trees_$ROWS.h5" >/dev/null # in the page cache: the runs measure compute, not the disk
for i in 1 2 3; do
    /usr/bin/time -f "%e" -o "$B/trees_wall_$i.txt" \
        "$SG" eval --model "$B/trees300.json" --data "$B/trees_$ROWS.h5" --json >"$B/trees_eval_$i.json"
done
echo "== stagegate eval and bench of the ONNX-ML export (3 runs; single-stream)" >&2
for i in 1 2 3; do
    "$SG" eval --model "$B/trees300.onnx" --data "$B/trees_$ROWS.h5" --json >"$B/trees_onnx_eval_$i.json"
done
"$SG" bench --model "$B/trees300.onnx" --data "$B/trees_$ROWS.h5" --scenario single-stream \
    --duration 3 --cpus 0 --json >"$B/trees_onnx_single.json"
echo "== the batch kernel's rate on one core (bench --scenario offline --cpus 0, best of 3)" >&2
for i in 1 2 3; do
    "$SG" bench --model "$B/trees300.json" --data "$B/trees_$ROWS.h5" --scenario offline \
        --batch 1024 --cpus 0 --json >"$B/trees_offline_1_$i.json"
done
echo "== the SHA-256 rate on one core (the dataset digest eval must compute)" >&2
/usr/bin/python3 - "$B" <<'PY'
import hashlib, json, sys, time
buf = bytes(256 << 20)
best = min((lambda t0: (hashlib.sha256(buf).digest(), time.perf_counter() - t0)[1])(time.perf_counter())
           for _ in range(3))
json.dump({"sha256_gbs_1t": len(buf) / best / 1e9}, open(f"{sys.argv[1]}/trees_sha.json", "w"))
PY
echo "== stagegate bench single-stream (one core)" >&2
"$SG" bench --model "$B/trees300.json" --data "$B/trees_$ROWS.h5" --scenario single-stream \
    --duration 3 --cpus 0 --json >"$B/trees_single.json"
echo "== XGBoost C API, batch 1" >&2
"$B/xgb_c_latency" "$B/trees300.json" "$B/trees_rows.f32" 64 20000 >"$B/trees_xgb_c.json"
echo "== xgboost and scikit-learn in Python" >&2
OMP_NUM_THREADS=$WORKERS /usr/bin/python3 - "$B" "$ROWS" "$WORKERS" <<'PY'
import json, statistics, sys, time
import h5py, joblib, numpy as np, xgboost as xgb
B, ROWS, W = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with h5py.File(f"{B}/trees_{ROWS}.h5") as f:
    X = f["X"][()]
b = xgb.Booster(model_file=f"{B}/trees300.json")
b.set_param({"nthread": W})
def median_time(fn, n=3):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)
res = {"xgb_inplace_s": median_time(lambda: b.inplace_predict(X))}
h = joblib.load(f"{B}/hgb300.joblib")
res["hgb_predict_proba_s"] = median_time(lambda: h.predict_proba(X))
b1 = xgb.Booster(model_file=f"{B}/trees300.json")
b1.set_param({"nthread": 1})
lat = []
for i in range(3000):
    row = X[i % 2000: i % 2000 + 1]
    t0 = time.perf_counter_ns(); b1.inplace_predict(row); lat.append(time.perf_counter_ns() - t0)
lat = sorted(lat[500:])
res["py_one_p50_ns"] = lat[(len(lat) * 50 + 99) // 100 - 1]
res["py_one_p99_ns"] = lat[(len(lat) * 99 + 99) // 100 - 1]
json.dump(res, open(f"{B}/trees_py.json", "w"))
PY

/usr/bin/python3 - "$B" "$ROWS" "$WORKERS" <<'PY'
import json, statistics, sys
B, ROWS, W = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ev = [json.load(open(f"{B}/trees_eval_{i}.json")) for i in (1, 2, 3)]
sg_s = statistics.median(e["timing"]["predict_seconds"] for e in ev)
visits = ev[0]["model"]["cost"]["node_visits_per_row"]
single = json.load(open(f"{B}/trees_single.json"))
xc = json.load(open(f"{B}/trees_xgb_c.json"))
py = json.load(open(f"{B}/trees_py.json"))
hz = single["clock"]["tsc_hz"] or 0
print(f"tree ensemble: 300 trees, depth 6, binary; {ROWS:,} x 64 rows; {W} workers / threads")
_m = single.get('machine', {}); _sig = _m.get('cpu_signature') or {}
print(f"machine: {_m.get('cpu_model', '')} ({_sig.get('vendor', '?')} family {_sig.get('family', '?')} "
      f"model {_sig.get('model', '?')}), {(_m.get('stagegate') or {}).get('kernels', '?')} kernels")
print()
print(f"{'batch predict (median of 3)':44s} {'seconds':>10s} {'ratio':>12s}")
print(f"{'stagegate eval (predict part)':44s} {sg_s:10.3f} {'1.00x':>12s}")
x = py["xgb_inplace_s"]; h = py["hgb_predict_proba_s"]
print(f"{'xgboost inplace_predict (nthread=%d)' % W:44s} {x:10.3f} {x / sg_s:11.2f}x slower")
print(f"{'sklearn HistGradientBoosting predict_proba':44s} {h:10.3f} {h / sg_s:11.2f}x slower")
print()
p50, p99 = single["latency_ns"]["p50"], single["latency_ns"]["p99"]
print(f"{'batch 1 (one core)':44s} {'p50 us':>10s} {'p99 us':>10s} {'p50 ratio':>12s}")
print(f"{'stagegate bench single-stream':44s} {p50/1e3:10.2f} {p99/1e3:10.2f} {'1.00x':>12s}")
print(f"{'XGBoost C API XGBoosterPredictFromDense':44s} {xc['p50_ns']/1e3:10.2f} {xc['p99_ns']/1e3:10.2f} {xc['p50_ns']/p50:11.2f}x slower")
print(f"{'Python inplace_predict, one row':44s} {py['py_one_p50_ns']/1e3:10.2f} {py['py_one_p99_ns']/1e3:10.2f} {py['py_one_p50_ns']/p50:11.2f}x slower")
print()
# The same model exported to ONNX-ML (TreeEnsembleClassifier) runs on the same tree kernels
# through the ONNX step plan: what that path costs against the native XGBoost load.
ox = statistics.median(json.load(open(f"{B}/trees_onnx_eval_{i}.json"))["timing"]["predict_seconds"]
                       for i in (1, 2, 3))
os1 = json.load(open(f"{B}/trees_onnx_single.json"))["latency_ns"]
print(f"{'the ONNX-ML export of the same model':44s} {'seconds':>10s} {'p50 us':>10s} {'ratio':>12s}")
print(f"{'  stagegate eval (predict part) / batch 1':44s} {ox:10.3f} {os1['p50']/1e3:10.2f} "
      f"{ox / sg_s:6.2f}x {os1['p50'] / p50:5.2f}x of native")
print()
vps = visits * ROWS / sg_s
print(f"node visits per row: {visits:.0f}; batch {vps/1e9:.2f} G visits/s on {W} workers "
      f"({vps/W/1e9:.2f} G/s per core" + (f", {vps/W/hz:.2f} per cycle at TSC {hz/1e9:.2f} GHz)" if hz else ")"))
bv = visits / (p50 * 1e-9)
print(f"batch 1: {bv/1e9:.2f} G visits/s on one core" + (f" ({bv/hz:.2f} per cycle)" if hz else ""))
# The end-to-end limit of a tree ensemble: its node visits at the batch kernel's measured
# rate on one core, times the workers.
# The machine's rate is the best of the three runs (as the sgemm peak is a best figure).
rate1 = max(json.load(open(f"{B}/trees_offline_1_{i}.json"))["throughput"] for i in (1, 2, 3)) * visits
limit = visits * ROWS / (rate1 * W)
walls = sorted(float(open(f"{B}/trees_wall_{i}.txt").read()) for i in (1, 2, 3))
wall = walls[1]
print(f"end to end (median of 3): {wall:.3f} s; limit {limit:.3f} s ({visits * ROWS / 1e9:.1f} G "
      f"visits at {rate1 / 1e9:.2f} G/s on one core, best of 3, x {W}); end to end / limit = {wall / limit:.2f}")
# The digest is work eval cannot skip (the report binds the file's SHA-256): at the measured
# one-core SHA-256 rate it takes file_bytes / rate of CPU on the same cores.
import os
sha = json.load(open(f"{B}/trees_sha.json"))["sha256_gbs_1t"]
fbytes = os.path.getsize(f"{B}/trees_{ROWS}.h5")
dig = fbytes / (sha * 1e9)
lim2 = limit + dig / W
print(f"with the dataset digest: {fbytes / 1e6:.0f} MB at {sha:.2f} GB/s SHA-256 = {dig:.3f} CPU-s over "
      f"{W} cores; visits + digest limit {lim2:.3f} s, end to end / it = {wall / lim2:.2f}")
print(f"targets: end to end <= 1.15x the limit: {'met' if wall <= 1.15 * limit else 'NOT met'}")
print(f"targets: batch >= 3x faster than xgboost: {'met' if x / sg_s >= 3 else 'NOT met'} "
      f"({x / sg_s:.2f}x); batch-1 p50 <= 5 us: {'met' if p50 <= 5000 else 'NOT met'} ({p50/1e3:.2f} us)")
PY
