#!/bin/bash
# Concurrent callers: 6 clients at once, each promoting versions of its own model through the
# gates while reading the others', for a bounded number of rounds. Every request must
# succeed, each model must end with exactly one version in Production, and the audit chain
# must verify. (Runs under ThreadSanitizer in scripts/test.sh: label threaded.)
. "$(dirname "$0")/lib.sh"
setup
start_server --threads 3
M=/api/2.0/mlflow
CLIENTS=6 ROUNDS=4
for c in $(seq $CLIENTS); do create_model "$MODEL-$c"; done
report signer art/m1.bin # (uploaded once a model trusts its signer: verified at upload)
expect 200 alice POST /api/stagegate/reports @art/m1.bin.report
client() { # client N: ROUNDS promotions of new versions, a read of another model between steps
    local c=$1 other=$MODEL-$(( $1 % CLIENTS + 1 )) v
    local A=(-sS --max-time 30 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $(cat alice.token)" -H "Content-Type: application/json")
    local B=(-sS --max-time 30 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $(cat bob.token)" -H "Content-Type: application/json")
    for v in $(seq $ROUNDS); do
        curl "${A[@]}" --data-binary "{\"name\": \"$MODEL-$c\", \"source\": \"m1.bin\"}" "$URL$M/model-versions/create"
        curl "${A[@]}" "$URL$M/model-versions/search?filter=$(jq -rn --arg f "name = '$other'" '$f|@uri')"
        curl "${A[@]}" --data-binary "{\"name\": \"$MODEL-$c\", \"version\": \"$v\", \"stage\": \"Staging\"}" "$URL$M/model-versions/transition-stage"
        curl "${A[@]}" --data-binary "{\"name\": \"$other\", \"stages\": [\"Production\"]}" "$URL$M/registered-models/get-latest-versions"
        curl "${B[@]}" --data-binary "{\"name\": \"$MODEL-$c\", \"version\": \"$v\"}" "$URL/api/stagegate/approve"
        curl "${A[@]}" --data-binary "{\"name\": \"$MODEL-$c\", \"version\": \"$v\", \"stage\": \"Production\", \"archive_existing_versions\": true}" "$URL$M/model-versions/transition-stage"
    done >codes.$c 2>&1
}
pids=()
for c in $(seq $CLIENTS); do client $c & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
bad=$(cat codes.* | grep -vc '^200$' || true)
[ "$bad" = 0 ] || fail "$bad requests did not answer 200: $(sort codes.* | uniq -c)"
[ "$(cat codes.* | wc -l)" = $((CLIENTS * ROUNDS * 6)) ] || fail "missing answers"
for c in $(seq $CLIENTS); do
    expect 200 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "name = '$MODEL-$c' AND stage = 'Production'" '$f|@uri')"
    [ "$(jq -c '[.model_versions[] | .version]' body)" = "[\"$ROUNDS\"]" ] || fail "model $c: $(cat body)"
done
# Concurrent promotions into a multi-version stage, each with archive_existing_versions: each
# archives the versions that were in the stage before it, so the stage never ends empty and
# every version of an earlier round leaves it. (Each had archived what a search found after
# its own commit, the others' new versions too: three at once could leave the stage empty,
# and "already in Archived" came back as an archiving error.)
jq -n --arg n "canary-$RUN" --rawfile a alice.pub.pem '{name: $n, stagegate_policy: {
    stages: ["None", "Canary", "Production", "Archived"], report_stage: "Production",
    transitions: "None>Canary,Canary>Production,Canary>Archived,Production>Archived",
    multi_version: ["Canary"], promoters: {Production: [$a]}}}' >canary.json
expect 200 alice POST $M/registered-models/create @canary.json
CANARY_ROUNDS=8
for round in $(seq $CANARY_ROUNDS); do
    vs=()
    for k in 1 2 3; do
        expect 200 alice POST $M/model-versions/create "{\"name\": \"canary-$RUN\", \"source\": \"m1.bin\"}"
        vs+=("$(jbody .model_version.version)")
    done
    pids=()
    for v in "${vs[@]}"; do
        curl -sS --max-time 30 -H "Authorization: Bearer $(cat alice.token)" -H "Content-Type: application/json" \
            --data-binary "{\"name\": \"canary-$RUN\", \"version\": \"$v\", \"stage\": \"Canary\", \"archive_existing_versions\": true}" \
            "$URL$M/model-versions/transition-stage" >ans.$v & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    for v in "${vs[@]}"; do
        [ "$(jq -r '.model_version.current_stage' ans.$v)" = Canary ] || fail "round $round v$v: $(cat ans.$v)"
        [ "$(jq -r '.archive_existing_versions_error // ""' ans.$v)" = "" ] || fail "round $round v$v: $(cat ans.$v)"
    done
    expect 200 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "name = 'canary-$RUN' AND stage = 'Canary'" '$f|@uri')"
    jq -e --argjson round "[\"${vs[0]}\", \"${vs[1]}\", \"${vs[2]}\"]" \
        '[.model_versions[].version] as $in | ($in | length) >= 1 and ($in - $round | length) == 0' body >/dev/null ||
        fail "round $round (v${vs[*]}): in Canary now $(jq -c '[.model_versions[].version]' body)"
done
expect 200 carol GET /api/stagegate/verify-log
stop_server
echo "concurrency OK"
