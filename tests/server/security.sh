#!/bin/bash
# Who may call: no token, a wrong token, or a principal the policy does not name get 401/403
# and change nothing; sources cannot escape the artifact root; a tokens file others can read
# is refused; basic auth carries the token as the password.
. "$(dirname "$0")/lib.sh"
setup
M=/api/2.0/mlflow

# A tokens file readable by others: the server refuses to start.
chmod 644 tokens
rc=0
"$SG" serve --db "$DB" --listen 127.0.0.1:0 --tokens tokens >out 2>err || rc=$?
[ $rc = 2 ] && grep -q "accessible by group or others" err || fail "world-readable tokens: exit $rc $(cat err)"
rc=0
"$SG" token add --tokens tokens --principal alice.pub.pem >out 2>err || rc=$?
[ $rc = 2 ] || fail "token add appended to a world-readable file"
chmod 600 tokens
grep -q "$(cat alice.token)" tokens && fail "the tokens file holds a token in clear"

# A principal's name is UTF-8 text: a hand-edited byte 0xff is refused when the file is read
# (every write of that principal had failed on PostgreSQL and been logged non-UTF-8 on
# SQLite); token add takes a UTF-8 name and refuses another.
sed "1s/ alice / al$(printf '\xff')ice /" tokens >bad.tokens
chmod 600 bad.tokens
grep -q "$(printf '\xff')" bad.tokens || fail "setup: no 0xff in bad.tokens"
rc=0
"$SG" serve --db "$DB" --listen 127.0.0.1:0 --tokens bad.tokens >out 2>err || rc=$?
[ $rc = 2 ] && grep -q "line 1: the name is not UTF-8 text" err || fail "a non-UTF-8 name: exit $rc $(cat err)"
cp tokens utf8.tokens
"$SG" token add --tokens utf8.tokens --principal carol.pub.pem --name "zoë" >/dev/null || fail "token add --name zoë"
rc=0
"$SG" token add --tokens utf8.tokens --principal carol.pub.pem --name "z$(printf '\xff')" >out 2>err || rc=$?
[ $rc = 2 ] && grep -q "not UTF-8" err || fail "token add of a non-UTF-8 name: exit $rc $(cat err)"

# Off loopback without TLS: refused before binding (tokens are bearer credentials).
for addr in 0.0.0.0:0 "[::]:0" 192.0.2.1:0; do
    rc=0
    "$SG" serve --db "$DB" --listen "$addr" --tokens tokens >out 2>err || rc=$?
    [ $rc = 2 ] && grep -q "is not a loopback address" err && [ "$(wc -l <err)" = 1 ] ||
        fail "--listen $addr without TLS: exit $rc $(cat err)"
done

# --access-log is appended to while the server runs: one of the server's own inputs (its
# lines had gone into the tokens file, which then did not load, and into the registry), a
# FIFO (which blocked the start) or a directory is refused before it starts.
mkfifo log.fifo; mkdir -p log.dir
cp tokens before.tokens
logs=(tokens log.fifo log.dir)
[ -f "$DB" ] && logs+=("$DB")   # a SQLite registry; PostgreSQL's is not a file
for lg in "${logs[@]}"; do
    rc=0
    timeout 20 "$SG" serve --db "$DB" --listen 127.0.0.1:0 --tokens tokens --access-log "$lg" >out 2>err || rc=$?
    [ $rc = 2 ] && [ "$(wc -l <err)" = 1 ] &&
        grep -Eq "is the same file as (--tokens|the registry)|not a regular file" err ||
        fail "--access-log $lg: exit $rc $(cat err)"
done
cmp -s tokens before.tokens || fail "a refused --access-log changed the tokens file"

start_server
create_model "$MODEL"
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m1.bin\"}"
report signer art/m1.bin
expect 200 alice POST /api/stagegate/reports @art/m1.bin.report
# The upload reads the envelope as the verifier does: base64 without its padding (which DSSE
# verifiers must take) is accepted, and a statement with a key given twice is refused (a
# parser keeping the last "subject" had stored the report under another digest).
for frac in "" .5 .25; do # a timestamp whose length gives the base64 some padding
    "$MKREP" signer.key.pem "$(sha art/m1.bin)" PASSED "$(date -u +%Y-%m-%dT%H:%M:%S)${frac}Z" pad.report
    case $(jq -r .payload pad.report) in *=) break ;; esac
done
/usr/bin/python3 - pad.report <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
json.dump(dict(env, payload=env["payload"].rstrip("=")), open("nopad.report", "w"))
st = base64.b64decode(env["payload"]).decode()
dup = '{"subject": [{"name": "x", "digest": {"sha256": "%s"}}], ' % ("0" * 64) + st[1:]
json.dump(dict(env, payload=base64.b64encode(dup.encode()).decode()), open("dup.report", "w"))
PY
[ "$(jq -r .payload nopad.report)" != "$(jq -r .payload pad.report)" ] || fail "the payload had no padding to drop"
expect 200 alice POST /api/stagegate/reports @nopad.report
[ "$(jbody .subject_sha256)" = "$(sha art/m1.bin)" ] || fail "unpadded upload: $(cat body)"
expect 400 alice POST /api/stagegate/reports @dup.report
body_has "duplicate"
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Staging\"}"
# Authentication failures: 401, nothing changed.
T="{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Production\"}"
expect 401 none POST $M/model-versions/transition-stage "$T"
[ "$(jbody .error_code)" = UNAUTHENTICATED ] || fail "code $(cat body)"
expect 401 none GET "$M/registered-models/get?name=$MODEL"
expect 401 "token:sgt_$(printf 0%.0s {1..64})" POST $M/model-versions/transition-stage "$T"
expect 401 "token:$(cat alice.token)x" POST $M/model-versions/transition-stage "$T"
CODE=$(curl -s -o body -w '%{http_code}' -H "Authorization: Basic $(printf 'x:wrong' | base64)" "$URL$M/registered-models/get?name=$MODEL")
[ "$CODE" = 401 ] || fail "basic auth with a wrong password: $CODE"
CODE=$(curl -s -o body -w '%{http_code}' -u "alice:$(cat alice.token)" "$URL$M/registered-models/get?name=$MODEL")
[ "$CODE" = 200 ] || fail "basic auth with the token as password: $CODE"
# Two Authorization headers, in either order: 400 (a proxy in front may have checked the
# other one), nothing done.
for pair in "$(cat carol.token) $(cat alice.token)" "$(cat alice.token) $(cat carol.token)" "junk $(cat alice.token)"; do
    set -- $pair
    CODE=$(curl -s -o body -w '%{http_code}' -H "Authorization: Bearer $1" -H "Authorization: Bearer $2" \
        -X POST -H "Content-Type: application/json" --data "$T" "$URL$M/model-versions/transition-stage")
    [ "$CODE" = 400 ] && grep -q 'repeats the Authorization header' body ||
        fail "two Authorization headers: $CODE $(cat body)"
done
[ "$(stage_of "$MODEL" 1)" = Staging ] || fail "stage changed by a request with two credentials"
# One spelling per version: "01", "+1", " 1" are refused, not read as version 1.
for v in 01 %2B1 %201 1.0; do
    expect 400 alice GET "$M/model-versions/get?name=$MODEL&version=$v"
done
expect 200 alice GET "$M/model-versions/get?name=$MODEL&version=1"

# Authenticated but not authorized: 403 with the CLI's reason, nothing changed.
expect 200 bob POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"1\"}"
expect 200 carol GET "/api/stagegate/history?name=$MODEL"
events=$(jq '.events | length' body)
expect 403 bob POST $M/model-versions/transition-stage "$T"
[ "$(jbody .error_code)" = PERMISSION_DENIED ] || fail "code $(cat body)"
body_has "is not an authorized promoter for Production"
expect 403 carol POST $M/model-versions/transition-stage "$T"
expect 403 carol POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"1\"}"
body_has "is not an authorized approver"
expect 403 carol POST /api/stagegate/rollback "{\"name\": \"$MODEL\"}"
# alice is a promoter, not an approver.
expect 403 alice POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"1\"}"
[ "$(stage_of "$MODEL" 1)" = Staging ] || fail "stage changed"
expect 200 carol GET "/api/stagegate/history?name=$MODEL"
[ "$(jq '.events | length' body)" = "$events" ] || fail "refused calls left audit events"

# Sources: confined to the artifact root.
ln -s /etc/passwd art/link
mkdir -p outside && echo x >outside/m.bin && ln -s "$WORK/outside" art/dirlink
# Outside the root, a file that exists and one that does not get the same answer (no oracle
# of which files exist on the server).
for src in file:///etc/shadow /etc/passwd ../outside/m.bin "art/../outside/m.bin" link dirlink/m.bin \
    dirlink/none.bin "dirlink/no/such/dir/$RUN" "file://$WORK/outside/m.bin" "s3://bucket/model" "file://relative/x" nosuch.bin \
    "file:///etc/no-such-file-$RUN" "/no/such/dir/$RUN" "file://$WORK/outside/none.bin"; do
    expect_code=403
    case $src in ../*|*/../*|s3:*|file://relative*|nosuch.bin) expect_code=400 ;; esac
    call alice POST $M/model-versions/create "$(jq -cn --arg n "$MODEL" --arg s "$src" '{name: $n, source: $s}')"
    [ "$CODE" = 400 ] || [ "$CODE" = 403 ] || fail "source $src: HTTP $CODE $(cat body)"
    [ "$CODE" = "$expect_code" ] || fail "source $src: HTTP $CODE, wanted $expect_code: $(cat body)"
done
# MLflow's schemes without "//" (runs:/, models:/) are URIs too, not relative paths, even
# where a file of that name lies under the root (one had been registered).
mkdir -p "art/models:" && echo y >"art/models:/m.bin"
for src in "models:/m.bin" "runs:/abc/model"; do
    expect 400 alice POST $M/model-versions/create "$(jq -cn --arg n "$MODEL" --arg s "$src" '{name: $n, source: $s}')"
    body_has "only file:// URIs and paths are served"
done
expect 200 alice GET "$M/registered-models/get?name=$MODEL"
[ "$(jq '.registered_model.latest_versions | length' body)" = 1 ] || fail "a refused source made a version"

# An ONNX model with external data: the server registers the digest the CLI registers (the
# framed digest of docs/formats.md over the .onnx and its data file), and data behind a
# symlink out of its directory is refused.
mkdir -p art/onnx
/usr/bin/python3 - art/onnx <<'PY'
import os, sys
from onnx import TensorProto, helper
d = sys.argv[1]
open(os.path.join(d, "w.bin"), "wb").write(bytes(range(16)) * 2)
for name, loc in (("m.onnx", "w.bin"), ("evil.onnx", "link.bin")):
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 1],
                    data_location=TensorProto.EXTERNAL)
    for k, v in (("location", loc), ("offset", "0"), ("length", "32")):
        e = w.external_data.add(); e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["p"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
                          [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 1])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    open(os.path.join(d, name), "wb").write(m.SerializeToString())
PY
head -c 32 /dev/urandom >outside/w.bin && ln -s "$WORK/outside/w.bin" art/onnx/link.bin
want=$(/usr/bin/python3 - art/onnx <<'PY'
import hashlib, os, sys
part = lambda b: len(b).to_bytes(8, "little") + b
read = lambda f: open(os.path.join(sys.argv[1], f), "rb").read()
print(hashlib.sha256(b"stagegate onnx external data v1\0" + part(read("m.onnx")) + part(b"w.bin")
                     + part(read("w.bin"))).hexdigest())
PY
)
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"onnx/m.onnx\"}"
got=$(jq -r '.model_version.artifact_sha256 // empty' body)
[ "${got#sha256:}" = "$want" ] || fail "ONNX with external data: digest '$got', wanted the framed digest $want"
call alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"onnx/evil.onnx\"}"
[ "$CODE" = 400 ] && body_has "link.bin" || fail "ONNX data through a symlink out of the root: HTTP $CODE $(cat body)"

# A principal with a token but no role uploads, after the signer's report, newer ones for the
# same artifact: one FAILED and signed by its own key, one with the signer's signature zeroed.
# Neither verifies against a trusted signer key, so neither is stored (each stored report
# costs every later lookup of its digest a verification, so junk had slowed promotions for
# good), and neither shadows the signer's report.
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m3.bin\"}"
V3=$(jbody .model_version.version)
report signer art/m3.bin
expect 200 alice POST /api/stagegate/reports @art/m3.bin.report
sleep 1.1
"$MKREP" carol.key.pem "$(sha art/m3.bin)" FAILED now art/m3.forged
n_reports=$(sqlq "SELECT count(*) FROM reports")
expect 400 carol POST /api/stagegate/reports @art/m3.forged
body_has "does not verify against any trusted signer key of the registry"
jq '.signatures[0].sig = "AAAA"' art/m3.bin.report >art/m3.zeroed
expect 400 carol POST /api/stagegate/reports @art/m3.zeroed
[ "$(sqlq "SELECT count(*) FROM reports")" = "$n_reports" ] || fail "an unverified upload was stored"
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"$V3\", \"stage\": \"Staging\"}"

# A body with a key twice is refused (parsers disagree on which one wins), and changes nothing.
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"$V3\", \"stage\": \"Production\", \"stage\": \"Archived\"}"
body_has "duplicate"
expect 400 alice POST $M/registered-models/create '{"name": "dup-a", "name": "dup-b"}'
expect 404 alice GET "$M/registered-models/get?name=dup-b"
expect 400 alice POST $M/registered-models/create '[1, 2]'
body_has "not a JSON object"
expect 200 alice GET "$M/model-versions/get?name=$MODEL&version=$V3"
[ "$(jbody .model_version.current_stage)" = Staging ] || fail "a refused duplicate-key body moved the version: $(cat body)"

# Cross-site requests: a change comes as application/json, its parameters in the body. A
# text/plain, form or multipart body (which a browser sends cross-site without asking, with
# Basic credentials it holds) is 415, and a POST's query string is not read (one with no
# body had archived a version): nothing moves.
T3="{\"name\": \"$MODEL\", \"version\": \"$V3\", \"stage\": \"Archived\"}"
for ct in "text/plain" "application/x-www-form-urlencoded" "multipart/form-data; boundary=x" \
    "application/jsonx" ""; do
    CODE=$(curl -s -o body -w '%{http_code}' -u "alice:$(cat alice.token)" -H "Content-Type: $ct" \
        --data-binary "$T3" "$URL$M/model-versions/transition-stage")
    [ "$CODE" = 415 ] && body_has "Content-Type: application/json" ||
        fail "a change sent as '$ct': HTTP $CODE $(cat body)"
done
expect 400 alice POST "$M/model-versions/transition-stage?name=$MODEL&version=$V3&stage=Archived"
body_has "takes its parameters in its JSON body, not in the query string"
expect 200 alice GET "$M/model-versions/get?name=$MODEL&version=$V3"
[ "$(jbody .model_version.current_stage)" = Staging ] || fail "a cross-site form moved the version: $(cat body)"

# Types that change what a request means are refused, not read as their default: a reject
# that is not a JSON boolean (it had recorded an approval), policy fields of the wrong type
# (require_approval "true" had made a model without approval), unknown policy keys, tag keys
# with '=' (the audit log records KEY=VALUE: verify-log had failed for ever after one).
for body in '"reject": "true"' '"reject": 1' '"reject": null'; do
    expect 400 bob POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"$V3\", $body}"
    body_has "reject must be true or false"
done
# ... and so is a field approve does not take: a misspelt reject ("Reject", "rejected", a
# "decision") had been dropped, and the intended rejection recorded as an approval.
for body in '"Reject": true' '"rejected": true' '"decision": "reject"'; do
    expect 400 bob POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"$V3\", $body}"
    body_has "is not one /api/stagegate/approve takes (name, version, reject, comment)"
done
expect 400 alice POST /api/stagegate/rollback "{\"name\": \"$MODEL\", \"to_version\": 1}"
body_has "field 'to_version' is not one /api/stagegate/rollback takes (name)"
# A query string beside a change's body is refused, not ignored: a bare ?reject (no '=') had
# been recorded as an approval.
for q in "reject=true" "reject" "x=1&reject" "reject&x=1"; do
    expect 400 bob POST "/api/stagegate/approve?$q" "{\"name\": \"$MODEL\", \"version\": \"$V3\"}"
    body_has "not in the query string"
done
# A read's parameters are its query string's: a GET with a body too is refused (the body had
# named another model than the URL a proxy or a log saw).
CODE=$(curl -s -o body -w '%{http_code}' -X GET -H "Authorization: Bearer $(cat carol.token)" \
    -H "Content-Type: text/plain" --data '{"name": "other"}' "$URL$M/registered-models/get?name=$MODEL")
[ "$CODE" = 400 ] && body_has "not a body" || fail "GET with a body: HTTP $CODE $(cat body)"
expect 200 carol GET "/api/stagegate/history?name=$MODEL"
[ "$(jq '[.events[] | select(.action == "approve" and .version == '"$V3"')] | length' body)" = 0 ] ||
    fail "a refused approve was recorded: $(cat body)"
mkpol() { jq -cn --arg n "typed-$RUN" --argjson p "$1" '{name: $n, stagegate_policy: $p}'; }
for pol in '{"require_approval": "true"}' '{"max_report_age_days": "7"}' '{"max_report_age_days": 0}' \
    '{"signers": "PEM"}' '{"signers": [1]}' '{"promoters": ["PEM"]}' '{"promoters": {"Production": "PEM"}}' \
    '"strict"' '{"approver": []}' '{"report_stage": 3}' \
    '{"stages": ["Production", "Staging", "Archived"], "report_stage": "Staging"}'; do
    expect 400 alice POST $M/registered-models/create "$(mkpol "$pol")"
    [ "$(jbody .error_code)" = INVALID_PARAMETER_VALUE ] || fail "policy $pol: $(cat body)"
done
expect 400 alice POST $M/registered-models/create "$(jq -cn --arg n "typed-$RUN" '{name: $n, stagegate_policy: {signers: [range(65) | "k"]}}')"
expect 400 alice POST $M/registered-models/create "{\"name\": \"typed-$RUN\", \"tags\": [{\"key\": \"owner=x\", \"value\": \"y\"}]}"
body_has "without '='"
expect 400 alice POST $M/registered-models/create "{\"name\": \"typed-$RUN\", \"tags\": {\"key\": \"a\"}}"
expect 404 alice GET "$M/registered-models/get?name=typed-$RUN"
expect 400 carol POST $M/model-versions/set-tag "{\"name\": \"$MODEL\", \"version\": \"$V3\", \"key\": \"a=b\", \"value\": \"c\"}"
expect 200 carol POST $M/model-versions/set-tag "{\"name\": \"$MODEL\", \"version\": \"$V3\", \"key\": \"a\", \"value\": \"b=c\"}"
"$SG" registry verify-log --db "$DB" >/dev/null 2>err || fail "verify-log after the tag calls: $(cat err)"

# Paths with an encoded byte are refused (libmicrohttpd decodes them before routing: an
# encoded '/' or NUL, or an encoded letter that walks past a proxy's rule on the path as
# written, /api/stagegate/%61pprove); a body field of the wrong type is not replaced by the
# query's.
for path in "$M/registered-models%2Fget?name=$MODEL" "/api/stagegate/whoami%00" "/health%00x" \
    "$M/registered-models%2fget?name=$MODEL" "/api/stagegate/%77hoami" "$M/registered%2Dmodels/get?name=$MODEL"; do
    expect 400 alice GET "$path"
    body_has "the request path holds a percent-encoded byte"
done
expect 400 bob POST "/api/stagegate/%61pprove" "{\"name\": \"$MODEL\", \"version\": \"$V3\"}"
# An encoded '/' in the query is data, not a path: looked up as a name (none such).
expect 404 alice GET "$M/registered-models/get?name=$MODEL%2Fx"
call alice POST "$M/registered-models/get-latest-versions?name=$MODEL" '{"name": 5}'
[ "$CODE" = 400 ] || fail "a body name of the wrong type fell back to the query: HTTP $CODE $(cat body)"
# create-version with a bad tag: refused before the version is made (no half-done change).
expect 200 carol GET "$M/registered-models/get?name=$MODEL"
nv=$(jq '.registered_model.latest_versions | map(.version | tonumber) | max' body)
for tags in '[{"key": "", "value": "x"}]' '[{"key": "a=b", "value": "x"}]' '[{"key": 1}]' '"t"'; do
    expect 400 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m2.bin\", \"tags\": $tags}"
done
expect 200 carol GET "$M/registered-models/get?name=$MODEL"
[ "$(jq '.registered_model.latest_versions | map(.version | tonumber) | max' body)" = "$nv" ] ||
    fail "a refused create-version made a version: $(cat body)"
# archive_existing_versions that cannot archive (no Canary>Archived in the policy): the
# transition itself is committed, so it is answered 200, with what archiving could not do.
jq -n --arg n "canary-$RUN" --rawfile a alice.pub.pem '{name: $n, stagegate_policy: {
    stages: ["None", "Canary", "Production", "Archived"], report_stage: "Production",
    transitions: "None>Canary,Canary>Production,Production>Archived", multi_version: ["Canary"],
    promoters: {Production: [$a]}}}' >canary.json
expect 200 alice POST $M/registered-models/create @canary.json
expect 200 alice POST $M/model-versions/create "{\"name\": \"canary-$RUN\", \"source\": \"m1.bin\"}"
expect 200 alice POST $M/model-versions/create "{\"name\": \"canary-$RUN\", \"source\": \"m2.bin\"}"
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"canary-$RUN\", \"version\": \"1\", \"stage\": \"Canary\"}"
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"canary-$RUN\", \"version\": \"2\", \"stage\": \"Canary\", \"archive_existing_versions\": true}"
[ "$(jbody .model_version.current_stage)" = Canary ] || fail "v2 not in Canary: $(cat body)"
jbody .archive_existing_versions_error | grep -q "Archived" || fail "no archiving error: $(cat body)"
# archive_existing_versions is a boolean: 1 or "yes" had archived nothing with 200. Refused
# before anything moves.
expect 200 alice POST $M/model-versions/create "{\"name\": \"canary-$RUN\", \"source\": \"m1.bin\"}"
for val in 1 '"yes"' '{}' 0; do
    expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"canary-$RUN\", \"version\": \"3\", \"stage\": \"Canary\", \"archive_existing_versions\": $val}"
    body_has "archive_existing_versions must be true or false"
done
[ "$(stage_of "canary-$RUN" 3)" = None ] || fail "a refused transition moved v3"
# A version tag without a value is stored with an empty one, as a model's is (it had been
# dropped).
expect 200 alice POST $M/model-versions/create "{\"name\": \"canary-$RUN\", \"source\": \"m2.bin\", \"tags\": [{\"key\": \"a\"}, {\"key\": \"b\", \"value\": \"x\"}]}"
[ "$(jq -c '.model_version.tags' body)" = '[{"key":"a","value":""},{"key":"b","value":"x"}]' ] ||
    fail "tags of a new version: $(cat body)"
# Aliases MLflow reserves: latest in any case, v or V and digits.
for a in LATEST Latest v1 V2 v007; do
    expect 400 alice POST $M/registered-models/alias "{\"name\": \"canary-$RUN\", \"alias\": \"$a\", \"version\": \"1\"}"
    body_has "is reserved"
done
expect 200 alice POST $M/registered-models/alias "{\"name\": \"canary-$RUN\", \"alias\": \"v1x\", \"version\": \"1\"}"

# Reports that could never stand for a pinned model (another policy's gate) do not shadow the
# one that applies: carol, a token with no role, uploads a newer genuine report of the
# signer's for the same artifact under another policy; the transition still finds the
# pinned one (it had taken the newest and refused the transition).
PIN_P=$(printf 'a%.0s' $(seq 64)) PIN_D=$(printf 'b%.0s' $(seq 64)) OTHER_P=$(printf 'c%.0s' $(seq 64))
jq -n --arg n "pinned-$RUN" --rawfile s signer.pub.pem --arg p "$PIN_P" --arg d "$PIN_D" \
    '{name: $n, stagegate_policy: {signers: [$s], policy_sha256: $p, dataset_sha256: $d}}' >pinned.json
expect 200 alice POST $M/registered-models/create @pinned.json
expect 200 alice POST $M/model-versions/create "{\"name\": \"pinned-$RUN\", \"source\": \"m2.bin\"}"
"$MKREP" signer.key.pem "$(sha art/m2.bin)" PASSED -1 pinned.report "$PIN_P" "$PIN_D"
"$MKREP" signer.key.pem "$(sha art/m2.bin)" PASSED now other.report "$OTHER_P" "$PIN_D"
expect 200 alice POST /api/stagegate/reports @pinned.report
expect 200 carol POST /api/stagegate/reports @other.report
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"pinned-$RUN\", \"version\": \"1\", \"stage\": \"Staging\"}"
[ "$(jbody .model_version.current_stage)" = Staging ] || fail "the pinned report was shadowed: $(cat body)"

# The registry's location stays out of answers.
expect 404 alice GET "$M/registered-models/get?name=nosuch-$RUN"
body_has "the server's registry"
grep -qF -- "${DB%%\?*}" body && fail "the registry's location is in an answer: $(cat body)"
# A change made with DELETE answers the audit head as a POST does.
expect 200 alice POST $M/registered-models/alias "{\"name\": \"$MODEL\", \"alias\": \"x1\", \"version\": \"$V3\"}"
head=$(curl -sS -D - -o /dev/null -X DELETE -H "Authorization: Bearer $(cat alice.token)" \
    -H "Content-Type: application/json" --data-binary "{\"name\": \"$MODEL\", \"alias\": \"x1\"}" "$URL$M/registered-models/alias" |
    tr -d '\r' | sed -n 's/^X-Stagegate-Audit-Head: //ip')
[ -n "$head" ] || fail "DELETE alias carried no X-Stagegate-Audit-Head"

# Replays: a genuine report of the signer's, uploaded again by carol as new bytes (the
# envelope re-serialised), must not stand for the version. The verdict is the signed report
# with the latest signed time, whatever the order of upload.
# replay_setup ART OLD_RESULT OLD_AGE NEW_RESULT: a new version of ART with the signer's old
# and new reports uploaded in that order; sets VER and leaves art/ART.replay, the old report
# re-serialised (other bytes, the same signed content).
replay_setup() {
    local a=$1
    head -c 4096 /dev/urandom >"art/$a"
    expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"$a\"}"
    VER=$(jbody .model_version.version)
    "$MKREP" signer.key.pem "$(sha "art/$a")" "$2" "$3" "art/$a.old"
    "$MKREP" signer.key.pem "$(sha "art/$a")" "$4" now "art/$a.new"
    expect 200 alice POST /api/stagegate/reports "@art/$a.old"
    expect 200 alice POST /api/stagegate/reports "@art/$a.new"
    jq -c . "art/$a.old" >"art/$a.replay"
    cmp -s "art/$a.old" "art/$a.replay" && jq . "art/$a.old" >"art/$a.replay"
    cmp -s "art/$a.old" "art/$a.replay" && fail "the replay has the same bytes"
    return 0
}
replay_setup m4.bin PASSED -2days FAILED
V4=$VER
T4="{\"name\": \"$MODEL\", \"version\": \"$V4\", \"stage\": \"Staging\"}"
call alice POST $M/model-versions/transition-stage "$T4"
[ "$CODE" != 200 ] && body_has "FAILED" || fail "the newest signed report is FAILED: HTTP $CODE $(cat body)"
expect 200 carol POST /api/stagegate/reports @art/m4.bin.replay
call alice POST $M/model-versions/transition-stage "$T4"
[ "$CODE" != 200 ] || fail "an old PASSED report uploaded again let a FAILED version into Staging"
replay_setup m5.bin FAILED -1days PASSED
V5=$VER
expect 200 carol POST /api/stagegate/reports @art/m5.bin.replay
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"$V5\", \"stage\": \"Staging\"}"
# Signed in the same second (SOURCE_DATE_EPOCH gives every gate of a commit one time): the
# time cannot order them, and the one that did not pass wins, whatever was received last.
same=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
head -c 4096 /dev/urandom >art/m6.bin
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m6.bin\"}"
V6=$(jbody .model_version.version)
"$MKREP" signer.key.pem "$(sha art/m6.bin)" PASSED "$same" art/m6.pass
"$MKREP" signer.key.pem "$(sha art/m6.bin)" FAILED "$same" art/m6.fail
expect 200 alice POST /api/stagegate/reports @art/m6.pass
expect 200 alice POST /api/stagegate/reports @art/m6.fail
jq -c . art/m6.pass >art/m6.replay
cmp -s art/m6.pass art/m6.replay && jq . art/m6.pass >art/m6.replay
expect 200 carol POST /api/stagegate/reports @art/m6.replay
call alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"$V6\", \"stage\": \"Staging\"}"
[ "$CODE" != 200 ] && body_has "FAILED" ||
    fail "a PASSED report uploaded again beside a FAILED one of the same second: HTTP $CODE $(cat body)"
# A genuine report dated in the future (its signer's clock set wrong), which a transition
# refuses, is not the latest signed report either: it had shadowed every later report of the
# artifact until its date ("report timestamp 2099-... is in the future").
head -c 4096 /dev/urandom >art/m7.bin
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m7.bin\"}"
V7=$(jbody .model_version.version)
"$MKREP" signer.key.pem "$(sha art/m7.bin)" FAILED 2099-01-01T00:00:00Z art/m7.future
"$MKREP" signer.key.pem "$(sha art/m7.bin)" PASSED now art/m7.now
expect 200 carol POST /api/stagegate/reports @art/m7.future
expect 200 alice POST /api/stagegate/reports @art/m7.now
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"$V7\", \"stage\": \"Staging\"}"
# The latest verdict stands for a promotion too: a re-gate that failed after the version
# entered Staging had not stopped it from entering Production on its older validation. A
# newer passing report lifts it.
head -c 4096 /dev/urandom >art/m8.bin
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m8.bin\"}"
V8=$(jbody .model_version.version)
T8() { echo "{\"name\": \"$MODEL\", \"version\": \"$V8\", \"stage\": \"$1\"}"; }
"$MKREP" signer.key.pem "$(sha art/m8.bin)" PASSED -2days art/m8.pass
"$MKREP" signer.key.pem "$(sha art/m8.bin)" FAILED -1hours art/m8.fail
"$MKREP" signer.key.pem "$(sha art/m8.bin)" PASSED now art/m8.again
expect 200 alice POST /api/stagegate/reports @art/m8.pass
expect 200 alice POST $M/model-versions/transition-stage "$(T8 Staging)"
expect 200 carol POST /api/stagegate/reports @art/m8.fail
expect 200 bob POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"$V8\"}"
call alice POST $M/model-versions/transition-stage "$(T8 Production)"
[ "$CODE" != 200 ] && body_has "did not pass: the latest verdict stands" ||
    fail "a newer FAILED verdict did not stop the promotion: HTTP $CODE $(cat body)"
[ "$(stage_of "$MODEL" "$V8")" = Staging ] || fail "v$V8 moved"
expect 200 alice POST /api/stagegate/reports @art/m8.again
expect 200 alice POST $M/model-versions/transition-stage "$(T8 Production)"

# Writes to a server without tokens: refused; reads served.
stop_server
: >server.log  # emptied first: the old server's "listening on" line must not be read
"$SG" serve --db "$DB" --listen 127.0.0.1:0 --artifact-root art 2>>server.log &
SPID=$!
for _ in $(seq 100); do grep -q "listening on" server.log && break; sleep 0.1; done
URL=http://127.0.0.1:$(sed -n 's/.*:\([0-9]*\)$/\1/p' server.log | head -1)
expect 200 none GET "$M/registered-models/get?name=$MODEL"
expect 401 none POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m2.bin\"}"
# The access log quotes the client's method and target: control bytes and a bidirectional
# override in them are written as \xHH, so a client cannot draw lines of its own in the log
# (or move the cursor of whoever tails it).
/usr/bin/python3 - "${URL##*:}" <<'PYEOF'
import socket, sys
for req in (b"GET /he\x1b[2Jalth HTTP/1.1\r\nHost: x\r\n\r\n",
            b"G\x1bT /health HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /h\u202eealth HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            b"GET /q%22%20200%2015%200.1ms HTTP/1.1\r\nHost: x\r\n\r\n"):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(req)
    s.recv(4096)
    s.close()
PYEOF
for _ in $(seq 50); do grep -qF 'GET /h\xe2\x80\xaeealth' server.log && break; sleep 0.1; done
grep -qF '"GET /he\x1b[2Jalth" 404' server.log || fail "the target's ESC is not escaped in the log: $(tail -3 server.log)"
grep -qF '"G\x1bT /health"' server.log || fail "the method's ESC is not escaped in the log"
grep -qF 'GET /h\xe2\x80\xaeealth' server.log || fail "U+202E is not escaped in the log"
if grep -q "$(printf '\033')" server.log; then fail "a raw ESC byte reached the log"; fi
# ... and a '"' in the decoded target cannot close the quoted field and forge a status (the
# path is refused, 400, for its encoded bytes; the log still shows what was asked)
for _ in $(seq 50); do grep -qF '"GET /q\x22 200 15 0.1ms" 400' server.log && break; sleep 0.1; done
grep -qF '"GET /q\x22 200 15 0.1ms" 400' server.log || fail "a quote in the target is not escaped: $(tail -3 server.log)"
# ... and a JSON answer that quotes a client's U+202E writes it as \u202e (the same string to
# any JSON parser): a raw override had reached whoever reads the body in a terminal.
expect 404 none GET "$M/registered-models/get?name=x%E2%80%AEy"
body_has 'x\u202ey'
if grep -q "$(printf '\342\200\256')" "$WORK/body"; then fail "a raw U+202E in the body: $(cat "$WORK/body")"; fi
[ "$(jbody .message | grep -c "$(printf 'x\342\200\256y')")" = 1 ] || fail "the message does not decode to the name asked for"
# A server without a tokens file serves reads only: get-latest-versions is a read, and
# MLflow's clients send it as a POST (it had been refused 401); a change is still refused.
: >ro.log
"$SG" serve --db "$DB" --listen 127.0.0.1:0 2>>ro.log &
EXTRA_SPIDS="$EXTRA_SPIDS $!"
RO=""
for _ in $(seq 100); do
    RO=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' ro.log)
    [ -n "$RO" ] && break
    sleep 0.1
done
[ -n "$RO" ] || fail "the read-only server did not start: $(cat ro.log)"
CODE=$(curl -s -o body -w '%{http_code}' -X POST -H "Content-Type: application/json" \
    --data "{\"name\": \"$MODEL\"}" "http://127.0.0.1:$RO$M/registered-models/get-latest-versions")
[ "$CODE" = 200 ] && [ "$(jq '.model_versions | length' body)" -ge 1 ] ||
    fail "POST get-latest-versions on a read-only server: HTTP $CODE $(cat body)"
CODE=$(curl -s -o body -w '%{http_code}' -X POST -H "Content-Type: application/json" \
    --data "{\"name\": \"$MODEL\", \"version\": \"1\", \"key\": \"k\", \"value\": \"v\"}" \
    "http://127.0.0.1:$RO$M/model-versions/set-tag")
[ "$CODE" = 401 ] && body_has "serves reads only" || fail "a change on a read-only server: HTTP $CODE $(cat body)"
echo "security OK"
