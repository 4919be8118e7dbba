#!/bin/bash
# Attack: insert mallory's key into model_keys as a trusted signer of the model, then bring a
# bad model into Staging with a report mallory signed; as a promoter, roll back; as any role,
# or as an admin row in registry_keys, add a version. The registry now checks, before it
# uses a model's keys, that its tables still give the configuration the admin-signed
# create-model event recorded; verify-log compares the whole configuration too.
. "$(dirname "$0")/registry_root_setup.sh"
expect 0 $R create-version fraud m4.h5 --as signer.key.pem
mallory=$(key_id mallory)
pem=$(cat mallory.pub.pem)
q "INSERT INTO model_keys (model_name, role, stage, key_id, public_pem) VALUES ('fraud', 'signer', '', '$mallory', '$pem')"
gate_report mallory models:/fraud/4 r4.json
expect 1 $R transition fraud 4 Staging --report r4.json --as signer.key.pem
err_has "differ from its configuration event"
[ "$(stage_of fraud 4)" = None ] || fail "v4 entered Staging on a rogue key"
expect 1 $R verify-log
err_has "model fraud: its keys, stages, transitions or pins in the tables are not the configuration"
# a rogue promoter key does not promote either
q "DELETE FROM model_keys WHERE key_id = '$mallory'"
expect 0 $R verify-log
q "INSERT INTO model_keys (model_name, role, stage, key_id, public_pem) VALUES ('fraud', 'promoter', 'Production', '$mallory', '$pem')"
expect 1 $R rollback fraud --as mallory.key.pem
err_has "differ from its configuration event"
[ "$(stage_of fraud 2)" = Production ] || fail "a rogue promoter rolled back"
# nor does it make mallory a member of the model, who may then add versions (a registry
# with a root of trust takes a new version only from a key with a role in the model)
versions() { q "SELECT count(*) FROM model_versions WHERE model_name = 'fraud'"; }
n=$(versions)
echo "mallory's artifact" > mal.bin
expect 1 $R create-version fraud mal.bin --as mallory.key.pem
err_has "differ from its configuration event"
[ "$(versions)" = "$n" ] || fail "a rogue key row let mallory add a version"
q "DELETE FROM model_keys WHERE key_id = '$mallory'"
expect 1 $R create-version fraud mal.bin --as mallory.key.pem
err_has "holds no role in model fraud and is not an admin"
# an admin row no add-key event introduced is no admin either
q "INSERT INTO registry_keys (key_id, role, public_pem, added_at, added_by) VALUES ('$mallory', 'admin', '$pem', '2026-01-01T00:00:00Z', '')"
expect 1 $R create-version fraud mal.bin --as mallory.key.pem
err_has "holds no role in model fraud and is not an admin"
[ "$(versions)" = "$n" ] || fail "a rogue admin row let mallory add a version"
echo "rogue key in model_keys: not honoured, detected"
