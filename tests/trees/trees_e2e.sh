#!/usr/bin/env bash
# End to end on tree ensembles: gate across kinds (an XGBoost candidate against an MLP
# baseline and the reverse: F1 regression and shadow agreement), bench in all three
# scenarios (with the batch-1 breakdown), and compare on tree-model runs and reports.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
MK="$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py"
SG="$STAGEGATE_BIN"

$PY "$MK" --out val.h5 --task binary --rows 3000 --features 16 --seed 1 \
    --fit mlp-relu --fit-rows 4000 --fit-seed 1 --model-out mlp.h5 >/dev/null
# Same teacher (seed): the tree learns the task the MLP learnt. The training rows include the
# validation rows; this test is about the gate across kinds, not about generalisation.
$PY "$MK" --out train.h5 --task binary --rows 8000 --features 16 --seed 1 >/dev/null
$PY - <<'PYEOF'
import h5py, numpy as np, xgboost as xgb
with h5py.File("train.h5") as f:
    X, y = f["X"][()], f["y"][()]
b = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "seed": 1},
              xgb.DMatrix(X, label=y), 60)
b.save_model("tree.json")
# A clearly worse tree model: stumps trained on labels pushed towards class 0.
rng = np.random.default_rng(3)
yw = np.where(rng.random(len(y)) < 0.6, 0, y)
w = xgb.train({"objective": "binary:logistic", "max_depth": 1, "eta": 0.1}, xgb.DMatrix(X, label=yw), 3)
w.save_model("worse_tree.json")
PYEOF
"$SG" keygen --out k >/dev/null
cat > policy.json <<'JSON'
{
  "metrics": {"accuracy": {"threshold": 0.7}, "f1": {"max_relative_regression": 0.10}},
  "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 50, "duration_s": 0.2},
  "memory":  {"max_rss_mb": 4096, "max_model_mb": 64},
  "shadow":  {"min_agreement": 0.80}
}
JSON
gate() { "$SG" gate --data val.h5 --policy policy.json --key k.key.pem --cpus 0 "$@"; }
check_report() { # report expected-result candidate-name
    $PY - "$@" <<'PYEOF'
import base64, json, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
p = st["predicate"]
assert p["result"] == sys.argv[2], (p["result"], p["failedTests"])
assert st["subject"][0]["name"] == sys.argv[3]
assert p["shadow"]["compared"] and p["shadow"]["rows"] == 3000, p["shadow"]
assert sum(map(sum, p["shadow"]["disagreement_matrix"])) == 3000
if sys.argv[2] == "PASSED":
    assert p["shadow"]["agreement"] >= 0.8 and p["metrics"]["f1"] >= 0.9 * p["baseline_metrics"]["f1"]
else:
    assert any(t.startswith("f1 ") for t in p["failedTests"]), p["failedTests"]
PYEOF
}

# 1. Tree candidate, MLP baseline; then MLP candidate, tree baseline.
rc=0; gate --model tree.json --baseline mlp.h5 --out t_vs_m.json > t_vs_m.txt || rc=$?
[ "$rc" = 0 ] || { cat t_vs_m.txt; fail "tree vs MLP baseline exited $rc"; }
check_report t_vs_m.json PASSED tree.json || fail "tree vs MLP report"
"$SG" verify t_vs_m.json --pubkey k.pub.pem --model tree.json >/dev/null || fail "verify tree report"
rc=0; gate --model mlp.h5 --baseline tree.json --out m_vs_t.json > m_vs_t.txt || rc=$?
[ "$rc" = 0 ] || { cat m_vs_t.txt; fail "MLP vs tree baseline exited $rc"; }
check_report m_vs_t.json PASSED mlp.h5 || fail "MLP vs tree report"

# 2. A much worse tree fails on F1 regression against the MLP in Production.
rc=0; gate --model worse_tree.json --baseline mlp.h5 --out w.json > w.txt || rc=$?
[ "$rc" = 1 ] || { cat w.txt; fail "worse tree exited $rc, wanted 1"; }
check_report w.json FAILED worse_tree.json || fail "worse tree report"

# 3. bench: the three scenarios on the tree model; the breakdown names the tree stages.
for sc in single-stream server offline; do
    extra=()
    [ "$sc" = server ] && extra=(--qps 2000)
    [ "$sc" = single-stream ] && extra=(--breakdown)
    "$SG" bench --model tree.json --data val.h5 --scenario "$sc" --duration 0.5 --min-queries 700 \
        --cpus 0 --json --warmup 50 "${extra[@]}" > "bench_$sc.json" || fail "bench $sc"
    $PY - "bench_$sc.json" "$sc" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["scenario"] == sys.argv[2], r["scenario"]
assert r["queries"] >= 700, r["queries"]
if sys.argv[2] == "single-stream":
    b = r["breakdown_ns"]
    assert list(b) == ["trees_60", "link"], b
    assert b["trees_60"] > 0
PYEOF
done
"$SG" bench --model tree.json --data val.h5 --scenario single-stream --duration 0.5 \
    --min-queries 700 --cpus 0 --json --warmup 50 > bench_again.json || fail "second bench"

# 4. compare: two bench runs of the tree model, and two gate reports of tree candidates.
rc=0; "$SG" compare bench_single-stream.json bench_again.json --json > cmp.json || rc=$?
[ "$rc" = 0 ] || fail "compare of tree bench runs exited $rc"
$PY -c 'import json,sys; d=json.load(open("cmp.json")); assert d, d' || fail "compare JSON"
rc=0; "$SG" compare t_vs_m.json w.json --pubkey k.pub.pem --json > cmp2.json || rc=$?
[ "$rc" = 0 ] || fail "compare of tree gate reports exited $rc"
$PY - cmp2.json <<'PYEOF'
import json, sys
d = json.dumps(json.load(open(sys.argv[1])))
assert "f1" in d, d[:500]
PYEOF
# 5. Regression across kinds: an XGBoost reg:squarederror candidate against an MLPRegressor
#    baseline (regression metrics, value shadow agreement), a worse tree failing on r2_score /
#    mean_squared_error, and compare on the two regression reports.
$PY "$MK" --out rval.h5 --task regression --rows 3000 --features 8 --seed 4 \
    --fit mlp-regressor --fit-rows 4000 --fit-seed 1 --model-out mlp_reg.h5 >/dev/null
$PY "$MK" --out rtrain.h5 --task regression --rows 8000 --features 8 --seed 4 >/dev/null
$PY - <<'PYEOF'
import h5py, xgboost as xgb
with h5py.File("rtrain.h5") as f:
    X, y = f["X"][()], f["y"][()]
xgb.train({"objective": "reg:squarederror", "max_depth": 5, "eta": 0.2, "seed": 1},
          xgb.DMatrix(X, label=y), 150).save_model("tree_reg.json")
xgb.train({"objective": "reg:squarederror", "max_depth": 1, "eta": 0.05},
          xgb.DMatrix(X, label=y), 5).save_model("worse_reg.json")
PYEOF
cat > rpolicy.json <<'JSON'
{
  "metrics": {"r2_score": {"threshold": 0.5},
              "mean_squared_error": {"max_relative_regression": 0.5}},
  "shadow":  {"min_agreement": 0.5, "tolerance": {"abs": 0.5, "rel": 0.2}}
}
JSON
rgate() { "$SG" gate --data rval.h5 --policy rpolicy.json --key k.key.pem --cpus 0 "$@"; }
rc=0; rgate --model tree_reg.json --baseline mlp_reg.h5 --out r_pass.json > r_pass.txt || rc=$?
[ "$rc" = 0 ] || { cat r_pass.txt; fail "regression tree vs MLPRegressor exited $rc"; }
rc=0; rgate --model mlp_reg.h5 --baseline tree_reg.json --out r_rev.json > r_rev.txt || rc=$?
[ "$rc" = 0 ] || { cat r_rev.txt; fail "MLPRegressor vs regression tree exited $rc"; }
rc=0; rgate --model worse_reg.json --baseline mlp_reg.h5 --out r_fail.json > r_fail.txt || rc=$?
[ "$rc" = 1 ] || { cat r_fail.txt; fail "worse regression tree exited $rc, wanted 1"; }
$PY - r_pass.json r_fail.json <<'PYEOF'
import base64, json, sys
def pred(path):
    return json.loads(base64.b64decode(json.load(open(path))["payload"]))["predicate"]
ok, bad = pred(sys.argv[1]), pred(sys.argv[2])
assert ok["result"] == "PASSED", ok["failedTests"]
for m in ("mean_absolute_error", "mean_squared_error", "root_mean_squared_error", "r2_score", "max_error"):
    assert m in ok["metrics"] and m in ok["baseline_metrics"], (m, ok["metrics"])
assert ok["shadow"]["kind"] == "values" and ok["shadow"]["rows"] == 3000, ok["shadow"]
assert bad["result"] == "FAILED"
assert any(t.startswith("r2_score") for t in bad["failedTests"]), bad["failedTests"]
assert any(t.startswith("mean_squared_error") for t in bad["failedTests"]), bad["failedTests"]
PYEOF
# The shadow text shows the tolerance applied, to the digit (%g had shown 0.2499999 as 0.25).
sed 's/"abs": 0.5/"abs": 0.2499999/' rpolicy.json > rpolicy_t.json
rc=0; "$SG" gate --data rval.h5 --policy rpolicy_t.json --key k.key.pem --cpus 0 --model tree_reg.json \
    --baseline mlp_reg.h5 --out r_tol.json > r_tol.txt || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 1 ] || { cat r_tol.txt; fail "gate with abs 0.2499999 exited $rc"; }
grep -q "rows within 0.2499999 + 0.2 x |baseline|" r_tol.txt || { cat r_tol.txt; fail "the tolerance is not shown as applied"; }
# A tolerance on a classifier's shadow check (which compares labels) is refused, not ignored.
sed 's/"min_agreement": 0.80}/"min_agreement": 0.80, "tolerance": {"abs": 1}}/' policy.json > policy_tol.json
rc=0; "$SG" gate --data val.h5 --policy policy_tol.json --key k.key.pem --cpus 0 --model tree.json \
    --baseline mlp.h5 --out c_tol.json > c_tol.txt 2> c_tol.err || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l < c_tol.err)" = 1 ] &&
    grep -q "policy_tol.json: shadow.tolerance applies to regression models; tree.json is a binary model" c_tol.err ||
    { cat c_tol.txt c_tol.err; fail "a shadow tolerance on a classifier: exit $rc"; }
[ ! -e c_tol.json ] || fail "a report was written for a refused policy"
# 6. One problem, one metric set: an XGBoost multi:softprob of 2 classes and the
#    binary:logistic model gate against each other (they had been refused as a multiclass and
#    a binary model), on the binary metrics and the averaged F1s alike; every such metric of
#    both equals scikit-learn's on XGBoost's own predictions.
$PY - <<'PYEOF'
import h5py, json, numpy as np, xgboost as xgb
from sklearn import metrics as skm
with h5py.File("train.h5") as f:
    X, y = f["X"][()], f["y"][()]
b = xgb.train({"objective": "multi:softprob", "num_class": 2, "max_depth": 3, "eta": 0.3,
               "seed": 2}, xgb.DMatrix(X, label=y), 40)
b.save_model("tree2.json")
with h5py.File("val.h5") as f:
    Xv, yv = f["X"][()], f["y"][()]
want = {}
for name, p in (("tree2", b.predict(xgb.DMatrix(Xv))),
                ("tree", None)):
    if p is None:
        p1 = xgb.Booster(model_file="tree.json").predict(xgb.DMatrix(Xv))
        p = np.stack([1 - p1, p1], axis=1)
    pred = (p[:, 1] > p[:, 0]).astype(int) if name == "tree2" else (p[:, 1] > 0.5).astype(int)
    want[name] = {"f1": skm.f1_score(yv, pred), "precision": skm.precision_score(yv, pred),
                  "roc_auc": skm.roc_auc_score(yv, p[:, 1]),
                  "f1_macro": skm.f1_score(yv, pred, average="macro"),
                  "f1_weighted": skm.f1_score(yv, pred, average="weighted"),
                  "accuracy": skm.accuracy_score(yv, pred)}
json.dump(want, open("want2.json", "w"))
PYEOF
cat > policy2.json <<'JSON'
{
  "metrics": {"accuracy": {"threshold": 0.7}, "f1": {"max_relative_regression": 0.10},
              "f1_macro": {"max_relative_regression": 0.10}, "roc_auc": {"threshold": 0.6}},
  "memory":  {"max_rss_mb": 4096, "max_model_mb": 64},
  "shadow":  {"min_agreement": 0.80}
}
JSON
for pair in "tree2 tree" "tree tree2"; do
    set -- $pair
    rc=0; "$SG" gate --data val.h5 --policy policy2.json --key k.key.pem --cpus 0 --model "$1.json" \
        --baseline "$2.json" --out "two_$1.json" > "two_$1.txt" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "two_$1.txt"; fail "$1 against the $2 baseline exited $rc"; }
    $PY - "two_$1.json" "$1" "$2" <<'PYEOF' || fail "$1 against $2: metrics"
import base64, json, sys
p = json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))["predicate"]
want = json.load(open("want2.json"))
assert p["result"] == "PASSED", p["failedTests"]
for side, name in (("metrics", sys.argv[2]), ("baseline_metrics", sys.argv[3])):
    for k, v in want[name].items():
        assert abs(p[side][k] - v) <= 1e-6, (side, k, p[side][k], v)
PYEOF
done
rc=0; "$SG" compare r_pass.json r_fail.json --pubkey k.pub.pem --json > rcmp.json || rc=$?
[ "$rc" = 0 ] || fail "compare of regression tree reports exited $rc"
$PY - rcmp.json <<'PYEOF'
import json, sys
d = json.dumps(json.load(open(sys.argv[1])))
assert "r2_score" in d and "mean_squared_error" in d, d[:800]
PYEOF
echo ok
