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
from django.utils import timezone

from audit.accounts.models import Organization
from audit.ingest.door import validate_event
from audit.ingest.receive import QueueUnavailable
from audit.integrity import chain
from audit.otlp import flush, mapping
from audit.otlp.codec import Span
from audit.otlp.flush import row_span
from audit.otlp.models import OtlpSpan

logger = logging.getLogger(__name__)

CALL, GUARDRAIL = OtlpSpan.Kind.CALL, OtlpSpan.Kind.GUARDRAIL
# Namespace of the per-organization advisory lock that serializes receiving (PostgreSQL).
_RECEIVE_LOCK_CLASS = 0x4F544C50  # "OTLP"
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
    """Keep an export request's MCP spans durably, then hand on the events they complete.

    Once this returns, every span not among the receipt's rejections is kept: it is safe
    to acknowledge. Raises the database's errors when nothing could be kept.
    """
    now = now or timezone.now()
    receipt = OtlpReceipt(spans=len(spans))
    calls, guardrails = _sort_incoming(spans, receipt)
    if not calls and not guardrails:
        return receipt
    claim = flush.new_claim()
    with transaction.atomic():
        _lock_receiving(org.pk)
        ready = _Decision(org=org, receipt=receipt, now=now, claim=claim).keep(calls=calls, guardrails=guardrails)
    try:
        if ready:
            flush.events_hand_on(org_id=org.pk, events=ready, claim=claim, now=now)
        flush.otlp_calls_flush(org_id=org.pk, now=now, rounds=1)  # calls whose wait ended meanwhile
    except (QueueUnavailable, OperationalError, InterfaceError) as exc:
        # The spans are kept; the periodic flush hands them on once the queue is back.
        logger.warning("OTLP spans of org %s kept but not handed on yet: %s", org.pk, exc)
    return receipt


class _Decision:
    """Which spans of a request to keep, which are resends, which are rejected and why;
    keeps them, claiming the calls that are due now (their events are returned)."""

    def __init__(self, *, org, receipt, now, claim):
        self.org, self.receipt, self.now, self.claim = org, receipt, now, claim
        self.rows, self.claimed, self.ready = [], [], []

    def keep(self, *, calls, guardrails):
        by_parent = defaultdict(list)
        for (trace_id, _), guardrail in guardrails.items():
            by_parent[(trace_id, guardrail.span.parent_span_id)].append(guardrail)
        known = flush.rows_for_update(self.org.pk, set(calls) | set(guardrails) | set(by_parent))
        kept_children = flush.waiting_children(self.org.pk, set(calls) | set(by_parent))
        for key, call in calls.items():
            if key in known:
                self._resent(known[key], call)
            else:
                self._call(call, [g for g in by_parent.pop(key, []) if (key[0], g.span.span_id) not in known],
                           kept_children[key])
        for parent_key, children in by_parent.items():
            children = [child for child in children if (parent_key[0], child.span.span_id) not in known]  # resends
            if children:
                self._guardrails(known.get(parent_key), children, kept_children[parent_key])
        flush.rows_insert(self.rows)
        if self.claimed:
            # due_at too: were the hand-on to fail, the next flush takes them at once.
            OtlpSpan.objects.filter(pk__in=self.claimed).update(claimed_at=self.now, claim=self.claim, due_at=self.now)
        return self.ready

    def _resent(self, row, call):
        if row.kind == CALL and row.record == call.record:
            return
        # A record may read back a little differently (jsonb prints 1e16 as an integer): compare the events.
        if row.kind != CALL or _call_hash(row_span(row)) != _call_hash(call.span):
            self.receipt.reject(_named(call), "was already received with different content; this one was kept out")

    def _call(self, call, children, kept_children):
        clean, errors = _checked(call.span, [child.span for child in children] + [row_span(r) for r in kept_children])
        if clean is None:
            self.receipt.reject(_named(call), _problems(errors))
            for child in children:
                self.receipt.reject(_named(child), "its call span was rejected")
            return
        if children or kept_children or mapping.decides(call.span):
            self._ready(clean, [(call, CALL)] + [(child, GUARDRAIL) for child in children], kept_children)
        else:
            wait = timedelta(seconds=settings.LENS_OTLP_GUARDRAIL_WAIT)
            self.rows.append(self._row(call, CALL, due=self.now + wait))
            self.rows += [self._row(child, GUARDRAIL) for child in children]

    def _guardrails(self, parent, children, kept_children):
        if parent is None:  # its call has not come yet: check the guardrail's own fields, and keep it waiting
            for child in children:
                clean, errors = _checked(mapping.stand_in_call(child.span), [child.span])
                if clean is None:
                    self.receipt.reject(_named(child), _problems(errors))
                else:
                    self.rows.append(self._row(child, GUARDRAIL))
            return
        why = _parent_refuses(parent)
        clean = None
        if why is None:
            clean, errors = _checked(row_span(parent), [c.span for c in children] + [row_span(r) for r in kept_children])
            why = None if clean is not None else f"its call's event would be invalid: {_problems(errors)}"
        if why:
            for child in children:
                self.receipt.reject(_named(child), why)
            return
        self.claimed.append(parent.pk)
        self._ready(clean, [(child, GUARDRAIL) for child in children], kept_children)

    def _ready(self, event, new_spans, kept_children):
        """The call is due now: keep its new spans claimed, claim its kept guardrails."""
        self.ready.append(event)
        self.rows += [self._row(incoming, kind, claimed=True) for incoming, kind in new_spans]
        self.claimed += [row.pk for row in kept_children]

    def _row(self, incoming, kind, *, due=None, claimed=False):
        span = incoming.span
        return OtlpSpan(
            org_id=self.org.pk, trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id,
            kind=kind, record=incoming.record, received_at=self.now, due_at=due or self.now,
            claimed_at=self.now if claimed else None, claim=self.claim if claimed else None,
        )


def _parent_refuses(parent):
    """Why a guardrail cannot join its kept parent, or None."""
    if parent.kind != CALL:
        return f"its parent span is an {mapping.APPLY_GUARDRAIL} span, not an MCP call"
    if parent.claimed_at is not None or parent.written_at is not None:
        return (
            f"came after its call's event otel-{parent.span_id} was recorded (the trail is append-only, so a "
            f"decision cannot change it): export guardrail spans with or before their call, or raise "
            f"LENS_OTLP_GUARDRAIL_WAIT (now {settings.LENS_OTLP_GUARDRAIL_WAIT} s)"
        )
    return None


def _named(incoming):
    """The span as the receipt names it (the kept span has lost its name)."""
    return Span(**{**incoming.span.__dict__, "name": incoming.name})


def _call_hash(span):
    clean, _ = _checked(span, ())
    return chain.content_hash(clean) if clean is not None else None


def _lock_receiving(org_id):
    """One receiving transaction at a time per organization (SQLite's IMMEDIATE
    transactions already are): a call and its guardrail in two concurrent requests
    then always see each other."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_RECEIVE_LOCK_CLASS, org_id])
