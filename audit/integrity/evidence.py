"""Evidence-grade NDJSON exports: every line checkable offline, and a signed manifest at the end.

`GET /api/v1/audit-events/export?format=ndjson&manifest=1` streams the matching events
as usual, each line also carrying `prev_chain_hash` (the chain hash of the event
numbered `seq - 1`, or the genesis for seq 1), so every line can be recomputed on its
own even when the filters leave gaps. Two lines close it:

    {"manifest": {"format": "lens-evidence/2", "org", "filters", "order", "rows",
                  "body_sha256", "line_tags", "checkpoint", "key_id", "exported_by",
                  "exported_at", "hash_rule"}}
    {"signature": {"algorithm": "ed25519", "key_id", "value"}}

`body_sha256` is the SHA-256 of every byte before the manifest line; `line_tags` holds,
for each of those lines in order, the first 6 bytes of its SHA-256 in hex (12 digits), so
the verifier can say which line was removed, added, moved or changed; `checkpoint` is
signed at export time, after the body was read; the signature covers the manifest line's
exact bytes (audit/integrity/signatures.py). `python -m audit.verify FILE --public-key K`
checks it all without Lens (docs/integrity.md). Memory grows by 6 bytes a row (the tags).
"""

import hashlib
from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils import timezone

from audit.accounts.models import Organization
from audit.events.models import AuditEvent
from audit.events.reading import iter_chunks
from audit.events.wire import event_wire, format_timestamp, wire_json
from audit.integrity import chain, keys, removals, signatures
from audit.integrity.checkpoints import EXPORT, checkpoint_create, checkpoint_wire

MANIFEST_PARAM = "manifest"
MANIFEST_FORMAT = "lens-evidence/2"
LINE_TAG_BYTES = 6
HASH_RULE = (
    "chain_hash = hex(sha256(bytes.fromhex(prev_chain_hash) + canonical(record))); record = the line's SPEC §1 "
    "fields, received_at and seq (rule v2, when arguments_sha256 is set: arguments_sha256 = sha256(canonical("
    "arguments)) in place of arguments, the stored one when arguments_removed); canonical = json.dumps(record, sort_keys=True, separators=(',', ':'), "
    "ensure_ascii=False).encode('utf-8'); genesis = 64 zeros"
)


def _previous_hashes(*, org_id: int, chunk: list[AuditEvent], bridged: set[int]) -> dict[int, str]:
    """seq -> chain hash for every `seq - 1` of the chunk: one query per chunk, not per row.

    Where `seq - 1` was removed by retention, the hash comes from the signed record of its
    removed run (its last seq is added to `bridged`, for the manifest)."""
    known = {event.seq: event.chain_hash for event in chunk}
    known[0] = chain.GENESIS_HASH
    wanted = {event.seq - 1 for event in chunk} - known.keys()
    if wanted:
        known.update(
            AuditEvent.objects.filter(org_id=org_id, seq__in=wanted).values_list("seq", "chain_hash")
        )
        removed = removals.removed_before(org_id=org_id, seqs=[seq + 1 for seq in wanted - known.keys()])
        known.update(removed)
        bridged.update(removed)
    return known


def evidence_ndjson_lines(
    *, org: Organization, events: QuerySet, filters: dict[str, list[str]], exported_by: str
) -> Iterator[bytes]:
    """The export's NDJSON lines with `prev_chain_hash`, then the signed manifest.

    `filters` are the export's filter parameters (name -> values), as the manifest states
    them. Raises keys.SigningUnavailable at once (before any line) when Lens cannot sign.
    """
    keys.signing_ready()
    return _lines(org=org, events=events, filters=filters, exported_by=exported_by)


def _lines(*, org, events, filters, exported_by) -> Iterator[bytes]:
    digest, rows, tags, bridged = hashlib.sha256(), 0, bytearray(), set()
    for chunk in iter_chunks(events):
        previous = _previous_hashes(org_id=org.pk, chunk=chunk, bridged=bridged)
        for event in chunk:
            wire = event_wire(event)
            # null when seq - 1 is missing: the verifier then reports this line, as it should.
            wire["prev_chain_hash"] = previous.get(event.seq - 1)
            line = (wire_json(wire) + "\n").encode()
            digest.update(line)
            tags += hashlib.sha256(line).digest()[:LINE_TAG_BYTES]
            rows += 1
            yield line
    # Signed after the body was read: every exported event is at or below its head.
    checkpoint = checkpoint_create(org=org, reason=EXPORT)
    key = checkpoint.signing_key
    manifest = {
        "format": MANIFEST_FORMAT,
        "org": org.slug,
        "filters": filters,
        "order": [str(field) for field in events.query.order_by],
        "rows": rows,
        "body_sha256": digest.hexdigest(),
        "line_tags": tags.hex(),
        "checkpoint": checkpoint_wire(checkpoint, org=org, key=key),
        "key_id": key.key_id,
        "exported_by": exported_by,
        "exported_at": format_timestamp(timezone.now()),
        "hash_rule": HASH_RULE,
        # The signed records of the removed runs right before exported lines: they vouch for
        # those lines' prev_chain_hash (docs/retention.md).
        "removals": [removals.removal_wire(removal, org=org) for removal in removals.removals_ending_at(
            org_id=org.pk, last_seqs=sorted(bridged))],
    }
    manifest_line = wire_json({"manifest": manifest}).encode()
    signature = {"algorithm": signatures.ALGORITHM, "key_id": key.key_id,
                 "value": keys.signature_make(key=key, message=manifest_line)}
    yield manifest_line + b"\n"
    yield (wire_json({"signature": signature}) + "\n").encode()
