#!/bin/bash
# PostgreSQL's own faults, on a private cluster this test starts, kills and restarts:
#  - an unreachable server, a database without a registry, a newer schema: exit 2, one line,
#    and no password in it;
#  - the session or the whole server going away inside a transition's transaction (a
#    terminated backend, a fast restart, kill -9 of every server process): the command exits
#    2 with one line, nothing of the transition is applied, verify-log passes after the
#    restart, and the same promotion then succeeds;
#  - kill -9 of the server under concurrent writers: every writer exits 0 or 2 (one line),
#    and the chain verifies after recovery;
#  - a pipelined write the database refuses (a revoked grant): exit 2 naming that write, and
#    nothing of the transition applied.
set -euo pipefail
: "${SG_PG_CLUSTER:?}"
own=$(mktemp -d)
export SG_PG_STATE=$own/cluster.env SG_PG_OWNER_PID=$$
bash "$SG_PG_CLUSTER" start "$SG_PG_STATE" >/dev/null
SG_EXIT_EXTRA='bash "$SG_PG_CLUSTER" stop "$SG_PG_STATE"; rm -rf "$own"'
. "$(dirname "$0")/lib.sh"
R="$SG registry"
one_line() { [ "$(wc -l < "$WORK/err")" = 1 ] || { cat "$WORK/err" >&2; fail "not one line"; }; }
no_password() { if grep -q hunter2 "$WORK/err" "$WORK/out"; then fail "a password was printed"; fi; }
cluster() { bash "$SG_PG_CLUSTER" "$1" "$SG_PG_STATE"; }

# --- schema: none yet, init, a newer one, a foreign one
expect 2 $R list
err_has "holds no stagegate registry (run 'stagegate registry init'"; one_line
expect 0 $R init
grep -q "schema version 9" out || fail "init: $(cat out)"
expect 0 $R init
[ "$(q "SELECT schema_version FROM stagegate_registry")" = 9 ] || fail "schema version not recorded"
q "UPDATE stagegate_registry SET schema_version = 99"
expect 2 $R list
err_has "has schema version 99, newer than this stagegate supports (9)"; one_line
q "UPDATE stagegate_registry SET schema_version = 9"
pg_new_db _foreign
psql_on "$NEW_DB" -c "CREATE TABLE stagegate_registry (id INTEGER, application TEXT, schema_version INTEGER)" \
    -c "INSERT INTO stagegate_registry VALUES (1, 'someone-else', 1)"
expect 2 $R list --db "$NEW_URI"
err_has "is not a stagegate registry"; one_line
# the audit log refuses TRUNCATE too
err_msg=$(q "TRUNCATE audit_log" 2>&1 || true)
grep -q "append-only" <<<"$err_msg" || fail "TRUNCATE of the audit log was not refused: $err_msg"

# --- the owner and application roles exactly as docs/registry.md sets them up
psql_on postgres -c "CREATE ROLE stagegate_owner LOGIN" -c "CREATE ROLE stagegate_app LOGIN" \
    -c "CREATE DATABASE ${PGDB}_roles OWNER stagegate_owner" >/dev/null
PG_DBS+=("${PGDB}_roles")
OWNER="postgresql://stagegate_owner@/${PGDB}_roles?host=$PG_HOST"
APP="postgresql://stagegate_app@/${PGDB}_roles?host=$PG_HOST"
expect 0 $R init --db "$OWNER"
sed -n '/^-- then, as stagegate_owner/,/^```/p' "$STAGEGATE_SOURCE_DIR/docs/registry.md" | grep -v '^```' > grants.sql
[ "$(grep -c GRANT grants.sql)" -ge 5 ] || fail "no grants found in docs/registry.md"
"$PG_BIN/psql" -h "$PG_HOST" -U stagegate_owner -d "${PGDB}_roles" -qAtX -v ON_ERROR_STOP=1 -f grants.sql >/dev/null
keys rsigner ralice
echo "role artifact" > role.bin
expect 0 $R --db "$APP" create-model rm --signer rsigner.pub.pem --promoter Production=ralice.pub.pem
expect 0 $R --db "$APP" create-version rm role.bin
report rsigner role.bin PASSED now role.json
expect 0 $R --db "$APP" transition rm 1 Staging --report role.json
expect 0 $R --db "$APP" transition rm 1 Production --as ralice.key.pem
expect 0 $R --db "$APP" set-tag rm 1 k v
expect 0 $R --db "$APP" delete-tag rm 1 k
expect 0 $R --db "$APP" set-alias rm champ 1
expect 0 $R --db "$APP" verify-log
app_sql() { "$PG_BIN/psql" -h "$PG_HOST" -U stagegate_app -d "${PGDB}_roles" -qAtX -v ON_ERROR_STOP=1 -c "$1" 2>&1 || true; }
app_sql "UPDATE audit_log SET detail = 'x'" | grep "permission denied" >/dev/null || fail "the application role may UPDATE audit_log"
app_sql "DELETE FROM audit_log" | grep "permission denied" >/dev/null || fail "the application role may DELETE from audit_log"
app_sql "DROP TRIGGER audit_log_append_only_update ON audit_log" | grep "must be owner" >/dev/null || fail "the application role may drop the trigger"
expect 2 $R --db "$APP" list --db "$APP"
# A write the registry sends without waiting (pipelined with the commit) that the database
# refuses: the transition fails with that write named, nothing of it is applied, and the
# chain still verifies; with the grant back the same promotion goes through.
echo "role artifact 2" > role2.bin
expect 0 $R --db "$APP" create-version rm role2.bin
report rsigner role2.bin PASSED now role2.json
owner_sql() { "$PG_BIN/psql" -h "$PG_HOST" -U stagegate_owner -d "${PGDB}_roles" -qAtX -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
owner_sql "REVOKE INSERT ON validations FROM stagegate_app"
expect 2 $R --db "$APP" transition rm 2 Staging --report role2.json
err_has "recording a validation refused: permission denied for table validations"; one_line
expect 0 $R --db "$APP" get rm 2
grep -q "stage: None" "$WORK/out" || fail "a refused deferred write left the transition applied: $(cat "$WORK/out")"
expect 0 $R --db "$APP" verify-log
owner_sql "GRANT INSERT ON validations TO stagegate_app"
expect 0 $R --db "$APP" transition rm 2 Staging --report role2.json
expect 0 $R --db "$APP" verify-log

# --- passwords: never printed, in a URI or a connection string
PWURI="postgresql://$PG_USER:hunter2@/no_such_db?host=$PG_HOST"
expect 2 $R list --db "$PWURI"
err_has "postgresql://$PG_USER:***@/no_such_db"; one_line; no_password
expect 2 $R list --db "host=$PG_HOST user=$PG_USER dbname=no_such_db password=hunter2"
err_has "password=***"; one_line; no_password
expect 2 $R list --db "host=$PG_HOST user=$PG_USER dbname=no_such_db password = 'hun ter2'"
if grep -q "ter2" "$WORK/err"; then fail "a quoted password was printed"; fi
# ... nor in the forms libpq reads that the masking did not know: a percent-encoded key, a tab
# before the "=" (they had been printed, and signed into checkpoints)
expect 2 $R list --db "postgresql://$PG_USER@/no_such_db?host=$PG_HOST&pass%77ord=hunter2"
err_has "postgresql://$PG_USER:***@/no_such_db?host=$PG_HOST"; one_line; no_password
expect 2 $R list --db "host=$PG_HOST user=$PG_USER dbname=no_such_db password"$'\t'"=hunter2"
err_has "password=***"; one_line; no_password
# ... nor a password typed with a character its form does not allow, which libpq reads as
# something else: a bare '/' (read as host and port: "invalid integer value"), a bare '&' or
# a space (the rest read as an option), a percent-encoded key before another error. The
# display is rebuilt from what libpq parsed, never the string; one that does not parse is
# not shown.
for bad in "postgresql://$PG_USER:hun/ter2@localhost:1/db" \
    "postgresql://$PG_USER@/db?host=$PG_HOST&password=hun&ter2" \
    "postgresql://$PG_USER@/db?host=$PG_HOST&pass%77ord=hunter2&sslmod=x" \
    "host=$PG_HOST dbname=db password=hun Ter2=x"; do
    expect 2 $R list --db "$bad"; one_line
    if grep -q -i "ter2" "$WORK/err"; then fail "a password (or part of it) was printed: $(cat "$WORK/err")"; fi
done
err_has 'invalid connection option "..."'
expect 2 $R list --db "postgresql://$PG_USER:hun/ter2@localhost:1/db"
err_has "a password holding '/', '?' or '#' must be percent-encoded"
expect 2 $R list --db "postgresql://$PG_USER@/db?host=$PG_HOST&sslmod=x"
err_has 'invalid URI query parameter: "sslmod"' # an option's name is still shown
# A password file libpq would ignore (open to others, or not a plain file) is refused in one
# line: libpq's own WARNING line on stderr had made it two.
printf '*:*:*:*:hunter2\n' >"$WORK/pgpass"; chmod 644 "$WORK/pgpass"
PGPASSFILE="$WORK/pgpass" expect 2 $R list --db "postgresql://$PG_USER@/$PGDB?host=$PG_HOST"
err_has "is open to group or others (mode 0644)"; err_has "chmod 600"; one_line; no_password
mkdir -p "$WORK/pgpass.d"
PGPASSFILE="$WORK/pgpass.d" expect 2 $R list --db "postgresql://$PG_USER@/$PGDB?host=$PG_HOST"
err_has "is not a plain file"; one_line
# ... but a service that gives its own password is libpq's to resolve: the open password
# file is not read then, and the connection is made (it had been refused).
printf '[reg]\nhost=%s\ndbname=%s\nuser=%s\npassword=unused-by-trust\n' "$PG_HOST" "$PGDB" "$PG_USER" >"$WORK/pg_service.conf"
PGSERVICEFILE="$WORK/pg_service.conf" PGPASSFILE="$WORK/pgpass" expect 0 $R list --db "service=reg"
[ ! -s "$WORK/err" ] || fail "service=reg: $(cat "$WORK/err")"
chmod 600 "$WORK/pgpass"
PGPASSFILE="$WORK/pgpass" expect 0 $R list --db "postgresql://$PG_USER@/$PGDB?host=$PG_HOST"
expect 0 $R list --db "postgresql://$PG_USER:hunter2@/$PGDB?host=$PG_HOST"
expect 0 $R list --db "host=$PG_HOST user=$PG_USER dbname=$PGDB"

# --- a registry with v1 in Production and v2 in Staging
keys signer alice
expect 0 $R create-model m --signer signer.pub.pem --promoter Production=alice.pub.pem
real_models 2
for i in 1 2; do
    $R create-version m m$i.h5 >/dev/null
    gate_report signer models:/m/$i r$i.json
    expect 0 $R transition m $i Staging --report r$i.json
done
expect 0 $R transition m 1 Production --as alice.key.pem
# the schema holds Production to one version against direct SQL too (the index, the trigger)
err_msg=$(q "UPDATE model_versions SET stage = 'Production', stage_exclusive = 1 WHERE model_name = 'm' AND version = 2" 2>&1 || true)
grep -q "model_versions_one_per_exclusive_stage" <<<"$err_msg" || fail "a second Production row was not refused: $err_msg"
err_msg=$(q "UPDATE model_versions SET stage = 'Production' WHERE model_name = 'm' AND version = 2" 2>&1 || true)
grep -q "stage_exclusive must match" <<<"$err_msg" || fail "a non-exclusive Production row was not refused: $err_msg"
# ... also from a session whose temporary table shadows model_stages (pg_temp is searched
# first unless named; every role may create temporary tables): the trigger reads its own
# schema's table (both rows had become Production with stage_exclusive 0, past the index)
err_msg=$(q "CREATE TEMP TABLE model_stages AS SELECT model_name, stage, 1 AS multi_version FROM public.model_stages; UPDATE model_versions SET stage = 'Production', stage_exclusive = 0 WHERE model_name = 'm' AND version IN (1, 2)" 2>&1 || true)
grep -q "stage_exclusive must match" <<<"$err_msg" || fail "a temporary model_stages table let two versions into Production: $err_msg"
[ "$(q "SELECT count(*) FROM model_versions WHERE model_name = 'm' AND stage = 'Production'")" = 1 ] ||
    fail "two versions in Production"
# The text encoding is UTF-8 whatever the environment or the string says: PGCLIENTENCODING
# and client_encoding= had made libpq send "José" as LATIN1 bytes the server stored
# double-encoded, and verify-log then called the honest write tampering.
PGCLIENTENCODING=LATIN1 expect 0 $R set-tag m 1 owner "José"
expect 0 $R set-tag m 1 team "Zürich" --db "$STAGEGATE_REGISTRY&client_encoding=LATIN1"
expect 0 $R verify-log
expect 0 $R --json get m 1
[ "$(jq -r '.tags.owner + "|" + .tags.team' "$WORK/out")" = "José|Zürich" ] || fail "tags read back as $(jq -c .tags "$WORK/out")"
[ "$(q "SELECT tag_value FROM version_tags WHERE tag_key = 'owner'")" = "José" ] || fail "stored as $(q "SELECT tag_value FROM version_tags WHERE tag_key = 'owner'")"
head_before=$(q "SELECT seq FROM audit_head")

# paused_promotion: v2 -> Production stops just before COMMIT; its pid in $pid once paused
# Each background command's pp.err is removed first: the shell truncates it in the child,
# which may start after the wait below has read the last command's "test pause" there (a
# loaded CI host failed "never reached its pause" after 22 s of a 60 s wait that way).
paused_promotion() {
    rm -f pp.err
    STAGEGATE_REGISTRY_TEST_PAUSE=transition STAGEGATE_REGISTRY_TEST_PAUSE_S=3 \
        $R transition m 2 Production --as alice.key.pem >pp.out 2>pp.err &
    pid=$!
    for _ in $(seq 1 600); do grep -q "test pause" pp.err 2>/dev/null && break; sleep 0.1; done
    grep -q "test pause" pp.err || fail "the promotion never reached its pause"
}
# after_fault: the paused command failed with one line, and nothing of it is there
after_fault() {
    local pid=$1 rc=0
    wait "$pid" || rc=$?
    [ $rc = 2 ] || { cat pp.err >&2; fail "the interrupted promotion exited $rc, wanted 2"; }
    grep -v "test pause" pp.err > pp.err1
    [ "$(wc -l < pp.err1)" = 1 ] || { cat pp.err >&2; fail "the interrupted promotion's error is not one line"; }
    grep -q "connection lost" pp.err1 || { cat pp.err1 >&2; fail "the error does not say the connection was lost"; }
    [ "$(stage_of m 1)" = Production ] || fail "v1 lost Production"
    [ "$(stage_of m 2)" = Staging ] || fail "v2 half-promoted"
    [ "$(q "SELECT seq FROM audit_head")" = "$head_before" ] || fail "events of the interrupted transaction survived"
    expect 0 $R verify-log
}

# the session is terminated by the server (an administrator, a failover)
paused_promotion
q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
after_fault "$pid"
# the server restarts (fast shutdown, then start) during the transaction
paused_promotion
. "$SG_PG_STATE"
if [ -n "$PG_RUN" ]; then (cd / && runuser -u "$PG_RUN" -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w stop -m fast >/dev/null)
else "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w stop -m fast >/dev/null; fi
# while it is down: unreachable is exit 2, one line
expect 2 $R list
err_has "cannot connect"; one_line
expect 2 $R set-tag m 1 k v
err_has "cannot connect"; one_line
cluster restart
after_fault "$pid"
# kill -9 of every server process mid-transaction, then crash recovery
paused_promotion
cluster kill
cluster restart
after_fault "$pid"
# the registry works on: the same promotion now succeeds
expect 0 $R transition m 2 Production --as alice.key.pem
[ "$(stage_of m 1)" = Archived ] || fail "v1 not archived"
expect 0 $R verify-log
# the server stops answering (SIGSTOP: a frozen VM, a partition that drops packets) while a
# transaction is open: the command gives up after the answer timeout, in one line (it had
# waited for ever). Its COMMIT was sent, so the server, once it runs again, may apply it:
# the message says the change may or may not be recorded, and either way the log verifies.
. "$SG_PG_STATE"
rm -f pp.err
STAGEGATE_PG_ANSWER_TIMEOUT_S=2 STAGEGATE_REGISTRY_TEST_PAUSE=transition \
    STAGEGATE_REGISTRY_TEST_PAUSE_S=2 $R transition m 2 Archived --as alice.key.pem >pp.out 2>pp.err &
# frozen_at_pause WHAT: once the command in the background ($! in pid) reaches its test pause,
# the whole server is stopped (SIGSTOP) until the command ends, or for 30 s; then it runs
# again. The command's exit code goes to rc, its error lines (pauses left out) to pp.err1.
frozen_at_pause() {
    for _ in $(seq 1 600); do grep -q "test pause" pp.err 2>/dev/null && break; sleep 0.1; done
    grep -q "test pause" pp.err || fail "$1: the command never reached its pause"
    local pm frozen still
    pm=$(head -1 "$PG_DIR/data/postmaster.pid")
    frozen="$pm $(pgrep -P "$pm" | tr '\n' ' ')"
    kill -STOP $frozen
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    still=$(kill -0 "$pid" 2>/dev/null && echo yes || true)
    kill -CONT $frozen
    [ -z "$still" ] || { kill "$pid"; fail "$1: still waiting 30 s after the server froze"; }
    rc=0; wait "$pid" || rc=$?
    grep -v "test pause" pp.err > pp.err1 || true
    [ $rc = 2 ] && [ "$(wc -l < pp.err1)" = 1 ] || { cat pp.err >&2; fail "$1: exit $rc, not one line"; }
}
pid=$!
frozen_at_pause "frozen server"
grep -q "gave no answer for 2 s" pp.err1 && grep -q "may or may not be recorded" pp.err1 ||
    { cat pp.err1 >&2; fail "frozen server: the timeout and the unknown outcome are not said"; }
sleep 1
case $(stage_of m 2) in Production | Archived) ;; *) fail "v2 in stage $(stage_of m 2)" ;; esac
expect 0 $R verify-log
# the server freezes before a large write is sent (a 6 MB report): the send itself is
# bounded by the answer timeout (a blocking send had waited in write() for ever once the
# socket's buffer was full), one line, and nothing of the transition is applied
head -c 4096 /dev/urandom > m3.bin
expect 0 $R create-version m m3.bin
MAKE_REPORT_PAD=6000000 report signer m3.bin PASSED now r3big.json
rm -f pp.err
STAGEGATE_PG_ANSWER_TIMEOUT_S=2 STAGEGATE_REGISTRY_TEST_PAUSE=write STAGEGATE_REGISTRY_TEST_PAUSE_S=0.5 \
    $R transition m 3 Staging --report r3big.json >pp.out 2>pp.err &
pid=$!
frozen_at_pause "frozen server, large write"
grep -q "took nothing more of what was sent for 2 s" pp.err1 ||
    { cat pp.err1 >&2; fail "frozen server, large write: the send timeout is not said"; }
sleep 1
[ "$(stage_of m 3)" = None ] || fail "v3 reached $(stage_of m 3) though its write never went out"
expect 0 $R verify-log
expect 0 $R transition m 3 Staging --report r3big.json
# ...but a send that goes on is not cut: a 6 MB report through a link of 1 MB/s (a proxy on
# a Unix socket of its own), with an answer timeout of 2 s, is recorded. The timeout counts
# a server that takes nothing; one deadline for the whole send had failed this transition.
mkdir slow
$PY - "$PG_HOST/.s.PGSQL.5432" "$PWD/slow/.s.PGSQL.5432" >slow.log 2>&1 <<'PYEOF' &
import socket, sys, threading, time
target, path = sys.argv[1], sys.argv[2]
def pump(a, b, rate):
    t0, n = time.time(), 0
    try:
        while True:
            d = a.recv(16384)
            if not d:
                break
            b.sendall(d)
            n += len(d)
            if rate and t0 + n / rate > time.time():
                time.sleep(t0 + n / rate - time.time())
    except OSError:
        pass
    for x in (a, b):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(8)
while True:
    c, _ = srv.accept()
    t = socket.socket(socket.AF_UNIX)
    t.connect(target)
    threading.Thread(target=pump, args=(c, t, 1 << 20), daemon=True).start()
    threading.Thread(target=pump, args=(t, c, 0), daemon=True).start()
PYEOF
proxy=$!
for _ in $(seq 1 100); do [ -S slow/.s.PGSQL.5432 ] && break; sleep 0.05; done
head -c 4096 /dev/urandom > m4.bin
expect 0 $R create-version m m4.bin
MAKE_REPORT_PAD=6000000 report signer m4.bin PASSED now r4big.json
SLOW="postgresql://$PG_USER@/$PGDB?host=$PWD/slow"
t0=$(date +%s)
rc=0; STAGEGATE_PG_ANSWER_TIMEOUT_S=2 $R --db "$SLOW" transition m 4 Staging --report r4big.json >slow.out 2>slow.err || rc=$?
t1=$(date +%s)
kill $proxy 2>/dev/null || true
[ "$rc" = 0 ] || { cat slow.err slow.log >&2; fail "a 6 MB report over a 1 MB/s link, answer timeout 2 s: exit $rc"; }
[ $((t1 - t0)) -ge 4 ] || fail "the link was not slow ($((t1 - t0)) s): the check proves nothing"
[ "$(stage_of m 4)" = Staging ] || fail "v4 not in Staging after the slow transition"
expect 0 $R verify-log
# A writer waiting on the write lock of a healthy server is not a frozen server: with an
# answer timeout (2 s) below the lock timeout (15 s), the lock wait is cut to 3/4 of it and
# fails with its own line (it had said "gave no answer ... a frozen or unreachable server").
STAGEGATE_REGISTRY_TEST_PAUSE=commit STAGEGATE_REGISTRY_TEST_PAUSE_S=4 \
    $R set-tag m 1 holder yes >hold.out 2>hold.err &
holder=$!
for _ in $(seq 1 600); do grep -q "test pause" hold.err 2>/dev/null && break; sleep 0.1; done
grep -q "test pause" hold.err || fail "the lock holder never reached its pause"
rc=0; STAGEGATE_PG_ANSWER_TIMEOUT_S=2 $R set-tag m 1 waiter yes >/dev/null 2>"$WORK/err" || rc=$?
[ "$rc" = 2 ] || { cat "$WORK/err"; fail "a writer behind the lock: exit $rc"; }
err_has "stayed locked by another session for 1.5 s"; one_line
wait $holder || fail "the lock holder failed"
expect 0 $R verify-log

# --- kill -9 of the server under 8 concurrent writers
for w in $(seq 1 8); do
    ( for j in $(seq 1 400); do
          # with every server process killed no client may wait on: a hang is a failure
          rc=0; timeout -k 5 60 $R set-tag m 2 "k$w" "$j" >/dev/null 2>w$w.err || rc=$?
          [ $rc = 0 ] && continue
          [ $rc = 124 ] && { echo "writer $w: set-tag still waiting 60 s after the kill" > w$w.bad; break; }
          [ $rc = 2 ] && [ "$(wc -l < w$w.err)" = 1 ] || { echo "writer $w: exit $rc: $(cat w$w.err)" > w$w.bad; }
          break
      done ) &
done
sleep 1.5
cluster kill
wait
cat w*.bad 2>/dev/null && fail "a writer failed badly"
cluster restart
expect 0 $R verify-log
events=$(q "SELECT count(*) FROM audit_log")
[ "$events" -gt "$head_before" ] || fail "no write landed before the kill"
[ "$(q "SELECT seq FROM audit_head")" = "$events" ] || fail "head and log disagree after recovery"

# --- sessions terminated over and over while versions are registered: a command's exit says
# what it did. A session ended just after COMMIT had answered (the backend flushes COMMIT's
# result with its FATAL message, and the pipeline's sync never comes) had exited 2 for a
# version it had registered: a CI job that retried registered it twice. Every version must
# come from a command that exited 0, or from one whose line said the commit was unknown.
expect 0 $R create-model churnpg
head -c 1000 /dev/urandom > churn.bin
( end=$((SECONDS + 8))
  while [ $SECONDS -lt $end ]; do
      q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'" >/dev/null 2>&1 || true
  done ) & killer=$!
ok=0 unknown=0 tries=0
while kill -0 $killer 2>/dev/null; do
    rc=0; $R create-version churnpg churn.bin >/dev/null 2>churn.err || rc=$?
    tries=$((tries + 1))
    if [ $rc = 0 ]; then ok=$((ok + 1)); continue; fi
    [ $rc = 2 ] && [ "$(wc -l < churn.err)" = 1 ] || fail "create-version under terminations: exit $rc: $(cat churn.err)"
    grep -q "may or may not" churn.err && unknown=$((unknown + 1))
done
wait $killer
n=$(q "SELECT count(*) FROM model_versions WHERE model_name = 'churnpg'")
[ "$ok" -gt 0 ] && [ "$ok" -lt "$tries" ] || fail "terminations: $ok of $tries succeeded, the loop tested nothing"
[ "$n" -ge "$ok" ] && [ "$n" -le $((ok + unknown)) ] ||
    fail "terminations: $n versions registered, $ok commands said so and $unknown said the commit was unknown"
expect 0 $R verify-log
echo "pg faults OK: $events events after three interrupted transactions and a crash under load; $ok of $tries registrations under terminations, $n versions"
