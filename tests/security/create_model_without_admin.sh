#!/bin/bash
# Attack: anyone who could run `create-model` picked the new model's trusted keys. With a root
# of trust (`registry init --admin PUB`), creating a model, changing its pins and adding keys
# need an admin's signature; the first admin is the only unsigned one.
. "$(dirname "$0")/registry_root_setup.sh"
expect 1 $R create-model evil --signer mallory.pub.pem --promoter Production=mallory.pub.pem
err_has "create-model evil needs a signed request"
expect 1 $R create-model evil --signer mallory.pub.pem --as mallory.key.pem
err_has "needs an admin's signature; key"
expect 1 $R init --admin mallory.pub.pem
err_has "refused: add-key needs a signed request"
expect 1 $R init --admin mallory.pub.pem --as mallory.key.pem
err_has "is not an admin"
expect 1 $R init --server mallory.pub.pem --as mallory.key.pem
err_has "is not an admin"
echo '{"metrics": {"accuracy": {"threshold": 0.01}}}' > lenient.json
expect 1 $R pin fraud --policy lenient.json --dataset val.h5
err_has "needs a signed request"
expect 1 $R pin fraud --policy lenient.json --dataset val.h5 --as mallory.key.pem
err_has "is not an admin"
[ "$(q "SELECT count(*) FROM registered_models")" = 1 ] || fail "a model was created"
[ "$(q "SELECT count(*) FROM registry_keys")" = 1 ] || fail "a key was added"
[ "$(q "SELECT policy_sha256 FROM registered_models")" = "$(sha policy.json)" ] || fail "pins changed"
# every other change needs a key that holds a role in the model (or an admin's)
expect 1 $R create-version fraud m4.h5
err_has "needs a signed request (--as KEY.pem) by a key that holds a role in the model"
expect 1 $R create-version fraud m4.h5 --as mallory.key.pem
err_has "holds no role in model fraud and is not an admin"
expect 1 $R set-alias fraud champion 2 --as mallory.key.pem
err_has "holds no role in model fraud"
expect 0 $R set-alias fraud champion 2 --as alice.key.pem
expect 0 $R create-version fraud m4.h5 --as admin.key.pem
# the admin may; a second admin added by the first may too
expect 0 $R create-model good --signer signer.pub.pem --as admin.key.pem
expect 0 $R init --admin bob.pub.pem --as admin.key.pem
expect 0 $R pin good --policy policy.json --dataset val.h5 --as bob.key.pem
expect 0 $R keys --json
grep -q '"role": "admin"' "$WORK/out" || fail "keys lists no admin"
expect 0 $R verify-log --json
grep -q '"root_of_trust": true' "$WORK/out" || fail "verify-log does not report the root"
echo "create-model without an admin: refused"
