#!/usr/bin/python3
"""Prints the SQL that appends one audit event with a valid hash chain, as an attacker with
write access to the registry database would write it (the hash formula is documented in
docs/registry.md): forge_event.py "SEQ|HASH" MODEL ACTION VERSION FROM TO ACTOR EVIDENCE DETAIL
[REQUEST [SIGNATURE]]. Works on both backends (plain SQL)."""
import hashlib
import sys
from datetime import datetime, timezone

head, model, action, version, frm, to, actor, evidence, detail = sys.argv[1:10]
request = sys.argv[10] if len(sys.argv) > 10 else ""
signature = sys.argv[11] if len(sys.argv) > 11 else ""
seq, prev = head.split("|")
seq = int(seq) + 1
now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
fields = [str(seq), model, version, action, frm, to, actor, evidence, detail, request,
          signature, now, prev]
h = hashlib.sha256(b"stagegate-audit/v1\n")
for f in fields:
    b = f.encode()
    h.update(f"{len(b)}:".encode() + b + b"\n")
digest = h.hexdigest()


def lit(s):
    return "'" + s.replace("'", "''") + "'"


cols = [str(seq), lit(model), version, lit(action), lit(frm), lit(to), lit(actor),
        lit(evidence), lit(detail), lit(request), lit(signature), lit(now), lit(prev),
        lit(digest)]
print("INSERT INTO audit_log (seq, model_name, version, action, from_stage, to_stage,"
      " actor_key_id, evidence_sha256, detail, request_text, signature, created_at, prev_hash,"
      f" hash) VALUES ({', '.join(cols)});")
print(f"UPDATE audit_head SET seq = {seq}, hash = {lit(digest)} WHERE id = 1;")
