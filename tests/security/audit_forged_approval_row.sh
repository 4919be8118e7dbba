#!/bin/bash
# Attack: insert an `approvals` row for v3 in bob's name (and then also an unsigned approve
# event in the log), so the promoter can take v3 to Production without bob. The registry now
# counts an approval only when its audit event carries bob's signed request, and verify-log
# finds a row that no event explains.
. "$(dirname "$0")/registry_root_setup.sh"
bob=$(key_id bob)
q "INSERT INTO approvals (model_name, version, approver_key_id, decision, comment, created_at) VALUES ('fraud', 3, '$bob', 'approved', '', '2026-01-01T00:00:00Z')"
expect 1 $R verify-log
err_has "approvals: the table's row 'fraud 00000000000000000003 $bob 1 approved"
err_has "is not explained by any event"
expect 1 $R transition fraud 3 Production --as alice.key.pem
err_has "no approval on record"
[ "$(stage_of fraud 3)" = Staging ] || fail "v3 was promoted on a forged approval"
# the row plus an unsigned event for it, chained correctly
forge approve 3 "" "" "$bob" "" ""
expect 1 $R transition fraud 3 Production --as alice.key.pem
err_has "no approval on record"
expect 1 $R verify-log
err_has "approve fraud v3): no signed request, but the rules need one"
[ "$(stage_of fraud 3)" = Staging ] || fail "v3 was promoted on a forged approval event"
echo "forged approval row: not honoured, detected"
