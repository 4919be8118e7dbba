#!/bin/bash
# Attack: an unsigned `transition NAME V Archived` on the Production version was accepted,
# which took the serving model down and left nothing a rollback could restore from. Every
# transition out of Production now needs a Production promoter's signature.
. "$(dirname "$0")/registry_attack_setup.sh"
events=$(q "SELECT count(*) FROM audit_log")
expect 1 $R transition fraud 2 Archived
err_has "needs a signed request"
keys mallory
expect 1 $R transition fraud 2 Archived --as mallory.key.pem
err_has "is not an authorized promoter for Production"
expect 1 $R transition fraud 2 Archived --as bob.key.pem
err_has "is not an authorized promoter for Production"
[ "$(stage_of fraud 2)" = Production ] || fail "v2 left Production"
[ "$(q "SELECT count(*) FROM audit_log")" = "$events" ] || fail "a refused transition was logged"
# The promoter may, and the audit entry names the promoter's key.
expect 0 $R transition fraud 2 Archived --as alice.key.pem
[ "$(stage_of fraud 2)" = Archived ] || fail "the promoter could not archive v2"
expect 0 $R verify-log
echo "unsigned transition out of Production: refused"
