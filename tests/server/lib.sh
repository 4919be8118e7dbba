# Shared setup for the server tests: a temp dir, keys, tokens, an artifact root, and a server
# started on a loopback port the kernel picks free (port 0), always stopped on exit.
# SG_SERVER_DB names the registry the server holds (any --db value the registry accepts);
# default a fresh SQLite file. Model names carry a per-run suffix, so a shared database works.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${SG_REG_MAKE_REPORT:?}"
SG=$STAGEGATE_BIN
MKREP=$SG_REG_MAKE_REPORT
WORK=$(mktemp -d)
SPID=""
stop_server() {
    if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
        kill -TERM "$SPID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SPID" 2>/dev/null || true
    fi
    [ -z "$SPID" ] || wait "$SPID" 2>/dev/null || true
    SPID=""
    # A sanitizer build reports into the server's log; any report fails the test.
    if [ -f "$WORK/server.log" ] && grep -q "Sanitizer\|runtime error:" "$WORK/server.log"; then
        cat "$WORK/server.log" >&2
        echo "FAIL: sanitizer report in the server's log" >&2
        return 1
    fi
}
PG_DROP=""
drop_pg() {
    [ -z "$PG_DROP" ] || "$PG_BIN/psql" -h "$PG_HOST" -U "$PG_USER" -d postgres -qAtX \
        -c "DROP DATABASE IF EXISTS $PG_DROP WITH (FORCE)" >/dev/null 2>&1 || true
}
# EXTRA_SPIDS: servers a test started besides $SPID (a second server on the same database).
EXTRA_SPIDS=""
stop_extra() {
    local p
    for p in $EXTRA_SPIDS; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $EXTRA_SPIDS; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    EXTRA_SPIDS=""
}
trap 'rc=$?; stop_extra; stop_server || rc=1; drop_pg; rm -rf "$WORK"; exit $rc' EXIT
cd "$WORK"
# On the PostgreSQL cluster tests/registry/pg_cluster.sh started for this ctest run
# (SG_PG_STATE): a fresh database, dropped at exit.
if [ -z "${SG_SERVER_DB:-}" ] && [ -n "${SG_PG_STATE:-}" ]; then
    [ -s "$SG_PG_STATE" ] || { echo "FAIL: no PostgreSQL cluster ($SG_PG_STATE is missing)" >&2; exit 1; }
    . "$SG_PG_STATE"
    PG_DROP=sg_srv_$$_$RANDOM
    "$PG_BIN/psql" -h "$PG_HOST" -U "$PG_USER" -d postgres -qAtX -c "CREATE DATABASE $PG_DROP" >/dev/null
    SG_SERVER_DB="postgresql://$PG_USER@/$PG_DROP?host=$PG_HOST"
fi
DB=${SG_SERVER_DB:-$WORK/registry.db}
RUN=$$$RANDOM
MODEL=fraud-$RUN

fail() { echo "FAIL: $*" >&2; [ -f "$WORK/server.log" ] && tail -20 "$WORK/server.log" >&2; exit 1; }
sha() { sha256sum "$1" | cut -c1-64; }
# sqlq SQL: a query on the server's database, SQLite or PostgreSQL.
sqlq() {
    if [ -n "$PG_DROP" ]; then
        "$PG_BIN/psql" -h "$PG_HOST" -U "$PG_USER" -d "$PG_DROP" -qAtX -c "$1"
    else
        sqlite3 "$DB" "$1"
    fi
}
keyid() { openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -c1-64; }

# setup: keys (signer, alice promotes, bob approves, carol has a token but no role), tokens,
# artifacts under art/.
setup() {
    for k in signer alice bob carol; do "$SG" keygen --out $k >/dev/null; done
    for k in alice bob carol; do
        "$SG" token add --tokens tokens --principal $k.pub.pem --name $k >$k.token
    done
    mkdir -p art
    for i in 1 2 3; do head -c 4096 /dev/urandom >art/m$i.bin; done
}

# start_server [OPTIONS...]: serves $DB with tokens and art/; sets PORT, URL and SPID.
start_server() {
    : >server.log
    "$SG" serve --db "$DB" --listen 127.0.0.1:0 --tokens tokens --artifact-root art "$@" \
        2>>server.log &
    SPID=$!
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on https\{0,1\}:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' server.log)
        [ -n "$PORT" ] && break
        kill -0 "$SPID" 2>/dev/null || fail "server exited: $(cat server.log)"
        sleep 0.1
    done
    [ -n "$PORT" ] || fail "server did not start"
    URL=http://127.0.0.1:$PORT
}

# call WHO METHOD PATH [BODY]: curl as WHO (alice, bob, carol, none, or a literal token with
# "token:..."); the status goes to $CODE and the body to $WORK/body.
call() {
    local who=$1 method=$2 path=$3 body=${4:-} auth=()
    case $who in
        none) ;;
        token:*) auth=(-H "Authorization: Bearer ${who#token:}") ;;
        *) auth=(-H "Authorization: Bearer $(cat $who.token)") ;;
    esac
    local data=()
    [ -n "$body" ] && data=(--data-binary "$body")
    # A change is JSON, declared so (the server refuses another type: docs/server.md).
    [ "$method" = GET ] || [ "$method" = HEAD ] || data+=(-H "Content-Type: application/json")
    CODE=$(curl -sS --max-time 20 -o "$WORK/body" -w '%{http_code}' -X "$method" "${auth[@]}" \
        "${data[@]}" "$URL$path") || CODE=000
}
# expect CODE WHO METHOD PATH [BODY]
expect() {
    local want=$1; shift
    call "$@"
    [ "$CODE" = "$want" ] || fail "HTTP $CODE, wanted $want: $* -> $(cat "$WORK/body")"
}
body_has() { grep -qF -- "$1" "$WORK/body" || fail "response lacks: $1 (got $(cat "$WORK/body"))"; }
jbody() { jq -r "$1" "$WORK/body"; }
stage_of() {
    expect 200 alice GET "/api/2.0/mlflow/model-versions/get?name=$1&version=$2"
    jbody .model_version.current_stage
}
# report KEY ARTIFACT: a signed PASSED report for ARTIFACT's digest, in ARTIFACT.report
report() { "$MKREP" "$1.key.pem" "$(sha "$2")" PASSED now "$2.report"; }

# create_model NAME: signer trusted, alice promotes to Production, bob approves (required).
create_model() {
    jq -n --arg n "$1" --rawfile s signer.pub.pem --rawfile a alice.pub.pem \
        --rawfile b bob.pub.pem '{name: $n, description: "lecture model",
        tags: [{key: "team", value: "risk"}],
        stagegate_policy: {signers: [$s], promoters: {Production: [$a]}, approvers: [$b],
                           require_approval: true}}' >create.json
    expect 200 alice POST /api/2.0/mlflow/registered-models/create @create.json
}
