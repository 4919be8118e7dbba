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
echo "another registry's approval: not honoured, detected"
