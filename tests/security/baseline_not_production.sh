#!/bin/bash
# Attack: gate a candidate against a baseline of one's choosing (itself, or an archived
# version) instead of what is in Production, so "no regression against Production" and
# shadow agreement hold trivially; or leave the baseline out, so a policy's optional
# baseline rules are skipped. The registry now takes a report into a gated stage only when
# the baseline it names is a Production version's artifact, and requires one when the
# report's policy compares with a baseline and the model has a version in Production.
. "$(dirname "$0")/registry_root_setup.sh"
expect 0 $R create-version fraud m4.h5 --as signer.key.pem
# the pinned policy has absolute limits only: a report without a baseline is fine ...
gate_report signer models:/fraud/4 nobase.json
# ... one gated against itself is not, nor one against an archived version (v1)
gate_report signer models:/fraud/4 self.json policy.json --baseline m4.h5
expect 1 $R transition fraud 4 Staging --report self.json --as signer.key.pem
err_has "report was gated against baseline sha256:$(sha m4.h5 | cut -c1-16)..., which is not what model fraud has in Production (v2"
gate_report signer models:/fraud/4 old.json policy.json --baseline models:/fraud/1
expect 1 $R transition fraud 4 Staging --report old.json --as signer.key.pem
err_has "which is not what model fraud has in Production (v2"
[ "$(stage_of fraud 4)" = None ] || fail "v4 entered Staging gated against another baseline"
# A model whose pinned policy compares with a baseline (an optional f1 rule, skipped without
# one): a report without a baseline does not enter while a version is in Production.
cat > rel.json <<'JSON'
{"metrics": {"accuracy": {"threshold": 0.5},
             "f1": {"max_relative_regression": 0.5, "optional": true}}}
JSON
expect 0 $R create-model release-candidate-model --signer signer.pub.pem --promoter Production=alice.pub.pem \
    --policy rel.json --dataset val.h5 --as admin.key.pem
for i in 1 2; do expect 0 $R create-version release-candidate-model m$i.h5 --as signer.key.pem; done
gate_report signer models:/release-candidate-model/1 rel1.json rel.json
expect 0 $R transition release-candidate-model 1 Staging --report rel1.json --as signer.key.pem # nothing in Production yet
expect 0 $R transition release-candidate-model 1 Production --as alice.key.pem
gate_report signer models:/release-candidate-model/2 rel2.json rel.json
expect 1 $R transition release-candidate-model 2 Staging --report rel2.json --as signer.key.pem
err_has "report was gated without a baseline, and its policy compares with one while model release-candidate-model has v1 in Production"
gate_report signer models:/release-candidate-model/2 rel2b.json rel.json --baseline models:/release-candidate-model/Production
expect 0 $R transition release-candidate-model 2 Staging --report rel2b.json --as signer.key.pem
# the report without a baseline still enters fraud (its policy has no baseline rule), and
# one gated against Production does too
expect 0 $R transition fraud 4 Staging --report nobase.json --as signer.key.pem
# A validation gated against the Production of its day goes stale when Production changes:
# v3 entered Staging compared with v1; once v2 replaced v1 in Production, v3's promotion on
# that validation would put a version in Production that was never compared with the one it
# replaces (it had gone through). Gated again against Production, it is promoted.
expect 0 $R create-version release-candidate-model m3.h5 --as signer.key.pem
gate_report signer models:/release-candidate-model/3 rel3.json rel.json --baseline models:/release-candidate-model/Production
expect 0 $R transition release-candidate-model 3 Staging --report rel3.json --as signer.key.pem
expect 0 $R transition release-candidate-model 2 Production --as alice.key.pem
[ "$(stage_of release-candidate-model 2)" = Production ] && [ "$(stage_of release-candidate-model 1)" = Archived ] || fail "rel v2 not promoted"
expect 1 $R transition release-candidate-model 3 Production --as alice.key.pem
err_has "v3's validation is stale: its report was gated against baseline sha256:$(sha m1.h5 | cut -c1-16)..., which is not what model release-candidate-model has in Production (v2"
# the whole advice, whatever the model's name: it had been cut at 200 bytes, mid-URI
err_has "gate it with --baseline models:/release-candidate-model/Production; then promote with --report"
err_has "then promote with --report"
[ "$(stage_of release-candidate-model 3)" = Staging ] && [ "$(stage_of release-candidate-model 2)" = Production ] || fail "a stale validation promoted v3"
gate_report signer models:/release-candidate-model/3 rel3b.json rel.json --baseline models:/release-candidate-model/Production
expect 0 $R transition release-candidate-model 3 Production --report rel3b.json --as alice.key.pem
[ "$(stage_of release-candidate-model 3)" = Production ] || fail "v3 with a fresh report not promoted"
# a restore brings back a version that passed Production's gates against the Production of
# its day: v2's validation names v1, and v2 comes back
expect 0 $R rollback release-candidate-model --as alice.key.pem
[ "$(stage_of release-candidate-model 2)" = Production ] || fail "rollback to v2"
expect 0 $R verify-log
echo "a baseline other than Production: refused"
