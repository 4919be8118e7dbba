#!/usr/bin/env bash
# scripts/nightly.sh with two versions of one model side by side in Staging (it holds several):
# v1, close to chance on the set, and v2, a good model. v2 is compared with v1, its
# predecessor; v1, unchanged, is never compared with v2 beside it (it had been, as "the
# version it replaced", and flagged REGRESSED on its second night because v2 was better).
# Then one run at a time per output directory: a second run while the first holds the
# directory is refused (two at once had overwritten each other's signed reports).
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
$PY "$MK" --out reg/val.h5 --task binary --rows 1500 --features 8 --seed 1 --fit logreg --fit-rows 1500 \
    --fit-seed 1 --model-out good.h5 >/dev/null
# Same features, another teacher: close to chance on val.h5.
$PY "$MK" --task binary --features 8 --seed 7 --fit logreg --fit-rows 1100 --fit-seed 5 --model-out poor.h5 >/dev/null
"$SG" keygen --out signer >/dev/null
cat > reg/policy.json <<'JSON'
{
  "metrics": {
    "accuracy": {"threshold": 0.3},
    "f1": {"threshold": 0.2, "max_relative_regression": 0.05, "optional": true}
  },
  "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 700}
}
JSON
cat > reg/admit.json <<'JSON'
{"metrics": {"accuracy": {"threshold": 0.3}},
 "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 700}}
JSON
export STAGEGATE_REGISTRY=$T/reg/registry.db
R="$SG registry"
$R create-model alpha --signer signer.pub.pem >/dev/null
[ "$($R create-version alpha poor.h5)" = 1 ] && [ "$($R create-version alpha good.h5)" = 2 ] || fail "versions"
for v in 1 2; do
    m=$([ $v = 1 ] && echo poor.h5 || echo good.h5)
    "$SG" gate --model $m --data reg/val.h5 --policy reg/admit.json --key signer.key.pem --out r$v.json \
        --cpus 0 >/dev/null || fail "gate v$v"
    $R transition alpha $v Staging --report r$v.json >/dev/null
    $R set-tag alpha $v dataset val.h5 && $R set-tag alpha $v policy policy.json
done
[ "$($R search "stage = 'Staging'" --json | jq '.versions | length')" = 2 ] || fail "both versions in Staging"

night() { # night N EXPECTED_EXIT: runs the job, output in nightN.txt
    local rc=0
    STAGEGATE_BIN=$SG bash "$NIGHTLY" --db reg/registry.db --key signer.key.pem --out out --cpus 0 \
        >"night$1.txt" 2>"night$1.err" </dev/null || rc=$?
    [ "$rc" = "$2" ] || { cat "night$1.txt" "night$1.err" >&2; fail "night $1 exited $rc, wanted $2"; }
}
unset STAGEGATE_PROGRESS
night 1 0
grep -q "alpha v1 (Staging): first run on fingerprint [0-9a-f]*, nothing to compare" night1.txt ||
    { cat night1.txt; fail "night 1: v1 has no predecessor"; }
grep -q "alpha v2 (Staging): first run of v2 on fingerprint [0-9a-f]*; compared with v1, the version it replaced in Staging" night1.txt ||
    { cat night1.txt; fail "night 1: v2 is compared with v1, its predecessor beside it"; }
night 2 0
grep -q "alpha v1 (Staging): nothing regressed since the previous run" night2.txt ||
    { cat night2.txt; fail "night 2: unchanged v1"; }
if grep -q "alpha v1 (Staging): .*v2" night2.txt; then cat night2.txt; fail "night 2: v1 compared with v2, which is newer and beside it"; fi
grep -q "0 regressed" night2.txt || { cat night2.txt; fail "night 2 summary"; }
[ "$($R runs alpha --version 1 --json | jq -r '[.runs[].verdict] | join(",")')" = "first,unchanged" ] ||
    fail "v1's stored verdicts: $($R runs alpha --version 1 --json | jq -c '[.runs[].verdict]')"

# A run while another holds the output directory: exit 2, one line, nothing written or recorded.
runs_before=$($R runs alpha --json | jq '.runs | length')
reports_before=$(ls out/reports | wc -l)
rc=0
flock out/.nightly.lock env STAGEGATE_BIN="$SG" bash "$NIGHTLY" --db reg/registry.db --key signer.key.pem \
    --out out --cpus 0 >night3.txt 2>night3.err </dev/null || rc=$?
[ "$rc" = 2 ] || { cat night3.txt night3.err; fail "a second run at once: exit $rc"; }
grep -q "nightly.sh: another nightly run is writing to .*out (it holds .*\.nightly\.lock); not started" night3.err ||
    fail "a second run at once: $(cat night3.err)"
[ "$(wc -l <night3.err)" = 1 ] || fail "a second run at once: $(cat night3.err)"
[ "$($R runs alpha --json | jq '.runs | length')" = "$runs_before" ] || fail "the refused run recorded runs"
[ "$(ls out/reports | wc -l)" = "$reports_before" ] || fail "the refused run wrote reports"
# A nightly with a key of its own (--key and --pubkey, not a signer of the model): it compares
# a run only with runs signed by that key, since compare verifies both reports with it. The
# runs above, by the model's signer, had been its point of comparison: compare refused them
# (exit 1, nothing written), which the job took for a regression with an empty comparison.
"$SG" keygen --out nightly >/dev/null
for n in 4 5; do
    rc=0
    STAGEGATE_BIN=$SG bash "$NIGHTLY" --db reg/registry.db --key nightly.key.pem --pubkey nightly.pub.pem \
        --out out_own --cpus 0 >"night$n.txt" 2>"night$n.err" </dev/null || rc=$?
    [ "$rc" -le 1 ] && ! grep -q "does not verify\|ERROR" "night$n.err" ||
        { cat "night$n.txt" "night$n.err"; fail "night $n with the nightly's own key: exit $rc"; }
    for f in out_own/compare/*.txt; do [ -s "$f" ] || fail "night $n: $f is empty"; done
done
grep -q "alpha v1 (Staging): first run on fingerprint" night4.txt ||
    { cat night4.txt; fail "night 4: v1 compared with a run of another key"; }
grep -q "alpha v1 (Staging): nothing regressed since the previous run\|alpha v1 (Staging): REGRESSED" night5.txt ||
    { cat night5.txt; fail "night 5: v1 not compared with night 4's run"; }
grep "^OLD  " out_own/compare/alpha-v1.txt | grep -F "/out_own/reports/" >/dev/null ||
    { cat out_own/compare/alpha-v1.txt; fail "night 5 compared v1 with a run outside the nightly key's"; }
echo "nightly side by side OK"
