#!/bin/bash
# models:/ resolution by version, stage, alias and latest; a changed artifact is an error.
. "$(dirname "$0")/lib.sh"
keys signer alice
R="$SG registry"
expect 0 $R create-model churn --signer signer.pub.pem --promoter Production=alice.pub.pem
real_models 3
for i in 1 2 3; do $R create-version churn m$i.h5 >/dev/null; done
gate_report signer models:/churn/2 r2.json
expect 0 $R transition churn 2 Staging --report r2.json
expect 0 $R transition churn 2 Production --as alice.key.pem
expect 0 $R set-alias churn champion 2
expect 0 $R set-alias churn challenger 3
expect 0 $R set-tag churn 3 team risk

check() { expect 0 $R resolve "$1"; [ "$(cat "$WORK/out")" = "$WORK/$2" ] || fail "$1 -> $(cat "$WORK/out"), wanted $2"; }
check models:/churn/1 m1.h5
check models:/churn/3 m3.h5
check models:/churn/Production m2.h5
check models:/churn/production m2.h5
check models:/churn/latest m3.h5
check models:/churn/LATEST m3.h5 # any case, as MLflow reads models:/ URIs
check models:/churn@champion m2.h5
check models:/churn@challenger m3.h5
# from another directory: paths are stored absolute
(cd / && "$SG" registry resolve models:/churn@champion) | grep -qx "$WORK/m2.h5" || fail "resolve from /"
$R resolve models:/churn/Production --json | $PY -c '
import json, sys; d = json.load(sys.stdin)
assert d["version"] == 2 and d["stage"] == "Production" and len(d["artifact_sha256"]) == 64, d'

expect 2 $R resolve models:/churn/Staging
err_has "no version of churn is in stage 'Staging'"
expect 2 $R resolve models:/churn/9
# past 32 bits: no version matches, on either backend (PostgreSQL had failed the query on its
# 32-bit INTEGER: "value out of range for type integer")
for v in 2147483648 9223372036854775807; do
    expect 2 $R resolve "models:/churn/$v"
    err_has "no version of churn matches '$v'"
done
# runs of such a version: refused as not a version of the model (not a failed query)
expect 2 $R runs churn --version 2147483648
err_has "model 'churn' has no version 2147483648"
# a version has one spelling: "02" is not version 2 under a second name
for v in 02 002 0 99999999999999999999; do
    expect 2 $R resolve "models:/churn/$v"
    err_has "'$v' is not a version"
done
for v in 02 +2 " 2" 2.0 0; do
    expect 2 $R get churn "$v"
    err_has "VERSION '$v' is not a version"
    expect 2 $R set-alias churn champion "$v"
    err_has "VERSION '$v' is not a version"
    expect 2 $R runs churn --version "$v"
    err_has "--version '$v' is not a version"
    expect 2 "$SG" trend churn --version "$v" --html t.html
    err_has "--version '$v' is not a version"
done
expect 0 $R runs churn --version 2
expect 2 $R resolve models:/churn@nobody
expect 2 $R resolve models:/nosuch/1
err_has "no model named 'nosuch'"
expect 2 $R resolve models:/churn
expect 2 $R resolve models:/churn/1@x

# moving an alias and deleting it
expect 0 $R set-alias churn champion 3
check models:/churn@champion m3.h5
expect 0 $R delete-alias churn champion
expect 2 $R resolve models:/churn@champion

# tags in search; deleting a tag
$R search "tags.team = 'risk'" --json | $PY -c '
import json, sys; v = json.load(sys.stdin)["versions"]; assert [x["version"] for x in v] == [3], v'
expect 0 $R delete-tag churn 3 team
$R search "tags.team = 'risk'" --json | $PY -c '
import json, sys; v = json.load(sys.stdin)["versions"]; assert v == [], v'

# Any artifact may start with ONNX's first two bytes (0x08, then 1-127): 4096 random bytes do
# one time in 516. One that is not well-formed protobuf (here ir_version given twice, then
# noise) registers, and resolves, under its file's own SHA-256, as any other artifact does.
printf '\x08\x01\x08\x01' >odd.bin
head -c 4092 /dev/urandom >>odd.bin
expect 0 $R create-version churn odd.bin
$R resolve models:/churn/4 --json | $PY -c '
import hashlib, json, sys; d = json.load(sys.stdin)
want = hashlib.sha256(open("odd.bin", "rb").read()).hexdigest()
assert d["version"] == 4 and d["artifact_sha256"] == want, (d, want)'

echo tampered >> m2.h5
expect 2 $R resolve models:/churn/Production
err_has "changed on disk since registration"
rm m3.h5
expect 2 $R resolve models:/churn/3
err_has "artifact cannot be read"
expect 0 $R verify-log

# models:/ is resolved in a child process (the registry stays out of the gate's memory
# figure); a SIGTERM to stagegate while a locked registry holds the child up ends the child
# too. It had been left waiting out the 15 s busy timeout, its parent gone.
if [ "$BACKEND" = sqlite ]; then
    "$PY" - "$STAGEGATE_REGISTRY" 20 >lock.out <<'PYEOF' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA locking_mode=EXCLUSIVE")
c.execute("BEGIN EXCLUSIVE")
c.execute("CREATE TABLE IF NOT EXISTS lock_holder(x)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
PYEOF
    locker=$!
    for _ in $(seq 1 100); do grep -q locked lock.out 2>/dev/null && break; sleep 0.1; done
    "$SG" eval --model models:/churn/1 --data "$WORK/m1.h5" >/dev/null 2>&1 &
    sg=$!
    sleep 1
    kids=$(pgrep -P "$sg" || true)
    [ -n "$kids" ] || { kill "$locker"; fail "no child process resolving models:/churn/1"; }
    kill -TERM "$sg"
    wait "$sg" 2>/dev/null || true
    # alive: a process that is not a zombie (one killed waits for init to reap it)
    alive() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1; [ -n "$st" ] && [ "$st" != Z ]; }
    left=""
    for _ in $(seq 1 30); do
        left=""
        for k in $kids; do if alive "$k"; then left="$left $k"; fi; done
        [ -z "$left" ] && break
        sleep 0.1
    done
    kill "$locker" 2>/dev/null || true
    wait "$locker" 2>/dev/null || true
    [ -z "$left" ] || fail "the resolving child $left outlived its parent's SIGTERM"
fi
echo "resolve OK"
