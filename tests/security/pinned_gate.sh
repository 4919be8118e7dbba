#!/bin/bash
# Attack: gate a model with a policy that passes anything (or on another dataset), then use
# that signed PASSED report to enter Staging; or reuse one model's gate report for the same
# artifact registered under another model name. A registered model now pins its gate
# (`create-model --policy P --dataset D`): the report must name exactly that policy and
# dataset.
. "$(dirname "$0")/registry_root_setup.sh"
expect 0 $R create-version fraud m4.h5 --as signer.key.pem
echo '{"metrics": {"accuracy": {"threshold": 0.01}}}' > lenient.json
gate_report signer models:/fraud/4 lenient.r.json lenient.json
expect 1 $R transition fraud 4 Staging --report lenient.r.json --as signer.key.pem
err_has "report's policy sha256:$(sha lenient.json | cut -c1-16)... is not the policy pinned for model fraud"
# another dataset (same shape, other rows)
$PY "$MAKE_DATASET" --out other.h5 --task binary --rows 2000 --features 8 --seed 9
"$SG" gate --model models:/fraud/4 --data other.h5 --policy policy.json --key signer.key.pem \
    --out other.r.json >/dev/null 2>&1 || true
[ -s other.r.json ] || fail "no report on other.h5"
expect 1 $R transition fraud 4 Staging --report other.r.json --as signer.key.pem
err_has "report's dataset sha256:$(sha other.h5 | cut -c1-16)... is not the dataset pinned"
[ "$(stage_of fraud 4)" = None ] || fail "v4 entered Staging on another gate"
# the same artifact under another model, with its own gate: fraud's report does not enter
echo '{"metrics": {"accuracy": {"threshold": 0.6}, "f1": {"threshold": 0.5}}}' > strict.json
expect 0 $R create-model fraud-eu --signer signer.pub.pem --policy strict.json --dataset val.h5 \
    --as admin.key.pem
expect 0 $R create-version fraud-eu m4.h5 --as signer.key.pem
gate_report signer models:/fraud/4 fraud.r.json
expect 1 $R transition fraud-eu 1 Staging --report fraud.r.json --as signer.key.pem
err_has "is not the policy pinned for model fraud-eu"
gate_report signer models:/fraud-eu/1 eu.r.json strict.json
expect 0 $R transition fraud-eu 1 Staging --report eu.r.json --as signer.key.pem
expect 0 $R transition fraud 4 Staging --report fraud.r.json --as signer.key.pem
# get shows what a model is pinned to (the docs said --json did; neither form had shown it)
expect 0 $R --json get fraud-eu
[ "$(jq -r '.policy_sha256 + " " + .dataset_sha256' "$WORK/out")" = "$(sha strict.json) $(sha val.h5)" ] ||
    fail "get --json pins: $(jq -c '{policy_sha256, dataset_sha256}' "$WORK/out")"
expect 0 $R get fraud-eu
grep -F "pinned gate: policy sha256:$(sha strict.json | cut -c1-16)..., dataset sha256:$(sha val.h5 | cut -c1-16)..." "$WORK/out" >/dev/null ||
    fail "get's text lacks the pins: $(cat "$WORK/out")"
# a pin changed by an admin applies from then on, and replays
expect 0 $R pin fraud --policy strict.json --dataset val.h5 --as admin.key.pem
expect 0 $R --json get fraud
[ "$(jq -r .policy_sha256 "$WORK/out")" = "$(sha strict.json)" ] || fail "get after pin: $(jq -r .policy_sha256 "$WORK/out")"
expect 0 $R verify-log
# ...so v4, which entered Staging under the old pins, is not promoted on that validation, and the
# refusal says why and what to do (it had said "no passed validation on record ... enter Staging
# with a report first", a step a version already in Staging cannot take)
expect 0 $R approve fraud 4 --as bob.key.pem
expect 1 $R transition fraud 4 Production --as alice.key.pem
err_has "v4's validation is stale: its report was gated under pins the model no longer has (report's policy sha256:$(sha policy.json | cut -c1-16)... is not the policy pinned for model fraud"
err_has "then promote with --report"
gate_report signer models:/fraud/4 strict.r.json strict.json
expect 0 $R transition fraud 4 Production --report strict.r.json --as alice.key.pem
expect 0 $R verify-log
# a copy keeps the root, the recorded configurations and the report bodies: it replays too
expect 0 $SG registry migrate --from "$STAGEGATE_REGISTRY" --to "$WORK/copy.db"
expect 0 $SG registry verify-log --db "$WORK/copy.db" --json
grep -q '"root_of_trust": true' "$WORK/out" || fail "the copy lost its root of trust"
echo "policy and dataset pinned per model: enforced"
