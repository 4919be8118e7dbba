#!/bin/bash
# Attack: with write access to the database, promote v3 to Production by hand: archive v2 and
# move v3 in model_versions, and append the matching events (archive, transition) with a
# correct hash chain and audit head, naming the promoter's key but with no signature (or with
# a signature copied from the promoter's earlier request). verify-log used to exit 0 because
# the chain and the stages agreed; now it replays the log and re-checks each event's rules.
. "$(dirname "$0")/registry_root_setup.sh"
alice=$(key_id alice)
snapshot
move_stages() {
    q "UPDATE model_versions SET stage = 'Archived', stage_exclusive = 0 WHERE model_name = 'fraud' AND version = 2"
    q "UPDATE model_versions SET stage = 'Production', stage_exclusive = 1 WHERE model_name = 'fraud' AND version = 3"
}
# 1. unsigned
move_stages
forge archive 2 Production Archived "$alice" "" "replaced by v3"
forge transition 3 Staging Production "$alice" "" ""
expect 1 $R verify-log
err_has "transition fraud v3): no signed request, but the rules need one"
[ "$(wc -l < "$WORK/err")" = 1 ] || fail "more than one line"
# 2. the promoter's signed request for v2, replayed onto v3
restore
req=$(q "SELECT request_text FROM audit_log WHERE action = 'transition' AND version = 2 AND to_stage = 'Production'")
sig=$(q "SELECT signature FROM audit_log WHERE action = 'transition' AND version = 2 AND to_stage = 'Production'")
[ -n "$req" ] && [ -n "$sig" ] || fail "setup: no signed promotion of v2"
move_stages
forge archive 2 Production Archived "$alice" "" "replaced by v3"
forge transition 3 Staging Production "$alice" "" "" "$req
" "$sig"
expect 1 $R verify-log
err_has "its request's version is not the event's"
# 3. the same with the approval rule: a signature by the promoter over the right fields is
# not enough without an approval (bob never approved v3)
restore
expect 0 $R verify-log
echo "unsigned Production event in the audit log: detected"
