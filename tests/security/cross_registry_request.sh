#!/bin/bash
# Attack: a second registry with the same model name and the same keys (a regional copy, a
# staging registry). bob's genuine signed approval of fraud v3 there was copied into this
# registry's log (a chained event, the approvals row), as someone who can write its database
# would: the promoter then took this registry's v3, another artifact, to Production, and
# verify-log passed. Requests named no registry. Now each names the audit head of the
# registry it was made for (registry=SEQ:HASH), which no other log holds: the copied
# approval counts for nothing and verify-log names it. A request without that line, after
# requests with it, is refused too (one made by an older stagegate, or stripped and re-signed).
. "$(dirname "$0")/registry_root_setup.sh"
bob=$(key_id bob)
# Registry B: same admin, keys and model; three versions of other artifacts; bob approves v3.
B=(--db "$WORK/other.db")
expect 0 $R "${B[@]}" init --admin admin.pub.pem
expect 0 $R "${B[@]}" create-model fraud --signer signer.pub.pem --promoter Production=alice.pub.pem \
    --approver bob.pub.pem --require-approval --as admin.key.pem
for i in 1 2 3; do head -c 4096 /dev/urandom > other$i.bin; $R "${B[@]}" create-version fraud other$i.bin --as signer.key.pem >/dev/null; done
expect 0 $R "${B[@]}" approve fraud 3 --as bob.key.pem
row() { sqlite3 -separator $'\x1f' "$WORK/other.db" "SELECT $1 FROM audit_log WHERE action = 'approve' ORDER BY seq DESC LIMIT 1"; }
text=$(row request_text)
sig=$(row signature)
grep -q '^registry=[0-9]*:[0-9a-f]\{64\}$' <<<"$text" || fail "B's request names no registry: $text"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
copy_approval() { # copy_approval TEXT SIGNATURE: the event and the row, as an attacker would
    forge approve 3 "" "" "$bob" "" "" "$1" "$2"
    q "INSERT INTO approvals (model_name, version, approver_key_id, decision, comment, created_at) VALUES ('fraud', 3, '$bob', 'approved', '', '$now')"
}
snapshot
copy_approval "$text" "$sig"
expect 1 $R transition fraud 3 Production --as alice.key.pem
err_has "no approval on record"
[ "$(stage_of fraud 3)" = Staging ] || fail "v3 was promoted on another registry's approval"
expect 1 $R verify-log
err_has "approve fraud v3): its request was made for another registry"
# The same request without its registry line, signed again by bob (what an older stagegate
# wrote): refused after this log's requests that name it.
restore
legacy=$(grep -v '^registry=' <<<"$text")$'\n'
lsig=$(printf '%s' "$legacy" | openssl dgst -sha256 -sign bob.key.pem | base64 -w0)
copy_approval "$legacy" "$lsig"
expect 1 $R transition fraud 3 Production --as alice.key.pem
err_has "no approval on record"
expect 1 $R verify-log
err_has "approve fraud v3): its request names no registry, after requests that did"
# bob's own approval here still counts.
restore
expect 0 $R approve fraud 3 --as bob.key.pem
expect 0 $R transition fraud 3 Production --as alice.key.pem
expect 0 $R verify-log
# Twins: two registries set up alike in the same second (one script, one admin key) had the
# same first event, so a request signed against that head in one held in the other. The admin
# makes an insider an admin in DEV only; the insider, who can write PROD's file but holds no
# PROD key, copies that event and its rows into PROD. Each registry's first event is now its
# random id: the copied request names a head PROD's log does not hold.
keys insider
for r in prod dev; do expect 0 $R --db "$WORK/$r.db" init --admin admin.pub.pem; done
first() { sqlite3 "$WORK/$1.db" "SELECT action || ' ' || length(detail) || ' ' || hash FROM audit_log WHERE seq = 1"; }
[ "$(first prod | cut -d' ' -f1-2)" = "create-registry 64" ] || fail "first event: $(first prod)"
[ "$(first prod)" != "$(first dev)" ] || fail "two registries share their first event: $(first prod)"
expect 0 $R --db "$WORK/dev.db" init --admin insider.pub.pem --as admin.key.pem
n=$(sqlite3 "$WORK/dev.db" "SELECT max(seq) FROM audit_log")
sqlite3 "$WORK/prod.db" "ATTACH '$WORK/dev.db' AS dev;
  INSERT INTO audit_log SELECT * FROM dev.audit_log WHERE seq = $n;
  INSERT INTO registry_keys SELECT * FROM dev.registry_keys WHERE key_id NOT IN (SELECT key_id FROM registry_keys);
  INSERT INTO request_nonces SELECT * FROM dev.request_nonces;
  UPDATE audit_head SET seq = (SELECT seq FROM dev.audit_head), hash = (SELECT hash FROM dev.audit_head);" ||
    fail "copying the event"
expect 1 $R --db "$WORK/prod.db" verify-log
err_has "does not chain to the event before it"
# A registry's id is its first event only: one forged later in the chain is named.
restore
forge create-registry 0 "" "" "" "" "$(printf 'ab%.0s' {1..32})"
expect 1 $R verify-log
err_has "a registry's id is its first event only, 64 hex digits"
echo "another registry's approval: not honoured, detected; twin registries do not share a head"
