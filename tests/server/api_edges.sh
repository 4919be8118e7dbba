#!/bin/bash
# Edges of the API found by attacking the server from outside:
# - a create-model whose promoters add up to more than 64 keys over all stages keeps every
#   stage's keys (one array of 64 for all of them had dropped Canary's only promoter, and a
#   stage without promoter keys needs none: a principal without a role moved a version there);
# - model-versions/create refuses a tag the registry would refuse before it makes the version
#   (it had answered 400 for a version it had made, and a retry made another);
# - get-latest-versions reads its stages filter whatever the case of the parameter's name, and
#   refuses a "stages" without a value (both had been dropped: every stage answered);
# - a report upload's envelope and statement are sized up without building them (1 MiB of
#   "[{},{},...]" in either had cost the server 80-160 MB, kept after the request).
. "$(dirname "$0")/lib.sh"
setup
start_server --threads 4
M=/api/2.0/mlflow

# 1. 63 more Production promoters, and bob the only promoter of Canary
for i in $(seq 63); do openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkey -pubout >k$i.pub.pem; done
/usr/bin/python3 - "$MODEL" <<'PY'
import json, sys
rd = lambda p: open(p).read()
pol = {"signers": [rd("signer.pub.pem")], "stages": ["None", "Staging", "Canary", "Production", "Archived"],
       "transitions": "None>Staging,None>Canary,Canary>Production,Canary>Archived",
       "promoters": {"Production": [rd("alice.pub.pem")] + [rd(f"k{i}.pub.pem") for i in range(1, 64)],
                     "Canary": [rd("bob.pub.pem")]}}
json.dump({"name": sys.argv[1], "stagegate_policy": pol}, open("canary.json", "w"))
PY
expect 200 alice POST $M/registered-models/create @canary.json
[ "$(jq -c '.registered_model.stagegate_policy.stages[] | select(.name == "Canary") | .requires' body)" = '["promoter"]' ] ||
    fail "Canary's promoter was dropped: $(cat body)"
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m1.bin\"}"
expect 403 carol POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Canary\"}"
body_has "not an authorized promoter for Canary"
expect 200 bob POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Canary\"}"

# 2. tags the registry refuses: 400, and no version made
versions() { expect 200 alice GET "$M/model-versions/search?filter=name%3D%27$MODEL%27"; jq '.model_versions | length' body; }
n0=$(versions)
long=$(printf 'k%.0s' $(seq 251))
expect 400 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m2.bin\", \"tags\": [{\"key\": \"$long\", \"value\": \"x\"}]}"
body_has "tags[0]: tag key"
body_has "must be 1-250 characters"
expect 400 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m2.bin\", \"tags\": [{\"key\": \"a\\nb\", \"value\": \"x\"}]}"
body_has "on one line"
expect 400 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m2.bin\", \"tags\": [{\"key\": \"k\", \"value\": \"$(head -c 5001 /dev/zero | tr '\0' v)\"}]}"
body_has "tags[0]: tag k: the value is 5001 characters, more than 5000"
expect 400 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m2.bin\", \"tags\": [{\"key\": \"a\\rb\", \"value\": \"x\"}]}"
[ "$(versions)" = "$n0" ] || fail "refused creates made versions: $n0 before, $(versions) after"
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m2.bin\", \"tags\": [{\"key\": \"k\", \"value\": \"v\"}]}"

# 3. the stages filter: v1 is in Canary, v2 in None; Production holds nothing
expect 200 alice GET "$M/registered-models/get-latest-versions?name=$MODEL&stages=Production"
[ "$(jq '.model_versions | length' body)" = 0 ] || fail "stages=Production: $(cat body)"
expect 200 alice GET "$M/registered-models/get-latest-versions?NAME=$MODEL&STAGES=Production"
[ "$(jq '.model_versions | length' body)" = 0 ] || fail "STAGES=Production was dropped: $(cat body)"
expect 200 alice GET "$M/registered-models/get-latest-versions?name=$MODEL&Stages=Canary"
[ "$(jq -r '[.model_versions[].current_stage] | join(",")' body)" = Canary ] || fail "Stages=Canary: $(cat body)"
expect 400 alice GET "$M/registered-models/get-latest-versions?name=$MODEL&stages"
body_has "stages has an entry that is not a stage name"
expect 400 alice GET "$M/registered-models/get-latest-versions?name=$MODEL&stages="

# 4. report uploads of many small values, by a principal without a role
rss() { awk '/^VmRSS/ {print $2}' /proc/$SPID/status; }
/usr/bin/python3 - <<'PY'
import base64, json
n = (1000000 - 2) // 3
open("env_spam.json", "w").write("[" + ",".join(["{}"] * n) + "]")
p = base64.b64encode(("[" + ",".join(["{}"] * ((700000 - 2) // 3)) + "]").encode()).decode()
json.dump({"payload": p, "payloadType": "application/vnd.in-toto+json", "signatures": [{"sig": "AAAA"}]},
          open("stmt_spam.json", "w"))
PY
before=$(rss)
for _ in 1 2 3; do
    expect 400 carol POST /api/stagegate/reports @env_spam.json
    body_has "holds more than 256 JSON values"
    expect 400 carol POST /api/stagegate/reports @stmt_spam.json
    body_has "not an object (an in-toto statement)"
done
grow=$(($(rss) - before))
echo "server RSS grew by $grow KB over six such uploads"
[ "$grow" -lt 61440 ] || fail "server RSS grew from $before to $(rss) KB over six such uploads"
# a genuine report is still taken, under the digest its statement names
report signer art/m1.bin
expect 200 carol POST /api/stagegate/reports @art/m1.bin.report
[ "$(jbody .subject_sha256)" = "$(sha art/m1.bin)" ] || fail "subject: $(cat body)"
# A field set to null is a field not given, as protobuf's JSON mapping reads it (MLflow's
# clients may send one): it had been refused as "not a string".
expect 200 alice POST $M/registered-models/create '{"name": "nulls-'"$RUN"'", "description": null, "tags": null, "stagegate_policy": null}'
[ "$(jbody .registered_model.name)" = "nulls-$RUN" ] && [ "$(jbody .registered_model.description)" = "" ] ||
    fail "nulls: $(cat body)"
# Leaving a stage a promoter guards, for one that needs none, takes a promoter of the stage
# left, as leaving Production does: carol, with a token and no role, had moved a version
# Canary -> Archived. Alice promotes to Production, not to Canary: the same.
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m1.bin\"}"
VC=$(jbody .model_version.version)
expect 200 bob POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"$VC\", \"stage\": \"Canary\"}"
for who in carol alice; do
    expect 403 $who POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"$VC\", \"stage\": \"Archived\"}"
    body_has "is not an authorized promoter for Canary"
done
[ "$(stage_of "$MODEL" "$VC")" = Canary ] || fail "v$VC left Canary"
expect 200 bob POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"$VC\", \"stage\": \"Archived\"}"
echo "api edges ok"
