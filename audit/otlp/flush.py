"""Turning kept call spans into events: claim them, hand their events to the ingest path
of SPEC §2 (`events_accept`), mark them and their guardrails written; forget old spans.

A claim is a token (and a time) on the rows it covers: a request claims the calls it
makes due itself; `otlp_calls_flush` claims calls whose guardrail wait is over with
`SELECT … FOR UPDATE SKIP LOCKED`. A claim older than CLAIM_EXPIRES was left by a flush
that died between claiming and marking: another flush takes the calls over and hands the
same events on again, which the ingest path answers as duplicates.
"""

import json
import logging
import uuid
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.accounts.models import Organization
from audit.ingest.receive import events_accept
from audit.otlp import mapping
from audit.otlp.codec import Span
from audit.otlp.models import OtlpSpan

logger = logging.getLogger(__name__)

CALL, GUARDRAIL = OtlpSpan.Kind.CALL, OtlpSpan.Kind.GUARDRAIL
CLAIM_EXPIRES = timedelta(minutes=5)
_CHUNK = 900  # keys per IN (...) list, under SQLite's variable limit


def new_claim() -> str:
    return uuid.uuid4().hex


def row_span(row: OtlpSpan) -> Span:
    return mapping.record_span(
        trace_id=row.trace_id, span_id=row.span_id, parent_span_id=row.parent_span_id, record=row.record
    )


def _chunks(keys):
    keys = sorted(keys)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        yield {trace_id for trace_id, _ in chunk}, {span_id for _, span_id in chunk}


def rows_for_update(org_id, keys) -> dict:
    """The kept rows of these (trace id, span id) keys, locked: no flush claims one of them
    while a request decides about it."""
    rows = {}
    for trace_ids, span_ids in _chunks(keys):
        found = OtlpSpan.objects.select_for_update().filter(org_id=org_id, trace_id__in=trace_ids, span_id__in=span_ids)
        rows.update({(row.trace_id, row.span_id): row for row in found if (row.trace_id, row.span_id) in keys})
    return rows


def waiting_children(org_id, parent_keys) -> dict:
    """Guardrails kept and not yet written, by their parent's (trace id, span id)."""
    children = defaultdict(list)
    for trace_ids, parent_ids in _chunks(parent_keys):
        found = OtlpSpan.objects.filter(
            org_id=org_id, trace_id__in=trace_ids, parent_span_id__in=parent_ids, kind=GUARDRAIL,
            written_at__isnull=True,
        )
        for row in found:
            if (row.trace_id, row.parent_span_id) in parent_keys:
                children[(row.trace_id, row.parent_span_id)].append(row)
    return children


_COPY_SQL = (
    "COPY audit_otlpspan (org_id, trace_id, span_id, parent_span_id, kind, record, received_at, due_at, claimed_at,"
    " claim) FROM STDIN"
)


def rows_insert(rows: list[OtlpSpan]) -> None:
    """Keep new rows. The caller holds the organization's receiving lock and has checked
    that none of their keys is kept, so on PostgreSQL they are COPYed (Django's bulk
    INSERT spent most of a request dumping the records); SQLite takes bulk_create."""
    if connection.vendor != "postgresql":
        OtlpSpan.objects.bulk_create(rows)
        return
    with connection.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
        for row in rows:
            copy.write_row((
                row.org_id, row.trace_id, row.span_id, row.parent_span_id, row.kind, json.dumps(row.record),
                row.received_at, row.due_at, row.claimed_at, row.claim,
            ))


def events_hand_on(*, org_id: int, events: list[dict], claim: str, now) -> None:
    """Hand a claim's events to the ingest path, then mark its rows written. Raises
    QueueUnavailable (or a database error) after releasing the claim for the next flush."""
    events.sort(key=lambda event: event["timestamp"])  # the chain follows the calls' order
    try:
        result = events_accept(org=Organization(pk=org_id), items=events) if events else None
    except Exception:
        OtlpSpan.objects.filter(claim=claim, written_at__isnull=True).update(claim=None, claimed_at=None)
        raise
    if result is not None and not result.all_safe:
        kept_out = [receipt for receipt in result.receipts if receipt["status"] not in ("accepted", "duplicate")]
        logger.warning("OTLP events of org %s kept out by the ingest path: %s", org_id, kept_out[:20])
    OtlpSpan.objects.filter(claim=claim, org_id=org_id, written_at__isnull=True).update(written_at=now)


def otlp_calls_flush(*, now=None, org_id: int | None = None, rounds: int | None = None) -> int:
    """Hand on the events of calls whose guardrail wait is over; returns how many.

    Each round claims up to LENS_MAX_BATCH_EVENTS of them (calls another flush holds are
    skipped). Raises QueueUnavailable; the calls of that round wait for the next flush.
    """
    now = now or timezone.now()
    handed = 0
    while rounds is None or rounds > 0:
        rounds = None if rounds is None else rounds - 1
        claim = new_claim()
        calls, children = _claim(now=now, org_id=org_id, limit=settings.LENS_MAX_BATCH_EVENTS, claim=claim)
        by_org = {call.org_id: [] for call in calls}  # every org, so its claim is marked even if nothing maps
        for call in calls:
            kids = [row_span(kid) for kid in children.get((call.org_id, call.trace_id, call.span_id), [])]
            event, errors = mapping.span_event(call=row_span(call), guardrails=kids)
            if errors:  # it mapped when it came: only a changed mapping gets here
                logger.error("OTLP call span %s of org %s no longer maps: %s", call.span_id, call.org_id, errors)
                continue
            by_org[call.org_id].append(event)
        for call_org_id, events in by_org.items():
            events_hand_on(org_id=call_org_id, events=events, claim=claim, now=now)
            handed += len(events)
        if len(calls) < settings.LENS_MAX_BATCH_EVENTS:
            break
    return handed


def _claim(*, now, org_id, limit, claim):
    with transaction.atomic():
        due = (
            OtlpSpan.objects.select_for_update(skip_locked=True)
            .filter(kind=CALL, written_at__isnull=True, due_at__lte=now)
            .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_EXPIRES))
        )
        if org_id is not None:
            due = due.filter(org_id=org_id)
        calls = list(due.order_by("due_at", "id")[:limit])
        children, claimed = {}, [call.pk for call in calls]
        for call_org_id in {call.org_id for call in calls}:
            keys = {(call.trace_id, call.span_id) for call in calls if call.org_id == call_org_id}
            for key, rows in waiting_children(call_org_id, keys).items():
                children[(call_org_id, *key)] = rows
                claimed += [row.pk for row in rows]
        if claimed:
            OtlpSpan.objects.filter(pk__in=claimed).update(claimed_at=now, claim=claim)
    return calls, children


def otlp_spans_purge(*, now=None) -> int:
    """Forget spans older than LENS_OTLP_KEEP_SECONDS: written ones, and guardrails whose
    call never came (logged: their decision is lost)."""
    now = now or timezone.now()
    horizon = now - timedelta(seconds=settings.LENS_OTLP_KEEP_SECONDS)
    orphans = OtlpSpan.objects.filter(kind=GUARDRAIL, written_at__isnull=True, received_at__lt=horizon)
    orphaned, _ = orphans.delete()
    if orphaned:
        logger.warning("forgot %d OTLP guardrail spans whose call span never came", orphaned)
    written, _ = OtlpSpan.objects.filter(written_at__lt=horizon).delete()
    return orphaned + written
