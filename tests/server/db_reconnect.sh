#!/bin/bash
# The server's database sessions end under it (an administrator's pg_terminate_backend, a
# failover, a restart): it had answered every request 500 "connection lost" until the server
# itself was restarted, while /health said OK. Now a request that meets a lost session is
# answered on a new connection (a change only when nothing of it can have been committed;
# else 503), and the audit chain verifies.
. "$(dirname "$0")/lib.sh"
[ -n "$PG_DROP" ] || fail "needs the PostgreSQL cluster (SG_PG_STATE)"
setup
M=/api/2.0/mlflow
start_server --threads 2
create_model "$MODEL"
expect 200 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m1.bin\"}"
# Both worker threads hold a session now.
for _ in 1 2 3 4; do expect 200 carol GET "$M/registered-models/get?name=$MODEL"; done
terminate() {
    "$PG_BIN/psql" -h "$PG_HOST" -U "$PG_USER" -d postgres -qAtX -c \
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '$PG_DROP' AND pid <> pg_backend_pid()"
}
n=$(terminate)
[ "$n" -ge 1 ] || fail "no server session to end ($n)"
for i in 1 2 3 4 5 6; do
    expect 200 carol GET "$M/registered-models/get?name=$MODEL"
    [ "$(jbody .registered_model.name)" = "$MODEL" ] || fail "read $i after the sessions ended: $(cat body)"
done
terminate >/dev/null
# A change that meets a lost session is made on a new one (nothing of it was committed: the
# database rolled back what the ended session had begun).
for i in 1 2 3 4 5 6; do
    expect 200 alice POST $M/model-versions/set-tag "{\"name\": \"$MODEL\", \"version\": \"1\", \"key\": \"k$i\", \"value\": \"v\"}"
done
expect 200 carol GET "$M/model-versions/get?name=$MODEL&version=1"
[ "$(jq '[.model_version.tags[] | select(.key | startswith("k"))] | length' body)" = 6 ] ||
    fail "the six tags: $(cat body)"
expect 200 carol GET /api/stagegate/verify-log
# Sessions ended over and over while versions are created: every version comes from a 200, a
# 503 that says the change was recorded, or a 503 that says the commit's fate is unknown; and
# every such "recorded" is a version. (A session ended just after COMMIT had answered had been
# a 503 "connection lost" for a version that was made, and a client's retry made it twice.)
before=$("$PG_BIN/psql" -h "$PG_HOST" -U "$PG_USER" -d "$PG_DROP" -qAtX -c "SELECT count(*) FROM model_versions WHERE model_name = '$MODEL'")
( end=$((SECONDS + 6)); while [ $SECONDS -lt $end ]; do terminate >/dev/null 2>&1 || true; done ) & killer=$!
ok=0 recorded=0 unknown=0 tries=0
while kill -0 $killer 2>/dev/null; do
    call alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m1.bin\"}"
    tries=$((tries + 1))
    case $CODE in
        200) ok=$((ok + 1)) ;;
        503) if grep -q "the change was recorded" "$WORK/body"; then recorded=$((recorded + 1))
             elif grep -q "may or may not" "$WORK/body"; then unknown=$((unknown + 1)); fi ;;
        *) fail "create under terminations: $CODE $(cat "$WORK/body")" ;;
    esac
done
wait $killer
after=$("$PG_BIN/psql" -h "$PG_HOST" -U "$PG_USER" -d "$PG_DROP" -qAtX -c "SELECT count(*) FROM model_versions WHERE model_name = '$MODEL'")
made=$((after - before))
[ "$ok" -gt 0 ] || fail "terminations: no create succeeded in $tries"
[ "$made" -ge $((ok + recorded)) ] && [ "$made" -le $((ok + recorded + unknown)) ] ||
    fail "terminations: $made versions made; $ok answered 200, $recorded said the change was recorded and $unknown that the commit was unknown ($tries tries)"
expect 200 carol GET /api/stagegate/verify-log
echo "db reconnect OK ($ok of $tries creates under terminations answered 200, $recorded 503 recorded, $unknown unknown; $made versions)"
