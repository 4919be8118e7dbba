#!/bin/bash
# TLS through libmicrohttpd's GnuTLS: a self-signed certificate for 127.0.0.1 made here with
# openssl; a client that trusts it gets through, one that does not (or speaks plain HTTP) not.
. "$(dirname "$0")/lib.sh"
setup
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key \
    -out tls.crt -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
chmod 600 tls.key
start_server --tls-cert tls.crt --tls-key tls.key
grep -q "listening on https://127.0.0.1:$PORT" server.log || fail "no https URL announced"
URL=https://127.0.0.1:$PORT
CODE=$(curl -sS --cacert tls.crt -o body -w '%{http_code}' "$URL/health")
[ "$CODE" = 200 ] || fail "https with the CA: HTTP $CODE"
rc=0
curl -sS -o /dev/null "$URL/health" 2>err || rc=$?
[ $rc = 60 ] || fail "an untrusted certificate was accepted (curl exit $rc)"
rc=0
curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/health" 2>err || rc=$?
[ $rc != 0 ] || fail "plain HTTP served on the TLS port"
# TLS 1.2 and 1.3 only: GnuTLS's defaults had negotiated TLS 1.0 and 1.1
for v in 1.0 1.1; do
    rc=0
    curl -sS --max-time 5 --cacert tls.crt --tlsv$v --tls-max $v --ciphers 'DEFAULT:@SECLEVEL=0' \
        -o /dev/null "$URL/health" 2>err || rc=$?
    [ $rc != 0 ] || fail "TLS $v was negotiated"
done
for v in 1.2 1.3; do
    CODE=$(curl -sS --max-time 5 --cacert tls.crt --tlsv$v --tls-max $v -o /dev/null -w '%{http_code}' "$URL/health") ||
        fail "TLS $v refused"
    [ "$CODE" = 200 ] || fail "TLS $v: HTTP $CODE"
done
M=/api/2.0/mlflow
CODE=$(curl -sS --cacert tls.crt -o body -w '%{http_code}' -H "Authorization: Bearer $(cat alice.token)" \
    -H "Content-Type: application/json" --data-binary "{\"name\": \"$MODEL\"}" "$URL$M/registered-models/create")
[ "$CODE" = 200 ] || fail "create over TLS: HTTP $CODE $(cat body)"
CODE=$(curl -sS --cacert tls.crt -o body -w '%{http_code}' -H "Content-Type: application/json" --data-binary "{\"name\": \"$MODEL-2\"}" \
    "$URL$M/registered-models/create")
[ "$CODE" = 401 ] || fail "TLS without a token: HTTP $CODE"
# Only one of the two files is a usage error.
rc=0
"$SG" serve --db "$DB" --listen 127.0.0.1:0 --tls-cert tls.crt 2>err || rc=$?
[ $rc = 2 ] && grep -q "go together" err || fail "--tls-cert alone: exit $rc"
# A TLS private key others may read is refused, as --key is
cp tls.key open.key
chmod 644 open.key
rc=0
timeout 20 "$SG" serve --db "$DB" --listen 127.0.0.1:0 --tls-cert tls.crt --tls-key open.key 2>err || rc=$?
[ $rc = 2 ] && [ "$(wc -l < err)" = 1 ] && grep -q "open.key: UNPROTECTED PRIVATE KEY FILE: mode 0644" err ||
    fail "a TLS key readable by others: exit $rc: $(cat err)"
echo "tls OK"
# A server that cannot start says why in one line: a certificate TLS cannot use names both
# files, the port in use names the address and the system's reason (not libmicrohttpd's
# "port 0" and a second line).
echo "not a certificate" > junk.pem
chmod 600 junk.pem
rc=0
timeout 20 "$SG" serve --db "$DB" --listen 127.0.0.1:0 --tls-cert junk.pem --tls-key tls.key 2>err || rc=$?
[ $rc = 2 ] && [ "$(wc -l < err)" = 1 ] && grep -q "junk.pem, tls.key: not a certificate and key TLS can use" err ||
    fail "a junk certificate: exit $rc: $(cat err)"
rc=0
timeout 20 "$SG" serve --db "$DB" --listen "127.0.0.1:$PORT" 2>err || rc=$?
[ $rc = 2 ] && [ "$(wc -l < err)" = 1 ] && grep -q "cannot listen on 127.0.0.1:$PORT: Address already in use" err ||
    fail "a port in use: exit $rc: $(cat err)"
