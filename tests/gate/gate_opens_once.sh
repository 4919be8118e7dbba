#!/usr/bin/env bash
# gate opens each input file once and passes the loaded objects between its stages:
# the candidate and baseline models are read, hashed and parsed once, the validation set is
# opened once (candidate eval, baseline eval and the latency rows all read that descriptor,
# and its digest is computed from it), and the policy and key are read once. Counted with
# strace over every open/openat/openat2 the process and its threads make.
# Then what that buys: a validation set renamed over while the gate runs changes nothing
# (the report names the bytes that were read), and one written in place is refused; so is a
# set another process holds open for writing, or opens for writing during the run (the read
# lease: writes through an already-dirty shared mapping move no ctime, so a set changed and
# changed back mid-run had kept its digest while the rows read differed).
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v strace >/dev/null || fail "strace is not installed (scripts/deps.sh installs it)"
MK="$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py"

$PY "$MK" --out val.h5 --task binary --rows 3000 --features 8 --seed 1 \
    --fit logreg --fit-rows 3000 --fit-seed 1 --model-out base.h5 >/dev/null
$PY "$MK" --task binary --features 8 --seed 1 --fit logreg --fit-rows 2000 --fit-seed 2 \
    --model-out cand.h5 >/dev/null
$PY "$MK" --out other.h5 --task binary --rows 3000 --features 8 --seed 7 >/dev/null
"$STAGEGATE_BIN" keygen --out k >/dev/null
policy() {
    cat > "$1" <<JSON
{
  "metrics": {"accuracy": {"threshold": 0.5}, "f1": {"max_relative_regression": 0.5}},
  "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 50, "duration_s": $2},
  "memory":  {"max_rss_mb": 4096},
  "shadow":  {"min_agreement": 0.5}
}
JSON
}
policy policy.json 0.2

# 1. One gate with a baseline and a latency run: count the opens of each input.
# LeakSanitizer cannot run under ptrace; the sanitizer build checks leaks in every other test.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq --seccomp-bpf -e trace=open,openat,openat2 -o trace.txt \
    "$STAGEGATE_BIN" gate --model cand.h5 --baseline base.h5 --data val.h5 \
    --policy policy.json --key k.key.pem --cpus 0 --out r.json > out.txt ||
    { cat out.txt; fail "gate under strace failed"; }
grep -q "gate PASSED" out.txt || { cat out.txt; fail "gate did not pass"; }
for f in cand.h5 base.h5 val.h5 policy.json k.key.pem; do
    n=$(grep -c "\"$f\"" trace.txt || true)
    [ "$n" = 1 ] || { grep "\"$f\"" trace.txt >&2; fail "$f opened $n times, not once"; }
done
# The count is not vacuous: eval outside the gate opens the set and the model too.
grep -q '"val.h5", O_RDONLY' trace.txt || fail "the trace does not show val.h5's open"

# The report's digests are of the files' bytes (computed independently here).
$PY - r.json <<'PYEOF'
import base64, hashlib, json, sys
st = json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
assert st["subject"][0]["digest"]["sha256"] == sha("cand.h5")
cfg = {c["annotations"]["role"]: c for c in st["predicate"]["configuration"]}
assert cfg["dataset"]["digest"]["sha256"] == sha("val.h5"), cfg["dataset"]
assert cfg["baseline"]["digest"]["sha256"] == sha("base.h5")
assert cfg["policy"]["digest"]["sha256"] == sha("policy.json")
PYEOF

# 2. and 3. The set changed while the gate ran, by a rename over its path or by a write in
#    place: refused with exit 2 and one line naming the file, and no report. (Reading went on
#    from the descriptor, so nothing mixed; the gate still will not sign a run whose input moved.)
policy slow.json 1
# Whether the kernel grants this process a read lease here (the file's owner, or root; a
# file system with leases): without one, the change time is the only check (docs/policy.md).
lease_ok=$($PY -c 'import fcntl,sys; f=open(sys.argv[1]); fcntl.fcntl(f, 1024, fcntl.F_RDLCK); print(1)' val.h5 2>/dev/null || true)
changed_midrun() {  # how, file
    cp val.h5 "$2"
    "$STAGEGATE_BIN" gate --model cand.h5 --data "$2" --policy slow.json --key k.key.pem \
        --cpus 0 --out "$2.json" > "$2.txt" 2>&1 &
    local pid=$!
    sleep 1.2
    case $1 in
        rename) cp other.h5 "$2.new" && mv "$2.new" "$2" ;;
        write) printf 'x' >> "$2" ;;
    esac
    local rc=0; wait $pid || rc=$?
    [ "$rc" = 2 ] || { cat "$2.txt"; fail "$1 mid-run: exit $rc, want 2"; }
    # with the lease, the writer's open waited for the gate, and the gate says why it refuses
    local want="the file was changed while it was read"
    [ "$1" = write ] && [ -n "$lease_ok" ] && want="another process opened the file for writing while it was read"
    grep -q "^stagegate: $2: $want" "$2.txt" || { cat "$2.txt"; fail "$1 mid-run: message"; }
    [ "$(grep -c . "$2.txt")" = 1 ] || { cat "$2.txt"; fail "$1 mid-run: more than one line"; }
    [ ! -e "$2.json" ] || fail "$1 mid-run: a report was written"
}
changed_midrun rename v.h5
changed_midrun write w.h5

# 4. The set is held writable and mapped by another process whose pages are already dirty,
#    so its writes during the run move neither mtime nor ctime; it flips every label while
#    the gate runs and puts them back before the end (the digest is then the original's).
#    Refused at open with one line, no report; and the same run without the writer passes.
if [ -n "$lease_ok" ]; then
    $PY - <<'PYEOF'
import h5py
with h5py.File("val.h5", "r") as s, h5py.File("c.h5", "w") as d:  # contiguous: /y at one offset
    for k in s:
        d.create_dataset(k, data=s[k][()])
PYEOF
    cp c.h5 m.h5
    $PY - m.h5 <<'PYEOF' > flip.out 2>&1 &
import mmap, os, sys, time, h5py, numpy as np
p = sys.argv[1]
with h5py.File(p, "r") as f:
    off, n, dt = f["y"].id.get_offset(), f["y"].shape[0], f["y"].dtype
fd = os.open(p, os.O_RDWR)
m = mmap.mmap(fd, 0)
y = np.ndarray(n, dtype=dt, buffer=m, offset=off)
orig = y.copy()
y[:] = orig  # dirty every page before the gate opens the file
open("ready", "w").close()
time.sleep(0.6)
y[:] = 1 - orig
time.sleep(1.0)
y[:] = orig
PYEOF
    flip=$!
    while [ ! -e ready ]; do sleep 0.05; done
    rc=0
    "$STAGEGATE_BIN" gate --model cand.h5 --baseline base.h5 --data m.h5 --policy slow.json \
        --key k.key.pem --cpus 0 --out m.json > m.txt 2>&1 || rc=$?
    wait $flip
    [ "$rc" = 2 ] || { cat m.txt; fail "a set held writable by another process: exit $rc, want 2"; }
    grep -q "^stagegate: m.h5: the file is open for writing by another process (or mapped writable" m.txt ||
        { cat m.txt; fail "held writable: message"; }
    [ "$(grep -c . m.txt)" = 1 ] || { cat m.txt; fail "held writable: more than one line"; }
    [ ! -e m.json ] || fail "held writable: a report was written"
    cmp -s m.h5 c.h5 || fail "the writer did not put the labels back"
    "$STAGEGATE_BIN" gate --model cand.h5 --baseline base.h5 --data m.h5 --policy policy.json \
        --key k.key.pem --cpus 0 --out m.json > m.txt 2>&1 || { cat m.txt; fail "the same set, no writer"; }
else
    echo "no read lease here: the held-writable case is not checked"
fi
echo "gate opens each input once: ok"
