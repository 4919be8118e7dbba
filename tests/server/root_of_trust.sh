#!/bin/bash
# A registry with a root of trust behind the server: the server signs the requests it makes
# for its callers with its own key (serve --key), which an admin added as a server key; the
# MLflow create call works only for an admin principal; a server without a registered key
# cannot change anything; every change's response carries the audit head, and verify-log
# replays the server's signatures.
. "$(dirname "$0")/lib.sh"
setup
M=/api/2.0/mlflow
"$SG" keygen --out admin >/dev/null
"$SG" keygen --out server >/dev/null
"$SG" keygen --out rogue >/dev/null
"$SG" token add --tokens tokens --principal admin.pub.pem --name admin >admin.token
R=("$SG" registry --db "$DB")
"${R[@]}" init --admin admin.pub.pem >/dev/null || fail "init --admin"
# 1. a server whose key the registry does not know: every change refused, with the reason
start_server --key rogue.key.pem
create_model_as() {
    jq -n --arg n "$2" --rawfile s signer.pub.pem --rawfile a alice.pub.pem \
        --rawfile b bob.pub.pem '{name: $n, stagegate_policy: {signers: [$s],
        promoters: {Production: [$a]}, approvers: [$b], require_approval: true}}' >create.json
    call "$1" POST $M/registered-models/create @create.json
}
create_model_as admin "$MODEL"
[ "$CODE" = 403 ] || fail "unregistered server key: HTTP $CODE $(cat body)"
body_has "is not a server key of this registry"
stop_server
# 2. without --key at all
start_server
create_model_as admin "$MODEL"
[ "$CODE" = 403 ] || fail "no server key: HTTP $CODE $(cat body)"
body_has "must be signed with a server key an admin added"
stop_server
# 3. the admin registers the server's key
"${R[@]}" init --server server.pub.pem --as admin.key.pem >/dev/null || fail "init --server"
start_server --key server.key.pem
create_model_as alice "$MODEL"
[ "$CODE" = 403 ] || fail "non-admin create: HTTP $CODE $(cat body)"
body_has "is not an admin"
create_model_as admin "$MODEL"
[ "$CODE" = 200 ] || fail "admin create: HTTP $CODE $(cat body)"
hdr=$(curl -sS -D - -o /dev/null -X POST -H "Authorization: Bearer $(cat alice.token)" \
    -H "Content-Type: application/json" --data-binary "{\"name\": \"$MODEL\", \"source\": \"m1.bin\"}" "$URL$M/model-versions/create" |
    tr -d '\r' | sed -n 's/^X-Stagegate-Audit-Head: //Ip')
[ -n "$hdr" ] || fail "no audit head header on a change"
seq=${hdr%% *} hash=${hdr#* }
[ "$seq" = "$(sqlite3 "$DB" 'SELECT seq FROM audit_head')" ] &&
    [ "$hash" = "$(sqlite3 "$DB" 'SELECT hash FROM audit_head')" ] || fail "header '$hdr' is not the head"
# carol holds no role in the model: a change for her is refused (every change is signed by a member)
expect 403 carol POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m2.bin\"}"
body_has "holds no role in model"
# the gate through the server: report, Staging, approval, Production
report signer art/m1.bin
expect 200 alice POST /api/stagegate/reports @art/m1.bin.report
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Staging\"}"
expect 200 bob POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"1\"}"
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Production\"}"
stop_server
"${R[@]}" verify-log --json >vl.json || fail "verify-log: $(cat vl.json)"
jq -e '.root_of_trust == true and .ok == true' vl.json >/dev/null || fail "verify-log: $(cat vl.json)"
# the server's signature is what the replay checks: an attested event without it is found
n=$(sqlite3 "$DB" "SELECT max(seq) FROM audit_log")
sqlite3 "$DB" "DROP TRIGGER audit_log_append_only_update"
sqlite3 "$DB" "UPDATE audit_log SET signature = '' WHERE seq = $n"
rc=0; "${R[@]}" verify-log >out 2>err || rc=$?
[ "$rc" = 1 ] || fail "verify-log after the server's signature was removed: exit $rc"
grep -q "event $n" err || fail "$(cat err)"
echo "root of trust through the server: enforced"
