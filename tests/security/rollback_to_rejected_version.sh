#!/bin/bash
# Attack: v1 was approved and promoted, later rejected by its approver; a rollback still put
# v1 back in Production. A rollback now refuses a version with a standing rejection.
. "$(dirname "$0")/registry_attack_setup.sh"
expect 0 $R approve fraud 1 --reject --as bob.key.pem --comment "leaks PII"
expect 1 $R rollback fraud --as alice.key.pem
err_has "v1 was rejected by approver"
err_has "leaks PII"
[ "$(stage_of fraud 2)" = Production ] && [ "$(stage_of fraud 1)" = Archived ] ||
    fail "the refused rollback moved a version"
# The approver's later approval lifts the rejection; then the rollback goes through.
expect 0 $R approve fraud 1 --as bob.key.pem --comment "fixed upstream"
expect 0 $R rollback fraud --as alice.key.pem
[ "$(stage_of fraud 1)" = Production ] || fail "rollback after re-approval did not restore v1"
expect 0 $R verify-log
echo "rollback to a rejected version: refused"
