#!/usr/bin/env bash
# End to end: scripts/nightly.sh on a registry of two models (alpha: v1 in Production and
# v2 in Staging; beta: v1 in Staging). Night 1 records first runs; night 2 compares each
# version with its previous run on the same fingerprint; night 3 points alpha v2 at a
# validation set it does badly on, so f1 crosses the policy's regression margin and the
# job exits 1. Each run carries the verdict of its nightly compare (first on night 1,
# regressed for alpha v2 on night 3). The trend pages are parsed: one chart per gated figure,
# one line per fingerprint, version changes marked, and the regressed marks on exactly the
# runs whose stored verdict is regressed. The run history is checked through the CLI.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
SG=$STAGEGATE_BIN
NIGHTLY=$STAGEGATE_SOURCE_DIR/scripts/nightly.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
MK="$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py"

mkdir reg
$PY "$MK" --out reg/val_a.h5 --task binary --rows 1500 --features 8 --seed 1 --fit logreg --fit-rows 1500 \
    --fit-seed 1 --model-out a1.h5 >/dev/null
$PY "$MK" --task binary --features 8 --seed 1 --fit logreg --fit-rows 1200 --fit-seed 2 --model-out a2.h5 >/dev/null
# Same features, another teacher: alpha's models are close to chance on it.
$PY "$MK" --out reg/val_other.h5 --task binary --rows 1500 --features 8 --seed 7 >/dev/null
$PY "$MK" --out reg/val_b.h5 --task binary --rows 1500 --features 12 --seed 3 --fit logreg --fit-rows 1500 \
    --fit-seed 3 --model-out b1.h5 >/dev/null
for k in signer alice; do "$SG" keygen --out $k >/dev/null; done
cat > reg/policy.json <<'JSON'
{
  "metrics": {
    "accuracy": {"threshold": 0.3},
    "f1": {"threshold": 0.2, "max_relative_regression": 0.05, "optional": true}
  },
  "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 700}
}
JSON
export STAGEGATE_REGISTRY=$T/reg/registry.db
R="$SG registry"
# Admission into Staging is gated with a policy of absolute limits only: the nightly's
# policy compares with a baseline, and the registry takes such a report only when it was
# gated against what is in Production (alpha v3 below, far worse than v1, would be kept out,
# and this test is about the nightly finding what an admission gate let through).
cat > reg/admit.json <<'JSON'
{"metrics": {"accuracy": {"threshold": 0.3}},
 "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 700}}
JSON
gate() { "$SG" gate --model "$1" --data "$2" --policy reg/admit.json --key signer.key.pem --out "$3" --cpus 0 >/dev/null; }
$R create-model alpha --signer signer.pub.pem --promoter Production=alice.pub.pem >/dev/null
$R create-model beta --signer signer.pub.pem --promoter Production=alice.pub.pem >/dev/null
[ "$($R create-version alpha a1.h5)" = 1 ] && [ "$($R create-version alpha a2.h5)" = 2 ] || fail "alpha versions"
[ "$($R create-version beta b1.h5)" = 1 ] || fail "beta version"
gate a1.h5 reg/val_a.h5 ra1.json && gate a2.h5 reg/val_a.h5 ra2.json && gate b1.h5 reg/val_b.h5 rb1.json ||
    fail "setup gates did not pass"
$R transition alpha 1 Staging --report ra1.json >/dev/null
$R transition alpha 1 Production --as alice.key.pem >/dev/null
$R transition alpha 2 Staging --report ra2.json >/dev/null
$R transition beta 1 Staging --report rb1.json >/dev/null
# Tags are relative to the registry's directory (docs/nightly.md).
$R set-tag alpha 1 dataset val_a.h5 && $R set-tag alpha 1 policy policy.json
$R set-tag alpha 2 dataset val_a.h5 && $R set-tag alpha 2 policy policy.json
# beta's set has a backslash in its name: the job's version list (jq @tsv) writes it as
# "\\", which had reached the gate as the name of no file.
cp reg/val_b.h5 'reg/val\b.h5'
$R set-tag beta 1 dataset 'val\b.h5' && $R set-tag beta 1 policy policy.json

night() { # night N EXPECTED_EXIT...: runs the job, output in nightN.txt
    local n=$1 rc=0; shift
    STAGEGATE_BIN=$SG bash "$NIGHTLY" --db reg/registry.db --key signer.key.pem --out "night out" --cpus 0 \
        >"night$n.txt" 2>"night$n.err" </dev/null || rc=$?
    for want in "$@"; do [ "$rc" = "$want" ] && return 0; done
    cat "night$n.txt" "night$n.err" >&2
    fail "night $n exited $rc, wanted one of $*"
}
# The output directory's name holds a space (so do the report paths the registry records);
# `out` is a link to it for the checks below.
mkdir "night out" && ln -s "night out" out
unset STAGEGATE_PROGRESS
night 1 0
grep -q "3 version(s), 0 regressed, 0 gate(s) failed, 0 error(s)" night1.txt || { cat night1.txt; fail "night 1 summary"; }
[ "$(grep -c 'first run on fingerprint' night1.txt)" = 3 ] || fail "night 1 should have no previous runs"
[ -s night1.err ] && { cat night1.err; fail "progress or errors on stderr although it is not a terminal"; }

# Night 2: same models, same data. Metrics are identical; latency may or may not move on a
# shared machine, so either exit is right, but every version must have been compared.
# Progress forced on (as on a terminal): stderr shows version i of n with elapsed time and an
# ETA; stdout stays the plain per-version lines.
STAGEGATE_PROGRESS=1 night 2 0 1
grep -q '\[1/3\] .*[0-9]s elapsed' night2.err && grep -q '\[3/3\] .*ETA [0-9]*s' night2.err ||
    { cat -v night2.err; fail "night 2 shows no progress on stderr"; }
! grep -q $'\r\|\033' night2.txt || { cat -v night2.txt; fail "progress leaked into stdout"; }
[ "$(ls out/compare/*-v[0-9].txt | wc -l)" = 3 ] || fail "night 2 did not compare all three versions"
# One dated file per night and version, and NAME-vN.txt a link to the newest.
for f in out/compare/*-v[0-9].txt; do
    b=$(basename "$f" .txt)
    [ -L "$f" ] && [[ "$(readlink "$f")" =~ ^$b-[0-9]{8}T[0-9]{6}Z\.txt$ ]] ||
        fail "$f is not a link to a dated comparison ($(readlink "$f"))"
done
[ "$(ls out/compare/*-v[0-9]-*Z.txt | wc -l)" = 3 ] || fail "night 2 did not write one dated comparison per version"
# Both reports in a comparison are named by absolute path.
awk '/^(OLD|NEW)  /{ n++; if ($3 !~ /^\//) bad=1 } END { exit bad || n != 2 }' out/compare/alpha-v1.txt ||
    { cat out/compare/alpha-v1.txt; fail "compare paths are not all absolute"; }
grep -q "nothing regressed since the previous run\|REGRESSED" night2.txt || fail "night 2 compare lines"
for f in out/compare/*-v[0-9].txt; do
    grep -Eq "^  (accuracy|f1) " "$f" || { cat "$f"; fail "$f lists no metrics"; }
    ! grep -Eq "^  (accuracy|f1) .*REGRESSED" "$f" || { cat "$f"; fail "identical metrics reported as regressed"; }
done

# Night 3: alpha v2 on a set it does badly on: f1 drops far past the 5% margin -> exit 1.
$R set-tag alpha 2 dataset val_other.h5
night 3 1
grep -q "alpha v2 (Staging): REGRESSED" night3.txt || { cat night3.txt; fail "night 3 did not flag alpha v2"; }
grep -Eq "^  f1 .*REGRESSED" out/compare/alpha-v2.txt || { cat out/compare/alpha-v2.txt; fail "f1 not flagged"; }

# History: 3 runs per version, one fingerprint, oldest first, figures recorded.
"$SG" registry runs alpha --json > runs_alpha.json
"$SG" registry runs alpha --version 2 --limit 2 --json > runs_a2.json
"$SG" registry runs beta > runs_beta.txt
[ "$(wc -l < runs_beta.txt)" = 3 ] || { cat runs_beta.txt; fail "beta should list 3 runs"; }
$PY - runs_alpha.json runs_a2.json <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
runs = doc["runs"]
assert doc["model"] == "alpha" and len(runs) == 6, len(runs)
assert sorted(r["version"] for r in runs) == [1, 1, 1, 2, 2, 2]
assert len({r["fingerprint"] for r in runs}) == 1 and len(runs[0]["fingerprint"]) == 16
assert [r["id"] for r in runs] == sorted(r["id"] for r in runs), "not oldest first"
for r in runs:
    assert r["stage"] == ("Production" if r["version"] == 1 else "Staging"), r
    assert r["figures"]["gated"] == ["accuracy", "f1"], r["figures"]
    assert r["figures"]["latency_ns"]["p99"] >= r["figures"]["latency_ns"]["p50"] > 0
    assert r["machine"]["cores"] >= 1 and r["machine"]["id"] == r["fingerprint"]
    assert len(r["report_sha256"]) == 64 and r["report_path"].endswith(".intoto.json")
a2 = json.load(open(sys.argv[2]))["runs"]
assert [r["version"] for r in a2] == [2, 2] and a2[-1]["id"] == max(r["id"] for r in runs if r["version"] == 2)
# Night 3's run of v2 has a far lower f1 than night 2's.
assert a2[1]["figures"]["metrics"]["f1"] < 0.95 * a2[0]["figures"]["metrics"]["f1"], a2
# The nightly verdicts stored with the runs: night 1 had nothing to compare with, night 3's
# run of v2 regressed (f1), every other night was compared (latency may move either way).
for v in (1, 2):
    mine = [r for r in runs if r["version"] == v]
    assert [r["verdict"] for r in mine][0] == "first", mine
    assert all(r["verdict"] in ("regressed", "improved", "unchanged") for r in mine[1:]), mine
assert a2[1]["verdict"] == "regressed", a2[1]
PYEOF
# Each dated comparison is kept as JSON next to its text; night 3's of alpha v2 says regressed.
for f in out/compare/*-v[0-9]-*Z.txt; do [ -s "${f%.txt}.json" ] || fail "no JSON next to $f"; done
[ "$(jq -s 'map(.regressed) | any' out/compare/alpha-v2-*Z.json)" = true ] || fail "no regressed compare JSON for alpha v2"

# Trend pages: one chart per gated figure (p50, p99, accuracy, f1), one series, v1/v2 marked.
for m in alpha beta; do [ -s out/trend/$m.html ] || fail "no trend page for $m"; done
"$SG" registry runs beta --json > runs_beta.json
$PY - out/trend/alpha.html out/trend/beta.html runs_alpha.json runs_beta.json <<'PYEOF'
import json, sys
from html.parser import HTMLParser

class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.charts, self.cur, self.external = [], None, []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "link", "img", "iframe") or "src" in a or (tag == "a" and "href" in a):
            self.external.append(tag)
        if tag == "svg" and a.get("class") == "chart":
            self.cur = {"figure": a["data-figure"], "lines": [], "circle": 0, "version": 0,
                        "points": {}, "marks": []}
            self.charts.append(self.cur)
        elif self.cur is not None and tag == "polyline":
            self.cur["lines"].append((a["data-fingerprint"], a["data-version"], a["stroke"],
                                      len(a["points"].split())))
        elif self.cur is not None and tag == "circle":
            self.cur["circle"] += 1
            self.cur["points"][int(a["data-run"])] = a["data-verdict"]
        elif self.cur is not None and tag == "path" and a.get("class") == "regressed":
            self.cur["marks"].append(int(a["data-run"]))
        elif self.cur is not None and tag == "line" and a.get("class") == "version":
            self.cur["version"] += 1
    def handle_endtag(self, tag):
        if tag == "svg":
            self.cur = None

for path, versions_marked, runs_path in ((sys.argv[1], True, sys.argv[3]), (sys.argv[2], False, sys.argv[4])):
    verdicts = {r["id"]: r["verdict"] or "" for r in json.load(open(runs_path))["runs"]}
    regressed = {i for i, v in verdicts.items() if v == "regressed"}
    p = Page()
    p.feed(open(path, encoding="utf-8").read())
    figs = [c["figure"] for c in p.charts]
    assert figs == ["latency.p50", "latency.p99", "metric.accuracy", "metric.f1"], (path, figs)
    assert not p.external, (path, p.external)  # self-contained
    assert 'class="legend"' in open(path, encoding="utf-8").read(), path
    for c in p.charts:
        # One fingerprint, one line per version in the version's own colour, so alpha's v1
        # (Production) and v2 (Staging), run side by side, do not zigzag.
        assert len({fp for fp, _, _, _ in c["lines"]}) == 1, c
        assert len({colour for _, _, colour, _ in c["lines"]}) == len(c["lines"]), c
        assert sorted(v for _, v, _, _ in c["lines"]) == (["1", "2"] if versions_marked else ["1"]), c
        assert all(npts == 3 for *_, npts in c["lines"]), c
        assert c["circle"] == (6 if versions_marked else 3), c
        # v2 first ran on night 1: one mark, not one at every alternation of v1 and v2.
        assert c["version"] == (1 if versions_marked else 0), c
        # Regressed marks on exactly the runs stored as regressed, one each, on every chart;
        # each point carries its run's stored verdict.
        assert c["points"] == verdicts, (path, c["figure"], c["points"], verdicts)
        assert sorted(c["marks"]) == sorted(regressed), (path, c["figure"], c["marks"], regressed)
    if versions_marked:
        assert regressed, "alpha v2's night 3 should be marked regressed"
print("trend pages ok")
PYEOF
# Night 4: a new version enters Staging, one trained on another teacher (close to chance on
# val_a: its f1 is far below v2's). Its first run is compared with the last run of the
# version it replaced there (v2) on this fingerprint, not skipped, and regresses; v1's
# earlier runs (3 of them by now) are handed to compare as its noise band.
$PY "$MK" --task binary --features 8 --seed 7 --fit logreg --fit-rows 1100 --fit-seed 5 --model-out a3.h5 >/dev/null
gate a3.h5 reg/val_a.h5 ra3.json || fail "alpha v3 gate"
[ "$($R create-version alpha a3.h5)" = 3 ] || fail "alpha v3"
# The nightly's own policy, gated against Production, keeps v3 out of Staging.
rc=0; "$SG" gate --model a3.h5 --data reg/val_a.h5 --policy reg/policy.json --key signer.key.pem \
    --baseline a1.h5 --out ra3_vs_prod.json --cpus 0 >/dev/null || rc=$?
[ "$rc" = 1 ] || fail "v3 against Production: exit $rc"
rc=0; $R transition alpha 3 Staging --report ra3_vs_prod.json >/dev/null 2>err || rc=$?
[ "$rc" = 1 ] && grep -q "report result is FAILED" err || fail "v3's failed gate let it in: $(cat err)"
# ... and so does the same policy gated without a baseline (its f1 rule then skipped).
"$SG" gate --model a3.h5 --data reg/val_a.h5 --policy reg/policy.json --key signer.key.pem \
    --out ra3_nobase.json --cpus 0 >/dev/null || fail "v3 without a baseline"
rc=0; $R transition alpha 3 Staging --report ra3_nobase.json >/dev/null 2>err || rc=$?
[ "$rc" = 1 ] && grep -q "gated without a baseline, and its policy compares with one" err ||
    fail "a report without the baseline its policy compares with let v3 in: exit $rc $(cat err)"
$R transition alpha 3 Staging --report ra3.json >/dev/null
$R set-tag alpha 3 dataset val_a.h5 && $R set-tag alpha 3 policy policy.json
$R set-tag alpha 2 dataset val_a.h5 # back on its own set: the reference v3 is judged against
night 4 1
grep -q "alpha v3 (Staging): first run of v3 on fingerprint [0-9a-f]*; compared with v2, the version it replaced in Staging" night4.txt ||
    { cat night4.txt; fail "night 4 did not compare alpha v3 with v2"; }
! grep -q "alpha v3 (Staging): first run on fingerprint" night4.txt || fail "v3 treated as having nothing to compare"
[ -s out/compare/alpha-v3.txt ] || fail "no comparison written for alpha v3"
grep -q "alpha v3 (Staging): REGRESSED" night4.txt || { cat night4.txt; fail "v3's f1 drop was not flagged"; }
# Night 5: v3's second night. Against its own first night nothing changed; until it has a noise
# band of its own (3 earlier runs) it is also compared with v2, so the regression is flagged
# again instead of becoming v3's baseline (it had read "nothing regressed since the previous
# run" from the second night on).
night 5 1
grep -q "alpha v3 (Staging): night 2 of its first 3 on fingerprint [0-9a-f]*; also compared with v2, the version it replaced in Staging" night5.txt ||
    { cat night5.txt; fail "night 5 did not also compare alpha v3 with v2"; }
grep -q "alpha v3 (Staging): REGRESSED" night5.txt || { cat night5.txt; fail "night 5 forgot v3's regression"; }
ls out/compare/alpha-v3-vs-v2-*.json >/dev/null || fail "no comparison file against v2"
[ "$($R runs alpha --version 3 --json | jq -r '.runs[-1].verdict')" = regressed ] ||
    fail "night 5's stored verdict: $($R runs alpha --version 3 --json | jq -c '[.runs[].verdict]')"
# v1, which has its own band, is compared with its own runs only.
! grep -q "alpha v1 (Production): night" night5.txt || fail "v1 compared with another version"
grep -q "alpha v1 (Production): nothing regressed since the previous run" night5.txt || { cat night5.txt; fail "v1 on night 5"; }
# The policy gives min_queries and no duration_s: 700 queries take well under a millisecond, too
# short for a latency verdict (identical runs of such length were flagged on a busy machine).
# The line says latency was not judged, and the comparison says why on every percentile.
grep -q "alpha v1 (Production): nothing regressed since the previous run (latency not judged: repetitions timed for [0-9.]* ms, under the 1 s a verdict needs; set the policy's duration_s)" night5.txt ||
    { cat night5.txt; fail "night 5 does not say v1's latency was not judged"; }
[ "$(grep -c "not judged: repetitions timed for" out/compare/alpha-v1.txt)" = 4 ] ||
    { cat out/compare/alpha-v1.txt; fail "alpha v1's comparison does not say why latency was not judged"; }
grep -q "Time each repetition for at least 1 s" out/compare/alpha-v1.txt ||
    { cat out/compare/alpha-v1.txt; fail "alpha v1's comparison does not say how long a repetition must be"; }
[ "$(jq '.runs | length' out/compare/alpha-v1.history.json)" = 4 ] || fail "alpha v1's noise band should hold its 4 earlier runs"
jq -e '[.runs[].version] | all(. == 1)' out/compare/alpha-v1.history.json >/dev/null || fail "band mixes versions"
grep -q "^  p50    history band .* over 4 earlier runs; NEW" out/compare/alpha-v1.txt ||
    { cat out/compare/alpha-v1.txt; fail "alpha v1's comparison does not show its noise band"; }
# Night 6: the report of alpha v1's last night, in the output directory, was replaced by
# another file (an unsigned copy whose f1 is far lower, which would hide a drop). The registry
# recorded the report's SHA-256: the nightly refuses to compare with anything else.
last=$($R runs alpha --version 1 --json | jq -r '.runs[-1].report_path')
case "$last" in *"night out/reports/"*) ;; *) fail "recorded report path: $last" ;; esac
$PY - "$last" <<'PYEOF'
import base64, json, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
st["predicate"]["metrics"]["f1"] = 0.30
env["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
json.dump(env, open(sys.argv[1], "w"))
PYEOF
night 6 2
grep -q "^alpha v1: ERROR: .*alpha-v1-.*\.intoto\.json is not the report the registry recorded (sha256 [0-9a-f]*, recorded [0-9a-f]*); not compared" night6.err ||
    { cat night6.txt night6.err; fail "night 6 compared with a replaced report"; }
! grep -q "alpha v1 (Production): nothing regressed" night6.txt || fail "night 6 judged v1 against the replaced report"
grep -q "beta v1 (Staging): nothing regressed" night6.txt || { cat night6.txt; fail "night 6 stopped at the error"; }
# Night 8: someone with write access records a run of beta v1 signed by a key of their own
# (record --pubkey takes any key). It is the newest run, but not the model's signer's nor the
# nightly's own key's: beta v1 is compared with its last run by the nightly's key, and the
# other run is in neither the comparison nor the noise band.
"$SG" keygen --out mallory >/dev/null
"$SG" gate --model b1.h5 --data 'reg/val\b.h5' --policy reg/policy.json --key mallory.key.pem \
    --out mallory.json --cpus 0 >/dev/null || fail "mallory's gate of beta v1"
$R record mallory.json --pubkey mallory.pub.pem >/dev/null || fail "record --pubkey mallory"
# ... and 20 more like it, all newer than beta's own runs (copies of its row, each with its
# own digests, written straight into the registry: 20 more signed reports would only cost
# time): had they counted towards the nightly's 21-run window, beta v1 would have had no
# earlier run of its own.
sqlite3 reg/registry.db "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
  INSERT INTO runs (model_name, version, stage, fingerprint, machine, run_at, recorded_at,
                    report_sha256, report_path, result, signer_key_id, scenario, figures, payload_sha256)
  SELECT r.model_name, r.version, r.stage, r.fingerprint, r.machine, r.run_at, r.recorded_at,
         printf('%064x', n.i), r.report_path, r.result, r.signer_key_id, r.scenario, r.figures,
         printf('%063x', n.i) || 'f'
  FROM runs r, n WHERE r.id = (SELECT max(id) FROM runs)" || fail "copying mallory's run"
[ "$($R runs beta --json | jq -c '[(.runs[-21:] | map(.signer_trusted) | any), (.runs[:-21] | map(.signer_trusted) | all)]')" = '[false,true]' ] ||
    fail "beta's runs: $($R runs beta --json | jq -c '[.runs[] | [.id, .signer_trusted]]')"
trusted_last=$($R runs beta --json | jq -r '[.runs[] | select(.signer_trusted)][-1].report_path')
night 8 0 1
grep -q "beta v1 (Staging): nothing regressed" night8.txt || { cat night8.txt night8.err; fail "night 8: beta v1"; }
grep "^OLD  " out/compare/beta-v1.txt | grep -F " $trusted_last" >/dev/null ||
    { cat out/compare/beta-v1.txt; fail "night 8 compared beta v1 with another run than its last trusted one ($trusted_last)"; }
grep -q "mallory" out/compare/beta-v1.txt && fail "night 8 compared with mallory's run"
jq -e '[.runs[] | .signer_trusted] | all and length >= 3' out/compare/beta-v1.history.json >/dev/null ||
    fail "mallory's run in beta v1's noise band: $(jq -c '[.runs[] | [.id, .signer_trusted]]' out/compare/beta-v1.history.json)"
# Night 7 writes to a nearly full disk (as root: a 1 MiB tmpfs with 24 KiB left): whatever
# fails, no output is left cut short (a compare JSON of exactly 4,096 bytes had been left
# where the trend page and the next night read it) and no part file stays behind.
if [ "$(id -u)" = 0 ] && mkdir full && mount -t tmpfs -o size=1m tmpfs full 2>/dev/null; then
    trap 'umount "$T/full" 2>/dev/null || true; rm -rf "$T"' EXIT
    for left in 24 48; do
        rm -rf full/out full/pad
        avail=$(df --output=avail -k full | tail -1)
        head -c $(( (avail - left) * 1024 )) /dev/zero >full/pad 2>/dev/null || true
        rc=0
        STAGEGATE_BIN=$SG bash "$NIGHTLY" --db reg/registry.db --key signer.key.pem --out full/out \
            --cpus 0 >night7.txt 2>night7.err </dev/null || rc=$?
        [ "$rc" = 2 ] || { cat night7.txt night7.err; fail "night 7 ($left KiB free) exited $rc, wanted 2"; }
        [ -z "$(find full/out -name '*.part')" ] || fail "night 7 ($left KiB free) left part files"
        [ -z "$(find full/out -xtype l)" ] || fail "night 7 ($left KiB free) left links to nothing: $(find full/out -xtype l)"
        find full/out -name '*.json' | while read -r j; do
            jq -e . "$j" >/dev/null 2>&1 || fail "night 7 ($left KiB free) left $j cut short ($(stat -c %s "$j") bytes)"
        done
    done
    umount full
else
    echo "(no tmpfs: the nightly on a full disk is not checked here)"
fi
echo "nightly e2e ok"
