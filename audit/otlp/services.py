"""The OTLP door's writes (SPEC §13): keep an export request's MCP spans durably, then
turn each call into one event through the ingest path of SPEC §2 (`events_accept`:
the door's validation, idempotency by id, the outbox, the chain).

A call's decision may be on an `apply_guardrail` child span that comes in another
export request, before or after the call. So spans are kept (`OtlpSpan`) before the
request is acknowledged, and a call becomes an event when it is *due*: at once when it
decides itself or a guardrail of it is known, else after LENS_OTLP_GUARDRAIL_WAIT
seconds. A guardrail that comes after its call's event was handed on cannot change it
(the chain is append-only): it is rejected, saying so, in the export response.
docs/otlp.md tells the whole story.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.accounts.models import Organization
from audit.ingest.door import validate_event
from audit.ingest.receive import QueueUnavailable, events_accept
from audit.integrity import chain
from audit.otlp import mapping
from audit.otlp.codec import Span
from audit.otlp.models import OtlpSpan

logger = logging.getLogger(__name__)

CALL, GUARDRAIL = OtlpSpan.Kind.CALL, OtlpSpan.Kind.GUARDRAIL
# Namespace of the per-organization advisory lock that serializes receiving (PostgreSQL).
_RECEIVE_LOCK_CLASS = 0x4F544C50  # "OTLP"
# A claim older than this was left by a flush that died; another flush takes the call over.
CLAIM_EXPIRES = timedelta(minutes=5)
_CHUNK = 900  # ids per IN (...) list, under SQLite's variable limit
_LISTED = 10  # rejected spans named in the response's message


@dataclass
class OtlpReceipt:
    """What an export request's spans became; its `message` goes into partial_success."""

    spans: int = 0
    rejected: list = field(default_factory=list)  # (span, why)
    not_mcp: list = field(default_factory=list)  # names of spans that are neither calls nor guardrails

    @property
    def rejected_count(self) -> int:
        return len(self.rejected) + len(self.not_mcp)

    def reject(self, span: Span, why: str) -> None:
        self.rejected.append((span, why))

    @property
    def message(self) -> str:
        if not self.rejected_count:
            return ""
        parts = []
        if self.not_mcp:
            count = len(self.not_mcp)
            names = ", ".join(repr(name[:60]) for name in self.not_mcp[:3]) + (", …" if count > 3 else "")
            parts.append(
                f"{count} {'span is' if count == 1 else 'spans are'} neither an MCP call (no {mapping.MCP_METHOD}) "
                f"nor an {mapping.APPLY_GUARDRAIL} span: {names}"
            )
        for span, why in self.rejected[:_LISTED]:
            parts.append(f"span {span.span_id or '(no id)'} {span.name[:60]!r}: {why[:400]}")
        if len(self.rejected) > _LISTED:
            parts.append(f"and {len(self.rejected) - _LISTED} more")
        return f"{self.rejected_count} of {self.spans} spans rejected: " + "; ".join(parts)


@dataclass
class _Incoming:
    span: Span  # as kept (mapping.record_span): what the flush will map too
    name: str
    record: dict


def _problems(errors: dict) -> str:
    return "; ".join(f"{name}: {message}" for name, message in errors.items())


def _checked(call: Span, guardrails) -> tuple[dict | None, dict]:
    """The call's clean event with these guardrails, as the door sees it, or its errors."""
    event, errors = mapping.span_event(call=call, guardrails=guardrails)
    if errors:
        return None, errors
    return validate_event(event, max_bytes=settings.LENS_MAX_EVENT_BYTES)


def _row_span(row: OtlpSpan) -> Span:
    return mapping.record_span(
        trace_id=row.trace_id, span_id=row.span_id, parent_span_id=row.parent_span_id, record=row.record
    )


def _sort_incoming(spans, receipt):
    """Split the spans into calls and guardrails by (trace id, span id), kept as stored."""
    calls, guardrails = {}, {}
    for span in spans:
        kind = mapping.span_kind(span)
        if kind is None:
            receipt.not_mcp.append(span.name)
            continue
        if len(span.trace_id) != 32 or len(span.span_id) != 16 or len(span.parent_span_id) not in (0, 16):
            receipt.reject(span, "needs a 16-byte trace id and an 8-byte span id")
            continue
        if kind == GUARDRAIL and not span.parent_span_id:
            receipt.reject(span, f"an {mapping.APPLY_GUARDRAIL} span with no parent span decides no call")
            continue
        key = (span.trace_id, span.span_id)
        if key in calls or key in guardrails:
            continue  # the same span twice in one request: once is enough
        try:
            record = mapping.span_record(span)
        except mapping.Unmappable as exc:
            receipt.reject(span, str(exc))
            continue
        kept = mapping.record_span(
            trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id, record=record
        )
        (calls if kind == CALL else guardrails)[key] = _Incoming(span=kept, name=span.name, record=record)
    return calls, guardrails


def otlp_spans_receive(*, org: Organization, spans: list[Span], now=None) -> OtlpReceipt:
    """Keep an export request's MCP spans durably (then, best effort, flush due calls).

    Once this returns, every span not in the receipt's rejections is kept: it is safe to
    acknowledge. Raises the database's errors when nothing could be kept.
    """
    now = now or timezone.now()
    receipt = OtlpReceipt(spans=len(spans))
    calls, guardrails = _sort_incoming(spans, receipt)
    if not calls and not guardrails:
        return receipt
    with transaction.atomic():
        _lock_receiving(org.pk)
        new_rows = _decide(org=org, calls=calls, guardrails=guardrails, receipt=receipt, now=now)
    if new_rows:
        try:
            otlp_calls_flush(org_id=org.pk, now=now, rounds=1)
        except (QueueUnavailable, OperationalError, InterfaceError) as exc:
            # The spans are kept; the periodic flush hands them on once the queue is back.
            logger.warning("OTLP spans of org %s kept but not handed on yet: %s", org.pk, exc)
    return receipt


def _decide(*, org, calls, guardrails, receipt, now):
    """Which spans to keep, which are resends, which are rejected and why; keeps them."""
    parent_keys = {(trace_id, incoming.span.parent_span_id) for (trace_id, _), incoming in guardrails.items()}
    known = _rows_for_update(org.pk, set(calls) | set(guardrails) | parent_keys)
    kept_children = _waiting_children(org.pk, set(calls) | parent_keys)
    new_children = defaultdict(list)
    for (trace_id, _), incoming in guardrails.items():
        new_children[(trace_id, incoming.span.parent_span_id)].append(incoming.span)

    new_rows, now_due, accepted_calls = [], set(), set()
    wait = timedelta(seconds=settings.LENS_OTLP_GUARDRAIL_WAIT)
    for key, call in calls.items():
        row = known.get(key)
        if row is not None:
            if row.kind != CALL or _call_hash(_row_span(row)) != _call_hash(call.span):
                receipt.reject(_named(call), "was already received with different content; this one was kept out")
            continue  # a resend: kept already
        children = new_children[key] + [_row_span(child) for child in kept_children[key]]
        clean, errors = _checked(call.span, children)
        if clean is None:
            receipt.reject(_named(call), _problems(errors))
            continue
        accepted_calls.add(key)
        due = now if children or mapping.decides(call.span) else now + wait
        new_rows.append(_row(org, call, CALL, now, due))

    for key, guardrail in guardrails.items():
        if key in known:
            continue  # a resend: kept already
        parent_key = (key[0], guardrail.span.parent_span_id)
        parent = known.get(parent_key)
        if parent is not None:
            why = _parent_refuses(parent, parent_key, new_children, kept_children)
            if why:
                receipt.reject(_named(guardrail), why)
                continue
            now_due.add(parent.pk)
        elif parent_key in calls:
            if parent_key not in accepted_calls:
                receipt.reject(_named(guardrail), "its call span was rejected")
                continue
        else:  # its call has not come yet: check its own fields, and keep it waiting
            clean, errors = _checked(mapping.STAND_IN_CALL, [guardrail.span])
            if clean is None:
                receipt.reject(_named(guardrail), _problems(errors))
                continue
        new_rows.append(_row(org, guardrail, GUARDRAIL, now, now))

    OtlpSpan.objects.bulk_create(new_rows, ignore_conflicts=True)
    if now_due:
        OtlpSpan.objects.filter(pk__in=now_due).update(due_at=now)
    return new_rows


def _parent_refuses(parent, parent_key, new_children, kept_children):
    """Why a guardrail cannot join its kept parent, or None."""
    if parent.kind != CALL:
        return f"its parent span is an {mapping.APPLY_GUARDRAIL} span, not an MCP call"
    if parent.claimed_at is not None or parent.written_at is not None:
        return (
            f"came after its call's event otel-{parent.span_id} was recorded (the trail is append-only, so a "
            f"decision cannot change it): export guardrail spans with or before their call, or raise "
            f"LENS_OTLP_GUARDRAIL_WAIT (now {settings.LENS_OTLP_GUARDRAIL_WAIT} s)"
        )
    children = new_children[parent_key] + [_row_span(child) for child in kept_children[parent_key]]
    clean, errors = _checked(_row_span(parent), children)
    return None if clean is not None else f"its call's event would be invalid: {_problems(errors)}"


def _named(incoming):
    """The span as the receipt names it (the kept span has lost its name)."""
    span = incoming.span
    return Span(**{**span.__dict__, "name": incoming.name})


def _call_hash(span):
    clean, _ = _checked(span, ())
    return chain.content_hash(clean) if clean is not None else None


def _row(org, incoming, kind, now, due):
    span = incoming.span
    return OtlpSpan(
        org=org, trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id, kind=kind,
        record=incoming.record, received_at=now, due_at=due,
    )


def _lock_receiving(org_id):
    """One receiving transaction at a time per organization (SQLite's IMMEDIATE
    transactions already are): a call and its guardrail in two concurrent requests
    then always see each other."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_RECEIVE_LOCK_CLASS, org_id])


def _chunks(keys):
    keys = sorted(keys)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        yield {trace_id for trace_id, _ in chunk}, {span_id for _, span_id in chunk}


def _rows_for_update(org_id, keys):
    """The kept rows of these (trace id, span id) keys, locked: a flush cannot claim one
    of them while this request decides about it."""
    rows = {}
    for trace_ids, span_ids in _chunks(keys):
        found = OtlpSpan.objects.select_for_update().filter(org_id=org_id, trace_id__in=trace_ids, span_id__in=span_ids)
        rows.update({(row.trace_id, row.span_id): row for row in found if (row.trace_id, row.span_id) in keys})
    return rows


def _waiting_children(org_id, parent_keys):
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


def otlp_calls_flush(*, now=None, org_id: int | None = None, rounds: int | None = None) -> int:
    """Hand the events of due calls to the ingest path; returns how many were handed on.

    Each round claims up to LENS_MAX_BATCH_EVENTS due calls (rows another flush holds are
    skipped), passes their events to `events_accept` and marks them and their guardrails
    written. Raises QueueUnavailable (the claimed calls are released for the next flush).
    """
    now = now or timezone.now()
    handed = 0
    while rounds is None or rounds > 0:
        rounds = None if rounds is None else rounds - 1
        calls, children = _claim(now=now, org_id=org_id, limit=settings.LENS_MAX_BATCH_EVENTS)
        if not calls:
            break
        by_org = defaultdict(list)
        for call in calls:
            by_org[call.org_id].append(call)
        for call_org_id, org_calls in by_org.items():
            handed += _hand_on(org_id=call_org_id, calls=org_calls, children=children, now=now)
        if len(calls) < settings.LENS_MAX_BATCH_EVENTS:
            break
    return handed


def _claim(*, now, org_id, limit):
    with transaction.atomic():
        due = (
            OtlpSpan.objects.select_for_update(skip_locked=True)
            .filter(kind=CALL, written_at__isnull=True, due_at__lte=now)
            .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_EXPIRES))
        )
        if org_id is not None:
            due = due.filter(org_id=org_id)
        calls = list(due.order_by("due_at", "id")[:limit])
        if not calls:
            return [], {}
        OtlpSpan.objects.filter(pk__in=[call.pk for call in calls]).update(claimed_at=now)
        children = {}
        for call_org_id in {call.org_id for call in calls}:
            keys = {(call.trace_id, call.span_id) for call in calls if call.org_id == call_org_id}
            for key, rows in _waiting_children(call_org_id, keys).items():
                children[(call_org_id, *key)] = rows
    return calls, children


def _hand_on(*, org_id, calls, children, now):
    events, done = [], [call.pk for call in calls]
    for call in calls:
        kids = children.get((org_id, call.trace_id, call.span_id), [])
        done += [kid.pk for kid in kids]
        event, errors = mapping.span_event(call=_row_span(call), guardrails=[_row_span(kid) for kid in kids])
        if errors:  # it mapped when it came: only a changed mapping gets here
            logger.error("OTLP call span %s of org %s no longer maps: %s", call.span_id, org_id, errors)
            continue
        events.append(event)
    events.sort(key=lambda event: event["timestamp"])  # the chain follows the calls' order
    try:
        result = events_accept(org=Organization(pk=org_id), items=events) if events else None
    except Exception:
        OtlpSpan.objects.filter(pk__in=[call.pk for call in calls]).update(claimed_at=None)
        raise
    if result is not None and not result.all_safe:
        kept_out = [receipt for receipt in result.receipts if receipt["status"] not in ("accepted", "duplicate")]
        logger.warning("OTLP events of org %s kept out by the ingest path: %s", org_id, kept_out[:20])
    OtlpSpan.objects.filter(pk__in=done).update(written_at=now)
    return len(events)


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
