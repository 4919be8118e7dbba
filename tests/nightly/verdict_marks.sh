#!/bin/bash
# The nightly verdicts in the registry and the trend page's marks, on one storage backend
# (SG_REG_BACKEND: sqlite or postgresql). Eight real gate runs of a model (six of v1, two of
# v2) are recorded; `registry set-run-verdict` stores verdicts given by name, by report file,
# by SHA-256 and --from a `compare --json` document, and replaces them; bad input is refused
# with one line and changes nothing. `registry runs --json` must carry each run's verdict
# (null where none was stored), and the trend page must put a regressed mark on exactly the
# runs stored as regressed, on every chart, and on no other run.
. "$STAGEGATE_SOURCE_DIR/tests/registry/lib.sh"
R="$SG registry"
one_line() { [ "$(wc -l <"$WORK/err")" = 1 ] || { cat "$WORK/err" >&2; fail "error is not one line"; }; }

keys signer
real_models 2 >/dev/null
cat >lpolicy.json <<'JSON'
{"metrics": {"accuracy": {"threshold": 0.5}, "log_loss": {"threshold": 5},
             "precision": {"threshold": 0.9999, "greater_is_better": false}},
 "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 700}}
JSON
expect 0 $R create-model m --signer signer.pub.pem
[ "$($R create-version m m1.h5)" = 1 ] && [ "$($R create-version m m2.h5)" = 2 ] || fail "versions"
for k in 1 2 3 4 5 6 7 8; do
    v=1; [ "$k" -le 6 ] || v=2
    gate_report signer models:/m/$v r$k.json lpolicy.json --cpus 0
    expect 0 $R record r$k.json --json
    $PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["id"]==int(sys.argv[2]) and r["verdict"] is None, r' \
        "$WORK/out" "$k" || fail "record r$k.json: id or verdict"
done

# A run is its signed statement: the same report re-encoded (URL-safe base64 without
# padding, a trailing newline) is other bytes, and is refused as already recorded (it had
# been recorded again, and counted as another night).
$PY - r1.json <<'PY'
import base64, json, sys
e = json.load(open(sys.argv[1]))
raw = base64.b64decode(e["payload"])
e["payload"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
open("r1_again.json", "w").write(json.dumps(e) + "\n")
PY
cmp -s r1.json r1_again.json && fail "setup: the re-encoded report has the same bytes"
expect 2 $R record r1_again.json
err_has "is already recorded for m"
[ "$($R runs m --json | jq '.runs | length')" = 8 ] || fail "a re-encoded report was recorded again"
# ... and set-run-verdict finds its run by the re-encoded file too (by the statement)
expect 0 $R set-run-verdict m r1_again.json first --json
$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["id"]==1 and r["verdict"]=="first", r' "$WORK/out" ||
    fail "set-run-verdict by the re-encoded file"

# By name and SHA-256, by report file, and --from compare documents.
expect 0 $R set-run-verdict m "$(sha r1.json)" first
grep -q "verdict stored for run #1: .* (nightly: first)" out || { cat out; fail "human output"; }
expect 0 $R set-run-verdict m r2.json regressed
expect 0 $R set-run-verdict m r2.json unchanged --json # replaces the earlier verdict
$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["id"]==2 and r["verdict"]=="unchanged", r' "$WORK/out" ||
    fail "set-run-verdict --json"
expect 0 $R set-run-verdict m "$(sha r3.json | tr a-f A-F)" unchanged # hex in either case
expect 0 $R set-run-verdict m r3.json regressed
# r4: no verdict stored (recorded outside the nightly job).
# (each names the report it judges, as compare --json does: new.file_sha256)
echo '{"regressed": true, "new": {"file_sha256": "'"$(sha r5.json)"'"}, "latency": [{"verdict": "unchanged"}], "metrics": [{"verdict": "regressed"}]}' >c_reg.json
echo '{"regressed": false, "new": {"file_sha256": "'"$(sha r8.json)"'"}, "latency": [{"verdict": "improved"}], "metrics": [{"verdict": "unchanged"}]}' >c_imp.json
echo '{"regressed": false, "new": {"file_sha256": "'"$(sha r6.json)"'"}, "latency": [{"verdict": "improved"}], "metrics": [{"verdict": "worse"}]}' >c_mixed.json
expect 0 $R set-run-verdict m r5.json --from c_reg.json
expect 0 $R set-run-verdict m r6.json --from c_mixed.json # improved and worse: unchanged
expect 0 $R set-run-verdict m r7.json first
expect 0 $R set-run-verdict m r8.json --from c_imp.json
# A real comparison: the stored word is the document's overall verdict.
"$SG" compare r5.json r6.json --json >c56.json || fail "compare r5 r6"
want=$(jq -r 'if .regressed then "regressed" elif ([.latency[], .metrics[] | .verdict] | (any(. == "improved") and all(. != "worse" and . != "regressed"))) then "improved" else "unchanged" end' c56.json)
expect 0 $R set-run-verdict m r6.json --from c56.json --json
[ "$(jq -r .verdict "$WORK/out")" = "$want" ] || fail "verdict from a real comparison: $(jq -r .verdict "$WORK/out"), wanted $want"
expect 0 $R set-run-verdict m r6.json --from c_mixed.json
expect 0 $R set-run-verdict m r8.json regressed

# Bad input: exit 2, one line naming what is wrong; nothing changes.
q_verdicts() { "$SG" registry runs m --json | jq -c '[.runs[] | .verdict]'; }
before=$(q_verdicts)
expect 2 $R set-run-verdict m r1.json worse; err_has "verdict 'worse' is not one of"; one_line
expect 2 $R set-run-verdict m r1.json ""; err_has "verdict '' is not one of"; one_line
expect 2 $R set-run-verdict nosuch r1.json regressed; err_has "nosuch"; one_line
expect 2 $R set-run-verdict m "$(printf '0%.0s' {1..64})" regressed; err_has "no run of m was recorded"; one_line
expect 2 $R set-run-verdict m lpolicy.json regressed; err_has "no run of m was recorded"; one_line
expect 2 $R set-run-verdict m missing.json regressed; err_has "missing.json"; one_line
echo 'not json' >bad.json
expect 2 $R set-run-verdict m r1.json --from bad.json; err_has "bad.json: not JSON"; one_line
expect 2 $R set-run-verdict m r1.json --from lpolicy.json; err_has "lpolicy.json: not a \`compare --json\` document"; one_line
echo '{"regressed": false, "latency": [{"verdict": 3}], "metrics": []}' >bad_row.json
expect 2 $R set-run-verdict m r1.json --from bad_row.json; err_has "bad_row.json: latency[0].verdict"; one_line
expect 2 $R set-run-verdict m r1.json --from nofile.json; err_has "nofile.json"; one_line
# a comparison of another report (r5 against r6) is not r1's verdict, nor r5's: its NEW is r6
expect 2 $R set-run-verdict m r1.json --from c56.json; err_has "c56.json judges another report"; one_line
expect 2 $R set-run-verdict m r5.json --from c56.json; err_has "c56.json judges another report"; one_line
[ "$(jq -r .new.file_sha256 c56.json)" = "$(sha r6.json)" ] || fail "compare --json new.file_sha256"
[ "$(jq -r .old.file_sha256 c56.json)" = "$(sha r5.json)" ] || fail "compare --json old.file_sha256"
echo '{"regressed": false, "latency": [], "metrics": []}' >c_nonew.json
expect 2 $R set-run-verdict m r1.json --from c_nonew.json; err_has "new.file_sha256 is missing"; one_line
# a document that contradicts itself, or holds words compare never writes, is no comparison
# (a row "regressed" under "regressed": false had been stored as unchanged, "bogus" as improved)
r1s=$(sha r1.json)
echo '{"regressed": false, "new": {"file_sha256": "'"$r1s"'"}, "latency": [{"verdict": "regressed"}], "metrics": []}' >c_contra.json
expect 2 $R set-run-verdict m r1.json --from c_contra.json; err_has '"regressed" is false but a row says regressed'; one_line
echo '{"regressed": true, "new": {"file_sha256": "'"$r1s"'"}, "latency": [{"verdict": "unchanged"}], "metrics": []}' >c_contra2.json
expect 2 $R set-run-verdict m r1.json --from c_contra2.json; err_has '"regressed" is true but no row says regressed'; one_line
echo '{"regressed": false, "new": {"file_sha256": "'"$r1s"'"}, "latency": [{"verdict": "improved"}], "metrics": [{"verdict": "bogus"}]}' >c_bogus.json
expect 2 $R set-run-verdict m r1.json --from c_bogus.json; err_has 'metrics[0].verdict "bogus" is not regressed, improved, unchanged or worse'; one_line
expect 2 $R set-run-verdict m r1.json regressed --from c_reg.json; err_has "not both"; one_line
expect 2 $R set-run-verdict m r1.json; err_has "missing VERDICT"; one_line
expect 2 $R set-run-verdict m; one_line
expect 2 $R set-run-verdict m r1.json regressed --as signer.key.pem; one_line
expect 2 $R set-run-verdict m r1.json regressed --db http://127.0.0.1:9; err_has "local registry only"; one_line
[ "$(q_verdicts)" = "$before" ] || fail "a refused set-run-verdict changed the history: $before -> $(q_verdicts)"
# ...but the same signed statement in other bytes is the same report: a comparison whose NEW
# is r1 re-encoded gives r1 its verdict (matched by new.payload_sha256)
"$SG" compare r5.json r1_again.json --json >c5r1.json || fail "compare r5 r1_again"
expect 0 $R set-run-verdict m r1.json --from c5r1.json --json
[ "$(jq -r .id "$WORK/out")" = 1 ] || fail "the re-encoded comparison set another run's verdict"
expect 0 $R set-run-verdict m r1.json first # as it was, for the history below

# The history: each run's verdict, null where none was stored.
expect 0 $R runs m --json
cp "$WORK/out" runs.json
$PY - runs.json <<'PY' || fail "run history verdicts"
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
got = {r["id"]: r["verdict"] for r in runs}
want = {1: "first", 2: "unchanged", 3: "regressed", 4: None, 5: "regressed", 6: "unchanged",
        7: "first", 8: "regressed"}
assert got == want, got
assert [r["version"] for r in runs] == [1] * 6 + [2] * 2, runs
PY
expect 0 $R runs m
[ "$(grep -c '(nightly: regressed)' "$WORK/out")" = 3 ] && [ "$(grep -vc '(nightly: ' "$WORK/out")" = 1 ] ||
    { cat "$WORK/out"; fail "runs: human verdicts"; }

# The trend page: marks on exactly runs 3, 5 and 8, on every chart; every point carries its
# run's stored verdict; the legend and the text say where the marks come from.
expect 0 "$SG" trend m --html trend.html
$PY - trend.html runs.json <<'PY' || fail "trend page marks"
import json, sys
import xml.etree.ElementTree as ET
import re

html = open(sys.argv[1], encoding="utf-8").read()
runs = json.load(open(sys.argv[2]))["runs"]
verdicts = {r["id"]: r["verdict"] or "" for r in runs}
regressed = sorted(i for i, v in verdicts.items() if v == "regressed")
assert regressed == [3, 5, 8], regressed
charts = [ET.fromstring(s) for s in re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart".*?</svg>', html, re.S)]
figs = [c.get("data-figure") for c in charts]
assert figs == ["latency.p50", "latency.p99", "metric.accuracy", "metric.log_loss", "metric.precision"], figs
# Each chart's direction: latency and losses lower, accuracy higher, and precision lower as
# this policy's rule sets it (every known metric had been labelled "higher").
heads = dict(re.findall(r"<h2>([^<]+?) <small>\((\w+) is better\)</small></h2>", html))
assert heads == {"latency p50": "lower", "latency p99": "lower", "accuracy": "higher",
                 "log_loss": "lower", "precision": "lower"}, heads
ns = "{http://www.w3.org/2000/svg}"
for c in charts:
    points = {}
    for p in c.iter(ns + "circle"):
        points[int(p.get("data-run"))] = (p.get("data-verdict"), float(p.get("cx")), float(p.get("cy")))
    assert {k: v[0] for k, v in points.items()} == verdicts, (c.get("data-figure"), points)
    marks = [m for m in c.iter(ns + "path") if m.get("class") == "regressed"]
    marked = sorted(int(m.get("data-run")) for m in marks)
    assert marked == regressed, (c.get("data-figure"), marked)
    for m in marks:  # the triangle sits just above its own point
        x, y = map(float, re.match(r"M([-\d.]+),([-\d.]+)", m.get("d")).groups())
        _, cx, cy = points[int(m.get("data-run"))]
        assert abs(x - cx) < 0.05 and abs(y - (cy - 7)) < 0.05, (m.get("d"), cx, cy)
        assert "nightly compare" in m.find(ns + "title").text
text = re.sub(r"<svg .*?</svg>", "", html, flags=re.S)
assert "regressed (nightly verdict)" in text, "legend"
assert "3 of 8 runs flagged" in text, "summary of the marks"
assert "1 run has no stored verdict" in text, "runs without a verdict"
print("trend marks ok")
PY

# A copy of the registry keeps the verdicts.
if [ "$BACKEND" = sqlite ]; then
    expect 0 $R migrate --from "$STAGEGATE_REGISTRY" --to "$WORK/copy.db"
    [ "$("$SG" registry runs m --db "$WORK/copy.db" --json | jq -c '[.runs[] | .verdict]')" = "$(q_verdicts)" ] ||
        fail "migrate lost the verdicts"
fi
# Runs are kept in the order they ran, whatever offset their time was written with:
# 11:00+05:00 is 06:00Z (compared as text it had sorted after 10:00Z, and been the newest).
expect 0 $R create-model tz --signer signer.pub.pem
echo "tz artifact" >tz.bin
expect 0 $R create-version tz tz.bin
for x in "a 2026-01-05T10:00:00Z" "b 2026-01-05T11:00:00+05:00" "c 2026-01-05T08:00:00Z"; do
    set -- $x
    report signer tz.bin PASSED "$2" "tz_$1.json"
    expect 0 $R record "tz_$1.json"
done
expect 0 $R runs tz --json
[ "$(jq -c '[.runs[].time]' out)" = '["2026-01-05T06:00:00Z","2026-01-05T08:00:00Z","2026-01-05T10:00:00Z"]' ] ||
    fail "runs with offsets: $(jq -c '[.runs[].time]' out)"
expect 0 $R runs tz --limit 1 --json
[ "$(jq -r '.runs[0].time' out)" = 2026-01-05T10:00:00Z ] || fail "the newest run: $(cat out)"

# One model holding one artifact twice (v2 re-registers v1's file, as a rollback may): a report
# of that file names no version, so record refuses to guess (it had filed v1's nightly run
# under v2) and takes --version.
expect 0 $R create-model twice --signer signer.pub.pem
echo "same artifact" >same.bin
[ "$($R create-version twice same.bin)" = 1 ] && [ "$($R create-version twice same.bin)" = 2 ] ||
    fail "twice: versions"
report signer same.bin PASSED 2026-01-06T10:00:00Z same.json
expect 2 $R record same.json
err_has "is v2 and v1 of twice: pass --version V"
one_line
expect 2 $R record same.json --version 3
err_has "no registered version v3 has artifact"
expect 0 $R record same.json --version 1 --json
[ "$(jq -c '[.model, .version]' out)" = '["twice",1]' ] || fail "recorded as: $(cat out)"

# signer_trusted: a run by one of the model's signers is true; one recorded with --pubkey by
# another key is false, in record's answer and in the listing.
keys other
report other same.bin PASSED 2026-01-06T11:00:00Z same_other.json
expect 0 $R record same_other.json --version 1 --pubkey other.pub.pem --json
[ "$(jq -c .signer_trusted out)" = false ] || fail "record --pubkey other: $(cat out)"
expect 0 $R runs twice --json
[ "$(jq -c '[.runs[].signer_trusted]' out)" = '[true,false]' ] || fail "signer_trusted: $(cat out)"
echo "verdict marks ok ($BACKEND)"
