#!/usr/bin/env bash
# Attack: a policy whose only check is an optional baseline check. Without a baseline the
# check is skipped, and the gate PASSED a model with f1 = 0. Now such a policy is refused at
# load (exit 2, one line naming the policy file), before any work and with no report; the
# same check with a threshold, or made non-optional, still gates.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
MK="$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py"
$PY "$MK" --out val.h5 --task binary --rows 2000 --features 8 --seed 1 >/dev/null
# A model trained on mislabelled rows: f1 near 0 on the validation set.
$PY "$MK" --task binary --features 8 --seed 1 --fit logreg --fit-rows 40 --fit-seed 3 \
    --label-noise 0.95 --model-out bad.h5 >/dev/null
"$STAGEGATE_BIN" keygen --out k >/dev/null
echo '{"metrics": {"f1": {"max_relative_regression": 0.05, "optional": true}}}' > anything.json
rc=0
"$STAGEGATE_BIN" gate --model bad.h5 --data val.h5 --policy anything.json --key k.key.pem \
    --out r.json > out.txt 2> err.txt || rc=$?
[ "$rc" = 2 ] || { cat out.txt err.txt; fail "optional-only policy: exit $rc, want 2"; }
grep -q "anything.json.*has no required check" err.txt || { cat err.txt; fail "message"; }
[ "$(wc -l < err.txt)" = 1 ] || { cat err.txt; fail "more than one line"; }
[ ! -e r.json ] || fail "a report was written"
# With a required check the same model is gated, and fails on its figures.
echo '{"metrics": {"f1": {"threshold": 0.5, "max_relative_regression": 0.05, "optional": true}}}' > real.json
rc=0
"$STAGEGATE_BIN" gate --model bad.h5 --data val.h5 --policy real.json --key k.key.pem \
    --out r.json > out.txt 2>&1 || rc=$?
[ "$rc" = 1 ] || { cat out.txt; fail "real policy: exit $rc, want 1 (FAILED)"; }
grep -q "gate FAILED" out.txt || { cat out.txt; fail "no FAILED verdict"; }
echo "policy that passes anything: refused"
