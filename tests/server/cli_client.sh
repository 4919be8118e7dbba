#!/bin/bash
# The CLI as a client: `stagegate registry --db http://HOST:PORT ...` with the token from
# $STAGEGATE_TOKEN (else $MLFLOW_TRACKING_TOKEN) runs the lecture's subcommands through the
# server, with the local registry's messages and exit codes.
. "$(dirname "$0")/lib.sh"
setup
start_server
R=("$SG" registry --db "$URL")
L=("$SG" registry --db "$WORK/local.db")
run() { # run CODE CMD...: exit code checked, stderr kept in err
    local want=$1; shift
    local got=0
    "$@" >out 2>err || got=$?
    [ "$got" = "$want" ] || fail "exit $got, wanted $want: $* -> $(cat out err)"
}
export STAGEGATE_TOKEN=$(cat alice.token)
POLICY=(--signer signer.pub.pem --promoter Production=alice.pub.pem --approver bob.pub.pem --require-approval)
run 0 "${R[@]}" create-model "$MODEL" "${POLICY[@]}" --description "via the server" --tag team=risk
run 0 "${L[@]}" create-model "$MODEL" "${POLICY[@]}"
run 2 "${R[@]}" create-model "$MODEL" "${POLICY[@]}"
grep -q "already exists" err || fail "duplicate model: $(cat err)"
run 0 "${R[@]}" create-version "$MODEL" art/m1.bin
[ "$(cat out)" = 1 ] || fail "version number $(cat out)"
run 0 "${L[@]}" create-version "$MODEL" art/m1.bin
run 0 "${R[@]}" --json create-version "$MODEL" art/m2.bin
[ "$(jq -r .artifact_sha256 out)" = "$(sha art/m2.bin)" ] || fail "digest $(cat out)"

# The same refusal, the same line and exit code, local and remote.
run 1 "${R[@]}" transition "$MODEL" 1 Staging
cp err remote.err
run 1 "${L[@]}" transition "$MODEL" 1 Staging
cmp -s err remote.err || fail "remote refusal differs: $(cat remote.err) vs $(cat err)"

report signer art/m1.bin
run 0 "${R[@]}" transition "$MODEL" 1 Staging --report art/m1.bin.report
[ "$(cat out)" = "$MODEL v1 -> Staging" ] || fail "transition output $(cat out)"
grep -q "/api/stagegate/reports" server.log && fail "transition --report took a second call"
# into the stage it is in: exit 2, "already in", through a server as on a local registry
# (the server confirms it for MLflow's clients, which retry; it tells this one so)
run 0 "${L[@]}" transition "$MODEL" 1 Staging --report art/m1.bin.report
for with in "" "--report art/m1.bin.report"; do
    # shellcheck disable=SC2086
    run 2 "${R[@]}" transition "$MODEL" 1 Staging $with
    grep -q "$MODEL v1 is already in Staging" err || fail "repeated transition $with: $(cat err)"
    cp err remote.err
    # shellcheck disable=SC2086
    run 2 "${L[@]}" transition "$MODEL" 1 Staging $with
    cmp -s err remote.err || fail "remote repeat differs: $(cat remote.err) vs $(cat err)"
done
run 1 "${R[@]}" transition "$MODEL" 1 Production
grep -q "no approval on record" err || fail "$(cat err)"
STAGEGATE_TOKEN= MLFLOW_TRACKING_TOKEN=$(cat bob.token) run 0 "${R[@]}" approve "$MODEL" 1 --comment ok
grep -q "approved by key" out || fail "approve output $(cat out)"
STAGEGATE_TOKEN=$(cat bob.token) run 1 "${R[@]}" transition "$MODEL" 1 Production
grep -q "is not an authorized promoter" err || fail "$(cat err)"
run 0 "${R[@]}" --json transition "$MODEL" 1 Production
[ "$(jq -r .stage out)" = Production ] || fail "stage $(cat out)"
run 0 "${R[@]}" set-tag "$MODEL" 1 owner risk
run 0 "${R[@]}" set-alias "$MODEL" champion 1
# Descriptions through the server (MLflow's update endpoints): the version's, then the model's.
run 0 "${R[@]}" --json set-description "$MODEL" 1 "shadowed a week"
[ "$(jq -r .description out)" = "shadowed a week" ] || fail "set-description: $(cat out)"
run 0 "${R[@]}" set-description "$MODEL" "lecture model, EU"
run 0 "${R[@]}" --json get "$MODEL"
[ "$(jq -r .description out)" = "lecture model, EU" ] || fail "model description: $(cat out)"
run 2 "${R[@]}" set-description "$MODEL" 99 "x"
# A byte that is not UTF-8 cannot go into the request's JSON: refused with one line, as the
# local registry refuses it (it had been dropped, or failed the call without a message).
run 2 "${R[@]}" set-description "$MODEL" 1 $'shadowed \xff'
grep -q "is not UTF-8 text, which a remote registry (JSON) cannot take" err && [ "$(wc -l < err)" = 1 ] ||
    fail "non-UTF-8 description: $(cat err)"
run 2 "${R[@]}" create-model "x-$RUN" --description $'bad\xffdesc'
grep -q "is not UTF-8 text" err || fail "non-UTF-8 create-model: $(cat err)"
run 2 "${R[@]}" get "x-$RUN"
# The gate's pins go to the server as they go into a local registry (they had been dropped,
# so a report gated under another policy and dataset entered Staging): the same digests, and
# the same refusal of a report made under other ones.
echo "strict policy" >pin-policy.yaml
printf 'dataset' >pin-data.h5
run 0 "${R[@]}" create-model "pinned-$RUN" --signer signer.pub.pem --policy pin-policy.yaml \
    --dataset "sha256:$(sha pin-data.h5)"
run 0 "${R[@]}" --json get "pinned-$RUN"
[ "$(jq -r .policy_sha256 out)" = "$(sha pin-policy.yaml)" ] &&
    [ "$(jq -r .dataset_sha256 out)" = "$(sha pin-data.h5)" ] || fail "pins: $(cat out)"
run 0 "${R[@]}" create-version "pinned-$RUN" art/m1.bin
run 1 "${R[@]}" transition "pinned-$RUN" 1 Staging --report art/m1.bin.report
grep -q "model pinned-$RUN pins its policy" err || fail "pinned transition: $(cat err)"
# A relative artifact path is the caller's, even when the file is not here: it had been sent
# as written and read under the server's artifact root, registering art/m3.bin for "m3.bin"
# asked from a directory that has no such file.
mkdir -p elsewhere
before=$("${R[@]}" --json get "pinned-$RUN" | jq '.versions | length')
(cd elsewhere && "${R[@]}" create-version "pinned-$RUN" m3.bin >../out 2>../err) && fail "a missing relative artifact was registered: $(cat out)"
grep -q "outside the server's artifact root" err || fail "missing relative artifact: $(cat err)"
[ "$("${R[@]}" --json get "pinned-$RUN" | jq '.versions | length')" = "$before" ] || fail "a version was added"
# An empty stage in --stages is refused, as locally (it had been dropped).
run 2 "${R[@]}" create-model "stages-$RUN" --stages "None,,Staging,Production,Archived"
grep -q "'' is not a valid stage name" err || fail "empty stage: $(cat err)"
run 2 "${R[@]}" create-model "stages-$RUN" --stages "None,Staging,Production,Archived,"
# One pin with "none" for the other, as a local registry takes it (the server had refused a
# half pin the local registry stores).
run 0 "${R[@]}" create-model "half-$RUN" --signer signer.pub.pem --policy pin-policy.yaml --dataset none
run 0 "${R[@]}" --json get "half-$RUN"
[ "$(jq -r .policy_sha256 out)" = "$(sha pin-policy.yaml)" ] && [ "$(jq -r .dataset_sha256 out)" = "" ] ||
    fail "half pin: $(cat out)"
# Over the API, a pin that is not a sha256 is refused (400).
code=$(curl -s -o body -w '%{http_code}' -H "Authorization: Bearer $(cat alice.token)" \
    -H 'Content-Type: application/json' -d '{"name":"bad-pin-'"$RUN"'","stagegate_policy":{"policy_sha256":"x","dataset_sha256":"y"}}' \
    "$URL/api/2.0/mlflow/registered-models/create")
[ "$code" = 400 ] && grep -q INVALID_PARAMETER_VALUE body && grep -q "is not a sha256 (64 lowercase hex)" body ||
    fail "pins that are not sha256: $code $(cat body)"
run 0 "${R[@]}" get "$MODEL" 1
grep -q "^  description: shadowed a week$" out || fail "get shows no description: $(cat out)"
run 0 "${R[@]}" get "$MODEL" 1
grep -q "stage: Production" out && grep -q "tag owner = risk" out && grep -q "alias @champion" out ||
    fail "get: $(cat out)"
run 0 "${R[@]}" search "name = '$MODEL' AND stage = 'Production'" --json
[ "$(jq -c '[.versions[] | .version]' out)" = '[1]' ] || fail "search $(cat out)"
run 2 "${R[@]}" search "name = "
grep -q "at position" err || fail "$(cat err)"
run 0 "${R[@]}" history "$MODEL"
grep -q "approve .* by $(keyid bob.pub.pem | cut -c1-16)" out || fail "history $(cat out)"
run 0 "${R[@]}" verify-log
grep -q "audit log verified" out || fail "verify-log $(cat out)"
# ... with the local command's lines, warnings included (a server's answer had dropped the
# "no root of trust" warning this registry, made without --admin, gets)
cp out remote.out
run 0 "$SG" registry --db "$DB" verify-log
cmp -s out remote.out || fail "remote verify-log: $(cat remote.out) / local: $(cat out)"
grep -q "warning: no root of trust" out || fail "setup: this registry has a root of trust: $(cat out)"
run 2 "${R[@]}" get no-such-model-$RUN
STAGEGATE_TOKEN= MLFLOW_TRACKING_TOKEN= run 1 "${R[@]}" get "$MODEL"
grep -q "valid token is required" err || fail "$(cat err)"
# A token with a line break would add headers of its own to the request: refused, nothing sent.
STAGEGATE_TOKEN="$(cat alice.token)"$'\r\nX-Injected: yes' run 2 "${R[@]}" get "$MODEL"
grep -q 'STAGEGATE_TOKEN: a token is one word' err && [ "$(wc -l < err)" = 1 ] || fail "$(cat err)"
STAGEGATE_TOKEN= MLFLOW_TRACKING_TOKEN="bad token" run 2 "${R[@]}" get "$MODEL"
grep -q 'MLFLOW_TRACKING_TOKEN: a token is one word' err || fail "$(cat err)"
run 2 "${R[@]}" transition "$MODEL" 2 Staging --as alice.key.pem
run 2 "${R[@]}" resolve "models:/$MODEL/1"
run 2 "$SG" registry --db http://127.0.0.1:1 list
# A server that answers 200 with JSON that is no stagegate answer ("{}", an array, a version
# holding escape sequences): exit 2, not "audit log verified: 0 events" or the bytes on the
# terminal.
/usr/bin/python3 - >fake.port <<'PYEOF' &
import http.server, json, sys
answers = iter([b"{}", b"[1,2,3]", json.dumps({"model_version": {"version": "1\x1b[2J"}}).encode(),
                json.dumps({"approver_key_id": "\x1b[31mRED"}).encode(), b"{}", b"{}"])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n: self.rfile.read(n)
        body = next(answers, b"{}")
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_GET = do_POST = answer
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
for _ in range(6): s.handle_request()
PYEOF
FAKE=$!
EXTRA_SPIDS="$FAKE" # stopped by the exit trap if a check fails
for _ in $(seq 50); do [ -s fake.port ] && break; sleep 0.1; done
F=(env STAGEGATE_TOKEN=abc "$SG" registry --db "http://127.0.0.1:$(cat fake.port)")
echo x >fake.bin
for cmd in "verify-log" "verify-log" "create-version m fake.bin" "approve m 1" "rollback m" "get m"; do
    rc=0; "${F[@]}" $cmd >out 2>err || rc=$?
    [ "$rc" = 2 ] && grep -q "unexpected answer" err || fail "a non-stagegate answer to '$cmd': exit $rc $(cat out err)"
    if grep -q "$(printf '\033')" out err; then fail "an escape sequence reached the terminal ($cmd)"; fi
done
wait "$FAKE" || true
EXTRA_SPIDS=""
echo "cli client OK"
