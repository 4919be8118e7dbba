#!/usr/bin/env bash
# End to end: the lecture's staging gate on real models and a real validation set.
# A candidate within 5% of the baseline's F1 passes; a much worse one fails naming f1;
# two runs give identical signed payloads apart from measured latency, memory and time;
# bad policy / unsafe key are refused (exit 2) before any work and leave no report.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
MK="$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py"

$PY "$MK" --out val.h5 --task binary --rows 4000 --features 16 --seed 1 \
    --fit logreg --fit-rows 4000 --fit-seed 1 --model-out base.h5 >/dev/null
$PY "$MK" --task binary --features 16 --seed 1 --fit logreg --fit-rows 3000 --fit-seed 2 \
    --model-out cand.h5 >/dev/null
# Few, mostly mislabelled training rows: a clearly worse model.
$PY "$MK" --task binary --features 16 --seed 1 --fit logreg --fit-rows 30 --fit-seed 3 \
    --label-noise 0.6 --model-out worse.h5 >/dev/null
"$STAGEGATE_BIN" keygen --out k >/dev/null

cat > policy.json <<'JSON'
{
  "metrics": {
    "accuracy": {"threshold": 0.85},
    "f1":       {"max_relative_regression": 0.05}
  },
  "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 50,
              "repetitions": 3, "duration_s": 0.3},
  "memory":  {"max_rss_mb": 4096, "max_model_mb": 64},
  "shadow":  {"min_agreement": 0.90}
}
JSON

gate() { "$STAGEGATE_BIN" gate --data val.h5 --policy policy.json --key k.key.pem --cpus 0 "$@"; }

# 1. The passing candidate: exit 0, a report that verifies, renderings with one testcase per check.
rc=0; gate --model cand.h5 --baseline base.h5 --out pass.json --junit pass.xml --html pass.html \
    --markdown pass.md > pass.txt || rc=$?
[ "$rc" = 0 ] || { cat pass.txt; fail "passing candidate exited $rc"; }
grep -q "gate PASSED" pass.txt || fail "summary does not say PASSED"
"$STAGEGATE_BIN" verify pass.json --pubkey k.pub.pem --model cand.h5 >/dev/null || fail "verify rejected the report"
# Paths in the human output are shown as error lines show them: an escape sequence in a file
# name or --out is written as \xHH, never sent to the terminal.
esc_name="c$(printf '\033')[2J.h5"
ln -s cand.h5 "$esc_name"
"$STAGEGATE_BIN" eval --model "$esc_name" --data val.h5 --cpus 0 >esc.txt || fail "eval of $esc_name"
rc=0; gate --model "$esc_name" --out "r$(printf '\033')]0;T.json" >>esc.txt 2>&1 || rc=$?
[ "$rc" -le 1 ] || fail "gate of $esc_name: exit $rc"
grep -qF 'model    c\x1b[2J.h5 (' esc.txt || fail "eval's model path not shown escaped"
grep -qF 'signed report r\x1b]0;T.json' esc.txt || fail "gate's report path not shown escaped"
if grep -q "$(printf '\033')" esc.txt; then fail "an escape byte reached the terminal"; fi
$PY - pass.json pass.xml <<'PYEOF'
import base64, json, sys, xml.etree.ElementTree as ET
env = json.load(open(sys.argv[1]))
assert env["payloadType"] == "application/vnd.in-toto+json"
st = json.loads(base64.b64decode(env["payload"]))
p = st["predicate"]
assert st["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
assert p["result"] == "PASSED", p["failedTests"]
assert st["subject"][0]["name"] == "cand.h5"
roles = [c["annotations"]["role"] for c in p["configuration"]]
assert roles == ["dataset", "policy", "baseline", "stagegate"], roles
names = [c["name"] for c in p["checks"]]
assert names == ["accuracy.threshold", "f1.max_relative_regression", "latency.p99",
                 "memory.max_rss_mb", "memory.max_model_mb", "shadow.agreement"], names
assert len(p["passedTests"]) == 6 and not p["failedTests"]
# The check's numbers are the measured ones: f1 within 5% of the baseline's, agreement >= 0.9.
f1 = p["metrics"]["f1"]; bf1 = p["baseline_metrics"]["f1"]
assert f1 >= 0.95 * bf1 and p["metrics"]["accuracy"] >= 0.85
assert p["shadow"]["agreement"] >= 0.9 and sum(map(sum, p["shadow"]["disagreement_matrix"])) == 4000
assert p["latency"]["early_stopping"]["p99"] is not None and "machine" in p["latency"]
# The policy as applied names the query minimum the run was held to (none in the policy:
# bench's 1,024, more than p99's early-stopping 662) and its duration.
pl = p["policy"]["latency"]
assert pl["min_queries"] == 1024 and pl["duration_s"] == 0.3, pl
# What was evaluated, as evaluated: the model's task and kind, the rows, no sample weights; a
# time that is the run's own (no timestamp_source) and no cut-short run in the check's text.
ev = p["evaluation"]
assert ev["model"]["task"] == "binary" and ev["model"]["kind"] == "dense", ev
assert ev["rows"] == 4000 and ev["sample_weight"] is False, ev
assert "timestamp_source" not in p, p.get("timestamp_source")
assert not p["latency"]["cut_short"] and "cut short" not in p["checks"][2]["text"], p["checks"][2]
root = ET.parse(sys.argv[2]).getroot()
cases = root.findall(".//testcase")
assert len(cases) == len(p["checks"]), (len(cases), len(p["checks"]))
assert not root.findall(".//failure")
PYEOF
# The gate's own report verifies with the openssl command line alone (PAE rebuilt with printf).
$PY - pass.json <<'PYEOF'
import base64, json, sys
e = json.load(open(sys.argv[1]))
open("payload.bin", "wb").write(base64.b64decode(e["payload"], validate=True))
open("sig.bin", "wb").write(base64.b64decode(e["signatures"][0]["sig"], validate=True))
PYEOF
{ printf 'DSSEv1 28 application/vnd.in-toto+json %s ' "$(wc -c <payload.bin | tr -d ' ')"; cat payload.bin; } >pae.bin
openssl dgst -sha256 -verify k.pub.pem -signature sig.bin pae.bin >/dev/null || fail "openssl rejects the gate's report"
sed 's/"PASSED"/"FAILED"/' pae.bin >pae2.bin
cmp -s pae.bin pae2.bin && fail "could not modify the payload"
if openssl dgst -sha256 -verify k.pub.pem -signature sig.bin pae2.bin >/dev/null 2>&1; then
    fail "openssl accepts a modified gate report"
fi
[ "$(sha256sum cand.h5 | cut -d' ' -f1)" = "$($PY -c 'import json,sys; print(json.load(open("payload.bin"))["subject"][0]["digest"]["sha256"])')" ] ||
    fail "subject digest is not sha256sum of the candidate file"

# The human summary shows, per check, the mark, the measured value and the limit it was held to.
$PY - pass.json pass.txt <<'PYEOF'
import base64, json, sys
p = json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))["predicate"]
lines = open(sys.argv[2], encoding="utf-8").read().splitlines()
assert lines[0].split() == ["check", "value", "limit", "detail"], lines[0]
# Latency in the unit that suits each value (policy figures are ms), memory in binary units
# (policy figures are MiB), both with three significant digits, shadow agreement in percent.
UNITS = {"latency": {"ns": 1e-6, "\u00b5s": 1e-3, "ms": 1, "s": 1e3},
         "memory": {"B": 1 / 1048576, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}}
def shown(kind, text):
    if kind == "shadow":  # agreement as a percentage, as in the HTML and Markdown reports
        assert text.endswith("%"), text
        return float(text[:-1]) / 100
    if kind not in UNITS:
        return float(text)
    num, unit = text.split(" ")
    assert len(num.replace(".", "").lstrip("0")) <= 3 or "." not in num, text
    return float(num) * UNITS[kind][unit]
for c in p["checks"]:
    row = [l for l in lines if l.split()[1:2] == [c["name"]]]
    assert len(row) == 1, (c["name"], lines)
    kind = c["name"].split(".")[0]
    mark = "-" if c["skipped"] else "\u2713" if c["passed"] else "\u2717"
    assert row[0].startswith("  %s %-32s " % (mark, c["name"])), row[0]
    assert row[0].endswith(" " + c["text"]), (row[0], c["text"])
    cells = row[0][2 + 2 + 33:].split("  ")
    cells = [x.strip() for x in cells if x.strip()]
    value, limit = cells[0], cells[1]
    assert limit.startswith(c["op"] + " "), limit
    for text, want in ((value, c["value"]), (limit[len(c["op"]) + 1:], c["limit"])):
        got = shown(kind, text)
        assert abs(got - want) <= 0.005 * abs(want) + 1e-12, (c["name"], text, want)
    assert " MB" not in row[0] and " KB" not in row[0], row[0]
PYEOF
grep -q "<svg" pass.html || fail "HTML has no SVG chart"
grep -q "✅ stagegate gate PASSED" pass.md || fail "Markdown verdict missing"

# 2. The worse candidate: exit 1, result FAILED, a failedTests entry naming f1; verify says FAILED (exit 1).
rc=0; gate --model worse.h5 --baseline base.h5 --out fail.json --junit fail.xml > fail.txt || rc=$?
[ "$rc" = 1 ] || { cat fail.txt; fail "worse candidate exited $rc, wanted 1"; }
grep -q "gate FAILED" fail.txt || fail "summary does not say FAILED"
rc=0; "$STAGEGATE_BIN" verify fail.json --pubkey k.pub.pem --model worse.h5 >/dev/null || rc=$?
[ "$rc" = 1 ] || fail "verify of a FAILED report exited $rc, wanted 1"
$PY - fail.json fail.xml <<'PYEOF'
import base64, json, re, sys, xml.etree.ElementTree as ET
p = json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))["predicate"]
assert p["result"] == "FAILED"
f1 = [t for t in p["failedTests"] if t.startswith("f1 ")]
assert len(f1) == 1, p["failedTests"]
m = re.fullmatch(r"f1 (\S+) < 0\.95 x baseline (\S+)", f1[0])
assert m, f1[0]
assert float(m.group(1)) < 0.95 * float(m.group(2))
assert abs(float(m.group(1)) - p["metrics"]["f1"]) < 1e-3 * max(1, p["metrics"]["f1"])
failures = ET.parse(sys.argv[2]).getroot().findall(".//failure")
assert len(failures) == len(p["failedTests"])
PYEOF

# 3. Determinism: same inputs, same payload except latency, memory figures and timestamp.
gate --model cand.h5 --baseline base.h5 --out pass2.json >/dev/null
$PY - pass.json pass2.json <<'PYEOF'
import base64, json, sys
def load(path):
    st = json.loads(base64.b64decode(json.load(open(path))["payload"]))
    p = st["predicate"]
    measured = [c for c in p["checks"] if c["name"].split(".")[0] in ("latency", "memory")]
    texts = {c["text"] for c in measured}
    for k in ("latency", "memory", "timestamp"):
        p.pop(k)
    for k in ("passedTests", "failedTests", "warnedTests"):
        p[k] = [t for t in p[k] if t not in texts]
    p["checks"] = [c for c in p["checks"] if c not in measured]
    return st
a, b = load(sys.argv[1]), load(sys.argv[2])
# json.dumps keeps insertion order, so this also holds the key order fixed, not just the content.
assert json.dumps(a) == json.dumps(b), "payloads differ beyond latency/memory/timestamp"
PYEOF

# 4. Refusals before any work: bad policy, unsafe key, missing baseline for a required check.
echo '{"metrics": {"f1": {"threshold": "high"}}}' > bad.json
rc=0; "$STAGEGATE_BIN" gate --model cand.h5 --data val.h5 --policy bad.json --key k.key.pem --out bad.out \
    2> bad.err || rc=$?
[ "$rc" = 2 ] || fail "bad policy exited $rc, wanted 2"
grep -q "bad.json:1:21: metrics.f1.threshold must be a number" bad.err || { cat bad.err; fail "bad policy error"; }
[ ! -e bad.out ] || fail "a report was written for a bad policy"
mkdir outdir
rc=0; "$STAGEGATE_BIN" gate --model cand.h5 --data val.h5 --policy policy.json --key k.key.pem --out d.out \
    --html outdir 2> dir.err || rc=$?
[ "$rc" = 2 ] || fail "an output path that is a directory exited $rc, wanted 2"
grep -q "outdir: is a directory" dir.err || { cat dir.err; fail "directory output error"; }
[ "$(wc -l <dir.err)" = 1 ] && [ ! -e d.out ] || fail "directory output: not one line, or a report was written"
cp k.key.pem open.key.pem && chmod 644 open.key.pem
rc=0; "$STAGEGATE_BIN" gate --model cand.h5 --data val.h5 --policy policy.json --key open.key.pem --out o.out \
    2> open.err || rc=$?
[ "$rc" = 2 ] || fail "world-readable key exited $rc, wanted 2"
[ ! -e o.out ] || fail "a report was written with an unsafe key"
rc=0; gate --model cand.h5 --out nobase.json > nobase.txt || rc=$?
[ "$rc" = 1 ] || fail "required baseline checks without a baseline exited $rc, wanted 1"
grep -q "needs a baseline model (--baseline)" nobase.txt || fail "missing-baseline reason not shown"

# 5. Optional baseline checks are skipped, and a too-short latency run fails with a reason.
cat > opt.json <<'JSON'
{"metrics": {"accuracy": {"threshold": 0.85}, "f1": {"max_relative_regression": 0.05, "optional": true}},
 "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 50, "min_queries": 100},
 "shadow": {"min_agreement": 0.9, "optional": true}}
JSON
rc=0; "$STAGEGATE_BIN" gate --model cand.h5 --data val.h5 --policy opt.json --key k.key.pem --cpus 0 \
    --out opt.out --json > opt.txt || rc=$?
[ "$rc" = 1 ] || fail "too-short latency run exited $rc, wanted 1"
$PY - opt.txt <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "FAILED"
assert len(d["warnedTests"]) == 2, d["warnedTests"]
assert len(d["failedTests"]) == 1 and "too short for the early-stopping estimate" in d["failedTests"][0], d
PYEOF
# 6. A latency check on the offline scenario fails with the reason however many queries it
#    asks for: offline latencies are of whole batches, not queries (docs/policy.md).
cat > off.json <<'JSON'
{"latency": {"scenario": "offline", "percentile": 99, "max_ms": 50, "min_queries": 700}}
JSON
rc=0; "$STAGEGATE_BIN" gate --model cand.h5 --data val.h5 --policy off.json --key k.key.pem --cpus 0 \
    --out off.out --json > off.txt || rc=$?
[ "$rc" = 1 ] || fail "offline latency check exited $rc, wanted 1"
$PY - off.txt <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "FAILED", d
assert len(d["failedTests"]) == 1 and "measures throughput, not per-query latency" in d["failedTests"][0], d
PYEOF
# 7. The memory check measures the candidate alone (docs/policy.md): a 32 MiB baseline raised
#    the candidate's peak RSS by its size and failed a budget the candidate met alone.
#    One hidden layer of 4,096 x 2,048 float32 weights, written directly (no fitting).
$PY - <<'PYEOF'
import h5py, numpy as np
with h5py.File("cand.h5") as src, h5py.File("big.h5", "w") as dst:
    for k, v in src.attrs.items():
        dst.attrs[k] = v
    src.copy("scaler", dst) if "scaler" in src else None
    d = int(src.attrs["n_features"])
    rng = np.random.default_rng(0)
    g = dst.create_group("layers")
    for i, (w, act) in enumerate([((d, 4096), "relu"), ((4096, 2048), "relu"), ((2048, 1), "identity")]):
        l = g.create_group(str(i))
        l["W"] = (rng.normal(size=w) * 0.01).astype(np.float32)
        l["b"] = np.zeros(w[1], np.float32)
        l.attrs["activation"] = act
# 400 of the rows: the baseline's 17 MFLOP a row is 20 s on 4,000 under the sanitizers, and
# what is measured is the weights held, not the rows run
with h5py.File("val.h5") as src, h5py.File("val400.h5", "w") as dst:
    for k, v in src.attrs.items():
        dst.attrs[k] = v
    for k in src:
        dst[k] = src[k][:400]
PYEOF
echo '{"metrics": {"accuracy": {"threshold": 0.5}}, "memory": {"max_rss_mb": 4096}}' > mem.json
rss() { $PY -c 'import base64,json,sys; print(json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))["predicate"]["memory"]["peak_rss_mb"])' "$1"; }
"$STAGEGATE_BIN" gate --model cand.h5 --data val400.h5 --policy mem.json --key k.key.pem --cpus 0 \
    --out alone.json >/dev/null || fail "candidate alone"
"$STAGEGATE_BIN" gate --model cand.h5 --baseline big.h5 --data val400.h5 --policy mem.json \
    --key k.key.pem --cpus 0 --out withbig.json >/dev/null || fail "candidate with a 32 MiB baseline"
a=$(rss alone.json) b=$(rss withbig.json)
$PY -c "import sys; a, b = $a, $b; sys.exit(0 if b < a + 16 else 1)" ||
    fail "the baseline counts in the candidate's peak RSS: $a MiB alone, $b MiB with it"
# 8. A file name that is not UTF-8: the report names it with the byte as \xHH and verifies
#    (the subject's name was left out, and verify refused the gate's own PASSED report).
cp cand.h5 "$(printf 'bad\xffname.h5')"
"$STAGEGATE_BIN" gate --model "$(printf 'bad\xffname.h5')" --data val.h5 --policy mem.json \
    --key k.key.pem --cpus 0 --out nonutf8.json >/dev/null || fail "gate of a non-UTF-8 file name"
"$STAGEGATE_BIN" verify nonutf8.json --pubkey k.pub.pem --model "$(printf 'bad\xffname.h5')" >/dev/null ||
    fail "the gate's report of a non-UTF-8 file name does not verify"
$PY -c 'import base64,json,sys; st = json.loads(base64.b64decode(json.load(open("nonutf8.json"))["payload"])); assert st["subject"][0]["name"] == "bad\\xffname.h5", st["subject"]' ||
    fail "the subject's name is not the file name with \\xff"
# 9. A baseline for another feature count is refused when it is loaded, before the latency
#    run, naming it as the baseline (it had been found after the whole latency run).
$PY "$MK" --task binary --features 8 --seed 1 --fit logreg --fit-rows 500 --fit-seed 4 \
    --model-out base8.h5 >/dev/null
rc=0; gate --model cand.h5 --baseline base8.h5 --out f8.json 2>f8.err >/dev/null || rc=$?
[ "$rc" = 2 ] && grep -q "base8.h5: the baseline expects 8 features, and val.h5 has 16" f8.err ||
    fail "a baseline of 8 features: exit $rc $(cat f8.err)"
[ ! -e f8.json ] || fail "a refused gate left a report"
# 10. A name of 200 bytes that are not UTF-8 (800 bytes escaped): the subject's name is cut
#     to what verify takes (511 bytes), so the gate's own report verifies (it had not).
long=$(printf '\xff%.0s' $(seq 200)).h5
cp cand.h5 "$long"
"$STAGEGATE_BIN" gate --model "$long" --data val.h5 --policy mem.json --key k.key.pem --cpus 0 \
    --out long.json >/dev/null 2>long.err || fail "gate of a long non-UTF-8 name: $(cat long.err)"
"$STAGEGATE_BIN" verify long.json --pubkey k.pub.pem --model "$long" >/dev/null ||
    fail "verify refused the gate's own report for a long name"
$PY -c 'import base64,json; n = json.loads(base64.b64decode(json.load(open("long.json"))["payload"]))["subject"][0]["name"]; assert len(n.encode()) <= 511 and n.endswith("\u2026") and n.startswith("\\xff"), n' ||
    fail "the long name was not cut to 511 bytes"
# 11. 1,024 classes (the most whose confusion matrix a report keeps) with a baseline: two
#     k x k matrices are 2^21 JSON values. The report verifies: verify had refused the gate's
#     own PASSED report at 2^20 values.
$PY - <<'PYEOF'
import h5py, numpy as np
K, N, F = 1024, 5000, 8
rng = np.random.default_rng(0)
W = rng.normal(size=(F, K)).astype(np.float32); b = rng.normal(size=K).astype(np.float32)
X = rng.normal(size=(N, F)).astype(np.float32)
y = np.argmax(X @ W + b, axis=1).astype(np.int32)
def model(path, W):
    with h5py.File(path, "w") as h:
        h.attrs.update({"format": "stagegate-model", "format_version": 1, "link": "softmax",
                        "n_classes": K, "n_features": F, "task": "multiclass"})
        g = h.create_group("layers/0"); g.attrs["activation"] = "identity"
        g["W"] = W; g["b"] = b
model("k1024.h5", W)
model("k1024b.h5", W + rng.normal(scale=0.3, size=W.shape).astype(np.float32))
with h5py.File("v1024.h5", "w") as h:
    h["X"] = X; h["y"] = y
PYEOF
echo '{"metrics": {"accuracy": {"threshold": 0.1}}, "shadow": {"min_agreement": 0.1}}' > k.json
"$STAGEGATE_BIN" gate --model k1024.h5 --baseline k1024b.h5 --data v1024.h5 --policy k.json \
    --key k.key.pem --cpus 0 --out k1024.json >/dev/null || fail "gate of 1,024 classes"
"$STAGEGATE_BIN" verify k1024.json --pubkey k.pub.pem --model k1024.h5 >/dev/null ||
    fail "verify refused the gate's own 1,024-class report"
# A run cut short says so in the signed check text (and so in every rendering): the sample cap
# met before the policy's 1 s, in both repetitions (the first one's reason had been given as
# the only one). A time from SOURCE_DATE_EPOCH is marked as such. Sample weights are recorded.
echo '{"metrics": {"accuracy": {"threshold": 0.5}},
       "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 50, "duration_s": 1,
                   "repetitions": 2}}' > cut.json
$PY - <<'PYEOF'
import h5py, numpy as np
with h5py.File("val.h5") as f, h5py.File("valw.h5", "w") as g:
    g["X"] = f["X"][()]; g["y"] = f["y"][()]
    g["sample_weight"] = np.where(np.arange(len(f["y"])) < 50, 1.0, 0.0)
PYEOF
STAGEGATE_BENCH_MAX_SAMPLES=2000 SOURCE_DATE_EPOCH=0 "$STAGEGATE_BIN" gate --model cand.h5 \
    --data valw.h5 --policy cut.json --key k.key.pem --cpus 0 --out cut.r.json --markdown cut.md \
    >cut.txt || { cat cut.txt; fail "gate with a cut-short run"; }
$PY - cut.r.json cut.md <<'PYEOF'
import base64, json, sys
p = json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))["predicate"]
lat = [c for c in p["checks"] if c["name"] == "latency.p99"][0]
assert "run cut short: 2 of 2 repetitions; the first, repetition 1: sample buffer full after 2000 queries" in lat["text"], lat
assert "run cut short" in open(sys.argv[2]).read(), "the Markdown does not say the run was cut short"
assert p["timestamp"] == "1970-01-01T00:00:00Z" and p["timestamp_source"] == "SOURCE_DATE_EPOCH", p["timestamp"]
assert p["evaluation"]["sample_weight"] is True and p["evaluation"]["rows"] == 4000, p["evaluation"]
PYEOF
# 13. Class values other than 0..k-1 ({-1, 1}): candidate and baseline with the same ones
#     gate a set labelled -1/1, and the signed report names the classes; a baseline whose
#     classes differ from the candidate's is refused before any work (their label 1 would
#     not be the same class).
$PY - <<'PYEOF'
import h5py, numpy as np, shutil
for src, dst in (("base.h5", "base_pm1.h5"), ("cand.h5", "cand_pm1.h5")):
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        f.attrs["format_version"] = np.int64(3)
        f["classes"] = np.array([-1, 1], np.int64)
shutil.copy("val.h5", "val_pm1.h5")
with h5py.File("val_pm1.h5", "a") as f:
    y = f["y"][()]
    del f["y"]
    f["y"] = np.where(y == 1, 1, -1).astype(np.int64)
PYEOF
gate --model cand.h5 --baseline base.h5 --out ref01.json >/dev/null || fail "gate on 0/1 labels"
"$STAGEGATE_BIN" gate --model cand_pm1.h5 --baseline base_pm1.h5 --data val_pm1.h5     --policy policy.json --key k.key.pem --cpus 0 --out pm1.json >pm1.txt ||
    fail "gate on -1/1 labels: $(cat pm1.txt)"
"$STAGEGATE_BIN" verify pm1.json --pubkey k.pub.pem --model cand_pm1.h5 >/dev/null ||
    fail "the report of a -1/1 model does not verify"
$PY - ref01.json pm1.json <<'PYEOF'
import base64, json, sys
a, b = (json.loads(base64.b64decode(json.load(open(f))["payload"]))["predicate"] for f in sys.argv[1:])
assert b["evaluation"]["model"]["classes"] == [-1, 1], b["evaluation"]["model"]
assert "classes" not in a["evaluation"]["model"], a["evaluation"]["model"]
# The same models on the same rows with relabelled classes: the same metrics and agreement.
for k in ("accuracy", "f1", "roc_auc", "log_loss", "confusion_matrix"):
    assert a["metrics"][k] == b["metrics"][k], (k, a["metrics"][k], b["metrics"][k])
assert a["shadow"] == b["shadow"], (a["shadow"], b["shadow"])
PYEOF
# compare of runs of other classes: refused as runs of other settings, unless --force (an F1
# of the second class would be class 1's against class 0's).
rc=0; "$STAGEGATE_BIN" compare ref01.json pm1.json --pubkey k.pub.pem 2>cmp.err >/dev/null || rc=$?
[ "$rc" = 2 ] && grep -q 'classes \[0, 1\] vs \[-1, 1\]' cmp.err ||
    fail "compare of runs of other classes: exit $rc $(cat cmp.err)"
"$STAGEGATE_BIN" compare ref01.json pm1.json --pubkey k.pub.pem --force >/dev/null ||
    fail "compare --force of runs of other classes"
rc=0; gate --model cand.h5 --baseline base_pm1.h5 --out mixed.json 2>mixed.err >/dev/null || rc=$?
[ "$rc" = 2 ] && grep -q "base_pm1.h5: the baseline's classes are (-1, 1) and the candidate cand.h5's (0, 1)" mixed.err ||
    fail "a baseline of other classes: exit $rc $(cat mixed.err)"
[ ! -e mixed.json ] || fail "a refused gate left a report"
echo "gate e2e: ok"
