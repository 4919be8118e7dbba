#!/bin/bash
# Real reports from `stagegate gate` drive the registry: v4 gated and promoted, then v5 gated
# against the baseline models:/fraud-detector/Production and staged; v4's report on v5 is refused.
. "$(dirname "$0")/lib.sh"
MD="$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py"
$PY "$MD" --out val.h5 --task binary --rows 2000 --features 8 --seed 4
$PY "$MD" --task binary --features 8 --seed 4 --fit logreg --model-out m4.h5
$PY "$MD" --task binary --features 8 --seed 4 --fit logreg-scaled --model-out m5.h5
keys signer alice
cat > policy.json <<'P'
{"metrics": {"accuracy": {"threshold": 0.5}, "f1": {"max_relative_regression": 0.5, "optional": true}}}
P
R="$SG registry"
expect 0 $R create-model fraud-detector --signer signer.pub.pem --promoter Production=alice.pub.pem
$R create-version fraud-detector m4.h5 >/dev/null
$R create-version fraud-detector m5.h5 >/dev/null
expect 0 "$SG" gate --model models:/fraud-detector/1 --data val.h5 --policy policy.json \
    --key signer.key.pem --out r4.intoto.json
expect 0 $R transition fraud-detector 1 Staging --report r4.intoto.json
expect 0 $R transition fraud-detector 1 Production --as alice.key.pem
expect 1 $R transition fraud-detector 2 Staging --report r4.intoto.json
err_has "report is for artifact"
expect 0 "$SG" gate --model models:/fraud-detector/2 --baseline models:/fraud-detector/Production \
    --data val.h5 --policy policy.json --key signer.key.pem --out r5.intoto.json
expect 0 $R transition fraud-detector 2 Staging --report r5.intoto.json
expect 0 $R transition fraud-detector 2 Production --as alice.key.pem
[ "$(stage_of fraud-detector 1)" = Archived ] || fail "v1 not archived"
expect 0 $R verify-log
echo "gate reports OK"
