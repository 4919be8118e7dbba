#!/bin/bash
# A registry an earlier release made (schema 4) opens with this one: the forward migrations
# add schema 5's indexes and the reports' subject column, schema 6's runs' statement digest
# and schema 7's version descriptions, write schema 8's one spelling of run_at, add schema
# 9's table of each report's signers (a report stored before is still found, verified at
# each lookup, until it is stored again), keep every row, and the log still verifies. The
# schema-4 registry is made by taking schema 5's, 6's, 7's and 9's additions out of a new one
# (the migrations add nothing else), then marking it version 4.
. "$(dirname "$0")/lib.sh"
R="$SG registry"
keys signer
echo "artifact 1" > a1.bin
expect 0 $R create-model m --signer signer.pub.pem
expect 0 $R create-version m a1.bin
report signer a1.bin PASSED now a1.json
expect 0 $R transition m 1 Staging --report a1.json
INDEXES="'audit_log_by_version', 'audit_log_config_events', 'audit_log_admin_keys', 'model_versions_by_stage', 'validations_by_version', 'approvals_by_version', 'reports_by_subject'"
q "DROP INDEX reports_signers_unknown; DROP TABLE report_signers; ALTER TABLE reports DROP COLUMN signers_known" >/dev/null
q "DROP INDEX audit_log_by_version; DROP INDEX audit_log_config_events; DROP INDEX audit_log_admin_keys; DROP INDEX model_versions_by_stage; DROP INDEX validations_by_version; DROP INDEX approvals_by_version; DROP INDEX reports_by_subject; ALTER TABLE reports DROP COLUMN subject_sha256; DROP INDEX runs_by_payload; ALTER TABLE runs DROP COLUMN payload_sha256; ALTER TABLE model_versions DROP COLUMN description" >/dev/null
if [ "$BACKEND" = postgresql ]; then
    q "UPDATE stagegate_registry SET schema_version = 4" >/dev/null
    count_indexes() { q "SELECT count(*) FROM pg_indexes WHERE indexname IN ($INDEXES)"; }
else
    q "PRAGMA user_version = 4"
    count_indexes() { q "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ($INDEXES)"; }
fi
[ "$(count_indexes)" = 0 ] || fail "setup: schema 5's indexes are still there"
# runs recorded before run_at had one spelling: an offset and a fraction, lower-case t and z,
# a fraction, one already canonical, and one that is no time (kept as it was)
i=0
for t in "2026-01-01T10:30:00.5+05:00" "2026-01-01t10:30:00z" "2026-01-01T10:30:00.999Z" \
    "2026-01-02T00:00:00Z" "not a time"; do
    i=$((i + 1))
    q "INSERT INTO runs (model_name, version, stage, fingerprint, machine, run_at, recorded_at, report_sha256, report_path, result, signer_key_id, scenario, figures) VALUES ('m', 1, 'Staging', '', 'null', '$t', '2026-01-03T00:00:00Z', 'r$i', 'p', 'PASSED', 'k', '', '{}')" >/dev/null
done
expect 0 $R init
grep -q "schema version 9" "$WORK/out" || fail "init: $(cat "$WORK/out")"
[ "$(count_indexes)" = 7 ] || fail "the migration made $(count_indexes) of schema 5's 7 indexes"
[ "$(q "SELECT count(*) FROM reports WHERE subject_sha256 = ''")" = 1 ] || fail "the stored report lost its row"
[ "$(q "SELECT count(*) FROM runs WHERE payload_sha256 = ''")" = 5 ] || fail "schema 6's runs.payload_sha256 is missing"
[ "$(q "SELECT count(*) FROM model_versions WHERE description = ''")" = 1 ] || fail "schema 7's model_versions.description is missing"
[ "$(q "SELECT count(*) FROM reports WHERE signers_known = 0")" = 1 ] || fail "schema 9: the stored report is not marked as of unknown signers"
[ "$(q "SELECT count(*) FROM report_signers")" = 0 ] || fail "schema 9: signers invented for a stored report"
got=$(q "SELECT run_at FROM runs ORDER BY report_sha256" | tr '\n' '|')
[ "$got" = "2026-01-01T05:30:00Z|2026-01-01T10:30:00Z|2026-01-01T10:30:00Z|2026-01-02T00:00:00Z|not a time|" ] ||
    fail "schema 8's run_at: $got"
expect 0 $R verify-log
[ "$(stage_of m 1)" = Staging ] || fail "v1 is $(stage_of m 1) after the migration"
# and the registry works on: a second version through the gate, its report stored with its subject
echo "artifact 2" > a2.bin
expect 0 $R create-version m a2.bin
report signer a2.bin PASSED now a2.json
expect 0 $R transition m 2 Staging --report a2.json
[ "$(q "SELECT count(*) FROM reports WHERE subject_sha256 = '$(sha256sum a2.bin | cut -c1-64)'")" = 1 ] ||
    fail "the new report was stored without its subject"
# ... and with the key that verified it (schema 9), which a lookup searches by
SIGNER_ID=$(openssl pkey -pubin -in signer.pub.pem -outform DER | sha256sum | cut -c1-64)
[ "$(q "SELECT key_id FROM report_signers WHERE subject_sha256 = '$(sha256sum a2.bin | cut -c1-64)'")" = "$SIGNER_ID" ] ||
    fail "the new report's signer was not recorded: $(q "SELECT * FROM report_signers")"
[ "$(q "SELECT count(*) FROM reports WHERE signers_known = 1")" = 1 ] || fail "the new report is not marked as of known signers"
# schema 7: a version's description, audited
expect 0 $R set-description m 2 "second cut"
expect 0 $R --json get m 2
[ "$(jq -r .description "$WORK/out")" = "second cut" ] || fail "description: $(cat "$WORK/out")"
expect 0 $R verify-log
# A negative version is no stagegate's: one line, exit 2 (it had run stray memory as SQL, then
# crashed with SIGSEGV).
for v in -1 -100 -1000 -2147483648; do
    if [ "$BACKEND" = postgresql ]; then
        q "UPDATE stagegate_registry SET schema_version = $v" >/dev/null
    else
        q "PRAGMA user_version = $v"
    fi
    expect 2 $R list
    err_has "has schema version $v, which no stagegate writes"
    [ "$(wc -l < "$WORK/err")" = 1 ] || fail "schema version $v: not one line"
done
echo "schema 4 -> 9: migrated, rows kept, log verifies; negative versions refused"
