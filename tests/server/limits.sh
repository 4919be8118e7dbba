#!/bin/bash
# Limits: an oversized body and malformed JSON get 400 and the server stays up; oversized
# headers are refused; slow clients (trickled headers, a trickled body) are cut off by the
# idle and per-request time limits and never keep other callers waiting.
. "$(dirname "$0")/lib.sh"
setup
start_server --threads 2 --max-body 65536 --timeout 2 --request-time 3
M=/api/2.0/mlflow
create_model "$MODEL"

head -c 200000 /dev/zero | tr '\0' 'a' >big
expect 400 alice POST $M/registered-models/create @big
body_has "larger than the server's limit of 65536 bytes"
# The same without a declared length (chunked): the limit holds while reading.
CODE=$(curl -s -o body -w '%{http_code}' -H "Authorization: Bearer $(cat alice.token)" \
    -H "Transfer-Encoding: chunked" -H "Content-Type: application/json" --data-binary @big "$URL$M/registered-models/create")
[ "$CODE" = 400 ] || fail "chunked oversized body: HTTP $CODE"
for bad in '{"name": ' '[1, 2]' 'not json' '{"name": "x", "name": }'; do
    expect 400 alice POST $M/registered-models/create "$bad"
    [ "$(jbody .error_code)" = INVALID_PARAMETER_VALUE ] || fail "malformed JSON code: $(cat body)"
done
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": \"x\", \"stage\": \"Staging\"}"
expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"stage\": \"Staging\"}"
body_has "Missing value for required parameter 'version'"
# A version of another JSON type is named as such, not reported missing.
for v in 1.5 0 true; do
    expect 400 alice POST $M/model-versions/transition-stage "{\"name\": \"$MODEL\", \"version\": $v, \"stage\": \"Staging\"}"
    body_has "parameter 'version': $v is not a positive integer"
done
# A required string of another JSON type is named as such, not reported missing.
for v in 5 true '["m"]' '{"a": 1}'; do
    expect 400 alice POST $M/registered-models/create "{\"name\": $v}"
    body_has "Invalid value for parameter 'name': it must be a string"
done
expect 400 alice POST $M/registered-models/create '{"name": ""}'
body_has "Missing value for required parameter 'name'"
expect 404 alice POST $M/no-such-endpoint '{}'
# A body of many small values within the size limit: counted before it is parsed (60 KB of
# empty objects had cost several MB each to parse, and a 1 MiB one 80 MB per worker thread,
# kept by the heap afterwards), and the server's memory stays where it was.
rss() { awk '/^VmRSS/ {print $2}' /proc/$SPID/status; }
/usr/bin/python3 -c 'import sys; n = 21000; sys.stdout.write("{\"name\": \"x\", \"stages\": [" + ",".join(["{}"] * n) + "]}")' >many.json
before=$(rss)
for _ in 1 2 3 4; do
    expect 400 alice POST $M/registered-models/get-latest-versions @many.json
    body_has "request body holds more than 20000 JSON values"
done
[ "$(rss)" -lt $((before + 20000)) ] || fail "server RSS grew from $before to $(rss) KB over four such bodies"
/usr/bin/python3 -c 'import sys; sys.stdout.write("{\"name\": \"'"$MODEL"'\", \"stages\": [" + ",".join(["\"Staging\""] * 3000) + "]}")' >fine.json
expect 200 alice POST $M/registered-models/get-latest-versions @fine.json

# Headers over the per-connection memory limit (16 KiB by default).
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' b)" \
    "$URL/health") || true
[ "$CODE" = 431 ] || [ "$CODE" = 413 ] || [ "$CODE" = 000 ] || fail "oversized headers: HTTP $CODE"
expect 200 none GET /health
# Headers over --max-header but within what the connection can hold are answered 431.
CODE=$(curl -s -m 5 -o body -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' b)" "$URL/health") || true
[ "$CODE" = 431 ] || fail "20 KB of headers: HTTP $CODE"
body_has "request headers are over the server's 16384-byte limit"
# An HTTP/1.1 request has exactly one Host header (RFC 9112 section 3.2).
/usr/bin/python3 - "${URL##*:}" <<'PYEOF' || fail "Host header checks"
import socket, sys
for req, want in ((b"GET /health HTTP/1.1\r\n\r\n", b" 400 "),
                  (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b" 400 "),
                  (b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n", b" 200 "),
                  (b"GET /health HTTP/1.0\r\n\r\n", b" 200 ")):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(req)
    line = s.recv(4096).split(b"\r\n")[0]
    s.close()
    assert want in line, (req, line)
PYEOF

# Query parameters: each costs libmicrohttpd a record in the same 16 KiB, and past about 240
# it could not even answer (the client hung until the idle timeout). Too many -> 414 at once;
# a moderate number still works.
q=$(for i in $(seq 300); do printf 'p%d=1&' "$i"; done)
CODE=$(curl -s -m 5 -o body -w '%{http_code}' -H "Authorization: Bearer $(cat alice.token)" \
    "$URL$M/registered-models/search?${q}max_results=5") || true
[ "$CODE" = 414 ] || fail "300 query parameters: HTTP $CODE (no answer within 5 s is the old hang)"
body_has "too many query parameters"
q=$(for i in $(seq 100); do printf 'p%d=1&' "$i"; done)
expect 200 alice GET "$M/registered-models/search?${q}max_results=5"
# ... also with a few KB of ordinary headers beside them, which share the connection's memory
# (200 parameters and a 4 KB header had been left unanswered until the idle timeout)
q=$(for i in $(seq 200); do printf 'p%d=1&' "$i"; done)
CODE=$(curl -s -m 5 -o body -w '%{http_code}' -H "Authorization: Bearer $(cat alice.token)" \
    -H "X-Pad: $(head -c 4000 /dev/zero | tr '\0' p)" "$URL$M/registered-models/search?${q}max_results=5") || true
[ "$CODE" = 200 ] || fail "200 parameters and a 4 KB header: HTTP $CODE (000 within 5 s is the old hang)"
q=$(head -c 12000 /dev/zero | tr '\0' x)
CODE=$(curl -s -m 5 -o body -w '%{http_code}' -H "Authorization: Bearer $(cat alice.token)" \
    "$URL$M/registered-models/search?$(for i in $(seq 80); do printf 'p%d=1&' "$i"; done)z=$q") || true
[ "$CODE" = 414 ] || fail "80 parameters in a 12 KB query: HTTP $CODE"
expect 405 none POST /health '{}'
# /health follows the API's rules: its 405 names the methods in Allow, and a GET with a body is
# refused (it had been answered 200).
CODE=$(curl -s -D headers -o body -w '%{http_code}' -X DELETE "$URL/health")
[ "$CODE" = 405 ] && grep -qi '^Allow: GET, HEAD' headers || fail "DELETE /health: HTTP $CODE $(cat headers body)"
CODE=$(curl -s -o body -w '%{http_code}' -X GET --data-binary '{}' "$URL/health")
[ "$CODE" = 400 ] || fail "GET /health with a body: HTTP $CODE $(cat body)"
# The method is checked first, and a 405 names the methods in Allow (RFC 9110 section 15.5.6):
# a POST to a read without a JSON Content-Type is 405, not 415.
CODE=$(curl -s -D headers -o body -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat alice.token)" \
    "$URL$M/registered-models/get?name=$MODEL")
[ "$CODE" = 405 ] && grep -qi '^Allow: GET, HEAD' headers || fail "POST to a read: HTTP $CODE $(cat headers body)"
CODE=$(curl -s -D headers -o body -w '%{http_code}' -X PUT "$URL$M/registered-models/create")
[ "$CODE" = 405 ] && grep -qi '^Allow: POST' headers || fail "PUT create: HTTP $CODE $(cat headers body)"
# A 401 says how to authenticate.
CODE=$(curl -s -D headers -o body -w '%{http_code}' "$URL$M/registered-models/get?name=$MODEL")
[ "$CODE" = 401 ] && grep -qi '^WWW-Authenticate: Bearer' headers || fail "401: $(cat headers)"
# stagegate's reads take GET (and HEAD) only, as the MLflow endpoints do
for path in whoami list verify-log "history?name=$MODEL" "get?name=$MODEL" "search?filter="; do
    for m in POST PUT DELETE TRACE FOO; do
        expect 405 alice "$m" "/api/stagegate/$path"
        body_has "takes GET"
    done
    expect 200 alice GET "/api/stagegate/$path"
done
CODE=$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/health")
[ "$CODE" = 200 ] || fail "HEAD /health: HTTP $CODE"

# Framing: both Content-Length and Transfer-Encoding, two lengths, two codings, a coding
# other than chunked, or any Transfer-Encoding from an HTTP/1.0 client are refused before the
# body is read, and the connection is closed, so a
# second request smuggled in the body is never answered.
/usr/bin/python3 - "$PORT" "$(cat alice.token)" "$MODEL" <<'PY'
import socket, sys
port, token, model = int(sys.argv[1]), sys.argv[2], sys.argv[3]
path = "/api/2.0/mlflow/registered-models/create"
def send(head, body, version="1.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("POST %s HTTP/%s\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\n" % (path, version, token)
               + head + "\r\n").encode() + body)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        sys.exit("no answer or no close within 5 s for " + repr(head))
    s.close()
    return data.decode("latin-1")
smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
chunk = lambda b: b"%x\r\n%s\r\n0\r\n\r\n" % (len(b), b)
name = ('{"name": "%s-smuggled"}' % model).encode()
cases = [
    ("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(name), chunk(name) + smuggled, 400, "both Content-Length and Transfer-Encoding"),
    ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", chunk(name) + smuggled, 400, "both Content-Length and Transfer-Encoding"),
    ("Content-Length: %d\r\nContent-Length: 5\r\n" % len(name), name + smuggled, 400, "repeats the Content-Length"),
    ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunk(name) + smuggled, 400, "repeats the Transfer-Encoding"),
    # a second media type (the first had been read, a proxy may have checked the other)
    ("Content-Type: text/plain\r\nContent-Length: %d\r\n" % len(name), name, 400, "repeats the Content-Type"),
    ("Transfer-Encoding: gzip\r\n", name + smuggled, 501, "other than a single chunked"),
    ("Transfer-Encoding: gzip, chunked\r\n", chunk(name) + smuggled, 501, "other than a single chunked"),
    # white space before the colon: libmicrohttpd does not take it for the header, a proxy
    # that trims the name does (RFC 9112 section 5.1 says 400)
    ("Content-Length: %d\r\nTransfer-Encoding : chunked\r\n" % len(name), chunk(name) + smuggled, 400, "header name 'Transfer-Encoding ' is not a token"),
    ("Content-Length : 5\r\nTransfer-Encoding: chunked\r\n", chunk(name) + smuggled, 400, "header name 'Content-Length ' is not a token"),
    ("Content-Length\t: %d\r\n" % len(name), name + smuggled, 400, "is not a token"),
    # obsolete line folding (RFC 9112 section 5.2): a proxy that unfolds the line frames the
    # body by the folded header, libmicrohttpd by the other one
    ("Transfer-Encoding:\r\n chunked\r\nContent-Length: %d\r\n" % len(name), name + smuggled, 400, "header 'Transfer-Encoding' is folded"),
    ("Content-Length:\r\n 5\r\nTransfer-Encoding: chunked\r\n", chunk(name) + smuggled, 400, "header 'Content-Length' is folded"),
    ("Content-Length: %d\r\nAuthorization:\r\n\tBearer\r\n" % len(name), name + smuggled, 400, "header 'Authorization' is folded"),
    # chunked with white space around it, an empty list element, quotes or nothing: a proxy
    # reads chunked, libmicrohttpd did not (it read the body until the connection closed and
    # swallowed the requests after it); 400, not 501 for client garbage
    ("Transfer-Encoding: chunked \r\n", chunk(name) + smuggled, 400, "send exactly 'chunked'"),
    ("Transfer-Encoding: chunked\t\r\n", chunk(name) + smuggled, 400, "send exactly 'chunked'"),
    ("Transfer-Encoding: ,chunked\r\n", chunk(name) + smuggled, 400, "send exactly 'chunked'"),
    ("Transfer-Encoding: \"chunked\"\r\n", chunk(name) + smuggled, 400, "send exactly 'chunked'"),
    ("Transfer-Encoding:\r\n", chunk(name) + smuggled, 400, "send exactly 'chunked'"),
    # a bare CR inside a header (RFC 9112 section 2.2): a parser ending lines at it reads a
    # Content-Length there, so a body and another request
    ("X-A: a\rContent-Length: %d\r\n" % len(smuggled), smuggled, 400, "header 'X-A' holds a CR that ends no line"),
]
for head, body, code, why in cases:
    out = send(head, body)
    if out.count("HTTP/1.1 ") != 1 or not out.startswith("HTTP/1.1 %d " % code) or why not in out:
        sys.exit("framing %r: wanted one %d (%s), got %r" % (head, code, why, out[:300]))
# HTTP/1.0 has no Transfer-Encoding (RFC 9112 section 6.1): refused, not read as chunked.
out = send("Transfer-Encoding: chunked\r\n", chunk(name) + smuggled, version="1.0")
if out.count("HTTP/1.1 ") != 1 or not out.startswith("HTTP/1.1 400 ") or "HTTP/1.0 request has no Transfer-Encoding" not in out:
    sys.exit("HTTP/1.0 with Transfer-Encoding: %r" % out[:300])
# Chunked alone is a valid framing.
out = send("Transfer-Encoding: chunked\r\nConnection: close\r\n", chunk(name))
if not out.startswith("HTTP/1.1 200 "):
    sys.exit("a chunked body: %r" % out[:300])
PY
expect 200 alice GET "$M/registered-models/get?name=$MODEL-smuggled"

# Slow clients: 20 connections that trickle (more than the 2 worker threads), while normal
# requests are timed; then each slow connection must have been closed by the server.
/usr/bin/python3 - "$PORT" "$(cat alice.token)" "$MODEL" <<'PY'
import socket, sys, threading, time, urllib.request
port, token, model = int(sys.argv[1]), sys.argv[2], sys.argv[3]
closed, lock = [], threading.Lock()

def slow(kind):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(1.0)
    start = time.monotonic()
    if kind == "headers":
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        chunks = [b"X-A: b\r\n"] * 100
    else:
        s.sendall(b"POST /api/2.0/mlflow/registered-models/create HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer " + token.encode() + b"\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        chunks = [b" "] * 1000
    for c in chunks:  # one piece a second: never idle for the 2 s timeout
        try:
            s.sendall(c)
            if s.recv(1) == b"":
                break
        except socket.timeout:
            pass
        except OSError:
            break
        if time.monotonic() - start > 20:
            break
    with lock:
        closed.append((kind, time.monotonic() - start))
    s.close()

def idle():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /health HTTP/1.1\r\n")  # then nothing
    start = time.monotonic()
    s.settimeout(10)
    try:
        while s.recv(100):
            pass
    except OSError:
        pass
    with lock:
        closed.append(("idle", time.monotonic() - start))

threads = [threading.Thread(target=slow, args=("headers",)) for _ in range(6)]
threads += [threading.Thread(target=slow, args=("body",)) for _ in range(6)]
threads += [threading.Thread(target=idle) for _ in range(8)]
for t in threads:
    t.start()
time.sleep(0.5)
worst = 0.0
for _ in range(20):
    t0 = time.monotonic()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/registered-models/get?name={model}",
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    worst = max(worst, time.monotonic() - t0)
    time.sleep(0.05)
for t in threads:
    t.join(30)
print("slowest normal request %.3f s; slow connections closed after %s" %
      (worst, sorted(round(d, 1) for _, d in closed)))
assert worst < 1.0, "a normal request waited behind slow clients"
assert len(closed) == 20, "a slow connection was never closed"
for kind, d in closed:
    # idle: 2 s timeout; body: 3 s per request; trickled headers: bounded by the 16 KiB
    # header memory or the idle timeout, never by the client's 100 pieces.
    assert d < 15, f"{kind} connection held for {d:.1f} s"
PY
expect 200 none GET /health
# With a larger --max-header, more than the 512 query parameters whose names are compared is
# refused (a name given twice after them had been answered with the first).
stop_server
start_server --max-header 65536
q=$(for i in $(seq 0 511); do printf 'p%d=1&' "$i"; done)
expect 414 alice GET "$M/registered-models/get?${q}name=$MODEL&name=other"
body_has "more than 512 query parameters"
expect 200 alice GET "$M/registered-models/get?p1=1&name=$MODEL"
# --request-time counts a request from its request line, not the idle time before it on a
# kept-alive connection (idle 2.5 s, then a request sent over 1 s had been cut at 3 s).
stop_server
start_server --timeout 10 --request-time 3
/usr/bin/python3 - "$PORT" <<'PYEOF' || fail "a request after an idle keep-alive wait was cut"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
assert b" 200 " in s.recv(4096).split(b"\r\n")[0]
time.sleep(2.5)
for part in (b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
    s.sendall(part)
    time.sleep(0.5)
line = s.recv(4096).split(b"\r\n")[0]
assert b" 200 " in line, line
PYEOF
echo "limits OK"
