#!/usr/bin/env bash
# gate's outputs (the signed report and its renderings) appear as one set or not at all.
# A rename that fails part way (the report's path is another user's file in a sticky
# directory, as /tmp is) had left the new HTML and JUnit beside the old signed report. Now
# each path is exchanged with what it held, and a failure swaps every one back: the paths
# hold exactly what they held, a path that held nothing holds nothing, and no temp file is
# left. Needs root (to act as another user); skipped otherwise.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
    echo "not root (or no user nobody): the other-user case is not checked here"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
cd "$T"
MK="$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py"
$PY "$MK" --out val.h5 --task binary --rows 500 --features 8 --seed 1 >/dev/null
$PY "$MK" --task binary --features 8 --seed 1 --fit logreg --fit-rows 400 --model-out m.h5 >/dev/null
echo '{"metrics": {"accuracy": {"threshold": 0.5}}}' > policy.json
"$STAGEGATE_BIN" keygen --out k >/dev/null
chown nobody k.key.pem k.pub.pem
chmod 644 val.h5 m.h5 policy.json
mkdir -m 1777 out # sticky, as /tmp
as_nobody() { runuser -u nobody -- "$@"; }
gate() { as_nobody "$STAGEGATE_BIN" gate --model m.h5 --data val.h5 --policy policy.json \
    --key k.key.pem --cpus 0 --out out/r.json --html out/r.html --junit out/r.xml "$@"; }

# 1. The report's path belongs to root: nobody may not replace it in a sticky directory.
echo "old report" > out/r.json
as_nobody sh -c 'echo "old html" > out/r.html'
rc=0; gate >g.out 2>g.err || rc=$?
[ "$rc" = 2 ] || { cat g.out g.err; fail "exit $rc, want 2"; }
[ "$(wc -l < g.err)" = 1 ] && grep -q "out/r.json: cannot write: Operation not permitted" g.err ||
    { cat g.err; fail "message"; }
[ "$(cat out/r.json)" = "old report" ] || fail "the report's path changed"
[ "$(cat out/r.html)" = "old html" ] || fail "the HTML was replaced although the report was not: $(head -c 80 out/r.html)"
[ ! -e out/r.xml ] || fail "a JUnit file appeared although the report did not"
[ "$(ls -A out | sort | tr '\n' ' ')" = "r.html r.json " ] || fail "files left: $(ls -A out)"

# 2. The same set where nobody may write every path: all three are new.
rm out/r.json
rc=0; gate >g.out 2>g.err || { cat g.out g.err; fail "gate with writable paths"; }
"$STAGEGATE_BIN" verify out/r.json --pubkey k.pub.pem >/dev/null || fail "the new report does not verify"
grep -q "<html" out/r.html && grep -q "<testsuite" out/r.xml || fail "renderings not written"
[ "$(ls -A out | sort | tr '\n' ' ')" = "r.html r.json r.xml " ] || fail "files left: $(ls -A out)"
echo "gate outputs set: ok"
