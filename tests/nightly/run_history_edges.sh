#!/bin/bash
# The run history at its edges (found by attacking it from outside), on signed reports that a
# trusted key re-signs with chosen times and latency figures:
# - a run's time is stored in one spelling (UTC, 'T' and 'Z', whole seconds), so runs list in
#   the order they ran: a fraction had sorted before its whole second and "t10:30:00z" after
#   11:00Z, and `runs --limit 1` had named the 10:30 run the newest;
# - a time past 9999 once in UTC is refused, not stored as "10000-...";
# - compare --history leaves out NEW's own run (what `registry runs --json` lists once NEW is
#   recorded) and a run listed twice: with NEW in it the band reached NEW's figures and a 2.9x
#   slowdown read as unchanged;
# - compare --history on a FIFO is refused at once (it blocked for ever);
# - trend of a run whose p50 is 5e-324 ns ends (its log-axis ticks never did);
# - `registry runs` on a run record whose gated names were edited into non-strings (SIGSEGV).
. "$STAGEGATE_SOURCE_DIR/tests/registry/lib.sh"
R="$SG registry"
one_line() { [ "$(wc -l <"$WORK/err")" = 1 ] || { cat "$WORK/err" >&2; fail "error is not one line"; }; }

keys signer
real_models 1 >/dev/null
cat >lpolicy.json <<'JSON'
{"metrics": {"accuracy": {"threshold": 0.5}},
 "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 700}}
JSON
expect 0 $R create-model m --signer signer.pub.pem
expect 0 $R create-version m m1.h5
gate_report signer models:/m/1 base.json lpolicy.json --cpus 0

# signed OUT TIME P50 [PERCENTILE]: base.json's statement at TIME with five repetitions around P50 ns (no
# histogram), signed again with signer.key.pem (or $SIGNED_KEY) by openssl.
signed() {
    $PY - "$@" <<'PY'
import base64, json, subprocess, sys
out, when, p50 = sys.argv[1], sys.argv[2], float(sys.argv[3])
env = json.load(open("base.json"))
st = json.loads(base64.b64decode(env["payload"]))
p = st["predicate"]
p["timestamp"] = when
if len(sys.argv) > 4 and sys.argv[4]:  # the percentile the policy budgets
    p["policy"]["latency"]["percentile"] = int(sys.argv[4])
if len(sys.argv) > 5 and sys.argv[5]:  # clock.overhead_ns, as a JSON value
    p["latency"].setdefault("clock", {})["overhead_ns"] = json.loads(sys.argv[5])
if len(sys.argv) > 6 and sys.argv[6]:  # another machine: its CPU model (so another fingerprint)
    p["latency"]["machine"]["cpu_model"] = sys.argv[6]
if len(sys.argv) > 7:  # another artifact: the subject's sha256
    st["subject"][0]["digest"]["sha256"] = sys.argv[7]
reg = __import__("os").environ.get("SIGNED_REGISTRY")  # predicate.registry: "none" drops it
if reg == "none":
    p.pop("registry", None)
elif reg:
    p["registry"] = json.loads(reg)
lat = p["latency"]
lat.pop("histogram", None)
lat.pop("spread", None)
reps = []
for i in range(5):
    v = p50 * (1 + 0.01 * (i - 2))
    reps.append({"index": i, "queries": 1000000, "duration_s": 2.0, "noise": {"noisy": False},
                 "latency_ns": {"p50": v, "p90": v * 1.1, "p99": v * 1.5, "p999": v * 3}})
lat.update(repetitions=reps, repetition_count=5, latency_ns=dict(reps[2]["latency_ns"]))
payload = json.dumps(st).encode()
t = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
key = __import__("os").environ.get("SIGNED_KEY", "signer.key.pem")
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=pae,
                     capture_output=True, check=True).stdout
env["payload"] = base64.b64encode(payload).decode()
env["signatures"] = [{"keyid": env["signatures"][0]["keyid"], "sig": base64.b64encode(sig).decode()}]
json.dump(env, open(out, "w"))
PY
}
times() { "$SG" registry runs m --json | $PY -c 'import json,sys; print(" ".join(r["time"] for r in json.load(sys.stdin)["runs"]))'; }

# Run order: written four ways, listed by the instant.
signed o1.json 2026-11-05T10:00:00Z 100
signed o2.json 2026-11-05T10:00:00.5Z 101
signed o3.json 2026-11-05t10:30:00z 102
signed o4.json 2026-11-05T13:00:00+02:00 103
for f in o4 o3 o2 o1; do expect 0 $R record $f.json; done
[ "$(times)" = "2026-11-05T10:00:00Z 2026-11-05T10:00:00Z 2026-11-05T10:30:00Z 2026-11-05T11:00:00Z" ] ||
    fail "runs are not in the order they ran: $(times)"
"$SG" registry runs m --limit 1 --json | grep '"time": "2026-11-05T11:00:00Z"' >/dev/null ||
    fail "runs --limit 1 is not the 11:00 run: $("$SG" registry runs m --limit 1)"
# ...and a time that is past 9999 in UTC is refused, naming the file.
signed y.json 9999-12-31T23:30:00-01:00 100
expect 2 $R record y.json; err_has "y.json"; err_has "years 0000..9999"; one_line

# --history with NEW in it: NEW is 2.9x slower than four earlier runs; the band of the earlier
# runs alone, and of `registry runs --json` after NEW is recorded, must both see it.
for d in 1 2 3 4; do signed h$d.json 2026-11-0${d}T02:00:00Z $((100 + d)); expect 0 $R record h$d.json; done
signed new.json 2026-11-09T02:00:00Z 300
"$SG" registry runs m --json >before.json
expect 0 $R record new.json
"$SG" registry runs m --json >with_new.json
for hist in before.json with_new.json; do
    expect 1 "$SG" compare h4.json new.json --history $hist --fail-on-regression
    grep -q "p50 .*regressed" "$WORK/out" || { cat "$WORK/out"; fail "--history $hist: p50 not regressed"; }
done
grep -q "^history: 8 earlier runs (1 left out: NEW's own run" "$WORK/out" ||
    { cat "$WORK/out"; fail "compare does not say NEW's run was left out"; }
# A run listed twice counts once.
$PY -c 'import json; d=json.load(open("before.json")); d["runs"]+=d["runs"][-1:]; json.dump(d, open("twice.json","w"))'
expect 1 "$SG" compare h4.json new.json --history twice.json --fail-on-regression --json
$PY -c 'import json,sys; h=json.load(open(sys.argv[1]))["history"]; assert h=={"runs": 8, "left_out": 1, "other_keys": 0}, h' "$WORK/out" ||
    fail "a run listed twice was counted twice"
# A run recorded with --pubkey by a key that is not m's signer (anyone with write access can):
# left out of the band, which its p50 of 1,000 ns had widened until NEW's 300 ns read as
# inside it. Given as `registry runs --json` lists it, signer_trusted false.
keys mallory
SIGNED_KEY=mallory.key.pem signed mal.json 2026-11-09T01:00:00Z 1000
expect 0 $R record mal.json --pubkey mallory.pub.pem
"$SG" registry runs m --json >with_mal.json
[ "$(jq '[.runs[] | select(.signer_trusted | not)] | length' with_mal.json)" = 1 ] || fail "mallory's run: $(cat with_mal.json)"
expect 1 "$SG" compare h4.json new.json --history with_mal.json --fail-on-regression --json
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); h=d["history"]; assert h=={"runs": 8, "left_out": 1, "other_keys": 1}, h; assert d["regressed"], d["latency"]' "$WORK/out" ||
    fail "a run by another key in the band: $(jq -c '[.history, .regressed]' "$WORK/out")"
expect 1 "$SG" compare h4.json new.json --history with_mal.json --fail-on-regression
grep -q "^history: 8 earlier runs (1 left out: NEW's own run, or a run listed twice) (1 signed by keys that are neither the model's signers nor NEW's left out)" "$WORK/out" ||
    { cat "$WORK/out"; fail "compare does not say a run by another key was left out"; }

# --history on a FIFO: refused at once.
mkfifo h.fifo
rc=0
timeout 20 "$SG" compare h4.json new.json --history h.fifo >out 2>"$WORK/err" || rc=$?
[ "$rc" = 2 ] || fail "--history on a FIFO: exit $rc (124: it blocked)"
err_has "h.fifo"; err_has "not a regular file"; one_line

# A recorded p50 of 5e-324 ns (a signed figure no clock gives): trend ends and draws it.
signed tiny.json 2026-11-10T02:00:00Z 5e-324
expect 0 $R record tiny.json
rc=0
timeout 30 "$SG" trend m --html t.html >out 2>"$WORK/err" || rc=$?
[ "$rc" = 0 ] && [ -s t.html ] || fail "trend with a 5e-324 ns figure: exit $rc (124: it hung)"
expect 0 $R runs m --limit 1
grep -q nan "$WORK/out" && fail "runs prints nan: $(cat "$WORK/out")"

# A run record whose gated names were edited into non-strings: shown, not a crash.
sqlite3 "$STAGEGATE_REGISTRY" "UPDATE runs SET figures = json_set(figures, '\$.gated', json('[null, 1]'))"
expect 0 $R runs m
expect 0 "$SG" trend m --html t2.html
# A version the model does not have: refused as `registry get` refuses it, no empty page.
expect 2 "$SG" trend m --version 99 --html t99.html; err_has "model 'm' has no version 99"; one_line
[ ! -e t99.html ] || fail "trend of a version the model does not have wrote a page"
# And `registry runs` of it: the same refusal, not "no runs recorded" with exit 0.
expect 2 $R runs m --version 99; err_has "model 'm' has no version 99"; one_line
expect 0 "$SG" trend m --version 1 --html t1.html
# A policy that budgets p90: the trend page has a p90 chart to draw its limit on (the limit
# was recorded, but only p50 and p99 were charted).
signed p90.json 2026-11-11T02:00:00Z 100 90
expect 0 $R record p90.json
expect 0 "$SG" trend m --html t3.html
$PY - t3.html <<'PY' || fail "the p90 budget is not drawn"
import re, sys
page = open(sys.argv[1]).read()
figs = re.findall(r'data-figure="([^"]*)"', page)
assert figs[:3] == ["latency.p50", "latency.p90", "latency.p99"], figs
p90 = page[page.index('data-figure="latency.p90"'):page.index('data-figure="latency.p99"')]
assert 'class="limit"' in p90 and "limit 100 ms" in p90, "no limit line on the p90 chart"
# a narrow screen scrolls each chart at a readable size (its 4-px text at 400 px had been
# unreadable); looked at in headless Chromium at 400 and 1280 px
assert "@media (max-width:700px){section,table{overflow-x:auto}" in page
assert "svg.chart{width:760px;max-width:none}" in page
PY
# A page that cannot be written says why (it had said only "write failed"), and leaves nothing:
# written to a 16 KiB tmpfs (as root; the page is larger), or skipped where none can be mounted.
mkdir -p "$WORK/small"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=16k tmpfs "$WORK/small" 2>/dev/null; then
    trap 'umount "$WORK/small" 2>/dev/null || true; rm -rf "$WORK"' EXIT
    rc=0; "$SG" trend m --html "$WORK/small/cut.html" >out 2>"$WORK/err" || rc=$?
    left=$(ls -A "$WORK/small")
    umount "$WORK/small"
    [ "$rc" = 2 ] && grep -q "cut.html: write failed: No space left on device" "$WORK/err" && [ -z "$left" ] ||
        fail "trend on a full disk: exit $rc $(cat "$WORK/err") left: $left"
else
    echo "(no tmpfs: the full-disk message of trend is not checked here)"
fi
# A signed p50 of -7 ns: refused by record (it had been recorded, and compare --history then
# refused the registry's own run list for that version).
signed neg.json 2026-11-12T02:00:00Z -7
expect 2 $R record neg.json
err_has "neg.json: latency.latency_ns.p50 is not a latency (a positive number of nanoseconds); not recorded"
one_line
# clock.overhead_ns is the absolute noise floor of compare's verdicts: 1e300 or a string had
# been taken as given (a 2x slowdown then read as "within the clock's resolution").
signed slow.json 2026-11-12T03:00:00Z 2000
expect 1 "$SG" compare h4.json slow.json --fail-on-regression
for ov in 1e300 '"fast"' -1 1000001; do
    signed slow_ov.json 2026-11-12T03:00:00Z 2000 "" "$ov"
    expect 2 "$SG" compare h4.json slow_ov.json --fail-on-regression
    err_has "slow_ov.json: clock.overhead_ns is not a clock's overhead (a number of nanoseconds from 0 to 1,000,000)"
    one_line
done
signed slow_ov.json 2026-11-12T03:00:00Z 2000 "" 25
expect 1 "$SG" compare h4.json slow_ov.json --fail-on-regression
# A move of exactly the noise floor is within it, as "moved by more than the floor" says and
# as the single-run floor has it (the repetitions' floor had judged it significant).
signed at100.json 2026-11-12T04:00:00Z 1000
signed at125.json 2026-11-12T05:00:00Z 1250
expect 0 "$SG" compare at100.json at125.json --noise-floor 0.25 --fail-on-regression
grep -q "p50 .*within the noise floor (25%)" "$WORK/out" || { cat "$WORK/out"; fail "a move of exactly the floor"; }
signed at126.json 2026-11-12T05:00:00Z 1260
expect 1 "$SG" compare at100.json at126.json --noise-floor 0.25 --fail-on-regression
# More machines (11) and versions (10) than the trend page draws apart (8 line styles, 8 colours): it
# says how many runs it leaves out and which versions share the grey, and counts only what it
# draws (it had said "230 runs, 34 flagged" while drawing 184 points and 30 marks).
"$SG" registry init --db many.db >/dev/null
expect 0 $R --db many.db create-model m --signer signer.pub.pem
for v in $(seq 1 10); do
    cp m1.h5 "mv$v.h5"; printf '%010d' "$v" >>"mv$v.h5" # (bytes past the HDF5 end: another digest)
    expect 0 $R --db many.db create-version m "mv$v.h5"
    SIGNED_REGISTRY=none signed "mv$v.json" "2026-11-20T00:$(printf %02d "$v"):00Z" 1000 "" "" "CPU A" "$(sha "mv$v.h5")"
    expect 0 $R --db many.db record "mv$v.json"
done
for mc in $(seq 1 10); do
    SIGNED_REGISTRY=none signed "mm$mc.json" "2026-11-21T00:$(printf %02d "$mc"):00Z" 1000 "" "" "CPU $mc" "$(sha mv1.h5)"
    expect 0 $R --db many.db record "mm$mc.json"
done
expect 0 "$SG" trend m --db many.db --html many.html
$PY - many.html <<'PY' || fail "the trend page with 11 machines and 10 versions"
import re, sys
h = open(sys.argv[1]).read()
assert "<b>3 runs of 3 more machines are not drawn</b>" in h, re.findall(r"<b>[^<]*</b>", h)
assert "<b>2 runs of versions past the first 8 share one grey</b> (v9, v10;" in h, re.findall(r"<b>[^<]*</b>", h)
assert "later versions</span>" in h
assert "(0 of 17 runs flagged)" in h, re.findall(r"\([0-9]+ of [0-9]+ runs[^)]*\)", h)
for sec in h.split("<section>")[1:]:
    assert len(re.findall("<circle ", sec)) == 17, len(re.findall("<circle ", sec))
PY
# A report gated against another registry (its audit head names an event this log does not
# hold) is not recorded here, as a transition refuses it (it had joined the history).
SIGNED_REGISTRY='{"audit_head": {"seq": 1, "hash": "'"$(printf 'ab%.0s' {1..32})"'"}}' \
    signed other_reg.json 2026-11-22T00:00:00Z 1000
expect 1 $R record other_reg.json
err_has "other_reg.json: the report was gated against a registry whose audit log held event 1"; one_line
# A report path that is not UTF-8 is refused (it had been stored, then dropped from every JSON
# answer, and the nightly could no longer find the report).
mkdir "$(printf 'nacht-\xe9t\xe9')"
signed utf.json 2026-11-22T01:00:00Z 1000
cp utf.json "$(printf 'nacht-\xe9t\xe9')/utf.json"
expect 2 $R record "$(printf 'nacht-\xe9t\xe9')/utf.json"
err_has "the report's path is not UTF-8"; one_line
# --history holds one version's runs: with v2's fast runs in it, v1's band reached down to
# them and a 2.5x slowdown of v1 read as "inside the history band" (runs without --version).
head -c 64 /dev/urandom >v2.bin
expect 0 $R create-version m v2.bin
for d in 1 2 3 4; do
    signed v2h$d.json "2026-11-2${d}T02:00:00Z" 40 "" "" "" "$(sha v2.bin)"
    expect 0 $R record v2h$d.json
done
"$SG" registry runs m --json >mixed.json
expect 2 "$SG" compare h4.json new.json --history mixed.json --fail-on-regression
err_has "--history: runs["; err_has "give one version's runs: registry runs NAME --version V"; one_line
# NEW re-encoded (the same signed statement, other bytes) is still NEW's own run: left out of
# the band (it had been counted, and the 2.9x slowdown read as unchanged).
jq . new.json >new_pretty.json
expect 1 "$SG" compare h4.json new_pretty.json --history with_new.json --fail-on-regression
grep -q "^history: 8 earlier runs (1 left out: NEW's own run" "$WORK/out" ||
    { cat "$WORK/out"; fail "re-encoded NEW's own run was not left out"; }
# The run times in the page's heading are escaped like every other string: a row edited by
# hand (or migrated as it was) had put markup, and script, in the page.
sqlite3 "$STAGEGATE_REGISTRY" "UPDATE runs SET run_at = '9999-12-31T23:59:59Z<img src=x onerror=alert(1)>' WHERE id = (SELECT max(id) FROM runs)"
expect 0 "$SG" trend m --html inj.html
grep -q "<img" inj.html && fail "a run's time reached the trend page as markup"
grep -q "to 9999-12-31T23:59:59Z&lt;img" inj.html || fail "the edited time is not shown escaped"
# A run dated in the future is refused, as a transition refuses such a report: it would have
# stayed the newest run (the nightly's point of comparison) until its date. Within the
# request skew (300 s) it is taken. (Every time above is in the past: a fixed date in the
# future would be refused from then on.)
signed f.json 2999-01-01T00:00:00Z 100
expect 2 $R record f.json; err_has "f.json: timestamp 2999-01-01T00:00:00Z is in the future"; one_line
signed f2.json "$(date -u -d '+2 min' +%Y-%m-%dT%H:%M:%SZ)" 100
expect 0 $R record f2.json
echo "run history: order, year range, future times, --history without NEW, FIFO, tiny figures, edited records, bad latencies, clock overhead, floor boundary, more machines and versions than drawn"
