# Shared setup for the registry script tests: a temp dir, keys, a registry path, helpers.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${SG_REG_MAKE_REPORT:?}"
SG=$STAGEGATE_BIN
MKREP=$SG_REG_MAKE_REPORT
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export STAGEGATE_REGISTRY=$WORK/registry.db
PY=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect CODE CMD...: runs CMD, checks its exit code, keeps stderr in $WORK/err.
expect() {
    local want=$1; shift
    local got=0
    "$@" >"$WORK/out" 2>"$WORK/err" || got=$?
    [ "$got" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "exit $got, wanted $want: $*"; }
}
# stderr of the last expect must contain a string
err_has() { grep -qF -- "$1" "$WORK/err" || { cat "$WORK/err" >&2; fail "stderr lacks: $1"; }; }
sha() { sha256sum "$1" | cut -c1-64; }
keys() { for k in "$@"; do "$SG" keygen --out "$k" >/dev/null; done; }
stage_of() { "$SG" registry get "$1" "$2" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["stage"])'; }
# report KEY ARTIFACT RESULT AGE OUT: a signed test-result report naming ARTIFACT's digest.
report() { "$MKREP" "$1.key.pem" "$(sha "$2")" "$3" "$4" "$5"; }
