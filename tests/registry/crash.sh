#!/bin/bash
# A process killed with SIGKILL inside a transition's transaction leaves a consistent
# database: the change is absent, the audit chain verifies, and the next writer proceeds.
. "$(dirname "$0")/lib.sh"
keys signer alice
R="$SG registry"
expect 0 $R create-model crashy --signer signer.pub.pem --promoter Production=alice.pub.pem
real_models 2
for i in 1 2; do $R create-version crashy m$i.h5 >/dev/null
    gate_report signer models:/crashy/$i r$i.json; expect 0 $R transition crashy $i Staging --report r$i.json; done
expect 0 $R transition crashy 1 Production --as alice.key.pem
before=$(q "SELECT seq FROM audit_head")

# v2's promotion archives v1 and appends events, then pauses before COMMIT
STAGEGATE_REGISTRY_TEST_PAUSE=transition "$SG" registry transition crashy 2 Production --as alice.key.pem \
    >/dev/null 2>pause.err &
pid=$!
# Up to 60 s to reach the pause (a slow start under sanitizers on a loaded host is not a failure).
for _ in $(seq 1 600); do grep -q "test pause" pause.err 2>/dev/null && break; sleep 0.1; done
grep -q "test pause" pause.err || fail "writer never reached the pause"
kill -9 $pid
wait $pid 2>/dev/null || true

db_check
[ "$(stage_of crashy 1)" = Production ] || fail "v1 lost Production after the crash"
[ "$(stage_of crashy 2)" = Staging ] || fail "v2 half-promoted after the crash"
[ "$(q "SELECT seq FROM audit_head")" = "$before" ] || fail "audit events of the killed transaction survived"
expect 0 $R verify-log
# the lock died with the process: the same promotion now succeeds
expect 0 $R transition crashy 2 Production --as alice.key.pem
[ "$(stage_of crashy 1)" = Archived ] || fail "v1 not archived"
expect 0 $R verify-log
echo "crash OK"
