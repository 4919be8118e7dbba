#!/bin/bash
# SIGTERM: the server stops accepting, lets the request in flight finish (a transition held
# open inside its transaction by the registry's test pause), answers it, and exits 0.
. "$(dirname "$0")/lib.sh"
setup
M=/api/2.0/mlflow
start_server
create_model "$MODEL"
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m1.bin\"}"
stop_server
# (6 s: the checks below take at most 4 s after the pause is seen)
export STAGEGATE_REGISTRY_TEST_PAUSE=transition STAGEGATE_REGISTRY_TEST_PAUSE_S=6
start_server
unset STAGEGATE_REGISTRY_TEST_PAUSE STAGEGATE_REGISTRY_TEST_PAUSE_S
report signer art/m1.bin
expect 200 alice POST /api/stagegate/reports @art/m1.bin.report
curl -sS --max-time 60 -o inflight.body -w '%{http_code}' -H "Authorization: Bearer $(cat alice.token)" \
    -H "Content-Type: application/json" --data-binary "{\"name\": \"$MODEL\", \"version\": \"1\", \"stage\": \"Staging\"}" \
    "$URL$M/model-versions/transition-stage" >inflight.code &
CURL=$!
for _ in $(seq 100); do grep -q "test pause inside transaction" server.log && break; sleep 0.1; done
grep -q "test pause inside transaction" server.log || fail "the transition did not reach the pause"
kill -TERM "$SPID"
sleep 1
kill -0 "$SPID" 2>/dev/null || fail "the server exited with a request in flight"
# No new connections while draining.
rc=0
curl -sS --max-time 3 -o /dev/null "$URL/health" 2>/dev/null || rc=$?
[ $rc != 0 ] || fail "a new request was served after SIGTERM"
wait "$CURL" || fail "the in-flight request failed"
[ "$(cat inflight.code)" = 200 ] || fail "in-flight transition: HTTP $(cat inflight.code) $(cat inflight.body)"
rc=0
wait "$SPID" || rc=$?
SPID=""
[ $rc = 0 ] || fail "server exit $rc after SIGTERM"
grep -q "stagegate serve: stopped" server.log || fail "no stop line"
grep -q "\"POST $M/model-versions/transition-stage\" 200" server.log || fail "in-flight request not logged"
[ "$("$SG" registry get "$MODEL" 1 --db "$DB" --json | jq -r .stage)" = Staging ] || fail "transition not committed"
echo "shutdown OK"
