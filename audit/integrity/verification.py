"""Proving the stored trail intact: recomputing the hash chain (audit/integrity/chain.py).

`chain_verify` streams an organization's events in `seq` order and recomputes every
chain hash from the one before it. It stops at the first event that is not what was
stored and says how it differs:

* ``changed``  - the event's content no longer hashes to its chain hash;
* ``removed``  - a sequence number is missing (a gap, or later events renumbered);
* ``inserted`` - an event the chain does not link to (beyond the head, or forged);
* ``head``     - the organization's head does not match its last event.

A hash chain alone cannot tell *which* of two neighbours was touched when one of them
was rewritten together with its hash; the stored `content_hash` and the checkpoints
of earlier verifications break that tie where they can (see `_diagnose`).
"""

from dataclasses import asdict, dataclass

from django.db.models import Min
from django.utils import timezone

from audit.accounts.models import Organization
from audit.events.models import AuditEvent
from audit.events.reading import read_snapshot
from audit.events.wire import WIRE_COLUMNS, event_wire, parse_timestamp
from audit.integrity import chain
from audit.integrity.models import ChainVerification

# Rows per round trip; values_list(named=True) rows quack like AuditEvent for event_wire
# and cost a fraction of a model instance, which is most of the verify rate.
CHUNK_SIZE = 5000
_COLUMNS = WIRE_COLUMNS + ("id", "content_hash")
CHANGED, REMOVED, INSERTED, HEAD = (kind.value for kind in ChainVerification.Kind)


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
    return chain.content_hash(event_wire(row)) == row.content_hash


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


def _checkpoints(*, org_id, from_seq):
    """seq -> chain hash that earlier verifications proved; a later rewrite cannot match them."""
    rows = ChainVerification.objects.filter(org_id=org_id, ok=True, verified_through__gte=from_seq).exclude(last_hash="")
    return dict(rows.values_list("verified_through", "last_hash"))


def chain_verify(*, org: Organization, since: str | int | None = None) -> ChainCheck:
    """Recompute the chain from `since` (a seq or RFC 3339 arrival time; default: the start)."""
    org_id = org.pk
    head_seq, head_hash = _head(org_id)
    # Past the head there is nothing to anchor on; rows there are still checked (and flagged).
    start = min(_since_seq(org_id=org_id, since=since), head_seq + 1)
    check = ChainCheck(from_seq=start, verified_through=start - 1)
    checkpoints = _checkpoints(org_id=org_id, from_seq=start - 1)
    previous, previous_hash = None, chain.GENESIS_HASH
    with read_snapshot():
        try:
            if start > 1:
                # --since: trust the stored hash of the event before, as the anchor.
                previous = _rows(org_id).filter(seq=start - 1).first()
                if previous is None:
                    raise _Broken(REMOVED, start - 1, None, f"seq {start - 1} (the anchor before seq {start}) is missing: removed")
                previous_hash = previous.chain_hash
                _check_checkpoint(previous, checkpoints)
            check.last_hash = previous_hash
            for row in _rows(org_id).filter(seq__gte=start).iterator(chunk_size=CHUNK_SIZE):
                if row.seq > head_seq:
                    head_seq, head_hash = _head(org_id)  # ingest may have moved the head meanwhile
                    if row.seq > head_seq:
                        raise _Broken(
                            INSERTED, row.seq, row.event_id,
                            f"seq {row.seq} (id {row.event_id}) is beyond the chain head (seq {head_seq}): inserted",
                        )
                expected = check.verified_through + 1
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
                _check_checkpoint(row, checkpoints)
                previous, previous_hash = row, row.chain_hash
                check.verified_through, check.last_hash = row.seq, row.chain_hash
                check.events_checked += 1
            _check_tail(
                org_id=org_id, last_seq=check.verified_through, last_hash=previous_hash, head=(head_seq, head_hash),
                proven_through=max(checkpoints, default=0),
            )
        except _Broken as broken:
            check.ok = False
            check.kind, check.first_bad_seq, check.first_bad_event_id = broken.kind, broken.seq, broken.event_id
            check.message = broken.message
            check.verified_through = min(check.verified_through, broken.seq - 1)
            check.last_hash = ""  # a broken run proves no checkpoint
    check.to_seq = max(head_seq, check.verified_through)
    if check.ok:
        check.message = (
            f"chain intact: seq {start}–{check.verified_through}, {check.events_checked} events recomputed"
            if check.events_checked
            else f"nothing to verify from seq {start} (head is seq {head_seq})"
        )
    return check


def _check_checkpoint(row, checkpoints):
    proven = checkpoints.get(row.seq)
    if proven is not None and proven != row.chain_hash:
        raise _Broken(
            CHANGED, row.seq, row.event_id,
            f"seq {row.seq} (id {row.event_id}) has chain hash {row.chain_hash[:16]}…, but an earlier verification "
            f"proved {proven[:16]}…: the chain up to here was rewritten together with its hashes",
        )


def _check_tail(*, org_id, last_seq, last_hash, head, proven_through):
    head_seq, head_hash = head
    if last_seq < proven_through:
        # The end was cut off and the head moved back to match: only an earlier proof shows it.
        if not AuditEvent.objects.filter(org_id=org_id, seq__gt=last_seq, seq__lte=proven_through).exists():
            raise _Broken(
                REMOVED, last_seq + 1, None,
                f"the chain ends at seq {last_seq}, but an earlier verification proved it through seq "
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


def chain_verification_run(*, org: Organization, since: str | int | None = None, trigger: str = "command") -> ChainVerification:
    """Verify the chain and store the outcome (the last one is what the API and pages show)."""
    started = timezone.now()
    check = chain_verify(org=org, since=since)
    fields = asdict(check)
    return ChainVerification.objects.create(org=org, started_at=started, finished_at=timezone.now(), trigger=trigger, **fields)


def chain_verification_run_all(*, trigger: str = "schedule") -> list[ChainVerification]:
    """Verify every organization that has events, from the start."""
    orgs = Organization.objects.filter(chain_seq__gt=0).order_by("pk")
    return [chain_verification_run(org=org, trigger=trigger) for org in orgs]
