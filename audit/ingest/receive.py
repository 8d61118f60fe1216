"""The request half of ingest (SPEC §2): read the body, validate each event, answer
duplicates and conflicts against what is stored or in flight (audit/ingest/claims.py),
and hand the new events on safely. Every conflict is also kept as an IngestConflict.

An event is acknowledged only once it is safe: its batch is in the PostgreSQL outbox
(`PendingBatch`) and queued in Redis, or, in-process (no broker), stored.
"""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from audit.accounts.models import Organization
from audit.events.wire import format_timestamp
from audit.ingest import outbox, tasks
from audit.ingest.claims import ClaimsUnsettled, claims_settle
from audit.ingest.door import BodyError, TimeWindow, event_id, parse_body, validate_event
from audit.ingest.models import IngestConflict, PendingBatch
from audit.integrity import chain
from audit.integrity.keys import SigningUnavailable
from audit.ingest.redaction import items_redact

logger = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, CONFLICT, INVALID = "accepted", "duplicate", "conflict", "invalid"
STATUSES = (ACCEPTED, DUPLICATE, CONFLICT, INVALID)
_SAFE = (ACCEPTED, DUPLICATE)


class QueueUnavailable(Exception):
    """The accepted events could not be handed on; nothing was acknowledged."""


@dataclass
class IngestReceipts:
    receipts: list = field(default_factory=list)

    def count(self, status):
        return sum(1 for receipt in self.receipts if receipt["status"] == status)

    def counts(self) -> dict:
        return {status: self.count(status) for status in STATUSES}

    @property
    def all_safe(self):
        return all(receipt["status"] in _SAFE for receipt in self.receipts)

    @property
    def none_safe(self):
        return not any(receipt["status"] in _SAFE for receipt in self.receipts)


def events_receive(*, org: Organization, body: bytes, content_type: str) -> IngestReceipts:
    """Validate a request body and hand its new events on. Raises BodyError, QueueUnavailable."""
    return events_accept(org=org, items=parse_body(body, content_type))


def events_accept(*, org: Organization, items: list) -> IngestReceipts:
    """Validate already-parsed items (raw wire events) and hand the new ones on: the one
    entry of every ingest door (JSON, OTLP). Raises BodyError, QueueUnavailable."""
    if len(items) > settings.LENS_MAX_BATCH_EVENTS:
        raise BodyError(f"batch of {len(items)} events is over the limit of {settings.LENS_MAX_BATCH_EVENTS}")

    try:
        # Before validation sizes or hashes anything: nothing of a redacted value is kept.
        items = items_redact(org=org, items=items)
    except SigningUnavailable as exc:  # its key cannot be opened: store nothing unredacted
        raise QueueUnavailable(f"redaction unavailable: {exc}") from exc
    result = IngestReceipts()
    candidates = {}  # event id -> (content hash, clean event)
    conflicts = []  # (content hash, clean event) of every conflict, to keep a record
    window = TimeWindow.now()
    for index, raw in enumerate(items):
        event, errors = validate_event(raw, max_bytes=settings.LENS_MAX_EVENT_BYTES, window=window)
        if event is None:
            sent_id = raw.get("id") if isinstance(raw, dict) else None
            receipt_id = sent_id if isinstance(sent_id, str) and len(sent_id) <= 64 else None
            result.receipts.append({"index": index, "id": receipt_id, "status": INVALID, "errors": errors})
            continue
        digest = chain.content_hash(event)
        event["id"] = event_id(event, digest)
        earlier = candidates.get(event["id"])
        if earlier is None:
            candidates[event["id"]] = (digest, event)
            status = ACCEPTED
        else:
            status = DUPLICATE if earlier[0] == digest else CONFLICT
            if status == CONFLICT:
                conflicts.append((digest, event))
        result.receipts.append({"index": index, "id": event["id"], "status": status})
    if not candidates:
        return result

    try:
        batch = _outbox_write(org=org, candidates=candidates, receipts=result.receipts, conflicts=conflicts)
    except ClaimsUnsettled as exc:
        raise QueueUnavailable(f"ids still settling: {exc}") from exc
    for receipt in result.receipts:
        if receipt["status"] == CONFLICT:
            receipt["errors"] = {"id": "was already received with different content; this event was kept out"}
    if batch is not None:
        _hand_on(batch=batch)
    return result


def _outbox_write(*, org, candidates: dict, receipts: list, conflicts: list) -> PendingBatch | None:
    """In one transaction: the outbox row, the claims on its new ids, the receipts of the ids
    already known (stored or in flight), and the record of every conflict. The batch of
    the events still new, or None when none is."""
    with transaction.atomic():
        # Durable in PostgreSQL before the 202: a message lost by the broker leaves the
        # batch here for the sweep, so nothing acknowledged depends on Redis alone.
        batch = PendingBatch.objects.create(
            org=org,
            events=[event for _, event in candidates.values()],
            content_hashes=[digest for digest, _ in candidates.values()],
            received_at=format_timestamp(timezone.now()),
        )
        known = claims_settle(org_id=org.pk, batch_id=batch.pk, hashes={i: c[0] for i, c in candidates.items()})
        for receipt in receipts:
            if receipt["status"] == ACCEPTED and receipt["id"] in known:
                digest, event = candidates[receipt["id"]]
                receipt["status"] = DUPLICATE if known[receipt["id"]] == digest else CONFLICT
                if receipt["status"] == CONFLICT:
                    conflicts.append((digest, event))
        if known:
            kept = [(digest, event) for i, (digest, event) in candidates.items() if i not in known]
            if kept:
                batch.events = [event for _, event in kept]
                batch.content_hashes = [digest for digest, _ in kept]
                PendingBatch.objects.filter(pk=batch.pk).update(events=batch.events, content_hashes=batch.content_hashes)
            else:
                batch.delete()
                batch = None
        if conflicts:
            IngestConflict.objects.bulk_create(
                IngestConflict(org=org, event_id=event["id"], content_hash=digest, payload=event, in_receipt=True)
                for digest, event in conflicts
            )
    return batch


def _hand_on(*, batch: PendingBatch):
    """Queue the batch for a worker; in-process (no broker) store it now.

    Either way a failure means "not acknowledged": the outbox row goes too, and the
    sender resends. A database outage in-process is such a failure (503) like a
    broker outage; any other error in-process is a bug, and still raises.
    """
    try:
        if tasks.in_process():
            outbox.pending_batch_ingest(batch_id=batch.pk)
        else:
            tasks.ingest_events.apply_async(
                kwargs={"batch_id": batch.pk},
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
            )
    except Exception as exc:
        PendingBatch.objects.filter(pk=batch.pk).delete()
        if tasks.in_process() and not isinstance(exc, (OperationalError, InterfaceError)):
            raise
        logger.warning("could not hand on %d events for org %s: %s", len(batch.events), batch.org_id, exc)
        raise QueueUnavailable(str(exc)) from exc
