#!/usr/bin/env bash
# Attack: `bench models:/NAME/V` resolved the URI (hashing the artifact once), then opened
# the artifact again by path to load it, so a file swapped between the two reads was
# benchmarked under the registered name without its bytes ever being checked.
# Now bench reads the artifact once and checks those bytes against the registered digest
# before parsing them (as eval and gate do): the artifact is opened exactly once (counted
# with strace; the old code opened it twice), and an artifact modified after registration
# is exit 2 with one line naming the file and both digests.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
SG=$STAGEGATE_BIN
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
export STAGEGATE_REGISTRY=$T/registry.db
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v strace >/dev/null || fail "strace is not installed (scripts/deps.sh installs it)"

$PY "$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py" --out val.h5 --task binary --rows 500 \
    --features 8 --seed 4 --fit logreg --model-out m.h5 >/dev/null
"$SG" keygen --out signer >/dev/null
"$SG" registry create-model churn --signer signer.pub.pem >/dev/null
"$SG" registry create-version churn m.h5 >/dev/null
registered=$(sha256sum m.h5 | cut -c1-64)
BENCH=(bench --model models:/churn/1 --data val.h5 --scenario offline --duration 0.05
       --min-queries 1 --warmup 0)

# 1. The registered artifact loads, and is opened once.
# (LeakSanitizer cannot run under ptrace: off for this run of a sanitizer build.)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    strace -f -qq -e trace=open,openat,openat2 -o trace.txt "$SG" "${BENCH[@]}" >out.txt 2>err.txt ||
    { cat err.txt >&2; fail "bench of the registered artifact failed"; }
opens=$(grep -c "\"$T/m.h5\"" trace.txt || true)
[ "$opens" = 1 ] || { grep m.h5 trace.txt >&2; fail "bench opened the artifact $opens times, wanted 1"; }

# 2. Modified on disk after registration: refused before it is parsed, naming both digests.
$PY -c 'import h5py; f = h5py.File("m.h5", "r+"); f["layers/0/b"][0] += 1.0'
now=$(sha256sum m.h5 | cut -c1-64)
rc=0
"$SG" "${BENCH[@]}" >out.txt 2>err.txt || rc=$?
[ "$rc" = 2 ] || { cat err.txt >&2; fail "modified artifact: exit $rc, wanted 2"; }
[ "$(wc -l <err.txt)" = 1 ] || { cat err.txt >&2; fail "modified artifact: wanted one stderr line"; }
grep -qF "$T/m.h5" err.txt || fail "error does not name the file: $(cat err.txt)"
grep -qF "${now:0:12}" err.txt || fail "error does not name the loaded digest ${now:0:12}: $(cat err.txt)"
grep -qF "${registered:0:12}" err.txt ||
    fail "error does not name the registered digest ${registered:0:12}: $(cat err.txt)"
grep -qF "registered" err.txt || fail "error does not say which digest is registered: $(cat err.txt)"
echo "bench checks what it loaded through models:/ against the registered digest"
