#!/bin/bash
# 16 processes promote 16 different versions to Production at once. Afterwards exactly one
# version is in Production, every attempt either succeeded (serialized by the write lock,
# archiving the previous one) or failed with a one-line error, and the audit chain verifies.
. "$(dirname "$0")/lib.sh"
keys signer alice
R="$SG registry"
N=16
expect 0 $R create-model race --signer signer.pub.pem --promoter Production=alice.pub.pem
real_models $N
for i in $(seq 1 $N); do
    $R create-version race m$i.h5 >/dev/null
    gate_report signer models:/race/$i r$i.json
    expect 0 $R transition race "$i" Staging --report r$i.json
done
pids=()
for i in $(seq 1 $N); do
    ( rc=0; "$SG" registry transition race "$i" Production --as alice.key.pem >o$i 2>e$i || rc=$?; echo $rc > rc$i ) &
    pids+=($!)
done
wait "${pids[@]}"
ok=0
for i in $(seq 1 $N); do
    rc=$(cat rc$i)
    case $rc in
    0) ok=$((ok + 1)) ;;
    1|2) [ "$(wc -l < e$i)" = 1 ] || fail "attempt $i failed without a one-line error: $(cat e$i)" ;;
    *) fail "attempt $i exited $rc: $(cat e$i)" ;;
    esac
done
[ $ok -ge 1 ] || fail "no attempt succeeded"
inprod=$(q "SELECT count(*) FROM model_versions WHERE model_name = 'race' AND stage = 'Production'")
[ "$inprod" = 1 ] || fail "$inprod versions in Production"
# every successful promotion is one transition event; all but the last were archived again
promos=$(q "SELECT count(*) FROM audit_log WHERE model_name = 'race' AND action = 'transition' AND to_stage = 'Production'")
archives=$(q "SELECT count(*) FROM audit_log WHERE model_name = 'race' AND action = 'archive'")
[ "$promos" = "$ok" ] || fail "$ok successes but $promos promotion events"
[ "$archives" = $((ok - 1)) ] || fail "$ok successes but $archives automatic archives"
expect 0 $R verify-log
db_check

# Then 4 processes x 4 connections each promote 16 more versions at once (registry_load:
# one thread per connection). Exactly one version ends in Production, every promotion that
# succeeded archived its predecessor, and the chain verifies.
: "${SG_REG_LOAD:?}"
real_models 32
for i in $(seq 17 32); do
    $R create-version race m$i.h5 >/dev/null
    report signer m$i.h5 PASSED now r$i.json
    expect 0 $R transition race "$i" Staging --report r$i.json
done
before=$(q "SELECT count(*) FROM audit_log WHERE model_name = 'race' AND action = 'transition' AND to_stage = 'Production'")
pids=()
for p in 0 1 2 3; do
    "$SG_REG_LOAD" "$STAGEGATE_REGISTRY" race production 4 $((17 + 4 * p)) $((20 + 4 * p)) alice.key.pem >load$p.out 2>load$p.err &
    pids+=($!)
done
for p in 0 1 2 3; do wait "${pids[$p]}" || { cat load$p.err >&2; fail "load process $p failed"; }; done
ok2=$(cat load*.out | awk '{ s += $4 } END { print s }')
[ "$ok2" -ge 1 ] || fail "no promotion of the 4 x 4 race succeeded: $(cat load*.out)"
inprod=$(q "SELECT count(*) FROM model_versions WHERE model_name = 'race' AND stage = 'Production'")
[ "$inprod" = 1 ] || fail "$inprod versions in Production after the 4 x 4 race"
promos=$(q "SELECT count(*) FROM audit_log WHERE model_name = 'race' AND action = 'transition' AND to_stage = 'Production'")
[ $((promos - before)) = "$ok2" ] || fail "$ok2 successes but $((promos - before)) promotion events"
expect 0 $R verify-log
db_check
# First use of an empty database by many processes at once: every one creates its model (on
# PostgreSQL a few had failed with 'relation "stagegate_registry" already exists': the
# migration's re-read under its lock saw a stale catalog).
if [ "$BACKEND" = postgresql ]; then
    pg_new_db _first
    FIRST=$NEW_URI
else
    FIRST=$WORK/first.db
fi
pids=()
for i in $(seq 1 20); do
    ( rc=0; "$SG" registry --db "$FIRST" create-model first$i >/dev/null 2>fe$i || rc=$?; echo $rc > frc$i ) &
    pids+=($!)
done
wait "${pids[@]}"
for i in $(seq 1 20); do
    [ "$(cat frc$i)" = 0 ] || fail "concurrent first use: create-model first$i exited $(cat frc$i): $(cat fe$i)"
done
[ "$("$SG" registry --db "$FIRST" list | grep -c '^first')" = 20 ] || fail "concurrent first use: not 20 models"
"$SG" registry --db "$FIRST" verify-log >/dev/null || fail "concurrent first use: the log does not verify"
echo "concurrency OK: $ok of $N promotions by processes and $ok2 of 16 by 4 x 4 connections serialized, 1 in Production"
