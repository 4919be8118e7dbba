#!/bin/bash
# The lecture's lifecycle end to end on real model files: gates, approval, automatic
# archiving, rollback, refusals, custom stages, and audit-log tamper detection. Reports come
# from real `stagegate gate` runs, except the stale one (a gate cannot date a report back).
. "$(dirname "$0")/lib.sh"

$PY "$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py" --out val.h5 --task binary --rows 2000 \
    --features 8 --seed 4 --fit logreg --model-out m4.h5
$PY "$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py" --task binary --features 8 --seed 4 \
    --fit mlp-relu --hidden 8 --max-iter 50 --model-out m5.h5 2>/dev/null
keys signer alice bob mallory
echo '{"metrics": {"accuracy": {"threshold": 0.5}}}' > policy.json
# v5 is compared with whatever is in Production (the lecture's shadow comparison)
echo '{"metrics": {"accuracy": {"threshold": 0.5}}, "shadow": {"min_agreement": 0.8}}' > shadow.json
echo '{"metrics": {"accuracy": {"threshold": 0.999}}}' > strict.json

R="$SG registry"
expect 0 $R create-model fraud-detector --signer signer.pub.pem --promoter Production=alice.pub.pem \
    --approver bob.pub.pem --require-approval --max-report-age 7 --description "card fraud"
for i in 1 2 3; do echo "old model $i" > old$i.bin; $R create-version fraud-detector old$i.bin >/dev/null; done
[ "$($R create-version fraud-detector m4.h5)" = 4 ] || fail "v4 not numbered 4"
[ "$($R create-version fraud-detector m5.h5)" = 5 ] || fail "v5 not numbered 5"
[ "$(stage_of fraud-detector 4)" = None ] || fail "new version not in None"

# v4: gate report -> Staging -> (approval) -> Production
gate_report signer models:/fraud-detector/4 r4.json
# verify takes the registered version by its URI: v4's report holds for v4, not for v5
expect 0 "$SG" verify r4.json --pubkey signer.pub.pem --model models:/fraud-detector/4 --db "$STAGEGATE_REGISTRY"
expect 1 "$SG" verify r4.json --pubkey signer.pub.pem --model models:/fraud-detector/5
# ...reading the artifact once: the subject is compared with the digest the registry checked
# the file against (a second read, to hash it again, had let a file renamed over in between
# stand for the version). LeakSanitizer cannot run under ptrace.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq \
    -e trace=open,openat,openat2 -o vtrace.txt "$SG" verify r4.json --pubkey signer.pub.pem \
    --model models:/fraud-detector/4 --db "$STAGEGATE_REGISTRY" >/dev/null
n=$(grep -c 'm4\.h5"' vtrace.txt || true)
[ "$n" = 1 ] || { grep 'm4\.h5"' vtrace.txt >&2; fail "verify models:/ opened the artifact $n times"; }
expect 2 "$SG" verify r4.json --pubkey signer.pub.pem --model models:/fraud-detector/99
expect 2 "$SG" verify r4.json --pubkey signer.pub.pem --model m4.h5 --db "$STAGEGATE_REGISTRY"
err_has "--db applies only with --model models:/"
expect 1 $R transition fraud-detector 4 Staging
err_has "requires a passing signed report"
expect 0 $R transition fraud-detector 4 Staging --report r4.json
[ "$(stage_of fraud-detector 4)" = Staging ] || fail "v4 not in Staging"
expect 1 $R transition fraud-detector 4 Production --as alice.key.pem
err_has "refused: fraud-detector v4 -> Production: no approval on record (model requires approval)"
expect 1 $R approve fraud-detector 4 --as mallory.key.pem
err_has "not an authorized approver"
expect 0 $R approve fraud-detector 4 --as bob.key.pem --comment "metrics reviewed"
expect 1 $R transition fraud-detector 4 Production
err_has "needs a signed request"
expect 1 $R transition fraud-detector 4 Production --as mallory.key.pem
err_has "is not an authorized promoter for Production"
expect 0 $R transition fraud-detector 4 Production --as alice.key.pem
[ "$(stage_of fraud-detector 4)" = Production ] || fail "v4 not in Production"

# v5: the wrong, failed, stale or foreign-signed reports are refused; its own passes.
expect 1 $R transition fraud-detector 5 Staging --report r4.json
err_has "refused: fraud-detector v5 -> Staging: report is for artifact sha256:$(sha m4.h5 | cut -c1-16)"
gate_report signer models:/fraud-detector/5 r5-failed.json strict.json
expect 1 $R transition fraud-detector 5 Staging --report r5-failed.json
err_has "report result is FAILED"
report signer m5.h5 PASSED -8 r5-old.json
expect 1 $R transition fraud-detector 5 Staging --report r5-old.json
err_has "older than the model's maximum report age (7 days)"
# a signed "registry" that is not an object is refused, not read as absent (which skipped the
# audit-head check)
for bad in '"x"' 'null' '[1]'; do
    MAKE_REPORT_REGISTRY=$bad report signer m5.h5 PASSED now r5-reg.json
    expect 1 $R transition fraud-detector 5 Staging --report r5-reg.json
    err_has "predicate.registry is not an object"
done
# an empty log's head is (0, 64 zeros): a signed head of seq 0 holding another hash is
# malformed (it had been taken unchecked)
for bad in '{"audit_head":{"seq":0,"hash":"zz"}}' '{"audit_head":{"seq":0,"hash":"'"$(printf '%064d' 1)"'"}}'; do
    MAKE_REPORT_REGISTRY=$bad report signer m5.h5 PASSED now r5-reg.json
    expect 1 $R transition fraud-detector 5 Staging --report r5-reg.json
    err_has "report's registry audit head is malformed"
done
gate_report mallory models:/fraud-detector/5 r5-mallory.json
expect 1 $R transition fraud-detector 5 Staging --report r5-mallory.json
err_has "does not verify against any trusted signer key"
# signed by the trusted signer, but what it signed is not a report: said so, not "does not verify"
report signer m5.h5 MAYBE now r5-maybe.json
expect 1 $R transition fraud-detector 5 Staging --report r5-maybe.json
err_has "report's signature verifies (trusted signer key "
err_has "not a stagegate report: statement: predicate.result \"MAYBE\" is not PASSED, WARNED or FAILED"
gate_report signer models:/fraud-detector/5 r5.json shadow.json \
    --baseline models:/fraud-detector/Production
# the report binds the baseline it was compared with: v4's digest, via models:/.../Production
$PY - "$(sha m4.h5)" <<'PY' || fail "v5's report lacks the shadow comparison with Production"
import base64, json, sys
p = json.loads(base64.b64decode(json.load(open("r5.json"))["payload"]))["predicate"]
base = [c["digest"]["sha256"] for c in p["configuration"] if c["annotations"]["role"] == "baseline"]
assert base == [sys.argv[1]], base
assert any(c["name"] == "shadow.agreement" and c["passed"] for c in p["checks"]), p["checks"]
PY
expect 0 $R transition fraud-detector 5 Staging --report r5.json
[ "$(stage_of fraud-detector 5)" = Staging ] || fail "v5 not in Staging"

# promote v5: v4 is archived in the same transaction
expect 0 $R approve fraud-detector 5 --as bob.key.pem
expect 0 $R transition fraud-detector 5 Production --as alice.key.pem
[ "$(stage_of fraud-detector 5)" = Production ] || fail "v5 not in Production"
[ "$(stage_of fraud-detector 4)" = Archived ] || fail "v4 not archived automatically"

# roll back: v4 back in Production, v5 archived; only a promoter may
expect 1 $R rollback fraud-detector --as mallory.key.pem
expect 0 $R rollback fraud-detector --as alice.key.pem
[ "$(stage_of fraud-detector 4)" = Production ] || fail "rollback did not restore v4"
[ "$(stage_of fraud-detector 5)" = Archived ] || fail "rollback did not archive v5"
n=$($R search "name = 'fraud-detector' AND stage = 'Production'" --json | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["versions"]))')
[ "$n" = 1 ] || fail "$n versions in Production"
# history shows the automatic archive and the rollback
$R history fraud-detector --json > hist.json
$PY - <<'PY'
import json
ev = json.load(open("hist.json"))["events"]
acts = [(e["action"], e["version"], e["from_stage"], e["to_stage"]) for e in ev]
assert ("archive", 4, "Production", "Archived") in acts, acts
assert ("rollback", 4, "Archived", "Production") in acts, acts
assert ("rollback-archive", 5, "Production", "Archived") in acts, acts
assert all(e["signed"] for e in ev if e["action"] in ("approve", "rollback")), ev
PY

# custom stages: Development -> Testing -> Staging -> Canary -> Production -> Deprecated -> Archived
expect 0 $R create-model fraud-canary --stages Development,Testing,Staging,Canary,Production,Deprecated,Archived \
    --signer signer.pub.pem --promoter Canary=alice.pub.pem --promoter Production=alice.pub.pem \
    --single-version Canary
$R create-version fraud-canary m4.h5 >/dev/null
$R create-version fraud-canary m5.h5 >/dev/null
[ "$(stage_of fraud-canary 1)" = Development ] || fail "custom first stage"
expect 1 $R transition fraud-canary 1 Production --as alice.key.pem
err_has "the policy does not allow Development -> Production"
expect 0 $R transition fraud-canary 1 Testing
expect 1 $R transition fraud-canary 1 Staging
err_has "requires a passing signed report"
expect 0 $R transition fraud-canary 1 Staging --report r4.json
expect 1 $R transition fraud-canary 1 Canary
err_has "needs a signed request"
expect 0 $R transition fraud-canary 1 Canary --as alice.key.pem
expect 0 $R transition fraud-canary 2 Testing
expect 0 $R transition fraud-canary 2 Staging --report r5.json
expect 1 $R transition fraud-canary 2 Canary --as alice.key.pem
err_has "Canary already holds v1 (single-version stage)"
expect 0 $R transition fraud-canary 1 Production --as alice.key.pem
expect 0 $R transition fraud-canary 2 Canary --as alice.key.pem
expect 1 $R transition fraud-canary 1 Deprecated
err_has "needs a signed request"   # leaving Production takes a promoter's signature
expect 0 $R transition fraud-canary 1 Deprecated --as alice.key.pem
[ "$(stage_of fraud-canary 1)" = Deprecated ] || fail "v1 not Deprecated"
expect 0 $R resolve models:/fraud-canary/Canary
[ "$(cat out)" = "$WORK/m5.h5" ] || fail "Canary resolves to $(cat out)"
expect 0 $R transition fraud-canary 1 Archived

# audit log: verifies, the append-only trigger blocks edits, and an edit behind its back is found
expect 0 $R verify-log
err_msg=$(q "UPDATE audit_log SET actor_key_id = 'x' WHERE seq = 3" 2>&1 || true)
grep -q "append-only" <<<"$err_msg" || fail "trigger did not block an audit edit: $err_msg"
err_msg=$(q "DELETE FROM audit_log WHERE seq = 3" 2>&1 || true)
grep -q "append-only" <<<"$err_msg" || fail "trigger did not block an audit deletion: $err_msg"
snapshot
q "DROP TRIGGER audit_log_append_only_update$([ $BACKEND = postgresql ] && echo ' ON audit_log');
  UPDATE audit_log SET to_stage = 'Production' WHERE action = 'transition' AND version = 5 AND to_stage = 'Staging' AND model_name = 'fraud-detector'"
expect 1 $R verify-log
err_has "was modified"
# deleting an event is caught too
restore
q "DROP TRIGGER audit_log_append_only_delete$([ $BACKEND = postgresql ] && echo ' ON audit_log'); DELETE FROM audit_log WHERE seq = 10"
expect 1 $R verify-log
err_has "event 10 is missing"
# and so is a stage changed directly in the table, bypassing the gates
restore
q "UPDATE model_versions SET stage = 'Staging' WHERE model_name = 'fraud-detector' AND version = 3"
expect 1 $R verify-log
err_has "fraud-detector v3 is in stage 'Staging' but its last recorded transition was to 'None'"
echo "walkthrough OK"
