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
# Certificates GnuTLS would take and then fail every client with are refused at the start:
# expired, not valid yet, an RSA key under 2,048 bits (each had started and served)
/usr/bin/python3 - <<'PYEOF'
import datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
key = serialization.load_pem_private_key(open("tls.key", "rb").read(), None)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
for out, (a, b) in {"expired.crt": ((2020, 1, 1), (2020, 1, 2)), "future.crt": ((2099, 1, 1), (2100, 1, 1))}.items():
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
         .serial_number(1).not_valid_before(datetime.datetime(*a)).not_valid_after(datetime.datetime(*b))
         .sign(key, hashes.SHA256()))
    open(out, "wb").write(c.public_bytes(serialization.Encoding.PEM))
PYEOF
openssl req -x509 -newkey rsa:1024 -nodes -keyout weak.key -out weak.crt -days 1 -subj /CN=127.0.0.1 2>/dev/null
chmod 600 weak.key
for c in "expired.crt tls.key:the certificate expired on Jan  2 00:00:00 2020 GMT" \
    "future.crt tls.key:the certificate is not valid before Jan  1 00:00:00 2099 GMT" \
    "weak.crt weak.key:the certificate's RSA key has 1024 bits"; do
    files=${c%%:*}
    rc=0
    timeout 20 "$SG" serve --db "$DB" --listen 127.0.0.1:0 --tls-cert ${files% *} --tls-key ${files#* } 2>err || rc=$?
    [ $rc = 2 ] && [ "$(wc -l < err)" = 1 ] && grep -qF "${files% *}: ${c#*:}" err || fail "$files: exit $rc: $(cat err)"
done
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
