#!/bin/bash
# SIGHUP reloads the tokens file: a token added with `stagegate token add` while the server
# runs works after the signal; a removed line stops working; a broken or group-readable file
# leaves the old principals in place, with one line in the log; requests in flight during
# reloads keep being answered.
. "$(dirname "$0")/lib.sh"
setup
M=/api/2.0/mlflow
start_server
create_model "$MODEL"
"$SG" keygen --out dave >/dev/null
"$SG" token add --tokens tokens --principal dave.pub.pem --name dave >dave.token
expect 401 dave GET /api/stagegate/whoami

# hup: signal the server and wait for its Nth reload line.
hups=0
hup() {
    hups=$((hups + 1))
    kill -HUP "$SPID"
    for _ in $(seq 100); do
        [ "$(grep -c 'tokens file .*reloaded' server.log)" -ge $hups ] && return 0
        sleep 0.05
    done
    fail "no reload line after SIGHUP $hups"
}
hup
grep -q "tokens file tokens reloaded: 4 principals (3 before)" server.log || fail "reload line: $(tail -1 server.log)"
expect 200 dave GET /api/stagegate/whoami
[ "$(jbody .principal.name)" = dave ] || fail "whoami: $(cat body)"
expect 200 alice GET "$M/registered-models/get?name=$MODEL"

# Revoke alice: her line removed (the file keeps mode 0600).
grep -v " alice " tokens >tokens.new && chmod 600 tokens.new && mv tokens.new tokens
hup
expect 401 alice GET "$M/registered-models/get?name=$MODEL"
expect 401 alice POST $M/model-versions/create "{\"name\": \"$MODEL\", \"source\": \"m1.bin\"}"
expect 200 bob GET "$M/registered-models/get?name=$MODEL"

# A broken file: the previous principals stay, one line names the problem.
cp tokens tokens.good
echo "not a token line" >>tokens
hup
grep -q "tokens file not reloaded, keeping the 3 principals loaded before: tokens file tokens: line 4 is not HASH KEY_ID NAME PEM" server.log ||
    fail "no refusal line: $(tail -3 server.log)"
expect 200 dave GET /api/stagegate/whoami
expect 200 bob GET "$M/registered-models/get?name=$MODEL"
expect 401 alice GET "$M/registered-models/get?name=$MODEL"
# Readable by others: refused the same way.
cp tokens.good tokens && chmod 644 tokens
"$SG" token add --tokens tokens.good --principal alice.pub.pem --name alice2 >/dev/null
cat tokens.good >tokens
hup
grep -q "keeping the 3 principals loaded before: .*accessible by group or others" server.log ||
    fail "no mode refusal line: $(tail -3 server.log)"
expect 200 bob GET "$M/registered-models/get?name=$MODEL"
# An empty file (an editor's save caught between truncating and writing), or one of comments
# only, had reloaded as "0 principals" and locked every caller out: it is refused the same way.
: >tokens
chmod 600 tokens
hup
grep -q "keeping the 3 principals loaded before: tokens file tokens has no principals" server.log ||
    fail "no empty-file refusal line: $(tail -3 server.log)"
expect 200 bob GET "$M/registered-models/get?name=$MODEL"
printf '# every line a comment\n\n' >tokens
hup
[ "$(grep -c "tokens file tokens has no principals" server.log)" = 2 ] || fail "comments only: $(tail -2 server.log)"
expect 200 dave GET /api/stagegate/whoami
# One token on two lines, the second with another principal's key (a hand edit): the holder
# had acted as the last line's principal. The file is refused, naming both lines.
cp tokens.good tokens
bobhash=$(grep " bob " tokens | cut -d' ' -f1)
grep " dave " tokens | sed "s/^[0-9a-f]*/$bobhash/" >>tokens
hup
grep -q "keeping the 3 principals loaded before: tokens file tokens: line 5 has the token of line 1" server.log ||
    fail "no duplicate-token refusal line: $(tail -3 server.log) $(grep -n bob tokens | cut -c1-20)"
expect 200 bob GET /api/stagegate/whoami
[ "$(jbody .principal.name)" = bob ] || fail "whoami after the refused duplicate: $(cat body)"
# A missing file likewise.
rm tokens
hup
expect 200 dave GET /api/stagegate/whoami
cp tokens.good tokens && chmod 600 tokens
hup
grep -q "reloaded: 4 principals (3 before)" server.log || fail "final reload: $(tail -2 server.log)"

# Reloads while requests run: every request is answered (200), none fails.
( for _ in $(seq 40); do kill -HUP "$SPID" 2>/dev/null; sleep 0.02; done ) &
HUPPER=$!
pids=()
for i in $(seq 4); do
    ( for _ in $(seq 50); do
        curl -sS --max-time 20 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $(cat bob.token)" \
            "$URL$M/registered-models/get?name=$MODEL"
    done >codes.$i 2>&1 ) &
    pids+=($!)
done
for p in "${pids[@]}" "$HUPPER"; do wait "$p"; done
bad=$(cat codes.* | grep -vc '^200$' || true)
[ "$bad" = 0 ] || fail "$bad requests failed during reloads: $(sort codes.* | uniq -c)"
kill -0 "$SPID" || fail "server died during reloads"
stop_server
# With --access-log, the server's own lines still go to stderr: a reload (and a refused one)
# had been written into the access log only, among the request lines.
start_server --access-log access.log
expect 200 none GET /health
# libmicrohttpd's own messages (here about a Content-Length that is no number, and a path with
# an encoded newline and ESC) go to stderr as one escaped line each, never into the access log:
# one quoting the decoded path had written a forged request line there, ESC included.
/usr/bin/python3 - "$PORT" <<'PY'
import socket, sys
for req in (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"GET /x%0a2026-12-06T00:00:00Z 10.9.9.9 admin:0 %22POST /forged%22 200 1 0.1ms%1b[2J HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(req)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
PY
expect 200 none GET /health
bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z [^ ]+ [^ ]+ "' access.log || true)
[ "$bad" = 0 ] || fail "lines in the access log that are not request lines: $(grep -vE '^[0-9]{4}-' access.log | cat -A | head -5)"
if grep -q "forged" access.log; then fail "a forged line in the access log: $(grep forged access.log | cat -A)"; fi
if grep -q "$(printf '\033')" server.log access.log; then fail "a raw ESC reached a log"; fi
cp tokens tokens.good
echo "garbage" >>tokens
kill -HUP "$SPID"
for _ in $(seq 50); do grep -q "tokens file not reloaded" server.log && break; sleep 0.1; done
grep -q "stagegate serve: tokens file not reloaded" server.log || fail "the refused reload is not on stderr: $(cat server.log)"
cp tokens.good tokens
# a FIFO in the tokens file's place: the reload says so and SIGTERM still stops the server
# (the signal thread had blocked in open() for ever); at the start, and for token add, exit 2
mv tokens tokens.file
mkfifo -m 600 tokens
kill -HUP "$SPID"
for _ in $(seq 50); do grep -q "tokens file tokens is not a regular file" server.log && break; sleep 0.1; done
grep -q "tokens file not reloaded, keeping .*tokens file tokens is not a regular file" server.log ||
    fail "FIFO reload: $(tail -2 server.log)"
stop_server
grep -q "stopped" server.log || fail "the server did not stop on SIGTERM after the FIFO reload: $(tail -2 server.log)"
rc=0; timeout 20 "$SG" serve --db "$DB" --listen 127.0.0.1:0 --tokens tokens 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "tokens file tokens is not a regular file" err || fail "serve with a FIFO: exit $rc $(cat err)"
rc=0; timeout 20 "$SG" token add --tokens tokens --principal alice.pub.pem >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "tokens" err || fail "token add to a FIFO: exit $rc $(cat err)"
rm tokens
mv tokens.file tokens
# at the start, a tokens file without a principal is exit 2 (every call would have been 401)
printf '# none yet\n' >empty.tokens
chmod 600 empty.tokens
rc=0; timeout 20 "$SG" serve --db "$DB" --listen 127.0.0.1:0 --tokens empty.tokens 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "tokens file empty.tokens has no principals" err ||
    fail "serve with no principals: exit $rc $(cat err)"
# ...and token add still adds the first one to it
"$SG" token add --tokens empty.tokens --principal alice.pub.pem --name first >/dev/null ||
    fail "token add to a file of comments"
# a tokens file over 16 MiB is refused before it is read (a 256 MB one had been read whole)
truncate -s 20M big.tokens
chmod 600 big.tokens
rc=0; timeout 20 "$SG" serve --db "$DB" --listen 127.0.0.1:0 --tokens big.tokens 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "tokens file big.tokens is 20971520 bytes, over the 16 MiB limit" err ||
    fail "a 20 MiB tokens file: exit $rc $(cat err)"
grep -q '"GET /health"' access.log || fail "access log: $(cat access.log)"
if grep -q "stagegate serve:" access.log; then fail "server lines in the access log: $(cat access.log)"; fi
# token add writes its line whole or not at all: a write cut by ulimit -f (or a full disk) had
# been ignored, printing a token never stored, or leaving half a line that made the file
# unreadable. The file is left as it was (a new one is not left behind), exit 2, one line.
cp tokens tokens.before
rc=0; (ulimit -f 1; "$SG" token add --tokens tokens --principal alice.pub.pem --name cut) >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "tokens file tokens: File too large; no token added" err && [ ! -s out ] ||
    fail "token add cut short: exit $rc, out $(cat out), err $(cat err)"
cmp -s tokens tokens.before || fail "a cut token add changed the tokens file"
# (ThreadSanitizer's runtime itself dies of SIGXFSZ under ulimit -f 0, before main: probed)
if (ulimit -f 0; "$SG" --version) >/dev/null 2>&1; then
    rc=0; (ulimit -f 0; "$SG" token add --tokens fresh.tokens --principal alice.pub.pem) >out 2>err || rc=$?
    [ "$rc" = 2 ] && [ ! -e fresh.tokens ] && [ ! -s out ] || fail "token add to a new file cut short: exit $rc $(cat err)"
else
    echo "(this build cannot run under ulimit -f 0: the new-file case is not checked here)"
fi
"$SG" token add --tokens tokens --principal alice.pub.pem --name after >/dev/null || fail "token add after a cut one"
# token add appends only to a tokens file: a private key (mode 0600, as a tokens file must be)
# named by mistake is refused and left as it was.
"$SG" keygen --out erin >/dev/null
before=$(sha256sum < erin.key.pem)
rc=0; "$SG" token add --tokens erin.key.pem --principal alice.pub.pem >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "erin.key.pem: line 1 is not HASH KEY_ID NAME PEM; not adding a token to it" err ||
    fail "token add to a private key: exit $rc $(cat err)"
[ "$(sha256sum < erin.key.pem)" = "$before" ] || fail "token add changed the private key"
# The access log on a full disk (as root: a 64 KiB tmpfs): a line that cannot be written is
# taken back whole (a torn line had been glued to the next), and the server says on stderr
# when lines start being lost and how many when it can write again (it had said nothing).
mkdir -p full
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=64k tmpfs full 2>/dev/null; then
    trap 'umount "$WORK/full" 2>/dev/null || true' EXIT
    head -c 4000 /dev/zero | tr '\0' x >full/acc.log
    head -c 60000 /dev/zero >full/pad 2>/dev/null || true
    start_server --access-log full/acc.log
    for _ in 1 2 3 4; do curl -s -o /dev/null "$URL/health"; done
    rm full/pad
    for _ in 1 2; do curl -s -o /dev/null "$URL/health"; done
    stop_server
    tail -c +4001 full/acc.log >acc_tail.log
    umount full
    trap - EXIT
    bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z [^ ]+ [^ ]+ "GET /health" 200 ' acc_tail.log || true)
    [ "$bad" = 0 ] || fail "torn lines in the access log: $(cat -A acc_tail.log | head -5)"
    grep -q "access log: cannot write a line (No space left on device); request lines are lost until it can" server.log ||
        fail "the full access log was not said: $(cat server.log)"
    lost=$(sed -n 's/.*access log: writing again; \([0-9]*\) request lines* w.*/\1/p' server.log)
    [ -n "$lost" ] || fail "the access log's recovery was not said: $(cat server.log)"
    [ $(( $(wc -l <acc_tail.log) + lost )) = 6 ] ||
        fail "$(wc -l <acc_tail.log) lines written and $lost said lost, of 6 requests"
fi
echo "tokens reload OK"
