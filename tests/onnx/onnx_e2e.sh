#!/usr/bin/env bash
# End to end on ONNX models: a PyTorch MLP exported with scripts/export_torch.py is gated
# against a native MLP and an XGBoost tree ensemble that are in Production in the registry
# (pass, and a worse ONNX model failing on F1), benched in all three scenarios (the batch-1
# breakdown names the ONNX nodes), and compared (bench runs and gate reports). The ONNX model
# itself is registered, promoted by its own gate report, and resolved through models:/.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
MK="$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py"
SG="$STAGEGATE_BIN"
export STAGEGATE_REGISTRY=$T/registry.db

$PY "$MK" --out val.h5 --task binary --rows 3000 --features 16 --seed 1 \
    --fit mlp-relu --fit-rows 4000 --fit-seed 1 --model-out mlp.h5 >/dev/null
$PY "$MK" --out train.h5 --task binary --rows 8000 --features 16 --seed 1 >/dev/null
$PY - "$STAGEGATE_SOURCE_DIR" <<'PYEOF'
import sys
import h5py, numpy as np, torch, torch.nn as nn, xgboost as xgb
with h5py.File("train.h5") as f:
    X, y = f["X"][()], f["y"][()]
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2),
                    nn.Softmax(dim=1))
opt = torch.optim.Adam(net.parameters(), lr=0.01)
Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
for _ in range(300):
    opt.zero_grad()
    loss = nn.functional.nll_loss(torch.log(net(Xt) + 1e-9), yt)
    loss.backward()
    opt.step()
torch.save(net, "cand.pt")
torch.save(nn.Sequential(*list(net)[:-1]), "logits.pt")  # the same net, ending in its logits
# ... and ending in probabilities that pass through a Clip, so that only its metadata
# (export_torch.py --output proba) says what they are.
torch.save(nn.Sequential(*list(net), nn.Hardtanh(0.0, 1.0)), "clipped.pt")
# A clearly worse model: the same shape, untrained.
torch.manual_seed(5)
worse = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 2), nn.Softmax(dim=1))
torch.save(worse, "worse.pt")
b = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "seed": 1},
              xgb.DMatrix(X, label=y), 60)
b.save_model("tree.json")
# export_torch.py's own entry point, in this process (torch is imported once)
sys.path.insert(0, sys.argv[1] + "/scripts")
import export_torch
for m in ("cand", "worse", "logits"):
    export_torch.main([m + ".pt", m + ".onnx"])
export_torch.main(["clipped.pt", "clipped.onnx", "--output", "proba"])
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
echo '{"metrics": {"accuracy": {"threshold": 0.7}}}' > promote.json
gate() { "$SG" gate --data val.h5 --policy policy.json --key k.key.pem --cpus 0 "$@"; }
check_report() { # report expected-result candidate-name
    $PY - "$@" <<'PYEOF'
import base64, json, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
p = st["predicate"]
assert p["result"] == sys.argv[2], (p["result"], p["failedTests"])
assert st["subject"][0]["name"] == sys.argv[3], st["subject"]
assert p["shadow"]["compared"] and p["shadow"]["rows"] == 3000, p["shadow"]
if sys.argv[2] == "PASSED":
    assert p["shadow"]["agreement"] >= 0.8 and p["metrics"]["f1"] >= 0.9 * p["baseline_metrics"]["f1"]
else:
    assert any(t.startswith("f1 ") for t in p["failedTests"]), p["failedTests"]
PYEOF
}

# 1. The native MLP and the tree ensemble go to Production, each promoted by its own report.
R="$SG registry"
for m in native:mlp.h5 trees:tree.json; do
    name=${m%%:*} file=${m#*:}
    $R create-model "$name" --signer k.pub.pem --promoter Production=k.pub.pem >/dev/null
    $R create-version "$name" "$file" >/dev/null
    "$SG" gate --data val.h5 --policy promote.json --key k.key.pem --cpus 0 \
        --model "models:/$name/1" --out "promote_$name.json" >/dev/null || fail "gate $name"
    $R transition "$name" 1 Staging --report "promote_$name.json" >/dev/null || fail "staging $name"
    $R transition "$name" 1 Production --as k.key.pem >/dev/null || fail "production $name"
done

# 2. The ONNX candidate against each, and a worse ONNX model failing on F1.
rc=0; gate --model cand.onnx --baseline models:/native/Production --out c_vs_native.json \
    > c_vs_native.txt || rc=$?
[ "$rc" = 0 ] || { cat c_vs_native.txt; fail "ONNX vs native in Production exited $rc"; }
check_report c_vs_native.json PASSED cand.onnx || fail "ONNX vs native report"
"$SG" verify c_vs_native.json --pubkey k.pub.pem --model cand.onnx >/dev/null || fail "verify"
rc=0; gate --model cand.onnx --baseline models:/trees/Production --out c_vs_trees.json \
    > c_vs_trees.txt || rc=$?
[ "$rc" = 0 ] || { cat c_vs_trees.txt; fail "ONNX vs trees in Production exited $rc"; }
check_report c_vs_trees.json PASSED cand.onnx || fail "ONNX vs trees report"
rc=0; gate --model worse.onnx --baseline models:/native/Production --out w.json > w.txt || rc=$?
[ "$rc" = 1 ] || { cat w.txt; fail "worse ONNX exited $rc, wanted 1"; }
check_report w.json FAILED worse.onnx || fail "worse ONNX report"

# 2b. --output says what an ONNX output means, for whichever model is ONNX: an ONNX model
# ending in logits gated against the native one, in either role (it was refused as applying
# to the native model too); with no ONNX model at all, refused.
# (The policy without its latency section: these runs are about what the outputs mean.)
$PY -c 'import json; p = json.load(open("policy.json")); del p["latency"]; json.dump(p, open("nolat.json", "w"))'
g2() { "$SG" gate --data val.h5 --policy nolat.json --key k.key.pem --cpus 0 "$@"; }
rc=0; g2 --model logits.onnx --output logits --baseline models:/native/Production \
    --out l_vs_native.json > l.txt || rc=$?
[ "$rc" = 0 ] || { cat l.txt; fail "ONNX logits vs native exited $rc"; }
check_report l_vs_native.json PASSED logits.onnx || fail "ONNX logits vs native report"
rc=0; g2 --model mlp.h5 --baseline logits.onnx --output logits --out n_vs_l.json > l.txt 2>&1 || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 1 ] || { cat l.txt; fail "native vs ONNX logits baseline exited $rc"; }
# A baseline whose metadata says what its output is keeps that meaning under --output (it
# had been overridden: its probabilities softmaxed again, its metrics misread); the signed
# report says how each was read. The two are one network, so their metrics agree.
rc=0; g2 --model logits.onnx --output logits --baseline clipped.onnx --out l_vs_c.json > l.txt 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat l.txt; fail "ONNX logits vs a baseline stating proba exited $rc"; }
"$SG" eval --model clipped.onnx --data val.h5 --json > clipped_eval.json || fail "eval clipped.onnx"
$PY - <<'PYEOF' || fail "the baseline stating proba was misread under --output logits"
import base64, json
st = json.loads(base64.b64decode(json.load(open("l_vs_c.json"))["payload"]))["predicate"]
alone = json.load(open("clipped_eval.json"))["metrics"]
for k in ("log_loss", "roc_auc", "accuracy"):
    assert st["baseline_metrics"][k] == alone[k], (k, st["baseline_metrics"][k], alone[k])
    assert abs(st["metrics"][k] - alone[k]) < 1e-6, (k, st["metrics"][k], alone[k])
ev = st["evaluation"]
assert "logits (--output)" in ev["model"]["description"], ev["model"]
assert "proba (metadata_props stagegate.output)" in ev["baseline_model"]["description"], ev
# the rule applied is recorded for both, as "output" (the baseline's had not been)
assert ev["model"]["output"] == "logits (--output)", ev["model"]
assert ev["baseline_model"]["output"] == "proba (metadata_props stagegate.output)", ev
PYEOF
# A graph that ends in Softmax is read so whatever --output says: the report says the rule
# applied ("logits" had been recorded for it, the flag's word).
rc=0; g2 --model cand.onnx --output logits --baseline logits.onnx --out s_vs_l.json > l.txt 2>&1 || rc=$?
[ "$rc" -le 1 ] || { cat l.txt; fail "cand.onnx against logits.onnx: exit $rc"; }
$PY - <<'PYEOF' || fail "the output rule in the report is not the one applied"
import base64, json
ev = json.loads(base64.b64decode(json.load(open("s_vs_l.json"))["payload"]))["predicate"]["evaluation"]
assert ev["model"]["output"] == "ends in Softmax", ev["model"]
assert ev["baseline_model"]["output"] == "logits (--output)", ev["baseline_model"]
PYEOF
rc=0; g2 --model mlp.h5 --baseline tree.json --output logits --out n_vs_t.json > l.txt 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "neither model is one" l.txt || { cat l.txt; fail "--output without an ONNX model: exit $rc"; }
[ ! -e n_vs_t.json ] || fail "a refused gate wrote its report"

# 3. The ONNX model registered, promoted by its report, and gated through the registry.
$R create-version native cand.onnx >/dev/null
gate --model models:/native/2 --baseline models:/native/Production --out promote_onnx.json \
    >/dev/null || fail "gate models:/native/2"
$R transition native 2 Staging --report promote_onnx.json >/dev/null || fail "ONNX to Staging"
[ "$($R resolve models:/native/Staging)" = "$T/cand.onnx" ] || fail "resolve ONNX version"

# 4. bench in the three scenarios; the batch-1 breakdown names the ONNX nodes.
for sc in single-stream server offline; do
    extra=()
    [ "$sc" = server ] && extra=(--qps 2000)
    [ "$sc" = single-stream ] && extra=(--breakdown)
    "$SG" bench --model cand.onnx --data val.h5 --scenario "$sc" --duration 0.5 \
        --min-queries 700 --cpus 0 --json --warmup 50 "${extra[@]}" > "bench_$sc.json" \
        || fail "bench $sc"
    $PY - "bench_$sc.json" "$sc" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["scenario"] == sys.argv[2], r["scenario"]
assert r["queries"] >= 700, r["queries"]
if sys.argv[2] == "single-stream":
    b = list(r["breakdown_ns"])
    assert b[0] == "input" and len(b) == 4, b
    assert all("Gemm" in s for s in b[1:]) and "Relu" in b[1], b
PYEOF
done
"$SG" bench --model cand.onnx --data val.h5 --scenario single-stream --duration 0.5 \
    --min-queries 700 --cpus 0 --json --warmup 50 > bench_again.json || fail "second bench"

# 5. compare: two bench runs of the ONNX model, and two gate reports of ONNX candidates.
rc=0; "$SG" compare bench_single-stream.json bench_again.json --json > cmp.json || rc=$?
[ "$rc" = 0 ] || fail "compare of ONNX bench runs exited $rc"
rc=0; "$SG" compare c_vs_native.json w.json --pubkey k.pub.pem --json > cmp2.json || rc=$?
[ "$rc" = 0 ] || fail "compare of ONNX gate reports exited $rc"
$PY - cmp2.json <<'PYEOF'
import json, sys
d = json.dumps(json.load(open(sys.argv[1])))
assert "f1" in d, d[:500]
PYEOF
echo ok
