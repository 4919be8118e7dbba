#!/bin/bash
# The server's transition-stage looks the version's report up among the stored uploads. A
# report gated against another baseline than what is in Production (here: the candidate
# itself), uploaded after a good one, had been picked as the newest and refused by the
# transition, though a report that passes every check was stored; any token holder could so
# block a version. Reports that fail the baseline rule are now passed over like those that
# fail the pins, and the good one is used. (SQLite only: the rule is the registry's, tested
# on both backends in baseline_not_production.)
. "$STAGEGATE_SOURCE_DIR/tests/registry/lib.sh"
R="$SG registry"
real_models 3
keys signer alice carol
expect 0 $R create-model fraud --signer signer.pub.pem --promoter Production=alice.pub.pem
for i in 1 2; do expect 0 $R create-version fraud m$i.h5; done
gate_report signer models:/fraud/1 r1.json
expect 0 $R transition fraud 1 Staging --report r1.json
expect 0 $R transition fraud 1 Production --as alice.key.pem
# v2: a good report (gated against Production) and, a second later, one gated against itself
gate_report signer models:/fraud/2 good.json policy.json --baseline models:/fraud/Production
sleep 1.1
gate_report signer models:/fraud/2 self.json policy.json --baseline m2.h5
"$SG" token add --tokens tokens --principal carol.pub.pem --name carol >carol.token
# The log exists before the server starts: the background shell may not have opened it yet
# when the loop first reads it (under set -e, sed's "can't read" had ended the test).
: >server.log
"$SG" serve --db "$STAGEGATE_REGISTRY" --listen 127.0.0.1:0 --tokens tokens 2>>server.log &
SPID=$!
trap 'kill $SPID 2>/dev/null; wait $SPID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' server.log)
    [ -n "$PORT" ] && break
    kill -0 "$SPID" 2>/dev/null || fail "the server exited: $(cat server.log)"
    sleep 0.1
done
[ -n "$PORT" ] || fail "the server did not start: $(cat server.log)"
post() {
    curl -sS -o body -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat carol.token)" \
        -H "Content-Type: application/json" --data-binary "$2" "http://127.0.0.1:$PORT$1"
}
[ "$(post /api/stagegate/reports @good.json)" = 200 ] || fail "upload good.json: $(cat body)"
[ "$(post /api/stagegate/reports @self.json)" = 200 ] || fail "upload self.json: $(cat body)"
code=$(post /api/2.0/mlflow/model-versions/transition-stage '{"name": "fraud", "version": "2", "stage": "Staging"}')
[ "$code" = 200 ] || fail "the stored good report was passed over: HTTP $code $(cat body)"
[ "$(stage_of fraud 2)" = Staging ] || fail "v2 is $(stage_of fraud 2)"
echo "server: a report gated against another baseline does not shadow a good one"
