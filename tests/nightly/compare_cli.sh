#!/usr/bin/env bash
# compare and the run-history commands on real signed reports: verification with and
# without --pubkey, fingerprint refusal without --force, bench JSON input, the human
# table, and the errors of compare / registry record / registry runs / trend (one line on
# stderr, exit 2, or 1 for a report that does not verify; no output file left behind).
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
SG=$STAGEGATE_BIN
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect CODE CMD...: exit code check; stdout in out, stderr in err
    local want=$1 got=0; shift
    "$@" >out 2>err || got=$?
    [ "$got" = "$want" ] || { cat out err >&2; fail "exit $got, wanted $want: $*"; }
}
err_has() { grep -qF -- "$1" err || { cat err >&2; fail "stderr lacks: $1"; }; }
one_line() { [ "$(wc -l < err)" = 1 ] || { cat err >&2; fail "stderr is not one line"; }; }

$PY "$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py" --out val.h5 --task binary --rows 1000 --features 8 --seed 2 \
    --fit logreg --fit-rows 1000 --fit-seed 2 --model-out m.h5 >/dev/null
for k in signer other; do "$SG" keygen --out $k >/dev/null; done
cat > policy.json <<'JSON'
{"metrics": {"accuracy": {"threshold": 0.5}},
 "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 700}}
JSON
for r in r1 r2; do # two runs of the same model on this machine
    "$SG" gate --model m.h5 --data val.h5 --policy policy.json --key signer.key.pem --out $r.json --cpus 0 >/dev/null
done

# Verified with the right key; refused (exit 1) with another; unverified is said so.
expect 0 "$SG" compare r1.json r2.json --pubkey signer.pub.pem
grep -q "signature verified" out || fail "verified compare does not say so"
grep -q "^machine: same fingerprint [0-9a-f]" out || { cat out; fail "machine line"; }
grep -q "^  p99.9 " out && grep -q "^  accuracy " out || { cat out; fail "table lacks rows"; }
# Two reports without a latency run recorded no machine: said so (it had read "same
# fingerprint  ()")
echo '{"metrics": {"accuracy": {"threshold": 0.5}}}' > nolat.json
for r in n1 n2; do
    "$SG" gate --model m.h5 --data val.h5 --policy nolat.json --key signer.key.pem --out $r.json >/dev/null
done
expect 0 "$SG" compare n1.json n2.json
grep -q "^machine: none recorded (neither run measured latency)$" out || { cat out; fail "no-latency machine line"; }
expect 1 "$SG" compare r1.json r2.json --pubkey other.pub.pem
err_has "r1.json does not verify with the given public key"; one_line
expect 0 "$SG" compare r1.json r2.json
grep -q "NOT verified" out || fail "unverified compare does not say so"
expect 0 "$SG" compare r1.json r2.json --json
$PY - out <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["old"]["kind"] == "report" and d["old"]["verified"] is False
assert d["fingerprint_match"] is True and d["differences"] == []
assert [r["percentile"] for r in d["latency"]] == ["p50", "p90", "p99", "p99.9"]
for r in d["latency"]:
    assert r["verdict"] in ("improved", "regressed", "unchanged") and 0 <= r["p_value"] <= 1
    assert abs(r["ratio"] - r["new_ns"] / r["old_ns"]) < 1e-12
m = d["metrics"]
assert m[0]["name"] == "accuracy" and m[0]["delta"] == 0 and m[0]["verdict"] == "unchanged", m
PYEOF

# Another machine: the same report's latency section with a different CPU and kernel.
"$PY" - r2.json <<'PYEOF'
import base64, json, sys
env = json.load(open(sys.argv[1]))
lat = json.loads(base64.b64decode(env["payload"]))["predicate"]["latency"]
json.dump(lat, open("bench_here.json", "w"))
lat["machine"]["cpu_model"] = "Some Other CPU"
lat["machine"]["kernel"] = "Linux 9.9.9 x86_64"
json.dump(lat, open("bench_there.json", "w"))
PYEOF
expect 0 "$SG" compare r1.json bench_here.json
expect 2 "$SG" compare r1.json bench_there.json
err_has "different machines"; err_has "cpu_model"; err_has "kernel"; err_has "--force"; one_line
[ ! -s out ] || fail "refused compare printed a result"
expect 2 "$SG" compare bench_there.json r1.json --json --fail-on-regression
expect 0 "$SG" compare r1.json bench_there.json --force
grep -q "DIFFERENT fingerprints" out && grep -q "cpu_model" out || { cat out; fail "forced compare hides the difference"; }
expect 2 "$SG" compare r1.json bench_here.json --pubkey signer.pub.pem
err_has "bench JSON, not a signed report"
# Other settings measure other things: another batch or arrival rate is refused like
# another machine (a batch of 8 against 64 read as a 2x regression); another validation
# set is compared, and said (a nightly that refreshes its data wants the metrics compared).
"$PY" - <<'PYEOF'
import json
lat = json.load(open("bench_here.json"))
for name, key, value in (("b64", "batch", 64), ("q1", "target_qps", 123.0), ("q2", "target_qps", 456.0)):
    d = dict(lat); d[key] = value
    json.dump(d, open("bench_%s.json" % name, "w"))
d = dict(lat); d["dataset"] = {"path": "other.h5", "sha256": "ab" * 32}
json.dump(d, open("bench_otherdata.json", "w"))
PYEOF
expect 2 "$SG" compare bench_here.json bench_b64.json
err_has "different machines or settings (batch 1 vs 64)"; one_line
expect 2 "$SG" compare bench_q1.json bench_q2.json
err_has "target_qps 123.0 vs 456.0"; one_line
expect 0 "$SG" compare bench_b64.json bench_b64.json
expect 0 "$SG" compare r1.json bench_otherdata.json
grep -q "note: the runs evaluated different validation sets" out || { cat out; fail "another set is not said"; }
expect 0 "$SG" compare r1.json bench_otherdata.json --json
"$PY" -c 'import json; d = json.load(open("out")); assert d["dataset_differs"] and d["datasets"]["new"] == "ab" * 32, d.get("datasets")'
expect 0 "$SG" compare r1.json r2.json --json
"$PY" -c 'import json; d = json.load(open("out")); assert d["dataset_differs"] is False'

# Bad input: one line, exit 2.
echo '{"x": 1}' > junk.json
expect 2 "$SG" compare r1.json junk.json; err_has "junk.json is neither a signed report"; one_line
printf '{"latency_ns": ' > trunc.json
expect 2 "$SG" compare trunc.json r1.json; err_has "trunc.json:"; one_line
expect 2 "$SG" compare r1.json missing.json; err_has "missing.json"; one_line
expect 2 "$SG" compare r1.json; one_line
expect 2 "$SG" compare r1.json r2.json --alpha 2; one_line
# Fields of a bench document that would give a wrong answer (not a crash) if accepted.
"$PY" - r1.json <<'PYEOF'
import base64, copy, json, sys
env = json.load(open(sys.argv[1]))
lat = json.loads(base64.b64decode(env["payload"]))["predicate"]["latency"]
def bad(name, change):
    d = copy.deepcopy(lat); change(d); json.dump(d, open(name, "w"))
bad("neg_p99.json", lambda d: d["latency_ns"].__setitem__("p99", -3))
bad("huge_count.json", lambda d: d["histogram"].__setitem__("buckets", [[10, 2**62], [20, 2**62], [30, 2**62]]))
bad("machine_str.json", lambda d: d.__setitem__("machine", "x86"))
def many(d):  # 1,001 repetitions: the verdict read the first 1,000 and ignored the rest
    d["repetitions"] = [d["repetitions"][0]] * 1001
    d["repetition_count"] = 1001
bad("many_reps.json", many)
env["payload"] = base64.b64encode(b"[1, 2]").decode()
json.dump(env, open("array_payload.json", "w"))
PYEOF
expect 2 "$SG" compare r1.json neg_p99.json; err_has "neg_p99.json: latency_ns.p99"; one_line
expect 2 "$SG" compare huge_count.json r1.json; err_has "huge_count.json: histogram counts"; one_line
expect 2 "$SG" compare r1.json many_reps.json; err_has "many_reps.json: repetitions holds 1001 entries, more than the 1000"; one_line
expect 2 "$SG" compare r1.json machine_str.json --force; err_has 'machine_str.json: "machine" is not an object'; one_line
expect 2 "$SG" compare r1.json array_payload.json; err_has "array_payload.json: envelope payload is JSON but not an object"
echo '[1, 2]' > array.json  # valid JSON of another type: no error position (it was -1:-1)
expect 2 "$SG" compare r1.json array.json; err_has "array.json: not a JSON object (the document is an array)"; one_line
one_line

# Run history.
export STAGEGATE_REGISTRY=$T/registry.db
"$SG" registry create-model m --signer signer.pub.pem >/dev/null
expect 2 "$SG" registry record r1.json; err_has "no registered version has artifact sha256"; one_line
"$SG" registry create-version m m.h5 >/dev/null
expect 0 "$SG" registry record r1.json
grep -q "recorded run #1: .* m v1 None" out || { cat out; fail "record output"; }
expect 2 "$SG" registry record r1.json; err_has "already recorded"; one_line
# Verify before parse: a payload the signature does not cover is refused as unverified (exit 1)
# before anything in it is read, whatever it holds.
expect 1 "$SG" registry record array_payload.json; err_has "array_payload.json: report does not verify"; one_line
$PY - <<'PYEOF'
import base64, json
env = json.load(open("r1.json"))
p = bytearray(base64.b64decode(env["payload"]))
i = p.index(b'"sha256"') + 12  # a digit of the subject's digest
p[i] = ord("g") if p[i] != ord("g") else ord("h")
env["payload"] = base64.b64encode(bytes(p)).decode()
json.dump(env, open("flipped.json", "w"))
PYEOF
expect 1 "$SG" registry record flipped.json; err_has "flipped.json: report does not verify"; one_line
grep -q "no registered version\|sha256:" err && fail "record quoted the unverified payload: $(cat err)"
expect 1 "$SG" registry record bench_here.json; err_has "bench_here.json: report does not verify"
err_has "envelope: unexpected field"; one_line
expect 1 "$SG" registry record r2.json --pubkey other.pub.pem; err_has "does not verify"; one_line
# A report signed by a key the model does not trust is refused without --pubkey.
"$SG" gate --model m.h5 --data val.h5 --policy policy.json --key other.key.pem --out r3.json --cpus 0 >/dev/null
expect 1 "$SG" registry record r3.json; err_has "r3.json: report does not verify against any trusted signer key"
# Signed by the trusted key, but the statement is not a report: said so, not "does not verify".
$PY - <<'PYEOF'
import base64, json
env = json.load(open("r1.json"))
st = json.loads(base64.b64decode(env["payload"]))
st["predicateType"] = "https://example.com/not-a-test-result"
open("bad_stmt.json", "w").write(json.dumps(st))
t = env["payloadType"].encode(); b = open("bad_stmt.json", "rb").read()
open("bad_pae.bin", "wb").write(b"DSSEv1 %d %s %d %s" % (len(t), t, len(b), b))
PYEOF
openssl dgst -sha256 -sign signer.key.pem -out bad_sig.bin bad_pae.bin
$PY - <<'PYEOF'
import base64, json
env = json.load(open("r1.json"))
env["payload"] = base64.b64encode(open("bad_stmt.json", "rb").read()).decode()
env["signatures"][0]["sig"] = base64.b64encode(open("bad_sig.bin", "rb").read()).decode()
json.dump(env, open("bad_stmt_env.json", "w"))
PYEOF
openssl dgst -sha256 -verify signer.pub.pem -signature bad_sig.bin bad_pae.bin >/dev/null ||
    fail "openssl does not verify the re-signed statement"
expect 1 "$SG" verify bad_stmt_env.json --pubkey signer.pub.pem; err_has "predicateType"
expect 1 "$SG" registry record bad_stmt_env.json
err_has "report's signature verifies (trusted signer key "; err_has "not a stagegate report: statement: predicateType"; one_line
expect 0 "$SG" registry record r3.json --pubkey other.pub.pem --json
$PY -c 'import json,sys; r=json.load(open("out")); assert r["id"]==2 and r["version"]==1 and r["figures"]["gated"]==["accuracy"], r'
expect 0 "$SG" registry runs m
[ "$(wc -l < out)" = 2 ] || { cat out; fail "runs should list 2"; }
# Run 2 was signed by a key that is not one of m's signers: the listing says so, the JSON
# has signer_trusted false (run 1, by m's signer, true), and the trend page rings it.
grep -q "^#2 .*(signed by key $(openssl pkey -pubin -in other.pub.pem -outform DER | sha256sum | cut -c1-12), not a signer of the model)" out ||
    fail "runs does not mark the run by another key: $(cat out)"
grep "^#1 " out | grep "not a signer" >/dev/null && fail "run 1 marked as another key's: $(cat out)"
expect 0 "$SG" registry runs m --json
[ "$(jq -c '[.runs[] | [.id, .signer_trusted]]' out)" = '[[1,true],[2,false]]' ] ||
    fail "signer_trusted: $(jq -c '[.runs[] | [.id, .signer_trusted, .signer_key_id]]' out)"
expect 2 "$SG" registry runs nosuch; one_line
expect 2 "$SG" registry runs m --limit 0; one_line

# Trend: written atomically; an unwritable destination leaves nothing.
expect 0 "$SG" trend m --html trend.html
[ "$(grep -c 'class="chart" data-figure=' trend.html)" = 3 ] || fail "trend page should hold 3 charts"
# run 2 ringed on each chart that draws it, run 1 nowhere; the page counts it
[ "$(grep -c '<circle class="foreign" data-run="2"' trend.html)" -ge 1 ] || fail "trend: run 2 not ringed"
grep -q '<circle class="foreign" data-run="1"' trend.html && fail "trend: run 1 ringed"
grep -q "<b>1 run signed by keys that are not the model's signers</b>" trend.html ||
    fail "trend: the page does not count the run by another key"
expect 2 "$SG" trend m --html nodir/trend.html; one_line
[ ! -e nodir ] || fail "trend created a directory"
expect 2 "$SG" trend nosuch --html t2.html; one_line
[ ! -e t2.html ] || fail "failed trend left a file"
[ -z "$(ls -a | grep '\.tmp')" ] || fail "temp file left behind"

# A gated metric NEW could not compute: tonight's set holds one class, so roc_auc is null and
# its optional rule is skipped (the gate passes). compare had left the metric out and said
# nothing regressed; it is now a regressed row.
$PY - <<'PYEOF'
import h5py
with h5py.File("val.h5") as s, h5py.File("one.h5", "w") as f:
    X, y = s["X"][:], s["y"][:]
    f["X"], f["y"] = X[y == 1], y[y == 1]
    for k, v in s.attrs.items():
        f.attrs[k] = v
PYEOF
cat > auc.json <<'JSON'
{"metrics": {"accuracy": {"threshold": 0.3}, "roc_auc": {"max_relative_regression": 0.05, "optional": true}},
 "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 700}}
JSON
"$SG" gate --model m.h5 --data val.h5 --policy auc.json --key signer.key.pem --out auc_a.json --cpus 0 >/dev/null
"$SG" gate --model m.h5 --data one.h5 --policy auc.json --key signer.key.pem --out auc_b.json --cpus 0 >/dev/null ||
    fail "the one-class gate should pass (its roc_auc rule is optional)"
expect 1 "$SG" compare auc_a.json auc_b.json --pubkey signer.pub.pem --fail-on-regression
grep -Eq "^  roc_auc +[0-9.]+ -> \(none\) +gated, NEW could not compute it  REGRESSED" out || { cat out; fail "vanished roc_auc"; }
expect 0 "$SG" compare auc_a.json auc_b.json --pubkey signer.pub.pem --json
jq -e '[.metrics[] | select(.name == "roc_auc")] | length == 1 and .[0].verdict == "regressed" and
       .[0].not_computed and .[0].new == null' out >/dev/null || { cat out; fail "roc_auc row in JSON"; }
echo "compare CLI ok"
