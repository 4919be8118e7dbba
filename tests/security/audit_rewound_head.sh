#!/bin/bash
# Attack: delete the newest audit event (with the append-only triggers dropped, as the
# database owner can), undo its change and rewind audit_head. The chain then verifies: the
# log is simply shorter. A signed checkpoint kept outside the database catches it, and so does
# the registry itself when a gate report made before the rewind (it embeds the audit head)
# comes to it afterwards.
. "$(dirname "$0")/registry_root_setup.sh"
expect 0 $R create-version fraud m4.h5 --as signer.key.pem
expect 0 $R set-tag fraud 3 reviewed yes --as signer.key.pem
expect 0 $R checkpoint --as admin.key.pem --out cp.json
# --out over what the command reads or the registry lives in: refused, all of it unchanged
# (the admin key is the registry's root of trust)
mkdir -p sub
key_sum=$(sha256sum < admin.key.pem)
for o in admin.key.pem sub/../admin.key.pem "$WORK/admin.key.pem"; do
    expect 2 $R checkpoint --as admin.key.pem --out "$o"
    err_has "is the same file as --as"
    [ "$(wc -l < "$WORK/err")" = 1 ] || fail "not one line: $(cat "$WORK/err")"
done
[ "$(sha256sum < admin.key.pem)" = "$key_sum" ] || fail "checkpoint --out overwrote the admin key"
if [ "${SG_REG_BACKEND:-sqlite}" = sqlite ]; then
    db_sum=$(sha256sum < "$STAGEGATE_REGISTRY")
    expect 2 $R checkpoint --as admin.key.pem --out "$STAGEGATE_REGISTRY"
    err_has "is the same file as the registry"
    [ "$(wc -l < "$WORK/err")" = 1 ] || fail "not one line: $(cat "$WORK/err")"
    for j in wal shm journal; do
        expect 2 $R checkpoint --as admin.key.pem --out "$STAGEGATE_REGISTRY-$j"
        err_has "is the same file as the registry's"
        [ "$(wc -l < "$WORK/err")" = 1 ] || fail "not one line: $(cat "$WORK/err")"
    done
    [ "$(sha256sum < "$STAGEGATE_REGISTRY")" = "$db_sum" ] || fail "checkpoint --out overwrote the registry"
    expect 0 $R list
fi
gate_report signer models:/fraud/4 r4.json
$PY -c 'import base64,json,sys; p=json.loads(base64.b64decode(json.load(open("r4.json"))["payload"])); h=p["predicate"]["registry"]["audit_head"]; assert h["seq"] > 0 and len(h["hash"]) == 64, h' ||
    fail "the report does not embed the registry's audit head"
expect 0 $R verify-log --checkpoint cp.json
grep -q "checkpoint of .* holds" "$WORK/out" || fail "verify-log did not report the checkpoint"
# a checkpoint is an admin's: mallory cannot make one, and mallory's key does not verify one
expect 1 $R checkpoint --as mallory.key.pem --out cp2.json
err_has "is not an admin"
[ ! -e cp2.json ] || fail "a refused checkpoint left a file"
expect 1 $R verify-log --checkpoint cp.json --pubkey mallory.pub.pem
err_has "checkpoint signature does not verify"
snapshot
drop_append_only
# 0. the head's hash edited, nothing else: said as such (it had read "events deleted?")
q "UPDATE audit_head SET hash = upper(hash) WHERE id = 1"
expect 1 $R verify-log
err_has "head records hash"; err_has "the head or the last event was edited"
if grep -q "events deleted" "$WORK/err"; then fail "an edited head hash read as deleted events"; fi
restore
drop_append_only
# 1. rewind: the tag event goes, with its row and the head
n=$(q "SELECT max(seq) FROM audit_log")
prev=$(q "SELECT hash FROM audit_log WHERE seq = $((n - 1))")
nonce=$(q "SELECT request_text FROM audit_log WHERE seq = $n" | sed -n 's/^nonce=//p')
[ -n "$nonce" ] || fail "setup: the tag event has no signed request"
q "DELETE FROM audit_log WHERE seq = $n"
q "DELETE FROM request_nonces WHERE nonce = '$nonce'"   # or the leftover nonce gives it away
q "DELETE FROM version_tags WHERE model_name = 'fraud' AND version = 3"
q "UPDATE audit_head SET seq = $((n - 1)), hash = '$prev' WHERE id = 1"
expect 0 $R verify-log   # without the checkpoint this is a consistent, shorter log
expect 1 $R verify-log --checkpoint cp.json
err_has "rewound past a checkpoint"
err_has "certifies event $n, and the log now ends at event $((n - 1))"
expect 1 $R verify-log --checkpoint cp.json --pubkey admin.pub.pem
err_has "rewound past a checkpoint"
expect 1 $R transition fraud 4 Staging --report r4.json --as signer.key.pem
err_has "the report was gated against a registry whose audit log held event $n"
err_has "this log ends before it"
# 2. rewrite: another event in its place, chained correctly
forge set-tag 3 "" "" "" "$(printf reviewed | sha256sum | cut -c1-64)" "reviewed=no"
q "INSERT INTO version_tags (model_name, version, tag_key, tag_value) VALUES ('fraud', 3, 'reviewed', 'no')"
expect 1 $R verify-log --checkpoint cp.json
err_has "rewritten: event $n's hash is not the one the checkpoint"
# 3. a checkpoint edited to certify the forged head does not verify
restore
$PY - cp.json <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
p = json.loads(base64.b64decode(env["payload"]))
p["seq"] -= 1
env["payload"] = base64.b64encode(json.dumps(p).encode()).decode()
json.dump(env, open("cp-edited.json", "w"))
PY
expect 1 $R verify-log --checkpoint cp-edited.json
err_has "checkpoint signature does not verify"
# 4. not a checkpoint: an empty or non-JSON file is an input error (exit 2), not a failed
# signature; an admin-signed DSSE envelope whose payload is not a checkpoint (no type, another
# type, no time) is refused, not read as one ("the checkpoint of (null)")
: > empty.json
expect 2 $R verify-log --checkpoint empty.json
err_has "checkpoint is not a DSSE envelope"
echo 'not json' > garbage.json
expect 2 $R verify-log --checkpoint garbage.json
err_has "checkpoint is not a DSSE envelope"
for edit in 'del p["time"]' 'p["type"] = "not-a-checkpoint"' 'del p["type"]'; do
    $PY - cp.json "$edit" <<'PY'
import base64, json, subprocess, sys
env = json.load(open(sys.argv[1]))
p = json.loads(base64.b64decode(env["payload"]))
exec(sys.argv[2])
payload = json.dumps(p).encode()
pae = b"DSSEv1 %d %s %d %s" % (len(env["payloadType"]), env["payloadType"].encode(), len(payload), payload)
sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", "admin.key.pem", "-rawin"], input=pae,
                     capture_output=True)
if sig.returncode != 0:  # P-256: sign the digest
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", "admin.key.pem"], input=pae,
                         capture_output=True, check=True)
env["payload"] = base64.b64encode(payload).decode()
env["signatures"][0]["sig"] = base64.b64encode(sig.stdout).decode()
json.dump(env, open("cp-other.json", "w"))
PY
    expect 2 $R verify-log --checkpoint cp-other.json
    err_has "checkpoint payload is not a stagegate checkpoint"
done
echo "rewound audit head: detected by a checkpoint"
