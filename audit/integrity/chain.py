"""Canonical event serialization and the per-organization hash chain.

Standard library only (and the event's declaration, audit/events/fields.py): the
offline verifier (`python -m audit.verify`) and third parties recompute exactly this. The rules, stated once (see docs/integrity.md):

* An event's *record* is its wire form (SPEC §1 fields, `received_at` and `seq`),
  every field present (absent optional fields are null), `timestamp` and
  `received_at` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, `duration_ms` a float.
* Its canonical bytes are `json.dumps(record, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False)` encoded as UTF-8.
* `chain_hash[n] = sha256(bytes.fromhex(chain_hash[n-1]) + canonical(record[n]))`,
  hex-encoded, with `chain_hash[0]` = 64 zeros (the genesis). `seq` counts 1, 2, 3…
  per organization with no gaps.
* `content_hash` (idempotency, not part of the chain) is the sha256 of the
  canonical bytes of the sender's fields alone: the record without `id`,
  `received_at` and `seq`.
* Two versions of the record, told apart by the event itself. Rule v1 (events stored
  before it existed: `arguments_sha256` is null) covers `arguments` as above. Rule v2
  (`arguments_sha256` set) covers, in place of `arguments`, the commitment
  `arguments_sha256` = sha256(canonical(arguments)) (of `null` when none were sent),
  recomputed from the arguments unless `arguments_removed` is true, when the stored
  commitment stands in for them: retention can drop the arguments and the chain still
  verifies, while arguments that are there must still match what was hashed.
"""

import hashlib
import json

from audit.events.fields import WIRE_NAMES

GENESIS_HASH = "0" * 64

CHAINED_FIELDS = WIRE_NAMES + ("received_at", "seq")  # hash rule v1
CHAINED_FIELDS_V2 = tuple(name for name in WIRE_NAMES if name != "arguments") + ("arguments_sha256", "received_at", "seq")
_CONTENT_FIELDS = tuple(name for name in WIRE_NAMES if name != "id")


def canonical_bytes(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_hash(event: dict) -> str:
    """Hash of what the sender said, independent of the id and of when Lens got it."""
    content = {key: event.get(key) for key in _CONTENT_FIELDS}
    return hashlib.sha256(canonical_bytes(content)).hexdigest()


def arguments_commitment(arguments) -> str:
    """What hash rule v2 chains in place of the arguments."""
    return hashlib.sha256(canonical_bytes(arguments)).hexdigest()


def chained_record(event: dict) -> dict:
    if event.get("arguments_sha256") is None:
        return {key: event.get(key) for key in CHAINED_FIELDS}
    record = {key: event.get(key) for key in CHAINED_FIELDS_V2}
    if event.get("arguments_removed") is not True:
        record["arguments_sha256"] = arguments_commitment(event.get("arguments"))
    return record


def next_chain_hash(previous_hash: str, record: dict) -> str:
    return hashlib.sha256(bytes.fromhex(previous_hash) + canonical_bytes(chained_record(record))).hexdigest()
