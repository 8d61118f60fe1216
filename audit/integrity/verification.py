"""Proving the stored trail intact: recomputing the hash chain (audit/integrity/chain.py).

`chain_verify` streams an organization's events in `seq` order and recomputes every
chain hash from the one before it. It stops at the first event that is not what was
stored and says how it differs:

* ``changed``  - the event's content no longer hashes to its chain hash;
* ``removed``  - a sequence number is missing (a gap, or later events renumbered);
* ``inserted`` - an event the chain does not link to (beyond the head, or forged);
* ``head``     - the organization's head does not match its last event, or was moved
  back behind a checkpoint;
* ``checkpoint`` - a signed checkpoint was deleted, altered or forged.

Anchors are what the chain must still match: the signed checkpoints
(audit/integrity/checkpoints.py), proved first, and the last hashes of earlier
verifications. A chain rewritten consistently, hashes and head included, still differs
from them; events removed from the end with the head moved back to match still leave a
checkpoint past the head. An incremental run (`incremental=True`, what the hourly task
does between full passes) starts from the newest checkpoint the last successful run
proved instead of seq 1.

A hash chain alone cannot tell *which* of two neighbours was touched when one of them
was rewritten together with its hash; the stored `content_hash` and the anchors break
that tie where they can (see `_diagnose`).
"""

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from audit.accounts.models import Organization
from audit.events.models import AuditEvent
from audit.events.reading import read_snapshot
from audit.events.wire import WIRE_COLUMNS, event_wire, format_timestamp, parse_timestamp
from audit.integrity import chain, checkpoints, removals, signatures
from audit.integrity.keys import SigningUnavailable
from audit.integrity.models import ChainVerification, Checkpoint, SigningKey
from audit.integrity.publication import checkpoints_publish_pending

logger = logging.getLogger(__name__)

# Rows per round trip; values_list(named=True) rows quack like AuditEvent for event_wire
# and cost a fraction of a model instance, which is most of the verify rate.
CHUNK_SIZE = 5000
_COLUMNS = WIRE_COLUMNS + ("id", "content_hash")  # arguments_removed is a wire column
CHANGED, REMOVED, INSERTED, HEAD, CHECKPOINT = (kind.value for kind in ChainVerification.Kind)


@dataclass
class ChainCheck:
    ok: bool = True
    from_seq: int = 1
    to_seq: int = 0
    events_checked: int = 0
    verified_through: int = 0
    last_hash: str = ""
    kind: str = ""
    first_bad_seq: int | None = None
    first_bad_event_id: str | None = None
    message: str = ""
    checkpoint_digest: str = ""


@dataclass(frozen=True)
class Anchor:
    """A chain hash the event at some seq must still have, and who vouches for it."""

    hash: str
    says: str  # "an earlier verification proved", "the checkpoint signed at … signs"


class _Broken(Exception):
    def __init__(self, kind, seq, event_id, message):
        super().__init__(message)
        self.kind, self.seq, self.event_id, self.message = kind, seq, event_id, message


def _rows(org_id):
    return AuditEvent.objects.filter(org_id=org_id).order_by("seq").values_list(*_COLUMNS, named=True)


def _links(row, previous_hash, *, seq=None) -> bool:
    """Does `row` hash from `previous_hash` (as if it were numbered `seq`)?"""
    record = event_wire(row)
    if seq is not None:
        record["seq"] = seq
    return chain.next_chain_hash(previous_hash, record) == row.chain_hash


def _content_intact(row) -> bool:
    # Retention removed the arguments the content hash covers: the chain (rule v2) still vouches.
    return row.arguments_removed or chain.content_hash(event_wire(row)) == row.content_hash


def _head(org_id):
    return Organization.objects.filter(pk=org_id).values_list("chain_seq", "chain_hash").get()


def _since_seq(*, org_id, since) -> int:
    """The first sequence number to check: `since` is a seq, or an RFC 3339 time of arrival."""
    if since is None or since == "":
        return 1
    if isinstance(since, int) or str(since).isdigit():
        return max(int(since), 1)
    try:
        moment = parse_timestamp(str(since))
    except ValueError as exc:
        raise ValueError(f"--since {since!r} must be a sequence number or an RFC 3339 time: {exc}") from None
    # Arrival time, not the sender's timestamp: the chain is in arrival order.
    first = AuditEvent.objects.filter(org_id=org_id, received_at__gte=moment).aggregate(first=Min("seq"))["first"]
    return first if first is not None else _head(org_id)[0] + 1


def _verification_anchors(*, org_id, from_seq) -> dict[int, Anchor]:
    """seq -> chain hash that earlier verifications proved; a later rewrite cannot match them."""
    rows = ChainVerification.objects.filter(org_id=org_id, ok=True, verified_through__gte=from_seq).exclude(last_hash="")
    return {seq: Anchor(last_hash, "an earlier verification proved") for seq, last_hash in rows.values_list("verified_through", "last_hash")}


def _verified_checkpoint(org: Organization) -> Checkpoint | None:
    """The newest checkpoint the last successful run proved, where an incremental run starts."""
    last = ChainVerification.objects.filter(org=org, ok=True).exclude(checkpoint_digest="").order_by("-finished_at", "-id").first()
    if last is None:
        return None
    found = Checkpoint.objects.filter(org=org, digest=last.checkpoint_digest).select_related("signing_key").first()
    if found is None or signatures.checkpoint_digest(checkpoints.checkpoint_wire(found, org=org)) != last.checkpoint_digest:
        raise _Broken(
            CHECKPOINT, None, None,
            f"the checkpoint {last.checkpoint_digest[:16]}… that the verification of "
            f"{format_timestamp(last.finished_at)} proved is gone or altered: a checkpoint was deleted",
        )
    return found


def _checkpoint_anchors(*, org, start_checkpoint) -> tuple[dict[int, Anchor], list[Checkpoint]]:
    """Prove the signed checkpoints from `start_checkpoint` (or the first) on; seq -> anchor."""
    proved = checkpoints.checkpoint_chain_check(org=org, after=start_checkpoint)
    if proved.problem:
        raise _Broken(CHECKPOINT, proved.bad.seq, None, proved.problem)
    run = ([start_checkpoint] if start_checkpoint else []) + proved.checkpoints
    anchors = {cp.seq: Anchor(cp.chain_hash, f"the checkpoint signed at {format_timestamp(cp.signed_at)} signs") for cp in run}
    return anchors, run


def _published_anchors(*, org, published: list[dict]) -> dict[int, Anchor]:
    """Checkpoints published outside the database (audit/integrity/publication.py): each must
    verify and still be stored; the chain must still match them."""
    public_keys = {key.key_id: signatures.public_key_from_base64(key.public_key) for key in SigningKey.objects.filter(org=org)}
    stored = set(Checkpoint.objects.filter(org=org).values_list("digest", flat=True))
    anchors = {}
    for copy in published:
        label = f"the published checkpoint signed at {copy.get('signed_at')} (seq {copy.get('seq')})"
        try:
            message = signatures.checkpoint_message(copy)
        except ValueError as exc:
            raise _Broken(CHECKPOINT, None, None, f"{label} is malformed: {exc}") from None
        key = public_keys.get(copy["key_id"])
        if key is None or not signatures.signature_valid(key, message, copy.get("signature")):
            raise _Broken(
                CHECKPOINT, copy["seq"], None,
                f"{label} does not verify with the organization's key {copy['key_id']}: the keys were replaced",
            )
        if signatures.checkpoint_digest(copy) not in stored:
            raise _Broken(
                CHECKPOINT, copy["seq"], None, f"{label} is not in the database: its checkpoints were deleted or rewritten"
            )
        anchors[copy["seq"]] = Anchor(copy["chain_hash"], f"the published checkpoint signed at {copy['signed_at']} signs")
    return anchors


def chain_verify(
    *, org: Organization, since: str | int | None = None, incremental: bool = False, published: list[dict] | None = None
) -> ChainCheck:
    """Recompute the chain from `since` (a seq or RFC 3339 arrival time), from the newest
    checkpoint the last successful run proved (`incremental`), or from the start; with
    `published` (checkpoints read from where they were published), against those too."""
    org_id = org.pk
    head_seq, head_hash = _head(org_id)
    check = ChainCheck()
    start = _since_seq(org_id=org_id, since=since)  # a bad `since` is a ValueError, before anything starts
    start_checkpoint = None
    with read_snapshot():
        try:
            start_checkpoint = _verified_checkpoint(org) if incremental else None
            if start_checkpoint is not None:
                start = start_checkpoint.seq + 1
            # Past the head there is nothing to anchor on; rows there are still checked (and flagged).
            start = min(start, head_seq + 1)
            check.from_seq, check.verified_through = start, start - 1
            anchors = _verification_anchors(org_id=org_id, from_seq=start - 1)
            signed, proved = _checkpoint_anchors(org=org, start_checkpoint=start_checkpoint)
            anchors.update({seq: anchor for seq, anchor in signed.items() if seq >= start - 1})
            if published is not None:
                anchors.update(_published_anchors(org=org, published=published))
            _recompute(org_id=org_id, start=start, head=(head_seq, head_hash), anchors=anchors, check=check)
            verified = [cp for cp in proved if cp.seq <= check.verified_through]
            if verified:
                check.checkpoint_digest = signatures.checkpoint_digest(checkpoints.checkpoint_wire(verified[-1], org=org))
        except _Broken as broken:
            check.ok = False
            check.kind, check.first_bad_seq, check.first_bad_event_id = broken.kind, broken.seq, broken.event_id
            check.message = broken.message
            if broken.seq is not None:
                check.verified_through = min(check.verified_through, broken.seq - 1)
            check.last_hash = ""  # a broken run proves no checkpoint
    check.from_seq = start
    check.to_seq = max(head_seq, check.verified_through)
    if check.ok:
        check.message = (
            f"chain intact: seq {start}–{check.verified_through}, {check.events_checked} events recomputed"
            if check.events_checked
            else f"nothing to verify from seq {start} (head is seq {head_seq})"
        )
        if start_checkpoint is not None:
            check.message += f", from the checkpoint signed at {format_timestamp(start_checkpoint.signed_at)}"
    return check


def _recompute(*, org_id, start, head, anchors, check: ChainCheck) -> None:
    head_seq, head_hash = head
    proven_through = max(anchors, default=0)
    previous, previous_hash = None, chain.GENESIS_HASH
    # Runs of seqs retention removed, each signed (audit/integrity/removals.py): gaps they cover are no break.
    ranges, org = removals.removed_ranges(org_id=org_id), Organization.objects.get(pk=org_id)
    if start > 1:
        # Anchored on the stored hash of the event before, which must match any anchor there.
        previous = _rows(org_id).filter(seq=start - 1).first()
        removed = next((r for r in ranges.values() if r.first_seq <= start - 1 <= r.last_seq), None)
        if previous is None and removed is not None:  # start after the removed run instead
            check.verified_through, previous_hash = removed.last_seq, removed.last_hash
            start = removed.last_seq + 1
        elif previous is None:
            raise _Broken(REMOVED, start - 1, None, f"seq {start - 1} (the anchor before seq {start}) is missing: removed")
        else:
            previous_hash = previous.chain_hash
            _check_anchor(previous, anchors)
    check.last_hash = previous_hash
    for row in _rows(org_id).filter(seq__gte=start).iterator(chunk_size=CHUNK_SIZE):
        if row.seq > head_seq:
            head_seq, head_hash = _head(org_id)  # ingest may have moved the head meanwhile
            if row.seq > head_seq:
                _beyond_head(row, head_seq=head_seq, anchors=anchors)
        expected = check.verified_through + 1
        bridged = removals.gap_bridge(ranges, first=expected, until=row.seq, org=org) if row.seq > expected else None
        if bridged is not None:
            previous, previous_hash, expected = None, bridged, row.seq
        if row.seq != expected:
            missing = f"seq {expected}" if row.seq == expected + 1 else f"seqs {expected}–{row.seq - 1}"
            raise _Broken(
                REMOVED, expected, None,
                f"{missing} missing: removed (the next stored event is seq {row.seq}, id {row.event_id})",
            )
        if not _links(row, previous_hash):
            raise _diagnose(
                org_id=org_id, row=row, previous=previous, previous_hash=previous_hash, head=(head_seq, head_hash)
            )
        _check_anchor(row, anchors)
        previous, previous_hash = row, row.chain_hash
        check.verified_through, check.last_hash = row.seq, row.chain_hash
        check.events_checked += 1
    bridged = removals.gap_bridge(ranges, first=check.verified_through + 1, until=head_seq + 1, org=org)
    if bridged is not None and check.verified_through < head_seq:  # removed up to the head
        check.verified_through, previous_hash = head_seq, bridged
    _check_tail(
        org_id=org_id, last_seq=check.verified_through, last_hash=previous_hash, head=(head_seq, head_hash),
        proven=(proven_through, anchors.get(proven_through)),
    )


def _beyond_head(row, *, head_seq, anchors):
    proven = [seq for seq in anchors if seq >= row.seq]
    if proven:
        anchor = anchors[max(proven)]
        raise _Broken(
            HEAD, head_seq, None,
            f"the organization's head was moved back to seq {head_seq}: seq {row.seq} (id {row.event_id}) is "
            f"stored after it, and {anchor.says} the chain through seq {max(proven)}",
        )
    raise _Broken(
        INSERTED, row.seq, row.event_id,
        f"seq {row.seq} (id {row.event_id}) is beyond the chain head (seq {head_seq}): inserted",
    )


def _check_anchor(row, anchors):
    anchor = anchors.get(row.seq)
    if anchor is not None and anchor.hash != row.chain_hash:
        raise _Broken(
            CHANGED, row.seq, row.event_id,
            f"seq {row.seq} (id {row.event_id}) has chain hash {row.chain_hash[:16]}…, but {anchor.says} "
            f"{anchor.hash[:16]}…: the chain up to here was rewritten together with its hashes",
        )


def _check_tail(*, org_id, last_seq, last_hash, head, proven):
    head_seq, head_hash = head
    proven_through, anchor = proven
    if last_seq < proven_through:
        # The end was cut off and the head moved back to match: only an anchor shows it.
        if not AuditEvent.objects.filter(org_id=org_id, seq__gt=last_seq, seq__lte=proven_through).exists():
            raise _Broken(
                REMOVED, last_seq + 1, None,
                f"the chain ends at seq {last_seq}, but {anchor.says} it through seq "
                f"{proven_through}: seq {last_seq + 1} onwards removed",
            )
    if last_seq < head_seq:
        if AuditEvent.objects.filter(org_id=org_id, seq__gt=last_seq, seq__lte=head_seq).exists():
            return  # stored after this run began reading; the next run covers them
        missing = f"seq {head_seq}" if last_seq + 1 == head_seq else f"seqs {last_seq + 1}–{head_seq}"
        raise _Broken(REMOVED, last_seq + 1, None, f"{missing} missing: removed from the end (the head is seq {head_seq})")
    if last_seq == head_seq and last_hash != head_hash:
        raise _Broken(
            HEAD, head_seq, None,
            f"the organization's head (seq {head_seq}, hash {head_hash[:16]}…) does not match the last event's "
            f"chain hash {last_hash[:16]}…: the head was altered",
        )


def _diagnose(*, org_id, row, previous, previous_hash, head) -> _Broken:
    """`row` does not hash from its predecessor: decide which event is to blame, and how."""
    where = f"seq {row.seq} (id {row.event_id})"
    following = _rows(org_id).filter(seq__gt=row.seq).first()
    if previous is not None and not _content_intact(previous):
        return _Broken(
            CHANGED, previous.seq, previous.event_id,
            f"seq {previous.seq} (id {previous.event_id}) was changed and its chain hash recomputed to hide it: "
            f"its content no longer matches the hash taken at ingest, and the chain breaks at seq {row.seq}",
        )
    if (following is not None and following.seq == row.seq + 1 and _links(following, row.chain_hash)) or (
        following is None and (row.seq, row.chain_hash) == head
    ):
        return _Broken(
            CHANGED, row.seq, row.event_id,
            f"{where} was changed: its content no longer hashes to its chain hash, which the chain still links to",
        )
    if following is not None and _links(following, previous_hash, seq=following.seq - 1):
        return _Broken(
            INSERTED, row.seq, row.event_id,
            f"{where} was inserted: the chain links seq {row.seq - 1} straight to the next event, renumbered after it",
        )
    if following is not None and _links(following, row.chain_hash, seq=following.seq + 1):
        return _Broken(
            REMOVED, row.seq, None,
            f"the event at seq {row.seq} was removed and later events renumbered (id {row.event_id} was seq {row.seq + 1})",
        )
    if not _content_intact(row):
        return _Broken(CHANGED, row.seq, row.event_id, f"{where} was changed: its content and its chain hash no longer match")
    return _Broken(
        INSERTED, row.seq, row.event_id,
        f"{where} is forged: its chain hash links to neither the event before it nor the one after it",
    )


# --- Service: run and record ------------------------------------------------------------


def chain_verification_run(
    *,
    org: Organization,
    since: str | int | None = None,
    trigger: str = "command",
    incremental: bool = False,
    published: list[dict] | None = None,
) -> ChainVerification:
    """Verify the chain and store the outcome (the last one is what the API and pages show)."""
    started = timezone.now()
    check = chain_verify(org=org, since=since, incremental=incremental, published=published)
    fields = asdict(check)
    return ChainVerification.objects.create(org=org, started_at=started, finished_at=timezone.now(), trigger=trigger, **fields)


def _full_pass_due(org: Organization) -> bool:
    recent = timezone.now() - timedelta(seconds=settings.LENS_VERIFY_FULL_EVERY)
    return not ChainVerification.objects.filter(org=org, from_seq=1, finished_at__gte=recent).exists()


def chain_verification_cycle(*, org: Organization, trigger: str = "schedule", full: bool = False) -> ChainVerification:
    """What the hourly task does for one organization: sign its head into a checkpoint (when
    it moved), then verify from the newest checkpoint the last good run proved — or from
    seq 1 when `full` or when no full pass finished within LENS_VERIFY_FULL_EVERY seconds."""
    try:
        checkpoints.checkpoint_create(org=org, reason=checkpoints.SCHEDULE, unless_unchanged=True)
    except SigningUnavailable as exc:
        logger.error("no checkpoint for %s: %s", org.slug, exc)  # verification still runs
    return chain_verification_run(org=org, trigger=trigger, incremental=not (full or _full_pass_due(org)))


def chain_verification_run_all(*, trigger: str = "schedule") -> list[ChainVerification]:
    """The hourly cycle for every organization that has events, then publication retries."""
    orgs = Organization.objects.filter(chain_seq__gt=0).order_by("pk")
    runs = [chain_verification_cycle(org=org, trigger=trigger) for org in orgs]
    checkpoints_publish_pending()
    return runs
