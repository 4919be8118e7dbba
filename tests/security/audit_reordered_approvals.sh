#!/bin/bash
# Attack: bob approved v3, then rejected it. Someone with write access to the database swaps
# the two approvals rows (or deletes the rejection row, or appends a copy of bob's genuine
# approve event after the rejection), so the promoter can take v3 to Production. The live
# registry had taken each approver's latest decision from the approvals table's row order, and
# verify-log compared the table as a set, so the swap passed both until after the promotion.
# Decisions now come from the signed events, ordered by the audit head each signed request
# names; verify-log compares each row's place among the approver's decisions.
. "$(dirname "$0")/registry_root_setup.sh"
bob=$(key_id bob)
expect 0 $R approve fraud 3 --comment ok --as bob.key.pem
expect 0 $R approve fraud 3 --reject --comment "found a bug" --as bob.key.pem
expect 1 $R transition fraud 3 Production --as alice.key.pem
err_has "rejected by approver ${bob:0:16} (found a bug)"
refused() { # $1: what was done to the database
    expect 1 $R transition fraud 3 Production --as alice.key.pem
    err_has "rejected by approver ${bob:0:16} (found a bug)"
    [ "$(stage_of fraud 3)" = Staging ] || fail "$1: v3 was promoted past bob's rejection"
    expect 1 $R verify-log
}
ids=$(q "SELECT id FROM approvals WHERE model_name = 'fraud' AND version = 3 ORDER BY id" | tr '\n' ' ')
first=${ids%% *}
second=$(echo $ids | cut -d' ' -f2)
[ -n "$first" ] && [ -n "$second" ] && [ "$first" != "$second" ] || fail "setup: approvals rows '$ids'"
# 1. the rows' decisions swapped: the same set of rows, in the other order
q "UPDATE approvals SET decision = 'rejected', comment = 'found a bug' WHERE id = $first"
q "UPDATE approvals SET decision = 'approved', comment = 'ok' WHERE id = $second"
refused "rows swapped"
err_has "approvals: the log's row 'fraud 00000000000000000003 $bob 1 approved ok' is missing from the table"
q "UPDATE approvals SET decision = 'approved', comment = 'ok' WHERE id = $first"
q "UPDATE approvals SET decision = 'rejected', comment = 'found a bug' WHERE id = $second"
expect 0 $R verify-log
# 2. the rejection's row deleted
q "DELETE FROM approvals WHERE id = $second"
refused "rejection row deleted"
err_has "approvals: the log's row 'fraud 00000000000000000003 $bob 2 rejected found a bug' is missing from the table"
q "INSERT INTO approvals (id, model_name, version, approver_key_id, decision, comment, created_at) VALUES ($second, 'fraud', 3, '$bob', 'rejected', 'found a bug', '2026-01-01T00:00:00Z')"
expect 0 $R verify-log
# 3. bob's genuine approve event (request and signature) appended again after the rejection,
# with a correct hash chain, and its approvals row: the copy's request names the audit head
# before the rejection, so the rejection is still bob's latest decision
ev=$(q "SELECT request_text FROM audit_log WHERE model_name = 'fraud' AND version = 3 AND action = 'approve'")
sig=$(q "SELECT signature FROM audit_log WHERE model_name = 'fraud' AND version = 3 AND action = 'approve'")
ev_evidence=$(q "SELECT evidence_sha256 FROM audit_log WHERE model_name = 'fraud' AND version = 3 AND action = 'approve'")
[ -n "$ev" ] && [ -n "$sig" ] || fail "setup: bob's approve event"
forge approve 3 "" "" "$bob" "$ev_evidence" ok "$ev"$'\n' "$sig"
q "INSERT INTO approvals (model_name, version, approver_key_id, decision, comment, created_at) VALUES ('fraud', 3, '$bob', 'approved', 'ok', '2026-01-01T00:00:00Z')"
refused "approve event replayed after the rejection"
echo "reordered, deleted or replayed approvals: the signed rejection still stands"
