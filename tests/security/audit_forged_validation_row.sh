#!/bin/bash
# Attack: insert a `validations` row saying PASSED for a version that never passed its gate,
# so a promoter can take it to Production. The gate is on QA and the policy lets Staging go
# straight to Production, so the row is the only evidence Production's entry checks. The
# registry now counts a validations row only when the stored report it names still verifies
# for the version's artifact; verify-log finds a row that no event explains.
. "$(dirname "$0")/registry_root_setup.sh"
expect 0 $R create-model fv --signer signer.pub.pem --promoter Production=alice.pub.pem \
    --stages None,Staging,QA,Production,Archived --report-stage QA \
    --transitions "None>Staging,Staging>QA,QA>Production,Staging>Production,Production>Archived" \
    --as admin.key.pem
expect 0 $R create-version fv m4.h5 --as signer.key.pem
expect 0 $R transition fv 1 Staging --as signer.key.pem
expect 1 $R transition fv 1 Production --as alice.key.pem
err_has "no passed validation on record for v1"
sha=$(sha256sum m4.h5 | cut -c1-64)
row() {  # row REPORT_SHA: a PASSED validation of fv v1 naming that report
    q "INSERT INTO validations (model_name, version, stage, result, subject_sha256, signer_key_id, report_sha256, report_timestamp, recorded_at) VALUES ('fv', 1, 'QA', 'PASSED', '$sha', '$(key_id signer)', '$1', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
}
# a row naming no stored report
row "$(printf 'no such report' | sha256sum | cut -c1-64)"
expect 1 $R transition fv 1 Production --as alice.key.pem
err_has "no passed validation on record for v1"
[ "$(stage_of fv 1)" = Staging ] || fail "v1 was promoted on a forged validation row"
expect 1 $R verify-log
err_has "validations: the table's row 'fv 00000000000000000001 QA"
# a row naming a genuine stored report, signed by the model's signer, but for another artifact
# (fraud v3's): it verifies, and is still not this version's
row "$(sha256sum r3.json | cut -c1-64)"
expect 1 $R transition fv 1 Production --as alice.key.pem
err_has "no passed validation on record for v1"
[ "$(stage_of fv 1)" = Staging ] || fail "v1 was promoted on another version's report"
# a row naming a genuine PASSED report of this very artifact, signed by the model's signer
# and stored beside it by hand, that no transition event carries: the report never let the
# version in (it may be for another gate, or too old), so it validates nothing either
report signer m4.h5 PASSED now genuine.json
gsha=$(sha256sum genuine.json | cut -c1-64)
q "INSERT INTO reports (sha256, body, received_at, received_by, subject_sha256) VALUES ('$gsha', '$(cat genuine.json)', '2026-01-01T00:00:00Z', 'x', '$sha')"
row "$gsha"
expect 1 $R transition fv 1 Production --as alice.key.pem
err_has "no passed validation on record for v1"
[ "$(stage_of fv 1)" = Staging ] || fail "v1 was promoted on a genuine report no event carried"
echo "forged validation row: not honoured, detected"
