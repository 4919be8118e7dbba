#!/bin/bash
# Uploaded reports live in the registry, not in the server: a report uploaded to one server
# is found by the transition after that server restarted, and by a second server on the same
# database (by the digest it names, also in a row stored before that column existed); the
# newest upload for a digest is the one used. Malformed uploads are 400.
. "$(dirname "$0")/lib.sh"
setup
M=/api/2.0/mlflow
start_server
create_model "$MODEL"
for i in 1 2; do
    expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m$i.bin\"}"
done
report signer art/m1.bin
report signer art/m2.bin
expect 200 alice POST /api/stagegate/reports @art/m1.bin.report
[ "$(jbody .report_sha256)" = "$(sha art/m1.bin.report)" ] || fail "report sha: $(cat body)"
[ "$(jbody .subject_sha256)" = "$(sha art/m1.bin)" ] || fail "subject: $(cat body)"
# The same bytes again: stored once, same answer.
expect 200 bob POST /api/stagegate/reports @art/m1.bin.report
[ "$(jbody .report_sha256)" = "$(sha art/m1.bin.report)" ] || fail "re-upload: $(cat body)"
# Stored in the registry's report table, received_by = the first uploader's key id.
by=$(sqlq "SELECT received_by FROM reports WHERE sha256 = '$(sha art/m1.bin.report)'")
[ "$by" = "$(keyid alice.pub.pem)" ] || fail "received_by '$by'"
# ... with the artifact digest it names, which the transition looks it up by (an index).
subj=$(sqlq "SELECT subject_sha256 FROM reports WHERE sha256 = '$(sha art/m1.bin.report)'")
[ "$subj" = "$(sha art/m1.bin)" ] || fail "stored subject '$subj'"
# Malformed uploads: refused, the server stays up.
expect 400 alice POST /api/stagegate/reports "not json"
jq -e '.message | startswith("report: ") and (contains("report: report") | not)' body >/dev/null ||
    fail "the refusal's message is garbled: $(cat body)"
expect 400 alice POST /api/stagegate/reports '{"payload": "!!!"}'
expect 400 alice POST /api/stagegate/reports "{\"payload\": \"$(printf '{"subject": []}' | base64 -w0)\"}"
body_has "names no subject sha256 digest"
two=$(printf '{"subject": [{"digest": {"sha256": "%s"}}, {"digest": {"sha256": "%s"}}]}' "$(sha art/m1.bin)" "$(sha art/m2.bin)" | base64 -w0)
expect 400 alice POST /api/stagegate/reports "{\"payload\": \"$two\"}"
body_has "names 2 subjects, not one"

# A report inline that is not a string is refused, not ignored for the stored one.
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Staging\", \"stagegate_report\": {\"payload\": \"x\"}}"
body_has "stagegate_report is the report's text, a JSON string"

# Restart: the upload survives.
stop_server
start_server
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Staging\"}"
[ "$(jbody .model_version.validated)" = true ] || fail "v1 not validated: $(cat body)"

# A second server on the same database finds what the first one stored.
URL1=$URL SPID1=$SPID
EXTRA_SPIDS=$SPID1
SPID=""
start_server
expect 200 alice POST /api/stagegate/reports @art/m2.bin.report
# A row stored before schema 5 has no subject (nor, before schema 9, a record of its
# signers): it is still found, by its body.
sqlq "DELETE FROM report_signers WHERE report_sha256 = '$(sha art/m2.bin.report)'" >/dev/null
sqlq "UPDATE reports SET subject_sha256 = '', signers_known = 0 WHERE sha256 = '$(sha art/m2.bin.report)'" >/dev/null
URL=$URL1
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"2\", \"stage\": \"Staging\"}"
stop_server
SPID=$SPID1 EXTRA_SPIDS=""

# The newest report for a digest wins: a FAILED report uploaded after the PASSED one is the
# one the transition uses, and the registry refuses it.
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m3.bin\"}"
report signer art/m3.bin
expect 200 alice POST /api/stagegate/reports @art/m3.bin.report
sleep 1.1 # received_at has one-second resolution
"$MKREP" signer.key.pem "$(sha art/m3.bin)" FAILED now art/m3.bin.failed
expect 200 alice POST /api/stagegate/reports @art/m3.bin.failed
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"3\", \"stage\": \"Staging\"}"
body_has "report result is FAILED, not PASSED"
# ... and so it does against the older PASSED report sent with the transition: it had entered
# Staging over the newer failure. A newer passing report, sent inline, enters.
jq -n --arg n "$MODEL" --rawfile r art/m3.bin.report \
    '{name: $n, version: "3", stage: "Staging", stagegate_report: $r}' >inline_old.json
expect 400 alice POST $M/model-versions/transition-stage @inline_old.json
body_has "did not pass: the latest verdict stands"
sleep 1.1 # signed timestamps have one-second resolution
"$MKREP" signer.key.pem "$(sha art/m3.bin)" PASSED now art/m3.bin.again
jq -n --arg n "$MODEL" --rawfile r art/m3.bin.again \
    '{name: $n, version: "3", stage: "Staging", stagegate_report: $r}' >inline_new.json
expect 200 alice POST $M/model-versions/transition-stage @inline_new.json
# Only a strictly later failure stands against a given report: under one SOURCE_DATE_EPOCH
# every gate of a commit has one time, and a failure at that second had refused every
# retry's passing report for good; nor does a stored failure dated past now (no report
# could ever be later than it).
head -c 4096 /dev/urandom >art/m4.bin
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m4.bin\"}"
T=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
"$MKREP" signer.key.pem "$(sha art/m4.bin)" FAILED "$T" art/m4.failed
"$MKREP" signer.key.pem "$(sha art/m4.bin)" PASSED "$T" art/m4.passed
"$MKREP" signer.key.pem "$(sha art/m4.bin)" FAILED 2096-01-01T00:00:00Z art/m4.future
expect 200 alice POST /api/stagegate/reports @art/m4.failed
expect 200 alice POST /api/stagegate/reports @art/m4.future
jq -n --arg n "$MODEL" --rawfile r art/m4.passed \
    '{name: $n, version: "4", stage: "Staging", stagegate_report: $r}' >inline_tie.json
expect 200 alice POST $M/model-versions/transition-stage @inline_tie.json
expect 200 carol GET /api/stagegate/verify-log
stop_server
"$SG" registry verify-log --db "$DB" >/dev/null || fail "verify-log"

# reindex-reports lists the signers of rows stored before schema 9 once, so that lookups read
# them by key instead of verifying each at every lookup: a genuine report under its signer,
# one no trusted key verifies (a stranger's) under none; a second run finds nothing to do; a
# row whose body no longer hashes to its key stops it, named.
"$SG" keygen --out stranger >/dev/null
"$MKREP" stranger.key.pem "$(sha art/m1.bin)" PASSED now art/stranger.json
SBODY=$(cat art/stranger.json)
R1=$(sha art/m1.bin.report) RS=$(printf '%s' "$SBODY" | sha256sum | cut -c1-64)
sqlq "DELETE FROM report_signers WHERE report_sha256 = '$R1'" >/dev/null
sqlq "UPDATE reports SET signers_known = 0 WHERE sha256 = '$R1'" >/dev/null
sqlq "INSERT INTO reports (sha256, body, received_at, received_by, subject_sha256, signers_known)
      VALUES ('$RS', '$SBODY', '2026-01-01T00:00:00Z', 'old', '$(sha art/m1.bin)', 0)" >/dev/null
out=$("$SG" registry reindex-reports --db "$DB" --json) || fail "reindex-reports: $out"
[ "$(echo "$out" | jq -c .)" = '{"listed":1,"unlisted":1}' ] || fail "reindex-reports: $out"
[ "$(sqlq "SELECT count(*) FROM reports WHERE signers_known = 0")" = 0 ] || fail "rows left unlisted"
[ "$(sqlq "SELECT key_id FROM report_signers WHERE report_sha256 = '$R1'")" = "$(keyid signer.pub.pem)" ] ||
    fail "the genuine report is not listed under its signer"
[ "$(sqlq "SELECT count(*) FROM report_signers WHERE report_sha256 = '$RS'")" = 0 ] ||
    fail "the stranger's report is listed"
out=$("$SG" registry reindex-reports --db "$DB" --json) || fail "reindex-reports again: $out"
[ "$(echo "$out" | jq -c .)" = '{"listed":0,"unlisted":0}' ] || fail "reindex-reports again: $out"
BAD=$(printf 'not this body' | sha256sum | cut -c1-64)
sqlq "INSERT INTO reports (sha256, body, received_at, received_by, subject_sha256, signers_known)
      VALUES ('$BAD', '{}', '2026-01-01T00:00:00Z', 'old', '', 0)" >/dev/null
rc=0
"$SG" registry reindex-reports --db "$DB" >out.txt 2>err.txt || rc=$?
[ "$rc" = 1 ] && grep -q "stored report sha256:${BAD:0:16}... was modified" err.txt &&
    [ "$(wc -l <err.txt)" = 1 ] || fail "a modified row: exit $rc: $(cat err.txt)"
sqlq "DELETE FROM reports WHERE sha256 = '$BAD'" >/dev/null
# A row whose body is no DSSE envelope verifies with no key: listed under none, as one whose
# key is no longer trusted (a failed read of the keys, by contrast, stops the run).
NOENV=$(printf '{"a": 1}' | sha256sum | cut -c1-64)
sqlq "INSERT INTO reports (sha256, body, received_at, received_by, subject_sha256, signers_known)
      VALUES ('$NOENV', '{\"a\": 1}', '2026-01-01T00:00:00Z', 'old', '', 0)" >/dev/null
out=$("$SG" registry reindex-reports --db "$DB" --json) || fail "reindex-reports, no envelope: $out"
[ "$(echo "$out" | jq -c .)" = '{"listed":0,"unlisted":1}' ] || fail "reindex-reports, no envelope: $out"
[ "$(sqlq "SELECT count(*) FROM report_signers WHERE report_sha256 = '$NOENV'")" = 0 ] ||
    fail "a row that is no envelope is listed"
sqlq "DELETE FROM reports WHERE sha256 = '$NOENV'" >/dev/null
# It runs on the database, not through a server (as init does).
rc=0
"$SG" registry reindex-reports --db http://127.0.0.1:9 >out.txt 2>err.txt || rc=$?
[ "$rc" = 2 ] && grep -q "reindex-reports works on a local registry only, not through a server" err.txt ||
    fail "reindex-reports through a server: exit $rc: $(cat err.txt)"
echo "reports persist OK"
