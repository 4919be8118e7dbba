# Shared by the attacks on a registry with a root of trust: an admin key, a model whose gate is
# pinned (policy.json on val.h5), whose Production needs an approval (bob) and a promoter
# (alice); v1 and v2 promoted through the gate (v2 in Production, v1 Archived), v3 in Staging.
. "$STAGEGATE_SOURCE_DIR/tests/registry/lib.sh"
real_models 4
keys admin signer alice bob mallory
R="$SG registry"
expect 0 $R init --admin admin.pub.pem
expect 0 $R create-model fraud --signer signer.pub.pem --promoter Production=alice.pub.pem \
    --approver bob.pub.pem --require-approval --policy policy.json --dataset val.h5 \
    --as admin.key.pem
for i in 1 2 3; do $R create-version fraud m$i.h5 --as signer.key.pem >/dev/null; done
to_staging() { gate_report signer models:/fraud/$1 r$1.json; expect 0 $R transition fraud $1 Staging --report r$1.json --as signer.key.pem; }
promote() {
    to_staging "$1"
    expect 0 $R approve fraud $1 --as bob.key.pem
    expect 0 $R transition fraud $1 Production --as alice.key.pem
}
promote 1
promote 2
to_staging 3
[ "$(stage_of fraud 2)" = Production ] && [ "$(stage_of fraud 3)" = Staging ] ||
    fail "setup: v2 $(stage_of fraud 2), v3 $(stage_of fraud 3)"
expect 0 $R verify-log
# forge ACTION VERSION FROM TO ACTOR EVIDENCE DETAIL [REQUEST [SIGNATURE]]: appends an event as
# someone with write access to the database would, with a correct hash chain and audit head
# (the hash formula is public: docs/registry.md).
forge() {
    local head
    head=$(q "SELECT seq, hash FROM audit_head")
    $PY "$STAGEGATE_SOURCE_DIR/tests/security/forge_event.py" "$head" fraud "$@" > forge.sql
    q "$(cat forge.sql)"
}
key_id() { openssl pkey -pubin -in "$1.pub.pem" -outform DER 2>/dev/null | sha256sum | cut -c1-64; }
# drop_append_only: what an owner of the database can do; the log's own triggers go
drop_append_only() {
    if [ "$BACKEND" = postgresql ]; then
        q "DROP TRIGGER audit_log_append_only_delete ON audit_log; DROP TRIGGER audit_log_append_only_update ON audit_log"
    else
        q "DROP TRIGGER audit_log_append_only_delete; DROP TRIGGER audit_log_append_only_update"
    fi
}
