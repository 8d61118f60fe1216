"""Signed records of the runs of seqs retention removed, and how verification reads them.

Retention removes events from the start of a chain (and, around held events, in runs).
For each run it stores a `RemovedRange` signed with the organization's key: the run's
seqs, the chain hash of its last seq (from which the next stored event links) and the
digest of the checkpoint signed just before the removal (SPEC §10). `verify_chain` and
the offline verifier skip a gap only where such a record covers it exactly and its
signature verifies (docs/retention.md).
"""

from audit.events.wire import format_timestamp
from audit.integrity import keys, signatures
from audit.integrity.models import Checkpoint, RemovedRange


def removal_wire(removal: RemovedRange, *, org=None) -> dict:
    return {
        "org": (org or removal.org).slug,
        "first_seq": removal.first_seq,
        "last_seq": removal.last_seq,
        "last_hash": removal.last_hash,
        "removed_at": format_timestamp(removal.removed_at),
        "checkpoint": removal.checkpoint.digest,
        "key_id": removal.signing_key.key_id,
        "signature": removal.signature,
    }


def removal_record(*, org, checkpoint: Checkpoint, first_seq: int, last_seq: int, last_hash: str, removed_at) -> RemovedRange:
    """Sign and store one removed run (inside the removal's transaction)."""
    removal = RemovedRange(
        org=org, first_seq=first_seq, last_seq=last_seq, last_hash=last_hash, removed_at=removed_at,
        checkpoint=checkpoint, signing_key=checkpoint.signing_key,
    )
    removal.signature = keys.signature_make(
        key=checkpoint.signing_key, message=signatures.removal_message(removal_wire(removal, org=org))
    )
    removal.save()
    return removal


def removal_valid(removal: RemovedRange, *, org) -> bool:
    """Does the record's signature verify with its key, which was live when it was made?"""
    key = removal.signing_key
    if removal.removed_at < key.created_at or (key.retired_at is not None and removal.removed_at > key.retired_at):
        return False
    try:
        message = signatures.removal_message(removal_wire(removal, org=org))
    except ValueError:
        return False
    return signatures.signature_valid(signatures.public_key_from_base64(key.public_key), message, removal.signature)


def removed_ranges(*, org_id: int) -> dict[int, RemovedRange]:
    """first_seq -> the removed run that starts there."""
    rows = RemovedRange.objects.filter(org_id=org_id).select_related("org", "checkpoint", "signing_key")
    return {removal.first_seq: removal for removal in rows}


def removed_before(*, org_id: int, seqs) -> dict[int, str]:
    """seq -> the chain hash of seq - 1 where seq - 1 ends a removed run (evidence exports'
    `prev_chain_hash` of the first event kept after a gap)."""
    wanted = [seq - 1 for seq in seqs]
    return dict(RemovedRange.objects.filter(org_id=org_id, last_seq__in=wanted).values_list("last_seq", "last_hash"))


def removals_ending_at(*, org_id: int, last_seqs: list[int]) -> list[RemovedRange]:
    return list(
        RemovedRange.objects.filter(org_id=org_id, last_seq__in=last_seqs)
        .select_related("checkpoint", "signing_key").order_by("first_seq")
    )


def gap_bridge(ranges: dict[int, RemovedRange], *, first: int, until: int, org) -> str | None:
    """The chain hash at `until - 1` when signed removed runs cover seqs `first`..`until - 1`
    exactly (one after the other); None when any seq there is missing without a record."""
    seq, last_hash = first, None
    while seq < until:
        removal = ranges.get(seq)
        if removal is None or removal.last_seq >= until or not removal_valid(removal, org=org):
            return None
        seq, last_hash = removal.last_seq + 1, removal.last_hash
    return last_hash
