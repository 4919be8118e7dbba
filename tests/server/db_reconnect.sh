#!/bin/bash
# The server's database sessions end under it (an administrator's pg_terminate_backend, a
# failover, a restart): it had answered every request 500 "connection lost" until the server
# itself was restarted, while /health said OK. Now a read is answered on a new connection at
# once, a change that met the lost connection is 503 (which clients retry), and the next
# change goes through; the audit chain verifies.
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
# A change on a lost session: 503 (not 4xx or 500) or done on a fresh one; then changes work.
for i in 1 2; do
    call alice POST $M/model-versions/set-tag "{\"name\": \"$MODEL\", \"version\": \"1\", \"key\": \"k$i\", \"value\": \"v\"}"
    case $CODE in
    200) ;;
    503) [ "$(jbody .error_code)" = TEMPORARILY_UNAVAILABLE ] || fail "503 code: $(cat body)" ;;
    *) fail "a change on a lost session: HTTP $CODE $(cat body)" ;;
    esac
done
for i in 3 4 5 6; do
    expect 200 alice POST $M/model-versions/set-tag "{\"name\": \"$MODEL\", \"version\": \"1\", \"key\": \"k$i\", \"value\": \"v\"}"
done
expect 200 carol GET /api/stagegate/verify-log
echo "db reconnect OK"
