#!/bin/bash
# Attack: the artifact file of a gated, approved version was replaced on disk, and the
# promotion went through because promotion did not re-hash it. A promotion (and a rollback)
# now re-hashes the artifact and refuses one whose digest is not the registered one.
. "$(dirname "$0")/registry_attack_setup.sh"
gate_report signer models:/fraud/3 r3.json
expect 0 $R transition fraud 3 Staging --report r3.json
expect 0 $R approve fraud 3 --as bob.key.pem
cp m3.h5 m3.good && cp m1.h5 m3.h5   # swap the bytes behind v3's path
expect 1 $R transition fraud 3 Production --as alice.key.pem
err_has "changed on disk since registration"
[ "$(stage_of fraud 3)" = Staging ] || fail "v3 moved"
# A rollback to an artifact swapped on disk is refused the same way.
cp m1.h5 m1.good && cp m2.h5 m1.h5
expect 1 $R rollback fraud --as alice.key.pem
err_has "changed on disk since registration"
cp m1.good m1.h5
cp m3.good m3.h5
expect 0 $R transition fraud 3 Production --as alice.key.pem
[ "$(stage_of fraud 3)" = Production ] || fail "the restored artifact was not promoted"
echo "promotion without re-hash: refused"
