#!/bin/bash
# scripts/demo.sh end to end, in a temporary directory, with the binary under test
# (STAGEGATE_BIN: no package install, no build). Asserts the lifecycle with the registry's own
# `get --json` and `history --json`: v1 Archived after v2's promotion, back in Production after
# the rollback with v2 out of it, v3 never in Staging; and `verify-log` passes.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
SG=$STAGEGATE_BIN
DEMO=$STAGEGATE_SOURCE_DIR/scripts/demo.sh
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Any attempt to install packages or build would run one of these first and leave a trace.
mkdir guard
for tool in apt-get dpkg-query sudo cmake make; do
    printf '#!/bin/sh\necho "%s $*" >> %s/guard/called\nexit 1\n' "$tool" "$T" >"guard/$tool"
    chmod +x "guard/$tool"
done
export PATH=$T/guard:$PATH

# usage
"$DEMO" --help >help.txt || fail "--help exit $?"
grep -q -- "--out DIR" help.txt || fail "--help does not describe --out"
rc=0; "$DEMO" --bogus >out.txt 2>err.txt || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <err.txt)" = 1 ] || fail "--bogus: exit $rc, stderr $(cat err.txt)"
# a directory the demo did not make is never wiped
mkdir foreign
echo keep >foreign/precious
rc=0; "$DEMO" --out foreign >out.txt 2>err.txt || rc=$?
[ "$rc" = 2 ] || fail "foreign --out: exit $rc"
grep -q "not wiping it" err.txt || fail "foreign --out: $(cat err.txt)"
[ "$(cat foreign/precious)" = keep ] || fail "the demo touched a foreign directory"

# A previous demo's directory is wiped and recreated, and nothing beside it is touched.
mkdir -p out/logs
touch out/.stagegate-demo out/stale.txt
echo beside >sibling.txt
rc=0
"$DEMO" --out out >demo.out 2>demo.err || rc=$?
[ "$rc" = 0 ] || { cat demo.out demo.err >&2; fail "demo exit $rc"; }
[ ! -e guard/called ] || fail "the demo tried to install or build: $(cat guard/called)"
[ ! -e out/stale.txt ] || fail "the rerun did not wipe the previous output"
[ "$(cat sibling.txt)" = beside ] || fail "the demo touched a file beside its directory"
[ -e out/.stagegate-demo ] || fail "no demo marker"
grep -q "latency runs are SHORT" demo.out || fail "the demo does not say its latency runs are short"
grep -q "FAILED as expected: f1.max_relative_regression" demo.out || fail "v3's failed check not named"
grep -q "Verified OK" demo.out || fail "no openssl verification"
for f in v2.html v2.md v2.junit.xml v3.html v3.md v3.junit.xml registry.db; do
    [ -s "out/$f" ] || fail "out/$f missing"
    grep -qF "$f" demo.out || fail "the demo does not point at $f"
done
grep -q "<failure" out/v3.junit.xml || fail "v3's JUnit file records no failure"
! grep -q "<failure" out/v2.junit.xml || fail "v2's JUnit file records a failure"

# Final states, from the registry itself.
R="$SG registry --db out/registry.db"
stage() { $R --json get fraud-detector "$1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["stage"])'; }
[ "$(stage 1)" = Production ] || fail "v1 is $(stage 1) after the rollback, not Production"
[ "$(stage 2)" = Archived ] || fail "v2 is $(stage 2) after the rollback, not Archived"
[ "$(stage 3)" = None ] || fail "v3 is $(stage 3), not None"
$R --json get fraud-detector 3 | $PY -c 'import json,sys; assert json.load(sys.stdin)["validated"] is False' ||
    fail "v3 has a validation on record"
# The states the demo saw on the way, as `registry get --json` printed them then.
$PY - out/states <<'PY' || fail "intermediate states"
import json, os, sys
def stage(label, v):
    return json.load(open(os.path.join(sys.argv[1], label, f"v{v}.json")))["stage"]
assert [stage("v1-production", v) for v in (1, 2, 3)] == ["Production", "None", "None"]
assert [stage("v2-production", v) for v in (1, 2, 3)] == ["Archived", "Production", "None"]
assert [stage("v3-refused", v) for v in (1, 2, 3)] == ["Archived", "Production", "None"]
assert [stage("rollback", v) for v in (1, 2, 3)] == ["Production", "Archived", "None"]
PY
# The audit log tells the same story: v1 archived together with v2's promotion (adjacent
# events), v1 restored and v2 archived by the rollback, and v3 never entering Staging.
$R --json history fraud-detector >history.json
$PY - history.json <<'PY' || fail "history"
import json, sys
ev = json.load(open(sys.argv[1]))["events"]
acts = [(e["action"], e["version"], e["from_stage"], e["to_stage"]) for e in ev]
i = acts.index(("archive", 1, "Production", "Archived"))
assert acts[i + 1] == ("transition", 2, "Staging", "Production"), acts
j = acts.index(("rollback", 1, "Archived", "Production"))
assert ("rollback-archive", 2, "Production", "Archived") in acts[j - 1:j + 2], acts
assert j > i
assert not [a for a in acts if a[1] == 3 and a[3] == "Staging"], acts
assert [a[0] for a in acts if a[1] == 3] == ["create-version"], acts
PY
$R verify-log >verify-log.out || fail "verify-log exit $?"
grep -q "audit log verified" verify-log.out || fail "verify-log: $(cat verify-log.out)"

# The reports the demo left are what it says they are.
"$SG" verify out/v2.intoto.json --pubkey out/ci.pub.pem --model out/v2.h5 >/dev/null ||
    fail "v2's report does not verify"
rc=0; "$SG" verify out/v3.intoto.json --pubkey out/ci.pub.pem --model out/v3.h5 >v3.verify || rc=$?
[ "$rc" = 1 ] && grep -q "result: FAILED" v3.verify || fail "v3's report: exit $rc, $(cat v3.verify)"
rc=0; "$SG" verify out/v3-edited.intoto.json --pubkey out/ci.pub.pem >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "the edited report: exit $rc"
echo "demo OK"
