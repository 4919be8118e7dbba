#!/usr/bin/env bash
# stagegate keygen / verify from the command line: key file modes and no-overwrite,
# exit codes, human and --json output, refusals, and tampering with every byte of the
# decoded payload plus every byte of the signature and payloadType.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${SG_MAKE_REPORT:?}"
SG=$STAGEGATE_BIN
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_rc WANT cmd...: runs cmd, output to out.txt / err.txt, checks the exit code.
expect_rc() {
    local want=$1 rc
    shift
    set +e
    "$@" >out.txt 2>err.txt
    rc=$?
    set -e
    [ "$rc" = "$want" ] || { cat out.txt err.txt >&2; fail "exit $rc, want $want: $*"; }
}

# --- keygen ---
umask 000 # a permissive umask must not leak into the private key
expect_rc 0 "$SG" keygen --out k
umask 022
[ "$(stat -c %a k.key.pem)" = 600 ] || fail "private key mode $(stat -c %a k.key.pem)"
[ "$(stat -c %a k.pub.pem)" = 644 ] || fail "public key mode $(stat -c %a k.pub.pem)"
grep -q "key id:" out.txt || fail "keygen does not print the key id"
before=$(sha256sum k.key.pem k.pub.pem)
expect_rc 2 "$SG" keygen --out k
grep -q "already exists" err.txt || fail "overwrite refusal message"
[ "$(wc -l <err.txt)" = 1 ] || fail "error is not one line"
[ "$(sha256sum k.key.pem k.pub.pem)" = "$before" ] || fail "keygen overwrote an existing key"
touch only_pub.pub.pem
expect_rc 2 "$SG" keygen --out only_pub
[ ! -e only_pub.key.pem ] || fail "keygen left a private key when the public file existed"
expect_rc 2 "$SG" keygen --out x --type rsa
expect_rc 2 "$SG" keygen
expect_rc 0 "$SG" keygen --out ed --type ed25519 --json
"$PY" -c 'import json,sys; d=json.load(open("out.txt")); assert d["type"]=="ed25519" and len(d["key_id"])==64, d' ||
    fail "keygen --json"
expect_rc 0 "$SG" keygen --out other
[ -z "$(ls -a | grep '\.tmp\.')" ] || fail "temporary files left behind"

# --- a genuine report ---
printf 'weights' >model.h5
printf 'other weights' >model2.h5
"$SG_MAKE_REPORT" --key k.key.pem --out good.json --subject-file model.h5
expect_rc 0 "$SG" verify good.json --pubkey k.pub.pem --model model.h5
grep -q '^result: PASSED$' out.txt || fail "no PASSED line"
for c in signature payloadType statement predicateType 'subject digest'; do
    grep -q "\[pass\] $c" out.txt || fail "check '$c' not shown as passed"
done
expect_rc 0 "$SG" verify good.json --pubkey k.pub.pem
grep -q '\[skip\] subject digest' out.txt || fail "digest check not shown as skipped"
expect_rc 0 "$SG" verify good.json --pubkey k.pub.pem --model model.h5 --json
"$PY" - <<'PYEOF' || fail "verify --json"
import json
d = json.load(open("out.txt"))
assert d["valid"] is True and d["passed"] is True and d["result"] == "PASSED", d
assert [c["name"] for c in d["checks"]] == ["signature", "payloadType", "statement", "predicateType", "subject digest"], d
assert all(c["status"] == "pass" for c in d["checks"]), d
assert len(d["key_id"]) == 64 and len(d["payload_sha256"]) == 64 and d["error"] is None, d
PYEOF
# A report whose file name is not UTF-8: "report" is still in the document, escaped as the
# other commands write such names (it had been left out: JSON cannot hold the raw bytes).
cp good.json "$(printf 'g\377.json')"
expect_rc 0 "$SG" verify "$(printf 'g\377.json')" --pubkey k.pub.pem --json
"$PY" -c 'import json; d = json.load(open("out.txt")); assert d["report"] == "g\\xff.json", d' ||
    fail "verify --json of a non-UTF-8 name: $(head -3 out.txt)"

# --- one key, one key id, whatever its encoding ---
# A P-256 key written with a compressed point, or with the curve's parameters spelled out, is
# other DER: its id must still be the key's (a promoter approving its own promotion through a
# re-encoded copy of its key was the attack). The key's own id is sha256 of the usual DER.
want_id=$(openssl pkey -pubin -in k.pub.pem -outform DER | sha256sum | cut -c1-64)
openssl ec -pubin -in k.pub.pem -conv_form compressed -pubout -out kc.pub.pem 2>/dev/null
openssl ec -pubin -in k.pub.pem -param_enc explicit -pubout -out kx.pub.pem 2>/dev/null
openssl ec -in k.key.pem -conv_form compressed -out kc.key.pem 2>/dev/null
chmod 600 kc.key.pem
for pub in kc kx; do
    [ "$(openssl pkey -pubin -in $pub.pub.pem -outform DER | sha256sum | cut -c1-64)" != "$want_id" ] ||
        fail "setup: $pub.pub.pem is the same DER"
    expect_rc 0 "$SG" verify good.json --pubkey $pub.pub.pem --json
    "$PY" -c 'import json,sys; d=json.load(open("out.txt")); assert d["key_id"] == sys.argv[1], d' "$want_id" ||
        fail "$pub.pub.pem: another key id for the same key"
done
"$SG_MAKE_REPORT" --key kc.key.pem --out good_c.json --subject-file model.h5
expect_rc 0 "$SG" verify good_c.json --pubkey k.pub.pem --json
"$PY" -c 'import json,sys; d=json.load(open("out.txt")); assert d["key_id"] == sys.argv[1], d' "$want_id" ||
    fail "a compressed private key signs under another key id"

# --- an envelope of many small values: refused before it is parsed (64 MiB of "{}," took
# 5 GB in the JSON parser, 80 bytes a value) ---
"$PY" -c 'import sys; sys.stdout.write("{\"signatures\": [" + ",".join(["{}"] * 500000) + "]}")' >many.json
expect_rc 1 "$SG" verify many.json --pubkey k.pub.pem
grep -q "envelope: more than 256 JSON values" out.txt err.txt || fail "many values: $(cat out.txt err.txt)"
# ... while a value count inside the payload string is not counted
expect_rc 0 "$SG" verify good.json --pubkey k.pub.pem

# --- Ed25519 public keys of small order: one signature verifies for every message ---
# libsodium's blocklist, with the sign bit clear and set: each is refused where it loads.
for hex in 0000000000000000000000000000000000000000000000000000000000000000 \
           0100000000000000000000000000000000000000000000000000000000000000 \
           26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05 \
           c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a \
           ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f \
           edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f \
           eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f; do
    for top in 0 80; do
        last=$(printf '%02x' $(( 0x${hex:62:2} | 0x$top )))
        { echo "-----BEGIN PUBLIC KEY-----"
          "$PY" -c 'import base64,sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' \
              "302a300506032b6570032100${hex:0:62}$last"
          echo "-----END PUBLIC KEY-----"; } > small.pub.pem
        expect_rc 2 "$SG" verify good.json --pubkey small.pub.pem
        grep -qF "small.pub.pem: the Ed25519 key is a point of small order" err.txt ||
            fail "small-order key ${hex:0:62}$last: $(cat err.txt)"
    done
done
# --- the P-256 point at infinity (SEC1's one-byte encoding 0x00): OpenSSL decodes it, and
# under it ECDSA verification reduces to u1*G, so a "PASSED" report for model.h5 is signed
# here with no private key (k random, r = x(kG), s = e/k). It had verified, and the registry
# had taken the key as a signer or admin key. ---
{ echo "-----BEGIN PUBLIC KEY-----"
  "$PY" -c 'import base64; print(base64.b64encode(bytes.fromhex("3019301306072a8648ce3d020106082a8648ce3d03010703020000")).decode())'
  echo "-----END PUBLIC KEY-----"; } > inf.pub.pem
"$PY" - model.h5 <<'PYEOF'
import base64, hashlib, json, secrets, sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
st = {"_type": "https://in-toto.io/Statement/v1",
      "subject": [{"name": "model.h5", "digest": {"sha256": hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()}}],
      "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
      "predicate": {"result": "PASSED", "passedTests": ["forged"], "failedTests": [],
                    "timestamp": "2026-12-06T00:00:00Z"}}
payload, pt = json.dumps(st).encode(), b"application/vnd.in-toto+json"
e = int.from_bytes(hashlib.sha256(b"DSSEv1 %d %s %d %s" % (len(pt), pt, len(payload), payload)).digest(), "big")
k = secrets.randbelow(N - 1) + 1
r = ec.derive_private_key(k, ec.SECP256R1()).public_key().public_numbers().x % N
sig = encode_dss_signature(r, e * pow(k, -1, N) % N)
json.dump({"payload": base64.b64encode(payload).decode(), "payloadType": pt.decode(),
           "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]}, open("forged.json", "w"))
PYEOF
expect_rc 2 "$SG" verify forged.json --pubkey inf.pub.pem --model model.h5
grep -qF "inf.pub.pem: not a valid public key (an EC point must be on P-256 and not the point at infinity" err.txt ||
    fail "the point at infinity: $(cat out.txt err.txt)"
grep -q PASSED out.txt && fail "a forged report's result was printed"
# A SEC1 private key file whose stored public point is another key's: the report had named
# that key's id and failed to verify under it, after `gate` had called it signed.
"$PY" - <<'PYEOF'
import base64, os
from cryptography.hazmat.primitives import serialization as s
k = s.load_pem_private_key(open("k.key.pem", "rb").read(), None)
v = s.load_pem_public_key(open("other.pub.pem", "rb").read())
der = bytearray(k.private_bytes(s.Encoding.DER, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()))
q = lambda p: p.public_bytes(s.Encoding.X962, s.PublicFormat.UncompressedPoint)
i = der.find(q(k.public_key()))
der[i:i + 65] = q(v)
fd = os.open("mixed.key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"-----BEGIN EC PRIVATE KEY-----\n" + base64.encodebytes(bytes(der)) + b"-----END EC PRIVATE KEY-----\n")
PYEOF
expect_rc 2 "$SG_MAKE_REPORT" --key mixed.key.pem --out mixed.json --subject-file model.h5
grep -qF "mixed.key.pem: not a valid key pair (the public key stored with the private key is not its own" err.txt ||
    fail "a private key with another's public point: $(cat out.txt err.txt)"
[ ! -e mixed.json ] || fail "a report was written with a mismatched key pair"

# an ordinary Ed25519 key still loads (the check is not "refuse Ed25519")
expect_rc 1 "$SG" verify good.json --pubkey ed.pub.pem
grep -q "signature" out.txt || fail "ed25519 key: $(cat out.txt err.txt)"

# --- verdicts that exit 1 ---
# A subject name with a newline and an escape sequence: a signer's text must not draw lines
# of its own in the human output (a forged "[pass]"); shown as \xNN, intact in --json.
"$SG_MAKE_REPORT" --key k.key.pem --out nl.json --subject-file model.h5 \
    --subject-name "$(printf 'model\n  [pass] subject digest  matches\033[2K')"
expect_rc 0 "$SG" verify nl.json --pubkey k.pub.pem
[ "$(grep -c '\[pass\]' out.txt)" = 4 ] || { cat out.txt >&2; fail "a subject name drew a line of its own"; }
grep -qF 'subject model\x0a  [pass] subject digest  matches\x1b[2K sha256:' out.txt ||
    { cat out.txt >&2; fail "control bytes not shown as \\xNN"; }
if grep -q "$(printf '\033')" out.txt; then fail "an escape byte reached the terminal"; fi
expect_rc 0 "$SG" verify nl.json --pubkey k.pub.pem --json
"$PY" -c 'import json; d=json.load(open("out.txt")); assert d["subject_name"] == "model\n  [pass] subject digest  matches\x1b[2K", d' ||
    fail "--json subject_name"
"$SG_MAKE_REPORT" --key k.key.pem --out failed.json --subject-file model.h5 --result FAILED
expect_rc 1 "$SG" verify failed.json --pubkey k.pub.pem --model model.h5
grep -q '^result: FAILED$' out.txt || fail "FAILED not printed"
expect_rc 1 "$SG" verify good.json --pubkey other.pub.pem
grep -q '\[FAIL\] signature' out.txt || fail "wrong key: signature not marked failed"
grep -q 'good.json' err.txt || fail "wrong key: stderr does not name the report"
grep -q 'PASSED' out.txt && fail "an unverified report's result was printed"
expect_rc 1 "$SG" verify good.json --pubkey ed.pub.pem
expect_rc 1 "$SG" verify good.json --pubkey k.pub.pem --model model2.h5
grep -q '\[FAIL\] subject digest' out.txt || fail "digest mismatch not marked"
expect_rc 1 "$SG" verify good.json --pubkey k.pub.pem --model model2.h5 --json
"$PY" -c 'import json; d=json.load(open("out.txt")); assert d["valid"] is False and d["checks"][4]["status"]=="fail", d' ||
    fail "digest mismatch --json"
"$SG_MAKE_REPORT" --key k.key.pem --out ptype.json --subject-file model.h5 --payload-type application/json
expect_rc 1 "$SG" verify ptype.json --pubkey k.pub.pem
grep -q '\[FAIL\] payloadType' out.txt || fail "payloadType not marked"
"$SG_MAKE_REPORT" --key k.key.pem --out pred.json --subject-file model.h5 --predicate-type https://slsa.dev/provenance/v1
expect_rc 1 "$SG" verify pred.json --pubkey k.pub.pem
grep -q '\[FAIL\] predicateType' out.txt || fail "predicateType not marked"
"$SG_MAKE_REPORT" --key k.key.pem --out stype.json --subject-file model.h5 --statement-type https://in-toto.io/Statement/v0.1
expect_rc 1 "$SG" verify stype.json --pubkey k.pub.pem
grep -q '\[FAIL\] statement' out.txt || fail "statement type not marked"
"$SG_MAKE_REPORT" --key k.key.pem --out two.json --subject-file model.h5 \
    --second-subject-sha256 "$(sha256sum model2.h5 | cut -d' ' -f1)"
expect_rc 1 "$SG" verify two.json --pubkey k.pub.pem --model model.h5
# A report for model2 checked against model: validly signed, wrong artifact.
"$SG_MAKE_REPORT" --key k.key.pem --out swapped.json --subject-file model2.h5
expect_rc 1 "$SG" verify swapped.json --pubkey k.pub.pem --model model.h5

# --- input errors exit 2 ---
expect_rc 2 "$SG" verify missing.json --pubkey k.pub.pem
grep -q 'missing.json' err.txt || fail "missing report not named"
expect_rc 2 "$SG" verify good.json --pubkey nokey.pem
printf 'not a key\n' >garbage.pem
expect_rc 2 "$SG" verify good.json --pubkey garbage.pem
grep -q 'garbage.pem' err.txt || fail "bad key file not named"
expect_rc 2 "$SG" verify good.json --pubkey k.pub.pem --model nomodel.h5
expect_rc 2 "$SG" verify good.json
expect_rc 2 "$SG" verify --pubkey k.pub.pem
expect_rc 2 "$SG" verify good.json good.json --pubkey k.pub.pem
expect_rc 0 "$SG" verify --help
# Keys of other types (RSA, EC on P-384) are input errors naming the file, never a crash.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key.pem 2>/dev/null
# The message names the key's type and, for EC, its curve.
for k in rsa p384; do
    chmod 600 "$k.key.pem"
    openssl pkey -in "$k.key.pem" -pubout -out "$k.pub.pem"
    kind="RSA"
    [ $k = p384 ] && kind="EC (curve secp384r1)"
    expect_rc 2 "$SG" verify good.json --pubkey "$k.pub.pem"
    grep -qF "$k.pub.pem: key type $kind is not supported" err.txt || fail "$k public key message"
    expect_rc 2 "$SG_MAKE_REPORT" --key "$k.key.pem" --out never.json --subject-file model.h5
    grep -qF "$k.key.pem: key type $kind is not supported" err.txt || fail "$k private key message"
    [ "$(wc -l <err.txt)" = 1 ] || fail "$k: error is not one line"
    [ ! -e never.json ] || fail "a report was written with an unsupported key"
done

# --- unprotected private key: refused, one line naming the file and its mode ---
cp -p k.key.pem loose.key.pem
for mode in 644 640 604 660; do
    chmod "$mode" loose.key.pem
    expect_rc 2 "$SG_MAKE_REPORT" --key loose.key.pem --out never.json --subject-file model.h5
    grep -q 'loose.key.pem: UNPROTECTED PRIVATE KEY FILE: mode 0'"$mode" err.txt || { cat err.txt; fail "mode $mode message"; }
    [ ! -e never.json ] || fail "a report was written with an unprotected key"
done

# --- a public key where the private one belongs: said so, whatever its mode ---
for mode in 644 600; do
    cp k.pub.pem given.pub.pem && chmod "$mode" given.pub.pem
    expect_rc 2 "$SG_MAKE_REPORT" --key given.pub.pem --out never.json --subject-file model.h5
    grep -q 'given.pub.pem: this is a public key (BEGIN PUBLIC KEY); signing needs the private key' err.txt ||
        { cat err.txt; fail "public key given as --key (mode $mode)"; }
    [ ! -e never.json ] || fail "a report was written with a public key"
done

# --- a key file with two keys: refused (OpenSSL would take the first); an EC PARAMETERS
# block before one key (openssl ecparam -genkey) is still one key ---
openssl genpkey -algorithm ED25519 -out other.key.pem 2>/dev/null
openssl pkey -in other.key.pem -pubout -out other.pub.pem
cat k.key.pem other.key.pem >two.key.pem && chmod 600 two.key.pem
expect_rc 2 "$SG_MAKE_REPORT" --key two.key.pem --out never.json --subject-file model.h5
grep -q 'two.key.pem: holds 2 private keys; a key file must hold exactly one' err.txt || { cat err.txt; fail "two private keys"; }
[ ! -e never.json ] || fail "a report was written with a two-key file"
cat k.pub.pem other.pub.pem >two.pub.pem
expect_rc 2 "$SG" verify good.json --pubkey two.pub.pem
grep -q 'two.pub.pem: holds 2 public keys' err.txt || { cat err.txt; fail "two public keys"; }
# A private key given where the public one belongs is named as such.
expect_rc 2 "$SG" verify good.json --pubkey k.key.pem
grep -q 'k.key.pem: this is a private key; give the public key' err.txt || { cat err.txt; fail "private key as --pubkey"; }
if grep -q 'PRIVATE KEY-----\|MII' err.txt; then fail "the private key's text reached the message"; fi
# ... also behind a line "-----BEGIN NOTE" without its closing dashes, which OpenSSL skips: the
# count had taken the next key's dashes as that label's end, and seen one key (CRLF lines too)
{ echo "-----BEGIN NOTE"; cat k.key.pem other.key.pem; } >hidden.key.pem && chmod 600 hidden.key.pem
expect_rc 2 "$SG_MAKE_REPORT" --key hidden.key.pem --out never.json --subject-file model.h5
grep -q 'hidden.key.pem: holds 2 private keys' err.txt || { cat err.txt; fail "two private keys behind a note"; }
{ echo "-----BEGIN NOTE"; cat k.pub.pem other.pub.pem; } | sed 's/$/\r/' >hidden.pub.pem
expect_rc 2 "$SG" verify good.json --pubkey hidden.pub.pem
grep -q 'hidden.pub.pem: holds 2 public keys' err.txt || { cat err.txt; fail "two public keys behind a note"; }
# ... and where OpenSSL's reader still finds the first key: a BEGIN line ending in a space or
# a tab, a byte-order mark before it, or 254 bytes before it on its line (OpenSSL reads a line
# in 254-byte pieces). The count had seen one key, and the hidden first one had signed.
for how in space tab bom long; do
    for kind in key pub; do
        case $how in
        space) { sed '1s/$/ /' k.$kind.pem; cat other.$kind.pem; } ;;
        tab) { sed '1s/$/\t/' k.$kind.pem; cat other.$kind.pem; } ;;
        bom) { printf '\357\273\277'; cat k.$kind.pem other.$kind.pem; } ;;
        long) { head -c 254 /dev/zero | tr '\0' x; cat k.$kind.pem other.$kind.pem; } ;;
        esac >"hid_$how.$kind.pem"
    done
    chmod 600 "hid_$how.key.pem"
    expect_rc 2 "$SG_MAKE_REPORT" --key "hid_$how.key.pem" --out never.json --subject-file model.h5
    grep -q "hid_$how.key.pem: holds 2 private keys" err.txt || { cat err.txt; fail "two private keys ($how)"; }
    [ ! -e never.json ] || fail "a report was written with a two-key file ($how)"
    expect_rc 2 "$SG" verify good.json --pubkey "hid_$how.pub.pem"
    grep -q "hid_$how.pub.pem: holds 2 public keys" err.txt || { cat err.txt; fail "two public keys ($how)"; }
done
# A BEGIN quoted inside a line of text is not a block to OpenSSL, nor to the count: a note
# before the one key that names its BEGIN line had been counted as a second key.
{ echo "the key below starts at the line -----BEGIN PRIVATE KEY-----"; cat k.key.pem; } >note.key.pem
chmod 600 note.key.pem
expect_rc 0 "$SG_MAKE_REPORT" --key note.key.pem --out note.json --subject-file model.h5
openssl ecparam -name prime256v1 -genkey -out ecp.key.pem 2>/dev/null && chmod 600 ecp.key.pem
grep -q 'BEGIN EC PARAMETERS' ecp.key.pem || fail "openssl ecparam wrote no parameters block"
expect_rc 0 "$SG_MAKE_REPORT" --key ecp.key.pem --out ecp.json --subject-file model.h5

# --- tampering through the CLI: byte positions spread over payload, signature and type ---
# (test_dsse flips every bit of all three in-process; each CLI start costs tens of ms,
# so here about seventy positions, always including the first and last bytes).
"$PY" - <<'PYEOF'
import base64, json
e = json.load(open("good.json"))
payload = base64.b64decode(e["payload"], validate=True)
sig = base64.b64decode(e["signatures"][0]["sig"], validate=True)
n = 0
def write(p, t, s):
    global n
    doc = {"payload": base64.b64encode(p).decode(), "payloadType": t,
           "signatures": [{"keyid": e["signatures"][0]["keyid"], "sig": base64.b64encode(s).decode()}]}
    with open("t%05d.json" % n, "w") as f:
        json.dump(doc, f)
    n += 1
def spread(n, k):
    return sorted(set([0, n - 1] + list(range(0, n, max(1, n // k)))))
for i in spread(len(payload), 40):
    p = bytearray(payload); p[i] ^= 0x01; write(bytes(p), e["payloadType"], sig)
for i in spread(len(sig), 16):
    s = bytearray(sig); s[i] ^= 0x80; write(payload, e["payloadType"], bytes(s))
t = e["payloadType"]
for i in spread(len(t), 14):
    write(payload, t[:i] + chr(ord(t[i]) ^ 0x01) + t[i + 1:], sig)
# The subject digest swapped for another file's, signature kept.
import hashlib
d = json.loads(payload)
old = d["subject"][0]["digest"]["sha256"]
new = hashlib.sha256(b"other weights").hexdigest()
write(payload.replace(old.encode(), new.encode()), e["payloadType"], sig)
PYEOF
count=0
for f in t*.json; do
    set +e
    "$SG" verify "$f" --pubkey k.pub.pem >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "tampered envelope $f gave exit $rc, want 1"
    count=$((count + 1))
done
[ "$count" -gt 60 ] || fail "only $count tampered envelopes were tried"

# --- names from outside in what verify prints: a tampered report named with escape
# sequences had its raw name on stderr, which moved the cursor up and wrote "result: PASSED"
# over the INVALID line (and a newline made two lines); a model path that is not UTF-8 had
# dropped --json's "error" and the failed check's "detail" ---
evil=$'x\e[1A\e[2K\rresult: PASSED\nsecond'
cp t00000.json "$evil"
expect_rc 1 "$SG" verify "$evil" --pubkey k.pub.pem
[ "$(wc -l <err.txt)" = 1 ] || { cat err.txt; fail "verify: a report's name split stderr"; }
if grep -q $'\e' err.txt; then fail "verify: a raw escape from the report's name reached stderr"; fi
grep -q 'x\\x1b\[1A\\x1b\[2K\\x0dresult: PASSED\\x0asecond: ' err.txt ||
    { cat err.txt; fail "verify: the report's name is not shown escaped"; }
echo "other weights" >$'other\xff.h5'
expect_rc 1 "$SG" verify good.json --pubkey k.pub.pem --model $'other\xff.h5' --json
"$PY" - <<'PYEOF' || fail "verify --json with a non-UTF-8 model path"
import json
d = json.load(open("out.txt"))
assert isinstance(d.get("error"), str) and "other\\xff.h5" in d["error"], d
bad = [c for c in d["checks"] if c["status"] == "fail"]
assert bad and all(isinstance(c.get("detail"), str) for c in bad), d["checks"]
PYEOF
echo "verify_cli: ok ($count tampered envelopes refused)"
