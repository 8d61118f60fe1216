"""Keeping spans and turning calls into events: guardrails before, with and after their
call, resends, late guardrails, a queue outage, claims left by a dead flush, forgetting."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from opentelemetry.sdk.trace import ReadableSpan

from audit.ingest.receive import QueueUnavailable
from audit.models import AuditEvent, OtlpSpan
from audit.otlp import codec, flush, services
from tests.otlp.sdk import DENY, Gateway, event_id, protobuf_body

WAIT = 10


@pytest.fixture
def gateway():
    gateway = Gateway()
    yield gateway
    gateway.shutdown()


@pytest.fixture(autouse=True)
def _wait():
    with override_settings(LENS_OTLP_GUARDRAIL_WAIT=WAIT, LENS_OTLP_KEEP_SECONDS=3600):
        yield


def receive(org, *sdk_spans, now=None):
    request = codec.request_decode(body=protobuf_body(sdk_spans), media=codec.PROTOBUF, content_encoding=None, max_bytes=1 << 24)
    return services.otlp_spans_receive(org=org, spans=list(codec.request_spans(request)), now=now)


def stored(org):
    return {row.event_id: row for row in AuditEvent.objects.filter(org=org)}


def unavailable(**kwargs):
    raise QueueUnavailable("broker down")


def after_wait():
    return timezone.now() + timedelta(seconds=WAIT + 1)


def test_a_call_that_decides_itself_is_an_event_at_once(org, gateway):
    call, _ = gateway.call("delete_repo", **DENY)
    receipt = receive(org, call)
    assert (receipt.rejected_count, receipt.message) == (0, "")
    event = stored(org)[event_id(call)]
    assert (event.decision, event.outcome, event.rule) == ("deny", "denied", {"id": "r-7", "policy": "github-guardrails"})
    assert OtlpSpan.objects.get(org=org).written_at is not None


def test_a_call_without_a_decision_waits_then_is_allowed(org, gateway):
    call, _ = gateway.call()
    receive(org, call)
    assert stored(org) == {}
    assert flush.otlp_calls_flush(now=timezone.now()) == 0
    assert flush.otlp_calls_flush(now=after_wait()) == 1
    assert stored(org)[event_id(call)].decision == "allow"


def test_a_guardrail_in_the_same_request_decides(org, gateway):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY)
    receive(org, guardrail, call)
    event = stored(org)[event_id(call)]
    assert (event.decision, event.reason) == ("deny", "delete_* is denied for everyone")


def test_a_guardrail_in_an_earlier_request_waits_for_its_call(org, gateway):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY)
    receive(org, guardrail)
    assert stored(org) == {}
    receive(org, call)
    assert stored(org)[event_id(call)].decision == "deny"


def test_a_guardrail_in_a_later_request_within_the_wait_decides(org, gateway):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY, guardrail_ends_last=True)
    receive(org, call)
    assert stored(org) == {}
    receipt = receive(org, guardrail)
    assert receipt.rejected_count == 0
    assert stored(org)[event_id(call)].decision == "deny"
    assert set(OtlpSpan.objects.values_list("written_at", flat=True)) != {None}


def test_a_guardrail_after_its_call_was_written_is_rejected_and_says_why(org, gateway):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY, guardrail_ends_last=True)
    receive(org, call)
    flush.otlp_calls_flush(now=after_wait())
    receipt = receive(org, guardrail)
    assert receipt.rejected_count == 1
    assert f"came after its call's event {event_id(call)} was recorded" in receipt.message
    assert "LENS_OTLP_GUARDRAIL_WAIT" in receipt.message
    assert [event.decision for event in stored(org).values()] == ["allow"]
    assert not OtlpSpan.objects.filter(kind="guardrail").exists()


def test_resent_spans_are_kept_once_and_stored_once(org, gateway):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY)
    quiet, _ = gateway.call("list_issues")
    for _ in range(2):  # the second: before the waiting call is written
        assert receive(org, call, guardrail, quiet).rejected_count == 0
    flush.otlp_calls_flush(now=after_wait())
    assert receive(org, call, guardrail, quiet).rejected_count == 0  # and after
    flush.otlp_calls_flush(now=after_wait())
    assert sorted(stored(org)) == sorted([event_id(call), event_id(quiet)])
    assert OtlpSpan.objects.count() == 3


def test_a_span_resent_with_other_content_is_rejected(org, gateway):
    call, _ = gateway.call("delete_repo", **DENY)
    receive(org, call)
    changed = ReadableSpan(  # the same span id, another tool
        name=call.name, context=call.context, resource=call.resource, start_time=call.start_time,
        end_time=call.end_time, attributes={**call.attributes, "gen_ai.tool.name": "list_issues"},
    )
    receipt = receive(org, changed)
    assert receipt.rejected_count == 1 and "already received with different content" in receipt.message
    assert stored(org)[event_id(call)].tool == "delete_repo"


def test_spans_that_are_not_calls_and_calls_that_do_not_map_are_rejected(org, gateway):
    health = gateway.other("GET /health")
    toolless, orphaned = gateway.call(guardrail=DENY, **{"gen_ai.tool.name": None})
    receipt = receive(org, health, toolless, orphaned)
    assert receipt.rejected_count == 3
    assert "1 span is neither an MCP call (no mcp.method.name) nor an apply_guardrail span: 'GET /health'" in receipt.message
    assert "tool: is required when method is tools/call" in receipt.message
    assert "its call span was rejected" in receipt.message
    assert stored(org) == {} and not OtlpSpan.objects.exists()


def test_a_queue_outage_keeps_the_spans_for_the_next_flush(org, gateway, monkeypatch):
    call, _ = gateway.call(**DENY)
    monkeypatch.setattr(flush, "events_accept", unavailable)
    assert receive(org, call).rejected_count == 0  # acknowledged: the span is kept
    row = OtlpSpan.objects.get()
    assert (row.claimed_at, row.written_at) == (None, None)
    monkeypatch.undo()
    assert flush.otlp_calls_flush() == 1
    assert event_id(call) in stored(org)


def test_a_guardrail_that_completes_a_waiting_call_during_an_outage_is_handed_on_by_the_next_flush(
    org, gateway, monkeypatch
):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY, guardrail_ends_last=True)
    receive(org, call)
    monkeypatch.setattr(flush, "events_accept", unavailable)
    assert receive(org, guardrail).rejected_count == 0
    monkeypatch.undo()
    assert flush.otlp_calls_flush() == 1  # now, not after the call's wait
    assert stored(org)[event_id(call)].decision == "deny"


def test_a_claim_left_by_a_dead_flush_expires_and_the_event_is_stored_once(org, gateway, monkeypatch):
    call, _ = gateway.call(**DENY)
    monkeypatch.setattr(flush, "events_hand_on", lambda **kwargs: None)  # claimed, then the process died
    receive(org, call)
    monkeypatch.undo()
    assert flush.otlp_calls_flush() == 0  # claimed: nobody else takes it
    later = timezone.now() + flush.CLAIM_EXPIRES + timedelta(seconds=1)
    assert flush.otlp_calls_flush(now=later) == 1
    assert flush.otlp_calls_flush(now=later) == 0
    assert list(stored(org)) == [event_id(call)]


def test_old_spans_are_forgotten(org, gateway):
    written, _ = gateway.call(**DENY)
    _, orphan = gateway.call(guardrail=DENY)
    receive(org, written, orphan)
    fresh, _ = gateway.call(**DENY)
    assert flush.otlp_spans_purge() == 0
    receive(org, fresh, now=timezone.now() + timedelta(seconds=3000))
    assert flush.otlp_spans_purge(now=timezone.now() + timedelta(seconds=3700)) == 2
    assert list(OtlpSpan.objects.values_list("span_id", flat=True)) == [f"{fresh.context.span_id:016x}"]


def test_organizations_do_not_meet(org, other_org, gateway):
    call, guardrail = gateway.call(guardrail=DENY, guardrail_ends_last=True)
    receive(org, call)
    receive(other_org, guardrail)  # another organization's guardrail decides nothing here
    flush.otlp_calls_flush(now=after_wait())
    assert stored(org)[event_id(call)].decision == "allow"
    assert stored(other_org) == {}
