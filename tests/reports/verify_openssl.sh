#!/usr/bin/env bash
# External verification with the openssl command line, both directions:
#  1. a report signed by stagegate verifies with openssl alone (PAE rebuilt with printf),
#     and a modified one does not;
#  2. a report whose key and signature were made by openssl verifies with stagegate.
# python is used only to pull fields out of the envelope JSON and base64-decode them.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${SG_MAKE_REPORT:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

fail() { echo "FAIL: $*" >&2; exit 1; }

# Splits an envelope into payload.bin, type.txt (no newline), sig.bin, keyid.txt.
split_envelope() {
    "$PY" - "$1" <<'PYEOF'
import base64, json, sys
e = json.load(open(sys.argv[1]))
open("payload.bin", "wb").write(base64.b64decode(e["payload"], validate=True))
open("type.txt", "w").write(e["payloadType"])
open("sig.bin", "wb").write(base64.b64decode(e["signatures"][0]["sig"], validate=True))
open("keyid.txt", "w").write(e["signatures"][0].get("keyid", ""))
PYEOF
}

# PAE = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in bytes.
make_pae() { # type-file body-file out
    local tlen blen
    tlen=$(wc -c <"$1" | tr -d ' ')
    blen=$(wc -c <"$2" | tr -d ' ')
    { printf 'DSSEv1 %s ' "$tlen"; cat "$1"; printf ' %s ' "$blen"; cat "$2"; } >"$3"
}

openssl_verify() { # type pub pae sig
    if [ "$1" = ed25519 ]; then
        openssl pkeyutl -verify -pubin -inkey "$2" -rawin -in "$3" -sigfile "$4" >/dev/null 2>&1
    else
        openssl dgst -sha256 -verify "$2" -signature "$4" "$3" >/dev/null 2>&1
    fi
}

printf 'model weights v1' >model.h5
for type in ecdsa-p256 ed25519; do
    "$STAGEGATE_BIN" keygen --out "k_$type" --type "$type" >/dev/null
    # The key files are standard PEM: PKCS#8 and SPKI that openssl reads.
    [ "$(head -n1 "k_$type.key.pem")" = "-----BEGIN PRIVATE KEY-----" ] || fail "$type: private key is not PKCS#8 PEM"
    [ "$(head -n1 "k_$type.pub.pem")" = "-----BEGIN PUBLIC KEY-----" ] || fail "$type: public key is not SPKI PEM"
    openssl pkey -in "k_$type.key.pem" -noout || fail "$type: openssl cannot read the private key"
    if [ "$type" = ecdsa-p256 ]; then
        openssl pkey -pubin -in "k_$type.pub.pem" -text -noout | grep 'prime256v1' >/dev/null || fail "not a P-256 key"
    else
        openssl pkey -pubin -in "k_$type.pub.pem" -text -noout | grep 'ED25519' >/dev/null || fail "not an Ed25519 key"
    fi

    "$SG_MAKE_REPORT" --key "k_$type.key.pem" --out r.json --subject-file model.h5
    "$STAGEGATE_BIN" verify r.json --pubkey "k_$type.pub.pem" --model model.h5 >/dev/null ||
        fail "$type: stagegate rejects its own report"

    split_envelope r.json
    [ "$(cat type.txt)" = "application/vnd.in-toto+json" ] || fail "$type: payloadType"
    # keyid = hex sha256 of the DER SubjectPublicKeyInfo.
    want_id=$(openssl pkey -pubin -in "k_$type.pub.pem" -outform DER | sha256sum | cut -d' ' -f1)
    [ "$(cat keyid.txt)" = "$want_id" ] || fail "$type: keyid is not sha256(DER SPKI)"

    make_pae type.txt payload.bin pae.bin
    openssl_verify "$type" "k_$type.pub.pem" pae.bin sig.bin || fail "$type: openssl rejects a genuine report"

    # Modified payload (PASSED -> FAILED, same length) must not verify.
    sed 's/PASSED/FAILED/' payload.bin >payload2.bin
    cmp -s payload.bin payload2.bin && fail "$type: tampering did not change the payload"
    make_pae type.txt payload2.bin pae2.bin
    if openssl_verify "$type" "k_$type.pub.pem" pae2.bin sig.bin; then fail "$type: openssl accepts a modified payload"; fi
    # Modified payloadType must not verify either.
    printf 'application/vnd.in-toto+jsom' >type2.txt
    make_pae type2.txt payload.bin pae3.bin
    if openssl_verify "$type" "k_$type.pub.pem" pae3.bin sig.bin; then fail "$type: openssl accepts a modified type"; fi
    # A PAE built without the trailing structure (e.g. plain payload) must not verify.
    if openssl_verify "$type" "k_$type.pub.pem" payload.bin sig.bin; then fail "$type: signature is over the bare payload"; fi
done

# Other direction: key, statement and signature all made without stagegate.
sha=$(sha256sum model.h5 | cut -d' ' -f1)
for type in ecdsa-p256 ed25519; do
    if [ "$type" = ed25519 ]; then
        openssl genpkey -algorithm ED25519 -out o.key.pem 2>/dev/null
    else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out o.key.pem 2>/dev/null
    fi
    openssl pkey -in o.key.pem -pubout -out o.pub.pem
    for result in PASSED FAILED; do
        printf '{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"model.h5","digest":{"sha256":"%s"}}],"predicateType":"https://in-toto.io/attestation/test-result/v0.1","predicate":{"result":"%s","configuration":[],"passedTests":[],"failedTests":[]}}' \
            "$sha" "$result" >stmt.json
        printf 'application/vnd.in-toto+json' >type.txt
        make_pae type.txt stmt.json pae.bin
        if [ "$type" = ed25519 ]; then
            openssl pkeyutl -sign -inkey o.key.pem -rawin -in pae.bin -out sig.bin
        else
            openssl dgst -sha256 -sign o.key.pem -out sig.bin pae.bin
        fi
        printf '{"payload":"%s","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"%s"}]}' \
            "$(base64 -w0 stmt.json)" "$(base64 -w0 sig.bin)" >env.json
        # URL-safe, unpadded variant of the same envelope (DSSE verifiers must accept it).
        printf '{"payload":"%s","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"%s"}]}' \
            "$(base64 -w0 stmt.json | tr '+/' '-_' | tr -d '=')" "$(base64 -w0 sig.bin | tr '+/' '-_' | tr -d '=')" >env_url.json
        want=0
        [ "$result" = FAILED ] && want=1
        for env in env.json env_url.json; do
            set +e
            out=$("$STAGEGATE_BIN" verify "$env" --pubkey o.pub.pem --model model.h5 --json)
            rc=$?
            set -e
            [ "$rc" = "$want" ] || fail "$type/$result/$env: stagegate exit $rc, want $want"
            "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["valid"] is True and d["result"]==sys.argv[2], d' \
                "$out" "$result" || fail "$type/$result/$env: JSON output"
        done
    done
    # And stagegate refuses the openssl-signed report under a different key.
    "$STAGEGATE_BIN" keygen --out "other_$type" --type "$type" >/dev/null
    set +e
    "$STAGEGATE_BIN" verify env.json --pubkey "other_$type.pub.pem" >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "$type: wrong key gave exit $rc, want 1"
done
echo "verify_openssl: ok"
