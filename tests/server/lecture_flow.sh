#!/bin/bash
# The lecture's flow through the server's MLflow REST API, with curl: create the model and
# versions; Staging without a report is refused; a report uploaded -> Staging; approval ->
# Production with archive_existing_versions; get-latest-versions; rollback; search with a
# filter; tags and aliases; every audit entry names the principal; the chain verifies.
. "$(dirname "$0")/lib.sh"
setup
start_server
M=/api/2.0/mlflow
create_model "$MODEL"
[ "$(jbody .registered_model.name)" = "$MODEL" ] || fail "create returned $(cat body)"
expect 400 alice POST $M/registered-models/create "{\"name\": \"$MODEL\"}"
[ "$(jbody .error_code)" = RESOURCE_ALREADY_EXISTS ] || fail "duplicate model: $(cat body)"

# Versions: the server computes each digest; a digest the client claims is ignored.
for i in 1 2 3; do
    expect 200 alice POST $M/model-versions/create \
        "{\"name\": \"$MODEL\", \"source\": \"file://$WORK/art/m$i.bin\", \"artifact_sha256\": \"$(printf 0%.0s {1..64})\", \"tags\": [{\"key\": \"n\", \"value\": \"$i\"}]}"
    [ "$(jbody .model_version.version)" = $i ] || fail "version $i: $(cat body)"
    [ "$(jbody .model_version.artifact_sha256)" = "$(sha art/m$i.bin)" ] || fail "digest of v$i"
    [ "$(jbody .model_version.current_stage)" = None ] || fail "v$i stage"
done

# Staging without a report: refused with the CLI's reason.
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Staging\"}"
[ "$(jbody .error_code)" = INVALID_PARAMETER_VALUE ] || fail "error code $(cat body)"
body_has "refused: $MODEL v1 -> Staging: entering Staging requires a passing signed report"

# A report for v2's digest does not stage v1.
report signer art/m2.bin
expect 200 alice POST /api/stagegate/reports @art/m2.bin.report
[ "$(jbody .subject_sha256)" = "$(sha art/m2.bin)" ] || fail "report subject"
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Staging\"}"

report signer art/m1.bin
expect 200 alice POST /api/stagegate/reports @art/m1.bin.report
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Staging\"}"
[ "$(jbody .model_version.current_stage)" = Staging ] || fail "v1 not staged"
[ "$(jbody .model_version.validated)" = true ] || fail "v1 not validated"

# Production needs an approval by someone other than the promoter.
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": 1, \"stage\": \"Production\"}"
body_has "no approval on record (model requires approval)"
expect 200 bob POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"1\", \"comment\": \"looks good\"}"
[ "$(jbody .approver_key_id)" = "$(keyid bob.pub.pem)" ] || fail "approver id"
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Production\", \"archive_existing_versions\": true}"
[ "$(jbody .model_version.current_stage)" = Production ] || fail "v1 not in Production"

# v2 through the same gates; promoting it archives v1.
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"2\", \"stage\": \"Staging\"}"
# A transition repeated (a client retrying a request whose answer was lost) is answered as
# MLflow answers one into the current stage: 200 with the version as it is, nothing written.
events() {
    expect 200 carol GET "/api/stagegate/history?name=$MODEL"
    jq '.events | length' body
}
n_events=$(events)
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"2\", \"stage\": \"staging\"}"
[ "$(jbody .model_version.current_stage)/$(jbody .model_version.version)/$(jbody .stagegate_unchanged)" = Staging/2/true ] ||
    fail "repeated Staging: $(cat body)"
[ "$(events)" = "$n_events" ] || fail "a repeated transition wrote an event"
expect 200 bob POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"2\"}"
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"2\", \"stage\": \"Production\", \"archive_existing_versions\": true}"
[ "$(jq 'has("stagegate_unchanged")' body)" = false ] || fail "a move answered as unchanged: $(cat body)"
[ "$(stage_of "$MODEL" 1)" = Archived ] || fail "v1 not archived"
n_events=$(events)
expect 200 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"2\", \"stage\": \"Production\", \"archive_existing_versions\": true}"
[ "$(jbody .model_version.current_stage)" = Production ] || fail "repeated Production: $(cat body)"
[ "$(stage_of "$MODEL" 1)" = Archived ] || fail "v1 moved by a repeated transition"
[ "$(events)" = "$n_events" ] || fail "a repeated promotion wrote an event"
# ... for a caller who could have made it: a principal who may not promote to Production
# is refused as for the move itself (no answer tells it more than a read would)
expect 403 carol POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"2\", \"stage\": \"Production\"}"
body_has "refused: $MODEL v2 -> Production: key"
body_has "is not an authorized promoter for Production"

expect 200 alice POST $M/registered-models/get-latest-versions "{\"name\": \"$MODEL\", \"stages\": [\"Production\", \"Archived\", \"None\"]}"
[ "$(jq -c '[.model_versions[] | [.current_stage, .version]]' body)" = '[["None","3"],["Production","2"],["Archived","1"]]' ] ||
    fail "latest versions: $(cat body)"
# the same as a GET: a repeated field is a repeated parameter, every value of it counts
expect 200 alice GET "$M/registered-models/get-latest-versions?name=$MODEL&stages=Production&stages=Archived&stages=None"
[ "$(jq -c '[.model_versions[] | [.current_stage, .version]]' body)" = '[["None","3"],["Production","2"],["Archived","1"]]' ] ||
    fail "latest versions by GET: $(cat body)"
# A stage filter that cannot be read is refused, not dropped (it answered with every stage:
# a script asking for the Production version got the Staging one too).
for stages in '"Production"' '{"a": "Production"}' '[1, {}]' '["Prod"]'; do
    expect 400 alice POST $M/registered-models/get-latest-versions "{\"name\": \"$MODEL\", \"stages\": $stages}"
    body_has "stages"
done
expect 400 alice GET "$M/registered-models/get-latest-versions?name=$MODEL&stages=Producton"
# lists written as PHP, jQuery and axios write them (stages[]=, stages[0]=), which MLflow's
# server reads as the list: they had been dropped, and the answer held every stage
# ... and a bracket form that is no list entry is refused, not dropped
expect 400 alice GET "$M/registered-models/get-latest-versions?name=$MODEL&stages%5Bx%5D=Production"
body_has "is no list entry"
for q in "stages%5B%5D=Production" "stages%5B0%5D=Production" "STAGES%5B%5D=Production&stages=Archived"; do
    expect 200 alice GET "$M/registered-models/get-latest-versions?name=$MODEL&$q"
    want='["2"]'
    case $q in *Archived) want='["2","1"]' ;; esac
    [ "$(jq -c '[.model_versions[] | .version]' body)" = "$want" ] || fail "$q: $(cat body)"
done
expect 200 alice POST $M/registered-models/get-latest-versions "{\"name\": \"$MODEL\", \"stages\": [\"production\"]}"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["2"]' ] || fail "stages in another case: $(cat body)"
# any other parameter given twice, or holding a NUL, is refused: which one counts is a guess
expect 400 alice GET "$M/model-versions/get?name=$MODEL&version=1&version=2"
body_has "query parameter 'version' is given twice"
expect 400 alice GET "/api/stagegate/get?name=$MODEL&name=other"
body_has "query parameter 'name' is given twice"
expect 400 alice GET "$M/registered-models/get?name=$MODEL%00x"
body_has "query parameter 'name' holds a NUL"
# a name that is not UTF-8: still an MLflow error object, the bytes shown as '?'
call alice GET "$M/registered-models/get?name=%FF%FEx"
[ "$CODE" = 400 ] || [ "$CODE" = 404 ] || fail "a name that is not UTF-8: HTTP $CODE"
jq -e '(.error_code | type) == "string" and (.message | length) > 0' body >/dev/null ||
    fail "not an error object: $(cat body)"
# (PostgreSQL refuses the bytes itself, 400; SQLite finds no such model, and the message
# quotes the name)
if [ -z "${PG_DROP:-}" ]; then body_has "no model named '??x'"; fi
expect 200 alice GET "$M/registered-models/get?name=$MODEL"
[ "$(jq -c '[.registered_model.latest_versions[] | .current_stage]' body)" = '["None","Production","Archived"]' ] ||
    fail "registered model's latest versions: $(cat body)"

# Rollback: v1 back to Production, v2 archived.
expect 200 alice POST /api/stagegate/rollback "{\"name\": \"$MODEL\"}"
[ "$(jbody .restored_version)/$(jbody .archived_version)" = 1/2 ] || fail "rollback: $(cat body)"

# The lecture's own rollback with plain MLflow calls: archive the Production version, then
# transition the previous one (now Archived) to Production. Only a version that has been in
# Production before comes back, for a Production promoter, and not once it was rejected.
T=$M/model-versions/transition-stage
tr() { echo "{\"name\": \"$MODEL\", \"version\": \"$1\", \"stage\": \"$2\"}"; }
expect 200 alice POST $T "$(tr 1 Archived)"
expect 200 alice POST $T "$(tr 2 Production)"
[ "$(jbody .model_version.current_stage)" = Production ] || fail "v2 not restored: $(cat body)"
expect 200 alice POST $T "$(tr 2 Archived)"
expect 403 carol POST $T "$(tr 1 Production)"
body_has "is not an authorized promoter for Production"
[ "$(stage_of "$MODEL" 1)" = Archived ] || fail "carol restored v1"
# v3 never passed the gates: archived from None, it cannot reach Production this way.
expect 200 alice POST $T "$(tr 3 Archived)"
expect 400 alice POST $T "$(tr 3 Production)"
body_has "v3 has never been in Production"
body_has "/api/stagegate/rollback"
# A rejected version does not come back either.
expect 200 bob POST /api/stagegate/approve "{\"name\": \"$MODEL\", \"version\": \"2\", \"reject\": true, \"comment\": \"bad in prod\"}"
expect 400 alice POST $T "$(tr 2 Production)"
body_has "v2 was rejected by approver"
expect 200 alice POST $T "$(tr 1 Production)"
[ "$(jbody .model_version.current_stage)" = Production ] || fail "v1 not restored: $(cat body)"
expect 200 carol GET "/api/stagegate/history?name=$MODEL"
[ "$(jq '[.events[] | select(.action == "restore")] | length' body)" = 2 ] || fail "restore events: $(cat body)"

# Search with a filter.
expect 200 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "name = '$MODEL' AND stage = 'Production'" '$f|@uri')"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["1"]' ] || fail "search: $(cat body)"
# a stage is named regardless of case, as transition-stage names it ('production' had
# matched nothing)
expect 200 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "name = '$MODEL' AND stage = 'production'" '$f|@uri')"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["1"]' ] || fail "search by stage in another case: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "stage = 'PRODUCTION' AND name = '$MODEL'" '$f|@uri')"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["1"]' ] || fail "search by stage alone first: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "name = '$MODEL' AND stage != 'production'" '$f|@uri')"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["2","3"]' ] || fail "stage != in another case: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "name = '$MODEL' AND tags.n != '1'" '$f|@uri')&max_results=1"
[ "$(jq -c '[.model_versions[] | .version]' body)/$(jbody .next_page_token)" = '["2"]/1' ] || fail "paged search: $(cat body)"
F=$(jq -rn --arg f "name='$MODEL'" '$f|@uri')
expect 200 carol GET "$M/model-versions/search?filter=$F&max_results=2"
[ "$(jq -c '[.model_versions[] | .version]' body)/$(jbody .next_page_token)" = '["1","2"]/2' ] || fail "page 1: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$F&max_results=2&page_token=2"
[ "$(jq -c '[.model_versions[] | .version]' body)/$(jq -r 'has("next_page_token")' body)" = '["3"]/false' ] ||
    fail "page 2: $(cat body)"
# Field names as protobuf's JSON mapping also writes them (lowerCamelCase), in a query or a
# body, name the same fields (they had been ignored: a full page, nothing archived); a field
# given under both names is refused.
expect 200 carol GET "$M/model-versions/search?filter=$F&maxResults=2&pageToken=2"
[ "$(jq -c '[.model_versions[] | .version]' body)/$(jq -r 'has("next_page_token")' body)" = '["3"]/false' ] ||
    fail "maxResults/pageToken: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$F&orderBy=version_number%20DESC&maxResults=1"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["3"]' ] || fail "orderBy: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$F&orderBy[]=version_number%20DESC&maxResults=1"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["3"]' ] || fail "orderBy[]: $(cat body)"
expect 400 carol GET "$M/model-versions/search?filter=$F&max_results=1&maxResults=2"
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"2\", \"stage\": \"Production\", \"archiveExistingVersions\": 1}"
body_has "archive_existing_versions must be true or false"
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"2\", \"stage\": \"Production\", \"archiveExistingVersions\": true, \"archive_existing_versions\": true}"
body_has "field archive_existing_versions is given twice, as archiveExistingVersions and as archive_existing_versions"
# archive_existing_versions into a stage that is not an active one is refused, as MLflow
# refuses it, before anything moves (it had run a no-op archiving of every other version)
v3_stage=$(stage_of "$MODEL" 3)
for st in Archived None archived; do
    expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"3\", \"stage\": \"$st\", \"archive_existing_versions\": true}"
    body_has "archive_existing_versions applies to an active stage, not to $st"
done
[ "$(stage_of "$MODEL" 3)" = "$v3_stage" ] || fail "v3 moved by a refused transition"
# Paging values out of range or not numbers are refused, not answered with another page (a
# page_token near 2^63 overflowed the offset arithmetic).
for q in max_results=0 max_results=-1 max_results=abc max_results=1.5 \
    page_token=x page_token=-1 page_token=9223372036854775807 page_token=1e3; do
    expect 400 carol GET "$M/model-versions/search?filter=$F&$q"
    [ "$(jbody .error_code)" = INVALID_PARAMETER_VALUE ] || fail "$q: $(cat body)"
    expect 400 carol GET "$M/registered-models/search?$q"
done
# MLflow's bounds: versions up to 200,000 a page (its clients send 10,000 when given none,
# which had been refused), registered models up to 1,000.
expect 200 carol GET "$M/model-versions/search?filter=$F&max_results=10000"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["1","2","3"]' ] || fail "max_results=10000: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$F&max_results=200000"
expect 400 carol GET "$M/model-versions/search?filter=$F&max_results=200001"
expect 200 carol GET "$M/registered-models/search?max_results=1000"
expect 400 carol GET "$M/registered-models/search?max_results=1001"
expect 200 carol GET "$M/model-versions/search?filter=$F&order_by=version%20DESC"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["3","2","1"]' ] || fail "ordered search: $(cat body)"
# order_by as MLflow reads it: repeated clauses applied in turn, keywords in any case, its
# column names; an unknown column or a malformed clause is 400, not the default order.
expect 200 carol GET "$M/model-versions/search?filter=$F&order_by=name%20asc&order_by=version_number%20desc"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["3","2","1"]' ] || fail "two clauses: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$F&order_by=VERSION_NUMBER"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["1","2","3"]' ] || fail "version_number: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$F&order_by=version_number%20DESC&max_results=2&page_token=2"
[ "$(jq -c '[.model_versions[] | .version]' body)" = '["1"]' ] || fail "ordered second page: $(cat body)"
expect 200 carol GET "$M/model-versions/search?filter=$F&order_by=last_updated_timestamp%20DESC&order_by=version_number%20DESC"
/usr/bin/python3 -c 'import json,sys; v=json.load(open("body"))["model_versions"]; k=[(int(x["last_updated_timestamp"]), int(x["version"])) for x in v]; sys.exit(k != sorted(k, reverse=True))' ||
    fail "last_updated_timestamp DESC: $(cat body)"
for bad in "bogus_field%20DESC" "version_number%20DESCENDING" "version_number%20ASC,last_updated_timestamp%20DESC" "name%20asc%20x"; do
    expect 400 carol GET "$M/model-versions/search?filter=$F&order_by=$bad"
    [ "$(jbody .error_code)" = INVALID_PARAMETER_VALUE ] && body_has "invalid order_by clause" || fail "order_by=$bad: $(cat body)"
done
expect 400 carol GET "$M/registered-models/search?order_by=version_number"
expect 200 carol GET "$M/registered-models/search?filter=$(jq -rn --arg f "name LIKE 'fraud-$RUN%'" '$f|@uri')"
[ "$(jq -c '[.registered_models[] | .name]' body)" = "[\"$MODEL\"]" ] || fail "model search: $(cat body)"
# What MLflow 2.21+ clients send with every registered-model search (search_registered_models
# appends it to the user's filter): MLflow's tag. prefix and its prompt mark, which a model
# without the tag does not carry (it had been 400 for every call). Tags of registered models
# filter as versions' do; versions take the prompt condition too.
NP="tag.\`mlflow.prompt.is_prompt\` != 'true'"
expect 200 carol GET "$M/registered-models/search?filter=$(jq -rn --arg f "$NP" '$f|@uri')"
jq -e --arg m "$MODEL" '[.registered_models[] | .name] | index($m) != null' body >/dev/null ||
    fail "the prompt condition alone: $(cat body)"
for f in "name LIKE 'fraud-$RUN%' AND $NP" "attribute.name = '$MODEL' AND tags.team = 'risk'"; do
    expect 200 carol GET "$M/registered-models/search?filter=$(jq -rn --arg f "$f" '$f|@uri')"
    [ "$(jq -c '[.registered_models[] | .name]' body)" = "[\"$MODEL\"]" ] || fail "model search $f: $(cat body)"
done
for f in "name = '$MODEL' AND tags.team = 'ops'" "name = '$MODEL' AND tag.\`mlflow.prompt.is_prompt\` = 'true'"; do
    expect 200 carol GET "$M/registered-models/search?filter=$(jq -rn --arg f "$f" '$f|@uri')"
    [ "$(jq -c '[.registered_models[]?]' body)" = "[]" ] || fail "model search $f: $(cat body)"
done
expect 400 carol GET "$M/registered-models/search?filter=$(jq -rn --arg f "stage = 'Production'" '$f|@uri')"
body_has "not by stage"
expect 200 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "name = '$MODEL' AND $NP" '$f|@uri')"
[ "$(jq '.model_versions | length' body)" = 3 ] || fail "versions with the prompt condition: $(cat body)"
# MLflow's version columns (they had been 400)
for fv in "version_number > 1|2,3" "attribute.version_number = '1'|1" "run_id IN ('x', '')|1,2,3" \
    "run_id = 'abc'|" "source_path LIKE '%/m2.bin'|2"; do
    expect 200 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "name = '$MODEL' AND ${fv%|*}" '$f|@uri')"
    [ "$(jq -r '[.model_versions[]? | .version] | join(",")' body)" = "${fv#*|}" ] || fail "${fv%|*}: $(cat body)"
done
expect 400 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "version_number LIKE '1'" '$f|@uri')"
body_has "version_number takes"
expect 400 carol GET "$M/model-versions/search?filter=$(jq -rn --arg f "name = " '$f|@uri')"
body_has "search filter: at position"
# Ties in an order_by broken as MLflow's stores break them, the newest version first: "the
# newest version by creation time" is the highest version of the latest second (versions
# made in one second had answered the oldest of them), and order_by[] is the list too.
expect 200 carol GET "$M/model-versions/search?filter=$F"
want=$(jq -r '[.model_versions[] | {t: (.creation_timestamp | tonumber), v: (.version | tonumber)}] | max_by([.t, .v]) | .v' body)
for ob in "order_by=creation_timestamp%20DESC" "order_by%5B%5D=creation_timestamp%20DESC"; do
    expect 200 carol GET "$M/model-versions/search?filter=$F&$ob&max_results=1"
    [ "$(jq -r '.model_versions[0].version' body)" = "$want" ] || fail "$ob: $(cat body), wanted v$want"
done

# Tags and aliases.
expect 200 alice POST $M/model-versions/set-tag "{\"name\": \"$MODEL\", \"version\": \"1\", \"key\": \"owner\", \"value\": \"risk\"}"
expect 200 alice DELETE $M/model-versions/delete-tag "{\"name\": \"$MODEL\", \"version\": \"1\", \"key\": \"n\"}"
# Deleting what is not there changes nothing and succeeds, as in MLflow (a tag twice, an alias
# never set), and records nothing; a version that does not exist is still 404.
expect 200 carol GET "/api/stagegate/history?name=$MODEL"
events=$(jq '.events | length' body)
expect 200 alice DELETE $M/model-versions/delete-tag "{\"name\": \"$MODEL\", \"version\": \"1\", \"key\": \"n\"}"
[ "$(cat body)" = "{}" ] || fail "second delete-tag: $(cat body)"
expect 200 alice DELETE $M/registered-models/alias "{\"name\": \"$MODEL\", \"alias\": \"never-$RUN\"}"
expect 200 carol GET "/api/stagegate/history?name=$MODEL"
[ "$(jq '.events | length' body)" = "$events" ] || fail "deleting what is not there was recorded"
expect 404 alice DELETE $M/model-versions/delete-tag "{\"name\": \"$MODEL\", \"version\": \"99\", \"key\": \"n\"}"
expect 200 alice GET "$M/model-versions/get?name=$MODEL&version=1"
[ "$(jq -c .model_version.tags body)" = '[{"key":"owner","value":"risk"}]' ] || fail "tags: $(cat body)"
# Descriptions (MLflow's update endpoints, PATCH): a version's and the model's, each an audited
# set-description event (the chain is verified at the end); one given at create is kept.
expect 200 alice PATCH $M/model-versions/update "{\"name\": \"$MODEL\", \"version\": \"1\", \"description\": \"first cut: \u00e9t\u00e9\"}"
[ "$(jbody .model_version.description)" = "first cut: été" ] || fail "update version: $(cat body)"
expect 200 carol GET "$M/model-versions/get?name=$MODEL&version=1"
[ "$(jbody .model_version.description)" = "first cut: été" ] || fail "version description read back: $(cat body)"
expect 200 alice PATCH $M/registered-models/update "{\"name\": \"$MODEL\", \"description\": \"card fraud, EU\"}"
[ "$(jbody .registered_model.description)" = "card fraud, EU" ] || fail "update model: $(cat body)"
# ... and the update is the model's last change (its timestamp had stayed the creation's)
now_ms=$(( $(date +%s) * 1000 ))
[ "$(jbody .registered_model.last_updated_timestamp)" -ge $((now_ms - 5000)) ] ||
    fail "last_updated_timestamp after an update: $(cat body)"
# registered-models/create takes a description as a string only, as the updates do
for d in 5 '["card fraud"]' '{"text": "x"}' true; do
    expect 400 alice POST $M/registered-models/create "{\"name\": \"typed-$RUN\", \"description\": $d}"
    body_has "'description': it must be a string"
done
expect 404 alice GET "$M/registered-models/get?name=typed-$RUN"
expect 200 alice PATCH $M/model-versions/update "{\"name\": \"$MODEL\", \"version\": \"2\", \"description\": \"\"}"
[ "$(jbody .model_version.description)" = "" ] || fail "an empty description: $(cat body)"
# An update without a description clears it, as MLflow's server does (its stores set the
# description to None; MLflow's clients send none when given none).
expect 200 alice PATCH $M/model-versions/update "{\"name\": \"$MODEL\", \"version\": \"2\", \"description\": \"to clear\"}"
[ "$(jbody .model_version.description)" = "to clear" ] || fail "v2's description: $(cat body)"
expect 200 alice PATCH $M/model-versions/update "{\"name\": \"$MODEL\", \"version\": \"2\"}"
[ "$(jbody .model_version.description)" = "" ] || fail "an update without a description: $(cat body)"
expect 400 alice PATCH $M/model-versions/update "{\"name\": \"$MODEL\", \"version\": \"1\", \"description\": 5}"
body_has "'description': it must be a string"
jq -n --arg n "$MODEL" '{name: $n, version: "1", description: ("x" * 65537)}' >long.json
expect 400 alice PATCH $M/model-versions/update @long.json
body_has "65537 bytes, more than 65536"
expect 404 alice PATCH $M/model-versions/update "{\"name\": \"$MODEL\", \"version\": \"99\", \"description\": \"x\"}"
expect 404 alice PATCH $M/registered-models/update "{\"name\": \"no-such-$RUN\", \"description\": \"x\"}"
expect 405 alice POST $M/model-versions/update "{\"name\": \"$MODEL\", \"version\": \"1\", \"description\": \"x\"}"
expect 401 none PATCH $M/model-versions/update "{\"name\": \"$MODEL\", \"version\": \"1\", \"description\": \"x\"}"
expect 200 alice GET "$M/model-versions/get?name=$MODEL&version=1"
[ "$(jbody .model_version.description)" = "first cut: été" ] || fail "a refused update changed the description: $(cat body)"
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"file://$WORK/art/m1.bin\", \"description\": \"v1 again\", \"run_id\": \"abc\"}"
[ "$(jbody .model_version.description)" = "v1 again" ] && [ "$(jbody .model_version.version)" = 4 ] ||
    fail "create with a description: $(cat body)"
expect 400 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"file://$WORK/art/m1.bin\", \"description\": []}"
expect 404 alice GET "$M/model-versions/get?name=$MODEL&version=5" # the refused create made none
expect 200 carol GET "/api/stagegate/history?name=$MODEL"
[ "$(jq '[.events[] | select(.action == "set-description")] | length' body)" = 6 ] ||
    fail "set-description events: $(jq -c '[.events[] | .action]' body)"
expect 200 alice GET "$M/model-versions/get?name=$MODEL&version=1"
# Where a version's artifact is (MLflow's clients download from it): its source, for a reader.
src=$(jbody .model_version.source)
expect 200 carol GET "$M/model-versions/get-download-uri?name=$MODEL&version=1"
[ "$(jq -c 'keys' body)" = '["artifact_uri"]' ] && [ "$(jbody .artifact_uri)" = "$src" ] && [ -f "$src" ] ||
    fail "download uri: $(cat body) (source $src)"
expect 404 carol GET "$M/model-versions/get-download-uri?name=$MODEL&version=99"
[ "$(jbody .error_code)" = RESOURCE_DOES_NOT_EXIST ] || fail "download uri of a missing version: $(cat body)"
body_has "has no version 99"
# A version of a model that does not exist: the answer says the model is missing (it had said
# the model has no version 1), and names no server path.
for p in "model-versions/get-download-uri" "model-versions/get"; do
    expect 404 carol GET "$M/$p?name=no-such-$RUN&version=1"
    [ "$(jbody .error_code)" = RESOURCE_DOES_NOT_EXIST ] || fail "$p of a missing model: $(cat body)"
    body_has "no model named 'no-such-$RUN' in the server's registry"
done
expect 400 carol GET "$M/model-versions/get-download-uri?name=$MODEL"
expect 405 alice POST $M/model-versions/get-download-uri "{\"name\": \"$MODEL\", \"version\": \"1\"}"
# A parameter given twice in two cases is given twice (srv_param reads it without case; the
# request had been answered with one of them).
expect 400 carol GET "$M/model-versions/get-download-uri?name=$MODEL&version=1&VERSION=2"
expect 400 carol GET "$M/model-versions/get?Name=other&name=$MODEL&version=1"
# HEAD on the GET endpoints that check their method: 200, as their Allow header says.
for p in "model-versions/get-download-uri?name=$MODEL&version=1" "model-versions/get?name=$MODEL&version=1" \
    "registered-models/get?name=$MODEL"; do
    code=$(curl -sS -I --max-time 20 -o /dev/null -w '%{http_code}' \
        -H "Authorization: Bearer $(cat carol.token)" "$URL$M/$p") || code=000
    [ "$code" = 200 ] || fail "HEAD $p: HTTP $code"
done
expect 200 alice POST $M/registered-models/alias "{\"name\": \"$MODEL\", \"alias\": \"champion\", \"version\": \"1\"}"
expect 200 carol GET "$M/registered-models/alias?name=$MODEL&alias=champion"
# HEAD is GET without content (the route offers it; it had been 405 with no Allow header)
CODE=$(curl -s -o /dev/null -w '%{http_code}' -I -H "Authorization: Bearer $(cat carol.token)" \
    "$URL$M/registered-models/alias?name=$MODEL&alias=champion")
[ "$CODE" = 200 ] || fail "HEAD registered-models/alias: HTTP $CODE"
# white space after a bearer token is not part of it (RFC 9110 section 5.5; it had been 401)
expect 200 "token:$(cat carol.token) " GET "$M/registered-models/alias?name=$MODEL&alias=champion"
[ "$(jbody .model_version.version)" = 1 ] || fail "alias get: $(cat body)"
expect 200 alice DELETE $M/registered-models/alias "{\"name\": \"$MODEL\", \"alias\": \"champion\"}"
expect 404 carol GET "$M/registered-models/alias?name=$MODEL&alias=champion"
[ "$(jbody .error_code)" = RESOURCE_DOES_NOT_EXIST ] || fail "alias 404 code"
expect 404 carol GET "$M/registered-models/get?name=no-such-$RUN"

# The audit log names the principal of every change and verifies.
expect 200 carol GET "/api/stagegate/history?name=$MODEL"
A=$(keyid alice.pub.pem) B=$(keyid bob.pub.pem)
[ "$(jq -r '[.events[] | select(.action == "transition") | .actor_key_id] | unique | join(",")' body)" = "$A" ] ||
    fail "transition actors: $(cat body)"
[ "$(jq -r '[.events[] | select(.action == "approve") | .actor_key_id] | unique | join(",")' body)" = "$B" ] ||
    fail "approve actors"
[ "$(jq -r '[.events[] | select(.actor_key_id == "")] | length' body)" = 0 ] || fail "an event without actor"
expect 200 carol GET /api/stagegate/verify-log
"$SG" registry verify-log --db "$DB" >/dev/null || fail "verify-log through the CLI"
# Registered models in the order asked for (order_by had been ignored).
create_model "$MODEL-b"
MF=$(jq -rn --arg f "name LIKE 'fraud-$RUN%'" '$f|@uri')
expect 200 carol GET "$M/registered-models/search?filter=$MF&order_by=name%20DESC"
[ "$(jq -c '[.registered_models[] | .name]' body)" = "[\"$MODEL-b\",\"$MODEL\"]" ] || fail "models name DESC: $(cat body)"
expect 200 carol GET "$M/registered-models/search?filter=$MF&order_by=timestamp%20DESC"
/usr/bin/python3 -c 'import json,sys; t=[m["last_updated_timestamp"] for m in json.load(open("body"))["registered_models"]]; sys.exit(len(t) != 2 or t != sorted(t, reverse=True))' ||
    fail "models timestamp DESC: $(cat body)"
expect 200 carol GET "$M/registered-models/search?filter=$MF"
[ "$(jq -c '[.registered_models[] | .name]' body)" = "[\"$MODEL\",\"$MODEL-b\"]" ] || fail "models default order: $(cat body)"
stop_server
grep -q "\"POST $M/model-versions/transition-stage\" 200" server.log || fail "no access log line"
echo "lecture flow OK"
