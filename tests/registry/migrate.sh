#!/bin/bash
# `registry migrate` copies a registry between backends: models, versions, tags, aliases,
# descriptions,
# approvals, validations, nonces, run history and the audit log with its hash chain. The
# copy reads the same through every command, verifies, keeps working (new writes, row ids
# that follow the copied ones), and the copy back is identical. A destination that is not
# empty, or a source whose audit log does not verify, is refused and nothing is written.
. "$(dirname "$0")/lib.sh"
R="$SG registry"
keys signer alice bob
real_models 3
expect 0 $R create-model fraud --signer signer.pub.pem --promoter Production=alice.pub.pem \
    --approver bob.pub.pem --require-approval --description "card fraud" --tag team=risk
for i in 1 2 3; do $R create-version fraud m$i.h5 >/dev/null; done
for i in 1 2; do
    gate_report signer models:/fraud/$i r$i.json
    expect 0 $R transition fraud $i Staging --report r$i.json
    expect 0 $R approve fraud $i --as bob.key.pem --comment "ok $i"
    expect 0 $R transition fraud $i Production --as alice.key.pem
done
expect 0 $R approve fraud 3 --reject --as bob.key.pem --comment "not yet"
expect 0 $R set-tag fraud 2 owner "ana maria"
# a key holding a space, whose first word is another key: the log must tell them apart
expect 0 $R set-tag fraud 2 "owner team" "risk ops"
expect 0 $R set-alias fraud champion 2
expect 0 $R set-description fraud 2 "retrained on Q3; threshold 0.42"
expect 0 $R set-description fraud "card fraud, EU"
expect 0 $R record r1.json
expect 0 $R create-model other --stages Dev,QA,Production,Archived --report-stage QA
echo x > x.bin; $R create-version other x.bin >/dev/null

# the other backend is the destination; back again into this one
if [ "$BACKEND" = sqlite ]; then
    pg_new_db _dst; DST=$NEW_URI; BACK=$WORK/back.db
else
    DST=$WORK/copy.db; pg_new_db _back; BACK=$NEW_URI
fi
expect 2 $R migrate --from "$STAGEGATE_REGISTRY"
expect 2 $R migrate --from "$STAGEGATE_REGISTRY" --to "$DST" --db "$DST"
expect 0 $R migrate --from "$STAGEGATE_REGISTRY" --to "$DST"
grep -q "copied 2 models, 4 versions, 1 runs and" out || fail "migrate summary: $(cat out)"
grep -q "verified: audit head [0-9a-f]\{64\}" out || fail "migrate summary: $(cat out)"

# every read says the same on both sides
reads() {
    for c in "list" "get fraud" "get fraud 2" "get fraud 3" "get other" "history fraud" \
        "search \"tags.owner = 'ana maria'\"" "runs fraud" verify-log "resolve models:/fraud@champion"; do
        eval "$R --db \"$1\" $c --json"
    done | sed 's/"id": [0-9]*/"id": N/'
}
reads "$STAGEGATE_REGISTRY" > src.txt
reads "$DST" > dst.txt
cmp -s src.txt dst.txt || { diff src.txt dst.txt >&2; fail "the copy reads differently"; }

# a copy into a non-empty registry is refused and changes nothing
expect 2 $R migrate --from "$STAGEGATE_REGISTRY" --to "$DST"
err_has "is not empty"
reads "$DST" > dst2.txt
cmp -s dst.txt dst2.txt || fail "a refused migrate changed the destination"

# the copy keeps working: row ids and the chain continue
expect 0 $R --db "$DST" approve fraud 3 --as bob.key.pem --comment "now"
gate_report signer models:/fraud/3 r3.json
expect 0 $R --db "$DST" transition fraud 3 Staging --report r3.json
expect 0 $R --db "$DST" transition fraud 3 Production --as alice.key.pem
expect 0 $R --db "$DST" record r3.json
expect 0 $R --db "$DST" --json runs fraud
$PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["runs"]; assert [x["id"] for x in r] == [1, 2], r' out \
    || fail "run ids after the copy: $(cat out)"
expect 0 $R --db "$DST" verify-log

# and back: identical to the destination it came from
expect 0 $R migrate --from "$DST" --to "$BACK" --json
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tables"]["audit_log"] == d["events"] > 10, d' out \
    || fail "migrate --json: $(cat out)"
reads "$DST" > dst3.txt
reads "$BACK" > back.txt
cmp -s dst3.txt back.txt || { diff dst3.txt back.txt >&2; fail "the copy back reads differently"; }

# a tag whose key and value were shifted across the space by hand reads as another tag
q "UPDATE version_tags SET tag_key = 'owner team risk', tag_value = 'ops' WHERE tag_key = 'owner team'"
expect 1 $R verify-log
err_has "version tags: the log's row 'fraud 00000000000000000002 10:owner team risk ops' is missing"
q "UPDATE version_tags SET tag_key = 'owner team', tag_value = 'risk ops' WHERE tag_key = 'owner team risk'"
expect 0 $R verify-log

# a description edited in the table, the version's or the model's, is no event's
expect 0 $R --json get fraud 2
[ "$(jq -r .description out)" = "retrained on Q3; threshold 0.42" ] || fail "version description: $(cat out)"
q "UPDATE model_versions SET description = 'threshold 0.9' WHERE version = 2"
expect 1 $R verify-log
err_has "descriptions: the table's row 'fraud 00000000000000000002 13:threshold 0.9' is not explained by any event"
q "UPDATE model_versions SET description = 'retrained on Q3; threshold 0.42' WHERE version = 2"
q "UPDATE registered_models SET description = 'card fraud' WHERE name = 'fraud'"
expect 1 $R verify-log
err_has "descriptions: the table's row 'fraud 00000000000000000000 10:card fraud' is not explained by any event"
q "UPDATE registered_models SET description = 'card fraud, EU' WHERE name = 'fraud'"
expect 0 $R verify-log
# SQLite text may hold a NUL byte (PostgreSQL's cannot): an edit hidden behind one is named,
# not read as the text before it
if [ "$BACKEND" = sqlite ]; then
    q "UPDATE model_versions SET description = 'retrained on Q3; threshold 0.42' || char(0) || 'threshold 0.9' WHERE version = 2"
    expect 1 $R verify-log
    err_has "descriptions: the log's row 'fraud 00000000000000000002 31:retrained on Q3; threshold 0.42' is missing from the table"
    expect 0 $R --json get fraud 2
    [ "$(jq -r .description out)" = "(text holding a NUL byte: not written by stagegate)" ] ||
        fail "a description with a NUL byte reads as: $(jq .description out)"
    q "UPDATE model_versions SET description = 'retrained on Q3; threshold 0.42' WHERE version = 2"
    expect 0 $R verify-log
fi

# a source whose audit log was edited is not copied (exit 1), and the destination stays empty
q "DROP TRIGGER audit_log_append_only_update$([ $BACKEND = postgresql ] && echo ' ON audit_log');
   UPDATE audit_log SET detail = 'edited' WHERE seq = 2"
if [ "$BACKEND" = sqlite ]; then pg_new_db _d2; D2=$NEW_URI; else D2=$WORK/d2.db; fi
expect 1 $R migrate --from "$STAGEGATE_REGISTRY" --to "$D2"
err_has "does not verify, not copying it"
expect 0 $R --db "$D2" list
[ ! -s out ] || fail "a refused copy left rows: $(cat out)"
echo "migrate OK"
