# Shared by the registry attack tests: a model whose Production needs an approval (bob) and a
# promoter (alice), with v1 promoted to Production and then replaced by v2 (v1 Archived).
. "$STAGEGATE_SOURCE_DIR/tests/registry/lib.sh"
real_models 3
keys signer alice bob
R="$SG registry"
expect 0 $R create-model fraud --signer signer.pub.pem --promoter Production=alice.pub.pem \
    --approver bob.pub.pem --require-approval
for i in 1 2 3; do $R create-version fraud m$i.h5 >/dev/null; done
promote() {  # promote V: gate report -> Staging -> approval -> Production
    gate_report signer models:/fraud/$1 r$1.json
    expect 0 $R transition fraud $1 Staging --report r$1.json
    expect 0 $R approve fraud $1 --as bob.key.pem
    expect 0 $R transition fraud $1 Production --as alice.key.pem
}
promote 1
promote 2
[ "$(stage_of fraud 1)" = Archived ] && [ "$(stage_of fraud 2)" = Production ] ||
    fail "setup: v1 $(stage_of fraud 1), v2 $(stage_of fraud 2)"
