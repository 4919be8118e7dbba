#!/bin/bash
# Attack: insert mallory's key into model_keys as a trusted signer of the model, then bring a
# bad model into Staging with a report mallory signed. The registry now checks, before it
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
echo "rogue key in model_keys: not honoured, detected"
